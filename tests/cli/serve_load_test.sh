#!/usr/bin/env bash
# tests/cli/serve_load_test.sh KILN PARALLEL - `kiln serve` with the real
# SmolLM2 ($KILN_SMOLLM2) under concurrent clients (curl), PARALLEL = the
# --parallel batch size (1: the serial engine):
#  1. 8 concurrent greedy requests all succeed with the same text as each
#     gets alone (usage and finish_reason in each);
#  2. an abandoned non-stream request (the client gives up) stops
#     generating: the metrics count it cancelled and their live token count
#     stops growing;
#  3. /metrics has the request, token, TTFT and queue/batch/KV series (and
#     with PARALLEL > 1 the prefix cache's, with hits from part 1's repeats);
# and with PARALLEL > 1, KV exhaustion: 503 with Retry-After while other
# requests finish with the right text.
# SKIP (77) without the model unless $KILN_REQUIRE_BACKENDS names "model".
# --precision strict: greedy text is compared exactly (see chat_test.sh).
set -uo pipefail
kiln=$1
parallel=${2:-1}
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
fail() { echo "FAIL: $*"; echo "--- server log (tail)"; tail -n 40 "$dir/err"; exit 1; }

extra=()
# pages of 16 tokens (the default is 64) so that the 36-token chat prompts below span whole pages the prefix
# cache can keep
[ "$parallel" -gt 1 ] && extra=(--parallel "$parallel" --page-size 16)
"$kiln" serve -m "$model" --precision strict --port 0 "${extra[@]}" >"$dir/out" 2>"$dir/err" &
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
metric() { curl -sS -m 30 "$url/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }

# 1. each prompt alone, then all 8 at once: the same greedy text
topics=(rivers volcanoes bread owls trains chess rain copper)
body() { echo '{"messages":[{"role":"user","content":"Write two sentences about '"$1"'."}],"temperature":0,"max_tokens":24}'; }
content() { sed -n 's/.*"content":"\(\([^"\\]\|\\.\)*\)".*/\1/p' "$1"; }
for i in "${!topics[@]}"; do
  curl -sS -m 300 -o "$dir/alone$i" -w '%{http_code}' -H 'Content-Type: application/json' \
    "$url/v1/chat/completions" -d "$(body "${topics[$i]}")" >"$dir/alone$i.st" || fail "alone $i: curl failed"
  [ "$(cat "$dir/alone$i.st")" = 200 ] || fail "alone $i: status $(cat "$dir/alone$i.st"): $(cat "$dir/alone$i")"
done
for i in "${!topics[@]}"; do
  curl -sS -m 600 -o "$dir/conc$i" -w '%{http_code}' -H 'Content-Type: application/json' \
    "$url/v1/chat/completions" -d "$(body "${topics[$i]}")" >"$dir/conc$i.st" &
done
for j in $(jobs -p); do [ "$j" = "$pid" ] || wait "$j"; done
for i in "${!topics[@]}"; do
  [ "$(cat "$dir/conc$i.st")" = 200 ] || fail "concurrent $i: status $(cat "$dir/conc$i.st"): $(cat "$dir/conc$i")"
  a=$(content "$dir/alone$i"); c=$(content "$dir/conc$i")
  [ -n "$a" ] || fail "alone $i: no content: $(cat "$dir/alone$i")"
  [ "$a" = "$c" ] || fail "concurrent $i differs from alone:
  alone:      $a
  concurrent: $c"
  grep -Eq '"finish_reason":"(stop|length)"' "$dir/conc$i" || fail "concurrent $i: finish_reason"
  grep -Eq '"prompt_tokens":[1-9][0-9]*,"completion_tokens":[1-9]' "$dir/conc$i" || fail "concurrent $i: usage"
  echo "client $i: $c"
done
echo "8 concurrent requests: same greedy text as alone"

# 1b. (batch) KV exhaustion: while a streamed request holds most of the KV cache (its prompt +
# max_tokens are promised to it), one whose worst case does not fit what is left gets 503 with
# Retry-After, and a small one still runs and gives the same text as alone; the stream's client
# then goes away and its request is cancelled
if [ "$parallel" -gt 1 ]; then
  c0=$(metric kiln_requests_cancelled_total)
  curl -sS -N -m 600 -o "$dir/hog" -H 'Content-Type: application/json' "$url/v1/completions" \
    -d '{"prompt":"1, 2, 3, 4, 5, 6, 7,","max_tokens":3000,"temperature":0,"stream":true}' 2>/dev/null &
  hog=$!
  for _ in $(seq 1 600); do grep -q '^data: {' "$dir/hog" 2>/dev/null && break; sleep 0.1; done
  grep -q '^data: {' "$dir/hog" || fail "the KV-holding stream did not start"
  r=$(curl -sS -i -m 60 -H 'Content-Type: application/json' "$url/v1/completions" \
    -d '{"prompt":"Tell me a story.","max_tokens":2000,"temperature":0}')
  head -n1 <<<"$r" | grep -q ' 503' || fail "KV exhaustion: want 503, got: $r"
  grep -qi '^Retry-After: [0-9]' <<<"$r" || fail "KV exhaustion: no Retry-After: $r"
  grep -q 'KV cache is exhausted' <<<"$r" || fail "KV exhaustion: the message does not say why: $r"
  echo "KV exhaustion: $(tail -n1 <<<"$r")"
  curl -sS -m 300 -o "$dir/small" -H 'Content-Type: application/json' "$url/v1/chat/completions" \
    -d "$(body "${topics[0]}")" || fail "small request beside the KV-holding one failed"
  [ "$(content "$dir/small")" = "$(content "$dir/alone0")" ] || fail "small request beside the KV-holding one: \
$(cat "$dir/small")"
  kill "$hog" 2>/dev/null; wait "$hog" 2>/dev/null
  for _ in $(seq 1 300); do [ "$(metric kiln_requests_cancelled_total)" -gt "${c0:-0}" ] && break; sleep 0.1; done
  [ "$(metric kiln_requests_cancelled_total)" -gt "${c0:-0}" ] || fail "the abandoned stream was not cancelled"
  echo "KV exhaustion: 503 with Retry-After; the small request beside it gave the same text; the stream was cancelled"
fi

# 2. an abandoned non-stream request stops generating
before=$(metric kiln_requests_cancelled_total)
curl -sS -m 2 -o /dev/null -H 'Content-Type: application/json' "$url/v1/completions" \
  -d '{"prompt":"1, 2, 3, 4, 5, 6, 7,","max_tokens":3000,"temperature":0}' 2>/dev/null
cancelled=
for _ in $(seq 1 300); do
  cancelled=$(metric kiln_requests_cancelled_total)
  [ "${cancelled:-0}" -gt "${before:-0}" ] && break
  sleep 0.1
done
[ "${cancelled:-0}" -gt "${before:-0}" ] || fail "the abandoned request was not cancelled (cancelled ${cancelled:-?})"
for _ in $(seq 1 300); do [ "$(metric kiln_running_batch_size)" = 0 ] && break; sleep 0.1; done
[ "$(metric kiln_running_batch_size)" = 0 ] || fail "a request still runs after the cancel"
g1=$(metric kiln_generated_tokens_total); sleep 1; g2=$(metric kiln_generated_tokens_total)
[ "$g1" = "$g2" ] || fail "tokens still generated after the client left ($g1 -> $g2)"
echo "abandoned request cancelled; generated tokens stay at $g2"

# 3. the metrics series
m=$(curl -sS -m 30 "$url/metrics")
for s in 'kiln_requests_total{status="200"}' kiln_prompt_tokens_total kiln_completion_tokens_total \
         'kiln_time_to_first_token_seconds_bucket{le="+Inf"}' kiln_prefill_tokens_per_second_count \
         kiln_decode_tokens_per_second_count kiln_queue_depth kiln_running_batch_size; do
  grep -qF "$s" <<<"$m" || fail "/metrics lacks '$s'"
done
if [ "$parallel" -gt 1 ]; then
  grep -q '^kiln_kv_pages_used ' <<<"$m" || fail "/metrics lacks kiln_kv_pages_used"
  grep -q '^kiln_kv_pages_free ' <<<"$m" || fail "/metrics lacks kiln_kv_pages_free"
  # the prefix cache (on by default): the requests above repeat prompts (alone, then together), so some reused
  # cached pages, and the same text came back either way (part 1)
  for s in kiln_prefix_cache_pages kiln_prefix_cache_evictions_total; do
    grep -q "^$s " <<<"$m" || fail "/metrics lacks $s"
  done
  hits=$(metric kiln_prefix_cache_hits_total); reused=$(metric kiln_prefix_cache_tokens_reused_total)
  [ "${hits:-0}" -gt 0 ] && [ "${reused:-0}" -gt 0 ] ||
    fail "the prefix cache was never hit (hits ${hits:-?}, tokens reused ${reused:-?})"
  echo "prefix cache: $hits requests reused $reused cached prompt tokens"
fi
echo "PASS"
