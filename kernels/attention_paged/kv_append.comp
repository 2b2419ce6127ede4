/* kernels/attention_paged/kv_append.comp - write one token's K and V rows (all
 * kv heads) at position pos into its page (layout: see attention_paged.c).
 * One thread per element of [kv_heads][head_dim]. */
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif

layout(std430, binding = 0) readonly buffer KN { float k_new[]; };
layout(std430, binding = 1) readonly buffer VN { float v_new[]; };
layout(std430, binding = 2) buffer KP { float kp[]; };
layout(std430, binding = 3) buffer VP { float vp[]; };
layout(std430, binding = 4) readonly buffer PT { int table[]; };
layout(push_constant) uniform PC {
    int pos;
    int page_size;
    int kv_heads;
    int head_dim;
} pc;

void main()
{
    const int i = int(gl_GlobalInvocationID.x);
    if (i >= pc.kv_heads * pc.head_dim)
        return;
    const int kvh = i / pc.head_dim, d = i % pc.head_dim;
    const uint phys = uint(table[pc.pos / pc.page_size]);
    const int r = (pc.pos + KILN_TEST_BREAK) % pc.page_size;
    const uint dst = ((phys * uint(pc.kv_heads) + uint(kvh)) * uint(pc.page_size) + uint(r)) * uint(pc.head_dim) + uint(d);
    kp[dst] = k_new[i];
    vp[dst] = v_new[i];
}
