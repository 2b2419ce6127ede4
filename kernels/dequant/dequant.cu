/* kernels/dequant/dequant.cu - dequant (layout and arguments: see dequant.c).
 * Thread t owns output elements [t*EPT, t*EPT + EPT) of the flattened output,
 * stored VEC at a time (scalar in the last, partial chunk). f16 output rounds
 * to nearest even (cvt.rn). __fmul_rn/__fadd_rn keep the compiler from
 * contracting differently (it would not change the exact result anyway). */
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif

__device__ __forceinline__ float dq_elem(const uint32_t *qs, const uint16_t *sc, const uint16_t *mn, int r, int c,
                                         int rows, int wpr, int gpr, int quant, int group)
{
    int si = r * gpr + c / group;
    if (KILN_TEST_BREAK && c < group && si + 1 < rows * gpr)
        si++;
    float d = kiln_half_to_float(sc[si]);
    if (quant == 3) {
        uint32_t w = qs[(long long)r * wpr + (c >> 2)];
        return __fmul_rn((float)((int)(w << (24 - 8 * (c & 3))) >> 24), d);
    }
    uint32_t w = qs[(long long)r * wpr + (c >> 3)];
    int q = (int)((w >> (4 * (c & 7))) & 15u);
    if (quant == 2)
        return __fadd_rn(__fmul_rn((float)q, d), kiln_half_to_float(mn[si]));
    return __fmul_rn((float)(q - (quant == 0 ? 7 : 8)), d);
}

extern "C" __global__ void dequant(const uint32_t *qs, const uint16_t *sc, const uint16_t *mn, uint32_t *out,
                                   int rows, int cols, int wpr, int gpr, int quant, int group, int op)
{
    const long long t = ((long long)blockIdx.y * gridDim.x + blockIdx.x) * WG + threadIdx.x;
    const long long total = (long long)rows * cols;
    const long long e0 = t * EPT;
    if (e0 >= total)
        return;
    int r = (int)(e0 / cols), c = (int)(e0 - (long long)r * cols);
    const bool full = e0 + EPT <= total;
    float *of = (float *)out;
    uint16_t *oh = (uint16_t *)out;
#pragma unroll
    for (int j = 0; j < EPT; j += VEC) {
        float v[VEC];
#pragma unroll
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
        const long long e = e0 + j;
        if (full && VEC == 4) {
            if (op)
                *(uint2 *)(oh + e) = make_uint2(kiln_float_to_half(v[0]) | (uint32_t)kiln_float_to_half(v[1 % VEC]) << 16,
                                                kiln_float_to_half(v[2 % VEC]) | (uint32_t)kiln_float_to_half(v[3 % VEC]) << 16);
            else
                *(float4 *)(of + e) = make_float4(v[0], v[1 % VEC], v[2 % VEC], v[3 % VEC]);
        } else if (full && VEC == 2) {
            if (op)
                *(uint32_t *)(oh + e) = kiln_float_to_half(v[0]) | (uint32_t)kiln_float_to_half(v[1 % VEC]) << 16;
            else
                *(float2 *)(of + e) = make_float2(v[0], v[1 % VEC]);
        } else {
#pragma unroll
            for (int u = 0; u < VEC; u++)
                if (e + u < total) {
                    if (op)
                        oh[e + u] = kiln_float_to_half(v[u]);
                    else
                        of[e + u] = v[u];
                }
        }
    }
}
