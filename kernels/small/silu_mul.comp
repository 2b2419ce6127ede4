/* kernels/small/silu_mul.comp - out = silu(gate) * up (see small.c). */
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif

layout(std430, binding = 0) readonly buffer G { float g[]; };
layout(std430, binding = 1) readonly buffer U { float u[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform PC { int n; } pc;

void main()
{
    const uint t = GRID2D_ID(WG);
    for (int j = 0; j < EPT; j++) {
        const uint i = t * uint(EPT) + uint(j);
        if (i >= uint(pc.n))
            return;
        const uint ui = (KILN_TEST_BREAK != 0 && i == 0u && pc.n > 1) ? 1u : i;
        const float x = g[i];
        o[i] = x / (1.0 + exp(-x)) * u[ui];
    }
}
