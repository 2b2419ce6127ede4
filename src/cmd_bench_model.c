/* src/cmd_bench_model.c - `kiln bench model`: prefill/decode tok/s, TTFT and
 * latency percentiles of a whole model, repeated, with spread.
 *
 * Not implemented yet. The storage and output it builds on are ready:
 * bench/bench_store.h (kiln_bench_begin(kind "model", subject = the model
 * file), kiln_bench_add per metric: pp_tok_s / tg_tok_s (KILN_BENCH_HIGHER,
 * unit "tok/s"), ttft_ms and latency_p50_ms / _p90_ms / _p99_ms
 * (KILN_BENCH_LOWER, unit "ms"), value = median, mean, relative spread, n;
 * kiln_bench_end), bench/bench_format.h (table/md/csv/json) and
 * `kiln bench compare`, which gates on those metrics like kernel times.
 * argv[0] is "model". */
#include <stdio.h>

#include "src/commands.h"

int kiln_cmd_bench_model(int argc, char **argv);

int kiln_cmd_bench_model(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln bench model: not implemented yet\n");
    return KILN_EXIT_USAGE;
}
