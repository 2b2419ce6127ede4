/* kernels/attention_paged/attention_paged.h - internals shared by the kernel
 * definition, the CPU entries and the tests (layout: see attention_paged.c). */
#ifndef KILN_KERNELS_ATTENTION_PAGED_H
#define KILN_KERNELS_ATTENTION_PAGED_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernel.h"

#define KILN_ATT_MAX_HD 256 /* largest head_dim the sources hold in shared memory */

/* Plain-C reference (double accumulation, two-pass softmax). */
void kiln_attn_reference(const float *q, const float *kp, const float *vp, const int32_t *table, float *out,
                         int heads, int kv_heads, int head_dim, int page_size, int ctx, float scale);
/* Shared memory of the GPU attention kernel for a config (bytes). */
size_t kiln_attn_shared_bytes(int wg, int tile, int vec, int hpw);
/* Workgroups along the context for `split` tokens per workgroup (1 = no split). */
int kiln_attn_nsplit(const kiln_shape *s, int split);

#endif
