/* kernels/common/prelude.cl - prepended to every OpenCL kernel source. */
#ifdef cl_khr_fp16
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#endif
/* f16 storage is read with vload_half (core OpenCL), so no fp16 arithmetic is needed. */
#define KILN_OPENCL 1
