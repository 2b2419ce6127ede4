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
 * KV element type: shape.quant KILN_F16 makes every one of the four kernels
 * work on f16 pools (2 bytes an element, the same layout): kv_append rounds
 * to nearest even, attention reads f16 and accumulates in f32. The sources
 * see KV_F16=1; the shape key ends in ".f16", so tuned entries of the two
 * types are kept apart. quant 0 or KILN_F32: f32 pools (the key as before).
 * The references round K/V exactly as the kernels do (util/f16.c), so the
 * f16 budgets are the f32 ones.
 *
 * KILN_TEST_BREAK=1 (every source): attention reads row 1 where row 0 of a
 * page is meant (not a permutation of positions, which softmax would not
 * notice; for ctx=1 an unused row); kv_append writes row (pos+1) % page_size.
 *
 * The four ops are descriptors (kernels/desc.h); their CPU entries live in
 * attention_paged_cpu.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/attention_paged/attention_paged.h"
#include "kernels/desc.h"
#include "kernels/kernel.h"
#include "kernels/sources.h"
#include "util/f16.h"

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
/* The state a problem's draws start from (never 0: xorshift would stay there). */
static uint64_t rng_start(uint64_t seed, uint64_t mul, uint64_t add)
{
    uint64_t rs = seed * mul + add;
    return rs ? rs : 1;
}

/* ---- KV element type ---- */
static int kv_f16(const kiln_shape *s) { return s->quant == KILN_F16; }
static size_t kv_elem(const kiln_shape *s) { return kv_f16(s) ? 2 : 4; }
static const char *kv_suffix(const kiln_shape *s) { return kv_f16(s) ? ".f16" : ""; }

/* n f32 values of f into the pool buffer `pool` in the shape's element type;
 * f16: f keeps the rounded values (what the kernel will read back). */
static void kv_store(const kiln_shape *s, void *pool, float *f, size_t n)
{
    if (!kv_f16(s)) {
        if (pool != f)
            memcpy(pool, f, n * sizeof *f);
        return;
    }
    uint16_t *h = pool;
    for (size_t i = 0; i < n; i++) {
        h[i] = kiln_f32_to_f16(f[i]);
        f[i] = kiln_f16_to_f32(h[i]);
    }
}

/* The f32 values the pools of slots kslot, kslot + 1 are made from: the
 * buffers themselves for f32 pools, else (f16) temporaries (kv_pools_put
 * rounds them into the pools, kv_pools_free frees them). 0 when out of memory. */
static int kv_pools_get(kiln_problem *p, const kiln_shape *s, int kslot, float **k, float **v, size_t *n)
{
    *n = p->bufs[kslot].bytes / kv_elem(s);
    if (!kv_f16(s)) {
        *k = p->bufs[kslot].host;
        *v = p->bufs[kslot + 1].host;
        return 1;
    }
    *k = malloc(*n * sizeof **k);
    *v = malloc(*n * sizeof **v);
    if (*k && *v)
        return 1;
    free(*k);
    free(*v);
    return 0;
}
static void kv_pools_put(kiln_problem *p, const kiln_shape *s, int kslot, float *k, float *v, size_t n)
{
    kv_store(s, p->bufs[kslot].host, k, n);
    kv_store(s, p->bufs[kslot + 1].host, v, n);
}
static void kv_pools_free(const kiln_shape *s, float *k, float *v)
{
    if (kv_f16(s)) {
        free(k);
        free(v);
    }
}

/* The KV_F16 define for the sources (f32: none, so f32 builds are unchanged). */
static void kv_define(kiln_plan_step *st, const kiln_shape *s)
{
    if (kv_f16(s))
        kiln_plan_define(st, "KV_F16", 1);
}

/* ---- shapes ---- */
static int shape_common_ok(const kiln_shape *s, char *why, size_t n)
{
    if (s->quant != 0 && s->quant != KILN_F32 && s->quant != KILN_F16) {
        snprintf(why, n, "KV element type %s: f32 or f16 only", kiln_quant_name(s->quant));
        return 0;
    }
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

/* The batch kernels: a token count the grid can hold (workgroup z or y). */
static int tokens_ok(const kiln_shape *s, char *why, size_t n)
{
    if (s->m < 1 || s->m > 65535) {
        snprintf(why, n, "tokens %lld out of 1..65535", (long long)s->m);
        return 0;
    }
    return 1;
}

static int attn_shape_ok(const kiln_shape *s, char *why, size_t n)
{
    if (!shape_common_ok(s, why, n))
        return 0;
    if (s->ctx < 1) {
        snprintf(why, n, "ctx %d < 1", s->ctx);
        return 0;
    }
    return 1;
}
static int attnb_shape_ok(const kiln_shape *s, char *why, size_t n)
{
    return tokens_ok(s, why, n) && attn_shape_ok(s, why, n);
}
static int appendb_shape_ok(const kiln_shape *s, char *why, size_t n)
{
    return tokens_ok(s, why, n) && shape_common_ok(s, why, n);
}

static void attn_shape_key(const kiln_shape *s, char *buf, size_t n)
{
    snprintf(buf, n, "h%d.kv%d.d%d.p%d.ctx%d%s", s->heads, s->kv_heads, s->head_dim, s->page_size, s->ctx,
             kv_suffix(s));
}
static void append_shape_key(const kiln_shape *s, char *buf, size_t n)
{
    snprintf(buf, n, "kv%d.d%d.p%d.pos%d%s", s->kv_heads, s->head_dim, s->page_size, s->ctx, kv_suffix(s));
}
static void attnb_shape_key(const kiln_shape *s, char *buf, size_t n)
{
    snprintf(buf, n, "h%d.kv%d.d%d.p%d.ctx%d.t%lld%s", s->heads, s->kv_heads, s->head_dim, s->page_size, s->ctx,
             (long long)s->m, kv_suffix(s));
}
static void appendb_shape_key(const kiln_shape *s, char *buf, size_t n)
{
    snprintf(buf, n, "kv%d.d%d.p%d.pos%d.t%lld%s", s->kv_heads, s->head_dim, s->page_size, s->ctx, (long long)s->m,
             kv_suffix(s));
}

/* AS(heads, kv_heads, head_dim, page_size, ctx), ASB(..., tokens) for the
 * batch kernels; a model's heads as one argument (LLAMA2 ...) through AS_ and
 * ASB_, which expand it first. */
#define ASB(h, kv, hd, page, ctx_, tokens)                                                                      \
    {.m = (tokens), .heads = (h), .kv_heads = (kv), .head_dim = (hd), .page_size = (page), .ctx = (ctx_),      \
     .quant = KILN_F32}
#define AS(h, kv, hd, page, ctx_) ASB(h, kv, hd, page, ctx_, 0)
#define AS_(...) AS(__VA_ARGS__)
#define ASB_(...) ASB(__VA_ARGS__)
/* the same over f16 pools */
#define HSB(h, kv, hd, page, ctx_, tokens)                                                                      \
    {.m = (tokens), .heads = (h), .kv_heads = (kv), .head_dim = (hd), .page_size = (page), .ctx = (ctx_),      \
     .quant = KILN_F16}
#define HS(h, kv, hd, page, ctx_) HSB(h, kv, hd, page, ctx_, 0)
#define HS_(...) HS(__VA_ARGS__)
#define HSB_(...) HSB(__VA_ARGS__)
/* Llama-2-7B, Llama-3-8B, SmolLM2 (135M: 9 heads / 3 kv, head_dim 64). */
#define LLAMA2 32, 32, 128
#define LLAMA3 32, 8, 128
#define SMOL 9, 3, 64
/* a model at three contexts (positions) x pages {16, 128} */
#define CTX3(model, a, b, c)                                                                                    \
    AS_(model, 16, a), AS_(model, 128, a), AS_(model, 16, b), AS_(model, 128, b), AS_(model, 16, c),            \
        AS_(model, 128, c)

/* 3 models x ctx {1, 17, 511} x page {16, 128}, plus ctx 4096 once per model
 * (page 16 for the GQA models, 128 for Llama-2, whose pools are the largest)
 * and one page-256 shape: 3*6 + 3 + 1 = 22 shapes; then f16 pools: the three
 * models at ctx 17 and 4096, and page 256 (7 more). */
static const kiln_shape attn_check[] = {
    CTX3(LLAMA2, 1, 17, 511), CTX3(LLAMA3, 1, 17, 511), CTX3(SMOL, 1, 17, 511),
    AS_(LLAMA2, 128, 4096),   AS_(LLAMA3, 16, 4096),    AS_(SMOL, 16, 4096),
    AS(32, 8, 128, 256, 1000),
    HS_(LLAMA2, 16, 17),      HS_(LLAMA2, 64, 4096),    HS_(LLAMA3, 16, 17),
    HS_(LLAMA3, 64, 4096),    HS_(SMOL, 16, 17),        HS_(SMOL, 64, 4096),
    HS(32, 8, 128, 256, 1000),
};
/* Llama-2-7B decode: ctx 1024 and 4096, page 16 and 64; f16 at page 64. */
static const kiln_shape attn_tune[] = {AS_(LLAMA2, 16, 1024), AS_(LLAMA2, 64, 1024), AS_(LLAMA2, 16, 4096),
                                       AS_(LLAMA2, 64, 4096), HS_(LLAMA2, 64, 1024), HS_(LLAMA2, 64, 4096)};
static const kiln_shape attn_quick[] = {
    AS(4, 2, 64, 16, 1),    /* one token */
    AS(4, 2, 128, 16, 64),  /* whole pages only */
    AS(6, 2, 64, 16, 37),   /* GQA 3, ctx not a page multiple */
    AS(8, 2, 128, 32, 300), /* GQA 4, > one split of 256 */
    AS(2, 2, 128, 64, 521), /* MHA, 3 splits of 256 */
    AS(6, 2, 64, 256, 270), /* page 256, partial second page */
    HS(6, 2, 64, 16, 37),   /* f16 pools */
    HS(2, 2, 128, 64, 521), /* f16, 3 splits of 256 */
};

/* kv_append: ctx is the position written */
static const kiln_shape append_check[] = {CTX3(LLAMA2, 0, 17, 4095), CTX3(LLAMA3, 0, 17, 4095),
                                          CTX3(SMOL, 0, 17, 4095),   AS(32, 8, 128, 256, 300),
                                          HS_(LLAMA2, 16, 17),       HS_(LLAMA3, 16, 17),
                                          HS_(SMOL, 16, 17),         HS(32, 8, 128, 256, 300)};
static const kiln_shape append_tune[] = {AS_(LLAMA2, 16, 1024), AS_(LLAMA2, 64, 4095), HS_(LLAMA2, 64, 4095)};
static const kiln_shape append_quick[] = {AS(4, 2, 64, 16, 0),  AS(6, 2, 64, 16, 37), AS(8, 2, 128, 32, 95),
                                          AS(6, 3, 64, 256, 511), HS(6, 2, 64, 16, 37), HS(8, 2, 128, 32, 95)};

/* the batch kernels: the last field is the token count */
static const kiln_shape attnb_check[] = {
    ASB_(LLAMA2, 16, 300, 8), ASB_(LLAMA2, 64, 1024, 3), ASB_(LLAMA3, 16, 300, 8), ASB_(LLAMA3, 64, 1024, 3),
    ASB_(SMOL, 16, 300, 8),   ASB_(SMOL, 64, 1024, 3),   ASB_(SMOL, 64, 2048, 16),
    HSB_(LLAMA2, 16, 300, 8), HSB_(LLAMA3, 16, 300, 8),  HSB_(SMOL, 16, 300, 8),
};
/* SmolLM2 decode at 8 sequences */
static const kiln_shape attnb_tune[] = {ASB_(SMOL, 64, 256, 8), ASB_(SMOL, 64, 1024, 8), HSB_(SMOL, 64, 1024, 8)};
static const kiln_shape attnb_quick[] = {
    ASB(4, 2, 64, 16, 1, 1),    /* one token, one position */
    ASB(6, 2, 64, 16, 37, 5),   /* GQA 3 */
    ASB(8, 2, 128, 32, 300, 8), /* GQA 4 */
    ASB(2, 2, 128, 64, 200, 3), /* MHA */
    HSB(6, 2, 64, 16, 37, 5),   /* f16 pools */
};
static const kiln_shape appendb_check[] = {
    ASB_(LLAMA2, 16, 300, 8), ASB_(LLAMA2, 64, 4095, 40), ASB_(LLAMA3, 16, 300, 8),
    ASB_(LLAMA3, 64, 4095, 40), ASB_(SMOL, 16, 300, 8), ASB_(SMOL, 64, 4095, 40),
    HSB_(LLAMA2, 16, 300, 8),   HSB_(LLAMA3, 16, 300, 8), HSB_(SMOL, 16, 300, 8),
};
static const kiln_shape appendb_tune[] = {ASB_(SMOL, 64, 1024, 8), HSB_(SMOL, 64, 1024, 8)};
static const kiln_shape appendb_quick[] = {ASB(4, 2, 64, 16, 0, 1), ASB(6, 2, 64, 16, 37, 9),
                                           ASB(8, 2, 128, 32, 95, 20), HSB(6, 2, 64, 16, 37, 9)};
#undef CTX3
#undef SMOL
#undef LLAMA3
#undef LLAMA2
#undef AS_
#undef AS
#undef ASB_
#undef ASB
#undef HS_
#undef HS
#undef HSB_
#undef HSB

/* ---- attention_paged: schedule space ---- */
enum { P_WG, P_TILE, P_SPLIT, P_VEC, P_REDUCE, P_HPW };
static const kiln_param attn_params[] = {
    {"wg", "WG", "threads per workgroup (GPU)", 4, {32, 64, 128, 256}, 64, KILN_P_GPU | KILN_P_WG},
    {"tile", "TILE", "positions per iteration of the page loop", 5, {16, 32, 64, 128, 256}, 64},
    /* short splits matter on the cpu: a model with few kv groups (SmolLM2:
     * 3) on 2 threads is otherwise split 2:1 between them */
    {"split", "SPLIT", "context tokens per workgroup, 0 = no split (flash-decoding + combine step)", 8,
     {0, 32, 64, 128, 256, 512, 1024, 2048}, 0},
    {"vec", "VEC", "load width in floats (GPU)", 3, {1, 2, 4}, 1, KILN_P_GPU},
    {"reduce", "REDUCE", "tile max: 0 shared-memory scan, 1 subgroup ops (Vulkan/CUDA)", 2, {0, 1}, 0, KILN_P_GPU},
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

/* Beyond the parameter flags (GPU knobs at their defaults on the cpu, wg
 * within the device's limit). */
static int attn_config_ok(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n)
{
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
    if (fp->backend == KILN_CPU) /* no shared memory, vector loads or subgroups there */
        return 1;
    if (s->head_dim % vec) {
        snprintf(why, n, "head_dim %d not a multiple of vec %d", s->head_dim, vec);
        return 0;
    }
    size_t sh = kiln_attn_shared_bytes(wg, tile, vec, hpw);
    if (fp->local_mem_bytes && sh > fp->local_mem_bytes) {
        snprintf(why, n, "shared memory %zu > device %llu bytes", sh, (unsigned long long)fp->local_mem_bytes);
        return 0;
    }
    if (red == 1 && !kiln_subgroup_reduce_ok(fp, wg, why, n))
        return 0;
    return 1;
}

/* The batch kernel's grid z is the token: no split along the context. */
static int attnb_config_ok(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n)
{
    if (c->v[P_SPLIT]) {
        snprintf(why, n, "split %d: the batch kernel runs one workgroup per head group and token (split 0)",
                 c->v[P_SPLIT]);
        return 0;
    }
    return attn_config_ok(s, c, fp, why, n);
}

/* What the plan needs: whole head groups per workgroup. */
static int attn_plan_ok(const kiln_shape *s, const kiln_config *c, char *why, size_t n)
{
    if (s->heads % c->v[P_HPW] || s->kv_heads <= 0) {
        snprintf(why, n, "hpw %d does not divide heads %d", c->v[P_HPW], s->heads);
        return 0;
    }
    return 1;
}
static int attnb_plan_ok(const kiln_shape *s, const kiln_config *c, char *why, size_t n)
{
    if (c->v[P_SPLIT]) {
        snprintf(why, n, "split %d in a batch", c->v[P_SPLIT]);
        return 0;
    }
    return attn_plan_ok(s, c, why, n);
}
/* A random page table: the first `used` entries of a shuffled permutation of
 * n_pool physical pages (n_pool > used), so a kernel that ignores the table
 * reads the wrong page. 0 when out of memory. */
static int random_table(int32_t *table, int used, int n_pool, uint64_t *rs)
{
    int32_t *perm = malloc((size_t)n_pool * sizeof *perm);
    if (!perm)
        return 0;
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
    return 1;
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

/* ---- attention_paged: problem ---- */

/* Where a paged kernel's buffers sit: two per-token row buffers (in/out),
 * the K and V pools (pool, pool + 1), the page table(s); the batch kernels'
 * meta is slot 5. */
typedef struct paged_slots {
    int row[2], pool, table;
} paged_slots;
static const paged_slots attn_pslots = {{0, 4}, 1, 3}, append_pslots = {{0, 1}, 2, 4};

/* Sizes for `tokens` rows of row_elems floats, a pool of n_pool pages and
 * `pages` table entries; returns how many slots the kernel has (5, 6 with
 * meta). */
static int paged_sizes(const paged_slots *at, const kiln_shape *s, int64_t tokens, size_t row_elems, int n_pool,
                       int pages, int batch, kiln_slot *slot)
{
    slot[at->row[0]].bytes = slot[at->row[1]].bytes = (size_t)tokens * row_elems * 4;
    slot[at->pool].bytes = slot[at->pool + 1].bytes =
        (size_t)n_pool * s->kv_heads * s->page_size * s->head_dim * kv_elem(s);
    slot[at->table].bytes = (size_t)pages * 4;
    if (!batch)
        return 5;
    slot[5].bytes = (size_t)tokens * 8;
    return 6;
}

/* The pages of the sequence (ctx tokens) and of the pool, which holds more
 * physical pages than the sequence uses. */
static int attn_pages(const kiln_shape *s, int *n_pool)
{
    int used = (s->ctx + s->page_size - 1) / s->page_size;
    *n_pool = used + used / 4 + 2;
    return used;
}

static const kiln_slot attn_slots[] = {
    {"q", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"k_pool", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"v_pool", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"page_table", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"out", KILN_OUT, KILN_CMP_F32, ATTN_TOL, 0},
};

static int attn_sizes(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    (void)cls, (void)seed;
    int n_pool, used = attn_pages(s, &n_pool);
    return paged_sizes(&attn_pslots, s, 1, (size_t)s->heads * s->head_dim, n_pool, used, 0, slot);
}

static int attn_fill(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)
{
    (void)cls;
    int hd = s->head_dim, ps = s->page_size, kvh = s->kv_heads;
    int n_pool, used = attn_pages(s, &n_pool);
    uint64_t rs = rng_start(seed, 0x9E3779B97F4A7C15ull, 0x243F6A8885A308D3ull);
    /* f16: K and V are made in f32 as for f32 pools, then rounded into the pools */
    float *q = p->bufs[0].host, *k, *v;
    size_t pool_elems;
    if (!kv_pools_get(p, s, 1, &k, &v, &pool_elems))
        return kiln_fail(e, KILN_E_NOMEM, "attention_paged: %zu-element f16 pools", pool_elems);
    /* Odd kv heads are "offset" heads: every K row (all pages, used or not) is
     * c + 0.05*noise for a fixed random c, and their query heads get q = g*c +
     * noise, so scores sit near +100..+200 with a spread of ~1: softmax still
     * weighs every position, but exp without max subtraction overflows to inf.
     * Even kv heads are plain uniform noise (near-uniform softmax). */
    float *cdir = malloc((size_t)kvh * hd * sizeof *cdir);
    if (!cdir) {
        kv_pools_free(s, k, v);
        return kiln_fail(e, KILN_E_NOMEM, "attention_paged: %d x %d offset directions", kvh, hd);
    }
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
    kv_pools_put(p, s, 1, k, v, pool_elems);
    int32_t *table = p->bufs[3].host;
    if (!random_table(table, used, n_pool, &rs)) {
        kv_pools_free(s, k, v);
        return kiln_fail(e, KILN_E_NOMEM, "attention_paged: a permutation of %d pages", n_pool);
    }
    kiln_attn_reference(q, k, v, table, p->bufs[4].expect, s->heads, kvh, hd, ps, s->ctx, 1.0f / sqrtf((float)hd));
    kv_pools_free(s, k, v);
    return 0;
}

/* ---- kv_append: problem ---- */

/* The pages up to position ctx, and a small pool (the page table may map many
 * logical pages to few physical ones; only the target entry matters here), so
 * CHECK shapes stay cheap. */
static int append_pages(const kiln_shape *s, int *n_pool)
{
    int used = s->ctx / s->page_size + 1;
    *n_pool = (used < 6 ? used : 6) + 3;
    return used;
}

/* The pools are compared exactly: the kernel copies floats (f16: rounds them
 * to nearest even, as util/f16.c does), so every byte of both must match (the
 * target rows hold the new K/V, every other byte keeps its random initial
 * value). */
static const kiln_slot append_slots[] = {
    {"k_new", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"v_new", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"k_pool", KILN_INOUT, KILN_CMP_EXACT, 0, 0},
    {"v_pool", KILN_INOUT, KILN_CMP_EXACT, 0, 0},
    {"page_table", KILN_IN, KILN_CMP_NONE, 0, 0},
};

static int append_sizes(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    (void)cls, (void)seed;
    int n_pool, used = append_pages(s, &n_pool);
    return paged_sizes(&append_pslots, s, 1, (size_t)s->kv_heads * s->head_dim, n_pool, used, 0, slot);
}

/* The pools' expected contents: the initial ones with token tok's rows of
 * k_new/v_new (slots 0 and 1, [tokens][kv_heads][head_dim]) at position pos
 * of physical page `page`. */
static void append_expect(kiln_problem *p, const kiln_shape *s, int tok, int32_t page, int pos)
{
    int hd = s->head_dim, ps = s->page_size, kvh = s->kv_heads;
    size_t row = (size_t)kvh * hd;
    for (int h = 0; h < kvh; h++) {
        size_t dst = (((size_t)page * kvh + h) * ps + pos % ps) * hd;
        for (int kv = 0; kv < 2; kv++) {
            const float *src = (const float *)p->bufs[kv].host + tok * row + (size_t)h * hd;
            if (kv_f16(s))
                for (int i = 0; i < hd; i++)
                    ((uint16_t *)p->bufs[2 + kv].expect)[dst + (size_t)i] = kiln_f32_to_f16(src[i]);
            else
                memcpy((float *)p->bufs[2 + kv].expect + dst, src, (size_t)hd * 4);
        }
    }
}

/* Random new rows, random pools (f16: rounded), and expected pools equal to
 * the initial ones (append_expect writes the new rows over them). 0 when out
 * of memory. */
static int append_fill_data(kiln_problem *p, const kiln_shape *s, uint64_t *rs)
{
    kiln_problem_buf *kp = &p->bufs[2], *vp = &p->bufs[3];
    rng_fill2(p->bufs[0].host, p->bufs[1].host, p->bufs[0].bytes / 4, rs);
    float *k, *v;
    size_t n;
    if (!kv_pools_get(p, s, 2, &k, &v, &n))
        return 0;
    rng_fill2(k, v, n, rs);
    kv_pools_put(p, s, 2, k, v, n);
    kv_pools_free(s, k, v);
    memcpy(kp->expect, kp->host, kp->bytes);
    memcpy(vp->expect, vp->host, vp->bytes);
    return 1;
}

static int append_fill(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)
{
    (void)cls;
    int ps = s->page_size, pos = s->ctx;
    int n_pool, used = append_pages(s, &n_pool);
    uint64_t rs = rng_start(seed, 0xD1B54A32D192ED03ull, 0x9E3779B97F4A7C15ull);
    int32_t *table = p->bufs[4].host;
    if (!append_fill_data(p, s, &rs))
        return kiln_fail(e, KILN_E_NOMEM, "kv_append: f16 pools");
    for (int i = 0; i < used; i++)
        table[i] = (int32_t)rng_below(&rs, (uint32_t)n_pool);
    int lp = pos / ps;
    /* The target page is never the logical index itself (mod pool), so a
     * kernel that ignores the table writes the wrong page. */
    while (table[lp] == lp % n_pool)
        table[lp] = (int32_t)rng_below(&rs, (uint32_t)n_pool);
    append_expect(p, s, 0, table[lp], pos);
    return 0;
}

/* ---- the batch kernels: problems ----
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
 *   shape: m = tokens, ctx = the largest position written.
 *
 * How many sequences a problem holds, and so how long the tables are, is
 * drawn from the seed: `sizes` and `fill` both draw it (batch_draw), and fill
 * goes on drawing the data from where the layout left the generator. */

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
    if (!nseq) /* no tokens (shape_ok refuses those) */
        return 0;
    last[nseq - 1] = maxpos; /* the longest context is the shape's */
    if (cnt[nseq - 1] > maxpos + 1)
        cnt[nseq - 1] = maxpos + 1;
    return nseq;
}

typedef struct batch_draw_t {
    int nseq, *cnt, *last; /* sequences: token counts and last positions (batch_layout) */
    int pages;             /* table entries of all sequences */
    int n_pool;            /* physical pages in the pools */
    uint64_t rs;           /* the generator after the layout */
} batch_draw_t;

static void batch_draw_free(batch_draw_t *b)
{
    free(b->cnt);
    free(b->last);
}

/* The layout of a batch problem. attention_paged_batch (attn 1): positions
 * up to ctx - 1, a pool of more physical pages than the longest table.
 * kv_append_batch: positions up to ctx, every written page its own physical
 * page (no two tokens write one row) and a few spare. 0 when out of memory. */
static int batch_draw(const kiln_shape *s, uint64_t seed, int attn, batch_draw_t *b)
{
    memset(b, 0, sizeof *b);
    b->rs = attn ? rng_start(seed, 0x9E3779B97F4A7C15ull, 0x94D049BB133111EBull)
                 : rng_start(seed, 0xD1B54A32D192ED03ull, 0x2545F4914F6CDD1Dull);
    size_t T = (size_t)s->m;
    b->cnt = malloc(sizeof *b->cnt * T);
    b->last = malloc(sizeof *b->last * T);
    if (!b->cnt || !b->last) {
        batch_draw_free(b);
        return 0;
    }
    b->nseq = batch_layout((int)s->m, attn ? s->ctx - 1 : s->ctx, &b->rs, b->cnt, b->last);
    int ps = s->page_size, max_pages = 0, written = 0;
    for (int j = 0; j < b->nseq; j++) {
        int used = b->last[j] / ps + 1;
        b->pages += used;
        max_pages = used > max_pages ? used : max_pages;
        written += b->last[j] / ps - (b->last[j] - b->cnt[j] + 1) / ps + 1; /* pages the new tokens touch */
    }
    b->n_pool = attn ? max_pages + max_pages / 4 + 2 : written + 3;
    return 1;
}

static int batch_sizes(const kiln_shape *s, uint64_t seed, int attn, kiln_slot *slot)
{
    batch_draw_t b;
    if (!batch_draw(s, seed, attn, &b))
        return -1;
    int n = attn ? paged_sizes(&attn_pslots, s, s->m, (size_t)s->heads * s->head_dim, b.n_pool, b.pages, 1, slot)
                 : paged_sizes(&append_pslots, s, s->m, (size_t)s->kv_heads * s->head_dim, b.n_pool, b.pages, 1,
                               slot);
    batch_draw_free(&b);
    return n;
}

static const kiln_slot attnb_slots[] = {
    {"q", KILN_IN, KILN_CMP_NONE, 0, 0},       {"k_pool", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"v_pool", KILN_IN, KILN_CMP_NONE, 0, 0},  {"tables", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"out", KILN_OUT, KILN_CMP_F32, ATTN_TOL, 0}, {"meta", KILN_IN, KILN_CMP_NONE, 0, 0},
};

static int attnb_sizes(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    (void)cls;
    return batch_sizes(s, seed, 1, slot);
}

static int attnb_fill(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)
{
    (void)cls;
    batch_draw_t b;
    if (!batch_draw(s, seed, 1, &b))
        return kiln_fail(e, KILN_E_NOMEM, "attention_paged_batch: layout of %lld tokens", (long long)s->m);
    int T = (int)s->m, hd = s->head_dim, ps = s->page_size, kvh = s->kv_heads, H = s->heads;
    size_t row = (size_t)H * hd;
    float *q = p->bufs[0].host, *k, *v;
    size_t pool_elems;
    if (!kv_pools_get(p, s, 1, &k, &v, &pool_elems)) {
        batch_draw_free(&b);
        return kiln_fail(e, KILN_E_NOMEM, "attention_paged_batch: %zu-element f16 pools", pool_elems);
    }
    rng_fill2(k, v, pool_elems, &b.rs);
    kv_pools_put(p, s, 1, k, v, pool_elems); /* f16: k, v keep the rounded values for the reference */
    /* q scaled so the softmax is far from uniform: a wrong row or page moves the output */
    for (size_t i = 0; i < (size_t)T * row; i++)
        q[i] = 4.0f * rng_unit(&b.rs);
    int32_t *tables = p->bufs[3].host, *meta = p->bufs[5].host;
    float scale = 1.0f / sqrtf((float)hd);
    for (int j = 0, base = 0, tok = 0; j < b.nseq; j++) {
        int used = b.last[j] / ps + 1;
        if (!random_table(tables + base, used, b.n_pool, &b.rs)) { /* each sequence its own permutation */
            kv_pools_free(s, k, v);
            batch_draw_free(&b);
            return kiln_fail(e, KILN_E_NOMEM, "attention_paged_batch: a permutation of %d pages", b.n_pool);
        }
        for (int c = 0; c < b.cnt[j]; c++, tok++) {
            int pos = b.last[j] - (b.cnt[j] - 1) + c;
            meta[2 * tok] = base;
            meta[2 * tok + 1] = pos;
            kiln_attn_reference(q + (size_t)tok * row, k, v, tables + base,
                                (float *)p->bufs[4].expect + (size_t)tok * row, H, kvh, hd, ps, pos + 1, scale);
        }
        base += used;
    }
    kv_pools_free(s, k, v);
    batch_draw_free(&b);
    return 0;
}

static const kiln_slot appendb_slots[] = {
    {"k_new", KILN_IN, KILN_CMP_NONE, 0, 0},      {"v_new", KILN_IN, KILN_CMP_NONE, 0, 0},
    {"k_pool", KILN_INOUT, KILN_CMP_EXACT, 0, 0}, {"v_pool", KILN_INOUT, KILN_CMP_EXACT, 0, 0},
    {"tables", KILN_IN, KILN_CMP_NONE, 0, 0},     {"meta", KILN_IN, KILN_CMP_NONE, 0, 0},
};

static int appendb_sizes(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    (void)cls;
    return batch_sizes(s, seed, 0, slot);
}

static int appendb_fill(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)
{
    (void)cls;
    batch_draw_t b;
    if (!batch_draw(s, seed, 0, &b))
        return kiln_fail(e, KILN_E_NOMEM, "kv_append_batch: layout of %lld tokens", (long long)s->m);
    int ps = s->page_size;
    int32_t *tables = p->bufs[4].host, *meta = p->bufs[5].host;
    if (!append_fill_data(p, s, &b.rs)) {
        batch_draw_free(&b);
        return kiln_fail(e, KILN_E_NOMEM, "kv_append_batch: f16 pools");
    }
    /* written pages: a shuffled list of distinct physical pages, so a kernel that ignores a table
     * (or the base) writes the wrong page */
    int32_t *phys = malloc(sizeof *phys * (size_t)b.n_pool);
    if (!phys || !random_table(phys, b.n_pool, b.n_pool, &b.rs)) { /* a permutation of the pool */
        free(phys);
        batch_draw_free(&b);
        return kiln_fail(e, KILN_E_NOMEM, "kv_append_batch: a permutation of %d pages", b.n_pool);
    }
    for (int j = 0, base = 0, tok = 0, next = 0; j < b.nseq; j++) {
        int used = b.last[j] / ps + 1, first = b.last[j] - b.cnt[j] + 1;
        for (int i = 0; i < used; i++)
            tables[base + i] = i >= first / ps ? phys[next++] : (int32_t)rng_below(&b.rs, (uint32_t)b.n_pool);
        for (int c = 0; c < b.cnt[j]; c++, tok++) {
            int pos = first + c;
            meta[2 * tok] = base;
            meta[2 * tok + 1] = pos;
            append_expect(p, s, tok, tables[base + pos / ps], pos);
        }
        base += used;
    }
    free(phys);
    batch_draw_free(&b);
    return 0;
}

/* ---- plans ---- */

/* Step 0 of the attention plans: q, k_pool, v_pool, the table(s), out (a
 * split config: the partials, scratch 0), [meta], then the shape and the
 * scale. Step 1, a split config's combine: partials -> out. */
#define ATTN_ARGS_TAIL                                                                                           \
    KA_SHAPE(HEADS), KA_SHAPE(KV_HEADS), KA_SHAPE(HEAD_DIM), KA_SHAPE(PAGE_SIZE), KA_SHAPE(CTX), KA_FVAL(0)
static const kiln_step_desc attn_steps[] = {
    {.source = "attention_paged", KILN_ENTRY("attn_paged"), .signature = "bbbbbiiiiif",
     .args = {KA_SLOT(0), KA_SLOT(1), KA_SLOT(2), KA_SLOT(3), KA_SCRATCH_OR(0, 4), ATTN_ARGS_TAIL}},
    {.source = "attention_paged", KILN_ENTRY("attn_paged_combine"), .signature = "bbiii",
     .args = {KA_SCRATCH(0), KA_SLOT(4), KA_SHAPE(HEADS), KA_SHAPE(HEAD_DIM), KA_VAL(0)}},
};
static const kiln_step_desc attnb_steps[] = {
    {.source = "attention_paged", .entry = "attn_paged", .cpu_entry = "attn_paged_batch_cpu",
     .signature = "bbbbbbiiiiif", .defines = {{"WRITE_PARTIAL", 0}, {"BATCH", 1}},
     .args = {KA_SLOT(0), KA_SLOT(1), KA_SLOT(2), KA_SLOT(3), KA_SLOT(4), KA_SLOT(5), ATTN_ARGS_TAIL}},
};
#undef ATTN_ARGS_TAIL

/* One workgroup per group of hpw query heads (x), one thread on the cpu. */
static void attn_grid(kiln_plan_step *st, const kiln_shape *s, const kiln_config *c, kiln_backend_kind be,
                      kiln_launch *v)
{
    st->local[0] = be == KILN_CPU ? 1 : (uint32_t)c->v[P_WG];
    st->grid[0] = (uint32_t)(s->heads / c->v[P_HPW]);
    v->fval[0] = 1.0f / sqrtf((float)s->head_dim);
}

/* y: the context's splits; a split config writes partial max/sum/acc per
 * split into scratch 0 and runs the combine step (one workgroup per head). */
static void attn_launch(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out,
                        kiln_launch *v)
{
    int nsplit = kiln_attn_nsplit(s, c->v[P_SPLIT]);
    kiln_plan_step *st = &out->steps[0], *cs = &out->steps[1];
    attn_grid(st, s, c, be, v);
    st->grid[1] = (uint32_t)nsplit;
    kiln_plan_define(st, "WRITE_PARTIAL", nsplit > 1);
    kv_define(st, s);
    if (nsplit == 1) {
        out->n_steps = 1;
        return;
    }
    out->n_scratch = 1;
    out->scratch_bytes[0] = (size_t)s->heads * nsplit * (s->head_dim + 2) * sizeof(float);
    cs->local[0] = st->local[0];
    cs->grid[0] = (uint32_t)s->heads;
    v->val[0] = nsplit;
}

/* z: the token */
static void attnb_launch(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out,
                         kiln_launch *v)
{
    attn_grid(&out->steps[0], s, c, be, v);
    out->steps[0].grid[2] = (uint32_t)s->m;
    kv_define(&out->steps[0], s);
}

/* kv_append(_batch): one thread per element of a token's K/V rows (x), the
 * tokens along y; the batch reads positions and table bases from meta
 * (slot 5) instead of the position argument. */
static const kiln_step_desc append_steps[] = {
    {.source = "attention_paged", KILN_ENTRY("kv_append"), .signature = "bbbbbiiii",
     .args = {KA_SLOT(0), KA_SLOT(1), KA_SLOT(2), KA_SLOT(3), KA_SLOT(4), KA_SHAPE(CTX), KA_SHAPE(PAGE_SIZE),
              KA_SHAPE(KV_HEADS), KA_SHAPE(HEAD_DIM)}},
};
static const kiln_step_desc appendb_steps[] = {
    {.source = "attention_paged", .entry = "kv_append", .cpu_entry = "kv_append_batch_cpu",
     .signature = "bbbbbbiiii", .defines = {{"BATCH", 1}},
     .args = {KA_SLOT(0), KA_SLOT(1), KA_SLOT(2), KA_SLOT(3), KA_SLOT(4), KA_SLOT(5),
              KA_I32(0) /* positions: meta */, KA_SHAPE(PAGE_SIZE), KA_SHAPE(KV_HEADS), KA_SHAPE(HEAD_DIM)}},
};

static void append_grid(kiln_plan_step *st, const kiln_shape *s, const kiln_config *c, kiln_backend_kind be)
{
    int n = s->kv_heads * s->head_dim, wg = c->v[0];
    st->local[0] = be == KILN_CPU ? 1 : (uint32_t)wg;
    st->grid[0] = be == KILN_CPU ? 1 : (uint32_t)((n + wg - 1) / wg);
}

static void append_launch(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out,
                          kiln_launch *v)
{
    (void)v;
    append_grid(&out->steps[0], s, c, be);
    out->steps[0].cpu_threads = 1; /* one token's rows: not worth a thread pool */
    kv_define(&out->steps[0], s);
}

static void appendb_launch(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out,
                           kiln_launch *v)
{
    (void)v;
    append_grid(&out->steps[0], s, c, be);
    out->steps[0].grid[1] = (uint32_t)s->m;
    kv_define(&out->steps[0], s);
}

/* ---- costs, defaults ---- */

static double attn_bytes(const kiln_shape *s)
{
    double kv = 2.0 * s->ctx * s->kv_heads * s->head_dim * (double)kv_elem(s);
    double table = 4.0 * ((s->ctx + s->page_size - 1) / (s->page_size ? s->page_size : 1));
    return kv + table + 2.0 * s->heads * s->head_dim * 4.0;
}
static double attn_flops(const kiln_shape *s) { return 4.0 * s->heads * s->ctx * s->head_dim; }
/* an upper bound: every token reads the longest context */
static double attnb_bytes(const kiln_shape *s) { return (double)s->m * attn_bytes(s); }
static double attnb_flops(const kiln_shape *s) { return (double)s->m * attn_flops(s); }
/* reads K and V rows (f32), writes them (the pools' element type) */
static double append_bytes(const kiln_shape *s)
{
    return 2.0 * s->kv_heads * s->head_dim * (4.0 + (double)kv_elem(s)) + 4.0;
}
static double appendb_bytes(const kiln_shape *s) { return (double)s->m * (append_bytes(s) + 8.0); }
static double append_flops(const kiln_shape *s)
{
    (void)s;
    return 0;
}

/* Drivers on CPU cores (PoCL, lavapipe): 4-wide K/V loads. At SmolLM2's
 * decode shapes (9 heads / 3 kv, d 64, ctx 256 and 1024) vec 4 beat vec 1 by
 * 2.2-2.5x on both in an interleaved re-measure (tune --config, 2026-12-01). */
static void attn_device_default(const kiln_fingerprint *fp, const kiln_shape *s, kiln_config *c)
{
    (void)s;
    if (fp->backend != KILN_CPU && fp->cpu_device)
        c->v[P_VEC] = 4;
}

/* ---- the descriptors ---- */

static const kiln_kernel_desc attn_desc = {
    .kernel = &kiln_kernel_attention_paged,
    .shapes = KILN_SHAPES(attn),
    .shape_ok = attn_shape_ok,
    .check = attn_config_ok,
    .slots = attn_slots,
    .sizes = attn_sizes,
    .fill = attn_fill,
    .plan_ok = attn_plan_ok,
    .steps = attn_steps,
    .n_steps = 2,
    .launch = attn_launch,
};
KILN_KERNEL_FROM_DESC(attention_paged, attn_desc,
                      .doc = "decode attention (one query token, GQA) over a paged f32 or f16 KV cache, online softmax, "
                             "optional flash-decoding split",
                      .params = attn_params, .n_params = N_ATTN_PARAMS, .n_slots = 5, .shape_key = attn_shape_key,
                      .bytes = attn_bytes, .flops = attn_flops, .device_default = attn_device_default);

static const kiln_param append_params[] = {
    {"wg", "WG", "threads per workgroup (GPU; one element per thread)", 4, {32, 64, 128, 256}, 64,
     KILN_P_GPU | KILN_P_WG},
};

static const kiln_kernel_desc append_desc = {
    .kernel = &kiln_kernel_kv_append,
    .shapes = KILN_SHAPES(append),
    .shape_ok = shape_common_ok,
    .slots = append_slots,
    .sizes = append_sizes,
    .fill = append_fill,
    .plan_ok = kiln_plan_unchecked,
    .steps = append_steps,
    .n_steps = 1,
    .launch = append_launch,
};
KILN_KERNEL_FROM_DESC(kv_append, append_desc,
                      .doc = "write one token's K and V rows (all kv heads) into its page of the paged KV cache (f32, or f16 rounded to nearest even)",
                      .params = append_params, .n_params = 1, .n_slots = 5, .shape_key = append_shape_key,
                      .bytes = append_bytes, .flops = append_flops);

static const kiln_kernel_desc attnb_desc = {
    .kernel = &kiln_kernel_attention_paged_batch,
    .shapes = KILN_SHAPES(attnb),
    .shape_ok = attnb_shape_ok,
    .check = attnb_config_ok,
    .slots = attnb_slots,
    .sizes = attnb_sizes,
    .fill = attnb_fill,
    .plan_ok = attnb_plan_ok,
    .steps = attnb_steps,
    .n_steps = 1,
    .launch = attnb_launch,
};
KILN_KERNEL_FROM_DESC(attention_paged_batch, attnb_desc,
                      .doc = "decode attention for the tokens of many sequences in one launch, each over its own "
                             "page table (continuous batching); attention_paged's sources and schedule space "
                             "without the split",
                      .params = attn_params, .n_params = N_ATTN_PARAMS, .n_slots = 6, .shape_key = attnb_shape_key,
                      .bytes = attnb_bytes, .flops = attnb_flops, .device_default = attn_device_default);

static const kiln_kernel_desc appendb_desc = {
    .kernel = &kiln_kernel_kv_append_batch,
    .shapes = KILN_SHAPES(appendb),
    .shape_ok = appendb_shape_ok,
    .slots = appendb_slots,
    .sizes = appendb_sizes,
    .fill = appendb_fill,
    .plan_ok = kiln_plan_unchecked,
    .steps = appendb_steps,
    .n_steps = 1,
    .launch = appendb_launch,
};
KILN_KERNEL_FROM_DESC(kv_append_batch, appendb_desc,
                      .doc = "write the K and V rows of many sequences' tokens into their pages in one launch "
                             "(continuous batching)",
                      .params = append_params, .n_params = 1, .n_slots = 6, .shape_key = appendb_shape_key,
                      .bytes = appendb_bytes, .flops = append_flops);
