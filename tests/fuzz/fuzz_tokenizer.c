/* tests/fuzz/fuzz_tokenizer.c - encode and decode arbitrary bytes.
 *
 * Input: byte 0 picks the tokenizer and flags, the rest is the text.
 *   bits 0-1  0 gpt2 byte-level BPE, pre "smollm" (the synthetic models'
 *               vocabulary: engine/synth.h, 2000 tokens, merges, control and
 *               user-defined tokens); 1 the same, pre "llama-bpe";
 *             2 the same, pre "gpt2"; 3 SentencePiece-style ("llama") with
 *               byte fallback and a few multi-byte pieces
 *   bit 2     parse_special       bit 3  add_space_prefix (SPM)
 *   bit 4     add_bos
 * Promises checked (engine/tokenizer.h):
 *   - tokenizing never fails for lack of valid UTF-8; every id is in range;
 *     the count with max = 0 equals the count written;
 *   - byte-level BPE: detokenize(tokenize(text)) == text, special tokens
 *     rendered (any byte string comes back unchanged);
 *   - SPM: the same round trip when the text holds no U+2581 (SentencePiece
 *     turns spaces into it, so a literal one decodes as a space) and no
 *     special token is parsed (a space prefix follows each one);
 *   - the streaming detokenizer's output is valid UTF-8 and, for valid UTF-8
 *     text that round-trips, equals the text. */
#include "engine/synth.h"
#include "engine/tokenizer.h"
#include "engine/unicode.h"
#include "tests/fuzz/fuzz.h"

#define MAX_IDS 8192

/* Built on the first input and kept: a tokenizer is immutable (tokenizer.h),
 * so no input can change what the next one sees. */
static kiln_tokenizer *toks[4];

static kiln_tokenizer *gpt2_tok(const char *pre)
{
    kiln_synth_vocab v;
    kiln_err e = {0};
    if (kiln_synth_vocab_build(2000, &v, &e))
        return NULL;
    kiln_vocab_desc d = {.model = "gpt2", .pre = pre, .n_tokens = v.n_tokens, .tokens = (const char *const *)v.tokens,
                         .types = v.types, .n_merges = v.n_merges, .merges = (const char *const *)v.merges,
                         .bos = 1, .eos = 2, .eot = -1, .unk = -1, .pad = -1};
    kiln_tokenizer *t = NULL;
    kiln_tokenizer_new(&d, &t, &e);
    kiln_synth_vocab_free(&v);
    return t;
}

/* <unk> <s> </s>, <0x00>..<0xFF>, then pieces scored so that longer ones win */
static kiln_tokenizer *spm_tok(int space_prefix)
{
    static const char *const pieces[] = {
        "\xe2\x96\x81", "\xe2\x96\x81" "t", "\xe2\x96\x81" "th", "\xe2\x96\x81" "the", "e", "t", "h", "a", "\xe2\x96\x81" "a",
        "in", "er", "on", "\xe2\x96\x81" "w", "or", "ld", "\xe2\x96\x81" "wor", "\xe2\x96\x81" "world", "He", "llo",
        "Hello", "\xc3\xa9", "caf", "caf" "\xc3\xa9", "\xe4\xb8\xad", "\xe6\x96\x87", "\xe4\xb8\xad\xe6\x96\x87",
        "<|user|>", "\xf0\x9f\x98\x80",
    };
    enum { NP = sizeof pieces / sizeof pieces[0], N = 3 + 256 + NP };
    static char bytes[256][8];
    const char *tokens[N];
    float scores[N];
    int32_t types[N];
    tokens[0] = "<unk>", tokens[1] = "<s>", tokens[2] = "</s>";
    types[0] = KILN_TOKEN_UNKNOWN, types[1] = types[2] = KILN_TOKEN_CONTROL;
    scores[0] = scores[1] = scores[2] = 0;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        tokens[3 + b] = bytes[b];
        types[3 + b] = KILN_TOKEN_BYTE;
        scores[3 + b] = 0;
    }
    for (int i = 0; i < NP; i++) {
        tokens[259 + i] = pieces[i];
        types[259 + i] = i == NP - 2 ? KILN_TOKEN_CONTROL : KILN_TOKEN_NORMAL;
        scores[259 + i] = (float)strlen(pieces[i]) - 0.01f * (float)i;
    }
    kiln_vocab_desc d = {.model = "llama", .n_tokens = N, .tokens = tokens, .scores = scores, .types = types,
                         .bos = 1, .eos = 2, .eot = -1, .unk = 0, .pad = -1, .add_bos = 1,
                         .add_space_prefix = space_prefix};
    kiln_tokenizer *t = NULL;
    kiln_err e = {0};
    kiln_tokenizer_new(&d, &t, &e);
    return t;
}

static const kiln_tokenizer *pick(int which, int space_prefix)
{
    static kiln_tokenizer *spm[2];
    if (which == 3) {
        if (!spm[space_prefix])
            spm[space_prefix] = spm_tok(space_prefix);
        return spm[space_prefix];
    }
    static const char *const pre[] = {"smollm", "llama-bpe", "gpt2"};
    if (!toks[which])
        toks[which] = gpt2_tok(pre[which]);
    return toks[which];
}

static int has_lower_one_eighth_block(const char *s, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++)
        if ((unsigned char)s[i] == 0xe2 && (unsigned char)s[i + 1] == 0x96 && (unsigned char)s[i + 2] == 0x81)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] & 3, parse_special = (data[0] >> 2) & 1, space_prefix = (data[0] >> 3) & 1,
        add_bos = (data[0] >> 4) & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const kiln_tokenizer *t = pick(which, space_prefix);
    FUZZ_ASSERT(t, "the fuzz vocabulary %d did not build", which);
    kiln_err e = {0};
    int count = -1;
    int rc = kiln_tokenize(t, text, len, add_bos, parse_special, NULL, 0, &count, &e);
    FUZZ_ASSERT(rc == 0 || rc == KILN_E_FULL, "counting failed (%d): %s", rc, e.msg);
    if (count > MAX_IDS)
        return 0;
    int32_t *ids = malloc(sizeof *ids * (size_t)(count > 0 ? count : 1));
    int n = -1;
    rc = kiln_tokenize(t, text, len, add_bos, parse_special, ids, count, &n, &e);
    FUZZ_ASSERT(rc == 0, "tokenize failed (%d): %s", rc, e.msg);
    FUZZ_ASSERT(n == count, "counted %d ids, wrote %d", count, n);
    int nv = kiln_tokenizer_n_vocab(t);
    for (int i = 0; i < n; i++)
        FUZZ_ASSERT(ids[i] >= 0 && ids[i] < nv, "id %d at %d outside the vocabulary of %d", ids[i], i, nv);

    /* ids -> bytes, BOS skipped (it renders as its text) */
    int skip = n > 0 && ids[0] == kiln_tokenizer_bos(t) && add_bos ? 1 : 0;
    size_t need = 0;
    rc = kiln_detokenize(t, ids + skip, n - skip, 1, NULL, 0, &need, &e);
    FUZZ_ASSERT(rc == 0 || rc == KILN_E_FULL, "detokenize count failed (%d): %s", rc, e.msg);
    char *out = malloc(need + 1);
    size_t got = 0;
    rc = kiln_detokenize(t, ids + skip, n - skip, 1, out, need + 1, &got, &e);
    FUZZ_ASSERT(rc == 0 && got == need, "detokenize failed (%d, %zu of %zu bytes): %s", rc, got, need, e.msg);
    int round_trip = which != 3 || (!parse_special && !has_lower_one_eighth_block(text, len));
    if (round_trip)
        FUZZ_ASSERT(got == len && (len == 0 || !memcmp(out, text, len)),
                    "round trip changed the text (%zu bytes in, %zu out, vocabulary %d)", len, got, which);

    /* streaming: valid UTF-8 pieces only, the text itself when it was valid */
    kiln_detok_stream s;
    kiln_detok_stream_init(&s, t, 1);
    char *cat = malloc(4 * (need + 4) + 16);
    size_t nc = 0;
    for (int i = skip; i < n; i++) {
        const char *p;
        size_t pl;
        rc = kiln_detok_stream_push(&s, ids[i], &p, &pl, &e);
        FUZZ_ASSERT(rc == 0, "stream push: %s", e.msg);
        FUZZ_ASSERT(kiln_utf8_valid(p, pl), "stream piece %d is not valid UTF-8", i);
        FUZZ_ASSERT(nc + pl <= 4 * (need + 4), "stream output grew past 4x the bytes");
        memcpy(cat + nc, p, pl);
        nc += pl;
    }
    const char *p;
    size_t pl;
    rc = kiln_detok_stream_finish(&s, &p, &pl, &e);
    FUZZ_ASSERT(rc == 0 && kiln_utf8_valid(p, pl), "stream finish: %s", e.msg);
    FUZZ_ASSERT(nc + pl <= 4 * (need + 4), "stream output grew past 4x the bytes");
    memcpy(cat + nc, p, pl);
    nc += pl;
    kiln_detok_stream_free(&s);
    if (round_trip && kiln_utf8_valid(text, len))
        FUZZ_ASSERT(nc == len && (len == 0 || !memcmp(cat, text, len)), "stream changed valid UTF-8 text");
    free(cat);
    free(out);
    free(ids);
    return 0;
}
