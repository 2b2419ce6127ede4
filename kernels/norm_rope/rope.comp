/* kernels/norm_rope/rope.comp - rope (layout and arguments: see norm_rope.c).
 * Thread t rotates pairs [t*PPT, t*PPT + PPT) of [tokens][heads][n_rot/2]. */
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif

layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer P { int pos[]; };
layout(std430, binding = 2) readonly buffer F { float inv_freq[]; };
layout(push_constant) uniform PC {
    int tokens;
    int heads;
    int hd;
    int n_rot;
    int off;
    int op;
} pc;

void main()
{
    const uint t = GRID2D_ID(WG);
    const int half_ = pc.n_rot / 2;
    const uint npairs = uint(pc.tokens) * uint(pc.heads) * uint(half_);
    for (int u = 0; u < PPT; u++) {
        const uint pi = t * uint(PPT) + uint(u);
        if (pi >= npairs)
            return;
        const int i = int(pi % uint(half_));
        const uint th_ = pi / uint(half_);
        const int tok = int(th_ / uint(pc.heads));
        const int fi = (KILN_TEST_BREAK != 0 && i == 0) ? 1 : i;
        const float theta = float(pos[tok] + pc.off) * inv_freq[fi];
        const float c = cos(theta), s = sin(theta);
        const uint b0 = th_ * uint(pc.hd);
        const uint a = b0 + uint(pc.op != 0 ? i : 2 * i), b = b0 + uint(pc.op != 0 ? i + half_ : 2 * i + 1);
        const float x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
    }
}
