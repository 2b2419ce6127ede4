/* util/pool.h - a few host threads that split a range of work items, for
 * host-side work that is large and independent per item (repacking the rows of
 * a weight matrix at model load).
 *
 * kiln_pool_run(p, n, grain, fn, ctx, e) calls fn(ctx, begin, end, e) over
 * disjoint chunks of [0, n) of about `grain` items, claimed from a shared
 * counter by the caller and the workers until none are left (on shared cores a
 * slowed thread takes fewer chunks instead of holding the run up), and returns
 * when all chunks are done. fn must only touch what its chunk owns. The first
 * chunk that fails stops the others from claiming more; its code is returned
 * and its message is in e. A pool runs one range at a time (one caller). A
 * NULL pool runs everything on the calling thread. Nothing here is global: the
 * caller owns the pool and frees it. */
#ifndef KILN_UTIL_POOL_H
#define KILN_UTIL_POOL_H

#include <stdint.h>

#include "util/err.h"

typedef struct kiln_pool kiln_pool;

/* Returns 0 or an error code with e set (a failing chunk's). */
typedef int (*kiln_pool_fn)(void *ctx, int64_t begin, int64_t end, kiln_err *e);

/* A pool of n_threads threads in all, the caller included (n_threads - 1
 * workers; n_threads <= 1: none). */
int kiln_pool_new(int n_threads, kiln_pool **out, kiln_err *e);
void kiln_pool_free(kiln_pool *p); /* NULL is a no-op */
int kiln_pool_threads(const kiln_pool *p); /* 1 for NULL */

int kiln_pool_run(kiln_pool *p, int64_t n, int64_t grain, kiln_pool_fn fn, void *ctx, kiln_err *e);

/* *out = threads the host offers: online processors, capped by
 * $KILN_CPU_THREADS as the cpu backend caps its own pool. At least 1. A
 * KILN_CPU_THREADS that is not a whole number >= 1 is an error naming it. */
int kiln_host_threads(int *out, kiln_err *e);

#endif
