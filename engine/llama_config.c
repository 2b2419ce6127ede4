/* engine/llama_config.c - see llama_config.h. */
#include "engine/llama_config.h"

#include <stdio.h>
#include <string.h>

#include "engine/gguf_dequant.h"
#include "engine/rope_scaling.h"

/* Optional u32 key under the arch prefix: *out unchanged when absent. */
static int opt_u32(const kiln_gguf *g, const char *arch, const char *suffix, int *out, kiln_err *e)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!kiln_gguf_find(g, key))
        return 0;
    uint32_t v;
    int rc = kiln_gguf_get_u32(g, key, &v, e);
    if (rc)
        return rc;
    if (v > 1u << 30)
        return kiln_fail(e, KILN_E_FORMAT, "%s: metadata '%s' = %u is implausibly large", kiln_gguf_path(g), key, v);
    *out = (int)v;
    return 0;
}

static int req_u32(const kiln_gguf *g, const char *arch, const char *suffix, int *out, kiln_err *e)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!kiln_gguf_find(g, key))
        return kiln_fail(e, KILN_E_FORMAT, "%s: metadata key '%s' is missing", kiln_gguf_path(g), key);
    return opt_u32(g, arch, suffix, out, e);
}

static int opt_f32(const kiln_gguf *g, const char *arch, const char *suffix, float *out, kiln_err *e)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!kiln_gguf_find(g, key))
        return 0;
    return kiln_gguf_get_f32(g, key, out, e);
}

int kiln_llama_config_read(const kiln_gguf *g, kiln_llama_config *c, kiln_err *e)
{
    const char *path = kiln_gguf_path(g);
    memset(c, 0, sizeof *c);
    const char *a;
    size_t alen;
    int rc = kiln_gguf_get_str(g, "general.architecture", &a, &alen, e);
    if (rc)
        return rc;
    if (!((alen == 5 && !memcmp(a, "llama", 5)) || (alen == 7 && !memcmp(a, "mistral", 7)) ||
          (alen == 5 && !memcmp(a, "qwen2", 5))))
        return kiln_fail(e, KILN_E_FORMAT,
                         "%s: unsupported architecture '%.*s' (Kiln runs llama, mistral and qwen2)", path,
                         (int)(alen > 64 ? 64 : alen), a);
    memcpy(c->arch, a, alen);
    c->arch[alen] = 0;
    const char *A = c->arch;
    if ((rc = req_u32(g, A, "embedding_length", &c->n_embd, e)) || (rc = req_u32(g, A, "block_count", &c->n_layer, e)) ||
        (rc = req_u32(g, A, "feed_forward_length", &c->n_ff, e)) ||
        (rc = req_u32(g, A, "attention.head_count", &c->n_head, e)))
        return rc;
    c->n_head_kv = c->n_head;
    if ((rc = opt_u32(g, A, "attention.head_count_kv", &c->n_head_kv, e)) ||
        (rc = opt_u32(g, A, "context_length", &c->context_length, e)))
        return rc;
    if (c->n_embd <= 0 || c->n_layer <= 0 || c->n_ff <= 0 || c->n_head <= 0 || c->n_head_kv <= 0)
        return kiln_fail(e, KILN_E_FORMAT,
                         "%s: %s: non-positive size (embedding_length %d, block_count %d, feed_forward_length %d, "
                         "head_count %d, head_count_kv %d)",
                         path, A, c->n_embd, c->n_layer, c->n_ff, c->n_head, c->n_head_kv);
    if (c->n_head % c->n_head_kv)
        return kiln_fail(e, KILN_E_FORMAT, "%s: %s.attention.head_count %d is not a multiple of head_count_kv %d", path,
                         A, c->n_head, c->n_head_kv);
    c->head_dim = c->n_embd % c->n_head ? 0 : c->n_embd / c->n_head;
    if ((rc = opt_u32(g, A, "attention.key_length", &c->head_dim, e)))
        return rc;
    if (c->head_dim <= 0)
        return kiln_fail(e, KILN_E_FORMAT,
                         "%s: %s.embedding_length %d is not a multiple of head_count %d and no attention.key_length",
                         path, A, c->n_embd, c->n_head);
    int vlen = c->head_dim;
    if ((rc = opt_u32(g, A, "attention.value_length", &vlen, e)))
        return rc;
    if (vlen != c->head_dim)
        return kiln_fail(e, KILN_E_FORMAT, "%s: %s.attention.value_length %d differs from key_length %d (unsupported)",
                         path, A, vlen, c->head_dim);
    c->rope_dim = c->head_dim;
    if ((rc = opt_u32(g, A, "rope.dimension_count", &c->rope_dim, e)))
        return rc;
    if (c->rope_dim <= 0 || c->rope_dim > c->head_dim || c->rope_dim % 2)
        return kiln_fail(e, KILN_E_FORMAT, "%s: %s.rope.dimension_count %d must be even and in 2..head_dim (%d)", path,
                         A, c->rope_dim, c->head_dim);
    c->rope_theta = 10000.0f;
    c->rms_eps = 1e-5f;
    c->rope_scale = 1.0f;
    if ((rc = opt_f32(g, A, "rope.freq_base", &c->rope_theta, e)) ||
        (rc = opt_f32(g, A, "attention.layer_norm_rms_epsilon", &c->rms_eps, e)))
        return rc;
    if (!(c->rope_theta > 0) || !(c->rms_eps > 0) || !(c->rms_eps < 1))
        return kiln_fail(e, KILN_E_FORMAT, "%s: %s: bad rope.freq_base %g or layer_norm_rms_epsilon %g", path, A,
                         (double)c->rope_theta, (double)c->rms_eps);
    if ((rc = kiln_rope_scaling_read(g, c, e)))
        return rc;
    c->rope_neox = !strcmp(A, "qwen2");
    c->qkv_bias = !strcmp(A, "qwen2");

    const kiln_gguf_tensor *emb = kiln_gguf_tensor_find(g, "token_embd.weight");
    uint64_t nv = 0;
    if (kiln_gguf_find(g, "tokenizer.ggml.tokens")) {
        int et;
        kiln_err ae = {0}; /* kiln_gguf_arr returns no code: keep it even when the caller passed no e */
        if (!kiln_gguf_arr(g, "tokenizer.ggml.tokens", &et, &nv, &ae)) {
            if (e)
                *e = ae;
            return ae.code ? ae.code : KILN_E_FORMAT;
        }
    } else if (emb) {
        nv = (uint64_t)emb->dims[1];
    }
    if (nv == 0 || nv > (1u << 30))
        return kiln_fail(e, KILN_E_FORMAT, "%s: cannot tell the vocabulary size (tokenizer.ggml.tokens %s)", path,
                         nv ? "implausibly long" : "and token_embd.weight missing");
    c->n_vocab = (int)nv;
    c->tied_output = kiln_gguf_tensor_find(g, "output.weight") == NULL;
    return 0;
}

static int check_tensor(const kiln_gguf *g, const char *name, int n_dims, int64_t d0, int64_t d1, kiln_err *e)
{
    const char *path = kiln_gguf_path(g);
    const kiln_gguf_tensor *t = kiln_gguf_tensor_find(g, name);
    if (!t)
        return kiln_fail(e, KILN_E_FORMAT, "%s: tensor '%s' is missing", path, name);
    int64_t want[4] = {d0, n_dims > 1 ? d1 : 1, 1, 1};
    for (int i = 0; i < 4; i++)
        if (t->dims[i] != want[i]) {
            if (n_dims == 1)
                return kiln_fail(e, KILN_E_FORMAT, "%s: tensor '%s' has dims [%lld, %lld], expected [%lld]", path,
                                 name, (long long)t->dims[0], (long long)t->dims[1], (long long)d0);
            return kiln_fail(e, KILN_E_FORMAT,
                             "%s: tensor '%s' has dims [%lld, %lld, %lld], expected [%lld, %lld] ([in, out])", path,
                             name, (long long)t->dims[0], (long long)t->dims[1], (long long)t->dims[2],
                             (long long)d0, (long long)d1);
        }
    if (!kiln_gguf_dequant_supported(t->type))
        return kiln_fail(e, KILN_E_FORMAT, "%s: tensor '%s' has type %s, which Kiln cannot load", path, name,
                         kiln_ggml_type_name(t->type));
    return 0;
}

int kiln_llama_validate(const kiln_gguf *g, const kiln_llama_config *c, kiln_err *e)
{
    int64_t E = c->n_embd, Q = (int64_t)c->n_head * c->head_dim, KV = (int64_t)c->n_head_kv * c->head_dim;
    int rc;
    if ((rc = check_tensor(g, "token_embd.weight", 2, E, c->n_vocab, e)) ||
        (rc = check_tensor(g, "output_norm.weight", 1, E, 0, e)))
        return rc;
    if (!c->tied_output && (rc = check_tensor(g, "output.weight", 2, E, c->n_vocab, e)))
        return rc;
    for (int l = 0; l < c->n_layer; l++) {
        struct {
            const char *n;
            int nd;
            int64_t d0, d1;
        } want[] = {
            {"attn_norm.weight", 1, E, 0},     {"attn_q.weight", 2, E, Q},       {"attn_k.weight", 2, E, KV},
            {"attn_v.weight", 2, E, KV},       {"attn_output.weight", 2, Q, E},  {"ffn_norm.weight", 1, E, 0},
            {"ffn_gate.weight", 2, E, c->n_ff}, {"ffn_up.weight", 2, E, c->n_ff}, {"ffn_down.weight", 2, c->n_ff, E},
            {"attn_q.bias", 1, Q, 0},          {"attn_k.bias", 1, KV, 0},        {"attn_v.bias", 1, KV, 0},
        };
        int n = c->qkv_bias ? 12 : 9;
        for (int i = 0; i < n; i++) {
            char name[KILN_GGUF_MAX_NAME];
            snprintf(name, sizeof name, "blk.%d.%s", l, want[i].n);
            if ((rc = check_tensor(g, name, want[i].nd, want[i].d0, want[i].d1, e)))
                return rc;
        }
    }
    return 0;
}

void kiln_llama_config_str(const kiln_llama_config *c, char *buf, size_t n)
{
    char sc[112] = "";
    if (c->rope_scaling || c->rope_freqs) {
        memcpy(sc, ", rope scaling ", 16);
        kiln_rope_scaling_str(c, sc + 15, sizeof sc - 15);
    }
    snprintf(buf, n,
             "%s: n_embd %d, %d layers, n_ff %d, %d heads, %d kv heads, head_dim %d, rope_dim %d, rope_theta %g%s%s, "
             "rms_eps %g, context %d, vocab %d, %s output",
             c->arch, c->n_embd, c->n_layer, c->n_ff, c->n_head, c->n_head_kv, c->head_dim, c->rope_dim,
             (double)c->rope_theta, c->rope_neox ? " (half-split)" : "", sc, (double)c->rms_eps, c->context_length,
             c->n_vocab, c->tied_output ? "tied" : "separate");
}
