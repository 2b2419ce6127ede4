/* tests/engine/ref_forward.c - see ref_forward.h. */
#include "tests/engine/ref_forward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/rope_scaling.h"
#include "engine/weights.h"

typedef struct mat {
    int64_t rows, cols;
    float *w; /* rows x cols */
} mat;

typedef struct layer {
    float *attn_norm, *ffn_norm;
    mat q, k, v, o, gate, up, down;
} layer;

struct ref_model {
    kiln_llama_config c;
    kiln_gguf *g;
    layer *L;
    mat embd, out;
    float *out_norm;
    int pos, cap;
    float *kc, *vc; /* [layer][pos][kv*hd] */
    double inv_freq[512]; /* RoPE, scaling applied: ref_rope_inv_freq */
};

static int load_mat(kiln_gguf *g, const char *name, mat *m, kiln_err *e)
{
    const kiln_gguf_tensor *t = kiln_gguf_tensor_find(g, name);
    if (!t)
        return kiln_fail(e, KILN_E_FORMAT, "ref: no tensor %s", name);
    kiln_qmatrix q;
    double err;
    char note[160];
    int rc = kiln_qmatrix_from_gguf(g, t, &q, &err, note, sizeof note, e);
    if (rc)
        return rc;
    m->rows = q.rows;
    m->cols = q.cols;
    m->w = malloc(sizeof(float) * (size_t)(q.rows * q.cols_pad));
    for (int64_t r = 0; r < q.rows; r++) {
        float row[q.cols_pad];
        kiln_dequantize_row(&q, r, row);
        memcpy(m->w + r * q.cols, row, sizeof(float) * (size_t)q.cols);
    }
    kiln_qmatrix_free(&q);
    return 0;
}

static float *load_vec(kiln_gguf *g, const char *name, int n, kiln_err *e)
{
    const kiln_gguf_tensor *t = kiln_gguf_tensor_find(g, name);
    float *v = malloc(sizeof(float) * (size_t)n);
    if (!t || kiln_vector_from_gguf(g, t, v, n, e)) {
        free(v);
        return NULL;
    }
    return v;
}

/* RoPE inverse frequencies written from the published formulas, not from
 * engine/rope_scaling.c: linear divides by the factor; llama3 follows Hugging
 * Face's _compute_llama3_parameters (wavelength against the original
 * context: keep, divide, or interpolate inv_freq/factor .. inv_freq);
 * rope_freqs.weight divides pair i by its entry (llama.cpp). */
int ref_rope_inv_freq(const kiln_gguf *g, const kiln_llama_config *c, double *inv, kiln_err *e)
{
    int half = c->rope_dim / 2;
    float ff[512];
    if (half > 512)
        return kiln_fail(e, KILN_E_INVALID, "ref: rope_dim %d too large", c->rope_dim);
    const kiln_gguf_tensor *t = kiln_gguf_tensor_find(g, "rope_freqs.weight");
    int rc;
    if (t && (rc = kiln_vector_from_gguf(g, t, ff, half, e)))
        return rc;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow(c->rope_theta, (double)(2 * i) / c->rope_dim);
        if (c->rope_scaling == KILN_ROPE_SCALING_LINEAR) {
            f = f / c->rope_scale;
        } else if (c->rope_scaling == KILN_ROPE_SCALING_LLAMA3) {
            double lo_wl = c->rope_orig_ctx / c->rope_low_freq, hi_wl = c->rope_orig_ctx / c->rope_high_freq;
            double wl = 2 * M_PI / f;
            double scaled = wl > lo_wl ? f / c->rope_scale : f;
            double smooth = (c->rope_orig_ctx / wl - c->rope_low_freq) / (c->rope_high_freq - c->rope_low_freq);
            if (!(wl < hi_wl) && !(wl > lo_wl))
                scaled = (1 - smooth) * scaled / c->rope_scale + smooth * scaled;
            f = scaled;
        }
        inv[i] = t ? f / ff[i] : f;
    }
    return 0;
}

ref_model *ref_load(const char *path, kiln_err *e)
{
    ref_model *m = calloc(1, sizeof *m);
    if (kiln_gguf_open(path, &m->g, e) || kiln_llama_config_read(m->g, &m->c, e)) {
        free(m);
        return NULL;
    }
    int E = m->c.n_embd;
    m->L = calloc((size_t)m->c.n_layer, sizeof *m->L);
    int rc = load_mat(m->g, "token_embd.weight", &m->embd, e);
    if (!rc)
        rc = m->c.tied_output ? (m->out = m->embd, 0) : load_mat(m->g, "output.weight", &m->out, e);
    m->out_norm = load_vec(m->g, "output_norm.weight", E, e);
    for (int l = 0; l < m->c.n_layer && !rc; l++) {
        char n[96];
        layer *L = &m->L[l];
#define M(f, s) snprintf(n, sizeof n, "blk.%d." s ".weight", l); if (!rc) rc = load_mat(m->g, n, &L->f, e);
        M(q, "attn_q") M(k, "attn_k") M(v, "attn_v") M(o, "attn_output") M(gate, "ffn_gate") M(up, "ffn_up")
        M(down, "ffn_down")
#undef M
        snprintf(n, sizeof n, "blk.%d.attn_norm.weight", l);
        L->attn_norm = load_vec(m->g, n, E, e);
        snprintf(n, sizeof n, "blk.%d.ffn_norm.weight", l);
        L->ffn_norm = load_vec(m->g, n, E, e);
    }
    if (!rc)
        rc = ref_rope_inv_freq(m->g, &m->c, m->inv_freq, e);
    m->cap = 4096;
    size_t kv = (size_t)m->c.n_layer * (size_t)m->cap * (size_t)(m->c.n_head_kv * m->c.head_dim);
    m->kc = malloc(sizeof(float) * kv);
    m->vc = malloc(sizeof(float) * kv);
    if (rc || !m->out_norm) {
        ref_free(m);
        return NULL;
    }
    return m;
}

void ref_free(ref_model *m)
{
    if (!m)
        return;
    for (int l = 0; m->L && l < m->c.n_layer; l++) {
        layer *L = &m->L[l];
        free(L->q.w), free(L->k.w), free(L->v.w), free(L->o.w), free(L->gate.w), free(L->up.w), free(L->down.w);
        free(L->attn_norm), free(L->ffn_norm);
    }
    free(m->L);
    if (!m->c.tied_output)
        free(m->out.w);
    free(m->embd.w);
    free(m->out_norm);
    free(m->kc);
    free(m->vc);
    kiln_gguf_close(m->g);
    free(m);
}

const kiln_llama_config *ref_config(const ref_model *m) { return &m->c; }

void ref_reset(ref_model *m) { m->pos = 0; }

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    double s = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++)
        out[i] = (float)(x[i] * s * w[i]);
}

static void matvec(float *y, const mat *m, const float *x)
{
    for (int64_t r = 0; r < m->rows; r++) {
        double acc = 0;
        for (int64_t k = 0; k < m->cols; k++)
            acc += (double)m->w[r * m->cols + k] * x[k];
        y[r] = (float)acc;
    }
}

/* Adjacent pairs (GGUF Llama) or half-split (NeoX) over rope_dim dims. */
static void rope(float *x, int heads, int hd, int rot, const double *inv_freq, int pos, int neox)
{
    for (int h = 0; h < heads; h++) {
        float *v = x + h * hd;
        for (int i = 0; i < rot / 2; i++) {
            double ang = pos * inv_freq[i];
            double cs = cos(ang), sn = sin(ang);
            int a = neox ? i : 2 * i, b = neox ? i + rot / 2 : 2 * i + 1;
            double x0 = v[a], x1 = v[b];
            v[a] = (float)(x0 * cs - x1 * sn);
            v[b] = (float)(x0 * sn + x1 * cs);
        }
    }
}

int ref_step(ref_model *m, int32_t token, float *logits)
{
    const kiln_llama_config *c = &m->c;
    int E = c->n_embd, H = c->n_head, KV = c->n_head_kv, D = c->head_dim, F = c->n_ff, p = m->pos;
    if (p >= m->cap)
        return -1;
    float x[E], xn[E], q[H * D], att[H * D], o[E], g[F], u[F];
    memcpy(x, m->embd.w + (size_t)token * E, sizeof x);
    for (int l = 0; l < c->n_layer; l++) {
        layer *L = &m->L[l];
        float *kc = m->kc + ((size_t)l * m->cap) * (size_t)(KV * D), *vc = m->vc + ((size_t)l * m->cap) * (size_t)(KV * D);
        rmsnorm(xn, x, L->attn_norm, E, c->rms_eps);
        matvec(q, &L->q, xn);
        matvec(kc + (size_t)p * KV * D, &L->k, xn);
        matvec(vc + (size_t)p * KV * D, &L->v, xn);
        rope(q, H, D, c->rope_dim, m->inv_freq, p, c->rope_neox);
        rope(kc + (size_t)p * KV * D, KV, D, c->rope_dim, m->inv_freq, p, c->rope_neox);
        for (int h = 0; h < H; h++) {
            int kvh = h / (H / KV);
            double sc[p + 1], mx = -1e300, sum = 0;
            for (int t = 0; t <= p; t++) {
                double d = 0;
                for (int i = 0; i < D; i++)
                    d += (double)q[h * D + i] * kc[(size_t)t * KV * D + kvh * D + i];
                sc[t] = d / sqrt((double)D);
                mx = sc[t] > mx ? sc[t] : mx;
            }
            for (int t = 0; t <= p; t++)
                sum += (sc[t] = exp(sc[t] - mx));
            for (int i = 0; i < D; i++) {
                double a = 0;
                for (int t = 0; t <= p; t++)
                    a += sc[t] * vc[(size_t)t * KV * D + kvh * D + i];
                att[h * D + i] = (float)(a / sum);
            }
        }
        matvec(o, &L->o, att);
        for (int i = 0; i < E; i++)
            x[i] += o[i];
        rmsnorm(xn, x, L->ffn_norm, E, c->rms_eps);
        matvec(g, &L->gate, xn);
        matvec(u, &L->up, xn);
        for (int i = 0; i < F; i++)
            g[i] = (float)(g[i] / (1.0 + exp(-(double)g[i])) * u[i]);
        matvec(o, &L->down, g);
        for (int i = 0; i < E; i++)
            x[i] += o[i];
    }
    rmsnorm(xn, x, m->out_norm, E, c->rms_eps);
    matvec(logits, &m->out, xn);
    m->pos++;
    return 0;
}
