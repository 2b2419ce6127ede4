/* tuner/tune.h - tune one (kernel, shape) on one device.
 *
 * The default config is measured first (it is the baseline every speedup is
 * against). A strategy then proposes configs until the trial or time budget
 * is spent, or the best has not improved by more than 1% for `patience`
 * trials. Every trial runs isolated (tuner/worker.h): verified against the
 * reference before its time counts, failures recorded with a reason. The top
 * candidates and the default are then re-measured interleaved (round-robin,
 * several rounds) and the winner is declared on those times; a winner whose
 * margin over the runner-up is within the measured noise is a tie, and says
 * so. With sustained_s, each of those finalists then runs back to back for
 * that long (trial after trial) and the winner is chosen on the sustained
 * times: on a phone a kernel that wins for 50 ms and throttles after 20 s
 * is a loser. Each finished trial is handed to hooks->record before the next starts
 * (the database commits it there), so an interrupted session loses nothing. */
#ifndef KILN_TUNER_TUNE_H
#define KILN_TUNER_TUNE_H

#include "tuner/search.h"
#include "tuner/worker.h"

typedef struct kiln_tune_opts {
    int strategy;            /* kiln_search_kind */
    int budget_trials;       /* max trials per (kernel, shape), > 0 */
    double budget_seconds;   /* wall-time cap per (kernel, shape), 0 = none */
    int patience;            /* early stop window in trials, 0 = none */
    uint64_t seed;
    double timeout_floor_s;  /* a trial may take at least this long */
    double timeout_factor;   /* ... or this multiple of the slowest good trial */
    int top_k;               /* candidates re-measured interleaved */
    int remeasure_rounds;
    kiln_measure_opts measure;
    int in_process;          /* no child process (debugging only) */
    const kiln_config *first; /* configs measured right after the default, before the */
    int n_first;              /* strategy's own picks (tune --config); count in the budget */
    double sustained_s;      /* > 0: each finalist then runs back to back this long (thermal) and the
                              * winner is chosen on its sustained time (tune --sustained) */
    int plant_crash_at;      /* tests: trial number (1-based) planted to crash, 0 none */
    int plant_hang_at;       /* tests: trial number planted to hang, 0 none */
} kiln_tune_opts;

void kiln_tune_defaults(kiln_tune_opts *o);

typedef struct kiln_tune_state {
    const kiln_kernel *kernel;
    const kiln_shape *shape;
    const kiln_fingerprint *fp;
    int done, budget, ok, bad, reused;
    double best_ns, default_ns;
    double elapsed_s, eta_s;
    const kiln_trial *last;
    const char *phase;       /* "search" or "remeasure" */
} kiln_tune_state;

typedef struct kiln_tune_hooks {
    void *user;
    /* (optional) resume: 1 and *t filled if this config was already measured */
    int (*lookup)(void *user, const kiln_kernel *k, const kiln_shape *s, const kiln_config *c, kiln_trial *t);
    /* (optional) a finished trial; an error stops the session */
    int (*record)(void *user, const kiln_kernel *k, const kiln_shape *s, const kiln_trial *t, kiln_err *e);
    /* (optional) after every trial */
    void (*progress)(void *user, const kiln_tune_state *st);
} kiln_tune_hooks;

typedef struct kiln_tune_result {
    kiln_fingerprint fp;
    kiln_trial best;         /* times from the interleaved re-measurement */
    kiln_trial runner_up;
    int has_runner_up;
    kiln_trial deflt;        /* the default config, re-measured alongside */
    double speedup;          /* default / best */
    double margin;           /* (runner_up - best) / best */
    int tie;                 /* margin within noise */
    int n_trials, n_ok, n_bad, n_reused;
    int stopped_early;
    int worker_restarts;
    double bytes, gbps, bw_ratio; /* achieved bandwidth of the best and its ratio to copy bandwidth */
    int rotation;            /* buffer copies rotated while timing */
    /* --sustained: best and default times are the sustained figures (median
     * of the trials in the second half of the window); drift = (last - first)
     * / first of their back-to-back trials (positive: it slowed down) */
    double sustained_s;
    double first_ns, last_ns, drift; /* the winner's */
    double default_drift;
    int sustained_trials;            /* the winner's back-to-back trials */
} kiln_tune_result;

/* copy_gbps: the device's measured copy bandwidth (0 if unknown). */
int kiln_tune(const kiln_tune_opts *o, const char *device, double copy_gbps, const kiln_kernel *k,
              const kiln_shape *s, const kiln_tune_hooks *h, kiln_tune_result *r, kiln_err *e);

#endif
