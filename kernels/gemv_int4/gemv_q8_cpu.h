/* kernels/gemv_int4/gemv_q8_cpu.h - the cpu entry of gemv_int4's act-1
 * schedules (args: qs, scales, mins, quantized x, y, M, K, words_per_row,
 * groups_per_row; defines QUANT, GROUP, ROWS, ILV). */
#ifndef KILN_KERNELS_GEMV_Q8_CPU_H
#define KILN_KERNELS_GEMV_Q8_CPU_H

#include "devices/device.h"

void kiln_gemv_q8_cpu(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end);

#endif
