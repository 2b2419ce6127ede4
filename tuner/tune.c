/* tuner/tune.c - see tune.h. */
#include "tuner/tune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

void kiln_tune_defaults(kiln_tune_opts *o)
{
    memset(o, 0, sizeof *o);
    o->strategy = KILN_SEARCH_MODEL;
    o->budget_trials = 48;
    o->patience = 24;
    o->seed = 1;
    o->timeout_floor_s = 20;
    o->timeout_factor = 10;
    o->top_k = 3;
    o->remeasure_rounds = 3;
    kiln_measure_defaults(&o->measure);
}

typedef struct candidate {
    kiln_trial t;      /* first measurement */
    double samples[8]; /* re-measured medians */
    int n;
    double sus_ns, first_ns, last_ns; /* --sustained: the figure, the first and the last trial */
    int sus_n;                        /* back-to-back trials (0: not run) */
} candidate;

static double cand_time(const candidate *c)
{
    double m, s;
    if (c->sus_n)
        return c->sus_ns;
    if (!c->n)
        return c->t.median_ns;
    kiln_stats_median_spread(c->samples, c->n, &m, &s);
    return m;
}

static int by_time(const void *a, const void *b)
{
    double x = cand_time(a), y = cand_time(b);
    return (x > y) - (x < y);
}

static void report(const kiln_tune_hooks *h, kiln_tune_state *st, double t0, const char *phase, const kiln_trial *t)
{
    st->elapsed_s = kiln_now_s() - t0;
    st->eta_s = st->done ? st->elapsed_s / st->done * (st->budget - st->done) : 0;
    st->phase = phase;
    st->last = t;
    if (h && h->progress)
        h->progress(h->user, st);
}

/* What one kiln_tune call carries between its phases. */
typedef struct tune_run {
    const kiln_tune_opts *o;
    const kiln_kernel *k;
    const kiln_shape *s;
    const kiln_tune_hooks *h;
    kiln_tune_result *r;
    kiln_worker *w;
    kiln_search *search;
    kiln_config def;           /* the device default: the baseline of the speedup */
    candidate *cands;          /* verified trials, at most budget */
    int n_cands, budget;
    double slowest_ok;         /* the slowest verified trial (s): time-outs scale with it */
    double t0;
    kiln_tune_state st;
} tune_run;

/* The worker process and the search strategy. Their constructors report
 * codes only through e: a local one keeps the code when the caller passed none. */
static int start(tune_run *t, const char *device, double copy_gbps, kiln_err *e)
{
    kiln_err own = {0};
    kiln_err *err = e ? e : &own;
    const kiln_tune_opts *o = t->o;
    kiln_worker_opts wo = {.device = device, .kernel = t->k, .shape = *t->s, .seed = o->seed, .measure = o->measure,
                           .in_process = o->in_process};
    if (!(t->w = kiln_worker_start(&wo, err)))
        return err->code ? err->code : kiln_fail(e, KILN_E_DEVICE, "tune: the worker did not start");
    t->r->fp = *kiln_worker_fingerprint(t->w);
    t->r->fp.copy_gbps = copy_gbps;
    t->r->rotation = kiln_worker_rotation(t->w);
    if (!(t->search = kiln_search_new(o->strategy, t->k, t->s, &t->r->fp, o->seed, err)))
        return err->code ? err->code : kiln_fail(e, KILN_E_INVALID, "tune: no search strategy");
    t->budget = o->budget_trials;
    if (t->budget > kiln_search_pool_size(t->search) + o->n_first)
        t->budget = kiln_search_pool_size(t->search) + o->n_first;
    if (!(t->cands = calloc((size_t)t->budget + 1, sizeof *t->cands)))
        return kiln_fail(e, KILN_E_NOMEM, "tune: no memory");
    kiln_config_default_for(t->k, &t->r->fp, t->s, &t->def);
    t->st = (kiln_tune_state){.kernel = t->k, .shape = t->s, .fp = &t->r->fp, .budget = t->budget,
                              .best_ns = INFINITY};
    return 0;
}

/* Counts a search trial: a verified one becomes a candidate; the stall
 * counter restarts on a 1% improvement of the best. */
static void account(tune_run *t, const kiln_trial *tr, int reused, double *best, int *since_best)
{
    kiln_tune_state *st = &t->st;
    st->done++;
    if (tr->status != KILN_TRIAL_OK) {
        st->bad++;
        (*since_best)++;
        return;
    }
    st->ok++;
    if (!reused && tr->seconds > t->slowest_ok)
        t->slowest_ok = tr->seconds;
    t->cands[t->n_cands++].t = *tr;
    if (kiln_config_equal(t->k, &tr->cfg, &t->def))
        st->default_ns = tr->median_ns;
    *since_best = tr->median_ns < *best * 0.99 ? 0 : *since_best + 1;
    if (tr->median_ns < *best)
        *best = st->best_ns = tr->median_ns;
}

/* Trials until the budget, the time, the patience or the search's pool run
 * out: the default (the search's first pick), then the caller's configs,
 * then the strategy. Resumed trials (h->lookup) are not measured again. */
static int search_phase(tune_run *t, kiln_err *e)
{
    const kiln_tune_opts *o = t->o;
    const kiln_tune_hooks *h = t->h;
    kiln_tune_state *st = &t->st;
    double best = INFINITY;
    int since_best = 0, trial_no = 0, n_first = 0;
    kiln_config c;
    for (;;) {
        int from_first = st->done > 0 && n_first < o->n_first;
        if (st->done >= t->budget || !(from_first ? (c = o->first[n_first++], 1) : kiln_search_next(t->search, &c)))
            break;
        if (o->budget_seconds > 0 && kiln_now_s() - t->t0 > o->budget_seconds)
            break;
        if (o->patience > 0 && since_best >= o->patience) {
            t->r->stopped_early = 1;
            break;
        }
        kiln_trial tr;
        int reused = h && h->lookup && h->lookup(h->user, t->k, t->s, &c, &tr), rc;
        if (!reused) {
            trial_no++;
            unsigned flags = (trial_no == o->plant_crash_at ? KILN_BUILD_TEST_CRASH : 0) |
                             (trial_no == o->plant_hang_at ? KILN_BUILD_TEST_HANG : 0);
            double timeout = o->timeout_floor_s;
            if (o->timeout_factor * t->slowest_ok > timeout)
                timeout = o->timeout_factor * t->slowest_ok;
            if ((rc = kiln_worker_trial(t->w, &c, flags, timeout, &tr, e)))
                return rc;
            if (h && h->record && (rc = h->record(h->user, t->k, t->s, &tr, e)))
                return rc;
        } else {
            st->reused++;
        }
        kiln_search_report(t->search, &c, tr.status == KILN_TRIAL_OK ? tr.median_ns : -1);
        account(t, &tr, reused, &best, &since_best);
        report(h, st, t->t0, "search", &tr);
    }
    return 0;
}

/* Interleaved re-measurement of the fastest candidates and the default
 * (brought into the set when it is not among them); *top: the set's size,
 * cands[0..top). */
static int remeasure(tune_run *t, int *top, kiln_err *e)
{
    const kiln_tune_opts *o = t->o;
    candidate *cands = t->cands;
    qsort(cands, (size_t)t->n_cands, sizeof *cands, by_time);
    int n = t->n_cands < o->top_k ? t->n_cands : o->top_k;
    int def_i = -1;
    for (int i = 0; i < t->n_cands; i++)
        if (kiln_config_equal(t->k, &cands[i].t.cfg, &t->def))
            def_i = i;
    if (def_i >= n) {
        candidate tmp = cands[n];
        cands[n] = cands[def_i];
        cands[def_i] = tmp;
        n++;
    }
    *top = n;
    for (int round = 0; round < o->remeasure_rounds && round < 8; round++)
        for (int i = 0; i < n; i++) {
            kiln_trial tr;
            double timeout = o->timeout_floor_s + o->timeout_factor * t->slowest_ok;
            int rc = kiln_worker_trial(t->w, &cands[i].t.cfg, 0, timeout, &tr, e);
            if (rc)
                return rc;
            if (tr.status == KILN_TRIAL_OK)
                cands[i].samples[cands[i].n++] = tr.median_ns;
            report(t->h, &t->st, t->t0, "remeasure", &tr);
        }
    return 0;
}

/* --sustained: each finalist runs trial after trial for o->sustained_s
 * (at least two trials, at most SUSTAIN_MAX). Its sustained figure is the
 * median of the trials in the second half of its window (what it settles
 * to once warm), its drift the last trial over the first. The finalists run
 * one after the other, in the order of their re-measured times, so a later
 * one starts on a device the earlier ones warmed: the figure that counts is
 * the settled one, not the first. */
#define SUSTAIN_MAX 4096
static int sustain(tune_run *t, int top, kiln_err *e)
{
    const kiln_tune_opts *o = t->o;
    double *x = malloc(SUSTAIN_MAX * sizeof *x), *when = malloc(SUSTAIN_MAX * sizeof *when);
    if (!x || !when) {
        free(x);
        free(when);
        return kiln_fail(e, KILN_E_NOMEM, "tune: no memory for the sustained run");
    }
    int rc = 0;
    for (int i = 0; i < top && !rc; i++) {
        candidate *c = &t->cands[i];
        double t0 = kiln_now_s();
        int n = 0;
        while (n < SUSTAIN_MAX && (n < 2 || kiln_now_s() - t0 < o->sustained_s)) {
            kiln_trial tr;
            double timeout = o->timeout_floor_s + o->timeout_factor * t->slowest_ok;
            if ((rc = kiln_worker_trial(t->w, &c->t.cfg, 0, timeout, &tr, e)))
                break;
            report(t->h, &t->st, t->t0, "sustained", &tr);
            if (tr.status != KILN_TRIAL_OK)
                break; /* a finalist that stops verifying drops out: no sustained figure */
            when[n] = kiln_now_s() - t0;
            x[n++] = tr.median_ns;
        }
        if (rc || n < 2) {
            c->sus_n = 0;
            if (!rc) { /* sorts last: never the winner */
                c->t.median_ns = INFINITY;
                c->n = 0;
            }
            continue;
        }
        double half = when[n - 1] / 2, m, sp;
        int from = 0;
        while (from < n - 1 && when[from] < half)
            from++;
        kiln_stats_median_spread(x + from, n - from, &m, &sp);
        c->sus_ns = m;
        c->first_ns = x[0];
        c->last_ns = x[n - 1];
        c->sus_n = n;
    }
    free(x);
    free(when);
    return rc;
}

/* The winner among the re-measured set on the new times, its margin over
 * the runner-up (a tie when within the noise), the speedup over the default
 * and the bandwidth it reaches. */
static void choose_winner(tune_run *t, int top, double copy_gbps)
{
    kiln_tune_result *r = t->r;
    candidate *cands = t->cands;
    qsort(cands, (size_t)top, sizeof *cands, by_time);
    r->best = cands[0].t;
    r->best.median_ns = cand_time(&cands[0]);
    if (top > 1) {
        r->has_runner_up = 1;
        r->runner_up = cands[1].t;
        r->runner_up.median_ns = cand_time(&cands[1]);
        r->margin = (r->runner_up.median_ns - r->best.median_ns) / r->best.median_ns;
        double noise = fmax(r->best.spread, r->runner_up.spread);
        /* spread of the re-measured medians too */
        double m, sp;
        kiln_stats_median_spread(cands[0].samples, cands[0].n, &m, &sp);
        noise = fmax(noise, sp);
        kiln_stats_median_spread(cands[1].samples, cands[1].n, &m, &sp);
        noise = fmax(noise, sp);
        r->tie = r->margin <= fmax(2 * noise, 0.01);
    }
    r->deflt.status = -1;
    for (int i = 0; i < top; i++)
        if (kiln_config_equal(t->k, &cands[i].t.cfg, &t->def)) {
            r->deflt = cands[i].t;
            r->deflt.median_ns = cand_time(&cands[i]);
            if (cands[i].sus_n)
                r->default_drift = (cands[i].last_ns - cands[i].first_ns) / cands[i].first_ns;
        }
    if (cands[0].sus_n) {
        r->sustained_s = t->o->sustained_s;
        r->first_ns = cands[0].first_ns;
        r->last_ns = cands[0].last_ns;
        r->drift = (cands[0].last_ns - cands[0].first_ns) / cands[0].first_ns;
        r->sustained_trials = cands[0].sus_n;
    }
    if (r->deflt.status == KILN_TRIAL_OK && r->best.median_ns > 0)
        r->speedup = r->deflt.median_ns / r->best.median_ns;
    r->bytes = t->k->bytes ? t->k->bytes(t->s) : 0;
    r->gbps = r->best.median_ns > 0 ? r->bytes / r->best.median_ns : 0; /* bytes/ns == GB/s */
    r->bw_ratio = copy_gbps > 0 ? r->gbps / copy_gbps : 0;
}

int kiln_tune(const kiln_tune_opts *o, const char *device, double copy_gbps, const kiln_kernel *k,
              const kiln_shape *s, const kiln_tune_hooks *h, kiln_tune_result *r, kiln_err *e)
{
    memset(r, 0, sizeof *r);
    tune_run t = {.o = o, .k = k, .s = s, .h = h, .r = r, .t0 = kiln_now_s()};
    int top = 0, rc = start(&t, device, copy_gbps, e);
    if (!rc)
        rc = search_phase(&t, e);
    if (t.w) {
        r->n_trials = t.st.done;
        r->n_ok = t.st.ok;
        r->n_bad = t.st.bad;
        r->n_reused = t.st.reused;
    }
    if (!rc && !t.n_cands)
        rc = kiln_fail(e, KILN_E_VERIFY, "%s: no config verified and ran on %s (%d trials failed)", k->name,
                       r->fp.name, t.st.bad);
    if (!rc)
        rc = remeasure(&t, &top, e);
    if (!rc && o->sustained_s > 0)
        rc = sustain(&t, top, e);
    if (!rc)
        choose_winner(&t, top, copy_gbps);
    if (t.w)
        r->worker_restarts = kiln_worker_restarts(t.w);
    free(t.cands);
    kiln_search_free(t.search);
    kiln_worker_stop(t.w);
    return rc;
}
