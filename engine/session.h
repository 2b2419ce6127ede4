/* engine/session.h - one model running on one device: the engine API that
 * `kiln run`, `kiln chat`, `kiln serve` and `kiln bench model` share.
 *
 * A session opens, in order: the tuning database (the one given, a file,
 * or winners given as JSON in an in-memory database, or none: default
 * configs), the device (with an optional host-thread cap), the model, and
 * the engine (ops with their configs, paged KV cache, activations). Then a
 * caller makes KV sequences, prefills and generates (sampling, streaming
 * through a callback, stop strings), and reads timings (load ms, prefill
 * and decode tok/s, time to first token), how many op classes run tuned
 * configs, and with opts.profile the time per op (engine/profile.h).
 *
 * Lower level pieces stay usable on their own (engine/model.h for the
 * forward pass, engine/generate.h for the loop); the session adds what
 * every command needs around them and nothing a command prints. */
#ifndef KILN_ENGINE_SESSION_H
#define KILN_ENGINE_SESSION_H

#include <stdio.h>

#include "db/db.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/profile.h"

typedef struct kiln_session_opts {
    const char *model;          /* GGUF file (Llama family) */
    const char *device;         /* kiln_device_select spec; NULL: "cpu" */
    kiln_db *db;                /* an open tuning database to read configs from (not owned); NULL: found as below */
    const char *db_path;        /* this file, which must exist; NULL: $KILN_DB, else the default path, if it exists */
    const char *db_json;        /* no database file: these winners (`kiln db export` JSON, e.g. a release build's
                                 * embedded table) in an in-memory database; NULL or "": default configs */
    const char *chat_template;  /* chatml | llama2 | llama3 | raw; NULL: the GGUF's */
    int ctx, page_size, chunk;  /* KV capacity in tokens, KV page size, prefill chunk (0: the engine's defaults) */
    int threads;                /* host threads of the cpu backend (0: all); other backends refuse a count */
    FILE *log;                  /* verbose: the database used, the config (and match level) of each op class */
    FILE *progress;             /* the model load's progress line (NULL: quiet) */
    FILE *notes;                /* a line per tensor converted with a loss (NULL: quiet) */
    int profile;                /* time every op (engine/profile.h) into the session's profile */
    int precision;              /* KILN_PRECISION_FAST (0, default) | KILN_PRECISION_STRICT (engine/model.h) */
    int kv_type;                /* KILN_KV_F32 (0, default) | KILN_KV_F16 (engine/kv_cache.h) */
    int no_fuse;                /* keep Q/K/V and gate/up unstacked (kiln_model_opts.no_fuse; comparisons) */
} kiln_session_opts;

typedef struct kiln_session {
    kiln_device *dev;
    kiln_db *db;                /* where configs come from (NULL: defaults) */
    int own_db;
    kiln_model model;
    kiln_engine en;
    kiln_profile *prof;         /* opts.profile: every op is timed into it; else NULL */
    char *default_system;       /* the chat template's own system message (SmolLM2 has one), or NULL */
    double load_ms;             /* open: database, device, model and engine, until ready to prefill */
    int model_loaded, engine_ready;
} kiln_session;

/* Errors name what failed (the database file, the device spec, the model
 * file). On failure nothing stays open. */
int kiln_session_open(kiln_session *s, const kiln_session_opts *o, kiln_err *e);
void kiln_session_close(kiln_session *s);

/* A KV sequence that may grow to the whole cache (en.ctx tokens). */
int kiln_session_seq(kiln_session *s, kiln_kv_seq *seq, kiln_err *e);

/* text -> token ids, *ids malloc'd (free it). add_bos: -1 the model's
 * choice, 0 no, 1 yes; special: parse special tokens (<|im_start|>). */
int kiln_session_tokenize(const kiln_session *s, const char *text, size_t len, int add_bos, int special, int32_t **ids,
                          int *n, kiln_err *e);

/* The chat template over msgs (with the template's own system message in
 * front when msgs has none) and the assistant's generation prompt; *text
 * malloc'd. */
int kiln_session_chat_prompt(const kiln_session *s, const kiln_chat_msg *msgs, int n, char **text, size_t *len,
                             kiln_err *e);

/* Runs tokens through the model after what seq holds (their K/V appended),
 * without generating: a conversation's end-of-turn text, a prefix. Counted
 * as prefill in the profile. KILN_E_FULL leaves seq unchanged. */
int kiln_session_prefill(kiln_session *s, kiln_kv_seq *seq, const int32_t *tokens, int n, kiln_err *e);

/* Prefills prompt after what seq holds, then samples and decodes up to
 * o->n_predict tokens (engine/generate.h: o->on_text streams each token's
 * text as it is decoded, o->stop, o->sampling). st: timings per phase;
 * out_tokens (may be NULL): up to max_out generated ids. */
int kiln_session_generate(kiln_session *s, kiln_kv_seq *seq, const int32_t *prompt, int n_prompt,
                          const kiln_gen_opts *o, kiln_gen_stats *st, int32_t *out_tokens, int max_out, kiln_err *e);

/* What a user waits for, from one generation's stats. */
typedef struct kiln_timings {
    double load_ms;             /* the session's */
    int n_prompt, n_gen, n_decode;
    double prefill_tok_s;       /* prompt tokens / prefill time (until the first token is known) */
    double decode_tok_s;        /* decode steps / their time */
    double ttft_ms;             /* start -> first generated token known */
    double total_s;
} kiln_timings;

void kiln_session_timings(const kiln_session *s, const kiln_gen_stats *st, kiln_timings *t);

/* Op classes so far by how their config was chosen: tuned (a database match
 * at any level) and default. */
void kiln_session_configs(const kiln_session *s, int *tuned, int *deflt);

/* "cpu:0 (name)" */
void kiln_session_device_name(const kiln_session *s, char *buf, size_t n);

/* The profile tables (opts.profile; otherwise a line saying it was off). */
void kiln_session_print_profile(const kiln_session *s, FILE *f);

#endif
