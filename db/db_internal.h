/* db/db_internal.h - shared by the db/ files. */
#ifndef KILN_DB_INTERNAL_H
#define KILN_DB_INTERNAL_H

#include "db/db.h"

struct kiln_db {
    sqlite3 *h;
    char path[1024];
};

/* Error with the db path, what was being done and SQLite's message. */
int db_fail(kiln_db *db, kiln_err *e, const char *what);
int db_exec(kiln_db *db, const char *sql, const char *what, kiln_err *e);
/* BEGIN IMMEDIATE (waits up to the busy timeout), COMMIT, ROLLBACK. */
int db_begin(kiln_db *db, kiln_err *e);
int db_commit(kiln_db *db, kiln_err *e);
void db_rollback(kiln_db *db);
void db_uuid(char out[33]);
void db_now(char out[32]); /* UTC ISO-8601 */
/* The similarity level (db_similar.c): 1 and *m filled, 0 none, < 0 error. */
int db_lookup_similar(kiln_db *db, const kiln_fingerprint *fp, const char *kernel, const char *hash,
                      const char *shape_key, kiln_db_match *m, kiln_err *e);

#endif
