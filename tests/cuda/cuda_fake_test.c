/* tests/cuda/cuda_fake_test.c - the cuda backend's device path against
 * tests/cuda/fake_libcuda.c (LD_LIBRARY_PATH points at it), with the real
 * NVRTC: probe, fingerprint, memory round trips and bounds, fill, timed copy,
 * argument marshalling of a real launch (the fake runs axpy on the host),
 * compile errors with the log, signature mismatches, and an asynchronous
 * kernel fault that must come back from finish() naming the kernel.
 * This checks plumbing only; real GPUs are covered by kiln check --device cuda.
 * No NVRTC: SKIP, or FAIL when $KILN_REQUIRE_BACKENDS names cuda-compile. */
#include <math.h>

#include "devices/device.h"
#include "tests/test.h"

static const char *axpy_cu = "extern \"C\" __global__ void axpy(const float *x, float *y, float a, unsigned n)\n"
                             "{ unsigned i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) y[i] = a * x[i] + y[i]; }\n";
static const char *fault_cu = "extern \"C\" __global__ void fault_kernel(float *p) { p[1u << 30] = 1.0f; }\n";

int main(void)
{
    kiln_backend_status st;
    kiln_backend_probe(KILN_CUDA, &st);
    if (!st.available) {
        /* the fake driver is always there: only NVRTC can be missing */
        CHECK(!strstr(st.reason, "libcuda"), "the fake libcuda.so.1 was not loaded: %s", st.reason);
        CHECK(!test_backend_required("cuda-compile"), "cuda-compile required but: %s", st.reason);
        if (!test_failures)
            KILN_SKIP("%s", st.reason);
        return test_result();
    }
    CHECK(st.n_devices == 1, "fake driver has 1 device, probe says %d", st.n_devices);
    kiln_err e = {0};
    kiln_device *d = NULL;
    CHECK_OK(kiln_device_open(KILN_CUDA, 0, &d, &e), &e);
    if (!d)
        return test_result();
    kiln_fingerprint *fp = &d->fp;
    printf("fingerprint: %s / %s / %s / %s / %s\n", fp->vendor, fp->name, fp->arch, fp->driver_version,
           fp->compiler_version);
    CHECK(!strcmp(fp->vendor, "NVIDIA") && fp->vendor_id == 0x10de, "vendor %s %#x", fp->vendor, fp->vendor_id);
    CHECK(!strcmp(fp->arch, "sm_80"), "arch %s", fp->arch);
    CHECK(!strncmp(fp->compiler_version, "NVRTC ", 6), "compiler %s", fp->compiler_version);
    CHECK(strstr(fp->driver_version, "CUDA 12.4") != NULL, "driver %s", fp->driver_version);
    CHECK(fp->subgroup_size == 32 && fp->has_subgroup_ops == 1, "warp %u ops %u", fp->subgroup_size,
          fp->has_subgroup_ops);
    CHECK(fp->local_mem_bytes == 48 * 1024 && fp->max_workgroup == 1024 && fp->compute_units == 108,
          "shared %llu max wg %u SMs %u", (unsigned long long)fp->local_mem_bytes, fp->max_workgroup,
          fp->compute_units);
    CHECK(fp->memory_bytes == (40ull << 30) && fp->llc_bytes == (40ull << 20), "memory %llu llc %llu",
          (unsigned long long)fp->memory_bytes, (unsigned long long)fp->llc_bytes);

    /* memory */
    enum { N = 1003 };
    float x[N], y[N], got[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)i * 0.5f - 3.0f;
        y[i] = 1.0f + (float)(i % 7);
    }
    kiln_buffer *bx = kiln_alloc(d, sizeof x, &e), *by = kiln_alloc(d, sizeof y, &e);
    CHECK(bx && by, "alloc: %s", e.msg);
    CHECK_OK(kiln_write(d, bx, 0, x, sizeof x, &e), &e);
    CHECK_OK(kiln_read(d, bx, 0, got, sizeof got, &e), &e);
    CHECK(!memcmp(x, got, sizeof x), "round trip differs");
    CHECK(kiln_write(d, bx, sizeof x - 4, x, 8, &e) == KILN_E_INVALID, "write past the end must fail");
    CHECK(kiln_read(d, bx, sizeof x + 1, got, 1, &e) == KILN_E_INVALID, "read past the end must fail");
    CHECK_OK(d->ops->fill(d, by, 0x3c, sizeof y, &e), &e);
    unsigned char raw[sizeof y];
    CHECK_OK(kiln_read(d, by, 0, raw, sizeof raw, &e), &e);
    CHECK(raw[0] == 0x3c && raw[sizeof raw - 1] == 0x3c, "fill");
    double ns = -1;
    CHECK_OK(d->ops->copy(d, by, bx, sizeof x, &ns, &e), &e);
    CHECK(fabs(ns - 12500.0) < 1.0, "timed copy: %g ns, the fake's events say 12500", ns);
    CHECK_OK(kiln_read(d, by, 0, got, sizeof got, &e), &e);
    CHECK(!memcmp(x, got, sizeof x), "copy differs");
    CHECK(kiln_alloc(d, (size_t)1 << 40, &e) == NULL && e.code == KILN_E_NOMEM, "a 1 TiB alloc: %d %s", e.code,
          e.msg);

    /* a real program: the fake driver runs axpy on the host from the marshalled arguments */
    CHECK_OK(kiln_write(d, by, 0, y, sizeof y, &e), &e);
    kiln_program_desc desc = {.kernel = "axpy", .entry = "axpy", .source = axpy_cu, .signature = "bbfu",
                              .local = {256, 1, 1}};
    kiln_program *p = d->ops->build(d, &desc, &e);
    CHECK(p, "build axpy: %s", e.msg);
    if (p) {
        kiln_arg args[4] = {{.kind = KILN_ARG_BUF, .buf = bx}, {.kind = KILN_ARG_BUF, .buf = by},
                            {.kind = KILN_ARG_F32, .f32 = 2.5f}, {.kind = KILN_ARG_U32, .u32 = N}};
        uint32_t grid[3] = {(N + 255) / 256, 1, 1};
        CHECK_OK(d->ops->launch(d, p, grid, args, 4, NULL, &e), &e);
        CHECK_OK(kiln_finish(d, &e), &e);
        CHECK_OK(kiln_read(d, by, 0, got, sizeof got, &e), &e);
        int bad = 0;
        for (int i = 0; i < N; i++)
            bad += got[i] != 2.5f * x[i] + y[i];
        CHECK(!bad, "axpy: %d of %d elements wrong (argument marshalling)", bad, N);
        ns = -1;
        CHECK_OK(d->ops->launch(d, p, grid, args, 4, &ns, &e), &e);
        CHECK(ns > 0, "timed launch: %g ns", ns);
        CHECK(d->ops->launch(d, p, grid, args, 3, NULL, &e) == KILN_E_INVALID, "3 args for 'bbfu' must fail");
        args[2].kind = KILN_ARG_I32;
        CHECK(d->ops->launch(d, p, grid, args, 4, NULL, &e) == KILN_E_INVALID && strstr(e.msg, "axpy"),
              "an i32 where the signature says f32 must fail naming the kernel: %s", e.msg);
        d->ops->release(d, p);
    }

    /* compile errors carry the log and the kernel */
    kiln_program_desc broken = desc;
    broken.source = "extern \"C\" __global__ void axpy(float *x) { x[0] = ; }";
    memset(&e, 0, sizeof e);
    CHECK(d->ops->build(d, &broken, &e) == NULL && e.code == KILN_E_COMPILE, "broken source must fail to build");
    CHECK(strstr(e.msg, "axpy") && strstr(e.msg, "error"), "the message lacks the kernel or the log: %s", e.msg);
    kiln_program_desc noentry = desc;
    noentry.entry = "axpy_missing";
    CHECK(d->ops->build(d, &noentry, &e) == NULL && e.code == KILN_E_COMPILE && strstr(e.msg, "axpy_missing"),
          "a missing entry must fail naming it: %s", e.msg);

    /* an asynchronous fault: the launch is queued fine, finish reports it naming the kernel */
    kiln_program_desc fd = {.kernel = "faulty", .entry = "fault_kernel", .source = fault_cu, .signature = "b",
                            .local = {32, 1, 1}};
    kiln_program *pf = d->ops->build(d, &fd, &e);
    CHECK(pf, "build fault_kernel: %s", e.msg);
    if (pf) {
        kiln_arg a = {.kind = KILN_ARG_BUF, .buf = bx};
        uint32_t grid[3] = {1, 1, 1};
        CHECK_OK(d->ops->launch(d, pf, grid, &a, 1, NULL, &e), &e);
        memset(&e, 0, sizeof e);
        int rc = kiln_finish(d, &e);
        printf("fault -> %s\n", e.msg);
        CHECK(rc == KILN_E_DEVICE && strstr(e.msg, "faulty/fault_kernel") && strstr(e.msg, "ILLEGAL_ADDRESS"),
              "finish after a faulting kernel: %d %s", rc, e.msg);
        rc = kiln_read(d, bx, 0, got, 4, &e);
        CHECK(rc == KILN_E_DEVICE && strstr(e.msg, "fault_kernel"), "a read after the fault: %d %s", rc, e.msg);
        d->ops->release(d, pf);
    }
    kiln_free(d, bx);
    kiln_free(d, by);
    kiln_device_close(d);
    return test_result();
}
