/* kernels/attention_paged/attn_paged_combine.comp - flash-decoding combine step of
 * attention_paged: part [heads][nsplit][2 + head_dim] holding (m, l, acc) per
 * split -> out [heads][head_dim] = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M).
 * One workgroup per head. */
#define NEG_BIG (-1.0e30)

layout(std430, binding = 0) readonly buffer PART { float part[]; };
layout(std430, binding = 1) writeonly buffer OUT { float outb[]; };
layout(push_constant) uniform PC {
    int heads;
    int head_dim;
    int nsplit;
} pc;

void main()
{
    const int h = int(gl_WorkGroupID.x), t = int(gl_LocalInvocationID.x);
    const int rs = pc.head_dim + 2;
    const int b = h * pc.nsplit * rs;
    float mx = NEG_BIG, L = 0.0;
    for (int s = 0; s < pc.nsplit; s++)
        mx = max(mx, part[b + s * rs]);
    for (int s = 0; s < pc.nsplit; s++)
        L += part[b + s * rs + 1] * exp(part[b + s * rs] - mx);
    float inv = 1.0 / L;
    for (int d = t; d < pc.head_dim; d += WG) {
        float a = 0.0;
        for (int s = 0; s < pc.nsplit; s++)
            a += part[b + s * rs + 2 + d] * exp(part[b + s * rs] - mx);
        outb[h * pc.head_dim + d] = a * inv;
    }
}
