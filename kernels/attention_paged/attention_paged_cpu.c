/* kernels/attention_paged/attention_paged_cpu.c - CPU entries of attention_paged
 * and kv_append (layout and arguments: see attention_paged.c).
 *
 * attn_paged_cpu: one workgroup = HPW query heads of one kv group x one split
 * of the context. Per TILE positions: scores q.k for every head (each K row is
 * loaded once for the HPW heads), an online softmax update (running max m,
 * sum l, rescale of acc by exp(m_old - m_new)), then acc += p * v (each V row
 * loaded once for the HPW heads). WRITE_PARTIAL=1 writes [m, l, acc[hd]] per
 * (head, split) into the scratch buffer for attn_paged_combine_cpu.
 * The inner dot/axpy loops come in AVX-512, AVX2+FMA, NEON and scalar builds of the
 * same body, picked per launch from its ISA bits (devices/cpu/cpu_isa.h).
 *
 * KV_F16=1: the pools hold IEEE f16. kv_append rounds to nearest even (F16C
 * vcvtps2ph / NEON vcvt / util/f16.c's bit-exact scalar conversion, which all
 * give the same bits); attention accumulates in f32 and reads half the bytes:
 * the AVX-512 register paths (head_dim 64, 128) convert as they load
 * (vcvtph2ps), the others convert CVT_ROWS rows of a tile at a time into an
 * L1-resident f32 buffer and run the f32 dot/axpy paths on it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu_isa.h"
#include "kernels/attention_paged/attention_paged.h"
#include "kernels/kernel.h"
#include "kernels/sources.h"
#include "util/f16.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KILN_X86 1
#endif
#ifdef KILN_ARM64
#include <arm_neon.h>
#endif

#define NEG_BIG (-1.0e30f)
#define MAX_TILE 256
#define MAX_HPW 4
#define CVT_ROWS 32 /* f16 rows converted per step (32 x 256 x 4 = 32 KiB at most) */

typedef struct attn_args {
    const float *q;
    const void *kp, *vp; /* f32 or (f16) uint16_t pools */
    const int32_t *table;
    float *out;
    int heads, kv_heads, hd, ps, ctx;
    float scale;
    int tile, hpw, split, partial, brk, f16;
    uint32_t ngroups, nsplit;
} attn_args;

/* The workgroup body, instantiated once per ISA with its dot/axpy helpers. */
#define ATTN_BODY(SUFFIX, ATTR, DOT, AXPY, SCAL, EXPSUM, QK, PV, QK16, PV16)                                      \
    ATTR static void attn_wg_##SUFFIX(const attn_args *a, uint32_t g, uint32_t split)                            \
    {                                                                                                            \
        const int hd = a->hd, hpw = a->hpw, h0 = (int)g * hpw;                                                   \
        const int kvh = h0 / (a->heads / a->kv_heads);                                                           \
        int pb = 0, pe = a->ctx;                                                                                 \
        if (a->split > 0) {                                                                                      \
            pb = (int)split * a->split;                                                                          \
            pe = pb + a->split < a->ctx ? pb + a->split : a->ctx;                                                \
        }                                                                                                        \
        float qs[MAX_HPW][KILN_ATT_MAX_HD] __attribute__((aligned(64)));                                         \
        float acc[MAX_HPW][KILN_ATT_MAX_HD] __attribute__((aligned(64)));                                        \
        float sc[MAX_HPW][MAX_TILE];                                                                             \
        const float *rows[MAX_TILE];                                                                             \
        const uint16_t *rows16[MAX_TILE];                                                                        \
        size_t offs[MAX_TILE];                                                                                   \
        float m[MAX_HPW], l[MAX_HPW];                                                                            \
        for (int hh = 0; hh < hpw; hh++) {                                                                       \
            for (int i = 0; i < hd; i++) {                                                                       \
                qs[hh][i] = a->q[(size_t)(h0 + hh) * hd + i] * a->scale;                                         \
                acc[hh][i] = 0;                                                                                  \
            }                                                                                                    \
            m[hh] = NEG_BIG;                                                                                     \
            l[hh] = 0;                                                                                           \
        }                                                                                                        \
        for (int t0 = pb; t0 < pe; t0 += a->tile) {                                                              \
            int tn = pe - t0 < a->tile ? pe - t0 : a->tile;                                                      \
            for (int j = 0; j < tn; j++) {                                                                       \
                int p = t0 + j;                                                                                  \
                offs[j] = (((size_t)(uint32_t)a->table[p / a->ps] * a->kv_heads + kvh) * a->ps +                 \
                           (size_t)(p % a->ps > a->brk ? p % a->ps : a->brk)) * hd;                              \
            }                                                                                                    \
            if (a->f16) {                                                                                        \
                for (int j = 0; j < tn; j++)                                                                     \
                    rows16[j] = (const uint16_t *)a->kp + offs[j];                                               \
                QK16(qs, rows16, tn, hpw, hd, sc);                                                               \
            } else {                                                                                             \
                for (int j = 0; j < tn; j++)                                                                     \
                    rows[j] = (const float *)a->kp + offs[j];                                                    \
                QK(qs, rows, tn, hpw, hd, sc);                                                                   \
            }                                                                                                    \
            for (int hh = 0; hh < hpw; hh++) {                                                                   \
                float mt = m[hh];                                                                                \
                for (int j = 0; j < tn; j++)                                                                     \
                    mt = sc[hh][j] > mt ? sc[hh][j] : mt;                                                        \
                float alpha = expf(m[hh] - mt);                                                                  \
                m[hh] = mt;                                                                                      \
                float sum = EXPSUM(sc[hh], tn, mt);                                                              \
                l[hh] = l[hh] * alpha + sum;                                                                     \
                if (alpha != 1.0f)                                                                               \
                    SCAL(acc[hh], alpha, hd);                                                                    \
            }                                                                                                    \
            if (a->f16) {                                                                                        \
                for (int j = 0; j < tn; j++)                                                                     \
                    rows16[j] = (const uint16_t *)a->vp + offs[j];                                               \
                PV16(acc, sc, rows16, tn, hpw, hd);                                                              \
            } else {                                                                                             \
                for (int j = 0; j < tn; j++)                                                                     \
                    rows[j] = (const float *)a->vp + offs[j];                                                    \
                PV(acc, sc, rows, tn, hpw, hd);                                                                  \
            }                                                                                                    \
        }                                                                                                        \
        for (int hh = 0; hh < hpw; hh++) {                                                                       \
            int h = h0 + hh;                                                                                     \
            if (a->partial) {                                                                                    \
                float *rec = a->out + ((size_t)h * a->nsplit + split) * (size_t)(hd + 2);                        \
                rec[0] = m[hh];                                                                                  \
                rec[1] = l[hh];                                                                                  \
                memcpy(rec + 2, acc[hh], (size_t)hd * sizeof(float));                                            \
            } else {                                                                                             \
                float inv = 1.0f / l[hh];                                                                        \
                for (int i = 0; i < hd; i++)                                                                     \
                    a->out[(size_t)h * hd + i] = acc[hh][i] * inv;                                               \
            }                                                                                                    \
        }                                                                                                        \
    }

/* ---- scalar helpers ---- */
static inline float dot_scalar(const float *x, const float *y, int n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int i = 0; i < n; i += 4) {
        s0 += x[i] * y[i];
        s1 += x[i + 1] * y[i + 1];
        s2 += x[i + 2] * y[i + 2];
        s3 += x[i + 3] * y[i + 3];
    }
    return (s0 + s1) + (s2 + s3);
}
static inline void axpy_scalar(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}
static inline void scal_scalar(float *y, float a, int n)
{
    for (int i = 0; i < n; i++)
        y[i] *= a;
}
/* s[j] = exp(s[j] - mt) for j < n; returns their sum */
static inline float expsum_scalar(float *s, int n, float mt)
{
    float sum = 0;
    for (int j = 0; j < n; j++) {
        s[j] = expf(s[j] - mt);
        sum += s[j];
    }
    return sum;
}
/* The tile's scores sc[h][j] = q_h . k_j and the update acc_h += sc[h][j] v_j,
 * in terms of one dot / axpy per (head, position); the AVX-512 build has a
 * register-resident version for head_dim 64. */
#define QK_PV_GENERIC(SUFFIX, ATTR, DOT, AXPY)                                                                  \
    ATTR static inline void qk_##SUFFIX(float qs[][KILN_ATT_MAX_HD], const float *const *rows, int tn, int hpw,  \
                                        int hd, float sc[][MAX_TILE])                                            \
    {                                                                                                            \
        for (int j = 0; j < tn; j++)                                                                             \
            for (int hh = 0; hh < hpw; hh++)                                                                     \
                sc[hh][j] = DOT(qs[hh], rows[j], hd);                                                            \
    }                                                                                                            \
    ATTR static inline void pv_##SUFFIX(float acc[][KILN_ATT_MAX_HD], float sc[][MAX_TILE],                    \
                                        const float *const *rows, int tn, int hpw, int hd)                       \
    {                                                                                                            \
        for (int j = 0; j < tn; j++)                                                                             \
            for (int hh = 0; hh < hpw; hh++)                                                                     \
                AXPY(acc[hh], sc[hh][j], rows[j], hd);                                                           \
    }
/* f16 row -> f32 (bit-exact, util/f16.c; no compiler _Float16) */
static inline void cvt_scalar(float *d, const uint16_t *s, int n)
{
    for (int i = 0; i < n; i++)
        d[i] = kiln_f16_to_f32(s[i]);
}
QK_PV_GENERIC(scalar, , dot_scalar, axpy_scalar)
/* f16 rows through the f32 paths: CVT_ROWS rows at a time converted into an
 * L1-resident buffer, then QK / PV on it (sc shifted to the chunk) */
#define QK_PV_F16_VIA_CVT(SUFFIX, ATTR, CVT, QK, PV)                                                             \
    ATTR static void qk16_##SUFFIX(float qs[][KILN_ATT_MAX_HD], const uint16_t *const *rows, int tn, int hpw,    \
                                   int hd, float sc[][MAX_TILE])                                                 \
    {                                                                                                            \
        float cv[CVT_ROWS][KILN_ATT_MAX_HD] __attribute__((aligned(64)));                                        \
        const float *r[CVT_ROWS];                                                                                \
        for (int j0 = 0; j0 < tn; j0 += CVT_ROWS) {                                                              \
            int n = tn - j0 < CVT_ROWS ? tn - j0 : CVT_ROWS;                                                     \
            for (int j = 0; j < n; j++) {                                                                        \
                CVT(cv[j], rows[j0 + j], hd);                                                                    \
                r[j] = cv[j];                                                                                    \
            }                                                                                                    \
            QK(qs, r, n, hpw, hd, (float(*)[MAX_TILE]) & sc[0][j0]);                                             \
        }                                                                                                        \
    }                                                                                                            \
    ATTR static void pv16_##SUFFIX(float acc[][KILN_ATT_MAX_HD], float sc[][MAX_TILE],                          \
                                   const uint16_t *const *rows, int tn, int hpw, int hd)                         \
    {                                                                                                            \
        float cv[CVT_ROWS][KILN_ATT_MAX_HD] __attribute__((aligned(64)));                                        \
        const float *r[CVT_ROWS];                                                                                \
        for (int j0 = 0; j0 < tn; j0 += CVT_ROWS) {                                                              \
            int n = tn - j0 < CVT_ROWS ? tn - j0 : CVT_ROWS;                                                     \
            for (int j = 0; j < n; j++) {                                                                        \
                CVT(cv[j], rows[j0 + j], hd);                                                                    \
                r[j] = cv[j];                                                                                    \
            }                                                                                                    \
            PV(acc, (float(*)[MAX_TILE]) & sc[0][j0], r, n, hpw, hd);                                            \
        }                                                                                                        \
    }
QK_PV_F16_VIA_CVT(scalar, , cvt_scalar, qk_scalar, pv_scalar)
ATTN_BODY(scalar, , dot_scalar, axpy_scalar, scal_scalar, expsum_scalar, qk_scalar, pv_scalar, qk16_scalar,
          pv16_scalar)

#ifdef KILN_X86
/* ---- AVX2 + FMA (head_dim is a multiple of 4: 8-wide main loop + 4-wide tail) ---- */
#define AVX2 __attribute__((target("avx2,fma,f16c")))
AVX2 static inline float dot_avx2(const float *x, const float *y, int n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    if (i < n)
        r = _mm_fmadd_ps(_mm_loadu_ps(x + i), _mm_loadu_ps(y + i), r);
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_shuffle_ps(r, r, 1));
    return _mm_cvtss_f32(r);
}
AVX2 static inline void axpy_avx2(float *y, float a, const float *x, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n)
        _mm_storeu_ps(y + i, _mm_fmadd_ps(_mm256_castps256_ps128(va), _mm_loadu_ps(x + i), _mm_loadu_ps(y + i)));
}
AVX2 static inline void scal_avx2(float *y, float a, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] *= a;
}
/* exp(x) for x <= 0 (scores minus their max) and above -87 (below, 0):
 * x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial (relative error
 * ~2e-7, the order of expf's), times 2^n through the exponent bits. libm's
 * scalar expf was ~20% of a SmolLM2 attention call. */
AVX2 static inline __m256 exp_avx2(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.0f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}
AVX2 static inline float expsum_avx2(float *s, int n, float mt)
{
    __m256 vm = _mm256_set1_ps(mt), acc = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
        _mm256_storeu_ps(s + j, v);
        acc = _mm256_add_ps(acc, v);
    }
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_shuffle_ps(r, r, 1));
    float sum = _mm_cvtss_f32(r);
    for (; j < n; j++) {
        s[j] = expf(s[j] - mt);
        sum += s[j];
    }
    return sum;
}
/* F16C (part of KILN_ISA_AVX2, see cpu_isa.h); n is a multiple of 4 */
AVX2 static inline void cvt_avx2(float *d, const uint16_t *s, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    if (i < n)
        _mm_storeu_ps(d + i, _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(s + i))));
}
AVX2 static void f32_to_f16_avx2(uint16_t *d, const float *s, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++)
        d[i] = kiln_f32_to_f16(s[i]);
}
QK_PV_GENERIC(avx2, AVX2, dot_avx2, axpy_avx2)
QK_PV_F16_VIA_CVT(avx2, AVX2, cvt_avx2, qk_avx2, pv_avx2)
ATTN_BODY(avx2, AVX2, dot_avx2, axpy_avx2, scal_avx2, expsum_avx2, qk_avx2, pv_avx2, qk16_avx2, pv16_avx2)

/* ---- AVX-512 (16-wide, masked tail) ---- */
#define AVX512 __attribute__((target("avx512f,f16c")))
AVX512 static inline float dot_avx512(const float *x, const float *y, int n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, y + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
/* (masked loads and stores only for a tail: in the loop they made the int8
 * gemv 10x slower on Zen 4, see kernels/gemv_int4/q8mm_avx512.inc) */
AVX512 static inline void axpy_avx512(float *y, float a, const float *x, int n)
{
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, y + i)));
    }
}
AVX512 static inline void scal_avx512(float *y, float a, int n)
{
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_mul_ps(va, _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(k, y + i)));
    }
}
/* exp for x <= 0 as exp_avx2, 2^n through vscalefps */
AVX512 static inline __m512 exp_avx512(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-87.0f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_max_ps(x, lo);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_mov_ps((__mmask16)~under, _mm512_scalef_ps(p, n));
}
AVX512 static inline float expsum_avx512(float *s, int n, float mt)
{
    __m512 vm = _mm512_set1_ps(mt), acc = _mm512_setzero_ps();
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 v = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
        _mm512_storeu_ps(s + j, v);
        acc = _mm512_add_ps(acc, v);
    }
    float sum = _mm512_reduce_add_ps(acc);
    for (; j < n; j++) {
        s[j] = expf(s[j] - mt);
        sum += s[j];
    }
    return sum;
}
QK_PV_GENERIC(avx512g, AVX512, dot_avx512, axpy_avx512)

/* head_dim 64 (SmolLM2, Llama-3.2, TinyLlama) and 128 (Llama 2/3 7-8B): q and
 * acc of the HPW heads in registers, each k/v row loaded once; the scores of
 * 16 positions are summed across lanes together (a transpose-and-add tree)
 * instead of one horizontal sum each. The generic path kept acc in memory,
 * a store-to-load chain per position and head, at ~6 GB/s of KV. */
/* Lane l of the result is the sum of v[l]'s 16 lanes: unpacks pair the
 * vectors' partial sums within 128-bit lanes (2, then 4 vectors per lane),
 * two 128-bit-lane shuffles add across lanes. */
AVX512 static inline __m512 hsum16_avx512(__m512 v[16])
{
    __m512 a[8], b[4], c[2];
    for (int i = 0; i < 8; i++) {
        __m512 lo = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), hi = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
        a[i] = _mm512_add_ps(lo, hi); /* [v2i.0+v2i.2, v2i+1.0+.., v2i.1+.., v2i+1.1+..] per 128-bit lane */
    }
    for (int i = 0; i < 4; i++) {
        __m512 lo = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a[2 * i]), _mm512_castps_pd(a[2 * i + 1])));
        __m512 hi = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a[2 * i]), _mm512_castps_pd(a[2 * i + 1])));
        b[i] = _mm512_add_ps(lo, hi); /* per 128-bit lane: the lane-sums of 4 vectors */
    }
    for (int i = 0; i < 2; i++) {
        __m512 lo = _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88), hi = _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD);
        c[i] = _mm512_add_ps(lo, hi);
    }
    __m512 lo = _mm512_shuffle_f32x4(c[0], c[1], 0x88), hi = _mm512_shuffle_f32x4(c[0], c[1], 0xDD);
    return _mm512_add_ps(lo, hi);
}

/* 16 elements k*16.. of row j: from the f32 rows, or (F16) converted from
 * the f16 rows (vcvtph2ps, one instruction: the rows are read as they are,
 * half the bytes of f32). F16 is a constant where the helpers inline. */
AVX512 static inline __attribute__((always_inline)) __m512 ld16(const float *const *rows,
                                                                const uint16_t *const *rows16, int j, int k,
                                                                const int F16)
{
    if (F16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(rows16[j] + 16 * k)));
    return _mm512_loadu_ps(rows[j] + 16 * k);
}

/* q . k for the HPW heads over the tile, NV = head_dim / 16 vectors a row */
AVX512 static inline __attribute__((always_inline)) void qk_regs(float qs[][KILN_ATT_MAX_HD],
                                                                 const float *const *rows,
                                                                 const uint16_t *const *rows16, int tn, int hpw,
                                                                 float sc[][MAX_TILE], const int NV, const int F16)
{
    for (int hh = 0; hh < hpw; hh++) {
        __m512 q[8];
        for (int k = 0; k < NV; k++)
            q[k] = _mm512_loadu_ps(qs[hh] + 16 * k);
        int j = 0;
        for (; j + 16 <= tn; j += 16) {
            __m512 v[16];
            for (int i = 0; i < 16; i++) {
                __m512 t = _mm512_mul_ps(q[0], ld16(rows, rows16, j + i, 0, F16));
                for (int k = 1; k < NV; k++)
                    t = _mm512_fmadd_ps(q[k], ld16(rows, rows16, j + i, k, F16), t);
                v[i] = t;
            }
            _mm512_storeu_ps(&sc[hh][j], hsum16_avx512(v)); /* lane l: the sum of v[l] */
        }
        for (; j < tn; j++) {
            __m512 t = _mm512_mul_ps(q[0], ld16(rows, rows16, j, 0, F16));
            for (int k = 1; k < NV; k++)
                t = _mm512_fmadd_ps(q[k], ld16(rows, rows16, j, k, F16), t);
            sc[hh][j] = _mm512_reduce_add_ps(t);
        }
    }
}

/* acc_h += p[h][j] v_j with the accumulators in registers (hpw * NV <= 16) */
AVX512 static inline __attribute__((always_inline)) void pv_regs(float acc[][KILN_ATT_MAX_HD], float sc[][MAX_TILE],
                                                                 const float *const *rows,
                                                                 const uint16_t *const *rows16, int tn, int hpw,
                                                                 const int NV, const int F16)
{
    __m512 a[MAX_HPW][8];
    for (int hh = 0; hh < hpw; hh++)
        for (int k = 0; k < NV; k++)
            a[hh][k] = _mm512_loadu_ps(acc[hh] + 16 * k);
    for (int j = 0; j < tn; j++) {
        __m512 v[8];
        for (int k = 0; k < NV; k++)
            v[k] = ld16(rows, rows16, j, k, F16);
        for (int hh = 0; hh < hpw; hh++) {
            __m512 p = _mm512_set1_ps(sc[hh][j]);
            for (int k = 0; k < NV; k++)
                a[hh][k] = _mm512_fmadd_ps(p, v[k], a[hh][k]);
        }
    }
    for (int hh = 0; hh < hpw; hh++)
        for (int k = 0; k < NV; k++)
            _mm512_storeu_ps(acc[hh] + 16 * k, a[hh][k]);
}

AVX512 static void qk_avx512(float qs[][KILN_ATT_MAX_HD], const float *const *rows, int tn, int hpw, int hd,
                             float sc[][MAX_TILE])
{
    if (hd == 64)
        qk_regs(qs, rows, NULL, tn, hpw, sc, 4, 0);
    else if (hd == 128)
        qk_regs(qs, rows, NULL, tn, hpw, sc, 8, 0);
    else
        qk_avx512g(qs, rows, tn, hpw, hd, sc);
}

AVX512 static void pv_avx512(float acc[][KILN_ATT_MAX_HD], float sc[][MAX_TILE], const float *const *rows, int tn,
                             int hpw, int hd)
{
    if (hd == 64)
        pv_regs(acc, sc, rows, NULL, tn, hpw, 4, 0);
    else if (hd == 128 && hpw <= 2)
        pv_regs(acc, sc, rows, NULL, tn, hpw, 8, 0);
    else
        pv_avx512g(acc, sc, rows, tn, hpw, hd);
}
AVX512 static inline void cvt_avx512(float *d, const uint16_t *s, int n)
{
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + i))));
    for (; i < n; i += 4)
        _mm_storeu_ps(d + i, _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(s + i))));
}
/* f16 rows: head_dim 64 and 128 straight from the pool in registers, other
 * head dims converted into a buffer for the generic paths */
QK_PV_F16_VIA_CVT(avx512g, AVX512, cvt_avx512, qk_avx512g, pv_avx512g)
AVX512 static void qk16_avx512(float qs[][KILN_ATT_MAX_HD], const uint16_t *const *rows, int tn, int hpw, int hd,
                               float sc[][MAX_TILE])
{
    if (hd == 64)
        qk_regs(qs, NULL, rows, tn, hpw, sc, 4, 1);
    else if (hd == 128)
        qk_regs(qs, NULL, rows, tn, hpw, sc, 8, 1);
    else
        qk16_avx512g(qs, rows, tn, hpw, hd, sc);
}
AVX512 static void pv16_avx512(float acc[][KILN_ATT_MAX_HD], float sc[][MAX_TILE], const uint16_t *const *rows,
                               int tn, int hpw, int hd)
{
    if (hd == 64)
        pv_regs(acc, sc, NULL, rows, tn, hpw, 4, 1);
    else if (hd == 128 && hpw <= 2)
        pv_regs(acc, sc, NULL, rows, tn, hpw, 8, 1);
    else
        pv16_avx512g(acc, sc, rows, tn, hpw, hd);
}
ATTN_BODY(avx512, AVX512, dot_avx512, axpy_avx512, scal_avx512, expsum_avx512, qk_avx512, pv_avx512, qk16_avx512,
          pv16_avx512)
#endif

#ifdef KILN_ARM64
/* ---- NEON (head_dim is a multiple of 4), as the AVX2 build ---- */
static inline float dot_neon(const float *x, const float *y, int n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(x + i), vld1q_f32(y + i));
        s1 = vfmaq_f32(s1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
    }
    if (i < n)
        s0 = vfmaq_f32(s0, vld1q_f32(x + i), vld1q_f32(y + i));
    return vaddvq_f32(vaddq_f32(s0, s1));
}
static inline void axpy_neon(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i += 4)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
}
static inline void scal_neon(float *y, float a, int n)
{
    for (int i = 0; i < n; i += 4)
        vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), a));
}
/* exp(x) for x <= 0, as exp_avx2 (same reduction and polynomial) */
static inline float32x4_t exp_neon(float32x4_t x)
{
    const float32x4_t lo = vdupq_n_f32(-87.0f);
    uint32x4_t under = vcltq_f32(x, lo);
    x = vmaxq_f32(x, lo);
    float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693145751953125f));
    r = vfmsq_f32(r, n, vdupq_n_f32(1.428606765330187e-06f));
    float32x4_t p = vdupq_n_f32(1.0f / 720);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
    float32x4_t v = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(v), under));
}
static inline float expsum_neon(float *s, int n, float mt)
{
    float32x4_t vm = vdupq_n_f32(mt), acc = vdupq_n_f32(0);
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        float32x4_t v = exp_neon(vsubq_f32(vld1q_f32(s + j), vm));
        vst1q_f32(s + j, v);
        acc = vaddq_f32(acc, v);
    }
    float sum = vaddvq_f32(acc);
    for (; j < n; j++) {
        s[j] = expf(s[j] - mt);
        sum += s[j];
    }
    return sum;
}
static inline void cvt_neon(float *d, const uint16_t *s, int n)
{
    for (int i = 0; i < n; i += 4)
        vst1q_f32(d + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(s + i))));
}
/* vcvt rounds by FPCR, round to nearest even unless someone changed it */
static void f32_to_f16_neon(uint16_t *d, const float *s, int n)
{
    for (int i = 0; i < n; i += 4)
        vst1_u16(d + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(s + i))));
}
QK_PV_GENERIC(neon, , dot_neon, axpy_neon)
QK_PV_F16_VIA_CVT(neon, , cvt_neon, qk_neon, pv_neon)
ATTN_BODY(neon, , dot_neon, axpy_neon, scal_neon, expsum_neon, qk_neon, pv_neon, qk16_neon, pv16_neon)
#endif

static void attn_paged_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    attn_args a = {
        .q = l->ptr[0], .kp = l->ptr[1], .vp = l->ptr[2], .table = l->ptr[3], .out = l->ptr[4],
        .heads = l->arg[5].i32, .kv_heads = l->arg[6].i32, .hd = l->arg[7].i32, .ps = l->arg[8].i32,
        .ctx = l->arg[9].i32, .scale = l->arg[10].f32,
        .tile = (int)kiln_define_get(l->defines, l->n_defines, "TILE", 64),
        .hpw = (int)kiln_define_get(l->defines, l->n_defines, "HPW", 1),
        .split = (int)kiln_define_get(l->defines, l->n_defines, "SPLIT", 0),
        .partial = (int)kiln_define_get(l->defines, l->n_defines, "WRITE_PARTIAL", 0),
        .brk = (int)kiln_define_get(l->defines, l->n_defines, "KILN_TEST_BREAK", 0),
        .f16 = (int)kiln_define_get(l->defines, l->n_defines, "KV_F16", 0),
        .ngroups = l->grid[0], .nsplit = l->grid[1] ? l->grid[1] : 1,
    };
    if (a.tile > MAX_TILE)
        a.tile = MAX_TILE;
    if (a.hpw > MAX_HPW || a.hd > KILN_ATT_MAX_HD)
        return; /* rejected by config_valid; never reached */
    int isa = kiln_cpu_isa_level(l->isa);
    for (uint32_t w = wg_begin; w < wg_end; w++) {
        uint32_t g = w % a.ngroups, s = w / a.ngroups;
#ifdef KILN_X86
        if (isa == 2)
            attn_wg_avx512(&a, g, s);
        else if (isa == 1)
            attn_wg_avx2(&a, g, s);
        else
#endif
#ifdef KILN_ARM64
        if (l->isa & KILN_ISA_NEON)
            attn_wg_neon(&a, g, s);
        else
#endif
            attn_wg_scalar(&a, g, s);
    }
    (void)isa;
}

/* attention_paged_batch: workgroup w = head group w % groups of token w / groups, whose
 * query/output rows, page table and context come from meta (attention_paged.c). */
static void attn_paged_batch_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    attn_args base = {
        .q = l->ptr[0], .kp = l->ptr[1], .vp = l->ptr[2], .table = l->ptr[3], .out = l->ptr[4],
        .heads = l->arg[6].i32, .kv_heads = l->arg[7].i32, .hd = l->arg[8].i32, .ps = l->arg[9].i32,
        .scale = l->arg[11].f32,
        .tile = (int)kiln_define_get(l->defines, l->n_defines, "TILE", 64),
        .hpw = (int)kiln_define_get(l->defines, l->n_defines, "HPW", 1),
        .brk = (int)kiln_define_get(l->defines, l->n_defines, "KILN_TEST_BREAK", 0),
        .f16 = (int)kiln_define_get(l->defines, l->n_defines, "KV_F16", 0),
        .ngroups = l->grid[0], .nsplit = 1,
    };
    const int32_t *meta = l->ptr[5];
    if (base.tile > MAX_TILE)
        base.tile = MAX_TILE;
    if (base.hpw > MAX_HPW || base.hd > KILN_ATT_MAX_HD)
        return; /* rejected by config_valid; never reached */
    int isa = kiln_cpu_isa_level(l->isa);
    size_t row = (size_t)base.heads * (size_t)base.hd;
    for (uint32_t w = wg_begin; w < wg_end; w++) {
        uint32_t g = w % base.ngroups, tok = w / base.ngroups;
        attn_args a = base;
        a.q += tok * row;
        a.out += tok * row;
        a.table += meta[2 * tok];
        a.ctx = meta[2 * tok + 1] + 1;
#ifdef KILN_X86
        if (isa == 2)
            attn_wg_avx512(&a, g, 0);
        else if (isa == 1)
            attn_wg_avx2(&a, g, 0);
        else
#endif
            attn_wg_scalar(&a, g, 0);
    }
    (void)isa;
}

/* part [heads][nsplit][2 + hd] -> out [heads][hd] */
static void attn_paged_combine_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    const float *part = l->ptr[0];
    float *out = l->ptr[1];
    int hd = l->arg[3].i32, ns = l->arg[4].i32;
    size_t rs = (size_t)hd + 2;
    for (uint32_t h = wg_begin; h < wg_end; h++) {
        const float *b = part + (size_t)h * ns * rs;
        float mx = NEG_BIG, sum = 0;
        for (int s = 0; s < ns; s++)
            mx = b[s * rs] > mx ? b[s * rs] : mx;
        float w[64];
        float *o = out + (size_t)h * hd;
        for (int i = 0; i < hd; i++)
            o[i] = 0;
        for (int s0 = 0; s0 < ns; s0 += 64) {
            int n = ns - s0 < 64 ? ns - s0 : 64;
            for (int s = 0; s < n; s++) {
                w[s] = expf(b[(s0 + s) * rs] - mx);
                sum += b[(s0 + s) * rs + 1] * w[s];
            }
            for (int s = 0; s < n; s++)
                for (int i = 0; i < hd; i++)
                    o[i] += w[s] * b[(s0 + s) * rs + 2 + i];
        }
        float inv = 1.0f / sum;
        for (int i = 0; i < hd; i++)
            o[i] *= inv;
    }
}

/* One K or V row (hd elements) into the pool at element dst: a copy, or
 * (f16) rounded to nearest even. */
static void put_row(void *pool, size_t dst, const float *src, int hd, int f16, unsigned isa)
{
    if (!f16) {
        memcpy((float *)pool + dst, src, (size_t)hd * sizeof(float));
        return;
    }
    uint16_t *d = (uint16_t *)pool + dst;
#ifdef KILN_X86
    if (kiln_cpu_isa_level(isa) >= 1) {
        f32_to_f16_avx2(d, src, hd);
        return;
    }
#endif
#ifdef KILN_ARM64
    if (isa & KILN_ISA_NEON) {
        f32_to_f16_neon(d, src, hd);
        return;
    }
#endif
    (void)isa;
    for (int i = 0; i < hd; i++)
        d[i] = kiln_f32_to_f16(src[i]);
}

static void kv_append_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    if (wg_begin >= wg_end)
        return;
    const float *kn = l->ptr[0], *vn = l->ptr[1];
    void *kp = l->ptr[2], *vp = l->ptr[3];
    const int32_t *table = l->ptr[4];
    int pos = l->arg[5].i32, ps = l->arg[6].i32, kvh = l->arg[7].i32, hd = l->arg[8].i32;
    int brk = (int)kiln_define_get(l->defines, l->n_defines, "KILN_TEST_BREAK", 0);
    int f16 = (int)kiln_define_get(l->defines, l->n_defines, "KV_F16", 0);
    size_t phys = (uint32_t)table[pos / ps];
    for (int h = 0; h < kvh; h++) {
        size_t dst = ((phys * kvh + h) * ps + (size_t)((pos + brk) % ps)) * hd;
        put_row(kp, dst, kn + (size_t)h * hd, hd, f16, l->isa);
        put_row(vp, dst, vn + (size_t)h * hd, hd, f16, l->isa);
    }
}

/* kv_append_batch: workgroup = token (meta: its table base and position) */
static void kv_append_batch_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    const float *kn = l->ptr[0], *vn = l->ptr[1];
    void *kp = l->ptr[2], *vp = l->ptr[3];
    const int32_t *tables = l->ptr[4], *meta = l->ptr[5];
    int ps = l->arg[7].i32, kvh = l->arg[8].i32, hd = l->arg[9].i32;
    int brk = (int)kiln_define_get(l->defines, l->n_defines, "KILN_TEST_BREAK", 0);
    int f16 = (int)kiln_define_get(l->defines, l->n_defines, "KV_F16", 0);
    size_t row = (size_t)kvh * (size_t)hd;
    for (uint32_t tok = wg_begin; tok < wg_end; tok++) {
        int pos = meta[2 * tok + 1];
        size_t phys = (uint32_t)tables[meta[2 * tok] + pos / ps];
        for (int h = 0; h < kvh; h++) {
            size_t dst = ((phys * kvh + h) * ps + (size_t)((pos + brk) % ps)) * hd;
            put_row(kp, dst, kn + tok * row + (size_t)h * hd, hd, f16, l->isa);
            put_row(vp, dst, vn + tok * row + (size_t)h * hd, hd, f16, l->isa);
        }
    }
}

const kiln_cpu_entry kiln_cpu_entries_attention_paged[] = {
    {"attn_paged_batch_cpu", attn_paged_batch_cpu},
    {"kv_append_batch_cpu", kv_append_batch_cpu},
    {"attn_paged_cpu", attn_paged_cpu},
    {"attn_paged_combine_cpu", attn_paged_combine_cpu},
    {"kv_append_cpu", kv_append_cpu},
    {0, 0},
};
