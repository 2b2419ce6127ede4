#!/bin/bash
# tests/cli/ilv_model_gpu.sh KILN BACKEND - the real SmolLM2 ($KILN_SMOLLM2)
# on a gpu backend with databases whose gemv_int4 winners put the weights in
# other layouts: row-major (layout 1), 8-row tiles read one row per
# invocation (layout 3) and, on OpenCL, 4-row tiles read with vector types
# (layout 4). The engine repacks every matrix to its winner's layout at load
# (the -v log must say so), prefill's gemm and the tied embedding read the
# same buffers, and the greedy text must equal the run without a database
# (the device default: PoCL ilv 16, lavapipe row-major). The database is a
# `tune --model --kernel gemv_int4 --budget 1` (the default as winner per
# shape) whose winners' configs are then rewritten with sqlite3.
set -uo pipefail
kiln="$1"
dev="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
required() { [[ ",${KILN_REQUIRE_BACKENDS:-}," == *",$1,"* ]]; }

model="${KILN_SMOLLM2:-}"
if [ -z "$model" ] || [ ! -r "$model" ]; then
    required model && { echo "FAIL: KILN_SMOLLM2 is required but missing"; exit 1; }
    echo "SKIP: KILN_SMOLLM2 not set"; exit 77
fi
"$kiln" tune --device "$dev" --model "$model" --kernel gemv_int4 --budget 1 --patience 0 --db "$tmp/t.db" \
    >"$tmp/tune.out" 2>&1
rc=$?
if [ $rc -eq 3 ]; then
    cat "$tmp/tune.out"
    required "$dev" && { echo "FAIL: $dev is required but unavailable"; exit 1; }
    echo "SKIP: $dev unavailable"; exit 77
fi
[ $rc -eq 0 ] || { cat "$tmp/tune.out" >&2; echo "FAIL: tune exited $rc"; exit 1; }
n_win=$(sqlite3 "$tmp/t.db" "SELECT COUNT(*) FROM winners w JOIN kernels k ON k.id = w.kernel_id WHERE k.name = 'gemv_int4'")
[ "$n_win" -ge 5 ] || fail "only $n_win gemv_int4 winners after tune --model"

prompt="Write one sentence about the sea."
run() { # run DB OUT (DB empty: none)
    KILN_DB="${1:-/nonexistent}" "$kiln" run -m "$model" --device "$dev" -p "$prompt" -n 16 -v >"$2.txt" 2>"$2.log"
}
run "" "$tmp/default" || { cat "$tmp/default.log" >&2; fail "run without a db"; }
[ -s "$tmp/default.txt" ] || fail "run without a db printed nothing"

configs=('1:{"layout":1}' '8:{"layout":3,"ilv":8,"wg":32}')
[ "$dev" = opencl ] && configs+=('4:{"layout":4,"ilv":4,"wg":64}')
for entry in "${configs[@]}"; do
    ilv="${entry%%:*}"
    cfg="${entry#*:}"
    cp "$tmp/t.db" "$tmp/c.db"
    sqlite3 "$tmp/c.db" "UPDATE winners SET config_json = '$cfg' WHERE kernel_id = (SELECT id FROM kernels WHERE name = 'gemv_int4')"
    run "$tmp/c.db" "$tmp/c$ilv" || { cat "$tmp/c$ilv.log" >&2; fail "run with gemv winners $cfg"; continue; }
    # every gemv matrix (the stacked ones, the LM head tied to the embedding) in the winner's layout
    n_st=$(grep -c "stored in layout ilv $ilv (exact" "$tmp/c$ilv.log")
    n_other=$(grep "stored in layout ilv" "$tmp/c$ilv.log" | grep -vc "stored in layout ilv $ilv (exact")
    [ "$n_st" -ge 5 ] && [ "$n_other" -eq 0 ] ||
        fail "$cfg: $n_st matrices stored in layout ilv $ilv, $n_other otherwise: $(grep 'stored in layout' "$tmp/c$ilv.log")"
    grep -E "gemv_int4 .* (exact|tuned)" "$tmp/c$ilv.log" | grep -q "\"layout\":${cfg:10:1}" ||
        fail "$cfg: no gemv_int4 op ran the winner: $(grep 'gemv_int4 ' "$tmp/c$ilv.log" | head -3)"
    if cmp -s "$tmp/default.txt" "$tmp/c$ilv.txt"; then
        echo "$dev gemv winners $cfg: $n_st matrices in layout ilv $ilv, same text"
    else
        fail "$cfg: greedy text differs from the default's: '$(cat "$tmp/c$ilv.txt")' vs '$(cat "$tmp/default.txt")'"
    fi
done
[ $fails -eq 0 ] && echo "SmolLM2 on $dev: the same greedy text in every weight layout: $(head -c 80 "$tmp/default.txt")"
exit $((fails > 0))
