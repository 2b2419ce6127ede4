/* kernels/gemm_int4/gemm_int4_rows.comp - gemm_int4, layout 1: one invocation
 * per row and TN tokens, walking the whole of K. Each weight is dequantized
 * once and used for the TN tokens; the x a subgroup reads at a step is the
 * same for all its invocations, and nothing is reduced across invocations:
 * the shape of work that drivers running invocations in CPU SIMD lanes
 * (lavapipe) execute well (see gemv_int4_rows.comp).
 * Defines: QUANT, GROUP, WG, TN. */
#define EPW (QUANT <= 2 ? 8 : QUANT == 3 ? 4 : QUANT == 4 ? 2 : 1)
#define ZERO (QUANT == 0 ? 7.0 : QUANT == 1 ? 8.0 : 0.0)

layout(std430, binding = 0) readonly buffer Qs { uint qs[]; };
layout(std430, binding = 1) readonly buffer Scales { uint sc[]; };
layout(std430, binding = 2) readonly buffer Mins { uint mn[]; };
layout(std430, binding = 3) readonly buffer X { float x[]; };
layout(std430, binding = 4) writeonly buffer Y { float y[]; };
layout(push_constant) uniform PC { uint M; uint K; uint wpr; uint gpr; uint N; } pc;

#define HALF(arr, i) unpackHalf2x16(arr[(i) >> 1])[(i) & 1u]

/* element j of a word, dequantized (s: scale, m: min; unused where the format has none) */
float deq(uint word, uint j, float s, float m)
{
#if QUANT == 4
    return unpackHalf2x16(word)[j];
#elif QUANT == 3
    return float(bitfieldExtract(int(word), int(8 * j), 8)) * s;
#elif QUANT == 2
    return float((word >> (4 * j)) & 0xFu) * s + m;
#else
    return (float((word >> (4 * j)) & 0xFu) - ZERO) * s;
#endif
}

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
