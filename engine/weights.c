/* engine/weights.c - GGUF tensors to Kiln-layout matrices on a device (see
 * weights.h for the conversion rules).
 *
 * Every row of a matrix converts on its own, so a conversion is a range of
 * rows cut into chunks that the threads of a kiln_pool claim. Where the
 * device lets the host write its buffers (the cpu backend: kiln_host_ptr),
 * rows are converted straight into them; elsewhere into a host matrix that is
 * then uploaded. Both paths run the same row functions, so they agree bit for
 * bit. */
#include "engine/weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf_dequant.h"

/* Row r of a 2-D tensor's data. */
static const uint8_t *row_ptr(const kiln_gguf_tensor *t, int64_t r)
{
    int64_t per_row = t->dims[0] / (int64_t)kiln_ggml_type_block_elems(t->type);
    return (const uint8_t *)t->data + (size_t)r * (size_t)per_row * kiln_ggml_type_block_bytes(t->type);
}

/* How a tensor type becomes a Kiln format. */
enum how { REPACK, COPY_F16, REQUANT };

void kiln_format_of_ggml(int ggml_type, int *quant, int *group)
{
    *quant = ggml_type == KILN_GGML_Q4_0 ? KILN_Q4_0
           : ggml_type == KILN_GGML_Q4_1 ? KILN_Q4_1
           : ggml_type == KILN_GGML_Q8_0 ? KILN_Q8_0
           : (ggml_type == KILN_GGML_F16 || ggml_type == KILN_GGML_F32 || ggml_type == KILN_GGML_BF16) ? KILN_F16
           : KILN_Q8_0;
    *group = *quant == KILN_F16 ? 0 : 32;
}

/* The Kiln shape (no arrays) and conversion of tensor t; errors name the file and tensor. */
static int plan(const kiln_gguf *g, const kiln_gguf_tensor *t, kiln_qmatrix *shape, enum how *how, kiln_err *e)
{
    const char *file = kiln_gguf_path(g);
    if (t->n_dims > 2 || t->dims[2] != 1 || t->dims[3] != 1)
        return kiln_fail(e, KILN_E_FORMAT, "%s: tensor '%s': %d dims, a matrix has 2", file, t->name, t->n_dims);
    int quant, group;
    kiln_format_of_ggml(t->type, &quant, &group);
    switch (t->type) {
    case KILN_GGML_Q4_0:
    case KILN_GGML_Q4_1:
    case KILN_GGML_Q8_0: *how = REPACK; break;
    case KILN_GGML_F16: *how = COPY_F16; break;
    case KILN_GGML_F32:
    case KILN_GGML_BF16: *how = REQUANT; break;
    default:
        if (!kiln_gguf_dequant_supported(t->type))
            return kiln_fail(e, KILN_E_FORMAT, "%s: tensor '%s': type %s is not supported (Kiln loads F32, F16, BF16, "
                             "Q4_0, Q4_1, Q8_0 and the K-quants)", file, t->name, kiln_ggml_type_name(t->type));
        *how = REQUANT;
    }
    if (kiln_qmatrix_shape(shape, quant, group, t->dims[1], t->dims[0], e))
        return kiln_err_wrap(e, "%s: tensor '%s'", file, t->name);
    return 0;
}

/* ---------------------------------------------------------------- rows */

/* The error a lossy conversion introduced: max |w - w'| and sum w^2 over n. */
typedef struct err_acc {
    double worst, ss;
    int64_t n;
} err_acc;

typedef struct convert_job {
    const kiln_gguf_tensor *t;
    enum how how;
    kiln_qmatrix q;  /* destination: its row i is the tensor's row row0 + i */
    int64_t row0;
    int64_t grain;   /* rows per chunk: chunk c starts at row c * grain */
    err_acc *chunk_err; /* REQUANT: one per chunk */
} convert_job;

/* A view of rows [begin, end) of q (the arrays offset, rows = end - begin). */
static kiln_qmatrix rows_view(const kiln_qmatrix *q, int64_t begin, int64_t end)
{
    kiln_qmatrix v = *q;
    v.rows = end - begin;
    v.qs += begin * q->words_per_row;
    if (v.scales)
        v.scales += begin * q->groups_per_row;
    if (v.mins)
        v.mins += begin * q->groups_per_row;
    return v;
}

/* Decode to f32, requantize, and measure the error against the decoded rows.
 * The destination may be uninitialised device memory and kiln_quantize only
 * sets the codes of real columns, so the rows are cleared first (the padding
 * code of q8_0 and f16, the only REQUANT targets, is 0). */
static int requant_rows(convert_job *j, int64_t begin, int64_t end, kiln_err *e)
{
    kiln_qmatrix v = rows_view(&j->q, begin, end);
    int64_t cols = j->t->dims[0], n = end - begin;
    float *w = malloc(sizeof *w * (size_t)(n * cols)), *back = malloc(sizeof *back * (size_t)v.cols_pad);
    int rc = 0;
    if (!w || !back)
        rc = kiln_fail(e, KILN_E_NOMEM, "no memory to convert %lld rows of %lld", (long long)n, (long long)cols);
    for (int64_t r = 0; r < n && !rc; r++)
        rc = kiln_gguf_dequant_row(j->t->type, row_ptr(j->t, j->row0 + begin + r), cols, w + r * cols, e);
    if (!rc) {
        memset(v.qs, 0, kiln_qmatrix_qs_bytes(&v));
        if (v.scales)
            memset(v.scales, 0, kiln_qmatrix_scale_bytes(&v));
        kiln_quantize(w, &v);
        err_acc *acc = &j->chunk_err[begin / j->grain];
        for (int64_t r = 0; r < n; r++) {
            kiln_dequantize_row(&v, r, back);
            for (int64_t k = 0; k < cols; k++) {
                double a = w[r * cols + k], d = fabs(a - back[k]);
                acc->worst = d > acc->worst ? d : acc->worst;
                acc->ss += a * a;
            }
            acc->n += cols;
        }
    }
    free(w);
    free(back);
    return rc;
}

static int convert_chunk(void *ctx, int64_t begin, int64_t end, kiln_err *e)
{
    convert_job *j = ctx;
    const kiln_gguf_tensor *t = j->t;
    switch (j->how) {
    case REPACK:
        for (int64_t r = begin; r < end; r++) {
            int rc = kiln_repack_from_gguf(&j->q, r, t->type, row_ptr(t, j->row0 + r), e);
            if (rc)
                return rc;
        }
        return 0;
    case COPY_F16: {
        size_t row_bytes = (size_t)t->dims[0] * 2, word_bytes = (size_t)j->q.words_per_row * 4;
        for (int64_t r = begin; r < end; r++) {
            char *dst = (char *)(j->q.qs + r * j->q.words_per_row);
            memcpy(dst, row_ptr(t, j->row0 + r), row_bytes);
            memset(dst + row_bytes, 0, word_bytes - row_bytes); /* odd cols: the last word's high half */
        }
        return 0;
    }
    case REQUANT:
        return requant_rows(j, begin, end, e);
    }
    return kiln_fail(e, KILN_E_INVALID, "unknown conversion %d", (int)j->how);
}

/* Rows per chunk: about 256k elements, but at least four chunks per thread
 * when the matrix has the rows for it (so a slowed thread is made up for). */
static int64_t pick_grain(int64_t rows, int64_t cols, int threads)
{
    int64_t g = ((int64_t)1 << 18) / (cols > 0 ? cols : 1);
    int64_t fair = rows / (4 * (int64_t)threads);
    if (fair >= 1 && fair < g)
        g = fair;
    return g > 0 ? g : 1;
}

/* Converts q->rows rows of t, from row0 on, into q (arrays set), on the pool.
 * REQUANT adds its error to *acc. */
static int convert(const kiln_gguf_tensor *t, enum how how, const kiln_qmatrix *q, int64_t row0, kiln_pool *pool,
                   err_acc *acc, kiln_err *e)
{
    convert_job j = {.t = t, .how = how, .q = *q, .row0 = row0};
    j.grain = pick_grain(q->rows, q->cols, kiln_pool_threads(pool));
    int64_t n_chunks = (q->rows + j.grain - 1) / j.grain;
    if (how == REQUANT && !(j.chunk_err = calloc((size_t)n_chunks, sizeof *j.chunk_err)))
        return kiln_fail(e, KILN_E_NOMEM, "out of memory");
    int rc = kiln_pool_run(pool, q->rows, j.grain, convert_chunk, &j, e);
    for (int64_t c = 0; !rc && j.chunk_err && c < n_chunks; c++) {
        acc->worst = j.chunk_err[c].worst > acc->worst ? j.chunk_err[c].worst : acc->worst;
        acc->ss += j.chunk_err[c].ss;
        acc->n += j.chunk_err[c].n;
    }
    free(j.chunk_err);
    return rc;
}

/* max|w - w'| / rms(w) */
static double acc_error(const err_acc *a)
{
    double rms = sqrt(a->ss / (double)(a->n ? a->n : 1));
    return rms > 0 ? a->worst / rms : a->worst;
}

static void describe(const kiln_gguf_tensor *t, enum how how, int quant, double err, char *note, size_t note_n)
{
    if (how == REQUANT)
        snprintf(note, note_n, "%s -> %s (max error %.2g of rms)", kiln_ggml_type_name(t->type),
                 kiln_quant_name(quant), err);
    else
        snprintf(note, note_n, "%s %s (lossless)", kiln_ggml_type_name(t->type), how == REPACK ? "repacked" : "copied");
}

/* The host path: a converted host matrix. */
static int host_from_gguf(const kiln_gguf *g, const kiln_gguf_tensor *t, kiln_pool *pool, kiln_qmatrix *q,
                          double *conv_err, char *note, size_t note_n, kiln_err *e)
{
    enum how how = REPACK;
    int rc = plan(g, t, q, &how, e);
    if (rc)
        return rc;
    if ((rc = kiln_qmatrix_alloc(q, q->quant, q->group, q->rows, q->cols, e)))
        return kiln_err_wrap(e, "%s: tensor '%s'", kiln_gguf_path(g), t->name);
    err_acc acc = {0};
    if ((rc = convert(t, how, q, 0, pool, &acc, e))) {
        kiln_qmatrix_free(q);
        return kiln_err_wrap(e, "%s: tensor '%s'", kiln_gguf_path(g), t->name);
    }
    *conv_err = acc_error(&acc);
    describe(t, how, q->quant, *conv_err, note, note_n);
    return 0;
}

int kiln_qmatrix_from_gguf(const kiln_gguf *g, const kiln_gguf_tensor *t, kiln_qmatrix *q, double *conv_err,
                           char *note, size_t note_n, kiln_err *e)
{
    return host_from_gguf(g, t, NULL, q, conv_err, note, note_n, e);
}

/* ---------------------------------------------------------------- device */

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

/* The largest buffer a part may use (0: no limit). */
static uint64_t part_limit(const kiln_device *d, uint64_t max_part_bytes)
{
    uint64_t limit = max_part_bytes ? max_part_bytes : d->fp.max_buffer_bytes;
    if (max_part_bytes && d->fp.max_buffer_bytes && d->fp.max_buffer_bytes < limit)
        limit = d->fp.max_buffer_bytes;
    return limit;
}

/* Fills m's shape from q (sizes only) and allocates each part's buffers. */
static int alloc_parts(kiln_device *d, const kiln_qmatrix *q, uint64_t max_part_bytes, kiln_dmat *m, kiln_err *e)
{
    kiln_err local = {0}; /* the code of a failed kiln_alloc, also for callers that pass no error */
    if (!e)
        e = &local;
    memset(m, 0, sizeof *m);
    m->quant = q->quant;
    m->group = q->group;
    m->rows = q->rows;
    m->cols = q->cols;
    m->words_per_row = q->words_per_row;
    m->groups_per_row = q->groups_per_row;
    m->ilv = 1;
    uint64_t limit = part_limit(d, max_part_bytes);
    int64_t per = rows_per_part(q, limit);
    if (per < 1)
        return kiln_fail(e, KILN_E_INVALID,
                         "%lld x %lld %s matrix: not even %d rows fit in one buffer of %llu bytes", (long long)q->rows, (long long)q->cols, kiln_quant_name(q->quant),
                         KILN_DMAT_ROW_ALIGN, (unsigned long long)limit);
    int64_t n_parts = (q->rows + per - 1) / per;
    if (n_parts > KILN_DMAT_MAX_PARTS)
        return kiln_fail(e, KILN_E_INVALID, "%lld x %lld %s matrix needs %lld buffers of %llu bytes (max %d)",
                         (long long)q->rows, (long long)q->cols, kiln_quant_name(q->quant),
                         (long long)n_parts, (unsigned long long)limit, KILN_DMAT_MAX_PARTS);
    int has_scales = q->groups_per_row > 0, has_mins = q->quant == KILN_Q4_1;
    size_t wrow = (size_t)q->words_per_row * 4, srow = (size_t)q->groups_per_row * 2;
    for (int64_t r0 = 0; r0 < q->rows; r0 += per) {
        kiln_dmat_part *p = &m->part[m->n_parts++];
        p->row0 = r0;
        p->rows = q->rows - r0 < per ? q->rows - r0 : per;
        size_t qb = wrow * (size_t)p->rows, sb = srow * (size_t)p->rows;
        size_t sbytes = has_scales ? sb : 4, mbytes = has_mins ? sb : 4;
        if (!(p->qs = kiln_alloc(d, qb, e)) || !(p->scales = kiln_alloc(d, sbytes, e)) ||
            !(p->mins = kiln_alloc(d, mbytes, e))) {
            kiln_dmat_free(d, m);
            return e->code ? e->code : KILN_E_NOMEM;
        }
        m->bytes += qb + sbytes + mbytes;
    }
    return 0;
}

static const uint32_t dummy = 0; /* the contents of the 4-byte scales/mins of formats without them */

/* One buffer holding the matrix interleaved in tiles of ilv rows
 * (kernels/quant_ilv.h), written in place where the host can reach the
 * device's buffers. */
static int upload_interleaved(kiln_device *d, const kiln_qmatrix *q, int ilv, uint64_t max_part_bytes, kiln_dmat *m,
                              kiln_err *e)
{
    kiln_err local = {0}; /* the code of a failed kiln_alloc, also for callers that pass no error */
    if (!e)
        e = &local;
    memset(m, 0, sizeof *m);
    m->quant = q->quant;
    m->group = q->group;
    m->rows = q->rows;
    m->cols = q->cols;
    m->words_per_row = q->words_per_row;
    m->groups_per_row = q->groups_per_row;
    m->ilv = ilv;
    int64_t rp = kiln_ilv_rows(q->rows, ilv);
    size_t qb = (size_t)rp * (size_t)q->words_per_row * 4, sb = (size_t)rp * (size_t)q->groups_per_row * 2;
    uint64_t limit = part_limit(d, max_part_bytes);
    if (limit && (qb > limit || sb > limit))
        return kiln_fail(e, KILN_E_INVALID, "%lld x %lld %s matrix: layout ilv %d needs it in one buffer of %zu bytes "
                         "(%s allows %llu)", (long long)q->rows, (long long)q->cols, kiln_quant_name(q->quant), ilv,
                         qb, d->fp.name, (unsigned long long)limit);
    size_t sbytes = q->scales ? sb : 4, mbytes = q->mins ? sb : 4;
    kiln_dmat_part *p = &m->part[m->n_parts++];
    p->rows = q->rows;
    int rc = 0;
    if (!(p->qs = kiln_alloc(d, qb, e)) || !(p->scales = kiln_alloc(d, sbytes, e)) ||
        !(p->mins = kiln_alloc(d, mbytes, e))) {
        rc = e->code ? e->code : KILN_E_NOMEM;
        kiln_dmat_free(d, m);
        return rc;
    }
    m->bytes = qb + sbytes + mbytes;
    uint32_t *hq = kiln_host_ptr(d, p->qs);
    uint16_t *hs = q->scales ? kiln_host_ptr(d, p->scales) : NULL, *hm = q->mins ? kiln_host_ptr(d, p->mins) : NULL;
    if (hq && (!q->scales || hs) && (!q->mins || hm)) { /* the cpu: straight into the buffers */
        kiln_ilv_pack_raw(q->qs, q->scales, q->mins, q->rows, q->words_per_row, q->groups_per_row, ilv, hq, hs, hm);
        if (!q->scales)
            rc = kiln_write(d, p->scales, 0, &dummy, 4, e);
        if (!rc && !q->mins)
            rc = kiln_write(d, p->mins, 0, &dummy, 4, e);
    } else {
        kiln_ilv_arrays a;
        if (!(rc = kiln_ilv_pack(q, ilv, &a, e))) {
            if (!(rc = kiln_write(d, p->qs, 0, a.qs, a.qs_bytes, e)) &&
                !(rc = kiln_write(d, p->scales, 0, a.scales ? (const void *)a.scales : &dummy, sbytes, e)))
                rc = kiln_write(d, p->mins, 0, a.mins ? (const void *)a.mins : &dummy, mbytes, e);
            kiln_ilv_free(&a);
        }
    }
    if (rc)
        kiln_dmat_free(d, m);
    return rc;
}

int kiln_dmat_upload(kiln_device *d, const kiln_qmatrix *q, uint64_t max_part_bytes, int ilv, kiln_dmat *m,
                     kiln_err *e)
{
    if (ilv > 1 && q->quant != KILN_F16)
        return upload_interleaved(d, q, ilv, max_part_bytes, m, e);
    int rc = alloc_parts(d, q, max_part_bytes, m, e);
    if (rc)
        return rc;
    size_t wrow = (size_t)q->words_per_row * 4, srow = (size_t)q->groups_per_row * 2;
    for (int i = 0; i < m->n_parts && !rc; i++) {
        kiln_dmat_part *p = &m->part[i];
        size_t qb = wrow * (size_t)p->rows, sb = srow * (size_t)p->rows;
        const uint8_t *qs = (const uint8_t *)q->qs + wrow * (size_t)p->row0;
        const void *sc = q->scales ? (const void *)((const uint8_t *)q->scales + srow * (size_t)p->row0) : &dummy;
        const void *mn = q->mins ? (const void *)((const uint8_t *)q->mins + srow * (size_t)p->row0) : &dummy;
        if (!(rc = kiln_write(d, p->qs, 0, qs, qb, e)) && !(rc = kiln_write(d, p->scales, 0, sc, q->scales ? sb : 4, e)))
            rc = kiln_write(d, p->mins, 0, mn, q->mins ? sb : 4, e);
    }
    if (rc)
        kiln_dmat_free(d, m);
    return rc;
}

/* The in-place path: each part's rows converted into its host-writable buffers. */
static int load_in_place(kiln_device *d, const kiln_gguf *g, const kiln_gguf_tensor *t, const kiln_qmatrix *shape,
                         enum how how, uint64_t max_part_bytes, kiln_pool *pool, kiln_dmat *m, kiln_err *e)
{
    int rc = alloc_parts(d, shape, max_part_bytes, m, e);
    if (rc)
        return kiln_err_wrap(e, "%s: tensor '%s' on %s", kiln_gguf_path(g), t->name, d->fp.name);
    int has_scales = shape->groups_per_row > 0, has_mins = shape->quant == KILN_Q4_1;
    err_acc acc = {0};
    for (int i = 0; i < m->n_parts && !rc; i++) {
        kiln_dmat_part *p = &m->part[i];
        kiln_qmatrix v = *shape;
        v.rows = p->rows;
        v.qs = kiln_host_ptr(d, p->qs);
        v.scales = has_scales ? kiln_host_ptr(d, p->scales) : NULL;
        v.mins = has_mins ? kiln_host_ptr(d, p->mins) : NULL;
        if (!v.qs || (has_scales && !v.scales) || (has_mins && !v.mins))
            rc = kiln_fail(e, KILN_E_DEVICE, "%s gave no host pointer for a buffer", d->fp.name);
        if (!rc && !has_scales)
            rc = kiln_write(d, p->scales, 0, &dummy, 4, e);
        if (!rc && !has_mins)
            rc = kiln_write(d, p->mins, 0, &dummy, 4, e);
        if (!rc)
            rc = convert(t, how, &v, p->row0, pool, &acc, e);
    }
    if (rc) {
        kiln_dmat_free(d, m);
        return kiln_err_wrap(e, "%s: tensor '%s'", kiln_gguf_path(g), t->name);
    }
    m->conv_err = acc_error(&acc);
    describe(t, how, shape->quant, m->conv_err, m->note, sizeof m->note);
    return 0;
}

int kiln_dmat_load(kiln_device *d, const kiln_gguf *g, const kiln_gguf_tensor *t, uint64_t max_part_bytes, int ilv,
                   kiln_pool *pool, kiln_dmat *m, kiln_qmatrix *keep, kiln_err *e)
{
    memset(m, 0, sizeof *m);
    if (keep)
        memset(keep, 0, sizeof *keep);
    kiln_qmatrix shape;
    enum how how = REPACK;
    int rc = plan(g, t, &shape, &how, e);
    if (rc)
        return rc;
    int64_t per = rows_per_part(&shape, part_limit(d, max_part_bytes));
    int split = per >= 1 && per < shape.rows;
    if (ilv > 1 && shape.quant == KILN_F16)
        ilv = 1; /* f16 matrices stay row-major */
    if (ilv > 1 && split)
        ilv = 1; /* tiles of rows need the matrix in one buffer: row-major parts instead, whose gemv then runs a
                  * row-major config (forward.c tells it the parts' layout), rather than failing the load */
    if (d->ops->host_ptr && !(keep && split) && ilv <= 1)
        return load_in_place(d, g, t, &shape, how, max_part_bytes, pool, m, e);
    kiln_qmatrix q;
    double err = 0;
    char note[160];
    if ((rc = host_from_gguf(g, t, pool, &q, &err, note, sizeof note, e)))
        return rc;
    rc = kiln_dmat_upload(d, &q, max_part_bytes, ilv, m, e);
    if (rc || !(keep && split))
        kiln_qmatrix_free(&q);
    else
        *keep = q;
    if (rc)
        return kiln_err_wrap(e, "%s: uploading tensor '%s' to %s", kiln_gguf_path(g), t->name, d->fp.name);
    m->conv_err = err;
    snprintf(m->note, sizeof m->note, "%s", note);
    return 0;
}

int kiln_dmat_load_stacked(kiln_device *d, const kiln_gguf *g, const kiln_gguf_tensor *const *ts, int n,
                           uint64_t max_part_bytes, int ilv, kiln_pool *pool, kiln_dmat *m, kiln_err *e)
{
    memset(m, 0, sizeof *m);
    kiln_qmatrix shape[KILN_DMAT_MAX_STACK];
    enum how how[KILN_DMAT_MAX_STACK];
    if (n < 1 || n > KILN_DMAT_MAX_STACK)
        return kiln_fail(e, KILN_E_INVALID, "stacking %d matrices (1..%d)", n, KILN_DMAT_MAX_STACK);
    int64_t rows = 0;
    for (int i = 0; i < n; i++) {
        how[i] = REPACK;
        int rc = plan(g, ts[i], &shape[i], &how[i], e);
        if (rc)
            return rc;
        if (i && (shape[i].quant != shape[0].quant || shape[i].group != shape[0].group ||
                  shape[i].cols != shape[0].cols))
            return kiln_fail(e, KILN_E_INVALID, "%s: tensors '%s' and '%s' differ in format or width: not stacked",
                             kiln_gguf_path(g), ts[0]->name, ts[i]->name);
        rows += shape[i].rows;
    }
    kiln_qmatrix q;
    int rc = kiln_qmatrix_alloc(&q, shape[0].quant, shape[0].group, rows, shape[0].cols, e);
    if (rc)
        return kiln_err_wrap(e, "%s: stacking '%s'..", kiln_gguf_path(g), ts[0]->name);
    err_acc acc = {0};
    for (int64_t i = 0, r0 = 0; i < n && !rc; r0 += shape[i].rows, i++) {
        kiln_qmatrix v = rows_view(&q, r0, r0 + shape[i].rows);
        if ((rc = convert(ts[i], how[i], &v, 0, pool, &acc, e)))
            kiln_err_wrap(e, "%s: tensor '%s'", kiln_gguf_path(g), ts[i]->name);
    }
    if (!rc && (rc = kiln_dmat_upload(d, &q, max_part_bytes, ilv, m, e)))
        kiln_err_wrap(e, "%s: uploading '%s'.. (%d stacked) to %s", kiln_gguf_path(g), ts[0]->name, n, d->fp.name);
    kiln_qmatrix_free(&q);
    if (rc)
        return rc;
    m->conv_err = acc_error(&acc);
    describe(ts[0], how[0], shape[0].quant, m->conv_err, m->note, sizeof m->note);
    return 0;
}

kiln_dmat kiln_dmat_rows(const kiln_dmat *m, int64_t row0, int64_t rows)
{
    kiln_dmat v = *m;
    v.view = 1;
    v.row0 = m->row0 + row0;
    v.rows = rows;
    v.bytes = 0;
    return v;
}

void kiln_dmat_free(kiln_device *d, kiln_dmat *m)
{
    if (m->view) { /* the rows of another matrix: its owner frees them */
        memset(m, 0, sizeof *m);
        return;
    }
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
