/* kernels/gemv_int4/gemv_int4_rows.cl - gemv_int4, layout 1: one work-item
 * per row, walking the whole of K; see gemv_int4_rows.comp for why.
 * Defines: QUANT, GROUP, WG. */
#define EPW (QUANT <= 2 ? 8 : QUANT == 3 ? 4 : QUANT == 4 ? 2 : 1)
#define ZERO (QUANT == 0 ? 7.0f : QUANT == 1 ? 8.0f : 0.0f)

inline float xat(__global const float *x, uint k)
{
#ifdef KILN_TEST_BREAK
    if (k == 0)
        return x[1];
#endif
    return x[k];
}

#if QUANT != 4
inline float code(uint word, uint j)
{
#if QUANT <= 2
    return (float)((word >> (4 * j)) & 0xFu) - ZERO;
#else
    return (float)((char)((word >> (8 * j)) & 0xFFu));
#endif
}
#endif

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
    uint pairs = K / 2;
    for (uint w = 0; w < pairs; w++) {
        float2 h = vload_half2(w, (__global const half *)q);
        acc += h.x * xat(x, 2 * w) + h.y * x[2 * w + 1];
    }
    if (K & 1u)
        acc += vload_half(2 * pairs, (__global const half *)q) * x[K - 1];
#else
    const uint wpg = GROUP / EPW; /* words per group */
    uint full = K / GROUP;
    for (uint g = 0; g < full; g++) {
        float d = 0.0f, xs = 0.0f;
        for (uint i = 0; i < wpg; i++) {
            uint word = q[g * wpg + i];
            uint k0 = (g * wpg + i) * EPW;
            for (uint j = 0; j < EPW; j++) {
                float xv = xat(x, k0 + j);
                d += code(word, j) * xv;
                xs += xv;
            }
        }
        acc += vload_half((size_t)row * gpr + g, (__global const half *)scales) * d;
#if QUANT == 2
        acc += vload_half((size_t)row * gpr + g, (__global const half *)mins) * xs;
#endif
    }
    if (full * GROUP < K) { /* the partial last group */
        float d = 0.0f, xs = 0.0f;
        for (uint k = full * GROUP; k < K; k++) {
            float xv = xat(x, k);
            d += code(q[k / EPW], k % EPW) * xv;
            xs += xv;
        }
        acc += vload_half((size_t)row * gpr + full, (__global const half *)scales) * d;
#if QUANT == 2
        acc += vload_half((size_t)row * gpr + full, (__global const half *)mins) * xs;
#endif
    }
#endif
    y[row] = acc;
}
