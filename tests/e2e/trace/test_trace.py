#!/usr/bin/env python3
"""End-to-end tests of trace files: MEMSCOPE_TRACE / `memscope run --trace`
written by the runtime's background writer, read by `memscope report`.

Usage: test_trace.py CASE MEMSCOPE WORKLOAD WORKDIR
  CASE is one of the functions named case_* below (without the prefix);
  WORKLOAD is the built trace_workload fixture. Exits 0 on success, 1 on failure.

Exact figures only: the fixture prints what in-process snapshots saw at
points where no other thread runs ("point NAME EVENTS figures..."), and
the report from the trace at the same event count must give the same.
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

FIGURES = ["total_allocations", "total_deallocations", "active_allocations", "total_allocated",
           "total_deallocated", "current_memory", "peak_memory", "unmatched_deallocations"]


class Failure(Exception):
    pass


def run(cmd, env=None, timeout=300):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, env=env)


def check(proc, status, what, stderr_has=()):
    detail = f"{what}: exit {proc.returncode}\nstdout:\n{proc.stdout[-1500:]}\nstderr:\n{proc.stderr[-1500:]}"
    if proc.returncode != status:
        raise Failure(f"expected exit {status}; {detail}")
    for needle in stderr_has:
        if needle.lower() not in proc.stderr.lower():
            raise Failure(f"stderr lacks {needle!r}; {detail}")
    if "Traceback" in proc.stderr or "Segmentation" in proc.stderr:
        raise Failure(f"crash output; {detail}")


def points(text):
    """{name: (events, [figures])} from the fixture's point lines."""
    out = {}
    for line in text.splitlines():
        if line.startswith("point "):
            f = line.split()
            out[f[1]] = (int(f[2]), [int(x) for x in f[3:]])
    return out


def report_json(ms, trace, *args):
    p = run([ms, "report", trace, "--json", "-"] + list(args))
    check(p, 0, f"memscope report {trace} {' '.join(args)}")
    return json.loads(p.stdout), p


def figures(doc):
    s = doc["summary"]
    return [s[k] for k in FIGURES]


def compare_points(ms, trace, pts):
    if not pts:
        raise Failure("the fixture printed no points")
    for name, (events, want) in pts.items():
        for args in (["--at-event", str(events)], ["--at-mark", name]):
            doc, _ = report_json(ms, trace, *args)
            got = figures(doc)
            if got != want:
                raise Failure(f"{' '.join(args)}: report {dict(zip(FIGURES, got))}, the program saw "
                              f"{dict(zip(FIGURES, want))}")
            if doc["summary"]["events"] != events:
                raise Failure(f"{' '.join(args)}: {doc['summary']['events']} events replayed, "
                              f"expected {events}")


def case_roundtrip(ms, workload, work):
    """run --trace: the report at each point equals the program's own snapshot; at the end, the exit snapshot."""
    trace = os.path.join(work, "rt.trace")
    run_json = os.path.join(work, "run.json")
    p = run([ms, "run", "--trace", trace, "--json", run_json, "--", workload, "points", "2"])
    check(p, 0, "memscope run --trace")
    compare_points(ms, trace, points(p.stdout))
    rep_json = os.path.join(work, "report.json")
    p2 = run([ms, "report", trace, "--json", rep_json])
    check(p2, 0, "memscope report")
    if p2.stderr.strip():
        raise Failure(f"a complete trace gave warnings: {p2.stderr}")
    if open(run_json).read() != open(rep_json).read():
        raise Failure("the report's JSON at the end differs from memscope run's exit snapshot JSON")
    # The other views run on the trace alone.
    for args in (["--at-peak"], ["--diff", "mark:main-0", "mark:threads-1"], ["--timeline=40"], ["--info"],
                 ["--group-by", "label"], ["--group-by", "site"], ["--at", "1000s"]):
        p3 = run([ms, "report", trace] + args)
        if args[:2] == ["--at", "1000s"]:
            check(p3, 1, "report --at past the end", stderr_has=["after"])
        else:
            check(p3, 0, f"report {' '.join(args)}")
    sites = run([ms, "report", trace, "--group-by", "site", "--json", "-"])
    check(sites, 0, "report --group-by site --json")
    if not json.loads(sites.stdout).get("stacks"):
        raise Failure("the trace's snapshot JSON lists no call stacks")
    info = run([ms, "report", trace, "--info"]).stdout
    if "complete" not in info or "bytes per event" not in info:
        raise Failure(f"--info: {info}")


def start(workload, trace, *args):
    env = dict(os.environ, MEMSCOPE_TRACE=trace)
    return subprocess.Popen([workload] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def case_sigkill_idle(ms, workload, work):
    """Killed (SIGKILL) while idle: the trace holds every event, the end equals the last point."""
    trace = os.path.join(work, "idle.trace")
    proc = start(workload, trace, "idle", "2")
    out = ""
    deadline = time.time() + 120
    while "idle" not in out.splitlines() and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out += line
    if "idle" not in out.splitlines():
        proc.kill()
        raise Failure(f"the fixture did not reach its idle state: {out}")
    time.sleep(0.3)  # two polls of the writer and then some
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    pts = points(out)
    last = pts["threads-1"]
    doc, p = report_json(ms, trace)
    if "not finished" not in p.stderr:
        raise Failure(f"a killed writer's trace should say it was not finished: {p.stderr}")
    if figures(doc) != last[1] or doc["summary"]["events"] != last[0]:
        raise Failure(f"end of the trace {figures(doc)} ({doc['summary']['events']} events), last point "
                      f"{last}")
    compare_points(ms, trace, pts)


def case_sigkill_busy(ms, workload, work):
    """Killed (SIGKILL) mid-allocation: the trace reads up to the kill, with a clear word about it."""
    trace = os.path.join(work, "busy.trace")
    proc = start(workload, trace, "busy")
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    p = run([ms, "report", trace, "--info"])
    check(p, 0, "report --info of a killed busy program")
    events = int(p.stdout.split("events ")[1].split(",")[0])
    if events < 100000:
        raise Failure(f"only {events} events survived a second of allocation")
    p = run([ms, "report", trace, "--summary"])
    check(p, 0, "report of a killed busy program", stderr_has=["not finished"])


def case_exec_follow(ms, workload, work):
    """A program exec'd with MEMSCOPE_FOLLOW_EXEC=1 is recorded but does not replace the trace."""
    trace = os.path.join(work, "exec.trace")
    p = run([workload, "exec"], env=dict(os.environ, MEMSCOPE_TRACE=trace, MEMSCOPE_FOLLOW_EXEC="1"))
    check(p, 0, "trace_workload exec")
    pts = points(p.stdout)
    if "threads-0" not in pts:
        raise Failure(f"the exec'd program did not run: {p.stdout}")
    info = run([ms, "report", trace, "--info"])
    check(info, 0, "report --info")
    if "not finished" not in info.stdout:
        raise Failure(f"the trace was replaced by the exec'd program's: {info.stdout}")
    # The first program's events up to its pause are there (the exec'd one's points restart from zero).
    events = int(info.stdout.split("events ")[1].split(",")[0])
    if events < 1000:
        raise Failure(f"only {events} events of the first program in its trace")


def good_trace(ms, workload, work, name):
    trace = os.path.join(work, name)
    p = run([ms, "run", "--trace", trace, "--summary", "--", workload, "points", "1"])
    check(p, 0, "memscope run --trace")
    return trace


def case_damaged(ms, workload, work):
    """Bad magic, bad header checksum, unknown version, a corrupt block, truncation, empty: clear messages."""
    src = good_trace(ms, workload, work, "good.trace")
    data = open(src, "rb").read()

    def variant(name, blob):
        path = os.path.join(work, name)
        with open(path, "wb") as f:
            f.write(blob)
        return path

    bad = variant("magic.trace", b"X" + data[1:])
    check(run([ms, "report", bad]), 1, "bad magic", stderr_has=["not a memscope trace"])
    hdr = bytearray(data[:64])
    hdr[40] ^= 1
    check(run([ms, "report", variant("hcrc.trace", bytes(hdr) + data[64:])]), 1, "header checksum",
          stderr_has=["header is damaged"])
    # An unknown version with a valid CRC-32C over the header (computed here, independently).
    hdr = bytearray(data[:64])
    struct.pack_into("<I", hdr, 16, 99)
    struct.pack_into("<I", hdr, 60, crc32c(bytes(hdr[:60])))
    check(run([ms, "report", variant("version.trace", bytes(hdr) + data[64:])]), 1, "unknown version",
          stderr_has=["version 99", "knows versions 1 to 3"])
    # Version 1 (before the checkpoint blocks): the same layout, still read.
    struct.pack_into("<I", hdr, 16, 1)
    struct.pack_into("<I", hdr, 60, crc32c(bytes(hdr[:60])))
    check(run([ms, "report", "--summary", variant("version1.trace", bytes(hdr) + data[64:])]), 0, "version 1")
    check(run([ms, "report", variant("empty.trace", b"")]), 1, "empty file", stderr_has=["not a memscope trace"])
    # A payload byte flipped in a block in the middle: skipped with a warning; --strict refuses.
    blocks = block_offsets(data)
    if len(blocks) < 4:
        raise Failure(f"expected several blocks, found {len(blocks)}")
    off, size = blocks[len(blocks) // 2]
    blob = bytearray(data)
    blob[off + 32 + size // 2] ^= 0x55
    path = variant("block.trace", bytes(blob))
    check(run([ms, "report", path, "--summary"]), 0, "corrupt block", stderr_has=["damaged", "checksum", "skipped"])
    check(run([ms, "report", path, "--strict", "--summary"]), 1, "corrupt block, strict",
          stderr_has=["checksum"])
    # Cut in the middle of a block: read up to it, said so.
    off, size = blocks[len(blocks) // 2]
    path = variant("cut.trace", data[:off + 40])
    check(run([ms, "report", path, "--summary"]), 0, "truncated", stderr_has=["cut short", "not finished"])
    check(run([ms, "report", path, "--strict", "--summary"]), 1, "truncated, strict", stderr_has=["truncated"])
    # A missing file, a usage error.
    check(run([ms, "report", os.path.join(work, "nope.trace")]), 1, "missing", stderr_has=["cannot open"])
    check(run([ms, "report"]), 2, "no file", stderr_has=["no trace file"])
    check(run([ms, "report", src, "--at-peak", "--at-event", "3"]), 2, "two points", stderr_has=["at most one"])


def block_offsets(data):
    out, off = [], 64
    while off + 32 <= len(data):
        magic, btype, codec, stored, raw, seq, pcrc, hcrc = struct.unpack_from("<IHHIIQII", data, off)
        out.append((off, stored))
        off += 32 + ((stored + 7) & ~7)
    return out


def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    case, ms, workload, work = sys.argv[1:]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        globals()["case_" + case](ms, workload, work)
    except Failure as e:
        print(f"FAIL {case}: {e}", file=sys.stderr)
        return 1
    print(f"ok {case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
