/* kernels/quant.h - Kiln's quantized weight layout (DESIGN section 4) and the
 * host-side reference code for it: quantize, dequantize, random fill, and
 * lossless repacking of GGUF Q4_0 / Q4_1 / Q8_0 blocks.
 *
 * A kiln_qmatrix is rows x cols, quantized in groups of `group` along cols
 * (K, the reduction dim). Arrays are separate so device loads coalesce:
 *   qs     packed weights, row-major, words_per_row u32 per row.
 *          4-bit formats: 8 per word, element k%8 at bit 4*(k%8).
 *          q8_0: 4 int8 per word, element k%4 at byte k%4 (little-endian).
 *          f16: 2 per word, element k%2 in the low/high half. f32: 1 per word.
 *   scales f16, rows x groups_per_row (absent for f16/f32: NULL)
 *   mins   f16, rows x groups_per_row, q4_1 only (NULL otherwise)
 * cols is padded up to a multiple of group (cols_pad); padding codes are the
 * format's zero code, but kernels must stop at cols and never read x beyond
 * it. Dequantized value (q = code):
 *   q4f16_1: (q - 7) * s      q4_0: (q - 8) * d      q4_1: q * d + m
 *   q8_0: int8 * d            f16/f32: the value.
 * All products of a code and an f16 scale are exact in f32, so a dequantize
 * done in f32 with one multiply (and one add for q4_1) is bit-exact on
 * every device. */
#ifndef KILN_KERNELS_QUANT_H
#define KILN_KERNELS_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernel.h"
#include "util/err.h"
#include "util/rng.h"

typedef struct kiln_qmatrix {
    int quant;              /* kiln_quant */
    int group;              /* 32 or 128 for quantized formats; 0 for f16/f32 */
    int64_t rows, cols;
    int64_t cols_pad;       /* cols rounded up to group (== cols for f16/f32) */
    int64_t words_per_row;  /* u32 words of qs per row */
    int64_t groups_per_row; /* cols_pad / group (0 for f16/f32) */
    uint32_t *qs;
    uint16_t *scales;
    uint16_t *mins;
} kiln_qmatrix;

int kiln_quant_is_int4(int quant);
/* Fills the derived sizes only (qs/scales/mins NULL): for a matrix whose
 * arrays live elsewhere, e.g. in a device buffer the host can write. */
int kiln_qmatrix_shape(kiln_qmatrix *q, int quant, int group, int64_t rows, int64_t cols, kiln_err *e);
/* Fills the derived sizes and allocates (zeroed). */
int kiln_qmatrix_alloc(kiln_qmatrix *q, int quant, int group, int64_t rows, int64_t cols, kiln_err *e);
void kiln_qmatrix_free(kiln_qmatrix *q);
size_t kiln_qmatrix_qs_bytes(const kiln_qmatrix *q);
size_t kiln_qmatrix_scale_bytes(const kiln_qmatrix *q); /* also the mins size when present */

/* Round-to-nearest quantization of row-major f32 weights (rows x cols). */
void kiln_quantize(const float *w, kiln_qmatrix *q);
/* Random codes over the full range and random non-zero scales/mins with
 * mixed signs and magnitudes (some outlier groups). */
void kiln_qmatrix_random(kiln_qmatrix *q, kiln_rng *r);
/* Reference dequantization of one row into out[cols]. */
void kiln_dequantize_row(const kiln_qmatrix *q, int64_t row, float *out);
/* The 4/8-bit code of element (row, k) (for bit-exact unpacking tests). */
int kiln_qmatrix_code(const kiln_qmatrix *q, int64_t row, int64_t k);

/* GGUF blocks (FORMATS.md) <-> Kiln layout, lossless. `blocks` holds one
 * row: cols/32 blocks of the GGUF type (cols must be a multiple of 32 and q
 * must use group 32 and the matching quant: Q4_0 -> KILN_Q4_0, Q4_1 ->
 * KILN_Q4_1, Q8_0 -> KILN_Q8_0). */
int kiln_repack_from_gguf(kiln_qmatrix *q, int64_t row, int ggml_type, const void *blocks, kiln_err *e);
/* The same, one code at a time: the reference kiln_repack_from_gguf (a word at
 * a time) must match bit for bit. */
int kiln_repack_from_gguf_ref(kiln_qmatrix *q, int64_t row, int ggml_type, const void *blocks, kiln_err *e);
int kiln_repack_to_gguf(const kiln_qmatrix *q, int64_t row, int ggml_type, void *blocks, kiln_err *e);

#endif
