#!/usr/bin/env python3
"""Runs a CLI fixture under `memscope run --json` and checks every figure of
the at-exit snapshot against what the fixture knows it allocated.

Usage: check_snapshot.py MEMSCOPE FIXTURE WORKDIR [--baseline] [--status N] [--fixture-args ARG...]

The fixture (tests/fixtures/cli_*.c) is run as `FIXTURE EXPECTED.json` and
writes the figures the snapshot must show (summary, per-thread figures by
thread id, labeled blocks). With --baseline, the fixture is also run as
`FIXTURE BASE_EXPECTED.json --baseline` (same threads, no allocations of its
own): whatever glibc allocates for itself (the thread-creation calloc, say)
is in both runs, and expected = the fixture's own figures + the baseline's.
Exits 0 when every figure matches, 1 otherwise (listing each difference).
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snapshot_json as sj  # noqa: E402


def run_under_memscope(memscope, fixture, workdir, tag, extra, expect_status):
    expected = os.path.join(workdir, f"{tag}.expected.json")
    actual = os.path.join(workdir, f"{tag}.snapshot.json")
    for p in (expected, actual):
        if os.path.exists(p):
            os.unlink(p)
    cmd = [memscope, "run", "--json", actual, "--", fixture, expected] + extra
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if proc.returncode != expect_status:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {proc.returncode}, expected {expect_status}\n"
                 f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    if "total" not in proc.stdout.lower():
        sys.exit(f"FAIL: the text snapshot on stdout has no summary:\n{proc.stdout[-3000:]}")
    with open(expected) as f:
        return json.load(f), sj.load(actual), proc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("memscope")
    ap.add_argument("fixture")
    ap.add_argument("workdir")
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--status", type=int, default=0)
    ap.add_argument("--fixture-args", nargs="*", default=[],
                    help="more arguments for the fixture, after its expected-figures file")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)

    expected, actual, _ = run_under_memscope(args.memscope, args.fixture, args.workdir, "run", args.fixture_args,
                                              args.status)
    base = None
    if args.baseline:
        _, base, _ = run_under_memscope(args.memscope, args.fixture, args.workdir, "baseline", ["--baseline"],
                                        args.status)

    errors = []

    # Summary: the fixture's own figures plus glibc's (the baseline's). The
    # fixture's peak happens after every thread is joined, when glibc's live
    # bytes are those the baseline ends with.
    base_sum = sj.summary(base) if base else {}
    for field in sj.SUMMARY_FIELDS:
        want = expected["summary"][field]
        if base and field == "peak_memory":
            want += base_sum["current_memory"]
        elif base and field != "dropped_events":
            want += base_sum[field]
        got = sj.summary(actual).get(field)
        if got != want:
            errors.append(f"summary.{field}: memscope says {got}, the program made {want}"
                          + (f" (baseline {base_sum.get(field)})" if base else ""))

    # Per-thread figures, matched by OS thread id.
    by_tid = {t["tid"]: t for t in sj.threads(actual)}
    base_main, base_worker = {}, {}
    if base:
        base_pid = sj.pid(base)
        workers = []
        for t in sj.threads(base):
            if (base_pid is not None and t["tid"] == base_pid) or (base_pid is None and t.get("thread") == 1):
                base_main = t
            else:
                workers.append(t)
        if workers:
            first = {f: workers[0][f] for f in sj.THREAD_FIELDS}
            for t in workers[1:]:
                if {f: t[f] for f in sj.THREAD_FIELDS} != first:
                    errors.append(f"baseline worker threads differ: {workers}")
                    break
            base_worker = workers[0]
    for want in expected.get("threads", []):
        got = by_tid.get(want["tid"])
        extra = base_main if want["role"] == "main" else base_worker
        if got is None:
            errors.append(f"thread {want['tid']} ({want['role']}) is missing from the snapshot")
            continue
        for field in sj.THREAD_FIELDS:
            w = want[field] + extra.get(field, 0)
            if got.get(field) != w:
                errors.append(f"thread {want['tid']} ({want['role']}).{field}: memscope says {got.get(field)}, "
                              f"the program made {w}")
    if expected.get("threads") is not None and base is None and len(by_tid) != len(expected["threads"]):
        errors.append(f"memscope lists {len(by_tid)} threads, the program ran {len(expected['threads'])}")

    # Labeled blocks: each expected label on exactly one live block of that size.
    live = sj.blocks(actual)
    if len(live) != sj.summary(actual)["active_allocations"]:
        errors.append(f"the JSON lists {len(live)} live blocks, active_allocations says "
                      f"{sj.summary(actual)['active_allocations']}")
    for want in expected.get("labels", []):
        hits = [b for b in live if b["label_name"] == want["name"]]
        if len(hits) != 1:
            errors.append(f"label {want['name']!r}: {len(hits)} live blocks carry it, expected 1")
        elif hits[0]["label_type"] != want["type"] or hits[0]["size"] != want["size"]:
            errors.append(f"label {want['name']!r}: block {hits[0]}, expected type {want['type']!r} "
                          f"size {want['size']}")

    if errors:
        print("FAIL:\n  " + "\n  ".join(errors))
        return 1
    s = sj.summary(actual)
    print(f"OK: {s['total_allocations']} allocations, {s['total_deallocations']} deallocations, "
          f"{s['active_allocations']} live blocks ({s['current_memory']} bytes), peak {s['peak_memory']} bytes, "
          f"{len(by_tid)} threads, {len(expected.get('labels', []))} labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
