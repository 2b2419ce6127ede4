/* kernels/dequant/dequant.cl - dequant for OpenCL and CUDA (layout and
 * arguments: see dequant.c; portable names: kernels/common/portable.h).
 * Thread t of the flattened grid owns output elements [t*EPT, t*EPT + EPT) of
 * the rows x cols output, stored VEC at a time (scalar in the last, partial
 * chunk). f16 output rounds to nearest even. */
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif
#include "dequant_elem.h"

INLINE float dq_elem(GLOBAL const uint *qs, GLOBAL const ushort *sc, GLOBAL const ushort *mn, int r, int c, int rows,
                     int wpr, int gpr, int quant, int group)
{
    int si = r * gpr + c / group;
    if (KILN_TEST_BREAK && c < group && si + 1 < rows * gpr)
        si++;
    return dequant_elem(qs + (i64)r * wpr, sc, mn, si, c, quant);
}

KERNEL dequant(GLOBAL const uint *qs, GLOBAL const ushort *sc, GLOBAL const ushort *mn, GLOBAL uint *out, int rows,
               int cols, int wpr, int gpr, int quant, int group, int op)
{
    const i64 t = GRID2D_ID(WG);
    const i64 total = (i64)rows * cols;
    const i64 e0 = t * EPT;
    if (e0 >= total)
        return;
    int r = (int)(e0 / cols), c = (int)(e0 - (i64)r * cols);
    const int full = e0 + EPT <= total;
    GLOBAL float *of = (GLOBAL float *)out;
    UNROLL_HINT
    for (int j = 0; j < EPT; j += VEC) {
        float v[VEC];
        UNROLL_HINT
        for (int u = 0; u < VEC; u++) {
            v[u] = 0.0f;
            if (full || e0 + j + u < total) {
                v[u] = dq_elem(qs, sc, mn, r, c, rows, wpr, gpr, quant, group);
                if (++c == cols) {
                    c = 0;
                    r++;
                }
            }
        }
        const i64 e = e0 + j;
        if (VEC == 4 && full) {
            float4 x = FLOAT4(v[0], v[1 % VEC], v[2 % VEC], v[3 % VEC]);
            if (op)
                STORE_HALF4_RTE(x, e / 4, out);
            else
                STORE4(x, e / 4, of);
        } else if (VEC == 2 && full) {
            float2 x = FLOAT2(v[0], v[1 % VEC]);
            if (op)
                STORE_HALF2_RTE(x, e / 2, out);
            else
                STORE2(x, e / 2, of);
        } else {
            UNROLL_HINT
            for (int u = 0; u < VEC; u++)
                if (e + u < total) {
                    if (op)
                        STORE_HALF_RTE(v[u], e + u, out);
                    else
                        of[e + u] = v[u];
                }
        }
    }
}
