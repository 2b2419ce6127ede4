#!/usr/bin/env bash
# tests/cli/check.sh KILN BACKEND MODE [KERNEL]
# Runs `kiln check` on one backend and turns "backend unavailable" into a
# skip (77) unless the backend is required ($KILN_REQUIRE_BACKENDS).
#   MODE full   real Llama shapes + odd ones, must pass
#   MODE quick  small shapes, must pass
#   MODE break  plant a wrong index into KERNEL: check must fail, naming it
set -uo pipefail
kiln=$1 backend=$2 mode=$3 kernel=${4:-}

required() { [[ ",${KILN_REQUIRE_BACKENDS:-}," == *",$backend,"* ]]; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
case $mode in
  full) "$kiln" check --device "$backend" >"$out" 2>&1 ;;
  quick) "$kiln" check --device "$backend" --quick >"$out" 2>&1 ;;
  break) "$kiln" check --device "$backend" --quick --kernel "$kernel" --break "$kernel" >"$out" 2>&1 ;;
  *) echo "unknown mode $mode"; exit 2 ;;
esac
rc=$?
cat "$out"
if [ $rc -eq 3 ]; then
  if required; then echo "FAIL: backend $backend is required but unavailable"; exit 1; fi
  echo "SKIP: backend $backend unavailable"; exit 77
fi
if [ "$mode" = break ]; then
  # the planted bug must be caught: non-zero exit and FAIL lines naming the kernel
  if [ $rc -ne 1 ]; then echo "expected exit 1 from a broken $kernel, got $rc"; exit 1; fi
  if ! grep -q "^FAIL $backend:[0-9]* $kernel shape" "$out"; then
    echo "expected FAIL lines naming $backend and $kernel"; exit 1
  fi
  echo "planted wrong index in $kernel was caught on $backend"
  exit 0
fi
exit $rc
