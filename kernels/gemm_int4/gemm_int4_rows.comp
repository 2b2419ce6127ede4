/* kernels/gemm_int4/gemm_int4_rows.comp - gemm_int4, layout 1: one invocation
 * per row and TN tokens, walking the whole of K. Each weight is dequantized
 * once and used for the TN tokens; the x a subgroup reads at a step is the
 * same for all its invocations, and nothing is reduced across invocations:
 * the shape of work that drivers running invocations in CPU SIMD lanes
 * (lavapipe) execute well (see gemv_int4_rows.comp).
 * Defines: QUANT, GROUP, WG, TN. */
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
    uint base = row * pc.wpr;
    uint tok[TN]; /* clamped token rows: loads stay in bounds, stores are skipped */
    [[unroll]] for (uint t = 0u; t < TN; t++)
        tok[t] = min(tok0 + t, pc.N - 1u);
    float acc[TN];
    [[unroll]] for (uint t = 0u; t < TN; t++)
        acc[t] = 0.0;
    uint words = (pc.K + EPW - 1u) / EPW;
    for (uint w = 0u; w < words; w++) {
        uint word = qs[base + w];
        uint k0 = w * EPW;
#if QUANT == 4
        float s = 1.0, m = 0.0;
#else
        uint g = k0 / uint(GROUP);
        float s = HALF(sc, row * pc.gpr + g);
#if QUANT == 2
        float m = HALF(mn, row * pc.gpr + g);
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
