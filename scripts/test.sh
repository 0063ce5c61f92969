#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs every test (CTest).
set -euo pipefail
case "${1:-}" in -h|--help) echo "Usage: scripts/test.sh   (installs packages, builds, runs all tests)"; exit 0 ;; esac
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh"
"$top/scripts/build.sh"
build=${MEMSCOPE_BUILD_DIR:-$top/build}
ctest --test-dir "$build" --output-on-failure -j2 --timeout 600
