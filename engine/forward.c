/* engine/forward.c - the Llama forward pass through the kernel set.
 *
 * Reads top to bottom like the model (llama2.c style); every step is one
 * kernel op on the engine's device:
 *
 *   x = embed(tokens)                      xn = rmsnorm(x) * attn_norm[0]
 *   for each layer:
 *     q, k, v = Wq xn, Wk xn, Wv xn        (gemm_int4 over the chunk, gemv_int4 for one token)
 *     rope(q), rope(k)                     (adjacent pairs: GGUF Llama; half-split: NeoX-style archs)
 *     kv_append(k, v) per token            (into the sequence's pages)
 *     att = attention(q, cache) per token  (causal: token t sees positions <= its own)
 *     x += Wo att; xn = rmsnorm(x) * ffn_norm        (one fused rmsnorm op)
 *     x += Wdown (silu(Wgate xn) * Wup xn); xn = rmsnorm(x) * next norm
 *   logits = Wout xn[last]                 (every token's: kiln_forward_all_logits)
 *
 * Activations are f32 [tokens][width], token-major; one token's row is bound
 * with a byte offset (device buffer offsets), never copied. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "kernels/norm_rope/norm_rope.h"
#include "engine/rope_scaling.h"
#include "util/clock.h"

typedef struct kset {
    const kiln_kernel *embed, *rmsnorm, *gemv, *gemm, *rope, *append, *attn, *silu, *argmax;
    const kiln_kernel *append_b, *attn_b; /* several sequences in one launch (NULL: one launch per token) */
} kset;

static int kernels(kset *k, kiln_err *e)
{
    k->embed = kiln_kernel_find("embed_gather");
    k->rmsnorm = kiln_kernel_find("rmsnorm");
    k->gemv = kiln_kernel_find("gemv_int4");
    k->gemm = kiln_kernel_find("gemm_int4");
    k->rope = kiln_kernel_find("rope");
    k->append = kiln_kernel_find("kv_append");
    k->attn = kiln_kernel_find("attention_paged");
    k->silu = kiln_kernel_find("silu_mul");
    k->argmax = kiln_kernel_find("argmax");
    k->append_b = kiln_kernel_find("kv_append_batch");
    k->attn_b = kiln_kernel_find("attention_paged_batch");
    if (!k->append_b || !k->attn_b)
        k->append_b = k->attn_b = NULL;
    if (!k->embed || !k->rmsnorm || !k->gemv || !k->rope || !k->append || !k->attn || !k->silu || !k->argmax)
        return kiln_fail(e, KILN_E_INVALID, "engine: a decode kernel is missing from the registry");
    if (k->gemm && !k->gemm->shapes)
        k->gemm = NULL; /* not built: prefill falls back to one gemv per token */
    return 0;
}

int kiln_engine_init(kiln_engine *en, kiln_model *m, const kiln_engine_opts *o, kiln_err *e)
{
    memset(en, 0, sizeof *en);
    en->m = m;
    en->dev = m->dev;
    const kiln_llama_config *c = &m->cfg;
    en->chunk = o && o->chunk > 0 ? o->chunk : 64;
    int ctx = o && o->ctx > 0 ? o->ctx : (c->context_length > 0 && c->context_length < 4096 ? c->context_length : 4096);
    en->ctx = ctx;
    int precision = o ? o->precision : KILN_PRECISION_FAST;
    if (precision != KILN_PRECISION_FAST && precision != KILN_PRECISION_STRICT)
        return kiln_fail(e, KILN_E_INVALID, "engine: precision %d is neither fast (%d) nor strict (%d)", precision,
                         KILN_PRECISION_FAST, KILN_PRECISION_STRICT);
    /* the matrix shapes say what the configs may do to activations */
    en->act = precision == KILN_PRECISION_STRICT ? KILN_ACT_F32 : KILN_ACT_Q8;
    int page = o && o->page_size > 0 ? o->page_size : 64;
    kset ks;
    int rc = kernels(&ks, e);
    if (rc)
        return rc;
    if ((rc = kiln_ops_new(&en->ops, m->dev, o ? o->db : NULL, o ? o->log : NULL, e)))
        return rc;
    en->prof = o ? o->profile : NULL;
    kiln_ops_set_profile(en->ops, en->prof);
    if ((rc = kiln_kv_cache_init(&en->kv, m->dev, c->n_layer, c->n_head_kv, c->head_dim, page, ctx,
                                 o ? o->kv_type : KILN_KV_F32, e))) {
        kiln_engine_free(en);
        return kiln_err_wrap(e, "engine: KV cache");
    }
    if (o && o->log)
        fprintf(o->log, "kv cache    %s, %zu bytes per token (%d layers x K,V x %d kv heads x %d), %d tokens in "
                "pages of %d: %.1f MiB\n", kiln_kv_type_name(en->kv.kv_type), kiln_kv_bytes_per_token(&en->kv),
                c->n_layer, c->n_head_kv, c->head_dim, en->kv.n_pages * en->kv.page_size, en->kv.page_size,
                (double)en->kv.bytes / (1024.0 * 1024.0));
    size_t T = (size_t)en->chunk, E = (size_t)c->n_embd, HD = (size_t)c->n_head * (size_t)c->head_dim,
           KVD = (size_t)c->n_head_kv * (size_t)c->head_dim, F = (size_t)c->n_ff;
    struct {
        kiln_buffer **b;
        size_t bytes;
    } bufs[] = {
        {&en->x, T * E * 4},     {&en->xn, T * E * 4},   {&en->q, T * HD * 4},    {&en->k, T * KVD * 4},
        {&en->v, T * KVD * 4},   {&en->att, T * HD * 4}, {&en->o, T * E * 4},     {&en->gate, T * F * 4},
        {&en->up, T * F * 4},    {&en->hid, T * F * 4},  {&en->logits, (size_t)c->n_vocab * 4},
        {&en->best, 4},          {&en->ids, T * 4},      {&en->pos, T * 4},
        {&en->qkv, (HD + 2 * KVD) * 4}, {&en->gu, 2 * F * 4}, {&en->rope_inv, (size_t)(c->rope_dim / 2) * 4},
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (!(*bufs[i].b = kiln_alloc(m->dev, bufs[i].bytes, e))) {
            kiln_engine_free(en);
            return kiln_err_wrap(e, "engine: activation buffer of %zu bytes", bufs[i].bytes);
        }
    if (!(en->logits_host = malloc(sizeof(float) * (size_t)c->n_vocab))) {
        kiln_engine_free(en);
        return kiln_fail(e, KILN_E_NOMEM, "engine: out of memory");
    }
    /* the RoPE table once: scaling (linear, llama3, rope_freqs.weight) is in
     * its values, so the kernel is the same for every model */
    float inv[512];
    if (c->rope_dim / 2 > (int)(sizeof inv / sizeof inv[0])) {
        kiln_engine_free(en);
        return kiln_fail(e, KILN_E_INVALID, "engine: rope_dim %d is over 1024", c->rope_dim);
    }
    if ((rc = kiln_rope_inv_freq(m->gguf, c, inv, e)) ||
        (rc = kiln_write(m->dev, en->rope_inv, 0, inv, (size_t)(c->rope_dim / 2) * 4, e))) {
        kiln_engine_free(en);
        return rc;
    }
    /* token rows are bound by offset: they must meet the device's alignment */
    size_t align = m->dev->fp.offset_align ? m->dev->fp.offset_align : 1;
    if ((E * 4) % align || (HD * 4) % align || (KVD * 4) % align) {
        kiln_engine_free(en);
        return kiln_fail(e, KILN_E_INVALID, "engine: rows of %zu/%zu/%zu bytes are not multiples of %s's buffer "
                         "offset alignment %zu", E * 4, HD * 4, KVD * 4, m->dev->fp.name, align);
    }
    return 0;
}

void kiln_engine_free(kiln_engine *en)
{
    if (!en->dev)
        return;
    kiln_buffer **bs[] = {&en->x, &en->xn, &en->q, &en->k, &en->v, &en->att, &en->o, &en->gate,
                          &en->up, &en->hid, &en->logits, &en->best, &en->ids, &en->pos, &en->logits_all,
                          &en->qkv, &en->gu, &en->rope_inv, &en->btables, &en->bmeta};
    for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) {
        kiln_free(en->dev, *bs[i]);
        *bs[i] = NULL;
    }
    kiln_kv_cache_free(&en->kv);
    kiln_ops_free(en->ops);
    free(en->logits_host);
    free(en->batch_logits);
    memset(en, 0, sizeof *en);
}

/* ---- one op per model step ---- */

/* Configs of token-count-shaped ops are looked up by the chunk class (the
 * next power of two), the sizes `tune --model` tunes (engine/tune_shapes.c). */
static int64_t token_class(int64_t T)
{
    int64_t c = 1;
    while (c < T)
        c *= 2;
    return c;
}

/* xn = rmsnorm(x) * w; with a residual r, first x += r (one fused op). */
static int rmsnorm(kiln_engine *en, const kset *ks, int T, kiln_buffer *w, kiln_buffer *r, kiln_err *e)
{
    int op = r ? KILN_RMSNORM_ADD_RESIDUAL : KILN_RMSNORM_PLAIN;
    kiln_shape s = {.m = T, .k = en->m->cfg.n_embd, .op = op};
    kiln_buffer *slots[4] = {en->x, w, en->xn, r ? r : en->xn};
    kiln_shape look = s;
    look.m = token_class(T);
    return kiln_op(en->ops, "rmsnorm", ks->rmsnorm, &s, &look, slots, NULL, e);
}

/* y[T][rows] = W x[T][cols], batched when T > 1. xoff/yoff: byte offsets.
 * label names the matrix in the profile. */
static int matmul(kiln_engine *en, const kset *ks, const char *label, const kiln_dmat *w, kiln_buffer *x, size_t xoff,
                  kiln_buffer *y, size_t yoff, int T, kiln_err *e)
{
    if (w->n_parts > 1) {
        /* a matrix in several buffers (the LM head of a large vocabulary on a
         * device with small buffers): one gemv per part and token, each part
         * writing its rows of y[t] at an aligned offset. Configs are looked up
         * at the whole matrix's shape. */
        kiln_shape full = {.m = w->rows, .k = w->cols, .quant = w->quant, .group = w->group ? w->group : 0};
        for (int t = 0; t < T; t++)
            for (int i = 0; i < w->n_parts; i++) {
                const kiln_dmat_part *p = &w->part[i];
                kiln_buffer *slots[5] = {p->qs, p->scales, p->mins, x, y};
                size_t offs[5] = {0, 0, 0, xoff + (size_t)t * (size_t)w->cols * 4,
                                  yoff + ((size_t)t * (size_t)w->rows + (size_t)p->row0) * 4};
                kiln_shape s = full;
                s.m = p->rows;
                s.ilv = w->ilv; /* the parts' layout (row-major): configs must read it, the lookup leaves it open */
                int rc = kiln_op(en->ops, label, ks->gemv, &s, &full, slots, offs, e);
                if (rc)
                    return kiln_err_wrap(e, "rows %lld..%lld (part %d of %d)", (long long)p->row0,
                                         (long long)(p->row0 + p->rows), i + 1, w->n_parts);
            }
        return 0;
    }
    kiln_buffer *slots[5] = {w->part[0].qs, w->part[0].scales, w->part[0].mins, x, y};
    /* a view (rows of a stacked matrix) starts row0 rows into the buffers;
     * a format without scales or mins has 4-byte dummies there */
    size_t sbytes = (size_t)w->row0 * (size_t)w->groups_per_row * 2;
    size_t offs[5] = {(size_t)w->row0 * (size_t)w->words_per_row * 4, w->groups_per_row ? sbytes : 0,
                      w->quant == KILN_Q4_1 ? sbytes : 0, xoff, yoff};
    /* the matrix's layout travels in the shape: gemv configs must read it
     * (the layout was chosen at load from the same lookup, engine/ops.c
     * kiln_engine_layout) and gemm reads it as given */
    kiln_shape s = {.m = w->rows, .k = w->cols, .quant = w->quant, .group = w->group ? w->group : 0,
                    .act = en->act, .ilv = w->ilv};
    if (T == 1) {
        kiln_shape look = s;
        look.ilv = 0; /* winners are stored per shape, not per layout */
        return kiln_op(en->ops, label, ks->gemv, &s, &look, slots, offs, e);
    }
    if (ks->gemm) {
        s.n = T;
        if (w->gemv_f32) /* x as the matrix's gemv takes it: a token's row is the same bits in a batch */
            s.act = KILN_ACT_F32;
        kiln_shape look = s; /* tuned per chunk-size class (the next power of two) and layout */
        look.n = 1;
        while (look.n < T)
            look.n *= 2;
        return kiln_op(en->ops, label, ks->gemm, &s, &look, slots, offs, e);
    }
    s.ilv = w->ilv;
    for (int t = 0; t < T; t++) {
        offs[3] = xoff + (size_t)t * (size_t)w->cols * 4;
        offs[4] = yoff + (size_t)t * (size_t)w->rows * 4;
        int rc = kiln_op(en->ops, label, ks->gemv, &s, NULL, slots, offs, e);
        if (rc)
            return rc;
    }
    return 0;
}

/* An activation: a buffer and the byte offset its rows start at (q, k and v
 * are blocks of one buffer after a stacked Q/K/V gemv). */
typedef struct act {
    kiln_buffer *b;
    size_t off;
} act;

static int rope(kiln_engine *en, const kset *ks, act x, int heads, int T, kiln_err *e)
{
    const kiln_llama_config *c = &en->m->cfg;
    kiln_shape s = {.m = T, .heads = heads, .head_dim = c->head_dim, .k = c->rope_dim,
                    .n = (int64_t)lroundf(c->rope_theta), .op = c->rope_neox ? KILN_ROPE_NEOX : KILN_ROPE_ADJACENT};
    kiln_buffer *slots[3] = {x.b, en->pos, en->rope_inv};
    size_t offs[3] = {x.off, 0, 0};
    kiln_shape look = s;
    look.m = token_class(T);
    return kiln_op(en->ops, "rope", ks->rope, &s, &look, slots, offs, e);
}

/* The attention kernels' shape field for the pools' element type: f16 pools
 * are KILN_F16 (a KV_F16 build, its own tuning key); f32 pools leave quant 0
 * as before, so existing tuned entries keep matching. */
static int kv_quant(const kiln_kv_cache *kv) { return kv->kv_type == KILN_KV_F16 ? KILN_F16 : 0; }

/* K/V rows of a segment (rows r0.. of the batch) into its sequence's pages,
 * then each token's attention over positions 0..its own (causal). */
static int attention(kiln_engine *en, const kset *ks, int layer, kiln_kv_seq *seq, int p0, int r0, int T, act q,
                     act k, act v, kiln_err *e)
{
    const kiln_llama_config *c = &en->m->cfg;
    size_t kvrow = (size_t)c->n_head_kv * (size_t)c->head_dim * 4, qrow = (size_t)c->n_head * (size_t)c->head_dim * 4;
    kiln_buffer *kp = en->kv.k[layer], *vp = en->kv.v[layer];
    for (int t = 0; t < T; t++) {
        kiln_shape s = {.heads = c->n_head, .kv_heads = c->n_head_kv, .head_dim = c->head_dim,
                        .page_size = en->kv.page_size, .ctx = p0 + t, .quant = kv_quant(&en->kv)};
        kiln_shape look = s;
        look.ctx = 0;
        kiln_buffer *slots[5] = {k.b, v.b, kp, vp, seq->table};
        size_t offs[5] = {k.off + (size_t)(r0 + t) * kvrow, v.off + (size_t)(r0 + t) * kvrow, 0, 0, 0};
        int rc = kiln_op(en->ops, "kv_append", ks->append, &s, &look, slots, offs, e);
        if (rc)
            return rc;
    }
    for (int t = 0; t < T; t++) {
        int ctx = p0 + t + 1;
        kiln_shape s = {.heads = c->n_head, .kv_heads = c->n_head_kv, .head_dim = c->head_dim,
                        .page_size = en->kv.page_size, .ctx = ctx, .quant = kv_quant(&en->kv)};
        kiln_shape look = s; /* tuned per context bucket */
        look.ctx = 256;
        while (look.ctx < ctx)
            look.ctx *= 2;
        kiln_buffer *slots[5] = {q.b, kp, vp, seq->table, en->att};
        size_t offs[5] = {q.off + (size_t)(r0 + t) * qrow, 0, 0, 0, (size_t)(r0 + t) * qrow};
        int rc = kiln_op(en->ops, "attention", ks->attn, &s, &look, slots, offs, e);
        if (rc)
            return rc;
    }
    return 0;
}

/* The K/V rows of every token of a multi-sequence step into their pages, then
 * every token's attention, one launch each (kv_append_batch,
 * attention_paged_batch): the step's page tables and per-token (table base,
 * position) are in en->btables and en->bmeta (kiln_forward_batch). */
static int attention_batch(kiln_engine *en, const kset *ks, int layer, int T, int max_ctx, act q, act k, act v,
                           kiln_err *e)
{
    const kiln_llama_config *c = &en->m->cfg;
    kiln_buffer *kp = en->kv.k[layer], *vp = en->kv.v[layer];
    kiln_shape s = {.heads = c->n_head, .kv_heads = c->n_head_kv, .head_dim = c->head_dim,
                    .page_size = en->kv.page_size, .ctx = max_ctx - 1, .m = T, .quant = kv_quant(&en->kv)};
    kiln_shape look = s;
    look.ctx = 0;
    look.m = token_class(T);
    kiln_buffer *aslots[6] = {k.b, v.b, kp, vp, en->btables, en->bmeta};
    size_t aoffs[6] = {k.off, v.off, 0, 0, 0, 0};
    int rc = kiln_op(en->ops, "kv_append", ks->append_b, &s, &look, aslots, aoffs, e);
    if (rc)
        return rc;
    s.ctx = max_ctx;
    look.ctx = 256; /* tuned per context bucket of the longest context */
    while (look.ctx < max_ctx)
        look.ctx *= 2;
    kiln_buffer *slots[6] = {q.b, kp, vp, en->btables, en->att, en->bmeta};
    size_t offs[6] = {q.off, 0, 0, 0, 0, 0};
    return kiln_op(en->ops, "attention", ks->attn_b, &s, &look, slots, offs, e);
}

/* The rows of an embedding table held in parts: dequantized on the host from
 * the same converted matrix the device holds, written as x[T][n_embd]. */
static int embed_on_host(kiln_engine *en, const int32_t *tokens, int T, kiln_err *e)
{
    const kiln_model *m = en->m;
    size_t n = (size_t)m->cfg.n_embd;
    float *rows = malloc(sizeof *rows * n * (size_t)T);
    if (!rows)
        return kiln_fail(e, KILN_E_NOMEM, "embedding rows for %d tokens: out of memory", T);
    for (int t = 0; t < T; t++)
        kiln_dequantize_row(&m->embd_host, tokens[t], rows + (size_t)t * n);
    int rc = kiln_write(en->dev, en->x, 0, rows, sizeof *rows * n * (size_t)T, e);
    free(rows);
    return rc;
}

/* One forward over T rows: the segments' tokens (ids, concatenated) after
 * what each sequence holds, appending their K/V. The LM head then runs over
 * rows lrows[0..n_lrows) (ascending) into out[n_lrows][n_vocab]: one gemm
 * per run of consecutive rows. */
static int chunk(kiln_engine *en, const kset *ks, const kiln_batch_seg *segs, int n_segs, const int32_t *tokens,
                 int T, kiln_buffer *out, const int *lrows, int n_lrows, kiln_err *e)
{
    kiln_model *m = en->m;
    const kiln_llama_config *c = &m->cfg;
    int32_t pos[T];
    int max_ctx = 0;
    for (int i = 0, r = 0; i < n_segs; i++) {
        for (int t = 0; t < segs[i].n; t++)
            pos[r++] = segs[i].seq->n_tokens + t;
        if (segs[i].seq->n_tokens + segs[i].n > max_ctx)
            max_ctx = segs[i].seq->n_tokens + segs[i].n;
    }
    int rc;
    if ((rc = kiln_write(en->dev, en->ids, 0, tokens, (size_t)T * 4, e)) ||
        (rc = kiln_write(en->dev, en->pos, 0, pos, (size_t)T * 4, e)))
        return rc;

    if (m->embd_on_host) {
        if ((rc = embed_on_host(en, tokens, T, e)))
            return rc;
    } else {
        kiln_shape es = {.m = T, .k = c->n_embd, .n = m->embd.rows, .quant = m->embd.quant, .group = m->embd.group,
                         .ilv = m->embd.ilv > 1 ? m->embd.ilv : 0};
        kiln_buffer *eslots[5] = {m->embd.part[0].qs, m->embd.part[0].scales, m->embd.part[0].mins, en->ids, en->x};
        kiln_shape elook = es;
        elook.m = token_class(T);
        elook.ilv = 0;
        if ((rc = kiln_op(en->ops, "embed", ks->embed, &es, &elook, eslots, NULL, e)))
            return rc;
    }
    if ((rc = rmsnorm(en, ks, T, m->layers[0].attn_norm, NULL, e)))
        return rc;
    size_t hd4 = (size_t)c->n_head * (size_t)c->head_dim * 4, kvd4 = (size_t)c->n_head_kv * (size_t)c->head_dim * 4;
    size_t ff4 = (size_t)c->n_ff * 4;
    for (int l = 0; l < c->n_layer; l++) {
        kiln_layer *L = &m->layers[l];
        /* a decode step multiplies stacked Q/K/V once (q, k, v are then
         * blocks of en->qkv); a prefill chunk multiplies them one by one */
        act q = {en->q, 0}, k = {en->k, 0}, v = {en->v, 0};
        if (T == 1 && L->fused_qkv) {
            q = (act){en->qkv, 0};
            k = (act){en->qkv, hd4};
            v = (act){en->qkv, hd4 + kvd4};
            rc = matmul(en, ks, "attn_qkv", &L->wqkv, en->xn, 0, en->qkv, 0, 1, e);
        } else if (!(rc = matmul(en, ks, "attn_q", &L->wq, en->xn, 0, en->q, 0, T, e)) &&
                   !(rc = matmul(en, ks, "attn_k", &L->wk, en->xn, 0, en->k, 0, T, e))) {
            rc = matmul(en, ks, "attn_v", &L->wv, en->xn, 0, en->v, 0, T, e);
        }
        /* after a stacked Q/K/V gemv the K heads follow the Q heads in en->qkv, so one
         * rope launch turns both (one position: the same angles for every head) */
        int qk_adjacent = T == 1 && L->fused_qkv;
        if (!rc && qk_adjacent)
            rc = rope(en, ks, q, c->n_head + c->n_head_kv, T, e);
        else if (!rc && !(rc = rope(en, ks, q, c->n_head, T, e)))
            rc = rope(en, ks, k, c->n_head_kv, T, e);
        if (!rc && n_segs > 1 && ks->attn_b && en->bmeta)
            rc = attention_batch(en, ks, l, T, max_ctx, q, k, v, e);
        else
            for (int i = 0, r0 = 0; !rc && i < n_segs; r0 += segs[i++].n)
                rc = attention(en, ks, l, segs[i].seq, segs[i].seq->n_tokens, r0, segs[i].n, q, k, v, e);
        if (rc || (rc = matmul(en, ks, "attn_out", &L->wo, en->att, 0, en->o, 0, T, e)) ||
            (rc = rmsnorm(en, ks, T, L->ffn_norm, en->o, e)))
            return kiln_err_wrap(e, "layer %d (attention)", l);
        kiln_shape ss = {.m = (int64_t)T * c->n_ff}, slook = {.m = token_class(T) * c->n_ff};
        kiln_buffer *sslots[3] = {en->gate, en->up, en->hid};
        size_t soffs[3] = {0, 0, 0};
        kiln_buffer *next = l + 1 < c->n_layer ? m->layers[l + 1].attn_norm : m->out_norm;
        if (T == 1 && L->fused_gu) { /* stacked gate/up: one gemv, gate and up are halves of en->gu */
            sslots[0] = sslots[1] = en->gu;
            soffs[1] = ff4;
            rc = matmul(en, ks, "ffn_gate_up", &L->wgu, en->xn, 0, en->gu, 0, 1, e);
        } else if (!(rc = matmul(en, ks, "ffn_gate", &L->w_gate, en->xn, 0, en->gate, 0, T, e))) {
            rc = matmul(en, ks, "ffn_up", &L->w_up, en->xn, 0, en->up, 0, T, e);
        }
        if (rc || (rc = kiln_op(en->ops, "silu_mul", ks->silu, &ss, &slook, sslots, soffs, e)) ||
            (rc = matmul(en, ks, "ffn_down", &L->w_down, en->hid, 0, en->o, 0, T, e)) ||
            (rc = rmsnorm(en, ks, T, next, en->o, e)))
            return kiln_err_wrap(e, "layer %d (feed-forward)", l);
    }
    /* the rows whose logits are wanted: a gemm over each run of consecutive rows (a gemv for a single row) */
    for (int i = 0; i < n_lrows && !rc;) {
        int j = i + 1;
        while (j < n_lrows && lrows[j] == lrows[j - 1] + 1)
            j++;
        rc = matmul(en, ks, "output", &m->output, en->xn, (size_t)lrows[i] * (size_t)c->n_embd * 4, out,
                    (size_t)i * (size_t)c->n_vocab * 4, j - i, e);
        i = j;
    }
    return rc;
}

/* The device buffer for every token's logits of a chunk, made on first use. */
static int all_logits_buffer(kiln_engine *en, kiln_err *e)
{
    if (en->logits_all)
        return 0;
    size_t row = (size_t)en->m->cfg.n_vocab * 4, align = en->dev->fp.offset_align ? en->dev->fp.offset_align : 1;
    if (en->m->output.n_parts > 1 && row % align) /* parts write rows of y by offset */
        return kiln_fail(e, KILN_E_INVALID, "engine: logits rows of %zu bytes are not multiples of %s's buffer offset "
                         "alignment %zu", row, en->dev->fp.name, align);
    if (!(en->logits_all = kiln_alloc(en->dev, row * (size_t)en->chunk, e)))
        return kiln_err_wrap(e, "engine: logits of %d tokens x %d (a smaller prefill chunk needs less)", en->chunk,
                             en->m->cfg.n_vocab);
    return 0;
}

/* all_host: NULL (kiln_forward) or [n][n_vocab] (kiln_forward_all_logits). */
static int forward(kiln_engine *en, kiln_kv_seq *seq, const int32_t *tokens, int n, float *all_host, kiln_err *e)
{
    if (n <= 0)
        return kiln_fail(e, KILN_E_INVALID, "forward: no tokens");
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= en->m->cfg.n_vocab)
            return kiln_fail(e, KILN_E_INVALID, "forward: token %d at %d outside the vocabulary (%d)", tokens[i], i,
                             en->m->cfg.n_vocab);
    kset ks;
    int rc = kernels(&ks, e);
    if (rc)
        return rc;
    if ((all_host && (rc = all_logits_buffer(en, e))) || (rc = kiln_kv_seq_reserve(seq, n, e)))
        return rc;
    int start = seq->n_tokens;
    size_t row = (size_t)en->m->cfg.n_vocab;
    for (int i = 0; i < n; i += en->chunk) {
        int T = n - i < en->chunk ? n - i : en->chunk;
        if (en->prof)
            kiln_profile_chunk(en->prof, T, kiln_now_s());
        kiln_batch_seg seg = {.seq = seq, .tokens = tokens + i, .n = T};
        int rows[T];
        for (int t = 0; t < T; t++)
            rows[t] = t;
        if ((rc = all_host ? chunk(en, &ks, &seg, 1, tokens + i, T, en->logits_all, rows, T, e)
                           : chunk(en, &ks, &seg, 1, tokens + i, T, en->logits, rows + T - 1, 1, e)) ||
            (all_host && (rc = kiln_read(en->dev, en->logits_all, 0, all_host + (size_t)i * row,
                                         (size_t)T * row * sizeof(float), e)))) {
            kiln_kv_seq_truncate(seq, start); /* the sequence is unchanged on failure */
            return kiln_err_wrap(e, "forward on %s (tokens %d..%d)", en->dev->fp.name, start + i, start + i + T - 1);
        }
        seq->n_tokens += T;
    }
    return 0;
}

int kiln_forward(kiln_engine *en, kiln_kv_seq *seq, const int32_t *tokens, int n, kiln_err *e)
{
    return forward(en, seq, tokens, n, NULL, e);
}

int kiln_forward_all_logits(kiln_engine *en, kiln_kv_seq *seq, const int32_t *tokens, int n, float *logits,
                            kiln_err *e)
{
    if (!logits)
        return kiln_fail(e, KILN_E_INVALID, "forward: no logits array");
    return forward(en, seq, tokens, n, logits, e);
}

/* The page tables of a multi-sequence step, concatenated, and each row's
 * (table base, position), for the batch attention kernels. Buffers made on
 * first use: room for en->chunk sequences of a whole cache's pages. */
static int batch_tables(kiln_engine *en, const kiln_batch_seg *segs, int n_segs, int T, kiln_err *e)
{
    int max_pages = (en->ctx + en->kv.page_size - 1) / en->kv.page_size;
    if (!en->bmeta) {
        if (!(en->btables = kiln_alloc(en->dev, (size_t)en->chunk * (size_t)max_pages * 4, e)) ||
            !(en->bmeta = kiln_alloc(en->dev, (size_t)en->chunk * 8, e))) {
            kiln_free(en->dev, en->btables);
            en->btables = NULL;
            return kiln_err_wrap(e, "forward batch: page tables of %d sequences", en->chunk);
        }
    }
    int total = 0;
    for (int i = 0; i < n_segs; i++)
        total += segs[i].seq->n_pages;
    int32_t *tab = malloc(sizeof *tab * (size_t)(total > 0 ? total : 1)), meta[2 * T];
    if (!tab)
        return kiln_fail(e, KILN_E_NOMEM, "forward batch: out of memory");
    for (int i = 0, base = 0, r = 0; i < n_segs; base += segs[i++].seq->n_pages) {
        memcpy(tab + base, segs[i].seq->pages, sizeof *tab * (size_t)segs[i].seq->n_pages);
        for (int t = 0; t < segs[i].n; t++, r++) {
            meta[2 * r] = base;
            meta[2 * r + 1] = segs[i].seq->n_tokens + t;
        }
    }
    int rc = kiln_write(en->dev, en->btables, 0, tab, sizeof *tab * (size_t)total, e);
    if (!rc)
        rc = kiln_write(en->dev, en->bmeta, 0, meta, sizeof meta, e);
    free(tab);
    return rc ? kiln_err_wrap(e, "forward batch: uploading page tables") : 0;
}

int kiln_forward_batch(kiln_engine *en, const kiln_batch_seg *segs, int n_segs, kiln_err *e)
{
    en->n_batch_logits = 0;
    if (n_segs <= 0)
        return kiln_fail(e, KILN_E_INVALID, "forward batch: no segments");
    int T = 0, V = en->m->cfg.n_vocab, n_lrows = 0;
    for (int i = 0; i < n_segs; i++) {
        const kiln_batch_seg *g = &segs[i];
        if (!g->seq || g->n <= 0 || !g->tokens)
            return kiln_fail(e, KILN_E_INVALID, "forward batch: segment %d has no tokens", i);
        for (int j = 0; j < i; j++)
            if (segs[j].seq == g->seq)
                return kiln_fail(e, KILN_E_INVALID, "forward batch: segments %d and %d share a sequence", j, i);
        for (int t = 0; t < g->n; t++)
            if (g->tokens[t] < 0 || g->tokens[t] >= V)
                return kiln_fail(e, KILN_E_INVALID, "forward batch: segment %d token %d (%d) outside the vocabulary "
                                 "(%d)", i, t, g->tokens[t], V);
        T += g->n;
        n_lrows += g->logits != 0;
    }
    if (T > en->chunk)
        return kiln_fail(e, KILN_E_INVALID, "forward batch: %d tokens exceed the engine's chunk of %d", T, en->chunk);
    size_t align = en->dev->fp.offset_align ? en->dev->fp.offset_align : 1;
    if (n_lrows > 1 && ((size_t)V * 4) % align)
        return kiln_fail(e, KILN_E_INVALID, "forward batch: logits rows of %d bytes are not multiples of %s's buffer "
                         "offset alignment %zu (one sequence per step only)", V * 4, en->dev->fp.name, align);
    kset ks;
    int rc = kernels(&ks, e);
    if (rc || (n_lrows && (rc = all_logits_buffer(en, e))))
        return rc;
    if (n_lrows && !en->batch_logits && !(en->batch_logits = malloc(sizeof(float) * (size_t)V * (size_t)en->chunk)))
        return kiln_fail(e, KILN_E_NOMEM, "forward batch: logits of %d rows: out of memory", en->chunk);
    int32_t ids[T];
    int lrows[T + 1];
    for (int i = 0, r = 0, k = 0; i < n_segs; r += segs[i++].n) {
        memcpy(ids + r, segs[i].tokens, sizeof *ids * (size_t)segs[i].n);
        if (segs[i].logits)
            lrows[k++] = r + segs[i].n - 1;
    }
    for (int i = 0; i < n_segs; i++)
        if ((rc = kiln_kv_seq_reserve(segs[i].seq, segs[i].n, e))) {
            for (int j = 0; j < i; j++) /* the sequences are unchanged on failure */
                kiln_kv_seq_truncate(segs[j].seq, segs[j].seq->n_tokens);
            return kiln_err_wrap(e, "forward batch: segment %d of %d (%d tokens)", i, n_segs, segs[i].n);
        }
    if (n_segs > 1 && ks.attn_b && (rc = batch_tables(en, segs, n_segs, T, e))) {
        for (int j = 0; j < n_segs; j++)
            kiln_kv_seq_truncate(segs[j].seq, segs[j].seq->n_tokens);
        return rc;
    }
    if (en->prof)
        kiln_profile_chunk(en->prof, T, kiln_now_s());
    /* without a logits row the LM head still needs a target: the last row into en->logits */
    lrows[T] = T - 1;
    if ((rc = n_lrows ? chunk(en, &ks, segs, n_segs, ids, T, en->logits_all, lrows, n_lrows, e)
                      : chunk(en, &ks, segs, n_segs, ids, T, en->logits, lrows + T, 1, e)) ||
        (n_lrows && (rc = kiln_read(en->dev, en->logits_all, 0, en->batch_logits,
                                    sizeof(float) * (size_t)V * (size_t)n_lrows, e)))) {
        for (int j = 0; j < n_segs; j++)
            kiln_kv_seq_truncate(segs[j].seq, segs[j].seq->n_tokens);
        return kiln_err_wrap(e, "forward batch on %s (%d segments, %d tokens)", en->dev->fp.name, n_segs, T);
    }
    for (int i = 0; i < n_segs; i++)
        segs[i].seq->n_tokens += segs[i].n;
    en->n_batch_logits = n_lrows;
    return 0;
}

int kiln_engine_logits(kiln_engine *en, kiln_err *e)
{
    return kiln_read(en->dev, en->logits, 0, en->logits_host, sizeof(float) * (size_t)en->m->cfg.n_vocab, e);
}

int kiln_engine_argmax(kiln_engine *en, int32_t *id, kiln_err *e)
{
    kset ks;
    int rc = kernels(&ks, e);
    if (rc)
        return rc;
    kiln_shape s = {.m = en->m->cfg.n_vocab};
    kiln_buffer *slots[2] = {en->logits, en->best};
    uint32_t u = 0;
    if ((rc = kiln_op(en->ops, "argmax", ks.argmax, &s, NULL, slots, NULL, e)) ||
        (rc = kiln_read(en->dev, en->best, 0, &u, 4, e)))
        return rc;
    *id = (int32_t)u;
    return 0;
}
