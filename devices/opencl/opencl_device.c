/* devices/opencl/opencl_device.c - the OpenCL backend (PoCL here; any ICD).
 *
 * One in-order queue with profiling per device: launches are queued and
 * ordered by the queue, timed ones wait on their event and read its
 * START/END profiling counters. Devices are numbered across all platforms
 * (GPUs, CPUs and accelerators alike). Sources are OpenCL C 1.2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "devices/opencl/cl_api.h"

struct kiln_buffer {
    cl_mem mem;
    size_t size;
};

struct kiln_program {
    cl_program prog;
    cl_kernel kern;
    char name[128];
    char sig[KILN_MAX_ARGS + 1];
    size_t local[3];
};

typedef struct cl_impl {
    cl_api api;
    cl_device_id dev;
    cl_context ctx;
    cl_command_queue q;
} cl_impl;

#define API(d) (&((cl_impl *)(d)->impl)->api)

static int fail_cl(kiln_err *e, kiln_device *d, cl_int rc, const char *what)
{
    return kiln_fail(e, rc == CL_MEM_OBJECT_ALLOCATION_FAILURE || rc == CL_OUT_OF_HOST_MEMORY ? KILN_E_NOMEM
                                                                                                : KILN_E_DEVICE,
                     "opencl:%d (%s): %s: %s (%d)", d->index, d->fp.name, what, cl_error_name(rc), rc);
}

/* Enumerates every device of every platform in order; index -> (platform, device). */
static int find_device(cl_api *api, int index, cl_platform_id *pp, cl_device_id *dp, int *count)
{
    cl_platform_id plats[16];
    cl_uint np = 0;
    cl_int rc = api->GetPlatformIDs(16, plats, &np);
    if (rc != CL_SUCCESS)
        return rc;
    int seen = 0;
    for (cl_uint p = 0; p < np; p++) {
        cl_device_id devs[32];
        cl_uint nd = 0;
        if (api->GetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 32, devs, &nd) != CL_SUCCESS)
            continue;
        for (cl_uint i = 0; i < nd; i++, seen++)
            if (seen == index && pp) {
                *pp = plats[p];
                *dp = devs[i];
            }
    }
    if (count)
        *count = seen;
    return CL_SUCCESS;
}

static int probe(kiln_backend_status *st)
{
    cl_api api;
    if (cl_api_load(&api, st->reason, sizeof st->reason))
        return 0;
    int n = 0;
    cl_int rc = find_device(&api, -1, NULL, NULL, &n);
    if (rc != CL_SUCCESS)
        snprintf(st->reason, sizeof st->reason, "clGetPlatformIDs: %s", cl_error_name(rc));
    else if (!n)
        snprintf(st->reason, sizeof st->reason, "no OpenCL device on any platform");
    st->n_devices = n;
    st->available = n > 0;
    cl_api_unload(&api);
    return 0;
}

static void cl_destroy(kiln_device *d)
{
    cl_impl *c = d->impl;
    if (c) {
        if (c->q)
            c->api.ReleaseCommandQueue(c->q);
        if (c->ctx)
            c->api.ReleaseContext(c->ctx);
        cl_api_unload(&c->api);
        free(c);
    }
    free(d);
}

static kiln_buffer *cl_alloc(kiln_device *d, size_t bytes, kiln_err *e)
{
    cl_impl *c = d->impl;
    kiln_buffer *b = calloc(1, sizeof *b);
    cl_int rc = CL_OUT_OF_HOST_MEMORY;
    if (b)
        b->mem = c->api.CreateBuffer(c->ctx, CL_MEM_READ_WRITE, bytes ? bytes : 4, NULL, &rc);
    if (!b || rc != CL_SUCCESS) {
        free(b);
        fail_cl(e, d, rc, "clCreateBuffer");
        return NULL;
    }
    b->size = bytes;
    return b;
}

static void cl_free(kiln_device *d, kiln_buffer *b)
{
    if (b) {
        API(d)->ReleaseMemObject(b->mem);
        free(b);
    }
}

static int range_ok(kiln_device *d, const kiln_buffer *b, size_t off, size_t n, const char *what, kiln_err *e)
{
    if (!b || off > b->size || n > b->size - off)
        return kiln_fail(e, KILN_E_INVALID, "opencl:%d: %s of %zu bytes at offset %zu outside a buffer of %zu bytes",
                         d->index, what, n, off, b ? b->size : 0);
    return 0;
}

static int cl_write(kiln_device *d, kiln_buffer *b, size_t off, const void *src, size_t n, kiln_err *e)
{
    cl_impl *c = d->impl;
    int rc = range_ok(d, b, off, n, "write", e);
    if (rc || !n)
        return rc;
    cl_int r = c->api.EnqueueWriteBuffer(c->q, b->mem, CL_TRUE, off, n, src, 0, NULL, NULL);
    return r == CL_SUCCESS ? 0 : fail_cl(e, d, r, "clEnqueueWriteBuffer");
}

static int cl_read(kiln_device *d, kiln_buffer *b, size_t off, void *dst, size_t n, kiln_err *e)
{
    cl_impl *c = d->impl;
    int rc = range_ok(d, b, off, n, "read", e);
    if (rc || !n)
        return rc;
    cl_int r = c->api.EnqueueReadBuffer(c->q, b->mem, CL_TRUE, off, n, dst, 0, NULL, NULL);
    return r == CL_SUCCESS ? 0 : fail_cl(e, d, r, "clEnqueueReadBuffer");
}

static int wait_timed(kiln_device *d, cl_event ev, double *ns, const char *what, kiln_err *e)
{
    cl_impl *c = d->impl;
    cl_int r = c->api.WaitForEvents(1, &ev);
    cl_ulong t0 = 0, t1 = 0;
    if (r == CL_SUCCESS)
        r = c->api.GetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
    if (r == CL_SUCCESS)
        r = c->api.GetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
    c->api.ReleaseEvent(ev);
    if (r != CL_SUCCESS)
        return fail_cl(e, d, r, what);
    *ns = (double)(t1 - t0);
    return 0;
}

static int cl_fill(kiln_device *d, kiln_buffer *b, uint8_t byte, size_t n, kiln_err *e)
{
    cl_impl *c = d->impl;
    int rc = range_ok(d, b, 0, n, "fill", e);
    if (rc || !n)
        return rc;
    cl_int r = c->api.EnqueueFillBuffer(c->q, b->mem, &byte, 1, 0, n, 0, NULL, NULL);
    if (r == CL_SUCCESS)
        r = c->api.Finish(c->q);
    return r == CL_SUCCESS ? 0 : fail_cl(e, d, r, "clEnqueueFillBuffer");
}

static int cl_copy(kiln_device *d, kiln_buffer *dst, kiln_buffer *src, size_t n, double *ns, kiln_err *e)
{
    cl_impl *c = d->impl;
    int rc = range_ok(d, dst, 0, n, "copy destination", e);
    if (rc || (rc = range_ok(d, src, 0, n, "copy source", e)))
        return rc;
    cl_event ev = NULL;
    cl_int r = c->api.EnqueueCopyBuffer(c->q, src->mem, dst->mem, 0, 0, n, 0, NULL, ns ? &ev : NULL);
    if (r != CL_SUCCESS)
        return fail_cl(e, d, r, "clEnqueueCopyBuffer");
    return ns ? wait_timed(d, ev, ns, "timing a copy", e) : 0;
}

static kiln_program *cl_build(kiln_device *d, const kiln_program_desc *desc, kiln_err *e)
{
    cl_impl *c = d->impl;
    if (!desc->source || !desc->entry || !desc->signature || strlen(desc->signature) > KILN_MAX_ARGS) {
        kiln_fail(e, KILN_E_INVALID, "opencl:%d: kernel '%s': missing source, entry or signature", d->index,
                  desc->kernel ? desc->kernel : "?");
        return NULL;
    }
    char opts[4096];
    size_t used = (size_t)snprintf(opts, sizeof opts, "-cl-std=CL1.2");
    for (int i = 0; i < desc->n_defines && used < sizeof opts; i++)
        used += (size_t)snprintf(opts + used, sizeof opts - used, " -D%s=%lld", desc->defines[i].name,
                                 desc->defines[i].value);
    const char *axes[3] = {"LOCAL_X", "LOCAL_Y", "LOCAL_Z"};
    for (int a = 0; a < 3 && used < sizeof opts; a++)
        if (kiln_define_get(desc->defines, desc->n_defines, axes[a], -1) < 0)
            used += (size_t)snprintf(opts + used, sizeof opts - used, " -D%s=%u", axes[a],
                                     desc->local[a] ? desc->local[a] : 1);
    kiln_program *p = calloc(1, sizeof *p);
    if (!p) {
        kiln_fail(e, KILN_E_NOMEM, "opencl:%d: no memory", d->index);
        return NULL;
    }
    snprintf(p->name, sizeof p->name, "%s/%s", desc->kernel ? desc->kernel : "?", desc->entry);
    snprintf(p->sig, sizeof p->sig, "%s", desc->signature);
    for (int a = 0; a < 3; a++)
        p->local[a] = desc->local[a] ? desc->local[a] : 1;
    cl_int r;
    const char *src = desc->source;
    p->prog = c->api.CreateProgramWithSource(c->ctx, 1, &src, NULL, &r);
    if (r != CL_SUCCESS) {
        fail_cl(e, d, r, "clCreateProgramWithSource");
        free(p);
        return NULL;
    }
    r = c->api.BuildProgram(p->prog, 1, &c->dev, opts, NULL, NULL);
    if (r != CL_SUCCESS) {
        char log[3000] = "";
        c->api.GetProgramBuildInfo(p->prog, c->dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        kiln_fail(e, KILN_E_COMPILE, "opencl:%d: building %s failed (%s): %.900s", d->index, p->name,
                  cl_error_name(r), log);
        c->api.ReleaseProgram(p->prog);
        free(p);
        return NULL;
    }
    p->kern = c->api.CreateKernel(p->prog, desc->entry, &r);
    if (r != CL_SUCCESS) {
        kiln_fail(e, KILN_E_COMPILE, "opencl:%d: %s: no kernel '%s' (%s)", d->index, p->name, desc->entry,
                  cl_error_name(r));
        c->api.ReleaseProgram(p->prog);
        free(p);
        return NULL;
    }
    return p;
}

static void cl_release(kiln_device *d, kiln_program *p)
{
    if (!p)
        return;
    API(d)->ReleaseKernel(p->kern);
    API(d)->ReleaseProgram(p->prog);
    free(p);
}

static int cl_launch(kiln_device *d, kiln_program *p, const uint32_t grid[3], const kiln_arg *args, int n_args,
                     double *ns, kiln_err *e)
{
    cl_impl *c = d->impl;
    if ((size_t)n_args != strlen(p->sig))
        return kiln_fail(e, KILN_E_INVALID, "opencl:%d: %s: %d args for signature '%s'", d->index, p->name, n_args,
                         p->sig);
    /* offsets become sub-buffers, released once the launch is queued (the
     * queue keeps them alive until the kernel has run) */
    cl_mem subs[KILN_MAX_ARGS];
    int n_subs = 0, rc = 0;
    for (int i = 0; i < n_args && !rc; i++) {
        if ((char)args[i].kind != p->sig[i]) {
            rc = kiln_fail(e, KILN_E_INVALID, "opencl:%d: %s: arg %d is '%c', signature says '%c'", d->index, p->name,
                           i, (char)args[i].kind, p->sig[i]);
            break;
        }
        cl_int r;
        if (args[i].kind == KILN_ARG_BUF) {
            if (!args[i].buf) {
                rc = kiln_fail(e, KILN_E_INVALID, "opencl:%d: %s: buffer arg %d is NULL", d->index, p->name, i);
                break;
            }
            cl_mem m = args[i].buf->mem;
            if (args[i].off) {
                if (args[i].off >= args[i].buf->size || args[i].off % d->fp.offset_align) {
                    rc = kiln_fail(e, KILN_E_INVALID, "opencl:%d: %s: arg %d: offset %zu outside the %zu-byte buffer "
                                   "or not a multiple of %u", d->index, p->name, i, args[i].off, args[i].buf->size,
                                   d->fp.offset_align);
                    break;
                }
                cl_buffer_region reg = {.origin = args[i].off, .size = args[i].buf->size - args[i].off};
                m = c->api.CreateSubBuffer(m, 0, CL_BUFFER_CREATE_TYPE_REGION, &reg, &r);
                if (r != CL_SUCCESS) {
                    rc = fail_cl(e, d, r, "clCreateSubBuffer");
                    break;
                }
                subs[n_subs++] = m;
            }
            r = c->api.SetKernelArg(p->kern, (cl_uint)i, sizeof(cl_mem), &m);
        } else {
            r = c->api.SetKernelArg(p->kern, (cl_uint)i, 4, &args[i].u32);
        }
        if (r != CL_SUCCESS)
            rc = fail_cl(e, d, r, "clSetKernelArg");
    }
    if (rc) {
        for (int i = 0; i < n_subs; i++)
            c->api.ReleaseMemObject(subs[i]);
        return rc;
    }
    size_t global[3], local[3];
    for (int a = 0; a < 3; a++) {
        global[a] = (size_t)(grid[a] ? grid[a] : 1) * p->local[a];
        local[a] = p->local[a];
    }
    cl_event ev = NULL;
    cl_int r = c->api.EnqueueNDRangeKernel(c->q, p->kern, 3, NULL, global, local, 0, NULL, ns ? &ev : NULL);
    for (int i = 0; i < n_subs; i++)
        c->api.ReleaseMemObject(subs[i]);
    if (r != CL_SUCCESS) {
        char what[200];
        snprintf(what, sizeof what, "clEnqueueNDRangeKernel(%s)", p->name);
        return fail_cl(e, d, r, what);
    }
    return ns ? wait_timed(d, ev, ns, "timing a launch", e) : 0;
}

static int cl_finish(kiln_device *d, kiln_err *e)
{
    cl_int r = API(d)->Finish(((cl_impl *)d->impl)->q);
    return r == CL_SUCCESS ? 0 : fail_cl(e, d, r, "clFinish");
}

static const kiln_device_ops cl_ops = {
    .destroy = cl_destroy,
    .alloc = cl_alloc,
    .free = cl_free,
    .write = cl_write,
    .read = cl_read,
    .fill = cl_fill,
    .copy = cl_copy,
    .build = cl_build,
    .release = cl_release,
    .launch = cl_launch,
    .finish = cl_finish,
};

static void info_str(cl_impl *c, cl_device_info what, char *buf, size_t n)
{
    buf[0] = 0;
    if (c->api.GetDeviceInfo(c->dev, what, n - 1, buf, NULL) != CL_SUCCESS)
        buf[0] = 0;
    buf[n - 1] = 0;
}

static void fingerprint(cl_impl *c, cl_platform_id plat, kiln_fingerprint *fp)
{
    fp->backend = KILN_OPENCL;
    char pname[64] = "";
    c->api.GetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL);
    info_str(c, CL_DEVICE_VENDOR, fp->vendor, sizeof fp->vendor);
    info_str(c, CL_DEVICE_NAME, fp->name, sizeof fp->name);
    char dv[64];
    info_str(c, CL_DRIVER_VERSION, dv, sizeof dv);
    snprintf(fp->driver_version, sizeof fp->driver_version, "%.40s %.22s", pname, dv);
    info_str(c, CL_DEVICE_OPENCL_C_VERSION, fp->compiler_version, sizeof fp->compiler_version);
    cl_device_type type = 0;
    c->api.GetDeviceInfo(c->dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    fp->cpu_device = (type & CL_DEVICE_TYPE_CPU) != 0;
    snprintf(fp->arch, sizeof fp->arch, "%s/%.50s",
             type & CL_DEVICE_TYPE_GPU ? "gpu" : type & CL_DEVICE_TYPE_CPU ? "cpu" : "accel", fp->name);
    cl_uint u = 0;
    cl_ulong ul = 0;
    size_t sz = 0;
    if (c->api.GetDeviceInfo(c->dev, CL_DEVICE_VENDOR_ID, sizeof u, &u, NULL) == CL_SUCCESS)
        fp->vendor_id = u;
    if (c->api.GetDeviceInfo(c->dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof u, &u, NULL) == CL_SUCCESS)
        fp->compute_units = u;
    if (c->api.GetDeviceInfo(c->dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS)
        fp->local_mem_bytes = ul;
    if (c->api.GetDeviceInfo(c->dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof sz, &sz, NULL) == CL_SUCCESS)
        fp->max_workgroup = (uint32_t)sz;
    if (c->api.GetDeviceInfo(c->dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS)
        fp->memory_bytes = ul;
    if (c->api.GetDeviceInfo(c->dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS)
        fp->max_buffer_bytes = ul;
    if (c->api.GetDeviceInfo(c->dev, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS)
        fp->llc_bytes = ul;
    if (c->api.GetDeviceInfo(c->dev, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof u, &u, NULL) == CL_SUCCESS)
        fp->offset_align = u / 8 ? u / 8 : 1; /* reported in bits: sub-buffer origins must be multiples */
    /* OpenCL C 1.2 has no subgroup functions: Kiln's sources don't use them */
    fp->subgroup_size = fp->subgroup_min = fp->subgroup_max = 1;
    fp->has_subgroup_ops = 0;
    fp->has_int64 = 1; /* OpenCL C has long */
}

static int open_dev(int index, kiln_device **out, kiln_err *e)
{
    *out = NULL;
    kiln_device *d = calloc(1, sizeof *d);
    cl_impl *c = calloc(1, sizeof *c);
    char why[512];
    if (!d || !c) {
        free(d);
        free(c);
        return kiln_fail(e, KILN_E_NOMEM, "opencl: no memory");
    }
    d->impl = c;
    d->ops = &cl_ops;
    d->backend = KILN_OPENCL;
    d->index = index;
    if (cl_api_load(&c->api, why, sizeof why)) {
        cl_destroy(d);
        return kiln_fail(e, KILN_E_UNAVAILABLE, "opencl: %s", why);
    }
    cl_platform_id plat = NULL;
    int n = 0;
    cl_int r = find_device(&c->api, index, &plat, &c->dev, &n);
    if (r != CL_SUCCESS || index >= n || !plat) {
        cl_destroy(d);
        return kiln_fail(e, KILN_E_UNAVAILABLE, "opencl: device %d not found (%d devices)", index, n);
    }
    fingerprint(c, plat, &d->fp);
    c->ctx = c->api.CreateContext(NULL, 1, &c->dev, NULL, NULL, &r);
    if (r == CL_SUCCESS)
        c->q = c->api.CreateCommandQueue(c->ctx, c->dev, CL_QUEUE_PROFILING_ENABLE, &r);
    if (r != CL_SUCCESS) {
        int rc = fail_cl(e, d, r, "creating the context and queue");
        cl_destroy(d);
        return rc;
    }
    *out = d;
    return 0;
}

const kiln_backend_impl kiln_backend_impl_opencl = {.kind = KILN_OPENCL, .probe = probe, .open = open_dev};
