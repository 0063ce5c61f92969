#!/usr/bin/env python3
"""Allocation sites named after the process is gone: `memscope run` (from the
mappings written beside the exit image) and `memscope report` of a trace
(from its MODULES blocks) name functions, files and libraries from the files
on disk, and say so when a file is missing or was rebuilt.

Usage: test_sites.py CASE MEMSCOPE SITES OTHER WORKDIR
  CASE: named / rebuilt / missing / alloc_fn; SITES is the stack_sites_nofp fixture (run
  with "leak": its blocks stay live at exit), OTHER another program (a file
  with another build-id). Exits 0 on success, 1 on failure.
"""
import json
import os
import re
import shutil
import subprocess
import sys

# stack_sites.c's table: function -> (bytes, blocks, source file, module base name)
EXPECTED = {
    "site_leaf": (4000, 4, "stack_sites.c", "PROG"),
    "site_recurse": (333, 1, "stack_sites.c", "PROG"),
    "site_calloc": (500, 1, "stack_sites.c", "PROG"),
    "site_realloc": (777, 1, "stack_sites.c", "PROG"),
    "stack_lib_make": (4444, 2, "stack_lib.c", "libstack_lib_nofp.so"),
    "site_thread_alloc": (4500, 3, "stack_sites.c", "PROG"),
}


class Failure(Exception):
    pass


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if p.returncode != 0 or "Traceback" in p.stderr or "AddressSanitizer" in p.stderr:
        raise Failure(f"{' '.join(cmd)}: exit {p.returncode}\nstdout:\n{p.stdout[-2000:]}\nstderr:\n{p.stderr[-2000:]}")
    return p


def site_rows(text):
    """{function: (bytes, blocks, location, library)} from a 'Live memory by allocation site' table (--exact)."""
    rows, inside = {}, False
    for line in text.splitlines():
        if line.startswith("Live memory by allocation site"):
            inside = True
            continue
        if not inside or not line.strip() or line.lstrip().startswith("bytes"):
            if inside and not line.strip():
                break
            continue
        m = re.match(r"\s*(?:\S+ \S+ )?\(?(\d+) B\)?\s+(\d+)\s+\S+%\s+(\S+)\s+(\S+)\s+(\S+)\s*$", line)
        if not m:
            raise Failure(f"cannot read the site row {line!r}")
        rows[m.group(3)] = (int(m.group(1)), int(m.group(2)), m.group(4), m.group(5))
    return rows


def check_named(rows, prog, what):
    for function, (size, blocks, source, module) in EXPECTED.items():
        module = os.path.basename(prog) if module == "PROG" else module
        got = rows.get(function)
        if got is None:
            raise Failure(f"{what}: no row for {function}; rows: {rows}")
        if got[:2] != (size, blocks):
            raise Failure(f"{what}: {function} holds {got[0]} B in {got[1]} blocks, expected {size} B in {blocks}")
        if os.path.basename(got[2].rpartition(":")[0]) != source or not got[2].rpartition(":")[2].isdigit():
            raise Failure(f"{what}: {function} is located at {got[2]}, expected {source}:LINE")
        if got[3] != module:
            raise Failure(f"{what}: {function} is in {got[3]}, expected {module}")


def record(ms, prog, work):
    """memscope run with a trace: (run's site text, run's JSON, trace path)."""
    trace, js = os.path.join(work, "t.trace"), os.path.join(work, "run.json")
    p = run([ms, "run", "--trace", trace, "--json", js, "--group-by", "site", "--exact", "--top", "50", "--",
             prog, "leak"])
    with open(js) as f:
        return p.stdout, json.load(f), trace


def report(ms, trace, *args):
    return run([ms, "report", trace] + list(args))


def case_named(ms, sites, other, work):
    """Every site named alike by memscope run and by report of the trace; whole stacks equal."""
    text, doc, trace = record(ms, sites, work)
    check_named(site_rows(text), sites, "memscope run --group-by site")
    rep = report(ms, trace, "--group-by", "site", "--exact", "--top", "50")
    check_named(site_rows(rep.stdout), sites, "memscope report --group-by site")
    rep_doc = json.loads(report(ms, trace, "--json", "-").stdout)
    if rep_doc["stacks"] != doc["stacks"]:
        raise Failure("the trace's stacks (function, file, line, module per frame) differ from memscope run's")
    frames = [f for s in doc["stacks"].values() for f in s["frames"]]
    if not any(f.get("function") == "site_middle" for f in frames):
        raise Failure("no frame names site_middle (site_leaf's caller)")


def case_alloc_fn(ms, sites, other, work):
    """--alloc-fn: named wrappers are hidden like malloc; their callers are the sites (run and report alike)."""
    trace, wrap = os.path.join(work, "t.trace"), ["--alloc-fn", "site_leaf", "--alloc-fn", "site_calloc"]
    p = run([ms, "run", "--trace", trace, "--group-by", "site", "--exact", "--top", "50"] + wrap + ["--", sites, "leak"])
    for text, what in ((p.stdout, "memscope run"),
                       (report(ms, trace, "--group-by", "site", "--exact", "--top", "50", *wrap).stdout, "memscope report")):
        rows = site_rows(text)
        if "site_leaf" in rows or "site_calloc" in rows:
            raise Failure(f"{what}: the wrappers are still sites: {rows}")
        if rows.get("site_middle", (0, 0))[:2] != (4000, 4) or rows.get("main", (0, 0))[:2] != (500, 1):
            raise Failure(f"{what}: site_leaf's 4000 B should be at site_middle, site_calloc's 500 B at main: {rows}")
        if rows.get("site_thread_alloc", (0, 0))[:2] != (4500, 3):
            raise Failure(f"{what}: other sites should not move: {rows}")
    bad = subprocess.run([ms, "report", trace, "--alloc-fn", ""], capture_output=True, text=True)
    if bad.returncode != 2 or "--alloc-fn needs a function name" not in bad.stderr:
        raise Failure(f"an empty --alloc-fn: exit {bad.returncode}, {bad.stderr!r}")


def copy_program(sites, work):
    prog = os.path.join(work, "prog")
    shutil.copy2(sites, prog)
    return prog


def case_rebuilt(ms, sites, other, work):
    """A program rebuilt since the trace: its frames show module+offset, with a warning; the library's stay named."""
    prog = copy_program(sites, work)
    _, _, trace = record(ms, prog, work)
    shutil.copy2(other, prog)
    rep = report(ms, trace, "--group-by", "site", "--exact", "--top", "50")
    if "does not match the recording" not in rep.stderr or "build-id" not in rep.stderr:
        raise Failure(f"no build-id warning for the rebuilt program:\n{rep.stderr}")
    rows = site_rows(rep.stdout)
    if "stack_lib_make" not in rows or rows["stack_lib_make"][:2] != (4444, 2):
        raise Failure(f"the library's site should stay named: {rows}")
    if any(f in rows for f in ("site_leaf", "site_calloc")) or not any(f.startswith("prog+0x") for f in rows):
        raise Failure(f"the rebuilt program's sites should show prog+0xOFFSET: {rows}")


def case_missing(ms, sites, other, work):
    """A program deleted since the trace: a warning naming it, module+offset frames, the figures unchanged."""
    prog = copy_program(sites, work)
    _, _, trace = record(ms, prog, work)
    os.unlink(prog)
    rep = report(ms, trace, "--group-by", "site", "--exact", "--top", "50")
    if "is missing" not in rep.stderr or prog not in rep.stderr:
        raise Failure(f"no warning naming the missing program:\n{rep.stderr}")
    rows = site_rows(rep.stdout)
    # Unnamed, sites are return addresses: an unrolled loop's calls count apart. The totals stay.
    got = [sum(v[i] for f, v in rows.items() if f.startswith("prog+0x")) for i in (0, 1)]
    want = [sum(v[i] for v in EXPECTED.values() if v[3] == "PROG") for i in (0, 1)]
    if got != want or rows.get("stack_lib_make", (0, 0))[:2] != (4444, 2):
        raise Failure(f"the missing program's sites hold {got[0]} B in {got[1]} blocks, expected {want[0]} B in "
                      f"{want[1]}, and stack_lib_make named: {rows}")


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    case, ms, sites, other, work = sys.argv[1:]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        globals()["case_" + case](ms, sites, other, work)
    except Failure as e:
        print(f"FAIL {case}: {e}", file=sys.stderr)
        return 1
    print(f"ok {case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
