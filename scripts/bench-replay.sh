#!/usr/bin/env bash
# Engine replay benchmark: builds a synthetic store of EVENTS events in memory
# (tests/unit/bench_replay.c) and times memscope_history_open (read + order +
# merge) and memscope_history_snapshot (replay + snapshot build), printing the
# median of RUNS runs of each in M events/s against the 50 M events/s target,
# for threads interleaving event by event and for threads running in bursts.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench-replay.sh [--events N] [--threads N] [--live N] [--runs N] [--burst N] [--help]

Builds (scripts/build.sh), then runs build/bin/bench_replay: a synthetic store
(mixed sizes, LIFO-ish frees with 1 in 10 by another thread, 1 in 20 a realloc,
address reuse through per-thread free lists) read by the engine from this
process's memory, then the snapshot at the end replayed from it.

  --events N   events in the store (default 10000000)
  --threads N  recording threads, 1-64 (default 4)
  --live N     live blocks the workload hovers around (default 300000)
  --runs N     runs; medians are printed (default 7)
  --burst N    only this workload: 1 = threads interleave event by event (the
               merge's worst case), N > 1 = a thread runs N events on average
               before another one (real programs); default: both 1 and 64

Figures: "history_open" reads, checks, orders and merges the events;
"snapshot" replays them into live blocks and statistics and builds the
snapshot (blocks sorted by address); "together" is both, what a front end
pays for its first snapshot. Target: >= 50 M events/s, for "together" too.
USAGE
}

events=10000000
threads=4
live=300000
runs=7
bursts="1 64"
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --live) live=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --burst) bursts=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-replay: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMSCOPE_BUILD_DIR:-$top/build}
"$top/scripts/build.sh" >/dev/null
bench="$build/bin/bench_replay"
[ -x "$bench" ] || { echo "bench-replay: $bench was not built" >&2; exit 1; }

for burst in $bursts; do
  out=$("$bench" "$events" "$threads" "$live" "$runs" "$burst")
  echo "$out"
  echo "$out" | awk '
    /^snapshot/ { snap = $(NF-2) }
    /^history_open/ { open = $(NF-2) }
    /^together/ { both = $(NF-2) }
    END {
      printf "target 50 M events/s: snapshot (replay) %s, history_open %s, together %s\n",
        (snap >= 50 ? "PASS" : "MISS"), (open >= 50 ? "PASS" : "MISS"), (both >= 50 ? "PASS" : "MISS")
    }'
done
