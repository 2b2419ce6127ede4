/* tests/tuner/tuner_test.c - the tuner end to end on real devices.
 *
 * 1. Isolation: a session with one planted crashing variant and one planted
 *    hanging variant (tests-only defines honoured by the cpu sources)
 *    finishes, records both with their status, and still picks a verified
 *    winner.
 * 2. Every strategy, on cpu and on every other available backend, finishes
 *    a short session with a verified winner and never proposes a config twice.
 * 3. Search alone: exhaustive covers the pool exactly once.
 * 4. Rotation: the buffer copies a measurement cycles through exceed twice
 *    the LLC for weight-sized problems, also with a 300 MiB L3, within a
 *    quarter of device memory. */
#include <math.h>

#include "tuner/measure.h"

#include "tests/test.h"
#include "tuner/tune.h"

typedef struct log_t {
    int n, crash, timeout, ok;
    kiln_config seen[256];
    const kiln_kernel *k;
    int dup;
} log_t;

static int record(void *user, const kiln_kernel *k, const kiln_shape *s, const kiln_trial *t, kiln_err *e)
{
    (void)s;
    (void)e;
    log_t *l = user;
    for (int i = 0; i < l->n && i < 256; i++)
        if (kiln_config_equal(k, &l->seen[i], &t->cfg))
            l->dup++;
    if (l->n < 256)
        l->seen[l->n] = t->cfg;
    l->n++;
    l->crash += t->status == KILN_TRIAL_CRASH;
    l->timeout += t->status == KILN_TRIAL_TIMEOUT;
    l->ok += t->status == KILN_TRIAL_OK;
    return 0;
}

static kiln_shape small_gemv(void)
{
    kiln_shape s = {0};
    s.m = 256;
    s.k = 512;
    s.quant = KILN_Q4F16_1;
    s.group = 32;
    return s;
}

static void test_isolation(const kiln_kernel *k)
{
    kiln_tune_opts o;
    kiln_tune_defaults(&o);
    o.strategy = KILN_SEARCH_RANDOM;
    o.budget_trials = 4; /* the cpu space of gemv_int4 has 4 configs (rows) */
    o.patience = 0;
    o.timeout_floor_s = 3;
    o.timeout_factor = 5;
    o.plant_crash_at = 2;
    o.plant_hang_at = 3;
    o.measure.max_seconds = 0.05;
    o.remeasure_rounds = 2;
    kiln_shape s = small_gemv();
    log_t l = {.k = k};
    kiln_tune_hooks h = {.user = &l, .record = record};
    kiln_tune_result r;
    kiln_err e = {0};
    int rc = kiln_tune(&o, "cpu", 0, k, &s, &h, &r, &e);
    CHECK(rc == 0, "isolated session failed: %s", e.msg);
    CHECK(l.crash == 1, "expected 1 crash recorded, got %d", l.crash);
    CHECK(l.timeout == 1, "expected 1 timeout recorded, got %d", l.timeout);
    CHECK(l.n == 4, "expected all 4 trials, got %d", l.n);
    CHECK(r.worker_restarts == 2, "expected 2 worker restarts, got %d", r.worker_restarts);
    CHECK(r.best.status == KILN_TRIAL_OK && r.best.median_ns > 0, "no verified winner");
    fprintf(stderr, "isolation: %d trials, %d ok, crash %d, timeout %d, restarts %d, best %.1f us\n", l.n, l.ok,
            l.crash, l.timeout, r.worker_restarts, r.best.median_ns / 1e3);
}

static void test_strategies(const kiln_kernel *k, const char *device)
{
    for (int st = 0; st < KILN_SEARCH_COUNT; st++) {
        kiln_tune_opts o;
        kiln_tune_defaults(&o);
        o.strategy = st;
        o.budget_trials = 10;
        o.seed = 7 + (uint64_t)st;
        o.measure.max_seconds = 0.05;
        o.remeasure_rounds = 2;
        kiln_shape s = small_gemv();
        log_t l = {.k = k};
        kiln_tune_hooks h = {.user = &l, .record = record};
        kiln_tune_result r;
        kiln_err e = {0};
        int rc = kiln_tune(&o, device, 0, k, &s, &h, &r, &e);
        CHECK(rc == 0, "%s on %s failed: %s", kiln_search_name(st), device, e.msg);
        CHECK(l.dup == 0, "%s proposed a config twice", kiln_search_name(st));
        CHECK(l.n >= 1 && l.n <= 10, "%s ran %d trials for a budget of 10", kiln_search_name(st), l.n);
        CHECK(r.best.status == KILN_TRIAL_OK && r.best.median_ns > 0, "%s: no verified winner", kiln_search_name(st));
        CHECK(r.speedup > 0, "%s: default was not re-measured", kiln_search_name(st));
        fprintf(stderr, "%-10s %-7s trials %2d ok %2d best %8.1f us speedup %.2fx margin %.3f%s\n",
                kiln_search_name(st), device, l.n, l.ok, r.best.median_ns / 1e3, r.speedup, r.margin,
                r.tie ? " (tie)" : "");
    }
}

static void test_exhaustive_covers_pool(const kiln_kernel *k)
{
    kiln_fingerprint fp = {.backend = KILN_OPENCL, .subgroup_size = 16, .subgroup_min = 16, .subgroup_max = 16,
                           .has_subgroup_ops = 1, .local_mem_bytes = 65536, .max_workgroup = 1024};
    kiln_shape s = small_gemv();
    kiln_err e = {0};
    kiln_search *se = kiln_search_new(KILN_SEARCH_EXHAUSTIVE, k, &s, &fp, 1, &e);
    CHECK(se != NULL, "search: %s", e.msg);
    if (!se)
        return;
    int n = kiln_search_pool_size(se), got = 0;
    kiln_config c, def;
    kiln_config_default(k, &def);
    while (kiln_search_next(se, &c)) {
        char why[128];
        CHECK(k->config_valid(&s, &c, &fp, why, sizeof why), "proposed an invalid config: %s", why);
        if (got == 0)
            CHECK(kiln_config_equal(k, &c, &def), "the default must come first");
        kiln_search_report(se, &c, 1000.0 + got);
        got++;
        if (got > n)
            break;
    }
    CHECK(got == n && n > 1, "exhaustive visited %d of a pool of %d", got, n);
    kiln_search_free(se);
}

static void test_rotation(void)
{
    const double mib = 1024.0 * 1024.0;
    kiln_fingerprint fp = {.backend = KILN_CPU, .llc_bytes = (uint64_t)(300 * mib), .memory_bytes = 24ull << 30};
    /* 4096x4096 q4f16_1 gemv (~9.4 MB), 11008x4096 (~25 MB): timed from memory */
    const double sizes[] = {9.4e6, 25.2e6, 64 * mib, 700 * mib};
    for (int i = 0; i < 4; i++) {
        int n = kiln_rotation_count(&fp, sizes[i]);
        CHECK(n >= 1 && n <= KILN_ROTATION_MAX, "%.0f bytes: %d copies", sizes[i], n);
        CHECK(n * sizes[i] > 2.0 * (double)fp.llc_bytes, "%.0f bytes x %d copies <= 2 x LLC (300 MiB)", sizes[i], n);
    }
    /* a small device memory caps the copies at a quarter of it */
    kiln_fingerprint small = fp;
    small.memory_bytes = 2ull << 30;
    int n = kiln_rotation_count(&small, 9.4e6);
    CHECK(n * 9.4e6 <= (double)small.memory_bytes / 4 && n > 16, "2 GiB device: %d copies of 9.4 MB", n);
    /* one RMSNorm row: cache-resident by design, count still bounded */
    CHECK(kiln_rotation_count(&fp, 16384) == KILN_ROTATION_MAX, "16 KiB problem: %d copies",
          kiln_rotation_count(&fp, 16384));
    CHECK(kiln_rotation_count(&fp, 0) == 1, "empty problem");
}

int main(void)
{
    test_rotation();
    const kiln_kernel *k = kiln_kernel_find("gemv_int4");
    if (!k || !k->shapes)
        KILN_SKIP("gemv_int4 not implemented");
    test_exhaustive_covers_pool(k);
    test_isolation(k);
    test_strategies(k, "cpu");
    const char *others[] = {"opencl", "vulkan"};
    for (int i = 0; i < 2; i++) {
        kiln_backend_kind b;
        kiln_backend_parse(others[i], &b);
        kiln_backend_status st;
        kiln_backend_probe(b, &st);
        if (st.available)
            test_strategies(k, others[i]);
        else
            CHECK(!test_backend_required(others[i]), "%s required but unavailable: %s", others[i], st.reason);
    }
    return test_result();
}
