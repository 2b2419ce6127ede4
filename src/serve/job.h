/* src/serve/job.h - one generation request between an HTTP connection thread
 * and the engine thread that generates it.
 *
 * The connection thread parses the request, makes a job and submits it to a
 * back end (backend.h); the engine thread appends text as it is decoded and
 * finishes the job once; the connection thread waits on the job's condition
 * variable and turns what it finds into a JSON body or SSE events. Either
 * side may go first: the job is reference counted (two holders) and all its
 * mutable fields are under its mutex. `cancel` is the one field the engine
 * thread reads without the lock (an atomic): a client that disconnected. */
#ifndef KILN_SERVE_JOB_H
#define KILN_SERVE_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "src/serve/openai.h"
#include "util/err.h"

typedef struct serve_job {
    serve_request rq;            /* the parsed request (owned) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    /* generated text: pieces appended in order; piece k is text[ends[k-1] .. ends[k]) */
    char *text;
    size_t len, cap;
    size_t *ends;
    int n_pieces, cap_pieces;
    int done;                    /* finished (rc, err, usage are final) */
    int rc;                      /* 0 or a KILN_E_* code */
    kiln_err err;
    serve_usage usage;
    atomic_int cancel;           /* the client went away: stop generating */
    atomic_long *live_tokens;    /* server-wide count of generated pieces (metrics), may be NULL */
    double t_submit;             /* monotonic seconds */
} serve_job;

/* A job holding rq (moved in: rq is zeroed), one reference. NULL: no memory. */
serve_job *serve_job_new(serve_request *rq);
void serve_job_ref(serve_job *j);
void serve_job_unref(serve_job *j);

/* Engine side. Appends one piece of text and wakes the waiter. Returns
 * non-zero when generation should stop: the client is gone (1) or memory ran
 * out (-1, the job then finishes with KILN_E_NOMEM). */
int serve_job_append(serve_job *j, const char *text, size_t n);
/* Finishes the job once (later calls are ignored) and wakes the waiter. */
void serve_job_finish(serve_job *j, int rc, const kiln_err *e, const serve_usage *u);

/* Connection side: marks the job cancelled (the engine stops it at its next
 * token) and wakes any waiter. */
void serve_job_cancel(serve_job *j);

double serve_now(void); /* CLOCK_MONOTONIC seconds */

#endif
