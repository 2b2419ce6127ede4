/* kernels/small/small.c - the small kernels of a decode step: embedding
 * gather, SiLU-gate multiply, residual add and argmax.
 *
 * embed_gather: token ids -> f32 rows of a (quantized) embedding table.
 *   slots 0 qs, 1 scales, 2 mins (kiln_qmatrix arrays, kernels/quant.h; dummy
 *   4-byte buffers where the format has none), 3 ids (i32 [n]), 4 out (f32
 *   [n][dim]). Shape: m = n ids, k = dim, n = vocab rows, quant (q4f16_1,
 *   q4_0, q4_1, q8_0, f16), group. An id outside [0, vocab) gives a zero row.
 *   Signature "bbbbbiiiiiii": qs, scales, mins, ids, out, n, dim, vocab, wpr,
 *   gpr, quant, group. Values are bit-exact (see dequant.c): KILN_CMP_EXACT.
 *   Space: wg (one element per thread). cpu: one id per workgroup.
 *   KILN_TEST_BREAK=1: the first id reads row id-1 (id+1 for id 0).
 * silu_mul: out = silu(gate) * up = gate / (1 + exp(-gate)) * up, f32 [m].
 *   slots 0 gate, 1 up, 2 out; signature "bbbi" (n). Space: wg, ept.
 *   KILN_TEST_BREAK=1: element 0 uses up[1].
 * residual_add: x += y, f32 [m]; slots 0 x (INOUT), 1 y; signature "bbi".
 *   Space: wg, ept. Exact (one f32 add). KILN_TEST_BREAK=1: x[0] += y[1].
 * argmax: f32 logits [n] -> u32 index of the largest, ties to the lowest
 *   index; slots 0 logits, 1 out (u32 [1]). Two steps: argmax_partial, one
 *   workgroup per chunk of logits -> (value, index) pairs in scratch, then
 *   argmax_final over the pairs. Signatures "bbii" (logits, part, n, chunk)
 *   and "bbi" (part, out, nblocks). Space: wg, chunk. Exact.
 *   KILN_TEST_BREAK=1: the final index is written + 1.
 * The cpu backend keeps the GPU parameters at their defaults, except chunk. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dequant/dequant.h"
#include "kernels/quant_ilv.h"
#include "kernels/kernel.h"
#include "kernels/sources.h"
#include "util/f16.h"
#include "util/rng.h"

extern const kiln_kernel kiln_kernel_embed_gather;
extern const kiln_kernel kiln_kernel_silu_mul;
extern const kiln_kernel kiln_kernel_residual_add;
extern const kiln_kernel kiln_kernel_argmax;

static int put(kiln_shape *out, int max, int n, kiln_shape s)
{
    if (n < max)
        out[n] = s;
    return n + 1;
}

static int wg_ok(const kiln_param *ps, int np, const kiln_config *c, const kiln_fingerprint *fp, const char *cpu_free,
                 char *why, size_t n)
{
    for (int i = 0; i < np; i++) {
        if (fp->backend == KILN_CPU && c->v[i] != ps[i].def && !(cpu_free && strcmp(ps[i].name, cpu_free) == 0)) {
            snprintf(why, n, "%s applies to GPU backends only (cpu: %d)", ps[i].name, ps[i].def);
            return 0;
        }
        if (fp->backend != KILN_CPU && strcmp(ps[i].name, "wg") == 0 && fp->max_workgroup &&
            (uint32_t)c->v[i] > fp->max_workgroup) {
            snprintf(why, n, "wg %d > device max %u", c->v[i], fp->max_workgroup);
            return 0;
        }
    }
    return 1;
}

static void grid_1d(kiln_plan_step *st, int64_t threads, int wg)
{
    int64_t nwg = (threads + wg - 1) / wg;
    if (nwg < 1)
        nwg = 1;
    st->local[0] = (uint32_t)wg;
    st->grid[0] = (uint32_t)(nwg < 32768 ? nwg : 32768);
    st->grid[1] = (uint32_t)((nwg + 32767) / 32768);
    st->grid[2] = 1;
}

/* ================================================================ embed_gather */

static const kiln_param emb_params[] = {
    {"wg", "WG", "threads per workgroup, one output element each (GPU)", 4, {32, 64, 128, 256}, 64},
};

static int emb_shape_ok(const kiln_shape *s, char *why, size_t n)
{
    if (s->quant != KILN_F16) {
        if (s->quant != KILN_Q4F16_1 && s->quant != KILN_Q4_0 && s->quant != KILN_Q4_1 && s->quant != KILN_Q8_0) {
            snprintf(why, n, "quant %s not supported", kiln_quant_name(s->quant));
            return 0;
        }
        if ((s->group != 32 && s->group != 128) || (s->quant == KILN_Q8_0 && s->group != 32)) {
            snprintf(why, n, "group %d (32 or 128; q8_0: 32)", s->group);
            return 0;
        }
    }
    if (s->m < 1 || s->k < 1 || s->n < 1 || s->m * s->k > (int64_t)1 << 30 || s->n * s->k > (int64_t)1 << 31) {
        snprintf(why, n, "ids %lld, dim %lld, vocab %lld out of range", (long long)s->m, (long long)s->k,
                 (long long)s->n);
        return 0;
    }
    return 1;
}

static void emb_shape_key(const kiln_shape *s, char *buf, size_t n)
{
    char ilv[16] = "";
    if (s->ilv > 1)
        snprintf(ilv, sizeof ilv, ".ilv%d", s->ilv);
    snprintf(buf, n, "ids%lld.dim%lld.vocab%lld.%s.g%d%s", (long long)s->m, (long long)s->k, (long long)s->n,
             kiln_quant_name(s->quant), s->quant == KILN_F16 ? 0 : s->group, ilv);
}

static kiln_shape EMB(int64_t ids, int64_t dim, int64_t vocab, int q, int g)
{
    return (kiln_shape){.m = ids, .k = dim, .n = vocab, .quant = q, .group = g};
}

static int emb_shapes(int which, kiln_shape *out, int max)
{
    int n = 0;
    if (which == KILN_SHAPES_QUICK) {
        n = put(out, max, n, EMB(1, 576, 300, KILN_Q4_1, 32));
        n = put(out, max, n, EMB(5, 256, 1000, KILN_Q4F16_1, 128));
        n = put(out, max, n, EMB(3, 100, 77, KILN_Q8_0, 32));
        n = put(out, max, n, EMB(4, 33, 50, KILN_F16, 0));
        n = put(out, max, n, EMB(2, 200, 64, KILN_Q4_0, 32));
    } else if (which == KILN_SHAPES_TUNE) {
        n = put(out, max, n, EMB(1, 4096, 32000, KILN_Q4F16_1, 32));
        n = put(out, max, n, EMB(16, 4096, 32000, KILN_Q4F16_1, 32));
    } else {
        n = put(out, max, n, EMB(1, 4096, 32000, KILN_Q4F16_1, 32)); /* Llama-2-7B */
        n = put(out, max, n, EMB(9, 4096, 32000, KILN_Q4_0, 128));
        n = put(out, max, n, EMB(7, 576, 49152, KILN_Q4_1, 32));     /* SmolLM2 (tied) */
        n = put(out, max, n, EMB(3, 576, 49152, KILN_Q8_0, 32));
        n = put(out, max, n, EMB(2, 1536, 5000, KILN_F16, 0));
        n = put(out, max, n, EMB(5, 1001, 333, KILN_Q4_1, 128));     /* odd sizes */
        /* a tied table interleaved for the LM head's gemv (cpu) */
        kiln_shape il = EMB(6, 576, 1001, KILN_Q8_0, 32);
        il.ilv = 16;
        n = put(out, max, n, il);
        il = EMB(3, 200, 77, KILN_Q4_1, 32);
        il.ilv = 4;
        n = put(out, max, n, il);
    }
    return n < max ? n : max;
}

static int emb_config_valid(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n)
{
    if (s->ilv > 1 && (fp->backend != KILN_CPU || s->quant == KILN_F16 || !kiln_ilv_valid(s->ilv))) {
        snprintf(why, n, "a table in layout ilv %d is read on the cpu only (int4/q8)", s->ilv);
        return 0;
    }
    return emb_shape_ok(s, why, n) && wg_ok(emb_params, 1, c, fp, NULL, why, n);
}

static int emb_problem_init(kiln_problem *p, const kiln_shape *s, uint64_t seed, kiln_err *e)
{
    kiln_err own = {0};
    if (!e) /* kiln_problem_add returns no code: it reaches us through e, a local when the caller passed none */
        e = &own;
    char why[128];
    if (!emb_shape_ok(s, why, sizeof why))
        return kiln_fail(e, KILN_E_INVALID, "embed_gather: bad shape: %s", why);
    memset(p, 0, sizeof *p);
    p->shape = *s;
    kiln_shape t = {.m = s->n, .k = s->k, .quant = s->quant, .group = s->group};
    int64_t cols_pad, wpr, gpr;
    kiln_dq_layout(&t, &cols_pad, &wpr, &gpr);
    int f16 = s->quant == KILN_F16, has_min = s->quant == KILN_Q4_1;
    /* a table interleaved by rows (the tied LM head in gemv's layout) holds
     * its padding rows too; it is generated row-major and repacked */
    int ilv = s->ilv > 1 && !f16 ? s->ilv : 1;
    int64_t rows = kiln_ilv_rows(t.m, ilv);
    kiln_problem_buf *bq = kiln_problem_add(p, "qs", KILN_IN, (size_t)(rows * wpr) * 4, KILN_CMP_NONE, 0, e);
    kiln_problem_buf *bs = bq ? kiln_problem_add(p, "scales", KILN_IN, f16 ? 4 : (size_t)(rows * gpr) * 2,
                                                 KILN_CMP_NONE, 0, e)
                              : NULL;
    kiln_problem_buf *bm = bs ? kiln_problem_add(p, "mins", KILN_IN, has_min ? (size_t)(rows * gpr) * 2 : 4,
                                                 KILN_CMP_NONE, 0, e)
                              : NULL;
    kiln_problem_buf *bi = bm ? kiln_problem_add(p, "ids", KILN_IN, (size_t)s->m * 4, KILN_CMP_NONE, 0, e) : NULL;
    /* exact: each output is one exact product (+ one add for q4_1), or an f16 value */
    kiln_problem_buf *bo = bi ? kiln_problem_add(p, "out", KILN_OUT, (size_t)(s->m * s->k) * 4, KILN_CMP_EXACT, 0, e)
                              : NULL;
    if (!bo) {
        kiln_problem_free(p);
        return e->code;
    }
    kiln_rng rng;
    kiln_rng_seed(&rng, seed * 77 + 5);
    if (f16) {
        uint16_t *h = bq->host;
        for (int64_t i = 0; i < t.m * wpr * 2; i++)
            h[i] = kiln_f32_to_f16(kiln_rng_normal(&rng));
        memset(bs->host, 0x5A, 4);
    } else {
        kiln_dq_random(&t, bq->host, bs->host, has_min ? bm->host : NULL, seed * 0x9E3779B97F4A7C15ull + 3);
    }
    if (!has_min)
        memset(bm->host, 0x5A, 4);
    int32_t *ids = bi->host;
    for (int64_t i = 0; i < s->m; i++)
        ids[i] = (int32_t)kiln_rng_below(&rng, (uint32_t)s->n);
    if (s->m >= 2) { /* the table's first and last rows */
        ids[s->m - 1] = (int32_t)(s->n - 1);
        ids[s->m / 2] = 0;
    }
    float *out = bo->expect;
    for (int64_t i = 0; i < s->m; i++) {
        int64_t r = ids[i];
        for (int64_t c = 0; c < s->k; c++) {
            if (f16)
                out[i * s->k + c] = kiln_f16_to_f32(((const uint16_t *)bq->host)[r * wpr * 2 + c]);
            else
                out[i * s->k + c] =
                    kiln_dq_value(s->quant, s->group, (const uint32_t *)bq->host + r * wpr,
                                  (const uint16_t *)bs->host + r * gpr,
                                  has_min ? (const uint16_t *)bm->host + r * gpr : NULL, c);
        }
    }
    if (ilv > 1) {
        uint32_t *q = malloc(bq->bytes);
        uint16_t *sc = malloc(bs->bytes), *mn = has_min ? malloc(bm->bytes) : NULL;
        if (!q || !sc || (has_min && !mn)) {
            free(q);
            free(sc);
            free(mn);
            kiln_problem_free(p);
            return kiln_fail(e, KILN_E_NOMEM, "embed_gather: no memory");
        }
        kiln_ilv_pack_raw(bq->host, bs->host, has_min ? bm->host : NULL, t.m, wpr, gpr, ilv, q, sc, mn);
        memcpy(bq->host, q, bq->bytes);
        memcpy(bs->host, sc, bs->bytes);
        if (has_min)
            memcpy(bm->host, mn, bm->bytes);
        free(q);
        free(sc);
        free(mn);
    }
    return 0;
}

static int emb_plan(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_err *e)
{
    char why[128];
    if (!emb_shape_ok(s, why, sizeof why))
        return kiln_fail(e, KILN_E_INVALID, "embed_gather: %s", why);
    memset(out, 0, sizeof *out);
    kiln_shape t = {.m = s->n, .k = s->k, .quant = s->quant, .group = s->group};
    int64_t cols_pad, wpr, gpr;
    kiln_dq_layout(&t, &cols_pad, &wpr, &gpr);
    kiln_plan_step *st = &out->steps[0];
    st->source = "small";
    st->entry = be == KILN_CPU ? "embed_gather_cpu" : "embed_gather";
    st->signature = "bbbbbiiiiiii";
    kiln_plan_config_defines(st, &kiln_kernel_embed_gather, c);
    if (be == KILN_CPU) {
        st->local[0] = 1;
        st->grid[0] = (uint32_t)s->m;
        st->grid[1] = st->grid[2] = 1;
    } else {
        grid_1d(st, s->m * s->k, c->v[0]);
    }
    for (int i = 0; i < 5; i++)
        kiln_plan_slot(st, i);
    kiln_plan_i32(st, (int32_t)s->m);
    kiln_plan_i32(st, (int32_t)s->k);
    kiln_plan_i32(st, (int32_t)s->n);
    kiln_plan_i32(st, (int32_t)wpr);
    kiln_plan_i32(st, (int32_t)gpr);
    kiln_plan_i32(st, s->quant);
    kiln_plan_i32(st, s->group);
    if (be == KILN_CPU)
        kiln_plan_define(st, "ILV", s->ilv > 1 ? s->ilv : 1);
    out->n_steps = 1;
    return 0;
}

static double emb_bytes(const kiln_shape *s)
{
    double per = s->quant == KILN_F16 ? 2 : s->quant == KILN_Q8_0 ? 1 + 2.0 / 32 : 0.5 + 2.0 / s->group;
    return (double)s->m * s->k * (per + 4) + 4.0 * s->m;
}
static double emb_flops(const kiln_shape *s) { return (double)s->m * s->k; }

const kiln_kernel kiln_kernel_embed_gather = {
    .name = "embed_gather",
    .doc = "token ids -> f32 embedding rows from a q4/q8/f16 table, bit-exact",
    .params = emb_params,
    .n_params = 1,
    .n_slots = 5,
    .shapes = emb_shapes,
    .shape_key = emb_shape_key,
    .config_valid = emb_config_valid,
    .problem_init = emb_problem_init,
    .plan = emb_plan,
    .bytes = emb_bytes,
    .flops = emb_flops,
};

/* ================================================================ silu_mul, residual_add */

static const kiln_param ew_params[] = {
    {"wg", "WG", "threads per workgroup (GPU)", 4, {64, 128, 256, 512}, 256},
    {"ept", "EPT", "consecutive elements per thread (GPU)", 3, {1, 2, 4}, 1},
};
#define CPU_CHUNK 4096 /* elements per cpu workgroup */

static int ew_shape_ok(const kiln_shape *s, char *why, size_t n)
{
    if (s->m < 1 || s->m > (int64_t)1 << 30) {
        snprintf(why, n, "element count %lld out of range", (long long)s->m);
        return 0;
    }
    return 1;
}

static void ew_shape_key(const kiln_shape *s, char *buf, size_t n) { snprintf(buf, n, "n%lld", (long long)s->m); }

static int ew_shapes(int which, kiln_shape *out, int max, int is_silu)
{
    int n = 0;
#define EW(m_) ((kiln_shape){.m = (m_), .quant = KILN_F32})
    if (which == KILN_SHAPES_QUICK) {
        n = put(out, max, n, EW(2)); /* the break needs a second element */
        n = put(out, max, n, EW(1536));
        n = put(out, max, n, EW(4097));
        n = put(out, max, n, EW(3 * 576 + 5));
    } else if (which == KILN_SHAPES_TUNE) {
        n = put(out, max, n, EW(is_silu ? 11008 : 4096)); /* Llama-7B decode */
        n = put(out, max, n, EW(is_silu ? 8 * 11008 : 8 * 4096));
    } else {
        n = put(out, max, n, EW(4096));
        n = put(out, max, n, EW(11008));
        n = put(out, max, n, EW(14336));       /* Llama-3-8B n_ff */
        n = put(out, max, n, EW(576));
        n = put(out, max, n, EW(1536));
        n = put(out, max, n, EW(16 * 11008));  /* prefill chunk */
        n = put(out, max, n, EW(1001));
        n = put(out, max, n, EW(7));
    }
#undef EW
    return n < max ? n : max;
}
static int silu_shapes(int which, kiln_shape *out, int max) { return ew_shapes(which, out, max, 1); }
static int res_shapes(int which, kiln_shape *out, int max) { return ew_shapes(which, out, max, 0); }

static int ew_config_valid(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n)
{
    return ew_shape_ok(s, why, n) && wg_ok(ew_params, 2, c, fp, NULL, why, n);
}

static void ew_grid(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan_step *st)
{
    if (be == KILN_CPU) {
        st->local[0] = 1;
        st->grid[0] = (uint32_t)((s->m + CPU_CHUNK - 1) / CPU_CHUNK);
        st->grid[1] = st->grid[2] = 1;
    } else {
        grid_1d(st, (s->m + c->v[1] - 1) / c->v[1], c->v[0]);
    }
}

/* Budget for silu_mul (max|y - r| / rms(r)): per element the f32 kernel
 * rounds exp (<= 3 + 2|x| ulp in GLSL, |gate| <= 8 here: <= 19 ulp = 1.1e-6
 * relative), the add, the division (2.5 ulp) and two products: <= ~2e-6
 * relative; max|y|/rms(y) is ~4 for these inputs, so ~1e-5 worst. Budget
 * 3e-5. A wrong index replaces an element by an unrelated one: error O(1). */
#define SILU_TOL 3e-5

static int silu_problem_init(kiln_problem *p, const kiln_shape *s, uint64_t seed, kiln_err *e)
{
    kiln_err own = {0};
    if (!e) /* kiln_problem_add returns no code: it reaches us through e, a local when the caller passed none */
        e = &own;
    char why[128];
    if (!ew_shape_ok(s, why, sizeof why))
        return kiln_fail(e, KILN_E_INVALID, "silu_mul: bad shape: %s", why);
    memset(p, 0, sizeof *p);
    p->shape = *s;
    size_t nb = (size_t)s->m * 4;
    kiln_problem_buf *bg = kiln_problem_add(p, "gate", KILN_IN, nb, KILN_CMP_NONE, 0, e);
    kiln_problem_buf *bu = bg ? kiln_problem_add(p, "up", KILN_IN, nb, KILN_CMP_NONE, 0, e) : NULL;
    kiln_problem_buf *bo = bu ? kiln_problem_add(p, "out", KILN_OUT, nb, KILN_CMP_F32, SILU_TOL, e) : NULL;
    if (!bo) {
        kiln_problem_free(p);
        return e->code;
    }
    kiln_rng rng;
    kiln_rng_seed(&rng, seed * 13 + 1);
    float *g = bg->host, *u = bu->host, *o = bo->expect;
    for (int64_t i = 0; i < s->m; i++) {
        g[i] = kiln_rng_uniform(&rng, -8, 8);
        u[i] = kiln_rng_uniform(&rng, -2, 2);
        double gd = g[i];
        o[i] = (float)(gd / (1.0 + exp(-gd)) * u[i]);
    }
    if (s->m == 1)
        u[0] = u[0] == 0 ? 1.0f : u[0];
    return 0;
}

static int silu_plan(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_err *e)
{
    char why[128];
    if (!ew_shape_ok(s, why, sizeof why))
        return kiln_fail(e, KILN_E_INVALID, "silu_mul: %s", why);
    memset(out, 0, sizeof *out);
    kiln_plan_step *st = &out->steps[0];
    st->source = "small";
    st->entry = be == KILN_CPU ? "silu_mul_cpu" : "silu_mul";
    st->signature = "bbbi";
    kiln_plan_config_defines(st, &kiln_kernel_silu_mul, c);
    ew_grid(s, c, be, st);
    for (int i = 0; i < 3; i++)
        kiln_plan_slot(st, i);
    kiln_plan_i32(st, (int32_t)s->m);
    out->n_steps = 1;
    return 0;
}

static double silu_bytes(const kiln_shape *s) { return 12.0 * s->m; }
static double silu_flops(const kiln_shape *s) { return 5.0 * s->m; }

const kiln_kernel kiln_kernel_silu_mul = {
    .name = "silu_mul",
    .doc = "out = silu(gate) * up (the SwiGLU FFN gate), f32",
    .params = ew_params,
    .n_params = 2,
    .n_slots = 3,
    .shapes = silu_shapes,
    .shape_key = ew_shape_key,
    .config_valid = ew_config_valid,
    .problem_init = silu_problem_init,
    .plan = silu_plan,
    .bytes = silu_bytes,
    .flops = silu_flops,
};

static int res_problem_init(kiln_problem *p, const kiln_shape *s, uint64_t seed, kiln_err *e)
{
    kiln_err own = {0};
    if (!e) /* kiln_problem_add returns no code: it reaches us through e, a local when the caller passed none */
        e = &own;
    char why[128];
    if (!ew_shape_ok(s, why, sizeof why))
        return kiln_fail(e, KILN_E_INVALID, "residual_add: bad shape: %s", why);
    memset(p, 0, sizeof *p);
    p->shape = *s;
    size_t nb = (size_t)s->m * 4;
    /* exact: x + y is one correctly rounded f32 add on every device */
    kiln_problem_buf *bx = kiln_problem_add(p, "x", KILN_INOUT, nb, KILN_CMP_EXACT, 0, e);
    kiln_problem_buf *by = bx ? kiln_problem_add(p, "y", KILN_IN, nb, KILN_CMP_NONE, 0, e) : NULL;
    if (!by) {
        kiln_problem_free(p);
        return e->code;
    }
    kiln_rng rng;
    kiln_rng_seed(&rng, seed * 17 + 9);
    float *x = bx->host, *y = by->host, *o = bx->expect;
    for (int64_t i = 0; i < s->m; i++) {
        x[i] = kiln_rng_normal(&rng) * 4;
        y[i] = kiln_rng_normal(&rng);
        o[i] = x[i] + y[i];
    }
    if (s->m == 1 && y[0] == 0)
        y[0] = 1, o[0] = x[0] + 1;
    return 0;
}

static int res_plan(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_err *e)
{
    char why[128];
    if (!ew_shape_ok(s, why, sizeof why))
        return kiln_fail(e, KILN_E_INVALID, "residual_add: %s", why);
    memset(out, 0, sizeof *out);
    kiln_plan_step *st = &out->steps[0];
    st->source = "small";
    st->entry = be == KILN_CPU ? "residual_add_cpu" : "residual_add";
    st->signature = "bbi";
    kiln_plan_config_defines(st, &kiln_kernel_residual_add, c);
    ew_grid(s, c, be, st);
    kiln_plan_slot(st, 0);
    kiln_plan_slot(st, 1);
    kiln_plan_i32(st, (int32_t)s->m);
    out->n_steps = 1;
    return 0;
}

static double res_bytes(const kiln_shape *s) { return 12.0 * s->m; }
static double res_flops(const kiln_shape *s) { return (double)s->m; }

const kiln_kernel kiln_kernel_residual_add = {
    .name = "residual_add",
    .doc = "x += y, f32 (exact)",
    .params = ew_params,
    .n_params = 2,
    .n_slots = 2,
    .shapes = res_shapes,
    .shape_key = ew_shape_key,
    .config_valid = ew_config_valid,
    .problem_init = res_problem_init,
    .plan = res_plan,
    .bytes = res_bytes,
    .flops = res_flops,
};

/* ================================================================ argmax */

enum { A_WG, A_CHUNK };
static const kiln_param am_params[] = {
    {"wg", "WG", "threads per workgroup (GPU)", 4, {64, 128, 256, 512}, 256},
    {"chunk", "CHUNK", "logits per workgroup of the first step (cpu too)", 3, {1024, 4096, 16384}, 4096},
};

static int am_shape_ok(const kiln_shape *s, char *why, size_t n)
{
    if (s->m < 1 || s->m > (int64_t)1 << 30) {
        snprintf(why, n, "n %lld out of range", (long long)s->m);
        return 0;
    }
    return 1;
}

static int am_shapes(int which, kiln_shape *out, int max)
{
    int n = 0;
#define AM(m_) ((kiln_shape){.m = (m_), .quant = KILN_F32})
    if (which == KILN_SHAPES_QUICK) {
        n = put(out, max, n, AM(1));
        n = put(out, max, n, AM(1000));
        n = put(out, max, n, AM(5003));   /* several chunks, partial last one */
        n = put(out, max, n, AM(49152));  /* SmolLM2 vocab */
    } else if (which == KILN_SHAPES_TUNE) {
        n = put(out, max, n, AM(32000));  /* Llama-2 vocab */
        n = put(out, max, n, AM(128256)); /* Llama-3 vocab */
    } else {
        n = put(out, max, n, AM(32000));
        n = put(out, max, n, AM(49152));
        n = put(out, max, n, AM(128256));
        n = put(out, max, n, AM(151936)); /* Qwen2 vocab */
        n = put(out, max, n, AM(100003));
        n = put(out, max, n, AM(7));
    }
#undef AM
    return n < max ? n : max;
}

static int am_config_valid(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n)
{
    if (!am_shape_ok(s, why, n) || !wg_ok(am_params, 2, c, fp, "chunk", why, n))
        return 0;
    int64_t nb = (s->m + c->v[A_CHUNK] - 1) / c->v[A_CHUNK];
    if (nb > 65535) {
        snprintf(why, n, "%lld chunks > 65535", (long long)nb);
        return 0;
    }
    return 1;
}

static int am_problem_init(kiln_problem *p, const kiln_shape *s, uint64_t seed, kiln_err *e)
{
    kiln_err own = {0};
    if (!e) /* kiln_problem_add returns no code: it reaches us through e, a local when the caller passed none */
        e = &own;
    char why[128];
    if (!am_shape_ok(s, why, sizeof why))
        return kiln_fail(e, KILN_E_INVALID, "argmax: bad shape: %s", why);
    memset(p, 0, sizeof *p);
    p->shape = *s;
    kiln_problem_buf *bl = kiln_problem_add(p, "logits", KILN_IN, (size_t)s->m * 4, KILN_CMP_NONE, 0, e);
    kiln_problem_buf *bo = bl ? kiln_problem_add(p, "out", KILN_OUT, 4, KILN_CMP_EXACT, 0, e) : NULL;
    if (!bo) {
        kiln_problem_free(p);
        return e->code;
    }
    kiln_rng rng;
    kiln_rng_seed(&rng, seed * 19 + 2);
    float *l = bl->host, mx = -INFINITY;
    for (int64_t i = 0; i < s->m; i++) {
        l[i] = kiln_rng_normal(&rng) * 3 - 5;
        mx = l[i] > mx ? l[i] : mx;
    }
    /* a tie for the maximum: two positions (in different chunks when n is
     * large), the lower one must win; plus a near-tie just below */
    uint32_t a = kiln_rng_below(&rng, (uint32_t)s->m), b = kiln_rng_below(&rng, (uint32_t)s->m);
    if (a > b) {
        uint32_t t = a;
        a = b;
        b = t;
    }
    l[b] = l[a] = mx + 1;
    if (s->m > 2)
        l[kiln_rng_below(&rng, (uint32_t)s->m)] = nextafterf(mx + 1, -INFINITY);
    l[a] = l[b] = mx + 1;
    uint32_t best = 0;
    for (int64_t i = 1; i < s->m; i++)
        if (l[i] > l[best])
            best = (uint32_t)i;
    memcpy(bo->expect, &best, 4);
    return 0;
}

static int am_plan(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_err *e)
{
    char why[128];
    if (!am_shape_ok(s, why, sizeof why))
        return kiln_fail(e, KILN_E_INVALID, "argmax: %s", why);
    memset(out, 0, sizeof *out);
    int chunk = c->v[A_CHUNK];
    int64_t nb = (s->m + chunk - 1) / chunk;
    uint32_t wg = be == KILN_CPU ? 1 : (uint32_t)c->v[A_WG];
    kiln_plan_step *a = &out->steps[0], *b = &out->steps[1];
    a->source = b->source = "small";
    a->entry = be == KILN_CPU ? "argmax_partial_cpu" : "argmax_partial";
    b->entry = be == KILN_CPU ? "argmax_final_cpu" : "argmax_final";
    a->signature = "bbii";
    b->signature = "bbi";
    kiln_plan_config_defines(a, &kiln_kernel_argmax, c);
    kiln_plan_config_defines(b, &kiln_kernel_argmax, c);
    a->local[0] = b->local[0] = wg;
    a->grid[0] = (uint32_t)nb;
    b->grid[0] = 1;
    a->grid[1] = a->grid[2] = b->grid[1] = b->grid[2] = 1;
    kiln_plan_slot(a, 0);
    kiln_plan_scratch(a, 0);
    kiln_plan_i32(a, (int32_t)s->m);
    kiln_plan_i32(a, chunk);
    kiln_plan_scratch(b, 0);
    kiln_plan_slot(b, 1);
    kiln_plan_i32(b, (int32_t)nb);
    out->n_steps = 2;
    out->n_scratch = 1;
    out->scratch_bytes[0] = (size_t)nb * 8; /* (f32 value, u32 index) per chunk */
    return 0;
}

static void am_shape_key(const kiln_shape *s, char *buf, size_t n) { snprintf(buf, n, "n%lld", (long long)s->m); }
static double am_bytes(const kiln_shape *s) { return 4.0 * s->m + 4; }
static double am_flops(const kiln_shape *s) { return (double)s->m; }

const kiln_kernel kiln_kernel_argmax = {
    .name = "argmax",
    .doc = "index of the largest f32 logit (ties: lowest index), two-stage reduction",
    .params = am_params,
    .n_params = 2,
    .n_slots = 2,
    .shapes = am_shapes,
    .shape_key = am_shape_key,
    .config_valid = am_config_valid,
    .problem_init = am_problem_init,
    .plan = am_plan,
    .bytes = am_bytes,
    .flops = am_flops,
};
