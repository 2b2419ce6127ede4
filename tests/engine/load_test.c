/* tests/engine/load_test.c - loading weights onto a device, against references
 * written the slow, obvious way:
 *  - kiln_pool_run visits every item of a range exactly once, for several
 *    sizes, grains and thread counts, and reports a failing chunk's error;
 *  - kiln_repack_from_gguf (a word at a time) equals kiln_repack_from_gguf_ref
 *    (a code at a time) bit for bit on random blocks of every bit pattern, and
 *    repacking back (kiln_repack_to_gguf) gives the input bytes;
 *  - kiln_dmat_load of Q4_0, Q4_1, Q8_0, F16, F32 (both of odd width: the
 *    last word's pad half) and Q4_K tensors on every available device, with 1
 *    and 3 threads, whole and in parts, with and without a kept host copy
 *    (kept only when in parts): the device bytes equal a serial reference
 *    conversion (and the conversion error of the lossy ones equals it). On the
 *    cpu device that is the in-place path; elsewhere, and on the cpu device
 *    when a host copy is kept, the staged one;
 *  - kiln_model_load (tokenizer on its own thread, weights on the pool) of a
 *    tiny synthetic model with 1 and 4 load threads, and its errors: a
 *    tensor missing (found by the config checks, before either), an unknown
 *    pre-tokenizer, weights that cannot be placed (buffers too small), and
 *    the last two at once (the tokenizer's error is the one reported, as
 *    when it was built first). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_dequant.h"
#include "engine/gguf_write.h"
#include "engine/model.h"
#include "engine/synth.h"
#include "engine/weights.h"
#include "kernels/quant.h"
#include "tests/test.h"
#include "util/f16.h"
#include "util/pool.h"
#include "util/rng.h"

/* ---------------------------------------------------------------- pool */

typedef struct visit {
    int *count;
    int64_t fail_at; /* -1: none */
} visit;

static int visit_fn(void *ctx, int64_t begin, int64_t end, kiln_err *e)
{
    visit *v = ctx;
    for (int64_t i = begin; i < end; i++) {
        if (i == v->fail_at)
            return kiln_fail(e, KILN_E_VERIFY, "item %lld failed", (long long)i);
        v->count[i]++;
    }
    return 0;
}

static void test_pool(void)
{
    static const int64_t sizes[] = {0, 1, 7, 1000, 100003};
    static const int64_t grains[] = {1, 3, 64, 5000};
    for (int threads = 1; threads <= 4; threads += 3) {
        kiln_err e = {0};
        kiln_pool *p = NULL;
        CHECK_OK(kiln_pool_new(threads, &p, &e), &e);
        CHECK(kiln_pool_threads(p) == threads, "pool of %d has %d threads", threads, kiln_pool_threads(p));
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
            for (size_t gi = 0; gi < sizeof grains / sizeof grains[0]; gi++) {
                int64_t n = sizes[si];
                int *count = calloc((size_t)n + 1, sizeof *count);
                visit v = {count, -1};
                CHECK_OK(kiln_pool_run(p, n, grains[gi], visit_fn, &v, &e), &e);
                int64_t bad = -1;
                for (int64_t i = 0; i < n && bad < 0; i++)
                    if (count[i] != 1)
                        bad = i;
                CHECK(bad < 0, "threads %d n %lld grain %lld: item %lld visited %d times", threads, (long long)n,
                      (long long)grains[gi], (long long)bad, bad >= 0 ? count[bad] : 0);
                /* a failure in the middle comes back with its message */
                if (n > 1) {
                    v.fail_at = n / 2;
                    kiln_err fe = {0};
                    int rc = kiln_pool_run(p, n, grains[gi], visit_fn, &v, &fe);
                    char want[64];
                    snprintf(want, sizeof want, "item %lld failed", (long long)(n / 2));
                    CHECK(rc == KILN_E_VERIFY && !strcmp(fe.msg, want), "threads %d n %lld: rc %d, '%s'", threads,
                          (long long)n, rc, fe.msg);
                }
                free(count);
            }
        kiln_pool_free(p);
    }
    kiln_pool_free(NULL);
}

/* ---------------------------------------------------------------- repack */

static void random_bytes(kiln_rng *r, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)kiln_rng_u64(r);
}

static void test_repack(void)
{
    kiln_rng r;
    kiln_rng_seed(&r, 3);
    static const struct {
        int ggml, quant;
        size_t block;
    } types[] = {{KILN_GGML_Q4_0, KILN_Q4_0, 18}, {KILN_GGML_Q4_1, KILN_Q4_1, 20}, {KILN_GGML_Q8_0, KILN_Q8_0, 34}};
    static const int64_t widths[] = {32, 96, 2048};
    for (int ti = 0; ti < 3; ti++)
        for (int wi = 0; wi < 3; wi++) {
            int64_t cols = widths[wi], rows = 5;
            size_t row_bytes = (size_t)cols / 32 * types[ti].block;
            uint8_t *src = malloc(row_bytes * (size_t)rows), *back = malloc(row_bytes);
            random_bytes(&r, src, row_bytes * (size_t)rows);
            kiln_qmatrix a, b;
            kiln_err e = {0};
            CHECK_OK(kiln_qmatrix_alloc(&a, types[ti].quant, 32, rows, cols, &e), &e);
            CHECK_OK(kiln_qmatrix_alloc(&b, types[ti].quant, 32, rows, cols, &e), &e);
            /* b starts from garbage: the fast repack must set every bit */
            random_bytes(&r, (uint8_t *)b.qs, kiln_qmatrix_qs_bytes(&b));
            for (int64_t row = 0; row < rows; row++) {
                const uint8_t *blocks = src + (size_t)row * row_bytes;
                CHECK_OK(kiln_repack_from_gguf_ref(&a, row, types[ti].ggml, blocks, &e), &e);
                CHECK_OK(kiln_repack_from_gguf(&b, row, types[ti].ggml, blocks, &e), &e);
                CHECK_OK(kiln_repack_to_gguf(&b, row, types[ti].ggml, back, &e), &e);
                CHECK(!memcmp(back, blocks, row_bytes), "%s cols %lld row %lld: round trip differs",
                      kiln_quant_name(types[ti].quant), (long long)cols, (long long)row);
            }
            CHECK(!memcmp(a.qs, b.qs, kiln_qmatrix_qs_bytes(&a)), "%s cols %lld: codes differ from the reference",
                  kiln_quant_name(types[ti].quant), (long long)cols);
            CHECK(!memcmp(a.scales, b.scales, kiln_qmatrix_scale_bytes(&a)), "%s cols %lld: scales differ",
                  kiln_quant_name(types[ti].quant), (long long)cols);
            CHECK(!a.mins || !memcmp(a.mins, b.mins, kiln_qmatrix_scale_bytes(&a)), "%s cols %lld: mins differ",
                  kiln_quant_name(types[ti].quant), (long long)cols);
            kiln_qmatrix_free(&a);
            kiln_qmatrix_free(&b);
            free(src);
            free(back);
        }
}

/* ---------------------------------------------------------------- dmat load */

typedef struct spec {
    const char *name;
    int type;
    int64_t cols, rows;
} spec;

static const spec tensors[] = {
    {"q4_0", KILN_GGML_Q4_0, 256, 300}, {"q4_1", KILN_GGML_Q4_1, 96, 130}, {"q8_0", KILN_GGML_Q8_0, 64, 257},
    {"f16", KILN_GGML_F16, 33, 70},     {"f32", KILN_GGML_F32, 41, 65},    {"q4_k", KILN_GGML_Q4_K, 256, 75},
};
#define N_TENSORS (int)(sizeof tensors / sizeof tensors[0])

/* Random finite data of the tensor's type: quantized from random floats where
 * the GGUF quantizer knows the type; Q4_K as random bytes under sane scales. */
static uint8_t *make_data(kiln_rng *r, const spec *s, size_t *bytes)
{
    size_t row_bytes = (size_t)s->cols / kiln_ggml_type_block_elems(s->type) * kiln_ggml_type_block_bytes(s->type);
    *bytes = row_bytes * (size_t)s->rows;
    uint8_t *p = malloc(*bytes);
    float *w = malloc(sizeof *w * (size_t)s->cols);
    for (int64_t row = 0; row < s->rows; row++) {
        uint8_t *dst = p + (size_t)row * row_bytes;
        if (s->type == KILN_GGML_Q4_K) {
            random_bytes(r, dst, row_bytes);
            for (size_t b = 0; b < row_bytes; b += 144) {
                uint16_t d = kiln_f32_to_f16(0.01f + 0.01f * (float)kiln_rng_f64(r));
                uint16_t dmin = kiln_f32_to_f16(0.005f * (float)kiln_rng_f64(r));
                memcpy(dst + b, &d, 2);
                memcpy(dst + b + 2, &dmin, 2);
            }
            continue;
        }
        for (int64_t k = 0; k < s->cols; k++)
            w[k] = kiln_rng_normal(r) * (kiln_rng_below(r, 50) ? 0.05f : 1.0f); /* some outliers */
        kiln_err e = {0};
        CHECK_OK(kiln_gguf_quant_row(s->type, w, s->cols, dst, &e), &e);
    }
    free(w);
    return p;
}

static int write_model(const char *path, kiln_rng *r)
{
    kiln_err e = {0};
    kiln_gguf_writer *w = NULL;
    int rc = kiln_gguf_writer_open(path, &w, &e);
    for (int i = 0; !rc && i < N_TENSORS; i++) {
        int64_t dims[2] = {tensors[i].cols, tensors[i].rows};
        rc = kiln_gguf_w_tensor(w, tensors[i].name, tensors[i].type, 2, dims, &e);
    }
    if (!rc)
        rc = kiln_gguf_w_begin_data(w, &e);
    for (int i = 0; !rc && i < N_TENSORS; i++) {
        size_t n;
        uint8_t *p = make_data(r, &tensors[i], &n);
        rc = kiln_gguf_w_data(w, p, n, &e);
        free(p);
    }
    if (!rc)
        rc = kiln_gguf_writer_finish(w, &e);
    kiln_gguf_writer_free(w);
    CHECK(rc == 0, "writing %s: %s", path, e.msg);
    return rc;
}

/* The conversion done the obvious way, serially: per-code repack, row copies,
 * or decode + kiln_quantize of the whole matrix; the error as max |w - w'| / rms(w). */
static int reference(const kiln_gguf_tensor *t, kiln_qmatrix *q, double *err, kiln_err *e)
{
    int64_t cols = t->dims[0], rows = t->dims[1];
    size_t row_bytes = (size_t)cols / kiln_ggml_type_block_elems(t->type) * kiln_ggml_type_block_bytes(t->type);
    const uint8_t *src = t->data;
    int repack = t->type == KILN_GGML_Q4_0 || t->type == KILN_GGML_Q4_1 || t->type == KILN_GGML_Q8_0;
    int quant = t->type == KILN_GGML_Q4_0 ? KILN_Q4_0 : t->type == KILN_GGML_Q4_1 ? KILN_Q4_1
              : (t->type == KILN_GGML_F16 || t->type == KILN_GGML_F32) ? KILN_F16 : KILN_Q8_0;
    int rc = kiln_qmatrix_alloc(q, quant, quant == KILN_F16 ? 0 : 32, rows, cols, e);
    *err = 0;
    for (int64_t r = 0; !rc && r < rows; r++) {
        if (repack)
            rc = kiln_repack_from_gguf_ref(q, r, t->type, src + (size_t)r * row_bytes, e);
        else if (t->type == KILN_GGML_F16)
            memcpy(q->qs + r * q->words_per_row, src + (size_t)r * row_bytes, row_bytes);
    }
    if (rc || repack || t->type == KILN_GGML_F16)
        return rc;
    float *w = malloc(sizeof *w * (size_t)(rows * cols)), *b = malloc(sizeof *b * (size_t)q->cols_pad);
    for (int64_t r = 0; !rc && r < rows; r++)
        rc = kiln_gguf_dequant_row(t->type, src + (size_t)r * row_bytes, cols, w + r * cols, e);
    if (!rc)
        kiln_quantize(w, q);
    double worst = 0, ss = 0;
    for (int64_t r = 0; !rc && r < rows; r++) {
        kiln_dequantize_row(q, r, b);
        for (int64_t k = 0; k < cols; k++) {
            double a = w[r * cols + k], d = fabs(a - b[k]);
            worst = d > worst ? d : worst;
            ss += a * a;
        }
    }
    *err = worst / sqrt(ss / (double)(rows * cols));
    free(w);
    free(b);
    return rc;
}

/* Device bytes of array `which` (0 qs, 1 scales, 2 mins) of every part vs the reference rows. */
static void compare_parts(kiln_device *d, const kiln_dmat *m, const kiln_qmatrix *ref, const char *what)
{
    for (int i = 0; i < m->n_parts; i++) {
        const kiln_dmat_part *p = &m->part[i];
        for (int which = 0; which < 3; which++) {
            const void *want = which == 0 ? (const void *)ref->qs : which == 1 ? (const void *)ref->scales : ref->mins;
            if (!want)
                continue;
            size_t row_bytes = which == 0 ? (size_t)ref->words_per_row * 4 : (size_t)ref->groups_per_row * 2;
            size_t n = row_bytes * (size_t)p->rows;
            uint8_t *got = malloc(n);
            kiln_err e = {0};
            kiln_buffer *b = which == 0 ? p->qs : which == 1 ? p->scales : p->mins;
            CHECK_OK(kiln_read(d, b, 0, got, n, &e), &e);
            CHECK(!memcmp(got, (const uint8_t *)want + row_bytes * (size_t)p->row0, n),
                  "%s: part %d (rows %lld..%lld): %s differ from the reference", what, i, (long long)p->row0,
                  (long long)(p->row0 + p->rows), which == 0 ? "codes" : which == 1 ? "scales" : "mins");
            free(got);
        }
    }
}

static void test_device(const char *dev_spec, const kiln_gguf *g)
{
    kiln_err e = {0};
    kiln_device *d;
    if (kiln_device_select(dev_spec, &d, &e)) {
        CHECK(0, "%s: %s", dev_spec, e.msg);
        return;
    }
    for (int ti = 0; ti < N_TENSORS; ti++) {
        const kiln_gguf_tensor *t = kiln_gguf_tensor_find(g, tensors[ti].name);
        CHECK(t != NULL, "tensor %s missing", tensors[ti].name);
        if (!t)
            continue;
        kiln_qmatrix ref;
        double ref_err;
        CHECK_OK(reference(t, &ref, &ref_err, &e), &e);
        for (int threads = 1; threads <= 3; threads += 2) {
            kiln_pool *pool = NULL;
            CHECK_OK(kiln_pool_new(threads, &pool, &e), &e);
            for (int split = 0; split < 2; split++)
                for (int keep = 0; keep < 2; keep++) {
                    char what[128];
                    snprintf(what, sizeof what, "%s %s threads %d%s%s", dev_spec, t->name, threads,
                             split ? " in parts" : "", keep ? " keep" : "");
                    kiln_dmat m;
                    kiln_qmatrix host;
                    int rc = kiln_dmat_load(d, g, t, split ? 16384 : 0, 1, pool, &m, keep ? &host : NULL, &e);
                    CHECK(rc == 0, "%s: %s", what, e.msg);
                    if (rc)
                        continue;
                    int64_t row_bytes = ref.words_per_row * 4 > ref.groups_per_row * 2 ? ref.words_per_row * 4
                                                                                       : ref.groups_per_row * 2;
                    int64_t per = split ? 16384 / row_bytes / 64 * 64 : ref.rows;
                    per = per < ref.rows ? per : ref.rows;
                    int want_parts = (int)((ref.rows + per - 1) / per);
                    CHECK(m.n_parts == want_parts && m.quant == ref.quant && m.rows == ref.rows && m.cols == ref.cols,
                          "%s: %d parts (want %d), %s %lld x %lld", what, m.n_parts, want_parts,
                          kiln_quant_name(m.quant), (long long)m.rows, (long long)m.cols);
                    compare_parts(d, &m, &ref, what);
                    CHECK(fabs(m.conv_err - ref_err) <= 1e-9 * (ref_err + 1e-30) && (ref_err > 0) == (t->type ==
                          KILN_GGML_F32 || t->type == KILN_GGML_Q4_K), "%s: conversion error %.17g, want %.17g",
                          what, m.conv_err, ref_err);
                    CHECK(m.note[0] != 0, "%s: no note", what);
                    if (keep && m.n_parts > 1) {
                        CHECK(host.qs && !memcmp(host.qs, ref.qs, kiln_qmatrix_qs_bytes(&ref)),
                              "%s: the kept host copy differs", what);
                    } else if (keep) {
                        CHECK(!host.qs && !host.scales && !host.mins, "%s: a host copy kept without parts", what);
                    }
                    if (keep)
                        kiln_qmatrix_free(&host);
                    kiln_dmat_free(d, &m);
                }
            kiln_pool_free(pool);
        }
        kiln_qmatrix_free(&ref);
    }
    kiln_device_close(d);
}

/* ---------------------------------------------------------------- model load */

/* Replaces the first occurrence of `from` in the file by `to` (same length). */
static int patch_file(const char *src, const char *dst, const char *const *from, const char *const *to, int n)
{
    FILE *f = fopen(src, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)sz);
    size_t got = fread(p, 1, (size_t)sz, f);
    fclose(f);
    int rc = got == (size_t)sz ? 0 : -1;
    for (int i = 0; !rc && i < n; i++) {
        size_t l = strlen(from[i]);
        char *hit = memmem(p, (size_t)sz, from[i], l);
        if (!hit || strlen(to[i]) != l)
            rc = -1;
        else
            memcpy(hit, to[i], l);
    }
    if (!rc && (!(f = fopen(dst, "wb")) || fwrite(p, 1, (size_t)sz, f) != (size_t)sz))
        rc = -1;
    if (f)
        fclose(f);
    free(p);
    return rc;
}

static void expect_load_error(kiln_device *d, const char *path, uint64_t max_part_bytes, int want_rc,
                              const char *want)
{
    kiln_model m;
    kiln_err e = {0};
    kiln_model_opts o = {.max_part_bytes = max_part_bytes};
    int rc = kiln_model_load(&m, d, path, &o, &e);
    CHECK(rc == want_rc && strstr(e.msg, want), "loading %s: rc %d, '%s' (want %d, '%s')", path, rc, e.msg, want_rc,
          want);
    if (!rc)
        kiln_model_free(&m);
}

static void test_model_load(const char *tmp)
{
    char good[512], bad_tensor[512], bad_tok[512];
    snprintf(good, sizeof good, "%s/kiln-load-model-%d.gguf", tmp, (int)getpid());
    snprintf(bad_tensor, sizeof bad_tensor, "%s/kiln-load-model-%d-tensor.gguf", tmp, (int)getpid());
    snprintf(bad_tok, sizeof bad_tok, "%s/kiln-load-model-%d-tok.gguf", tmp, (int)getpid());
    kiln_err e = {0};
    kiln_synth_opts so = {.preset = "tiny", .quant = KILN_GGML_Q4_1, .seed = 5};
    kiln_device *d = NULL;
    CHECK_OK(kiln_synth_write(good, &so, &e), &e);
    CHECK_OK(kiln_device_select("cpu", &d, &e), &e);
    if (!d)
        return;
    /* the same weights and tokenizer with 1 and 4 threads */
    kiln_model m1, m4;
    kiln_model_opts o1 = {.load_threads = 1}, o4 = {.load_threads = 4};
    int ok1 = kiln_model_load(&m1, d, good, &o1, &e) == 0;
    CHECK(ok1, "load with 1 thread: %s", e.msg);
    int ok4 = kiln_model_load(&m4, d, good, &o4, &e) == 0;
    CHECK(ok4, "load with 4 threads: %s", e.msg);
    if (ok1 && ok4) {
        CHECK(m1.tok && m4.tok && kiln_tokenizer_n_vocab(m4.tok) == m4.cfg.n_vocab, "tokenizer missing or wrong");
        CHECK(m4.load_s > 0 && m4.load_weights_s > 0 && m4.load_tokenizer_s > 0 && m4.load_weights_s <= m4.load_s,
              "load times %g (weights %g, tokenizer %g)", m4.load_s, m4.load_weights_s, m4.load_tokenizer_s);
        kiln_dmat *a = &m1.layers[1].w_down, *b = &m4.layers[1].w_down;
        size_t n = (size_t)(a->rows * a->words_per_row * 4);
        uint8_t *pa = malloc(n), *pb = malloc(n);
        CHECK_OK(kiln_read(d, a->part[0].qs, 0, pa, n, &e), &e);
        CHECK_OK(kiln_read(d, b->part[0].qs, 0, pb, n, &e), &e);
        CHECK(!memcmp(pa, pb, n), "blk.1.ffn_down differs between 1 and 4 load threads");
        free(pa);
        free(pb);
    }
    if (ok1)
        kiln_model_free(&m1);
    if (ok4)
        kiln_model_free(&m4);
    const char *tensor[] = {"blk.1.ffn_up.weight"}, *tensor_to[] = {"blk.1.ffn_uX.weight"};
    const char *tok[] = {"smollm"}, *tok_to[] = {"smollX"};
    CHECK(patch_file(good, bad_tensor, tensor, tensor_to, 1) == 0, "patching %s", good);
    CHECK(patch_file(good, bad_tok, tok, tok_to, 1) == 0, "patching %s", good);
    expect_load_error(d, bad_tensor, 0, KILN_E_FORMAT, "tensor 'blk.1.ffn_up.weight' is missing");
    expect_load_error(d, bad_tok, 0, KILN_E_FORMAT, "pre-tokenizer 'smollX' is not supported");
    expect_load_error(d, good, 100, KILN_E_INVALID, "not even 64 rows fit in one buffer of 100 bytes");
    expect_load_error(d, bad_tok, 100, KILN_E_FORMAT, "pre-tokenizer 'smollX' is not supported");
    kiln_device_close(d);
    unlink(good);
    unlink(bad_tensor);
    unlink(bad_tok);
}

int main(void)
{
    test_pool();
    test_repack();

    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[512];
    snprintf(path, sizeof path, "%s/kiln-load-%d.gguf", tmp, (int)getpid());
    kiln_rng r;
    kiln_rng_seed(&r, 17);
    if (write_model(path, &r) == 0) {
        kiln_err e = {0};
        kiln_gguf *g = NULL;
        CHECK_OK(kiln_gguf_open(path, &g, &e), &e);
        const char *backends[] = {"cpu", "opencl", "vulkan"};
        const char *only = getenv("LOAD_BACKENDS"); /* e.g. "cpu" (the asan run) */
        for (int b = 0; g && b < 3; b++) {
            if (only && !strstr(only, backends[b]))
                continue;
            kiln_backend_kind k;
            kiln_backend_parse(backends[b], &k);
            kiln_backend_status st;
            kiln_backend_probe(k, &st);
            if (!st.available) {
                CHECK(!test_backend_required(backends[b]), "%s required but unavailable: %s", backends[b], st.reason);
                printf("%-8s unavailable: %s\n", backends[b], st.reason);
                continue;
            }
            int before = test_failures;
            test_device(backends[b], g);
            if (test_failures == before)
                printf("%-8s weights loaded bit-exact (6 tensor types, 1 and 3 threads, whole and in parts)\n",
                       backends[b]);
        }
        kiln_gguf_close(g);
    }
    unlink(path);
    test_model_load(tmp);
    return test_result();
}
