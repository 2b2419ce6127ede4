/* engine/gguf_dequant.h - GGUF tensor blocks <-> f32 on the host
 * (FORMATS.md "Tensor types"). Reference code for loading and tests, not a
 * hot path: the engine repacks Q4_0/Q4_1/Q8_0 losslessly (kernels/quant.h)
 * and uses these for the other types and for checking.
 *
 * n counts elements and must be a multiple of the type's block size
 * (kiln_ggml_type_block_elems). Unsupported types give KILN_E_INVALID
 * naming the type. */
#ifndef KILN_ENGINE_GGUF_DEQUANT_H
#define KILN_ENGINE_GGUF_DEQUANT_H

#include <stdint.h>

#include "util/err.h"

/* F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, Q8_K. */
int kiln_gguf_dequant_row(int type, const void *src, int64_t n, float *dst, kiln_err *e);
/* 1 if kiln_gguf_dequant_row handles `type`. */
int kiln_gguf_dequant_supported(int type);

/* Round-to-nearest quantization with ggml's reference rules (Q4_0: d =
 * max/-8 of the signed max-magnitude value; Q4_1: d = (max-min)/15, m =
 * min; Q8_0: d = amax/127). F32, F16, BF16, Q4_0, Q4_1, Q8_0. */
int kiln_gguf_quant_row(int type, const float *src, int64_t n, void *dst, kiln_err *e);

#endif
