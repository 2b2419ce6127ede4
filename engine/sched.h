/* engine/sched.h - continuous batching: many requests share one engine.
 *
 * Requests are queued with kiln_sched_submit and advanced by kiln_sched_step:
 * each step admits queued requests whose KV fits, runs ONE batched forward
 * (kiln_forward_batch, engine/model.h) over the decode token of every running
 * sequence plus prefill chunks of the requests still prefilling, oldest
 * first, up to the chunk budget (chunked prefill: a long prompt never
 * freezes the others' streams), then
 * samples each sequence's next token, streams its text and finishes the ones
 * that stopped. Sampling, stop strings and streaming are those of
 * kiln_generate (engine/generate.h): greedy tokens of a request are the same
 * alone and in a batch.
 *
 * KV pressure: a request is admitted when its prompt fits the free pages
 * (pages of a shared prefix count once, see below); when the running
 * sequences cannot grow for the next step, the youngest is preempted: its
 * pages are returned and it goes back to the front of the queue with its
 * generated tokens appended to its prompt (recomputed when it is readmitted;
 * text already streamed is never streamed again). A request that cannot fit
 * even alone ends with KILN_STOP_FULL ("kv_full"), never an error.
 *
 * Prefix sharing: a request whose prompt starts with whole KV pages already
 * computed for another live request (a shared system prompt) maps those
 * pages into its own page table (reference counted, engine/kv_cache.h) and
 * prefills only the rest; kiln_req_result.n_cached says how many tokens it
 * reused. The partly filled page at the end of a shared prefix is never
 * shared: its tokens are recomputed into a page of the new sequence's own
 * (copy on write, done by recomputation). A queued request whose prompt
 * shares more whole pages with a running request that is still prefilling
 * them waits (at the front of the queue) until they are computed, then maps
 * them: a burst of requests with the same new system prompt computes it
 * once.
 *
 * Prefix cache (on unless opts say no): when a request ends (or is
 * preempted), the whole pages of its KV (prompt and generated tokens) stay in
 * the pool, indexed by the tokens they hold (engine/prefix_cache.h). A new
 * request maps the longest chain of them that its prompt starts with (all but
 * its last prompt token at most: that one is always computed, for the logits
 * to sample from) and prefills only the rest; n_cached counts these tokens
 * too. Pages only the cache holds count as free: they are evicted, least
 * recently used first, when admission or growth needs them, so the cache
 * never refuses or preempts a request that would run without it.
 *
 * Not thread-safe: one thread owns the scheduler and calls every function
 * (the server's engine thread); callbacks run on that thread inside
 * kiln_sched_step / kiln_sched_close. */
#ifndef KILN_ENGINE_SCHED_H
#define KILN_ENGINE_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "engine/generate.h"
#include "engine/session.h"

typedef struct kiln_sched kiln_sched;

typedef struct kiln_sched_opts {
    int max_batch;             /* sequences decoded per step (serve --parallel); 0: 8 */
    int chunk;                 /* prefill tokens per step, all prompts together (0, or more than fits: the
                                * engine's chunk less the decode rows) */
    int no_prefix_share;       /* 1: never map another request's pages, live or cached (comparisons, tests) */
    int no_prefix_cache;       /* 1: no prefix cache of finished requests (live sharing stays) */
} kiln_sched_opts;

typedef struct kiln_req_result {
    int finish;                /* KILN_STOP_* from engine/generate.h */
    int n_prompt, n_gen;
    double ttft_s;             /* submit -> first generated token known */
    double prefill_s;          /* admission -> first token known (prefill chunks share steps with decodes) */
    double decode_s;           /* first token -> last token known */
    double queue_s;            /* submit -> first admission */
    int n_cached;              /* prompt tokens reused from shared prefix pages (live or cached) */
    int n_preempted;           /* times the request was preempted and recomputed */
} kiln_req_result;

typedef struct kiln_req_cbs {
    int (*on_text)(void *user, const char *text, size_t len);  /* valid UTF-8 piece; return nonzero to cancel */
    void (*on_done)(void *user, const kiln_req_result *r, const kiln_err *err); /* exactly once per accepted
                                                                                  * request; err NULL unless it failed */
    void *user;
    void (*on_token)(void *user, int32_t id); /* optional: each generated token id (tests, logprobs) */
} kiln_req_cbs;

int kiln_sched_open(kiln_sched **out, kiln_session *s, const kiln_sched_opts *o, kiln_err *e);
/* Finishes nothing: pending requests get on_done with finish KILN_STOP_CALLER. */
void kiln_sched_close(kiln_sched *q);

/* Queues a request (prompt tokens already templated and tokenized; copied,
 * as are g's stop strings). g->on_text and g->user are ignored (cb's are
 * used). Returns its id >= 0, or an error code (< 0 never: KILN_E_* > 0 is
 * returned negated): -KILN_E_FULL when prompt + g->n_predict tokens can never
 * fit the cache, -KILN_E_INVALID for an empty prompt, a token outside the
 * vocabulary or bad sampling options; e says which. */
int kiln_sched_submit(kiln_sched *q, const int32_t *prompt, int n_prompt, const kiln_gen_opts *g,
                      const kiln_req_cbs *cb, kiln_err *e);
/* on_done follows with KILN_STOP_CALLER at the next step. 0, or
 * KILN_E_INVALID when no such request is pending. */
int kiln_sched_cancel(kiln_sched *q, int id);

/* One step (see above). Returns the number of requests still queued or
 * running (0: idle), or a negated KILN_E_* code when the forward failed on
 * the device: then every request in that step has had on_done with err set
 * and the scheduler stays usable. */
int kiln_sched_step(kiln_sched *q, kiln_err *e);

typedef struct kiln_sched_stats {
    int queued, running, batch;        /* batch: sequences in the last step's forward */
    /* used + free + cached = the pool: pages held by requests, on the free
     * list, held only by the prefix cache (evictable, counted as free) */
    int kv_pages_used, kv_pages_free, kv_pages_cached;
    unsigned long long preempted, prefix_tokens_reused, steps;
    /* the prefix cache: requests that mapped cached pages, the tokens they
     * reused (part of prefix_tokens_reused), entries evicted */
    unsigned long long cache_hits, cache_tokens_reused, cache_evictions;
} kiln_sched_stats;
void kiln_sched_stats_get(const kiln_sched *q, kiln_sched_stats *st);

#endif
