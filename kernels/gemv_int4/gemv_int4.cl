/* kernels/gemv_int4/gemv_int4.cl - gemv_int4 for OpenCL and CUDA: see
 * gemv_int4.c for the schedule, kernels/common/portable.h for the names.
 * Defines: QUANT (kiln_quant), GROUP, WG, ROWS, VEC, UNROLL, SPLITK, REDUCE.
 * The reduce step (gemv_int4_reduce) is built from this file with only WG and
 * SPLITK, layout 1 (gemv_int4_rows) with QUANT, GROUP and WG: the other
 * kernels' parameters get harmless defaults so that every entry compiles. */
#ifndef QUANT
#define QUANT 0
#endif
#ifndef GROUP
#define GROUP 32
#endif
#ifndef ROWS
#define ROWS 1
#endif
#ifndef VEC
#define VEC 1
#endif
#ifndef UNROLL
#define UNROLL 1
#endif
#ifndef REDUCE
#define REDUCE 0
#endif
#ifndef SPLITK
#define SPLITK 1
#endif
#include "quant.h"

INLINE float xat(GLOBAL const float *RESTRICT x, uint k)
{
#ifdef KILN_TEST_BREAK
    if (k == 0)
        return x[1];
#endif
    return x[k];
}

#if QUANT != 4
/* sum over the EPW elements of one word: (code - zero) * x, and sum of x */
INLINE float word_dot(uint w, uint k0, uint K, GLOBAL const float *RESTRICT x, float *xs)
{
    float d = 0.0f, s = 0.0f;
    UNROLL_HINT
    for (uint j = 0; j < EPW; j++) {
        uint k = k0 + j;
        if (k >= K)
            break;
        float xv = xat(x, k);
#if QUANT <= 2
        float c = (float)((w >> (4 * j)) & 0xFu) - ZERO;
#else
        float c = (float)((signed char)((w >> (8 * j)) & 0xFFu));
#endif
        d += c * xv;
        s += xv;
    }
    *xs = s;
    return d;
}
#endif

KERNEL_WG(WG)
gemv_int4(GLOBAL const uint *RESTRICT qs, GLOBAL const ushort *RESTRICT scales, GLOBAL const ushort *RESTRICT mins,
          GLOBAL const float *RESTRICT x, GLOBAL float *RESTRICT y, uint M, uint K, uint wpr, uint gpr)
{
    SHARED float red[ROWS * WG];
    uint tid = LOCAL_ID(0);
    uint row0 = GROUP_ID(0) * ROWS;
    uint split = GROUP_ID(1);
    uint words = (K + EPW - 1) / EPW;
    uint step = (uint)WG * VEC;
    uint chunk = ((words + SPLITK - 1) / SPLITK + step - 1) / step * step;
    uint wb = split * chunk, we = min(words, wb + chunk);
    float acc[ROWS];
    UNROLL_HINT
    for (int r = 0; r < ROWS; r++)
        acc[r] = 0.0f;
    /* UNROLL steps per trip; the constant inner loop is unrolled by the compiler */
    for (uint w0 = wb + tid * VEC; w0 < we; w0 += step * UNROLL) {
        UNROLL_HINT
        for (uint u = 0; u < UNROLL; u++) {
            uint w = w0 + u * step;
            if (w >= we)
                break;
            UNROLL_HINT
            for (int r = 0; r < ROWS; r++) {
                uint row = min(row0 + r, M - 1);
                GLOBAL const uint *qrow = qs + (size_t)row * wpr;
#if QUANT == 4
                for (uint v = 0; v < VEC && w + v < we; v++) {
                    uint k0 = (w + v) * 2;
                    acc[r] += HALF_OF_WORD(qrow, w + v, qrow[w + v], 0) * xat(x, k0);
                    if (k0 + 1 < K)
                        acc[r] += HALF_OF_WORD(qrow, w + v, qrow[w + v], 1) * xat(x, k0 + 1);
                }
#else
                uint g = (w * EPW) / GROUP;
                float s = LOAD_HALF(scales, (size_t)row * gpr + g);
                float d = 0.0f, xs = 0.0f;
                for (uint v = 0; v < VEC && w + v < we; v++) {
                    float xsv;
                    d += word_dot(qrow[w + v], (w + v) * EPW, K, x, &xsv);
                    xs += xsv;
                }
#if QUANT == 2
                acc[r] += s * d + LOAD_HALF(mins, (size_t)row * gpr + g) * xs;
#else
                acc[r] += s * d;
#endif
#endif
            }
        }
    }
#if REDUCE == 1
    /* subgroup sums, then one value per subgroup through shared memory */
    UNROLL_HINT
    for (int r = 0; r < ROWS; r++) {
        float t = SG_SUM(acc[r]);
        if ((tid & (SG_SIZE - 1)) == 0)
            red[r * WG + tid / SG_SIZE] = t;
    }
    if (tid < ROWS && row0 + tid < M) {
        float t = 0.0f;
        for (uint i = 0; i < WG / SG_SIZE; i++)
            t += red[tid * WG + i];
        y[(size_t)split * M + row0 + tid] = t;
    }
#else
    UNROLL_HINT
    for (int r = 0; r < ROWS; r++)
        red[r * WG + tid] = acc[r];
    for (uint off = WG / 2; off > 0; off >>= 1) {
        if (tid < off)
            UNROLL_HINT
            for (int r = 0; r < ROWS; r++)
                red[r * WG + tid] += red[r * WG + tid + off];
        BARRIER();
    }
    if (tid < ROWS && row0 + tid < M)
        y[(size_t)split * M + row0 + tid] = red[tid * WG];
#endif
}

KERNEL_WG(WG) gemv_int4_reduce(GLOBAL const float *RESTRICT part, GLOBAL float *RESTRICT y, uint M, uint splitk)
{
    uint row = GLOBAL_ID(0);
    if (row >= M)
        return;
    float s = 0.0f;
    for (uint i = 0; i < splitk; i++)
        s += part[(size_t)i * M + row];
    y[row] = s;
}

/* Layout 1: one work-item per row walking the whole of K (see
 * gemv_int4_rows.comp for why CPU drivers want it; on NVIDIA GPUs a warp's
 * weight reads are strided by a row, so layout 0 should win: it is in the
 * space so that the tuner, not a guess, says so). */
KERNEL_WG(WG)
gemv_int4_rows(GLOBAL const uint *RESTRICT qs, GLOBAL const ushort *RESTRICT scales,
               GLOBAL const ushort *RESTRICT mins, GLOBAL const float *RESTRICT x, GLOBAL float *RESTRICT y, uint M,
               uint K, uint wpr, uint gpr)
{
    uint row = GLOBAL_ID(0);
    if (row >= M)
        return;
    GLOBAL const uint *q = qs + (size_t)row * wpr;
    float acc = 0.0f;
#if QUANT == 4
    for (uint k = 0; k < K; k++)
        acc += HALF_OF_WORD(q, k / 2, q[k / 2], k & 1) * xat(x, k);
#else
    uint words = (K + EPW - 1) / EPW, wpg = GROUP / EPW;
    for (uint g = 0; g * wpg < words; g++) { /* the last group may be partial */
        float d = 0.0f, xs = 0.0f;
        for (uint w = g * wpg; w < min(words, (g + 1) * wpg); w++) {
            float xsw;
            d += word_dot(q[w], w * EPW, K, x, &xsw);
            xs += xsw;
        }
        acc += LOAD_HALF(scales, (size_t)row * gpr + g) * d;
#if QUANT == 2
        acc += LOAD_HALF(mins, (size_t)row * gpr + g) * xs;
#endif
    }
#endif
    y[row] = acc;
}

/* Layout 2: one work-item owns ROWS consecutive rows and walks their whole
 * K, VEC words per load (VEC 4: one 16-byte load per row and step), with x
 * read once per step for all ROWS rows (uniform across the work-items, so a
 * CPU driver broadcasts it). Within a group it sums codes * x and x apart
 * and applies the zero point and the min once per group:
 * sum (c - z) s x + m x = s (sum c x - z sum x) + m sum x. */
#define XN (VEC * EPW) /* x values per step */

/* VEC words of p from word i (a multiple of VEC) */
INLINE void load_words(GLOBAL const uint *RESTRICT p, size_t i, uint *wv)
{
#if VEC == 4
    uint4 v = LOADU4(i / 4, p);
    wv[0] = v.x;
    wv[1] = v.y;
    wv[2] = v.z;
    wv[3] = v.w;
#elif VEC == 2
    uint2 v = LOADU2(i / 2, p);
    wv[0] = v.x;
    wv[1] = v.y;
#else
    wv[0] = p[i];
#endif
}

/* XN values of x from k0 (a multiple of XN, all < K) */
INLINE void load_x(GLOBAL const float *RESTRICT x, uint k0, float *xv)
{
#if XN >= 4
    UNROLL_HINT
    for (uint i = 0; i < XN / 4; i++) {
        float4 v = LOAD4(k0 / 4 + i, x);
        xv[4 * i] = v.x;
        xv[4 * i + 1] = v.y;
        xv[4 * i + 2] = v.z;
        xv[4 * i + 3] = v.w;
    }
#else
    UNROLL_HINT
    for (uint i = 0; i < XN; i++)
        xv[i] = x[k0 + i];
#endif
#ifdef KILN_TEST_BREAK
    if (k0 == 0)
        xv[0] = x[1];
#endif
}

#if QUANT != 4
/* code j of word w as the dot product multiplies it (int4: 0..15, the zero
 * point comes off per group; q8_0: the signed byte) */
INLINE float elem(uint w, uint j)
{
#if QUANT <= 2
    return (float)((w >> (4 * j)) & 0xFu);
#else
    return (float)((signed char)((w >> (8 * j)) & 0xFFu));
#endif
}
#endif

KERNEL_WG(WG)
gemv_int4_vec(GLOBAL const uint *RESTRICT qs, GLOBAL const ushort *RESTRICT scales, GLOBAL const ushort *RESTRICT mins,
              GLOBAL const float *RESTRICT x, GLOBAL float *RESTRICT y, uint M, uint K, uint wpr, uint gpr)
{
    uint row0 = GLOBAL_ID(0) * ROWS;
    if (row0 >= M)
        return;
    size_t base[ROWS], sbase[ROWS]; /* first word, first scale of each row */
    float acc[ROWS];
    UNROLL_HINT
    for (int r = 0; r < ROWS; r++) {
        uint row = min(row0 + r, M - 1); /* rows past M repeat the last, not stored */
        base[r] = (size_t)row * wpr;
        sbase[r] = (size_t)row * gpr;
        acc[r] = 0.0f;
    }
#if QUANT == 4
    /* f16: no groups; steps of XN elements, then the tail one by one (the
     * weights read as halves: OpenCL 1.2 converts f16 only from memory) */
    uint full = K / XN * XN;
    for (uint k0 = 0; k0 < full; k0 += XN) {
        float xv[XN];
        load_x(x, k0, xv);
        UNROLL_HINT
        for (int r = 0; r < ROWS; r++)
            UNROLL_HINT
            for (uint i = 0; i < XN; i++)
                acc[r] += LOAD_HALF(qs, 2 * base[r] + k0 + i) * xv[i];
    }
    for (uint k = full; k < K; k++)
        UNROLL_HINT
        for (int r = 0; r < ROWS; r++)
            acc[r] += LOAD_HALF(qs, 2 * base[r] + k) * xat(x, k);
#else
    const uint wpg = GROUP / EPW;
    uint full = K / GROUP;
    for (uint g = 0; g <= full; g++) {
        float d[ROWS];
        float xs = 0.0f;
        UNROLL_HINT
        for (int r = 0; r < ROWS; r++)
            d[r] = 0.0f;
        if (g < full) {
            for (uint c = 0; c < wpg; c += VEC) {
                uint w = g * wpg + c;
                float xv[XN];
                load_x(x, w * EPW, xv);
#if QUANT != 3
                UNROLL_HINT
                for (uint i = 0; i < XN; i++)
                    xs += xv[i];
#endif
                UNROLL_HINT
                for (int r = 0; r < ROWS; r++) {
                    uint wv[VEC];
                    load_words(qs, base[r] + w, wv);
                    UNROLL_HINT
                    for (uint i = 0; i < XN; i++)
                        d[r] += elem(wv[i / EPW], i % EPW) * xv[i];
                }
            }
        } else { /* the partial last group (K not a multiple of GROUP), element by element */
            if (full * GROUP >= K)
                break;
            for (uint k = full * GROUP; k < K; k++) {
                float xv = xat(x, k);
                xs += xv;
                UNROLL_HINT
                for (int r = 0; r < ROWS; r++)
                    d[r] += elem(qs[base[r] + k / EPW], k % EPW) * xv;
            }
        }
        UNROLL_HINT
        for (int r = 0; r < ROWS; r++) {
            size_t si = sbase[r] + g;
            float s = LOAD_HALF(scales, si);
#if QUANT == 2
            acc[r] += s * d[r] + LOAD_HALF(mins, si) * xs;
#elif QUANT == 3
            acc[r] += s * d[r];
#else
            acc[r] += s * (d[r] - ZERO * xs);
#endif
        }
    }
#endif
    UNROLL_HINT
    for (int r = 0; r < ROWS; r++)
        if (row0 + r < M)
            y[row0 + r] = acc[r];
}

/* Layout 3: the matrix interleaved in tiles of ILV rows (kernels/quant_ilv.h:
 * word w of row tile*ILV + i at (tile*wpr + w)*ILV + i). A workgroup is
 * ILV x WG/ILV work-items: local x is the row within a tile, local y the
 * tile. At each word step the ILV work-items of a tile read ILV consecutive
 * words (and scales), and the index is affine in the local x id, so a
 * driver that vectorizes across work-items (PoCL) makes it one vector load
 * instead of a gather, and a GPU one coalesced transaction; x is the same
 * for the whole tile. Zero point and min once per group, as in layout 2. */
#ifndef ILV
#define ILV 4
#endif
#if QUANT != 4
KERNEL_WG2(ILV, WG / ILV)
gemv_int4_ilv(GLOBAL const uint *RESTRICT qs, GLOBAL const ushort *RESTRICT scales,
              GLOBAL const ushort *RESTRICT mins, GLOBAL const float *RESTRICT x, GLOBAL float *RESTRICT y, uint M,
              uint K, uint wpr, uint gpr)
{
    uint lane = LOCAL_ID(0);
    /* tiles past the matrix repeat the last one (stores skipped): no
     * early return, so control flow stays uniform across the workgroup,
     * which PoCL needs to run the loops below once for all work-items
     * with the work-item loop inside (vectorized) */
    uint tile = min(GROUP_ID(0) * (WG / ILV) + LOCAL_ID(1), (M + ILV - 1) / ILV - 1);
    /* word w of this lane's row at q[w * ILV], scale g at sp[g * ILV] */
    GLOBAL const uint *q = qs + (size_t)tile * wpr * ILV + lane;
    size_t s0 = (size_t)tile * gpr * ILV + lane;
    const uint wpg = GROUP / EPW;
    uint full = K / GROUP;
    float acc = 0.0f;
    for (uint g = 0; g < full; g++) {
        float d = 0.0f, xs = 0.0f;
        UNROLL_HINT
        for (uint c = 0; c < wpg; c++) {
            uint w = g * wpg + c;
            uint word = q[(size_t)w * ILV];
            UNROLL_HINT
            for (uint j = 0; j < EPW; j++) {
                float xv = xat(x, w * EPW + j);
                d += elem(word, j) * xv;
                xs += xv;
            }
        }
        float s = LOAD_HALF(scales, s0 + (size_t)g * ILV);
#if QUANT == 2
        acc += s * d + LOAD_HALF(mins, s0 + (size_t)g * ILV) * xs;
#elif QUANT == 3
        acc += s * d;
#else
        acc += s * (d - ZERO * xs);
#endif
    }
    if (full * GROUP < K) { /* the partial last group, element by element */
        float d = 0.0f, xs = 0.0f;
        for (uint k = full * GROUP; k < K; k++) {
            float xv = xat(x, k);
            d += elem(q[(size_t)(k / EPW) * ILV], k % EPW) * xv;
            xs += xv;
        }
        float s = LOAD_HALF(scales, s0 + (size_t)full * ILV);
#if QUANT == 2
        acc += s * d + LOAD_HALF(mins, s0 + (size_t)full * ILV) * xs;
#elif QUANT == 3
        acc += s * d;
#else
        acc += s * (d - ZERO * xs);
#endif
    }
    uint row = tile * ILV + lane;
    if (row < M && GROUP_ID(0) * (WG / ILV) + LOCAL_ID(1) == tile)
        y[row] = acc;
}
#endif

/* Layout 4 (OpenCL only): the same tiles, one work-item per tile doing its
 * ILV rows with OpenCL vector types (uintN loads of a tile's word w, floatN
 * sums). PoCL vectorizes across work-items only in loop-free regions, so a
 * per-row work-item with a K loop inside (layouts 1 and 3) runs scalar
 * there; explicit vectors are SIMD whatever its work-group compiler does. */
#if defined(KILN_OPENCL) && QUANT != 4 && (ILV == 4 || ILV == 8 || ILV == 16)
#define VCAT_(a, b) a##b
#define VCAT(a, b) VCAT_(a, b)
#define UV VCAT(uint, ILV)
#define IV VCAT(int, ILV)
#define FV VCAT(float, ILV)
#define VLOADU(i, p) VCAT(vload, ILV)((i), (p))
#define VLOADH(i, p) VCAT(vload_half, ILV)((i), (GLOBAL const half *)(p))
#define VSTORE(v, i, p) VCAT(vstore, ILV)((v), (i), (p))
#define VCONV(v) VCAT(convert_float, ILV)(v)
/* element j of each lane's word as the dot product multiplies it */
#if QUANT <= 2
#define VELEM(wd, j) VCONV(((wd) >> (4u * (j))) & 0xFu)
#else
#define VELEM(wd, j) VCONV(VCAT(as_int, ILV)((wd) << (24u - 8u * (j))) >> 24)
#endif
KERNEL_WG(WG)
gemv_int4_ilvv(GLOBAL const uint *RESTRICT qs, GLOBAL const ushort *RESTRICT scales,
               GLOBAL const ushort *RESTRICT mins, GLOBAL const float *RESTRICT x, GLOBAL float *RESTRICT y, uint M,
               uint K, uint wpr, uint gpr)
{
    uint tiles = (M + ILV - 1) / ILV;
    uint tile = GLOBAL_ID(0);
    if (tile >= tiles)
        return;
    GLOBAL const uint *q = qs + (size_t)tile * wpr * ILV; /* word w of the tile: VLOADU(w, q) */
    size_t s0 = (size_t)tile * gpr;                        /* scales of group g: VLOADH(s0 + g, scales) */
    const uint wpg = GROUP / EPW;
    uint full = K / GROUP;
    FV acc = (FV)(0.0f);
    for (uint g = 0; g < full; g++) {
        FV d = (FV)(0.0f);
        float xs = 0.0f;
        for (uint c = 0; c < wpg; c++) {
            uint w = g * wpg + c;
            UV wd = VLOADU(w, q);
            for (uint j = 0; j < EPW; j++) {
                float xv = xat(x, w * EPW + j);
                d += VELEM(wd, j) * xv;
                xs += xv;
            }
        }
        FV sc = VLOADH(s0 + g, scales);
#if QUANT == 2
        acc += sc * d + VLOADH(s0 + g, mins) * xs;
#elif QUANT == 3
        acc += sc * d;
#else
        acc += sc * (d - ZERO * xs);
#endif
    }
    if (full * GROUP < K) { /* the partial last group, element by element */
        FV d = (FV)(0.0f);
        float xs = 0.0f;
        for (uint k = full * GROUP; k < K; k++) {
            float xv = xat(x, k);
            d += VELEM(VLOADU(k / EPW, q), k % EPW) * xv;
            xs += xv;
        }
        FV sc = VLOADH(s0 + full, scales);
#if QUANT == 2
        acc += sc * d + VLOADH(s0 + full, mins) * xs;
#elif QUANT == 3
        acc += sc * d;
#else
        acc += sc * (d - ZERO * xs);
#endif
    }
    if ((tile + 1) * ILV <= M) {
        VSTORE(acc, tile, y);
    } else {
        float t[ILV];
        VSTORE(acc, 0, t);
        for (uint i = 0; tile * ILV + i < M; i++)
            y[tile * ILV + i] = t[i];
    }
}
#endif
