#!/usr/bin/env python3
"""Bounded history: the same workload bounded (MEMSCOPE_BUDGET=1M, folded)
and unbounded gives the same snapshot from `memscope run --json`; bounded
and writing a trace file too, the trace holds every event (folding waits for
the writer), so `memscope report` of it equals that run's own snapshot
exactly, at the end and at the peak.

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


def run(ms, prog, budget, out, trace=None):
    env = dict(os.environ)
    if budget:
        env["MEMSCOPE_BUDGET"] = budget
    extra = ["--trace", trace] if trace else []
    subprocess.run([ms, "run", "--json", out] + extra + ["--", prog, "run", "6"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)


def report(ms, trace, out, *view):
    subprocess.run([ms, "report", trace, "--json", out] + list(view), check=True, stdout=subprocess.DEVNULL)
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
        trace = os.path.join(tmp, "t.trace")
        traced = run(ms, prog, "1M", os.path.join(tmp, "t.json"), trace)
        from_trace = report(ms, trace, os.path.join(tmp, "r.json"))
        at_peak = report(ms, trace, os.path.join(tmp, "p.json"), "--at-peak")
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
    ft, st = figures(traced)
    if ft != fu or st != su:
        print(f"FAIL: bounded with a trace differs from unbounded: {ft} vs {fu}")
        return 1
    if ft["dropped_events"] != 0:
        print(f"FAIL: bounded with a trace dropped {ft['dropped_events']} events")
        return 1
    if from_trace != traced:
        print("FAIL: memscope report of the trace differs from the run's own snapshot")
        for k in sorted(set(from_trace) | set(traced)):
            if from_trace.get(k) != traced.get(k):
                print(f"  {k}: report {str(from_trace.get(k))[:200]}, run {str(traced.get(k))[:200]}")
        return 1
    peak = traced["summary"]["peak_memory"]
    if at_peak["summary"]["current_memory"] != peak:
        print(f"FAIL: the trace's --at-peak holds {at_peak['summary']['current_memory']} bytes, the peak was {peak}")
        return 1
    print(f"ok: {fb['events']} events, {fb['active_allocations']} live blocks, same in all three; "
          f"the trace's report equals its run, peak {peak} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
