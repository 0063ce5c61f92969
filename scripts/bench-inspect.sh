#!/usr/bin/env bash
# Times `memscope inspect` end to end on a core of a process that recorded N
# heap events: open the core, find the store, read and replay it, render,
# and symbolize the top 50 allocation sites (libelf + libdwarf).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench-inspect.sh [--runs N] [EVENTS...]
Runs build/bin/gdb_bench (preloaded with build/lib/libmemscope.so,
MEMSCOPE_BUDGET=1G) under GDB to its checkpoint after EVENTS heap events
(default 10000000), writes a core with gcore, then times N runs (default 5)
of each of:
  memscope inspect CORE                      (summary, threads, top blocks)
  memscope inspect CORE --by site --top 50   (the top 50 sites, symbolized)
  memscope inspect CORE --json FILE          (every live block as JSON)
and prints the median and every run (target: <= 1 s each for 10M events).
MEMSCOPE_BUILD_DIR selects another build directory.
USAGE
}

runs=5
events=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --runs) runs="$2"; shift 2 ;;
    *) events+=("$1"); shift ;;
  esac
done
[ ${#events[@]} -gt 0 ] || events=(10000000)

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMSCOPE_BUILD_DIR:-$top/build}
lib=$build/lib/libmemscope.so
fixture=$build/bin/gdb_bench
memscope=$build/bin/memscope
for f in "$lib" "$fixture" "$memscope"; do
  [ -e "$f" ] || { echo "bench-inspect: $f is missing; build first (scripts/build.sh)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/memscope-bench-inspect.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# median_of CMD...: runs CMD $runs times (output discarded), prints "median s  (runs: ...)".
median_of() {
  python3 - "$runs" "$@" <<'PY'
import statistics, subprocess, sys, time
runs, argv = int(sys.argv[1]), sys.argv[2:]
times = []
for _ in range(runs):
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    times.append(time.perf_counter() - start)
    if proc.returncode != 0:
        sys.exit("bench-inspect: %s failed: %s" % (" ".join(argv), proc.stderr.decode()))
print("median %.3f s  (runs: %s)" % (statistics.median(times), " ".join("%.3f" % t for t in times)))
PY
}

for n in "${events[@]}"; do
  core=$tmp/bench-$n.core
  echo "== $n events"
  gdb -nx -batch -ex "set startup-with-shell off" \
    -ex "set environment LD_PRELOAD=$lib" -ex "set environment MEMSCOPE_BUDGET=1G" \
    -ex "break fixture_checkpoint" -ex "run" -ex "gcore $core" \
    --args "$fixture" "$n" >/dev/null 2>&1
  [ -s "$core" ] || { echo "bench-inspect: gcore wrote no core" >&2; exit 1; }
  echo "   core file: $(du -h "$core" | cut -f1); $("$memscope" inspect "$core" --stats | tail -1)"
  cat "$core" >/dev/null  # in the page cache, as a core just written is
  echo "   inspect                    $(median_of "$memscope" inspect "$core")"
  echo "   inspect --by site --top 50 $(median_of "$memscope" inspect "$core" --by site --top 50)"
  echo "   inspect --json FILE        $(median_of "$memscope" inspect "$core" --json "$tmp/out.json")"
  rm -f "$core"
done
