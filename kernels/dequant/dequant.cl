/* kernels/dequant/dequant.cl - dequant (layout and arguments: see dequant.c).
 * Thread t of the flattened grid owns output elements [t*EPT, t*EPT + EPT) of
 * the rows x cols output, stored VEC at a time (scalar in the last, partial
 * chunk). f16 output: vstore_half_rte (round to nearest even). */
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif

inline float dq_elem(global const uint *qs, global const ushort *sc, global const ushort *mn, int r, int c, int rows,
                     int wpr, int gpr, int quant, int group)
{
    int si = r * gpr + c / group;
    if (KILN_TEST_BREAK && c < group && si + 1 < rows * gpr)
        si++;
    float d = vload_half(si, (global const half *)sc);
    if (quant == 3) {
        uint w = qs[r * wpr + (c >> 2)];
        return (float)((int)(w << (24 - 8 * (c & 3))) >> 24) * d;
    }
    uint w = qs[r * wpr + (c >> 3)];
    int q = (int)((w >> (4 * (c & 7))) & 15u);
    if (quant == 2) {
        float p = (float)q * d; /* exact */
        return p + vload_half(si, (global const half *)mn);
    }
    return (float)(q - (quant == 0 ? 7 : 8)) * d;
}

kernel void dequant(global const uint *qs, global const ushort *sc, global const ushort *mn, global uint *out,
                    int rows, int cols, int wpr, int gpr, int quant, int group, int op)
{
    const long t = (long)(get_group_id(1) * get_num_groups(0) + get_group_id(0)) * WG + get_local_id(0);
    const long total = (long)rows * cols;
    const long e0 = t * EPT;
    if (e0 >= total)
        return;
    int r = (int)(e0 / cols), c = (int)(e0 - (long)r * cols);
    const int full = e0 + EPT <= total;
    for (int j = 0; j < EPT; j += VEC) {
        float v[VEC];
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
        const long e = e0 + j;
        if (full && VEC == 4) {
            float4 x = (float4)(v[0], v[1 % VEC], v[2 % VEC], v[3 % VEC]);
            if (op)
                vstore_half4_rte(x, e / 4, (global half *)out);
            else
                vstore4(x, e / 4, (global float *)out);
        } else if (full && VEC == 2) {
            float2 x = (float2)(v[0], v[1 % VEC]);
            if (op)
                vstore_half2_rte(x, e / 2, (global half *)out);
            else
                vstore2(x, e / 2, (global float *)out);
        } else {
            for (int u = 0; u < VEC; u++)
                if (e + u < total) {
                    if (op)
                        vstore_half_rte(v[u], e + u, (global half *)out);
                    else
                        ((global float *)out)[e + u] = v[u];
                }
        }
    }
}
