/* engine/generate.h - the generation loop shared by kiln run, chat, serve
 * and bench model: prefill the prompt, then sample and decode token by token,
 * streaming text, stopping on end-of-generation tokens, stop strings, the
 * token limit or a full KV cache, and timing every phase with the host clock
 * after each device sync (what a user waits for). */
#ifndef KILN_ENGINE_GENERATE_H
#define KILN_ENGINE_GENERATE_H

#include "engine/model.h"
#include "engine/sampler.h"

typedef struct kiln_gen_opts {
    int n_predict;                 /* max new tokens */
    kiln_sampling sampling;
    const char *const *stop;       /* stop strings (not emitted) */
    int n_stop;
    int ignore_eos;                /* benchmarks: always produce n_predict tokens */
    /* streamed text (valid UTF-8 pieces); return non-zero to stop */
    int (*on_text)(void *user, const char *text, size_t len);
    void *user;
} kiln_gen_opts;

typedef struct kiln_gen_stats {
    int n_prompt, n_gen;
    double prefill_s;              /* prompt forward, until its logits are read */
    double ttft_s;                 /* start -> first generated token known */
    int n_decode;                  /* decode steps timed (tokens after the first) */
    double decode_s;               /* their total time: decode tok/s = n_decode / decode_s */
    double total_s;
    double *token_s;               /* latency of each decode step (n_decode), malloc'd; kiln_gen_stats_free */
    int stop_reason;               /* KILN_STOP_* */
} kiln_gen_stats;

enum { KILN_STOP_LIMIT = 0, KILN_STOP_EOG, KILN_STOP_STRING, KILN_STOP_FULL, KILN_STOP_CALLER };
const char *kiln_stop_name(int reason); /* "length", "eos", "stop", "kv_full", "caller" */

/* Runs prompt[0..n_prompt) after what seq already holds, then generates.
 * out_tokens (may be NULL) receives up to max_out generated ids. A full KV
 * cache ends generation cleanly (stop_reason KILN_STOP_FULL), never an error
 * unless the prompt itself does not fit. */
int kiln_generate(kiln_engine *en, kiln_kv_seq *seq, const int32_t *prompt, int n_prompt, const kiln_gen_opts *o,
                  kiln_gen_stats *st, int32_t *out_tokens, int max_out, kiln_err *e);
void kiln_gen_stats_free(kiln_gen_stats *st);

/* Streamed text with stop strings (kiln_generate's; the scheduler keeps one
 * per request): text that may be the start of a stop string is held back. */
typedef struct kiln_text_stream {
    char *s;
    size_t n, cap;
} kiln_text_stream;
/* Appends text; emits (o->on_text) what cannot be part of a stop string.
 * Returns 1 when a stop string was found (text before it emitted), 2 when
 * the callback asked to stop, -1 out of memory. */
int kiln_text_push(kiln_text_stream *b, const kiln_gen_opts *o, const char *t, size_t n);
/* Emits the held-back text (generation ended without completing a stop string). */
void kiln_text_flush(kiln_text_stream *b, const kiln_gen_opts *o);
void kiln_text_stream_free(kiln_text_stream *b);

#endif
