/* engine/session.c - see session.h. Owns, in opening order, the database
 * (unless given), the device, the model, the engine and the profile; close
 * releases them in reverse. */
#include "engine/session.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"

/* The database configs come from: the one given, a file (the path given,
 * which must exist, else $KILN_DB or the default path if that file
 * exists), winners given as JSON in memory, or none. */
static int open_db(kiln_session *s, const kiln_session_opts *o, kiln_err *e)
{
    if (o->db) {
        s->db = o->db;
        return 0;
    }
    char path[1024];
    const char *dbp = o->db_path;
    if (!dbp && (dbp = getenv("KILN_DB")) == NULL && kiln_db_default_path(path, sizeof path) == 0)
        dbp = path;
    int rc;
    if (dbp && access(dbp, F_OK) == 0) {
        /* lookups only: a read-only file (a release image, a shared CI
         * cache) works, and nothing is written */
        if ((rc = kiln_db_open_readonly(&s->db, dbp, e))) {
            kiln_err_wrap(e, "tuning database %s", dbp);
            return rc;
        }
        s->own_db = 1;
        if (o->log)
            fprintf(o->log, "kiln: tuning database %s\n", dbp);
        return 0;
    }
    if (o->db_path)
        return kiln_fail(e, KILN_E_IO, "tuning database %s does not exist (run `tune` first, or leave out --db to use "
                         "the default configs)", o->db_path);
    if (o->db_json && o->db_json[0]) {
        if ((rc = kiln_db_open(&s->db, ":memory:", e)) == 0)
            s->own_db = 1;
        if (rc || (rc = kiln_db_import(s->db, o->db_json, e))) {
            kiln_err_wrap(e, "the tuning winners given in memory");
            return rc;
        }
        if (o->log)
            fprintf(o->log, "kiln: no tuning database file (%s): using the winners embedded in this build\n",
                    dbp ? dbp : "no path");
        return 0;
    }
    if (o->log)
        fprintf(o->log, "kiln: no tuning database (%s): default configs\n", dbp ? dbp : "no path");
    return 0;
}

static int open_device(kiln_session *s, const kiln_session_opts *o, kiln_err *e)
{
    int rc = kiln_device_select(o->device ? o->device : "cpu", &s->dev, e);
    if (rc || o->threads <= 0)
        return rc;
    if ((rc = kiln_device_set_threads(s->dev, (uint32_t)o->threads, e)))
        kiln_err_wrap(e, "%d host threads", o->threads);
    return rc;
}

/* The template's own system message, which commands put in front of a
 * conversation that brings none. */
static int find_default_system(kiln_session *s, kiln_err *e)
{
    const char *tmpl, *def = NULL;
    size_t tl, deflen = 0;
    const kiln_gguf *g = s->model.gguf;
    if (!kiln_gguf_find(g, "tokenizer.chat_template") ||
        kiln_gguf_get_str(g, "tokenizer.chat_template", &tmpl, &tl, NULL) ||
        !kiln_chat_default_system(tmpl, tl, &def, &deflen) || !def)
        return 0;
    if (!(s->default_system = strndup(def, deflen)))
        return kiln_fail(e, KILN_E_NOMEM, "out of memory");
    return 0;
}

static int open_model(kiln_session *s, const kiln_session_opts *o, kiln_err *e)
{
    /* each matrix is stored in the layout its gemv config reads (the tuned
     * winner's ilv for this device and precision) */
    kiln_layout_ctx lc = {.fp = &s->dev->fp, .db = s->db, .log = o->log};
    kiln_model_opts mo = {.progress = o->progress, .notes = o->notes, .layout = kiln_engine_layout,
                          .layout_ctx = &lc,
                          .act = o->precision == KILN_PRECISION_STRICT ? KILN_ACT_F32 : KILN_ACT_Q8,
                          .no_fuse = o->no_fuse};
    int rc = kiln_model_load(&s->model, s->dev, o->model, &mo, e);
    if (rc)
        return rc;
    s->model_loaded = 1;
    if (o->chat_template) {
        kiln_chat_kind k;
        if ((rc = kiln_chat_parse_name(o->chat_template, &k, e)))
            return rc;
        s->model.chat = k;
    }
    return find_default_system(s, e);
}

int kiln_session_open(kiln_session *s, const kiln_session_opts *o, kiln_err *e)
{
    memset(s, 0, sizeof *s);
    if (!o->model)
        return kiln_fail(e, KILN_E_INVALID, "no model: give -m FILE.gguf");
    double t0 = kiln_now_s();
    int rc = 0;
    if (o->profile) {
        if (!(s->prof = malloc(sizeof *s->prof)))
            return kiln_fail(e, KILN_E_NOMEM, "out of memory");
        kiln_profile_reset(s->prof);
    }
    if ((rc = open_db(s, o, e)) || (rc = open_device(s, o, e)) || (rc = open_model(s, o, e)))
        goto fail;
    kiln_engine_opts eo = {.ctx = o->ctx, .page_size = o->page_size, .chunk = o->chunk, .db = s->db, .log = o->log,
                           .profile = s->prof, .precision = o->precision, .kv_type = o->kv_type};
    if ((rc = kiln_engine_init(&s->en, &s->model, &eo, e)))
        goto fail;
    s->engine_ready = 1;
    s->load_ms = (kiln_now_s() - t0) * 1e3;
    return 0;
fail:
    kiln_session_close(s);
    return rc;
}

void kiln_session_close(kiln_session *s)
{
    if (s->engine_ready)
        kiln_engine_free(&s->en);
    if (s->model_loaded)
        kiln_model_free(&s->model);
    if (s->dev)
        kiln_device_close(s->dev);
    if (s->own_db)
        kiln_db_close(s->db);
    free(s->default_system);
    free(s->prof);
    memset(s, 0, sizeof *s);
}

int kiln_session_seq(kiln_session *s, kiln_kv_seq *seq, kiln_err *e)
{
    return kiln_kv_seq_init(seq, &s->en.kv, s->en.ctx, e);
}

int kiln_session_tokenize(const kiln_session *s, const char *text, size_t len, int add_bos, int special, int32_t **ids,
                          int *n, kiln_err *e)
{
    *ids = NULL;
    *n = 0;
    kiln_tokenize(s->model.tok, text, len, add_bos, special, NULL, 0, n, NULL); /* count */
    if (!(*ids = malloc(sizeof **ids * (size_t)(*n + 1))))
        return kiln_fail(e, KILN_E_NOMEM, "out of memory");
    int rc = kiln_tokenize(s->model.tok, text, len, add_bos, special, *ids, *n + 1, n, e);
    if (rc) {
        free(*ids);
        *ids = NULL;
    }
    return rc;
}

int kiln_session_chat_prompt(const kiln_session *s, const kiln_chat_msg *msgs, int n, char **text, size_t *len,
                             kiln_err *e)
{
    int has_system = 0;
    for (int i = 0; i < n; i++)
        has_system |= !strcmp(msgs[i].role, "system");
    if (has_system || !s->default_system)
        return kiln_chat_format(s->model.chat, msgs, n, 1, text, len, e);
    kiln_chat_msg *all = malloc(sizeof *all * (size_t)(n + 1));
    if (!all)
        return kiln_fail(e, KILN_E_NOMEM, "out of memory");
    all[0] = (kiln_chat_msg){"system", s->default_system};
    memcpy(all + 1, msgs, sizeof *all * (size_t)n);
    int rc = kiln_chat_format(s->model.chat, all, n + 1, 1, text, len, e);
    free(all);
    return rc;
}

int kiln_session_prefill(kiln_session *s, kiln_kv_seq *seq, const int32_t *tokens, int n, kiln_err *e)
{
    if (s->prof)
        kiln_profile_phase(s->prof, KILN_PHASE_PREFILL, kiln_now_s());
    int rc = kiln_forward(&s->en, seq, tokens, n, e);
    if (s->prof)
        kiln_profile_phase(s->prof, KILN_PHASE_NONE, kiln_now_s());
    return rc;
}

int kiln_session_generate(kiln_session *s, kiln_kv_seq *seq, const int32_t *prompt, int n_prompt,
                          const kiln_gen_opts *o, kiln_gen_stats *st, int32_t *out_tokens, int max_out, kiln_err *e)
{
    return kiln_generate(&s->en, seq, prompt, n_prompt, o, st, out_tokens, max_out, e);
}

void kiln_session_timings(const kiln_session *s, const kiln_gen_stats *st, kiln_timings *t)
{
    memset(t, 0, sizeof *t);
    t->load_ms = s->load_ms;
    t->n_prompt = st->n_prompt;
    t->n_gen = st->n_gen;
    t->n_decode = st->n_decode;
    t->prefill_tok_s = st->prefill_s > 0 ? st->n_prompt / st->prefill_s : 0;
    t->decode_tok_s = st->decode_s > 0 ? st->n_decode / st->decode_s : 0;
    t->ttft_ms = st->ttft_s * 1e3;
    t->total_s = st->total_s;
}

void kiln_session_configs(const kiln_session *s, int *tuned, int *deflt)
{
    int counts[KILN_MATCH_DEFAULT + 1];
    kiln_ops_match_counts(s->en.ops, counts);
    *tuned = 0;
    for (int i = 0; i < KILN_MATCH_DEFAULT; i++)
        *tuned += counts[i];
    *deflt = counts[KILN_MATCH_DEFAULT];
}

void kiln_session_device_name(const kiln_session *s, char *buf, size_t n)
{
    snprintf(buf, n, "%s:%d (%s)", kiln_backend_name(s->dev->backend), s->dev->index, s->dev->fp.name);
}

void kiln_session_print_profile(const kiln_session *s, FILE *f)
{
    if (!s->prof) {
        fprintf(f, "kiln: no profile (the session was opened without profiling)\n");
        return;
    }
    char dev[256];
    kiln_session_device_name(s, dev, sizeof dev);
    kiln_profile_print(s->prof, dev, f);
}
