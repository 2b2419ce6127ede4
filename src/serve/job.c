/* src/serve/job.c - see job.h. */
#include "src/serve/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double serve_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

serve_job *serve_job_new(serve_request *rq)
{
    serve_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->rq = *rq;
    memset(rq, 0, sizeof *rq);
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* timed waits immune to wall-clock jumps */
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&j->cancel, 0);
    j->refs = 1;
    j->t_submit = serve_now();
    return j;
}

void serve_job_ref(serve_job *j)
{
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

void serve_job_unref(serve_job *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last)
        return;
    serve_request_free(&j->rq);
    free(j->text);
    free(j->ends);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

int serve_job_append(serve_job *j, const char *t, size_t n)
{
    int rc = 0;
    pthread_mutex_lock(&j->mu);
    if (j->len + n + 1 > j->cap) {
        size_t cap = (j->cap ? 2 * j->cap : 256) + n;
        char *b = realloc(j->text, cap);
        if (!b) {
            rc = -1;
            goto out;
        }
        j->text = b;
        j->cap = cap;
    }
    if (j->n_pieces == j->cap_pieces) {
        int cap = j->cap_pieces ? 2 * j->cap_pieces : 64;
        size_t *e = realloc(j->ends, sizeof *e * (size_t)cap);
        if (!e) {
            rc = -1;
            goto out;
        }
        j->ends = e;
        j->cap_pieces = cap;
    }
    memcpy(j->text + j->len, t, n);
    j->len += n;
    j->text[j->len] = 0;
    j->ends[j->n_pieces++] = j->len;
    if (j->live_tokens)
        atomic_fetch_add(j->live_tokens, 1);
    pthread_cond_broadcast(&j->cv);
out:
    pthread_mutex_unlock(&j->mu);
    if (rc)
        return rc;
    return atomic_load(&j->cancel) ? 1 : 0;
}

void serve_job_finish(serve_job *j, int rc, const kiln_err *e, const serve_usage *u)
{
    pthread_mutex_lock(&j->mu);
    if (!j->done) {
        j->done = 1;
        j->rc = rc;
        if (rc && e)
            j->err = *e;
        else if (rc)
            snprintf(j->err.msg, sizeof j->err.msg, "%s", kiln_code_name(rc));
        if (u)
            j->usage = *u;
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
}

void serve_job_cancel(serve_job *j)
{
    atomic_store(&j->cancel, 1);
    pthread_mutex_lock(&j->mu);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}
