#!/bin/bash
# tests/cli/gemv_ilv_gpu.sh KILN BACKEND - gemv_int4 over interleaved
# weights on a gpu backend (layout 3: one invocation per row of a tile of
# ilv rows; layout 4, OpenCL only: one work-item per tile with vector types)
# and gemm_int4 reading the same layouts (the engine repacks a matrix for
# gemv's winner and prefill's gemm multiplies it as stored). Every trial of
# `tune --config` is verified against the reference before it is timed; the
# shapes hit each edge: M not a multiple of the tile (zero padding rows, not
# stored), K not a multiple of the group (the element-by-element tail),
# group 128, every int4/q8 weight format. f16 matrices stay row-major, so an
# ilv config is "invalid" on f16 (checked too); every other trial must be ok.
set -uo pipefail
kiln="$1"
dev="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

configs=('{"layout":3,"ilv":4,"wg":64}' '{"layout":3,"ilv":8,"wg":32}' '{"layout":3,"ilv":16,"wg":128}')
[ "$dev" = opencl ] && configs+=('{"layout":4,"ilv":4,"wg":32}' '{"layout":4,"ilv":8,"wg":64}'
                                 '{"layout":4,"ilv":16,"wg":32}')
shapes=(m=77,k=200,quant=q4_1,group=32 m=37,k=200,quant=q4_0,group=32 m=129,k=1000,quant=q8_0,group=32
        m=101,k=4000,quant=q4f16_1,group=128 m=333,k=136,quant=q8_0,group=128 m=3,k=37,quant=q4_1,group=32
        m=19,k=80,quant=f16)
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
[ $rc -eq 0 ] || { cat "$tmp/tune.out" >&2; fail "gemv tune exited $rc"; }
# trial lines: "  STATUS  gemv_int4 SHAPE {config}  TIME us  [why]"
grep -E '^  [a-z_]+ +gemv_int4 .*"layout":[34]' "$tmp/tune.out" >"$tmp/ilv"
n_ok=$(grep -cE '^  ok ' "$tmp/ilv")
bad=$(grep -vE '^  (ok|invalid) ' "$tmp/ilv")
[ -z "$bad" ] || fail "ilv trials not ok: $bad"
grep -E '^  invalid ' "$tmp/ilv" | grep -vE 'm19\.k80\.f16' && fail "unexpected invalid ilv trials"
want=$(( (${#shapes[@]} - 1) * ${#configs[@]} ))
[ "$n_ok" -ge "$want" ] || fail "only $n_ok ilv gemv trials verified ok (want >= $want)"
cut -c1-170 "$tmp/ilv"

# gemm over the same layouts: both gpu layouts, odd M, K and N
gshapes=(m=77,k=200,n=5,quant=q4_1,group=32,ilv=16 m=333,k=136,n=11,quant=q4_0,group=32,ilv=4
         m=129,k=1000,n=3,quant=q8_0,group=32,ilv=8 m=101,k=4000,n=2,quant=q4f16_1,group=128,ilv=16)
gconfigs=('{"layout":1,"tokens":2}' '{"layout":0,"rows":2,"vec":2,"wg":64,"tokens":2}' '{"layout":0}' '{"layout":1}')
args=()
for s in "${gshapes[@]}"; do args+=(--shape "$s"); done
for c in "${gconfigs[@]}"; do args+=(--config "$c"); done
"$kiln" tune --device "$dev" --kernel gemm_int4 "${args[@]}" --budget $((${#gconfigs[@]} + 1)) --patience 0 \
    --db "$tmp/g.db" -v >"$tmp/gtune.out" 2>&1
rc=$?
[ $rc -eq 0 ] || { cat "$tmp/gtune.out" >&2; fail "gemm tune exited $rc"; }
grep -E '^  [a-z_]+ +gemm_int4 .*\.ilv' "$tmp/gtune.out" >"$tmp/g"
g_ok=$(grep -cE '^  ok ' "$tmp/g")
bad=$(grep -vE '^  ok ' "$tmp/g")
[ -z "$bad" ] || fail "ilv gemm trials not ok: $bad"
# the default is one of the --config ones on some backends: at least 3 distinct per shape
[ "$g_ok" -ge $((3 * ${#gshapes[@]})) ] || fail "only $g_ok ilv gemm trials verified ok"
cut -c1-150 "$tmp/g"
[ $fails -eq 0 ] && echo "interleaved layouts on $dev: $n_ok gemv and $g_ok gemm trials verified ok"
exit $((fails > 0))
