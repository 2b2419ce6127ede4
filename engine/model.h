/* engine/model.h - a Llama-family model loaded onto one device, and the
 * state to run it: kernel ops, KV cache and activation buffers.
 *
 * kiln_model owns the GGUF mapping, the tokenizer and the weights on the
 * device. kiln_engine owns what a forward pass needs for one device: the ops
 * (configs looked up in the tuning database), the paged KV cache and the
 * activation buffers for a prefill chunk. */
#ifndef KILN_ENGINE_MODEL_H
#define KILN_ENGINE_MODEL_H

#include <stdio.h>

#include "engine/chat_template.h"
#include "engine/kv_cache.h"
#include "engine/llama_config.h"
#include "engine/ops.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"

typedef struct kiln_layer {
    kiln_buffer *attn_norm, *ffn_norm; /* f32 [n_embd] */
    kiln_dmat wq, wk, wv, wo, w_gate, w_up, w_down;
    /* Fused projections (kiln_model_opts.fuse): Q, K, V stacked into one
     * matrix and gate, up into another, so a decode step runs one gemv for
     * each stack instead of three and two; wq..w_up are then views of their
     * rows (the prefill gemm still multiplies them one by one, because the
     * attention and rope kernels read q, k, v as separate [T][width] rows). */
    kiln_dmat wqkv, wgu;
    int fused_qkv, fused_gu;
} kiln_layer;

typedef struct kiln_model {
    kiln_llama_config cfg;
    kiln_device *dev;
    kiln_gguf *gguf;
    kiln_tokenizer *tok;
    kiln_chat_kind chat;       /* from tokenizer.chat_template (ChatML if absent) */
    kiln_layer *layers;
    kiln_dmat embd;            /* token_embd: [n_vocab] rows of n_embd */
    kiln_qmatrix embd_host;    /* its host copy when it is split into parts (embd.n_parts > 1): */
    int embd_on_host;          /* tokens are then gathered on the host, one row each */
    kiln_dmat output;          /* LM head; a view of embd when tied (output_owned 0) */
    int output_owned;
    kiln_buffer *out_norm;
    size_t weight_bytes;       /* on the device */
    int n_lossy;               /* tensors converted with a loss (see notes on load) */
    double worst_conv_err;
    /* wall seconds kiln_model_load spent: in all, and in its stages (the tokenizer is built
     * alongside the weights, so the stages add up to more than load_s) */
    double load_s, load_gguf_s, load_tokenizer_s, load_weights_s;
} kiln_model;

/* The row layout (ilv, kernels/quant_ilv.h) to store a matrix in, given the
 * gemv shape it will be multiplied at: the layout its gemv config reads;
 * *gemv_f32 = 1 when that config keeps x in f32 though the shape allows
 * int8 (the matrix's gemms then do too). kiln_engine_layout (engine/ops.h)
 * answers it from the tuning database. */
typedef int (*kiln_layout_fn)(void *ctx, const kiln_shape *gemv_shape, int *gemv_f32);

typedef struct kiln_model_opts {
    FILE *progress;            /* a progress line while loading (NULL: quiet) */
    FILE *notes;               /* one line per lossy conversion (NULL: quiet) */
    uint64_t max_part_bytes;   /* split matrices into buffers of at most this (0: the device's limit) */
    kiln_layout_fn layout;     /* NULL: every matrix row-major */
    void *layout_ctx;
    int act;                   /* kiln_act the gemv shapes given to layout carry (the engine's precision) */
    int no_fuse;               /* 1: keep Q/K/V and gate/up as separate matrices (tests, comparisons) */
    int load_threads;          /* threads converting the weights (0: kiln_host_threads()) */
} kiln_model_opts;

int kiln_model_load(kiln_model *m, kiln_device *d, const char *path, const kiln_model_opts *o, kiln_err *e);
void kiln_model_free(kiln_model *m);

/* Activation precision of the weight products (kiln_engine_opts.precision).
 * FAST may quantize activations (int8 per 32-block, where a kernel has such a
 * variant) for speed; STRICT pins f32 activations, the path whose greedy
 * output equals a float64 forward. FAST lets the matrix
 * kernels' act-1 configs (gemv_int4, gemm_int4) run where tuning chose them.
 * `kiln perplexity --precision` measures what FAST costs in quality. */
typedef enum kiln_precision {
    KILN_PRECISION_FAST = 0,   /* the default (zero-initialized options) */
    KILN_PRECISION_STRICT = 1,
} kiln_precision;

typedef struct kiln_engine_opts {
    int precision;             /* kiln_precision (0: KILN_PRECISION_FAST) */
    int kv_type;               /* kiln_kv_type of the KV cache (0: KILN_KV_F32; engine/kv_cache.h) */
    int ctx;                   /* KV capacity in tokens (0: min(model context, 4096)) */
    int page_size;             /* KV page size (0: 64) */
    int chunk;                 /* prefill chunk in tokens (0: 64) */
    kiln_db *db;               /* tuned configs (NULL: defaults) */
    FILE *log;                 /* --verbose: which config each op class got */
    kiln_profile *profile;     /* time every op into it (engine/profile.h; NULL: off) */
} kiln_engine_opts;

typedef struct kiln_engine {
    kiln_model *m;
    kiln_device *dev;
    kiln_ops *ops;
    kiln_profile *prof;        /* not owned; NULL unless profiling */
    kiln_kv_cache kv;
    int chunk, ctx;
    int act;                   /* kiln_act of the matrix shapes (from opts.precision) */
    /* activations for up to `chunk` tokens */
    kiln_buffer *x, *xn, *q, *k, *v, *att, *o, *gate, *up, *hid, *logits, *best, *ids, *pos;
    kiln_buffer *qkv, *gu;     /* one decode token's stacked Q/K/V and gate/up outputs (kiln_layer.fused_*) */
    kiln_buffer *rope_inv;     /* f32 [rope_dim/2]: RoPE inverse frequencies, scaling applied (kiln_rope_inv_freq) */
    float *logits_host;
    kiln_buffer *logits_all;   /* [chunk][n_vocab], allocated by the first kiln_forward_all_logits or _batch */
    float *batch_logits;       /* host [n_batch_logits][n_vocab]: the last kiln_forward_batch's logits rows */
    kiln_buffer *btables, *bmeta; /* a multi-sequence step's page tables and per-token (table base, position) */
    int n_batch_logits;
} kiln_engine;

int kiln_engine_init(kiln_engine *en, kiln_model *m, const kiln_engine_opts *o, kiln_err *e);
void kiln_engine_free(kiln_engine *en);

/* Runs tokens[0..n) of a sequence whose first seq->n_tokens are cached,
 * in chunks of en->chunk (batched gemm_int4 for n > 1), appending their K/V.
 * Afterwards the logits of the last token are ready: read them with
 * kiln_engine_logits or take the argmax on the device with
 * kiln_engine_argmax. KILN_E_FULL when the cache cannot hold them (the
 * sequence is unchanged). */
int kiln_forward(kiln_engine *en, kiln_kv_seq *seq, const int32_t *tokens, int n, kiln_err *e);
/* kiln_forward, but the logits of every token: logits[i * n_vocab + v] is
 * the logit of v after tokens[0..i] (host memory, n * n_vocab floats). Each
 * chunk's LM head runs as one gemm over its tokens into a [chunk][n_vocab]
 * device buffer (allocated on the first call, so kiln_forward pays nothing),
 * read back after the chunk. The last-token logits of kiln_engine_logits and
 * kiln_engine_argmax are not updated by this call. */
int kiln_forward_all_logits(kiln_engine *en, kiln_kv_seq *seq, const int32_t *tokens, int n, float *logits,
                            kiln_err *e);
/* One step of several sequences at once (continuous batching, engine/sched.h):
 * segment i runs tokens[0..n) after what seq holds, appending their K/V;
 * all segments' tokens go through every weight product as one gemm (rows in
 * segment order, n = the total, at most en->chunk) and each segment's
 * attention reads its own page table. A segment with `logits` set wants the
 * logits of its last token: they land in en->batch_logits, one row per such
 * segment in order; the LM head is one gemm per run of consecutive such
 * rows, so put prefill chunks first and decode tokens (one each) after them.
 * No sequence may appear twice. KILN_E_FULL (every sequence unchanged) when
 * a sequence cannot grow; the error names the segment. */
typedef struct kiln_batch_seg {
    kiln_kv_seq *seq;
    const int32_t *tokens;
    int n;
    int logits;
} kiln_batch_seg;
int kiln_forward_batch(kiln_engine *en, const kiln_batch_seg *segs, int n_segs, kiln_err *e);

/* Copies the last logits to the host (en->logits_host, n_vocab floats). */
int kiln_engine_logits(kiln_engine *en, kiln_err *e);
int kiln_engine_argmax(kiln_engine *en, int32_t *id, kiln_err *e);

#endif
