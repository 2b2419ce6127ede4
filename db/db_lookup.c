/* db/db_lookup.c - which config should a consumer use for (kernel, shape)
 * on this device? Levels, in order: exact device+driver, same device with
 * another driver/compiler, same backend+vendor+architecture, the nearest
 * tuned shape on the same device, the default. Winners recorded for another
 * source hash of the kernel are stale: never used, always reported. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"

static const char *const level_names[] = {"exact device+driver", "same device, other driver",
                                          "same vendor/architecture", "nearest shape on the device",
                                          "similar device", "default"};

const char *kiln_match_name(int level) { return level >= 0 && level <= KILN_MATCH_DEFAULT ? level_names[level] : "?"; }

/* Distance between two shape keys "m4096.k4096.q4f16_1.g32": the tokens
 * without numbers must match; numbers compare by |log ratio|. */
static double shape_distance(const char *a, const char *b)
{
    char x[128], y[128];
    snprintf(x, sizeof x, "%s", a);
    snprintf(y, sizeof y, "%s", b);
    char *sa = NULL, *sb = NULL;
    char *ta = strtok_r(x, ".", &sa), *tb = strtok_r(y, ".", &sb);
    double d = 0;
    while (ta && tb) {
        size_t pa = 0, pb = 0;
        while (ta[pa] && !isdigit((unsigned char)ta[pa]))
            pa++;
        while (tb[pb] && !isdigit((unsigned char)tb[pb]))
            pb++;
        int numeric_a = ta[pa] && strspn(ta + pa, "0123456789") == strlen(ta + pa);
        int numeric_b = tb[pb] && strspn(tb + pb, "0123456789") == strlen(tb + pb);
        if (numeric_a && numeric_b && pa == pb && !strncmp(ta, tb, pa)) {
            double va = atof(ta + pa) + 1, vb = atof(tb + pb) + 1;
            d += fabs(log(va / vb));
        } else if (strcmp(ta, tb)) {
            return INFINITY; /* a different format or op: not comparable */
        }
        ta = strtok_r(NULL, ".", &sa);
        tb = strtok_r(NULL, ".", &sb);
    }
    return ta || tb ? INFINITY : d;
}

typedef struct candidate {
    char config[512], shape[128], device[160], hash[32];
    double ns;
} candidate;

static void read_candidate(sqlite3_stmt *st, candidate *c)
{
    const unsigned char *t;
    snprintf(c->config, sizeof c->config, "%s", (t = sqlite3_column_text(st, 0)) ? (const char *)t : "");
    snprintf(c->shape, sizeof c->shape, "%s", (t = sqlite3_column_text(st, 1)) ? (const char *)t : "");
    snprintf(c->device, sizeof c->device, "%s", (t = sqlite3_column_text(st, 2)) ? (const char *)t : "");
    snprintf(c->hash, sizeof c->hash, "%s", (t = sqlite3_column_text(st, 3)) ? (const char *)t : "");
    c->ns = sqlite3_column_double(st, 4);
}

/* Prepares the winners of kernel ?1 on devices matching `where` (a SQL
 * condition on d.*, bound to ?2..?4) and `filter` (on w.* and k.*, bound to
 * ?5..?6), fastest first. The filtering is SQL's: no row cap anywhere. */
static int prepare(kiln_db *db, const char *where, const char *filter, const char *kernel, const char *p2,
                   const char *p3, const char *p4, const char *p5, const char *p6, sqlite3_stmt **st)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT w.config_json, w.shape_key, d.name || ' (' || d.driver_version || ')', k.source_hash,"
             " w.median_ns FROM winners w JOIN devices d ON d.id = w.device_id JOIN kernels k ON k.id = w.kernel_id"
             " WHERE k.name = ?1 AND %s AND %s ORDER BY w.median_ns",
             where, filter);
    if (sqlite3_prepare_v2(db->h, sql, -1, st, NULL) != SQLITE_OK)
        return -1;
    const char *p[6] = {kernel, p2, p3, p4, p5, p6};
    for (int i = 0; i < 6; i++)
        if (p[i])
            sqlite3_bind_text(*st, i + 1, p[i], -1, SQLITE_TRANSIENT);
    return 0;
}

/* The first row of the query into *c: 1 found, 0 none, -1 error. */
static int first_row(kiln_db *db, const char *where, const char *filter, const char *kernel, const char *p2,
                     const char *p3, const char *p4, const char *p5, const char *p6, candidate *c)
{
    sqlite3_stmt *st;
    if (prepare(db, where, filter, kernel, p2, p3, p4, p5, p6, &st))
        return -1;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        read_candidate(st, c);
    sqlite3_finalize(st);
    return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : -1;
}

static int take(kiln_db_match *m, const candidate *c, int level)
{
    m->level = level;
    snprintf(m->config_json, sizeof m->config_json, "%s", c->config);
    snprintf(m->shape_key, sizeof m->shape_key, "%s", c->shape);
    snprintf(m->device, sizeof m->device, "%s", c->device);
    m->median_ns = c->ns;
    return 0;
}

int kiln_db_lookup(kiln_db *db, const kiln_fingerprint *fp, const char *kernel, const char *hash,
                   const char *shape_key, kiln_db_match *m, kiln_err *e)
{
    if (!hash)
        hash = "";
    memset(m, 0, sizeof *m);
    m->level = KILN_MATCH_DEFAULT;
    char key[512], arch[64];
    kiln_fingerprint_key(fp, key, sizeof key);
    snprintf(arch, sizeof arch, "%s", fp->arch);
    const char *backend = kiln_backend_name(fp->backend);
    struct {
        int level;
        const char *where;
        const char *p2, *p3, *p4;
    } levels[3] = {
        {KILN_MATCH_EXACT, "d.fingerprint = ?2", key, NULL, NULL},
        {KILN_MATCH_DEVICE, "d.backend = ?2 AND d.vendor = ?3 AND d.name = ?4", backend, fp->vendor, fp->name},
        {KILN_MATCH_ARCH, "d.backend = ?2 AND d.vendor = ?3 AND d.arch = ?4", backend, fp->vendor, arch},
    };
    candidate c;
    for (int l = 0; l < 3; l++) {
        int r = first_row(db, levels[l].where, "w.shape_key = ?5 AND k.source_hash = ?6", kernel, levels[l].p2,
                          levels[l].p3, levels[l].p4, shape_key, hash, &c);
        if (r < 0)
            return db_fail(db, e, "looking up a winner");
        if (r) {
            take(m, &c, levels[l].level);
            return 0;
        }
        /* a winner of this shape from another source hash: stale, never used */
        if (!m->stale) {
            r = first_row(db, levels[l].where, "w.shape_key = ?5 AND k.source_hash != ?6", kernel, levels[l].p2,
                          levels[l].p3, levels[l].p4, shape_key, hash, &c);
            if (r < 0)
                return db_fail(db, e, "looking up a winner");
            if (r) {
                m->stale = 1;
                snprintf(m->note, sizeof m->note, "skipped a stale winner tuned on %s for kernel source %s (now %s)",
                         c.device, c.hash, hash);
            }
        }
    }
    /* the nearest tuned shape on this device (any driver), this source only;
     * every row is streamed (no cap), the distance is computed here */
    sqlite3_stmt *st;
    if (prepare(db, levels[1].where, "k.source_hash = ?6", kernel, levels[1].p2, levels[1].p3, levels[1].p4, NULL,
                hash, &st))
        return db_fail(db, e, "looking up the nearest shape");
    double best = INFINITY;
    candidate pick;
    int r, found = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        read_candidate(st, &c);
        double d = shape_distance(shape_key, c.shape);
        if (d < best) {
            best = d;
            pick = c;
            found = 1;
        }
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return db_fail(db, e, "looking up the nearest shape");
    if (found) {
        take(m, &pick, KILN_MATCH_SHAPE);
        return 0;
    }
    /* the nearest tuned device's winner of this very shape */
    kiln_db_match sim = *m;
    r = db_lookup_similar(db, fp, kernel, hash, shape_key, &sim, e);
    if (r < 0)
        return r;
    if (r) {
        if (m->stale) { /* keep the stale note beside the similarity one */
            char both[sizeof sim.note];
            snprintf(both, sizeof both, "%.120s; %.120s", sim.note, m->note);
            memcpy(sim.note, both, sizeof both);
        }
        *m = sim;
    }
    return 0;
}
