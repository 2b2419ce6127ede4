#!/usr/bin/env bash
# scripts/fuzz.sh TARGET SECONDS [libFuzzer args...] - build the libFuzzer
# target tests/fuzz/fuzz_TARGET (clang, -Dfuzz=true, in build-fuzz/) and run
# it for SECONDS from the committed seed corpus tests/fuzz/corpus/TARGET.
# New coverage goes to build-fuzz/corpus/TARGET (not committed), crashes to
# build-fuzz/crashes/TARGET/. Exits non-zero when libFuzzer found a crash,
# a leak or a UBSan report. TARGET: gguf tokenizer chat_template db_import
# openai_request, or "all" (each for SECONDS).
# A crash becomes a regression: fix it, copy the input to
# tests/fuzz/regressions/TARGET/ (the fuzz_replay_TARGET test replays it in
# every build).
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(gguf tokenizer chat_template db_import openai_request)
if [ $# -lt 2 ]; then
  echo "usage: $0 TARGET|all SECONDS [libFuzzer args...]  (targets: ${targets[*]})" >&2
  exit 2
fi
target=$1 secs=$2
shift 2
case $secs in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;; esac
if [ "$target" = all ]; then
  rc=0
  for t in "${targets[@]}"; do "$0" "$t" "$secs" "$@" || rc=1; done
  exit $rc
fi
known=0
for t in "${targets[@]}"; do [ "$t" = "$target" ] && known=1; done
if [ $known = 0 ]; then echo "fuzz.sh: unknown target '$target' (${targets[*]})" >&2; exit 2; fi

dir=build-fuzz
if [ ! -f "$dir/build.ninja" ]; then
  CC=${FUZZ_CC:-clang} meson setup "$dir" -Dfuzz=true --buildtype=debugoptimized -Db_lundef=false >&2
fi
ninja -C "$dir" "tests/fuzz/fuzz_$target" >&2
mkdir -p "$dir/corpus/$target" "$dir/crashes/$target"
# -max_len: the largest seed (a whole micro GGUF) plus room to grow.
# -timeout (wall seconds per input, $KILN_FUZZ_TIMEOUT, default 200): every
# input runs in well under a second, but on a shared machine a process can be
# stopped for minutes (a benchmark freezing the others: up to 180 s), which
# a 20 s timeout reported as a hang; a real hang is still caught.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
  "$dir/tests/fuzz/fuzz_$target" -max_total_time="$secs" -max_len=65536 -timeout=${KILN_FUZZ_TIMEOUT:-200} -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$dir/crashes/$target/" \
  "$@" "$dir/corpus/$target" "tests/fuzz/corpus/$target"
