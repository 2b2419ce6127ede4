/* kernels/gemm_int4/gemm_int4.cl - see gemm_int4.c for the schedule.
 * Defines: QUANT (kiln_quant), GROUP, WG, ROWS, TN, VEC, UNROLL, REDUCE
 * (REDUCE 1 is not valid on OpenCL: config_valid rejects it). */
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
#define EPW (QUANT <= 2 ? 8 : QUANT == 3 ? 4 : QUANT == 4 ? 2 : 1)
#define ZERO (QUANT == 0 ? 7.0f : QUANT == 1 ? 8.0f : 0.0f)
#define NACC (ROWS * TN)

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gemm_int4(__global const uint *qs, __global const ushort *scales, __global const ushort *mins, __global const float *x,
          __global float *y, uint M, uint K, uint wpr, uint gpr, uint N)
{
    __local float red[NACC * WG];
    uint tid = get_local_id(0);
    uint row0 = get_group_id(0) * ROWS;
    uint tok0 = get_group_id(1) * TN;
    uint words = (K + EPW - 1) / EPW;
    uint step = (uint)WG * VEC;
    size_t xoff[TN];
    for (int t = 0; t < TN; t++)
        xoff[t] = (size_t)min(tok0 + t, N - 1) * K; /* clamped: loads only, never written */
    size_t qoff[ROWS], goff[ROWS];
    for (int r = 0; r < ROWS; r++) {
        uint row = min(row0 + r, M - 1); /* clamped: loads only, never written */
        qoff[r] = (size_t)row * wpr;
        goff[r] = (size_t)row * gpr;
    }
    float acc[NACC];
    for (int i = 0; i < NACC; i++)
        acc[i] = 0.0f;
    /* UNROLL steps per trip; the constant inner loop is unrolled by the compiler */
    for (uint w0 = tid * VEC; w0 < words; w0 += step * UNROLL)
        for (uint u = 0; u < UNROLL; u++) {
            uint w = w0 + u * step;
            if (w >= words)
                break;
#if QUANT != 4
            /* a VEC never straddles a group: one scale (and min) per row */
            uint g = (w * EPW) / GROUP;
            float sc[ROWS];
#if QUANT == 2
            float mn[ROWS];
#endif
            for (int r = 0; r < ROWS; r++) {
                size_t gi = goff[r] + g;
                sc[r] = vload_half(gi, (__global const half *)scales);
#if QUANT == 2
                mn[r] = vload_half(gi, (__global const half *)mins);
#endif
            }
#endif
            for (uint v = 0; v < VEC; v++) {
                uint wv = w + v;
                if (wv >= words)
                    break;
#if QUANT != 4
                uint word[ROWS];
                for (int r = 0; r < ROWS; r++)
                    word[r] = qs[qoff[r] + wv];
#endif
                for (uint j = 0; j < EPW; j++) {
                    uint k = wv * EPW + j;
                    if (k >= K)
                        break;
                    /* dequantize each row's element once ... */
                    float wf[ROWS];
                    for (int r = 0; r < ROWS; r++) {
#if QUANT == 4
                        wf[r] = vload_half(2 * qoff[r] + k, (__global const half *)qs);
#elif QUANT == 3
                        wf[r] = (float)((char)((word[r] >> (8 * j)) & 0xFFu)) * sc[r];
#elif QUANT == 2
                        wf[r] = (float)((word[r] >> (4 * j)) & 0xFu) * sc[r] + mn[r];
#else
                        wf[r] = ((float)((word[r] >> (4 * j)) & 0xFu) - ZERO) * sc[r];
#endif
                    }
                    /* ... and use it for TN tokens (each x load for ROWS rows) */
                    for (int t = 0; t < TN; t++) {
                        float xv = x[xoff[t] + k];
#ifdef KILN_TEST_BREAK
                        if (k == 0)
                            xv = x[xoff[t] + 1];
#endif
                        for (int r = 0; r < ROWS; r++)
                            acc[r * TN + t] += wf[r] * xv;
                    }
                }
            }
        }
    /* two barriers, not log2(WG): thread (i, p) sums output i's partials
     * p, p + P, ... (P = WG / NACC threads per output, conflict-free reads)
     * into red[i * WG + p], which only it reads; then NACC threads add P each */
    for (int i = 0; i < NACC; i++)
        red[i * WG + tid] = acc[i];
    barrier(CLK_LOCAL_MEM_FENCE);
    {
        const uint P = WG / NACC;
        uint i = tid / P, p = tid % P;
        float a = 0.0f;
        for (uint j = 0; j < NACC; j++)
            a += red[i * WG + j * P + p];
        red[i * WG + p] = a;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (tid < NACC) {
        const uint P = WG / NACC;
        uint r = tid / TN, t = tid % TN;
        float a = 0.0f;
        for (uint p = 0; p < P; p++)
            a += red[tid * WG + p];
        if (row0 + r < M && tok0 + t < N)
            y[(size_t)(tok0 + t) * M + row0 + r] = a;
    }
}
