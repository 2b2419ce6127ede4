/* src/serve/backend.h - what the HTTP server (httpd.h) submits generation
 * jobs to. Two back ends:
 *   serial (serve_serial.c): one engine thread runs a serve_generator for one
 *     job at a time, in arrival order (the engine's one KV sequence, with
 *     prefix reuse; also the --echo protocol model);
 *   batch (serve_batch.c): one engine thread drives the continuous-batching
 *     scheduler (engine/sched.h) over --parallel sequences.
 * Either way the engine thread alone touches the engine; connection threads
 * only submit and cancel through a locked queue. */
#ifndef KILN_SERVE_BACKEND_H
#define KILN_SERVE_BACKEND_H

#include "engine/session.h"
#include "src/serve/job.h"

typedef struct serve_backend_stats {
    int queued;                 /* submitted, not yet generating */
    int running;                /* generating now (the batch size) */
    long kv_pages_used, kv_pages_free; /* -1: not known */
    long preempted;             /* sequences evicted to make room (batch), total */
    long prefix_tokens_reused;  /* prompt tokens not prefilled thanks to a cached prefix, total */
    /* the batch back end's prefix cache of finished requests (engine/prefix_cache.h); -1: none */
    long kv_pages_cached;       /* pages only the cache holds (evictable: counted free by the scheduler) */
    long cache_hits;            /* requests that reused cached pages, total */
    long cache_tokens_reused;   /* prompt tokens those reused (part of prefix_tokens_reused), total */
    long cache_evictions;       /* cached pages dropped to make room, total */
} serve_backend_stats;

typedef struct serve_backend {
    void *impl;
    const char *model_id;
    int ctx;                    /* tokens one request may use (prompt + max_tokens); 0: unbounded */
    /* Queues j (takes a reference). KILN_E_FULL: the queue is full (the
     * server answers 503 with Retry-After). Never blocks on generation. */
    int (*submit)(void *impl, serve_job *j, kiln_err *e);
    /* j was cancelled (serve_job_cancel): wake the engine so it drops it. */
    void (*poke)(void *impl);
    void (*stats)(void *impl, serve_backend_stats *st);
    /* Stops the engine thread (running jobs finish as cancelled) and frees. */
    void (*close)(void *impl);
} serve_backend;

/* The serial back end over g (g and what it points to outlive the back end).
 * max_queue (>= 1): jobs waiting beyond the running one before submit says FULL. */
int serve_serial_open(serve_backend *b, const serve_generator *g, int max_queue, kiln_err *e);
/* The batch back end: a session opened from so, a scheduler of `parallel`
 * sequences (>= 2). max_queue (>= 1): requests waiting for a batch seat
 * before submit says FULL. no_prefix_cache: finished requests' KV pages are
 * not kept for reuse (engine/sched.h). */
int serve_batch_open(serve_backend *b, const kiln_session_opts *so, int parallel, int max_queue, int no_prefix_cache,
                     kiln_err *e);

#endif
