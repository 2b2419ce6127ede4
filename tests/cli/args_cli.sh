#!/usr/bin/env bash
# tests/cli/args_cli.sh KILN - options and exit codes (issue 9, items 7-8):
#   - every bad number of the issue is a usage error (exit 2) whose message
#     echoes the option and the value, and nothing runs;
#   - shape specs: a value out of range and a field the kernel does not use
#     are refused;
#   - --help exits 0 on every command and subcommand and lists its options;
#   - exit codes as the README says: a device that is not there is 3 for a
#     name and for an index alike; a missing model file 3, a malformed one 1.
set -uo pipefail
kiln=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export KILN_DB="$tmp/none.db"

"$kiln" synth --preset tiny -o "$tmp/tiny.gguf" >/dev/null 2>&1 || fail "synth exited $?"
m=(-m "$tmp/tiny.gguf" -p hello)

# expect_usage OPTION VALUE COMMAND...: exit 2, the message names OPTION and VALUE
expect_usage() {
  local opt=$1 val=$2
  shift 2
  timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ $rc = 2 ] || { fail "$* exited $rc, want 2: $(head -c 300 "$tmp/err")"; return; }
  grep -qF -- "$opt" "$tmp/err" && grep -qF -- "'$val'" "$tmp/err" ||
    fail "$*: the message does not echo $opt and '$val': $(cat "$tmp/err")"
}

expect_usage -n nan "$kiln" run "${m[@]}" -n nan
for o in --ctx --page-size --chunk; do
  expect_usage "$o" nan "$kiln" run "${m[@]}" "$o" nan
done
expect_usage -n 1e3 "$kiln" run "${m[@]}" -n 1e3
expect_usage --temp inf "$kiln" run "${m[@]}" --temp inf
expect_usage --seed -1 "$kiln" run "${m[@]}" --seed -1
expect_usage --threads 4x "$kiln" chat -m "$tmp/tiny.gguf" --threads 4x
expect_usage --ctx nan "$kiln" perplexity -m "$tmp/tiny.gguf" -f "$tmp/tiny.gguf" --ctx nan
for b in nan 0.5 1e12 -3 5x; do
  expect_usage --budget "$b" "$kiln" tune --device cpu --kernel rmsnorm --budget "$b" --db "$tmp/t.db"
done
expect_usage --patience -5 "$kiln" tune --device cpu --patience -5 --db "$tmp/t.db"
expect_usage --resume abc "$kiln" tune --device cpu --resume abc --db "$tmp/t.db"
expect_usage --seed 12ab "$kiln" tune --device cpu --seed 12ab --db "$tmp/t.db"
expect_usage group 4294967328 "$kiln" tune --device cpu --kernel gemv_int4 --shape m=64,k=64,group=4294967328 \
  --budget 1 --db "$tmp/t.db"
expect_usage "'n'" m=1,n=64 "$kiln" tune --device cpu --kernel rmsnorm --shape m=1,n=64 --budget 1 --db "$tmp/t.db"
expect_usage "'n'" m=1,n=64 "$kiln" bench kernels --device cpu --kernel rmsnorm --shape m=1,n=64 --db "$tmp/b.db"
[ -e "$tmp/t.db" ] && fail "a refused tune wrote a database"
expect_usage --port 99999 "$kiln" serve --echo --port 99999
expect_usage --port abc "$kiln" serve --echo --port abc
expect_usage --random x "$kiln" check --device cpu --random x
expect_usage --layers 0 "$kiln" synth --preset tiny --layers 0 -o "$tmp/x.gguf"
expect_usage --older-than 1.5 "$kiln" db --db "$tmp/d.db" prune --older-than 1.5
expect_usage --keep -1 "$kiln" db --db "$tmp/d.db" prune --keep -1
expect_usage -r nan "$kiln" bench model -m "$tmp/tiny.gguf" -r nan
expect_usage --threshold nan "$kiln" bench compare latest --baseline previous --threshold nan
expect_usage --copies 0 "$kiln" bench kernels --copies 0
expect_usage --batch 0 "$kiln" bench batch -m "$tmp/tiny.gguf" --batch 1,0
expect_usage --batch "" "$kiln" bench batch -m "$tmp/tiny.gguf" --batch 1,,2
expect_usage --clients 1x "$kiln" bench serve --url http://127.0.0.1:9 --clients 2,1x
# a value-less option and an unknown one
timeout 60 "$kiln" run "${m[@]}" --ctx >/dev/null 2>"$tmp/err"
[ $? = 2 ] && grep -q -- "--ctx needs a value" "$tmp/err" || fail "--ctx without a value: $(cat "$tmp/err")"
timeout 60 "$kiln" run "${m[@]}" --nosuch >/dev/null 2>"$tmp/err"
[ $? = 2 ] && grep -q "unknown option '--nosuch'" "$tmp/err" || fail "an unknown option: $(cat "$tmp/err")"

# --help everywhere: exit 0, on stdout, with the options
help_has() { # COMMAND... -- OPTION...
  local cmd=() opts
  while [ "$1" != -- ]; do cmd+=("$1"); shift; done
  shift
  "$kiln" "${cmd[@]}" --help >"$tmp/help" 2>"$tmp/err"
  local rc=$?
  [ $rc = 0 ] || { fail "kiln ${cmd[*]} --help exited $rc: $(cat "$tmp/err")"; return; }
  for opts in "$@"; do
    grep -qF -- "$opts" "$tmp/help" || fail "kiln ${cmd[*]} --help does not document $opts"
  done
}
help_has -- devices check tune db run chat serve bench report
help_has devices -- --json --no-bandwidth --available
help_has check -- --device --kernel --list --quick --random --seed --break --verbose
help_has tune -- --device --kernel --shape --model --precision --strategy --budget --config --patience --seed --db \
  --resume --json --verbose --in-process --plant --timeout-floor
help_has db -- show best export import merge diff prune
help_has db show -- --json --db
help_has db best -- --kernel --shape --device --json
help_has db export -- --output --db
help_has db import -- --db
help_has db merge -- --db
help_has db diff --
help_has db prune -- --older-than --keep
help_has run -- --model --prompt --device --db --n-predict --ctx --page-size --chunk --precision --threads \
  --no-fuse --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n --seed --stop --chat-template \
  --verbose --json --profile --raw --system
help_has chat -- --model --system --ctx --profile
help_has perplexity -- --file --ctx --chunks --model --device --precision --json
help_has synth -- --preset --quant --seed --layers --threads --output
help_has serve -- --model --host --port --parallel --max-queue --max-conns --timeout --request-timeout --max-body --max-requests --echo --ctx --chunk --threads
help_has bench -- kernels model batch serve compare list show export import
help_has bench kernels -- --device --kernel --shape --rounds --copies --format --db
help_has bench model -- --model --device --n-prompt --n-gen --reps --format --no-store --profile --db
help_has bench serve -- --url --clients --requests --n-words --n-gen --label --timeout --device --db --no-store
help_has bench batch -- --model --device --batch --n-prompt --n-gen --reps --profile --ctx
help_has bench compare -- --baseline --threshold --k --kind --format
help_has bench list -- --db
help_has bench show -- --format --db
help_has bench export -- --output --db
help_has bench import -- --time-factor --db
help_has report -- --db --output
"$kiln" tune --help >/dev/null 2>&1 || fail "kiln tune --help exited $?"

# bench batch runs and reports every B with its ratio to B=1
timeout 120 "$kiln" bench batch -m "$tmp/tiny.gguf" -b 1,2 -p 4 -n 8 -r 1 >"$tmp/out" 2>"$tmp/err" ||
  fail "bench batch exited $?: $(head -c 300 "$tmp/err")"
grep -q '^| 1 | .* | 1.00x |' "$tmp/out" && grep -q '^| 2 | .*x |' "$tmp/out" ||
  fail "bench batch table: $(cat "$tmp/out")"

# kiln help [COMMAND]: like --help, exit 0; an unknown command is a usage error
"$kiln" help >"$tmp/help" 2>"$tmp/err" && grep -q "^  tune " "$tmp/help" || fail "kiln help exited $? or lists no commands"
"$kiln" help tune >"$tmp/help" 2>"$tmp/err" && grep -qF -- --budget "$tmp/help" || fail "kiln help tune: $(cat "$tmp/err")"
"$kiln" help nosuch >/dev/null 2>&1
rc=$?
[ $rc = 2 ] || fail "kiln help nosuch exited $rc, want 2"

# numeric environment variables: strict like the options, the message names the variable and the value, exit 2
expect_env() { # VAR VALUE COMMAND...
  local var=$1 val=$2
  shift 2
  env "$var=$val" timeout 60 "$@" >/dev/null 2>"$tmp/err"
  local rc=$?
  [ $rc = 2 ] || { fail "$var=$val $* exited $rc, want 2: $(head -c 300 "$tmp/err")"; return; }
  grep -qF -- "$var" "$tmp/err" && grep -qF -- "'$val'" "$tmp/err" ||
    fail "$var=$val: the message does not name the variable and the value: $(cat "$tmp/err")"
}
for v in abc 0 -2 4x 1e3; do
  expect_env KILN_CPU_THREADS "$v" "$kiln" run "${m[@]}" -n 2 --device cpu
done
expect_env KILN_CPU_SPIN_US -1 "$kiln" run "${m[@]}" -n 2 --device cpu
expect_env KILN_CPU_HUGEPAGES yes "$kiln" run "${m[@]}" -n 2 --device cpu
expect_env KILN_CPU_THREADS nan "$kiln" check --device cpu --kernel rope --quick
# Vulkan's variables, where a Vulkan device is (lavapipe's JIT leaks as above: no leak check)
if "$kiln" devices --no-bandwidth 2>/dev/null | grep -q '^ *vulkan:0'; then
  export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
  expect_env KILN_VK_STAGING_MAX 12 "$kiln" run "${m[@]}" -n 2 --device vulkan
  expect_env KILN_VK_FORCE_STAGING true "$kiln" run "${m[@]}" -n 2 --device vulkan
  unset ASAN_OPTIONS
else
  echo "args_cli: no Vulkan device, KILN_VK_* not checked"
fi

# exit codes: a device that is not there is unavailable (3), by name or by index
# (nosuchdev probes every backend: lavapipe's JIT-compiled code reallocs 128 bytes that
# LeakSanitizer reports from an unknown module, which no suppression can name; the
# leak check stays on for every other run of this script)
for d in nosuchdev cpu:7; do
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    timeout 60 "$kiln" run "${m[@]}" -n 2 --device "$d" >/dev/null 2>"$tmp/err"
  rc=$?
  [ $rc = 3 ] || fail "--device $d exited $rc, want 3: $(cat "$tmp/err")"
done
timeout 60 "$kiln" run "${m[@]}" -n 2 --device cpu:x >/dev/null 2>&1
rc=$?
[ $rc = 2 ] || fail "--device cpu:x (malformed) exited $rc, want 2"
# a model file: missing 3, malformed 1
timeout 60 "$kiln" run -m "$tmp/missing.gguf" -p hi >/dev/null 2>&1
rc=$?
[ $rc = 3 ] || fail "a missing model exited $rc, want 3"
head -c 5000 "$tmp/tiny.gguf" >"$tmp/trunc.gguf"
printf 'GGUF\003\000\000\000garbage' >"$tmp/junk.gguf"
for f in trunc junk; do
  timeout 60 "$kiln" run -m "$tmp/$f.gguf" -p hi >/dev/null 2>"$tmp/err"
  rc=$?
  [ $rc = 1 ] || fail "a malformed model ($f) exited $rc, want 1: $(cat "$tmp/err")"
done
# the README's exit code table names every code the commands use
for code in "0 ok" "1 failed" "2 usage" "3 " "13 "; do
  "$kiln" --help | grep -q "$code" || fail "kiln --help does not list exit code '$code'"
done

[ $fails = 0 ] && echo "args_cli: all passed"
exit $((fails > 0))
