/* tests/engine/perplexity_test.c - every token's logits and the perplexity
 * scheme on every available device, against the float64 reference forward
 * (ref_forward.c), on a tiny synthetic Q4_1 model (vocab 512, untied LM head):
 *   - kiln_nll: log-softmax in double, exact against a direct sum on small
 *     logits, and shift-invariant where exp() of the raw logits overflows;
 *   - kiln_forward_all_logits over 21 tokens after 5 cached ones, prefill
 *     chunks of 8 (pieces 8, 8, 5): every position's logits within 1e-4 of
 *     the reference by normalized error (a row shifted by one token is O(1)
 *     off); a following kiln_forward of one token (the decode path) still
 *     matches the reference;
 *   - kiln_perplexity over 3 chunks of 48 tokens of a random stream (plus a
 *     tail of 17 that must be dropped), BOS replacing each chunk's first
 *     token, against the scheme computed here from the reference's logits
 *     (position p >= 24 scores token p+1, 23 per chunk): PPL and its error
 *     within 1e-3 relative, the counts exact; --chunks 2 and no BOS change
 *     the result the way they must;
 *   - the same with the LM head split into parts (per-token gemv into the
 *     [T][vocab] buffer by offset);
 *   - errors: a chunk shorter than 4, a text shorter than one chunk, a chunk
 *     larger than the KV cache.
 * Arguments, if any, name the backends to run (the asan suite: cpu). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/perplexity.h"
#include "engine/synth.h"
#include "tests/engine/ref_forward.h"
#include "tests/test.h"
#include "util/rng.h"

#define LOGIT_BUDGET 1e-4
#define PPL_BUDGET 1e-3
#define CTX 48
#define N_STREAM (3 * CTX + 17)

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

/* The scheme written from its definition over the reference forward. */
typedef struct ref_ppl {
    double ppl, err;
    long long n;
} ref_ppl;

static ref_ppl reference_ppl(ref_model *ref, const int32_t *stream, int n_stream, int ctx, int max_chunks, int bos)
{
    int V = ref_config(ref)->n_vocab;
    float *lg = malloc(sizeof(float) * (size_t)V);
    double s = 0, s2 = 0;
    long long n = 0;
    int chunks = n_stream / ctx;
    if (max_chunks && chunks > max_chunks)
        chunks = max_chunks;
    for (int c = 0; c < chunks; c++) {
        ref_reset(ref);
        int32_t t[ctx];
        memcpy(t, stream + c * ctx, sizeof t);
        if (bos >= 0)
            t[0] = bos;
        for (int p = 0; p + 1 < ctx; p++) {
            ref_step(ref, t[p], lg);
            if (p < ctx / 2)
                continue;
            long double z = 0;
            for (int v = 0; v < V; v++)
                z += expl((long double)lg[v]);
            double nll = (double)(logl(z) - (long double)lg[t[p + 1]]);
            s += nll;
            s2 += nll * nll;
            n++;
        }
    }
    free(lg);
    double mean = s / (double)n, var = s2 / (double)n - mean * mean;
    return (ref_ppl){exp(mean), exp(mean) * sqrt(var / (double)(n - 1)), n};
}

static void check_nll(void)
{
    kiln_rng rng;
    kiln_rng_seed(&rng, 3);
    enum { V = 777 };
    float lg[V], shifted[V];
    for (int v = 0; v < V; v++) {
        lg[v] = kiln_rng_uniform(&rng, -6, 6);
        shifted[v] = lg[v] + 2000.0f; /* exp(2000) overflows a double */
    }
    for (int t = 0; t < V; t += 97) {
        double z = 0;
        for (int v = 0; v < V; v++)
            z += exp((double)lg[v]);
        double want = log(z) - lg[t], got = kiln_nll(lg, V, t);
        CHECK(fabs(got - want) < 1e-12 * (1 + fabs(want)), "nll of %d: %.15g, direct sum %.15g", t, got, want);
        /* the shift is exact in float only to ~2000 * 2^-24: compare at that */
        double got2 = kiln_nll(shifted, V, t);
        CHECK(isfinite(got2) && fabs(got2 - want) < 1e-3, "nll of %d with logits + 2000: %.9g, want %.9g", t, got2,
              want);
    }
}

static void run_device(const char *spec, const char *path, const char *label, uint64_t max_part_bytes)
{
    kiln_err e = {0};
    kiln_device *d;
    if (kiln_device_select(spec, &d, &e)) {
        CHECK(0, "%s: %s", spec, e.msg);
        return;
    }
    kiln_model m;
    kiln_model_opts mo = {.max_part_bytes = max_part_bytes};
    if (kiln_model_load(&m, d, path, &mo, &e)) {
        CHECK(0, "%s: load %s: %s", spec, path, e.msg);
        kiln_device_close(d);
        return;
    }
    if (max_part_bytes)
        CHECK(m.output.n_parts > 1, "%s %s: the LM head is in %d part(s)", spec, label, m.output.n_parts);
    kiln_engine en;
    kiln_engine_opts eo = {.ctx = 64, .page_size = 16, .chunk = 8, .precision = KILN_PRECISION_STRICT};
    if (kiln_engine_init(&en, &m, &eo, &e)) {
        CHECK(0, "%s: engine: %s", spec, e.msg);
        kiln_model_free(&m);
        kiln_device_close(d);
        return;
    }
    CHECK(en.logits_all == NULL, "%s: the all-logits buffer exists before it is asked for", spec);
    ref_model *ref = ref_load(path, &e);
    if (!ref) {
        CHECK(0, "reference load: %s", e.msg);
        kiln_engine_free(&en);
        kiln_model_free(&m);
        kiln_device_close(d);
        return;
    }
    int V = m.cfg.n_vocab;
    kiln_rng rng;
    kiln_rng_seed(&rng, 29);
    int32_t stream[N_STREAM];
    for (int i = 0; i < N_STREAM; i++)
        stream[i] = (int32_t)kiln_rng_below(&rng, (uint32_t)V);

    /* every position's logits: 5 tokens cached, then 21 in pieces of 8, 8, 5 */
    float *all = malloc(sizeof(float) * (size_t)V * 21), *rl = malloc(sizeof(float) * (size_t)V);
    kiln_kv_seq seq;
    CHECK_OK(kiln_kv_seq_init(&seq, &en.kv, 64, &e), &e);
    CHECK_OK(kiln_forward(&en, &seq, stream, 5, &e), &e);
    CHECK_OK(kiln_forward_all_logits(&en, &seq, stream + 5, 21, all, &e), &e);
    CHECK(seq.n_tokens == 26, "%s: %d tokens cached after 5 + 21", spec, seq.n_tokens);
    double worst = 0;
    ref_reset(ref);
    for (int p = 0; p < 26; p++) {
        ref_step(ref, stream[p], rl);
        if (p < 5)
            continue;
        double err = norm_err(all + (size_t)(p - 5) * (size_t)V, rl, V);
        worst = err > worst ? err : worst;
        CHECK(err <= LOGIT_BUDGET, "%s %s: all-logits row %d (position %d) err %.3g > %.0e", spec, label, p - 5, p, err,
              LOGIT_BUDGET);
    }
    /* the decode path afterwards: one token, last-token logits */
    CHECK_OK(kiln_forward(&en, &seq, stream + 26, 1, &e), &e);
    ref_step(ref, stream[26], rl);
    CHECK_OK(kiln_engine_logits(&en, &e), &e);
    double derr = norm_err(en.logits_host, rl, V);
    CHECK(derr <= LOGIT_BUDGET, "%s %s: decode after all-logits err %.3g", spec, label, derr);
    kiln_kv_seq_free(&seq);

    /* perplexity: 3 chunks of 48 (the 17-token tail dropped), BOS = 1 */
    kiln_ppl_opts po = {.ctx = CTX, .bos = 1};
    kiln_ppl_result r;
    CHECK_OK(kiln_perplexity(&en, stream, N_STREAM, &po, &r, &e), &e);
    ref_ppl want = reference_ppl(ref, stream, N_STREAM, CTX, 0, 1);
    CHECK(r.n_chunks == 3 && r.n_scored == 3 * (CTX - 1 - CTX / 2) && r.n_scored == want.n &&
              r.n_evaluated == 3 * (CTX - 1),
          "%s: %d chunks, %lld scored (want %lld), %lld evaluated", spec, r.n_chunks, r.n_scored, want.n,
          r.n_evaluated);
    double rel = fabs(r.ppl - want.ppl) / want.ppl, rel_err = fabs(r.ppl_err - want.err) / want.err;
    CHECK(rel <= PPL_BUDGET && rel_err <= PPL_BUDGET, "%s %s: PPL %.6f ± %.6f, reference %.6f ± %.6f", spec, label,
          r.ppl, r.ppl_err, want.ppl, want.err);
    CHECK(isfinite(r.nll_std) && fabs(r.ppl - exp(r.nll_mean)) < 1e-9 * r.ppl, "%s: nll mean/std %g %g", spec,
          r.nll_mean, r.nll_std);
    printf("%-8s %-22s all-logits worst err %.2e; PPL %.5f ± %.5f (reference %.5f ± %.5f, rel %.1e)\n", spec, label,
           worst, r.ppl, r.ppl_err, want.ppl, want.err, rel);

    /* two chunks, no BOS: another number, and the reference's again */
    kiln_ppl_opts po2 = {.ctx = CTX, .bos = -1, .max_chunks = 2};
    kiln_ppl_result r2;
    CHECK_OK(kiln_perplexity(&en, stream, N_STREAM, &po2, &r2, &e), &e);
    ref_ppl want2 = reference_ppl(ref, stream, N_STREAM, CTX, 2, -1);
    CHECK(r2.n_chunks == 2 && r2.n_scored == want2.n, "%s: --chunks 2: %d chunks, %lld scored", spec, r2.n_chunks,
          r2.n_scored);
    CHECK(fabs(r2.ppl - want2.ppl) / want2.ppl <= PPL_BUDGET && fabs(r2.ppl - r.ppl) / r.ppl > 10 * PPL_BUDGET,
          "%s: 2 chunks without BOS: PPL %.6f, reference %.6f (3 chunks with BOS: %.6f)", spec, r2.ppl, want2.ppl,
          r.ppl);

    /* errors */
    kiln_err ee = {0};
    kiln_ppl_opts bad = {.ctx = 3, .bos = -1};
    CHECK(kiln_perplexity(&en, stream, N_STREAM, &bad, &r2, &ee) == KILN_E_INVALID, "%s: ctx 3 accepted", spec);
    bad.ctx = CTX;
    int rc = kiln_perplexity(&en, stream, CTX - 1, &bad, &r2, &ee);
    CHECK(rc == KILN_E_INVALID && strstr(ee.msg, "47 tokens") && strstr(ee.msg, "one chunk needs 48"),
          "%s: a text of 47 tokens: rc %d '%s'", spec, rc, ee.msg);
    bad.ctx = 65;
    CHECK(kiln_perplexity(&en, stream, N_STREAM, &bad, &r2, &ee) == KILN_E_INVALID && strstr(ee.msg, "KV cache"),
          "%s: chunks larger than the KV cache: '%s'", spec, ee.msg);
    CHECK(en.kv.n_free == en.kv.n_pages, "%s: %d of %d KV pages free after the runs", spec, en.kv.n_free,
          en.kv.n_pages);

    free(all);
    free(rl);
    ref_free(ref);
    kiln_engine_free(&en);
    kiln_model_free(&m);
    kiln_device_close(d);
}

int main(int argc, char **argv)
{
    check_nll();
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[512];
    snprintf(path, sizeof path, "%s/kiln-ppl-%d.gguf", tmp, (int)getpid());
    kiln_synth_opts so = {.preset = "tiny", .quant = KILN_GGML_Q4_1, .seed = 5};
    kiln_err e = {0};
    CHECK_OK(kiln_synth_write(path, &so, &e), &e);
    const char *backends[] = {"cpu", "opencl", "vulkan", "cuda"};
    int ran = 0;
    for (int b = 0; b < 4; b++) {
        int listed = argc < 2; /* arguments: only these backends (the asan suite runs cpu) */
        for (int i = 1; i < argc; i++)
            listed |= !strcmp(argv[i], backends[b]);
        if (!listed)
            continue;
        kiln_backend_kind k;
        kiln_backend_parse(backends[b], &k);
        kiln_backend_status st;
        kiln_backend_probe(k, &st);
        if (!st.available) {
            CHECK(!test_backend_required(backends[b]), "%s required but unavailable: %s", backends[b], st.reason);
            printf("%-8s unavailable: %s\n", backends[b], st.reason);
            continue;
        }
        run_device(backends[b], path, "q4_1", 0);
        run_device(backends[b], path, "q4_1, LM head in parts", 5120);
        ran++;
    }
    unlink(path);
    CHECK(ran > 0, "no backend ran");
    return test_result();
}
