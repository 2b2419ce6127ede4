/* kernels/small/argmax_partial.comp - first step of argmax (see small.c): one
 * workgroup per chunk -> (value bits, index) in part. */
layout(std430, binding = 0) readonly buffer L { float lg[]; };
layout(std430, binding = 1) writeonly buffer P { uint part[]; };
layout(push_constant) uniform PC {
    int n;
    int chunk;
} pc;

#include "argmax.glsl"

void main()
{
    const int blk = int(gl_WorkGroupID.x), tid = int(gl_LocalInvocationID.x);
    const int b = blk * pc.chunk, e = min(b + pc.chunk, pc.n);
    float bv = uintBitsToFloat(0xFF800000u); /* -inf */
    uint bi = 0xFFFFFFFFu;
    for (int i = b + tid; i < e; i += WG) {
        const float v = lg[i];
        if (BETTER(v, uint(i), bv, bi)) {
            bv = v;
            bi = uint(i);
        }
    }
    lv[tid] = bv;
    li[tid] = bi;
    barrier();
    am_reduce(tid);
    if (tid == 0) {
        part[2 * blk] = floatBitsToUint(lv[0]);
        part[2 * blk + 1] = li[0];
    }
}
