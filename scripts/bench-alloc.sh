#!/usr/bin/env bash
# Allocation benchmark: times one allocation-heavy workload (build/bin/bench_alloc)
# natively, under memscope (LD_PRELOAD of build/lib/libmemscope.so) and under
# heaptrack when it is installed, in one run, and compares the medians with
# memscope's performance targets.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench-alloc.sh [--reps N] [--heaptrack-reps N] [--ops N] [--pairs N] [--no-heaptrack] [--help]

Builds (scripts/build.sh, into $MEMSCOPE_BUILD_DIR or build/), then runs the workload tests/fixtures/bench_alloc.c:
  mixed 1 OPS   one thread: malloc/calloc of mixed sizes, free, realloc
  mixed 2 OPS   the same in two threads at once (each thread OPS calls)
  pair PAIRS    one thread: PAIRS x { malloc(64); free }
  deep PAIRS/5  the same 20 calls deep (stacks of 16 frames), built with and
                without frame pointers, in each stack mode
  start 500     500 threads one after another, each timing its first allocation
                (8 calls deep): what a new thread pays for memscope's per-thread
                set-up (its first chunk of store, and libunwind's per-thread cache
                with the default stack method); native, default, none and fp
  touch MIB     (natively only) first touch of as much fresh memory as memscope's
                store takes in the pair workload: this machine's page cost
natively, under memscope (LD_PRELOAD=build/lib/libmemscope.so, MEMSCOPE_BUDGET=4G)
and under heaptrack (mixed workloads only) when the heaptrack command exists.
memscope runs in its call stack modes: "memscope" is the default (auto,
depth 16: the frame-pointer walk where the chain is whole, else libunwind;
this workload keeps no frame pointers, so it unwinds, and a stack met again
at the same return address and stack pointer comes from the per-thread
stack cache without unwinding), "ms-none" records no
stacks (MEMSCOPE_STACK_METHOD=none), "ms-caller" the caller only, "ms-fp" the
frame-pointer walk alone (short stacks here). The fpb-* configurations run
the mixed workload built with -fno-omit-frame-pointer (build/bin/bench_alloc_fp)
natively, under memscope's default and under heaptrack.
Each configuration runs N times, interleaved with the others (in another order
each round), and the medians are printed. The workload times itself (clock_gettime around the work), so
start-up and exit are excluded; whole-process times are printed beside.

  --reps N            runs of each configuration (default 7)
  --heaptrack-reps N  runs under heaptrack (default 5; at most N)
  --ops N             calls per thread in the mixed workload (default 4000000)
  --pairs N           malloc/free pairs in the pair workload (default 5000000)
  --no-heaptrack      skip heaptrack

Figures: "ns/call" is the CPU time of the calling thread per malloc-family call
(malloc, calloc, realloc, free count one each), "(kernel)" the part of it in the
kernel (tick-sampled; for memscope mostly page faults of its growing store);
"wall ms" is the work's elapsed time, "process ms" the whole process's. Targets (PASS/MISS): recording
without stacks (ms-none) adds <= 15 ns per malloc/free pair on one thread;
with two threads each thread pays <= 1.3x its one-thread cost per call;
the whole mixed workload (1 + 2 threads, wall) takes <= 1.5x native with
ms-none; caller-only stacks cost <= 1.2x no stacks (CPU time per call of
the one-thread mixed workload, where page-fault noise is least); heaptrack takes >= 5x memscope's (default: auto, depth
16) wall time on the mixed workload, built with and without frame pointers.

memscope's store grows by 32 bytes per event, so part of its cost is the
kernel providing fresh pages; on a virtual machine that cost varies widely from
run to run (the host may have to fault its own memory in). The "touch" line
shows what fresh memory cost during the run, and the pair result is split into
its kernel and user-space parts.
USAGE
}

reps=7
ht_reps=5
ops=4000000
pairs=5000000
use_heaptrack=1
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --reps) reps=$2; shift 2 ;;
    --heaptrack-reps) ht_reps=$2; shift 2 ;;
    --ops) ops=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --no-heaptrack) use_heaptrack=0; shift ;;
    *) echo "bench-alloc: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMSCOPE_BUILD_DIR:-$top/build}
"$top/scripts/build.sh" >/dev/null
workload=$build/bin/bench_alloc
workload_fp=$build/bin/bench_alloc_fp
library=$build/lib/libmemscope.so
for f in "$workload" "$workload_fp" "$library"; do
  [ -e "$f" ] || { echo "bench-alloc: $f was not built" >&2; exit 1; }
done
if [ "$use_heaptrack" = 1 ] && ! command -v heaptrack >/dev/null 2>&1; then
  echo "bench-alloc: heaptrack is not installed; skipping it (scripts/setup.sh installs it)" >&2
  use_heaptrack=0
fi

touch_mib=$(( (pairs * 64 + (1 << 20) - 1) >> 20 ))  # two 32-byte records per pair
scratch=$(mktemp -d "${TMPDIR:-/tmp}/memscope-bench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
results=$scratch/results

# run CONFIG WORKLOAD ARGS...: runs the workload once, appends
# "config workload events wall_ns cpu_ns sys_ns process_ns" to the results.
run() {
  local config=$1 name=$2 out start end line events wall_ns cpu_ns sys_ns workload=$workload
  shift 2
  start=$(date +%s%N)
  case "$config" in fpb-*) workload=$workload_fp ;; esac
  local mode=${config#fpb-}
  case "$mode" in
    native) out=$("$workload" "$@") ;;
    memscope) out=$(env LD_PRELOAD="$library" MEMSCOPE_BUDGET=4G "$workload" "$@") ;;
    ms-none|ms-caller|ms-fp|ms-unwind)
      out=$(env LD_PRELOAD="$library" MEMSCOPE_BUDGET=4G MEMSCOPE_STACK_METHOD="${mode#ms-}" "$workload" "$@") ;;
    heaptrack) out=$(heaptrack -o "$scratch/heaptrack.$name" "$workload" "$@" 2>&1); rm -f "$scratch"/heaptrack.* ;;
  esac
  end=$(date +%s%N)
  line=$(printf '%s\n' "$out" | grep '^bench: ') || { echo "bench-alloc: $config $name printed no result:" >&2; printf '%s\n' "$out" >&2; exit 1; }
  field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
  events=$(field events); wall_ns=$(field wall_ns); cpu_ns=$(field cpu_ns); sys_ns=$(field sys_ns)
  echo "$config $name $events $wall_ns $cpu_ns $sys_ns $((end - start))" >>"$results"
}

echo "bench-alloc: load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs (other load makes wall times noisy; CPU times less so)" >&2
echo "bench-alloc: $reps runs each (heaptrack: $([ $use_heaptrack = 1 ] && echo "$ht_reps" || echo skipped)), mixed $ops calls/thread, pair $pairs pairs" >&2
configs=(native memscope ms-none ms-caller ms-fp heaptrack fpb-native fpb-memscope fpb-ms-none fpb-ms-caller
         fpb-ms-fp fpb-ms-unwind fpb-heaptrack)
for ((r = 1; r <= reps; r++)); do
  # Each round takes the configurations in another order (a stride through the
  # list, coprime with its length, that changes every round), so that none
  # always runs after the same neighbour: on this VM the cost of fresh pages
  # depends on what ran just before.
  n=${#configs[@]}
  stride=$(( (r - 1) % (n - 1) + 1 ))
  while a=$stride b=$n; while ((b)); do t=$((a % b)); a=$b; b=$t; done; ((a != 1)); do stride=$((stride % (n - 1) + 1)); done
  order=()
  for ((k = 0; k < n; k++)); do
    order+=("${configs[$(( (k * stride + (r - 1) * 7) % n ))]}")
  done
  for config in "${order[@]}"; do
    if [ "${config#fpb-}" = heaptrack ] && { [ "$use_heaptrack" = 0 ] || [ "$r" -gt "$ht_reps" ]; }; then continue; fi
    if [ "$config" = native ]; then run native touch touch "$touch_mib"; fi
    case "$config" in heaptrack|fpb-*) ;; *) run "$config" pair pair "$pairs" ;; esac
    case "$config" in heaptrack|fpb-heaptrack) ;; *) run "$config" deep deep "$((pairs / 5))" ;; esac
    run "$config" mixed1 mixed 1 "$ops"
    run "$config" mixed2 mixed 2 "$ops"
    case "$config" in native|memscope|ms-none|ms-fp) run "$config" start start 500 ;; esac
  done
  echo "bench-alloc: round $r/$reps done" >&2
done

python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    config, name, events, wall, cpu, sys_, proc = line.split()
    rows.setdefault((config, name), []).append((int(events), int(wall), int(cpu), int(sys_), int(proc)))

def med(config, name, field):
    """Median over runs of: 'wall' ns, 'proc' ns, 'cpu_per_call' ns, 'sys_per_call' ns."""
    runs = rows.get((config, name))
    if not runs:
        return None
    values = []
    for events, wall, cpu, sys_, proc in runs:
        values.append({"wall": wall, "proc": proc, "cpu_per_call": cpu / events,
                       "sys_per_call": sys_ / events}[field])
    return statistics.median(values)

configs = [c for c in ("native", "memscope", "ms-none", "ms-caller", "ms-fp", "heaptrack", "fpb-native",
                       "fpb-memscope", "fpb-ms-none", "fpb-ms-caller", "fpb-ms-fp", "fpb-ms-unwind", "fpb-heaptrack")
           if (c, "mixed1") in rows or (c, "deep") in rows]
print(f"{'workload':<10}{'config':<11}{'runs':>5}{'ns/call':>10}{'(kernel)':>10}{'wall ms':>10}{'process ms':>12}")
for name in ("touch", "pair", "deep", "mixed1", "mixed2", "start"):
    for c in configs:
        if (c, name) not in rows:
            continue
        print(f"{name:<10}{c:<11}{len(rows[(c, name)]):>5}{med(c, name, 'cpu_per_call'):>10.1f}"
              f"{med(c, name, 'sys_per_call'):>10.1f}"
              f"{med(c, name, 'wall') / 1e6:>10.1f}{med(c, name, 'proc') / 1e6:>12.1f}")
print()

def verdict(ok):
    return "PASS" if ok else "MISS"

# A pair is two calls; the pair workload's ns/call is per call.
pair_added = 2 * (med("ms-none", "pair", "cpu_per_call") - med("native", "pair", "cpu_per_call"))
print(f"memscope without stacks adds {pair_added:.1f} ns per malloc(64)/free pair, one thread "
      f"(native {2 * med('native', 'pair', 'cpu_per_call'):.1f} ns)     target <= 15 ns    {verdict(pair_added <= 15)}")
pair_kernel = 2 * (med("ms-none", "pair", "sys_per_call") - med("native", "pair", "sys_per_call"))
print(f"  of which in the kernel (page faults of the growing store): {pair_kernel:.1f} ns; "
      f"in user space (the hooks): {pair_added - pair_kernel:.1f} ns     user space alone    "
      f"{verdict(pair_added - pair_kernel <= 15)}")
print(f"  (first touch of fresh memory on this machine during the run: {2 * med('native', 'touch', 'cpu_per_call'):.1f} ns "
      f"per 64 bytes, median; runs ranged {2 * min(r[2] / r[0] for r in rows[('native', 'touch')]):.1f}-"
      f"{2 * max(r[2] / r[0] for r in rows[('native', 'touch')]):.1f} ns)")
for c, what in (("ms-none", "no stacks"), ("ms-caller", "caller-only stacks"), ("ms-fp", "fp stacks, depth 16"),
                ("memscope", "default stacks (auto: unwinds here, depth 16)")):
    added = med(c, "mixed1", "cpu_per_call") - med("native", "mixed1", "cpu_per_call")
    print(f"memscope with {what} adds {added:.1f} ns per call on the mixed workload, one thread "
          f"(native {med('native', 'mixed1', 'cpu_per_call'):.1f} ns/call)")
def deep_added(c, base):
    return 2 * (med(c, "deep", "cpu_per_call") - med(base, "deep", "cpu_per_call"))
print("capturing a stack of 16 frames (deep workload), ns per malloc/free pair over no stacks:")
print(f"  built with frame pointers: caller {deep_added('fpb-ms-caller', 'fpb-ms-none'):.1f}, "
      f"fp {deep_added('fpb-ms-fp', 'fpb-ms-none'):.1f}, default auto {deep_added('fpb-memscope', 'fpb-ms-none'):.1f}, "
      f"unwind {deep_added('fpb-ms-unwind', 'fpb-ms-none'):.1f}")
print(f"  built without: caller {deep_added('ms-caller', 'ms-none'):.1f}, fp (short stacks) "
      f"{deep_added('ms-fp', 'ms-none'):.1f}, default auto (unwinds) {deep_added('memscope', 'ms-none'):.1f}")
ratio_2t = med("ms-none", "mixed2", "cpu_per_call") / med("ms-none", "mixed1", "cpu_per_call")
native_2t = med("native", "mixed2", "cpu_per_call") / med("native", "mixed1", "cpu_per_call")
print(f"two threads: each pays {ratio_2t:.2f}x its one-thread cost per call under memscope without stacks "
      f"(native: {native_2t:.2f}x)     target <= 1.3x    {verdict(ratio_2t <= 1.3)}")
whole = lambda c, f: med(c, "mixed1", f) + med(c, "mixed2", f)
ratio_native = whole("ms-none", "wall") / whole("native", "wall")
cpu_whole = lambda c: sum(med(c, n, "cpu_per_call") * rows[(c, n)][0][0] for n in ("mixed1", "mixed2"))
print(f"whole mixed workload: memscope without stacks takes {ratio_native:.2f}x native (wall; CPU time: "
      f"{cpu_whole('ms-none') / cpu_whole('native'):.2f}x; whole process: "
      f"{whole('ms-none', 'proc') / whole('native', 'proc'):.2f}x)     target <= 1.5x    {verdict(ratio_native <= 1.5)}")
ratio_caller = med("ms-caller", "mixed1", "cpu_per_call") / med("ms-none", "mixed1", "cpu_per_call")
print(f"caller-only stacks cost {ratio_caller:.2f}x no stacks (CPU time per call, mixed workload, one thread; "
      f"1 + 2 threads: {cpu_whole('ms-caller') / cpu_whole('ms-none'):.2f}x, wall "
      f"{whole('ms-caller', 'wall') / whole('ms-none', 'wall'):.2f}x, both noisier)     target <= 1.2x    "
      f"{verdict(ratio_caller <= 1.2)}")
print(f"default stacks (auto: unwinds here, depth 16) cost {cpu_whole('memscope') / cpu_whole('ms-none'):.2f}x no stacks, "
      f"{cpu_whole('memscope') / cpu_whole('native'):.2f}x native (CPU time of the whole mixed workload)")
print(f"default stacks cost {cpu_whole('fpb-memscope') / cpu_whole('fpb-native'):.2f}x native on the workload "
      f"built with frame pointers (auto walks them; CPU time of the whole mixed workload)")
print("a new thread's first allocation (8 calls deep), CPU time, mean of 500 threads: "
      + ", ".join(f"{what} {med(c, 'start', 'cpu_per_call') / 1000:.1f} us"
                  for c, what in (("native", "native"), ("ms-none", "no stacks"), ("ms-fp", "fp"),
                                  ("memscope", "default (unwinds here)"))))
if "heaptrack" in configs:
    for prefix, what in (("fpb-", "built with frame pointers: auto walks them"),
                         ("", "built without: auto unwinds with libunwind")):
        ratio_ht = whole(prefix + "heaptrack", "wall") / whole(prefix + "memscope", "wall")
        print(f"heaptrack takes {ratio_ht:.1f}x memscope's time (default stacks, depth 16) on the mixed workload "
              f"{what} (wall; whole process, heaptrack's exit included: "
              f"{whole(prefix + 'heaptrack', 'proc') / whole(prefix + 'memscope', 'proc'):.1f}x)     "
              f"target >= 5x    {verdict(ratio_ht >= 5)}")
else:
    print("heaptrack: not measured")
PY
