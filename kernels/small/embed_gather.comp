/* kernels/small/embed_gather.comp - embed_gather (layout and arguments: see
 * small.c). One output element per thread. */
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif
#ifndef ILV
#define ILV 1 /* the table's row layout (kernels/quant_ilv.h) */
#endif

#include "dequant_elem.glsl"
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

void main()
{
    const uint t = GRID2D_ID(WG);
    if (t >= uint(pc.n) * uint(pc.dim))
        return;
    const int tok = int(t / uint(pc.dim)), c = int(t - uint(tok) * uint(pc.dim));
    int id = ids[tok];
    if (KILN_TEST_BREAK != 0 && tok == 0)
        id = id > 0 ? id - 1 : id + 1;
    float v = 0.0;
    if (id >= 0 && id < pc.vocab) {
        if (pc.quant == 4)
            v = HALF(qs, uint(id) * uint(pc.wpr) * 2u + uint(c));
        else
            /* a table tied to the LM head may be interleaved for its gemv:
             * word w of row id at (tile * wpr + w) * ILV + lane */
            v = dequant_elem_s((id / ILV) * pc.wpr * ILV + id % ILV, ILV,
                               uint(((id / ILV) * pc.gpr + c / pc.group) * ILV + id % ILV), c, pc.quant);
    }
    o[t] = v;
}
