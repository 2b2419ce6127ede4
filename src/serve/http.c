/* src/serve/http.c - see http.h. */
#include "src/serve/http.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

const char *http_status_text(int s)
{
    switch (s) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    }
    return "Unknown";
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int http_respond(int fd, int status, const char *content_type, const char *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                     http_status_text(status), content_type, len);
    if (write_all(fd, head, (size_t)n))
        return -1;
    return len ? write_all(fd, body, len) : 0;
}

int http_respond_error(int fd, int status, const char *type, const char *message)
{
    cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "message", message);
    cJSON_AddStringToObject(err, "type", type);
    cJSON_AddNumberToObject(err, "code", status);
    char *s = cJSON_PrintUnformatted(root);
    int rc = http_respond(fd, status, "application/json", s ? s : "{}", s ? strlen(s) : 2);
    free(s);
    cJSON_Delete(root);
    return rc;
}

int http_sse_begin(int fd)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                               "Connection: close\r\n\r\n";
    return write_all(fd, head, sizeof head - 1);
}

int http_sse_event(int fd, const char *data)
{
    if (write_all(fd, "data: ", 6) || write_all(fd, data, strlen(data)))
        return -1;
    return write_all(fd, "\n\n", 2);
}

void http_request_free(http_request *rq)
{
    free(rq->body);
    rq->body = NULL;
}

/* Reads until the blank line that ends the headers. Bytes read past it are
 * the start of the body, returned through extra/extra_len. */
static int read_head(int fd, char *buf, size_t cap, size_t *head_len, size_t *got)
{
    size_t n = 0;
    for (;;) {
        if (n == cap)
            return 431;
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 408 : 400;
        if (r == 0)
            return 400;
        n += (size_t)r;
        for (size_t i = n - (size_t)r >= 3 ? n - (size_t)r - 3 : 0; i + 3 < n; i++)
            if (!memcmp(buf + i, "\r\n\r\n", 4)) {
                *head_len = i + 4;
                *got = n;
                return 0;
            }
    }
}

int http_read_request(int fd, http_request *rq, char *why, size_t why_len)
{
    memset(rq, 0, sizeof *rq);
    char *buf = malloc(HTTP_MAX_HEADER + 1);
    if (!buf) {
        snprintf(why, why_len, "out of memory");
        return 500;
    }
    size_t head_len = 0, got = 0;
    int st = read_head(fd, buf, HTTP_MAX_HEADER, &head_len, &got);
    if (st) {
        snprintf(why, why_len, st == 431 ? "request headers exceed %d bytes" : st == 408 ? "timed out reading the request"
                                                                                           : "malformed request",
                 HTTP_MAX_HEADER);
        free(buf);
        return st;
    }
    buf[head_len - 2] = 0; /* end the header block at the final CRLF */
    char *save = NULL;
    char *line = strtok_r(buf, "\r\n", &save);
    char version[16] = "";
    if (!line || sscanf(line, "%15s %255s %15s", rq->method, rq->path, version) != 3 ||
        strncmp(version, "HTTP/1.", 7)) {
        snprintf(why, why_len, "malformed request line");
        free(buf);
        return 400;
    }
    long long content_length = -1;
    int chunked = 0;
    while ((line = strtok_r(NULL, "\r\n", &save))) {
        char *colon = strchr(line, ':');
        if (!colon) {
            snprintf(why, why_len, "malformed header line");
            free(buf);
            return 400;
        }
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (!strcasecmp(line, "Content-Length")) {
            char *end;
            content_length = strtoll(v, &end, 10);
            if (end == v || *end || content_length < 0) {
                snprintf(why, why_len, "bad Content-Length");
                free(buf);
                return 400;
            }
        } else if (!strcasecmp(line, "Content-Type")) {
            snprintf(rq->content_type, sizeof rq->content_type, "%s", v);
        } else if (!strcasecmp(line, "Transfer-Encoding") && strcasecmp(v, "identity")) {
            chunked = 1;
        }
    }
    if (chunked) {
        snprintf(why, why_len, "chunked request bodies are not supported; send Content-Length");
        free(buf);
        return 501;
    }
    if (content_length > HTTP_MAX_BODY) {
        snprintf(why, why_len, "request body of %lld bytes exceeds the %d byte limit", content_length, HTTP_MAX_BODY);
        free(buf);
        return 413;
    }
    size_t blen = content_length > 0 ? (size_t)content_length : 0;
    rq->body = malloc(blen + 1);
    if (!rq->body) {
        free(buf);
        return 500;
    }
    size_t have = got - head_len;
    if (have > blen)
        have = blen; /* ignore pipelined bytes: one request per connection */
    memcpy(rq->body, buf + head_len, have);
    free(buf);
    while (have < blen) {
        ssize_t r = recv(fd, rq->body + have, blen - have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(why, why_len, r == 0 ? "body shorter than Content-Length" : "timed out reading the body");
            http_request_free(rq);
            return r == 0 ? 400 : 408;
        }
        have += (size_t)r;
    }
    rq->body[blen] = 0;
    rq->body_len = blen;
    if (!strcmp(rq->method, "POST") && content_length < 0) {
        snprintf(why, why_len, "POST needs Content-Length");
        http_request_free(rq);
        return 411;
    }
    return 0;
}
