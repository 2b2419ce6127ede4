/* kernels/quant_ilv.c - see quant_ilv.h. */
#include "kernels/quant_ilv.h"

#include <stdlib.h>
#include <string.h>

int kiln_ilv_valid(int ilv) { return ilv == 1 || ilv == 4 || ilv == 8 || ilv == 16; }

void kiln_ilv_free(kiln_ilv_arrays *a)
{
    free(a->qs);
    free(a->scales);
    free(a->mins);
    memset(a, 0, sizeof *a);
}

void kiln_ilv_pack_raw(const uint32_t *qs, const uint16_t *sc, const uint16_t *mn, int64_t rows, int64_t wpr,
                       int64_t gpr, int ilv, uint32_t *dqs, uint16_t *dsc, uint16_t *dmn)
{
    int64_t R = ilv, rp = kiln_ilv_rows(rows, ilv);
    memset(dqs, 0, (size_t)rp * (size_t)wpr * 4);
    if (sc && dsc)
        memset(dsc, 0, (size_t)rp * (size_t)gpr * 2);
    if (mn && dmn)
        memset(dmn, 0, (size_t)rp * (size_t)gpr * 2);
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = r / R, i = r % R;
        const uint32_t *src = qs + r * wpr;
        uint32_t *dst = dqs + t * wpr * R + i;
        for (int64_t w = 0; w < wpr; w++)
            dst[w * R] = src[w];
        for (int64_t g = 0; g < gpr && sc && dsc; g++) {
            dsc[(t * gpr + g) * R + i] = sc[r * gpr + g];
            if (mn && dmn)
                dmn[(t * gpr + g) * R + i] = mn[r * gpr + g];
        }
    }
}

int kiln_ilv_pack(const kiln_qmatrix *q, int ilv, kiln_ilv_arrays *a, kiln_err *e)
{
    memset(a, 0, sizeof *a);
    if (!kiln_ilv_valid(ilv))
        return kiln_fail(e, KILN_E_INVALID, "weight layout: interleave %d is not 1, 4, 8 or 16", ilv);
    int64_t rp = kiln_ilv_rows(q->rows, ilv), W = q->words_per_row, G = q->groups_per_row;
    a->ilv = ilv;
    a->rows_pad = rp;
    a->qs_bytes = (size_t)rp * (size_t)W * 4;
    a->scale_bytes = q->scales ? (size_t)rp * (size_t)G * 2 : 0;
    a->qs = calloc(1, a->qs_bytes ? a->qs_bytes : 4);
    a->scales = q->scales ? calloc(1, a->scale_bytes ? a->scale_bytes : 2) : NULL;
    a->mins = q->mins ? calloc(1, a->scale_bytes ? a->scale_bytes : 2) : NULL;
    if (!a->qs || (q->scales && !a->scales) || (q->mins && !a->mins)) {
        kiln_ilv_free(a);
        return kiln_fail(e, KILN_E_NOMEM, "weight layout: no memory to interleave %lld x %lld rows by %d",
                         (long long)q->rows, (long long)q->cols, ilv);
    }
    kiln_ilv_pack_raw(q->qs, q->scales, q->mins, q->rows, W, G, ilv, a->qs, a->scales, a->mins);
    return 0;
}
