/* engine/perplexity.c - see perplexity.h. */
#include "engine/perplexity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

int kiln_ppl_n_chunks(long long n_tokens, int ctx, int max_chunks)
{
    if (ctx <= 0 || n_tokens < ctx)
        return 0;
    long long n = n_tokens / ctx;
    if (max_chunks > 0 && n > max_chunks)
        n = max_chunks;
    return n > 0x7fffffff ? 0x7fffffff : (int)n;
}

double kiln_nll(const float *logits, int n_vocab, int32_t target)
{
    double mx = logits[0];
    for (int v = 1; v < n_vocab; v++)
        if (logits[v] > mx)
            mx = logits[v];
    double sum = 0;
    for (int v = 0; v < n_vocab; v++)
        sum += exp((double)logits[v] - mx);
    return mx + log(sum) - (double)logits[target];
}

/* One chunk: the context half through kiln_forward, the rest through
 * kiln_forward_all_logits in prefill-chunk pieces, each piece scored as it
 * comes back. Adds to the sums of nll and nll^2. */
static int run_chunk(kiln_engine *en, const int32_t *toks, int ctx, float *logits, double *sum, double *sum2,
                     kiln_err *e)
{
    int V = en->m->cfg.n_vocab, first = ctx / 2;
    kiln_kv_seq seq;
    int rc = kiln_kv_seq_init(&seq, &en->kv, ctx, e);
    if (rc)
        return rc;
    rc = kiln_forward(en, &seq, toks, first, e);
    /* positions first .. ctx-2 predict first+1 .. ctx-1; token ctx-1 itself needs no forward */
    for (int p = first; !rc && p < ctx - 1; p += en->chunk) {
        int n = ctx - 1 - p < en->chunk ? ctx - 1 - p : en->chunk;
        if ((rc = kiln_forward_all_logits(en, &seq, toks + p, n, logits, e)))
            break;
        for (int j = 0; j < n; j++) {
            double nll = kiln_nll(logits + (size_t)j * (size_t)V, V, toks[p + j + 1]);
            *sum += nll;
            *sum2 += nll * nll;
        }
    }
    kiln_kv_seq_free(&seq);
    return rc;
}

int kiln_perplexity(kiln_engine *en, const int32_t *tokens, long long n_tokens, const kiln_ppl_opts *o,
                    kiln_ppl_result *r, kiln_err *e)
{
    memset(r, 0, sizeof *r);
    int ctx = o->ctx;
    if (ctx < KILN_PPL_MIN_CTX)
        return kiln_fail(e, KILN_E_INVALID, "perplexity: a chunk of %d tokens is too short (at least %d: half of it is "
                         "context, the rest is scored)", ctx, KILN_PPL_MIN_CTX);
    if (ctx > en->ctx)
        return kiln_fail(e, KILN_E_INVALID, "perplexity: chunks of %d tokens do not fit the engine's KV cache of %d",
                         ctx, en->ctx);
    if (o->bos >= en->m->cfg.n_vocab)
        return kiln_fail(e, KILN_E_INVALID, "perplexity: BOS %d outside the vocabulary (%d)", o->bos,
                         en->m->cfg.n_vocab);
    int n_chunks = kiln_ppl_n_chunks(n_tokens, ctx, o->max_chunks);
    if (n_chunks == 0)
        return kiln_fail(e, KILN_E_INVALID, "perplexity: the text has %lld tokens; one chunk needs %d (give a longer "
                         "text or a smaller --ctx)", n_tokens, ctx);
    for (long long i = 0; i < (long long)n_chunks * ctx; i++) /* the last of a chunk is scored, never run */
        if (tokens[i] < 0 || tokens[i] >= en->m->cfg.n_vocab)
            return kiln_fail(e, KILN_E_INVALID, "perplexity: token %d at %lld outside the vocabulary (%d)", tokens[i],
                             i, en->m->cfg.n_vocab);
    int32_t *toks = malloc(sizeof *toks * (size_t)ctx);
    float *logits = malloc(sizeof *logits * (size_t)en->chunk * (size_t)en->m->cfg.n_vocab);
    if (!toks || !logits) {
        free(toks);
        free(logits);
        return kiln_fail(e, KILN_E_NOMEM, "perplexity: no memory for the logits of %d tokens", en->chunk);
    }
    double sum = 0, sum2 = 0, t0 = kiln_now_s();
    long long per_chunk = ctx - 1 - ctx / 2;
    int rc = 0;
    for (int c = 0; c < n_chunks && !rc; c++) {
        memcpy(toks, tokens + (size_t)c * (size_t)ctx, sizeof *toks * (size_t)ctx);
        if (o->bos >= 0)
            toks[0] = o->bos;
        if ((rc = run_chunk(en, toks, ctx, logits, &sum, &sum2, e))) {
            kiln_err_wrap(e, "perplexity: chunk %d of %d (tokens %lld..%lld)", c + 1, n_chunks, (long long)c * ctx,
                          (long long)(c + 1) * ctx - 1);
            break;
        }
        r->n_chunks = c + 1;
        r->n_scored += per_chunk;
        if (o->progress)
            o->progress(o->user, c + 1, n_chunks, exp(sum / (double)r->n_scored));
    }
    r->seconds = kiln_now_s() - t0;
    free(toks);
    free(logits);
    if (rc)
        return rc;
    double n = (double)r->n_scored;
    r->n_evaluated = (long long)r->n_chunks * (ctx - 1);
    r->nll_mean = sum / n;
    double var = sum2 / n - r->nll_mean * r->nll_mean;
    r->nll_std = var > 0 ? sqrt(var) : 0;
    r->ppl = exp(r->nll_mean);
    r->ppl_err = var > 0 && n > 1 ? r->ppl * sqrt(var / (n - 1)) : 0;
    return 0;
}
