/* engine/tokenizer_spm.c - SentencePiece-style BPE ("llama" vocabularies).
 *
 * Spaces become U+2581 ("▁"), with one prepended when asked (the caller decides: start
 * of text and after special tokens, with add_space_prefix). The text starts as one
 * symbol per UTF-8 character; the adjacent pair whose concatenation is a vocabulary
 * piece with the highest score is merged first (leftmost on ties), until no pair is a
 * piece. Control, unused and byte tokens are never produced by merging (SentencePiece
 * excludes them). A final symbol that is not a piece is written as its bytes'
 * <0xXX> tokens, or unk where those are missing. */
#define KILN_TOKENIZER_INTERNAL 1
#include "engine/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "engine/unicode.h"

typedef struct {
    float score;
    int32_t left;
    uint32_t size; /* bytes of the merged text, to spot stale entries */
} spm_bigram;

static inline int better(const spm_bigram *a, const spm_bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void push(spm_bigram *h, int *n, spm_bigram v)
{
    int i = (*n)++;
    while (i > 0) {
        int par = (i - 1) / 2;
        if (!better(&v, &h[par]))
            break;
        h[i] = h[par];
        i = par;
    }
    h[i] = v;
}

static spm_bigram pop(spm_bigram *h, int *n)
{
    spm_bigram top = h[0], v = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && better(&h[c + 1], &h[c]))
            c++;
        if (!better(&h[c], &v))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
    return top;
}

typedef struct {
    const kiln_tokenizer *t;
    const char *s;
    uint32_t *off, *len; /* symbol byte offset and length; len 0 = merged away */
    int32_t *prev, *next;
    spm_bigram *heap;
    int nh;
} spm_state;

static int mergeable(const kiln_tokenizer *t, int32_t id)
{
    int ty = kiln_token_type(t, id);
    return ty != KILN_TOKEN_CONTROL && ty != KILN_TOKEN_UNUSED && ty != KILN_TOKEN_BYTE;
}

static void try_pair(spm_state *st, int32_t left)
{
    if (left < 0)
        return;
    int32_t right = st->next[left];
    if (right < 0)
        return;
    uint32_t size = st->len[left] + st->len[right];
    int32_t id = kiln_tok_find(st->t, st->s + st->off[left], size);
    if (id < 0 || !mergeable(st->t, id))
        return;
    push(st->heap, &st->nh, (spm_bigram){kiln_tok_score(st->t, id), left, size});
}

static void emit_bytes(const kiln_tokenizer *t, const char *s, size_t n, kiln_tok_emit *em)
{
    for (size_t i = 0; i < n; i++) {
        int32_t id = kiln_tok_byte_token(t, (unsigned char)s[i]);
        if (id < 0)
            id = kiln_tokenizer_unk(t);
        if (id >= 0)
            kiln_tok_emit_id(em, id);
    }
}

int kiln_tok_spm_encode(const kiln_tokenizer *t, const char *text, size_t len, int space_prefix,
                        kiln_tok_emit *em, kiln_err *e)
{
    static const char sp[3] = {'\xe2', '\x96', '\x81'};
    size_t nspace = space_prefix ? 1 : 0;
    for (size_t i = 0; i < len; i++)
        nspace += text[i] == ' ';
    size_t blen = len + 2 * nspace;
    if (blen > UINT32_MAX / 2)
        return kiln_fail(e, KILN_E_INVALID, "tokenize: a %zu-byte text is too long for one fragment", len);
    char *buf = malloc(blen + 1);
    size_t nsym_max = blen;
    uint32_t *off = malloc(nsym_max * sizeof *off), *lens = malloc(nsym_max * sizeof *lens);
    int32_t *prev = malloc(nsym_max * sizeof *prev), *next = malloc(nsym_max * sizeof *next);
    spm_bigram *heap = malloc(3 * nsym_max * sizeof *heap + 1);
    int rc = 0;
    if (!buf || !off || !lens || !prev || !next || !heap) {
        rc = kiln_fail(e, KILN_E_NOMEM, "tokenize: out of memory for a %zu-byte fragment", len);
        goto out;
    }
    size_t b = 0;
    if (space_prefix) {
        memcpy(buf, sp, 3);
        b = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + b, sp, 3);
            b += 3;
        } else {
            buf[b++] = text[i];
        }
    }
    int nsym = 0;
    for (size_t p = 0; p < b;) {
        uint32_t cp;
        int l = kiln_utf8_decode(buf + p, b - p, &cp, NULL);
        off[nsym] = (uint32_t)p;
        lens[nsym] = (uint32_t)l;
        prev[nsym] = nsym - 1;
        next[nsym] = p + (size_t)l < b ? nsym + 1 : -1;
        nsym++;
        p += (size_t)l;
    }
    spm_state st = {t, buf, off, lens, prev, next, heap, 0};
    for (int i = 0; i + 1 < nsym; i++)
        try_pair(&st, i);
    while (st.nh > 0) {
        spm_bigram g = pop(st.heap, &st.nh);
        int32_t left = g.left, right = next[left];
        if (right < 0 || lens[left] == 0 || lens[right] == 0 || lens[left] + lens[right] != g.size)
            continue; /* stale */
        lens[left] += lens[right];
        lens[right] = 0;
        next[left] = next[right];
        if (next[right] >= 0)
            prev[next[right]] = left;
        try_pair(&st, prev[left]);
        try_pair(&st, left);
    }
    for (int i = nsym ? 0 : -1; i >= 0; i = next[i]) {
        int32_t id = kiln_tok_find(t, buf + off[i], lens[i]);
        if (id >= 0)
            kiln_tok_emit_id(em, id);
        else
            emit_bytes(t, buf + off[i], lens[i], em);
    }
out:
    free(buf);
    free(off);
    free(lens);
    free(prev);
    free(next);
    free(heap);
    return rc;
}
