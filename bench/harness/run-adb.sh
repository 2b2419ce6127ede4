#!/bin/bash
# bench/harness/run-adb.sh - run the kernel bench on Android devices over
# adb: push the kiln binary (built for the phone) and the database to
# /data/local/tmp, (optionally tune), bench, pull the database back as
# OUT_DIR/SERIAL.db.
#
#   run-adb.sh [--dry-run] [options] SERIAL... [-- BENCH_ARGS...]
#     --dry-run        print the adb commands instead of running them
#     --kiln PATH      binary to push (an Android build of kiln)
#     --db FILE        database to start from (default: a fresh one)
#     --out DIR        where pulled databases go (default: bench-results)
#     --tune N         tune first with a budget of N trials per kernel x shape
#     --device D       device(s) to bench on the phone (default: opencl, vulkan, cpu)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

dry=0 kiln="" db="" out="bench-results" tune=0 rdir="/data/local/tmp"
serials=() devices=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) dry=1; shift ;;
        --kiln) kiln="$2"; shift 2 ;;
        --db) db="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --tune) tune="$2"; shift 2 ;;
        --device) devices+=("$2"); shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        -*) die "unknown option '$1'" ;;
        *) serials+=("$1"); shift ;;
    esac
done
[[ ${#serials[@]} -gt 0 ]] || die "no SERIAL given (adb devices lists them)"
if [[ -z "$kiln" ]]; then
    if [[ $dry -eq 1 ]]; then kiln="${KILN:-kiln}"; else kiln="$(find_kiln)"; fi
fi
[[ ${#devices[@]} -gt 0 ]] || devices=(opencl vulkan cpu)
if [[ $dry -eq 0 ]]; then
    command -v adb >/dev/null 2>&1 || die "adb not found: apt-get install adb"
    mkdir -p "$out"
fi

run() {
    if [[ $dry -eq 1 ]]; then
        local w out=""
        for w in "$@"; do
            if [[ "$w" =~ [[:space:]\&\|\(\)\$\;] ]]; then out+=" '$w'"; else out+=" $w"; fi
        done
        echo "${out# }"
    else
        "$@"
    fi
}

rc=0
for s in "${serials[@]}"; do
    rdb="$rdir/kiln.db"
    run adb -s "$s" push "$kiln" "$rdir/kiln" || { rc=$?; continue; }
    if [[ -n "$db" ]]; then
        run adb -s "$s" push "$db" "$rdb" || { rc=$?; continue; }
    fi
    cmd="cd $rdir && chmod 755 kiln"
    if [[ "$tune" -gt 0 ]]; then
        for d in "${devices[@]}"; do
            cmd+=" && (./kiln tune --device $d --budget $tune --db $rdb $* || true)"
        done
    fi
    for d in "${devices[@]}"; do
        # each device on its own: a phone may lack one of the backends
        cmd+=" && (./kiln bench kernels --device $d --db $rdb $* || echo kiln bench on $d failed: \$?)"
    done
    r=0
    run adb -s "$s" shell "$cmd" || r=$?
    run adb -s "$s" pull "$rdb" "$out/$s.db" || r=$?
    [[ $r -eq 0 ]] || rc=$r
done
exit "$rc"
