/* tests/engine/gguf_test.c - the GGUF reader, writer and block decoders.
 *
 * 1. Round trip: the writer emits every value type (scalars, strings,
 *    arrays of each, empty ones) and every tensor type; the reader returns
 *    the same values, bytes, dims and aligned offsets; typed getters convert
 *    what fits and name key + both types when not.
 * 2. Malformed files, built byte by byte here (not with the writer): a
 *    valid base file truncated at every length (each header boundary gets
 *    its field named), then one defect at a time. Each must fail with
 *    KILN_E_FORMAT and a message naming the file and the field.
 * 3. Block decoders against expectations computed here from per-element
 *    codes (an independent encoder): Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K
 *    (incl. the 6-bit scale packing of sub-blocks 4..7), Q5_K, Q6_K, Q8_K,
 *    F16, BF16; Q4_0/Q4_1/Q8_0 also against kernels/quant.h's repack.
 *    Quantizers: round trip error within half a step. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_dequant.h"
#include "engine/gguf_write.h"
#include "kernels/quant.h"
#include "tests/test.h"
#include "util/f16.h"
#include "util/rng.h"

static char dir[256];

static void path_for(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

/* ------------------------------------------------------------ round trip */

static const int all_types[] = {KILN_GGML_F32,  KILN_GGML_F16,  KILN_GGML_Q4_0, KILN_GGML_Q4_1, KILN_GGML_Q5_0,
                                KILN_GGML_Q5_1, KILN_GGML_Q8_0, KILN_GGML_Q2_K, KILN_GGML_Q3_K, KILN_GGML_Q4_K,
                                KILN_GGML_Q5_K, KILN_GGML_Q6_K, KILN_GGML_Q8_K, KILN_GGML_BF16};
#define N_TYPES ((int)(sizeof all_types / sizeof all_types[0]))

static void test_round_trip(uint32_t alignment)
{
    char path[512];
    path_for(path, sizeof path, "rt.gguf");
    kiln_err e = {0};
    kiln_gguf_writer *w;
    CHECK_OK(kiln_gguf_writer_open(path, &w, &e), &e);
    if (!w)
        return;
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    uint64_t u64 = 0x123456789abcdefull;
    int64_t i64 = -0x123456789abcdll;
    double f64 = 3.25e100;
    kiln_gguf_w_scalar(w, "t.u8", KILN_GGUF_U8, &u8, &e);
    kiln_gguf_w_scalar(w, "t.i8", KILN_GGUF_I8, &i8, &e);
    kiln_gguf_w_scalar(w, "t.u16", KILN_GGUF_U16, &u16, &e);
    kiln_gguf_w_scalar(w, "t.i16", KILN_GGUF_I16, &i16, &e);
    kiln_gguf_w_u32(w, "t.u32", 4000000000u, &e);
    kiln_gguf_w_i32(w, "t.i32", -7, &e);
    kiln_gguf_w_f32(w, "t.f32", 0.125f, &e);
    kiln_gguf_w_bool(w, "t.bool", 1, &e);
    kiln_gguf_w_str(w, "t.str", "héllo wörld", &e);
    kiln_gguf_w_strn(w, "t.empty", "", 0, &e);
    kiln_gguf_w_scalar(w, "t.u64", KILN_GGUF_U64, &u64, &e);
    kiln_gguf_w_scalar(w, "t.i64", KILN_GGUF_I64, &i64, &e);
    kiln_gguf_w_scalar(w, "t.f64", KILN_GGUF_F64, &f64, &e);
    kiln_gguf_w_u32(w, "general.alignment", alignment, &e);
    /* arrays of every scalar type: element i = i*3 - 5 (as that type) */
    for (int t = 0; t < KILN_GGUF_TYPE_COUNT; t++) {
        if (t == KILN_GGUF_STRING || t == KILN_GGUF_ARRAY)
            continue;
        uint8_t raw[8 * 7];
        size_t sz = kiln_gguf_type_size(t);
        for (int i = 0; i < 7; i++) {
            int64_t v = i * 3 - 5;
            uint8_t *p = raw + sz * (size_t)i;
            if (t == KILN_GGUF_F32) { float f = (float)v; memcpy(p, &f, 4); }
            else if (t == KILN_GGUF_F64) { double d = (double)v; memcpy(p, &d, 8); }
            else if (t == KILN_GGUF_BOOL) p[0] = (uint8_t)(i & 1);
            else memcpy(p, &v, sz); /* little-endian truncation */
        }
        char key[64];
        snprintf(key, sizeof key, "arr.%s", kiln_gguf_type_name(t));
        kiln_gguf_w_arr(w, key, t, raw, 7, &e);
    }
    const char *strs[] = {"a", "", "ĠHello", "<|im_end|>"};
    kiln_gguf_w_arr_str(w, "arr.string", strs, NULL, 4, &e);
    kiln_gguf_w_arr(w, "arr.empty", KILN_GGUF_I32, NULL, 0, &e);
    CHECK(e.code == 0, "metadata: %s", e.msg);

    /* one tensor per type, 2..4 dims, random bytes */
    kiln_rng r;
    kiln_rng_seed(&r, 7);
    uint8_t *bytes[N_TYPES];
    size_t nbytes[N_TYPES];
    for (int i = 0; i < N_TYPES; i++) {
        int t = all_types[i];
        int64_t dims[4] = {(int64_t)kiln_ggml_type_block_elems(t) * (1 + i % 3), 3, 2, 2};
        if (t == KILN_GGML_F32)
            dims[0] = 5; /* odd, unaligned size: padding follows */
        int nd = 2 + i % 3;
        char name[32];
        snprintf(name, sizeof name, "tensor.%s", kiln_ggml_type_name(t));
        CHECK_OK(kiln_gguf_w_tensor(w, name, t, nd, dims, &e), &e);
        int64_t ne = 1;
        for (int d = 0; d < nd; d++)
            ne *= dims[d];
        nbytes[i] = (size_t)ne / kiln_ggml_type_block_elems(t) * kiln_ggml_type_block_bytes(t);
        bytes[i] = malloc(nbytes[i]);
        for (size_t k = 0; k < nbytes[i]; k++)
            bytes[i][k] = (uint8_t)kiln_rng_u64(&r);
    }
    /* misuse is reported, not written */
    kiln_err e2 = {0};
    int64_t bad_dims[1] = {33};
    kiln_gguf_writer *w2;
    char path2[512];
    path_for(path2, sizeof path2, "never.gguf");
    CHECK_OK(kiln_gguf_writer_open(path2, &w2, &e2), &e2);
    CHECK(kiln_gguf_w_tensor(w2, "x", KILN_GGML_Q4_0, 1, bad_dims, &e2) == KILN_E_INVALID, "33 is not a block multiple");
    CHECK(kiln_gguf_w_u32(w2, "k", 1, &e2) == KILN_E_INVALID, "errors are sticky");
    kiln_gguf_writer_free(w2);
    CHECK(access(path2, F_OK) != 0, "no file left behind after a failed write");

    CHECK_OK(kiln_gguf_w_begin_data(w, &e), &e);
    for (int i = 0; i < N_TYPES; i++) { /* in uneven chunks */
        size_t half = nbytes[i] / 3;
        CHECK_OK(kiln_gguf_w_data(w, bytes[i], half, &e), &e);
        CHECK_OK(kiln_gguf_w_data(w, bytes[i] + half, nbytes[i] - half, &e), &e);
    }
    CHECK(kiln_gguf_w_written_bytes(w) == kiln_gguf_w_total_bytes(w), "written %llu of %llu",
          (unsigned long long)kiln_gguf_w_written_bytes(w), (unsigned long long)kiln_gguf_w_total_bytes(w));
    CHECK_OK(kiln_gguf_writer_finish(w, &e), &e);
    kiln_gguf_writer_free(w);

    kiln_gguf *g;
    CHECK_OK(kiln_gguf_open(path, &g, &e), &e);
    if (!g)
        goto out;
    CHECK(kiln_gguf_version(g) == 3 && kiln_gguf_alignment(g) == alignment, "v%u align %u", kiln_gguf_version(g),
          kiln_gguf_alignment(g));
    CHECK(kiln_gguf_data_offset(g) % alignment == 0, "data offset aligned");
    const kiln_gguf_kv *kv;
    CHECK((kv = kiln_gguf_find(g, "t.u8")) && kv->type == KILN_GGUF_U8 && kv->v.u == 200, "u8");
    CHECK((kv = kiln_gguf_find(g, "t.i8")) && kv->type == KILN_GGUF_I8 && kv->v.i == -100, "i8");
    CHECK((kv = kiln_gguf_find(g, "t.u16")) && kv->v.u == 60000, "u16");
    CHECK((kv = kiln_gguf_find(g, "t.i16")) && kv->v.i == -30000, "i16");
    CHECK((kv = kiln_gguf_find(g, "t.u64")) && kv->v.u == u64, "u64");
    CHECK((kv = kiln_gguf_find(g, "t.i64")) && kv->v.i == i64, "i64");
    CHECK((kv = kiln_gguf_find(g, "t.f64")) && kv->v.f == f64, "f64");
    CHECK(kiln_gguf_find(g, "t.nope") == NULL, "absent key");
    uint32_t u32;
    int32_t i32;
    float f32;
    int b;
    const char *s;
    size_t sl;
    CHECK_OK(kiln_gguf_get_u32(g, "t.u32", &u32, &e), &e);
    CHECK(u32 == 4000000000u, "u32 %u", u32);
    CHECK_OK(kiln_gguf_get_u32(g, "t.u8", &u32, &e), &e);
    CHECK(u32 == 200, "u8 widened to u32");
    CHECK_OK(kiln_gguf_get_i32(g, "t.i16", &i32, &e), &e);
    CHECK(i32 == -30000, "i16 widened to i32");
    CHECK_OK(kiln_gguf_get_i32(g, "t.i32", &i32, &e), &e);
    CHECK(i32 == -7, "i32");
    CHECK(kiln_gguf_get_u32(g, "t.i32", &u32, &e) == KILN_E_FORMAT && strstr(e.msg, "t.i32") &&
              strstr(e.msg, "-7"),
          "negative into u32: %s", e.msg);
    CHECK(kiln_gguf_get_u32(g, "t.u64", &u32, &e) == KILN_E_FORMAT && strstr(e.msg, "does not fit"),
          "u64 too big for u32: %s", e.msg);
    CHECK(kiln_gguf_get_i32(g, "t.u32", &i32, &e) == KILN_E_FORMAT, "4e9 does not fit i32");
    CHECK_OK(kiln_gguf_get_f32(g, "t.f32", &f32, &e), &e);
    CHECK(f32 == 0.125f, "f32");
    CHECK_OK(kiln_gguf_get_f32(g, "t.f64", &f32, &e), &e);
    CHECK_OK(kiln_gguf_get_bool(g, "t.bool", &b, &e), &e);
    CHECK(b == 1, "bool");
    CHECK_OK(kiln_gguf_get_str(g, "t.str", &s, &sl, &e), &e);
    CHECK(sl == strlen("héllo wörld") && !memcmp(s, "héllo wörld", sl), "string");
    CHECK_OK(kiln_gguf_get_str(g, "t.empty", &s, &sl, &e), &e);
    CHECK(sl == 0, "empty string");
    CHECK(kiln_gguf_get_u32(g, "t.str", &u32, &e) == KILN_E_FORMAT && strstr(e.msg, "'t.str'") &&
              strstr(e.msg, "string") && strstr(e.msg, "u32"),
          "wrong type names key and both types: %s", e.msg);
    CHECK(kiln_gguf_get_f32(g, "t.u32", &f32, &e) == KILN_E_FORMAT && strstr(e.msg, "u32") && strstr(e.msg, "f32"),
          "%s", e.msg);
    CHECK(kiln_gguf_get_str(g, "missing.key", &s, &sl, &e) == KILN_E_FORMAT && strstr(e.msg, "missing.key") &&
              strstr(e.msg, "rt.gguf"),
          "missing key: %s", e.msg);
    CHECK(kiln_gguf_arr(g, "t.u8", NULL, NULL, &e) == NULL && strstr(e.msg, "array"), "not an array: %s", e.msg);
    for (int t = 0; t < KILN_GGUF_TYPE_COUNT; t++) {
        if (t == KILN_GGUF_STRING || t == KILN_GGUF_ARRAY)
            continue;
        char key[64];
        snprintf(key, sizeof key, "arr.%s", kiln_gguf_type_name(t));
        int et;
        uint64_t n;
        const kiln_gguf_kv *a = kiln_gguf_arr(g, key, &et, &n, &e);
        CHECK(a && et == t && n == 7, "%s: %s", key, e.msg);
        for (int i = 0; a && i < 7; i++) {
            int64_t want = i * 3 - 5;
            if (t == KILN_GGUF_F32 || t == KILN_GGUF_F64)
                CHECK(kiln_gguf_arr_f32(a, (uint64_t)i) == (float)want, "%s[%d]", key, i);
            else if (t == KILN_GGUF_BOOL)
                CHECK(kiln_gguf_arr_i32(a, (uint64_t)i) == (i & 1), "%s[%d]", key, i);
            else if (t == KILN_GGUF_I8 || t == KILN_GGUF_I16 || t == KILN_GGUF_I32 || t == KILN_GGUF_I64)
                CHECK(kiln_gguf_arr_i64(a, (uint64_t)i) == want, "%s[%d] = %lld", key, i,
                      (long long)kiln_gguf_arr_i64(a, (uint64_t)i));
            else if (want >= 0)
                CHECK(kiln_gguf_arr_i64(a, (uint64_t)i) == want, "%s[%d]", key, i);
        }
    }
    int et;
    uint64_t n;
    const kiln_gguf_kv *a = kiln_gguf_arr(g, "arr.string", &et, &n, &e);
    CHECK(a && et == KILN_GGUF_STRING && n == 4, "string array");
    for (uint64_t i = 0; a && i < 4; i++) {
        size_t len;
        const char *p = kiln_gguf_arr_str(a, i, &len);
        CHECK(p && len == strlen(strs[i]) && !memcmp(p, strs[i], len), "string element %llu", (unsigned long long)i);
    }
    CHECK(a && kiln_gguf_arr_str(a, 4, NULL) == NULL, "out of range element");
    a = kiln_gguf_arr(g, "arr.empty", &et, &n, &e);
    CHECK(a && n == 0 && et == KILN_GGUF_I32, "empty array");

    CHECK(kiln_gguf_n_tensors(g) == N_TYPES, "%d tensors", kiln_gguf_n_tensors(g));
    for (int i = 0; i < N_TYPES; i++) {
        int t = all_types[i];
        char name[32];
        snprintf(name, sizeof name, "tensor.%s", kiln_ggml_type_name(t));
        const kiln_gguf_tensor *x = kiln_gguf_tensor_find(g, name);
        CHECK(x && x == kiln_gguf_tensor_at(g, i), "%s found in order", name);
        if (!x)
            continue;
        CHECK(x->type == t && x->n_dims == 2 + i % 3 && x->n_bytes == nbytes[i], "%s type/dims/size", name);
        CHECK(x->dims[1] == 3 && (x->n_dims < 3 || x->dims[2] == 2) && (x->n_dims == 4 || x->dims[3] == 1),
              "%s dims", name);
        CHECK(x->offset % alignment == 0, "%s offset %llu aligned", name, (unsigned long long)x->offset);
        CHECK(!memcmp(x->data, bytes[i], nbytes[i]), "%s data", name);
    }
    CHECK(kiln_gguf_tensor_find(g, "tensor.nope") == NULL, "absent tensor");
    kiln_gguf_close(g);
out:
    for (int i = 0; i < N_TYPES; i++)
        free(bytes[i]);
    unlink(path);
}

/* ------------------------------------------------------------ malformed */

typedef struct rb {
    uint8_t p[4096];
    size_t n;
} rb;

static void put(rb *b, const void *p, size_t n)
{
    memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void put_u32(rb *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(rb *b, uint64_t v) { put(b, &v, 8); }
static void put_str(rb *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

/* Knobs of the base file; zero/NULL = the valid default. */
typedef struct spec {
    const char *magic;
    uint32_t version;
    uint64_t n_tensors, n_kv; /* override counts when non-zero */
    uint64_t key_len;         /* override the first key's length */
    uint32_t vtype;           /* override the second kv's value type */
    uint64_t arr_count;       /* override the array count */
    uint32_t alignment;       /* general.alignment value */
    uint32_t ggml_type;       /* override tensor b's type */
    uint32_t n_dims;          /* override tensor b's n_dims (dims follow) */
    int zero_dims;            /* tensor b has n_dims 0 */
    uint64_t dim1;            /* override tensor b's dims[1] */
    uint64_t off_b;           /* override tensor b's offset (+1: use value-1) */
    const char *name_b;
    const char *key2;
} spec;

/* Base: v3, 3 kv (alignment u32, a string, an i32 array of 3), tensors
 * a: F32 [8] at 0 and b: Q8_0 [32, 2] at 32 (68 bytes), then data.
 * bounds[] receives the offsets after each header field. */
static void build(const spec *s, rb *b, size_t *bounds, int *nb, const char **names)
{
    int k = 0;
    b->n = 0;
#define MARK(nm) (bounds ? (bounds[k] = b->n, names[k] = (nm), k++) : 0)
    put(b, s->magic ? s->magic : "GGUF", 4);
    MARK("version");
    put_u32(b, s->version ? s->version : 3);
    MARK("tensor count");
    put_u64(b, s->n_tensors ? s->n_tensors : 2);
    MARK("metadata count");
    put_u64(b, s->n_kv ? s->n_kv : 3);
    MARK("metadata[0] key");
    put_u64(b, s->key_len ? s->key_len : strlen("general.alignment"));
    put(b, "general.alignment", strlen("general.alignment"));
    MARK("metadata 'general.alignment' value type");
    put_u32(b, KILN_GGUF_U32);
    MARK("metadata 'general.alignment' u32 value");
    put_u32(b, s->alignment ? s->alignment : 32);
    MARK("metadata[1] key");
    put_str(b, s->key2 ? s->key2 : "general.name");
    MARK("value type");
    put_u32(b, s->vtype ? s->vtype : KILN_GGUF_STRING);
    MARK("string value");
    put_str(b, "tiny");
    MARK("metadata[2] key");
    put_str(b, "x.arr");
    put_u32(b, KILN_GGUF_ARRAY);
    MARK("array element type");
    put_u32(b, KILN_GGUF_I32);
    MARK("array count");
    put_u64(b, s->arr_count ? s->arr_count : 3);
    MARK("metadata 'x.arr'");
    for (int i = 0; i < 3; i++)
        put_u32(b, (uint32_t)i);
    MARK("tensor[0] name");
    put_str(b, "a");
    MARK("tensor 'a' n_dims");
    put_u32(b, 1);
    MARK("tensor 'a' dims[0]");
    put_u64(b, 8);
    MARK("tensor 'a' type");
    put_u32(b, KILN_GGML_F32);
    MARK("tensor 'a' offset");
    put_u64(b, 0);
    MARK("tensor[1] name");
    put_str(b, s->name_b ? s->name_b : "b");
    MARK("n_dims");
    uint32_t nd = s->zero_dims ? 0 : s->n_dims ? s->n_dims : 2;
    put_u32(b, nd);
    MARK("dims[0]");
    if (nd)
        put_u64(b, 32);
    for (uint32_t d = 1; d < nd; d++)
        put_u64(b, d == 1 && s->dim1 ? s->dim1 : 2);
    MARK("type");
    put_u32(b, s->ggml_type ? s->ggml_type : KILN_GGML_Q8_0);
    MARK("offset");
    put_u64(b, s->off_b ? s->off_b - 1 : 32);
    MARK("data section");
    while (b->n % 32)
        b->p[b->n++] = 0;
    for (int i = 0; i < 32 + 68; i++)
        b->p[b->n++] = (uint8_t)i;
    if (nb)
        *nb = k;
#undef MARK
}

static int open_bytes(const uint8_t *p, size_t n, kiln_err *e)
{
    char path[512];
    path_for(path, sizeof path, "bad.gguf");
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
    kiln_gguf *g = NULL;
    kiln_err_clear(e);
    int rc = kiln_gguf_open(path, &g, e);
    kiln_gguf_close(g);
    unlink(path);
    return rc;
}

/* The spec must fail with KILN_E_FORMAT, naming the file and `needle`. */
static void expect_bad(const char *what, const spec *s, const char *needle)
{
    rb b;
    kiln_err e;
    build(s, &b, NULL, NULL, NULL);
    int rc = open_bytes(b.p, b.n, &e);
    CHECK(rc == KILN_E_FORMAT && strstr(e.msg, "bad.gguf") && strstr(e.msg, needle),
          "%s: rc %d, message \"%s\" should name \"%s\"", what, rc, e.msg, needle);
}

static void test_malformed(void)
{
    rb b;
    kiln_err e;
    size_t bounds[64];
    const char *names[64];
    int nb;
    spec base = {0};
    build(&base, &b, bounds, &nb, names);
    CHECK(open_bytes(b.p, b.n, &e) == 0, "the base file is valid: %s", e.msg);

    /* every truncation fails cleanly; at a field boundary the message names it */
    for (size_t len = 0; len < b.n; len++) {
        int rc = open_bytes(b.p, len, &e);
        CHECK(rc == KILN_E_FORMAT, "truncated to %zu bytes: rc %d (%s)", len, rc, e.msg);
        /* the code does not depend on the caller passing an error struct */
        CHECK(open_bytes(b.p, len, NULL) == rc, "truncated to %zu bytes, no error struct: another code", len);
        CHECK(strstr(e.msg, "truncated") || strstr(e.msg, "too long") || strstr(e.msg, "past end") ||
                  strstr(e.msg, "too large"),
              "truncated to %zu: %s", len, e.msg);
        for (int k = 0; k < nb; k++)
            /* (early on, the up-front bound on the counts may fire first) */
            if (bounds[k] == len && !strstr(e.msg, names[k]) && !strstr(e.msg, "count"))
                CHECK(0, "truncated at the %s boundary (%zu): \"%s\"", names[k], len, e.msg);
    }

    spec s;
    s = base; s.magic = "GGUG"; expect_bad("bad magic", &s, "bad magic");
    s = base; s.magic = "\x7f" "ELF"; expect_bad("ELF magic", &s, "\\x7fELF");
    s = base; s.version = 1; expect_bad("version 1", &s, "unsupported GGUF version 1");
    s = base; s.version = 4; expect_bad("version 4", &s, "unsupported GGUF version 4");
    s = base; s.version = 0x03000000; expect_bad("big-endian", &s, "big-endian");
    s = base; s.n_tensors = 1ull << 60; expect_bad("tensor count 2^60", &s, "tensor count 1152921504606846976");
    s = base; s.n_kv = 1ull << 40; expect_bad("metadata count huge", &s, "metadata count");
    s = base; s.n_kv = UINT64_MAX; expect_bad("metadata count 2^64-1", &s, "metadata count");
    s = base; s.key_len = 1ull << 62; expect_bad("key length 2^62", &s, "metadata[0] key: string length 4611686018427387904 too long");
    s = base; s.key_len = UINT64_MAX; expect_bad("key length 2^64-1", &s, "too long");
    s = base; s.arr_count = 1ull << 61; expect_bad("array count huge", &s, "array count");
    s = base; s.arr_count = 4; expect_bad("array count one too many", &s, "");
    s = base; s.vtype = 13; expect_bad("unknown value type", &s, "unknown value type 13");
    s = base; s.vtype = 0xffffffffu; expect_bad("unknown value type", &s, "general.name");
    s = base; s.ggml_type = 4; expect_bad("removed ggml type 4", &s, "tensor 'b': unknown or unsupported tensor type 4");
    s = base; s.ggml_type = 39; expect_bad("unknown ggml type", &s, "type 39");
    s = base; s.n_dims = 5; expect_bad("n_dims 5", &s, "tensor 'b': n_dims 5");
    s = base; s.zero_dims = 1; expect_bad("n_dims 0", &s, "n_dims 0");
    s = base; s.dim1 = 1ull << 62; expect_bad("dims product overflow", &s, "dims overflow");
    s = base; s.dim1 = 1ull << 63; expect_bad("dim > int64", &s, "dims[1]");
    s = base; s.dim1 = 1ull << 40; expect_bad("dims beyond the file", &s, "tensor 'b'");
    s = base; s.dim1 = 3; expect_bad("tensor data past EOF", &s, "tensor 'b': data [");
    s = base; s.off_b = 4096 + 1; expect_bad("offset past EOF", &s, "past end of file");
    s = base; s.off_b = (1ull << 63) + 1; expect_bad("offset 2^63", &s, "past end of file");
    s = base; s.off_b = 48 + 1; expect_bad("misaligned offset", &s, "offset 48 is not a multiple of the alignment 32");
    s = base; s.off_b = 0 + 1; expect_bad("overlapping tensors", &s, "overlaps");
    s = base; s.alignment = 3; expect_bad("alignment 3", &s, "general.alignment 3 is not a power of two");
    s = base; s.alignment = 0x80000001u; expect_bad("alignment odd", &s, "power of two");
    s = base; s.name_b = "a"; expect_bad("duplicate tensor names", &s, "duplicate tensor name 'a'");
    s = base; s.name_b = ""; expect_bad("empty tensor name", &s, "empty name");
    s = base; s.name_b = "0123456789012345678901234567890123456789012345678901234567890123";
    expect_bad("64-byte tensor name", &s, "too long");
    s = base; s.key2 = "general.alignment"; expect_bad("duplicate key", &s, "duplicate metadata key 'general.alignment'");
    /* alignment 64: b's offset 32 becomes misaligned */
    s = base; s.alignment = 64; expect_bad("alignment 64", &s, "alignment 64");

    /* open errors that are not format errors */
    kiln_gguf *g;
    CHECK(kiln_gguf_open("/nonexistent/x.gguf", &g, &e) == KILN_E_IO && g == NULL && strstr(e.msg, "x.gguf"),
          "missing file: %s", e.msg);
    CHECK(kiln_gguf_open(dir, &g, &e) == KILN_E_IO, "a directory: %s", e.msg);
}

/* ------------------------------------------------------------ decoders */

static void put_f16(uint8_t *p, float f)
{
    uint16_t h = kiln_f32_to_f16(f);
    memcpy(p, &h, 2);
}

static int check_row(const char *what, int type, const void *src, int64_t n, const float *want)
{
    float *got = malloc((size_t)n * sizeof *got);
    kiln_err e = {0};
    int bad = 0;
    CHECK_OK(kiln_gguf_dequant_row(type, src, n, got, &e), &e);
    for (int64_t i = 0; i < n && bad < 5; i++)
        if (got[i] != want[i]) {
            CHECK(0, "%s element %lld: %g, want %g", what, (long long)i, (double)got[i], (double)want[i]);
            bad++;
        }
    free(got);
    return bad;
}

static void test_dequant(void)
{
    kiln_rng r;
    kiln_rng_seed(&r, 42);
    enum { NB = 3 };
    float want[256 * NB];
    uint8_t blk[292 * NB];
    kiln_err e = {0};

    /* Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 from per-element codes */
    for (int type = 0; type < 5; type++) {
        static const int types[] = {KILN_GGML_Q4_0, KILN_GGML_Q4_1, KILN_GGML_Q5_0, KILN_GGML_Q5_1, KILN_GGML_Q8_0};
        static const int bytes[] = {18, 20, 22, 24, 34};
        int t = types[type];
        memset(blk, 0, sizeof blk);
        for (int bi = 0; bi < NB; bi++) {
            uint8_t *b = blk + bi * bytes[type];
            float d = (float)(bi + 1) * 0.25f * (bi == 1 ? -1 : 1), m = -1.5f + bi;
            put_f16(b, d);
            int has_m = t == KILN_GGML_Q4_1 || t == KILN_GGML_Q5_1;
            if (has_m)
                put_f16(b + 2, m);
            int hdr = has_m ? 4 : 2;
            int five = t == KILN_GGML_Q5_0 || t == KILN_GGML_Q5_1;
            uint32_t qh = 0;
            for (int k = 0; k < 32; k++) {
                float w;
                if (t == KILN_GGML_Q8_0) {
                    int q = (int)kiln_rng_below(&r, 256) - 128;
                    b[2 + k] = (uint8_t)(int8_t)q;
                    w = q * d;
                } else {
                    int q = (int)kiln_rng_below(&r, five ? 32 : 16);
                    uint8_t *qs = b + hdr + (five ? 4 : 0);
                    qs[k % 16] |= (uint8_t)((q & 15) << (k < 16 ? 0 : 4));
                    if (five && (q & 16))
                        qh |= 1u << k;
                    int off = t == KILN_GGML_Q4_0 ? 8 : t == KILN_GGML_Q5_0 ? 16 : 0;
                    w = has_m ? q * d + m : (q - off) * d;
                }
                want[bi * 32 + k] = w;
            }
            if (five)
                memcpy(b + hdr, &qh, 4);
        }
        check_row(kiln_ggml_type_name(t), t, blk, 32 * NB, want);

        /* the repack in kernels/quant.h agrees (one row of NB blocks) */
        if (t == KILN_GGML_Q4_0 || t == KILN_GGML_Q4_1 || t == KILN_GGML_Q8_0) {
            int kq = t == KILN_GGML_Q4_0 ? KILN_Q4_0 : t == KILN_GGML_Q4_1 ? KILN_Q4_1 : KILN_Q8_0;
            kiln_qmatrix q;
            CHECK_OK(kiln_qmatrix_alloc(&q, kq, 32, 1, 32 * NB, &e), &e);
            CHECK_OK(kiln_repack_from_gguf(&q, 0, t, blk, &e), &e);
            float out[32 * NB];
            kiln_dequantize_row(&q, 0, out);
            check_row("repack", t, blk, 32 * NB, out);
            kiln_qmatrix_free(&q);
        }
    }

    /* Q4_K and Q5_K: 8 sub-blocks with 6-bit scales/mins using all 6 bits */
    for (int five = 0; five < 2; five++) {
        int bb = five ? 176 : 144, t = five ? KILN_GGML_Q5_K : KILN_GGML_Q4_K;
        memset(blk, 0, sizeof blk);
        for (int bi = 0; bi < NB; bi++) {
            uint8_t *b = blk + bi * bb;
            float d = 0.125f * (bi + 1), dmin = 0.0625f * (bi + 2);
            put_f16(b, d);
            put_f16(b + 2, dmin);
            int sc[8], mn[8];
            for (int j = 0; j < 8; j++) {
                sc[j] = (int)kiln_rng_below(&r, 64);
                mn[j] = (int)kiln_rng_below(&r, 64);
            }
            sc[4] = 63; mn[7] = 48; sc[5] = 17; mn[4] = 33; /* high bits set for j >= 4 */
            uint8_t *s = b + 4;
            for (int j = 0; j < 4; j++) {
                s[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
                s[j + 4] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
                s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
            }
            uint8_t *qh = b + 16, *qs = b + (five ? 48 : 16);
            for (int i = 0; i < 256; i++) {
                int q = (int)kiln_rng_below(&r, five ? 32 : 16);
                int c = i / 64, hi = (i % 64) >= 32, l = i % 32;
                qs[32 * c + l] |= (uint8_t)((q & 15) << (hi ? 4 : 0));
                if (five && (q & 16))
                    qh[l] |= (uint8_t)(1 << (2 * c + hi));
                int sub = 2 * c + hi;
                want[bi * 256 + i] = d * (float)sc[sub] * (float)q - dmin * (float)mn[sub];
            }
        }
        check_row(kiln_ggml_type_name(t), t, blk, 256 * NB, want);
    }

    /* Q6_K: inverse of FORMATS.md's layout, element by element */
    memset(blk, 0, sizeof blk);
    for (int bi = 0; bi < NB; bi++) {
        uint8_t *b = blk + bi * 210;
        float d = 0.03125f * (bi + 1);
        put_f16(b + 208, d);
        int8_t *sc = (int8_t *)(b + 192);
        for (int j = 0; j < 16; j++)
            sc[j] = (int8_t)((int)kiln_rng_below(&r, 256) - 128);
        for (int i = 0; i < 256; i++) {
            int code = (int)kiln_rng_below(&r, 64);
            int half = i / 128, g = (i % 128) / 32, l = i % 32;
            uint8_t *ql = b + 64 * half, *qh = b + 128 + 32 * half;
            int li = l + (g & 1) * 32;
            ql[li] |= (uint8_t)((code & 15) << (g >= 2 ? 4 : 0));
            qh[l] |= (uint8_t)((code >> 4) << (2 * g));
            want[bi * 256 + i] = d * (float)sc[8 * half + 2 * g + l / 16] * (float)(code - 32);
        }
    }
    check_row("Q6_K", KILN_GGML_Q6_K, blk, 256 * NB, want);

    /* Q8_K */
    for (int bi = 0; bi < NB; bi++) {
        uint8_t *b = blk + bi * 292;
        float d = 0.01f * (bi + 1);
        memcpy(b, &d, 4);
        for (int i = 0; i < 256; i++) {
            int q = (int)kiln_rng_below(&r, 256) - 128;
            b[4 + i] = (uint8_t)(int8_t)q;
            want[bi * 256 + i] = d * (float)q;
        }
    }
    check_row("Q8_K", KILN_GGML_Q8_K, blk, 256 * NB, want);

    /* F16 / BF16: exactly representable values */
    uint16_t h[8], bf[8];
    float fv[8] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 0.099975586f, -1024.0f};
    for (int i = 0; i < 8; i++)
        h[i] = kiln_f32_to_f16(fv[i]);
    check_row("F16", KILN_GGML_F16, h, 8, fv);
    float bv[8] = {0.0f, 1.0f, -2.5f, 3.0e38f, 1.0e-30f, 0.5f, -0.75f, 256.0f};
    for (int i = 0; i < 8; i++) {
        uint32_t u;
        memcpy(&u, &bv[i], 4);
        bf[i] = (uint16_t)(u >> 16);
        u &= 0xffff0000u;
        memcpy(&bv[i], &u, 4);
    }
    check_row("BF16", KILN_GGML_BF16, bf, 8, bv);

    /* errors */
    float out[256];
    CHECK(kiln_gguf_dequant_row(KILN_GGML_Q2_K, blk, 256, out, &e) == KILN_E_INVALID && strstr(e.msg, "Q2_K"),
          "unsupported type named: %s", e.msg);
    CHECK(kiln_gguf_dequant_row(KILN_GGML_Q4_0, blk, 33, out, &e) == KILN_E_INVALID && strstr(e.msg, "33"),
          "partial block: %s", e.msg);
    CHECK(kiln_gguf_dequant_row(99, blk, 32, out, &e) == KILN_E_INVALID, "unknown type");

    /* quantizers: within half a step of the input, scale from the block */
    float x[256];
    for (int i = 0; i < 256; i++)
        x[i] = kiln_rng_normal(&r) * (i < 32 ? 0.01f : 1.0f);
    x[40] = 0; /* a zero block is fine too */
    const int qtypes[] = {KILN_GGML_Q4_0, KILN_GGML_Q4_1, KILN_GGML_Q8_0, KILN_GGML_F16, KILN_GGML_BF16};
    for (int qi = 0; qi < 5; qi++) {
        int t = qtypes[qi];
        CHECK_OK(kiln_gguf_quant_row(t, x, 256, blk, &e), &e);
        CHECK_OK(kiln_gguf_dequant_row(t, blk, 256, out, &e), &e);
        for (int bi = 0; bi < 8; bi++) {
            float amax = 0, mn = x[bi * 32], mx = x[bi * 32];
            for (int j = 0; j < 32; j++) {
                float v = x[bi * 32 + j];
                amax = fabsf(v) > amax ? fabsf(v) : amax;
                mn = v < mn ? v : mn;
                mx = v > mx ? v : mx;
            }
            float step = t == KILN_GGML_Q4_0 ? amax / 8 : t == KILN_GGML_Q4_1 ? (mx - mn) / 15
                       : t == KILN_GGML_Q8_0 ? amax / 127 : amax / 128;
            for (int j = 0; j < 32; j++) {
                float err = fabsf(out[bi * 32 + j] - x[bi * 32 + j]);
                CHECK(err <= step * 0.51f + amax * 2e-3f, "%s block %d element %d: error %g, step %g",
                      kiln_ggml_type_name(t), bi, j, (double)err, (double)step);
            }
        }
    }
    CHECK(kiln_gguf_quant_row(KILN_GGML_Q4_K, x, 256, blk, &e) == KILN_E_INVALID && strstr(e.msg, "Q4_K"),
          "quantize Q4_K unsupported: %s", e.msg);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/kiln-gguf-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip(32);
    test_round_trip(64);
    test_malformed();
    test_dequant();
    rmdir(dir);
    return test_result();
}
