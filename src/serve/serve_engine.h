/* src/serve/serve_engine.h - the engine behind `kiln serve`: one model on
 * one device, a generator for openai.h. Requests are served one at a time;
 * a conversation whose prefix matches the previous request's reuses its KV
 * cache. */
#ifndef KILN_SERVE_ENGINE_H
#define KILN_SERVE_ENGINE_H

#include "src/serve/openai.h"

typedef struct serve_engine serve_engine;

int serve_engine_open(serve_engine **out, const char *model, const char *device, const char *db, kiln_err *e);
void serve_engine_generator(serve_engine *s, serve_generator *g);
void serve_engine_close(serve_engine *s);

#endif
