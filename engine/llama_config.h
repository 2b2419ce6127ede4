/* engine/llama_config.h - Llama-family hyperparameters from GGUF metadata
 * (FORMATS.md "Llama-family metadata and tensors") and a validator that
 * the tensors the forward pass needs are all there, with the right dims
 * and a type Kiln can load.
 *
 * Accepted architectures: "llama" (Llama 2/3, TinyLlama, SmolLM2, and
 * Mistral as llama.cpp converts it), "mistral" (same keys under the
 * "mistral." prefix) and "qwen2" (adds Q/K/V biases and half-split RoPE:
 * qkv_bias and rope_neox say so). Others: KILN_E_FORMAT "unsupported
 * architecture 'X'". */
#ifndef KILN_ENGINE_LLAMA_CONFIG_H
#define KILN_ENGINE_LLAMA_CONFIG_H

#include <stddef.h>

#include "engine/gguf.h"
#include "util/err.h"

typedef struct kiln_llama_config {
    char arch[16];       /* general.architecture */
    int n_embd;          /* <arch>.embedding_length */
    int n_layer;         /* <arch>.block_count */
    int n_ff;            /* <arch>.feed_forward_length */
    int n_head;          /* <arch>.attention.head_count */
    int n_head_kv;       /* <arch>.attention.head_count_kv, default n_head */
    int head_dim;        /* <arch>.attention.key_length, default n_embd / n_head */
    int rope_dim;        /* <arch>.rope.dimension_count, default head_dim */
    float rope_theta;    /* <arch>.rope.freq_base, default 10000 */
    float rms_eps;       /* <arch>.attention.layer_norm_rms_epsilon, default 1e-5 */
    int context_length;  /* <arch>.context_length (0 if absent) */
    int n_vocab;         /* tokenizer.ggml.tokens count, else token_embd dims[1] */
    int tied_output;     /* 1: no output.weight, the LM head is token_embd */
    int rope_neox;       /* 1: half-split RoPE (qwen2); 0: adjacent pairs (llama) */
    int qkv_bias;        /* 1: blk.N.attn_{q,k,v}.bias exist (qwen2) */
    /* RoPE frequency scaling (engine/rope_scaling.h; the engine's table of
     * inverse frequencies: kiln_rope_inv_freq) */
    int rope_scaling;    /* KILN_ROPE_SCALING_NONE, _LINEAR, _LLAMA3 */
    float rope_scale;    /* <arch>.rope.scaling.factor (linear, llama3), else 1 */
    int rope_orig_ctx;   /* llama3: rope.scaling.original_context_length */
    float rope_low_freq, rope_high_freq; /* llama3: low/high_freq_factor */
    int rope_freqs;      /* 1: tensor rope_freqs.weight divides the frequencies */
} kiln_llama_config;

/* Reads and sanity-checks (positive sizes, n_head % n_head_kv == 0,
 * rope_dim <= head_dim and even; RoPE scaling it cannot apply refused).
 * Errors name the key. */
int kiln_llama_config_read(const kiln_gguf *g, kiln_llama_config *c, kiln_err *e);

/* Every tensor the forward pass uses exists with dims = [in, out] (norms
 * [n_embd]) and a type kiln_gguf_dequant_row supports; the error names the
 * first tensor that is missing or wrong. */
int kiln_llama_validate(const kiln_gguf *g, const kiln_llama_config *c, kiln_err *e);

/* One line: "llama: n_embd 576, 30 layers, ...". */
void kiln_llama_config_str(const kiln_llama_config *c, char *buf, size_t n);

#endif
