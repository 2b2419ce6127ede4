/* src/cmd_serve.c - `kiln serve`: the OpenAI-compatible HTTP API.
 *   kiln serve -m model.gguf [--device D] [--host 127.0.0.1] [--port 8080] [engine options]
 *   kiln serve --echo            protocol-only test model: echoes the last message
 * HTTP: src/serve/httpd.c (libmicrohttpd); generation: a back end
 * (src/serve/backend.h) whose one engine thread owns the engine. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/commands.h"
#include "src/engine_cli.h"
#include "src/serve/backend.h"
#include "src/serve/httpd.h"
#include "src/serve/serve_engine.h"

#ifdef KILN_HAVE_MHD
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
    kiln_engine_cli c;
    kiln_engine_cli_defaults(&c);
    serve_httpd_opts ho = {.host = "127.0.0.1", .port = 8080, .conn_timeout_s = 10, .request_timeout_s = 30,
                           .max_conns = 256, .max_body = 1 << 20};
    int echo = 0, max_requests = 0, max_queue = 64, max_body_kib = 1024, parallel = 1, no_prefix_cache = 0;
    /* the engine options that make sense for a server (sampling and
     * prompts come per request) */
    static const char *const shared[] = {"--model", "--device", "--db", "--ctx", "--page-size", "--chunk",
                                         "--threads", "--precision", "--kv-type", "--no-fuse", "--chat-template", "--verbose", NULL};
    kiln_opt engine[16];
    int ne = 0;
    for (const kiln_opt *o = c.opts; o->name; o++)
        for (int k = 0; shared[k]; k++)
            if (!strcmp(o->name, shared[k]) && ne < 15)
                engine[ne++] = *o;
    engine[ne] = (kiln_opt){0};
    const kiln_opt own[] = {
        {"--host", NULL, KILN_OPT_STR, &ho.host, .arg = "ADDR", .help = "IPv4 address to listen on (default 127.0.0.1)"},
        {"--port", NULL, KILN_OPT_INT, &ho.port, 0, 65535, .arg = "N", .help = "TCP port (default 8080; 0: any free port)"},
        {"--parallel", NULL, KILN_OPT_INT, &parallel, 1, 64, .arg = "N",
         .help = "requests decoded together (continuous batching, chunked prefill; default 1: one\n"
                 "at a time, with KV prefix reuse between turns). With N > 1, --ctx is the KV\n"
                 "cache all N share, and a request whose prompt + max_tokens does not fit what is\n"
                 "left gets 503 with Retry-After"},
        {"--no-prefix-cache", NULL, KILN_OPT_FLAG, &no_prefix_cache,
         .help = "with --parallel N > 1: do not keep finished requests' KV pages for reuse\n"
                 "(the prefix cache, on by default: a prompt starting with a cached prefix,\n"
                 "e.g. a shared system message, prefills only the rest; cached pages are\n"
                 "evicted least recently used whenever a request needs the room)"},
        {"--max-queue", NULL, KILN_OPT_INT, &max_queue, 1, 1 << 20, .arg = "N",
         .help = "requests that may wait for the engine; more get 503 with Retry-After\n(default 64)"},
        {"--max-conns", NULL, KILN_OPT_INT, &ho.max_conns, 1, 1 << 16, .arg = "N",
         .help = "concurrent connections, one thread each (default 256)"},
        {"--timeout", NULL, KILN_OPT_INT, &ho.conn_timeout_s, 1, 3600, .arg = "S",
         .help = "drop a connection idle for S seconds while its request is read (default 10)"},
        {"--request-timeout", NULL, KILN_OPT_INT, &ho.request_timeout_s, 1, 3600, .arg = "S",
         .help = "a whole request (headers and body) must arrive within S seconds (default 30)"},
        {"--max-body", NULL, KILN_OPT_INT, &max_body_kib, 1, 1 << 20, .arg = "KIB",
         .help = "request body limit in KiB; larger gets 413 (default 1024)"},
        {"--max-requests", NULL, KILN_OPT_INT, &max_requests, 0, 1 << 30, .arg = "N",
         .help = "exit after N requests (default 0: serve until SIGINT/SIGTERM)"},
        {"--echo", NULL, KILN_OPT_FLAG, &echo, .help = "a protocol test model that echoes the prompt (no -m)"},
        {0},
    };
    const kiln_opt *tables[] = {own, engine, NULL};
    int prc = kiln_args_parse("kiln serve",
                              "usage: kiln serve -m model.gguf [--device D] [--db PATH] [--host 127.0.0.1] [--port 8080]\n"
                              "       kiln serve --echo [--port N]   (protocol test model)\n"
                              "Endpoints: POST /v1/chat/completions, /v1/completions (\"stream\":true for SSE);\n"
                              "GET /v1/models, /health, /metrics (Prometheus text). Sampling, stop strings and\n"
                              "max_tokens come with each request; a client that disconnects cancels its request.\n"
                              "exit: 0 stopped by a signal or --max-requests, 1 failed, 2 usage, 3 device, model\n"
                              "file or port unavailable\n",
                              tables, argc, argv, 1, NULL, 0, NULL);
    if (prc)
        return prc == KILN_ARGS_HELP ? KILN_EXIT_OK : prc;
    if (!c.model && !echo)
        return kiln_args_usage_error("kiln serve", "-m model.gguf is required (or --echo)");
    ho.max_body = (size_t)max_body_kib << 10;
    kiln_err e = {0};
    serve_generator g = {.model_id = "echo", .generate = echo_generate};
    serve_engine *eng = NULL;
    serve_backend b;
    if (echo && parallel > 1)
        return kiln_args_usage_error("kiln serve", "--echo serves one request at a time (no --parallel)");
    if (parallel > 1) {
        kiln_session_opts so;
        if (kiln_engine_cli_session_opts(&c, &so, &e) || serve_batch_open(&b, &so, parallel, max_queue, no_prefix_cache, &e)) {
            fprintf(stderr, "kiln serve: %s\n", e.msg);
            return kiln_exit_code(e.code);
        }
    } else if (!echo) {
        kiln_session_opts so;
        if (kiln_engine_cli_session_opts(&c, &so, &e) || serve_engine_open(&eng, &so, &e)) {
            fprintf(stderr, "kiln serve: %s\n", e.msg);
            return kiln_exit_code(e.code);
        }
        serve_engine_generator(eng, &g);
    }
    if (parallel <= 1 && serve_serial_open(&b, &g, max_queue, &e)) {
        fprintf(stderr, "kiln serve: %s\n", e.msg);
        serve_engine_close(eng);
        return kiln_exit_code(e.code);
    }
    serve_httpd *h = NULL;
    if (serve_httpd_start(&h, &ho, &b, &e)) {
        fprintf(stderr, "kiln serve: %s\n", e.msg);
        b.close(b.impl);
        serve_engine_close(eng);
        return kiln_exit_code(e.code);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("kiln serve: model %s listening on http://%s:%d (POST /v1/chat/completions)\n", b.model_id, ho.host,
           serve_httpd_port(h));
    fflush(stdout);
    while (!stop_flag && (max_requests <= 0 || serve_httpd_answered(h) < (unsigned long)max_requests))
        usleep(50 * 1000);
    serve_httpd_stop(h);
    b.close(b.impl);
    serve_engine_close(eng);
    return 0;
}
#else
int cmd_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln serve: this kiln was built without libmicrohttpd (libmicrohttpd-dev)\n");
    return KILN_EXIT_UNAVAILABLE;
}
#endif
