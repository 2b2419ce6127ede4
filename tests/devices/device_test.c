/* tests/devices/device_test.c BACKEND - the device interface on the cpu or
 * opencl backend: memory round trips on random bytes, bounds errors, fill,
 * timed copy, a real program (axpy over an odd size, every element
 * checked), a timed launch, compile errors and signature mismatches. */
#include <math.h>

#include "devices/device.h"
#include "tests/test.h"
#include "util/rng.h"

static const char *axpy_cl = "__kernel void axpy(__global const float *x, __global float *y, float a, uint n)\n"
                             "{ uint i = get_global_id(0); if (i < n) y[i] = a * x[i] + y[i]; }\n";

static void axpy_cpu(const kiln_cpu_launch *l, uint32_t b, uint32_t e)
{
    const float *x = l->ptr[0];
    float *y = l->ptr[1];
    float a = l->arg[2].f32;
    uint32_t n = l->arg[3].u32;
    for (uint32_t g = b; g < e; g++)
        for (uint32_t i = g * l->local[0]; i < (g + 1) * l->local[0] && i < n; i++)
            y[i] = a * x[i] + y[i];
}

/* out[g] = 1000 * threads of the launch + the thread that ran workgroup g */
static void who_cpu(const kiln_cpu_launch *l, uint32_t b, uint32_t e)
{
    uint32_t *out = l->ptr[0];
    for (uint32_t g = b; g < e; g++)
        out[g] = 1000 * l->n_threads + l->thread;
}

/* kiln_device_set_threads: the cpu backend runs launches on at most n
 * threads (then all again with 0); other backends refuse. */
static void check_thread_cap(kiln_device *d)
{
    kiln_err e = {0};
    if (d->backend != KILN_CPU) {
        CHECK(kiln_device_set_threads(d, 1, &e) == KILN_E_INVALID, "set_threads on %s must be refused",
              kiln_backend_name(d->backend));
        return;
    }
    enum { WG = 257 };
    kiln_program_desc desc = {.kernel = "who", .entry = "who", .cpu_fn = who_cpu, .signature = "b", .local = {1, 1, 1}};
    kiln_program *p = d->ops->build(d, &desc, &e);
    kiln_buffer *b = kiln_alloc(d, 4 * WG, &e);
    CHECK(p && b, "who: %s", e.msg);
    if (!p || !b)
        return;
    uint32_t out[WG], grid[3] = {WG, 1, 1};
    kiln_arg arg = {.kind = KILN_ARG_BUF, .buf = b};
    uint32_t all = d->fp.compute_units ? d->fp.compute_units : 1, caps[3] = {1, 2, 0};
    for (int c = 0; c < 3; c++) {
        CHECK_OK(kiln_device_set_threads(d, caps[c], &e), &e);
        CHECK_OK(d->ops->launch(d, p, grid, &arg, 1, NULL, &e), &e);
        CHECK_OK(kiln_read(d, b, 0, out, sizeof out, &e), &e);
        uint32_t want = caps[c] && caps[c] < all ? caps[c] : 0; /* 0: not more than the pool */
        for (int g = 0; g < WG; g++) {
            uint32_t n = out[g] / 1000, t = out[g] % 1000;
            if (want ? n != want || t >= want : n > all || t >= n) {
                CHECK(0, "cap %u: workgroup %d ran as thread %u of %u (pool %u)", caps[c], g, t, n, all);
                break;
            }
        }
    }
    kiln_free(d, b);
    d->ops->release(d, p);
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "cpu";
    kiln_backend_kind be;
    if (kiln_backend_parse(name, &be))
        return 2;
    kiln_backend_status st;
    kiln_backend_probe(be, &st);
    if (!st.available) {
        CHECK(!test_backend_required(name), "%s required but unavailable: %s", name, st.reason);
        if (!test_failures)
            KILN_SKIP("%s unavailable: %s", name, st.reason);
        return test_result();
    }
    kiln_err e = {0};
    kiln_device *d;
    CHECK_OK(kiln_device_open(be, 0, &d, &e), &e);
    if (test_failures)
        return test_result();
    kiln_rng rng;
    kiln_rng_seed(&rng, 42);

    /* memory */
    size_t n = 1000003;
    unsigned char *a = malloc(n), *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        a[i] = (unsigned char)kiln_rng_u64(&rng);
    kiln_buffer *x = kiln_alloc(d, n, &e), *y = kiln_alloc(d, n, &e);
    CHECK(x && y, "alloc: %s", e.msg);
    CHECK_OK(kiln_write(d, x, 0, a, n, &e), &e);
    CHECK_OK(kiln_read(d, x, 0, b, n, &e), &e);
    CHECK(!memcmp(a, b, n), "round trip differs");
    CHECK(kiln_write(d, x, n - 10, a, 11, &e) == KILN_E_INVALID, "write past the end must fail");
    CHECK(kiln_read(d, x, n + 1, b, 1, &e) == KILN_E_INVALID, "read past the end must fail");
    CHECK_OK(d->ops->fill(d, y, 0x3c, n, &e), &e);
    CHECK_OK(kiln_read(d, y, 0, b, n, &e), &e);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += b[i] != 0x3c;
    CHECK(bad == 0, "fill left %zu bytes", bad);
    double ns = 0;
    CHECK_OK(d->ops->copy(d, y, x, n, &ns, &e), &e);
    CHECK_OK(kiln_read(d, y, 0, b, n, &e), &e);
    CHECK(!memcmp(a, b, n) && ns > 0, "timed copy: equal %d, ns %.0f", !memcmp(a, b, n), ns);
    kiln_free(d, x);
    kiln_free(d, y);

    /* a real program: y = a x + y over an odd size */
    uint32_t m = 100003;
    float *hx = malloc(4 * m), *hy = malloc(4 * m), *out = malloc(4 * m);
    for (uint32_t i = 0; i < m; i++) {
        hx[i] = kiln_rng_normal(&rng);
        hy[i] = kiln_rng_normal(&rng);
    }
    x = kiln_alloc(d, 4 * m, &e);
    y = kiln_alloc(d, 4 * m, &e);
    kiln_write(d, x, 0, hx, 4 * m, &e);
    kiln_write(d, y, 0, hy, 4 * m, &e);
    kiln_program_desc desc = {.kernel = "axpy", .entry = "axpy", .source = axpy_cl, .cpu_fn = axpy_cpu,
                              .signature = "bbfu", .local = {64, 1, 1}};
    kiln_program *p = d->ops->build(d, &desc, &e);
    CHECK(p != NULL, "build: %s", e.msg);
    if (p) {
        kiln_arg args[4] = {{.kind = KILN_ARG_BUF, .buf = x}, {.kind = KILN_ARG_BUF, .buf = y},
                            {.kind = KILN_ARG_F32, .f32 = 1.5f}, {.kind = KILN_ARG_U32, .u32 = m}};
        uint32_t grid[3] = {(m + 63) / 64, 1, 1};
        CHECK_OK(d->ops->launch(d, p, grid, args, 4, NULL, &e), &e);
        ns = 0;
        CHECK_OK(d->ops->launch(d, p, grid, args, 4, &ns, &e), &e); /* applied twice */
        CHECK(ns > 0, "timed launch returned %.0f ns", ns);
        CHECK_OK(kiln_finish(d, &e), &e);
        CHECK_OK(kiln_read(d, y, 0, out, 4 * m, &e), &e);
        size_t wrong = 0;
        for (uint32_t i = 0; i < m; i++)
            wrong += fabsf(out[i] - (hy[i] + 3.0f * hx[i])) > 1e-5f * (1 + fabsf(hy[i]) + 3 * fabsf(hx[i]));
        CHECK(wrong == 0, "axpy: %zu of %u elements wrong", wrong, m);
        /* wrong argument count / kind */
        CHECK(d->ops->launch(d, p, grid, args, 3, NULL, &e) == KILN_E_INVALID, "3 args for 'bbfu' must fail");
        kiln_arg swapped[4] = {args[0], args[1], args[3], args[2]};
        CHECK(d->ops->launch(d, p, grid, swapped, 4, NULL, &e) == KILN_E_INVALID, "u for f must fail");
        d->ops->release(d, p);
    }
    check_thread_cap(d);
    /* a program that cannot build */
    kiln_program_desc broken = desc;
    broken.source = "__kernel void axpy(__global float *x) { x[0] = ; }";
    broken.cpu_fn = NULL;
    kiln_err ce = {0};
    kiln_program *bp = d->ops->build(d, &broken, &ce);
    CHECK(bp == NULL && ce.code == KILN_E_COMPILE && strstr(ce.msg, "axpy"), "broken build: code %d msg %s", ce.code,
          ce.msg);
    kiln_free(d, x);
    kiln_free(d, y);
    kiln_device_close(d);
    free(a);
    free(b);
    free(hx);
    free(hy);
    free(out);
    fprintf(stderr, "%s: device interface ok\n", name);
    return test_result();
}
