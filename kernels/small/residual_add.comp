/* kernels/small/residual_add.comp - x += y (see small.c). */
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif

layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Y { float y[]; };
layout(push_constant) uniform PC { int n; } pc;

void main()
{
    const uint t = GRID2D_ID(WG);
    for (int j = 0; j < EPT; j++) {
        const uint i = t * uint(EPT) + uint(j);
        if (i >= uint(pc.n))
            return;
        const uint yi = (KILN_TEST_BREAK != 0 && i == 0u && pc.n > 1) ? 1u : i;
        precise float s = x[i] + y[yi];
        x[i] = s;
    }
}
