#!/bin/bash
# tests/cli/tune_config.sh KILN BACKEND - tune --config: the given configs are
# measured right after the device's default and before the strategy's own
# picks, inside the budget; a config outside the space, or --config with
# more than one kernel, is a usage error (exit 2) that names the config.
#
# On PoCL/lavapipe the device default of gemv_int4 is layout 1 / 2 (whole
# rows per invocation), so layout 0 configs are the ones a user would ask for.
set -uo pipefail
kiln="$1"
dev="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
shape="m=256,k=320,quant=q4_1,group=32"
a='{"layout":0,"wg":32,"rows":2}'
b='{"layout":0,"wg":128,"unroll":2}'

"$kiln" tune --device "$dev" --kernel gemv_int4 --shape "$shape" --config "$a" --config "$b" --budget 5 \
    --db "$tmp/t.db" -v >"$tmp/tune.out" 2>&1
rc=$?
if [ $rc -eq 3 ]; then # the backend is unavailable: a skip, unless it is required
    cat "$tmp/tune.out"
    if [[ ",${KILN_REQUIRE_BACKENDS:-}," == *",$dev,"* ]]; then echo "FAIL: $dev is required but unavailable"; exit 1; fi
    echo "SKIP: $dev unavailable"; exit 77
fi
[ $rc -eq 0 ] || { cat "$tmp/tune.out" >&2; fail "tune exited $rc"; }
cat "$tmp/tune.out"
# trial lines: "  ok  gemv_int4 SHAPE {config}  TIME us"
grep -E '^  [a-z]+ +gemv_int4 ' "$tmp/tune.out" | sed -E 's/.*(\{[^}]*\}).*/\1/' >"$tmp/trials"
[ "$(wc -l <"$tmp/trials")" -eq 5 ] || fail "$(wc -l <"$tmp/trials") trials listed, budget 5"
sed -n 2p "$tmp/trials" | grep -q '"wg":32,"rows":2,.*"layout":0' || fail "trial 2 is not the first --config: $(sed -n 2p "$tmp/trials")"
sed -n 3p "$tmp/trials" | grep -q '"wg":128,.*"unroll":2,.*"layout":0' || fail "trial 3 is not the second --config: $(sed -n 3p "$tmp/trials")"
grep -E '^  ok +gemv_int4 ' "$tmp/tune.out" | grep -q '"wg":32,"rows":2,' || fail "the first --config was not verified ok"

"$kiln" tune --device "$dev" --kernel gemv_int4 --shape "$shape" --config '{"layout":7}' --budget 3 \
    --db "$tmp/t.db" >"$tmp/bad.out" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "a config outside the space exited $rc, want 2"
grep -q 'config {"layout":7}' "$tmp/bad.out" || fail "the error does not name the config: $(cat "$tmp/bad.out")"

"$kiln" tune --device "$dev" --kernel gemv_int4 --kernel rmsnorm --config "$a" --db "$tmp/t.db" >"$tmp/two.out" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "--config with two kernels exited $rc, want 2"
grep -q "exactly one --kernel" "$tmp/two.out" || fail "no reason for the two-kernel usage error: $(cat "$tmp/two.out")"

[ $fails -eq 0 ] && echo "tune --config on $dev: ok"
exit $((fails > 0))
