#!/bin/bash
# tests/bench/harness_adb.sh HARNESS_DIR - run-adb.sh --dry-run prints, per
# serial, the push of binary and db, `kiln devices` on the phone, the tune
# and bench there, the pull, and (with --merge-into / --report) the merge
# into the host's database and the report of it. (harness_adb_fake runs it
# for real against a fake adb.)
set -uo pipefail
out="$("$1/run-adb.sh" --dry-run --kiln /opt/kiln-android/kiln --host-kiln /usr/bin/kiln --db seed.db --tune 4 \
    --sustained 20 --device opencl --out pulled --merge-into host.db --report rep SER1 SER2 -- --kernel gemv_int4)" ||
    { echo "run-adb.sh --dry-run exited $?"; exit 1; }
echo "$out"
fails=0
expect() { grep -qF -- "$1" <<<"$out" || { echo "FAIL: missing: $1"; fails=$((fails + 1)); }; }
for s in SER1 SER2; do
    expect "adb -s $s push /opt/kiln-android/kiln /data/local/tmp/kiln"
    expect "adb -s $s push seed.db /data/local/tmp/kiln.db"
    expect "adb -s $s shell 'cd /data/local/tmp && chmod 755 kiln && ./kiln devices --no-bandwidth'"
    expect "adb -s $s shell 'cd /data/local/tmp && (./kiln tune --device opencl --budget 4 --sustained 20 --db /data/local/tmp/kiln.db --kernel gemv_int4"
    expect "./kiln bench kernels --device opencl --sustained 20 --db /data/local/tmp/kiln.db --kernel gemv_int4"
    expect "adb -s $s pull /data/local/tmp/kiln.db pulled/$s.db"
    expect "/usr/bin/kiln db --db host.db merge pulled/$s.db"
done
expect "/usr/bin/kiln report --db host.db -o rep"
[[ $(wc -l <<<"$out") -eq 13 ]] || { echo "FAIL: want 13 commands (6 per phone, 1 report)"; fails=$((fails + 1)); }
[[ ! -e pulled ]] || { echo "FAIL: --dry-run created pulled/"; fails=$((fails + 1)); }
"$1/run-adb.sh" --dry-run --report rep SER1 >/dev/null 2>&1 && { echo "FAIL: --report without --merge-into accepted"; fails=$((fails + 1)); }
exit $((fails > 0))
