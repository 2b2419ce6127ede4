/* devices/read_bw.cu - the read-bandwidth probe (devices/read_bandwidth.c),
 * the same reduction as read_bw.cl: every 32-bit word of src summed
 * (mod 2^32) from 16-byte loads, one sum per block; n: 16-byte vectors.
 * CONTIG 0: consecutive threads on consecutive vectors, grid-strided (what a
 * GPU coalesces); CONTIG 1: each block a contiguous part of src, split into
 * runs, one per LANES consecutive threads, which read it interleaved.
 * Self-contained for NVRTC (no headers; uint4 is built in). */
extern "C" __global__ void __launch_bounds__(LOCAL_X) read_sum(const uint4 *__restrict__ src, unsigned *out, unsigned n)
{
    __shared__ unsigned part[LOCAL_X];
    const unsigned lid = threadIdx.x, wg = blockIdx.x, groups = gridDim.x;
    unsigned acc = 0;
#if CONTIG
    const unsigned runs = LOCAL_X / LANES, sub = lid / LANES, lane = lid % LANES;
    const unsigned blk = (n + groups - 1) / groups, per = (blk + runs - 1) / runs;
    const unsigned lo = wg * blk + sub * per;
    const unsigned hi = min(min(lo + per, (wg + 1) * blk), n);
    for (unsigned v = lo + lane; v < hi; v += LANES) {
        const uint4 x = __ldg(src + v);
        acc += x.x + x.y + x.z + x.w;
    }
#else
    for (unsigned v = wg * LOCAL_X + lid; v < n; v += groups * LOCAL_X) {
        const uint4 x = __ldg(src + v);
        acc += x.x + x.y + x.z + x.w;
    }
#endif
    part[lid] = acc;
    __syncthreads();
    for (unsigned s = LOCAL_X / 2; s > 0; s >>= 1) {
        if (lid < s)
            part[lid] += part[lid + s];
        __syncthreads();
    }
    if (lid == 0)
        out[wg] = part[0];
}
