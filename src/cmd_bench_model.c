/* src/cmd_bench_model.c - `kiln bench model`: llama-bench-style pp/tg rows.
 *
 * For every device x model: one untimed warm-up generation, then -r
 * repetitions of a prefill of -p random prompt tokens followed by -n decode
 * steps (end-of-generation ignored, so every repetition decodes exactly -n).
 * Per repetition: pp tok/s (prompt tokens / prefill time), tg tok/s (decode
 * steps / decode time), time to first token; per decode step its latency.
 * Reported: median, mean and relative spread (MAD/median) over repetitions,
 * latency percentiles p50/p90/p99 over all decode steps. Stored as one
 * bench run per device (kind "model") so `kiln bench compare` can gate on it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_format.h"
#include "kiln_config.h"
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

static int bench_one(const kiln_engine_cli *c, const char *device, const char *model, int n_prompt, int n_gen,
                     int reps, kiln_db *db, const char *batch, kiln_bench_set *out, kiln_err *e)
{
    kiln_engine_cli cc = *c;
    cc.device = device;
    cc.model = model;
    if (!cc.ctx)
        cc.ctx = n_prompt + n_gen + 16;
    kiln_engine_session s;
    int rc = kiln_engine_session_open(&s, &cc, e);
    if (rc)
        return rc;
    int V = s.model.cfg.n_vocab;
    int32_t *prompt = malloc(sizeof *prompt * (size_t)n_prompt);
    double *pp = calloc((size_t)reps, sizeof *pp), *tg = calloc((size_t)reps, sizeof *tg),
           *ttft = calloc((size_t)reps, sizeof *ttft), *lat = calloc((size_t)reps * (size_t)n_gen + 1, sizeof *lat);
    int n_lat = 0;
    if (!prompt || !pp || !tg || !ttft || !lat) {
        rc = kiln_fail(e, KILN_E_NOMEM, "bench model: out of memory");
        goto out;
    }
    kiln_rng rng;
    kiln_rng_seed(&rng, 1234);
    for (int i = 0; i < n_prompt; i++) { /* random ids, never an end-of-generation token */
        do
            prompt[i] = (int32_t)kiln_rng_below(&rng, (uint32_t)V);
        while (kiln_token_is_eog(s.model.tok, prompt[i]));
    }
    kiln_gen_opts go = {.n_predict = n_gen, .ignore_eos = 1};
    kiln_sampling_default(&go.sampling);
    char dev[192];
    snprintf(dev, sizeof dev, "%s:%d %s", kiln_backend_name(s.dev->backend), s.dev->index, s.dev->fp.name);
    for (int r = -1; r < reps && !rc; r++) { /* r = -1: warm-up (compiles, first-touch), not counted */
        kiln_kv_seq seq;
        if ((rc = kiln_kv_seq_init(&seq, &s.en.kv, n_prompt + n_gen + 1, e)))
            break;
        kiln_gen_stats st;
        kiln_gen_opts g = go;
        if (r < 0)
            g.n_predict = n_gen < 4 ? n_gen : 4;
        rc = kiln_generate(&s.en, &seq, prompt, r < 0 ? (n_prompt < 16 ? n_prompt : 16) : n_prompt, &g, &st, NULL, 0, e);
        if (!rc && r >= 0) {
            pp[r] = st.prefill_s > 0 ? n_prompt / st.prefill_s : 0;
            tg[r] = st.decode_s > 0 ? st.n_decode / st.decode_s : 0;
            ttft[r] = st.ttft_s * 1e3;
            for (int i = 0; i < st.n_decode; i++)
                lat[n_lat++] = st.token_s[i] * 1e3;
            if (isatty(2))
                fprintf(stderr, "\rbench model %s on %s: rep %d/%d pp %.1f tg %.1f tok/s   ", model, dev, r + 1, reps,
                        pp[r], tg[r]);
        }
        kiln_gen_stats_free(&st);
        kiln_kv_seq_free(&seq);
    }
    if (isatty(2))
        fputc('\n', stderr);
    if (rc)
        goto out;
    kiln_bench_writer w, *wp = NULL;
    const char *base = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
    char subject[256], pps[64], tgs[64];
    snprintf(subject, sizeof subject, "%s", base);
    snprintf(pps, sizeof pps, "pp%d_tok_s", n_prompt);
    snprintf(tgs, sizeof tgs, "tg%d_tok_s", n_gen);
    if (db) {
        if ((rc = kiln_bench_begin(&w, db, &s.dev->fp, "model", subject, batch, e)))
            goto out;
        wp = &w;
        char note[256];
        int counts[KILN_MATCH_DEFAULT + 1];
        kiln_ops_match_counts(s.en.ops, counts);
        snprintf(note, sizeof note, "prompt %d, gen %d, reps %d, chunk %d, page %d; kernel classes: %d tuned, %d default",
                 n_prompt, n_gen, reps, s.en.chunk, s.en.kv.page_size, counts[0] + counts[1] + counts[2] + counts[3],
                 counts[KILN_MATCH_DEFAULT]);
        kiln_bench_note(wp, note, e);
    }
    double med, mean, spread;
    stats(pp, reps, &med, &mean, &spread);
    rc = add(wp, out, dev, subject, pps, "tok/s", KILN_BENCH_HIGHER, med, mean, spread, reps, e);
    stats(tg, reps, &med, &mean, &spread);
    if (!rc)
        rc = add(wp, out, dev, subject, tgs, "tok/s", KILN_BENCH_HIGHER, med, mean, spread, reps, e);
    stats(ttft, reps, &med, &mean, &spread);
    if (!rc)
        rc = add(wp, out, dev, subject, "ttft_ms", "ms", KILN_BENCH_LOWER, med, mean, spread, reps, e);
    qsort(lat, (size_t)n_lat, sizeof *lat, cmp_d);
    const char *names[] = {"latency_p50_ms", "latency_p90_ms", "latency_p99_ms"};
    const double ps[] = {0.5, 0.9, 0.99};
    for (int i = 0; i < 3 && !rc; i++)
        rc = add(wp, out, dev, subject, names[i], "ms", i == 0 ? KILN_BENCH_LOWER : KILN_BENCH_INFO, pct(lat, n_lat, ps[i]),
                 0, 0, n_lat, e);
    if (wp)
        rc = kiln_bench_end(wp, !rc, e) || rc;
out:
    free(prompt);
    free(pp);
    free(tg);
    free(ttft);
    free(lat);
    kiln_engine_session_close(&s);
    return rc;
}

int kiln_cmd_bench_model(int argc, char **argv)
{
    kiln_engine_cli c;
    kiln_engine_cli_defaults(&c);
    const char *models[8], *devices[8];
    int n_models = 0, n_devices = 0, n_prompt = 512, n_gen = 128, reps = 5, fmt = KILN_FMT_TABLE, store = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && v && n_models < 8)
            models[n_models++] = argv[++i];
        else if (!strcmp(a, "--device") && v && n_devices < 8)
            devices[n_devices++] = argv[++i];
        else if (!strcmp(a, "-p") && v)
            n_prompt = atoi(argv[++i]);
        else if (!strcmp(a, "-n") && v)
            n_gen = atoi(argv[++i]);
        else if (!strcmp(a, "-r") && v)
            reps = atoi(argv[++i]);
        else if (!strcmp(a, "--format") && v) {
            if (kiln_bench_fmt_parse(argv[++i], &fmt)) {
                fprintf(stderr, "kiln bench model: --format table|md|csv|json\n");
                return KILN_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--no-store"))
            store = 0;
        else {
            int r = kiln_engine_cli_arg(&c, argc, argv, &i);
            if (r <= 0) {
                if (!r)
                    fprintf(stderr, "kiln bench model: unknown option '%s'\n"
                                    "usage: kiln bench model -m MODEL.gguf [-m ...] [--device D ...] [-p 512] [-n 128] "
                                    "[-r 5] [--format table|md|csv|json] [--db PATH] [--no-store]\n", a);
                return KILN_EXIT_USAGE;
            }
        }
    }
    if (!n_models || n_prompt < 1 || n_gen < 2 || reps < 1) {
        fprintf(stderr, "kiln bench model: need -m MODEL, -p >= 1, -n >= 2, -r >= 1\n");
        return KILN_EXIT_USAGE;
    }
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
    if (db) /* the engine reads the tuned configs from the file results go to */
        c.db_path = dbp;
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
