/* kernels/dequant/dequant.h - shared between the dequant kernel, its CPU
 * entries and embed_gather (kernels/small), which reads the same layout. */
#ifndef KILN_KERNELS_DEQUANT_DEQUANT_H
#define KILN_KERNELS_DEQUANT_DEQUANT_H

#include <stdint.h>

#include "kernels/kernel.h"

/* Padded width, u32 words and groups per row of an m x k matrix of s->quant
 * (q4 formats, q8_0, f16) with group s->group (ignored for f16). */
void kiln_dq_layout(const kiln_shape *s, int64_t *cols_pad, int64_t *wpr, int64_t *gpr);
/* Random codes/scales/mins for an s->m x s->k matrix (mins may be NULL). */
void kiln_dq_random(const kiln_shape *s, uint32_t *qs, uint16_t *scales, uint16_t *mins, uint64_t seed);
/* Reference value of element c of one row (plain C, the truth). */
float kiln_dq_value(int quant, int group, const uint32_t *qs_row, const uint16_t *sc_row, const uint16_t *mn_row,
                    int64_t c);

#endif
