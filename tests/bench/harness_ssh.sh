#!/bin/bash
# tests/bench/harness_ssh.sh KILN HARNESS_DIR - run-ssh.sh against a real
# sshd on 127.0.0.1 (free port, temporary host key and authorized key, all
# in a temp dir): the binary and a seeded db go over, the bench runs there,
# and the pulled db holds the seed's winner and the new bench run.
# SKIP (77) with the reason when sshd cannot start here.
set -uo pipefail
kiln="$1" harness="$2"
tmp="$(mktemp -d)"
# shellcheck source=tests/bench/local_sshd.sh
source "$(dirname "$0")/local_sshd.sh"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { local_sshd_stop; rm -rf "$tmp"; }
trap cleanup EXIT
local_sshd_start "$tmp" || exit $?

shape="m=256,k=256,quant=q4f16_1,group=32"
seed="$tmp/seed.db"
"$kiln" tune --device cpu --kernel gemv_int4 --shape "$shape" --budget 4 --db "$seed" >/dev/null 2>&1 ||
    { echo "FAIL: seeding tune"; exit 1; }
rc=0
"$harness/run-ssh.sh" --kiln "$kiln" --db "$seed" --out "$tmp/out" "${LOCAL_SSHD_ARGS[@]}" \
    -d "$tmp/remote dir" 127.0.0.1 -- --kernel gemv_int4 --shape "$shape" -r 2 || rc=$?
[[ $rc -eq 0 ]] || { echo "FAIL: run-ssh.sh exited $rc"; cat "$tmp/sshd.log"; exit 1; }
pulled="$tmp/out/127.0.0.1.db"
[[ -f "$pulled" ]] || { echo "FAIL: no pulled db at $pulled"; exit 1; }
fails=0
"$kiln" bench list --db "$pulled" | tee "$tmp/list.out"
grep -q " kernels " "$tmp/list.out" || { echo "FAIL: the pulled db has no kernels bench run"; fails=$((fails + 1)); }
"$kiln" bench show latest --format csv --db "$pulled" >"$tmp/show.out"
grep -q "gemv_int4 m256.k256.q4f16_1.g32,tuned_us" "$tmp/show.out" ||
    { echo "FAIL: the pulled run has no tuned_us result"; fails=$((fails + 1)); }
"$kiln" db --db "$pulled" show | grep -q "m256.k256" ||
    { echo "FAIL: the seed db's winner did not travel"; fails=$((fails + 1)); }
exit $((fails > 0))
