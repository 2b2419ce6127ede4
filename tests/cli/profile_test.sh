#!/usr/bin/env bash
# tests/cli/profile_test.sh KILN - `kiln run --profile` and `kiln bench model
# --profile` on a tiny synthetic model (cpu):
#   - the text generated is the same with and without --profile;
#   - the prefill and decode tables have every label of the forward pass;
#   - calls per step follow the model's structure (per layer: one of each
#     matrix, two norms, one attention, and in decode one rope (the Q and K
#     heads are adjacent after the stacked Q/K/V gemv; prefill: two); per step one embedding,
#     output and argmax), and prefill attention runs once per layer and token;
#   - per phase, the labels' times sum to at most the wall time, and labels +
#     host gaps + other add up to it (to the printed rounding).
# No assertion depends on how fast anything ran.
set -uo pipefail
kiln=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export KILN_DB="$tmp/none.db" # no tuning database: default configs, nothing written

"$kiln" synth --preset tiny -o "$tmp/tiny.gguf" >/dev/null 2>&1 || { echo "FAIL: synth exited $?"; exit 1; }
prompt="The quick brown fox jumps over the lazy dog, again and again, until the dog wakes up."
# --chunk 8: the prompt is prefilled in several chunks
"$kiln" run -m "$tmp/tiny.gguf" -p "$prompt" -n 12 --chunk 8 --profile >"$tmp/p.out" 2>"$tmp/p.err" ||
  fail "kiln run --profile exited $?"
"$kiln" run -m "$tmp/tiny.gguf" -p "$prompt" -n 12 --chunk 8 >"$tmp/plain.out" 2>/dev/null ||
  fail "kiln run exited $?"
cat "$tmp/p.err"
cmp -s "$tmp/p.out" "$tmp/plain.out" || fail "--profile changed the generated text"
grep -q 'serializes' "$tmp/p.err" || fail "the profile does not say that ops ran synchronously"

common="embed rmsnorm rope kv_append attention attn_out silu_mul ffn_down output argmax"
# a prefill chunk multiplies Q, K, V and gate, up one by one; a decode step
# runs the stacked matrices the model load builds (attn_qkv, ffn_gate_up)
prefill_labels="$common attn_q attn_k attn_v ffn_gate ffn_up"
decode_labels="$common attn_qkv ffn_gate_up"

# check_phase FILE PHASE: the table of PHASE ("prefill" or "decode") in FILE
check_phase() {
  local file=$1 phase=$2 table labels
  table=$(awk -v p="$phase" '$1 == p":" { on = 1; next } on && /^$/ { exit } on' "$file")
  [ -n "$table" ] || { fail "$phase: no table"; return; }
  if [ "$phase" = decode ]; then labels=$decode_labels; else labels=$prefill_labels; fi
  for l in $labels; do
    grep -Eq "^  $l +[0-9]" <<<"$table" || fail "$phase: no row for '$l'"
  done
  # labels' total ms (column 3) vs the wall's (column 2 of its row), with the
  # rounding of the printed values (0.0005 ms each)
  awk -v p="$phase" '
    /^  label / { next }
    /^  host between ops / { gap = $4; next }
    /^  other \(host, sampling, sync\) / { other = $5; next }
    /^  wall / { wall = $2; next }
    /^  launch\+sync/ { next }
    /^  [a-z_]+ +[0-9]/ { sum += $3; n++ }
    END {
      tol = 0.0005 * (n + 3)
      if (n == 0 || wall == "") { print p ": no rows or no wall"; exit 1 }
      printf "%s: %d labels sum to %.3f ms, host gaps %.3f, other %.3f, wall %.3f\n", p, n, sum, gap, other, wall
      if (sum > wall + tol) { print p ": labels sum to more than the wall time"; exit 1 }
      if (gap < -tol || other < -tol) { print p ": a negative gap or other"; exit 1 }
      d = sum + gap + other - wall
      if (d > tol || d < -tol) { print p ": labels + gaps + other differ from the wall by " d; exit 1 }
    }' <<<"$table" || fail "$phase: the times do not add up"
  # calls per unit of the structural labels
  calls() { awk -v l="$1" '$1 == l { print $2 }' <<<"$table"; }
  local L l
  if [ "$phase" = decode ]; then
    L=$(calls attn_qkv)
    for l in ffn_gate_up attn_out ffn_down silu_mul; do
      [ "$(calls "$l")" = "$L" ] || fail "$phase: $l calls $(calls "$l") per unit, attn_qkv $L"
    done
  else
    L=$(calls attn_q)
    for l in attn_k attn_v attn_out ffn_gate ffn_up ffn_down silu_mul; do
      [ "$(calls "$l")" = "$L" ] || fail "$phase: $l calls $(calls "$l") per unit, attn_q $L"
    done
  fi
  if [ "$phase" = decode ]; then
    awk -v r="$(calls rmsnorm)" -v ro="$(calls rope)" -v a="$(calls attention)" -v L="$L" \
        -v e="$(calls embed)" -v o="$(calls output)" -v m="$(calls argmax)" -v k="$(calls kv_append)" \
        'BEGIN { exit !(L >= 1 && r == 2 * L + 1 && ro == L && a == L && k == L && e == 1 && o == 1 && m == 1) }' ||
      fail "decode: calls per step do not match the model's structure"
  else
    # prefill: attention and kv_append once per layer and token
    read -r tokens chunks < <(awk '$1 == "prefill:" { print $2, $5 }' "$file")
    awk -v a="$(calls attention)" -v k="$(calls kv_append)" -v L="$L" -v t="$tokens" -v c="$chunks" \
        'BEGIN { want = L * t / c; d = a - want; d2 = k - want;
                 exit !(c > 1 && d < 0.01 && d > -0.01 && d2 < 0.01 && d2 > -0.01) }' ||
      fail "prefill: attention $(calls attention) and kv_append $(calls kv_append) per chunk, want $L x $tokens tokens / $chunks chunks (more than one chunk)"
  fi
}
check_phase "$tmp/p.err" prefill
check_phase "$tmp/p.err" decode

# bench model --profile: the table of the timed repetitions after the runs
"$kiln" bench model -m "$tmp/tiny.gguf" -p 16 -n 8 -r 2 --no-store --profile >"$tmp/b.out" 2>"$tmp/b.err" ||
  fail "kiln bench model --profile exited $?"
cat "$tmp/b.out" "$tmp/b.err"
grep -q "pp16_tok_s" "$tmp/b.out" || fail "bench model: no pp row"
check_phase "$tmp/b.err" decode
# 2 repetitions x 7 timed decode steps (the warm-up is not counted)
grep -Eq '^decode: 14 token\(s\) in 14 step\(s\)' "$tmp/b.err" || fail "bench model: the profile should hold the 14 timed decode steps"
[ "$fails" -eq 0 ] && echo PASS
