/* tests/engine/rope_scaling_test.c - RoPE scaling (engine/rope_scaling.h)
 * at the RoPE configuration of Llama 3.2 1B (head_dim 64, freq_base 500000,
 * llama3 x32 from 8192, low 1 / high 4; kiln synth presets llama3-rope with
 * rope_freqs.weight as llama.cpp converts it, llama3-rope-keys with the
 * scaling keys) and a linear x4 model (linear-rope):
 *   - the engine's table (kiln_rope_inv_freq) against the published formulas
 *     written independently in ref_forward.c (Hugging Face's llama3, linear
 *     division, llama.cpp's rope_freqs divisors), every pair within 1e-6
 *     relative, and the llama3 table really scaled (pairs kept, divided by
 *     32 and blended all present);
 *   - the forward pass on every available device against the reference
 *     forward with that table: a 40-token prompt, then 8 decode steps,
 *     logits within forward_test's 1e-4 budget. Before scaling was applied,
 *     these models ran with the plain table and missed it by ~1e-2;
 *   - scalings Kiln cannot apply (yarn, longrope, a made-up name, "none"
 *     with a factor, llama3 without original_context_length) are refused
 *     with a message naming them, never run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/rope_scaling.h"
#include "engine/synth.h"
#include "tests/engine/ref_forward.h"
#include "tests/test.h"
#include "util/rng.h"

#define BUDGET 1e-4

static double norm_err(const float *y, const float *r, int n)
{
    double worst = 0, ss = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)y[i] - r[i]);
        worst = d > worst ? d : worst;
        ss += (double)r[i] * r[i];
    }
    return worst / sqrt(ss / n + 1e-30);
}

static void check_table(const char *path, const char *preset, int want_scaling)
{
    kiln_err e = {0};
    kiln_gguf *g;
    kiln_llama_config c;
    if (kiln_gguf_open(path, &g, &e) || kiln_llama_config_read(g, &c, &e)) {
        CHECK(0, "%s: %s", preset, e.msg);
        return;
    }
    CHECK(c.rope_scaling == want_scaling, "%s: rope_scaling %d, want %d", preset, c.rope_scaling, want_scaling);
    int half = c.rope_dim / 2;
    float inv[512];
    double ref[512];
    CHECK_OK(kiln_rope_inv_freq(g, &c, inv, &e), &e);
    CHECK_OK(ref_rope_inv_freq(g, &c, ref, &e), &e);
    double worst = 0, factor = strcmp(preset, "linear-rope") ? 32 : 4; /* the presets' */
    int kept = 0, divided = 0, blended = 0;
    for (int i = 0; i < half; i++) {
        double rel = fabs(inv[i] - ref[i]) / ref[i];
        worst = rel > worst ? rel : worst;
        double ratio = pow(c.rope_theta, -2.0 * i / c.rope_dim) / ref[i]; /* plain / scaled */
        kept += fabs(ratio - 1) < 1e-9;
        divided += fabs(ratio - factor) < 1e-6 * factor;
        blended += ratio > 1 + 1e-6 && ratio < factor * (1 - 1e-6);
    }
    CHECK(worst <= 1e-6, "%s: engine's RoPE table differs from the reference by %.3g relative", preset, worst);
    if (strcmp(preset, "linear-rope"))
        CHECK(kept > 0 && divided > 0 && blended > 0 && kept + divided + blended == half,
              "%s: %d pairs kept, %d divided by %g, %d blended (of %d)", preset, kept, divided, factor, blended, half);
    else
        CHECK(divided == half, "%s: %d of %d pairs divided by %g", preset, divided, half, factor);
    char line[512];
    kiln_llama_config_str(&c, line, sizeof line);
    printf("%-16s table err %.1e (%d kept, %d divided, %d blended): %s\n", preset, worst, kept, divided, blended, line);
    kiln_gguf_close(g);
}

static void run_device(const char *spec, const char *path, const char *preset)
{
    kiln_err e = {0};
    kiln_device *d;
    if (kiln_device_select(spec, &d, &e)) {
        CHECK(0, "%s: %s", spec, e.msg);
        return;
    }
    kiln_model m;
    kiln_model_opts mo = {0};
    if (kiln_model_load(&m, d, path, &mo, &e)) {
        CHECK(0, "%s: load %s: %s", spec, path, e.msg);
        kiln_device_close(d);
        return;
    }
    kiln_engine en;
    kiln_engine_opts eo = {.ctx = 128, .page_size = 16, .chunk = 16, .precision = KILN_PRECISION_STRICT};
    if (kiln_engine_init(&en, &m, &eo, &e)) {
        CHECK(0, "%s: engine: %s", spec, e.msg);
        kiln_model_free(&m);
        kiln_device_close(d);
        return;
    }
    ref_model *ref = ref_load(path, &e);
    CHECK(ref != NULL, "reference load: %s", e.msg);
    int V = m.cfg.n_vocab;
    float *rl = malloc(sizeof(float) * (size_t)V);
    kiln_rng rng;
    kiln_rng_seed(&rng, 5);
    enum { N = 40 };
    int32_t prompt[N];
    for (int i = 0; i < N; i++)
        prompt[i] = (int32_t)kiln_rng_below(&rng, (uint32_t)V);
    kiln_kv_seq seq;
    CHECK_OK(kiln_kv_seq_init(&seq, &en.kv, 128, &e), &e);
    CHECK_OK(kiln_forward(&en, &seq, prompt, N, &e), &e);
    for (int i = 0; ref && i < N; i++)
        ref_step(ref, prompt[i], rl);
    CHECK_OK(kiln_engine_logits(&en, &e), &e);
    double worst = norm_err(en.logits_host, rl, V);
    CHECK(worst <= BUDGET, "%s %s: prefill logits err %.3g > %.0e", spec, preset, worst, BUDGET);
    for (int s = 0; ref && s < 8; s++) {
        int32_t tok = (int32_t)kiln_rng_below(&rng, (uint32_t)V);
        CHECK_OK(kiln_forward(&en, &seq, &tok, 1, &e), &e);
        ref_step(ref, tok, rl);
        CHECK_OK(kiln_engine_logits(&en, &e), &e);
        double err = norm_err(en.logits_host, rl, V);
        worst = err > worst ? err : worst;
        CHECK(err <= BUDGET, "%s %s: decode step %d logits err %.3g > %.0e", spec, preset, s, err, BUDGET);
    }
    printf("%-8s %-16s %d-token prefill + 8 decode steps: worst logits err %.2e (budget %.0e)\n", spec, preset, N,
           worst, BUDGET);
    kiln_kv_seq_free(&seq);
    free(rl);
    ref_free(ref);
    kiln_engine_free(&en);
    kiln_model_free(&m);
    kiln_device_close(d);
}

/* A tiny model whose rope.scaling.type is `type`: refused at config read,
 * the message naming `want` (and kiln_model_load refuses it too). */
static void check_refused(const char *tmp, const char *type, const char *preset, const char *want)
{
    char path[512];
    snprintf(path, sizeof path, "%s/kiln-rope-refused-%d.gguf", tmp, (int)getpid());
    kiln_synth_opts so = {.preset = preset, .seed = 3, .n_layer = 1, .rope_type = type};
    kiln_err e = {0};
    CHECK_OK(kiln_synth_write(path, &so, &e), &e);
    kiln_gguf *g;
    CHECK_OK(kiln_gguf_open(path, &g, &e), &e);
    kiln_llama_config c;
    kiln_err ce = {0};
    int rc = kiln_llama_config_read(g, &c, &ce);
    CHECK(rc == KILN_E_FORMAT && strstr(ce.msg, want), "type '%s' on %s: rc %d, message '%s' (want '%s')",
          type, preset, rc, ce.msg, want);
    printf("refused: %s on %s: %s\n", type, preset, ce.msg);
    kiln_gguf_close(g);
    unlink(path);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    const char *presets[] = {"llama3-rope", "llama3-rope-keys", "linear-rope"};
    const int scaling[] = {KILN_ROPE_SCALING_NONE, KILN_ROPE_SCALING_LLAMA3, KILN_ROPE_SCALING_LINEAR};
    char paths[3][512];
    for (int p = 0; p < 3; p++) {
        snprintf(paths[p], sizeof paths[p], "%s/kiln-rope-%d-%s.gguf", tmp, (int)getpid(), presets[p]);
        kiln_synth_opts so = {.preset = presets[p], .quant = KILN_GGML_Q8_0, .seed = 21 + (uint64_t)p};
        kiln_err e = {0};
        CHECK_OK(kiln_synth_write(paths[p], &so, &e), &e);
        check_table(paths[p], presets[p], scaling[p]);
    }
    check_refused(tmp, "yarn", "tiny", "'yarn' is not supported");
    check_refused(tmp, "longrope", "tiny", "'longrope' is not supported");
    check_refused(tmp, "ntk-by-parts", "tiny", "'ntk-by-parts' is not supported");
    check_refused(tmp, "none", "tiny", "type is none but the scaling factor is 4");
    check_refused(tmp, "llama3", "tiny", "original_context_length' is missing");
    check_refused(tmp, "llama3", "llama3-rope", "scaled twice");

    const char *backends[] = {"cpu", "opencl", "vulkan", "cuda"};
    int ran = 0;
    for (int b = 0; b < 4; b++) {
        kiln_backend_kind k;
        kiln_backend_parse(backends[b], &k);
        kiln_backend_status st;
        kiln_backend_probe(k, &st);
        if (!st.available) {
            CHECK(!test_backend_required(backends[b]), "%s required but unavailable: %s", backends[b], st.reason);
            printf("%-8s unavailable: %s\n", backends[b], st.reason);
            continue;
        }
        for (int p = 0; p < 3; p++)
            run_device(backends[b], paths[p], presets[p]);
        ran++;
    }
    for (int p = 0; p < 3; p++)
        unlink(paths[p]);
    CHECK(ran > 0, "no backend ran");
    return test_result();
}
