/* src/engine_cli.h - the command-line options shared by the commands that
 * run a model (run, chat, serve, bench model): model, device, database, KV
 * cache, threads, sampling, profiling. They become engine session options
 * (engine/session.h), where the work is done. */
#ifndef KILN_SRC_ENGINE_CLI_H
#define KILN_SRC_ENGINE_CLI_H

#include "engine/session.h"
#include "src/args.h"

typedef struct kiln_engine_cli {
    const char *model;
    const char *device;        /* default "cpu" */
    const char *db_path;       /* NULL: $KILN_DB or the default path, used if it exists */
    int ctx, page_size, chunk, threads;
    int precision;             /* KILN_PRECISION_FAST (default) | KILN_PRECISION_STRICT */
    int kv_type;               /* KILN_KV_F32 | KILN_KV_F16; -1 (default): kiln_engine_cli_kv_type's choice */
    int verbose, json, profile, no_fuse;
    int n_predict;
    const char *prompt;
    const char *chat_template; /* NULL: from the GGUF */
    const char *stop[8];
    int n_stop;
    kiln_sampling sampling;
    kiln_opt opts[32];         /* the options above as a table (src/args.h), {0}-terminated */
} kiln_engine_cli;

/* Defaults, and c->opts pointing into c: pass it among a command's tables
 * to kiln_args_parse (c must not move afterwards). */
void kiln_engine_cli_defaults(kiln_engine_cli *c);
/* Consumes argv[*i] (and its value) if it is a shared option; returns 1 if
 * consumed, 0 if not an engine option, -1 on a bad value (message printed). */
int kiln_engine_cli_arg(kiln_engine_cli *c, int argc, char **argv, int *i);
/* The shared options' help (generated from the table). */
void kiln_engine_cli_help(FILE *f, kiln_engine_cli *c);

/* The session options for c: verbose logs and progress to stderr (no
 * progress line with --json), and this build's embedded winners (-Dtuned_db)
 * when there is no database file. Checks the sampling flags. */
/* The KV cache type c runs with: --kv-type's, else f16 with --precision
 * fast (the default) and f32 with strict, whose greedy output equals a
 * float64 forward (bench/results/kv-f16.md: f16 costs +0.03% PPL and is as
 * fast or faster). */
int kiln_engine_cli_kv_type(const kiln_engine_cli *c);
int kiln_engine_cli_session_opts(const kiln_engine_cli *c, kiln_session_opts *o, kiln_err *e);

#endif
