#!/usr/bin/env bash
# Configures and builds memscope into build/ (or $MEMSCOPE_BUILD_DIR).
set -euo pipefail
case "${1:-}" in -h|--help) echo "Usage: scripts/build.sh [extra cmake -D options]"; exit 0 ;; esac
top=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMSCOPE_BUILD_DIR:-$top/build}
cmake -S "$top" -B "$build" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
