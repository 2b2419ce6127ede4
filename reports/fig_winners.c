/* reports/fig_winners.c - the figures of the tuned winners, made to read at
 * a glance for a fleet of devices:
 *   speedup  tuned / default of every winner, one panel (and one colour) per
 *            device, horizontal bars sorted by speedup, one x scale for all
 *            panels; hover: tuned and default time and config
 *   devices  the cross-device view: a cell per kernel x shape (row) and
 *            device (column) with the winner's time and its % of that
 *            device's bandwidth, coloured by the %; in a row of three or
 *            more devices, a cell under half of the row's median % is
 *            outlined in red (a device that falls behind its peers on one
 *            kernel stands out; two devices cannot say which one is off);
 *            hover: time, GB/s, roof, config
 * Both label rows "kernel shape" with shortened shape keys and a legend
 * (shape_label.h). The device default config is the first config the
 * winner's session measured for that kernel x shape: tune measures the
 * device default first (tuner/tune.c), so a winner without a session trial
 * (imported) shows none. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reports/report_internal.h"
#include "reports/shape_label.h"

typedef struct wdev {
    char backend[16], name[128];
    char label[200];  /* "backend: name", "#id" added where two devices share one */
    double copy_gbps, read_gbps;
    int n;            /* winners */
} wdev;

typedef struct wrow {
    int dev;
    char kernel[64], shape[256];
    double tuned_ns, default_ns, speedup, margin, bytes;
    int tie, has_default;
    char cfg[512], def_cfg[512]; /* "wg=64 rows=4" */
    kiln_shape_label label;
    int cell;                    /* the cross-device row of (kernel, shape) */
    double pct;                  /* % of the device's roof, 0 when unknown */
    int read_roof;               /* the roof is the read bandwidth (else copy) */
    int flagged;                 /* under half of its row's median % */
} wrow;

typedef struct winners {
    wdev *d;
    wrow *w;
    int nd, n, ncells;
    char legend[4096];
    int legend_lines;
} winners;

/* Kernels whose output is a small part of what they read (a weight stream,
 * KV pages, a reduction): the read bandwidth is their roof where the device
 * measured it (bench/results/read_bandwidth.md); the others write about as
 * much as they read, and copy bandwidth (read + write) is theirs. */
static int reads_mostly(const char *kernel)
{
    static const char *const names[] = {"gemv_int4", "attention_paged", "argmax"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(kernel, names[i]))
            return 1;
    return 0;
}

/* {"wg":64,"rows":4} -> "wg=64 rows=4" (no quotes: it goes into data files). */
static void config_text(const char *json, char *out, size_t n)
{
    cJSON *c = cJSON_Parse(json), *it;
    size_t len = 0;
    out[0] = 0;
    if (!c) {
        rep_gp_title(out, n, json);
        return;
    }
    cJSON_ArrayForEach(it, c)
    {
        if (!it->string)
            continue;
        int w = cJSON_IsNumber(it) ? snprintf(out + len, n - len, "%s%s=%g", len ? " " : "", it->string, it->valuedouble)
                                   : snprintf(out + len, n - len, "%s%s=?", len ? " " : "", it->string);
        if (w < 0 || (size_t)w >= n - len)
            break;
        len += (size_t)w;
    }
    cJSON_Delete(c);
}

static int load(rep *p, winners *ws)
{
    memset(ws, 0, sizeof *ws);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            p->h,
            "SELECT d.id, d.backend, d.name, d.copy_gbps, d.read_gbps, k.name, w.shape_key, w.median_ns,"
            " w.default_ns, w.speedup, w.margin, w.tie, w.config_json,"
            " (SELECT t.config_json FROM trials t, trials wt WHERE wt.id = w.trial_id"
            "  AND t.device_id = w.device_id AND t.kernel_id = w.kernel_id AND t.shape_key = w.shape_key"
            "  AND t.session_id = wt.session_id ORDER BY t.id LIMIT 1),"
            " COALESCE((SELECT t.gbps * t.median_ns FROM trials t WHERE t.id = w.trial_id AND t.gbps > 0"
            "  AND t.median_ns > 0), (SELECT t.gbps * t.median_ns FROM trials t JOIN kernels k2 ON"
            "  k2.id = t.kernel_id WHERE k2.name = k.name AND t.shape_key = w.shape_key AND t.status = 'ok'"
            "  AND t.gbps > 0 AND t.median_ns > 0 LIMIT 1))"
            " FROM winners w JOIN devices d ON d.id = w.device_id JOIN kernels k ON k.id = w.kernel_id"
            " ORDER BY d.backend, d.id, k.name, w.shape_key",
            -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return -1;
    }
    int cap = 0;
    int64_t last_dev = -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (ws->n == cap) {
            cap = cap ? 2 * cap : 64;
            wrow *w = realloc(ws->w, (size_t)cap * sizeof *w);
            wdev *d = realloc(ws->d, (size_t)cap * sizeof *d);
            if (w)
                ws->w = w;
            if (d)
                ws->d = d;
            if (!w || !d) {
                sqlite3_finalize(st);
                return -1;
            }
        }
        if (sqlite3_column_int64(st, 0) != last_dev) {
            last_dev = sqlite3_column_int64(st, 0);
            wdev *d = &ws->d[ws->nd++];
            memset(d, 0, sizeof *d);
            snprintf(d->backend, sizeof d->backend, "%s", rep_col(st, 1));
            rep_gp_title(d->name, sizeof d->name, rep_col(st, 2));
            snprintf(d->label, sizeof d->label, "%s: %s", d->backend, d->name);
            for (int i = 0; i < ws->nd - 1; i++)
                if (!strcmp(ws->d[i].label, d->label)) {
                    size_t l = strlen(d->label);
                    snprintf(d->label + l, sizeof d->label - l, " #%lld", (long long)last_dev);
                    break;
                }
            d->copy_gbps = sqlite3_column_double(st, 3);
            d->read_gbps = sqlite3_column_double(st, 4);
        }
        wrow *w = &ws->w[ws->n++];
        memset(w, 0, sizeof *w);
        w->dev = ws->nd - 1;
        ws->d[w->dev].n++;
        snprintf(w->kernel, sizeof w->kernel, "%s", rep_col(st, 5));
        snprintf(w->shape, sizeof w->shape, "%s", rep_col(st, 6));
        w->tuned_ns = sqlite3_column_double(st, 7);
        w->default_ns = sqlite3_column_double(st, 8);
        w->speedup = sqlite3_column_double(st, 9);
        w->margin = sqlite3_column_double(st, 10);
        w->tie = sqlite3_column_int(st, 11);
        config_text(rep_col(st, 12), w->cfg, sizeof w->cfg);
        if ((w->has_default = sqlite3_column_type(st, 13) != SQLITE_NULL))
            config_text(rep_col(st, 13), w->def_cfg, sizeof w->def_cfg);
        w->bytes = sqlite3_column_double(st, 14);
        const wdev *d = &ws->d[w->dev];
        w->read_roof = reads_mostly(w->kernel) && d->read_gbps > 0;
        double roof = w->read_roof ? d->read_gbps : d->copy_gbps;
        if (w->bytes > 0 && w->tuned_ns > 0 && roof > 0)
            w->pct = 100 * w->bytes / w->tuned_ns / roof;
    }
    sqlite3_finalize(st);
    if (!ws->n)
        return 0;
    const char **kn = malloc((size_t)ws->n * sizeof *kn), **sk = malloc((size_t)ws->n * sizeof *sk);
    kiln_shape_label *labels = malloc((size_t)ws->n * sizeof *labels);
    int rc = kn && sk && labels ? 0 : -1;
    for (int i = 0; !rc && i < ws->n; i++) {
        kn[i] = ws->w[i].kernel;
        sk[i] = ws->w[i].shape;
    }
    if (!rc && (ws->legend_lines = kiln_shape_labels(kn, sk, ws->n, labels, ws->legend, sizeof ws->legend)) < 0)
        rc = -1;
    for (int i = 0; !rc && i < ws->n; i++)
        memcpy(ws->w[i].label, labels[i], sizeof labels[i]);
    free(kn);
    free(sk);
    free(labels);
    return rc;
}

static void unload(winners *ws)
{
    free(ws->w);
    free(ws->d);
}

static void time_text(double ns, char *out, size_t n)
{
    if (ns < 100)
        snprintf(out, n, "%.0f ns", ns);
    else if (ns >= 1e6)
        snprintf(out, n, "%.2f ms", ns / 1e6);
    else
        snprintf(out, n, "%.1f us", ns / 1e3);
}

/* ---- speedup: one panel per device ----------------------------------------- */

typedef struct ranked {
    const wrow *w;
} ranked;

static int by_speedup(const void *a, const void *b)
{
    const wrow *x = ((const ranked *)a)->w, *y = ((const ranked *)b)->w;
    if (x->speedup != y->speedup)
        return x->speedup > y->speedup ? -1 : 1;
    int c = strcmp(x->kernel, y->kernel);
    return c ? c : rep_natural_cmp(x->shape, y->shape);
}

static void speedup_md(rep *p, const winners *ws, ranked *order)
{
    fprintf(p->md, "| device | kernel | shape | tuned us | default us | speedup | margin | tuned config |"
                   " default config |\n|---|---|---|---:|---:|---:|---:|---|---|\n");
    for (int i = 0; i < ws->n; i++) {
        const wrow *w = order[i].w;
        fprintf(p->md, "| %s | %s | %s | %.1f | %.1f | %.2fx | %.1f%%%s | `%s` | %s%s%s |\n", ws->d[w->dev].label,
                w->kernel, w->shape, w->tuned_ns / 1e3, w->default_ns / 1e3, w->speedup, 100 * w->margin,
                w->tie ? " (tie)" : "", w->cfg, w->has_default ? "`" : "", w->has_default ? w->def_cfg : "-",
                w->has_default ? "`" : "");
    }
}

static void speedup(rep *p, winners *wsp)
{
    const winners ws = *wsp;
    fprintf(p->md, "\n## Tuned / default speedup, per device\n\n");
    ranked *order = malloc((size_t)ws.n * sizeof *order);
    FILE *f = order ? rep_open(p, "speedup.dat", NULL) : NULL;
    if (!f) {
        free(order);
        rep_skip(p, "speedup (cannot write speedup.dat)");
        return;
    }
    /* rows of each device sorted by speedup; one data block per device */
    int start = 0, label_chars = 0;
    double xmax = 1;
    for (int i = 0; i < ws.n; i++) {
        order[i].w = &ws.w[i];
        size_t l = strlen(ws.w[i].kernel) + 1 + strlen(ws.w[i].label);
        label_chars = (int)l > label_chars ? (int)l : label_chars;
        xmax = ws.w[i].speedup > xmax ? ws.w[i].speedup : xmax;
    }
    for (int d = 0; d < ws.nd; d++) {
        qsort(order + start, (size_t)ws.d[d].n, sizeof *order, by_speedup);
        fprintf(f, "%s# %s: y label speedup tooltip\n", d ? "\n\n" : "", ws.d[d].label);
        for (int i = 0; i < ws.d[d].n; i++) {
            const wrow *w = order[start + i].w;
            char t[2048], tip[2048], tt[32], td[32];
            time_text(w->tuned_ns, tt, sizeof tt);
            time_text(w->default_ns, td, sizeof td);
            snprintf(t, sizeof t,
                     "%s %s on %s\\ntuned %s: %s\\ndefault %s: %s\\nspeedup %.2fx, margin over the runner-up %.1f%%%s",
                     w->kernel, w->shape, ws.d[d].label, tt, w->cfg, td,
                     w->has_default ? w->def_cfg : "(config not recorded)", w->speedup, 100 * w->margin,
                     w->tie ? " (a tie)" : "");
            rep_gp_title(tip, sizeof tip, t);
            fprintf(f, "%d \"%s %s\" %.4f \"%s\"\n", ws.d[d].n - 1 - i, w->kernel, w->label, w->speedup, tip);
        }
        start += ws.d[d].n;
    }
    fclose(f);

    /* a grid of panels, rows of 16 px, the same x scale in every panel */
    int rows[REP_MAX_PANELS];
    for (int d = 0; d < ws.nd && d < REP_MAX_PANELS; d++)
        rows[d] = ws.d[d].n;
    rep_panels l;
    rep_panels_layout(&l, ws.nd, rows, label_chars, ws.nd == 1 ? 560 : 290, 26, ws.legend_lines);
    xmax = ceil(xmax * 1.18 * 4) / 4;
    FILE *b = rep_figure_begin(p, "speedup", l.w, l.h);
    if (!b) {
        free(order);
        return;
    }
    fprintf(b, "set multiplot title 'Tuned / default speedup of each winner (bars sorted; dashed line: no gain; hover a"
               " bar in the HTML for both configs)' font ',11'\n"
               "set style fill solid 0.85 noborder\nset border 3 lc rgb '#666666'\nset xtics nomirror out\n"
               "set ytics nomirror scale 0 font ',9'\nset grid xtics lc rgb '#dddddd'\nset xrange [0:%g]\n"
               "set xlabel 'tuned / default (x)' offset 0,0.3\n"
               "set arrow 1 from first 1, graph 0 to first 1, graph 1 nohead dt 2 lc rgb '#333333' front\n",
               xmax);
    for (int d = 0; d < l.n; d++) {
        rep_panel_place(b, &l, d);
        /* the title centres over the bars and may reach into the labels' room */
        char title[200];
        rep_fit(ws.d[d].label, (size_t)((l.panel_w - 24) / 7), title, sizeof title);
        fprintf(b, "set title '%s' font ',10' offset 0,-0.6 tc rgb '%s'\n", title, rep_colour(d));
        if (d == l.n - 1)
            rep_legend(b, ws.legend, l.h, l.legend_y);
        fprintf(b,
                "plot 'speedup.dat' index %d using ($3/2):1:(0):3:($1-0.38):($1+0.38):ytic(2) with boxxyerror"
                " lc rgb '%s' notitle, \\\n"
                "     '' index %d using 3:1:(sprintf('%%.2fx', $3)) with labels left offset char 0.3,0 font ',8'"
                " notitle, \\\n"
                "     '' index %d using ($3/2):1:4 with labels hypertext point pt 5 ps 1.6 lc rgb '#ff000000'"
                " notitle, \\\n"
                "     '' index %d using 3:1:4 with labels hypertext point pt 5 ps 1.6 lc rgb '#ff000000' notitle\n",
                d, rep_colour(d), d, d, d);
    }
    fprintf(b, "unset multiplot\n");
    fprintf(p->md, "Each winner's tuned time over the device default's (the config tune measures first), one panel "
                   "per device, sorted; all panels share one x scale. Hover a bar in the HTML page for the tuned and "
                   "default times and configs.%s\n",
            ws.nd > l.n ? " (Only the first panels are drawn: too many devices; the table has them all.)" : "");
    rep_figure_end(p, "speedup", b);
    speedup_md(p, &ws, order);
    free(order);
}

/* ---- devices: the cross-device view ----------------------------------------- */

typedef struct cell {
    const char *kernel, *shape, *label;
} cell;

static int by_kernel_shape(const void *a, const void *b)
{
    const cell *x = a, *y = b;
    int c = strcmp(x->kernel, y->kernel);
    return c ? c : rep_natural_cmp(x->shape, y->shape);
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The rows (distinct kernel x shape, sorted) and each winner's row; flags
 * the cells under half of their row's median % (rows of 3+ known %). */
static cell *cells_of(winners *ws)
{
    cell *c = malloc((size_t)ws->n * sizeof *c);
    double *pct = malloc((size_t)ws->nd * sizeof *pct);
    if (!c || !pct) {
        free(c);
        free(pct);
        return NULL;
    }
    int n = 0;
    for (int i = 0; i < ws->n; i++) {
        int j = 0;
        while (j < n && (strcmp(c[j].kernel, ws->w[i].kernel) || strcmp(c[j].shape, ws->w[i].shape)))
            j++;
        if (j == n)
            c[n++] = (cell){ws->w[i].kernel, ws->w[i].shape, ws->w[i].label};
    }
    qsort(c, (size_t)n, sizeof *c, by_kernel_shape);
    ws->ncells = n;
    for (int i = 0; i < ws->n; i++)
        for (int j = 0; j < n; j++)
            if (!strcmp(c[j].kernel, ws->w[i].kernel) && !strcmp(c[j].shape, ws->w[i].shape))
                ws->w[i].cell = j;
    for (int j = 0; j < n; j++) {
        int m = 0;
        for (int i = 0; i < ws->n; i++)
            if (ws->w[i].cell == j && ws->w[i].pct > 0)
                pct[m++] = ws->w[i].pct;
        if (m < 3)
            continue;
        qsort(pct, (size_t)m, sizeof *pct, by_double);
        double med = m % 2 ? pct[m / 2] : (pct[m / 2 - 1] + pct[m / 2]) / 2;
        for (int i = 0; i < ws->n; i++)
            if (ws->w[i].cell == j && ws->w[i].pct > 0 && ws->w[i].pct < 0.5 * med)
                ws->w[i].flagged = 1;
    }
    free(pct);
    return c;
}

static void devices_md(rep *p, const winners *ws, const cell *c)
{
    fprintf(p->md, "| kernel | shape |");
    for (int d = 0; d < ws->nd; d++)
        fprintf(p->md, " %s |", ws->d[d].label);
    fprintf(p->md, "\n|---|---|");
    for (int d = 0; d < ws->nd; d++)
        fprintf(p->md, "---:|");
    fprintf(p->md, "\n");
    for (int j = 0; j < ws->ncells; j++) {
        fprintf(p->md, "| %s | %s |", c[j].kernel, c[j].shape);
        for (int d = 0; d < ws->nd; d++) {
            const wrow *w = NULL;
            for (int i = 0; i < ws->n && !w; i++)
                if (ws->w[i].dev == d && ws->w[i].cell == j)
                    w = &ws->w[i];
            char t[32] = "-", pc[48] = "";
            if (w) {
                time_text(w->tuned_ns, t, sizeof t);
                if (w->pct > 0)
                    snprintf(pc, sizeof pc, w->pct < 10 ? ", %.1f%% of %s%s" : ", %.0f%% of %s%s", w->pct,
                             w->read_roof ? "read" : "copy", w->flagged ? " (**behind**)" : "");
            }
            fprintf(p->md, " %s%s |", t, pc);
        }
        fprintf(p->md, "\n");
    }
}

static void devices(rep *p, winners *wsp)
{
    fprintf(p->md, "\n## Across devices: the best time and its %% of the device's bandwidth\n\n");
    cell *c = cells_of(wsp);
    const winners ws = *wsp;
    FILE *f = c ? rep_open(p, "devices.dat", NULL) : NULL;
    if (!f) {
        free(c);
        rep_skip(p, "devices (cannot write devices.dat)");
        return;
    }
    int label_chars = 0, flagged = 0;
    fprintf(f, "# x(device) y(row) pct(clipped to 100) text flagged tooltip\n");
    for (int i = 0; i < ws.n; i++) {
        const wrow *w = &ws.w[i];
        const wdev *d = &ws.d[w->dev];
        char t[32], text[64], tip[2048], raw[2048], roof[96] = "no bandwidth measured";
        time_text(w->tuned_ns, t, sizeof t);
        if (w->pct > 0) {
            snprintf(text, sizeof text, w->pct < 10 ? "%s  %.1f%%" : "%s  %.0f%%", t, w->pct);
            snprintf(roof, sizeof roof, "%.2f GB/s = %.0f%% of its %s bandwidth %.2f GB/s", w->bytes / w->tuned_ns,
                     w->pct, w->read_roof ? "read" : "copy", w->read_roof ? d->read_gbps : d->copy_gbps);
        } else {
            snprintf(text, sizeof text, "%s", t);
        }
        snprintf(raw, sizeof raw, "%s %s on %s\\nbest %s, %s%s\\nconfig: %s", w->kernel, w->shape, d->label, t, roof,
                 w->flagged ? "\\nunder half of the median % of the devices with this kernel x shape" : "", w->cfg);
        rep_gp_title(tip, sizeof tip, raw);
        /* colour: the % clipped to 100; -1 where it is unknown (no bytes, no bandwidth) */
        fprintf(f, "%d %d %.3f \"%s\" %d \"%s\"\n", w->dev, ws.ncells - 1 - w->cell,
                w->pct > 100 ? 100 : w->pct > 0 ? w->pct : -1, text, w->flagged, tip);
        flagged += w->flagged;
    }
    for (int j = 0; j < ws.ncells; j++) {
        size_t l = strlen(c[j].kernel) + 1 + strlen(c[j].label);
        label_chars = (int)l > label_chars ? (int)l : label_chars;
    }
    fclose(f);

    int label_px = rep_text_px((size_t)label_chars), CW = 128, row_px = 20, top = 112, foot = 16;
    int W = label_px + ws.nd * CW + 130, plot_h = ws.ncells * row_px;
    if (W < 760) { /* room for the title */
        CW += (760 - W) / ws.nd;
        W = label_px + ws.nd * CW + 130;
    }
    int legend_y = top + plot_h + foot, H = legend_y + 20 + 14 * ws.legend_lines + 20;
    FILE *b = rep_figure_begin(p, "devices", W, H);
    if (!b) {
        free(c);
        return;
    }
    /* the title as labels at the top: a title would sit on the device names */
    static const char *const title[] = {
        "Best time of each kernel x shape on each device, coloured by its % of that device bandwidth",
        "(the roof: read bandwidth for gemv, attention and argmax; copy bandwidth for the rest)",
        "red outline: under half of the median % of its row (rows of three devices or more)"};
    for (int i = 0; i < 3; i++)
        fprintf(b, "set label %d '%s' at screen 0.5, screen %.5f center font ',%d'\n", 800 + i, title[i],
                1 - (double)(14 + 15 * i) / H, i ? 9 : 10);
    fprintf(b, "set lmargin at screen %.5f\nset rmargin at screen %.5f\nset tmargin at screen %.5f\n"
               "set bmargin at screen %.5f\n",
            (double)label_px / W, (double)(label_px + ws.nd * CW) / W, 1 - (double)top / H,
            1 - (double)(top + plot_h) / H);
    fprintf(b, "set xrange [-0.5:%g]\nset x2range [-0.5:%g]\nset yrange [-0.5:%g]\nunset xtics\n"
               "set x2tics scale 0 font ',9' (",
            ws.nd - 0.5, ws.nd - 0.5, ws.ncells - 0.5);
    for (int d = 0; d < ws.nd; d++) {
        /* backend, then the name in two lines that fit the column */
        char name[200], l1[64], l2[64];
        size_t fit = (size_t)(CW - 8) / 7;
        snprintf(name, sizeof name, "%s", ws.d[d].label + strlen(ws.d[d].backend) + 2);
        size_t cut = strlen(name) <= fit ? strlen(name) : fit;
        for (size_t i = cut; i > fit / 2 && cut < strlen(name); i--)
            if (name[i] == ' ' || name[i] == '-') {
                cut = i + 1;
                break;
            }
        snprintf(l1, sizeof l1, "%.*s", (int)cut, name);
        rep_fit(name + cut, fit, l2, sizeof l2);
        fprintf(b, "%s\"%s\\n%s\\n%s\" %d", d ? ", " : "", ws.d[d].backend, l1, l2, d);
    }
    fprintf(b, ")\nset ytics scale 0 font ',9' (");
    for (int j = 0; j < ws.ncells; j++)
        fprintf(b, "%s'%s %s' %d", j ? ", " : "", c[j].kernel, c[j].label, ws.ncells - 1 - j);
    fprintf(b, ")\nset border 0\nset cbrange [0:100]\nset cblabel '%% of the device bandwidth (100: at the roof)'\n"
               "set palette defined (0 '#d73027', 40 '#fdae61', 70 '#fee08b', 100 '#66bd63')\n"
               "set colorbox user origin screen %.5f, screen %.5f size screen %.5f, screen %.5f\n",
            (double)(label_px + ws.nd * CW + 16) / W, 1 - (double)(top + plot_h) / H, 14.0 / W,
            (double)(plot_h < 240 ? plot_h : 240) / H);
    rep_legend(b, ws.legend, H, legend_y);
    fprintf(b,
            "plot 'devices.dat' using 1:($3 >= 0 ? $2 : NaN):($1-0.48):($1+0.48):($2-0.45):($2+0.45):3 with boxxyerror"
            " fs solid 1 noborder lc palette notitle, \\\n"
            "     '' using 1:($3 < 0 ? $2 : NaN):($1-0.48):($1+0.48):($2-0.45):($2+0.45) with boxxyerror"
            " fs solid 1 noborder lc rgb '#dddddd' notitle, \\\n"
            "     '' using 1:($5 > 0 ? $2 : NaN):($1-0.46):($1+0.46):($2-0.42):($2+0.42) with boxxyerror"
            " fs empty lc rgb '#c00000' lw 2.5 notitle, \\\n"
            "     '' using 1:2:4 with labels font ',8' notitle, \\\n"
            "     '' using 1:2:6 with labels hypertext point pt 5 ps 3 lc rgb '#ff000000' notitle\n");
    fprintf(p->md, "Each cell: the winner's time on that device and the bandwidth it reaches as a %% of the device's "
                   "own (read bandwidth for gemv_int4, attention_paged and argmax where measured, else copy), "
                   "coloured by that %%; over 100%% means the data stayed in cache; grey: no bandwidth known. In a row of "
                   "three or more devices, a cell outlined in red reaches under half of the row's median %%: that "
                   "device falls behind its peers there.%s\n",
            flagged ? "" : " None is outlined here.");
    rep_figure_end(p, "devices", b);
    devices_md(p, &ws, c);
    free(c);
}

void fig_winners(rep *p)
{
    winners ws;
    int rc = load(p, &ws);
    if (rc || !ws.n) {
        fprintf(p->md, "\n## Tuned winners\n\n%s%s\n", rc ? "The winners could not be read: " : "No winners: run `kiln tune`.",
                rc ? sqlite3_errmsg(p->h) : "");
        rep_skip(p, rc ? "speedup and devices (winners unreadable)" : "speedup and devices (no winners)");
    } else {
        speedup(p, &ws);
        devices(p, &ws);
    }
    unload(&ws);
}
