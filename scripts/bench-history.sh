#!/usr/bin/env bash
# History benchmark: the cost of writing a trace file (MEMSCOPE_TRACE) on the
# allocation workload, the trace's size per event, and how fast
# `memscope report` replays a trace.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench-history.sh [--reps N] [--ops N] [--stacks METHOD] [--fold-budget SIZE]
                                [--configs LIST] [--report-only TRACE] [--help]

Builds (scripts/build.sh), then runs the allocation workload
tests/fixtures/bench_alloc.c (mixed sizes, calloc, realloc, free) with one and
with two threads, OPS calls per thread, under memscope (MEMSCOPE_BUDGET=4G):
  store   recording into the in-memory store only
  trace   the same with MEMSCOPE_TRACE=FILE (the background writer streams
          every event to FILE, zstd-compressed)
  fold    the store bounded to SIZE (--fold-budget, default 16M, far less
          than the run's events take): the oldest events are folded into the
          checkpoint by the runtime's folding thread and their chunks reused
  both    bounded to SIZE and writing the trace: each fold first has the
          writer catch up, and reuses only chunks already on disk
N runs of each, interleaved; medians are printed. Then, on the trace of the
largest run: its bytes per event, and how long `memscope report TRACE` takes
(open + decode + merge + replay + render) for the default view (the snapshot
at the end), --summary, --at-peak and --timeline: N runs of each, interleaved,
medians of wall and CPU time (user + system), as events per second.

  --reps N          runs of each configuration (default 5)
  --ops N           calls per thread (default 4000000)
  --stacks METHOD   MEMSCOPE_STACK_METHOD for every run (default: none, so the
                    figures show the trace's own cost; 'unwind' is the runtime's default)
  --fold-budget SIZE  MEMSCOPE_BUDGET of the fold configuration (default 16M)
  --configs LIST    comma-separated configurations to run (default store,trace,fold,both;
                    store is always run: every ratio is to it); without trace, no
                    report part
  --report-only TRACE  only the report part, on TRACE (no workload runs)

Targets (PASS/MISS): with a trace the workload takes <= 2x the store-only
wall time (the whole process's time is printed beside: at exit the writer
writes what it had not caught up with); <= 12 bytes per event; report replays >= 20M events/s
(wall time, every view);
folding keeps the workload <= 1.3x the unbounded store's wall time, and
folding with a trace <= 2x. The
longest an allocation waited for a fold (root.fold_wait_max_ns: a thread
finding neither a free chunk nor budget) is printed, worst and median.
Allocation threads never wait for the writer (it only reads published
records), so the trace adds no allocation stall; its cost is the writer's
CPU time competing on a 2-core machine, shown as process CPU.
USAGE
}

reps=5
ops=4000000
stacks=none
fold_budget=16M
report_only=
configs=store,trace,fold,both
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --reps) reps=$2; shift 2 ;;
    --ops) ops=$2; shift 2 ;;
    --stacks) stacks=$2; shift 2 ;;
    --fold-budget) fold_budget=$2; shift 2 ;;
    --report-only) report_only=$2; shift 2 ;;
    --configs) configs=store,$2; shift 2 ;;
    *) echo "bench-history: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMSCOPE_BUILD_DIR:-$top/build}
"$top/scripts/build.sh" >/dev/null
workload=$build/bin/bench_alloc
library=$build/lib/libmemscope.so
memscope=$build/bin/memscope
for f in "$workload" "$library" "$memscope"; do
  [ -e "$f" ] || { echo "bench-history: $f was not built" >&2; exit 1; }
done
scratch=$(mktemp -d "${TMPDIR:-/tmp}/memscope-bench-history.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
results=$scratch/results
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
status=0
# On $trace: its bytes per event, then the report views timed (sets status=1 on a miss).
trace_figures() {
  info=$("$memscope" report "$trace" --info)
  events=$(sed -n 's/^events \([0-9]*\),.*/\1/p' <<<"$info")
  bytes=$(stat -c %s "$trace")
  bpe=$(awk -v b="$bytes" -v e="$events" 'BEGIN {printf "%.2f", b / e}')
  verdict=PASS
  awk -v r="$bpe" 'BEGIN {exit !(r <= 12)}' || { verdict=MISS; status=1; }
  printf 'trace size: %s bytes for %s events: %s bytes/event (target <= 12) %s\n' "$bytes" "$events" "$bpe" "$verdict"

  # report VIEW...: one timed run of `memscope report TRACE VIEW...`; appends "view wall_ns cpu_ms" to rtimes.
  report() {
    local view=${1:-default} start end cpu
    start=$(date +%s%N)
    cpu=$(/usr/bin/time -f "cpu %U %S" "$memscope" report "$trace" "$@" 2>&1 >/dev/null | grep '^cpu ' |
      awk '{printf "%d", ($2 + $3) * 1000}')
    end=$(date +%s%N)
    echo "$view $(( end - start )) $cpu" >>"$rtimes"
  }
  rtimes=$scratch/rtimes
  : >"$rtimes"
  for _ in $(seq "$reps"); do
    report
    report --summary
    report --at-peak
    report --timeline
  done
  printf 'memscope report on %s events (%s runs of each view, interleaved; medians):\n' "$events" "$reps"
  for view in default --summary --at-peak --timeline; do
    ns=$(awk -v v="$view" '$1 == v {print $2}' "$rtimes" | median)
    cpu=$(awk -v v="$view" '$1 == v {print $3}' "$rtimes" | median)
    rate=$(awk -v e="$events" -v n="$ns" 'BEGIN {printf "%.1f", e / (n / 1e9) / 1e6}')
    crate=$(awk -v e="$events" -v c="$cpu" 'BEGIN {printf "%.1f", (c > 0) ? e / (c / 1e3) / 1e6 : 0}')
    verdict=PASS
    awk -v r="$rate" 'BEGIN {exit !(r >= 20)}' || { verdict=MISS; status=1; }
    printf '  %-10s %7.1f ms wall: %5sM events/s (target >= 20M) %s; CPU %s ms: %sM events/s\n' "$view" \
      "$(awk -v n="$ns" 'BEGIN {print n / 1e6}')" "$rate" "$verdict" "$cpu" "$crate"
  done
}

if [ -n "$report_only" ]; then
  trace=$report_only
  trace_figures
  exit $status
fi
: >"$results"

# run CONFIG THREADS: one run; appends "config threads events wall_ns cpu_ns process_ms proc_cpu_ms fold_wait_ns
# bg_cpu_ns folded" to results.
run() {
  local config=$1 threads=$2 out start end
  local -a env=(LD_PRELOAD="$library" MEMSCOPE_BUDGET=4G MEMSCOPE_STACK_METHOD="$stacks")
  if [ "$config" = trace ]; then env+=(MEMSCOPE_TRACE="$scratch/t$threads.trace"); fi
  if [ "$config" = fold ]; then env+=(MEMSCOPE_BUDGET="$fold_budget"); fi
  if [ "$config" = both ]; then env+=(MEMSCOPE_BUDGET="$fold_budget" MEMSCOPE_TRACE="$scratch/b$threads.trace"); fi
  start=$(date +%s%N)
  out=$(/usr/bin/time -f "cpu %U %S" env "${env[@]}" "$workload" mixed "$threads" "$ops" 2>&1)
  end=$(date +%s%N)
  local line cpu
  line=$(grep '^bench:' <<<"$out")
  cpu=$(grep '^cpu ' <<<"$out" | awk '{printf "%d", ($2 + $3) * 1000}')
  awk -v c="$config" -v t="$threads" -v p=$(( (end - start) / 1000000 )) -v pc="$cpu" '{
      for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      print c, t, v["events"], v["wall_ns"], v["cpu_ns"], p, pc, v["fold_wait_ns"] + 0, v["bg_cpu_ns"] + 0, v["folded"] + 0
    }' <<<"$line" >>"$results"
}

has() { [[ ",$configs," == *",$1,"* ]]; }
for _ in $(seq "$reps"); do
  for threads in 1 2; do
    for config in store trace fold both; do
      if has "$config"; then run "$config" "$threads"; fi
    done
  done
done

field() { awk -v c="$1" -v t="$2" -v f="$3" '$1 == c && $2 == t {print $f}' "$results" | median; }

printf 'bench-history: %s runs each, %s calls per thread, stacks %s\n' "$reps" "$ops" "$stacks"
printf '%-8s %-7s %12s %10s %12s %14s\n' config threads events "wall ms" "process ms" "process cpu ms"
for threads in 1 2; do
  for config in store trace fold both; do
    has "$config" || continue
    printf '%-8s %-7s %12.0f %10.1f %12.0f %14.0f\n' "$config" "$threads" "$(field $config $threads 3)" \
      "$(awk -v x="$(field $config $threads 4)" 'BEGIN {print x / 1e6}')" "$(field $config $threads 6)" \
      "$(field $config $threads 7)"
  done
  if has trace; then
  ratio=$(awk -v a="$(field trace $threads 4)" -v b="$(field store $threads 4)" 'BEGIN {printf "%.2f", a / b}')
  verdict=PASS
  awk -v r="$ratio" 'BEGIN {exit !(r <= 2.0)}' || { verdict=MISS; status=1; }
  printf '  %s thread(s): trace / store wall time %sx (target <= 2x) %s\n' "$threads" "$ratio" "$verdict"
  pratio=$(awk -v a="$(field trace $threads 6)" -v b="$(field store $threads 6)" 'BEGIN {printf "%.2f", a / b}')
  printf '  %s thread(s): trace / store whole-process time %sx (includes the writer catching up at exit)\n' \
    "$threads" "$pratio"
  fi
  if has fold; then
  fratio=$(awk -v a="$(field fold $threads 4)" -v b="$(field store $threads 4)" 'BEGIN {printf "%.2f", a / b}')
  verdict=PASS
  awk -v r="$fratio" 'BEGIN {exit !(r <= 1.3)}' || { verdict=MISS; status=1; }
  printf '  %s thread(s): fold (budget %s) / store wall time %sx (target <= 1.3x) %s\n' "$threads" "$fold_budget" \
    "$fratio" "$verdict"
  printf '  %s thread(s): the folder'"'"'s CPU time per folded event %.1f ns; the workers'"'"' CPU per event: store %.1f ns, fold %.1f ns\n' \
    "$threads" "$(awk -v c="$(field fold $threads 9)" -v n="$(field fold $threads 10)" 'BEGIN {print n ? c / n : 0}')" \
    "$(awk -v c="$(field store $threads 5)" -v n="$(field store $threads 3)" 'BEGIN {print c / n}')" \
    "$(awk -v c="$(field fold $threads 5)" -v n="$(field fold $threads 3)" 'BEGIN {print c / n}')"
  fi
  if has both; then
  bratio=$(awk -v a="$(field both $threads 4)" -v b="$(field store $threads 4)" 'BEGIN {printf "%.2f", a / b}')
  verdict=PASS
  awk -v r="$bratio" 'BEGIN {exit !(r <= 2.0)}' || { verdict=MISS; status=1; }
  printf '  %s thread(s): fold + trace / store wall time %sx (target <= 2x) %s\n' "$threads" "$bratio" "$verdict"
  fi
  for config in fold both; do
    has "$config" || continue
    worst=$(awk -v c="$config" -v t="$threads" '$1 == c && $2 == t && $8 > m {m = $8} END {printf "%.1f", m / 1e6}' \
      "$results")
    printf '  %s thread(s), %s: longest allocation stall waiting for a fold: worst %s ms, median %.1f ms\n' \
      "$threads" "$config" "$worst" "$(awk -v x="$(field $config $threads 8)" 'BEGIN {print x / 1e6}')"
  done
done

if has trace; then
  trace=$scratch/t2.trace
  trace_figures
fi
exit $status
