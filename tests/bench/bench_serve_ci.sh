#!/usr/bin/env bash
# tests/bench/bench_serve_ci.sh KILN HARNESS_DIR FAKE_LLAMA_SERVER - `kiln bench serve` against
# `kiln serve --echo` (no model): every request of every level succeeds, the
# table has each level with its ratio, the run is stored in a fresh database
# (kind serve, one run per level, with its metrics), an unreachable server is
# exit 3, a bad --clients list is a usage error (2); against a stand-in of
# llama-server's stream (fake_llama_server.c: two tokens in one event, the
# count in usage, in timings only, or nowhere) --json counts the server's
# tokens, says when events and tokens differ and when the count was not
# reported; and bench/harness/bench-serve.sh --dry-run prints the commands
# it would run (one round, and --rounds 2 alternating the servers).
set -uo pipefail
kiln=$1
harness=${2:-}
fake=${3:-}
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

# llama-server's stream: 10 tokens in 9 text events per request
[ -x "$fake" ] || fail "no fake llama-server executable given (third argument): '$fake'"
for mode in usage timings none; do
  "$fake" $mode >"$dir/fport" 2>"$dir/ferr" &
  fpid=$!
  fport=
  for _ in $(seq 1 100); do
    fport=$(head -1 "$dir/fport")
    [ -n "$fport" ] && break
    sleep 0.1
  done
  [ -n "$fport" ] || fail "fake llama-server ($mode) did not start: $(cat "$dir/ferr")"
  "$kiln" bench serve --url "http://127.0.0.1:$fport" -c 1,2 -R 2 -p 6 -n 10 --label llama-server --no-store --json \
    >"$dir/j" 2>"$dir/jlog" || fail "bench serve vs fake llama-server ($mode): $(cat "$dir/jlog")"
  kill $fpid; wait $fpid 2>/dev/null
  cat "$dir/j" "$dir/jlog"
  jq -e '.label == "llama-server" and (.levels | length) == 2' "$dir/j" >/dev/null || fail "$mode: bad json: $(cat "$dir/j")"
  if [ $mode = none ]; then
    # no count from the server: the events are the tokens, and that is said
    jq -e '.levels[] | select(.clients == 2) | .ok == 4 and .tokens == 36 and .events == 36 and .from_usage == 0
           and .short == 4' "$dir/j" >/dev/null || fail "$mode: counts: $(cat "$dir/j")"
    grep -q 'did not report their token count' "$dir/jlog" || fail "$mode: no note: $(cat "$dir/jlog")"
    grep -q 'fewer than 10 tokens' "$dir/jlog" || fail "$mode: no short note: $(cat "$dir/jlog")"
  else
    jq -e '.levels[] | select(.clients == 2) | .ok == 4 and .tokens == 40 and .events == 36 and .from_usage == 4
           and .short == 0 and .out_tok_s > 0 and .itl_p50_ms >= 0' "$dir/j" >/dev/null \
      || fail "$mode: counts: $(cat "$dir/j")"
    grep -q '36 text events for 40 tokens' "$dir/jlog" || fail "$mode: no events note: $(cat "$dir/jlog")"
  fi
done

if [ -n "$harness" ]; then
  bash "$harness/bench-serve.sh" --dry-run --kiln "$kiln" --model /nonexistent.gguf >"$dir/dry" 2>&1 \
    || fail "bench-serve.sh --dry-run: $(cat "$dir/dry")"
  grep -q 'serve -m /nonexistent.gguf .*--parallel 8' "$dir/dry" || fail "dry run lacks kiln serve: $(cat "$dir/dry")"
  grep -q 'bench serve .*--label kiln' "$dir/dry" || fail "dry run lacks bench serve: $(cat "$dir/dry")"
  # two rounds with a peer: kiln first, then llama-server first; the same client load for both
  bash "$harness/bench-serve.sh" --dry-run --kiln "$kiln" --model /m.gguf --rounds 2 --threads 2 \
    --llama-server "$(type -P true)" >"$dir/dry2" 2>&1 || fail "bench-serve.sh --rounds 2: $(cat "$dir/dry2")"
  order=$(grep '^== round' "$dir/dry2" | tr '\n' ' ')
  [ "$order" = "== round 1/2: kiln == round 1/2: llama-server == round 2/2: llama-server == round 2/2: kiln " ] \
    || fail "rounds do not alternate: $order"
  grep -q -- '-m /m.gguf .*-np 8 -cb -c 4096 -t 2 -tb 2' "$dir/dry2" || fail "no llama-server line: $(cat "$dir/dry2")"
  [ "$(grep 'bench serve' "$dir/dry2" | sed 's/.*--label [a-z-]*//' | sort -u | wc -l)" = 1 ] \
    || fail "the servers get different client loads: $(grep 'bench serve' "$dir/dry2")"
fi
echo PASS
