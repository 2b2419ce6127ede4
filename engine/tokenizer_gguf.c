/* engine/tokenizer_gguf.c - kiln_vocab_desc from a GGUF file's tokenizer.ggml.* keys. */
#include "engine/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"

static int opt_id(const kiln_gguf *g, const char *key, int *out, kiln_err *e)
{
    *out = -1;
    if (!kiln_gguf_find(g, key))
        return 0;
    int32_t v;
    int rc = kiln_gguf_get_i32(g, key, &v, e);
    if (rc)
        return rc;
    *out = v;
    return 0;
}

static int opt_bool(const kiln_gguf *g, const char *key, int dflt, int *out, kiln_err *e)
{
    *out = dflt;
    if (!kiln_gguf_find(g, key))
        return 0;
    return kiln_gguf_get_bool(g, key, out, e);
}

/* Copies the string under key into buf (NUL-terminated); `what` says what it
 * should name in the error when it does not fit. */
static int copy_str(const kiln_gguf *g, const char *key, char *buf, size_t cap, const char *what, kiln_err *e)
{
    const char *s;
    size_t sl;
    int rc = kiln_gguf_get_str(g, key, &s, &sl, e);
    if (rc)
        return rc;
    if (sl >= cap)
        return kiln_fail(e, KILN_E_FORMAT, "%s: '%.*s' is not a known %s", key, (int)sl, s, what);
    memcpy(buf, s, sl);
    buf[sl] = 0;
    return 0;
}

/* The arrays a kiln_vocab_desc points to; their strings stay in the mapping. */
typedef struct vocab_arrays {
    const char **tokens, **merges;
    size_t *token_lens, *merge_lens;
    float *scores;
    int32_t *types;
} vocab_arrays;

static void vocab_arrays_free(vocab_arrays *a)
{
    free(a->tokens);
    free(a->token_lens);
    free(a->merges);
    free(a->merge_lens);
    free(a->scores);
    free(a->types);
}

static int read_tokens(const kiln_gguf *g, vocab_arrays *a, uint64_t *n, kiln_err *e)
{
    kiln_err local = {0}; /* kiln_gguf_arr reports through e only: keep its code when the caller passed none */
    if (!e)
        e = &local;
    int et;
    const kiln_gguf_kv *tk = kiln_gguf_arr(g, "tokenizer.ggml.tokens", &et, n, e);
    if (!tk)
        return e->code;
    if (et != KILN_GGUF_STRING || *n == 0 || *n > 0x7fffffff)
        return kiln_fail(e, KILN_E_FORMAT, "tokenizer.ggml.tokens: expected a non-empty string array, got %s[%llu]",
                         kiln_gguf_type_name(et), (unsigned long long)*n);
    a->tokens = malloc(*n * sizeof *a->tokens);
    a->token_lens = malloc(*n * sizeof *a->token_lens);
    if (!a->tokens || !a->token_lens)
        return kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory for %llu tokens", (unsigned long long)*n);
    for (uint64_t i = 0; i < *n; i++)
        a->tokens[i] = kiln_gguf_arr_str(tk, i, &a->token_lens[i]);
    return 0;
}

/* tokenizer.ggml.scores, if present: n floats. */
static int read_scores(const kiln_gguf *g, vocab_arrays *a, uint64_t n, kiln_err *e)
{
    const kiln_gguf_kv *kv = kiln_gguf_find(g, "tokenizer.ggml.scores");
    if (!kv)
        return 0;
    if (kv->type != KILN_GGUF_ARRAY || kv->arr_count != n ||
        (kv->arr_type != KILN_GGUF_F32 && kv->arr_type != KILN_GGUF_F64))
        return kiln_fail(e, KILN_E_FORMAT, "tokenizer.ggml.scores: expected %llu floats", (unsigned long long)n);
    if (!(a->scores = malloc(n * sizeof *a->scores)))
        return kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory");
    for (uint64_t i = 0; i < n; i++)
        a->scores[i] = kiln_gguf_arr_f32(kv, i);
    return 0;
}

/* tokenizer.ggml.token_type, if present: n integers. */
static int read_types(const kiln_gguf *g, vocab_arrays *a, uint64_t n, kiln_err *e)
{
    const kiln_gguf_kv *kv = kiln_gguf_find(g, "tokenizer.ggml.token_type");
    if (!kv)
        return 0;
    if (kv->type != KILN_GGUF_ARRAY || kv->arr_count != n || kv->arr_type == KILN_GGUF_STRING ||
        kv->arr_type == KILN_GGUF_F32 || kv->arr_type == KILN_GGUF_F64)
        return kiln_fail(e, KILN_E_FORMAT, "tokenizer.ggml.token_type: expected %llu integers", (unsigned long long)n);
    if (!(a->types = malloc(n * sizeof *a->types)))
        return kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory");
    for (uint64_t i = 0; i < n; i++)
        a->types[i] = kiln_gguf_arr_i32(kv, i);
    return 0;
}

/* tokenizer.ggml.merges, if present (*nm = 0 otherwise). */
static int read_merges(const kiln_gguf *g, vocab_arrays *a, uint64_t *nm, kiln_err *e)
{
    *nm = 0;
    const kiln_gguf_kv *kv = kiln_gguf_find(g, "tokenizer.ggml.merges");
    if (!kv)
        return 0;
    if (kv->type != KILN_GGUF_ARRAY || kv->arr_type != KILN_GGUF_STRING || kv->arr_count > 0x7fffffff)
        return kiln_fail(e, KILN_E_FORMAT, "tokenizer.ggml.merges: expected a string array");
    *nm = kv->arr_count;
    a->merges = malloc((*nm ? *nm : 1) * sizeof *a->merges);
    a->merge_lens = malloc((*nm ? *nm : 1) * sizeof *a->merge_lens);
    if (!a->merges || !a->merge_lens)
        return kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory for %llu merges", (unsigned long long)*nm);
    for (uint64_t i = 0; i < *nm; i++)
        a->merges[i] = kiln_gguf_arr_str(kv, i, &a->merge_lens[i]);
    return 0;
}

/* Special ids and flags, with the defaults of the model kind (spm: "llama"). */
static int read_specials(const kiln_gguf *g, int spm, kiln_vocab_desc *d, kiln_err *e)
{
    int rc;
    if ((rc = opt_id(g, "tokenizer.ggml.bos_token_id", &d->bos, e)) ||
        (rc = opt_id(g, "tokenizer.ggml.eos_token_id", &d->eos, e)) ||
        (rc = opt_id(g, "tokenizer.ggml.eot_token_id", &d->eot, e)) ||
        (rc = opt_id(g, "tokenizer.ggml.unknown_token_id", &d->unk, e)) ||
        (rc = opt_id(g, "tokenizer.ggml.padding_token_id", &d->pad, e)) ||
        (rc = opt_bool(g, "tokenizer.ggml.add_bos_token", spm, &d->add_bos, e)) ||
        (rc = opt_bool(g, "tokenizer.ggml.add_space_prefix", spm, &d->add_space_prefix, e)))
        return rc;
    return 0;
}

int kiln_tokenizer_from_gguf(const kiln_gguf *g, kiln_tokenizer **out, kiln_err *e)
{
    *out = NULL;
    kiln_vocab_desc d = {0};
    char model[32] = "", pre[64] = "default";
    vocab_arrays a = {0};
    uint64_t n = 0, nm = 0;
    int rc = copy_str(g, "tokenizer.ggml.model", model, sizeof model, "model", e);
    if (!rc && kiln_gguf_find(g, "tokenizer.ggml.pre"))
        rc = copy_str(g, "tokenizer.ggml.pre", pre, sizeof pre, "pre-tokenizer", e);
    if (!rc && !(rc = read_tokens(g, &a, &n, e)) && !(rc = read_scores(g, &a, n, e)) &&
        !(rc = read_types(g, &a, n, e)) && !(rc = read_merges(g, &a, &nm, e)))
        rc = read_specials(g, !strcmp(model, "llama"), &d, e);
    if (!rc) {
        d.model = model;
        d.pre = pre;
        d.n_tokens = (int)n;
        d.tokens = a.tokens;
        d.token_lens = a.token_lens;
        d.scores = a.scores;
        d.types = a.types;
        d.n_merges = (int)nm;
        d.merges = a.merges;
        d.merge_lens = a.merge_lens;
        rc = kiln_tokenizer_new(&d, out, e);
        if (rc == KILN_E_INVALID && e)
            e->code = rc = KILN_E_FORMAT; /* a bad vocabulary in a file is a format problem */
    }
    if (rc && e)
        kiln_err_wrap(e, "%s", kiln_gguf_path(g));
    vocab_arrays_free(&a);
    return rc;
}
