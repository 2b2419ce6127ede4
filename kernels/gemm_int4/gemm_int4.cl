/* kernels/gemm_int4/gemm_int4.cl - gemm_int4 for OpenCL and CUDA: see
 * gemm_int4.c for the schedule, kernels/common/portable.h for the names.
 * Defines: QUANT (kiln_quant), GROUP, WG, ROWS, TN, VEC, UNROLL, REDUCE
 * (REDUCE 1 needs subgroups: not on OpenCL, config_valid rejects it there),
 * ILV: the matrix's row layout (kernels/quant_ilv.h; 1 row-major, 4/8/16
 * rows interleaved word by word, as gemv's winner had it repacked). */
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
#ifndef ILV
#define ILV 1
#endif
#include "quant.h"
#define NACC (ROWS * TN)

KERNEL_WG(WG)
gemm_int4(GLOBAL const uint *RESTRICT qs, GLOBAL const ushort *RESTRICT scales, GLOBAL const ushort *RESTRICT mins,
          GLOBAL const float *RESTRICT x, GLOBAL float *RESTRICT y, uint M, uint K, uint wpr, uint gpr, uint N)
{
    SHARED float red[NACC * WG];
    uint tid = LOCAL_ID(0);
    uint row0 = GROUP_ID(0) * ROWS;
    uint tok0 = GROUP_ID(1) * TN;
    uint words = (K + EPW - 1) / EPW;
    uint step = (uint)WG * VEC;
    size_t xoff[TN];
    UNROLL_HINT
    for (int t = 0; t < TN; t++)
        xoff[t] = (size_t)min(tok0 + t, N - 1) * K; /* clamped: loads only, never written */
    size_t qoff[ROWS], goff[ROWS];
    UNROLL_HINT
    for (int r = 0; r < ROWS; r++) {
        uint row = min(row0 + r, M - 1); /* clamped: loads only, never written */
        /* layout ILV: word w of the row at qoff + w * ILV, scale g at goff + g * ILV */
        qoff[r] = (size_t)(row / ILV) * wpr * ILV + row % ILV;
        goff[r] = (size_t)(row / ILV) * gpr * ILV + row % ILV;
    }
    float acc[NACC];
    UNROLL_HINT
    for (int i = 0; i < NACC; i++)
        acc[i] = 0.0f;
    /* UNROLL steps per trip; the constant inner loop is unrolled by the compiler */
    for (uint w0 = tid * VEC; w0 < words; w0 += step * UNROLL) {
        UNROLL_HINT
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
            UNROLL_HINT
            for (int r = 0; r < ROWS; r++) {
                sc[r] = LOAD_HALF(scales, goff[r] + (size_t)g * ILV);
#if QUANT == 2
                mn[r] = LOAD_HALF(mins, goff[r] + (size_t)g * ILV);
#endif
            }
#endif
            UNROLL_HINT
            for (uint v = 0; v < VEC; v++) {
                uint wv = w + v;
                if (wv >= words)
                    break;
                uint word[ROWS]; /* f16 on OpenCL: unused, HALF_OF_WORD reads memory */
                UNROLL_HINT
                for (int r = 0; r < ROWS; r++)
                    word[r] = qs[qoff[r] + (size_t)wv * ILV];
                UNROLL_HINT
                for (uint j = 0; j < EPW; j++) {
                    uint k = wv * EPW + j;
                    if (k >= K)
                        break;
                    /* dequantize each row's element once ... */
                    float wf[ROWS];
                    UNROLL_HINT
                    for (int r = 0; r < ROWS; r++) {
#if QUANT == 4
                        wf[r] = HALF_OF_WORD(qs + qoff[r], wv, word[r], j);
#elif QUANT == 3
                        wf[r] = (float)((signed char)((word[r] >> (8 * j)) & 0xFFu)) * sc[r];
#elif QUANT == 2
                        wf[r] = (float)((word[r] >> (4 * j)) & 0xFu) * sc[r] + mn[r];
#else
                        wf[r] = ((float)((word[r] >> (4 * j)) & 0xFu) - ZERO) * sc[r];
#endif
                    }
                    /* ... and use it for TN tokens (each x load for ROWS rows) */
                    UNROLL_HINT
                    for (int t = 0; t < TN; t++) {
                        float xv = x[xoff[t] + k];
#ifdef KILN_TEST_BREAK
                        if (k == 0)
                            xv = x[xoff[t] + 1];
#endif
                        UNROLL_HINT
                        for (int r = 0; r < ROWS; r++)
                            acc[r * TN + t] += wf[r] * xv;
                    }
                }
            }
        }
    }
#if REDUCE == 1
    /* subgroup sums, then one value per subgroup through shared memory */
    UNROLL_HINT
    for (int i = 0; i < NACC; i++) {
        float t = SG_SUM(acc[i]);
        if ((tid & (SG_SIZE - 1)) == 0)
            red[i * WG + tid / SG_SIZE] = t;
    }
    BARRIER();
    for (uint i = tid; i < NACC; i += WG) {
        uint r = i / TN, t = i % TN;
        if (row0 + r < M && tok0 + t < N) {
            float a = 0.0f;
            for (uint sg = 0; sg < WG / SG_SIZE; sg++)
                a += red[i * WG + sg];
            y[(size_t)(tok0 + t) * M + row0 + r] = a;
        }
    }
#else
    /* two barriers, not log2(WG): thread (i, p) sums output i's partials
     * p, p + P, ... (P = WG / NACC threads per output, conflict-free reads)
     * into red[i * WG + p], which only it reads; then NACC threads add P each */
    UNROLL_HINT
    for (int i = 0; i < NACC; i++)
        red[i * WG + tid] = acc[i];
    BARRIER();
    {
        const uint P = WG / NACC;
        uint i = tid / P, p = tid % P;
        float a = 0.0f;
        UNROLL_HINT
        for (uint j = 0; j < NACC; j++)
            a += red[i * WG + j * P + p];
        red[i * WG + p] = a;
    }
    BARRIER();
    if (tid < NACC) {
        const uint P = WG / NACC;
        uint r = tid / TN, t = tid % TN;
        float a = 0.0f;
        for (uint p = 0; p < P; p++)
            a += red[tid * WG + p];
        if (row0 + r < M && tok0 + t < N)
            y[(size_t)(tok0 + t) * M + row0 + r] = a;
    }
#endif
}
