/* tuner/search.h - search strategies over a kernel's schedule space.
 *
 * The pool is every config of the space that is valid for the shape and
 * the device (or a large random sample of it for huge spaces). Strategies
 * propose one config at a time and learn from the reported time:
 *   exhaustive  the pool in order (default first)
 *   random      default first, then a random permutation
 *   anneal      simulated annealing over neighbouring values
 *   evolve      a small genetic algorithm (tournament, crossover, mutation)
 *   model       a ridge-regression cost model on one-hot parameter features
 *               fitted to log(time) of the trials so far scores every
 *               unseen config of the pool and proposes the lowest
 *               predicted time, exploring at random one time in five
 * A config is never proposed twice. */
#ifndef KILN_TUNER_SEARCH_H
#define KILN_TUNER_SEARCH_H

#include "kernels/kernel.h"

typedef enum kiln_search_kind {
    KILN_SEARCH_EXHAUSTIVE,
    KILN_SEARCH_RANDOM,
    KILN_SEARCH_ANNEAL,
    KILN_SEARCH_EVOLVE,
    KILN_SEARCH_MODEL,
    KILN_SEARCH_COUNT
} kiln_search_kind;

const char *kiln_search_name(int kind);
int kiln_search_parse(const char *s, int *kind);

typedef struct kiln_search kiln_search;

kiln_search *kiln_search_new(int kind, const kiln_kernel *k, const kiln_shape *s, const kiln_fingerprint *fp,
                             uint64_t seed, kiln_err *e);
void kiln_search_free(kiln_search *s);
int kiln_search_pool_size(const kiln_search *s);
/* Next config to try; 0 when nothing is left. */
int kiln_search_next(kiln_search *s, kiln_config *out);
/* Marks c as tried (also for configs reused from a resumed session);
 * time_ns <= 0 means it failed. */
void kiln_search_report(kiln_search *s, const kiln_config *c, double time_ns);

#endif
