/* kernels/gemv_int4/gemv_int4_vec.comp - gemv_int4, layout 2: one invocation
 * owns ROWS consecutive rows and walks their whole K, VEC words per load
 * (VEC 4: a uvec4, 16 bytes), x read once per step for all ROWS rows. Made
 * for drivers that run invocations in the SIMD lanes of a CPU (lavapipe):
 * each lane streams its own rows front to back, no barrier, no shared
 * memory, and every x load serves ROWS rows. Within a group it sums codes *
 * x and x apart: sum (c - z) s x + m x = s (sum c x - z sum x) + m sum x.
 * Defines: QUANT, GROUP, WG, ROWS, VEC (see gemv_int4.c). */
#include "quant.glsl"

#if W64 /* 64-bit loads: llvmpipe loads lane by lane, one scalar per component */
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#if VEC == 4
#define QV u64vec2
#else
#define QV uint64_t
#endif
#elif VEC == 4
#define QV uvec4
#elif VEC == 2
#define QV uvec2
#else
#define QV uint
#endif
/* x values per step, VEC * EPW (spelled out: GLSL's #if has no ?:) */
#if QUANT <= 2
#define XN (VEC * 8)
#elif QUANT == 3
#define XN (VEC * 4)
#else
#define XN (VEC * 2)
#endif
#ifndef XSG
#define XSG 0
#endif
#ifndef W64
#define W64 0
#endif

/* the slots of gemv_int4.c's plan; qs and x also seen as vectors (the same
 * bindings: words_per_row is a multiple of VEC, see the config check) */
layout(std430, binding = 0) readonly buffer Qs { uint qs[]; };
layout(std430, binding = 0) readonly buffer QsV { QV qv[]; };
layout(std430, binding = 1) readonly buffer Scales { uint sc[]; };
layout(std430, binding = 2) readonly buffer Mins { uint mn[]; };
layout(std430, binding = 3) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 4) writeonly buffer Y { float y[]; };
layout(push_constant) uniform PC { uint M; uint K; uint wpr; uint gpr; } pc;

float xat(uint k)
{
#ifdef KILN_TEST_BREAK
    if (k == 0u)
        return x[1];
#endif
    return x[k];
}

#if XSG
/* x through the subgroup (XSG lanes, a fixed subgroup size): a driver
 * that runs invocations as SIMD lanes (lavapipe) loads a value every lane
 * reads as if the lanes diverged, one lane at a time; here each lane loads
 * one vec4 of a chunk of 4 * XSG values and the others take it by
 * subgroupBroadcast (one extract and one splat). XN divides the chunk. */
#define XCH (4 * XSG)
vec4 xl; /* this lane's vec4 of the current chunk */
float xc[XCH]; /* the chunk, broadcast */
void stage_x(uint k0) /* k0: a multiple of XCH, k0 + XCH <= K */
{
    xl = x4[k0 / 4u + gl_SubgroupInvocationID];
#ifdef KILN_TEST_BREAK
    if (k0 == 0u && gl_SubgroupInvocationID == 0u)
        xl.x = x[1];
#endif
#define B(l) xc[4 * l] = subgroupBroadcast(xl.x, l); xc[4 * l + 1] = subgroupBroadcast(xl.y, l); \
             xc[4 * l + 2] = subgroupBroadcast(xl.z, l); xc[4 * l + 3] = subgroupBroadcast(xl.w, l);
    B(0u) B(1u) B(2u) B(3u)
#if XSG >= 8
    B(4u) B(5u) B(6u) B(7u)
#endif
#if XSG >= 16
    B(8u) B(9u) B(10u) B(11u) B(12u) B(13u) B(14u) B(15u)
#endif
#undef B
}
#endif

/* XN values of x from k0 (a multiple of XN, all < K). off = k0 % XCH, a
 * constant where XSG is on (the caller's loop is unrolled): the chunk
 * array is indexed by constants only. */
void load_x(uint k0, uint off, out float xv[XN])
{
#if XSG
    if (off == 0u)
        stage_x(k0);
    [[unroll]] for (uint i = 0u; i < uint(XN); i++)
        xv[i] = xc[off + i];
#elif XN >= 4
    [[unroll]] for (uint i = 0u; i < uint(XN / 4); i++) {
        vec4 v = x4[k0 / 4u + i];
        xv[4u * i] = v.x;
        xv[4u * i + 1u] = v.y;
        xv[4u * i + 2u] = v.z;
        xv[4u * i + 3u] = v.w;
    }
#else
    [[unroll]] for (uint i = 0u; i < uint(XN); i++)
        xv[i] = x[k0 + i];
#endif
#ifdef KILN_TEST_BREAK
    if (k0 == 0u)
        xv[0] = x[1];
#endif
}

/* VEC words from word i (a multiple of VEC) */
void load_words(uint i, out uint wv[VEC])
{
    QV v = qv[i / uint(VEC)];
#if W64 && VEC == 4
    wv[0] = uint(v.x);
    wv[1] = uint(v.x >> 32);
    wv[2] = uint(v.y);
    wv[3] = uint(v.y >> 32);
#elif W64
    wv[0] = uint(v);
    wv[1] = uint(v >> 32);
#elif VEC == 1
    wv[0] = v;
#else
    [[unroll]] for (uint j = 0u; j < uint(VEC); j++)
        wv[j] = v[j];
#endif
}

/* the value element j of word w multiplies x by: the raw code (int4 0..15;
 * the zero point comes off per group), the signed byte, or the f16 weight */
float elem(uint w, uint j)
{
#if QUANT <= 2
    return float((w >> (4u * j)) & 0xFu);
#elif QUANT == 3
    return float(bitfieldExtract(int(w), int(8u * j), 8));
#else
    return unpackHalf2x16(w)[j];
#endif
}

#if QUANT != 4
/* one step of a group: VEC words of each row from word w; off = the
 * step's offset in the x chunk (XSG) */
void group_step(uint w, uint off, uint base[ROWS], inout float d[ROWS], inout float xs)
{
    float xv[XN];
    load_x(w * uint(EPW), off, xv);
#if QUANT != 3
    [[unroll]] for (uint i = 0u; i < uint(XN); i++)
        xs += xv[i];
#endif
    [[unroll]] for (int r = 0; r < ROWS; r++) {
        uint wv[VEC];
        load_words(base[r] + w, wv);
        [[unroll]] for (uint i = 0u; i < uint(XN); i++)
            d[r] += elem(wv[i / uint(EPW)], i % uint(EPW)) * xv[i];
    }
}
#endif

void main()
{
    uint row0 = gl_GlobalInvocationID.x * uint(ROWS);
#if !XSG /* with XSG every lane takes part in the broadcasts to the end */
    if (row0 >= pc.M)
        return;
#endif
    uint base[ROWS], sbase[ROWS]; /* first word, first scale of each row */
    float acc[ROWS];
    [[unroll]] for (int r = 0; r < ROWS; r++) {
        uint row = min(row0 + uint(r), pc.M - 1u); /* rows past M repeat the last, not stored */
        base[r] = row * pc.wpr;
        sbase[r] = row * pc.gpr;
        acc[r] = 0.0;
    }
#if QUANT == 4
    uint full = pc.K / uint(XN) * uint(XN);
    for (uint k0 = 0u; k0 < full; k0 += uint(XN)) {
        float xv[XN];
        load_x(k0, 0u, xv);
        [[unroll]] for (int r = 0; r < ROWS; r++) {
            uint wv[VEC];
            load_words(base[r] + k0 / 2u, wv);
            [[unroll]] for (uint i = 0u; i < uint(XN); i++)
                acc[r] += elem(wv[i / 2u], i & 1u) * xv[i];
        }
    }
    for (uint k = full; k < pc.K; k++)
        [[unroll]] for (int r = 0; r < ROWS; r++)
            acc[r] += elem(qs[base[r] + k / 2u], k & 1u) * xat(k);
#else
    const uint wpg = uint(GROUP / EPW);
    uint full = pc.K / uint(GROUP);
    for (uint g = 0u; g <= full; g++) {
        float d[ROWS];
        float xs = 0.0;
        [[unroll]] for (int r = 0; r < ROWS; r++)
            d[r] = 0.0;
        if (g < full) {
#if XSG
            /* chunks of XCH values; only a chunk's steps are unrolled (the
             * broadcast array is indexed by constants), not the group's */
            for (uint cc = 0u; cc < wpg; cc += uint(XCH / EPW))
                [[unroll]] for (uint c = 0u; c < uint(XCH / EPW); c += uint(VEC))
                    group_step(g * wpg + cc + c, c * uint(EPW), base, d, xs);
#else
            for (uint c = 0u; c < wpg; c += uint(VEC))
                group_step(g * wpg + c, 0u, base, d, xs);
#endif
        } else { /* the partial last group (K not a multiple of GROUP) */
            if (full * uint(GROUP) >= pc.K)
                break;
            for (uint k = full * uint(GROUP); k < pc.K; k++) {
                float xv = xat(k);
                xs += xv;
                [[unroll]] for (int r = 0; r < ROWS; r++)
                    d[r] += elem(qs[base[r] + k / uint(EPW)], k % uint(EPW)) * xv;
            }
        }
        [[unroll]] for (int r = 0; r < ROWS; r++) {
            uint si = sbase[r] + g;
            float s = HALF(sc, si);
#if QUANT == 2
            acc[r] += s * d[r] + HALF(mn, si) * xs;
#elif QUANT == 3
            acc[r] += s * d[r];
#else
            acc[r] += s * (d[r] - ZERO * xs);
#endif
        }
    }
#endif
    [[unroll]] for (int r = 0; r < ROWS; r++)
        if (row0 + uint(r) < pc.M)
            y[row0 + uint(r)] = acc[r];
}
