/* engine/tokenizer.c - vocabulary tables, special tokens, tokenize/detokenize driver.
 * The model-specific encoders are in tokenizer_bpe.c (GPT-2 byte level) and
 * tokenizer_spm.c (SentencePiece style). */
#define KILN_TOKENIZER_INTERNAL 1
#include "engine/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/unicode.h"

struct kiln_tokenizer {
    int model;  /* enum kiln_tok_model */
    int pretok; /* enum kiln_pretok (GPT-2 only) */
    int n;
    char *text;          /* all token strings, back to back */
    size_t *text_off;    /* n + 1 offsets */
    char *piece;         /* decoded bytes of every token */
    size_t *piece_off;   /* n + 1 offsets */
    float *scores;
    int32_t *types;
    unsigned char *eog;
    /* token string -> id: open addressing, -1 empty */
    int32_t *ht;
    size_t ht_mask;
    /* (left id, right id) -> rank, result: open addressing, rank -1 empty; one cache line
     * holds four slots, so a probe costs one miss */
    struct merge_slot {
        uint64_t key;
        int32_t rank, res;
    } *merge;
    size_t m_mask;
    int n_merges_used;
    /* special tokens (control, user-defined), grouped by first byte, longest first */
    int32_t *special;
    int special_start[257];
    int bos, eos, eot, unk, pad, add_bos, add_space_prefix;
    int32_t byte_tok[256]; /* GPT-2: id of the byte's alphabet char; SPM: id of <0xXX> */
};

/* ---- hashing ---- */

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

static size_t tok_len(const kiln_tokenizer *t, int32_t id)
{
    return t->text_off[id + 1] - t->text_off[id];
}

int kiln_tok_find(const kiln_tokenizer *t, const char *s, size_t len)
{
    size_t i = (size_t)hash_bytes(s, len) & t->ht_mask;
    for (;;) {
        int32_t id = t->ht[i];
        if (id < 0)
            return -1;
        if (tok_len(t, id) == len && memcmp(t->text + t->text_off[id], s, len) == 0)
            return id;
        i = (i + 1) & t->ht_mask;
    }
}

int kiln_tok_merge_find(const kiln_tokenizer *t, int32_t left, int32_t right, int32_t *result)
{
    if (!t->merge)
        return -1;
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    size_t i = (size_t)hash_u64(key) & t->m_mask;
    for (;;) {
        const struct merge_slot *m = &t->merge[i];
        if (m->rank < 0)
            return -1;
        if (m->key == key) {
            *result = m->res;
            return m->rank;
        }
        i = (i + 1) & t->m_mask;
    }
}

int kiln_tok_pretok(const kiln_tokenizer *t) { return t->pretok; }
int32_t kiln_tok_byte_token(const kiln_tokenizer *t, unsigned char b) { return t->byte_tok[b]; }
float kiln_tok_score(const kiln_tokenizer *t, int32_t id) { return t->scores[id]; }

int kiln_tok_pretok_parse(const char *name, int *pretok)
{
    if (!name || !*name || !strcmp(name, "default") || !strcmp(name, "gpt2") || !strcmp(name, "gpt-2"))
        *pretok = KILN_PRETOK_GPT2;
    else if (!strcmp(name, "smollm"))
        *pretok = KILN_PRETOK_SMOLLM;
    else if (!strcmp(name, "llama-bpe") || !strcmp(name, "llama3") || !strcmp(name, "llama-v3"))
        *pretok = KILN_PRETOK_LLAMA3;
    else
        return -1;
    return 0;
}

/* ---- GPT-2 byte <-> unicode alphabet ---- */

/* Bytes 33..126, 161..172 and 174..255 stand for themselves; the other 68 bytes map,
 * in increasing order, to U+0100, U+0101, ... (GPT-2's bytes_to_unicode). */
static int gpt2_self(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

static uint32_t gpt2_byte_to_cp(int b)
{
    if (gpt2_self(b))
        return (uint32_t)b;
    int k = 0;
    for (int i = 0; i < b; i++)
        k += !gpt2_self(i);
    return 256u + (uint32_t)k;
}

/* -1 if cp is not in the alphabet. */
static int gpt2_cp_to_byte(uint32_t cp)
{
    if (cp < 256)
        return gpt2_self((int)cp) ? (int)cp : -1;
    if (cp >= 256 + 68)
        return -1;
    int k = (int)(cp - 256);
    for (int b = 0; b < 256; b++)
        if (!gpt2_self(b) && k-- == 0)
            return b;
    return -1;
}

/* ---- construction ---- */

static const char *const eog_names[] = {
    "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<|end|>", "<end_of_turn>",
    "<|eom_id|>", "</s>", "<|end_of_turn|>",
};

static int check_id(int id, int n, const char *what, kiln_err *e)
{
    if (id < -1 || id >= n)
        return kiln_fail(e, KILN_E_INVALID, "tokenizer: %s id %d outside the vocabulary (%d tokens)", what, id, n);
    return 0;
}

/* Decoded bytes of token i into dst (NULL: just count). */
static size_t make_piece(const kiln_tokenizer *t, int32_t i, char *dst)
{
    const char *s = t->text + t->text_off[i];
    size_t len = tok_len(t, i);
    int type = t->types[i];
    size_t n = 0;
    if (type == KILN_TOKEN_CONTROL || type == KILN_TOKEN_USER_DEFINED) {
        if (t->model == KILN_TOK_SPM && type == KILN_TOKEN_USER_DEFINED)
            goto spm_text;
        if (dst)
            memcpy(dst, s, len);
        return len;
    }
    if (t->model == KILN_TOK_GPT2) {
        for (size_t p = 0; p < len;) {
            uint32_t cp;
            int ok;
            int l = kiln_utf8_decode(s + p, len - p, &cp, &ok);
            int b = ok ? gpt2_cp_to_byte(cp) : -1;
            if (b >= 0) {
                if (dst)
                    dst[n] = (char)b;
                n++;
            } else { /* not in the alphabet: keep the text */
                if (dst)
                    memcpy(dst + n, s + p, (size_t)l);
                n += (size_t)l;
            }
            p += (size_t)l;
        }
        return n;
    }
    if (type == KILN_TOKEN_BYTE && len == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>') {
        unsigned v;
        char hex[3] = {s[3], s[4], 0};
        if (sscanf(hex, "%2x", &v) == 1) {
            if (dst)
                dst[0] = (char)v;
            return 1;
        }
    }
    if (type == KILN_TOKEN_UNKNOWN) { /* SentencePiece renders unknown as " ⁇ " */
        static const char q[] = " \xe2\x81\x87 ";
        if (dst)
            memcpy(dst, q, sizeof q - 1);
        return sizeof q - 1;
    }
spm_text:
    for (size_t p = 0; p < len;) {
        if (p + 3 <= len && memcmp(s + p, "\xe2\x96\x81", 3) == 0) {
            if (dst)
                dst[n] = ' ';
            n++;
            p += 3;
        } else {
            if (dst)
                dst[n] = s[p];
            n++;
            p++;
        }
    }
    return n;
}

static int special_cmp_ctx_len(const kiln_tokenizer *t, int32_t a, int32_t b)
{
    unsigned char fa = (unsigned char)t->text[t->text_off[a]], fb = (unsigned char)t->text[t->text_off[b]];
    if (fa != fb)
        return fa < fb ? -1 : 1;
    size_t la = tok_len(t, a), lb = tok_len(t, b);
    if (la != lb)
        return la > lb ? -1 : 1;
    return a < b ? -1 : (a > b);
}

int kiln_tokenizer_new(const kiln_vocab_desc *d, kiln_tokenizer **out, kiln_err *e)
{
    *out = NULL;
    if (!d || !d->model || d->n_tokens <= 0 || !d->tokens)
        return kiln_fail(e, KILN_E_INVALID, "tokenizer: no model name or no tokens");
    kiln_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory");
    int rc = 0;
    if (!strcmp(d->model, "gpt2")) {
        t->model = KILN_TOK_GPT2;
        if (kiln_tok_pretok_parse(d->pre, &t->pretok)) {
            rc = kiln_fail(e, KILN_E_INVALID,
                           "tokenizer: pre-tokenizer '%s' is not supported (known: smollm, llama-bpe, gpt2, default)",
                           d->pre);
            goto fail;
        }
    } else if (!strcmp(d->model, "llama")) {
        t->model = KILN_TOK_SPM;
    } else {
        rc = kiln_fail(e, KILN_E_INVALID, "tokenizer: model '%s' is not supported (known: gpt2, llama)", d->model);
        goto fail;
    }
    int n = d->n_tokens;
    t->n = n;
    if ((rc = check_id(d->bos, n, "bos", e)) || (rc = check_id(d->eos, n, "eos", e)) ||
        (rc = check_id(d->eot, n, "eot", e)) || (rc = check_id(d->unk, n, "unk", e)) ||
        (rc = check_id(d->pad, n, "pad", e)))
        goto fail;
    t->bos = d->bos;
    t->eos = d->eos;
    t->eot = d->eot;
    t->unk = d->unk;
    t->pad = d->pad;
    t->add_bos = d->add_bos != 0;
    t->add_space_prefix = d->add_space_prefix != 0;

    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!d->tokens[i]) {
            rc = kiln_fail(e, KILN_E_INVALID, "tokenizer: token %d is NULL", i);
            goto fail;
        }
        total += d->token_lens ? d->token_lens[i] : strlen(d->tokens[i]);
    }
    t->text = malloc(total + 1);
    t->text_off = malloc(((size_t)n + 1) * sizeof *t->text_off);
    t->scores = calloc((size_t)n, sizeof *t->scores);
    t->types = malloc((size_t)n * sizeof *t->types);
    t->eog = calloc((size_t)n, 1);
    size_t cap = pow2_at_least((size_t)n * 2);
    t->ht = malloc(cap * sizeof *t->ht);
    t->ht_mask = cap - 1;
    if (!t->text || !t->text_off || !t->scores || !t->types || !t->eog || !t->ht) {
        rc = kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory for %d tokens", n);
        goto fail;
    }
    memset(t->ht, 0xff, cap * sizeof *t->ht);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t l = d->token_lens ? d->token_lens[i] : strlen(d->tokens[i]);
        t->text_off[i] = off;
        memcpy(t->text + off, d->tokens[i], l);
        off += l;
        t->types[i] = d->types ? d->types[i] : KILN_TOKEN_NORMAL;
        if (d->scores)
            t->scores[i] = d->scores[i];
    }
    t->text_off[n] = off;
    t->text[off] = 0;
    /* Insert so that a duplicated string maps to its last id (as llama.cpp's map does). */
    for (int i = 0; i < n; i++) {
        size_t l = tok_len(t, i);
        size_t h = (size_t)hash_bytes(t->text + t->text_off[i], l) & t->ht_mask;
        for (;; h = (h + 1) & t->ht_mask) {
            int32_t o = t->ht[h];
            if (o < 0) {
                t->ht[h] = i;
                break;
            }
            if (tok_len(t, o) == l && !memcmp(t->text + t->text_off[o], t->text + t->text_off[i], l)) {
                t->ht[h] = i;
                break;
            }
        }
    }

    /* byte tokens */
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int l;
        if (t->model == KILN_TOK_GPT2)
            l = kiln_utf8_encode(gpt2_byte_to_cp(b), buf);
        else
            l = snprintf(buf, sizeof buf, "<0x%02X>", b);
        t->byte_tok[b] = kiln_tok_find(t, buf, (size_t)l);
    }

    /* merges */
    if (t->model == KILN_TOK_GPT2 && d->n_merges > 0) {
        size_t mcap = pow2_at_least((size_t)d->n_merges * 2);
        t->merge = malloc(mcap * sizeof *t->merge);
        t->m_mask = mcap - 1;
        char *cat = NULL;
        size_t catcap = 0;
        if (!t->merge) {
            rc = kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory for %d merges", d->n_merges);
            goto fail;
        }
        for (size_t i = 0; i < mcap; i++)
            t->merge[i].rank = -1;
        for (int r = 0; r < d->n_merges; r++) {
            const char *m = d->merges[r];
            size_t ml = d->merge_lens ? d->merge_lens[r] : strlen(m);
            const char *sp = ml > 1 ? memchr(m + 1, ' ', ml - 1) : NULL;
            if (!sp) {
                free(cat);
                rc = kiln_fail(e, KILN_E_INVALID, "tokenizer: merge %d ('%.*s') has no space", r, (int)ml, m);
                goto fail;
            }
            size_t ll = (size_t)(sp - m), rl = ml - ll - 1;
            int32_t left = kiln_tok_find(t, m, ll), right = kiln_tok_find(t, sp + 1, rl);
            if (left < 0 || right < 0)
                continue;
            if (ll + rl > catcap) {
                catcap = (ll + rl) * 2;
                char *nc = realloc(cat, catcap);
                if (!nc) {
                    free(cat);
                    rc = kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory");
                    goto fail;
                }
                cat = nc;
            }
            memcpy(cat, m, ll);
            memcpy(cat + ll, sp + 1, rl);
            int32_t res = kiln_tok_find(t, cat, ll + rl);
            if (res < 0)
                continue;
            uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
            size_t h = (size_t)hash_u64(key) & t->m_mask;
            while (t->merge[h].rank >= 0 && t->merge[h].key != key)
                h = (h + 1) & t->m_mask;
            if (t->merge[h].rank >= 0)
                continue; /* duplicate pair: the first (lowest rank) wins */
            t->merge[h] = (struct merge_slot){key, r, res};
            t->n_merges_used++;
        }
        free(cat);
    }

    /* decoded pieces */
    size_t ptotal = 0;
    for (int i = 0; i < n; i++)
        ptotal += make_piece(t, i, NULL);
    t->piece = malloc(ptotal + 1);
    t->piece_off = malloc(((size_t)n + 1) * sizeof *t->piece_off);
    if (!t->piece || !t->piece_off) {
        rc = kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory");
        goto fail;
    }
    size_t poff = 0;
    for (int i = 0; i < n; i++) {
        t->piece_off[i] = poff;
        poff += make_piece(t, i, t->piece + poff);
    }
    t->piece_off[n] = poff;

    /* special tokens, grouped by first byte, longest first */
    int ns = 0;
    for (int i = 0; i < n; i++)
        if ((t->types[i] == KILN_TOKEN_CONTROL || t->types[i] == KILN_TOKEN_USER_DEFINED) && tok_len(t, i) > 0)
            ns++;
    t->special = malloc(((size_t)ns + 1) * sizeof *t->special);
    if (!t->special) {
        rc = kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory");
        goto fail;
    }
    ns = 0;
    for (int i = 0; i < n; i++)
        if ((t->types[i] == KILN_TOKEN_CONTROL || t->types[i] == KILN_TOKEN_USER_DEFINED) && tok_len(t, i) > 0)
            t->special[ns++] = i;
    for (int i = 1; i < ns; i++) { /* insertion sort: special token lists are short */
        int32_t v = t->special[i];
        int j = i - 1;
        while (j >= 0 && special_cmp_ctx_len(t, t->special[j], v) > 0) {
            t->special[j + 1] = t->special[j];
            j--;
        }
        t->special[j + 1] = v;
    }
    {
        int k = 0;
        for (int b = 0; b < 256; b++) {
            t->special_start[b] = k;
            while (k < ns && (unsigned char)t->text[t->text_off[t->special[k]]] == b)
                k++;
        }
        t->special_start[256] = ns;
    }

    /* end-of-generation tokens */
    if (t->eos >= 0)
        t->eog[t->eos] = 1;
    if (t->eot >= 0)
        t->eog[t->eot] = 1;
    for (size_t k = 0; k < sizeof eog_names / sizeof eog_names[0]; k++) {
        int32_t id = kiln_tok_find(t, eog_names[k], strlen(eog_names[k]));
        if (id >= 0 && t->types[id] == KILN_TOKEN_CONTROL)
            t->eog[id] = 1;
    }
    *out = t;
    return 0;
fail:
    kiln_tokenizer_free(t);
    return rc;
}

void kiln_tokenizer_free(kiln_tokenizer *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->text_off);
    free(t->piece);
    free(t->piece_off);
    free(t->scores);
    free(t->types);
    free(t->eog);
    free(t->ht);
    free(t->merge);
    free(t->special);
    free(t);
}

/* ---- accessors ---- */

int kiln_tokenizer_n_vocab(const kiln_tokenizer *t) { return t->n; }
int kiln_tokenizer_bos(const kiln_tokenizer *t) { return t->bos; }
int kiln_tokenizer_eos(const kiln_tokenizer *t) { return t->eos; }
int kiln_tokenizer_eot(const kiln_tokenizer *t) { return t->eot; }
int kiln_tokenizer_unk(const kiln_tokenizer *t) { return t->unk; }
int kiln_tokenizer_pad(const kiln_tokenizer *t) { return t->pad; }
int kiln_tokenizer_add_bos(const kiln_tokenizer *t) { return t->add_bos; }

int kiln_token_type(const kiln_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n ? t->types[id] : 0;
}

const char *kiln_token_text(const kiln_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = tok_len(t, id);
    return t->text + t->text_off[id];
}

int32_t kiln_token_lookup(const kiln_tokenizer *t, const char *s, size_t len)
{
    return kiln_tok_find(t, s, len);
}

const char *kiln_token_piece(const kiln_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = t->piece_off[id + 1] - t->piece_off[id];
    return t->piece + t->piece_off[id];
}

int kiln_token_is_eog(const kiln_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n && t->eog[id];
}

/* ---- tokenize ---- */

static int flush_raw(const kiln_tokenizer *t, const char *s, size_t len, int *prev_special, kiln_tok_emit *em,
                     kiln_err *e)
{
    if (!len)
        return 0;
    int rc;
    if (t->model == KILN_TOK_GPT2)
        rc = kiln_tok_bpe_encode(t, s, len, em, e);
    else
        rc = kiln_tok_spm_encode(t, s, len, t->add_space_prefix && *prev_special, em, e);
    *prev_special = 0;
    return rc;
}

int kiln_tokenize(const kiln_tokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                  int32_t *out, int max, int *n, kiln_err *e)
{
    kiln_tok_emit em = {out, out ? max : 0, 0};
    if (n)
        *n = 0;
    if (add_bos < 0)
        add_bos = t->add_bos;
    if (add_bos && t->bos >= 0)
        kiln_tok_emit_id(&em, t->bos);
    int prev_special = 1; /* SPM: a space prefix at the start and after each special token */
    size_t start = 0, p = 0;
    while (p < len) {
        unsigned char c = (unsigned char)text[p];
        int best = -1;
        for (int k = t->special_start[c]; k < t->special_start[c + 1]; k++) {
            int32_t id = t->special[k];
            if (t->types[id] == KILN_TOKEN_CONTROL && !parse_special)
                continue;
            size_t l = tok_len(t, id);
            if (l <= len - p && !memcmp(text + p, t->text + t->text_off[id], l)) {
                best = id; /* sorted longest first */
                break;
            }
        }
        if (best < 0) {
            p++;
            continue;
        }
        int rc = flush_raw(t, text + start, p - start, &prev_special, &em, e);
        if (rc)
            return rc;
        kiln_tok_emit_id(&em, best);
        prev_special = 1;
        p += tok_len(t, best);
        start = p;
    }
    int rc = flush_raw(t, text + start, len - start, &prev_special, &em, e);
    if (rc)
        return rc;
    if (n)
        *n = em.n;
    if (em.n > em.max && em.n > 0)
        return kiln_fail(e, KILN_E_FULL, "tokenize: %d tokens needed, room for %d", em.n, em.max);
    return 0;
}

/* ---- detokenize ---- */

/* Piece of id as the decoders emit it: control tokens only when render_special. */
static const char *out_piece(const kiln_tokenizer *t, int32_t id, int render_special, size_t *len)
{
    if (t->types[id] == KILN_TOKEN_CONTROL && !render_special) {
        *len = 0;
        return "";
    }
    return kiln_token_piece(t, id, len);
}

int kiln_detokenize(const kiln_tokenizer *t, const int32_t *ids, int n, int render_special, char *out,
                    size_t cap, size_t *len, kiln_err *e)
{
    size_t need = 0;
    int started = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n)
            return kiln_fail(e, KILN_E_INVALID, "detokenize: id %d at %d outside the vocabulary (%d tokens)",
                             ids[i], i, t->n);
        size_t l;
        const char *s = out_piece(t, ids[i], render_special, &l);
        if (!l)
            continue;
        if (!started && t->model == KILN_TOK_SPM && t->add_space_prefix && s[0] == ' ') {
            s++;
            l--;
        }
        started = 1;
        if (out && need + l < cap)
            memcpy(out + need, s, l);
        need += l;
    }
    if (len)
        *len = need;
    if (!out || need + 1 > cap)
        return kiln_fail(e, KILN_E_FULL, "detokenize: %zu bytes needed (plus NUL), room for %zu", need, cap);
    out[need] = 0;
    return 0;
}

void kiln_detok_stream_init(kiln_detok_stream *s, const kiln_tokenizer *t, int render_special)
{
    memset(s, 0, sizeof *s);
    s->t = t;
    s->render_special = render_special;
}

void kiln_detok_stream_free(kiln_detok_stream *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

static int stream_reserve(kiln_detok_stream *s, size_t need, kiln_err *e)
{
    if (need <= s->cap)
        return 0;
    size_t c = s->cap ? s->cap : 64;
    while (c < need)
        c *= 2;
    char *nb = realloc(s->buf, c);
    if (!nb)
        return kiln_fail(e, KILN_E_NOMEM, "detokenize: out of memory");
    s->buf = nb;
    s->cap = c;
    return 0;
}

int kiln_detok_stream_push(kiln_detok_stream *s, int32_t id, const char **text, size_t *len, kiln_err *e)
{
    *text = "";
    *len = 0;
    const kiln_tokenizer *t = s->t;
    if (id < 0 || id >= t->n)
        return kiln_fail(e, KILN_E_INVALID, "detokenize: id %d outside the vocabulary (%d tokens)", id, t->n);
    size_t pl;
    const char *p = out_piece(t, id, s->render_special, &pl);
    if (!pl)
        return 0;
    if (!s->started && t->model == KILN_TOK_SPM && t->add_space_prefix && p[0] == ' ') {
        p++;
        pl--;
    }
    s->started = 1;
    /* input (held bytes + piece) at buf[0..m), output after it: at most 3 bytes per input byte */
    size_t m = (size_t)s->npend + pl;
    if (stream_reserve(s, m * 4 + 4, e))
        return KILN_E_NOMEM;
    char *in = s->buf, *o = s->buf + m;
    memcpy(in, s->pend, (size_t)s->npend);
    memcpy(in + s->npend, p, pl);
    s->npend = 0;
    size_t w = 0;
    for (size_t i = 0; i < m;) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x80) {
            o[w++] = (char)c;
            i++;
            continue;
        }
        int need = kiln_utf8_seq_len(c);
        if (need > 0 && i + (size_t)need > m && kiln_utf8_incomplete_tail(in + i, m - i) == m - i) {
            memcpy(s->pend, in + i, m - i);
            s->npend = (int)(m - i);
            break;
        }
        uint32_t cp;
        int ok;
        int l = kiln_utf8_decode(in + i, m - i, &cp, &ok);
        if (ok) {
            memcpy(o + w, in + i, (size_t)l);
            w += (size_t)l;
        } else {
            memcpy(o + w, "\xef\xbf\xbd", 3);
            w += 3;
        }
        i += (size_t)l;
    }
    *text = o;
    *len = w;
    return 0;
}

int kiln_detok_stream_finish(kiln_detok_stream *s, const char **text, size_t *len, kiln_err *e)
{
    *text = "";
    *len = 0;
    if (!s->npend)
        return 0;
    if (stream_reserve(s, 4, e))
        return KILN_E_NOMEM;
    memcpy(s->buf, "\xef\xbf\xbd", 3);
    s->npend = 0;
    *text = s->buf;
    *len = 3;
    return 0;
}
