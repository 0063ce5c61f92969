#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs a
# multi-threaded sample program under `memscope run`, which prints the
# snapshot of its heap at exit.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/demo.sh [--help]

Installs missing Debian packages (scripts/setup.sh), builds memscope
(scripts/build.sh), then runs tests/fixtures/demo_threads.c under
  build/bin/memscope run -- build/bin/demo_threads
Four threads grow tables by realloc, allocate and free thousands of messages,
free blocks other threads allocated, label a few blocks and leak a known set;
memscope prints the summary, the per-thread table and the largest live blocks,
then the live blocks grouped by label, then by allocation site (function,
file:line and library, named from the program's files after it has ended).
The program says itself what it leaves live, so its line and memscope's
figures can be compared.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMSCOPE_BUILD_DIR:-$top/build}
"$top/scripts/setup.sh"
"$top/scripts/build.sh" >/dev/null

echo "\$ build/bin/memscope run -- build/bin/demo_threads"
"$build/bin/memscope" run -- "$build/bin/demo_threads"
echo
echo "\$ build/bin/memscope run --group-by label -- build/bin/demo_threads   (live blocks section)"
"$build/bin/memscope" run --group-by label -- "$build/bin/demo_threads" | sed -n '/^Live blocks/,$p'
echo
echo "\$ build/bin/memscope run --group-by site -- build/bin/demo_threads   (live memory by allocation site)"
"$build/bin/memscope" run --group-by site -- "$build/bin/demo_threads" | sed -n '/^Live memory by allocation site/,$p'
