/* src/cmd_tune.c - `tune` / `kiln tune`: search schedule variants of the
 * decode kernels on one device, verify and time them, store every trial and
 * the winners in the tuning database.
 *
 *   tune --device vulkan [--kernel K ...] [--shape SPEC ... | --model M.gguf]
 *        [--strategy exhaustive|random|anneal|evolve|model] [--budget N | 5m]
 *        [--patience N] [--sustained SEC] [--db PATH] [--resume SESSION] [--json] [-v] */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/args.h"
#include "src/commands.h"
#include "util/num.h"
#include "src/tune_store.h"
#include "engine/kv_cache.h"
#include "engine/ops.h"
#include "engine/tune_shapes.h"
#include "tuner/tune.h"
#include "util/clock.h"

#define MAX_JOBS 256

typedef struct job {
    const kiln_kernel *k;
    kiln_shape s;
    kiln_shape layout_src; /* --model gemm: the gemv shape whose winner lays its matrix out (m 0: none) */
} job;

typedef struct tune_cli {
    const char *device, *db_path, *model;
    const char *kernels[32];
    int n_kernels;
    const char *shapes[32];
    int n_shapes;
    const char *configs[32]; /* --config JSON */
    int n_configs;
    int strategy, budget_trials, json, verbose, in_process;
    int act;                 /* --precision: kiln_act of --model's gemv shapes */
    int batch;               /* --batch: also --model's continuous-batching shapes up to B sequences (1: none) */
    int kv_type;             /* --kv-type: the KV cache --model's attention shapes read (kiln_kv_type; -1:
                              * kiln run's default for the precision: f16 fast, f32 strict) */
    double budget_seconds;
    long long resume;
    kiln_tune_opts opts;
} tune_cli;

/* --budget: N trials per kernel x shape (1..1000000), or a duration with a
 * unit s, m or h (up to a week), shared by the session's jobs. */
static int parse_budget(void *dst, const char *opt, const char *v, kiln_err *e)
{
    tune_cli *c = dst;
    size_t n = strlen(v);
    double mult = n && v[n - 1] == 's' ? 1 : n && v[n - 1] == 'm' ? 60 : n && v[n - 1] == 'h' ? 3600 : 0;
    if (!mult) {
        long long t;
        if (kiln_num_int(opt, v, 1, 1000000, &t, e))
            return kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not a trial count in [1, 1000000] nor a duration like "
                             "90s, 5m, 1h", opt, v);
        c->budget_trials = (int)t;
        return 0;
    }
    char num[64];
    snprintf(num, sizeof num, "%.*s", (int)(n - 1), v);
    double d;
    if (n - 1 >= sizeof num || kiln_num_double(opt, num, 1e-3, 7 * 86400.0 / mult, &d, e))
        return kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not a duration in (0, 1 week] like 90s, 5m, 1h", opt, v);
    c->budget_seconds = d * mult;
    return 0;
}

static int parse_strategy(void *dst, const char *opt, const char *v, kiln_err *e)
{
    if (kiln_search_parse(v, (int *)dst))
        return kiln_fail(e, KILN_E_INVALID, "%s: unknown strategy '%s' (exhaustive|random|anneal|evolve|model)", opt, v);
    return 0;
}

static int parse_precision(void *dst, const char *opt, const char *v, kiln_err *e)
{
    if (!strcmp(v, "fast"))
        *(int *)dst = KILN_ACT_Q8;
    else if (!strcmp(v, "strict"))
        *(int *)dst = KILN_ACT_F32;
    else
        return kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not fast or strict", opt, v);
    return 0;
}

static int parse_kv_type(void *dst, const char *opt, const char *v, kiln_err *e)
{
    if (kiln_kv_type_parse(v, dst))
        return kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not f32 or f16", opt, v);
    return 0;
}

static int parse_plant(void *dst, const char *opt, const char *s, kiln_err *e)
{
    /* tests only: "crash:N,hang:M" plants failing variants at those trials */
    kiln_tune_opts *o = dst;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long long n;
        int crash = !strncmp(t, "crash:", 6), hang = !strncmp(t, "hang:", 5);
        if ((!crash && !hang) || kiln_num_int(opt, t + (crash ? 6 : 5), 0, 1 << 30, &n, e))
            return kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not crash:N,hang:M", opt, s);
        if (crash)
            o->plant_crash_at = (int)n;
        else
            o->plant_hang_at = (int)n;
    }
    return 0;
}

static int parse(int argc, char **argv, tune_cli *c)
{
    memset(c, 0, sizeof *c);
    c->act = KILN_ACT_Q8; /* the engine's default precision (fast) */
    c->kv_type = -1;
    kiln_tune_defaults(&c->opts);
    const kiln_opt opts[] = {
        {"--device", NULL, KILN_OPT_STR, &c->device, .arg = "SPEC",
         .help = "backend (cpu|opencl|vulkan|cuda), backend:index, or part of a device name"},
        {"--kernel", NULL, KILN_OPT_LIST, (void *)c->kernels, .count = &c->n_kernels, .max = 32, .arg = "NAME",
         .help = "tune only this kernel (repeatable; default: the decode kernel set)"},
        {"--shape", NULL, KILN_OPT_LIST, (void *)c->shapes, .count = &c->n_shapes, .max = 32, .arg = "SPEC",
         .help = "m=4096,k=4096,quant=q4f16_1,group=32 (repeatable; default: Llama decode shapes);\n"
                 "fields the kernel does not use are refused"},
        {"--model", NULL, KILN_OPT_STR, &c->model, .arg = "FILE.gguf", .help = "tune exactly the shapes this model needs"},
        {"--batch", NULL, KILN_OPT_INT, &c->batch, 1, 64, .arg = "B",
         .help = "with --model: also the shapes of decoding up to B sequences at once (serve --parallel B)"},
        {"--precision", NULL, KILN_OPT_FN, &c->act, .fn = parse_precision, .arg = "P",
         .help = "fast (default) or strict: the precision kiln run will use; with --model, fast\n"
                 "tunes the gemv shapes that allow int8 activations (act=q8), strict the f32 ones"},
        {"--kv-type", NULL, KILN_OPT_FN, &c->kv_type, .fn = parse_kv_type, .arg = "T",
         .help = "f16 or f32: the KV cache kiln run --kv-type will use (default: run's, f16 with\n"
                 "--precision fast, f32 with strict); with --model, f16 tunes the f16 variants of\n"
                 "kv_append and attention (their own entries)"},
        {"--strategy", NULL, KILN_OPT_FN, &c->opts.strategy, .fn = parse_strategy, .arg = "S",
         .help = "exhaustive|random|anneal|evolve|model (default model)"},
        {"--budget", NULL, KILN_OPT_FN, c, .fn = parse_budget, .arg = "N|DUR",
         .help = "N trials per kernel x shape (1..1000000), or a duration for the session (90s, 5m, 1h)"},
        {"--config", NULL, KILN_OPT_LIST, (void *)c->configs, .count = &c->n_configs, .max = 32, .arg = "JSON",
         .help = "measure this config right after the default (repeatable; one --kernel),\n"
                 "e.g. '{\"layout\":1,\"wg\":32}'; missing keys take the defaults"},
        {"--patience", NULL, KILN_OPT_INT, &c->opts.patience, 0, 1000000, .arg = "N",
         .help = "stop a kernel x shape after N trials without a 1% improvement (default 24; 0: never)"},
        {"--sustained", NULL, KILN_OPT_DOUBLE, &c->opts.sustained_s, 0, 3600, .arg = "SEC",
         .help = "then run each finalist back to back for SEC seconds (thermal), report the drift\n"
                 "first-vs-last and choose the winner on the sustained time"},
        {"--seed", NULL, KILN_OPT_U64, &c->opts.seed, .arg = "S", .help = "search and input seed"},
        {"--db", NULL, KILN_OPT_STR, &c->db_path, .arg = "PATH",
         .help = "tuning database (default $KILN_DB or ~/.local/share/kiln/kiln.db)"},
        {"--resume", NULL, KILN_OPT_LLONG, &c->resume, 1, 9.2e18, .arg = "ID",
         .help = "continue session ID: configs it measured are not run again"},
        {"--json", NULL, KILN_OPT_FLAG, &c->json, .help = "one JSON object per kernel x shape on stdout"},
        {"--verbose", "-v", KILN_OPT_FLAG, &c->verbose, .help = "one line per trial"},
        {"--in-process", NULL, KILN_OPT_FLAG, &c->opts.in_process,
         .help = "no worker process (debugging: a crashing variant ends the session)"},
        {"--plant", NULL, KILN_OPT_FN, &c->opts, .fn = parse_plant, .arg = "crash:N,hang:M",
         .help = "(tests) plant a crashing / hanging variant at those trials"},
        {"--timeout-floor", NULL, KILN_OPT_DOUBLE, &c->opts.timeout_floor_s, 0, 3600, .arg = "SEC",
         .help = "(tests) a trial may take at least this long before it times out"},
        {0},
    };
    const kiln_opt *tables[] = {opts, NULL};
    int rc = kiln_args_parse("tune",
                             "usage: tune --device SPEC [options]     (also: kiln tune ...)\n"
                             "exit: 0 done, 1 a kernel could not be tuned, 2 usage, 3 device unavailable\n",
                             tables, argc, argv, 1, NULL, 0, NULL);
    if (rc)
        return rc;
    if (c->n_configs && c->n_kernels != 1)
        return kiln_args_usage_error("tune", "--config needs exactly one --kernel (configs are per kernel)");
    if (!c->device)
        return kiln_args_usage_error("tune", "--device is required");
    if (c->batch > 1 && !c->model)
        return kiln_args_usage_error("tune", "--batch needs --model (it adds that model's batch shapes)");
    return 0;
}

/* The decode kernel set: what a Llama decode step runs. */
static const char *const default_kernels[] = {"gemv_int4", "attention_paged", "rmsnorm", "rope", "dequant"};

static int add_job(job *jobs, int *n, const kiln_kernel *k, const kiln_shape *s, const kiln_shape *layout_src)
{
    kiln_shape none = {0};
    if (!layout_src)
        layout_src = &none;
    for (int i = 0; i < *n; i++)
        if (jobs[i].k == k && !memcmp(&jobs[i].s, s, sizeof *s) &&
            !memcmp(&jobs[i].layout_src, layout_src, sizeof *layout_src))
            return 0;
    if (*n >= MAX_JOBS)
        return -1;
    jobs[*n].k = k;
    jobs[*n].layout_src = *layout_src;
    jobs[(*n)++].s = *s;
    return 0;
}

static int collect_jobs(const tune_cli *c, job *jobs, int *n_jobs, kiln_err *e)
{
    const char *names[32];
    int n_names = 0;
    if (c->n_kernels) {
        for (int i = 0; i < c->n_kernels; i++)
            names[n_names++] = c->kernels[i];
    }
    static kiln_shape model_shapes[MAX_JOBS], model_layout[MAX_JOBS];
    const char *model_kernels[MAX_JOBS];
    int n_model = 0;
    if (c->model) {
        int rc = kiln_model_tune_shapes_batch(c->model, c->act, c->batch, model_kernels, model_shapes,
                                              model_layout, MAX_JOBS, &n_model, e);
        if (rc)
            return rc;
        /* the engine's attention ops carry quant KILN_F16 for an f16 cache (engine/forward.c) */
        int kv_type = c->kv_type >= 0 ? c->kv_type : c->act == KILN_ACT_F32 ? KILN_KV_F32 : KILN_KV_F16;
        for (int j = 0; j < n_model && kv_type == KILN_KV_F16; j++)
            if (!strcmp(model_kernels[j], "kv_append") || !strcmp(model_kernels[j], "kv_append_batch") ||
                !strcmp(model_kernels[j], "attention_paged") || !strcmp(model_kernels[j], "attention_paged_batch"))
                model_shapes[j].quant = KILN_F16;
    }
    if (!c->n_kernels && c->model) {
        /* every kernel the model's forward pass runs, in first-use order */
        for (int j = 0; j < n_model && n_names < 32; j++) {
            int seen = 0;
            for (int i = 0; i < n_names && !seen; i++)
                seen = !strcmp(names[i], model_kernels[j]);
            if (!seen)
                names[n_names++] = model_kernels[j];
        }
    } else if (!c->n_kernels) {
        for (size_t i = 0; i < sizeof default_kernels / sizeof *default_kernels; i++)
            names[n_names++] = default_kernels[i];
    }
    for (int i = 0; i < n_names; i++) {
        const kiln_kernel *k = kiln_kernel_find(names[i]);
        if (!k)
            return kiln_fail(e, KILN_E_INVALID, "unknown kernel '%s' (kiln check --list)", names[i]);
        if (!k->shapes)
            return kiln_fail(e, KILN_E_INVALID, "kernel '%s' is not implemented", names[i]);
        if (c->n_shapes) {
            for (int j = 0; j < c->n_shapes; j++) {
                kiln_shape s;
                /* start from the kernel's first tune shape so unspecified fields are sensible */
                if (k->shapes(KILN_SHAPES_TUNE, &s, 1) < 1)
                    memset(&s, 0, sizeof s);
                if (kiln_shape_parse_for(k, c->shapes[j], &s, e))
                    return KILN_E_INVALID;
                add_job(jobs, n_jobs, k, &s, NULL);
            }
        } else if (c->model) {
            for (int j = 0; j < n_model; j++)
                if (!strcmp(model_kernels[j], k->name))
                    add_job(jobs, n_jobs, k, &model_shapes[j], &model_layout[j]);
        } else {
            kiln_shape sh[64];
            int ns = k->shapes(KILN_SHAPES_TUNE, sh, 64);
            for (int j = 0; j < ns; j++)
                add_job(jobs, n_jobs, k, &sh[j], NULL);
        }
    }
    if (!*n_jobs)
        return kiln_fail(e, KILN_E_INVALID, "nothing to tune (no kernel x shape selected)");
    return 0;
}

typedef struct progress_ctx {
    const tune_cli *cli;
    tune_store *store;
    int tty;
    int job, n_jobs;
    char dev[64];
} progress_ctx;

static int hook_lookup(void *user, const kiln_kernel *k, const kiln_shape *s, const kiln_config *c, kiln_trial *t)
{
    progress_ctx *p = user;
    return tune_store_lookup(p->store, k, s, c, t);
}

static int hook_record(void *user, const kiln_kernel *k, const kiln_shape *s, const kiln_trial *t, kiln_err *e)
{
    progress_ctx *p = user;
    if (p->cli->verbose) {
        char key[128], cj[512];
        k->shape_key(s, key, sizeof key);
        kiln_config_to_json(k, &t->cfg, cj, sizeof cj);
        if (p->tty)
            fprintf(stderr, "\r\033[K");
        fprintf(stderr, "  %-13s %s %s %s %10.1f us  %s\n", kiln_trial_status_name(t->status), k->name, key, cj,
                t->median_ns / 1e3, t->status ? t->reason : "");
    }
    return tune_store_record(p->store, k, s, t, e);
}

static void fmt_eta(double s, char *buf, size_t n)
{
    if (s < 0 || !isfinite(s))
        s = 0;
    snprintf(buf, n, "%d:%02d", (int)s / 60, (int)s % 60);
}

static void hook_progress(void *user, const kiln_tune_state *st)
{
    progress_ctx *p = user;
    if (!p->tty)
        return;
    char key[128], eta[16];
    st->kernel->shape_key(st->shape, key, sizeof key);
    fmt_eta(st->eta_s, eta, sizeof eta);
    double speed = st->default_ns > 0 && isfinite(st->best_ns) ? st->default_ns / st->best_ns : 0;
    fprintf(stderr, "\r\033[K[%s %d/%d] %s %s %s %d/%d trials, %d ok %d bad, best %.1f us (%.2fx default), ETA %s",
            p->dev, p->job + 1, p->n_jobs, st->kernel->name, key, st->phase, st->done, st->budget, st->ok, st->bad,
            isfinite(st->best_ns) ? st->best_ns / 1e3 : 0.0, speed, eta);
}

static void print_result(const progress_ctx *p, const kiln_kernel *k, const kiln_shape *s, const kiln_tune_result *r)
{
    char key[128], cj[512];
    k->shape_key(s, key, sizeof key);
    kiln_config_to_json(k, &r->best.cfg, cj, sizeof cj);
    if (p->tty)
        fprintf(stderr, "\r\033[K");
    if (p->cli->json) {
        /* cJSON: strings escaped, a non-finite time (no config ran) is null */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "device", p->dev);
        cJSON_AddStringToObject(o, "kernel", k->name);
        cJSON_AddStringToObject(o, "shape", key);
        cJSON *cfg = cJSON_Parse(cj);
        if (cfg)
            cJSON_AddItemToObject(o, "config", cfg);
        else
            cJSON_AddStringToObject(o, "config", cj);
        cJSON_AddNumberToObject(o, "best_ns", r->best.median_ns);
        cJSON_AddNumberToObject(o, "default_ns", r->deflt.median_ns);
        cJSON_AddNumberToObject(o, "speedup", r->speedup);
        cJSON_AddNumberToObject(o, "margin", r->margin);
        cJSON_AddBoolToObject(o, "tie", r->tie);
        cJSON_AddNumberToObject(o, "trials", r->n_trials);
        cJSON_AddNumberToObject(o, "ok", r->n_ok);
        cJSON_AddNumberToObject(o, "failed", r->n_bad);
        cJSON_AddNumberToObject(o, "gbps", r->gbps);
        cJSON_AddNumberToObject(o, "bw_ratio", r->bw_ratio);
        cJSON_AddBoolToObject(o, "stopped_early", r->stopped_early);
        if (r->sustained_s > 0) {
            cJSON_AddNumberToObject(o, "sustained_s", r->sustained_s);
            cJSON_AddNumberToObject(o, "sustained_trials", r->sustained_trials);
            cJSON_AddNumberToObject(o, "first_ns", r->first_ns);
            cJSON_AddNumberToObject(o, "last_ns", r->last_ns);
            cJSON_AddNumberToObject(o, "drift", r->drift);
            cJSON_AddNumberToObject(o, "default_drift", r->default_drift);
        }
        char *txt = cJSON_PrintUnformatted(o);
        if (txt)
            printf("%s\n", txt);
        else
            fprintf(stderr, "kiln tune: out of memory writing JSON\n");
        free(txt);
        cJSON_Delete(o);
    } else {
        printf("%-16s %-34s %9.1f us  default %9.1f us  %5.2fx  %7.2f GB/s (%4.0f%% of copy)  %s margin %.1f%%  "
               "[%d trials: %d ok, %d failed%s]  %s\n",
               k->name, key, r->best.median_ns / 1e3, r->deflt.median_ns / 1e3, r->speedup, r->gbps,
               100 * r->bw_ratio, r->tie ? "TIE" : "win", 100 * r->margin, r->n_trials, r->n_ok, r->n_bad,
               r->stopped_early ? ", early stop" : "", cj);
        if (r->sustained_s > 0)
            printf("%-16s   sustained %.0f s (%d runs back to back): first %.1f us, last %.1f us, drift %+.1f%% "
                   "(default's %+.1f%%); times above are sustained\n",
                   "", r->sustained_s, r->sustained_trials, r->first_ns / 1e3, r->last_ns / 1e3, 100 * r->drift,
                   100 * r->default_drift);
    }
    fflush(stdout);
}

int cmd_tune(int argc, char **argv)
{
    tune_cli c;
    int rc = parse(argc, argv, &c);
    if (rc)
        return rc == KILN_ARGS_HELP ? KILN_EXIT_OK : rc;
    kiln_err e = {0};
    static job jobs[MAX_JOBS];
    int n_jobs = 0;
    if ((rc = collect_jobs(&c, jobs, &n_jobs, &e))) {
        fprintf(stderr, "tune: %s\n", e.msg);
        return kiln_exit_code(rc);
    }
    kiln_config first[32];
    for (int i = 0; i < c.n_configs; i++)
        if ((rc = kiln_config_from_json(jobs[0].k, c.configs[i], &first[i], &e))) {
            fprintf(stderr, "tune: --config %s: %s\n", c.configs[i], e.msg);
            return KILN_EXIT_USAGE;
        }
    c.opts.first = first;
    c.opts.n_first = c.n_configs;

    /* Identify the device and measure its copy and read bandwidth once, in
     * this process but before any worker: the workers reopen it. */
    kiln_device *d;
    if ((rc = kiln_device_select(c.device, &d, &e))) {
        fprintf(stderr, "tune: %s\n", e.msg);
        return kiln_exit_code(rc);
    }
    double gbps = 0;
    if (kiln_measure_copy_bandwidth(d, &gbps, &e))
        fprintf(stderr, "tune: warning: copy bandwidth not measured: %s\n", e.msg);
    if (kiln_measure_read_bandwidth(d, NULL, NULL, 0, &e)) /* stored with the device */
        fprintf(stderr, "tune: warning: read bandwidth not measured: %s\n", e.msg);
    kiln_fingerprint fp = d->fp;
    char spec[64];
    snprintf(spec, sizeof spec, "%s:%d", kiln_backend_name(d->backend), d->index);
    kiln_device_close(d);

    /* Budget: a duration is shared evenly by the kernel x shape jobs. */
    if (c.budget_trials > 0)
        c.opts.budget_trials = c.budget_trials;
    if (c.budget_seconds > 0) {
        c.opts.budget_seconds = c.budget_seconds / n_jobs;
        if (!c.budget_trials)
            c.opts.budget_trials = 1000000;
    }

    tune_store *store = NULL;
    if ((rc = tune_store_open(&store, c.db_path, &fp, &c.opts, argc, argv, c.resume, &e))) {
        fprintf(stderr, "tune: %s\n", e.msg);
        return kiln_exit_code(rc);
    }
    progress_ctx p = {.cli = &c, .store = store, .tty = isatty(2) && !c.json, .n_jobs = n_jobs};
    snprintf(p.dev, sizeof p.dev, "%s", spec);
    char budget[64];
    if (c.budget_seconds > 0)
        snprintf(budget, sizeof budget, "%.0f s (%.0f s per job)", c.budget_seconds, c.opts.budget_seconds);
    else
        snprintf(budget, sizeof budget, "%d trials per job", c.opts.budget_trials);
    fprintf(stderr, "tune: %s (%s), %.1f GB/s copy, %d kernel x shape job(s), strategy %s, budget %s, session %lld\n",
            spec, fp.name, gbps, n_jobs, kiln_search_name(c.opts.strategy), budget, tune_store_session(store));
    kiln_tune_hooks hooks = {.user = &p, .lookup = hook_lookup, .record = hook_record, .progress = hook_progress};

    int failed = 0;
    double t0 = kiln_now_s();
    for (int j = 0; j < n_jobs; j++) {
        p.job = j;
        if (jobs[j].layout_src.m && !jobs[j].s.ilv) {
            /* the prefill gemm reads the matrix in the layout gemv's winner
             * (tuned before it in this session) makes the engine store it in */
            kiln_layout_ctx lc = {.fp = &fp, .db = tune_store_db(store)};
            int gemv_f32 = 0, ilv = kiln_engine_layout(&lc, &jobs[j].layout_src, &gemv_f32);
            jobs[j].s.ilv = ilv > 1 ? ilv : 0;
            if (gemv_f32) /* the engine runs this matrix's gemms at the gemv's precision (engine/forward.c) */
                jobs[j].s.act = KILN_ACT_F32;
            int dup = 0; /* two matrices of one shape may end up in one layout */
            for (int i = 0; i < j && !dup; i++)
                dup = jobs[i].k == jobs[j].k && !memcmp(&jobs[i].s, &jobs[j].s, sizeof jobs[j].s);
            if (dup)
                continue;
        }
        kiln_tune_result r;
        kiln_err je = {0};
        int jrc = kiln_tune(&c.opts, spec, gbps, jobs[j].k, &jobs[j].s, &hooks, &r, &je);
        if (jrc) {
            char key[128];
            jobs[j].k->shape_key(&jobs[j].s, key, sizeof key);
            if (p.tty)
                fprintf(stderr, "\r\033[K");
            fprintf(stderr, "tune: %s %s: %s\n", jobs[j].k->name, key, je.msg);
            failed++;
            if (jrc == KILN_E_DB) /* the store is broken: stop, nothing more can be kept */
                break;
            continue;
        }
        print_result(&p, jobs[j].k, &jobs[j].s, &r);
        if ((jrc = tune_store_winner(store, jobs[j].k, &jobs[j].s, &r, &je))) {
            fprintf(stderr, "tune: storing the winner: %s\n", je.msg);
            failed++;
            break;
        }
    }
    fprintf(stderr, "tune: session %lld finished in %.1f s: %d job(s), %d failed\n", tune_store_session(store),
            kiln_now_s() - t0, n_jobs, failed);
    tune_store_close(store, failed ? "incomplete" : "done");
    return failed ? KILN_EXIT_FAIL : KILN_EXIT_OK;
}
