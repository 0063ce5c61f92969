#!/usr/bin/env python3
"""End-to-end tests of the memscope command's behaviour around the snapshot:
help and version, usage errors, programs that cannot run or leave no image,
damaged images, exit statuses and signal forwarding.

Usage: test_cli.py CASE MEMSCOPE FIXTURE_DIR
  CASE is one of the functions named case_* below (without the prefix);
  FIXTURE_DIR holds the built cli_* fixtures. Exits 0 on success, 1 on failure.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time


class Failure(Exception):
    pass


def run(memscope, args, env=None, timeout=120):
    return subprocess.run([memscope] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, env=env)


def expect(proc, status, stderr_has=None, stdout_has=None, what=""):
    """Checks exit status and text; every memscope error is one 'memscope: ' line (plus a hint)."""
    detail = f"{what}: exit {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-2000:]}"
    if proc.returncode != status:
        raise Failure(f"expected exit {status}; {detail}")
    for needle in ([stderr_has] if isinstance(stderr_has, str) else stderr_has or []):
        if needle.lower() not in proc.stderr.lower():
            raise Failure(f"stderr lacks {needle!r}; {detail}")
    for needle in ([stdout_has] if isinstance(stdout_has, str) else stdout_has or []):
        if needle.lower() not in proc.stdout.lower():
            raise Failure(f"stdout lacks {needle!r}; {detail}")
    if status in (1, 2):
        lines = [l for l in proc.stderr.splitlines() if l.startswith("memscope: ")]
        if not lines:
            raise Failure(f"no 'memscope: ' message on stderr; {detail}")
        if "Traceback" in proc.stderr or "Segmentation" in proc.stderr:
            raise Failure(f"crash output; {detail}")


def case_help(ms, fixtures):
    expect(run(ms, ["--help"]), 0, stdout_has=["Usage: memscope", "run"], what="memscope --help")
    expect(run(ms, ["run", "--help"]), 0,
           stdout_has=["Usage: memscope run", "--summary", "--json", "--top", "--group-by", "--exact", "--budget",
                       "Exit status"], what="memscope run --help")
    expect(run(ms, ["--version"]), 0, stdout_has="memscope 0.", what="memscope --version")


def case_usage(ms, fixtures):
    for args in ([], ["bogus"], ["--bogus"], ["run"], ["run", "--"], ["run", "--nope", "--", "true"],
                 ["run", "--top"], ["run", "--top", "x", "--", "true"], ["run", "--top", "0", "--", "true"],
                 ["run", "--group-by", "colour", "--", "true"], ["run", "--budget", "lots", "--", "true"],
                 ["run", "--json", "", "--", "true"]):
        expect(run(ms, args), 2, stderr_has="memscope: ", what=f"memscope {' '.join(args)}")


def case_no_program(ms, fixtures):
    expect(run(ms, ["run", "--", "/nonexistent/memscope-test-prog"]), 1, stderr_has="no such program",
           what="absolute path")
    expect(run(ms, ["run", "--", "memscope-test-no-such-program"]), 1, stderr_has="no such program",
           what="PATH search")
    expect(run(ms, ["run", "--", "/etc/hostname"]), 1, stderr_has="cannot run", what="not executable")


def case_library_missing(ms, fixtures):
    env = dict(os.environ, MEMSCOPE_LIBRARY="/nonexistent/libmemscope.so")
    expect(run(ms, ["run", "--", "true"], env=env), 1, stderr_has="MEMSCOPE_LIBRARY", what="bad MEMSCOPE_LIBRARY")


def case_preload_kept(ms, fixtures):
    """An LD_PRELOAD the user already has stays in force for the program (memscope's library goes first)."""
    import glob
    import shutil
    bash = shutil.which("bash")
    libs = sorted(glob.glob("/lib/*/libm.so.6") + glob.glob("/usr/lib/*/libm.so.6"))
    if bash is None or not libs:
        print("skipped: needs bash and libm.so.6")
        return
    env = dict(os.environ, LD_PRELOAD=libs[0])
    # The runtime takes itself out of LD_PRELOAD at start-up (exec'd programs are not recorded), so the
    # program sees exactly the user's value; the snapshot proves the library was loaded before it.
    proc = run(ms, ["run", "--summary", "--", bash, "-c", 'echo "preload=[$LD_PRELOAD]"'], env=env)
    expect(proc, 0, stdout_has=[f"preload=[{libs[0]}]", "total allocations"], what="existing LD_PRELOAD")


def case_killed(ms, fixtures):
    expect(run(ms, ["run", "--", os.path.join(fixtures, "cli_selfkill")]), 1,
           stderr_has=["killed by signal 9", "no snapshot"], what="SIGKILL")


def case_exec(ms, fixtures):
    """A program that replaces itself with another (exec) leaves no image: the runtime does not follow exec."""
    expect(run(ms, ["run", "--", "/bin/sh", "-c", "exec /bin/true"]), 1, stderr_has=["no exit image", "exec"],
           what="sh -c 'exec /bin/true'")


def case_shell(ms, fixtures):
    """dash ends `sh -c` with _exit (no destructors): the image is still written and the status kept."""
    proc = run(ms, ["run", "--summary", "--", "/bin/sh", "-c", "exit 4"])
    expect(proc, 4, stdout_has="exited with status 4", what="sh -c 'exit 4'")


def case_damaged(ms, fixtures):
    prog = os.path.join(fixtures, "cli_damage")
    for mode in ("empty", "garbage", "truncated", "noroot"):
        expect(run(ms, ["run", "--", prog, mode]), 1, stderr_has="damaged", what=f"damaged image ({mode})")


def case_exit_status(ms, fixtures):
    prog = os.path.join(fixtures, "cli_single")
    with tempfile.TemporaryDirectory() as tmp:
        proc = run(ms, ["run", "--summary", "--", prog, os.path.join(tmp, "e.json"), "3"])
        expect(proc, 3, stdout_has="exited with status 3", what="exit status 3")
        proc = run(ms, ["run", "--json", "-", "--", prog, os.path.join(tmp, "e.json"), "0"])
        expect(proc, 0, stdout_has="total_allocations", what="--json -")
        if not proc.stdout.lstrip().startswith("{"):
            raise Failure(f"--json - printed more than the JSON:\n{proc.stdout[:500]}")


def case_options(ms, fixtures):
    """Every display option is accepted and changes the text as documented."""
    prog = os.path.join(fixtures, "cli_single")
    with tempfile.TemporaryDirectory() as tmp:
        exp = os.path.join(tmp, "e.json")
        full = run(ms, ["run", "--", prog, exp])
        expect(full, 0, what="plain run")
        summary = run(ms, ["run", "--summary", "--", prog, exp])
        expect(summary, 0, what="--summary")
        if len(summary.stdout) >= len(full.stdout):
            raise Failure(f"--summary is not shorter than the full report:\n{summary.stdout}")
        for args in (["--top", "3"], ["--group-by", "thread"], ["--group-by", "label"], ["--group-by", "size"],
                     ["--exact"], ["--budget", "64M"]):
            expect(run(ms, ["run"] + args + ["--", prog, exp]), 0, what=" ".join(args))
        # An unwritable --json destination fails before the program runs.
        marker = os.path.join(tmp, "ran")
        expect(run(ms, ["run", "--json", os.path.join(tmp, "no", "such", "dir.json"), "--", "/bin/touch", marker]),
               1, stderr_has="cannot write", what="--json into a missing directory")
        if os.path.exists(marker):
            raise Failure("memscope ran the program although --json could not be written")
        # A budget too small for the program: the run still succeeds and says events were dropped.
        expect(run(ms, ["run", "--budget", "1", "--", prog, exp]), 0, stderr_has="lower bound", what="--budget 1")


def wait_for(path, proc, seconds=30):
    deadline = time.time() + seconds
    while not os.path.exists(path):
        if proc.poll() is not None or time.time() > deadline:
            raise Failure(f"the fixture did not start ({path} missing)")
        time.sleep(0.02)


def case_signal_forwarding(ms, fixtures):
    """SIGTERM/SIGINT/SIGHUP sent to memscope reach the program; memscope stays to report."""
    prog = os.path.join(fixtures, "cli_signal")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        with tempfile.TemporaryDirectory() as tmp:
            ready = os.path.join(tmp, "ready")
            p = subprocess.Popen([ms, "run", "--summary", "--", prog, ready, "handle"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            wait_for(ready, p)
            p.send_signal(sig)
            out, err = p.communicate(timeout=60)
            proc = subprocess.CompletedProcess(p.args, p.returncode, out, err)
            expect(proc, 10 + int(sig), stdout_has="total", what=f"forwarded {sig.name}, handled")
        with tempfile.TemporaryDirectory() as tmp:
            ready = os.path.join(tmp, "ready")
            p = subprocess.Popen([ms, "run", "--", prog, ready, "default"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            wait_for(ready, p)
            p.send_signal(sig)
            out, err = p.communicate(timeout=60)
            proc = subprocess.CompletedProcess(p.args, p.returncode, out, err)
            expect(proc, 1, stderr_has=f"killed by signal {int(sig)}", what=f"forwarded {sig.name}, fatal")


def case_terminal_interrupt(ms, fixtures):
    """Ctrl-C on a terminal reaches the program once: the kernel signals the whole foreground group, and
    memscope does not forward that signal a second time."""
    import pty
    prog = os.path.join(fixtures, "cli_signal")
    with tempfile.TemporaryDirectory() as tmp:
        ready = os.path.join(tmp, "ready")
        pid, master = pty.fork()
        if pid == 0:
            try:
                os.execv(ms, [ms, "run", "--summary", "--", prog, ready, "handle"])
            finally:
                os._exit(127)
        deadline = time.time() + 30
        while not os.path.exists(ready):
            if time.time() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise Failure("the fixture did not start under a terminal")
            time.sleep(0.02)
        os.write(master, b"\x03")  # the terminal's interrupt character: SIGINT to the foreground group
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 10 + signal.SIGINT:
            raise Failure(f"expected exit {10 + signal.SIGINT} (one SIGINT; 99 means it came twice), got {code}\n"
                          f"{out.decode(errors='replace')[-2000:]}")


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    case, ms, fixtures = sys.argv[1:]
    fn = globals().get("case_" + case)
    if fn is None:
        print(f"unknown case {case}", file=sys.stderr)
        return 2
    try:
        fn(ms, fixtures)
    except Failure as e:
        print(f"FAIL ({case}): {e}")
        return 1
    print(f"OK: {case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
