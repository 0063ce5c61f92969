"""What the gdb_heap fixture knows about its heap, and the checks of a
snapshot against it (used by test_gdb.py).

gdb_heap.c documents the heap it builds after its mark "fixture-start"; the
only events before the mark are glibc's own (the DTVs of the warm-up
threads), so summary and main-thread figures are checked as (at end) - (at
mark), the workers' figures absolutely. JSON per docs/snapshot-json.md.
"""

import json
import re

from gdbtest import check, check_equal, live_prelude, run_gdb

# What gdb_heap does after its mark (see tests/fixtures/gdb_heap.c).
OURS = {
    "total_allocations": 16, "total_deallocations": 5, "active_allocations": 11,
    "total_allocated": 30931, "total_deallocated": 11399, "current_memory": 19532,
    "unmatched_deallocations": 0, "dropped_events": 0,
}
OURS_PEAK_ABOVE_MARK = 26198
MAIN = {"allocations": 6, "deallocations": 2, "allocated_bytes": 23331, "released_bytes": 9999,
        "current_memory": 13332, "live_blocks": 3}
WORKER1 = {"allocations": 7, "deallocations": 2, "allocated_bytes": 4900, "released_bytes": 1400,
           "current_memory": 3500, "live_blocks": 5, "peak_memory": 4900}
WORKER2 = {"allocations": 3, "deallocations": 1, "allocated_bytes": 2700, "released_bytes": 0,
           "current_memory": 2700, "live_blocks": 3, "peak_memory": 2700}
LABEL = ("fixture_config", "struct fixture_config")

NO_STORE = "no memscope store found in this process: is libmemscope.so loaded?"


# ---------------------------------------------------------------- JSON access

def j_summary(doc):
    return doc["summary"]


def j_threads(doc):
    """Per-thread objects keyed by OS thread id."""
    return {t["tid"]: t for t in doc["threads"]}


def j_blocks(doc):
    """Live blocks keyed by address (int)."""
    out = {}
    for b in doc.get("live_blocks", doc.get("blocks", [])):
        addr = b["address"]
        out[int(addr, 16) if isinstance(addr, str) else addr] = b
    return out


def block_label(block):
    label = block.get("label")
    if isinstance(label, dict):
        return (label.get("name"), label.get("type"))
    return (block.get("label_name"), block.get("label_type"))


# ------------------------------------------------------------ heap checking

def heap_session(paths, extra=(), library=None, env=None, program_args=()):
    """Runs gdb_heap to its checkpoint and captures JSON (end and mark), the
    fixture's own record of its blocks and threads, and the extra commands."""
    commands = live_prelude(library or paths.library) + heap_captures() + list(extra)
    return run_gdb(paths, commands, program=paths.heap, program_args=program_args,
                   env=env if env is not None else {"MEMSCOPE_ENGINE_LIBRARY": paths.engine})


def heap_captures():
    captures = ["capture json-end memscope-snapshot --json -",
                "capture json-mark memscope-snapshot --at mark:fixture-start --json -"]
    for i in range(4):
        captures.append("capture-eval main-block-%d (unsigned long)fixture_main_blocks[%d]" % (i, i))
    for w in range(2):
        captures.append("capture-eval worker-tid-%d fixture_worker_tid[%d]" % (w, w))
        for i in range(7 if w == 0 else 3):
            captures.append("capture-eval worker-block-%d-%d (unsigned long)fixture_worker_blocks[%d][%d]"
                            % (w, i, w, i))
    captures += ["capture-eval main-tid fixture_main_tid", "capture-eval label-rc fixture_label_rc",
                 "capture-eval mark-rc fixture_mark_rc"]
    return captures


def core_captures():
    """The captures of heap_captures that make sense on a core of gdb_heap."""
    return heap_captures()


def check_heap(result):
    """Checks every figure gdb_heap knows against the captured JSON."""
    result.no_traceback()
    check_equal(result.output("label-rc"), 0, "memscope_label's result in the fixture")
    check_equal(result.output("mark-rc"), 0, "memscope_mark's result in the fixture")
    end = json.loads(result.output("json-end"))
    mark = json.loads(result.output("json-mark"))
    s_end, s_mark = j_summary(end), j_summary(mark)
    for key, ours in OURS.items():
        check_equal(s_end[key] - s_mark[key], ours, "summary %s (end - mark)" % key)
    check_equal(s_end["peak_memory"], s_mark["current_memory"] + OURS_PEAK_ABOVE_MARK, "summary peak_memory")

    threads_end, threads_mark = j_threads(end), j_threads(mark)
    main_tid = result.output("main-tid")
    for key, ours in MAIN.items():
        before = threads_mark[main_tid][key] if main_tid in threads_mark else 0
        check_equal(threads_end[main_tid][key] - before, ours, "main thread %s (end - mark)" % key)
    for w, want in ((0, WORKER1), (1, WORKER2)):
        tid = result.output("worker-tid-%d" % w)
        check(tid in threads_end, "worker %d (tid %d) missing from the threads %s" % (w + 1, tid, list(threads_end)))
        for key, value in want.items():
            check_equal(threads_end[tid][key], value, "worker %d %s" % (w + 1, key))

    blocks = j_blocks(end)
    main_thread = threads_end[main_tid]["thread"]
    x, a, c, d = (result.output("main-block-%d" % i) for i in range(4))
    check(x not in blocks, "block x (0x%x), freed by worker 2, is still listed as live" % x)
    for addr, size in ((a, 4444), (c, 3333), (d, 5555)):
        check(addr in blocks, "main's block 0x%x (%d bytes) is not listed" % (addr, size))
        check_equal(blocks[addr]["size"], size, "size of main's block 0x%x" % addr)
        check_equal(blocks[addr]["thread"], main_thread, "thread of main's block 0x%x" % addr)
    check_equal(block_label(blocks[d]), LABEL, "label of the labeled block")
    for w, (count, size, first_live) in enumerate(((7, 700, 2), (3, 900, 0))):
        tid = result.output("worker-tid-%d" % w)
        for i in range(count):
            addr = result.output("worker-block-%d-%d" % (w, i))
            if i < first_live:
                continue
            check(addr in blocks, "worker %d's block 0x%x is not listed" % (w + 1, addr))
            check_equal(blocks[addr]["size"], size, "size of worker %d's block" % (w + 1))
            check_equal(blocks[addr]["thread"], threads_end[tid]["thread"], "thread of worker %d's block" % (w + 1))
    return end


def check_text_matches_json(text, doc):
    """Every summary figure of the JSON appears in the --exact text."""
    summary = j_summary(doc)
    numbers = set(int(n) for n in re.findall(r"(?<![\w.])(\d+)(?![\w.])", text.replace(",", "")))
    for key in ("total_allocations", "total_deallocations", "active_allocations", "total_allocated",
                "total_deallocated", "current_memory", "peak_memory"):
        check(summary[key] in numbers, "summary %s = %d does not appear in the text:\n%s"
              % (key, summary[key], text))
