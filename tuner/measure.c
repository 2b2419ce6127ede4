/* tuner/measure.c - see measure.h. */
#include "tuner/measure.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

void kiln_measure_defaults(kiln_measure_opts *o)
{
    *o = (kiln_measure_opts){0};
    o->warmup = 3;
    o->min_reps = 7;
    o->max_reps = 200;
    o->target_spread = 0.02;
    o->max_seconds = 1.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void kiln_stats_median_spread(const double *x, int n, double *median, double *spread)
{
    if (n <= 0) {
        *median = 0;
        *spread = 0;
        return;
    }
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) {
        *median = x[0];
        *spread = 0;
        return;
    }
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double med = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    for (int i = 0; i < n; i++)
        s[i] = fabs(s[i] - med);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double mad = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    *median = med;
    *spread = med > 0 ? mad / med : 0;
}

int kiln_rotation_count(const kiln_fingerprint *fp, double problem_bytes)
{
    double llc = fp->llc_bytes ? (double)fp->llc_bytes : 32.0 * 1024 * 1024;
    if (problem_bytes <= 0)
        return 1;
    int n = (int)ceil(2.0 * llc / problem_bytes) + 1;
    if (n > KILN_ROTATION_MAX)
        n = KILN_ROTATION_MAX;
    /* stay well inside device memory */
    double mem = fp->memory_bytes ? (double)fp->memory_bytes : 4e9;
    while (n > 1 && n * problem_bytes > mem / 4)
        n--;
    return n < 1 ? 1 : n;
}

int kiln_measure_variant(kiln_variant *v, kiln_problem_dev *copies, int n_copies, const kiln_measure_opts *o,
                         kiln_measurement *m, kiln_err *e)
{
    memset(m, 0, sizeof *m);
    int cap = o->max_reps > 0 ? o->max_reps : 200;
    double *t = malloc((size_t)cap * sizeof *t);
    if (!t)
        return kiln_fail(e, KILN_E_NOMEM, "measure: no memory");
    int rc = 0, n = 0, turn = 0;
    for (int i = 0; i < o->warmup && !rc; i++)
        rc = kiln_variant_run(v, copies[turn++ % n_copies].buf, NULL, e);
    if (!rc)
        rc = kiln_finish(v->dev, e);
    double start = kiln_now_s();
    while (!rc && n < cap) {
        double ns = 0;
        rc = kiln_variant_run(v, copies[turn++ % n_copies].buf, &ns, e);
        if (rc)
            break;
        t[n++] = ns;
        if (n >= o->min_reps) {
            double med, spread;
            kiln_stats_median_spread(t, n, &med, &spread);
            if (spread <= o->target_spread || kiln_now_s() - start > o->max_seconds)
                break;
        }
    }
    if (!rc) {
        kiln_stats_median_spread(t, n, &m->median_ns, &m->spread);
        m->n = n;
        m->min_ns = m->max_ns = t[0];
        for (int i = 1; i < n; i++) {
            m->min_ns = t[i] < m->min_ns ? t[i] : m->min_ns;
            m->max_ns = t[i] > m->max_ns ? t[i] : m->max_ns;
        }
    }
    free(t);
    return rc;
}
