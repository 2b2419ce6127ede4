/* engine/perplexity.h - perplexity of a token stream on an engine, in
 * llama-perplexity's scheme, so figures compare with llama.cpp's:
 *
 *   chunk c = tokens[c*ctx, (c+1)*ctx) for every whole chunk (the tail that
 *   does not fill one is dropped); where the model adds BOS, the chunk's
 *   first token is replaced by BOS (llama.cpp overwrites it, it does not
 *   shift the chunk); each chunk runs on a fresh KV sequence; the first half
 *   (first = ctx/2 tokens) is context only; the logits at positions
 *   first .. ctx-2 score the tokens at first+1 .. ctx-1, ctx-1-first of them
 *   per chunk.
 *   nll = log-sum-exp(logits) - logit[token], in double;
 *   PPL = exp(mean nll); its error is PPL * sqrt(var(nll) / (n - 1)),
 *   var = mean(nll^2) - mean(nll)^2 (llama.cpp's "+/-").
 *
 * The first half runs through kiln_forward (no logits but the last token's),
 * the scored half through kiln_forward_all_logits (one LM-head gemm per
 * prefill chunk), so the first half's LM head is never computed. */
#ifndef KILN_ENGINE_PERPLEXITY_H
#define KILN_ENGINE_PERPLEXITY_H

#include "engine/model.h"

#define KILN_PPL_MIN_CTX 4 /* two tokens of context, at least one scored */

typedef struct kiln_ppl_opts {
    int ctx;                   /* tokens per chunk, >= KILN_PPL_MIN_CTX and <= the engine's KV capacity */
    int max_chunks;            /* 0: every whole chunk */
    int32_t bos;               /* >= 0: each chunk's first token becomes this; -1: the text as it is */
    /* after each chunk (may be NULL): chunks done, of n_chunks, PPL so far */
    void (*progress)(void *user, int done, int n_chunks, double ppl);
    void *user;
} kiln_ppl_opts;

typedef struct kiln_ppl_result {
    int n_chunks;              /* chunks evaluated */
    long long n_scored;        /* tokens scored: n_chunks * (ctx - 1 - ctx/2) */
    long long n_evaluated;     /* tokens run through the model: n_chunks * (ctx - 1) */
    double nll_mean, nll_std;  /* mean and standard deviation of the per-token NLL (nats) */
    double ppl, ppl_err;       /* exp(nll_mean) and its standard error */
    double seconds;            /* host time of the forwards and the scoring */
} kiln_ppl_result;

/* Whole chunks of ctx tokens in n_tokens, capped at max_chunks when > 0. */
int kiln_ppl_n_chunks(long long n_tokens, int ctx, int max_chunks);

/* Runs the scheme above over tokens[0..n_tokens). KILN_E_INVALID when ctx is
 * out of range or the tokens do not fill one chunk (the message says how
 * many there are and how many one chunk needs). */
int kiln_perplexity(kiln_engine *en, const int32_t *tokens, long long n_tokens, const kiln_ppl_opts *o,
                    kiln_ppl_result *r, kiln_err *e);

/* -log softmax(logits)[target], computed in double. */
double kiln_nll(const float *logits, int n_vocab, int32_t target);

#endif
