/* bench/bench_compare.c - see bench_compare.h. */
#include "bench/bench_compare.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_format.h"

void kiln_compare_defaults(kiln_compare_opts *o)
{
    o->threshold = 0.05;
    o->k = 3;
    o->fmt = KILN_FMT_TABLE;
}

static const char *const verdict_names[] = {"unchanged", "faster", "SLOWER", "new", "missing"};

static int gated(const kiln_bench_result *r)
{
    return r->higher_is_better == KILN_BENCH_LOWER || r->higher_is_better == KILN_BENCH_HIGHER;
}

static const kiln_bench_result *find(const kiln_bench_set *s, const kiln_bench_result *r)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->r[i].fingerprint, r->fingerprint) && !strcmp(s->r[i].subject, r->subject) &&
            !strcmp(s->r[i].metric, r->metric))
            return &s->r[i];
    return NULL;
}

static void cell(const kiln_bench_result *r, char *buf, size_t n)
{
    if (!r) {
        snprintf(buf, n, "-");
        return;
    }
    char v[32];
    kiln_bench_fmt_value(r->value, v, sizeof v);
    snprintf(buf, n, "%s ±%.1f%%", v, 100 * r->spread);
}

void kiln_bench_compare(const kiln_bench_set *cur, const kiln_bench_set *base, const kiln_compare_opts *o, FILE *out,
                        kiln_compare_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    int json = o->fmt == KILN_FMT_JSON, md = o->fmt == KILN_FMT_MD;
    cJSON *root = json ? cJSON_CreateObject() : NULL, *rows = json ? cJSON_AddArrayToObject(root, "rows") : NULL;
    char reasons[8192] = "";
    size_t rlen = 0;
    if (md)
        fprintf(out, "| device | subject | metric | baseline | current | change | allowed | verdict |\n"
                     "|---|---|---|---:|---:|---:|---:|---|\n");
    else if (!json)
        fprintf(out, "%-28s %-36s %-16s %18s %18s %9s %8s  %s\n", "device", "subject", "metric", "baseline", "current",
                "change", "allowed", "verdict");
    /* current rows (and new ones), then rows only the baseline has */
    for (int pass = 0; pass < 2; pass++) {
        const kiln_bench_set *a = pass ? base : cur, *b = pass ? cur : base;
        for (int i = 0; i < a->n; i++) {
            const kiln_bench_result *r = &a->r[i];
            if (!gated(r))
                continue;
            const kiln_bench_result *other = find(b, r);
            if (pass && other)
                continue;
            const kiln_bench_result *c = pass ? NULL : r, *bl = pass ? r : other;
            int v;
            double slow = 0, tol = 0, noise = 0;
            if (!bl)
                v = KILN_CMP_NEW;
            else if (!c)
                v = KILN_CMP_MISSING;
            else {
                noise = sqrt(c->spread * c->spread + bl->spread * bl->spread);
                tol = fmax(o->threshold, o->k * noise);
                if (c->value <= 0 || bl->value <= 0)
                    slow = 0;
                else
                    slow = r->higher_is_better == KILN_BENCH_HIGHER ? bl->value / c->value - 1 : c->value / bl->value - 1;
                v = slow > tol ? KILN_CMP_SLOWER : slow < -tol ? KILN_CMP_FASTER : KILN_CMP_UNCHANGED;
            }
            sum->rows++;
            sum->slower += v == KILN_CMP_SLOWER;
            sum->faster += v == KILN_CMP_FASTER;
            sum->unchanged += v == KILN_CMP_UNCHANGED;
            sum->added += v == KILN_CMP_NEW;
            sum->missing += v == KILN_CMP_MISSING;
            double change = c && bl && bl->value > 0 ? c->value / bl->value - 1 : 0;
            char cb[48], cc[48];
            cell(bl, cb, sizeof cb);
            cell(c, cc, sizeof cc);
            if (v == KILN_CMP_SLOWER && rlen < sizeof reasons - 600) {
                char bv[32], cv[32];
                kiln_bench_fmt_value(bl->value, bv, sizeof bv);
                kiln_bench_fmt_value(c->value, cv, sizeof cv);
                rlen += (size_t)snprintf(
                    reasons + rlen, sizeof reasons - rlen,
                    "  regression: %s: %s %s %s: %s -> %s %s (%s %+.1f%%, %.1f%% slower), beyond the allowed %.1f%%"
                    " = max(threshold %.1f%%, %g x combined spread %.1f%%)\n",
                    c->device, c->subject, c->metric, r->higher_is_better ? "(higher is better)" : "(lower is better)",
                    bv, cv, c->unit, r->higher_is_better ? "dropped" : "rose", 100 * change, 100 * slow, 100 * tol,
                    100 * o->threshold, o->k, 100 * noise);
            }
            if (json) {
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "device", r->device);
                cJSON_AddStringToObject(x, "subject", r->subject);
                cJSON_AddStringToObject(x, "metric", r->metric);
                cJSON_AddStringToObject(x, "unit", r->unit);
                if (bl) {
                    cJSON_AddNumberToObject(x, "baseline", bl->value);
                    cJSON_AddNumberToObject(x, "baseline_spread", bl->spread);
                }
                if (c) {
                    cJSON_AddNumberToObject(x, "current", c->value);
                    cJSON_AddNumberToObject(x, "current_spread", c->spread);
                }
                cJSON_AddNumberToObject(x, "change", change);
                cJSON_AddNumberToObject(x, "slowdown", slow);
                cJSON_AddNumberToObject(x, "allowed", tol);
                cJSON_AddStringToObject(x, "verdict", v == KILN_CMP_SLOWER ? "slower" : verdict_names[v]);
                cJSON_AddItemToArray(rows, x);
            } else if (md) {
                fprintf(out, "| %s | %s | %s | %s | %s | %+.1f%% | %.1f%% | %s |\n", r->device, r->subject, r->metric, cb,
                        cc, 100 * change, 100 * tol, verdict_names[v]);
            } else {
                fprintf(out, "%-28.28s %-36.36s %-16.16s %18s %18s %+8.1f%% %7.1f%%  %s\n", r->device, r->subject,
                        r->metric, cb, cc, 100 * change, 100 * tol, verdict_names[v]);
            }
        }
    }
    if (json) {
        cJSON_AddNumberToObject(root, "slower", sum->slower);
        cJSON_AddNumberToObject(root, "faster", sum->faster);
        cJSON_AddNumberToObject(root, "unchanged", sum->unchanged);
        cJSON_AddNumberToObject(root, "new", sum->added);
        cJSON_AddNumberToObject(root, "missing", sum->missing);
        cJSON_AddStringToObject(root, "reasons", reasons);
        char *t = cJSON_Print(root);
        if (t)
            fprintf(out, "%s\n", t);
        free(t);
        cJSON_Delete(root);
        return;
    }
    fprintf(out, "\n%d row(s): %d slower, %d faster, %d unchanged, %d new, %d missing\n", sum->rows, sum->slower,
            sum->faster, sum->unchanged, sum->added, sum->missing);
    if (sum->slower)
        fprintf(out, "%s", reasons);
}
