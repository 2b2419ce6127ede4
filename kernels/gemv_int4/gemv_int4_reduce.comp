/* kernels/gemv_int4/gemv_int4_reduce.comp - sums the SPLITK partial rows of
 * a split-K gemv_int4: y[row] = sum_i part[i][row]. */
layout(std430, binding = 0) readonly buffer Part { float part[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform PC { uint M; uint splitk; } pc;

void main()
{
    uint row = gl_GlobalInvocationID.x;
    if (row >= pc.M)
        return;
    float s = 0.0;
    for (uint i = 0; i < pc.splitk; i++)
        s += part[i * pc.M + row];
    y[row] = s;
}
