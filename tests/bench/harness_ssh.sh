#!/bin/bash
# tests/bench/harness_ssh.sh KILN HARNESS_DIR - run-ssh.sh against a real
# sshd on 127.0.0.1 (free port, temporary host key and authorized key, all
# in a temp dir): the binary and a seeded db go over, the bench runs there,
# and the pulled db holds the seed's winner and the new bench run.
# SKIP (77) with the reason when sshd cannot start here.
set -uo pipefail
kiln="$1" harness="$2"
sshd=/usr/sbin/sshd
[[ -x $sshd ]] || { echo "SKIP: $sshd not installed (openssh-server, scripts/install-deps.sh)"; exit 77; }
tmp="$(mktemp -d)"
pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { [[ -z "$pid" ]] || kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key" || exit 1
ssh-keygen -q -t ed25519 -N '' -f "$tmp/client_key" || exit 1
cp "$tmp/client_key.pub" "$tmp/authorized_keys"
chmod 600 "$tmp/authorized_keys" "$tmp/host_key" "$tmp/client_key"
# sshd wants its privilege separation directory
[[ -d /run/sshd ]] || mkdir -p /run/sshd 2>/dev/null || true

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    if port_free "$p"; then port=$p; break; fi
done
[[ -n "$port" ]] || { echo "SKIP: no free port found"; exit 77; }
cat >"$tmp/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $tmp/host_key
PidFile $tmp/sshd.pid
AuthorizedKeysFile $tmp/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin yes
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
LogLevel ERROR
CFG
$sshd -f "$tmp/sshd_config" -D -e 2>"$tmp/sshd.log" &
pid=$!
for _ in $(seq 50); do
    port_free "$port" || break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if ! kill -0 "$pid" 2>/dev/null || port_free "$port"; then
    echo "SKIP: sshd did not start: $(tr '\n' ' ' <"$tmp/sshd.log")"
    exit 77
fi

shape="m=256,k=256,quant=q4f16_1,group=32"
seed="$tmp/seed.db"
"$kiln" tune --device cpu --kernel gemv_int4 --shape "$shape" --budget 4 --db "$seed" >/dev/null 2>&1 ||
    { echo "FAIL: seeding tune"; exit 1; }
rc=0
"$harness/run-ssh.sh" --kiln "$kiln" --db "$seed" --out "$tmp/out" -p "$port" -i "$tmp/client_key" \
    -u "$(id -un)" -d "$tmp/remote dir" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR 127.0.0.1 -- --kernel gemv_int4 --shape "$shape" -r 2 || rc=$?
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
