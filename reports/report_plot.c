/* reports/report_plot.c - layout helpers for the figures that draw one
 * panel per device (speedup, bandwidth) and the labelled rows they share
 * with the cross-device view: colours per device, the pixel width of a
 * label, the panel grid, the shape legend. gnuplot places nothing by text
 * size for us, so figures are laid out in pixels here and handed to gnuplot
 * as screen fractions ("set lmargin at screen"). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "reports/report_internal.h"

const char *rep_colour(int i)
{
    static const char *const c[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                                    "#b07aa1", "#edc948", "#9c755f", "#ff9da7", "#bab0ac"};
    return c[i % (int)(sizeof c / sizeof c[0])];
}

int rep_text_px(size_t chars)
{
    /* 9-point Sans at 96 dpi averages about 7 px a character; digits and
     * 'm' run wider, and a cut label is worse than a little space */
    return (int)(7.6 * (double)chars) + 20;
}

void rep_fit(const char *src, size_t max, char *out, size_t n)
{
    if (strlen(src) <= max || max < 3)
        snprintf(out, n, "%s", src);
    else
        snprintf(out, n, "%.*s..", (int)(max - 2), src);
}

int rep_natural_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            char *ea, *eb;
            double x = strtod(a, &ea), y = strtod(b, &eb);
            if (x != y)
                return x < y ? -1 : 1;
            a = ea;
            b = eb;
            continue;
        }
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

int rep_legend_lines(const char *legend)
{
    int n = 0;
    for (const char *s = legend; (s = strchr(s, '\n')); s++)
        n++;
    return n;
}

void rep_legend(FILE *f, const char *legend, int H, int y0)
{
    char line[600], safe[600];
    int i = 0;
    fprintf(f, "set label 900 'Shapes: a label drops the fields every shape of its kernel has; ~N: the whole key below'"
               " at screen 0.008, screen %.5f font ',8' tc rgb '#444444'\n",
            1 - (double)y0 / H);
    for (const char *s = legend, *e; *s && (e = strchr(s, '\n')); s = e + 1, i++) {
        snprintf(line, sizeof line, "%.*s", (int)(e - s), s);
        rep_gp_title(safe, sizeof safe, line);
        fprintf(f, "set label %d '  %s' at screen 0.008, screen %.5f font ',8' tc rgb '#444444'\n", 901 + i, safe,
                1 - (double)(y0 + 14 * (i + 1)) / H);
    }
}

void rep_panels_layout(rep_panels *l, int n, const int *rows, int label_chars, int bar_px, int head, int legend_lines)
{
    memset(l, 0, sizeof *l);
    l->n = n < REP_MAX_PANELS ? n : REP_MAX_PANELS;
    l->cols = l->n <= 3 ? l->n : l->n == 4 ? 2 : 3;
    l->label_px = rep_text_px((size_t)label_chars);
    l->panel_w = l->label_px + bar_px;
    l->w = l->cols * l->panel_w;
    if (l->w < 760) { /* room for the figure's title */
        l->panel_w += (760 - l->w) / l->cols;
        l->w = l->cols * l->panel_w;
    }
    l->top = 40;
    l->head = head;
    l->foot = 54;
    l->row_px = 16;
    int y = l->top;
    for (int r = 0; r * l->cols < l->n; r++) {
        int most = 0;
        for (int i = r * l->cols; i < l->n && i < (r + 1) * l->cols; i++) {
            l->rows[i] = rows[i];
            l->y[i] = y;
            most = rows[i] > most ? rows[i] : most;
        }
        y += head + most * l->row_px + l->foot;
    }
    l->legend_y = y + 4;
    l->h = l->legend_y + 20 + 14 * legend_lines + 20;
}

void rep_panel_place(FILE *f, const rep_panels *l, int i)
{
    int x0 = (i % l->cols) * l->panel_w, y = l->y[i] + l->head;
    fprintf(f, "set lmargin at screen %.5f\nset rmargin at screen %.5f\n", (double)(x0 + l->label_px) / l->w,
            (double)(x0 + l->panel_w - 24) / l->w);
    fprintf(f, "set tmargin at screen %.5f\nset bmargin at screen %.5f\nset yrange [-0.6:%g]\n", 1 - (double)y / l->h,
            1 - (double)(y + l->rows[i] * l->row_px) / l->h, l->rows[i] - 0.4);
}
