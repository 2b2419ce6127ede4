/* tests/engine/model_meta_test.c - the real SmolLM2-135M-Instruct Q4_1 file
 * ($KILN_SMOLLM2, exported by scripts/test.sh from scripts/fetch-model.sh):
 * it opens, its hyperparameters are SmolLM2's (FORMATS.md "The real model
 * we test with"), every tensor validates, the tokenizer keys are there, and
 * each tensor dequantizes to finite values. Prints the tensor types found.
 * Without the file: SKIP (77), or FAIL when $KILN_REQUIRE_BACKENDS names
 * "model". */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_dequant.h"
#include "engine/llama_config.h"
#include "tests/test.h"

int main(void)
{
    const char *path = getenv("KILN_SMOLLM2");
    if (!path || !*path || access(path, R_OK)) {
        if (test_backend_required("model")) {
            fprintf(stderr, "FAIL: KILN_SMOLLM2 (%s) is not a readable file and 'model' is required\n",
                    path ? path : "unset");
            return 1;
        }
        KILN_SKIP("KILN_SMOLLM2 not set or not readable (run scripts/fetch-model.sh)");
    }
    kiln_err e = {0};
    kiln_gguf *g;
    CHECK_OK(kiln_gguf_open(path, &g, &e), &e);
    if (!g)
        return test_result();
    kiln_llama_config c;
    CHECK_OK(kiln_llama_config_read(g, &c, &e), &e);
    char line[512];
    kiln_llama_config_str(&c, line, sizeof line);
    printf("%s\n", line);
    CHECK(!strcmp(c.arch, "llama"), "arch %s", c.arch);
    CHECK(c.n_embd == 576 && c.n_layer == 30 && c.n_head == 9 && c.n_head_kv == 3 && c.head_dim == 64 &&
              c.n_ff == 1536 && c.n_vocab == 49152 && c.tied_output && c.rope_dim == 64,
          "SmolLM2 hyperparameters: %s", line);
    CHECK_OK(kiln_llama_validate(g, &c, &e), &e);

    const char *s;
    size_t sl;
    CHECK_OK(kiln_gguf_get_str(g, "tokenizer.ggml.model", &s, &sl, &e), &e);
    CHECK(sl == 4 && !memcmp(s, "gpt2", 4), "gpt2 tokenizer");
    CHECK_OK(kiln_gguf_get_str(g, "tokenizer.ggml.pre", &s, &sl, &e), &e);
    CHECK(sl == 6 && !memcmp(s, "smollm", 6), "smollm pre-tokenizer");
    CHECK_OK(kiln_gguf_get_str(g, "tokenizer.chat_template", &s, &sl, &e), &e);
    CHECK(memmem(s, sl, "<|im_start|>", 12) != NULL, "ChatML template");
    uint64_t nm;
    CHECK(kiln_gguf_arr(g, "tokenizer.ggml.merges", NULL, &nm, &e) && nm > 40000, "merges: %s", e.msg);

    int count[64] = {0};
    float *row = malloc(49152 * 576 * sizeof *row);
    for (int i = 0; i < kiln_gguf_n_tensors(g); i++) {
        const kiln_gguf_tensor *t = kiln_gguf_tensor_at(g, i);
        if (t->type < 64)
            count[t->type]++;
        CHECK_OK(kiln_gguf_dequant_row(t->type, t->data, t->n_elements, row, &e), &e);
        int finite = 1;
        double s2 = 0;
        for (int64_t k = 0; k < t->n_elements; k++) {
            finite &= isfinite(row[k]) != 0;
            s2 += (double)row[k] * row[k];
        }
        CHECK(finite && s2 > 0, "%s: finite, non-zero weights", t->name);
    }
    free(row);
    printf("%d tensors:", kiln_gguf_n_tensors(g));
    for (int t = 0; t < 64; t++)
        if (count[t])
            printf(" %s x%d", kiln_ggml_type_name(t), count[t]);
    printf("\n");
    const kiln_gguf_tensor *emb = kiln_gguf_tensor_find(g, "token_embd.weight");
    printf("token_embd.weight: %s\n", emb ? kiln_ggml_type_name(emb->type) : "missing");
    kiln_gguf_close(g);
    return test_result();
}
