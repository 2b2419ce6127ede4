/* src/cmd_bench_serve.c - `kiln bench serve`: C concurrent clients against a
 * running OpenAI-compatible server (kiln serve, llama.cpp's llama-server),
 * each sending R streamed /v1/completions requests one after another.
 *
 * Every request has its own prompt (different from its first word on, so no
 * server can answer from a cached prefix), -n tokens with "ignore_eos" (all
 * requests generate the same count; both servers honour it) at temperature 0.
 * Timed on the client with the monotonic clock: TTFT (sent -> first text
 * event) per request, the gaps between successive text events
 * (inter-token latency), and per concurrency level the wall time from the
 * first request sent to the last answer. Reported per level: aggregate output
 * tok/s (all tokens / wall), aggregate decode tok/s (tokens after each
 * request's first / wall), TTFT and ITL p50/p99, and the ratio of output tok/s
 * to the first level's (normally C = 1). One untimed warm-up request first.
 * A request's tokens are the count its server reports (usage, or llama.cpp's
 * timings; src/serve/client.h), else its text events; the table says which,
 * and when events and tokens differ (then ITL is per event, not per token).
 * A request that ends with fewer tokens than -n counts, and is said. --json
 * prints the levels as one JSON object instead of the table
 * (bench/harness/bench-serve.sh --rounds reads it).
 * The chat scenario (--system-prompt-words S > 0, a separate, labelled
 * run): every prompt starts with the same S words (a long system message)
 * before its own -p words, and asks the server to keep its prompt cache
 * ("cache_prompt": true); the warm-up request carries the same S words, as a
 * chat server that has seen its system message before. The table says so.
 * With a database (the default one, --db, $KILN_DB) each level is stored as
 * results of one bench run (kind "serve", subject "LABEL cC"), under the
 * fingerprint of --device (the device the server runs on; default cpu). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_store.h"
#include "devices/device.h"
#include "src/args.h"
#include "src/commands.h"
#include "src/serve/client.h"
#include "util/git_commit.h"
#include "util/num.h"

int kiln_cmd_bench_serve(int argc, char **argv);

typedef struct req_stat {
    int ok, n_events, n_tokens, from_usage;
    double ttft, total;
} req_stat;

typedef struct level {
    const serve_url *url;
    const char *path;
    int clients, reqs, n_prompt_words, n_gen, n_sys_words;
    double timeout_s;
    req_stat *st;               /* [clients * reqs] */
    double **gaps;              /* per client: every gap of its requests */
    int *n_gaps;
    pthread_mutex_t mu;
    char first_error[320];
} level;

typedef struct client_arg {
    level *lv;
    int c;
} client_arg;

/* Words that make a prompt; the request's index picks a different start. */
static const char *const words[] = {
    "the", "river", "stone", "quiet", "market", "lantern", "winter", "copper", "garden", "signal", "harbor", "paper",
    "engine", "meadow", "silver", "window", "forest", "bridge", "candle", "orbit", "valley", "thunder", "marble",
    "ribbon", "falcon", "canyon", "velvet", "pepper", "island", "violet", "anchor", "prairie"};
#define N_WORDS ((int)(sizeof words / sizeof *words))

/* n words from the sequence seeded by id */
static size_t put_words(char *b, size_t n, size_t cap, unsigned seed, int n_words, int lead_space)
{
    unsigned x = 2654435761u * seed;
    for (int i = 0; i < n_words; i++) {
        x = x * 1103515245u + 12345u;
        n += (size_t)snprintf(b + n, cap - n, "%s%s", i || lead_space ? " " : "", words[(x >> 16) % N_WORDS]);
    }
    return n;
}

/* sys_words > 0: the same sys_words first in every prompt (the shared system message), then the request's own */
static char *prompt_body(int id, int n_words, int n_gen, int sys_words)
{
    size_t cap = (size_t)(n_words + sys_words) * 12 + 256;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    size_t n = (size_t)snprintf(b, cap, "{\"prompt\":\"");
    if (sys_words > 0)
        n = put_words(b, n, cap, 0x5eedu, sys_words, 0);
    n = put_words(b, n, cap, (unsigned)(id + 1), n_words, sys_words > 0);
    snprintf(b + n, cap - n,
             "\",\"max_tokens\":%d,\"temperature\":0,\"ignore_eos\":true,\"stream\":true,\"cache_prompt\":%s}",
             n_gen, sys_words > 0 ? "true" : "false");
    return b;
}

static void *client_main(void *arg)
{
    client_arg *ca = arg;
    level *lv = ca->lv;
    int cap = 0;
    for (int r = 0; r < lv->reqs; r++) {
        int id = ca->c * lv->reqs + r;
        req_stat *st = &lv->st[id];
        char *body = prompt_body(1000 * lv->clients + id, lv->n_prompt_words, lv->n_gen, lv->n_sys_words);
        serve_stream_result res;
        kiln_err e = {0};
        int rc = body ? serve_stream_post(lv->url, lv->path, body, lv->timeout_s, &res, &e)
                      : kiln_fail(&e, KILN_E_NOMEM, "out of memory");
        free(body);
        if (!rc && res.status == 200 && res.n_events > 0 && !res.error[0]) {
            st->ok = 1;
            st->n_events = res.n_events;
            st->from_usage = res.n_usage >= 0;
            st->n_tokens = res.n_usage >= 0 ? res.n_usage : res.n_events;
            st->ttft = res.t_first;
            st->total = res.t_total;
            int need = lv->n_gaps[ca->c] + res.n_events - 1;
            if (need > cap) {
                cap = 2 * need;
                double *g = realloc(lv->gaps[ca->c], sizeof *g * (size_t)cap);
                if (g)
                    lv->gaps[ca->c] = g;
                else
                    cap = 0;
            }
            if (cap)
                for (int i = 0; i < res.n_events - 1; i++)
                    lv->gaps[ca->c][lv->n_gaps[ca->c]++] = res.gaps[i];
        } else {
            pthread_mutex_lock(&lv->mu);
            if (!lv->first_error[0])
                snprintf(lv->first_error, sizeof lv->first_error, "%s",
                         rc                   ? e.msg
                         : res.status != 200 || res.error[0] ? res.error
                                                             : "no text in the answer");
            if (!rc && res.status != 200 && !strstr(lv->first_error, "status"))
                snprintf(lv->first_error + strlen(lv->first_error),
                         sizeof lv->first_error - strlen(lv->first_error), " (status %d)", res.status);
            pthread_mutex_unlock(&lv->mu);
        }
        if (!rc)
            serve_stream_result_free(&res);
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, int n, double p)
{
    if (n <= 0)
        return NAN;
    int i = (int)ceil(p * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

typedef struct level_out {
    int clients, ok, failed;
    int from_usage;             /* ok requests whose token count the server reported */
    int short_reqs;             /* ok requests with fewer tokens than -n */
    long tokens, events;
    double wall, out_tok_s, dec_tok_s, ttft_p50, ttft_p99, itl_p50, itl_p99;
} level_out;

static int run_level(const serve_url *url, const char *path, int clients, int reqs, int n_words, int sys_words,
                     int n_gen, double timeout_s, level_out *o, char *err, size_t err_n)
{
    level lv = {.url = url, .path = path, .clients = clients, .reqs = reqs, .n_prompt_words = n_words,
                .n_sys_words = sys_words, .n_gen = n_gen, .timeout_s = timeout_s};
    lv.st = calloc((size_t)clients * (size_t)reqs, sizeof *lv.st);
    lv.gaps = calloc((size_t)clients, sizeof *lv.gaps);
    lv.n_gaps = calloc((size_t)clients, sizeof *lv.n_gaps);
    pthread_t *th = calloc((size_t)clients, sizeof *th);
    client_arg *ca = calloc((size_t)clients, sizeof *ca);
    if (!lv.st || !lv.gaps || !lv.n_gaps || !th || !ca) {
        free(lv.st), free(lv.gaps), free(lv.n_gaps), free(th), free(ca);
        snprintf(err, err_n, "out of memory");
        return -1;
    }
    pthread_mutex_init(&lv.mu, NULL);
    double t0 = now_s();
    int started = 0;
    for (int c = 0; c < clients; c++) {
        ca[c] = (client_arg){.lv = &lv, .c = c};
        if (pthread_create(&th[c], NULL, client_main, &ca[c]))
            break;
        started++;
    }
    for (int c = 0; c < started; c++)
        pthread_join(th[c], NULL);
    double wall = now_s() - t0;
    memset(o, 0, sizeof *o);
    o->clients = clients;
    o->wall = wall;
    int n = clients * reqs, n_gap = 0;
    double *ttft = malloc(sizeof *ttft * (size_t)n);
    long tok = 0, dec = 0;
    for (int i = 0; i < n; i++)
        if (lv.st[i].ok) {
            ttft[o->ok++] = lv.st[i].ttft;
            tok += lv.st[i].n_tokens;
            dec += lv.st[i].n_tokens - 1;
            o->events += lv.st[i].n_events;
            o->from_usage += lv.st[i].from_usage;
            o->short_reqs += lv.st[i].n_tokens < n_gen;
        }
    o->tokens = tok;
    o->failed = n - o->ok;
    for (int c = 0; c < clients; c++)
        n_gap += lv.n_gaps[c];
    double *gaps = malloc(sizeof *gaps * (size_t)(n_gap ? n_gap : 1));
    n_gap = 0;
    for (int c = 0; c < clients; c++) {
        if (gaps && lv.n_gaps[c])
            memcpy(gaps + n_gap, lv.gaps[c], sizeof *gaps * (size_t)lv.n_gaps[c]);
        n_gap += lv.n_gaps[c];
        free(lv.gaps[c]);
    }
    if (ttft && gaps) {
        qsort(ttft, (size_t)o->ok, sizeof *ttft, cmp_d);
        qsort(gaps, (size_t)n_gap, sizeof *gaps, cmp_d);
        o->out_tok_s = tok / wall;
        o->dec_tok_s = dec / wall;
        o->ttft_p50 = 1e3 * pct(ttft, o->ok, 0.5);
        o->ttft_p99 = 1e3 * pct(ttft, o->ok, 0.99);
        o->itl_p50 = 1e3 * pct(gaps, n_gap, 0.5);
        o->itl_p99 = 1e3 * pct(gaps, n_gap, 0.99);
    }
    if (lv.first_error[0])
        snprintf(err, err_n, "%s", lv.first_error);
    free(ttft), free(gaps), free(lv.st), free(lv.gaps), free(lv.n_gaps), free(th), free(ca);
    pthread_mutex_destroy(&lv.mu);
    return 0;
}

static int store(const char *db_path, const char *device, const char *label, const level_out *lo, int n_lv,
                 int reqs, int n_words, int sys_words, int n_gen, kiln_err *e)
{
    kiln_db *db = NULL;
    char path[1024];
    const char *dbp = db_path ? db_path : getenv("KILN_DB");
    if (!dbp && kiln_db_default_path(path, sizeof path) == 0)
        dbp = path;
    if (!dbp)
        return 0;
    kiln_device *dev = NULL;
    int rc = kiln_device_select(device, &dev, e);
    if (!rc)
        rc = kiln_db_open(&db, dbp, e);
    char batch[32];
    kiln_bench_batch_tag(batch);
    for (int i = 0; i < n_lv && !rc; i++) {
        kiln_bench_writer w;
        char subject[256], note[256];
        /* the shared-system-prompt scenario is another subject: never compared with the plain one */
        if (sys_words > 0)
            snprintf(subject, sizeof subject, "%s sys%d c%d", label, sys_words, lo[i].clients);
        else
            snprintf(subject, sizeof subject, "%s c%d", label, lo[i].clients);
        if ((rc = kiln_bench_begin(&w, db, &dev->fp, "serve", subject, batch, e)))
            break;
        snprintf(note, sizeof note, "clients %d, requests %d each, prompt %d words after %d shared, gen %d tokens, "
                 "%d failed", lo[i].clients, reqs, n_words, sys_words, n_gen, lo[i].failed);
        kiln_bench_note(&w, note, e);
        struct {
            const char *metric, *unit;
            int hib;
            double v;
        } rows[] = {
            {"out_tok_s", "tok/s", KILN_BENCH_HIGHER, lo[i].out_tok_s},
            {"decode_tok_s", "tok/s", KILN_BENCH_INFO, lo[i].dec_tok_s},
            {"ttft_p50_ms", "ms", KILN_BENCH_LOWER, lo[i].ttft_p50},
            {"ttft_p99_ms", "ms", KILN_BENCH_INFO, lo[i].ttft_p99},
            {"itl_p50_ms", "ms", KILN_BENCH_LOWER, lo[i].itl_p50},
            {"itl_p99_ms", "ms", KILN_BENCH_INFO, lo[i].itl_p99},
        };
        for (size_t k = 0; k < sizeof rows / sizeof *rows && !rc; k++) {
            kiln_bench_result r = {.higher_is_better = rows[k].hib, .value = isnan(rows[k].v) ? 0 : rows[k].v,
                                   .n = lo[i].ok};
            snprintf(r.subject, sizeof r.subject, "%s", subject);
            snprintf(r.metric, sizeof r.metric, "%s", rows[k].metric);
            snprintf(r.unit, sizeof r.unit, "%s", rows[k].unit);
            rc = kiln_bench_add(&w, &r, e);
        }
        rc = kiln_bench_end(&w, !rc, e) || rc;
    }
    if (db)
        kiln_db_close(db);
    kiln_device_close(dev);
    return rc;
}

/* Where the levels' token counts came from, and where they fall short:
 * said under the table (on stderr with --json), never silently. */
static void print_token_notes(FILE *f, const char *label, const level_out *lo, int n_lv, int n_gen)
{
    for (int i = 0; i < n_lv; i++) {
        if (lo[i].from_usage < lo[i].ok)
            fprintf(f, "%s, %d clients: %d of %d requests did not report their token count: their text events "
                       "are counted as tokens\n",
                    label, lo[i].clients, lo[i].ok - lo[i].from_usage, lo[i].ok);
        if (lo[i].events != lo[i].tokens)
            fprintf(f, "%s, %d clients: %ld text events for %ld tokens (a server may send two tokens in one "
                       "event): ITL is per event\n",
                    label, lo[i].clients, lo[i].events, lo[i].tokens);
        if (lo[i].short_reqs)
            fprintf(f, "%s, %d clients: %d requests ended with fewer than %d tokens\n", label, lo[i].clients,
                    lo[i].short_reqs, n_gen);
    }
}

static void print_table(const char *label, const char *url, int n_words, int sys_words, int n_gen, int reqs,
                        const level_out *lo, int n_lv)
{
    if (sys_words > 0)
        printf("kiln bench serve: SHARED SYSTEM PROMPT scenario: every prompt starts with the same %d words "
               "(cache_prompt true, warmed up once)\n", sys_words);
    printf("kiln bench serve: %s at %s, prompt %d words, %d tokens generated per request (ignore_eos), %d requests "
           "per client, commit %s\n\n",
           label, url, n_words, n_gen, reqs, kiln_git_commit);
    printf("| server | clients | ok | output tok/s | decode tok/s | vs %d client%s | TTFT p50 ms | TTFT p99 ms | "
           "ITL p50 ms | ITL p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
           lo[0].clients, lo[0].clients == 1 ? "" : "s");
    for (int i = 0; i < n_lv; i++)
        printf("| %s | %d | %d/%d | %.1f | %.1f | %.2fx | %.0f | %.0f | %.1f | %.1f |\n", label, lo[i].clients,
               lo[i].ok, lo[i].ok + lo[i].failed, lo[i].out_tok_s, lo[i].dec_tok_s,
               lo[0].out_tok_s > 0 ? lo[i].out_tok_s / lo[0].out_tok_s : 0, lo[i].ttft_p50, lo[i].ttft_p99,
               lo[i].itl_p50, lo[i].itl_p99);
    int all_usage = 1;
    for (int i = 0; i < n_lv; i++)
        all_usage &= lo[i].from_usage == lo[i].ok;
    printf("\ntokens: %s\n", all_usage ? "as the server reported them (usage / timings)" : "see below");
    print_token_notes(stdout, label, lo, n_lv, n_gen);
}

/* NaN (no successful request) is null: JSON has no NaN. */
static void json_num(const char *key, double v, const char *sep)
{
    if (isnan(v))
        printf("\"%s\":null%s", key, sep);
    else
        printf("\"%s\":%.6g%s", key, v, sep);
}

/* A JSON string: quotes and backslashes escaped, control bytes as '?'. */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar((unsigned char)*s < 0x20 ? '?' : *s);
    }
    putchar('"');
}

static void print_json(const char *label, const char *url, int n_words, int sys_words, int n_gen, int reqs,
                       const level_out *lo, int n_lv)
{
    printf("{\"label\":");
    json_str(label);
    printf(",\"url\":");
    json_str(url);
    printf(",\"n_words\":%d,\"system_words\":%d,\"n_gen\":%d,\"requests\":%d,\"commit\":", n_words, sys_words,
           n_gen, reqs);
    json_str(kiln_git_commit);
    printf(",\"levels\":[");
    for (int i = 0; i < n_lv; i++) {
        const level_out *l = &lo[i];
        printf("%s{\"clients\":%d,\"ok\":%d,\"failed\":%d,\"tokens\":%ld,\"events\":%ld,\"from_usage\":%d,"
               "\"short\":%d,",
               i ? "," : "", l->clients, l->ok, l->failed, l->tokens, l->events, l->from_usage, l->short_reqs);
        json_num("wall_s", l->wall, ",");
        json_num("out_tok_s", l->out_tok_s, ",");
        json_num("decode_tok_s", l->dec_tok_s, ",");
        json_num("ttft_p50_ms", l->ttft_p50, ",");
        json_num("ttft_p99_ms", l->ttft_p99, ",");
        json_num("itl_p50_ms", l->itl_p50, ",");
        json_num("itl_p99_ms", l->itl_p99, "}");
    }
    printf("]}\n");
    print_token_notes(stderr, label, lo, n_lv, n_gen);
}

int kiln_cmd_bench_serve(int argc, char **argv)
{
    const char *url_s = "http://127.0.0.1:8080", *list = "1,8", *label = "kiln", *device = "cpu", *db_path = NULL;
    const char *path = "/v1/completions";
    int reqs = 4, n_words = 48, n_gen = 128, timeout_s = 600, no_store = 0, json = 0, sys_words = 0;
    const kiln_opt own[] = {
        {"--url", NULL, KILN_OPT_STR, &url_s, .arg = "URL", .help = "the server (default http://127.0.0.1:8080)"},
        {"--clients", "-c", KILN_OPT_STR, &list, .arg = "LIST",
         .help = "concurrent clients per level, run in order (default 1,8; ratios are to the first)"},
        {"--requests", "-R", KILN_OPT_INT, &reqs, 1, 10000, .arg = "N",
         .help = "requests each client sends, one after another (default 4)"},
        {"--n-words", "-p", KILN_OPT_INT, &n_words, 1, 100000, .arg = "N",
         .help = "prompt words per request (default 48, about 1.3 tokens each)"},
        {"--system-prompt-words", NULL, KILN_OPT_INT, &sys_words, 0, 100000, .arg = "S",
         .help = "the chat scenario: the same S words first in every prompt (a shared system\n"
                 "message; cache_prompt true; the warm-up sends it too), then -p words of\n"
                 "its own (default 0: no shared prefix)"},
        {"--n-gen", "-n", KILN_OPT_INT, &n_gen, 2, 1 << 20, .arg = "N",
         .help = "tokens generated per request, end of generation ignored (default 128)"},
        {"--label", NULL, KILN_OPT_STR, &label, .arg = "NAME", .help = "the server's name in the table and the "
                                                                        "stored subject (default kiln)"},
        {"--timeout", NULL, KILN_OPT_INT, &timeout_s, 1, 86400, .arg = "S", .help = "per request (default 600)"},
        {"--device", NULL, KILN_OPT_STR, &device, .arg = "D",
         .help = "the device the server runs on: the stored run's device (default cpu)"},
        {"--db", NULL, KILN_OPT_STR, &db_path, .arg = "PATH",
         .help = "store the run here (default $KILN_DB or the default database, if it exists)"},
        {"--no-store", NULL, KILN_OPT_FLAG, &no_store, .help = "do not record the run in the database"},
        {"--json", NULL, KILN_OPT_FLAG, &json, .help = "print the levels as one JSON object instead of the table"},
        {0},
    };
    const kiln_opt *tables[] = {own, NULL};
    int prc = kiln_args_parse("kiln bench serve",
                              "usage: kiln bench serve [--url http://127.0.0.1:8080] [-c 1,8] [-R 4] [-p 48] [-n 128]\n"
                              "       [--system-prompt-words S] [--label NAME] [--device D] [--db PATH] [--no-store] [--json]\n"
                              "C concurrent streaming clients x R requests each against a running OpenAI-compatible\n"
                              "server: aggregate output and decode tok/s, TTFT and inter-token latency p50/p99\n"
                              "exit: 0 ok, 1 a request failed, 2 usage, 3 server unreachable\n",
                              tables, argc, argv, 1, NULL, 0, NULL);
    if (prc)
        return prc == KILN_ARGS_HELP ? KILN_EXIT_OK : prc;
    kiln_err e = {0};
    serve_url url;
    int levels[16], n_lv;
    if (serve_url_parse(url_s, &url, &e) || kiln_num_int_list("--clients", list, 1, 256, levels, 16, &n_lv, &e))
        return kiln_args_usage_error("kiln bench serve", e.msg);
    /* warm-up: one untimed request (also says whether the server is there) */
    char *wb = prompt_body(-1, n_words, n_gen < 8 ? n_gen : 8, sys_words);
    serve_stream_result wr;
    if (!wb || serve_stream_post(&url, path, wb, timeout_s, &wr, &e)) {
        free(wb);
        fprintf(stderr, "kiln bench serve: %s: %s\n", url_s, wb ? e.msg : "out of memory");
        return KILN_EXIT_UNAVAILABLE;
    }
    free(wb);
    serve_stream_result_free(&wr);
    if (wr.status != 200) {
        fprintf(stderr, "kiln bench serve: %s answered %d: %s\n", url_s, wr.status, wr.error);
        return KILN_EXIT_FAIL;
    }
    level_out lo[16];
    int failed = 0;
    for (int i = 0; i < n_lv; i++) {
        char err[320] = "";
        fprintf(stderr, "bench serve %s: %d clients x %d requests...\n", label, levels[i], reqs);
        if (run_level(&url, path, levels[i], reqs, n_words, sys_words, n_gen, timeout_s, &lo[i], err, sizeof err)) {
            fprintf(stderr, "kiln bench serve: %s\n", err);
            return KILN_EXIT_FAIL;
        }
        if (lo[i].failed) {
            fprintf(stderr, "kiln bench serve: %d of %d requests failed at %d clients; the first: %s\n", lo[i].failed,
                    levels[i] * reqs, levels[i], err);
            failed = 1;
        }
    }
    if (json)
        print_json(label, url_s, n_words, sys_words, n_gen, reqs, lo, n_lv);
    else
        print_table(label, url_s, n_words, sys_words, n_gen, reqs, lo, n_lv);
    if (!no_store && store(db_path, device, label, lo, n_lv, reqs, n_words, sys_words, n_gen, &e)) {
        fprintf(stderr, "kiln bench serve: storing the run: %s\n", e.msg);
        return kiln_exit_code(e.code);
    }
    return failed ? KILN_EXIT_FAIL : KILN_EXIT_OK;
}
