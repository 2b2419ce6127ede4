/* tests/kernels/gemv_q8_test.c - gemv_int4 with int8 activations (act 1) and
 * interleaved weight layouts (ilv) on the cpu, against the reference that
 * rounds x through the same q8 contract.
 *
 * 1. The activation packer: on random x of awkward lengths, every SIMD path
 *    the host has writes the same bytes as the scalar path, and those bytes
 *    are the contract (kiln_act_q8_block: d = amax/127, q = rint(x*127/amax)).
 * 2. The layout: kiln_ilv_pack puts word w of row r and the scale of group g
 *    of row r where quant_ilv.h says, with zero padding rows.
 * 3. Every act-1 config (each ilv x each rows value valid for it) on odd and
 *    real shapes in every weight format passes on the cpu device; meson runs
 *    this under KILN_CPU_ISA=avx512 (no VNNI), avx-vnni, avx2 and scalar too,
 *    so each path is checked where the host has it.
 * 4. It can fail: a planted wrong index (KILN_BUILD_TEST_BREAK), and an
 *    interleaved config run over row-major data, are both caught.
 * 4b. gemm_int4 act 1 over every layout (ilv 1, 4, 8 packed into 16-row
 *    panels for the gemm, 16 as is) x rows x tokens per pass, on odd token
 *    counts, M not a multiple of 16 and group 32 and 128 in every weight
 *    format: the gemm's own paths (the 16-row group-32 int4 tile, the panel
 *    packer) against the same reference.
 * 4c. Batch invariance, bit for bit: every token's y from the gemv (one
 *    token) equals its row of the gemm's y (N tokens, TN a pass, narrow
 *    layouts packed into panels), on every layout, format and group, K
 *    over two or three of the kernels' K chunks; and every ISA path the host has
 *    gives the scalar path's bits (the per-row contract of q8mm_cpu.c).
 *    A request's greedy tokens then cannot depend on its batch.
 * 5. The contract costs accuracy only through x's rounding: the act-1
 *    reference differs from the exact f32 one by more than the f32 budget at
 *    its worst row (so the two references are not confused) and by less than
 *    2% of rms(y) in rms (on these random weights with outlier groups the
 *    worst row moves ~4%; kiln perplexity measures what it costs a model). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu_isa.h"
#include "kernels/act_q8.h"
#include "kernels/gemv_int4/gemv_int4.h"
#include "kernels/gemv_int4/q8mm_cpu.h"
#include "kernels/quant_ilv.h"
#include "kernels/runner.h"
#include "tests/test.h"
#include "util/rng.h"

static void test_pack(void)
{
    static const int64_t lens[] = {1, 5, 31, 32, 33, 100, 576, 1000, 4096};
    unsigned hw = kiln_cpu_isa_detect();
    unsigned paths[] = {0, KILN_ISA_AVX2, KILN_ISA_AVX2 | KILN_ISA_AVX512, KILN_ISA_NEON};
    kiln_rng r;
    kiln_rng_seed(&r, 11);
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        int64_t k = lens[li];
        float *x = malloc(sizeof *x * (size_t)k);
        size_t nb = kiln_xq_bytes(k);
        uint8_t *ref = malloc(nb), *got = malloc(nb);
        for (int64_t i = 0; i < k; i++)
            x[i] = kiln_rng_normal(&r) * (i % 7 == 0 ? 10.0f : 1.0f);
        for (int fmt = 0; fmt < 2; fmt++) {
            memset(ref, 0xAB, nb);
            kiln_act_q8_pack(x, k, fmt, 0, ref);
            for (size_t p = 1; p < sizeof paths / sizeof paths[0]; p++) {
                if ((paths[p] & hw) != paths[p])
                    continue;
                memset(got, 0xCD, nb);
                kiln_act_q8_pack(x, k, fmt, paths[p], got);
                CHECK(!memcmp(ref, got, nb), "pack k=%lld fmt %d: path %s differs from scalar", (long long)k, fmt,
                      kiln_cpu_isa_name(paths[p]));
            }
            /* the bytes are the contract */
            int64_t nb4 = kiln_xq_nb4(k);
            const int8_t *xe = (const int8_t *)ref, *xo = xe + nb4 * 16;
            const float *d = (const float *)(const void *)(ref + nb4 * 32), *s = d + nb4;
            for (int64_t b = 0; b < nb4; b++) {
                int8_t q[32];
                float db = 0;
                int n = b * 32 < k ? (k - b * 32 < 32 ? (int)(k - b * 32) : 32) : 0;
                kiln_act_q8_block(x + b * 32, n, q, &db);
                int sum = 0, bad = 0;
                for (int i = 0; i < 32; i++) {
                    sum += q[i];
                    int8_t at = fmt ? xe[b * 32 + i] : i % 2 ? xo[b * 16 + i / 2] : xe[b * 16 + i / 2];
                    bad += at != q[i];
                }
                CHECK(!bad && d[b] == db && s[b] == db * (float)sum, "pack k=%lld fmt %d block %lld: not the contract",
                      (long long)k, fmt, (long long)b);
            }
            /* q and d are the rounding: |q*d - x| <= d/2 */
            for (int64_t i = 0; i < k && fmt == 1; i++) {
                float dq = (float)xe[i] * d[i / 32];
                CHECK(fabsf(dq - x[i]) <= d[i / 32] * 0.5001f, "x[%lld] = %g rounds to %g", (long long)i, x[i], dq);
            }
        }
        free(x);
        free(ref);
        free(got);
    }
}

static void test_layout(void)
{
    kiln_err e = {0};
    kiln_qmatrix q;
    CHECK_OK(kiln_qmatrix_alloc(&q, KILN_Q4_1, 32, 13, 100, &e), &e);
    kiln_rng r;
    kiln_rng_seed(&r, 3);
    kiln_qmatrix_random(&q, &r);
    static const int ilvs[] = {1, 4, 8, 16};
    for (int i = 0; i < 4; i++) {
        kiln_ilv_arrays a;
        int R = ilvs[i];
        CHECK_OK(kiln_ilv_pack(&q, R, &a, &e), &e);
        CHECK(a.rows_pad == (13 + R - 1) / R * R, "ilv %d: %lld padded rows", R, (long long)a.rows_pad);
        int bad = 0;
        for (int64_t row = 0; row < a.rows_pad; row++) {
            for (int64_t w = 0; w < q.words_per_row; w++) {
                uint32_t want = row < q.rows ? q.qs[row * q.words_per_row + w] : 0;
                bad += a.qs[((row / R) * q.words_per_row + w) * R + row % R] != want;
            }
            for (int64_t g = 0; g < q.groups_per_row; g++) {
                size_t at = (size_t)(((row / R) * q.groups_per_row + g) * R + row % R);
                uint16_t ws = row < q.rows ? q.scales[row * q.groups_per_row + g] : 0;
                uint16_t wm = row < q.rows ? q.mins[row * q.groups_per_row + g] : 0;
                bad += a.scales[at] != ws || a.mins[at] != wm;
            }
        }
        CHECK(!bad, "ilv %d: %d words/scales out of place", R, bad);
        kiln_ilv_free(&a);
    }
    kiln_ilv_arrays a;
    CHECK(kiln_ilv_pack(&q, 3, &a, &e) == KILN_E_INVALID, "ilv 3 accepted");
    kiln_qmatrix_free(&q);
}

typedef struct run_result {
    int rc, ok;
    double err;
    char detail[256];
} run_result;

static run_result run(kiln_device *d, kiln_progcache *pc, const kiln_kernel *k, const kiln_shape *s,
                      const kiln_config *c, int cls, unsigned flags)
{
    run_result out = {0};
    kiln_err e = {0};
    kiln_problem p;
    kiln_problem_dev pd;
    kiln_variant v;
    kiln_verify_result vr;
    if ((out.rc = kiln_problem_make(k, &p, s, cls, 77, &e))) {
        snprintf(out.detail, sizeof out.detail, "problem: %s", e.msg);
        return out;
    }
    if (!(out.rc = kiln_problem_upload(d, &p, &pd, &e))) {
        if (!(out.rc = kiln_variant_build(&v, d, k, s, c, flags, pc, &e))) {
            if (!(out.rc = kiln_verify(&v, &p, &pd, &vr, &e))) {
                out.ok = vr.ok;
                out.err = vr.err;
                snprintf(out.detail, sizeof out.detail, "%s", vr.detail);
            }
            kiln_variant_release(&v);
        }
        kiln_problem_dev_free(&pd);
    }
    if (out.rc)
        snprintf(out.detail, sizeof out.detail, "%s", e.msg);
    kiln_problem_free(&p);
    return out;
}

static void test_configs(kiln_device *d)
{
    const kiln_kernel *k = kiln_kernel_find("gemv_int4");
    kiln_progcache *pc = kiln_progcache_new(d);
    static const kiln_shape shapes[] = {
        {.m = 37, .k = 200, .quant = KILN_Q4_0, .group = 32, .act = KILN_ACT_Q8},
        {.m = 50, .k = 136, .quant = KILN_Q4_1, .group = 128, .act = KILN_ACT_Q8},
        {.m = 33, .k = 100, .quant = KILN_Q8_0, .group = 32, .act = KILN_ACT_Q8},
        {.m = 129, .k = 1000, .quant = KILN_Q8_0, .group = 128, .act = KILN_ACT_Q8},
        {.m = 61, .k = 520, .quant = KILN_Q4F16_1, .group = 128, .act = KILN_ACT_Q8},
        {.m = 576, .k = 576, .quant = KILN_Q4_1, .group = 32, .act = KILN_ACT_Q8},
        {.m = 1536, .k = 576, .quant = KILN_Q8_0, .group = 32, .act = KILN_ACT_Q8},
        {.m = 256, .k = 4096, .quant = KILN_Q4F16_1, .group = 32, .act = KILN_ACT_Q8},
    };
    static const int ilvs[] = {1, 4, 8, 16}, rows[] = {1, 2, 4, 8, 16, 32};
    int n_run = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int ii = 0; ii < 4; ii++)
            for (int ri = 0; ri < 6; ri++) {
                if (rows[ri] % ilvs[ii])
                    continue;
                kiln_config c;
                kiln_config_default(k, &c);
                kiln_config_set(k, &c, "act", 1);
                kiln_config_set(k, &c, "ilv", ilvs[ii]);
                kiln_config_set(k, &c, "rows", rows[ri]);
                int cls = kiln_data_class(k, &shapes[si], &c);
                run_result r = run(d, pc, k, &shapes[si], &c, cls, 0);
                CHECK(!r.rc && r.ok, "m%lld k%lld %s g%d ilv %d rows %d: rc %d err %g: %s", (long long)shapes[si].m,
                      (long long)shapes[si].k, kiln_quant_name(shapes[si].quant), shapes[si].group, ilvs[ii],
                      rows[ri], r.rc, r.err, r.detail);
                n_run++;
            }
    CHECK(n_run == 8 * 15, "%d configs run", n_run);

    /* it can fail */
    kiln_shape s = shapes[5];
    kiln_config c;
    kiln_config_default(k, &c);
    kiln_config_set(k, &c, "act", 1);
    kiln_config_set(k, &c, "ilv", 4);
    kiln_config_set(k, &c, "rows", 4);
    run_result r = run(d, pc, k, &s, &c, kiln_data_class(k, &s, &c), KILN_BUILD_TEST_BREAK);
    CHECK(!r.rc && !r.ok, "planted bug not caught (err %g)", r.err);
    r = run(d, pc, k, &s, &c, kiln_data_class(k, &s, &(kiln_config){0}) /* row-major act-0 data */, 0);
    CHECK(!r.rc && !r.ok, "ilv 4 over row-major data not caught (err %g)", r.err);

    /* what x's rounding costs, against the f32 reference */
    kiln_config_set(k, &c, "ilv", 1);
    kiln_config_set(k, &c, "rows", 1);
    kiln_problem exact;
    kiln_err e = {0};
    CHECK_OK(kiln_problem_make(k, &exact, &s, 0, 77, &e), &e);
    kiln_problem q8;
    CHECK_OK(kiln_problem_make(k, &q8, &s, kiln_data_class(k, &s, &c), 77, &e), &e);
    const float *ye = exact.bufs[4].expect, *yq = q8.bufs[4].expect;
    double ss = 0, sd = 0, worst = 0;
    for (int64_t i = 0; i < s.m; i++) {
        double diff = (double)ye[i] - yq[i];
        ss += (double)ye[i] * ye[i];
        sd += diff * diff;
        worst = fmax(worst, fabs(diff));
    }
    double rms = sqrt(ss / (double)s.m), rel_rms = sqrt(sd / (double)s.m) / rms, rel_max = worst / rms;
    CHECK(rel_max > 2e-4 && rel_rms < 0.02, "x rounding moved y by %g of rms(y) (rms of the change %g)", rel_max,
          rel_rms);
    kiln_problem_free(&exact);
    kiln_problem_free(&q8);
    kiln_progcache_free(pc);
}

static void test_gemm_configs(kiln_device *d)
{
    const kiln_kernel *k = kiln_kernel_find("gemm_int4");
    kiln_progcache *pc = kiln_progcache_new(d);
    static const kiln_shape base[] = {
        {.m = 45, .k = 200, .n = 13, .quant = KILN_Q4_0, .group = 32, .act = KILN_ACT_Q8},
        {.m = 50, .k = 136, .n = 7, .quant = KILN_Q4_1, .group = 128, .act = KILN_ACT_Q8},
        {.m = 37, .k = 520, .n = 9, .quant = KILN_Q4F16_1, .group = 32, .act = KILN_ACT_Q8},
        {.m = 72, .k = 1024, .n = 11, .quant = KILN_Q4_1, .group = 32, .act = KILN_ACT_Q8},
        {.m = 33, .k = 100, .n = 5, .quant = KILN_Q8_0, .group = 32, .act = KILN_ACT_Q8},
    };
    static const int ilvs[] = {1, 4, 8, 16}, rows[] = {1, 2, 4, 8, 16, 32}, tokens[] = {1, 2, 4, 8};
    int n_run = 0;
    for (size_t si = 0; si < sizeof base / sizeof base[0]; si++)
        for (int ii = 0; ii < 4; ii++) {
            kiln_shape s = base[si];
            s.ilv = ilvs[ii];
            for (int ri = 0; ri < 6; ri++)
                for (int ti = 0; ti < 4; ti++) {
                    if (rows[ri] % ilvs[ii])
                        continue;
                    kiln_config c;
                    kiln_config_default(k, &c);
                    kiln_config_set(k, &c, "act", 1);
                    kiln_config_set(k, &c, "rows", rows[ri]);
                    kiln_config_set(k, &c, "tokens", tokens[ti]);
                    char why[256] = "";
                    kiln_fingerprint fp = {.backend = KILN_CPU};
                    CHECK(k->config_valid(&s, &c, &fp, why, sizeof why), "gemm ilv %d rows %d tokens %d: %s",
                          ilvs[ii], rows[ri], tokens[ti], why);
                    run_result r = run(d, pc, k, &s, &c, kiln_data_class(k, &s, &c), 0);
                    CHECK(!r.rc && r.ok, "gemm m%lld k%lld n%lld %s g%d ilv %d rows %d tokens %d: rc %d err %g: %s",
                          (long long)s.m, (long long)s.k, (long long)s.n, kiln_quant_name(s.quant), s.group,
                          ilvs[ii], rows[ri], tokens[ti], r.rc, r.err, r.detail);
                    n_run++;
                }
        }
    CHECK(n_run == 5 * 15 * 4, "%d gemm configs run", n_run);
    kiln_progcache_free(pc);
}

/* One call of a q8mm cpu entry over all of its rows (as one worker's chunk). */
static void q8mm_call(int gemm, unsigned isa, const kiln_ilv_arrays *w, const void *xq, float *y, uint32_t M,
                      uint32_t K, uint32_t wpr, uint32_t gpr, uint32_t N, const kiln_shape *s, int ilv, int tn)
{
    int rows = ilv > 4 ? ilv : 4;
    kiln_define defs[] = {{"QUANT", s->quant}, {"GROUP", s->group}, {"ROWS", rows}, {"ILV", ilv}, {"TN", tn}};
    kiln_cpu_launch l = {.defines = defs, .n_defines = 5, .isa = isa, .n_args = 10};
    l.ptr[0] = w->qs;
    l.ptr[1] = w->scales;
    l.ptr[2] = w->mins ? (void *)w->mins : (void *)w->scales;
    l.ptr[3] = (void *)xq;
    l.ptr[4] = y;
    l.arg[5].u32 = M;
    l.arg[6].u32 = K;
    l.arg[7].u32 = wpr;
    l.arg[8].u32 = gpr;
    l.arg[9].u32 = N;
    uint32_t n_wg = (uint32_t)(kiln_ilv_rows(M, ilv) + rows - 1) / (uint32_t)rows;
    if (gemm)
        kiln_gemm_q8_cpu(&l, 0, n_wg);
    else
        kiln_gemv_q8_cpu(&l, 0, n_wg);
}

static void test_batch_invariance(void)
{
    static const kiln_shape shapes[] = {
        /* K past one K chunk (Q8_KC = 32 blocks), M not a multiple of 16; small, as the aarch64 CI
         * runs this under qemu at three ISA levels */
        {.m = 21, .k = 1100, .quant = KILN_Q4_0, .group = 32},
        {.m = 18, .k = 1060, .quant = KILN_Q4_1, .group = 32},
        {.m = 19, .k = 1152, .quant = KILN_Q4F16_1, .group = 128},
        {.m = 17, .k = 1090, .quant = KILN_Q8_0, .group = 32},
        {.m = 20, .k = 2100, .quant = KILN_Q4_1, .group = 128},
    };
    static const int ilvs[] = {1, 4, 8, 16};
    const unsigned hw = kiln_cpu_isa_detect();
    const unsigned paths[] = {0,
                              KILN_ISA_AVX2,
                              KILN_ISA_AVX2 | KILN_ISA_AVX_VNNI,
                              KILN_ISA_AVX2 | KILN_ISA_AVX512,
                              KILN_ISA_AVX2 | KILN_ISA_AVX512 | KILN_ISA_AVX512_VNNI,
                              KILN_ISA_NEON,
                              KILN_ISA_NEON | KILN_ISA_DOTPROD,
                              KILN_ISA_NEON | KILN_ISA_DOTPROD | KILN_ISA_I8MM};
    const uint32_t N = 6;
    kiln_rng r;
    kiln_rng_seed(&r, 4242);
    int n_cmp = 0, n_paths = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const kiln_shape *s = &shapes[si];
        kiln_qmatrix q;
        kiln_err e = {0};
        CHECK_OK(kiln_qmatrix_alloc(&q, s->quant, s->group, s->m, s->k, &e), &e);
        kiln_qmatrix_random(&q, &r);
        uint32_t M = (uint32_t)s->m, K = (uint32_t)s->k;
        size_t xb = kiln_xq_bytes(K);
        float *x = malloc(sizeof *x * K * N), *ref = malloc(sizeof *ref * M * N);
        float *yg = malloc(sizeof *yg * M * N), *yv = malloc(sizeof *yv * M * N);
        uint8_t *xq = malloc(xb * N);
        for (size_t i = 0; i < (size_t)K * N; i++)
            x[i] = kiln_rng_normal(&r) * (i % 13 == 0 ? 6.0f : 1.0f);
        int fmt = s->quant == KILN_Q8_0 ? KILN_XQ_Q8 : KILN_XQ_INT4;
        for (uint32_t t = 0; t < N; t++)
            kiln_act_q8_pack(x + (size_t)t * K, K, fmt, 0, xq + t * xb);
        for (int ii = 0; ii < 4; ii++) {
            kiln_ilv_arrays w;
            CHECK_OK(kiln_ilv_pack(&q, ilvs[ii], &w, &e), &e);
            for (size_t pi = 0; pi < sizeof paths / sizeof paths[0]; pi++) {
                if ((paths[pi] & hw) != paths[pi])
                    continue;
                if (si == 0 && ii == 0)
                    n_paths++;
                memset(yg, 0xA5, sizeof *yg * M * N);
                q8mm_call(1, paths[pi], &w, xq, yg, M, K, (uint32_t)q.words_per_row, (uint32_t)q.groups_per_row, N,
                          s, ilvs[ii], pi % 2 ? 4 : 8);
                for (uint32_t t = 0; t < N; t++)
                    q8mm_call(0, paths[pi], &w, xq + t * xb, yv + (size_t)t * M, M, K, (uint32_t)q.words_per_row,
                              (uint32_t)q.groups_per_row, 1, s, ilvs[ii], 1);
                if (pi == 0)
                    memcpy(ref, yv, sizeof *ref * M * N);
                for (uint32_t t = 0; t < N; t++)
                    for (uint32_t i = 0; i < M; i++) {
                        size_t o = (size_t)t * M + i;
                        CHECK(!memcmp(&yg[o], &yv[o], sizeof *yg), "%s g%d ilv %d isa 0x%x: token %u row %u: gemm %.9g, gemv %.9g",
                              kiln_quant_name(s->quant), s->group, ilvs[ii], paths[pi], t, i, (double)yg[o], (double)yv[o]);
                        CHECK(!memcmp(&yv[o], &ref[o], sizeof *yv), "%s g%d ilv %d isa 0x%x: token %u row %u: %.9g, scalar path %.9g",
                              kiln_quant_name(s->quant), s->group, ilvs[ii], paths[pi], t, i, (double)yv[o], (double)ref[o]);
                        n_cmp++;
                    }
            }
            kiln_ilv_free(&w);
        }
        free(x);
        free(ref);
        free(yg);
        free(yv);
        free(xq);
        kiln_qmatrix_free(&q);
    }
    CHECK(n_paths >= 2 && n_cmp > 0, "%d isa paths, %d rows compared", n_paths, n_cmp);
    printf("batch invariance: %d isa paths, %d token rows bit-identical (gemv = gemm = scalar path)\n", n_paths, n_cmp);
}

int main(void)
{
    test_pack();
    test_layout();
    test_batch_invariance();
    kiln_device *d;
    kiln_err e = {0};
    if (kiln_device_select("cpu", &d, &e)) {
        CHECK(0, "cpu device: %s", e.msg);
        return test_result();
    }
    test_configs(d);
    test_gemm_configs(d);
    kiln_device_close(d);
    return test_result();
}
