/* kernels/small/argmax.glsl - what both argmax steps' shaders share: the
 * workgroup's (value, index) pairs in shared memory and their tree reduction
 * to element 0 (the same order as small.cl's am_reduce). */
#include "argmax.h"

shared float lv[WG];
shared uint li[WG];

/* after each invocation stored its best pair at lv/li[tid] */
void am_reduce(int tid)
{
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (tid < s && BETTER(lv[tid + s], li[tid + s], lv[tid], li[tid])) {
            lv[tid] = lv[tid + s];
            li[tid] = li[tid + s];
        }
        barrier();
    }
}
