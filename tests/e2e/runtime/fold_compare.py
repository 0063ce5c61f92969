#!/usr/bin/env python3
"""Bounded history: the same workload bounded (MEMSCOPE_BUDGET=1M, folded)
and unbounded gives the same snapshot from `memscope run --json`.

Usage: fold_compare.py MEMSCOPE RUNTIME_FOLD

The workload (runtime_fold run) is deterministic in what it allocates and
frees but not in how its threads interleave, so what is compared is what
does not depend on the interleaving: the summary's totals and live figures,
the event count, and the multiset of live block sizes. Peak figures, times,
addresses and thread serials are left out.
"""
import json
import os
import subprocess
import sys
import tempfile

KEYS = ["total_allocations", "total_deallocations", "active_allocations", "total_allocated", "total_deallocated",
        "current_memory", "unmatched_deallocations", "dropped_events", "events", "reallocations", "threads"]


def run(ms, prog, budget, out):
    env = dict(os.environ)
    if budget:
        env["MEMSCOPE_BUDGET"] = budget
    subprocess.run([ms, "run", "--json", out, "--", prog, "run", "6"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)


def figures(doc):
    s = doc["summary"]
    sizes = sorted(b["size"] for b in doc.get("blocks", []))
    return {k: s.get(k) for k in KEYS}, sizes


def main():
    ms, prog = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        bounded = run(ms, prog, "1M", os.path.join(tmp, "b.json"))
        unbounded = run(ms, prog, None, os.path.join(tmp, "u.json"))
    fb, sb = figures(bounded)
    fu, su = figures(unbounded)
    if fb != fu or sb != su:
        print("FAIL: bounded and unbounded snapshots differ")
        for k in KEYS:
            if fb[k] != fu[k]:
                print(f"  {k}: bounded {fb[k]}, unbounded {fu[k]}")
        if sb != su:
            print(f"  live block sizes differ: {len(sb)} vs {len(su)} blocks")
        return 1
    print(f"ok: {fb['events']} events, {fb['active_allocations']} live blocks, same in both")
    return 0


if __name__ == "__main__":
    sys.exit(main())
