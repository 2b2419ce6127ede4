/* tests/engine/tokenizer_build_test.c - what kiln_tokenizer_new builds, against
 * plain references written here:
 *  - the GPT-2 byte alphabet: every byte tokenizes to its alphabet character's id and
 *    that token's piece is the byte (the reference mapping is GPT-2's definition,
 *    bytes_to_unicode, computed by counting);
 *  - the special-token index: random vocabularies with thousands of control and
 *    user-defined tokens that share prefixes, random texts of them, and a brute-force
 *    leftmost-longest matcher;
 *  - size: a vocabulary of 200k user-defined tokens builds (a construction quadratic
 *    in the special tokens, as an insertion sort is, runs past the test's timeout). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer.h"
#include "engine/unicode.h"
#include "tests/test.h"
#include "util/rng.h"

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the n-th other byte
 * (in increasing order) is U+0100 + n. */
static uint32_t ref_byte_cp(int b)
{
    int self = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (self)
        return (uint32_t)b;
    uint32_t n = 0;
    for (int i = 0; i < b; i++)
        n += !((i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF));
    return 256 + n;
}

/* A gpt2 vocabulary: 256 byte characters in a shuffled order, then extra tokens. */
typedef struct vocab {
    int n, cap;
    char **tok;
    int32_t *type;
} vocab;

static void vocab_add(vocab *v, const char *s, size_t len, int type)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 512;
        v->tok = realloc(v->tok, (size_t)v->cap * sizeof *v->tok);
        v->type = realloc(v->type, (size_t)v->cap * sizeof *v->type);
        if (!v->tok || !v->type) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    v->tok[v->n] = malloc(len + 1);
    if (!v->tok[v->n]) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memcpy(v->tok[v->n], s, len);
    v->tok[v->n][len] = 0;
    v->type[v->n++] = type;
}

static void vocab_free(vocab *v)
{
    for (int i = 0; i < v->n; i++)
        free(v->tok[i]);
    free(v->tok);
    free(v->type);
    memset(v, 0, sizeof *v);
}

/* byte_id[b] receives the id of byte b's character. */
static void add_byte_chars(vocab *v, kiln_rng *r, int32_t byte_id[256])
{
    int order[256];
    for (int i = 0; i < 256; i++)
        order[i] = i;
    for (int i = 255; i > 0; i--) {
        int j = (int)kiln_rng_below(r, (uint32_t)i + 1), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    for (int i = 0; i < 256; i++) {
        char buf[4];
        int l = kiln_utf8_encode(ref_byte_cp(order[i]), buf);
        byte_id[order[i]] = v->n;
        vocab_add(v, buf, (size_t)l, KILN_TOKEN_NORMAL);
    }
}

static kiln_tokenizer *build(const vocab *v, kiln_err *e)
{
    kiln_vocab_desc d = {.model = "gpt2", .pre = "gpt2", .n_tokens = v->n, .tokens = (const char *const *)v->tok,
                         .types = v->type, .bos = -1, .eos = -1, .eot = -1, .unk = -1, .pad = -1};
    kiln_tokenizer *t = NULL;
    CHECK_OK(kiln_tokenizer_new(&d, &t, e), e);
    return t;
}

static void test_byte_alphabet(void)
{
    kiln_rng r;
    kiln_rng_seed(&r, 11);
    vocab v = {0};
    int32_t byte_id[256];
    add_byte_chars(&v, &r, byte_id);
    /* U+00AD (byte 173 maps to U+0143, not to itself) is no byte: its piece is its text */
    vocab_add(&v, "\xc2\xad", 2, KILN_TOKEN_NORMAL);
    kiln_err e = {0};
    kiln_tokenizer *t = build(&v, &e);
    if (!t) {
        vocab_free(&v);
        return;
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        int32_t id = -1;
        int n = 0;
        CHECK_OK(kiln_tokenize(t, &c, 1, 0, 0, &id, 1, &n, &e), &e);
        CHECK(n == 1 && id == byte_id[b], "byte %d: %d tokens, id %d, want %d", b, n, id, byte_id[b]);
        size_t pl;
        const char *p = kiln_token_piece(t, byte_id[b], &pl);
        CHECK(p && pl == 1 && (unsigned char)p[0] == b, "byte %d: piece of %zu bytes, first %d", b, pl,
              p && pl ? (unsigned char)p[0] : -1);
    }
    size_t pl;
    const char *p = kiln_token_piece(t, 256, &pl);
    CHECK(p && pl == 2 && !memcmp(p, "\xc2\xad", 2), "U+00AD token: piece of %zu bytes", pl);
    kiln_tokenizer_free(t);
    vocab_free(&v);
}

/* Brute force: at each position the longest special token that matches (lowest id
 * among equal strings; control ones only with parse_special), else the byte. */
static int ref_tokenize(const vocab *v, const int32_t byte_id[256], const char *text, size_t len, int parse_special,
                        int32_t *out)
{
    int n = 0;
    for (size_t p = 0; p < len;) {
        int best = -1;
        size_t best_len = 0;
        for (int i = 256; i < v->n; i++) {
            if (v->type[i] == KILN_TOKEN_CONTROL && !parse_special)
                continue;
            size_t l = strlen(v->tok[i]);
            if (l > best_len && l <= len - p && !memcmp(text + p, v->tok[i], l)) {
                best = i;
                best_len = l;
            }
        }
        if (best >= 0) {
            out[n++] = best;
            p += best_len;
        } else {
            out[n++] = byte_id[(unsigned char)text[p++]];
        }
    }
    return n;
}

static void test_special_index(uint64_t seed)
{
    kiln_rng r;
    kiln_rng_seed(&r, seed);
    vocab v = {0};
    int32_t byte_id[256];
    add_byte_chars(&v, &r, byte_id);
    /* 3000 specials over a 3-letter alphabet after one of a few first bytes, lengths 1..6:
     * many share prefixes and first bytes, some repeat (the lowest id must win) */
    static const char firsts[] = "<[|a";
    for (int i = 0; i < 3000; i++) {
        char s[8];
        size_t l = 1 + kiln_rng_below(&r, 6);
        s[0] = firsts[kiln_rng_below(&r, 4)];
        for (size_t k = 1; k < l; k++)
            s[k] = "xyz"[kiln_rng_below(&r, 3)];
        vocab_add(&v, s, l, kiln_rng_below(&r, 2) ? KILN_TOKEN_CONTROL : KILN_TOKEN_USER_DEFINED);
    }
    kiln_err e = {0};
    kiln_tokenizer *t = build(&v, &e);
    if (!t) {
        vocab_free(&v);
        return;
    }
    enum { LEN = 400 };
    char text[LEN];
    int32_t got[LEN], want[LEN];
    for (int trial = 0; trial < 50; trial++) {
        for (int i = 0; i < LEN; i++)
            text[i] = "<[|axyzb "[kiln_rng_below(&r, 9)];
        for (int ps = 0; ps < 2; ps++) {
            int n = 0, nw = ref_tokenize(&v, byte_id, text, LEN, ps, want);
            CHECK_OK(kiln_tokenize(t, text, LEN, 0, ps, got, LEN, &n, &e), &e);
            int first = -1;
            for (int i = 0; i < n && i < nw && first < 0; i++)
                if (got[i] != want[i])
                    first = i;
            CHECK(n == nw && first < 0, "seed %llu trial %d parse_special %d: %d ids, want %d; first difference at %d",
                  (unsigned long long)seed, trial, ps, n, nw, first);
        }
    }
    kiln_tokenizer_free(t);
    vocab_free(&v);
}

static void test_many_specials(void)
{
    kiln_rng r;
    kiln_rng_seed(&r, 5);
    vocab v = {0};
    int32_t byte_id[256];
    add_byte_chars(&v, &r, byte_id);
    enum { N = 200000 };
    for (int i = 0; i < N; i++) {
        char s[32];
        int l = snprintf(s, sizeof s, "<|pad_%d|>", i);
        vocab_add(&v, s, (size_t)l, KILN_TOKEN_USER_DEFINED);
    }
    kiln_err e = {0};
    kiln_tokenizer *t = build(&v, &e);
    if (t) {
        /* the longest wins: <|pad_12345|> and not <|pad_1 ... */
        const char *text = "a<|pad_12345|>b<|pad_7|>";
        int32_t got[8];
        int n = 0;
        CHECK_OK(kiln_tokenize(t, text, strlen(text), 0, 0, got, 8, &n, &e), &e);
        CHECK(n == 4 && got[0] == byte_id['a'] && got[1] == 256 + 12345 && got[2] == byte_id['b'] &&
                  got[3] == 256 + 7,
              "%d ids: %d %d %d %d", n, got[0], got[1], got[2], got[3]);
        kiln_tokenizer_free(t);
    }
    vocab_free(&v);
}

int main(void)
{
    test_byte_alphabet();
    for (uint64_t seed = 1; seed <= 4; seed++)
        test_special_index(seed);
    test_many_specials();
    return test_result();
}
