/* src/serve/http.h - a small, strict HTTP/1.1 request reader and response
 * writer for the OpenAI-compatible server. One request per connection
 * (Connection: close). Limits are explicit; every malformed request maps to
 * a 4xx status with a reason, never a crash. */
#ifndef KILN_SERVE_HTTP_H
#define KILN_SERVE_HTTP_H

#include <stddef.h>

#define HTTP_MAX_HEADER 16384
#define HTTP_MAX_BODY (1 << 20)

typedef struct http_request {
    char method[16];
    char path[256];
    char content_type[128];
    char *body;        /* NUL-terminated, owned */
    size_t body_len;
} http_request;

/* Reads one request from fd. Returns 0, or an HTTP status (400, 408, 413,
 * 431, 501) with a reason in why. */
int http_read_request(int fd, http_request *rq, char *why, size_t why_len);
void http_request_free(http_request *rq);

const char *http_status_text(int status);
/* Writes a complete response with Content-Length. Returns 0 or -1. */
int http_respond(int fd, int status, const char *content_type, const char *body, size_t len);
/* A JSON error body in OpenAI's shape: {"error":{"message","type","code"}} */
int http_respond_error(int fd, int status, const char *type, const char *message);
/* Server-sent events: the header, then one "data: ..." event per call. */
int http_sse_begin(int fd);
int http_sse_event(int fd, const char *data);

#endif
