/* engine/tokenizer.h - text <-> token ids for the models Kiln runs.
 *
 * Two model kinds, chosen by kiln_vocab_desc.model (= GGUF tokenizer.ggml.model):
 *  - "gpt2": byte-level BPE. The text is split by the pre-tokenizer named in .pre
 *    ("smollm", "gpt2"/"default", "llama-bpe"; see kiln_pretok_split), each piece's
 *    bytes are mapped to the GPT-2 printable alphabet, then merges are applied by rank
 *    (index in .merges, lowest first, leftmost first for equal pairs).
 *  - "llama": SentencePiece-style BPE. Spaces become U+2581 ("▁"), one is prepended
 *    when add_space_prefix (at the start and after each special token, as llama.cpp
 *    does), adjacent symbols are merged by the highest .scores of the merged piece
 *    (leftmost on ties), and a piece not in the vocabulary falls back to byte tokens
 *    "<0xXX>" (or unk when those are missing).
 * Special tokens: control tokens (type 3) are matched as whole strings before splitting
 * when parse_special is set; user-defined tokens (type 4) are matched always, as
 * llama.cpp and Hugging Face tokenizers do. Leftmost match, longest on ties.
 *
 * A kiln_tokenizer is immutable after kiln_tokenizer_new: every function here may be
 * called from several threads at once on the same tokenizer (scratch memory is per call).
 * There is no global mutable state. */
#ifndef KILN_ENGINE_TOKENIZER_H
#define KILN_ENGINE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum kiln_token_type {
    KILN_TOKEN_NORMAL = 1,
    KILN_TOKEN_UNKNOWN = 2,
    KILN_TOKEN_CONTROL = 3,
    KILN_TOKEN_USER_DEFINED = 4,
    KILN_TOKEN_UNUSED = 5,
    KILN_TOKEN_BYTE = 6,
};

/* A vocabulary, independent of the file it came from. Everything is copied by
 * kiln_tokenizer_new; the caller keeps ownership of these arrays. */
typedef struct kiln_vocab_desc {
    const char *model; /* "gpt2" | "llama" */
    const char *pre;   /* "smollm", "llama-bpe", "gpt2", "default", ...; NULL = "default" */
    int n_tokens;
    const char *const *tokens;
    const size_t *token_lens; /* NULL: tokens are NUL-terminated */
    const float *scores;      /* may be NULL (all 0) */
    const int32_t *types;     /* enum kiln_token_type; may be NULL (all normal) */
    int n_merges;
    const char *const *merges; /* "left right" */
    const size_t *merge_lens;  /* NULL: merges are NUL-terminated */
    int bos, eos, eot, unk, pad; /* -1 if none */
    int add_bos, add_space_prefix;
} kiln_vocab_desc;

typedef struct kiln_tokenizer kiln_tokenizer;

/* Build a tokenizer. Errors: KILN_E_INVALID for an unknown model or pre-tokenizer name,
 * out-of-range special ids, a merge without a space; KILN_E_NOMEM. Merges that name
 * tokens not in the vocabulary (or whose concatenation is not one) are ignored. */
int kiln_tokenizer_new(const kiln_vocab_desc *d, kiln_tokenizer **out, kiln_err *e);
void kiln_tokenizer_free(kiln_tokenizer *t);

/* Text -> ids. add_bos: 1 prepend BOS (if the vocabulary has one), 0 do not, -1 use the
 * vocabulary's add_bos. Writes at most max ids to out and the full count to *n; if
 * max is too small returns KILN_E_FULL with a message naming the count needed (so
 * max = 0, out = NULL counts). Text need not be valid UTF-8 (byte-level BPE covers
 * every byte; SPM falls back to byte tokens). */
int kiln_tokenize(const kiln_tokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                  int32_t *out, int max, int *n, kiln_err *e);

int kiln_tokenizer_n_vocab(const kiln_tokenizer *t);
int kiln_tokenizer_bos(const kiln_tokenizer *t);
int kiln_tokenizer_eos(const kiln_tokenizer *t);
int kiln_tokenizer_eot(const kiln_tokenizer *t);
int kiln_tokenizer_unk(const kiln_tokenizer *t);
int kiln_tokenizer_pad(const kiln_tokenizer *t);
int kiln_tokenizer_add_bos(const kiln_tokenizer *t);
/* Token type (enum kiln_token_type), 0 if id is out of range. */
int kiln_token_type(const kiln_tokenizer *t, int32_t id);
/* The vocabulary string of id as stored (GPT-2 alphabet / "▁" form); NULL if out of range. */
const char *kiln_token_text(const kiln_tokenizer *t, int32_t id, size_t *len);
/* Id of an exact vocabulary string, -1 if none. */
int32_t kiln_token_lookup(const kiln_tokenizer *t, const char *s, size_t len);

/* The bytes id decodes to (GPT-2 alphabet and <0xXX> byte tokens turned into raw bytes,
 * "▁" into spaces; control and user-defined tokens as their text). May be a partial
 * UTF-8 sequence. NULL (and *len = 0) if id is out of range. Not NUL-terminated. */
const char *kiln_token_piece(const kiln_tokenizer *t, int32_t id, size_t *len);

/* End of generation: eos, eot, or a control token whose text is a known end marker
 * (<|im_end|>, <|endoftext|>, <|eot_id|>, <|end_of_text|>, <|end|>, <end_of_turn>, </s>). */
int kiln_token_is_eog(const kiln_tokenizer *t, int32_t id);

/* Ids -> bytes, the exact concatenation of pieces (no UTF-8 repair, so any byte string
 * that was tokenized comes back unchanged). Control tokens are skipped unless
 * render_special; for "llama" with add_space_prefix the leading space of the first
 * piece is dropped (SentencePiece). Writes at most cap bytes plus a NUL when it fits;
 * *len = bytes needed; KILN_E_FULL when cap < needed + 1. */
int kiln_detokenize(const kiln_tokenizer *t, const int32_t *ids, int n, int render_special, char *out,
                    size_t cap, size_t *len, kiln_err *e);

/* Streaming detokenizer: feed ids one at a time, get back only complete, valid UTF-8.
 * Bytes of a multibyte character split across tokens are held until it completes;
 * bytes that can never become valid are replaced by U+FFFD. Same piece rules as
 * kiln_detokenize. The returned text points into the stream's buffer and stays valid
 * until the next call on the stream. Usage:
 *     kiln_detok_stream s; kiln_detok_stream_init(&s, t, 0);
 *     for each id: kiln_detok_stream_push(&s, id, &txt, &n, &e) -> write txt[0..n)
 *     kiln_detok_stream_finish(&s, &txt, &n, &e) -> write the held tail (as U+FFFD)
 *     kiln_detok_stream_free(&s); */
typedef struct kiln_detok_stream {
    const kiln_tokenizer *t;
    int render_special;
    int started;             /* a non-empty piece has been seen (SPM leading space rule) */
    unsigned char pend[4];   /* held-back prefix of an incomplete UTF-8 sequence */
    int npend;
    char *buf;
    size_t cap;
} kiln_detok_stream;

void kiln_detok_stream_init(kiln_detok_stream *s, const kiln_tokenizer *t, int render_special);
int kiln_detok_stream_push(kiln_detok_stream *s, int32_t id, const char **text, size_t *len, kiln_err *e);
int kiln_detok_stream_finish(kiln_detok_stream *s, const char **text, size_t *len, kiln_err *e);
void kiln_detok_stream_free(kiln_detok_stream *s);

/* Split text with a named pre-tokenizer ("smollm", "gpt2", "default", "llama-bpe") and
 * write the end offset (bytes) of each piece to ends[0..max); *n = piece count.
 * KILN_E_FULL if max is too small; KILN_E_INVALID for an unknown name. Exposed for tests
 * and tools; kiln_tokenize does this internally for "gpt2" vocabularies. */
int kiln_pretok_split(const char *pre, const char *text, size_t len, size_t *ends, int max, int *n,
                      kiln_err *e);

/* ---- from a GGUF file (engine/tokenizer_gguf.c) ---- */
struct kiln_gguf;
/* Build the tokenizer from tokenizer.ggml.* keys: model, pre, tokens, scores, token_type,
 * merges, bos/eos/eot/unknown/padding_token_id, add_bos_token, add_space_prefix.
 * Defaults where a key is absent: pre "default"; scores 0; types normal; ids -1;
 * add_bos_token 1 for "llama" and 0 for "gpt2"; add_space_prefix 1 for "llama", 0 for
 * "gpt2". A special id outside the vocabulary is an error (KILN_E_FORMAT). */
int kiln_tokenizer_from_gguf(const struct kiln_gguf *g, kiln_tokenizer **out, kiln_err *e);

#ifdef KILN_TOKENIZER_INTERNAL
/* Shared between tokenizer.c, tokenizer_bpe.c and tokenizer_spm.c; not a public API. */

enum kiln_tok_model { KILN_TOK_GPT2 = 1, KILN_TOK_SPM = 2 };
enum kiln_pretok { KILN_PRETOK_GPT2 = 1, KILN_PRETOK_SMOLLM = 2, KILN_PRETOK_LLAMA3 = 3 };

typedef struct kiln_tok_emit {
    int32_t *out;
    int max;
    int n; /* ids produced so far (may exceed max) */
} kiln_tok_emit;

static inline void kiln_tok_emit_id(kiln_tok_emit *em, int32_t id)
{
    if (em->n < em->max)
        em->out[em->n] = id;
    em->n++;
}

int kiln_tok_find(const kiln_tokenizer *t, const char *s, size_t len);
int kiln_tok_pretok_parse(const char *name, int *pretok);
/* Append ids of a raw (special-token-free) fragment. */
int kiln_tok_bpe_encode(const kiln_tokenizer *t, const char *text, size_t len, kiln_tok_emit *em, kiln_err *e);
int kiln_tok_spm_encode(const kiln_tokenizer *t, const char *text, size_t len, int space_prefix,
                        kiln_tok_emit *em, kiln_err *e);
/* Merge table: pair of ids -> rank and result id. */
int kiln_tok_merge_find(const kiln_tokenizer *t, int32_t left, int32_t right, int32_t *result);
int kiln_tok_pretok(const kiln_tokenizer *t);
int32_t kiln_tok_byte_token(const kiln_tokenizer *t, unsigned char b);   /* GPT-2: byte char id; SPM: <0xXX> */
float kiln_tok_score(const kiln_tokenizer *t, int32_t id);
#endif

#endif
