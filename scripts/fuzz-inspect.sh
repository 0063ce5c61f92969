#!/usr/bin/env bash
# Fuzzes memscope inspect's core and store reader (c/cli/fuzz_inspect.c)
# with libFuzzer for a given time, starting from the kept corpus.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/fuzz-inspect.sh [--jobs N] [SECONDS]
Builds the libFuzzer target fuzz_inspect with clang (-fsanitize=fuzzer,address,
undefined; CMake option MEMSCOPE_FUZZ) in $MEMSCOPE_FUZZ_BUILD (default
/tmp/memscope-fuzz-build) and runs it for SECONDS (default 600) on N jobs
(default 1), starting from tests/fuzz/inspect/corpus plus a working corpus
kept in the build directory. Inputs that crash are written to
$MEMSCOPE_FUZZ_BUILD/crashes/; copy them (named after what they found) into
tests/fuzz/inspect/crashes/, where ctest replays them (inspect_fuzz_regress).
USAGE
}

jobs=1
seconds=600
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --jobs) jobs="$2"; shift 2 ;;
    *) seconds="$1"; shift ;;
  esac
done

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMSCOPE_FUZZ_BUILD:-/tmp/memscope-fuzz-build}
command -v clang >/dev/null || { echo "fuzz-inspect: clang is not installed (scripts/setup.sh)" >&2; exit 1; }
cmake -S "$top" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMEMSCOPE_FUZZ=ON -DMEMSCOPE_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target fuzz_inspect -j2 >/dev/null
mkdir -p "$build/corpus" "$build/crashes"
echo "fuzz-inspect: $seconds s, $jobs job(s); crashes go to $build/crashes/" >&2
parallel=()
[ "$jobs" -gt 1 ] && parallel=(-fork="$jobs")
status=0
cd "$build"  # libFuzzer writes its logs to the current directory
"$build/bin/fuzz_inspect" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  "${parallel[@]}" -artifact_prefix="$build/crashes/" -print_final_stats=1 \
  "$build/corpus" "$top/tests/fuzz/inspect/corpus" || status=$?
found=$(find "$build/crashes" -type f | wc -l)
echo "fuzz-inspect: done (status $status); $found input(s) in $build/crashes/" >&2
exit $status
