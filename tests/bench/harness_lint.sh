#!/bin/bash
# tests/bench/harness_lint.sh HARNESS_DIR - shellcheck over bench/harness/*.sh.
set -u
command -v shellcheck >/dev/null 2>&1 || { echo "SKIP: shellcheck not installed (scripts/install-deps.sh)"; exit 77; }
shellcheck -x "$1"/*.sh
