/* bench/bench_format.h - benchmark results as a table, markdown, CSV or JSON.
 *
 * table and md pivot a result set: one block per device, one row per
 * subject, one column per metric (first-seen order; tuned_bw_pct and
 * tuned_read_pct headed "% of copy" and "% of read"), each cell "value ±spread%";
 * csv and json are long form, one record per (device, subject, metric), with
 * every field of kiln_bench_result. Informational ":mean" rows only appear in
 * the long forms. */
#ifndef KILN_BENCH_BENCH_FORMAT_H
#define KILN_BENCH_BENCH_FORMAT_H

#include <stdio.h>

#include "bench/bench_store.h"

typedef enum kiln_bench_fmt { KILN_FMT_TABLE = 0, KILN_FMT_MD, KILN_FMT_CSV, KILN_FMT_JSON } kiln_bench_fmt;

/* "table" | "md" | "csv" | "json"; 0 or KILN_E_INVALID. */
int kiln_bench_fmt_parse(const char *s, int *fmt);
void kiln_bench_print(FILE *f, const kiln_bench_set *s, int fmt);
/* One number the way the tables show it ("1234.5", "12.34", "0.01234"). */
void kiln_bench_fmt_value(double v, char *buf, size_t n);

#endif
