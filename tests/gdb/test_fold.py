#!/usr/bin/env python3
"""memscope GDB end-to-end tests of a folded store (bounded history): the
fold_marks fixture (tests/fixtures) runs with MEMSCOPE_BUDGET=1M, so its
first marks and blocks are folded into the checkpoint while its last ones
are retained. Live, and on a gcore core.

Usage: test_fold.py --plugin gdb/memscope.py --library LIB --engine ENGINE
                    --fold FOLD_MARKS --memscope MEMSCOPE CASE

Cases:
  marks   a folded mark is known (the checkpoint keeps it): --at-mark and
          memscope-diff refuse it with the horizon sentence, the timeline
          lists it (folded), memscope-mark will not reuse its name
  save    memscope-save of the folded store writes its checkpoint: `memscope
          report` of the file gives GDB's own JSON (snapshot now and at a
          retained mark, timeline, diff), refuses a folded mark with GDB's
          sentence, and lists the folded marks
"""

import argparse
import json
import os
import re
import subprocess
import sys

import gdbtest
from gdbtest import check, check_equal, run_gdb

BUDGET = "1M"
FOLDED = ("f-start", "f-early", "f-mid")  # made before many times the budget's worth of events
HORIZON = re.compile(r"^mark '(f-[a-z]+)' \(at ([\d.]+) s, event (\d+)\) lies before the checkpoint horizon at "
                     r"([\d.]+) s: its events were folded into the checkpoint to keep the store within its budget\.$")


class Paths(gdbtest.Paths):
    def __init__(self, args):  # pylint: disable=super-init-not-called
        self.plugin = args.plugin
        self.library = args.library
        self.engine = args.engine
        self.fold = args.fold
        self.memscope = args.memscope


def prelude(paths):
    return ["set startup-with-shell off", "set environment LD_PRELOAD=" + paths.library,
            "set environment MEMSCOPE_BUDGET=" + BUDGET, "break fixture_checkpoint", "run"]


def env(paths):
    return {"MEMSCOPE_ENGINE_LIBRARY": paths.engine}


def mark_captures():
    out = []
    for name in FOLDED:
        out.append("capture at-%s memscope-snapshot --at-mark %s" % (name, name))
    out += ["capture diff-early memscope-diff f-early now",
            "capture at-late memscope-snapshot --at-mark f-late --json -",
            "capture at-nope memscope-snapshot --at-mark nope",
            "capture tl-json memscope-timeline --json -",
            "capture tl-text memscope-timeline --width 40"]
    return out


def check_marks(result, where):
    """The folded marks' sentences and the timeline; returns what must equal between live and core."""
    result.no_traceback()
    times = {}
    for name in FOLDED:
        error = result.error("at-" + name)
        found = HORIZON.match(error)
        check(found is not None and found.group(1) == name, "%s: --at-mark %s said: %r" % (where, name, error))
        times[name] = (float(found.group(2)), int(found.group(3)), float(found.group(4)))
        check(times[name][0] <= times[name][2], "%s: mark %s after the horizon" % (where, name))
    check(times["f-start"][1] < times["f-early"][1] < times["f-mid"][1], "%s: folded marks' events %r" % (where, times))
    check_equal(result.error("diff-early"), result.error("at-f-early"), "%s: memscope-diff f-early now" % where)
    late = json.loads(result.output("at-late"))
    check(late["summary"]["events"] > times["f-mid"][1], "%s: f-late at event %d" % (where, late["summary"]["events"]))
    check_equal(result.error("at-nope"), "the store has no mark named 'nope'.", "%s: an unknown mark" % where)
    timeline = json.loads(result.output("tl-json"))
    marks = [(m["name"], m.get("folded", False)) for m in timeline["marks"]]
    check_equal(marks, [("f-start", True), ("f-early", True), ("f-mid", True), ("f-late", False)],
                "%s: the timeline's marks" % where)
    for m in timeline["marks"][:3]:
        check_equal(m["events"], times[m["name"]][1], "%s: timeline event of %s" % (where, m["name"]))
    text = result.output("tl-text")
    check(re.search(r"^  <  mark 'f-early' at [\d.]+ s, event \d+, [\d.]+ \S+ live \(folded into the checkpoint: "
                    r"before the horizon\)$", text, re.M) is not None, "%s: timeline text:\n%s" % (where, text))
    check(re.search(r"^  a  mark 'f-late' at ", text, re.M) is not None, "%s: timeline text:\n%s" % (where, text))
    return times, timeline


def case_marks(paths):
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "fold.core")
        live = run_gdb(paths, prelude(paths) + mark_captures() + [
            "capture dup memscope-mark f-early", "capture gcore gcore " + core],
            program=paths.fold, env=env(paths))
        live_seen = check_marks(live, "live")
        check_equal(live.error("dup"), "memscope-mark: the program already recorded a mark named 'f-early' (before "
                    "the checkpoint horizon).", "memscope-mark with a folded mark's name")
        if not os.path.exists(core):
            raise gdbtest.Skip("gcore wrote no core")
        dead = run_gdb(paths, mark_captures(), program=paths.fold, core=core, env=env(paths))
        check_equal(check_marks(dead, "core"), live_seen, "core vs live")


def save_captures(trace):
    return ["capture save memscope-save " + trace,
            "capture j-end memscope-snapshot --json -",
            "capture j-late memscope-snapshot --at-mark f-late --json -",
            "capture at-early memscope-snapshot --at-mark f-early",
            "capture at-event memscope-snapshot --at-event 10",
            "capture tl memscope-timeline --width 60 --json -",
            "capture diff memscope-diff f-late now --json -"]


def report(paths, trace, args, ok=True):
    proc = subprocess.run([paths.memscope, "report", trace] + args, capture_output=True, text=True, timeout=120)
    if ok:
        check(proc.returncode == 0, "memscope report %s %s failed: %s" % (trace, " ".join(args), proc.stderr))
        check(proc.stderr == "", "memscope report of a saved trace warned: %s" % proc.stderr)
    else:
        check(proc.returncode == 1, "memscope report %s %s gave %d: %s"
              % (trace, " ".join(args), proc.returncode, proc.stderr))
    return proc


def unsymbolized(doc):
    """A snapshot's JSON without its symbols (frames compared by return address; the report's names
    are checked against GDB's in test_save.py's sites case)."""
    doc = dict(doc)
    doc["stacks"] = {k: [f["pc"] for f in v["frames"]] for k, v in doc.get("stacks", {}).items()}
    return doc


def sentence(text):
    """An error sentence as GDB and the CLI print it, without the prefix and the full stop."""
    text = text.strip()
    if text.startswith("memscope: "):
        text = text[len("memscope: "):]
    return text.rstrip(".")


def check_saved(paths, result, trace, where):
    """The report of the saved trace against what GDB showed."""
    result.no_traceback()
    check("wrote" in result.output("save"), "%s: memscope-save said %r" % (where, result.output("save")))
    end = json.loads(result.output("j-end"))
    check(end["summary"]["events"] > 8 * 4859 and end["summary"]["total_allocations"] > 300000,
          "%s: not a folded store's figures: %r" % (where, end["summary"]))
    check(any((b.get("label") or {}).get("name") == "kept" for b in end["live_blocks"]),
          "%s: no labeled block from before the horizon" % where)
    for name, gdb_json, args in (("end", "j-end", []), ("f-late", "j-late", ["--at-mark", "f-late"])):
        got = json.loads(report(paths, trace, ["--json", "-"] + args).stdout)
        check_equal(unsymbolized(got), unsymbolized(json.loads(result.output(gdb_json))),
                    "%s: report of the saved trace vs GDB's snapshot at %s" % (where, name))
    for gdb_error, args in (("at-early", ["--at-mark", "f-early"]), ("at-event", ["--at-event", "10"])):
        proc = report(paths, trace, args, ok=False)
        check_equal(sentence(proc.stderr), sentence(result.error(gdb_error)),
                    "%s: report %s vs GDB" % (where, " ".join(args)))
        check("before the checkpoint horizon" in proc.stderr, "%s: report %s: %s" % (where, " ".join(args), proc.stderr))
    check_equal(json.loads(report(paths, trace, ["--timeline=60", "--json", "-"]).stdout),
                json.loads(result.output("tl")), "%s: timeline of the saved trace vs GDB's" % where)
    check_equal(json.loads(report(paths, trace, ["--diff", "f-late", "end", "--json", "-"]).stdout),
                json.loads(result.output("diff")), "%s: diff f-late end of the saved trace vs GDB's" % where)
    info = report(paths, trace, ["--info"]).stdout
    check(re.search(r"format version 3, .*complete", info) and "marks 4," in info, "%s: --info:\n%s" % (where, info))


def case_save(paths):
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "fold.core")
        live_trace = os.path.join(tmp, "live.trace")
        live = run_gdb(paths, prelude(paths) + save_captures(live_trace) + ["capture gcore gcore " + core],
                       program=paths.fold, env=env(paths))
        check_saved(paths, live, live_trace, "live")
        if not os.path.exists(core):
            raise gdbtest.Skip("gcore wrote no core")
        core_trace = os.path.join(tmp, "core.trace")
        dead = run_gdb(paths, save_captures(core_trace), program=paths.fold, core=core, env=env(paths))
        check_saved(paths, dead, core_trace, "core")
        check_equal(json.loads(dead.output("j-end")), json.loads(live.output("j-end")), "core vs live snapshot")


CASES = {"marks": case_marks, "save": case_save}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("plugin", "library", "engine", "fold", "memscope"):
        parser.add_argument("--" + name, required=True)
    return gdbtest.main(CASES, parser, Paths)


if __name__ == "__main__":
    sys.exit(main())
