/* src/engine_cli.h - options and setup shared by the commands that run a
 * model (run, chat, serve, bench model): device, database, model, KV cache,
 * sampling flags. */
#ifndef KILN_SRC_ENGINE_CLI_H
#define KILN_SRC_ENGINE_CLI_H

#include "engine/generate.h"

typedef struct kiln_engine_cli {
    const char *model;
    const char *device;        /* default "cpu" */
    const char *db_path;       /* NULL: $KILN_DB or the default path, used if it exists */
    int ctx, page_size, chunk;
    int precision;             /* kiln_precision (default fast) */
    int verbose, json;
    int n_predict;
    const char *prompt;
    const char *chat_template; /* NULL: from the GGUF */
    const char *stop[8];
    int n_stop;
    kiln_sampling sampling;
} kiln_engine_cli;

void kiln_engine_cli_defaults(kiln_engine_cli *c);
/* Consumes argv[*i] (and its value) if it is a shared option; returns 1 if
 * consumed, 0 if not an engine option, -1 on a bad value (message printed). */
int kiln_engine_cli_arg(kiln_engine_cli *c, int argc, char **argv, int *i);
/* One paragraph for --help. */
const char *kiln_engine_cli_help(void);

/* Everything a command needs open, in order; close in reverse. */
typedef struct kiln_engine_session {
    kiln_device *dev;
    kiln_db *db;
    kiln_model model;
    kiln_engine en;
    int model_loaded, engine_ready;
} kiln_engine_session;

int kiln_engine_session_open(kiln_engine_session *s, const kiln_engine_cli *c, kiln_err *e);
void kiln_engine_session_close(kiln_engine_session *s);

#endif
