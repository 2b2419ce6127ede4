#!/bin/bash
# bench/harness/run-ssh.sh - run the kernel bench on remote hosts over ssh:
# copy the kiln binary and the database there, (optionally tune), bench,
# and pull the database back as OUT_DIR/HOST.db.
#
#   run-ssh.sh [options] HOST... [-- BENCH_ARGS...]
#     --kiln PATH      binary to copy (default: $KILN, kiln on PATH, build dir)
#     --db FILE        database to start from (default: none, a fresh one)
#     --out DIR        where pulled databases go (default: bench-results)
#     -p, --port N     ssh port
#     -i, --key FILE   ssh identity
#     -u, --user USER  remote user (or write USER@HOST)
#     -d, --remote-dir D  remote working directory (default /tmp/kiln-bench)
#     -o OPTION        extra ssh/scp option (repeatable), e.g. -o UserKnownHostsFile=...
#     --tune N         tune first with a budget of N (trials per kernel x shape, or 90s, 5m)
#     --sustained S    tune and bench choose and report on S seconds of back-to-back runs (thermal)
#     --device D       device(s) to bench on the host (default cpu)
# Exit: 0 when every host succeeded, else the last failing status.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

kiln="" db="" out="bench-results" port="" key="" user="" rdir="/tmp/kiln-bench" tune="" sustained=""
opts=(-o BatchMode=yes -o ConnectTimeout=15)
hosts=() devices=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --kiln) kiln="$2"; shift 2 ;;
        --db) db="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -p|--port) port="$2"; shift 2 ;;
        -i|--key) key="$2"; shift 2 ;;
        -u|--user) user="$2"; shift 2 ;;
        -d|--remote-dir) rdir="$2"; shift 2 ;;
        -o) opts+=(-o "$2"); shift 2 ;;
        --tune) tune="$2"; shift 2 ;;
        --sustained) sustained="$2"; shift 2 ;;
        --device) devices+=("$2"); shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        -*) die "unknown option '$1'" ;;
        *) hosts+=("$1"); shift ;;
    esac
done
[[ ${#hosts[@]} -gt 0 ]] || die "no HOST given"
[[ "$tune" != 0 ]] || tune=""
sus=()
[[ -z "$sustained" ]] || sus=(--sustained "$sustained")
[[ -n "$kiln" ]] || kiln="$(find_kiln)"
[[ ${#devices[@]} -gt 0 ]] || devices=(cpu)
[[ -z "$key" ]] || opts+=(-i "$key")
ssh_opts=("${opts[@]}") scp_opts=("${opts[@]}")
[[ -z "$port" ]] || { ssh_opts+=(-p "$port"); scp_opts+=(-P "$port"); }
mkdir -p "$out"

# Quote every word for the remote shell.
remote_cmd() {
    local q="" w
    for w in "$@"; do q+="$(printf '%q ' "$w")"; done
    echo "$q"
}

rc=0
for h in "${hosts[@]}"; do
    target="$h"
    [[ -z "$user" || "$h" == *@* ]] || target="$user@$h"
    name="${h#*@}"
    echo "== $target: copying kiln to $rdir" >&2
    # shellcheck disable=SC2029  # the remote command is built (and quoted) here on purpose
    ssh "${ssh_opts[@]}" "$target" "mkdir -p $(printf '%q' "$rdir")" || { rc=$?; echo "$target: ssh failed" >&2; continue; }
    files=("$kiln")
    [[ -z "$db" ]] || files+=("$db")
    scp -q "${scp_opts[@]}" "${files[@]}" "$target:$rdir/" || { rc=$?; continue; }
    rdb="$rdir/kiln.db"
    prep=""
    [[ -z "$db" ]] || prep="mv -f $(printf '%q' "$rdir/$(basename "$db")") $(printf '%q' "$rdb") && "
    cmd="${prep}cd $(printf '%q' "$rdir") && chmod 755 kiln"
    if [[ -n "$tune" ]]; then
        tune_args "$@"
        for d in "${devices[@]}"; do
            cmd+=" && { ./$(remote_cmd kiln tune --device "$d" --budget "$tune" "${sus[@]}" --db "$rdb" "${TUNE_ARGS[@]}") ||"
            cmd+=" echo kiln tune on $d failed: \$?; }"
        done
    fi
    dev_args=()
    for d in "${devices[@]}"; do dev_args+=(--device "$d"); done
    cmd+=" && ./$(remote_cmd kiln bench kernels "${dev_args[@]}" "${sus[@]}" --db "$rdb" "$@")"
    echo "== $target: $cmd" >&2
    r=0
    # shellcheck disable=SC2029  # as above
    ssh "${ssh_opts[@]}" "$target" "$cmd" || r=$?
    scp -q "${scp_opts[@]}" "$target:$rdb" "$out/$name.db" || { r=$?; echo "$target: pulling the database failed" >&2; }
    [[ $r -eq 0 ]] && echo "== $target: results in $out/$name.db" >&2 || rc=$r
done
exit "$rc"
