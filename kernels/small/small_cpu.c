/* kernels/small/small_cpu.c - CPU entries of embed_gather, silu_mul,
 * residual_add and argmax (layouts and arguments: see small.c).
 * residual_add and argmax are vectorized (AVX-512 / AVX2 / NEON / scalar, capped by
 * the launch's ISA bits); silu_mul too on x86 (a vector expf; elsewhere libm's expf);
 * embed_gather decodes one row per id. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu_isa.h"
#include "kernels/dequant/dequant.h"
#include "kernels/kernel.h"
#include "kernels/sources.h"
#include "util/f16.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define KILN_X86 1
#endif
#ifdef KILN_ARM64
#include <arm_neon.h>
#endif

#define CPU_CHUNK 4096

static int brk_of(const kiln_cpu_launch *l) { return (int)kiln_define_get(l->defines, l->n_defines, "KILN_TEST_BREAK", 0); }

/* ---------------------------------------------------------------- embed_gather */
static void embed_gather_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    const uint32_t *qs = l->ptr[0];
    const uint16_t *sc = l->ptr[1], *mn = l->ptr[2];
    const int32_t *ids = l->ptr[3];
    float *out = l->ptr[4];
    int64_t n = l->arg[5].i32, dim = l->arg[6].i32, vocab = l->arg[7].i32, wpr = l->arg[8].i32, gpr = l->arg[9].i32;
    int quant = l->arg[10].i32, group = l->arg[11].i32;
    int64_t R = kiln_define_get(l->defines, l->n_defines, "ILV", 1);
    int brk = brk_of(l);
    uint32_t *rowq = NULL;
    uint16_t *rows_sc = NULL;
    if (R > 1 && (!(rowq = malloc(sizeof *rowq * (size_t)wpr)) || !(rows_sc = malloc(sizeof *rows_sc * 2 * (size_t)gpr)))) {
        free(rowq);
        return;
    }
    for (uint32_t t = wg_begin; t < wg_end && t < n; t++) {
        int64_t id = ids[t];
        if (brk && t == 0)
            id = id > 0 ? id - 1 : id + 1;
        float *o = out + t * dim;
        if (id < 0 || id >= vocab) {
            memset(o, 0, (size_t)dim * sizeof *o);
            continue;
        }
        if (quant == KILN_F16) {
            const uint16_t *h = (const uint16_t *)(qs + id * wpr);
            for (int64_t c = 0; c < dim; c++)
                o[c] = kiln_f16_to_f32(h[c]);
            continue;
        }
        const uint32_t *qr = qs + id * wpr;
        const uint16_t *sr = sc + id * gpr, *mr = quant == KILN_Q4_1 ? mn + id * gpr : NULL;
        if (R > 1) { /* interleaved table (kernels/quant_ilv.h): gather the row */
            int64_t tile = id / R, i = id % R;
            for (int64_t w = 0; w < wpr; w++)
                rowq[w] = qs[(tile * wpr + w) * R + i];
            for (int64_t g = 0; g < gpr; g++) {
                rows_sc[g] = sc[(tile * gpr + g) * R + i];
                if (quant == KILN_Q4_1)
                    rows_sc[gpr + g] = mn[(tile * gpr + g) * R + i];
            }
            qr = rowq;
            sr = rows_sc;
            mr = quant == KILN_Q4_1 ? rows_sc + gpr : NULL;
        }
        for (int64_t c = 0; c < dim; c++)
            o[c] = kiln_dq_value(quant, group, qr, sr, mr, c);
    }
    free(rowq);
    free(rows_sc);
}

/* ---------------------------------------------------------------- silu_mul */
/* exp(-g) in vectors: Cephes' expf (range reduction by ln 2 in two parts, a
 * degree-5 polynomial, the exponent built in the bits; ~1 ulp against
 * libm's, far inside silu_mul's budget in small.c), so that the FFN gate
 * of a batched decode step (B x 1536 elements for SmolLM2) is not a scalar
 * libm loop. Inputs are clamped to +-88.376: beyond, exp(-g) is 0 or
 * 2^128 = inf, and g / (1 + e) is g or -0 as with expf. */
#define EXP_HI 88.3762626647949f
#define EXP_LOG2E 1.44269504088896341f
#define EXP_C1 0.693359375f
#define EXP_C2 (-2.12194440e-4f)
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

#ifdef KILN_X86
__attribute__((target("avx512f"))) static void silu_avx512(const float *g, const float *u, float *o, int64_t b,
                                                           int64_t e)
{
    const __m512 hi = _mm512_set1_ps(EXP_HI), lo = _mm512_set1_ps(-EXP_HI), one = _mm512_set1_ps(1.0f);
    int64_t i = b;
    for (; i + 16 <= e; i += 16) {
        __m512 x = _mm512_loadu_ps(g + i);
        __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), x), lo), hi);
        __m512 fx = _mm512_roundscale_ps(_mm512_fmadd_ps(t, _mm512_set1_ps(EXP_LOG2E), _mm512_set1_ps(0.5f)),
                                         _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        t = _mm512_fnmadd_ps(fx, _mm512_set1_ps(EXP_C1), t);
        t = _mm512_fnmadd_ps(fx, _mm512_set1_ps(EXP_C2), t);
        __m512 z = _mm512_mul_ps(t, t), y = _mm512_set1_ps(EXP_P0);
        y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(EXP_P1));
        y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(EXP_P2));
        y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(EXP_P3));
        y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(EXP_P4));
        y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(EXP_P5));
        y = _mm512_add_ps(_mm512_fmadd_ps(y, z, t), one);
        __m512i n = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
        __m512 ex = _mm512_mul_ps(y, _mm512_castsi512_ps(n));
        __m512 r = _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, ex)), _mm512_loadu_ps(u + i));
        _mm512_storeu_ps(o + i, r);
    }
    for (; i < e; i++)
        o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

__attribute__((target("avx2,fma"))) static void silu_avx2(const float *g, const float *u, float *o, int64_t b,
                                                          int64_t e)
{
    const __m256 hi = _mm256_set1_ps(EXP_HI), lo = _mm256_set1_ps(-EXP_HI), one = _mm256_set1_ps(1.0f);
    int64_t i = b;
    for (; i + 8 <= e; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i);
        __m256 t = _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), x), lo), hi);
        __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(t, _mm256_set1_ps(EXP_LOG2E), _mm256_set1_ps(0.5f)));
        t = _mm256_fnmadd_ps(fx, _mm256_set1_ps(EXP_C1), t);
        t = _mm256_fnmadd_ps(fx, _mm256_set1_ps(EXP_C2), t);
        __m256 z = _mm256_mul_ps(t, t), y = _mm256_set1_ps(EXP_P0);
        y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(EXP_P1));
        y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(EXP_P2));
        y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(EXP_P3));
        y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(EXP_P4));
        y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(EXP_P5));
        y = _mm256_add_ps(_mm256_fmadd_ps(y, z, t), one);
        __m256i n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
        __m256 ex = _mm256_mul_ps(y, _mm256_castsi256_ps(n));
        __m256 r = _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, ex)), _mm256_loadu_ps(u + i));
        _mm256_storeu_ps(o + i, r);
    }
    for (; i < e; i++)
        o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
#endif

static void silu_mul_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    const float *g = l->ptr[0], *u = l->ptr[1];
    float *o = l->ptr[2];
    int64_t n = l->arg[3].i32;
    int brk = brk_of(l);
    int64_t b = (int64_t)wg_begin * CPU_CHUNK, e = (int64_t)wg_end * CPU_CHUNK < n ? (int64_t)wg_end * CPU_CHUNK : n;
#ifdef KILN_X86
    int isa = kiln_cpu_isa_level(l->isa);
    if (isa == 2)
        silu_avx512(g, u, o, b, e);
    else if (isa == 1)
        silu_avx2(g, u, o, b, e);
    else
#endif
        for (int64_t i = b; i < e; i++)
            o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    if (brk && wg_begin == 0 && wg_end > 0 && n > 1)
        o[0] = g[0] / (1.0f + expf(-g[0])) * u[1];
}

/* ---------------------------------------------------------------- residual_add */
#ifdef KILN_X86
__attribute__((target("avx2"))) static void add_avx2(float *x, const float *y, int64_t b, int64_t e)
{
    int64_t i = b;
    for (; i + 8 <= e; i += 8)
        _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < e; i++)
        x[i] += y[i];
}
__attribute__((target("avx512f"))) static void add_avx512(float *x, const float *y, int64_t b, int64_t e)
{
    int64_t i = b;
    for (; i + 16 <= e; i += 16)
        _mm512_storeu_ps(x + i, _mm512_add_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < e; i++)
        x[i] += y[i];
}
#endif

#ifdef KILN_ARM64
static void add_neon(float *x, const float *y, int64_t b, int64_t e)
{
    int64_t i = b;
    for (; i + 4 <= e; i += 4)
        vst1q_f32(x + i, vaddq_f32(vld1q_f32(x + i), vld1q_f32(y + i)));
    for (; i < e; i++)
        x[i] += y[i];
}
#endif

static void residual_add_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    float *x = l->ptr[0];
    const float *y = l->ptr[1];
    int64_t n = l->arg[2].i32;
    int64_t b = (int64_t)wg_begin * CPU_CHUNK, e = (int64_t)wg_end * CPU_CHUNK < n ? (int64_t)wg_end * CPU_CHUNK : n;
    if (b >= e)
        return;
    float x0 = x[0];
    int isa = kiln_cpu_isa_level(l->isa);
#ifdef KILN_X86
    if (isa == 2)
        add_avx512(x, y, b, e);
    else if (isa == 1)
        add_avx2(x, y, b, e);
    else
#endif
#ifdef KILN_ARM64
    if (l->isa & KILN_ISA_NEON)
        add_neon(x, y, b, e);
    else
#endif
        for (int64_t i = b; i < e; i++)
            x[i] += y[i];
    if (brk_of(l) && b == 0 && n > 1)
        x[0] = x0 + y[1];
    (void)isa;
}

/* ---------------------------------------------------------------- argmax */

/* index of the first maximum of l[b, e) */
static int64_t argmax_scalar(const float *l, int64_t b, int64_t e)
{
    int64_t best = b;
    for (int64_t i = b + 1; i < e; i++)
        if (l[i] > l[best])
            best = i;
    return best;
}

#ifdef KILN_X86
/* the maximum value by lanes, then the first index holding it */
__attribute__((target("avx512f"))) static int64_t argmax_avx512(const float *l, int64_t b, int64_t e)
{
    if (e - b < 32)
        return argmax_scalar(l, b, e);
    __m512 m = _mm512_loadu_ps(l + b);
    int64_t i = b + 16;
    for (; i + 16 <= e; i += 16)
        m = _mm512_max_ps(m, _mm512_loadu_ps(l + i));
    float mx = _mm512_reduce_max_ps(m);
    for (; i < e; i++)
        mx = l[i] > mx ? l[i] : mx;
    __m512 vm = _mm512_set1_ps(mx);
    for (i = b; i + 16 <= e; i += 16) {
        __mmask16 k = _mm512_cmp_ps_mask(_mm512_loadu_ps(l + i), vm, _CMP_EQ_OQ);
        if (k)
            return i + __builtin_ctz(k);
    }
    for (; i < e; i++)
        if (l[i] == mx)
            return i;
    return argmax_scalar(l, b, e); /* NaN in the input: fall back */
}
__attribute__((target("avx2"))) static int64_t argmax_avx2(const float *l, int64_t b, int64_t e)
{
    if (e - b < 16)
        return argmax_scalar(l, b, e);
    __m256 m = _mm256_loadu_ps(l + b);
    int64_t i = b + 8;
    for (; i + 8 <= e; i += 8)
        m = _mm256_max_ps(m, _mm256_loadu_ps(l + i));
    float t[8];
    _mm256_storeu_ps(t, m);
    float mx = t[0];
    for (int j = 1; j < 8; j++)
        mx = t[j] > mx ? t[j] : mx;
    for (; i < e; i++)
        mx = l[i] > mx ? l[i] : mx;
    __m256 vm = _mm256_set1_ps(mx);
    for (i = b; i + 8 <= e; i += 8) {
        int k = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(l + i), vm, _CMP_EQ_OQ));
        if (k)
            return i + __builtin_ctz((unsigned)k);
    }
    for (; i < e; i++)
        if (l[i] == mx)
            return i;
    return argmax_scalar(l, b, e);
}
#endif

#ifdef KILN_ARM64
/* as argmax_avx2: the maximum by lanes, then the first index holding it */
static int64_t argmax_neon(const float *l, int64_t b, int64_t e)
{
    if (e - b < 8)
        return argmax_scalar(l, b, e);
    float32x4_t m = vld1q_f32(l + b);
    int64_t i = b + 4;
    for (; i + 4 <= e; i += 4)
        m = vmaxq_f32(m, vld1q_f32(l + i));
    float mx = vmaxvq_f32(m);
    for (; i < e; i++)
        mx = l[i] > mx ? l[i] : mx;
    float32x4_t vm = vdupq_n_f32(mx);
    for (i = b; i + 4 <= e; i += 4)
        if (vmaxvq_u32(vceqq_f32(vld1q_f32(l + i), vm)))
            break;
    for (; i < e; i++)
        if (l[i] == mx)
            return i;
    return argmax_scalar(l, b, e); /* NaN in the input: fall back */
}
#endif

/* part[2*blk] = value bits, part[2*blk+1] = index */
static void argmax_partial_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    const float *lg = l->ptr[0];
    uint32_t *part = l->ptr[1];
    int64_t n = l->arg[2].i32, chunk = l->arg[3].i32;
    int isa = kiln_cpu_isa_level(l->isa);
    for (uint32_t blk = wg_begin; blk < wg_end; blk++) {
        int64_t b = (int64_t)blk * chunk, e = b + chunk < n ? b + chunk : n, best;
#ifdef KILN_X86
        if (isa == 2)
            best = argmax_avx512(lg, b, e);
        else if (isa == 1)
            best = argmax_avx2(lg, b, e);
        else
#endif
#ifdef KILN_ARM64
        if (l->isa & KILN_ISA_NEON)
            best = argmax_neon(lg, b, e);
        else
#endif
            best = argmax_scalar(lg, b, e);
        memcpy(&part[2 * blk], &lg[best], 4);
        part[2 * blk + 1] = (uint32_t)best;
    }
    (void)isa;
}

static void argmax_final_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    if (wg_begin > 0 || wg_end < 1)
        return;
    const uint32_t *part = l->ptr[0];
    uint32_t *out = l->ptr[1];
    int nb = l->arg[2].i32;
    float bv;
    memcpy(&bv, &part[0], 4);
    uint32_t bi = part[1];
    for (int i = 1; i < nb; i++) {
        float v;
        memcpy(&v, &part[2 * i], 4);
        if (v > bv || (v == bv && part[2 * i + 1] < bi)) {
            bv = v;
            bi = part[2 * i + 1];
        }
    }
    out[0] = bi + (uint32_t)brk_of(l);
}

const kiln_cpu_entry kiln_cpu_entries_small[] = {
    {"embed_gather_cpu", embed_gather_cpu},
    {"silu_mul_cpu", silu_mul_cpu},
    {"residual_add_cpu", residual_add_cpu},
    {"argmax_partial_cpu", argmax_partial_cpu},
    {"argmax_final_cpu", argmax_final_cpu},
    {0, 0},
};
