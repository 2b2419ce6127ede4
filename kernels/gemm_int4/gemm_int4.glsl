/* kernels/gemm_int4/gemm_int4.glsl - what the gemm_int4 shaders (both
 * layouts) share: the buffer slots and scalars of gemm_int4.c's plan. */
layout(std430, binding = 0) readonly buffer Qs { uint qs[]; };
layout(std430, binding = 1) readonly buffer Scales { uint sc[]; };
layout(std430, binding = 2) readonly buffer Mins { uint mn[]; };
layout(std430, binding = 3) readonly buffer X { float x[]; };
layout(std430, binding = 4) writeonly buffer Y { float y[]; };
layout(push_constant) uniform PC { uint M; uint K; uint wpr; uint gpr; uint N; } pc;
