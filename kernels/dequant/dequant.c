/* kernels/dequant/dequant.c - dequantize a kiln_qmatrix (kernels/quant.h layout)
 * into a dense f32 or f16 matrix.
 *
 * Slots: 0 qs (u32, rows x words_per_row), 1 scales (f16, rows x groups_per_row),
 *        2 mins (f16, same size; q4_1 only, a 4-byte dummy otherwise),
 *        3 out (rows x cols, f32 when shape.op == 0, f16 when shape.op == 1).
 * Shape: m = rows, k = cols (any size; the matrix is padded to the group),
 *        quant = q4f16_1 | q4_0 | q4_1 | q8_0, group = 32 | 128 (q8_0: 32), op.
 * Scalars (every backend): rows, cols, words_per_row, groups_per_row, quant,
 *        group, op.
 * Schedule space (GPU): wg threads per workgroup; ept consecutive output
 *   elements per thread (over the flattened rows x cols output, so odd widths
 *   need no special case); vec elements per store (float2/float4, half2/half4;
 *   GLSL writes f16 in 32-bit words, so vec 1 and 2 are both pairs there).
 *   The cpu backend runs one row per workgroup with AVX-512/AVX2 or scalar
 *   decode (dequant_cpu.c); the GPU parameters stay at their defaults there.
 *
 * Exactness: (q - z) * d and q * d are exact in f32 (a code has <= 8 bits, an
 * f16 scale 11), so every backend computes the same f32 with one multiply and
 * at most one add (q4_1: q*d + m, or fma(q, d, m), identical because q*d is
 * exact); f16 output rounds that f32 to nearest even. The output is compared
 * bit-exactly (KILN_CMP_EXACT).
 *
 * KILN_TEST_BREAK=1: elements of a row's first group use scale (and min)
 * index row*groups_per_row + 1 (the next group's, or the next row's when the
 * row has one group), a different random scale: caught bit-exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dequant/dequant.h"
#include "kernels/desc.h"
#include "kernels/kernel.h"
#include "kernels/sources.h"
#include "util/f16.h"
#include "util/rng.h"

extern const kiln_kernel kiln_kernel_dequant;

enum { P_WG, P_EPT, P_VEC, P_STREAM };
static const kiln_param params[] = {
    {"wg", "WG", "threads per workgroup (GPU)", 4, {32, 64, 128, 256}, 64, KILN_P_GPU | KILN_P_WG},
    {"ept", "EPT", "consecutive output elements per thread (GPU)", 3, {8, 16, 32}, 8, KILN_P_GPU},
    {"vec", "VEC", "output elements per store (GPU)", 3, {1, 2, 4}, 1, KILN_P_GPU},
    /* a whole matrix decoded to f32 is 8x its int4 bytes: written through
     * the cache, every output line is first read (read-for-ownership) */
    {"stream", "STREAM", "cpu: non-temporal stores of the output (rows that start 64-byte aligned)", 2,
         {0, 1}, 0, KILN_P_CPU},
};
#define N_PARAMS ((int)(sizeof params / sizeof params[0]))

void kiln_dq_layout(const kiln_shape *s, int64_t *cols_pad, int64_t *wpr, int64_t *gpr)
{
    if (s->quant == KILN_F16) {
        *cols_pad = s->k;
        *wpr = (s->k + 1) / 2;
        *gpr = 0;
        return;
    }
    int g = s->group > 0 ? s->group : 32;
    *cols_pad = (s->k + g - 1) / g * g;
    *wpr = s->quant == KILN_Q8_0 ? *cols_pad / 4 : *cols_pad / 8;
    *gpr = *cols_pad / g;
}

static int shape_ok(const kiln_shape *s, char *why, size_t n)
{
    if (s->quant != KILN_Q4F16_1 && s->quant != KILN_Q4_0 && s->quant != KILN_Q4_1 && s->quant != KILN_Q8_0) {
        snprintf(why, n, "quant %s not supported (q4f16_1, q4_0, q4_1, q8_0)", kiln_quant_name(s->quant));
        return 0;
    }
    if (s->group != 32 && s->group != 128) {
        snprintf(why, n, "group %d must be 32 or 128", s->group);
        return 0;
    }
    if (s->quant == KILN_Q8_0 && s->group != 32) {
        snprintf(why, n, "q8_0 uses group 32");
        return 0;
    }
    if (s->m < 1 || s->k < 1 || s->m * s->k > (int64_t)1 << 31) {
        snprintf(why, n, "rows %lld x cols %lld out of range", (long long)s->m, (long long)s->k);
        return 0;
    }
    if (s->op != 0 && s->op != 1) {
        snprintf(why, n, "op %d: 0 (f32 out) or 1 (f16 out)", s->op);
        return 0;
    }
    return 1;
}

static void shape_key(const kiln_shape *s, char *buf, size_t n)
{
    snprintf(buf, n, "m%lld.k%lld.%s.g%d.%s", (long long)s->m, (long long)s->k, kiln_quant_name(s->quant), s->group,
             s->op ? "f16" : "f32");
}

#define DQ(m_, k_, q, g, op_) {.m = (m_), .k = (k_), .quant = (q), .group = (g), .op = (op_)}
/* every format x group, both outputs, odd widths and a one-row matrix */
static const kiln_shape quick[] = {
    DQ(7, 200, KILN_Q4F16_1, 32, 0), /* 200 = 6 groups + 8 */
    DQ(5, 300, KILN_Q4F16_1, 128, 1), /* partial last group of 128 */
    DQ(7, 200, KILN_Q4_0, 32, 1),
    DQ(5, 300, KILN_Q4_0, 128, 0),
    DQ(7, 200, KILN_Q4_1, 32, 0),
    DQ(5, 300, KILN_Q4_1, 128, 1),
    DQ(6, 100, KILN_Q8_0, 32, 0),
    DQ(1, 96, KILN_Q8_0, 32, 1),
    DQ(3, 33, KILN_Q4_1, 32, 0),      /* odd total, one element past a group */
};
/* Llama-7B weights: attention 4096x4096, FFN 11008x4096 and 4096x11008 */
static const kiln_shape tune[] = {
    DQ(4096, 4096, KILN_Q4F16_1, 32, 1),
    DQ(11008, 4096, KILN_Q4F16_1, 32, 1),
    DQ(4096, 11008, KILN_Q4F16_1, 32, 1),
    DQ(4096, 4096, KILN_Q4_0, 32, 0),
};
/* real dims (Llama-7B 4096/11008, SmolLM2 576/1536), every format and
 * group, both outputs, plus odd sizes */
static const kiln_shape check_shapes[] = {
    DQ(64, 4096, KILN_Q4F16_1, 32, 0),
    DQ(32, 11008, KILN_Q4F16_1, 128, 1),
    DQ(576, 1536, KILN_Q4_0, 32, 1),
    DQ(1536, 576, KILN_Q4_1, 32, 0),
    DQ(96, 4096, KILN_Q4_1, 128, 1),
    DQ(128, 4096, KILN_Q4_0, 128, 0),
    DQ(576, 576, KILN_Q8_0, 32, 0),
    DQ(48, 11008, KILN_Q8_0, 32, 1),
    DQ(17, 1001, KILN_Q4F16_1, 32, 0),
    DQ(14, 333, KILN_Q4_1, 128, 1), /* f16 output: even element counts (GLSL) */
    DQ(11, 77, KILN_Q8_0, 32, 0),
    DQ(10, 77, KILN_Q8_0, 32, 1),
};
#undef DQ

/* GPU constraints beyond the flags (the cpu keeps ept and vec at 8 and 1). */
static int check(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n)
{
    if (c->v[P_EPT] % c->v[P_VEC]) {
        snprintf(why, n, "ept %d not a multiple of vec %d", c->v[P_EPT], c->v[P_VEC]);
        return 0;
    }
    if (fp->backend == KILN_VULKAN && s->op == 1 && (s->m * s->k) % 2) {
        snprintf(why, n, "f16 output of an odd element count (%lld): GLSL stores 32-bit words",
                 (long long)(s->m * s->k));
        return 0;
    }
    return 1;
}

/* Random codes over the full range, scales of mixed sign spanning 2^-20..2^4
 * (f16 subnormal to large: f16 outputs hit subnormals, rounding and
 * overflow-free large values), a few outlier groups, random mins. Never all
 * zero. */
void kiln_dq_random(const kiln_shape *s, uint32_t *qs, uint16_t *scales, uint16_t *mins, uint64_t seed)
{
    int64_t cols_pad, wpr, gpr;
    kiln_dq_layout(s, &cols_pad, &wpr, &gpr);
    kiln_rng r;
    kiln_rng_seed(&r, seed);
    for (int64_t i = 0; i < s->m * wpr; i++)
        qs[i] = (uint32_t)kiln_rng_u64(&r);
    if (s->quant == KILN_Q4F16_1) /* codes 0..14 (15 is outside the format) */
        for (int64_t i = 0; i < s->m * wpr; i++)
            for (int j = 0; j < 8; j++)
                if (((qs[i] >> (4 * j)) & 15) == 15)
                    qs[i] &= ~((uint32_t)1 << (4 * j));
    for (int64_t i = 0; i < s->m * gpr; i++) {
        float mag = ldexpf(1.0f + kiln_rng_uniform(&r, 0, 1), (int)kiln_rng_below(&r, 12) - 10);
        if (kiln_rng_below(&r, 16) == 0)
            mag = ldexpf(mag, kiln_rng_below(&r, 2) ? 6 : -10); /* outlier groups */
        float d = kiln_rng_below(&r, 2) ? mag : -mag;
        scales[i] = kiln_f32_to_f16(d);
        if (mins)
            mins[i] = kiln_f32_to_f16(kiln_rng_uniform(&r, -8, 8) * fabsf(d));
    }
    /* zero codes in the padding, like quant.h promises */
    for (int64_t row = 0; row < s->m; row++)
        for (int64_t c = s->k; c < cols_pad; c++) {
            uint32_t *w = &qs[row * wpr + (s->quant == KILN_Q8_0 ? c / 4 : c / 8)];
            if (s->quant == KILN_Q8_0)
                *w &= ~((uint32_t)0xFF << (8 * (c % 4)));
            else {
                uint32_t z = s->quant == KILN_Q4F16_1 ? 7 : s->quant == KILN_Q4_0 ? 8 : 0;
                *w = (*w & ~((uint32_t)15 << (4 * (c % 8)))) | z << (4 * (c % 8));
            }
        }
}

float kiln_dq_value(int quant, int group, const uint32_t *qs_row, const uint16_t *sc_row, const uint16_t *mn_row,
                    int64_t c)
{
    float d = kiln_f16_to_f32(sc_row[c / group]);
    if (quant == KILN_Q8_0) {
        int q = (int8_t)(uint8_t)(qs_row[c / 4] >> (8 * (c % 4)));
        return (float)q * d;
    }
    int q = (int)((qs_row[c / 8] >> (4 * (c % 8))) & 15);
    if (quant == KILN_Q4F16_1)
        return (float)(q - 7) * d;
    if (quant == KILN_Q4_0)
        return (float)(q - 8) * d;
    float p = (float)q * d; /* exact */
    return p + kiln_f16_to_f32(mn_row[c / group]);
}

static const kiln_slot slots[] = {
    {"qs", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"scales", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"mins", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"out", KILN_OUT, KILN_CMP_EXACT, 0, 0}, /* bit-exact: see the header comment */
};

static int sizes(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    (void)cls, (void)seed;
    int64_t cols_pad, wpr, gpr;
    kiln_dq_layout(s, &cols_pad, &wpr, &gpr);
    slot[0].bytes = (size_t)(s->m * wpr) * 4;
    slot[1].bytes = (size_t)(s->m * gpr) * 2;
    slot[2].bytes = s->quant == KILN_Q4_1 ? (size_t)(s->m * gpr) * 2 : 4;
    slot[3].bytes = (size_t)(s->m * s->k) * (s->op ? 2 : 4);
    return 4;
}

static int fill(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)
{
    (void)cls, (void)e;
    int64_t cols_pad, wpr, gpr;
    kiln_dq_layout(s, &cols_pad, &wpr, &gpr);
    int has_min = s->quant == KILN_Q4_1;
    kiln_problem_buf *bq = &p->bufs[0], *bs = &p->bufs[1], *bm = &p->bufs[2], *bo = &p->bufs[3];
    uint16_t *mins = has_min ? bm->host : NULL;
    if (!has_min)
        memset(bm->host, 0x5A, 4);
    kiln_dq_random(s, bq->host, bs->host, mins, seed * 0x9E3779B97F4A7C15ull + 11);
    for (int64_t r = 0; r < s->m; r++) {
        const uint32_t *qr = (const uint32_t *)bq->host + r * wpr;
        const uint16_t *sr = (const uint16_t *)bs->host + r * gpr, *mr = mins ? mins + r * gpr : NULL;
        for (int64_t c = 0; c < s->k; c++) {
            float v = kiln_dq_value(s->quant, s->group, qr, sr, mr, c);
            if (s->op)
                ((uint16_t *)bo->expect)[r * s->k + c] = kiln_f32_to_f16(v);
            else
                ((float *)bo->expect)[r * s->k + c] = v;
        }
    }
    return 0;
}

static const kiln_step_desc steps[] = {
    {.source = "dequant", KILN_ENTRY("dequant"), .signature = "bbbbiiiiiii",
     .args = {KA_SLOT(0), KA_SLOT(1), KA_SLOT(2), KA_SLOT(3), KA_SHAPE(M), KA_SHAPE(K), KA_VAL(0), KA_VAL(1),
              KA_SHAPE(QUANT), KA_SHAPE(GROUP), KA_SHAPE(OP)}},
};

static void launch(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_launch *v)
{
    int64_t cols_pad, wpr, gpr;
    kiln_dq_layout(s, &cols_pad, &wpr, &gpr);
    v->val[0] = (int32_t)wpr;
    v->val[1] = (int32_t)gpr;
    if (be == KILN_CPU)
        kiln_grid_n(&out->steps[0], s->m, 1); /* one row per workgroup */
    else /* ept consecutive elements of the flattened output per thread */
        kiln_grid_1d(&out->steps[0], (s->m * s->k + c->v[P_EPT] - 1) / c->v[P_EPT], c->v[P_WG]);
}

static double bytes(const kiln_shape *s)
{
    int64_t cols_pad, wpr, gpr;
    kiln_dq_layout(s, &cols_pad, &wpr, &gpr);
    double b = (double)s->m * wpr * 4 + (double)s->m * gpr * 2 * (s->quant == KILN_Q4_1 ? 2 : 1);
    return b + (double)s->m * s->k * (s->op ? 2 : 4);
}

static double flops(const kiln_shape *s) { return (double)s->m * s->k * (s->quant == KILN_Q4_1 ? 2 : 1); }

static const kiln_kernel_desc desc = {
    .kernel = &kiln_kernel_dequant,
    .shapes = {KILN_SHAPE_LIST(check_shapes), KILN_SHAPE_LIST(tune), KILN_SHAPE_LIST(quick)},
    .shape_ok = shape_ok,
    .check = check,
    .slots = slots,
    .sizes = sizes,
    .fill = fill,
    .steps = steps,
    .n_steps = 1,
    .launch = launch,
};

KILN_KERNEL_FROM_DESC(dequant, desc,
                      .doc = "dequantize q4f16_1/q4_0/q4_1 (group 32/128) or q8_0 weights to f32 or f16, bit-exact",
                      .params = params, .n_params = N_PARAMS, .n_slots = 4, .shape_key = shape_key, .bytes = bytes,
                      .flops = flops);
