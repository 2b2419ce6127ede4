#!/usr/bin/env bash
# bench/harness/bench-serve.sh - the serving benchmark: `kiln serve --parallel N`
# and llama.cpp's llama-server (-np N -cb, the peer of bench/peers/build-llama.sh)
# on the same model, in the same run, each measured by `kiln bench serve`
# (C concurrent streaming clients x R requests: aggregate output/decode tok/s,
# TTFT and inter-token latency p50/p99). The servers run one after the other
# on a free port, never together; each result table is printed, then both
# together (the rows bench/results/serve.md keeps).
#
#   bash bench/harness/bench-serve.sh --model M.gguf [--kiln build/src/kiln] [--parallel 8]
#        [--clients 1,8] [--requests 4] [--n-gen 128] [--n-words 48] [--ctx 4096]
#        [--llama-server PATH | --no-peer] [--threads N] [--dry-run]
#
# The llama-server binary: --llama-server, else the one build-llama.sh puts in
# ${KILN_PEERS_DIR:-~/.cache/kiln/peers}; without one the peer is skipped (said so).
# Each server gets the same KV budget: kiln's --ctx is the cache all sequences
# share, llama-server's -c is split over its -np slots. Runs are stored in the
# Kiln database like other benches (kiln bench serve; --no-store with --dry-run).
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
        --dry-run) dry=1 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-serve.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[[ -n "$model" ]] || { echo "bench-serve.sh: --model is required" >&2; exit 2; }
if [[ -z "$llama" && $no_peer -eq 0 ]]; then
    for f in "${KILN_PEERS_DIR:-$HOME/.cache/kiln/peers}"/llama.cpp-*/build-cpu/bin/llama-server; do
        [[ -x "$f" ]] && llama="$f"
    done
fi

run() {   # run CMD... : prints it, runs it unless --dry-run
    echo "+ $*" >&2
    [[ $dry -eq 1 ]] || "$@"
}

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
[[ $dry -eq 1 ]] && store=(--no-store)
bench() {   # bench LABEL URL
    run "$kiln" bench serve --url "$2" --label "$1" -c "$clients" -R "$requests" -n "$n_gen" -p "$n_words" \
        "${store[@]}" | tee -a "$tmp/tables"
}

# 1. kiln serve
port=$(free_port)
kthreads=()
[[ -n "$threads" ]] && kthreads=(--threads "$threads")
echo "+ $kiln serve -m $model --port $port --parallel $parallel --ctx $ctx ${kthreads[*]}" >&2
if [[ $dry -eq 0 ]]; then
    "$kiln" serve -m "$model" --port "$port" --parallel "$parallel" --ctx "$ctx" "${kthreads[@]}" \
        >"$tmp/kiln.out" 2>"$tmp/kiln.log" &
    server_pid=$!
    wait_ready "http://127.0.0.1:$port" "$tmp/kiln.log"
fi
bench kiln "http://127.0.0.1:$port"
stop_server

# 2. llama-server, same model, same KV budget, continuous batching over -np slots
if [[ $no_peer -eq 1 ]]; then
    echo "bench-serve.sh: --no-peer: llama-server skipped" >&2
elif [[ -z "$llama" || ! -x "$llama" ]]; then
    echo "bench-serve.sh: no llama-server (bash bench/peers/build-llama.sh --only llama-server): peer skipped" >&2
else
    port=$(free_port)
    lthreads=()
    [[ -n "$threads" ]] && lthreads=(-t "$threads" -tb "$threads")
    echo "+ $llama -m $model --port $port -np $parallel -cb -c $ctx ${lthreads[*]}" >&2
    if [[ $dry -eq 0 ]]; then
        "$llama" -m "$model" --host 127.0.0.1 --port "$port" -np "$parallel" -cb -c "$ctx" "${lthreads[@]}" \
            >"$tmp/llama.log" 2>&1 &
        server_pid=$!
        wait_ready "http://127.0.0.1:$port" "$tmp/llama.log"
    fi
    bench llama-server "http://127.0.0.1:$port"
    stop_server
fi

if [[ $dry -eq 0 ]]; then
    echo
    echo "== both (model $(basename "$model"), --parallel / -np $parallel, KV $ctx tokens)"
    grep -m1 '^| server' "$tmp/tables"
    grep -m1 '^|---' "$tmp/tables"
    grep '^| \(kiln\|llama-server\) |' "$tmp/tables"
fi
