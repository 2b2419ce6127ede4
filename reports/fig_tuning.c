/* reports/fig_tuning.c - the figures of the tuning sessions: convergence
 * (best so far vs trial, per session x kernel x shape) and the parameter
 * landscape of the most measured kernel x shape. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reports/report_internal.h"

/* ---- convergence ---------------------------------------------------------- */

/* Line colour per strategy, so that the seeds of one strategy read as one
 * family (dash type per seed). */
static int strategy_colour(const char *s)
{
    static const char *const names[] = {"exhaustive", "random", "anneal", "evolve", "model"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i]))
            return i + 1;
    return 6;
}

/* Best time so far per trial, relative to the best time any of the sessions
 * shown found for the same device, kernel and shape: every curve ends at or
 * above 1.0, and where a session stands after N trials is comparable across
 * sessions and strategies (the first trial's time is not: it is noisy). */
void fig_convergence(rep *p)
{
    sqlite3_stmt *st;
    sqlite3_prepare_v2(p->h,
                       "WITH shown AS (SELECT id FROM sessions ORDER BY id DESC LIMIT 12)"
                       " SELECT t.session_id, s.strategy, d.backend, k.name, t.shape_key, t.status, t.median_ns,"
                       " (SELECT MIN(t2.median_ns) FROM trials t2 WHERE t2.device_id = t.device_id"
                       "  AND t2.kernel_id = t.kernel_id AND t2.shape_key = t.shape_key AND t2.status = 'ok'"
                       "  AND t2.median_ns > 0 AND t2.session_id IN shown)"
                       " FROM trials t JOIN sessions s ON s.id = t.session_id JOIN devices d ON d.id = t.device_id"
                       " JOIN kernels k ON k.id = t.kernel_id"
                       " WHERE t.session_id IN shown"
                       " ORDER BY t.session_id, k.name, t.shape_key, t.id",
                       -1, &st, NULL);
    FILE *f = rep_open(p, "convergence.dat", NULL);
    char key[512] = "", titles[16][200];
    int colour[16], dash[16], per_colour[8] = {0};
    int series = 0, idx = 0;
    double best = 0;
    while (f && sqlite3_step(st) == SQLITE_ROW) {
        char k[512];
        snprintf(k, sizeof k, "%lld|%s|%s", (long long)sqlite3_column_int64(st, 0), rep_col(st, 3), rep_col(st, 4));
        if (strcmp(k, key)) {
            if (series >= 16)
                break;
            snprintf(key, sizeof key, "%s", k);
            if (series)
                fprintf(f, "\n\n");
            char t[200];
            snprintf(t, sizeof t, "session %lld %s: %s %s %s", (long long)sqlite3_column_int64(st, 0), rep_col(st, 1),
                     rep_col(st, 2), rep_col(st, 3), rep_col(st, 4));
            colour[series] = strategy_colour(rep_col(st, 1));
            dash[series] = ++per_colour[colour[series]];
            rep_gp_title(titles[series++], 200, t);
            idx = 0;
            best = 0;
            fprintf(f, "# %s\n", t);
        }
        idx++;
        double ns = sqlite3_column_double(st, 6), overall = sqlite3_column_double(st, 7);
        if (strcmp(rep_col(st, 5), "ok") || ns <= 0 || overall <= 0)
            continue;
        if (best == 0 || ns < best)
            best = ns;
        fprintf(f, "%d %.6f %.3f\n", idx, best / overall, best / 1e3);
    }
    sqlite3_finalize(st);
    if (f)
        fclose(f);
    if (!series) {
        rep_skip(p, "convergence (no trials)");
        return;
    }
    char body[8192];
    int n = snprintf(body, sizeof body,
                     "set title 'Tuning convergence: best so far vs trial'\nset xlabel 'trial'\n"
                     "set ylabel 'best so far / best of all sessions shown'\nset grid\nset key below\n"
                     "set key font ',8'\nplot ");
    for (int i = 0; i < series && n < (int)sizeof body - 300; i++)
        n += snprintf(body + n, sizeof body - (size_t)n,
                      "%s'convergence.dat' index %d using 1:2 with steps lw 2 lc %d dt %d title '%s'",
                      i ? ", \\\n     " : "", i, colour[i], dash[i], titles[i]);
    snprintf(body + n, sizeof body - (size_t)n, "\n");
    fprintf(p->md, "\n## Tuning convergence\n\nBest time so far against the trial number, relative to the best any "
                   "session shown found for the same device, kernel and shape (the latest 12 sessions, at most 16 "
                   "curves; colour: strategy).\n");
    rep_figure(p, "convergence", body);
}

/* ---- landscape ------------------------------------------------------------ */

#define LMAX 2048 /* trials read */

/* val[i][j]: parameter j of trial i (NaN: absent), t[i]: its time; both LMAX long. */
static void landscape(rep *p, double (*val)[16], double *t)
{
    sqlite3_stmt *st;
    sqlite3_prepare_v2(p->h,
                       "SELECT t.device_id, t.kernel_id, t.shape_key, COUNT(*) n FROM trials t WHERE t.status = 'ok'"
                       " GROUP BY 1, 2, 3 ORDER BY n DESC LIMIT 1",
                       -1, &st, NULL);
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 3) < 4) {
        sqlite3_finalize(st);
        rep_skip(p, "landscape (fewer than 4 valid trials of any kernel x shape)");
        return;
    }
    int64_t dev = sqlite3_column_int64(st, 0), ker = sqlite3_column_int64(st, 1);
    char shape[128];
    snprintf(shape, sizeof shape, "%s", rep_col(st, 2));
    sqlite3_finalize(st);
    sqlite3_prepare_v2(p->h,
                       "SELECT t.config_json, t.median_ns, k.name, d.backend || ' ' || d.name FROM trials t"
                       " JOIN kernels k ON k.id = t.kernel_id JOIN devices d ON d.id = t.device_id"
                       " WHERE t.status = 'ok' AND t.device_id = ?1 AND t.kernel_id = ?2 AND t.shape_key = ?3"
                       " AND t.median_ns > 0",
                       -1, &st, NULL);
    sqlite3_bind_int64(st, 1, dev);
    sqlite3_bind_int64(st, 2, ker);
    sqlite3_bind_text(st, 3, shape, -1, SQLITE_TRANSIENT);
    char names[16][32], kname[64] = "", dname[200] = "";
    int np = 0, n = 0;
    while (n < LMAX && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *c = cJSON_Parse(rep_col(st, 0)), *it;
        if (!c)
            continue;
        snprintf(kname, sizeof kname, "%s", rep_col(st, 2));
        snprintf(dname, sizeof dname, "%s", rep_col(st, 3));
        for (int i = 0; i < 16; i++)
            val[n][i] = NAN;
        cJSON_ArrayForEach(it, c)
        {
            if (!cJSON_IsNumber(it) || !it->string)
                continue;
            int j = 0;
            while (j < np && strcmp(names[j], it->string))
                j++;
            if (j == np && np < 16)
                snprintf(names[np++], 32, "%s", it->string);
            if (j < 16)
                val[n][j] = it->valuedouble;
        }
        cJSON_Delete(c);
        t[n++] = sqlite3_column_double(st, 1);
    }
    sqlite3_finalize(st);
    /* influence: weighted variance of the per-value mean log time */
    double infl[16] = {0};
    double mean = 0;
    for (int i = 0; i < n; i++)
        mean += log(t[i]) / n;
    for (int j = 0; j < np; j++) {
        double vals[64], sum[64];
        int cnt[64], nv = 0;
        for (int i = 0; i < n; i++) {
            if (isnan(val[i][j]))
                continue;
            int v = 0;
            while (v < nv && vals[v] != val[i][j])
                v++;
            if (v == nv) {
                if (nv == 64)
                    continue;
                vals[nv] = val[i][j];
                sum[nv] = 0;
                cnt[nv++] = 0;
            }
            sum[v] += log(t[i]);
            cnt[v]++;
        }
        if (nv < 2)
            continue;
        for (int v = 0; v < nv; v++)
            infl[j] += cnt[v] * pow(sum[v] / cnt[v] - mean, 2) / n;
    }
    int a = -1, b = -1;
    for (int j = 0; j < np; j++) {
        if (infl[j] <= 0)
            continue;
        if (a < 0 || infl[j] > infl[a]) {
            b = a;
            a = j;
        } else if (b < 0 || infl[j] > infl[b]) {
            b = j;
        }
    }
    if (a < 0) {
        rep_skip(p, "landscape (no parameter varied)");
        return;
    }
    FILE *f = rep_open(p, "landscape.dat", NULL);
    if (!f)
        return;
    /* best time per (a, b) cell over the other parameters */
    fprintf(f, "# %s %s on %s: %s %s best_us\n", kname, shape, dname, names[a], b >= 0 ? names[b] : "-");
    for (int i = 0; i < n; i++) {
        int best = 1;
        for (int k = 0; k < n; k++)
            if (val[k][a] == val[i][a] && (b < 0 || val[k][b] == val[i][b]) && (t[k] < t[i] || (t[k] == t[i] && k < i)))
                best = 0;
        if (best && !isnan(val[i][a]))
            fprintf(f, "%g %g %.3f\n", val[i][a], b >= 0 ? val[i][b] : 0, t[i] / 1e3);
    }
    fclose(f);
    char title[400], body[2048];
    snprintf(title, sizeof title, "Parameter landscape: %s %s on %s (best time over the other parameters)", kname,
             shape, dname);
    rep_gp_title(title, sizeof title, title);
    if (b >= 0)
        snprintf(body, sizeof body,
                 "set title '%s'\nset xlabel '%s (most influential)'\nset ylabel '%s'\nset logscale xy 2\n"
                 "set offsets graph 0.08, graph 0.08, graph 0.08, graph 0.08\nset grid\nset cblabel 'time (us)'\n"
                 "set palette defined (0 'dark-green', 1 'yellow', 2 'red')\n"
                 "plot 'landscape.dat' using 1:2:3 with points pt 7 ps 3 palette notitle, \\\n"
                 "     '' using 1:2:(sprintf('%%.0f', $3)) with labels offset 0,1.6 font ',8' notitle\n",
                 title, names[a], names[b]);
    else
        snprintf(body, sizeof body,
                 "set title '%s'\nset xlabel '%s'\nset ylabel 'time (us)'\nset logscale x 2\nset grid\n"
                 "plot 'landscape.dat' using 1:3 with linespoints pt 7 ps 1.5 notitle\n",
                 title, names[a]);
    fprintf(p->md, "\n## Parameter landscape\n\nThe kernel x shape with the most valid trials: the best time over "
                   "its two most influential parameters (%s on %s, %s).\n", kname, dname, shape);
    rep_figure(p, "landscape", body);
}

void fig_landscape(rep *p)
{
    double(*val)[16] = malloc(LMAX * sizeof *val), *t = malloc(LMAX * sizeof *t);
    if (val && t)
        landscape(p, val, t);
    else
        rep_skip(p, "landscape (out of memory)");
    free(val);
    free(t);
}
