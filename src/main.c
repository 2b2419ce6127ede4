/* src/main.c - the `kiln` command: git-style subcommands. The same binary
 * installed (or linked) as `tune` runs `kiln tune`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_config.h"
#include "util/git_commit.h"
#include "devices/limits.h"
#include "src/commands.h"
#include "util/err.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"devices", cmd_devices, "list every device of every backend with fingerprint, copy and read bandwidth"},
    {"check", cmd_check, "verify every kernel x device x config x shape against the reference"},
    {"tune", cmd_tune, "search schedule variants on a device and store the winners"},
    {"db", cmd_db, "show, export, import, merge, diff and prune tuning databases"},
    {"run", cmd_run, "run a GGUF model on a prompt, report prefill/decode tok/s and TTFT"},
    {"chat", cmd_chat, "multi-turn chat keeping the KV cache between turns"},
    {"perplexity", cmd_perplexity, "perplexity of a model on a text file (llama-perplexity's scheme)"},
    {"synth", cmd_synth, "write a synthetic Llama GGUF model with random weights"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP API (chat/completions, streaming)"},
    {"bench", cmd_bench, "kernel and model benchmarks, regression compare"},
    {"report", cmd_report, "gnuplot figures and an HTML report from a database"},
};

static void usage(FILE *f)
{
    fprintf(f, "kiln %s (%s) - kernel autotuning and benchmarking for quantized Llama models\n\n"
               "usage: kiln <command> [options]   (kiln <command> --help or kiln help <command> for details)\n\n",
            KILN_VERSION, kiln_git_commit);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nexit codes: 0 ok, 1 failed (a wrong kernel, a malformed file, a damaged database, ...), 2 usage,\n"
               "3 unavailable (a device, backend or file that is not there or cannot be opened),\n"
               "13 a benchmark regression (kiln bench compare)\n"
               "\nevery command: --limits FILE|adreno-7xx|mali-g7x lowers the limits devices report (max workgroup,\n"
               "shared memory, subgroup size, f16/int8) to a phone GPU's, as $KILN_LIMITS does (devices/limits.h)\n");
}

/* --limits SPEC (or --limits=SPEC) anywhere after the command: checked,
 * exported as $KILN_LIMITS (every device this process or its workers open
 * applies it) and taken out of argv. 0, or the exit code of a bad SPEC. */
static int take_limits(int *argc, char **argv)
{
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        const char *spec = NULL;
        if (!strcmp(argv[i], "--limits")) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "kiln: --limits needs FILE or a profile (adreno-7xx, mali-g7x)\n");
                return KILN_EXIT_USAGE;
            }
            spec = argv[++i];
        } else if (!strncmp(argv[i], "--limits=", 9)) {
            spec = argv[i] + 9;
        } else {
            argv[out++] = argv[i];
            continue;
        }
        kiln_limits l;
        kiln_err e = {0};
        if (kiln_limits_parse(spec, &l, &e)) {
            fprintf(stderr, "kiln: --limits: %s\n", e.msg);
            return kiln_exit_code(e.code);
        }
        if (setenv(KILN_LIMITS_ENV, spec, 1)) {
            fprintf(stderr, "kiln: --limits: cannot set $%s\n", KILN_LIMITS_ENV);
            return KILN_EXIT_FAIL;
        }
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

int kiln_exit_code(int err_code)
{
    switch (err_code) {
    case KILN_OK: return KILN_EXIT_OK;
    case KILN_E_INVALID: return KILN_EXIT_USAGE;
    case KILN_E_UNAVAILABLE:
    case KILN_E_IO: return KILN_EXIT_UNAVAILABLE;
    default: return KILN_EXIT_FAIL;
    }
}

int main(int argc, char **argv)
{
    const char *self = strrchr(argv[0], '/');
    self = self ? self + 1 : argv[0];
    int lrc = take_limits(&argc, argv);
    if (lrc)
        return lrc;
    if (strcmp(self, "tune") == 0)
        return cmd_tune(argc, argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? KILN_EXIT_USAGE : KILN_EXIT_OK;
    }
    /* kiln help [COMMAND]: the same as kiln --help / kiln COMMAND --help */
    if (strcmp(argv[1], "help") == 0) {
        if (argc == 2) {
            usage(stdout);
            return KILN_EXIT_OK;
        }
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(argv[2], commands[i].name) == 0) {
                char *help_argv[] = {argv[2], "--help", NULL};
                return commands[i].fn(2, help_argv);
            }
        fprintf(stderr, "kiln help: unknown command '%s'\n\n", argv[2]);
        usage(stderr);
        return KILN_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("kiln %s (%s)\n", KILN_VERSION, kiln_git_commit);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "kiln: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return KILN_EXIT_USAGE;
}
