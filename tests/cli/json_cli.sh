#!/usr/bin/env bash
# tests/cli/json_cli.sh KILN - machine-readable output is JSON whatever the
# strings in it hold (issue 9 item 9: run and tune printed JSON with printf,
# so a model path with a quote or a backslash gave an invalid document):
#   - kiln run --json on a model whose path has a quote, a backslash and a
#     tab: one valid object, .model the path exactly;
#   - kiln tune --json: every line an object, .config an object;
#   - kiln db show --json and db best --json of that database parse.
# (GET /v1/models with such a model name: tests/cli/serve_test.c.)
set -uo pipefail
kiln=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export KILN_DB="$tmp/k.db"

model="$tmp/we\"ird\\na	me.gguf"
"$kiln" synth --preset tiny -o "$model" >/dev/null 2>&1 || fail "synth exited $?"
timeout 120 "$kiln" run -m "$model" -p hello -n 2 --device cpu --json >"$tmp/run.json" 2>"$tmp/err" ||
  fail "run --json exited $?: $(tail -3 "$tmp/err")"
# the answer is streamed first: the summary is the last line
tail -n 1 "$tmp/run.json" >"$tmp/summary.json"
jq -e --arg p "$model" '.model == $p and .generated_tokens == 2 and (.device | startswith("cpu"))' \
  "$tmp/summary.json" >/dev/null || fail "run --json summary is not valid or wrong: $(cat "$tmp/summary.json")"

timeout 300 "$kiln" tune --device cpu --kernel rmsnorm --budget 4 --db "$tmp/t.db" --json >"$tmp/tune.json" \
  2>"$tmp/err" || fail "tune --json exited $?: $(tail -3 "$tmp/err")"
n=$(wc -l <"$tmp/tune.json")
[ "$n" -ge 1 ] || fail "tune --json printed nothing"
jq -e -s 'length >= 1 and all(.[]; (.config | type) == "object" and .kernel == "rmsnorm" and (.trials | type) == "number")' \
  "$tmp/tune.json" >/dev/null || fail "tune --json lines are not the objects expected: $(head -3 "$tmp/tune.json")"
"$kiln" db --db "$tmp/t.db" show --json | jq -e '.winners | length >= 1' >/dev/null || fail "db show --json"
shape=$(head -n 1 "$tmp/tune.json" | jq -r .shape)
"$kiln" db --db "$tmp/t.db" best --kernel rmsnorm --shape "$shape" --device cpu --json | jq -e . >/dev/null ||
  fail "db best --json"

[ $fails = 0 ] && echo "json_cli: all passed"
exit $((fails > 0))
