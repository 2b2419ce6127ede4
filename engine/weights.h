/* engine/weights.h - one weight matrix of a model on a device, in Kiln's
 * layout (kernels/quant.h), converted from its GGUF tensor.
 *
 * Conversions (DESIGN section 4): Q4_0 / Q4_1 / Q8_0 are repacked losslessly
 * (group 32); F16 is copied; F32 and BF16 become f16 (BF16 -> f16 can lose
 * range; the error is measured); every other type the GGUF decoder knows
 * (Q4_K, Q6_K, Q5_*, ...) is dequantized and requantized to q8_0, and the
 * normalized error introduced is measured and reported in `note`. */
#ifndef KILN_ENGINE_WEIGHTS_H
#define KILN_ENGINE_WEIGHTS_H

#include "devices/device.h"
#include "engine/gguf.h"
#include "kernels/quant.h"
#include "kernels/quant_ilv.h"
#include "util/pool.h"

/* Rows [row0, row0 + rows) of a matrix, in buffers of their own. A matrix
 * larger than one device buffer may be (Vulkan's maxStorageBufferRange is
 * 128 MiB on lavapipe and many phones; a 128k-vocabulary embedding in q8_0 is
 * 260 MiB at n_embd 2048) is held as several such parts, each a whole number
 * of KILN_DMAT_ROW_ALIGN rows so that the part's outputs start at an aligned
 * byte offset of y. */
#define KILN_DMAT_MAX_PARTS 32
#define KILN_DMAT_ROW_ALIGN 64
typedef struct kiln_dmat_part {
    int64_t row0, rows;
    kiln_buffer *qs, *scales, *mins; /* scales/mins: 4-byte dummies where the format has none */
} kiln_dmat_part;

typedef struct kiln_dmat {
    int quant, group;          /* Kiln format of the device copy */
    int64_t rows, cols;        /* out x in */
    int64_t words_per_row, groups_per_row;
    int ilv;                   /* row layout (kernels/quant_ilv.h): 1 row-major, 4/8/16 interleaved tiles */
    int gemv_f32;              /* 1: its gemv config keeps x in f32 where int8 was allowed, so its gemms
                                * do too (a token's row is then the same bits alone and batched) */
    int64_t row0;              /* a view (kiln_dmat_rows): its first row in the owner's buffers */
    int view;                  /* 1: rows of another matrix (not freed here) */
    int n_parts;               /* 1 unless the matrix exceeds the device's largest buffer */
    kiln_dmat_part part[KILN_DMAT_MAX_PARTS];
    size_t bytes;              /* device bytes */
    double conv_err;           /* normalized error of a lossy conversion (0: lossless) */
    char note[160];            /* what was done: "Q4_1 repacked", "Q6_K -> q8_0 (err 2.1e-3)" */
} kiln_dmat;

/* Loads tensor t (dims [cols, rows]) onto d. Errors name the file and tensor.
 * max_part_bytes: the largest buffer a part may use (0: the device's limit,
 * d->fp.max_buffer_bytes; tests pass small values to force parts). ilv > 1:
 * rows interleaved in tiles of ilv (kernels/quant_ilv.h; one part only, f16
 * stays row-major). pool: the threads that convert the rows (NULL: the
 * calling thread). keep: if not NULL and the matrix is split into parts,
 * receives the converted host matrix (the caller frees it); otherwise it is
 * zeroed. On a device whose buffers the host can write (kiln_host_ptr) the
 * rows are converted straight into them unless a host copy is kept or the
 * layout is interleaved. */
int kiln_dmat_load(kiln_device *d, const kiln_gguf *g, const kiln_gguf_tensor *t, uint64_t max_part_bytes, int ilv,
                   kiln_pool *pool, kiln_dmat *m, kiln_qmatrix *keep, kiln_err *e);
/* Uploads a host matrix (tests, synthetic weights), in parts where needed.
 * ilv > 1: rows interleaved in tiles of ilv (one part only; f16 stays
 * row-major). */
int kiln_dmat_upload(kiln_device *d, const kiln_qmatrix *q, uint64_t max_part_bytes, int ilv, kiln_dmat *m,
                     kiln_err *e);
/* Tensors ts[0..n) of one format and width stacked row-wise into one matrix
 * (Q, K, V as one projection; gate and up), in layout ilv, one part only. */
#define KILN_DMAT_MAX_STACK 4
int kiln_dmat_load_stacked(kiln_device *d, const kiln_gguf *g, const kiln_gguf_tensor *const *ts, int n,
                           uint64_t max_part_bytes, int ilv, kiln_pool *pool, kiln_dmat *m, kiln_err *e);
/* Rows [row0, row0 + rows) of single-part m, in m's buffers (freeing it is a
 * no-op). In an interleaved layout row0 and rows are whole tiles. */
kiln_dmat kiln_dmat_rows(const kiln_dmat *m, int64_t row0, int64_t rows);
void kiln_dmat_free(kiln_device *d, kiln_dmat *m);

/* The Kiln format a GGUF tensor type converts to: Q4_0/Q4_1/Q8_0 losslessly,
 * F16/F32/BF16 to f16, every other type requantized to q8_0 (group 32). */
void kiln_format_of_ggml(int ggml_type, int *quant, int *group);

/* Host copy of the matrix the device holds (for reference forwards in tests):
 * converted exactly as kiln_dmat_load converts it. */
int kiln_qmatrix_from_gguf(const kiln_gguf *g, const kiln_gguf_tensor *t, kiln_qmatrix *q, double *conv_err,
                           char *note, size_t note_n, kiln_err *e);

/* A 1-D f32 tensor (norm weights) of n elements, any float/decodable type. */
int kiln_vector_from_gguf(const kiln_gguf *g, const kiln_gguf_tensor *t, float *out, int64_t n, kiln_err *e);

#endif
