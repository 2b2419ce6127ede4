/* tests/kernels/attention_test.c - attention_paged and kv_append against their
 * references.
 *
 * 1. The problems themselves: the page table is a real permutation (a kernel
 *    that ignores it fails the budget), scores are large enough that a softmax
 *    without max subtraction overflows, the reference is finite.
 * 2. Host execution of each plan with the CPU entries (no device needed):
 *    QUICK shapes x (default + corners + a few valid configs): pass; the same
 *    with KILN_TEST_BREAK=1: caught.
 * 3. Through the runner on every available backend (cpu, opencl, vulkan):
 *    kiln_variant_build + kiln_verify pass, KILN_BUILD_TEST_BREAK caught.
 *    A backend that is not available is skipped unless $KILN_REQUIRE_BACKENDS
 *    names it. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/attention_paged/attention_paged.h"
#include "kernels/kernel.h"
#include "kernels/runner.h"
#include "tests/test.h"
#include "util/f16.h"

#define MAX_CFG 48

/* default + corners + hand-picked configs (those outside the space are dropped) */
static int test_configs(const kiln_kernel *k, kiln_config *out)
{
    int n = 0;
    kiln_config_default(k, &out[n++]);
    n += kiln_config_corners(k, out + n, MAX_CFG - n);
    if (strcmp(k->name, "attention_paged") == 0) {
        static const char *extra[] = {
            "{\"tile\":16,\"split\":256,\"hpw\":2}",
            "{\"tile\":32,\"split\":256,\"hpw\":3}",
            "{\"wg\":128,\"tile\":32,\"vec\":4,\"split\":512,\"hpw\":4}",
            "{\"wg\":256,\"tile\":64,\"vec\":2,\"reduce\":1,\"hpw\":2}",
            "{\"wg\":32,\"tile\":128,\"vec\":4,\"reduce\":1,\"split\":256}",
            "{\"wg\":128,\"tile\":256,\"split\":256,\"hpw\":1}",
        };
        for (size_t i = 0; i < sizeof extra / sizeof extra[0] && n < MAX_CFG; i++) {
            kiln_err e = {0};
            if (kiln_config_from_json(k, extra[i], &out[n], &e) == 0)
                n++;
            else
                CHECK(0, "bad test config %s: %s", extra[i], e.msg);
        }
    } else {
        kiln_config c;
        kiln_config_default(k, &c);
        kiln_config_set(k, &c, "wg", 128);
        out[n++] = c;
    }
    return n;
}

/* Runs a plan on the host with the CPU entries: the contract the CPU backend
 * implements (buffers as host pointers, workgroups [0, grid) in one call). */
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
            memset(slot[i], 0xFF, b->bytes); /* poison, like the runner */
    }
    for (int i = 0; i < plan.n_scratch; i++)
        scratch[i] = malloc(plan.scratch_bytes[i] ? plan.scratch_bytes[i] : 4);
    for (int si = 0; si < plan.n_steps; si++) {
        kiln_plan_step *st = &plan.steps[si];
        if (brk)
            kiln_plan_define(st, "KILN_TEST_BREAK", 1);
        kiln_cpu_fn fn = kiln_cpu_kernel_find(st->entry);
        CHECK(fn != NULL, "no cpu entry %s", st->entry);
        CHECK((size_t)st->n_args == strlen(st->signature), "%s: %d args for signature %s", st->entry, st->n_args,
              st->signature);
        if (!fn)
            return -1;
        kiln_cpu_launch l = {.n_args = st->n_args, .defines = st->defines, .n_defines = st->n_defines,
                             .n_threads = 1, .isa = test_cpu_isa()};
        for (int a = 0; a < st->n_args; a++) {
            kiln_plan_arg *pa = &st->args[a];
            CHECK(st->signature[a] == (pa->kind == KILN_PA_SCRATCH ? 'b' : pa->kind == KILN_PA_SLOT ? 'b' : (char)pa->kind),
                  "%s arg %d kind", st->entry, a);
            switch (pa->kind) {
            case KILN_PA_SLOT: l.ptr[a] = slot[pa->index]; l.arg[a].kind = KILN_ARG_BUF; break;
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
        /* two chunks, as a 2-thread backend would split them */
        fn(&l, 0, total / 2);
        fn(&l, total / 2, total);
    }
    kiln_compare_outputs(p, slot, r);
    for (int i = 0; i < p->n_bufs; i++)
        free(slot[i]);
    for (int i = 0; i < plan.n_scratch; i++)
        free(scratch[i]);
    return 0;
}

static void test_problems(void)
{
    const kiln_kernel *k = kiln_kernel_find("attention_paged");
    kiln_shape shapes[32];
    int n = k->shapes(KILN_SHAPES_QUICK, shapes, 32);
    CHECK(n >= 4, "quick shapes: %d", n);
    int saw_ctx1 = 0, saw_partial_page = 0, saw_gqa3 = 0, saw_gqa4 = 0;
    for (int i = 0; i < n; i++) {
        const kiln_shape *s = &shapes[i];
        saw_ctx1 |= s->ctx == 1;
        saw_partial_page |= s->ctx % s->page_size != 0 && s->ctx > 1;
        saw_gqa3 |= s->heads / s->kv_heads == 3;
        saw_gqa4 |= s->heads / s->kv_heads == 4;
        kiln_problem p;
        kiln_err e = {0};
        CHECK_OK(k->problem_init(&p, s, 7 + i, &e), &e);
        const float *q = p.bufs[0].host, *kp = p.bufs[1].host, *vp = p.bufs[2].host;
        const int32_t *table = p.bufs[3].host;
        float *kd = NULL, *vd = NULL; /* f16 pools decoded */
        if (s->quant == KILN_F16) {
            size_t ne = p.bufs[1].bytes / 2;
            kd = malloc(ne * sizeof *kd);
            vd = malloc(ne * sizeof *vd);
            for (size_t j = 0; j < ne; j++) {
                kd[j] = kiln_f16_to_f32(((const uint16_t *)p.bufs[1].host)[j]);
                vd[j] = kiln_f16_to_f32(((const uint16_t *)p.bufs[2].host)[j]);
            }
            kp = kd;
            vp = vd;
        }
        const float *want = p.bufs[4].expect;
        size_t no = (size_t)s->heads * s->head_dim;
        int finite = 1;
        for (size_t j = 0; j < no; j++)
            finite &= isfinite(want[j]);
        CHECK(finite, "reference not finite");
        /* scores large enough to overflow exp() without max subtraction */
        double smax = -1e300;
        int ratio = s->heads / s->kv_heads;
        for (int h = 0; h < s->heads; h++)
            for (int t = 0; t < s->ctx; t++) {
                size_t off = (((size_t)table[t / s->page_size] * s->kv_heads + h / ratio) * s->page_size +
                              t % s->page_size) * s->head_dim;
                double d = 0;
                for (int j = 0; j < s->head_dim; j++)
                    d += (double)q[(size_t)h * s->head_dim + j] * kp[off + j];
                d /= sqrt(s->head_dim);
                smax = d > smax ? d : smax;
            }
        CHECK(smax > 89.0, "max score %.1f: an unstable softmax would not overflow", smax);
        /* ignoring the page table (identity) must fail the budget */
        int used = (s->ctx + s->page_size - 1) / s->page_size;
        int32_t *ident = malloc((size_t)used * sizeof *ident);
        int differs = 0;
        for (int j = 0; j < used; j++) {
            ident[j] = j;
            differs |= table[j] != j;
        }
        if (differs) {
            float *got = malloc(no * sizeof *got);
            kiln_attn_reference(q, kp, vp, ident, got, s->heads, s->kv_heads, s->head_dim, s->page_size, s->ctx,
                                1.0f / sqrtf((float)s->head_dim));
            void *gots[KILN_MAX_BUFS] = {0};
            gots[4] = got;
            kiln_verify_result r;
            kiln_compare_outputs(&p, gots, &r);
            CHECK(!r.ok, "shape %d: ignoring the page table passes (err %g)", i, r.err);
            free(got);
        } else {
            CHECK(0, "page table is the identity over %d pages", used);
        }
        free(ident);
        /* the reference passes its own budget */
        void *gots[KILN_MAX_BUFS] = {0};
        gots[4] = p.bufs[4].expect;
        kiln_verify_result r;
        kiln_compare_outputs(&p, gots, &r);
        CHECK(r.ok && r.err == 0, "reference vs itself: %s", r.detail);
        free(kd);
        free(vd);
        kiln_problem_free(&p);
    }
    CHECK(saw_ctx1 && saw_partial_page && saw_gqa3 && saw_gqa4, "quick shapes miss a case");

    /* every CHECK and TUNE shape is valid with the default config */
    kiln_fingerprint fp = {.backend = KILN_CPU};
    for (int ki = 0; ki < 2; ki++) {
        const kiln_kernel *kk = kiln_kernel_find(ki ? "kv_append" : "attention_paged");
        for (int which = 0; which < 3; which++) {
            int m = kk->shapes(which, shapes, 32);
            CHECK(m > 0, "%s: no shapes for %d", kk->name, which);
            for (int i = 0; i < m; i++) {
                kiln_config c;
                kiln_config_default(kk, &c);
                char why[256] = "";
                CHECK(kk->config_valid(&shapes[i], &c, &fp, why, sizeof why), "%s default invalid: %s", kk->name,
                      why);
            }
        }
    }
}

static void test_host(void)
{
    kiln_fingerprint fp = {.backend = KILN_CPU};
    const char *names[] = {"attention_paged", "kv_append"};
    for (int ki = 0; ki < 2; ki++) {
        const kiln_kernel *k = kiln_kernel_find(names[ki]);
        CHECK(k && k->shapes, "kernel %s", names[ki]);
        kiln_shape shapes[16];
        int ns = k->shapes(KILN_SHAPES_QUICK, shapes, 16);
        kiln_config cfgs[MAX_CFG];
        int nc = test_configs(k, cfgs);
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

/* Real model shapes at long context (CHECK list entries with ctx >= 1000),
 * default and split configs, on the host: the budget holds at 4096 tokens. */
static void test_host_long(void)
{
    const kiln_kernel *k = kiln_kernel_find("attention_paged");
    kiln_fingerprint fp = {.backend = KILN_CPU};
    kiln_shape shapes[64];
    int ns = k->shapes(KILN_SHAPES_CHECK, shapes, 64);
    int ran = 0;
    for (int si = 0; si < ns; si++) {
        if (shapes[si].ctx < 1000 || shapes[si].heads * shapes[si].head_dim * (int64_t)shapes[si].ctx > 32 * 128 * 4096 / 2)
            continue;
        kiln_problem p;
        kiln_err e = {0};
        CHECK_OK(k->problem_init(&p, &shapes[si], 5 + si, &e), &e);
        static const char *cfgs[] = {"{}", "{\"split\":512,\"tile\":128}", "{\"split\":256,\"tile\":16}"};
        for (int ci = 0; ci < 3; ci++) {
            kiln_config c;
            CHECK_OK(kiln_config_from_json(k, cfgs[ci], &c, &e), &e);
            char why[256], key[128];
            k->shape_key(&shapes[si], key, sizeof key);
            if (!k->config_valid(&shapes[si], &c, &fp, why, sizeof why))
                continue;
            kiln_verify_result r;
            if (host_run(k, &shapes[si], &c, &p, 0, &r) == 0) {
                CHECK(r.ok, "host %s %s: err %g budget %g %s", key, cfgs[ci], r.err, r.budget, r.detail);
                printf("host long: %s %s err %.3g (budget %g)\n", key, cfgs[ci], r.err, r.budget);
            }
            if (host_run(k, &shapes[si], &c, &p, 1, &r) == 0)
                CHECK(!r.ok, "host %s %s: KILN_TEST_BREAK not caught (err %g)", key, cfgs[ci], r.err);
            ran++;
        }
        kiln_problem_free(&p);
    }
    CHECK(ran >= 3, "only %d long-context runs", ran);
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
    const char *names[] = {"attention_paged", "kv_append"};
    for (int ki = 0; ki < 2; ki++) {
        const kiln_kernel *k = kiln_kernel_find(names[ki]);
        kiln_shape shapes[16];
        int ns = k->shapes(KILN_SHAPES_QUICK, shapes, 16);
        kiln_config cfgs[MAX_CFG];
        int nc = test_configs(k, cfgs);
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
    test_host_long();
    test_backend(KILN_CPU);
    test_backend(KILN_OPENCL);
    test_backend(KILN_VULKAN);
    return test_result();
}
