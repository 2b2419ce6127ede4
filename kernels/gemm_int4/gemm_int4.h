/* kernels/gemm_int4/gemm_int4.h - the prefill gemm (gemv_int4's weight slots,
 * a batch of N tokens). */
#ifndef KILN_KERNELS_GEMM_INT4_H
#define KILN_KERNELS_GEMM_INT4_H

#include <stdint.h>

#include "kernels/kernel.h"
#include "kernels/quant.h"

extern const kiln_kernel kiln_kernel_gemm_int4;

/* y[t][r] = sum_k W[r][k] x[t][k] for t < n_tokens, in double accumulation
 * (the truth for tests); x is [n_tokens][cols], y is [n_tokens][rows]. */
void kiln_gemm_reference(const kiln_qmatrix *q, const float *x, int64_t n_tokens, float *y);

#endif
