#!/usr/bin/env bash
# scripts/test.sh - set everything up and run every test suite.
# Ends with one line "N passed, N failed" (skips are counted on the line before) and exits non-zero if
# anything failed. CI (.ci/run) calls exactly this.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

bash scripts/install-deps.sh || { echo "dependency installation failed"; echo "0 passed, 1 failed"; exit 1; }

# The real model (cached outside the repo) and NVRTC for CUDA compile checks.
if model=$(bash scripts/fetch-model.sh); then export KILN_SMOLLM2="$model"; fi
if nvrtc=$(bash scripts/get-nvrtc.sh); then export KILN_NVRTC="$nvrtc"; fi

# Backends (and tools: the model, chromium for report_browser) that must be
# present here: a missing one fails its tests instead of skipping them.
export KILN_REQUIRE_BACKENDS=${KILN_REQUIRE_BACKENDS:-cpu,opencl,vulkan,cuda-compile,model,chromium}
export KILN_CACHE_DIR=${KILN_CACHE_DIR:-$HOME/.cache/kiln}

passed=0 failed=0 skipped=0
summarize() { # meson test's summary block on stdin -> add to the counters
  local ok xf fail up sk to
  read -r ok xf fail up sk to < <(awk '/^Ok:/{ok=$2} /^Expected Fail:/{xf=$3} /^Fail:/{f=$2}
    /^Unexpected Pass:/{up=$3} /^Skipped:/{sk=$2} /^Timeout:/{to=$2}
    END{print ok+0, xf+0, f+0, up+0, sk+0, to+0}')
  passed=$((passed + ok + xf)); failed=$((failed + fail + up + to)); skipped=$((skipped + sk))
}

run_suite() { # DIR [meson test args...]
  local dir=$1; shift
  local log; log=$(mktemp)
  meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" 2>&1 | tee "$log"
  summarize <"$log"
  if ! grep -qE '^Ok: ' "$log"; then failed=$((failed + 1)); echo "meson test in $dir did not run" >&2; fi
  rm -f "$log"
}

if bash scripts/build.sh build-test --buildtype=debugoptimized; then
  run_suite build-test
else
  echo "build failed"; failed=$((failed + 1))
fi

# Memory-safety pass: the host-side suites (parsers, database, quant layout,
# cpu kernels) again under AddressSanitizer + UBSan. GPU driver stacks (PoCL,
# lavapipe JIT) are left out of this pass: their own allocations are not ours.
if bash scripts/build.sh build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_suite build-asan --suite asan
else
  echo "asan build failed"; failed=$((failed + 1))
fi

# The release build the README's main command (scripts/run.sh) uses: -O3
# sees more (gcc's maybe-uninitialized analysis differs) and must build with
# -Werror too; its cpu kernels pass the full check (Llama + odd shapes).
if bash scripts/build.sh build-release --buildtype=release &&
   ./build-release/src/kiln check --device cpu >build-release/check.log 2>&1; then
  echo "release build + kiln check --device cpu (full shape set): OK"; passed=$((passed + 1))
else
  echo "release build or its kiln check FAILED"; tail -20 build-release/check.log 2>/dev/null; failed=$((failed + 1))
fi

# Fuzzing: each libFuzzer target (tests/fuzz, clang: build-fuzz) for
# KILN_FUZZ_SECONDS (default 30; 0 skips the stage) from the committed seed
# corpus. A crash, leak, timeout or UBSan report fails the target; its input
# lands in build-fuzz/crashes/TARGET/ (fix it, then commit the input under
# tests/fuzz/regressions/TARGET/: every build replays those).
fuzz_secs=${KILN_FUZZ_SECONDS:-30}
case $fuzz_secs in '' | *[!0-9]*) echo "KILN_FUZZ_SECONDS must be a whole number, got '$fuzz_secs'"; failed=$((failed + 1)); fuzz_secs=0 ;; esac
if [ "$fuzz_secs" -gt 0 ]; then
  mkdir -p build-fuzz
  for t in gguf tokenizer chat_template db_import openai_request; do
    if bash scripts/fuzz.sh "$t" "$fuzz_secs" >"build-fuzz/fuzz-$t.log" 2>&1; then
      echo "fuzz $t ${fuzz_secs}s: OK ($(grep -o 'stat::number_of_executed_units: [0-9]*' "build-fuzz/fuzz-$t.log" | awk '{print $2}') executions)"
      passed=$((passed + 1))
    else
      echo "fuzz $t FAILED:"; tail -40 "build-fuzz/fuzz-$t.log"; failed=$((failed + 1))
    fi
  done
fi

# Phones: the aarch64 cross build (cpu backend, NEON/SDOT/SMMLA paths) run under
# qemu-user -cpu max at every forced ISA level, and SmolLM2 answering "Paris"
# (tests/cli/aarch64_qemu.sh; ~2-4 min), then the phone harness below with that
# binary on the fake phone. A skip (no cross compiler or qemu) fails here:
# scripts/install-deps.sh installs both.
mkdir -p build-logs
if bash scripts/build-aarch64.sh build-aarch64 >build-logs/aarch64-build.log 2>&1 &&
   bash tests/cli/aarch64_qemu.sh build-aarch64; then
  echo "aarch64 cross build + qemu (kiln check --quick x 4 ISA levels, gemv_q8_test x 3, SmolLM2): OK"; passed=$((passed + 1))
else
  echo "aarch64 cross build or its qemu run FAILED"; tail -20 build-logs/aarch64-build.log 2>/dev/null; failed=$((failed + 1))
fi

# The host-side unit suite (the asan suite's tests: parsers, database, quant layout,
# cpu kernels, engine, fuzz regressions) built for aarch64, run by meson under
# qemu-user through the cross file's exe_wrapper (~1 min). Its cli and check tests
# are shell scripts that exec kiln directly (no binfmt_misc here); aarch64_qemu.sh
# above runs kiln check under qemu at every ISA level instead.
run_suite build-aarch64 --suite asan --no-suite cli --no-suite check -t 3

# The phone harness for real: bench/harness/run-adb.sh against the fake adb
# (tests/bench/fake-adb/adb) with the aarch64 kiln on the "phone", run under
# qemu-user (tune's worker processes through $KILN_EXEC_WRAPPER): push, kiln
# devices, tune (budget 3, one gemv_int4 shape, 1 thread), bench, pull, merge
# into a host database (build-test's kiln), report. Without the aarch64 build
# it fails.
t0=$SECONDS
if KILN_PHONE="$PWD/build-aarch64/src/kiln" bash tests/bench/harness_adb_fake.sh "$PWD/build-test/src/kiln" \
     "$PWD/bench/harness" "$PWD/tests/bench/fake-adb" >build-logs/harness-adb-aarch64.log 2>&1; then
  echo "run-adb.sh on a fake adb phone, aarch64 kiln under qemu (push, devices, tune, bench, pull, merge, report): OK ($((SECONDS - t0))s)"
  passed=$((passed + 1))
else
  echo "run-adb.sh on a fake adb phone with the aarch64 kiln FAILED:"; tail -30 build-logs/harness-adb-aarch64.log; failed=$((failed + 1))
fi

echo "($skipped skipped: a skip never counts as passed)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
