/* db/db_similar.c - the similarity level of the lookup: a device nobody
 * tuned borrows the winners of the nearest device that was tuned, by a
 * distance over what identifies a device's performance (backend, kind,
 * vendor, architecture, compute units, subgroup size, max workgroup, shared
 * memory, measured bandwidth). The borrowed config is a guess: consumers
 * check it is valid on this device and verify it against the reference
 * before they use it (bench/bench_kernels.c, engine/ops.c).
 *
 * Only devices of the same backend lend their winners. Measured
 * (bench/results/similarity.md): PoCL's tuned gemv configs, valid and
 * correct on lavapipe, ran there at 0.17-0.45x of lavapipe's own default;
 * what is fast depends on the compiler and runtime as much as on the
 * hardware, and the default of a backend already encodes that. Another
 * device of the same backend (a second Adreno, a newer driver's Mali) is
 * what the level is for. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "db/db_internal.h"

/* 0.5 x |log2(a / b)|, capped at 2; 0.5 when either is unknown (0). */
static double num_term(double a, double b)
{
    if (a <= 0 || b <= 0)
        return a == b ? 0 : 0.5;
    double d = 0.5 * fabs(log2(a / b));
    return d > 2 ? 2 : d;
}

double kiln_fingerprint_distance(const kiln_fingerprint *a, const kiln_fingerprint *b)
{
    double d = 0;
    d += a->backend != b->backend ? 3 : 0;
    int ka = a->cpu_device || a->backend == KILN_CPU, kb = b->cpu_device || b->backend == KILN_CPU;
    d += ka != kb ? 2 : 0;
    d += strcasecmp(a->vendor, b->vendor) ? 1 : 0;
    d += strcasecmp(a->arch, b->arch) ? 1 : 0;
    d += num_term(a->compute_units, b->compute_units);
    d += num_term(a->subgroup_size, b->subgroup_size);
    d += num_term(a->max_workgroup, b->max_workgroup);
    d += num_term((double)a->local_mem_bytes, (double)b->local_mem_bytes);
    double bwa = a->read_gbps > 0 ? a->read_gbps : a->copy_gbps, bwb = b->read_gbps > 0 ? b->read_gbps : b->copy_gbps;
    d += num_term(bwa, bwb);
    return d;
}

static const char *text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

int db_lookup_similar(kiln_db *db, const kiln_fingerprint *fp, const char *kernel, const char *hash,
                      const char *shape_key, kiln_db_match *m, kiln_err *e)
{
    char key[512];
    kiln_fingerprint_key(fp, key, sizeof key);
    /* every other tuned device of this backend with a winner of this shape
     * and this source (a winner of another source is stale) */
    const char *sql =
        "SELECT d.backend, d.vendor, d.name, d.arch, d.driver_version, d.compute_units, d.subgroup_size, d.local_mem,"
        " d.max_workgroup, d.copy_gbps, d.read_gbps, d.cpu_device, k.source_hash, w.config_json, w.median_ns"
        " FROM winners w JOIN devices d ON d.id = w.device_id JOIN kernels k ON k.id = w.kernel_id"
        " WHERE k.name = ?1 AND w.shape_key = ?2 AND d.fingerprint != ?3 AND d.backend = ?4 AND k.source_hash = ?5"
        " ORDER BY d.id";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, e, "looking up a similar device");
    sqlite3_bind_text(st, 1, kernel, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, shape_key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, kiln_backend_name(fp->backend), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, hash, -1, SQLITE_TRANSIENT);
    double best = INFINITY;
    int r, found = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        kiln_fingerprint o;
        memset(&o, 0, sizeof o);
        o.backend = fp->backend;
        snprintf(o.vendor, sizeof o.vendor, "%s", text(st, 1));
        snprintf(o.name, sizeof o.name, "%s", text(st, 2));
        snprintf(o.arch, sizeof o.arch, "%s", text(st, 3));
        o.compute_units = (uint32_t)sqlite3_column_int64(st, 5);
        o.subgroup_size = (uint32_t)sqlite3_column_int64(st, 6);
        o.local_mem_bytes = (uint64_t)sqlite3_column_int64(st, 7);
        o.max_workgroup = (uint32_t)sqlite3_column_int64(st, 8);
        o.copy_gbps = sqlite3_column_double(st, 9);
        o.read_gbps = sqlite3_column_double(st, 10);
        o.cpu_device = (uint32_t)sqlite3_column_int(st, 11);
        double d = kiln_fingerprint_distance(fp, &o);
        if (d < best) { /* ties: the device recorded first */
            best = d;
            found = 1;
            m->level = KILN_MATCH_SIMILAR;
            m->distance = d;
            snprintf(m->config_json, sizeof m->config_json, "%s", text(st, 13));
            snprintf(m->shape_key, sizeof m->shape_key, "%s", shape_key);
            snprintf(m->device, sizeof m->device, "%s %s (%s)", text(st, 0), o.name, text(st, 4));
            m->median_ns = sqlite3_column_double(st, 14);
        }
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return db_fail(db, e, "looking up a similar device");
    if (found)
        snprintf(m->note, sizeof m->note, "similar to %s (distance %.2f)", m->device, m->distance);
    return found;
}
