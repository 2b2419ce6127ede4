/* kernels/gemv_int4/gemv_int4_ilv.comp - gemv_int4, layout 3: the matrix
 * interleaved in tiles of ILV rows (kernels/quant_ilv.h: word w of row
 * tile*ILV + i at (tile*wpr + w)*ILV + i). A workgroup is ILV x WG/ILV
 * invocations (local x: the row within a tile, local y: the tile), so at
 * each word step the invocations of a tile read ILV consecutive words and
 * the same x. Zero point and min once per group (code() removes the zero
 * point; q4_1's min multiplies the sum of x). Never f16 (check).
 * Defines: QUANT, GROUP, WG, ILV. */
#include "quant.glsl"
#include "gemv_int4.glsl"

void main()
{
    uint lane = gl_LocalInvocationID.x;
    uint tile = gl_WorkGroupID.x * uint(WG / ILV) + gl_LocalInvocationID.y;
    if (tile * uint(ILV) >= pc.M)
        return;
    uint base = tile * pc.wpr * uint(ILV) + lane; /* word w at base + w * ILV */
    uint s0 = tile * pc.gpr * uint(ILV) + lane;   /* scale g at s0 + g * ILV */
    const uint wpg = uint(GROUP / EPW);
    uint full = pc.K / uint(GROUP);
    float acc = 0.0;
    for (uint g = 0u; g < full; g++) {
        float d = 0.0, xs = 0.0;
        [[unroll]] for (uint i = 0u; i < wpg; i++) {
            uint w = g * wpg + i;
            uint word = qs[base + w * uint(ILV)];
            [[unroll]] for (uint j = 0u; j < uint(EPW); j++) {
                float xv = xat(w * uint(EPW) + j);
                d += code(word, j) * xv;
                xs += xv;
            }
        }
        acc += HALF(sc, s0 + g * uint(ILV)) * d;
#if QUANT == 2
        acc += HALF(mn, s0 + g * uint(ILV)) * xs;
#endif
    }
    if (full * uint(GROUP) < pc.K) { /* the partial last group */
        float d = 0.0, xs = 0.0;
        for (uint k = full * uint(GROUP); k < pc.K; k++) {
            float xv = xat(k);
            d += code(qs[base + (k / uint(EPW)) * uint(ILV)], k % uint(EPW)) * xv;
            xs += xv;
        }
        acc += HALF(sc, s0 + full * uint(ILV)) * d;
#if QUANT == 2
        acc += HALF(mn, s0 + full * uint(ILV)) * xs;
#endif
    }
    uint row = tile * uint(ILV) + lane;
    if (row < pc.M)
        y[row] = acc;
}
