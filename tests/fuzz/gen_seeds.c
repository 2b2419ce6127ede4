/* tests/fuzz/gen_seeds.c - writes the GGUF seeds of tests/fuzz/corpus/gguf:
 *   micro_q4_0.gguf `kiln synth --preset micro`: a whole Llama file with its
 *                   tokenizer in ~29 KB
 *   types.gguf      one 256-element tensor of every type the decoder knows
 *                   (F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K..Q6_K), 1-D
 *                   and 2-D, quantized from random values
 *   spm_vocab.gguf  metadata only: a SentencePiece ("llama") vocabulary with
 *                   scores, types and byte tokens, and every scalar and
 *                   array value type
 * Run once by hand (`fuzz_gen_seeds DIR`); the outputs are committed, the
 * real model file never is. */
#include <stdio.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/gguf_dequant.h"
#include "engine/gguf_write.h"
#include "engine/synth.h"
#include "util/rng.h"

static int types_file(const char *path, kiln_err *e)
{
    static const int types[] = {KILN_GGML_F32,  KILN_GGML_F16,  KILN_GGML_BF16, KILN_GGML_Q4_0, KILN_GGML_Q4_1,
                                KILN_GGML_Q5_0, KILN_GGML_Q5_1, KILN_GGML_Q8_0, KILN_GGML_Q2_K, KILN_GGML_Q3_K,
                                KILN_GGML_Q4_K, KILN_GGML_Q5_K, KILN_GGML_Q6_K};
    enum { NT = sizeof types / sizeof types[0], N = 256 };
    kiln_gguf_writer *w;
    int rc = kiln_gguf_writer_open(path, &w, e);
    if (rc)
        return rc;
    kiln_gguf_w_str(w, "general.architecture", "llama", e);
    for (int i = 0; i < NT; i++) {
        char name[64];
        int64_t d1[1] = {N}, d2[2] = {N / 2, 2};
        snprintf(name, sizeof name, "t%d.%s.1d", i, kiln_ggml_type_name(types[i]));
        kiln_gguf_w_tensor(w, name, types[i], 1, d1, e);
        if (kiln_ggml_type_block_elems(types[i]) <= N / 2) {
            snprintf(name, sizeof name, "t%d.%s.2d", i, kiln_ggml_type_name(types[i]));
            kiln_gguf_w_tensor(w, name, types[i], 2, d2, e);
        }
    }
    if ((rc = kiln_gguf_w_begin_data(w, e)))
        goto out;
    kiln_rng r;
    kiln_rng_seed(&r, 5);
    float x[N];
    unsigned char q[4 * N];
    for (int i = 0; i < NT && !rc; i++) {
        for (int j = 0; j < N; j++)
            x[j] = kiln_rng_uniform(&r, -2, 2);
        size_t bytes = (size_t)N / kiln_ggml_type_block_elems(types[i]) * kiln_ggml_type_block_bytes(types[i]);
        if (kiln_gguf_quant_row(types[i], x, N, q, e)) { /* types the writer cannot make: random blocks */
            for (size_t j = 0; j < bytes; j++)
                q[j] = (unsigned char)kiln_rng_below(&r, 256);
        }
        rc = kiln_gguf_w_data(w, q, bytes, e);
        if (!rc && kiln_ggml_type_block_elems(types[i]) <= N / 2)
            rc = kiln_gguf_w_data(w, q, bytes, e);
    }
    if (!rc)
        rc = kiln_gguf_writer_finish(w, e);
out:
    kiln_gguf_writer_free(w);
    return rc;
}

static int spm_file(const char *path, kiln_err *e)
{
    kiln_gguf_writer *w;
    int rc = kiln_gguf_writer_open(path, &w, e);
    if (rc)
        return rc;
    enum { N = 3 + 256 + 6 };
    static const char *const pieces[] = {"\xe2\x96\x81", "\xe2\x96\x81" "the", "e", "t", "Hello", "caf" "\xc3\xa9"};
    const char *tokens[N];
    char bytes[256][8];
    float scores[N];
    int32_t types[N];
    tokens[0] = "<unk>", tokens[1] = "<s>", tokens[2] = "</s>";
    types[0] = 2, types[1] = types[2] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        tokens[3 + b] = bytes[b];
        types[3 + b] = 6;
    }
    for (int i = 0; i < 6; i++) {
        tokens[259 + i] = pieces[i];
        types[259 + i] = 1;
    }
    for (int i = 0; i < N; i++)
        scores[i] = -(float)i;
    kiln_gguf_w_str(w, "general.architecture", "llama", e);
    kiln_gguf_w_str(w, "tokenizer.ggml.model", "llama", e);
    kiln_gguf_w_arr_str(w, "tokenizer.ggml.tokens", tokens, NULL, N, e);
    kiln_gguf_w_arr(w, "tokenizer.ggml.scores", KILN_GGUF_F32, scores, N, e);
    kiln_gguf_w_arr(w, "tokenizer.ggml.token_type", KILN_GGUF_I32, types, N, e);
    kiln_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1, e);
    kiln_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2, e);
    kiln_gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", 0, e);
    kiln_gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", 1, e);
    kiln_gguf_w_str(w, "tokenizer.chat_template", "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}",
                    e);
    /* every value type once */
    uint8_t u8 = 200;
    int8_t i8 = -5;
    uint16_t u16 = 60000;
    int16_t i16 = -300;
    uint64_t u64 = 1ull << 40;
    int64_t i64 = -(1ll << 40);
    double f64 = 2.5;
    kiln_gguf_w_scalar(w, "x.u8", KILN_GGUF_U8, &u8, e);
    kiln_gguf_w_scalar(w, "x.i8", KILN_GGUF_I8, &i8, e);
    kiln_gguf_w_scalar(w, "x.u16", KILN_GGUF_U16, &u16, e);
    kiln_gguf_w_scalar(w, "x.i16", KILN_GGUF_I16, &i16, e);
    kiln_gguf_w_scalar(w, "x.u64", KILN_GGUF_U64, &u64, e);
    kiln_gguf_w_scalar(w, "x.i64", KILN_GGUF_I64, &i64, e);
    kiln_gguf_w_scalar(w, "x.f64", KILN_GGUF_F64, &f64, e);
    kiln_gguf_w_i32(w, "x.i32", -7, e);
    int64_t a64[3] = {1, -2, 3};
    double af64[2] = {0.5, -1.5};
    uint8_t ab[3] = {1, 0, 1};
    kiln_gguf_w_arr(w, "x.arr_i64", KILN_GGUF_I64, a64, 3, e);
    kiln_gguf_w_arr(w, "x.arr_f64", KILN_GGUF_F64, af64, 2, e);
    kiln_gguf_w_arr(w, "x.arr_bool", KILN_GGUF_BOOL, ab, 3, e);
    if (!(rc = kiln_gguf_w_begin_data(w, e)))
        rc = kiln_gguf_writer_finish(w, e);
    kiln_gguf_writer_free(w);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR (writes the GGUF seeds there)\n", argv[0]);
        return 2;
    }
    char path[4096];
    kiln_err e = {0};
    int rc = 0;
    kiln_synth_opts so = {.preset = "micro", .quant = KILN_GGML_Q4_0, .seed = 1, .threads = 1};
    snprintf(path, sizeof path, "%s/micro_q4_0.gguf", argv[1]);
    rc = rc ? rc : kiln_synth_write(path, &so, &e);
    snprintf(path, sizeof path, "%s/types.gguf", argv[1]);
    rc = rc ? rc : types_file(path, &e);
    snprintf(path, sizeof path, "%s/spm_vocab.gguf", argv[1]);
    rc = rc ? rc : spm_file(path, &e);
    if (rc)
        fprintf(stderr, "gen_seeds: %s\n", e.msg);
    return rc ? 1 : 0;
}
