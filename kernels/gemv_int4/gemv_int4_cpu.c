/* kernels/gemv_int4/gemv_int4_cpu.c - gemv_int4 on the CPU: AVX-512, AVX2, NEON
 * and scalar paths over Kiln's layout, chosen by the launch's ISA bits
 * (devices/cpu/cpu_isa.h; KILN_CPU_ISA forces a lower path, for tests).
 *
 * Per group: t = sum_j (c_j - z) x_j in SIMD lanes, acc += s * t, without
 * reducing lanes until the row ends; q4_1 adds m * sum(x_group), with the
 * group sums of x computed once per task. The AVX-512 and AVX2 int4 paths read x
 * deinterleaved and take z off as z * sum(x_group) (row_avx512_int4, row_avx2_int4). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu_isa.h"
#include "kernels/act_q8.h"
#include "kernels/gemv_int4/gemv_int4.h"
#include "kernels/gemv_int4/q8mm_cpu.h"
#include "kernels/sources.h"
#include "util/f16.h"

#if defined(__x86_64__) || defined(__i386__)
#define KILN_X86 1
#include <immintrin.h>
#endif
#ifdef KILN_ARM64
#include <arm_neon.h>
#endif

typedef struct gemv_args {
    const uint32_t *qs;
    const uint16_t *scales, *mins;
    const float *x, *xsum; /* xsum[g] = sum of x over group g (q4_1; every int4 format on AVX-512) */
    const float *xd;       /* AVX-512 int4: x per block of 32 as its 16 even then its 16 odd elements */
    uint32_t prefetch;     /* bytes ahead in the row's weights to prefetch (0: none) */
    float *y;
    uint32_t M, K, wpr, gpr;
    int quant, group;
} gemv_args;

static int zero_of(int q) { return q == KILN_Q4F16_1 ? 7 : q == KILN_Q4_0 ? 8 : 0; }

/* One element the slow way (tails and the scalar path). */
static float weight(const gemv_args *a, uint32_t r, uint32_t k)
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

static float row_scalar(const gemv_args *a, uint32_t r, uint32_t k_begin)
{
    float acc = 0;
    for (uint32_t k = k_begin; k < a->K; k++)
        acc += weight(a, r, k) * a->x[k];
    return acc;
}

/* Whole groups only; the partial last group goes through row_scalar. */
static uint32_t full_groups(const gemv_args *a) { return a->quant == KILN_F16 ? 0 : a->K / (uint32_t)a->group; }

#ifdef KILN_X86
/* f16 and q8_0 on AVX-512 (int4 goes through row_avx512_int4). */
__attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c"))) static float row_avx512(const gemv_args *a, uint32_t r)
{
    const uint32_t *w = a->qs + (size_t)r * a->wpr;
    __m512 acc = _mm512_setzero_ps();
    if (a->quant == KILN_F16) {
        uint32_t k = 0;
        for (; k + 16 <= a->K; k += 16) {
            __m256i h = _mm256_loadu_si256((const __m256i *)(w + k / 2));
            acc = _mm512_fmadd_ps(_mm512_cvtph_ps(h), _mm512_loadu_ps(a->x + k), acc);
        }
        return _mm512_reduce_add_ps(acc) + row_scalar(a, r, k);
    }
    uint32_t ng = full_groups(a), per = (uint32_t)a->group / 32;
    for (uint32_t g = 0; g < ng; g++) {
        float s = _cvtsh_ss(a->scales[(size_t)r * a->gpr + g]);
        __m512 t = _mm512_setzero_ps();
        for (uint32_t b = 0; b < per; b++) {
            uint32_t k = g * (uint32_t)a->group + 32 * b;
            if (a->prefetch)
                _mm_prefetch((const char *)(w + k / 4) + a->prefetch, _MM_HINT_T0);
            __m128i lo = _mm_loadu_si128((const __m128i *)(w + k / 4));
            __m128i hi = _mm_loadu_si128((const __m128i *)(w + k / 4 + 4));
            t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), _mm512_loadu_ps(a->x + k), t);
            t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), _mm512_loadu_ps(a->x + k + 16), t);
        }
        acc = _mm512_fmadd_ps(t, _mm512_set1_ps(s), acc);
    }
    return _mm512_reduce_add_ps(acc) + row_scalar(a, r, ng * (uint32_t)a->group);
}

/* int4 on AVX-512 with x deinterleaved (a->xd): byte i of a 32-element block
 * holds elements 2i (low nibble) and 2i+1 (high); widening the 16 bytes to
 * 16 dwords and splitting nibbles in place gives the even and the odd
 * elements, matched by the even and odd halves of xd. One lane-crossing
 * widen per 32 weights instead of two unpacks and two widens, and the zero
 * point comes off once per group as z * sum(x): s * (sum c x - z sum x). */
__attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c"))) static float row_avx512_int4(const gemv_args *a,
                                                                                           uint32_t r)
{
    const uint32_t *w = a->qs + (size_t)r * a->wpr;
    const uint16_t *sc = a->scales + (size_t)r * a->gpr, *mn = a->mins + (size_t)r * a->gpr;
    uint32_t ng = full_groups(a), per = (uint32_t)a->group / 32;
    float z = (float)zero_of(a->quant), tail = 0;
    const __m512i m4 = _mm512_set1_epi32(0x0F);
    __m512 acc = _mm512_setzero_ps();
    for (uint32_t g = 0; g < ng; g++) {
        float s = _cvtsh_ss(sc[g]);
        __m512 t = _mm512_setzero_ps();
        for (uint32_t b = 0; b < per; b++) {
            uint32_t k = g * (uint32_t)a->group + 32 * b;
            if (a->prefetch)
                _mm_prefetch((const char *)(w + k / 8) + a->prefetch, _MM_HINT_T0);
            __m512i d = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(w + k / 8)));
            __m512 even = _mm512_cvtepi32_ps(_mm512_and_si512(d, m4));
            __m512 odd = _mm512_cvtepi32_ps(_mm512_srli_epi32(d, 4));
            t = _mm512_fmadd_ps(even, _mm512_loadu_ps(a->xd + k), t);
            t = _mm512_fmadd_ps(odd, _mm512_loadu_ps(a->xd + k + 16), t);
        }
        acc = _mm512_fmadd_ps(t, _mm512_set1_ps(s), acc);
        tail += (a->quant == KILN_Q4_1 ? _cvtsh_ss(mn[g]) : -z * s) * a->xsum[g];
    }
    return _mm512_reduce_add_ps(acc) + tail + row_scalar(a, r, ng * (uint32_t)a->group);
}

/* Per call (each claimed chunk of rows): x deinterleaved per block of 32 and
 * the group sums of x, in one vector pass (the scalar loops cost ~8 us per
 * call at K = 4096, repeated for every chunk). */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void prep_avx512(const float *x, uint32_t ng, uint32_t group,
                                                                              float *xd, float *xsum)
{
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    for (uint32_t g = 0; g < ng; g++) {
        __m512 s = _mm512_setzero_ps();
        for (uint32_t k = g * group; k < (g + 1) * group; k += 32) {
            __m512 lo = _mm512_loadu_ps(x + k), hi = _mm512_loadu_ps(x + k + 16);
            _mm512_storeu_ps(xd + k, _mm512_permutex2var_ps(lo, ev, hi));
            _mm512_storeu_ps(xd + k + 16, _mm512_permutex2var_ps(lo, od, hi));
            s = _mm512_add_ps(s, _mm512_add_ps(lo, hi));
        }
        xsum[g] = _mm512_reduce_add_ps(s);
    }
}

__attribute__((target("avx2,fma,f16c"))) static float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* prep_avx512's x deinterleave with 8 lanes: per block of 32, elements
 * 0,2,..,30 then 1,3,..,31 (the layout row_avx2_int4 reads). */
__attribute__((target("avx2,fma,f16c"))) static void prep_avx2(const float *x, uint32_t ng, uint32_t group, float *xd,
                                                       float *xsum)
{
    for (uint32_t g = 0; g < ng; g++) {
        __m256 s = _mm256_setzero_ps();
        for (uint32_t k = g * group; k < (g + 1) * group; k += 32)
            for (uint32_t h = 0; h < 2; h++) {
                __m256 lo = _mm256_loadu_ps(x + k + 16 * h), hi = _mm256_loadu_ps(x + k + 16 * h + 8);
                /* shuffle_ps pairs within 128-bit lanes: [0 2 8 10 | 4 6 12 14], the permute orders them */
                __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
                __m256 od = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
                _mm256_storeu_ps(xd + k + 8 * h,
                                 _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0))));
                _mm256_storeu_ps(xd + k + 16 + 8 * h,
                                 _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), _MM_SHUFFLE(3, 1, 2, 0))));
                s = _mm256_add_ps(s, _mm256_add_ps(lo, hi));
            }
        xsum[g] = hsum256(s);
    }
}

/* One group of row_avx2_int4: sum of code * x over its blocks (no zero
 * point), x deinterleaved; two chains (even and odd elements). */
__attribute__((target("avx2,fma,f16c"), always_inline)) static inline __m256 group_avx2_int4(const gemv_args *a,
                                                                                            const uint32_t *w,
                                                                                            uint32_t k, uint32_t per)
{
    const __m256i m4 = _mm256_set1_epi32(0x0F);
    __m256 te = _mm256_setzero_ps(), to = _mm256_setzero_ps();
    for (uint32_t b = 0; b < per; b++, k += 32) {
        const uint8_t *p = (const uint8_t *)(w + k / 8);
        if (a->prefetch)
            _mm_prefetch((const char *)p + a->prefetch, _MM_HINT_T0);
        __m256i d0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
        __m256i d1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8)));
        te = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(d0, m4)), _mm256_loadu_ps(a->xd + k), te);
        to = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(d0, 4)), _mm256_loadu_ps(a->xd + k + 16), to);
        te = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(d1, m4)), _mm256_loadu_ps(a->xd + k + 8), te);
        to = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(d1, 4)), _mm256_loadu_ps(a->xd + k + 24), to);
    }
    return _mm256_add_ps(te, to);
}

/* int4 on AVX2, row_avx512_int4's scheme in 8 lanes: bytes 0-7 of a block
 * widen to elements 0,2,..,14 (low nibbles) and 1,3,..,15 (high), bytes
 * 8-15 to 16..30 and 17..31, against x deinterleaved by prep_avx2; the zero
 * point comes off per group as z * sum(x). Two product chains per block
 * and two groups a step into two accumulators (named, so they stay in
 * registers): the single chain of 4 dependent FMAs per block this replaced
 * was latency-bound (~2 GB/s a thread). */
__attribute__((target("avx2,fma,f16c"))) static float row_avx2_int4(const gemv_args *a, uint32_t r)
{
    const uint32_t *w = a->qs + (size_t)r * a->wpr;
    const uint16_t *sc = a->scales + (size_t)r * a->gpr, *mn = a->mins + (size_t)r * a->gpr;
    const uint32_t ng = full_groups(a), per = (uint32_t)a->group / 32, G = (uint32_t)a->group;
    const float z = (float)zero_of(a->quant);
    const int q41 = a->quant == KILN_Q4_1;
    float tail = 0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    uint32_t g = 0;
    for (; g + 2 <= ng; g += 2) {
        float s0 = _cvtsh_ss(sc[g]), s1 = _cvtsh_ss(sc[g + 1]);
        acc0 = _mm256_fmadd_ps(group_avx2_int4(a, w, g * G, per), _mm256_set1_ps(s0), acc0);
        acc1 = _mm256_fmadd_ps(group_avx2_int4(a, w, (g + 1) * G, per), _mm256_set1_ps(s1), acc1);
        tail += (q41 ? _cvtsh_ss(mn[g]) : -z * s0) * a->xsum[g] + (q41 ? _cvtsh_ss(mn[g + 1]) : -z * s1) * a->xsum[g + 1];
    }
    for (; g < ng; g++) {
        float s = _cvtsh_ss(sc[g]);
        acc0 = _mm256_fmadd_ps(group_avx2_int4(a, w, g * G, per), _mm256_set1_ps(s), acc0);
        tail += (q41 ? _cvtsh_ss(mn[g]) : -z * s) * a->xsum[g];
    }
    return hsum256(_mm256_add_ps(acc0, acc1)) + tail + row_scalar(a, r, ng * G);
}

/* f16 and q8_0 on AVX2 (int4 goes through row_avx2_int4); two chains of
 * FMAs per block (one was latency-bound). */
__attribute__((target("avx2,fma,f16c"))) static float row_avx2(const gemv_args *a, uint32_t r)
{
    const uint32_t *w = a->qs + (size_t)r * a->wpr;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    if (a->quant == KILN_F16) {
        uint32_t k = 0;
        for (; k + 16 <= a->K; k += 16) {
            acc[0] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + k / 2))),
                                     _mm256_loadu_ps(a->x + k), acc[0]);
            acc[1] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + k / 2 + 4))),
                                     _mm256_loadu_ps(a->x + k + 8), acc[1]);
        }
        return hsum256(_mm256_add_ps(acc[0], acc[1])) + row_scalar(a, r, k);
    }
    uint32_t ng = full_groups(a), per = (uint32_t)a->group / 32;
    for (uint32_t g = 0; g < ng; g++) {
        float s = _cvtsh_ss(a->scales[(size_t)r * a->gpr + g]); /* F16C: 8% of a decode step in software */
        __m256 t[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (uint32_t b = 0; b < per; b++) {
            uint32_t k = g * (uint32_t)a->group + 32 * b;
            const uint8_t *p = (const uint8_t *)(w + k / 4);
            if (a->prefetch)
                _mm_prefetch((const char *)p + a->prefetch, _MM_HINT_T0);
            for (int q = 0; q < 4; q++) {
                __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * q))));
                t[q & 1] = _mm256_fmadd_ps(f, _mm256_loadu_ps(a->x + k + 8 * q), t[q & 1]);
            }
        }
        acc[0] = _mm256_fmadd_ps(_mm256_add_ps(t[0], t[1]), _mm256_set1_ps(s), acc[0]);
    }
    return hsum256(acc[0]) + row_scalar(a, r, ng * (uint32_t)a->group);
}

#endif /* KILN_X86 */

#ifdef KILN_ARM64
/* 16 int4 codes of bytes v (element order: byte i holds 2i low, 2i+1 high)
 * or 16 q8 codes as 4 x 4 floats. */
static inline void codes_neon(uint8x16_t v, int q8, int lo_half, float32x4_t f[4])
{
    int16x8_t h0, h1;
    if (q8) {
        int8x16_t s = vreinterpretq_s8_u8(v);
        h0 = vmovl_s8(vget_low_s8(s));
        h1 = vmovl_high_s8(s);
    } else {
        uint8x16_t lo = vandq_u8(v, vdupq_n_u8(0x0F)), hi = vshrq_n_u8(v, 4);
        uint8x16_t e = lo_half ? vzip1q_u8(lo, hi) : vzip2q_u8(lo, hi);
        h0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(e)));
        h1 = vreinterpretq_s16_u16(vmovl_high_u8(e));
    }
    f[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(h0)));
    f[1] = vcvtq_f32_s32(vmovl_high_s16(h0));
    f[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(h1)));
    f[3] = vcvtq_f32_s32(vmovl_high_s16(h1));
}

/* As row_avx2, 4 lanes: per group t = sum (c - z) x in lanes, acc += s t. */
static float row_neon(const gemv_args *a, uint32_t r)
{
    const uint32_t *w = a->qs + (size_t)r * a->wpr;
    float32x4_t acc = vdupq_n_f32(0);
    float tail_m = 0;
    if (a->quant == KILN_F16) {
        uint32_t k = 0;
        for (; k + 4 <= a->K; k += 4) {
            float16x4_t h = vreinterpret_f16_u16(vld1_u16((const uint16_t *)(const void *)(w + k / 2)));
            acc = vfmaq_f32(acc, vcvt_f32_f16(h), vld1q_f32(a->x + k));
        }
        return vaddvq_f32(acc) + row_scalar(a, r, k);
    }
    uint32_t ng = full_groups(a), per = (uint32_t)a->group / 32;
    int q8 = a->quant == KILN_Q8_0;
    float32x4_t z = vdupq_n_f32((float)zero_of(a->quant));
    for (uint32_t g = 0; g < ng; g++) {
        float s = kiln_f16_to_f32(a->scales[(size_t)r * a->gpr + g]);
        float32x4_t t = vdupq_n_f32(0);
        for (uint32_t b = 0; b < per; b++) {
            uint32_t k = g * (uint32_t)a->group + 32 * b;
            const uint8_t *p = (const uint8_t *)(w + k / (q8 ? 4 : 8));
            if (a->prefetch)
                __builtin_prefetch(p + a->prefetch);
            for (int h = 0; h < 2; h++) {
                float32x4_t f[4];
                codes_neon(vld1q_u8(q8 ? p + 16 * h : p), q8, h == 0, f);
                for (int i = 0; i < 4; i++)
                    t = vfmaq_f32(t, q8 ? f[i] : vsubq_f32(f[i], z), vld1q_f32(a->x + k + 16 * h + 4 * i));
            }
        }
        acc = vfmaq_n_f32(acc, t, s);
        if (a->quant == KILN_Q4_1)
            tail_m += kiln_f16_to_f32(a->mins[(size_t)r * a->gpr + g]) * a->xsum[g];
    }
    return vaddvq_f32(acc) + tail_m + row_scalar(a, r, ng * (uint32_t)a->group);
}
#endif

/* Row r with the path isa picked (3 AVX-512, 2 AVX2, 1 NEON, 0 scalar). */
static float row_of(const gemv_args *a, int isa, int deint, uint32_t r)
{
    (void)deint;
#ifdef KILN_X86
    if (deint)
        return isa == 3 ? row_avx512_int4(a, r) : row_avx2_int4(a, r);
    if (isa == 3)
        return row_avx512(a, r);
    if (isa == 2)
        return row_avx2(a, r);
#endif
#ifdef KILN_ARM64
    if (isa == 1)
        return row_neon(a, r);
#endif
    (void)isa;
    return row_scalar(a, r, 0);
}

static void gemv_int4_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
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
    gemv_args a = {
        .qs = l->ptr[0], .scales = l->ptr[1], .mins = l->ptr[2], .x = l->ptr[3], .y = l->ptr[4],
        .M = l->arg[5].u32, .K = l->arg[6].u32, .wpr = l->arg[7].u32, .gpr = l->arg[8].u32,
        .quant = (int)kiln_define_get(d, nd, "QUANT", 0), .group = (int)kiln_define_get(d, nd, "GROUP", 32),
        .prefetch = (uint32_t)kiln_define_get(d, nd, "PREFETCH", 0),
    };
    uint32_t rows = (uint32_t)kiln_define_get(d, nd, "ROWS", 1);
    float *xcopy = NULL, *xsum = NULL;
    if (kiln_define_get(d, nd, "KILN_TEST_BREAK", 0) && a.K > 1) {
        /* planted bug: x[0] read from x[1] */
        xcopy = malloc(sizeof *xcopy * a.K);
        if (!xcopy)
            return;
        memcpy(xcopy, a.x, sizeof *xcopy * a.K);
        xcopy[0] = xcopy[1];
        a.x = xcopy;
    }
#ifdef KILN_X86
    int isa = l->isa & KILN_ISA_AVX512 ? 3 : l->isa & KILN_ISA_AVX2 ? 2 : 0;
#elif defined(KILN_ARM64)
    int isa = l->isa & KILN_ISA_NEON ? 1 : 0;
#else
    int isa = 0;
#endif
    int int4 = kiln_quant_is_int4(a.quant), deint = (isa == 3 || isa == 2) && int4;
    float *xd = NULL;
    if (a.quant == KILN_Q4_1 || deint) {
        uint32_t ng = full_groups(&a);
        xsum = calloc(ng ? ng : 1, sizeof *xsum);
        xd = deint ? malloc(sizeof *xd * (ng ? (size_t)ng * (size_t)a.group : 1)) : NULL;
        if (!xsum || (deint && !xd)) {
            free(xsum);
            free(xcopy);
            return;
        }
#ifdef KILN_X86
        if (deint && isa == 3)
            prep_avx512(a.x, ng, (uint32_t)a.group, xd, xsum);
        else if (deint)
            prep_avx2(a.x, ng, (uint32_t)a.group, xd, xsum);
        else
#endif
            for (uint32_t g = 0; g < ng; g++)
                for (uint32_t k = g * (uint32_t)a.group; k < (g + 1) * (uint32_t)a.group; k++)
                    xsum[g] += a.x[k];
        a.xsum = xsum;
        a.xd = xd;
    }
    for (uint32_t wg = wg_begin; wg < wg_end; wg++)
        for (uint32_t r = wg * rows; r < (wg + 1) * rows && r < a.M; r++)
            a.y[r] = row_of(&a, isa, deint, r);
    free(xd);
    free(xsum);
    free(xcopy);
}

const kiln_cpu_entry kiln_cpu_entries_gemv_int4[] = {
    {"gemv_int4_cpu", gemv_int4_cpu},
    {"gemv_q8_cpu", kiln_gemv_q8_cpu},   /* act 1 (q8mm_cpu.c) */
    {"gemm_q8_cpu", kiln_gemm_q8_cpu},   /* gemm_int4 act 1 (q8mm_cpu.c) */
    {"act_q8_cpu", kiln_act_q8_cpu},     /* its x quantization step (kernels/act_q8.c) */
    {0, 0},
};
