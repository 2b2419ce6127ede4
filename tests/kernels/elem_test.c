/* tests/kernels/elem_test.c - dequant, rmsnorm, rope, embed_gather, silu_mul,
 * residual_add and argmax against their references.
 *
 * 1. Problems: every CHECK/TUNE/QUICK shape is valid with the default config
 *    on each backend's fingerprint; the reference passes its own comparison.
 * 2. Host execution of each plan with the CPU entries (no device needed):
 *    QUICK shapes x (default + corners + a few configs valid on the cpu):
 *    pass; with KILN_TEST_BREAK=1: caught.
 * 3. Through the runner on every available backend (cpu, opencl, vulkan):
 *    QUICK shapes x (default + corners + a few configs), kiln_variant_build +
 *    kiln_verify pass and KILN_BUILD_TEST_BREAK is caught. A backend that is
 *    not available is skipped unless $KILN_REQUIRE_BACKENDS names it.
 * $ELEM_KERNELS (comma list) restricts the kernels (debugging). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernel.h"
#include "kernels/runner.h"
#include "tests/test.h"

#define MAX_CFG 48
#define MAX_SHAPES 64

static const char *const kernel_names[] = {"dequant", "rmsnorm", "rope", "embed_gather",
                                           "silu_mul", "residual_add", "argmax"};
#define N_KERNELS ((int)(sizeof kernel_names / sizeof kernel_names[0]))

static int selected(const char *name)
{
    const char *sel = getenv("ELEM_KERNELS");
    if (!sel || !*sel)
        return 1;
    size_t n = strlen(name);
    for (const char *p = sel; (p = strstr(p, name)); p += n)
        if ((p == sel || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return 1;
    return 0;
}

/* Hand-picked configs per kernel (JSON; those not in the space fail the test). */
static const char *const extra_configs[][4] = {
    /* dequant */ {"{\"wg\":128,\"ept\":16,\"vec\":4}", "{\"wg\":32,\"ept\":32,\"vec\":2}", "{\"ept\":16,\"vec\":1}", NULL},
    /* rmsnorm */ {"{\"wg\":64,\"vec\":4,\"reduce\":1}", "{\"wg\":128,\"vec\":2}", "{\"wg\":32,\"reduce\":1}", NULL},
    /* rope */ {"{\"wg\":128,\"ppt\":2}", "{\"wg\":32,\"ppt\":4}", NULL, NULL},
    /* embed_gather */ {"{\"wg\":32}", "{\"wg\":256}", NULL, NULL},
    /* silu_mul */ {"{\"wg\":64,\"ept\":4}", "{\"wg\":256,\"ept\":2}", NULL, NULL},
    /* residual_add */ {"{\"wg\":64,\"ept\":4}", "{\"wg\":256,\"ept\":2}", NULL, NULL},
    /* argmax */ {"{\"wg\":64,\"chunk\":1024}", "{\"wg\":256,\"chunk\":16384}", NULL, NULL},
};

static int test_configs(const kiln_kernel *k, int ki, kiln_config *out)
{
    int n = 0;
    kiln_config_default(k, &out[n++]);
    n += kiln_config_corners(k, out + n, MAX_CFG - n);
    for (int i = 0; i < 4 && extra_configs[ki][i] && n < MAX_CFG; i++) {
        kiln_err e = {0};
        if (kiln_config_from_json(k, extra_configs[ki][i], &out[n], &e) == 0)
            n++;
        else
            CHECK(0, "bad test config %s: %s", extra_configs[ki][i], e.msg);
    }
    return n;
}

/* Runs a plan on the host with the CPU entries, as the cpu backend would with
 * two worker threads (workgroups [0, n/2) and [n/2, n)). */
static int host_run(const kiln_kernel *k, const kiln_shape *s, const kiln_config *c, const kiln_problem *p, int brk,
                    kiln_verify_result *r)
{
    kiln_plan plan;
    kiln_err e = {0};
    if (k->plan(s, c, KILN_CPU, &plan, &e)) {
        CHECK(0, "%s plan: %s", k->name, e.msg);
        return -1;
    }
    void *slot[KILN_MAX_BUFS] = {0}, *scratch[KILN_MAX_SCRATCH] = {0};
    for (int i = 0; i < p->n_bufs; i++) {
        const kiln_problem_buf *b = &p->bufs[i];
        slot[i] = malloc(b->bytes ? b->bytes : 1);
        if (b->host)
            memcpy(slot[i], b->host, b->bytes);
        else
            memset(slot[i], 0xFF, b->bytes);
    }
    for (int i = 0; i < plan.n_scratch; i++) {
        scratch[i] = malloc(plan.scratch_bytes[i] ? plan.scratch_bytes[i] : 4);
        memset(scratch[i], 0xFF, plan.scratch_bytes[i] ? plan.scratch_bytes[i] : 4);
    }
    int rc = 0;
    for (int si = 0; si < plan.n_steps && !rc; si++) {
        kiln_plan_step *st = &plan.steps[si];
        if (brk)
            kiln_plan_define(st, "KILN_TEST_BREAK", 1);
        kiln_cpu_fn fn = kiln_cpu_kernel_find(st->entry);
        CHECK(fn != NULL, "no cpu entry %s", st->entry);
        CHECK((size_t)st->n_args == strlen(st->signature), "%s: %d args for signature %s", st->entry, st->n_args,
              st->signature);
        if (!fn || (size_t)st->n_args != strlen(st->signature)) {
            rc = -1;
            break;
        }
        kiln_cpu_launch l = {.n_args = st->n_args, .defines = st->defines, .n_defines = st->n_defines,
                             .n_threads = 1, .isa = test_cpu_isa()};
        for (int a = 0; a < st->n_args; a++) {
            kiln_plan_arg *pa = &st->args[a];
            switch (pa->kind) {
            case KILN_PA_SLOT:
                CHECK(pa->index < p->n_bufs, "%s: slot %d beyond the problem's %d buffers", st->entry, pa->index,
                      p->n_bufs);
                l.ptr[a] = pa->index < p->n_bufs ? slot[pa->index] : NULL;
                l.arg[a].kind = KILN_ARG_BUF;
                break;
            case KILN_PA_SCRATCH: l.ptr[a] = scratch[pa->index]; l.arg[a].kind = KILN_ARG_BUF; break;
            case KILN_PA_I32: l.arg[a] = (kiln_arg){.kind = KILN_ARG_I32, .i32 = pa->i32}; break;
            case KILN_PA_U32: l.arg[a] = (kiln_arg){.kind = KILN_ARG_U32, .u32 = pa->u32}; break;
            case KILN_PA_F32: l.arg[a] = (kiln_arg){.kind = KILN_ARG_F32, .f32 = pa->f32}; break;
            }
        }
        for (int d = 0; d < 3; d++) {
            l.grid[d] = st->grid[d] ? st->grid[d] : 1;
            l.local[d] = st->local[d] ? st->local[d] : 1;
        }
        uint32_t total = l.grid[0] * l.grid[1] * l.grid[2];
        fn(&l, 0, total / 2);
        fn(&l, total / 2, total);
    }
    if (!rc)
        kiln_compare_outputs(p, slot, r);
    for (int i = 0; i < p->n_bufs; i++)
        free(slot[i]);
    for (int i = 0; i < plan.n_scratch; i++)
        free(scratch[i]);
    return rc;
}

static void test_problems(void)
{
    for (int ki = 0; ki < N_KERNELS; ki++) {
        if (!selected(kernel_names[ki]))
            continue;
        const kiln_kernel *k = kiln_kernel_find(kernel_names[ki]);
        CHECK(k && k->shapes && k->problem_init && k->plan, "kernel %s not implemented", kernel_names[ki]);
        if (!k || !k->shapes)
            continue;
        kiln_shape shapes[MAX_SHAPES];
        for (int which = 0; which < 3; which++) {
            int n = k->shapes(which, shapes, MAX_SHAPES);
            CHECK(n > 0 && n < MAX_SHAPES, "%s: %d shapes for list %d", k->name, n, which);
            for (int b = 0; b < 3; b++) {
                kiln_fingerprint fp = {.backend = b == 0 ? KILN_CPU : b == 1 ? KILN_OPENCL : KILN_VULKAN,
                                       .max_workgroup = 256, .subgroup_size = 8, .has_subgroup_ops = b == 2};
                for (int i = 0; i < n; i++) {
                    kiln_config c;
                    kiln_config_default(k, &c);
                    char why[256] = "";
                    /* tables interleaved for the LM head's gemv: every backend reads them */
                    int want = 1;
                    CHECK(k->config_valid(&shapes[i], &c, &fp, why, sizeof why) == want,
                          "%s shape %d (list %d) default %s on %s: %s", k->name, i, which, want ? "invalid" : "valid",
                          kiln_backend_name(fp.backend), why);
                }
            }
        }
        int n = k->shapes(KILN_SHAPES_QUICK, shapes, MAX_SHAPES);
        for (int i = 0; i < n; i++) {
            kiln_problem p;
            kiln_err e = {0};
            CHECK_OK(k->problem_init(&p, &shapes[i], 3 + i, &e), &e);
            void *gots[KILN_MAX_BUFS] = {0};
            int inputs_nonzero = 1;
            for (int b = 0; b < p.n_bufs; b++) {
                gots[b] = p.bufs[b].expect;
                if (p.bufs[b].host && p.bufs[b].bytes >= 4) {
                    const uint8_t *h = p.bufs[b].host;
                    size_t nz = 0;
                    for (size_t j = 0; j < p.bufs[b].bytes; j++)
                        nz += h[j] != 0;
                    inputs_nonzero &= nz > 0;
                }
            }
            CHECK(inputs_nonzero, "%s shape %d: an input is all zeros", k->name, i);
            kiln_verify_result r;
            kiln_compare_outputs(&p, gots, &r);
            CHECK(r.ok && r.err == 0, "%s: reference vs itself: %s", k->name, r.detail);
            kiln_problem_free(&p);
        }
    }
}

static void test_host(void)
{
    kiln_fingerprint fp = {.backend = KILN_CPU};
    for (int ki = 0; ki < N_KERNELS; ki++) {
        if (!selected(kernel_names[ki]))
            continue;
        const kiln_kernel *k = kiln_kernel_find(kernel_names[ki]);
        if (!k || !k->shapes)
            continue;
        kiln_shape shapes[MAX_SHAPES];
        int ns = k->shapes(KILN_SHAPES_QUICK, shapes, MAX_SHAPES);
        kiln_config cfgs[MAX_CFG];
        int nc = test_configs(k, ki, cfgs);
        int ran = 0;
        for (int si = 0; si < ns; si++) {
            kiln_problem p;
            kiln_err e = {0};
            CHECK_OK(k->problem_init(&p, &shapes[si], 1234 + si, &e), &e);
            for (int ci = 0; ci < nc; ci++) {
                char why[256], js[256], key[128];
                if (!k->config_valid(&shapes[si], &cfgs[ci], &fp, why, sizeof why))
                    continue;
                kiln_config_to_json(k, &cfgs[ci], js, sizeof js);
                k->shape_key(&shapes[si], key, sizeof key);
                kiln_verify_result r;
                if (host_run(k, &shapes[si], &cfgs[ci], &p, 0, &r) == 0)
                    CHECK(r.ok, "host %s %s %s: err %g budget %g %s", k->name, key, js, r.err, r.budget, r.detail);
                if (host_run(k, &shapes[si], &cfgs[ci], &p, 1, &r) == 0)
                    CHECK(!r.ok, "host %s %s %s: KILN_TEST_BREAK not caught (err %g)", k->name, key, js, r.err);
                ran++;
            }
            kiln_problem_free(&p);
        }
        CHECK(ran >= ns, "%s: only %d host runs", k->name, ran);
        printf("host: %s %d runs\n", k->name, ran);
    }
}

static void test_backend(kiln_backend_kind be)
{
    const char *bname = kiln_backend_name(be);
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
    for (int ki = 0; ki < N_KERNELS; ki++) {
        if (!selected(kernel_names[ki]))
            continue;
        const kiln_kernel *k = kiln_kernel_find(kernel_names[ki]);
        if (!k || !k->shapes)
            continue;
        kiln_shape shapes[MAX_SHAPES];
        int ns = k->shapes(KILN_SHAPES_QUICK, shapes, MAX_SHAPES);
        kiln_config cfgs[MAX_CFG];
        int nc = test_configs(k, ki, cfgs);
        int ran = 0;
        for (int si = 0; si < ns; si++) {
            kiln_problem p;
            kiln_problem_dev pd = {0};
            CHECK_OK(k->problem_init(&p, &shapes[si], 99 + si, &e), &e);
            CHECK_OK(kiln_problem_upload(d, &p, &pd, &e), &e);
            for (int ci = 0; ci < nc; ci++) {
                char why[256], js[256], key[128];
                if (!k->config_valid(&shapes[si], &cfgs[ci], &d->fp, why, sizeof why))
                    continue;
                kiln_config_to_json(k, &cfgs[ci], js, sizeof js);
                k->shape_key(&shapes[si], key, sizeof key);
                for (int brk = 0; brk < 2; brk++) {
                    kiln_variant v;
                    kiln_err ve = {0};
                    int rc = kiln_variant_build(&v, d, k, &shapes[si], &cfgs[ci], brk ? KILN_BUILD_TEST_BREAK : 0,
                                                cache, &ve);
                    CHECK(rc == 0, "%s build %s %s %s: %s", bname, k->name, key, js, ve.msg);
                    if (rc)
                        continue;
                    kiln_verify_result r;
                    rc = kiln_verify(&v, &p, &pd, &r, &ve);
                    CHECK(rc == 0, "%s run %s %s %s: %s", bname, k->name, key, js, ve.msg);
                    if (rc == 0 && !brk)
                        CHECK(r.ok, "%s %s %s %s: err %g budget %g %s", bname, k->name, key, js, r.err, r.budget,
                              r.detail);
                    if (rc == 0 && brk)
                        CHECK(!r.ok, "%s %s %s %s: KILN_TEST_BREAK not caught", bname, k->name, key, js);
                    kiln_variant_release(&v);
                }
                ran++;
            }
            kiln_problem_dev_free(&pd);
            kiln_problem_free(&p);
        }
        CHECK(ran >= ns, "%s %s: only %d runs", bname, k->name, ran);
        printf("%s: %s %d configs x shapes verified\n", bname, k->name, ran);
    }
    kiln_progcache_free(cache);
    kiln_device_close(d);
}

int main(void)
{
    test_problems();
    test_host();
    test_backend(KILN_CPU);
    test_backend(KILN_OPENCL);
    test_backend(KILN_VULKAN);
    return test_result();
}
