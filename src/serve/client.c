/* src/serve/client.c - see client.h. */
#include "src/serve/client.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int serve_url_parse(const char *url, serve_url *u, kiln_err *e)
{
    memset(u, 0, sizeof *u);
    const char *p = url;
    if (!strncmp(p, "http://", 7))
        p += 7;
    else if (strstr(p, "://"))
        return kiln_fail(e, KILN_E_INVALID, "url '%s': only http:// is supported", url);
    size_t hl = strcspn(p, ":/");
    if (!hl || hl >= sizeof u->host)
        return kiln_fail(e, KILN_E_INVALID, "url '%s': no host", url);
    memcpy(u->host, p, hl);
    u->port = 80;
    if (p[hl] == ':') {
        char *end;
        long port = strtol(p + hl + 1, &end, 10);
        if (end == p + hl + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
            return kiln_fail(e, KILN_E_INVALID, "url '%s': bad port", url);
        u->port = (int)port;
    }
    return 0;
}

static int dial(const serve_url *u, kiln_err *e)
{
    char port[16];
    snprintf(port, sizeof port, "%d", u->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(u->host, port, &hints, &ai);
    if (g)
        return -kiln_fail(e, KILN_E_IO, "%s:%d: %s", u->host, u->port, gai_strerror(g));
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen)) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return -kiln_fail(e, KILN_E_IO, "cannot connect to %s:%d: %s", u->host, u->port, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* The body decoder: chunked transfer coding or plain bytes, then SSE lines. */
typedef struct reader {
    int chunked;
    long chunk_left;            /* bytes left in the current chunk; -1: reading a size line */
    char sizeline[32];
    int sl;
    int skip_crlf;              /* the CRLF after a chunk's data */
    char *line;                 /* the SSE line being assembled */
    size_t ll, lcap;
    serve_stream_result *r;
    double t0, t_last;
    int cap_gaps;
    int done;                   /* "data: [DONE]" seen or the last chunk */
} reader;

/* The text of an event: choices[0].text (completions) or
 * choices[0].delta.content (chat); NULL when it has none. */
static const char *event_text(const cJSON *ev)
{
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ev, "choices"), 0);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(ch, "text");
    if (!t)
        t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ch, "delta"), "content");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* The completion token count an event reports: usage.completion_tokens,
 * else timings.predicted_n (llama.cpp); -1 when neither is a number. */
static int event_usage(const cJSON *ev)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "usage"),
                                                      "completion_tokens");
    if (!cJSON_IsNumber(n))
        n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "timings"), "predicted_n");
    return cJSON_IsNumber(n) && n->valuedouble >= 0 && n->valuedouble < 1e9 ? (int)n->valuedouble : -1;
}

static int on_line(reader *rd, double t)
{
    if (rd->ll < 5 || memcmp(rd->line, "data:", 5))
        return 0;
    const char *d = rd->line + 5;
    d += *d == ' '; /* SSE: one optional space after the colon */
    if (!strcmp(d, "[DONE]")) {
        rd->done = 1;
        return 0;
    }
    serve_stream_result *r = rd->r;
    cJSON *ev = cJSON_Parse(d);
    if (!cJSON_IsObject(ev)) {
        r->n_bad++;
        cJSON_Delete(ev);
        return 0;
    }
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(ev, "error");
    if (err && !r->error[0]) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");
        snprintf(r->error, sizeof r->error, "error event: %s",
                 cJSON_IsString(m) ? m->valuestring : cJSON_IsString(err) ? err->valuestring : "(no message)");
    }
    int u = event_usage(ev);
    if (u >= 0)
        r->n_usage = u;
    const char *text = event_text(ev);
    int is_text = text && text[0];
    cJSON_Delete(ev);
    if (!is_text)
        return 0;
    if (r->n_events == 0) {
        r->t_first = t - rd->t0;
    } else {
        if (r->n_events - 1 == rd->cap_gaps) {
            int cap = rd->cap_gaps ? 2 * rd->cap_gaps : 256;
            double *g = realloc(r->gaps, sizeof *g * (size_t)cap);
            if (!g)
                return -1;
            r->gaps = g;
            rd->cap_gaps = cap;
        }
        r->gaps[r->n_events - 1] = t - rd->t_last;
    }
    rd->t_last = t;
    r->n_events++;
    return 0;
}

static int sse_bytes(reader *rd, const char *p, size_t n, double t)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            if (rd->ll && rd->line[rd->ll - 1] == '\r')
                rd->ll--;
            if (rd->lcap)
                rd->line[rd->ll] = 0;
            if (on_line(rd, t))
                return -1;
            rd->ll = 0;
            continue;
        }
        if (rd->ll + 2 > rd->lcap) {
            size_t cap = rd->lcap ? 2 * rd->lcap : 1024;
            char *l = realloc(rd->line, cap);
            if (!l)
                return -1;
            rd->line = l;
            rd->lcap = cap;
        }
        rd->line[rd->ll++] = p[i];
    }
    return 0;
}

static int body_bytes(reader *rd, const char *p, size_t n, double t)
{
    if (!rd->chunked)
        return sse_bytes(rd, p, n, t);
    size_t i = 0;
    while (i < n && !rd->done) {
        if (rd->skip_crlf) {
            if (p[i] == '\n')
                rd->skip_crlf = 0;
            i++;
        } else if (rd->chunk_left < 0) {
            if (p[i] == '\n') {
                rd->sizeline[rd->sl] = 0;
                rd->chunk_left = strtol(rd->sizeline, NULL, 16);
                rd->sl = 0;
                if (rd->chunk_left == 0)
                    rd->done = 1; /* the last chunk */
            } else if (rd->sl < (int)sizeof rd->sizeline - 1) {
                rd->sizeline[rd->sl++] = p[i];
            }
            i++;
        } else {
            size_t take = n - i < (size_t)rd->chunk_left ? n - i : (size_t)rd->chunk_left;
            if (sse_bytes(rd, p + i, take, t))
                return -1;
            i += take;
            rd->chunk_left -= (long)take;
            if (rd->chunk_left == 0) {
                rd->chunk_left = -1;
                rd->skip_crlf = 1;
            }
        }
    }
    return 0;
}

int serve_stream_post(const serve_url *u, const char *path, const char *body, double timeout_s,
                      serve_stream_result *r, kiln_err *e)
{
    memset(r, 0, sizeof *r);
    r->n_usage = -1;
    int fd = dial(u, e);
    if (fd < 0)
        return -fd;
    size_t bl = strlen(body);
    char *req = malloc(bl + 512);
    if (!req) {
        close(fd);
        return kiln_fail(e, KILN_E_NOMEM, "out of memory");
    }
    int hn = snprintf(req, 512,
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n"
                      "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                      path, u->host, u->port, bl);
    memcpy(req + hn, body, bl);
    reader rd = {.chunk_left = -1, .r = r};
    rd.t0 = now_s();
    double deadline = rd.t0 + timeout_s;
    size_t off = 0, total = (size_t)hn + bl;
    int rc = 0;
    while (off < total) {
        ssize_t w = send(fd, req + off, total - off, MSG_NOSIGNAL);
        if (w <= 0) {
            rc = kiln_fail(e, KILN_E_IO, "send: %s", strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    free(req);
    char buf[16384], head[8192];
    size_t hl = 0;
    int in_body = 0;
    while (!rc && !rd.done) {
        int left_ms = (int)((deadline - now_s()) * 1e3);
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (left_ms <= 0 || poll(&pf, 1, left_ms) <= 0) {
            rc = kiln_fail(e, KILN_E_TIMEOUT, "no complete answer within %.0f s", timeout_s);
            break;
        }
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        double t = now_s();
        if (n < 0) {
            rc = kiln_fail(e, KILN_E_IO, "recv: %s", strerror(errno));
            break;
        }
        if (n == 0) {
            if (!in_body)
                rc = kiln_fail(e, KILN_E_IO, "the server closed the connection before answering");
            break;
        }
        const char *p = buf;
        size_t len = (size_t)n;
        if (!in_body) {
            size_t take = len < sizeof head - 1 - hl ? len : sizeof head - 1 - hl;
            memcpy(head + hl, p, take);
            hl += take;
            head[hl] = 0;
            char *end = strstr(head, "\r\n\r\n");
            if (!end) {
                if (hl == sizeof head - 1)
                    rc = kiln_fail(e, KILN_E_FORMAT, "response headers over %zu bytes", sizeof head);
                continue;
            }
            in_body = 1;
            sscanf(head, "HTTP/1.%*d %d", &r->status);
            for (char *q = head; *q; q++)
                *q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
            rd.chunked = strstr(head, "transfer-encoding: chunked") != NULL;
            size_t body_at = (size_t)(end + 4 - head) - (hl - take);
            p += body_at;
            len -= body_at;
            if (r->status != 200) /* keep the start of the error body */
                snprintf(r->error, sizeof r->error, "%.*s", (int)(len < 200 ? len : 200), p);
        }
        if (len && body_bytes(&rd, p, len, t))
            rc = kiln_fail(e, KILN_E_NOMEM, "out of memory");
    }
    r->t_total = now_s() - rd.t0;
    free(rd.line);
    close(fd);
    return rc;
}

void serve_stream_result_free(serve_stream_result *r)
{
    free(r->gaps);
    r->gaps = NULL;
}
