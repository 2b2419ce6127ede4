#!/bin/bash
# tests/bench/harness_adb_fake.sh KILN HARNESS_DIR FAKE_ADB_DIR - run-adb.sh
# end to end against the fake adb (tests/bench/fake-adb/adb): push the
# binary and a seed database to a "phone", `kiln devices` there, tune with a
# budget, bench, pull the database, merge it into the host's, report.
#
# The phone runs $KILN_PHONE (an aarch64 build: it runs under qemu-user, as
# the fake adb runs aarch64 executables, tune's worker processes too through
# KILN_EXEC_WRAPPER) when set, else the host's KILN; the test says which. The
# meson suite runs it with the host's binary (the shell logic, fast);
# scripts/test.sh's aarch64 stage with KILN_PHONE=build-aarch64/src/kiln,
# where a KILN_PHONE that is no aarch64 executable, or no qemu, fails. Checks: every adb step was taken, the phone listed its
# cpu device, the pulled database holds the phone's tune session and bench
# run, the host's database after the merge holds its own winner and the
# phone's, and the report lists the phone's winner; with the aarch64 phone
# also that the host's cpu, looked up in the phone's database, is lent the
# phone's winner (the "similar device" level).
set -uo pipefail
kiln=$1 harness=$2 fake=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
command -v gnuplot >/dev/null || { echo "SKIP: gnuplot not installed (scripts/install-deps.sh), kiln report needs it"; exit 77; }

phone_kiln=${KILN_PHONE:-$kiln}
if [[ -n ${KILN_PHONE:-} ]]; then
    # asked for the aarch64 phone: anything less fails (scripts/test.sh counts it), never skips
    file -b "$phone_kiln" 2>/dev/null | grep -q 'ARM aarch64' ||
        { echo "FAIL: KILN_PHONE=$phone_kiln is not an aarch64 executable (scripts/build-aarch64.sh)"; exit 1; }
    command -v "${FAKE_ADB_QEMU:-qemu-aarch64-static}" >/dev/null ||
        { echo "FAIL: no ${FAKE_ADB_QEMU:-qemu-aarch64-static} to run $phone_kiln (scripts/install-deps.sh)"; exit 1; }
    echo "phone binary: $phone_kiln ($(file -b "$phone_kiln" | cut -d, -f1-2)), run under ${FAKE_ADB_QEMU:-qemu-aarch64-static -cpu max}"
else
    echo "phone binary: the host's $kiln (no KILN_PHONE: no aarch64 build given)"
fi

export FAKE_ADB_ROOT="$tmp/phones" PATH="$fake:$PATH" KILN_CPU_THREADS=1
mkdir -p "$FAKE_ADB_ROOT/PHONE1/fs"
[[ $(adb devices | grep -c $'\tdevice$') -eq 1 ]] || fail "fake adb devices does not list PHONE1"

# the host's database already holds a winner of its own (another shape)
host_db="$tmp/host.db"
"$kiln" tune --device cpu --kernel gemv_int4 --shape m=128,k=256,quant=q4f16_1,group=32 --budget 3 --db "$host_db" \
    >"$tmp/seed.log" 2>&1 || { cat "$tmp/seed.log"; echo "FAIL: seeding the host database"; exit 1; }

rc=0
"$harness/run-adb.sh" --kiln "$phone_kiln" --host-kiln "$kiln" --out "$tmp/pulled" --tune 3 --device cpu \
    --merge-into "$host_db" --report "$tmp/report" PHONE1 -- \
    --kernel gemv_int4 --shape m=256,k=256,quant=q4f16_1,group=32 -r 2 2>&1 | tee "$tmp/run.log" || rc=$?
[[ $rc -eq 0 ]] || fail "run-adb.sh exited $rc"

log="$FAKE_ADB_ROOT/adb.log"
for step in "-s PHONE1 push $phone_kiln /data/local/tmp/kiln" "-s PHONE1 shell cd /data/local/tmp && chmod 755 kiln && ./kiln devices --no-bandwidth" \
    "./kiln tune --device cpu --budget 3" "./kiln bench kernels --device cpu" "-s PHONE1 pull /data/local/tmp/kiln.db"; do
    grep -qF -- "$step" "$log" || fail "adb was never asked: $step"
done
grep -q '^cpu:0 ' "$tmp/pulled/PHONE1.devices.txt" 2>/dev/null || fail "the phone's kiln devices listed no cpu:0"
if [[ -n ${KILN_PHONE:-} ]]; then
    grep -q 'arch aarch64' "$tmp/pulled/PHONE1.devices.txt" || fail "the phone's cpu is not aarch64: the emulated binary did not run"
fi
# run-adb.sh goes on past a failed tune or bench on a device (a phone may lack a backend): not here
grep -E "kiln (tune|bench) on [a-z]+ failed" "$tmp/run.log" && fail "tune or bench failed on the phone"
pulled="$tmp/pulled/PHONE1.db"
[[ -f $pulled ]] || { fail "no pulled database"; exit 1; }
"$kiln" bench list --db "$pulled" | grep -q " kernels " || fail "the pulled database has no kernels bench run"
"$kiln" db --db "$pulled" show | grep -q "m256.k256" || fail "the pulled database has no winner tuned on the phone"
if [[ -n ${KILN_PHONE:-} ]]; then
    # the similarity level across a real ISA difference: this host's cpu, never tuned in the
    # phone's database, is lent the aarch64 phone's winner (same backend, nearest device)
    best=$("$kiln" db --db "$pulled" best --kernel gemv_int4 --shape m256.k256.q4f16_1.g32 --device cpu --json)
    jq -e '.level == "similar device"' <<<"$best" >/dev/null ||
        fail "the host was not lent the phone's winner (similar device): $best"
    echo "host lookup in the phone's database: $(jq -r '.level + ", tuned on " + .tuned_on' <<<"$best" 2>/dev/null)"
fi

"$kiln" db --db "$host_db" show >"$tmp/host.show"
grep -q "m128.k256" "$tmp/host.show" || fail "the merge lost the host's own winner"
grep -q "m256.k256" "$tmp/host.show" || fail "the phone's winner was not merged into the host's database"
"$kiln" bench list --db "$host_db" | grep -q " kernels " || fail "the phone's bench run was not merged"
[[ -f $tmp/report/index.html ]] || fail "no report written"
grep -q "m256.k256" "$tmp/report/summary.md" 2>/dev/null || fail "the report does not list the phone's winner"
[[ $fails -eq 0 ]] && echo "ok: push, devices, tune, bench, pull, merge, report"
exit $((fails > 0))
