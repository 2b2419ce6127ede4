/* kernels/gemm_int4/gemm_int4.comp - see gemm_int4.c for the schedule.
 * Defines: QUANT, GROUP, WG, ROWS, TN, VEC, UNROLL, REDUCE. */
#define EPW (QUANT <= 2 ? 8 : QUANT == 3 ? 4 : QUANT == 4 ? 2 : 1)
#define ZERO (QUANT == 0 ? 7.0 : QUANT == 1 ? 8.0 : 0.0)
#define NACC (ROWS * TN)

layout(std430, binding = 0) readonly buffer Qs { uint qs[]; };
layout(std430, binding = 1) readonly buffer Scales { uint sc[]; };
layout(std430, binding = 2) readonly buffer Mins { uint mn[]; };
layout(std430, binding = 3) readonly buffer X { float x[]; };
layout(std430, binding = 4) writeonly buffer Y { float y[]; };
layout(push_constant) uniform PC { uint M; uint K; uint wpr; uint gpr; uint N; } pc;

#define HALF(arr, i) unpackHalf2x16(arr[(i) >> 1])[(i) & 1u]

shared float red[NACC * WG];

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint row0 = gl_WorkGroupID.x * ROWS;
    uint tok0 = gl_WorkGroupID.y * TN;
    uint words = (pc.K + EPW - 1) / EPW;
    uint step = uint(WG * VEC);
    uint xoff[TN];
    [[unroll]] for (int t = 0; t < TN; t++)
        xoff[t] = min(tok0 + t, pc.N - 1) * pc.K; /* clamped: loads only, never written */
    uint qoff[ROWS], goff[ROWS];
    [[unroll]] for (int r = 0; r < ROWS; r++) {
        uint row = min(row0 + r, pc.M - 1);
        qoff[r] = row * pc.wpr;
        goff[r] = row * pc.gpr;
    }
    float acc[NACC];
    [[unroll]] for (int i = 0; i < NACC; i++)
        acc[i] = 0.0;
    for (uint w0 = tid * VEC; w0 < words; w0 += step * UNROLL) {
        [[unroll]] for (uint u = 0; u < UNROLL; u++) {
            uint w = w0 + u * step;
            if (w >= words)
                break;
#if QUANT != 4
            /* a VEC never straddles a group: one scale (and min) per row */
            uint g = (w * EPW) / GROUP;
            float s[ROWS];
#if QUANT == 2
            float m[ROWS];
#endif
            [[unroll]] for (int r = 0; r < ROWS; r++) {
                s[r] = HALF(sc, goff[r] + g);
#if QUANT == 2
                m[r] = HALF(mn, goff[r] + g);
#endif
            }
#endif
            [[unroll]] for (uint v = 0; v < VEC; v++) {
                uint wv = w + v;
                if (wv >= words)
                    break;
                uint word[ROWS];
                [[unroll]] for (int r = 0; r < ROWS; r++)
                    word[r] = qs[qoff[r] + wv];
                [[unroll]] for (uint j = 0; j < EPW; j++) {
                    uint k = wv * EPW + j;
                    if (k >= pc.K)
                        break;
                    /* dequantize each row's element once ... */
                    float wf[ROWS];
                    [[unroll]] for (int r = 0; r < ROWS; r++) {
#if QUANT == 4
                        wf[r] = unpackHalf2x16(word[r])[j];
#elif QUANT == 3
                        wf[r] = float(bitfieldExtract(int(word[r]), int(8 * j), 8)) * s[r];
#elif QUANT == 2
                        wf[r] = float((word[r] >> (4 * j)) & 0xFu) * s[r] + m[r];
#else
                        wf[r] = (float((word[r] >> (4 * j)) & 0xFu) - ZERO) * s[r];
#endif
                    }
                    /* ... and use it for TN tokens (each x load for ROWS rows) */
                    [[unroll]] for (int t = 0; t < TN; t++) {
                        float xv = x[xoff[t] + k];
#ifdef KILN_TEST_BREAK
                        if (k == 0u)
                            xv = x[xoff[t] + 1];
#endif
                        [[unroll]] for (int r = 0; r < ROWS; r++)
                            acc[r * TN + t] += wf[r] * xv;
                    }
                }
            }
        }
    }
#if REDUCE == 1
    /* subgroup sums, then one value per subgroup through shared memory */
    [[unroll]] for (int i = 0; i < NACC; i++) {
        float t = subgroupAdd(acc[i]);
        if (subgroupElect())
            red[i * WG + gl_SubgroupID] = t;
    }
    barrier();
    for (uint i = tid; i < NACC; i += WG) {
        uint r = i / TN, t = i % TN;
        if (row0 + r < pc.M && tok0 + t < pc.N) {
            float a = 0.0;
            for (uint sg = 0; sg < gl_NumSubgroups; sg++)
                a += red[i * WG + sg];
            y[(tok0 + t) * pc.M + row0 + r] = a;
        }
    }
#else
    [[unroll]] for (int i = 0; i < NACC; i++)
        red[i * WG + tid] = acc[i];
    barrier();
    for (uint off = WG / 2; off > 0; off >>= 1) {
        if (tid < off)
            [[unroll]] for (int i = 0; i < NACC; i++)
                red[i * WG + tid] += red[i * WG + tid + off];
        barrier();
    }
    for (uint i = tid; i < NACC; i += WG) {
        uint r = i / TN, t = i % TN;
        if (row0 + r < pc.M && tok0 + t < pc.N)
            y[(tok0 + t) * pc.M + row0 + r] = red[i * WG];
    }
#endif
}
