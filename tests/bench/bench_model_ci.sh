#!/bin/bash
# tests/bench/bench_model_ci.sh KILN - the model half of the CI gate: a tiny
# synthetic Llama benched twice on the cpu (pp/tg/TTFT rows stored as runs),
# compare second vs first passes, a planted 3x slower copy of the first run
# fails compare with exit 13 and names the metric.
# Noise: 2 shared cores, so the pass check allows a 2x change (--threshold
# 1.0); the planted run is 3x. One cpu thread: the tiny model's decode step
# is ~60 us, so with two threads it is all wake-ups and a busy neighbour
# swung honest runs 6x (one thread has nothing to wake).
set -uo pipefail
kiln="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
db="$tmp/m.db"
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

"$kiln" synth --preset tiny --quant q4_1 -o "$tmp/tiny.gguf" >/dev/null 2>&1 || fail "synth exited $?"
for i in 1 2; do
    KILN_CPU_THREADS=1 "$kiln" bench model -m "$tmp/tiny.gguf" --device cpu -p 32 -n 16 -r 3 --db "$db" \
        >"$tmp/b$i.out" 2>&1 ||
        fail "bench model run $i exited $?"
    cat "$tmp/b$i.out"
done
grep -Eq "pp32_tok_s" "$tmp/b1.out" || fail "no pp row"
grep -Eq "tiny.gguf +[0-9.]+ ±" "$tmp/b1.out" || fail "no result values"

# the decode roof rows: weights read per token (at most the file's bytes, and more than its bytes
# less the embedding table), the measured read bandwidth, tg as % of weights/bandwidth
KILN_CPU_THREADS=1 "$kiln" bench model -m "$tmp/tiny.gguf" --device cpu -p 8 -n 4 -r 1 --no-store --format json \
    >"$tmp/roof.json" 2>"$tmp/roof.err" || fail "bench model --format json exited $?"
v() { jq -r --arg m "$1" '.[] | select(.metric == $m) | .value' "$tmp/roof.json"; }
fmb=$(stat -c %s "$tmp/tiny.gguf" | awk '{ print $1 / 1e6 }')
awk -v w="$(v weights_mb_per_token)" -v f="$fmb" -v b="$(v read_gbps)" -v t="$(v tg4_tok_s)" \
    -v p="$(v tg_pct_of_bound)" 'BEGIN { ok = w > 0.2 * f && w <= f && b > 0 && t > 0 &&
        p > 0 && (p - 100 * t * w / (b * 1e3)) ^ 2 < (0.01 * p) ^ 2; exit !ok }' ||
    fail "decode roof rows wrong: $(jq -c '[.[] | {metric, value}]' "$tmp/roof.json") (file $fmb MB)"

rc=0
"$kiln" bench compare 2 --baseline 1 --threshold 1.0 --db "$db" >"$tmp/ok.out" 2>&1 || rc=$?
cat "$tmp/ok.out"
[[ $rc -eq 0 ]] || fail "compare of two honest model runs exited $rc (want 0)"
grep -Eq "tg16_tok_s .*(unchanged|faster|SLOWER)" "$tmp/ok.out" || fail "no verdict for tg16_tok_s"

"$kiln" bench export 1 --db "$db" >"$tmp/base.json" 2>/dev/null || fail "export exited $?"
"$kiln" bench import "$tmp/base.json" --time-factor 3 --db "$db" >/dev/null || fail "import exited $?"
rc=0
"$kiln" bench compare 3 --baseline 1 --threshold 1.0 --db "$db" >"$tmp/bad.out" 2>&1 || rc=$?
cat "$tmp/bad.out"
[[ $rc -eq 13 ]] || fail "compare of the planted 3x slower model run exited $rc (want 13)"
grep -Eq "(pp32|tg16)_tok_s" "$tmp/bad.out" || fail "the regression does not name the metric"
[[ $fails -eq 0 ]]
