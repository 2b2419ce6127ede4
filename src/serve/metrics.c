/* src/serve/metrics.c - see metrics.h. */
#include "src/serve/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hist_init(serve_hist *h, const double *le, int n)
{
    memset(h, 0, sizeof *h);
    h->n = n;
    memcpy(h->le, le, sizeof *le * (size_t)n);
}

static void hist_add(serve_hist *h, double v)
{
    int b = 0;
    while (b < h->n && v > h->le[b])
        b++;
    h->count[b]++;
    h->sum += v;
    h->total++;
}

void serve_metrics_init(serve_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    atomic_init(&m->generated, 0);
    static const double ttft[] = {0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    static const double prefill[] = {10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
    static const double decode[] = {1, 2.5, 5, 10, 25, 50, 100, 250, 500};
    hist_init(&m->ttft, ttft, (int)(sizeof ttft / sizeof *ttft));
    hist_init(&m->prefill_tps, prefill, (int)(sizeof prefill / sizeof *prefill));
    hist_init(&m->decode_tps, decode, (int)(sizeof decode / sizeof *decode));
}

void serve_metrics_destroy(serve_metrics *m)
{
    pthread_mutex_destroy(&m->mu);
}

void serve_metrics_request(serve_metrics *m, int status, const serve_usage *u, int cancelled)
{
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_status && m->by_status[i].status != status)
        i++;
    if (i == m->n_status && m->n_status < (int)(sizeof m->by_status / sizeof *m->by_status))
        m->by_status[m->n_status++].status = status;
    if (i < m->n_status)
        m->by_status[i].n++;
    if (cancelled)
        m->cancelled++;
    if (u) {
        m->prompt_tokens += (unsigned long)u->prompt_tokens;
        m->completion_tokens += (unsigned long)u->completion_tokens;
        if (status == 200 && u->completion_tokens > 0) {
            hist_add(&m->ttft, u->ttft_ms / 1000.0);
            if (u->prefill_tps > 0)
                hist_add(&m->prefill_tps, u->prefill_tps);
            if (u->decode_tps > 0)
                hist_add(&m->decode_tps, u->decode_tps);
        }
    }
    pthread_mutex_unlock(&m->mu);
}

typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void put(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = 2 * b->cap + (size_t)k;
        char *t = realloc(b->s, cap);
        if (!t) {
            b->oom = 1;
            return;
        }
        b->s = t;
        b->cap = cap;
    }
}

static void put_hist(sbuf *b, const char *name, const char *help, const serve_hist *h)
{
    put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->count[i];
        put(b, "%s_bucket{le=\"%g\"} %lu\n", name, h->le[i], cum);
    }
    cum += h->count[h->n];
    put(b, "%s_bucket{le=\"+Inf\"} %lu\n%s_sum %.6f\n%s_count %lu\n", name, cum, name, h->sum, name, h->total);
}

static void put_one(sbuf *b, const char *name, const char *type, const char *help, double v)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

char *serve_metrics_text(serve_metrics *m, const serve_backend_stats *st, const char *model_id)
{
    sbuf b = {.cap = 4096};
    if (!(b.s = malloc(b.cap)))
        return NULL;
    b.s[0] = 0;
    pthread_mutex_lock(&m->mu);
    char label[256]; /* a label value: no quote, backslash or newline (the model id is a file name) */
    snprintf(label, sizeof label, "%s", model_id);
    for (char *p = label; *p; p++)
        if (*p == '"' || *p == '\\' || *p == '\n')
            *p = '_';
    put(&b, "# HELP kiln_model_info The model served (value 1).\n# TYPE kiln_model_info gauge\n"
            "kiln_model_info{model=\"%s\"} 1\n", label);
    put(&b, "# HELP kiln_requests_total HTTP requests answered, by status (499: the client went away first).\n"
            "# TYPE kiln_requests_total counter\n");
    for (int i = 0; i < m->n_status; i++)
        put(&b, "kiln_requests_total{status=\"%d\"} %lu\n", m->by_status[i].status, m->by_status[i].n);
    put_one(&b, "kiln_requests_cancelled_total", "counter",
            "Generations stopped because their client disconnected.", (double)m->cancelled);
    put_one(&b, "kiln_prompt_tokens_total", "counter", "Prompt tokens of finished generations.",
            (double)m->prompt_tokens);
    put_one(&b, "kiln_completion_tokens_total", "counter", "Generated tokens of finished generations.",
            (double)m->completion_tokens);
    put_one(&b, "kiln_generated_tokens_total", "counter",
            "Text pieces generated so far, counted as they are decoded (running requests too).",
            (double)atomic_load(&m->generated));
    put_hist(&b, "kiln_time_to_first_token_seconds", "Time from submission to the first generated token.", &m->ttft);
    put_hist(&b, "kiln_prefill_tokens_per_second", "Prefill speed per request.", &m->prefill_tps);
    put_hist(&b, "kiln_decode_tokens_per_second", "Decode speed per request.", &m->decode_tps);
    pthread_mutex_unlock(&m->mu);
    put_one(&b, "kiln_queue_depth", "gauge", "Requests waiting to start generating.", st->queued);
    put_one(&b, "kiln_running_batch_size", "gauge", "Requests generating now.", st->running);
    if (st->kv_pages_used >= 0) {
        put_one(&b, "kiln_kv_pages_used", "gauge", "KV cache pages in use.", (double)st->kv_pages_used);
        put_one(&b, "kiln_kv_pages_free", "gauge", "KV cache pages free.", (double)st->kv_pages_free);
    }
    put_one(&b, "kiln_preempted_total", "counter", "Sequences evicted from the KV cache to make room.",
            (double)st->preempted);
    put_one(&b, "kiln_prefix_tokens_reused_total", "counter", "Prompt tokens served from a cached prefix.",
            (double)st->prefix_tokens_reused);
    if (st->kv_pages_cached >= 0) { /* the batch back end with its prefix cache on */
        put_one(&b, "kiln_prefix_cache_pages", "gauge",
                "KV pages only the prefix cache holds (finished requests' prefixes; evicted when needed).",
                (double)st->kv_pages_cached);
        put_one(&b, "kiln_prefix_cache_hits_total", "counter", "Requests that reused pages of the prefix cache.",
                (double)st->cache_hits);
        put_one(&b, "kiln_prefix_cache_tokens_reused_total", "counter",
                "Prompt tokens reused from the prefix cache (part of kiln_prefix_tokens_reused_total).",
                (double)st->cache_tokens_reused);
        put_one(&b, "kiln_prefix_cache_evictions_total", "counter", "Prefix cache pages dropped to make room.",
                (double)st->cache_evictions);
    }
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
