/* tests/fuzz/fuzz_db_import.c - `kiln db import` on arbitrary JSON.
 *
 * The input is imported into an in-memory database (the schema of
 * db/db.c), which is emptied after each input so no input sees another's
 * rows. Promise under test: any document is imported or refused with an
 * error, never a crash or undefined behaviour; after it the database still
 * answers a query on every table (a refused import leaves it usable). */
#include <sqlite3.h>

#include "db/db.h"
#include "tests/fuzz/fuzz.h"

static kiln_db *db;
static char tables[32][64];
static int n_tables;

static int setup(void)
{
    kiln_err e = {0};
    if (kiln_db_open(&db, ":memory:", &e))
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(kiln_db_handle(db),
                           "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW && n_tables < 32)
        snprintf(tables[n_tables++], sizeof tables[0], "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return n_tables ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!db)
        FUZZ_ASSERT(setup() == 0, "cannot set up the in-memory database");
    char *json = fuzz_cstr(data, size);
    if (!json)
        return 0;
    kiln_err e = {0};
    int rc = kiln_db_import(db, json, &e);
    FUZZ_ASSERT(rc == 0 || e.msg[0], "import failed (%d) without a message", rc);
    free(json);
    sqlite3 *h = kiln_db_handle(db);
    /* emptied with the foreign keys off: tables are listed in any order */
    FUZZ_ASSERT(sqlite3_exec(h, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL) == SQLITE_OK, "foreign keys off");
    for (int i = 0; i < n_tables; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "DELETE FROM \"%s\"", tables[i]);
        char *err = NULL;
        FUZZ_ASSERT(sqlite3_exec(h, sql, NULL, NULL, &err) == SQLITE_OK, "%s after import: %s", sql,
                    err ? err : "?");
    }
    FUZZ_ASSERT(sqlite3_exec(h, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) == SQLITE_OK, "foreign keys on");
    return 0;
}
