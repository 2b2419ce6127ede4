/* tests/fuzz/fuzz_gguf.c - the GGUF reader and what reads through it:
 * kiln_gguf_open on arbitrary bytes, then on a file it accepted every
 * accessor (metadata scalars, arrays, tensors), the Llama config reader and
 * validator, the RoPE scaling table (rope_freqs.weight), the tokenizer built from the metadata, and the host side of the
 * tensor loader (kiln_qmatrix_from_gguf / kiln_vector_from_gguf, the
 * conversion kiln_dmat_load runs before its upload).
 * Promise under test (engine/gguf.h): any file yields a result or an error,
 * never a crash, a read outside the mapping or undefined behaviour. */
#include <math.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_dequant.h"
#include "engine/llama_config.h"
#include "engine/rope_scaling.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"
#include "tests/fuzz/fuzz.h"

/* converting tensors is the slow part: big ones (legal in a valid file) are
 * skipped so that one input stays ~milliseconds */
#define MAX_CONVERT_ELEMS (1 << 16)

static void walk_metadata(const kiln_gguf *g)
{
    volatile double sink = 0;
    for (int i = 0; i < kiln_gguf_n_kv(g); i++) {
        const kiln_gguf_kv *kv = kiln_gguf_kv_at(g, i);
        FUZZ_ASSERT(kv && kv->key && kiln_gguf_find(g, kv->key) == kv, "kv %d not found by its own key", i);
        kiln_err e = {0};
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        float f;
        int b;
        const char *s;
        size_t len;
        kiln_gguf_get_u32(g, kv->key, &u32, &e);
        kiln_gguf_get_i32(g, kv->key, &i32, &e);
        kiln_gguf_get_u64(g, kv->key, &u64, &e);
        kiln_gguf_get_f32(g, kv->key, &f, &e);
        kiln_gguf_get_bool(g, kv->key, &b, &e);
        if (!kiln_gguf_get_str(g, kv->key, &s, &len, &e) && len)
            sink += (unsigned char)s[0] + (unsigned char)s[len - 1];
        if (kv->type != KILN_GGUF_ARRAY)
            continue;
        int et;
        uint64_t n;
        FUZZ_ASSERT(kiln_gguf_arr(g, kv->key, &et, &n, &e) == kv, "array %s", kv->key);
        for (uint64_t j = 0; j < n; j += 1 + n / 64) { /* first, last and some between */
            if (et == KILN_GGUF_STRING) {
                const char *p = kiln_gguf_arr_str(kv, j, &len);
                if (p && len)
                    sink += (unsigned char)p[0] + (unsigned char)p[len - 1];
            } else if (et == KILN_GGUF_F32 || et == KILN_GGUF_F64) {
                sink += kiln_gguf_arr_f32(kv, j);
            } else {
                sink += (double)kiln_gguf_arr_i32(kv, j) + (double)kiln_gguf_arr_i64(kv, j);
            }
        }
    }
    (void)sink;
}

static void walk_tensors(const kiln_gguf *g)
{
    for (int i = 0; i < kiln_gguf_n_tensors(g); i++) {
        const kiln_gguf_tensor *t = kiln_gguf_tensor_at(g, i);
        FUZZ_ASSERT(kiln_gguf_tensor_find(g, t->name) == t, "tensor %d (%s) not found by name", i, t->name);
        FUZZ_ASSERT(t->offset + t->n_bytes <= kiln_gguf_file_size(g) - kiln_gguf_data_offset(g),
                    "tensor %s ends past the file", t->name);
        if (t->n_elements > MAX_CONVERT_ELEMS || !kiln_gguf_dequant_supported(t->type))
            continue;
        kiln_err e = {0};
        if (t->n_dims == 1) {
            float *v = malloc(sizeof *v * (size_t)t->n_elements);
            if (v)
                kiln_vector_from_gguf(g, t, v, t->n_elements, &e);
            free(v);
        } else {
            kiln_qmatrix q = {0};
            double err = 0;
            char note[160];
            if (!kiln_qmatrix_from_gguf(g, t, &q, &err, note, sizeof note, &e))
                kiln_qmatrix_free(&q);
        }
    }
}

static void tokenizer(const kiln_gguf *g)
{
    kiln_tokenizer *tok = NULL;
    kiln_err e = {0};
    if (kiln_tokenizer_from_gguf(g, &tok, &e))
        return;
    static const char text[] = "Hello world, <|im_start|>user\n caf\xc3\xa9 \xff 123";
    int32_t ids[256];
    int n = 0;
    if (!kiln_tokenize(tok, text, sizeof text - 1, 1, 1, ids, 256, &n, &e)) {
        char out[1024];
        size_t len;
        kiln_detokenize(tok, ids, n, 1, out, sizeof out, &len, &e);
    }
    kiln_tokenizer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    kiln_gguf *g = NULL;
    kiln_err e = {0};
    if (kiln_gguf_open(path, &g, &e) == 0) {
        walk_metadata(g);
        walk_tensors(g);
        kiln_llama_config c;
        if (kiln_llama_config_read(g, &c, &e) == 0) {
            char line[512];
            kiln_llama_config_str(&c, line, sizeof line);
            kiln_llama_validate(g, &c, &e);
            /* the RoPE table (rope scaling keys, rope_freqs.weight): finite and positive, or an error */
            float inv[512];
            if (c.rope_dim / 2 <= 512 && kiln_rope_inv_freq(g, &c, inv, &e) == 0)
                for (int i = 0; i < c.rope_dim / 2; i++)
                    FUZZ_ASSERT(isfinite(inv[i]) && inv[i] >= 0, "rope inv_freq[%d] = %g", i, (double)inv[i]);
        }
        tokenizer(g);
        kiln_gguf_close(g);
    } else {
        FUZZ_ASSERT(g == NULL && e.code != 0 && e.msg[0], "a failed open must leave no handle and say why");
    }
    close(fd);
    return 0;
}
