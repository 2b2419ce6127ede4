/* src/serve/serve_engine.c - placeholder until the engine's generate API
 * lands: says so instead of pretending. */
#include "src/serve/serve_engine.h"

int serve_engine_open(serve_engine **out, const char *model, const char *device, const char *db, kiln_err *e)
{
    (void)model;
    (void)device;
    (void)db;
    *out = NULL;
    return kiln_fail(e, KILN_E_UNAVAILABLE, "serving a model needs the engine (not built yet); try --echo");
}

void serve_engine_generator(serve_engine *s, serve_generator *g)
{
    (void)s;
    (void)g;
}

void serve_engine_close(serve_engine *s) { (void)s; }
