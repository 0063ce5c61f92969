#!/usr/bin/env bash
# Fuzzes memscope's readers of untrusted input with libFuzzer for a given
# time, starting from the kept corpus: the core and store reader of
# `memscope inspect` (c/cli/fuzz_inspect.c, the default), the trace reader
# of `memscope report` (c/cli/fuzz_trace.c, --target trace) or the exit
# image reader of `memscope run` (c/cli/fuzz_image.c, --target image).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/fuzz-inspect.sh [--target inspect|trace|image] [--jobs N] [SECONDS]
Builds the libFuzzer target fuzz_TARGET (default: inspect) with clang
(-fsanitize=fuzzer,address,undefined; CMake option MEMSCOPE_FUZZ) in
$MEMSCOPE_FUZZ_BUILD (default /tmp/memscope-fuzz-build) and runs it for
SECONDS (default 600) on N jobs (default 1), starting from
tests/fuzz/TARGET/corpus (made by tests/fuzz/mkcorpus.py) plus a working
corpus kept in the build directory (corpus/, or corpus-TARGET/). Inputs that
crash are written to $MEMSCOPE_FUZZ_BUILD/crashes/ (crashes-TARGET/ for
trace and image); copy them, named after what they found, into
tests/fuzz/TARGET/crashes/, where ctest replays them (inspect_fuzz_regress,
trace_fuzz_regress, image_fuzz_regress).
USAGE
}

target=inspect
jobs=1
seconds=600
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --target) target="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    *) seconds="$1"; shift ;;
  esac
done
case "$target" in
  inspect|trace|image) ;;
  *) echo "fuzz-inspect: unknown target '$target' (inspect, trace or image)" >&2; exit 2 ;;
esac

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMSCOPE_FUZZ_BUILD:-/tmp/memscope-fuzz-build}
command -v clang >/dev/null || { echo "fuzz-inspect: clang is not installed (scripts/setup.sh)" >&2; exit 1; }
cmake -S "$top" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMEMSCOPE_FUZZ=ON -DMEMSCOPE_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target "fuzz_$target" -j2 >/dev/null
# Working corpus and crashes: corpus/ and crashes/ for inspect (as before there was a second
# target), corpus-TARGET/ and crashes-TARGET/ for the others.
suffix=""
[ "$target" = inspect ] || suffix="-$target"
corpus="$build/corpus$suffix"
crashes="$build/crashes$suffix"
mkdir -p "$corpus" "$crashes"
echo "fuzz-inspect: fuzz_$target, $seconds s, $jobs job(s); crashes go to $crashes/" >&2
parallel=()
[ "$jobs" -gt 1 ] && parallel=(-fork="$jobs")
status=0
cd "$build"  # libFuzzer writes its logs to the current directory
"$build/bin/fuzz_$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  "${parallel[@]}" -artifact_prefix="$crashes/" -print_final_stats=1 \
  "$corpus" "$top/tests/fuzz/$target/corpus" || status=$?
found=$(find "$crashes" -type f | wc -l)
echo "fuzz-inspect: done (status $status); $found input(s) in $crashes/" >&2
exit $status
