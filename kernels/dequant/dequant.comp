/* kernels/dequant/dequant.comp - dequant (layout and arguments: see dequant.c).
 * Thread t of the flattened grid owns output elements [t*EPT, t*EPT + EPT).
 * The output is a uint buffer (f32 bits, or two f16 per word: EPT is even and
 * config_valid rejects an odd element count for f16, so a thread owns whole
 * words). f32 output is stored VEC words at a time (uvec2/uvec4) in full
 * chunks. f16 rounding is done here in integer arithmetic (round to nearest
 * even, like util/f16.c), since packHalf2x16's rounding is not specified. */
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif

#include "dequant_elem.glsl"
#if VEC == 4
layout(std430, binding = 3) writeonly buffer OUT { uvec4 o[]; };
#define STW(w, val) o[(w) >> 2][int((w) & 3u)] = (val)
#elif VEC == 2
layout(std430, binding = 3) writeonly buffer OUT { uvec2 o[]; };
#define STW(w, val) o[(w) >> 1][int((w) & 1u)] = (val)
#else
layout(std430, binding = 3) writeonly buffer OUT { uint o[]; };
#define STW(w, val) o[w] = (val)
#endif
layout(push_constant) uniform PC {
    int rows;
    int cols;
    int wpr;
    int gpr;
    int quant;
    int group;
    int op;
} pc;

/* f32 -> f16 bits, round to nearest even; Inf/NaN kept, overflow -> Inf */
uint f32_to_f16(float f)
{
    uint x = floatBitsToUint(f);
    uint sign = (x >> 16) & 0x8000u;
    uint ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u)
        return sign | 0x7C00u | (ax > 0x7F800000u ? 0x200u : 0u);
    if (ax >= 0x477FF000u) /* rounds to >= 65520: Inf */
        return sign | 0x7C00u;
    if (ax < 0x38800000u) { /* f16 subnormal or zero */
        if (ax < 0x33000000u) /* < 2^-25: rounds to 0 */
            return sign;
        uint e = ax >> 23;
        uint m = (ax & 0x7FFFFFu) | 0x800000u;
        uint shift = 126u - e; /* 14..24 */
        uint q = m >> shift;
        uint rem = m & ((1u << shift) - 1u);
        uint half_ = 1u << (shift - 1u);
        if (rem > half_ || (rem == half_ && (q & 1u) != 0u))
            q++;
        return sign | q;
    }
    uint r = ax - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint q = r >> 13;
    uint rem = r & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u) != 0u))
        q++;
    return sign | q;
}

float dq_elem(int r, int c)
{
    int si = r * pc.gpr + c / pc.group;
    if (KILN_TEST_BREAK != 0 && c < pc.group && si + 1 < pc.rows * pc.gpr)
        si++;
    return dequant_elem(r * pc.wpr, uint(si), c, pc.quant);
}

void main()
{
    const uint t = GRID2D_ID(WG);
    const uint total = uint(pc.rows) * uint(pc.cols);
    const uint e0 = t * uint(EPT);
    if (e0 >= total)
        return;
    int r = int(e0 / uint(pc.cols)), c = int(e0 - uint(r) * uint(pc.cols));
    const bool full = e0 + uint(EPT) <= total;
    if (pc.op != 0) {
        for (uint j = 0u; j < uint(EPT); j += 2u) {
            if (e0 + j >= total)
                break;
            float a = dq_elem(r, c);
            if (++c == pc.cols) { c = 0; r++; }
            float b = 0.0;
            if (e0 + j + 1u < total) { /* always true: config_valid keeps the count even */
                b = dq_elem(r, c);
                if (++c == pc.cols) { c = 0; r++; }
            }
            STW((e0 + j) >> 1, f32_to_f16(a) | (f32_to_f16(b) << 16));
        }
        return;
    }
    for (uint j = 0u; j < uint(EPT); j += uint(VEC)) {
        uint v[4];
        for (int u = 0; u < VEC; u++) {
            v[u] = 0u;
            if (full || e0 + j + uint(u) < total) {
                v[u] = floatBitsToUint(dq_elem(r, c));
                if (++c == pc.cols) { c = 0; r++; }
            }
        }
        const uint e = e0 + j;
#if VEC == 4
        if (full) {
            o[e >> 2] = uvec4(v[0], v[1], v[2], v[3]);
            continue;
        }
#elif VEC == 2
        if (full) {
            o[e >> 1] = uvec2(v[0], v[1]);
            continue;
        }
#endif
        for (int u = 0; u < VEC; u++)
            if (e + uint(u) < total)
                STW(e + uint(u), v[u]);
    }
}
