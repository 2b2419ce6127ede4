#!/usr/bin/env bash
# Same-run comparison of Kiln with llama.cpp on this machine (the CPU backend of both).
#
#   bash bench/peers/compare.sh --model M.gguf [--model ...] [--threads N] [--rounds R]
#        [--pp 128] [--tg 32] [--tg-depth D] [--kernels] [--kiln PATH] [--out FILE.md]
#
#   --model FILE    a GGUF model both engines load (repeatable)
#   --threads N     threads of both engines (default: nproc); Kiln's via KILN_CPU_THREADS
#   --rounds R      alternating rounds (default 5): per round one llama.cpp run, then one Kiln run
#   --pp N --tg N   prompt tokens / generated tokens (default 128 / 32)
#   --tg-depth D    context already in the KV cache when llama-bench times tg (default: --pp).
#                   `kiln bench model` decodes right after its pp-token prefill, so D = pp
#                   compares the same attention lengths; 0 is llama-bench's plain `-p 0 -n TG`.
#   --kernels       also compare the int4/int8 GEMV (MUL_MAT, n=1) of both: q4_0, q4_1, q8_0 at
#                   m x k in {4096x4096, 14336x4096, 4096x14336} (m = output rows, k = reduction)
#   --kiln PATH     the kiln binary (default ./build-release/src/kiln, else ./build/src/kiln)
#   --kiln-copies N with --kernels: kiln's input copies in rotation (default 1: cache-hot, as test-backend-ops)
#   --tune N        with --kernels: tune kiln's gemv at the compared shapes first (N trials each; 0: off)
#   --llama-env V=X environment for the llama.cpp runs (repeatable), e.g. OMP_WAIT_POLICY=passive:
#                   the OpenMP build's threads spin at barriers, which collapses under a loaded host
#   --out FILE      also write the markdown report there
#
# The llama.cpp binaries come from bench/peers/build-llama.sh (run it first), found under
# ${KILN_PEERS_DIR:-$HOME/.cache/kiln/peers}/llama.cpp-<pinned version>/build-cpu/bin, or
# $LLAMA_BIN_DIR. The report (markdown) goes to stdout; progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

models=()
threads="$(nproc)"
rounds=5
pp=128
tg=32
tg_depth=""
do_kernels=0
kcopies=1
ktune=0
kiln=""
out=""
llama_env=()
lenv=()   # the prefix of the llama.cpp commands: env VAR=VALUE... when --llama-env was given

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "compare.sh: $*" >&2; exit 2; }
posint() {
    if ! [[ "$2" =~ ^[0-9]+$ ]] || [[ "$2" -lt "${3:-1}" ]]; then die "$1 needs an integer >= ${3:-1}, got '$2'"; fi
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --model) [[ $# -ge 2 ]] || die "--model needs a file"; models+=("$2"); shift ;;
        --threads) posint --threads "${2:-}"; threads="$2"; shift ;;
        --rounds) posint --rounds "${2:-}"; rounds="$2"; shift ;;
        --pp) posint --pp "${2:-}"; pp="$2"; shift ;;
        --tg) posint --tg "${2:-}" 2; tg="$2"; shift ;;
        --tg-depth) posint --tg-depth "${2:-}" 0; tg_depth="$2"; shift ;;
        --kernels) do_kernels=1 ;;
        --kiln-copies) posint --kiln-copies "${2:-}"; kcopies="$2"; shift ;;
        --tune) posint --tune "${2:-}" 0; ktune="$2"; shift ;;
        --kiln) [[ $# -ge 2 ]] || die "--kiln needs a path"; kiln="$2"; shift ;;
        --out) [[ $# -ge 2 ]] || die "--out needs a file"; out="$2"; shift ;;
        --llama-env) [[ "${2:-}" == *=* ]] || die "--llama-env needs VAR=VALUE"; llama_env+=("$2"); shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (--help)" ;;
    esac
    shift
done
[[ -n "$tg_depth" ]] || tg_depth="$pp"
[[ ${#llama_env[@]} -eq 0 ]] || lenv=(env "${llama_env[@]}")
[[ ${#models[@]} -gt 0 || $do_kernels -eq 1 ]] || die "nothing to compare: give --model FILE.gguf and/or --kernels"
for m in "${models[@]}"; do
    [[ -f "$m" ]] || { echo "compare.sh: no model file $m" >&2; exit 3; }
done

# --- tools ---------------------------------------------------------------------------------------
if ! command -v jq >/dev/null 2>&1; then
    echo "compare.sh: installing jq" >&2
    if [[ "$(id -u)" -eq 0 ]]; then sudo_=(); elif command -v sudo >/dev/null 2>&1; then sudo_=(sudo); else
        echo "compare.sh: jq is missing and cannot be installed (need root or sudo)" >&2; exit 3; fi
    "${sudo_[@]}" apt-get update -qq >/dev/null
    "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
fi

if [[ -z "$kiln" ]]; then
    for c in "$repo/build-release/src/kiln" "$repo/build/src/kiln"; do
        if [[ -x "$c" ]]; then kiln="$c"; break; fi
    done
    [[ -n "$kiln" ]] || { echo "compare.sh: no kiln binary in build-release/ or build/ (build one, or give --kiln PATH)" >&2; exit 3; }
fi
[[ -x "$kiln" ]] || { echo "compare.sh: $kiln is not executable" >&2; exit 3; }
kiln="$(realpath "$kiln")"

version="$(sed -n 's/^LLAMA_CPP_PYTHON_VERSION=//p' "$here/build-llama.sh")"
llama_commit="$(sed -n 's/^LLAMA_CPP_COMMIT=//p' "$here/build-llama.sh")"
peer_root="${KILN_PEERS_DIR:-$HOME/.cache/kiln/peers}/llama.cpp-$version"
bin="${LLAMA_BIN_DIR:-$peer_root/build-cpu/bin}"
# test-backend-ops only for --kernels: a build of `--only llama-bench` suffices for the model rows
need=(llama-bench)
if [[ $do_kernels -eq 1 ]]; then need+=(test-backend-ops); fi
for t in "${need[@]}"; do
    [[ -x "$bin/$t" ]] || { echo "compare.sh: no $bin/$t: run bash bench/peers/build-llama.sh (or --only $t) first" >&2; exit 3; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Run a snapshot of kiln: its kernel workers re-exec the binary's path (/proc/self/exe), which
# fails (exit 127) when a concurrent build replaces the file mid-run.
kiln_orig="$kiln"
cp "$kiln" "$work/kiln"
kiln="$work/kiln"

# Kiln reads tuned configs from its database and `bench kernels` stores a run there: give it a
# copy, so that the tuned lookups are the user's and the user's bench history stays clean.
kiln_db_src="${KILN_DB:-$HOME/.local/share/kiln/kiln.db}"
kiln_db="$work/kiln.db"
if [[ -f "$kiln_db_src" ]]; then cp "$kiln_db_src" "$kiln_db"; db_note="a copy of $kiln_db_src"
else db_note="none (default configs)"; fi

# --- helpers -------------------------------------------------------------------------------------
log() { echo "[compare] $*" >&2; }

# stats V... -> "median min max" (median of an even count: mean of the middle two)
stats() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan nan nan"; exit }
        med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.6g %.6g %.6g\n", med, v[1], v[NR] }'
}
# fmt "median min max" [digits] -> "median [min..max]"
fmt() { awk -v d="${2:-1}" '{ printf "%.*f [%.*f..%.*f]", d, $1, d, $2, d, $3 }' <<<"$1"; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "nan"; else printf "%.6g\n", a / b }'; }
quote() {   # a shell-safe command line, quoting only the words that need it
    local s="" a
    for a in "$@"; do
        if [[ "$a" =~ ^[A-Za-z0-9_./=,:+@%-]+$ ]]; then s+="$a "; else s+="$(printf '%q' "$a") "; fi
    done
    echo "${s% }"
}

run_logged() {   # run_logged LOG CMD... : CMD's stdout on stdout, its stderr to LOG.err
    local logf="$1.err"
    shift
    if ! "$@" 2>"$logf"; then
        echo "compare.sh: failed: $(quote "$@")" >&2
        tail -20 "$logf" >&2
        exit 1
    fi
}

# --- the report header ---------------------------------------------------------------------------
cpu_model="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
flags="$(grep -m1 '^flags' /proc/cpuinfo || true)"
simd=""
for f in avx2 avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx_vnni; do
    [[ " $flags " == *" $f "* ]] && simd+="$f "
done
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$repo" diff --quiet HEAD -- 2>/dev/null || commit+=" (+ uncommitted changes)"
kiln_build_commit="$(KILN_CPU_THREADS=1 "$kiln" --version 2>/dev/null | head -1 || true)"
ktn="$(( $(getconf _NPROCESSORS_ONLN) / 2 ))"; [[ $ktn -ge 1 ]] || ktn=1

report="$work/report.md"
{
    echo "# Kiln vs llama.cpp (same machine, same run)"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| host | $cpu_model, $(nproc) cores online, $(free -g | awk '/^Mem:/ { print $2 }') GiB |"
    echo "| SIMD flags | ${simd:-none of avx2/avx512} |"
    echo "| date | $(date -u +%Y-%m-%dT%H:%M:%SZ) |"
    echo "| kiln repo commit | $commit |"
    echo "| kiln binary | \`$kiln_orig\`${kiln_build_commit:+ ($kiln_build_commit)}, run from a copy |"
    echo "| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) |"
    echo "| kiln tuning db | $db_note |"
    echo "| llama.cpp | $llama_commit (vendored in llama-cpp-python $version, PyPI sdist), \`$bin\` |"
    echo "| llama.cpp environment | ${llama_env[*]:-(as inherited)} |"
    echo "| threads | $threads (model comparison); kernels: $ktn (see below) |"
    echo "| rounds | $rounds, alternating: llama.cpp then kiln in every round |"
} >"$report"

# --- model comparison ----------------------------------------------------------------------------
for m in "${models[@]}"; do
    name="$(basename "$m")"
    cmd_lpp=("${lenv[@]}" "$bin/llama-bench" -m "$m" -t "$threads" -p "$pp" -n 0 -r 1 -o json)
    cmd_ltg=("${lenv[@]}" "$bin/llama-bench" -m "$m" -t "$threads" -p 0 -n "$tg" -d "$tg_depth" -r 1 -o json)
    cmd_k=("$kiln" bench model -m "$m" --device cpu -p "$pp" -n "$tg" -r 1 --no-store --format json --db "$kiln_db")
    l_pp=(); l_tg=(); k_pp=(); k_tg=(); r_pp=(); r_tg=(); k_bw=(); wmb=
    for ((r = 1; r <= rounds; r++)); do
        log "$name round $r/$rounds: llama-bench pp$pp"
        run_logged "$work/l" "${cmd_lpp[@]}" >"$work/lpp.json"
        log "$name round $r/$rounds: llama-bench tg$tg @ depth $tg_depth"
        run_logged "$work/l" "${cmd_ltg[@]}" >"$work/ltg.json"
        log "$name round $r/$rounds: kiln bench model"
        run_logged "$work/k" env KILN_CPU_THREADS="$threads" "${cmd_k[@]}" >"$work/k.json"
        lp="$(jq -r '.[] | select(.n_prompt > 0 and .n_gen == 0) | .avg_ts' "$work/lpp.json" | head -1)"
        lt="$(jq -r '.[] | select(.n_gen > 0 and .n_prompt == 0) | .avg_ts' "$work/ltg.json" | head -1)"
        kp="$(jq -r --arg k "pp${pp}_tok_s" '.[] | select(.metric == $k) | .value' "$work/k.json" | head -1)"
        kt="$(jq -r --arg k "tg${tg}_tok_s" '.[] | select(.metric == $k) | .value' "$work/k.json" | head -1)"
        # the decode roof kiln measured: weights read per token and the read bandwidth (GB/s)
        wmb="$(jq -r '.[] | select(.metric == "weights_mb_per_token") | .value' "$work/k.json" | head -1)"
        kb="$(jq -r '.[] | select(.metric == "read_gbps") | .value' "$work/k.json" | head -1)"
        [[ "$kb" =~ ^[0-9.eE+-]+$ ]] && k_bw+=("$kb")
        for v in "$lp" "$lt" "$kp" "$kt"; do
            [[ "$v" =~ ^[0-9.eE+-]+$ ]] || { echo "compare.sh: could not parse a result (got '$v')" >&2; exit 1; }
        done
        l_pp+=("$lp"); l_tg+=("$lt"); k_pp+=("$kp"); k_tg+=("$kt")
        r_pp+=("$(div "$kp" "$lp")"); r_tg+=("$(div "$kt" "$lt")")
        log "  llama pp $lp tg $lt | kiln pp $kp tg $kt tok/s"
    done
    {
        echo
        echo "## $name"
        echo
        echo "Commands (each round: the two llama-bench runs, then kiln):"
        echo
        echo "    $(quote "${cmd_lpp[@]}")"
        echo "    $(quote "${cmd_ltg[@]}")"
        echo "    KILN_CPU_THREADS=$threads $(quote "${cmd_k[@]}")"
        echo
        echo "Raw (tok/s):"
        echo
        echo "| round | llama.cpp pp$pp | kiln pp$pp | kiln/llama | llama.cpp tg$tg | kiln tg$tg | kiln/llama |"
        echo "|---:|---:|---:|---:|---:|---:|---:|"
        for ((i = 0; i < rounds; i++)); do
            printf '| %d | %.2f | %.2f | %.3f | %.2f | %.2f | %.3f |\n' $((i + 1)) \
                "${l_pp[i]}" "${k_pp[i]}" "${r_pp[i]}" "${l_tg[i]}" "${k_tg[i]}" "${r_tg[i]}"
        done
        echo
        echo "Summary: median [min..max] over rounds; ratio = median of the per-round kiln/llama ratios (> 1: kiln faster)"
        echo
        echo "| metric | llama.cpp tok/s | kiln tok/s | kiln/llama |"
        echo "|---|---:|---:|---:|"
        echo "| pp$pp | $(fmt "$(stats "${l_pp[@]}")") | $(fmt "$(stats "${k_pp[@]}")") | $(fmt "$(stats "${r_pp[@]}")" 3) |"
        echo "| tg$tg (llama at depth $tg_depth; kiln after its pp$pp) | $(fmt "$(stats "${l_tg[@]}")") | $(fmt "$(stats "${k_tg[@]}")") | $(fmt "$(stats "${r_tg[@]}")" 3) |"
        if [[ ${#k_bw[@]} -gt 0 && "$wmb" =~ ^[0-9.eE+-]+$ ]]; then
            bw="$(stats "${k_bw[@]}")"; bwm="${bw%% *}"
            bound="$(awk -v b="$bwm" -v w="$wmb" 'BEGIN { printf "%.6g", b * 1e3 / w }')"
            pl=(); pk=()
            for ((i = 0; i < rounds; i++)); do
                pl+=("$(awk -v t="${l_tg[i]}" -v b="$bound" 'BEGIN { printf "%.6g", 100 * t / b }')")
                pk+=("$(awk -v t="${k_tg[i]}" -v b="$bound" 'BEGIN { printf "%.6g", 100 * t / b }')")
            done
            echo
            echo "Decode roof: $(printf '%.1f' "$wmb") MB of weights read per token (kiln's count: every matrix once, one"
            echo "embedding row) / read bandwidth $(fmt "$bw" 2) GB/s (kiln's device-timed probe, after each round's"
            echo "repetitions) = $(printf '%.1f' "$bound") tok/s. tg as % of that bound: llama.cpp $(fmt "$(stats "${pl[@]}")"),"
            echo "kiln $(fmt "$(stats "${pk[@]}")") (KV reads and activations are outside the bound)."
        fi
    } >>"$report"
done

# --- kernel comparison ---------------------------------------------------------------------------
if [[ $do_kernels -eq 1 ]]; then
    quants=(q4_0 q4_1 q8_0)
    shapes=("4096 4096" "14336 4096" "4096 14336")
    # ggml's enum values, from the headers of the very sources the binary was built from
    inc="$peer_root/src/ggml/include"
    [[ -f "$inc/ggml.h" ]] || { echo "compare.sh: no $inc/ggml.h (the build-llama.sh source tree)" >&2; exit 3; }
    cat >"$work/enums.c" <<'EOF'
#include <stdio.h>
#include "ggml.h"
int main(void)
{
    printf("%d %d %d %d %d\n", (int)GGML_OP_MUL_MAT, (int)GGML_TYPE_F32, (int)GGML_TYPE_Q4_0, (int)GGML_TYPE_Q4_1,
           (int)GGML_TYPE_Q8_0);
    return 0;
}
EOF
    cc -I "$inc" -o "$work/enums" "$work/enums.c"
    read -r op_mul_mat t_f32 t_q4_0 t_q4_1 t_q8_0 < <("$work/enums")
    declare -A tcode=([q4_0]=$t_q4_0 [q4_1]=$t_q4_1 [q8_0]=$t_q8_0)
    # test-backend-ops --test-file lines: op type ne0..3 n_params params... n_src
    # (src: type ne0..3 nb0..3; nb 0 = contiguous) name. MUL_MAT: src0 [k, m] weights,
    # src1 [k, n] activations, out f32 [m, n].
    testfile="$work/mul_mat.txt"
    kshapes=()
    : >"$testfile"
    for q in "${quants[@]}"; do
        for s in "${shapes[@]}"; do
            read -r M K <<<"$s"
            echo "$op_mul_mat $t_f32 $M 1 1 1 0 2 ${tcode[$q]} $K $M 1 1 0 0 0 0 $t_f32 $K 1 1 1 0 0 0 0 kiln_${q}_m${M}_k${K}" >>"$testfile"
            kshapes+=(--shape "m=$M,k=$K,quant=$q,group=32,act=q8")
        done
    done
    cmd_lk=("${lenv[@]}" "$bin/test-backend-ops" perf -b CPU -o MUL_MAT --test-file "$testfile")
    cmd_kk=("$kiln" bench kernels --device cpu --kernel gemv_int4 "${kshapes[@]}" -r 1 --copies "$kcopies" --format json
            --db "$kiln_db")
    if [[ $ktune -gt 0 ]]; then
        # kiln's number is a tuned one: these shapes first, into the database copy
        cmd_kt=("$kiln" tune --device cpu --kernel gemv_int4 "${kshapes[@]}" --budget "$ktune" --db "$kiln_db")
        log "kernels: $(quote "${cmd_kt[@]}")"
        run_logged "$work/kt" env KILN_CPU_THREADS="$ktn" "${cmd_kt[@]}" >/dev/null
    fi
    declare -A lk kk
    for ((r = 1; r <= rounds; r++)); do
        log "kernels round $r/$rounds: test-backend-ops perf"
        run_logged "$work/lk" "${cmd_lk[@]}" >"$work/lk.txt"
        log "kernels round $r/$rounds: kiln bench kernels"
        run_logged "$work/kk" env KILN_CPU_THREADS="$ktn" "${cmd_kk[@]}" >"$work/kk.json"
        for q in "${quants[@]}"; do
            for s in "${shapes[@]}"; do
                read -r M K <<<"$s"
                key="${q}_m${M}_k${K}"
                lu="$(sed 's/\x1b\[[0-9;]*m//g' "$work/lk.txt" | awk -v n="name=kiln_$key," '
                    index($0, n) { for (i = 1; i < NF; i++) if ($(i + 1) == "us/run") { print $i; exit } }')"
                ku="$(jq -r --arg s "gemv_int4 m$M.k$K.$q.g32.xq8" '.[] | select(.subject == $s and .metric == "tuned_us") | .value' \
                    "$work/kk.json" | head -1)"
                for v in "$lu" "$ku"; do
                    [[ "$v" =~ ^[0-9.eE+-]+$ ]] || {
                        echo "compare.sh: could not parse the $key kernel result (got '$v'); outputs:" >&2
                        cat "$work/lk.txt" "$work/kk.json" >&2; exit 1; }
                done
                lk[$key]+="$lu "; kk[$key]+="$ku "
                log "  $key: llama $lu us, kiln $ku us"
            done
        done
    done
    {
        echo
        echo "## Kernels: GEMV (ggml MUL_MAT with n = 1 vs kiln gemv_int4), group 32"
        echo
        echo "test-backend-ops runs the CPU backend with hardware_concurrency/2 threads and has no option"
        echo "to change that, so kiln runs with KILN_CPU_THREADS=$ktn here too. test-backend-ops repeats the op"
        echo "on the same tensors (weights that fit the LLC stay in it: 4096x4096 q4_0 is 9.4 MB); kiln times"
        echo "here with --copies $kcopies (1: the same buffers every run, the same regime; kiln's own default rotates"
        echo "copies so that every call reads its weights from DRAM). llama.cpp quantizes the activations to q8"
        echo "for these types, so kiln's shapes allow it too (act=q8, kiln's --precision fast). kiln's number is"
        echo "its tuned config (the database lookup$( [[ $ktune -gt 0 ]] && echo ", after tune --budget $ktune on these shapes"))."
        echo
        echo "Commands (each round: test-backend-ops, then kiln):"
        echo
        echo "    $(quote "${cmd_lk[@]}")"
        echo "    KILN_CPU_THREADS=$ktn $(quote "${cmd_kk[@]}")"
        echo
        echo "with the test file (op type ne[4] n_params n_src {type ne[4] nb[4]}x2 name):"
        echo
        sed 's/^/    /' "$testfile"
        echo
        echo "Raw: us per call, per round (llama.cpp / kiln):"
        echo
        printf '| shape (m x k, quant) |'; for ((r = 1; r <= rounds; r++)); do printf ' round %d |' "$r"; done; echo
        printf '|---|'; for ((r = 1; r <= rounds; r++)); do printf -- '---:|'; done; echo
        for q in "${quants[@]}"; do
            for s in "${shapes[@]}"; do
                read -r M K <<<"$s"
                key="${q}_m${M}_k${K}"
                read -r -a la <<<"${lk[$key]}"; read -r -a ka <<<"${kk[$key]}"
                printf '| %s x %s %s |' "$M" "$K" "$q"
                for ((i = 0; i < rounds; i++)); do printf ' %.1f / %.1f |' "${la[i]}" "${ka[i]}"; done
                echo
            done
        done
        echo
        echo "Summary: median [min..max] over rounds; speedup = median of per-round llama_us/kiln_us (> 1: kiln faster)"
        echo
        echo "| shape (m x k, quant) | llama.cpp us | kiln us | speedup |"
        echo "|---|---:|---:|---:|"
        for q in "${quants[@]}"; do
            for s in "${shapes[@]}"; do
                read -r M K <<<"$s"
                key="${q}_m${M}_k${K}"
                read -r -a la <<<"${lk[$key]}"; read -r -a ka <<<"${kk[$key]}"
                sp=()
                for ((i = 0; i < rounds; i++)); do sp+=("$(div "${la[i]}" "${ka[i]}")"); done
                echo "| $M x $K $q | $(fmt "$(stats "${la[@]}")") | $(fmt "$(stats "${ka[@]}")") | $(fmt "$(stats "${sp[@]}")" 3) |"
            done
        done
    } >>"$report"
fi

echo >>"$report"
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (on $(nproc) cores; above ~$(nproc) other work competes with the benchmark)" >>"$report"

cat "$report"
if [[ -n "$out" ]]; then
    cp "$report" "$out"
    log "wrote $out"
fi
