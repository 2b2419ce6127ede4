#!/usr/bin/env bash
# tests/engine/batch_tuned.sh KILN BATCH_TEST [strict|fast] - batching does
# not change greedy tokens with TUNED configs either: tune the cpu for
# SmolLM2 ($KILN_SMOLLM2; a short budget, the winners only have to differ
# from the defaults somewhere) at that precision (default strict), then
# batch_test's SmolLM2 comparison (8 prompts alone vs 8 at once through the
# scheduler) reading that database at the same precision. fast: the int8
# kernels (interleaved layouts, the gemv alone, the int8 gemm batched). SKIP
# (77) without the model unless $KILN_REQUIRE_BACKENDS names "model".
set -uo pipefail
kiln=$1 batch_test=$2 precision=${3:-strict}
case $precision in strict|fast) ;; *) echo "batch_tuned.sh: precision must be strict or fast, not $precision"; exit 2 ;; esac
required() { [[ ",${KILN_REQUIRE_BACKENDS:-}," == *",model,"* ]]; }
model=${KILN_SMOLLM2:-}
if [ -z "$model" ] || [ ! -f "$model" ]; then
  if required; then echo "FAIL: \$KILN_SMOLLM2 is required (scripts/fetch-model.sh) but not set or missing"; exit 1; fi
  echo "SKIP: \$KILN_SMOLLM2 not set (M=\$(bash scripts/fetch-model.sh))"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
db=$tmp/tuned.db
tune() {
  if ! "$kiln" tune --device cpu --model "$model" --precision "$precision" --budget 6 --patience 3 "$@" \
      --db "$db" >>"$tmp/tune.log" 2>&1; then
    echo "FAIL: kiln tune --model SmolLM2 $* failed:"; tail -20 "$tmp/tune.log"; exit 1
  fi
}
if [ "$precision" = fast ]; then
  # the gemv first, an int8 config in an interleaved layout measured first (so that winners put matrices
  # in tiles; --config needs one --kernel), then the gemm at the layouts those winners chose
  tune --kernel gemv_int4 --config '{"act":1,"ilv":8,"rows":8}'
  tune --kernel gemm_int4
else
  tune
fi
# the comparison is only worth something if some winner is not the default
n_tuned=$("$kiln" db --db "$db" show 2>/dev/null | grep -c 'cpu:' || true)
n_changed=$("$kiln" db --db "$db" show 2>/dev/null | grep 'cpu:' | grep -vc ' tie ' || true)
echo "tuned database: $n_tuned winners, $n_changed not ties with the default"
if [ "${n_tuned:-0}" -lt 1 ]; then echo "FAIL: no winners stored in $db"; cat "$tmp/tune.log"; exit 1; fi
if [ "$precision" = fast ]; then
  n_int8=$("$kiln" db --db "$db" show 2>/dev/null | grep 'gemv_int4' | grep -c '"act":1' || true)
  echo "int8 gemv winners: $n_int8"
  if [ "${n_int8:-0}" -lt 1 ]; then echo "FAIL: no int8 gemv winner in $db: the fast comparison would test f32 only"; exit 1; fi
fi
BATCH_PRECISION=$precision BATCH_DB=$db "$batch_test" smollm2 cpu
