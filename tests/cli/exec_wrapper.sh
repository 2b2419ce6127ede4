#!/bin/bash
# tests/cli/exec_wrapper.sh KILN - $KILN_EXEC_WRAPPER (tuner/worker.h), the
# prefix kiln tune puts before its own path when it re-executes itself as a
# worker (qemu-user without binfmt_misc needs it; tests/bench/fake-adb):
#   - a wrapper script that logs its arguments and execs them: the tune
#     succeeds, and every worker went through it with kiln's own path;
#   - a wrapper that does not exist: the tune fails and says what it could
#     not exec (the wrapper's name, the executable) and why;
#   - unset (the plain re-exec): the tune succeeds.
# On the cpu backend, a small gemv shape, budget 2.
set -uo pipefail
kiln=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export KILN_CPU_THREADS=1
shape=m=64,k=128,quant=q4_0,group=32
args=(tune --device cpu --kernel gemv_int4 --shape "$shape" --budget 2)
real=$(readlink -f "$kiln")

cat >"$tmp/wrap" <<WRAP
#!/bin/sh
echo "\$*" >>"$tmp/wrap.log"
exec "\$@"
WRAP
chmod 755 "$tmp/wrap"
KILN_EXEC_WRAPPER="$tmp/wrap" "$kiln" "${args[@]}" --db "$tmp/a.db" >"$tmp/a.out" 2>&1 ||
    fail "tune through a wrapper exited $?: $(tail -3 "$tmp/a.out")"
grep -q '0 failed' "$tmp/a.out" || fail "tune through a wrapper: a job failed: $(tail -3 "$tmp/a.out")"
[[ -s $tmp/wrap.log ]] || fail "the wrapper was never run"
if [[ -s $tmp/wrap.log ]]; then
    grep -qvxF "$real" "$tmp/wrap.log" && fail "the wrapper was given something else than $real: $(sort -u "$tmp/wrap.log")"
    echo "wrapper: $(wc -l <"$tmp/wrap.log") worker start(s), each with $(head -1 "$tmp/wrap.log")"
fi

KILN_EXEC_WRAPPER="$tmp/no-such-emulator -cpu max" "$kiln" "${args[@]}" --db "$tmp/b.db" >"$tmp/b.out" 2>&1
grep -q '0 failed' "$tmp/b.out" && fail "tune through a missing wrapper reported no failure"
grep -qF "cannot exec \$KILN_EXEC_WRAPPER: $tmp/no-such-emulator -cpu max $real: No such file or directory" "$tmp/b.out" ||
    fail "a missing wrapper is not named with its error: $(cat "$tmp/b.out")"
grep "cannot exec" "$tmp/b.out" | head -1

env -u KILN_EXEC_WRAPPER "$kiln" "${args[@]}" --db "$tmp/c.db" >"$tmp/c.out" 2>&1 ||
    fail "tune without a wrapper exited $?: $(tail -3 "$tmp/c.out")"
grep -q '0 failed' "$tmp/c.out" || fail "tune without a wrapper: a job failed"

[[ $fails -eq 0 ]] && echo "ok: through a wrapper, a missing wrapper named, without one"
exit $((fails > 0))
