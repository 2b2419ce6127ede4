/* src/serve/client.h - a minimal HTTP/1.1 client for streamed (SSE)
 * completions, for `kiln bench serve`: one request per connection, chunked
 * or plain bodies, each "data: " event timed as it arrives and parsed as
 * JSON. Any OpenAI-compatible server (Kiln's, llama.cpp's) answers it.
 *
 * A text event is not always one token (a server may hold back a token that
 * ends inside a UTF-8 sequence and send it with the next), so the token count
 * is taken from the server when it says it: "usage.completion_tokens" (Kiln,
 * and llama-server on /v1/completions, in the last chunk), else llama.cpp's
 * "timings.predicted_n"; n_usage stays -1 when neither came. */
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
    int n_events;        /* events that carried text (choices[0].text or .delta.content, non-empty) */
    int n_usage;         /* completion tokens the server reported (see above); -1: not reported */
    double t_first;      /* seconds from sending to the first text event (0: none) */
    double t_total;      /* seconds from sending to the end of the response */
    double *gaps;        /* seconds between successive text events, n_events - 1 of them (malloc'd) */
    int n_bad;           /* data events that were not JSON objects */
    char error[256];     /* the start of an error body, or an "error" event in the stream */
} serve_stream_result;

/* POSTs body (JSON with "stream":true) to path and reads the SSE stream to
 * its end; timeout_s bounds the whole exchange. 0 when the exchange
 * completed (any status; see r->status), else a transport error. */
int serve_stream_post(const serve_url *u, const char *path, const char *body, double timeout_s,
                      serve_stream_result *r, kiln_err *e);
void serve_stream_result_free(serve_stream_result *r);

#endif
