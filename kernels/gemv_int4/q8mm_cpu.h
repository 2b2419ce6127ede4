/* kernels/gemv_int4/q8mm_cpu.h - the cpu entries of the int8-activation
 * matrix kernels (q8mm_cpu.c). Arguments: qs, scales, mins, packed x (one
 * kiln_xq_bytes(K) record per token), y, M, K, words_per_row,
 * groups_per_row (gemm: then N); defines QUANT, GROUP, ROWS, ILV (gemm: TN). */
#ifndef KILN_KERNELS_Q8MM_CPU_H
#define KILN_KERNELS_Q8MM_CPU_H

#include "devices/device.h"

void kiln_gemv_q8_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end);
void kiln_gemm_q8_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end);

#endif
