/* kernels/gemm_int4/gemm_int4_rows.comp - gemm_int4, layout 1: one invocation
 * per row and TN tokens, walking the whole of K. Each weight is dequantized
 * once and used for the TN tokens; the x a subgroup reads at a step is the
 * same for all its invocations, and nothing is reduced across invocations:
 * the shape of work that drivers running invocations in CPU SIMD lanes
 * (lavapipe) execute well (see gemv_int4_rows.comp).
 * Defines: QUANT, GROUP, WG, TN, ILV (the matrix's row layout,
 * kernels/quant_ilv.h: 1 row-major, 4/8/16 interleaved, never f16). */
#ifndef ILV
#define ILV 1
#endif
#include "quant.glsl"
#include "gemm_int4.glsl"

float xat(uint t, uint k)
{
#ifdef KILN_TEST_BREAK
    if (k == 0u)
        k = 1u;
#endif
    return x[t * pc.K + k];
}

void main()
{
    uint row = min(gl_GlobalInvocationID.x, pc.M - 1u);
    uint tok0 = gl_WorkGroupID.y * TN;
    /* word w of the row at base + w * ILV, scale g at s0 + g * ILV */
    uint base = (row / ILV) * pc.wpr * ILV + row % ILV;
    uint s0 = (row / ILV) * pc.gpr * ILV + row % ILV;
    uint tok[TN]; /* clamped token rows: loads stay in bounds, stores are skipped */
    [[unroll]] for (uint t = 0u; t < TN; t++)
        tok[t] = min(tok0 + t, pc.N - 1u);
    float acc[TN];
    [[unroll]] for (uint t = 0u; t < TN; t++)
        acc[t] = 0.0;
    uint words = (pc.K + EPW - 1u) / EPW;
    for (uint w = 0u; w < words; w++) {
        uint word = qs[base + w * ILV];
        uint k0 = w * EPW;
#if QUANT == 4
        float s = 1.0, m = 0.0;
#else
        uint g = k0 / uint(GROUP);
        float s = HALF(sc, s0 + g * ILV);
#if QUANT == 2
        float m = HALF(mn, s0 + g * ILV);
#else
        float m = 0.0;
#endif
#endif
        if (k0 + EPW <= pc.K) {
            [[unroll]] for (uint j = 0u; j < EPW; j++) {
                float wv = deq(word, j, s, m);
                [[unroll]] for (uint t = 0u; t < TN; t++)
                    acc[t] += wv * xat(tok[t], k0 + j);
            }
        } else { /* the last word of a K that is not a multiple of EPW */
            for (uint j = 0u; k0 + j < pc.K; j++) {
                float wv = deq(word, j, s, m);
                [[unroll]] for (uint t = 0u; t < TN; t++)
                    acc[t] += wv * xat(tok[t], k0 + j);
            }
        }
    }
    if (gl_GlobalInvocationID.x < pc.M)
        [[unroll]] for (uint t = 0u; t < TN; t++)
            if (tok0 + t < pc.N)
                y[(tok0 + t) * pc.M + row] = acc[t];
}
