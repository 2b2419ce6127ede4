#!/bin/bash
# bench/harness/common.sh - helpers shared by the harness scripts (sourced).
# shellcheck disable=SC2034  # variables are used by the scripts that source this

die() {
    echo "${0##*/}: $*" >&2
    exit 2
}

# The kiln binary: $KILN, else kiln on PATH, else the usual build dirs.
find_kiln() {
    if [[ -n "${KILN:-}" ]]; then
        echo "$KILN"
        return
    fi
    if command -v kiln >/dev/null 2>&1; then
        command -v kiln
        return
    fi
    local here
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    for d in build build-main build-bench; do
        if [[ -x "$here/$d/src/kiln" ]]; then
            echo "$here/$d/src/kiln"
            return
        fi
    done
    die "kiln binary not found: set KILN=/path/to/kiln or pass --kiln"
}

# The options of a bench's arguments that tune takes as well (--kernel,
# --shape, --model, --precision), into the array TUNE_ARGS: the harness
# scripts tune on what they bench without handing tune bench-only options
# such as --rounds.
tune_args() {
    TUNE_ARGS=()
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --kernel|--shape|--model|--precision)
                [[ $# -ge 2 ]] || break
                TUNE_ARGS+=("$1" "$2"); shift 2 ;;
            *) shift ;;
        esac
    done
}
