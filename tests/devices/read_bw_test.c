/* tests/devices/read_bw_test.c BACKEND - the read-bandwidth probe.
 *   - the probe program (kiln_read_bw_program) on BACKEND sums every 32-bit
 *     word of a random buffer exactly (mod 2^32, the host's sum), for every
 *     access pattern (grid-strided, runs of 1, 8 and a whole group of lanes),
 *     workgroups of 1, 32 and 256, grids of 7, 64 and 300 groups, lengths
 *     that are not multiples of the grid (ragged blocks and runs) and grids
 *     larger than the data (groups with nothing to read write 0); output
 *     poisoned before each run; a word changed after the upload changes the
 *     sum by the same amount (no stale result);
 *   - kiln_measure_read_bandwidth: a positive, finite figure stored in the
 *     fingerprint, and not above 20x the copy bandwidth (a probe that read
 *     nothing would be unboundedly fast; the sums above rule out skipping).
 * SKIP (77) when the backend is unavailable, unless $KILN_REQUIRE_BACKENDS
 * names it. */
#include <math.h>

#include "devices/device.h"
#include "tests/test.h"
#include "util/rng.h"

static uint32_t host_sum(const uint32_t *w, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += w[i];
    return s;
}

/* Runs the probe over n_vec vectors of buf; the sum of the per-group outputs. */
static int probe_sum(kiln_device *d, kiln_program *p, kiln_buffer *buf, kiln_buffer *out, uint32_t n_vec,
                     uint32_t groups, uint32_t *sum, kiln_err *e)
{
    uint32_t grid[3] = {groups, 1, 1};
    kiln_arg a[3] = {{.kind = KILN_ARG_BUF, .buf = buf}, {.kind = KILN_ARG_BUF, .buf = out},
                     {.kind = KILN_ARG_U32, .u32 = n_vec}};
    uint32_t *o = calloc(groups, sizeof *o);
    int rc = d->ops->fill(d, out, 0xcd, sizeof *o * groups, e); /* poisoned: every group must write */
    if (!rc)
        rc = d->ops->launch(d, p, grid, a, 3, NULL, e);
    if (!rc)
        rc = kiln_finish(d, e);
    if (!rc)
        rc = kiln_read(d, out, 0, o, sizeof *o * groups, e);
    *sum = rc ? 0 : host_sum(o, groups);
    free(o);
    return rc;
}

int main(int argc, char **argv)
{
    const char *bname = argc > 1 ? argv[1] : "cpu";
    kiln_backend_kind k;
    if (kiln_backend_parse(bname, &k))
        KILN_SKIP("unknown backend %s", bname);
    kiln_backend_status st;
    kiln_backend_probe(k, &st);
    if (!st.available) {
        if (test_backend_required(bname)) {
            CHECK(0, "%s required but unavailable: %s", bname, st.reason);
            return test_result();
        }
        KILN_SKIP("%s: %s", bname, st.reason);
    }
    kiln_err e = {0};
    kiln_device *d;
    if (kiln_device_open(k, 0, &d, &e)) {
        CHECK(0, "%s: open: %s", bname, e.msg);
        return test_result();
    }
    kiln_rng rng;
    kiln_rng_seed(&rng, 41);
    enum { MAXV = 100003 };
    uint32_t *w = malloc(sizeof *w * 4 * MAXV);
    for (size_t i = 0; i < 4 * (size_t)MAXV; i++)
        w[i] = (uint32_t)kiln_rng_u64(&rng);
    kiln_buffer *buf = kiln_alloc(d, sizeof *w * 4 * MAXV, &e), *out = kiln_alloc(d, 4 * 4096, &e);
    CHECK(buf && out, "%s: alloc: %s", bname, e.msg);
    CHECK_OK(kiln_write(d, buf, 0, w, sizeof *w * 4 * MAXV, &e), &e);

    /* patterns: grid-strided; runs per thread; runs per 8 lanes; one run per group */
    struct { int layout; uint32_t lanes; } pats[] = {{0, 1}, {1, 1}, {1, 8}, {1, 256}};
    uint32_t locals[] = {1, 32, 256};
    uint32_t n_vecs[] = {MAXV, 4097, 63, 1};
    uint32_t grids[] = {7, 64, 300};
    int runs = 0;
    for (int pi = 0; pi < (k == KILN_CPU ? 1 : 4); pi++)
        for (int li = 0; li < (k == KILN_CPU ? 1 : 3); li++) {
            int layout = pats[pi].layout;
            uint32_t local = locals[li], lanes = pats[pi].lanes < local ? pats[pi].lanes : local;
            if (d->fp.max_workgroup && local > d->fp.max_workgroup)
                continue;
            kiln_program_desc desc;
            kiln_define defs[2];
            CHECK_OK(kiln_read_bw_program(k, layout, lanes, local, &desc, defs, &e), &e);
            kiln_program *p = d->ops->build(d, &desc, &e);
            if (!p) {
                CHECK(0, "%s: layout %d lanes %u local %u: build: %s", bname, layout, lanes, local, e.msg);
                continue;
            }
            for (int ni = 0; ni < 4; ni++)
                for (int gi = 0; gi < 3; gi++) {
                    uint32_t n = n_vecs[ni], g = grids[gi], got = 0;
                    /* the measurement keeps loops under 16384 trips per thread:
                     * llvmpipe ends a shader loop after 65535 (silently) */
                    if (k != KILN_CPU && n / (g * local) > 16384)
                        continue;
                    if (probe_sum(d, p, buf, out, n, g, &got, &e)) {
                        CHECK(0, "%s: layout %d lanes %u, %u x %u over %u vectors: %s", bname, layout, lanes, g, local,
                              n, e.msg);
                        continue;
                    }
                    uint32_t want = host_sum(w, 4 * (size_t)n);
                    CHECK(got == want, "%s: layout %d lanes %u, %u groups x %u over %u vectors: sum 0x%08x, host "
                          "0x%08x", bname, layout, lanes, g, local, n, got, want);
                    runs++;
                }
            /* a changed word: the sum moves by exactly the change */
            uint32_t before = 0, after = 0, bump = 0x1234567u, idx = 4 * (MAXV / 2) + 3;
            CHECK_OK(probe_sum(d, p, buf, out, MAXV, 64, &before, &e), &e);
            uint32_t nw = w[idx] + bump;
            CHECK_OK(kiln_write(d, buf, sizeof *w * idx, &nw, 4, &e), &e);
            CHECK_OK(probe_sum(d, p, buf, out, MAXV, 64, &after, &e), &e);
            CHECK(after - before == bump, "%s: layout %d lanes %u local %u: a word +0x%x moved the sum by 0x%x", bname,
                  layout, lanes, local, bump, after - before);
            CHECK_OK(kiln_write(d, buf, sizeof *w * idx, &w[idx], 4, &e), &e);
            d->ops->release(d, p);
        }
    printf("%s: %d probe runs summed exactly\n", bname, runs);
    kiln_free(d, buf);
    kiln_free(d, out);
    free(w);

    double copy = 0, rd = 0;
    CHECK_OK(kiln_measure_copy_bandwidth(d, &copy, &e), &e);
    char how[128] = "";
    CHECK_OK(kiln_measure_read_bandwidth(d, &rd, how, sizeof how, &e), &e);
    CHECK(isfinite(rd) && rd > 0 && rd == d->fp.read_gbps, "%s: read %.3f GB/s, fingerprint %.3f", bname, rd,
          d->fp.read_gbps);
    CHECK(copy <= 0 || rd < 20 * copy, "%s: read %.2f GB/s against copy %.2f GB/s", bname, rd, copy);
    CHECK(how[0] != 0, "%s: no description of the probe", bname);
    printf("%s: copy %.2f GB/s, read %.2f GB/s (%s)\n", bname, copy, rd, how);
    kiln_device_close(d);
    return test_result();
}
