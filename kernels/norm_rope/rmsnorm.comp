/* kernels/norm_rope/rmsnorm.comp - rmsnorm (layout and arguments: see
 * norm_rope.c). One workgroup per row; REDUCE 1 sums with subgroupAdd and
 * combines one value per subgroup (any subgroup size). */
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif
#if VEC == 4
#define VT vec4
#define SQ(a) dot((a), (a))
#elif VEC == 2
#define VT vec2
#define SQ(a) dot((a), (a))
#else
#define VT float
#define SQ(a) ((a) * (a))
#endif

layout(std430, binding = 0) buffer X { VT x[]; };
layout(std430, binding = 1) readonly buffer W { VT w[]; };
layout(std430, binding = 2) buffer Y { VT y[]; };
layout(std430, binding = 3) readonly buffer R { VT r[]; };
layout(push_constant) uniform PC {
    int rows;
    int n;
    int op;
    float eps;
} pc;

shared float red[WG];

void main()
{
    const int row = int(gl_WorkGroupID.x), tid = int(gl_LocalInvocationID.x);
    const int nv = pc.n / VEC;
    const int base = row * nv;
    float ss = 0.0;
    for (int j = tid; j < nv; j += WG) {
        VT a = x[base + j];
        if (pc.op != 0) {
            a += r[base + j];
            x[base + j] = a;
        }
        ss += SQ(a);
    }
#if REDUCE == 1
    ss = subgroupAdd(ss);
    if (subgroupElect())
        red[gl_SubgroupID] = ss;
    barrier();
    if (tid == 0) {
        float t = 0.0;
        for (uint s = 0u; s < gl_NumSubgroups; s++)
            t += red[s];
        red[0] = t;
    }
    barrier();
#else
    red[tid] = ss;
    barrier();
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (tid < s)
            red[tid] += red[tid + s];
        barrier();
    }
#endif
    const float inv = 1.0 / sqrt(red[0] / float(pc.n) + pc.eps);
    for (int j = tid; j < nv; j += WG) {
        const int wj = (KILN_TEST_BREAK != 0 && j == 0) ? 1 : j;
        y[base + j] = x[base + j] * inv * w[wj];
    }
}
