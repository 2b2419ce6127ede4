/* kernels/gemv_int4/q8mm_cpu.c - the int8-activation matrix kernels on the
 * CPU: gemv_int4 act 1 (one token) and gemm_int4 act 1 (N tokens, TN per
 * pass over each weight tile): y_t = W (q_t * d_t) with each token's x
 * quantized per block of 32 by the plan's first step (kernels/act_q8.h),
 * integer dot products per block, weights row-major or interleaved in tiles
 * of 4/8/16 rows (kernels/quant_ilv.h).
 *
 * The per-row arithmetic contract, the same on every path, layout, token
 * count and kernel (so a gemv and a gemm give a row the same bits, and a
 * request's greedy tokens do not depend on the batch it ran in): per row,
 * token and block b of 32,
 *   i_b = sum_k code_k * q_k - z * n_b          (integers, exact; n_b = sum q)
 *   f   = (float)i_b * d_b;  acc = fma(f, dw, acc);  q4_1: acc = fma(m, s_b, acc)
 * with z = 7 q4f16_1, 8 q4_0, 0 q4_1, and 0 for q8_0 (128 on the vpdpbusd
 * paths, which feed q8 weights unsigned as w + 128: the same i_b); K runs in
 * chunks of Q8_KC blocks, acc starting at 0 in each, y = acc after the
 * first and y = y + acc after the others (q8_step). Paths whose int4 sums
 * come out 16x (vpdpbusd with the high nibbles in place) scale z by 16 and
 * dw by 1/16: powers of two, the same bits. Paths: AVX-512 with VNNI or
 * with vpmaddubsw, AVX2 with AVX-VNNI or vpmaddubsw; on aarch64 i8mm
 * (SMMLA, 2 rows x 2 tokens a multiply), dotprod (SDOT) or Advanced SIMD
 * alone (q8mm_neon.inc); scalar everywhere. The launch's ISA bits pick one
 * (KILN_CPU_ISA forces the lower ones in tests). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu_isa.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#ifdef KILN_ARM64
#include <arm_neon.h>
#endif

#include "kernels/act_q8.h"
#include "kernels/gemv_int4/gemv_int4.h"
#include "kernels/gemv_int4/q8mm_cpu.h"
#include "kernels/quant_ilv.h"
#include "util/f16.h"

typedef struct q8mm_args {
    const uint32_t *qs;
    const uint16_t *sc, *mn;
    const int8_t *xq;      /* token 0's packed x (kernels/act_q8.h) */
    size_t xstride;        /* bytes from one token's packed x to the next */
    int64_t nb4;           /* blocks of the packing */
    float *y;
    size_t ystride;        /* floats from one token's y to the next (M) */
    uint32_t M, K, wpr, gpr, N;
    int quant, group, ilv;
    float z;               /* zero-point code the path subtracts (see above) */
} q8mm_args;

/* Blocks of 32 per K chunk of the gemm tiles (q8mm_avx512.inc run512). */
#define Q8_KC 32

/* One token's packed x. */
typedef struct q8mm_x {
    const int8_t *xe, *xo; /* q8_0 weights: xe is x in element order */
    const float *xd, *xs;
    const int32_t *xn;     /* sum(q) per block */
} q8mm_x;

static inline q8mm_x q8mm_token(const q8mm_args *a, uint32_t t)
{
    const int8_t *b = a->xq + (size_t)t * a->xstride;
    return (q8mm_x){.xe = b, .xo = b + a->nb4 * 16, .xd = (const float *)(const void *)(b + a->nb4 * 32),
                    .xs = (const float *)(const void *)(b + a->nb4 * 36),
                    .xn = (const int32_t *)(const void *)(b + a->nb4 * 40)};
}

/* One row and token's accumulation under the contract (header): the float
 * steps of its blocks in K order, the K chunks' sums added into y. fmaf is
 * one rounding, as the vector fmadds; the tiles do the same with the
 * chunks' sums in y (store, then y + partial). */
typedef struct q8_acc {
    float acc, y;
    int first; /* no chunk ended yet */
} q8_acc;

static inline q8_acc q8_acc_new(void) { return (q8_acc){0.0f, 0.0f, 1}; }

static inline void q8_step(q8_acc *c, uint32_t b, int32_t isum, float xd, float dw, float m, float xs, int q41)
{
    if (b > 0 && b % Q8_KC == 0) {
        c->y = c->first ? c->acc : c->y + c->acc;
        c->first = 0;
        c->acc = 0.0f;
    }
    float f = (float)isum * xd;
    c->acc = fmaf(f, dw, c->acc);
    if (q41)
        c->acc = fmaf(m, xs, c->acc);
}

static inline float q8_acc_end(const q8_acc *c) { return c->first ? c->acc : c->y + c->acc; }

/* Any layout, any format: the contract in plain C. */
static void run_scalar(const q8mm_args *a, uint32_t r_begin, uint32_t r_end)
{
    const int Q8 = a->quant == KILN_Q8_0, q41 = a->quant == KILN_Q4_1;
    const uint32_t wpb = Q8 ? 8 : 4, nb = a->wpr / wpb, R = (uint32_t)a->ilv;
    const int32_t zq = -(int32_t)a->z;
    for (uint32_t r = r_begin; r < r_end && r < a->M; r++) {
        uint32_t t = r / R, i = r % R;
        for (uint32_t tok = 0; tok < a->N; tok++) {
            q8mm_x x = q8mm_token(a, tok);
            q8_acc acc = q8_acc_new();
            for (uint32_t b = 0; b < nb; b++) {
                int32_t sum = 0;
                for (uint32_t w = b * wpb; w < (b + 1) * wpb; w++) {
                    uint32_t word = a->qs[((size_t)t * a->wpr + w) * R + i];
                    for (int j = 0; j < 4; j++) {
                        if (Q8) {
                            sum += (int8_t)(word >> (8 * j)) * x.xe[4 * w + (uint32_t)j];
                        } else {
                            sum += (int32_t)((word >> (8 * j)) & 0xF) * x.xe[4 * w + (uint32_t)j];
                            sum += (int32_t)((word >> (8 * j + 4)) & 0xF) * x.xo[4 * w + (uint32_t)j];
                        }
                    }
                }
                size_t g = ((size_t)t * a->gpr + b * 32 / (uint32_t)a->group) * R + i;
                float m = q41 ? kiln_f16_to_f32(a->mn[g]) : 0.0f;
                q8_step(&acc, b, sum + zq * x.xn[b], x.xd[b], kiln_f16_to_f32(a->sc[g]), m, x.xs[b], q41);
            }
            a->y[(size_t)tok * a->ystride + r] = q8_acc_end(&acc);
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
#define Q8_SFX vnni512
#define Q8_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c"
#define Q8_VNNI 1
#include "kernels/gemv_int4/q8mm_avx512.inc"
#undef Q8_SFX
#undef Q8_TARGET
#undef Q8_VNNI

#define Q8_SFX bw512
#define Q8_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"
#define Q8_VNNI 0
#include "kernels/gemv_int4/q8mm_avx512.inc"
#undef Q8_SFX
#undef Q8_TARGET
#undef Q8_VNNI

#define Q8_SFX vnni256
#define Q8_TARGET "avx2,avxvnni,fma,f16c"
#define Q8_VNNI 1
#include "kernels/gemv_int4/q8mm_avx2.inc"
#undef Q8_SFX
#undef Q8_TARGET
#undef Q8_VNNI

#define Q8_SFX avx2
#define Q8_TARGET "avx2,fma,f16c"
#define Q8_VNNI 0
#include "kernels/gemv_int4/q8mm_avx2.inc"
#undef Q8_SFX
#undef Q8_TARGET
#undef Q8_VNNI
#endif

#ifdef KILN_ARM64
/* Row r's block b: v[0], v[1] are the low and high nibbles of its 4 int4
 * words (they meet xe and xo), or its 8 q8 words as two halves (they meet
 * xe's 32 bytes). Row-major rows load directly; a tile's row is gathered a
 * word at a time. */
static inline void q8mm_neon_block(const q8mm_args *a, uint32_t r, uint32_t b, int8x16_t v[2])
{
    const int Q8 = a->quant == KILN_Q8_0;
    const uint32_t wpb = Q8 ? 8 : 4, R = (uint32_t)a->ilv;
    const uint32_t *base = a->qs + (size_t)(r / R) * a->wpr * R + r % R + (size_t)b * wpb * R;
    uint32x4_t w[2] = {vdupq_n_u32(0), vdupq_n_u32(0)};
    for (uint32_t h = 0; h < (Q8 ? 2u : 1u); h++) {
        if (R == 1) {
            w[h] = vld1q_u32(base + 4 * h);
        } else {
            const uint32_t *p = base + (size_t)4 * h * R;
            w[h] = vld1q_lane_u32(p, w[h], 0);
            w[h] = vld1q_lane_u32(p + R, w[h], 1);
            w[h] = vld1q_lane_u32(p + 2 * R, w[h], 2);
            w[h] = vld1q_lane_u32(p + 3 * R, w[h], 3);
        }
    }
    if (Q8) {
        v[0] = vreinterpretq_s8_u32(w[0]);
        v[1] = vreinterpretq_s8_u32(w[1]);
    } else {
        uint8x16_t u = vreinterpretq_u8_u32(w[0]);
        v[0] = vreinterpretq_s8_u8(vandq_u8(u, vdupq_n_u8(0x0F)));
        v[1] = vreinterpretq_s8_u8(vshrq_n_u8(u, 4));
    }
}

#define Q8N_SFX dotprod
#define Q8N_ATTR KILN_TARGET_DOTPROD
#define Q8N_DOTPROD 1
#include "kernels/gemv_int4/q8mm_neon.inc"
#undef Q8N_SFX
#undef Q8N_ATTR
#undef Q8N_DOTPROD

#define Q8N_SFX neon
#define Q8N_ATTR
#define Q8N_DOTPROD 0
#include "kernels/gemv_int4/q8mm_neon.inc"
#undef Q8N_SFX
#undef Q8N_ATTR
#undef Q8N_DOTPROD

/* i8mm: SMMLA multiplies a 2x8 by an 8x2 int8 matrix into 2x2 int32, so
 * rows r, r+1 (8 bytes each, from one 16-byte half of their blocks) meet
 * tokens j, j+1 in one instruction: acc = [r.j, r.j+1, r+1.j, r+1.j+1].
 * A lone last row or token is paired with itself and its copy dropped. Up
 * to 4 tokens (TN) share each weight load; the float steps are the
 * contract's (q8_step), so the bits are the scalar path's. */
KILN_TARGET_I8MM static void q8mm_i8mm_pair(const q8mm_args *a, uint32_t r, uint32_t two, uint32_t t0, uint32_t tn)
{
    const int Q8 = a->quant == KILN_Q8_0;
    const uint32_t wpb = Q8 ? 8 : 4, nb = a->wpr / wpb, R = (uint32_t)a->ilv;
    const int q41 = a->quant == KILN_Q4_1;
    const int32_t zq = -(int32_t)a->z;
    q8mm_x x[4];
    q8_acc acc[2][4];
    for (uint32_t k = 0; k < 2; k++)
        for (uint32_t j = 0; j < 4; j++)
            acc[k][j] = q8_acc_new();
    for (uint32_t j = 0; j < 4; j++)
        x[j] = q8mm_token(a, t0 + (j < tn ? j : tn - 1));
    for (uint32_t b = 0; b < nb; b++) {
        int8x16_t v0[2], v1[2];
        q8mm_neon_block(a, r, b, v0);
        if (two)
            q8mm_neon_block(a, r + 1, b, v1);
        else
            v1[0] = v0[0], v1[1] = v0[1];
        int64x2_t wl[2], wh[2]; /* half h: [r bytes 0-7 | r+1 bytes 0-7], [.. bytes 8-15 ..] */
        for (int h = 0; h < 2; h++) {
            wl[h] = vzip1q_s64(vreinterpretq_s64_s8(v0[h]), vreinterpretq_s64_s8(v1[h]));
            wh[h] = vzip2q_s64(vreinterpretq_s64_s8(v0[h]), vreinterpretq_s64_s8(v1[h]));
        }
        float dw[2] = {0, 0}, m[2] = {0, 0};
        for (uint32_t k = 0; k < 1 + two; k++) {
            uint32_t rk = r + k;
            size_t g = ((size_t)(rk / R) * a->gpr + b * 32 / (uint32_t)a->group) * R + rk % R;
            dw[k] = kiln_f16_to_f32(a->sc[g]);
            m[k] = q41 ? kiln_f16_to_f32(a->mn[g]) : 0.0f;
        }
        for (uint32_t j = 0; j < tn; j += 2) {
            int32x4_t s = vdupq_n_s32(0);
            for (int h = 0; h < 2; h++) {
                const int8_t *pj = Q8 ? x[j].xe + 32 * b + 16 * h : (h ? x[j].xo : x[j].xe) + 16 * b;
                const int8_t *pk = Q8 ? x[j + 1].xe + 32 * b + 16 * h : (h ? x[j + 1].xo : x[j + 1].xe) + 16 * b;
                int64x2_t xj = vreinterpretq_s64_s8(vld1q_s8(pj)), xk = vreinterpretq_s64_s8(vld1q_s8(pk));
                s = vmmlaq_s32(s, vreinterpretq_s8_s64(wl[h]), vreinterpretq_s8_s64(vzip1q_s64(xj, xk)));
                s = vmmlaq_s32(s, vreinterpretq_s8_s64(wh[h]), vreinterpretq_s8_s64(vzip2q_s64(xj, xk)));
            }
            int32_t sum[4];
            vst1q_s32(sum, s);
            for (uint32_t k = 0; k < 1 + two; k++)
                for (uint32_t q = 0; q < 2 && j + q < tn; q++)
                    q8_step(&acc[k][j + q], b, sum[2 * k + q] + zq * x[j + q].xn[b], x[j + q].xd[b], dw[k], m[k],
                            x[j + q].xs[b], q41);
        }
    }
    for (uint32_t k = 0; k < 1 + two; k++)
        for (uint32_t j = 0; j < tn; j++)
            a->y[(size_t)(t0 + j) * a->ystride + r + k] = q8_acc_end(&acc[k][j]);
}

KILN_TARGET_I8MM static void q8mm_i8mm_run(const q8mm_args *a, uint32_t r_begin, uint32_t r_end, uint32_t tn)
{
    uint32_t pass = tn < 4 ? tn : 4, end = r_end < a->M ? r_end : a->M;
    for (uint32_t r = r_begin; r < end; r += 2)
        for (uint32_t t0 = 0; t0 < a->N; t0 += pass)
            q8mm_i8mm_pair(a, r, r + 1 < end, t0, a->N - t0 < pass ? a->N - t0 : pass);
}
#endif

/* Rows [r_begin, r_end) of a (in tiles of a->ilv) x every token, with the
 * best path the ISA bits allow; tn caps the tokens per pass. */
static void q8mm_run(q8mm_args *a, unsigned isa, uint32_t r_begin, uint32_t r_end, uint32_t tn)
{
    int vnni = (isa & KILN_ISA_AVX512) ? !!(isa & KILN_ISA_AVX512_VNNI) : !!(isa & KILN_ISA_AVX_VNNI);
    int q8 = a->quant == KILN_Q8_0;
    a->z = a->quant == KILN_Q4F16_1 ? 7.0f : a->quant == KILN_Q4_0 ? 8.0f : 0.0f;
    if (q8 && vnni && (isa & KILN_ISA_AVX2))
        a->z = 128.0f; /* q8 weights fed unsigned as w + 128 */
    uint32_t m_pad = (uint32_t)kiln_ilv_rows(a->M, a->ilv);
    if (r_end > m_pad)
        r_end = m_pad;
    if (tn < 1)
        tn = 1;
#if defined(__x86_64__) || defined(__i386__)
    if (isa & KILN_ISA_AVX512) {
        if (vnni)
            run512_vnni512(a, r_begin, r_end, tn);
        else
            run512_bw512(a, r_begin, r_end, tn);
        return;
    }
    if (isa & KILN_ISA_AVX2) {
        if (vnni)
            run256_vnni256(a, r_begin, r_end, tn);
        else
            run256_avx2(a, r_begin, r_end, tn);
        return;
    }
#endif
#ifdef KILN_ARM64
    if (isa & KILN_ISA_I8MM) {
        q8mm_i8mm_run(a, r_begin, r_end, tn);
        return;
    }
    if (isa & KILN_ISA_DOTPROD) {
        run_dotprod(a, r_begin, r_end, tn);
        return;
    }
    if (isa & KILN_ISA_NEON) {
        run_neon(a, r_begin, r_end, tn);
        return;
    }
#endif
    (void)vnni;
    run_scalar(a, r_begin, r_end);
}

static q8mm_args args_of(const kiln_cpu_launch *l, uint32_t n_tokens)
{
    const kiln_define *d = l->defines;
    int nd = l->n_defines;
    uint32_t M = l->arg[5].u32, K = l->arg[6].u32;
    return (q8mm_args){
        .qs = l->ptr[0], .sc = l->ptr[1], .mn = l->ptr[2], .xq = l->ptr[3], .y = l->ptr[4],
        .xstride = kiln_xq_bytes(K), .nb4 = kiln_xq_nb4(K), .ystride = M,
        .M = M, .K = K, .wpr = l->arg[7].u32, .gpr = l->arg[8].u32, .N = n_tokens,
        .quant = (int)kiln_define_get(d, nd, "QUANT", 0), .group = (int)kiln_define_get(d, nd, "GROUP", 32),
        .ilv = (int)kiln_define_get(d, nd, "ILV", 1),
    };
}

void kiln_gemv_q8_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    q8mm_args a = args_of(l, 1);
    uint32_t rows = (uint32_t)kiln_define_get(l->defines, l->n_defines, "ROWS", 1);
    q8mm_run(&a, l->isa, wg_begin * rows, wg_end * rows, 1);
}

/* A matrix in a narrower layout (row-major, or tiles of 4 or 8 rows) in a
 * gemm: each run of up to 16 rows is packed into one 16-row tile first (as
 * BLAS libraries pack panels), so every weight load serves TN tokens through
 * the 16-row tile path, the fastest (q8mm_avx512.inc tile16_g32). Without
 * it the row-major path spends ~4x the non-dot work per multiply-add and
 * made a prefill 2-4x slower wherever gemv's tuning had picked the
 * row-major layout (llama-1b ffn_down, 2048x8192 n64: 14.2 ms vs 3.4 ms for
 * a tiled matrix of 4x the rows); tiles of 8 broadcast each x word to two
 * lanes with a permute per token and load. The pack copies 16 x
 * words_per_row words (whole source tiles of ILV words at a time), amortized
 * over the N tokens. */
/* n = 1, 4 or 8 elements of size sz: constant-size copies the compiler
 * inlines (a memcpy of a run-time size is a libc call per word row) */
static inline void copy_run(void *dst, const void *src, uint32_t n, size_t sz)
{
    if (n == 8)
        memcpy(dst, src, 8 * sz);
    else if (n == 4)
        memcpy(dst, src, 4 * sz);
    else
        memcpy(dst, src, sz);
}

static int gemm_packed(q8mm_args *a, unsigned isa, uint32_t r_begin, uint32_t r_end, uint32_t tn)
{
    const uint32_t R = 16, S = (uint32_t)a->ilv; /* S: the source layout's tile rows (1, 4 or 8) */
    size_t nq = (size_t)R * a->wpr, ns = (size_t)R * (a->gpr ? a->gpr : 1);
    uint32_t *qs = malloc(sizeof *qs * nq);
    uint16_t *sc = malloc(sizeof *sc * ns), *mn = malloc(sizeof *mn * ns);
    if (!qs || !sc || !mn) {
        free(qs);
        free(sc);
        free(mn);
        return -1;
    }
    const uint32_t m_src = (uint32_t)kiln_ilv_rows(a->M, (int)S); /* rows the source holds (padded to S) */
    for (uint32_t r0 = r_begin; r0 < r_end && r0 < a->M; r0 += R) {
        uint32_t n = a->M - r0 < R ? a->M - r0 : R;
        if (r_end - r0 < n)
            n = r_end - r0;
        memset(qs, 0, sizeof *qs * nq);
        memset(sc, 0, sizeof *sc * ns);
        memset(mn, 0, sizeof *mn * ns);
        /* source tile j of the panel holds rows r0 + j*S .. + S-1; r0 is a
         * multiple of S (tasks own whole tiles) */
        for (uint32_t j = 0; j * S < n && r0 + j * S < m_src; j++) {
            uint32_t tile = (r0 + j * S) / S;
            const uint32_t *src = a->qs + (size_t)tile * a->wpr * S;
            const uint16_t *ssc = a->sc + (size_t)tile * a->gpr * S, *smn = a->mn + (size_t)tile * a->gpr * S;
            for (uint32_t w = 0; w < a->wpr; w++)
                copy_run(qs + (size_t)w * R + j * S, src + (size_t)w * S, S, sizeof *qs);
            for (uint32_t g = 0; g < a->gpr; g++) {
                copy_run(sc + (size_t)g * R + j * S, ssc + (size_t)g * S, S, sizeof *sc);
                if (a->quant == KILN_Q4_1)
                    copy_run(mn + (size_t)g * R + j * S, smn + (size_t)g * S, S, sizeof *mn);
            }
        }
        q8mm_args t = *a;
        t.qs = qs;
        t.sc = sc;
        t.mn = mn;
        t.ilv = (int)R;
        t.M = n;
        t.y = a->y + r0;
        q8mm_run(&t, isa, 0, R, tn);
    }
    free(qs);
    free(sc);
    free(mn);
    return 0;
}

void kiln_gemm_q8_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end)
{
    q8mm_args a = args_of(l, l->arg[9].u32);
    uint32_t rows = (uint32_t)kiln_define_get(l->defines, l->n_defines, "ROWS", 1);
    uint32_t tn = (uint32_t)kiln_define_get(l->defines, l->n_defines, "TN", 4);
    /* packing pays when a task owns at least one whole 16-row panel and the
     * layout is narrower than the widest tile path (16 rows with AVX-512;
     * AVX2's tiles are 8 rows, so 8 stays as it is there) */
    int narrow = a.ilv < ((l->isa & KILN_ISA_AVX512) ? 16 : 8);
    if (narrow && a.N > 1 && (l->isa & KILN_ISA_AVX2) && (wg_end - wg_begin) * rows >= 16 &&
        gemm_packed(&a, l->isa, wg_begin * rows, wg_end * rows, tn) == 0)
        return;
    q8mm_run(&a, l->isa, wg_begin * rows, wg_end * rows, tn);
}
