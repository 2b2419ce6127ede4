#version 450
/* devices/read_bw.comp - the read-bandwidth probe (devices/read_bandwidth.c),
 * the same reduction as read_bw.cl: every 32-bit word of src summed
 * (mod 2^32) from 16-byte loads, one sum per workgroup; n: 16-byte vectors.
 * CONTIG 0: consecutive invocations on consecutive vectors, grid-strided;
 * CONTIG 1: each workgroup a contiguous block, split into runs, one per LANES
 * consecutive invocations, which read it interleaved. */
layout(local_size_x = LOCAL_X, local_size_y = 1, local_size_z = 1) in;
layout(std430, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, binding = 1) writeonly buffer Out { uint outv[]; };
layout(push_constant) uniform PC { uint n; } pc;
shared uint part[LOCAL_X];

void main()
{
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupID.x, groups = gl_NumWorkGroups.x;
    uint acc = 0u;
#if CONTIG
    const uint runs = uint(LOCAL_X / LANES), sub = lid / uint(LANES), lane = lid % uint(LANES);
    const uint blk = (pc.n + groups - 1u) / groups, per = (blk + runs - 1u) / runs;
    const uint lo = wg * blk + sub * per;
    const uint hi = min(min(lo + per, (wg + 1u) * blk), pc.n);
    for (uint v = lo + lane; v < hi; v += uint(LANES)) {
        const uvec4 x = src[v];
        acc += x.x + x.y + x.z + x.w;
    }
#else
    for (uint v = wg * uint(LOCAL_X) + lid; v < pc.n; v += groups * uint(LOCAL_X)) {
        const uvec4 x = src[v];
        acc += x.x + x.y + x.z + x.w;
    }
#endif
    part[lid] = acc;
    barrier();
    for (uint s = uint(LOCAL_X) / 2u; s > 0u; s >>= 1) {
        if (lid < s)
            part[lid] += part[lid + s];
        barrier();
    }
    if (lid == 0u)
        outv[wg] = part[0];
}
