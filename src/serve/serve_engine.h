/* src/serve/serve_engine.h - the engine behind `kiln serve`: one model on
 * one device, a generator for openai.h. Requests are served one at a time;
 * a conversation whose prefix matches the previous request's reuses its KV
 * cache. */
#ifndef KILN_SERVE_ENGINE_H
#define KILN_SERVE_ENGINE_H

#include "engine/session.h"
#include "src/serve/openai.h"

typedef struct serve_engine serve_engine;

/* The session's model (o->model) on its device; the model id is the file
 * name without .gguf. */
int serve_engine_open(serve_engine **out, const kiln_session_opts *o, kiln_err *e);
void serve_engine_generator(serve_engine *s, serve_generator *g);
void serve_engine_close(serve_engine *s);

/* Shared with the batch back end (serve_batch.c). */
/* The model id of a GGUF path: the file name without directory and .gguf. */
void serve_model_id(const char *path, char *out, size_t n);
/* The prompt for rq: the chat template over its messages (with the
 * template's own system message when there is none) or the raw prompt;
 * *ids malloc'd. */
int serve_prompt_ids(const kiln_session *s, const serve_request *rq, int32_t **ids, int *n, kiln_err *e);
/* Sampling from the request (ranges were checked by the parser; checked
 * again here); no seed: one from the clock. */
int serve_request_sampling(const serve_request *rq, kiln_sampling *sp, kiln_err *e);

#endif
