/* kernels/norm_rope/norm_rope.cu - rmsnorm and rope (layouts and arguments:
 * see norm_rope.c). */
/* One file holds several kernels; each build defines only its own kernel's
 * schedule parameters, so the others' get harmless defaults. */
#ifndef VEC
#define VEC 1
#endif
#ifndef PPT
#define PPT 1
#endif
#ifndef REDUCE
#define REDUCE 0
#endif
#ifndef WG
#define WG 64
#endif
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif

#if VEC == 4
typedef float4 vt;
__device__ __forceinline__ float sq(float4 a) { return a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w; }
__device__ __forceinline__ float4 vadd(float4 a, float4 b) { return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w); }
__device__ __forceinline__ float4 vscale(float4 a, float s, float4 w)
{
    return make_float4(a.x * s * w.x, a.y * s * w.y, a.z * s * w.z, a.w * s * w.w);
}
#elif VEC == 2
typedef float2 vt;
__device__ __forceinline__ float sq(float2 a) { return a.x * a.x + a.y * a.y; }
__device__ __forceinline__ float2 vadd(float2 a, float2 b) { return make_float2(a.x + b.x, a.y + b.y); }
__device__ __forceinline__ float2 vscale(float2 a, float s, float2 w) { return make_float2(a.x * s * w.x, a.y * s * w.y); }
#else
typedef float vt;
__device__ __forceinline__ float sq(float a) { return a * a; }
__device__ __forceinline__ float vadd(float a, float b) { return a + b; }
__device__ __forceinline__ float vscale(float a, float s, float w) { return a * s * w; }
#endif

/* one block per row; REDUCE 1: warp shuffles, then one value per warp */
extern "C" __global__ void rmsnorm(float *x, const float *w, float *y, const float *r, int rows, int n, int op,
                                   float eps)
{
    __shared__ float red[WG];
    const int row = blockIdx.x, tid = threadIdx.x;
    vt *xr = (vt *)(x + (long long)row * n);
    vt *yr = (vt *)(y + (long long)row * n);
    const vt *rr = (const vt *)(r + (long long)row * n);
    const vt *wv = (const vt *)w;
    const int nv = n / VEC;
    float ss = 0.0f;
    for (int j = tid; j < nv; j += WG) {
        vt a = xr[j];
        if (op) {
            a = vadd(a, rr[j]);
            xr[j] = a;
        }
        ss += sq(a);
    }
#if REDUCE == 1
    for (int o = 16; o > 0; o >>= 1)
        ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((tid & 31) == 0)
        red[tid >> 5] = ss;
    __syncthreads();
    if (tid < 32) {
        float v = tid < WG / 32 ? red[tid] : 0.0f;
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_xor_sync(0xffffffffu, v, o);
        if (tid == 0)
            red[0] = v;
    }
    __syncthreads();
#else
    red[tid] = ss;
    __syncthreads();
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (tid < s)
            red[tid] += red[tid + s];
        __syncthreads();
    }
#endif
    const float inv = 1.0f / sqrtf(red[0] / (float)n + eps);
    for (int j = tid; j < nv; j += WG) {
        const int wj = (KILN_TEST_BREAK && j == 0) ? 1 : j;
        yr[j] = vscale(xr[j], inv, wv[wj]);
    }
}

extern "C" __global__ void rope(float *x, const int *pos, int tokens, int heads, int hd, int n_rot, int off, int op,
                                float base)
{
    const long long t = ((long long)blockIdx.y * gridDim.x + blockIdx.x) * WG + threadIdx.x;
    const int half = n_rot / 2;
    const long long npairs = (long long)tokens * heads * half;
    const float lb = -2.0f * log2f(base) / (float)n_rot;
#pragma unroll
    for (int u = 0; u < PPT; u++) {
        const long long pi = t * PPT + u;
        if (pi >= npairs)
            return;
        const int i = (int)(pi % half);
        const long long th_ = pi / half;
        const int tok = (int)(th_ / heads);
        const int fi = (KILN_TEST_BREAK && i == 0) ? 1 : i;
        const float theta = (float)(pos[tok] + off) * exp2f((float)fi * lb);
        float s, c;
        sincosf(theta, &s, &c);
        float *v = x + th_ * hd;
        const int a = op ? i : 2 * i, b = op ? i + half : 2 * i + 1;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
    }
}
