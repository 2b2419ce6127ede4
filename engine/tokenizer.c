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

/* Bytes 33..126, 161..172 and 174..255 stand for themselves; the other 68 bytes
 * (0..32, 127..160 and 173) map, in increasing order, to U+0100 ... U+0143 (GPT-2's
 * bytes_to_unicode). Both directions are closed forms: make_piece maps every
 * character of every token, so a scan over the 256 bytes per character would cost
 * more than the rest of the construction together. */
static int gpt2_self(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

static uint32_t gpt2_byte_to_cp(int b)
{
    if (gpt2_self(b))
        return (uint32_t)b;
    int k = b <= 32 ? b : b <= 160 ? 33 + (b - 127) : 67; /* the last one is 173 */
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
    return k < 33 ? k : k < 67 ? 127 + (k - 33) : 173;
}

/* ---- construction ----
 * kiln_tokenizer_new runs the steps below in order; each is linear in the vocabulary
 * (or the merges), except the special-token sort, which is n log n. */

static const char *const eog_names[] = {
    "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<|end|>", "<end_of_turn>",
    "<|eom_id|>", "</s>", "<|end_of_turn|>",
};

static int set_model(kiln_tokenizer *t, const kiln_vocab_desc *d, kiln_err *e)
{
    if (!strcmp(d->model, "llama")) {
        t->model = KILN_TOK_SPM;
        return 0;
    }
    if (strcmp(d->model, "gpt2"))
        return kiln_fail(e, KILN_E_INVALID, "tokenizer: model '%s' is not supported (known: gpt2, llama)", d->model);
    t->model = KILN_TOK_GPT2;
    if (kiln_tok_pretok_parse(d->pre, &t->pretok))
        return kiln_fail(e, KILN_E_INVALID,
                         "tokenizer: pre-tokenizer '%s' is not supported (known: smollm, llama-bpe, gpt2, default)",
                         d->pre);
    return 0;
}

static int check_id(int id, int n, const char *what, kiln_err *e)
{
    if (id < -1 || id >= n)
        return kiln_fail(e, KILN_E_INVALID, "tokenizer: %s id %d outside the vocabulary (%d tokens)", what, id, n);
    return 0;
}

static int set_special_ids(kiln_tokenizer *t, const kiln_vocab_desc *d, kiln_err *e)
{
    int n = t->n, rc;
    if ((rc = check_id(d->bos, n, "bos", e)) || (rc = check_id(d->eos, n, "eos", e)) ||
        (rc = check_id(d->eot, n, "eot", e)) || (rc = check_id(d->unk, n, "unk", e)) ||
        (rc = check_id(d->pad, n, "pad", e)))
        return rc;
    t->bos = d->bos;
    t->eos = d->eos;
    t->eot = d->eot;
    t->unk = d->unk;
    t->pad = d->pad;
    t->add_bos = d->add_bos != 0;
    t->add_space_prefix = d->add_space_prefix != 0;
    return 0;
}

/* Token strings back to back in t->text, with their types and scores. */
static int copy_vocab(kiln_tokenizer *t, const kiln_vocab_desc *d, kiln_err *e)
{
    int n = t->n;
    size_t nz = (uint32_t)n; /* n > 0 (kiln_tokenizer_new checked it) */
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!d->tokens[i])
            return kiln_fail(e, KILN_E_INVALID, "tokenizer: token %d is NULL", i);
        total += d->token_lens ? d->token_lens[i] : strlen(d->tokens[i]);
    }
    t->text = malloc(total + 1);
    t->text_off = malloc((nz + 1) * sizeof *t->text_off);
    t->scores = calloc(nz, sizeof *t->scores);
    t->types = malloc(nz * sizeof *t->types);
    t->eog = calloc(nz, 1);
    if (!t->text || !t->text_off || !t->scores || !t->types || !t->eog)
        return kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory for %d tokens", n);
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
    return 0;
}

/* The string -> id hash table (kiln_tok_find). A string that occurs twice maps
 * to its last id, as llama.cpp's map does. */
static int index_vocab(kiln_tokenizer *t, kiln_err *e)
{
    size_t cap = pow2_at_least((size_t)t->n * 2);
    t->ht = malloc(cap * sizeof *t->ht);
    if (!t->ht)
        return kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory for %d tokens", t->n);
    t->ht_mask = cap - 1;
    memset(t->ht, 0xff, cap * sizeof *t->ht);
    for (int i = 0; i < t->n; i++) {
        const char *s = t->text + t->text_off[i];
        size_t l = tok_len(t, i);
        size_t h = (size_t)hash_bytes(s, l) & t->ht_mask;
        for (;; h = (h + 1) & t->ht_mask) {
            int32_t o = t->ht[h];
            if (o < 0 || (tok_len(t, o) == l && !memcmp(t->text + t->text_off[o], s, l))) {
                t->ht[h] = i;
                break;
            }
        }
    }
    return 0;
}

/* GPT-2: the id of each byte's alphabet character; SPM: the id of <0xXX>. */
static void find_byte_tokens(kiln_tokenizer *t)
{
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int l;
        if (t->model == KILN_TOK_GPT2)
            l = kiln_utf8_encode(gpt2_byte_to_cp(b), buf);
        else
            l = snprintf(buf, sizeof buf, "<0x%02X>", b);
        t->byte_tok[b] = kiln_tok_find(t, buf, (size_t)l);
    }
}

static size_t merge_len(const kiln_vocab_desc *d, int r)
{
    return d->merge_lens ? d->merge_lens[r] : strlen(d->merges[r]);
}

/* Inserts merge r ("left right") unless a side or their concatenation is not a
 * token, or the pair is already there (the first, lowest rank, wins). cat has
 * room for the merge's length. */
static int add_merge(kiln_tokenizer *t, const kiln_vocab_desc *d, int r, char *cat, kiln_err *e)
{
    const char *m = d->merges[r];
    size_t ml = merge_len(d, r);
    const char *sp = ml > 1 ? memchr(m + 1, ' ', ml - 1) : NULL;
    if (!sp)
        return kiln_fail(e, KILN_E_INVALID, "tokenizer: merge %d ('%.*s') has no space", r, (int)ml, m);
    size_t ll = (size_t)(sp - m), rl = ml - ll - 1;
    int32_t left = kiln_tok_find(t, m, ll), right = kiln_tok_find(t, sp + 1, rl);
    if (left < 0 || right < 0)
        return 0;
    memcpy(cat, m, ll);
    memcpy(cat + ll, sp + 1, rl);
    int32_t res = kiln_tok_find(t, cat, ll + rl);
    if (res < 0)
        return 0;
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    size_t h = (size_t)hash_u64(key) & t->m_mask;
    while (t->merge[h].rank >= 0 && t->merge[h].key != key)
        h = (h + 1) & t->m_mask;
    if (t->merge[h].rank < 0)
        t->merge[h] = (struct merge_slot){key, r, res};
    return 0;
}

/* The (left id, right id) -> (rank, result) table; GPT-2 only. */
static int build_merges(kiln_tokenizer *t, const kiln_vocab_desc *d, kiln_err *e)
{
    if (t->model != KILN_TOK_GPT2 || d->n_merges <= 0)
        return 0;
    size_t mcap = pow2_at_least((size_t)d->n_merges * 2), longest = 1;
    for (int r = 0; r < d->n_merges; r++) {
        if (!d->merges[r])
            return kiln_fail(e, KILN_E_INVALID, "tokenizer: merge %d is NULL", r);
        size_t ml = merge_len(d, r);
        longest = ml > longest ? ml : longest;
    }
    t->merge = malloc(mcap * sizeof *t->merge);
    char *cat = malloc(longest);
    if (!t->merge || !cat) {
        free(cat);
        return kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory for %d merges", d->n_merges);
    }
    t->m_mask = mcap - 1;
    for (size_t i = 0; i < mcap; i++)
        t->merge[i].rank = -1;
    int rc = 0;
    for (int r = 0; r < d->n_merges && !rc; r++)
        rc = add_merge(t, d, r, cat, e);
    free(cat);
    return rc;
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

/* Every token's decoded bytes back to back in t->piece (kiln_token_piece). */
static int build_pieces(kiln_tokenizer *t, kiln_err *e)
{
    size_t total = 0;
    for (int i = 0; i < t->n; i++)
        total += make_piece(t, i, NULL);
    t->piece = malloc(total + 1);
    t->piece_off = malloc(((size_t)t->n + 1) * sizeof *t->piece_off);
    if (!t->piece || !t->piece_off)
        return kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory");
    size_t off = 0;
    for (int i = 0; i < t->n; i++) {
        t->piece_off[i] = off;
        off += make_piece(t, i, t->piece + off);
    }
    t->piece_off[t->n] = off;
    return 0;
}

static int is_special(const kiln_tokenizer *t, int32_t i)
{
    return (t->types[i] == KILN_TOKEN_CONTROL || t->types[i] == KILN_TOKEN_USER_DEFINED) && tok_len(t, i) > 0;
}

/* Sort key of a special token: first byte ascending, then longest first, then id. */
typedef struct special_key {
    unsigned char first;
    size_t len;
    int32_t id;
} special_key;

static int special_key_cmp(const void *pa, const void *pb)
{
    const special_key *a = pa, *b = pb;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : (a->id > b->id);
}

/* Special tokens grouped by first byte, longest first (kiln_tokenize takes the first
 * that matches). Vocabularies can hold many (100k+ user-defined tokens in some), so
 * this sorts, n log n, rather than inserting one by one. */
static int build_special_index(kiln_tokenizer *t, kiln_err *e)
{
    int ns = 0;
    for (int i = 0; i < t->n; i++)
        ns += is_special(t, i);
    special_key *keys = malloc(((size_t)ns + 1) * sizeof *keys);
    t->special = malloc(((size_t)ns + 1) * sizeof *t->special);
    if (!keys || !t->special) {
        free(keys);
        return kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory for %d special tokens", ns);
    }
    ns = 0;
    for (int i = 0; i < t->n; i++)
        if (is_special(t, i))
            keys[ns++] = (special_key){(unsigned char)t->text[t->text_off[i]], tok_len(t, i), i};
    qsort(keys, (size_t)ns, sizeof *keys, special_key_cmp);
    int k = 0;
    for (int b = 0; b < 256; b++) {
        t->special_start[b] = k;
        for (; k < ns && keys[k].first == b; k++)
            t->special[k] = keys[k].id;
    }
    t->special_start[256] = ns;
    free(keys);
    return 0;
}

/* eos, eot and the control tokens named like an end of turn end generation. */
static void mark_eog(kiln_tokenizer *t)
{
    if (t->eos >= 0)
        t->eog[t->eos] = 1;
    if (t->eot >= 0)
        t->eog[t->eot] = 1;
    for (size_t k = 0; k < sizeof eog_names / sizeof eog_names[0]; k++) {
        int32_t id = kiln_tok_find(t, eog_names[k], strlen(eog_names[k]));
        if (id >= 0 && t->types[id] == KILN_TOKEN_CONTROL)
            t->eog[id] = 1;
    }
}

int kiln_tokenizer_new(const kiln_vocab_desc *d, kiln_tokenizer **out, kiln_err *e)
{
    *out = NULL;
    if (!d || !d->model || d->n_tokens <= 0 || !d->tokens)
        return kiln_fail(e, KILN_E_INVALID, "tokenizer: no model name or no tokens");
    if (d->n_merges > 0 && !d->merges)
        return kiln_fail(e, KILN_E_INVALID, "tokenizer: %d merges but no merge strings", d->n_merges);
    kiln_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return kiln_fail(e, KILN_E_NOMEM, "tokenizer: out of memory");
    t->n = d->n_tokens;
    int rc = set_model(t, d, e);
    if (!rc)
        rc = set_special_ids(t, d, e);
    if (!rc)
        rc = copy_vocab(t, d, e);
    if (!rc)
        rc = index_vocab(t, e);
    if (!rc) {
        find_byte_tokens(t);
        rc = build_merges(t, d, e);
    }
    if (!rc)
        rc = build_pieces(t, e);
    if (!rc)
        rc = build_special_index(t, e);
    if (rc) {
        kiln_tokenizer_free(t);
        return rc;
    }
    mark_eog(t);
    *out = t;
    return 0;
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
