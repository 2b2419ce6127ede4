/* engine/tune_shapes.c - the (kernel, shape) pairs engine/forward.c runs for
 * a model, built the way forward.c builds its lookup shapes (the shape the
 * tuned config is looked up by), so that `tune --model` winners are found at
 * the exact level. Reads the GGUF header and tensor table only: no weights
 * are loaded or converted.
 *
 * Per step (T = 1 for decode, T = 64 for the default prefill chunk class):
 *   embed_gather  m=T k=n_embd n=token_embd rows, token_embd's Kiln quant
 *   rmsnorm       m=T k=n_embd op 0 (first norm) and op 1 (fused residual)
 *   gemv_int4     every distinct projection (q, k, v, o, gate, up, down, LM head)
 *   gemm_int4     the layer projections at n=64 (the LM head runs one token)
 *                 (both with the caller's act: the precision the engine will run at)
 *   rope          m=T heads=n_head and n_head_kv (decode: also their sum, the fused launch), head_dim, k=rope_dim, n=theta, op=neox
 *   kv_append     lookup ctx 0 (one class for every position), page 64
 *   attention_paged  context buckets 256, 1024, 4096 up to the engine's
 *                 default capacity min(context_length, 4096)
 *   silu_mul      m=T*n_ff
 *   argmax        m=n_vocab
 * With max_batch > 1 (`tune --model M --batch B`), the steps of continuous
 * batching too (engine/sched.h): T = 2, 4, .. up to B's power of two
 * for the gemm (every projection and the LM head), the row ops, and
 * kv_append_batch / attention_paged_batch (one launch for all sequences). */
#include "engine/tune_shapes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/llama_config.h"
#include "engine/weights.h"
#include "kernels/kernel.h"
#include "kernels/norm_rope/norm_rope.h"

#define PREFILL_T 64  /* engine default chunk (kiln_engine_opts.chunk 0) */
#define PAGE_SIZE 64  /* engine default KV page size */

#define LIST_MAX 512 /* far more than a model has: layers with mixed quants add a few */

typedef struct list {
    const char *kernels[LIST_MAX];
    kiln_shape shapes[LIST_MAX];
    kiln_shape layout[LIST_MAX]; /* gemm: the gemv shape whose winner lays the matrix out */
    int n, overflow;
} list;

static void add_from(list *l, const char *kernel, kiln_shape s, kiln_shape layout)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->kernels[i], kernel) && !memcmp(&l->shapes[i], &s, sizeof s) &&
            !memcmp(&l->layout[i], &layout, sizeof layout))
            return;
    if (l->n == LIST_MAX) {
        l->overflow = 1;
        return;
    }
    l->kernels[l->n] = kernel;
    l->shapes[l->n] = s;
    l->layout[l->n] = layout;
    l->n++;
}

static void add(list *l, const char *kernel, kiln_shape s) { add_from(l, kernel, s, (kiln_shape){0}); }

static int matrix(const kiln_gguf *g, const char *name, kiln_shape *s, kiln_err *e)
{
    const kiln_gguf_tensor *t = kiln_gguf_tensor_find(g, name);
    if (!t)
        return kiln_fail(e, KILN_E_FORMAT, "%s: tensor '%s' is missing", kiln_gguf_path(g), name);
    int quant = 0, group = 0;
    kiln_format_of_ggml(t->type, &quant, &group);
    /* as forward.c's matmul: m = rows (out), k = cols (in) */
    *s = (kiln_shape){.m = t->dims[1], .k = t->dims[0], .quant = quant, .group = group};
    return 0;
}

int kiln_model_tune_shapes(const char *gguf_path, int act, const char **kernels, kiln_shape *shapes,
                           kiln_shape *layout_src, int max, int *n, kiln_err *e)
{
    return kiln_model_tune_shapes_batch(gguf_path, act, 1, kernels, shapes, layout_src, max, n, e);
}

int kiln_model_tune_shapes_batch(const char *gguf_path, int act, int max_batch, const char **kernels,
                                 kiln_shape *shapes, kiln_shape *layout_src, int max, int *n, kiln_err *e)
{
    /* the token classes of steps decoding 2..max_batch sequences (powers of two, as forward.c looks them up) */
    int bclass[8], n_bclass = 0;
    for (int b = 2; b < 2 * max_batch && n_bclass < 8; b *= 2)
        bclass[n_bclass++] = b;
    *n = 0;
    kiln_gguf *g = NULL;
    list *lp = NULL;
    int rc = kiln_gguf_open(gguf_path, &g, e);
    if (rc)
        return rc;
    kiln_llama_config c;
    if ((rc = kiln_llama_config_read(g, &c, e))) {
        kiln_err_wrap(e, "%s", gguf_path);
        goto out;
    }
    lp = calloc(1, sizeof *lp);
    if (!lp) {
        rc = kiln_fail(e, KILN_E_NOMEM, "out of memory");
        goto out;
    }
    static const char *const proj[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    /* projections, layer by layer (a file may mix quant types). As
     * engine/model.c stacks them: Q/K/V and gate/up of one format and width
     * become one matrix (one decode gemv; its winner's layout also holds the
     * blocks the prefill gemm multiplies one by one) */
    for (int layer = 0; layer < c.n_layer; layer++) {
        kiln_shape s[7];
        for (size_t p = 0; p < sizeof proj / sizeof *proj; p++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s.weight", layer, proj[p]);
            if ((rc = matrix(g, name, &s[p], e)))
                goto out;
            s[p].act = act;
        }
        kiln_shape src[7];
        for (int p = 0; p < 7; p++)
            src[p] = s[p];
        static const int stacks[2][4] = {{0, 1, 2, -1}, {4, 5, -1, -1}};
        for (int st = 0; st < 2; st++) {
            kiln_shape sum = s[stacks[st][0]];
            int ok = 1;
            for (int i = 1; i < 4 && stacks[st][i] >= 0; i++) {
                const kiln_shape *b = &s[stacks[st][i]];
                ok &= b->quant == sum.quant && b->group == sum.group && b->k == sum.k;
                sum.m += b->m;
            }
            if (!ok)
                continue;
            add(lp, "gemv_int4", sum);
            for (int i = 0; i < 4 && stacks[st][i] >= 0; i++)
                src[stacks[st][i]] = sum;
        }
        for (int p = 0; p < 7; p++) {
            add(lp, "gemv_int4", s[p]); /* also run where a device cannot stack them */
            kiln_shape gm = s[p];
            gm.n = PREFILL_T;
            add_from(lp, "gemm_int4", gm, src[p]);
            for (int b = 0; b < n_bclass; b++) { /* decode steps of several sequences */
                gm.n = bclass[b];
                add_from(lp, "gemm_int4", gm, src[p]);
            }
        }
    }
    kiln_shape emb = {0}, head = {0};
    if ((rc = matrix(g, "token_embd.weight", &emb, e)) ||
        (rc = matrix(g, c.tied_output ? "token_embd.weight" : "output.weight", &head, e)))
        goto out;
    head.act = act;
    add(lp, "gemv_int4", head); /* the LM head: only the last token's logits */
    for (int b = 0; b < n_bclass; b++) { /* a batch step's LM head: one gemm over its decode rows */
        kiln_shape hg = head;
        hg.n = bclass[b];
        add_from(lp, "gemm_int4", hg, head);
    }

    int Ts[10] = {1, PREFILL_T}, n_T = 2;
    for (int b = 0; b < n_bclass; b++)
        if (bclass[b] != PREFILL_T)
            Ts[n_T++] = bclass[b];
    for (int i = 0; i < n_T; i++) {
        int T = Ts[i];
        add(lp, "embed_gather",
            (kiln_shape){.m = T, .k = c.n_embd, .n = emb.m, .quant = emb.quant, .group = emb.group});
        /* the final norm is plain, every sublayer's fused with its residual add */
        add(lp, "rmsnorm", (kiln_shape){.m = T, .k = c.n_embd, .op = KILN_RMSNORM_PLAIN});
        add(lp, "rmsnorm", (kiln_shape){.m = T, .k = c.n_embd, .op = KILN_RMSNORM_ADD_RESIDUAL});
        /* a decode step after a stacked Q/K/V gemv turns the Q and K heads in one launch */
        int heads[3] = {c.n_head, c.n_head_kv, c.n_head + c.n_head_kv};
        for (int h = 0; h < (T == 1 ? 3 : 2); h++)
            add(lp, "rope", (kiln_shape){.m = T, .heads = heads[h], .head_dim = c.head_dim, .k = c.rope_dim,
                                         .n = (int64_t)lroundf(c.rope_theta),
                                         .op = c.rope_neox ? KILN_ROPE_NEOX : KILN_ROPE_ADJACENT});
        add(lp, "silu_mul", (kiln_shape){.m = (int64_t)T * c.n_ff});
    }
    add(lp, "kv_append", (kiln_shape){.heads = c.n_head, .kv_heads = c.n_head_kv, .head_dim = c.head_dim,
                                      .page_size = PAGE_SIZE, .ctx = 0});
    /* the engine's default capacity; buckets past it are never looked up */
    int cap = c.context_length > 0 && c.context_length < 4096 ? c.context_length : 4096;
    static const int buckets[] = {256, 1024, 4096};
    for (int i = 0; i < 3; i++) {
        if (i > 0 && buckets[i - 1] >= cap)
            break;
        add(lp, "attention_paged", (kiln_shape){.heads = c.n_head, .kv_heads = c.n_head_kv, .head_dim = c.head_dim,
                                                .page_size = PAGE_SIZE, .ctx = buckets[i]});
    }
    for (int b = 0; b < n_bclass; b++) { /* one launch for all sequences of a batch step */
        add(lp, "kv_append_batch", (kiln_shape){.heads = c.n_head, .kv_heads = c.n_head_kv, .head_dim = c.head_dim,
                                                .page_size = PAGE_SIZE, .ctx = 0, .m = bclass[b]});
        for (int i = 0; i < 3; i++) {
            if (i > 0 && buckets[i - 1] >= cap)
                break;
            add(lp, "attention_paged_batch",
                (kiln_shape){.heads = c.n_head, .kv_heads = c.n_head_kv, .head_dim = c.head_dim,
                             .page_size = PAGE_SIZE, .ctx = buckets[i], .m = bclass[b]});
        }
    }
    add(lp, "argmax", (kiln_shape){.m = c.n_vocab});
    if (lp->overflow || lp->n > max) {
        rc = kiln_fail(e, KILN_E_FULL, "%s: the model runs %s%d (kernel, shape) pairs, room for %d", gguf_path,
                       lp->overflow ? "more than " : "", lp->n, max);
        goto out;
    }
    for (int i = 0; i < lp->n; i++) {
        kernels[i] = lp->kernels[i];
        shapes[i] = lp->shapes[i];
        if (layout_src)
            layout_src[i] = lp->layout[i];
    }
    *n = lp->n;
out:
    free(lp);
    kiln_gguf_close(g);
    return rc;
}
