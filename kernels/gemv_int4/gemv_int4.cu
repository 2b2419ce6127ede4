/* kernels/gemv_int4/gemv_int4.cu - see gemv_int4.c for the schedule.
 * Defines: QUANT, GROUP, WG, ROWS, VEC, UNROLL, SPLITK, REDUCE.
 * The reduce step (gemv_int4_reduce) is built from this file with only WG and
 * SPLITK, layout 1 (gemv_int4_rows) with QUANT, GROUP and WG: the other
 * kernels' parameters get harmless defaults so that every entry compiles. */
#ifndef QUANT
#define QUANT 0
#endif
#ifndef GROUP
#define GROUP 32
#endif
#ifndef ROWS
#define ROWS 1
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
#ifndef SPLITK
#define SPLITK 1
#endif
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
/* sum over the EPW elements of one word: (code - zero) * x, and sum of x */
__device__ __forceinline__ float word_dot(uint32_t word, uint32_t k0, uint32_t K, const float *__restrict__ x, float *xs)
{
    float d = 0.0f, s = 0.0f;
#pragma unroll
    for (uint32_t j = 0; j < EPW; j++) {
        uint32_t k = k0 + j;
        if (k >= K)
            break;
        float xv = xat(x, k);
#if QUANT <= 2
        float c = (float)((word >> (4 * j)) & 0xFu) - ZERO;
#else
        float c = (float)(int8_t)((word >> (8 * j)) & 0xFFu);
#endif
        d += c * xv;
        s += xv;
    }
    *xs = s;
    return d;
}
#endif

extern "C" __global__ void __launch_bounds__(WG)
gemv_int4(const uint32_t *__restrict__ qs, const uint16_t *__restrict__ scales, const uint16_t *__restrict__ mins,
          const float *__restrict__ x, float *__restrict__ y, uint32_t M, uint32_t K, uint32_t wpr, uint32_t gpr)
{
    __shared__ float red[ROWS * WG];
    uint32_t tid = threadIdx.x;
    uint32_t row0 = blockIdx.x * ROWS;
    uint32_t split = blockIdx.y;
    uint32_t words = (K + EPW - 1) / EPW;
    uint32_t step = WG * VEC;
    uint32_t chunk = ((words + SPLITK - 1) / SPLITK + step - 1) / step * step;
    uint32_t wb = split * chunk, we = min(words, wb + chunk);
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++)
        acc[r] = 0.0f;
    for (uint32_t w0 = wb + tid * VEC; w0 < we; w0 += step * UNROLL) {
#pragma unroll
        for (uint32_t u = 0; u < UNROLL; u++) {
            uint32_t w = w0 + u * step;
            if (w >= we)
                break;
#pragma unroll
            for (int r = 0; r < ROWS; r++) {
                uint32_t row = min(row0 + r, M - 1);
                const uint32_t *qrow = qs + (size_t)row * wpr;
#if QUANT == 4
                for (uint32_t v = 0; v < VEC && w + v < we; v++) {
                    uint32_t k0 = (w + v) * 2, word = qrow[w + v];
                    acc[r] += kiln_half_to_float((uint16_t)(word & 0xFFFFu)) * xat(x, k0);
                    if (k0 + 1 < K)
                        acc[r] += kiln_half_to_float((uint16_t)(word >> 16)) * xat(x, k0 + 1);
                }
#else
                uint32_t g = (w * EPW) / GROUP;
                float s = kiln_half_to_float(scales[(size_t)row * gpr + g]);
                float d = 0.0f, xs = 0.0f;
                for (uint32_t v = 0; v < VEC && w + v < we; v++) {
                    float xsv;
                    d += word_dot(qrow[w + v], (w + v) * EPW, K, x, &xsv);
                    xs += xsv;
                }
#if QUANT == 2
                acc[r] += s * d + kiln_half_to_float(mins[(size_t)row * gpr + g]) * xs;
#else
                acc[r] += s * d;
#endif
#endif
            }
        }
    }
#if REDUCE == 1
#pragma unroll
    for (int r = 0; r < ROWS; r++) {
        float t = acc[r];
        for (int off = 16; off > 0; off >>= 1)
            t += __shfl_xor_sync(0xffffffffu, t, off);
        if ((tid & 31) == 0)
            red[r * WG + tid / 32] = t;
    }
    __syncthreads();
    if (tid < ROWS && row0 + tid < M) {
        float t = 0.0f;
        for (uint32_t i = 0; i < WG / 32; i++)
            t += red[tid * WG + i];
        y[(size_t)split * M + row0 + tid] = t;
    }
#else
#pragma unroll
    for (int r = 0; r < ROWS; r++)
        red[r * WG + tid] = acc[r];
    __syncthreads();
    for (uint32_t off = WG / 2; off > 0; off >>= 1) {
        if (tid < off)
#pragma unroll
            for (int r = 0; r < ROWS; r++)
                red[r * WG + tid] += red[r * WG + tid + off];
        __syncthreads();
    }
    if (tid < ROWS && row0 + tid < M)
        y[(size_t)split * M + row0 + tid] = red[tid * WG];
#endif
}

extern "C" __global__ void gemv_int4_reduce(const float *__restrict__ part, float *__restrict__ y, uint32_t M,
                                            uint32_t splitk)
{
    uint32_t row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= M)
        return;
    float s = 0.0f;
    for (uint32_t i = 0; i < splitk; i++)
        s += part[(size_t)i * M + row];
    y[row] = s;
}

/* Layout 1: one thread per row walking the whole of K (see
 * gemv_int4_rows.comp for why CPU drivers want it; on NVIDIA GPUs a warp's
 * weight reads are strided by a row, so layout 0 should win: it is in the
 * space so that the tuner, not a guess, says so). */
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
    for (uint32_t k = 0; k < K; k++) {
        uint32_t word = q[k / 2];
        acc += kiln_half_to_float((uint16_t)(k & 1 ? word >> 16 : word & 0xFFFFu)) * xat(x, k);
    }
#else
    uint32_t words = (K + EPW - 1) / EPW, wpg = GROUP / EPW;
    for (uint32_t g = 0; g * wpg < words; g++) { /* the last group may be partial */
        float d = 0.0f, xs = 0.0f;
        for (uint32_t w = g * wpg; w < min(words, (g + 1) * wpg); w++) {
            float xsw;
            d += word_dot(q[w], w * EPW, K, x, &xsw);
            xs += xsw;
        }
        acc += kiln_half_to_float(scales[(size_t)row * gpr + g]) * d;
#if QUANT == 2
        acc += kiln_half_to_float(mins[(size_t)row * gpr + g]) * xs;
#endif
    }
#endif
    y[row] = acc;
}
