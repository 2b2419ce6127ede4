/* tests/devices/vulkan_test.c - the Vulkan backend, as a specification.
 *
 * Device 0 must: report a fingerprint; round-trip bytes through write/read;
 * copy and fill (odd sizes too); build GLSL that follows the binding /
 * push-constant convention (vk_internal.h) and compute correct results for
 * an odd element count; keep two dependent launches queued without finish()
 * in order (barriers); time a launch and a copy with the device timer; turn
 * a GLSL syntax error into KILN_E_COMPILE with shaderc's message; run a
 * subgroupAdd reduction when the device has subgroup arithmetic. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "tests/test.h"

#define PRELUDE                                                                                              \
    "#version 450\n"                                                                                         \
    "#extension GL_KHR_shader_subgroup_basic : enable\n"                                                     \
    "#extension GL_KHR_shader_subgroup_arithmetic : enable\n"                                                \
    "layout(local_size_x = LOCAL_X, local_size_y = LOCAL_Y, local_size_z = LOCAL_Z) in;\n"

/* y[i] = alpha * x[i] + y[i] for i < n; signature "bbfu" */
static const char *axpy_src = PRELUDE
    "layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };\n"
    "layout(std430, set = 0, binding = 1) buffer Y { float y[]; };\n"
    "layout(push_constant) uniform PC { float alpha; uint n; } pc;\n"
    "void main() {\n"
    "    uint i = gl_GlobalInvocationID.x;\n"
    "    if (i < pc.n) y[i] = pc.alpha * x[i] + y[i] + float(BIAS);\n"
    "}\n";

/* out[wg] = sum of in[wg*LOCAL_X .. +LOCAL_X) via subgroupAdd + shared memory; signature "bbu" */
static const char *reduce_src = PRELUDE
    "layout(std430, set = 0, binding = 0) readonly buffer In { float v[]; };\n"
    "layout(std430, set = 0, binding = 1) writeonly buffer Out { float o[]; };\n"
    "layout(push_constant) uniform PC { uint n; } pc;\n"
    "shared float part[LOCAL_X];\n"
    "void main() {\n"
    "    uint i = gl_GlobalInvocationID.x;\n"
    "    float s = subgroupAdd(i < pc.n ? v[i] : 0.0);\n"
    "    if (subgroupElect()) part[gl_SubgroupID] = s;\n"
    "    barrier();\n"
    "    if (gl_LocalInvocationID.x == 0) {\n"
    "        float t = 0.0;\n"
    "        for (uint k = 0; k < gl_NumSubgroups; k++) t += part[k];\n"
    "        o[gl_WorkGroupID.x] = t;\n"
    "    }\n"
    "}\n";

static const char *broken_src = PRELUDE "void main() { uint x = 1 }\n";

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float next_f(void) { return (float)(next_u32() % 20001) / 10000.0f - 1.0f; }

static void test_fingerprint(kiln_device *d)
{
    const kiln_fingerprint *fp = &d->fp;
    char key[512];
    kiln_fingerprint_key(fp, key, sizeof key);
    fprintf(stderr, "device: %s\n  arch %s, driver %s, compiler %s\n  cus %u, subgroup %u [%u, %u] ops %u, local %llu, "
            "max wg %u, memory %llu, llc %llu\n",
            key, fp->arch, fp->driver_version, fp->compiler_version, fp->compute_units, fp->subgroup_size,
            fp->subgroup_min, fp->subgroup_max, fp->has_subgroup_ops, (unsigned long long)fp->local_mem_bytes,
            fp->max_workgroup, (unsigned long long)fp->memory_bytes, (unsigned long long)fp->llc_bytes);
    CHECK(fp->backend == KILN_VULKAN, "backend %d", fp->backend);
    CHECK(fp->vendor[0] && fp->name[0] && fp->driver_version[0] && fp->arch[0], "empty fingerprint strings");
    CHECK(strncmp(fp->compiler_version, "shaderc", 7) == 0, "compiler '%s'", fp->compiler_version);
    CHECK(fp->subgroup_size >= 1 && fp->subgroup_min <= fp->subgroup_size && fp->subgroup_size <= fp->subgroup_max,
          "subgroup %u [%u, %u]", fp->subgroup_size, fp->subgroup_min, fp->subgroup_max);
    CHECK(fp->local_mem_bytes >= 16384, "local mem %llu", (unsigned long long)fp->local_mem_bytes);
    CHECK(fp->max_workgroup >= 128, "max workgroup %u", fp->max_workgroup);
    CHECK(fp->memory_bytes > 0, "memory 0");
}

static void test_memory(kiln_device *d)
{
    kiln_err e = {0};
    const size_t n = 1000003; /* odd: exercises fill/copy tails */
    uint8_t *src = malloc(n), *dst = malloc(n);
    for (size_t i = 0; i < n; i++)
        src[i] = (uint8_t)next_u32();
    kiln_buffer *a = kiln_alloc(d, n, &e);
    CHECK(a, "alloc: %s", e.msg);
    kiln_buffer *b = kiln_alloc(d, n, &e);
    CHECK(b, "alloc: %s", e.msg);
    if (!a || !b)
        goto out;

    CHECK_OK(kiln_write(d, a, 0, src, n, &e), &e);
    memset(dst, 0, n);
    CHECK_OK(kiln_read(d, a, 0, dst, n, &e), &e);
    CHECK(memcmp(src, dst, n) == 0, "write/read round trip differs");

    /* partial write/read at an unaligned offset */
    uint8_t patch[7] = {1, 2, 3, 4, 5, 6, 7}, got[7] = {0};
    CHECK_OK(kiln_write(d, a, 13, patch, sizeof patch, &e), &e);
    CHECK_OK(kiln_read(d, a, 13, got, sizeof got, &e), &e);
    CHECK(memcmp(patch, got, sizeof got) == 0, "offset write/read differs");
    memcpy(src + 13, patch, sizeof patch);

    /* out of range is an error, not a crash */
    CHECK(kiln_write(d, a, n - 2, patch, 3, &e) == KILN_E_INVALID, "overrun write accepted");

    CHECK_OK(d->ops->copy(d, b, a, n, NULL, &e), &e);
    memset(dst, 0, n);
    CHECK_OK(kiln_read(d, b, 0, dst, n, &e), &e);
    CHECK(memcmp(src, dst, n) == 0, "copy differs");

    double ns = 0;
    CHECK_OK(d->ops->copy(d, b, a, n, &ns, &e), &e);
    CHECK(ns > 0, "timed copy took %g ns", ns);

    CHECK_OK(d->ops->fill(d, b, 0xA5, n, &e), &e);
    CHECK_OK(kiln_read(d, b, 0, dst, n, &e), &e);
    size_t bad = n;
    for (size_t i = 0; i < n && bad == n; i++)
        if (dst[i] != 0xA5)
            bad = i;
    CHECK(bad == n, "fill: byte %zu is 0x%02x", bad, bad < n ? dst[bad] : 0);
    /* fill of a prefix leaves the rest alone */
    CHECK_OK(d->ops->fill(d, b, 0x11, 5, &e), &e);
    CHECK_OK(kiln_read(d, b, 0, dst, 8, &e), &e);
    CHECK(dst[0] == 0x11 && dst[4] == 0x11 && dst[5] == 0xA5 && dst[7] == 0xA5, "prefix fill: %02x %02x %02x", dst[0],
          dst[4], dst[5]);
out:
    kiln_free(d, a);
    kiln_free(d, b);
    free(src);
    free(dst);
}

static void test_axpy(kiln_device *d)
{
    kiln_err e = {0};
    const uint32_t n = 1000003, wg = 64;
    kiln_define defs[] = {{"BIAS", 0}};
    kiln_program_desc desc = {
        .kernel = "axpy_test", .source = axpy_src, .signature = "bbfu",
        .defines = defs, .n_defines = 1, .local = {wg, 1, 1},
    };
    kiln_program *p = d->ops->build(d, &desc, &e);
    CHECK(p, "build axpy: %s", e.msg);
    /* a define changes the program: BIAS = 2 adds 2 to every element */
    defs[0].value = 2;
    kiln_program *p2 = d->ops->build(d, &desc, &e);
    CHECK(p2, "build axpy BIAS=2: %s", e.msg);

    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *out = malloc(n * sizeof *out);
    for (uint32_t i = 0; i < n; i++) {
        x[i] = next_f();
        y[i] = next_f();
    }
    /* one element past n is a sentinel the kernel must not touch */
    kiln_buffer *bx = kiln_alloc(d, n * sizeof(float), &e);
    kiln_buffer *by = kiln_alloc(d, (n + 1) * sizeof(float), &e);
    CHECK(bx && by, "alloc: %s", e.msg);
    if (!p || !p2 || !bx || !by)
        goto out;
    const float sentinel = -12345.0f;
    CHECK_OK(kiln_write(d, bx, 0, x, n * sizeof(float), &e), &e);
    CHECK_OK(kiln_write(d, by, 0, y, n * sizeof(float), &e), &e);
    CHECK_OK(kiln_write(d, by, n * sizeof(float), &sentinel, sizeof sentinel, &e), &e);

    const float alpha = 1.75f;
    kiln_arg args[4] = {{.kind = KILN_ARG_BUF, .buf = bx}, {.kind = KILN_ARG_BUF, .buf = by},
                        {.kind = KILN_ARG_F32, .f32 = alpha}, {.kind = KILN_ARG_U32, .u32 = n}};
    uint32_t grid[3] = {(n + wg - 1) / wg, 1, 1};
    CHECK_OK(d->ops->launch(d, p, grid, args, 4, NULL, &e), &e);
    CHECK_OK(kiln_read(d, by, 0, out, n * sizeof(float), &e), &e);
    int bad = 0;
    for (uint32_t i = 0; i < n; i++) {
        float want = alpha * x[i] + y[i];
        if (fabsf(out[i] - want) > 1e-5f && bad++ < 5)
            CHECK(0, "axpy[%u] = %g, want %g", i, out[i], want);
    }
    CHECK(bad == 0, "%d wrong elements", bad);
    float s = 0;
    CHECK_OK(kiln_read(d, by, n * sizeof(float), &s, sizeof s, &e), &e);
    CHECK(s == sentinel, "element n was overwritten: %g", s);

    /* Two dependent launches queued back to back, no finish in between:
     * y1 = a*x + y0; y2 = a*x + y1 + 2 (second program, BIAS=2). */
    for (uint32_t i = 0; i < n; i++)
        y[i] = out[i];
    CHECK_OK(d->ops->launch(d, p, grid, args, 4, NULL, &e), &e);
    CHECK_OK(d->ops->launch(d, p2, grid, args, 4, NULL, &e), &e);
    CHECK_OK(kiln_read(d, by, 0, out, n * sizeof(float), &e), &e);
    bad = 0;
    for (uint32_t i = 0; i < n; i++) {
        float want = alpha * x[i] + (alpha * x[i] + y[i]) + 2.0f;
        if (fabsf(out[i] - want) > 1e-4f && bad++ < 5)
            CHECK(0, "chained axpy[%u] = %g, want %g", i, out[i], want);
    }
    CHECK(bad == 0, "%d wrong elements after two queued launches", bad);

    /* many queued launches (descriptor pools must grow): 600 x (+alpha*x) */
    CHECK_OK(kiln_write(d, by, 0, y, n * sizeof(float), &e), &e);
    uint32_t small = 4096, sgrid[3] = {small / wg, 1, 1};
    args[3].u32 = small;
    for (int r = 0; r < 600; r++)
        CHECK_OK(d->ops->launch(d, p, sgrid, args, 4, NULL, &e), &e);
    CHECK_OK(kiln_finish(d, &e), &e);
    CHECK_OK(kiln_read(d, by, 0, out, small * sizeof(float), &e), &e);
    bad = 0;
    for (uint32_t i = 0; i < small; i++) {
        float want = y[i];
        for (int r = 0; r < 600; r++)
            want = alpha * x[i] + want;
        if (fabsf(out[i] - want) > 1e-3f * fmaxf(1.0f, fabsf(want)) && bad++ < 5)
            CHECK(0, "600 launches [%u] = %g, want %g", i, out[i], want);
    }
    CHECK(bad == 0, "%d wrong elements after 600 queued launches", bad);

    /* timed launch */
    args[3].u32 = n;
    double ns = 0;
    CHECK_OK(d->ops->launch(d, p, grid, args, 4, &ns, &e), &e);
    CHECK(ns > 0 && ns < 60e9, "timed launch: %g ns", ns);
    fprintf(stderr, "axpy n=%u: %.1f us\n", n, ns / 1e3);

    /* argument checks */
    CHECK(d->ops->launch(d, p, grid, args, 3, NULL, &e) == KILN_E_INVALID, "wrong arg count accepted");
    kiln_arg wrong[4] = {args[0], args[1], {.kind = KILN_ARG_U32, .u32 = 1}, args[3]};
    CHECK(d->ops->launch(d, p, grid, wrong, 4, NULL, &e) == KILN_E_INVALID, "wrong arg kind accepted");
    CHECK(strstr(e.msg, "axpy_test") != NULL, "message names the kernel: %s", e.msg);
out:
    kiln_free(d, bx);
    kiln_free(d, by);
    d->ops->release(d, p);
    d->ops->release(d, p2);
    free(x);
    free(y);
    free(out);
}

static void test_compile_error(kiln_device *d)
{
    kiln_err e = {0};
    kiln_program_desc desc = {.kernel = "broken_kernel", .source = broken_src, .signature = "", .local = {32, 1, 1}};
    kiln_program *p = d->ops->build(d, &desc, &e);
    CHECK(p == NULL, "broken GLSL built");
    CHECK(e.code == KILN_E_COMPILE, "code %d (%s): %s", e.code, kiln_code_name(e.code), e.msg);
    CHECK(strstr(e.msg, "broken_kernel") && strstr(e.msg, "main") && strstr(e.msg, "error"),
          "message lacks kernel/entry/shaderc text: %s", e.msg);
    fprintf(stderr, "compile error message: %s\n", e.msg);
    d->ops->release(d, p);

    /* compile_only works without a device */
    const kiln_backend_impl *bi = kiln_backend_get(KILN_VULKAN);
    CHECK(bi && bi->compile_only, "no compile_only");
    if (bi && bi->compile_only) {
        size_t bytes = 0;
        kiln_define defs[] = {{"BIAS", 0}};
        kiln_program_desc ok = {.kernel = "axpy_test", .source = axpy_src, .signature = "bbfu", .defines = defs,
                                .n_defines = 1, .local = {64, 1, 1}};
        CHECK_OK(bi->compile_only(&ok, "vulkan1.1", &bytes, &e), &e);
        CHECK(bytes > 100 && bytes % 4 == 0, "SPIR-V of %zu bytes", bytes);
        CHECK(bi->compile_only(&desc, NULL, &bytes, &e) == KILN_E_COMPILE, "compile_only accepted broken GLSL");
        CHECK(bi->compile_only(&ok, "sm_90", &bytes, &e) == KILN_E_INVALID, "compile_only accepted arch sm_90");
    }
}

static void test_subgroup_reduce(kiln_device *d)
{
    if (!d->fp.has_subgroup_ops) {
        fprintf(stderr, "no subgroup arithmetic: reduction test skipped\n");
        return;
    }
    kiln_err e = {0};
    const uint32_t wg = 128, n = 100003, groups = (n + wg - 1) / wg;
    kiln_program_desc desc = {.kernel = "reduce_test", .source = reduce_src, .signature = "bbu", .local = {wg, 1, 1}};
    kiln_program *p = d->ops->build(d, &desc, &e);
    CHECK(p, "build reduce: %s", e.msg);
    /* and with an explicit subgroup size = the device default */
    desc.subgroup = d->fp.subgroup_size;
    kiln_program *p2 = d->ops->build(d, &desc, &e);
    CHECK(p2, "build reduce with subgroup %u: %s", desc.subgroup, e.msg);
    desc.subgroup = d->fp.subgroup_max * 4;
    kiln_program *p3 = d->ops->build(d, &desc, &e);
    CHECK(!p3 && e.code == KILN_E_INVALID, "subgroup %u accepted (code %d)", desc.subgroup, e.code);
    d->ops->release(d, p3);

    float *v = malloc(n * sizeof *v), *o = malloc(groups * sizeof *o);
    for (uint32_t i = 0; i < n; i++)
        v[i] = next_f();
    kiln_buffer *bv = kiln_alloc(d, n * sizeof(float), &e), *bo = kiln_alloc(d, groups * sizeof(float), &e);
    CHECK(bv && bo, "alloc: %s", e.msg);
    for (int which = 0; which < 2 && bv && bo; which++) {
        kiln_program *q = which ? p2 : p;
        if (!q)
            continue;
        CHECK_OK(kiln_write(d, bv, 0, v, n * sizeof(float), &e), &e);
        CHECK_OK(d->ops->fill(d, bo, 0xFF, groups * sizeof(float), &e), &e); /* poison: NaN */
        kiln_arg args[3] = {{.kind = KILN_ARG_BUF, .buf = bv}, {.kind = KILN_ARG_BUF, .buf = bo},
                            {.kind = KILN_ARG_U32, .u32 = n}};
        uint32_t grid[3] = {groups, 1, 1};
        CHECK_OK(d->ops->launch(d, q, grid, args, 3, NULL, &e), &e);
        CHECK_OK(kiln_read(d, bo, 0, o, groups * sizeof(float), &e), &e);
        int bad = 0;
        for (uint32_t g = 0; g < groups; g++) {
            double want = 0;
            for (uint32_t i = g * wg; i < (g + 1) * wg && i < n; i++)
                want += v[i];
            if (!(fabs(o[g] - want) <= 1e-4) && bad++ < 5)
                CHECK(0, "reduce (program %d) group %u = %g, want %g", which, g, o[g], want);
        }
        CHECK(bad == 0, "%d wrong sums", bad);
    }
    kiln_free(d, bv);
    kiln_free(d, bo);
    d->ops->release(d, p);
    d->ops->release(d, p2);
    free(v);
    free(o);
}

int main(void)
{
    kiln_backend_status st;
    kiln_backend_probe(KILN_VULKAN, &st);
    if (!st.available) {
        if (test_backend_required("vulkan")) {
            fprintf(stderr, "vulkan is required but unavailable: %s\n", st.reason);
            return 1;
        }
        KILN_SKIP("vulkan unavailable: %s", st.reason);
    }
    kiln_err e = {0};
    kiln_device *d = NULL;
    int rc = kiln_device_open(KILN_VULKAN, 0, &d, &e);
    if (rc) {
        if (test_backend_required("vulkan") || rc != KILN_E_UNAVAILABLE) {
            fprintf(stderr, "opening vulkan:0 failed: %s\n", e.msg);
            return 1;
        }
        KILN_SKIP("vulkan:0: %s", e.msg);
    }
    /* selection by backend name and by device name reach the same device */
    kiln_device *s = NULL;
    CHECK_OK(kiln_device_select("vulkan", &s, &e), &e);
    CHECK(s && s->backend == KILN_VULKAN && strcmp(s->fp.name, d->fp.name) == 0, "select vulkan");
    kiln_device_close(s);

    test_fingerprint(d);
    test_memory(d);
    test_axpy(d);
    test_compile_error(d);
    test_subgroup_reduce(d);
    kiln_device_close(d);
    return test_result();
}
