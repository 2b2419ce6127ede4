/* kernels/common/portable.h - the names a kernel's one OpenCL/CUDA source
 * (kernels/<k>/<k>.cl) is written with, so that the same text compiles as
 * OpenCL C 1.2 (clBuildProgram) and as CUDA C++ (NVRTC). prelude.cl and
 * prelude.cu include it after defining KILN_OPENCL or KILN_CUDA; the build
 * (tools/embed_sources.c) puts the prelude in front of every source.
 *
 * The dialect: C99 as both compilers take it: no C++ features, no OpenCL
 * swizzles beyond .x .y .z .w; integer types uint, ushort, i64 and size_t;
 * min/max on int or uint (both languages have them). Whatever the two spell
 * differently has an UPPERCASE name here:
 *
 *   KERNEL, KERNEL_WG(n)   entry point; _WG: always launched with n work-items
 *                          per group (reqd_work_group_size / __launch_bounds__)
 *   KERNEL_WG2(x, y)       the same for a 2-D group of x * y work-items
 *   INLINE                 helper function
 *   GLOBAL, LOCAL          pointer qualifiers: device memory, workgroup memory
 *   SHARED                 declares a workgroup-memory array in a kernel
 *   RESTRICT               no-alias kernel pointer (CUDA; OpenCL: nothing)
 *   LOCAL_ID(d) GROUP_ID(d) NUM_GROUPS(d) LOCAL_SIZE(d) GLOBAL_ID(d)   uint
 *   GRID2D_ID(wg)          i64 index of a thread over a 2-D grid of 1-D groups
 *   BARRIER()              workgroup barrier and workgroup-memory fence
 *   UNROLL_HINT            `#pragma unroll` for CUDA; OpenCL: nothing (PoCL's
 *                          compiler unrolls what it finds worth it)
 *   HAVE_SUBGROUPS, SG_SIZE, SG_SUM(x), SG_MAX(x)
 *                          warp reductions (CUDA only: OpenCL C 1.2 has no
 *                          subgroups and config_valid keeps reduce=1 off it)
 *   LOAD_HALF(p, i)        f16 element i of p (any GLOBAL pointer) as float
 *   LOAD_HALF2(i, p), LOAD_HALF4(i, p)
 *                          f16 pair / quad i of p as float2 / float4 (one 4- /
 *                          8-byte load on CUDA, which needs p + 2i / 4i
 *                          aligned to it; OpenCL: vload_half2/4)
 *   HALF_OF_WORD(p, i, word, j)
 *                          f16 number j (0 low, 1 high) of the 32-bit word
 *                          p[i], whose value `word` the caller has loaded:
 *                          CUDA converts its bits, OpenCL reads the f16 from
 *                          memory (vload_half; no f16 arithmetic in 1.2)
 *   STORE_HALF_RTE(v, i, p), STORE_HALF2_RTE(v2, i, p), STORE_HALF4_RTE(v4, i, p)
 *                          float(s) to f16 at element (pair, quad) i of p,
 *                          round to nearest even
 *   LOADU2/LOADU4(i, p)    uint2 / uint4 number i of a uint pointer (8- / 16-byte
 *                          loads; CUDA needs p + 2i / 4i aligned to the vector)
 *   FLOAT2(a, b), FLOAT4(a, b, c, d), LOAD2/LOAD4(i, p), STORE2/STORE4(v, i, p),
 *   DOT(a, b), and + += * on float2/float4 (CUDA: defined here)
 *                          vector i of a float pointer; CUDA needs it aligned
 *                          to the vector (the kernels guarantee that)
 *   MUL_RN(a, b), ADD_RN(a, b)
 *                          a product / sum rounded on its own, never fused
 *                          with a neighbour into an FMA
 *   EXP EXP2 LOG2 SQRT FMAX, SINCOS(x, s, c)   float math
 *   AS_UINT(f), AS_FLOAT(u), NEG_INF   bits and -infinity
 *
 * A schedule parameter REDUCE = 1 asks for subgroup reductions; where the
 * backend has none, compiling fails here with that reason. */

#if defined(KILN_OPENCL)

typedef long i64;
#define KERNEL __kernel void
#define KERNEL_WG(n) __kernel __attribute__((reqd_work_group_size(n, 1, 1))) void
#define KERNEL_WG2(x, y) __kernel __attribute__((reqd_work_group_size(x, y, 1))) void
#define INLINE inline
#define GLOBAL __global
#define LOCAL __local
#define SHARED __local
#define RESTRICT
#define LOCAL_ID(d) ((uint)get_local_id(d))
#define GROUP_ID(d) ((uint)get_group_id(d))
#define NUM_GROUPS(d) ((uint)get_num_groups(d))
#define LOCAL_SIZE(d) ((uint)get_local_size(d))
#define GLOBAL_ID(d) ((uint)get_global_id(d))
#define GRID2D_ID(wg) ((i64)((i64)(get_group_id(1) * get_num_groups(0) + get_group_id(0)) * (wg) + get_local_id(0)))
#define BARRIER() barrier(CLK_LOCAL_MEM_FENCE)
#define UNROLL_HINT
#define HAVE_SUBGROUPS 0

#define LOAD_HALF(p, i) vload_half((i), (GLOBAL const half *)(p))
#define LOAD_HALF2(i, p) vload_half2((i), (GLOBAL const half *)(p))
#define LOAD_HALF4(i, p) vload_half4((i), (GLOBAL const half *)(p))
#define HALF_OF_WORD(p, i, word, j) vload_half(2 * (size_t)(i) + (j), (GLOBAL const half *)(p))
#define STORE_HALF_RTE(v, i, p) vstore_half_rte((v), (i), (GLOBAL half *)(p))
#define STORE_HALF2_RTE(v, i, p) vstore_half2_rte((v), (i), (GLOBAL half *)(p))
#define STORE_HALF4_RTE(v, i, p) vstore_half4_rte((v), (i), (GLOBAL half *)(p))

#define FLOAT2(a, b) ((float2)((a), (b)))
#define FLOAT4(a, b, c, d) ((float4)((a), (b), (c), (d)))
#define LOAD2(i, p) vload2((i), (p))
#define LOAD4(i, p) vload4((i), (p))
#define LOADU2(i, p) vload2((i), (p))
#define LOADU4(i, p) vload4((i), (p))
#define STORE2(v, i, p) vstore2((v), (i), (p))
#define STORE4(v, i, p) vstore4((v), (i), (p))
#define DOT(a, b) dot((a), (b))

/* functions, not operators: clang fuses a * b + c into an FMA only within
 * one expression, and an inlined call is not one */
INLINE float MUL_RN(float a, float b) { return a * b; }
INLINE float ADD_RN(float a, float b) { return a + b; }
#define EXP(x) exp(x)
#define EXP2(x) exp2(x)
#define LOG2(x) log2(x)
#define SQRT(x) sqrt(x)
#define FMAX(a, b) fmax((a), (b))
#define SINCOS(x, s, c) ((c) = cos(x), (s) = sin(x))
#define AS_UINT(f) as_uint(f)
#define AS_FLOAT(u) as_float(u)
#define NEG_INF (-INFINITY)

#elif defined(KILN_CUDA)

typedef unsigned int uint;
typedef unsigned short ushort;
typedef long long i64;
#define KERNEL extern "C" __global__ void
#define KERNEL_WG(n) extern "C" __global__ void __launch_bounds__(n)
#define KERNEL_WG2(x, y) extern "C" __global__ void __launch_bounds__((x) * (y))
#define INLINE __device__ __forceinline__
#define GLOBAL
#define LOCAL
#define SHARED __shared__
#define RESTRICT __restrict__
#define LOCAL_ID(d) ((d) == 0 ? threadIdx.x : (d) == 1 ? threadIdx.y : threadIdx.z)
#define GROUP_ID(d) ((d) == 0 ? blockIdx.x : (d) == 1 ? blockIdx.y : blockIdx.z)
#define NUM_GROUPS(d) ((d) == 0 ? gridDim.x : (d) == 1 ? gridDim.y : gridDim.z)
#define LOCAL_SIZE(d) ((d) == 0 ? blockDim.x : (d) == 1 ? blockDim.y : blockDim.z)
#define GLOBAL_ID(d) (GROUP_ID(d) * LOCAL_SIZE(d) + LOCAL_ID(d))
#define GRID2D_ID(wg) (((i64)GROUP_ID(1) * NUM_GROUPS(0) + GROUP_ID(0)) * (wg) + LOCAL_ID(0))
#define BARRIER() __syncthreads()
#define UNROLL_HINT _Pragma("unroll")
#define HAVE_SUBGROUPS 1
#define SG_SIZE 32 /* config_valid keeps reduce=1 off devices whose warps are not 32 wide */
INLINE float SG_SUM(float v)
{
    for (int o = SG_SIZE / 2; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
INLINE float SG_MAX(float v)
{
    for (int o = SG_SIZE / 2; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

#define LOAD_HALF(p, i) kiln_half_to_float(((const ushort *)(p))[i])
INLINE float2 LOAD_HALF2(i64 i, const void *p)
{
    uint w = ((const uint *)p)[i];
    return make_float2(kiln_half_to_float((ushort)w), kiln_half_to_float((ushort)(w >> 16)));
}
INLINE float4 LOAD_HALF4(i64 i, const void *p)
{
    uint2 w = ((const uint2 *)p)[i];
    return make_float4(kiln_half_to_float((ushort)w.x), kiln_half_to_float((ushort)(w.x >> 16)),
                       kiln_half_to_float((ushort)w.y), kiln_half_to_float((ushort)(w.y >> 16)));
}
#define HALF_OF_WORD(p, i, word, j) kiln_half_to_float((ushort)((word) >> (16 * (j))))
#define STORE_HALF_RTE(v, i, p) (((ushort *)(p))[i] = kiln_float_to_half(v))
INLINE void STORE_HALF2_RTE(float2 v, i64 i, void *p)
{
    ((uint *)p)[i] = kiln_float_to_half(v.x) | (uint)kiln_float_to_half(v.y) << 16;
}
INLINE void STORE_HALF4_RTE(float4 v, i64 i, void *p)
{
    ((uint2 *)p)[i] = make_uint2(kiln_float_to_half(v.x) | (uint)kiln_float_to_half(v.y) << 16,
                                 kiln_float_to_half(v.z) | (uint)kiln_float_to_half(v.w) << 16);
}

#define FLOAT2(a, b) make_float2((a), (b))
#define FLOAT4(a, b, c, d) make_float4((a), (b), (c), (d))
#define LOAD2(i, p) (((const float2 *)(p))[i])
#define LOAD4(i, p) (((const float4 *)(p))[i])
#define LOADU2(i, p) (((const uint2 *)(p))[i])
#define LOADU4(i, p) (((const uint4 *)(p))[i])
#define STORE2(v, i, p) (((float2 *)(p))[i] = (v))
#define STORE4(v, i, p) (((float4 *)(p))[i] = (v))
INLINE float DOT(float a, float b) { return a * b; }
INLINE float DOT(float2 a, float2 b) { return a.x * b.x + a.y * b.y; }
INLINE float DOT(float4 a, float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }
INLINE float2 operator+(float2 a, float2 b) { return make_float2(a.x + b.x, a.y + b.y); }
INLINE float4 operator+(float4 a, float4 b) { return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w); }
INLINE float2 &operator+=(float2 &a, float2 b) { return a = a + b; }
INLINE float4 &operator+=(float4 &a, float4 b) { return a = a + b; }
INLINE float2 operator*(float2 a, float s) { return make_float2(a.x * s, a.y * s); }
INLINE float4 operator*(float4 a, float s) { return make_float4(a.x * s, a.y * s, a.z * s, a.w * s); }
INLINE float2 operator*(float2 a, float2 b) { return make_float2(a.x * b.x, a.y * b.y); }
INLINE float4 operator*(float4 a, float4 b) { return make_float4(a.x * b.x, a.y * b.y, a.z * b.z, a.w * b.w); }

#define MUL_RN(a, b) __fmul_rn((a), (b))
#define ADD_RN(a, b) __fadd_rn((a), (b))
#define EXP(x) expf(x)
#define EXP2(x) exp2f(x)
#define LOG2(x) log2f(x)
#define SQRT(x) sqrtf(x)
#define FMAX(a, b) fmaxf((a), (b))
#define SINCOS(x, s, c) sincosf((x), &(s), &(c))
#define AS_UINT(f) __float_as_uint(f)
#define AS_FLOAT(u) __uint_as_float(u)
#define NEG_INF (-__int_as_float(0x7f800000))

#else
#error "portable.h: define KILN_OPENCL or KILN_CUDA first (the backend's prelude does)"
#endif

#if defined(REDUCE) && REDUCE == 1 && !HAVE_SUBGROUPS
#error "reduce=1 needs subgroup operations, which this backend's kernel language lacks"
#endif
