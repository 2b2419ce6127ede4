/* kernels/quant_ilv.h - row-interleaved weight layouts (the `ilv` schedule
 * parameter of gemv_int4; the engine repacks each matrix to its winner's
 * layout at load).
 *
 * With ilv = R (1, 4, 8 or 16) the rows form tiles of R (the last one padded
 * with zero rows: zero codes, zero scales, zero mins) and
 *   qs[((r / R) * words_per_row + w) * R + r % R]      = word w of row r
 *   scales[((r / R) * groups_per_row + g) * R + r % R] = scale of group g of row r
 * (mins the same), so one 16- to 64-byte load holds the same word of R rows:
 * R consecutive SIMD lanes, or R consecutive invocations of a GPU-like
 * driver, read consecutive words. R = 1 is the plain row-major layout. */
#ifndef KILN_KERNELS_QUANT_ILV_H
#define KILN_KERNELS_QUANT_ILV_H

#include "kernels/quant.h"

/* A matrix's arrays in layout R (rows padded to a multiple of R). */
typedef struct kiln_ilv_arrays {
    int ilv;
    int64_t rows_pad;
    uint32_t *qs;     /* rows_pad * words_per_row */
    uint16_t *scales; /* rows_pad * groups_per_row, NULL when q has none */
    uint16_t *mins;   /* same, q4_1 only */
    size_t qs_bytes, scale_bytes;
} kiln_ilv_arrays;

static inline int64_t kiln_ilv_rows(int64_t rows, int ilv) { return (rows + ilv - 1) / ilv * ilv; }
int kiln_ilv_valid(int ilv);

/* Row-major arrays (rows x wpr words, rows x gpr scales and mins; sc/mn may
 * be NULL) into layout R: dst arrays hold kiln_ilv_rows(rows, R) rows and
 * are zero-filled first. */
void kiln_ilv_pack_raw(const uint32_t *qs, const uint16_t *sc, const uint16_t *mn, int64_t rows, int64_t wpr,
                       int64_t gpr, int ilv, uint32_t *dqs, uint16_t *dsc, uint16_t *dmn);

/* Fills a (allocated) from row-major q. */
int kiln_ilv_pack(const kiln_qmatrix *q, int ilv, kiln_ilv_arrays *a, kiln_err *e);
void kiln_ilv_free(kiln_ilv_arrays *a);

#endif
