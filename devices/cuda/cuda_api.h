/* devices/cuda/cuda_api.h - the CUDA driver API and NVRTC entry points Kiln
 * uses, declared here (no toolkit headers needed to build) and resolved at
 * run time with dlopen into tables owned by a device or a caller: no
 * link-time dependency, no global state.
 *
 * The driver comes from libcuda.so.1 (installed with the NVIDIA driver).
 * NVRTC is searched in this order: $KILN_NVRTC (a library file or a
 * directory holding one), libnvrtc.so.13 / .so.12 / .so in the loader path,
 * /usr/local/cuda/lib64, then the pip-wheel cache filled by
 * scripts/get-nvrtc.sh (${KILN_CACHE_DIR:-$HOME/.cache/kiln}/nvrtc). */
#ifndef KILN_DEVICES_CUDA_API_H
#define KILN_DEVICES_CUDA_API_H

#include <stddef.h>

/* ------------------------------------------------------------ driver API */

typedef int CUresult; /* cudaError_enum; 0 = CUDA_SUCCESS */
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;

enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_NO_BINARY_FOR_GPU = 209,
    CUDA_ERROR_INVALID_PTX = 218,
    CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222,
    CUDA_ERROR_ILLEGAL_ADDRESS = 700,
    CUDA_ERROR_LAUNCH_FAILED = 719,
};

/* CUdevice_attribute values Kiln reads. */
enum {
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y = 6,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z = 7,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8,
    CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
};

/* CUjit_option values for cuModuleLoadDataEx. */
enum { CU_JIT_ERROR_LOG_BUFFER = 5, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6 };

/* A CU_STREAM_DEFAULT stream is ordered with the legacy default stream, so the
 * blocking cuMemcpy*_v2 calls see (and are seen by) queued launches. */
enum { CU_STREAM_DEFAULT = 0, CU_EVENT_DEFAULT = 0 };

typedef struct cuda_drv {
    void *lib;
    CUresult (*Init)(unsigned flags);
    CUresult (*DriverGetVersion)(int *version);
    CUresult (*DeviceGetCount)(int *count);
    CUresult (*DeviceGet)(CUdevice *dev, int ordinal);
    CUresult (*DeviceGetName)(char *name, int len, CUdevice dev);
    CUresult (*DeviceGetAttribute)(int *value, int attrib, CUdevice dev);
    CUresult (*DeviceTotalMem)(size_t *bytes, CUdevice dev);                      /* _v2 */
    CUresult (*CtxCreate)(CUcontext *ctx, unsigned flags, CUdevice dev);          /* _v2; NULL if not exported */
    CUresult (*CtxDestroy)(CUcontext ctx);                                        /* _v2 */
    CUresult (*DevicePrimaryCtxRetain)(CUcontext *ctx, CUdevice dev);             /* when CtxCreate is absent */
    CUresult (*DevicePrimaryCtxRelease)(CUdevice dev);                            /* _v2 */
    CUresult (*CtxSetCurrent)(CUcontext ctx);
    CUresult (*CtxSynchronize)(void);
    CUresult (*StreamCreate)(CUstream *s, unsigned flags);
    CUresult (*StreamDestroy)(CUstream s);                                        /* _v2 */
    CUresult (*StreamSynchronize)(CUstream s);
    CUresult (*MemAlloc)(CUdeviceptr *p, size_t bytes);                           /* _v2 */
    CUresult (*MemFree)(CUdeviceptr p);                                           /* _v2 */
    CUresult (*MemcpyHtoD)(CUdeviceptr dst, const void *src, size_t n);           /* _v2 */
    CUresult (*MemcpyDtoH)(void *dst, CUdeviceptr src, size_t n);                 /* _v2 */
    CUresult (*MemcpyDtoD)(CUdeviceptr dst, CUdeviceptr src, size_t n);           /* _v2 */
    CUresult (*MemsetD8)(CUdeviceptr dst, unsigned char v, size_t n);             /* _v2 */
    CUresult (*MemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s); /* _v2 */
    CUresult (*ModuleLoadDataEx)(CUmodule *m, const void *image, unsigned n_opts, int *opts, void **vals);
    CUresult (*ModuleUnload)(CUmodule m);
    CUresult (*ModuleGetFunction)(CUfunction *f, CUmodule m, const char *name);
    CUresult (*LaunchKernel)(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                             unsigned bz, unsigned shared_bytes, CUstream s, void **params, void **extra);
    CUresult (*EventCreate)(CUevent *ev, unsigned flags);
    CUresult (*EventDestroy)(CUevent ev);                                         /* _v2 */
    CUresult (*EventRecord)(CUevent ev, CUstream s);
    CUresult (*EventSynchronize)(CUevent ev);
    CUresult (*EventElapsedTime)(float *ms, CUevent start, CUevent end);          /* _v2 where exported */
    CUresult (*GetErrorName)(CUresult r, const char **s);
    CUresult (*GetErrorString)(CUresult r, const char **s);
} cuda_drv;

/* dlopens libcuda.so.1 and resolves every entry; on failure writes why
 * (naming the library or the missing function) and returns -1. */
int cuda_drv_load(cuda_drv *drv, char *why, size_t why_len);
void cuda_drv_unload(cuda_drv *drv);
/* "CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered)". */
void cuda_drv_error(const cuda_drv *drv, CUresult r, char *buf, size_t n);

/* ------------------------------------------------------------------ NVRTC */

typedef int nvrtcResult; /* 0 = NVRTC_SUCCESS */
typedef struct _nvrtcProgram *nvrtcProgram;
enum { NVRTC_SUCCESS = 0, NVRTC_ERROR_COMPILATION = 6 };

#define CUDA_RTC_MAX_ARCHS 64

typedef struct cuda_rtc {
    void *lib;
    char path[512];    /* what was loaded */
    int major, minor;  /* nvrtcVersion */
    int n_archs;       /* SM versions this NVRTC emits CUBIN for (75, 80, ...); 0 if unknown */
    int archs[CUDA_RTC_MAX_ARCHS];
    nvrtcResult (*Version)(int *major, int *minor);
    const char *(*GetErrorString)(nvrtcResult r);
    nvrtcResult (*CreateProgram)(nvrtcProgram *p, const char *src, const char *name, int n_headers,
                                 const char *const *headers, const char *const *include_names);
    nvrtcResult (*DestroyProgram)(nvrtcProgram *p);
    nvrtcResult (*CompileProgram)(nvrtcProgram p, int n_opts, const char *const *opts);
    nvrtcResult (*GetProgramLogSize)(nvrtcProgram p, size_t *n);
    nvrtcResult (*GetProgramLog)(nvrtcProgram p, char *log);
    nvrtcResult (*GetPTXSize)(nvrtcProgram p, size_t *n);
    nvrtcResult (*GetPTX)(nvrtcProgram p, char *ptx);
    nvrtcResult (*GetCUBINSize)(nvrtcProgram p, size_t *n); /* NULL before NVRTC 11.1 */
    nvrtcResult (*GetCUBIN)(nvrtcProgram p, char *cubin);
    nvrtcResult (*GetNumSupportedArchs)(int *n);            /* NULL before NVRTC 11.2 */
    nvrtcResult (*GetSupportedArchs)(int *archs);
} cuda_rtc;

/* Finds and dlopens NVRTC (search order above) and reads its version and
 * supported architectures; on failure writes every place tried into why. */
int cuda_rtc_load(cuda_rtc *rtc, char *why, size_t why_len);
void cuda_rtc_unload(cuda_rtc *rtc);

#endif
