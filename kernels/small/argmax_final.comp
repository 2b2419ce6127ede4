/* kernels/small/argmax_final.comp - second step of argmax (see small.c): the
 * best (value, index) of the chunks, ties to the lowest index. */
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif

layout(std430, binding = 0) readonly buffer P { uint part[]; };
layout(std430, binding = 1) writeonly buffer O { uint o[]; };
layout(push_constant) uniform PC { int nb; } pc;

#include "argmax.glsl"

void main()
{
    const int tid = int(gl_LocalInvocationID.x);
    float bv = uintBitsToFloat(0xFF800000u);
    uint bi = 0xFFFFFFFFu;
    for (int i = tid; i < pc.nb; i += WG) {
        const float v = uintBitsToFloat(part[2 * i]);
        const uint vi = part[2 * i + 1];
        if (BETTER(v, vi, bv, bi)) {
            bv = v;
            bi = vi;
        }
    }
    lv[tid] = bv;
    li[tid] = bi;
    barrier();
    am_reduce(tid);
    if (tid == 0)
        o[0] = li[0] + uint(KILN_TEST_BREAK);
}
