/* src/engine_cli.c - see engine_cli.h. */
#include "src/engine_cli.h"

/* src/meson.build generates it (tools/embed_db.c); "" unless -Dtuned_db */
extern const char kiln_embedded_db_json[];

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
           "  --temp T --top-k K --top-p P --min-p P --repeat-penalty R --repeat-last-n N --seed S\n"
           "                          sampling (default greedy: --temp 0)\n"
           "  --stop STR              stop string (repeatable)\n"
           "  --chat-template NAME    chatml | llama2 | llama3 | raw (default: from the GGUF)\n"
           "  --verbose               which tuned config (and match level) each kernel got\n"
           "  --json                  machine-readable summary\n";
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
    if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
        c->verbose = 1;
        return 1;
    }
    if (!strcmp(a, "--json")) {
        c->json = 1;
        return 1;
    }
#undef TAKE
#undef NUM
    return 0;
}

int kiln_engine_session_open(kiln_engine_session *s, const kiln_engine_cli *c, kiln_err *e)
{
    memset(s, 0, sizeof *s);
    if (!c->model)
        return kiln_fail(e, KILN_E_INVALID, "no model: give -m FILE.gguf");
    int rc = kiln_sampling_check(&c->sampling, e);
    if (rc)
        return rc;
    char path[1024];
    const char *dbp = c->db_path;
    if (!dbp && (dbp = getenv("KILN_DB")) == NULL && kiln_db_default_path(path, sizeof path) == 0)
        dbp = path;
    if (dbp && access(dbp, F_OK) == 0) {
        if ((rc = kiln_db_open(&s->db, dbp, e)))
            return kiln_err_wrap(e, "tuning database %s", dbp);
    } else if (c->db_path) {
        return kiln_fail(e, KILN_E_IO, "tuning database %s does not exist (run `tune` first, or leave out --db to use "
                         "the default configs)", c->db_path);
    } else if (kiln_embedded_db_json[0]) {
        /* a release build's embedded winners, looked up like a database file */
        if ((rc = kiln_db_open(&s->db, ":memory:", e)) || (rc = kiln_db_import(s->db, kiln_embedded_db_json, e)))
            return kiln_err_wrap(e, "embedded tuning database");
        if (c->verbose)
            fprintf(stderr, "kiln: no tuning database file (%s): using the winners embedded in this build\n",
                    dbp ? dbp : "no path");
    } else if (c->verbose) {
        fprintf(stderr, "kiln: no tuning database (%s): default configs\n", dbp ? dbp : "no path");
    }
    if ((rc = kiln_device_select(c->device, &s->dev, e)))
        goto fail;
    kiln_model_opts mo = {.progress = c->json ? NULL : stderr, .notes = stderr};
    if ((rc = kiln_model_load(&s->model, s->dev, c->model, &mo, e)))
        goto fail;
    s->model_loaded = 1;
    if (c->chat_template) {
        kiln_chat_kind k;
        if ((rc = kiln_chat_parse_name(c->chat_template, &k, e)))
            goto fail;
        s->model.chat = k;
    }
    kiln_engine_opts eo = {.ctx = c->ctx, .page_size = c->page_size, .chunk = c->chunk, .db = s->db,
                           .log = c->verbose ? stderr : NULL, .precision = c->precision};
    if ((rc = kiln_engine_init(&s->en, &s->model, &eo, e)))
        goto fail;
    s->engine_ready = 1;
    return 0;
fail:
    kiln_engine_session_close(s);
    return rc;
}

void kiln_engine_session_close(kiln_engine_session *s)
{
    if (s->engine_ready)
        kiln_engine_free(&s->en);
    if (s->model_loaded)
        kiln_model_free(&s->model);
    if (s->dev)
        kiln_device_close(s->dev);
    if (s->db)
        kiln_db_close(s->db);
    memset(s, 0, sizeof *s);
}
