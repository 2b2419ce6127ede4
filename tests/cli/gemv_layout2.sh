#!/bin/bash
# tests/cli/gemv_layout2.sh KILN BACKEND - gemv_int4 layout 2 (an invocation
# owns `rows` rows, `vec`-word loads; on Vulkan also x through subgroup
# broadcasts and 64-bit weight loads) verified against the reference by
# `tune --config` (every trial is checked before it is timed) at shapes
# that hit each edge: K not a multiple of the group (the element-by-element
# tail), M not a multiple of rows x wg (rows past M), group 128, every weight
# format. A config the device refuses (no fixed subgroup of 8, no
# shaderInt64) is "invalid" and is not counted; every other one must be ok.
set -uo pipefail
kiln="$1"
dev="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

configs=('{"layout":2,"rows":8,"vec":4,"wg":32}' '{"layout":2,"rows":2,"vec":2,"wg":64}' '{"layout":2,"rows":4,"vec":1,"wg":32}')
[ "$dev" = vulkan ] && configs+=('{"layout":2,"rows":8,"vec":4,"wg":32,"xsg":8,"w64":1}' '{"layout":2,"rows":1,"vec":2,"wg":32,"xsg":8}')
shapes=(m=77,k=200,quant=q4_1,group=32 m=37,k=200,quant=q4_0,group=32 m=129,k=1000,quant=q8_0,group=32
        m=101,k=4000,quant=q4f16_1,group=128 m=19,k=80,quant=f16 m=21,k=78,quant=f16)
args=()
for s in "${shapes[@]}"; do args+=(--shape "$s"); done
for c in "${configs[@]}"; do args+=(--config "$c"); done

"$kiln" tune --device "$dev" --kernel gemv_int4 "${args[@]}" --budget $((${#configs[@]} + 1)) --patience 0 \
    --db "$tmp/t.db" -v >"$tmp/tune.out" 2>&1
rc=$?
if [ $rc -eq 3 ]; then
    cat "$tmp/tune.out"
    if [[ ",${KILN_REQUIRE_BACKENDS:-}," == *",$dev,"* ]]; then echo "FAIL: $dev is required but unavailable"; exit 1; fi
    echo "SKIP: $dev unavailable"; exit 77
fi
[ $rc -eq 0 ] || { cat "$tmp/tune.out" >&2; fail "tune exited $rc"; }
# trial lines: "  STATUS  gemv_int4 SHAPE {config}  TIME us  [why]"
grep -E '^  [a-z_]+ +gemv_int4 .*"layout":2' "$tmp/tune.out" >"$tmp/l2"
n_ok=$(grep -cE '^  ok ' "$tmp/l2")
bad=$(grep -vE '^  (ok|invalid) ' "$tmp/l2")
[ -z "$bad" ] || fail "layout 2 trials not ok: $bad"
# invalid only where the shape or device refuses: f16 with 39 words and vec 2 or 4, or a Vulkan feature
grep -E '^  invalid ' "$tmp/l2" | grep -vE 'm21\.k78\.f16|xsg|w64' && fail "unexpected invalid layout 2 trials"
want=$(( ${#shapes[@]} * ${#configs[@]} / 2 ))
[ "$n_ok" -ge "$want" ] || fail "only $n_ok layout 2 trials verified ok (want >= $want)"
cat "$tmp/l2" | cut -c1-160
[ $fails -eq 0 ] && echo "gemv_int4 layout 2 on $dev: $n_ok trials verified ok"
exit $((fails > 0))
