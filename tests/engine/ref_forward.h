/* tests/engine/ref_forward.h - a plain C Llama forward pass for the tests:
 * full f32 weights (dequantized exactly as the device copies hold them),
 * double accumulation, a contiguous KV cache, softmax over all positions.
 * Written from the model's math, sharing nothing with engine/forward.c but
 * the weight conversion (engine/weights.h), so it can catch a wrong kernel,
 * a wrong offset or a wrong page in the engine. */
#ifndef KILN_TESTS_REF_FORWARD_H
#define KILN_TESTS_REF_FORWARD_H

#include "engine/gguf.h"
#include "engine/llama_config.h"

typedef struct ref_model ref_model;

ref_model *ref_load(const char *path, kiln_err *e);
void ref_free(ref_model *m);
const kiln_llama_config *ref_config(const ref_model *m);
/* Forgets every position: the next ref_step is position 0 again. */
void ref_reset(ref_model *m);
/* The RoPE table (rope_dim/2 inverse frequencies, scaling applied) from
 * the published formulas, independently of engine/rope_scaling.c. */
int ref_rope_inv_freq(const kiln_gguf *g, const kiln_llama_config *c, double *inv, kiln_err *e);
/* Appends one token at the next position; logits[n_vocab] of it. */
int ref_step(ref_model *m, int32_t token, float *logits);

#endif
