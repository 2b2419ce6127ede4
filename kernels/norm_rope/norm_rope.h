/* kernels/norm_rope/norm_rope.h - helpers for plans of rmsnorm and rope. */
#ifndef KILN_KERNELS_NORM_ROPE_H
#define KILN_KERNELS_NORM_ROPE_H

#include "kernels/kernel.h"

#define KILN_RMSNORM_DEFAULT_EPS 1e-5f
/* rmsnorm plans carry eps = 1e-5 (Llama 2/3); the engine sets the model's
 * attention.layer_norm_rms_epsilon with this (the last scalar of each step). */
void kiln_rmsnorm_plan_set_eps(kiln_plan *p, float eps);

#endif
