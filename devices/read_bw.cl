/* devices/read_bw.cl - the read-bandwidth probe (devices/read_bandwidth.c):
 * every 32-bit word of src summed (mod 2^32) from 16-byte loads, one sum per
 * workgroup in out. n: 16-byte vectors in src. CONTIG 0: consecutive
 * work-items read consecutive vectors, the grid striding over the buffer (what
 * GPUs coalesce); CONTIG 1: each workgroup a contiguous block, split into
 * runs, one per LANES consecutive work-items, which read it interleaved
 * (LANES 1: a run per work-item, what PoCL streams; the SIMD width: what
 * lavapipe streams). LOCAL_X and LANES: powers of two, LANES <= LOCAL_X. */
__kernel __attribute__((reqd_work_group_size(LOCAL_X, 1, 1)))
void read_sum(__global const uint4 *src, __global uint *out, uint n)
{
    __local uint part[LOCAL_X];
    const uint lid = get_local_id(0), wg = get_group_id(0), groups = get_num_groups(0);
    uint acc = 0;
#if CONTIG
    const uint runs = LOCAL_X / LANES, sub = lid / LANES, lane = lid % LANES;
    const uint blk = (n + groups - 1) / groups, per = (blk + runs - 1) / runs;
    const uint lo = wg * blk + sub * per;
    const uint hi = min(min(lo + per, (wg + 1) * blk), n);
    for (uint v = lo + lane; v < hi; v += LANES) {
        const uint4 x = src[v];
        acc += x.x + x.y + x.z + x.w;
    }
#else
    for (uint v = wg * LOCAL_X + lid; v < n; v += groups * LOCAL_X) {
        const uint4 x = src[v];
        acc += x.x + x.y + x.z + x.w;
    }
#endif
    part[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = LOCAL_X / 2; s > 0; s >>= 1) {
        if (lid < s)
            part[lid] += part[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        out[wg] = part[0];
}
