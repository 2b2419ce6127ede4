#!/usr/bin/env bash
# scripts/build-aarch64.sh [--android] [DIR] [meson options...] - cross build
# Kiln for 64-bit Arm: the cpu backend only (Vulkan, OpenCL and CUDA are
# off: the phone's own drivers are not here to link or test against).
#   default    aarch64-linux-gnu with cross/aarch64-linux-gnu.ini (Debian's
#              crossbuild-essential-arm64 + multiarch sqlite3/cJSON, installed
#              by scripts/install-deps.sh); DIR defaults to build-aarch64.
#              Run the result with qemu-aarch64-static -cpu max DIR/src/kiln.
#   --android  aarch64-linux-android with cross/aarch64-android.ini and the
#              NDK in $ANDROID_NDK_HOME or $ANDROID_NDK_ROOT (none is
#              downloaded); sqlite3 and cJSON built for Android must be in
#              $KILN_ANDROID_PREFIX (lib/pkgconfig); DIR defaults to
#              build-android. Exits 77 when no NDK is found.
set -euo pipefail
cd "$(dirname "$0")/.."
android=0
if [ "${1:-}" = --android ]; then android=1; shift; fi
off=(-Dopencl=disabled -Dvulkan=disabled -Dcuda=disabled)
if [ $android = 0 ]; then
  dir=${1:-build-aarch64}
  shift || true
  command -v aarch64-linux-gnu-gcc >/dev/null || { echo "build-aarch64: no aarch64-linux-gnu-gcc (scripts/install-deps.sh installs crossbuild-essential-arm64)" >&2; exit 1; }
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --cross-file cross/aarch64-linux-gnu.ini "${off[@]}" "$@" >&2
  fi
else
  dir=${1:-build-android}
  shift || true
  ndk=${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}
  if [ -z "$ndk" ] || [ ! -d "$ndk/toolchains/llvm/prebuilt/linux-x86_64/bin" ]; then
    echo "build-aarch64 --android: no NDK (set ANDROID_NDK_HOME to an unpacked android-ndk-rNN)" >&2; exit 77
  fi
  mkdir -p "$dir"
  printf "[constants]\nndk = '%s'\n" "$ndk" >"$dir/android-ndk.ini"
  export PKG_CONFIG_LIBDIR="${KILN_ANDROID_PREFIX:-/nonexistent}/lib/pkgconfig"
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --cross-file "$dir/android-ndk.ini" --cross-file cross/aarch64-android.ini "${off[@]}" "$@" >&2
  fi
fi
nice -n 5 ninja -C "$dir" >&2
