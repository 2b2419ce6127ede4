/* src/cmd_perplexity.c - `kiln perplexity`: the perplexity of a model on a
 * text file, in llama-perplexity's scheme (engine/perplexity.h), with its
 * standard error, the tokens scored and the speed. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/perplexity.h"
#include "src/commands.h"
#include "src/engine_cli.h"

/* The whole file; KILN_E_IO when it cannot be read, KILN_E_INVALID when empty. */
static int read_text(const char *path, char **text, size_t *len, kiln_err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return kiln_fail(e, KILN_E_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            return kiln_fail(e, KILN_E_NOMEM, "%s: no memory to read it", path);
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *grown = realloc(buf, cap *= 2);
        if (!grown)
            free(buf);
        buf = grown;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return kiln_fail(e, KILN_E_IO, "%s: read error", path);
    }
    if (n == 0) {
        free(buf);
        return kiln_fail(e, KILN_E_INVALID, "%s is empty: there is no text to score", path);
    }
    *text = buf;
    *len = n;
    return 0;
}

static void progress(void *user, int done, int n, double ppl)
{
    (void)user;
    fprintf(stderr, "\rchunk %d/%d, PPL %.4f   ", done, n, ppl);
    fflush(stderr);
}

int cmd_perplexity(int argc, char **argv)
{
    kiln_engine_cli c;
    kiln_engine_cli_defaults(&c);
    const char *file = NULL;
    int ctx = 512, max_chunks = 0;
    /* the engine options that mean something here; sampling and prompts do not */
    static const char *const shared[] = {"--model", "--device", "--db", "--chunk", "--page-size", "--threads",
                                         "--precision", "--kv-type", "--verbose", "--json", NULL};
    kiln_opt engine[16];
    int ne = 0;
    for (const kiln_opt *o = c.opts; o->name; o++)
        for (int k = 0; shared[k]; k++)
            if (!strcmp(o->name, shared[k]) && ne < 15)
                engine[ne++] = *o;
    engine[ne] = (kiln_opt){0};
    const kiln_opt own[] = {
        {"--file", "-f", KILN_OPT_STR, &file, .arg = "FILE",
         .help = "the text (UTF-8); tokenized whole, with BOS where the model adds it"},
        {"--ctx", NULL, KILN_OPT_INT, &ctx, KILN_PPL_MIN_CTX, 1 << 24, .arg = "N",
         .help = "tokens per chunk (default 512); each chunk runs on a fresh KV cache, its\n"
                 "first half is context and every later token is scored"},
        {"--chunks", NULL, KILN_OPT_INT, &max_chunks, 1, 1 << 24, .arg = "N",
         .help = "evaluate at most N chunks (default: every whole chunk)"},
        {0},
    };
    const kiln_opt *tables[] = {own, engine, NULL};
    int prc = kiln_args_parse(
        "kiln perplexity",
        "usage: kiln perplexity -m MODEL.gguf -f FILE [options]\n"
        "Prints PPL +/- its standard error (llama.cpp's: PPL * stddev(nll) / sqrt(n - 1)), the tokens scored and\n"
        "tokens/s (tokens run through the model per second). Exit codes: 0 ok, 1 failed (a malformed model file),\n"
        "2 bad usage or a text that is empty or shorter than one chunk, 3 model/text file or device unavailable.\n",
        tables, argc, argv, 1, NULL, 0, NULL);
    if (prc)
        return prc == KILN_ARGS_HELP ? KILN_EXIT_OK : prc;
    if (!c.model || !file)
        return kiln_args_usage_error("kiln perplexity", "-m MODEL and -f FILE are required");
    kiln_err e = {0};
    char *text = NULL;
    size_t tlen = 0;
    if (read_text(file, &text, &tlen, &e)) { /* before the model: a wrong path fails fast */
        fprintf(stderr, "kiln perplexity: %s\n", e.msg);
        return kiln_exit_code(e.code);
    }
    c.ctx = ctx; /* the KV cache holds one chunk */
    kiln_session s;
    kiln_session_opts so;
    if (kiln_engine_cli_session_opts(&c, &so, &e) || kiln_session_open(&s, &so, &e)) {
        fprintf(stderr, "kiln perplexity: %s\n", e.msg);
        free(text);
        return kiln_exit_code(e.code);
    }
    kiln_model *m = &s.model;
    if (m->cfg.context_length > 0 && ctx > m->cfg.context_length)
        fprintf(stderr, "kiln perplexity: warning: --ctx %d is longer than the model's training context %d\n", ctx,
                m->cfg.context_length);
    int n_tok = 0, rc = 0;
    int32_t *ids = NULL;
    kiln_tokenize(m->tok, text, tlen, -1, 0, NULL, 0, &n_tok, NULL); /* count */
    if (!(ids = malloc(sizeof *ids * (size_t)(n_tok + 1))))
        rc = kiln_fail(&e, KILN_E_NOMEM, "no memory for %d tokens", n_tok);
    else
        rc = kiln_tokenize(m->tok, text, tlen, -1, 0, ids, n_tok + 1, &n_tok, &e);
    int bos = kiln_tokenizer_add_bos(m->tok) ? kiln_tokenizer_bos(m->tok) : -1;
    int tty = !c.json && isatty(fileno(stderr));
    kiln_ppl_opts po = {.ctx = ctx, .max_chunks = max_chunks, .bos = bos, .progress = tty ? progress : NULL};
    kiln_ppl_result r;
    if (!rc) {
        if (c.verbose)
            fprintf(stderr, "kiln: %s: %d tokens, %d chunks of %d, BOS %s, on %s\n", file, n_tok,
                    kiln_ppl_n_chunks(n_tok, ctx, max_chunks), ctx, bos >= 0 ? "replaces each chunk's first token"
                                                                          : "none", s.dev->fp.name);
        rc = kiln_perplexity(&s.en, ids, n_tok, &po, &r, &e);
        if (tty)
            fputc('\n', stderr);
    }
    if (rc) {
        fprintf(stderr, "kiln perplexity: %s: %s\n", file, e.msg);
    } else {
        double tps = r.seconds > 0 ? (double)r.n_evaluated / r.seconds : 0;
        const char *prec = c.precision == KILN_PRECISION_STRICT ? "strict" : "fast";
        const char *kvt = kiln_kv_type_name(kiln_engine_cli_kv_type(&c));
        char dev[64];
        snprintf(dev, sizeof dev, "%s:%d", kiln_backend_name(s.dev->backend), s.dev->index);
        if (c.json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "model", c.model);
            cJSON_AddStringToObject(o, "file", file);
            cJSON_AddStringToObject(o, "device", dev);
            cJSON_AddStringToObject(o, "device_name", s.dev->fp.name);
            cJSON_AddStringToObject(o, "precision", prec);
            cJSON_AddStringToObject(o, "kv_type", kvt);
            cJSON_AddNumberToObject(o, "ctx", ctx);
            cJSON_AddNumberToObject(o, "text_tokens", n_tok);
            cJSON_AddBoolToObject(o, "bos", bos >= 0);
            cJSON_AddNumberToObject(o, "chunks", r.n_chunks);
            cJSON_AddNumberToObject(o, "tokens_scored", (double)r.n_scored);
            cJSON_AddNumberToObject(o, "tokens_evaluated", (double)r.n_evaluated);
            cJSON_AddNumberToObject(o, "ppl", r.ppl);
            cJSON_AddNumberToObject(o, "ppl_err", r.ppl_err);
            cJSON_AddNumberToObject(o, "nll_mean", r.nll_mean);
            cJSON_AddNumberToObject(o, "nll_std", r.nll_std);
            cJSON_AddNumberToObject(o, "seconds", r.seconds);
            cJSON_AddNumberToObject(o, "tok_s", tps);
            char *js = cJSON_PrintUnformatted(o);
            printf("%s\n", js ? js : "{}");
            free(js);
            cJSON_Delete(o);
        } else {
            printf("model       %s\n"
                   "device      %s (%s), precision %s, kv %s\n"
                   "text        %s: %d tokens, %d chunk%s of %d%s\n"
                   "PPL         %.4f ± %.4f  (%lld tokens scored: the second half of each chunk)\n"
                   "speed       %.1f tok/s  (%lld tokens through the model in %.2f s)\n",
                   c.model, dev, s.dev->fp.name, prec, kvt, file, n_tok, r.n_chunks, r.n_chunks == 1 ? "" : "s", ctx,
                   bos >= 0 ? ", BOS first" : "", r.ppl, r.ppl_err, r.n_scored, tps, r.n_evaluated, r.seconds);
        }
    }
    free(ids);
    free(text);
    kiln_session_close(&s);
    return rc ? kiln_exit_code(e.code) : KILN_EXIT_OK;
}
