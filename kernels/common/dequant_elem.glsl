/* kernels/common/dequant_elem.glsl - one element of a quantized matrix whose
 * format is a run-time argument (dequant, embed_gather shaders): the GLSL
 * twin of dequant_elem.h. It declares the matrix at bindings 0-2 (the slots
 * both kernels give it): words qs, f16 pairs sc (scales) and mn (mins).
 * qrow: index of the row's first word; si: its group's scale (and min); c:
 * the column; quant: a kiln_quant of 0..3. Exact as the reference: `precise`
 * keeps the q4_1 product and sum unfused. */
layout(std430, binding = 0) readonly buffer QS { uint qs[]; };
layout(std430, binding = 1) readonly buffer SC { uint sc[]; };
layout(std430, binding = 2) readonly buffer MN { uint mn[]; };

/* stride: words between a row's consecutive words (1 row-major; a matrix
 * interleaved in tiles of R rows, kernels/quant_ilv.h: R) */
float dequant_elem_s(int qrow, int stride, uint si, int c, int quant)
{
    float d = HALF(sc, si);
    if (quant == 3) {
        uint w = qs[qrow + (c >> 2) * stride];
        return float(int(w << (24 - 8 * (c & 3))) >> 24) * d;
    }
    uint w = qs[qrow + (c >> 3) * stride];
    int q = int((w >> (4 * (c & 7))) & 15u);
    if (quant == 2) {
        precise float p = float(q) * d; /* exact */
        precise float s = p + HALF(mn, si);
        return s;
    }
    return float(q - (quant == 0 ? 7 : 8)) * d;
}

float dequant_elem(int qrow, uint si, int c, int quant) { return dequant_elem_s(qrow, 1, si, c, quant); }
