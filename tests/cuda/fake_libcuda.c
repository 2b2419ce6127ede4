/* tests/cuda/fake_libcuda.c - a stand-in libcuda.so.1 for machines without a
 * GPU: it exercises the backend's plumbing (dlopen table, context/stream/event
 * calls, argument marshalling, error paths), not CUDA semantics.
 *
 * "Device memory" is host memory. Modules must be CUBIN (ELF) or PTX images;
 * a function exists if the image has its ".text.<name>" section. Launching
 * "axpy" runs y[i] = a * x[i] + y[i] on the host for (ptr x, ptr y, float a,
 * uint n); launching any function whose name contains "fault" makes the
 * context sticky-fail with CUDA_ERROR_ILLEGAL_ADDRESS, reported by the next
 * synchronizing call, as a real driver does. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

typedef struct fake_fn {
    char name[128];
} fake_fn;

static int sticky; /* a test double may keep global state */

#define EXPORT __attribute__((visibility("default")))

EXPORT CUresult cuInit(unsigned f) { (void)f; return 0; }
/* NVRTC itself dlopens libcuda.so.1 and asks for private tables: none here */
EXPORT CUresult cuGetExportTable(const void **table, const void *uuid)
{
    (void)uuid;
    *table = NULL;
    return 500; /* CUDA_ERROR_NOT_FOUND */
}
EXPORT CUresult cuDriverGetVersion(int *v) { *v = 12040; return 0; }
EXPORT CUresult cuDeviceGetCount(int *n) { *n = 1; return 0; }
EXPORT CUresult cuDeviceGet(int *d, int i) { *d = i; return i == 0 ? 0 : 101; }
EXPORT CUresult cuDeviceGetName(char *s, int n, int d) { (void)d; strncpy(s, "Fake GPU (tests/cuda)", (size_t)n); return 0; }
EXPORT CUresult cuDeviceGetAttribute(int *v, int a, int d)
{
    (void)d;
    switch (a) {
    case 1: *v = 1024; break;          /* max threads per block */
    case 5: *v = 2147483647; break;    /* grid x */
    case 6: case 7: *v = 65535; break; /* grid y, z */
    case 8: *v = 48 * 1024; break;     /* shared per block */
    case 10: *v = 32; break;           /* warp */
    case 16: *v = 108; break;          /* SMs */
    case 38: *v = 40 << 20; break;     /* L2 */
    case 75: *v = 8; break;            /* cc major */
    case 76: *v = 0; break;            /* cc minor */
    default: *v = 0;
    }
    return 0;
}
EXPORT CUresult cuDeviceTotalMem_v2(size_t *b, int d) { (void)d; *b = (size_t)40 << 30; return 0; }
EXPORT CUresult cuCtxCreate_v2(void **c, unsigned f, int d) { (void)f; (void)d; *c = malloc(1); return 0; }
EXPORT CUresult cuCtxDestroy_v2(void *c) { free(c); return 0; }
EXPORT CUresult cuDevicePrimaryCtxRetain(void **c, int d) { (void)d; *c = (void *)1; return 0; }
EXPORT CUresult cuDevicePrimaryCtxRelease_v2(int d) { (void)d; return 0; }
EXPORT CUresult cuCtxSetCurrent(void *c) { (void)c; return 0; }
EXPORT CUresult cuCtxSynchronize(void) { return sticky; }
EXPORT CUresult cuStreamCreate(void **s, unsigned f) { (void)f; *s = malloc(1); return 0; }
EXPORT CUresult cuStreamDestroy_v2(void *s) { free(s); return 0; }
EXPORT CUresult cuStreamSynchronize(void *s) { (void)s; return sticky; }
EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n)
{
    if (n > ((size_t)1 << 34))
        return 2; /* CUDA_ERROR_OUT_OF_MEMORY */
    void *m = malloc(n);
    *p = (CUdeviceptr)(uintptr_t)m;
    return m ? 0 : 2;
}
EXPORT CUresult cuMemFree_v2(CUdeviceptr p) { free((void *)(uintptr_t)p); return 0; }
EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t n)
{
    if (sticky)
        return sticky;
    memcpy((void *)(uintptr_t)d, s, n);
    return 0;
}
EXPORT CUresult cuMemcpyDtoH_v2(void *d, CUdeviceptr s, size_t n)
{
    if (sticky)
        return sticky;
    memcpy(d, (const void *)(uintptr_t)s, n);
    return 0;
}
EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n)
{
    memmove((void *)(uintptr_t)d, (const void *)(uintptr_t)s, n);
    return sticky;
}
EXPORT CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n)
{
    memset((void *)(uintptr_t)d, v, n);
    return sticky;
}
EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, void *st)
{
    (void)st;
    memmove((void *)(uintptr_t)d, (const void *)(uintptr_t)s, n);
    return sticky;
}

typedef struct fake_mod {
    char *image;
    size_t n;
} fake_mod;

EXPORT CUresult cuModuleLoadDataEx(void **m, const void *image, unsigned n_opts, int *opts, void **vals)
{
    const char *im = image;
    size_t n;
    if (memcmp(im, "\x7f" "ELF", 4) == 0) {
        /* the ELF header's section header table ends the file */
        uint64_t shoff;
        uint16_t shentsize, shnum;
        memcpy(&shoff, im + 0x28, 8);
        memcpy(&shentsize, im + 0x3a, 2);
        memcpy(&shnum, im + 0x3c, 2);
        n = (size_t)shoff + (size_t)shentsize * shnum;
    } else if (strstr(im, ".version")) {
        n = strlen(im) + 1;
    } else {
        for (unsigned i = 0; i + 1 < n_opts; i++)
            if (opts[i] == 5 && opts[i + 1] == 6)
                strncpy(vals[i], "fake JIT: not a CUBIN or PTX image", (size_t)vals[i + 1]);
        return 218; /* CUDA_ERROR_INVALID_PTX */
    }
    fake_mod *fm = malloc(sizeof *fm);
    fm->image = malloc(n);
    memcpy(fm->image, im, n);
    fm->n = n;
    *m = fm;
    return 0;
}
EXPORT CUresult cuModuleUnload(void *m)
{
    fake_mod *fm = m;
    free(fm->image);
    free(fm);
    return 0;
}
EXPORT CUresult cuModuleGetFunction(void **f, void *m, const char *name)
{
    fake_mod *fm = m;
    char sym[160];
    size_t sn = (size_t)snprintf(sym, sizeof sym, ".text.%s", name) + 1;
    if (!memmem(fm->image, fm->n, sym, sn) && !strstr(fm->image, name))
        return 500; /* CUDA_ERROR_NOT_FOUND */
    fake_fn *fn = calloc(1, sizeof *fn);
    strncpy(fn->name, name, sizeof fn->name - 1);
    *f = fn; /* leaked with the module: a test double */
    return 0;
}
EXPORT CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                               unsigned shm, void *st, void **params, void **extra)
{
    (void)shm; (void)st; (void)extra;
    if (sticky)
        return sticky;
    if ((unsigned long long)bx * by * bz > 1024)
        return 1; /* CUDA_ERROR_INVALID_VALUE */
    fake_fn *fn = f;
    if (strstr(fn->name, "fault")) {
        sticky = 700; /* raised asynchronously: the launch itself succeeds */
        return 0;
    }
    if (!strcmp(fn->name, "axpy")) {
        const float *x = (const float *)(uintptr_t)*(CUdeviceptr *)params[0];
        float *y = (float *)(uintptr_t)*(CUdeviceptr *)params[1];
        float a = *(float *)params[2];
        unsigned n = *(unsigned *)params[3];
        unsigned long long threads = (unsigned long long)gx * gy * gz * bx * by * bz;
        for (unsigned long long i = 0; i < threads && i < n; i++)
            y[i] = a * x[i] + y[i];
    }
    return 0;
}
EXPORT CUresult cuEventCreate(void **e, unsigned f) { (void)f; *e = malloc(1); return 0; }
EXPORT CUresult cuEventDestroy_v2(void *e) { free(e); return 0; }
EXPORT CUresult cuEventRecord(void *e, void *s) { (void)e; (void)s; return sticky; }
EXPORT CUresult cuEventSynchronize(void *e) { (void)e; return sticky; }
EXPORT CUresult cuEventElapsedTime_v2(float *ms, void *a, void *b) { (void)a; (void)b; *ms = 0.0125f; return sticky; }
EXPORT CUresult cuGetErrorName(CUresult r, const char **s)
{
    *s = r == 700 ? "CUDA_ERROR_ILLEGAL_ADDRESS" : r == 2 ? "CUDA_ERROR_OUT_OF_MEMORY" : r == 218 ? "CUDA_ERROR_INVALID_PTX"
         : r == 500 ? "CUDA_ERROR_NOT_FOUND" : r == 1 ? "CUDA_ERROR_INVALID_VALUE" : "CUDA_ERROR_UNKNOWN";
    return 0;
}
EXPORT CUresult cuGetErrorString(CUresult r, const char **s)
{
    *s = r == 700 ? "an illegal memory access was encountered" : "fake driver error";
    return 0;
}
