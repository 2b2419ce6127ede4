/* tests/kernels/gemm_test.c - gemm_int4 (the prefill gemm) against its reference.
 *
 * 1. Problems: every CHECK/TUNE/QUICK shape is valid with the default config
 *    on cpu/opencl/vulkan/cuda-like fingerprints; inputs are never all zero;
 *    the reference (rows dequantized once, double accumulation) equals
 *    kiln_gemv_reference run token by token; the space's constraints
 *    (rows*tokens <= 32, shared memory, vec | group words, no subgroup
 *    reduce on OpenCL, gpu-only parameters on the cpu) reject with reasons.
 * 2. Host execution of the cpu plan with the CPU entries (no device):
 *    QUICK shapes + odd-N ones x (default + corners + hand-picked configs
 *    valid on the cpu): pass; with KILN_TEST_BREAK=1: caught. Run under
 *    KILN_CPU_ISA=avx2 / scalar by meson too.
 * 3. Through the runner on every available backend ($GEMM_BACKENDS, comma
 *    list, default cpu,opencl,vulkan): the same shapes x configs pass, and
 *    KILN_BUILD_TEST_BREAK is caught (cpu: default + corners; opencl/vulkan:
 *    the default; their configs thinned on every other shape). A backend
 *    that is not available is skipped unless $KILN_REQUIRE_BACKENDS names it.
 * 4. Timing (reported, not asserted; skipped when $GEMM_NO_TIMING is set):
 *    on the cpu backend, gemm 4096x4096 n=64 q4f16_1 vs 64 gemv_int4 runs of
 *    the same weights (one per token, bound at byte offsets like the engine). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm_int4/gemm_int4.h"
#include "kernels/gemv_int4/gemv_int4.h"
#include "kernels/kernel.h"
#include "kernels/runner.h"
#include "tests/test.h"
#include "util/rng.h"

#define MAX_CFG 48
#define MAX_SHAPES 64

/* Hand-picked configs (JSON; those not in the space fail the test). */
static const char *const extra_configs[] = {
    "{\"wg\":32,\"rows\":8,\"tokens\":4,\"vec\":4,\"unroll\":2}", /* 32 accumulators, widest loads */
    "{\"wg\":256,\"rows\":4,\"tokens\":8,\"vec\":2,\"reduce\":1}", /* 32 accumulators x 256 threads */
    "{\"wg\":128,\"rows\":1,\"tokens\":1,\"unroll\":2}",
    "{\"rows\":8,\"tokens\":8}", /* cpu only (64 accumulators > 32 on gpus) */
    "{\"rows\":1,\"tokens\":2}",
    "{\"rows\":4,\"tokens\":1}",
    "{\"layout\":1,\"wg\":32,\"tokens\":8}", /* one invocation per row (gpu backends) */
    "{\"layout\":1,\"wg\":128,\"tokens\":1}",
    "{\"act\":1,\"rows\":16,\"tokens\":8}", /* int8 activations (cpu, act=q8 shapes): every token block */
    "{\"act\":1,\"rows\":32,\"tokens\":2}",
    "{\"act\":1,\"rows\":16,\"tokens\":1}",
};
#define N_EXTRA ((int)(sizeof extra_configs / sizeof extra_configs[0]))

static int test_configs(const kiln_kernel *k, kiln_config *out)
{
    int n = 0;
    kiln_config_default(k, &out[n++]);
    n += kiln_config_corners(k, out + n, MAX_CFG - n - N_EXTRA);
    for (int i = 0; i < N_EXTRA && n < MAX_CFG; i++) {
        kiln_err e = {0};
        if (kiln_config_from_json(k, extra_configs[i], &out[n], &e) == 0)
            n++;
        else
            CHECK(0, "bad test config %s: %s", extra_configs[i], e.msg);
    }
    return n;
}

/* QUICK shapes plus a few odd-N ones (N = 1, N prime, N > 8 not a multiple of any token block). */
static int test_shapes(const kiln_kernel *k, kiln_shape *out)
{
    int n = k->shapes(KILN_SHAPES_QUICK, out, MAX_SHAPES - 9);
    /* f32 activations over interleaved matrices (a gpu engine whose gemv
     * winner repacked them): M not a multiple of the tile, K of the group */
    out[n++] = (kiln_shape){.m = 37, .k = 200, .n = 5, .quant = KILN_Q4_1, .group = 32, .ilv = 8};
    out[n++] = (kiln_shape){.m = 21, .k = 136, .n = 3, .quant = KILN_Q8_0, .group = 32, .ilv = 4};
    /* int8 activations allowed: odd N, an interleaved matrix, q8_0 */
    out[n++] = (kiln_shape){.m = 45, .k = 160, .n = 13, .quant = KILN_Q4_1, .group = 32, .act = KILN_ACT_Q8};
    out[n++] = (kiln_shape){.m = 50, .k = 136, .n = 7, .quant = KILN_Q4F16_1, .group = 128, .ilv = 16,
                            .act = KILN_ACT_Q8};
    out[n++] = (kiln_shape){.m = 33, .k = 100, .n = 9, .quant = KILN_Q8_0, .group = 32, .act = KILN_ACT_Q8};
    out[n++] = (kiln_shape){.m = 45, .k = 160, .n = 1, .quant = KILN_Q4F16_1, .group = 32};
    out[n++] = (kiln_shape){.m = 17, .k = 264, .n = 11, .quant = KILN_Q4_1, .group = 128};
    out[n++] = (kiln_shape){.m = 9, .k = 70, .n = 13, .quant = KILN_Q8_0, .group = 32};
    out[n++] = (kiln_shape){.m = 5, .k = 33, .n = 2, .quant = KILN_F16, .group = 0};
    return n;
}

static int backend_wanted(const char *name)
{
    const char *sel = getenv("GEMM_BACKENDS");
    if (!sel || !*sel)
        return 1;
    size_t n = strlen(name);
    for (const char *p = sel; (p = strstr(p, name)); p += n)
        if ((p == sel || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return 1;
    return 0;
}

static void test_problems(const kiln_kernel *k)
{
    kiln_shape shapes[MAX_SHAPES];
    for (int which = 0; which < 3; which++) {
        int n = k->shapes(which, shapes, MAX_SHAPES);
        CHECK(n > 0 && n < MAX_SHAPES, "%d shapes for list %d", n, which);
        for (int b = 0; b < 4; b++) {
            kiln_fingerprint fp = {.backend = (kiln_backend_kind)b, .max_workgroup = 256, .subgroup_size = b == 3 ? 32 : 8,
                                   .has_subgroup_ops = b >= 2, .local_mem_bytes = 32768};
            for (int i = 0; i < n; i++) {
                kiln_config c;
                kiln_config_default(k, &c);
                char why[256] = "";
                /* interleaved matrices (gemv's winners' layouts): every
                 * backend reads them (the gpu sources through ILV) */
                int want = 1;
                CHECK(k->config_valid(&shapes[i], &c, &fp, why, sizeof why) == want,
                      "shape %d (list %d) default %s on %s: %s", i, which, want ? "invalid" : "valid",
                      kiln_backend_name(fp.backend), why);
                CHECK(shapes[i].n >= 1, "shape %d (list %d) has no tokens", i, which);
            }
        }
    }
    /* the space's constraints */
    kiln_shape s = {.m = 64, .k = 256, .n = 4, .quant = KILN_Q4F16_1, .group = 32};
    kiln_fingerprint gpu = {.backend = KILN_VULKAN, .max_workgroup = 256, .subgroup_size = 8, .has_subgroup_ops = 1,
                            .local_mem_bytes = 16384};
    kiln_fingerprint ocl = gpu, cpu = {.backend = KILN_CPU};
    ocl.backend = KILN_OPENCL;
    struct {
        const char *json;
        const kiln_fingerprint *fp;
        int valid;
    } cases[] = {
        {"{\"rows\":8,\"tokens\":8}", &gpu, 0},           /* 64 accumulators */
        {"{\"rows\":8,\"tokens\":8}", &cpu, 1},           /* cpu: rows per task, token block */
        {"{\"wg\":256,\"rows\":8,\"tokens\":4}", &gpu, 0}, /* 32 KiB shared > 16 KiB */
        {"{\"wg\":128,\"rows\":8,\"tokens\":4}", &gpu, 1}, /* 16 KiB */
        {"{\"reduce\":1}", &ocl, 0},
        {"{\"reduce\":1}", &gpu, 1},
        {"{\"wg\":128}", &cpu, 0},
        {"{\"vec\":4}", &cpu, 0},
        {"{\"layout\":1}", &cpu, 0},                    /* the cpu backend has its own loop */
        {"{\"layout\":1,\"tokens\":8,\"wg\":256}", &gpu, 1}, /* no shared array in layout 1 */
        {"{\"layout\":1,\"rows\":2}", &ocl, 0},         /* one row per invocation */
        {"{\"layout\":1,\"reduce\":1}", &gpu, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kiln_config c;
        kiln_err e = {0};
        CHECK_OK(kiln_config_from_json(k, cases[i].json, &c, &e), &e);
        char why[256] = "";
        int v = k->config_valid(&s, &c, cases[i].fp, why, sizeof why);
        CHECK(v == cases[i].valid, "%s on %s: valid %d (%s)", cases[i].json, kiln_backend_name(cases[i].fp->backend), v,
              why);
        CHECK(v || why[0], "%s: rejected without a reason", cases[i].json);
    }
    kiln_shape q4k = {.m = 8, .k = 256, .n = 1, .quant = KILN_Q8_0, .group = 32}; /* 8 words per group */
    kiln_config c;
    kiln_config_default(k, &c);
    kiln_config_set(k, &c, "vec", 4);
    char why[256];
    CHECK(k->config_valid(&q4k, &c, &gpu, why, sizeof why), "vec 4 with 8 words per group: %s", why);
    q4k.quant = KILN_Q4_0; /* 4 words per group of 32: vec 4 divides */
    CHECK(k->config_valid(&q4k, &c, &gpu, why, sizeof why), "vec 4 with 4 words per group: %s", why);

    /* device defaults where the driver runs on CPU cores: gemm one
     * invocation per row on PoCL only; gemv one work-item per 16-row tile on PoCL (layout 4)
     * and `rows` rows per invocation with wide loads on lavapipe (layout 2,
     * bench/results/gpu-gemv.md); all valid there */
    const kiln_kernel *gv = kiln_kernel_find("gemv_int4");
    kiln_fingerprint pocl = ocl, lvp = gpu, cpu_b = cpu;
    pocl.cpu_device = lvp.cpu_device = cpu_b.cpu_device = 1;
    struct {
        const kiln_kernel *k;
        const kiln_fingerprint *fp;
        int layout;
    } defs[] = {{k, &pocl, 1}, {k, &lvp, 0}, {k, &gpu, 0}, {k, &cpu_b, 0},
                {gv, &pocl, 4}, {gv, &lvp, 2}, {gv, &ocl, 0}, {gv, &cpu_b, 0}};
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        kiln_config_default_for(defs[i].k, defs[i].fp, &s, &c);
        int layout = kiln_config_get(defs[i].k, &c, "layout", -1);
        CHECK(layout == defs[i].layout, "%s default on %s (cpu_device %u): layout %d, want %d", defs[i].k->name,
              kiln_backend_name(defs[i].fp->backend), defs[i].fp->cpu_device, layout, defs[i].layout);
        CHECK(defs[i].k->config_valid(&s, &c, defs[i].fp, why, sizeof why), "%s device default invalid on %s: %s",
              defs[i].k->name, kiln_backend_name(defs[i].fp->backend), why);
    }
    /* a device default that does not fit the shape gives way to the space's:
     * rmsnorm's float4 loads on CPU drivers need n % 4 == 0 */
    const kiln_kernel *rms = kiln_kernel_find("rmsnorm");
    kiln_shape row576 = {.m = 1, .k = 576}, row577 = {.m = 1, .k = 577};
    kiln_config_default_for(rms, &lvp, &row576, &c);
    CHECK(kiln_config_get(rms, &c, "vec", 0) == 4, "rmsnorm n 576 on lavapipe: vec %d", kiln_config_get(rms, &c, "vec", 0));
    kiln_config_default_for(rms, &lvp, &row577, &c);
    CHECK(kiln_config_get(rms, &c, "vec", 0) == 1 && rms->config_valid(&row577, &c, &lvp, why, sizeof why),
          "rmsnorm n 577 on lavapipe: vec %d (%s)", kiln_config_get(rms, &c, "vec", 0), why);
    kiln_config_default_for(rms, &gpu, &row576, &c);
    CHECK(kiln_config_get(rms, &c, "vec", 0) == 1, "rmsnorm on a gpu: vec %d", kiln_config_get(rms, &c, "vec", 0));

    /* reference vs gemv_int4's, token by token; inputs never all zero */
    int n = test_shapes(k, shapes);
    for (int i = 0; i < n; i++) {
        kiln_problem p;
        kiln_err e = {0};
        CHECK_OK(k->problem_init(&p, &shapes[i], 3 + (uint64_t)i, &e), &e);
        CHECK(p.n_bufs == 5, "%d buffers", p.n_bufs);
        for (int b = 0; b < p.n_bufs; b++)
            if (p.bufs[b].host && p.bufs[b].bytes >= 4) {
                const uint8_t *h = p.bufs[b].host;
                size_t nz = 0;
                for (size_t j = 0; j < p.bufs[b].bytes; j++)
                    nz += h[j] != 0;
                CHECK(nz > 0, "shape %d: input %s is all zeros", i, p.bufs[b].name);
            }
        const kiln_shape *sh = &shapes[i];
        if (sh->ilv > 1) { /* interleaved weights: their layout is gemv_q8_test's business */
            kiln_problem_free(&p);
            continue;
        }
        const float *x = p.bufs[3].host;
        CHECK(p.bufs[3].bytes == (size_t)(sh->n * sh->k * 4), "x bytes %zu", p.bufs[3].bytes);
        CHECK(p.bufs[4].bytes == (size_t)(sh->n * sh->m * 4), "y bytes %zu", p.bufs[4].bytes);
        kiln_qmatrix q;
        CHECK_OK(kiln_qmatrix_alloc(&q, sh->quant, sh->group, sh->m, sh->k, &e), &e);
        memcpy(q.qs, p.bufs[0].host, kiln_qmatrix_qs_bytes(&q));
        if (q.scales)
            memcpy(q.scales, p.bufs[1].host, kiln_qmatrix_scale_bytes(&q));
        if (q.mins)
            memcpy(q.mins, p.bufs[2].host, kiln_qmatrix_scale_bytes(&q));
        float *yt = malloc(sizeof *yt * (size_t)sh->m);
        const float *want = p.bufs[4].expect;
        double worst = 0;
        for (int64_t t = 0; t < sh->n; t++) {
            kiln_gemv_reference(&q, x + t * sh->k, yt);
            for (int64_t r = 0; r < sh->m; r++) {
                double d = fabs((double)yt[r] - want[t * sh->m + r]) / (fabs((double)yt[r]) + 1e-30);
                worst = d > worst ? d : worst;
            }
        }
        CHECK(worst < 1e-6, "shape %d: reference differs from gemv per token by %g (relative)", i, worst);
        free(yt);
        kiln_qmatrix_free(&q);
        kiln_problem_free(&p);
    }
    /* bytes/flops */
    kiln_shape big = {.m = 4096, .k = 4096, .n = 64, .quant = KILN_Q4F16_1, .group = 32};
    CHECK(k->flops(&big) == 2.0 * 4096 * 4096 * 64, "flops %g", k->flops(&big));
    double want_bytes = 4096.0 * 512 * 4 + 4096.0 * 128 * 2 + 64.0 * 4096 * 4 * 2;
    CHECK(k->bytes(&big) == want_bytes, "bytes %g want %g", k->bytes(&big), want_bytes);
}

/* Runs the cpu plan on the host with the CPU entries, as the cpu backend
 * would with two worker threads (workgroups [0, n/2) and [n/2, n)). */
static int host_run(const kiln_kernel *k, const kiln_shape *s, const kiln_config *c, const kiln_problem *p, int brk,
                    kiln_verify_result *r)
{
    kiln_plan plan;
    kiln_err e = {0};
    if (k->plan(s, c, KILN_CPU, &plan, &e)) {
        CHECK(0, "plan: %s", e.msg);
        return -1;
    }
    if (kiln_data_class(k, s, c) != 0)
        return 1; /* act 1 (two steps and a scratch buffer): verified through the device below */
    CHECK(plan.n_steps == 1 && plan.n_scratch == 0, "%d steps %d scratch", plan.n_steps, plan.n_scratch);
    void *slot[KILN_MAX_BUFS] = {0};
    for (int i = 0; i < p->n_bufs; i++) {
        const kiln_problem_buf *b = &p->bufs[i];
        slot[i] = malloc(b->bytes ? b->bytes : 1);
        if (b->host)
            memcpy(slot[i], b->host, b->bytes);
        else
            memset(slot[i], 0xFF, b->bytes);
    }
    kiln_plan_step *st = &plan.steps[0];
    if (brk)
        kiln_plan_define(st, "KILN_TEST_BREAK", 1);
    kiln_cpu_fn fn = kiln_cpu_kernel_find(st->entry);
    CHECK(fn != NULL, "no cpu entry %s", st->entry);
    CHECK(!strcmp(st->signature, "bbbbbuuuuu") && st->n_args == 10, "signature %s, %d args", st->signature,
          st->n_args);
    int rc = fn && st->n_args == 10 ? 0 : -1;
    if (!rc) {
        kiln_cpu_launch l = {.n_args = st->n_args, .defines = st->defines, .n_defines = st->n_defines,
                             .n_threads = 1, .isa = test_cpu_isa()};
        for (int a = 0; a < st->n_args; a++) {
            kiln_plan_arg *pa = &st->args[a];
            if (pa->kind == KILN_PA_SLOT) {
                l.ptr[a] = slot[pa->index];
                l.arg[a].kind = KILN_ARG_BUF;
            } else {
                l.arg[a] = (kiln_arg){.kind = KILN_ARG_U32, .u32 = pa->u32};
            }
        }
        CHECK(l.arg[5].u32 == s->m && l.arg[6].u32 == s->k && l.arg[9].u32 == s->n, "scalars M %u K %u N %u",
              l.arg[5].u32, l.arg[6].u32, l.arg[9].u32);
        for (int d = 0; d < 3; d++) {
            l.grid[d] = st->grid[d] ? st->grid[d] : 1;
            l.local[d] = st->local[d] ? st->local[d] : 1;
        }
        uint32_t total = l.grid[0] * l.grid[1] * l.grid[2];
        fn(&l, 0, total / 2);
        fn(&l, total / 2, total);
        kiln_compare_outputs(p, slot, r);
    }
    for (int i = 0; i < p->n_bufs; i++)
        free(slot[i]);
    return rc;
}

static void test_host(const kiln_kernel *k)
{
    kiln_fingerprint fp = {.backend = KILN_CPU};
    kiln_shape shapes[MAX_SHAPES];
    int ns = test_shapes(k, shapes);
    kiln_config cfgs[MAX_CFG];
    int nc = test_configs(k, cfgs);
    int ran = 0;
    for (int si = 0; si < ns; si++) {
        kiln_problem p;
        kiln_err e = {0};
        CHECK_OK(k->problem_init(&p, &shapes[si], 1234 + (uint64_t)si, &e), &e);
        for (int ci = 0; ci < nc; ci++) {
            char why[256], js[256], key[128];
            if (!k->config_valid(&shapes[si], &cfgs[ci], &fp, why, sizeof why) ||
                kiln_data_class(k, &shapes[si], &cfgs[ci]) != 0) /* act 1: through the device below */
                continue;
            kiln_config_to_json(k, &cfgs[ci], js, sizeof js);
            k->shape_key(&shapes[si], key, sizeof key);
            kiln_verify_result r;
            if (host_run(k, &shapes[si], &cfgs[ci], &p, 0, &r) == 0)
                CHECK(r.ok, "host %s %s: err %g budget %g %s", key, js, r.err, r.budget, r.detail);
            if (host_run(k, &shapes[si], &cfgs[ci], &p, 1, &r) == 0)
                CHECK(!r.ok, "host %s %s: KILN_TEST_BREAK not caught (err %g)", key, js, r.err);
            ran++;
        }
        kiln_problem_free(&p);
    }
    CHECK(ran >= ns * 5, "only %d host runs", ran);
    const char *isa = getenv("KILN_CPU_ISA");
    printf("host (isa %s): %d configs x shapes verified\n", isa ? isa : "best", ran);
}

static void test_backend(const kiln_kernel *k, kiln_backend_kind be)
{
    const char *bname = kiln_backend_name(be);
    if (!backend_wanted(bname))
        return;
    kiln_backend_status st = {0};
    kiln_backend_probe(be, &st);
    kiln_device *d = NULL;
    kiln_err e = {0};
    if (!st.available || kiln_device_open(be, 0, &d, &e)) {
        CHECK(!test_backend_required(bname), "%s required but unavailable: %s %s", bname, st.reason, e.msg);
        printf("%s: skipped (%s%s)\n", bname, st.reason, e.msg);
        return;
    }
    kiln_progcache *cache = kiln_progcache_new(d);
    kiln_shape shapes[MAX_SHAPES];
    int ns = test_shapes(k, shapes);
    kiln_config cfgs[MAX_CFG];
    int nc = test_configs(k, cfgs);
    int n_corner = 1 + kiln_config_corners(k, (kiln_config[MAX_CFG]){0}, MAX_CFG);
    int ran = 0, caught = 0;
    for (int si = 0; si < ns; si++) {
        /* configs of each data class (act 1: the reference over rounded x) on
         * that class's problem */
        for (int cls = 0; cls < 2; cls++) {
        kiln_problem p;
        kiln_problem_dev pd = {0};
        CHECK_OK(kiln_problem_make(k, &p, &shapes[si], cls, 99 + (uint64_t)si, &e), &e);
        CHECK_OK(kiln_problem_upload(d, &p, &pd, &e), &e);
        for (int ci = 0; ci < nc; ci++) {
            char why[256], js[256], key[128];
            if (kiln_data_class(k, &shapes[si], &cfgs[ci]) != cls ||
                !k->config_valid(&shapes[si], &cfgs[ci], &d->fp, why, sizeof why))
                continue;
            kiln_config_to_json(k, &cfgs[ci], js, sizeof js);
            k->shape_key(&shapes[si], key, sizeof key);
            /* GPU compiles are the cost: every config on every other shape, the
             * default + the hand-picked ones elsewhere; the planted bug with the
             * default (kiln check --break covers more); the cpu runs them all */
            int gpu = be != KILN_CPU, first_extra = nc - N_EXTRA;
            if (gpu && si % 2 && ci > 0 && (ci < first_extra || ci >= first_extra + 3))
                continue;
            int n_brk = ci == 0 || (!gpu && ci < n_corner) ? 2 : 1;
            for (int brk = 0; brk < n_brk; brk++) {
                kiln_variant v;
                kiln_err ve = {0};
                int rc = kiln_variant_build(&v, d, k, &shapes[si], &cfgs[ci], brk ? KILN_BUILD_TEST_BREAK : 0, cache,
                                            &ve);
                CHECK(rc == 0, "%s build %s %s: %s", bname, key, js, ve.msg);
                if (rc)
                    continue;
                kiln_verify_result r;
                rc = kiln_verify(&v, &p, &pd, &r, &ve);
                CHECK(rc == 0, "%s run %s %s: %s", bname, key, js, ve.msg);
                if (rc == 0 && !brk)
                    CHECK(r.ok && r.unwritten == 0, "%s %s %s: err %g budget %g %s", bname, key, js, r.err, r.budget,
                          r.detail);
                if (rc == 0 && brk) {
                    CHECK(!r.ok, "%s %s %s: KILN_TEST_BREAK not caught", bname, key, js);
                    caught += !r.ok;
                }
                kiln_variant_release(&v);
            }
            ran++;
        }
        kiln_problem_dev_free(&pd);
        kiln_problem_free(&p);
        }
    }
    /* every shape runs on every backend (interleaved matrices too: the gpu
     * sources read them through ILV) */
    int runnable = ns;
    CHECK(ran >= runnable * 3 && caught >= runnable, "%s: only %d runs, %d caught (%d shapes)", bname, ran, caught,
          runnable);
    printf("%s: %d configs x shapes verified, planted bug caught %d times\n", bname, ran, caught);
    kiln_progcache_free(cache);
    kiln_device_close(d);
}

/* Best of `reps` device-timed runs, in ms. */
static double best_ms(kiln_variant *v, kiln_buffer *const *slots, const size_t *offs, int reps)
{
    double best = INFINITY;
    for (int i = 0; i < reps; i++) {
        double ns = 0;
        kiln_err e = {0};
        if (kiln_variant_run_at(v, slots, offs, &ns, &e)) {
            CHECK(0, "timing run: %s", e.msg);
            return NAN;
        }
        best = ns < best ? ns : best;
    }
    return best / 1e6;
}

static void test_timing(const kiln_kernel *k)
{
    if (getenv("GEMM_NO_TIMING") || !backend_wanted("cpu"))
        return;
    kiln_device *d = NULL;
    kiln_err e = {0};
    if (kiln_device_open(KILN_CPU, 0, &d, &e)) {
        printf("timing: cpu device: %s\n", e.msg);
        return;
    }
    const kiln_kernel *gv = kiln_kernel_find("gemv_int4");
    const int M = 4096, K = 4096, N = 64;
    kiln_shape gs = {.m = M, .k = K, .n = N, .quant = KILN_Q4F16_1, .group = 32};
    kiln_shape vs = gs;
    vs.n = 0;
    /* weights from gemv's problem (cheap reference); x and y for N tokens */
    kiln_problem p;
    CHECK_OK(gv->problem_init(&p, &vs, 7, &e), &e);
    kiln_buffer *slots[5] = {0};
    float *x = malloc(sizeof *x * (size_t)N * K);
    kiln_rng rng;
    kiln_rng_seed(&rng, 5);
    for (size_t i = 0; i < (size_t)N * K; i++)
        x[i] = kiln_rng_normal(&rng);
    for (int i = 0; i < 3; i++) {
        slots[i] = kiln_alloc(d, p.bufs[i].bytes, &e);
        if (slots[i])
            kiln_write(d, slots[i], 0, p.bufs[i].host, p.bufs[i].bytes, &e);
    }
    slots[3] = kiln_alloc(d, sizeof *x * (size_t)N * K, &e);
    slots[4] = kiln_alloc(d, sizeof(float) * (size_t)N * M, &e);
    if (slots[3])
        kiln_write(d, slots[3], 0, x, sizeof *x * (size_t)N * K, &e);
    int ok = slots[0] && slots[1] && slots[2] && slots[3] && slots[4];
    CHECK(ok, "timing buffers: %s", e.msg);
    const char *cfgs[] = {"{}", "{\"rows\":2,\"tokens\":8}", "{\"rows\":8,\"tokens\":8}", "{\"rows\":4,\"tokens\":2}"};
    double gemm_best = INFINITY;
    for (size_t i = 0; ok && i < sizeof cfgs / sizeof cfgs[0]; i++) {
        kiln_config c;
        kiln_variant v;
        CHECK_OK(kiln_config_from_json(k, cfgs[i], &c, &e), &e);
        if (kiln_variant_build(&v, d, k, &gs, &c, 0, NULL, &e)) {
            CHECK(0, "build %s: %s", cfgs[i], e.msg);
            continue;
        }
        double ms = best_ms(&v, slots, NULL, 3);
        printf("timing: cpu gemm_int4 4096x4096 n=64 q4f16_1 %-26s %8.2f ms  %6.1f GFLOP/s\n", cfgs[i], ms,
               2.0 * M * K * N / (ms * 1e6));
        gemm_best = ms < gemm_best ? ms : gemm_best;
        kiln_variant_release(&v);
    }
    kiln_variant gemv;
    kiln_config c;
    kiln_config_default(gv, &c);
    if (ok && kiln_variant_build(&gemv, d, gv, &vs, &c, 0, NULL, &e) == 0) {
        double total = 0;
        for (int rep = 0; rep < 2; rep++) {
            double sum = 0;
            for (int t = 0; t < N; t++) {
                size_t offs[5] = {0, 0, 0, (size_t)t * K * 4, (size_t)t * M * 4};
                sum += best_ms(&gemv, slots, offs, 1);
            }
            total = rep == 0 || sum < total ? sum : total;
        }
        printf("timing: cpu gemv_int4 4096x4096 x 64 tokens (default config)        %8.2f ms\n", total);
        printf("timing: gemm (best of the configs above) is %.1fx faster than 64 gemv runs\n", total / gemm_best);
        kiln_variant_release(&gemv);
    } else {
        CHECK(!ok, "gemv build: %s", e.msg);
    }
    for (int i = 0; i < 5; i++)
        kiln_free(d, slots[i]);
    free(x);
    kiln_problem_free(&p);
    kiln_device_close(d);
}

/* $GEMM_PROFILE="BACKEND SHAPE CONFIG" (debugging): build one variant, time
 * three runs, print them; nothing else runs. */
static int profile(const kiln_kernel *k, const char *spec)
{
    char be[32], sh[256], cj[512] = "{}";
    if (sscanf(spec, "%31s %255s %511s", be, sh, cj) < 2)
        return fprintf(stderr, "GEMM_PROFILE=\"BACKEND SHAPE [CONFIG]\"\n"), 2;
    kiln_err e = {0};
    kiln_shape s = {0};
    kiln_config c;
    kiln_device *d = NULL;
    if (kiln_shape_parse(sh, &s, &e) || kiln_config_from_json(k, cj, &c, &e) || kiln_device_select(be, &d, &e))
        return fprintf(stderr, "%s\n", e.msg), 1;
    kiln_problem p;
    kiln_problem_dev pd;
    kiln_variant v;
    if (k->problem_init(&p, &s, 1, &e) || kiln_problem_upload(d, &p, &pd, &e) ||
        kiln_variant_build(&v, d, k, &s, &c, 0, NULL, &e))
        return fprintf(stderr, "%s\n", e.msg), 1;
    kiln_verify_result r;
    if (kiln_verify(&v, &p, &pd, &r, &e))
        return fprintf(stderr, "%s\n", e.msg), 1;
    double ms = best_ms(&v, pd.buf, NULL, 3);
    printf("%s %s %s: %.3f ms, %.2f GFLOP/s, %s (err %.3g)\n", be, sh, cj, ms, k->flops(&s) / (ms * 1e6),
           r.ok ? "ok" : "WRONG", r.err);
    kiln_variant_release(&v);
    kiln_problem_dev_free(&pd);
    kiln_problem_free(&p);
    kiln_device_close(d);
    return r.ok ? 0 : 1;
}

int main(void)
{
    const kiln_kernel *k = kiln_kernel_find("gemm_int4");
    CHECK(k && k->shapes && k->problem_init && k->plan, "gemm_int4 not implemented");
    if (!k || !k->shapes)
        return test_result();
    if (getenv("GEMM_PROFILE"))
        return profile(k, getenv("GEMM_PROFILE"));
    test_problems(k);
    test_host(k);
    test_backend(k, KILN_CPU);
    test_backend(k, KILN_OPENCL);
    test_backend(k, KILN_VULKAN);
    test_timing(k);
    return test_result();
}
