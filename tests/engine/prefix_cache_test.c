/* tests/engine/prefix_cache_test.c - the prefix cache of finished requests
 * (engine/prefix_cache.h) and the scheduler using it (engine/sched.h).
 *
 *   index (cpu device, no model): a sequence's whole pages are indexed by
 *     their tokens (the partly filled last page is not); a lookup finds the
 *     longest chain, stops at the first page whose tokens differ (one token
 *     changed in the middle of a page, or in the first page only), and at
 *     an entry whose hash matches but whose tokens differ (a collision,
 *     simulated); the cache holds
 *     one reference per page; make_room evicts least recently used leaves
 *     first and frees exactly what it counts as evictable; free returns
 *     every page.
 * and per device (cpu, or those named in argv) on a tiny synthetic model (or
 * $KILN_SMOLLM2 with first argument "smollm2"), --precision strict:
 *   (a) A finishes; B sharing A's first 2.5 pages reuses 2 whole pages
 *       (n_cached 32, the cache's counters), B2 = A's prompt and generated
 *       tokens and more reuses the pages holding A's generated tokens too;
 *       both give bit for bit the greedy tokens they give alone;
 *   (c) a prompt equal to 3 whole cached pages reuses 2 and computes the
 *       last page (its last token's logits), same tokens as alone;
 *   (b) a pool of 8 pages with 5 cached: a request needing all 8 runs (the
 *       cache evicted, nothing preempted, not kv_full), and two requests of
 *       4 pages each run without a preemption, as with the cache off;
 *   burst: A and B submitted at once with the cache off: B waits for A's
 *       prefill of their 2 shared pages and maps them (same tokens);
 *   off: no_prefix_cache and no_prefix_share reuse nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/prefix_cache.h"
#include "engine/sched.h"
#include "engine/synth.h"
#include "tests/engine/sched_util.h"
#include "tests/test.h"
#include "util/rng.h"

#define PS 16
#define N_GEN 12

/* A sequence of n tokens (its pages reserved; no K/V written: the index
 * only looks at tokens and pages). */
static void fake_seq(kiln_kv_seq *s, kiln_kv_cache *c, int n, kiln_err *e)
{
    CHECK_OK(kiln_kv_seq_init(s, c, c->n_pages * c->page_size, e), e);
    CHECK_OK(kiln_kv_seq_reserve(s, n, e), e);
    s->n_tokens = n;
}

static void test_index(void)
{
    kiln_err e = {0};
    kiln_device *d;
    if (kiln_device_select("cpu", &d, &e)) {
        CHECK(0, "cpu: %s", e.msg);
        return;
    }
    kiln_kv_cache c;
    CHECK_OK(kiln_kv_cache_init(&c, d, 1, 1, 4, PS, 12 * PS, KILN_KV_F32, &e), &e);
    kiln_prefix_cache pc;
    CHECK_OK(kiln_prefix_cache_init(&pc, &c, &e), &e);
    kiln_rng rng;
    kiln_rng_seed(&rng, 21);
    int32_t a[4 * PS], b[4 * PS], x[4 * PS];
    random_prompt(&rng, a, 4 * PS, 1000);
    memcpy(b, a, sizeof a);
    b[2 * PS + 7] ^= 1; /* b differs from a in the middle of page 2 */
    memcpy(x, a, sizeof a);
    x[3] ^= 1; /* x differs in page 0: its later pages (a's tokens) have another parent */

    /* a: 3.5 pages; 3 whole pages indexed */
    kiln_kv_seq s;
    fake_seq(&s, &c, 3 * PS + 8, &e);
    int a_pages[4];
    memcpy(a_pages, s.pages, sizeof a_pages);
    CHECK(kiln_prefix_cache_insert(&pc, &s, a, s.n_tokens) == 3 && pc.n_entries == 3, "a: %d entries",
          pc.n_entries);
    kiln_kv_seq_free(&s);
    CHECK(c.n_free == 12 - 3 && kiln_prefix_cache_evictable(&pc) == 3 && c.ref[a_pages[0]] == 1,
          "after a: %d free, %d evictable, ref %d", c.n_free, kiln_prefix_cache_evictable(&pc), c.ref[a_pages[0]]);
    int got[4];
    int n = kiln_prefix_cache_lookup(&pc, a, 4, got);
    CHECK(n == 3 && !memcmp(got, a_pages, 3 * sizeof *got), "lookup a: %d pages (%d %d %d)", n, got[0], got[1],
          got[2]);
    CHECK(kiln_prefix_cache_lookup(&pc, a, 2, got) == 2, "lookup a limited to 2 pages");
    /* a hash collision, simulated: page 1's entry keeps its hash but holds other tokens; the lookup
     * compares the tokens and stops there rather than hand out KV of other tokens */
    int32_t *stored = pc.toks + (size_t)a_pages[1] * PS + 5;
    *stored ^= 1;
    n = kiln_prefix_cache_lookup(&pc, a, 4, got);
    CHECK(n == 1, "lookup a with page 1's tokens changed under the same hash: %d pages, want 1", n);
    *stored ^= 1;
    n = kiln_prefix_cache_lookup(&pc, b, 4, got);
    CHECK(n == 2, "lookup b (differs in page 2): %d pages, want 2", n);
    n = kiln_prefix_cache_lookup(&pc, x, 4, got);
    CHECK(n == 0, "lookup x (differs in page 0 only): %d pages, want 0", n);

    /* b: shares pages 0-1 with a (mapped from the cache), its own page 2 */
    kiln_kv_seq sb;
    CHECK_OK(kiln_kv_seq_init(&sb, &c, 12 * PS, &e), &e);
    n = kiln_prefix_cache_lookup(&pc, b, 2, got);
    CHECK(kiln_prefix_cache_pinned_by(&pc, got, n) == 2, "b pins 2 pages");
    CHECK_OK(kiln_kv_seq_map(&sb, got, n, n * PS, &e), &e);
    CHECK_OK(kiln_kv_seq_reserve(&sb, 2 * PS, &e), &e);
    sb.n_tokens = 4 * PS;
    CHECK(c.ref[a_pages[0]] == 2 && kiln_prefix_cache_evictable(&pc) == 1, "b mapped: ref %d, %d evictable",
          c.ref[a_pages[0]], kiln_prefix_cache_evictable(&pc));
    CHECK(kiln_prefix_cache_insert(&pc, &sb, b, sb.n_tokens) == 2 && pc.n_entries == 5, "b: %d entries",
          pc.n_entries);
    int b3 = sb.pages[3];
    kiln_kv_seq_free(&sb);
    CHECK(kiln_prefix_cache_evictable(&pc) == 5 && c.n_free == 12 - 5, "after b: %d evictable, %d free",
          kiln_prefix_cache_evictable(&pc), c.n_free);
    n = kiln_prefix_cache_lookup(&pc, b, 4, got);
    CHECK(n == 4 && got[1] == a_pages[1] && got[3] == b3, "lookup b: %d pages", n);

    /* LRU: b was used last, so a's page 2 (a leaf) goes first, then b's chain from the leaf up */
    CHECK(kiln_prefix_cache_make_room(&pc, 12 - 4) == 8 && !pc.in[a_pages[2]] && pc.in[b3] && pc.evicted == 1,
          "make room for 1: a's leaf evicted (%d), %llu evicted", pc.in[a_pages[2]], pc.evicted);
    CHECK(kiln_prefix_cache_lookup(&pc, a, 4, got) == 2, "a keeps 2 pages");
    /* a pinned page is never evicted: all but the mapped chain go */
    kiln_kv_seq sa;
    CHECK_OK(kiln_kv_seq_init(&sa, &c, 12 * PS, &e), &e);
    CHECK_OK(kiln_kv_seq_map(&sa, got, 1, PS, &e), &e);
    CHECK(kiln_prefix_cache_make_room(&pc, 12) == 11 && pc.in[a_pages[0]] && pc.n_entries == 1,
          "make room for all: %d free, %d entries left", c.n_free, pc.n_entries);
    kiln_kv_seq_free(&sa);
    CHECK(kiln_prefix_cache_evictable(&pc) == 1, "the chain's root is evictable again");
    kiln_prefix_cache_free(&pc);
    CHECK(c.n_free == 12, "free: %d of 12 pages free", c.n_free);
    kiln_kv_cache_free(&c);
    kiln_device_close(d);
}

static int open_session(kiln_session *s, const char *dev, const char *model, int ctx, int kv_type)
{
    kiln_err e = {0};
    kiln_session_opts so = {.model = model, .device = dev, .db_json = "", .ctx = ctx, .page_size = PS, .chunk = 16,
                            .precision = KILN_PRECISION_STRICT, .kv_type = kv_type};
    int rc = kiln_session_open(s, &so, &e);
    CHECK(rc == 0, "%s: %s", dev, e.msg);
    return rc;
}

/* (a), (c) and the switches off */
static void test_reuse(const char *dev, const char *model, int kv_type)
{
    kiln_err e = {0};
    kiln_session s;
    if (open_session(&s, dev, model, 1024, kv_type))
        return;
    int V = s.model.cfg.n_vocab;
    kiln_rng rng;
    kiln_rng_seed(&rng, 7);
    /* A: 50 prompt tokens + 12 generated (61 fed: 3 whole pages) */
    int32_t a[50], ra[N_GEN], b[60], rb[N_GEN], b2[80], rb2[N_GEN], c[48], rcc[N_GEN];
    random_prompt(&rng, a, 50, V);
    if (alone(&s, a, 50, N_GEN, ra))
        goto done;
    memcpy(b, a, 40 * sizeof *b); /* 2.5 pages of A */
    random_prompt(&rng, b + 40, 20, V);
    b[40] = a[40] == 3 ? 4 : 3;
    memcpy(b2, a, 50 * sizeof *b2); /* A's prompt, A's generated tokens, then its own */
    memcpy(b2 + 50, ra, N_GEN * sizeof *b2);
    random_prompt(&rng, b2 + 50 + N_GEN, 80 - 50 - N_GEN, V);
    memcpy(c, a, 48 * sizeof *c); /* exactly A's 3 whole pages */
    if (alone(&s, b, 60, N_GEN, rb) || alone(&s, b2, 80, N_GEN, rb2) || alone(&s, c, 48, N_GEN, rcc))
        goto done;

    kiln_sched *q;
    kiln_sched_opts qo = {.max_batch = 4};
    CHECK_OK(kiln_sched_open(&q, &s, &qo, &e), &e);
    out o;
    submit(q, a, 50, N_GEN, &o);
    run_all(q, "A");
    compare(dev, "A", &o, ra, N_GEN);
    kiln_sched_stats st;
    kiln_sched_stats_get(q, &st);
    CHECK(st.kv_pages_cached == 3 && st.kv_pages_used == 0, "%s: after A %d pages cached, %d used", dev,
          st.kv_pages_cached, st.kv_pages_used);

    submit(q, b, 60, N_GEN, &o);
    run_all(q, "B");
    compare(dev, "B (2 pages of A cached)", &o, rb, N_GEN);
    CHECK(o.n_cached == 32, "%s B: %d tokens reused, want 32", dev, o.n_cached);

    submit(q, b2, 80, N_GEN, &o);
    run_all(q, "B2");
    compare(dev, "B2 (A's generated tokens cached)", &o, rb2, N_GEN);
    CHECK(o.n_cached == 48, "%s B2: %d tokens reused, want 48 (A's prompt and generated pages)", dev, o.n_cached);

    submit(q, c, 48, N_GEN, &o);
    run_all(q, "C");
    compare(dev, "C (prompt = 3 cached pages)", &o, rcc, N_GEN);
    CHECK(o.n_cached == 32, "%s C: %d tokens reused, want 32 (the last page computed for its logits)", dev,
          o.n_cached);
    kiln_sched_stats_get(q, &st);
    CHECK(st.cache_hits == 3 && st.cache_tokens_reused == 32 + 48 + 32 && st.prefix_tokens_reused == 112 &&
              st.kv_pages_used == 0 && st.cache_evictions == 0,
          "%s: %llu hits, %llu tokens from the cache (%llu reused), %d pages used, %llu evicted", dev, st.cache_hits,
          st.cache_tokens_reused, st.prefix_tokens_reused, st.kv_pages_used, st.cache_evictions);
    kiln_sched_close(q);
    CHECK(s.en.kv.n_free == s.en.kv.n_pages, "%s: closing the scheduler left %d of %d pages free", dev,
          s.en.kv.n_free, s.en.kv.n_pages);

    /* burst: A and B submitted together (nothing cached, the cache off): B waits for A to prefill the
     * pages they share and maps them rather than computing them too */
    kiln_sched_opts qb = {.max_batch = 4, .no_prefix_cache = 1};
    CHECK_OK(kiln_sched_open(&q, &s, &qb, &e), &e);
    out ob;
    submit(q, a, 50, N_GEN, &o);
    submit(q, b, 60, N_GEN, &ob);
    run_all(q, "burst");
    compare(dev, "burst A", &o, ra, N_GEN);
    compare(dev, "burst B (waited for A's pages)", &ob, rb, N_GEN);
    CHECK(ob.n_cached >= 32, "%s burst: B reused %d tokens of A's prompt, want >= 32", dev, ob.n_cached);
    kiln_sched_close(q);

    /* off: the same A then B reuse nothing */
    for (int off = 0; off < 2; off++) {
        kiln_sched_opts qoff = {.max_batch = 4, .no_prefix_cache = !off, .no_prefix_share = off};
        CHECK_OK(kiln_sched_open(&q, &s, &qoff, &e), &e);
        submit(q, a, 50, N_GEN, &o);
        run_all(q, "A off");
        submit(q, b, 60, N_GEN, &o);
        run_all(q, "B off");
        compare(dev, off ? "B, no sharing" : "B, no cache", &o, rb, N_GEN);
        kiln_sched_stats_get(q, &st);
        CHECK(o.n_cached == 0 && st.kv_pages_cached == 0 && st.cache_hits == 0 && st.kv_pages_used == 0,
              "%s %s: B reused %d tokens, %d pages cached", dev, off ? "no sharing" : "no cache", o.n_cached,
              st.kv_pages_cached);
        kiln_sched_close(q);
    }
done:
    kiln_session_close(&s);
}

/* (b): 8 pages of 16 tokens */
static void test_pressure(const char *dev, const char *model, int kv_type)
{
    kiln_err e = {0};
    kiln_session s;
    if (open_session(&s, dev, model, 128, kv_type))
        return;
    int V = s.model.cfg.n_vocab;
    kiln_rng rng;
    kiln_rng_seed(&rng, 9);
    int32_t a[60], ra[30], big[60], rbig[60], p[2][30], rp[2][30];
    random_prompt(&rng, a, 60, V);
    random_prompt(&rng, big, 60, V);
    for (int i = 0; i < 2; i++)
        random_prompt(&rng, p[i], 30, V);
    if (alone(&s, a, 60, 30, ra) || alone(&s, big, 60, 60, rbig) || alone(&s, p[0], 30, 30, rp[0]) ||
        alone(&s, p[1], 30, 30, rp[1]))
        goto done;
    unsigned long long preempted[2] = {0};
    for (int cache = 1; cache >= 0; cache--) {
        const char *what = cache ? "cache on" : "cache off";
        kiln_sched *q;
        kiln_sched_opts qo = {.max_batch = 4, .no_prefix_cache = !cache};
        CHECK_OK(kiln_sched_open(&q, &s, &qo, &e), &e);
        out o[2];
        submit(q, a, 60, 30, &o[0]); /* 89 tokens fed: 5 whole pages cached */
        run_all(q, "A");
        compare(dev, what, &o[0], ra, 30);
        kiln_sched_stats st;
        kiln_sched_stats_get(q, &st);
        CHECK(st.kv_pages_cached == (cache ? 5 : 0) && st.kv_pages_free == (cache ? 3 : 8),
              "%s %s: %d pages cached, %d free", dev, what, st.kv_pages_cached, st.kv_pages_free);
        submit(q, big, 60, 60, &o[0]); /* 119 tokens fed + 1: all 8 pages */
        run_all(q, "big");
        compare(dev, cache ? "a request needing the whole pool, cache evicted" : "the whole pool, no cache", &o[0],
                rbig, 60);
        kiln_sched_stats_get(q, &st);
        CHECK(o[0].n_cached == 0 && st.preempted == 0 && (!cache || st.cache_evictions >= 5),
              "%s %s: big reused %d, %llu preempted, %llu evicted", dev, what, o[0].n_cached, st.preempted,
              st.cache_evictions);
        /* two of 4 pages each: fit together without the cache, so no preemption with it */
        submit(q, p[0], 30, 30, &o[0]);
        submit(q, p[1], 30, 30, &o[1]);
        run_all(q, "pair");
        for (int i = 0; i < 2; i++)
            compare(dev, what, &o[i], rp[i], 30);
        kiln_sched_stats_get(q, &st);
        preempted[cache] = st.preempted;
        kiln_sched_close(q);
    }
    CHECK(preempted[1] == 0 && preempted[0] == 0, "%s: %llu preempted with the cache, %llu without", dev,
          preempted[1], preempted[0]);
done:
    kiln_session_close(&s);
}

int main(int argc, char **argv)
{
    int real = argc > 1 && !strcmp(argv[1], "smollm2");
    const char *model = NULL;
    if (real) {
        argc--;
        argv++;
        model = getenv("KILN_SMOLLM2");
        if (!model || !model[0] || access(model, R_OK)) {
            if (test_backend_required("model")) {
                CHECK(0, "KILN_SMOLLM2 (%s) is required but missing: run scripts/fetch-model.sh",
                      model ? model : "unset");
                return 1;
            }
            KILN_SKIP("KILN_SMOLLM2 not set: run scripts/fetch-model.sh");
        }
    } else {
        test_index();
    }
    int kv_type = KILN_KV_F32;
    const char *kt = getenv("BATCH_KV_TYPE");
    if (kt && kt[0] && kiln_kv_type_parse(kt, &kv_type)) {
        CHECK(0, "BATCH_KV_TYPE=%s: f32 or f16", kt);
        return 1;
    }
    char path[] = "/tmp/kiln-prefix-XXXXXX";
    if (!real) {
        int fd = mkstemp(path);
        CHECK(fd >= 0, "mkstemp");
        close(fd);
        kiln_err e = {0};
        kiln_synth_opts so = {.preset = "tiny", .seed = 3};
        CHECK_OK(kiln_synth_write(path, &so, &e), &e);
        model = path;
    }
    const char *const *devs = argc > 1 ? (const char *const *)argv + 1 : (const char *const[]){"cpu"};
    int n_devs = argc > 1 ? argc - 1 : 1, ran = 0;
    for (int i = 0; i < n_devs; i++) {
        if (!device_usable(devs[i]))
            continue;
        test_reuse(devs[i], model, kv_type);
        test_pressure(devs[i], model, kv_type);
        fprintf(stderr, "%s: done (kv %s)\n", devs[i], kiln_kv_type_name(kv_type));
        ran++;
    }
    if (!real)
        unlink(path);
    if (!ran && !test_failures)
        KILN_SKIP("no device available");
    return test_failures ? 1 : 0;
}
