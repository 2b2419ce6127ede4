/* kernels/gemv_int4/gemv_int4.glsl - what the gemv_int4 shaders (both
 * layouts) share: the buffer slots and scalars of gemv_int4.c's plan, and x
 * read through xat (KILN_TEST_BREAK: x[1] for x[0]). */
layout(std430, binding = 0) readonly buffer Qs { uint qs[]; };
layout(std430, binding = 1) readonly buffer Scales { uint sc[]; };
layout(std430, binding = 2) readonly buffer Mins { uint mn[]; };
layout(std430, binding = 3) readonly buffer X { float x[]; };
layout(std430, binding = 4) writeonly buffer Y { float y[]; };
layout(push_constant) uniform PC { uint M; uint K; uint wpr; uint gpr; } pc;

float xat(uint k)
{
#ifdef KILN_TEST_BREAK
    if (k == 0u)
        return x[1];
#endif
    return x[k];
}
