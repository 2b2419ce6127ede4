/* bench/bench_store.c - see bench_store.h. Owns the SQL over bench_runs and
 * bench_results; the tables themselves (schema, merge, export of the whole
 * database) belong to db/. */
#include "bench/bench_store.h"
#include "util/file.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kiln_config.h"
#include "util/git_commit.h"
#include "util/rng.h"

/* ---- sets ---------------------------------------------------------------- */

int kiln_bench_set_add(kiln_bench_set *s, const kiln_bench_result *r)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        kiln_bench_result *p = realloc(s->r, (size_t)cap * sizeof *p);
        if (!p)
            return KILN_E_NOMEM;
        s->r = p;
        s->cap = cap;
    }
    s->r[s->n++] = *r;
    return 0;
}

void kiln_bench_set_free(kiln_bench_set *s)
{
    free(s->r);
    memset(s, 0, sizeof *s);
}

static void set_note_run(kiln_bench_set *s, int64_t id)
{
    for (int i = 0; i < s->n_runs; i++)
        if (s->run_ids[i] == id)
            return;
    if (s->n_runs < (int)(sizeof s->run_ids / sizeof s->run_ids[0]))
        s->run_ids[s->n_runs++] = id;
}

/* ---- identity of this build ---------------------------------------------- */

void kiln_bench_batch_tag(char out[32])
{
    kiln_rng r;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    kiln_rng_seed(&r, (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 21) ^ ((uint64_t)getpid() << 42));
    snprintf(out, 32, "batch=%016llx", (unsigned long long)kiln_rng_u64(&r));
}

const char *kiln_bench_build_options(void)
{
#ifndef KILN_BUILDTYPE
#define KILN_BUILDTYPE "unknown"
#endif
    return "buildtype=" KILN_BUILDTYPE " backends=cpu"
#ifdef KILN_HAVE_OPENCL
           ",opencl"
#endif
#ifdef KILN_HAVE_VULKAN
           ",vulkan"
#endif
#ifdef KILN_HAVE_CUDA
           ",cuda"
#endif
        ;
}

static int sql_fail(kiln_db *db, kiln_err *e, const char *what)
{
    return kiln_fail(e, KILN_E_DB, "%s: %s: %s", kiln_db_path(db), what, sqlite3_errmsg(kiln_db_handle(db)));
}

static const char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

/* ---- writer -------------------------------------------------------------- */

int kiln_bench_begin(kiln_bench_writer *w, kiln_db *db, const kiln_fingerprint *fp, const char *kind,
                     const char *subject, const char *batch, kiln_err *e)
{
    memset(w, 0, sizeof *w);
    w->db = db;
    kiln_fingerprint_key(fp, w->fingerprint, sizeof w->fingerprint);
    snprintf(w->device, sizeof w->device, "%s %s", kiln_backend_name(fp->backend), fp->name);
    if (sqlite3_exec(kiln_db_handle(db), "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(db, e, "starting a bench run");
    w->open = 1;
    int rc = kiln_db_device_upsert(db, fp, &w->device_id, e);
    if (rc) {
        kiln_bench_end(w, 0, NULL);
        return rc;
    }
    kiln_db_bench_run r = {.device_id = w->device_id};
    snprintf(r.kind, sizeof r.kind, "%s", kind);
    snprintf(r.subject, sizeof r.subject, "%s", subject ? subject : "");
    snprintf(r.git_commit, sizeof r.git_commit, "%s", kiln_git_commit);
    const char *ref = getenv("KILN_GIT_REF");
    snprintf(r.git_ref, sizeof r.git_ref, "%s", ref ? ref : "");
    snprintf(r.build_options, sizeof r.build_options, "%s", kiln_bench_build_options());
    if (gethostname(r.host, sizeof r.host))
        snprintf(r.host, sizeof r.host, "?");
    r.host[sizeof r.host - 1] = 0;
    snprintf(r.notes, sizeof r.notes, "%s", batch ? batch : "");
    if ((rc = kiln_db_bench_run_insert(db, &r, &w->run_id, e))) {
        kiln_bench_end(w, 0, NULL);
        return rc;
    }
    return 0;
}

int kiln_bench_add(kiln_bench_writer *w, const kiln_bench_result *r, kiln_err *e)
{
    int rc = kiln_db_bench_result_insert(w->db, w->run_id, r->subject, r->metric, r->unit, r->value, r->spread, r->n,
                                         r->higher_is_better, e);
    if (!rc && r->mean != 0) {
        char m[80];
        snprintf(m, sizeof m, "%s:mean", r->metric);
        rc = kiln_db_bench_result_insert(w->db, w->run_id, r->subject, m, r->unit, r->mean, r->spread, r->n,
                                         KILN_BENCH_INFO, e);
    }
    if (!rc)
        w->n_results++;
    return rc;
}

int kiln_bench_note(kiln_bench_writer *w, const char *line, kiln_err *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(kiln_db_handle(w->db),
                           "UPDATE bench_runs SET notes = CASE WHEN notes IS NULL OR notes = '' THEN ?2"
                           " ELSE notes || char(10) || ?2 END WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_fail(w->db, e, "noting a bench run");
    sqlite3_bind_int64(st, 1, w->run_id);
    sqlite3_bind_text(st, 2, line, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sql_fail(w->db, e, "noting a bench run");
    sqlite3_finalize(st);
    return rc;
}

int kiln_bench_end(kiln_bench_writer *w, int ok, kiln_err *e)
{
    if (!w->open)
        return 0;
    w->open = 0;
    if (!ok) {
        sqlite3_exec(kiln_db_handle(w->db), "ROLLBACK", NULL, NULL, NULL);
        return 0;
    }
    if (sqlite3_exec(kiln_db_handle(w->db), "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        int rc = sql_fail(w->db, e, "committing a bench run");
        sqlite3_exec(kiln_db_handle(w->db), "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------- */

int kiln_bench_load_run(kiln_db *db, int64_t run_id, kiln_bench_set *s, kiln_err *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(kiln_db_handle(db),
                           "SELECT d.fingerprint, d.backend || ' ' || d.name, r.git_commit, r.created, x.name, x.metric,"
                           " x.unit, x.value, x.spread, x.n, x.higher_is_better FROM bench_runs r"
                           " JOIN devices d ON d.id = r.device_id LEFT JOIN bench_results x ON x.run_id = r.id"
                           " WHERE r.id = ?1 ORDER BY x.id",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_fail(db, e, "reading a bench run");
    sqlite3_bind_int64(st, 1, run_id);
    int rows = 0, rc = 0;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        rows++;
        if (sqlite3_column_type(st, 4) == SQLITE_NULL)
            continue; /* a run without results */
        kiln_bench_result r = {.run_id = run_id};
        snprintf(r.fingerprint, sizeof r.fingerprint, "%s", col(st, 0));
        snprintf(r.device, sizeof r.device, "%s", col(st, 1));
        snprintf(r.git_commit, sizeof r.git_commit, "%s", col(st, 2));
        snprintf(r.created, sizeof r.created, "%s", col(st, 3));
        snprintf(r.subject, sizeof r.subject, "%s", col(st, 4));
        snprintf(r.metric, sizeof r.metric, "%s", col(st, 5));
        snprintf(r.unit, sizeof r.unit, "%s", col(st, 6));
        r.value = sqlite3_column_double(st, 7);
        r.spread = sqlite3_column_double(st, 8);
        r.n = sqlite3_column_int(st, 9);
        r.higher_is_better = sqlite3_column_int(st, 10);
        if (kiln_bench_set_add(s, &r))
            rc = kiln_fail(e, KILN_E_NOMEM, "bench: no memory");
    }
    sqlite3_finalize(st);
    if (!rc && !rows)
        return kiln_fail(e, KILN_E_INVALID, "%s: no bench run %lld", kiln_db_path(db), (long long)run_id);
    if (!rc)
        set_note_run(s, run_id);
    return rc;
}

/* Loads the runs whose ids st yields (finalizes st); *n += how many. */
static int load_ids(kiln_db *db, sqlite3_stmt *st, kiln_bench_set *s, int *n, kiln_err *e)
{
    int64_t ids[64];
    int k = 0;
    while (k < 64 && sqlite3_step(st) == SQLITE_ROW)
        ids[k++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    int rc = 0;
    for (int i = 0; i < k && !rc; i++)
        rc = kiln_bench_load_run(db, ids[i], s, e);
    *n += k;
    return rc;
}

/* Latest run per (device, kind) among those matching `where` (an SQL
 * condition over r, with ?1 = kind or NULL and ?2 = text). */
static int select_latest(kiln_db *db, const char *where, const char *kind, const char *text, kiln_bench_set *s,
                         int *n, kiln_err *e)
{
    /* the inner query repeats the condition over o */
    char cond_o[512];
    snprintf(cond_o, sizeof cond_o, "%s", where);
    for (char *p = cond_o; (p = strstr(p, "r.")); p += 2)
        *p = 'o';
    char *sql = sqlite3_mprintf(
        "SELECT r.id FROM bench_runs r WHERE (?1 IS NULL OR r.kind = ?1) AND (%s) AND NOT EXISTS (SELECT 1 FROM"
        " bench_runs o WHERE o.device_id = r.device_id AND o.kind = r.kind AND (%s)"
        " AND (o.created > r.created OR (o.created = r.created AND o.id > r.id))) ORDER BY r.id",
        where, cond_o);
    sqlite3_stmt *st;
    int ok = sqlite3_prepare_v2(kiln_db_handle(db), sql, -1, &st, NULL) == SQLITE_OK;
    sqlite3_free(sql);
    if (!ok)
        return sql_fail(db, e, "selecting bench runs");
    if (kind)
        sqlite3_bind_text(st, 1, kind, -1, SQLITE_TRANSIENT);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
    return load_ids(db, st, s, n, e);
}

/* Full commit id of a git ref, via `git rev-parse`; 0 on success. */
static int git_resolve(const char *ref, char *out, size_t n)
{
    for (const char *p = ref; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("._-/~^@{}", *p)))
            return -1;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "git rev-parse --verify --quiet '%s^{commit}' 2>/dev/null", ref);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[128] = "";
    char *got = fgets(line, sizeof line, f);
    int st = pclose(f);
    if (!got || st != 0)
        return -1;
    line[strcspn(line, "\r\n")] = 0;
    if (strlen(line) < 7)
        return -1;
    snprintf(out, n, "%s", line);
    return 0;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int kiln_bench_select(kiln_db *db, const char *sel, const char *kind, const kiln_bench_set *rel, kiln_bench_set *s,
                      kiln_err *e)
{
    int n = 0, rc = 0;
    char *end;
    long long id = strtoll(sel, &end, 10);
    if (ends_with(sel, ".json"))
        return kiln_bench_load_json(sel, s, e);
    if (!db)
        return kiln_fail(e, KILN_E_INVALID, "bench: '%s' needs a database", sel);
    if (*sel && !*end && id > 0) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(kiln_db_handle(db), "SELECT notes FROM bench_runs WHERE id = ?1", -1, &st, NULL) !=
            SQLITE_OK)
            return sql_fail(db, e, "selecting bench runs");
        sqlite3_bind_int64(st, 1, id);
        char batch[32] = "";
        int found = sqlite3_step(st) == SQLITE_ROW;
        if (found && !strncmp(col(st, 0), "batch=", 6))
            snprintf(batch, sizeof batch, "%.22s", col(st, 0));
        sqlite3_finalize(st);
        if (!found)
            return kiln_fail(e, KILN_E_INVALID, "%s: no bench run %lld (kiln bench list)", kiln_db_path(db), id);
        if (!batch[0])
            return kiln_bench_load_run(db, id, s, e);
        if (sqlite3_prepare_v2(kiln_db_handle(db),
                               "SELECT id FROM bench_runs WHERE substr(notes, 1, 22) = ?1 ORDER BY id", -1, &st,
                               NULL) != SQLITE_OK)
            return sql_fail(db, e, "selecting bench runs");
        sqlite3_bind_text(st, 1, batch, -1, SQLITE_TRANSIENT);
        rc = load_ids(db, st, s, &n, e);
    } else if (!strcmp(sel, "latest")) {
        rc = select_latest(db, "1", kind, NULL, s, &n, e);
    } else if (!strcmp(sel, "previous")) {
        if (!rel || !rel->n_runs)
            return kiln_fail(e, KILN_E_INVALID, "bench: 'previous' needs a run to be previous to");
        for (int i = 0; i < rel->n_runs && !rc; i++) {
            sqlite3_stmt *st;
            if (sqlite3_prepare_v2(kiln_db_handle(db),
                                   "SELECT o.id FROM bench_runs o JOIN bench_runs r ON r.id = ?1 WHERE"
                                   " o.device_id = r.device_id AND o.kind = r.kind AND (o.created < r.created OR"
                                   " (o.created = r.created AND o.id < r.id)) ORDER BY o.created DESC, o.id DESC"
                                   " LIMIT 1",
                                   -1, &st, NULL) != SQLITE_OK)
                return sql_fail(db, e, "selecting bench runs");
            sqlite3_bind_int64(st, 1, rel->run_ids[i]);
            rc = load_ids(db, st, s, &n, e);
        }
    } else {
        char full[128];
        if (!git_resolve(sel, full, sizeof full))
            rc = select_latest(db, "length(r.git_commit) >= 7 AND ?2 LIKE r.git_commit || '%'", kind, full, s, &n,
                               e);
        else
            rc = select_latest(db, "length(?2) >= 4 AND r.git_commit LIKE ?2 || '%'", kind, sel, s, &n, e);
    }
    if (rc)
        return rc;
    if (n == 0)
        return kiln_fail(e, KILN_E_INVALID, "%s: no bench run matches '%s'%s%s", kiln_db_path(db), sel,
                         kind ? " of kind " : "", kind ? kind : "");
    return 0;
}

/* ---- JSON ---------------------------------------------------------------- */

char *kiln_bench_export_json(kiln_db *db, const int64_t *run_ids, int n_runs, kiln_err *e)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "kiln_bench", 1);
    cJSON *runs = cJSON_AddArrayToObject(root, "runs");
    sqlite3 *h = kiln_db_handle(db);
    int rc = 0;
    for (int i = 0; i < n_runs && !rc; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h,
                               "SELECT r.uuid, r.created, r.git_commit, r.git_ref, r.build_options, r.kind, r.subject,"
                                " r.host, r.notes, d.fingerprint, d.backend, d.name, d.copy_gbps, d.read_gbps FROM bench_runs r"
                               " JOIN devices d ON d.id = r.device_id WHERE r.id = ?1",
                               -1, &st, NULL) != SQLITE_OK) {
            rc = sql_fail(db, e, "exporting a bench run");
            break;
        }
        sqlite3_bind_int64(st, 1, run_ids[i]);
        if (sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_finalize(st);
            rc = kiln_fail(e, KILN_E_INVALID, "%s: no bench run %lld", kiln_db_path(db), (long long)run_ids[i]);
            break;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)run_ids[i]);
        static const char *const names[] = {"uuid", "created", "git_commit", "git_ref", "build_options",
                                            "kind", "subject", "host", "notes"};
        for (int c = 0; c < 9; c++)
            cJSON_AddStringToObject(o, names[c], col(st, c));
        cJSON *dev = cJSON_AddObjectToObject(o, "device");
        cJSON_AddStringToObject(dev, "fingerprint", col(st, 9));
        cJSON_AddStringToObject(dev, "backend", col(st, 10));
        cJSON_AddStringToObject(dev, "name", col(st, 11));
        cJSON_AddNumberToObject(dev, "copy_gbps", sqlite3_column_double(st, 12));
        cJSON_AddNumberToObject(dev, "read_gbps", sqlite3_column_double(st, 13)); /* 0: not measured */
        sqlite3_finalize(st);
        cJSON *res = cJSON_AddArrayToObject(o, "results");
        if (sqlite3_prepare_v2(h,
                               "SELECT name, metric, unit, value, spread, n, higher_is_better FROM bench_results"
                               " WHERE run_id = ?1 ORDER BY id",
                               -1, &st, NULL) != SQLITE_OK) {
            cJSON_Delete(o);
            rc = sql_fail(db, e, "exporting bench results");
            break;
        }
        sqlite3_bind_int64(st, 1, run_ids[i]);
        while (sqlite3_step(st) == SQLITE_ROW) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "subject", col(st, 0));
            cJSON_AddStringToObject(x, "metric", col(st, 1));
            cJSON_AddStringToObject(x, "unit", col(st, 2));
            cJSON_AddNumberToObject(x, "value", sqlite3_column_double(st, 3));
            cJSON_AddNumberToObject(x, "spread", sqlite3_column_double(st, 4));
            cJSON_AddNumberToObject(x, "n", sqlite3_column_int(st, 5));
            cJSON_AddNumberToObject(x, "higher_is_better", sqlite3_column_int(st, 6));
            cJSON_AddItemToArray(res, x);
        }
        sqlite3_finalize(st);
        cJSON_AddItemToArray(runs, o);
    }
    char *out = rc ? NULL : cJSON_Print(root);
    cJSON_Delete(root);
    if (!rc && !out)
        kiln_fail(e, KILN_E_NOMEM, "bench: no memory");
    return out;
}

/* the whole file, pipes included (util/file.h) */
static int slurp(const char *path, char **out, kiln_err *e) { return kiln_read_file(path, (size_t)1 << 30, out, NULL, e); }

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Parses a bench export; calls fn for every run with its JSON object. */
/* *root: the parsed export (cJSON_Delete it), *runs its "runs" array. */
static int parse_file(const char *path, cJSON **root, cJSON **runs, kiln_err *e)
{
    char *text;
    int rc = slurp(path, &text, e);
    *root = *runs = NULL;
    if (rc)
        return rc;
    cJSON *r = cJSON_Parse(text);
    free(text);
    *runs = r ? cJSON_GetObjectItemCaseSensitive(r, "runs") : NULL;
    if (!r || !cJSON_IsArray(*runs) || !cJSON_GetObjectItemCaseSensitive(r, "kiln_bench")) {
        cJSON_Delete(r);
        *runs = NULL;
        return kiln_fail(e, KILN_E_FORMAT, "%s: not a `kiln bench export` file (no \"kiln_bench\" and \"runs\")",
                         path);
    }
    *root = r;
    return 0;
}

int kiln_bench_load_json(const char *path, kiln_bench_set *s, kiln_err *e)
{
    cJSON *runs, *root, *run;
    int rc = parse_file(path, &root, &runs, e), n = 0;
    if (rc)
        return rc;
    cJSON_ArrayForEach(run, runs)
    {
        const cJSON *dev = cJSON_GetObjectItemCaseSensitive(run, "device");
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(run, "results"), *x;
        n++;
        cJSON_ArrayForEach(x, res)
        {
            kiln_bench_result r = {.run_id = (int64_t)jnum(run, "id")};
            snprintf(r.fingerprint, sizeof r.fingerprint, "%s", jstr(dev, "fingerprint"));
            snprintf(r.device, sizeof r.device, "%s %s", jstr(dev, "backend"), jstr(dev, "name"));
            snprintf(r.git_commit, sizeof r.git_commit, "%s", jstr(run, "git_commit"));
            snprintf(r.created, sizeof r.created, "%s", jstr(run, "created"));
            snprintf(r.subject, sizeof r.subject, "%s", jstr(x, "subject"));
            snprintf(r.metric, sizeof r.metric, "%s", jstr(x, "metric"));
            snprintf(r.unit, sizeof r.unit, "%s", jstr(x, "unit"));
            r.value = jnum(x, "value");
            r.spread = jnum(x, "spread");
            r.n = (int)jnum(x, "n");
            r.higher_is_better = (int)jnum(x, "higher_is_better");
            if (kiln_bench_set_add(s, &r)) {
                rc = kiln_fail(e, KILN_E_NOMEM, "bench: no memory");
                break;
            }
        }
    }
    cJSON_Delete(root);
    if (!rc && !n)
        rc = kiln_fail(e, KILN_E_INVALID, "%s: holds no bench run", path);
    return rc;
}

static int is_time_unit(const char *u) { return !strcmp(u, "us") || !strcmp(u, "ms") || !strcmp(u, "ns") || !strcmp(u, "s"); }

int kiln_bench_import_json(kiln_db *db, const char *path, double f, int64_t *new_ids, int max_ids, int *n_new,
                           kiln_err *e)
{
    if (n_new)
        *n_new = 0;
    cJSON *runs, *root, *run;
    int rc = parse_file(path, &root, &runs, e);
    if (rc)
        return rc;
    sqlite3 *h = kiln_db_handle(db);
    if (sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        cJSON_Delete(root);
        return sql_fail(db, e, "importing bench runs");
    }
    int k = 0;
    char batch[32];
    kiln_bench_batch_tag(batch);
    cJSON_ArrayForEach(run, runs)
    {
        const cJSON *dev = cJSON_GetObjectItemCaseSensitive(run, "device");
        sqlite3_stmt *st;
        /* the device by its fingerprint (the key kiln_db_device_upsert writes) */
        if (sqlite3_prepare_v2(h,
                               "INSERT INTO devices(fingerprint, backend, name, copy_gbps, first_seen, last_seen,"
                               " read_gbps) VALUES(?1, ?2, ?3, ?4, ?5, ?5, ?6) ON CONFLICT(fingerprint) DO NOTHING",
                               -1, &st, NULL) != SQLITE_OK) {
            rc = sql_fail(db, e, "importing a bench device");
            break;
        }
        sqlite3_bind_text(st, 1, jstr(dev, "fingerprint"), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, jstr(dev, "backend"), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, jstr(dev, "name"), -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(st, 4, jnum(dev, "copy_gbps"));
        sqlite3_bind_text(st, 5, jstr(run, "created"), -1, SQLITE_TRANSIENT);
        if (jnum(dev, "read_gbps") > 0) /* absent in runs exported before it was measured */
            sqlite3_bind_double(st, 6, jnum(dev, "read_gbps"));
        else
            sqlite3_bind_null(st, 6);
        int ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
        kiln_db_bench_run r = {0};
        if (ok && sqlite3_prepare_v2(h, "SELECT id FROM devices WHERE fingerprint = ?1", -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, jstr(dev, "fingerprint"), -1, SQLITE_TRANSIENT);
            ok = sqlite3_step(st) == SQLITE_ROW;
            r.device_id = ok ? sqlite3_column_int64(st, 0) : 0;
            sqlite3_finalize(st);
        }
        if (!ok) {
            rc = sql_fail(db, e, "importing a bench device");
            break;
        }
        snprintf(r.kind, sizeof r.kind, "%s", jstr(run, "kind"));
        snprintf(r.subject, sizeof r.subject, "%s", jstr(run, "subject"));
        snprintf(r.git_commit, sizeof r.git_commit, "%s", jstr(run, "git_commit"));
        snprintf(r.git_ref, sizeof r.git_ref, "%s", jstr(run, "git_ref"));
        snprintf(r.build_options, sizeof r.build_options, "%s", jstr(run, "build_options"));
        snprintf(r.host, sizeof r.host, "%s", jstr(run, "host"));
        if (f != 1)
            snprintf(r.notes, sizeof r.notes, "%s\nimported from %s with times x%g (planted)", batch, path, f);
        else
            snprintf(r.notes, sizeof r.notes, "%s\nimported from %s", batch, path);
        int64_t id;
        if ((rc = kiln_db_bench_run_insert(db, &r, &id, e)))
            break;
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(run, "results"), *x;
        cJSON_ArrayForEach(x, res)
        {
            double v = jnum(x, "value");
            const char *unit = jstr(x, "unit");
            int hib = (int)jnum(x, "higher_is_better");
            if (f != 1 && is_time_unit(unit))
                v *= f;
            else if (f != 1 && hib == KILN_BENCH_HIGHER)
                v /= f;
            else if (f != 1 && (!strcmp(unit, "GB/s") || !strcmp(unit, "%")))
                v /= f; /* derived rates */
            if ((rc = kiln_db_bench_result_insert(db, id, jstr(x, "subject"), jstr(x, "metric"), unit, v,
                                                  jnum(x, "spread"), (int)jnum(x, "n"), hib, e)))
                break;
        }
        if (rc)
            break;
        if (new_ids && k < max_ids)
            new_ids[k] = id;
        k++;
    }
    cJSON_Delete(root);
    if (!rc && sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = sql_fail(db, e, "importing bench runs");
    if (rc)
        sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
    else if (n_new)
        *n_new = k;
    return rc;
}
