/* devices/cuda/cuda_device.c - the CUDA backend: driver API + NVRTC, both
 * dlopened (devices/cuda/cuda_api.h), so the binary builds without a toolkit
 * and runs without a GPU (the backend then reports why it is unavailable).
 *
 * Programs are compiled by NVRTC from the embedded source (which already
 * carries kernels/common/prelude.cu) with the program's defines, LOCAL_X/Y/Z
 * and -default-device, to a CUBIN for the device's sm_XY when this NVRTC
 * supports it, else to PTX for the newest architecture it knows (the driver
 * JITs it). compile_only does the same without a driver or a device.
 *
 * One context and one stream per device. The stream is a blocking
 * (CU_STREAM_DEFAULT) stream, so the blocking cuMemcpy*_v2 / cuMemsetD8_v2
 * calls on the legacy default stream are ordered after queued launches.
 * Timed launches and copies are bracketed by two events on the stream.
 * Faults inside a kernel surface at the next synchronizing call; the error
 * then names the last kernel launched. The context is current on whichever
 * thread calls in (every entry point sets it). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cuda/cuda_api.h"
#include "devices/device.h"

struct kiln_buffer {
    CUdeviceptr ptr;
    size_t size;
};

struct kiln_program {
    CUmodule mod;
    CUfunction fn;
    char name[128];
    char sig[KILN_MAX_ARGS + 1];
    unsigned local[3];
};

typedef struct cuda_impl {
    cuda_drv drv;
    cuda_rtc rtc;
    CUdevice dev;
    CUcontext ctx;
    int primary; /* ctx is the retained primary context */
    CUstream stream;
    CUevent ev0, ev1;
    unsigned max_grid[3];
    char last[128]; /* last kernel launched, for asynchronous faults */
} cuda_impl;

/* ------------------------------------------------------------ compilation */

typedef struct cuda_image {
    char *data;
    size_t size;
    int cubin;         /* 1: CUBIN for target, 0: PTX */
    char target[32];   /* "sm_90" or "compute_90" */
} cuda_image;

/* Chooses the NVRTC target for arch "sm_XY[a|f]". */
static int pick_target(const cuda_rtc *rtc, const char *arch, cuda_image *img, kiln_err *e)
{
    int num = 0;
    char suffix[8] = "";
    if (!arch || strncmp(arch, "sm_", 3) != 0 || sscanf(arch + 3, "%d%7[a-z]", &num, suffix) < 1 || num < 10)
        return kiln_fail(e, KILN_E_INVALID, "cuda: architecture '%s' is not of the form sm_XY (e.g. sm_90)",
                         arch ? arch : "(null)");
    if (!rtc->n_archs) { /* NVRTC too old to say: PTX, the driver JITs it */
        img->cubin = 0;
        snprintf(img->target, sizeof img->target, "compute_%d", num);
        return 0;
    }
    int lo = rtc->archs[0], hi = rtc->archs[0];
    for (int i = 0; i < rtc->n_archs; i++) {
        if (rtc->archs[i] == num) {
            img->cubin = 1;
            snprintf(img->target, sizeof img->target, "sm_%d%s", num, suffix);
            return 0;
        }
        lo = rtc->archs[i] < lo ? rtc->archs[i] : lo;
        hi = rtc->archs[i] > hi ? rtc->archs[i] : hi;
    }
    if (num > hi) { /* a GPU newer than this NVRTC: forward-compatible PTX */
        img->cubin = 0;
        snprintf(img->target, sizeof img->target, "compute_%d", hi);
        return 0;
    }
    return kiln_fail(e, KILN_E_UNAVAILABLE, "cuda: NVRTC %d.%d (%s) cannot target %s (it supports sm_%d..sm_%d)",
                     rtc->major, rtc->minor, rtc->path, arch, lo, hi);
}

static void defines_str(const kiln_program_desc *desc, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < desc->n_defines && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s=%lld", i ? " " : "", desc->defines[i].name,
                                 desc->defines[i].value);
    if (!desc->n_defines)
        snprintf(buf, n, "no defines");
}

/* Compiles desc for arch with NVRTC into img (img->data malloc'd). */
static int rtc_compile(const cuda_rtc *rtc, const kiln_program_desc *desc, const char *arch, cuda_image *img,
                       kiln_err *e)
{
    memset(img, 0, sizeof *img);
    const char *kname = desc->kernel ? desc->kernel : "?";
    if (!desc->source || !desc->entry || !desc->signature || strlen(desc->signature) > KILN_MAX_ARGS)
        return kiln_fail(e, KILN_E_INVALID, "cuda: kernel '%s': missing source, entry or signature", kname);
    if (desc->n_defines < 0 || desc->n_defines > KILN_MAX_DEFINES)
        return kiln_fail(e, KILN_E_INVALID, "cuda: kernel '%s': %d defines", kname, desc->n_defines);
    int rc = pick_target(rtc, arch, img, e);
    if (rc)
        return rc;

    char opt[KILN_MAX_DEFINES + 8][128];
    const char *opts[KILN_MAX_DEFINES + 8];
    int n_opt = 0;
    snprintf(opt[n_opt++], sizeof opt[0], "--gpu-architecture=%s", img->target);
    snprintf(opt[n_opt++], sizeof opt[0], "-default-device");
    for (int i = 0; i < desc->n_defines; i++)
        snprintf(opt[n_opt++], sizeof opt[0], "-D%s=%lld", desc->defines[i].name, desc->defines[i].value);
    static const char *const axes[3] = {"LOCAL_X", "LOCAL_Y", "LOCAL_Z"};
    for (int a = 0; a < 3; a++)
        if (kiln_define_get(desc->defines, desc->n_defines, axes[a], -1) < 0)
            snprintf(opt[n_opt++], sizeof opt[0], "-D%s=%u", axes[a], desc->local[a] ? desc->local[a] : 1);
    for (int i = 0; i < n_opt; i++)
        opts[i] = opt[i];

    char defs[512];
    defines_str(desc, defs, sizeof defs);
    nvrtcProgram prog = NULL;
    /* lines of the prelude are reported as prelude.cu(N); the build's #line
     * directives name the rest: the kernel's source "<stem>.cl" and the
     * headers inlined into it (portable.h, ...) */
    nvrtcResult r = rtc->CreateProgram(&prog, desc->source, "prelude.cu", 0, NULL, NULL);
    if (r != NVRTC_SUCCESS)
        return kiln_fail(e, KILN_E_COMPILE, "cuda: nvrtcCreateProgram(%s/%s): %s", kname, desc->entry,
                         rtc->GetErrorString(r));
    r = rtc->CompileProgram(prog, n_opt, opts);
    if (r != NVRTC_SUCCESS) {
        size_t log_n = 0;
        char *log = NULL;
        if (rtc->GetProgramLogSize(prog, &log_n) == NVRTC_SUCCESS && log_n > 1 && (log = malloc(log_n + 1))) {
            if (rtc->GetProgramLog(prog, log) != NVRTC_SUCCESS)
                log[0] = 0;
            log[log_n] = 0;
        }
        const char *hint = r == 7 /* NVRTC_ERROR_BUILTIN_OPERATION_FAILURE */
                               ? " (libnvrtc-builtins not found next to libnvrtc? see scripts/get-nvrtc.sh)"
                               : "";
        rc = kiln_fail(e, KILN_E_COMPILE, "cuda: NVRTC %d.%d compiling %s (entry %s) for %s with %s failed: %s%s: %s",
                       rtc->major, rtc->minor, kname, desc->entry, img->target, defs, rtc->GetErrorString(r), hint,
                       log && log[0] ? log : "(no log)");
        free(log);
        rtc->DestroyProgram(&prog);
        return rc;
    }
    size_t n = 0;
    r = img->cubin ? rtc->GetCUBINSize(prog, &n) : rtc->GetPTXSize(prog, &n);
    if (r == NVRTC_SUCCESS && n > 0) {
        img->data = malloc(n);
        if (!img->data) {
            rtc->DestroyProgram(&prog);
            return kiln_fail(e, KILN_E_NOMEM, "cuda: no memory for a %zu byte image of %s", n, kname);
        }
        r = img->cubin ? rtc->GetCUBIN(prog, img->data) : rtc->GetPTX(prog, img->data);
    }
    rtc->DestroyProgram(&prog);
    if (r != NVRTC_SUCCESS || n == 0) {
        free(img->data);
        img->data = NULL;
        return kiln_fail(e, KILN_E_COMPILE, "cuda: %s of %s for %s: %s", img->cubin ? "nvrtcGetCUBIN" : "nvrtcGetPTX",
                         kname, img->target, r != NVRTC_SUCCESS ? rtc->GetErrorString(r) : "empty image");
    }
    img->size = n;
    /* The entry must exist unmangled (extern "C" __global__): in a CUBIN its
     * code section is ".text.<entry>", in PTX it is ".entry <entry>(". */
    char sym[160];
    int found = 0;
    if (img->cubin) {
        int sn = snprintf(sym, sizeof sym, ".text.%s", desc->entry);
        found = memmem(img->data, n, sym, (size_t)sn + 1) != NULL;
    } else {
        int sn = snprintf(sym, sizeof sym, ".entry %s(", desc->entry);
        found = memmem(img->data, n, sym, (size_t)sn) != NULL;
    }
    if (!found) {
        free(img->data);
        img->data = NULL;
        return kiln_fail(e, KILN_E_COMPILE,
                         "cuda: %s compiled for %s but has no kernel '%s' (is it extern \"C\" __global__?) with %s",
                         kname, img->target, desc->entry, defs);
    }
    return 0;
}

static int compile_only(const kiln_program_desc *desc, const char *arch, size_t *out_bytes, kiln_err *e)
{
    cuda_rtc rtc;
    char why[512];
    if (out_bytes)
        *out_bytes = 0;
    if (cuda_rtc_load(&rtc, why, sizeof why))
        return kiln_fail(e, KILN_E_UNAVAILABLE, "cuda: %s", why);
    cuda_image img;
    int rc = rtc_compile(&rtc, desc, arch, &img, e);
    if (!rc && out_bytes)
        *out_bytes = img.size;
    free(img.data);
    cuda_rtc_unload(&rtc);
    return rc;
}

/* ------------------------------------------------------------ the device */

#define IMPL(d) ((cuda_impl *)(d)->impl)

static int fail_cu(kiln_err *e, kiln_device *d, CUresult r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "cuda:0 (NVIDIA H100): <what>: CUDA_ERROR_X (...)[ after launching k]" */
static int fail_cu(kiln_err *e, kiln_device *d, CUresult r, const char *fmt, ...)
{
    cuda_impl *c = IMPL(d);
    char what[400], err[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    cuda_drv_error(&c->drv, r, err, sizeof err);
    /* 700..799: faults raised by a running kernel, reported by a later call */
    int fault = r >= 700 && r < 800 && c->last[0];
    return kiln_fail(e, r == CUDA_ERROR_OUT_OF_MEMORY ? KILN_E_NOMEM : KILN_E_DEVICE, "cuda:%d (%s): %s: %s%s%s%s",
                     d->index, d->fp.name, what, err, fault ? " (last kernel launched: " : "", fault ? c->last : "",
                     fault ? "; the CUDA context is unusable from here on)" : "");
}

/* Makes the device's context current on the calling thread. */
static int cur(kiln_device *d, kiln_err *e)
{
    cuda_impl *c = IMPL(d);
    CUresult r = c->drv.CtxSetCurrent(c->ctx);
    return r == CUDA_SUCCESS ? 0 : fail_cu(e, d, r, "cuCtxSetCurrent");
}

static void cu_destroy(kiln_device *d)
{
    cuda_impl *c = IMPL(d);
    if (c) {
        if (c->ctx) {
            c->drv.CtxSetCurrent(c->ctx);
            if (c->ev0)
                c->drv.EventDestroy(c->ev0);
            if (c->ev1)
                c->drv.EventDestroy(c->ev1);
            if (c->stream)
                c->drv.StreamDestroy(c->stream);
            c->drv.CtxSetCurrent(NULL);
            if (c->primary)
                c->drv.DevicePrimaryCtxRelease(c->dev);
            else
                c->drv.CtxDestroy(c->ctx);
        }
        cuda_rtc_unload(&c->rtc);
        cuda_drv_unload(&c->drv);
        free(c);
    }
    free(d);
}

static kiln_buffer *cu_alloc(kiln_device *d, size_t bytes, kiln_err *e)
{
    cuda_impl *c = IMPL(d);
    if (cur(d, e))
        return NULL;
    kiln_buffer *b = calloc(1, sizeof *b);
    if (!b) {
        kiln_fail(e, KILN_E_NOMEM, "cuda:%d: no host memory", d->index);
        return NULL;
    }
    CUresult r = c->drv.MemAlloc(&b->ptr, bytes ? bytes : 4);
    if (r != CUDA_SUCCESS) {
        free(b);
        fail_cu(e, d, r, "cuMemAlloc_v2(%zu bytes)", bytes);
        return NULL;
    }
    b->size = bytes;
    return b;
}

static void cu_free(kiln_device *d, kiln_buffer *b)
{
    if (!b)
        return;
    cuda_impl *c = IMPL(d);
    c->drv.CtxSetCurrent(c->ctx);
    c->drv.MemFree(b->ptr);
    free(b);
}

static int range_ok(kiln_device *d, const kiln_buffer *b, size_t off, size_t n, const char *what, kiln_err *e)
{
    if (!b || off > b->size || n > b->size - off)
        return kiln_fail(e, KILN_E_INVALID, "cuda:%d: %s of %zu bytes at offset %zu outside a buffer of %zu bytes",
                         d->index, what, n, off, b ? b->size : 0);
    return 0;
}

static int cu_write(kiln_device *d, kiln_buffer *b, size_t off, const void *src, size_t n, kiln_err *e)
{
    int rc = range_ok(d, b, off, n, "write", e);
    if (rc || !n || (rc = cur(d, e)))
        return rc;
    CUresult r = IMPL(d)->drv.MemcpyHtoD(b->ptr + off, src, n);
    return r == CUDA_SUCCESS ? 0 : fail_cu(e, d, r, "cuMemcpyHtoD_v2(%zu bytes)", n);
}

static int cu_read(kiln_device *d, kiln_buffer *b, size_t off, void *dst, size_t n, kiln_err *e)
{
    int rc = range_ok(d, b, off, n, "read", e);
    if (rc || !n || (rc = cur(d, e)))
        return rc;
    CUresult r = IMPL(d)->drv.MemcpyDtoH(dst, b->ptr + off, n);
    return r == CUDA_SUCCESS ? 0 : fail_cu(e, d, r, "cuMemcpyDtoH_v2(%zu bytes)", n);
}

static int cu_fill(kiln_device *d, kiln_buffer *b, uint8_t byte, size_t n, kiln_err *e)
{
    cuda_impl *c = IMPL(d);
    int rc = range_ok(d, b, 0, n, "fill", e);
    if (rc || !n || (rc = cur(d, e)))
        return rc;
    CUresult r = c->drv.MemsetD8(b->ptr, byte, n);
    if (r != CUDA_SUCCESS)
        return fail_cu(e, d, r, "cuMemsetD8_v2(%zu bytes)", n);
    r = c->drv.CtxSynchronize();
    return r == CUDA_SUCCESS ? 0 : fail_cu(e, d, r, "cuCtxSynchronize after cuMemsetD8_v2");
}

/* Waits for ev1 and returns the ev0 -> ev1 time in ns. */
static int wait_timed(kiln_device *d, double *ns, const char *what, kiln_err *e)
{
    cuda_impl *c = IMPL(d);
    CUresult r = c->drv.EventSynchronize(c->ev1);
    if (r != CUDA_SUCCESS)
        return fail_cu(e, d, r, "cuEventSynchronize after %s", what);
    float ms = 0;
    r = c->drv.EventElapsedTime(&ms, c->ev0, c->ev1);
    if (r != CUDA_SUCCESS)
        return fail_cu(e, d, r, "cuEventElapsedTime of %s", what);
    *ns = (double)ms * 1e6;
    return 0;
}

static int cu_copy(kiln_device *d, kiln_buffer *dst, kiln_buffer *src, size_t n, double *ns, kiln_err *e)
{
    cuda_impl *c = IMPL(d);
    int rc = range_ok(d, dst, 0, n, "copy destination", e);
    if (rc || (rc = range_ok(d, src, 0, n, "copy source", e)) || (rc = cur(d, e)))
        return rc;
    if (!n) {
        if (ns)
            *ns = 0;
        return 0;
    }
    CUresult r = ns ? c->drv.EventRecord(c->ev0, c->stream) : CUDA_SUCCESS;
    if (r == CUDA_SUCCESS)
        r = c->drv.MemcpyDtoDAsync(dst->ptr, src->ptr, n, c->stream);
    if (r == CUDA_SUCCESS && ns)
        r = c->drv.EventRecord(c->ev1, c->stream);
    if (r != CUDA_SUCCESS)
        return fail_cu(e, d, r, "cuMemcpyDtoDAsync_v2(%zu bytes)", n);
    return ns ? wait_timed(d, ns, "a device copy", e) : 0;
}

static kiln_program *cu_build(kiln_device *d, const kiln_program_desc *desc, kiln_err *e)
{
    cuda_impl *c = IMPL(d);
    if (cur(d, e))
        return NULL;
    cuda_image img;
    if (rtc_compile(&c->rtc, desc, d->fp.arch, &img, e)) {
        kiln_err_wrap(e, "cuda:%d (%s)", d->index, d->fp.name);
        return NULL;
    }
    kiln_program *p = calloc(1, sizeof *p);
    if (!p) {
        free(img.data);
        kiln_fail(e, KILN_E_NOMEM, "cuda:%d: no memory", d->index);
        return NULL;
    }
    snprintf(p->name, sizeof p->name, "%s/%s", desc->kernel ? desc->kernel : "?", desc->entry);
    snprintf(p->sig, sizeof p->sig, "%s", desc->signature);
    for (int a = 0; a < 3; a++)
        p->local[a] = desc->local[a] ? desc->local[a] : 1;
    char jit_log[1024] = "";
    int jopt[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *jval[2] = {jit_log, (void *)(size_t)(sizeof jit_log - 1)};
    CUresult r = c->drv.ModuleLoadDataEx(&p->mod, img.data, 2, jopt, jval);
    if (r != CUDA_SUCCESS) {
        char err[200];
        cuda_drv_error(&c->drv, r, err, sizeof err);
        kiln_fail(e, KILN_E_COMPILE, "cuda:%d (%s): loading %s (%s %s, %zu bytes, NVRTC %d.%d) failed: %s%s%s",
                  d->index, d->fp.name, p->name, img.cubin ? "CUBIN" : "PTX", img.target, img.size, c->rtc.major,
                  c->rtc.minor, err,
                  r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION ? " (the driver is older than NVRTC: update the driver "
                                                            "or point KILN_NVRTC at an older NVRTC)"
                                                          : "",
                  jit_log[0] ? jit_log : "");
        free(img.data);
        free(p);
        return NULL;
    }
    free(img.data);
    r = c->drv.ModuleGetFunction(&p->fn, p->mod, desc->entry);
    if (r != CUDA_SUCCESS) {
        fail_cu(e, d, r, "%s: cuModuleGetFunction('%s')", p->name, desc->entry);
        if (e)
            e->code = KILN_E_COMPILE;
        c->drv.ModuleUnload(p->mod);
        free(p);
        return NULL;
    }
    return p;
}

static void cu_release(kiln_device *d, kiln_program *p)
{
    if (!p)
        return;
    cuda_impl *c = IMPL(d);
    c->drv.CtxSetCurrent(c->ctx);
    c->drv.ModuleUnload(p->mod);
    free(p);
}

static int cu_launch(kiln_device *d, kiln_program *p, const uint32_t grid[3], const kiln_arg *args, int n_args,
                     double *ns, kiln_err *e)
{
    cuda_impl *c = IMPL(d);
    if (n_args < 0 || (size_t)n_args != strlen(p->sig))
        return kiln_fail(e, KILN_E_INVALID, "cuda:%d: %s: %d args for signature '%s'", d->index, p->name, n_args,
                         p->sig);
    CUdeviceptr ptrs[KILN_MAX_ARGS];
    uint32_t vals[KILN_MAX_ARGS];
    void *params[KILN_MAX_ARGS + 1];
    for (int i = 0; i < n_args; i++) {
        if ((char)args[i].kind != p->sig[i])
            return kiln_fail(e, KILN_E_INVALID, "cuda:%d: %s: arg %d is '%c', signature says '%c'", d->index, p->name,
                             i, (char)args[i].kind, p->sig[i]);
        if (args[i].kind == KILN_ARG_BUF) {
            if (!args[i].buf)
                return kiln_fail(e, KILN_E_INVALID, "cuda:%d: %s: buffer arg %d is NULL", d->index, p->name, i);
            ptrs[i] = args[i].buf->ptr + args[i].off;
            params[i] = &ptrs[i];
        } else {
            vals[i] = args[i].u32; /* i32, u32 and f32 are all 4 bytes, passed by value */
            params[i] = &vals[i];
        }
    }
    params[n_args] = NULL;
    unsigned g[3];
    for (int a = 0; a < 3; a++) {
        g[a] = grid[a] ? grid[a] : 1;
        if (c->max_grid[a] && g[a] > c->max_grid[a])
            return kiln_fail(e, KILN_E_INVALID, "cuda:%d: %s: grid[%d] = %u exceeds the device limit %u", d->index,
                             p->name, a, g[a], c->max_grid[a]);
    }
    int rc = cur(d, e);
    if (rc)
        return rc;
    /* an error here may be an earlier kernel's fault: c->last still names it */
    CUresult r = ns ? c->drv.EventRecord(c->ev0, c->stream) : CUDA_SUCCESS;
    if (r == CUDA_SUCCESS)
        r = c->drv.LaunchKernel(p->fn, g[0], g[1], g[2], p->local[0], p->local[1], p->local[2], 0, c->stream, params,
                                NULL);
    if (r != CUDA_SUCCESS)
        return fail_cu(e, d, r, "cuLaunchKernel(%s, grid %ux%ux%u, block %ux%ux%u)", p->name, g[0], g[1], g[2],
                       p->local[0], p->local[1], p->local[2]);
    snprintf(c->last, sizeof c->last, "%s", p->name);
    if (ns && (r = c->drv.EventRecord(c->ev1, c->stream)) != CUDA_SUCCESS)
        return fail_cu(e, d, r, "cuEventRecord after %s", p->name);
    if (!ns)
        return 0;
    char what[160];
    snprintf(what, sizeof what, "launching %s", p->name);
    return wait_timed(d, ns, what, e);
}

static int cu_finish(kiln_device *d, kiln_err *e)
{
    cuda_impl *c = IMPL(d);
    int rc = cur(d, e);
    if (rc)
        return rc;
    CUresult r = c->drv.StreamSynchronize(c->stream);
    if (r == CUDA_SUCCESS)
        r = c->drv.CtxSynchronize();
    return r == CUDA_SUCCESS ? 0 : fail_cu(e, d, r, "cuStreamSynchronize");
}

static const kiln_device_ops cu_ops = {
    .destroy = cu_destroy,
    .alloc = cu_alloc,
    .free = cu_free,
    .write = cu_write,
    .read = cu_read,
    .fill = cu_fill,
    .copy = cu_copy,
    .build = cu_build,
    .release = cu_release,
    .launch = cu_launch,
    .finish = cu_finish,
};

/* The kernel module's version ("550.54.15") from /proc, if readable. */
static void kernel_module_version(char *buf, size_t n)
{
    buf[0] = 0;
    FILE *f = fopen("/proc/driver/nvidia/version", "r");
    if (!f)
        return;
    char line[256];
    if (fgets(line, sizeof line, f)) {
        for (char *tok = strtok(line, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
            unsigned a, b;
            if (sscanf(tok, "%u.%u", &a, &b) == 2 && strchr(tok, '.')) {
                snprintf(buf, n, "%s", tok);
                break;
            }
        }
    }
    fclose(f);
}

static int attr(cuda_impl *c, int which)
{
    int v = 0;
    if (c->drv.DeviceGetAttribute(&v, which, c->dev) != CUDA_SUCCESS)
        v = 0;
    return v;
}

static void fingerprint(cuda_impl *c, kiln_fingerprint *fp)
{
    fp->backend = KILN_CUDA;
    snprintf(fp->vendor, sizeof fp->vendor, "NVIDIA");
    fp->vendor_id = 0x10de;
    fp->device_id = 0; /* the driver API has no PCI product id (NVML has) */
    if (c->drv.DeviceGetName(fp->name, (int)sizeof fp->name - 1, c->dev) != CUDA_SUCCESS)
        snprintf(fp->name, sizeof fp->name, "CUDA device %d", c->dev);
    int major = attr(c, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    int minor = attr(c, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    snprintf(fp->arch, sizeof fp->arch, "sm_%d%d", major, minor);
    int dv = 0;
    c->drv.DriverGetVersion(&dv);
    char km[32];
    kernel_module_version(km, sizeof km);
    snprintf(fp->driver_version, sizeof fp->driver_version, "%s%sCUDA %d.%d", km, km[0] ? " " : "", dv / 1000,
             (dv % 1000) / 10);
    snprintf(fp->compiler_version, sizeof fp->compiler_version, "NVRTC %d.%d", c->rtc.major, c->rtc.minor);
    fp->compute_units = (uint32_t)attr(c, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    int warp = attr(c, CU_DEVICE_ATTRIBUTE_WARP_SIZE);
    fp->subgroup_size = fp->subgroup_min = fp->subgroup_max = (uint32_t)(warp > 0 ? warp : 32);
    fp->has_subgroup_ops = 1; /* __shfl_*_sync */
    fp->has_int64 = 1;
    fp->local_mem_bytes = (uint64_t)attr(c, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK);
    fp->max_workgroup = (uint32_t)attr(c, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
    size_t mem = 0;
    if (c->drv.DeviceTotalMem(&mem, c->dev) == CUDA_SUCCESS)
        fp->memory_bytes = mem;
    fp->llc_bytes = (uint64_t)attr(c, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
    fp->offset_align = 16; /* float4 loads */
    c->max_grid[0] = (unsigned)attr(c, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X);
    c->max_grid[1] = (unsigned)attr(c, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y);
    c->max_grid[2] = (unsigned)attr(c, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z);
}

/* Loads the driver, initializes it and counts devices; on failure writes why. */
static int driver_up(cuda_drv *drv, int *count, char *why, size_t n)
{
    *count = 0;
    if (cuda_drv_load(drv, why, n))
        return -1;
    CUresult r = drv->Init(0);
    if (r == CUDA_SUCCESS)
        r = drv->DeviceGetCount(count);
    if (r != CUDA_SUCCESS) {
        char err[200];
        cuda_drv_error(drv, r, err, sizeof err);
        snprintf(why, n, "cuInit: %s", err);
        cuda_drv_unload(drv);
        return -1;
    }
    if (*count <= 0) {
        snprintf(why, n, "the NVIDIA driver reports no CUDA device");
        cuda_drv_unload(drv);
        return -1;
    }
    return 0;
}

static int probe(kiln_backend_status *st)
{
    cuda_drv drv;
    int n = 0;
    if (driver_up(&drv, &n, st->reason, sizeof st->reason))
        return 0;
    st->n_devices = n;
    cuda_rtc rtc;
    char why[512];
    if (cuda_rtc_load(&rtc, why, sizeof why)) {
        snprintf(st->reason, sizeof st->reason, "%d device(s) but no compiler: %s", n, why);
    } else {
        st->available = 1;
        cuda_rtc_unload(&rtc);
    }
    cuda_drv_unload(&drv);
    return 0;
}

static int open_dev(int index, kiln_device **out, kiln_err *e)
{
    *out = NULL;
    kiln_device *d = calloc(1, sizeof *d);
    cuda_impl *c = calloc(1, sizeof *c);
    if (!d || !c) {
        free(d);
        free(c);
        return kiln_fail(e, KILN_E_NOMEM, "cuda: no memory");
    }
    d->impl = c;
    d->ops = &cu_ops;
    d->backend = KILN_CUDA;
    d->index = index;
    snprintf(d->fp.name, sizeof d->fp.name, "device %d", index);
    char why[512];
    int n = 0;
    if (driver_up(&c->drv, &n, why, sizeof why)) {
        cu_destroy(d);
        return kiln_fail(e, KILN_E_UNAVAILABLE, "cuda: %s", why);
    }
    CUresult r;
    if (index < 0 || index >= n) {
        cu_destroy(d);
        return kiln_fail(e, KILN_E_UNAVAILABLE, "cuda: device %d not found (%d devices)", index, n);
    }
    if ((r = c->drv.DeviceGet(&c->dev, index)) != CUDA_SUCCESS) {
        int rc = fail_cu(e, d, r, "cuDeviceGet(%d)", index);
        cu_destroy(d);
        return rc;
    }
    if (cuda_rtc_load(&c->rtc, why, sizeof why)) {
        cu_destroy(d);
        return kiln_fail(e, KILN_E_UNAVAILABLE, "cuda:%d: %s", index, why);
    }
    fingerprint(c, &d->fp);
    r = c->drv.CtxCreate ? c->drv.CtxCreate(&c->ctx, 0, c->dev) : CUDA_ERROR_NO_DEVICE;
    if (r != CUDA_SUCCESS && r != CUDA_ERROR_OUT_OF_MEMORY) { /* no _v2 (or it refuses): the primary context */
        CUresult r2 = c->drv.DevicePrimaryCtxRetain(&c->ctx, c->dev);
        c->primary = r2 == CUDA_SUCCESS;
        if (c->primary || !c->drv.CtxCreate)
            r = r2;
    }
    if (r != CUDA_SUCCESS) {
        c->ctx = NULL;
        int rc = fail_cu(e, d, r, "creating a context (%s)",
                         c->drv.CtxCreate ? "cuCtxCreate_v2, then cuDevicePrimaryCtxRetain" : "cuDevicePrimaryCtxRetain");
        cu_destroy(d);
        return rc;
    }
    r = c->drv.CtxSetCurrent(c->ctx);
    if (r == CUDA_SUCCESS)
        r = c->drv.StreamCreate(&c->stream, CU_STREAM_DEFAULT);
    if (r == CUDA_SUCCESS)
        r = c->drv.EventCreate(&c->ev0, CU_EVENT_DEFAULT);
    if (r == CUDA_SUCCESS)
        r = c->drv.EventCreate(&c->ev1, CU_EVENT_DEFAULT);
    if (r != CUDA_SUCCESS) {
        int rc = fail_cu(e, d, r, "creating the stream and events");
        cu_destroy(d);
        return rc;
    }
    *out = d;
    return 0;
}

const kiln_backend_impl kiln_backend_impl_cuda = {
    .kind = KILN_CUDA, .probe = probe, .open = open_dev, .compile_only = compile_only};
