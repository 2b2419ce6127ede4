#!/bin/bash
# bench/harness/run-fleet.sh - run the harness on every target of a fleet
# file (phones over adb, hosts over ssh, this host), then merge what came
# back into one database and write one report of it.
#
#   run-fleet.sh --fleet FILE [options] [-- BENCH_ARGS...]
#     --fleet FILE     the targets, one a line (below)
#     --out DIR        results (default fleet-results): DIR/pulled/NAME.db per target,
#                      DIR/fleet.db (all merged), DIR/fleet.md (a row per device),
#                      DIR/report/ (kiln report of fleet.db), DIR/NAME.log per target
#     --kiln PATH      kiln for this host, and the binary sent to targets that name none
#     --tune N         tune on every target first (trials per kernel x shape, or 90s, 5m)
#     --sustained S    tune and bench choose and report on S seconds back to back (thermal)
# BENCH_ARGS go to tune and bench on every target (--kernel K --shape SPEC ...).
#
# Fleet file: `KIND NAME [OPTIONS...]` a line, # comments; words are split on
# blanks (no quoting). KIND is adb (NAME: the serial; OPTIONS of run-adb.sh),
# ssh (NAME: [USER@]HOST; OPTIONS of run-ssh.sh) or local (NAME: a label;
# OPTIONS of run-local.sh). Options on the line win over the defaults here,
# e.g.
#   adb    R5CT1234ABC  --kiln out/aarch64/kiln --device opencl --device cpu
#   ssh    bench@jetson -p 2222 --device cuda
#   local  workstation  --device vulkan
# NAMEs must be unique: each names its pulled database.
# Exit: 0 when every target succeeded and the merge and report were written,
# else the last failing status (the other targets still run).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"

fleet="" out="fleet-results" kiln="" tune="" sustained=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --fleet) fleet="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --kiln) kiln="$2"; shift 2 ;;
        --tune) tune="$2"; shift 2 ;;
        --sustained) sustained="$2"; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) die "unknown option '$1'" ;;
    esac
done
[[ -n "$fleet" ]] || die "--fleet FILE is required"
[[ -r "$fleet" ]] || die "cannot read the fleet file '$fleet'"
[[ -n "$kiln" ]] || kiln="$(find_kiln)"
command -v sqlite3 >/dev/null 2>&1 || die "sqlite3 not found (apt-get install sqlite3): fleet.md reads the merged database"
mkdir -p "$out/pulled"
common=()
[[ -z "$tune" ]] || common+=(--tune "$tune")
[[ -z "$sustained" ]] || common+=(--sustained "$sustained")

rc=0 n=0 lineno=0
names=() kinds=()
while IFS= read -r line || [[ -n "$line" ]]; do
    lineno=$((lineno + 1))
    line="${line%%#*}"
    read -ra w <<<"$line"
    [[ ${#w[@]} -gt 0 ]] || continue
    [[ ${#w[@]} -ge 2 ]] || die "$fleet:$lineno: want KIND NAME [OPTIONS], got '${w[*]}'"
    kind="${w[0]}" name="${w[1]}" opts=("${w[@]:2}")
    label="${name#*@}"
    for seen in "${names[@]}"; do
        [[ "$seen" != "$label" ]] || die "$fleet:$lineno: target '$label' appears twice (names must be unique)"
    done
    case "$kind" in
        adb) cmd=("$here/run-adb.sh" --kiln "$kiln" --host-kiln "$kiln" --out "$out/pulled" "${common[@]}" "${opts[@]}" "$name") ;;
        ssh) cmd=("$here/run-ssh.sh" --kiln "$kiln" --out "$out/pulled" "${common[@]}" "${opts[@]}" "$name") ;;
        local)
            lopts=(--kiln "$kiln" --db "$out/pulled/$label.db")
            [[ -z "$tune" ]] || lopts+=(--budget "$tune")
            [[ -z "$sustained" ]] || lopts+=(--sustained "$sustained")
            cmd=("$here/run-local.sh" "${lopts[@]}" "${opts[@]}") ;;
        *) die "$fleet:$lineno: unknown kind '$kind' (adb, ssh or local)" ;;
    esac
    names+=("$label") kinds+=("$kind")
    n=$((n + 1))
    echo "== [$n] $kind $name" >&2
    r=0
    "${cmd[@]}" -- "$@" >"$out/$label.log" 2>&1 || r=$?
    if [[ $r -ne 0 ]]; then
        rc=$r
        echo "== [$n] $kind $name failed (exit $r); the last lines of $out/$label.log:" >&2
        tail -5 "$out/$label.log" >&2
    fi
done <"$fleet"
[[ $n -gt 0 ]] || die "$fleet lists no target"

# One database of everything that came back.
merged="$out/fleet.db"
rm -f "$merged" "$merged-wal" "$merged-shm"
dbs=()
for l in "${names[@]}"; do
    if [[ -f "$out/pulled/$l.db" ]]; then dbs+=("$out/pulled/$l.db"); else echo "== $l: no database came back" >&2; fi
done
[[ ${#dbs[@]} -gt 0 ]] || die "no target returned a database"
"$kiln" db --db "$merged" merge "${dbs[@]}" >&2 || die "merging into $merged failed"

# fleet.md: a row per device of the merged database, with the target(s) it ran on.
declare -A where=()
for i in "${!names[@]}"; do
    f="$out/pulled/${names[$i]}.db"
    [[ -f "$f" ]] || continue
    while IFS= read -r fp; do
        where[$fp]+="${where[$fp]:+, }${kinds[$i]} ${names[$i]}"
    done < <(sqlite3 -readonly "$f" "SELECT fingerprint FROM devices WHERE id IN
        (SELECT device_id FROM sessions UNION SELECT device_id FROM bench_runs)")
done
{
    echo "# Fleet: ${#names[@]} target(s), $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Every database pulled from $fleet, merged into fleet.db; the figures and the cross-device view are in"
    echo "report/index.html. Speedup: the winners' geometric mean of device default / tuned time."
    echo
    echo "| target | device | backend | copy GB/s | tuned kernel x shapes | geomean speedup | bench runs | bench results |"
    echo "|---|---|---|---:|---:|---:|---:|---:|"
    while IFS=$'\t' read -r fp name backend copy nw lsum nruns nres; do
        gm=$(awk -v s="$lsum" -v n="$nw" 'BEGIN { if (n > 0 && s != "") printf "%.2fx", exp(s / n); else print "-" }')
        printf '| %s | %s | %s | %.1f | %s | %s | %s | %s |\n' "${where[$fp]:-(merged only)}" "$name" "$backend" \
            "${copy:-0}" "$nw" "$gm" "$nruns" "$nres"
    done < <(sqlite3 -readonly -separator $'\t' "$merged" "SELECT d.fingerprint, d.name, d.backend, IFNULL(d.copy_gbps, 0),
        (SELECT COUNT(*) FROM winners w WHERE w.device_id = d.id),
        (SELECT SUM(LN(w.speedup)) FROM winners w WHERE w.device_id = d.id AND w.speedup > 0),
        (SELECT COUNT(*) FROM bench_runs r WHERE r.device_id = d.id),
        (SELECT COUNT(*) FROM bench_results x JOIN bench_runs r ON r.id = x.run_id WHERE r.device_id = d.id)
        FROM devices d WHERE d.id IN (SELECT device_id FROM winners UNION SELECT device_id FROM bench_runs)
        ORDER BY d.backend, d.name")
} >"$out/fleet.md"
cat "$out/fleet.md"

r=0
"$kiln" report --db "$merged" -o "$out/report" >&2 || r=$?
[[ $r -eq 0 ]] || { echo "kiln report failed (exit $r)" >&2; rc=$r; }
echo "== fleet: $merged, $out/fleet.md, $out/report/index.html" >&2
exit "$rc"
