/* src/serve/serve_batch.c - the batch back end (backend.h): one engine
 * thread owns a session and a continuous-batching scheduler (engine/sched.h,
 * which is not thread-safe) and is the only thread that calls it. Connection
 * threads hand jobs over through a locked list and a condition variable; a
 * cancelled job is passed on to kiln_sched_cancel by the engine thread (a
 * running one also stops at its next piece: serve_job_append says so).
 *
 * KV admission: the KV cache (--ctx tokens in pages) is shared by every
 * sequence. A request is handed to the scheduler only when its worst case,
 * prompt + max_tokens, fits the pages not already promised to the requests in
 * flight; otherwise it is answered at once with 503 and Retry-After ("KV cache
 * exhausted") rather than admitted to thrash: the scheduler would preempt and
 * recompute sequences to make room, which costs every client. Requests that
 * do fit wait in the scheduler's queue for a batch seat; --max-queue bounds
 * that queue (503 beyond it). Pages the prefix cache keeps (finished
 * requests' prompts, engine/prefix_cache.h) are never counted here: the
 * scheduler evicts them whenever it needs the room. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sched.h"
#include "src/serve/backend.h"
#include "src/serve/serve_engine.h"

typedef struct active {
    struct batch *b;
    serve_job *j;
    int id;                     /* the scheduler's request id */
    int pages;                  /* KV pages promised to it */
    int cancel_sent;
    double t_sched;             /* when it reached the scheduler */
    int n_ids;
} active;

typedef struct batch {
    kiln_session s;
    kiln_sched *q;
    char model_id[128];
    int max_queue;
    pthread_t th;
    /* shared with connection threads, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    serve_job **in;             /* submitted, not yet taken by the engine thread */
    int n_in, cap_in;
    int stopping;
    serve_backend_stats st;     /* published by the engine thread after each step */
    /* engine thread only */
    active **act;
    int n_act, cap_act;
    int reserved, total_pages, page_size;
    unsigned long n_requests;
} batch;

static int on_text(void *user, const char *text, size_t len)
{
    active *a = user;
    return serve_job_append(a->j, text, len) != 0;
}

static void on_done(void *user, const kiln_req_result *r, const kiln_err *err)
{
    active *a = user;
    batch *b = a->b;
    serve_usage u = {0};
    u.prompt_tokens = r->n_prompt;
    u.completion_tokens = r->n_gen;
    /* TTFT as the client sees it: from the HTTP thread's submission */
    u.ttft_ms = r->ttft_s > 0 ? 1e3 * (r->ttft_s + (a->t_sched - a->j->t_submit)) : 0;
    int prefilled = r->n_prompt - r->n_cached;
    u.prefill_tps = r->prefill_s > 0 ? prefilled / r->prefill_s : 0;
    u.decode_tps = r->decode_s > 0 && r->n_gen > 1 ? (r->n_gen - 1) / r->decode_s : 0;
    const char *fin = r->finish == KILN_STOP_LIMIT || r->finish == KILN_STOP_FULL ? "length"
                      : r->finish == KILN_STOP_CALLER && atomic_load(&a->j->cancel) ? "cancelled"
                                                                                     : "stop";
    snprintf(u.finish_reason, sizeof u.finish_reason, "%s", fin);
    fprintf(stderr,
            "kiln serve: request %d: prompt %d tokens (%d reused from a shared prefix), %d generated (%s), "
            "queue %.0f ms, TTFT %.0f ms, decode %.1f tok/s%s%s\n",
            a->id, r->n_prompt, r->n_cached, r->n_gen, kiln_stop_name(r->finish), 1e3 * r->queue_s, u.ttft_ms,
            u.decode_tps, err ? ": " : "", err ? err->msg : "");
    serve_job_finish(a->j, err ? (err->code ? err->code : KILN_E_DEVICE) : 0, err, &u);
    b->reserved -= a->pages;
    for (int i = 0; i < b->n_act; i++)
        if (b->act[i] == a) {
            b->act[i] = b->act[--b->n_act];
            break;
        }
    serve_job_unref(a->j);
    free(a);
}

/* Tokenizes j, checks it against the context and the KV pages not promised
 * to others, and hands it to the scheduler; on any refusal the job finishes
 * here with the code the server turns into its status (400, 503). */
static void take(batch *b, serve_job *j)
{
    kiln_err e = {0};
    int32_t *ids = NULL;
    int n_ids = 0, rc;
    active *a = NULL;
    kiln_sampling sp;
    const kiln_engine *en = &b->s.en;
    if ((rc = serve_request_sampling(&j->rq, &sp, &e)) || (rc = serve_prompt_ids(&b->s, &j->rq, &ids, &n_ids, &e)))
        goto fail;
    if (n_ids == 0) {
        rc = kiln_fail(&e, KILN_E_INVALID, "the prompt is empty");
        goto fail;
    }
    if (n_ids >= en->ctx) {
        rc = kiln_fail(&e, KILN_E_FULL, "the prompt is %d tokens; the context holds %d (with room for at least one "
                       "generated token)", n_ids, en->ctx);
        goto fail;
    }
    if (j->rq.has_max_tokens && j->rq.max_tokens > en->ctx - n_ids) {
        rc = kiln_fail(&e, KILN_E_FULL, "max_tokens is %d, but the context holds %d tokens and the prompt takes %d: "
                       "at most %d tokens can be generated", j->rq.max_tokens, en->ctx, n_ids, en->ctx - n_ids);
        goto fail;
    }
    int n_predict = j->rq.max_tokens < en->ctx - n_ids ? j->rq.max_tokens : en->ctx - n_ids;
    /* the scheduler's own count for a sequence of n tokens: (n + 1) rounded up to pages */
    int pages = (n_ids + n_predict + 1 + b->page_size - 1) / b->page_size;
    if (pages > b->total_pages - b->reserved) {
        rc = kiln_fail(&e, KILN_E_UNAVAILABLE, "the KV cache is exhausted: this request needs %d pages of %d tokens "
                       "(prompt %d + max_tokens %d) and %d of %d are held for running requests; retry later", pages,
                       b->page_size, n_ids, n_predict, b->reserved, b->total_pages);
        goto fail;
    }
    if (!(a = calloc(1, sizeof *a))) {
        rc = kiln_fail(&e, KILN_E_NOMEM, "out of memory");
        goto fail;
    }
    if (b->n_act == b->cap_act) {
        int cap = b->cap_act ? 2 * b->cap_act : 16;
        active **na = realloc(b->act, sizeof *na * (size_t)cap);
        if (!na) {
            rc = kiln_fail(&e, KILN_E_NOMEM, "out of memory");
            goto fail;
        }
        b->act = na;
        b->cap_act = cap;
    }
    const char *stops[SERVE_MAX_STOP];
    for (int i = 0; i < j->rq.n_stop; i++)
        stops[i] = j->rq.stop[i];
    kiln_gen_opts g = {.n_predict = n_predict, .sampling = sp, .stop = stops, .n_stop = j->rq.n_stop,
                       .ignore_eos = j->rq.ignore_eos};
    *a = (active){.b = b, .j = j, .pages = pages, .t_sched = serve_now(), .n_ids = n_ids};
    kiln_req_cbs cb = {.on_text = on_text, .on_done = on_done, .user = a};
    int id = kiln_sched_submit(b->q, ids, n_ids, &g, &cb, &e);
    if (id < 0) {
        rc = -id;
        goto fail;
    }
    a->id = id;
    b->reserved += pages;
    b->act[b->n_act++] = a;
    b->n_requests++;
    free(ids);
    return;
fail:
    fprintf(stderr, "kiln serve: request refused: %s\n", e.msg);
    serve_job_finish(j, rc, &e, NULL);
    serve_job_unref(j);
    free(ids);
    free(a);
}

static void publish(batch *b)
{
    kiln_sched_stats ss;
    kiln_sched_stats_get(b->q, &ss);
    pthread_mutex_lock(&b->mu);
    b->st.queued = ss.queued; /* the scheduler's; stats() adds the hand-over list */
    b->st.running = ss.running;
    b->st.kv_pages_used = ss.kv_pages_used;
    b->st.kv_pages_free = ss.kv_pages_free;
    b->st.preempted = (long)ss.preempted;
    b->st.prefix_tokens_reused = (long)ss.prefix_tokens_reused;
    if (b->st.kv_pages_cached >= 0) {
        b->st.kv_pages_cached = ss.kv_pages_cached;
        b->st.cache_hits = (long)ss.cache_hits;
        b->st.cache_tokens_reused = (long)ss.cache_tokens_reused;
        b->st.cache_evictions = (long)ss.cache_evictions;
    }
    pthread_mutex_unlock(&b->mu);
}

static void *engine_main(void *arg)
{
    batch *b = arg;
    int busy = 0;
    serve_job **taken = NULL;
    int cap_taken = 0;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        while (!busy && !b->n_in && !b->stopping)
            pthread_cond_wait(&b->cv, &b->mu);
        int stopping = b->stopping, n = b->n_in;
        if (n > cap_taken) {
            serve_job **t = realloc(taken, sizeof *t * (size_t)n);
            if (t) {
                taken = t;
                cap_taken = n;
            } else {
                n = cap_taken; /* take what fits; the rest next round */
            }
        }
        memcpy(taken, b->in, sizeof *taken * (size_t)n);
        memmove(b->in, b->in + n, sizeof *b->in * (size_t)(b->n_in - n));
        b->n_in -= n;
        pthread_mutex_unlock(&b->mu);

        for (int i = 0; i < n; i++) {
            if (stopping || atomic_load(&taken[i]->cancel)) {
                kiln_err e;
                serve_job_finish(taken[i], kiln_fail(&e, KILN_E_TIMEOUT, "cancelled before it started"), &e, NULL);
                serve_job_unref(taken[i]);
            } else {
                take(b, taken[i]);
            }
        }
        for (int i = 0; i < b->n_act; i++)
            if (!b->act[i]->cancel_sent && atomic_load(&b->act[i]->j->cancel)) {
                b->act[i]->cancel_sent = 1;
                kiln_sched_cancel(b->q, b->act[i]->id);
            }
        if (stopping)
            break;
        kiln_err e = {0};
        int left = kiln_sched_step(b->q, &e);
        if (left < 0) {
            fprintf(stderr, "kiln serve: a batched step failed (its requests end with the error): %s\n", e.msg);
            left = b->n_act;
        }
        busy = left > 0;
        publish(b);
    }
    kiln_sched_close(b->q); /* on_done for what is left: finished as cancelled */
    b->q = NULL;
    free(taken);
    return NULL;
}

static int submit(void *impl, serve_job *j, kiln_err *e)
{
    batch *b = impl;
    pthread_mutex_lock(&b->mu);
    int waiting = b->st.queued + b->n_in;
    if (waiting >= b->max_queue || b->stopping) {
        pthread_mutex_unlock(&b->mu);
        return kiln_fail(e, KILN_E_FULL, "the server is busy: %d requests are waiting; retry later", waiting);
    }
    if (b->n_in == b->cap_in) {
        int cap = b->cap_in ? 2 * b->cap_in : 16;
        serve_job **ni = realloc(b->in, sizeof *ni * (size_t)cap);
        if (!ni) {
            pthread_mutex_unlock(&b->mu);
            return kiln_fail(e, KILN_E_NOMEM, "out of memory");
        }
        b->in = ni;
        b->cap_in = cap;
    }
    serve_job_ref(j);
    b->in[b->n_in++] = j;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

static void poke(void *impl)
{
    batch *b = impl;
    pthread_mutex_lock(&b->mu);
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void stats(void *impl, serve_backend_stats *st)
{
    batch *b = impl;
    pthread_mutex_lock(&b->mu);
    *st = b->st;
    st->queued += b->n_in;
    pthread_mutex_unlock(&b->mu);
}

static void close_batch(void *impl)
{
    batch *b = impl;
    pthread_mutex_lock(&b->mu);
    b->stopping = 1;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->th, NULL);
    free(b->in);
    free(b->act);
    kiln_session_close(&b->s);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

int serve_batch_open(serve_backend *out, const kiln_session_opts *so, int parallel, int max_queue, int no_prefix_cache,
                     kiln_err *e)
{
    memset(out, 0, sizeof *out);
    batch *b = calloc(1, sizeof *b);
    if (!b)
        return kiln_fail(e, KILN_E_NOMEM, "out of memory");
    int rc = kiln_session_open(&b->s, so, e);
    if (rc) {
        free(b);
        return rc;
    }
    kiln_sched_opts qo = {.max_batch = parallel, .no_prefix_cache = no_prefix_cache};
    if ((rc = kiln_sched_open(&b->q, &b->s, &qo, e))) {
        kiln_session_close(&b->s);
        free(b);
        return rc;
    }
    serve_model_id(so->model, b->model_id, sizeof b->model_id);
    b->max_queue = max_queue;
    b->page_size = b->s.en.kv.page_size;
    b->total_pages = b->s.en.kv.n_pages;
    b->st.kv_pages_used = 0;
    b->st.kv_pages_free = b->total_pages;
    b->st.kv_pages_cached = no_prefix_cache ? -1 : 0;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    char dev[256];
    kiln_session_device_name(&b->s, dev, sizeof dev);
    fprintf(stderr,
            "kiln serve: %s on %s, loaded in %.0f ms, batch of %d, KV cache %d tokens (%d pages of %d) shared by all "
            "requests, prefix cache %s, %s chat template\n",
            b->model_id, dev, b->s.load_ms, parallel, b->s.en.ctx, b->total_pages, b->page_size,
            no_prefix_cache ? "off" : "on", kiln_chat_name(b->s.model.chat));
    if (pthread_create(&b->th, NULL, engine_main, b)) {
        kiln_sched_close(b->q);
        kiln_session_close(&b->s);
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        free(b);
        return kiln_fail(e, KILN_E_NOMEM, "cannot start the engine thread");
    }
    *out = (serve_backend){.impl = b, .model_id = b->model_id, .ctx = b->s.en.ctx, .submit = submit, .poke = poke,
                           .stats = stats, .close = close_batch};
    return 0;
}
