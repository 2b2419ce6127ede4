/* kernels/small/embed_gather.comp - embed_gather (layout and arguments: see
 * small.c). One output element per thread. */
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif

layout(std430, binding = 0) readonly buffer QS { uint qs[]; };
layout(std430, binding = 1) readonly buffer SC { uint sc[]; };
layout(std430, binding = 2) readonly buffer MN { uint mn[]; };
layout(std430, binding = 3) readonly buffer ID { int ids[]; };
layout(std430, binding = 4) writeonly buffer OUT { float o[]; };
layout(push_constant) uniform PC {
    int n;
    int dim;
    int vocab;
    int wpr;
    int gpr;
    int quant;
    int group;
} pc;

float half_of(uint w, uint i) { return unpackHalf2x16(w >> (16u * (i & 1u))).x; }

void main()
{
    const uint t = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * uint(WG) + gl_LocalInvocationID.x;
    if (t >= uint(pc.n) * uint(pc.dim))
        return;
    const int tok = int(t / uint(pc.dim)), c = int(t - uint(tok) * uint(pc.dim));
    int id = ids[tok];
    if (KILN_TEST_BREAK != 0 && tok == 0)
        id = id > 0 ? id - 1 : id + 1;
    float v = 0.0;
    if (id >= 0 && id < pc.vocab) {
        if (pc.quant == 4) {
            const uint hi = uint(id) * uint(pc.wpr) * 2u + uint(c);
            v = half_of(qs[hi >> 1], hi);
        } else {
            const uint si = uint(id * pc.gpr + c / pc.group);
            const float d = half_of(sc[si >> 1], si);
            if (pc.quant == 3) {
                uint w = qs[id * pc.wpr + (c >> 2)];
                v = float(int(w << (24 - 8 * (c & 3))) >> 24) * d;
            } else {
                uint w = qs[id * pc.wpr + (c >> 3)];
                int q = int((w >> (4 * (c & 7))) & 15u);
                if (pc.quant == 2) {
                    precise float p = float(q) * d;
                    precise float s = p + half_of(mn[si >> 1], si);
                    v = s;
                } else {
                    v = float(q - (pc.quant == 0 ? 7 : 8)) * d;
                }
            }
        }
    }
    o[t] = v;
}
