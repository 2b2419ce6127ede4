/* src/cmd_report.c - `kiln report`: gnuplot figures (PNG + SVG), one
 * self-contained HTML page and a markdown summary from a database.
 *
 *   kiln report [--db PATH] [-o DIR]      (DIR default: kiln-report) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/report.h"
#include "src/args.h"
#include "src/commands.h"

int cmd_report(int argc, char **argv)
{
    const char *db_path = NULL, *dir = "kiln-report";
    const kiln_opt opts[] = {
        {"--db", NULL, KILN_OPT_STR, &db_path, .arg = "PATH",
         .help = "database, read-only (default $KILN_DB or ~/.local/share/kiln/kiln.db)"},
        {"--output", "-o", KILN_OPT_STR, &dir, .arg = "DIR", .help = "output directory (default kiln-report)"},
        {0},
    };
    const kiln_opt *tables[] = {opts, NULL};
    int prc = kiln_args_parse(
        "kiln report",
        "usage: kiln report [--db PATH] [-o DIR]\n"
        "  figures (convergence, landscape, bandwidth, speedup, history) as PNG and SVG,\n"
        "  DIR/index.html (figures inline) and DIR/summary.md; needs gnuplot (apt-get install gnuplot-nox)\n"
        "exit: 0 written, 1 failed, 2 usage, 3 database missing or gnuplot unavailable\n",
        tables, argc, argv, 1, NULL, 0, NULL);
    if (prc)
        return prc == KILN_ARGS_HELP ? KILN_EXIT_OK : prc;
    kiln_err e = {0};
    kiln_db *db;
    if (kiln_db_open_readonly(&db, db_path, &e)) {
        fprintf(stderr, "kiln report: %s\n", e.msg);
        return kiln_exit_code(e.code);
    }
    kiln_report_result r;
    int rc = kiln_report(db, dir, &r, &e);
    kiln_db_close(db);
    if (rc) {
        fprintf(stderr, "kiln report: %s\n", e.msg);
        return rc == KILN_E_UNAVAILABLE ? KILN_EXIT_UNAVAILABLE : kiln_exit_code(rc);
    }
    printf("report: %d figure(s) in %s:", r.n_figures, dir);
    for (int i = 0; i < r.n_figures; i++)
        printf(" %s", r.figures[i]);
    printf("\n  %s\n  %s\n", r.html, r.markdown);
    if (r.skipped[0])
        printf("  not drawn (no data): %s\n", r.skipped);
    return KILN_EXIT_OK;
}
