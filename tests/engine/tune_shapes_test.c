/* tests/engine/tune_shapes_test.c - kiln_model_tune_shapes on a synthetic
 * tiny model (64 wide, 2 layers, n_ff 160, 4 heads / 2 kv of 16, vocab 512,
 * context 256, untied, Q4_0 matrices, Q8_0 token_embd): exactly the lookup
 * shapes engine/forward.c builds, no duplicates, Q/K/V and gate/up also as the
 * stacked decode gemvs engine/model.c builds, each prefill gemm pointing at
 * the gemv shape that lays its matrix out; the quant follows the file
 * (Q4_1 file -> q4_1); a too-small array is KILN_E_FULL; a missing file
 * names the path. With $KILN_SMOLLM2 also the real file's list (no weights
 * are loaded, so it is quick). */
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/synth.h"
#include "engine/tune_shapes.h"
#include "kernels/kernel.h"
#include "tests/test.h"

#define MAXP 256

static const char *kn[MAXP];
static kiln_shape sh[MAXP], lay[MAXP];

static int count(int n, const char *kernel)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += !strcmp(kn[i], kernel);
    return c;
}

static int has(int n, const char *kernel, kiln_shape s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(kn[i], kernel) && !memcmp(&sh[i], &s, sizeof s))
            return 1;
    return 0;
}

static void check_tiny(const char *path, int quant)
{
    kiln_err e = {0};
    int n = 0;
    CHECK_OK(kiln_model_tune_shapes(path, KILN_ACT_F32, kn, sh, lay, MAXP, &n, &e), &e);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            CHECK(strcmp(kn[i], kn[j]) || memcmp(&sh[i], &sh[j], sizeof sh[i]) ||
                      memcmp(&lay[i], &lay[j], sizeof lay[i]),
                  "duplicate pair %d/%d (%s)", i, j, kn[i]);
    /* 7 gemv (q=o, k=v, gate=up, down, LM head; stacked q+k+v 128 and
     * gate+up 320) + 5 gemm (q and o are one shape laid out by different
     * gemvs) + 2 embed + 4 rmsnorm + 5 rope (decode also turns q and k in
     * one launch: 4 + 2 heads) + 2 silu + kv_append + 1 attention bucket
     * (ctx 256) + argmax */
    CHECK(n == 28, "tiny: %d pairs, expected 28", n);
    CHECK(count(n, "gemv_int4") == 7, "gemv: %d", count(n, "gemv_int4"));
    CHECK(count(n, "gemm_int4") == 5, "gemm: %d", count(n, "gemm_int4"));
    kiln_shape qkv = {.m = 128, .k = 64, .quant = quant, .group = 32}, gu = {.m = 320, .k = 64, .quant = quant,
                                                                             .group = 32};
    CHECK(has(n, "gemv_int4", qkv) && has(n, "gemv_int4", gu), "stacked gemv shapes missing");
    for (int i = 0; i < n; i++) {
        if (strcmp(kn[i], "gemm_int4"))
            continue;
        kiln_shape own = sh[i];
        own.n = 0;
        int ok = sh[i].k == 160 ? !memcmp(&lay[i], &own, sizeof own) /* down: itself */
               : sh[i].m == 160  ? !memcmp(&lay[i], &gu, sizeof gu)
               : sh[i].m == 32   ? !memcmp(&lay[i], &qkv, sizeof qkv)
                                 : !memcmp(&lay[i], &qkv, sizeof qkv) || !memcmp(&lay[i], &own, sizeof own);
        CHECK(ok, "gemm m%lld k%lld laid out by gemv m%lld", (long long)sh[i].m, (long long)sh[i].k,
              (long long)lay[i].m);
    }
    CHECK(count(n, "attention_paged") == 1, "attention buckets: %d", count(n, "attention_paged"));
    const int64_t mk[5][2] = {{64, 64}, {32, 64}, {160, 64}, {64, 160}, {512, 64}};
    for (int i = 0; i < 5; i++) {
        kiln_shape s = {.m = mk[i][0], .k = mk[i][1], .quant = quant, .group = 32};
        CHECK(has(n, "gemv_int4", s), "gemv m%lld k%lld missing", (long long)s.m, (long long)s.k);
        s.n = 64;
        CHECK(has(n, "gemm_int4", s) == (i < 4), "gemm m%lld k%lld n64", (long long)s.m, (long long)s.k);
    }
    for (int T = 1; T <= 64; T *= 64) {
        CHECK(has(n, "embed_gather", (kiln_shape){.m = T, .k = 64, .n = 512, .quant = KILN_Q8_0, .group = 32}),
              "embed T=%d", T);
        CHECK(has(n, "rmsnorm", (kiln_shape){.m = T, .k = 64, .op = 0}), "rmsnorm op0 T=%d", T);
        CHECK(has(n, "rmsnorm", (kiln_shape){.m = T, .k = 64, .op = 1}), "rmsnorm op1 T=%d", T);
        CHECK(has(n, "silu_mul", (kiln_shape){.m = T * 160}), "silu T=%d", T);
        for (int h = 2; h <= 6; h += 2) {
            int found = 0;
            for (int i = 0; i < n; i++)
                found += !strcmp(kn[i], "rope") && sh[i].m == T && sh[i].heads == h && sh[i].head_dim == 16 &&
                         sh[i].k == 16 && sh[i].op == 0 && sh[i].n > 0;
            CHECK(found == (h < 6 || T == 1), "rope T=%d heads %d: %d", T, h, found);
        }
    }
    CHECK(has(n, "kv_append",
              (kiln_shape){.heads = 4, .kv_heads = 2, .head_dim = 16, .page_size = 64, .ctx = 0}),
          "kv_append");
    CHECK(has(n, "attention_paged",
              (kiln_shape){.heads = 4, .kv_heads = 2, .head_dim = 16, .page_size = 64, .ctx = 256}),
          "attention ctx 256");
    CHECK(has(n, "argmax", (kiln_shape){.m = 512}), "argmax");
    /* every kernel it names exists in the registry */
    for (int i = 0; i < n; i++)
        CHECK(kiln_kernel_find(kn[i]) != NULL, "unknown kernel %s", kn[i]);

    /* --precision fast: the same pairs, the matrix shapes allow int8 activations */
    int n8 = 0;
    CHECK_OK(kiln_model_tune_shapes(path, KILN_ACT_Q8, kn, sh, NULL, MAXP, &n8, &e), &e);
    CHECK(n8 == 28 && count(n8, "gemv_int4") == 7, "fast: %d pairs", n8);
    for (int i = 0; i < n8; i++)
        CHECK(sh[i].act == (!strcmp(kn[i], "gemv_int4") || !strcmp(kn[i], "gemm_int4") ? KILN_ACT_Q8 : KILN_ACT_F32),
              "fast: %s act %d", kn[i], sh[i].act);
    CHECK_OK(kiln_model_tune_shapes(path, KILN_ACT_F32, kn, sh, NULL, MAXP, &n, &e), &e);

    /* too small an array */
    int n2 = 0;
    CHECK(kiln_model_tune_shapes(path, KILN_ACT_F32, kn, sh, NULL, 3, &n2, &e) == KILN_E_FULL && strstr(e.msg, "28"),
          "max 3: %s", e.msg);

    /* --batch 8: the continuous-batching token classes 2, 4 and 8 on top: every projection's gemm (5
     * pairs) and the LM head's at each, one kv_append_batch and attention_paged_batch (bucket 256) each */
    int nb = 0;
    CHECK_OK(kiln_model_tune_shapes_batch(path, KILN_ACT_F32, 8, kn, sh, NULL, MAXP, &nb, &e), &e);
    CHECK(count(nb, "gemm_int4") == 5 + 3 * 6 && count(nb, "kv_append_batch") == 3 &&
              count(nb, "attention_paged_batch") == 3 && count(nb, "gemv_int4") == 7,
          "batch 8: %d gemm, %d kv_append_batch, %d attention_paged_batch", count(nb, "gemm_int4"),
          count(nb, "kv_append_batch"), count(nb, "attention_paged_batch"));
    CHECK(has(nb, "attention_paged_batch",
              (kiln_shape){.heads = 4, .kv_heads = 2, .head_dim = 16, .page_size = 64, .ctx = 256, .m = 8}) &&
              has(nb, "kv_append_batch",
                  (kiln_shape){.heads = 4, .kv_heads = 2, .head_dim = 16, .page_size = 64, .ctx = 0, .m = 2}) &&
              has(nb, "rmsnorm", (kiln_shape){.m = 4, .k = 64, .op = 1}),
          "batch 8: a batch attention, kv_append or rmsnorm class is missing");
    for (int i = 0; i < nb; i++)
        CHECK(kiln_kernel_find(kn[i]) != NULL, "unknown kernel %s", kn[i]);
    int n1 = 0;
    CHECK_OK(kiln_model_tune_shapes_batch(path, KILN_ACT_F32, 1, kn, sh, NULL, MAXP, &n1, &e), &e);
    CHECK(n1 == 28, "batch 1 adds nothing: %d pairs", n1);
}

int main(void)
{
    char dir[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/kiln-tune-shapes-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/tiny.gguf", dir);
    kiln_err e = {0};
    kiln_synth_opts o = {.preset = "tiny", .seed = 7};
    CHECK_OK(kiln_synth_write(path, &o, &e), &e);
    check_tiny(path, KILN_Q4_0);
    o.quant = KILN_GGML_Q4_1;
    CHECK_OK(kiln_synth_write(path, &o, &e), &e);
    check_tiny(path, KILN_Q4_1);
    unlink(path);
    rmdir(dir);

    int n = 0;
    CHECK(kiln_model_tune_shapes("/nonexistent/model.gguf", KILN_ACT_F32, kn, sh, NULL, MAXP, &n, &e) != 0 &&
              strstr(e.msg, "/nonexistent/model.gguf"),
          "missing file: %s", e.msg);

    const char *real = getenv("KILN_SMOLLM2");
    if (real && *real) { /* SmolLM2-135M Q4_1: 576 wide, 9/3 heads of 64, n_ff 1536, tied Q8_0 head */
        CHECK_OK(kiln_model_tune_shapes(real, KILN_ACT_F32, kn, sh, NULL, MAXP, &n, &e), &e);
        /* q=o, k=v, gate=up, down, LM head, and the stacked q+k+v (960) and gate+up (3072) */
        CHECK(count(n, "gemv_int4") == 7, "smollm2 gemv: %d", count(n, "gemv_int4"));
        CHECK(has(n, "gemv_int4", (kiln_shape){.m = 960, .k = 576, .quant = KILN_Q4_1, .group = 32}) &&
                  has(n, "gemv_int4", (kiln_shape){.m = 3072, .k = 576, .quant = KILN_Q4_1, .group = 32}),
              "smollm2 stacked gemv shapes");
        CHECK(has(n, "gemv_int4", (kiln_shape){.m = 49152, .k = 576, .quant = KILN_Q8_0, .group = 32}),
              "smollm2 LM head (tied token_embd, q8_0)");
        CHECK(count(n, "attention_paged") == 3, "smollm2 attention buckets: %d", count(n, "attention_paged"));
        for (int c = 256; c <= 4096; c *= 4)
            CHECK(has(n, "attention_paged",
                      (kiln_shape){.heads = 9, .kv_heads = 3, .head_dim = 64, .page_size = 64, .ctx = c}),
                  "smollm2 attention ctx %d", c);
    }
    return test_result();
}
