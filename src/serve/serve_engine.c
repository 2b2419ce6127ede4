/* src/serve/serve_engine.c - see serve_engine.h.
 *
 * One model, one KV sequence, requests one at a time (a mutex). The tokens
 * of the last request (prompt + the generated tokens that were decoded) are
 * remembered: when the next prompt starts with a prefix of them (the same
 * conversation, one turn further), the sequence is truncated to the common
 * prefix and only the rest is prefilled. */
#include "src/serve/serve_engine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct serve_engine {
    pthread_mutex_t mu;
    kiln_session s;
    kiln_kv_seq seq;
    int seq_ok;
    int32_t *cached;           /* the tokens whose K/V the sequence holds: seq.n_tokens of them */
    int cap_cached;
    char model_id[128];
    uint64_t n_requests;
};

int serve_engine_open(serve_engine **out, const kiln_session_opts *o, kiln_err *e)
{
    *out = NULL;
    serve_engine *s = calloc(1, sizeof *s);
    if (!s)
        return kiln_fail(e, KILN_E_NOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    int rc = kiln_session_open(&s->s, o, e);
    if (rc) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return rc;
    }
    if ((rc = kiln_session_seq(&s->s, &s->seq, e))) {
        serve_engine_close(s);
        return rc;
    }
    s->seq_ok = 1;
    kiln_model *m = &s->s.model;
    serve_model_id(o->model, s->model_id, sizeof s->model_id);
    char dev[256];
    kiln_session_device_name(&s->s, dev, sizeof dev);
    fprintf(stderr, "kiln serve: %s on %s, loaded in %.0f ms, context %d tokens, %s chat template\n", s->model_id, dev,
            s->s.load_ms, s->s.en.ctx, kiln_chat_name(m->chat));
    *out = s;
    return 0;
}

void serve_engine_close(serve_engine *s)
{
    if (!s)
        return;
    if (s->seq_ok)
        kiln_kv_seq_free(&s->seq);
    kiln_session_close(&s->s);
    free(s->cached);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

typedef struct piece_ctx {
    serve_piece_fn fn;
    void *ctx;
    char *buf;
    size_t cap;
    int oom;
} piece_ctx;

static int on_text(void *user, const char *t, size_t n)
{
    piece_ctx *p = user;
    if (n + 1 > p->cap) {
        char *b = realloc(p->buf, n + 64);
        if (!b) {
            p->oom = 1;
            return 1;
        }
        p->buf = b;
        p->cap = n + 64;
    }
    memcpy(p->buf, t, n);
    p->buf[n] = 0;
    return p->fn(p->ctx, p->buf);
}

void serve_model_id(const char *path, char *out, size_t n)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t bl = strlen(base);
    if (bl > 5 && !strcmp(base + bl - 5, ".gguf"))
        bl -= 5;
    snprintf(out, n, "%.*s", (int)bl, base);
}

int serve_prompt_ids(const kiln_session *s, const serve_request *rq, int32_t **ids, int *n, kiln_err *e)
{
    if (!rq->is_chat) {
        const char *p = rq->prompt ? rq->prompt : "";
        return kiln_session_tokenize(s, p, strlen(p), -1, 0, ids, n, e);
    }
    kiln_chat_msg msgs[SERVE_MAX_MESSAGES];
    for (int i = 0; i < rq->n_msgs; i++)
        msgs[i] = (kiln_chat_msg){rq->msgs[i].role, rq->msgs[i].content};
    char *text = NULL;
    size_t len = 0;
    int rc = kiln_session_chat_prompt(s, msgs, rq->n_msgs, &text, &len, e);
    if (!rc)
        rc = kiln_session_tokenize(s, text, len, -1, 1, ids, n, e);
    free(text);
    return rc;
}

int serve_request_sampling(const serve_request *rq, kiln_sampling *sp, kiln_err *e)
{
    kiln_sampling_default(sp);
    sp->temp = rq->temperature;
    sp->top_p = rq->top_p;
    sp->top_k = rq->top_k;
    sp->min_p = rq->min_p;
    sp->repeat_penalty = rq->repeat_penalty;
    sp->seed = rq->has_seed ? rq->seed : ((uint64_t)time(NULL) << 20) ^ (uint64_t)clock() ^ (uint64_t)rand();
    int rc = kiln_sampling_check(sp, e);
    return rc && rc != KILN_E_INVALID ? kiln_fail(e, KILN_E_INVALID, "%s", e ? e->msg : "bad sampling") : rc;
}

/* Remembers what the sequence holds after a request: the prompt's ids and
 * the generated tokens that were decoded. */
static int remember(serve_engine *s, const int32_t *ids, int n_ids, const int32_t *out, kiln_err *e)
{
    int held = s->seq.n_tokens, ctx = s->s.en.ctx;
    if (held > s->cap_cached) {
        int32_t *c = realloc(s->cached, sizeof *c * (size_t)ctx);
        if (!c)
            return kiln_fail(e, KILN_E_NOMEM, "out of memory");
        s->cached = c;
        s->cap_cached = ctx;
    }
    memcpy(s->cached, ids, sizeof *ids * (size_t)n_ids);
    if (held > n_ids)
        memcpy(s->cached + n_ids, out, sizeof *out * (size_t)(held - n_ids));
    return 0;
}

static int generate(void *user, const serve_request *rq, serve_piece_fn piece, void *ctx, serve_usage *u,
                    kiln_err *e)
{
    serve_engine *s = user;
    kiln_engine *en = &s->s.en;
    kiln_sampling sp;
    int rc = serve_request_sampling(rq, &sp, e);
    if (rc)
        return rc;
    const char *stops[SERVE_MAX_STOP];
    for (int i = 0; i < rq->n_stop; i++)
        stops[i] = rq->stop[i];

    int32_t *ids = NULL, *out = NULL;
    int n_ids = 0;
    piece_ctx pc = {.fn = piece, .ctx = ctx};
    kiln_gen_stats st = {0};
    pthread_mutex_lock(&s->mu);
    s->n_requests++;
    if ((rc = serve_prompt_ids(&s->s, rq, &ids, &n_ids, e)))
        goto out;
    if (n_ids == 0) {
        rc = kiln_fail(e, KILN_E_INVALID, "the prompt is empty");
        goto out;
    }
    if (n_ids >= en->ctx) {
        rc = kiln_fail(e, KILN_E_FULL, "the prompt is %d tokens; the context holds %d (with room for at least one "
                       "generated token)", n_ids, en->ctx);
        goto out;
    }
    if (rq->has_max_tokens && rq->max_tokens > en->ctx - n_ids) {
        rc = kiln_fail(e, KILN_E_FULL, "max_tokens is %d, but the context holds %d tokens and the prompt takes %d: "
                       "at most %d tokens can be generated", rq->max_tokens, en->ctx, n_ids, en->ctx - n_ids);
        goto out;
    }
    /* prefix reuse: keep the cached tokens this prompt starts with (at least
     * one prompt token is forwarded: its logits start the generation) */
    int common = 0, lim = s->seq.n_tokens < n_ids - 1 ? s->seq.n_tokens : n_ids - 1;
    while (common < lim && s->cached[common] == ids[common])
        common++;
    kiln_kv_seq_truncate(&s->seq, common);
    int n_predict = rq->max_tokens < en->ctx - n_ids ? rq->max_tokens : en->ctx - n_ids;
    if (!(out = malloc(sizeof *out * (size_t)n_predict))) {
        rc = kiln_fail(e, KILN_E_NOMEM, "out of memory");
        goto out;
    }
    kiln_gen_opts go = {.n_predict = n_predict, .sampling = sp, .stop = stops, .n_stop = rq->n_stop,
                        .ignore_eos = rq->ignore_eos, .on_text = on_text, .user = &pc};
    rc = kiln_session_generate(&s->s, &s->seq, ids + common, n_ids - common, &go, &st, out, n_predict, e);
    if (!rc && pc.oom)
        rc = kiln_fail(e, KILN_E_NOMEM, "out of memory");
    if (!rc)
        rc = remember(s, ids, n_ids, out, e);
    if (rc) {
        kiln_kv_seq_truncate(&s->seq, 0); /* start the next request from a clean cache */
        goto out;
    }
    kiln_timings t;
    kiln_session_timings(&s->s, &st, &t);
    u->prompt_tokens = n_ids;
    u->completion_tokens = st.n_gen;
    u->prefill_tps = t.prefill_tok_s;
    u->decode_tps = t.decode_tok_s;
    u->ttft_ms = t.ttft_ms;
    snprintf(u->finish_reason, sizeof u->finish_reason, "%s",
             st.stop_reason == KILN_STOP_LIMIT || st.stop_reason == KILN_STOP_FULL ? "length" : "stop");
    fprintf(stderr,
            "kiln serve: request %llu: prompt %d tokens (%d reused from the cache, %d prefilled), %d generated (%s), "
            "prefill %.1f tok/s, decode %.1f tok/s, TTFT %.0f ms\n",
            (unsigned long long)s->n_requests, n_ids, common, n_ids - common, st.n_gen,
            kiln_stop_name(st.stop_reason), u->prefill_tps, u->decode_tps, u->ttft_ms);
out:
    if (rc)
        fprintf(stderr, "kiln serve: request %llu: %s\n", (unsigned long long)s->n_requests, e ? e->msg : "error");
    pthread_mutex_unlock(&s->mu);
    kiln_gen_stats_free(&st);
    free(pc.buf);
    free(ids);
    free(out);
    return rc;
}

void serve_engine_generator(serve_engine *s, serve_generator *g)
{
    g->user = s;
    g->model_id = s->model_id;
    g->ctx = s->s.en.ctx;
    g->generate = generate;
}
