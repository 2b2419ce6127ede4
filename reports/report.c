/* reports/report.c - see report.h. Data comes straight from the database
 * tables (trials, winners, bench_runs, bench_results); nothing is cached. */
#include "reports/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct rep {
    kiln_db *db;
    sqlite3 *h;
    const char *dir;
    FILE *gp, *md;       /* the gnuplot script, the markdown summary */
    kiln_report_result *r;
    char skipped[512];
} rep;

static const char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static FILE *open_out(const rep *p, const char *name, kiln_err *e)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", p->dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        kiln_fail(e, KILN_E_IO, "%s: cannot write: %s", path, strerror(errno));
    return f;
}

/* A title safe inside gnuplot single quotes. */
static void gp_title(char *dst, size_t n, const char *src)
{
    size_t j = 0;
    for (; *src && j + 1 < n; src++)
        dst[j++] = *src == '\'' ? '"' : *src == '\n' ? ' ' : *src;
    dst[j] = 0;
}

/* Each figure: a body script loaded once per terminal (SVG, then PNG). */
static void figure(rep *p, const char *name, const char *body)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.gp", p->dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fputs(body, f);
    fclose(f);
    fprintf(p->gp,
            "reset\nset terminal svg size 960,540 dynamic noenhanced font 'Sans,11' background rgb 'white'\n"
            "set output '%s.svg'\nload '%s.gp'\nunset output\n"
            "reset\nif (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
            "  set terminal pngcairo size 960,540 noenhanced font 'Sans,10' background rgb 'white'\n"
            "} else {\n  set terminal png size 960,540 noenhanced\n}\n"
            "set output '%s.png'\nload '%s.gp'\nunset output\n",
            name, name, name, name);
    if (p->r->n_figures < 8)
        snprintf(p->r->figures[p->r->n_figures++], 32, "%s", name);
}

static void skip(rep *p, const char *what)
{
    size_t n = strlen(p->skipped);
    snprintf(p->skipped + n, sizeof p->skipped - n, "%s%s", n ? ", " : "", what);
}

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
static void fig_convergence(rep *p)
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
    FILE *f = open_out(p, "convergence.dat", NULL);
    char key[512] = "", titles[16][200];
    int colour[16], dash[16], per_colour[8] = {0};
    int series = 0, idx = 0;
    double best = 0;
    while (f && sqlite3_step(st) == SQLITE_ROW) {
        char k[512];
        snprintf(k, sizeof k, "%lld|%s|%s", (long long)sqlite3_column_int64(st, 0), col(st, 3), col(st, 4));
        if (strcmp(k, key)) {
            if (series >= 16)
                break;
            snprintf(key, sizeof key, "%s", k);
            if (series)
                fprintf(f, "\n\n");
            char t[200];
            snprintf(t, sizeof t, "session %lld %s: %s %s %s", (long long)sqlite3_column_int64(st, 0), col(st, 1),
                     col(st, 2), col(st, 3), col(st, 4));
            colour[series] = strategy_colour(col(st, 1));
            dash[series] = ++per_colour[colour[series]];
            gp_title(titles[series++], 200, t);
            idx = 0;
            best = 0;
            fprintf(f, "# %s\n", t);
        }
        idx++;
        double ns = sqlite3_column_double(st, 6), overall = sqlite3_column_double(st, 7);
        if (strcmp(col(st, 5), "ok") || ns <= 0 || overall <= 0)
            continue;
        if (best == 0 || ns < best)
            best = ns;
        fprintf(f, "%d %.6f %.3f\n", idx, best / overall, best / 1e3);
    }
    sqlite3_finalize(st);
    if (f)
        fclose(f);
    if (!series) {
        skip(p, "convergence (no trials)");
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
    figure(p, "convergence", body);
}

/* ---- landscape ------------------------------------------------------------ */

#define LMAX 2048

static void fig_landscape(rep *p)
{
    sqlite3_stmt *st;
    sqlite3_prepare_v2(p->h,
                       "SELECT t.device_id, t.kernel_id, t.shape_key, COUNT(*) n FROM trials t WHERE t.status = 'ok'"
                       " GROUP BY 1, 2, 3 ORDER BY n DESC LIMIT 1",
                       -1, &st, NULL);
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 3) < 4) {
        sqlite3_finalize(st);
        skip(p, "landscape (fewer than 4 valid trials of any kernel x shape)");
        return;
    }
    int64_t dev = sqlite3_column_int64(st, 0), ker = sqlite3_column_int64(st, 1);
    char shape[128];
    snprintf(shape, sizeof shape, "%s", col(st, 2));
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
    static double val[LMAX][16], t[LMAX];
    while (n < LMAX && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *c = cJSON_Parse(col(st, 0)), *it;
        if (!c)
            continue;
        snprintf(kname, sizeof kname, "%s", col(st, 2));
        snprintf(dname, sizeof dname, "%s", col(st, 3));
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
        skip(p, "landscape (no parameter varied)");
        return;
    }
    FILE *f = open_out(p, "landscape.dat", NULL);
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
    gp_title(title, sizeof title, title);
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
    figure(p, "landscape", body);
}

/* ---- bandwidth and speedups ----------------------------------------------- */

static const char *latest_kernel_runs =
    "SELECT r.id FROM bench_runs r WHERE r.kind = 'kernels' AND NOT EXISTS (SELECT 1 FROM bench_runs o WHERE"
    " o.device_id = r.device_id AND o.kind = r.kind AND (o.created > r.created OR (o.created = r.created AND"
    " o.id > r.id)))";

static void fig_bandwidth(rep *p)
{
    char *sql = sqlite3_mprintf(
        "SELECT d.backend, x.name, MAX(CASE WHEN x.metric = 'default_gbps' THEN x.value END),"
        " MAX(CASE WHEN x.metric = 'tuned_gbps' THEN x.value END),"
        " (SELECT c.value FROM bench_results c WHERE c.run_id = r.id AND c.metric = 'copy_gbps'),"
        " MAX(CASE WHEN x.metric = 'tuned_bw_pct' THEN x.value END), d.name, MAX(CASE WHEN x.metric = 'default_us'"
        " THEN x.value END), MAX(CASE WHEN x.metric = 'tuned_us' THEN x.value END), MAX(CASE WHEN x.metric ="
        " 'speedup' THEN x.value END),"
        " (SELECT c.value FROM bench_results c WHERE c.run_id = r.id AND c.metric = 'read_gbps'),"
        " MAX(CASE WHEN x.metric = 'tuned_read_pct' THEN x.value END)"
        " FROM bench_results x JOIN bench_runs r ON r.id = x.run_id JOIN devices d ON d.id = r.device_id"
        " WHERE r.id IN (%s) AND x.name != 'device' GROUP BY r.id, x.name HAVING MAX(CASE WHEN x.metric ="
        " 'tuned_gbps' THEN 1 END) = 1 ORDER BY d.backend, x.name",
        latest_kernel_runs);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(p->h, sql, -1, &st, NULL);
    sqlite3_free(sql);
    FILE *f = open_out(p, "bandwidth.dat", NULL);
    int n = 0;
    if (f)
        fprintf(f, "# label default_gbps tuned_gbps copy_gbps read_gbps (0: not measured)\n");
    fprintf(p->md, "\n## Kernel bench: achieved bandwidth (latest run per device)\n\n"
                   "| device | kernel shape | default us | tuned us | speedup | tuned GB/s | copy GB/s | %% of copy |"
                   " read GB/s | %% of read |\n"
                   "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    while (f && sqlite3_step(st) == SQLITE_ROW) {
        char label[300];
        snprintf(label, sizeof label, "%s: %s", col(st, 0), col(st, 1));
        for (char *c = label; *c; c++)
            if (*c == '"')
                *c = '\'';
        fprintf(f, "\"%s\" %.4f %.4f %.4f %.4f\n", label, sqlite3_column_double(st, 2), sqlite3_column_double(st, 3),
                sqlite3_column_double(st, 4), sqlite3_column_double(st, 10));
        char rd[32] = "-", rp[32] = "-"; /* runs from before the read bandwidth was measured */
        if (sqlite3_column_type(st, 10) != SQLITE_NULL)
            snprintf(rd, sizeof rd, "%.2f", sqlite3_column_double(st, 10));
        if (sqlite3_column_type(st, 11) != SQLITE_NULL)
            snprintf(rp, sizeof rp, "%.0f%%", sqlite3_column_double(st, 11));
        fprintf(p->md, "| %s %s | %s | %.1f | %.1f | %.2fx | %.2f | %.2f | %.0f%% | %s | %s |\n", col(st, 0),
                col(st, 6), col(st, 1), sqlite3_column_double(st, 7), sqlite3_column_double(st, 8),
                sqlite3_column_double(st, 9), sqlite3_column_double(st, 3), sqlite3_column_double(st, 4),
                sqlite3_column_double(st, 5), rd, rp);
        n++;
    }
    sqlite3_finalize(st);
    if (f)
        fclose(f);
    if (!n) {
        fprintf(p->md, "| (no kernel bench runs) | | | | | | | | | |\n");
        skip(p, "bandwidth (no kernel bench runs)");
        return;
    }
    char body[2048];
    snprintf(body, sizeof body,
           "set xrange [-0.6:%.1f]\n"
           "set title 'Achieved bandwidth vs the device copy and read bandwidth (latest kernel bench per device)'\n"
           "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
           "set boxwidth 0.9\nset ylabel 'GB/s'\nset yrange [0:*]\nset grid ytics\nset xtics rotate by -25 font ',8'\n"
           "set key outside top center horizontal\nset bmargin 9\n"
           "plot 'bandwidth.dat' using 2:xtic(1) title 'default config' lc rgb '#999999', \\\n"
           "     '' using 3 title 'tuned config' lc rgb '#d9541e', \\\n"
           "     '' using 4 title 'device copy bandwidth' lc rgb '#3060c0', \\\n"
           "     '' using 5 title 'device read bandwidth' lc rgb '#30a050'\n", n - 0.4);
    figure(p, "bandwidth", body);
}

static void fig_speedup(rep *p)
{
    sqlite3_stmt *st;
    sqlite3_prepare_v2(p->h,
                       "SELECT d.backend, d.name, k.name, w.shape_key, w.median_ns, w.default_ns, w.speedup,"
                       " w.margin, w.tie, w.config_json FROM winners w JOIN devices d ON d.id = w.device_id"
                       " JOIN kernels k ON k.id = w.kernel_id ORDER BY d.backend, k.name, w.shape_key",
                       -1, &st, NULL);
    FILE *f = open_out(p, "speedup.dat", NULL);
    int n = 0;
    fprintf(p->md, "\n## Tuned winners (tuned / default speedup)\n\n"
                   "| device | kernel | shape | tuned us | default us | speedup | margin | config |\n"
                   "|---|---|---|---:|---:|---:|---:|---|\n");
    while (f && sqlite3_step(st) == SQLITE_ROW) {
        fprintf(f, "\"%s: %s %s\" %.4f\n", col(st, 0), col(st, 2), col(st, 3), sqlite3_column_double(st, 6));
        fprintf(p->md, "| %s %s | %s | %s | %.1f | %.1f | %.2fx | %.1f%%%s | `%s` |\n", col(st, 0), col(st, 1),
                col(st, 2), col(st, 3), sqlite3_column_double(st, 4) / 1e3, sqlite3_column_double(st, 5) / 1e3,
                sqlite3_column_double(st, 6), 100 * sqlite3_column_double(st, 7),
                sqlite3_column_int(st, 8) ? " (tie)" : "", col(st, 9));
        n++;
    }
    sqlite3_finalize(st);
    if (f)
        fclose(f);
    if (!n) {
        fprintf(p->md, "| (no winners: run `kiln tune`) | | | | | | | |\n");
        skip(p, "speedup (no winners)");
        return;
    }
    figure(p, "speedup",
           "set title 'Tuned / default speedup per device (winners)'\nset style data histograms\n"
           "set style fill solid 0.8 border -1\nset boxwidth 0.7\nset ylabel 'speedup (x)'\nset yrange [0:*]\n"
           "set grid ytics\nset xtics rotate by -25 font ',8'\nset bmargin 9\n"
           "plot 'speedup.dat' using 2:xtic(1) lc rgb '#d9541e' title 'tuned / default', 1 with lines dt 2 lc "
           "rgb 'black' title 'no gain'\n");
}

/* ---- history -------------------------------------------------------------- */

static void fig_history(rep *p)
{
    sqlite3_stmt *st;
    sqlite3_prepare_v2(p->h,
                       "SELECT r.id, r.git_commit, d.backend, x.name, x.metric, x.value, x.higher_is_better"
                       " FROM bench_results x JOIN bench_runs r ON r.id = x.run_id JOIN devices d ON d.id = r.device_id"
                       " WHERE x.higher_is_better IN (0, 1) ORDER BY d.backend, x.name, x.metric, r.created, r.id",
                       -1, &st, NULL);
    FILE *f = open_out(p, "history.dat", NULL);
    char key[512] = "", titles[12][256];
    int series = 0, points = 0;
    double first = 0;
    /* x = position of the run in time over all runs */
    while (f && sqlite3_step(st) == SQLITE_ROW) {
        char k[512];
        snprintf(k, sizeof k, "%s|%s|%s", col(st, 2), col(st, 3), col(st, 4));
        if (strcmp(k, key)) {
            if (series >= 12)
                break;
            snprintf(key, sizeof key, "%s", k);
            if (series)
                fprintf(f, "\n\n");
            char t[256];
            snprintf(t, sizeof t, "%s: %s %s (%s)", col(st, 2), col(st, 3), col(st, 4),
                     sqlite3_column_int(st, 6) ? "higher is better" : "lower is better");
            gp_title(titles[series++], 256, t);
            first = 0;
        }
        double v = sqlite3_column_double(st, 5);
        if (first == 0)
            first = v;
        sqlite3_stmt *q;
        sqlite3_prepare_v2(p->h,
                           "SELECT COUNT(*) FROM bench_runs o, bench_runs r WHERE r.id = ?1 AND (o.created < r.created"
                           " OR (o.created = r.created AND o.id < r.id))",
                           -1, &q, NULL);
        sqlite3_bind_int64(q, 1, sqlite3_column_int64(st, 0));
        int pos = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : 0;
        sqlite3_finalize(q);
        fprintf(f, "%d %.6f \"%.7s #%lld\"\n", pos, first > 0 ? v / first : 0, col(st, 1),
                (long long)sqlite3_column_int64(st, 0));
        points++;
    }
    sqlite3_finalize(st);
    if (f)
        fclose(f);
    if (!points) {
        skip(p, "history (no bench runs)");
        return;
    }
    char body[8192];
    int n = snprintf(body, sizeof body,
                     "set title 'Bench history: value relative to the first run of each series'\n"
                     "set xlabel 'commit #run'\nset ylabel 'value / first run'\nset grid\nset key below\n"
                     "set key font ',8'\nset xtics rotate by -30 font ',8'\nset offsets 0.5, 0.5, 0, 0\nplot ");
    for (int i = 0; i < series && n < (int)sizeof body - 300; i++)
        n += snprintf(body + n, sizeof body - (size_t)n,
                      "%s'history.dat' index %d using 1:2:xtic(3) with linespoints pt 7 lw 2 title '%s'",
                      i ? ", \\\n     " : "", i, titles[i]);
    snprintf(body + n, sizeof body - (size_t)n, "\n");
    figure(p, "history", body);
}

/* ---- driver --------------------------------------------------------------- */

static int find_gnuplot(char *out, size_t n)
{
    const char *env = getenv("KILN_GNUPLOT");
    if (env && *env) {
        snprintf(out, n, "%s", env);
        return access(out, X_OK);
    }
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, n, "%s/gnuplot", d);
        if (!access(out, X_OK))
            return 0;
    }
    return -1;
}

static int run_gnuplot(const char *gnuplot, const char *dir, kiln_err *e)
{
    pid_t pid = fork();
    if (pid < 0)
        return kiln_fail(e, KILN_E_IO, "report: fork: %s", strerror(errno));
    if (pid == 0) {
        if (chdir(dir))
            _exit(126);
        if (!freopen("gnuplot.log", "w", stderr))
            _exit(126);
        execl(gnuplot, "gnuplot", "report.gp", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return kiln_fail(e, KILN_E_IO, "report: gnuplot failed (exit %d): see %s/gnuplot.log",
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1, dir);
    return 0;
}

static void html_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

/* Markdown tables (as written by this file) to HTML, other lines as text. */
static void md_to_html(FILE *out, const char *md)
{
    const char *line = md;
    int in_table = 0, row = 0;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[4096];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
        if (buf[0] == '|') {
            if (!in_table) {
                fputs("<table>\n", out);
                in_table = 1;
                row = 0;
            }
            if (strncmp(buf, "|---", 4)) {
                fputs("<tr>", out);
                char *save = NULL;
                for (char *c = strtok_r(buf + 1, "|", &save); c; c = strtok_r(NULL, "|", &save)) {
                    fputs(row ? "<td>" : "<th>", out);
                    while (*c == ' ')
                        c++;
                    size_t cl = strlen(c);
                    while (cl && c[cl - 1] == ' ')
                        c[--cl] = 0;
                    for (char *q = c; *q; q++)
                        if (*q == '`')
                            *q = ' ';
                    html_escape(out, c);
                    fputs(row ? "</td>" : "</th>", out);
                }
                fputs("</tr>\n", out);
                row++;
            }
        } else {
            if (in_table) {
                fputs("</table>\n", out);
                in_table = 0;
            }
            if (!strncmp(buf, "## ", 3)) {
                fputs("<h2>", out);
                html_escape(out, buf + 3);
                fputs("</h2>\n", out);
            } else if (!strncmp(buf, "# ", 2)) {
                /* the page has its own title */
            } else if (buf[0]) {
                fputs("<p>", out);
                html_escape(out, buf);
                fputs("</p>\n", out);
            }
        }
        line += len + (end ? 1 : 0);
    }
    if (in_table)
        fputs("</table>\n", out);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) == (size_t)n)
        b[n] = 0;
    else {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static void summary_head(rep *p)
{
    fprintf(p->md, "# Kiln report\n\nDatabase: %s\n\n## Devices\n\n| device | backend | copy GB/s | sessions | trials | bench runs |\n"
                   "|---|---|---:|---:|---:|---:|\n",
            kiln_db_path(p->db));
    sqlite3_stmt *st;
    sqlite3_prepare_v2(p->h,
                       "SELECT d.name, d.backend, d.copy_gbps, (SELECT COUNT(*) FROM sessions s WHERE s.device_id = d.id),"
                       " (SELECT COUNT(*) FROM trials t WHERE t.device_id = d.id),"
                       " (SELECT COUNT(*) FROM bench_runs r WHERE r.device_id = d.id) FROM devices d ORDER BY d.id",
                       -1, &st, NULL);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        fprintf(p->md, "| %s | %s | %.2f | %d | %d | %d |\n", col(st, 0), col(st, 1), sqlite3_column_double(st, 2),
                sqlite3_column_int(st, 3), sqlite3_column_int(st, 4), sqlite3_column_int(st, 5));
        n++;
    }
    sqlite3_finalize(st);
    if (!n)
        fprintf(p->md, "| (empty database: run `kiln tune` and `kiln bench kernels`) | | | | | |\n");
}

int kiln_report(kiln_db *db, const char *dir, kiln_report_result *r, kiln_err *e)
{
    memset(r, 0, sizeof *r);
    char gnuplot[1024];
    if (find_gnuplot(gnuplot, sizeof gnuplot))
        return kiln_fail(e, KILN_E_UNAVAILABLE, "gnuplot not found: apt-get install gnuplot-nox");
    if (mkdir(dir, 0755) && errno != EEXIST)
        return kiln_fail(e, KILN_E_IO, "%s: cannot create: %s", dir, strerror(errno));
    rep p = {.db = db, .h = kiln_db_handle(db), .dir = dir, .r = r};
    if (!(p.gp = open_out(&p, "report.gp", e)))
        return e->code;
    if (!(p.md = open_out(&p, "summary.md", e))) {
        fclose(p.gp);
        return e->code;
    }
    fprintf(p.gp, "# generated by kiln report; run `gnuplot report.gp` in this directory\n");
    summary_head(&p);
    fig_convergence(&p);
    fig_landscape(&p);
    fig_bandwidth(&p);
    fig_speedup(&p);
    fig_history(&p);
    if (p.skipped[0])
        fprintf(p.md, "\nNot drawn (no data): %s\n", p.skipped);
    fprintf(p.md, "\nFigures: ");
    for (int i = 0; i < r->n_figures; i++)
        fprintf(p.md, "%s[%s](%s.svg) ([png](%s.png))", i ? ", " : "", r->figures[i], r->figures[i], r->figures[i]);
    fprintf(p.md, "%s\n", r->n_figures ? "" : "none");
    fclose(p.gp);
    fclose(p.md);
    snprintf(r->skipped, sizeof r->skipped, "%s", p.skipped);
    int rc = r->n_figures ? run_gnuplot(gnuplot, dir, e) : 0;
    if (rc)
        return rc;

    /* the HTML page: markdown tables + every figure inline as SVG */
    snprintf(r->markdown, sizeof r->markdown, "%s/summary.md", dir);
    snprintf(r->html, sizeof r->html, "%s/index.html", dir);
    FILE *h = fopen(r->html, "w");
    if (!h)
        return kiln_fail(e, KILN_E_IO, "%s: cannot write: %s", r->html, strerror(errno));
    fprintf(h, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Kiln report</title>\n"
               "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
               "table{border-collapse:collapse;margin:1em 0;font-size:90%%}td,th{border:1px solid #ccc;padding:3px 8px}"
               "th{background:#eee}td{text-align:right}td:first-child{text-align:left}figure{margin:2em 0}</style>"
               "</head><body>\n<h1>Kiln report</h1>\n");
    char *md = slurp(r->markdown);
    if (md)
        md_to_html(h, md);
    free(md);
    for (int i = 0; i < r->n_figures; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s.svg", dir, r->figures[i]);
        char *svg = slurp(path);
        const char *start = svg ? strstr(svg, "<svg") : NULL;
        fprintf(h, "<figure id=\"%s\"><h2>%s</h2>\n", r->figures[i], r->figures[i]);
        if (start)
            fputs(start, h);
        else
            fprintf(h, "<p>(%s.svg missing)</p>", r->figures[i]);
        fprintf(h, "\n</figure>\n");
        free(svg);
    }
    fprintf(h, "</body></html>\n");
    if (fclose(h))
        return kiln_fail(e, KILN_E_IO, "%s: write failed", r->html);
    return 0;
}
