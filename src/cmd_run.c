/* src/cmd_run.c - `kiln run`: one prompt through a model on one device,
 * the answer streamed, then prefill tok/s, decode tok/s, time to first
 * token and total time (--json for scripts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/commands.h"
#include "src/engine_cli.h"

static int print_text(void *user, const char *t, size_t n)
{
    (void)user;
    fwrite(t, 1, n, stdout);
    fflush(stdout);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kiln run -m MODEL.gguf -p PROMPT [options]\n"
               "  --raw                   the prompt as is (default: wrapped in the model's chat template as a user turn)\n"
               "  --system TEXT           system message for the chat template\n%s",
            kiln_engine_cli_help());
}

int cmd_run(int argc, char **argv)
{
    kiln_engine_cli c;
    kiln_engine_cli_defaults(&c);
    int raw = 0;
    const char *system = NULL;
    for (int i = 1; i < argc; i++) {
        int r = kiln_engine_cli_arg(&c, argc, argv, &i);
        if (r < 0)
            return KILN_EXIT_USAGE;
        if (r)
            continue;
        if (!strcmp(argv[i], "--raw"))
            raw = 1;
        else if (!strcmp(argv[i], "--system") && i + 1 < argc)
            system = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return KILN_EXIT_OK;
        } else {
            fprintf(stderr, "kiln run: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return KILN_EXIT_USAGE;
        }
    }
    if (!c.model || !c.prompt) {
        fprintf(stderr, "kiln run: -m MODEL and -p PROMPT are required\n");
        usage(stderr);
        return KILN_EXIT_USAGE;
    }
    kiln_err e = {0};
    kiln_engine_session s;
    if (kiln_engine_session_open(&s, &c, &e)) {
        fprintf(stderr, "kiln run: %s\n", e.msg);
        return kiln_exit_code(e.code);
    }
    kiln_model *m = &s.model;
    /* the prompt: the chat template's user turn unless --raw */
    char *text = NULL;
    size_t tlen = 0;
    int rc = 0;
    if (raw) {
        text = strdup(c.prompt);
        tlen = strlen(c.prompt);
        rc = text ? 0 : kiln_fail(&e, KILN_E_NOMEM, "out of memory");
    } else {
        kiln_chat_msg msgs[2];
        int n = 0;
        const char *def = NULL;
        size_t deflen = 0;
        const char *tmpl;
        size_t tl;
        char *sysbuf = NULL;
        if (!system && kiln_gguf_find(m->gguf, "tokenizer.chat_template") &&
            !kiln_gguf_get_str(m->gguf, "tokenizer.chat_template", &tmpl, &tl, NULL) &&
            kiln_chat_default_system(tmpl, tl, &def, &deflen) && def) {
            sysbuf = strndup(def, deflen);
            system = sysbuf;
        }
        if (system)
            msgs[n++] = (kiln_chat_msg){"system", system};
        msgs[n++] = (kiln_chat_msg){"user", c.prompt};
        rc = kiln_chat_format(m->chat, msgs, n, 1, &text, &tlen, &e);
        free(sysbuf);
    }
    int32_t *ids = NULL;
    int n_ids = 0;
    if (!rc) {
        kiln_tokenize(m->tok, text, tlen, -1, 1, NULL, 0, &n_ids, NULL); /* count */
        ids = malloc(sizeof *ids * (size_t)(n_ids + 1));
        rc = ids ? kiln_tokenize(m->tok, text, tlen, -1, 1, ids, n_ids + 1, &n_ids, &e)
                 : kiln_fail(&e, KILN_E_NOMEM, "out of memory");
    }
    kiln_kv_seq seq;
    int seq_ok = 0;
    if (!rc && !(rc = kiln_kv_seq_init(&seq, &s.en.kv, s.en.ctx, &e)))
        seq_ok = 1;
    kiln_gen_stats st = {0};
    if (!rc) {
        if (c.verbose)
            fprintf(stderr, "kiln: %d prompt tokens, %s on %s\n", n_ids, m->cfg.arch, s.dev->fp.name);
        kiln_gen_opts go = {.n_predict = c.n_predict, .sampling = c.sampling, .stop = c.stop, .n_stop = c.n_stop,
                            .on_text = c.json ? NULL : print_text};
        rc = kiln_generate(&s.en, &seq, ids, n_ids, &go, &st, NULL, 0, &e);
    }
    if (!rc) {
        double pp = st.prefill_s > 0 ? st.n_prompt / st.prefill_s : 0;
        double tg = st.decode_s > 0 ? st.n_decode / st.decode_s : 0;
        int counts[KILN_MATCH_DEFAULT + 1];
        kiln_ops_match_counts(s.en.ops, counts);
        if (c.json) {
            printf("{\"device\":\"%s:%d\",\"device_name\":\"%s\",\"model\":\"%s\",\"prompt_tokens\":%d,"
                   "\"generated_tokens\":%d,\"prefill_tok_s\":%.3f,\"decode_tok_s\":%.3f,\"ttft_ms\":%.3f,"
                   "\"total_s\":%.4f,\"load_ms\":%.1f,\"stop\":\"%s\",\"tuned_kernel_classes\":%d,"
                   "\"default_kernel_classes\":%d}\n",
                   kiln_backend_name(s.dev->backend), s.dev->index, s.dev->fp.name, c.model, st.n_prompt, st.n_gen,
                   pp, tg, st.ttft_s * 1e3, st.total_s, m->load_s * 1e3, kiln_stop_name(st.stop_reason),
                   counts[0] + counts[1] + counts[2] + counts[3], counts[KILN_MATCH_DEFAULT]);
        } else {
            printf("\n\n");
            fflush(stdout);
            fprintf(stderr, "model load    %.0f ms", m->load_s * 1e3);
            if (c.verbose)
                fprintf(stderr, " (gguf %.1f, weights %.1f ms; tokenizer %.1f ms alongside)", m->load_gguf_s * 1e3,
                        m->load_weights_s * 1e3, m->load_tokenizer_s * 1e3);
            fprintf(stderr,
                    "\n"
                    "device        %s:%d (%s)\n"
                    "prompt        %d tokens, prefill %.1f tok/s\n"
                    "generated     %d tokens (%s), decode %.1f tok/s\n"
                    "time to first token %.1f ms, total %.2f s\n"
                    "kernel configs: %d tuned, %d default (--verbose for each)\n",
                    kiln_backend_name(s.dev->backend), s.dev->index, s.dev->fp.name, st.n_prompt, pp, st.n_gen,
                    kiln_stop_name(st.stop_reason), tg, st.ttft_s * 1e3, st.total_s,
                    counts[0] + counts[1] + counts[2] + counts[3], counts[KILN_MATCH_DEFAULT]);
        }
    } else {
        fprintf(stderr, "kiln run: %s\n", e.msg);
    }
    kiln_gen_stats_free(&st);
    if (seq_ok)
        kiln_kv_seq_free(&seq);
    free(ids);
    free(text);
    kiln_engine_session_close(&s);
    return rc ? kiln_exit_code(e.code) : KILN_EXIT_OK;
}
