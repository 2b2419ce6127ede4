/* kernels/attention_paged/attn_paged.comp - paged decode attention (GQA), online
 * softmax, optional flash-decoding split (WRITE_PARTIAL=1 writes [m, l, acc] per
 * head and split for attn_paged_combine.comp). Algorithm: see attention_paged.cl;
 * layout, slots and scalars: see attention_paged.c. KV_F16=1: the pools are
 * uint words of two f16 (kv_append.comp), read with unpackHalf2x16. */
#ifndef KV_F16
#define KV_F16 0
#endif
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif
#ifndef WRITE_PARTIAL
#define WRITE_PARTIAL 0
#endif
#ifndef BATCH
#define BATCH 0 /* 1: attention_paged_batch, one token per workgroup z (see attention_paged.c) */
#endif
#define MAXHD 256
#if defined(TILE) && WG > TILE
#define LANES (WG / TILE) /* threads per position in the score pass */
#else
#define LANES 1
#endif
#define PPT (WG / LANES)
#define NPASS (TILE / PPT)
#define NDMAX ((MAXHD + WG * VEC - 1) / (WG * VEC))
#define NEG_BIG (-1.0e30)

layout(std430, binding = 0) readonly buffer Q { float q[]; };
#if KV_F16
layout(std430, binding = 1) readonly buffer KP { uint kp[]; };
layout(std430, binding = 2) readonly buffer VP { uint vp[]; };
#else
layout(std430, binding = 1) readonly buffer KP { float kp[]; };
layout(std430, binding = 2) readonly buffer VP { float vp[]; };
#endif
layout(std430, binding = 3) readonly buffer PT { int table[]; };
layout(std430, binding = 4) writeonly buffer OUT { float outb[]; };
#if BATCH
layout(std430, binding = 5) readonly buffer META { int meta[]; }; /* [tokens][2]: table base, position */
#endif
layout(push_constant) uniform PC {
    int heads;
    int kv_heads;
    int head_dim;
    int page_size;
    int ctx;
    float scale;
} pc;

/* VEC consecutive floats of buffer b at element o into float dst[VEC] */
#define LOADV(dst, b, o)                                                                                         \
    [[unroll]] for (int c_ = 0; c_ < VEC; c_++)                                                                  \
        dst[c_] = b[(o) + uint(c_)]
/* the same from an f16 pool (element e: half e & 1 of word e >> 1) */
#define LOADV_F16(dst, b, o)                                                                                     \
    [[unroll]] for (int c_ = 0; c_ < VEC; c_++)                                                                  \
        dst[c_] = unpackHalf2x16(b[((o) + uint(c_)) >> 1])[((o) + uint(c_)) & 1u]
#if KV_F16
#define LOADKV LOADV_F16
#else
#define LOADKV LOADV
#endif

shared float qs[HPW * MAXHD];
shared float ss[HPW * TILE];
shared float pp[HPW * TILE];
shared uint rowoff[TILE];
shared float red[HPW * WG * VEC];

void main()
{
    const int t = int(gl_LocalInvocationID.x);
    const int g = int(gl_WorkGroupID.x);
#if BATCH
    const int tok = int(gl_WorkGroupID.z);
    const int tb = meta[2 * tok];
    const int ctx_ = meta[2 * tok + 1] + 1;
    const int qb = tok * pc.heads * pc.head_dim;
#else
    const int tb = 0, ctx_ = pc.ctx, qb = 0;
#endif
    const int split = int(gl_WorkGroupID.y);
    const int nsplit = int(gl_NumWorkGroups.y);
    const int h0 = g * HPW;
    const int kvh = h0 / (pc.heads / pc.kv_heads);
    int pb = 0, pe = ctx_;
#if SPLIT > 0
    pb = split * SPLIT;
    pe = min(ctx_, pb + SPLIT);
#endif
    for (int i = t; i < HPW * pc.head_dim; i += WG)
        qs[i] = q[qb + h0 * pc.head_dim + i] * pc.scale;

    const int lane = t % LANES, pslot = t / LANES;
    const int hv = pc.head_dim / VEC;
    const int G = WG >= hv ? WG / hv : 1;
    const int grp = WG >= hv ? t / hv : 0;
    const int col0 = WG >= hv ? t % hv : t;
    float m[HPW], lp[HPW], acc[HPW * NDMAX * VEC];
    for (int hh = 0; hh < HPW; hh++) {
        m[hh] = NEG_BIG;
        lp[hh] = 0.0;
    }
    for (int i = 0; i < HPW * NDMAX * VEC; i++)
        acc[i] = 0.0;

    for (int tile0 = pb; tile0 < pe; tile0 += TILE) {
        memoryBarrierShared(); barrier();
        /* (A) scores */
        for (int pass = 0; pass < NPASS; pass++) {
            int j = pslot + pass * PPT;
            int p = tile0 + j;
            float dot[HPW];
            for (int hh = 0; hh < HPW; hh++)
                dot[hh] = 0.0;
            uint off = 0;
            if (p < pe) {
                int r = max(p % pc.page_size, KILN_TEST_BREAK); /* break: row 1 read for row 0 */
                uint phys = uint(table[tb + p / pc.page_size]);
                off = ((phys * uint(pc.kv_heads) + uint(kvh)) * uint(pc.page_size) + uint(r)) * uint(pc.head_dim);
                for (int d = lane * VEC; d < pc.head_dim; d += LANES * VEC) {
                    float kv[VEC];
                    LOADKV(kv, kp, off + uint(d));
                    for (int hh = 0; hh < HPW; hh++)
                        for (int c = 0; c < VEC; c++)
                            dot[hh] += qs[hh * pc.head_dim + d + c] * kv[c];
                }
            }
            if (lane == 0)
                rowoff[j] = off;
            for (int hh = 0; hh < HPW; hh++) {
#if LANES == 1
                ss[hh * TILE + j] = p < pe ? dot[hh] : NEG_BIG;
#else
                red[hh * WG + t] = dot[hh];
#endif
            }
        }
        memoryBarrierShared(); barrier();
#if LANES > 1
        if (t < TILE) {
            for (int hh = 0; hh < HPW; hh++) {
                float s = 0.0;
                for (int l = 0; l < LANES; l++)
                    s += red[hh * WG + t * LANES + l];
                ss[hh * TILE + t] = tile0 + t < pe ? s : NEG_BIG;
            }
        }
        memoryBarrierShared(); barrier();
#endif
        /* (B) tile max, rescale, probabilities */
        for (int hh = 0; hh < HPW; hh++) {
#if REDUCE == 1
            /* subgroup max, then across subgroups (any subgroup size) */
            float mt = NEG_BIG;
            for (int j = t; j < TILE; j += WG)
                mt = max(mt, ss[hh * TILE + j]);
            mt = subgroupMax(mt);
            if (subgroupElect())
                red[hh * WG + int(gl_SubgroupID)] = mt;
            memoryBarrierShared(); barrier();
            mt = m[hh];
            for (int w = 0; w < int(gl_NumSubgroups); w++)
                mt = max(mt, red[hh * WG + w]);
#else
            float mt = m[hh];
            for (int j = 0; j < TILE; j++)
                mt = max(mt, ss[hh * TILE + j]);
#endif
            float alpha = exp(m[hh] - mt);
            m[hh] = mt;
            float lown = 0.0;
            for (int j = t; j < TILE; j += WG) {
                float pv = exp(ss[hh * TILE + j] - mt);
                pp[hh * TILE + j] = pv;
                lown += pv;
            }
            lp[hh] = lp[hh] * alpha + lown;
            for (int i = 0; i < NDMAX * VEC; i++)
                acc[hh * NDMAX * VEC + i] *= alpha;
        }
        memoryBarrierShared(); barrier();
        /* (C) acc += p * v */
        int tv = min(TILE, pe - tile0);
        if (grp < G) {
            for (int j = grp; j < tv; j += G) {
                uint off = rowoff[j];
                for (int i = 0; i < NDMAX; i++) {
                    int col = col0 + i * WG;
                    if (col < hv) {
                        float vv[VEC];
                        LOADKV(vv, vp, off + uint(col * VEC));
                        for (int hh = 0; hh < HPW; hh++) {
                            float pj = pp[hh * TILE + j];
                            for (int c = 0; c < VEC; c++)
                                acc[(hh * NDMAX + i) * VEC + c] += pj * vv[c];
                        }
                    }
                }
            }
        }
    }

    /* L = sum of every thread's partial sums */
    memoryBarrierShared(); barrier();
    for (int hh = 0; hh < HPW; hh++)
        red[hh * WG + t] = lp[hh];
    memoryBarrierShared(); barrier();
    float L[HPW];
    for (int hh = 0; hh < HPW; hh++) {
        float s = 0.0;
        for (int i = 0; i < WG; i++)
            s += red[hh * WG + i];
        L[hh] = s;
    }
    memoryBarrierShared(); barrier();
    if (G > 1) {
        if (grp < G)
            for (int hh = 0; hh < HPW; hh++)
                for (int c = 0; c < VEC; c++)
                    red[(hh * WG + t) * VEC + c] = acc[hh * NDMAX * VEC + c];
        memoryBarrierShared(); barrier();
        if (grp == 0)
            for (int hh = 0; hh < HPW; hh++)
                for (int c = 0; c < VEC; c++) {
                    float s = 0.0;
                    for (int gi = 0; gi < G; gi++)
                        s += red[(hh * WG + gi * hv + col0) * VEC + c];
                    acc[hh * NDMAX * VEC + c] = s;
                }
    }
    if (grp == 0) {
        for (int hh = 0; hh < HPW; hh++) {
            int h = h0 + hh;
#if WRITE_PARTIAL
            int rec = (h * nsplit + split) * (pc.head_dim + 2);
            if (t == 0) {
                outb[rec] = m[hh];
                outb[rec + 1] = L[hh];
            }
#else
            float inv = 1.0 / L[hh];
#endif
            for (int i = 0; i < NDMAX; i++) {
                int col = col0 + i * WG;
                if (col < hv)
                    for (int c = 0; c < VEC; c++) {
#if WRITE_PARTIAL
                        outb[rec + 2 + col * VEC + c] = acc[(hh * NDMAX + i) * VEC + c];
#else
                        outb[qb + h * pc.head_dim + col * VEC + c] = acc[(hh * NDMAX + i) * VEC + c] * inv;
#endif
                    }
            }
        }
    }
}

