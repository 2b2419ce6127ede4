/* kernels/small/small.cl - embed_gather, silu_mul, residual_add, argmax for
 * OpenCL and CUDA (layouts and arguments: see small.c; names:
 * kernels/common/portable.h). One file holds several kernels; each build
 * defines only its own kernel's schedule parameters, so the others' get
 * harmless defaults. */
#ifndef EPT
#define EPT 1
#endif
#ifndef CHUNK
#define CHUNK 1024
#endif
#ifndef QUANT
#define QUANT 0
#endif
#ifndef GROUP
#define GROUP 32
#endif
#ifndef WG
#define WG 64
#endif
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif
#ifndef ILV
#define ILV 1 /* embed_gather: the table's row layout (kernels/quant_ilv.h) */
#endif
#include "dequant_elem.h"
#include "argmax.h"

/* one output element per thread */
KERNEL embed_gather(GLOBAL const uint *qs, GLOBAL const ushort *sc, GLOBAL const ushort *mn, GLOBAL const int *ids,
                    GLOBAL float *out, int n, int dim, int vocab, int wpr, int gpr, int quant, int group)
{
    const i64 t = GRID2D_ID(WG);
    if (t >= (i64)n * dim)
        return;
    const int tok = (int)(t / dim), c = (int)(t - (i64)tok * dim);
    int id = ids[tok];
    if (KILN_TEST_BREAK && tok == 0)
        id = id > 0 ? id - 1 : id + 1;
    float v = 0.0f;
    if (id >= 0 && id < vocab) {
        if (quant == 4)
            v = LOAD_HALF(qs, (i64)id * wpr * 2 + c);
        else
            /* a table tied to the LM head may be interleaved for its gemv:
             * word w of row id at (tile * wpr + w) * ILV + lane */
            v = dequant_elem_s(qs + (i64)(id / ILV) * wpr * ILV + id % ILV, ILV, sc, mn,
                               ((id / ILV) * gpr + c / group) * ILV + id % ILV, c, quant);
    }
    out[t] = v;
}

KERNEL silu_mul(GLOBAL const float *g, GLOBAL const float *u, GLOBAL float *o, int n)
{
    const i64 t = GRID2D_ID(WG);
    UNROLL_HINT
    for (int j = 0; j < EPT; j++) {
        const i64 i = t * EPT + j;
        if (i >= n)
            return;
        const i64 ui = (KILN_TEST_BREAK && i == 0 && n > 1) ? 1 : i;
        const float x = g[i];
        o[i] = x / (1.0f + EXP(-x)) * u[ui];
    }
}

KERNEL residual_add(GLOBAL float *x, GLOBAL const float *y, int n)
{
    const i64 t = GRID2D_ID(WG);
    UNROLL_HINT
    for (int j = 0; j < EPT; j++) {
        const i64 i = t * EPT + j;
        if (i >= n)
            return;
        const i64 yi = (KILN_TEST_BREAK && i == 0 && n > 1) ? 1 : i;
        x[i] = ADD_RN(x[i], y[yi]);
    }
}

/* tree reduction of WG (value, index) pairs in workgroup memory to [0] */
INLINE void am_reduce(LOCAL float *lv, LOCAL uint *li, int tid)
{
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (tid < s && BETTER(lv[tid + s], li[tid + s], lv[tid], li[tid])) {
            lv[tid] = lv[tid + s];
            li[tid] = li[tid + s];
        }
        BARRIER();
    }
}

KERNEL argmax_partial(GLOBAL const float *lg, GLOBAL uint *part, int n, int chunk)
{
    SHARED float lv[WG];
    SHARED uint li[WG];
    const int blk = GROUP_ID(0), tid = LOCAL_ID(0);
    const int b = blk * chunk, e = min(b + chunk, n);
    float bv = NEG_INF;
    uint bi = 0xFFFFFFFFu;
    for (int i = b + tid; i < e; i += WG)
        if (BETTER(lg[i], (uint)i, bv, bi)) {
            bv = lg[i];
            bi = (uint)i;
        }
    lv[tid] = bv;
    li[tid] = bi;
    BARRIER();
    am_reduce(lv, li, tid);
    if (tid == 0) {
        part[2 * blk] = AS_UINT(lv[0]);
        part[2 * blk + 1] = li[0];
    }
}

KERNEL argmax_final(GLOBAL const uint *part, GLOBAL uint *out, int nb)
{
    SHARED float lv[WG];
    SHARED uint li[WG];
    const int tid = LOCAL_ID(0);
    float bv = NEG_INF;
    uint bi = 0xFFFFFFFFu;
    for (int i = tid; i < nb; i += WG) {
        float v = AS_FLOAT(part[2 * i]);
        uint vi = part[2 * i + 1];
        if (BETTER(v, vi, bv, bi)) {
            bv = v;
            bi = vi;
        }
    }
    lv[tid] = bv;
    li[tid] = bi;
    BARRIER();
    am_reduce(lv, li, tid);
    if (tid == 0)
        out[0] = li[0] + KILN_TEST_BREAK;
}
