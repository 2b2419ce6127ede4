#!/usr/bin/env bash
# tests/bench/bench_serve_ci.sh KILN HARNESS_DIR - `kiln bench serve` against
# `kiln serve --echo` (no model): every request of every level succeeds, the
# table has each level with its ratio, the run is stored in a fresh database
# (kind serve, one run per level, with its metrics), an unreachable server is
# exit 3, a bad --clients list is a usage error (2); and
# bench/harness/bench-serve.sh --dry-run prints the commands it would run.
set -uo pipefail
kiln=$1
harness=${2:-}
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$kiln" serve --echo --port 0 >"$dir/out" 2>"$dir/err" &
pid=$!
port=
for _ in $(seq 1 100); do
  port=$(grep -o 'http://127.0.0.1:[0-9]*' "$dir/out" 2>/dev/null | cut -d: -f3)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || fail "kiln serve --echo did not start: $(cat "$dir/err")"

"$kiln" bench serve --url "http://127.0.0.1:$port" -c 1,4 -R 3 -p 12 -n 8 --db "$dir/k.db" >"$dir/table" 2>"$dir/log" \
  || fail "bench serve failed: $(cat "$dir/log")"
cat "$dir/table"
grep -Eq '^\| kiln \| 1 \| 3/3 \| [0-9.]+ \| [0-9.]+ \| 1\.00x \|' "$dir/table" || fail "no 1-client row"
grep -Eq '^\| kiln \| 4 \| 12/12 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+x \|' "$dir/table" || fail "no 4-client row"
"$kiln" bench list --db "$dir/k.db" >"$dir/list" 2>&1 || fail "bench list: $(cat "$dir/list")"
[ "$(grep -c 'serve' "$dir/list")" -ge 2 ] || fail "two serve runs expected in the database: $(cat "$dir/list")"
"$kiln" bench show --db "$dir/k.db" --format csv >"$dir/show" 2>&1 || fail "bench show: $(cat "$dir/show")"
for m in out_tok_s ttft_p50_ms ttft_p99_ms itl_p50_ms itl_p99_ms; do
  grep -q "$m" "$dir/show" || fail "stored run lacks $m: $(head -5 "$dir/show")"
done

"$kiln" bench serve --url http://127.0.0.1:1 -c 1 -R 1 --no-store >/dev/null 2>&1
[ $? -eq 3 ] || fail "an unreachable server should be exit 3"
"$kiln" bench serve --url "http://127.0.0.1:$port" -c 1,x --no-store >/dev/null 2>&1
[ $? -eq 2 ] || fail "a bad --clients list should be a usage error"

if [ -n "$harness" ]; then
  bash "$harness/bench-serve.sh" --dry-run --kiln "$kiln" --model /nonexistent.gguf >"$dir/dry" 2>&1 \
    || fail "bench-serve.sh --dry-run: $(cat "$dir/dry")"
  grep -q 'serve -m /nonexistent.gguf .*--parallel 8' "$dir/dry" || fail "dry run lacks kiln serve: $(cat "$dir/dry")"
  grep -q 'bench serve .*--label kiln' "$dir/dry" || fail "dry run lacks bench serve: $(cat "$dir/dry")"
fi
echo PASS
