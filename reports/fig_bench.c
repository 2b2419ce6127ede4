/* reports/fig_bench.c - the figures of the bench runs: achieved bandwidth
 * of the latest kernel bench per device, and the history of gated metrics. */
#include <string.h>

#include "reports/report_internal.h"

/* ---- bandwidth and speedups ----------------------------------------------- */

static const char *latest_kernel_runs =
    "SELECT r.id FROM bench_runs r WHERE r.kind = 'kernels' AND NOT EXISTS (SELECT 1 FROM bench_runs o WHERE"
    " o.device_id = r.device_id AND o.kind = r.kind AND (o.created > r.created OR (o.created = r.created AND"
    " o.id > r.id)))";

void fig_bandwidth(rep *p)
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
    FILE *f = rep_open(p, "bandwidth.dat", NULL);
    int n = 0;
    if (f)
        fprintf(f, "# label default_gbps tuned_gbps copy_gbps read_gbps (0: not measured)\n");
    fprintf(p->md, "\n## Kernel bench: achieved bandwidth (latest run per device)\n\n"
                   "| device | kernel shape | default us | tuned us | speedup | tuned GB/s | copy GB/s | %% of copy |"
                   " read GB/s | %% of read |\n"
                   "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    while (f && sqlite3_step(st) == SQLITE_ROW) {
        char label[300];
        snprintf(label, sizeof label, "%s: %s", rep_col(st, 0), rep_col(st, 1));
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
        fprintf(p->md, "| %s %s | %s | %.1f | %.1f | %.2fx | %.2f | %.2f | %.0f%% | %s | %s |\n", rep_col(st, 0),
                rep_col(st, 6), rep_col(st, 1), sqlite3_column_double(st, 7), sqlite3_column_double(st, 8),
                sqlite3_column_double(st, 9), sqlite3_column_double(st, 3), sqlite3_column_double(st, 4),
                sqlite3_column_double(st, 5), rd, rp);
        n++;
    }
    sqlite3_finalize(st);
    if (f)
        fclose(f);
    if (!n) {
        fprintf(p->md, "| (no kernel bench runs) | | | | | | | | | |\n");
        rep_skip(p, "bandwidth (no kernel bench runs)");
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
    rep_figure(p, "bandwidth", body);
}

/* ---- history -------------------------------------------------------------- */

void fig_history(rep *p)
{
    sqlite3_stmt *st;
    sqlite3_prepare_v2(p->h,
                       "SELECT r.id, r.git_commit, d.backend, x.name, x.metric, x.value, x.higher_is_better"
                       " FROM bench_results x JOIN bench_runs r ON r.id = x.run_id JOIN devices d ON d.id = r.device_id"
                       " WHERE x.higher_is_better IN (0, 1) ORDER BY d.backend, x.name, x.metric, r.created, r.id",
                       -1, &st, NULL);
    FILE *f = rep_open(p, "history.dat", NULL);
    char key[512] = "", titles[12][256];
    int series = 0, points = 0;
    double first = 0;
    /* x = position of the run in time over all runs */
    while (f && sqlite3_step(st) == SQLITE_ROW) {
        char k[512];
        snprintf(k, sizeof k, "%s|%s|%s", rep_col(st, 2), rep_col(st, 3), rep_col(st, 4));
        if (strcmp(k, key)) {
            if (series >= 12)
                break;
            snprintf(key, sizeof key, "%s", k);
            if (series)
                fprintf(f, "\n\n");
            char t[256];
            snprintf(t, sizeof t, "%s: %s %s (%s)", rep_col(st, 2), rep_col(st, 3), rep_col(st, 4),
                     sqlite3_column_int(st, 6) ? "higher is better" : "lower is better");
            rep_gp_title(titles[series++], 256, t);
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
        fprintf(f, "%d %.6f \"%.7s #%lld\"\n", pos, first > 0 ? v / first : 0, rep_col(st, 1),
                (long long)sqlite3_column_int64(st, 0));
        points++;
    }
    sqlite3_finalize(st);
    if (f)
        fclose(f);
    if (!points) {
        rep_skip(p, "history (no bench runs)");
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
    fprintf(p->md, "\n## Bench history\n\nGated bench metrics over the bench runs (commit on the x axis), relative "
                   "to each series' first run.\n");
    rep_figure(p, "history", body);
}
