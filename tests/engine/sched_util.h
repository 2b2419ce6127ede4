/* tests/engine/sched_util.h - what the scheduler tests (batch_test.c,
 * prefix_cache_test.c) share: a request's output as its callbacks collect
 * it, one prompt's greedy tokens alone (kiln_generate, no scheduler), a
 * submit, running the scheduler dry, the comparison with alone, random
 * prompts, whether a backend can run. Static inline functions in a header, like tests/test.h: each test's
 * CHECKs count in its own file. */
#ifndef KILN_TESTS_ENGINE_SCHED_UTIL_H
#define KILN_TESTS_ENGINE_SCHED_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/sched.h"
#include "engine/session.h"
#include "tests/test.h"
#include "util/rng.h"

#define OUT_MAX_IDS 128

typedef struct out {
    int32_t ids[OUT_MAX_IDS];
    int n, done, finish, n_cached, err;
} out;

static inline void on_token(void *user, int32_t id)
{
    out *o = user;
    if (o->n < OUT_MAX_IDS)
        o->ids[o->n] = id;
    o->n++;
}

static inline void on_done(void *user, const kiln_req_result *r, const kiln_err *err)
{
    out *o = user;
    o->done++;
    o->finish = r->finish;
    o->n_cached = r->n_cached;
    o->err = err != NULL;
    if (err)
        fprintf(stderr, "request failed: %s\n", err->msg);
}

/* Greedy tokens of one prompt alone (kiln_generate, no scheduler). */
static inline int alone(kiln_session *s, const int32_t *p, int n, int n_gen, int32_t *ids)
{
    kiln_err e = {0};
    kiln_kv_seq seq;
    kiln_gen_opts go = {.n_predict = n_gen, .ignore_eos = 1};
    kiln_sampling_default(&go.sampling);
    kiln_gen_stats st = {0};
    int rc = kiln_session_seq(s, &seq, &e);
    if (!rc) {
        rc = kiln_session_generate(s, &seq, p, n, &go, &st, ids, n_gen, &e);
        kiln_kv_seq_free(&seq);
    }
    CHECK(rc == 0 && st.n_gen == n_gen, "alone: %d tokens: %s", st.n_gen, e.msg);
    kiln_gen_stats_free(&st);
    return rc;
}

/* n_gen greedy tokens of prompt p through the scheduler into *o (cleared
 * first); the request id, or -1 (a failed CHECK). */
static inline int submit(kiln_sched *q, const int32_t *p, int n, int n_gen, out *o)
{
    kiln_err e = {0};
    kiln_gen_opts go = {.n_predict = n_gen, .ignore_eos = 1};
    kiln_sampling_default(&go.sampling);
    kiln_req_cbs cb = {.on_done = on_done, .on_token = on_token, .user = o};
    memset(o, 0, sizeof *o);
    int id = kiln_sched_submit(q, p, n, &go, &cb, &e);
    CHECK(id >= 0, "submit: %s", e.msg);
    return id;
}

/* Steps until nothing is queued or running. */
static inline void run_all(kiln_sched *q, const char *what)
{
    kiln_err e = {0};
    int rc, steps = 0;
    while ((rc = kiln_sched_step(q, &e)) > 0 && steps < 100000)
        steps++;
    CHECK(rc == 0, "%s: step returned %d: %s", what, rc, e.msg);
}

/* o finished once, at its limit, with exactly the tokens of ref. */
static inline void compare(const char *dev, const char *what, const out *o, const int32_t *ref, int n_gen)
{
    CHECK(o->done == 1 && !o->err && o->finish == KILN_STOP_LIMIT && o->n == n_gen,
          "%s %s: done %d times, err %d, finish %s, %d tokens", dev, what, o->done, o->err, kiln_stop_name(o->finish),
          o->n);
    int same = 0;
    while (same < n_gen && same < o->n && o->ids[same] == ref[same])
        same++;
    CHECK(same == n_gen, "%s %s: tokens differ from alone at %d (%d vs %d)", dev, what, same,
          same < n_gen ? o->ids[same] : -1, same < n_gen ? ref[same] : -1);
}

/* 1 if backend dev can run here; an unknown name, or one named in
 * $KILN_REQUIRE_BACKENDS but unavailable, is a failed CHECK (a skip is
 * printed, never counted as a pass). */
static inline int device_usable(const char *dev)
{
    kiln_backend_kind k;
    kiln_backend_status bs;
    if (kiln_backend_parse(dev, &k)) {
        CHECK(0, "unknown backend %s", dev);
        return 0;
    }
    kiln_backend_probe(k, &bs);
    if (!bs.available) {
        CHECK(!test_backend_required(dev), "%s required but unavailable: %s", dev, bs.reason);
        fprintf(stderr, "%s: skipped (%s)\n", dev, bs.reason);
        return 0;
    }
    return 1;
}

static inline void random_prompt(kiln_rng *rng, int32_t *p, int n, int vocab)
{
    for (int i = 0; i < n; i++)
        p[i] = 3 + (int32_t)kiln_rng_below(rng, (uint32_t)(vocab - 3)); /* no control tokens */
}

#endif
