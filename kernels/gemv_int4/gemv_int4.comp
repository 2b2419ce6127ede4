/* kernels/gemv_int4/gemv_int4.comp - see gemv_int4.c for the schedule.
 * Defines: QUANT, GROUP, WG, ROWS, VEC, UNROLL, SPLITK, REDUCE. */
#include "quant.glsl"
#include "gemv_int4.glsl"

shared float red[ROWS * WG];

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint row0 = gl_WorkGroupID.x * ROWS;
    uint split = gl_WorkGroupID.y;
    uint words = (pc.K + EPW - 1) / EPW;
    uint step = uint(WG * VEC);
    uint chunk = ((words + SPLITK - 1) / SPLITK + step - 1) / step * step;
    uint wb = split * chunk, we = min(words, wb + chunk);
    float acc[ROWS];
    [[unroll]] for (int r = 0; r < ROWS; r++)
        acc[r] = 0.0;
    for (uint w0 = wb + tid * VEC; w0 < we; w0 += step * UNROLL) {
        [[unroll]] for (uint u = 0; u < UNROLL; u++) {
            uint w = w0 + u * step;
            if (w >= we)
                break;
            [[unroll]] for (int r = 0; r < ROWS; r++) {
                uint row = min(row0 + r, pc.M - 1);
                uint base = row * pc.wpr;
#if QUANT == 4
                for (uint v = 0; v < VEC && w + v < we; v++) {
                    uint k0 = (w + v) * 2;
                    vec2 h = unpackHalf2x16(qs[base + w + v]);
                    acc[r] += h.x * xat(k0);
                    if (k0 + 1 < pc.K)
                        acc[r] += h.y * xat(k0 + 1);
                }
#else
                uint g = (w * EPW) / GROUP;
                float s = HALF(sc, row * pc.gpr + g);
                float d = 0.0, xs = 0.0;
                for (uint v = 0; v < VEC && w + v < we; v++) {
                    uint word = qs[base + w + v];
                    uint k0 = (w + v) * EPW;
                    [[unroll]] for (uint j = 0; j < EPW; j++) {
                        uint k = k0 + j;
                        if (k >= pc.K)
                            break;
                        float xv = xat(k);
                        d += code(word, j) * xv;
                        xs += xv;
                    }
                }
#if QUANT == 2
                acc[r] += s * d + HALF(mn, row * pc.gpr + g) * xs;
#else
                acc[r] += s * d;
#endif
#endif
            }
        }
    }
#if REDUCE == 1
    /* subgroup sums, then one value per subgroup through shared memory */
    [[unroll]] for (int r = 0; r < ROWS; r++) {
        float t = subgroupAdd(acc[r]);
        if (subgroupElect())
            red[r * WG + gl_SubgroupID] = t;
    }
    barrier();
    if (tid < ROWS && row0 + tid < pc.M) {
        float t = 0.0;
        for (uint i = 0; i < gl_NumSubgroups; i++)
            t += red[tid * WG + i];
        y[split * pc.M + row0 + tid] = t;
    }
#else
    [[unroll]] for (int r = 0; r < ROWS; r++)
        red[r * WG + tid] = acc[r];
    barrier();
    for (uint off = WG / 2; off > 0; off >>= 1) {
        if (tid < off)
            [[unroll]] for (int r = 0; r < ROWS; r++)
                red[r * WG + tid] += red[r * WG + tid + off];
        barrier();
    }
    if (tid < ROWS && row0 + tid < pc.M)
        y[split * pc.M + row0 + tid] = red[tid * WG];
#endif
}
