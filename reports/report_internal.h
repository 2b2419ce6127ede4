/* reports/report_internal.h - what the files of `kiln report` share: the
 * generator's state, the helpers that write gnuplot scripts and data files,
 * and one function per figure. Every figure reads the database itself,
 * writes <name>.dat and <name>.gp into the output directory, registers the
 * figure (report.gp loads each body once per terminal: SVG, then PNG) and
 * adds its section to the markdown summary; a figure without data says so
 * through rep_skip and draws nothing. */
#ifndef KILN_REPORTS_REPORT_INTERNAL_H
#define KILN_REPORTS_REPORT_INTERNAL_H

#include <sqlite3.h>
#include <stdio.h>

#include "reports/report.h"

typedef struct rep {
    kiln_db *db;
    sqlite3 *h;
    const char *dir;
    FILE *gp, *md; /* the gnuplot script, the markdown summary */
    kiln_report_result *r;
    char skipped[512];
} rep;

/* Column i as text ("" for NULL). */
const char *rep_col(sqlite3_stmt *st, int i);
/* DIR/name opened for writing; NULL (and e set when given) on failure. */
FILE *rep_open(const rep *p, const char *name, kiln_err *e);
/* src made safe inside gnuplot single quotes (and data-file double quotes). */
void rep_gp_title(char *dst, size_t n, const char *src);
/* Starts figure `name` of w x h pixels: returns its body script (name.gp) to
 * write, NULL when it cannot be created. rep_figure_end closes the body and
 * registers the figure. */
FILE *rep_figure_begin(rep *p, const char *name, int w, int h);
void rep_figure_end(rep *p, const char *name, FILE *body);
/* A 960 x 540 figure whose whole body is one string. */
void rep_figure(rep *p, const char *name, const char *body);
void rep_skip(rep *p, const char *what);

/* report_plot.c: layout for figures of labelled rows, one panel per device. */
const char *rep_colour(int i);       /* the colour of device i: "#4e79a7", ... */
int rep_text_px(size_t chars);       /* pixels a 9-point label of that many characters needs */
void rep_fit(const char *src, size_t max, char *out, size_t n); /* cut to max chars, ".." marking a cut */
int rep_natural_cmp(const char *a, const char *b);              /* m576 before m1536 */
int rep_legend_lines(const char *legend);
/* The shape legend (kiln_shape_labels) as gnuplot labels from pixel row y0
 * of an H-pixel figure down, 14 px a line. */
void rep_legend(FILE *f, const char *legend, int H, int y0);

#define REP_MAX_PANELS 48 /* devices drawn as panels; more are left out (and said so) */

/* A grid of panels (up to 3 a row), panel i with rows[i] bars of 16 px
 * under a head of `head` px, labels of label_chars on its left, bar_px of
 * bars; the legend below. Pixels: w x h for the figure. */
typedef struct rep_panels {
    int n, cols, w, h, panel_w, label_px, top, head, foot, row_px, legend_y;
    int rows[REP_MAX_PANELS], y[REP_MAX_PANELS];
} rep_panels;
void rep_panels_layout(rep_panels *l, int n, const int *rows, int label_chars, int bar_px, int head, int legend_lines);
/* The margins and y range of panel i (rows from 0 at the bottom). */
void rep_panel_place(FILE *f, const rep_panels *l, int i);

/* Figures, in the order of the page. */
void fig_convergence(rep *p); /* fig_tuning.c */
void fig_landscape(rep *p);
void fig_winners(rep *p);     /* fig_winners.c: speedup (one panel per device), devices (cross-device) */
void fig_bandwidth(rep *p);   /* fig_bench.c */
void fig_history(rep *p);

/* report_html.c: rewrites gnuplot's hypertext (which needs gnuplot's own
 * javascript) in DIR/name.svg into SVG <title> elements, the tooltips every
 * browser shows on hover; then writes DIR/index.html. */
int rep_svg_tooltips(const char *svg_path, kiln_err *e);
int rep_html(const char *dir, kiln_report_result *r, kiln_err *e);

#endif
