/* kernels/common/prelude.cu - put in front of every kernel source built for
 * CUDA (tools/embed_sources.c; NVRTC, no system headers available). */
#define KILN_CUDA 1
typedef unsigned int uint32_t;
typedef int int32_t;
typedef unsigned short uint16_t;
typedef unsigned char uint8_t;
typedef signed char int8_t;
/* f16 storage decoded without cuda_fp16.h (NVRTC may lack the include path). */
__device__ __forceinline__ float kiln_half_to_float(uint16_t h)
{
    float f;
    asm("{ .reg .f16 t; mov.b16 t, %1; cvt.f32.f16 %0, t; }" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ uint16_t kiln_float_to_half(float f)
{
    uint16_t h;
    asm("{ .reg .f16 t; cvt.rn.f16.f32 t, %1; mov.b16 %0, t; }" : "=h"(h) : "f"(f));
    return h;
}
#include "portable.h"
