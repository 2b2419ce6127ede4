#!/usr/bin/env bash
# Build llama.cpp as a benchmark peer, outside the repository.
#
# The sources are the llama.cpp tree vendored in the PyPI sdist of llama-cpp-python (PyPI is
# reachable where GitHub is not), pinned by version and sha256. Builds, into
#   ${KILN_PEERS_DIR:-$HOME/.cache/kiln/peers}/llama.cpp-<version>/build-cpu
# the targets llama-bench, test-backend-ops, llama-simple, llama-cli and llama-server
# (Release, CPU backend, GGML_NATIVE=ON, no CURL/OpenSSL, no web UI download).
#
#   bash bench/peers/build-llama.sh [--vulkan] [--jobs N]
#
#   --vulkan   also build build-vulkan/ (-DGGML_VULKAN=ON) when glslc and the Vulkan headers are
#              there (installs libvulkan-dev and glslc from Debian when missing); when that is not
#              possible it says why and still exits 0.
#   --jobs N   parallel compile jobs (default 2: the build machines have 2 cores)
#   --only T   build only target T (repeatable), e.g. --only llama-server for `kiln bench serve`'s
#              peer: the full set takes ~25 min on 2 cores, one tool and ggml a good part less
#
# Idempotent: a build dir whose binaries all exist is skipped. Prints the binaries' paths last.
# Takes about 20-25 minutes on 2 cores (CPU build); the sdist is ~77 MB.
set -euo pipefail

# --- the pin -------------------------------------------------------------------------------------
LLAMA_CPP_PYTHON_VERSION=0.3.36
LLAMA_CPP_PYTHON_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
# llama.cpp commit of vendor/llama.cpp in that sdist (.git/modules/vendor/llama.cpp/HEAD)
LLAMA_CPP_COMMIT=0c1e57098bba43ac29e6e3b677cdceebdd22334f
# -------------------------------------------------------------------------------------------------

TARGETS=(llama-bench test-backend-ops llama-simple llama-cli llama-server)

want_vulkan=0
jobs=2
only=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --vulkan) want_vulkan=1 ;;
        --jobs) jobs="${2:?--jobs needs a number}"; shift ;;
        --only) only+=("${2:?--only needs a target name}"); shift ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-llama.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

if [[ ${#only[@]} -gt 0 ]]; then TARGETS=("${only[@]}"); fi

peers_dir="${KILN_PEERS_DIR:-$HOME/.cache/kiln/peers}"
root="$peers_dir/llama.cpp-$LLAMA_CPP_PYTHON_VERSION"
src="$root/src"
sdist_name="llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
sdist="$peers_dir/dl/$sdist_name"

# Never build inside the repository.
repo_top="$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null || true)"
if [[ -n "$repo_top" ]]; then
    case "$(realpath -m "$root")/" in
        "$(realpath -m "$repo_top")"/*)
            echo "build-llama.sh: KILN_PEERS_DIR ($peers_dir) is inside the repository; pick a folder outside it" >&2
            exit 2 ;;
    esac
fi

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else return 1
    fi
}

apt_updated=0
apt_install() {   # apt_install PKG... ; returns non-zero when it cannot
    command -v apt-get >/dev/null 2>&1 || return 1
    if [[ $apt_updated -eq 0 ]]; then
        as_root apt-get update -qq >/dev/null || return 1
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# --- build deps ----------------------------------------------------------------------------------
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
{ command -v g++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1; } || need+=(build-essential)
command -v ninja >/dev/null 2>&1 || need+=(ninja-build)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
if [[ ${#need[@]} -gt 0 ]]; then
    echo "== installing build deps: ${need[*]}"
    apt_install "${need[@]}" || { echo "build-llama.sh: cannot install ${need[*]} (need root or sudo)" >&2; exit 3; }
fi

all_built() {   # all_built BUILD_DIR
    local t
    for t in "${TARGETS[@]}"; do [[ -x "$1/bin/$t" ]] || return 1; done
}

# --- sources -------------------------------------------------------------------------------------
fetch_sources() {
    if [[ -f "$src/CMakeLists.txt" && -f "$root/.unpacked" ]]; then return 0; fi
    mkdir -p "$peers_dir/dl"
    if [[ ! -f "$sdist" ]] || ! echo "$LLAMA_CPP_PYTHON_SHA256  $sdist" | sha256sum -c --quiet - 2>/dev/null; then
        echo "== downloading $sdist_name from PyPI"
        rm -f "$sdist"
        local tmp; tmp="$(mktemp -d)"
        # --no-build-isolation with no build backend would fail metadata preparation; pip only needs
        # to download here, and with --no-deps it prepares the metadata of this one sdist. Only this
        # package as source: with --no-binary :all: pip also built every build dependency of the
        # metadata step from source, recursively (over 30 minutes on a loaded 2-core machine).
        python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python \
            "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$tmp"
        mv "$tmp/$sdist_name" "$sdist"
        rm -rf "$tmp"
    fi
    echo "$LLAMA_CPP_PYTHON_SHA256  $sdist" | sha256sum -c --quiet - || {
        echo "build-llama.sh: sha256 mismatch for $sdist" >&2; exit 1; }
    echo "== unpacking vendor/llama.cpp into $src"
    rm -rf "$src" "$root/.unpacked"
    mkdir -p "$src"
    tar -xzf "$sdist" -C "$src" --strip-components=3 \
        "llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
    # the vendored tree's .git points into the sdist's .git/modules, which we do not unpack
    rm -f "$src/.git"
    echo "$LLAMA_CPP_COMMIT" > "$root/.unpacked"
}

configure_and_build() {   # configure_and_build BUILD_DIR EXTRA_CMAKE_ARGS...
    local bdir="$1"; shift
    cmake -S "$src" -B "$bdir" -G Ninja \
        -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF \
        -DGGML_NATIVE=ON \
        -DLLAMA_CURL=OFF \
        -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_UI=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_BUILD_APP=OFF \
        -DLLAMA_BUILD_TESTS=ON \
        -DLLAMA_BUILD_TOOLS=ON \
        -DLLAMA_BUILD_EXAMPLES=ON \
        -DLLAMA_BUILD_SERVER=ON \
        -DLLAMA_BUILD_COMMIT="${LLAMA_CPP_COMMIT:0:7}" \
        "$@"
    cmake --build "$bdir" --config Release -j "$jobs" --target "${TARGETS[@]}"
}

cpu_dir="$root/build-cpu"
if all_built "$cpu_dir"; then
    echo "== CPU build already there: $cpu_dir"
else
    fetch_sources
    echo "== building llama.cpp $LLAMA_CPP_COMMIT (llama-cpp-python $LLAMA_CPP_PYTHON_VERSION), CPU, -j$jobs"
    start=$(date +%s)
    configure_and_build "$cpu_dir" -DGGML_VULKAN=OFF
    echo "== CPU build took $(( $(date +%s) - start )) s"
fi

vk_dir="$root/build-vulkan"
vk_built=0
if [[ $want_vulkan -eq 1 ]]; then
    if all_built "$vk_dir"; then
        echo "== Vulkan build already there: $vk_dir"
        vk_built=1
    else
        vk_why=""
        if ! command -v glslc >/dev/null 2>&1 || ! have_pkg libvulkan-dev; then
            echo "== installing glslc and libvulkan-dev for the Vulkan build"
            apt_install glslc libvulkan-dev spirv-headers >/dev/null 2>&1 \
                || apt_install glslc libvulkan-dev >/dev/null 2>&1 \
                || vk_why="cannot install glslc/libvulkan-dev from Debian (need root or sudo, or the packages are not in this release)"
        fi
        if [[ -z "$vk_why" ]] && ! command -v glslc >/dev/null 2>&1; then vk_why="no glslc on PATH"; fi
        # this ggml-vulkan uses VK_EXT_layer_settings (Vulkan headers >= 1.3.261); Debian 12 ships
        # 1.3.239, where the build fails after ~10 minutes at ggml-vulkan.cpp: say so up front
        vk_h=/usr/include/vulkan/vulkan_core.h
        if [[ -z "$vk_why" ]] && ! grep -q '#define VK_EXT_layer_settings ' "$vk_h" 2>/dev/null; then
            vk_why="the Vulkan headers ($vk_h, VK_HEADER_VERSION $(sed -n 's/^#define VK_HEADER_VERSION \([0-9]*\).*/\1/p' "$vk_h" 2>/dev/null || true)) lack VK_EXT_layer_settings, which this llama.cpp needs (headers >= 1.3.261)"
        fi
        if [[ -z "$vk_why" ]]; then
            fetch_sources
            echo "== building llama.cpp, Vulkan backend, -j$jobs"
            start=$(date +%s)
            if configure_and_build "$vk_dir" -DGGML_VULKAN=ON; then
                echo "== Vulkan build took $(( $(date +%s) - start )) s"
                vk_built=1
            else
                vk_why="the Vulkan build failed (see the output above; Debian 12's Vulkan headers may be older than this llama.cpp needs)"
            fi
        fi
        [[ $vk_built -eq 1 ]] || echo "== skipping the Vulkan peer: $vk_why"
    fi
fi

echo
echo "llama.cpp $LLAMA_CPP_COMMIT (llama-cpp-python $LLAMA_CPP_PYTHON_VERSION sdist, sha256 $LLAMA_CPP_PYTHON_SHA256)"
for t in "${TARGETS[@]}"; do
    echo "cpu     $t: $cpu_dir/bin/$t"
done
if [[ $vk_built -eq 1 ]]; then
    for t in "${TARGETS[@]}"; do
        echo "vulkan  $t: $vk_dir/bin/$t"
    done
fi
