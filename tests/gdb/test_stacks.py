#!/usr/bin/env python3
"""memscope GDB end-to-end tests of call stacks: memscope-top --by site and
--by stack, memscope-stack, memscope-block's stack, memscope-export --folded
and the JSON's stacks, on the stack_* fixtures (tests/fixtures), live and on
a gcore core, for each capture method.

Usage: test_stacks.py --plugin gdb/memscope.py --library LIB --engine ENGINE
                      --sites-fp SITES_FP --sites-nofp SITES_NOFP --cxx CXX CASE

stack_sites.c and stack_cxx.cpp document what each function leaves live;
the checks are exact (bytes and blocks per function, frames in order).
"""

import argparse
import json
import os
import re
import sys

import gdbtest
from gdbtest import check, check_equal, run_gdb

COMMANDS = ("memscope-stack", "memscope-export")

# stack_sites.c: function -> (blocks, bytes, library suffix, expected frames of its stacks, outermost last).
SITES = {
    "site_leaf": (4, 4000, "stack_sites_", ["site_leaf", "site_middle", "site_outer", "main"]),
    "site_recurse": (1, 333, "stack_sites_", ["site_recurse"] * 6 + ["main"]),
    "site_calloc": (1, 500, "stack_sites_", ["site_calloc", "main"]),
    "site_realloc": (1, 777, "stack_sites_", ["site_realloc", "main"]),
    "stack_lib_make": (2, 4444, "libstack_lib_", ["stack_lib_make", "site_lib_caller", "main"]),
    "site_thread_alloc": (3, 4500, "stack_sites_", ["site_thread_alloc", "thread_main"]),
}

# stack_cxx.cpp: the site's function name starts with the key.
CXX_SITES = {
    "Widget::Widget": (3, 1920, ["Widget::Widget", "make_widgets", "main"]),
    "make_widgets": (3, 48, ["make_widgets", "main"]),
    "Holder::Holder": (1, 4000, ["Holder::Holder", "main"]),
}


class Paths(gdbtest.Paths):
    def __init__(self, args):  # pylint: disable=super-init-not-called
        self.plugin = os.path.abspath(args.plugin)
        self.library = os.path.abspath(args.library)
        self.engine = os.path.abspath(args.engine)
        self.sites = {"fp": os.path.abspath(args.sites_fp), "nofp": os.path.abspath(args.sites_nofp)}
        self.cxx = os.path.abspath(args.cxx)


def env(paths):
    return {"MEMSCOPE_ENGINE_LIBRARY": paths.engine}


def prelude(paths, method):
    cmds = ["set startup-with-shell off", "set environment LD_PRELOAD=" + paths.library]
    if method and method != "auto":  # auto is the default: leave the environment alone
        cmds.append("set environment MEMSCOPE_STACK_METHOD=" + method)
    return cmds + ["break fixture_checkpoint", "run"]


VIEWS = ["capture json memscope-snapshot --json -",
         "capture site memscope-top 50 --by site --exact",
         "capture stack memscope-top 50 --by stack --exact",
         "capture folded memscope-export --folded -",
         "capture snap memscope-snapshot --group-by site --top 50 --exact"]

ROW = re.compile(r"^\s+(?:(?P<stack>\d+|-)\s+)?(?P<size>\d[\d.]* \S+(?: \(\d+ B\))?)\s+(?P<blocks>\d+)\s+"
                 r"(?P<share>[\d.]+%)\s+(?P<function>\S+)\s+(?P<location>\S+)\s+(?P<library>\S+)\s*$")


def exact_bytes(size):
    """'4.0 KiB (4096 B)' or '333 B' -> bytes."""
    m = re.search(r"\((\d+) B\)", size)
    if m:
        return int(m.group(1))
    m = re.fullmatch(r"(\d+) B", size)
    check(m is not None, "a size without exact bytes: %r" % size)
    return int(m.group(1))


def table_rows(text, by_stack=False):
    rows = []
    for line in text.splitlines():
        m = ROW.match(line)
        if m and m.group("size") and (m.group("stack") is not None) == by_stack:
            rows.append(m.groupdict())
    return rows


def named_frames(doc, stack_id):
    """The stack's function names from its site outwards, hidden frames left out."""
    if stack_id == 0:
        return []  # allocated before the runtime's constructor: no stack
    entry = doc["stacks"][str(stack_id)]
    frames = entry["frames"][entry["site"]:]
    return [f.get("function", "?") for f in frames if not f["hidden"]]


def blocks_by_site(doc):
    """{site function: [stack ids of its live blocks]} from the JSON."""
    out = {}
    for block in doc["live_blocks"]:
        stack = block["stack"]
        check(stack != 0, "a live block without a stack: %r" % block)
        names = named_frames(doc, stack)
        out.setdefault(names[0] if names else "?", []).append(stack)
    return out


def is_subsequence(short, full):
    it = iter(full)
    return all(any(x == y for y in it) for x in short)


def check_sites(result, method, variant):
    """Exact bytes and blocks per function (text and JSON), frames in order."""
    doc = json.loads(result.output("json"))
    total = doc["summary"]["current_memory"]
    check_equal(doc["stack_table"]["method"], method, "stack method in the JSON")
    check_equal(doc["stack_table"]["truncated"], 0, "truncated stacks")
    check_equal(doc["stack_table"]["lost"], 0, "lost stacks")
    rows = table_rows(result.output("site"))
    by_function = {}
    for row in rows:
        check(row["function"] not in by_function, "site %s listed twice:\n%s" % (row["function"], result.output("site")))
        by_function[row["function"]] = row
    check_equal(sum(exact_bytes(r["size"]) for r in rows), total, "bytes of all sites vs live bytes")
    per_site = blocks_by_site(doc)
    for function, (blocks, size, library, frames) in SITES.items():
        row = by_function.get(function)
        check(row is not None, "no row for %s in memscope-top --by site:\n%s" % (function, result.output("site")))
        check_equal((int(row["blocks"]), exact_bytes(row["size"])), (blocks, size), "%s: blocks, bytes" % function)
        check(os.path.basename(row["library"]).startswith(library + variant),
              "%s: library %s, expected %s%s*" % (function, row["library"], library, variant))
        check(re.fullmatch(r".*stack_(sites|lib)\.c:\d+", row["location"]) is not None,
              "%s: location %s" % (function, row["location"]))
        ids = per_site.get(function, [])
        check_equal(len(ids), blocks, "%s: live blocks in the JSON" % function)
        for stack_id in set(ids):
            names = named_frames(doc, stack_id)
            if method == "caller":
                check_equal(len(doc["stacks"][str(stack_id)]["frames"]), 1, "%s: caller-only depth" % function)
                check_equal(names, frames[:1], "%s: caller-only stack" % function)
            elif method == "fp" and variant == "nofp":
                # Without frame pointers the walk ends early: shorter, never wrong.
                check(names[:1] == frames[:1] and is_subsequence(names, frames),
                      "%s: fp stack %r is not a subsequence of %r" % (function, names, frames))
            else:
                check_equal(names[:len(frames)], frames, "%s: stack %d frames" % (function, stack_id))
    check("site_freed" not in by_function, "site_freed left nothing live, yet has a row")
    snap_rows = {r["function"]: r for r in table_rows(result.output("snap"))}
    check_equal({f: (r["blocks"], r["size"]) for f, r in snap_rows.items()},
                {f: (r["blocks"], r["size"]) for f, r in by_function.items()},
                "memscope-snapshot --group-by site vs memscope-top --by site")
    return doc


def check_stack_views(result, doc):
    """--by stack: one row per id, ids sum to the live bytes; folded lines."""
    rows = table_rows(result.output("stack"), by_stack=True)
    check_equal(sum(exact_bytes(r["size"]) for r in rows), doc["summary"]["current_memory"],
                "bytes of all stacks vs live bytes")
    check_equal(sorted(int(r["stack"]) for r in rows), sorted({b["stack"] for b in doc["live_blocks"]}),
                "stack ids of --by stack vs the JSON")
    folded = {}
    for line in result.output("folded").splitlines():
        frames, _, size = line.rpartition(" ")
        check(frames and size.isdigit(), "not a folded line: %r" % line)
        folded[frames] = int(size)
    check_equal(sum(folded.values()), doc["summary"]["current_memory"], "folded bytes vs live bytes")
    return folded


def run_sites(paths, method, variant, extra=()):
    result = run_gdb(paths, prelude(paths, method) + VIEWS + list(extra), env=env(paths),
                     program=paths.sites[variant])
    result.no_traceback()
    return result


def case_help(paths):
    result = run_gdb(paths, ["capture help-memscope help memscope"]
                     + ["capture help-%s help %s" % (c, c) for c in COMMANDS + ("memscope-top",)])
    result.no_traceback()
    for command in COMMANDS:
        text = result.output("help-" + command)
        check("Usage: " + command in text and "Example: " + command in text, "help %s:\n%s" % (command, text))
        check(command in result.output("help-memscope"), "help memscope does not list " + command)
    check("--by site" in result.output("help-memscope-top"), "help memscope-top does not describe --by site")
    peak = run_gdb(paths, ["capture help-peak help memscope-break-peak",
                           "capture help-diff help memscope-diff",
                           "capture bad memscope-break-peak --group-by colour"])
    check("--group-by site|stack" in peak.output("help-peak"), "help memscope-break-peak: no --group-by site")
    check("--group-by label|thread|size|site|stack" in peak.output("help-diff"), "help memscope-diff: no site")
    check_equal(peak.error("bad"), "memscope-break-peak: --group-by wants one of none|thread|label|size|stack|site, "
                "not 'colour'.", "break-peak --group-by error")


def make_sites_case(method, variant):
    def case(paths):
        result = run_sites(paths, method, variant)
        doc = check_sites(result, method, variant)
        folded = check_stack_views(result, doc)
        if method != "caller" and not (method == "fp" and variant == "nofp"):
            for tail, size in (("main;site_outer;site_middle;site_leaf", 4000),
                               ("main;site_lib_caller;stack_lib_make", 4444),
                               (";".join(["main"] + ["site_recurse"] * 6), 333)):
                lines = {k: v for k, v in folded.items() if k == tail or k.endswith(";" + tail)}
                check_equal(sum(lines.values()), size, "folded lines ending %s: %r" % (tail, lines))
    return case


def case_core(paths):
    """A gcore core gives the same sites, stacks and JSON as the live process."""
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "stack_sites.core")
        live = run_sites(paths, None, "nofp", ["capture gcore gcore " + core])
        check(os.path.exists(core), "gcore wrote no core:\n" + live.describe())
        dead = run_gdb(paths, VIEWS, program=paths.sites["nofp"], core=core, env=env(paths))
        dead.no_traceback()
        for name in ("json", "site", "stack", "folded"):
            check_equal(dead.output(name), live.output(name), "%s of the core vs the live process" % name)
        check_sites(dead, "auto", "nofp")


def case_stack_block(paths):
    """memscope-stack ID and memscope-block ADDR print the frames, innermost first."""
    result = run_sites(paths, None, "fp", [
        "capture-eval leaf (unsigned long)fixture_keep[0]",
        "capture block memscope-block fixture_keep[0]",
        "capture nostack memscope-stack 100000",
        "capture zero memscope-stack 0",
        "capture noid memscope-stack"])
    doc = json.loads(result.output("json"))
    leaf = result.output("leaf")
    stack_id = [b["stack"] for b in doc["live_blocks"] if int(b["address"], 16) == leaf]
    check_equal(len(stack_id), 1, "the JSON block of fixture_keep[0]")
    block = result.output("block")
    check("(stack %d)" % stack_id[0] in block, "memscope-block names no stack:\n" + block)
    frames = [ln for ln in block.splitlines() if re.match(r"\s+#\d+\s+0x", ln)]
    names = [re.match(r"\s+#\d+\s+0x[0-9a-f]+ (\S+)", ln).group(1) for ln in frames]
    check_equal(names[:4], ["site_leaf", "site_middle", "site_outer", "main"], "memscope-block frames")
    check(all(" at " in ln and "stack_sites.c:" in ln for ln in frames[:4]), "frames without file:line:\n" + block)
    out = run_gdb(paths, prelude(paths, None) + ["capture stack memscope-stack %d" % stack_id[0]], env=env(paths),
                  program=paths.sites["fp"])
    text = out.output("stack")
    check(text.startswith("stack %d: 4 live blocks, 3.9 KiB" % stack_id[0]) or
          text.startswith("stack %d: 1 live blocks" % stack_id[0]), "memscope-stack heading:\n" + text)
    check(re.search(r"#0\s+0x[0-9a-f]+ site_leaf at \S+stack_sites.c:\d+ \(stack_sites_fp\)", text) is not None,
          "memscope-stack frame 0:\n" + text)
    check(re.search(r"\[hidden\]", text) is not None, "no hidden (libc) frame marked:\n" + text)
    check(re.fullmatch(r"memscope-stack: no stack 100000: the store holds \d+ stacks\.", result.error("nostack")),
          "error for an unknown id: %r" % result.error("nostack"))
    check_equal(result.error("zero"), "memscope-stack: ID wants a positive whole number, not '0'.", "error for id 0")
    check_equal(result.error("noid"), "memscope-stack: give the stack id to print (see 'help memscope-stack').",
                "error without an id")


def case_cxx(paths):
    """C++: operator new's frames are hidden; the site is the constructor that said new."""
    result = run_gdb(paths, prelude(paths, None) + VIEWS, env=env(paths), program=paths.cxx)
    result.no_traceback()
    doc = json.loads(result.output("json"))
    rows = table_rows(result.output("site"))
    for prefix, (blocks, size, frames) in CXX_SITES.items():
        row = [r for r in rows if r["function"].startswith(prefix)]
        check_equal(len(row), 1, "rows for %s in:\n%s" % (prefix, result.output("site")))
        check_equal((int(row[0]["blocks"]), exact_bytes(row[0]["size"])), (blocks, size), prefix + ": blocks, bytes")
        ids = {b["stack"] for b in doc["live_blocks"] if named_frames(doc, b["stack"])[:1]
               and named_frames(doc, b["stack"])[0].startswith(prefix)}
        for stack_id in ids:
            names = named_frames(doc, stack_id)
            check(all(n.startswith(f) for n, f in zip(names, frames)) and len(names) >= len(frames),
                  "%s: frames %r, expected %r" % (prefix, names, frames))
            hidden = [f.get("function", "") for f in doc["stacks"][str(stack_id)]["frames"] if f["hidden"]]
            check(any(h.startswith("operator new") for h in hidden), "%s: operator new is not hidden: %r"
                  % (prefix, doc["stacks"][str(stack_id)]["frames"]))
    # libstdc++'s emergency pool is allocated before libmemscope's constructor: it has its caller.
    check_equal([b for b in doc["live_blocks"] if b["stack"] == 0], [], "live blocks without a stack")
    main_rows = [r for r in rows if r["function"] in ("main", "main()")]
    check_equal([exact_bytes(r["size"]) for r in main_rows], [8], "main's new Holder")


def case_diff(paths):
    """memscope-diff --group-by site: the blocks allocated between two points, by site, exact."""
    result = run_sites(paths, None, "fp", ["capture diff memscope-diff event:0 end --group-by site --exact --top 50",
                                           "capture diffj memscope-diff event:0 end --group-by stack --json -"])
    text = result.output("diff")
    allocated = text.split("Live at A, freed by B")[0]
    for function, (blocks, size, library, _frames) in SITES.items():
        row = [ln for ln in allocated.splitlines() if ln.strip().startswith(function + " ")]
        check_equal(len(row), 1, "diff rows for %s in:\n%s" % (function, text))
        m = re.search(r"\((\S+)\)\s+(\d+)\s+(.+?)\s*$", row[0])
        check(m is not None and os.path.basename(m.group(1)).startswith(library + "fp"), "diff row: %r" % row[0])
        check_equal((int(m.group(2)), exact_bytes(m.group(3))), (blocks, size), "diff %s: blocks, bytes" % function)
    doc = json.loads(result.output("diffj"))
    check_equal(doc["group_by"], "stack", "diff JSON group_by")


def case_alloc_fns(paths):
    """set memscope alloc-fns: a named wrapper is hidden like malloc, its callers become the sites."""
    result = run_gdb(paths, prelude(paths, None) + [
        "set memscope alloc-fns site_leaf, site_calloc",
        "capture show show memscope alloc-fns",
        "capture wrapped memscope-top 50 --by site --exact",
        "set memscope alloc-fns",
        "capture plain memscope-top 50 --by site --exact"], env=env(paths), program=paths.sites["nofp"])
    result.no_traceback()
    check_equal(result.output("show").strip().rstrip("."), "site_leaf, site_calloc", "show memscope alloc-fns")
    wrapped = {r["function"]: (int(r["blocks"]), exact_bytes(r["size"])) for r in table_rows(result.output("wrapped"))}
    plain = {r["function"]: (int(r["blocks"]), exact_bytes(r["size"])) for r in table_rows(result.output("plain"))}
    check("site_leaf" not in wrapped and "site_calloc" not in wrapped, "wrappers still sites:\n" + result.output("wrapped"))
    check_equal(wrapped.get("site_middle"), plain["site_leaf"], "site_leaf's blocks now at its caller site_middle")
    check_equal(wrapped.get("main", (0, 0))[1] - plain.get("main", (0, 0))[1], plain["site_calloc"][1],
                "site_calloc's bytes now at its caller main")
    check_equal(sum(b for _, b in wrapped.values()), sum(b for _, b in plain.values()), "same live bytes in all")
    check_equal(wrapped["site_thread_alloc"], plain["site_thread_alloc"], "other sites unchanged")


CASES = {"help": case_help, "diff": case_diff, "core": case_core, "stack-block": case_stack_block, "cxx": case_cxx,
         "alloc-fns": case_alloc_fns}
for _method in ("auto", "unwind", "fp", "caller"):
    for _variant in ("fp", "nofp"):
        CASES["sites-%s-%s" % (_method, _variant)] = make_sites_case(_method, _variant)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("plugin", "library", "engine", "sites-fp", "sites-nofp", "cxx"):
        parser.add_argument("--" + name, required=True)
    return gdbtest.main(CASES, parser, Paths)


if __name__ == "__main__":
    sys.exit(main())
