#!/usr/bin/env bash
# Times memscope-snapshot in GDB end to end (read the store out of the
# inferior, replay it in the engine, render the text) on a live process and
# on a gcore core of it, for a fixture that recorded N events.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench-gdb.sh [--runs N] [EVENTS...]
Runs build/bin/gdb_bench (preloaded with build/lib/libmemscope.so) to a
breakpoint after it recorded EVENTS heap events (default: 1000000 10000000),
then times `memscope-snapshot` in GDB N times (default 5; the plugin's cache
is dropped before each run, so each one reads and replays the whole store),
first on the live process, then on a gcore core of it. Prints the median and
every run. MEMSCOPE_BUILD_DIR selects another build directory.
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
[ ${#events[@]} -gt 0 ] || events=(1000000 10000000)

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMSCOPE_BUILD_DIR:-$top/build}
lib=$build/lib/libmemscope.so
engine=$build/lib/libmemscope-engine.so
fixture=$build/bin/gdb_bench
for f in "$lib" "$engine" "$fixture"; do
  [ -e "$f" ] || { echo "bench-gdb: $f is missing; build first (scripts/build.sh)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/memscope-bench-gdb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The timing loop, run inside GDB.
cat > "$tmp/time.py" <<'PY'
import statistics, time
import gdb
from memscope_gdb import store

def bench(where, runs):
    times = []
    for _ in range(runs):
        store.invalidate()
        start = time.perf_counter()
        text = gdb.execute("memscope-snapshot", to_string=True)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    gdb.execute("memscope-snapshot", to_string=True)
    cached = time.perf_counter() - start
    info = store.history().info()
    gdb.write("%-5s events=%d dropped=%d  memscope-snapshot median %.3f s  (runs: %s; cached %.4f s; %d lines)\n"
              % (where, info.events, info.dropped_events, statistics.median(times),
                 " ".join("%.3f" % t for t in times), cached, text.count("\n")))
PY

export MEMSCOPE_ENGINE_LIBRARY=$engine
for n in "${events[@]}"; do
  core=$tmp/bench-$n.core
  echo "== $n events"
  gdb -nx -batch -x "$top/gdb/memscope.py" -x "$tmp/time.py" \
    -ex "set startup-with-shell off" \
    -ex "set environment LD_PRELOAD=$lib" \
    -ex "set environment MEMSCOPE_BUDGET=1G" \
    -ex "break fixture_checkpoint" -ex "run" \
    -ex "python bench('live', $runs)" \
    -ex "gcore $core" \
    --args "$fixture" "$n" 2>&1 | grep -E '^(live|core) |rror' || true
  gdb -nx -batch -x "$top/gdb/memscope.py" -x "$tmp/time.py" \
    -ex "python bench('core', $runs)" "$fixture" "$core" 2>&1 | grep -E '^(live|core) |rror' || true
  echo "   core file: $(du -h "$core" | cut -f1)"
  rm -f "$core"
done
