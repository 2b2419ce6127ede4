/* kernels/dequant/dequant_cpu.c - CPU entry of dequant (layout and arguments:
 * see dequant.c). One workgroup = one row. The body decodes whole u32 words
 * (8 nibbles or 4 bytes) into f32 lanes: AVX-512 (two 4-bit words per
 * register), AVX2+FMA+F16C (one word), NEON (one word in two registers),
 * or scalar; a partial last word is
 * decoded by the scalar tail. Every path computes (q - z) * d, q * d + m
 * (exact products, so the add is the only rounding) and rounds f16 output to
 * nearest even (F16C _MM_FROUND_TO_NEAREST_INT / util/f16.c): bit-exact with
 * the reference. The path follows the launch's ISA bits (devices/cpu/cpu_isa.h). */
#include <stdint.h>
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

typedef struct dq_args {
    const uint32_t *qs;
    const uint16_t *sc, *mn;
    void *out;
    int64_t rows, cols, wpr, gpr;
    int quant, group, op, brk;
    int stream; /* STREAM: non-temporal stores where a row starts 64-byte aligned */
} dq_args;

static int zero_code(int quant) { return quant == KILN_Q4F16_1 ? 7 : quant == KILN_Q4_0 ? 8 : 0; }

static inline int64_t scale_index(const dq_args *a, int64_t r, int64_t c)
{
    int64_t si = r * a->gpr + c / a->group;
    if (a->brk && c < a->group && si + 1 < a->rows * a->gpr)
        si++;
    return si;
}

/* elements [c0, cols) of row r, one at a time */
static void row_scalar(const dq_args *a, int64_t r, int64_t c0)
{
    const uint32_t *q = a->qs + r * a->wpr;
    int z = zero_code(a->quant);
    for (int64_t c = c0; c < a->cols; c++) {
        int64_t si = scale_index(a, r, c);
        float d = kiln_f16_to_f32(a->sc[si]), v;
        if (a->quant == KILN_Q8_0) {
            v = (float)(int8_t)(uint8_t)(q[c / 4] >> (8 * (c % 4))) * d;
        } else {
            int code = (int)((q[c / 8] >> (4 * (c % 8))) & 15);
            if (a->quant == KILN_Q4_1) {
                float p = (float)code * d;
                v = p + kiln_f16_to_f32(a->mn[si]);
            } else {
                v = (float)(code - z) * d;
            }
        }
        if (a->op)
            ((uint16_t *)a->out)[r * a->cols + c] = kiln_f32_to_f16(v);
        else
            ((float *)a->out)[r * a->cols + c] = v;
    }
}

#ifdef KILN_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))
/* 8 elements starting at c (a multiple of 8 for q4, 4-aligned pairs of words for q8) */
AVX2 static void row_avx2(const dq_args *a, int64_t r)
{
    const uint32_t *q = a->qs + r * a->wpr;
    const __m256i shifts4 = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    const __m256i m15 = _mm256_set1_epi32(15);
    const __m256 zf = _mm256_set1_ps((float)zero_code(a->quant));
    int64_t c = 0;
    for (; c + 8 <= a->cols; c += 8) {
        /* all 8 share one group (groups are multiples of 8) */
        int64_t si = scale_index(a, r, c);
        __m256 d = _mm256_set1_ps(kiln_f16_to_f32(a->sc[si])), v;
        if (a->quant == KILN_Q8_0) {
            __m128i b = _mm_loadl_epi64((const __m128i *)(q + c / 4));
            v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), d);
        } else {
            __m256i w = _mm256_set1_epi32((int)q[c / 8]);
            __m256 codes = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(w, shifts4), m15));
            if (a->quant == KILN_Q4_1)
                v = _mm256_fmadd_ps(codes, d, _mm256_set1_ps(kiln_f16_to_f32(a->mn[si]))); /* codes*d exact */
            else
                v = _mm256_mul_ps(_mm256_sub_ps(codes, zf), d);
        }
        if (a->op)
            _mm_storeu_si128((__m128i *)((uint16_t *)a->out + r * a->cols + c),
                             _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        else
            _mm256_storeu_ps((float *)a->out + r * a->cols + c, v);
    }
    row_scalar(a, r, c);
}

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
AVX512 static void row_avx512(const dq_args *a, int64_t r)
{
    const uint32_t *q = a->qs + r * a->wpr;
    /* stores of 64 (f32) or 32 (f16) bytes: aligned for the whole row when its start is */
    int nt = a->stream && ((uintptr_t)((char *)a->out + (size_t)(r * a->cols) * (a->op ? 2 : 4)) % 64) == 0;
    const __m512i shifts4 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    const __m512i m15 = _mm512_set1_epi32(15);
    const __m512 zf = _mm512_set1_ps((float)zero_code(a->quant));
    int64_t c = 0;
    for (; c + 16 <= a->cols; c += 16) {
        /* 16 elements share one group (groups are multiples of 32, c a multiple of 16) */
        int64_t si = scale_index(a, r, c);
        __m512 d = _mm512_set1_ps(kiln_f16_to_f32(a->sc[si])), v;
        if (a->quant == KILN_Q8_0) {
            __m128i b = _mm_loadu_si128((const __m128i *)(q + c / 4));
            v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), d);
        } else {
            __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32((int)q[c / 8])),
                                           _mm256_set1_epi32((int)q[c / 8 + 1]), 1);
            __m512 codes = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srlv_epi32(w, shifts4), m15));
            if (a->quant == KILN_Q4_1)
                v = _mm512_fmadd_ps(codes, d, _mm512_set1_ps(kiln_f16_to_f32(a->mn[si])));
            else
                v = _mm512_mul_ps(_mm512_sub_ps(codes, zf), d);
        }
        if (a->op) {
            __m256i *p = (__m256i *)((uint16_t *)a->out + r * a->cols + c);
            if (nt)
                _mm256_stream_si256(p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
            else
                _mm256_storeu_si256(p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        } else if (nt) {
            _mm512_stream_ps((float *)a->out + r * a->cols + c, v);
        } else {
            _mm512_storeu_ps((float *)a->out + r * a->cols + c, v);
        }
    }
    row_scalar(a, r, c);
}
#endif

#ifdef KILN_ARM64
/* 8 elements starting at c, as row_avx2 */
static void row_neon(const dq_args *a, int64_t r)
{
    const uint32_t *q = a->qs + r * a->wpr;
    const int32x4_t sh_lo = {0, -4, -8, -12}, sh_hi = {-16, -20, -24, -28}; /* right shifts */
    const uint32x4_t m15 = vdupq_n_u32(15);
    const float32x4_t zf = vdupq_n_f32((float)zero_code(a->quant));
    int64_t c = 0;
    for (; c + 8 <= a->cols; c += 8) {
        int64_t si = scale_index(a, r, c);
        float32x4_t d = vdupq_n_f32(kiln_f16_to_f32(a->sc[si])), v[2];
        if (a->quant == KILN_Q8_0) {
            int16x8_t h = vmovl_s8(vld1_s8((const int8_t *)(q + c / 4)));
            v[0] = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(h))), d);
            v[1] = vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(h)), d);
        } else {
            uint32x4_t w = vdupq_n_u32(q[c / 8]);
            float32x4_t codes[2] = {vcvtq_f32_u32(vandq_u32(vshlq_u32(w, sh_lo), m15)),
                                    vcvtq_f32_u32(vandq_u32(vshlq_u32(w, sh_hi), m15))};
            for (int i = 0; i < 2; i++)
                v[i] = a->quant == KILN_Q4_1 ? vfmaq_f32(vdupq_n_f32(kiln_f16_to_f32(a->mn[si])), codes[i], d)
                                             : vmulq_f32(vsubq_f32(codes[i], zf), d);
        }
        if (a->op) {
            uint16_t *o = (uint16_t *)a->out + r * a->cols + c;
            vst1_u16(o, vreinterpret_u16_f16(vcvt_f16_f32(v[0])));
            vst1_u16(o + 4, vreinterpret_u16_f16(vcvt_f16_f32(v[1])));
        } else {
            float *o = (float *)a->out + r * a->cols + c;
            vst1q_f32(o, v[0]);
            vst1q_f32(o + 4, v[1]);
        }
    }
    row_scalar(a, r, c);
}
#endif

static void dequant_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    dq_args a = {
        .qs = l->ptr[0], .sc = l->ptr[1], .mn = l->ptr[2], .out = l->ptr[3],
        .rows = l->arg[4].i32, .cols = l->arg[5].i32, .wpr = l->arg[6].i32, .gpr = l->arg[7].i32,
        .quant = l->arg[8].i32, .group = l->arg[9].i32, .op = l->arg[10].i32,
        .brk = (int)kiln_define_get(l->defines, l->n_defines, "KILN_TEST_BREAK", 0),
        .stream = (int)kiln_define_get(l->defines, l->n_defines, "STREAM", 0),
    };
    int isa = kiln_cpu_isa_level(l->isa);
    for (uint32_t r = wg_begin; r < wg_end && r < a.rows; r++) {
#ifdef KILN_X86
        if (isa == 2)
            row_avx512(&a, r);
        else if (isa == 1)
            row_avx2(&a, r);
        else
#endif
#ifdef KILN_ARM64
        if (l->isa & KILN_ISA_NEON)
            row_neon(&a, r);
        else
#endif
            row_scalar(&a, r, 0);
    }
#ifdef KILN_X86
    if (a.stream && isa == 2)
        _mm_sfence(); /* the streamed lines are visible before the launch returns */
#endif
    (void)isa;
}

const kiln_cpu_entry kiln_cpu_entries_dequant[] = {
    {"dequant_cpu", dequant_cpu},
    {0, 0},
};
