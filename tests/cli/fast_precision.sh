#!/bin/bash
# tests/cli/fast_precision.sh KILN - the int8-activation path end to end on the
# real SmolLM2 ($KILN_SMOLLM2) on the cpu:
#   - tune --model (fast precision) with the int8 configs asked for first:
#     gemv winners with act 1 and an interleaved layout, the prefill gemm
#     tuned at that layout;
#   - kiln run --precision fast stores the matrices in those layouts
#     (--verbose says so), runs the tuned kernels, and still answers
#     "Paris" greedily;
#   - --precision strict looks up none of them (0 tuned classes) and gives
#     exactly the untuned output;
#   - kiln perplexity over one chunk of GPL-3: fast within 2% of strict (the
#     x rounding costs ~0.3% over the whole text, bench/results).
# Skips (77) without the model unless $KILN_REQUIRE_BACKENDS names `model`.
set -uo pipefail
kiln="$1"
model="${KILN_SMOLLM2:-}"
if [[ -z "$model" || ! -r "$model" ]]; then
    if [[ ",${KILN_REQUIRE_BACKENDS:-}," == *",model,"* ]]; then echo "FAIL: KILN_SMOLLM2 is required"; exit 1; fi
    echo "SKIP: KILN_SMOLLM2 not set (scripts/fetch-model.sh)"
    exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
db="$tmp/t.db"
prompt="What is the capital of France? Answer in one sentence."

"$kiln" tune --device cpu --model "$model" --kernel gemv_int4 --config '{"act":1,"ilv":16,"rows":16}' \
    --config '{"act":1,"ilv":8,"rows":16}' --budget 3 --db "$db" >"$tmp/tune1.out" 2>&1 ||
    fail "tune gemv exited $? ($(tail -3 "$tmp/tune1.out"))"
"$kiln" tune --device cpu --model "$model" --kernel gemm_int4 --config '{"act":1,"rows":16,"tokens":8}' \
    --budget 2 --db "$db" >"$tmp/tune2.out" 2>&1 || fail "tune gemm exited $? ($(tail -3 "$tmp/tune2.out"))"
cat "$tmp/tune1.out" "$tmp/tune2.out"
grep -Eq '^gemv_int4 +m960\.k576\.q4_1\.g32\.xq8 .*"act":1' "$tmp/tune1.out" ||
    fail "the stacked Q/K/V gemv (m960, act=q8 shape) did not get an int8 winner"
grep -Eq '^gemm_int4 +m[0-9]+\.k576\.n64\.q4_1\.g32\.ilv(4|8|16)\.xq8 ' "$tmp/tune2.out" ||
    fail "no prefill gemm was tuned at an interleaved layout"

"$kiln" run -m "$model" -n 16 --temp 0 -p "$prompt" --db "$db" --verbose >"$tmp/fast.out" 2>"$tmp/fast.err" ||
    fail "run --precision fast exited $?"
cat "$tmp/fast.out"
grep -q "Paris" "$tmp/fast.out" || fail "fast: no Paris in '$(cat "$tmp/fast.out")'"
grep -Eq 'weights m960\.k576\.q4_1\.g32\.xq8 +stored in layout ilv (4|8|16)' "$tmp/fast.err" ||
    fail "fast: the stacked Q/K/V matrix was not stored interleaved ($(grep 'weights' "$tmp/fast.err" | head -3))"
grep -Eq 'kernel configs: [1-9][0-9]* tuned' "$tmp/fast.err" || fail "fast: no tuned config used"

"$kiln" run -m "$model" -n 16 --temp 0 -p "$prompt" --db "$db" --precision strict >"$tmp/strict.out" \
    2>"$tmp/strict.err" || fail "run --precision strict exited $?"
# untuned: no database at all (a missing --db file is an error)
KILN_DB="$tmp/none.db" "$kiln" run -m "$model" -n 16 --temp 0 -p "$prompt" --precision strict >"$tmp/plain.out" \
    2>/dev/null || fail "untuned run exited $?"
cmp -s "$tmp/strict.out" "$tmp/plain.out" || fail "strict with the fast database differs from untuned"
grep -Eq 'kernel configs: 0 tuned' "$tmp/strict.err" || fail "strict used tuned (int8) configs"

ppl() { "$kiln" perplexity -m "$model" -f /usr/share/common-licenses/GPL-3 --ctx 256 --chunks 1 --db "$db" \
    --precision "$1" --json 2>/dev/null | sed -n 's/.*"ppl":\([0-9.eE+-]*\).*/\1/p'; }
pf=$(ppl fast)
ps=$(ppl strict)
echo "PPL fast $pf strict $ps"
awk -v f="$pf" -v s="$ps" 'BEGIN { exit !(f > 1 && s > 1 && (f - s) / s < 0.02 && (s - f) / s < 0.02) }' ||
    fail "perplexity fast $pf vs strict $ps (more than 2% apart, or missing)"
[[ $fails -eq 0 ]]
