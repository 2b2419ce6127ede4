/* src/cmd_bench.c - `kiln bench`: kernel benchmarks (tuned vs default vs copy
 * bandwidth), bench history, regression compare, export/import of runs.
 *
 *   kiln bench kernels [--device D ...] [--kernel K ...] [--shape S ...] [-r ROUNDS]
 *                      [--format table|md|csv|json] [--db PATH]
 *   kiln bench model ...                     (src/cmd_bench_model.c)
 *   kiln bench batch ...                     (src/cmd_bench_batch.c)
 *   kiln bench compare RUN --baseline RUN|REF|FILE.json [--threshold 0.05] [--k 3]
 *   kiln bench list | show [RUN] | export [RUN] [-o FILE] | import FILE [--time-factor F]
 * Exit: 0 ok, 1 a kernel failed, 2 usage, 3 unavailable, 13 regression (README documents 13). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_compare.h"
#include "bench/bench_format.h"
#include "bench/bench_kernels.h"
#include "src/args.h"
#include "src/commands.h"

int kiln_cmd_bench_model(int argc, char **argv);
int kiln_cmd_bench_batch(int argc, char **argv);
int kiln_cmd_bench_serve(int argc, char **argv);

typedef struct bench_cli {
    const char *db_path, *baseline, *out, *kind;
    const char *pos[8];
    int n_pos;
    const char *devices[16], *kernels[32], *shapes[32];
    int n_devices, n_kernels, n_shapes;
    int fmt, rounds, in_process, copies, json;
    double threshold, k, time_factor, sustained;
} bench_cli;

typedef struct bench_sub {
    const char *name;
    char letter;      /* which options of parse()'s table apply */
    int max_pos;
    const char *usage;
} bench_sub;

static const bench_sub subs[] = {
    {"kernels", 'K', 0,
     "usage: kiln bench kernels [--device D ...] [--kernel K ...] [--shape SPEC ...] [-r ROUNDS] [--format F]\n"
     "  default vs tuned config (db lookup for the device) of each kernel x shape, interleaved,\n"
     "  verified, with GB/s and % of the device's copy and read bandwidth (read: the roof of\n"
     "  a kernel that streams its inputs, as a gemv does); stored as a bench run\n"
     "  (default: cpu, the decode kernel set at tune's Llama shapes, 5 rounds)\n"
     "exit: 0 ok, 1 a kernel failed, 2 usage, 3 device or database unavailable\n"},
    {"compare", 'C', 1,
     "usage: kiln bench compare RUN --baseline B [--threshold 0.05] [--k 3] [--kind kernels|model] [--format F]\n"
     "  RUN/B: a run id (with its batch), latest, previous (B only), a git ref/commit\n"
     "  (latest run per device at that commit), or FILE.json from `bench export`\n"
     "exit: 0 no regression, 13 a regression (a change beyond max(threshold, k x combined spread)),\n"
     "1 failed, 2 usage, 3 database or file unavailable\n"},
    {"list", 'L', 0, "usage: kiln bench list\n  the stored runs\nexit: 0 ok, 1 failed, 2 usage, 3 database unavailable\n"},
    {"show", 'S', 1,
     "usage: kiln bench show [RUN] [--format F]\n  the results of a run (default latest)\n"
     "exit: 0 ok, 1 failed, 2 usage, 3 database unavailable\n"},
    {"export", 'E', 1,
     "usage: kiln bench export [RUN] [-o FILE]\n  a run as JSON (a baseline file for compare)\n"
     "exit: 0 ok, 1 failed, 2 usage, 3 database unavailable\n"},
    {"import", 'I', 1,
     "usage: kiln bench import FILE [--time-factor F]\n  add the runs of an export as new runs (F scales times: tests)\n"
     "exit: 0 ok, 1 failed, 2 usage, 3 database or file unavailable\n"},
};
#define N_SUBS ((int)(sizeof subs / sizeof subs[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: kiln bench <command> [options]   (kiln bench <command> --help for its options)\n");
    for (int i = 0; i < N_SUBS; i++)
        fprintf(f, "  %-8s %.*s\n", subs[i].name, (int)(strchr(subs[i].usage, '\n') - subs[i].usage) - 7,
                subs[i].usage + 7);
    fprintf(f, "  model    model benchmark (pp/tg tok/s, TTFT, latency): kiln bench model --help\n"
               "  batch    aggregate decode tok/s of B sequences at once: kiln bench batch --help\n"
               "  serve    concurrent clients against a running server (tok/s, TTFT, ITL): kiln bench serve --help\n"
               "exit: 0 ok, 1 a kernel or run failed, 2 usage, 3 unavailable, 13 a regression (compare)\n");
}

static int parse_fmt(void *dst, const char *opt, const char *v, kiln_err *e)
{
    return kiln_bench_fmt_parse(v, (int *)dst) ? kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not table, md, csv or json",
                                                           opt, v)
                                               : 0;
}

static int parse(int argc, char **argv, const bench_sub *sc, bench_cli *c)
{
    memset(c, 0, sizeof *c);
    c->threshold = 0.05;
    c->k = 3;
    c->time_factor = 1;
    struct {
        const char *subs;
        kiln_opt o;
    } all[] = {
        {"KCLSEI", {"--db", NULL, KILN_OPT_STR, &c->db_path, .arg = "PATH",
                    .help = "database (default $KILN_DB or ~/.local/share/kiln/kiln.db)"}},
        {"K", {"--device", NULL, KILN_OPT_LIST, (void *)c->devices, .count = &c->n_devices, .max = 16, .arg = "D",
               .help = "device (repeatable; default cpu)"}},
        {"K", {"--kernel", NULL, KILN_OPT_LIST, (void *)c->kernels, .count = &c->n_kernels, .max = 32, .arg = "K",
               .help = "kernel (repeatable; default the decode kernel set)"}},
        {"K", {"--shape", NULL, KILN_OPT_LIST, (void *)c->shapes, .count = &c->n_shapes, .max = 32, .arg = "SPEC",
               .help = "m=4096,k=4096,quant=q4_0,group=32 (repeatable)"}},
        {"K", {"--rounds", "-r", KILN_OPT_INT, &c->rounds, 1, 10000, .arg = "N", .help = "rounds (default 5)"}},
        {"K", {"--copies", NULL, KILN_OPT_INT, &c->copies, 1, 128, .arg = "N",
               .help = "input copies in rotation (default: enough to exceed twice the last-level\n"
                       "cache, timed from memory; 1: cache-hot, as test-backend-ops times)"}},
        {"K", {"--sustained", NULL, KILN_OPT_DOUBLE, &c->sustained, 0, 3600, .arg = "SEC",
               .help = "then run default and tuned each back to back for SEC seconds (thermal):\n"
                       "stores their sustained times and drift first-vs-last"}},
        {"K", {"--in-process", NULL, KILN_OPT_FLAG, &c->in_process, .help = "no worker process (debugging)"}},
        {"C", {"--baseline", NULL, KILN_OPT_STR, &c->baseline, .arg = "B", .help = "what RUN is compared with"}},
        {"C", {"--threshold", NULL, KILN_OPT_DOUBLE, &c->threshold, 0, 100, .arg = "X",
               .help = "relative change that counts (default 0.05)"}},
        {"C", {"--k", NULL, KILN_OPT_DOUBLE, &c->k, 0, 1000, .arg = "K",
               .help = "spreads a change must exceed (default 3)"}},
        {"C", {"--kind", NULL, KILN_OPT_STR, &c->kind, .arg = "KIND", .help = "kernels | model"}},
        {"SE", {"--output", "-o", KILN_OPT_STR, &c->out, .arg = "FILE", .help = "write the JSON to FILE"}},
        {"I", {"--time-factor", NULL, KILN_OPT_DOUBLE, &c->time_factor, 1e-6, 1e6, .arg = "F",
               .help = "scale the imported times (tests)"}},
        {"KCS", {"--format", NULL, KILN_OPT_FN, &c->fmt, .fn = parse_fmt, .arg = "F", .help = "table | md | csv | json"}},
        {"KCS", {"--json", NULL, KILN_OPT_FLAG, &c->json, .help = "same as --format json"}},
    };
    kiln_opt mine[20];
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strchr(all[i].subs, sc->letter))
            mine[n++] = all[i].o;
    mine[n] = (kiln_opt){0};
    const kiln_opt *tables[] = {mine, NULL};
    char cmd[32];
    snprintf(cmd, sizeof cmd, "kiln bench %s", sc->name);
    int rc = kiln_args_parse(cmd, sc->usage, tables, argc, argv, 2, sc->max_pos ? c->pos : NULL, sc->max_pos,
                             &c->n_pos);
    if (c->json)
        c->fmt = KILN_FMT_JSON;
    return rc;
}

static int fail(const char *what, kiln_err *e)
{
    fprintf(stderr, "kiln bench %s: %s\n", what, e->msg);
    return kiln_exit_code(e->code);
}

/* ---- kernels ------------------------------------------------------------- */

typedef struct kcb {
    int fmt;
} kcb;

static void kernels_row(void *user, const kiln_kbench_row *r)
{
    const kcb *c = user;
    if (c->fmt != KILN_FMT_TABLE && c->fmt != KILN_FMT_MD) {
        if (!r->kernel)
            fprintf(stderr, "bench: %s, copy bandwidth %.2f GB/s, read %.2f GB/s\n", r->device, r->copy_gbps,
                    r->read_gbps);
        else if (!r->ok)
            fprintf(stderr, "bench: %s: FAILED: %s\n", r->subject, r->error);
        return;
    }
    int md = c->fmt == KILN_FMT_MD;
    if (!r->kernel) {
        if (md)
            printf("\n**%s** - copy bandwidth %.2f GB/s, read bandwidth %.2f GB/s\n\n"
                   "| kernel | shape | default us | tuned us | speedup | tuned GB/s | %% of copy | %% of read | tuned "
                   "config (lookup) |\n"
                   "|---|---|---:|---:|---:|---:|---:|---:|---|\n",
                   r->device, r->copy_gbps, r->read_gbps);
        else
            printf("\n%s - copy bandwidth %.2f GB/s, read bandwidth %.2f GB/s\n%-16s %-28s %18s %18s %8s %10s %7s %7s  %s\n",
                   r->device, r->copy_gbps, r->read_gbps, "kernel", "shape", "default us", "tuned us", "speedup",
                   "tuned GB/s", "% copy", "% read", "tuned config (lookup)");
        fflush(stdout);
        return;
    }
    if (!r->ok) {
        if (md)
            printf("| %s | %s | FAILED | | | | | %s |\n", r->kernel->name, r->shape_key, r->error);
        else
            printf("%-16s %-28s FAILED: %s\n", r->kernel->name, r->shape_key, r->error);
        fflush(stdout);
        return;
    }
    char dt[48], tt[48], cfg[800];
    snprintf(dt, sizeof dt, "%.1f ±%.1f%%", r->default_ns / 1e3, 100 * r->default_spread);
    snprintf(tt, sizeof tt, "%.1f ±%.1f%%", r->tuned_ns / 1e3, 100 * r->tuned_spread);
    snprintf(cfg, sizeof cfg, "%s (%s)", r->same ? "= default" : r->tuned_json, r->match);
    char cp[16] = "-", rd[16] = "-"; /* "-": that bandwidth was not measured */
    if (r->bw_ratio > 0)
        snprintf(cp, sizeof cp, "%.0f%%", 100 * r->bw_ratio);
    if (r->read_ratio > 0)
        snprintf(rd, sizeof rd, "%.0f%%", 100 * r->read_ratio);
    if (md)
        printf("| %s | %s | %s | %s | %.2fx | %.2f | %s | %s | `%s` |\n", r->kernel->name, r->shape_key, dt, tt,
               r->speedup, r->tuned_gbps, cp, rd, cfg);
    else
        printf("%-16s %-28s %18s %18s %7.2fx %10.2f %7s %7s  %s\n", r->kernel->name, r->shape_key, dt, tt, r->speedup,
               r->tuned_gbps, cp, rd, cfg);
    if (r->tuned_sus_n && !md) /* (markdown keeps its table: the figures are in the stored run) */
        printf("%-16s sustained %d+%d runs back to back: default %.1f us (drift %+.1f%%), tuned %.1f us (drift "
               "%+.1f%%)\n", "", r->default_sus_n, r->same ? 0 : r->tuned_sus_n, r->default_sus_ns / 1e3,
               100 * r->default_drift, r->tuned_sus_ns / 1e3, 100 * r->tuned_drift);
    fflush(stdout);
}

static int cmd_kernels(bench_cli *c)
{
    kiln_err e = {0};
    kiln_db *db;
    if (kiln_db_open(&db, c->db_path, &e))
        return fail("kernels", &e);
    kiln_kbench_opts o;
    kiln_kbench_defaults(&o);
    o.devices = c->devices;
    o.n_devices = c->n_devices;
    o.kernels = c->kernels;
    o.n_kernels = c->n_kernels;
    o.shapes = c->shapes;
    o.n_shapes = c->n_shapes;
    if (c->rounds > 0)
        o.rounds = c->rounds;
    o.measure.copies = c->copies;
    o.in_process = c->in_process;
    o.sustained_s = c->sustained;
    kcb cb = {.fmt = c->fmt};
    int n_failed = 0, n_runs = 0;
    int64_t runs[64];
    int rc = kiln_bench_kernels(db, &o, kernels_row, &cb, &n_failed, runs, 64, &n_runs, &e);
    if (rc) {
        kiln_db_close(db);
        return fail("kernels", &e);
    }
    if (c->fmt == KILN_FMT_CSV || c->fmt == KILN_FMT_JSON) {
        kiln_bench_set s = {0};
        for (int i = 0; i < n_runs && i < 64 && !rc; i++)
            rc = kiln_bench_load_run(db, runs[i], &s, &e);
        if (!rc)
            kiln_bench_print(stdout, &s, c->fmt);
        kiln_bench_set_free(&s);
    }
    fprintf(stderr, "bench: stored run%s", n_runs > 1 ? "s" : "");
    for (int i = 0; i < n_runs && i < 64; i++)
        fprintf(stderr, " %lld", (long long)runs[i]);
    fprintf(stderr, " in %s%s\n", kiln_db_path(db), n_failed ? "" : "");
    if (n_failed)
        fprintf(stderr, "bench: %d kernel x shape row(s) failed\n", n_failed);
    kiln_db_close(db);
    if (rc)
        return fail("kernels", &e);
    return n_failed ? KILN_EXIT_FAIL : KILN_EXIT_OK;
}

/* ---- history ------------------------------------------------------------- */

/* list/show/export only read: read-only; import writes */
static int open_db(bench_cli *c, kiln_db **db, const char *what)
{
    kiln_err e = {0};
    if ((strcmp(what, "import") ? kiln_db_open_readonly : kiln_db_open)(db, c->db_path, &e))
        return fail(what, &e);
    return 0;
}

static int cmd_list(bench_cli *c)
{
    kiln_db *db;
    int rc = open_db(c, &db, "list");
    if (rc)
        return rc;
    sqlite3_stmt *st;
    sqlite3_prepare_v2(kiln_db_handle(db),
                       "SELECT r.id, r.created, r.kind, r.git_commit, d.backend || ' ' || d.name, r.subject,"
                       " (SELECT COUNT(*) FROM bench_results x WHERE x.run_id = r.id), substr(r.notes, 1, 22)"
                       " FROM bench_runs r JOIN devices d ON d.id = r.device_id ORDER BY r.id",
                       -1, &st, NULL);
    printf("%5s  %-20s %-8s %-13s %-36s %7s  %-22s %s\n", "run", "created", "kind", "commit", "device", "results",
           "batch", "subject");
    while (sqlite3_step(st) == SQLITE_ROW)
        printf("%5d  %-20s %-8s %-13s %-36.36s %7d  %-22s %s\n", sqlite3_column_int(st, 0),
               (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2),
               (const char *)sqlite3_column_text(st, 3), (const char *)sqlite3_column_text(st, 4),
               sqlite3_column_int(st, 6), (const char *)sqlite3_column_text(st, 7),
               (const char *)sqlite3_column_text(st, 5));
    sqlite3_finalize(st);
    kiln_db_close(db);
    return 0;
}

static int cmd_show(bench_cli *c, int export_json)
{
    kiln_db *db;
    int rc = open_db(c, &db, export_json ? "export" : "show");
    if (rc)
        return rc;
    kiln_err e = {0};
    kiln_bench_set s = {0};
    const char *sel = c->n_pos ? c->pos[0] : "latest";
    if ((rc = kiln_bench_select(db, sel, c->kind, NULL, &s, &e))) {
        kiln_db_close(db);
        return fail(export_json ? "export" : "show", &e);
    }
    if (export_json) {
        char *json = kiln_bench_export_json(db, s.run_ids, s.n_runs, &e);
        if (!json)
            rc = fail("export", &e);
        else if (c->out) {
            FILE *f = fopen(c->out, "w");
            if (!f || fputs(json, f) < 0 || fclose(f)) {
                fprintf(stderr, "kiln bench export: %s: cannot write\n", c->out);
                rc = KILN_EXIT_UNAVAILABLE;
            } else {
                fprintf(stderr, "bench: exported %d run(s) to %s\n", s.n_runs, c->out);
            }
        } else {
            printf("%s\n", json);
        }
        free(json);
    } else {
        kiln_bench_print(stdout, &s, c->fmt);
    }
    kiln_bench_set_free(&s);
    kiln_db_close(db);
    return rc;
}

static int cmd_import(bench_cli *c)
{
    if (!c->n_pos) {
        fprintf(stderr, "kiln bench import: FILE.json is required\n");
        return KILN_EXIT_USAGE;
    }
    kiln_db *db;
    int rc = open_db(c, &db, "import");
    if (rc)
        return rc;
    kiln_err e = {0};
    int64_t ids[64];
    int n = 0;
    if ((rc = kiln_bench_import_json(db, c->pos[0], c->time_factor, ids, 64, &n, &e))) {
        kiln_db_close(db);
        return fail("import", &e);
    }
    printf("imported %d run(s) from %s as run", n, c->pos[0]);
    for (int i = 0; i < n && i < 64; i++)
        printf(" %lld", (long long)ids[i]);
    if (c->time_factor != 1)
        printf(" (times x%g)", c->time_factor);
    printf("\n");
    kiln_db_close(db);
    return 0;
}

static int cmd_compare(bench_cli *c)
{
    if (!c->n_pos || !c->baseline) {
        fprintf(stderr, "kiln bench compare: RUN and --baseline are required\n");
        usage(stderr);
        return KILN_EXIT_USAGE;
    }
    kiln_err e = {0};
    kiln_db *db = NULL;
    int need_db = !strstr(c->pos[0], ".json") || !strstr(c->baseline, ".json");
    if (need_db && kiln_db_open_readonly(&db, c->db_path, &e))
        return fail("compare", &e);
    kiln_bench_set cur = {0}, base = {0};
    int rc = kiln_bench_select(db, c->pos[0], c->kind, NULL, &cur, &e);
    if (!rc)
        rc = kiln_bench_select(db, c->baseline, c->kind, &cur, &base, &e);
    if (rc) {
        kiln_bench_set_free(&cur);
        kiln_bench_set_free(&base);
        kiln_db_close(db);
        return fail("compare", &e);
    }
    kiln_compare_opts o;
    kiln_compare_defaults(&o);
    o.threshold = c->threshold;
    o.k = c->k;
    o.fmt = c->fmt;
    if (o.fmt != KILN_FMT_JSON) {
        printf("compare %s (run", c->pos[0]);
        for (int i = 0; i < cur.n_runs; i++)
            printf(" %lld", (long long)cur.run_ids[i]);
        printf(") against baseline %s", c->baseline);
        if (base.n_runs) {
            printf(" (run");
            for (int i = 0; i < base.n_runs; i++)
                printf(" %lld", (long long)base.run_ids[i]);
            printf(")");
        }
        printf(": threshold %.1f%%, noise allowance %g x combined spread\n\n", 100 * o.threshold, o.k);
    }
    kiln_compare_summary sum;
    kiln_bench_compare(&cur, &base, &o, stdout, &sum);
    kiln_bench_set_free(&cur);
    kiln_bench_set_free(&base);
    kiln_db_close(db);
    if (sum.slower) {
        fprintf(stderr, "bench compare: %d regression(s)\n", sum.slower);
        return KILN_E_REGRESSION;
    }
    if (sum.rows == sum.added + sum.missing)
        fprintf(stderr, "bench compare: warning: no row is in both runs (different devices or subjects?)\n");
    return KILN_EXIT_OK;
}

int cmd_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? KILN_EXIT_USAGE : KILN_EXIT_OK;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "model"))
        return kiln_cmd_bench_model(argc - 1, argv + 1);
    if (!strcmp(sub, "batch"))
        return kiln_cmd_bench_batch(argc - 1, argv + 1);
    if (!strcmp(sub, "serve"))
        return kiln_cmd_bench_serve(argc - 1, argv + 1);
    const bench_sub *sc = NULL;
    for (int i = 0; i < N_SUBS; i++)
        if (!strcmp(sub, subs[i].name))
            sc = &subs[i];
    if (!sc) {
        fprintf(stderr, "kiln bench: unknown command '%s'\n", sub);
        usage(stderr);
        return KILN_EXIT_USAGE;
    }
    bench_cli c;
    int rc = parse(argc, argv, sc, &c);
    if (rc)
        return rc == KILN_ARGS_HELP ? KILN_EXIT_OK : rc;
    if (!strcmp(sub, "kernels"))
        return cmd_kernels(&c);
    if (!strcmp(sub, "compare"))
        return cmd_compare(&c);
    if (!strcmp(sub, "list"))
        return cmd_list(&c);
    if (!strcmp(sub, "show"))
        return cmd_show(&c, c.fmt == KILN_FMT_JSON && c.out);
    if (!strcmp(sub, "export"))
        return cmd_show(&c, 1);
    return cmd_import(&c);
}
