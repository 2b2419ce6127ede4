/* src/cmd_serve.c - `kiln serve`: the OpenAI-compatible HTTP API.
 *   kiln serve -m model.gguf [--device D] [--host 127.0.0.1] [--port 8080] [engine options]
 *   kiln serve --echo            protocol-only test model: echoes the last message */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/commands.h"
#include "src/engine_cli.h"
#include "src/serve/openai.h"
#include "src/serve/serve_engine.h"

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* The echo model: streams the last message back word by word. */
static int echo_generate(void *user, const serve_request *rq, serve_piece_fn piece, void *ctx, serve_usage *u,
                         kiln_err *e)
{
    (void)user;
    (void)e;
    const char *text = rq->is_chat ? rq->msgs[rq->n_msgs - 1].content : rq->prompt;
    char word[256];
    int n = 0;
    u->prompt_tokens = (int)strlen(text);
    for (const char *p = text; *p && n < rq->max_tokens;) {
        size_t len = strcspn(p + 1, " ") + 1;
        snprintf(word, sizeof word, "%.*s", (int)(len < sizeof word ? len : sizeof word - 1), p);
        p += len;
        if (piece(ctx, word))
            return 0;
        n++;
    }
    u->completion_tokens = n;
    snprintf(u->finish_reason, sizeof u->finish_reason, n >= rq->max_tokens ? "length" : "stop");
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kiln serve -m model.gguf [--device D] [--db PATH] [--host 127.0.0.1] [--port 8080]\n"
               "                  [--ctx N] [--page-size N] [--chunk N] [--threads N] [--chat-template NAME] [--verbose]\n"
               "                  [--precision fast|strict] [--no-fuse]\n"
               "       kiln serve --echo [--port N]   (protocol test model)\n"
               "Sampling, stop strings and token limits come with each request.\n");
}

/* The engine options that make sense for a server (sampling and prompts
 * come per request). */
static int session_flag(const char *a)
{
    static const char *const flags[] = {"-m", "--model", "--device", "--db", "--ctx", "--page-size", "--chunk",
                                        "--threads", "--chat-template", "--verbose", "-v", "--precision",
                                        "--no-fuse"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strcmp(a, flags[i]))
            return 1;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    kiln_engine_cli c;
    kiln_engine_cli_defaults(&c);
    const char *host = "127.0.0.1";
    int port = 8080, echo = 0, max_requests = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (session_flag(a)) {
            if (kiln_engine_cli_arg(&c, argc, argv, &i) < 0)
                return KILN_EXIT_USAGE;
        } else if (!strcmp(a, "--host") && v) {
            host = argv[++i];
        } else if (!strcmp(a, "--port") && v) {
            port = atoi(argv[++i]);
        } else if (!strcmp(a, "--max-requests") && v) {
            max_requests = atoi(argv[++i]);
        } else if (!strcmp(a, "--echo")) {
            echo = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return KILN_EXIT_OK;
        } else {
            fprintf(stderr, "kiln serve: unknown option '%s'\n", a);
            usage(stderr);
            return KILN_EXIT_USAGE;
        }
    }
    if (!c.model && !echo) {
        fprintf(stderr, "kiln serve: -m model.gguf is required (or --echo)\n");
        return KILN_EXIT_USAGE;
    }
    kiln_err e = {0};
    serve_generator g = {.model_id = "echo", .generate = echo_generate};
    serve_engine *eng = NULL;
    if (!echo) {
        kiln_session_opts so;
        if (kiln_engine_cli_session_opts(&c, &so, &e) || serve_engine_open(&eng, &so, &e)) {
            fprintf(stderr, "kiln serve: %s\n", e.msg);
            return kiln_exit_code(e.code);
        }
        serve_engine_generator(eng, &g);
    }
    int fd, bound;
    if (serve_listen(host, port, &fd, &bound, &e)) {
        fprintf(stderr, "kiln serve: %s\n", e.msg);
        serve_engine_close(eng);
        return kiln_exit_code(e.code);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("kiln serve: model %s listening on http://%s:%d (POST /v1/chat/completions)\n", g.model_id, host, bound);
    fflush(stdout);
    serve_loop(fd, &g, max_requests, &stop_flag);
    serve_engine_close(eng);
    return 0;
}
