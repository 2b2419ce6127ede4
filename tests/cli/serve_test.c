/* tests/cli/serve_test.c - the OpenAI-compatible API over real loopback
 * HTTP: good chat/completions requests (JSON and SSE streaming) and bad
 * ones (malformed JSON, wrong types, wrong method, unknown path, oversized
 * body, missing Content-Length, huge headers, a slow client). A generator
 * that echoes words stands in for the model; the engine-backed server is
 * tested with a real model in tests/engine. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/serve/openai.h"
#include "tests/test.h"

static int echo(void *user, const serve_request *rq, serve_piece_fn piece, void *ctx, serve_usage *u, kiln_err *e)
{
    (void)user;
    const char *text = rq->is_chat ? rq->msgs[rq->n_msgs - 1].content : rq->prompt;
    if (!strcmp(text, "overflow"))
        return kiln_fail(e, KILN_E_FULL, "KV cache full: the prompt needs 5000 tokens, the context holds 4096");
    int n = 0;
    char w[64];
    for (const char *p = text; *p && n < rq->max_tokens; n++) {
        size_t len = strcspn(p + 1, " ") + 1;
        snprintf(w, sizeof w, "%.*s", (int)len, p);
        p += len;
        if (piece(ctx, w))
            break;
    }
    u->prompt_tokens = 3;
    u->completion_tokens = n;
    strcpy(u->finish_reason, n >= rq->max_tokens ? "length" : "stop");
    return 0;
}

typedef struct server {
    int fd, port, n;
    serve_generator g;
} server;

static void *run(void *arg)
{
    server *s = arg;
    serve_loop(s->fd, &s->g, s->n, NULL);
    return NULL;
}

/* Sends raw bytes, returns the whole response (malloc'd). */
static char *exchange(int port, const char *req, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return strdup("");
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    ssize_t r;
    while ((r = recv(fd, buf + n, cap - n, 0)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(fd);
    return buf;
}

static char *post(int port, const char *path, const char *body)
{
    char *req = malloc(strlen(body) + 512);
    int n = sprintf(req, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                    path, strlen(body), body);
    char *resp = exchange(port, req, (size_t)n);
    free(req);
    return resp;
}

static int status_of(const char *resp)
{
    int st = 0;
    sscanf(resp, "HTTP/1.1 %d", &st);
    return st;
}

static cJSON *body_json(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? cJSON_Parse(b + 4) : NULL;
}

int main(void)
{
    /* a model id (a file name) with a quote, a backslash and a newline: every JSON body must escape it */
    static const char model_id[] = "echo \"test\" \\ v1\n";
    server s = {.n = 15, .g = {.model_id = model_id, .generate = echo}};
    kiln_err e = {0};
    CHECK_OK(serve_listen("127.0.0.1", 0, &s.fd, &s.port, &e), &e);
    pthread_t th;
    pthread_create(&th, NULL, run, &s);

    /* 1. chat completion, JSON */
    char *r = post(s.port, "/v1/chat/completions",
                   "{\"model\":\"x\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                   "{\"role\":\"user\",\"content\":\"hello big world\"}],\"max_tokens\":2,\"temperature\":0}");
    CHECK(status_of(r) == 200, "chat: %s", r);
    cJSON *j = body_json(r);
    cJSON *msg = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "message");
    CHECK(msg && !strcmp(cJSON_GetObjectItem(msg, "content")->valuestring, "hello big"), "chat content: %s", r);
    CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "finish_reason")
                      ->valuestring,
                  "length"),
          "finish_reason");
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "completion_tokens")->valueint == 2, "usage");
    cJSON_Delete(j);
    free(r);

    /* 2. streaming: SSE chunks then [DONE] */
    r = post(s.port, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"a b c\"}],\"stream\":true}");
    CHECK(status_of(r) == 200 && strstr(r, "text/event-stream"), "stream header: %s", r);
    int chunks = 0;
    for (const char *p = r; (p = strstr(p, "data: {")); p++)
        chunks++;
    CHECK(chunks == 4, "3 content chunks + 1 final chunk, got %d: %s", chunks, r);
    CHECK(strstr(r, "data: [DONE]\n\n") != NULL, "no [DONE]");
    free(r);

    /* 3. completions */
    r = post(s.port, "/v1/completions", "{\"prompt\":\"once upon\",\"max_tokens\":8}");
    j = body_json(r);
    CHECK(status_of(r) == 200 && j &&
              !strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "text")->valuestring,
                      "once upon"),
          "completions: %s", r);
    cJSON_Delete(j);
    free(r);

    /* 4-11. bad requests get 4xx with an OpenAI-style error body */
    struct {
        const char *raw;
        int want;
    } bad[] = {
        {"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 9\r\n\r\n{not json", 400},
        {"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 15\r\n\r\n{\"messages\":[]}", 400},
        {"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 51\r\n\r\n"
         "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":7}",
         400},
        {"GET /v1/chat/completions HTTP/1.1\r\n\r\n", 405},
        {"GET /nope HTTP/1.1\r\n\r\n", 404},
        {"POST /v1/completions HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413},
        {"POST /v1/completions HTTP/1.1\r\n\r\n", 411},
        {"garbage\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = exchange(s.port, bad[i].raw, strlen(bad[i].raw));
        j = body_json(r);
        CHECK(status_of(r) == bad[i].want, "bad request %zu: want %d: %s", i, bad[i].want, r);
        CHECK(j && cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message"), "bad request %zu: no error body",
              i);
        cJSON_Delete(j);
        free(r);
    }
    /* 12. headers too large */
    size_t big = 20000;
    char *huge = malloc(big + 64);
    int n = sprintf(huge, "GET /health HTTP/1.1\r\nX-Big: ");
    memset(huge + n, 'a', big);
    strcpy(huge + n + big, "\r\n\r\n");
    r = exchange(s.port, huge, strlen(huge));
    CHECK(status_of(r) == 431, "huge headers: %.80s", r);
    free(r);
    free(huge);
    /* 13. a full context is a clean 400 context_length_exceeded */
    r = post(s.port, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"overflow\"}]}");
    CHECK(status_of(r) == 400 && strstr(r, "context_length_exceeded"), "full context: %s", r);
    free(r);
    /* 14. /v1/models: valid JSON naming the model as it is */
    r = exchange(s.port, "GET /v1/models HTTP/1.1\r\n\r\n", 27);
    j = body_json(r);
    cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0);
    CHECK(status_of(r) == 200 && cJSON_IsString(cJSON_GetObjectItem(m0, "id")) &&
              !strcmp(cJSON_GetObjectItem(m0, "id")->valuestring, model_id),
          "/v1/models: %s", r);
    cJSON_Delete(j);
    free(r);
    /* 15. health still fine after all that */
    r = exchange(s.port, "GET /health HTTP/1.1\r\n\r\n", 24);
    CHECK(status_of(r) == 200 && strstr(r, "\"ok\""), "health: %s", r);
    free(r);

    pthread_join(th, NULL);
    close(s.fd);
    return test_result();
}
