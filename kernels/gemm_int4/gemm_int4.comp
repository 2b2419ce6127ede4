/* kernels/gemm_int4/gemm_int4.comp - see gemm_int4.c for the schedule.
 * Defines: QUANT, GROUP, WG, ROWS, TN, VEC, UNROLL, REDUCE, ILV (the matrix's
 * row layout, kernels/quant_ilv.h: 1 row-major, 4/8/16 interleaved). */
#ifndef ILV
#define ILV 1
#endif
#include "quant.glsl"
#include "gemm_int4.glsl"
layout(std430, binding = 3) readonly buffer X4 { vec4 x4[]; }; /* the same x, 16-byte loads (K % 4 == 0) */
#define NACC (ROWS * TN)

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
        /* layout ILV: word w of the row at qoff + w * ILV, scale g at goff + g * ILV */
        qoff[r] = (row / ILV) * pc.wpr * ILV + row % ILV;
        goff[r] = (row / ILV) * pc.gpr * ILV + row % ILV;
    }
    float acc[NACC];
    [[unroll]] for (int i = 0; i < NACC; i++)
        acc[i] = 0.0;
    bool x4ok = (pc.K & 3u) == 0u;
    /* No loop exits below (bounds are guards), so every constant loop unrolls
     * and acc/word/wf stay in registers. */
    for (uint w0 = tid * VEC; w0 < words; w0 += step * UNROLL) {
        [[unroll]] for (uint u = 0; u < UNROLL; u++) {
            uint w = min(w0 + u * step, words - 1); /* clamped: a step past the row adds nothing (k >= K) */
            uint kb = (w0 + u * step) * EPW;
#if QUANT != 4
            /* a VEC never straddles a group: one scale (and min) per row */
            uint g = (w * EPW) / GROUP;
            float s[ROWS];
#if QUANT == 2
            float m[ROWS];
#endif
            [[unroll]] for (int r = 0; r < ROWS; r++) {
                s[r] = HALF(sc, goff[r] + g * ILV);
#if QUANT == 2
                m[r] = HALF(mn, goff[r] + g * ILV);
#endif
            }
#endif
            [[unroll]] for (uint v = 0; v < VEC; v++) {
                uint word[ROWS];
                [[unroll]] for (int r = 0; r < ROWS; r++)
                    word[r] = qs[qoff[r] + min(w + v, words - 1) * ILV];
#if QUANT != 4
                /* whole word inside the row and K % 4 == 0: x in 16-byte loads */
                if (x4ok && kb + (v + 1) * EPW <= pc.K) {
                    [[unroll]] for (uint j4 = 0; j4 < EPW; j4 += 4) {
                        uint k = kb + v * EPW + j4;
                        vec4 wf4[ROWS];
                        [[unroll]] for (int r = 0; r < ROWS; r++)
#if QUANT == 2
                            wf4[r] = vec4(deq(word[r], j4, s[r], m[r]), deq(word[r], j4 + 1, s[r], m[r]),
                                          deq(word[r], j4 + 2, s[r], m[r]), deq(word[r], j4 + 3, s[r], m[r]));
#else
                            wf4[r] = vec4(deq(word[r], j4, s[r], 0.0), deq(word[r], j4 + 1, s[r], 0.0),
                                          deq(word[r], j4 + 2, s[r], 0.0), deq(word[r], j4 + 3, s[r], 0.0));
#endif
                        [[unroll]] for (int t = 0; t < TN; t++) {
                            vec4 xv = x4[(xoff[t] + k) >> 2];
#ifdef KILN_TEST_BREAK
                            if (k == 0u)
                                xv.x = x[xoff[t] + 1];
#endif
                            [[unroll]] for (int r = 0; r < ROWS; r++)
                                acc[r * TN + t] += dot(wf4[r], xv);
                        }
                    }
                } else
#endif
                {
                [[unroll]] for (uint j = 0; j < EPW; j++) {
                    uint k = kb + v * EPW + j;
                    if (k < pc.K) {
                        /* dequantize each row's element once ... */
                        float wf[ROWS];
                        [[unroll]] for (int r = 0; r < ROWS; r++) {
#if QUANT == 4
                            wf[r] = deq(word[r], j, 1.0, 0.0);
#elif QUANT == 2
                            wf[r] = deq(word[r], j, s[r], m[r]);
#else
                            wf[r] = deq(word[r], j, s[r], 0.0);
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
    /* two barriers, not log2(WG): thread (i, p) sums output i's partials
     * p, p + P, ... (P = WG / NACC threads per output, conflict-free reads)
     * into red[i * WG + p], which only it reads; then NACC threads add P each */
    [[unroll]] for (int i = 0; i < NACC; i++)
        red[i * WG + tid] = acc[i];
    barrier();
    {
        const uint P = WG / NACC;
        uint i = tid / P, p = tid % P;
        float a = 0.0;
        [[unroll]] for (uint j = 0; j < NACC; j++)
            a += red[i * WG + j * P + p];
        red[i * WG + p] = a;
    }
    barrier();
    if (tid < NACC) {
        const uint P = WG / NACC;
        uint r = tid / TN, t = tid % TN;
        float a = 0.0;
        for (uint p = 0; p < P; p++)
            a += red[tid * WG + p];
        if (row0 + r < pc.M && tok0 + t < pc.N)
            y[(tok0 + t) * pc.M + row0 + r] = a;
    }
#endif
}
