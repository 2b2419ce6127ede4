/* kernels/gemv_int4/gemv_int4_rows.cu - gemv_int4, layout 1: one thread per
 * row, walking the whole of K; see gemv_int4_rows.comp for why. On NVIDIA
 * GPUs the weight reads of a warp are strided by a row, so layout 0 should
 * win there; it is in the space so that the tuner, not a guess, says so.
 * Defines: QUANT, GROUP, WG. */
#define EPW (QUANT <= 2 ? 8 : QUANT == 3 ? 4 : QUANT == 4 ? 2 : 1)
#define ZERO (QUANT == 0 ? 7.0f : QUANT == 1 ? 8.0f : 0.0f)

__device__ __forceinline__ float xat(const float *__restrict__ x, uint32_t k)
{
#ifdef KILN_TEST_BREAK
    if (k == 0)
        return x[1];
#endif
    return x[k];
}

#if QUANT != 4
__device__ __forceinline__ float code(uint32_t word, uint32_t j)
{
#if QUANT <= 2
    return (float)((word >> (4 * j)) & 0xFu) - ZERO;
#else
    return (float)(int8_t)((word >> (8 * j)) & 0xFFu);
#endif
}
#endif

extern "C" __global__ void __launch_bounds__(WG)
gemv_int4_rows(const uint32_t *__restrict__ qs, const uint16_t *__restrict__ scales,
               const uint16_t *__restrict__ mins, const float *__restrict__ x, float *__restrict__ y, uint32_t M,
               uint32_t K, uint32_t wpr, uint32_t gpr)
{
    uint32_t row = blockIdx.x * WG + threadIdx.x;
    if (row >= M)
        return;
    const uint32_t *q = qs + (size_t)row * wpr;
    float acc = 0.0f;
#if QUANT == 4
    uint32_t pairs = K / 2;
    for (uint32_t w = 0; w < pairs; w++) {
        uint32_t h = q[w];
        acc += kiln_half_to_float((uint16_t)(h & 0xFFFFu)) * xat(x, 2 * w) +
               kiln_half_to_float((uint16_t)(h >> 16)) * x[2 * w + 1];
    }
    if (K & 1u)
        acc += kiln_half_to_float((uint16_t)(q[pairs] & 0xFFFFu)) * x[K - 1];
#else
    const uint32_t wpg = GROUP / EPW; /* words per group */
    uint32_t full = K / GROUP;
    for (uint32_t g = 0; g < full; g++) {
        float d = 0.0f, xs = 0.0f;
        for (uint32_t i = 0; i < wpg; i++) {
            uint32_t word = q[g * wpg + i];
            uint32_t k0 = (g * wpg + i) * EPW;
#pragma unroll
            for (uint32_t j = 0; j < EPW; j++) {
                float xv = xat(x, k0 + j);
                d += code(word, j) * xv;
                xs += xv;
            }
        }
        acc += kiln_half_to_float(scales[(size_t)row * gpr + g]) * d;
#if QUANT == 2
        acc += kiln_half_to_float(mins[(size_t)row * gpr + g]) * xs;
#endif
    }
    if (full * GROUP < K) { /* the partial last group */
        float d = 0.0f, xs = 0.0f;
        for (uint32_t k = full * GROUP; k < K; k++) {
            float xv = xat(x, k);
            d += code(q[k / EPW], k % EPW) * xv;
            xs += xv;
        }
        acc += kiln_half_to_float(scales[(size_t)row * gpr + full]) * d;
#if QUANT == 2
        acc += kiln_half_to_float(mins[(size_t)row * gpr + full]) * xs;
#endif
    }
#endif
    y[row] = acc;
}
