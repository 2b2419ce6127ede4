/* kernels/attention_paged/kv_append.comp - write one token's K and V rows (all
 * kv heads) at position pos into its page (layout: see attention_paged.c).
 * One thread per element of [kv_heads][head_dim]; KV_F16=1: the pools are
 * uint words of two f16 (packHalf2x16, no float16 storage extension needed),
 * and thread i writes elements 2i and 2i+1 (head_dim is even: a pair never
 * straddles rows; the upper half of the threads has nothing to do). */
#ifndef KV_F16
#define KV_F16 0
#endif
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif
#ifndef BATCH
#define BATCH 0 /* 1: kv_append_batch, token gl_WorkGroupID.y at meta's table base and position */
#endif

layout(std430, binding = 0) readonly buffer KN { float k_new[]; };
layout(std430, binding = 1) readonly buffer VN { float v_new[]; };
#if KV_F16
layout(std430, binding = 2) buffer KP { uint kp[]; };
layout(std430, binding = 3) buffer VP { uint vp[]; };
#else
layout(std430, binding = 2) buffer KP { float kp[]; };
layout(std430, binding = 3) buffer VP { float vp[]; };
#endif
layout(std430, binding = 4) readonly buffer PT { int table[]; };
#if BATCH
layout(std430, binding = 5) readonly buffer META { int meta[]; }; /* [tokens][2]: table base, position */
#endif
layout(push_constant) uniform PC {
    int pos;
    int page_size;
    int kv_heads;
    int head_dim;
} pc;

void main()
{
#if KV_F16
    const int i = 2 * int(gl_GlobalInvocationID.x);
#else
    const int i = int(gl_GlobalInvocationID.x);
#endif
    if (i >= pc.kv_heads * pc.head_dim)
        return;
    const int kvh = i / pc.head_dim, d = i % pc.head_dim;
#if BATCH
    const int tok = int(gl_WorkGroupID.y);
    const int tb = meta[2 * tok], pos = meta[2 * tok + 1], src = tok * pc.kv_heads * pc.head_dim + i;
#else
    const int tb = 0, pos = pc.pos, src = i;
#endif
    const uint phys = uint(table[tb + pos / pc.page_size]);
    const int r = (pos + KILN_TEST_BREAK) % pc.page_size;
    const uint dst = ((phys * uint(pc.kv_heads) + uint(kvh)) * uint(pc.page_size) + uint(r)) * uint(pc.head_dim) + uint(d);
#if KV_F16
    kp[dst >> 1] = packHalf2x16(vec2(k_new[src], k_new[src + 1]));
    vp[dst >> 1] = packHalf2x16(vec2(v_new[src], v_new[src + 1]));
#else
    kp[dst] = k_new[src];
    vp[dst] = v_new[src];
#endif
}
