/* tests/engine/session_test.c - the engine session API and the profile.
 *
 * Profile (host only, exact arithmetic on given times): ops in an open
 * phase are summed per label, the gaps between ops of a chunk count as host
 * work and those across a phase change do not, a phase's wall is the time
 * it was open, ops outside any phase are dropped, labels beyond the table's
 * size share its last row, and the printed table names every label and
 * the wall.
 *
 * Session (a tiny synthetic model on the cpu):
 *   - a --db path that does not exist is refused and named; winners given
 *     as JSON open an in-memory database; a thread count on the cpu works;
 *   - greedy tokens are the same with 1 thread, all threads, and profiling
 *     (the profile then holds one prefill chunk per chunk-sized piece of the
 *     prompt and one decode step per generated token after the first);
 *   - kiln_session_prefill appends to the sequence as kiln_forward does and
 *     counts as prefill in the profile;
 *   - the chat prompt gets the template's own system message only when the
 *     conversation brings none;
 *   - timings: load time measured, tok/s from the generation's stats. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/session.h"
#include "engine/synth.h"
#include "tests/test.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

static const kiln_profile_row *find_row(const kiln_profile_phase_data *d, const char *label)
{
    for (int i = 0; i < d->n_rows; i++)
        if (!strcmp(d->rows[i].label, label))
            return &d->rows[i];
    return NULL;
}

static void test_profile(void)
{
    kiln_profile p;
    kiln_profile_reset(&p);
    kiln_profile_op(&p, "lost", 1.0, 2.0, -1, 0); /* no phase open: dropped */
    kiln_profile_phase(&p, KILN_PHASE_PREFILL, 10.0);
    kiln_profile_chunk(&p, 8, 10.1);
    kiln_profile_op(&p, "attn_q", 10.2, 10.5, 250e6, 1e9); /* gap 0.1 after the chunk's start */
    kiln_profile_op(&p, "rmsnorm", 10.6, 10.7, -1, 0);     /* gap 0.1 */
    kiln_profile_op(&p, "attn_q", 10.75, 10.8, 40e6, 1e9); /* gap 0.05 */
    kiln_profile_phase(&p, KILN_PHASE_DECODE, 11.0);       /* prefill open 1.0 s */
    kiln_profile_op(&p, "argmax", 11.05, 11.1, 1e6, 4);    /* no chunk yet: no gap counted */
    kiln_profile_chunk(&p, 1, 11.2);
    kiln_profile_op(&p, "attn_q", 11.3, 11.4, 90e6, 1e9); /* gap 0.1 */
    kiln_profile_phase(&p, KILN_PHASE_DECODE, 11.5);      /* a new step: closes 0.5 s */
    kiln_profile_op(&p, "argmax", 11.6, 11.65, 1e6, 4);   /* the gap from 11.4 does not count */
    kiln_profile_phase(&p, KILN_PHASE_NONE, 11.7);
    kiln_profile_op(&p, "lost", 12.0, 13.0, -1, 0);
    const kiln_profile_phase_data *pf = &p.ph[KILN_PHASE_PREFILL], *dc = &p.ph[KILN_PHASE_DECODE];
    CHECK(NEAR(pf->wall_s, 1.0) && NEAR(dc->wall_s, 0.7), "walls %g %g, want 1 and 0.7", pf->wall_s, dc->wall_s);
    CHECK(pf->chunks == 1 && pf->tokens == 8 && dc->chunks == 1 && dc->tokens == 1, "chunks %ld/%ld tokens %ld/%ld",
          pf->chunks, dc->chunks, pf->tokens, dc->tokens);
    CHECK(NEAR(pf->gap_s, 0.25) && NEAR(dc->gap_s, 0.1), "gaps %g %g, want 0.25 and 0.1", pf->gap_s, dc->gap_s);
    const kiln_profile_row *q = find_row(pf, "attn_q"), *n = find_row(pf, "rmsnorm"), *a = find_row(dc, "argmax");
    CHECK(q && q->calls == 2 && NEAR(q->host_s, 0.35) && NEAR(q->dev_s, 0.29) && q->dev_calls == 2 && q->bytes == 2e9,
          "prefill attn_q row wrong");
    CHECK(n && n->calls == 1 && n->dev_calls == 0 && NEAR(n->host_s, 0.1), "prefill rmsnorm row wrong");
    CHECK(a && a->calls == 2 && NEAR(a->host_s, 0.1), "decode argmax row wrong");
    CHECK(!find_row(pf, "lost") && !find_row(dc, "lost") && pf->n_rows == 2 && dc->n_rows == 2,
          "ops outside a phase were counted");

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    kiln_profile_print(&p, "test device", f);
    fclose(f);
    CHECK(buf && strstr(buf, "prefill: 8 token(s) in 1 chunk(s)") && strstr(buf, "decode: 1 token(s) in 1 step(s)") &&
              strstr(buf, "attn_q") && strstr(buf, "rmsnorm") && strstr(buf, "argmax") &&
              strstr(buf, "host between ops") && strstr(buf, "other (host, sampling, sync)") &&
              strstr(buf, "test device"),
          "table:\n%s", buf ? buf : "(none)");
    /* prefill: attn_q moved 2e9 bytes in 0.29 s of device time */
    CHECK(buf && strstr(buf, "6.9"), "attn_q's GB/s (2e9 B / 0.29 s = 6.9) missing:\n%s", buf);
    free(buf);

    kiln_profile_reset(&p);
    kiln_profile_phase(&p, KILN_PHASE_DECODE, 0);
    char names[KILN_PROFILE_MAX_LABELS + 3][16];
    for (int i = 0; i < KILN_PROFILE_MAX_LABELS + 3; i++) {
        snprintf(names[i], sizeof names[i], "op%d", i);
        kiln_profile_op(&p, names[i], i, i + 0.5, -1, 0);
    }
    const kiln_profile_phase_data *d = &p.ph[KILN_PHASE_DECODE];
    const kiln_profile_row *last = &d->rows[KILN_PROFILE_MAX_LABELS - 1];
    CHECK(d->n_rows == KILN_PROFILE_MAX_LABELS && !strcmp(last->label, "(other labels)") && last->calls == 4,
          "overflow: %d rows, last '%s' with %ld calls", d->n_rows, last->label, last->calls);
}

/* Greedy tokens of the prompt under opts; the profile's counts when it has one. */
static int generate(const kiln_session_opts *o, const int32_t *prompt, int n_prompt, int32_t *out, int n_out,
                    kiln_profile *prof_copy)
{
    kiln_err e = {0};
    kiln_session s;
    if (kiln_session_open(&s, o, &e)) {
        CHECK(0, "open: %s", e.msg);
        return -1;
    }
    kiln_kv_seq seq;
    kiln_gen_stats st = {0};
    kiln_gen_opts go = {.n_predict = n_out, .ignore_eos = 1};
    kiln_sampling_default(&go.sampling);
    int rc = kiln_session_seq(&s, &seq, &e);
    CHECK(rc == 0, "seq: %s", e.msg);
    if (!rc) {
        rc = kiln_session_generate(&s, &seq, prompt, n_prompt, &go, &st, out, n_out, &e);
        CHECK(rc == 0 && st.n_gen == n_out, "generate: %d tokens, %s", st.n_gen, e.msg);
        kiln_timings t;
        kiln_session_timings(&s, &st, &t);
        CHECK(t.load_ms > 0 && t.n_prompt == n_prompt && t.n_decode == n_out - 1 && t.decode_tok_s > 0 &&
                  t.prefill_tok_s > 0 && t.ttft_ms > 0,
              "timings: load %g ms, %d prompt, %d decode, %g/%g tok/s, ttft %g", t.load_ms, t.n_prompt, t.n_decode,
              t.prefill_tok_s, t.decode_tok_s, t.ttft_ms);
        kiln_kv_seq_free(&seq);
    }
    if (prof_copy && s.prof)
        *prof_copy = *s.prof;
    kiln_gen_stats_free(&st);
    kiln_session_close(&s);
    return rc;
}

static void test_session(const char *path)
{
    kiln_err e = {0};
    kiln_session s;
    kiln_session_opts o = {.model = path, .device = "cpu", .db_path = "/nonexistent/kiln.db"};
    CHECK(kiln_session_open(&s, &o, &e) == KILN_E_IO && strstr(e.msg, "/nonexistent/kiln.db"),
          "a missing --db: %d %s", e.code, e.msg);

    /* winners given as JSON (an empty export): an in-memory database */
    kiln_db *mem;
    CHECK_OK(kiln_db_open(&mem, ":memory:", &e), &e);
    char *json = kiln_db_export_string(mem, &e);
    kiln_db_close(mem);
    CHECK(json, "export: %s", e.msg);
    o = (kiln_session_opts){.model = path, .db_json = json, .chunk = 8};
    CHECK_OK(kiln_session_open(&s, &o, &e), &e);
    CHECK(s.db && s.own_db && s.dev && s.dev->backend == KILN_CPU && s.en.chunk == 8, "session state");

    /* the chat prompt and the template's own system message */
    kiln_chat_msg user = {"user", "hi"}, both[2] = {{"system", "be brief"}, {"user", "hi"}};
    char *t1 = NULL, *t2 = NULL, *t3 = NULL;
    size_t l1, l2, l3;
    CHECK_OK(kiln_session_chat_prompt(&s, &user, 1, &t1, &l1, &e), &e);
    free(s.default_system);
    s.default_system = strdup("the template's own");
    CHECK_OK(kiln_session_chat_prompt(&s, &user, 1, &t2, &l2, &e), &e);
    CHECK_OK(kiln_session_chat_prompt(&s, both, 2, &t3, &l3, &e), &e);
    CHECK(t1 && !strstr(t1, "the template's own") && strstr(t1, "hi"), "no default system: %s", t1);
    CHECK(t2 && strstr(t2, "the template's own") && strstr(t2, "hi") && strstr(t2, "hi") > strstr(t2, "own"),
          "default system not put first: %s", t2);
    CHECK(t3 && !strstr(t3, "the template's own") && strstr(t3, "be brief"), "a given system message: %s", t3);
    free(t1);
    free(t2);
    free(t3);

    /* tokenize, then prefill appends to the sequence */
    int32_t *ids = NULL;
    int n = 0;
    const char *text = "The quick brown fox jumps over the lazy dog and keeps on running far away.";
    CHECK_OK(kiln_session_tokenize(&s, text, strlen(text), 0, 0, &ids, &n, &e), &e);
    CHECK(n > 12, "%d tokens", n);
    kiln_kv_seq seq;
    CHECK_OK(kiln_session_seq(&s, &seq, &e), &e);
    CHECK_OK(kiln_session_prefill(&s, &seq, ids, 5, &e), &e);
    CHECK_OK(kiln_session_prefill(&s, &seq, ids + 5, n - 5, &e), &e);
    CHECK(seq.n_tokens == n, "sequence holds %d of %d tokens", seq.n_tokens, n);
    kiln_kv_seq_free(&seq);
    int tuned = -1, deflt = -1;
    kiln_session_configs(&s, &tuned, &deflt);
    CHECK(tuned == 0 && deflt > 5, "an empty database: %d tuned, %d default classes", tuned, deflt);
    kiln_session_close(&s);

    /* the same greedy tokens with 1 thread, all threads, and profiling */
    enum { N_OUT = 10 };
    int32_t a[N_OUT], b[N_OUT], c[N_OUT];
    kiln_profile prof;
    memset(&prof, 0, sizeof prof);
    kiln_session_opts base = {.model = path, .db_json = json, .chunk = 8};
    kiln_session_opts one = base, profiled = base;
    one.threads = 1;
    profiled.profile = 1;
    if (generate(&base, ids, n, a, N_OUT, NULL) || generate(&one, ids, n, b, N_OUT, NULL) ||
        generate(&profiled, ids, n, c, N_OUT, &prof))
        goto out;
    CHECK(!memcmp(a, b, sizeof a), "1 thread changed the greedy tokens");
    CHECK(!memcmp(a, c, sizeof a), "profiling changed the greedy tokens");
    const kiln_profile_phase_data *pf = &prof.ph[KILN_PHASE_PREFILL], *dc = &prof.ph[KILN_PHASE_DECODE];
    CHECK(pf->tokens == n && pf->chunks == (n + 7) / 8, "prefill: %ld tokens in %ld chunks, want %d in %d",
          pf->tokens, pf->chunks, n, (n + 7) / 8);
    CHECK(dc->tokens == N_OUT - 1 && dc->chunks == N_OUT - 1, "decode: %ld steps, want %d", dc->chunks, N_OUT - 1);
    double ops = 0;
    for (int i = 0; i < dc->n_rows; i++)
        ops += dc->rows[i].host_s;
    CHECK(ops > 0 && ops + dc->gap_s <= dc->wall_s, "decode: ops %g + gaps %g > wall %g", ops, dc->gap_s, dc->wall_s);
    CHECK(prof.phase == KILN_PHASE_NONE, "a phase left open after generating");
out:
    free(ids);
    free(json);
}

int main(void)
{
    setenv("KILN_DB", "/nonexistent/kiln-test.db", 1); /* only the databases the tests give */
    test_profile();
    char path[] = "/tmp/kiln-session-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0)
        return test_result();
    close(fd);
    kiln_err e = {0};
    kiln_synth_opts so = {.preset = "tiny", .seed = 7};
    CHECK_OK(kiln_synth_write(path, &so, &e), &e);
    if (!test_failures)
        test_session(path);
    unlink(path);
    return test_result();
}
