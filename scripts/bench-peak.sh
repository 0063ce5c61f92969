#!/usr/bin/env bash
# Peak break and time travel benchmark: (1) the allocation-heavy workload with
# memscope-break-peak armed at its default step in GDB vs the same run with no
# GDB attached; (2) memscope-diff, time-travel snapshots and the timeline in
# GDB on a store of N events.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench-peak.sh [--runs N] [--ops N] [--events N] [--help]

Part 1: build/bin/bench_alloc mixed 1 OPS and mixed 2 OPS (the workload of
scripts/bench-alloc.sh), preloaded with build/lib/libmemscope.so, run N times
each way, interleaved:
  plain       no GDB attached
  gdb         under GDB, nothing armed (what GDB alone costs: thread events)
  gdb+peak    under GDB with 'memscope-break-peak' (default step, printing
              at each stop; a Python loop continues after every stop)
  gdb+peak-np the same with --no-print (the trap and the stops without the
              exact report, which replays the whole store at each stop)
The workload times itself (wall_ns, the work only); medians are compared
with the target: gdb+peak <= 1.2x plain.

Part 2: build/bin/gdb_bench EVENTS stopped at its checkpoint under GDB; each
command is timed N times end to end with the plugin's cache dropped first
(read the store out of the process, replay, render):
  memscope-diff event:E/2 now, memscope-snapshot --at-peak,
  memscope-snapshot --at-event E/2, memscope-snapshot --at TIME (mid-run),
  memscope-timeline. Target: a diff or time-travel snapshot <= 2 s.

  --runs N     runs of each configuration and command (default 5)
  --ops N      calls per thread in the mixed workload (default 4000000)
  --events N   events in the part 2 store (default 10000000)
MEMSCOPE_BUILD_DIR selects another build directory (default build/).
USAGE
}

runs=5
ops=4000000
events=10000000
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --runs) runs=$2; shift 2 ;;
    --ops) ops=$2; shift 2 ;;
    --events) events=$2; shift 2 ;;
    *) echo "bench-peak: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMSCOPE_BUILD_DIR:-$top/build}
lib=$build/lib/libmemscope.so
engine=$build/lib/libmemscope-engine.so
workload=$build/bin/bench_alloc
fixture=$build/bin/gdb_bench
for f in "$lib" "$engine" "$workload" "$fixture"; do
  [ -e "$f" ] || { echo "bench-peak: $f is missing; build first (scripts/build.sh)" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/memscope-bench-peak.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export MEMSCOPE_ENGINE_LIBRARY=$engine

# ---- part 1 ----
cat > "$tmp/run.py" <<'PY'
import gdb
def run_to_end(arm):
    gdb.execute("break main", to_string=True)
    gdb.execute("run", to_string=True)
    gdb.execute("delete", to_string=True)
    if arm:
        gdb.write(gdb.execute(arm, to_string=True))
    stops = 0
    while gdb.selected_inferior().pid:
        gdb.execute("continue", to_string=True)
        if gdb.selected_inferior().pid:
            stops += 1
    gdb.write("peak-stops: %d\n" % stops)
PY

results=$tmp/results
one() { # one CONFIG THREADS
  local config=$1 threads=$2 out line
  case $config in
    plain) out=$(env LD_PRELOAD="$lib" MEMSCOPE_BUDGET=4G "$workload" mixed "$threads" "$ops") ;;
    gdb|gdb+peak|gdb+peak-np)
      local arm="None"
      [ "$config" = gdb+peak ] && arm="'memscope-break-peak'"
      [ "$config" = gdb+peak-np ] && arm="'memscope-break-peak --no-print'"
      out=$(gdb -nx -batch -x "$top/gdb/memscope.py" -x "$tmp/run.py" \
        -ex "set startup-with-shell off" -ex "set environment LD_PRELOAD=$lib" \
        -ex "set environment MEMSCOPE_BUDGET=4G" -ex "python run_to_end($arm)" \
        --args "$workload" mixed "$threads" "$ops" 2>&1) ;;
  esac
  line=$(printf '%s\n' "$out" | grep '^bench: ') || { echo "bench-peak: $config printed no result:" >&2; printf '%s\n' "$out" >&2; exit 1; }
  stops=$(printf '%s\n' "$out" | sed -n 's/^peak-stops: //p')
  field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
  echo "$config $threads $(field wall_ns) $(field cpu_ns) $(field events) ${stops:--}" >>"$results"
}
echo "bench-peak: part 1, $runs runs each, mixed $ops calls/thread; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for ((r = 1; r <= runs; r++)); do
  for threads in 1 2; do
    for config in plain gdb gdb+peak gdb+peak-np; do one "$config" "$threads"; done
  done
  echo "bench-peak: round $r/$runs done" >&2
done
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    config, threads, wall, cpu, events, stops = line.split()
    rows.setdefault((config, threads), []).append((int(wall), int(cpu) / int(events), stops))
med = lambda c, t, i: statistics.median(r[i] for r in rows[(c, t)])
print("%-10s %-11s %10s %7s %9s %7s  %s" % ("workload", "config", "wall ms", "ratio", "cpu/call", "ratio",
                                          "peak stops per run"))
for threads in ("1", "2"):
    for config in ("plain", "gdb", "gdb+peak", "gdb+peak-np"):
        stops = " ".join(r[2] for r in rows[(config, threads)]) if config.startswith("gdb+peak") else ""
        print("%-10s %-11s %10.1f %6.2fx %7.1fns %6.2fx  %s"
              % ("mixed " + threads, config, med(config, threads, 0) / 1e6,
                 med(config, threads, 0) / med("plain", threads, 0), med(config, threads, 1),
                 med(config, threads, 1) / med("plain", threads, 1), stops))
total = lambda c: sum(med(c, t, 0) for t in ("1", "2"))
ratio = total("gdb+peak") / total("plain")
cpu = sum(med("gdb+peak", t, 1) for t in ("1", "2")) / sum(med("plain", t, 1) for t in ("1", "2"))
print("peak break armed (default step) vs no GDB, mixed 1 + 2 threads: %.2fx wall (CPU per call: %.2fx)"
      "     target <= 1.2x    %s" % (ratio, cpu, "PASS" if ratio <= 1.2 else "MISS"))
print("(--no-print: %.2fx wall. GDB attached with nothing armed: %.2fx wall. Wall times on a shared 2-CPU machine are bimodal: two"
      " threads run side by side or one after the other; the CPU time per call is the steadier figure.)"
      % (total("gdb+peak-np") / total("plain"), total("gdb") / total("plain")))
PY

# ---- part 2 ----
half=$((events / 2))
cat > "$tmp/time.py" <<PY
import statistics, time
import gdb
from memscope_gdb import store

def bench(runs):
    info = store.history().info()
    mid = "%.6f" % ((info.first_time_ns + info.last_time_ns) / 2e9)
    commands = ["memscope-diff event:$half now", "memscope-diff event:$half now --group-by size",
                "memscope-snapshot --at-peak", "memscope-snapshot --at-event $half",
                "memscope-snapshot --at " + mid, "memscope-snapshot", "memscope-timeline"]
    gdb.write("store: %d events, %d dropped\n" % (info.events, info.dropped_events))
    for command in commands:
        times = []
        for _ in range(runs):
            store.invalidate()
            start = time.perf_counter()
            gdb.execute(command, to_string=True)
            times.append(time.perf_counter() - start)
        target = "" if command.startswith("memscope-timeline") or command == "memscope-snapshot" else \
            ("   target <= 2 s  %s" % ("PASS" if statistics.median(times) <= 2 else "MISS"))
        gdb.write("%-52s median %.3f s  (runs: %s)%s\n"
                  % (command, statistics.median(times), " ".join("%.3f" % t for t in times), target))
PY
echo "bench-peak: part 2, $events events, $runs runs per command" >&2
gdb -nx -batch -x "$top/gdb/memscope.py" -x "$tmp/time.py" \
  -ex "set startup-with-shell off" -ex "set environment LD_PRELOAD=$lib" \
  -ex "set environment MEMSCOPE_BUDGET=1G" -ex "break fixture_checkpoint" -ex "run" \
  -ex "python bench($runs)" --args "$fixture" "$events" 2>&1 | grep -E '^(store:|memscope-)|rror' || true
