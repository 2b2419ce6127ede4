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
} candidate;

static double cand_time(const candidate *c)
{
    double m, s;
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

int kiln_tune(const kiln_tune_opts *o, const char *device, double copy_gbps, const kiln_kernel *k,
              const kiln_shape *s, const kiln_tune_hooks *h, kiln_tune_result *r, kiln_err *e)
{
    memset(r, 0, sizeof *r);
    kiln_worker_opts wo = {.device = device, .kernel = k, .shape = *s, .seed = o->seed, .measure = o->measure,
                           .in_process = o->in_process};
    kiln_worker *w = kiln_worker_start(&wo, e);
    if (!w)
        return e && e->code ? e->code : KILN_E_DEVICE;
    r->fp = *kiln_worker_fingerprint(w);
    r->fp.copy_gbps = copy_gbps;
    r->rotation = kiln_worker_rotation(w);
    kiln_search *search = kiln_search_new(o->strategy, k, s, &r->fp, o->seed, e);
    if (!search) {
        kiln_worker_stop(w);
        return e && e->code ? e->code : KILN_E_INVALID;
    }

    int budget = o->budget_trials;
    if (budget > kiln_search_pool_size(search) + o->n_first)
        budget = kiln_search_pool_size(search) + o->n_first;
    candidate *cands = calloc((size_t)budget + 1, sizeof *cands);
    int n_cands = 0, rc = 0, since_best = 0, trial_no = 0;
    double best = INFINITY, slowest_ok = 0, t0 = kiln_now_s();
    kiln_tune_state st = {.kernel = k, .shape = s, .fp = &r->fp, .budget = budget, .best_ns = INFINITY};
    if (!cands) {
        rc = kiln_fail(e, KILN_E_NOMEM, "tune: no memory");
        goto out;
    }
    kiln_config def;
    kiln_config_default_for(k, &r->fp, s, &def);

    kiln_config c;
    int n_first = 0;
    for (;;) {
        /* the default (the search's first pick), then the caller's configs, then the strategy */
        int from_first = st.done > 0 && n_first < o->n_first;
        if (st.done >= budget || !(from_first ? (c = o->first[n_first++], 1) : kiln_search_next(search, &c)))
            break;
        if (o->budget_seconds > 0 && kiln_now_s() - t0 > o->budget_seconds)
            break;
        if (o->patience > 0 && since_best >= o->patience) {
            r->stopped_early = 1;
            break;
        }
        kiln_trial t;
        int reused = h && h->lookup && h->lookup(h->user, k, s, &c, &t);
        if (!reused) {
            trial_no++;
            unsigned flags = (trial_no == o->plant_crash_at ? KILN_BUILD_TEST_CRASH : 0) |
                             (trial_no == o->plant_hang_at ? KILN_BUILD_TEST_HANG : 0);
            double timeout = o->timeout_floor_s;
            if (o->timeout_factor * slowest_ok > timeout)
                timeout = o->timeout_factor * slowest_ok;
            if ((rc = kiln_worker_trial(w, &c, flags, timeout, &t, e)))
                goto out;
            if (h && h->record && (rc = h->record(h->user, k, s, &t, e)))
                goto out;
        } else {
            st.reused++;
        }
        st.done++;
        kiln_search_report(search, &c, t.status == KILN_TRIAL_OK ? t.median_ns : -1);
        if (t.status == KILN_TRIAL_OK) {
            st.ok++;
            if (!reused && t.seconds > slowest_ok)
                slowest_ok = t.seconds;
            cands[n_cands++].t = t;
            if (kiln_config_equal(k, &c, &def))
                st.default_ns = t.median_ns;
            if (t.median_ns < best * 0.99) {
                since_best = 0;
            } else {
                since_best++;
            }
            if (t.median_ns < best)
                best = st.best_ns = t.median_ns;
        } else {
            st.bad++;
            since_best++;
        }
        report(h, &st, t0, "search", &t);
    }
    r->n_trials = st.done;
    r->n_ok = st.ok;
    r->n_bad = st.bad;
    r->n_reused = st.reused;
    if (!n_cands) {
        rc = kiln_fail(e, KILN_E_VERIFY, "%s: no config verified and ran on %s (%d trials failed)", k->name,
                       r->fp.name, st.bad);
        goto out;
    }

    /* Interleaved re-measurement of the top candidates and the default. */
    qsort(cands, (size_t)n_cands, sizeof *cands, by_time);
    int top = n_cands < o->top_k ? n_cands : o->top_k;
    int def_i = -1;
    for (int i = 0; i < n_cands; i++)
        if (kiln_config_equal(k, &cands[i].t.cfg, &def))
            def_i = i;
    if (def_i >= top) { /* bring the default into the re-measured set */
        candidate tmp = cands[top];
        cands[top] = cands[def_i];
        cands[def_i] = tmp;
        def_i = top++;
    }
    for (int round = 0; round < o->remeasure_rounds && round < 8; round++)
        for (int i = 0; i < top; i++) {
            kiln_trial t;
            double timeout = o->timeout_floor_s + o->timeout_factor * slowest_ok;
            if ((rc = kiln_worker_trial(w, &cands[i].t.cfg, 0, timeout, &t, e)))
                goto out;
            if (t.status == KILN_TRIAL_OK)
                cands[i].samples[cands[i].n++] = t.median_ns;
            report(h, &st, t0, "remeasure", &t);
        }
    /* the winner is chosen among the re-measured set on the new times */
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
        if (kiln_config_equal(k, &cands[i].t.cfg, &def)) {
            r->deflt = cands[i].t;
            r->deflt.median_ns = cand_time(&cands[i]);
        }
    if (r->deflt.status == KILN_TRIAL_OK && r->best.median_ns > 0)
        r->speedup = r->deflt.median_ns / r->best.median_ns;
    r->bytes = k->bytes ? k->bytes(s) : 0;
    r->gbps = r->best.median_ns > 0 ? r->bytes / r->best.median_ns : 0; /* bytes/ns == GB/s */
    r->bw_ratio = copy_gbps > 0 ? r->gbps / copy_gbps : 0;
out:
    r->worker_restarts = kiln_worker_restarts(w);
    free(cands);
    kiln_search_free(search);
    kiln_worker_stop(w);
    return rc;
}
