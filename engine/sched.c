/* engine/sched.c - see sched.h.
 *
 * A request holds its tokens (prompt, then each generated token) and how
 * many of them its KV sequence holds (n_fed). A running request feeds
 * toks[n_fed..n_toks) each step: one token when decoding, a chunk of its
 * prompt when prefilling. Preemption frees the sequence and sets n_fed to 0:
 * on readmission everything is recomputed as one prompt, and generation goes
 * on from where it was (the sampler, detokenizer and stop-string state stay
 * with the request). */
#include "engine/sched.h"

#include "engine/prefix_cache.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

typedef struct req {
    int id;
    int32_t *toks;
    int n_toks, cap_toks, n_prompt, n_fed;
    int running, cancelled;
    kiln_kv_seq seq;
    kiln_gen_opts g;                /* on_text/user point at the request's callbacks */
    char **stop;                    /* owned copies of the stop strings */
    kiln_req_cbs cb;
    kiln_sampler smp;
    kiln_detok_stream ds;
    kiln_text_stream ts;
    int n_gen, n_cached, n_preempted, admitted, cache_hit;
    double t_submit, t_admit, t_first, t_last;
} req;

struct kiln_sched {
    kiln_session *s;
    kiln_engine *en;
    int max_batch, chunk, share;
    int next_id;
    req **queue;                    /* FIFO; preempted requests go back to the front */
    int n_queue;
    req **run;                      /* in admission order: the youngest is last */
    int n_run, cap;
    int last_batch;
    unsigned long long preempted, reused, steps;
    kiln_prefix_cache pc;           /* finished requests' pages */
    int use_cache;
    int *chain;                     /* [kv pages]: a lookup's pages */
    unsigned long long cache_hits, cache_reused;
};

static int text_cb(void *user, const char *t, size_t n)
{
    req *r = user;
    return r->cb.on_text ? r->cb.on_text(r->cb.user, t, n) : 0;
}

static void req_free(req *r)
{
    if (!r)
        return;
    if (r->seq.cache)
        kiln_kv_seq_free(&r->seq);
    for (int i = 0; r->stop && i < r->g.n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    free(r->toks);
    kiln_sampler_free(&r->smp);
    kiln_detok_stream_free(&r->ds);
    kiln_text_stream_free(&r->ts);
    free(r);
}

/* r's whole KV pages go to the prefix cache before its sequence lets go. */
static void keep_pages(kiln_sched *q, const req *r)
{
    if (q->use_cache && r->seq.cache)
        kiln_prefix_cache_insert(&q->pc, &r->seq, r->toks, r->n_fed);
}

/* Ends a request: the held-back text (unless a stop string or the caller
 * ended it), on_done, and its resources. Not in any list any more. */
static void finish(kiln_sched *q, req *r, int reason, const kiln_err *err)
{
    if (!err && reason != KILN_STOP_STRING && reason != KILN_STOP_CALLER) {
        const char *txt;
        size_t tl;
        if (!kiln_detok_stream_finish(&r->ds, &txt, &tl, NULL))
            kiln_text_push(&r->ts, &r->g, txt, tl);
        kiln_text_flush(&r->ts, &r->g);
    }
    kiln_req_result res = {.finish = reason, .n_prompt = r->n_prompt, .n_gen = r->n_gen, .n_cached = r->n_cached,
                           .n_preempted = r->n_preempted};
    if (r->t_first > 0) {
        res.ttft_s = r->t_first - r->t_submit;
        res.prefill_s = r->t_first - r->t_admit;
        res.decode_s = r->t_last - r->t_first;
    }
    if (r->admitted)
        res.queue_s = r->t_admit - r->t_submit;
    if (r->cb.on_done)
        r->cb.on_done(r->cb.user, &res, err);
    if (!err)
        keep_pages(q, r);
    req_free(r);
}

static void remove_at(req **list, int *n, int i)
{
    memmove(list + i, list + i + 1, sizeof *list * (size_t)(*n - i - 1));
    (*n)--;
}

int kiln_sched_open(kiln_sched **out, kiln_session *s, const kiln_sched_opts *o, kiln_err *e)
{
    *out = NULL;
    if (!s || !s->engine_ready)
        return kiln_fail(e, KILN_E_INVALID, "scheduler: the session has no engine");
    int mb = o && o->max_batch > 0 ? o->max_batch : 8;
    if (mb >= s->en.chunk)
        return kiln_fail(e, KILN_E_INVALID, "scheduler: a batch of %d sequences needs an engine chunk above it (the "
                         "chunk is %d tokens: raise --chunk)", mb, s->en.chunk);
    kiln_sched *q = calloc(1, sizeof *q);
    if (q) {
        q->cap = 16;
        q->queue = malloc(sizeof *q->queue * (size_t)q->cap);
        q->run = malloc(sizeof *q->run * (size_t)mb);
    }
    if (!q || !q->queue || !q->run) {
        if (q) {
            free(q->queue);
            free(q->run);
        }
        free(q);
        return kiln_fail(e, KILN_E_NOMEM, "scheduler: out of memory");
    }
    q->s = s;
    q->en = &s->en;
    q->max_batch = mb;
    q->chunk = o && o->chunk > 0 ? o->chunk : s->en.chunk;
    q->share = !(o && o->no_prefix_share);
    q->use_cache = q->share && !(o && o->no_prefix_cache);
    if (q->use_cache) {
        int rc = kiln_prefix_cache_init(&q->pc, &s->en.kv, e);
        if (!rc && !(q->chain = malloc(sizeof *q->chain * (size_t)s->en.kv.n_pages)))
            rc = kiln_fail(e, KILN_E_NOMEM, "scheduler: out of memory for the prefix cache");
        if (rc) {
            kiln_prefix_cache_free(&q->pc);
            free(q->run);
            free(q->queue);
            free(q);
            return kiln_err_wrap(e, "scheduler");
        }
    }
    *out = q;
    return 0;
}

void kiln_sched_close(kiln_sched *q)
{
    if (!q)
        return;
    for (int i = 0; i < q->n_run; i++)
        finish(q, q->run[i], KILN_STOP_CALLER, NULL);
    for (int i = 0; i < q->n_queue; i++)
        finish(q, q->queue[i], KILN_STOP_CALLER, NULL);
    if (q->use_cache)
        kiln_prefix_cache_free(&q->pc); /* its pages back to the free list */
    free(q->chain);
    free(q->run);
    free(q->queue);
    free(q);
}

static int push_queue(kiln_sched *q, req *r, int front)
{
    if (q->n_queue == q->cap) {
        req **nq = realloc(q->queue, sizeof *nq * (size_t)q->cap * 2);
        if (!nq)
            return KILN_E_NOMEM;
        q->queue = nq;
        q->cap *= 2;
    }
    if (front) {
        memmove(q->queue + 1, q->queue, sizeof *q->queue * (size_t)q->n_queue);
        q->queue[0] = r;
    } else {
        q->queue[q->n_queue] = r;
    }
    q->n_queue++;
    return 0;
}

int kiln_sched_submit(kiln_sched *q, const int32_t *prompt, int n_prompt, const kiln_gen_opts *g,
                      const kiln_req_cbs *cb, kiln_err *e)
{
    const kiln_engine *en = q->en;
    int V = en->m->cfg.n_vocab, rc;
    if (!prompt || n_prompt <= 0 || !g)
        return -kiln_fail(e, KILN_E_INVALID, "request: empty prompt");
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= V)
            return -kiln_fail(e, KILN_E_INVALID, "request: prompt token %d (%d) outside the vocabulary (%d)", i,
                              prompt[i], V);
    int n_pred = g->n_predict > 0 ? g->n_predict : 0;
    /* the last generated token is never fed back, so prompt + n_predict - 1 rows of KV */
    if ((long long)n_prompt + n_pred - (n_pred > 0) > en->ctx)
        return -kiln_fail(e, KILN_E_FULL, "request: %d prompt tokens + %d to generate can never fit the KV cache of "
                          "%d tokens (a shorter prompt or fewer max tokens, or a larger --ctx)", n_prompt, n_pred,
                          en->ctx);
    req *r = calloc(1, sizeof *r);
    if (!r)
        return -kiln_fail(e, KILN_E_NOMEM, "request: out of memory");
    r->cap_toks = n_prompt + n_pred + 1;
    r->toks = malloc(sizeof *r->toks * (size_t)r->cap_toks);
    r->g = *g;
    r->g.n_predict = n_pred;
    r->stop = g->n_stop > 0 ? calloc((size_t)g->n_stop, sizeof *r->stop) : NULL;
    if (!r->toks || (g->n_stop > 0 && !r->stop)) {
        req_free(r);
        return -kiln_fail(e, KILN_E_NOMEM, "request: out of memory");
    }
    for (int i = 0; i < g->n_stop; i++)
        if (!(r->stop[i] = strdup(g->stop[i] ? g->stop[i] : ""))) {
            r->g.n_stop = i + 1;
            req_free(r);
            return -kiln_fail(e, KILN_E_NOMEM, "request: out of memory");
        }
    r->g.stop = (const char *const *)r->stop;
    r->g.on_text = text_cb;
    r->g.user = r;
    if ((rc = kiln_sampler_init(&r->smp, &g->sampling, V, e))) {
        r->g.n_stop = g->n_stop;
        req_free(r);
        return -rc;
    }
    memcpy(r->toks, prompt, sizeof *r->toks * (size_t)n_prompt);
    r->n_toks = r->n_prompt = n_prompt;
    if (cb)
        r->cb = *cb;
    kiln_detok_stream_init(&r->ds, en->m->tok, 0);
    r->t_submit = kiln_now_s();
    r->id = q->next_id++;
    if (q->next_id < 0)
        q->next_id = 0;
    if (push_queue(q, r, 0)) {
        req_free(r);
        return -kiln_fail(e, KILN_E_NOMEM, "request: out of memory");
    }
    return r->id;
}

int kiln_sched_cancel(kiln_sched *q, int id)
{
    for (int i = 0; i < q->n_run; i++)
        if (q->run[i]->id == id)
            return q->run[i]->cancelled = 1, 0;
    for (int i = 0; i < q->n_queue; i++)
        if (q->queue[i]->id == id)
            return q->queue[i]->cancelled = 1, 0;
    return KILN_E_INVALID;
}

/* The running request whose KV holds the longest prefix of r's tokens. */
static int best_prefix(const kiln_sched *q, const req *r, req **from)
{
    int best = 0;
    *from = NULL;
    for (int i = 0; i < q->n_run; i++) {
        const req *o = q->run[i];
        int lim = o->n_fed < r->n_toks - 1 ? o->n_fed : r->n_toks - 1, n = 0; /* leave one token to prefill */
        while (n < lim && o->toks[n] == r->toks[n])
            n++;
        if (n > best) {
            best = n;
            *from = (req *)o;
        }
    }
    return best;
}

/* 1 when a running request is still prefilling more whole pages of r's
 * prompt than r can map now (`have` tokens): r waits for them instead of
 * computing them a second time (a burst of requests with the same new
 * system prompt: one prefills it, the others then map it). The wait is
 * bounded by that request's prefill, which is ahead of r's in the chunk
 * budget (oldest first). */
static int worth_waiting(const kiln_sched *q, const req *r, int have)
{
    int ps = q->en->kv.page_size;
    for (int i = 0; i < q->n_run; i++) {
        const req *o = q->run[i];
        if (o->n_fed >= o->n_prompt)
            continue; /* its prompt is in the cache: best_prefix saw all it will get */
        int lim = o->n_prompt < r->n_toks - 1 ? o->n_prompt : r->n_toks - 1, n = 0;
        while (n < lim && o->toks[n] == r->toks[n])
            n++;
        if (n / ps > have / ps)
            return 1;
    }
    return 0;
}

/* Pages the running sequences need for their next step (the pending tokens
 * of each, as if all were fed at once: an upper bound). */
static int pages_pending(const kiln_sched *q)
{
    int n = 0;
    for (int i = 0; i < q->n_run; i++)
        n += kiln_kv_seq_pages_needed(&q->run[i]->seq, q->run[i]->n_toks - q->run[i]->n_fed);
    return n;
}

/* KV pages the scheduler may use: free, or held only by the prefix cache. */
static int pages_available(const kiln_sched *q)
{
    return q->en->kv.n_free + (q->use_cache ? kiln_prefix_cache_evictable(&q->pc) : 0);
}

/* Admits the front of the queue while a batch seat and its KV are free.
 * Returns 0 or a device error code (a page table upload). */
static int admit(kiln_sched *q, kiln_err *e)
{
    kiln_kv_cache *kv = &q->en->kv;
    while (q->n_queue && q->n_run < q->max_batch) {
        req *r = q->queue[0];
        req *from = NULL;
        int shared = q->share ? best_prefix(q, r, &from) : 0;
        if (shared < kv->page_size) /* less than a page is not worth a copy on write */
            shared = 0;
        /* cached pages: whole pages of all but the last prompt token (computed for its logits) */
        int n_chain = q->use_cache ? kiln_prefix_cache_lookup(&q->pc, r->toks, (r->n_toks - 1) / kv->page_size,
                                                              q->chain) : 0;
        int cached = n_chain * kv->page_size, pinned = 0;
        if (cached && cached >= shared) {
            shared = cached;
            from = NULL;
            pinned = kiln_prefix_cache_pinned_by(&q->pc, q->chain, n_chain); /* evictable no more once mapped */
        }
        if (q->share && worth_waiting(q, r, shared))
            return 0;
        int whole = shared / kv->page_size; /* pages mapped, not taken from the free list */
        int need = (r->n_toks + 1 + kv->page_size - 1) / kv->page_size - whole + (shared % kv->page_size != 0);
        if (need > pages_available(q) - pinned - pages_pending(q)) {
            if (q->n_run)
                return 0; /* waits for running requests to finish */
            /* alone it cannot fit: impossible after submit's check unless the cache is
             * smaller than its own context, but never loop on it */
            remove_at(q->queue, &q->n_queue, 0);
            finish(q, r, KILN_STOP_FULL, NULL);
            continue;
        }
        int rc = kiln_kv_seq_init(&r->seq, kv, q->en->ctx, e);
        if (!rc && shared && from)
            rc = kiln_kv_seq_share(&r->seq, &from->seq, shared, e);
        else if (!rc && shared)
            rc = kiln_kv_seq_map(&r->seq, q->chain, n_chain, shared, e);
        if (rc)
            return kiln_err_wrap(e, "scheduler: admitting request %d", r->id);
        remove_at(q->queue, &q->n_queue, 0);
        r->n_fed = shared;
        r->n_cached += shared;
        q->reused += (unsigned long long)shared;
        if (shared && !from) {
            q->cache_reused += (unsigned long long)shared;
            q->cache_hits += !r->cache_hit;
            r->cache_hit = 1;
        }
        r->running = 1;
        if (!r->admitted) {
            r->admitted = 1;
            r->t_admit = kiln_now_s();
        }
        q->run[q->n_run++] = r;
    }
    return 0;
}

/* The youngest running request goes back to the front of the queue, its
 * pages freed; its tokens so far are recomputed when it is readmitted. */
static void preempt_youngest(kiln_sched *q)
{
    req *r = q->run[--q->n_run];
    keep_pages(q, r); /* its readmission maps them back unless they were evicted meanwhile */
    kiln_kv_seq_free(&r->seq);
    r->n_fed = 0;
    r->running = 0;
    r->n_preempted++;
    q->preempted++;
    if (push_queue(q, r, 1)) /* out of host memory for the queue: end it rather than lose it */
        finish(q, r, KILN_STOP_FULL, NULL);
}

/* A sampled token: the same steps as kiln_generate. Returns a KILN_STOP_*
 * when the request ends, -1 to go on. */
static int take_token(kiln_sched *q, req *r, const float *logits, double now)
{
    int32_t id = kiln_sample(&r->smp, logits, r->toks, r->n_toks);
    if (r->t_first <= 0)
        r->t_first = now;
    r->t_last = now;
    if (!r->g.ignore_eos && kiln_token_is_eog(q->en->m->tok, id))
        return KILN_STOP_EOG;
    r->toks[r->n_toks++] = id;
    r->n_gen++;
    if (r->cb.on_token)
        r->cb.on_token(r->cb.user, id);
    const char *txt;
    size_t tl;
    if (kiln_detok_stream_push(&r->ds, id, &txt, &tl, NULL))
        return KILN_STOP_CALLER;
    int pr = kiln_text_push(&r->ts, &r->g, txt, tl);
    if (pr)
        return pr == 1 ? KILN_STOP_STRING : KILN_STOP_CALLER;
    if (r->n_gen >= r->g.n_predict)
        return KILN_STOP_LIMIT;
    return -1;
}

int kiln_sched_step(kiln_sched *q, kiln_err *e)
{
    /* cancelled and zero-token requests end first */
    for (int i = 0; i < q->n_queue; i++)
        if (q->queue[i]->cancelled || q->queue[i]->g.n_predict == 0) {
            req *r = q->queue[i];
            remove_at(q->queue, &q->n_queue, i--);
            finish(q, r, r->cancelled ? KILN_STOP_CALLER : KILN_STOP_LIMIT, NULL);
        }
    for (int i = 0; i < q->n_run; i++)
        if (q->run[i]->cancelled) {
            req *r = q->run[i];
            remove_at(q->run, &q->n_run, i--);
            finish(q, r, KILN_STOP_CALLER, NULL);
        }
    int rc = admit(q, e);
    if (rc)
        return -rc;
    if (!q->n_run)
        return q->n_queue;

    kiln_kv_cache *kv = &q->en->kv;
    kiln_batch_seg segs[q->max_batch];
    req *who[q->max_batch];
    int n_segs;
    for (;;) {
        /* prefill chunks first (the oldest prompts first, sharing the step's
         * prefill budget), then every decoding request's one token */
        n_segs = 0;
        int n_dec = 0;
        for (int i = 0; i < q->n_run; i++)
            n_dec += q->run[i]->n_toks - q->run[i]->n_fed == 1;
        int budget = q->en->chunk - n_dec < q->chunk ? q->en->chunk - n_dec : q->chunk;
        for (int i = 0; i < q->n_run && budget > 0; i++) {
            req *r = q->run[i];
            int pend = r->n_toks - r->n_fed;
            if (pend <= 1)
                continue;
            int n = pend < budget ? pend : budget;
            segs[n_segs] = (kiln_batch_seg){.seq = &r->seq, .tokens = r->toks + r->n_fed, .n = n, .logits = n == pend};
            who[n_segs++] = r;
            budget -= n;
        }
        for (int i = 0; i < q->n_run; i++) {
            req *r = q->run[i];
            if (r->n_toks - r->n_fed != 1)
                continue;
            segs[n_segs] = (kiln_batch_seg){.seq = &r->seq, .tokens = r->toks + r->n_fed, .n = 1, .logits = 1};
            who[n_segs++] = r;
        }
        int need = 0;
        for (int i = 0; i < n_segs; i++)
            need += kiln_kv_seq_pages_needed(segs[i].seq, segs[i].n);
        if (need <= pages_available(q)) {
            if (q->use_cache && kiln_prefix_cache_make_room(&q->pc, need) < need) /* cannot happen: counted */
                return -kiln_fail(e, KILN_E_INVALID, "scheduler: %d KV pages needed, %d free after evicting the "
                                  "prefix cache", need, kv->n_free);
            break;
        }
        if (q->n_run == 1) { /* alone and still no room: it ends, as kiln_generate does on a full cache */
            req *r = q->run[--q->n_run];
            finish(q, r, KILN_STOP_FULL, NULL);
            return q->n_queue;
        }
        preempt_youngest(q);
    }
    q->last_batch = n_segs;
    q->steps++;
    int decoding = 0;
    for (int i = 0; i < n_segs; i++)
        decoding |= segs[i].n == 1;
    /* a step with any decode token counts as decode in the profile (what the streams wait for) */
    kiln_profile_phase(q->en->prof, decoding ? KILN_PHASE_DECODE : KILN_PHASE_PREFILL, kiln_now_s());
    kiln_err fe = {0};
    rc = kiln_forward_batch(q->en, segs, n_segs, &fe);
    if (rc) {
        /* the sequences are unchanged: every request of this step ends with the error */
        if (e)
            *e = fe;
        for (int i = 0; i < n_segs; i++) {
            for (int j = 0; j < q->n_run; j++)
                if (q->run[j] == who[i]) {
                    remove_at(q->run, &q->n_run, j);
                    break;
                }
            finish(q, who[i], KILN_STOP_CALLER, &fe);
        }
        kiln_profile_phase(q->en->prof, KILN_PHASE_NONE, kiln_now_s());
        return -rc;
    }
    double now = kiln_now_s();
    kiln_profile_phase(q->en->prof, KILN_PHASE_NONE, now);
    int V = q->en->m->cfg.n_vocab, row = 0;
    for (int i = 0; i < n_segs; i++) {
        req *r = who[i];
        r->n_fed += segs[i].n;
        if (!segs[i].logits)
            continue;
        int stop = take_token(q, r, q->en->batch_logits + (size_t)row++ * (size_t)V, now);
        if (stop >= 0) {
            for (int j = 0; j < q->n_run; j++)
                if (q->run[j] == r) {
                    remove_at(q->run, &q->n_run, j);
                    break;
                }
            finish(q, r, stop, NULL);
        }
    }
    return q->n_run + q->n_queue;
}

void kiln_sched_stats_get(const kiln_sched *q, kiln_sched_stats *st)
{
    memset(st, 0, sizeof *st);
    st->queued = q->n_queue;
    st->running = q->n_run;
    st->batch = q->last_batch;
    st->kv_pages_free = q->en->kv.n_free;
    st->kv_pages_cached = q->use_cache ? kiln_prefix_cache_evictable(&q->pc) : 0;
    st->kv_pages_used = q->en->kv.n_pages - q->en->kv.n_free - st->kv_pages_cached;
    st->preempted = q->preempted;
    st->prefix_tokens_reused = q->reused;
    st->steps = q->steps;
    st->cache_hits = q->cache_hits;
    st->cache_tokens_reused = q->cache_reused;
    st->cache_evictions = q->use_cache ? q->pc.evicted : 0;
}
