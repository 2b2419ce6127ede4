/* reports/fig_bench.c - the figures of the bench runs: achieved bandwidth
 * of the latest kernel bench per device, and the history of gated metrics. */
#include <stdlib.h>
#include <string.h>

#include "reports/report_internal.h"
#include "reports/shape_label.h"

/* ---- bandwidth: one panel per device ----------------------------------- */

static const char *latest_kernel_runs =
    "SELECT r.id FROM bench_runs r WHERE r.kind = 'kernels' AND NOT EXISTS (SELECT 1 FROM bench_runs o WHERE"
    " o.device_id = r.device_id AND o.kind = r.kind AND (o.created > r.created OR (o.created = r.created AND"
    " o.id > r.id)))";

typedef struct bdev {
    char label[200];
    double copy_gbps, read_gbps; /* 0: not measured */
    int first, n;                /* its rows: row[first .. first + n) */
} bdev;

typedef struct brow {
    int dev;
    char kernel[64], shape[256];
    double def_gbps, tuned_gbps, def_us, tuned_us, speedup, copy_pct, read_pct; /* read_pct < 0: not measured */
    kiln_shape_label label;
} brow;

static int by_kernel_shape(const void *a, const void *b)
{
    const brow *x = a, *y = b;
    int c = strcmp(x->kernel, y->kernel);
    return c ? c : rep_natural_cmp(x->shape, y->shape);
}

/* The latest kernel bench run of each device: rows grouped by device, each
 * device's sorted by kernel and shape; n_dev devices; the shape legend. */
static brow *bench_rows(rep *p, int *n_rows, bdev **devs, int *n_dev, char *legend, size_t legend_n)
{
    char *sql = sqlite3_mprintf(
        "SELECT d.id, d.backend, d.name, x.name, MAX(CASE WHEN x.metric = 'default_gbps' THEN x.value END),"
        " MAX(CASE WHEN x.metric = 'tuned_gbps' THEN x.value END),"
        " (SELECT c.value FROM bench_results c WHERE c.run_id = r.id AND c.metric = 'copy_gbps'),"
        " (SELECT c.value FROM bench_results c WHERE c.run_id = r.id AND c.metric = 'read_gbps'),"
        " MAX(CASE WHEN x.metric = 'default_us' THEN x.value END), MAX(CASE WHEN x.metric = 'tuned_us' THEN x.value END),"
        " MAX(CASE WHEN x.metric = 'speedup' THEN x.value END), MAX(CASE WHEN x.metric = 'tuned_bw_pct' THEN x.value END),"
        " MAX(CASE WHEN x.metric = 'tuned_read_pct' THEN x.value END)"
        " FROM bench_results x JOIN bench_runs r ON r.id = x.run_id JOIN devices d ON d.id = r.device_id"
        " WHERE r.id IN (%s) AND x.name != 'device' GROUP BY r.id, x.name HAVING MAX(CASE WHEN x.metric ="
        " 'tuned_gbps' THEN 1 END) = 1 ORDER BY d.backend, d.id, x.name",
        latest_kernel_runs);
    sqlite3_stmt *st = NULL;
    int rc = sql && sqlite3_prepare_v2(p->h, sql, -1, &st, NULL) == SQLITE_OK ? 0 : -1;
    sqlite3_free(sql);
    brow *w = NULL;
    bdev *d = NULL;
    int n = 0, nd = 0, cap = 0;
    int64_t last = -1;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            brow *w2 = realloc(w, (size_t)cap * sizeof *w);
            bdev *d2 = realloc(d, (size_t)cap * sizeof *d);
            w = w2 ? w2 : w;
            d = d2 ? d2 : d;
            if (!w2 || !d2) {
                rc = -1;
                break;
            }
        }
        if (sqlite3_column_int64(st, 0) != last) {
            last = sqlite3_column_int64(st, 0);
            bdev *v = &d[nd++];
            memset(v, 0, sizeof *v);
            char name[160];
            rep_gp_title(name, sizeof name, rep_col(st, 2));
            snprintf(v->label, sizeof v->label, "%s: %s", rep_col(st, 1), name);
            for (int i = 0; i < nd - 1; i++)
                if (!strcmp(d[i].label, v->label)) {
                    size_t l = strlen(v->label);
                    snprintf(v->label + l, sizeof v->label - l, " #%lld", (long long)last);
                    break;
                }
            v->copy_gbps = sqlite3_column_double(st, 6);
            v->read_gbps = sqlite3_column_double(st, 7);
            v->first = n;
        }
        brow *r = &w[n++];
        memset(r, 0, sizeof *r);
        r->dev = nd - 1;
        d[nd - 1].n++;
        /* the bench's subject: "kernel shape" */
        const char *subj = rep_col(st, 3), *sp = strchr(subj, ' ');
        snprintf(r->kernel, sizeof r->kernel, "%.*s", (int)(sp ? sp - subj : (long)strlen(subj)), subj);
        rep_gp_title(r->shape, sizeof r->shape, sp ? sp + 1 : "");
        r->def_gbps = sqlite3_column_double(st, 4);
        r->tuned_gbps = sqlite3_column_double(st, 5);
        r->def_us = sqlite3_column_double(st, 8);
        r->tuned_us = sqlite3_column_double(st, 9);
        r->speedup = sqlite3_column_double(st, 10);
        r->copy_pct = sqlite3_column_double(st, 11);
        r->read_pct = sqlite3_column_type(st, 12) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 12);
    }
    sqlite3_finalize(st);
    const char **kn = n ? malloc((size_t)n * sizeof *kn) : NULL, **sk = n ? malloc((size_t)n * sizeof *sk) : NULL;
    kiln_shape_label *lab = n ? malloc((size_t)n * sizeof *lab) : NULL;
    if (!rc && n && (!kn || !sk || !lab))
        rc = -1;
    for (int v = 0; !rc && v < nd; v++)
        qsort(w + d[v].first, (size_t)d[v].n, sizeof *w, by_kernel_shape);
    for (int i = 0; !rc && i < n; i++) {
        kn[i] = w[i].kernel;
        sk[i] = w[i].shape;
    }
    if (!rc && n && kiln_shape_labels(kn, sk, n, lab, legend, legend_n) < 0)
        rc = -1;
    for (int i = 0; !rc && i < n; i++)
        memcpy(w[i].label, lab[i], sizeof lab[i]);
    free(kn);
    free(sk);
    free(lab);
    if (rc) {
        free(w);
        free(d);
        *n_rows = *n_dev = 0;
        *devs = NULL;
        return NULL;
    }
    *n_rows = n;
    *n_dev = nd;
    *devs = d;
    return w;
}

static void bandwidth_md(rep *p, const brow *w, int n, const bdev *d)
{
    fprintf(p->md, "| device | kernel shape | default us | tuned us | speedup | tuned GB/s | copy GB/s | %% of copy |"
                   " read GB/s | %% of read |\n"
                   "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        const bdev *v = &d[w[i].dev];
        char rd[32] = "-", rp[32] = "-"; /* runs from before the read bandwidth was measured */
        if (v->read_gbps > 0)
            snprintf(rd, sizeof rd, "%.2f", v->read_gbps);
        if (w[i].read_pct >= 0)
            snprintf(rp, sizeof rp, "%.0f%%", w[i].read_pct);
        fprintf(p->md, "| %s | %s %s | %.1f | %.1f | %.2fx | %.2f | %.2f | %.0f%% | %s | %s |\n", v->label, w[i].kernel,
                w[i].shape, w[i].def_us, w[i].tuned_us, w[i].speedup, w[i].tuned_gbps, v->copy_gbps, w[i].copy_pct, rd,
                rp);
    }
}

/* One panel per device: default (grey) and tuned (the device's colour) GB/s
 * of each kernel x shape, the device's copy (dashed) and read (dotted)
 * bandwidth as lines; each panel on its own scale, since a phone's roof is
 * a tenth of a desktop GPU's. */
void fig_bandwidth(rep *p)
{
    int n = 0, nd = 0, label_chars = 0;
    bdev *d = NULL;
    char legend[4096] = "";
    fprintf(p->md, "\n## Kernel bench: achieved bandwidth (latest run per device)\n\n");
    brow *w = bench_rows(p, &n, &d, &nd, legend, sizeof legend);
    FILE *f = n ? rep_open(p, "bandwidth.dat", NULL) : NULL;
    if (!f) {
        fprintf(p->md, "No kernel bench runs: run `kiln bench kernels`.\n");
        rep_skip(p, "bandwidth (no kernel bench runs)");
        free(w);
        free(d);
        return;
    }
    for (int v = 0; v < nd; v++) {
        fprintf(f, "%s# %s: y label default_gbps tuned_gbps tooltip\n", v ? "\n\n" : "", d[v].label);
        for (int i = 0; i < d[v].n; i++) {
            const brow *r = &w[d[v].first + i];
            char t[1024], tip[1024], rp[48] = "";
            if (r->read_pct >= 0)
                snprintf(rp, sizeof rp, ", %.0f%% of read", r->read_pct);
            snprintf(t, sizeof t, "%s %s on %s\\ndefault %.1f us, %.2f GB/s\\ntuned %.1f us, %.2f GB/s (%.2fx)\\n"
                     "tuned: %.0f%% of copy%s", r->kernel, r->shape, d[v].label, r->def_us, r->def_gbps, r->tuned_us,
                     r->tuned_gbps, r->speedup, r->copy_pct, rp);
            rep_gp_title(tip, sizeof tip, t);
            fprintf(f, "%d \"%s %s\" %.4f %.4f \"%s\"\n", d[v].n - 1 - i, r->kernel, r->label, r->def_gbps,
                    r->tuned_gbps, tip);
            size_t l = strlen(r->kernel) + 1 + strlen(r->label);
            label_chars = (int)l > label_chars ? (int)l : label_chars;
        }
    }
    fclose(f);
    int rows[REP_MAX_PANELS];
    for (int v = 0; v < nd && v < REP_MAX_PANELS; v++)
        rows[v] = d[v].n;
    rep_panels l;
    rep_panels_layout(&l, nd, rows, label_chars, nd == 1 ? 560 : 290, 42, rep_legend_lines(legend));
    FILE *b = rep_figure_begin(p, "bandwidth", l.w, l.h);
    if (!b) {
        free(w);
        free(d);
        return;
    }
    fprintf(b, "set multiplot title 'Achieved bandwidth of the default (grey) and the tuned config (colour); the device "
               "copy (blue, dashed) and read (green, dotted) bandwidth' font ',11'\n"
               "set style fill solid 0.85 noborder\nset border 3 lc rgb '#666666'\nset xtics nomirror out\n"
               "set ytics nomirror scale 0 font ',9'\nset grid xtics lc rgb '#dddddd'\n"
               "set xlabel 'GB/s' offset 0,0.3\n");
    for (int v = 0; v < l.n; v++) {
        double xmax = d[v].copy_gbps > d[v].read_gbps ? d[v].copy_gbps : d[v].read_gbps;
        for (int i = 0; i < d[v].n; i++) {
            const brow *r = &w[d[v].first + i];
            xmax = r->tuned_gbps > xmax ? r->tuned_gbps : xmax;
            xmax = r->def_gbps > xmax ? r->def_gbps : xmax;
        }
        rep_panel_place(b, &l, v);
        char title[200], roofs[120];
        rep_fit(d[v].label, (size_t)((l.panel_w - 24) / 7), title, sizeof title);
        int k = snprintf(roofs, sizeof roofs, "copy %.1f GB/s", d[v].copy_gbps);
        if (d[v].read_gbps > 0)
            snprintf(roofs + k, sizeof roofs - (size_t)k, ", read %.1f GB/s", d[v].read_gbps);
        fprintf(b, "set title \"%s\\n%s\" font ',10' offset 0,-0.6 tc rgb '%s'\nset xrange [0:%g]\nunset arrow\n",
                title, roofs, rep_colour(v), xmax * 1.15 + 1e-9);
        if (d[v].copy_gbps > 0)
            fprintf(b, "set arrow 1 from first %g, graph 0 to first %g, graph 1 nohead dt 2 lw 1.5 lc rgb '#3060c0'"
                       " front\n", d[v].copy_gbps, d[v].copy_gbps);
        if (d[v].read_gbps > 0)
            fprintf(b, "set arrow 2 from first %g, graph 0 to first %g, graph 1 nohead dt 3 lw 2 lc rgb '#30a050'"
                       " front\n", d[v].read_gbps, d[v].read_gbps);
        if (v == l.n - 1)
            rep_legend(b, legend, l.h, l.legend_y);
        fprintf(b,
                "plot 'bandwidth.dat' index %d using ($3/2):1:(0):3:($1+0.02):($1+0.38):ytic(2) with boxxyerror"
                " lc rgb '#aaaaaa' notitle, \\\n"
                "     '' index %d using ($4/2):1:(0):4:($1-0.38):($1-0.02) with boxxyerror lc rgb '%s' notitle, \\\n"
                "     '' index %d using 4:($1-0.2):(sprintf('%%.1f', $4)) with labels left offset char 0.3,0"
                " font ',8' notitle, \\\n"
                "     '' index %d using ($4/2):1:5 with labels hypertext point pt 5 ps 1.6 lc rgb '#ff000000'"
                " notitle\n",
                v, v, rep_colour(v), v, v);
    }
    fprintf(b, "unset multiplot\n");
    fprintf(p->md, "Per device (its own scale), the GB/s each kernel x shape reaches with the device default and with "
                   "the tuned config, against the device's copy and read bandwidth.\n");
    rep_figure_end(p, "bandwidth", b);
    bandwidth_md(p, w, n, d);
    free(w);
    free(d);
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
