/* kernels/norm_rope/norm_rope.c - RMSNorm (plain and fused with the residual
 * add) and rotary position embedding.
 *
 * rmsnorm: rows x n f32 (rows = tokens), y = x / sqrt(mean(x^2) + eps) * w.
 *   op 0 plain:          slots 0 x (IN), 1 w [n], 2 y (OUT)
 *   op 1 fused residual: slots 0 x (INOUT: x += r), 1 w, 2 y (OUT), 3 r (IN):
 *     the residual add of a sublayer and the RMSNorm of the next in one pass.
 *   Shape: m = rows, k = n, op. One step, signature "bbbbiiif": x, w, y, r,
 *   rows, n, op, eps (op 0 binds y as r; it is never read).
 *   Space: wg threads per row (one workgroup per row), vec load width
 *   (float2/float4; n % vec == 0), reduce 0 shared-memory tree, 1 subgroup
 *   sums (Vulkan/CUDA; needs subgroup ops, wg a multiple of the subgroup).
 *   The cpu backend runs one row per workgroup (AVX-512/AVX2/scalar) and keeps
 *   the GPU parameters at their defaults.
 *   KILN_TEST_BREAK=1: the first vec elements of each row use w[vec..2vec-1].
 *
 * rope: in-place rotary embedding of q or k laid out [tokens][heads][head_dim]:
 *   slots 0 x (INOUT, f32), 1 positions (i32 [tokens]), 2 inv_freq (f32
 *   [n_rot/2], the per-pair inverse frequencies).
 *   Shape: m = tokens, heads, head_dim, k = n_rot (rotary dims, even,
 *   <= head_dim; 0 = head_dim), n = freq_base (0 = 10000; names the shape and
 *   seeds the test table), ctx = position offset added to every position,
 *   op 0 interleaved pairs (x[2i], x[2i+1]: GGUF Llama), op 1 half-split
 *   (x[i], x[i + n_rot/2]: Hugging Face / NeoX).
 *   Pair i of a head at position p rotates by theta = p * inv_freq[i] in f32.
 *   The table comes from the caller: base^(-2i/n_rot) for a plain model, a
 *   scaled one (linear, llama3, rope_freqs.weight: engine/rope_scaling.h)
 *   otherwise, so every scaling is one kernel. dims >= n_rot are untouched.
 *   Signature "bbbiiiiii": x, positions, inv_freq, tokens, heads, head_dim,
 *   n_rot, offset, op.
 *   Space: wg, ppt (consecutive pairs per thread). cpu: one token per
 *   workgroup, the cos/sin table computed once and applied to every head.
 *   KILN_TEST_BREAK=1: pair 0 uses the frequency of pair 1 (inv_freq[1]). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/desc.h"
#include "kernels/kernel.h"
#include "kernels/norm_rope/norm_rope.h"
#include "kernels/sources.h"
#include "util/rng.h"

extern const kiln_kernel kiln_kernel_rmsnorm;
extern const kiln_kernel kiln_kernel_rope;

/* ================================================================ rmsnorm */

enum { R_WG, R_VEC, R_REDUCE };
static const kiln_param rms_params[] = {
    {"wg", "WG", "threads per workgroup, one workgroup per row (GPU)", 5,
         {32, 64, 128, 256, 512}, 128, KILN_P_GPU | KILN_P_WG},
    {"vec", "VEC", "load width in floats (GPU; n % vec == 0)", 3, {1, 2, 4}, 1, KILN_P_GPU},
    {"reduce", "REDUCE", "sum of squares: 0 shared-memory tree, 1 subgroup sums (Vulkan/CUDA)", 2,
         {0, 1}, 0, KILN_P_GPU},
};
#define N_RMS ((int)(sizeof rms_params / sizeof rms_params[0]))

void kiln_rmsnorm_plan_set_eps(kiln_plan *p, float eps)
{
    for (int i = 0; i < p->n_steps; i++) {
        kiln_plan_step *s = &p->steps[i];
        if (s->n_args > 0 && s->args[s->n_args - 1].kind == KILN_PA_F32)
            s->args[s->n_args - 1].f32 = eps;
    }
}

static int rms_shape_ok(const kiln_shape *s, char *why, size_t n)
{
    if (s->m < 1 || s->k < 2 || s->m > 65535 || s->m * s->k > (int64_t)1 << 30) {
        snprintf(why, n, "rows %lld x n %lld out of range (rows <= 65535, n >= 2)", (long long)s->m, (long long)s->k);
        return 0;
    }
    if (s->op != KILN_RMSNORM_PLAIN && s->op != KILN_RMSNORM_ADD_RESIDUAL) {
        snprintf(why, n, "op %d: 0 plain, 1 fused residual add", s->op);
        return 0;
    }
    return 1;
}

static void rms_shape_key(const kiln_shape *s, char *buf, size_t n)
{
    snprintf(buf, n, "rows%lld.n%lld.%s", (long long)s->m, (long long)s->k, s->op ? "res" : "plain");
}

#define RMS(rows, n_, op_) {.m = (rows), .k = (n_), .op = (op_), .quant = KILN_F32}
static const kiln_shape rms_quick[] = {RMS(1, 4096, 0), RMS(3, 576, 1), RMS(2, 100, 0), RMS(5, 33, 1) /* odd width */};
/* Llama-7B decode: one token, plain (final norm) and fused (every sublayer) */
static const kiln_shape rms_tune[] = {RMS(1, 4096, 1), RMS(1, 4096, 0), RMS(8, 4096, 1)};
static const kiln_shape rms_check[] = {
    RMS(1, 4096, 0),
    RMS(1, 4096, 1),
    RMS(16, 4096, 1),   /* prefill chunk */
    RMS(1, 576, 1),     /* SmolLM2 */
    RMS(7, 576, 0),
    RMS(1, 1536, 0),
    RMS(1, 11008, 1),
    RMS(3, 8192, 1),
    RMS(3, 1001, 1),    /* odd sizes */
    RMS(2, 77, 0),
};
#undef RMS

/* GPU constraints beyond the flags (on the cpu every knob is at its default,
 * which always passes these). */
static int rms_check_config(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n)
{
    if (s->k % c->v[R_VEC]) {
        snprintf(why, n, "n %lld not a multiple of vec %d", (long long)s->k, c->v[R_VEC]);
        return 0;
    }
    if (s->k < 2 * c->v[R_VEC]) {
        snprintf(why, n, "n %lld < 2 * vec %d", (long long)s->k, c->v[R_VEC]);
        return 0;
    }
    if (c->v[R_REDUCE] == 1 && !kiln_subgroup_reduce_ok(fp, c->v[R_WG], why, n))
        return 0;
    return 1;
}

void kiln_rmsnorm_reference(const float *x, const float *w, float *y, int64_t rows, int64_t n, float eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        double ss = 0;
        for (int64_t i = 0; i < n; i++)
            ss += (double)xr[i] * xr[i];
        double inv = 1.0 / sqrt(ss / (double)n + eps);
        for (int64_t i = 0; i < n; i++)
            y[r * n + i] = (float)(xr[i] * inv * w[i]);
    }
}

/* Budget for y (max|y - r| / rms(r)): f32 kernels differ from the double
 * reference by the sum of squares (positive terms; per-thread runs of up to
 * n/wg then a tree: ~1e-6 relative typical, 2e-5 worst case for 11008 / 32
 * sequential terms at the bound), rsqrt/sqrt (<= 2 ulp, 2.4e-7) and two
 * products (1.2e-7): relative <= ~3e-6 typical per element, times max|y|/rms(y)
 * (~2-8 with the outliers below) = ~2e-5. Budget 6e-5. A wrong index in x or
 * w moves an element by O(rms) (error ~1); dropping or doubling one term of
 * the sum at n = 11008 moves every y by ~1/(2n) * x^2/mean(x^2) relative, and
 * an outlier (x up to 8, 64x the mean square) makes that ~3e-3 * max|y|/rms:
 * caught too. x (op 1) is compared exactly: x + r is one f32 add. */
#define RMS_TOL 6e-5

static const kiln_slot rms_slots[] = {
    {"x", KILN_INOUT, KILN_CMP_EXACT, 0, 0}, /* op 0: IN (sizes) */
    {"w", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"y", KILN_OUT, KILN_CMP_F32, RMS_TOL, 0},
    {"r", KILN_IN, KILN_CMP_NONE, 0, 0}, /* op 1 only */
};

static int rms_sizes(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    (void)cls, (void)seed;
    size_t nx = (size_t)(s->m * s->k) * 4;
    slot[0].bytes = slot[2].bytes = slot[3].bytes = nx;
    slot[1].bytes = (size_t)s->k * 4;
    if (s->op)
        return 4;
    slot[0].role = KILN_IN;
    return 3;
}

static int rms_fill(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)
{
    (void)cls, (void)e;
    size_t nx = (size_t)(s->m * s->k);
    kiln_rng rng;
    kiln_rng_seed(&rng, seed * 31 + 7);
    float *x = p->bufs[0].host, *w = p->bufs[1].host;
    for (size_t i = 0; i < nx; i++) {
        x[i] = kiln_rng_uniform(&rng, -1, 1);
        if (kiln_rng_below(&rng, 64) == 0)
            x[i] *= 8; /* activation outliers */
    }
    for (int64_t i = 0; i < s->k; i++)
        w[i] = kiln_rng_uniform(&rng, 0.2f, 2.0f) * (kiln_rng_below(&rng, 8) ? 1.0f : -1.0f);
    const float *xn = x;
    if (s->op) {
        float *r = p->bufs[3].host, *xo = p->bufs[0].expect;
        for (size_t i = 0; i < nx; i++) {
            r[i] = kiln_rng_uniform(&rng, -1, 1);
            xo[i] = x[i] + r[i];
        }
        xn = xo;
    }
    kiln_rmsnorm_reference(xn, w, p->bufs[2].expect, s->m, s->k, KILN_RMSNORM_DEFAULT_EPS);
    return 0;
}

/* op 0 binds y as r (never read). eps last: kiln_rmsnorm_plan_set_eps. */
static const kiln_step_desc rms_steps[] = {
    {.source = "norm_rope", KILN_ENTRY("rmsnorm"), .signature = "bbbbiiif",
     .args = {KA_SLOT(0), KA_SLOT(1), KA_SLOT(2), KA_SLOT_OR(3, 2), KA_SHAPE(M), KA_SHAPE(K), KA_SHAPE(OP),
              KA_F32(KILN_RMSNORM_DEFAULT_EPS)}},
};

/* One workgroup per row. */
static void rms_launch(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_launch *v)
{
    (void)v;
    kiln_grid_n(&out->steps[0], s->m, be == KILN_CPU ? 1 : (uint32_t)c->v[R_WG]);
}

static double rms_bytes(const kiln_shape *s) { return 4.0 * s->m * s->k * (s->op ? 4 : 2) + 4.0 * s->k; }
static double rms_flops(const kiln_shape *s) { return (double)s->m * s->k * (s->op ? 5 : 4); }

/* Drivers on CPU cores (PoCL, lavapipe): float4 loads. SmolLM2 rows of 576,
 * interleaved re-measure (tune --config, 2026-12-01): lavapipe 1.13x (1 row)
 * and 1.25x (64 rows), PoCL 1.30x at 64 rows and a tie at 1 row. */
static void rms_device_default(const kiln_fingerprint *fp, const kiln_shape *s, kiln_config *c)
{
    (void)s;
    if (fp->backend != KILN_CPU && fp->cpu_device)
        c->v[R_VEC] = 4;
}

static const kiln_kernel_desc rms_desc = {
    .kernel = &kiln_kernel_rmsnorm,
    .shapes = {KILN_SHAPE_LIST(rms_check), KILN_SHAPE_LIST(rms_tune), KILN_SHAPE_LIST(rms_quick)},
    .shape_ok = rms_shape_ok,
    .check = rms_check_config,
    .slots = rms_slots,
    .sizes = rms_sizes,
    .fill = rms_fill,
    .steps = rms_steps,
    .n_steps = 1,
    .launch = rms_launch,
};

KILN_KERNEL_FROM_DESC(rmsnorm, rms_desc,
                      .doc = "RMSNorm over rows of f32 (op 0), or residual add + RMSNorm in one pass (op 1)",
                      .params = rms_params, .n_params = N_RMS, .n_slots = 4, .shape_key = rms_shape_key,
                      .bytes = rms_bytes, .flops = rms_flops, .device_default = rms_device_default);

/* ================================================================ rope */

enum { P_WG, P_PPT };
static const kiln_param rope_params[] = {
    {"wg", "WG", "threads per workgroup (GPU)", 4, {32, 64, 128, 256}, 64, KILN_P_GPU | KILN_P_WG},
    {"ppt", "PPT", "consecutive rotation pairs per thread (GPU)", 3, {1, 2, 4}, 1, KILN_P_GPU},
};
#define N_ROPE ((int)(sizeof rope_params / sizeof rope_params[0]))

static int n_rot_of(const kiln_shape *s) { return s->k > 0 ? (int)s->k : s->head_dim; }
static float base_of(const kiln_shape *s) { return s->n > 0 ? (float)s->n : 10000.0f; }

static int rope_shape_ok(const kiln_shape *s, char *why, size_t n)
{
    int nr = n_rot_of(s);
    if (s->m < 1 || s->heads < 1 || s->head_dim < 2 || s->m * s->heads * s->head_dim > (int64_t)1 << 30) {
        snprintf(why, n, "tokens %lld x heads %d x head_dim %d out of range", (long long)s->m, s->heads, s->head_dim);
        return 0;
    }
    if (nr < 2 || nr % 2 || nr > s->head_dim || nr > 1024) {
        snprintf(why, n, "n_rot %d must be even and in [2, min(head_dim %d, 1024)]", nr, s->head_dim);
        return 0;
    }
    if (s->op != KILN_ROPE_ADJACENT && s->op != KILN_ROPE_NEOX) {
        snprintf(why, n, "op %d: 0 interleaved pairs, 1 half-split", s->op);
        return 0;
    }
    if (s->ctx < 0) {
        snprintf(why, n, "position offset %d < 0", s->ctx);
        return 0;
    }
    return 1;
}

static void rope_shape_key(const kiln_shape *s, char *buf, size_t n)
{
    snprintf(buf, n, "t%lld.h%d.d%d.rot%d.base%g.off%d.%s", (long long)s->m, s->heads, s->head_dim, n_rot_of(s),
             (double)base_of(s), s->ctx, s->op ? "neox" : "interleaved");
}

#define RP(tokens, heads_, hd, nrot, base, off, op_)                                                              \
    {.m = (tokens), .heads = (heads_), .head_dim = (hd), .k = (nrot), .n = (base), .ctx = (off), .op = (op_),         \
     .quant = KILN_F32}
static const kiln_shape rope_quick[] = {
    RP(1, 4, 64, 0, 10000, 5, 0),
    RP(3, 3, 64, 0, 10000, 0, 1),
    RP(2, 2, 128, 64, 500000, 17, 0), /* partial rotary, llama-3 base */
    RP(5, 3, 32, 24, 10000, 100, 1),  /* partial half-split */
};
/* Llama-7B decode: q (32 heads) and k, one token */
static const kiln_shape rope_tune[] = {RP(1, 32, 128, 0, 10000, 1023, 0), RP(8, 32, 128, 0, 10000, 1023, 0)};
static const kiln_shape rope_check[] = {
    RP(1, 32, 128, 0, 10000, 4000, 0),    /* Llama-2-7B q */
    RP(1, 8, 128, 0, 500000, 8000, 0),    /* Llama-3-8B k, long position */
    RP(16, 32, 128, 0, 10000, 0, 1),      /* prefill, HF layout */
    RP(1, 9, 64, 0, 10000, 8000, 0),      /* SmolLM2 q */
    RP(7, 3, 64, 0, 100000, 300, 1),      /* SmolLM2 k */
    RP(3, 5, 96, 32, 10000, 77, 1),       /* partial rotary, odd heads */
    RP(2, 7, 80, 80, 10000, 9, 0),
};
#undef RP

void kiln_rope_reference(float *x, const int32_t *pos, const float *inv_freq, int64_t tokens, int heads, int hd,
                         int n_rot, int offset, int op)
{
    int half = n_rot / 2;
    for (int64_t t = 0; t < tokens; t++) {
        double p = (double)pos[t] + offset;
        for (int h = 0; h < heads; h++) {
            float *v = x + (t * heads + h) * hd;
            for (int i = 0; i < half; i++) {
                double th = p * inv_freq[i];
                double cs = cos(th), sn = sin(th);
                int a = op ? i : 2 * i, b = op ? i + half : 2 * i + 1;
                double x0 = v[a], x1 = v[b];
                v[a] = (float)(x0 * cs - x1 * sn);
                v[b] = (float)(x0 * sn + x1 * cs);
            }
        }
    }
}

static const kiln_slot rope_slots[] = {
    {"x", KILN_INOUT, KILN_CMP_F32, 0, 0}, /* the budget depends on the positions: fill */
    {"positions", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"inv_freq", KILN_IN, KILN_CMP_NONE, 0, 0},
};

static int rope_sizes(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    (void)cls, (void)seed;
    slot[0].bytes = (size_t)(s->m * s->heads * s->head_dim) * 4;
    slot[1].bytes = (size_t)s->m * 4;
    slot[2].bytes = (size_t)(n_rot_of(s) / 2) * 4;
    return 3;
}

static int rope_fill(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)
{
    (void)cls, (void)e;
    kiln_problem_buf *bx = &p->bufs[0];
    size_t nx = (size_t)(s->m * s->heads * s->head_dim);
    kiln_rng rng;
    kiln_rng_seed(&rng, seed * 131 + 3);
    int32_t *pos = p->bufs[1].host;
    /* positions: a run of consecutive ones (prefill) starting at a random
     * point, with some tokens jumping (batched sequences); never 0 so a wrong
     * frequency changes the angle */
    int max_pos = 0;
    int32_t start = 1 + (int32_t)kiln_rng_below(&rng, 64);
    for (int64_t t = 0; t < s->m; t++) {
        pos[t] = kiln_rng_below(&rng, 4) ? start + (int32_t)t : 1 + (int32_t)kiln_rng_below(&rng, 200);
        max_pos = pos[t] + s->ctx > max_pos ? pos[t] + s->ctx : max_pos;
    }
    /* Budget (max|y - r| / rms(r)): the kernel's f32 angle p * inv_freq[i]
     * is off by the rounding of the table entry and of the product (2^-24
     * relative each) times the angle, plus sin/cos of a large f32 argument
     * (GPU sin/cos ~1e-6 absolute, GLSL's loosest): |dy| <= |x| * (8e-6 * pos
     * + 1e-6) with room to spare (the budget was set when kernels computed
     * base^(-2i/n_rot) themselves, ~4e-6 relative), and max|x|/rms(x) =
     * sqrt(3) for uniform x. So 1e-4 + 2e-5 * max_pos (0.16 at position
     * 8000, where a correct f32 kernel measures ~1e-3). A wrong index is
     * still caught: a wrong pair or element moves y by O(rms) (error ~1); the
     * wrong frequency of the break (pair 0 with pair 1's, both unscaled,
     * base^(-2/n_rot) <= 0.87) rotates by >= 0.13 * p radians more. */
    bx->tol = 1e-4 + 2e-5 * max_pos;
    float *x = bx->host;
    for (size_t i = 0; i < nx; i++)
        x[i] = kiln_rng_uniform(&rng, -1, 1);
    /* the table: base^(-2i/n_rot), and past the first two pairs (which keep
     * the break detectable) each pair divided by a random factor in [1, 32]
     * with probability 1/2, as a scaled model's table is (llama3 x32) */
    float *inv = p->bufs[2].host;
    int half = n_rot_of(s) / 2;
    for (int i = 0; i < half; i++) {
        double f = pow(base_of(s), -2.0 * i / n_rot_of(s));
        if (i >= 2 && kiln_rng_below(&rng, 2))
            f /= kiln_rng_uniform(&rng, 1.0f, 32.0f);
        inv[i] = (float)f;
    }
    memcpy(bx->expect, x, nx * 4);
    kiln_rope_reference(bx->expect, pos, inv, s->m, s->heads, s->head_dim, n_rot_of(s), s->ctx, s->op);
    return 0;
}

static const kiln_step_desc rope_steps[] = {
    {.source = "norm_rope", KILN_ENTRY("rope"), .signature = "bbbiiiiii",
     .args = {KA_SLOT(0), KA_SLOT(1), KA_SLOT(2), KA_SHAPE(M), KA_SHAPE(HEADS), KA_SHAPE(HEAD_DIM), KA_VAL(0),
              KA_SHAPE(CTX), KA_SHAPE(OP)}},
};

static void rope_launch(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out,
                        kiln_launch *v)
{
    v->val[0] = n_rot_of(s);
    if (be == KILN_CPU) {
        kiln_grid_n(&out->steps[0], s->m, 1); /* one token per workgroup */
        return;
    }
    int64_t pairs = s->m * s->heads * (n_rot_of(s) / 2);
    kiln_grid_1d(&out->steps[0], (pairs + c->v[P_PPT] - 1) / c->v[P_PPT], c->v[P_WG]);
}

static double rope_bytes(const kiln_shape *s) { return 8.0 * s->m * s->heads * n_rot_of(s) + 4.0 * s->m + 2.0 * n_rot_of(s); }
static double rope_flops(const kiln_shape *s) { return 3.0 * s->m * s->heads * n_rot_of(s); }

static const kiln_kernel_desc rope_desc = {
    .kernel = &kiln_kernel_rope,
    .shapes = {KILN_SHAPE_LIST(rope_check), KILN_SHAPE_LIST(rope_tune), KILN_SHAPE_LIST(rope_quick)},
    .shape_ok = rope_shape_ok,
    .slots = rope_slots,
    .sizes = rope_sizes,
    .fill = rope_fill,
    .steps = rope_steps,
    .n_steps = 1,
    .launch = rope_launch,
};

KILN_KERNEL_FROM_DESC(rope, rope_desc,
                      .doc = "in-place rotary embedding of [tokens][heads][head_dim], interleaved (GGUF) or "
                             "half-split pairs",
                      .params = rope_params, .n_params = N_ROPE, .n_slots = 3, .shape_key = rope_shape_key,
                      .bytes = rope_bytes, .flops = rope_flops);
