#!/usr/bin/env python3
"""memscope GDB end-to-end tests of memscope-save: the store of a live
process and of a gcore core written as trace files, which `memscope report`
reads back to the snapshots GDB shows (time_curve fixture).

Usage: test_save.py --plugin gdb/memscope.py --library LIB --engine ENGINE
                    --curve TIME_CURVE --memscope MEMSCOPE CASE
"""

import argparse
import json
import os
import subprocess
import sys

import gdbtest
from gdbtest import check, check_equal, run_gdb

POINTS = (("end", [], []), ("peak", ["--at-peak"], ["--at-peak"]),
          ("grown", ["--at-mark", "t-grown"], ["--at-mark", "t-grown"]),
          ("shrunk", ["--at-mark", "t-shrunk"], ["--at-mark", "t-shrunk"]))


class Paths:
    def __init__(self, args):
        self.plugin = args.plugin
        self.library = args.library
        self.engine = args.engine
        self.curve = args.curve
        self.memscope = args.memscope


def prelude(paths):
    return ["set startup-with-shell off", "set environment LD_PRELOAD=" + paths.library,
            "break fixture_checkpoint", "run"]


def env(paths):
    return {"MEMSCOPE_ENGINE_LIBRARY": paths.engine}


def essentials(doc):
    """What must agree exactly: the summary figures, threads and every live block (address, size, thread, stack)."""
    summary = dict(doc["summary"])
    blocks = sorted((b["address"], b["size"], b["thread"], b.get("stack")) for b in doc["live_blocks"])
    threads = [(t["thread"], t.get("current_memory"), t.get("peak_memory")) for t in doc["threads"]]
    return summary, blocks, threads


def report(paths, trace, args):
    proc = subprocess.run([paths.memscope, "report", trace, "--json", "-"] + args, capture_output=True, text=True,
                          timeout=120)
    check(proc.returncode == 0, "memscope report %s %s failed: %s" % (trace, " ".join(args), proc.stderr))
    check(proc.stderr == "", "memscope report of a saved trace warned: %s" % proc.stderr)
    return json.loads(proc.stdout)


def captures(trace):
    out = ["capture save memscope-save " + trace]
    for name, gdb_args, _ in POINTS:
        out.append("capture j-%s memscope-snapshot %s --json -" % (name, " ".join(gdb_args)))
    return out


def compare(paths, result, trace, where):
    result.no_traceback()
    check("wrote" in result.output("save"), "memscope-save said: %r" % result.output("save"))
    for name, _, report_args in POINTS:
        want = essentials(json.loads(result.output("j-" + name)))
        got = essentials(report(paths, trace, report_args))
        check(want[1] and want[0]["total_allocations"] > 0, "%s: GDB's snapshot at %s is empty" % (where, name))
        check_equal(got, want, "%s: report of the saved trace vs GDB's snapshot at %s" % (where, name))


def case_help(paths):
    result = run_gdb(paths, ["capture help help memscope-save", "capture usage memscope-save",
                             "capture prefix help memscope"])
    result.no_traceback()
    check("Usage: memscope-save FILE" in result.output("help"), result.output("help"))
    check("memscope-save" in result.output("prefix"), "help memscope lacks memscope-save")
    check("give the trace file" in result.error("usage"), result.error("usage"))


def case_live_and_core(paths):
    with gdbtest.TempDir() as tmp:
        live_trace = os.path.join(tmp, "live.trace")
        core = os.path.join(tmp, "curve.core")
        live = run_gdb(paths, prelude(paths) + captures(live_trace) + ["capture gcore gcore " + core,
                       "capture bad memscope-save /nonexistent-dir/x.trace"],
                       program=paths.curve, env=env(paths))
        compare(paths, live, live_trace, "live")
        check("cannot write /nonexistent-dir/x.trace" in live.error("bad"), live.error("bad"))
        if not os.path.exists(core):
            raise gdbtest.Skip("gcore wrote no core")
        core_trace = os.path.join(tmp, "core.trace")
        dead = run_gdb(paths, captures(core_trace), program=paths.curve, core=core, env=env(paths))
        compare(paths, dead, core_trace, "core")


CASES = {"help": case_help, "live-and-core": case_live_and_core}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("plugin", "library", "engine", "curve", "memscope"):
        parser.add_argument("--" + name, required=True)
    return gdbtest.main(CASES, parser, Paths)


if __name__ == "__main__":
    sys.exit(main())
