#!/usr/bin/env python3
"""Bounded history: the same workload bounded (MEMSCOPE_BUDGET=1M, folded)
and unbounded gives the same snapshot from `memscope run --json`; bounded
and writing a trace file too, the trace holds every event (folding waits for
the writer), so `memscope report` of it equals that run's own snapshot
exactly, at the end and at the peak.

Then short-lived threads (RUNTIME_CHURN run 3000, one thread after another,
each freeing all it allocates), bounded and unbounded: the bounded
checkpoint merges the exited threads' entries into one, so its per-thread
rows differ by design (one "exited threads" row, thread 0, with
`exited_threads`), but the summary is the same: thread count, totals, live
and peak figures, events; and in both the rows add up to the summary.

Usage: fold_compare.py MEMSCOPE RUNTIME_FOLD RUNTIME_CHURN

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


def run(ms, prog, budget, out, trace=None, args=("run", "6")):
    env = dict(os.environ)
    if budget:
        env["MEMSCOPE_BUDGET"] = budget
    extra = ["--trace", trace] if trace else []
    subprocess.run([ms, "run", "--json", out] + extra + ["--", prog] + list(args), env=env, check=True,
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


CHURN_KEYS = KEYS + ["peak_memory"]
ROW_SUMS = {"allocations": "total_allocations", "deallocations": "total_deallocations",
            "allocated_bytes": "total_allocated", "released_bytes": "total_deallocated",
            "current_memory": "current_memory", "live_blocks": "active_allocations"}


def rows_add_up(doc, name):
    """The rows add up to the summary, the exited threads' row counting as the threads it holds."""
    s, rows = doc["summary"], doc["threads"]
    merged = [r for r in rows if r["thread"] == 0]
    threads = len(rows) - len(merged) + sum(r["exited_threads"] for r in merged)
    errors = []
    if threads != s["threads"]:
        errors.append(f"{name}: rows stand for {threads} threads, the summary says {s['threads']}")
    if merged and rows[0]["thread"] != 0:
        errors.append(f"{name}: the exited threads' row is not the first")
    for field, total in ROW_SUMS.items():
        if sum(r[field] for r in rows) != s[total]:
            errors.append(f"{name}: rows' {field} add up to {sum(r[field] for r in rows)}, summary {total} {s[total]}")
    return merged, errors


def churn(ms, prog, tmp):
    """Exited threads merged (bounded) or not (unbounded): the same summary."""
    bounded = run(ms, prog, "1M", os.path.join(tmp, "cb.json"), args=("run", "3000"))
    unbounded = run(ms, prog, None, os.path.join(tmp, "cu.json"), args=("run", "3000"))
    sb = {k: bounded["summary"].get(k) for k in CHURN_KEYS}
    su = {k: unbounded["summary"].get(k) for k in CHURN_KEYS}
    errors = [f"churn: {k}: bounded {sb[k]}, unbounded {su[k]}" for k in CHURN_KEYS if sb[k] != su[k]]
    merged, e = rows_add_up(bounded, "churn bounded")
    errors += e
    errors += rows_add_up(unbounded, "churn unbounded")[1]
    if not merged or merged[0]["exited_threads"] < 2900:
        errors.append(f"churn bounded: expected an exited threads' row of most of the 3000 threads, got {merged}")
    if sb["dropped_events"] != 0 or su["threads"] is None or su["threads"] < 3001:
        errors.append(f"churn: dropped {sb['dropped_events']}, threads {su['threads']}")
    if errors:
        print("FAIL: short-lived threads, bounded and unbounded")
        for e in errors:
            print("  " + e)
        return 1
    print(f"ok: churn: {su['threads']} threads, {su['total_allocations']} allocations; bounded: "
          f"{len(bounded['threads'])} rows, {merged[0]['exited_threads']} threads merged")
    return 0


def main():
    ms, prog = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:
        with tempfile.TemporaryDirectory() as tmp:
            if churn(ms, sys.argv[3], tmp) != 0:
                return 1
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
