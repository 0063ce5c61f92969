"""memscope-save: write the store of the inferior (live or core) as a trace file.

The engine writes the history it read from the store (trace_abi.h,
memscope_history_write_trace); `memscope report FILE` reads it after GDB and
the process are gone, with every view the other front ends give.
"""

import ctypes
import os

import gdb

from . import args
from . import engine as eng
from . import format as fmt
from . import mappings
from . import store
from .commands_snapshot import MemscopeCommand


class SaveCommand(MemscopeCommand):
    """Write the recorded history of the program (live or core) to a trace file.

Usage: memscope-save FILE

Writes every event the store holds (allocations, releases, labels, marks,
call stacks, counters) and the process's file mappings (so the report
names functions and lines) to FILE in the memscope trace format, compressed;
FILE is replaced if it exists. Read it with 'memscope report FILE' (the
snapshot at any point, diffs, timelines), after the process is gone.
Example: memscope-save /tmp/server.trace"""

    command = "memscope-save"
    options = frozenset()

    def complete(self, text, word):
        return gdb.COMPLETE_FILENAME

    def invoke(self, arg, from_tty):
        options = args.parse(self.command, arg, self.options, max_positional=1)
        if not options.positional:
            raise gdb.GdbError("%s: give the trace file to write (see 'help %s')." % (self.command, self.command))
        path = os.path.expanduser(options.positional[0])
        history = store.history()
        err = eng.Error()
        modules = mappings.modules_payload()
        if modules:
            # The process's mappings go with the events, so the report names functions and lines;
            # a list the engine refuses only costs the names, never the figures.
            history.engine.history_add_modules(history.handle, modules, len(modules), ctypes.byref(err))
        rc = history.engine.history_write_trace(history.handle, path.encode(), ctypes.byref(err))
        if rc != 0:
            why = err.message.decode("utf-8", "replace") or history.engine.describe(rc)
            raise gdb.GdbError("%s: %s." % (self.command, why.rstrip(".")))
        info = history.info()
        gdb.write("memscope: wrote %d events (%d threads, %d marks) to %s: %s\n"
                  % (info.events, info.threads, info.marks, options.positional[0],
                     fmt.human_size(os.path.getsize(path))))


COMMANDS = (SaveCommand,)
