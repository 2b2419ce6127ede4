/* kernels/small/small.cu - embed_gather, silu_mul, residual_add, argmax
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
#ifndef WG
#define WG 64
#endif
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif

#define GLOBAL_THREAD() (((long long)blockIdx.y * gridDim.x + blockIdx.x) * WG + threadIdx.x)

extern "C" __global__ void embed_gather(const uint32_t *qs, const uint16_t *sc, const uint16_t *mn, const int *ids,
                                        float *out, int n, int dim, int vocab, int wpr, int gpr, int quant, int group)
{
    const long long t = GLOBAL_THREAD();
    if (t >= (long long)n * dim)
        return;
    const int tok = (int)(t / dim), c = (int)(t - (long long)tok * dim);
    int id = ids[tok];
    if (KILN_TEST_BREAK && tok == 0)
        id = id > 0 ? id - 1 : id + 1;
    float v = 0.0f;
    if (id >= 0 && id < vocab) {
        if (quant == 4) {
            v = kiln_half_to_float(((const uint16_t *)qs)[(long long)id * wpr * 2 + c]);
        } else {
            const int si = id * gpr + c / group;
            const float d = kiln_half_to_float(sc[si]);
            if (quant == 3) {
                uint32_t w = qs[(long long)id * wpr + (c >> 2)];
                v = __fmul_rn((float)((int)(w << (24 - 8 * (c & 3))) >> 24), d);
            } else {
                uint32_t w = qs[(long long)id * wpr + (c >> 3)];
                int q = (int)((w >> (4 * (c & 7))) & 15u);
                if (quant == 2)
                    v = __fadd_rn(__fmul_rn((float)q, d), kiln_half_to_float(mn[si]));
                else
                    v = __fmul_rn((float)(q - (quant == 0 ? 7 : 8)), d);
            }
        }
    }
    out[t] = v;
}

extern "C" __global__ void silu_mul(const float *g, const float *u, float *o, int n)
{
    const long long t = GLOBAL_THREAD();
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        const long long i = t * EPT + j;
        if (i >= n)
            return;
        const long long ui = (KILN_TEST_BREAK && i == 0 && n > 1) ? 1 : i;
        const float x = g[i];
        o[i] = x / (1.0f + expf(-x)) * u[ui];
    }
}

extern "C" __global__ void residual_add(float *x, const float *y, int n)
{
    const long long t = GLOBAL_THREAD();
#pragma unroll
    for (int j = 0; j < EPT; j++) {
        const long long i = t * EPT + j;
        if (i >= n)
            return;
        const long long yi = (KILN_TEST_BREAK && i == 0 && n > 1) ? 1 : i;
        x[i] = __fadd_rn(x[i], y[yi]);
    }
}

#define BETTER(v, i, bv, bi) ((v) > (bv) || ((v) == (bv) && (i) < (bi)))

__device__ void am_reduce(float *lv, uint32_t *li, int tid)
{
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (tid < s && BETTER(lv[tid + s], li[tid + s], lv[tid], li[tid])) {
            lv[tid] = lv[tid + s];
            li[tid] = li[tid + s];
        }
        __syncthreads();
    }
}

extern "C" __global__ void argmax_partial(const float *lg, uint32_t *part, int n, int chunk)
{
    __shared__ float lv[WG];
    __shared__ uint32_t li[WG];
    const int blk = blockIdx.x, tid = threadIdx.x;
    const int b = blk * chunk, e = min(b + chunk, n);
    float bv = -__int_as_float(0x7f800000);
    uint32_t bi = 0xFFFFFFFFu;
    for (int i = b + tid; i < e; i += WG)
        if (BETTER(lg[i], (uint32_t)i, bv, bi)) {
            bv = lg[i];
            bi = (uint32_t)i;
        }
    lv[tid] = bv;
    li[tid] = bi;
    __syncthreads();
    am_reduce(lv, li, tid);
    if (tid == 0) {
        part[2 * blk] = __float_as_uint(lv[0]);
        part[2 * blk + 1] = li[0];
    }
}

extern "C" __global__ void argmax_final(const uint32_t *part, uint32_t *out, int nb)
{
    __shared__ float lv[WG];
    __shared__ uint32_t li[WG];
    const int tid = threadIdx.x;
    float bv = -__int_as_float(0x7f800000);
    uint32_t bi = 0xFFFFFFFFu;
    for (int i = tid; i < nb; i += WG) {
        float v = __uint_as_float(part[2 * i]);
        uint32_t vi = part[2 * i + 1];
        if (BETTER(v, vi, bv, bi)) {
            bv = v;
            bi = vi;
        }
    }
    lv[tid] = bv;
    li[tid] = bi;
    __syncthreads();
    am_reduce(lv, li, tid);
    if (tid == 0)
        out[0] = li[0] + KILN_TEST_BREAK;
}
