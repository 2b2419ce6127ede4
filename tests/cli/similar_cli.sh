#!/usr/bin/env bash
# tests/cli/similar_cli.sh KILN - the similarity level end to end (issue 12):
# a database whose only device is *another* cpu (same backend, another
# fingerprint: name, compute units, bandwidth), with gemv_int4 winners for
# the shapes a tiny synthetic model decodes with. On this machine:
#   1. `kiln run --verbose` borrows those winners: each gemv_int4 op says
#      "similar device", the borrowed config and "similar to <device>
#      (distance d), verified here"; the greedy text equals the text with no
#      database (the borrowed configs only change the work split, not the sums);
#   2. a borrowed winner that is not valid here (a gpu-only parameter on the
#      cpu) is refused: the op runs the default, says why, and the text is
#      still the same;
#      (the same winner from a device of this architecture, a level that is
#      not verified, is refused at build time, also with the reason);
#   3. `kiln db best` names the similar device and the same distance as run.
# The winners' source hash is the one this build's gemv_int4 has on the cpu
# (taken from a one-trial tune), so the level is reached for real, not
# skipped as stale.
set -uo pipefail
kiln=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
command -v jq >/dev/null || { echo "FAIL: jq not installed (scripts/install-deps.sh)"; exit 1; }
export KILN_CPU_THREADS=1

"$kiln" synth --preset tiny -o "$tmp/tiny.gguf" >/dev/null 2>&1 || { echo "FAIL: synth exited $?"; exit 1; }
prompt="The quick brown fox jumps over the lazy dog, again and again."
run() { # run DB OUT ERR: greedy decode on the cpu, --verbose; DB "" for none
    "$kiln" run -m "$tmp/tiny.gguf" -p "$prompt" -n 16 --device cpu ${1:+--db "$1"} --verbose >"$2" 2>"$3"
}
export KILN_DB="$tmp/none.db" # absent: no database unless --db names one
run "" "$tmp/ref.out" "$tmp/ref.err" || { cat "$tmp/ref.err"; echo "FAIL: kiln run (no database) failed"; exit 1; }
grep -q "no tuning database" "$tmp/ref.err" || fail "the reference run found a database: $(head -1 "$tmp/ref.err")"
# the decode shapes of gemv_int4 (one-token steps), as this run names them
mapfile -t shapes < <(awk '$2 == "gemv_int4" { print $3 }' "$tmp/ref.err" | sort -u)
[[ ${#shapes[@]} -ge 3 ]] || { echo "FAIL: the reference run has ${#shapes[@]} gemv_int4 shapes, want >= 3"; exit 1; }
echo "gemv_int4 shapes: ${shapes[*]}"

# this build's gemv_int4 source hash on the cpu, from a one-trial tune
"$kiln" tune --device cpu --kernel gemv_int4 --shape m=64,k=64,quant=q4_0,group=32 --budget 1 --db "$tmp/seed.db" \
    >"$tmp/seed.log" 2>&1 || { cat "$tmp/seed.log"; echo "FAIL: the seed tune exited $?"; exit 1; }
"$kiln" db --db "$tmp/seed.db" export >"$tmp/seed.json" || { echo "FAIL: export exited $?"; exit 1; }
hash=$(jq -r '.kernels[] | select(.name == "gemv_int4") | .source_hash' "$tmp/seed.json")
[[ $hash =~ ^[0-9a-f]{16}$ ]] || { echo "FAIL: no gemv_int4 source hash in the seed export: '$hash'"; exit 1; }
me=$(jq -c '.devices[0]' "$tmp/seed.json")

# doc CONFIG: this host's cpu device row as another machine of the same
# backend and vendor: renamed, another architecture (so that no level above
# "similar device" matches), twice the cores and half the bandwidth, with
# CONFIG as its winner for every gemv_int4 shape
doc() {
    jq -n --argjson me "$me" --arg hash "$hash" --arg cfg "$1" --args '{
        kiln_db_schema: 3,
        devices: [$me + {id: 1, fingerprint: ("cpu|" + $me.vendor + "|phone|" + $me.driver_version), name: "Phone Cpu X1",
                         arch: ($me.arch + "-other"),
                         compute_units: ($me.compute_units * 2), copy_gbps: ($me.copy_gbps / 2),
                         read_gbps: ($me.read_gbps / 2)}],
        kernels: [{id: 1, name: "gemv_int4", source_hash: $hash}],
        winners: [$ARGS.positional[] | {device_id: 1, kernel_id: 1, shape_key: ., config_json: $cfg, median_ns: 1234}]
    }' "${shapes[@]}"
}
# 1. a borrowed config valid here: rows per task and prefetch, the f32 path (the same sums as the default)
good='{"wg":64,"rows":4,"vec":1,"unroll":1,"splitk":1,"reduce":0,"layout":0,"prefetch":256,"act":0,"ilv":1,"xsg":0,"w64":0}'
doc "$good" >"$tmp/good.json"
"$kiln" db --db "$tmp/good.db" import "$tmp/good.json" || fail "importing the other device's winners exited $?"
[[ $(sqlite3 "$tmp/good.db" "SELECT COUNT(*) FROM devices") = 1 ]] || fail "good.db holds more than the other device"

run "$tmp/good.db" "$tmp/good.out" "$tmp/good.err" || fail "kiln run with the borrowed winners exited $?"
cmp -s "$tmp/ref.out" "$tmp/good.out" ||
    fail "the borrowed winners changed the greedy text: '$(cat "$tmp/ref.out")' vs '$(cat "$tmp/good.out")'"
dist=""
for s in "${shapes[@]}"; do
    line=$(awk -v s="$s" '$2 == "gemv_int4" && $3 == s' "$tmp/good.err")
    [[ -n $line ]] || { fail "$s: no verbose line"; continue; }
    grep -qF "similar device $good (similar to cpu Phone Cpu X1 (" <<<"$line" ||
        fail "$s: not the borrowed config at the similar level: $line"
    grep -qE '\(distance [0-9]+\.[0-9]{2}\), verified here\)$' <<<"$line" || fail "$s: no distance or not verified: $line"
    d=$(sed -nE 's/.*\(distance ([0-9.]+)\).*/\1/p' <<<"$line")
    [[ -z $dist || $d = "$dist" ]] || fail "$s: distance $d, another shape's $dist (one device, one distance)"
    dist=$d
done
# the other device has twice the cores: its distance is more than 0
awk -v d="${dist:-0}" 'BEGIN { exit !(d > 0) }' || fail "distance '$dist' is not positive"
# the summary counts a borrowed, verified config as tuned (not default)
grep -q "^kernel configs: ${#shapes[@]} tuned," "$tmp/good.err" ||
    fail "the summary does not count ${#shapes[@]} borrowed configs: $(grep '^kernel configs' "$tmp/good.err")"
# the other kernels had no winner anywhere: still the default
grep -E '^kiln: (rmsnorm|rope|argmax) ' "$tmp/good.err" | grep -qv ' default ' &&
    fail "a kernel without winners did not run its default"

# 2. a borrowed config that is not valid here: wg is a gpu parameter
bad='{"wg":128,"rows":4,"vec":1,"unroll":1,"splitk":1,"reduce":0,"layout":0,"prefetch":0,"act":0,"ilv":1,"xsg":0,"w64":0}'
doc "$bad" >"$tmp/bad.json"
"$kiln" db --db "$tmp/bad.db" import "$tmp/bad.json" || fail "importing the invalid winners exited $?"
run "$tmp/bad.db" "$tmp/bad.out" "$tmp/bad.err" || fail "kiln run with an invalid borrowed winner exited $?"
cmp -s "$tmp/ref.out" "$tmp/bad.out" ||
    fail "the refused winners changed the greedy text: '$(cat "$tmp/ref.out")' vs '$(cat "$tmp/bad.out")'"
for s in "${shapes[@]}"; do
    line=$(awk -v s="$s" '$2 == "gemv_int4" && $3 == s' "$tmp/bad.err")
    ref=$(awk -v s="$s" '$2 == "gemv_int4" && $3 == s { print $5 }' "$tmp/ref.err")
    [[ -n $line ]] || { fail "$s: no verbose line (invalid winner)"; continue; }
    [[ $(awk '{ print $4, $5 }' <<<"$line") = "default $ref" ]] || fail "$s: not the default config $ref: $line"
    grep -qE "similar to cpu Phone Cpu X1 \(.*\(distance $dist\).*not valid on this device: wg applies to gpu backends only" \
        <<<"$line" || fail "$s: the fallback does not say why: $line"
    grep -q "verified here" <<<"$line" && fail "$s: an invalid config said verified: $line"
done
grep -q "^kernel configs: 0 tuned," "$tmp/bad.err" ||
    fail "refused configs counted as tuned: $(grep '^kernel configs' "$tmp/bad.err")"

# the same invalid winner from a device of this architecture (the level above, never verified) is refused
# when the variant is built: the note must still carry the kernel's reason (it was cut off by the config JSON)
doc "$bad" | jq --argjson me "$me" '.devices[0].arch = $me.arch' >"$tmp/bad_arch.json"
"$kiln" db --db "$tmp/bad_arch.db" import "$tmp/bad_arch.json" || fail "importing the same-arch invalid winners exited $?"
run "$tmp/bad_arch.db" "$tmp/bad_arch.out" "$tmp/bad_arch.err" || fail "kiln run with an invalid same-arch winner exited $?"
cmp -s "$tmp/ref.out" "$tmp/bad_arch.out" || fail "the refused same-arch winners changed the greedy text"
line=$(awk -v s="${shapes[0]}" '$2 == "gemv_int4" && $3 == s' "$tmp/bad_arch.err")
grep -qF "default $(awk -v s="${shapes[0]}" '$2 == "gemv_int4" && $3 == s { print $5 }' "$tmp/ref.err") (tuned config not valid here (wg applies to gpu backends only))" \
    <<<"$line" || fail "same-arch invalid winner: not the default with the reason: $line"

# 3. kiln db best from this machine: the similar device and its distance
for s in "${shapes[@]}"; do
    b=$("$kiln" db --db "$tmp/good.db" best --kernel gemv_int4 --shape "$s" --device cpu --json) ||
        { fail "db best $s exited $?"; continue; }
    jq -e --arg d "$dist" --argjson cfg "$good" '.level == "similar device" and (.similar_to | test("Phone Cpu X1"))
        and ((.distance * 100 | round) == ($d | tonumber * 100 | round)) and .config == $cfg' <<<"$b" >/dev/null ||
        fail "db best $s --json: $b (want similar device Phone Cpu X1, distance $dist)"
done
txt=$("$kiln" db --db "$tmp/good.db" best --kernel gemv_int4 --shape "${shapes[0]}" --device cpu)
grep -qF "similar device -> $good (similar to cpu Phone Cpu X1 (" <<<"$txt" && grep -qF "(distance $dist)" <<<"$txt" ||
    fail "db best (text): $txt"
echo "run: $(awk '$2 == "gemv_int4"' "$tmp/good.err" | head -1)"
echo "refused: $(awk '$2 == "gemv_int4"' "$tmp/bad.err" | head -1)"
echo "db best: $txt"
[[ $fails -eq 0 ]] && echo "ok: borrowed winners verified and used (distance $dist), an invalid one refused, db best agrees"
exit $((fails > 0))
