/* src/engine_cli.c - see engine_cli.h. */
#include "src/engine_cli.h"

/* src/meson.build generates it (tools/embed_db.c); "" unless -Dtuned_db */
extern const char kiln_embedded_db_json[];

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_precision(void *dst, const char *opt, const char *v, kiln_err *e)
{
    if (!strcmp(v, "fast"))
        *(int *)dst = KILN_PRECISION_FAST;
    else if (!strcmp(v, "strict"))
        *(int *)dst = KILN_PRECISION_STRICT;
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

void kiln_engine_cli_defaults(kiln_engine_cli *c)
{
    memset(c, 0, sizeof *c);
    c->device = "cpu";
    c->n_predict = 128;
    c->kv_type = -1;
    kiln_sampling_default(&c->sampling);
    const kiln_opt t[] = {
        {"--model", "-m", KILN_OPT_STR, &c->model, .arg = "FILE", .help = "GGUF model (Llama family)"},
        {"--prompt", "-p", KILN_OPT_STR, &c->prompt, .arg = "TEXT", .help = "the prompt"},
        {"--device", NULL, KILN_OPT_STR, &c->device, .arg = "D",
         .help = "cpu | opencl | vulkan | cuda | backend:index | name substring (default cpu)"},
        {"--db", NULL, KILN_OPT_STR, &c->db_path, .arg = "PATH",
         .help = "tuning database, read-only (default $KILN_DB or ~/.local/share/kiln/kiln.db if present)"},
        {"--n-predict", "-n", KILN_OPT_INT, &c->n_predict, 1, 1 << 20, .arg = "N",
         .help = "tokens to generate (default 128)"},
        {"--ctx", NULL, KILN_OPT_INT, &c->ctx, 16, 1 << 22, .arg = "N",
         .help = "KV cache capacity in tokens (default min(model context, 4096))"},
        {"--page-size", NULL, KILN_OPT_INT, &c->page_size, 16, 256, .arg = "N",
         .help = "KV cache page size (default 64)"},
        {"--chunk", NULL, KILN_OPT_INT, &c->chunk, 1, 4096, .arg = "N", .help = "prefill chunk in tokens (default 64)"},
        {"--precision", NULL, KILN_OPT_FN, &c->precision, .fn = parse_precision, .arg = "P",
         .help = "fast (default): tuned kernels may quantize activations to int8 per block of\n"
                 "32 (vpdpbusd-class dot products; kiln perplexity measures the cost);\n"
                 "strict: f32 activations everywhere (greedy output equals a float64 forward)"},
        {"--kv-type", NULL, KILN_OPT_FN, &c->kv_type, .fn = parse_kv_type, .arg = "T",
         .help = "KV cache element type: f16 (default with --precision fast: half the KV\n"
                 "memory, K/V rounded to nearest even, attention accumulates in f32) or f32\n"
                 "(default with --precision strict)"},
        {"--threads", NULL, KILN_OPT_INT, &c->threads, 1, 4096, .arg = "N",
         .help = "host threads of the cpu backend (default: all cores, or $KILN_CPU_THREADS)"},
        {"--no-fuse", NULL, KILN_OPT_FLAG, &c->no_fuse,
         .help = "keep Q/K/V and gate/up as separate matrices (by default each is stacked into\n"
                 "one, so a decode step runs one gemv for them; for comparisons)"},
        {"--temp", NULL, KILN_OPT_FLOAT, &c->sampling.temp, 0, 100, .arg = "T",
         .help = "sampling temperature (default 0: greedy)"},
        {"--top-k", NULL, KILN_OPT_INT, &c->sampling.top_k, 0, 1 << 30, .arg = "K", .help = "0: off"},
        {"--top-p", NULL, KILN_OPT_FLOAT, &c->sampling.top_p, 0, 1, .arg = "P", .help = "1: off"},
        {"--min-p", NULL, KILN_OPT_FLOAT, &c->sampling.min_p, 0, 1, .arg = "P", .help = "0: off"},
        {"--repeat-penalty", NULL, KILN_OPT_FLOAT, &c->sampling.repeat_penalty, 0, 100, .arg = "R",
         .help = "1: off"},
        {"--repeat-last-n", NULL, KILN_OPT_INT, &c->sampling.repeat_last_n, 0, 1 << 20, .arg = "N",
         .help = "recent tokens the penalty looks at"},
        {"--seed", NULL, KILN_OPT_U64, &c->sampling.seed, .arg = "S", .help = "sampling seed"},
        {"--stop", NULL, KILN_OPT_LIST, (void *)c->stop, .count = &c->n_stop, .max = 8, .arg = "STR",
         .help = "stop string (repeatable, at most 8)"},
        {"--chat-template", NULL, KILN_OPT_STR, &c->chat_template, .arg = "NAME",
         .help = "chatml | llama2 | llama3 | raw (default: from the GGUF)"},
        {"--verbose", "-v", KILN_OPT_FLAG, &c->verbose,
         .help = "which tuned config (and match level) each kernel got; the model load\n"
                 "time split into gguf parse, tokenizer and weights"},
        {"--json", NULL, KILN_OPT_FLAG, &c->json, .help = "machine-readable summary"},
        {"--profile", NULL, KILN_OPT_FLAG, &c->profile,
         .help = "time every op: a table per phase (prefill per chunk, decode per step) of time\n"
                 "per op label, device time, GB/s, host gaps; ops run synchronously (serializes GPUs)"},
        {0},
    };
    _Static_assert(sizeof t / sizeof t[0] <= sizeof c->opts / sizeof c->opts[0], "kiln_engine_cli.opts is too small");
    memcpy(c->opts, t, sizeof t);
}

void kiln_engine_cli_help(FILE *f, kiln_engine_cli *c)
{
    const kiln_opt *tables[] = {c->opts, NULL};
    kiln_args_help(f, "", tables);
}

int kiln_engine_cli_arg(kiln_engine_cli *c, int argc, char **argv, int *i)
{
    const kiln_opt *tables[] = {c->opts, NULL};
    return kiln_args_one("kiln", tables, argc, argv, i);
}

int kiln_engine_cli_kv_type(const kiln_engine_cli *c)
{
    if (c->kv_type >= 0)
        return c->kv_type;
    return c->precision == KILN_PRECISION_STRICT ? KILN_KV_F32 : KILN_KV_F16;
}

int kiln_engine_cli_session_opts(const kiln_engine_cli *c, kiln_session_opts *o, kiln_err *e)
{
    *o = (kiln_session_opts){.model = c->model, .device = c->device, .db_path = c->db_path,
                             .db_json = kiln_embedded_db_json, .chat_template = c->chat_template, .ctx = c->ctx,
                             .page_size = c->page_size, .chunk = c->chunk, .threads = c->threads,
                             .log = c->verbose ? stderr : NULL, .progress = c->json ? NULL : stderr, .notes = stderr,
                             .profile = c->profile, .precision = c->precision, .kv_type = kiln_engine_cli_kv_type(c),
                             .no_fuse = c->no_fuse};
    return kiln_sampling_check(&c->sampling, e);
}
