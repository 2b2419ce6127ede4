#!/bin/bash
# tests/bench/harness_adb.sh HARNESS_DIR - run-adb.sh --dry-run prints, per
# serial, the push of binary and db, the bench on the phone, and the pull.
set -uo pipefail
out="$("$1/run-adb.sh" --dry-run --kiln /opt/kiln-android/kiln --db seed.db --tune 4 --device opencl \
    --out pulled SER1 SER2 -- --kernel gemv_int4)" || { echo "run-adb.sh --dry-run exited $?"; exit 1; }
echo "$out"
fails=0
expect() { grep -qF -- "$1" <<<"$out" || { echo "FAIL: missing: $1"; fails=$((fails + 1)); }; }
for s in SER1 SER2; do
    expect "adb -s $s push /opt/kiln-android/kiln /data/local/tmp/kiln"
    expect "adb -s $s push seed.db /data/local/tmp/kiln.db"
    expect "adb -s $s shell 'cd /data/local/tmp && chmod 755 kiln && (./kiln tune --device opencl --budget 4"
    expect "./kiln bench kernels --device opencl --db /data/local/tmp/kiln.db --kernel gemv_int4"
    expect "adb -s $s pull /data/local/tmp/kiln.db pulled/$s.db"
done
[[ $(wc -l <<<"$out") -eq 8 ]] || { echo "FAIL: want 8 commands"; fails=$((fails + 1)); }
[[ ! -e pulled ]] || { echo "FAIL: --dry-run created pulled/"; fails=$((fails + 1)); }
exit $((fails > 0))
