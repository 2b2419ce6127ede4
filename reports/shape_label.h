/* reports/shape_label.h - short axis labels for shape keys.
 *
 * A shape key names every field of a shape ("m1536.k576.n64.q4_1.g32.ilv16.xq8"),
 * too long for an axis label beside 25 others. A label drops the fields that
 * every shape of the same kernel has (the legend names them once per kernel:
 * "gemm_int4, every shape: n64.q4_1.g32.xq8"); a label still longer than
 * KILN_SHAPE_LABEL_MAX keeps its leading fields and a mark "~N" whose legend
 * line gives the whole key ("~1 rope t64.h9.d64.rot64.base100000.off0.interleaved").
 *
 * Invariants (tests/bench/shape_label_test.c):
 *   - the same (kernel, key) gets the same label, at most KILN_SHAPE_LABEL_MAX chars;
 *   - distinct keys of one kernel get distinct labels;
 *   - an unmarked label's fields plus its kernel's dropped fields are the
 *     key's fields (as a multiset); a marked label starts with fields of the key.
 * Kernels whose shapes would lose their distinctness, or be left with an
 * empty label, drop nothing. */
#ifndef KILN_REPORTS_SHAPE_LABEL_H
#define KILN_REPORTS_SHAPE_LABEL_H

#include <stddef.h>

#define KILN_SHAPE_LABEL_MAX 22

typedef char kiln_shape_label[KILN_SHAPE_LABEL_MAX + 1];

/* labels[i] is the label of keys[i] (a shape of kernels[i]). The legend gets
 * one line per kernel that dropped fields, then one per marked label, each
 * ending in '\n' (cut at a line boundary when legend_n is short). Returns the
 * number of legend lines written, -1 when out of memory. */
int kiln_shape_labels(const char *const *kernels, const char *const *keys, int n, kiln_shape_label *labels,
                      char *legend, size_t legend_n);

#endif
