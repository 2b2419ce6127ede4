/* reports/shape_label.c - see shape_label.h. */
#include "reports/shape_label.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXF 64 /* fields a key is split into; the rest stays in the last one */

/* A key split at its dots: f[i] point into buf (dots replaced by NULs). */
typedef struct fields {
    char *buf;
    const char *f[MAXF];
    int n;
    char gone[MAXF]; /* fields dropped as common to the kernel */
} fields;

static int split(const char *key, fields *out)
{
    memset(out, 0, sizeof *out);
    if (!(out->buf = strdup(key)))
        return -1;
    char *s = out->buf;
    out->f[out->n++] = s;
    for (; *s; s++)
        if (*s == '.' && out->n < MAXF) {
            *s = 0;
            out->f[out->n++] = s + 1;
        }
    return 0;
}

static int count(const fields *x, const char *f)
{
    int c = 0;
    for (int i = 0; i < x->n; i++)
        c += !strcmp(x->f[i], f);
    return c;
}

/* Marks c occurrences of f as gone (the last ones: leading fields, usually
 * the sizes, stay where they were). */
static void drop(fields *x, const char *f, int c)
{
    for (int i = x->n - 1; i >= 0 && c > 0; i--)
        if (!x->gone[i] && !strcmp(x->f[i], f)) {
            x->gone[i] = 1;
            c--;
        }
}

/* The fields not gone, joined by dots. */
static void join(const fields *x, int use_gone, char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < x->n; i++) {
        if (use_gone && x->gone[i])
            continue;
        int w = snprintf(out + len, n - len, "%s%s", len ? "." : "", x->f[i]);
        if (w < 0 || (size_t)w >= n - len) {
            out[n - 1] = 0;
            return;
        }
        len += (size_t)w;
    }
}

/* Appends a whole line or nothing. */
static void add_line(char *buf, size_t n, int *lines, const char *line)
{
    size_t len = strlen(buf), l = strlen(line);
    if (len + l + 1 < n) {
        memcpy(buf + len, line, l);
        buf[len + l] = '\n';
        buf[len + l + 1] = 0;
        ++*lines;
    }
}

/* Shortens every distinct key of one kernel (rows[0..nk) are their indices
 * into keys); marks count the "~N" footnotes over all kernels. */
static int label_kernel(const char *kernel, const char *const *keys, const int *rows, int nk, char (*out)[512],
                        char *common, size_t common_n, char *notes, size_t notes_n, int *note_lines, int *marks)
{
    fields *fs = calloc((size_t)nk, sizeof *fs);
    int rc = fs ? 0 : -1;
    for (int j = 0; !rc && j < nk; j++)
        rc = split(keys[rows[j]], &fs[j]);
    common[0] = 0;
    if (!rc && nk >= 2) {
        /* a field is common with the multiplicity every key has it */
        size_t clen = 0;
        for (int i = 0; i < fs[0].n; i++) {
            const char *f = fs[0].f[i];
            int seen = 0;
            for (int p = 0; p < i; p++)
                seen |= !strcmp(fs[0].f[p], f);
            if (seen)
                continue;
            int c = count(&fs[0], f);
            for (int j = 1; j < nk; j++) {
                int cj = count(&fs[j], f);
                c = cj < c ? cj : c;
            }
            for (int j = 0; j < nk; j++)
                drop(&fs[j], f, c);
            for (int k = 0; k < c; k++) {
                int w = snprintf(common + clen, common_n - clen, "%s%s", clen ? "." : "", f);
                clen = w > 0 && (size_t)w < common_n - clen ? clen + (size_t)w : clen;
            }
        }
        /* keep every key when dropping leaves one empty or two equal */
        int ok = 1;
        for (int j = 0; j < nk && ok; j++) {
            join(&fs[j], 1, out[j], sizeof out[j]);
            ok = out[j][0] != 0;
            for (int p = 0; p < j && ok; p++)
                ok = strcmp(out[p], out[j]) != 0;
        }
        if (!ok) {
            common[0] = 0;
            for (int j = 0; j < nk; j++)
                memset(fs[j].gone, 0, sizeof fs[j].gone);
        }
    }
    for (int j = 0; !rc && j < nk; j++) {
        join(&fs[j], 1, out[j], sizeof out[j]);
        if (strlen(out[j]) <= KILN_SHAPE_LABEL_MAX)
            continue;
        /* too long: leading fields that fit beside the mark */
        char mark[16], line[1024];
        snprintf(mark, sizeof mark, "~%d", ++*marks);
        size_t room = KILN_SHAPE_LABEL_MAX - strlen(mark), len = 0;
        char cut[KILN_SHAPE_LABEL_MAX + 1] = "";
        for (int i = 0; i < fs[j].n; i++) {
            if (fs[j].gone[i])
                continue;
            size_t need = strlen(fs[j].f[i]) + (len ? 1 : 0);
            if (len + need > room) {
                if (!len) /* not even one field fits: its first characters */
                    snprintf(cut, room + 1, "%s", fs[j].f[i]);
                break;
            }
            len += (size_t)snprintf(cut + len, sizeof cut - len, "%s%s", len ? "." : "", fs[j].f[i]);
        }
        snprintf(out[j], sizeof out[j], "%s%s", cut, mark);
        snprintf(line, sizeof line, "%s %s %s", mark, kernel, keys[rows[j]]);
        add_line(notes, notes_n, note_lines, line);
    }
    for (int j = 0; fs && j < nk; j++)
        free(fs[j].buf);
    free(fs);
    return rc;
}

int kiln_shape_labels(const char *const *kernels, const char *const *keys, int n, kiln_shape_label *labels,
                      char *legend, size_t legend_n)
{
    int *rows = malloc((size_t)(n > 0 ? n : 1) * sizeof *rows);
    char(*out)[512] = malloc((size_t)(n > 0 ? n : 1) * sizeof *out);
    char *notes = malloc(legend_n + 1);
    int lines = 0, note_lines = 0, marks = 0, rc = rows && out && notes ? 0 : -1;
    if (legend_n)
        legend[0] = 0;
    if (notes)
        notes[0] = 0;
    for (int i = 0; !rc && i < n; i++) {
        int first = 1;
        for (int p = 0; p < i && first; p++)
            first = strcmp(kernels[p], kernels[i]) != 0;
        if (!first)
            continue;
        /* the kernel's distinct keys, in order of appearance */
        int nk = 0;
        for (int j = i; j < n; j++) {
            if (strcmp(kernels[j], kernels[i]))
                continue;
            int dup = 0;
            for (int p = 0; p < nk && !dup; p++)
                dup = !strcmp(keys[rows[p]], keys[j]);
            if (!dup)
                rows[nk++] = j;
        }
        char common[512];
        rc = label_kernel(kernels[i], keys, rows, nk, out, common, sizeof common, notes, legend_n + 1, &note_lines,
                          &marks);
        for (int j = i; !rc && j < n; j++) {
            if (strcmp(kernels[j], kernels[i]))
                continue;
            for (int p = 0; p < nk; p++)
                if (!strcmp(keys[rows[p]], keys[j]))
                    snprintf(labels[j], sizeof labels[j], "%s", out[p]);
        }
        if (!rc && common[0] && legend_n) {
            char line[1024];
            snprintf(line, sizeof line, "%s, every shape: %s", kernels[i], common);
            add_line(legend, legend_n, &lines, line);
        }
    }
    if (!rc && legend_n) {
        /* the footnotes after the per-kernel lines, whole lines only */
        for (char *s = notes, *e; *s; s = e + 1) {
            e = strchr(s, '\n');
            *e = 0;
            add_line(legend, legend_n, &lines, s);
        }
    }
    free(rows);
    free(out);
    free(notes);
    return rc ? -1 : lines;
}
