#!/usr/bin/env bash
# tests/devices/devices_cli.sh KILN - `kiln devices` lists the cpu and every
# required backend's devices with a fingerprint and a measured copy and read
# bandwidth; unavailable backends carry a reason.
set -uo pipefail
kiln=$1
fail=0
out=$("$kiln" devices) || { echo "kiln devices failed"; exit 1; }
echo "$out"
json=$("$kiln" devices --json --no-bandwidth) || { echo "kiln devices --json failed"; exit 1; }
avail=$("$kiln" devices --available)
grep -q '^cpu:0$' <<<"$avail" || { echo "cpu:0 not listed"; fail=1; }
IFS=, read -ra req <<<"${KILN_REQUIRE_BACKENDS:-}"
for b in "${req[@]}"; do
  case $b in cpu|opencl|vulkan|cuda) ;; *) continue ;; esac
  if ! grep -q "^$b:0$" <<<"$avail"; then echo "required backend $b has no device"; fail=1; continue; fi
  # the block of that device must show a measured copy and read bandwidth
  for what in copy read; do
    if ! awk -v b="$b:0" -v w="$what" '$1==b{f=1} f&&$1==w{print; exit}' <<<"$out" | grep -qE '[0-9.]*[1-9][0-9.]* GB/s'; then
      echo "$b:0 has no measured $what bandwidth"; fail=1
    fi
  done
done
# every unavailable backend says why
while read -r line; do
  [[ $line == *"unavailable: "?* ]] || { echo "unavailable backend without a reason: $line"; fail=1; }
done < <(grep 'unavailable' <<<"$out")
grep -q '"fingerprint"' <<<"$json" || { echo "--json has no fingerprint"; fail=1; }
grep -q '"read_gbps"' <<<"$json" || { echo "--json has no read_gbps"; fail=1; }
exit $fail
