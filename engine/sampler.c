/* engine/sampler.c - see sampler.h. */
#include "engine/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void kiln_sampling_default(kiln_sampling *s)
{
    *s = (kiln_sampling){.temp = 0, .top_k = 0, .top_p = 1, .min_p = 0, .repeat_penalty = 1, .repeat_last_n = 64,
                         .seed = 42};
}

int kiln_sampling_check(const kiln_sampling *s, kiln_err *e)
{
    if (!(s->temp >= 0) || s->temp > 100)
        return kiln_fail(e, KILN_E_INVALID, "--temp %g: must be in [0, 100]", s->temp);
    if (s->top_k < 0)
        return kiln_fail(e, KILN_E_INVALID, "--top-k %d: must be >= 0", s->top_k);
    if (!(s->top_p > 0 && s->top_p <= 1))
        return kiln_fail(e, KILN_E_INVALID, "--top-p %g: must be in (0, 1]", s->top_p);
    if (!(s->min_p >= 0 && s->min_p < 1))
        return kiln_fail(e, KILN_E_INVALID, "--min-p %g: must be in [0, 1)", s->min_p);
    if (!(s->repeat_penalty > 0))
        return kiln_fail(e, KILN_E_INVALID, "--repeat-penalty %g: must be > 0", s->repeat_penalty);
    if (s->repeat_last_n < 0)
        return kiln_fail(e, KILN_E_INVALID, "--repeat-last-n %d: must be >= 0", s->repeat_last_n);
    return 0;
}

int kiln_sampling_needs_logits(const kiln_sampling *s) { return s->temp > 0 || s->repeat_penalty != 1; }

int kiln_sampler_init(kiln_sampler *s, const kiln_sampling *p, int n_vocab, kiln_err *e)
{
    memset(s, 0, sizeof *s);
    int rc = kiln_sampling_check(p, e);
    if (rc)
        return rc;
    s->p = *p;
    s->n_vocab = n_vocab;
    kiln_rng_seed(&s->rng, p->seed);
    s->work = malloc(sizeof *s->work * (size_t)n_vocab);
    s->idx = malloc(sizeof *s->idx * (size_t)n_vocab);
    if (!s->work || !s->idx) {
        kiln_sampler_free(s);
        return kiln_fail(e, KILN_E_NOMEM, "sampler: out of memory");
    }
    return 0;
}

void kiln_sampler_free(kiln_sampler *s)
{
    free(s->work);
    free(s->idx);
    s->work = NULL;
    s->idx = NULL;
}

/* Sorting candidates by logit, descending; ties by id for determinism. */
static int by_logit(const void *a, const void *b, void *keys)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    const float *k = keys;
    float lx = k[x], ly = k[y];
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

int32_t kiln_sample(kiln_sampler *s, const float *logits, const int32_t *recent, int n_recent)
{
    int V = s->n_vocab;
    float *w = s->work;
    memcpy(w, logits, sizeof *w * (size_t)V);
    if (s->p.repeat_penalty != 1 && recent) {
        int from = n_recent > s->p.repeat_last_n ? n_recent - s->p.repeat_last_n : 0;
        for (int i = from; i < n_recent; i++) {
            int32_t t = recent[i];
            if (t < 0 || t >= V)
                continue;
            /* once per distinct token: mark by making sure we don't reapply */
            int seen = 0;
            for (int j = from; j < i && !seen; j++)
                seen = recent[j] == t;
            if (!seen)
                w[t] = w[t] > 0 ? w[t] / s->p.repeat_penalty : w[t] * s->p.repeat_penalty;
        }
    }
    if (s->p.temp <= 0) {
        int32_t best = 0;
        for (int32_t i = 1; i < V; i++)
            if (w[i] > w[best])
                best = i;
        return best;
    }
    /* candidates: top-k by partial selection would be faster; a full sort of
     * 50-130k ids costs ~5 ms, noise next to a decode step on these devices */
    int n = V;
    for (int32_t i = 0; i < V; i++)
        s->idx[i] = i;
    qsort_r(s->idx, (size_t)V, sizeof *s->idx, by_logit, w);
    if (s->p.top_k > 0 && s->p.top_k < n)
        n = s->p.top_k;
    double maxl = w[s->idx[0]], sum = 0;
    for (int i = 0; i < n; i++) {
        double pr = exp(((double)w[s->idx[i]] - maxl) / s->p.temp);
        w[s->idx[i]] = (float)pr; /* logits no longer needed: hold probabilities */
        sum += pr;
    }
    double cum = 0;
    int keep = n;
    for (int i = 0; i < n; i++) {
        cum += w[s->idx[i]] / sum;
        if (cum >= s->p.top_p) {
            keep = i + 1;
            break;
        }
    }
    n = keep;
    if (s->p.min_p > 0) {
        double floor_p = s->p.min_p * w[s->idx[0]];
        int k = 1;
        while (k < n && w[s->idx[k]] >= floor_p)
            k++;
        n = k;
    }
    double total = 0;
    for (int i = 0; i < n; i++)
        total += w[s->idx[i]];
    double r = kiln_rng_f64(&s->rng) * total;
    for (int i = 0; i < n; i++) {
        r -= w[s->idx[i]];
        if (r <= 0)
            return s->idx[i];
    }
    return s->idx[n - 1];
}
