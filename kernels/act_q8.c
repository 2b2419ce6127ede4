/* kernels/act_q8.c - see act_q8.h. The SIMD packers compute exactly what
 * kiln_act_q8_block does (same max, same x * (127 / amax) product, the
 * same round-to-nearest-even conversion), so every path writes the same
 * bytes; tests/kernels/gemv_q8_test.c checks that byte for byte. */
#include "kernels/act_q8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu_isa.h"
#include "kernels/kernel.h"

#if defined(__x86_64__) || defined(__i386__)
#define KILN_X86 1
#include <immintrin.h>
#endif
#ifdef KILN_ARM64
#include <arm_neon.h>
#endif

void kiln_act_q8_block(const float *x, int n, int8_t q[32], float *d)
{
    float amax = 0;
    for (int i = 0; i < n; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    float id = amax > 0 ? 127.0f / amax : 0.0f;
    *d = amax / 127.0f;
    for (int i = 0; i < 32; i++)
        q[i] = i < n ? (int8_t)lrintf(x[i] * id) : 0;
}

typedef struct xq_out {
    int8_t *xe, *xo; /* int4 layout (xo unused for q8) */
    float *d, *s;
    int32_t *n;
} xq_out;

static xq_out out_of(void *out, int64_t k)
{
    int64_t nb4 = kiln_xq_nb4(k);
    int8_t *b = out;
    return (xq_out){.xe = b, .xo = b + nb4 * 16, .d = (float *)(b + nb4 * 32), .s = (float *)(b + nb4 * 36),
                    .n = (int32_t *)(b + nb4 * 40)};
}

/* One block's q in element order -> the layout. */
static void store_block(const xq_out *o, int64_t b, const int8_t q[32], float d, int fmt)
{
    int sum = 0;
    for (int i = 0; i < 32; i++)
        sum += q[i];
    if (fmt == KILN_XQ_Q8) {
        memcpy(o->xe + b * 32, q, 32);
    } else {
        for (int i = 0; i < 16; i++) {
            o->xe[b * 16 + i] = q[2 * i];
            o->xo[b * 16 + i] = q[2 * i + 1];
        }
    }
    o->d[b] = d;
    o->s[b] = d * (float)sum;
    o->n[b] = sum;
}

static void pack_scalar(const float *x, int64_t k, int fmt, const xq_out *o, int64_t b0, int64_t nb)
{
    for (int64_t b = b0; b < nb; b++) {
        int8_t q[32];
        float d;
        int64_t n = k - b * 32 < 32 ? k - b * 32 : 32;
        kiln_act_q8_block(x + b * 32, (int)n, q, &d);
        store_block(o, b, q, d, fmt);
    }
}

#ifdef KILN_X86
/* Full blocks only; the caller does the partial last block in scalar. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))) static void pack_avx512(const float *x, int64_t nb,
                                                                                       int fmt, const xq_out *o)
{
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < nb; b++) {
        __m512 lo = _mm512_loadu_ps(x + b * 32), hi = _mm512_loadu_ps(x + b * 32 + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(lo, absmask), _mm512_and_ps(hi, absmask)));
        float id = amax > 0 ? 127.0f / amax : 0.0f, d = amax / 127.0f;
        __m512 vid = _mm512_set1_ps(id);
        __m512i q0, q1;
        if (fmt == KILN_XQ_Q8) {
            q0 = _mm512_cvtps_epi32(_mm512_mul_ps(lo, vid));
            q1 = _mm512_cvtps_epi32(_mm512_mul_ps(hi, vid));
            _mm_storeu_si128((__m128i *)(o->xe + b * 32), _mm512_cvtsepi32_epi8(q0));
            _mm_storeu_si128((__m128i *)(o->xe + b * 32 + 16), _mm512_cvtsepi32_epi8(q1));
        } else {
            q0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_permutex2var_ps(lo, ev, hi), vid));
            q1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_permutex2var_ps(lo, od, hi), vid));
            _mm_storeu_si128((__m128i *)(o->xe + b * 16), _mm512_cvtsepi32_epi8(q0));
            _mm_storeu_si128((__m128i *)(o->xo + b * 16), _mm512_cvtsepi32_epi8(q1));
        }
        int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        o->d[b] = d;
        o->s[b] = d * (float)sum;
        o->n[b] = sum;
    }
}

__attribute__((target("avx2,fma,f16c"))) static void pack_avx2(const float *x, int64_t nb, int fmt, const xq_out *o)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i evod = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12,
                                          14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int64_t b = 0; b < nb; b++) {
        __m256 v[4];
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(x + b * 32 + 8 * i);
            m = _mm256_max_ps(m, _mm256_and_ps(v[i], absmask));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
        float amax = _mm_cvtss_f32(m4);
        float id = amax > 0 ? 127.0f / amax : 0.0f, d = amax / 127.0f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vid));
        __m256i sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        /* int32 x 32 -> int8 in element order (packs interleave 128-bit lanes) */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        p = _mm256_permutevar8x32_epi32(p, order);
        if (fmt == KILN_XQ_Q8) {
            _mm256_storeu_si256((__m256i *)(o->xe + b * 32), p);
        } else {
            p = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(p, evod), 0xd8); /* [even 0..31][odd 0..31] */
            _mm_storeu_si128((__m128i *)(o->xe + b * 16), _mm256_castsi256_si128(p));
            _mm_storeu_si128((__m128i *)(o->xo + b * 16), _mm256_extracti128_si256(p, 1));
        }
        o->d[b] = d;
        o->s[b] = d * (float)_mm_cvtsi128_si32(s4);
        o->n[b] = _mm_cvtsi128_si32(s4);
    }
}
#endif

#ifdef KILN_ARM64
/* Full blocks only, as pack_avx2. vcvtnq rounds to nearest even like
 * lrintf in the default mode; |x * id| <= 127, so the narrowing never
 * saturates. */
static void pack_neon(const float *x, int64_t nb, int fmt, const xq_out *o)
{
    for (int64_t b = 0; b < nb; b++) {
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0);
        for (int i = 0; i < 8; i++) {
            v[i] = vld1q_f32(x + b * 32 + 4 * i);
            m = vmaxq_f32(m, vabsq_f32(v[i]));
        }
        float amax = vmaxvq_f32(m);
        float id = amax > 0 ? 127.0f / amax : 0.0f, d = amax / 127.0f;
        int32x4_t q[8], sum = vdupq_n_s32(0);
        for (int i = 0; i < 8; i++) {
            q[i] = vcvtnq_s32_f32(vmulq_n_f32(v[i], id));
            sum = vaddq_s32(sum, q[i]);
        }
        int8x16_t p[2];
        for (int h = 0; h < 2; h++) {
            int16x8_t lo = vcombine_s16(vqmovn_s32(q[4 * h]), vqmovn_s32(q[4 * h + 1]));
            int16x8_t hi = vcombine_s16(vqmovn_s32(q[4 * h + 2]), vqmovn_s32(q[4 * h + 3]));
            p[h] = vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)); /* elements 16h .. 16h+15 */
        }
        if (fmt == KILN_XQ_Q8) {
            vst1q_s8(o->xe + b * 32, p[0]);
            vst1q_s8(o->xe + b * 32 + 16, p[1]);
        } else {
            vst1q_s8(o->xe + b * 16, vuzp1q_s8(p[0], p[1])); /* even elements */
            vst1q_s8(o->xo + b * 16, vuzp2q_s8(p[0], p[1])); /* odd elements */
        }
        o->d[b] = d;
        o->s[b] = d * (float)vaddvq_s32(sum);
        o->n[b] = vaddvq_s32(sum);
    }
}
#endif

void kiln_act_q8_pack(const float *x, int64_t k, int fmt, unsigned isa, void *out)
{
    xq_out o = out_of(out, k);
    int64_t nb = (k + 31) / 32, nb4 = kiln_xq_nb4(k), done = 0;
    (void)isa;
#ifdef KILN_X86
    if (isa & KILN_ISA_AVX512)
        pack_avx512(x, done = k / 32, fmt, &o);
    else if (isa & KILN_ISA_AVX2)
        pack_avx2(x, done = k / 32, fmt, &o);
#endif
#ifdef KILN_ARM64
    if (isa & KILN_ISA_NEON)
        pack_neon(x, done = k / 32, fmt, &o);
#endif
    pack_scalar(x, k, fmt, &o, done, nb); /* the partial last block; all of them on the scalar path */
    static const int8_t zero[32];
    for (int64_t b = nb; b < nb4; b++)
        store_block(&o, b, zero, 0.0f, fmt);
}

void kiln_act_q8_roundtrip(const float *x, int64_t k, float *out)
{
    for (int64_t b = 0; b * 32 < k; b++) {
        int8_t q[32];
        float d;
        int n = k - b * 32 < 32 ? (int)(k - b * 32) : 32;
        kiln_act_q8_block(x + b * 32, n, q, &d);
        for (int i = 0; i < n; i++)
            out[b * 32 + i] = (float)q[i] * d;
    }
}

void kiln_act_q8_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    uint32_t k = l->arg[2].u32;
    int fmt = (int)l->arg[3].u32, brk = (int)kiln_define_get(l->defines, l->n_defines, "KILN_TEST_BREAK", 0);
    float *planted = brk && k > 1 ? malloc(sizeof *planted * k) : NULL;
    if (brk && k > 1 && !planted)
        return;
    for (uint32_t t = wg_begin; t < wg_end; t++) { /* one workgroup per token */
        const float *x = (const float *)l->ptr[0] + (size_t)t * k;
        if (planted) { /* planted bug (tests only): x[t][0] read from x[t][1] */
            memcpy(planted, x, sizeof *planted * k);
            planted[0] = planted[1];
            x = planted;
        }
        kiln_act_q8_pack(x, k, fmt, l->isa, (char *)l->ptr[1] + (size_t)t * kiln_xq_bytes(k));
    }
    free(planted);
}

void kiln_act_q8_plan_step(kiln_plan_step *st, const char *source, int x_slot, int scratch, int64_t k, int quant,
                           uint32_t n_tokens)
{
    st->source = source;
    st->entry = "act_q8_cpu";
    st->signature = "bbuu";
    st->local[0] = 1;
    st->grid[0] = n_tokens;
    st->cpu_threads = n_tokens == 1 ? 1 : 0;
    kiln_plan_slot(st, x_slot);
    kiln_plan_scratch(st, scratch);
    kiln_plan_u32(st, (uint32_t)k);
    kiln_plan_u32(st, quant == KILN_Q8_0 ? KILN_XQ_Q8 : KILN_XQ_INT4);
}
