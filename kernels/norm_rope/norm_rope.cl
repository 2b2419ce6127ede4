/* kernels/norm_rope/norm_rope.cl - rmsnorm and rope for OpenCL and CUDA
 * (layouts and arguments: see norm_rope.c; names: kernels/common/portable.h).
 * One file holds several kernels; each build defines only its own kernel's
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
#define VT float4
#define VLOAD(i, p) LOAD4((i), (p))
#define VSTORE(v, i, p) STORE4((v), (i), (p))
#define SQ(a) DOT((a), (a))
#elif VEC == 2
#define VT float2
#define VLOAD(i, p) LOAD2((i), (p))
#define VSTORE(v, i, p) STORE2((v), (i), (p))
#define SQ(a) DOT((a), (a))
#else
#define VT float
#define VLOAD(i, p) ((p)[i])
#define VSTORE(v, i, p) ((p)[i] = (v))
#define SQ(a) ((a) * (a))
#endif

/* one workgroup per row; REDUCE 1: subgroup sums, then one value per subgroup */
KERNEL rmsnorm(GLOBAL float *x, GLOBAL const float *w, GLOBAL float *y, GLOBAL const float *r, int rows, int n, int op,
               float eps)
{
    SHARED float red[WG];
    const int row = GROUP_ID(0), tid = LOCAL_ID(0);
    GLOBAL float *xr = x + (i64)row * n;
    GLOBAL float *yr = y + (i64)row * n;
    GLOBAL const float *rr = r + (i64)row * n;
    const int nv = n / VEC;
    float ss = 0.0f;
    for (int j = tid; j < nv; j += WG) {
        VT a = VLOAD(j, xr);
        if (op) {
            a += VLOAD(j, rr);
            VSTORE(a, j, xr);
        }
        ss += SQ(a);
    }
#if REDUCE == 1
    ss = SG_SUM(ss);
    if ((tid & (SG_SIZE - 1)) == 0)
        red[(uint)tid / SG_SIZE] = ss;
    BARRIER();
    if (tid < SG_SIZE) {
        float v = tid < WG / SG_SIZE ? red[tid] : 0.0f;
        v = SG_SUM(v);
        if (tid == 0)
            red[0] = v;
    }
    BARRIER();
#else
    red[tid] = ss;
    BARRIER();
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (tid < s)
            red[tid] += red[tid + s];
        BARRIER();
    }
#endif
    const float inv = 1.0f / SQRT(red[0] / (float)n + eps);
    for (int j = tid; j < nv; j += WG) {
        const int wj = (KILN_TEST_BREAK && j == 0) ? 1 : j;
        VSTORE(VLOAD(j, xr) * inv * VLOAD(wj, w), j, yr);
    }
}

/* thread t rotates pairs [t*PPT, t*PPT + PPT) of the flattened
 * [tokens][heads][n_rot/2] pair space */
KERNEL rope(GLOBAL float *x, GLOBAL const int *pos, GLOBAL const float *inv_freq, int tokens, int heads, int hd,
            int n_rot, int off, int op)
{
    const i64 t = GRID2D_ID(WG);
    const int hr = n_rot / 2;
    const i64 npairs = (i64)tokens * heads * hr;
    UNROLL_HINT
    for (int u = 0; u < PPT; u++) {
        const i64 pi = t * PPT + u;
        if (pi >= npairs)
            return;
        const int i = (int)(pi % hr);
        const i64 th_ = pi / hr; /* token * heads + head */
        const int tok = (int)(th_ / heads);
        const int fi = (KILN_TEST_BREAK && i == 0) ? 1 : i;
        const float theta = (float)(pos[tok] + off) * inv_freq[fi];
        float s, c;
        SINCOS(theta, s, c);
        GLOBAL float *v = x + th_ * hd;
        const int a = op ? i : 2 * i, b = op ? i + hr : 2 * i + 1;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
    }
}
