/* kernels/norm_rope/norm_rope.h - helpers for plans of rmsnorm and rope. */
#ifndef KILN_KERNELS_NORM_ROPE_H
#define KILN_KERNELS_NORM_ROPE_H

#include "kernels/kernel.h"

/* kiln_shape.op of rmsnorm: y = rmsnorm(x) * w, or first x += r (the
 * residual add fused in front: x is updated in place, then normalized). */
enum { KILN_RMSNORM_PLAIN = 0, KILN_RMSNORM_ADD_RESIDUAL = 1 };
/* kiln_shape.op of rope: which elements form a rotated pair. Adjacent
 * (2i, 2i+1) as GGUF Llama stores Q/K; half-split (i, i + n_rot/2) as
 * NeoX-style architectures do. */
enum { KILN_ROPE_ADJACENT = 0, KILN_ROPE_NEOX = 1 };

#define KILN_RMSNORM_DEFAULT_EPS 1e-5f
/* rmsnorm plans carry eps = 1e-5 (Llama 2/3); the engine sets the model's
 * attention.layer_norm_rms_epsilon with this (the last scalar of each step). */
void kiln_rmsnorm_plan_set_eps(kiln_plan *p, float eps);

#endif
