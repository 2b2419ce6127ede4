/* src/cmd_run.c - `kiln run`: one prompt through a model on one device,
 * the answer streamed, then prefill tok/s, decode tok/s, time to first
 * token and total time (--json for scripts); --profile adds where the time
 * of a prefill chunk and of a decode step goes, op by op. */
#include <cjson/cJSON.h>
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

/* The prompt's token ids: the chat template's user turn (with --system or
 * the template's own system message), or the text as is with --raw. */
static int prompt_ids(const kiln_session *s, const char *prompt, const char *system, int raw, int32_t **ids, int *n,
                      kiln_err *e)
{
    if (raw)
        return kiln_session_tokenize(s, prompt, strlen(prompt), -1, 1, ids, n, e);
    kiln_chat_msg msgs[2];
    int n_msgs = 0;
    if (system)
        msgs[n_msgs++] = (kiln_chat_msg){"system", system};
    msgs[n_msgs++] = (kiln_chat_msg){"user", prompt};
    char *text = NULL;
    size_t len = 0;
    int rc = kiln_session_chat_prompt(s, msgs, n_msgs, &text, &len, e);
    if (!rc)
        rc = kiln_session_tokenize(s, text, len, -1, 1, ids, n, e);
    free(text);
    return rc;
}

static void report(const kiln_session *s, const kiln_engine_cli *c, const kiln_gen_stats *st)
{
    kiln_timings t;
    kiln_session_timings(s, st, &t);
    int tuned, deflt;
    kiln_session_configs(s, &tuned, &deflt);
    if (c->json) {
        /* cJSON escapes the strings (a model path or device name with a quote
         * stays valid JSON) and writes non-finite rates as null */
        char dev[64];
        snprintf(dev, sizeof dev, "%s:%d", kiln_backend_name(s->dev->backend), s->dev->index);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "device", dev);
        cJSON_AddStringToObject(o, "device_name", s->dev->fp.name);
        cJSON_AddStringToObject(o, "model", c->model);
        cJSON_AddNumberToObject(o, "prompt_tokens", t.n_prompt);
        cJSON_AddNumberToObject(o, "generated_tokens", t.n_gen);
        cJSON_AddNumberToObject(o, "load_ms", t.load_ms);
        cJSON_AddNumberToObject(o, "prefill_tok_s", t.prefill_tok_s);
        cJSON_AddNumberToObject(o, "decode_tok_s", t.decode_tok_s);
        cJSON_AddNumberToObject(o, "ttft_ms", t.ttft_ms);
        cJSON_AddNumberToObject(o, "total_s", t.total_s);
        cJSON_AddStringToObject(o, "stop", kiln_stop_name(st->stop_reason));
        cJSON_AddNumberToObject(o, "tuned_kernel_classes", tuned);
        cJSON_AddNumberToObject(o, "default_kernel_classes", deflt);
        char *txt = cJSON_PrintUnformatted(o);
        if (txt)
            printf("%s\n", txt);
        else
            fprintf(stderr, "kiln run: out of memory writing the JSON summary\n");
        free(txt);
        cJSON_Delete(o);
        return;
    }
    printf("\n\n");
    fflush(stdout);
    char dev[256];
    kiln_session_device_name(s, dev, sizeof dev);
    const kiln_model *m = &s->model;
    if (c->verbose)
        fprintf(stderr, "model load    %.0f ms: gguf %.1f, weights %.1f ms; tokenizer %.1f ms alongside\n",
                m->load_s * 1e3, m->load_gguf_s * 1e3, m->load_weights_s * 1e3, m->load_tokenizer_s * 1e3);
    fprintf(stderr,
            "device        %s, loaded in %.0f ms\n"
            "prompt        %d tokens, prefill %.1f tok/s\n"
            "generated     %d tokens (%s), decode %.1f tok/s\n"
            "time to first token %.1f ms, total %.2f s\n"
            "kernel configs: %d tuned, %d default (--verbose for each)\n",
            dev, t.load_ms, t.n_prompt, t.prefill_tok_s, t.n_gen, kiln_stop_name(st->stop_reason), t.decode_tok_s,
            t.ttft_ms, t.total_s, tuned, deflt);
}

int cmd_run(int argc, char **argv)
{
    kiln_engine_cli c; /* c.opts points into it: it stays here */
    kiln_engine_cli_defaults(&c);
    int raw = 0;
    const char *system = NULL;
    const kiln_opt own[] = {
        {"--raw", NULL, KILN_OPT_FLAG, &raw,
         .help = "the prompt as is (default: wrapped in the model's chat template as a user turn)"},
        {"--system", NULL, KILN_OPT_STR, &system, .arg = "TEXT", .help = "system message for the chat template"},
        {0},
    };
    const kiln_opt *tables[] = {c.opts, own, NULL};
    int rc = kiln_args_parse("kiln run",
                             "usage: kiln run -m MODEL.gguf -p PROMPT [options]\n"
                             "exit: 0 ok, 1 failed (a malformed model file), 2 usage, 3 device or file unavailable\n",
                             tables, argc, argv, 1, NULL, 0, NULL);
    if (rc)
        return rc == KILN_ARGS_HELP ? KILN_EXIT_OK : rc;
    if (!c.model || !c.prompt)
        return kiln_args_usage_error("kiln run", "-m MODEL and -p PROMPT are required");
    kiln_err e = {0};
    kiln_session_opts so;
    kiln_session s;
    if (kiln_engine_cli_session_opts(&c, &so, &e) || kiln_session_open(&s, &so, &e)) {
        fprintf(stderr, "kiln run: %s\n", e.msg);
        return kiln_exit_code(e.code);
    }
    int32_t *ids = NULL;
    int n_ids = 0, seq_ok = 0;
    kiln_kv_seq seq;
    kiln_gen_stats st = {0};
    rc = prompt_ids(&s, c.prompt, system, raw, &ids, &n_ids, &e);
    if (!rc && !(rc = kiln_session_seq(&s, &seq, &e)))
        seq_ok = 1;
    if (!rc) {
        if (c.verbose)
            fprintf(stderr, "kiln: %d prompt tokens, %s on %s\n", n_ids, s.model.cfg.arch, s.dev->fp.name);
        kiln_gen_opts go = {.n_predict = c.n_predict, .sampling = c.sampling, .stop = c.stop, .n_stop = c.n_stop,
                            .on_text = c.json ? NULL : print_text};
        rc = kiln_session_generate(&s, &seq, ids, n_ids, &go, &st, NULL, 0, &e);
    }
    if (!rc) {
        report(&s, &c, &st);
        if (c.profile)
            kiln_session_print_profile(&s, stderr);
    } else {
        fprintf(stderr, "kiln run: %s\n", e.msg);
    }
    kiln_gen_stats_free(&st);
    if (seq_ok)
        kiln_kv_seq_free(&seq);
    free(ids);
    kiln_session_close(&s);
    return rc ? kiln_exit_code(e.code) : KILN_EXIT_OK;
}
