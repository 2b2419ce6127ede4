/* reports/report_html.c - the HTML page of `kiln report`: the markdown
 * summary turned into HTML, each figure's SVG inline where the summary
 * names it (a markdown image line, "![name](name.svg)"), hover tooltips as
 * SVG <title>, and a load check a browser test can read.
 *
 * The page needs no file beside it and no network. The tooltips: gnuplot's
 * "hypertext" labels call functions of gnuplot_svg.js, which a page (or a
 * standalone .svg) does not have; rep_svg_tooltips rewrites each one into
 * the <title> child every browser shows on hover, in the .svg files too.
 * The load check: a few lines of script mark each <figure> whose SVG has
 * laid out with a size and drawn elements, and set data-figures and
 * data-figures-loaded on <body> (what tests/bench/report_browser.sh reads
 * from the DOM headless Chromium dumps). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/report_internal.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = NULL;
    long n = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    if (n >= 0 && !fseek(f, 0, SEEK_SET) && (b = malloc((size_t)n + 1))) {
        if (fread(b, 1, (size_t)n, f) == (size_t)n) {
            b[n] = 0;
        } else {
            free(b);
            b = NULL;
        }
    }
    fclose(f);
    return b;
}

/* gnuplot 5.4 writes a hypertext label as
 *   <g onmousemove="gnuplot_svg.showHypertext(evt,'TEXT')" onmouseout="gnuplot_svg.hideHypertext()"><title> </title>
 * with TEXT already XML-escaped (< and &) and line breaks as a literal \n. */
static const char ht_open[] = "<g onmousemove=\"gnuplot_svg.showHypertext(evt,'";
static const char ht_close[] = "')\" onmouseout=\"gnuplot_svg.hideHypertext()\"><title> </title>";

int rep_svg_tooltips(const char *path, kiln_err *e)
{
    char *svg = slurp(path);
    if (!svg)
        return kiln_fail(e, KILN_E_IO, "%s: cannot read: %s", path, strerror(errno));
    if (!strstr(svg, ht_open)) {
        free(svg);
        return 0;
    }
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(svg);
        return kiln_fail(e, KILN_E_IO, "%s: cannot write: %s", tmp, strerror(errno));
    }
    const char *s = svg, *a;
    while ((a = strstr(s, ht_open))) {
        const char *text = a + sizeof ht_open - 1, *b = strstr(text, ht_close);
        if (!b)
            break;
        fwrite(s, 1, (size_t)(a - s), f);
        fputs("<g class=\"tip\"><title>", f);
        for (const char *c = text; c < b; c++) {
            if (c[0] == '\\' && c[1] == 'n') {
                fputc('\n', f);
                c++;
            } else {
                fputc(*c, f);
            }
        }
        fputs("</title>", f);
        s = b + sizeof ht_close - 1;
    }
    fputs(s, f);
    free(svg);
    int bad = ferror(f);
    bad |= fclose(f);
    if (bad || rename(tmp, path)) {
        remove(tmp);
        return kiln_fail(e, KILN_E_IO, "%s: rewriting the tooltips failed", path);
    }
    return 0;
}

static void html_escape(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i]; i++) {
        if (s[i] == '<')
            fputs("&lt;", f);
        else if (s[i] == '>')
            fputs("&gt;", f);
        else if (s[i] == '&')
            fputs("&amp;", f);
        else
            fputc(s[i], f);
    }
}

/* Text with `code` and **bold** spans (what the summary uses). */
static void inline_text(FILE *f, const char *s)
{
    int code = 0, bold = 0;
    while (*s) {
        size_t n = strcspn(s, "`*");
        html_escape(f, s, n);
        s += n;
        if (*s == '`') {
            fputs(code ? "</code>" : "<code>", f);
            code = !code;
            s++;
        } else if (s[0] == '*' && s[1] == '*' && !code) {
            fputs(bold ? "</b>" : "<b>", f);
            bold = !bold;
            s += 2;
        } else if (*s) {
            fputc(*s++, f);
        }
    }
    if (code)
        fputs("</code>", f);
    if (bold)
        fputs("</b>", f);
}

static void figure(FILE *out, const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.svg", dir, name);
    char *svg = slurp(path);
    const char *start = svg ? strstr(svg, "<svg") : NULL;
    fprintf(out, "<figure id=\"%s\">\n", name);
    if (start)
        fputs(start, out);
    else
        fprintf(out, "<p>(%s.svg missing)</p>", name);
    fprintf(out, "\n<figcaption><a href=\"%s.svg\">%s.svg</a>, <a href=\"%s.png\">%s.png</a></figcaption>\n</figure>\n",
            name, name, name, name);
    free(svg);
}

#define FOLD_ROWS 12 /* tables with more rows than this are folded (<details>) */

/* The summary's markdown as this generator writes it: "## " headings,
 * tables, "![name](name.svg)" figure lines, paragraphs. */
static void md_to_html(FILE *out, const char *dir, const char *md)
{
    int in_table = 0, row = 0;
    for (const char *line = md; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[8192];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
        line += len + (end ? 1 : 0);
        if (buf[0] == '|') {
            if (!in_table) {
                /* a long table (all winners) folds away under the figure it details */
                int rows = 0;
                for (const char *l = line - len - (end ? 1 : 0); *l == '|'; rows++) {
                    const char *e = strchr(l, '\n');
                    l = e ? e + 1 : l + strlen(l);
                }
                in_table = rows - 2 > FOLD_ROWS ? 2 : 1;
                if (in_table == 2)
                    fprintf(out, "<details><summary>table: %d rows</summary>\n", rows - 2);
                fputs("<table>\n", out);
                row = 0;
            }
            if (!strncmp(buf, "|---", 4))
                continue;
            fputs("<tr>", out);
            char *save = NULL;
            for (char *c = strtok_r(buf + 1, "|", &save); c; c = strtok_r(NULL, "|", &save)) {
                while (*c == ' ')
                    c++;
                size_t cl = strlen(c);
                while (cl && c[cl - 1] == ' ')
                    c[--cl] = 0;
                fputs(row ? "<td>" : "<th>", out);
                inline_text(out, c);
                fputs(row ? "</td>" : "</th>", out);
            }
            fputs("</tr>\n", out);
            row++;
            continue;
        }
        if (in_table) {
            fputs(in_table == 2 ? "</table></details>\n" : "</table>\n", out);
            in_table = 0;
        }
        char name[64];
        if (!strncmp(buf, "![", 2) && sscanf(buf, "![%63[^]]]", name) == 1) {
            figure(out, dir, name);
        } else if (!strncmp(buf, "## ", 3)) {
            fputs("<h2>", out);
            inline_text(out, buf + 3);
            fputs("</h2>\n", out);
        } else if (!strncmp(buf, "# ", 2)) {
            /* the page has its own title */
        } else if (!strncmp(buf, "    ", 4)) {
            fputs("<pre>", out);
            html_escape(out, buf + 4, sizeof buf);
            fputs("</pre>\n", out);
        } else if (buf[0]) {
            fputs("<p>", out);
            inline_text(out, buf);
            fputs("</p>\n", out);
        }
    }
    if (in_table)
        fputs(in_table == 2 ? "</table></details>\n" : "</table>\n", out);
}

static const char *const page_head =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Kiln report</title>\n"
    "<style>body{font-family:sans-serif;max-width:1700px;margin:auto;padding:1em}"
    "table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #ccc;padding:3px 8px}"
    "th{background:#eee}td{text-align:right}td:first-child{text-align:left}"
    "figure{margin:1em 0;overflow-x:auto}figcaption{font-size:80%;color:#666}summary{cursor:pointer;color:#444}"
    "pre{margin:0;font-size:85%}g.tip{cursor:help}</style>\n"
    "</head><body>\n<h1>Kiln report</h1>\n";

/* The load check (see the top of this file). */
static const char *const page_tail =
    "<script>\naddEventListener('load', function () {\n"
    "  var figs = document.querySelectorAll('figure'), ok = 0;\n"
    "  figs.forEach(function (f) {\n"
    "    var s = f.querySelector('svg'), b = s && s.getBoundingClientRect();\n"
    "    if (b && b.width > 100 && b.height > 100 && s.querySelectorAll('path, rect, polygon, use').length > 0) {\n"
    "      f.dataset.loaded = 'yes';\n      ok++;\n    }\n  });\n"
    "  document.body.dataset.figures = figs.length;\n  document.body.dataset.figuresLoaded = ok;\n});\n"
    "</script>\n</body></html>\n";

int rep_html(const char *dir, kiln_report_result *r, kiln_err *e)
{
    snprintf(r->html, sizeof r->html, "%s/index.html", dir);
    char *md = slurp(r->markdown);
    if (!md)
        return kiln_fail(e, KILN_E_IO, "%s: cannot read: %s", r->markdown, strerror(errno));
    FILE *h = fopen(r->html, "w");
    if (!h) {
        free(md);
        return kiln_fail(e, KILN_E_IO, "%s: cannot write: %s", r->html, strerror(errno));
    }
    fputs(page_head, h);
    md_to_html(h, dir, md);
    free(md);
    fputs(page_tail, h);
    int bad = ferror(h);
    bad |= fclose(h);
    if (bad)
        return kiln_fail(e, KILN_E_IO, "%s: write failed", r->html);
    return 0;
}
