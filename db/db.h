/* db/db.h - the tuning database (SQLite).
 *
 * Owns: schema + migrations (PRAGMA user_version), devices, kernels,
 * sessions, trials, winners, bench runs/results; lookups for consumers;
 * JSON export/import; merge, diff and prune.
 * Invariants: WAL mode, a busy timeout, one transaction per trial, foreign
 * keys on. A file from a newer schema is refused; an existing file is never
 * recreated (a corrupt file is an error, not a reset). Sessions and bench
 * runs carry a random uuid so imports and merges never duplicate them. */
#ifndef KILN_DB_DB_H
#define KILN_DB_DB_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "devices/device.h"

#define KILN_DB_SCHEMA_VERSION 3

typedef struct kiln_db kiln_db;

/* path NULL: $KILN_DB, else ~/.local/share/kiln/kiln.db (directory and
 * file created). Another program's SQLite file (tables but no kiln schema
 * version) and a schema version out of 0..KILN_DB_SCHEMA_VERSION are refused
 * before anything is written. */
int kiln_db_open(kiln_db **out, const char *path, kiln_err *e);
/* For commands that only read (show, best, export, diff, merge sources,
 * the engine's lookups): the file must exist and be a kiln database; it is
 * opened SQLITE_OPEN_READONLY (a WAL file in an unwritable directory as
 * immutable), so a read-only file or image works and nothing is ever
 * created or written. The one exception: an older kiln schema is migrated
 * first when the file is writable (else refused with a message). */
int kiln_db_open_readonly(kiln_db **out, const char *path, kiln_err *e);
void kiln_db_close(kiln_db *db);
const char *kiln_db_path(const kiln_db *db);
sqlite3 *kiln_db_handle(kiln_db *db);
int kiln_db_default_path(char *buf, size_t n);
/* Sets the busy timeout in ms (default 10000). */
void kiln_db_busy_timeout(kiln_db *db, int ms);

int kiln_db_device_upsert(kiln_db *db, const kiln_fingerprint *fp, int64_t *id, kiln_err *e);
int kiln_db_kernel_upsert(kiln_db *db, const char *name, const char *source_hash, int64_t *id, kiln_err *e);

int kiln_db_session_begin(kiln_db *db, int64_t device_id, const char *strategy, const char *budget, const char *args,
                          int64_t *id, kiln_err *e);
/* Reopens session id for more trials; it must belong to device_id. */
int kiln_db_session_resume(kiln_db *db, int64_t id, int64_t device_id, kiln_err *e);
int kiln_db_session_end(kiln_db *db, int64_t id, const char *status, kiln_err *e);

typedef struct kiln_db_trial {
    int64_t session_id, device_id, kernel_id;
    char shape_key[128];
    char config_json[512];
    char status[24];       /* ok, invalid, compile_error, wrong_result, crash, timeout, device_error */
    char reason[512];
    double median_ns, spread, gbps, bw_ratio, err;
    int n_samples;
} kiln_db_trial;

/* One transaction; a duplicate (session, kernel, shape, config) is ignored. */
int kiln_db_trial_insert(kiln_db *db, const kiln_db_trial *t, int64_t *id, kiln_err *e);
/* 1 and *t filled if the session already has this trial, 0 if not, < 0 on error. */
int kiln_db_trial_find(kiln_db *db, int64_t session_id, int64_t kernel_id, const char *shape_key,
                       const char *config_json, kiln_db_trial *t);

typedef struct kiln_db_winner {
    int64_t device_id, kernel_id, trial_id;
    char shape_key[128];
    char config_json[512];
    double median_ns, default_ns, speedup, margin;
    int tie;
} kiln_db_winner;

/* Stores w unless the stored winner is faster (and from the same source
 * hash); *updated says which. */
int kiln_db_winner_update(kiln_db *db, const kiln_db_winner *w, int *updated, kiln_err *e);

typedef enum kiln_match_level {
    KILN_MATCH_EXACT = 0,  /* same device, driver and compiler */
    KILN_MATCH_DEVICE,     /* same device, another driver/compiler */
    KILN_MATCH_ARCH,       /* same backend, vendor and architecture */
    KILN_MATCH_SHAPE,      /* same device, the nearest tuned shape */
    KILN_MATCH_SIMILAR,    /* the nearest tuned device's winner for this shape (kiln_fingerprint_distance);
                            * consumers verify it on this device before use */
    KILN_MATCH_DEFAULT,    /* nothing usable: the default config */
} kiln_match_level;

typedef struct kiln_db_match {
    int level;
    char config_json[512];
    char shape_key[128];   /* the shape the winner was tuned for */
    char device[160];      /* the device it was tuned on */
    double median_ns;
    int stale;             /* a winner from another source hash was skipped */
    char note[256];
    double distance;       /* KILN_MATCH_SIMILAR: the fingerprint distance to the device it was tuned on */
} kiln_db_match;

const char *kiln_match_name(int level);
/* Finds the config for (kernel, shape) on fp, trying the levels in order;
 * hash is the kernel's current source hash on fp's backend (a winner of
 * another is stale). The similarity level considers devices of fp's backend
 * only: borrowing across backends measured 0.17-0.45x of the borrower's own
 * default (bench/results/similarity.md), so it is not done. */
int kiln_db_lookup(kiln_db *db, const kiln_fingerprint *fp, const char *kernel, const char *source_hash,
                   const char *shape_key, kiln_db_match *m, kiln_err *e);

/* How unlike two devices are, for the similarity level (db/db_similar.c):
 * 0 for the same figures, growing with each difference: backend 3, kind
 * (a cpu driver vs a GPU) 2, vendor 1, architecture / cpu ISA 1, and for
 * compute units, subgroup size, max workgroup, shared memory and measured
 * bandwidth (read, else copy) 0.5 x |log2 ratio| each (at most 2; 0.5 where
 * either side is unknown). Symmetric. */
double kiln_fingerprint_distance(const kiln_fingerprint *a, const kiln_fingerprint *b);

/* JSON (cJSON) of every table; import is idempotent (natural keys). */
int kiln_db_export(kiln_db *db, FILE *out, kiln_err *e);
char *kiln_db_export_string(kiln_db *db, kiln_err *e);
int kiln_db_import(kiln_db *db, const char *json, kiln_err *e);
/* Everything of another database into this one, without duplicates;
 * winners keep the faster config per (device, kernel, shape). */
int kiln_db_merge(kiln_db *db, const char *other_path, kiln_err *e);
/* Deletes trials of ended sessions older than days (if > 0) and/or keeps
 * only the keep fastest per (device, kernel, shape) (if > 0); trials that
 * back a winner always stay. */
int kiln_db_prune(kiln_db *db, int days, int keep, int *deleted, kiln_err *e);

/* Bench history (bench/). */
typedef struct kiln_db_bench_run {
    int64_t device_id;
    char kind[16];          /* kernels | model */
    char subject[256];      /* kernel set or model file */
    char git_commit[64], git_ref[64], build_options[256], host[64], notes[256];
} kiln_db_bench_run;
int kiln_db_bench_run_insert(kiln_db *db, const kiln_db_bench_run *r, int64_t *id, kiln_err *e);
int kiln_db_bench_result_insert(kiln_db *db, int64_t run_id, const char *name, const char *metric, const char *unit,
                                double value, double spread, int n, int higher_is_better, kiln_err *e);

#endif
