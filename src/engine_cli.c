/* src/engine_cli.c - see engine_cli.h. */
#include "src/engine_cli.h"

/* src/meson.build generates it (tools/embed_db.c); "" unless -Dtuned_db */
extern const char kiln_embedded_db_json[];

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kiln_engine_cli_defaults(kiln_engine_cli *c)
{
    memset(c, 0, sizeof *c);
    c->device = "cpu";
    c->n_predict = 128;
    kiln_sampling_default(&c->sampling);
}

const char *kiln_engine_cli_help(void)
{
    return "  -m, --model FILE        GGUF model (Llama family)\n"
           "  --device D              cpu | opencl | vulkan | cuda | backend:index | name substring (default cpu)\n"
           "  --db PATH               tuning database (default $KILN_DB or ~/.local/share/kiln/kiln.db if present)\n"
           "  -n N                    tokens to generate (default 128)\n"
           "  --ctx N                 KV cache capacity in tokens (default min(model context, 4096))\n"
           "  --page-size N           KV cache page size (default 64)\n"
           "  --chunk N               prefill chunk in tokens (default 64)\n"
           "  --precision P           fast (default): tuned kernels may quantize activations to int8 per block of\n"
           "                          32 (vpdpbusd-class dot products; kiln perplexity measures the cost);\n"
           "                          strict: f32 activations everywhere (greedy output equals a float64 forward)\n"
           "  --threads N             host threads of the cpu backend (default: all cores, or $KILN_CPU_THREADS)\n"
           "  --no-fuse               keep Q/K/V and gate/up as separate matrices (by default each is stacked into\n"
           "                          one, so a decode step runs one gemv for them; for comparisons)\n"
           "  --temp T --top-k K --top-p P --min-p P --repeat-penalty R --repeat-last-n N --seed S\n"
           "                          sampling (default greedy: --temp 0)\n"
           "  --stop STR              stop string (repeatable)\n"
           "  --chat-template NAME    chatml | llama2 | llama3 | raw (default: from the GGUF)\n"
           "  --verbose               which tuned config (and match level) each kernel got; the model load\n"
           "                          time split into gguf parse, tokenizer and weights\n"
           "  --json                  machine-readable summary\n"
           "  --profile               time every op: a table per phase (prefill per chunk, decode per step) of time\n"
           "                          per op label, device time, GB/s, host gaps; ops run synchronously (serializes GPUs)\n";
}

static int num(const char *flag, const char *v, double lo, double hi, double *out)
{
    char *end;
    double x = v ? strtod(v, &end) : 0;
    if (!v || *end || x < lo || x > hi) {
        fprintf(stderr, "kiln: %s needs a number in [%g, %g], got '%s'\n", flag, lo, hi, v ? v : "(nothing)");
        return -1;
    }
    *out = x;
    return 0;
}

int kiln_engine_cli_arg(kiln_engine_cli *c, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    double x;
#define TAKE(dst) do { if (!v) { fprintf(stderr, "kiln: %s needs a value\n", a); return -1; } dst = v; (*i)++; return 1; } while (0)
#define NUM(lo, hi, dst) do { if (num(a, v, lo, hi, &x)) return -1; dst = x; (*i)++; return 1; } while (0)
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) TAKE(c->model);
    if (!strcmp(a, "--device")) TAKE(c->device);
    if (!strcmp(a, "--db")) TAKE(c->db_path);
    if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) TAKE(c->prompt);
    if (!strcmp(a, "--chat-template")) TAKE(c->chat_template);
    if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) NUM(1, 1 << 20, c->n_predict);
    if (!strcmp(a, "--ctx")) NUM(16, 1 << 22, c->ctx);
    if (!strcmp(a, "--page-size")) NUM(16, 256, c->page_size);
    if (!strcmp(a, "--chunk")) NUM(1, 4096, c->chunk);
    if (!strcmp(a, "--threads")) NUM(1, 4096, c->threads);
    if (!strcmp(a, "--temp")) NUM(0, 100, c->sampling.temp);
    if (!strcmp(a, "--top-k")) NUM(0, 1 << 30, c->sampling.top_k);
    if (!strcmp(a, "--top-p")) NUM(0, 1, c->sampling.top_p);
    if (!strcmp(a, "--min-p")) NUM(0, 1, c->sampling.min_p);
    if (!strcmp(a, "--repeat-penalty")) NUM(0, 100, c->sampling.repeat_penalty);
    if (!strcmp(a, "--repeat-last-n")) NUM(0, 1 << 20, c->sampling.repeat_last_n);
    if (!strcmp(a, "--seed")) NUM(0, 1.8e19, c->sampling.seed);
    if (!strcmp(a, "--stop")) {
        if (c->n_stop == 8) {
            fprintf(stderr, "kiln: at most 8 --stop strings\n");
            return -1;
        }
        TAKE(c->stop[c->n_stop++]);
    }
    if (!strcmp(a, "--precision")) {
        if (v && !strcmp(v, "fast"))
            c->precision = KILN_PRECISION_FAST;
        else if (v && !strcmp(v, "strict"))
            c->precision = KILN_PRECISION_STRICT;
        else {
            fprintf(stderr, "kiln: --precision needs fast or strict, got '%s'\n", v ? v : "(nothing)");
            return -1;
        }
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--no-fuse")) {
        c->no_fuse = 1;
        return 1;
    }
    if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
        c->verbose = 1;
        return 1;
    }
    if (!strcmp(a, "--json")) {
        c->json = 1;
        return 1;
    }
    if (!strcmp(a, "--profile")) {
        c->profile = 1;
        return 1;
    }
#undef TAKE
#undef NUM
    return 0;
}

int kiln_engine_cli_session_opts(const kiln_engine_cli *c, kiln_session_opts *o, kiln_err *e)
{
    *o = (kiln_session_opts){.model = c->model, .device = c->device, .db_path = c->db_path,
                             .db_json = kiln_embedded_db_json, .chat_template = c->chat_template, .ctx = c->ctx,
                             .page_size = c->page_size, .chunk = c->chunk, .threads = c->threads,
                             .log = c->verbose ? stderr : NULL, .progress = c->json ? NULL : stderr, .notes = stderr,
                             .profile = c->profile, .precision = c->precision, .no_fuse = c->no_fuse};
    return kiln_sampling_check(&c->sampling, e);
}
