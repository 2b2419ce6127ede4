#!/bin/bash
# tests/bench/harness_fleet.sh KILN HARNESS_DIR FAKE_ADB_DIR - run-fleet.sh
# over a fleet file of three targets: two phones behind the fake adb
# (tests/bench/fake-adb/adb) and one host over ssh (an sshd on 127.0.0.1,
# tests/bench/local_sshd.sh). Each target tunes briefly and benches one
# gemv shape on its own backend (cpu, PoCL's opencl, lavapipe's vulkan where
# present; cpu where not), so the merged database holds one device per
# backend. Checks: every target returned a database, fleet.db holds every
# device's winner and bench run, fleet.md has a row per device naming its
# target, and kiln report of fleet.db lists every device.
# The phones run $KILN_PHONE (aarch64, under qemu-user) when set, else KILN;
# a phone benching a GPU backend runs KILN (the aarch64 build is cpu only).
set -uo pipefail
kiln=$1 harness=$2 fake=$3
tmp=$(mktemp -d)
# shellcheck source=tests/bench/local_sshd.sh
source "$(dirname "$0")/local_sshd.sh"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { local_sshd_stop; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
command -v gnuplot >/dev/null || { echo "SKIP: gnuplot not installed (scripts/install-deps.sh), kiln report needs it"; exit 77; }
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not installed (scripts/install-deps.sh)"; exit 77; }
mkdir -p "$tmp/sshd"
local_sshd_start "$tmp/sshd" || exit $?

mapfile -t avail < <("$kiln" devices --available 2>/dev/null | grep -oE '^(cpu|opencl|vulkan)' | sort -u)
has() { printf '%s\n' "${avail[@]}" | grep -qx "$1"; }
phone2=cpu host=cpu
has opencl && phone2=opencl
has vulkan && host=vulkan
echo "backends here: ${avail[*]}; PHONE1 cpu, PHONE2 $phone2, ssh host $host"
phone_kiln=${KILN_PHONE:-$kiln} phone2_kiln=${KILN_PHONE:-$kiln}
# the aarch64 build is cpu only (scripts/build-aarch64.sh): a GPU backend's phone runs the host's binary
[[ $phone2 == cpu ]] || phone2_kiln=$kiln
echo "phone binaries: PHONE1 $phone_kiln${KILN_PHONE:+ (under qemu-user)}, PHONE2 $phone2_kiln"

export FAKE_ADB_ROOT="$tmp/phones" PATH="$fake:$PATH" KILN_CPU_THREADS=1
mkdir -p "$FAKE_ADB_ROOT/PHONE1/fs" "$FAKE_ADB_ROOT/PHONE2/fs"
cat >"$tmp/fleet.txt" <<FLEET
# kind  name       options
adb     PHONE1     --kiln $phone_kiln --device cpu
adb     PHONE2     --kiln $phone2_kiln --device $phone2   # a second phone, another backend
ssh     127.0.0.1  ${LOCAL_SSHD_ARGS[*]} -d $tmp/remote --device $host
FLEET
cat "$tmp/fleet.txt"

rc=0
"$harness/run-fleet.sh" --fleet "$tmp/fleet.txt" --out "$tmp/out" --kiln "$kiln" --tune 3 -- \
    --kernel gemv_int4 --shape m=256,k=256,quant=q4f16_1,group=32 -r 2 || rc=$?
[[ $rc -eq 0 ]] || { fail "run-fleet.sh exited $rc"; tail -n 20 "$tmp"/out/*.log; }

for t in PHONE1 PHONE2 127.0.0.1; do
    [[ -f $tmp/out/pulled/$t.db ]] || fail "no database came back from $t"
done
merged="$tmp/out/fleet.db"
[[ -f $merged ]] || { fail "no fleet.db"; exit 1; }
mapfile -t want < <(printf '%s\n' cpu "$phone2" "$host" | sort -u)
for b in "${want[@]}"; do
    nw=$(sqlite3 "$merged" "SELECT COUNT(*) FROM winners w JOIN devices d ON d.id = w.device_id WHERE d.backend = '$b'
        AND w.shape_key = 'm256.k256.q4f16_1.g32'")
    [[ $nw -ge 1 ]] || fail "fleet.db has no $b winner"
    nr=$(sqlite3 "$merged" "SELECT COUNT(*) FROM bench_runs r JOIN devices d ON d.id = r.device_id WHERE d.backend = '$b'")
    [[ $nr -ge 1 ]] || fail "fleet.db has no $b bench run"
done
md="$tmp/out/fleet.md"
cat "$md"
rows=$(grep -c '^| [a-z].* | [0-9.]* | [0-9]* | .* | [0-9]* | [0-9]* |$' "$md")
[[ $rows -eq ${#want[@]} ]] || fail "fleet.md has $rows device rows, want ${#want[@]} (one per backend used)"
grep -q '^| adb PHONE1' "$md" || fail "fleet.md does not name PHONE1 as a target"
grep -q 'ssh 127.0.0.1' "$md" || fail "fleet.md does not name the ssh host as a target"
[[ -f $tmp/out/report/index.html ]] || fail "no report/index.html"
while IFS= read -r name; do
    grep -qF "$name" "$tmp/out/report/summary.md" || fail "the report does not list device '$name'"
done < <(sqlite3 "$merged" "SELECT name FROM devices WHERE id IN (SELECT device_id FROM winners)")
[[ $fails -eq 0 ]] && echo "ok: ${#want[@]} device(s) from 3 targets in one database and one report"
exit $((fails > 0))
