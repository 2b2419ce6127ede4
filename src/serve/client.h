/* src/serve/client.h - a minimal HTTP/1.1 client for streamed (SSE)
 * completions, for `kiln bench serve`: one request per connection, chunked
 * or plain bodies, each "data: " event timed as it arrives. Any
 * OpenAI-compatible server (Kiln's, llama.cpp's) answers it. */
#ifndef KILN_SERVE_CLIENT_H
#define KILN_SERVE_CLIENT_H

#include <stddef.h>

#include "util/err.h"

typedef struct serve_url {
    char host[256];
    int port;
} serve_url;

/* "http://HOST:PORT" (a trailing slash or path is ignored). */
int serve_url_parse(const char *url, serve_url *u, kiln_err *e);

typedef struct serve_stream_result {
    int status;          /* HTTP status */
    int n_tokens;        /* events that carried text */
    double t_first;      /* seconds from sending to the first text event (0: none) */
    double t_total;      /* seconds from sending to the end of the response */
    double *gaps;        /* seconds between successive text events, n_tokens - 1 of them (malloc'd) */
    char error[256];     /* a transport error or the start of an error body */
} serve_stream_result;

/* POSTs body (JSON with "stream":true) to path and reads the SSE stream to
 * its end; timeout_s bounds the whole exchange. 0 when the exchange
 * completed (any status; see r->status), else a transport error. */
int serve_stream_post(const serve_url *u, const char *path, const char *body, double timeout_s,
                      serve_stream_result *r, kiln_err *e);
void serve_stream_result_free(serve_stream_result *r);

#endif
