#!/bin/bash
# bench/harness/similarity.sh - what the similarity level of the lookup is
# worth: tune one device only, then bench another device that nobody tuned
# (it borrows the nearest tuned device's winners, verified there first)
# against its own device default and against its own tuned winners; and
# the reverse. Prints a markdown table (bench/results/similarity.md).
#
#   similarity.sh [--kiln PATH] [--out DIR] [--budget N] [--rounds R] [--pair A,B]
#                 [-- TUNE_AND_BENCH_ARGS...]     (e.g. --kernel gemv_int4 --shape m=2048,k=2048)
#     --pair A,B   the two devices (default opencl,vulkan: PoCL and lavapipe)
#     --budget N   tune budget per kernel x shape (default 16)
#     --rounds R   bench rounds (default 5)
#     --out DIR    databases and logs (default similarity-results)
#     --phase P    all (default), or one step: tune (both devices), bench (both ways), bench:DEVICE
#                  (DEVICE borrowing, then with its own winners), report (the table from OUT)
# Exit: 0, or the first failing kiln exit code.
set -euo pipefail
export LC_ALL=C # join and sort agree on the order
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

kiln="" out="similarity-results" budget=16 rounds=5 pair="opencl,vulkan" phase=all
while [[ $# -gt 0 ]]; do
    case "$1" in
        --kiln) kiln="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --budget) budget="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --pair) pair="$2"; shift 2 ;;
        --phase) phase="$2"; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) die "unknown option '$1'" ;;
    esac
done
[[ -n "$kiln" ]] || kiln="$(find_kiln)"
a="${pair%,*}" b="${pair#*,}"
[[ -n "$a" && -n "$b" && "$a" != "$b" ]] || die "--pair wants two devices A,B"
mkdir -p "$out"
args=("$@")

# bench DEVICE DB LABEL: the markdown rows of `kiln bench kernels`, kept as OUT/LABEL.md
bench() {
    "$kiln" bench kernels --device "$1" --db "$2" -r "$rounds" --format md "${args[@]}" >"$out/$3.md" 2>"$out/$3.log" ||
        { cat "$out/$3.log" >&2; die "bench on $1 ($3) failed"; }
}

# tune DEVICE: OUT/DEVICE-only.db holds DEVICE's winners and nothing else
tune() {
    rm -f "$out/$1-only.db"
    echo "== tune $1 only (budget $budget)" >&2
    "$kiln" tune --device "$1" --budget "$budget" --db "$out/$1-only.db" "${args[@]}" >"$out/tune-$1.log" 2>&1 ||
        { cat "$out/tune-$1.log" >&2; die "tune on $1 failed"; }
}

# bench_both TO FROM: TO with FROM's winners (the similarity level), then with its own
bench_both() {
    echo "== bench $1 with $2's winners (similarity level), then with its own" >&2
    bench "$1" "$out/$2-only.db" "$1-similar"
    bench "$1" "$out/$1-only.db" "$1-own"
}

# table TO FROM (from the bench files)
table() {
    local from=$2 to=$1 dev
    # rows: | kernel | shape | default us | tuned us | speedup | GB/s | % copy | % read | `config (lookup)` |
    dev=$(grep -m1 '^\*\*' "$out/$to-similar.md" | sed 's/^\*\*\(.*\)\*\*.*/\1/')
    echo
    echo "### $to ($dev), never tuned, borrowing from $from"
    echo
    echo "| kernel | shape | device default us | similar-device winner us (vs default) | own tuned winner us (vs default) | borrowed config (lookup) |"
    echo "|---|---|---:|---:|---:|---|"
    join -t $'\t' <(awk -F'|' '/^\| [a-z]/ && $4 !~ /default/ {gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $3);
                       print $2 " " $3 "\t" $4 "\t" $5 "\t" $6 "\t" $10}' "$out/$to-similar.md" | sort) \
                  <(awk -F'|' '/^\| [a-z]/ && $4 !~ /default/ {gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $3);
                       print $2 " " $3 "\t" $5 "\t" $6}' "$out/$to-own.md" | sort) |
        awk -F'\t' '{split($1, ks, " "); printf "| %s | %s | %s | %s (%s) | %s (%s) | %s |\n",
                     ks[1], ks[2], $2, $3, $4, $6, $7, $5}'
}

case "$phase" in
    all|tune) tune "$a"; tune "$b" ;;&
    all|bench) bench_both "$b" "$a"; bench_both "$a" "$b" ;;&
    "bench:$a") bench_both "$a" "$b" ;;&
    "bench:$b") bench_both "$b" "$a" ;;&
    all|report)
{
    echo "## Similarity level: $a <-> $b (budget $budget, $rounds bench rounds)"
    echo
    echo "Command: \`bench/harness/similarity.sh --pair $pair --budget $budget --rounds $rounds -- ${args[*]}\`"
    echo "(\`kiln tune --device A\` and \`--device B\`, each into an empty database; then \`kiln bench kernels"
    echo "--device TO\` on FROM's database, where TO's tuned config is the similar device's winner, verified on"
    echo "TO first, and on TO's own database: its own winners). Times are medians of interleaved rounds, each"
    echo "ratio against the device default of the same run."
    table "$b" "$a"
    table "$a" "$b"
} | tee "$out/similarity.md"
    ;;
esac
