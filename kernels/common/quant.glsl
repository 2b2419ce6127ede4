/* kernels/common/quant.glsl - one element of a weight word in GLSL, for
 * shaders built per format (QUANT a define). Shared by the gemv_int4 and
 * gemm_int4 shaders; f16 scales are read with HALF (prelude.comp). */
#include "quant.h"

#if QUANT != 4
/* code j of a word, zero point removed (q8_0: the signed byte) */
float code(uint word, uint j)
{
#if QUANT <= 2
    return float((word >> (4u * j)) & 0xFu) - ZERO;
#else
    return float(bitfieldExtract(int(word), int(8u * j), 8));
#endif
}
#endif

/* element j of a word, dequantized (s: scale, m: min; unused where the format has none) */
float deq(uint word, uint j, float s, float m)
{
#if QUANT == 4
    return unpackHalf2x16(word)[j];
#elif QUANT == 2
    return code(word, j) * s + m;
#else
    return code(word, j) * s;
#endif
}
