#!/usr/bin/env python3
"""memscope GDB end-to-end tests of memscope-save: the store of a live
process and of a gcore core written as trace files, which `memscope report`
reads back to the snapshots GDB shows (time_curve fixture), with the
process's mappings, so the report names frames as GDB does (stack_sites).

Usage: test_save.py --plugin gdb/memscope.py --library LIB --engine ENGINE
                    --curve TIME_CURVE --sites STACK_SITES --memscope MEMSCOPE CASE
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
        self.sites = args.sites
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


def named_frames(doc):
    """{stack id: [(function, source base name, line)]} of the frames in the fixture and its library."""
    out = {}
    for sid, stack in doc["stacks"].items():
        out[sid] = [(f.get("function"), os.path.basename(f.get("file") or ""), f.get("line"))
                    for f in stack["frames"]
                    if os.path.basename(f.get("module") or "").startswith(("stack_sites", "libstack_lib"))]
    return out


def check_sites(paths, trace, gdb_doc, where):
    """The report of the saved trace names every frame of the program and its library as GDB does."""
    want = named_frames(gdb_doc)
    got = named_frames(report(paths, trace, []))
    check(sum(len(v) for v in want.values()) >= 12, "%s: GDB named too few frames: %s" % (where, want))
    check_equal(got, want, "%s: frames named by the report of the saved trace vs GDB's" % where)
    functions = {f for frames in got.values() for f, _, _ in frames}
    for name in ("site_leaf", "site_middle", "site_recurse", "stack_lib_make", "site_thread_alloc", "main"):
        check(name in functions, "%s: no frame names %s: %s" % (where, name, sorted(functions)))


def case_sites(paths):
    with gdbtest.TempDir() as tmp:
        live_trace, core = os.path.join(tmp, "live.trace"), os.path.join(tmp, "sites.core")
        steps = ["capture save memscope-save " + live_trace, "capture j memscope-snapshot --json -"]
        live = run_gdb(paths, prelude(paths) + steps + ["capture gcore gcore " + core], program=paths.sites,
                       env=env(paths))
        live.no_traceback()
        check_sites(paths, live_trace, json.loads(live.output("j")), "live")
        if not os.path.exists(core):
            raise gdbtest.Skip("gcore wrote no core")
        core_trace = os.path.join(tmp, "core.trace")
        dead = run_gdb(paths, ["capture save memscope-save " + core_trace, "capture j memscope-snapshot --json -"],
                       program=paths.sites, core=core, env=env(paths))
        dead.no_traceback()
        check_sites(paths, core_trace, json.loads(dead.output("j")), "core")


CASES = {"help": case_help, "live-and-core": case_live_and_core, "sites": case_sites}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("plugin", "library", "engine", "curve", "sites", "memscope"):
        parser.add_argument("--" + name, required=True)
    return gdbtest.main(CASES, parser, Paths)


if __name__ == "__main__":
    sys.exit(main())
