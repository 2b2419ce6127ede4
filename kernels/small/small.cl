/* kernels/small/small.cl - embed_gather, silu_mul, residual_add, argmax
 * (layouts and arguments: see small.c). */
/* One file holds several kernels; each build defines only its own kernel's
 * schedule parameters, so the others' get harmless defaults. */
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
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif

#define GLOBAL_THREAD() ((long)(get_group_id(1) * get_num_groups(0) + get_group_id(0)) * WG + get_local_id(0))

/* one output element per thread */
kernel void embed_gather(global const uint *qs, global const ushort *sc, global const ushort *mn, global const int *ids,
                         global float *out, int n, int dim, int vocab, int wpr, int gpr, int quant, int group)
{
    const long t = GLOBAL_THREAD();
    if (t >= (long)n * dim)
        return;
    const int tok = (int)(t / dim), c = (int)(t - (long)tok * dim);
    int id = ids[tok];
    if (KILN_TEST_BREAK && tok == 0)
        id = id > 0 ? id - 1 : id + 1;
    float v = 0.0f;
    if (id >= 0 && id < vocab) {
        if (quant == 4) {
            v = vload_half((long)id * wpr * 2 + c, (global const half *)qs);
        } else {
            const int si = id * gpr + c / group;
            const float d = vload_half(si, (global const half *)sc);
            if (quant == 3) {
                uint w = qs[(long)id * wpr + (c >> 2)];
                v = (float)((int)(w << (24 - 8 * (c & 3))) >> 24) * d;
            } else {
                uint w = qs[(long)id * wpr + (c >> 3)];
                int q = (int)((w >> (4 * (c & 7))) & 15u);
                if (quant == 2) {
                    float p = (float)q * d;
                    v = p + vload_half(si, (global const half *)mn);
                } else {
                    v = (float)(q - (quant == 0 ? 7 : 8)) * d;
                }
            }
        }
    }
    out[t] = v;
}

kernel void silu_mul(global const float *g, global const float *u, global float *o, int n)
{
    const long t = GLOBAL_THREAD();
    for (int j = 0; j < EPT; j++) {
        const long i = t * EPT + j;
        if (i >= n)
            return;
        const long ui = (KILN_TEST_BREAK && i == 0 && n > 1) ? 1 : i;
        const float x = g[i];
        o[i] = x / (1.0f + exp(-x)) * u[ui];
    }
}

kernel void residual_add(global float *x, global const float *y, int n)
{
    const long t = GLOBAL_THREAD();
    for (int j = 0; j < EPT; j++) {
        const long i = t * EPT + j;
        if (i >= n)
            return;
        const long yi = (KILN_TEST_BREAK && i == 0 && n > 1) ? 1 : i;
        x[i] = x[i] + y[yi];
    }
}

/* (v, i) beats (bv, bi): larger, or equal and at a lower index */
#define BETTER(v, i, bv, bi) ((v) > (bv) || ((v) == (bv) && (i) < (bi)))

inline void am_reduce(local float *lv, local uint *li, int tid)
{
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (tid < s && BETTER(lv[tid + s], li[tid + s], lv[tid], li[tid])) {
            lv[tid] = lv[tid + s];
            li[tid] = li[tid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

kernel void argmax_partial(global const float *lg, global uint *part, int n, int chunk)
{
    local float lv[WG];
    local uint li[WG];
    const int blk = get_group_id(0), tid = get_local_id(0);
    const int b = blk * chunk, e = min(b + chunk, n);
    float bv = -INFINITY;
    uint bi = 0xFFFFFFFFu;
    for (int i = b + tid; i < e; i += WG)
        if (BETTER(lg[i], (uint)i, bv, bi)) {
            bv = lg[i];
            bi = (uint)i;
        }
    lv[tid] = bv;
    li[tid] = bi;
    barrier(CLK_LOCAL_MEM_FENCE);
    am_reduce(lv, li, tid);
    if (tid == 0) {
        part[2 * blk] = as_uint(lv[0]);
        part[2 * blk + 1] = li[0];
    }
}

kernel void argmax_final(global const uint *part, global uint *out, int nb)
{
    local float lv[WG];
    local uint li[WG];
    const int tid = get_local_id(0);
    float bv = -INFINITY;
    uint bi = 0xFFFFFFFFu;
    for (int i = tid; i < nb; i += WG) {
        float v = as_float(part[2 * i]);
        uint vi = part[2 * i + 1];
        if (BETTER(v, vi, bv, bi)) {
            bv = v;
            bi = vi;
        }
    }
    lv[tid] = bv;
    li[tid] = bi;
    barrier(CLK_LOCAL_MEM_FENCE);
    am_reduce(lv, li, tid);
    if (tid == 0)
        out[0] = li[0] + KILN_TEST_BREAK;
}
