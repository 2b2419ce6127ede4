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
                                          "same vendor/architecture", "nearest shape on the device", "default"};

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

/* Winners for kernel `name` whose device matches `where` (a SQL condition
 * on d.*, bound to ?2..?4). */
static int query(kiln_db *db, const char *where, const char *kernel, const char *p2, const char *p3, const char *p4,
                 candidate *out, int max)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT w.config_json, w.shape_key, d.name || ' (' || d.driver_version || ')', k.source_hash,"
             " w.median_ns FROM winners w JOIN devices d ON d.id = w.device_id JOIN kernels k ON k.id = w.kernel_id"
             " WHERE k.name = ?1 AND %s ORDER BY w.median_ns",
             where);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, kernel, -1, SQLITE_TRANSIENT);
    if (p2)
        sqlite3_bind_text(st, 2, p2, -1, SQLITE_TRANSIENT);
    if (p3)
        sqlite3_bind_text(st, 3, p3, -1, SQLITE_TRANSIENT);
    if (p4)
        sqlite3_bind_text(st, 4, p4, -1, SQLITE_TRANSIENT);
    int n = 0;
    while (n < max && sqlite3_step(st) == SQLITE_ROW) {
        candidate *c = &out[n++];
        snprintf(c->config, sizeof c->config, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(c->shape, sizeof c->shape, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(c->device, sizeof c->device, "%s", (const char *)sqlite3_column_text(st, 2));
        snprintf(c->hash, sizeof c->hash, "%s", (const char *)sqlite3_column_text(st, 3));
        c->ns = sqlite3_column_double(st, 4);
    }
    sqlite3_finalize(st);
    return n;
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
    memset(m, 0, sizeof *m);
    m->level = KILN_MATCH_DEFAULT;
    char key[512], arch[64];
    kiln_fingerprint_key(fp, key, sizeof key);
    snprintf(arch, sizeof arch, "%s", fp->arch);
    const char *backend = kiln_backend_name(fp->backend);
    candidate *c = malloc(256 * sizeof *c);
    if (!c)
        return kiln_fail(e, KILN_E_NOMEM, "db lookup: no memory");
    struct {
        int level;
        const char *where;
        const char *p2, *p3, *p4;
    } levels[3] = {
        {KILN_MATCH_EXACT, "d.fingerprint = ?2", key, NULL, NULL},
        {KILN_MATCH_DEVICE, "d.backend = ?2 AND d.vendor = ?3 AND d.name = ?4", backend, fp->vendor, fp->name},
        {KILN_MATCH_ARCH, "d.backend = ?2 AND d.vendor = ?3 AND d.arch = ?4", backend, fp->vendor, arch},
    };
    for (int l = 0; l < 3; l++) {
        int n = query(db, levels[l].where, kernel, levels[l].p2, levels[l].p3, levels[l].p4, c, 256);
        if (n < 0) {
            free(c);
            return db_fail(db, e, "looking up a winner");
        }
        for (int i = 0; i < n; i++) {
            if (strcmp(c[i].shape, shape_key))
                continue;
            if (strcmp(c[i].hash, hash)) {
                m->stale = 1;
                snprintf(m->note, sizeof m->note, "skipped a stale winner tuned on %s for kernel source %s (now %s)",
                         c[i].device, c[i].hash, hash);
                continue;
            }
            take(m, &c[i], levels[l].level);
            free(c);
            return 0;
        }
    }
    /* the nearest tuned shape on this device (any driver) */
    int n = query(db, levels[1].where, kernel, levels[1].p2, levels[1].p3, levels[1].p4, c, 256);
    double best = INFINITY;
    int pick = -1;
    for (int i = 0; i < n; i++) {
        if (strcmp(c[i].hash, hash))
            continue;
        double d = shape_distance(shape_key, c[i].shape);
        if (d < best) {
            best = d;
            pick = i;
        }
    }
    if (pick >= 0)
        take(m, &c[pick], KILN_MATCH_SHAPE);
    free(c);
    return 0;
}
