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

#endif
