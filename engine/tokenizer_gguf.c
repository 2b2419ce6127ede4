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

int kiln_tokenizer_from_gguf(const kiln_gguf *g, kiln_tokenizer **out, kiln_err *e)
{
    *out = NULL;
    kiln_vocab_desc d = {0};
    char model[32] = "", pre[64] = "default";
    const char **tokens = NULL, **merges = NULL;
    size_t *token_lens = NULL, *merge_lens = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    int rc;
    const char *s;
    size_t sl;
    if ((rc = kiln_gguf_get_str(g, "tokenizer.ggml.model", &s, &sl, e)))
        goto done;
    if (sl >= sizeof model) {
        rc = kiln_fail(e, KILN_E_FORMAT, "tokenizer.ggml.model: '%.*s' is not a known model", (int)sl, s);
        goto done;
    }
    memcpy(model, s, sl);
    model[sl] = 0;
    if (kiln_gguf_find(g, "tokenizer.ggml.pre")) {
        if ((rc = kiln_gguf_get_str(g, "tokenizer.ggml.pre", &s, &sl, e)))
            goto done;
        if (sl >= sizeof pre) {
            rc = kiln_fail(e, KILN_E_FORMAT, "tokenizer.ggml.pre: '%.*s' is not a known pre-tokenizer", (int)sl, s);
            goto done;
        }
        memcpy(pre, s, sl);
        pre[sl] = 0;
    }
    int et;
    uint64_t n;
    const kiln_gguf_kv *tk = kiln_gguf_arr(g, "tokenizer.ggml.tokens", &et, &n, e);
    if (!tk) {
        rc = e ? e->code : KILN_E_FORMAT;
        goto done;
    }
    if (et != KILN_GGUF_STRING || n == 0 || n > 0x7fffffff) {
        rc = kiln_fail(e, KILN_E_FORMAT, "tokenizer.ggml.tokens: expected a non-empty string array, got %s[%llu]",
                       kiln_gguf_type_name(et), (unsigned long long)n);
        goto done;
    }
    tokens = malloc(n * sizeof *tokens);
    token_lens = malloc(n * sizeof *token_lens);
    if (!tokens || !token_lens) {
        rc = kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory for %llu tokens", (unsigned long long)n);
        goto done;
    }
    for (uint64_t i = 0; i < n; i++)
        tokens[i] = kiln_gguf_arr_str(tk, i, &token_lens[i]);

    const kiln_gguf_kv *kv = kiln_gguf_find(g, "tokenizer.ggml.scores");
    if (kv) {
        if (kv->type != KILN_GGUF_ARRAY || kv->arr_count != n ||
            (kv->arr_type != KILN_GGUF_F32 && kv->arr_type != KILN_GGUF_F64)) {
            rc = kiln_fail(e, KILN_E_FORMAT, "tokenizer.ggml.scores: expected %llu floats", (unsigned long long)n);
            goto done;
        }
        if (!(scores = malloc(n * sizeof *scores))) {
            rc = kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory");
            goto done;
        }
        for (uint64_t i = 0; i < n; i++)
            scores[i] = kiln_gguf_arr_f32(kv, i);
    }
    kv = kiln_gguf_find(g, "tokenizer.ggml.token_type");
    if (kv) {
        if (kv->type != KILN_GGUF_ARRAY || kv->arr_count != n || kv->arr_type == KILN_GGUF_STRING ||
            kv->arr_type == KILN_GGUF_F32 || kv->arr_type == KILN_GGUF_F64) {
            rc = kiln_fail(e, KILN_E_FORMAT, "tokenizer.ggml.token_type: expected %llu integers",
                           (unsigned long long)n);
            goto done;
        }
        if (!(types = malloc(n * sizeof *types))) {
            rc = kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory");
            goto done;
        }
        for (uint64_t i = 0; i < n; i++)
            types[i] = kiln_gguf_arr_i32(kv, i);
    }
    uint64_t nm = 0;
    kv = kiln_gguf_find(g, "tokenizer.ggml.merges");
    if (kv) {
        if (kv->type != KILN_GGUF_ARRAY || kv->arr_type != KILN_GGUF_STRING || kv->arr_count > 0x7fffffff) {
            rc = kiln_fail(e, KILN_E_FORMAT, "tokenizer.ggml.merges: expected a string array");
            goto done;
        }
        nm = kv->arr_count;
        merges = malloc((nm ? nm : 1) * sizeof *merges);
        merge_lens = malloc((nm ? nm : 1) * sizeof *merge_lens);
        if (!merges || !merge_lens) {
            rc = kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory for %llu merges", (unsigned long long)nm);
            goto done;
        }
        for (uint64_t i = 0; i < nm; i++)
            merges[i] = kiln_gguf_arr_str(kv, i, &merge_lens[i]);
    }
    int spm = !strcmp(model, "llama");
    if ((rc = opt_id(g, "tokenizer.ggml.bos_token_id", &d.bos, e)) ||
        (rc = opt_id(g, "tokenizer.ggml.eos_token_id", &d.eos, e)) ||
        (rc = opt_id(g, "tokenizer.ggml.eot_token_id", &d.eot, e)) ||
        (rc = opt_id(g, "tokenizer.ggml.unknown_token_id", &d.unk, e)) ||
        (rc = opt_id(g, "tokenizer.ggml.padding_token_id", &d.pad, e)) ||
        (rc = opt_bool(g, "tokenizer.ggml.add_bos_token", spm, &d.add_bos, e)) ||
        (rc = opt_bool(g, "tokenizer.ggml.add_space_prefix", spm, &d.add_space_prefix, e)))
        goto done;
    d.model = model;
    d.pre = pre;
    d.n_tokens = (int)n;
    d.tokens = tokens;
    d.token_lens = token_lens;
    d.scores = scores;
    d.types = types;
    d.n_merges = (int)nm;
    d.merges = merges;
    d.merge_lens = merge_lens;
    rc = kiln_tokenizer_new(&d, out, e);
    if (rc == KILN_E_INVALID && e)
        e->code = rc = KILN_E_FORMAT; /* a bad vocabulary in a file is a format problem */
done:
    if (rc && e)
        kiln_err_wrap(e, "%s", kiln_gguf_path(g));
    free(tokens);
    free(token_lens);
    free(merges);
    free(merge_lens);
    free(scores);
    free(types);
    return rc;
}
