#!/usr/bin/env bash
# tests/cli/perplexity_cli.sh KILN synth|model - `kiln perplexity`.
#   synth: on a tiny synthetic model (kiln synth --preset tiny): a run over two
#          chunks of 64 tokens of GPL-3 gives the scheme's counts and a finite
#          PPL in --json and in the text output; bad inputs give clear messages
#          and the README's exit codes (missing file or model 3; empty file,
#          text shorter than one chunk, --ctx 0, a bad --precision, a missing
#          -f or an unknown option 2).
#   model: the real SmolLM2 ($KILN_SMOLLM2) over the first 2 chunks of 512 of
#          GPL-3: 510 tokens scored, PPL finite and plausible for a 135M model
#          on legal English (5..60; measured 17.7). SKIP (77) without the
#          model unless $KILN_REQUIRE_BACKENDS names "model".
set -uo pipefail
kiln=$1 mode=$2
text=/usr/share/common-licenses/GPL-3
[ -f "$text" ] || { echo "SKIP: $text missing (Debian base-files)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/err" ] && { echo "--- stderr"; cat "$tmp/err"; }; exit 1; }
# json_num FIELD < json: the number after "FIELD":
json_num() { grep -o "\"$1\":[-0-9.eE+]*" | head -1 | cut -d: -f2; }

if [ "$mode" = model ]; then
  required() { [[ ",${KILN_REQUIRE_BACKENDS:-}," == *",model,"* ]]; }
  model=${KILN_SMOLLM2:-}
  if [ -z "$model" ] || [ ! -f "$model" ]; then
    if required; then echo "FAIL: \$KILN_SMOLLM2 is required (scripts/fetch-model.sh) but not set or missing"; exit 1; fi
    echo "SKIP: \$KILN_SMOLLM2 not set (M=\$(bash scripts/fetch-model.sh))"; exit 77
  fi
  out=$("$kiln" perplexity -m "$model" -f "$text" --chunks 2 --json 2>"$tmp/err") || fail "exit $?"
  echo "$out"
  ppl=$(json_num ppl <<<"$out") scored=$(json_num tokens_scored <<<"$out") chunks=$(json_num chunks <<<"$out")
  [ "$chunks" = 2 ] && [ "$scored" = 510 ] || fail "chunks $chunks, tokens scored $scored (want 2, 510)"
  awk -v p="$ppl" 'BEGIN { exit !(p + 0 == p && p > 5 && p < 60) }' || fail "PPL '$ppl' is not in 5..60"
  exit 0
fi

"$kiln" synth --preset tiny --quant q4_0 -o "$tmp/tiny.gguf" >/dev/null 2>&1 || fail "kiln synth"
m=$tmp/tiny.gguf

# a good run: 2 chunks of 64, 31 tokens scored each
out=$("$kiln" perplexity -m "$m" -f "$text" --ctx 64 --chunks 2 --json 2>"$tmp/err") || fail "json run exit $?"
echo "$out"
[ "$(json_num chunks <<<"$out")" = 2 ] && [ "$(json_num tokens_scored <<<"$out")" = 62 ] &&
  [ "$(json_num tokens_evaluated <<<"$out")" = 126 ] || fail "counts in $out"
ppl=$(json_num ppl <<<"$out")
awk -v p="$ppl" 'BEGIN { exit !(p + 0 == p && p > 1 && p < 1e6) }' || fail "PPL '$ppl' not finite"
grep -q '"precision":"fast"' <<<"$out" || fail "default precision is not fast"
out=$("$kiln" perplexity -m "$m" -f "$text" --ctx 64 --chunks 1 --precision strict 2>"$tmp/err") || fail "text run exit $?"
echo "$out"
grep -qE '^PPL +[0-9.]+ ± [0-9.]+ +\(31 tokens scored' <<<"$out" || fail "no PPL line"
grep -q 'precision strict' <<<"$out" || fail "precision not reported"

# bad inputs: exit code and a message naming the problem
expect() { # CODE PATTERN ARGS...
  local code=$1 pat=$2
  shift 2
  "$kiln" perplexity "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ "$rc" = "$code" ] || fail "kiln perplexity $* exited $rc, want $code"
  grep -q -- "$pat" "$tmp/err" || fail "kiln perplexity $*: stderr lacks '$pat'"
  echo "ok: exit $rc for $*: $(grep -m1 -- "$pat" "$tmp/err")"
}
: >"$tmp/empty.txt"
printf 'A short text.' >"$tmp/short.txt"
expect 3 "$tmp/missing.txt: No such file" -m "$m" -f "$tmp/missing.txt"
expect 3 "missing.gguf" -m "$tmp/missing.gguf" -f "$text"
expect 2 "is empty" -m "$m" -f "$tmp/empty.txt"
expect 2 "one chunk needs 512" -m "$m" -f "$tmp/short.txt"
expect 2 "--ctx: '0' is not a whole number" -m "$m" -f "$text" --ctx 0
expect 2 "--ctx: '12x' is not a whole number" -m "$m" -f "$text" --ctx 12x
expect 2 "--chunks: '0' is not a whole number" -m "$m" -f "$text" --chunks 0
expect 2 "fast or strict" -m "$m" -f "$text" --precision bf16
expect 2 "are required" -m "$m"
expect 2 "unknown option '--temp'" -m "$m" -f "$text" --temp 0.5
exit 0
