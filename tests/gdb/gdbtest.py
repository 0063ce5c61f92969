"""Helpers of the memscope GDB end-to-end tests: run real `gdb -nx -batch`,
collect what each command printed, and fail with a readable message.

Paths come from the command line that CTest passes (see CMakeLists.txt).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77  # CTest SKIP_RETURN_CODE

HERE = os.path.dirname(os.path.abspath(__file__))


class Failure(Exception):
    """A check failed; the message says what was expected and what came."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def check_equal(actual, expected, what):
    if actual != expected:
        raise Failure("%s: expected %r, got %r" % (what, expected, actual))


class Paths:
    """Built artefacts and sources the tests use."""

    def __init__(self, args):
        for name in ("plugin", "library", "engine", "heap", "heap_linked", "damage", "build"):
            setattr(args, name, os.path.abspath(getattr(args, name)))
        self.plugin = args.plugin          # gdb/memscope.py
        self.library = args.library        # build/lib/libmemscope.so
        self.engine = args.engine          # build/lib/libmemscope-engine.so
        self.heap = args.heap              # gdb_heap fixture (run preloaded)
        self.heap_linked = args.heap_linked  # gdb_heap linked with -lmemscope
        self.damage = args.damage          # gdb_damage fixture
        self.build = args.build            # the CMake build directory (for cmake --install)
        self.libdir = os.path.dirname(os.path.abspath(args.library))


class Result:
    """One gdb run: return code, stdout, stderr and the captured records."""

    def __init__(self, argv, proc):
        self.argv = argv
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.records = {}
        for line in self.stdout.splitlines():
            if line.startswith("@@CAPTURE "):
                record = json.loads(line[len("@@CAPTURE "):])
                self.records[record["name"]] = record

    def describe(self):
        return "gdb command: %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            " ".join(self.argv), self.stdout[-6000:], self.stderr[-4000:])

    def output(self, name):
        """The output of capture NAME; fails if it errored."""
        record = self.records.get(name)
        if record is None:
            raise Failure("no output captured for %s\n%s" % (name, self.describe()))
        if "error" in record:
            raise Failure("%s (%s) failed: %s\n%s" % (name, record["command"], record["error"], self.describe()))
        return record.get("output", record.get("value"))

    def error(self, name):
        """The error of capture NAME; fails if it succeeded."""
        record = self.records.get(name)
        if record is None:
            raise Failure("no output captured for %s\n%s" % (name, self.describe()))
        if "error" not in record:
            raise Failure("%s (%s) was expected to fail, it printed:\n%s"
                          % (name, record["command"], record.get("output")))
        return record["error"]

    def no_traceback(self):
        for text in (self.stdout, self.stderr):
            for bad in ("Traceback", "Python Exception", "Error occurred in Python"):
                check(bad not in text, "a Python error reached the user (%r)\n%s" % (bad, self.describe()))


def run_gdb(paths, commands, program=None, program_args=(), core=None, env=None, plugin=True,
            init=(), timeout=180):
    """Runs gdb -nx -batch with -ex commands (and the capture helper)."""
    argv = ["gdb", "-nx", "-batch"]
    for command in init:
        argv += ["-iex", command]
    argv += ["-ex", "set python print-stack full", "-x", os.path.join(HERE, "capture.py")]
    if plugin:
        argv += ["-x", paths.plugin]
    for command in commands:
        argv += ["-ex", command]
    if core is not None:
        argv += [program, core] if program is not None else ["-c", core]
    elif program is not None:
        argv += ["--args", program, *program_args]
    full_env = dict(os.environ)
    full_env.pop("MEMSCOPE_ENGINE_LIBRARY", None)
    full_env.update(env or {})
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=full_env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise Failure("gdb did not finish within %d s (a hang): %s" % (timeout, " ".join(argv))) from None
    return Result(argv, proc)


def live_prelude(library):
    """Commands that start the program with library preloaded and stop at the checkpoint.

    startup-with-shell off: libmemscope removes itself from LD_PRELOAD for
    exec'd programs, so a shell started in between would keep it from the
    program.
    """
    return ["set startup-with-shell off", "set environment LD_PRELOAD=" + library,
            "break fixture_checkpoint", "run"]


class TempDir:
    """A temporary directory removed on exit (kept when MEMSCOPE_KEEP_TMP is set)."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="memscope-gdb-")
        return self.path

    def __exit__(self, *exc):
        if not os.environ.get("MEMSCOPE_KEEP_TMP"):
            shutil.rmtree(self.path, ignore_errors=True)


def main(cases, parser, paths_class=None):
    """Runs the case named on the command line with paths_class(args) (default
    Paths) as its paths; exit 0, 1 (failure) or 77 (skip)."""
    parser.add_argument("case", choices=sorted(cases))
    args = parser.parse_args()
    paths = (paths_class or Paths)(args)
    try:
        cases[args.case](paths)
    except Failure as exc:
        print("FAIL %s: %s" % (args.case, exc))
        return 1
    except Skip as exc:
        print("SKIP %s: %s" % (args.case, exc))
        return SKIP
    print("PASS %s" % args.case)
    return 0


class Skip(Exception):
    """The case cannot run on this machine (the message says why)."""


if __name__ == "__main__":
    sys.exit("gdbtest.py is a helper; run test_gdb.py")
