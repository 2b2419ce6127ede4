#!/bin/bash
# bench/harness/compare-strategies.sh - the strategy comparison benchmark.
#
# Every search strategy tunes the same kernel x shape on the same device with
# the same trial budget, once per seed, each into its own session of one
# database. Early stopping is off (patience = budget) so each strategy spends
# the whole budget and the curves are comparable. Per strategy it reports,
# as medians over the seeds:
#   best@N     best verified time after N trials (N = 1/4, 1/2, all of the budget)
#   vs best    the final best over the best time any session found
#   to 5%      trials until a config within 5% of that overall best was found
#              ("-" when it never was)
# The database keeps every trial, so `kiln report --db DB` draws the
# convergence curves (best so far vs trials, per strategy).
#
# usage: compare-strategies.sh --device D --kernel K --shape S [--budget 48]
#            [--seeds "1 2 3"] [--strategies "exhaustive random anneal evolve model"]
#            [--db PATH] [--kiln PATH] [-o OUT.md] [--report DIR]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

device="" kernel="" shape="" budget=48 seeds="1 2 3" out="" report_dir="" db=""
strategies="exhaustive random anneal evolve model"
kiln=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --device) device=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --shape) shape=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --strategies) strategies=$2; shift 2 ;;
    --db) db=$2; shift 2 ;;
    --kiln) kiln=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    --report) report_dir=$2; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (--help)" ;;
    esac
done
[[ -n $device && -n $kernel && -n $shape ]] || die "--device, --kernel and --shape are required"
[[ $budget =~ ^[0-9]+$ && $budget -ge 4 ]] || die "--budget must be a trial count >= 4 (got '$budget')"
command -v sqlite3 >/dev/null || die "sqlite3 (the command) is needed: apt-get install sqlite3"
[[ -n $kiln ]] || kiln=$(find_kiln)
[[ -n $db ]] || db=$(mktemp --suffix=.db)

q() { sqlite3 -batch -noheader "$db" "$@"; }

# One session per strategy x seed; remember which session is which.
declare -A session_of
runs=0 total=$(($(wc -w <<<"$strategies") * $(wc -w <<<"$seeds")))
for s in $strategies; do
    for seed in $seeds; do
        runs=$((runs + 1))
        echo "== [$runs/$total] $s seed $seed: $kernel $shape on $device, $budget trials" >&2
        before=$(q "SELECT coalesce(max(id), 0) FROM sessions" 2>/dev/null || echo 0)
        rc=0
        "$kiln" tune --device "$device" --kernel "$kernel" --shape "$shape" --strategy "$s" \
            --budget "$budget" --patience "$budget" --seed "$seed" --db "$db" >&2 || rc=$?
        [[ $rc -eq 0 ]] || die "tune --strategy $s --seed $seed failed (exit $rc)"
        id=$(q "SELECT max(id) FROM sessions")
        [[ $id -gt $before ]] || die "tune --strategy $s wrote no session to $db"
        session_of[$s:$seed]=$id
    done
done

# The best verified time any session found: the yardstick for all of them.
best_all=$(q "SELECT min(median_ns) FROM trials WHERE status = 'ok'")
[[ -n $best_all ]] || die "no verified trial in $db"

# best verified time within the first N trials of a session (trial order = id order)
best_at() {
    q "SELECT coalesce(min(median_ns), 'inf') FROM (SELECT status, median_ns FROM trials
       WHERE session_id = $1 ORDER BY id LIMIT $2) WHERE status = 'ok'"
}
# trials until one within 5% of the overall best ("-" if never)
trials_to_5pct() {
    q "SELECT coalesce((SELECT n FROM (SELECT median_ns, status, row_number() OVER (ORDER BY id) AS n
       FROM trials WHERE session_id = $1) WHERE status = 'ok' AND median_ns <= $best_all * 1.05
       ORDER BY n LIMIT 1), '-')"
}
# median of numbers on stdin ("-"/"inf" sort last)
median() { sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'; }
us() { awk -v ns="$1" 'BEGIN { if (ns == "inf" || ns == "") print "-"; else printf "%.1f", ns / 1000 }'; }

q1=$((budget / 4)) q2=$((budget / 2))
[[ -z $out ]] || exec >"$out"
dev_name=$(q "SELECT d.backend || ':' || d.name FROM sessions s JOIN devices d ON d.id = s.device_id
              WHERE s.id = ${session_of[${strategies%% *}:${seeds%% *}]}")
{
    echo "Strategy comparison: $kernel $shape on $dev_name, $budget trials per session, seeds: $seeds"
    echo "(median over seeds; times in us; best found by any session: $(us "$best_all") us)"
    echo
    echo "| strategy | best@$q1 | best@$q2 | best@$budget | vs best | trials to 5% | valid/run |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for s in $strategies; do
        a="" b="" c="" t="" valid=0 ran=0
        for seed in $seeds; do
            id=${session_of[$s:$seed]}
            a+="$(best_at "$id" "$q1")"$'\n'
            b+="$(best_at "$id" "$q2")"$'\n'
            c+="$(best_at "$id" "$budget")"$'\n'
            t+="$(trials_to_5pct "$id")"$'\n'
            valid=$((valid + $(q "SELECT count(*) FROM trials WHERE session_id = $id AND status = 'ok'")))
            ran=$((ran + $(q "SELECT count(*) FROM trials WHERE session_id = $id")))
        done
        cm=$(median <<<"${c%$'\n'}")
        ratio=$(awk -v c="$cm" -v b="$best_all" 'BEGIN { if (c == "inf") print "-"; else printf "%.3fx", c / b }')
        # "never" sorts after any trial count
        tm=$(awk '{print ($1 == "-") ? 999999 : $1}' <<<"${t%$'\n'}" | median)
        [[ $tm != 999999 ]] || tm="-"
        echo "| $s | $(us "$(median <<<"${a%$'\n'}")") | $(us "$(median <<<"${b%$'\n'}")") | $(us "$cm") |" \
            "$ratio | $tm | $valid/$ran |"
    done
    echo
    echo "database: $db (every trial; \`kiln report --db $db\` draws the convergence curves)"
}

if [[ -n $report_dir ]]; then
    "$kiln" report --db "$db" -o "$report_dir" >&2
fi
