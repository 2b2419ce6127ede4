#!/usr/bin/env bash
# bench/harness/bench-serve.sh - the serving benchmark: `kiln serve --parallel N`
# and llama.cpp's llama-server (-np N -cb, the peer of bench/peers/build-llama.sh)
# on the same model, in the same run, each measured by `kiln bench serve`
# (C concurrent streaming clients x R requests: aggregate output/decode tok/s,
# TTFT and inter-token latency p50/p99), the same client load for both: the
# same prompts, max_tokens, ignore_eos, temperature 0. The servers run one
# after the other on a free port, never together.
#
#   bash bench/harness/bench-serve.sh --model M.gguf [--kiln build/src/kiln] [--parallel 8]
#        [--clients 1,8] [--requests 4] [--n-gen 128] [--n-words 48] [--ctx 4096]
#        [--llama-server PATH | --no-peer] [--threads N] [--rounds N] [--out FILE.md]
#        [--llama-env VAR=VALUE ...] [--no-store] [--dry-run]
#        [--system-prompt-words S] [--prefix-cache-ab]
#
# --rounds N (default 1): N rounds, each starting and measuring both servers,
# kiln first in odd rounds and llama-server first in even ones (so a drift in
# the host's load does not always favour the same server); then a markdown
# report: per server and client count the median [min..max] over the rounds
# of each metric, the median [min..max] of the per-round kiln/llama-server
# ratios, every round's raw figures, the host (lscpu model, threads) and its
# load average before and after. --out also writes the report to a file.
# The llama-server binary: --llama-server, else the one build-llama.sh puts in
# ${KILN_PEERS_DIR:-~/.cache/kiln/peers}; without one the peer is skipped (said so).
# Each server gets the same KV budget: kiln's --ctx is the cache all sequences
# share, llama-server's -c is split over its -np slots. --threads N: kiln
# --threads N, llama-server -t N -tb N. --llama-env VAR=VALUE (repeatable):
# llama-server's environment (e.g. OMP_WAIT_POLICY=passive on a loaded host,
# see bench/peers/README.md). Runs are stored in the Kiln database
# like other benches unless --no-store (implied by --dry-run).
# --system-prompt-words S: the chat scenario of `kiln bench serve` (the same S
# words first in every prompt, a shared system message; a separate scenario,
# labelled so in the report). --prefix-cache-ab: instead of llama-server, the
# second server is kiln serve --no-prefix-cache ("kiln-nocache"), same rounds,
# alternating, ratios kiln / kiln-nocache (the prefix cache on vs off). The kiln binary
# runs from a copy, so a rebuild during the run cannot replace it.
# --dry-run prints the commands and runs nothing (tests).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
kiln="$here/../../build/src/kiln"
model=""
parallel=8
clients=1,8
requests=4
n_gen=128
n_words=48
ctx=4096
threads=""
llama=""
no_peer=0
dry=0
rounds=1
out=""
no_store=0
lenv=()
sys_words=0
cache_ab=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --model|-m) model="$2"; shift ;;
        --kiln) kiln="$2"; shift ;;
        --parallel) parallel="$2"; shift ;;
        --clients|-c) clients="$2"; shift ;;
        --requests|-R) requests="$2"; shift ;;
        --n-gen|-n) n_gen="$2"; shift ;;
        --n-words|-p) n_words="$2"; shift ;;
        --ctx) ctx="$2"; shift ;;
        --threads) threads="$2"; shift ;;
        --llama-server) llama="$2"; shift ;;
        --no-peer) no_peer=1 ;;
        --rounds) rounds="$2"; shift ;;
        --out) out="$2"; shift ;;
        --no-store) no_store=1 ;;
        --llama-env) lenv+=("$2"); shift ;;
        --dry-run) dry=1 ;;
        --system-prompt-words) sys_words="$2"; shift ;;
        --prefix-cache-ab) cache_ab=1 ;;
        -h|--help) sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-serve.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[[ -n "$model" ]] || { echo "bench-serve.sh: --model is required" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "bench-serve.sh: --rounds must be a positive number: $rounds" >&2; exit 2; }
[[ "$sys_words" =~ ^[0-9]+$ ]] || { echo "bench-serve.sh: --system-prompt-words must be a number: $sys_words" >&2; exit 2; }
[[ $cache_ab -eq 1 ]] && no_peer=1   # the second server is kiln without its prefix cache
if [[ -z "$llama" && $no_peer -eq 0 ]]; then
    for f in "${KILN_PEERS_DIR:-$HOME/.cache/kiln/peers}"/llama.cpp-*/build-cpu/bin/llama-server; do
        [[ -x "$f" ]] && llama="$f"
    done
fi
peer=1
if [[ $cache_ab -eq 1 ]]; then
    echo "bench-serve.sh: --prefix-cache-ab: kiln serve with and without its prefix cache, no llama-server" >&2
    peer=0
elif [[ $no_peer -eq 1 ]]; then
    echo "bench-serve.sh: --no-peer: llama-server skipped" >&2
    peer=0
elif [[ -z "$llama" || ! -x "$llama" ]]; then
    echo "bench-serve.sh: no llama-server (bash bench/peers/build-llama.sh --only llama-server): peer skipped" >&2
    peer=0
fi
if [[ $dry -eq 0 ]]; then
    command -v jq >/dev/null 2>&1 || { echo "bench-serve.sh: jq is required (scripts/install-deps.sh)" >&2; exit 3; }
    [[ -x "$kiln" ]] || { echo "bench-serve.sh: no kiln at $kiln (--kiln PATH)" >&2; exit 3; }
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo 18080
}

tmp=$(mktemp -d)
server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap 'stop_server; rm -rf "$tmp"' EXIT

kiln_orig="$kiln"
if [[ $dry -eq 0 ]]; then
    cp "$kiln" "$tmp/kiln"
    kiln="$tmp/kiln"
fi

wait_ready() {   # wait_ready URL LOG : until GET /health answers 200
    local _
    for _ in $(seq 1 600); do
        if curl -sf -m 2 "$1/health" >/dev/null 2>&1; then return 0; fi
        kill -0 "$server_pid" 2>/dev/null || { echo "bench-serve.sh: the server exited:" >&2; tail -n 20 "$2" >&2; return 1; }
        sleep 0.2
    done
    echo "bench-serve.sh: the server did not become ready" >&2
    return 1
}

store=()
[[ $dry -eq 1 || $no_store -eq 1 ]] && store=(--no-store)
kthreads=()
lthreads=()
[[ -n "$threads" ]] && kthreads=(--threads "$threads") && lthreads=(-t "$threads" -tb "$threads")
# the exact command lines (with PORT for the port each start picks)
sysarg=()
[[ $sys_words -gt 0 ]] && sysarg=(--system-prompt-words "$sys_words")
kiln_cmd() { echo "$kiln_orig serve -m $model --port $1 --parallel $parallel --ctx $ctx ${kthreads[*]}${2:+ }${2:-}"; }
llama_cmd() { echo "${lenv[*]}${lenv[*]:+ }$llama -m $model --host 127.0.0.1 --port $1 -np $parallel -cb -c $ctx ${lthreads[*]}"; }
bench_cmd() { echo "$kiln_orig bench serve --url http://127.0.0.1:$2 --label $1 -c $clients -R $requests -n $n_gen -p $n_words ${sysarg[*]}${sysarg[*]:+ }${store[*]}"; }

# measure SERVER ROUND : start the server, run the client load, stop it; the
# levels' JSON in $tmp/SERVER.ROUND.json (and its table on stderr)
measure() {
    local name=$1 r=$2 port
    port=$(free_port)
    if [[ $name == kiln || $name == kiln-nocache ]]; then
        local nocache=()
        [[ $name == kiln-nocache ]] && nocache=(--no-prefix-cache)
        echo "+ $(kiln_cmd "$port" "${nocache[*]}")" >&2
        if [[ $dry -eq 0 ]]; then
            "$kiln" serve -m "$model" --port "$port" --parallel "$parallel" --ctx "$ctx" "${kthreads[@]}" "${nocache[@]}" \
                >"$tmp/kiln.out" 2>"$tmp/server.log" &
            server_pid=$!
        fi
    else
        echo "+ $(llama_cmd "$port")" >&2
        if [[ $dry -eq 0 ]]; then
            env "${lenv[@]}" "$llama" -m "$model" --host 127.0.0.1 --port "$port" -np "$parallel" -cb -c "$ctx" "${lthreads[@]}" \
                >"$tmp/server.log" 2>&1 &
            server_pid=$!
        fi
    fi
    echo "+ $(bench_cmd "$name" "$port") --json" >&2
    if [[ $dry -eq 0 ]]; then
        wait_ready "http://127.0.0.1:$port" "$tmp/server.log"
        if ! "$kiln" bench serve --url "http://127.0.0.1:$port" --label "$name" -c "$clients" -R "$requests" \
            -n "$n_gen" -p "$n_words" "${sysarg[@]}" "${store[@]}" --json >"$tmp/$name.$r.json" 2>"$tmp/bench.log"; then
            cat "$tmp/bench.log" >&2
            echo "bench-serve.sh: kiln bench serve against $name failed (round $r); the server's log:" >&2
            tail -n 20 "$tmp/server.log" >&2
            exit 1
        fi
        grep -v '^bench serve ' "$tmp/bench.log" >&2 || true   # the token notes, if any
        jq -r --arg r "$r" '.levels[] | "round \($r) \(.clients) clients: \(.ok)/\(.ok + .failed) ok, "
            + "\(.out_tok_s * 10 | round / 10) tok/s, TTFT p50 \(.ttft_p50_ms | round) ms p99 \(.ttft_p99_ms | round) ms, "
            + "ITL p50 \(.itl_p50_ms * 10 | round / 10) ms"' "$tmp/$name.$r.json" | sed "s/^/$name: /" >&2
    fi
    stop_server
}

servers=(kiln)
other="llama-server"   # the second server: the ratios are kiln / it
[[ $cache_ab -eq 1 ]] && other="kiln-nocache" && servers+=(kiln-nocache)
[[ $peer -eq 1 ]] && servers+=(llama-server)
two=$(( ${#servers[@]} == 2 ))
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
date_start="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
for ((r = 1; r <= rounds; r++)); do
    order=("${servers[@]}")
    if [[ $((r % 2)) -eq 0 && $two -eq 1 ]]; then order=("$other" kiln); fi
    for s in "${order[@]}"; do
        echo "== round $r/$rounds: $s" >&2
        measure "$s" "$r"
    done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
[[ $dry -eq 1 ]] && exit 0

# ---- the report ----
# stats V... -> "median min max" (median of an even count: mean of the middle two)
stats() {
    printf '%s\n' "$@" | grep -v '^null$' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan nan nan"; exit }
        med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.6g %.6g %.6g\n", med, v[1], v[NR] }'
}
fmt() { awk -v d="${2:-1}" '{ if ($1 == "nan") print "n/a"; else printf "%.*f [%.*f..%.*f]", d, $1, d, $2, d, $3 }' <<<"$1"; }
metric() {   # metric SERVER CLIENTS KEY : its value in every round, one a line
    local r
    for ((r = 1; r <= rounds; r++)); do
        jq -r --argjson c "$2" --arg k "$3" '.levels[] | select(.clients == $c) | .[$k]' "$tmp/$1.$r.json"
    done
}
ratios() {   # ratios CLIENTS KEY : kiln / the other server per round
    local r k l
    for ((r = 1; r <= rounds; r++)); do
        k=$(jq -r --argjson c "$1" --arg k "$2" '.levels[] | select(.clients == $c) | .[$k]' "$tmp/kiln.$r.json")
        l=$(jq -r --argjson c "$1" --arg k "$2" '.levels[] | select(.clients == $c) | .[$k]' "$tmp/$other.$r.json")
        awk -v a="$k" -v b="$l" 'BEGIN { if (a == "null" || b == "null" || b == 0) print "null"; else printf "%.6g\n", a / b }'
    done
}
levels=$(jq -r '.levels[].clients' "$tmp/kiln.1.json")
report="$tmp/report.md"
{
    if [[ $cache_ab -eq 1 ]]; then
        echo "### kiln serve --parallel $parallel, prefix cache on (kiln) vs --no-prefix-cache (kiln-nocache), $(basename "$model")"
    elif [[ $peer -eq 1 ]]; then
        echo "### kiln serve --parallel $parallel vs llama-server -np $parallel -cb, $(basename "$model")"
    else
        echo "### kiln serve --parallel $parallel, $(basename "$model") (no llama-server)"
    fi
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| date (UTC) | $date_start .. $(date -u +%H:%M:%SZ) |"
    echo "| host | $(lscpu | sed -n 's/^Model name: *//p' | head -1) (family $(lscpu | sed -n 's/^CPU family: *//p'), model $(lscpu | sed -n 's/^Model: *//p')), $(nproc) CPUs online |"
    echo "| threads | ${threads:-the default of each server} |"
    echo "| load average (1/5/15 min) | before $load_before, after $load_after |"
    echo "| kiln | \`$kiln_orig\` ($(KILN_CPU_THREADS=1 "$kiln" --version 2>/dev/null | head -1 || echo '?')), KV $ctx tokens shared |"
    [[ $peer -eq 1 ]] && echo "| llama-server | \`$llama\` ($("$llama" --version 2>&1 | grep -m1 -i version || echo '?')), -c $ctx over $parallel slots |"
    [[ $peer -eq 1 ]] && echo "| llama-server environment | ${lenv[*]:-(as inherited)} |"
    if [[ $sys_words -gt 0 ]]; then
        echo "| scenario | **shared system prompt**: the same $sys_words words first in every prompt (cache_prompt true, warmed up once), then its own |"
    else
        echo "| scenario | every prompt its own (no shared prefix) |"
    fi
    echo "| load | clients $clients, $requests requests each, prompt $n_words words, $n_gen tokens (ignore_eos, temperature 0) |"
    echo "| rounds | $rounds, servers alternating (kiln first in odd rounds, $other first in even) |"
    echo
    echo "Commands (PORT: a free port per start):"
    echo
    echo "    $(kiln_cmd PORT)"
    [[ $cache_ab -eq 1 ]] && echo "    $(kiln_cmd PORT --no-prefix-cache)"
    [[ $peer -eq 1 ]] && echo "    $(llama_cmd PORT)"
    echo "    $(bench_cmd LABEL PORT) --json"
    echo
    echo "Median [min..max] over the rounds:"
    echo
    echo "| server | clients | output tok/s | decode tok/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for c in $levels; do
        for s in "${servers[@]}"; do
            # shellcheck disable=SC2046  # one value a line, split on purpose
            echo "| $s | $c | $(fmt "$(stats $(metric "$s" "$c" out_tok_s))") | $(fmt "$(stats $(metric "$s" "$c" decode_tok_s))") |" \
                "$(fmt "$(stats $(metric "$s" "$c" ttft_p50_ms))" 0) | $(fmt "$(stats $(metric "$s" "$c" ttft_p99_ms))" 0) |" \
                "$(fmt "$(stats $(metric "$s" "$c" itl_p50_ms))") | $(fmt "$(stats $(metric "$s" "$c" itl_p99_ms))") |"
        done
    done
    if [[ $two -eq 1 ]]; then
        echo
        echo "kiln / $other, median [min..max] of the per-round ratios (tok/s: > 1 kiln faster; latency: < 1 kiln faster):"
        echo
        echo "| clients | output tok/s | TTFT p50 | TTFT p99 | ITL p50 | ITL p99 |"
        echo "|---:|---:|---:|---:|---:|---:|"
        for c in $levels; do
            # shellcheck disable=SC2046
            echo "| $c | $(fmt "$(stats $(ratios "$c" out_tok_s))" 2) | $(fmt "$(stats $(ratios "$c" ttft_p50_ms))" 2) |" \
                "$(fmt "$(stats $(ratios "$c" ttft_p99_ms))" 2) | $(fmt "$(stats $(ratios "$c" itl_p50_ms))" 2) |" \
                "$(fmt "$(stats $(ratios "$c" itl_p99_ms))" 2) |"
        done
    fi
    echo
    echo "Every round (ok: requests answered in full / sent; tokens: as the servers reported them, text events when not):"
    echo
    echo "| round | server | clients | ok | tokens | text events | output tok/s | decode tok/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for ((r = 1; r <= rounds; r++)); do
        for s in "${servers[@]}"; do
            jq -r --arg r "$r" --arg s "$s" '.levels[] | "| \($r) | \($s) | \(.clients) | \(.ok)/\(.ok + .failed) | "
                + "\(.tokens)\(if .from_usage < .ok then " (\(.ok - .from_usage) unreported)" else "" end) | \(.events) | "
                + ([.out_tok_s, .decode_tok_s] | map(if . == null then "n/a" else (. * 10 | round / 10 | tostring) end) | join(" | "))
                + " | "
                + ([.ttft_p50_ms, .ttft_p99_ms] | map(if . == null then "n/a" else (. | round | tostring) end) | join(" | "))
                + " | "
                + ([.itl_p50_ms, .itl_p99_ms] | map(if . == null then "n/a" else (. * 10 | round / 10 | tostring) end) | join(" | "))
                + " |"' "$tmp/$s.$r.json"
        done
    done
} >"$report"
cat "$report"
[[ -z "$out" ]] || cp "$report" "$out"
