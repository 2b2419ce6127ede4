/* kernels/gemm_int4/gemm_int4.c - Y = X W^T for a batch of N tokens (prefill),
 * W group-quantized along K in gemv_int4's layout.
 *
 * Y[n][m] = sum_k W[m][k] * X[n][k] for n in [0, N), m in [0, M).
 * Slots: 0 qs (u32 words, kernels/quant.h layout), 1 scales (f16), 2 mins
 * (f16; q4_1 only, a 4-byte dummy otherwise), 3 X (f32 [N][K], token-major),
 * 4 Y (f32 [N][M], token-major).
 * Shape: m, k, n (tokens), quant (q4f16_1, q4_0, q4_1, q8_0, f16), group.
 * Scalars: M, K, words_per_row, groups_per_row, N. Defines: QUANT, GROUP and
 * the schedule (WG, ROWS, TN, VEC, UNROLL, REDUCE).
 *
 * GPU schedule: a workgroup of WG threads owns a tile of ROWS rows x TN
 * tokens (grid = ceil(M/ROWS) x ceil(N/TN)). Its threads stride over the
 * row's words VEC at a time (a VEC never straddles a group: one scale serves
 * it), UNROLL steps per loop trip; each weight element is dequantized once
 * and multiplied with the TN tokens' x (acc[ROWS][TN] per thread), then the
 * workgroup reduces the ROWS*TN sums through shared memory (REDUCE 0,
 * red[ROWS*TN*WG]) or subgroup adds (REDUCE 1). Rows/tokens past M/N are
 * clamped for loads and never written.
 * CPU schedule: ROWS rows per task (grid = ceil(M/ROWS)); each row is
 * dequantized to f32 once (SIMD) and dotted with blocks of TN token rows,
 * two rows x TN tokens per pass (AVX-512 / AVX2 FMA, scalar fallback).
 *
 * Test hooks (tests only): KILN_TEST_BREAK reads x[n][1] in place of
 * x[n][0]; KILN_TEST_CRASH / KILN_TEST_HANG make the cpu entry crash / spin. */
#include "kernels/gemm_int4/gemm_int4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/act_q8.h"
#include "kernels/desc.h"
#include "kernels/gemv_int4/gemv_int4.h"
#include "kernels/quant_ilv.h"

static const kiln_param params[] = {
    {"wg", "WG", "threads per workgroup (gpu)", 4, {32, 64, 128, 256}, 64},
    {"rows", "ROWS", "rows per workgroup (cpu: rows per task; act 1: a multiple of the matrix's ilv)", 6,
     {1, 2, 4, 8, 16, 32}, 4},
    {"tokens", "TN", "tokens per workgroup (cpu: token block; act 1: tokens per pass over a weight tile)", 4,
     {1, 2, 4, 8}, 4},
    {"vec", "VEC", "u32 words loaded per thread per step (gpu)", 3, {1, 2, 4}, 1},
    {"unroll", "UNROLL", "loop unroll factor (gpu)", 2, {1, 2}, 1},
    {"reduce", "REDUCE", "0 shared-memory tree, 1 subgroup adds (gpu)", 2, {0, 1}, 0},
    {"layout", "LAYOUT",
     "0 a workgroup shares each tile's K (gpu), 1 one invocation per row x TN tokens, x uniform across the "
     "subgroup (drivers that run invocations in CPU SIMD lanes: lavapipe, PoCL)",
     2, {0, 1}, 0},
    /* act 1 changes the reference (x rounded per token and block of 32):
     * its own data class */
    {"act", "ACT",
     "activations: 0 f32 (rows dequantized, FMA tiles), 1 int8 per block of 32 + integer dot products, each "
     "weight load serving TN tokens (cpu; needs a shape with act=q8)",
     2, {0, 1}, 0},
};
enum { P_WG, P_ROWS, P_TN, P_VEC, P_UNROLL, P_REDUCE, P_LAYOUT, P_ACT, P_COUNT };

/* Accumulators per thread (rows x tokens): registers, and the shared
 * reduction array is rows * tokens * wg floats. */
#define GEMM_MAX_ACC 32

static int shape_ok(const kiln_shape *s, char *why, size_t n)
{
    if (s->quant == KILN_F32 || s->quant < 0 || s->quant >= KILN_QUANT_COUNT) {
        snprintf(why, n, "format %s is not a gemm_int4 weight format", kiln_quant_name(s->quant));
        return 0;
    }
    if (s->quant != KILN_F16 && s->group != 32 && s->group != 128) {
        snprintf(why, n, "group %d (32 or 128)", s->group);
        return 0;
    }
    if (s->n < 1 || s->m < 1 || s->k < 1) {
        snprintf(why, n, "empty shape (m %lld, k %lld, n %lld)", (long long)s->m, (long long)s->k, (long long)s->n);
        return 0;
    }
    return 1;
}

static int check(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n)
{
    int wg = c->v[P_WG], rows = c->v[P_ROWS], tn = c->v[P_TN], vec = c->v[P_VEC], reduce = c->v[P_REDUCE];
    if (s->ilv > 1 && (!kiln_ilv_valid(s->ilv) || s->quant == KILN_F16)) {
        snprintf(why, n, "layout ilv %d: int4/q8 formats in tiles of 4, 8 or 16 rows only", s->ilv);
        return 0;
    }
    if (c->v[P_ACT]) {
        if (s->act != KILN_ACT_Q8) {
            snprintf(why, n, "act 1 quantizes x: the shape allows f32 activations only (act=q8 allows it)");
            return 0;
        }
        if (fp->backend != KILN_CPU || s->quant == KILN_F16) {
            snprintf(why, n, "act 1 runs on the cpu with int4/q8_0 weights");
            return 0;
        }
        if (fp->no_int8) {
            snprintf(why, n, "act 1 needs int8 dot products: the device's limits have none");
            return 0;
        }
        if (s->ilv > 1 && rows % s->ilv) {
            snprintf(why, n, "rows %d must be a multiple of the matrix's ilv %d (a task owns whole tiles)", rows,
                     s->ilv);
            return 0;
        }
    }
    if (fp->backend == KILN_CPU) {
        for (int i = 0; i < P_COUNT; i++)
            if (i != P_ROWS && i != P_TN && i != P_ACT && c->v[i] != params[i].def) {
                snprintf(why, n, "%s applies to gpu backends only", params[i].name);
                return 0;
            }
        return 1;
    }
    if ((uint32_t)wg > fp->max_workgroup) {
        snprintf(why, n, "wg %d > device max %u", wg, fp->max_workgroup);
        return 0;
    }
    if (c->v[P_LAYOUT] == 1) {
        /* one invocation per row: the workgroup size and the token count are the choices */
        for (int i = P_ROWS; i <= P_REDUCE; i++)
            if (i != P_TN && c->v[i] != params[i].def) {
                snprintf(why, n, "%s does not apply to layout 1 (one invocation per row)", params[i].name);
                return 0;
            }
        return 1;
    }
    if (rows * tn > GEMM_MAX_ACC) {
        snprintf(why, n, "rows %d x tokens %d = %d accumulators per thread (max %d)", rows, tn, rows * tn,
                 GEMM_MAX_ACC);
        return 0;
    }
    return kiln_wx_tile_ok(s, fp, (size_t)rows * (size_t)tn * (size_t)wg * 4, vec, wg, reduce, why, n);
}

#define S(M, K, N, Q, G) {.m = (M), .k = (K), .n = (N), .quant = (Q), .group = (G)}
#define SX(M, K, N, Q, G, ILV, ACT)                                                                              \
    {.m = (M), .k = (K), .n = (N), .quant = (Q), .group = (G), .ilv = (ILV), .act = (ACT)}
/* Llama-7B prefill chunks, SmolLM2-135M prompts */
static const kiln_shape tune_shapes[] = {
    S(4096, 4096, 64, KILN_Q4F16_1, 32),
    S(11008, 4096, 64, KILN_Q4F16_1, 32),
    S(4096, 11008, 64, KILN_Q4F16_1, 32),
    S(4096, 4096, 16, KILN_Q4F16_1, 32),
    S(576, 576, 32, KILN_Q4_1, 32),
    S(1536, 576, 32, KILN_Q4_1, 32),
    S(576, 1536, 32, KILN_Q4_1, 32),
    SX(4096, 4096, 64, KILN_Q4F16_1, 32, 0, KILN_ACT_Q8),
    SX(1536, 576, 32, KILN_Q4_1, 32, 0, KILN_ACT_Q8),
};
static const kiln_shape check_shapes[] = {
    /* real shapes: Llama-7B short prefill chunks, SmolLM2-135M prompts */
    S(4096, 4096, 16, KILN_Q4F16_1, 32),
    S(11008, 4096, 8, KILN_Q4F16_1, 32),
    S(576, 576, 32, KILN_Q4_1, 32),
    S(1536, 576, 7, KILN_Q4_1, 32),
    S(576, 1536, 13, KILN_Q4_1, 32),
    /* every format at a small size */
    S(256, 512, 5, KILN_Q4F16_1, 128),
    S(200, 256, 6, KILN_Q4_0, 32),
    S(160, 320, 3, KILN_Q8_0, 32),
    S(96, 192, 9, KILN_F16, 0),
    /* odd: K not a multiple of the group, M not a multiple of rows,
     * N not a multiple of tokens, N = 1 */
    S(1001, 4000, 1, KILN_Q4F16_1, 128),
    S(333, 136, 11, KILN_Q4_0, 32),
    S(77, 200, 5, KILN_Q4_1, 32),
    S(129, 1000, 3, KILN_Q8_0, 32),
    S(3, 37, 2, KILN_F16, 0),
    S(67, 96, 1, KILN_Q4_1, 32),
    /* int8 activations allowed (cpu act 1), every format, odd N */
    SX(576, 576, 13, KILN_Q4_1, 32, 0, KILN_ACT_Q8),
    SX(200, 256, 6, KILN_Q4_0, 32, 0, KILN_ACT_Q8),
    SX(160, 320, 9, KILN_Q8_0, 32, 0, KILN_ACT_Q8),
    SX(1001, 4000, 3, KILN_Q4F16_1, 128, 0, KILN_ACT_Q8),
    SX(333, 136, 11, KILN_Q4_0, 32, 16, KILN_ACT_Q8),
    SX(129, 1000, 7, KILN_Q8_0, 32, 4, KILN_ACT_Q8),
    /* weights interleaved by gemv's winner (cpu): the same product */
    SX(333, 136, 11, KILN_Q4_0, 32, 4, 0),
    SX(129, 1000, 3, KILN_Q8_0, 32, 8, 0),
    SX(77, 200, 5, KILN_Q4_1, 32, 16, 0),
};
static const kiln_shape quick_shapes[] = {
    S(64, 256, 5, KILN_Q4F16_1, 32),
    S(96, 512, 3, KILN_Q4F16_1, 128),
    S(37, 200, 7, KILN_Q4_0, 32),
    S(50, 136, 9, KILN_Q4_1, 32),
    S(33, 100, 1, KILN_Q8_0, 32),
    S(19, 77, 3, KILN_F16, 0),
    S(576, 576, 5, KILN_Q4_1, 32),
    SX(37, 200, 7, KILN_Q4_0, 32, 0, KILN_ACT_Q8),
};
#undef S
#undef SX

/* A matrix in an interleaved layout gets ".ilvR" (the engine looks tuned
 * configs up without it: the cpu gemm gathers rows, its schedule does not
 * depend on the layout). */
static void shape_key(const kiln_shape *s, char *buf, size_t n)
{
    char ilv[24] = "";
    if (s->ilv > 1)
        snprintf(ilv, sizeof ilv, ".ilv%d", s->ilv);
    if (s->act == KILN_ACT_Q8)
        snprintf(ilv + strlen(ilv), sizeof ilv - strlen(ilv), ".xq8");
    if (s->quant == KILN_F16)
        snprintf(buf, n, "m%lld.k%lld.n%lld.%s%s", (long long)s->m, (long long)s->k, (long long)s->n,
                 kiln_quant_name(s->quant), ilv);
    else
        snprintf(buf, n, "m%lld.k%lld.n%lld.%s.g%d%s", (long long)s->m, (long long)s->k, (long long)s->n,
                 kiln_quant_name(s->quant), s->group, ilv);
}

void kiln_gemm_reference(const kiln_qmatrix *q, const float *x, int64_t n_tokens, float *y)
{
    int64_t M = q->rows, K = q->cols;
    float *w = malloc(sizeof *w * (size_t)(K ? K : 1));
    double *wd = malloc(sizeof *wd * (size_t)(K ? K : 1));
    if (!w || !wd) {
        free(w);
        free(wd);
        return;
    }
    for (int64_t r = 0; r < M; r++) {
        kiln_dequantize_row(q, r, w);
        for (int64_t k = 0; k < K; k++)
            wd[k] = w[k];
        for (int64_t t = 0; t < n_tokens; t++) {
            const float *xt = x + t * K;
            double a0 = 0, a1 = 0;
            int64_t k = 0;
            for (; k + 1 < K; k += 2) {
                a0 += wd[k] * xt[k];
                a1 += wd[k + 1] * xt[k + 1];
            }
            for (; k < K; k++)
                a0 += wd[k] * xt[k];
            y[t * M + r] = (float)(a0 + a1);
        }
    }
    free(wd);
    free(w);
}

static int sizes(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    (void)cls, (void)seed;
    kiln_wx_sizes(s, s->ilv > 1 ? s->ilv : 1, s->n > 0 ? s->n : 1, slot);
    return 5;
}

/* Data class act: the same matrix (in the shape's layout) and x, the
 * reference over x rounded through the q8 contract when act is 1. */
static int fill(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)
{
    if (cls != 0 && cls != 1)
        return kiln_fail(e, KILN_E_INVALID, "gemm_int4: no data class %d", cls);
    int act = cls;
    kiln_rng rng;
    kiln_rng_seed(&rng, seed ^ 0x6e3d);
    kiln_qmatrix q;
    int rc = kiln_wx_weights(p, s, s->ilv > 1 ? s->ilv : 1, &rng, 0x3c, &q, e);
    if (rc)
        return rc;
    int64_t N = s->n > 0 ? s->n : 1;
    float *x = p->bufs[3].host;
    for (int64_t i = 0; i < N * s->k; i++) {
        x[i] = kiln_rng_normal(&rng);
        if (x[i] == 0)
            x[i] = 0.5f;
    }
    float *xr = act ? malloc(sizeof *xr * (size_t)(N * s->k)) : NULL;
    if (act && !xr) {
        kiln_qmatrix_free(&q);
        return kiln_fail(e, KILN_E_NOMEM, "gemm problem: no memory");
    }
    for (int64_t t = 0; act && t < N; t++) /* each token rounded as act_q8_cpu rounds it */
        kiln_act_q8_roundtrip(x + t * s->k, s->k, xr + t * s->k);
    kiln_gemm_reference(&q, act ? xr : x, N, p->bufs[4].expect);
    free(xr);
    kiln_qmatrix_free(&q);
    return 0;
}

static int data_class(const kiln_shape *s, const kiln_config *c)
{
    (void)s;
    return c->v[P_ACT];
}

static int plan(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_err *e)
{
    (void)e;
    memset(out, 0, sizeof *out);
    int epw = kiln_gemv_elems_per_word(s->quant);
    int group = s->quant == KILN_F16 ? 0 : s->group;
    int64_t cols_pad = group ? (s->k + group - 1) / group * group : s->k;
    int64_t wpr = (cols_pad + epw - 1) / epw;
    int64_t gpr = group ? cols_pad / group : 0;
    int64_t N = s->n > 0 ? s->n : 1;
    int rows = c->v[P_ROWS], tn = c->v[P_TN];
    if (be == KILN_CPU && c->v[P_ACT]) {
        /* each token's x -> int8 blocks (one workgroup per token), then the
         * integer gemm over the matrix's tiles, TN tokens per pass */
        int ilv = s->ilv > 1 ? s->ilv : 1;
        out->n_steps = 2;
        out->n_scratch = 1;
        out->scratch_bytes[0] = kiln_xq_bytes(s->k) * (size_t)N;
        kiln_act_q8_plan_step(&out->steps[0], "gemm_int4", 3, 0, s->k, s->quant, (uint32_t)N);
        kiln_plan_step *st = &out->steps[1];
        st->source = "gemm_int4";
        st->entry = "gemm_q8_cpu";
        st->signature = "bbbbbuuuuu";
        kiln_plan_define(st, "QUANT", s->quant);
        kiln_plan_define(st, "GROUP", group);
        kiln_plan_define(st, "ILV", ilv);
        kiln_plan_define(st, "ROWS", rows);
        kiln_plan_define(st, "TN", tn);
        st->local[0] = 1;
        st->grid[0] = (uint32_t)((kiln_ilv_rows(s->m, ilv) + rows - 1) / rows);
        for (int i = 0; i < 3; i++)
            kiln_plan_slot(st, i);
        kiln_plan_scratch(st, 0);
        kiln_plan_slot(st, 4);
        kiln_plan_u32(st, (uint32_t)s->m);
        kiln_plan_u32(st, (uint32_t)s->k);
        kiln_plan_u32(st, (uint32_t)wpr);
        kiln_plan_u32(st, (uint32_t)gpr);
        kiln_plan_u32(st, (uint32_t)N);
        return 0;
    }
    kiln_plan_step *st = &out->steps[0];
    out->n_steps = 1;
    st->signature = "bbbbbuuuuu";
    if (be != KILN_CPU && c->v[P_LAYOUT] == 1) {
        /* one invocation per row x TN tokens (rows, vec, unroll, reduce at their defaults) */
        st->source = st->entry = "gemm_int4_rows";
        kiln_plan_define(st, "WG", c->v[P_WG]);
        kiln_plan_define(st, "TN", tn);
        rows = c->v[P_WG];
    } else {
        st->source = "gemm_int4";
        st->entry = be == KILN_CPU ? "gemm_int4_cpu" : "gemm_int4";
        kiln_plan_config_defines(st, &kiln_kernel_gemm_int4, c);
    }
    kiln_plan_define(st, "QUANT", s->quant);
    kiln_plan_define(st, "GROUP", group ? group : 1);
    /* the gpu sources index the weights through ILV as the cpu gathers
     * rows; row-major plans keep their define set (cpu: ILV 1 as before) */
    if (be == KILN_CPU || s->ilv > 1)
        kiln_plan_define(st, "ILV", s->ilv > 1 ? s->ilv : 1);
    st->local[0] = be == KILN_CPU ? 1 : (uint32_t)c->v[P_WG];
    st->grid[0] = (uint32_t)((s->m + rows - 1) / rows);
    st->grid[1] = be == KILN_CPU ? 1 : (uint32_t)((N + tn - 1) / tn);
    for (int i = 0; i < 5; i++)
        kiln_plan_slot(st, i);
    kiln_plan_u32(st, (uint32_t)s->m);
    kiln_plan_u32(st, (uint32_t)s->k);
    kiln_plan_u32(st, (uint32_t)wpr);
    kiln_plan_u32(st, (uint32_t)gpr);
    kiln_plan_u32(st, (uint32_t)N);
    return 0;
}

static double bytes(const kiln_shape *s)
{
    int epw = kiln_gemv_elems_per_word(s->quant);
    int group = s->quant == KILN_F16 ? 0 : s->group;
    int64_t cols_pad = group ? (s->k + group - 1) / group * group : s->k;
    double N = (double)(s->n > 0 ? s->n : 1);
    double w = (double)s->m * (double)((cols_pad + epw - 1) / epw) * 4;
    double sc = group ? (double)s->m * (double)(cols_pad / group) * 2 * (s->quant == KILN_Q4_1 ? 2 : 1) : 0;
    return w + sc + N * (double)s->k * 4 + N * (double)s->m * 4;
}

static double flops(const kiln_shape *s) { return 2.0 * (double)s->m * (double)s->k * (double)(s->n > 0 ? s->n : 1); }

/* OpenCL drivers on CPU cores (PoCL): one work-item per row, 4 tokens. In one
 * tune session on 1536x576, 32 tokens, q4_1 (2-core EPYC): PoCL 7.0 ms vs
 * 19.8 ms for layout 0; lavapipe the other way (127 vs 89 ms), so Vulkan
 * keeps layout 0. */
/* The cpu default, where the shape allows int8 activations (--precision
 * fast): the int8 path over 16-row tiles (a row-major matrix is packed into
 * them per task), 4 tokens per pass. The f32 path it replaces was 10-14x
 * slower at prefill shapes (tune --model llama-1b: ffn_down 2048x8192 n64
 * 98.5 ms vs 5-7 ms), and a short tuning budget may never leave the
 * default: each f32 trial there costs ~100 ms. */
static void device_default(const kiln_fingerprint *fp, const kiln_shape *s, kiln_config *c)
{
    if (fp->backend == KILN_OPENCL && fp->cpu_device)
        c->v[P_LAYOUT] = 1;
    if (fp->backend == KILN_CPU && s && s->act == KILN_ACT_Q8 && s->quant != KILN_F16) {
        c->v[P_ACT] = 1;
        c->v[P_ROWS] = 16; /* a multiple of every ilv (4, 8, 16) */
        c->v[P_TN] = 4;
    }
}

static const kiln_kernel_desc desc = {
    .kernel = &kiln_kernel_gemm_int4,
    .shapes = {KILN_SHAPE_LIST(check_shapes), KILN_SHAPE_LIST(tune_shapes), KILN_SHAPE_LIST(quick_shapes)},
    .shape_ok = shape_ok,
    .check = check,
    .slots = kiln_wx_slots,
    .sizes = sizes,
    .fill = fill,
    .plan_ok = kiln_plan_unchecked,
    .plan = plan,
};

KILN_KERNEL_FROM_DESC(gemm_int4, desc,
                      .doc = "Y = X W^T for N tokens, W int4/q8/f16 group-quantized along K (prefill projections)",
                      .params = params, .n_params = P_COUNT, .n_slots = 5, .shape_key = shape_key,
                      .data_class = data_class, .bytes = bytes, .flops = flops, .device_default = device_default);
