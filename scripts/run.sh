#!/usr/bin/env bash
# scripts/run.sh - set everything up and run Kiln's main job on this machine:
# list the devices, tune the decode kernels of the real SmolLM2 model on
# every local device, then run the model on each device with the tuned
# kernel set and print prefill/decode tokens/s and time to first token.
#   KILN_TUNE_BUDGET   tuning budget per device (default 3m)
#   KILN_DB            tuning database (default ~/.local/share/kiln/kiln.db)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/build.sh build-release --buildtype=release
kiln=./build-release/src/kiln
tune=./build-release/src/tune
model=$(bash scripts/fetch-model.sh)
budget=${KILN_TUNE_BUDGET:-3m}

echo "== devices"
$kiln devices

backends=()
for b in cpu opencl vulkan cuda; do
  if $kiln devices --json --no-bandwidth 2>/dev/null | grep -q "\"name\": *\"$b\", *\"compiled\": *true, *\"available\": *true" ||
     $kiln devices --no-bandwidth 2>/dev/null | grep -q "^$b:0"; then
    backends+=("$b")
  fi
done
echo "== available backends: ${backends[*]}"

for b in "${backends[@]}"; do
  echo "== tune --device $b --model $(basename "$model") --budget $budget"
  $tune --device "$b" --model "$model" --budget "$budget"
done
$kiln db show

for b in "${backends[@]}"; do
  echo "== kiln run on $b"
  $kiln run -m "$model" --device "$b" -n 32 --temp 0 \
    -p "What is the capital of France? Answer in one sentence."
done
