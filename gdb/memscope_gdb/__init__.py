"""memscope for GDB: heap snapshots of a program recorded by libmemscope.

Layers: engine (ctypes bridge to libmemscope-engine.so), store (find and
open the store in the inferior, cache it per stop), settings, format, args;
then thin command modules (commands_snapshot, commands_block) and printers.

register() is idempotent: gdb/memscope.py and the auto-load script beside
libmemscope.so may both call it, once per objfile load.
"""

import gdb

from . import commands_block
from . import commands_save
from . import commands_snapshot
from . import commands_stacks
from . import commands_time
from . import printers
from . import settings
from . import store
from . import symbols

_registered = []

COMMANDS = commands_snapshot.COMMANDS + commands_block.COMMANDS + commands_stacks.COMMANDS + commands_time.COMMANDS + commands_save.COMMANDS


class MemscopePrefix(gdb.Command):
    """memscope: heap snapshots from the event store libmemscope.so keeps in the program."""

    def __init__(self):
        super().__init__("memscope", gdb.COMMAND_DATA, gdb.COMPLETE_COMMAND, True)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("memscope: unknown command '%s' (see 'help memscope')." % arg.strip())
        gdb.execute("help memscope", from_tty)


def _prefix_doc():
    summaries = ["  %-19s -- %s" % (cls.command, cls.__doc__.splitlines()[0]) for cls in COMMANDS]
    return "\n".join([
        "memscope: heap snapshots from the event store libmemscope.so keeps in the program.",
        "",
        "Works on a process stopped in GDB and on a core file (kernel or gcore);",
        "it never calls functions in the program. Commands:",
        "",
        *summaries,
        "",
        "Each is also a subcommand (memscope snapshot ...). 'help memscope-snapshot' for options.",
        "Settings: set memscope engine-library PATH (or MEMSCOPE_ENGINE_LIBRARY).",
    ])


def register(plugin_dir=None, engine_dir=None, objfile=None):
    """Registers commands, settings, printers and event handlers (once).

    plugin_dir: where memscope.py lives (for the build-tree engine lookup);
    engine_dir: a directory holding libmemscope-engine.so (auto-load script);
    objfile: the objfile an auto-load script runs for (printers).
    """
    if plugin_dir:
        settings.set_plugin_dir(plugin_dir)
    if engine_dir:
        settings.add_engine_dir(engine_dir)
    if not _registered:
        MemscopePrefix.__doc__ = _prefix_doc()
        MemscopePrefix()
        settings.register()
        symbols.register()
        for cls in COMMANDS:
            cls()
            cls("memscope " + cls.command[len("memscope-"):])
        store.connect_events()
        printers.register()
        _registered.append(True)
    if objfile is not None:
        printers.register_for(objfile)
