/* kernels/gemv_int4/gemv_int4.c - y = W x with W group-quantized along K.
 *
 * Slots: 0 qs (u32 words, kernels/quant.h layout), 1 scales (f16), 2 mins
 * (f16; q4_1 only, a 4-byte dummy otherwise), 3 x (f32[K]), 4 y (f32[M]).
 * Shape: m (rows), k, quant (q4f16_1, q4_0, q4_1, q8_0, f16), group.
 * Scalars: M, K, words_per_row, groups_per_row. Defines: QUANT, GROUP and
 * the schedule (WG, ROWS, VEC, UNROLL, SPLITK, REDUCE).
 *
 * GPU schedule: a workgroup of WG threads owns ROWS rows; its threads stride
 * over the row's words VEC at a time (a VEC never straddles a group, so one
 * scale serves it), UNROLL iterations per loop trip, and reduce their
 * partial sums through shared memory (REDUCE 0) or subgroup adds (REDUCE 1).
 * SPLITK > 1 splits K over SPLITK workgroups writing partial sums to a
 * scratch buffer [SPLITK][M], summed by a second step (gemv_int4_reduce).
 * Interleaved weights (ILV 4/8/16, kernels/quant_ilv.h; the engine repacks
 * a matrix to its winner's layout at load): on the cpu the int8 path (act
 * 1); on gpu backends layout 3 (a workgroup of ILV x WG/ILV invocations,
 * invocation i of a tile owns its row i: consecutive invocations read
 * consecutive words) and layout 4 (OpenCL: a work-item per tile, vector
 * types; PoCL's default). gemm_int4 and embed_gather read the same layout.
 * CPU schedule: ROWS rows per task; SIMD (AVX-512 / AVX2 / scalar) inside.
 *
 * Test hooks (tests only): KILN_TEST_BREAK reads x[1] in place of x[0];
 * KILN_TEST_CRASH / KILN_TEST_HANG make the cpu entry crash / spin. */
#include "kernels/gemv_int4/gemv_int4.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/act_q8.h"
#include "kernels/desc.h"
#include "kernels/quant_ilv.h"
#include "util/f16.h"

static const kiln_param params[] = {
    {"wg", "WG", "threads per workgroup (gpu)", 5, {32, 64, 128, 256, 512}, 64},
    {"rows", "ROWS", "rows per workgroup (cpu: rows per task, the work split's grain)", 6, {1, 2, 4, 8, 16, 32}, 1},
    {"vec", "VEC", "u32 words loaded per thread per step (gpu)", 3, {1, 2, 4}, 1},
    {"unroll", "UNROLL", "loop unroll factor (gpu)", 3, {1, 2, 4}, 1},
    {"splitk", "SPLITK", "workgroups sharing one row's K, + a reduce step (gpu)", 4, {1, 2, 4, 8}, 1},
    {"reduce", "REDUCE", "0 shared-memory tree, 1 subgroup adds (gpu)", 2, {0, 1}, 0},
    {"layout", "LAYOUT",
     "0 a workgroup shares each row's K (gpu), 1 one invocation per row with x uniform across the subgroup "
     "(drivers that run invocations in CPU SIMD lanes: lavapipe, PoCL), 2 one invocation per `rows` rows, "
     "`vec` words per load, x read once per step for all its rows, 3 rows interleaved in tiles of `ilv` (gpu): "
     "invocation i of a tile owns its row i, so consecutive invocations read consecutive words, 4 the same "
     "tiles, one work-item per tile with OpenCL vector types (OpenCL only: PoCL runs a K loop per work-item "
     "scalar)",
     5, {0, 1, 2, 3, 4}, 0},
    /* One thread's int4 weight stream ran at ~5 GB/s against 14 GB/s of plain
     * reads on the Xeon VM of bench/results (latency-bound). Software
     * prefetch measured as a tie there (tune, interleaved re-measure), so it
     * is off by default and left to the tuner per host. */
    {"prefetch", "PREFETCH", "cpu: software prefetch this many bytes ahead in a row's weights (0: off)", 4,
     {0, 256, 512, 1024}, 0},
    /* The two below change the data, not only the code: configs with
     * different values get their own problem (data_class) and the engine
     * repacks each matrix to its winner's layout at load. */
    {"act", "ACT",
     "activations: 0 f32, 1 int8 per block of 32 + integer dot products (cpu; needs a shape with act=q8, "
     "i.e. --precision fast)",
     2, {0, 1}, 0},
    {"ilv", "ILV",
     "weight layout: rows interleaved word by word in tiles of 1 (row-major), 4, 8 or 16 (cpu: act 1; gpu: layout 3)",
     4, {1, 4, 8, 16}, 1},
    {"xsg", "XSG",
     "layout 2 on Vulkan: x loaded once per subgroup of this many lanes (the device's fixed subgroup size) and "
     "shared by subgroupBroadcast (0: every invocation loads x itself)",
     4, {0, 4, 8, 16}, 0},
    {"w64", "W64",
     "layout 2 on Vulkan: weight words loaded as 64-bit pairs (lavapipe loads lane by lane, one scalar per "
     "component: half the loads); vec 2 or 4, the device must have shaderInt64",
     2, {0, 1}, 0},
};
enum { P_WG, P_ROWS, P_VEC, P_UNROLL, P_SPLITK, P_REDUCE, P_LAYOUT, P_PREFETCH, P_ACT, P_ILV, P_XSG, P_W64, N_PARAMS };

int kiln_gemv_elems_per_word(int quant)
{
    return kiln_quant_is_int4(quant) ? 8 : quant == KILN_Q8_0 ? 4 : quant == KILN_F16 ? 2 : 1;
}

static int shape_ok(const kiln_shape *s, char *why, size_t n)
{
    if (s->quant == KILN_F32 || s->quant < 0 || s->quant >= KILN_QUANT_COUNT) {
        snprintf(why, n, "format %s is not a gemv_int4 weight format", kiln_quant_name(s->quant));
        return 0;
    }
    if (s->quant != KILN_F16 && s->group != 32 && s->group != 128) {
        snprintf(why, n, "group %d (32 or 128)", s->group);
        return 0;
    }
    return 1;
}

/* The GPU constraints gemv's and gemm's tiled layout share: `shared` bytes
 * of shared memory, loads of vec words inside a group (one scale each), and
 * the subgroup reduction (the .cl sources, OpenCL C 1.2, have none). */
int kiln_wx_tile_ok(const kiln_shape *s, const kiln_fingerprint *fp, size_t shared, int vec, int wg, int reduce,
                    char *why, size_t n)
{
    if (fp->local_mem_bytes && shared > fp->local_mem_bytes) {
        snprintf(why, n, "shared memory %zu > %llu", shared, (unsigned long long)fp->local_mem_bytes);
        return 0;
    }
    if (s->quant != KILN_F16) {
        int words_per_group = s->group / kiln_gemv_elems_per_word(s->quant);
        if (words_per_group % vec) {
            snprintf(why, n, "vec %d must divide the %d words of a group", vec, words_per_group);
            return 0;
        }
    }
    if (reduce) {
        if (!fp->has_subgroup_ops || !fp->subgroup_size || wg % (int)fp->subgroup_size) {
            snprintf(why, n, "subgroup reduction needs subgroup ops and wg a multiple of %u", fp->subgroup_size);
            return 0;
        }
        if (fp->backend == KILN_OPENCL) {
            snprintf(why, n, "subgroup reduction is not built for OpenCL (1.2 sources)");
            return 0;
        }
    }
    return 1;
}

static int check(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n)
{
    int wg = c->v[P_WG], rows = c->v[P_ROWS], vec = c->v[P_VEC], splitk = c->v[P_SPLITK], reduce = c->v[P_REDUCE];
    int act = c->v[P_ACT], ilv = c->v[P_ILV];
    if (s->ilv > 1 ? ilv != s->ilv : s->ilv == 1 && ilv != 1) {
        snprintf(why, n, "ilv %d: the matrix is in layout %d", ilv, s->ilv);
        return 0;
    }
    if (act && s->act != KILN_ACT_Q8) {
        snprintf(why, n, "act 1 quantizes x: the shape allows f32 activations only (act=q8 allows it)");
        return 0;
    }
    if (act && s->quant == KILN_F16) {
        snprintf(why, n, "act 1 needs int4 or q8_0 weights");
        return 0;
    }
    if (act && fp->no_int8) {
        snprintf(why, n, "act 1 needs int8 dot products: the device's limits have none");
        return 0;
    }
    if (fp->backend == KILN_CPU) {
        for (int i = 0; i < N_PARAMS; i++)
            if (i != P_ROWS && i != P_PREFETCH && i != P_ACT && i != P_ILV && c->v[i] != params[i].def) {
                snprintf(why, n, "%s applies to gpu backends only", params[i].name);
                return 0;
            }
        if (ilv > 1 && !act) {
            snprintf(why, n, "ilv %d: interleaved layouts run on the int8 path (act 1)", ilv);
            return 0;
        }
        if (c->v[P_ROWS] % ilv) {
            snprintf(why, n, "rows %d must be a multiple of ilv %d (a task owns whole tiles)", c->v[P_ROWS], ilv);
            return 0;
        }
        if (act && c->v[P_PREFETCH]) {
            snprintf(why, n, "prefetch applies to the f32 path (act 0)");
            return 0;
        }
        return 1;
    }
    if (c->v[P_PREFETCH] != params[P_PREFETCH].def) {
        snprintf(why, n, "prefetch applies to the cpu backend only");
        return 0;
    }
    if (act) {
        snprintf(why, n, "act 1 is cpu-only (the gpu sources read f32 x)");
        return 0;
    }
    if ((ilv != 1) != (c->v[P_LAYOUT] >= 3)) {
        snprintf(why, n, "ilv %d with layout %d: on gpu backends layouts 3 and 4 read the interleaved tiles (ilv 4, 8, "
                 "16), the others row-major weights", ilv, c->v[P_LAYOUT]);
        return 0;
    }
    if ((uint32_t)wg > fp->max_workgroup) {
        snprintf(why, n, "wg %d > device max %u", wg, fp->max_workgroup);
        return 0;
    }
    if (c->v[P_LAYOUT] == 4 && fp->backend != KILN_OPENCL) {
        snprintf(why, n, "layout 4 is built for OpenCL only (OpenCL vector types)");
        return 0;
    }
    if (c->v[P_LAYOUT] >= 3) {
        /* layout 3: a workgroup is ilv x wg/ilv invocations; 4: wg tiles.
         * Only wg and ilv are choices */
        for (int i = P_ROWS; i < N_PARAMS; i++)
            if (i != P_LAYOUT && i != P_ILV && c->v[i] != params[i].def) {
                snprintf(why, n, "%s does not apply to layouts 3 and 4 (tiles of ilv rows)", params[i].name);
                return 0;
            }
        if (s->quant == KILN_F16) {
            snprintf(why, n, "layouts 3 and 4: f16 matrices stay row-major (the engine does not interleave them)");
            return 0;
        }
        if (wg % ilv) {
            snprintf(why, n, "wg %d must be a multiple of ilv %d", wg, ilv);
            return 0;
        }
        return 1;
    }
    int xsg = c->v[P_XSG];
    if (xsg && c->v[P_LAYOUT] != 2) {
        snprintf(why, n, "xsg applies to layout 2 only");
        return 0;
    }
    if (xsg) {
        int64_t epw = kiln_gemv_elems_per_word(s->quant);
        if (fp->backend != KILN_VULKAN) {
            snprintf(why, n, "xsg is built for Vulkan only (OpenCL 1.2 has no subgroups)");
            return 0;
        }
        if (!fp->has_subgroup_ops || fp->subgroup_min != (uint32_t)xsg || fp->subgroup_max != (uint32_t)xsg) {
            snprintf(why, n, "xsg %d needs a fixed subgroup size of %d (device: %u-%u)", xsg, xsg, fp->subgroup_min,
                     fp->subgroup_max);
            return 0;
        }
        if (wg % xsg || s->quant == KILN_F16 || s->group % (4 * xsg) || vec * epw > 4 * xsg) {
            snprintf(why, n, "xsg %d needs wg a multiple of it, an int4 or q8_0 matrix whose group is a multiple of "
                     "%d, and vec * elements per word <= %d", xsg, 4 * xsg, 4 * xsg);
            return 0;
        }
    }
    if (c->v[P_W64]) {
        if (c->v[P_LAYOUT] != 2 || fp->backend != KILN_VULKAN || !fp->has_int64 || vec < 2) {
            snprintf(why, n, "w64 needs layout 2 on Vulkan with shaderInt64 and vec 2 or 4");
            return 0;
        }
    }
    if (c->v[P_LAYOUT] == 2) {
        /* one invocation per `rows` rows: wg, rows and vec are the choices */
        for (int i = P_UNROLL; i <= P_REDUCE; i++)
            if (c->v[i] != params[i].def) {
                snprintf(why, n, "%s does not apply to layout 2 (an invocation walks whole rows)", params[i].name);
                return 0;
            }
        if (c->v[P_ROWS] > 8) {
            snprintf(why, n, "rows %d: layout 2 keeps at most 8 rows per invocation (registers)", c->v[P_ROWS]);
            return 0;
        }
        /* vector loads stay inside a group (one scale each) and aligned:
         * words_per_row a multiple of vec (int4 and q8_0 rows are whole
         * groups; f16 rows are ceil(K/2) words) */
        int64_t epw = kiln_gemv_elems_per_word(s->quant);
        int64_t unit = s->quant == KILN_F16 ? (s->k + 1) / 2 : s->group / epw;
        if (unit % vec) {
            snprintf(why, n, "vec %d must divide the %lld words of a %s", vec, (long long)unit,
                     s->quant == KILN_F16 ? "row" : "group");
            return 0;
        }
        return 1;
    }
    if (c->v[P_LAYOUT] == 1) {
        /* one invocation per row: only the workgroup size is a choice */
        for (int i = P_ROWS; i <= P_REDUCE; i++)
            if (c->v[i] != params[i].def) {
                snprintf(why, n, "%s does not apply to layout 1 (one invocation per row)", params[i].name);
                return 0;
            }
        return 1;
    }
    if (!kiln_wx_tile_ok(s, fp, (size_t)rows * (size_t)wg * 4, vec, wg, reduce, why, n))
        return 0;
    if (splitk > 1) {
        int64_t epw = kiln_gemv_elems_per_word(s->quant);
        int64_t words = (s->k + epw - 1) / epw;
        if (words < (int64_t)splitk * wg * vec / 4) {
            snprintf(why, n, "splitk %d leaves less than a quarter step per thread for K=%lld", splitk,
                     (long long)s->k);
            return 0;
        }
    }
    return 1;
}

#define S(M, K, Q, G) {.m = (M), .k = (K), .quant = (Q), .group = (G)}
#define S8(M, K, Q, G) {.m = (M), .k = (K), .quant = (Q), .group = (G), .act = KILN_ACT_Q8}
static const kiln_shape tune_shapes[] = {
    S(4096, 4096, KILN_Q4F16_1, 32),
    S(11008, 4096, KILN_Q4F16_1, 32),
    S(4096, 11008, KILN_Q4F16_1, 32),
    S(12288, 4096, KILN_Q4F16_1, 32),
    S8(4096, 4096, KILN_Q4F16_1, 32),
    S8(11008, 4096, KILN_Q4F16_1, 32),
    S8(4096, 11008, KILN_Q4F16_1, 32),
    S8(12288, 4096, KILN_Q4F16_1, 32),
};
static const kiln_shape check_shapes[] = {
    /* int8 activations: every weight format, the Llama and SmolLM2
     * shapes, and odd ones (K not a multiple of the group, M not a
     * multiple of any tile) */
    S8(4096, 4096, KILN_Q4F16_1, 32),
    S8(4096, 4096, KILN_Q4_0, 128),
    S8(576, 576, KILN_Q4_1, 32),
    S8(1536, 576, KILN_Q8_0, 32),
    S8(576, 1536, KILN_Q4_0, 32),
    S8(1001, 4000, KILN_Q4F16_1, 128),
    S8(333, 136, KILN_Q4_0, 32),
    S8(77, 200, KILN_Q4_1, 32),
    S8(129, 1000, KILN_Q8_0, 32),
    /* real Llama shapes: the big ones in the formats a tuned engine uses */
    S(4096, 4096, KILN_Q4F16_1, 32),
    S(4096, 4096, KILN_Q4F16_1, 128),
    S(11008, 4096, KILN_Q4F16_1, 32),
    S(4096, 11008, KILN_Q4_0, 32),
    /* SmolLM2-135M shapes in every format */
    S(576, 576, KILN_Q4F16_1, 32),
    S(1536, 576, KILN_Q4F16_1, 32),
    S(576, 576, KILN_Q4_0, 32),
    S(1536, 576, KILN_Q4_0, 32),
    S(576, 576, KILN_Q4_1, 32),
    S(1536, 576, KILN_Q4_1, 32),
    S(576, 576, KILN_Q8_0, 32),
    S(1536, 576, KILN_Q8_0, 32),
    S(576, 576, KILN_F16, 32),
    S(1536, 576, KILN_F16, 32),
    S(576, 1536, KILN_Q4_1, 32),
    S(576, 1536, KILN_Q4F16_1, 128),
    /* odd: K not a multiple of the group, M not a multiple of rows */
    S(1001, 4000, KILN_Q4F16_1, 128),
    S(333, 136, KILN_Q4_0, 32),
    S(77, 200, KILN_Q4_1, 32),
    S(129, 1000, KILN_Q8_0, 32),
    S(3, 37, KILN_F16, 0),
};
static const kiln_shape quick_shapes[] = {
    S(64, 256, KILN_Q4F16_1, 32),
    S(96, 512, KILN_Q4F16_1, 128),
    S(37, 200, KILN_Q4_0, 32),
    S(50, 136, KILN_Q4_1, 32),
    S(33, 100, KILN_Q8_0, 32),
    S(19, 77, KILN_F16, 0),
    S(576, 576, KILN_Q4_1, 32),
    S8(64, 256, KILN_Q4F16_1, 32),
    S8(37, 200, KILN_Q4_0, 32),
    S8(50, 136, KILN_Q4_1, 128),
    S8(33, 100, KILN_Q8_0, 32),
};
#undef S
#undef S8

/* f32-activation shapes keep the keys they always had; a shape that allows
 * int8 activations (the engine's --precision fast) is another key, so the
 * database keeps one winner per precision and a strict lookup never meets
 * an int8 winner. */
static void shape_key(const kiln_shape *s, char *buf, size_t n)
{
    const char *act = s->act == KILN_ACT_Q8 ? ".xq8" : "";
    if (s->quant == KILN_F16)
        snprintf(buf, n, "m%lld.k%lld.%s%s", (long long)s->m, (long long)s->k, kiln_quant_name(s->quant), act);
    else
        snprintf(buf, n, "m%lld.k%lld.%s.g%d%s", (long long)s->m, (long long)s->k, kiln_quant_name(s->quant),
                 s->group, act);
}

/* Budget 2e-4 of rms(y): f32 accumulation in another order than the
 * double reference errs by ~sqrt(K) * 2^-24 relative (~1e-5 at K=11008).
 * One wrong x index changes y[r] by about |w||x|, i.e. by ~rms(y)/sqrt(K)
 * (>= 1e-2 for K <= 11008): 50x over the budget. The act-1 reference
 * rounds x exactly as the kernel does, so the same budget holds. gemm:
 * every Y[n][m] is one such dot product; N adds only more of them (the max
 * over N*M grows like sqrt(log(N*M)), still < 1e-4). */
const kiln_slot kiln_wx_slots[5] = {
    {"qs", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"scales", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"mins", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"x", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"y", KILN_OUT, KILN_CMP_F32, 2e-4, 0},
};

void kiln_wx_sizes(const kiln_shape *s, int ilv, int64_t tokens, kiln_slot *slot)
{
    int epw = kiln_gemv_elems_per_word(s->quant);
    int group = s->quant == KILN_F16 ? 0 : s->group;
    int64_t cols_pad = group ? (s->k + group - 1) / group * group : s->k;
    int64_t rows = kiln_ilv_rows(s->m, ilv); /* padded to the layout's tiles */
    size_t sb = (size_t)(rows * (group ? cols_pad / group : 0)) * 2;
    slot[0].bytes = (size_t)(rows * ((cols_pad + epw - 1) / epw)) * 4;
    slot[1].bytes = sb ? sb : 4;
    slot[2].bytes = s->quant == KILN_Q4_1 ? sb : 4;
    slot[3].bytes = (size_t)tokens * (size_t)s->k * 4;
    slot[4].bytes = (size_t)tokens * (size_t)s->m * 4;
}

int kiln_wx_weights(kiln_problem *p, const kiln_shape *s, int ilv, kiln_rng *rng, int dummy, kiln_qmatrix *q,
                    kiln_err *e)
{
    int rc = kiln_qmatrix_alloc(q, s->quant, s->group, s->m, s->k, e);
    if (rc)
        return rc;
    kiln_qmatrix_random(q, rng);
    kiln_ilv_arrays il = {0};
    if (ilv > 1 && (rc = kiln_ilv_pack(q, ilv, &il, e))) {
        kiln_qmatrix_free(q);
        return rc;
    }
    size_t sb = ilv > 1 ? il.scale_bytes : kiln_qmatrix_scale_bytes(q);
    kiln_problem_buf *b0 = &p->bufs[0], *b1 = &p->bufs[1], *b2 = &p->bufs[2];
    memcpy(b0->host, ilv > 1 ? il.qs : q->qs, b0->bytes);
    if (sb)
        memcpy(b1->host, ilv > 1 ? il.scales : q->scales, sb);
    else if (dummy >= 0)
        memset(b1->host, dummy, 4);
    if (q->mins)
        memcpy(b2->host, ilv > 1 ? il.mins : q->mins, sb);
    else if (dummy >= 0)
        memset(b2->host, dummy, 4);
    kiln_ilv_free(&il);
    return 0;
}

/* class = act + 2 * (index of ilv in 1, 4, 8, 16) */
static int ilv_index(int ilv) { return ilv == 16 ? 3 : ilv == 8 ? 2 : ilv == 4 ? 1 : 0; }
static int class_ilv(int cls) { return cls >= 0 && cls < 8 ? (int[]){1, 4, 8, 16}[cls >> 1] : 1; }

static int data_class(const kiln_shape *s, const kiln_config *c)
{
    (void)s;
    return c->v[P_ACT] + 2 * ilv_index(c->v[P_ILV]);
}

static int sizes(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    (void)seed;
    kiln_wx_sizes(s, class_ilv(cls), 1, slot);
    return 5;
}

/* The problem of data class (act, ilv): the same random matrix and x for
 * every class; the weights in layout ilv, the reference over x rounded
 * through the q8 contract when act is 1. */
static int fill(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)
{
    if (cls < 0 || cls >= 8)
        return kiln_fail(e, KILN_E_INVALID, "gemv_int4: no data class %d", cls);
    int act = cls & 1;
    kiln_rng rng;
    kiln_rng_seed(&rng, seed ^ 0x9e37);
    kiln_qmatrix q;
    int rc = kiln_wx_weights(p, s, class_ilv(cls), &rng, -1, &q, e);
    if (rc)
        return rc;
    float *xr = act ? malloc(sizeof *xr * (size_t)(s->k ? s->k : 1)) : NULL;
    if (act && !xr) {
        kiln_qmatrix_free(&q);
        return kiln_fail(e, KILN_E_NOMEM, "gemv problem: no memory");
    }
    float *x = p->bufs[3].host;
    for (int64_t k = 0; k < s->k; k++) {
        x[k] = kiln_rng_normal(&rng);
        if (x[k] == 0)
            x[k] = 0.5f;
    }
    if (act)
        kiln_act_q8_roundtrip(x, s->k, xr);
    kiln_gemv_reference(&q, act ? xr : x, p->bufs[4].expect);
    free(xr);
    kiln_qmatrix_free(&q);
    return 0;
}

void kiln_gemv_reference(const kiln_qmatrix *q, const float *x, float *y)
{
    float *w = malloc(sizeof *w * (size_t)q->cols);
    for (int64_t r = 0; r < q->rows; r++) {
        kiln_dequantize_row(q, r, w);
        double acc = 0;
        for (int64_t k = 0; k < q->cols; k++)
            acc += (double)w[k] * x[k];
        y[r] = (float)acc;
    }
    free(w);
}

/* act 1 on the cpu: x -> int8 blocks in a scratch buffer (one thread: a
 * few microseconds at K = 14336), then the integer gemv over the tiles. */
static int plan_cpu_q8(const kiln_shape *s, const kiln_config *c, int64_t wpr, int64_t gpr, kiln_plan *out)
{
    int ilv = c->v[P_ILV], rows = c->v[P_ROWS];
    out->n_steps = 2;
    out->n_scratch = 1;
    out->scratch_bytes[0] = kiln_xq_bytes(s->k);
    kiln_act_q8_plan_step(&out->steps[0], "gemv_int4", 3, 0, s->k, s->quant, 1);
    kiln_plan_step *st = &out->steps[1];
    st->source = "gemv_int4";
    st->entry = "gemv_q8_cpu";
    st->signature = "bbbbbuuuu";
    kiln_plan_define(st, "QUANT", s->quant);
    kiln_plan_define(st, "GROUP", s->group);
    kiln_plan_define(st, "ROWS", rows);
    kiln_plan_define(st, "ILV", ilv);
    st->local[0] = 1;
    st->grid[0] = (uint32_t)((kiln_ilv_rows(s->m, ilv) + rows - 1) / rows);
    kiln_plan_slot(st, 0);
    kiln_plan_slot(st, 1);
    kiln_plan_slot(st, 2);
    kiln_plan_scratch(st, 0);
    kiln_plan_slot(st, 4);
    kiln_plan_u32(st, (uint32_t)s->m);
    kiln_plan_u32(st, (uint32_t)s->k);
    kiln_plan_u32(st, (uint32_t)wpr);
    kiln_plan_u32(st, (uint32_t)gpr);
    return 0;
}

/* layout 3 (gpu): workgroups of ilv x wg/ilv invocations, x over the lanes
 * of a tile, y over tiles, so that a lane's word index is affine in its
 * local x id (PoCL vectorizes across x: one vector load per word step). */
static int plan_ilv(const kiln_shape *s, const kiln_config *c, int64_t wpr, int64_t gpr, kiln_plan *out)
{
    int ilv = c->v[P_ILV], lanes = c->v[P_LAYOUT] == 4 ? 1 : ilv, tiles_per_wg = c->v[P_WG] / lanes;
    int64_t tiles = kiln_ilv_rows(s->m, ilv) / ilv;
    kiln_plan_step *st = &out->steps[0];
    out->n_steps = 1;
    st->source = "gemv_int4";
    st->entry = c->v[P_LAYOUT] == 4 ? "gemv_int4_ilvv" : "gemv_int4_ilv";
    st->signature = "bbbbbuuuu";
    kiln_plan_define(st, "WG", c->v[P_WG]);
    kiln_plan_define(st, "ILV", ilv);
    kiln_plan_define(st, "QUANT", s->quant);
    kiln_plan_define(st, "GROUP", s->group);
    st->local[0] = (uint32_t)(lanes > 1 ? lanes : tiles_per_wg);
    st->local[1] = (uint32_t)(lanes > 1 ? tiles_per_wg : 1);
    st->grid[0] = (uint32_t)((tiles + tiles_per_wg - 1) / tiles_per_wg);
    for (int i = 0; i < 5; i++)
        kiln_plan_slot(st, i);
    kiln_plan_u32(st, (uint32_t)s->m);
    kiln_plan_u32(st, (uint32_t)s->k);
    kiln_plan_u32(st, (uint32_t)wpr);
    kiln_plan_u32(st, (uint32_t)gpr);
    return 0;
}

static int plan(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_err *e)
{
    (void)e;
    memset(out, 0, sizeof *out);
    kiln_qmatrix dims; /* only the derived sizes */
    int epw = kiln_gemv_elems_per_word(s->quant);
    int group = s->quant == KILN_F16 ? 0 : s->group;
    int64_t cols_pad = group ? (s->k + group - 1) / group * group : s->k;
    dims.words_per_row = (cols_pad + epw - 1) / epw;
    dims.groups_per_row = group ? cols_pad / group : 0;
    if (be == KILN_CPU && c->v[P_ACT])
        return plan_cpu_q8(s, c, dims.words_per_row, dims.groups_per_row, out);
    kiln_plan_step *st = &out->steps[0];
    out->n_steps = 1;
    /* layouts 1 and 2 (gpu): invocations own whole rows (entries
     * gemv_int4_rows, gemv_int4_vec; split-K stays 1 there, see check) */
    int layout = be == KILN_CPU ? 0 : c->v[P_LAYOUT];
    if (layout >= 3)
        return plan_ilv(s, c, dims.words_per_row, dims.groups_per_row, out);
    /* rows per workgroup: layout 1 one per invocation, layout 2 `rows` per invocation */
    int rows = layout == 1 ? c->v[P_WG] : layout == 2 ? c->v[P_WG] * c->v[P_ROWS] : c->v[P_ROWS];
    int splitk = be == KILN_CPU ? 1 : c->v[P_SPLITK];
    st->source = "gemv_int4";
    st->entry = layout == 1 ? "gemv_int4_rows"
                : layout == 2 ? "gemv_int4_vec"
                : be == KILN_CPU ? "gemv_int4_cpu"
                                 : "gemv_int4";
    st->signature = "bbbbbuuuu";
    if (layout == 1) {
        kiln_plan_define(st, "WG", c->v[P_WG]);
    } else if (layout == 2) {
        kiln_plan_define(st, "WG", c->v[P_WG]);
        kiln_plan_define(st, "ROWS", c->v[P_ROWS]);
        kiln_plan_define(st, "VEC", c->v[P_VEC]);
        kiln_plan_define(st, "XSG", c->v[P_XSG]);
        kiln_plan_define(st, "W64", c->v[P_W64]);
    } else {
        kiln_plan_config_defines(st, &kiln_kernel_gemv_int4, c);
    }
    kiln_plan_define(st, "QUANT", s->quant);
    kiln_plan_define(st, "GROUP", group ? group : 1);
    st->local[0] = be == KILN_CPU ? 1 : (uint32_t)c->v[P_WG];
    st->grid[0] = (uint32_t)((s->m + rows - 1) / rows);
    st->grid[1] = (uint32_t)splitk;
    kiln_plan_slot(st, 0);
    kiln_plan_slot(st, 1);
    kiln_plan_slot(st, 2);
    kiln_plan_slot(st, 3);
    if (splitk > 1) {
        out->n_scratch = 1;
        out->scratch_bytes[0] = (size_t)splitk * (size_t)s->m * 4;
        kiln_plan_scratch(st, 0);
    } else {
        kiln_plan_slot(st, 4);
    }
    kiln_plan_u32(st, (uint32_t)s->m);
    kiln_plan_u32(st, (uint32_t)s->k);
    kiln_plan_u32(st, (uint32_t)dims.words_per_row);
    kiln_plan_u32(st, (uint32_t)dims.groups_per_row);
    if (splitk > 1) {
        kiln_plan_step *r = &out->steps[1];
        out->n_steps = 2;
        r->source = "gemv_int4";
        r->entry = "gemv_int4_reduce";
        r->signature = "bbuu";
        kiln_plan_define(r, "WG", 64);
        kiln_plan_define(r, "SPLITK", splitk);
        r->local[0] = 64;
        r->grid[0] = (uint32_t)((s->m + 63) / 64);
        kiln_plan_scratch(r, 0);
        kiln_plan_slot(r, 4);
        kiln_plan_u32(r, (uint32_t)s->m);
        kiln_plan_u32(r, (uint32_t)splitk);
    }
    return 0;
}

static double bytes(const kiln_shape *s)
{
    int epw = kiln_gemv_elems_per_word(s->quant);
    int group = s->quant == KILN_F16 ? 0 : s->group;
    int64_t cols_pad = group ? (s->k + group - 1) / group * group : s->k;
    double w = (double)s->m * (double)((cols_pad + epw - 1) / epw) * 4;
    double sc = group ? (double)s->m * (double)(cols_pad / group) * 2 * (s->quant == KILN_Q4_1 ? 2 : 1) : 0;
    return w + sc + (double)s->k * 4 + (double)s->m * 4;
}

static double flops(const kiln_shape *s) { return 2.0 * (double)s->m * (double)s->k; }

/* GPU backends whose driver runs on CPU cores: invocations own whole rows.
 * Layout 1 against layout 0 in the same tune session (2-core EPYC):
 * lavapipe 2.85-3.0x, PoCL 1.9-2.4x on 576x576 q4_1 and 49152x576 q8_0.
 * lavapipe: layout 2 with 8 rows per invocation, uvec4 loads as 64-bit
 * pairs and x through subgroup broadcasts, 5.1x layout 1 on 1536x576 q4_1
 * (tune --config, same session; bench/results/gpu-gemv.md); where a shape
 * or the device does not allow a piece, the next candidate without it. */
static void device_default(const kiln_fingerprint *fp, const kiln_shape *s, kiln_config *c)
{
    if (fp->backend != KILN_CPU && fp->cpu_device)
        c->v[P_LAYOUT] = 1;
    if (fp->backend == KILN_VULKAN && fp->cpu_device) {
        int sg = fp->has_subgroup_ops && fp->subgroup_min == fp->subgroup_max ? (int)fp->subgroup_size : 0;
        const int cand[][4] = {/* vec, xsg, w64, rows */
                               {4, sg, 1, 8}, {4, sg, 0, 8}, {4, 0, 1, 8}, {4, 0, 0, 8}, {2, 0, 0, 8}, {1, 0, 0, 8}};
        kiln_config t = *c;
        char why[160];
        for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
            t.v[P_LAYOUT] = 2;
            t.v[P_WG] = 32;
            t.v[P_VEC] = cand[i][0];
            t.v[P_XSG] = cand[i][1] == 4 || cand[i][1] == 8 || cand[i][1] == 16 ? cand[i][1] : 0;
            t.v[P_W64] = cand[i][2];
            t.v[P_ROWS] = cand[i][3];
            if (s ? check(s, &t, fp, why, sizeof why) : !t.v[P_W64] || fp->has_int64) {
                *c = t;
                break;
            }
        }
    }
    if (s && s->ilv > 1 && fp->backend == KILN_CPU) { /* a matrix already interleaved: the int8 path over its tiles */
        c->v[P_ACT] = 1;
        c->v[P_ILV] = s->ilv;
        c->v[P_ROWS] = s->ilv;
    } else if (s && s->ilv > 1) { /* gpu: layout 3 reads the tiles (PoCL: layout 4) */
        for (int i = 0; i < N_PARAMS; i++)
            c->v[i] = params[i].def;
        c->v[P_LAYOUT] = fp->backend == KILN_OPENCL && fp->cpu_device ? 4 : 3;
        c->v[P_ILV] = s->ilv;
        c->v[P_WG] = 32;
    } else if (s && fp->backend == KILN_OPENCL && fp->cpu_device) {
        /* PoCL: layout 4 over 16-row tiles (the engine repacks the matrix
         * at load): 9.5x layout 1 on 1536x576 q4_1, 43% of copy (tune
         * --config, same session; bench/results/gpu-gemv.md); a shape
         * that refuses it (f16, a matrix already row-major) keeps layout 1 */
        kiln_config t = *c;
        char why[160];
        t.v[P_LAYOUT] = 4;
        t.v[P_ILV] = 16;
        t.v[P_WG] = 32;
        if (check(s, &t, fp, why, sizeof why))
            *c = t;
    }
}

static const kiln_kernel_desc desc = {
    .kernel = &kiln_kernel_gemv_int4,
    .shapes = {KILN_SHAPE_LIST(check_shapes), KILN_SHAPE_LIST(tune_shapes), KILN_SHAPE_LIST(quick_shapes)},
    .shape_ok = shape_ok,
    .check = check,
    .slots = kiln_wx_slots,
    .sizes = sizes,
    .fill = fill,
    .plan_ok = kiln_plan_unchecked,
    .plan = plan,
};

KILN_KERNEL_FROM_DESC(gemv_int4, desc,
                      .doc = "y = W x, W int4/q8/f16 group-quantized along K (decode projections, LM head)",
                      .params = params, .n_params = N_PARAMS, .n_slots = 5, .shape_key = shape_key,
                      .data_class = data_class, .bytes = bytes, .flops = flops, .device_default = device_default);
