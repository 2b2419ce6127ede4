/* src/serve/httpd.c - see httpd.h.
 *
 * libmicrohttpd in thread-per-connection mode: its connection thread calls
 * on_request for the headers, for each body chunk and once the body is
 * complete; generation answers block that thread on the job's condition
 * variable (in 100 ms slices, polling the socket for a hang-up in between).
 * A streamed answer is a callback response whose reader blocks the same way
 * and emits one SSE event per generated piece. Blocking is what this mode is
 * for: the thread serves one connection only, and the engine thread never
 * waits on a connection. */
#include "src/serve/httpd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "src/serve/metrics.h"

struct serve_httpd {
    struct MHD_Daemon *d;
    serve_backend *b;
    serve_httpd_opts o;
    serve_metrics m;
    atomic_ulong answered;
    atomic_int stopping;
    atomic_uint next_id;
    int port;
};

enum { ROUTE_NONE, ROUTE_CHAT, ROUTE_COMPLETIONS };

typedef struct conn {
    double t0;                  /* the connection's accept time */
    int route;
    char *body;
    size_t len, cap;
    int too_big;
    int status;                 /* what was answered (for the metrics) */
    int cancelled;              /* the client went away mid-generation */
    serve_job *job;
} conn;

typedef struct stream {
    serve_httpd *h;
    serve_job *job;
    conn *c;
    int fd;
    int next_piece;
    int phase;                  /* 0: pieces, 1: final event queued, 2: ended */
    char *pend;                 /* bytes not yet handed to MHD */
    size_t pend_len, pend_off;
    char id[48];
    long created;
} stream;

/* ---- responses ---- */

static enum MHD_Result respond(struct MHD_Connection *mc, conn *c, int status, const char *type, char *body,
                               const char *retry_after, int close_conn)
{
    const char *txt = body ? body : "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}";
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(txt), (void *)txt, MHD_RESPMEM_MUST_COPY);
    free(body);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (retry_after)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    if (close_conn)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(mc, (unsigned)status, r);
    MHD_destroy_response(r);
    if (c)
        c->status = status;
    return ok;
}

static enum MHD_Result respond_error(struct MHD_Connection *mc, conn *c, int status, const char *type,
                                     const char *msg, const char *param, const char *code)
{
    return respond(mc, c, status, "application/json", serve_error_json(type, msg, param, code),
                   status == 503 ? "1" : NULL, 0);
}

/* The HTTP status for a job that finished with rc. */
static int status_of_rc(int rc)
{
    switch (rc) {
    case 0: return 200;
    case KILN_E_INVALID:
    case KILN_E_FULL: return 400;        /* the prompt (and max_tokens) cannot fit the context */
    case KILN_E_UNAVAILABLE: return 503; /* no room now (KV cache exhausted, queue full): retry */
    default: return 500;
    }
}

static enum MHD_Result respond_job_error(struct MHD_Connection *mc, conn *c, const serve_job *j)
{
    int st = status_of_rc(j->rc);
    const char *type = st == 400 ? "invalid_request_error" : "server_error";
    const char *code = j->rc == KILN_E_FULL ? "context_length_exceeded" : NULL;
    return respond_error(mc, c, st, type, j->err.msg, NULL, code);
}

/* ---- waiting on a job ---- */

/* The peer closed or reset its side: no one is listening for the answer. */
static int client_gone(int fd)
{
    if (fd < 0)
        return 0;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static void wait_slice(serve_job *j)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 100 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
}

/* Waits (j->mu held) until the job has more than `have` pieces (have < 0:
 * until it is done) or is done, cancelling the job when the client goes or
 * the server stops. Returns 1 when the client went away. */
static int wait_job(serve_httpd *h, serve_job *j, int fd, int have)
{
    int gone = 0;
    while (!j->done && !(have >= 0 && j->n_pieces > have)) {
        wait_slice(j);
        if (!gone && (client_gone(fd) || atomic_load(&h->stopping))) {
            gone = 1;
            pthread_mutex_unlock(&j->mu);
            serve_job_cancel(j);
            h->b->poke(h->b->impl);
            pthread_mutex_lock(&j->mu);
        }
    }
    return gone;
}

static int conn_fd(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* ---- streaming ---- */

static int stream_queue(stream *s, char *json)
{
    if (!json)
        return -1;
    size_t n = strlen(json);
    char *p = malloc(n + 9);
    if (!p) {
        free(json);
        return -1;
    }
    memcpy(p, "data: ", 6);
    memcpy(p + 6, json, n);
    memcpy(p + 6 + n, "\n\n", 3);
    free(json);
    free(s->pend);
    s->pend = p;
    s->pend_len = n + 8;
    s->pend_off = 0;
    return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *s = cls;
    serve_job *j = s->job;
    const char *model = s->h->b->model_id;
    for (;;) {
        if (s->pend_off < s->pend_len) {
            size_t n = s->pend_len - s->pend_off < max ? s->pend_len - s->pend_off : max;
            memcpy(buf, s->pend + s->pend_off, n);
            s->pend_off += n;
            return (ssize_t)n;
        }
        if (s->phase == 2)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (s->phase == 1) {
            s->phase = 2;
            static const char done[] = "data: [DONE]\n\n";
            free(s->pend);
            if (!(s->pend = strdup(done)))
                return MHD_CONTENT_READER_END_WITH_ERROR;
            s->pend_len = sizeof done - 1;
            s->pend_off = 0;
            continue;
        }
        pthread_mutex_lock(&j->mu);
        if (s->next_piece < j->n_pieces) {
            size_t a = s->next_piece ? j->ends[s->next_piece - 1] : 0, e = j->ends[s->next_piece];
            char *piece = malloc(e - a + 1);
            if (piece) {
                memcpy(piece, j->text + a, e - a);
                piece[e - a] = 0;
            }
            s->next_piece++;
            pthread_mutex_unlock(&j->mu);
            int rc = piece ? stream_queue(s, serve_chunk_json(s->id, j->rq.is_chat, model, s->created, piece, NULL,
                                                              NULL))
                           : -1;
            free(piece);
            if (rc)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        if (j->done) {
            pthread_mutex_unlock(&j->mu);
            char *json;
            if (j->rc) /* failed after it started: an error event, as OpenAI's API does */
                json = serve_error_json("server_error", j->err.msg, NULL, NULL);
            else
                json = serve_chunk_json(s->id, j->rq.is_chat, model, s->created, NULL,
                                        j->usage.finish_reason[0] ? j->usage.finish_reason : "stop", &j->usage);
            if (stream_queue(s, json))
                return MHD_CONTENT_READER_END_WITH_ERROR;
            s->phase = 1;
            continue;
        }
        int gone = wait_job(s->h, j, s->fd, s->next_piece);
        pthread_mutex_unlock(&j->mu);
        if (gone) {
            s->c->cancelled = 1;
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

static void stream_free(void *cls)
{
    stream *s = cls;
    serve_job_unref(s->job);
    free(s->pend);
    free(s);
}

/* ---- generation ---- */

static enum MHD_Result generate(serve_httpd *h, struct MHD_Connection *mc, conn *c)
{
    serve_backend *b = h->b;
    int is_chat = c->route == ROUTE_CHAT;
    serve_request rq;
    char why[256];
    c->body[c->len] = 0;
    int st = serve_parse_request(c->body, is_chat, &rq, why, sizeof why);
    if (st)
        return respond_error(mc, c, st, st == 400 ? "invalid_request_error" : "server_error",
                             st == 400 ? why : "out of memory", NULL, NULL);
    if (rq.model && strcmp(rq.model, b->model_id)) {
        char msg[512];
        snprintf(msg, sizeof msg, "The model `%.200s` does not exist; this server serves `%.200s`", rq.model,
                 b->model_id);
        serve_request_free(&rq);
        return respond_error(mc, c, 404, "invalid_request_error", msg, "model", "model_not_found");
    }
    if (b->ctx > 0 && rq.has_max_tokens && rq.max_tokens >= b->ctx) {
        char msg[256];
        snprintf(msg, sizeof msg, "max_tokens is %d, but the context holds %d tokens, the prompt included",
                 rq.max_tokens, b->ctx);
        serve_request_free(&rq);
        return respond_error(mc, c, 400, "invalid_request_error", msg, "max_tokens", "context_length_exceeded");
    }
    serve_job *j = serve_job_new(&rq);
    if (!j) {
        serve_request_free(&rq);
        return respond_error(mc, c, 500, "server_error", "out of memory", NULL, NULL);
    }
    j->live_tokens = &h->m.generated;
    c->job = j;
    kiln_err e = {0};
    int rc = b->submit(b->impl, j, &e);
    if (rc)
        return respond_error(mc, c, rc == KILN_E_FULL ? 503 : 500, "server_error", e.msg, NULL, NULL);
    /* the request is in: no idle timeout while it generates (the socket is
     * watched for a hang-up instead) */
    MHD_set_connection_option(mc, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    int fd = conn_fd(mc);
    char id[48];
    long created = (long)time(NULL);
    snprintf(id, sizeof id, "%s-%ld%06u", is_chat ? "chatcmpl" : "cmpl", created,
             atomic_fetch_add(&h->next_id, 1) % 1000000u);

    pthread_mutex_lock(&j->mu);
    int gone = wait_job(h, j, fd, j->rq.stream ? 0 : -1);
    if (gone) {
        while (!j->done) /* the engine drops it at its next token */
            wait_slice(j);
        pthread_mutex_unlock(&j->mu);
        c->cancelled = 1;
        c->status = 499;
        return MHD_NO; /* close the connection */
    }
    if (j->done && j->rc) {
        pthread_mutex_unlock(&j->mu);
        return respond_job_error(mc, c, j);
    }
    if (!j->rq.stream) {
        char *body = serve_completion_json(id, is_chat, b->model_id, created, j->text, &j->usage);
        pthread_mutex_unlock(&j->mu);
        return respond(mc, c, 200, "application/json", body, NULL, 1);
    }
    pthread_mutex_unlock(&j->mu);
    stream *s = calloc(1, sizeof *s);
    if (!s)
        return respond_error(mc, c, 500, "server_error", "out of memory", NULL, NULL);
    *s = (stream){.h = h, .job = j, .c = c, .fd = fd, .created = created};
    snprintf(s->id, sizeof s->id, "%s", id);
    serve_job_ref(j);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
    if (!r) {
        stream_free(s);
        return respond_error(mc, c, 500, "server_error", "out of memory", NULL, NULL);
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(mc, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    c->status = 200;
    return ok;
}

/* ---- routing ---- */

static enum MHD_Result get(serve_httpd *h, struct MHD_Connection *mc, conn *c, const char *url)
{
    if (!strcmp(url, "/health"))
        return respond(mc, c, 200, "application/json", strdup("{\"status\":\"ok\"}"), NULL, 0);
    if (!strcmp(url, "/v1/models"))
        return respond(mc, c, 200, "application/json", serve_models_json(h->b->model_id), NULL, 0);
    /* /metrics */
    serve_backend_stats st;
    h->b->stats(h->b->impl, &st);
    return respond(mc, c, 200, "text/plain; version=0.0.4; charset=utf-8",
                   serve_metrics_text(&h->m, &st, h->b->model_id), NULL, 0);
}

static int route_of(const char *url, int *is_get)
{
    *is_get = 0;
    if (!strcmp(url, "/v1/chat/completions"))
        return ROUTE_CHAT;
    if (!strcmp(url, "/v1/completions"))
        return ROUTE_COMPLETIONS;
    *is_get = !strcmp(url, "/health") || !strcmp(url, "/v1/models") || !strcmp(url, "/metrics");
    return ROUTE_NONE;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    serve_httpd *h = cls;
    conn *c = *con_cls;
    if (!c) { /* the headers are in */
        if (!(c = calloc(1, sizeof *c)))
            return MHD_NO;
        *con_cls = c;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        c->t0 = ci && ci->socket_context ? *(double *)ci->socket_context : serve_now();
        int is_get;
        c->route = route_of(url, &is_get);
        if (serve_now() - c->t0 > h->o.request_timeout_s)
            return respond_error(mc, c, 408, "invalid_request_error", "the request headers took too long", NULL,
                                 NULL);
        if (c->route == ROUTE_NONE) {
            if (!is_get)
                return respond_error(mc, c, 404, "invalid_request_error", "unknown path", NULL, NULL);
            if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
                return respond_error(mc, c, 405, "invalid_request_error", "use GET", NULL, NULL);
            return get(h, mc, c, url);
        }
        if (strcmp(method, MHD_HTTP_METHOD_POST))
            return respond_error(mc, c, 405, "invalid_request_error", "use POST", NULL, NULL);
        const char *ct = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (ct && !strstr(ct, "json"))
            return respond_error(mc, c, 415, "invalid_request_error", "Content-Type must be application/json", NULL,
                                 NULL);
        const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *te = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if (!cl && !te)
            return respond_error(mc, c, 411, "invalid_request_error", "a request body needs a Content-Length",
                                 NULL, NULL);
        if (cl && strtoull(cl, NULL, 10) > h->o.max_body) {
            char msg[128];
            snprintf(msg, sizeof msg, "the request body is over %zu bytes", h->o.max_body);
            return respond_error(mc, c, 413, "invalid_request_error", msg, NULL, NULL);
        }
        return MHD_YES;
    }
    if (c->route == ROUTE_NONE || c->status) /* answered already; drop any body */ {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) { /* a chunk of the body */
        if (serve_now() - c->t0 > h->o.request_timeout_s)
            return MHD_NO; /* a body dribbled past the deadline: close */
        if (c->len + *upload_size > h->o.max_body) {
            c->too_big = 1;
        } else if (!c->too_big) {
            if (c->len + *upload_size + 1 > c->cap) {
                size_t cap = 2 * (c->len + *upload_size) + 1;
                char *nb = realloc(c->body, cap);
                if (!nb)
                    return MHD_NO;
                c->body = nb;
                c->cap = cap;
            }
            memcpy(c->body + c->len, upload, *upload_size);
            c->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    /* the whole body is in */
    if (c->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is over %zu bytes", h->o.max_body);
        return respond_error(mc, c, 413, "invalid_request_error", msg, NULL, NULL);
    }
    if (!c->body && !(c->body = calloc(1, 1)))
        return MHD_NO;
    return generate(h, mc, c);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)mc;
    serve_httpd *h = cls;
    conn *c = *con_cls;
    if (!c)
        return;
    *con_cls = NULL;
    if (c->job && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        pthread_mutex_lock(&c->job->mu);
        int unfinished = !c->job->done;
        pthread_mutex_unlock(&c->job->mu);
        if (unfinished || c->cancelled) { /* a stream whose client went away */
            serve_job_cancel(c->job);
            h->b->poke(h->b->impl);
            c->cancelled = 1;
        }
    }
    if (c->status) {
        int status = c->cancelled ? 499 : c->status;
        const serve_usage *u = NULL;
        if (c->job && !c->cancelled) {
            pthread_mutex_lock(&c->job->mu);
            if (c->job->done && !c->job->rc)
                u = &c->job->usage; /* final: nothing writes it after done */
            pthread_mutex_unlock(&c->job->mu);
        }
        serve_metrics_request(&h->m, status, u, c->cancelled);
        atomic_fetch_add(&h->answered, 1);
    }
    serve_job_unref(c->job);
    free(c->body);
    free(c);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)mc;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        double *t0 = malloc(sizeof *t0);
        if (t0)
            *t0 = serve_now();
        *socket_context = t0;
    } else {
        free(*socket_context);
        *socket_context = NULL;
    }
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fprintf(stderr, "kiln serve: http: ");
    vfprintf(stderr, fmt, ap);
}

int serve_httpd_start(serve_httpd **out, const serve_httpd_opts *o, serve_backend *b, kiln_err *e)
{
    *out = NULL;
    serve_httpd *h = calloc(1, sizeof *h);
    if (!h)
        return kiln_fail(e, KILN_E_NOMEM, "out of memory");
    h->b = b;
    h->o = *o;
    if (!h->o.host)
        h->o.host = "127.0.0.1";
    if (h->o.conn_timeout_s <= 0)
        h->o.conn_timeout_s = 10;
    if (h->o.request_timeout_s <= 0)
        h->o.request_timeout_s = 30;
    if (h->o.max_conns <= 0)
        h->o.max_conns = 256;
    if (!h->o.max_body)
        h->o.max_body = 1 << 20;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->o.port)};
    if (inet_pton(AF_INET, h->o.host, &a.sin_addr) != 1) {
        free(h);
        return kiln_fail(e, KILN_E_INVALID, "serve: '%s' is not an IPv4 address", o->host);
    }
    serve_metrics_init(&h->m);
    h->d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG,
        (uint16_t)h->o.port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_log, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)h->o.conn_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)h->o.max_conns,
        /* the request line and headers must fit here (else 431); the body streams through to on_request */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 128u, MHD_OPTION_END);
    if (!h->d) {
        serve_metrics_destroy(&h->m);
        free(h);
        return kiln_fail(e, KILN_E_IO, "serve: cannot listen on %s:%d (address in use, or not allowed)", o->host,
                         o->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : h->o.port;
    *out = h;
    return 0;
}

int serve_httpd_port(const serve_httpd *h)
{
    return h->port;
}

unsigned long serve_httpd_answered(serve_httpd *h)
{
    return atomic_load(&h->answered);
}

void serve_httpd_stop(serve_httpd *h)
{
    if (!h)
        return;
    atomic_store(&h->stopping, 1); /* waiting connections cancel their jobs and return */
    MHD_stop_daemon(h->d);
    serve_metrics_destroy(&h->m);
    free(h);
}
