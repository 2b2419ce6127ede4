/* bench/bench_compare.h - is a run slower than its baseline?
 *
 * Rows are matched on (device fingerprint, subject, metric); only gated
 * metrics (higher_is_better 0 or 1) decide. For each row the slowdown is
 * current/baseline - 1 for lower-is-better metrics and baseline/current - 1
 * for higher-is-better ones. The allowed change is
 *     tol = max(threshold, k * sqrt(spread_current^2 + spread_baseline^2))
 * (relative spreads: MAD/median of each run), so a noisy measurement needs a
 * larger change before it counts. slowdown > tol is a regression ("slower"),
 * slowdown < -tol an improvement ("faster"), anything else "unchanged".
 * Rows present on one side only are listed ("new", "missing") and never fail. */
#ifndef KILN_BENCH_BENCH_COMPARE_H
#define KILN_BENCH_BENCH_COMPARE_H

#include <stdio.h>

#include "bench/bench_store.h"

typedef struct kiln_compare_opts {
    double threshold;   /* relative, default 0.05 */
    double k;           /* spreads of noise allowed, default 3 */
    int fmt;            /* KILN_FMT_TABLE | KILN_FMT_MD | KILN_FMT_JSON (csv prints as table) */
} kiln_compare_opts;

typedef enum { KILN_CMP_UNCHANGED = 0, KILN_CMP_FASTER, KILN_CMP_SLOWER, KILN_CMP_NEW, KILN_CMP_MISSING } kiln_cmp_verdict;

typedef struct kiln_compare_summary {
    int rows, slower, faster, unchanged, added, missing;
} kiln_compare_summary;

void kiln_compare_defaults(kiln_compare_opts *o);
/* Prints the per-row verdicts and a reason per regression to out. */
void kiln_bench_compare(const kiln_bench_set *cur, const kiln_bench_set *base, const kiln_compare_opts *o, FILE *out,
                        kiln_compare_summary *sum);

#endif
