/* bench/bench_kernels.h - `kiln bench kernels`: the default config against
 * the tuned config (from the database, for this device) of each kernel x
 * shape, in the same run, interleaved, next to the device's measured copy
 * and read bandwidth (read is the roof of a kernel that streams its inputs:
 * a gemv reads its weights and writes one value per row).
 *
 * Each (device, kernel, shape) runs in the tuner's worker process
 * (tuner/worker.h), so a crashing or hanging kernel is reported as a failed
 * row and the bench goes on. Both configs are verified against the reference
 * on every measurement (the worker verifies before it times). Rounds
 * alternate the order (default, tuned), (tuned, default), ...; the reported
 * time is the median of the per-round medians and the spread the larger of
 * the per-round MAD/median and the spread between rounds.
 *
 * Stored per device as one bench run (kind "kernels"): per subject
 * "<kernel> <shape key>" the gated metrics default_us and tuned_us and the
 * informational default_gbps, tuned_gbps, tuned_bw_pct (% of copy),
 * tuned_read_pct (% of read), speedup; subject "device" copy_gbps and
 * read_gbps; the run's notes say which tuned config and which
 * lookup level each row used. */
#ifndef KILN_BENCH_BENCH_KERNELS_H
#define KILN_BENCH_BENCH_KERNELS_H

#include "bench/bench_store.h"
#include "tuner/measure.h"

typedef struct kiln_kbench_opts {
    const char *const *devices;  /* device specs; none: cpu */
    int n_devices;
    const char *const *kernels;  /* none: the decode kernel set */
    int n_kernels;
    const char *const *shapes;   /* shape specs; none: each kernel's tune shapes */
    int n_shapes;
    int rounds;                  /* interleaved rounds per config (default 5) */
    uint64_t seed;
    double timeout_s;            /* per measurement (default 120) */
    int in_process;              /* no worker process (debugging) */
    double sustained_s;          /* > 0: default and tuned then each run back to back this long (thermal) */
    kiln_measure_opts measure;
} kiln_kbench_opts;

typedef struct kiln_kbench_row {
    char device[192];            /* "cpu:0 AMD EPYC" */
    double copy_gbps, read_gbps;  /* the device's, measured at the start of its rows */
    const kiln_kernel *kernel;
    kiln_shape shape;
    char shape_key[128];
    char subject[256];
    int level;                   /* kiln_match_level of the tuned config */
    char match[256];             /* "exact device+driver" (+ where it was tuned) or why default */
    char tuned_json[512], default_json[512];
    int same;                    /* tuned config == default */
    int ok;                      /* both measured and verified */
    char error[512];
    double default_ns, default_spread, tuned_ns, tuned_spread;
    int default_n, tuned_n;
    double bytes, default_gbps, tuned_gbps, speedup;
    double bw_ratio, read_ratio; /* tuned GB/s over copy and over read bandwidth (0: not measured) */
    /* sustained_s: each config's settled time (median of the second half of
     * its back-to-back window) and drift (last - first) / first */
    double default_sus_ns, tuned_sus_ns, default_drift, tuned_drift;
    int default_sus_n, tuned_sus_n;
    int64_t run_id;
} kiln_kbench_row;

void kiln_kbench_defaults(kiln_kbench_opts *o);

/* Called after each row (and with row->kernel == NULL when a device starts). */
typedef void (*kiln_kbench_cb)(void *user, const kiln_kbench_row *row);

/* Runs the bench, stores one run per device in db, returns 0 when every
 * device opened; *n_failed counts rows that could not be measured. */
int kiln_bench_kernels(kiln_db *db, const kiln_kbench_opts *o, kiln_kbench_cb cb, void *user, int *n_failed,
                       int64_t *run_ids, int max_runs, int *n_runs, kiln_err *e);

#endif
