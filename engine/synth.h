/* engine/synth.h - synthetic Llama-architecture GGUF models at real shapes
 * (DESIGN section 7): random weights with sane scales, real GGUF blocks,
 * a byte-level BPE tokenizer in the metadata, streamed to disk.
 *
 * Weights (seed-deterministic: each row has its own RNG stream, so the
 * bytes do not depend on the thread count):
 *   matrices [in, out]   ~ N(0, 1/sqrt(in)), quantized to `quant`
 *                          (Q4_0, Q4_1 or Q8_0; default Q4_0)
 *   token_embd           ~ N(0, 0.5), always Q8_0 (as in SmolLM2's file)
 *   output (untied only) ~ N(0, 1/sqrt(n_embd)), `quant`
 *   norms                  1 + N(0, 0.05), F32
 * (normals are Irwin-Hall sums of 4 uniforms: cheap, bounded, std exact.)
 * Tokenizer: gpt2 / pre "smollm"; ids 0..2 <|endoftext|>, <|im_start|>,
 * <|im_end|> (control), then the 256 GPT-2 byte tokens, then merge
 * tokens (" x", "xy", " xy", "xyz" over a-z in English frequency order,
 * one merge each), then "<|pad_N|>" user-defined tokens up to n_vocab.
 * bos = 1, eos = 2, ChatML chat template. */
#ifndef KILN_ENGINE_SYNTH_H
#define KILN_ENGINE_SYNTH_H

#include <stdint.h>

#include "util/err.h"

typedef struct kiln_synth_preset {
    const char *name;
    int n_embd, n_layer, n_ff, n_head, n_head_kv, n_vocab, context_length;
    float rope_theta;
    int tied;
    /* RoPE scaling written (engine/rope_scaling.h): 0 none; KILN_SYNTH_ROPE_*
     * with rope_factor and, for llama3, Meta's low/high_freq_factor 1 and 4
     * and rope_orig_ctx */
    int rope_scaling;
    float rope_factor;
    int rope_orig_ctx;
} kiln_synth_preset;

enum {
    KILN_SYNTH_ROPE_LINEAR = 1,  /* rope.scaling.type "linear" + factor */
    KILN_SYNTH_ROPE_LLAMA3 = 2,  /* rope.scaling.type "llama3" + factor, original_context_length, low/high */
    KILN_SYNTH_ROPE_FREQS = 3,   /* llama3 as llama.cpp's converter stores it: rope_freqs.weight, no type key */
};

/* micro (32/1 layer/64/2 heads/1 kv/vocab 320/ctx 64, untied: fuzz seeds),
 * tiny (64/2 layers/160/4 heads/2 kv/vocab 512/ctx 256, untied),
 * smollm2-135m, llama-1b, llama2-7b, llama3-8b; and small models with the
 * RoPE of Llama 3.2 1B (head_dim 64, GQA 4:1, freq_base 500000, llama3 x32
 * from 8192: 256/2 layers/512/4 heads/1 kv/vocab 512/ctx 131072, untied):
 * llama3-rope (rope_freqs.weight, as llama.cpp converts Llama 3.1/3.2),
 * llama3-rope-keys (the rope.scaling keys), and linear-rope (tiny with
 * linear x4). NULL if unknown. */
const kiln_synth_preset *kiln_synth_preset_find(const char *name);
/* The preset names, comma-separated (for usage messages). */
const char *kiln_synth_preset_names(void);

typedef struct kiln_synth_opts {
    const char *preset;  /* name */
    int quant;           /* ggml type: KILN_GGML_Q4_0 (0 = default), Q4_1, Q8_0 */
    uint64_t seed;
    int n_layer;         /* 0: the preset's */
    int progress;        /* 1: a progress line on stderr */
    int threads;         /* 0: online CPUs (max 16) */
    const char *rope_type; /* tests: write this <arch>.rope.scaling.type (and the preset's factor, or 4) */
} kiln_synth_opts;

int kiln_synth_write(const char *path, const kiln_synth_opts *o, kiln_err *e);

/* The tokenizer it embeds, for tests: n_vocab tokens, their types and the
 * merges ("left right"); free with kiln_synth_vocab_free. */
typedef struct kiln_synth_vocab {
    int n_tokens, n_merges;
    char **tokens;
    int32_t *types;
    char **merges;
} kiln_synth_vocab;
int kiln_synth_vocab_build(int n_vocab, kiln_synth_vocab *v, kiln_err *e);
void kiln_synth_vocab_free(kiln_synth_vocab *v);

#endif
