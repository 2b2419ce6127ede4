/* src/serve/openai.h - the OpenAI-compatible API over http.h:
 *   GET  /health, GET /v1/models,
 *   POST /v1/chat/completions and /v1/completions (JSON or SSE streaming).
 * Text generation is behind serve_generator, so the protocol layer is
 * tested on its own and the engine plugs in through one function. */
#ifndef KILN_SERVE_OPENAI_H
#define KILN_SERVE_OPENAI_H

#include <signal.h>
#include <stdint.h>

#include "src/serve/http.h"
#include "util/err.h"

#define SERVE_MAX_MESSAGES 64
#define SERVE_MAX_STOP 4

typedef struct serve_message {
    char role[16];   /* system | user | assistant */
    char *content;
} serve_message;

typedef struct serve_request {
    int is_chat;     /* /v1/chat/completions (messages) vs /v1/completions (prompt) */
    serve_message msgs[SERVE_MAX_MESSAGES];
    int n_msgs;
    char *prompt;
    int max_tokens;  /* default 128 */
    float temperature, top_p, min_p, repeat_penalty;
    int top_k;
    uint64_t seed;
    int has_seed;
    char stop[SERVE_MAX_STOP][64];
    int n_stop;
    int stream;
} serve_request;

typedef struct serve_usage {
    int prompt_tokens, completion_tokens;
    double prefill_tps, decode_tps, ttft_ms;
    char finish_reason[16]; /* "stop" | "length" */
} serve_usage;

typedef int (*serve_piece_fn)(void *ctx, const char *piece); /* non-zero: client gone, stop */

typedef struct serve_generator {
    void *user;
    const char *model_id;
    /* Generates for rq, streaming text pieces; KILN_E_FULL when the prompt
     * does not fit the context; other errors are server errors. */
    int (*generate)(void *user, const serve_request *rq, serve_piece_fn on_piece, void *ctx, serve_usage *u,
                    kiln_err *e);
} serve_generator;

/* Parses a request body; 0, or 400 with a reason. */
int serve_parse_request(const char *json, int is_chat, serve_request *out, char *why, size_t why_len);
void serve_request_free(serve_request *rq);

/* Handles one connection (reads the request, answers it, closes nothing). */
void serve_connection(int fd, const serve_generator *g);

/* Listens on host:port (port 0 = any free port, reported in *bound_port). */
int serve_listen(const char *host, int port, int *fd, int *bound_port, kiln_err *e);
/* Accepts and serves connections until *stop is set or max_requests (>0)
 * have been served. */
int serve_loop(int listen_fd, const serve_generator *g, int max_requests, volatile sig_atomic_t *stop);

#endif
