/* db/db.c - opening, schema and migrations, and the writes the tuner makes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db/db_internal.h"
#include "kiln_config.h"
#include "util/git_commit.h"
#include "util/rng.h"

/* Migration n brings a database from version n to n + 1. */
static const char *const migrations[] = {
    /* 0 -> 1: everything */
    "CREATE TABLE devices ("
    " id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL UNIQUE, backend TEXT NOT NULL, vendor TEXT, pci_vendor_id INTEGER,"
    " pci_device_id INTEGER, name TEXT, arch TEXT, driver_version TEXT, compiler_version TEXT, compute_units INTEGER,"
    " subgroup_size INTEGER, local_mem INTEGER, max_workgroup INTEGER, memory INTEGER, copy_gbps REAL,"
    " first_seen TEXT, last_seen TEXT);"
    "CREATE TABLE kernels (id INTEGER PRIMARY KEY, name TEXT NOT NULL, source_hash TEXT NOT NULL,"
    " UNIQUE(name, source_hash));"
    "CREATE TABLE sessions (id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, started TEXT, ended TEXT,"
    " device_id INTEGER REFERENCES devices(id), strategy TEXT, budget TEXT, git_commit TEXT, host TEXT, args TEXT,"
    " status TEXT);"
    "CREATE TABLE trials (id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),"
    " device_id INTEGER NOT NULL REFERENCES devices(id), kernel_id INTEGER NOT NULL REFERENCES kernels(id),"
    " shape_key TEXT NOT NULL, config_json TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, median_ns REAL,"
    " spread REAL, n_samples INTEGER, gbps REAL, bw_ratio REAL, err REAL, created TEXT,"
    " UNIQUE(session_id, kernel_id, shape_key, config_json));"
    "CREATE INDEX trials_by_kernel ON trials(device_id, kernel_id, shape_key);"
    "CREATE TABLE winners (device_id INTEGER NOT NULL REFERENCES devices(id),"
    " kernel_id INTEGER NOT NULL REFERENCES kernels(id), shape_key TEXT NOT NULL, config_json TEXT NOT NULL,"
    " median_ns REAL, default_ns REAL, speedup REAL, margin REAL, tie INTEGER, trial_id INTEGER, updated TEXT,"
    " PRIMARY KEY(device_id, kernel_id, shape_key));"
    "CREATE TABLE bench_runs (id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, created TEXT, git_commit TEXT,"
    " git_ref TEXT, build_options TEXT, device_id INTEGER REFERENCES devices(id), kind TEXT, subject TEXT, host TEXT,"
    " notes TEXT);"
    "CREATE TABLE bench_results (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES bench_runs(id),"
    " name TEXT NOT NULL, metric TEXT NOT NULL, unit TEXT, value REAL, spread REAL, n INTEGER,"
    " higher_is_better INTEGER, UNIQUE(run_id, name, metric));",
    /* 1 -> 2: the measured read bandwidth beside the copy bandwidth (NULL for
     * devices recorded before it was measured) */
    "ALTER TABLE devices ADD COLUMN read_gbps REAL;",
    /* 2 -> 3: whether the driver runs kernels on CPU cores (lavapipe, PoCL),
     * a feature of the similarity level (NULL for devices recorded before) */
    "ALTER TABLE devices ADD COLUMN cpu_device INTEGER;",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int db_fail(kiln_db *db, kiln_err *e, const char *what)
{
    return kiln_fail(e, KILN_E_DB, "%s: %s: %s", db->path, what, sqlite3_errmsg(db->h));
}

int db_exec(kiln_db *db, const char *sql, const char *what, kiln_err *e)
{
    char *msg = NULL;
    if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = kiln_fail(e, KILN_E_DB, "%s: %s: %s", db->path, what, msg ? msg : sqlite3_errmsg(db->h));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

int db_begin(kiln_db *db, kiln_err *e) { return db_exec(db, "BEGIN IMMEDIATE", "starting a transaction", e); }
int db_commit(kiln_db *db, kiln_err *e) { return db_exec(db, "COMMIT", "committing", e); }
void db_rollback(kiln_db *db) { sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL); }

void db_uuid(char out[33])
{
    kiln_rng r;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    kiln_rng_seed(&r, (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40) ^
                          (uint64_t)(uintptr_t)out);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)kiln_rng_u64(&r), (unsigned long long)kiln_rng_u64(&r));
}

void db_now(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int kiln_db_default_path(char *buf, size_t n)
{
    const char *env = getenv("KILN_DB");
    if (env && *env) {
        snprintf(buf, n, "%s", env);
        return 0;
    }
    const char *home = getenv("HOME");
    if (!home)
        return -1;
    snprintf(buf, n, "%s/.local/share/kiln/kiln.db", home);
    return 0;
}

static int mkdirs_for(const char *path)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 0;
    *slash = 0;
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(dir, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(dir, 0755) && errno != EEXIST ? -1 : 0;
}

/* The file's schema version (PRAGMA user_version), every step checked: a
 * file that is not a database fails here, before anything is written. */
static int read_version(kiln_db *db, int *version, kiln_err *e)
{
    sqlite3_stmt *st;
    *version = 0;
    if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, e, "reading the schema version (is this a SQLite database?)");
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return r == SQLITE_ROW ? 0 : db_fail(db, e, "reading the schema version (is this a SQLite database?)");
}

/* Count of rows `sql` answers (one integer), or < 0 on error. */
static int count_of(kiln_db *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

/* Is this file ours? Version 0 is a new file only when it holds nothing
 * (another program's SQLite file must never gain Kiln's tables); versions
 * 1..current must hold Kiln's tables; anything else is refused. */
static int check_kiln_file(kiln_db *db, int version, kiln_err *e)
{
    if (version < 0)
        return kiln_fail(e, KILN_E_DB, "%s: schema version %d is not a kiln schema version (0..%d)", db->path, version,
                         KILN_DB_SCHEMA_VERSION);
    if (version > KILN_DB_SCHEMA_VERSION)
        return kiln_fail(e, KILN_E_DB, "%s: schema version %d is newer than this kiln understands (%d); upgrade kiln",
                         db->path, version, KILN_DB_SCHEMA_VERSION);
    if (version == 0) {
        int n = count_of(db, "SELECT COUNT(*) FROM sqlite_master");
        if (n < 0)
            return db_fail(db, e, "reading the schema (is this a SQLite database?)");
        if (n > 0)
            return kiln_fail(e, KILN_E_DB,
                             "%s: not a kiln database: it holds %d table(s)/index(es) of another program and no kiln "
                             "schema version; refusing to touch it",
                             db->path, n);
        return 0;
    }
    int n = count_of(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('devices', 'kernels',"
                         " 'sessions', 'trials', 'winners', 'bench_runs', 'bench_results')");
    if (n < 0)
        return db_fail(db, e, "reading the schema");
    if (n != 7)
        return kiln_fail(e, KILN_E_DB, "%s: not a kiln database: schema version %d but %d of kiln's 7 tables", db->path,
                         version, n);
    return 0;
}

static int migrate(kiln_db *db, int version, kiln_err *e)
{
    for (int v = version; v < N_MIGRATIONS; v++) {
        int rc = db_begin(db, e);
        if (rc)
            return rc;
        char what[64], bump[64];
        snprintf(what, sizeof what, "migrating the schema from version %d to %d", v, v + 1);
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v + 1);
        if ((rc = db_exec(db, migrations[v], what, e)) || (rc = db_exec(db, bump, what, e))) {
            db_rollback(db);
            return rc;
        }
        if ((rc = db_commit(db, e)))
            return rc;
    }
    return 0;
}

static int db_new(kiln_db **out, const char *path, kiln_err *e)
{
    kiln_db *db = calloc(1, sizeof *db);
    *out = db;
    if (!db)
        return kiln_fail(e, KILN_E_NOMEM, "db: no memory");
    if (path)
        snprintf(db->path, sizeof db->path, "%s", path);
    else if (kiln_db_default_path(db->path, sizeof db->path)) {
        free(db);
        *out = NULL;
        return kiln_fail(e, KILN_E_DB, "db: no --db, no $KILN_DB and no $HOME");
    }
    return 0;
}

int kiln_db_open(kiln_db **out, const char *path, kiln_err *e)
{
    *out = NULL;
    kiln_db *db;
    int rc = db_new(&db, path, e);
    if (rc)
        return rc;
    if (mkdirs_for(db->path)) {
        rc = kiln_fail(e, KILN_E_IO, "%s: cannot create its directory: %s", db->path, strerror(errno));
        free(db);
        return rc;
    }
    if (sqlite3_open_v2(db->path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        rc = db_fail(db, e, "opening");
        kiln_db_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db->h, 10000);
    /* what the file is, before anything is written to it */
    int version;
    if ((rc = read_version(db, &version, e)) || (rc = check_kiln_file(db, version, e))) {
        kiln_db_close(db);
        return rc;
    }
    /* journal_mode answers a row; read it so a non-database file fails here */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(db, e, "switching to WAL (is this a SQLite database?)");
        sqlite3_finalize(st);
        kiln_db_close(db);
        return rc;
    }
    sqlite3_finalize(st);
    if ((rc = db_exec(db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;", "setting pragmas", e)) ||
        (rc = migrate(db, version, e))) {
        kiln_db_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

/* "file:" URI of path with immutable=1 (percent-encoding what a URI
 * reserves), for a WAL file in a directory nobody may write. */
static void immutable_uri(const char *path, char *out, size_t n)
{
    size_t o = (size_t)snprintf(out, n, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p && o + 4 < n; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("/-_.~", *p))
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, n - o, "%%%02X", *p);
    }
    snprintf(out + o, n - o, "?immutable=1");
}

int kiln_db_open_readonly(kiln_db **out, const char *path, kiln_err *e)
{
    *out = NULL;
    kiln_db *db;
    int rc = db_new(&db, path, e);
    if (rc)
        return rc;
    struct stat sb;
    if (stat(db->path, &sb))
        rc = kiln_fail(e, KILN_E_IO, "%s: %s (reading never creates a database)", db->path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        rc = kiln_fail(e, KILN_E_IO, "%s: not a regular file", db->path);
    if (rc) {
        free(db);
        return rc;
    }
    int version = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        char uri[2200];
        if (attempt)
            immutable_uri(db->path, uri, sizeof uri);
        if (sqlite3_open_v2(attempt ? uri : db->path, &db->h,
                            SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX | (attempt ? SQLITE_OPEN_URI : 0),
                            NULL) != SQLITE_OK) {
            rc = db_fail(db, e, "opening read-only");
            kiln_db_close(db);
            return rc;
        }
        sqlite3_busy_timeout(db->h, 10000);
        kiln_err first = {0};
        if (!read_version(db, &version, &first))
            break;
        /* A WAL file needs its -shm beside it; where it is missing and the
         * directory is read-only (a release image), nobody can be writing
         * it: read it as immutable. */
        int ext = sqlite3_extended_errcode(db->h);
        sqlite3_close(db->h);
        db->h = NULL;
        if (attempt || (ext != SQLITE_CANTOPEN && (ext & 0xff) != SQLITE_READONLY && (ext & 0xff) != SQLITE_CANTOPEN)) {
            if (e)
                *e = first;
            free(db);
            return first.code;
        }
    }
    if ((rc = check_kiln_file(db, version, e))) {
        kiln_db_close(db);
        return rc;
    }
    if (version == 0) {
        rc = kiln_fail(e, KILN_E_DB, "%s: not a kiln database (empty: no schema)", db->path);
        kiln_db_close(db);
        return rc;
    }
    if (version < KILN_DB_SCHEMA_VERSION) {
        /* an older kiln file: migrate it once through a writing open (a
         * read-only file cannot be, and says so) */
        char p[sizeof db->path];
        memcpy(p, db->path, sizeof p);
        kiln_db_close(db);
        kiln_db *w;
        if ((rc = kiln_db_open(&w, p, e))) {
            kiln_err_wrap(e, "schema version %d needs migrating to %d", version, KILN_DB_SCHEMA_VERSION);
            return rc;
        }
        kiln_db_close(w);
        return kiln_db_open_readonly(out, p, e);
    }
    *out = db;
    return 0;
}

void kiln_db_close(kiln_db *db)
{
    if (!db)
        return;
    sqlite3_close(db->h);
    free(db);
}

const char *kiln_db_path(const kiln_db *db) { return db->path; }
sqlite3 *kiln_db_handle(kiln_db *db) { return db->h; }
void kiln_db_busy_timeout(kiln_db *db, int ms) { sqlite3_busy_timeout(db->h, ms); }

/* ---- writes ---- */

static int step_done(kiln_db *db, sqlite3_stmt *st, const char *what, kiln_err *e)
{
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    return r == SQLITE_DONE || r == SQLITE_ROW ? 0 : db_fail(db, e, what);
}

static int64_t select_id(kiln_db *db, const char *sql, const char *a, const char *b)
{
    sqlite3_stmt *st;
    int64_t id = -1;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
    if (b)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return id;
}

int kiln_db_device_upsert(kiln_db *db, const kiln_fingerprint *fp, int64_t *id, kiln_err *e)
{
    char key[512], now[32];
    kiln_fingerprint_key(fp, key, sizeof key);
    db_now(now);
    sqlite3_stmt *st;
    const char *sql =
        "INSERT INTO devices(fingerprint, backend, vendor, pci_vendor_id, pci_device_id, name, arch, driver_version,"
        " compiler_version, compute_units, subgroup_size, local_mem, max_workgroup, memory, copy_gbps, first_seen,"
        " last_seen, read_gbps, cpu_device) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?16,?17,?18)"
        " ON CONFLICT(fingerprint) DO UPDATE SET last_seen = ?16, cpu_device = ?18,"
        " copy_gbps = CASE WHEN ?15 > 0 THEN ?15 ELSE copy_gbps END,"
        " read_gbps = CASE WHEN ?17 > 0 THEN ?17 ELSE read_gbps END";
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, e, "recording a device");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, kiln_backend_name(fp->backend), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, fp->vendor, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, fp->vendor_id);
    sqlite3_bind_int64(st, 5, fp->device_id);
    sqlite3_bind_text(st, 6, fp->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, fp->arch, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, fp->driver_version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 9, fp->compiler_version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 10, fp->compute_units);
    sqlite3_bind_int64(st, 11, fp->subgroup_size);
    sqlite3_bind_int64(st, 12, (sqlite3_int64)fp->local_mem_bytes);
    sqlite3_bind_int64(st, 13, fp->max_workgroup);
    sqlite3_bind_int64(st, 14, (sqlite3_int64)fp->memory_bytes);
    sqlite3_bind_double(st, 15, fp->copy_gbps);
    sqlite3_bind_text(st, 16, now, -1, SQLITE_TRANSIENT);
    if (fp->read_gbps > 0)
        sqlite3_bind_double(st, 17, fp->read_gbps);
    else
        sqlite3_bind_null(st, 17); /* not measured: unknown, never 0 GB/s */
    sqlite3_bind_int(st, 18, fp->cpu_device || fp->backend == KILN_CPU);
    int rc = step_done(db, st, "recording a device", e);
    if (!rc && (*id = select_id(db, "SELECT id FROM devices WHERE fingerprint = ?1", key, NULL)) < 0)
        rc = db_fail(db, e, "reading a device id");
    return rc;
}

int kiln_db_kernel_upsert(kiln_db *db, const char *name, const char *hash, int64_t *id, kiln_err *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, "INSERT OR IGNORE INTO kernels(name, source_hash) VALUES(?1, ?2)", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(db, e, "recording a kernel");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_TRANSIENT);
    int rc = step_done(db, st, "recording a kernel", e);
    if (!rc && (*id = select_id(db, "SELECT id FROM kernels WHERE name = ?1 AND source_hash = ?2", name, hash)) < 0)
        rc = db_fail(db, e, "reading a kernel id");
    return rc;
}

int kiln_db_session_begin(kiln_db *db, int64_t device_id, const char *strategy, const char *budget, const char *args,
                          int64_t *id, kiln_err *e)
{
    char uuid[33], now[32], host[64] = "";
    db_uuid(uuid);
    db_now(now);
    gethostname(host, sizeof host - 1);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h,
                           "INSERT INTO sessions(uuid, started, device_id, strategy, budget, git_commit, host, args,"
                           " status) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'running')",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, e, "starting a session");
    sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, device_id);
    sqlite3_bind_text(st, 4, strategy, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, budget, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, kiln_git_commit, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, host, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, args, -1, SQLITE_TRANSIENT);
    int rc = step_done(db, st, "starting a session", e);
    if (!rc)
        *id = sqlite3_last_insert_rowid(db->h);
    return rc;
}

int kiln_db_session_resume(kiln_db *db, int64_t id, int64_t device_id, kiln_err *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, "SELECT device_id FROM sessions WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, e, "looking up a session");
    sqlite3_bind_int64(st, 1, id);
    int found = sqlite3_step(st) == SQLITE_ROW;
    int64_t dev = found ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (!found)
        return kiln_fail(e, KILN_E_INVALID, "%s: no session %lld to resume", db->path, (long long)id);
    if (dev != device_id)
        return kiln_fail(e, KILN_E_INVALID, "%s: session %lld was tuned on another device", db->path, (long long)id);
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE sessions SET status = 'running', ended = NULL WHERE id = %lld", (long long)id);
    return db_exec(db, sql, "resuming a session", e);
}

int kiln_db_session_end(kiln_db *db, int64_t id, const char *status, kiln_err *e)
{
    char now[32];
    db_now(now);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, "UPDATE sessions SET ended = ?1, status = ?2 WHERE id = ?3", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(db, e, "ending a session");
    sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, id);
    return step_done(db, st, "ending a session", e);
}

int kiln_db_trial_insert(kiln_db *db, const kiln_db_trial *t, int64_t *id, kiln_err *e)
{
    char now[32];
    db_now(now);
    int rc = db_begin(db, e);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h,
                           "INSERT OR IGNORE INTO trials(session_id, device_id, kernel_id, shape_key, config_json,"
                           " status, reason, median_ns, spread, n_samples, gbps, bw_ratio, err, created)"
                           " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, e, "recording a trial");
        db_rollback(db);
        return rc;
    }
    sqlite3_bind_int64(st, 1, t->session_id);
    sqlite3_bind_int64(st, 2, t->device_id);
    sqlite3_bind_int64(st, 3, t->kernel_id);
    sqlite3_bind_text(st, 4, t->shape_key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, t->config_json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, t->status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, t->reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 8, t->median_ns);
    sqlite3_bind_double(st, 9, t->spread);
    sqlite3_bind_int(st, 10, t->n_samples);
    sqlite3_bind_double(st, 11, t->gbps);
    sqlite3_bind_double(st, 12, t->bw_ratio);
    sqlite3_bind_double(st, 13, t->err);
    sqlite3_bind_text(st, 14, now, -1, SQLITE_TRANSIENT);
    if ((rc = step_done(db, st, "recording a trial", e))) {
        db_rollback(db);
        return rc;
    }
    if (id)
        *id = sqlite3_last_insert_rowid(db->h);
    return db_commit(db, e);
}

int kiln_db_trial_find(kiln_db *db, int64_t session_id, int64_t kernel_id, const char *shape_key,
                       const char *config_json, kiln_db_trial *t)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h,
                           "SELECT status, reason, median_ns, spread, n_samples, gbps, bw_ratio, err, device_id"
                           " FROM trials WHERE session_id = ?1 AND kernel_id = ?2 AND shape_key = ?3"
                           " AND config_json = ?4",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, session_id);
    sqlite3_bind_int64(st, 2, kernel_id);
    sqlite3_bind_text(st, 3, shape_key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, config_json, -1, SQLITE_TRANSIENT);
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        memset(t, 0, sizeof *t);
        t->session_id = session_id;
        t->kernel_id = kernel_id;
        snprintf(t->shape_key, sizeof t->shape_key, "%s", shape_key);
        snprintf(t->config_json, sizeof t->config_json, "%s", config_json);
        snprintf(t->status, sizeof t->status, "%s", (const char *)sqlite3_column_text(st, 0));
        const unsigned char *reason = sqlite3_column_text(st, 1);
        snprintf(t->reason, sizeof t->reason, "%s", reason ? (const char *)reason : "");
        t->median_ns = sqlite3_column_double(st, 2);
        t->spread = sqlite3_column_double(st, 3);
        t->n_samples = sqlite3_column_int(st, 4);
        t->gbps = sqlite3_column_double(st, 5);
        t->bw_ratio = sqlite3_column_double(st, 6);
        t->err = sqlite3_column_double(st, 7);
        t->device_id = sqlite3_column_int64(st, 8);
    }
    sqlite3_finalize(st);
    return found;
}

int kiln_db_winner_update(kiln_db *db, const kiln_db_winner *w, int *updated, kiln_err *e)
{
    char now[32];
    db_now(now);
    sqlite3_stmt *st;
    /* winners are per kernel id (name + source hash): a new source hash is a
     * new kernel id, so an old winner never beats a new source's */
    if (sqlite3_prepare_v2(db->h,
                           "INSERT INTO winners(device_id, kernel_id, shape_key, config_json, median_ns, default_ns,"
                           " speedup, margin, tie, trial_id, updated) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"
                           " ON CONFLICT(device_id, kernel_id, shape_key) DO UPDATE SET config_json = ?4,"
                           " median_ns = ?5, default_ns = ?6, speedup = ?7, margin = ?8, tie = ?9, trial_id = ?10,"
                           " updated = ?11 WHERE ?5 < winners.median_ns OR winners.config_json = ?4",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, e, "storing a winner");
    sqlite3_bind_int64(st, 1, w->device_id);
    sqlite3_bind_int64(st, 2, w->kernel_id);
    sqlite3_bind_text(st, 3, w->shape_key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, w->config_json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 5, w->median_ns);
    sqlite3_bind_double(st, 6, w->default_ns);
    sqlite3_bind_double(st, 7, w->speedup);
    sqlite3_bind_double(st, 8, w->margin);
    sqlite3_bind_int(st, 9, w->tie);
    if (w->trial_id > 0) /* 0: no trial row (imported or embedded winner) */
        sqlite3_bind_int64(st, 10, w->trial_id);
    else
        sqlite3_bind_null(st, 10);
    sqlite3_bind_text(st, 11, now, -1, SQLITE_TRANSIENT);
    int rc = step_done(db, st, "storing a winner", e);
    if (!rc && updated)
        *updated = sqlite3_changes(db->h) > 0;
    return rc;
}

int kiln_db_bench_run_insert(kiln_db *db, const kiln_db_bench_run *r, int64_t *id, kiln_err *e)
{
    char uuid[33], now[32];
    db_uuid(uuid);
    db_now(now);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h,
                           "INSERT INTO bench_runs(uuid, created, git_commit, git_ref, build_options, device_id, kind,"
                           " subject, host, notes) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, e, "recording a bench run");
    sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, r->git_commit, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, r->git_ref, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, r->build_options, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, r->device_id);
    sqlite3_bind_text(st, 7, r->kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, r->subject, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 9, r->host, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 10, r->notes, -1, SQLITE_TRANSIENT);
    int rc = step_done(db, st, "recording a bench run", e);
    if (!rc)
        *id = sqlite3_last_insert_rowid(db->h);
    return rc;
}

int kiln_db_bench_result_insert(kiln_db *db, int64_t run_id, const char *name, const char *metric, const char *unit,
                                double value, double spread, int n, int higher_is_better, kiln_err *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h,
                           "INSERT OR REPLACE INTO bench_results(run_id, name, metric, unit, value, spread, n,"
                           " higher_is_better) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, e, "recording a bench result");
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, metric, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, unit, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 5, value);
    sqlite3_bind_double(st, 6, spread);
    sqlite3_bind_int(st, 7, n);
    sqlite3_bind_int(st, 8, higher_is_better);
    return step_done(db, st, "recording a bench result", e);
}
