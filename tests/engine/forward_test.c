/* tests/engine/forward_test.c - the engine's forward pass on every available
 * device against the plain reference forward (ref_forward.c), on tiny
 * synthetic Llama models in Q4_0, Q4_1 and Q8_0:
 *   - a 21-token prompt prefilled in chunks of 8 (batched gemm_int4 when it
 *     is built), then 16 decode steps, with --precision strict; logits
 *     compared at every step by
 *     normalized error max|y - r| / rms(r) <= 1e-4 (f32 kernels in another
 *     summation order than the double reference drift ~2e-6 over 2 layers;
 *     a wrong row, page or position moves logits by O(1) of their rms);
 *   - the sequence's page table is not the identity (another sequence holds
 *     a page in between), pages of 16 tokens, so paging is exercised;
 *   - a full KV cache gives KILN_E_FULL and leaves the sequence usable;
 *   - the Q4_0 model again with matrices split into 5 KiB buffers (what a
 *     device with a small maxStorageBufferRange gets for a large vocabulary):
 *     the Q8_0 embedding in 8 parts gathered on the host, the LM head in 4
 *     and the FFN up/gate in 2 (per-token gemv in prefill), same budget;
 *   - on the cpu the three models again with --precision fast (int8
 *     activations in the default prefill gemm), budget 0.2. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/model.h"
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

static int argmax(const float *v, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b])
            b = i;
    return b;
}

/* precision: KILN_PRECISION_STRICT (f32 activations: the 1e-4 budget) or
 * FAST (int8 activations where configs use them: x rounded per block of 32
 * moves logits by a few % of their rms, FAST_BUDGET; a wrong index still
 * moves them by O(1)). */
#define FAST_BUDGET 0.2

/* A layout callback asking for tiles of *ctx rows for every matrix (what a
 * database of interleaved gemv winners does). */
static int ask_ilv(void *ctx, const kiln_shape *s, int *gemv_f32)
{
    (void)s;
    *gemv_f32 = 0;
    return *(const int *)ctx;
}

/* ilv > 1: every matrix asked for in tiles of ilv rows (split ones must load
 * row-major instead, since tiles need one buffer) */
static void run_device(const char *spec, const char *path, const char *label, uint64_t max_part_bytes,
                       int precision, int ilv)
{
    const double budget = precision == KILN_PRECISION_FAST ? FAST_BUDGET : BUDGET;
    kiln_err e = {0};
    kiln_device *d;
    if (kiln_device_select(spec, &d, &e)) {
        CHECK(0, "%s: %s", spec, e.msg);
        return;
    }
    kiln_model m;
    kiln_model_opts mo = {.max_part_bytes = max_part_bytes};
    if (ilv > 1) {
        mo.layout = ask_ilv;
        mo.layout_ctx = &ilv;
        mo.act = precision == KILN_PRECISION_FAST ? KILN_ACT_Q8 : 0;
    }
    if (kiln_model_load(&m, d, path, &mo, &e)) {
        CHECK(0, "%s: load %s: %s", spec, path, e.msg);
        kiln_device_close(d);
        return;
    }
    if (ilv > 1)
        CHECK(m.layers[0].wq.ilv == ilv && m.layers[0].w_gate.ilv <= 1, "%s %s: wq in layout %d, ffn_gate (%d parts) in %d",
              spec, label, m.layers[0].wq.ilv, m.layers[0].w_gate.n_parts, m.layers[0].w_gate.ilv);
    if (max_part_bytes)
        CHECK(m.embd.n_parts == 8 && m.embd_on_host && m.output.n_parts == 4 && m.layers[0].w_gate.n_parts == 2 &&
                  m.layers[0].wq.n_parts == 1,
              "%s %s: parts: embd %d (host %d), output %d, ffn_gate %d, wq %d", spec, label, m.embd.n_parts,
              m.embd_on_host, m.output.n_parts, m.layers[0].w_gate.n_parts, m.layers[0].wq.n_parts);
    kiln_engine en;
    kiln_engine_opts eo = {.ctx = 256, .page_size = 16, .chunk = 8, .precision = precision};
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
    kiln_rng_seed(&rng, 7);
    int32_t prompt[21];
    for (int i = 0; i < 21; i++)
        prompt[i] = (int32_t)kiln_rng_below(&rng, (uint32_t)V);

    /* a neighbour sequence owns the first page: ours gets pages 1, 2, ... */
    kiln_kv_seq other, seq;
    CHECK_OK(kiln_kv_seq_init(&other, &en.kv, 64, &e), &e);
    CHECK_OK(kiln_kv_seq_reserve(&other, 1, &e), &e);
    CHECK_OK(kiln_kv_seq_init(&seq, &en.kv, 256, &e), &e);

    double worst = 0;
    /* prefill: 8 + 8 tokens, then free the neighbour, then the last 5 (the
     * freed page becomes our third: table [1, 2, 0]) */
    CHECK_OK(kiln_forward(&en, &seq, prompt, 16, &e), &e);
    kiln_kv_seq_free(&other);
    CHECK_OK(kiln_forward(&en, &seq, prompt + 16, 5, &e), &e);
    CHECK(seq.n_pages == 2 && seq.pages[0] == 1, "%s: pages %d, first %d", spec, seq.n_pages, seq.pages[0]);
    for (int i = 0; ref && i < 21; i++)
        ref_step(ref, prompt[i], rl);
    CHECK_OK(kiln_engine_logits(&en, &e), &e);
    double err = norm_err(en.logits_host, rl, V);
    worst = err;
    CHECK(err <= budget, "%s %s: prefill logits err %.3g > %.3g", spec, label, err, budget);
    int agree = 0;
    for (int s = 0; ref && s < 16; s++) {
        int32_t tok = argmax(rl, V);
        int32_t dev_tok;
        CHECK_OK(kiln_engine_argmax(&en, &dev_tok, &e), &e);
        agree += dev_tok == tok;
        CHECK_OK(kiln_forward(&en, &seq, &tok, 1, &e), &e);
        ref_step(ref, tok, rl);
        CHECK_OK(kiln_engine_logits(&en, &e), &e);
        err = norm_err(en.logits_host, rl, V);
        worst = err > worst ? err : worst;
        CHECK(err <= budget, "%s %s: decode step %d logits err %.3g > %.3g", spec, label, s, err, budget);
    }
    CHECK(agree >= (precision == KILN_PRECISION_FAST ? 13 : 15), "%s %s: device argmax agreed with the reference on %d/16 steps", spec, label, agree);
    printf("%-8s %-6s prefill 21 tokens + 16 decode steps: worst logits err %.2e (budget %.0e), argmax agrees %d/16\n",
           spec, label, worst, budget, agree);

    /* full cache: 256 tokens of capacity (16 pages), 37 used */
    int32_t many[240];
    for (int i = 0; i < 240; i++)
        many[i] = prompt[i % 21];
    int before = seq.n_tokens, free_before = en.kv.n_free;
    kiln_err fe = {0};
    int rc = kiln_forward(&en, &seq, many, 240, &fe);
    CHECK(rc == KILN_E_FULL, "%s: overfilling the cache returned %d (%s)", spec, rc, fe.msg);
    CHECK(strstr(fe.msg, "KV cache full") != NULL, "%s: message '%s'", spec, fe.msg);
    CHECK(seq.n_tokens == before && en.kv.n_free == free_before, "%s: a failed forward changed the sequence", spec);
    CHECK_OK(kiln_forward(&en, &seq, many, 8, &e), &e); /* still usable */

    kiln_kv_seq_free(&seq);
    free(rl);
    ref_free(ref);
    kiln_engine_free(&en);
    kiln_model_free(&m);
    kiln_device_close(d);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    struct {
        int type;
        const char *label;
    } quants[] = {{KILN_GGML_Q4_0, "q4_0"}, {KILN_GGML_Q4_1, "q4_1"}, {KILN_GGML_Q8_0, "q8_0"}};
    char paths[3][512];
    for (int q = 0; q < 3; q++) {
        snprintf(paths[q], sizeof paths[q], "%s/kiln-forward-%d-%s.gguf", tmp, (int)getpid(), quants[q].label);
        kiln_synth_opts so = {.preset = "tiny", .quant = quants[q].type, .seed = 11 + (uint64_t)q};
        kiln_err e = {0};
        CHECK_OK(kiln_synth_write(paths[q], &so, &e), &e);
    }
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
        for (int q = 0; q < 3; q++)
            run_device(backends[b], paths[q], quants[q].label, 0, KILN_PRECISION_STRICT, 1);
        run_device(backends[b], paths[0], "q4_0 in 5 KiB parts", 5120, KILN_PRECISION_STRICT, 1);
        /* interleaved layouts asked for a matrix too big for one buffer: row-major parts, not a failed load */
        run_device(backends[b], paths[0], "q4_0 fast, ilv 16 asked, 5 KiB parts", 5120, KILN_PRECISION_FAST, 16);
        /* --precision fast, the default: the cpu's default prefill gemm quantizes x */
        for (int q = 0; q < 3 && k == KILN_CPU; q++)
            run_device(backends[b], paths[q], q == 0 ? "q4_0 fast" : q == 1 ? "q4_1 fast" : "q8_0 fast", 0,
                       KILN_PRECISION_FAST, 1);
        ran++;
    }
    for (int q = 0; q < 3; q++)
        unlink(paths[q]);
    CHECK(ran > 0, "no backend ran");
    return test_result();
}
