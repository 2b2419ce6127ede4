/* tests/bench/fake_llama_server.c MODE - a stand-in for llama.cpp's llama-server on
 * /v1/completions, for bench_serve_ci.sh (C on libmicrohttpd, like kiln serve: the CI
 * harness stays Python-free). A streamed request is answered the way llama-server
 * (0.3.36's tools/server) does: chunked SSE, keys in nlohmann's sorted order, one event
 * per token except one event that carries two (llama-server holds back a token that
 * ends inside a UTF-8 sequence), a last event with empty text and finish_reason, then
 * [DONE]. The token count is in that last event as MODE says:
 *   usage    "usage":{"completion_tokens":N,...} and "timings":{"predicted_n":N,...}
 *   timings  only "timings" (llama.cpp's own field)
 *   none     neither
 * GET /health answers 200, any other GET 404. Prints the port it listens on (an
 * ephemeral one on 127.0.0.1), then serves until killed. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

enum { MODE_USAGE, MODE_TIMINGS, MODE_NONE };

typedef struct upload { /* a POST body as it arrives */
    char *b;
    size_t n;
} upload;

typedef struct stream { /* the events of one answer, handed out one chunk per call */
    char **ev;
    int n, next;
} stream;

static char *event_text(const char *json) /* "data: JSON\n\n" */
{
    size_t n = strlen(json) + 9;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "data: %s\n\n", json);
    return s;
}

/* The events of an answer of n tokens (n >= 4): tokens 2 and 3 together. */
static int build_events(stream *st, int n, int mode)
{
    st->ev = calloc((size_t)n + 2, sizeof *st->ev);
    if (!st->ev)
        return -1;
    char json[512], text[64];
    for (int i = 0; i < n; i++) {
        if (i == 3)
            continue;
        if (i == 2)
            snprintf(text, sizeof text, " w2 w3");
        else
            snprintf(text, sizeof text, " w%d", i);
        snprintf(json, sizeof json,
                 "{\"choices\":[{\"finish_reason\":null,\"index\":0,\"logprobs\":null,\"text\":\"%s\"}],"
                 "\"created\":0,\"id\":\"cmpl-x\",\"model\":\"m\",\"object\":\"text_completion\","
                 "\"system_fingerprint\":\"b1\"}",
                 text);
        if (!(st->ev[st->n++] = event_text(json)))
            return -1;
    }
    char timings[160], usage[128];
    snprintf(timings, sizeof timings,
             ",\"timings\":{\"cache_n\":0,\"predicted_ms\":10.0,\"predicted_n\":%d,\"prompt_ms\":1.0,\"prompt_n\":5}",
             n);
    snprintf(usage, sizeof usage, ",\"usage\":{\"completion_tokens\":%d,\"prompt_tokens\":5,\"total_tokens\":%d}",
             n, n + 5);
    snprintf(json, sizeof json,
             "{\"choices\":[{\"finish_reason\":\"length\",\"index\":0,\"logprobs\":null,\"text\":\"\"}],"
             "\"created\":0,\"id\":\"cmpl-x\",\"model\":\"m\",\"object\":\"text_completion\"%s%s}",
             mode == MODE_NONE ? "" : timings, mode == MODE_USAGE ? usage : "");
    if (!(st->ev[st->n++] = event_text(json)))
        return -1;
    if (!(st->ev[st->n++] = strdup("data: [DONE]\n\n")))
        return -1;
    return 0;
}

static void stream_free(void *cls)
{
    stream *st = cls;
    for (int i = 0; i < st->n; i++)
        free(st->ev[i]);
    free(st->ev);
    free(st);
}

/* One event per call: each becomes its own chunk (MHD_SIZE_UNKNOWN: chunked). */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *st = cls;
    if (st->next == st->n)
        return MHD_CONTENT_READER_END_OF_STREAM;
    const char *e = st->ev[st->next];
    size_t len = strlen(e);
    if (len > max) /* an event is < 600 bytes; MHD's buffer is larger */
        return MHD_CONTENT_READER_END_WITH_ERROR;
    memcpy(buf, e, len);
    st->next++;
    return (ssize_t)len;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned code, const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *data, size_t *size, void **con_cls)
{
    (void)version;
    int mode = *(const int *)cls;
    if (strcmp(method, "POST") != 0)
        return reply_text(c, strcmp(url, "/health") == 0 ? 200 : 404, "{\"status\":\"ok\"}");
    upload *u = *con_cls;
    if (!u) { /* first call: headers only */
        if (!(u = calloc(1, sizeof *u)))
            return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    if (*size) { /* a piece of the body */
        char *b = realloc(u->b, u->n + *size + 1);
        if (!b)
            return MHD_NO;
        memcpy(b + u->n, data, *size);
        u->b = b;
        u->n += *size;
        u->b[u->n] = 0;
        *size = 0;
        return MHD_YES;
    }
    cJSON *req = u->b ? cJSON_Parse(u->b) : NULL;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(req, "max_tokens");
    int n = cJSON_IsNumber(mt) ? mt->valueint : 16;
    cJSON_Delete(req);
    if (n < 4) /* the two-token event needs tokens 2 and 3 */
        return reply_text(c, 400, "{\"error\":\"this stand-in needs max_tokens >= 4\"}");
    stream *st = calloc(1, sizeof *st);
    if (!st || build_events(st, n, mode)) {
        if (st)
            stream_free(st);
        return MHD_NO;
    }
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free);
    if (!r) {
        stream_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    enum MHD_Result ok = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ok;
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls, (void)c, (void)t;
    upload *u = *con_cls;
    if (u) {
        free(u->b);
        free(u);
    }
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "usage";
    static int mode;
    if (!strcmp(m, "usage"))
        mode = MODE_USAGE;
    else if (!strcmp(m, "timings"))
        mode = MODE_TIMINGS;
    else if (!strcmp(m, "none"))
        mode = MODE_NONE;
    else {
        fprintf(stderr, "fake_llama_server: MODE is usage, timings or none, not '%s'\n", m);
        return 2;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, handle,
                         &mode, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
                         request_done, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "fake_llama_server: cannot listen on 127.0.0.1\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || !info->port) {
        fprintf(stderr, "fake_llama_server: no port bound\n");
        MHD_stop_daemon(d);
        return 1;
    }
    printf("%u\n", (unsigned)info->port);
    fflush(stdout);
    for (;;)
        pause(); /* until the test kills it */
}
