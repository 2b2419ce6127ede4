#!/usr/bin/env bash
# tests/cli/serve_model_test.sh KILN - `kiln serve` with the real SmolLM2
# model ($KILN_SMOLLM2) over HTTP (curl): a chat completion names Paris with
# usage and finish_reason; the next turn of the same conversation answers
# Rome, streamed as SSE chunks ending with [DONE], and reuses the KV cache
# of the first request (server log); /v1/completions; bad requests
# (temperature -1, malformed JSON, a bad stop) get 400. SKIP (77) without the
# model unless $KILN_REQUIRE_BACKENDS names "model".
# --precision strict: the answer is asserted (see tests/cli/chat_test.sh for why not fast)
set -uo pipefail
kiln=$1
required() { [[ ",${KILN_REQUIRE_BACKENDS:-}," == *",model,"* ]]; }
model=${KILN_SMOLLM2:-}
if [ -z "$model" ] || [ ! -f "$model" ]; then
  if required; then echo "FAIL: \$KILN_SMOLLM2 is required (scripts/fetch-model.sh) but not set or missing"; exit 1; fi
  echo "SKIP: \$KILN_SMOLLM2 not set (M=\$(bash scripts/fetch-model.sh))"; exit 77
fi
if ! command -v curl >/dev/null; then
  if required; then echo "FAIL: curl is needed"; exit 1; fi
  echo "SKIP: no curl"; exit 77
fi
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- server log"; cat "$dir/err"; exit 1; }

"$kiln" serve -m "$model" --precision strict --port 0 >"$dir/out" 2>"$dir/err" &
pid=$!
port=
for _ in $(seq 1 300); do
  port=$(grep -o 'http://127.0.0.1:[0-9]*' "$dir/out" 2>/dev/null | cut -d: -f3)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "kiln serve exited"
  sleep 0.2
done
[ -n "$port" ] || fail "kiln serve did not report its port"
url=http://127.0.0.1:$port
post() { curl -sS -m 120 -H 'Content-Type: application/json' -w '\n%{http_code}' "$url$1" -d "$2"; }

# 1. chat completion
r=$(post /v1/chat/completions '{"messages":[{"role":"user","content":"What is the capital of France?"}],"temperature":0,"max_tokens":32}')
echo "$r"
[ "$(tail -n1 <<<"$r")" = 200 ] || fail "chat: status"
body=$(head -n -1 <<<"$r")
grep -q 'Paris' <<<"$body" || fail "chat: no Paris"
grep -q '"finish_reason":"stop"' <<<"$body" || fail "chat: finish_reason"
grep -Eq '"prompt_tokens":[1-9][0-9]*,"completion_tokens":[1-9]' <<<"$body" || fail "chat: usage"
answer=$(sed -n 's/.*"content":"\([^"]*\)".*/\1/p' <<<"$body")

# 2. the next turn, streamed: Rome, SSE chunks, [DONE], the cache reused
r=$(curl -sS -N -m 120 -H 'Content-Type: application/json' "$url/v1/chat/completions" -d \
  '{"messages":[{"role":"user","content":"What is the capital of France?"},{"role":"assistant","content":"'"$answer"'"},{"role":"user","content":"And of Italy?"}],"temperature":0,"max_tokens":32,"stream":true}')
echo "$r" | grep -v '^$' | head -3; echo ...; echo "$r" | grep -v '^$' | tail -2
[ "$(grep -c '^data: {' <<<"$r")" -ge 3 ] || fail "stream: expected several data: chunks"
[ "$(grep -v '^$' <<<"$r" | tail -n1)" = "data: [DONE]" ] || fail "stream: does not end with data: [DONE]"
grep -o '"content":"[^"]*"' <<<"$r" | tr -d '\n' | grep -q 'Rome' || fail "stream: no Rome (context lost?)"
grep -q '"finish_reason":"stop"' <<<"$r" || fail "stream: no finish_reason"
grep 'request 2:' "$dir/err"
reused=$(grep 'request 2:' "$dir/err" | sed -n 's/.*(\([0-9]*\) reused.*/\1/p')
[ "${reused:-0}" -ge 30 ] || fail "request 2 should reuse the first request's KV cache (reused ${reused:-?})"

# 3. completions
r=$(post /v1/completions '{"prompt":"The capital of France is","max_tokens":4,"temperature":0}')
echo "$r"
[ "$(tail -n1 <<<"$r")" = 200 ] || fail "completions: status"
grep -q '"text":"[^"]*Paris' <<<"$r" || fail "completions: no Paris"
grep -q '"finish_reason":"\(stop\|length\)"' <<<"$r" || fail "completions: finish_reason"

# 4. bad requests: 400 with a message
for bad in '{"messages":[{"role":"user","content":"hi"}],"temperature":-1}' \
           '{"messages":[{"role":"user","content":"hi"}' \
           '{"messages":[{"role":"user","content":"hi"}],"top_p":2}' \
           '{"messages":[{"role":"user","content":"hi"}],"stop":5}'; do
  r=$(post /v1/chat/completions "$bad")
  echo "$r" | tr '\n' ' '; echo
  [ "$(tail -n1 <<<"$r")" = 400 ] || fail "bad request not 400: $bad"
  grep -q '"message":"[^"]' <<<"$r" || fail "400 without a message: $bad"
done
# the server still answers after the bad ones
r=$(post /v1/completions '{"prompt":"Hello","max_tokens":2,"temperature":0}')
[ "$(tail -n1 <<<"$r")" = 200 ] || fail "server broken after bad requests"
echo "PASS"
