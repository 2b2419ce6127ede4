/* kernels/gemm_int4/gemm_int4_rows.cl - gemm_int4, layout 1: one work-item per
 * row and TN tokens, walking the whole of K; see gemm_int4_rows.comp.
 * Defines: QUANT, GROUP, WG, TN. */
#define EPW (QUANT <= 2 ? 8 : QUANT == 3 ? 4 : QUANT == 4 ? 2 : 1)
#define ZERO (QUANT == 0 ? 7.0f : QUANT == 1 ? 8.0f : 0.0f)

inline float deq(__global const uint *qrow, uint w, uint j, float s, float m)
{
#if QUANT == 4
    return vload_half(2 * w + j, (__global const half *)qrow);
#elif QUANT == 3
    return (float)((char)((qrow[w] >> (8 * j)) & 0xFFu)) * s;
#elif QUANT == 2
    return (float)((qrow[w] >> (4 * j)) & 0xFu) * s + m;
#else
    return ((float)((qrow[w] >> (4 * j)) & 0xFu) - ZERO) * s;
#endif
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
gemm_int4_rows(__global const uint *qs, __global const ushort *scales, __global const ushort *mins,
               __global const float *x, __global float *y, uint M, uint K, uint wpr, uint gpr, uint N)
{
    uint row = min((uint)get_global_id(0), M - 1);
    uint tok0 = get_group_id(1) * TN;
    __global const uint *q = qs + (size_t)row * wpr;
    __global const float *xt[TN]; /* clamped token rows: loads stay in bounds, stores are skipped */
    float acc[TN];
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
        float s = vload_half((size_t)row * gpr + g, (__global const half *)scales);
#if QUANT == 2
        float m = vload_half((size_t)row * gpr + g, (__global const half *)mins);
#else
        float m = 0.0f;
#endif
#endif
        uint jn = k0 + EPW <= K ? EPW : K - k0;
        for (uint j = 0; j < jn; j++) {
            float wv = deq(q, w, j, s, m);
            uint k = k0 + j;
#ifdef KILN_TEST_BREAK
            if (k == 0)
                k = 1;
#endif
            for (uint t = 0; t < TN; t++)
                acc[t] += wv * xt[t][k];
        }
    }
    if (get_global_id(0) < M)
        for (uint t = 0; t < TN; t++)
            if (tok0 + t < N)
                y[(size_t)(tok0 + t) * M + row] = acc[t];
}
