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
#include "src/commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kiln synth --preset NAME [--quant q4_0|q4_1|q8_0] [--seed N] [--layers N] [--threads N] -o OUT.gguf\n"
            "  presets: %s\n"
            "  Random weights (seeded) at the preset's real shape: matrices in the chosen\n"
            "  quantization (default q4_0), token embeddings Q8_0, norms F32; a byte-level\n"
            "  BPE tokenizer and a ChatML template in the metadata. Streams to disk.\n",
            kiln_synth_preset_names());
}

static int parse_num(const char *opt, const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || !*s || *end || *s == '-' || v > max) {
        fprintf(stderr, "kiln synth: %s: '%s' is not a number in 0..%llu\n", opt, s, max);
        return -1;
    }
    *out = v;
    return 0;
}

int cmd_synth(int argc, char **argv)
{
    kiln_synth_opts o = {0};
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return KILN_EXIT_OK;
        }
        int takes = !strcmp(a, "--preset") || !strcmp(a, "--quant") || !strcmp(a, "--seed") ||
                    !strcmp(a, "--layers") || !strcmp(a, "--threads") || !strcmp(a, "-o") || !strcmp(a, "--output");
        if (!takes) {
            fprintf(stderr, "kiln synth: unknown argument '%s'\n", a);
            usage(stderr);
            return KILN_EXIT_USAGE;
        }
        if (!val) {
            fprintf(stderr, "kiln synth: %s needs a value\n", a);
            return KILN_EXIT_USAGE;
        }
        i++;
        if (!strcmp(a, "--preset")) {
            if (!kiln_synth_preset_find(val)) {
                fprintf(stderr, "kiln synth: unknown preset '%s' (have %s)\n", val, kiln_synth_preset_names());
                return KILN_EXIT_USAGE;
            }
            o.preset = val;
        } else if (!strcmp(a, "--quant")) {
            if (!strcmp(val, "q4_0"))
                o.quant = KILN_GGML_Q4_0;
            else if (!strcmp(val, "q4_1"))
                o.quant = KILN_GGML_Q4_1;
            else if (!strcmp(val, "q8_0"))
                o.quant = KILN_GGML_Q8_0;
            else {
                fprintf(stderr, "kiln synth: --quant must be q4_0, q4_1 or q8_0, not '%s'\n", val);
                return KILN_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--seed")) {
            if (parse_num(a, val, ~0ull, &n))
                return KILN_EXIT_USAGE;
            o.seed = n;
        } else if (!strcmp(a, "--layers")) {
            if (parse_num(a, val, 4096, &n) || n == 0) {
                if (n == 0)
                    fprintf(stderr, "kiln synth: --layers must be at least 1\n");
                return KILN_EXIT_USAGE;
            }
            o.n_layer = (int)n;
        } else if (!strcmp(a, "--threads")) {
            if (parse_num(a, val, 256, &n))
                return KILN_EXIT_USAGE;
            o.threads = (int)n;
        } else {
            out = val;
        }
    }
    if (!o.preset || !out) {
        fprintf(stderr, "kiln synth: %s is required\n", !o.preset ? "--preset" : "-o OUT.gguf");
        usage(stderr);
        return KILN_EXIT_USAGE;
    }
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
