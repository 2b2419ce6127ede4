#!/bin/bash
# tests/bench/strategies_ci.sh KILN HARNESS_DIR - the strategy comparison
# benchmark end to end on the cpu with a tiny budget: one session per
# strategy x seed in one database, a table row per strategy whose final best
# is never better than the best any session found, and no session that
# overspent its budget.
set -euo pipefail
kiln=$1 harness=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$harness/compare-strategies.sh" --kiln "$kiln" --device cpu --kernel gemv_int4 \
    --shape m=512,k=1024,quant=q4_0,group=32 --budget 4 --seeds "1 2" --db "$tmp/s.db" -o "$tmp/s.md" 2>"$tmp/log" ||
    { cat "$tmp/log"; echo "compare-strategies.sh failed"; exit 1; }
cat "$tmp/s.md"
fail() { echo "FAIL: $*"; exit 1; }
for s in exhaustive random anneal evolve model; do
    row=$(grep "^| $s |" "$tmp/s.md") || fail "no row for $s"
    ratio=$(awk -F'|' '{gsub(/[ x]/, "", $6); print $6}' <<<"$row")
    awk -v r="$ratio" 'BEGIN { exit !(r >= 1.0 && r < 100) }' || fail "$s: final best / overall best = '$ratio'"
done
sessions=$(sqlite3 "$tmp/s.db" "SELECT count(*) FROM sessions")
[[ $sessions -eq 10 ]] || fail "expected 10 sessions (5 strategies x 2 seeds), found $sessions"
over=$(sqlite3 "$tmp/s.db" "SELECT count(*) FROM (SELECT session_id FROM trials GROUP BY session_id HAVING count(*) > 4)")
[[ $over -eq 0 ]] || fail "$over session(s) ran more trials than the budget of 4"
echo "strategy comparison: 5 strategies x 2 seeds, table and budgets ok"
