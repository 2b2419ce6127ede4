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
#include "kernels/desc.h"
#include "kernels/quant_ilv.h"
#include "kernels/kernel.h"
#include "kernels/sources.h"
#include "util/f16.h"
#include "util/rng.h"

extern const kiln_kernel kiln_kernel_embed_gather;
extern const kiln_kernel kiln_kernel_silu_mul;
extern const kiln_kernel kiln_kernel_residual_add;
extern const kiln_kernel kiln_kernel_argmax;

/* ================================================================ embed_gather */

static const kiln_param emb_params[] = {
    {"wg", "WG", "threads per workgroup, one output element each (GPU)", 4,
         {32, 64, 128, 256}, 64, KILN_P_GPU | KILN_P_WG},
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

#define EMB(ids, dim, vocab, q, g, ilv_) {.m = (ids), .k = (dim), .n = (vocab), .quant = (q), .group = (g), .ilv = (ilv_)}
static const kiln_shape emb_quick[] = {
    EMB(1, 576, 300, KILN_Q4_1, 32, 0),    EMB(5, 256, 1000, KILN_Q4F16_1, 128, 0), EMB(3, 100, 77, KILN_Q8_0, 32, 0),
    EMB(4, 33, 50, KILN_F16, 0, 0),        EMB(2, 200, 64, KILN_Q4_0, 32, 0),
};
static const kiln_shape emb_tune[] = {
    EMB(1, 4096, 32000, KILN_Q4F16_1, 32, 0),
    EMB(16, 4096, 32000, KILN_Q4F16_1, 32, 0),
};
static const kiln_shape emb_check[] = {
    EMB(1, 4096, 32000, KILN_Q4F16_1, 32, 0), /* Llama-2-7B */
    EMB(9, 4096, 32000, KILN_Q4_0, 128, 0),
    EMB(7, 576, 49152, KILN_Q4_1, 32, 0),     /* SmolLM2 (tied) */
    EMB(3, 576, 49152, KILN_Q8_0, 32, 0),
    EMB(2, 1536, 5000, KILN_F16, 0, 0),
    EMB(5, 1001, 333, KILN_Q4_1, 128, 0),     /* odd sizes */
    /* a tied table interleaved for the LM head's gemv (every backend) */
    EMB(6, 576, 1001, KILN_Q8_0, 32, 16),
    EMB(3, 200, 77, KILN_Q4_1, 32, 4),
};
#undef EMB

static int emb_check_ilv(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n)
{
    (void)c;
    (void)fp;
    if (s->ilv > 1 && (s->quant == KILN_F16 || !kiln_ilv_valid(s->ilv))) {
        snprintf(why, n, "a table in layout ilv %d: int4/q8 formats in tiles of 4, 8 or 16 rows only", s->ilv);
        return 0;
    }
    return 1;
}

/* The table as a matrix (vocab rows of dim) and its row layout. */
static kiln_shape emb_table(const kiln_shape *s, int64_t *wpr, int64_t *gpr)
{
    kiln_shape t = {.m = s->n, .k = s->k, .quant = s->quant, .group = s->group};
    int64_t cols_pad;
    kiln_dq_layout(&t, &cols_pad, wpr, gpr);
    return t;
}

static const kiln_slot emb_slots[] = {
    {"qs", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"scales", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"mins", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"ids", KILN_IN, KILN_CMP_NONE, 0, 0},
    /* exact: each output is one exact product (+ one add for q4_1), or an f16 value */
    {"out", KILN_OUT, KILN_CMP_EXACT, 0, 0},
};

static int emb_sizes(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    (void)cls, (void)seed;
    int64_t wpr, gpr;
    kiln_shape t = emb_table(s, &wpr, &gpr);
    int f16 = s->quant == KILN_F16, has_min = s->quant == KILN_Q4_1;
    /* a table interleaved by rows (the tied LM head in gemv's layout) holds
     * its padding rows too; it is generated row-major and repacked */
    int64_t rows = kiln_ilv_rows(t.m, s->ilv > 1 && !f16 ? s->ilv : 1);
    slot[0].bytes = (size_t)(rows * wpr) * 4;
    slot[1].bytes = f16 ? 4 : (size_t)(rows * gpr) * 2;
    slot[2].bytes = has_min ? (size_t)(rows * gpr) * 2 : 4;
    slot[3].bytes = (size_t)s->m * 4;
    slot[4].bytes = (size_t)(s->m * s->k) * 4;
    return 5;
}

static int emb_fill(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)
{
    (void)cls;
    int64_t wpr, gpr;
    kiln_shape t = emb_table(s, &wpr, &gpr);
    int f16 = s->quant == KILN_F16, has_min = s->quant == KILN_Q4_1;
    int ilv = s->ilv > 1 && !f16 ? s->ilv : 1;
    kiln_problem_buf *bq = &p->bufs[0], *bs = &p->bufs[1], *bm = &p->bufs[2], *bi = &p->bufs[3], *bo = &p->bufs[4];
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

static const kiln_step_desc emb_steps[] = {
    {.source = "small", KILN_ENTRY("embed_gather"), .signature = "bbbbbiiiiiii",
     .args = {KA_SLOT(0), KA_SLOT(1), KA_SLOT(2), KA_SLOT(3), KA_SLOT(4), KA_SHAPE(M), KA_SHAPE(K), KA_SHAPE(N),
              KA_VAL(0), KA_VAL(1), KA_SHAPE(QUANT), KA_SHAPE(GROUP)}},
};

static void emb_launch(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_launch *v)
{
    int64_t wpr, gpr;
    emb_table(s, &wpr, &gpr);
    v->val[0] = (int32_t)wpr;
    v->val[1] = (int32_t)gpr;
    if (be == KILN_CPU) {
        kiln_grid_n(&out->steps[0], s->m, 1); /* one id per workgroup */
        kiln_plan_define(&out->steps[0], "ILV", s->ilv > 1 ? s->ilv : 1);
    } else {
        kiln_grid_1d(&out->steps[0], s->m * s->k, c->v[0]);
        if (s->ilv > 1) /* row-major plans keep their define set */
            kiln_plan_define(&out->steps[0], "ILV", s->ilv);
    }
}

static double emb_bytes(const kiln_shape *s)
{
    double per = s->quant == KILN_F16 ? 2 : s->quant == KILN_Q8_0 ? 1 + 2.0 / 32 : 0.5 + 2.0 / s->group;
    return (double)s->m * s->k * (per + 4) + 4.0 * s->m;
}
static double emb_flops(const kiln_shape *s) { return (double)s->m * s->k; }

static const kiln_kernel_desc emb_desc = {
    .kernel = &kiln_kernel_embed_gather,
    .shapes = {KILN_SHAPE_LIST(emb_check), KILN_SHAPE_LIST(emb_tune), KILN_SHAPE_LIST(emb_quick)},
    .shape_ok = emb_shape_ok,
    .check = emb_check_ilv,
    .slots = emb_slots,
    .sizes = emb_sizes,
    .fill = emb_fill,
    .steps = emb_steps,
    .n_steps = 1,
    .launch = emb_launch,
};

KILN_KERNEL_FROM_DESC(embed_gather, emb_desc, .doc = "token ids -> f32 embedding rows from a q4/q8/f16 table, bit-exact",
                      .params = emb_params, .n_params = 1, .n_slots = 5, .shape_key = emb_shape_key,
                      .bytes = emb_bytes, .flops = emb_flops);

/* ================================================================ silu_mul, residual_add */

static const kiln_param ew_params[] = {
    {"wg", "WG", "threads per workgroup (GPU)", 4, {64, 128, 256, 512}, 256, KILN_P_GPU | KILN_P_WG},
    {"ept", "EPT", "consecutive elements per thread (GPU)", 3, {1, 2, 4}, 1, KILN_P_GPU},
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

#define EW(m_) {.m = (m_), .quant = KILN_F32}
static const kiln_shape ew_quick[] = {EW(2) /* the break needs a second element */, EW(1536), EW(4097),
                                      EW(3 * 576 + 5)};
static const kiln_shape silu_tune[] = {EW(11008) /* Llama-7B decode */, EW(8 * 11008)};
static const kiln_shape res_tune[] = {EW(4096) /* Llama-7B decode */, EW(8 * 4096)};
static const kiln_shape ew_check[] = {
    EW(4096), EW(11008), EW(14336) /* Llama-3-8B n_ff */, EW(576), EW(1536), EW(16 * 11008) /* prefill chunk */,
    EW(1001), EW(7),
};
#undef EW

static void ew_launch(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_launch *v)
{
    (void)v;
    if (be == KILN_CPU)
        kiln_grid_n(&out->steps[0], (s->m + CPU_CHUNK - 1) / CPU_CHUNK, 1);
    else
        kiln_grid_1d(&out->steps[0], (s->m + c->v[1] - 1) / c->v[1], c->v[0]);
}

/* Budget for silu_mul (max|y - r| / rms(r)): per element the f32 kernel
 * rounds exp (<= 3 + 2|x| ulp in GLSL, |gate| <= 8 here: <= 19 ulp = 1.1e-6
 * relative), the add, the division (2.5 ulp) and two products: <= ~2e-6
 * relative; max|y|/rms(y) is ~4 for these inputs, so ~1e-5 worst. Budget
 * 3e-5. A wrong index replaces an element by an unrelated one: error O(1). */
#define SILU_TOL 3e-5

static const kiln_slot silu_slots[] = {
    {"gate", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"up", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"out", KILN_OUT, KILN_CMP_F32, SILU_TOL, 0},
};

/* Every slot of an elementwise kernel is f32 [m]. */
static int ew_sizes(const kiln_shape *s, kiln_slot *slot, int n_slots)
{
    for (int i = 0; i < n_slots; i++)
        slot[i].bytes = (size_t)s->m * 4;
    return n_slots;
}
static int silu_sizes(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    (void)cls, (void)seed;
    return ew_sizes(s, slot, 3);
}

static int silu_fill(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)
{
    (void)cls, (void)e;
    kiln_rng rng;
    kiln_rng_seed(&rng, seed * 13 + 1);
    float *g = p->bufs[0].host, *u = p->bufs[1].host, *o = p->bufs[2].expect;
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

static const kiln_step_desc silu_steps[] = {
    {.source = "small", KILN_ENTRY("silu_mul"), .signature = "bbbi",
     .args = {KA_SLOT(0), KA_SLOT(1), KA_SLOT(2), KA_SHAPE(M)}},
};

static double silu_bytes(const kiln_shape *s) { return 12.0 * s->m; }
static double silu_flops(const kiln_shape *s) { return 5.0 * s->m; }

static const kiln_kernel_desc silu_desc = {
    .kernel = &kiln_kernel_silu_mul,
    .shapes = {KILN_SHAPE_LIST(ew_check), KILN_SHAPE_LIST(silu_tune), KILN_SHAPE_LIST(ew_quick)},
    .shape_ok = ew_shape_ok,
    .slots = silu_slots,
    .sizes = silu_sizes,
    .fill = silu_fill,
    .steps = silu_steps,
    .n_steps = 1,
    .launch = ew_launch,
};

KILN_KERNEL_FROM_DESC(silu_mul, silu_desc, .doc = "out = silu(gate) * up (the SwiGLU FFN gate), f32",
                      .params = ew_params, .n_params = 2, .n_slots = 3, .shape_key = ew_shape_key,
                      .bytes = silu_bytes, .flops = silu_flops);

static const kiln_slot res_slots[] = {
    /* exact: x + y is one correctly rounded f32 add on every device */
    {"x", KILN_INOUT, KILN_CMP_EXACT, 0, 0},
    {"y", KILN_IN, KILN_CMP_NONE, 0, 0},
};
static int res_sizes(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    (void)cls, (void)seed;
    return ew_sizes(s, slot, 2);
}

static int res_fill(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)
{
    (void)cls, (void)e;
    kiln_rng rng;
    kiln_rng_seed(&rng, seed * 17 + 9);
    float *x = p->bufs[0].host, *y = p->bufs[1].host, *o = p->bufs[0].expect;
    for (int64_t i = 0; i < s->m; i++) {
        x[i] = kiln_rng_normal(&rng) * 4;
        y[i] = kiln_rng_normal(&rng);
        o[i] = x[i] + y[i];
    }
    if (s->m == 1 && y[0] == 0)
        y[0] = 1, o[0] = x[0] + 1;
    return 0;
}

static const kiln_step_desc res_steps[] = {
    {.source = "small", KILN_ENTRY("residual_add"), .signature = "bbi",
     .args = {KA_SLOT(0), KA_SLOT(1), KA_SHAPE(M)}},
};

static double res_bytes(const kiln_shape *s) { return 12.0 * s->m; }
static double res_flops(const kiln_shape *s) { return (double)s->m; }

static const kiln_kernel_desc res_desc = {
    .kernel = &kiln_kernel_residual_add,
    .shapes = {KILN_SHAPE_LIST(ew_check), KILN_SHAPE_LIST(res_tune), KILN_SHAPE_LIST(ew_quick)},
    .shape_ok = ew_shape_ok,
    .slots = res_slots,
    .sizes = res_sizes,
    .fill = res_fill,
    .steps = res_steps,
    .n_steps = 1,
    .launch = ew_launch,
};

KILN_KERNEL_FROM_DESC(residual_add, res_desc, .doc = "x += y, f32 (exact)", .params = ew_params, .n_params = 2,
                      .n_slots = 2, .shape_key = ew_shape_key, .bytes = res_bytes, .flops = res_flops);

/* ================================================================ argmax */

enum { A_WG, A_CHUNK };
static const kiln_param am_params[] = {
    {"wg", "WG", "threads per workgroup (GPU)", 4, {64, 128, 256, 512}, 256, KILN_P_GPU | KILN_P_WG},
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

#define AM(m_) {.m = (m_), .quant = KILN_F32}
static const kiln_shape am_quick[] = {
    AM(1), AM(1000), AM(5003) /* several chunks, partial last one */, AM(49152) /* SmolLM2 vocab */,
};
static const kiln_shape am_tune[] = {AM(32000) /* Llama-2 vocab */, AM(128256) /* Llama-3 vocab */};
static const kiln_shape am_check[] = {
    AM(32000), AM(49152), AM(128256), AM(151936) /* Qwen2 vocab */, AM(100003), AM(7),
};
#undef AM

static int am_nblocks(const kiln_shape *s, const kiln_config *c)
{
    return (int)((s->m + c->v[A_CHUNK] - 1) / c->v[A_CHUNK]);
}

static int am_check_chunks(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n)
{
    (void)fp;
    int nb = am_nblocks(s, c);
    if (nb > 65535) {
        snprintf(why, n, "%d chunks > 65535", nb);
        return 0;
    }
    return 1;
}

static const kiln_slot am_slots[] = {
    {"logits", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"out", KILN_OUT, KILN_CMP_EXACT, 0, 0},
};

static int am_sizes(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    (void)cls, (void)seed;
    slot[0].bytes = (size_t)s->m * 4;
    slot[1].bytes = 4;
    return 2;
}

static int am_fill(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)
{
    (void)cls, (void)e;
    kiln_rng rng;
    kiln_rng_seed(&rng, seed * 19 + 2);
    float *l = p->bufs[0].host, mx = -INFINITY;
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
    memcpy(p->bufs[1].expect, &best, 4);
    return 0;
}

/* Two steps: (value, index) of each chunk into scratch 0, then the winner. */
static const kiln_step_desc am_steps[] = {
    {.source = "small", KILN_ENTRY("argmax_partial"), .signature = "bbii",
     .args = {KA_SLOT(0), KA_SCRATCH(0), KA_SHAPE(M), KA_VAL(0)}},
    {.source = "small", KILN_ENTRY("argmax_final"), .signature = "bbi", .args = {KA_SCRATCH(0), KA_SLOT(1), KA_VAL(1)}},
};

static void am_launch(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_launch *v)
{
    int nb = am_nblocks(s, c);
    uint32_t wg = be == KILN_CPU ? 1 : (uint32_t)c->v[A_WG];
    kiln_grid_n(&out->steps[0], nb, wg);
    kiln_grid_n(&out->steps[1], 1, wg);
    out->n_scratch = 1;
    out->scratch_bytes[0] = (size_t)nb * 8; /* (f32 value, u32 index) per chunk */
    v->val[0] = c->v[A_CHUNK];
    v->val[1] = nb;
}

static void am_shape_key(const kiln_shape *s, char *buf, size_t n) { snprintf(buf, n, "n%lld", (long long)s->m); }
static double am_bytes(const kiln_shape *s) { return 4.0 * s->m + 4; }
static double am_flops(const kiln_shape *s) { return (double)s->m; }

static const kiln_kernel_desc am_desc = {
    .kernel = &kiln_kernel_argmax,
    .shapes = {KILN_SHAPE_LIST(am_check), KILN_SHAPE_LIST(am_tune), KILN_SHAPE_LIST(am_quick)},
    .shape_ok = am_shape_ok,
    .check = am_check_chunks,
    .slots = am_slots,
    .sizes = am_sizes,
    .fill = am_fill,
    .steps = am_steps,
    .n_steps = 2,
    .launch = am_launch,
};

KILN_KERNEL_FROM_DESC(argmax, am_desc, .doc = "index of the largest f32 logit (ties: lowest index), two-stage reduction",
                      .params = am_params, .n_params = 2, .n_slots = 2, .shape_key = am_shape_key,
                      .bytes = am_bytes, .flops = am_flops);
