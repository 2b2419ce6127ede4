/* engine/synth.c - see synth.h.
 *
 * Memory stays small at any size: tensors are generated in batches of rows
 * (threads fill disjoint rows of one batch buffer), and each batch is
 * handed to the streaming writer before the next one is made. */
#include "engine/synth.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_dequant.h"
#include "engine/gguf_write.h"
#include "util/rng.h"

static const kiln_synth_preset presets[] = {
    {"micro", 32, 1, 64, 2, 1, 320, 64, 10000.0f, 0}, /* fuzzing seeds: a whole model in ~25 KB */
    {"tiny", 64, 2, 160, 4, 2, 512, 256, 10000.0f, 0},
    {"smollm2-135m", 576, 30, 1536, 9, 3, 49152, 8192, 100000.0f, 1},
    {"llama-1b", 2048, 16, 8192, 32, 8, 128256, 131072, 500000.0f, 1},
    {"llama2-7b", 4096, 32, 11008, 32, 32, 32000, 4096, 10000.0f, 0},
    {"llama3-8b", 4096, 32, 14336, 32, 8, 128256, 8192, 500000.0f, 0},
    {"llama3-rope", 256, 2, 512, 4, 1, 512, 131072, 500000.0f, 0, KILN_SYNTH_ROPE_FREQS, 32.0f, 8192},
    {"llama3-rope-keys", 256, 2, 512, 4, 1, 512, 131072, 500000.0f, 0, KILN_SYNTH_ROPE_LLAMA3, 32.0f, 8192},
    {"linear-rope", 64, 2, 160, 4, 2, 512, 1024, 10000.0f, 0, KILN_SYNTH_ROPE_LINEAR, 4.0f, 0},
};

const kiln_synth_preset *kiln_synth_preset_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name))
            return &presets[i];
    return NULL;
}

const char *kiln_synth_preset_names(void)
{
    return "micro, tiny, smollm2-135m, llama-1b, llama2-7b, llama3-8b, llama3-rope, llama3-rope-keys, linear-rope";
}

/* rope_freqs.weight as llama.cpp's converter writes it for Llama 3.1/3.2:
 * per pair the divisor of its frequency (1 for short wavelengths, factor for
 * long ones, a blend between), Meta's low/high_freq_factor 1 and 4. */
static void llama3_rope_divisors(const kiln_synth_preset *ps, int n_rot, float *out)
{
    const double lo = 1.0, hi = 4.0, orig = ps->rope_orig_ctx, pi = 3.14159265358979323846;
    for (int i = 0; i < n_rot / 2; i++) {
        double freq = 1.0 / pow(ps->rope_theta, 2.0 * i / n_rot), wavelen = 2 * pi / freq;
        if (wavelen < orig / hi)
            out[i] = 1.0f;
        else if (wavelen > orig / lo)
            out[i] = ps->rope_factor;
        else {
            double smooth = (orig / wavelen - lo) / (hi - lo);
            out[i] = (float)(1.0 / ((1 - smooth) / ps->rope_factor + smooth));
        }
    }
}

/* ------------------------------------------------------------ tokenizer */

static const char freq[] = "etaoinshrdlcumwfgypbvkjxqz";
#define SPACE_TOK "\xc4\xa0" /* U+0120 'Ġ', GPT-2's byte 0x20 */

static int utf8(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xc0 | (cp >> 6)); /* all GPT-2 byte code points are < 0x800 */
    out[1] = (char)(0x80 | (cp & 63));
    return 2;
}

/* GPT-2 bytes_to_unicode: printable bytes map to themselves, the others to
 * 256, 257, ... in byte order. */
static unsigned byte_cp(int b)
{
    if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff))
        return (unsigned)b;
    unsigned n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= '!' && x <= '~') || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff)))
            n++;
    return 256 + n;
}

void kiln_synth_vocab_free(kiln_synth_vocab *v)
{
    for (int i = 0; v->tokens && i < v->n_tokens; i++)
        free(v->tokens[i]);
    for (int i = 0; v->merges && i < v->n_merges; i++)
        free(v->merges[i]);
    free(v->tokens);
    free(v->types);
    free(v->merges);
    memset(v, 0, sizeof *v);
}

int kiln_synth_vocab_build(int n_vocab, kiln_synth_vocab *v, kiln_err *e)
{
    memset(v, 0, sizeof *v);
    if (n_vocab < 259)
        return kiln_fail(e, KILN_E_INVALID, "synth: vocabulary of %d is below the 259 special + byte tokens", n_vocab);
    v->tokens = calloc((size_t)n_vocab, sizeof *v->tokens);
    v->types = calloc((size_t)n_vocab, sizeof *v->types);
    v->merges = calloc((size_t)n_vocab, sizeof *v->merges);
    if (!v->tokens || !v->types || !v->merges) {
        kiln_synth_vocab_free(v);
        return kiln_fail(e, KILN_E_NOMEM, "synth: no memory for a vocabulary of %d", n_vocab);
    }
    int n = 0;
    char tok[64], mg[64];
    static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    for (int i = 0; i < 3; i++) {
        v->tokens[n] = strdup(specials[i]);
        v->types[n++] = 3;
    }
    for (int b = 0; b < 256; b++) {
        int k = utf8(byte_cp(b), tok);
        tok[k] = 0;
        v->tokens[n] = strdup(tok);
        v->types[n++] = 1;
    }
    /* merges, level by level: "Ġ a", "a b", "Ġa b", "ab c" (letters by frequency) */
    int nm = 0;
#define ADD_MERGE(L, R)                                                                                             \
    do {                                                                                                            \
        if (n >= n_vocab)                                                                                           \
            goto pad;                                                                                               \
        snprintf(mg, sizeof mg, "%s %s", (L), (R));                                                                 \
        snprintf(tok, sizeof tok, "%s%s", (L), (R));                                                                \
        v->merges[nm++] = strdup(mg);                                                                               \
        v->tokens[n] = strdup(tok);                                                                                 \
        v->types[n++] = 1;                                                                                          \
    } while (0)
    char a[4] = {0}, b2[4] = {0}, c[4] = {0}, ab[8], sab[8];
    for (int i = 0; i < 26; i++) {
        a[0] = freq[i];
        ADD_MERGE(SPACE_TOK, a);
    }
    for (int i = 0; i < 26; i++)
        for (int j = 0; j < 26; j++) {
            a[0] = freq[i];
            b2[0] = freq[j];
            ADD_MERGE(a, b2);
        }
    for (int i = 0; i < 26; i++)
        for (int j = 0; j < 26; j++) {
            snprintf(sab, sizeof sab, SPACE_TOK "%c", freq[i]);
            b2[0] = freq[j];
            ADD_MERGE(sab, b2);
        }
    for (int i = 0; i < 26; i++)
        for (int j = 0; j < 26; j++)
            for (int k = 0; k < 26; k++) {
                snprintf(ab, sizeof ab, "%c%c", freq[i], freq[j]);
                c[0] = freq[k];
                ADD_MERGE(ab, c);
            }
    for (int i = 0; i < 26; i++)
        for (int j = 0; j < 26; j++)
            for (int k = 0; k < 26; k++) {
                snprintf(sab, sizeof sab, SPACE_TOK "%c%c", freq[i], freq[j]);
                c[0] = freq[k];
                ADD_MERGE(sab, c);
            }
#undef ADD_MERGE
pad:
    v->n_merges = nm;
    for (int p = 0; n < n_vocab; p++) {
        snprintf(tok, sizeof tok, "<|pad_%d|>", p);
        v->tokens[n] = strdup(tok);
        v->types[n++] = 4;
    }
    v->n_tokens = n;
    for (int i = 0; i < n; i++)
        if (!v->tokens[i] || (i < nm && !v->merges[i])) {
            kiln_synth_vocab_free(v);
            return kiln_fail(e, KILN_E_NOMEM, "synth: out of memory building the vocabulary");
        }
    return 0;
}

/* ------------------------------------------------------------ weights */

enum dist { D_MATRIX, D_EMBD, D_NORM, D_FIXED /* one row of given values */ };

typedef struct job {
    int type;
    enum dist dist;
    const float *fixed; /* D_FIXED: the row */
    int64_t in;       /* row length (dims[0]) */
    uint64_t tseed;   /* per-tensor seed */
    int64_t row0, n_rows;
    size_t row_bytes;
    uint8_t *out;
    int t0, t1;       /* this thread's rows: [t0, t1) of the batch */
    float *tmp;
    int rc;
} job;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Irwin-Hall: the sum of four 16-bit uniforms, centred and scaled to unit
 * variance (var of one U(0,1) is 1/12). */
static inline float approx_normal(kiln_rng *r)
{
    uint64_t u = kiln_rng_u64(r);
    float s = (float)(u & 0xffff) + (float)((u >> 16) & 0xffff) + (float)((u >> 32) & 0xffff) + (float)(u >> 48);
    return (s - 2.0f * 65535.0f) * (1.0f / (65536.0f * 0.57735026919f)); /* sqrt(4/12) */
}

static void *run_job(void *arg)
{
    job *j = arg;
    float std = j->dist == D_MATRIX ? 1.0f / sqrtf((float)j->in) : j->dist == D_EMBD ? 0.5f : 0.05f;
    float base = j->dist == D_NORM ? 1.0f : 0.0f;
    for (int r = j->t0; r < j->t1; r++) {
        kiln_rng rng;
        kiln_rng_seed(&rng, mix(j->tseed ^ mix((uint64_t)(j->row0 + r))));
        for (int64_t k = 0; k < j->in; k++)
            j->tmp[k] = j->dist == D_FIXED ? j->fixed[k] : base + std * approx_normal(&rng);
        if (kiln_gguf_quant_row(j->type, j->tmp, j->in, j->out + (size_t)r * j->row_bytes, NULL)) {
            j->rc = KILN_E_INVALID;
            return NULL;
        }
    }
    return NULL;
}

typedef struct progress {
    int on;
    double last;
    uint64_t total;
} progress;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void show(progress *p, kiln_gguf_writer *w, const char *name, int final)
{
    if (!p->on)
        return;
    double t = now_s();
    if (!final && t - p->last < 0.2)
        return;
    p->last = t;
    uint64_t d = kiln_gguf_w_written_bytes(w);
    fprintf(stderr, "\r\033[Kkiln synth: %llu / %llu MiB (%3.0f%%) %s", (unsigned long long)(d >> 20),
            (unsigned long long)(p->total >> 20), p->total ? 100.0 * (double)d / (double)p->total : 100.0,
            final ? "done\n" : name);
}

typedef struct tinfo {
    char name[KILN_GGUF_MAX_NAME];
    int type, n_dims;
    int64_t dims[2];
    enum dist dist;
    const float *fixed;
} tinfo;

static int write_tensor(kiln_gguf_writer *w, const tinfo *t, uint64_t seed, int idx, int threads, progress *p,
                        kiln_err *e)
{
    int64_t in = t->dims[0], rows = t->n_dims > 1 ? t->dims[1] : 1;
    size_t row_bytes = (size_t)in / kiln_ggml_type_block_elems(t->type) * kiln_ggml_type_block_bytes(t->type);
    int64_t batch = (int64_t)((16u << 20) / row_bytes);
    if (batch < 1)
        batch = 1;
    if (batch > rows)
        batch = rows;
    uint8_t *buf = malloc((size_t)batch * row_bytes);
    float *tmp = malloc((size_t)threads * (size_t)in * sizeof *tmp);
    job *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    int rc = 0;
    if (!buf || !tmp || !jobs || !tids) {
        rc = kiln_fail(e, KILN_E_NOMEM, "synth: no memory for a batch of '%s'", t->name);
        goto out;
    }
    uint64_t tseed = mix(seed ^ mix(0x5eed0000ull + (uint64_t)idx));
    for (int64_t r0 = 0; r0 < rows && !rc; r0 += batch) {
        int64_t nr = rows - r0 < batch ? rows - r0 : batch;
        int nt = nr < threads ? (int)nr : threads;
        for (int i = 0; i < nt; i++) {
            jobs[i] = (job){t->type, t->dist, t->fixed, in, tseed, r0, nr, row_bytes, buf,
                            (int)(nr * i / nt), (int)(nr * (i + 1) / nt), tmp + (size_t)i * (size_t)in, 0};
            if (i > 0 && pthread_create(&tids[i], NULL, run_job, &jobs[i]))
                run_job(&jobs[i]), tids[i] = 0;
        }
        run_job(&jobs[0]);
        for (int i = 1; i < nt; i++)
            if (tids[i])
                pthread_join(tids[i], NULL);
        for (int i = 0; i < nt; i++)
            if (jobs[i].rc)
                rc = kiln_fail(e, KILN_E_INVALID, "synth: cannot quantize '%s' to %s", t->name,
                               kiln_ggml_type_name(t->type));
        if (!rc)
            rc = kiln_gguf_w_data(w, buf, (size_t)nr * row_bytes, e);
        show(p, w, t->name, 0);
    }
out:
    free(buf);
    free(tmp);
    free(jobs);
    free(tids);
    return rc;
}

int kiln_synth_write(const char *path, const kiln_synth_opts *o, kiln_err *e)
{
    const kiln_synth_preset *ps = kiln_synth_preset_find(o->preset);
    if (!ps)
        return kiln_fail(e, KILN_E_INVALID, "synth: unknown preset '%s' (have %s)", o->preset ? o->preset : "(null)",
                         kiln_synth_preset_names());
    int quant = o->quant ? o->quant : KILN_GGML_Q4_0;
    if (quant != KILN_GGML_Q4_0 && quant != KILN_GGML_Q4_1 && quant != KILN_GGML_Q8_0)
        return kiln_fail(e, KILN_E_INVALID, "synth: quantization %s not supported (q4_0, q4_1, q8_0)",
                         kiln_ggml_type_name(quant) ? kiln_ggml_type_name(quant) : "?");
    int n_layer = o->n_layer > 0 ? o->n_layer : ps->n_layer;
    if (n_layer > 4096)
        return kiln_fail(e, KILN_E_INVALID, "synth: %d layers is too many", n_layer);
    int threads = o->threads;
    if (threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc < 1 ? 1 : nc > 16 ? 16 : (int)nc;
    }
    int hd = ps->n_embd / ps->n_head;

    kiln_synth_vocab v;
    int rc = kiln_synth_vocab_build(ps->n_vocab, &v, e);
    if (rc)
        return rc;
    kiln_gguf_writer *w;
    rc = kiln_gguf_writer_open(path, &w, e);
    if (rc) {
        kiln_synth_vocab_free(&v);
        return rc;
    }
    char name[128];
    snprintf(name, sizeof name, "kiln synthetic %s (%s, seed %llu)", ps->name, kiln_ggml_type_name(quant),
             (unsigned long long)o->seed);
    kiln_gguf_w_str(w, "general.architecture", "llama", e);
    kiln_gguf_w_str(w, "general.name", name, e);
    kiln_gguf_w_u32(w, "general.alignment", 32, e);
    kiln_gguf_w_u32(w, "general.file_type", quant == KILN_GGML_Q4_0 ? 2 : quant == KILN_GGML_Q4_1 ? 3 : 7, e);
    kiln_gguf_w_u32(w, "general.quantization_version", 2, e);
    kiln_gguf_w_u32(w, "llama.context_length", (uint32_t)ps->context_length, e);
    kiln_gguf_w_u32(w, "llama.embedding_length", (uint32_t)ps->n_embd, e);
    kiln_gguf_w_u32(w, "llama.block_count", (uint32_t)n_layer, e);
    kiln_gguf_w_u32(w, "llama.feed_forward_length", (uint32_t)ps->n_ff, e);
    kiln_gguf_w_u32(w, "llama.attention.head_count", (uint32_t)ps->n_head, e);
    kiln_gguf_w_u32(w, "llama.attention.head_count_kv", (uint32_t)ps->n_head_kv, e);
    kiln_gguf_w_f32(w, "llama.rope.freq_base", ps->rope_theta, e);
    kiln_gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, e);
    kiln_gguf_w_u32(w, "llama.rope.dimension_count", (uint32_t)hd, e);
    float factor = ps->rope_scaling ? ps->rope_factor : 4.0f;
    if (o->rope_type || ps->rope_scaling == KILN_SYNTH_ROPE_LINEAR || ps->rope_scaling == KILN_SYNTH_ROPE_LLAMA3) {
        kiln_gguf_w_str(w, "llama.rope.scaling.type",
                        o->rope_type ? o->rope_type : ps->rope_scaling == KILN_SYNTH_ROPE_LINEAR ? "linear" : "llama3",
                        e);
        kiln_gguf_w_f32(w, "llama.rope.scaling.factor", factor, e);
    }
    if (ps->rope_scaling == KILN_SYNTH_ROPE_LLAMA3 || ps->rope_scaling == KILN_SYNTH_ROPE_FREQS)
        kiln_gguf_w_u32(w, "llama.rope.scaling.original_context_length", (uint32_t)ps->rope_orig_ctx, e);
    if (ps->rope_scaling == KILN_SYNTH_ROPE_LLAMA3) {
        kiln_gguf_w_f32(w, "llama.rope.scaling.low_freq_factor", 1.0f, e);
        kiln_gguf_w_f32(w, "llama.rope.scaling.high_freq_factor", 4.0f, e);
    }
    kiln_gguf_w_u32(w, "llama.vocab_size", (uint32_t)ps->n_vocab, e);
    kiln_gguf_w_str(w, "tokenizer.ggml.model", "gpt2", e);
    kiln_gguf_w_str(w, "tokenizer.ggml.pre", "smollm", e);
    kiln_gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tokens, NULL, (uint64_t)v.n_tokens, e);
    kiln_gguf_w_arr(w, "tokenizer.ggml.token_type", KILN_GGUF_I32, v.types, (uint64_t)v.n_tokens, e);
    kiln_gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v.merges, NULL, (uint64_t)v.n_merges, e);
    kiln_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1, e);
    kiln_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2, e);
    kiln_gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", 0, e);
    kiln_gguf_w_u32(w, "tokenizer.ggml.padding_token_id", 2, e);
    kiln_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 0, e);
    kiln_gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", 0, e);
    kiln_gguf_w_str(w, "tokenizer.chat_template",
                    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
                    "{% endif %}",
                    e);
    kiln_synth_vocab_free(&v);

    /* tensor list, in file order */
    int n_t = 0, cap = 4 + 9 * n_layer;
    float rope_div[512];
    tinfo *ts = calloc((size_t)cap, sizeof *ts);
    if (!ts) {
        kiln_gguf_writer_free(w);
        return kiln_fail(e, KILN_E_NOMEM, "synth: out of memory");
    }
#define T(nm, ty, nd, d0, d1, di)                                                                                   \
    (snprintf(ts[n_t].name, sizeof ts[n_t].name, "%s", nm), ts[n_t].type = (ty), ts[n_t].n_dims = (nd),           \
     ts[n_t].dims[0] = (d0), ts[n_t].dims[1] = (d1), ts[n_t].dist = (di), n_t++)
    int64_t E = ps->n_embd, Q = (int64_t)ps->n_head * hd, KV = (int64_t)ps->n_head_kv * hd, F = ps->n_ff;
    if (ps->rope_scaling == KILN_SYNTH_ROPE_FREQS && hd / 2 <= 512) {
        llama3_rope_divisors(ps, hd, rope_div);
        T("rope_freqs.weight", KILN_GGML_F32, 1, hd / 2, 1, D_FIXED);
        ts[n_t - 1].fixed = rope_div;
    }
    T("token_embd.weight", KILN_GGML_Q8_0, 2, E, ps->n_vocab, D_EMBD);
    for (int l = 0; l < n_layer; l++) {
        char nm[KILN_GGUF_MAX_NAME];
#define L(suffix, ty, nd, d0, d1, di) (snprintf(nm, sizeof nm, "blk.%d." suffix, l), T(nm, ty, nd, d0, d1, di))
        L("attn_norm.weight", KILN_GGML_F32, 1, E, 1, D_NORM);
        L("attn_q.weight", quant, 2, E, Q, D_MATRIX);
        L("attn_k.weight", quant, 2, E, KV, D_MATRIX);
        L("attn_v.weight", quant, 2, E, KV, D_MATRIX);
        L("attn_output.weight", quant, 2, Q, E, D_MATRIX);
        L("ffn_norm.weight", KILN_GGML_F32, 1, E, 1, D_NORM);
        L("ffn_gate.weight", quant, 2, E, F, D_MATRIX);
        L("ffn_up.weight", quant, 2, E, F, D_MATRIX);
        L("ffn_down.weight", quant, 2, F, E, D_MATRIX);
#undef L
    }
    T("output_norm.weight", KILN_GGML_F32, 1, E, 1, D_NORM);
    if (!ps->tied)
        T("output.weight", quant, 2, E, ps->n_vocab, D_MATRIX);
#undef T
    for (int i = 0; i < n_t; i++)
        kiln_gguf_w_tensor(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].dims, e);
    rc = kiln_gguf_w_begin_data(w, e);
    progress p = {o->progress, 0, kiln_gguf_w_total_bytes(w)};
    for (int i = 0; i < n_t && !rc; i++)
        rc = write_tensor(w, &ts[i], o->seed, i, threads, &p, e);
    if (!rc)
        rc = kiln_gguf_writer_finish(w, e);
    if (!rc)
        show(&p, w, "", 1);
    else if (p.on)
        fputc('\n', stderr);
    kiln_gguf_writer_free(w);
    free(ts);
    return rc;
}
