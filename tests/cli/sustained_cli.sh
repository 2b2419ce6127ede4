#!/bin/bash
# tests/cli/sustained_cli.sh KILN - thermal runs (tune/bench --sustained):
#   - tune --sustained runs each finalist back to back (at least two runs)
#     and reports the winner's drift first-vs-last, in text and JSON, with
#     the sustained figure as the winner's time;
#   - bench kernels --sustained stores the default's and the tuned config's
#     sustained times and drifts in the run;
#   - a negative duration is a usage error.
# On the cpu backend (always there), a small shape, one second per finalist.
set -uo pipefail
kiln=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
command -v jq >/dev/null || { echo "SKIP: jq not installed (scripts/install-deps.sh)"; exit 77; }
export KILN_CPU_THREADS=1
shape=m=256,k=256,quant=q4_0,group=32

"$kiln" tune --device cpu --kernel gemv_int4 --shape "$shape" --budget 4 --sustained -1 --db "$tmp/t.db" \
    >"$tmp/neg" 2>&1; rc=$?
[[ $rc -eq 2 ]] || fail "--sustained -1 exited $rc, want 2: $(cat "$tmp/neg")"

"$kiln" tune --device cpu --kernel gemv_int4 --shape "$shape" --budget 4 --sustained 1 --json --db "$tmp/t.db" \
    >"$tmp/tune.json" 2>"$tmp/tune.err" || { cat "$tmp/tune.err"; fail "tune --sustained exited $?"; }
cat "$tmp/tune.json"
jq -e '.sustained_s == 1 and .sustained_trials >= 2 and .first_ns > 0 and .last_ns > 0 and .best_ns > 0
       and (.drift | type == "number") and (.default_drift | type == "number")
       and ((.drift - (.last_ns - .first_ns) / .first_ns) | fabs) < 1e-3' "$tmp/tune.json" >/dev/null ||
    fail "tune --sustained --json lacks a consistent sustained record"

"$kiln" tune --device cpu --kernel gemv_int4 --shape "$shape" --budget 3 --sustained 1 --db "$tmp/t2.db" \
    >"$tmp/tune.txt" 2>&1 || { cat "$tmp/tune.txt"; fail "tune --sustained (text) exited $?"; }
grep -qE 'sustained 1 s \([0-9]+ runs back to back\): first [0-9.]+ us, last [0-9.]+ us, drift [-+][0-9.]+%' \
    "$tmp/tune.txt" || fail "tune --sustained prints no drift line: $(cat "$tmp/tune.txt")"

"$kiln" bench kernels --device cpu --kernel gemv_int4 --shape "$shape" -r 2 --sustained 1 --db "$tmp/t.db" \
    >"$tmp/bench.txt" 2>&1 || { cat "$tmp/bench.txt"; fail "bench kernels --sustained exited $?"; }
cat "$tmp/bench.txt"
"$kiln" bench show latest --format csv --db "$tmp/t.db" >"$tmp/show.csv"
for m in default_sustained_us tuned_sustained_us default_drift_pct tuned_drift_pct; do
    grep -q "gemv_int4 m256.k256.q4_0.g32,$m," "$tmp/show.csv" || fail "the bench run has no $m"
done
grep -q "sustained .* runs back to back: default" "$tmp/bench.txt" || fail "bench prints no sustained line"
[[ $fails -eq 0 ]] && echo "sustained: ok"
exit $((fails > 0))
