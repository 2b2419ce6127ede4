/* kernels/common/prelude.cl - put in front of every kernel source built for
 * OpenCL (tools/embed_sources.c). */
#ifdef cl_khr_fp16
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#endif
/* f16 storage is read with vload_half (core OpenCL), so no fp16 arithmetic is needed. */
#define KILN_OPENCL 1
#include "portable.h"
