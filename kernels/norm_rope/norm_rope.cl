/* kernels/norm_rope/norm_rope.cl - rmsnorm and rope (layouts and arguments:
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
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif

#if VEC == 4
#define VT float4
#define VLOAD(i, p) vload4((i), (p))
#define VSTORE(v, i, p) vstore4((v), (i), (p))
#define SQ(a) dot((a), (a))
#elif VEC == 2
#define VT float2
#define VLOAD(i, p) vload2((i), (p))
#define VSTORE(v, i, p) vstore2((v), (i), (p))
#define SQ(a) dot((a), (a))
#else
#define VT float
#define VLOAD(i, p) ((p)[i])
#define VSTORE(v, i, p) ((p)[i] = (v))
#define SQ(a) ((a) * (a))
#endif

/* one workgroup per row; REDUCE is always 0 here (no subgroups in OpenCL 1.2) */
kernel void rmsnorm(global float *x, global const float *w, global float *y, global const float *r, int rows, int n,
                    int op, float eps)
{
    local float red[WG];
    const int row = get_group_id(0), tid = get_local_id(0);
    global float *xr = x + (long)row * n;
    global float *yr = y + (long)row * n;
    global const float *rr = r + (long)row * n;
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
    red[tid] = ss;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (tid < s)
            red[tid] += red[tid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float inv = 1.0f / sqrt(red[0] / (float)n + eps);
    for (int j = tid; j < nv; j += WG) {
        const int wj = (KILN_TEST_BREAK && j == 0) ? 1 : j;
        VSTORE(VLOAD(j, xr) * inv * VLOAD(wj, w), j, yr);
    }
}

/* thread t rotates pairs [t*PPT, t*PPT + PPT) of the flattened
 * [tokens][heads][n_rot/2] pair space */
kernel void rope(global float *x, global const int *pos, int tokens, int heads, int hd, int n_rot, int off, int op,
                 float base)
{
    const long t = (long)(get_group_id(1) * get_num_groups(0) + get_group_id(0)) * WG + get_local_id(0);
    const int hr = n_rot / 2;
    const long npairs = (long)tokens * heads * hr;
    const float lb = -2.0f * log2(base) / (float)n_rot;
    for (int u = 0; u < PPT; u++) {
        const long pi = t * PPT + u;
        if (pi >= npairs)
            return;
        const int i = (int)(pi % hr);
        const long th_ = pi / hr; /* token * heads + head */
        const int tok = (int)(th_ / heads);
        const int fi = (KILN_TEST_BREAK && i == 0) ? 1 : i;
        const float theta = (float)(pos[tok] + off) * exp2((float)fi * lb);
        const float c = cos(theta), s = sin(theta);
        global float *v = x + th_ * hd;
        const int a = op ? i : 2 * i, b = op ? i + hr : 2 * i + 1;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
    }
}
