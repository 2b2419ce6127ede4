/* src/serve/openai.c - see openai.h. */
#include "src/serve/openai.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

void serve_request_free(serve_request *rq)
{
    for (int i = 0; i < rq->n_msgs; i++)
        free(rq->msgs[i].content);
    free(rq->prompt);
    memset(rq, 0, sizeof *rq);
}

static int bad(char *why, size_t n, const char *msg)
{
    snprintf(why, n, "%s", msg);
    return 400;
}

static int get_number(cJSON *root, const char *key, double lo, double hi, double *out, char *why, size_t n)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi) {
        snprintf(why, n, "'%s' must be a number in [%g, %g]", key, lo, hi);
        return 400;
    }
    *out = v->valuedouble;
    return 0;
}

int serve_parse_request(const char *json, int is_chat, serve_request *rq, char *why, size_t n)
{
    memset(rq, 0, sizeof *rq);
    rq->is_chat = is_chat;
    rq->max_tokens = 128;
    rq->temperature = 1.0f;
    rq->top_p = 1.0f;
    rq->repeat_penalty = 1.0f;
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return bad(why, n, "request body is not a JSON object");
    }
    int st = 0;
    if (is_chat) {
        cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
        if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
            st = bad(why, n, "'messages' must be a non-empty array");
            goto out;
        }
        if (cJSON_GetArraySize(msgs) > SERVE_MAX_MESSAGES) {
            snprintf(why, n, "at most %d messages", SERVE_MAX_MESSAGES);
            st = 400;
            goto out;
        }
        cJSON *m;
        cJSON_ArrayForEach(m, msgs)
        {
            cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
            cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
            if (!cJSON_IsString(role) || !cJSON_IsString(content)) {
                st = bad(why, n, "each message needs string 'role' and 'content'");
                goto out;
            }
            if (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "user") &&
                strcmp(role->valuestring, "assistant")) {
                snprintf(why, n, "unknown role '%.32s' (system, user, assistant)", role->valuestring);
                st = 400;
                goto out;
            }
            serve_message *sm = &rq->msgs[rq->n_msgs++];
            snprintf(sm->role, sizeof sm->role, "%s", role->valuestring);
            if (!(sm->content = strdup(content->valuestring))) {
                st = 500;
                goto out;
            }
        }
    } else {
        cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        if (!cJSON_IsString(p)) {
            st = bad(why, n, "'prompt' must be a string");
            goto out;
        }
        if (!(rq->prompt = strdup(p->valuestring))) {
            st = 500;
            goto out;
        }
    }
    double v;
    v = rq->max_tokens;
    if ((st = get_number(root, "max_tokens", 1, 1 << 20, &v, why, n)))
        goto out;
    rq->max_tokens = (int)v;
    v = rq->temperature;
    if ((st = get_number(root, "temperature", 0, 10, &v, why, n)))
        goto out;
    rq->temperature = (float)v;
    v = rq->top_p;
    if ((st = get_number(root, "top_p", 0, 1, &v, why, n)))
        goto out;
    rq->top_p = (float)v;
    v = 0;
    if ((st = get_number(root, "top_k", 0, 1e9, &v, why, n)))
        goto out;
    rq->top_k = (int)v;
    v = 0;
    if ((st = get_number(root, "min_p", 0, 1, &v, why, n)))
        goto out;
    rq->min_p = (float)v;
    v = rq->repeat_penalty;
    if ((st = get_number(root, "repeat_penalty", 0, 10, &v, why, n)))
        goto out;
    rq->repeat_penalty = (float)v;
    v = -1;
    if ((st = get_number(root, "seed", 0, 1.8e19, &v, why, n)))
        goto out;
    if (v >= 0) {
        rq->seed = (uint64_t)v;
        rq->has_seed = 1;
    }
    cJSON *stream = cJSON_GetObjectItemCaseSensitive(root, "stream");
    if (stream && !cJSON_IsNull(stream)) {
        if (!cJSON_IsBool(stream)) {
            st = bad(why, n, "'stream' must be a boolean");
            goto out;
        }
        rq->stream = cJSON_IsTrue(stream);
    }
    cJSON *stop = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (cJSON_IsString(stop)) {
        snprintf(rq->stop[rq->n_stop++], sizeof rq->stop[0], "%s", stop->valuestring);
    } else if (cJSON_IsArray(stop)) {
        cJSON *s;
        cJSON_ArrayForEach(s, stop)
        {
            if (!cJSON_IsString(s) || rq->n_stop >= SERVE_MAX_STOP) {
                st = bad(why, n, "'stop' must be a string or up to 4 strings");
                goto out;
            }
            snprintf(rq->stop[rq->n_stop++], sizeof rq->stop[0], "%s", s->valuestring);
        }
    } else if (stop && !cJSON_IsNull(stop)) {
        st = bad(why, n, "'stop' must be a string or an array of strings");
    }
out:
    cJSON_Delete(root);
    if (st)
        serve_request_free(rq);
    return st;
}

/* ---- responses ---- */

typedef struct stream_ctx {
    int fd;
    int is_chat;
    const char *model;
    char id[48];
    long created;
    char *text; /* accumulated (non-streaming) */
    size_t len, cap;
    int client_gone;
} stream_ctx;

static cJSON *chunk_json(const stream_ctx *c, const char *piece, const char *finish)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", c->id);
    cJSON_AddStringToObject(root, "object", c->is_chat ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(root, "created", (double)c->created);
    cJSON_AddStringToObject(root, "model", c->model);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", 0);
    if (c->is_chat) {
        cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
        if (piece)
            cJSON_AddStringToObject(delta, "content", piece);
    } else {
        cJSON_AddStringToObject(ch, "text", piece ? piece : "");
    }
    if (finish)
        cJSON_AddStringToObject(ch, "finish_reason", finish);
    else
        cJSON_AddNullToObject(ch, "finish_reason");
    return root;
}

static int on_piece(void *ctx, const char *piece)
{
    stream_ctx *c = ctx;
    if (c->fd >= 0) { /* streaming */
        cJSON *j = chunk_json(c, piece, NULL);
        char *s = cJSON_PrintUnformatted(j);
        int rc = s ? http_sse_event(c->fd, s) : -1;
        free(s);
        cJSON_Delete(j);
        if (rc)
            c->client_gone = 1;
        return rc;
    }
    size_t n = strlen(piece);
    if (c->len + n + 1 > c->cap) {
        size_t cap = (c->cap ? 2 * c->cap : 256) + n;
        char *t = realloc(c->text, cap);
        if (!t)
            return -1;
        c->text = t;
        c->cap = cap;
    }
    memcpy(c->text + c->len, piece, n + 1);
    c->len += n;
    return 0;
}

static void add_usage(cJSON *root, const serve_usage *u)
{
    cJSON *usage = cJSON_AddObjectToObject(root, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", u->prompt_tokens);
    cJSON_AddNumberToObject(usage, "completion_tokens", u->completion_tokens);
    cJSON_AddNumberToObject(usage, "total_tokens", u->prompt_tokens + u->completion_tokens);
    cJSON *t = cJSON_AddObjectToObject(root, "timings"); /* Kiln extension, like llama.cpp's server */
    cJSON_AddNumberToObject(t, "prefill_tokens_per_second", u->prefill_tps);
    cJSON_AddNumberToObject(t, "decode_tokens_per_second", u->decode_tps);
    cJSON_AddNumberToObject(t, "time_to_first_token_ms", u->ttft_ms);
}

static void handle_generate(int fd, const serve_generator *g, const http_request *hr, int is_chat)
{
    serve_request rq;
    char why[256];
    int st = serve_parse_request(hr->body, is_chat, &rq, why, sizeof why);
    if (st) {
        http_respond_error(fd, st, "invalid_request_error", why);
        return;
    }
    stream_ctx c = {.fd = rq.stream ? fd : -1, .is_chat = is_chat, .model = g->model_id, .created = (long)time(NULL)};
    snprintf(c.id, sizeof c.id, "%s-%ld%04d", is_chat ? "chatcmpl" : "cmpl", c.created, rand() % 10000);
    if (rq.stream && http_sse_begin(fd)) {
        serve_request_free(&rq);
        return;
    }
    serve_usage u = {0};
    kiln_err e = {0};
    int rc = g->generate(g->user, &rq, on_piece, &c, &u, &e);
    if (rq.stream) {
        if (!c.client_gone) {
            if (rc) {
                cJSON *j = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(j, "error");
                cJSON_AddStringToObject(err, "message", kiln_code_name(rc));
                cJSON_AddStringToObject(err, "type", "server_error");
                char *s = cJSON_PrintUnformatted(j);
                if (s)
                    http_sse_event(fd, s);
                free(s);
                cJSON_Delete(j);
            } else {
                cJSON *j = chunk_json(&c, NULL, u.finish_reason[0] ? u.finish_reason : "stop");
                add_usage(j, &u);
                char *s = cJSON_PrintUnformatted(j);
                if (s)
                    http_sse_event(fd, s);
                free(s);
                cJSON_Delete(j);
            }
            http_sse_event(fd, "[DONE]");
        }
    } else if (rc) {
        if (rc == KILN_E_FULL)
            http_respond_error(fd, 400, "context_length_exceeded", e.msg);
        else
            http_respond_error(fd, rc == KILN_E_INVALID ? 400 : 500,
                               rc == KILN_E_INVALID ? "invalid_request_error" : "server_error", e.msg);
    } else {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "id", c.id);
        cJSON_AddStringToObject(root, "object", is_chat ? "chat.completion" : "text_completion");
        cJSON_AddNumberToObject(root, "created", (double)c.created);
        cJSON_AddStringToObject(root, "model", g->model_id);
        cJSON *choices = cJSON_AddArrayToObject(root, "choices"), *ch = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, ch);
        cJSON_AddNumberToObject(ch, "index", 0);
        if (is_chat) {
            cJSON *msg = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(msg, "role", "assistant");
            cJSON_AddStringToObject(msg, "content", c.text ? c.text : "");
        } else {
            cJSON_AddStringToObject(ch, "text", c.text ? c.text : "");
        }
        cJSON_AddStringToObject(ch, "finish_reason", u.finish_reason[0] ? u.finish_reason : "stop");
        add_usage(root, &u);
        char *s = cJSON_PrintUnformatted(root);
        if (s)
            http_respond(fd, 200, "application/json", s, strlen(s));
        else
            http_respond_error(fd, 500, "server_error", "out of memory");
        free(s);
        cJSON_Delete(root);
    }
    free(c.text);
    serve_request_free(&rq);
}

void serve_connection(int fd, const serve_generator *g)
{
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    http_request hr;
    char why[256];
    int st = http_read_request(fd, &hr, why, sizeof why);
    if (st) {
        http_respond_error(fd, st, "invalid_request_error", why);
        return;
    }
    int get = !strcmp(hr.method, "GET"), post = !strcmp(hr.method, "POST");
    if (!strcmp(hr.path, "/health") || !strcmp(hr.path, "/v1/models")) {
        if (!get) {
            http_respond_error(fd, 405, "invalid_request_error", "use GET");
        } else if (!strcmp(hr.path, "/health")) {
            static const char ok[] = "{\"status\":\"ok\"}";
            http_respond(fd, 200, "application/json", ok, sizeof ok - 1);
        } else {
            /* the id is the model's file name: any byte a file name may hold, escaped by cJSON */
            cJSON *j = cJSON_CreateObject(), *m = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "object", "list");
            cJSON *data = cJSON_AddArrayToObject(j, "data");
            cJSON_AddStringToObject(m, "id", g->model_id);
            cJSON_AddStringToObject(m, "object", "model");
            cJSON_AddStringToObject(m, "owned_by", "kiln");
            cJSON_AddItemToArray(data, m);
            char *body = cJSON_PrintUnformatted(j);
            if (body)
                http_respond(fd, 200, "application/json", body, strlen(body));
            else
                http_respond_error(fd, 500, "server_error", "out of memory");
            free(body);
            cJSON_Delete(j);
        }
    } else if (!strcmp(hr.path, "/v1/chat/completions") || !strcmp(hr.path, "/v1/completions")) {
        if (!post)
            http_respond_error(fd, 405, "invalid_request_error", "use POST");
        else if (hr.content_type[0] && !strstr(hr.content_type, "json"))
            http_respond_error(fd, 415, "invalid_request_error", "Content-Type must be application/json");
        else
            handle_generate(fd, g, &hr, !strcmp(hr.path, "/v1/chat/completions"));
    } else {
        http_respond_error(fd, 404, "invalid_request_error", "unknown path");
    }
    http_request_free(&hr);
}

int serve_listen(const char *host, int port, int *fd_out, int *bound_port, kiln_err *e)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return kiln_fail(e, KILN_E_IO, "serve: socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        close(fd);
        return kiln_fail(e, KILN_E_INVALID, "serve: '%s' is not an IPv4 address", host);
    }
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 16)) {
        int err = errno;
        close(fd);
        return kiln_fail(e, KILN_E_IO, "serve: cannot listen on %s:%d: %s", host, port, strerror(err));
    }
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *bound_port = ntohs(a.sin_port);
    *fd_out = fd;
    return 0;
}

int serve_loop(int listen_fd, const serve_generator *g, int max_requests, volatile sig_atomic_t *stop)
{
    int served = 0;
    while (!(stop && *stop) && (max_requests <= 0 || served < max_requests)) {
        struct pollfd p = {.fd = listen_fd, .events = POLLIN};
        int pr = poll(&p, 1, 200);
        if (pr <= 0)
            continue;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve_connection(fd, g);
        shutdown(fd, SHUT_WR);
        close(fd);
        served++;
    }
    return served;
}
