#!/bin/bash
# bench/harness/run-local.sh - tune quickly and bench kernels on every local
# device, all into one database.
#
#   run-local.sh [--kiln PATH] [--db FILE] [--budget N] [--sustained S] [--device D ...] [-- BENCH_ARGS...]
#
# --budget: trials per kernel x shape or a duration (90s); --sustained S:
# tune and bench choose and report on S seconds back to back (thermal).
# Devices default to every device `kiln devices` lists. BENCH_ARGS go to
# `kiln bench kernels` (e.g. --kernel gemv_int4 --shape m=4096,k=4096).
# Exit: 0 ok, else the first failing kiln exit code.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

kiln="" db="${KILN_DB:-kiln-bench.db}" budget=12 sustained=""
devices=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --kiln) kiln="$2"; shift 2 ;;
        --db) db="$2"; shift 2 ;;
        --budget) budget="$2"; shift 2 ;;
        --sustained) sustained="$2"; shift 2 ;;
        --device) devices+=("$2"); shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) die "unknown option '$1'" ;;
    esac
done
[[ -n "$kiln" ]] || kiln="$(find_kiln)"
if [[ ${#devices[@]} -eq 0 ]]; then
    mapfile -t devices < <("$kiln" devices 2>/dev/null | awk '/^[a-z]+:[0-9]+ /{print $1}')
fi
[[ ${#devices[@]} -gt 0 ]] || die "no devices found (kiln devices)"
bench_args=("$@")
tune_args "$@"

sus=()
[[ -z "$sustained" ]] || sus=(--sustained "$sustained")
rc=0
for d in "${devices[@]}"; do
    echo "== $d: tune (budget $budget)" >&2
    "$kiln" tune --device "$d" --budget "$budget" "${sus[@]}" --db "$db" "${TUNE_ARGS[@]}" || { r=$?; [[ $rc -ne 0 ]] || rc=$r; }
done
dev_args=()
for d in "${devices[@]}"; do dev_args+=(--device "$d"); done
echo "== bench kernels on ${devices[*]}" >&2
"$kiln" bench kernels "${dev_args[@]}" "${sus[@]}" --db "$db" "${bench_args[@]}" || { r=$?; [[ $rc -ne 0 ]] || rc=$r; }
exit "$rc"
