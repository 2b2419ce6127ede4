#!/usr/bin/env bash
# scripts/get-nvrtc.sh - find (or fetch) a usable NVRTC for CUDA compile checks.
#
# Prints the path of a libnvrtc that really compiles a kernel on stdout and
# exits 0; everything else goes to stderr. Tries, in order:
#   1. $KILN_NVRTC (a library file or a directory holding one)
#   2. the CUDA toolkit: /usr/local/cuda/lib64/libnvrtc.so*, then `ldconfig -p`
#   3. the pip-wheel cache ${KILN_CACHE_DIR:-$HOME/.cache/kiln}/nvrtc (filled
#      by a previous run), else `pip download --no-deps nvidia-cuda-nvrtc-cu12`
#      unzipped there (libnvrtc-builtins sits next to libnvrtc.so.12).
# A candidate counts only if a small checker (built with cc, loading it with
# dlopen like Kiln does) compiles a kernel to a CUBIN with it.
# Exits 1 with the reasons on stderr if nothing works.
set -uo pipefail

cache=${KILN_CACHE_DIR:-$HOME/.cache/kiln}
nvrtc_dir=$cache/nvrtc
log() { echo "get-nvrtc: $*" >&2; }

mkdir -p "$cache" 2>/dev/null || cache=$(mktemp -d)
checker=$cache/nvrtc-check-v1
# The checker loads a candidate the way devices/cuda/cuda_api.c does (the
# libnvrtc-builtins next to it preloaded), compiles a kernel, gets a CUBIN.
checker_src='
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
typedef int (*create_t)(void **, const char *, const char *, int, const char *const *, const char *const *);
typedef int (*compile_t)(void *, int, const char *const *);
typedef int (*size_t_t)(void *, size_t *);
typedef int (*log_t)(void *, char *);
typedef int (*ver_t)(int *, int *);
int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    /* like devices/cuda/cuda_api.c: preload libnvrtc-builtins from the same directory */
    char pat[4200];
    const char *slash = strrchr(argv[1], 0x2f);
    if (slash) {
        snprintf(pat, sizeof pat, "%.*s/libnvrtc-builtins.so*", (int)(slash - argv[1]), argv[1]);
        glob_t g;
        if (glob(pat, 0, NULL, &g) == 0) {
            for (size_t i = g.gl_pathc; i-- > 0;)
                if (dlopen(g.gl_pathv[i], RTLD_NOW | RTLD_GLOBAL)) break;
            globfree(&g);
        }
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    ver_t ver = (ver_t)dlsym(h, "nvrtcVersion");
    create_t create = (create_t)dlsym(h, "nvrtcCreateProgram");
    compile_t compile = (compile_t)dlsym(h, "nvrtcCompileProgram");
    size_t_t cubin_size = (size_t_t)dlsym(h, "nvrtcGetCUBINSize");
    size_t_t log_size = (size_t_t)dlsym(h, "nvrtcGetProgramLogSize");
    log_t get_log = (log_t)dlsym(h, "nvrtcGetProgramLog");
    if (!ver || !create || !compile || !cubin_size || !log_size || !get_log) {
        fprintf(stderr, "%s: not an NVRTC >= 11.1 (missing symbols)\n", argv[1]);
        return 1;
    }
    int major = 0, minor = 0;
    ver(&major, &minor);
    void *prog = NULL;
    const char *src = "extern \"C\" __global__ void k(float *p) { p[threadIdx.x] = __expf(p[threadIdx.x]); }\n";
    const char *opts[] = {"--gpu-architecture=sm_80", "-default-device"};
    if (create(&prog, src, "check.cu", 0, NULL, NULL)) { fprintf(stderr, "nvrtcCreateProgram failed\n"); return 1; }
    int rc = compile(prog, 2, opts);
    size_t n = 0;
    if (rc) {
        log_size(prog, &n);
        char *l = calloc(1, n + 1);
        if (l) get_log(prog, l);
        fprintf(stderr, "%s (NVRTC %d.%d): compiling a test kernel failed (%d; libnvrtc-builtins missing?): %s\n",
                argv[1], major, minor, rc, l ? l : "");
        return 1;
    }
    if (cubin_size(prog, &n) || n == 0) { fprintf(stderr, "%s: no CUBIN\n", argv[1]); return 1; }
    fprintf(stderr, "%s: NVRTC %d.%d compiles (%zu byte CUBIN for sm_80)\n", argv[1], major, minor, n);
    return 0;
}
'
build_checker() {
  [ -x "$checker" ] && return 0
  local cc=${CC:-cc} tmp
  command -v "$cc" >/dev/null 2>&1 || cc=gcc
  tmp=$(mktemp -d) || return 1
  printf '%s' "$checker_src" >"$tmp/check.c"
  if ! "$cc" -O1 -o "$tmp/nvrtc-check" "$tmp/check.c" -ldl 2>"$tmp/err"; then
    log "cannot build the NVRTC checker with $cc: $(head -c 600 "$tmp/err")"
    rm -rf "$tmp"
    return 1
  fi
  mv -f "$tmp/nvrtc-check" "$checker" && rm -rf "$tmp"
}

works() { # PATH -> 0 if it compiles a kernel
  [ -f "$1" ] || return 1
  "$checker" "$1"
}

# Candidates in a directory: .so.13, .so.12, .so, then other libnvrtc.so.* (newest first).
try_dir() { # DIR -> prints the first working library
  local d=$1 f
  [ -d "$d" ] || return 1
  for f in "$d/libnvrtc.so.13" "$d/libnvrtc.so.12" "$d/libnvrtc.so" $(ls -1r "$d"/libnvrtc.so.* 2>/dev/null); do
    if works "$f"; then
      echo "$f"
      return 0
    fi
  done
  return 1
}

found() {
  echo "$1"
  exit 0
}

if ! build_checker; then
  log "giving up: no C compiler to verify a candidate"
  exit 1
fi

# 1. explicit
if [ -n "${KILN_NVRTC:-}" ]; then
  if [ -d "$KILN_NVRTC" ]; then
    if p=$(try_dir "$KILN_NVRTC"); then found "$p"; fi
  elif works "$KILN_NVRTC"; then
    found "$KILN_NVRTC"
  fi
  log "KILN_NVRTC=$KILN_NVRTC does not work; looking elsewhere"
fi

# 2. toolkit
if p=$(try_dir /usr/local/cuda/lib64); then found "$p"; fi
if command -v ldconfig >/dev/null 2>&1 || [ -x /sbin/ldconfig ]; then
  ldc=$(command -v ldconfig || echo /sbin/ldconfig)
  for f in $("$ldc" -p 2>/dev/null | awk '/libnvrtc\.so(\.[0-9]+)* /{print $NF}' | sort -r); do
    if works "$f"; then found "$f"; fi
  done
fi

# 3. pip wheel cache, then download
for d in "$nvrtc_dir/nvidia/cuda_nvrtc/lib" "$nvrtc_dir/nvidia/cu13/lib"; do
  if p=$(try_dir "$d"); then found "$p"; fi
done
pip=""
for c in pip3 pip; do
  if command -v "$c" >/dev/null 2>&1; then pip=$c; break; fi
done
if [ -z "$pip" ] && command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
  pip="python3 -m pip"
fi
if [ -z "$pip" ]; then
  log "no NVRTC in \$KILN_NVRTC, /usr/local/cuda/lib64 or the loader path, and no pip to fetch nvidia-cuda-nvrtc-cu12"
  exit 1
fi
wheels=$nvrtc_dir/wheels
mkdir -p "$wheels" || { log "cannot create $wheels"; exit 1; }
log "downloading nvidia-cuda-nvrtc-cu12 into $wheels"
if ! $pip download --no-deps --only-binary=:all: -d "$wheels" nvidia-cuda-nvrtc-cu12 >&2; then
  log "pip download nvidia-cuda-nvrtc-cu12 failed"
  exit 1
fi
whl=$(ls -1t "$wheels"/nvidia_cuda_nvrtc_cu12-*.whl 2>/dev/null | head -n1)
if [ -z "$whl" ]; then
  log "pip reported success but no nvidia_cuda_nvrtc_cu12 wheel is in $wheels"
  exit 1
fi
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$whl" -d "$nvrtc_dir" >&2 || { log "unzip $whl failed"; exit 1; }
elif command -v python3 >/dev/null 2>&1; then
  python3 -m zipfile -e "$whl" "$nvrtc_dir" >&2 || { log "extracting $whl failed"; exit 1; }
else
  log "neither unzip nor python3 to extract $whl"
  exit 1
fi
if p=$(try_dir "$nvrtc_dir/nvidia/cuda_nvrtc/lib"); then found "$p"; fi
log "the wheel's libnvrtc in $nvrtc_dir/nvidia/cuda_nvrtc/lib does not compile (see above)"
exit 1
