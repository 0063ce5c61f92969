"""GDB-side helper of the memscope GDB tests (loaded with -x before the commands).

  capture NAME COMMAND...   runs COMMAND and prints one line
                            "@@CAPTURE {json}" with its output, or its error
  capture-eval NAME EXPR    prints "@@CAPTURE {json}" with EXPR's integer value

The test driver (gdbtest.py) collects these lines, so each command's output
and error can be checked on its own.
"""

import json

import gdb


def _emit(record):
    gdb.write("@@CAPTURE " + json.dumps(record) + "\n")
    gdb.flush()


class Capture(gdb.Command):
    """capture NAME COMMAND: run COMMAND, print its output or error as JSON."""

    def __init__(self):
        super().__init__("capture", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        name, _, command = arg.strip().partition(" ")
        record = {"name": name, "command": command}
        try:
            record["output"] = gdb.execute(command, to_string=True)
        except gdb.error as exc:
            record["error"] = str(exc)
        _emit(record)


class CaptureEval(gdb.Command):
    """capture-eval NAME EXPR: print EXPR's integer value as JSON."""

    def __init__(self):
        super().__init__("capture-eval", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        name, _, expr = arg.strip().partition(" ")
        record = {"name": name, "command": expr}
        try:
            record["value"] = int(gdb.parse_and_eval(expr))
        except gdb.error as exc:
            record["error"] = str(exc)
        _emit(record)


Capture()
CaptureEval()
