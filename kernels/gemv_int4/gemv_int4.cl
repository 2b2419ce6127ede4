/* kernels/gemv_int4/gemv_int4.cl - see gemv_int4.c for the schedule.
 * Defines: QUANT (kiln_quant), GROUP, WG, ROWS, VEC, UNROLL, SPLITK, REDUCE. */
/* The reduce step (gemv_int4_reduce) is built from this file with only WG and
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

#if QUANT != 4
/* sum over the EPW elements of one word: (code - zero) * x, and sum of x */
inline float word_dot(uint w, uint k0, uint K, __global const float *x, float *xs)
{
    float d = 0.0f, s = 0.0f;
    for (uint j = 0; j < EPW; j++) {
        uint k = k0 + j;
        if (k >= K)
            break;
        float xv = x[k];
#ifdef KILN_TEST_BREAK
        if (k == 0)
            xv = x[1];
#endif
#if QUANT <= 2
        float c = (float)((w >> (4 * j)) & 0xFu) - ZERO;
#else
        float c = (float)((char)((w >> (8 * j)) & 0xFFu));
#endif
        d += c * xv;
        s += xv;
    }
    *xs = s;
    return d;
}
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gemv_int4(__global const uint *qs, __global const ushort *scales, __global const ushort *mins, __global const float *x,
          __global float *y, uint M, uint K, uint wpr, uint gpr)
{
    __local float red[ROWS * WG];
    uint tid = get_local_id(0);
    uint row0 = get_group_id(0) * ROWS;
    uint split = get_group_id(1);
    uint words = (K + EPW - 1) / EPW;
    uint step = (uint)WG * VEC;
    uint chunk = ((words + SPLITK - 1) / SPLITK + step - 1) / step * step;
    uint wb = split * chunk, we = min(words, wb + chunk);
    float acc[ROWS];
    for (int r = 0; r < ROWS; r++)
        acc[r] = 0.0f;
    /* UNROLL steps per trip; the constant inner loop is unrolled by the compiler */
    for (uint w0 = wb + tid * VEC; w0 < we; w0 += step * UNROLL)
    for (uint u = 0; u < UNROLL; u++) {
        uint w = w0 + u * step;
        if (w >= we)
            break;
        for (int r = 0; r < ROWS; r++) {
            uint row = min(row0 + r, M - 1);
            __global const uint *qrow = qs + (size_t)row * wpr;
#if QUANT == 4
            for (uint v = 0; v < VEC && w + v < we; v++) {
                uint k0 = (w + v) * 2;
                float lo = vload_half(2 * (size_t)row * wpr + k0, (__global const half *)qs);
                float x0 = x[k0];
#ifdef KILN_TEST_BREAK
                if (k0 == 0)
                    x0 = x[1];
#endif
                acc[r] += lo * x0;
                if (k0 + 1 < K)
                    acc[r] += vload_half(2 * (size_t)row * wpr + k0 + 1, (__global const half *)qs) * x[k0 + 1];
            }
#else
            uint g = (w * EPW) / GROUP;
            float s = vload_half((size_t)row * gpr + g, (__global const half *)scales);
            float d = 0.0f, xs = 0.0f;
            for (uint v = 0; v < VEC && w + v < we; v++) {
                float xsv;
                d += word_dot(qrow[w + v], (w + v) * EPW, K, x, &xsv);
                xs += xsv;
            }
#if QUANT == 2
            acc[r] += s * d + vload_half((size_t)row * gpr + g, (__global const half *)mins) * xs;
#else
            acc[r] += s * d;
#endif
#endif
        }
    }
    for (int r = 0; r < ROWS; r++)
        red[r * WG + tid] = acc[r];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint off = WG / 2; off > 0; off >>= 1) {
        if (tid < off)
            for (int r = 0; r < ROWS; r++)
                red[r * WG + tid] += red[r * WG + tid + off];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (tid < ROWS && row0 + tid < M)
        y[(size_t)split * M + row0 + tid] = red[tid * WG];
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void gemv_int4_reduce(__global const float *part,
                                                                                __global float *y, uint M, uint splitk)
{
    uint row = get_global_id(0);
    if (row >= M)
        return;
    float s = 0.0f;
    for (uint i = 0; i < splitk; i++)
        s += part[(size_t)i * M + row];
    y[row] = s;
}

/* Layout 1: one work-item per row walking the whole of K (see
 * gemv_int4_rows.comp for why CPU drivers want it). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gemv_int4_rows(__global const uint *qs, __global const ushort *scales, __global const ushort *mins,
               __global const float *x, __global float *y, uint M, uint K, uint wpr, uint gpr)
{
    uint row = get_global_id(0);
    if (row >= M)
        return;
    __global const uint *q = qs + (size_t)row * wpr;
    float acc = 0.0f;
#if QUANT == 4
    for (uint k = 0; k < K; k++) {
        float xv = x[k];
#ifdef KILN_TEST_BREAK
        if (k == 0)
            xv = x[1];
#endif
        acc += vload_half(k, (__global const half *)q) * xv;
    }
#else
    uint words = (K + EPW - 1) / EPW, wpg = GROUP / EPW;
    for (uint g = 0; g * wpg < words; g++) { /* the last group may be partial */
        float d = 0.0f, xs = 0.0f;
        for (uint w = g * wpg; w < min(words, (g + 1) * wpg); w++) {
            float xsw;
            d += word_dot(q[w], w * EPW, K, x, &xsw);
            xs += xsw;
        }
        acc += vload_half((size_t)row * gpr + g, (__global const half *)scales) * d;
#if QUANT == 2
        acc += vload_half((size_t)row * gpr + g, (__global const half *)mins) * xs;
#endif
    }
#endif
    y[row] = acc;
}
