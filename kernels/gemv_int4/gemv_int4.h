/* kernels/gemv_int4/gemv_int4.h - shared by the gemv_int4 files and the
 * prefill gemm (same weight slots). */
#ifndef KILN_KERNELS_GEMV_INT4_H
#define KILN_KERNELS_GEMV_INT4_H

#include "kernels/desc.h"
#include "kernels/kernel.h"
#include "kernels/quant.h"
#include "util/rng.h"

extern const kiln_kernel kiln_kernel_gemv_int4;

/* Weight elements per u32 word: 8 for int4, 4 for q8_0, 2 for f16. */
int kiln_gemv_elems_per_word(int quant);
/* y[rows] = W x in double accumulation (the truth for tests). */
void kiln_gemv_reference(const kiln_qmatrix *q, const float *x, float *y);

/* The GPU constraints gemv's and gemm's tiled layout (0) share: `shared`
 * bytes of shared memory, vec, the subgroup reduction. 1 if they hold, else
 * 0 and why. */
int kiln_wx_tile_ok(const kiln_shape *s, const kiln_fingerprint *fp, size_t shared, int vec, int wg, int reduce,
                    char *why, size_t n);

/* The problem slots of y = W x (gemv) and Y = X W^T (gemm): qs, scales,
 * mins, x, y, with the budget of both. */
extern const kiln_slot kiln_wx_slots[5];
/* Their sizes for s with the weights in layout ilv and `tokens` rows of x
 * and y. */
void kiln_wx_sizes(const kiln_shape *s, int ilv, int64_t tokens, kiln_slot *slot);
/* A random matrix of s into *q (row-major, for the reference; the caller
 * frees it) and, in layout ilv, into slots 0-2 of p; the 4-byte dummies of
 * a format without scales or mins are filled with `dummy` (< 0: left 0). */
int kiln_wx_weights(kiln_problem *p, const kiln_shape *s, int ilv, kiln_rng *rng, int dummy, kiln_qmatrix *q,
                    kiln_err *e);

#endif
