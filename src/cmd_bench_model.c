/* src/cmd_bench_model.c - `kiln bench model`: llama-bench-style pp/tg rows.
 *
 * For every device x model: one untimed warm-up generation, then -r
 * repetitions of a prefill of -p random prompt tokens followed by -n decode
 * steps (end-of-generation ignored, so every repetition decodes exactly -n).
 * Per repetition: pp tok/s (prompt tokens / prefill time), tg tok/s (decode
 * steps / decode time), time to first token; per decode step its latency.
 * Reported: median, mean and relative spread (MAD/median) over repetitions,
 * latency percentiles p50/p90/p99 over all decode steps. Stored as one
 * bench run per device (kind "model") so `kiln bench compare` can gate on it.
 * --profile: after each device x model, where the time of the timed
 * repetitions went, op by op (engine/profile.h).
 *
 * The decode roof: a decode step reads every weight matrix once (the
 * embedding only one row, unless it doubles as the LM head), so
 * weights_mb_per_token / read bandwidth bounds tg tok/s from above on a
 * memory-bound device. Rows weights_mb_per_token, read_gbps (measured after
 * the repetitions, device-timed) and tg_pct_of_bound say how close decode
 * comes to it (the KV cache reads and activations are left out of the
 * bound, so it is slightly optimistic). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_format.h"
#include "util/git_commit.h"
#include "bench/bench_store.h"
#include "src/commands.h"
#include "src/engine_cli.h"
#include "util/rng.h"

int kiln_cmd_bench_model(int argc, char **argv);

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* median and MAD/median of v[0..n) (sorts v) */
static void stats(double *v, int n, double *median, double *mean, double *spread)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    *median = n ? (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2])) : 0;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = n ? s / n : 0;
    double dev[n > 0 ? n : 1];
    for (int i = 0; i < n; i++)
        dev[i] = fabs(v[i] - *median);
    qsort(dev, (size_t)n, sizeof *dev, cmp_d);
    double mad = n ? (n % 2 ? dev[n / 2] : 0.5 * (dev[n / 2 - 1] + dev[n / 2])) : 0;
    *spread = *median > 0 ? mad / *median : 0;
}

static double pct(const double *sorted, int n, double p)
{
    if (!n)
        return 0;
    int i = (int)ceil(p * n) - 1;
    return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static int add(kiln_bench_writer *w, kiln_bench_set *out, const char *dev, const char *subject, const char *metric,
               const char *unit, int hib, double value, double mean, double spread, int n, kiln_err *e)
{
    kiln_bench_result r = {.higher_is_better = hib, .value = value, .mean = mean, .spread = spread, .n = n,
                           .run_id = w ? w->run_id : 0};
    snprintf(r.git_commit, sizeof r.git_commit, "%s", kiln_git_commit);
    snprintf(r.device, sizeof r.device, "%s", dev);
    snprintf(r.subject, sizeof r.subject, "%s", subject);
    snprintf(r.metric, sizeof r.metric, "%s", metric);
    snprintf(r.unit, sizeof r.unit, "%s", unit);
    kiln_bench_set_add(out, &r);
    return w ? kiln_bench_add(w, &r, e) : 0;
}

/* What one device x model benchmark measured, per repetition. */
typedef struct bench_reps {
    int reps, n_prompt, n_gen;
    double *pp, *tg, *ttft;    /* [reps] tok/s, tok/s, ms */
    double *lat;               /* every decode step's latency (ms) */
    int n_lat;
    double weight_bytes_per_token; /* the decode roof (see the top of the file) */
    double read_gbps;              /* 0: not measured */
} bench_reps;

static void reps_free(bench_reps *b)
{
    free(b->pp);
    free(b->tg);
    free(b->ttft);
    free(b->lat);
}

/* One untimed warm-up generation (compiles, first touch; the profile is
 * reset after it), then the repetitions: a prefill of the prompt and
 * n_gen decode steps each, end-of-generation ignored. */
static int run_reps(kiln_session *s, const int32_t *prompt, const char *model, const char *dev, bench_reps *b,
                    kiln_err *e)
{
    int n_prompt = b->n_prompt, n_gen = b->n_gen, reps = b->reps, rc = 0;
    b->pp = calloc((size_t)reps, sizeof *b->pp);
    b->tg = calloc((size_t)reps, sizeof *b->tg);
    b->ttft = calloc((size_t)reps, sizeof *b->ttft);
    b->lat = calloc((size_t)reps * (size_t)n_gen + 1, sizeof *b->lat);
    if (!b->pp || !b->tg || !b->ttft || !b->lat)
        return kiln_fail(e, KILN_E_NOMEM, "bench model: out of memory");
    kiln_gen_opts go = {.n_predict = n_gen, .ignore_eos = 1};
    kiln_sampling_default(&go.sampling);
    for (int r = -1; r < reps && !rc; r++) { /* r = -1: the warm-up */
        kiln_kv_seq seq;
        if ((rc = kiln_kv_seq_init(&seq, &s->en.kv, n_prompt + n_gen + 1, e)))
            break;
        kiln_gen_stats st;
        kiln_gen_opts g = go;
        if (r < 0)
            g.n_predict = n_gen < 4 ? n_gen : 4;
        rc = kiln_session_generate(s, &seq, prompt, r < 0 ? (n_prompt < 16 ? n_prompt : 16) : n_prompt, &g, &st, NULL,
                                   0, e);
        if (!rc && r < 0 && s->prof)
            kiln_profile_reset(s->prof);
        if (!rc && r >= 0) {
            kiln_timings t;
            kiln_session_timings(s, &st, &t);
            b->pp[r] = t.prefill_tok_s;
            b->tg[r] = t.decode_tok_s;
            b->ttft[r] = t.ttft_ms;
            for (int i = 0; i < st.n_decode; i++)
                b->lat[b->n_lat++] = st.token_s[i] * 1e3;
            if (isatty(2))
                fprintf(stderr, "\rbench model %s on %s: rep %d/%d pp %.1f tg %.1f tok/s   ", model, dev, r + 1, reps,
                        b->pp[r], b->tg[r]);
        }
        kiln_gen_stats_free(&st);
        kiln_kv_seq_free(&seq);
    }
    if (isatty(2))
        fputc('\n', stderr);
    return rc;
}

/* The rows of one benchmark: pp and tg tok/s and TTFT (median, mean,
 * spread over the repetitions), decode latency percentiles; into out and,
 * with a database, one bench run. */
static int store_results(const kiln_session *s, bench_reps *b, const char *model, const char *dev, kiln_db *db,
                         const char *batch, kiln_bench_set *out, kiln_err *e)
{
    kiln_bench_writer w, *wp = NULL;
    const char *base = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
    char subject[256], pps[64], tgs[64];
    snprintf(subject, sizeof subject, "%s", base);
    snprintf(pps, sizeof pps, "pp%d_tok_s", b->n_prompt);
    snprintf(tgs, sizeof tgs, "tg%d_tok_s", b->n_gen);
    int rc;
    if (db) {
        if ((rc = kiln_bench_begin(&w, db, &s->dev->fp, "model", subject, batch, e)))
            return rc;
        wp = &w;
        char note[256];
        int tuned, deflt;
        kiln_session_configs(s, &tuned, &deflt);
        snprintf(note, sizeof note, "prompt %d, gen %d, reps %d, chunk %d, page %d; kernel classes: %d tuned, %d default",
                 b->n_prompt, b->n_gen, b->reps, s->en.chunk, s->en.kv.page_size, tuned, deflt);
        kiln_bench_note(wp, note, e);
    }
    double med, mean, spread;
    int reps = b->reps;
    stats(b->pp, reps, &med, &mean, &spread);
    rc = add(wp, out, dev, subject, pps, "tok/s", KILN_BENCH_HIGHER, med, mean, spread, reps, e);
    stats(b->tg, reps, &med, &mean, &spread);
    if (!rc)
        rc = add(wp, out, dev, subject, tgs, "tok/s", KILN_BENCH_HIGHER, med, mean, spread, reps, e);
    stats(b->ttft, reps, &med, &mean, &spread);
    if (!rc)
        rc = add(wp, out, dev, subject, "ttft_ms", "ms", KILN_BENCH_LOWER, med, mean, spread, reps, e);
    if (!rc && b->read_gbps > 0) {
        double tg_med, tg_mean, tg_spread;
        stats(b->tg, reps, &tg_med, &tg_mean, &tg_spread);
        double bound = b->read_gbps * 1e9 / b->weight_bytes_per_token;
        rc = add(wp, out, dev, subject, "weights_mb_per_token", "MB", KILN_BENCH_INFO,
                 b->weight_bytes_per_token / 1e6, 0, 0, 1, e);
        if (!rc)
            rc = add(wp, out, dev, subject, "read_gbps", "GB/s", KILN_BENCH_INFO, b->read_gbps, 0, 0, 1, e);
        if (!rc)
            rc = add(wp, out, dev, subject, "tg_pct_of_bound", "%", KILN_BENCH_INFO, 100.0 * tg_med / bound, 0,
                     tg_spread, reps, e);
    }
    qsort(b->lat, (size_t)b->n_lat, sizeof *b->lat, cmp_d);
    const char *names[] = {"latency_p50_ms", "latency_p90_ms", "latency_p99_ms"};
    const double ps[] = {0.5, 0.9, 0.99};
    for (int i = 0; i < 3 && !rc; i++)
        rc = add(wp, out, dev, subject, names[i], "ms", i == 0 ? KILN_BENCH_LOWER : KILN_BENCH_INFO,
                 pct(b->lat, b->n_lat, ps[i]), 0, 0, b->n_lat, e);
    if (wp)
        rc = kiln_bench_end(wp, !rc, e) || rc;
    return rc;
}

/* The bytes a decode step must read and the device's read bandwidth. A
 * failed bandwidth probe only leaves the roof rows out (it says why). */
static void decode_roof(kiln_session *s, bench_reps *b)
{
    const kiln_model *m = &s->model;
    b->weight_bytes_per_token = (double)m->weight_bytes;
    if (m->output_owned && m->embd.rows > 0) /* a gather reads one embedding row, not the table */
        b->weight_bytes_per_token -= (double)m->embd.bytes * (1.0 - 1.0 / (double)m->embd.rows);
    kiln_err e = {0};
    double gbps = s->dev->fp.read_gbps;
    if (gbps <= 0 && kiln_measure_read_bandwidth(s->dev, &gbps, NULL, 0, &e)) {
        fprintf(stderr, "bench model: read bandwidth of %s not measured (%s): no decode roof\n", s->dev->fp.name,
                e.msg);
        gbps = 0;
    }
    b->read_gbps = gbps;
}

/* One device x model: a session (configs from db when given), random
 * prompt ids (never an end-of-generation token), the repetitions, the rows;
 * with --profile the op table of the timed repetitions on stderr. */
static int bench_one(const kiln_engine_cli *c, const char *device, const char *model, int n_prompt, int n_gen,
                     int reps, kiln_db *db, const char *batch, kiln_bench_set *out, kiln_err *e)
{
    kiln_engine_cli cc = *c;
    cc.device = device;
    cc.model = model;
    if (!cc.ctx)
        cc.ctx = n_prompt + n_gen + 16;
    kiln_session_opts so;
    kiln_session s;
    int rc = kiln_engine_cli_session_opts(&cc, &so, e);
    if (rc)
        return rc;
    so.db = db;
    if ((rc = kiln_session_open(&s, &so, e)))
        return rc;
    bench_reps b = {.reps = reps, .n_prompt = n_prompt, .n_gen = n_gen};
    int32_t *prompt = malloc(sizeof *prompt * (size_t)n_prompt);
    if (!prompt) {
        rc = kiln_fail(e, KILN_E_NOMEM, "bench model: out of memory");
        goto out;
    }
    kiln_rng rng;
    kiln_rng_seed(&rng, 1234);
    for (int i = 0; i < n_prompt; i++) {
        do
            prompt[i] = (int32_t)kiln_rng_below(&rng, (uint32_t)s.model.cfg.n_vocab);
        while (kiln_token_is_eog(s.model.tok, prompt[i]));
    }
    char dev[192];
    snprintf(dev, sizeof dev, "%s:%d %s", kiln_backend_name(s.dev->backend), s.dev->index, s.dev->fp.name);
    if ((rc = run_reps(&s, prompt, model, dev, &b, e)) == 0) {
        decode_roof(&s, &b);
        rc = store_results(&s, &b, model, dev, db, batch, out, e);
    }
    if (!rc && c->profile) {
        fprintf(stderr, "\nbench model %s, %d repetitions (pp%d + tg%d each):", model, reps, n_prompt, n_gen);
        kiln_session_print_profile(&s, stderr);
    }
out:
    free(prompt);
    reps_free(&b);
    kiln_session_close(&s);
    return rc;
}

static int parse_fmt(void *dst, const char *opt, const char *v, kiln_err *e)
{
    return kiln_bench_fmt_parse(v, (int *)dst) ? kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not table, md, csv or json",
                                                           opt, v)
                                               : 0;
}

int kiln_cmd_bench_model(int argc, char **argv)
{
    kiln_engine_cli c;
    kiln_engine_cli_defaults(&c);
    const char *models[8], *devices[8];
    int n_models = 0, n_devices = 0, n_prompt = 512, n_gen = 128, reps = 5, fmt = KILN_FMT_TABLE, store = 1;
    int no_store = 0;
    const kiln_opt own[] = {
        {"--model", "-m", KILN_OPT_LIST, (void *)models, .count = &n_models, .max = 8, .arg = "FILE",
         .help = "GGUF model (repeatable, at most 8)"},
        {"--device", NULL, KILN_OPT_LIST, (void *)devices, .count = &n_devices, .max = 8, .arg = "D",
         .help = "device (repeatable, at most 8; default cpu)"},
        {"--n-prompt", "-p", KILN_OPT_INT, &n_prompt, 1, 1 << 20, .arg = "N", .help = "prompt tokens (default 512)"},
        {"--n-gen", "-n", KILN_OPT_INT, &n_gen, 2, 1 << 20, .arg = "N", .help = "generated tokens (default 128)"},
        {"--reps", "-r", KILN_OPT_INT, &reps, 1, 10000, .arg = "N", .help = "timed repetitions (default 5)"},
        {"--format", NULL, KILN_OPT_FN, &fmt, .fn = parse_fmt, .arg = "F", .help = "table | md | csv | json"},
        {"--no-store", NULL, KILN_OPT_FLAG, &no_store, .help = "do not record the run in the database"},
        {0},
    };
    const kiln_opt *tables[] = {own, c.opts, NULL};
    int prc = kiln_args_parse("kiln bench model",
                              "usage: kiln bench model -m MODEL.gguf [-m ...] [--device D ...] [-p 512] [-n 128] [-r 5]\n"
                              "       [--format table|md|csv|json] [--db PATH] [--no-store] [--profile] [engine options]\n"
                              "exit: 0 ok, 1 a run failed, 2 usage, 3 device or file unavailable\n",
                              tables, argc, argv, 1, NULL, 0, NULL);
    if (prc)
        return prc == KILN_ARGS_HELP ? KILN_EXIT_OK : prc;
    store = !no_store;
    if (!n_models)
        return kiln_args_usage_error("kiln bench model", "-m MODEL is required");
    if (!n_devices)
        devices[n_devices++] = c.device;
    kiln_err e = {0};
    kiln_db *db = NULL;
    char path[1024];
    const char *dbp = c.db_path ? c.db_path : getenv("KILN_DB");
    if (!dbp && kiln_db_default_path(path, sizeof path) == 0)
        dbp = path;
    if (store && dbp && kiln_db_open(&db, dbp, &e)) {
        fprintf(stderr, "kiln bench model: database %s: %s\n", dbp, e.msg);
        return kiln_exit_code(e.code);
    }
    /* with a database the engine reads its configs from the file results go to (bench_one) */
    char batch[32];
    kiln_bench_batch_tag(batch);
    kiln_bench_set out = {0};
    int failed = 0, code = 0;
    for (int d = 0; d < n_devices; d++)
        for (int m = 0; m < n_models; m++) {
            kiln_err be = {0};
            if (bench_one(&c, devices[d], models[m], n_prompt, n_gen, reps, db, batch, &out, &be)) {
                fprintf(stderr, "kiln bench model: %s on %s: %s\n", models[m], devices[d], be.msg);
                failed++;
                code = kiln_exit_code(be.code);
            }
        }
    kiln_bench_print(stdout, &out, fmt);
    kiln_bench_set_free(&out);
    if (db)
        kiln_db_close(db);
    return failed ? code : KILN_EXIT_OK;
}
