/* src/cmd_check.c - `kiln check`: every kernel x every available device x
 * configs drawn from its space (default, corners, random) x shapes (real
 * Llama ones and odd ones), verified against the plain-C reference.
 *
 * Inputs are random (never zeros) and outputs poisoned before each run; a
 * failure names the device, kernel, config and shape. Unavailable backends
 * are listed as unavailable, never counted as passed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/runner.h"
#include "src/args.h"
#include "src/commands.h"
#include "util/clock.h"
#include "util/rng.h"

#define MAX_DEVICES 16
#define MAX_SHAPES 64
#define MAX_CONFIGS 64

typedef struct tally {
    int shapes, runs, pass, fail, invalid;
    double worst_ratio; /* err / budget over passing and failing runs */
    double seconds;
} tally;

typedef struct check_opts {
    const char *devices[MAX_DEVICES];
    int n_devices;
    const char *kernels[32];
    int n_kernels;
    const char *shapes[MAX_SHAPES]; /* --shape: these instead of the kernel's lists (one --kernel) */
    int n_shapes;
    int quick, n_random, verbose, json;
    uint64_t seed;
    const char *break_kernel;
} check_opts;

static int parse(int argc, char **argv, check_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_random = 3;
    o->seed = 1;
    int list = 0;
    const kiln_opt opts[] = {
        {"--device", NULL, KILN_OPT_LIST, (void *)o->devices, .count = &o->n_devices, .max = MAX_DEVICES,
         .arg = "SPEC", .help = "backend, backend:index or part of a device name (repeatable; default: every device)"},
        {"--kernel", NULL, KILN_OPT_LIST, (void *)o->kernels, .count = &o->n_kernels, .max = 32, .arg = "NAME",
         .help = "only this kernel (repeatable); --list lists them"},
        {"--shape", NULL, KILN_OPT_LIST, (void *)o->shapes, .count = &o->n_shapes, .max = MAX_SHAPES, .arg = "SPEC",
         .help = "check this shape only, e.g. m=256,k=256,quant=q4_0,group=32 (repeatable; one --kernel)"},
        {"--list", NULL, KILN_OPT_FLAG, &list, .help = "list the kernels and exit"},
        {"--quick", NULL, KILN_OPT_FLAG, &o->quick, .help = "small shapes only (fast); default: real Llama shapes + odd ones"},
        {"--random", NULL, KILN_OPT_INT, &o->n_random, 0, 100000, .arg = "N",
         .help = "extra random valid configs per kernel besides default and corners (default 3)"},
        {"--seed", NULL, KILN_OPT_U64, &o->seed, .arg = "S", .help = "input/config seed (default 1)"},
        {"--break", NULL, KILN_OPT_STR, &o->break_kernel, .arg = "KERNEL",
         .help = "(tests) plant a wrong index in KERNEL's sources: check must fail"},
        {"--verbose", "-v", KILN_OPT_FLAG, &o->verbose, .help = "one line per kernel x config x shape"},
        {0},
    };
    const kiln_opt *tables[] = {opts, NULL};
    int rc = kiln_args_parse("kiln check",
                             "usage: kiln check [--device SPEC]... [--kernel NAME [--shape SPEC]...]... [--quick] [--random N]\n"
                             "                  [--seed S] [-v]\n"
                             "exit: 0 all passed, 1 a kernel failed or is missing, 2 usage, 3 no device available\n",
                             tables, argc, argv, 1, NULL, 0, NULL);
    if (rc)
        return rc;
    if (list) {
        for (int k = 0; k < kiln_kernel_count(); k++)
            printf("%-18s %s\n", kiln_kernel_at(k)->name, kiln_kernel_at(k)->doc);
        return KILN_ARGS_HELP; /* printed what was asked: exit 0 */
    }
    for (int i = 0; i < o->n_kernels; i++)
        if (!kiln_kernel_find(o->kernels[i]))
            return kiln_args_usage_error("kiln check", "unknown kernel '%s' (kiln check --list)", o->kernels[i]);
    if (o->n_shapes) {
        if (o->n_kernels != 1)
            return kiln_args_usage_error("kiln check", "--shape needs exactly one --kernel (shape fields are per kernel)");
        const kiln_kernel *k = kiln_kernel_find(o->kernels[0]);
        kiln_shape sh;
        for (int i = 0; i < o->n_shapes; i++) {
            kiln_err e = {0};
            if (!k->shapes || k->shapes(KILN_SHAPES_QUICK, &sh, 1) < 1)
                return kiln_args_usage_error("kiln check", "kernel '%s' declares no shapes", k->name);
            if (kiln_shape_parse_for(k, o->shapes[i], &sh, &e))
                return kiln_args_usage_error("kiln check", "--shape %s: %s", o->shapes[i], e.msg);
        }
    }
    return 0;
}

static int wanted(const check_opts *o, const kiln_kernel *k)
{
    if (!o->n_kernels)
        return 1;
    for (int i = 0; i < o->n_kernels; i++)
        if (!strcmp(o->kernels[i], k->name))
            return 1;
    return 0;
}

/* Does a --device spec name backend b? Specs that are not a backend name
 * (parts of a device name) may match any backend. */
static int named_backend(const check_opts *o, kiln_backend_kind b)
{
    for (int i = 0; i < o->n_devices; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s", o->devices[i]);
        char *colon = strchr(name, ':');
        if (colon)
            *colon = 0;
        kiln_backend_kind k;
        if (kiln_backend_parse(name, &k) || k == b)
            return 1;
    }
    return 0;
}

static void progress(int tty, const kiln_device *d, const kiln_kernel *k, const char *shape, int i, int n)
{
    if (tty)
        fprintf(stderr, "\r\033[K  %s:%d %s %s config %d/%d", kiln_backend_name(d->backend), d->index, k->name, shape,
                i + 1, n);
}

/* The state of one `kiln check`. */
typedef struct check_run {
    check_opts o;
    int tty;
    kiln_device *devs[MAX_DEVICES];
    kiln_progcache *cache[MAX_DEVICES];
    int n_dev, n_k;
    tally *t;          /* [device][kernel] */
    int failures, missing;
    kiln_rng rng;
} check_run;

/* The requested devices, or every device of every backend; prints the
 * backends' status. 0 or an exit code. */
static int open_devices(check_run *r)
{
    const check_opts *o = &r->o;
    kiln_err err = {0};
    printf("backends:\n");
    for (int b = 0; b < KILN_BACKEND_COUNT; b++) {
        /* with --device naming backends, leave the others unprobed: starting
         * a driver costs time (lavapipe: an LLVM JIT) and brings its leaks */
        if (o->n_devices && !named_backend(o, (kiln_backend_kind)b))
            continue;
        kiln_backend_status st;
        kiln_backend_probe((kiln_backend_kind)b, &st);
        if (st.available)
            printf("  %-7s available, %d device(s)\n", kiln_backend_name((kiln_backend_kind)b), st.n_devices);
        else
            printf("  %-7s UNAVAILABLE: %s\n", kiln_backend_name((kiln_backend_kind)b), st.reason);
        if (o->n_devices)
            continue;
        for (int i = 0; st.available && i < st.n_devices && r->n_dev < MAX_DEVICES; i++) {
            if (kiln_device_open((kiln_backend_kind)b, i, &r->devs[r->n_dev], &err) == 0)
                r->n_dev++;
            else
                printf("  %s:%d could not be opened: %s\n", kiln_backend_name((kiln_backend_kind)b), i, err.msg);
        }
    }
    for (int i = 0; i < o->n_devices; i++) {
        if (kiln_device_select(o->devices[i], &r->devs[r->n_dev], &err)) {
            fprintf(stderr, "kiln check: %s\n", err.msg);
            /* a bad setting (KILN_CPU_THREADS=abc) is a usage error; anything else: not there */
            return err.code == KILN_E_INVALID ? KILN_EXIT_USAGE : KILN_EXIT_UNAVAILABLE;
        }
        r->n_dev++;
    }
    if (!r->n_dev) {
        fprintf(stderr, "kiln check: no device available\n");
        return KILN_EXIT_UNAVAILABLE;
    }
    for (int i = 0; i < r->n_dev; i++)
        printf("device %d: %s:%d %s (%s)\n", i, kiln_backend_name(r->devs[i]->backend), r->devs[i]->index,
               r->devs[i]->fp.name, r->devs[i]->fp.driver_version);
    return 0;
}

/* One config on one device at one shape: build, verify, print a failure
 * (or, verbose, the pass), count it in ty. */
static void check_config(check_run *r, int d, const kiln_kernel *k, const kiln_shape *s, const char *skey,
                         const kiln_config *c, unsigned flags, const kiln_problem *prob, kiln_problem_dev *pd,
                         tally *ty)
{
    kiln_device *dev = r->devs[d];
    const char *dn = kiln_backend_name(dev->backend);
    char cj[512], why[256];
    kiln_config_to_json(k, c, cj, sizeof cj);
    if (!k->config_valid(s, c, &dev->fp, why, sizeof why)) {
        ty->invalid++;
        if (r->o.verbose)
            printf("  n/a  %s:%d %s %s %s: %s\n", dn, dev->index, k->name, skey, cj, why);
        return;
    }
    ty->runs++;
    kiln_err err = {0};
    kiln_variant v;
    kiln_verify_result vr;
    int vrc = kiln_variant_build(&v, dev, k, s, c, flags, r->cache[d], &err);
    if (!vrc) {
        vrc = kiln_verify(&v, prob, pd, &vr, &err);
        kiln_variant_release(&v);
    }
    if (!vrc) {
        double ratio = vr.budget > 0 ? vr.err / vr.budget : (vr.ok ? 0 : INFINITY);
        if (ratio > ty->worst_ratio)
            ty->worst_ratio = ratio;
        if (vr.ok) {
            ty->pass++;
            if (r->o.verbose)
                printf("  ok   %s:%d %s %s %s err %.3g (budget %.3g)\n", dn, dev->index, k->name, skey, cj, vr.err,
                       vr.budget);
            return;
        }
    }
    if (r->tty)
        fprintf(stderr, "\r\033[K");
    if (vrc)
        printf("FAIL %s:%d %s shape %s config %s: %s: %s\n", dn, dev->index, k->name, skey, cj, kiln_code_name(vrc),
               err.msg);
    else
        printf("FAIL %s:%d %s shape %s config %s: wrong result: %s\n", dn, dev->index, k->name, skey, cj, vr.detail);
    ty->fail++;
    r->failures++;
}

/* Shape si of kernel k with the configs picked for each device: configs
 * that need other problem data (a weight layout, int8 activations) are
 * verified on their own data class's problem. */
static void check_shape(check_run *r, int ki, const kiln_kernel *k, const kiln_shape *s, int si, unsigned flags,
                        kiln_config (*cfgs)[MAX_CONFIGS], const int *n_cfg)
{
    char skey[128];
    k->shape_key(s, skey, sizeof skey);
    int classes[MAX_DEVICES * MAX_CONFIGS], n_cls = 0;
    for (int d = 0; d < r->n_dev; d++)
        for (int ci = 0; ci < n_cfg[d]; ci++) {
            int cls = kiln_data_class(k, s, &cfgs[d][ci]), seen = 0;
            for (int j = 0; j < n_cls; j++)
                seen |= classes[j] == cls;
            if (!seen)
                classes[n_cls++] = cls;
        }
    for (int d = 0; d < r->n_dev; d++)
        r->t[d * r->n_k + ki].shapes++;
    for (int ix = 0; ix < n_cls; ix++) {
        int cls = classes[ix];
        kiln_err err = {0};
        kiln_problem prob = {0};
        if (kiln_problem_make(k, &prob, s, cls, r->o.seed * 1000003u + (uint64_t)si, &err)) {
            printf("FAIL %s %s: building the reference problem (data class %d): %s\n", k->name, skey, cls, err.msg);
            r->failures++;
            continue;
        }
        for (int d = 0; d < r->n_dev; d++) {
            tally *ty = &r->t[d * r->n_k + ki];
            double t0 = kiln_now_s();
            kiln_problem_dev pd;
            if (kiln_problem_upload(r->devs[d], &prob, &pd, &err)) {
                printf("FAIL %s:%d %s %s: %s\n", kiln_backend_name(r->devs[d]->backend), r->devs[d]->index, k->name,
                       skey, err.msg);
                ty->fail++;
                r->failures++;
                continue;
            }
            for (int ci = 0; ci < n_cfg[d]; ci++) {
                if (kiln_data_class(k, s, &cfgs[d][ci]) != cls)
                    continue;
                progress(r->tty, r->devs[d], k, skey, ci, n_cfg[d]);
                check_config(r, d, k, s, skey, &cfgs[d][ci], flags, &prob, &pd, ty);
            }
            kiln_problem_dev_free(&pd);
            ty->seconds += kiln_now_s() - t0;
        }
        kiln_problem_free(&prob);
    }
}

/* Every shape of kernel ki x every device x the configs picked for that
 * device and shape (each shape its own picks: configs valid for one shape,
 * int8 activations or a tile that divides M, may not be for another). */
static void check_kernel(check_run *r, int ki)
{
    const kiln_kernel *k = kiln_kernel_at(ki);
    kiln_shape shapes[MAX_SHAPES];
    int n_s = k->shapes ? k->shapes(r->o.quick ? KILN_SHAPES_QUICK : KILN_SHAPES_CHECK, shapes, MAX_SHAPES) : 0;
    if (n_s > 0 && r->o.n_shapes) {
        /* --shape: on top of the kernel's first shape, so unnamed fields are sensible (parsed in cmd_check) */
        kiln_shape base = shapes[0];
        for (int i = 0; i < r->o.n_shapes; i++) {
            shapes[i] = base;
            kiln_shape_parse_for(k, r->o.shapes[i], &shapes[i], NULL);
        }
        n_s = r->o.n_shapes;
    }
    if (n_s <= 0) {
        printf("FAIL %s: kernel declares no shapes (not implemented)\n", k->name);
        r->missing++;
        return;
    }
    unsigned flags = r->o.break_kernel && !strcmp(r->o.break_kernel, k->name) ? KILN_BUILD_TEST_BREAK : 0;
    kiln_config cfgs[MAX_DEVICES][MAX_CONFIGS];
    int n_cfg[MAX_DEVICES];
    for (int si = 0; si < n_s; si++) {
        for (int d = 0; d < r->n_dev; d++)
            n_cfg[d] = kiln_config_pick(k, &shapes[si], &r->devs[d]->fp, r->o.n_random, &r->rng, cfgs[d],
                                        MAX_CONFIGS);
        check_shape(r, ki, k, &shapes[si], si, flags, cfgs, n_cfg);
    }
}

/* The per device x kernel table. A kernel with no valid config on a device
 * is a failure, not a pass. */
static void print_summary(check_run *r)
{
    printf("\n%-28s %-16s %6s %6s %6s %6s %6s %10s %8s\n", "device", "kernel", "shapes", "runs", "pass", "fail", "n/a",
           "err/budget", "time");
    for (int d = 0; d < r->n_dev; d++)
        for (int ki = 0; ki < r->n_k; ki++) {
            tally *ty = &r->t[d * r->n_k + ki];
            if (!ty->shapes)
                continue;
            char dn[64];
            snprintf(dn, sizeof dn, "%s:%d %.18s", kiln_backend_name(r->devs[d]->backend), r->devs[d]->index,
                     r->devs[d]->fp.name);
            printf("%-28s %-16s %6d %6d %6d %6d %6d %10.3g %7.1fs %s\n", dn, kiln_kernel_at(ki)->name, ty->shapes,
                   ty->runs, ty->pass, ty->fail, ty->invalid, ty->worst_ratio, ty->seconds,
                   ty->fail ? "FAIL" : ty->runs ? "ok" : "NONE RUN");
            if (!ty->runs && !ty->fail)
                r->failures++;
        }
    printf("\n%s: %d failure(s), %d kernel(s) missing\n", r->failures || r->missing ? "FAILED" : "PASSED", r->failures,
           r->missing);
}

int cmd_check(int argc, char **argv)
{
    check_run r;
    memset(&r, 0, sizeof r);
    int rc = parse(argc, argv, &r.o);
    if (rc == KILN_ARGS_HELP)
        return KILN_EXIT_OK;
    if (!rc)
        rc = open_devices(&r);
    if (!rc) {
        r.tty = isatty(2);
        r.n_k = kiln_kernel_count();
        kiln_rng_seed(&r.rng, r.o.seed);
        for (int i = 0; i < r.n_dev && !rc; i++)
            if (!(r.cache[i] = kiln_progcache_new(r.devs[i])))
                rc = KILN_EXIT_FAIL;
        if (!rc && !(r.t = calloc((size_t)(r.n_dev * r.n_k), sizeof *r.t)))
            rc = KILN_EXIT_FAIL;
        if (rc)
            fprintf(stderr, "kiln check: out of memory\n");
    }
    if (!rc) {
        for (int ki = 0; ki < r.n_k; ki++)
            if (wanted(&r.o, kiln_kernel_at(ki)))
                check_kernel(&r, ki);
        if (r.tty)
            fprintf(stderr, "\r\033[K");
        print_summary(&r);
        rc = r.failures || r.missing ? KILN_EXIT_FAIL : KILN_EXIT_OK;
    }
    free(r.t);
    for (int i = 0; i < r.n_dev; i++) {
        kiln_progcache_free(r.cache[i]);
        kiln_device_close(r.devs[i]);
    }
    return rc;
}
