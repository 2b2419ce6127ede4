#!/bin/bash
# tests/cli/aarch64_qemu.sh BUILD_DIR - the aarch64 cross build (scripts/build-aarch64.sh)
# run under qemu-user with -cpu max (asimd, dotprod and i8mm present), at every forced ISA
# level (KILN_CPU_ISA = native i.e. i8mm here, dotprod, neon, scalar), so each NEON path is
# compared with the plain-C references on random inputs:
#   - kiln check --device cpu --quick at each level (every kernel, odd shapes, random configs);
#   - tests/kernels/gemv_q8_test at each NEON level (the q8 packer byte for byte against
#     scalar; every act-1 layout x rows config of the int8 kernels: SMMLA, SDOT, NEON);
#   - SmolLM2 ($KILN_SMOLLM2) greedy at the native level answers "Paris".
# qemu is slow, so this is the quick set (~2-3 min on an idle 2-core box); the full set
# (README "aarch64"): kiln check --device cpu without --quick and every tests/kernels binary
# at each level. binfmt_misc is not needed: binaries are run as qemu-aarch64-static ARGS.
# Skips (77) without the cross build or qemu; the model part skips without the model
# unless $KILN_REQUIRE_BACKENDS names `model`.
set -uo pipefail
dir="${1:-build-aarch64}"
qemu=(qemu-aarch64-static -cpu max)
if ! command -v qemu-aarch64-static >/dev/null || [[ ! -x "$dir/src/kiln" ]]; then
    echo "SKIP: no qemu-aarch64-static or no $dir/src/kiln (scripts/build-aarch64.sh)"
    exit 77
fi
file -b "$dir/src/kiln" 2>/dev/null | grep -q aarch64 || { echo "FAIL: $dir/src/kiln is not an aarch64 binary"; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# the emulated core must offer the paths we claim to test
"${qemu[@]}" "$dir/src/kiln" devices >"$tmp/devices.out" 2>&1 || fail "kiln devices exited $?"
grep -q 'arch aarch64-i8mm' "$tmp/devices.out" || fail "qemu -cpu max not seen as i8mm: $(grep arch "$tmp/devices.out")"

for isa in native dotprod neon scalar; do
    if ! KILN_CPU_ISA=$isa "${qemu[@]}" "$dir/src/kiln" check --device cpu --quick >"$tmp/check.$isa" 2>&1; then
        fail "kiln check --quick at $isa: $(tail -5 "$tmp/check.$isa")"
    fi
    grep -q '^PASSED' "$tmp/check.$isa" || fail "kiln check at $isa did not pass"
    echo "kiln check --device cpu --quick, KILN_CPU_ISA=$isa: $(tail -1 "$tmp/check.$isa")"
done

for isa in native dotprod neon; do
    if KILN_CPU_ISA=$isa "${qemu[@]}" "$dir/tests/kernels/gemv_q8_test" >"$tmp/q8.$isa" 2>&1; then
        echo "gemv_q8_test, KILN_CPU_ISA=$isa: ok"
    else
        fail "gemv_q8_test at $isa: $(tail -5 "$tmp/q8.$isa")"
    fi
done

model="${KILN_SMOLLM2:-}"
if [[ -n "$model" && -r "$model" ]]; then
    env -u KILN_DB HOME="$tmp" "${qemu[@]}" "$dir/src/kiln" run -m "$model" -n 8 --temp 0 \
        -p "What is the capital of France? Answer in one sentence." >"$tmp/run.out" 2>"$tmp/run.err" ||
        fail "kiln run exited $? ($(tail -3 "$tmp/run.err"))"
    grep -q Paris "$tmp/run.out" && echo "SmolLM2 greedy: $(tr '\n' ' ' <"$tmp/run.out")" ||
        fail "SmolLM2 greedy: no Paris in '$(cat "$tmp/run.out")'"
elif [[ ",${KILN_REQUIRE_BACKENDS:-}," == *",model,"* ]]; then
    fail "KILN_SMOLLM2 is required"
else
    echo "SmolLM2 greedy: skipped (KILN_SMOLLM2 not set)"
fi

[[ $fails -eq 0 ]] || { echo "$fails failure(s)"; exit 1; }
echo "aarch64 under qemu: ok"
