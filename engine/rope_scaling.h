/* engine/rope_scaling.h - RoPE frequency scaling of Llama-family GGUF files.
 *
 * Every rotated pair i < rope_dim/2 turns by position * inv_freq[i]. Without
 * scaling inv_freq[i] = freq_base^(-2i/rope_dim). A model trained for longer
 * contexts changes that table, and running it with the plain table gives
 * wrong positions (no error, just worse text), so Kiln either applies the
 * scaling a file asks for or refuses the file:
 *
 *   <arch>.rope.scaling.type  "none" | "linear" | "llama3"; anything else
 *                              (yarn, longrope, ...) is refused (KILN_E_FORMAT)
 *   <arch>.rope.scaling.factor, or the older <arch>.rope.scale_linear
 *                              linear: inv_freq / factor (positions / factor);
 *                              with no type key a factor != 1 means linear,
 *                              as llama.cpp reads it
 *   llama3 (Meta's Llama 3.1+ formula, as Hugging Face's rope_type "llama3"):
 *     factor, <arch>.rope.scaling.original_context_length (required),
 *     <arch>.rope.scaling.low_freq_factor (default 1) and
 *     .high_freq_factor (default 4): pairs whose wavelength 2*pi/inv_freq is
 *     below original/high keep their frequency, above original/low divide it
 *     by factor, between them blend smoothly. (llama.cpp's converter writes
 *     no low/high keys: it stores the per-pair divisors as rope_freqs.weight
 *     instead; the two keys are Kiln's own.)
 *   tensor rope_freqs.weight  [rope_dim/2] per-pair divisors: inv_freq[i] /=
 *                              rope_freqs[i] (what llama.cpp writes for Llama
 *                              3.1/3.2); combines with linear, and is refused
 *                              together with type llama3 (that would scale
 *                              twice).
 * The engine computes the table once at load (kiln_rope_inv_freq) and the
 * rope kernel reads it from a buffer. */
#ifndef KILN_ENGINE_ROPE_SCALING_H
#define KILN_ENGINE_ROPE_SCALING_H

#include "engine/gguf.h"
#include "engine/llama_config.h"
#include "util/err.h"

enum { KILN_ROPE_SCALING_NONE = 0, KILN_ROPE_SCALING_LINEAR = 1, KILN_ROPE_SCALING_LLAMA3 = 2 };

/* Fills the rope_* scaling fields of c (rope_dim and rope_theta already
 * read). Errors name the key or tensor. */
int kiln_rope_scaling_read(const kiln_gguf *g, kiln_llama_config *c, kiln_err *e);

/* inv_freq[rope_dim/2] of the config; g is read only for rope_freqs.weight
 * (c->rope_freqs set). */
int kiln_rope_inv_freq(const kiln_gguf *g, const kiln_llama_config *c, float *inv_freq, kiln_err *e);

/* "llama3 x32 (orig 8192, low 1, high 4)", "linear x4", "rope_freqs", "none" */
void kiln_rope_scaling_str(const kiln_llama_config *c, char *buf, size_t n);

#endif
