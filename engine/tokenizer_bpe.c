/* engine/tokenizer_bpe.c - GPT-2 byte-level BPE: hand-written pre-tokenizer scanners
 * and the linked-list + heap merge loop.
 *
 * The scanners implement these regexes exactly as a backtracking engine (Python's
 * `regex`, Oniguruma) evaluates them: alternatives are tried in order at each
 * position, the first that matches wins, and the next search starts where it ended.
 *   gpt2/default: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   smollm:       every \p{N} character is its own piece (HF Digits(individual_digits)),
 *                 the text between them is split with the gpt2 pattern (so a lookahead
 *                 (?!\S) sees the end of that stretch, not the digit)
 *   llama-bpe:    (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *                 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Case-insensitive contractions fold ASCII only (not U+017F or U+212A).
 * Bytes that are not valid UTF-8 count as "other" characters, one byte each. */
#define KILN_TOKENIZER_INTERNAL 1
#include "engine/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "engine/unicode.h"

enum { C_L = 1, C_N = 2, C_S = 3, C_O = 4 };

typedef struct {
    const char *s;
    size_t end;
} scan;

/* Code point at byte p (< end), its byte length in *l and class in *c. */
static inline uint32_t at(const scan *sc, size_t p, int *l, int *c)
{
    unsigned char b = (unsigned char)sc->s[p];
    uint32_t cp;
    if (b < 0x80) {
        cp = b;
        *l = 1;
        if ((b | 0x20) >= 'a' && (b | 0x20) <= 'z')
            *c = C_L;
        else if (b >= '0' && b <= '9')
            *c = C_N;
        else if (b == ' ' || (b >= 9 && b <= 13))
            *c = C_S;
        else
            *c = C_O;
        return cp;
    }
    int ok;
    *l = kiln_utf8_decode(sc->s + p, sc->end - p, &cp, &ok);
    if (!ok)
        *c = C_O;
    else if (kiln_uni_is_letter(cp))
        *c = C_L;
    else if (kiln_uni_is_number(cp))
        *c = C_N;
    else if (kiln_uni_is_space(cp))
        *c = C_S;
    else
        *c = C_O;
    return cp;
}

static inline int cls_at(const scan *sc, size_t p)
{
    int l, c;
    at(sc, p, &l, &c);
    return c;
}

/* Advance over characters of class cls from p; returns the end. */
static size_t run_of(const scan *sc, size_t p, int cls)
{
    while (p < sc->end) {
        int l, c;
        at(sc, p, &l, &c);
        if (c != cls)
            break;
        p += (size_t)l;
    }
    return p;
}

static inline int lower(int ch) { return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch; }

/* 's 't 're 've 'm 'll 'd at p: length of the match or 0. */
static size_t contraction(const scan *sc, size_t p, int icase)
{
    const char *s = sc->s;
    if (s[p] != '\'' || p + 1 >= sc->end)
        return 0;
    int a = s[p + 1], b = p + 2 < sc->end ? s[p + 2] : 0;
    if (icase) {
        a = lower(a);
        b = lower(b);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* Whitespace run starting at p: \s+(?!\S) then \s+ (and for llama3 first \s*[\r\n]+). */
static size_t whitespace(const scan *sc, size_t p, int newline_rule)
{
    size_t q = p, last = p, nl_end = 0;
    int count = 0;
    while (q < sc->end) {
        int l, c;
        uint32_t cp = at(sc, q, &l, &c);
        if (c != C_S)
            break;
        last = q;
        count++;
        q += (size_t)l;
        if (cp == '\r' || cp == '\n')
            nl_end = q;
    }
    if (newline_rule && nl_end)
        return nl_end;
    if (q == sc->end || count == 1)
        return q;
    return last; /* leave the last whitespace to prefix the next word */
}

static size_t next_gpt2(const scan *sc, size_t p)
{
    size_t k = contraction(sc, p, 0);
    if (k)
        return p + k;
    int l, c;
    uint32_t cp = at(sc, p, &l, &c);
    size_t q = p;
    if (cp == ' ' && p + 1 < sc->end) {
        int c1 = cls_at(sc, p + 1);
        if (c1 != C_S) {
            q = p + 1;
            c = c1;
        }
    }
    if (c == C_L || c == C_N || c == C_O)
        return run_of(sc, q, c);
    return whitespace(sc, p, 0);
}

static size_t next_llama3(const scan *sc, size_t p)
{
    size_t k = contraction(sc, p, 1);
    if (k)
        return p + k;
    int l, c;
    uint32_t cp = at(sc, p, &l, &c);
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (c == C_L)
        return run_of(sc, p, C_L);
    if (c != C_N && cp != '\r' && cp != '\n' && p + (size_t)l < sc->end && cls_at(sc, p + (size_t)l) == C_L)
        return run_of(sc, p + (size_t)l, C_L);
    /* \p{N}{1,3} */
    if (c == C_N) {
        size_t q = p;
        for (int i = 0; i < 3 && q < sc->end; i++) {
            int l2, c2;
            at(sc, q, &l2, &c2);
            if (c2 != C_N)
                break;
            q += (size_t)l2;
        }
        return q;
    }
    /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
    size_t q = p;
    if (cp == ' ' && p + 1 < sc->end && cls_at(sc, p + 1) == C_O) {
        q = p + 1;
        c = C_O;
    }
    if (c == C_O) {
        q = run_of(sc, q, C_O);
        while (q < sc->end && (sc->s[q] == '\r' || sc->s[q] == '\n'))
            q++;
        return q;
    }
    return whitespace(sc, p, 1);
}

typedef int (*piece_fn)(void *ctx, size_t start, size_t end);

static int pretok_run(int pretok, const char *text, size_t len, piece_fn fn, void *ctx)
{
    scan sc = {text, len};
    size_t p = 0;
    if (pretok == KILN_PRETOK_SMOLLM) {
        while (p < len) {
            int l, c;
            at(&sc, p, &l, &c);
            if (c == C_N) {
                int rc = fn(ctx, p, p + (size_t)l);
                if (rc)
                    return rc;
                p += (size_t)l;
                continue;
            }
            /* the stretch up to the next number */
            size_t e = p;
            while (e < len) {
                int l2, c2;
                at(&sc, e, &l2, &c2);
                if (c2 == C_N)
                    break;
                e += (size_t)l2;
            }
            scan sub = {text, e};
            while (p < e) {
                size_t q = next_gpt2(&sub, p);
                int rc = fn(ctx, p, q);
                if (rc)
                    return rc;
                p = q;
            }
        }
        return 0;
    }
    while (p < len) {
        size_t q = pretok == KILN_PRETOK_LLAMA3 ? next_llama3(&sc, p) : next_gpt2(&sc, p);
        int rc = fn(ctx, p, q);
        if (rc)
            return rc;
        p = q;
    }
    return 0;
}

typedef struct {
    size_t *ends;
    int max, n;
} split_ctx;

static int split_piece(void *ctx, size_t start, size_t end)
{
    (void)start;
    split_ctx *s = ctx;
    if (s->n < s->max)
        s->ends[s->n] = end;
    s->n++;
    return 0;
}

int kiln_pretok_split(const char *pre, const char *text, size_t len, size_t *ends, int max, int *n, kiln_err *e)
{
    int pretok;
    if (kiln_tok_pretok_parse(pre, &pretok))
        return kiln_fail(e, KILN_E_INVALID, "pre-tokenizer '%s' is not supported", pre);
    split_ctx s = {ends, ends ? max : 0, 0};
    pretok_run(pretok, text, len, split_piece, &s);
    *n = s.n;
    if (s.n > s.max)
        return kiln_fail(e, KILN_E_FULL, "pre-tokenize: %d pieces, room for %d", s.n, s.max);
    return 0;
}

/* ---- BPE over one piece ---- */

typedef struct {
    int32_t rank, left, lid, rid, res;
} bigram;

typedef struct {
    const kiln_tokenizer *t;
    const char *text;
    kiln_tok_emit *em;
    int llama3;
    /* scratch, grown as needed */
    int32_t *id, *prev, *next;
    bigram *heap;
    size_t cap;
    char *word;
    size_t wcap;
    kiln_err *e;
} bpe_ctx;

static inline int bg_less(const bigram *a, const bigram *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(bigram *h, int *n, bigram v)
{
    int i = (*n)++;
    while (i > 0) {
        int par = (i - 1) / 2;
        if (!bg_less(&v, &h[par]))
            break;
        h[i] = h[par];
        i = par;
    }
    h[i] = v;
}

static bigram heap_pop(bigram *h, int *n)
{
    bigram top = h[0];
    bigram v = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && bg_less(&h[c + 1], &h[c]))
            c++;
        if (!bg_less(&h[c], &v))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
    return top;
}

static void try_pair(bpe_ctx *b, int *nh, int left)
{
    if (left < 0)
        return;
    int right = b->next[left];
    if (right < 0)
        return;
    int32_t res;
    int r = kiln_tok_merge_find(b->t, b->id[left], b->id[right], &res);
    if (r >= 0)
        heap_push(b->heap, nh, (bigram){r, left, b->id[left], b->id[right], res});
}

static int grow(bpe_ctx *b, size_t n)
{
    if (n <= b->cap)
        return 0;
    size_t c = b->cap ? b->cap : 64;
    while (c < n)
        c *= 2;
    int32_t *a = realloc(b->id, c * sizeof *a);
    if (!a)
        return -1;
    b->id = a;
    if (!(a = realloc(b->prev, c * sizeof *a)))
        return -1;
    b->prev = a;
    if (!(a = realloc(b->next, c * sizeof *a)))
        return -1;
    b->next = a;
    bigram *h = realloc(b->heap, 3 * c * sizeof *h); /* n-1 initial pairs + 2 per merge */
    if (!h)
        return -1;
    b->heap = h;
    b->cap = c;
    return 0;
}

/* A symbol with no id (a byte missing from the alphabet) becomes unk, or nothing without one. */
static void emit_or_unk(kiln_tok_emit *em, const kiln_tokenizer *t, int32_t id)
{
    if (id < 0)
        id = kiln_tokenizer_unk(t);
    if (id >= 0)
        kiln_tok_emit_id(em, id);
}

static int bpe_piece(void *ctx, size_t start, size_t end)
{
    bpe_ctx *b = ctx;
    const unsigned char *s = (const unsigned char *)b->text + start;
    size_t n = end - start;
    if (b->llama3) {
        /* ignore_merges: a piece that is a whole token is taken as is */
        if (b->wcap < n * 2) {
            size_t c = n * 2 + 64;
            char *w = realloc(b->word, c);
            if (!w)
                return kiln_fail(b->e, KILN_E_NOMEM, "tokenize: out of memory");
            b->word = w;
            b->wcap = c;
        }
        size_t wl = 0;
        for (size_t i = 0; i < n; i++) {
            size_t tl;
            int32_t bt = kiln_tok_byte_token(b->t, s[i]);
            const char *tt = bt >= 0 ? kiln_token_text(b->t, bt, &tl) : NULL;
            if (!tt) {
                wl = 0;
                break;
            }
            memcpy(b->word + wl, tt, tl);
            wl += tl;
        }
        int32_t id = wl ? kiln_tok_find(b->t, b->word, wl) : -1;
        if (id >= 0) {
            kiln_tok_emit_id(b->em, id);
            return 0;
        }
    }
    if (n == 1) {
        int32_t id = kiln_tok_byte_token(b->t, s[0]);
        emit_or_unk(b->em, b->t, id);
        return 0;
    }
    if (grow(b, n))
        return kiln_fail(b->e, KILN_E_NOMEM, "tokenize: out of memory for a %zu-byte piece", n);
    for (size_t i = 0; i < n; i++) {
        b->id[i] = kiln_tok_byte_token(b->t, s[i]);
        b->prev[i] = (int32_t)i - 1;
        b->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    int nh = 0;
    for (size_t i = 0; i + 1 < n; i++)
        try_pair(b, &nh, (int)i);
    while (nh > 0) {
        bigram g = heap_pop(b->heap, &nh);
        int left = g.left, right = b->next[left];
        if (right < 0 || b->id[left] != g.lid || b->id[right] != g.rid || b->id[left] < 0)
            continue; /* stale */
        b->id[left] = g.res;
        b->next[left] = b->next[right];
        if (b->next[right] >= 0)
            b->prev[b->next[right]] = left;
        b->id[right] = -2; /* dead */
        try_pair(b, &nh, b->prev[left]);
        try_pair(b, &nh, left);
    }
    for (int i = 0; i >= 0; i = b->next[i]) {
        emit_or_unk(b->em, b->t, b->id[i]);
    }
    return 0;
}

int kiln_tok_bpe_encode(const kiln_tokenizer *t, const char *text, size_t len, kiln_tok_emit *em, kiln_err *e)
{
    bpe_ctx b = {0};
    b.t = t;
    b.text = text;
    b.em = em;
    b.e = e;
    b.llama3 = kiln_tok_pretok(t) == KILN_PRETOK_LLAMA3;
    int rc = pretok_run(kiln_tok_pretok(t), text, len, bpe_piece, &b);
    free(b.id);
    free(b.prev);
    free(b.next);
    free(b.heap);
    free(b.word);
    return rc;
}
