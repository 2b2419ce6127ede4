/* bench/bench_kernels.c - see bench_kernels.h. */
#include "bench/bench_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tuner/worker.h"
#include "util/clock.h"

/* The decode kernel set: what a Llama decode step runs (as `tune`). */
static const char *const default_kernels[] = {"gemv_int4", "attention_paged", "rmsnorm", "rope", "dequant"};

#define MAX_JOBS 128

typedef struct job {
    const kiln_kernel *k;
    kiln_shape s;
} job;

void kiln_kbench_defaults(kiln_kbench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->rounds = 5;
    o->seed = 1;
    o->timeout_s = 120;
    kiln_measure_defaults(&o->measure);
}

static int collect(const kiln_kbench_opts *o, job *jobs, int *n, char *subject, size_t sn, kiln_err *e)
{
    const char *const *names = o->n_kernels ? o->kernels : default_kernels;
    int nn = o->n_kernels ? o->n_kernels : (int)(sizeof default_kernels / sizeof *default_kernels);
    *n = 0;
    subject[0] = 0;
    for (int i = 0; i < nn; i++) {
        const kiln_kernel *k = kiln_kernel_find(names[i]);
        if (!k)
            return kiln_fail(e, KILN_E_INVALID, "unknown kernel '%s' (kiln check --list)", names[i]);
        if (!k->shapes)
            return kiln_fail(e, KILN_E_INVALID, "kernel '%s' is not implemented", names[i]);
        size_t l = strlen(subject);
        snprintf(subject + l, sn - l, "%s%s", i ? "," : "", k->name);
        kiln_shape sh[64];
        int ns = 0;
        if (o->n_shapes) {
            for (int j = 0; j < o->n_shapes && ns < 64; j++) {
                if (k->shapes(KILN_SHAPES_TUNE, &sh[ns], 1) < 1)
                    memset(&sh[ns], 0, sizeof sh[ns]);
                if (kiln_shape_parse_for(k, o->shapes[j], &sh[ns], e))
                    return KILN_E_INVALID;
                ns++;
            }
        } else {
            ns = k->shapes(KILN_SHAPES_TUNE, sh, 64);
        }
        for (int j = 0; j < ns && *n < MAX_JOBS; j++) {
            jobs[*n].k = k;
            jobs[(*n)++].s = sh[j];
        }
    }
    if (!*n)
        return kiln_fail(e, KILN_E_INVALID, "nothing to bench (no kernel x shape selected)");
    return 0;
}

/* Median of per-round medians; spread = max(per-round spread, between rounds). */
static void combine(const double *med, const double *spr, int n, double *out, double *spread)
{
    double m1, s1, m2, s2;
    kiln_stats_median_spread(med, n, &m1, &s1);
    kiln_stats_median_spread(spr, n, &m2, &s2);
    (void)s2;
    *out = m1;
    *spread = fmax(s1, m2);
}

/* --sustained: cfg trial after trial for o->sustained_s (at least 2): the
 * median of the trials in the second half of the window and the drift of
 * the last over the first. 0, or -1 with row->error set. */
static int sustain(const kiln_kbench_opts *o, kiln_worker *w, const kiln_config *cfg, const char *which,
                   const char *json, kiln_kbench_row *row, double *sus_ns, double *drift, int *n_out)
{
    enum { MAX = 4096 };
    double *x = malloc(2 * MAX * sizeof *x), *when = x ? x + MAX : NULL;
    if (!x) {
        snprintf(row->error, sizeof row->error, "sustained %s: no memory", which);
        return -1;
    }
    double t0 = kiln_now_s();
    int n = 0, rc = 0;
    while (n < MAX && (n < 2 || kiln_now_s() - t0 < o->sustained_s)) {
        kiln_trial t;
        kiln_err e = {0};
        if (kiln_worker_trial(w, cfg, 0, o->timeout_s, &t, &e)) {
            snprintf(row->error, sizeof row->error, "sustained %s: worker: %s", which, e.msg);
            rc = -1;
            break;
        }
        if (t.status != KILN_TRIAL_OK) {
            snprintf(row->error, sizeof row->error, "sustained %s config %s: %s: %s", which, json,
                     kiln_trial_status_name(t.status), t.reason);
            rc = -1;
            break;
        }
        when[n] = kiln_now_s() - t0;
        x[n++] = t.median_ns;
    }
    if (!rc) {
        int from = 0;
        while (from < n - 1 && when[from] < when[n - 1] / 2)
            from++;
        double sp;
        kiln_stats_median_spread(x + from, n - from, sus_ns, &sp);
        *drift = (x[n - 1] - x[0]) / x[0];
        *n_out = n;
    }
    free(x);
    return rc;
}

static void bench_one(const kiln_kbench_opts *o, kiln_db *db, const char *spec, const kiln_fingerprint *fp,
                      const job *j, kiln_kbench_row *row)
{
    const kiln_kernel *k = j->k;
    row->kernel = k;
    row->shape = j->s;
    k->shape_key(&j->s, row->shape_key, sizeof row->shape_key);
    snprintf(row->subject, sizeof row->subject, "%s %s", k->name, row->shape_key);
    kiln_config def, tuned;
    kiln_config_default_for(k, fp, &j->s, &def);
    tuned = def;
    kiln_config_to_json(k, &def, row->default_json, sizeof row->default_json);

    /* the tuned config: what a consumer of the database gets on this device */
    char hash[17];
    kiln_kernel_source_hash(k, fp->backend, hash);
    kiln_db_match m;
    kiln_err e = {0};
    row->level = KILN_MATCH_DEFAULT;
    if (kiln_db_lookup(db, fp, k->name, hash, row->shape_key, &m, &e)) {
        snprintf(row->match, sizeof row->match, "default (lookup failed: %s)", e.msg);
    } else if (m.level == KILN_MATCH_DEFAULT) {
        snprintf(row->match, sizeof row->match, "no winner in the database: tuned = default%s%s",
                 m.stale ? "; " : "", m.stale ? m.note : "");
    } else if (kiln_config_from_json(k, m.config_json, &tuned, &e)) {
        tuned = def;
        snprintf(row->match, sizeof row->match, "stored winner unusable (%s): tuned = default", e.msg);
    } else {
        char why[256];
        if (!k->config_valid(&j->s, &tuned, fp, why, sizeof why)) {
            /* a nearer shape's winner that this shape cannot run (hpw 3 for a GQA ratio of 1): the engine
             * falls back to the default here too (engine/ops.c), so the bench does the same */
            snprintf(row->match, sizeof row->match, "%s winner (for %s) not valid here (%.120s): tuned = default",
                     kiln_match_name(m.level), m.shape_key, why);
            tuned = def;
        } else {
            row->level = m.level;
            if (m.level == KILN_MATCH_SIMILAR)
                snprintf(row->match, sizeof row->match, "similar to %.150s (distance %.2f)", m.device, m.distance);
            else if (m.level == KILN_MATCH_EXACT)
                snprintf(row->match, sizeof row->match, "%s", kiln_match_name(m.level));
            else
                snprintf(row->match, sizeof row->match, "%s (tuned on %s for %s)", kiln_match_name(m.level),
                         m.device, m.shape_key);
        }
    }
    kiln_config_to_json(k, &tuned, row->tuned_json, sizeof row->tuned_json);
    row->same = kiln_config_equal(k, &def, &tuned);

    kiln_worker_opts wo = {.device = spec, .kernel = k, .shape = j->s, .seed = o->seed, .measure = o->measure,
                           .in_process = o->in_process};
    kiln_worker *w = kiln_worker_start(&wo, &e);
    if (!w) {
        snprintf(row->error, sizeof row->error, "worker: %s", e.msg);
        return;
    }
    if (row->level == KILN_MATCH_SIMILAR && !row->same) {
        /* a winner borrowed from another device: verified here before it is used */
        kiln_trial t;
        if (kiln_worker_trial(w, &tuned, 0, o->timeout_s, &t, &e)) {
            snprintf(row->error, sizeof row->error, "worker: %s", e.msg);
            kiln_worker_stop(w);
            return;
        }
        if (t.status != KILN_TRIAL_OK) {
            char was[256];
            snprintf(was, sizeof was, "%s", row->match);
            snprintf(row->match, sizeof row->match, "%.120s: failed here (%s: %.80s): tuned = default", was,
                     kiln_trial_status_name(t.status), t.reason);
            tuned = def;
            row->same = 1;
            row->level = KILN_MATCH_DEFAULT;
            kiln_config_to_json(k, &tuned, row->tuned_json, sizeof row->tuned_json);
        }
    }
    int rounds = o->rounds > 0 ? (o->rounds > 32 ? 32 : o->rounds) : 5;
    double dm[32], ds[32], tm[32], ts[32];
    int nd = 0, nt = 0;
    for (int r = 0; r < rounds && !row->error[0]; r++) {
        for (int turn = 0; turn < 2 && !row->error[0]; turn++) {
            int is_tuned = (turn + r) % 2 == 1; /* d,t  t,d  d,t ... */
            if (is_tuned && row->same)
                continue;
            kiln_trial t;
            if (kiln_worker_trial(w, is_tuned ? &tuned : &def, 0, o->timeout_s, &t, &e)) {
                snprintf(row->error, sizeof row->error, "worker: %s", e.msg);
                break;
            }
            if (t.status != KILN_TRIAL_OK) {
                snprintf(row->error, sizeof row->error, "%s config %s: %s: %s", is_tuned ? "tuned" : "default",
                         is_tuned ? row->tuned_json : row->default_json, kiln_trial_status_name(t.status), t.reason);
                break;
            }
            if (is_tuned) {
                tm[nt] = t.median_ns;
                ts[nt++] = t.spread;
                row->tuned_n += t.n_samples;
            } else {
                dm[nd] = t.median_ns;
                ds[nd++] = t.spread;
                row->default_n += t.n_samples;
            }
        }
    }
    if (!row->error[0] && o->sustained_s > 0 &&
        !sustain(o, w, &def, "default", row->default_json, row, &row->default_sus_ns, &row->default_drift,
                 &row->default_sus_n)) {
        if (row->same) {
            row->tuned_sus_ns = row->default_sus_ns;
            row->tuned_drift = row->default_drift;
            row->tuned_sus_n = row->default_sus_n;
        } else {
            sustain(o, w, &tuned, "tuned", row->tuned_json, row, &row->tuned_sus_ns, &row->tuned_drift,
                    &row->tuned_sus_n);
        }
    }
    kiln_worker_stop(w);
    if (row->error[0])
        return;
    combine(dm, ds, nd, &row->default_ns, &row->default_spread);
    if (row->same) {
        row->tuned_ns = row->default_ns;
        row->tuned_spread = row->default_spread;
        row->tuned_n = row->default_n;
    } else {
        combine(tm, ts, nt, &row->tuned_ns, &row->tuned_spread);
    }
    row->bytes = k->bytes ? k->bytes(&j->s) : 0;
    row->default_gbps = row->default_ns > 0 ? row->bytes / row->default_ns : 0; /* bytes/ns == GB/s */
    row->tuned_gbps = row->tuned_ns > 0 ? row->bytes / row->tuned_ns : 0;
    row->bw_ratio = fp->copy_gbps > 0 ? row->tuned_gbps / fp->copy_gbps : 0;
    row->read_ratio = fp->read_gbps > 0 ? row->tuned_gbps / fp->read_gbps : 0;
    row->speedup = row->tuned_ns > 0 ? row->default_ns / row->tuned_ns : 0;
    row->ok = 1;
}

static int add(kiln_bench_writer *w, const char *subject, const char *metric, const char *unit, int hib, double v,
               double spread, int n, kiln_err *e)
{
    kiln_bench_result r = {.higher_is_better = hib, .value = v, .spread = spread, .n = n};
    snprintf(r.subject, sizeof r.subject, "%s", subject);
    snprintf(r.metric, sizeof r.metric, "%s", metric);
    snprintf(r.unit, sizeof r.unit, "%s", unit);
    return kiln_bench_add(w, &r, e);
}

int kiln_bench_kernels(kiln_db *db, const kiln_kbench_opts *o, kiln_kbench_cb cb, void *user, int *n_failed,
                       int64_t *run_ids, int max_runs, int *n_runs, kiln_err *e)
{
    static job jobs[MAX_JOBS];
    int n_jobs = 0, rc;
    char subject[256];
    *n_failed = 0;
    *n_runs = 0;
    if ((rc = collect(o, jobs, &n_jobs, subject, sizeof subject, e)))
        return rc;
    static const char *const cpu_only[] = {"cpu"};
    const char *const *devs = o->n_devices ? o->devices : cpu_only;
    int n_devs = o->n_devices ? o->n_devices : 1;
    char batch[32];
    kiln_bench_batch_tag(batch);
    for (int di = 0; di < n_devs; di++) {
        /* identify the device and measure its copy and read bandwidth here; the workers reopen it */
        kiln_device *d;
        if ((rc = kiln_device_select(devs[di], &d, e)))
            return rc;
        double gbps = 0;
        kiln_err be = {0};
        if (kiln_measure_copy_bandwidth(d, &gbps, &be))
            fprintf(stderr, "bench: warning: %s: copy bandwidth not measured: %s\n", devs[di], be.msg);
        double rgbps = 0;
        if (kiln_measure_read_bandwidth(d, &rgbps, NULL, 0, &be))
            fprintf(stderr, "bench: warning: %s: read bandwidth not measured: %s\n", devs[di], be.msg);
        kiln_fingerprint fp = d->fp;
        char spec[32];
        snprintf(spec, sizeof spec, "%s:%d", kiln_backend_name(d->backend), d->index);
        kiln_device_close(d);

        kiln_kbench_row head = {.copy_gbps = gbps, .read_gbps = rgbps};
        snprintf(head.device, sizeof head.device, "%s %s", spec, fp.name);
        if (cb)
            cb(user, &head);
        /* measure everything first: the run is written in one short transaction */
        kiln_kbench_row *rows = calloc((size_t)n_jobs, sizeof *rows);
        if (!rows)
            return kiln_fail(e, KILN_E_NOMEM, "bench: no memory");
        for (int j = 0; j < n_jobs; j++) {
            rows[j] = head;
            bench_one(o, db, spec, &fp, &jobs[j], &rows[j]);
            if (!rows[j].ok)
                (*n_failed)++;
            if (cb)
                cb(user, &rows[j]);
        }
        kiln_bench_writer w;
        if ((rc = kiln_bench_begin(&w, db, &fp, "kernels", subject, batch, e))) {
            free(rows);
            return rc;
        }
        rc = add(&w, "device", "copy_gbps", "GB/s", KILN_BENCH_INFO, gbps, 0, 1, e);
        if (!rc && rgbps > 0)
            rc = add(&w, "device", "read_gbps", "GB/s", KILN_BENCH_INFO, rgbps, 0, 1, e);
        for (int j = 0; j < n_jobs && !rc; j++) {
            const kiln_kbench_row *row = &rows[j];
            char note[1024];
            if (row->ok) {
                snprintf(note, sizeof note, "%s: tuned %s (%s)", row->subject, row->tuned_json, row->match);
                rc = add(&w, row->subject, "default_us", "us", KILN_BENCH_LOWER, row->default_ns / 1e3,
                         row->default_spread, row->default_n, e);
                if (!rc)
                    rc = add(&w, row->subject, "tuned_us", "us", KILN_BENCH_LOWER, row->tuned_ns / 1e3,
                             row->tuned_spread, row->tuned_n, e);
                if (!rc)
                    rc = add(&w, row->subject, "default_gbps", "GB/s", KILN_BENCH_INFO, row->default_gbps,
                             row->default_spread, row->default_n, e);
                if (!rc)
                    rc = add(&w, row->subject, "tuned_gbps", "GB/s", KILN_BENCH_INFO, row->tuned_gbps,
                             row->tuned_spread, row->tuned_n, e);
                if (!rc)
                    rc = add(&w, row->subject, "tuned_bw_pct", "%", KILN_BENCH_INFO, 100 * row->bw_ratio,
                             row->tuned_spread, row->tuned_n, e);
                if (!rc && row->read_ratio > 0)
                    rc = add(&w, row->subject, "tuned_read_pct", "%", KILN_BENCH_INFO, 100 * row->read_ratio,
                             row->tuned_spread, row->tuned_n, e);
                if (!rc)
                    rc = add(&w, row->subject, "speedup", "x", KILN_BENCH_INFO, row->speedup,
                             hypot(row->default_spread, row->tuned_spread), row->tuned_n, e);
                if (!rc && row->tuned_sus_n) {
                    /* thermal: what each config settles to when run back to back, and how far it moved */
                    rc = add(&w, row->subject, "default_sustained_us", "us", KILN_BENCH_LOWER,
                             row->default_sus_ns / 1e3, 0, row->default_sus_n, e);
                    if (!rc)
                        rc = add(&w, row->subject, "tuned_sustained_us", "us", KILN_BENCH_LOWER,
                                 row->tuned_sus_ns / 1e3, 0, row->tuned_sus_n, e);
                    if (!rc)
                        rc = add(&w, row->subject, "default_drift_pct", "%", KILN_BENCH_INFO,
                                 100 * row->default_drift, 0, row->default_sus_n, e);
                    if (!rc)
                        rc = add(&w, row->subject, "tuned_drift_pct", "%", KILN_BENCH_INFO, 100 * row->tuned_drift,
                                 0, row->tuned_sus_n, e);
                }
            } else {
                snprintf(note, sizeof note, "%s: FAILED: %s", row->subject, row->error);
            }
            if (!rc)
                rc = kiln_bench_note(&w, note, e);
        }
        free(rows);
        int rc2 = kiln_bench_end(&w, !rc, rc ? NULL : e);
        if (!rc)
            rc = rc2;
        if (rc)
            return rc;
        if (run_ids && *n_runs < max_runs)
            run_ids[*n_runs] = w.run_id;
        (*n_runs)++;
    }
    return 0;
}
