#!/usr/bin/env python3
"""Cross-checks `memscope run` against valgrind's memcheck on a deterministic
fixture (tests/fixtures/cli_single.c).

Usage: test_valgrind.py MEMSCOPE FIXTURE WORKDIR
Exits 77 (CTest's SKIP_RETURN_CODE) when valgrind is not installed.

The mapping, figure by figure:
  valgrind "in use at exit: X bytes in Y blocks"  = current_memory X, active_allocations Y
  valgrind "total heap usage: A allocs, F frees, B bytes allocated"
                                                  = total_allocations A, total_deallocations F,
                                                    total_allocated B
It is exact for this fixture because:
  - valgrind counts realloc(p, n) (p live, n > 0) as one alloc of n bytes and one free;
    memscope as one allocation of n bytes (the new block) and one deallocation (the
    old block), so both sides move by the same amounts. realloc(NULL, n) is an alloc
    on both sides. The fixture makes no realloc(p, 0) and no free(NULL), where the
    two could count differently.
  - both count every allocation in the process, glibc's own included; the fixture
    uses no stdio (whose buffer glibc would allocate) and runs no threads, so there
    are none: every allocation is the fixture's.
  - posix_memalign and aligned_alloc count as one alloc of the requested size on both
    sides.
  - under valgrind libmemscope is absent, so the fixture's label calls are skipped.
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snapshot_json as sj  # noqa: E402


def number(text):
    return int(text.replace(",", ""))


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    memscope, fixture, workdir = sys.argv[1:]
    if shutil.which("valgrind") is None:
        print("SKIP: valgrind is not installed")
        return 77
    os.makedirs(workdir, exist_ok=True)
    log = os.path.join(workdir, "valgrind.log")
    vg = subprocess.run(["valgrind", "--leak-check=full", f"--log-file={log}", fixture,
                         os.path.join(workdir, "vg.expected.json")],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    if vg.returncode != 0:
        print(f"FAIL: valgrind exited {vg.returncode}\n{vg.stderr}")
        return 1
    text = open(log).read()
    in_use = re.search(r"in use at exit: ([\d,]+) bytes in ([\d,]+) blocks", text)
    usage = re.search(r"total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated", text)
    if not in_use or not usage:
        print(f"FAIL: cannot find valgrind's heap summary in:\n{text}")
        return 1

    snapshot = os.path.join(workdir, "snapshot.json")
    ms = subprocess.run([memscope, "run", "--json", snapshot, "--", fixture,
                         os.path.join(workdir, "ms.expected.json")],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    if ms.returncode != 0:
        print(f"FAIL: memscope run exited {ms.returncode}\n{ms.stderr}")
        return 1
    s = sj.summary(sj.load(snapshot))

    pairs = [
        ("current_memory", s["current_memory"], "in use at exit (bytes)", number(in_use.group(1))),
        ("active_allocations", s["active_allocations"], "in use at exit (blocks)", number(in_use.group(2))),
        ("total_allocations", s["total_allocations"], "allocs", number(usage.group(1))),
        ("total_deallocations", s["total_deallocations"], "frees", number(usage.group(2))),
        ("total_allocated", s["total_allocated"], "bytes allocated", number(usage.group(3))),
    ]
    bad = [p for p in pairs if p[1] != p[3]]
    for name, mine, vname, theirs in pairs:
        print(f"{'ok  ' if mine == theirs else 'DIFF'} memscope {name} = {mine}; valgrind {vname} = {theirs}")
    if s["unmatched_deallocations"] != 0 or s["dropped_events"] != 0:
        print(f"FAIL: unmatched {s['unmatched_deallocations']}, dropped {s['dropped_events']}, expected 0")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
