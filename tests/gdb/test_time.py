#!/usr/bin/env python3
"""memscope GDB end-to-end tests of time: breaking on peaks, time travel,
marks, diffs and timelines, on the time_curve fixture (tests/fixtures),
live and on a gcore core.

Usage: test_time.py --plugin gdb/memscope.py --library LIB --engine ENGINE
                    --curve TIME_CURVE CASE

time_curve.c documents its heap; the fixture's block arrays are read
through GDB, so every check is exact (addresses and sizes of the blocks).
"""

import argparse
import json
import os
import re
import sys

import gdbtest
from gdbtest import check, check_equal, run_gdb

MIB = 1024 * 1024
P1_MAIN, P1_WORKER, P3_MAIN, P3_WORKER, AFTER_SIZE = 8, 4, 12, 4, 777777
TIME_COMMANDS = ("memscope-break-peak", "memscope-mark", "memscope-diff", "memscope-timeline")


class Paths(gdbtest.Paths):
    def __init__(self, args):  # pylint: disable=super-init-not-called
        self.plugin = args.plugin
        self.library = args.library
        self.engine = args.engine
        self.curve = args.curve


def prelude(paths, stop="fixture_checkpoint"):
    return ["set startup-with-shell off", "set environment LD_PRELOAD=" + paths.library, "break " + stop, "run"]


def env(paths):
    return {"MEMSCOPE_ENGINE_LIBRARY": paths.engine}


def fixture_captures():
    """The fixture's blocks (addresses), read by GDB."""
    out = []
    for name, n in (("p1_main", P1_MAIN), ("p1_worker", P1_WORKER), ("p3_main", P3_MAIN), ("p3_worker", P3_WORKER)):
        for i in range(n):
            out.append("capture-eval %s-%d (unsigned long)fixture_%s[%d]" % (name, i, name, i))
    return out


def fixture_blocks(result):
    """{name: [(address, size), ...]} as time_curve.c makes them."""
    sizes = {"p1_main": lambda i: MIB + 16 * i, "p1_worker": lambda i: MIB // 2 + 16 * i,
             "p3_main": lambda i: MIB + 32 * i, "p3_worker": lambda i: MIB + 48 * i}
    counts = {"p1_main": P1_MAIN, "p1_worker": P1_WORKER, "p3_main": P3_MAIN, "p3_worker": P3_WORKER}
    return {name: [(result.output("%s-%d" % (name, i)), sizes[name](i)) for i in range(counts[name])]
            for name in counts}


def blocks_of(doc):
    """{address: size} of a snapshot JSON document (memscope-snapshot/1)."""
    return {int(b["address"], 16): b["size"] for b in doc["live_blocks"]}


def diff_side(doc, side):
    return {int(b["address"], 16): b["size"] for b in doc[side]["block_list"]}


def as_map(pairs):
    return dict(pairs)


# ------------------------------------------------------------------- cases

def case_help(paths):
    result = run_gdb(paths, ["capture help-memscope help memscope"]
                     + ["capture help-%s help %s" % (c, c) for c in TIME_COMMANDS]
                     + ["capture help-snapshot help memscope-snapshot",
                        "capture complete-break complete memscope-break-peak --st",
                        "capture complete-diff complete memscope-diff a b --group-by th",
                        "capture complete-snapshot complete memscope-snapshot --at-"])
    result.no_traceback()
    listing = result.output("help-memscope")
    for command in TIME_COMMANDS:
        check(re.search(r"^\s+%s\s+--\s+\S" % re.escape(command), listing, re.M) is not None,
              "help memscope does not list %s:\n%s" % (command, listing))
        text = result.output("help-" + command)
        check("Usage: " + command in text and "Example: " + command in text,
              "help %s lacks its usage or example:\n%s" % (command, text))
        check(text.splitlines()[0].endswith("."), "help %s: summary line is not a sentence" % command)
    check_equal(result.output("complete-break").split(), ["memscope-break-peak", "--step"], "completion of --st")
    check_equal(result.output("complete-diff").split(), ["memscope-diff", "a", "b", "--group-by", "thread"],
                "completion of --group-by th")
    check_equal(sorted(result.output("complete-snapshot").splitlines()),
                ["memscope-snapshot --at-event", "memscope-snapshot --at-mark", "memscope-snapshot --at-peak"],
                "completion of --at-")
    snapshot = result.output("help-snapshot")
    for option in ("--at-peak", "--at-mark NAME", "--at-event N", "TIME"):
        check(option in snapshot, "help memscope-snapshot does not document %s" % option)


STOP_LINE = re.compile(r"memscope: the live heap reached a new high: .*?\((\d+)\) live in (\d+) blocks")


def case_break(paths):
    """--step 4M from an empty heap: stops in phase 1 (twice) and phase 3 (twice),
    each at least a step above the last, then the checkpoint; never in phase 2."""
    commands = ["set startup-with-shell off", "set environment LD_PRELOAD=" + paths.library,
                "break main", "run",
                "capture bad-size memscope-break-peak --step 12Q",
                "capture bad-zero memscope-break-peak --step 0",
                "capture bad-arg memscope-break-peak sideways",
                "capture arm memscope-break-peak --step 4M --top 3",
                "capture info info breakpoints",
                "capture-eval off-threshold (long)&((struct memscope_store_root *)0)->peak_trap_threshold",
                "capture-eval off-step (long)&((struct memscope_store_root *)0)->peak_trap_step",
                "capture-eval off-live (long)&((struct memscope_store_root *)0)->peak_trap_live",
                "capture-eval off-shift (long)&((struct memscope_store_root *)0)->peak_trap_shift",
                "capture-eval off-gen (long)&((struct memscope_store_root *)0)->peak_trap_generation",
                "capture-eval off-hits (long)&((struct memscope_store_root *)0)->peak_trap_hits",
                "break fixture_checkpoint"]
    for i in range(5):  # 4 peak stops, then the checkpoint (a fifth peak stop would show as a wrong phase)
        commands += ["capture stop-%d continue" % i, "capture-eval phase-%d fixture_phase" % i,
                     "capture-eval where-%d $pc == (long)fixture_checkpoint" % i]
    commands += ["capture delete memscope-break-peak --delete", "capture info-after info breakpoints",
                 "capture-eval armed ((struct memscope_store_root *)&memscope_store_root)->peak_trap_threshold",
                 "capture delete-again memscope-break-peak --delete"]
    result = run_gdb(paths, commands, program=paths.curve, env=env(paths))
    result.no_traceback()
    check_equal(result.error("bad-size"), "memscope-break-peak: --step wants a size such as 4096, 64K, 10M or 2G, "
                "not '12Q'.", "error of a bad size")
    check_equal(result.error("bad-zero"), "memscope-break-peak: --step wants a size above 0.", "error of step 0")
    check_equal(result.error("bad-arg"), "memscope-break-peak: unexpected argument 'sideways' "
                "(see 'help memscope-break-peak').", "error of a stray argument")
    check("first stop when the live heap reaches 4.0 MiB" in result.output("arm"),
          "arming did not say where it stops first:\n" + result.output("arm"))
    check(re.search(r"breakpoint\s+keep y\s+0x[0-9a-f]+ in memscope_peak_trap", result.output("info")),
          "info breakpoints does not show the peak break:\n" + result.output("info"))
    offsets = {"threshold": 160, "step": 168, "live": 176, "shift": 184, "gen": 188, "hits": 192}
    for name, offset in offsets.items():
        check_equal(result.output("off-" + name), offset, "offset of peak_trap_%s (commands_peak.py)" % name)
    phases, lives = [], []
    for i in range(5):
        if result.output("where-%d" % i):
            break
        phases.append(result.output("phase-%d" % i))
        match = STOP_LINE.search(result.output("stop-%d" % i))
        check(match is not None, "stop %d printed no summary:\n%s" % (i, result.output("stop-%d" % i)))
        lives.append(int(match.group(1)))
        check("Live blocks (largest 3 of" in result.output("stop-%d" % i), "stop %d: no largest blocks" % i)
    check_equal(phases, [1, 1, 3, 3], "phases of the peak stops (4 MiB step from an empty heap)")
    check_equal(result.output("where-4"), 1, "the fifth stop is the checkpoint")
    # Exact figures at each stop: at least a step above the last one (the
    # trap counts usable sizes, up to 64 KiB late per thread: 1 MiB slack),
    # and the first above 4 MiB.
    check(lives[0] >= 4 * MIB - MIB // 4, "first stop below the threshold: %d" % lives[0])
    for before, after in zip(lives, lives[1:]):
        check(after >= before + 4 * MIB - MIB // 4, "stops closer than the step: %s" % lives)
    check("peak break deleted" in result.output("delete"), "--delete said: " + result.output("delete"))
    check("memscope_peak_trap" not in result.output("info-after"), "the peak break is still listed")
    check_equal(result.output("armed"), 0, "peak_trap_threshold after --delete")
    check("there was no peak break" in result.output("delete-again"), "second --delete")


def case_break_min(paths):
    """--min 15M --step 100M --no-print: exactly one stop, in phase 3, silent."""
    commands = ["set startup-with-shell off", "set environment LD_PRELOAD=" + paths.library,
                "break main", "run", "capture arm memscope-break-peak --min 15M --step 100M --no-print",
                "break fixture_checkpoint"]
    for i in range(2):
        commands += ["capture stop-%d continue" % i, "capture-eval phase-%d fixture_phase" % i,
                     "capture-eval at-%d $pc == (long)fixture_checkpoint" % i,
                     "capture-eval hits-%d ((struct memscope_store_root *)&memscope_store_root)->peak_trap_hits" % i]
    commands += ["capture exit continue", "capture info info breakpoints"]
    result = run_gdb(paths, commands, program=paths.curve, env=env(paths))
    result.no_traceback()
    check_equal(result.output("at-0"), 0, "first stop is the peak break")
    check_equal(result.output("phase-0"), 3, "the only stop above 15M is in phase 3")
    check("new high" not in result.output("stop-0"), "--no-print printed:\n" + result.output("stop-0"))
    check_equal(result.output("at-1"), 1, "second stop is the checkpoint")
    check_equal(result.output("hits-1"), 1, "trap hits")
    check("the peak break ended with the process (1 stop)" in result.stdout, "no word at exit:\n" + result.describe())
    check("memscope_peak_trap" not in result.output("info"), "the peak break outlived the process")


def point_captures():
    return [
        "capture stats memscope-stats --exact",
        "capture j-start memscope-snapshot --at-mark t-start --json -",
        "capture j-grown memscope-snapshot --at-mark t-grown --json -",
        "capture j-shrunk memscope-snapshot --at mark:t-shrunk --json -",
        "capture j-peak memscope-snapshot --at-peak --json -",
        "capture j-end memscope-snapshot --json -",
        "capture d-start-grown memscope-diff t-start t-grown --json -",
        "capture d-grown-shrunk memscope-diff mark:t-grown t-shrunk --json -",
        "capture d-shrunk-end memscope-diff t-shrunk now --json -",
        "capture d-peak-end memscope-diff peak t-end --group-by thread --json -",
        "capture d-text memscope-diff t-grown t-shrunk --group-by thread --exact",
        "capture tl-json memscope-timeline --width 40 --json -",
        "capture tl-text memscope-timeline --width 40 --height 8",
        "capture e-late memscope-snapshot --at 99999",
        "capture e-early memscope-snapshot --at 0ns",
        "capture e-event memscope-snapshot --at-event 999999999",
        "capture e-mark memscope-snapshot --at-mark no-such-mark",
        "capture e-order memscope-diff t-grown t-start",
        "capture e-diff-late memscope-diff t-start 99999",
        "capture e-diff-args memscope-diff t-start",
    ]


def check_points(result, blocks):
    """The live sets and diffs the fixture knows."""
    result.no_traceback()
    docs = {n: json.loads(result.output("j-" + n)) for n in ("start", "grown", "shrunk", "peak", "end")}
    live = {n: blocks_of(d) for n, d in docs.items()}
    start = live["start"]
    p1 = as_map(blocks["p1_main"] + blocks["p1_worker"])
    p1_kept = as_map(blocks["p1_main"][:2] + blocks["p1_worker"][:2])
    p1_freed = as_map(blocks["p1_main"][2:] + blocks["p1_worker"][2:])
    p3 = as_map(blocks["p3_main"] + blocks["p3_worker"])
    p3_kept = as_map(blocks["p3_main"][:1])

    def ours(name):
        return {a: s for a, s in live[name].items() if a not in start}

    check_equal(ours("grown"), p1, "live blocks at t-grown beyond t-start")
    check_equal(ours("shrunk"), p1_kept, "live blocks at t-shrunk beyond t-start")
    check_equal(ours("peak"), {**p1_kept, **p3}, "live blocks at the peak beyond t-start")
    check_equal(ours("end"), {**p1_kept, **p3_kept}, "live blocks at the end beyond t-start")
    for name in ("grown", "shrunk", "peak", "end"):
        check(all(a in live[name] for a in start), "a block live at t-start is gone at " + name)
    start_bytes = docs["start"]["summary"]["current_memory"]
    peak_bytes = start_bytes + sum(p1_kept.values()) + sum(p3.values())
    check_equal(docs["peak"]["summary"]["current_memory"], peak_bytes, "live bytes at --at-peak")
    check_equal(docs["end"]["summary"]["peak_memory"], peak_bytes, "peak_memory at the end")
    check_equal(docs["peak"]["point"]["time_ns"], docs["end"]["summary"]["peak_time_ns"], "time of --at-peak")

    d = json.loads(result.output("d-start-grown"))
    check_equal(diff_side(d, "allocated"), p1, "diff t-start t-grown: allocated")
    check_equal(diff_side(d, "freed"), {}, "diff t-start t-grown: freed")
    check_equal(d["summary"]["net_bytes"], sum(p1.values()), "diff t-start t-grown: net bytes")
    d = json.loads(result.output("d-grown-shrunk"))
    check_equal(diff_side(d, "allocated"), {}, "diff t-grown t-shrunk: allocated")
    check_equal(diff_side(d, "freed"), p1_freed, "diff t-grown t-shrunk: freed")
    check_equal(d["freed"]["bytes"], sum(p1_freed.values()), "diff t-grown t-shrunk: freed bytes")
    check_equal(d["summary"]["deallocations_between"], len(p1_freed), "diff t-grown t-shrunk: releases")
    check_equal(d["group_by"], "label", "default grouping of memscope-diff")
    check_equal(d["freed"]["groups"], [{"name": "(unlabeled)", "blocks": len(p1_freed),
                                        "bytes": sum(p1_freed.values())}], "groups of the freed blocks")
    d = json.loads(result.output("d-shrunk-end"))
    check_equal(diff_side(d, "allocated"), p3_kept, "diff t-shrunk now: allocated")
    check_equal(diff_side(d, "freed"), {}, "diff t-shrunk now: freed")
    check_equal(d["summary"]["allocations_between"], P3_MAIN + P3_WORKER, "diff t-shrunk now: allocations")
    check_equal(d["summary"]["deallocations_between"], P3_MAIN + P3_WORKER - 1, "diff t-shrunk now: releases")
    d = json.loads(result.output("d-peak-end"))
    p3_gone = {a: s for a, s in p3.items() if a not in p3_kept}
    check_equal(diff_side(d, "freed"), p3_gone, "diff peak t-end: freed")
    groups = d["freed"]["groups"]
    check_equal([g["blocks"] for g in groups], [P3_MAIN - 1, P3_WORKER], "diff peak t-end: blocks per thread")
    check_equal(groups[0]["bytes"], sum(s for a, s in blocks["p3_main"][1:]), "diff peak t-end: main's bytes")
    text = result.output("d-text")
    check("A: mark 't-grown'" in text and "B: mark 't-shrunk'" in text, "diff text names its points:\n" + text)
    check("Live at A, freed by B: %d blocks" % len(p1_freed) in text, "diff text: freed line:\n" + text)
    check("(%d B)" % sum(s for a, s in blocks["p1_main"][2:]) in text, "diff text: main's freed bytes:\n" + text)

    tl = json.loads(result.output("tl-json"))
    check_equal(tl["peak"]["bytes"], peak_bytes, "timeline peak")
    check_equal(max(b["max_bytes"] for b in tl["buckets"]), peak_bytes, "highest timeline bucket")
    check_equal(tl["buckets"][tl["peak"]["bucket"]]["max_bytes"], peak_bytes, "the peak's bucket")
    check_equal(tl["peak"]["time_ns"], docs["peak"]["point"]["time_ns"], "timeline peak time")
    check_equal(len(tl["buckets"]), 40, "timeline --width 40 buckets")
    check_equal(tl["end_bytes"], docs["end"]["summary"]["current_memory"], "timeline end")
    marks = {m["name"]: m for m in tl["marks"]}
    for name in ("start", "grown", "shrunk"):
        check_equal(marks["t-" + name]["live_bytes"], docs[name]["summary"]["current_memory"],
                    "live bytes at mark t-" + name + " on the timeline")
    text = result.output("tl-text")
    check("P  peak %s" % "" in text and "a  mark 't-start'" in text and "e  mark 't-end'" in text,
          "timeline text lacks the peak or marks:\n" + text)
    check(len([ln for ln in text.splitlines() if " |" in ln]) == 8, "timeline --height 8 rows:\n" + text)

    first = tl["first_time_ns"]
    check(first > 0, "first event at time 0")
    check(re.fullmatch(r"time 99999\.000000 s lies after the recorded history: its last event is at "
                       r"\d+\.\d{6} s\.", result.error("e-late")), "error past the end: " + result.error("e-late"))
    check(re.fullmatch(r"time 0\.000000 s lies before the recorded history: its first event is at "
                       r"\d+\.\d{6} s\.", result.error("e-early")), "error before: " + result.error("e-early"))
    check(re.fullmatch(r"event 999999999 lies after the recorded history: it holds \d+ events\.",
                       result.error("e-event")), "error of --at-event: " + result.error("e-event"))
    check_equal(result.error("e-mark"), "the store has no mark named 'no-such-mark'.", "error of --at-mark")
    check(re.fullmatch(r"memscope-diff: A \(event \d+\) lies after B \(event \d+\): give the earlier point "
                       r"first\.", result.error("e-order")), "error of a reversed diff: " + result.error("e-order"))
    check(result.error("e-diff-late").startswith("time 99999.000000 s lies after the recorded history"),
          "error of a diff past the end: " + result.error("e-diff-late"))
    check_equal(result.error("e-diff-args"), "memscope-diff: give two points A and B (see 'help memscope-diff').",
                "error of one point")
    return docs


def case_points(paths):
    """Time travel, diffs and the timeline on the live process, then the same on a gcore core."""
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "time_curve.core")
        live = run_gdb(paths, prelude(paths) + fixture_captures() + point_captures() + ["capture gcore gcore " + core],
                       program=paths.curve, env=env(paths))
        blocks = fixture_blocks(live)
        live_docs = check_points(live, blocks)
        check(os.path.exists(core), "gcore wrote no core:\n" + live.describe())
        dead = run_gdb(paths, fixture_captures() + point_captures() + [
            "capture mark memscope-mark here", "capture break memscope-break-peak"],
            program=paths.curve, core=core, env=env(paths))
        check_equal(fixture_blocks(dead), blocks, "fixture blocks in the core")
        core_docs = check_points(dead, blocks)
        check_equal(core_docs, live_docs, "time travel snapshots of the core vs the live process")
        for name in ("d-start-grown", "d-grown-shrunk", "d-shrunk-end", "tl-json"):
            check_equal(json.loads(dead.output(name)), json.loads(live.output(name)), name + " core vs live")
        check_equal(dead.error("mark"), "memscope-mark: marks are made in a live process; in a core, use the "
                    "program's own marks (memscope-timeline lists them).", "memscope-mark on a core")
        check_equal(dead.error("break"), "memscope-break-peak: breaking on peaks needs a live process: start the "
                    "program first (a core cannot run).", "memscope-break-peak on a core")


def case_gdb_mark(paths):
    """memscope-mark at the checkpoint; after the program moved on, a diff from it
    lists exactly the block freed and the block allocated in between."""
    result = run_gdb(paths, prelude(paths) + [
        "break fixture_after",
        "capture-eval kept (unsigned long)fixture_p3_main[0]",
        "capture mark memscope-mark here",
        "capture dup memscope-mark here",
        "capture prog memscope-mark t-end",
        "capture list memscope-mark",
        "capture at-here memscope-snapshot --at-mark here --json -",
        "capture now memscope-snapshot --json -",
        "continue",
        "capture-eval after (unsigned long)fixture_after_block",
        "capture at-here-later memscope-snapshot --at-mark here --json -",
        "capture diff memscope-diff here now --json -",
        "capture diff-text memscope-diff here now",
        "capture timeline memscope-timeline --width 30",
    ], program=paths.curve, env=env(paths))
    result.no_traceback()
    check(result.output("mark").startswith("memscope: mark 'here' at "), "memscope-mark said: " + result.output("mark"))
    check_equal(result.error("dup"), "memscope-mark: there is already a GDB mark named 'here'.", "duplicate mark")
    check_equal(result.error("prog"), "memscope-mark: the program already recorded a mark named 't-end'.",
                "mark named like the program's")
    check(re.search(r"^\s+here\s+\S+ \S+\s+event \d+$", result.output("list"), re.M), "mark list:\n" + result.output("list"))
    at_here = json.loads(result.output("at-here"))
    now = json.loads(result.output("now"))
    check_equal(blocks_of(at_here), blocks_of(now), "snapshot at the GDB mark vs now, at the same stop")
    check_equal(blocks_of(json.loads(result.output("at-here-later"))), blocks_of(now),
                "snapshot at the GDB mark after the program moved on")
    diff = json.loads(result.output("diff"))
    check_equal(diff_side(diff, "allocated"), {result.output("after"): AFTER_SIZE}, "diff here now: allocated")
    check_equal(diff_side(diff, "freed"), {result.output("kept"): MIB}, "diff here now: freed")
    check(re.search(r"^  A: GDB mark 'here' = time [\d.]+ s \(event \d+\)$", result.output("diff-text"), re.M),
          "the diff does not name the GDB mark:\n" + result.output("diff-text"))
    check(re.search(r"^  f  mark 'here' \(kept by the debugger\) at [\d.]+ s, event \d+, [\d.]+ MiB live$",
                    result.output("timeline"), re.M) is not None,
          "the timeline does not show the GDB mark after the program's five:\n" + result.output("timeline"))


CASES = {
    "help": case_help,
    "break": case_break,
    "break-min": case_break_min,
    "points": case_points,
    "gdb-mark": case_gdb_mark,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("plugin", "library", "engine", "curve"):
        parser.add_argument("--" + name, required=True)
    return gdbtest.main(CASES, parser, Paths)


if __name__ == "__main__":
    sys.exit(main())
