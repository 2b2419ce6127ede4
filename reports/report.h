/* reports/report.h - `kiln report`: figures (gnuplot, PNG + SVG), one
 * self-contained HTML page (SVG inline) and a markdown summary from a tuning
 * database.
 *
 * Figures, each only when the database has data for it (page order):
 *   speedup      tuned/default speedup of every winner: one panel and one
 *                colour per device, horizontal bars sorted, one x scale;
 *                hover (HTML): tuned and default time and config
 *   devices      the cross-device view: per kernel x shape and device the
 *                winner's time and its % of that device's bandwidth (read
 *                for gemv-like kernels where measured, else copy), cells
 *                under half of their row's median outlined (3+ devices)
 *   convergence  best-so-far time (relative to the first valid trial) vs
 *                trial index, per session x kernel x shape (strategy named)
 *   landscape    the best time over the two most influential parameters of
 *                the kernel x shape with the most valid trials (influence:
 *                spread of the mean log-time between a parameter's values)
 *   bandwidth    achieved GB/s of default and tuned configs next to the
 *                device's copy and read bandwidth (latest kernel bench per device)
 *   history      gated bench metrics (kernel times, pp/tg tok/s, TTFT) over
 *                the bench runs, relative to each series' first run, with
 *                the commit on the x axis
 * Rows are labelled "kernel shape" with shape keys shortened, and a legend
 * (reports/shape_label.h). The generator writes data files and one gnuplot
 * script into the output directory and runs `gnuplot` there (found on PATH,
 * or $KILN_GNUPLOT); summary.md names each figure as a markdown image where
 * index.html puts its SVG inline. */
#ifndef KILN_REPORTS_REPORT_H
#define KILN_REPORTS_REPORT_H

#include "db/db.h"

#define KILN_REPORT_MAX_FIGURES 8

typedef struct kiln_report_result {
    int n_figures;           /* figures drawn (each as .png and .svg) */
    char figures[KILN_REPORT_MAX_FIGURES][32]; /* their base names */
    char skipped[512];       /* which figures had no data */
    char html[1024], markdown[1024];
} kiln_report_result;

/* KILN_E_UNAVAILABLE when gnuplot is missing (message says how to install). */
int kiln_report(kiln_db *db, const char *out_dir, kiln_report_result *r, kiln_err *e);

#endif
