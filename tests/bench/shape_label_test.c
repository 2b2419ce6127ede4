/* tests/bench/shape_label_test.c - the short shape labels of `kiln report`
 * (reports/shape_label.h): the real SmolLM2 keys give the labels the
 * figures show, and random key sets keep every invariant of the header:
 * labels fit, are stable and distinct per kernel, and a label plus its
 * kernel's legend line (or its footnote) gives back the whole key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/shape_label.h"
#include "tests/test.h"
#include "util/rng.h"

#define MAXN 256

/* Fields of s (dot-separated) into f; returns the count. */
static int fields(const char *s, char f[][64], int max)
{
    int n = 0;
    while (*s && n < max) {
        const char *d = strchr(s, '.');
        size_t l = d ? (size_t)(d - s) : strlen(s);
        snprintf(f[n++], 64, "%.*s", (int)l, s);
        s += l + (d ? 1 : 0);
    }
    return n;
}

/* 1 if the multisets a[0..na) and b[0..nb) are equal. */
static int same_multiset(char a[][64], int na, char b[][64], int nb)
{
    if (na != nb)
        return 0;
    int used[64] = {0};
    for (int i = 0; i < na; i++) {
        int j = 0;
        while (j < nb && (used[j] || strcmp(a[i], b[j])))
            j++;
        if (j == nb)
            return 0;
        used[j] = 1;
    }
    return 1;
}

/* The legend's line for kernel k ("k, every shape: a.b"), "" if none. */
static const char *dropped_of(const char *legend, const char *k, char *out, size_t n)
{
    char head[96];
    snprintf(head, sizeof head, "%s, every shape: ", k);
    out[0] = 0;
    for (const char *l = legend; *l; l = strchr(l, '\n') + 1)
        if (!strncmp(l, head, strlen(head))) {
            const char *s = l + strlen(head), *e = strchr(s, '\n');
            snprintf(out, n, "%.*s", (int)(e - s), s);
        }
    return out;
}

static void check_labels(const char **kn, const char **keys, int n, const kiln_shape_label *lab, const char *legend,
                         int lines)
{
    int counted = 0;
    for (const char *l = legend; *l; l = strchr(l, '\n') + 1)
        counted++;
    CHECK(counted == lines, "legend has %d lines, returned %d", counted, lines);
    for (int i = 0; i < n; i++) {
        CHECK(strlen(lab[i]) > 0 && strlen(lab[i]) <= KILN_SHAPE_LABEL_MAX, "label '%s' of %s", lab[i], keys[i]);
        for (int j = 0; j < i; j++) {
            if (strcmp(kn[i], kn[j]))
                continue;
            if (!strcmp(keys[i], keys[j]))
                CHECK(!strcmp(lab[i], lab[j]), "%s %s labelled '%s' and '%s'", kn[i], keys[i], lab[i], lab[j]);
            else
                CHECK(strcmp(lab[i], lab[j]), "%s: %s and %s both labelled '%s'", kn[i], keys[i], keys[j], lab[i]);
        }
        char key_f[64][64], lab_f[64][64], drop[512];
        int nk = fields(keys[i], key_f, 64);
        dropped_of(legend, kn[i], drop, sizeof drop);
        const char *mark = strchr(lab[i], '~');
        if (!mark) {
            /* label fields + the kernel's dropped fields = the key's fields */
            char all[1024];
            snprintf(all, sizeof all, "%s%s%s", lab[i], drop[0] ? "." : "", drop);
            int nl = fields(all, lab_f, 64);
            CHECK(same_multiset(key_f, nk, lab_f, nl), "%s: label '%s' + dropped '%s' != key %s", kn[i], lab[i], drop,
                  keys[i]);
            continue;
        }
        /* a footnote: its legend line holds the whole key, the label starts with key fields */
        char note[512];
        snprintf(note, sizeof note, "%s %s %s\n", mark, kn[i], keys[i]);
        const char *at = strstr(legend, note);
        CHECK(at && (at == legend || at[-1] == '\n'), "no legend line '%.*s'", (int)strlen(note) - 1, note);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%.*s", (int)(mark - lab[i]), lab[i]);
        int np = fields(prefix, lab_f, 64);
        CHECK(np >= 1, "marked label '%s' has no fields", lab[i]);
        for (int p = 0; p < np; p++) {
            int found = 0;
            for (int q = 0; q < nk && !found; q++)
                found = p < np - 1 ? !strcmp(lab_f[p], key_f[q]) : !strncmp(lab_f[p], key_f[q], strlen(lab_f[p]));
            CHECK(found, "field '%s' of label '%s' is not in %s", lab_f[p], lab[i], keys[i]);
        }
    }
}

static void test_real_keys(void)
{
    const char *kn[] = {"rope", "rope", "rope", "rope", "gemm_int4", "gemv_int4", "gemv_int4", "gemv_int4", "argmax",
                        "rope"};
    const char *keys[] = {"t1.h9.d64.rot64.base100000.off0.interleaved",
                          "t1.h3.d64.rot64.base100000.off0.interleaved",
                          "t64.h9.d64.rot64.base100000.off0.interleaved",
                          "t64.h3.d64.rot64.base100000.off0.interleaved",
                          "m192.k576.n16.q4_1.g32.xq8",
                          "m576.k576.q4_1.g32.xq8",
                          "m1536.k576.q4_1.g32.xq8",
                          "m49152.k576.q8_0.g32.xq8",
                          "n49152",
                          "t1.h9.d64.rot64.base100000.off0.interleaved"};
    const char *want[] = {"t1.h9", "t1.h3", "t64.h9", "t64.h3", "m192.k576.n16.q4_1~1", "m576.q4_1", "m1536.q4_1",
                          "m49152.q8_0", "n49152", "t1.h9"};
    kiln_shape_label lab[10];
    char legend[1024];
    int lines = kiln_shape_labels(kn, keys, 10, lab, legend, sizeof legend);
    for (int i = 0; i < 10; i++)
        CHECK(!strcmp(lab[i], want[i]), "%s %s: label '%s', want '%s'", kn[i], keys[i], lab[i], want[i]);
    const char *want_legend = "rope, every shape: d64.rot64.base100000.off0.interleaved\n"
                              "gemv_int4, every shape: k576.g32.xq8\n"
                              "~1 gemm_int4 m192.k576.n16.q4_1.g32.xq8\n";
    CHECK(lines == 3 && !strcmp(legend, want_legend), "legend (%d lines):\n%s", lines, legend);
    check_labels(kn, keys, 10, lab, legend, lines);

    /* dropping the common fields would leave "a.b" and "b.a" equal (empty): nothing is dropped */
    const char *kn2[] = {"x", "x"}, *keys2[] = {"a.b", "b.a"};
    lines = kiln_shape_labels(kn2, keys2, 2, lab, legend, sizeof legend);
    CHECK(lines == 0 && !strcmp(lab[0], "a.b") && !strcmp(lab[1], "b.a"), "'%s' '%s' (%d legend lines)", lab[0],
          lab[1], lines);
    /* a single field too long for any label: its first characters and a mark */
    const char *kn3[] = {"y"}, *keys3[] = {"abcdefghijklmnopqrstuvwxyz0123456789"};
    lines = kiln_shape_labels(kn3, keys3, 1, lab, legend, sizeof legend);
    CHECK(lines == 1 && !strcmp(lab[0], "abcdefghijklmnopqrst~1"), "label '%s'", lab[0]);
    check_labels(kn3, keys3, 1, lab, legend, lines);
    /* a short legend buffer keeps whole lines only */
    lines = kiln_shape_labels(kn, keys, 10, lab, legend, 70);
    CHECK(lines == 1 && !strcmp(legend, "rope, every shape: d64.rot64.base100000.off0.interleaved\n"),
          "short legend (%d lines): %s", lines, legend);
}

static void test_random(void)
{
    static const char *const extra[] = {"q4_1", "q8_0", "g32", "g128", "xq8", "ilv16", "plain", "res",
                                        "interleaved", "base100000", "off0", "abcdefghijklmnopqrstuvwxyz"};
    kiln_rng rng;
    kiln_rng_seed(&rng, 12);
    for (int round = 0; round < 300; round++) {
        static char key_buf[MAXN][200], kern_buf[MAXN][16];
        const char *kn[MAXN], *keys[MAXN];
        int n = 1 + (int)kiln_rng_below(&rng, 60), nkern = 1 + (int)kiln_rng_below(&rng, 5);
        /* per kernel: fields every key has, and a pool of distinct keys */
        char pool[5][8][200];
        int npool[5];
        for (int k = 0; k < nkern; k++) {
            char common[120] = "";
            int nc = (int)kiln_rng_below(&rng, 4);
            for (int c = 0; c < nc; c++) {
                size_t l = strlen(common);
                snprintf(common + l, sizeof common - l, ".%s", extra[kiln_rng_below(&rng, 12)]);
            }
            npool[k] = 1 + (int)kiln_rng_below(&rng, 8);
            for (int j = 0; j < npool[k]; j++) {
                char *s = pool[k][j];
                /* distinct by construction: the leading size field carries j */
                int w = snprintf(s, 200, "m%u.k%u", (unsigned)(j * 1000 + kiln_rng_below(&rng, 999)),
                                 (unsigned)kiln_rng_below(&rng, 3) * 576);
                if (kiln_rng_below(&rng, 2))
                    w += snprintf(s + w, 200 - (size_t)w, ".%s", extra[kiln_rng_below(&rng, 12)]);
                snprintf(s + w, 200 - (size_t)w, "%s", common);
                if (kiln_rng_below(&rng, 4) == 0) { /* the common fields first */
                    char t[200];
                    snprintf(t, sizeof t, "%s.%s", common[0] ? common + 1 : "x", s);
                    snprintf(s, 200, "%s", t);
                }
            }
        }
        for (int i = 0; i < n; i++) {
            int k = (int)kiln_rng_below(&rng, (uint32_t)nkern);
            snprintf(kern_buf[i], sizeof kern_buf[i], "k%d", k);
            snprintf(key_buf[i], sizeof key_buf[i], "%s", pool[k][kiln_rng_below(&rng, (uint32_t)npool[k])]);
            kn[i] = kern_buf[i];
            keys[i] = key_buf[i];
        }
        kiln_shape_label lab[MAXN];
        char legend[8192];
        int lines = kiln_shape_labels(kn, keys, n, lab, legend, sizeof legend);
        CHECK(lines >= 0, "round %d: returned %d", round, lines);
        int before = test_failures;
        check_labels(kn, keys, n, lab, legend, lines);
        /* a kernel's dropped fields are in every one of its keys */
        for (int i = 0; i < n; i++) {
            char drop[512], df[64][64], kf[64][64];
            int nd = fields(dropped_of(legend, kn[i], drop, sizeof drop), df, 64), nk = fields(keys[i], kf, 64);
            for (int d = 0; d < nd; d++) {
                int need = 0, have = 0;
                for (int e = 0; e < nd; e++)
                    need += !strcmp(df[e], df[d]);
                for (int e = 0; e < nk; e++)
                    have += !strcmp(kf[e], df[d]);
                CHECK(have >= need, "%s: dropped '%s' x%d, key %s has it %d times", kn[i], df[d], need, keys[i],
                      have);
            }
        }
        if (test_failures != before) {
            fprintf(stderr, "round %d legend:\n%s", round, legend);
            break;
        }
    }
}

int main(void)
{
    test_real_keys();
    test_random();
    if (!test_failures)
        printf("shape labels: ok\n");
    return test_failures ? 1 : 0;
}
