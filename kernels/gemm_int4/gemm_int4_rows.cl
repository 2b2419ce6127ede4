/* kernels/gemm_int4/gemm_int4_rows.cl - gemm_int4, layout 1, for OpenCL and
 * CUDA: one work-item per row and TN tokens, walking the whole of K; see
 * gemm_int4_rows.comp. A warp's weight reads are a row apart here, so layout
 * 0 should win on NVIDIA GPUs; the tuner measures it rather than assuming.
 * Defines: QUANT, GROUP, WG, TN, ILV (the matrix's row layout, kernels/quant_ilv.h:
 * 1 row-major; 4/8/16 interleaved, never f16). Names: kernels/common/portable.h. */
#ifndef ILV
#define ILV 1
#endif
#include "quant.h"

/* element j of word q[w] (its value: word), dequantized with scale s and min m */
INLINE float deq(GLOBAL const uint *q, uint w, uint word, uint j, float s, float m)
{
#if QUANT == 4
    return HALF_OF_WORD(q, w, word, j);
#elif QUANT == 3
    return (float)((signed char)((word >> (8 * j)) & 0xFFu)) * s;
#elif QUANT == 2
    return (float)((word >> (4 * j)) & 0xFu) * s + m;
#else
    return ((float)((word >> (4 * j)) & 0xFu) - ZERO) * s;
#endif
}

KERNEL_WG(WG)
gemm_int4_rows(GLOBAL const uint *RESTRICT qs, GLOBAL const ushort *RESTRICT scales,
               GLOBAL const ushort *RESTRICT mins, GLOBAL const float *RESTRICT x, GLOBAL float *RESTRICT y, uint M,
               uint K, uint wpr, uint gpr, uint N)
{
    uint gid = GLOBAL_ID(0);
    uint row = min(gid, M - 1);
    uint tok0 = GROUP_ID(1) * TN;
    /* word w of the row at q[w * ILV], scale g at scales[s0 + g * ILV] */
    GLOBAL const uint *q = qs + (size_t)(row / ILV) * wpr * ILV + row % ILV;
    size_t s0 = (size_t)(row / ILV) * gpr * ILV + row % ILV;
    GLOBAL const float *xt[TN]; /* clamped token rows: loads stay in bounds, stores are skipped */
    float acc[TN];
    UNROLL_HINT
    for (uint t = 0; t < TN; t++) {
        xt[t] = x + (size_t)min(tok0 + t, N - 1) * K;
        acc[t] = 0.0f;
    }
    uint words = (K + EPW - 1) / EPW;
    for (uint w = 0; w < words; w++) {
        uint k0 = w * EPW;
#if QUANT == 4
        float s = 1.0f, m = 0.0f;
#else
        uint g = k0 / GROUP;
        float s = LOAD_HALF(scales, s0 + (size_t)g * ILV);
#if QUANT == 2
        float m = LOAD_HALF(mins, s0 + (size_t)g * ILV);
#else
        float m = 0.0f;
#endif
#endif
        uint jn = k0 + EPW <= K ? EPW : K - k0;
        for (uint j = 0; j < jn; j++) {
            float wv = deq(q, w, q[(size_t)w * ILV], j, s, m); /* f16 on OpenCL (ILV 1): deq reads memory */
            uint k = k0 + j;
#ifdef KILN_TEST_BREAK
            if (k == 0)
                k = 1;
#endif
            UNROLL_HINT
            for (uint t = 0; t < TN; t++)
                acc[t] += wv * xt[t][k];
        }
    }
    if (gid < M)
        UNROLL_HINT
        for (uint t = 0; t < TN; t++)
            if (tok0 + t < N)
                y[(size_t)(tok0 + t) * M + row] = acc[t];
}
