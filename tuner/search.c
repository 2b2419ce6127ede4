/* tuner/search.c - see search.h. */
#include "tuner/search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

#define MAX_POOL 50000
#define POP 8

static const char *const names[KILN_SEARCH_COUNT] = {"exhaustive", "random", "anneal", "evolve", "model"};

const char *kiln_search_name(int kind) { return kind >= 0 && kind < KILN_SEARCH_COUNT ? names[kind] : "?"; }

int kiln_search_parse(const char *s, int *kind)
{
    for (int i = 0; i < KILN_SEARCH_COUNT; i++)
        if (!strcmp(s, names[i])) {
            *kind = i;
            return 0;
        }
    return KILN_E_INVALID;
}

typedef struct result {
    int idx;
    double t; /* ns; <= 0 failed */
} result;

struct kiln_search {
    int kind;
    const kiln_kernel *k;
    kiln_rng rng;
    kiln_config *pool; /* valid configs */
    int n_pool;
    unsigned char *seen;
    int n_seen;
    int *order; /* exhaustive/random order */
    int cursor;
    result *hist;
    int n_hist;
    /* anneal */
    int cur;
    double cur_t, temp;
    /* model */
    int n_feat;
};

static int value_index(const kiln_param *p, int v)
{
    for (int i = 0; i < p->n_values; i++)
        if (p->values[i] == v)
            return i;
    return -1;
}

static int find(const kiln_search *s, const kiln_config *c)
{
    for (int i = 0; i < s->n_pool; i++)
        if (kiln_config_equal(s->k, c, &s->pool[i]))
            return i;
    return -1;
}

/* Spaces up to ENUM_MAX configs are enumerated: a backend that uses few of
 * the parameters (the cpu ignores every gpu one) has a valid share too small
 * for blind draws (gemv_int4: 24 cpu configs in 1.66M, so 200k draws found
 * one). ~20 ms of config_valid calls at the limit. */
#define ENUM_MAX 4000000LL

static int build_pool(kiln_search *s, const kiln_shape *sh, const kiln_fingerprint *fp, kiln_err *e)
{
    const kiln_kernel *k = s->k;
    double total = kiln_config_space_size(k);
    int enumerate = total <= (double)ENUM_MAX;
    long long n_iter = enumerate ? (long long)total : 4LL * MAX_POOL;
    size_t cap = total + 1 < MAX_POOL ? (size_t)total + 1 : MAX_POOL;
    s->pool = malloc(sizeof *s->pool * cap);
    if (!s->pool)
        return kiln_fail(e, KILN_E_NOMEM, "search: no memory for the config pool");
    kiln_config def;
    kiln_config_default_for(k, fp, sh, &def);
    char why[128];
    if (k->config_valid(sh, &def, fp, why, sizeof why))
        s->pool[s->n_pool++] = def; /* the default always comes first */
    /* enumerated: more valid configs than the pool holds are kept by
     * reservoir sampling (uniform, without bias toward the first indices) */
    const int base = s->n_pool;
    const long long room = (long long)cap - base;
    long long seen = 0;
    for (long long it = 0; it < n_iter; it++) {
        kiln_config c;
        kiln_config_default(k, &c);
        long long rest = it;
        for (int p = 0; p < k->n_params; p++) {
            int nv = k->params[p].n_values;
            int vi = enumerate ? (int)(rest % nv) : (int)kiln_rng_below(&s->rng, (uint32_t)nv);
            rest /= nv;
            c.v[p] = k->params[p].values[vi];
        }
        if (!k->config_valid(sh, &c, fp, why, sizeof why) || kiln_config_equal(k, &c, &def))
            continue;
        if (!enumerate) {
            if (find(s, &c) >= 0)
                continue;
            s->pool[s->n_pool++] = c;
            if ((size_t)s->n_pool == cap)
                break;
            continue;
        }
        if (++seen <= room) {
            s->pool[s->n_pool++] = c;
        } else {
            long long j = (long long)kiln_rng_below(&s->rng, (uint32_t)seen);
            if (j < room)
                s->pool[base + j] = c;
        }
    }
    if (!s->n_pool)
        return kiln_fail(e, KILN_E_INVALID, "search: no valid config of %s for this shape on %s", k->name, fp->name);
    return 0;
}

kiln_search *kiln_search_new(int kind, const kiln_kernel *k, const kiln_shape *sh, const kiln_fingerprint *fp,
                             uint64_t seed, kiln_err *e)
{
    kiln_search *s = calloc(1, sizeof *s);
    if (!s) {
        kiln_fail(e, KILN_E_NOMEM, "search: no memory");
        return NULL;
    }
    s->kind = kind;
    s->k = k;
    s->cur = -1;
    s->temp = 0.15;
    kiln_rng_seed(&s->rng, seed);
    if (build_pool(s, sh, fp, e))
        goto fail;
    s->seen = calloc((size_t)s->n_pool, 1);
    s->order = malloc(sizeof *s->order * (size_t)s->n_pool);
    s->hist = malloc(sizeof *s->hist * (size_t)s->n_pool);
    if (!s->seen || !s->order || !s->hist) {
        kiln_fail(e, KILN_E_NOMEM, "search: no memory");
        goto fail;
    }
    for (int i = 0; i < s->n_pool; i++)
        s->order[i] = i;
    if (kind != KILN_SEARCH_EXHAUSTIVE) /* keep the default first, shuffle the rest */
        for (int i = s->n_pool - 1; i > 1; i--) {
            int j = 1 + (int)kiln_rng_below(&s->rng, (uint32_t)i);
            int t = s->order[i];
            s->order[i] = s->order[j];
            s->order[j] = t;
        }
    for (int p = 0; p < k->n_params; p++)
        s->n_feat += k->params[p].n_values;
    s->n_feat += 1;
    return s;
fail:
    kiln_search_free(s);
    return NULL;
}

void kiln_search_free(kiln_search *s)
{
    if (!s)
        return;
    free(s->pool);
    free(s->seen);
    free(s->order);
    free(s->hist);
    free(s);
}

int kiln_search_pool_size(const kiln_search *s) { return s->n_pool; }

static int next_in_order(kiln_search *s)
{
    while (s->cursor < s->n_pool && s->seen[s->order[s->cursor]])
        s->cursor++;
    return s->cursor < s->n_pool ? s->order[s->cursor] : -1;
}

/* A neighbour: one parameter moved to an adjacent value (sometimes any value). */
static int neighbour(kiln_search *s, int from)
{
    const kiln_kernel *k = s->k;
    for (int tries = 0; tries < 64; tries++) {
        kiln_config c = s->pool[from];
        int p = (int)kiln_rng_below(&s->rng, (uint32_t)k->n_params);
        const kiln_param *pp = &k->params[p];
        if (pp->n_values < 2)
            continue;
        int vi = value_index(pp, c.v[p]);
        if (kiln_rng_f64(&s->rng) < 0.2)
            vi = (int)kiln_rng_below(&s->rng, (uint32_t)pp->n_values);
        else
            vi += kiln_rng_below(&s->rng, 2) ? 1 : -1;
        if (vi < 0 || vi >= pp->n_values)
            continue;
        c.v[p] = pp->values[vi];
        int idx = find(s, &c);
        if (idx >= 0 && !s->seen[idx])
            return idx;
    }
    return -1;
}

static int cmp_result(const void *a, const void *b)
{
    const result *x = a, *y = b;
    double tx = x->t > 0 ? x->t : INFINITY, ty = y->t > 0 ? y->t : INFINITY;
    return (tx > ty) - (tx < ty);
}

static int tournament(kiln_search *s, const result *top, int n)
{
    int best = (int)kiln_rng_below(&s->rng, (uint32_t)n);
    for (int i = 0; i < 2; i++) {
        int c = (int)kiln_rng_below(&s->rng, (uint32_t)n);
        if (c < best)
            best = c; /* top is sorted: lower index = faster */
    }
    return top[best].idx;
}

static int evolve_next(kiln_search *s)
{
    int n_ok = 0;
    for (int i = 0; i < s->n_hist; i++)
        n_ok += s->hist[i].t > 0;
    if (n_ok < POP)
        return -1; /* random until there is a population */
    result top[POP];
    result *sorted = malloc(sizeof *sorted * (size_t)s->n_hist);
    if (!sorted)
        return -1;
    memcpy(sorted, s->hist, sizeof *sorted * (size_t)s->n_hist);
    qsort(sorted, (size_t)s->n_hist, sizeof *sorted, cmp_result);
    memcpy(top, sorted, sizeof top);
    free(sorted);
    const kiln_kernel *k = s->k;
    for (int tries = 0; tries < 64; tries++) {
        const kiln_config *a = &s->pool[tournament(s, top, POP)], *b = &s->pool[tournament(s, top, POP)];
        kiln_config c;
        for (int p = 0; p < k->n_params; p++)
            c.v[p] = kiln_rng_below(&s->rng, 2) ? a->v[p] : b->v[p];
        if (kiln_rng_f64(&s->rng) < 0.4) {
            int p = (int)kiln_rng_below(&s->rng, (uint32_t)k->n_params);
            c.v[p] = k->params[p].values[kiln_rng_below(&s->rng, (uint32_t)k->params[p].n_values)];
        }
        int idx = find(s, &c);
        if (idx >= 0 && !s->seen[idx])
            return idx;
    }
    return -1;
}

/* ---- cost model: ridge regression of log(time) on one-hot features ---- */

static void features(const kiln_search *s, const kiln_config *c, double *f)
{
    int o = 0;
    f[o++] = 1.0;
    for (int p = 0; p < s->k->n_params; p++) {
        const kiln_param *pp = &s->k->params[p];
        for (int v = 0; v < pp->n_values; v++)
            f[o++] = pp->values[v] == c->v[p];
    }
}

/* Solves (A + lambda I) w = b in place (Gaussian elimination, partial pivoting). */
static int solve(double *A, double *b, int n)
{
    for (int i = 0; i < n; i++) {
        int piv = i;
        for (int r = i + 1; r < n; r++)
            if (fabs(A[r * n + i]) > fabs(A[piv * n + i]))
                piv = r;
        if (fabs(A[piv * n + i]) < 1e-12)
            return -1;
        if (piv != i) {
            for (int c = 0; c < n; c++) {
                double t = A[i * n + c];
                A[i * n + c] = A[piv * n + c];
                A[piv * n + c] = t;
            }
            double t = b[i];
            b[i] = b[piv];
            b[piv] = t;
        }
        for (int r = i + 1; r < n; r++) {
            double f = A[r * n + i] / A[i * n + i];
            for (int c = i; c < n; c++)
                A[r * n + c] -= f * A[i * n + c];
            b[r] -= f * b[i];
        }
    }
    for (int i = n - 1; i >= 0; i--) {
        for (int c = i + 1; c < n; c++)
            b[i] -= A[i * n + c] * b[c];
        b[i] /= A[i * n + i];
    }
    return 0;
}

static int model_next(kiln_search *s)
{
    int nf = s->n_feat, n_ok = 0;
    for (int i = 0; i < s->n_hist; i++)
        n_ok += s->hist[i].t > 0;
    if (n_ok < 6 || kiln_rng_f64(&s->rng) < 0.2)
        return -1; /* warm-up and exploration: random */
    double *A = calloc((size_t)nf * nf, sizeof *A), *b = calloc((size_t)nf, sizeof *b), *f = malloc(sizeof *f * nf);
    int pick = -1;
    if (!A || !b || !f)
        goto out;
    double worst = 0;
    for (int i = 0; i < s->n_hist; i++)
        worst = s->hist[i].t > worst ? s->hist[i].t : worst;
    for (int i = 0; i < s->n_hist; i++) {
        /* failed configs teach the model to stay away: twice the worst time */
        double y = log(s->hist[i].t > 0 ? s->hist[i].t : 2 * worst);
        features(s, &s->pool[s->hist[i].idx], f);
        for (int r = 0; r < nf; r++) {
            b[r] += f[r] * y;
            for (int c = 0; c < nf; c++)
                A[r * nf + c] += f[r] * f[c];
        }
    }
    for (int r = 0; r < nf; r++)
        A[r * nf + r] += 0.1; /* ridge */
    if (solve(A, b, nf))
        goto out;
    /* every unseen config of the pool is scored (at most MAX_POOL x n_feat
     * multiply-adds, microseconds next to a trial): a sample would leave
     * some never considered late in a session */
    double best = INFINITY;
    for (int idx = 0; idx < s->n_pool; idx++) {
        if (s->seen[idx])
            continue;
        features(s, &s->pool[idx], f);
        double pred = 0;
        for (int c = 0; c < nf; c++)
            pred += b[c] * f[c];
        if (pred < best) {
            best = pred;
            pick = idx;
        }
    }
out:
    free(A);
    free(b);
    free(f);
    return pick;
}

int kiln_search_next(kiln_search *s, kiln_config *out)
{
    if (s->n_seen >= s->n_pool)
        return 0;
    int idx = -1;
    if (s->seen[0]) { /* pool[0] (the default when valid) always goes first */
        switch (s->kind) {
        case KILN_SEARCH_ANNEAL:
            if (s->cur >= 0)
                idx = neighbour(s, s->cur);
            break;
        case KILN_SEARCH_EVOLVE: idx = evolve_next(s); break;
        case KILN_SEARCH_MODEL: idx = model_next(s); break;
        default: break;
        }
    }
    if (idx < 0)
        idx = next_in_order(s);
    if (idx < 0)
        return 0;
    *out = s->pool[idx];
    return 1;
}

void kiln_search_report(kiln_search *s, const kiln_config *c, double time_ns)
{
    int idx = find(s, c);
    if (idx < 0 || s->seen[idx])
        return;
    s->seen[idx] = 1;
    s->n_seen++;
    s->hist[s->n_hist++] = (result){idx, time_ns};
    if (s->kind == KILN_SEARCH_ANNEAL && time_ns > 0) {
        int accept = s->cur < 0 || time_ns < s->cur_t;
        if (!accept) {
            double rel = (time_ns - s->cur_t) / s->cur_t;
            accept = kiln_rng_f64(&s->rng) < exp(-rel / s->temp);
        }
        if (accept) {
            s->cur = idx;
            s->cur_t = time_ns;
        }
        s->temp *= 0.95;
    }
}
