/* tests/engine/smollm2_test.c - the real SmolLM2-135M-Instruct (Q4_1) on every
 * available device: greedy decoding of a ChatML question must answer with
 * the right fact, and the greedy tokens of every device must agree with the
 * CPU's (the note reports how many agree; the test requires the answer's
 * first 8 tokens to match exactly). The model path comes from $KILN_SMOLLM2
 * (scripts/fetch-model.sh); without it the test skips, unless
 * $KILN_REQUIRE_BACKENDS names "model", then it fails.
 * On the cpu the question runs again with an f16 KV cache (--kv-type f16):
 * the answer must still name the fact and its first 8 greedy tokens match
 * the f32 cache's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/generate.h"
#include "tests/test.h"

#define N_GEN 12

typedef struct answer {
    char text[1024];
    size_t len;
    int32_t ids[N_GEN];
    int n;
} answer;

static int collect(void *user, const char *t, size_t n)
{
    answer *a = user;
    if (a->len + n < sizeof a->text) {
        memcpy(a->text + a->len, t, n);
        a->len += n;
        a->text[a->len] = 0;
    }
    return 0;
}

static int run(const char *spec, const char *path, answer *a, int kv_type)
{
    kiln_err e = {0};
    kiln_device *d;
    if (kiln_device_select(spec, &d, &e)) {
        CHECK(0, "%s: %s", spec, e.msg);
        return -1;
    }
    kiln_model m;
    kiln_engine en;
    int rc = kiln_model_load(&m, d, path, NULL, &e);
    if (!rc) {
        kiln_engine_opts eo = {.ctx = 256, .kv_type = kv_type};
        if ((rc = kiln_engine_init(&en, &m, &eo, &e)))
            kiln_model_free(&m);
    }
    if (rc) {
        CHECK(0, "%s: %s", spec, e.msg);
        kiln_device_close(d);
        return -1;
    }
    kiln_chat_msg msgs[] = {{"user", "What is the capital of France?"}};
    char *text;
    size_t tl;
    int32_t ids[128];
    int n = 0;
    kiln_kv_seq seq;
    kiln_gen_stats st = {0};
    CHECK_OK(kiln_chat_format(m.chat, msgs, 1, 1, &text, &tl, &e), &e);
    CHECK_OK(kiln_tokenize(m.tok, text, tl, -1, 1, ids, 128, &n, &e), &e);
    CHECK_OK(kiln_kv_seq_init(&seq, &en.kv, 256, &e), &e);
    kiln_gen_opts go = {.n_predict = N_GEN, .on_text = collect, .user = a};
    kiln_sampling_default(&go.sampling);
    memset(a, 0, sizeof *a);
    rc = kiln_generate(&en, &seq, ids, n, &go, &st, a->ids, N_GEN, &e);
    CHECK(rc == 0, "%s: generate: %s", spec, e.msg);
    a->n = st.n_gen < N_GEN ? st.n_gen : N_GEN;
    printf("%-7s kv %s, %d prompt tokens, %d generated (%s), prefill %.1f tok/s, decode %.1f tok/s: \"%s\"\n", spec, kiln_kv_type_name(kv_type), n,
           st.n_gen, kiln_stop_name(st.stop_reason), st.prefill_s > 0 ? n / st.prefill_s : 0,
           st.decode_s > 0 ? st.n_decode / st.decode_s : 0, a->text);
    kiln_gen_stats_free(&st);
    kiln_kv_seq_free(&seq);
    free(text);
    kiln_engine_free(&en);
    kiln_model_free(&m);
    kiln_device_close(d);
    return rc;
}

int main(void)
{
    const char *path = getenv("KILN_SMOLLM2");
    if (!path || access(path, R_OK)) {
        if (test_backend_required("model")) {
            CHECK(0, "KILN_SMOLLM2 (%s) is required but missing: run scripts/fetch-model.sh", path ? path : "unset");
            return test_result();
        }
        KILN_SKIP("KILN_SMOLLM2 not set: run scripts/fetch-model.sh");
    }
    const char *backends[] = {"cpu", "opencl", "vulkan", "cuda"};
    answer ref, a;
    int have_ref = 0;
    for (int b = 0; b < 4; b++) {
        kiln_backend_kind k;
        kiln_backend_parse(backends[b], &k);
        kiln_backend_status st;
        kiln_backend_probe(k, &st);
        if (!st.available) {
            CHECK(!test_backend_required(backends[b]), "%s required but unavailable: %s", backends[b], st.reason);
            continue;
        }
        answer *cur = have_ref ? &a : &ref;
        if (run(backends[b], path, cur, KILN_KV_F32))
            continue;
        CHECK(strstr(cur->text, "Paris") != NULL, "%s: the answer does not mention Paris: \"%s\"", backends[b],
              cur->text);
        if (!have_ref) {
            have_ref = 1;
            if (!run(backends[b], path, &a, KILN_KV_F16)) {
                CHECK(strstr(a.text, "Paris") != NULL, "%s kv f16: the answer does not mention Paris: \"%s\"",
                      backends[b], a.text);
                int same = 0;
                while (same < a.n && same < ref.n && a.ids[same] == ref.ids[same])
                    same++;
                printf("%-7s kv f16: greedy tokens agree with kv f32 on %d of %d\n", backends[b], same, ref.n);
                CHECK(same >= (ref.n < 8 ? ref.n : 8), "%s kv f16: greedy tokens diverge from kv f32's at %d",
                      backends[b], same);
            }
            continue;
        }
        int same = 0;
        while (same < a.n && same < ref.n && a.ids[same] == ref.ids[same])
            same++;
        printf("%-7s greedy tokens agree with cpu on %d of %d\n", backends[b], same, ref.n);
        CHECK(same >= (ref.n < 8 ? ref.n : 8), "%s: greedy tokens diverge from the cpu's at %d", backends[b], same);
    }
    CHECK(have_ref, "no device ran");
    return test_result();
}
