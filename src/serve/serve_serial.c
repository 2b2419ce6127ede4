/* src/serve/serve_serial.c - the serial back end (backend.h): a FIFO of jobs
 * and one engine thread that runs the generator on them one at a time. A job
 * cancelled while it waits is finished without generating; one cancelled
 * while it runs stops at its next token (serve_job_append says so). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/serve/backend.h"

typedef struct serial {
    serve_generator g;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    serve_job **q;              /* ring buffer of max_queue waiting jobs */
    int cap, head, n;
    int running;
    int stopping;
    pthread_t th;
} serial;

static int piece(void *ctx, const char *text)
{
    return serve_job_append(ctx, text, strlen(text));
}

static void *engine_main(void *arg)
{
    serial *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->n && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->n) { /* stopping and drained */
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        serve_job *j = s->q[s->head];
        s->head = (s->head + 1) % s->cap;
        s->n--;
        s->running = 1;
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);

        kiln_err e = {0};
        serve_usage u = {0};
        int rc;
        if (stopping || atomic_load(&j->cancel)) {
            rc = kiln_fail(&e, KILN_E_TIMEOUT, "cancelled before it started");
        } else {
            rc = s->g.generate(s->g.user, &j->rq, piece, j, &u, &e);
            if (!rc && atomic_load(&j->cancel))
                snprintf(u.finish_reason, sizeof u.finish_reason, "cancelled");
        }
        serve_job_finish(j, rc, &e, &u);
        serve_job_unref(j);
        pthread_mutex_lock(&s->mu);
        s->running = 0;
        pthread_mutex_unlock(&s->mu);
    }
}

static int submit(void *impl, serve_job *j, kiln_err *e)
{
    serial *s = impl;
    pthread_mutex_lock(&s->mu);
    if (s->n == s->cap || s->stopping) {
        int n = s->n;
        pthread_mutex_unlock(&s->mu);
        return kiln_fail(e, KILN_E_FULL, "the server is busy: %d requests are waiting; retry later", n);
    }
    serve_job_ref(j);
    s->q[(s->head + s->n) % s->cap] = j;
    s->n++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void poke(void *impl)
{
    (void)impl; /* the running job sees its cancel flag at its next token; a waiting one when popped */
}

static void stats(void *impl, serve_backend_stats *st)
{
    serial *s = impl;
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&s->mu);
    st->queued = s->n;
    st->running = s->running;
    pthread_mutex_unlock(&s->mu);
    st->kv_pages_used = st->kv_pages_free = st->kv_pages_cached = -1;
}

static void close_serial(void *impl)
{
    serial *s = impl;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    for (int i = 0; i < s->n; i++) /* waiting jobs finish as cancelled without running */
        atomic_store(&s->q[(s->head + i) % s->cap]->cancel, 1);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->q);
    free(s);
}

int serve_serial_open(serve_backend *b, const serve_generator *g, int max_queue, kiln_err *e)
{
    memset(b, 0, sizeof *b);
    serial *s = calloc(1, sizeof *s);
    if (!s || !(s->q = calloc((size_t)max_queue, sizeof *s->q))) {
        free(s);
        return kiln_fail(e, KILN_E_NOMEM, "out of memory");
    }
    s->g = *g;
    s->cap = max_queue;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->th, NULL, engine_main, s)) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s->q);
        free(s);
        return kiln_fail(e, KILN_E_NOMEM, "cannot start the engine thread");
    }
    *b = (serve_backend){.impl = s, .model_id = g->model_id, .ctx = g->ctx, .submit = submit, .poke = poke,
                         .stats = stats, .close = close_serial};
    return 0;
}
