/* kernels/attention_paged/attention_paged.c - single-token decode attention over
 * a paged KV cache (grouped-query heads), and kv_append, which writes one token's
 * K/V rows into its page.
 *
 * Paged KV cache layout (the engine allocates exactly this):
 *   k_pool, v_pool   f32 [n_pages][kv_heads][page_size][head_dim] each
 *   page_table       i32 [max_pages_per_seq], one per sequence: logical page ->
 *                    physical page index into the pools
 *   token t of a sequence lives in physical page table[t / page_size], row
 *   t % page_size: element (kvh, d) of K is
 *       k_pool[((table[t / page_size] * kv_heads + kvh) * page_size + t % page_size) * head_dim + d]
 *   Pools must hold fewer than 2^32 elements (offsets are 32-bit unsigned on GPUs).
 *
 * attention_paged (op: decode, one query token):
 *   slots 0 q [heads][head_dim] (already roped), 1 k_pool, 2 v_pool, 3 page_table,
 *         4 out [heads][head_dim]
 *   scalars heads, kv_heads, head_dim, page_size, ctx, scale (= 1/sqrt(head_dim))
 *   head h uses kv head h / (heads / kv_heads); positions 0..ctx-1;
 *   out = softmax(q.k * scale) . v, computed with an online (flash-decoding)
 *   max-subtracted softmax so any score magnitude is safe.
 *   Schedule space: wg (threads), tile (positions per iteration of the page
 *   loop), split (context tokens per workgroup; 0 = one workgroup per head
 *   group; >0 = flash-decoding: partial max/sum/acc into scratch + a combine
 *   step), vec (load width), reduce (tile max by a shared-memory scan or by
 *   subgroup ops), hpw (query heads of one kv group per workgroup, sharing the
 *   K/V loads).
 *   Shape fields: heads, kv_heads, head_dim (<= 256, multiple of 4), page_size, ctx.
 *
 * kv_append:
 *   slots 0 k_new [kv_heads*head_dim], 1 v_new, 2 k_pool (INOUT), 3 v_pool (INOUT),
 *         4 page_table
 *   scalars pos, page_size, kv_heads, head_dim
 *   Shape: shape.ctx is the position written (the cache holds ctx tokens before it).
 *
 * KILN_TEST_BREAK=1 (every source): attention reads row 1 where row 0 of a
 * page is meant (not a permutation of positions, which softmax would not
 * notice; for ctx=1 an unused row); kv_append writes row (pos+1) % page_size.
 *
 * CPU entries live in attention_paged_cpu.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/attention_paged/attention_paged.h"
#include "kernels/kernel.h"
#include "kernels/sources.h"

extern const kiln_kernel kiln_kernel_attention_paged;
extern const kiln_kernel kiln_kernel_kv_append;
extern const kiln_kernel kiln_kernel_attention_paged_batch;
extern const kiln_kernel kiln_kernel_kv_append_batch;

/* ---- random numbers (xorshift64*, deterministic per seed) ---- */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}
static float rng_unit(uint64_t *s) { return (float)((rng_next(s) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; } /* [-1,1) */
static uint32_t rng_below(uint64_t *s, uint32_t n) { return (uint32_t)((rng_next(s) >> 33) % n); }
/* a[i], b[i] in [-1,1), interleaved draws (the order every problem's data was made in) */
static void rng_fill2(float *a, float *b, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        a[i] = rng_unit(s);
        b[i] = rng_unit(s);
    }
}

/* ---- shapes ---- */
static int shape_common_ok(const kiln_shape *s, char *why, size_t n)
{
    if (s->heads <= 0 || s->kv_heads <= 0 || s->heads % s->kv_heads) {
        snprintf(why, n, "heads %d not a multiple of kv_heads %d", s->heads, s->kv_heads);
        return 0;
    }
    if (s->head_dim <= 0 || s->head_dim > KILN_ATT_MAX_HD || s->head_dim % 4) {
        snprintf(why, n, "head_dim %d must be a multiple of 4 and <= %d", s->head_dim, KILN_ATT_MAX_HD);
        return 0;
    }
    if (s->page_size <= 0 || s->ctx < 0) {
        snprintf(why, n, "page_size %d / ctx %d out of range", s->page_size, s->ctx);
        return 0;
    }
    return 1;
}

static void attn_shape_key(const kiln_shape *s, char *buf, size_t n)
{
    snprintf(buf, n, "h%d.kv%d.d%d.p%d.ctx%d", s->heads, s->kv_heads, s->head_dim, s->page_size, s->ctx);
}

static void append_shape_key(const kiln_shape *s, char *buf, size_t n)
{
    snprintf(buf, n, "kv%d.d%d.p%d.pos%d", s->kv_heads, s->head_dim, s->page_size, s->ctx);
}

static kiln_shape mk(int heads, int kv, int hd, int page, int ctx)
{
    return (kiln_shape){.heads = heads, .kv_heads = kv, .head_dim = hd, .page_size = page, .ctx = ctx,
                        .quant = KILN_F32};
}

typedef struct model_heads {
    int heads, kv, hd;
} model_heads;
/* Llama-2-7B, Llama-3-8B, SmolLM2 (135M: 9 heads / 3 kv, head_dim 64). */
static const model_heads models[] = {{32, 32, 128}, {32, 8, 128}, {9, 3, 64}};

static int put(kiln_shape *out, int max, int n, kiln_shape s)
{
    if (n < max)
        out[n] = s;
    return n + 1;
}

static int attn_shapes(int which, kiln_shape *out, int max)
{
    int n = 0;
    if (which == KILN_SHAPES_CHECK) {
        /* 3 models x ctx {1, 17, 511} x page {16, 128}, plus ctx 4096 once per
         * model (page 16 for the GQA models, 128 for Llama-2, whose pools are
         * the largest) and one page-256 shape: 3*6 + 3 + 1 = 22 shapes. */
        static const int ctxs[] = {1, 17, 511};
        for (int m = 0; m < 3; m++)
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 2; p++)
                    n = put(out, max, n, mk(models[m].heads, models[m].kv, models[m].hd, p ? 128 : 16, ctxs[c]));
        for (int m = 0; m < 3; m++)
            n = put(out, max, n, mk(models[m].heads, models[m].kv, models[m].hd, m == 0 ? 128 : 16, 4096));
        n = put(out, max, n, mk(32, 8, 128, 256, 1000));
    } else if (which == KILN_SHAPES_TUNE) {
        /* Llama-2-7B decode: ctx 1024 and 4096, page 16 and 64. */
        static const int ctxs[] = {1024, 4096}, pages[] = {16, 64};
        for (int c = 0; c < 2; c++)
            for (int p = 0; p < 2; p++)
                n = put(out, max, n, mk(32, 32, 128, pages[p], ctxs[c]));
    } else {
        n = put(out, max, n, mk(4, 2, 64, 16, 1));     /* one token */
        n = put(out, max, n, mk(4, 2, 128, 16, 64));   /* whole pages only */
        n = put(out, max, n, mk(6, 2, 64, 16, 37));    /* GQA 3, ctx not a page multiple */
        n = put(out, max, n, mk(8, 2, 128, 32, 300));  /* GQA 4, > one split of 256 */
        n = put(out, max, n, mk(2, 2, 128, 64, 521));  /* MHA, 3 splits of 256 */
        n = put(out, max, n, mk(6, 2, 64, 256, 270));  /* page 256, partial second page */
    }
    return n < max ? n : max;
}

static int append_shapes(int which, kiln_shape *out, int max)
{
    int n = 0;
    if (which == KILN_SHAPES_CHECK) {
        static const int poss[] = {0, 17, 4095};
        for (int m = 0; m < 3; m++)
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 2; p++)
                    n = put(out, max, n, mk(models[m].heads, models[m].kv, models[m].hd, p ? 128 : 16, poss[c]));
        n = put(out, max, n, mk(32, 8, 128, 256, 300));
    } else if (which == KILN_SHAPES_TUNE) {
        n = put(out, max, n, mk(32, 32, 128, 16, 1024));
        n = put(out, max, n, mk(32, 32, 128, 64, 4095));
    } else {
        n = put(out, max, n, mk(4, 2, 64, 16, 0));
        n = put(out, max, n, mk(6, 2, 64, 16, 37));
        n = put(out, max, n, mk(8, 2, 128, 32, 95));
        n = put(out, max, n, mk(6, 3, 64, 256, 511));
    }
    return n < max ? n : max;
}

/* ---- attention_paged: schedule space ---- */
enum { P_WG, P_TILE, P_SPLIT, P_VEC, P_REDUCE, P_HPW };
static const kiln_param attn_params[] = {
    {"wg", "WG", "threads per workgroup (GPU)", 4, {32, 64, 128, 256}, 64},
    {"tile", "TILE", "positions per iteration of the page loop", 5, {16, 32, 64, 128, 256}, 64},
    /* short splits matter on the cpu: a model with few kv groups (SmolLM2:
     * 3) on 2 threads is otherwise split 2:1 between them */
    {"split", "SPLIT", "context tokens per workgroup, 0 = no split (flash-decoding + combine step)", 8,
     {0, 32, 64, 128, 256, 512, 1024, 2048}, 0},
    {"vec", "VEC", "load width in floats (GPU)", 3, {1, 2, 4}, 1},
    {"reduce", "REDUCE", "tile max: 0 shared-memory scan, 1 subgroup ops (Vulkan/CUDA)", 2, {0, 1}, 0},
    {"hpw", "HPW", "query heads of one kv group per workgroup (shares K/V loads)", 4, {1, 2, 3, 4}, 1},
};
#define N_ATTN_PARAMS ((int)(sizeof attn_params / sizeof attn_params[0]))

size_t kiln_attn_shared_bytes(int wg, int tile, int vec, int hpw)
{
    /* qs[HPW*MAXHD] + ss[HPW*TILE] + pp[HPW*TILE] + rowoff[TILE] + red[HPW*WG*VEC] */
    return 4u * ((size_t)hpw * KILN_ATT_MAX_HD + 2u * (size_t)hpw * tile + (size_t)tile + (size_t)hpw * wg * vec);
}

int kiln_attn_nsplit(const kiln_shape *s, int split)
{
    if (split <= 0 || s->ctx <= split)
        return 1;
    return (s->ctx + split - 1) / split;
}

static int attn_config_valid(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why,
                             size_t n)
{
    if (!shape_common_ok(s, why, n))
        return 0;
    if (s->ctx < 1) {
        snprintf(why, n, "ctx %d < 1", s->ctx);
        return 0;
    }
    int wg = c->v[P_WG], tile = c->v[P_TILE], split = c->v[P_SPLIT], vec = c->v[P_VEC], red = c->v[P_REDUCE],
        hpw = c->v[P_HPW];
    int ratio = s->heads / s->kv_heads;
    if (ratio % hpw) {
        snprintf(why, n, "hpw %d does not divide the GQA ratio %d", hpw, ratio);
        return 0;
    }
    if (split && split % tile) {
        snprintf(why, n, "split %d not a multiple of tile %d", split, tile);
        return 0;
    }
    if (fp->backend == KILN_CPU) {
        for (int i = 0; i < N_ATTN_PARAMS; i++)
            if ((i == P_WG || i == P_VEC || i == P_REDUCE) && c->v[i] != attn_params[i].def) {
                snprintf(why, n, "%s applies to GPU backends only (cpu: %d)", attn_params[i].name, attn_params[i].def);
                return 0;
            }
        return 1;
    }
    if (s->head_dim % vec) {
        snprintf(why, n, "head_dim %d not a multiple of vec %d", s->head_dim, vec);
        return 0;
    }
    if (fp->max_workgroup && (uint32_t)wg > fp->max_workgroup) {
        snprintf(why, n, "wg %d > device max %u", wg, fp->max_workgroup);
        return 0;
    }
    size_t sh = kiln_attn_shared_bytes(wg, tile, vec, hpw);
    if (fp->local_mem_bytes && sh > fp->local_mem_bytes) {
        snprintf(why, n, "shared memory %zu > device %llu bytes", sh, (unsigned long long)fp->local_mem_bytes);
        return 0;
    }
    if (red == 1) {
        if (fp->backend == KILN_OPENCL) {
            snprintf(why, n, "reduce=1 (subgroup) not available in OpenCL C 1.2");
            return 0;
        }
        if (!fp->has_subgroup_ops || !fp->subgroup_size || wg % (int)fp->subgroup_size) {
            snprintf(why, n, "reduce=1 needs subgroup ops and wg %d a multiple of subgroup size %u", wg,
                     fp->subgroup_size);
            return 0;
        }
        if (fp->backend == KILN_CUDA && fp->subgroup_size != 32) {
            snprintf(why, n, "reduce=1 on CUDA assumes warps of 32 (device says %u)", fp->subgroup_size);
            return 0;
        }
    }
    return 1;
}

/* ---- attention_paged: problem ---- */

/* A random page table: the first `used` entries of a shuffled permutation of
 * n_pool physical pages (n_pool > used), so a kernel that ignores the table
 * reads the wrong page. */
static void random_table(int32_t *table, int used, int n_pool, uint64_t *rs)
{
    int32_t *perm = malloc((size_t)n_pool * sizeof *perm);
    for (int i = 0; i < n_pool; i++)
        perm[i] = i;
    for (int i = n_pool - 1; i > 0; i--) {
        uint32_t j = rng_below(rs, (uint32_t)i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    memcpy(table, perm, (size_t)used * sizeof *table);
    free(perm);
    int ident = 1;
    for (int i = 0; i < used; i++)
        ident &= table[i] == i;
    if (ident) /* never the identity: page n_pool-1 is unused then */
        table[used - 1] = n_pool - 1;
}

void kiln_attn_reference(const float *q, const float *kp, const float *vp, const int32_t *table, float *out,
                         int heads, int kv_heads, int head_dim, int page_size, int ctx, float scale)
{
    double *sc = malloc((size_t)ctx * sizeof *sc);
    double *acc = malloc((size_t)head_dim * sizeof *acc);
    int ratio = heads / kv_heads;
    for (int h = 0; h < heads; h++) {
        int kvh = h / ratio;
        double mx = -INFINITY;
        for (int t = 0; t < ctx; t++) {
            size_t off = (((size_t)table[t / page_size] * kv_heads + kvh) * page_size + t % page_size) * head_dim;
            double d = 0;
            for (int i = 0; i < head_dim; i++)
                d += (double)q[(size_t)h * head_dim + i] * kp[off + i];
            sc[t] = d * scale;
            mx = sc[t] > mx ? sc[t] : mx;
        }
        double sum = 0;
        for (int i = 0; i < head_dim; i++)
            acc[i] = 0;
        for (int t = 0; t < ctx; t++) {
            size_t off = (((size_t)table[t / page_size] * kv_heads + kvh) * page_size + t % page_size) * head_dim;
            double p = exp(sc[t] - mx);
            sum += p;
            for (int i = 0; i < head_dim; i++)
                acc[i] += p * vp[off + i];
        }
        for (int i = 0; i < head_dim; i++)
            out[(size_t)h * head_dim + i] = (float)(acc[i] / sum);
    }
    free(sc);
    free(acc);
}

/* Budget for out (normalized error max|y-r|/rms(r)): f32 kernels differ from
 * the double reference by rounding in the q.k dots (relative ~1e-7 * sqrt(hd)
 * of |score|, i.e. ~1e-4 absolute on the ~150-magnitude offset scores below,
 * which perturbs each weight by ~1e-4 relative), in exp (a few ulp) and in the
 * sums over up to 8192 positions (~1e-5 relative). 2e-3 leaves >10x headroom.
 * A wrong index (row r+1, wrong page, missing or extra position, wrong kv
 * head) replaces O(1) random values in a softmax-weighted average and moves
 * the output by tens of percent of its rms: far above the budget (even a
 * single wrong position out of 4096 at near-uniform weights moves one output
 * by ~2e-4/0.009 = 2.7e-2). Measured on the CPU path: 2.6e-5 at ctx 4096. */
#define ATTN_TOL 2e-3

static int attn_problem_init(kiln_problem *p, const kiln_shape *s, uint64_t seed, kiln_err *e)
{
    kiln_err own = {0};
    if (!e) /* kiln_problem_add returns no code: it reaches us through e, a local when the caller passed none */
        e = &own;
    char why[128];
    if (!shape_common_ok(s, why, sizeof why) || s->ctx < 1)
        return kiln_fail(e, KILN_E_INVALID, "attention_paged: bad shape: %s", s->ctx < 1 ? "ctx < 1" : why);
    memset(p, 0, sizeof *p);
    p->shape = *s;
    int hd = s->head_dim, ps = s->page_size, kvh = s->kv_heads;
    int used = (s->ctx + ps - 1) / ps;
    int n_pool = used + used / 4 + 2; /* more physical pages than the sequence uses */
    size_t page_elems = (size_t)kvh * ps * hd;
    size_t pool_bytes = (size_t)n_pool * page_elems * sizeof(float);
    uint64_t rs = seed * 0x9E3779B97F4A7C15ull + 0x243F6A8885A308D3ull;
    if (!rs)
        rs = 1;

    kiln_problem_buf *bq = kiln_problem_add(p, "q", KILN_IN, (size_t)s->heads * hd * 4, KILN_CMP_NONE, 0, e);
    kiln_problem_buf *bk = bq ? kiln_problem_add(p, "k_pool", KILN_IN, pool_bytes, KILN_CMP_NONE, 0, e) : NULL;
    kiln_problem_buf *bv = bk ? kiln_problem_add(p, "v_pool", KILN_IN, pool_bytes, KILN_CMP_NONE, 0, e) : NULL;
    kiln_problem_buf *bt = bv ? kiln_problem_add(p, "page_table", KILN_IN, (size_t)used * 4, KILN_CMP_NONE, 0, e)
                              : NULL;
    kiln_problem_buf *bo = bt ? kiln_problem_add(p, "out", KILN_OUT, (size_t)s->heads * hd * 4, KILN_CMP_F32,
                                                 ATTN_TOL, e)
                              : NULL;
    if (!bo) {
        kiln_problem_free(p);
        return e->code;
    }
    float *q = bq->host, *k = bk->host, *v = bv->host;
    /* Odd kv heads are "offset" heads: every K row (all pages, used or not) is
     * c + 0.05*noise for a fixed random c, and their query heads get q = g*c +
     * noise, so scores sit near +100..+200 with a spread of ~1: softmax still
     * weighs every position, but exp without max subtraction overflows to inf.
     * Even kv heads are plain uniform noise (near-uniform softmax). */
    float *cdir = malloc((size_t)kvh * hd * sizeof *cdir);
    for (size_t i = 0; i < (size_t)kvh * hd; i++)
        cdir[i] = rng_unit(&rs);
    /* score = (q.k)/sqrt(hd) ~ gamma*|c|^2/sqrt(hd) = gamma*sqrt(hd)/3 ~ 150,
     * spread ~ gamma*0.05/3 ~ 0.7..0.9 across positions */
    float gamma = 450.0f / sqrtf((float)hd);
    for (int pg = 0; pg < n_pool; pg++)
        for (int h = 0; h < kvh; h++)
            for (int r = 0; r < ps; r++) {
                size_t off = (((size_t)pg * kvh + h) * ps + r) * hd;
                for (int i = 0; i < hd; i++) {
                    float nk = rng_unit(&rs);
                    k[off + i] = (h & 1) ? cdir[(size_t)h * hd + i] + 0.05f * nk : nk;
                    v[off + i] = rng_unit(&rs);
                }
            }
    int ratio = s->heads / kvh;
    for (int h = 0; h < s->heads; h++) {
        int g = h / ratio;
        for (int i = 0; i < hd; i++) {
            float nq = rng_unit(&rs);
            q[(size_t)h * hd + i] = (g & 1) ? gamma * cdir[(size_t)g * hd + i] + nq : nq;
        }
    }
    free(cdir);
    random_table(bt->host, used, n_pool, &rs);
    kiln_attn_reference(q, k, v, bt->host, bo->expect, s->heads, kvh, hd, ps, s->ctx, 1.0f / sqrtf((float)hd));
    return 0;
}

static int attn_plan(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_err *e)
{
    memset(out, 0, sizeof *out);
    int hpw = c->v[P_HPW], wg = c->v[P_WG];
    if (s->heads % hpw || s->kv_heads <= 0)
        return kiln_fail(e, KILN_E_INVALID, "attention_paged: hpw %d does not divide heads %d", hpw, s->heads);
    int nsplit = kiln_attn_nsplit(s, c->v[P_SPLIT]);
    int partial = nsplit > 1;
    kiln_plan_step *st = &out->steps[0];
    st->source = "attention_paged";
    st->entry = be == KILN_CPU ? "attn_paged_cpu" : "attn_paged";
    st->signature = "bbbbbiiiiif";
    kiln_plan_config_defines(st, &kiln_kernel_attention_paged, c);
    kiln_plan_define(st, "WRITE_PARTIAL", partial);
    st->local[0] = be == KILN_CPU ? 1 : (uint32_t)wg;
    st->grid[0] = (uint32_t)(s->heads / hpw);
    st->grid[1] = (uint32_t)nsplit;
    st->grid[2] = 1;
    for (int i = 0; i < 4; i++)
        kiln_plan_slot(st, i);
    if (partial)
        kiln_plan_scratch(st, 0);
    else
        kiln_plan_slot(st, 4);
    kiln_plan_i32(st, s->heads);
    kiln_plan_i32(st, s->kv_heads);
    kiln_plan_i32(st, s->head_dim);
    kiln_plan_i32(st, s->page_size);
    kiln_plan_i32(st, s->ctx);
    kiln_plan_f32(st, 1.0f / sqrtf((float)s->head_dim));
    out->n_steps = 1;
    if (partial) {
        out->n_scratch = 1;
        out->scratch_bytes[0] = (size_t)s->heads * nsplit * (s->head_dim + 2) * sizeof(float);
        kiln_plan_step *cs = &out->steps[1];
        cs->source = "attention_paged";
        cs->entry = be == KILN_CPU ? "attn_paged_combine_cpu" : "attn_paged_combine";
        cs->signature = "bbiii";
        kiln_plan_config_defines(cs, &kiln_kernel_attention_paged, c);
        cs->local[0] = be == KILN_CPU ? 1 : (uint32_t)wg;
        cs->grid[0] = (uint32_t)s->heads;
        cs->grid[1] = cs->grid[2] = 1;
        kiln_plan_scratch(cs, 0);
        kiln_plan_slot(cs, 4);
        kiln_plan_i32(cs, s->heads);
        kiln_plan_i32(cs, s->head_dim);
        kiln_plan_i32(cs, nsplit);
        out->n_steps = 2;
    }
    return 0;
}

static double attn_bytes(const kiln_shape *s)
{
    double kv = 2.0 * s->ctx * s->kv_heads * s->head_dim * 4.0;
    double table = 4.0 * ((s->ctx + s->page_size - 1) / (s->page_size ? s->page_size : 1));
    return kv + table + 2.0 * s->heads * s->head_dim * 4.0;
}

static double attn_flops(const kiln_shape *s) { return 4.0 * s->heads * s->ctx * s->head_dim; }

/* Drivers on CPU cores (PoCL, lavapipe): 4-wide K/V loads. At SmolLM2's
 * decode shapes (9 heads / 3 kv, d 64, ctx 256 and 1024) vec 4 beat vec 1 by
 * 2.2-2.5x on both in an interleaved re-measure (tune --config, 2026-12-01). */
static void attn_device_default(const kiln_fingerprint *fp, const kiln_shape *s, kiln_config *c)
{
    (void)s;
    if (fp->backend != KILN_CPU && fp->cpu_device)
        c->v[P_VEC] = 4;
}

const kiln_kernel kiln_kernel_attention_paged = {
    .name = "attention_paged",
    .doc = "decode attention (one query token, GQA) over a paged f32 KV cache, online softmax, optional "
           "flash-decoding split",
    .params = attn_params,
    .n_params = N_ATTN_PARAMS,
    .n_slots = 5,
    .shapes = attn_shapes,
    .shape_key = attn_shape_key,
    .config_valid = attn_config_valid,
    .problem_init = attn_problem_init,
    .plan = attn_plan,
    .bytes = attn_bytes,
    .flops = attn_flops,
    .device_default = attn_device_default,
};

/* ---- kv_append ---- */
static const kiln_param append_params[] = {
    {"wg", "WG", "threads per workgroup (GPU; one element per thread)", 4, {32, 64, 128, 256}, 64},
};

static int append_config_valid(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why,
                               size_t n)
{
    if (!shape_common_ok(s, why, n))
        return 0;
    if (fp->backend == KILN_CPU && c->v[0] != append_params[0].def) {
        snprintf(why, n, "wg applies to GPU backends only (cpu: %d)", append_params[0].def);
        return 0;
    }
    if (fp->max_workgroup && (uint32_t)c->v[0] > fp->max_workgroup) {
        snprintf(why, n, "wg %d > device max %u", c->v[0], fp->max_workgroup);
        return 0;
    }
    return 1;
}

static int append_problem_init(kiln_problem *p, const kiln_shape *s, uint64_t seed, kiln_err *e)
{
    kiln_err own = {0};
    if (!e) /* kiln_problem_add returns no code: it reaches us through e, a local when the caller passed none */
        e = &own;
    char why[128];
    if (!shape_common_ok(s, why, sizeof why))
        return kiln_fail(e, KILN_E_INVALID, "kv_append: bad shape: %s", why);
    memset(p, 0, sizeof *p);
    p->shape = *s;
    int hd = s->head_dim, ps = s->page_size, kvh = s->kv_heads, pos = s->ctx;
    int used = pos / ps + 1;
    /* A small pool (the page table may map many logical pages to few physical
     * ones; only the target entry matters here), so CHECK shapes stay cheap. */
    int n_pool = (used < 6 ? used : 6) + 3;
    size_t row = (size_t)kvh * hd;
    size_t pool_bytes = (size_t)n_pool * kvh * ps * hd * sizeof(float);
    uint64_t rs = seed * 0xD1B54A32D192ED03ull + 0x9E3779B97F4A7C15ull;
    if (!rs)
        rs = 1;
    kiln_problem_buf *bk = kiln_problem_add(p, "k_new", KILN_IN, row * 4, KILN_CMP_NONE, 0, e);
    kiln_problem_buf *bv = bk ? kiln_problem_add(p, "v_new", KILN_IN, row * 4, KILN_CMP_NONE, 0, e) : NULL;
    /* Exact: the kernel copies floats, so every byte of both pools must match
     * (the target rows hold the new K/V, every other byte keeps its random
     * initial value). */
    kiln_problem_buf *kp = bv ? kiln_problem_add(p, "k_pool", KILN_INOUT, pool_bytes, KILN_CMP_EXACT, 0, e) : NULL;
    kiln_problem_buf *vp = kp ? kiln_problem_add(p, "v_pool", KILN_INOUT, pool_bytes, KILN_CMP_EXACT, 0, e) : NULL;
    kiln_problem_buf *bt = vp ? kiln_problem_add(p, "page_table", KILN_IN, (size_t)used * 4, KILN_CMP_NONE, 0, e)
                              : NULL;
    if (!bt) {
        kiln_problem_free(p);
        return e->code;
    }
    float *kn = bk->host, *vn = bv->host, *kpool = kp->host, *vpool = vp->host;
    int32_t *table = bt->host;
    rng_fill2(kn, vn, row, &rs);
    rng_fill2(kpool, vpool, pool_bytes / 4, &rs);
    for (int i = 0; i < used; i++)
        table[i] = (int32_t)rng_below(&rs, (uint32_t)n_pool);
    int lp = pos / ps;
    /* The target page is never the logical index itself (mod pool), so a
     * kernel that ignores the table writes the wrong page. */
    while (table[lp] == lp % n_pool)
        table[lp] = (int32_t)rng_below(&rs, (uint32_t)n_pool);
    memcpy(kp->expect, kpool, pool_bytes);
    memcpy(vp->expect, vpool, pool_bytes);
    for (int h = 0; h < kvh; h++) {
        size_t dst = (((size_t)table[lp] * kvh + h) * ps + pos % ps) * hd;
        memcpy((float *)kp->expect + dst, kn + (size_t)h * hd, (size_t)hd * 4);
        memcpy((float *)vp->expect + dst, vn + (size_t)h * hd, (size_t)hd * 4);
    }
    return 0;
}

/* kv_append and kv_append_batch: one thread per element of a token's K/V
 * rows, grid y over the tokens (1 unbatched); the batch reads positions and
 * table bases from meta (slot 5) instead of the ctx argument. */
static int append_plan_of(const kiln_kernel *k, int batch, const kiln_shape *s, const kiln_config *c,
                          kiln_backend_kind be, kiln_plan *out)
{
    memset(out, 0, sizeof *out);
    int wg = c->v[0];
    kiln_plan_step *st = &out->steps[0];
    st->source = "attention_paged";
    st->entry = be == KILN_CPU ? (batch ? "kv_append_batch_cpu" : "kv_append_cpu") : "kv_append";
    st->signature = batch ? "bbbbbbiiii" : "bbbbbiiii";
    kiln_plan_config_defines(st, k, c);
    if (batch)
        kiln_plan_define(st, "BATCH", 1);
    int n = s->kv_heads * s->head_dim;
    st->local[0] = be == KILN_CPU ? 1 : (uint32_t)wg;
    st->grid[0] = be == KILN_CPU ? 1 : (uint32_t)((n + wg - 1) / wg);
    st->grid[1] = batch ? (uint32_t)s->m : 1;
    st->grid[2] = 1;
    if (!batch)
        st->cpu_threads = 1;
    for (int i = 0; i < (batch ? 6 : 5); i++)
        kiln_plan_slot(st, i);
    kiln_plan_i32(st, batch ? 0 : s->ctx); /* batch: positions come from meta */
    kiln_plan_i32(st, s->page_size);
    kiln_plan_i32(st, s->kv_heads);
    kiln_plan_i32(st, s->head_dim);
    out->n_steps = 1;
    return 0;
}

static int append_plan(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_err *e)
{
    (void)e;
    return append_plan_of(&kiln_kernel_kv_append, 0, s, c, be, out);
}

static double append_bytes(const kiln_shape *s) { return 4.0 * s->kv_heads * s->head_dim * 4.0 + 4.0; }
static double append_flops(const kiln_shape *s) { (void)s; return 0; }

const kiln_kernel kiln_kernel_kv_append = {
    .name = "kv_append",
    .doc = "write one token's K and V rows (all kv heads) into its page of the paged f32 KV cache",
    .params = append_params,
    .n_params = 1,
    .n_slots = 5,
    .shapes = append_shapes,
    .shape_key = append_shape_key,
    .config_valid = append_config_valid,
    .problem_init = append_problem_init,
    .plan = append_plan,
    .bytes = append_bytes,
    .flops = append_flops,
};

/* ---- the batch kernels: many sequences' tokens in one launch ----
 *
 * Continuous batching (engine/sched.h) runs the decode tokens of several
 * sequences, each with its own page table, through one launch per layer.
 * The page tables are concatenated in one i32 buffer; meta [tokens][2] gives
 * each token's table base (its first entry's index there) and its position.
 * Tokens of one sequence (a prefill chunk) share a base and take consecutive
 * positions.
 *
 * attention_paged_batch:
 *   slots 0 q [tokens][heads][head_dim], 1 k_pool, 2 v_pool, 3 tables,
 *         4 out [tokens][heads][head_dim], 5 meta
 *   token i attends positions 0..meta[i][1] of its sequence (causal);
 *   shape: m = tokens, ctx = the longest context (the lookup bucket), the
 *   other fields as attention_paged. Same sources and schedule space with
 *   BATCH=1 (workgroup z = token), without the split (configs with split > 0
 *   are invalid: the grid's z is taken).
 * kv_append_batch:
 *   slots 0 k_new [tokens][kv_heads][head_dim], 1 v_new, 2 k_pool (INOUT),
 *         3 v_pool (INOUT), 4 tables, 5 meta
 *   shape: m = tokens, ctx = the largest position written. */

static void attnb_shape_key(const kiln_shape *s, char *buf, size_t n)
{
    snprintf(buf, n, "h%d.kv%d.d%d.p%d.ctx%d.t%lld", s->heads, s->kv_heads, s->head_dim, s->page_size, s->ctx,
             (long long)s->m);
}

static void appendb_shape_key(const kiln_shape *s, char *buf, size_t n)
{
    snprintf(buf, n, "kv%d.d%d.p%d.pos%d.t%lld", s->kv_heads, s->head_dim, s->page_size, s->ctx, (long long)s->m);
}

static kiln_shape mkb(int heads, int kv, int hd, int page, int ctx, int tokens)
{
    kiln_shape s = mk(heads, kv, hd, page, ctx);
    s.m = tokens;
    return s;
}

static int attnb_shapes(int which, kiln_shape *out, int max)
{
    int n = 0;
    if (which == KILN_SHAPES_CHECK) {
        for (int m = 0; m < 3; m++) {
            n = put(out, max, n, mkb(models[m].heads, models[m].kv, models[m].hd, 16, 300, 8));
            n = put(out, max, n, mkb(models[m].heads, models[m].kv, models[m].hd, 64, 1024, 3));
        }
        n = put(out, max, n, mkb(9, 3, 64, 64, 2048, 16));
    } else if (which == KILN_SHAPES_TUNE) {
        /* SmolLM2 decode at 8 sequences */
        n = put(out, max, n, mkb(9, 3, 64, 64, 256, 8));
        n = put(out, max, n, mkb(9, 3, 64, 64, 1024, 8));
    } else {
        n = put(out, max, n, mkb(4, 2, 64, 16, 1, 1));     /* one token, one position */
        n = put(out, max, n, mkb(6, 2, 64, 16, 37, 5));    /* GQA 3 */
        n = put(out, max, n, mkb(8, 2, 128, 32, 300, 8));  /* GQA 4 */
        n = put(out, max, n, mkb(2, 2, 128, 64, 200, 3));  /* MHA */
    }
    return n < max ? n : max;
}

static int appendb_shapes(int which, kiln_shape *out, int max)
{
    int n = 0;
    if (which == KILN_SHAPES_CHECK) {
        for (int m = 0; m < 3; m++) {
            n = put(out, max, n, mkb(models[m].heads, models[m].kv, models[m].hd, 16, 300, 8));
            n = put(out, max, n, mkb(models[m].heads, models[m].kv, models[m].hd, 64, 4095, 40));
        }
    } else if (which == KILN_SHAPES_TUNE) {
        n = put(out, max, n, mkb(9, 3, 64, 64, 1024, 8));
    } else {
        n = put(out, max, n, mkb(4, 2, 64, 16, 0, 1));
        n = put(out, max, n, mkb(6, 2, 64, 16, 37, 9));
        n = put(out, max, n, mkb(8, 2, 128, 32, 95, 20));
    }
    return n < max ? n : max;
}

static int attnb_config_valid(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why,
                              size_t n)
{
    if (s->m < 1 || s->m > 65535) {
        snprintf(why, n, "tokens %lld out of 1..65535", (long long)s->m);
        return 0;
    }
    if (c->v[P_SPLIT]) {
        snprintf(why, n, "split %d: the batch kernel runs one workgroup per head group and token (split 0)",
                 c->v[P_SPLIT]);
        return 0;
    }
    return attn_config_valid(s, c, fp, why, n);
}

/* Tokens of `nseq` sequences: sequence j holds cnt[j] consecutive tokens
 * ending at position last[j] (the last sequence's is the shape's ctx - 1).
 * Fills counts and end positions; returns the number of sequences. */
static int batch_layout(int tokens, int maxpos, uint64_t *rs, int *cnt, int *last)
{
    int nseq = 0, left = tokens;
    while (left > 0) {
        /* mostly single tokens (decode), sometimes a run of several (a prefill chunk) */
        int c = rng_below(rs, 4) == 0 ? 1 + (int)rng_below(rs, (uint32_t)(left < 6 ? left : 6)) : 1;
        if (c > maxpos + 1)
            c = maxpos + 1;
        cnt[nseq] = c;
        last[nseq] = c - 1 + (int)rng_below(rs, (uint32_t)(maxpos - c + 2));
        nseq++;
        left -= c;
    }
    last[nseq - 1] = maxpos; /* the longest context is the shape's */
    if (cnt[nseq - 1] > maxpos + 1)
        cnt[nseq - 1] = maxpos + 1;
    return nseq;
}

static int attnb_problem_init(kiln_problem *p, const kiln_shape *s, uint64_t seed, kiln_err *e)
{
    kiln_err own = {0};
    if (!e)
        e = &own;
    char why[128];
    if (!shape_common_ok(s, why, sizeof why) || s->ctx < 1 || s->m < 1)
        return kiln_fail(e, KILN_E_INVALID, "attention_paged_batch: bad shape: %s",
                         s->ctx < 1 || s->m < 1 ? "ctx or tokens < 1" : why);
    memset(p, 0, sizeof *p);
    p->shape = *s;
    int T = (int)s->m, hd = s->head_dim, ps = s->page_size, kvh = s->kv_heads, H = s->heads;
    uint64_t rs = seed * 0x9E3779B97F4A7C15ull + 0x94D049BB133111EBull;
    if (!rs)
        rs = 1;
    int *cnt = malloc(sizeof *cnt * (size_t)T), *last = malloc(sizeof *last * (size_t)T);
    int nseq = batch_layout(T, s->ctx - 1, &rs, cnt, last), total_pages = 0, maxused = 0;
    for (int j = 0; j < nseq; j++) {
        int used = last[j] / ps + 1;
        total_pages += used;
        maxused = used > maxused ? used : maxused;
    }
    int n_pool = maxused + maxused / 4 + 2;
    size_t pool_bytes = (size_t)n_pool * kvh * ps * hd * sizeof(float), row = (size_t)H * hd;
    kiln_problem_buf *bq = kiln_problem_add(p, "q", KILN_IN, (size_t)T * row * 4, KILN_CMP_NONE, 0, e);
    kiln_problem_buf *bk = bq ? kiln_problem_add(p, "k_pool", KILN_IN, pool_bytes, KILN_CMP_NONE, 0, e) : NULL;
    kiln_problem_buf *bv = bk ? kiln_problem_add(p, "v_pool", KILN_IN, pool_bytes, KILN_CMP_NONE, 0, e) : NULL;
    kiln_problem_buf *bt = bv ? kiln_problem_add(p, "tables", KILN_IN, (size_t)total_pages * 4, KILN_CMP_NONE, 0, e)
                              : NULL;
    kiln_problem_buf *bo = bt ? kiln_problem_add(p, "out", KILN_OUT, (size_t)T * row * 4, KILN_CMP_F32, ATTN_TOL, e)
                              : NULL;
    kiln_problem_buf *bm = bo ? kiln_problem_add(p, "meta", KILN_IN, (size_t)T * 8, KILN_CMP_NONE, 0, e) : NULL;
    if (!bm) {
        free(cnt);
        free(last);
        kiln_problem_free(p);
        return e->code;
    }
    float *q = bq->host, *k = bk->host, *v = bv->host;
    rng_fill2(k, v, pool_bytes / 4, &rs);
    /* q scaled so the softmax is far from uniform: a wrong row or page moves the output */
    for (size_t i = 0; i < (size_t)T * row; i++)
        q[i] = 4.0f * rng_unit(&rs);
    int32_t *tables = bt->host, *meta = bm->host;
    float scale = 1.0f / sqrtf((float)hd);
    for (int j = 0, base = 0, tok = 0; j < nseq; j++) {
        int used = last[j] / ps + 1;
        random_table(tables + base, used, n_pool, &rs); /* each sequence its own permutation */
        for (int c = 0; c < cnt[j]; c++, tok++) {
            int pos = last[j] - (cnt[j] - 1) + c;
            meta[2 * tok] = base;
            meta[2 * tok + 1] = pos;
            kiln_attn_reference(q + (size_t)tok * row, k, v, tables + base, (float *)bo->expect + (size_t)tok * row, H,
                                kvh, hd, ps, pos + 1, scale);
        }
        base += used;
    }
    free(cnt);
    free(last);
    return 0;
}

static int attnb_plan(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_err *e)
{
    memset(out, 0, sizeof *out);
    int hpw = c->v[P_HPW], wg = c->v[P_WG];
    if (s->heads % hpw || s->kv_heads <= 0 || c->v[P_SPLIT])
        return kiln_fail(e, KILN_E_INVALID, "attention_paged_batch: hpw %d does not divide heads %d, or split %d",
                         hpw, s->heads, c->v[P_SPLIT]);
    kiln_plan_step *st = &out->steps[0];
    st->source = "attention_paged";
    st->entry = be == KILN_CPU ? "attn_paged_batch_cpu" : "attn_paged";
    st->signature = "bbbbbbiiiiif";
    kiln_plan_config_defines(st, &kiln_kernel_attention_paged_batch, c);
    kiln_plan_define(st, "WRITE_PARTIAL", 0);
    kiln_plan_define(st, "BATCH", 1);
    st->local[0] = be == KILN_CPU ? 1 : (uint32_t)wg;
    st->grid[0] = (uint32_t)(s->heads / hpw);
    st->grid[1] = 1;
    st->grid[2] = (uint32_t)s->m;
    for (int i = 0; i < 6; i++)
        kiln_plan_slot(st, i);
    kiln_plan_i32(st, s->heads);
    kiln_plan_i32(st, s->kv_heads);
    kiln_plan_i32(st, s->head_dim);
    kiln_plan_i32(st, s->page_size);
    kiln_plan_i32(st, s->ctx);
    kiln_plan_f32(st, 1.0f / sqrtf((float)s->head_dim));
    out->n_steps = 1;
    return 0;
}

/* an upper bound: every token reads the longest context */
static double attnb_bytes(const kiln_shape *s) { return (double)s->m * attn_bytes(s); }
static double attnb_flops(const kiln_shape *s) { return (double)s->m * attn_flops(s); }

const kiln_kernel kiln_kernel_attention_paged_batch = {
    .name = "attention_paged_batch",
    .doc = "decode attention for the tokens of many sequences in one launch, each over its own page table "
           "(continuous batching); attention_paged's sources and schedule space without the split",
    .params = attn_params,
    .n_params = N_ATTN_PARAMS,
    .n_slots = 6,
    .shapes = attnb_shapes,
    .shape_key = attnb_shape_key,
    .config_valid = attnb_config_valid,
    .problem_init = attnb_problem_init,
    .plan = attnb_plan,
    .bytes = attnb_bytes,
    .flops = attnb_flops,
    .device_default = attn_device_default,
};

static int appendb_config_valid(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why,
                                size_t n)
{
    if (s->m < 1 || s->m > 65535) {
        snprintf(why, n, "tokens %lld out of 1..65535", (long long)s->m);
        return 0;
    }
    return append_config_valid(s, c, fp, why, n);
}

static int appendb_problem_init(kiln_problem *p, const kiln_shape *s, uint64_t seed, kiln_err *e)
{
    kiln_err own = {0};
    if (!e)
        e = &own;
    char why[128];
    if (!shape_common_ok(s, why, sizeof why) || s->m < 1)
        return kiln_fail(e, KILN_E_INVALID, "kv_append_batch: bad shape: %s", s->m < 1 ? "tokens < 1" : why);
    memset(p, 0, sizeof *p);
    p->shape = *s;
    int T = (int)s->m, hd = s->head_dim, ps = s->page_size, kvh = s->kv_heads;
    uint64_t rs = seed * 0xD1B54A32D192ED03ull + 0x2545F4914F6CDD1Dull;
    if (!rs)
        rs = 1;
    int *cnt = malloc(sizeof *cnt * (size_t)T), *last = malloc(sizeof *last * (size_t)T);
    int nseq = batch_layout(T, s->ctx, &rs, cnt, last), total = 0, written = 0;
    for (int j = 0; j < nseq; j++) {
        total += last[j] / ps + 1;
        written += last[j] / ps - (last[j] - cnt[j] + 1) / ps + 1; /* pages the sequence's new tokens touch */
    }
    /* every written page its own physical page (no two tokens write one row); a few spare */
    int n_pool = written + 3;
    size_t row = (size_t)kvh * hd, pool_bytes = (size_t)n_pool * kvh * ps * hd * sizeof(float);
    kiln_problem_buf *bk = kiln_problem_add(p, "k_new", KILN_IN, (size_t)T * row * 4, KILN_CMP_NONE, 0, e);
    kiln_problem_buf *bv = bk ? kiln_problem_add(p, "v_new", KILN_IN, (size_t)T * row * 4, KILN_CMP_NONE, 0, e) : NULL;
    kiln_problem_buf *kp = bv ? kiln_problem_add(p, "k_pool", KILN_INOUT, pool_bytes, KILN_CMP_EXACT, 0, e) : NULL;
    kiln_problem_buf *vp = kp ? kiln_problem_add(p, "v_pool", KILN_INOUT, pool_bytes, KILN_CMP_EXACT, 0, e) : NULL;
    kiln_problem_buf *bt = vp ? kiln_problem_add(p, "tables", KILN_IN, (size_t)total * 4, KILN_CMP_NONE, 0, e) : NULL;
    kiln_problem_buf *bm = bt ? kiln_problem_add(p, "meta", KILN_IN, (size_t)T * 8, KILN_CMP_NONE, 0, e) : NULL;
    if (!bm) {
        free(cnt);
        free(last);
        kiln_problem_free(p);
        return e->code;
    }
    float *kn = bk->host, *vn = bv->host, *kpool = kp->host, *vpool = vp->host;
    int32_t *tables = bt->host, *meta = bm->host;
    rng_fill2(kn, vn, (size_t)T * row, &rs);
    rng_fill2(kpool, vpool, pool_bytes / 4, &rs);
    memcpy(kp->expect, kpool, pool_bytes);
    memcpy(vp->expect, vpool, pool_bytes);
    /* written pages: a shuffled list of distinct physical pages, so a kernel that ignores a table
     * (or the base) writes the wrong page */
    int32_t *phys = malloc(sizeof *phys * (size_t)n_pool);
    random_table(phys, n_pool, n_pool, &rs); /* a permutation of the pool */
    for (int j = 0, base = 0, tok = 0, next = 0; j < nseq; j++) {
        int used = last[j] / ps + 1, first = last[j] - cnt[j] + 1;
        for (int i = 0; i < used; i++)
            tables[base + i] = i >= first / ps ? phys[next++] : (int32_t)rng_below(&rs, (uint32_t)n_pool);
        for (int c = 0; c < cnt[j]; c++, tok++) {
            int pos = first + c;
            meta[2 * tok] = base;
            meta[2 * tok + 1] = pos;
            for (int h = 0; h < kvh; h++) {
                size_t dst = (((size_t)tables[base + pos / ps] * kvh + h) * ps + pos % ps) * hd;
                memcpy((float *)kp->expect + dst, kn + (size_t)tok * row + (size_t)h * hd, (size_t)hd * 4);
                memcpy((float *)vp->expect + dst, vn + (size_t)tok * row + (size_t)h * hd, (size_t)hd * 4);
            }
        }
        base += used;
    }
    free(phys);
    free(cnt);
    free(last);
    return 0;
}

static int appendb_plan(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out,
                        kiln_err *e)
{
    (void)e;
    return append_plan_of(&kiln_kernel_kv_append_batch, 1, s, c, be, out);
}

static double appendb_bytes(const kiln_shape *s) { return (double)s->m * (append_bytes(s) + 8.0); }

const kiln_kernel kiln_kernel_kv_append_batch = {
    .name = "kv_append_batch",
    .doc = "write the K and V rows of many sequences' tokens into their pages in one launch (continuous batching)",
    .params = append_params,
    .n_params = 1,
    .n_slots = 6,
    .shapes = appendb_shapes,
    .shape_key = appendb_shape_key,
    .config_valid = appendb_config_valid,
    .problem_init = appendb_problem_init,
    .plan = appendb_plan,
    .bytes = appendb_bytes,
    .flops = append_flops,
};
