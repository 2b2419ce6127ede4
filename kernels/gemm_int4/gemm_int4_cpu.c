/* kernels/gemm_int4/gemm_int4_cpu.c - gemm_int4 on the CPU: AVX-512, AVX2,
 * NEON and scalar paths over Kiln's layout, chosen by the launch's ISA bits
 * (devices/cpu/cpu_isa.h). Weights interleaved by rows (ILV > 1, the layout
 * gemv's winner chose) are gathered a row at a time first.
 *
 * A task owns ROWS rows: each is dequantized to f32 once (SIMD unpacking as
 * in gemv_int4_cpu.c; all code x f16-scale products are exact in f32), then
 * dotted with the N token rows of X in blocks of TN tokens, two weight rows
 * x TN tokens per pass (2*TN FMA accumulators; each weight vector load
 * serves TN tokens, each x load two rows). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu_isa.h"
#include "kernels/gemm_int4/gemm_int4.h"
#include "kernels/gemv_int4/gemv_int4.h"
#include "kernels/sources.h"
#include "util/f16.h"

#if defined(__x86_64__) || defined(__i386__)
#define KILN_X86 1
#include <immintrin.h>
#endif
#ifdef KILN_ARM64
#include <arm_neon.h>
#endif

#define MAX_TN 8

typedef struct gemm_args {
    const uint32_t *qs;
    const uint16_t *scales, *mins;
    const float *x;
    float *y;
    uint32_t M, K, wpr, gpr, N;
    int quant, group;
} gemm_args;

static int zero_of(int q) { return q == KILN_Q4F16_1 ? 7 : q == KILN_Q4_0 ? 8 : 0; }

/* One element the slow way (tails and the scalar path). */
static float weight(const gemm_args *a, uint32_t r, uint32_t k)
{
    const uint32_t *w = a->qs + (size_t)r * a->wpr;
    if (a->quant == KILN_F16)
        return kiln_f16_to_f32((uint16_t)(w[k / 2] >> (16 * (k % 2))));
    uint32_t g = k / (uint32_t)a->group;
    float s = kiln_f16_to_f32(a->scales[(size_t)r * a->gpr + g]);
    if (a->quant == KILN_Q8_0)
        return (float)(int8_t)(w[k / 4] >> (8 * (k % 4))) * s;
    int c = (int)(w[k / 8] >> (4 * (k % 8)) & 0xF);
    if (a->quant == KILN_Q4_1)
        return (float)c * s + kiln_f16_to_f32(a->mins[(size_t)r * a->gpr + g]);
    return (float)(c - zero_of(a->quant)) * s;
}

static uint32_t full_groups(const gemm_args *a) { return a->quant == KILN_F16 ? 0 : a->K / (uint32_t)a->group; }

static void deq_scalar(const gemm_args *a, uint32_t r, uint32_t k_begin, float *out)
{
    for (uint32_t k = k_begin; k < a->K; k++)
        out[k] = weight(a, r, k);
}

#ifdef KILN_X86
/* ---- AVX-512 ---- */

__attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c"))) static void deq_avx512(const gemm_args *a, uint32_t r,
                                                                                      float *out)
{
    const uint32_t *w = a->qs + (size_t)r * a->wpr;
    if (a->quant == KILN_F16) {
        uint32_t k = 0;
        for (; k + 16 <= a->K; k += 16)
            _mm512_storeu_ps(out + k, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + k / 2))));
        deq_scalar(a, r, k, out);
        return;
    }
    uint32_t ng = full_groups(a), per = (uint32_t)a->group / 32;
    __m512 z = _mm512_set1_ps((float)zero_of(a->quant));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    for (uint32_t g = 0; g < ng; g++) {
        __m512 s = _mm512_set1_ps(kiln_f16_to_f32(a->scales[(size_t)r * a->gpr + g]));
        __m512 mn = _mm512_set1_ps(a->quant == KILN_Q4_1 ? kiln_f16_to_f32(a->mins[(size_t)r * a->gpr + g]) : 0.0f);
        for (uint32_t b = 0; b < per; b++) {
            uint32_t k = g * (uint32_t)a->group + 32 * b;
            __m512 f0, f1;
            if (a->quant == KILN_Q8_0) {
                __m128i lo = _mm_loadu_si128((const __m128i *)(w + k / 4));
                __m128i hi = _mm_loadu_si128((const __m128i *)(w + k / 4 + 4));
                f0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), s);
                f1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), s);
            } else {
                __m128i v = _mm_loadu_si128((const __m128i *)(w + k / 8));
                __m128i lo = _mm_and_si128(v, m4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
                f0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)));
                f1 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi8(lo, hi)));
                if (a->quant == KILN_Q4_1) {
                    f0 = _mm512_fmadd_ps(f0, s, mn);
                    f1 = _mm512_fmadd_ps(f1, s, mn);
                } else {
                    f0 = _mm512_mul_ps(_mm512_sub_ps(f0, z), s);
                    f1 = _mm512_mul_ps(_mm512_sub_ps(f1, z), s);
                }
            }
            _mm512_storeu_ps(out + k, f0);
            _mm512_storeu_ps(out + k + 16, f1);
        }
    }
    deq_scalar(a, r, ng * (uint32_t)a->group, out);
}

/* out[i][t] = w_i . x_t over K for rows w0, w1 and tn tokens. */
static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,fma,f16c"))) void
tile_avx512(const float *w0, const float *w1, const float *const *xp, const int tn, uint32_t K, float out[2][MAX_TN])
{
    __m512 a0[MAX_TN], a1[MAX_TN];
#pragma GCC unroll 8
    for (int t = 0; t < tn; t++)
        a0[t] = a1[t] = _mm512_setzero_ps();
    uint32_t k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 v0 = _mm512_loadu_ps(w0 + k), v1 = _mm512_loadu_ps(w1 + k);
#pragma GCC unroll 8
        for (int t = 0; t < tn; t++) {
            __m512 xv = _mm512_loadu_ps(xp[t] + k);
            a0[t] = _mm512_fmadd_ps(v0, xv, a0[t]);
            a1[t] = _mm512_fmadd_ps(v1, xv, a1[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < tn; t++) {
        float s0 = _mm512_reduce_add_ps(a0[t]), s1 = _mm512_reduce_add_ps(a1[t]);
        for (uint32_t j = k; j < K; j++) {
            s0 += w0[j] * xp[t][j];
            s1 += w1[j] * xp[t][j];
        }
        out[0][t] = s0;
        out[1][t] = s1;
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c"))) static void
dot_avx512(const float *w0, const float *w1, const float *const *xp, int tn, uint32_t K, float out[2][MAX_TN])
{
    switch (tn) {
    case 1: tile_avx512(w0, w1, xp, 1, K, out); break;
    case 2: tile_avx512(w0, w1, xp, 2, K, out); break;
    case 4: tile_avx512(w0, w1, xp, 4, K, out); break;
    default: tile_avx512(w0, w1, xp, 8, K, out); break;
    }
}

/* ---- AVX2 ---- */

__attribute__((target("avx2,fma,f16c"))) static void deq_avx2(const gemm_args *a, uint32_t r, float *out)
{
    const uint32_t *w = a->qs + (size_t)r * a->wpr;
    if (a->quant == KILN_F16) {
        uint32_t k = 0;
        for (; k + 8 <= a->K; k += 8)
            _mm256_storeu_ps(out + k, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + k / 2))));
        deq_scalar(a, r, k, out);
        return;
    }
    uint32_t ng = full_groups(a), per = (uint32_t)a->group / 32;
    __m256 z = _mm256_set1_ps((float)zero_of(a->quant));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    for (uint32_t g = 0; g < ng; g++) {
        __m256 s = _mm256_set1_ps(kiln_f16_to_f32(a->scales[(size_t)r * a->gpr + g]));
        __m256 mn = _mm256_set1_ps(a->quant == KILN_Q4_1 ? kiln_f16_to_f32(a->mins[(size_t)r * a->gpr + g]) : 0.0f);
        for (uint32_t b = 0; b < per; b++) {
            uint32_t k = g * (uint32_t)a->group + 32 * b;
            __m128i e[2];
            if (a->quant == KILN_Q8_0) {
                e[0] = _mm_loadu_si128((const __m128i *)(w + k / 4));
                e[1] = _mm_loadu_si128((const __m128i *)(w + k / 4 + 4));
            } else {
                __m128i v = _mm_loadu_si128((const __m128i *)(w + k / 8));
                __m128i lo = _mm_and_si128(v, m4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
                e[0] = _mm_unpacklo_epi8(lo, hi);
                e[1] = _mm_unpackhi_epi8(lo, hi);
            }
            for (int h = 0; h < 2; h++)
                for (int q = 0; q < 2; q++) {
                    __m128i b8 = q ? _mm_srli_si128(e[h], 8) : e[h];
                    __m256 f;
                    if (a->quant == KILN_Q8_0)
                        f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b8)), s);
                    else if (a->quant == KILN_Q4_1)
                        f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b8)), s, mn);
                    else
                        f = _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b8)), z), s);
                    _mm256_storeu_ps(out + k + 16 * h + 8 * q, f);
                }
        }
    }
    deq_scalar(a, r, ng * (uint32_t)a->group, out);
}

__attribute__((target("avx2,fma,f16c"))) static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

static inline __attribute__((always_inline, target("avx2,fma,f16c"))) void
tile_avx2(const float *w0, const float *w1, const float *const *xp, const int tn, uint32_t K, float out[2][MAX_TN])
{
    /* 16 ymm registers: 2*tn accumulators + 2 weights + 1 x (tn <= 6 fits;
     * tn = 8 spills a few accumulators to L1, still FMA-bound) */
    __m256 a0[MAX_TN], a1[MAX_TN];
#pragma GCC unroll 8
    for (int t = 0; t < tn; t++)
        a0[t] = a1[t] = _mm256_setzero_ps();
    uint32_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 v0 = _mm256_loadu_ps(w0 + k), v1 = _mm256_loadu_ps(w1 + k);
#pragma GCC unroll 8
        for (int t = 0; t < tn; t++) {
            __m256 xv = _mm256_loadu_ps(xp[t] + k);
            a0[t] = _mm256_fmadd_ps(v0, xv, a0[t]);
            a1[t] = _mm256_fmadd_ps(v1, xv, a1[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < tn; t++) {
        float s0 = hsum256(a0[t]), s1 = hsum256(a1[t]);
        for (uint32_t j = k; j < K; j++) {
            s0 += w0[j] * xp[t][j];
            s1 += w1[j] * xp[t][j];
        }
        out[0][t] = s0;
        out[1][t] = s1;
    }
}

__attribute__((target("avx2,fma,f16c"))) static void dot_avx2(const float *w0, const float *w1,
                                                             const float *const *xp, int tn, uint32_t K,
                                                             float out[2][MAX_TN])
{
    switch (tn) {
    case 1: tile_avx2(w0, w1, xp, 1, K, out); break;
    case 2: tile_avx2(w0, w1, xp, 2, K, out); break;
    case 4: tile_avx2(w0, w1, xp, 4, K, out); break;
    default: tile_avx2(w0, w1, xp, 8, K, out); break;
    }
}

#endif /* KILN_X86 */

/* ---- scalar ---- */

static void dot_scalar(const float *w0, const float *w1, const float *const *xp, int tn, uint32_t K,
                       float out[2][MAX_TN])
{
    for (int t = 0; t < tn; t++) {
        float s0 = 0, s1 = 0;
        for (uint32_t k = 0; k < K; k++) {
            s0 += w0[k] * xp[t][k];
            s1 += w1[k] * xp[t][k];
        }
        out[0][t] = s0;
        out[1][t] = s1;
    }
}

/* Row r of a matrix in layout ilv (kernels/quant_ilv.h) copied to a
 * row-major one-row matrix, so the dequantizers read it as row 0. */
static gemm_args gather_row(const gemm_args *a, uint32_t r, int ilv, uint32_t *words, uint16_t *sc, uint16_t *mn)
{
    uint32_t R = (uint32_t)ilv, t = r / R, i = r % R;
    for (uint32_t w = 0; w < a->wpr; w++)
        words[w] = a->qs[((size_t)t * a->wpr + w) * R + i];
    for (uint32_t g = 0; g < a->gpr; g++) {
        sc[g] = a->scales[((size_t)t * a->gpr + g) * R + i];
        if (a->quant == KILN_Q4_1)
            mn[g] = a->mins[((size_t)t * a->gpr + g) * R + i];
    }
    gemm_args one = *a;
    one.qs = words;
    one.scales = sc;
    one.mins = mn;
    return one;
}

#ifdef KILN_ARM64
/* ---- NEON ---- as the AVX2 path, 4 lanes */

static void deq_neon(const gemm_args *a, uint32_t r, float *out)
{
    const uint32_t *w = a->qs + (size_t)r * a->wpr;
    if (a->quant == KILN_F16) {
        uint32_t k = 0;
        for (; k + 4 <= a->K; k += 4)
            vst1q_f32(out + k, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(const void *)(w + k / 2)))));
        deq_scalar(a, r, k, out);
        return;
    }
    uint32_t ng = full_groups(a), per = (uint32_t)a->group / 32;
    float32x4_t z = vdupq_n_f32((float)zero_of(a->quant));
    for (uint32_t g = 0; g < ng; g++) {
        float32x4_t s = vdupq_n_f32(kiln_f16_to_f32(a->scales[(size_t)r * a->gpr + g]));
        float32x4_t mn = vdupq_n_f32(a->quant == KILN_Q4_1 ? kiln_f16_to_f32(a->mins[(size_t)r * a->gpr + g]) : 0.0f);
        for (uint32_t b = 0; b < per; b++) {
            uint32_t k = g * (uint32_t)a->group + 32 * b;
            int16x8_t h[4];
            if (a->quant == KILN_Q8_0) {
                const int8_t *p = (const int8_t *)(w + k / 4);
                int8x16_t v0 = vld1q_s8(p), v1 = vld1q_s8(p + 16);
                h[0] = vmovl_s8(vget_low_s8(v0));
                h[1] = vmovl_high_s8(v0);
                h[2] = vmovl_s8(vget_low_s8(v1));
                h[3] = vmovl_high_s8(v1);
            } else {
                uint8x16_t v = vld1q_u8((const uint8_t *)(w + k / 8));
                uint8x16_t lo = vandq_u8(v, vdupq_n_u8(0x0F)), hi = vshrq_n_u8(v, 4);
                uint8x16_t e0 = vzip1q_u8(lo, hi), e1 = vzip2q_u8(lo, hi); /* element order */
                h[0] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(e0)));
                h[1] = vreinterpretq_s16_u16(vmovl_high_u8(e0));
                h[2] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(e1)));
                h[3] = vreinterpretq_s16_u16(vmovl_high_u8(e1));
            }
            for (int i = 0; i < 8; i++) {
                int16x4_t q = i % 2 ? vget_high_s16(h[i / 2]) : vget_low_s16(h[i / 2]);
                float32x4_t f = vcvtq_f32_s32(vmovl_s16(q)), v;
                if (a->quant == KILN_Q8_0)
                    v = vmulq_f32(f, s);
                else if (a->quant == KILN_Q4_1)
                    v = vfmaq_f32(mn, f, s); /* f * s is exact: one rounding, as the reference */
                else
                    v = vmulq_f32(vsubq_f32(f, z), s);
                vst1q_f32(out + k + 4 * i, v);
            }
        }
    }
    deq_scalar(a, r, ng * (uint32_t)a->group, out);
}

/* 32 registers: 2*tn accumulators + 2 weights + 1 x fit for tn <= 8. */
static inline __attribute__((always_inline)) void tile_neon(const float *w0, const float *w1,
                                                            const float *const *xp, const int tn, uint32_t K,
                                                            float out[2][MAX_TN])
{
    float32x4_t a0[MAX_TN], a1[MAX_TN];
    for (int t = 0; t < tn; t++)
        a0[t] = a1[t] = vdupq_n_f32(0);
    uint32_t k = 0;
    for (; k + 4 <= K; k += 4) {
        float32x4_t v0 = vld1q_f32(w0 + k), v1 = vld1q_f32(w1 + k);
        for (int t = 0; t < tn; t++) {
            float32x4_t xv = vld1q_f32(xp[t] + k);
            a0[t] = vfmaq_f32(a0[t], v0, xv);
            a1[t] = vfmaq_f32(a1[t], v1, xv);
        }
    }
    for (int t = 0; t < tn; t++) {
        float s0 = vaddvq_f32(a0[t]), s1 = vaddvq_f32(a1[t]);
        for (uint32_t j = k; j < K; j++) {
            s0 += w0[j] * xp[t][j];
            s1 += w1[j] * xp[t][j];
        }
        out[0][t] = s0;
        out[1][t] = s1;
    }
}

static void dot_neon(const float *w0, const float *w1, const float *const *xp, int tn, uint32_t K,
                     float out[2][MAX_TN])
{
    switch (tn) {
    case 1: tile_neon(w0, w1, xp, 1, K, out); break;
    case 2: tile_neon(w0, w1, xp, 2, K, out); break;
    case 4: tile_neon(w0, w1, xp, 4, K, out); break;
    default: tile_neon(w0, w1, xp, 8, K, out); break;
    }
}
#endif

/* The path isa picks: 2 AVX-512, 1 AVX2, -1 NEON, 0 scalar. */
static int path_of(unsigned isa)
{
#ifdef KILN_X86
    return kiln_cpu_isa_level(isa);
#elif defined(KILN_ARM64)
    return isa & KILN_ISA_NEON ? -1 : 0;
#else
    (void)isa;
    return 0;
#endif
}

static void deq_row(const gemm_args *a, int isa, uint32_t r, float *out)
{
#ifdef KILN_X86
    if (isa == 2)
        deq_avx512(a, r, out);
    else if (isa == 1)
        deq_avx2(a, r, out);
    else
#endif
#ifdef KILN_ARM64
    if (isa == -1)
        deq_neon(a, r, out);
    else
#endif
        deq_scalar(a, r, 0, out);
}

static void dot_rows(int isa, const float *w0, const float *w1, const float *const *xp, int tn, uint32_t K,
                     float out[2][MAX_TN])
{
#ifdef KILN_X86
    if (isa == 2)
        dot_avx512(w0, w1, xp, tn, K, out);
    else if (isa == 1)
        dot_avx2(w0, w1, xp, tn, K, out);
    else
#endif
#ifdef KILN_ARM64
    if (isa == -1)
        dot_neon(w0, w1, xp, tn, K, out);
    else
#endif
        dot_scalar(w0, w1, xp, tn, K, out);
}

static void gemm_int4_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    const kiln_define *d = l->defines;
    int nd = l->n_defines;
    if (kiln_define_get(d, nd, "KILN_TEST_CRASH", 0))
        raise(SIGSEGV);
    if (kiln_define_get(d, nd, "KILN_TEST_HANG", 0)) {
        volatile int spin = 1;
        while (spin)
            ;
    }
    gemm_args a = {
        .qs = l->ptr[0], .scales = l->ptr[1], .mins = l->ptr[2], .x = l->ptr[3], .y = l->ptr[4],
        .M = l->arg[5].u32, .K = l->arg[6].u32, .wpr = l->arg[7].u32, .gpr = l->arg[8].u32, .N = l->arg[9].u32,
        .quant = (int)kiln_define_get(d, nd, "QUANT", 0), .group = (int)kiln_define_get(d, nd, "GROUP", 32),
    };
    uint32_t rows = (uint32_t)kiln_define_get(d, nd, "ROWS", 1);
    int tn = (int)kiln_define_get(d, nd, "TN", 1);
    if (rows < 1)
        rows = 1;
    if (tn != 1 && tn != 2 && tn != 4)
        tn = MAX_TN;
    if (!a.K || !a.N || !a.M)
        return;
    float *xcopy = NULL;
    if (kiln_define_get(d, nd, "KILN_TEST_BREAK", 0) && a.K > 1) {
        /* planted bug: x[n][0] read from x[n][1] */
        size_t nx = (size_t)a.N * a.K;
        xcopy = malloc(sizeof *xcopy * nx);
        if (!xcopy)
            return;
        memcpy(xcopy, a.x, sizeof *xcopy * nx);
        for (uint32_t n = 0; n < a.N; n++)
            xcopy[(size_t)n * a.K] = xcopy[(size_t)n * a.K + 1];
        a.x = xcopy;
    }
    /* dequantized rows; the stride keeps rows 64-byte aligned */
    size_t stride = ((size_t)a.K + 15) / 16 * 16;
    float *wbuf = aligned_alloc(64, sizeof(float) * stride * rows);
    if (!wbuf) {
        free(xcopy);
        return;
    }
    int isa = path_of(l->isa), ilv = (int)kiln_define_get(d, nd, "ILV", 1);
    uint32_t *gw = NULL;
    uint16_t *gs = NULL;
    if (ilv > 1 && (!(gw = malloc(sizeof *gw * a.wpr)) || !(gs = malloc(sizeof *gs * 2 * (a.gpr + 1))))) {
        free(gw);
        free(wbuf);
        free(xcopy);
        return;
    }
    for (uint32_t wg = wg_begin; wg < wg_end; wg++) {
        uint32_t r0 = wg * rows;
        if (r0 >= a.M)
            break;
        uint32_t rn = a.M - r0 < rows ? a.M - r0 : rows;
        for (uint32_t i = 0; i < rn; i++) {
            float *out = wbuf + i * stride;
            gemm_args one = ilv > 1 ? gather_row(&a, r0 + i, ilv, gw, gs, gs + a.gpr + 1) : a;
            uint32_t r = ilv > 1 ? 0 : r0 + i;
            deq_row(&one, isa, r, out);
        }
        for (uint32_t t0 = 0; t0 < a.N; t0 += (uint32_t)tn) {
            const float *xp[MAX_TN];
            for (int t = 0; t < tn; t++) {
                uint32_t n = t0 + (uint32_t)t < a.N ? t0 + (uint32_t)t : a.N - 1; /* clamped, never written */
                xp[t] = a.x + (size_t)n * a.K;
            }
            for (uint32_t i = 0; i < rn; i += 2) {
                const float *w0 = wbuf + i * stride, *w1 = i + 1 < rn ? w0 + stride : w0;
                float out[2][MAX_TN];
                dot_rows(isa, w0, w1, xp, tn, a.K, out);
                for (int t = 0; t < tn && t0 + (uint32_t)t < a.N; t++) {
                    float *yt = a.y + (size_t)(t0 + (uint32_t)t) * a.M + r0 + i;
                    yt[0] = out[0][t];
                    if (i + 1 < rn)
                        yt[1] = out[1][t];
                }
            }
        }
    }
    free(gw);
    free(gs);
    free(wbuf);
    free(xcopy);
}

const kiln_cpu_entry kiln_cpu_entries_gemm_int4[] = {{"gemm_int4_cpu", gemm_int4_cpu}, {0, 0}};
