/* tests/engine/batch_test.c - continuous batching (engine/sched.h) and the
 * reference-counted KV pages under it (engine/kv_cache.h).
 *
 *   kv pages (cpu): a prefix shared between two sequences is counted, the
 *     partly filled page is copied on the first write to it (its contents
 *     read back equal, the other sequence's page untouched), and every page
 *     returns to the free list when both let go;
 * and per device (cpu, opencl, vulkan, or those named in argv), on a tiny
 * synthetic model (or the model in $BATCH_MODEL; with first argument
 * "smollm2", $KILN_SMOLLM2 and the batch part only: tests/engine/meson.build
 * runs that once per backend), --precision strict:
 *   - batch: 8 random prompts of different lengths give the same greedy
 *     tokens through the scheduler (8 at once, prefill chunks mixed into
 *     decode steps, in at most half the steps one request at a time would
 *     take) as kiln_generate alone, each on_done exactly once;
 *   - prefix: requests sharing a 40-token prefix (2.5 pages) with a running
 *     one reuse its pages (n_cached, the scheduler's counter, a copy on
 *     write) and still give their unshared tokens;
 *   - full: a KV cache of 8 pages for 4 requests of 4 pages each preempts
 *     (counted) and still gives every request its tokens; a request that can
 *     never fit is refused with KILN_E_FULL and a message; a cancelled
 *     request ends with KILN_STOP_CALLER.
 * $BATCH_PRECISION=fast and $BATCH_DB=PATH: the same with int8 activations
 * and a tuned database's configs (what `kiln serve` runs by default).
 * $BATCH_KV_TYPE=f16: the same with an f16 KV cache (alone and batched both
 * f16, so the tokens must still agree; prefix pages copied as f16), and the
 * kv pages part at f16 too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/sched.h"
#include "engine/synth.h"
#include "tests/engine/sched_util.h"
#include "tests/test.h"
#include "util/rng.h"

#define N_REQ 8
#define N_GEN 12

/* kv_type: the pools' element type; copy on write copies bytes (half as
 * many for f16 pages, the page offsets from the cache's element size) */
static void test_kv_pages(int kv_type)
{
    kiln_err e = {0};
    kiln_device *d;
    if (kiln_device_select("cpu", &d, &e)) {
        CHECK(0, "cpu: %s", e.msg);
        return;
    }
    kiln_kv_cache c;
    enum { L = 2, KVH = 2, HD = 8, PS = 16 };
    CHECK_OK(kiln_kv_cache_init(&c, d, L, KVH, HD, PS, 8 * PS, kv_type, &e), &e);
    int es = kv_type == KILN_KV_F16 ? 2 : 4;
    CHECK(c.elem == es && c.bytes == (size_t)2 * L * 8 * KVH * PS * HD * es &&
              kiln_kv_bytes_per_token(&c) == (size_t)2 * L * KVH * HD * es,
          "%s: element %d bytes, pools %zu bytes, %zu per token", kiln_kv_type_name(kv_type), c.elem, c.bytes,
          kiln_kv_bytes_per_token(&c));
    kiln_kv_seq a, b;
    CHECK_OK(kiln_kv_seq_init(&a, &c, 8 * PS, &e), &e);
    CHECK_OK(kiln_kv_seq_init(&b, &c, 8 * PS, &e), &e);
    /* a page of 3 so the tables are not the identity */
    kiln_kv_seq pad;
    CHECK_OK(kiln_kv_seq_init(&pad, &c, PS, &e), &e);
    CHECK_OK(kiln_kv_seq_reserve(&pad, 1, &e), &e);
    CHECK_OK(kiln_kv_seq_reserve(&a, 40, &e), &e);
    a.n_tokens = 40;
    size_t pb = (size_t)KVH * PS * HD * (size_t)es, pool = (size_t)c.n_pages * pb;
    float *data = malloc(pool), *back = malloc(pool);
    kiln_rng rng;
    kiln_rng_seed(&rng, 11);
    for (size_t i = 0; i < pool / 4; i++)
        data[i] = kiln_rng_uniform(&rng, -1, 1);
    for (int l = 0; l < L; l++) {
        CHECK_OK(kiln_write(d, c.k[l], 0, data, pool, &e), &e);
        CHECK_OK(kiln_write(d, c.v[l], 0, data, pool, &e), &e);
    }
    CHECK(c.n_free == 8 - 4, "free %d, want 4", c.n_free);
    CHECK_OK(kiln_kv_seq_share(&b, &a, 40, &e), &e);
    CHECK(b.n_pages == 3 && b.n_tokens == 40 && c.n_free == 4, "share: %d pages, %d tokens, %d free", b.n_pages,
          b.n_tokens, c.n_free);
    for (int i = 0; i < 3; i++)
        CHECK(b.pages[i] == a.pages[i] && c.ref[a.pages[i]] == 2, "page %d: %d vs %d, ref %d", i, b.pages[i],
              a.pages[i], c.ref[a.pages[i]]);
    CHECK(kiln_kv_seq_pages_needed(&b, 1) == 1 && kiln_kv_seq_pages_needed(&b, 9) == 2,
          "pages needed %d %d, want 1 (the copy) and 2", kiln_kv_seq_pages_needed(&b, 1),
          kiln_kv_seq_pages_needed(&b, 9));
    int shared_page = a.pages[2];
    CHECK_OK(kiln_kv_seq_reserve(&b, 1, &e), &e);
    CHECK(b.pages[2] != shared_page && a.pages[2] == shared_page && c.ref[shared_page] == 1 &&
              c.ref[b.pages[2]] == 1 && c.cow_copies == 1 && c.n_free == 3,
          "copy on write: page %d (was %d), refs %d/%d, copies %llu, free %d", b.pages[2], shared_page,
          c.ref[shared_page], c.ref[b.pages[2]], c.cow_copies, c.n_free);
    int32_t table[8];
    CHECK_OK(kiln_read(d, b.table, 0, table, 3 * 4, &e), &e);
    CHECK(table[0] == b.pages[0] && table[2] == b.pages[2], "device table %d %d vs %d %d", table[0], table[2],
          b.pages[0], b.pages[2]);
    for (int l = 0; l < L; l++)
        for (int kv = 0; kv < 2; kv++) {
            CHECK_OK(kiln_read(d, kv ? c.v[l] : c.k[l], 0, back, pool, &e), &e);
            CHECK(!memcmp((char *)back + (size_t)b.pages[2] * pb, (char *)data + (size_t)shared_page * pb, pb) &&
                      !memcmp((char *)back + (size_t)shared_page * pb, (char *)data + (size_t)shared_page * pb, pb),
                  "layer %d %s: the copied page differs", l, kv ? "V" : "K");
        }
    /* a second write to the now private page copies nothing */
    b.n_tokens = 41;
    CHECK_OK(kiln_kv_seq_reserve(&b, 1, &e), &e);
    CHECK(c.cow_copies == 1, "copied again");
    kiln_kv_seq_free(&a);
    CHECK(c.ref[b.pages[0]] == 1 && c.n_free == 4, "after a's free: ref %d, free %d", c.ref[b.pages[0]], c.n_free);
    kiln_kv_seq_free(&b);
    kiln_kv_seq_free(&pad);
    CHECK(c.n_free == 8, "all pages back: %d free", c.n_free);
    for (int i = 0; i < c.n_pages; i++)
        CHECK(c.ref[i] == 0, "page %d ref %d", i, c.ref[i]);
    free(data);
    free(back);
    kiln_kv_cache_free(&c);
    kiln_device_close(d);
}

/* the shared comparison, naming the request */
static void compare_req(const char *dev, const char *what, int i, const out *o, const int32_t *ref, int n_gen)
{
    char w[96];
    snprintf(w, sizeof w, "%s request %d", what, i);
    compare(dev, w, o, ref, n_gen);
}

/* batch_only: the batch comparison alone (the real model, where every forward is slow) */
static void test_device(const char *dev, const char *model, int batch_only, int kv_type)
{
    kiln_err e = {0};
    kiln_session s;
    /* chunk 16: prompts span several steps, mixed with the others' decode tokens */
    kiln_session_opts so = {.model = model, .device = dev, .db_json = "", .ctx = 1024, .page_size = 16, .chunk = 16,
                            .precision = KILN_PRECISION_STRICT, .kv_type = kv_type};
    /* $BATCH_PRECISION=fast: int8 activations where the configs choose them
     * (a gemv alone, the int8 gemm batched: different kernels that must give
     * a row the same bits, kernels/gemv_int4/q8mm_cpu.c); $BATCH_DB: tuned
     * configs from that database (interleaved layouts, other tiles) */
    const char *prec = getenv("BATCH_PRECISION"), *dbp = getenv("BATCH_DB");
    if (prec && !strcmp(prec, "fast"))
        so.precision = KILN_PRECISION_FAST;
    if (dbp && dbp[0]) {
        so.db_json = NULL;
        so.db_path = dbp;
    }
    if (kiln_session_open(&s, &so, &e)) {
        CHECK(0, "%s: %s", dev, e.msg);
        return;
    }
    int V = s.model.cfg.n_vocab;
    kiln_rng rng;
    kiln_rng_seed(&rng, 5);
    static const int lens[N_REQ] = {3, 9, 17, 30, 41, 5, 60, 24};
    int32_t prompts[N_REQ][64], ref[N_REQ][N_GEN];
    for (int i = 0; i < N_REQ; i++) {
        random_prompt(&rng, prompts[i], lens[i], V);
        if (alone(&s, prompts[i], lens[i], N_GEN, ref[i]))
            goto done;
    }
    /* batch: all 8 at once */
    kiln_sched *q;
    kiln_sched_opts qo = {.max_batch = 8};
    CHECK_OK(kiln_sched_open(&q, &s, &qo, &e), &e);
    out o[N_REQ] = {{{0}}};
    for (int i = 0; i < N_REQ; i++)
        submit(q, prompts[i], lens[i], N_GEN, &o[i]);
    run_all(q, "batch");
    kiln_sched_stats st;
    kiln_sched_stats_get(q, &st);
    CHECK(st.kv_pages_used == 0 && st.running == 0 && st.queued == 0, "%s: after the batch %d pages used", dev,
          st.kv_pages_used);
    /* batched for real: one request at a time would take a step per prompt chunk and per decode token */
    unsigned long long serial = 0;
    for (int i = 0; i < N_REQ; i++)
        serial += (unsigned long long)((lens[i] + so.chunk - 1) / so.chunk + N_GEN - 1);
    fprintf(stderr, "%s: the batch took %llu steps (%llu one request at a time)\n", dev, st.steps, serial);
    CHECK(st.steps > 0 && 2 * st.steps <= serial, "%s: the batch took %llu steps, one at a time would take %llu: "
          "not batched", dev, st.steps, serial);
    for (int i = 0; i < N_REQ; i++)
        compare_req(dev, "batch", i, &o[i], ref[i], N_GEN);
    if (batch_only)
        goto close;

    /* prefix: a running request's first 40 tokens shared by three more */
    int32_t pre[4][56], pref[4][N_GEN];
    random_prompt(&rng, pre[0], 56, V);
    for (int i = 1; i < 4; i++) {
        memcpy(pre[i], pre[0], 40 * sizeof **pre);
        random_prompt(&rng, pre[i] + 40, 16, V);
        pre[i][40] = pre[0][40] == 3 ? 4 : 3; /* diverge right after the prefix */
    }
    for (int i = 0; i < 4; i++)
        if (alone(&s, pre[i], 45 + i * 3, N_GEN, pref[i]))
            goto close;
    memset(o, 0, sizeof o);
    unsigned long long cow0 = s.en.kv.cow_copies;
    submit(q, pre[0], 45, N_GEN, &o[0]);
    while (o[0].n < 1 && kiln_sched_step(q, &e) > 0) /* until its prompt is in the cache */
        ;
    for (int i = 1; i < 4; i++)
        submit(q, pre[i], 45 + i * 3, N_GEN, &o[i]);
    run_all(q, "prefix");
    kiln_sched_stats_get(q, &st);
    for (int i = 0; i < 4; i++)
        compare_req(dev, "prefix", i, &o[i], pref[i], N_GEN);
    for (int i = 1; i < 4; i++)
        CHECK(o[i].n_cached == 40, "%s prefix request %d reused %d tokens, want 40", dev, i, o[i].n_cached);
    CHECK(st.prefix_tokens_reused >= 120 && s.en.kv.cow_copies > cow0 && st.kv_pages_used == 0,
          "%s prefix: %llu tokens reused, %llu copies on write, %d pages left", dev, st.prefix_tokens_reused,
          s.en.kv.cow_copies - cow0, st.kv_pages_used);
close:
    kiln_sched_close(q);
done:
    kiln_session_close(&s);
    if (batch_only)
        return;

    /* full: 8 pages of 16 tokens for 4 requests of 30 + 30 tokens */
    so.ctx = 128;
    if (kiln_session_open(&s, &so, &e)) {
        CHECK(0, "%s: %s", dev, e.msg);
        return;
    }
    int32_t fp[4][30], fref[4][30];
    for (int i = 0; i < 4; i++) {
        random_prompt(&rng, fp[i], 30, V);
        if (alone(&s, fp[i], 30, 30, fref[i]))
            goto done2;
    }
    CHECK_OK(kiln_sched_open(&q, &s, &qo, &e), &e);
    memset(o, 0, sizeof o);
    for (int i = 0; i < 4; i++)
        submit(q, fp[i], 30, 30, &o[i]);
    kiln_gen_opts big = {.n_predict = 100};
    kiln_sampling_default(&big.sampling);
    kiln_req_cbs cb = {.on_done = on_done, .user = &o[4]};
    int rc = kiln_sched_submit(q, fp[0], 30, &big, &cb, &e);
    CHECK(rc == -KILN_E_FULL && strstr(e.msg, "never fit"), "%s: 130 tokens in a cache of 128: %d %s", dev, rc,
          e.msg);
    int cancel = submit(q, fp[1], 20, 30, &o[5]);
    CHECK_OK(kiln_sched_cancel(q, cancel), &e);
    run_all(q, "full");
    kiln_sched_stats_get(q, &st);
    CHECK(st.preempted > 0 && st.kv_pages_used == 0, "%s full: %llu preempted, %d pages left", dev, st.preempted,
          st.kv_pages_used);
    for (int i = 0; i < 4; i++)
        compare_req(dev, "full", i, &o[i], fref[i], 30);
    CHECK(o[4].done == 0 && o[5].done == 1 && o[5].finish == KILN_STOP_CALLER && o[5].n == 0,
          "%s: refused request done %d times; cancelled one done %d times, finish %s, %d tokens", dev, o[4].done,
          o[5].done, kiln_stop_name(o[5].finish), o[5].n);
    kiln_sched_close(q);
done2:
    kiln_session_close(&s);
}

int main(int argc, char **argv)
{
    /* "smollm2 [backends]": the batch comparison on $KILN_SMOLLM2 */
    int real = argc > 1 && !strcmp(argv[1], "smollm2");
    if (real) {
        argc--;
        argv++;
        const char *m = getenv("KILN_SMOLLM2");
        if (!m || !m[0] || access(m, R_OK)) {
            if (test_backend_required("model")) {
                CHECK(0, "KILN_SMOLLM2 (%s) is required but missing: run scripts/fetch-model.sh", m ? m : "unset");
                return 1;
            }
            KILN_SKIP("KILN_SMOLLM2 not set: run scripts/fetch-model.sh");
        }
        setenv("BATCH_MODEL", m, 1);
    } else {
        test_kv_pages(KILN_KV_F32);
        test_kv_pages(KILN_KV_F16);
    }
    int kv_type = KILN_KV_F32;
    const char *kt = getenv("BATCH_KV_TYPE");
    if (kt && kt[0] && kiln_kv_type_parse(kt, &kv_type)) {
        CHECK(0, "BATCH_KV_TYPE=%s: f32 or f16", kt);
        return 1;
    }
    const char *model = getenv("BATCH_MODEL");
    char path[] = "/tmp/kiln-batch-XXXXXX";
    int tmp = !model || !model[0];
    if (tmp) {
        int fd = mkstemp(path);
        CHECK(fd >= 0, "mkstemp");
        close(fd);
        kiln_err e = {0};
        kiln_synth_opts so = {.preset = "tiny", .seed = 3};
        CHECK_OK(kiln_synth_write(path, &so, &e), &e);
        model = path;
    }
    static const char *const all[] = {"cpu", "opencl", "vulkan"};
    const char *const *devs = argc > 1 ? (const char *const *)argv + 1 : all;
    int n_devs = argc > 1 ? argc - 1 : 3, ran = 0;
    for (int i = 0; i < n_devs; i++) {
        if (!device_usable(devs[i]))
            continue;
        test_device(devs[i], model, real, kv_type);
        fprintf(stderr, "%s: done (kv %s)\n", devs[i], kiln_kv_type_name(kv_type));
        ran++;
    }
    if (tmp)
        unlink(path);
    if (!ran && !test_failures)
        KILN_SKIP("no device available");
    return test_failures ? 1 : 0;
}
