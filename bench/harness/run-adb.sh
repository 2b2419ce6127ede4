#!/bin/bash
# bench/harness/run-adb.sh - run the kernel bench on Android devices over
# adb: push the kiln binary (built for the phone) and the database to
# /data/local/tmp, list the phone's devices (`kiln devices`), tune with a
# budget, bench, pull the database back as OUT_DIR/SERIAL.db, merge it into
# the host's database and write a report of it.
#
#   run-adb.sh [--dry-run] [options] SERIAL... [-- BENCH_ARGS...]
#     --dry-run        print the commands instead of running them
#     --kiln PATH      binary to push (an Android / aarch64 build of kiln)
#     --host-kiln PATH kiln for this host (merge, report; default: $KILN, kiln on PATH, build dir)
#     --db FILE        database to start from on the phone (default: a fresh one)
#     --out DIR        where pulled databases go (default: bench-results)
#     --tune N         tune first with a budget of N (trials per kernel x shape, or 90s, 5m)
#     --sustained S    tune and bench choose and report on S seconds of back-to-back runs (thermal)
#     --device D       device(s) to bench on the phone (default: opencl, vulkan, cpu)
#     --remote-dir D   working directory on the phone (default /data/local/tmp)
#     --merge-into DB  merge each pulled database into DB (the host's)
#     --report DIR     then `kiln report` of the merged database into DIR (needs --merge-into)
# BENCH_ARGS go to bench, their --kernel/--shape/--model also to tune (e.g. --kernel gemv_int4
# --shape m=256,k=256 -r 3).
# OUT_DIR/SERIAL.devices.txt keeps what `kiln devices` said on the phone.
# CI runs this against a fake adb (tests/bench/harness_adb_fake.sh, tests/bench/fake-adb/adb):
# in the meson suite with the host's kiln on the phone; in scripts/test.sh with the aarch64
# build under qemu-user (whose launcher sets KILN_EXEC_WRAPPER for tune's workers; a real
# phone needs nothing of that).
# Exit: 0 when every phone succeeded, else the last failing status.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

dry=0 kiln="" host_kiln="" db="" out="bench-results" tune="" sustained="" rdir="/data/local/tmp"
merge_into="" report=""
serials=() devices=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) dry=1; shift ;;
        --kiln) kiln="$2"; shift 2 ;;
        --host-kiln) host_kiln="$2"; shift 2 ;;
        --db) db="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --tune) tune="$2"; shift 2 ;;
        --sustained) sustained="$2"; shift 2 ;;
        --device) devices+=("$2"); shift 2 ;;
        --remote-dir) rdir="$2"; shift 2 ;;
        --merge-into) merge_into="$2"; shift 2 ;;
        --report) report="$2"; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        -*) die "unknown option '$1'" ;;
        *) serials+=("$1"); shift ;;
    esac
done
[[ ${#serials[@]} -gt 0 ]] || die "no SERIAL given (adb devices lists them)"
[[ -z "$report" || -n "$merge_into" ]] || die "--report needs --merge-into (the report is of the merged database)"
[[ "$tune" != 0 ]] || tune=""
if [[ -z "$kiln" ]]; then
    if [[ $dry -eq 1 ]]; then kiln="${KILN:-kiln}"; else kiln="$(find_kiln)"; fi
fi
if [[ -z "$host_kiln" && -n "$merge_into" ]]; then
    if [[ $dry -eq 1 ]]; then host_kiln="${KILN:-kiln}"; else host_kiln="$(find_kiln)"; fi
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
            if [[ "$w" =~ [[:space:]\&\|\(\)\$\;\>] ]]; then out+=" '$w'"; else out+=" $w"; fi
        done
        echo "${out# }"
    else
        "$@"
    fi
}

# The phone's shell is sh (mksh or toybox): each word quoted for it.
q() { printf '%q' "$1"; }
words() { local w s=""; for w in "$@"; do s+=" $(q "$w")"; done; echo "${s# }"; }
extra=$(words "$@")
tune_args "$@"
textra=$(words "${TUNE_ARGS[@]}")
sus=""
[[ -z "$sustained" ]] || sus=" --sustained $(q "$sustained")"

rc=0
for s in "${serials[@]}"; do
    rdb="$rdir/kiln.db"
    echo "== $s: pushing kiln to $rdir" >&2
    run adb -s "$s" push "$kiln" "$rdir/kiln" || { rc=$?; echo "$s: push failed" >&2; continue; }
    if [[ -n "$db" ]]; then
        run adb -s "$s" push "$db" "$rdb" || { rc=$?; echo "$s: pushing the database failed" >&2; continue; }
    fi
    # what the phone has, kept next to its database
    if [[ $dry -eq 1 ]]; then
        run adb -s "$s" shell "cd $rdir && chmod 755 kiln && ./kiln devices --no-bandwidth"
    else
        adb -s "$s" shell "cd $rdir && chmod 755 kiln && ./kiln devices --no-bandwidth" | tee "$out/$s.devices.txt" >&2 ||
            { rc=$?; echo "$s: kiln devices failed (exit $rc): the binary does not run there" >&2; continue; }
    fi
    cmd="cd $rdir"
    if [[ -n "$tune" ]]; then
        for d in "${devices[@]}"; do
            # a phone may lack a backend: say so and go on (exit 3 is 'unavailable')
            cmd+=" && (./kiln tune --device $d --budget $(q "$tune")$sus --db $rdb $textra || echo kiln tune on $d failed: \$?)"
        done
    fi
    for d in "${devices[@]}"; do
        cmd+=" && (./kiln bench kernels --device $d$sus --db $rdb $extra || echo kiln bench on $d failed: \$?)"
    done
    r=0
    run adb -s "$s" shell "$cmd" || r=$?
    run adb -s "$s" pull "$rdb" "$out/$s.db" || { r=$?; echo "$s: pulling the database failed" >&2; }
    if [[ $r -eq 0 && -n "$merge_into" ]]; then
        run "$host_kiln" db --db "$merge_into" merge "$out/$s.db" || { r=$?; echo "$s: merging into $merge_into failed" >&2; }
    fi
    if [[ $r -eq 0 ]]; then echo "== $s: results in $out/$s.db" >&2; else rc=$r; fi
done
if [[ -n "$report" ]]; then
    run "$host_kiln" report --db "$merge_into" -o "$report" || rc=$?
fi
exit "$rc"
