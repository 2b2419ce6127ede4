/* kernels/gemm_int4/gemm_int4.cu - see gemm_int4.c for the schedule.
 * Defines: QUANT, GROUP, WG, ROWS, TN, VEC, UNROLL, REDUCE. */
#ifndef QUANT
#define QUANT 0
#endif
#ifndef GROUP
#define GROUP 32
#endif
#ifndef ROWS
#define ROWS 1
#endif
#ifndef TN
#define TN 1
#endif
#ifndef VEC
#define VEC 1
#endif
#ifndef UNROLL
#define UNROLL 1
#endif
#ifndef REDUCE
#define REDUCE 0
#endif
#define EPW (QUANT <= 2 ? 8 : QUANT == 3 ? 4 : QUANT == 4 ? 2 : 1)
#define ZERO (QUANT == 0 ? 7.0f : QUANT == 1 ? 8.0f : 0.0f)
#define NACC (ROWS * TN)

extern "C" __global__ void __launch_bounds__(WG)
gemm_int4(const uint32_t *__restrict__ qs, const uint16_t *__restrict__ scales, const uint16_t *__restrict__ mins,
          const float *__restrict__ x, float *__restrict__ y, uint32_t M, uint32_t K, uint32_t wpr, uint32_t gpr,
          uint32_t N)
{
    __shared__ float red[NACC * WG];
    uint32_t tid = threadIdx.x;
    uint32_t row0 = blockIdx.x * ROWS;
    uint32_t tok0 = blockIdx.y * TN;
    uint32_t words = (K + EPW - 1) / EPW;
    uint32_t step = WG * VEC;
    const float *xr[TN];
#pragma unroll
    for (int t = 0; t < TN; t++)
        xr[t] = x + (size_t)min(tok0 + t, N - 1) * K; /* clamped: loads only, never written */
    const uint32_t *qr[ROWS];
    size_t goff[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++) {
        uint32_t row = min(row0 + r, M - 1);
        qr[r] = qs + (size_t)row * wpr;
        goff[r] = (size_t)row * gpr;
    }
    float acc[NACC];
#pragma unroll
    for (int i = 0; i < NACC; i++)
        acc[i] = 0.0f;
    for (uint32_t w0 = tid * VEC; w0 < words; w0 += step * UNROLL) {
#pragma unroll
        for (uint32_t u = 0; u < UNROLL; u++) {
            uint32_t w = w0 + u * step;
            if (w >= words)
                break;
#if QUANT != 4
            /* a VEC never straddles a group: one scale (and min) per row */
            uint32_t g = (w * EPW) / GROUP;
            float sc[ROWS];
#if QUANT == 2
            float mn[ROWS];
#endif
#pragma unroll
            for (int r = 0; r < ROWS; r++) {
                sc[r] = kiln_half_to_float(scales[goff[r] + g]);
#if QUANT == 2
                mn[r] = kiln_half_to_float(mins[goff[r] + g]);
#endif
            }
#endif
#pragma unroll
            for (uint32_t v = 0; v < VEC; v++) {
                uint32_t wv = w + v;
                if (wv >= words)
                    break;
                uint32_t word[ROWS];
#pragma unroll
                for (int r = 0; r < ROWS; r++)
                    word[r] = qr[r][wv];
#pragma unroll
                for (uint32_t j = 0; j < EPW; j++) {
                    uint32_t k = wv * EPW + j;
                    if (k >= K)
                        break;
                    /* dequantize each row's element once ... */
                    float wf[ROWS];
#pragma unroll
                    for (int r = 0; r < ROWS; r++) {
#if QUANT == 4
                        wf[r] = kiln_half_to_float((uint16_t)(word[r] >> (16 * j)));
#elif QUANT == 3
                        wf[r] = (float)(int8_t)((word[r] >> (8 * j)) & 0xFFu) * sc[r];
#elif QUANT == 2
                        wf[r] = (float)((word[r] >> (4 * j)) & 0xFu) * sc[r] + mn[r];
#else
                        wf[r] = ((float)((word[r] >> (4 * j)) & 0xFu) - ZERO) * sc[r];
#endif
                    }
                    /* ... and use it for TN tokens (each x load for ROWS rows) */
#pragma unroll
                    for (int t = 0; t < TN; t++) {
                        float xv = xr[t][k];
#ifdef KILN_TEST_BREAK
                        if (k == 0)
                            xv = xr[t][1];
#endif
#pragma unroll
                        for (int r = 0; r < ROWS; r++)
                            acc[r * TN + t] += wf[r] * xv;
                    }
                }
            }
        }
    }
#if REDUCE == 1
#pragma unroll
    for (int i = 0; i < NACC; i++) {
        float t = acc[i];
        for (int off = 16; off > 0; off >>= 1)
            t += __shfl_xor_sync(0xffffffffu, t, off);
        if ((tid & 31) == 0)
            red[i * WG + tid / 32] = t;
    }
    __syncthreads();
    for (uint32_t i = tid; i < NACC; i += WG) {
        uint32_t r = i / TN, t = i % TN;
        if (row0 + r < M && tok0 + t < N) {
            float a = 0.0f;
            for (uint32_t sg = 0; sg < WG / 32; sg++)
                a += red[i * WG + sg];
            y[(size_t)(tok0 + t) * M + row0 + r] = a;
        }
    }
#else
    /* two barriers, not log2(WG): thread (i, p) sums output i's partials
     * p, p + P, ... (P = WG / NACC threads per output, conflict-free reads)
     * into red[i * WG + p], which only it reads; then NACC threads add P each */
#pragma unroll
    for (int i = 0; i < NACC; i++)
        red[i * WG + tid] = acc[i];
    __syncthreads();
    {
        const uint32_t P = WG / NACC;
        uint32_t i = tid / P, p = tid % P;
        float a = 0.0f;
#pragma unroll
        for (uint32_t j = 0; j < NACC; j++)
            a += red[i * WG + j * P + p];
        red[i * WG + p] = a;
    }
    __syncthreads();
    if (tid < NACC) {
        const uint32_t P = WG / NACC;
        uint32_t r = tid / TN, t = tid % TN;
        float a = 0.0f;
        for (uint32_t p = 0; p < P; p++)
            a += red[tid * WG + p];
        if (row0 + r < M && tok0 + t < N)
            y[(size_t)(tok0 + t) * M + row0 + r] = a;
    }
#endif
}
