#!/bin/bash
# bench/harness/merge-and-compare.sh - merge the databases the other harness
# scripts pulled into one, then check the newest runs against a baseline.
#
#   merge-and-compare.sh --db MERGED.db --baseline B [--run R] [--threshold T] [--kiln PATH] DB...
#
# B and R as `kiln bench compare` takes them (a run id, latest, previous, a
# git ref, FILE.json); R defaults to latest. The exit code is compare's:
# 0 no regression, 13 a regression, other codes an error.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

kiln="" db="" baseline="" run="latest" threshold=""
dbs=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --kiln) kiln="$2"; shift 2 ;;
        --db) db="$2"; shift 2 ;;
        --baseline) baseline="$2"; shift 2 ;;
        --run) run="$2"; shift 2 ;;
        --threshold) threshold="$2"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        -*) die "unknown option '$1'" ;;
        *) dbs+=("$1"); shift ;;
    esac
done
[[ -n "$db" ]] || die "--db MERGED.db is required"
[[ -n "$baseline" ]] || die "--baseline is required"
[[ -n "$kiln" ]] || kiln="$(find_kiln)"
if [[ ${#dbs[@]} -gt 0 ]]; then
    "$kiln" db --db "$db" merge "${dbs[@]}"
fi
args=(bench compare "$run" --baseline "$baseline" --db "$db")
[[ -z "$threshold" ]] || args+=(--threshold "$threshold")
rc=0
"$kiln" "${args[@]}" || rc=$?
exit "$rc"
