/* engine/profile.c - see profile.h. */
#include "engine/profile.h"

#include <stdlib.h>
#include <string.h>

void kiln_profile_reset(kiln_profile *p)
{
    memset(p, 0, sizeof *p);
    p->phase = KILN_PHASE_NONE;
}

void kiln_profile_phase(kiln_profile *p, int phase, double now_s)
{
    if (!p)
        return;
    if (p->phase != KILN_PHASE_NONE)
        p->ph[p->phase].wall_s += now_s - p->since_s;
    p->phase = phase >= 0 && phase < KILN_PHASE_COUNT ? phase : KILN_PHASE_NONE;
    p->since_s = now_s;
    p->last_end_s = 0; /* what runs between phases is not between ops */
}

void kiln_profile_chunk(kiln_profile *p, int tokens, double now_s)
{
    if (!p || p->phase == KILN_PHASE_NONE)
        return;
    p->ph[p->phase].chunks++;
    p->ph[p->phase].tokens += tokens;
    p->last_end_s = now_s;
}

static kiln_profile_row *row(kiln_profile_phase_data *d, const char *label)
{
    for (int i = 0; i < d->n_rows; i++) /* the forward's labels are literals: pointers match first */
        if (d->rows[i].label == label || !strcmp(d->rows[i].label, label))
            return &d->rows[i];
    if (d->n_rows == KILN_PROFILE_MAX_LABELS) {
        kiln_profile_row *last = &d->rows[KILN_PROFILE_MAX_LABELS - 1];
        last->label = "(other labels)";
        return last;
    }
    kiln_profile_row *r = &d->rows[d->n_rows++];
    memset(r, 0, sizeof *r);
    r->label = label;
    return r;
}

void kiln_profile_op(kiln_profile *p, const char *label, double t0_s, double t1_s, double dev_ns, double bytes)
{
    if (!p || p->phase == KILN_PHASE_NONE)
        return;
    kiln_profile_phase_data *d = &p->ph[p->phase];
    if (p->last_end_s > 0 && t0_s > p->last_end_s)
        d->gap_s += t0_s - p->last_end_s;
    p->last_end_s = t1_s;
    kiln_profile_row *r = row(d, label ? label : "?");
    r->calls++;
    r->host_s += t1_s - t0_s;
    if (dev_ns >= 0) {
        r->dev_s += dev_ns * 1e-9;
        r->dev_calls++;
    }
    r->bytes += bytes;
}

static int by_host_time(const void *a, const void *b)
{
    double x = ((const kiln_profile_row *)a)->host_s, y = ((const kiln_profile_row *)b)->host_s;
    return (x < y) - (x > y);
}

static void print_phase(const kiln_profile_phase_data *d, const char *name, const char *unit, FILE *f)
{
    double units = d->chunks > 0 ? (double)d->chunks : 1, wall_ms = d->wall_s * 1e3;
    fprintf(f, "\n%s: %ld token(s) in %ld %s(s), wall %.3f ms, %.1f tok/s; per %s:\n", name, d->tokens, d->chunks,
            unit, wall_ms, d->wall_s > 0 ? d->tokens / d->wall_s : 0.0, unit);
    char c1[32], c2[32], c3[32], c4[32];
    snprintf(c1, sizeof c1, "calls/%s", unit);
    snprintf(c2, sizeof c2, "ms/%s", unit);
    snprintf(c3, sizeof c3, "%% %s", unit);
    snprintf(c4, sizeof c4, "dev ms/%s", unit);
    fprintf(f, "  %-30s %11s %11s %10s %8s %12s %8s\n", "label", c1, "total ms", c2, c3, c4, "GB/s");
    kiln_profile_row rows[KILN_PROFILE_MAX_LABELS];
    memcpy(rows, d->rows, sizeof rows[0] * (size_t)d->n_rows);
    qsort(rows, (size_t)d->n_rows, sizeof rows[0], by_host_time);
    double ops_s = 0, overhead_s = 0;
    for (int i = 0; i < d->n_rows; i++) {
        const kiln_profile_row *r = &rows[i];
        ops_s += r->host_s;
        int all_dev = r->dev_calls == r->calls && r->dev_s > 0;
        if (all_dev)
            overhead_s += r->host_s - r->dev_s;
        char dev[32] = "-", gbs[32] = "-";
        if (all_dev)
            snprintf(dev, sizeof dev, "%.4f", r->dev_s * 1e3 / units);
        double t = all_dev ? r->dev_s : r->host_s;
        if (r->bytes > 0 && t > 0)
            snprintf(gbs, sizeof gbs, "%.1f", r->bytes / t * 1e-9);
        fprintf(f, "  %-30s %11.2f %11.3f %10.4f %7.1f%% %12s %8s\n", r->label, r->calls / units, r->host_s * 1e3,
                r->host_s * 1e3 / units, d->wall_s > 0 ? 100 * r->host_s / d->wall_s : 0.0, dev, gbs);
    }
    double other_s = d->wall_s - ops_s - d->gap_s;
    fprintf(f, "  %-30s %11s %11.3f %10.4f %7.1f%%\n", "host between ops", "", d->gap_s * 1e3, d->gap_s * 1e3 / units,
            d->wall_s > 0 ? 100 * d->gap_s / d->wall_s : 0.0);
    fprintf(f, "  %-30s %11s %11.3f %10.4f %7.1f%%\n", "other (host, sampling, sync)", "", other_s * 1e3,
            other_s * 1e3 / units, d->wall_s > 0 ? 100 * other_s / d->wall_s : 0.0);
    fprintf(f, "  %-30s %11s %11.3f %10.4f %7.1f%%\n", "wall", "", wall_ms, wall_ms / units, d->wall_s > 0 ? 100.0 : 0.0);
    fprintf(f, "  launch+sync overhead (ops' host time minus their device time): %.4f ms/%s (%.1f%% of the wall)\n",
            overhead_s * 1e3 / units, unit, d->wall_s > 0 ? 100 * overhead_s / d->wall_s : 0.0);
}

void kiln_profile_print(const kiln_profile *p, const char *device, FILE *f)
{
    fprintf(f, "\nprofile on %s: every op ran synchronously between two host clock reads; on a GPU this serializes "
               "work that otherwise overlaps, so the profiled run is slower than a plain one\n", device);
    if (p->ph[KILN_PHASE_PREFILL].chunks)
        print_phase(&p->ph[KILN_PHASE_PREFILL], "prefill", "chunk", f);
    if (p->ph[KILN_PHASE_DECODE].chunks)
        print_phase(&p->ph[KILN_PHASE_DECODE], "decode", "step", f);
    if (!p->ph[KILN_PHASE_PREFILL].chunks && !p->ph[KILN_PHASE_DECODE].chunks)
        fprintf(f, "(no forward pass ran)\n");
}
