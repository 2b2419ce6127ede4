/* tests/engine/synth_test.c - `kiln synth` output is a valid Llama GGUF.
 *
 * For the tiny preset in each quantization: the file opens, the llama
 * config reads back the preset's shape and validates, every tensor has the
 * expected dims and type, dequantized weights have the intended statistics
 * (matrices N(0, 1/sqrt(in)), embeddings std 0.5, norms ~1), the tokenizer
 * metadata is consistent (byte tokens, every merge's parts and result are
 * tokens, specials, ChatML template), and the bytes depend only on the seed
 * (same seed and a different thread count: identical; another seed:
 * different). --layers overrides the depth. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_dequant.h"
#include "engine/llama_config.h"
#include "engine/synth.h"
#include "tests/test.h"

static char dir[256];

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)sz + 1);
    *n = fread(p, 1, (size_t)sz, f);
    fclose(f);
    return p;
}

static void stats(const kiln_gguf_tensor *t, double *mean, double *std)
{
    float *w = malloc((size_t)t->n_elements * sizeof *w);
    kiln_err e = {0};
    CHECK_OK(kiln_gguf_dequant_row(t->type, t->data, t->n_elements, w, &e), &e);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < t->n_elements; i++) {
        s += w[i];
        s2 += (double)w[i] * w[i];
    }
    *mean = s / (double)t->n_elements;
    *std = sqrt(s2 / (double)t->n_elements - *mean * *mean);
    free(w);
}

static int token_index(const kiln_gguf_kv *toks, const char *s, size_t n)
{
    for (uint64_t i = 0; i < toks->arr_count; i++) {
        size_t len;
        const char *p = kiln_gguf_arr_str(toks, i, &len);
        if (len == n && !memcmp(p, s, n))
            return (int)i;
    }
    return -1;
}

static void check_tiny(const char *path, int quant)
{
    kiln_err e = {0};
    kiln_gguf *g;
    CHECK_OK(kiln_gguf_open(path, &g, &e), &e);
    if (!g)
        return;
    kiln_llama_config c;
    CHECK_OK(kiln_llama_config_read(g, &c, &e), &e);
    CHECK(!strcmp(c.arch, "llama") && c.n_embd == 64 && c.n_layer == 2 && c.n_ff == 160 && c.n_head == 4 &&
              c.n_head_kv == 2 && c.head_dim == 16 && c.rope_dim == 16 && c.n_vocab == 512 &&
              c.context_length == 256 && !c.tied_output && c.rope_theta == 10000.0f && c.rms_eps == 1e-5f,
          "tiny config");
    CHECK_OK(kiln_llama_validate(g, &c, &e), &e);
    CHECK(kiln_gguf_n_tensors(g) == 1 + 9 * 2 + 2, "%d tensors", kiln_gguf_n_tensors(g));
    for (int i = 0; i < kiln_gguf_n_tensors(g); i++) {
        const kiln_gguf_tensor *t = kiln_gguf_tensor_at(g, i);
        double mean, std;
        stats(t, &mean, &std);
        double n = (double)t->n_elements;
        if (strstr(t->name, "norm")) {
            CHECK(t->type == KILN_GGML_F32 && t->n_dims == 1 && t->dims[0] == 64, "%s F32 [64]", t->name);
            CHECK(fabs(mean - 1) < 0.05 && fabs(std - 0.05) < 0.02, "%s mean %g std %g", t->name, mean, std);
        } else if (!strcmp(t->name, "token_embd.weight")) {
            CHECK(t->type == KILN_GGML_Q8_0 && t->dims[0] == 64 && t->dims[1] == 512, "%s Q8_0 [64, 512]", t->name);
            CHECK(fabs(mean) < 4 * 0.5 / sqrt(n) && fabs(std - 0.5) < 0.01, "%s mean %g std %g", t->name, mean, std);
        } else {
            CHECK(t->type == quant && t->n_dims == 2, "%s type %s", t->name, kiln_ggml_type_name(t->type));
            double want = 1 / sqrt((double)t->dims[0]);
            /* 4-bit rounding adds variance: std within 6% */
            CHECK(fabs(mean) < 5 * want / sqrt(n) + 0.01 * want && fabs(std - want) < 0.06 * want,
                  "%s [%lld, %lld] mean %g std %g, want std %g", t->name, (long long)t->dims[0],
                  (long long)t->dims[1], mean, std, want);
        }
    }
    /* tokenizer metadata */
    const char *s;
    size_t sl;
    CHECK_OK(kiln_gguf_get_str(g, "tokenizer.ggml.model", &s, &sl, &e), &e);
    CHECK(sl == 4 && !memcmp(s, "gpt2", 4), "gpt2 model");
    CHECK_OK(kiln_gguf_get_str(g, "tokenizer.chat_template", &s, &sl, &e), &e);
    CHECK(strstr(s, "<|im_start|>") != NULL, "ChatML template");
    uint32_t bos, eos;
    CHECK_OK(kiln_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos, &e), &e);
    CHECK_OK(kiln_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos, &e), &e);
    int et;
    uint64_t nt, nm, ntt;
    const kiln_gguf_kv *toks = kiln_gguf_arr(g, "tokenizer.ggml.tokens", &et, &nt, &e);
    const kiln_gguf_kv *types = kiln_gguf_arr(g, "tokenizer.ggml.token_type", NULL, &ntt, &e);
    const kiln_gguf_kv *merges = kiln_gguf_arr(g, "tokenizer.ggml.merges", NULL, &nm, &e);
    CHECK(toks && types && merges && nt == 512 && ntt == 512 && nm > 200, "tokenizer arrays");
    if (toks && types && merges) {
        size_t len;
        const char *p = kiln_gguf_arr_str(toks, bos, &len);
        CHECK(len == 12 && !memcmp(p, "<|im_start|>", 12), "bos is <|im_start|>");
        p = kiln_gguf_arr_str(toks, eos, &len);
        CHECK(len == 10 && !memcmp(p, "<|im_end|>", 10), "eos is <|im_end|>");
        CHECK(kiln_gguf_arr_i32(types, 0) == 3 && kiln_gguf_arr_i32(types, 2) == 3 && kiln_gguf_arr_i32(types, 3) == 1,
              "token types");
        CHECK(token_index(toks, "\xc4\xa0", 2) == 3 + ' ', "byte 0x20 is 'Ġ' (U+0120)");
        CHECK(token_index(toks, "A", 1) == 3 + 'A', "printable bytes map to themselves");
        CHECK(token_index(toks, "\xc4\x80", 2) == 3, "byte 0x00 is U+0100");
        for (uint64_t i = 0; i < nm; i++) {
            const char *m = kiln_gguf_arr_str(merges, i, &len);
            const char *sp = memchr(m, ' ', len);
            CHECK(sp != NULL, "merge %llu has a space", (unsigned long long)i);
            if (!sp)
                break;
            char joined[64];
            size_t l = (size_t)(sp - m), r = len - l - 1;
            memcpy(joined, m, l);
            memcpy(joined + l, sp + 1, r);
            int li = token_index(toks, m, l), ri = token_index(toks, sp + 1, r), ji = token_index(toks, joined, l + r);
            CHECK(li >= 0 && ri >= 0 && ji > li && ji > ri, "merge %llu '%.*s': parts %d %d result %d",
                  (unsigned long long)i, (int)len, m, li, ri, ji);
        }
    }
    kiln_gguf_close(g);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/kiln-synth-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    kiln_err e = {0};
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/a.gguf", dir);
    snprintf(b, sizeof b, "%s/b.gguf", dir);

    const int quants[] = {KILN_GGML_Q4_0, KILN_GGML_Q4_1, KILN_GGML_Q8_0};
    for (int i = 0; i < 3; i++) {
        kiln_synth_opts o = {.preset = "tiny", .quant = quants[i], .seed = 11, .threads = 3};
        CHECK_OK(kiln_synth_write(a, &o, &e), &e);
        check_tiny(a, quants[i]);
    }

    /* determinism: same seed, other thread count -> same bytes; other seed differs */
    kiln_synth_opts o = {.preset = "tiny", .seed = 5, .threads = 1};
    CHECK_OK(kiln_synth_write(a, &o, &e), &e);
    o.threads = 4;
    CHECK_OK(kiln_synth_write(b, &o, &e), &e);
    size_t na = 0, nb = 0;
    uint8_t *pa = slurp(a, &na), *pb = slurp(b, &nb);
    CHECK(pa && pb && na == nb && !memcmp(pa, pb, na), "same seed: identical files (%zu, %zu bytes)", na, nb);
    free(pb);
    o.seed = 6;
    CHECK_OK(kiln_synth_write(b, &o, &e), &e);
    pb = slurp(b, &nb);
    CHECK(pa && pb && na == nb && memcmp(pa, pb, na), "another seed: same size, other bytes");
    free(pa);
    free(pb);

    /* --layers and a real shape's metadata (1 layer keeps it small) */
    kiln_synth_opts s = {.preset = "smollm2-135m", .quant = KILN_GGML_Q4_1, .seed = 1, .n_layer = 1};
    CHECK_OK(kiln_synth_write(a, &s, &e), &e);
    kiln_gguf *g;
    CHECK_OK(kiln_gguf_open(a, &g, &e), &e);
    if (g) {
        kiln_llama_config c;
        CHECK_OK(kiln_llama_config_read(g, &c, &e), &e);
        CHECK(c.n_embd == 576 && c.n_layer == 1 && c.n_ff == 1536 && c.n_head == 9 && c.n_head_kv == 3 &&
                  c.head_dim == 64 && c.n_vocab == 49152 && c.tied_output && c.rope_theta == 100000.0f,
              "smollm2 shape with 1 layer");
        CHECK_OK(kiln_llama_validate(g, &c, &e), &e);
        kiln_gguf_close(g);
    }

    /* errors */
    kiln_synth_opts bad = {.preset = "gpt5"};
    CHECK(kiln_synth_write(a, &bad, &e) == KILN_E_INVALID && strstr(e.msg, "gpt5"), "unknown preset: %s", e.msg);
    bad = (kiln_synth_opts){.preset = "tiny", .quant = KILN_GGML_Q4_K};
    CHECK(kiln_synth_write(a, &bad, &e) == KILN_E_INVALID && strstr(e.msg, "Q4_K"), "bad quant: %s", e.msg);
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/missing/x.gguf", dir);
    CHECK(kiln_synth_write(nodir, &o, &e) == KILN_E_IO, "unwritable path: %s", e.msg);

    unlink(a);
    unlink(b);
    rmdir(dir);
    return test_result();
}
