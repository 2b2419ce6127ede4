#!/bin/bash
# tests/bench/local_sshd.sh - sourced by the ssh harness tests: an sshd on
# 127.0.0.1 for this test only. local_sshd_start DIR generates a throwaway
# host key and client key in DIR, authorizes the client key, and runs sshd
# as a non-daemon (-D) on a free port. On success it sets
#   LOCAL_SSHD_PID, LOCAL_SSHD_PORT, LOCAL_SSHD_KEY (the client identity) and
#   LOCAL_SSHD_ARGS (run-ssh.sh options: port, key, user, no host key checks)
# and returns 0; else it prints why and returns 77 (the test skips) or 1.
# local_sshd_stop stops it. sshd comes from openssh-server (install-deps).
# shellcheck disable=SC2034  # the LOCAL_SSHD_* variables are for the sourcing test

local_sshd_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

local_sshd_start() {
    local dir=$1 sshd=/usr/sbin/sshd p _
    LOCAL_SSHD_PID=""
    [[ -x $sshd ]] || { echo "SKIP: $sshd not installed (openssh-server, scripts/install-deps.sh)"; return 77; }
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key" || return 1
    ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key" || return 1
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    chmod 600 "$dir/authorized_keys" "$dir/host_key" "$dir/client_key"
    # sshd wants its privilege separation directory
    [[ -d /run/sshd ]] || mkdir -p /run/sshd 2>/dev/null || true
    LOCAL_SSHD_PORT=""
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if local_sshd_port_free "$p"; then LOCAL_SSHD_PORT=$p; break; fi
    done
    [[ -n $LOCAL_SSHD_PORT ]] || { echo "SKIP: no free port found"; return 77; }
    cat >"$dir/sshd_config" <<CFG
Port $LOCAL_SSHD_PORT
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin yes
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
LogLevel ERROR
CFG
    $sshd -f "$dir/sshd_config" -D -e 2>"$dir/sshd.log" &
    LOCAL_SSHD_PID=$!
    for _ in $(seq 50); do
        local_sshd_port_free "$LOCAL_SSHD_PORT" || break
        kill -0 "$LOCAL_SSHD_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! kill -0 "$LOCAL_SSHD_PID" 2>/dev/null || local_sshd_port_free "$LOCAL_SSHD_PORT"; then
        echo "SKIP: sshd did not start: $(tr '\n' ' ' <"$dir/sshd.log")"
        LOCAL_SSHD_PID=""
        return 77
    fi
    LOCAL_SSHD_KEY=$dir/client_key
    LOCAL_SSHD_ARGS=(-p "$LOCAL_SSHD_PORT" -i "$LOCAL_SSHD_KEY" -u "$(id -un)" -o StrictHostKeyChecking=no
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
    return 0
}

local_sshd_stop() { [[ -z ${LOCAL_SSHD_PID:-} ]] || kill "$LOCAL_SSHD_PID" 2>/dev/null; LOCAL_SSHD_PID=""; }
