/* tests/cuda/cuda_compile_test.c - every CUDA variant `kiln check` would run
 * must compile with NVRTC (no GPU needed).
 *
 * For every kernel in the registry, every check shape and every config that
 * `kiln check --device cuda` draws (default, corners, then random valid ones
 * from the same seeded generator in the same order), the cuda plan is built
 * and each step compiled with the backend's compile_only() for sm_75, sm_80
 * and sm_90 against a CUDA-like fingerprint (warp 32, 48 KiB shared, 1024
 * threads). Identical programs (same source, entry, workgroup and defines)
 * are compiled once per architecture. The default config is also compiled
 * with KILN_TEST_BREAK=1 (`kiln check --break`). Prints a table per kernel;
 * any failure names kernel, shape, config, step and architecture with the
 * NVRTC log. Planted errors check that compile failures come back as
 * KILN_E_COMPILE with the log. The device read-bandwidth probe
 * (devices/read_bw.cu) compiles in each of its access patterns.
 *
 * No NVRTC: SKIP (77), or FAIL when $KILN_REQUIRE_BACKENDS names cuda-compile.
 * Environment: KILN_CUDA_RANDOM (random configs per kernel, default 3 like
 * kiln check), KILN_CUDA_JOBS (compile threads, default: online CPUs),
 * KILN_CUDA_ARCHS (comma list, default sm_75,sm_80,sm_90). */
#include <pthread.h>
#include <unistd.h>

#include "devices/device.h"
#include "kernels/kernel.h"
#include "tests/test.h"
#include "util/clock.h"
#include "util/rng.h"

#define MAX_SHAPES 64
#define MAX_CONFIGS 64

static const struct {
    const char *kernel, *json;
} extra[] = {
    {"gemv_int4", "{\"layout\":3,\"ilv\":4,\"wg\":64}"},
    {"gemv_int4", "{\"layout\":3,\"ilv\":8,\"wg\":32}"},
    {"gemv_int4", "{\"layout\":3,\"ilv\":16,\"wg\":128}"},
    {"gemm_int4", "{\"layout\":1,\"tokens\":2}"},
};
#define MAX_ARCHS 8

typedef struct job {
    int kernel;                      /* registry index */
    int arch;                        /* index into archs[] */
    char key[2048];                  /* dedup key */
    char where[1024];                /* kernel/shape/config/step, for messages */
    kiln_program_desc desc;
    kiln_define defs[KILN_MAX_DEFINES + 4];
    int rc;
    size_t bytes;
    char msg[1024];
} job;

typedef struct pool {
    const kiln_backend_impl *be;
    const char *const *archs;
    job *jobs;
    int n_jobs;
    int next;
    pthread_mutex_t mu;
} pool;

static const char *arch_list[MAX_ARCHS];
static int n_archs;

static void *worker(void *arg)
{
    pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int i = p->next++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n_jobs)
            return NULL;
        job *j = &p->jobs[i];
        j->desc.defines = j->defs; /* the job array moved while it grew */
        kiln_err e = {0};
        j->rc = p->be->compile_only(&j->desc, p->archs[j->arch], &j->bytes, &e);
        if (j->rc)
            snprintf(j->msg, sizeof j->msg, "%s", e.msg);
    }
}

/* The fingerprint of a CUDA device of that architecture (config_valid reads it). */
static void cuda_fp(kiln_fingerprint *fp, const char *arch)
{
    memset(fp, 0, sizeof *fp);
    fp->backend = KILN_CUDA;
    snprintf(fp->vendor, sizeof fp->vendor, "NVIDIA");
    fp->vendor_id = 0x10de;
    snprintf(fp->name, sizeof fp->name, "compile-only %s", arch);
    snprintf(fp->arch, sizeof fp->arch, "%s", arch);
    fp->compute_units = 108;
    fp->subgroup_size = fp->subgroup_min = fp->subgroup_max = 32;
    fp->has_subgroup_ops = 1;
    fp->local_mem_bytes = 48 * 1024;
    fp->max_workgroup = 1024;
    fp->memory_bytes = 40ull << 30;
    fp->llc_bytes = 40ull << 20;
}

typedef struct jobs {
    job *v;
    int n, cap;
} jobs;

static job *jobs_add(jobs *js)
{
    if (js->n == js->cap) {
        js->cap = js->cap ? 2 * js->cap : 256;
        js->v = realloc(js->v, (size_t)js->cap * sizeof *js->v);
        if (!js->v) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    job *j = &js->v[js->n];
    memset(j, 0, sizeof *j);
    return j;
}

/* Queues every step of plan (for arch) not queued already; the program
 * identity is the runner's: source, entry, workgroup and every define. */
static int queue_plan(jobs *js, int ki, int ai, const kiln_kernel *k, kiln_plan *plan, int test_break,
                      const char *where, char *err, size_t err_n)
{
    for (int si = 0; si < plan->n_steps; si++) {
        kiln_plan_step *st = &plan->steps[si];
        for (int a = 0; a < 3; a++)
            if (!st->local[a])
                st->local[a] = 1;
        /* as kiln_variant_build does */
        kiln_plan_define(st, "LOCAL_X", st->local[0]);
        kiln_plan_define(st, "LOCAL_Y", st->local[1]);
        kiln_plan_define(st, "LOCAL_Z", st->local[2]);
        if (test_break)
            kiln_plan_define(st, "KILN_TEST_BREAK", 1);
        const char *src = kiln_source_get(st->source, KILN_CUDA);
        if (!src) {
            snprintf(err, err_n, "%s step %d: no CUDA source '%s'", where, si, st->source ? st->source : "(null)");
            return -1;
        }
        if (strlen(st->signature) != (size_t)st->n_args) {
            snprintf(err, err_n, "%s step %d (%s): %d args for signature '%s'", where, si, st->entry, st->n_args,
                     st->signature);
            return -1;
        }
        job *j = jobs_add(js);
        size_t used = (size_t)snprintf(j->key, sizeof j->key, "%d|%s|%s|%u,%u,%u", ai, st->source, st->entry,
                                       st->local[0], st->local[1], st->local[2]);
        for (int d = 0; d < st->n_defines && used < sizeof j->key; d++)
            used += (size_t)snprintf(j->key + used, sizeof j->key - used, "|%s=%lld", st->defines[d].name,
                                     st->defines[d].value);
        int dup = 0;
        for (int i = 0; i < js->n && !dup; i++)
            dup = strcmp(js->v[i].key, j->key) == 0;
        if (dup)
            continue;
        j->kernel = ki;
        j->arch = ai;
        snprintf(j->where, sizeof j->where, "%s step %d (%s)", where, si, st->entry);
        memcpy(j->defs, st->defines, sizeof st->defines);
        j->desc = (kiln_program_desc){
            .kernel = k->name,
            .entry = st->entry,
            .source = src,
            .signature = st->signature,
            .defines = j->defs,
            .n_defines = st->n_defines,
            .local = {st->local[0], st->local[1], st->local[2]},
        };
        js->n++;
    }
    return 0;
}

static void planted_errors(const kiln_backend_impl *be)
{
    kiln_err e = {0};
    size_t bytes = 0;
    /* a source that does not compile: the log names the culprit */
    kiln_program_desc bad = {.kernel = "planted", .entry = "planted", .signature = "b",
                             .source = "extern \"C\" __global__ void planted(float *p)\n"
                                       "{ p[threadIdx.x] = kiln_no_such_identifier; }\n"};
    int rc = be->compile_only(&bad, "sm_80", &bytes, &e);
    CHECK(rc == KILN_E_COMPILE, "bad source: compile_only returned %d (%s), want KILN_E_COMPILE", rc, e.msg);
    CHECK(strstr(e.msg, "kiln_no_such_identifier") && strstr(e.msg, "planted"),
          "bad source: the message lacks the NVRTC log or the kernel name: %s", e.msg);
    printf("planted bad source -> %s\n", e.msg);

    /* a real kernel broken by an extra define (the prelude's typedef) */
    const kiln_kernel *k = NULL;
    for (int i = 0; i < kiln_kernel_count() && !k; i++) {
        kiln_shape s;
        const kiln_kernel *c = kiln_kernel_at(i);
        if (c->shapes && c->shapes(KILN_SHAPES_CHECK, &s, 1) == 1)
            k = c;
    }
    if (!k)
        return;
    kiln_shape s;
    kiln_config cfg;
    kiln_plan plan;
    k->shapes(KILN_SHAPES_CHECK, &s, 1);
    kiln_config_default(k, &cfg);
    CHECK_OK(k->plan(&s, &cfg, KILN_CUDA, &plan, &e), &e);
    kiln_plan_step *st = &plan.steps[0];
    kiln_plan_define(st, "uint32_t", 1); /* -Duint32_t=1: "typedef unsigned int 1;" */
    kiln_program_desc d = {.kernel = k->name, .entry = st->entry, .signature = st->signature,
                           .source = kiln_source_get(st->source, KILN_CUDA), .defines = st->defines,
                           .n_defines = st->n_defines, .local = {st->local[0], st->local[1], st->local[2]}};
    memset(&e, 0, sizeof e);
    rc = be->compile_only(&d, "sm_90", &bytes, &e);
    CHECK(rc == KILN_E_COMPILE, "%s with -Duint32_t=1: compile_only returned %d (%s), want KILN_E_COMPILE", k->name,
          rc, e.msg);
    CHECK(strstr(e.msg, k->name) && strstr(e.msg, "uint32_t=1") && strstr(e.msg, "error"),
          "%s with -Duint32_t=1: the message lacks the kernel, the defines or the log: %s", k->name, e.msg);
    printf("planted bad define -> %.300s...\n", e.msg);

    /* the entry must exist in the module */
    st->n_defines--;
    d.n_defines = st->n_defines;
    d.entry = "kiln_no_such_entry";
    memset(&e, 0, sizeof e);
    rc = be->compile_only(&d, "sm_90", &bytes, &e);
    CHECK(rc == KILN_E_COMPILE && strstr(e.msg, "kiln_no_such_entry"),
          "missing entry: compile_only returned %d (%s), want KILN_E_COMPILE naming the entry", rc, e.msg);

    /* architectures */
    d.entry = st->entry;
    rc = be->compile_only(&d, "gfx90a", &bytes, &e);
    CHECK(rc == KILN_E_INVALID, "arch gfx90a: got %d (%s), want KILN_E_INVALID", rc, e.msg);
    rc = be->compile_only(&d, "sm_30", &bytes, &e);
    CHECK(rc == KILN_E_UNAVAILABLE && strstr(e.msg, "sm_30"), "arch sm_30: got %d (%s), want KILN_E_UNAVAILABLE", rc,
          e.msg);
    /* newer than this NVRTC knows: PTX for its newest architecture */
    rc = be->compile_only(&d, "sm_990", &bytes, &e);
    CHECK(rc == 0 && bytes > 0, "arch sm_990 (future GPU): got %d (%s), want PTX", rc, e.msg);
}

/* The device read-bandwidth probe (devices/read_bw.cu): every access pattern
 * kiln_measure_read_bandwidth may run on a CUDA device, at 256 and 1024
 * threads, for every architecture. */
static void read_probe(const kiln_backend_impl *be)
{
    struct { int layout; uint32_t lanes; } pats[] = {{0, 1}, {1, 1}, {1, 32}};
    uint32_t locals[] = {256, 1024};
    int ok = 0;
    for (int a = 0; a < n_archs; a++)
        for (int p = 0; p < 3; p++)
            for (int l = 0; l < 2; l++) {
                kiln_program_desc desc;
                kiln_define defs[2];
                kiln_err e = {0};
                size_t bytes = 0;
                CHECK_OK(kiln_read_bw_program(KILN_CUDA, pats[p].layout, pats[p].lanes, locals[l], &desc, defs, &e),
                         &e);
                int rc = be->compile_only(&desc, arch_list[a], &bytes, &e);
                CHECK(rc == 0 && bytes > 0, "FAIL read probe layout %d lanes %u local %u %s: %s", pats[p].layout,
                      pats[p].lanes, locals[l], arch_list[a], e.msg);
                ok += rc == 0;
            }
    printf("read probe (devices/read_bw.cu): %d of %d programs compiled\n", ok, n_archs * 6);
}

int main(void)
{
    const kiln_backend_impl *be = kiln_backend_get(KILN_CUDA);
    if (!be || !be->compile_only) {
        CHECK(!test_backend_required("cuda-compile"), "cuda-compile required but the cuda backend is not built");
        if (!test_failures)
            KILN_SKIP("the cuda backend is not built into this binary");
        return test_result();
    }
    const char *env_archs = getenv("KILN_CUDA_ARCHS");
    static char arch_buf[256];
    snprintf(arch_buf, sizeof arch_buf, "%s", env_archs && env_archs[0] ? env_archs : "sm_75,sm_80,sm_90");
    for (char *tok = strtok(arch_buf, ","); tok && n_archs < MAX_ARCHS; tok = strtok(NULL, ","))
        arch_list[n_archs++] = tok;

    /* Is NVRTC there? Compile a trivial program. */
    kiln_err e = {0};
    size_t bytes = 0;
    kiln_program_desc hello = {.kernel = "hello", .entry = "hello", .signature = "b",
                               .source = "extern \"C\" __global__ void hello(int *p) { p[threadIdx.x] = 1; }\n"};
    int rc = be->compile_only(&hello, arch_list[0], &bytes, &e);
    if (rc == KILN_E_UNAVAILABLE) {
        CHECK(!test_backend_required("cuda-compile"), "cuda-compile required but: %s", e.msg);
        if (!test_failures)
            KILN_SKIP("%s", e.msg);
        return test_result();
    }
    CHECK_OK(rc, &e);
    if (test_failures)
        return test_result();

    planted_errors(be);
    read_probe(be);

    const char *env_random = getenv("KILN_CUDA_RANDOM");
    int n_random = env_random ? atoi(env_random) : 3;
    kiln_rng rng;
    kiln_rng_seed(&rng, 1); /* kiln check's default --seed */
    jobs js = {0};
    int n_k = kiln_kernel_count();
    int *n_pairs = calloc((size_t)n_k, sizeof *n_pairs);   /* valid (shape, config) pairs, over archs */
    int *n_invalid = calloc((size_t)n_k, sizeof *n_invalid);
    int *n_shapes = calloc((size_t)n_k, sizeof *n_shapes);
    int *skipped = calloc((size_t)n_k, sizeof *skipped);
    kiln_fingerprint fps[MAX_ARCHS];
    for (int a = 0; a < n_archs; a++)
        cuda_fp(&fps[a], arch_list[a]);

    for (int ki = 0; ki < n_k; ki++) {
        const kiln_kernel *k = kiln_kernel_at(ki);
        kiln_shape shapes[MAX_SHAPES];
        int n_s = k->shapes ? k->shapes(KILN_SHAPES_CHECK, shapes, MAX_SHAPES) : 0;
        if (n_s <= 0) {
            printf("skipped %s: it declares no shapes (not implemented yet)\n", k->name);
            skipped[ki] = 1;
            continue;
        }
        n_shapes[ki] = n_s;
        kiln_config cfgs[MAX_CONFIGS];
        /* one cuda device in kiln check: configs drawn once per kernel */
        int n_c = kiln_config_pick(k, &shapes[0], &fps[n_archs - 1], n_random, &rng, cfgs, MAX_CONFIGS);
        /* variants the draw may miss, compiled always: gemv's interleaved
         * layout 3 at each ilv, gemm's layout 1 (the check shapes with an
         * ilv build both gemm layouts with ILV > 1) */
        for (size_t xi = 0; xi < sizeof extra / sizeof extra[0]; xi++) {
            if (strcmp(extra[xi].kernel, k->name))
                continue;
            kiln_err je = {0};
            CHECK(n_c < MAX_CONFIGS, "%s: too many configs", k->name);
            if (n_c < MAX_CONFIGS && !kiln_config_from_json(k, extra[xi].json, &cfgs[n_c], &je))
                n_c++;
            else
                CHECK(0, "%s: extra config %s: %s", k->name, extra[xi].json, je.msg);
        }
        for (int ai = 0; ai < n_archs; ai++)
            for (int si = 0; si < n_s; si++) {
                char skey[128];
                k->shape_key(&shapes[si], skey, sizeof skey);
                for (int ci = 0; ci <= n_c; ci++) {
                    /* ci == n_c: the default config with KILN_TEST_BREAK, first shape only */
                    int brk = ci == n_c;
                    if (brk && si)
                        continue;
                    kiln_config c;
                    if (brk)
                        kiln_config_default(k, &c);
                    else
                        c = cfgs[ci];
                    char cj[512], why[256], where[1024];
                    kiln_config_to_json(k, &c, cj, sizeof cj);
                    if (!k->config_valid(&shapes[si], &c, &fps[ai], why, sizeof why)) {
                        n_invalid[ki]++;
                        continue;
                    }
                    n_pairs[ki]++;
                    snprintf(where, sizeof where, "%s shape %s config %s%s %s", k->name, skey, cj,
                             brk ? " +KILN_TEST_BREAK" : "", arch_list[ai]);
                    kiln_plan plan;
                    memset(&plan, 0, sizeof plan);
                    kiln_err pe = {0};
                    if (k->plan(&shapes[si], &c, KILN_CUDA, &plan, &pe)) {
                        CHECK(0, "FAIL %s: plan: %s", where, pe.msg);
                        continue;
                    }
                    char err[1200];
                    if (queue_plan(&js, ki, ai, k, &plan, brk, where, err, sizeof err))
                        CHECK(0, "FAIL %s", err);
                }
            }
    }

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env_jobs = getenv("KILN_CUDA_JOBS");
    int n_threads = env_jobs ? atoi(env_jobs) : (int)(ncpu > 0 ? ncpu : 1);
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > 32)
        n_threads = 32;
    printf("compiling %d CUDA programs for %d architecture(s) with %d thread(s)...\n", js.n, n_archs, n_threads);
    fflush(stdout);
    double t0 = kiln_now_s();
    pool p = {.be = be, .archs = arch_list, .jobs = js.v, .n_jobs = js.n};
    pthread_mutex_init(&p.mu, NULL);
    pthread_t th[32];
    for (int i = 0; i < n_threads; i++)
        pthread_create(&th[i], NULL, worker, &p);
    for (int i = 0; i < n_threads; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.mu);
    double secs = kiln_now_s() - t0;

    printf("\n%-18s %6s %8s %5s", "kernel", "shapes", "configs", "n/a");
    for (int a = 0; a < n_archs; a++)
        printf(" %7s", arch_list[a]);
    printf(" %9s %8s %12s\n", "variants", "failures", "bytes");
    int total_var = 0, total_fail = 0;
    size_t total_bytes = 0;
    for (int ki = 0; ki < n_k; ki++) {
        const kiln_kernel *k = kiln_kernel_at(ki);
        if (skipped[ki]) {
            printf("%-18s %6s %8s %5s", k->name, "-", "-", "-");
            for (int a = 0; a < n_archs; a++)
                printf(" %7s", "-");
            printf(" %9s %8s %12s  SKIPPED (no shapes)\n", "-", "-", "-");
            continue;
        }
        int per_arch[MAX_ARCHS] = {0}, var = 0, fail = 0;
        size_t b = 0;
        for (int i = 0; i < js.n; i++) {
            job *j = &js.v[i];
            if (j->kernel != ki)
                continue;
            var++;
            per_arch[j->arch]++;
            if (j->rc) {
                fail++;
                CHECK(0, "FAIL %s: %s", j->where, j->msg);
            } else {
                b += j->bytes;
            }
        }
        printf("%-18s %6d %8d %5d", k->name, n_shapes[ki], n_pairs[ki], n_invalid[ki]);
        for (int a = 0; a < n_archs; a++)
            printf(" %7d", per_arch[a]);
        printf(" %9d %8d %12zu  %s\n", var, fail, b, fail ? "FAIL" : var ? "ok" : "NONE COMPILED");
        CHECK(var > 0, "%s: no CUDA variant compiled (every config invalid for a CUDA device?)", k->name);
        total_var += var;
        total_fail += fail;
        total_bytes += b;
    }
    printf("\n%d variants compiled in %.1fs, %d failure(s), %zu bytes of CUBIN\n", total_var, secs, total_fail,
           total_bytes);

    free(js.v);
    free(n_pairs);
    free(n_invalid);
    free(n_shapes);
    free(skipped);
    return test_result();
}
