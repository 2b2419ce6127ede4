/* db/db_json.c - export every table as JSON (cJSON), import it back
 * idempotently by natural keys (device fingerprint, kernel name + hash,
 * session/bench-run uuid, trial (session, kernel, shape, config)), and merge
 * another database through the same path. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"

static const char *const tables[] = {"devices", "kernels", "sessions", "trials", "winners", "bench_runs",
                                     "bench_results"};
#define N_TABLES 7

static int export_table(kiln_db *db, const char *table, cJSON *root, kiln_err *e)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY rowid", table);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, e, "exporting");
    cJSON *arr = cJSON_AddArrayToObject(root, table);
    int cols = sqlite3_column_count(st), r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        for (int c = 0; c < cols; c++) {
            const char *name = sqlite3_column_name(st, c);
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_INTEGER: cJSON_AddNumberToObject(o, name, (double)sqlite3_column_int64(st, c)); break;
            case SQLITE_FLOAT: cJSON_AddNumberToObject(o, name, sqlite3_column_double(st, c)); break;
            case SQLITE_NULL: cJSON_AddNullToObject(o, name); break;
            default: cJSON_AddStringToObject(o, name, (const char *)sqlite3_column_text(st, c)); break;
            }
        }
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(st);
    return r == SQLITE_DONE ? 0 : db_fail(db, e, "exporting");
}

/* The export as a malloc'd string in *out; the code is returned (callers
 * inside this file need it even when theirs passed no e). */
static int export_json(kiln_db *db, char **out, kiln_err *e)
{
    *out = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return kiln_fail(e, KILN_E_NOMEM, "export: no memory");
    cJSON_AddNumberToObject(root, "kiln_db_schema", KILN_DB_SCHEMA_VERSION);
    for (int t = 0; t < N_TABLES; t++) {
        int rc = export_table(db, tables[t], root, e);
        if (rc) {
            cJSON_Delete(root);
            return rc;
        }
    }
    *out = cJSON_Print(root);
    cJSON_Delete(root);
    return *out ? 0 : kiln_fail(e, KILN_E_NOMEM, "export: no memory");
}

char *kiln_db_export_string(kiln_db *db, kiln_err *e)
{
    char *s;
    export_json(db, &s, e);
    return s;
}

int kiln_db_export(kiln_db *db, FILE *out, kiln_err *e)
{
    char *s;
    int rc = export_json(db, &s, e);
    if (rc)
        return rc;
    rc = fputs(s, out) < 0 || fputc('\n', out) == EOF ? kiln_fail(e, KILN_E_IO, "export: write failed") : 0;
    free(s);
    return rc;
}

/* ---- import ---- */

typedef struct idmap {
    int64_t *old, *new_;
    int n, cap;
} idmap;

static int map_put(idmap *m, int64_t o, int64_t n)
{
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 64;
        int64_t *a = realloc(m->old, sizeof *a * (size_t)cap), *b = a ? realloc(m->new_, sizeof *b * (size_t)cap) : NULL;
        if (!a || !b) {
            if (a)
                m->old = a;
            return -1;
        }
        m->old = a;
        m->new_ = b;
        m->cap = cap;
    }
    m->old[m->n] = o;
    m->new_[m->n++] = n;
    return 0;
}

static int64_t map_get(const idmap *m, int64_t o)
{
    for (int i = 0; i < m->n; i++) /* exports are in id order: usually the last few */
        if (m->old[m->n - 1 - i] == o)
            return m->new_[m->n - 1 - i];
    return -1;
}

typedef struct import_ctx {
    kiln_db *db;
    idmap dev, ker, ses, tri, run;
} import_ctx;

/* Which map an id column is translated through. */
static idmap *fk_map(import_ctx *c, const char *col)
{
    if (!strcmp(col, "device_id"))
        return &c->dev;
    if (!strcmp(col, "kernel_id"))
        return &c->ker;
    if (!strcmp(col, "session_id"))
        return &c->ses;
    if (!strcmp(col, "trial_id"))
        return &c->tri;
    if (!strcmp(col, "run_id"))
        return &c->run;
    return NULL;
}

/* A JSON number as an exact int64 (ids, counts): finite, whole, in range;
 * a cast of anything else is undefined behaviour. */
static int json_int64(const cJSON *f, int64_t *out)
{
    if (!cJSON_IsNumber(f))
        return -1;
    double v = f->valuedouble;
    if (!isfinite(v) || v != floor(v) || v < -9.2e18 || v > 9.2e18)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* The columns of `table` in this database (names from our own schema, never
 * from the input): the only names an imported row may use. */
typedef struct columns {
    char name[32][32];
    int n;
} columns;

static int table_columns(kiln_db *db, const char *table, columns *c, kiln_err *e)
{
    sqlite3_stmt *st;
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
    c->n = 0;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, e, "importing: reading the table's columns");
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && c->n < 32)
        snprintf(c->name[c->n++], sizeof c->name[0], "%s", (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    return r == SQLITE_DONE || r == SQLITE_ROW ? 0 : db_fail(db, e, "importing: reading the table's columns");
}

static int column_index(const columns *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->name[i], name))
            return i;
    return -1;
}

/* INSERT (OR IGNORE / upsert) of one exported row with its foreign keys
 * remapped; returns the row's id in this db via `key_sql` (natural key).
 * Every key must name a column of the table here (the SQL is built from our
 * names, each key at most once) and every value is bound: an input can
 * never change the statement. */
static int insert_row(import_ctx *c, const char *table, const columns *tc, cJSON *row, const char *conflict,
                      const char *key_sql, const char *const *key_cols, idmap *map, kiln_err *e)
{
    char cols[1200] = "", marks[512] = "";
    int n = 0, used[32] = {0};
    for (cJSON *f = row->child; f; f = f->next) {
        int ci = f->string ? column_index(tc, f->string) : -1;
        if (ci < 0)
            return kiln_fail(e, KILN_E_FORMAT, "import: a '%s' row has the unknown column '%.64s' (columns: see "
                             "`kiln db export`)", table, f->string ? f->string : "");
        if (used[ci]++)
            return kiln_fail(e, KILN_E_FORMAT, "import: a '%s' row gives column '%s' twice", table, tc->name[ci]);
        if (!strcmp(f->string, "id"))
            continue;
        size_t cl = strlen(cols), ml = strlen(marks);
        snprintf(cols + cl, sizeof cols - cl, "%s\"%s\"", n ? "," : "", tc->name[ci]);
        snprintf(marks + ml, sizeof marks - ml, "%s?%d", n ? "," : "", n + 1);
        n++;
    }
    if (!n)
        return kiln_fail(e, KILN_E_FORMAT, "import: a '%s' row has no columns", table);
    char sql[2048];
    snprintf(sql, sizeof sql, "INSERT INTO %s(%s) VALUES(%s) %s", table, cols, marks, conflict);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(c->db, e, "importing a row");
    int i = 1;
    for (cJSON *f = row->child; f; f = f->next) {
        if (!strcmp(f->string, "id"))
            continue;
        idmap *m = fk_map(c, f->string);
        int64_t iv = 0;
        int is_int = json_int64(f, &iv) == 0;
        if (m && !cJSON_IsNull(f) && !is_int) {
            sqlite3_finalize(st);
            return kiln_fail(e, KILN_E_FORMAT, "import: %s.%s is not an id", table, f->string);
        }
        if (cJSON_IsNull(f) || (m && map_get(m, iv) < 0 && !strcmp(f->string, "trial_id")))
            sqlite3_bind_null(st, i);
        else if (m) {
            int64_t to = map_get(m, iv);
            if (to < 0) {
                sqlite3_finalize(st);
                return kiln_fail(e, KILN_E_FORMAT, "import: %s row refers to unknown %s %lld", table, f->string,
                                 (long long)iv);
            }
            sqlite3_bind_int64(st, i, to);
        } else if (cJSON_IsNumber(f)) {
            if (is_int && strcmp(f->string, "median_ns") && strcmp(f->string, "copy_gbps") &&
                strcmp(f->string, "read_gbps"))
                sqlite3_bind_int64(st, i, iv);
            else
                sqlite3_bind_double(st, i, f->valuedouble);
        } else if (cJSON_IsString(f)) {
            sqlite3_bind_text(st, i, f->valuestring, -1, SQLITE_TRANSIENT);
        } else {
            sqlite3_finalize(st);
            return kiln_fail(e, KILN_E_FORMAT, "import: %s.%s has an unsupported JSON type", table, f->string);
        }
        i++;
    }
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return db_fail(c->db, e, "importing a row");
    if (!map || !key_sql)
        return 0;
    /* find the row's id here through its natural key */
    if (sqlite3_prepare_v2(c->db->h, key_sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(c->db, e, "importing: natural key");
    for (int k = 0; key_cols[k]; k++) {
        cJSON *f = cJSON_GetObjectItemCaseSensitive(row, key_cols[k]);
        idmap *m = fk_map(c, key_cols[k]);
        int64_t iv;
        if (m && !json_int64(f, &iv))
            sqlite3_bind_int64(st, k + 1, map_get(m, iv));
        else if (cJSON_IsString(f))
            sqlite3_bind_text(st, k + 1, f->valuestring, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(st, k + 1);
    }
    int64_t id = -1, old;
    r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return db_fail(c->db, e, "importing: natural key");
    if (id < 0 || json_int64(cJSON_GetObjectItemCaseSensitive(row, "id"), &old))
        return kiln_fail(e, KILN_E_FORMAT, "import: a %s row has no id or could not be found after insert", table);
    return map_put(map, old, id) ? kiln_fail(e, KILN_E_NOMEM, "import: no memory") : 0;
}

int kiln_db_import(kiln_db *db, const char *json, kiln_err *e)
{
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return kiln_fail(e, KILN_E_FORMAT, "import: not a JSON object (expected a `kiln db export` document)");
    }
    /* only the known top-level keys: a typo'd table name is an error, not
     * silently nothing imported */
    for (cJSON *k = root->child; k; k = k->next) {
        int known = !strcmp(k->string, "kiln_db_schema");
        for (int t = 0; t < N_TABLES && !known; t++)
            known = !strcmp(k->string, tables[t]);
        if (!known) {
            int rc = kiln_fail(e, KILN_E_FORMAT, "import: unknown key '%.64s' (expected kiln_db_schema and tables)",
                               k->string);
            cJSON_Delete(root);
            return rc;
        }
    }
    cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "kiln_db_schema");
    if (!cJSON_IsNumber(ver) || ver->valuedouble < 1 || ver->valuedouble > KILN_DB_SCHEMA_VERSION) {
        cJSON_Delete(root);
        return kiln_fail(e, KILN_E_FORMAT, "import: missing or newer kiln_db_schema");
    }
    import_ctx c = {.db = db};
    static const char *const k_dev[] = {"fingerprint", NULL}, *const k_ker[] = {"name", "source_hash", NULL},
                             *const k_uuid[] = {"uuid", NULL},
                             *const k_tri[] = {"session_id", "kernel_id", "shape_key", "config_json", NULL};
    struct {
        const char *table, *conflict, *key_sql;
        const char *const *keys;
        idmap *map;
    } steps[N_TABLES] = {
        {"devices", "ON CONFLICT(fingerprint) DO NOTHING", "SELECT id FROM devices WHERE fingerprint = ?1", k_dev,
         &c.dev},
        {"kernels", "ON CONFLICT DO NOTHING", "SELECT id FROM kernels WHERE name = ?1 AND source_hash = ?2", k_ker,
         &c.ker},
        {"sessions", "ON CONFLICT(uuid) DO NOTHING", "SELECT id FROM sessions WHERE uuid = ?1", k_uuid, &c.ses},
        {"trials", "ON CONFLICT DO NOTHING",
         "SELECT id FROM trials WHERE session_id = ?1 AND kernel_id = ?2 AND shape_key = ?3 AND config_json = ?4",
         k_tri, &c.tri},
        /* the faster winner per (device, kernel, shape) stays */
        {"winners",
         "ON CONFLICT(device_id, kernel_id, shape_key) DO UPDATE SET config_json = excluded.config_json,"
         " median_ns = excluded.median_ns, default_ns = excluded.default_ns, speedup = excluded.speedup,"
         " margin = excluded.margin, tie = excluded.tie, trial_id = excluded.trial_id, updated = excluded.updated"
         " WHERE excluded.median_ns < winners.median_ns",
         NULL, NULL, NULL},
        {"bench_runs", "ON CONFLICT(uuid) DO NOTHING", "SELECT id FROM bench_runs WHERE uuid = ?1", k_uuid, &c.run},
        {"bench_results", "ON CONFLICT DO NOTHING", NULL, NULL, NULL},
    };
    int rc = db_begin(db, e);
    for (int t = 0; t < N_TABLES && !rc; t++) {
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, steps[t].table), *row;
        if (!arr)
            continue;
        if (!cJSON_IsArray(arr)) {
            rc = kiln_fail(e, KILN_E_FORMAT, "import: '%s' is not an array", steps[t].table);
            break;
        }
        columns tc;
        if ((rc = table_columns(db, steps[t].table, &tc, e)))
            break;
        cJSON_ArrayForEach(row, arr)
        {
            if (!cJSON_IsObject(row)) {
                rc = kiln_fail(e, KILN_E_FORMAT, "import: a '%s' entry is not an object", steps[t].table);
                break;
            }
            if ((rc = insert_row(&c, steps[t].table, &tc, row, steps[t].conflict, steps[t].key_sql, steps[t].keys,
                                 steps[t].map, e)))
                break;
        }
    }
    if (rc)
        db_rollback(db);
    else
        rc = db_commit(db, e);
    idmap *maps[] = {&c.dev, &c.ker, &c.ses, &c.tri, &c.run};
    for (int i = 0; i < 5; i++) {
        free(maps[i]->old);
        free(maps[i]->new_);
    }
    cJSON_Delete(root);
    return rc;
}

int kiln_db_merge(kiln_db *db, const char *other_path, kiln_err *e)
{
    /* the other file is only read: a missing path is an error (never an
     * empty database created there), and its rows go through the same
     * import as a JSON file (known columns, bound values, one transaction) */
    kiln_db *other;
    int rc = kiln_db_open_readonly(&other, other_path, e);
    if (rc) {
        kiln_err_wrap(e, "merging %s", other_path);
        return rc;
    }
    char *json;
    rc = export_json(other, &json, e);
    kiln_db_close(other);
    if (rc)
        return rc;
    rc = kiln_db_import(db, json, e);
    free(json);
    if (rc)
        kiln_err_wrap(e, "merging %s", other_path);
    return rc;
}

int kiln_db_prune(kiln_db *db, int days, int keep, int *deleted, kiln_err *e)
{
    int rc = db_begin(db, e), total = 0;
    char sql[1024];
    if (!rc && days > 0) {
        snprintf(sql, sizeof sql,
                 "DELETE FROM trials WHERE id NOT IN (SELECT trial_id FROM winners WHERE trial_id IS NOT NULL)"
                 " AND session_id IN (SELECT id FROM sessions WHERE status != 'running'"
                 " AND julianday('now') - julianday(COALESCE(ended, started)) > %d)",
                 days);
        if (!(rc = db_exec(db, sql, "pruning old trials", e)))
            total += sqlite3_changes(db->h);
    }
    if (!rc && keep > 0) {
        snprintf(sql, sizeof sql,
                 "DELETE FROM trials WHERE id NOT IN (SELECT trial_id FROM winners WHERE trial_id IS NOT NULL)"
                 " AND id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY device_id, kernel_id,"
                 " shape_key ORDER BY CASE WHEN status = 'ok' THEN median_ns ELSE 1e300 END) AS rk FROM trials)"
                 " WHERE rk > %d)",
                 keep);
        if (!(rc = db_exec(db, sql, "pruning to the fastest trials", e)))
            total += sqlite3_changes(db->h);
    }
    if (rc) {
        db_rollback(db);
        return rc;
    }
    if (deleted)
        *deleted = total;
    return db_commit(db, e);
}
