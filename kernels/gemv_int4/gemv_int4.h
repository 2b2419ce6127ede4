/* kernels/gemv_int4/gemv_int4.h - shared by the gemv_int4 files and the
 * prefill gemm (same weight slots). */
#ifndef KILN_KERNELS_GEMV_INT4_H
#define KILN_KERNELS_GEMV_INT4_H

#include "kernels/kernel.h"
#include "kernels/quant.h"

extern const kiln_kernel kiln_kernel_gemv_int4;

/* Weight elements per u32 word: 8 for int4, 4 for q8_0, 2 for f16. */
int kiln_gemv_elems_per_word(int quant);
/* y[rows] = W x in double accumulation (the truth for tests). */
void kiln_gemv_reference(const kiln_qmatrix *q, const float *x, float *y);

#endif
