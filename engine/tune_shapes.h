/* engine/tune_shapes.h - the (kernel, shape) pairs a model's forward pass
 * runs, so `tune --model M.gguf` tunes exactly those. */
#ifndef KILN_ENGINE_TUNE_SHAPES_H
#define KILN_ENGINE_TUNE_SHAPES_H

#include "kernels/kernel.h"

/* Fills kernels[i] (kernel names) and shapes[i] for up to max pairs; *n is
 * how many. act: the kiln_act of the matrix shapes (the engine's precision:
 * KILN_ACT_Q8 for --precision fast). layout_src (may be NULL): for a gemm
 * shape, the gemv shape whose winner decides the layout the engine stores
 * that matrix in (a stacked Q/K/V or gate/up, or the matrix itself); for the
 * others a zero shape. Errors name the file. */
int kiln_model_tune_shapes(const char *gguf_path, int act, const char **kernels, kiln_shape *shapes,
                           kiln_shape *layout_src, int max, int *n, kiln_err *e);

/* The same, plus the shapes of decoding up to max_batch sequences at once
 * (continuous batching: token classes 2, 4, .. B's power of two). */
int kiln_model_tune_shapes_batch(const char *gguf_path, int act, int max_batch, const char **kernels,
                                 kiln_shape *shapes, kiln_shape *layout_src, int max, int *n, kiln_err *e);

#endif
