/* devices/cuda/cuda_api.c - see cuda_api.h. */
#include "devices/cuda/cuda_api.h"

#include <dlfcn.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ driver API */

int cuda_drv_load(cuda_drv *drv, char *why, size_t n)
{
    memset(drv, 0, sizeof *drv);
    /* RTLD_NODELETE: drivers keep state (ICD lists, atexit hooks) that must
     * outlive our handle; unmapping them on close turns it into leaks and
     * dangling callbacks. The refcount still drops on close. */
    drv->lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!drv->lib) {
        const char *err = dlerror();
        /* "libcuda.so.1: cannot open shared object file: No such file or directory" */
        char first[200];
        snprintf(first, sizeof first, "%s", err ? err : "libcuda.so.1: cannot be opened");
        char *colon = strstr(first, ": No such file");
        if (colon)
            *colon = 0;
        snprintf(why, n, "%s (no NVIDIA driver)", first);
        return -1;
    }
    /* first name wins; later ones are fallbacks for older/newer drivers */
#define SYM2(field, a, b)                                                                                           \
    do {                                                                                                            \
        *(void **)&drv->field = dlsym(drv->lib, a);                                                                 \
        if (!drv->field && (b)[0])                                                                                  \
            *(void **)&drv->field = dlsym(drv->lib, b);                                                             \
        if (!drv->field) {                                                                                          \
            snprintf(why, n, "libcuda.so.1 lacks %s (driver too old?)", a);                                         \
            cuda_drv_unload(drv);                                                                                   \
            return -1;                                                                                              \
        }                                                                                                           \
    } while (0)
#define SYM(field, a) SYM2(field, a, "")
    SYM(Init, "cuInit");
    SYM(DriverGetVersion, "cuDriverGetVersion");
    SYM(DeviceGetCount, "cuDeviceGetCount");
    SYM(DeviceGet, "cuDeviceGet");
    SYM(DeviceGetName, "cuDeviceGetName");
    SYM(DeviceGetAttribute, "cuDeviceGetAttribute");
    SYM(DeviceTotalMem, "cuDeviceTotalMem_v2");
    SYM(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    SYM2(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease");
    SYM(CtxSetCurrent, "cuCtxSetCurrent");
    SYM(CtxSynchronize, "cuCtxSynchronize");
    SYM2(CtxDestroy, "cuCtxDestroy_v2", "cuCtxDestroy");
    SYM(StreamCreate, "cuStreamCreate");
    SYM2(StreamDestroy, "cuStreamDestroy_v2", "cuStreamDestroy");
    SYM(StreamSynchronize, "cuStreamSynchronize");
    SYM(MemAlloc, "cuMemAlloc_v2");
    SYM(MemFree, "cuMemFree_v2");
    SYM(MemcpyHtoD, "cuMemcpyHtoD_v2");
    SYM(MemcpyDtoH, "cuMemcpyDtoH_v2");
    SYM(MemcpyDtoD, "cuMemcpyDtoD_v2");
    SYM(MemsetD8, "cuMemsetD8_v2");
    SYM(MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
    SYM(ModuleLoadDataEx, "cuModuleLoadDataEx");
    SYM(ModuleUnload, "cuModuleUnload");
    SYM(ModuleGetFunction, "cuModuleGetFunction");
    SYM(LaunchKernel, "cuLaunchKernel");
    SYM(EventCreate, "cuEventCreate");
    SYM2(EventDestroy, "cuEventDestroy_v2", "cuEventDestroy");
    SYM(EventRecord, "cuEventRecord");
    SYM(EventSynchronize, "cuEventSynchronize");
    SYM2(EventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime");
    SYM(GetErrorName, "cuGetErrorName");
    SYM(GetErrorString, "cuGetErrorString");
#undef SYM
#undef SYM2
    /* CUDA 13 headers map cuCtxCreate to _v4; drivers keep exporting _v2.
     * Without it the device's primary context is used instead. */
    *(void **)&drv->CtxCreate = dlsym(drv->lib, "cuCtxCreate_v2");
    return 0;
}

void cuda_drv_unload(cuda_drv *drv)
{
    if (drv->lib)
        dlclose(drv->lib);
    memset(drv, 0, sizeof *drv);
}

void cuda_drv_error(const cuda_drv *drv, CUresult r, char *buf, size_t n)
{
    const char *name = NULL, *str = NULL;
    if (drv->GetErrorName)
        drv->GetErrorName(r, &name);
    if (drv->GetErrorString)
        drv->GetErrorString(r, &str);
    if (name)
        snprintf(buf, n, "%s (%s)", name, str ? str : "no description");
    else
        snprintf(buf, n, "CUDA error %d", r);
}

/* ------------------------------------------------------------------ NVRTC */

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* dlopens one candidate. A path with a directory first preloads the
 * libnvrtc-builtins next to it, which libnvrtc dlopens by soname at compile
 * time (the pip wheel's copy is not in the loader path). RTLD_NODELETE keeps
 * the ~100 MB library mapped across the load/unload of compile_only calls. */
static void *open_one(const char *path, char *err, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (slash) {
        char pat[600];
        snprintf(pat, sizeof pat, "%.*s/libnvrtc-builtins.so*", (int)(slash - path), path);
        glob_t g;
        if (glob(pat, 0, NULL, &g) == 0) {
            for (size_t i = g.gl_pathc; i-- > 0;)
                if (dlopen(g.gl_pathv[i], RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE))
                    break;
            globfree(&g);
        }
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h && err[0] == 0) {
        const char *d = dlerror();
        snprintf(err, n, "%s", d ? d : path);
    }
    return h;
}

/* Candidates inside a directory: libnvrtc.so.13, .so.12, .so, then any other
 * libnvrtc.so.* (newest name last in glob order, tried first). */
static void *open_in_dir(const char *dir, char *path, size_t pn, char *err, size_t n)
{
    static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, pn, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        void *h = open_one(path, err, n);
        if (h)
            return h;
    }
    char pat[600];
    snprintf(pat, sizeof pat, "%s/libnvrtc.so.*", dir);
    glob_t g;
    void *h = NULL;
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = g.gl_pathc; i-- > 0 && !h;) {
            snprintf(path, pn, "%s", g.gl_pathv[i]);
            h = open_one(path, err, n);
        }
        globfree(&g);
    }
    return h;
}

static void *find_nvrtc(char *path, size_t pn, char *why, size_t n)
{
    char err[300] = "";
    const char *env = getenv("KILN_NVRTC");
    void *h = NULL;
    if (env && env[0]) {
        if (is_dir(env)) {
            h = open_in_dir(env, path, pn, err, sizeof err);
        } else {
            snprintf(path, pn, "%s", env);
            h = open_one(path, err, sizeof err);
        }
        if (h)
            return h;
        if (!err[0])
            snprintf(err, sizeof err, "no libnvrtc.so* in %s", env);
    }
    static const char *const sonames[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
    for (size_t i = 0; i < sizeof sonames / sizeof sonames[0]; i++) {
        snprintf(path, pn, "%s", sonames[i]);
        h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (h)
            return h;
    }
    h = open_in_dir("/usr/local/cuda/lib64", path, pn, err, sizeof err);
    if (h)
        return h;
    /* scripts/get-nvrtc.sh unzips the nvidia-cuda-nvrtc wheel here */
    char cache[400];
    const char *kc = getenv("KILN_CACHE_DIR");
    const char *home = getenv("HOME");
    if (kc && kc[0])
        snprintf(cache, sizeof cache, "%s/nvrtc", kc);
    else
        snprintf(cache, sizeof cache, "%s/.cache/kiln/nvrtc", home ? home : "");
    static const char *const subdirs[] = {"nvidia/cuda_nvrtc/lib", "nvidia/cu13/lib", "lib", ""};
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s%s%s", cache, subdirs[i][0] ? "/" : "", subdirs[i]);
        if (is_dir(dir) && (h = open_in_dir(dir, path, pn, err, sizeof err)))
            return h;
    }
    snprintf(why, n,
             "NVRTC not found (set KILN_NVRTC or run scripts/get-nvrtc.sh); tried %s%s%slibnvrtc.so.13, "
             "libnvrtc.so.12, libnvrtc.so, /usr/local/cuda/lib64, %s%s%s",
             env && env[0] ? "$KILN_NVRTC=" : "", env && env[0] ? env : "", env && env[0] ? ", " : "", cache,
             err[0] ? ": " : "", err);
    path[0] = 0;
    return NULL;
}

int cuda_rtc_load(cuda_rtc *rtc, char *why, size_t n)
{
    memset(rtc, 0, sizeof *rtc);
    rtc->lib = find_nvrtc(rtc->path, sizeof rtc->path, why, n);
    if (!rtc->lib)
        return -1;
#define SYM(field, name, required)                                                                                  \
    do {                                                                                                            \
        *(void **)&rtc->field = dlsym(rtc->lib, name);                                                              \
        if (!rtc->field && (required)) {                                                                            \
            snprintf(why, n, "%s lacks %s", rtc->path, name);                                                       \
            cuda_rtc_unload(rtc);                                                                                   \
            return -1;                                                                                              \
        }                                                                                                           \
    } while (0)
    SYM(Version, "nvrtcVersion", 1);
    SYM(GetErrorString, "nvrtcGetErrorString", 1);
    SYM(CreateProgram, "nvrtcCreateProgram", 1);
    SYM(DestroyProgram, "nvrtcDestroyProgram", 1);
    SYM(CompileProgram, "nvrtcCompileProgram", 1);
    SYM(GetProgramLogSize, "nvrtcGetProgramLogSize", 1);
    SYM(GetProgramLog, "nvrtcGetProgramLog", 1);
    SYM(GetPTXSize, "nvrtcGetPTXSize", 1);
    SYM(GetPTX, "nvrtcGetPTX", 1);
    SYM(GetCUBINSize, "nvrtcGetCUBINSize", 0);
    SYM(GetCUBIN, "nvrtcGetCUBIN", 0);
    SYM(GetNumSupportedArchs, "nvrtcGetNumSupportedArchs", 0);
    SYM(GetSupportedArchs, "nvrtcGetSupportedArchs", 0);
#undef SYM
    if (rtc->Version(&rtc->major, &rtc->minor) != NVRTC_SUCCESS) {
        snprintf(why, n, "%s: nvrtcVersion failed", rtc->path);
        cuda_rtc_unload(rtc);
        return -1;
    }
    int na = 0;
    if (rtc->GetCUBIN && rtc->GetNumSupportedArchs && rtc->GetSupportedArchs &&
        rtc->GetNumSupportedArchs(&na) == NVRTC_SUCCESS && na > 0 && na <= CUDA_RTC_MAX_ARCHS &&
        rtc->GetSupportedArchs(rtc->archs) == NVRTC_SUCCESS)
        rtc->n_archs = na;
    return 0;
}

void cuda_rtc_unload(cuda_rtc *rtc)
{
    if (rtc->lib)
        dlclose(rtc->lib);
    memset(rtc, 0, sizeof *rtc);
}
