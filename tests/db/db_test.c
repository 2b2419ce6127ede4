/* tests/db/db_test.c - the tuning database as a specification:
 * migrations and newer-version refusal, trials and resume, winners only
 * improve, lookup levels and stale detection, JSON round trip, merge without
 * duplicates, prune keeps winners, a corrupt file is an error and stays
 * untouched, a locked file is a clear error, concurrent writers lose
 * nothing, and kill -9 loses no committed trial; a version-1 file gains the
 * devices' read bandwidth and keeps its rows and winners. */
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/db.h"
#include "tests/test.h"

static char dir[256];

static void path(char *out, const char *name) { snprintf(out, 512, "%s/%s", dir, name); }

static kiln_fingerprint fp_of(const char *name, const char *driver, const char *arch)
{
    kiln_fingerprint fp = {.backend = KILN_VULKAN, .vendor_id = 0x10de};
    snprintf(fp.vendor, sizeof fp.vendor, "NVIDIA");
    snprintf(fp.name, sizeof fp.name, "%s", name);
    snprintf(fp.driver_version, sizeof fp.driver_version, "%s", driver);
    snprintf(fp.arch, sizeof fp.arch, "%s", arch);
    return fp;
}

static int64_t add_trial(kiln_db *db, int64_t ses, int64_t dev, int64_t ker, const char *shape, const char *cfg,
                         double ns)
{
    kiln_db_trial t = {.session_id = ses, .device_id = dev, .kernel_id = ker, .median_ns = ns, .n_samples = 7};
    snprintf(t.shape_key, sizeof t.shape_key, "%s", shape);
    snprintf(t.config_json, sizeof t.config_json, "%s", cfg);
    snprintf(t.status, sizeof t.status, "ok");
    int64_t id = -1;
    kiln_err e = {0};
    CHECK_OK(kiln_db_trial_insert(db, &t, &id, &e), &e);
    return id;
}

static void winner(kiln_db *db, int64_t dev, int64_t ker, const char *shape, const char *cfg, double ns, int *upd)
{
    kiln_db_winner w = {.device_id = dev, .kernel_id = ker, .median_ns = ns, .default_ns = 2 * ns, .speedup = 2};
    snprintf(w.shape_key, sizeof w.shape_key, "%s", shape);
    snprintf(w.config_json, sizeof w.config_json, "%s", cfg);
    kiln_err e = {0};
    CHECK_OK(kiln_db_winner_update(db, &w, upd, &e), &e);
}

/* The similarity level: the distance is 0 for the same figures, symmetric
 * and grows with each difference; only a device of the same backend lends,
 * with the current source hash, and the nearest of several tuned
 * devices wins whatever their speed. */
static void test_similar(void)
{
    kiln_fingerprint pocl = {.backend = KILN_OPENCL, .cpu_device = 1, .compute_units = 2, .subgroup_size = 8,
                             .max_workgroup = 4096, .local_mem_bytes = 256 << 10, .read_gbps = 20};
    snprintf(pocl.vendor, sizeof pocl.vendor, "Portable Computing Language");
    snprintf(pocl.name, sizeof pocl.name, "cpu-haswell-Intel Xeon");
    snprintf(pocl.arch, sizeof pocl.arch, "pocl");
    kiln_fingerprint gpu = {.backend = KILN_OPENCL, .compute_units = 128, .subgroup_size = 32, .max_workgroup = 1024,
                            .local_mem_bytes = 48 << 10, .read_gbps = 900};
    snprintf(gpu.vendor, sizeof gpu.vendor, "NVIDIA Corporation");
    snprintf(gpu.name, sizeof gpu.name, "RTX 4090");
    snprintf(gpu.arch, sizeof gpu.arch, "sm_89");
    kiln_fingerprint lvp = {.backend = KILN_VULKAN, .cpu_device = 1, .compute_units = 2, .subgroup_size = 8,
                            .max_workgroup = 1024, .local_mem_bytes = 32 << 10, .read_gbps = 18};
    snprintf(lvp.vendor, sizeof lvp.vendor, "Mesa");
    snprintf(lvp.name, sizeof lvp.name, "llvmpipe (LLVM 15.0.6, 256 bits)");
    snprintf(lvp.arch, sizeof lvp.arch, "llvmpipe");
    CHECK(kiln_fingerprint_distance(&pocl, &pocl) == 0, "distance to itself %g", kiln_fingerprint_distance(&pocl, &pocl));
    double d1 = kiln_fingerprint_distance(&lvp, &pocl), d2 = kiln_fingerprint_distance(&lvp, &gpu);
    CHECK(d1 == kiln_fingerprint_distance(&pocl, &lvp), "the distance is not symmetric");
    CHECK(d1 < d2, "lavapipe is nearer the GPU (%g) than PoCL (%g)", d2, d1);
    kiln_fingerprint slower = pocl;
    slower.read_gbps = 5;
    CHECK(kiln_fingerprint_distance(&pocl, &slower) == 1, "a 4x bandwidth gap: %g, want 0.5 x log2(4) = 1",
          kiln_fingerprint_distance(&pocl, &slower));

    char p[512];
    path(p, "similar.db");
    kiln_db *db;
    kiln_err e = {0};
    CHECK_OK(kiln_db_open(&db, p, &e), &e);
    int64_t dp, dg, kcl, kvk, ses;
    CHECK_OK(kiln_db_device_upsert(db, &pocl, &dp, &e), &e);
    CHECK_OK(kiln_db_device_upsert(db, &gpu, &dg, &e), &e);
    CHECK_OK(kiln_db_kernel_upsert(db, "gemv_int4", "cl-hash", &kcl, &e), &e);
    CHECK_OK(kiln_db_kernel_upsert(db, "gemv_int4", "vk-hash", &kvk, &e), &e);
    CHECK_OK(kiln_db_session_begin(db, dp, "random", "8", "", &ses, &e), &e);
    int upd;
    winner(db, dg, kcl, "m64.k64", "{\"wg\":256}", 10, &upd);  /* the GPU: faster, but far */
    winner(db, dp, kcl, "m64.k64", "{\"wg\":32}", 900, &upd);  /* PoCL: slower, but near */
    kiln_db_match m;
    /* another backend never lends: PoCL's winners ran at 0.17-0.45x of
     * lavapipe's own default (bench/results/similarity.md) */
    CHECK_OK(kiln_db_lookup(db, &lvp, "gemv_int4", "vk-hash", "m64.k64", &m, &e), &e);
    CHECK(m.level == KILN_MATCH_DEFAULT, "lavapipe borrowed %s from another backend (%s)", m.config_json, m.device);
    /* a second PoCL (another cpu and arch string, half the bandwidth): the nearest of its
     * backend's tuned devices lends, not the faster GPU */
    kiln_fingerprint pocl2 = pocl;
    snprintf(pocl2.name, sizeof pocl2.name, "cpu-zen3-AMD EPYC");
    snprintf(pocl2.arch, sizeof pocl2.arch, "pocl-zen3"); /* else the vendor/arch level answers first */
    pocl2.read_gbps = 10;
    double d3 = kiln_fingerprint_distance(&pocl2, &pocl);
    CHECK_OK(kiln_db_lookup(db, &pocl2, "gemv_int4", "cl-hash-old", "m64.k64", &m, &e), &e);
    CHECK(m.level == KILN_MATCH_DEFAULT, "a winner of another source hash was borrowed: %s", m.config_json);
    CHECK_OK(kiln_db_lookup(db, &pocl2, "gemv_int4", "cl-hash", "m64.k64", &m, &e), &e);
    CHECK(m.level == KILN_MATCH_SIMILAR && !strcmp(m.config_json, "{\"wg\":32}") && m.distance == d3 &&
              strstr(m.device, "cpu-haswell"),
          "second PoCL: level %s config %s from %s at %g (want PoCL's {\"wg\":32} at %g)", kiln_match_name(m.level),
          m.config_json, m.device, m.distance, d3);
    CHECK_OK(kiln_db_lookup(db, &gpu, "gemv_int4", "cl-hash", "m64.k64", &m, &e), &e);
    CHECK(m.level == KILN_MATCH_EXACT, "the tuned device itself: level %s", kiln_match_name(m.level));
    kiln_db_close(db);
}

static void test_basics_and_lookup(void)
{
    char p[512];
    path(p, "a.db");
    kiln_db *db;
    kiln_err e = {0};
    CHECK_OK(kiln_db_open(&db, p, &e), &e);
    kiln_fingerprint a = fp_of("RTX 4090", "550.1", "sm_89");
    int64_t dev, ker, ker_old, ses;
    CHECK_OK(kiln_db_device_upsert(db, &a, &dev, &e), &e);
    int64_t again;
    CHECK_OK(kiln_db_device_upsert(db, &a, &again, &e), &e);
    CHECK(again == dev, "device upsert created a second row");
    CHECK_OK(kiln_db_kernel_upsert(db, "gemv_int4", "hash-new", &ker, &e), &e);
    CHECK_OK(kiln_db_kernel_upsert(db, "gemv_int4", "hash-old", &ker_old, &e), &e);
    CHECK_OK(kiln_db_session_begin(db, dev, "random", "8 trials", "tune", &ses, &e), &e);
    add_trial(db, ses, dev, ker, "m4096.k4096.q4f16_1.g32", "{\"wg\":64}", 500);
    int64_t t2 = add_trial(db, ses, dev, ker, "m4096.k4096.q4f16_1.g32", "{\"wg\":128}", 400);
    add_trial(db, ses, dev, ker, "m4096.k4096.q4f16_1.g32", "{\"wg\":128}", 999); /* duplicate: ignored */
    kiln_db_trial t;
    CHECK(kiln_db_trial_find(db, ses, ker, "m4096.k4096.q4f16_1.g32", "{\"wg\":128}", &t) == 1 && t.median_ns == 400,
          "resume lookup: the first measurement stays");
    CHECK(kiln_db_trial_find(db, ses, ker, "m4096.k4096.q4f16_1.g32", "{\"wg\":256}", &t) == 0, "unmeasured config");
    (void)t2;
    int upd = 0;
    winner(db, dev, ker, "m4096.k4096.q4f16_1.g32", "{\"wg\":128}", 400, &upd);
    CHECK(upd, "first winner stored");
    winner(db, dev, ker, "m4096.k4096.q4f16_1.g32", "{\"wg\":32}", 450, &upd);
    CHECK(!upd, "a slower winner must not replace a faster one");
    winner(db, dev, ker, "m4096.k4096.q4f16_1.g32", "{\"wg\":256}", 300, &upd);
    CHECK(upd, "a faster winner replaces");
    /* a stale winner (old source hash) on another shape */
    winner(db, dev, ker_old, "m11008.k4096.q4f16_1.g32", "{\"wg\":512}", 100, &upd);

    kiln_db_match m;
    CHECK_OK(kiln_db_lookup(db, &a, "gemv_int4", "hash-new", "m4096.k4096.q4f16_1.g32", &m, &e), &e);
    CHECK(m.level == KILN_MATCH_EXACT && !strcmp(m.config_json, "{\"wg\":256}"), "exact: level %s config %s",
          kiln_match_name(m.level), m.config_json);
    kiln_fingerprint other_driver = fp_of("RTX 4090", "560.9", "sm_89");
    CHECK_OK(kiln_db_lookup(db, &other_driver, "gemv_int4", "hash-new", "m4096.k4096.q4f16_1.g32", &m, &e), &e);
    CHECK(m.level == KILN_MATCH_DEVICE, "other driver: level %s", kiln_match_name(m.level));
    kiln_fingerprint sibling = fp_of("RTX 4080", "550.1", "sm_89");
    CHECK_OK(kiln_db_lookup(db, &sibling, "gemv_int4", "hash-new", "m4096.k4096.q4f16_1.g32", &m, &e), &e);
    CHECK(m.level == KILN_MATCH_ARCH, "same arch: level %s", kiln_match_name(m.level));
    CHECK_OK(kiln_db_lookup(db, &a, "gemv_int4", "hash-new", "m4096.k11008.q4f16_1.g32", &m, &e), &e);
    CHECK(m.level == KILN_MATCH_SHAPE && !strcmp(m.shape_key, "m4096.k4096.q4f16_1.g32"), "nearest shape: %s %s",
          kiln_match_name(m.level), m.shape_key);
    CHECK_OK(kiln_db_lookup(db, &a, "gemv_int4", "hash-new", "m11008.k4096.q4f16_1.g32", &m, &e), &e);
    CHECK(m.stale && strcmp(m.config_json, "{\"wg\":512}"), "the stale winner must be skipped and reported");
    CHECK(m.level != KILN_MATCH_EXACT, "stale used at exact level");
    kiln_fingerprint amd = fp_of("RX 7900", "mesa", "gfx1100");
    snprintf(amd.vendor, sizeof amd.vendor, "AMD");
    CHECK_OK(kiln_db_lookup(db, &amd, "gemv_int4", "hash-new", "m4096.k4096.q4f16_1.g32", &m, &e), &e);
    /* never tuned: the nearest tuned device's winner (vendor and arch differ: distance 2) */
    CHECK(m.level == KILN_MATCH_SIMILAR && !strcmp(m.config_json, "{\"wg\":256}") && strstr(m.device, "RTX 4090") &&
              m.distance == 2 && strstr(m.note, "similar to vulkan RTX 4090"),
          "unknown device: level %s config %s from %s distance %g note %s", kiln_match_name(m.level), m.config_json,
          m.device, m.distance, m.note);
    CHECK_OK(kiln_db_lookup(db, &amd, "gemv_int4", "hash-new", "m123.k4096.q4f16_1.g32", &m, &e), &e);
    CHECK(m.level == KILN_MATCH_DEFAULT, "a shape nobody tuned: level %s", kiln_match_name(m.level));
    CHECK_OK(kiln_db_session_end(db, ses, "done", &e), &e);

    /* JSON round trip: export -> import into empty -> export is identical; import twice adds nothing */
    char *j1 = kiln_db_export_string(db, &e);
    char p2[512];
    path(p2, "b.db");
    kiln_db *b;
    CHECK_OK(kiln_db_open(&b, p2, &e), &e);
    CHECK_OK(kiln_db_import(b, j1, &e), &e);
    CHECK_OK(kiln_db_import(b, j1, &e), &e);
    char *j2 = kiln_db_export_string(b, &e);
    CHECK(j1 && j2 && !strcmp(j1, j2), "export/import/export is not lossless");
    free(j2);
    /* a release build's embedded winners: imported into an in-memory
     * database (src/engine_cli.c), looked up at the same levels */
    kiln_db *mem;
    CHECK_OK(kiln_db_open(&mem, ":memory:", &e), &e);
    CHECK_OK(kiln_db_import(mem, j1, &e), &e);
    kiln_db_match mm;
    CHECK_OK(kiln_db_lookup(mem, &amd, "gemv_int4", "hash-new", "m4096.k4096.q4f16_1.g32", &mm, &e), &e);
    CHECK(mm.level == KILN_MATCH_SIMILAR, "in-memory: unknown device level %s", kiln_match_name(mm.level));
    j2 = kiln_db_export_string(mem, &e);
    CHECK(j1 && j2 && !strcmp(j1, j2), "in-memory import/export is not lossless");
    CHECK(access(":memory:", F_OK) != 0, "an in-memory database left a file named :memory:");
    free(j2);
    kiln_db_close(mem);
    /* merge twice: no duplicates, the faster winner stays */
    char p3[512];
    path(p3, "c.db");
    kiln_db *c;
    CHECK_OK(kiln_db_open(&c, p3, &e), &e);
    int64_t cdev, cker, cses;
    kiln_db_device_upsert(c, &a, &cdev, &e);
    kiln_db_kernel_upsert(c, "gemv_int4", "hash-new", &cker, &e);
    kiln_db_session_begin(c, cdev, "anneal", "4", "tune", &cses, &e);
    add_trial(c, cses, cdev, cker, "m4096.k4096.q4f16_1.g32", "{\"wg\":32}", 250);
    winner(c, cdev, cker, "m4096.k4096.q4f16_1.g32", "{\"wg\":32}", 250, &upd);
    kiln_db_close(c);
    CHECK_OK(kiln_db_merge(b, p3, &e), &e);
    CHECK_OK(kiln_db_merge(b, p3, &e), &e);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(kiln_db_handle(b), "SELECT (SELECT COUNT(*) FROM trials), (SELECT COUNT(*) FROM sessions),"
                                          " (SELECT config_json FROM winners WHERE shape_key LIKE 'm4096.k4096%')",
                       -1, &st, NULL);
    sqlite3_step(st);
    CHECK(sqlite3_column_int(st, 0) == 3, "merged trials: %d (want 3)", sqlite3_column_int(st, 0));
    CHECK(sqlite3_column_int(st, 1) == 2, "merged sessions: %d (want 2)", sqlite3_column_int(st, 1));
    CHECK(!strcmp((const char *)sqlite3_column_text(st, 2), "{\"wg\":32}"), "merge kept the slower winner");
    sqlite3_finalize(st);
    /* prune: keep 1 per (device, kernel, shape), the winners' trials stay */
    int deleted = 0;
    CHECK_OK(kiln_db_prune(b, 0, 1, &deleted, &e), &e);
    CHECK(deleted == 2, "prune deleted %d (want 2)", deleted);
    kiln_db_close(b);
    free(j1);
    kiln_db_close(db);
}

static void test_versions_and_bad_files(void)
{
    char p[512];
    kiln_err e = {0};
    kiln_db *db;
    /* a database from the future */
    path(p, "future.db");
    sqlite3 *h;
    sqlite3_open(p, &h);
    sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL);
    sqlite3_close(h);
    CHECK(kiln_db_open(&db, p, &e) == KILN_E_DB && strstr(e.msg, "newer"), "newer schema: %s", e.msg);
    /* schema versions out of range: refused, never used as an index */
    path(p, "negative.db");
    sqlite3_open(p, &h);
    sqlite3_exec(h, "PRAGMA user_version = -1", NULL, NULL, NULL);
    sqlite3_close(h);
    CHECK(kiln_db_open(&db, p, &e) == KILN_E_DB && strstr(e.msg, "-1 is not a kiln schema"), "version -1: %s", e.msg);
    CHECK(kiln_db_open_readonly(&db, p, &e) == KILN_E_DB && strstr(e.msg, "-1 is not a kiln schema"),
          "version -1 read-only: %s", e.msg);
    /* an empty v0 database migrates to the current version */
    path(p, "old.db");
    sqlite3_open(p, &h);
    sqlite3_exec(h, "PRAGMA user_version = 0", NULL, NULL, NULL);
    sqlite3_close(h);
    e.code = 0;
    CHECK_OK(kiln_db_open(&db, p, &e), &e);
    kiln_db_close(db); /* NULL when the open failed */
    /* another program's SQLite file (tables, no kiln version) is refused
     * by every open, and gains no table */
    path(p, "foreign.db");
    sqlite3_open(p, &h);
    sqlite3_exec(h, "CREATE TABLE unrelated(x)", NULL, NULL, NULL);
    sqlite3_close(h);
    CHECK(kiln_db_open(&db, p, &e) == KILN_E_DB && strstr(e.msg, "not a kiln database"), "foreign file: %s", e.msg);
    CHECK(kiln_db_open_readonly(&db, p, &e) == KILN_E_DB && strstr(e.msg, "not a kiln database"),
          "foreign file read-only: %s", e.msg);
    sqlite3_open(p, &h);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(h, "SELECT COUNT(*) FROM sqlite_master", -1, &q, NULL);
    CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 1, "tables were added to a foreign file");
    sqlite3_finalize(q);
    sqlite3_close(h);
    /* read-only: a missing file is an error and is not created; a kiln
     * file opens, reads, and refuses every write */
    path(p, "missing/x.db");
    CHECK(kiln_db_open_readonly(&db, p, &e) == KILN_E_IO && strstr(e.msg, "never creates"), "missing: %s", e.msg);
    path(p, "missing");
    CHECK(access(p, F_OK) != 0, "a read-only open created the directory");
    path(p, "old.db");
    CHECK_OK(kiln_db_open_readonly(&db, p, &e), &e);
    if (db) {
        kiln_fingerprint rf = fp_of("ro", "1", "x");
        int64_t rid;
        CHECK(kiln_db_device_upsert(db, &rf, &rid, &e) == KILN_E_DB && strstr(e.msg, "readonly"),
              "a write through a read-only handle: %s", e.msg);
        kiln_db_match rm;
        CHECK_OK(kiln_db_lookup(db, &rf, "gemv_int4", "h", "m1.k1", &rm, &e), &e);
        kiln_db_close(db);
    }
    /* a corrupt file: an error, and the file is byte-for-byte untouched */
    path(p, "corrupt.db");
    FILE *f = fopen(p, "wb");
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    e.code = 0;
    CHECK(kiln_db_open(&db, p, &e) == KILN_E_DB && strstr(e.msg, p), "corrupt file: %s", e.msg);
    char back[4096];
    f = fopen(p, "rb");
    size_t got = fread(back, 1, sizeof back, f);
    fclose(f);
    CHECK(got == sizeof junk && !memcmp(back, junk, sizeof junk), "the corrupt file was modified");
    /* a locked file: another connection holds a write lock longer than our busy timeout */
    path(p, "locked.db");
    CHECK_OK(kiln_db_open(&db, p, &e), &e);
    sqlite3_open(p, &h);
    sqlite3_exec(h, "BEGIN EXCLUSIVE", NULL, NULL, NULL);
    kiln_db_busy_timeout(db, 200);
    kiln_fingerprint fp = fp_of("x", "y", "z");
    int64_t id;
    int rc = kiln_db_device_upsert(db, &fp, &id, &e);
    CHECK(rc == KILN_E_DB && strstr(e.msg, "locked"), "locked db: rc %d %s", rc, e.msg);
    sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(h);
    CHECK_OK(kiln_db_device_upsert(db, &fp, &id, &e), &e);
    kiln_db_close(db);
}

/* Several processes insert trials into one file at once: every row lands. */
/* The read bandwidth column (schema 2): a version-1 file migrates with its
 * rows, winners and copy bandwidth intact and read_gbps unknown (NULL); an
 * upsert with a measurement stores it, one without keeps it; JSON carries it
 * as a REAL both ways; a version-1 export imports with it NULL. */
static void test_read_bandwidth_column(void)
{
    char p[512], q[512];
    kiln_err e = {0};
    kiln_db *db;
    path(p, "v1.db");
    kiln_fingerprint a = fp_of("RTX 3060", "535.2", "sm_86");
    a.copy_gbps = 300.5;
    int64_t dev, ker, ses;
    int upd;
    CHECK_OK(kiln_db_open(&db, p, &e), &e);
    CHECK_OK(kiln_db_device_upsert(db, &a, &dev, &e), &e);
    CHECK_OK(kiln_db_kernel_upsert(db, "gemv_int4", "h1", &ker, &e), &e);
    CHECK_OK(kiln_db_session_begin(db, dev, "random", "8", "", &ses, &e), &e);
    add_trial(db, ses, dev, ker, "m8.k8", "{\"wg\":64}", 100);
    winner(db, dev, ker, "m8.k8", "{\"wg\":64}", 100, &upd);
    kiln_db_close(db);
    /* make it the version-1 file an older kiln wrote: no read_gbps column */
    sqlite3 *h;
    sqlite3_open(p, &h);
    CHECK(sqlite3_exec(h, "ALTER TABLE devices DROP COLUMN cpu_device; ALTER TABLE devices DROP COLUMN read_gbps;"
                          " PRAGMA user_version = 1;", NULL, NULL, NULL) ==
              SQLITE_OK, "making a v1 file: %s", sqlite3_errmsg(h));
    sqlite3_close(h);

    CHECK_OK(kiln_db_open(&db, p, &e), &e);
    if (!db)
        return;
    sqlite3_stmt *st;
    sqlite3_prepare_v2(kiln_db_handle(db), "SELECT (SELECT user_version FROM pragma_user_version), copy_gbps,"
                       " typeof(read_gbps), name FROM devices", -1, &st, NULL);
    CHECK(sqlite3_step(st) == SQLITE_ROW, "no device row after the migration");
    CHECK(sqlite3_column_int(st, 0) == KILN_DB_SCHEMA_VERSION && KILN_DB_SCHEMA_VERSION == 3, "version %d",
          sqlite3_column_int(st, 0));
    CHECK(sqlite3_column_double(st, 1) == 300.5 && !strcmp((const char *)sqlite3_column_text(st, 2), "null") &&
              !strcmp((const char *)sqlite3_column_text(st, 3), "RTX 3060"),
          "migrated row: copy %g, read %s, name %s", sqlite3_column_double(st, 1), sqlite3_column_text(st, 2),
          sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    kiln_db_match m;
    CHECK_OK(kiln_db_lookup(db, &a, "gemv_int4", "h1", "m8.k8", &m, &e), &e);
    CHECK(m.level == KILN_MATCH_EXACT && !strcmp(m.config_json, "{\"wg\":64}"), "winner after migration: level %d %s",
          m.level, m.config_json);
    /* measured: stored; unmeasured later: kept */
    int64_t dev2;
    a.read_gbps = 32.0;
    CHECK_OK(kiln_db_device_upsert(db, &a, &dev2, &e), &e);
    a.read_gbps = 0;
    a.copy_gbps = 0;
    CHECK_OK(kiln_db_device_upsert(db, &a, &dev2, &e), &e);
    CHECK(dev2 == dev, "the device got a new id %lld (was %lld)", (long long)dev2, (long long)dev);
    const char *sql = "SELECT read_gbps, typeof(read_gbps), copy_gbps FROM devices";
    sqlite3_prepare_v2(kiln_db_handle(db), sql, -1, &st, NULL);
    CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_double(st, 0) == 32.0 &&
              !strcmp((const char *)sqlite3_column_text(st, 1), "real") && sqlite3_column_double(st, 2) == 300.5,
          "read %g (%s), copy %g", sqlite3_column_double(st, 0), sqlite3_column_text(st, 1),
          sqlite3_column_double(st, 2));
    sqlite3_finalize(st);
    /* JSON both ways: 32.0 stays a REAL */
    char *js = kiln_db_export_string(db, &e);
    CHECK(js && strstr(js, "\"read_gbps\""), "export lacks read_gbps");
    path(q, "v2-import.db");
    kiln_db *db2;
    CHECK_OK(kiln_db_open(&db2, q, &e), &e);
    CHECK_OK(kiln_db_import(db2, js, &e), &e);
    sqlite3_prepare_v2(kiln_db_handle(db2), sql, -1, &st, NULL);
    CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_double(st, 0) == 32.0 &&
              !strcmp((const char *)sqlite3_column_text(st, 1), "real"),
          "imported read %g (%s)", sqlite3_column_double(st, 0), sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    /* an export from a version-1 kiln: no read_gbps anywhere */
    const char *v1 = "{\"kiln_db_schema\":1,\"devices\":[{\"id\":7,\"fingerprint\":\"vulkan|X|1:2|Y|d|c\","
                     "\"backend\":\"vulkan\",\"name\":\"Y\",\"copy_gbps\":50}]}";
    CHECK_OK(kiln_db_import(db2, v1, &e), &e);
    sqlite3_prepare_v2(kiln_db_handle(db2), "SELECT typeof(read_gbps), copy_gbps FROM devices WHERE name = 'Y'", -1,
                       &st, NULL);
    CHECK(sqlite3_step(st) == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(st, 0), "null") &&
              sqlite3_column_double(st, 1) == 50,
          "v1 import: read %s, copy %g", sqlite3_column_text(st, 0), sqlite3_column_double(st, 1));
    sqlite3_finalize(st);
    free(js);
    kiln_db_close(db2);
    kiln_db_close(db);
}

static void test_concurrent_writers(void)
{
    char p[512];
    path(p, "concurrent.db");
    kiln_err e = {0};
    kiln_db *db;
    CHECK_OK(kiln_db_open(&db, p, &e), &e);
    kiln_fingerprint fp = fp_of("gpu", "1", "a");
    int64_t dev, ker, ses;
    kiln_db_device_upsert(db, &fp, &dev, &e);
    kiln_db_kernel_upsert(db, "gemv_int4", "h", &ker, &e);
    kiln_db_session_begin(db, dev, "random", "n", "t", &ses, &e);
    kiln_db_close(db);
    enum { WRITERS = 4, EACH = 60 };
    pid_t pids[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        if ((pids[w] = fork()) == 0) {
            kiln_db *cdb;
            kiln_err ce = {0};
            if (kiln_db_open(&cdb, p, &ce))
                _exit(1);
            for (int i = 0; i < EACH; i++) {
                char cfg[64];
                snprintf(cfg, sizeof cfg, "{\"w\":%d,\"i\":%d}", w, i);
                kiln_db_trial t = {.session_id = ses, .device_id = dev, .kernel_id = ker, .median_ns = i + 1};
                snprintf(t.shape_key, sizeof t.shape_key, "s");
                snprintf(t.config_json, sizeof t.config_json, "%s", cfg);
                snprintf(t.status, sizeof t.status, "ok");
                if (kiln_db_trial_insert(cdb, &t, NULL, &ce))
                    _exit(2);
            }
            kiln_db_close(cdb);
            _exit(0);
        }
    }
    for (int w = 0; w < WRITERS; w++) {
        int st;
        waitpid(pids[w], &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %d failed (status %d)", w, st);
    }
    CHECK_OK(kiln_db_open(&db, p, &e), &e);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(kiln_db_handle(db), "SELECT COUNT(*) FROM trials", -1, &st, NULL);
    sqlite3_step(st);
    CHECK(sqlite3_column_int(st, 0) == WRITERS * EACH, "concurrent writers: %d of %d rows", sqlite3_column_int(st, 0),
          WRITERS * EACH);
    sqlite3_finalize(st);
    kiln_db_close(db);
}

/* kill -9 a writer mid-session: every trial it reported committed is there. */
static void test_kill9(void)
{
    char p[512];
    path(p, "kill9.db");
    kiln_err e = {0};
    kiln_db *db;
    CHECK_OK(kiln_db_open(&db, p, &e), &e);
    kiln_fingerprint fp = fp_of("gpu", "1", "a");
    int64_t dev, ker, ses;
    kiln_db_device_upsert(db, &fp, &dev, &e);
    kiln_db_kernel_upsert(db, "gemv_int4", "h", &ker, &e);
    kiln_db_session_begin(db, dev, "random", "n", "t", &ses, &e);
    kiln_db_close(db);
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        kiln_db *cdb;
        kiln_err ce = {0};
        if (kiln_db_open(&cdb, p, &ce))
            _exit(1);
        for (int i = 0;; i++) {
            kiln_db_trial t = {.session_id = ses, .device_id = dev, .kernel_id = ker, .median_ns = i + 1};
            snprintf(t.shape_key, sizeof t.shape_key, "s");
            snprintf(t.config_json, sizeof t.config_json, "{\"i\":%d}", i);
            snprintf(t.status, sizeof t.status, "ok");
            if (kiln_db_trial_insert(cdb, &t, NULL, &ce))
                _exit(2);
            if (write(fds[1], &i, sizeof i) != sizeof i) /* reported only after COMMIT returned */
                _exit(3);
        }
    }
    close(fds[1]);
    int last = -1, v;
    while (last < 150 && read(fds[0], &v, sizeof v) == sizeof v)
        last = v;
    kill(pid, SIGKILL);
    while (read(fds[0], &v, sizeof v) == sizeof v)
        last = v; /* anything reported before the kill */
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st), "the writer was not killed");
    CHECK_OK(kiln_db_open(&db, p, &e), &e);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(kiln_db_handle(db), "PRAGMA integrity_check", -1, &q, NULL);
    sqlite3_step(q);
    CHECK(!strcmp((const char *)sqlite3_column_text(q, 0), "ok"), "integrity_check: %s", sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_prepare_v2(kiln_db_handle(db), "SELECT COUNT(*) FROM trials WHERE config_json = ?1", -1, &q, NULL);
    int missing = 0;
    for (int i = 0; i <= last; i++) {
        char cfg[32];
        snprintf(cfg, sizeof cfg, "{\"i\":%d}", i);
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, cfg, -1, SQLITE_TRANSIENT);
        sqlite3_step(q);
        missing += sqlite3_column_int(q, 0) != 1;
    }
    sqlite3_finalize(q);
    CHECK(last >= 150 && missing == 0, "kill -9: %d of %d committed trials missing", missing, last + 1);
    fprintf(stderr, "kill -9 after %d committed trials: none lost\n", last + 1);
    kiln_db_close(db);
}

/* Lookups filter in SQL (issue 9, item 12): with 300 faster winners of
 * other shapes on the device, the exact shape is still found exactly, and
 * a stale winner of the shape among them is reported, not used. */
static void test_lookup_many_winners(void)
{
    char p[512];
    path(p, "many.db");
    kiln_db *db;
    kiln_err e = {0};
    CHECK_OK(kiln_db_open(&db, p, &e), &e);
    kiln_fingerprint a = fp_of("RTX 4090", "550.1", "sm_89");
    int64_t dev, ker, ker_old;
    CHECK_OK(kiln_db_device_upsert(db, &a, &dev, &e), &e);
    CHECK_OK(kiln_db_kernel_upsert(db, "gemv_int4", "hash-new", &ker, &e), &e);
    CHECK_OK(kiln_db_kernel_upsert(db, "gemv_int4", "hash-old", &ker_old, &e), &e);
    int upd;
    for (int i = 0; i < 300; i++) {
        char shape[64], cfg[32];
        snprintf(shape, sizeof shape, "m%d.k4096.q4f16_1.g32", 100 + i);
        snprintf(cfg, sizeof cfg, "{\"wg\":%d}", i);
        winner(db, dev, ker, shape, cfg, 10 + i, &upd); /* all faster than the one looked up */
    }
    winner(db, dev, ker_old, "m99999.k4096.q4f16_1.g32", "{\"wg\":7}", 1, &upd);
    winner(db, dev, ker, "m99999.k4096.q4f16_1.g32", "{\"wg\":999}", 5000, &upd);
    kiln_db_match m;
    CHECK_OK(kiln_db_lookup(db, &a, "gemv_int4", "hash-new", "m99999.k4096.q4f16_1.g32", &m, &e), &e);
    CHECK(m.level == KILN_MATCH_EXACT && !strcmp(m.config_json, "{\"wg\":999}"),
          "past 256 winners: level %s config %s (want exact {\"wg\":999})", kiln_match_name(m.level), m.config_json);
    CHECK(!m.stale, "a stale winner was reported although the current one matched");
    /* the nearest shape is searched over every winner: m399 is the 300th */
    CHECK_OK(kiln_db_lookup(db, &a, "gemv_int4", "hash-new", "m405.k4096.q4f16_1.g32", &m, &e), &e);
    CHECK(m.level == KILN_MATCH_SHAPE && !strcmp(m.shape_key, "m399.k4096.q4f16_1.g32"), "nearest: %s %s",
          kiln_match_name(m.level), m.shape_key);
    kiln_db_close(db);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/kiln-db-test-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    test_basics_and_lookup();
    test_similar();
    test_versions_and_bad_files();
    test_lookup_many_winners();
    test_read_bandwidth_column();
    test_concurrent_writers();
    test_kill9();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", dir);
    return test_result();
}
