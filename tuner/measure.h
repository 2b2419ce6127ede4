/* tuner/measure.h - the measurement protocol shared by the tuner and
 * `kiln bench kernels`.
 *
 * Device timers only; warm-up runs first; then timed runs until the relative
 * spread (MAD / median) is below a target with at least min_reps samples, or
 * max_reps / a time cap is reached. Each run uses the next of several copies
 * of the problem's buffers, sized so the data touched across the rotation
 * exceeds the last-level cache: memory-bound kernels are not timed from
 * cache. The median and its spread are kept. */
#ifndef KILN_TUNER_MEASURE_H
#define KILN_TUNER_MEASURE_H

#include "kernels/runner.h"

typedef struct kiln_measure_opts {
    int warmup;           /* untimed runs first (default 3) */
    int min_reps;         /* at least this many timed runs (default 7) */
    int max_reps;         /* at most (default 200) */
    double target_spread; /* stop once MAD/median <= this (default 0.02) */
    double max_seconds;   /* time cap per measurement (default 1.0) */
    int copies;           /* buffer copies in rotation; 0 (default): kiln_rotation_count, timed from memory;
                           * 1: the same buffers every run, cache-hot where they fit (how test-backend-ops
                           * and most microbenchmarks time: for comparisons with them) */
} kiln_measure_opts;

typedef struct kiln_measurement {
    double median_ns;
    double spread;  /* MAD / median (robust relative spread) */
    double min_ns, max_ns;
    int n;
} kiln_measurement;

void kiln_measure_defaults(kiln_measure_opts *o);

/* Buffer copies for rotation: enough that copies x bytes > 2 x LLC, at most
 * KILN_ROTATION_MAX and a quarter of device memory. Problems from LLC/64 up
 * (gemv/gemm weights, KV caches of real contexts) are therefore timed from
 * memory, also on hosts with a 300 MiB L3 (with 16 copies a 4096x4096 int4
 * matrix, 9.4 MB, stayed in such an L3). Smaller ones (one RMSNorm row, a
 * rope of one token) stay partly cache-resident: in a decode step their
 * inputs were just written by the previous kernel, so a warm cache is what
 * they meet. */
#define KILN_ROTATION_MAX 128
int kiln_rotation_count(const kiln_fingerprint *fp, double problem_bytes);

int kiln_measure_variant(kiln_variant *v, kiln_problem_dev *copies, int n_copies, const kiln_measure_opts *o,
                         kiln_measurement *m, kiln_err *e);

/* Median and MAD/median of n samples (sorts a copy). */
void kiln_stats_median_spread(const double *x, int n, double *median, double *spread);

#endif
