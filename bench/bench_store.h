/* bench/bench_store.h - benchmark history: runs and their results in the
 * tuning database (tables bench_runs, bench_results), loading them back, and
 * a JSON form of runs that can serve as a baseline file.
 *
 * A run is one device x one kind ("kernels" or "model") at one commit and
 * build. Runs written by one invocation share a batch tag (notes start with
 * "batch=<hex>"), so a multi-device invocation can be selected as a unit.
 * A result is (subject, metric): subject is "gemv_int4 m4096.k4096.q4f16_1.g32"
 * or a model file, metric a name like "tuned_us" or "tg_tok_s".
 *
 * Invariants: a run and all its results are committed in one transaction
 * (kiln_bench_end), so history never holds half runs; value is the median
 * (or the caller's central statistic) and spread is relative (MAD/median or
 * stddev/mean); higher_is_better = -1 marks an informational metric that
 * compare shows but never gates on (derived numbers like GB/s or speedup,
 * which are functions of the gated times). A non-zero mean is stored as a
 * second row "<metric>:mean" (informational). */
#ifndef KILN_BENCH_BENCH_STORE_H
#define KILN_BENCH_BENCH_STORE_H

#include <stdint.h>

#include "db/db.h"

enum { KILN_BENCH_LOWER = 0, KILN_BENCH_HIGHER = 1, KILN_BENCH_INFO = -1 };

typedef struct kiln_bench_result {
    int64_t run_id;          /* filled when loaded; 0 for a file-only run */
    char device[192];        /* display: "cpu:0 AMD EPYC ..." / "opencl pthread-..." */
    char fingerprint[512];   /* kiln_fingerprint_key: the device identity compare matches on */
    char subject[256];       /* "gemv_int4 m4096.k4096.q4f16_1.g32" or the model */
    char metric[64];         /* "tuned_us", "pp_tok_s", "latency_p90_ms" */
    char unit[16];           /* "us", "GB/s", "tok/s", "ms", "x", "%" */
    int higher_is_better;    /* KILN_BENCH_LOWER | KILN_BENCH_HIGHER | KILN_BENCH_INFO */
    double value;            /* median (central value) */
    double mean;             /* 0 = not given */
    double spread;           /* relative: 0.02 = 2% */
    int n;                   /* samples behind value */
    char git_commit[64];     /* filled when loaded */
    char created[32];
} kiln_bench_result;

/* A growable list of results (possibly of several runs and devices). */
typedef struct kiln_bench_set {
    kiln_bench_result *r;
    int n, cap;
    int64_t run_ids[64];     /* the runs it was loaded from */
    int n_runs;
} kiln_bench_set;

int kiln_bench_set_add(kiln_bench_set *s, const kiln_bench_result *r);
void kiln_bench_set_free(kiln_bench_set *s);

/* Writer. */
typedef struct kiln_bench_writer {
    kiln_db *db;
    int64_t run_id, device_id;
    char fingerprint[512], device[192];
    int n_results;
    int open;                /* inside the run's transaction */
} kiln_bench_writer;

/* A fresh batch tag ("batch=<16 hex>"), shared by the runs of one invocation. */
void kiln_bench_batch_tag(char out[32]);
/* "buildtype=debugoptimized backends=cpu,opencl,vulkan,cuda" of this binary. */
const char *kiln_bench_build_options(void);

/* Starts a run (opens its transaction): upserts the device (with its
 * measured copy bandwidth), records commit, build options, host. kind is
 * "kernels" or "model"; subject names what was run; batch from
 * kiln_bench_batch_tag (may be NULL). */
int kiln_bench_begin(kiln_bench_writer *w, kiln_db *db, const kiln_fingerprint *fp, const char *kind,
                     const char *subject, const char *batch, kiln_err *e);
/* Adds one result (device fields of r are ignored: the run's device). */
int kiln_bench_add(kiln_bench_writer *w, const kiln_bench_result *r, kiln_err *e);
/* Appends a line to the run's notes (e.g. which tuned config was used). */
int kiln_bench_note(kiln_bench_writer *w, const char *line, kiln_err *e);
/* Commits (ok) or rolls back (!ok) the run. */
int kiln_bench_end(kiln_bench_writer *w, int ok, kiln_err *e);

/* Loads the results of one run into s (appends). */
int kiln_bench_load_run(kiln_db *db, int64_t run_id, kiln_bench_set *s, kiln_err *e);

/* Resolves a run selector into a set of runs and loads them:
 *   "N"          run N and the runs of its batch (one per device)
 *   "latest"     the latest run per (device, kind)
 *   "previous"   (only with relative_to) per (device, kind) of relative_to's
 *                runs, the latest run older than it
 *   FILE.json    the runs of a `kiln bench export` file
 *   a git ref    (tag, branch, commit prefix) the latest run per (device,
 *                kind) whose commit matches (`git rev-parse` when in a repo,
 *                else a prefix of the stored commit)
 * kind may be NULL (any). Fails with a message when nothing matches. */
int kiln_bench_select(kiln_db *db, const char *selector, const char *kind, const kiln_bench_set *relative_to,
                      kiln_bench_set *s, kiln_err *e);

/* JSON: {"kiln_bench":1,"runs":[{run fields, "device":{...},"results":[...]}]} */
char *kiln_bench_export_json(kiln_db *db, const int64_t *run_ids, int n_runs, kiln_err *e);
int kiln_bench_load_json(const char *path, kiln_bench_set *s, kiln_err *e);
/* Imports the runs of an export file as new runs (new uuids, so a file can be
 * imported twice as two runs). time_factor != 1 scales every result the way
 * a slowdown by that factor would (times x f, rates / f): for tests and
 * what-if baselines. new_ids may be NULL. */
int kiln_bench_import_json(kiln_db *db, const char *path, double time_factor, int64_t *new_ids, int max_ids,
                           int *n_new, kiln_err *e);

#endif
