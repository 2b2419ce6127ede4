/* engine/model.c - loading a GGUF Llama model onto a device (weights in
 * Kiln's layout, norms as f32 buffers, tokenizer, chat template). */
#include "engine/model.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"

static const kiln_gguf_tensor *need(const kiln_gguf *g, const char *name, kiln_err *e)
{
    const kiln_gguf_tensor *t = kiln_gguf_tensor_find(g, name);
    if (!t)
        kiln_fail(e, KILN_E_FORMAT, "%s: tensor '%s' is missing", kiln_gguf_path(g), name);
    return t;
}

static int load_vec(kiln_model *m, const char *name, kiln_buffer **out, kiln_err *e)
{
    const kiln_gguf_tensor *t = need(m->gguf, name, e);
    if (!t)
        return KILN_E_FORMAT;
    int n = m->cfg.n_embd;
    float *h = malloc(sizeof *h * (size_t)n);
    if (!h)
        return kiln_fail(e, KILN_E_NOMEM, "out of memory");
    int rc = kiln_vector_from_gguf(m->gguf, t, h, n, e);
    if (!rc && !(*out = kiln_alloc(m->dev, (size_t)n * 4, e)))
        rc = kiln_err_wrap(e, "%s: tensor '%s'", kiln_gguf_path(m->gguf), name);
    if (!rc && (rc = kiln_write(m->dev, *out, 0, h, (size_t)n * 4, e)))
        kiln_err_wrap(e, "%s: tensor '%s'", kiln_gguf_path(m->gguf), name);
    free(h);
    if (!rc)
        m->weight_bytes += (size_t)n * 4;
    return rc;
}

/* The layout the matrix's gemv config reads (1 where nothing says more),
 * and whether that config keeps x in f32 (*gemv_f32). */
static int layout_of(const kiln_model_opts *o, const kiln_gguf_tensor *t, int *gemv_f32)
{
    *gemv_f32 = 0;
    if (!o->layout || t->n_dims != 2)
        return 1;
    kiln_shape s = {.m = t->dims[1], .k = t->dims[0], .act = o->act};
    kiln_format_of_ggml(t->type, &s.quant, &s.group);
    int ilv = o->layout(o->layout_ctx, &s, gemv_f32);
    return kiln_ilv_valid(ilv) ? ilv : 1;
}

/* A matrix that asked for tiles but had to load row-major (it needs several
 * buffers) is multiplied by the row-major gemv default, which on the cpu
 * keeps x in f32: its gemms follow. */
static int gemv_f32_of(const kiln_model *m, const kiln_model_opts *o, int asked_ilv, int got_ilv, int gemv_f32)
{
    if (asked_ilv != got_ilv)
        return m->dev->fp.backend == KILN_CPU && o->act == KILN_ACT_Q8;
    return gemv_f32;
}

/* gemv: 1 if the matrix is multiplied by gemv_int4 (the embedding table only
 * when it is tied to the LM head): it is stored in its gemv config's layout. */
static int load_mat(kiln_model *m, const char *name, kiln_dmat *d, const kiln_model_opts *o, kiln_pool *pool,
                    kiln_qmatrix *keep, int gemv, kiln_err *e)
{
    const kiln_gguf_tensor *t = need(m->gguf, name, e);
    if (!t)
        return KILN_E_FORMAT;
    int gemv_f32 = 0, ilv = gemv ? layout_of(o, t, &gemv_f32) : 1;
    int rc = kiln_dmat_load(m->dev, m->gguf, t, o->max_part_bytes, ilv, pool, d, keep, e);
    if (rc)
        return rc;
    d->gemv_f32 = gemv_f32_of(m, o, ilv, d->ilv, gemv_f32);
    FILE *notes = o->notes;
    m->weight_bytes += d->bytes;
    if (d->conv_err > 0) {
        m->n_lossy++;
        if (d->conv_err > m->worst_conv_err)
            m->worst_conv_err = d->conv_err;
        if (notes)
            fprintf(notes, "kiln: %s: %s\n", name, d->note);
    }
    return 0;
}

/* Hyperparameters, and what the forward pass cannot run yet. */
static int read_config(kiln_model *m, const char *path, kiln_err *e)
{
    int rc;
    if ((rc = kiln_llama_config_read(m->gguf, &m->cfg, e)) || (rc = kiln_llama_validate(m->gguf, &m->cfg, e)))
        return rc;
    if (m->cfg.qkv_bias)
        return kiln_fail(e, KILN_E_FORMAT, "%s: architecture '%s' has Q/K/V biases, which the Kiln forward pass does "
                         "not apply yet", path, m->cfg.arch);
    if (m->cfg.head_dim > 256 || m->cfg.head_dim % 4)
        return kiln_fail(e, KILN_E_FORMAT, "%s: head dim %d (attention_paged needs <= 256, a multiple of 4)", path,
                         m->cfg.head_dim);
    return 0;
}

/* The tokenizer, and the chat template kind (ChatML unless the GGUF's template is one Kiln knows). */
static int load_tokenizer(kiln_model *m, const char *path, kiln_err *e)
{
    if (kiln_tokenizer_from_gguf(m->gguf, &m->tok, e))
        return kiln_err_wrap(e, "%s: tokenizer", path);
    m->chat = KILN_CHAT_CHATML;
    const char *tmpl;
    size_t tl;
    if (kiln_gguf_find(m->gguf, "tokenizer.chat_template") &&
        !kiln_gguf_get_str(m->gguf, "tokenizer.chat_template", &tmpl, &tl, NULL)) {
        int k = kiln_chat_detect(tmpl, tl);
        if (k >= 0)
            m->chat = (kiln_chat_kind)k;
    }
    return 0;
}

/* Can these tensors be stacked into one matrix whose row blocks the engine
 * binds at byte offsets? Same format and width (GGUF files may mix types
 * across Q/K/V), and every block's first row and its output start at offsets
 * the device accepts (row blocks are whole tiles in an interleaved layout). */
static int stackable(const kiln_model *m, const kiln_gguf_tensor *const *ts, int n, int ilv)
{
    size_t align = m->dev->fp.offset_align ? m->dev->fp.offset_align : 1;
    int q0, g0, q, g;
    kiln_format_of_ggml(ts[0]->type, &q0, &g0);
    if (q0 == KILN_F16 && ilv > 1)
        return 0;
    int64_t wpr = (ts[0]->dims[0] + 7) / 8, row0 = 0; /* int4 words per row: the finest case; checked below */
    for (int i = 0; i < n; i++) {
        kiln_format_of_ggml(ts[i]->type, &q, &g);
        if (ts[i]->n_dims != 2 || q != q0 || g != g0 || ts[i]->dims[0] != ts[0]->dims[0])
            return 0;
        int epw = q == KILN_Q8_0 ? 4 : q == KILN_F16 ? 2 : 8;
        int64_t cols_pad = g ? (ts[0]->dims[0] + g - 1) / g * g : ts[0]->dims[0];
        wpr = (cols_pad + epw - 1) / epw;
        if (row0 % ilv || (size_t)(row0 * wpr * 4) % align || (g && (size_t)(row0 * (cols_pad / g) * 2) % align) ||
            (size_t)(row0 * 4) % align)
            return 0;
        row0 += ts[i]->dims[1];
    }
    return 1;
}

/* names[0..n) of layer l stacked into *stack and split into views; 0 when
 * they cannot be stacked (*fused stays 0: the caller loads them one by one). */
static int load_stack(kiln_model *m, int l, const char *const *names, kiln_dmat *const *views, int n,
                      kiln_dmat *stack, int *fused, const kiln_model_opts *o, kiln_pool *pool, kiln_err *e)
{
    const kiln_gguf_tensor *ts[KILN_DMAT_MAX_STACK];
    char name[96];
    int64_t rows = 0;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, names[i]);
        if (!(ts[i] = need(m->gguf, name, e)))
            return KILN_E_FORMAT;
        rows += ts[i]->dims[1];
    }
    /* the layout the stacked matrix's gemv reads */
    int ilv = 1, gemv_f32 = 0;
    if (o->layout) {
        kiln_shape s = {.m = rows, .k = ts[0]->dims[0], .act = o->act};
        kiln_format_of_ggml(ts[0]->type, &s.quant, &s.group);
        ilv = o->layout(o->layout_ctx, &s, &gemv_f32);
        ilv = kiln_ilv_valid(ilv) ? ilv : 1;
    }
    if (!stackable(m, ts, n, ilv))
        return 0;
    int rc = kiln_dmat_load_stacked(m->dev, m->gguf, ts, n, o->max_part_bytes, ilv, pool, stack, e);
    if (rc == KILN_E_INVALID && stack->n_parts == 0)
        return 0; /* e.g. larger than one buffer: separately */
    if (rc)
        return rc;
    if (stack->n_parts != 1) {
        kiln_dmat_free(m->dev, stack);
        return 0;
    }
    m->weight_bytes += stack->bytes;
    stack->gemv_f32 = gemv_f32_of(m, o, ilv, stack->ilv, gemv_f32); /* the views below inherit it */
    for (int i = 0, r0 = 0; i < n; r0 += (int)ts[i]->dims[1], i++)
        *views[i] = kiln_dmat_rows(stack, r0, ts[i]->dims[1]);
    *fused = 1;
    return 0;
}

static int load_layer(kiln_model *m, int l, const kiln_model_opts *o, kiln_pool *pool, kiln_err *e)
{
    static const struct {
        const char *name;
        size_t off;
    } vecs[] = {{"attn_norm", offsetof(kiln_layer, attn_norm)}, {"ffn_norm", offsetof(kiln_layer, ffn_norm)}},
      mats[] = {{"attn_q", offsetof(kiln_layer, wq)},           {"attn_k", offsetof(kiln_layer, wk)},
                {"attn_v", offsetof(kiln_layer, wv)},           {"attn_output", offsetof(kiln_layer, wo)},
                {"ffn_gate", offsetof(kiln_layer, w_gate)},     {"ffn_up", offsetof(kiln_layer, w_up)},
                {"ffn_down", offsetof(kiln_layer, w_down)}};
    char *L = (char *)&m->layers[l];
    char name[96];
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof vecs / sizeof vecs[0]; i++) {
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, vecs[i].name);
        rc = load_vec(m, name, (kiln_buffer **)(L + vecs[i].off), e);
    }
    kiln_layer *ly = &m->layers[l];
    if (!rc && !o->no_fuse) {
        static const char *const qkv[] = {"attn_q", "attn_k", "attn_v"}, *const gu[] = {"ffn_gate", "ffn_up"};
        kiln_dmat *vq[] = {&ly->wq, &ly->wk, &ly->wv}, *vg[] = {&ly->w_gate, &ly->w_up};
        rc = load_stack(m, l, qkv, vq, 3, &ly->wqkv, &ly->fused_qkv, o, pool, e);
        if (!rc)
            rc = load_stack(m, l, gu, vg, 2, &ly->wgu, &ly->fused_gu, o, pool, e);
    }
    for (size_t i = 0; !rc && i < sizeof mats / sizeof mats[0]; i++) {
        kiln_dmat *d = (kiln_dmat *)(L + mats[i].off);
        if (d->view)
            continue; /* a block of a stacked matrix */
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, mats[i].name);
        rc = load_mat(m, name, d, o, pool, NULL, 1, e);
    }
    return rc;
}

/* Every weight onto the device; a progress line on a TTY. */
static int load_weights(kiln_model *m, const char *path, const kiln_model_opts *o, kiln_pool *pool, kiln_err *e)
{
    int tty = o->progress && isatty(fileno(o->progress));
    m->layers = calloc((size_t)m->cfg.n_layer, sizeof *m->layers);
    if (!m->layers)
        return kiln_fail(e, KILN_E_NOMEM, "out of memory");
    /* the embedding in one buffer is gathered on the device; in parts, on the host from a host copy */
    int rc = load_mat(m, "token_embd.weight", &m->embd, o, pool, &m->embd_host, m->cfg.tied_output, e);
    if (!rc)
        rc = load_vec(m, "output_norm.weight", &m->out_norm, e);
    m->embd_on_host = m->embd.n_parts > 1;
    if (!rc && m->cfg.tied_output) {
        m->output = m->embd;
    } else if (!rc) {
        rc = load_mat(m, "output.weight", &m->output, o, pool, NULL, 1, e);
        m->output_owned = !rc;
    }
    for (int l = 0; !rc && l < m->cfg.n_layer; l++) {
        rc = load_layer(m, l, o, pool, e);
        if (tty)
            fprintf(o->progress, "\rloading %s: layer %d/%d, %.0f MiB on %s", path, l + 1, m->cfg.n_layer,
                    (double)m->weight_bytes / (1 << 20), m->dev->fp.name);
    }
    if (tty)
        fputc('\n', o->progress);
    return rc;
}

/* The tokenizer is built on a thread of its own while the weights convert: it
 * is serial work (15-25 ms for vocabularies of 50k-128k tokens) that would
 * otherwise add to the load wherever there are cores to spare. It writes only
 * m->tok and m->chat, the weights only other fields; both only read the
 * mapping. */
typedef struct tok_job {
    kiln_model *m;
    const char *path;
    int rc;
    double seconds;
    kiln_err err;
} tok_job;

static void *tok_thread(void *arg)
{
    tok_job *j = arg;
    double t0 = kiln_now_s();
    j->rc = load_tokenizer(j->m, j->path, &j->err);
    j->seconds = kiln_now_s() - t0;
    return NULL;
}

int kiln_model_load(kiln_model *m, kiln_device *d, const char *path, const kiln_model_opts *o, kiln_err *e)
{
    memset(m, 0, sizeof *m);
    m->dev = d;
    kiln_model_opts none = {0};
    if (!o)
        o = &none;
    double t0 = kiln_now_s();
    int rc = kiln_gguf_open(path, &m->gguf, e);
    if (rc)
        return rc;
    if ((rc = read_config(m, path, e))) {
        kiln_model_free(m);
        return rc;
    }
    double t1 = kiln_now_s();
    tok_job tj = {.m = m, .path = path};
    pthread_t th;
    int threaded = pthread_create(&th, NULL, tok_thread, &tj) == 0;
    if (!threaded)
        tok_thread(&tj);
    kiln_pool *pool = NULL; /* threads converting the weights, for the load only */
    int n_threads = o->load_threads;
    if (n_threads <= 0)
        rc = kiln_host_threads(&n_threads, e);
    if (!rc)
        rc = kiln_pool_new(n_threads, &pool, e);
    if (!rc)
        rc = load_weights(m, path, o, pool, e);
    kiln_pool_free(pool);
    if (threaded)
        pthread_join(th, NULL);
    if (tj.rc) { /* the tokenizer's error first, as when it was built first */
        rc = tj.rc;
        if (e)
            *e = tj.err;
    }
    if (rc) {
        kiln_model_free(m);
        return rc;
    }
    double t2 = kiln_now_s();
    m->load_gguf_s = t1 - t0;
    m->load_tokenizer_s = tj.seconds;
    m->load_weights_s = t2 - t1;
    m->load_s = t2 - t0;
    return 0;
}

void kiln_model_free(kiln_model *m)
{
    if (m->layers) {
        for (int l = 0; l < m->cfg.n_layer; l++) {
            kiln_layer *L = &m->layers[l];
            kiln_free(m->dev, L->attn_norm);
            kiln_free(m->dev, L->ffn_norm);
            kiln_dmat *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down, &L->wqkv, &L->wgu};
            for (int i = 0; i < 9; i++)
                kiln_dmat_free(m->dev, mats[i]);
        }
        free(m->layers);
    }
    if (m->output_owned)
        kiln_dmat_free(m->dev, &m->output);
    kiln_dmat_free(m->dev, &m->embd);
    kiln_qmatrix_free(&m->embd_host);
    kiln_free(m->dev, m->out_norm);
    kiln_tokenizer_free(m->tok);
    kiln_gguf_close(m->gguf);
    memset(m, 0, sizeof *m);
}
