/* src/cmd_synth.c - `kiln synth`: write a synthetic Llama-architecture GGUF
 * model at a real shape (engine/synth.h says what is in it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "engine/synth.h"
#include "src/args.h"
#include "src/commands.h"

static int parse_preset(void *dst, const char *opt, const char *v, kiln_err *e)
{
    if (!kiln_synth_preset_find(v))
        return kiln_fail(e, KILN_E_INVALID, "%s: unknown preset '%s' (have %s)", opt, v, kiln_synth_preset_names());
    *(const char **)dst = v;
    return 0;
}

static int parse_quant(void *dst, const char *opt, const char *v, kiln_err *e)
{
    int *q = dst;
    if (!strcmp(v, "q4_0"))
        *q = KILN_GGML_Q4_0;
    else if (!strcmp(v, "q4_1"))
        *q = KILN_GGML_Q4_1;
    else if (!strcmp(v, "q8_0"))
        *q = KILN_GGML_Q8_0;
    else
        return kiln_fail(e, KILN_E_INVALID, "%s: '%s' is not q4_0, q4_1 or q8_0", opt, v);
    return 0;
}

int cmd_synth(int argc, char **argv)
{
    kiln_synth_opts o = {0};
    const char *out = NULL;
    const kiln_opt opts[] = {
        {"--preset", NULL, KILN_OPT_FN, &o.preset, .fn = parse_preset, .arg = "NAME", .help = "the model shape"},
        {"--quant", NULL, KILN_OPT_FN, &o.quant, .fn = parse_quant, .arg = "Q",
         .help = "q4_0 (default) | q4_1 | q8_0: the matrices' quantization"},
        {"--seed", NULL, KILN_OPT_U64, &o.seed, .arg = "N", .help = "weights seed (default 0)"},
        {"--layers", NULL, KILN_OPT_INT, &o.n_layer, 1, 4096, .arg = "N", .help = "layers (default: the preset's)"},
        {"--threads", NULL, KILN_OPT_INT, &o.threads, 0, 256, .arg = "N",
         .help = "writer threads (default 0: online CPUs, at most 16)"},
        {"--output", "-o", KILN_OPT_STR, &out, .arg = "OUT.gguf", .help = "the file to write"},
        {0},
    };
    const kiln_opt *tables[] = {opts, NULL};
    char usage[512];
    snprintf(usage, sizeof usage,
             "usage: kiln synth --preset NAME [--quant q4_0|q4_1|q8_0] [--seed N] [--layers N] [--threads N] -o OUT.gguf\n"
             "  presets: %s\n"
             "  Random weights (seeded) at the preset's real shape: matrices in the chosen\n"
             "  quantization (default q4_0), token embeddings Q8_0, norms F32; a byte-level\n"
             "  BPE tokenizer and a ChatML template in the metadata. Streams to disk.\n"
             "exit: 0 written, 1 failed, 2 usage, 3 the output cannot be written\n",
             kiln_synth_preset_names());
    int rc = kiln_args_parse("kiln synth", usage, tables, argc, argv, 1, NULL, 0, NULL);
    if (rc)
        return rc == KILN_ARGS_HELP ? KILN_EXIT_OK : rc;
    if (!o.preset || !out)
        return kiln_args_usage_error("kiln synth", "%s is required", !o.preset ? "--preset" : "-o OUT.gguf");
    o.progress = isatty(2);
    kiln_err e = {0};
    if (kiln_synth_write(out, &o, &e)) {
        fprintf(stderr, "kiln synth: %s\n", e.msg);
        return kiln_exit_code(e.code);
    }
    kiln_gguf *g;
    if (kiln_gguf_open(out, &g, &e)) { /* read back: what we wrote must parse */
        fprintf(stderr, "kiln synth: wrote %s but cannot read it back: %s\n", out, e.msg);
        return KILN_EXIT_FAIL;
    }
    printf("%s: %s, %d tensors, %.1f MiB\n", out, o.preset, kiln_gguf_n_tensors(g),
           (double)kiln_gguf_file_size(g) / (1 << 20));
    kiln_gguf_close(g);
    return KILN_EXIT_OK;
}
