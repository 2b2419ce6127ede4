/* devices/cpu/cpu_read.c - the cpu backend's read-bandwidth probe (see
 * kiln_measure_read_bandwidth): workgroup w of the grid sums the 32-bit
 * words (mod 2^32) of its contiguous block of the buffer and writes one
 * value, out[w]. The launch spreads workgroups over the device's pool, so
 * the figure is the machine's (or KILN_CPU_THREADS') read bandwidth. Loads
 * are 64-byte AVX-512 or 32-byte AVX2 ones, four accumulators deep so that
 * the adds never wait on a load (NEON: 16-byte loads, four deep); the
 * launch's ISA bits pick the path as for the kernels ($KILN_CPU_ISA caps
 * them). Arguments: src, out, n (16-byte vectors in src). */
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu_internal.h"

#include "devices/cpu/cpu_isa.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define KILN_X86 1
#endif
#ifdef KILN_ARM64
#include <arm_neon.h>
#endif

static uint32_t sum_scalar(const uint8_t *p, size_t bytes)
{
    uint32_t acc = 0;
    for (size_t i = 0; i + 4 <= bytes; i += 4) {
        uint32_t w;
        memcpy(&w, p + i, 4);
        acc += w;
    }
    return acc;
}

#ifdef KILN_X86
__attribute__((target("avx512f"))) static uint32_t sum_avx512(const uint8_t *p, size_t bytes)
{
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 256 <= bytes; i += 256) {
        a0 = _mm512_add_epi32(a0, _mm512_loadu_si512((const void *)(p + i)));
        a1 = _mm512_add_epi32(a1, _mm512_loadu_si512((const void *)(p + i + 64)));
        a2 = _mm512_add_epi32(a2, _mm512_loadu_si512((const void *)(p + i + 128)));
        a3 = _mm512_add_epi32(a3, _mm512_loadu_si512((const void *)(p + i + 192)));
    }
    for (; i + 64 <= bytes; i += 64)
        a0 = _mm512_add_epi32(a0, _mm512_loadu_si512((const void *)(p + i)));
    a0 = _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
    /* lanes summed as unsigned: _mm512_reduce_add_epi32 adds signed ints (overflow is UB) */
    uint32_t lane[16], acc = 0;
    _mm512_storeu_si512((void *)lane, a0);
    for (int j = 0; j < 16; j++)
        acc += lane[j];
    return acc + sum_scalar(p + i, bytes - i);
}

__attribute__((target("avx2"))) static uint32_t sum_avx2(const uint8_t *p, size_t bytes)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 128 <= bytes; i += 128) {
        a0 = _mm256_add_epi32(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi32(a1, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi32(a2, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi32(a3, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
    }
    for (; i + 32 <= bytes; i += 32)
        a0 = _mm256_add_epi32(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
    a0 = _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(a0), _mm256_extracti128_si256(a0, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(h) + sum_scalar(p + i, bytes - i);
}
#endif

#ifdef KILN_ARM64
static uint32_t sum_neon(const uint8_t *p, size_t bytes)
{
    uint32x4_t a0 = vdupq_n_u32(0), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= bytes; i += 64) {
        a0 = vaddq_u32(a0, vreinterpretq_u32_u8(vld1q_u8(p + i)));
        a1 = vaddq_u32(a1, vreinterpretq_u32_u8(vld1q_u8(p + i + 16)));
        a2 = vaddq_u32(a2, vreinterpretq_u32_u8(vld1q_u8(p + i + 32)));
        a3 = vaddq_u32(a3, vreinterpretq_u32_u8(vld1q_u8(p + i + 48)));
    }
    uint32x4_t t = vaddq_u32(vaddq_u32(a0, a1), vaddq_u32(a2, a3));
    return vaddvq_u32(t) + sum_scalar(p + i, bytes - i); /* unsigned lanes: wraps mod 2^32 */
}
#endif

void kiln_cpu_read_sum(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    const uint8_t *src = l->ptr[0];
    uint32_t *out = l->ptr[1];
    size_t n = l->arg[2].u32, groups = l->grid[0];
    /* blocks of whole 64-byte lines, so no line is read by two threads */
    size_t blk = ((n + groups - 1) / groups + 3) & ~(size_t)3;
#ifdef KILN_X86
    int isa = kiln_cpu_isa_level(l->isa);
#endif
    for (uint32_t w = wg_begin; w < wg_end; w++) {
        size_t lo = (size_t)w * blk, hi = lo + blk < n ? lo + blk : n;
        size_t bytes = hi > lo ? (hi - lo) * 16 : 0;
        const uint8_t *p = src + lo * 16;
#ifdef KILN_X86
        out[w] = isa == 2 ? sum_avx512(p, bytes) : isa == 1 ? sum_avx2(p, bytes) : sum_scalar(p, bytes);
#elif defined(KILN_ARM64)
        out[w] = l->isa & KILN_ISA_NEON ? sum_neon(p, bytes) : sum_scalar(p, bytes);
#else
        out[w] = sum_scalar(p, bytes);
#endif
    }
}
