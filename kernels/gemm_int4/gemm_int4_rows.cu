/* kernels/gemm_int4/gemm_int4_rows.cu - gemm_int4, layout 1: one thread per row
 * and TN tokens, walking the whole of K; see gemm_int4_rows.comp. A warp's
 * weight reads are a row apart here, so layout 0 should win on NVIDIA GPUs;
 * the tuner measures it rather than assuming. Defines: QUANT, GROUP, WG, TN. */
#define EPW (QUANT <= 2 ? 8 : QUANT == 3 ? 4 : QUANT == 4 ? 2 : 1)
#define ZERO (QUANT == 0 ? 7.0f : QUANT == 1 ? 8.0f : 0.0f)

__device__ __forceinline__ float deq(uint32_t word, uint32_t j, float s, float m)
{
#if QUANT == 4
    return kiln_half_to_float((uint16_t)(j ? word >> 16 : word & 0xFFFFu));
#elif QUANT == 3
    return (float)(int8_t)((word >> (8 * j)) & 0xFFu) * s;
#elif QUANT == 2
    return (float)((word >> (4 * j)) & 0xFu) * s + m;
#else
    return ((float)((word >> (4 * j)) & 0xFu) - ZERO) * s;
#endif
}

extern "C" __global__ void __launch_bounds__(WG)
gemm_int4_rows(const uint32_t *__restrict__ qs, const uint16_t *__restrict__ scales,
               const uint16_t *__restrict__ mins, const float *__restrict__ x, float *__restrict__ y, uint32_t M,
               uint32_t K, uint32_t wpr, uint32_t gpr, uint32_t N)
{
    uint32_t gid = blockIdx.x * WG + threadIdx.x;
    uint32_t row = gid < M ? gid : M - 1;
    uint32_t tok0 = blockIdx.y * TN;
    const uint32_t *q = qs + (size_t)row * wpr;
    const float *xt[TN]; /* clamped token rows: loads stay in bounds, stores are skipped */
    float acc[TN];
#pragma unroll
    for (uint32_t t = 0; t < TN; t++) {
        xt[t] = x + (size_t)(tok0 + t < N ? tok0 + t : N - 1) * K;
        acc[t] = 0.0f;
    }
    uint32_t words = (K + EPW - 1) / EPW;
    for (uint32_t w = 0; w < words; w++) {
        uint32_t word = q[w];
        uint32_t k0 = w * EPW;
#if QUANT == 4
        float s = 1.0f, m = 0.0f;
#else
        uint32_t g = k0 / GROUP;
        float s = kiln_half_to_float(scales[(size_t)row * gpr + g]);
#if QUANT == 2
        float m = kiln_half_to_float(mins[(size_t)row * gpr + g]);
#else
        float m = 0.0f;
#endif
#endif
        uint32_t jn = k0 + EPW <= K ? EPW : K - k0;
#pragma unroll
        for (uint32_t j = 0; j < EPW; j++) {
            if (j >= jn)
                break;
            float wv = deq(word, j, s, m);
            uint32_t k = k0 + j;
#ifdef KILN_TEST_BREAK
            if (k == 0)
                k = 1;
#endif
#pragma unroll
            for (uint32_t t = 0; t < TN; t++)
                acc[t] += wv * xt[t][k];
        }
    }
    if (gid < M)
#pragma unroll
        for (uint32_t t = 0; t < TN; t++)
            if (tok0 + t < N)
                y[(size_t)(tok0 + t) * M + row] = acc[t];
}
