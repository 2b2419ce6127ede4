/* src/cmd_bench_batch.c - `kiln bench batch`: aggregate decode tok/s of B
 * sequences decoded together by the scheduler (engine/sched.h), B = 1..16.
 *
 * One session; for each repetition and each B (in alternating order, so a
 * drifting machine favours no B): B requests of -p random prompt tokens and
 * -n generated tokens (end-of-generation ignored) go into a fresh scheduler
 * of max_batch B, which runs them to the end. Timed: the decode window, from
 * the step where every request has its first token (all prompts done) to
 * the step where the first request finishes; aggregate tok/s = the tokens
 * generated in that window / its length (host clock after each step's
 * logits are read: the device is synchronized). Reported per B: median
 * over repetitions, per-sequence tok/s, and the ratio to B = 1 of the same
 * run. One untimed warm-up at the largest B first (compiles, first touch). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sched.h"
#include "src/commands.h"
#include "src/engine_cli.h"
#include "util/clock.h"
#include "util/num.h"
#include "util/rng.h"

int kiln_cmd_bench_batch(int argc, char **argv);

#define MAX_B 64

typedef struct win {
    int n_req, with_first, finished;
    long long tokens;
    long long tok_at_start, tok_at_end;
    double t_start, t_end;
    int got_first[MAX_B];
} win;

typedef struct slot {
    win *w;
    int i;
} slot;

static void on_token(void *user, int32_t id)
{
    (void)id;
    slot *s = user;
    s->w->tokens++;
    if (!s->w->got_first[s->i]) {
        s->w->got_first[s->i] = 1;
        s->w->with_first++;
    }
}

static void on_done(void *user, const kiln_req_result *r, const kiln_err *err)
{
    (void)r;
    (void)err;
    ((slot *)user)->w->finished++;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One run of B requests; *tok_s the aggregate decode rate of its window
 * (tok_s NULL: untimed, the warm-up). */
static int run_once(kiln_session *s, int B, int n_prompt, int n_gen, kiln_rng *rng, double *tok_s, kiln_err *e)
{
    kiln_sched *q;
    kiln_sched_opts qo = {.max_batch = B, .no_prefix_share = 1};
    int rc = kiln_sched_open(&q, s, &qo, e);
    if (rc)
        return rc;
    win w = {.n_req = B};
    slot slots[MAX_B];
    int32_t *prompt = malloc(sizeof *prompt * (size_t)n_prompt);
    if (!prompt) {
        kiln_sched_close(q);
        return kiln_fail(e, KILN_E_NOMEM, "bench batch: out of memory");
    }
    kiln_gen_opts go = {.n_predict = n_gen, .ignore_eos = 1};
    kiln_sampling_default(&go.sampling);
    for (int i = 0; i < B && !rc; i++) {
        for (int t = 0; t < n_prompt; t++)
            do
                prompt[t] = (int32_t)kiln_rng_below(rng, (uint32_t)s->model.cfg.n_vocab);
            while (kiln_token_is_eog(s->model.tok, prompt[t]));
        slots[i] = (slot){&w, i};
        kiln_req_cbs cb = {.on_token = on_token, .on_done = on_done, .user = &slots[i]};
        int id = kiln_sched_submit(q, prompt, n_prompt, &go, &cb, e);
        if (id < 0)
            rc = -id;
    }
    free(prompt);
    int left = 1;
    while (!rc && left > 0) {
        left = kiln_sched_step(q, e);
        if (left < 0) {
            rc = -left;
            break;
        }
        double now = kiln_now_s();
        if (w.t_start == 0 && w.with_first == B) {
            w.t_start = now;
            w.tok_at_start = w.tokens;
        }
        if (w.t_end == 0 && w.finished > 0) {
            w.t_end = now;
            w.tok_at_end = w.tokens;
        }
    }
    kiln_sched_close(q);
    if (rc)
        return kiln_err_wrap(e, "bench batch: B = %d", B);
    if (!tok_s)
        return 0;
    if (w.t_end <= w.t_start || w.tok_at_end <= w.tok_at_start)
        return kiln_fail(e, KILN_E_INVALID, "bench batch: B = %d left no decode window (-n too small?)", B);
    *tok_s = (double)(w.tok_at_end - w.tok_at_start) / (w.t_end - w.t_start);
    return 0;
}

int kiln_cmd_bench_batch(int argc, char **argv)
{
    kiln_engine_cli c;
    kiln_engine_cli_defaults(&c);
    const char *list = "1,2,4,8,16";
    int n_prompt = 32, n_gen = 64, reps = 3;
    const kiln_opt own[] = {
        {"--batch", "-b", KILN_OPT_STR, &list, .arg = "LIST", .help = "batch sizes (default 1,2,4,8,16)"},
        {"--n-prompt", "-p", KILN_OPT_INT, &n_prompt, 1, 1 << 16, .arg = "N", .help = "prompt tokens per request "
                                                                                      "(default 32)"},
        {"--n-gen", "-n", KILN_OPT_INT, &n_gen, 4, 1 << 16, .arg = "N", .help = "generated tokens per request "
                                                                                "(default 64)"},
        {"--reps", "-r", KILN_OPT_INT, &reps, 1, 1000, .arg = "N", .help = "timed repetitions (default 3)"},
        {0},
    };
    const kiln_opt *tables[] = {own, c.opts, NULL};
    int prc = kiln_args_parse("kiln bench batch",
                              "usage: kiln bench batch -m MODEL.gguf [--device D] [-b 1,2,4,8,16] [-p 32] [-n 64] "
                              "[-r 3] [engine options]\n"
                              "aggregate decode tok/s of B sequences decoded together (continuous batching)\n"
                              "exit: 0 ok, 1 a run failed, 2 usage, 3 device or file unavailable\n",
                              tables, argc, argv, 1, NULL, 0, NULL);
    if (prc)
        return prc == KILN_ARGS_HELP ? KILN_EXIT_OK : prc;
    if (!c.model)
        return kiln_args_usage_error("kiln bench batch", "-m MODEL is required");
    kiln_err e = {0};
    int bs[16], nb, maxb = 1;
    if (kiln_num_int_list("--batch", list, 1, MAX_B, bs, 16, &nb, &e)) {
        fprintf(stderr, "kiln bench batch: %s\n", e.msg);
        return KILN_EXIT_USAGE;
    }
    for (int i = 0; i < nb; i++)
        maxb = bs[i] > maxb ? bs[i] : maxb;
    if (!c.ctx) { /* every sequence in whole pages: none waits for another's KV */
        int page = c.page_size > 0 ? c.page_size : 64;
        c.ctx = maxb * ((n_prompt + n_gen + page - 1) / page * page);
    }
    if (!c.chunk && maxb >= 64)
        c.chunk = 2 * maxb;
    kiln_session_opts so;
    kiln_session s;
    int rc = kiln_engine_cli_session_opts(&c, &so, &e);
    if (!rc && (rc = kiln_session_open(&s, &so, &e)) == 0) {
        kiln_rng rng;
        kiln_rng_seed(&rng, 4321);
        double tok[16][64];
        rc = run_once(&s, maxb, n_prompt, n_gen < 8 ? n_gen : 8, &rng, NULL, &e);
        if (!rc && s.prof)
            kiln_profile_reset(s.prof);
        for (int r = 0; r < reps && !rc; r++)
            for (int j = 0; j < nb && !rc; j++) {
                int i = r % 2 ? nb - 1 - j : j;
                rc = run_once(&s, bs[i], n_prompt, n_gen, &rng, &tok[i][r], &e);
                fprintf(stderr, "\rbench batch: rep %d/%d B=%d %.1f tok/s   ", r + 1, reps, bs[i], rc ? 0 : tok[i][r]);
            }
        fputc('\n', stderr);
        if (!rc) {
            char dev[160];
            kiln_session_device_name(&s, dev, sizeof dev);
            double base = 0, med[16];
            for (int i = 0; i < nb; i++) {
                qsort(tok[i], (size_t)reps, sizeof(double), cmp_d);
                med[i] = reps % 2 ? tok[i][reps / 2] : 0.5 * (tok[i][reps / 2 - 1] + tok[i][reps / 2]);
                if (bs[i] == 1)
                    base = med[i];
            }
            printf("kiln bench batch: %s on %s, prompt %d, gen %d, %d reps (median), chunk %d, page %d\n\n", c.model,
                   dev, n_prompt, n_gen, reps, s.en.chunk, s.en.kv.page_size);
            printf("| B | aggregate decode tok/s | per sequence tok/s | vs B=1 | min..max tok/s |\n"
                   "|---:|---:|---:|---:|---:|\n");
            for (int i = 0; i < nb; i++) {
                printf("| %d | %.1f | %.1f | ", bs[i], med[i], med[i] / bs[i]);
                if (base > 0)
                    printf("%.2fx", med[i] / base);
                else
                    printf("-");
                printf(" | %.1f..%.1f |\n", tok[i][0], tok[i][reps - 1]);
            }
        }
        if (!rc && c.profile) {
            fprintf(stderr, "\nbench batch: every run after the warm-up:");
            kiln_session_print_profile(&s, stderr);
        }
        kiln_session_close(&s);
    }
    if (rc) {
        fprintf(stderr, "kiln bench batch: %s\n", e.msg);
        return kiln_exit_code(e.code);
    }
    return KILN_EXIT_OK;
}
