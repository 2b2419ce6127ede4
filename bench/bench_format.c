/* bench/bench_format.c - see bench_format.h. */
#include "bench/bench_format.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int kiln_bench_fmt_parse(const char *s, int *fmt)
{
    static const char *const names[] = {"table", "md", "csv", "json"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *fmt = i;
            return 0;
        }
    if (!strcmp(s, "markdown")) {
        *fmt = KILN_FMT_MD;
        return 0;
    }
    return KILN_E_INVALID;
}

void kiln_bench_fmt_value(double v, char *buf, size_t n)
{
    double a = fabs(v);
    if (a >= 100 || v == 0)
        snprintf(buf, n, "%.1f", v);
    else if (a >= 1)
        snprintf(buf, n, "%.2f", v);
    else
        snprintf(buf, n, "%.4g", v);
}

static int is_mean(const kiln_bench_result *r)
{
    size_t n = strlen(r->metric);
    return n > 5 && !strcmp(r->metric + n - 5, ":mean");
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void print_long(FILE *f, const kiln_bench_set *s, int fmt)
{
    if (fmt == KILN_FMT_CSV) {
        fprintf(f, "run,device,fingerprint,subject,metric,unit,value,spread,n,higher_is_better,git_commit,created\n");
        for (int i = 0; i < s->n; i++) {
            const kiln_bench_result *r = &s->r[i];
            fprintf(f, "%lld,", (long long)r->run_id);
            csv_field(f, r->device);
            fputc(',', f);
            csv_field(f, r->fingerprint);
            fputc(',', f);
            csv_field(f, r->subject);
            fprintf(f, ",%s,%s,%.6g,%.6g,%d,%d,%s,%s\n", r->metric, r->unit, r->value, r->spread, r->n,
                    r->higher_is_better, r->git_commit, r->created);
        }
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < s->n; i++) {
        const kiln_bench_result *r = &s->r[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "run", (double)r->run_id);
        cJSON_AddStringToObject(o, "device", r->device);
        cJSON_AddStringToObject(o, "fingerprint", r->fingerprint);
        cJSON_AddStringToObject(o, "subject", r->subject);
        cJSON_AddStringToObject(o, "metric", r->metric);
        cJSON_AddStringToObject(o, "unit", r->unit);
        cJSON_AddNumberToObject(o, "value", r->value);
        cJSON_AddNumberToObject(o, "spread", r->spread);
        cJSON_AddNumberToObject(o, "n", r->n);
        cJSON_AddNumberToObject(o, "higher_is_better", r->higher_is_better);
        cJSON_AddStringToObject(o, "git_commit", r->git_commit);
        cJSON_AddStringToObject(o, "created", r->created);
        cJSON_AddItemToArray(arr, o);
    }
    char *t = cJSON_Print(arr);
    if (t)
        fprintf(f, "%s\n", t);
    free(t);
    cJSON_Delete(arr);
}

/* A column header: the bandwidth ratios under the names the tables use
 * elsewhere ("% of copy", "% of read"), every other metric as "name [unit]". */
static void header(const char *metric, const char *unit, char *h, size_t n)
{
    if (!strcmp(metric, "tuned_bw_pct"))
        snprintf(h, n, "%% of copy");
    else if (!strcmp(metric, "tuned_read_pct"))
        snprintf(h, n, "%% of read");
    else
        snprintf(h, n, "%s [%s]", metric, unit);
}

#define MAXC 24
#define MAXR 256

void kiln_bench_print(FILE *f, const kiln_bench_set *s, int fmt)
{
    if (fmt == KILN_FMT_CSV || fmt == KILN_FMT_JSON) {
        print_long(f, s, fmt);
        return;
    }
    if (!s->n) {
        fprintf(f, fmt == KILN_FMT_MD ? "_no results_\n" : "(no results)\n");
        return;
    }
    char *done = calloc((size_t)s->n, 1);
    if (!done)
        return;
    for (int i = 0; i < s->n; i++) {
        if (done[i])
            continue;
        /* one block: this device (and run) */
        const kiln_bench_result *first = &s->r[i];
        const char *metrics[MAXC], *units[MAXC], *subjects[MAXR];
        int nm = 0, ns = 0;
        for (int j = i; j < s->n; j++) {
            const kiln_bench_result *r = &s->r[j];
            if (strcmp(r->fingerprint, first->fingerprint) || r->run_id != first->run_id || is_mean(r))
                continue;
            int m = 0, k = 0;
            while (m < nm && strcmp(metrics[m], r->metric))
                m++;
            if (m == nm && nm < MAXC) {
                units[nm] = r->unit;
                metrics[nm++] = r->metric;
            }
            while (k < ns && strcmp(subjects[k], r->subject))
                k++;
            if (k == ns && ns < MAXR)
                subjects[ns++] = r->subject;
        }
        if (fmt == KILN_FMT_MD)
            fprintf(f, "\n**%s** (run %lld, commit %s)\n\n| subject |", first->device, (long long)first->run_id,
                    first->git_commit[0] ? first->git_commit : "?");
        else
            fprintf(f, "\n%s  (run %lld, commit %s)\n  %-40s", first->device, (long long)first->run_id,
                    first->git_commit[0] ? first->git_commit : "?", "subject");
        for (int m = 0; m < nm; m++) {
            char h[96];
            header(metrics[m], units[m], h, sizeof h);
            fprintf(f, fmt == KILN_FMT_MD ? " %s |" : " %20s", h);
        }
        fputc('\n', f);
        if (fmt == KILN_FMT_MD) {
            fputs("|---|", f);
            for (int m = 0; m < nm; m++)
                fputs("---:|", f);
            fputc('\n', f);
        }
        for (int k = 0; k < ns; k++) {
            fprintf(f, fmt == KILN_FMT_MD ? "| %s |" : "  %-40s", subjects[k]);
            for (int m = 0; m < nm; m++) {
                char cell[64] = "-";
                for (int j = i; j < s->n; j++) {
                    const kiln_bench_result *r = &s->r[j];
                    if (strcmp(r->fingerprint, first->fingerprint) || r->run_id != first->run_id)
                        continue;
                    if (is_mean(r)) {
                        done[j] = 1;
                        continue;
                    }
                    if (strcmp(r->subject, subjects[k]) || strcmp(r->metric, metrics[m]))
                        continue;
                    done[j] = 1;
                    char v[32];
                    kiln_bench_fmt_value(r->value, v, sizeof v);
                    if (r->spread > 0)
                        snprintf(cell, sizeof cell, "%s ±%.1f%%", v, 100 * r->spread);
                    else
                        snprintf(cell, sizeof cell, "%s", v);
                }
                fprintf(f, fmt == KILN_FMT_MD ? " %s |" : " %20s", cell);
            }
            fputc('\n', f);
        }
    }
    free(done);
}
