/* src/serve/metrics.h - the server's counters and histograms, written as
 * Prometheus text exposition (format 0.0.4) for GET /metrics. Thread safe:
 * one mutex (updates are a few per request). */
#ifndef KILN_SERVE_METRICS_H
#define KILN_SERVE_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "src/serve/backend.h"

#define SERVE_HIST_MAX 16

typedef struct serve_hist {
    int n;                          /* finite bucket bounds */
    double le[SERVE_HIST_MAX];
    unsigned long count[SERVE_HIST_MAX + 1]; /* per bucket (not cumulative); last: +Inf */
    double sum;
    unsigned long total;
} serve_hist;

typedef struct serve_metrics {
    pthread_mutex_t mu;
    struct {
        int status;
        unsigned long n;
    } by_status[16];
    int n_status;
    unsigned long prompt_tokens, completion_tokens, cancelled;
    atomic_long generated;          /* pieces generated so far, live (a cancelled request stops adding) */
    serve_hist ttft, prefill_tps, decode_tps;
} serve_metrics;

void serve_metrics_init(serve_metrics *m);
void serve_metrics_destroy(serve_metrics *m);
/* A finished request: its HTTP status (499: the client went away) and, for a
 * generation, its usage (NULL otherwise). */
void serve_metrics_request(serve_metrics *m, int status, const serve_usage *u, int cancelled);
/* The exposition text (malloc'd) with the back end's gauges. */
char *serve_metrics_text(serve_metrics *m, const serve_backend_stats *st, const char *model_id);

#endif
