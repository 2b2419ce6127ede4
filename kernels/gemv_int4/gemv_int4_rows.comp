/* kernels/gemv_int4/gemv_int4_rows.comp - gemv_int4, layout 1: one invocation
 * per row, walking the whole of K. Every invocation of a subgroup reads the
 * same x[k] at the same step, so drivers that run invocations in the SIMD
 * lanes of a CPU (lavapipe) load x once for all lanes instead of gathering
 * it, and no reduction across invocations is needed. GPUs want layout 0
 * (coalesced weight reads); the tuner decides per device.
 * Defines: QUANT, GROUP, WG. */
#include "quant.glsl"
#include "gemv_int4.glsl"

void main()
{
    uint row = gl_GlobalInvocationID.x;
    if (row >= pc.M)
        return;
    uint base = row * pc.wpr;
    float acc = 0.0;
#if QUANT == 4
    uint pairs = pc.K / 2u;
    for (uint w = 0u; w < pairs; w++) {
        vec2 h = unpackHalf2x16(qs[base + w]);
        acc += h.x * xat(2u * w) + h.y * x[2u * w + 1u];
    }
    if ((pc.K & 1u) != 0u)
        acc += unpackHalf2x16(qs[base + pairs]).x * x[pc.K - 1u];
#else
    const uint wpg = uint(GROUP / EPW); /* words per group */
    uint full = pc.K / uint(GROUP);
    for (uint g = 0u; g < full; g++) {
        float d = 0.0, xs = 0.0;
        for (uint i = 0u; i < wpg; i++) {
            uint word = qs[base + g * wpg + i];
            uint k0 = (g * wpg + i) * uint(EPW);
            [[unroll]] for (uint j = 0u; j < uint(EPW); j++) {
                float xv = xat(k0 + j);
                d += code(word, j) * xv;
                xs += xv;
            }
        }
        acc += HALF(sc, row * pc.gpr + g) * d;
#if QUANT == 2
        acc += HALF(mn, row * pc.gpr + g) * xs;
#endif
    }
    if (full * uint(GROUP) < pc.K) { /* the partial last group */
        float d = 0.0, xs = 0.0;
        for (uint k = full * uint(GROUP); k < pc.K; k++) {
            float xv = xat(k);
            d += code(qs[base + k / uint(EPW)], k % uint(EPW)) * xv;
            xs += xv;
        }
        acc += HALF(sc, row * pc.gpr + full) * d;
#if QUANT == 2
        acc += HALF(mn, row * pc.gpr + full) * xs;
#endif
    }
#endif
    y[row] = acc;
}
