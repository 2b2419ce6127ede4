/* engine/rope_scaling.c - see rope_scaling.h. */
#include "engine/rope_scaling.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf_dequant.h"
#include "engine/weights.h"

/* <arch>.<suffix> as f32 into *out when present; *found says whether it was */
static int key_f32(const kiln_gguf *g, const char *arch, const char *suffix, float *out, int *found, kiln_err *e)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    *found = kiln_gguf_find(g, key) != NULL;
    if (!*found)
        return 0;
    int rc = kiln_gguf_get_f32(g, key, out, e);
    if (rc)
        return rc;
    if (!isfinite(*out) || !(*out > 0))
        return kiln_fail(e, KILN_E_FORMAT, "%s: metadata '%s' = %g must be a positive number", kiln_gguf_path(g),
                         key, (double)*out);
    return 0;
}

static int read_type(const kiln_gguf *g, const char *A, char *type, size_t n, kiln_err *e)
{
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", A);
    type[0] = 0;
    if (!kiln_gguf_find(g, key))
        return 0;
    const char *s;
    size_t len;
    int rc = kiln_gguf_get_str(g, key, &s, &len, e);
    if (rc)
        return rc;
    if (len >= n || memchr(s, 0, len))
        return kiln_fail(e, KILN_E_FORMAT, "%s: '%s' = '%.*s' is not a RoPE scaling Kiln supports (none, linear, "
                         "llama3)", kiln_gguf_path(g), key, (int)(len > 32 ? 32 : len), s);
    memcpy(type, s, len);
    type[len] = 0;
    return 0;
}

int kiln_rope_scaling_read(const kiln_gguf *g, kiln_llama_config *c, kiln_err *e)
{
    const char *path = kiln_gguf_path(g), *A = c->arch;
    char type[32];
    int rc = read_type(g, A, type, sizeof type, e);
    if (rc)
        return rc;
    float factor = 1.0f, lin = 1.0f;
    int has_factor, has_lin;
    if ((rc = key_f32(g, A, "rope.scaling.factor", &factor, &has_factor, e)) ||
        (rc = key_f32(g, A, "rope.scale_linear", &lin, &has_lin, e)))
        return rc;
    if (!has_factor && has_lin)
        factor = lin; /* llama.cpp: scaling.factor, else the older scale_linear */
    c->rope_scaling = KILN_ROPE_SCALING_NONE;
    c->rope_scale = 1.0f;
    if (!strcmp(type, "linear") || (!type[0] && factor != 1.0f)) {
        c->rope_scaling = KILN_ROPE_SCALING_LINEAR;
        c->rope_scale = factor;
    } else if (!strcmp(type, "llama3")) {
        if (!has_factor)
            return kiln_fail(e, KILN_E_FORMAT, "%s: %s.rope.scaling.type is llama3 but %s.rope.scaling.factor is "
                             "missing", path, A, A);
        int orig = 0, found;
        char key[128];
        snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", A);
        if (!kiln_gguf_find(g, key))
            return kiln_fail(e, KILN_E_FORMAT, "%s: %s.rope.scaling.type is llama3 but '%s' is missing", path, A, key);
        uint32_t u;
        if ((rc = kiln_gguf_get_u32(g, key, &u, e)))
            return rc;
        if (u < 1 || u > 1u << 30)
            return kiln_fail(e, KILN_E_FORMAT, "%s: '%s' = %u is out of range", path, key, u);
        orig = (int)u;
        float lo = 1.0f, hi = 4.0f; /* Meta's values for every Llama 3.x */
        if ((rc = key_f32(g, A, "rope.scaling.low_freq_factor", &lo, &found, e)) ||
            (rc = key_f32(g, A, "rope.scaling.high_freq_factor", &hi, &found, e)))
            return rc;
        if (!(hi > lo))
            return kiln_fail(e, KILN_E_FORMAT, "%s: %s.rope.scaling: high_freq_factor %g must exceed "
                             "low_freq_factor %g", path, A, (double)hi, (double)lo);
        c->rope_scaling = KILN_ROPE_SCALING_LLAMA3;
        c->rope_scale = factor;
        c->rope_orig_ctx = orig;
        c->rope_low_freq = lo;
        c->rope_high_freq = hi;
    } else if (strcmp(type, "none") && type[0]) {
        return kiln_fail(e, KILN_E_FORMAT,
                         "%s: %s.rope.scaling.type '%s' is not supported (Kiln applies none, linear and llama3; "
                         "running it unscaled would give wrong positions)", path, A, type);
    } else if (factor != 1.0f) {
        return kiln_fail(e, KILN_E_FORMAT, "%s: %s.rope.scaling.type is none but the scaling factor is %g", path, A,
                         (double)factor);
    }
    const kiln_gguf_tensor *t = kiln_gguf_tensor_find(g, "rope_freqs.weight");
    c->rope_freqs = t != NULL;
    if (t) {
        if (c->rope_scaling == KILN_ROPE_SCALING_LLAMA3)
            return kiln_fail(e, KILN_E_FORMAT, "%s: both rope_freqs.weight and %s.rope.scaling.type llama3: the "
                             "frequencies would be scaled twice", path, A);
        if (t->n_dims != 1 || t->dims[0] != c->rope_dim / 2 || !kiln_gguf_dequant_supported(t->type))
            return kiln_fail(e, KILN_E_FORMAT, "%s: tensor 'rope_freqs.weight' is %dD [%lld] of type %s, expected "
                             "[%d] (rope_dim / 2) of a float type", path, t->n_dims, (long long)t->dims[0],
                             kiln_ggml_type_name(t->type) ? kiln_ggml_type_name(t->type) : "?", c->rope_dim / 2);
    }
    return 0;
}

int kiln_rope_inv_freq(const kiln_gguf *g, const kiln_llama_config *c, float *inv_freq, kiln_err *e)
{
    int half = c->rope_dim / 2;
    float *div = NULL;
    if (c->rope_freqs) {
        const kiln_gguf_tensor *t = g ? kiln_gguf_tensor_find(g, "rope_freqs.weight") : NULL;
        if (!t)
            return kiln_fail(e, KILN_E_INVALID, "rope: the config says rope_freqs.weight but no file has it");
        if (!(div = malloc(sizeof *div * (size_t)half)))
            return kiln_fail(e, KILN_E_NOMEM, "rope: out of memory");
        int rc = kiln_vector_from_gguf(g, t, div, half, e);
        if (rc) {
            free(div);
            return rc;
        }
        for (int i = 0; i < half; i++)
            if (!isfinite(div[i]) || !(div[i] > 0)) {
                int r = kiln_fail(e, KILN_E_FORMAT, "%s: rope_freqs.weight[%d] = %g must be a positive number",
                                  kiln_gguf_path(g), i, (double)div[i]);
                free(div);
                return r;
            }
    }
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < half; i++) {
        double f = pow((double)c->rope_theta, -2.0 * i / c->rope_dim);
        if (c->rope_scaling == KILN_ROPE_SCALING_LINEAR) {
            f /= c->rope_scale;
        } else if (c->rope_scaling == KILN_ROPE_SCALING_LLAMA3) {
            /* wavelength against the original context: short waves stay,
             * long ones are stretched by factor, the band between blends */
            double wave = 2 * pi / f, orig = c->rope_orig_ctx;
            double lo_wave = orig / c->rope_low_freq, hi_wave = orig / c->rope_high_freq;
            if (wave > lo_wave) {
                f /= c->rope_scale;
            } else if (wave >= hi_wave) {
                double smooth = (orig / wave - c->rope_low_freq) / (c->rope_high_freq - c->rope_low_freq);
                f = (1 - smooth) * f / c->rope_scale + smooth * f;
            }
        }
        if (div)
            f /= div[i];
        inv_freq[i] = (float)f;
        if (!isfinite(inv_freq[i])) { /* freq_base near 0, a tiny factor or divisor */
            free(div);
            return kiln_fail(e, KILN_E_FORMAT, "%s: RoPE frequency of pair %d is not a finite f32 (freq_base %g, "
                             "scaling factor %g)", g ? kiln_gguf_path(g) : "model", i, (double)c->rope_theta,
                             (double)c->rope_scale);
        }
    }
    free(div);
    return 0;
}

void kiln_rope_scaling_str(const kiln_llama_config *c, char *buf, size_t n)
{
    int k = 0;
    if (c->rope_scaling == KILN_ROPE_SCALING_LINEAR)
        k = snprintf(buf, n, "linear x%g", (double)c->rope_scale);
    else if (c->rope_scaling == KILN_ROPE_SCALING_LLAMA3)
        k = snprintf(buf, n, "llama3 x%g (orig %d, low %g, high %g)", (double)c->rope_scale, c->rope_orig_ctx,
                     (double)c->rope_low_freq, (double)c->rope_high_freq);
    else if (!c->rope_freqs)
        k = snprintf(buf, n, "none");
    if (c->rope_freqs && k >= 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, "%srope_freqs", k ? " + " : "");
}
