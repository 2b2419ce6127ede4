/* kernels/common/quant.h - the weight word layout of DESIGN section 4 for
 * kernels that are built per format: QUANT (a kiln_quant) is a define. Plain
 * preprocessor constants, so both the OpenCL/CUDA sources (.cl) and the GLSL
 * shaders (.comp) include this one copy. */
/* elements per 32-bit word: 8 nibbles, 4 int8, 2 f16, 1 f32 */
#define EPW (QUANT <= 2 ? 8 : QUANT == 3 ? 4 : QUANT == 4 ? 2 : 1)
/* the zero point the symmetric 4-bit formats subtract (q4f16_1: 7, q4_0: 8) */
#define ZERO (QUANT == 0 ? 7.0f : QUANT == 1 ? 8.0f : 0.0f)
