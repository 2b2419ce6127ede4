/* reports/report.c - see report.h. The driver: the shared helpers of
 * report_internal.h, the devices table of the summary, each figure in page
 * order, gnuplot, then the tooltips and the HTML page. Data comes straight
 * from the database tables (trials, winners, bench_runs, bench_results);
 * nothing is cached. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reports/report_internal.h"

const char *rep_col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

FILE *rep_open(const rep *p, const char *name, kiln_err *e)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", p->dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        kiln_fail(e, KILN_E_IO, "%s: cannot write: %s", path, strerror(errno));
    return f;
}

void rep_gp_title(char *dst, size_t n, const char *src)
{
    size_t j = 0;
    for (; *src && j + 1 < n; src++)
        dst[j++] = *src == '\'' || *src == '"' ? '`' : *src == '\n' ? ' ' : *src;
    dst[j] = 0;
}

FILE *rep_figure_begin(rep *p, const char *name, int w, int h)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.gp", p->dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    /* the same text size in both terminals (pngcairo draws points at 96
     * dpi, svg pixels: hence fontscale): figures size their margins by it;
     * a fixed SVG keeps its size in the page (wide ones scroll) */
    fprintf(p->gp,
            "reset\nset terminal svg size %d,%d fixed noenhanced font 'Sans,10' fontscale 1.333 background rgb 'white'\n"
            "set output '%s.svg'\nload '%s.gp'\nunset output\n"
            "reset\nif (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
            "  set terminal pngcairo size %d,%d noenhanced font 'Sans,10' background rgb 'white'\n"
            "} else {\n  set terminal png size %d,%d noenhanced\n}\n"
            "set output '%s.png'\nload '%s.gp'\nunset output\n",
            w, h, name, name, w, h, w, h, name, name);
    return f;
}

void rep_figure_end(rep *p, const char *name, FILE *body)
{
    fclose(body);
    /* a markdown image line: the HTML page puts the SVG inline here */
    fprintf(p->md, "\n![%s](%s.svg)\n\n", name, name);
    if (p->r->n_figures < KILN_REPORT_MAX_FIGURES)
        snprintf(p->r->figures[p->r->n_figures++], sizeof p->r->figures[0], "%s", name);
}

void rep_figure(rep *p, const char *name, const char *body)
{
    FILE *f = rep_figure_begin(p, name, 960, 540);
    if (!f)
        return;
    fputs(body, f);
    rep_figure_end(p, name, f);
}

void rep_skip(rep *p, const char *what)
{
    size_t n = strlen(p->skipped);
    snprintf(p->skipped + n, sizeof p->skipped - n, "%s%s", n ? ", " : "", what);
}

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

static void summary_head(rep *p)
{
    fprintf(p->md, "# Kiln report\n\nDatabase: %s\n\n## Devices\n\n"
                   "| device | backend | copy GB/s | read GB/s | sessions | trials | winners | bench runs |\n"
                   "|---|---|---:|---:|---:|---:|---:|---:|\n",
            kiln_db_path(p->db));
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(p->h,
                       "SELECT d.name, d.backend, d.copy_gbps, d.read_gbps,"
                       " (SELECT COUNT(*) FROM sessions s WHERE s.device_id = d.id),"
                       " (SELECT COUNT(*) FROM trials t WHERE t.device_id = d.id),"
                       " (SELECT COUNT(*) FROM winners w WHERE w.device_id = d.id),"
                       " (SELECT COUNT(*) FROM bench_runs r WHERE r.device_id = d.id) FROM devices d ORDER BY d.id",
                       -1, &st, NULL);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char rd[32] = "-"; /* devices recorded before the read bandwidth was measured */
        if (sqlite3_column_double(st, 3) > 0)
            snprintf(rd, sizeof rd, "%.2f", sqlite3_column_double(st, 3));
        fprintf(p->md, "| %s | %s | %.2f | %s | %d | %d | %d | %d |\n", rep_col(st, 0), rep_col(st, 1),
                sqlite3_column_double(st, 2), rd, sqlite3_column_int(st, 4), sqlite3_column_int(st, 5),
                sqlite3_column_int(st, 6), sqlite3_column_int(st, 7));
        n++;
    }
    sqlite3_finalize(st);
    if (!n)
        fprintf(p->md, "| (empty database: run `kiln tune` and `kiln bench kernels`) | | | | | | | |\n");
}

int kiln_report(kiln_db *db, const char *dir, kiln_report_result *r, kiln_err *e)
{
    kiln_err local = {0}; /* rep_open reports through e only: keep its code when the caller passed none */
    if (!e)
        e = &local;
    memset(r, 0, sizeof *r);
    char gnuplot[1024];
    if (find_gnuplot(gnuplot, sizeof gnuplot))
        return kiln_fail(e, KILN_E_UNAVAILABLE, "gnuplot not found: apt-get install gnuplot-nox");
    if (mkdir(dir, 0755) && errno != EEXIST)
        return kiln_fail(e, KILN_E_IO, "%s: cannot create: %s", dir, strerror(errno));
    rep p = {.db = db, .h = kiln_db_handle(db), .dir = dir, .r = r};
    if (!(p.gp = rep_open(&p, "report.gp", e)))
        return e->code;
    if (!(p.md = rep_open(&p, "summary.md", e))) {
        fclose(p.gp);
        return e->code;
    }
    fprintf(p.gp, "# generated by kiln report; run `gnuplot report.gp` in this directory\n");
    summary_head(&p);
    fig_winners(&p);
    fig_convergence(&p);
    fig_landscape(&p);
    fig_bandwidth(&p);
    fig_history(&p);
    if (p.skipped[0])
        fprintf(p.md, "\nNot drawn (no data): %s\n", p.skipped);
    fprintf(p.md, "\nFigures: ");
    for (int i = 0; i < r->n_figures; i++)
        fprintf(p.md, "%s[%s](%s.svg) ([png](%s.png))", i ? ", " : "", r->figures[i], r->figures[i], r->figures[i]);
    fprintf(p.md, "%s\n", r->n_figures ? "" : "none");
    int bad = ferror(p.gp) | ferror(p.md);
    bad |= fclose(p.gp) | fclose(p.md);
    if (bad)
        return kiln_fail(e, KILN_E_IO, "%s: writing report.gp or summary.md failed", dir);
    snprintf(r->skipped, sizeof r->skipped, "%s", p.skipped);
    int rc = r->n_figures ? run_gnuplot(gnuplot, dir, e) : 0;
    for (int i = 0; !rc && i < r->n_figures; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s.svg", dir, r->figures[i]);
        rc = rep_svg_tooltips(path, e);
    }
    if (rc)
        return rc;
    snprintf(r->markdown, sizeof r->markdown, "%s/summary.md", dir);
    return rep_html(dir, r, e);
}
