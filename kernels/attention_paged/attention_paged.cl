/* kernels/attention_paged/attention_paged.cl - paged decode attention (GQA) with
 * online softmax and optional flash-decoding split, its combine step, and
 * kv_append, for OpenCL and CUDA. Layout, slots and scalars: see
 * attention_paged.c; names: kernels/common/portable.h.
 *
 * attn_paged: workgroup (x = group of HPW query heads of one kv head, y = split).
 * Per TILE positions: (A) scores: LANES = WG/TILE threads per position split the
 * head_dim (partials summed through shared memory), or each thread scores
 * TILE/WG positions; (B) tile max (REDUCE 0: every thread scans the scores in
 * shared memory, 1: subgroup max), running max/sum update, p = exp(s - m) into
 * shared memory; (C) acc += p * v: each thread owns VEC-wide columns of
 * head_dim, groups of threads take interleaved positions when WG > head_dim/VEC,
 * reduced at the end.
 *
 * KV_F16=1: the pools hold f16 (KVT ushort): kv_append rounds to nearest even
 * (STORE_HALF_RTE), attention converts each element as it loads it
 * (LOAD_HALF) and accumulates in f32 as before. */
#ifndef KILN_TEST_BREAK
#define KILN_TEST_BREAK 0
#endif
#ifndef WRITE_PARTIAL
#define WRITE_PARTIAL 0
#endif
#ifndef BATCH
#define BATCH 0 /* 1: the _batch kernels: one token per workgroup row (see attention_paged.c), meta [tokens][2] */
#endif
#ifndef KV_F16
#define KV_F16 0
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
#define NEG_BIG (-1.0e30f)

/* head_dim and the column offsets are multiples of VEC, pools are allocated
 * aligned: VEC-wide vector loads are aligned (CUDA needs that). */
#if VEC == 4
#define LOADV(dst, p)                                                                                            \
    do {                                                                                                         \
        float4 t_ = LOAD4(0, p);                                                                                 \
        dst[0] = t_.x; dst[1] = t_.y; dst[2] = t_.z; dst[3] = t_.w;                                              \
    } while (0)
#elif VEC == 2
#define LOADV(dst, p)                                                                                            \
    do {                                                                                                         \
        float2 t_ = LOAD2(0, p);                                                                                 \
        dst[0] = t_.x; dst[1] = t_.y;                                                                            \
    } while (0)
#else
#define LOADV(dst, p) dst[0] = (p)[0]
#endif
#if KV_F16 /* the same VEC-wide loads of halves (aligned as the f32 ones are, at half the bytes) */
#define KVT ushort
#if VEC == 4
#define LOADKV(dst, p)                                                                                           \
    do {                                                                                                         \
        float4 t_ = LOAD_HALF4(0, p);                                                                            \
        dst[0] = t_.x; dst[1] = t_.y; dst[2] = t_.z; dst[3] = t_.w;                                              \
    } while (0)
#elif VEC == 2
#define LOADKV(dst, p)                                                                                           \
    do {                                                                                                         \
        float2 t_ = LOAD_HALF2(0, p);                                                                            \
        dst[0] = t_.x; dst[1] = t_.y;                                                                            \
    } while (0)
#else
#define LOADKV(dst, p) dst[0] = LOAD_HALF(p, 0)
#endif
#else
#define KVT float
#define LOADKV(dst, p) LOADV(dst, p)
#endif

#ifdef TILE /* attention steps (kv_append is built with WG only) */

KERNEL_WG(WG)
attn_paged(GLOBAL const float *q, GLOBAL const KVT *kp, GLOBAL const KVT *vp,
           GLOBAL const int *table, GLOBAL float *out,
#if BATCH
           GLOBAL const int *meta,
#endif
           int heads, int kv_heads, int head_dim, int page_size, int ctx, float scale)
{
#if BATCH /* token z: its query and output rows, its page table, its context */
    {
        const int tok = (int)GROUP_ID(2);
        q += (size_t)tok * (size_t)(heads * head_dim);
        out += (size_t)tok * (size_t)(heads * head_dim);
        table += meta[2 * tok];
        ctx = meta[2 * tok + 1] + 1;
    }
#endif
    SHARED float qs[HPW * MAXHD];
    SHARED float ss[HPW * TILE];
    SHARED float pp[HPW * TILE];
    SHARED uint rowoff[TILE];
    SHARED float red[HPW * WG * VEC];
    const int t = (int)LOCAL_ID(0);
    const int g = (int)GROUP_ID(0);
    const int split = (int)GROUP_ID(1);
    const int nsplit = (int)NUM_GROUPS(1);
    (void)split;
    const int h0 = g * HPW;
    const int kvh = h0 / (heads / kv_heads);
    int pb = 0, pe = ctx;
#if SPLIT > 0
    pb = split * SPLIT;
    pe = min(ctx, pb + SPLIT);
#endif
    for (int i = t; i < HPW * head_dim; i += WG)
        qs[i] = q[h0 * head_dim + i] * scale;

    const int lane = t % LANES, pslot = t / LANES;
    const int hv = head_dim / VEC;
    const int G = WG >= hv ? WG / hv : 1;
    const int grp = WG >= hv ? t / hv : 0;
    const int col0 = WG >= hv ? t % hv : t;
    float m[HPW], lp[HPW], acc[HPW * NDMAX * VEC];
    for (int hh = 0; hh < HPW; hh++) {
        m[hh] = NEG_BIG;
        lp[hh] = 0.0f;
    }
    for (int i = 0; i < HPW * NDMAX * VEC; i++)
        acc[i] = 0.0f;

    for (int tile0 = pb; tile0 < pe; tile0 += TILE) {
        BARRIER();
        /* (A) scores */
        for (int pass = 0; pass < NPASS; pass++) {
            int j = pslot + pass * PPT;
            int p = tile0 + j;
            float dot[HPW];
            for (int hh = 0; hh < HPW; hh++)
                dot[hh] = 0.0f;
            uint off = 0;
            if (p < pe) {
                int r = max(p % page_size, KILN_TEST_BREAK); /* break: row 1 read for row 0 */
                uint phys = (uint)table[p / page_size];
                off = ((phys * (uint)kv_heads + (uint)kvh) * (uint)page_size + (uint)r) * (uint)head_dim;
                for (int d = lane * VEC; d < head_dim; d += LANES * VEC) {
                    float kv[VEC];
                    LOADKV(kv, kp + off + d);
                    for (int hh = 0; hh < HPW; hh++)
                        for (int c = 0; c < VEC; c++)
                            dot[hh] += qs[hh * head_dim + d + c] * kv[c];
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
        BARRIER();
#if LANES > 1
        if (t < TILE) {
            for (int hh = 0; hh < HPW; hh++) {
                float s = 0.0f;
                for (int l = 0; l < LANES; l++)
                    s += red[hh * WG + t * LANES + l];
                ss[hh * TILE + t] = tile0 + t < pe ? s : NEG_BIG;
            }
        }
        BARRIER();
#endif
        /* (B) tile max, rescale, probabilities */
        for (int hh = 0; hh < HPW; hh++) {
#if REDUCE == 1
            /* subgroup max, then across subgroups (wg a multiple of SG_SIZE) */
            float mt = NEG_BIG;
            for (int j = t; j < TILE; j += WG)
                mt = FMAX(mt, ss[hh * TILE + j]);
            mt = SG_MAX(mt);
            if ((t & (SG_SIZE - 1)) == 0)
                red[hh * WG + (uint)t / SG_SIZE] = mt;
            BARRIER();
            mt = m[hh];
            for (int w = 0; w < WG / SG_SIZE; w++)
                mt = FMAX(mt, red[hh * WG + w]);
#else
            float mt = m[hh];
            for (int j = 0; j < TILE; j++)
                mt = FMAX(mt, ss[hh * TILE + j]);
#endif
            float alpha = EXP(m[hh] - mt);
            m[hh] = mt;
            float lown = 0.0f;
            for (int j = t; j < TILE; j += WG) {
                float pv = EXP(ss[hh * TILE + j] - mt);
                pp[hh * TILE + j] = pv;
                lown += pv;
            }
            lp[hh] = lp[hh] * alpha + lown;
            for (int i = 0; i < NDMAX * VEC; i++)
                acc[hh * NDMAX * VEC + i] *= alpha;
        }
        BARRIER();
        /* (C) acc += p * v */
        int tv = min(TILE, pe - tile0);
        if (grp < G) {
            for (int j = grp; j < tv; j += G) {
                uint off = rowoff[j];
                for (int i = 0; i < NDMAX; i++) {
                    int col = col0 + i * WG;
                    if (col < hv) {
                        float vv[VEC];
                        LOADKV(vv, vp + off + (uint)(col * VEC));
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
    BARRIER();
    for (int hh = 0; hh < HPW; hh++)
        red[hh * WG + t] = lp[hh];
    BARRIER();
    float L[HPW];
    for (int hh = 0; hh < HPW; hh++) {
        float s = 0.0f;
        for (int i = 0; i < WG; i++)
            s += red[hh * WG + i];
        L[hh] = s;
    }
    BARRIER();
    if (G > 1) {
        if (grp < G)
            for (int hh = 0; hh < HPW; hh++)
                for (int c = 0; c < VEC; c++)
                    red[(hh * WG + t) * VEC + c] = acc[hh * NDMAX * VEC + c];
        BARRIER();
        if (grp == 0)
            for (int hh = 0; hh < HPW; hh++)
                for (int c = 0; c < VEC; c++) {
                    float s = 0.0f;
                    for (int gi = 0; gi < G; gi++)
                        s += red[(hh * WG + gi * hv + col0) * VEC + c];
                    acc[hh * NDMAX * VEC + c] = s;
                }
    }
    if (grp == 0) {
        for (int hh = 0; hh < HPW; hh++) {
            int h = h0 + hh;
#if WRITE_PARTIAL
            GLOBAL float *rec = out + (size_t)(h * nsplit + split) * (size_t)(head_dim + 2);
            if (t == 0) {
                rec[0] = m[hh];
                rec[1] = L[hh];
            }
#else
            float inv = 1.0f / L[hh];
#endif
            for (int i = 0; i < NDMAX; i++) {
                int col = col0 + i * WG;
                if (col < hv)
                    for (int c = 0; c < VEC; c++) {
#if WRITE_PARTIAL
                        rec[2 + col * VEC + c] = acc[(hh * NDMAX + i) * VEC + c];
#else
                        out[h * head_dim + col * VEC + c] = acc[(hh * NDMAX + i) * VEC + c] * inv;
#endif
                    }
            }
        }
    }
    (void)nsplit;
}

#endif /* TILE */

/* part [heads][nsplit][2 + head_dim] (m, l, acc) -> out [heads][head_dim] */
KERNEL_WG(WG)
attn_paged_combine(GLOBAL const float *part, GLOBAL float *out, int heads, int head_dim, int nsplit)
{
    const int h = (int)GROUP_ID(0), t = (int)LOCAL_ID(0);
    const int rs = head_dim + 2;
    GLOBAL const float *b = part + (size_t)h * (size_t)nsplit * (size_t)rs;
    float mx = NEG_BIG, L = 0.0f;
    for (int s = 0; s < nsplit; s++)
        mx = FMAX(mx, b[s * rs]);
    for (int s = 0; s < nsplit; s++)
        L += b[s * rs + 1] * EXP(b[s * rs] - mx);
    float inv = 1.0f / L;
    for (int d = t; d < head_dim; d += WG) {
        float a = 0.0f;
        for (int s = 0; s < nsplit; s++)
            a += b[s * rs + 2 + d] * EXP(b[s * rs] - mx);
        out[h * head_dim + d] = a * inv;
    }
    (void)heads;
}

/* one thread per element of [kv_heads][head_dim] */
KERNEL_WG(WG)
kv_append(GLOBAL const float *k_new, GLOBAL const float *v_new, GLOBAL KVT *kp, GLOBAL KVT *vp,
          GLOBAL const int *table,
#if BATCH
          GLOBAL const int *meta,
#endif
          int pos, int page_size, int kv_heads, int head_dim)
{
    const int i = (int)GLOBAL_ID(0);
    if (i >= kv_heads * head_dim)
        return;
#if BATCH /* token y: its K/V rows, its page table, its position */
    {
        const int tok = (int)GROUP_ID(1);
        k_new += (size_t)tok * (size_t)(kv_heads * head_dim);
        v_new += (size_t)tok * (size_t)(kv_heads * head_dim);
        table += meta[2 * tok];
        pos = meta[2 * tok + 1];
    }
#endif
    const int kvh = i / head_dim, d = i % head_dim;
    const uint phys = (uint)table[pos / page_size];
    const int r = (pos + KILN_TEST_BREAK) % page_size;
    const uint dst = ((phys * (uint)kv_heads + (uint)kvh) * (uint)page_size + (uint)r) * (uint)head_dim + (uint)d;
#if KV_F16
    STORE_HALF_RTE(k_new[i], dst, kp);
    STORE_HALF_RTE(v_new[i], dst, vp);
#else
    kp[dst] = k_new[i];
    vp[dst] = v_new[i];
#endif
}
