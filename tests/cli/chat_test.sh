#!/usr/bin/env bash
# tests/cli/chat_test.sh KILN - `kiln chat` with the real SmolLM2 model
# ($KILN_SMOLLM2): two turns piped in, greedy. Checks that the first answer
# names Paris, that the second ("And of Italy?") names Rome (the context was
# kept), that the second turn prefilled only its new tokens on top of the
# cached conversation, that the cache equals the whole conversation tokenized
# afresh (--verbose), and that a full KV cache is reported with /reset offered
# and /reset recovers. SKIP (77) without the model unless
# $KILN_REQUIRE_BACKENDS names "model".
# --precision strict: the answers are asserted word for word, and the int8
# activations of the default (fast) flip SmolLM2's first token on this chat
# prompt to "L'Étoile, la Marseillaise, ...", exactly what llama.cpp's CPU
# backend (q8 activations) answers too; fast's contract is perplexity
# (tests/cli/fast_precision.sh, bench/results/perplexity.md).
set -uo pipefail
kiln=$1
required() { [[ ",${KILN_REQUIRE_BACKENDS:-}," == *",model,"* ]]; }
model=${KILN_SMOLLM2:-}
if [ -z "$model" ] || [ ! -f "$model" ]; then
  if required; then echo "FAIL: \$KILN_SMOLLM2 is required (scripts/fetch-model.sh) but not set or missing"; exit 1; fi
  echo "SKIP: \$KILN_SMOLLM2 not set (M=\$(bash scripts/fetch-model.sh))"; exit 77
fi
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
fail() { echo "FAIL: $*"; echo "--- stdout"; cat "$out"; echo "--- stderr"; grep -v '^kiln: [a-z_]* ' "$err"; exit 1; }

# 1. two turns, context kept
printf 'What is the capital of France?\nAnd of Italy?\n/stats\n' |
  "$kiln" chat -m "$model" --precision strict --temp 0 -n 48 --verbose >"$out" 2>"$err" || fail "kiln chat exited $?"
cat "$out"; grep '^\[prefill\|^kiln chat:' "$err"
mapfile -t lines <"$out"
[ "${#lines[@]}" -ge 2 ] || fail "expected two reply lines"
grep -q 'Paris' <<<"${lines[0]}" || fail "first answer does not mention Paris"
grep -q 'Rome' <<<"${lines[1]}" || fail "second answer does not mention Rome (context lost?)"
mapfile -t st < <(grep -o '^\[prefill [0-9]* new tokens, cache [0-9]* -> [0-9]*' "$err" | tr -dc '0-9 \n' | tr -s ' ')
[ "${#st[@]}" -eq 2 ] || fail "expected two stats lines"
read -r n1 c1a c1b <<<"${st[0]}"
read -r n2 c2a c2b <<<"${st[1]}"
echo "turn 1: prefill $n1 new tokens, cache $c1a -> $c1b; turn 2: prefill $n2 new tokens, cache $c2a -> $c2b"
[ "$c1a" -eq 0 ] || fail "turn 1 should start with an empty cache"
[ "$c2a" -eq "$c1b" ] || fail "turn 2 should start from turn 1's cache ($c1b), got $c2a"
[ "$n2" -lt 20 ] && [ $((n2 * 2)) -lt "$c2a" ] || fail "turn 2 prefilled $n2 tokens on a cache of $c2a: not only the new ones"
# the cache is exactly the conversation as the template renders it
grep 'cache holds' "$err" | awk '{ if ($5 != $NF) bad = 1 } END { exit bad }' || fail "cache differs from the conversation tokenized afresh"
grep -q "2 turn(s), 5 messages, cache $c2b of" "$err" || fail "/stats does not report the cache"

# 2. a small KV cache: the overflow is reported, /reset recovers
printf 'What is the capital of France?\nAnd of Italy?\nAnd of Spain?\n/reset\nWhat is the capital of France?\n' |
  "$kiln" chat -m "$model" --precision strict --temp 0 -n 48 --ctx 64 >"$out" 2>"$err" || fail "kiln chat --ctx 64 exited $?"
grep -q 'KV cache is full.*/reset' "$err" || fail "no 'KV cache is full ... /reset' message"
grep -q 'conversation reset' "$err" || fail "/reset not acknowledged"
[ "$(grep -c Paris "$out")" -ge 2 ] || fail "after /reset the first question should be answered again"
echo "PASS"
