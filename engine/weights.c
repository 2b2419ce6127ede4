/* engine/weights.c - GGUF tensors to Kiln-layout matrices on a device (see
 * weights.h for the conversion rules). */
#include "engine/weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf_dequant.h"

void kiln_format_of_ggml(int ggml_type, int *quant, int *group)
{
    *quant = ggml_type == KILN_GGML_Q4_0 ? KILN_Q4_0
           : ggml_type == KILN_GGML_Q4_1 ? KILN_Q4_1
           : ggml_type == KILN_GGML_Q8_0 ? KILN_Q8_0
           : (ggml_type == KILN_GGML_F16 || ggml_type == KILN_GGML_F32 || ggml_type == KILN_GGML_BF16) ? KILN_F16
           : KILN_Q8_0;
    *group = *quant == KILN_F16 ? 0 : 32;
}

/* Row r of a 2-D tensor's data. */
static const uint8_t *row_ptr(const kiln_gguf_tensor *t, int64_t r)
{
    int64_t per_row = t->dims[0] / (int64_t)kiln_ggml_type_block_elems(t->type);
    return (const uint8_t *)t->data + (size_t)r * (size_t)per_row * kiln_ggml_type_block_bytes(t->type);
}

/* max|w - w'| / rms(w) over the whole matrix. */
static double conv_error(const kiln_gguf_tensor *t, const kiln_qmatrix *q, kiln_err *e)
{
    int64_t cols = t->dims[0];
    float *a = malloc(sizeof *a * (size_t)cols), *b = malloc(sizeof *b * (size_t)q->cols_pad);
    double worst = 0, ss = 0;
    int64_t n = 0;
    if (!a || !b) {
        free(a);
        free(b);
        return kiln_fail(e, KILN_E_NOMEM, "out of memory"), -1;
    }
    for (int64_t r = 0; r < q->rows; r++) {
        if (kiln_gguf_dequant_row(t->type, row_ptr(t, r), cols, a, e)) {
            free(a);
            free(b);
            return -1;
        }
        kiln_dequantize_row(q, r, b);
        for (int64_t k = 0; k < cols; k++) {
            double d = fabs((double)a[k] - b[k]);
            worst = d > worst ? d : worst;
            ss += (double)a[k] * a[k];
            n++;
        }
    }
    free(a);
    free(b);
    double rms = sqrt(ss / (double)(n ? n : 1));
    return rms > 0 ? worst / rms : worst;
}

int kiln_qmatrix_from_gguf(const kiln_gguf *g, const kiln_gguf_tensor *t, kiln_qmatrix *q, double *conv_err,
                           char *note, size_t note_n, kiln_err *e)
{
    const char *file = kiln_gguf_path(g);
    if (t->n_dims > 2 || t->dims[2] != 1 || t->dims[3] != 1)
        return kiln_fail(e, KILN_E_FORMAT, "%s: tensor '%s': %d dims, a matrix has 2", file, t->name, t->n_dims);
    int64_t cols = t->dims[0], rows = t->dims[1];
    int lossless = t->type == KILN_GGML_Q4_0 || t->type == KILN_GGML_Q4_1 || t->type == KILN_GGML_Q8_0;
    int quant, group;
    kiln_format_of_ggml(t->type, &quant, &group);
    if (!lossless && !kiln_gguf_dequant_supported(t->type))
        return kiln_fail(e, KILN_E_FORMAT, "%s: tensor '%s': type %s is not supported (Kiln loads F32, F16, BF16, "
                         "Q4_0, Q4_1, Q8_0 and the K-quants)", file, t->name, kiln_ggml_type_name(t->type));
    int rc = kiln_qmatrix_alloc(q, quant, group, rows, cols, e);
    if (rc)
        return kiln_err_wrap(e, "%s: tensor '%s'", file, t->name);
    *conv_err = 0;
    if (lossless) {
        for (int64_t r = 0; r < rows && !rc; r++)
            rc = kiln_repack_from_gguf(q, r, t->type, row_ptr(t, r), e);
        if (rc) {
            kiln_qmatrix_free(q);
            return kiln_err_wrap(e, "%s: tensor '%s'", file, t->name);
        }
        snprintf(note, note_n, "%s repacked (lossless)", kiln_ggml_type_name(t->type));
        return 0;
    }
    if (t->type == KILN_GGML_F16) {
        for (int64_t r = 0; r < rows; r++)
            memcpy((char *)q->qs + (size_t)r * q->words_per_row * 4, row_ptr(t, r), (size_t)cols * 2);
        snprintf(note, note_n, "F16 copied (lossless)");
        return 0;
    }
    /* decode to f32, then requantize the whole matrix */
    float *w = malloc(sizeof *w * (size_t)rows * (size_t)cols);
    if (!w) {
        kiln_qmatrix_free(q);
        return kiln_fail(e, KILN_E_NOMEM, "%s: tensor '%s': no memory to convert %lld x %lld", file, t->name,
                         (long long)rows, (long long)cols);
    }
    for (int64_t r = 0; r < rows && !rc; r++)
        rc = kiln_gguf_dequant_row(t->type, row_ptr(t, r), cols, w + (size_t)r * (size_t)cols, e);
    if (!rc)
        kiln_quantize(w, q);
    free(w);
    if (!rc) {
        *conv_err = conv_error(t, q, e);
        rc = *conv_err < 0 ? (e ? e->code : KILN_E_NOMEM) : 0;
    }
    if (rc) {
        kiln_qmatrix_free(q);
        return kiln_err_wrap(e, "%s: tensor '%s'", file, t->name);
    }
    snprintf(note, note_n, "%s -> %s (max error %.2g of rms)", kiln_ggml_type_name(t->type), kiln_quant_name(quant),
             *conv_err);
    return 0;
}

/* Rows per part: as many KILN_DMAT_ROW_ALIGN-row blocks as fit in one buffer. */
static int64_t rows_per_part(const kiln_qmatrix *q, uint64_t max_bytes)
{
    if (!max_bytes)
        return q->rows;
    uint64_t row_bytes = (uint64_t)q->words_per_row * 4;
    uint64_t srow = (uint64_t)q->groups_per_row * 2;
    if (srow > row_bytes)
        row_bytes = srow;
    int64_t rows = (int64_t)(max_bytes / row_bytes) / KILN_DMAT_ROW_ALIGN * KILN_DMAT_ROW_ALIGN;
    return rows < q->rows ? rows : q->rows;
}

/* One buffer holding the matrix interleaved in tiles of ilv rows. */
static int upload_interleaved(kiln_device *d, const kiln_qmatrix *q, int ilv, kiln_dmat *m, kiln_err *e)
{
    kiln_ilv_arrays a;
    int rc = kiln_ilv_pack(q, ilv, &a, e);
    if (rc)
        return rc;
    static const uint32_t dummy = 0;
    kiln_dmat_part *p = &m->part[m->n_parts++];
    p->row0 = 0;
    p->rows = q->rows;
    size_t sbytes = a.scales ? a.scale_bytes : 4, mbytes = a.mins ? a.scale_bytes : 4;
    if (!(p->qs = kiln_alloc(d, a.qs_bytes, e)) || !(p->scales = kiln_alloc(d, sbytes, e)) ||
        !(p->mins = kiln_alloc(d, mbytes, e)) || kiln_write(d, p->qs, 0, a.qs, a.qs_bytes, e) ||
        kiln_write(d, p->scales, 0, a.scales ? (const void *)a.scales : &dummy, sbytes, e) ||
        kiln_write(d, p->mins, 0, a.mins ? (const void *)a.mins : &dummy, mbytes, e)) {
        rc = e ? e->code : KILN_E_DEVICE;
        kiln_ilv_free(&a);
        kiln_dmat_free(d, m);
        return rc;
    }
    m->bytes += a.qs_bytes + sbytes + mbytes;
    kiln_ilv_free(&a);
    return 0;
}

int kiln_dmat_upload(kiln_device *d, const kiln_qmatrix *q, uint64_t max_part_bytes, int ilv, kiln_dmat *m,
                     kiln_err *e)
{
    memset(m, 0, sizeof *m);
    m->quant = q->quant;
    m->group = q->group;
    m->rows = q->rows;
    m->cols = q->cols;
    m->words_per_row = q->words_per_row;
    m->groups_per_row = q->groups_per_row;
    m->ilv = ilv > 1 && q->quant != KILN_F16 ? ilv : 1;
    uint64_t limit = max_part_bytes ? max_part_bytes : d->fp.max_buffer_bytes;
    if (max_part_bytes && d->fp.max_buffer_bytes && d->fp.max_buffer_bytes < limit)
        limit = d->fp.max_buffer_bytes;
    int64_t per = rows_per_part(q, limit);
    if (per < 1)
        return kiln_fail(e, KILN_E_INVALID,
                         "%lld x %lld %s matrix: not even %d rows fit in one buffer of %llu bytes", (long long)q->rows, (long long)q->cols, kiln_quant_name(q->quant),
                         KILN_DMAT_ROW_ALIGN, (unsigned long long)limit);
    int64_t n_parts = (q->rows + per - 1) / per;
    if (m->ilv > 1) {
        if (n_parts > 1 || (limit && (uint64_t)kiln_ilv_rows(q->rows, m->ilv) * (uint64_t)q->words_per_row * 4 > limit))
            return kiln_fail(e, KILN_E_INVALID, "%lld x %lld %s matrix: layout ilv %d needs it in one buffer",
                             (long long)q->rows, (long long)q->cols, kiln_quant_name(q->quant), m->ilv);
        return upload_interleaved(d, q, m->ilv, m, e);
    }
    if (n_parts > KILN_DMAT_MAX_PARTS)
        return kiln_fail(e, KILN_E_INVALID, "%lld x %lld %s matrix needs %lld buffers of %llu bytes (max %d)",
                         (long long)q->rows, (long long)q->cols, kiln_quant_name(q->quant),
                         (long long)n_parts, (unsigned long long)limit, KILN_DMAT_MAX_PARTS);
    static const uint32_t dummy = 0;
    size_t wrow = (size_t)q->words_per_row * 4, srow = (size_t)q->groups_per_row * 2;
    for (int64_t r0 = 0; r0 < q->rows; r0 += per) {
        kiln_dmat_part *p = &m->part[m->n_parts++];
        p->row0 = r0;
        p->rows = q->rows - r0 < per ? q->rows - r0 : per;
        size_t qb = wrow * (size_t)p->rows, sb = srow * (size_t)p->rows;
        size_t sbytes = q->scales ? sb : 4, mbytes = q->mins ? sb : 4;
        if (!(p->qs = kiln_alloc(d, qb, e)) || !(p->scales = kiln_alloc(d, sbytes, e)) ||
            !(p->mins = kiln_alloc(d, mbytes, e)))
            goto fail;
        const uint8_t *qs = (const uint8_t *)q->qs + wrow * (size_t)r0;
        const void *sc = q->scales ? (const void *)((const uint8_t *)q->scales + srow * (size_t)r0) : &dummy;
        const void *mn = q->mins ? (const void *)((const uint8_t *)q->mins + srow * (size_t)r0) : &dummy;
        if (kiln_write(d, p->qs, 0, qs, qb, e) || kiln_write(d, p->scales, 0, sc, sbytes, e) ||
            kiln_write(d, p->mins, 0, mn, mbytes, e))
            goto fail;
        m->bytes += qb + sbytes + mbytes;
    }
    return 0;
fail:
    kiln_dmat_free(d, m);
    return e ? e->code : KILN_E_DEVICE;
}

int kiln_dmat_load(kiln_device *d, const kiln_gguf *g, const kiln_gguf_tensor *t, uint64_t max_part_bytes, int ilv,
                   kiln_dmat *m, kiln_qmatrix *keep, kiln_err *e)
{
    kiln_qmatrix q;
    double err;
    char note[160];
    int rc = kiln_qmatrix_from_gguf(g, t, &q, &err, note, sizeof note, e);
    if (rc)
        return rc;
    rc = kiln_dmat_upload(d, &q, max_part_bytes, ilv, m, e);
    if (rc || !keep)
        kiln_qmatrix_free(&q);
    else
        *keep = q;
    if (rc)
        return kiln_err_wrap(e, "%s: uploading tensor '%s' to %s", kiln_gguf_path(g), t->name, d->fp.name);
    m->conv_err = err;
    snprintf(m->note, sizeof m->note, "%s", note);
    return 0;
}

void kiln_dmat_free(kiln_device *d, kiln_dmat *m)
{
    for (int i = 0; i < m->n_parts; i++) {
        kiln_dmat_part *p = &m->part[i];
        kiln_free(d, p->qs);
        kiln_free(d, p->scales);
        kiln_free(d, p->mins);
        p->qs = p->scales = p->mins = NULL;
    }
    m->n_parts = 0;
}

int kiln_vector_from_gguf(const kiln_gguf *g, const kiln_gguf_tensor *t, float *out, int64_t n, kiln_err *e)
{
    if (t->n_elements != n)
        return kiln_fail(e, KILN_E_FORMAT, "%s: tensor '%s': %lld elements, expected %lld", kiln_gguf_path(g), t->name,
                         (long long)t->n_elements, (long long)n);
    int rc = kiln_gguf_dequant_row(t->type, t->data, n, out, e);
    return rc ? kiln_err_wrap(e, "%s: tensor '%s'", kiln_gguf_path(g), t->name) : 0;
}
