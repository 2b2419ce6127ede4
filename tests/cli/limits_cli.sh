#!/bin/bash
# tests/cli/limits_cli.sh KILN BACKEND - a phone GPU's limits on the devices
# at hand (--limits FILE|adreno-7xx|mali-g7x, $KILN_LIMITS; devices/limits.h):
#   - a missing file and a malformed one are usage errors naming file:line;
#   - `kiln devices` shows the lowered limits and the tagged name;
#   - `kiln check` under the Mali-G7x profile and under a tighter file runs
#     only configs within them (workgroup, shared memory, subgroup multiple)
#     and every one it runs verifies;
#   - `tune` under $KILN_LIMITS tries only configs within the limits, and
#     stores its winner under the tagged device name, apart from the device.
# BACKEND is opencl (PoCL) or vulkan (lavapipe); SKIP (77) when unavailable.
set -uo pipefail
kiln=$1 dev=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
for t in jq sqlite3; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed (scripts/install-deps.sh)"; exit 77; }
done
"$kiln" devices --available 2>/dev/null | grep -qx "$dev:0" || {
    if [[ ",${KILN_REQUIRE_BACKENDS:-}," == *",$dev,"* ]]; then echo "FAIL: $dev is required but unavailable"; exit 1; fi
    echo "SKIP: $dev unavailable"; exit 77; }
export KILN_CPU_THREADS=1

# 1. bad limits: usage errors that say where
"$kiln" devices --no-bandwidth --limits "$tmp/none.limits" >"$tmp/out" 2>&1; rc=$?
[[ $rc -eq 2 ]] || fail "a missing limits file exited $rc, want 2"
grep -q "not a profile (adreno-7xx, mali-g7x)" "$tmp/out" || fail "no reason for the missing file: $(cat "$tmp/out")"
printf 'name = bad\nmax_workgroup = lots\n' >"$tmp/bad.limits"
"$kiln" devices --no-bandwidth --limits "$tmp/bad.limits" >"$tmp/out" 2>&1; rc=$?
[[ $rc -eq 2 ]] || fail "a malformed limits file exited $rc, want 2"
grep -q "bad.limits:2: max_workgroup = 'lots'" "$tmp/out" || fail "the error does not name file:line: $(cat "$tmp/out")"
printf 'colour = blue\n' >"$tmp/bad2.limits"
KILN_LIMITS=$tmp/bad2.limits "$kiln" tune --device "$dev" --kernel rmsnorm --budget 1 --db "$tmp/x.db" >"$tmp/out" 2>&1
rc=$?
[[ $rc -eq 2 ]] || fail "a bad \$KILN_LIMITS exited $rc, want 2"
grep -q "unknown key 'colour'" "$tmp/out" || fail "no reason for the bad \$KILN_LIMITS: $(cat "$tmp/out")"

# 2. kiln devices shows what the kernels will see
"$kiln" devices --no-bandwidth --limits mali-g7x >"$tmp/devices" 2>&1 || fail "kiln devices --limits mali-g7x exited $?"
block=$(awk -v d="$dev:0 " 'index($0, d) == 1 {on = 1; print; next} /^[a-z]+:[0-9]+ / {on = 0} on' "$tmp/devices")
echo "$block"
grep -q "\[limits mali-g7x\]" <<<"$block" || fail "the $dev device is not tagged [limits mali-g7x]"
wg=$(grep -o 'max workgroup [0-9]*' <<<"$block" | grep -o '[0-9]*$')
[[ -n $wg && $wg -le 512 ]] || fail "max workgroup under mali-g7x is '$wg', want <= 512"
sg=$(grep -o 'subgroup [0-9]*' <<<"$block" | head -1 | grep -o '[0-9]*$')
[[ -n $sg && $((sg % 16)) -eq 0 ]] || fail "subgroup under mali-g7x is '$sg', want a multiple of 16"

# every config line of a check/tune output within (max wg, shared bytes, subgroup)
# gemv_int4's shared memory: rows x wg x 4 bytes (layout 0); reduce 1 needs wg % subgroup == 0
within() { # FILE MAXWG MAXSHARED SG WHAT
    local n=0 bad=0 wg rows reduce layout
    while read -r wg rows reduce layout; do
        n=$((n + 1))
        if [[ $wg -gt $2 ]] || { [[ $layout -eq 0 ]] && [[ $((rows * wg * 4)) -gt $3 ]]; } ||
            { [[ $reduce -eq 1 ]] && [[ $((wg % $4)) -ne 0 ]]; }; then
            echo "  outside the limits: wg $wg rows $rows reduce $reduce layout $layout"
            bad=$((bad + 1))
        fi
    done < <(jq -r '"\(.wg) \(.rows) \(.reduce) \(.layout)"' "$1")
    echo "$5: $n configs, $bad outside the limits"
    [[ $n -ge 3 ]] || fail "$5: only $n configs ran (want >= 3)"
    [[ $bad -eq 0 ]] || fail "$5: $bad configs outside the limits"
}

# 3. kiln check under the Mali profile, and under a tighter file
check_configs() { # OUT -> configs of the ok lines
    grep -E "^  ok +$dev:0 gemv_int4 " "$1" | grep -o '{[^}]*}'
}
shapes=(--shape "m=256,k=256,quant=q4_0,group=32" --shape "m=96,k=320,quant=q4_1,group=32")
"$kiln" check --device "$dev" --kernel gemv_int4 "${shapes[@]}" --random 8 -v --limits mali-g7x >"$tmp/check1" 2>&1 ||
    { tail -20 "$tmp/check1"; fail "kiln check --limits mali-g7x exited $?"; }
check_configs "$tmp/check1" >"$tmp/cfg1"
within "$tmp/cfg1" 512 32768 16 "check mali-g7x"
printf '# a small phone GPU\nname = tiny\nmax_workgroup = 64\nlocal_mem = 512   # bytes\nsubgroup = 16\n' >"$tmp/tiny.limits"
"$kiln" check --device "$dev" --kernel gemv_int4 "${shapes[@]}" --random 8 -v --limits "$tmp/tiny.limits" >"$tmp/check2" 2>&1 ||
    { tail -20 "$tmp/check2"; fail "kiln check --limits tiny exited $?"; }
check_configs "$tmp/check2" >"$tmp/cfg2"
within "$tmp/cfg2" 64 512 16 "check tiny"
grep -q "^FAIL" "$tmp/check2" && fail "check under the tiny limits failed a config"

# 4. tune under $KILN_LIMITS: every trial within, the winner stored apart
KILN_LIMITS=$tmp/tiny.limits "$kiln" tune --device "$dev" --kernel gemv_int4 --shape m=256,k=256,quant=q4_0,group=32 \
    --strategy random --budget 8 --patience 0 --db "$tmp/t.db" -v >"$tmp/tune" 2>&1 ||
    { tail -20 "$tmp/tune"; fail "tune under \$KILN_LIMITS exited $?"; }
grep -E '^  [a-z_]+ +gemv_int4 ' "$tmp/tune" | grep -o '{[^}]*}' >"$tmp/cfg3"
within "$tmp/cfg3" 64 512 16 "tune tiny"
grep -qE '^  (compile_error|wrong_result|crash)' "$tmp/tune" && fail "a trial under the tiny limits failed"
tagged=$(sqlite3 "$tmp/t.db" "SELECT d.name FROM winners w JOIN devices d ON d.id = w.device_id")
[[ $tagged == *"[limits tiny]" ]] || fail "the winner is not stored under the tagged device: '$tagged'"
[[ $fails -eq 0 ]] && echo "limits on $dev: ok"
exit $((fails > 0))
