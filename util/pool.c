/* util/pool.c - host worker threads splitting a range (see pool.h).
 *
 * Workers sleep on a condition variable between runs; a run publishes its
 * parameters under the mutex and bumps a generation counter. Each participant
 * claims chunks from an atomic counter until the range is used up or a chunk
 * has failed; the caller returns once every worker has left the run, so the
 * run's parameters (on the caller's stack) are never read afterwards. */
#include "util/pool.h"

#include "util/num.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kiln_pool {
    pthread_t *threads;
    int n_workers;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t generation;
    int pending; /* workers still in the current run */
    int quit;
    /* the current run */
    kiln_pool_fn fn;
    void *ctx;
    int64_t n, grain;
    _Atomic int64_t next;
    _Atomic int failed;
    int rc;      /* the first failure and its message (under mu) */
    kiln_err err;
};

static void claim_chunks(kiln_pool *p)
{
    kiln_err e = {0};
    for (;;) {
        if (atomic_load_explicit(&p->failed, memory_order_relaxed))
            return;
        int64_t begin = atomic_fetch_add_explicit(&p->next, p->grain, memory_order_relaxed);
        if (begin >= p->n)
            return;
        int64_t end = p->n - begin > p->grain ? begin + p->grain : p->n;
        int rc = p->fn(p->ctx, begin, end, &e);
        if (rc) {
            pthread_mutex_lock(&p->mu);
            if (!p->rc) {
                p->rc = rc;
                p->err = e;
            }
            pthread_mutex_unlock(&p->mu);
            atomic_store(&p->failed, 1);
            return;
        }
    }
}

static void *worker(void *arg)
{
    kiln_pool *p = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->quit)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        claim_chunks(p);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void kiln_pool_free(kiln_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_workers; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int kiln_pool_new(int n_threads, kiln_pool **out, kiln_err *e)
{
    *out = NULL;
    kiln_pool *p = calloc(1, sizeof *p);
    int want = n_threads > 1 ? n_threads - 1 : 0;
    if (!p || !(p->threads = calloc((size_t)want + 1, sizeof *p->threads))) {
        free(p);
        return kiln_fail(e, KILN_E_NOMEM, "thread pool: out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    for (; p->n_workers < want; p->n_workers++) {
        int rc = pthread_create(&p->threads[p->n_workers], NULL, worker, p);
        if (rc) {
            kiln_pool_free(p);
            return kiln_fail(e, KILN_E_NOMEM, "thread pool: cannot start worker %d of %d: %s", p->n_workers + 1,
                             want, strerror(rc));
        }
    }
    *out = p;
    return 0;
}

int kiln_pool_threads(const kiln_pool *p) { return p ? p->n_workers + 1 : 1; }

int kiln_pool_run(kiln_pool *p, int64_t n, int64_t grain, kiln_pool_fn fn, void *ctx, kiln_err *e)
{
    if (grain < 1)
        grain = 1;
    if (n <= 0)
        return 0;
    if (!p || !p->n_workers || n <= grain) {
        for (int64_t b = 0; b < n; b += grain) {
            int rc = fn(ctx, b, n - b > grain ? b + grain : n, e);
            if (rc)
                return rc;
        }
        return 0;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->grain = grain;
    atomic_store(&p->next, 0);
    atomic_store(&p->failed, 0);
    p->rc = 0;
    p->pending = p->n_workers;
    p->generation++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    claim_chunks(p);
    pthread_mutex_lock(&p->mu);
    while (p->pending)
        pthread_cond_wait(&p->done, &p->mu);
    int rc = p->rc;
    if (rc && e)
        *e = p->err;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int kiln_host_threads(int *out, kiln_err *e)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    long long cap;
    int rc = kiln_env_int("KILN_CPU_THREADS", 1, 65536, n, &cap, e);
    if (rc)
        return rc;
    if (cap < n)
        n = (long)cap;
    *out = n > 1024 ? 1024 : (int)n;
    return 0;
}
