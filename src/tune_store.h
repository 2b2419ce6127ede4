/* src/tune_store.h - where `tune` keeps what it measures: the session,
 * every trial (committed one by one), and the winners, in the tuning
 * database (db/). Resuming a session reuses its committed trials. */
#ifndef KILN_SRC_TUNE_STORE_H
#define KILN_SRC_TUNE_STORE_H

#include "db/db.h"
#include "tuner/tune.h"

typedef struct tune_store tune_store;

int tune_store_open(tune_store **out, const char *db_path, const kiln_fingerprint *fp, const kiln_tune_opts *o,
                    int argc, char **argv, long long resume_session, kiln_err *e);
long long tune_store_session(const tune_store *s);
/* The store's database (winners written so far are visible in it). */
kiln_db *tune_store_db(tune_store *s);
/* 1 and *t filled when this session already measured c for (k, shape). */
int tune_store_lookup(tune_store *s, const kiln_kernel *k, const kiln_shape *shape, const kiln_config *c,
                      kiln_trial *t);
int tune_store_record(tune_store *s, const kiln_kernel *k, const kiln_shape *shape, const kiln_trial *t, kiln_err *e);
int tune_store_winner(tune_store *s, const kiln_kernel *k, const kiln_shape *shape, const kiln_tune_result *r,
                      kiln_err *e);
/* status: "done", "incomplete" or "interrupted" */
void tune_store_close(tune_store *s, const char *status);

#endif
