/* src/cmd_serve.c - `kiln serve`: the OpenAI-compatible HTTP API.
 *   kiln serve -m model.gguf [--device D] [--host 127.0.0.1] [--port 8080]
 *   kiln serve --echo            protocol-only test model: echoes the last message */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/commands.h"
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

int cmd_serve(int argc, char **argv)
{
    const char *model = NULL, *device = "cpu", *host = "127.0.0.1", *db = NULL;
    int port = 8080, echo = 0, max_requests = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && v) model = argv[++i];
        else if (!strcmp(a, "--device") && v) device = argv[++i];
        else if (!strcmp(a, "--db") && v) db = argv[++i];
        else if (!strcmp(a, "--host") && v) host = argv[++i];
        else if (!strcmp(a, "--port") && v) port = atoi(argv[++i]);
        else if (!strcmp(a, "--max-requests") && v) max_requests = atoi(argv[++i]);
        else if (!strcmp(a, "--echo")) echo = 1;
        else {
            fprintf(stderr, "usage: kiln serve -m model.gguf [--device D] [--db PATH] [--host 127.0.0.1] [--port 8080]\n"
                            "       kiln serve --echo [--port N]   (protocol test model)\n");
            return KILN_EXIT_USAGE;
        }
    }
    if (!model && !echo) {
        fprintf(stderr, "kiln serve: -m model.gguf is required (or --echo)\n");
        return KILN_EXIT_USAGE;
    }
    kiln_err e = {0};
    serve_generator g = {.model_id = "echo", .generate = echo_generate};
    serve_engine *eng = NULL;
    if (!echo) {
        if (serve_engine_open(&eng, model, device, db, &e)) {
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
