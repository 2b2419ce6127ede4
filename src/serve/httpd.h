/* src/serve/httpd.h - the HTTP server of `kiln serve`, on libmicrohttpd.
 *
 *   GET  /health, /v1/models, /metrics (Prometheus text)
 *   POST /v1/chat/completions, /v1/completions (JSON, or SSE with "stream")
 *
 * libmicrohttpd parses HTTP and runs one thread per connection (a connection
 * limit caps them), so a slow or idle client holds only its own thread: the
 * generation itself runs in the back end's engine thread (backend.h), and a
 * connection thread only waits on its job. Per connection: an idle timeout
 * (no byte for conn_timeout_s while the request is read), a deadline for the
 * whole request (headers and body, request_timeout_s), a header size limit
 * (431) and a body size limit (413). While a job runs the connection's socket
 * is watched: a client that closes it cancels the job, streamed or not. */
#ifndef KILN_SERVE_HTTPD_H
#define KILN_SERVE_HTTPD_H

#include <stddef.h>

#include "src/serve/backend.h"

typedef struct serve_httpd_opts {
    const char *host;           /* IPv4 address (default 127.0.0.1) */
    int port;                   /* 0: any free port (serve_httpd_port says which) */
    int conn_timeout_s;         /* idle seconds before a connection is dropped while its request is read (10) */
    int request_timeout_s;      /* seconds to receive a whole request, headers and body (30) */
    int max_conns;              /* concurrent connections (256) */
    size_t max_body;            /* request body bytes (1 MiB) */
} serve_httpd_opts;

typedef struct serve_httpd serve_httpd;

/* Starts serving b (not owned; outlives the server). */
int serve_httpd_start(serve_httpd **out, const serve_httpd_opts *o, serve_backend *b, kiln_err *e);
int serve_httpd_port(const serve_httpd *h);
/* Requests answered so far (any path and status). */
unsigned long serve_httpd_answered(serve_httpd *h);
/* Stops accepting, ends connections, frees. Call before closing the back end. */
void serve_httpd_stop(serve_httpd *h);

#endif
