/* kernels/common/dequant_elem.h - one element of a quantized matrix whose
 * format is a run-time argument (dequant, embed_gather), for the .cl sources.
 * qrow: the row's words; si: the index of its group's scale (and min); c: the
 * column; quant: a kiln_quant of 0..3 (q4f16_1, q4_0, q4_1, q8_0). The result
 * is exact, as the reference's: every product is of a small integer and an
 * f16, and MUL_RN/ADD_RN keep the compiler from fusing the q4_1 sum. */
/* stride: words between a row's consecutive words (1 row-major; a matrix
 * interleaved in tiles of R rows, kernels/quant_ilv.h: R) */
INLINE float dequant_elem_s(GLOBAL const uint *qrow, int stride, GLOBAL const ushort *sc, GLOBAL const ushort *mn,
                            int si, int c, int quant)
{
    float d = LOAD_HALF(sc, si);
    if (quant == 3) {
        uint w = qrow[(c >> 2) * stride];
        return MUL_RN((float)((int)(w << (24 - 8 * (c & 3))) >> 24), d);
    }
    uint w = qrow[(c >> 3) * stride];
    int q = (int)((w >> (4 * (c & 7))) & 15u);
    if (quant == 2)
        return ADD_RN(MUL_RN((float)q, d), LOAD_HALF(mn, si));
    return MUL_RN((float)(q - (quant == 0 ? 7 : 8)), d);
}

INLINE float dequant_elem(GLOBAL const uint *qrow, GLOBAL const ushort *sc, GLOBAL const ushort *mn, int si, int c,
                          int quant)
{
    return dequant_elem_s(qrow, 1, sc, mn, si, c, quant);
}
