/* src/serve/openai.h - the OpenAI-compatible API's JSON: request parsing
 * (chat messages or a prompt, sampling, stop strings, stream) and the bodies
 * of responses, stream chunks and errors. No sockets here: httpd.h serves
 * them over HTTP. Text generation is behind serve_generator, so the protocol
 * is tested with a stand-in model and the engine plugs in through one
 * function. */
#ifndef KILN_SERVE_OPENAI_H
#define KILN_SERVE_OPENAI_H

#include <stdint.h>

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
    char *stop[SERVE_MAX_STOP];  /* any length (the engine holds back text that may start one) */
    int n_stop;
    int stream;
    char *model;     /* the "model" asked for, or NULL */
    int ignore_eos;  /* "ignore_eos": true (llama.cpp's server has it): generate max_tokens (benchmarks) */
    int has_max_tokens;
} serve_request;

typedef struct serve_usage {
    int prompt_tokens, completion_tokens;
    double prefill_tps, decode_tps, ttft_ms;
    char finish_reason[16]; /* "stop" | "length" ("cancelled": the client went away) */
} serve_usage;

typedef int (*serve_piece_fn)(void *ctx, const char *piece); /* non-zero: client gone, stop */

typedef struct serve_generator {
    void *user;
    const char *model_id;
    int ctx;         /* tokens a request may use, prompt and max_tokens together (0: no bound) */
    /* Generates for rq, streaming text pieces; KILN_E_FULL when the prompt
     * and an explicit max_tokens do not fit the context (a 400); other errors
     * are server errors. on_piece returning non-zero stops generation (the
     * usage then counts what was generated). */
    int (*generate)(void *user, const serve_request *rq, serve_piece_fn on_piece, void *ctx, serve_usage *u,
                    kiln_err *e);
} serve_generator;

/* Parses a request body; 0, or 400 with a reason. */
int serve_parse_request(const char *json, int is_chat, serve_request *out, char *why, size_t why_len);
void serve_request_free(serve_request *rq);

/* Response bodies (malloc'd JSON, NULL when out of memory). usage may be NULL. */
char *serve_chunk_json(const char *id, int is_chat, const char *model, long created, const char *piece,
                       const char *finish, const serve_usage *u);
char *serve_completion_json(const char *id, int is_chat, const char *model, long created, const char *text,
                            const serve_usage *u);
/* GET /v1/models: the one model (its id is a file name: any byte, escaped) */
char *serve_models_json(const char *model_id);
/* {"error":{"message","type","param","code"}} like OpenAI's; param, code may be NULL */
char *serve_error_json(const char *type, const char *message, const char *param, const char *code);

#endif
