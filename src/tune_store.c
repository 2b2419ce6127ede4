/* src/tune_store.c - tune's trials and winners in the tuning database. */
#include "src/tune_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"

#define MAX_KERNELS 32

struct tune_store {
    kiln_db *db;
    int64_t device_id, session_id;
    kiln_backend_kind backend;
    struct {
        const kiln_kernel *k;
        int64_t id;
    } kernels[MAX_KERNELS];
    int n_kernels;
    int64_t last_trial_id;
};

static int kernel_id(tune_store *s, const kiln_kernel *k, int64_t *id, kiln_err *e)
{
    for (int i = 0; i < s->n_kernels; i++)
        if (s->kernels[i].k == k) {
            *id = s->kernels[i].id;
            return 0;
        }
    char hash[17];
    kiln_kernel_source_hash(k, s->backend, hash);
    int rc = kiln_db_kernel_upsert(s->db, k->name, hash, id, e);
    if (!rc && s->n_kernels < MAX_KERNELS) {
        s->kernels[s->n_kernels].k = k;
        s->kernels[s->n_kernels++].id = *id;
    }
    return rc;
}

int tune_store_open(tune_store **out, const char *db_path, const kiln_fingerprint *fp, const kiln_tune_opts *o,
                    int argc, char **argv, long long resume, kiln_err *e)
{
    *out = NULL;
    tune_store *s = calloc(1, sizeof *s);
    if (!s)
        return kiln_fail(e, KILN_E_NOMEM, "tune: no memory");
    s->backend = fp->backend;
    int rc = kiln_db_open(&s->db, db_path, e);
    if (!rc)
        rc = kiln_db_device_upsert(s->db, fp, &s->device_id, e);
    if (!rc && resume > 0) {
        rc = kiln_db_session_resume(s->db, resume, s->device_id, e);
        s->session_id = resume;
    } else if (!rc) {
        char args[1024] = "", budget[64];
        for (int i = 0; i < argc; i++) {
            size_t n = strlen(args);
            snprintf(args + n, sizeof args - n, "%s%s", i ? " " : "", argv[i]);
        }
        if (o->budget_seconds > 0)
            snprintf(budget, sizeof budget, "%.0fs per kernel x shape", o->budget_seconds);
        else
            snprintf(budget, sizeof budget, "%d trials per kernel x shape", o->budget_trials);
        rc = kiln_db_session_begin(s->db, s->device_id, kiln_search_name(o->strategy), budget, args, &s->session_id,
                                   e);
    }
    if (rc) {
        kiln_db_close(s->db);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

kiln_db *tune_store_db(tune_store *s) { return s->db; }

long long tune_store_session(const tune_store *s) { return (long long)s->session_id; }

static const char *status_text(int st)
{
    return kiln_trial_status_name(st);
}

int tune_store_lookup(tune_store *s, const kiln_kernel *k, const kiln_shape *shape, const kiln_config *c,
                      kiln_trial *t)
{
    int64_t kid;
    if (kernel_id(s, k, &kid, NULL))
        return 0;
    char key[128], cj[512];
    k->shape_key(shape, key, sizeof key);
    kiln_config_to_json(k, c, cj, sizeof cj);
    kiln_db_trial dt;
    if (kiln_db_trial_find(s->db, s->session_id, kid, key, cj, &dt) != 1)
        return 0;
    memset(t, 0, sizeof *t);
    t->cfg = *c;
    t->status = KILN_TRIAL_DEVICE;
    for (int i = 0; i < KILN_TRIAL_STATUS_COUNT; i++)
        if (!strcmp(dt.status, status_text(i)))
            t->status = i;
    snprintf(t->reason, sizeof t->reason, "%s", dt.reason);
    t->median_ns = dt.median_ns;
    t->spread = dt.spread;
    t->n_samples = dt.n_samples;
    t->err = dt.err;
    return 1;
}

int tune_store_record(tune_store *s, const kiln_kernel *k, const kiln_shape *shape, const kiln_trial *t, kiln_err *e)
{
    kiln_db_trial dt = {.session_id = s->session_id, .device_id = s->device_id};
    int rc = kernel_id(s, k, &dt.kernel_id, e);
    if (rc)
        return rc;
    k->shape_key(shape, dt.shape_key, sizeof dt.shape_key);
    kiln_config_to_json(k, &t->cfg, dt.config_json, sizeof dt.config_json);
    snprintf(dt.status, sizeof dt.status, "%s", status_text(t->status));
    snprintf(dt.reason, sizeof dt.reason, "%s", t->reason);
    dt.median_ns = t->median_ns;
    dt.spread = t->spread;
    dt.n_samples = t->n_samples;
    dt.err = t->err;
    double bytes = k->bytes ? k->bytes(shape) : 0;
    dt.gbps = t->median_ns > 0 ? bytes / t->median_ns : 0;
    return kiln_db_trial_insert(s->db, &dt, &s->last_trial_id, e);
}

int tune_store_winner(tune_store *s, const kiln_kernel *k, const kiln_shape *shape, const kiln_tune_result *r,
                      kiln_err *e)
{
    kiln_db_winner w = {.device_id = s->device_id};
    int rc = kernel_id(s, k, &w.kernel_id, e);
    if (rc)
        return rc;
    k->shape_key(shape, w.shape_key, sizeof w.shape_key);
    kiln_config_to_json(k, &r->best.cfg, w.config_json, sizeof w.config_json);
    w.median_ns = r->best.median_ns;
    w.default_ns = r->deflt.median_ns;
    w.speedup = r->speedup;
    w.margin = r->margin;
    w.tie = r->tie;
    kiln_db_trial dt;
    if (kiln_db_trial_find(s->db, s->session_id, w.kernel_id, w.shape_key, w.config_json, &dt) == 1) {
        sqlite3_stmt *st;
        /* the id of the winning trial, for prune and reports */
        if (sqlite3_prepare_v2(kiln_db_handle(s->db),
                               "SELECT id FROM trials WHERE session_id = ?1 AND kernel_id = ?2 AND shape_key = ?3"
                               " AND config_json = ?4",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, s->session_id);
            sqlite3_bind_int64(st, 2, w.kernel_id);
            sqlite3_bind_text(st, 3, w.shape_key, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 4, w.config_json, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(st) == SQLITE_ROW)
                w.trial_id = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    return kiln_db_winner_update(s->db, &w, NULL, e);
}

void tune_store_close(tune_store *s, const char *status)
{
    if (!s)
        return;
    kiln_db_session_end(s->db, s->session_id, status, NULL);
    kiln_db_close(s->db);
    free(s);
}
