"""The call stack views: memscope-stack and memscope-export.

Stacks are recorded by the runtime (one id per allocation, deduplicated in
the store's stack table), grouped and rendered by the engine, and named by
GDB's symbol tables through symbols.py. memscope-top --by site|stack and
memscope-snapshot --group-by site|stack live in commands_snapshot.py;
memscope-block prints a block's stack.
"""

import os

import gdb

from . import args
from . import format as fmt
from .commands_snapshot import MemscopeCommand, take


class StackCommand(MemscopeCommand):
    """Print one recorded call stack: its frames and the live memory it holds.

Usage: memscope-stack [--exact] [--at POINT] ID

ID is a stack id as memscope-top --by stack, memscope-block and the JSON
snapshot show it. Prints the live blocks and bytes allocated from that
stack, then every frame, innermost first: return address, function,
file:line and library (from GDB's symbols, live or core). Frames of the
allocator itself (libmemscope, the malloc family, operator new, libstdc++,
libc) are marked [hidden].
Example: memscope-stack 3"""

    command = "memscope-stack"
    options = frozenset({"--exact", "--at"})

    def invoke(self, arg, from_tty):
        options = args.parse(self.command, arg, self.options, max_positional=1)
        if not options.positional:
            raise gdb.GdbError("%s: give the stack id to print (see 'help %s')." % (self.command, self.command))
        stack_id = args.positive(self.command, "ID", options.positional[0])
        _, snap = take(options)
        info = snap.stacks_info()
        if stack_id > info.stacks:
            if info.status:
                raise gdb.GdbError("%s: the stack table cannot be read: %s." % (
                    self.command, info.error.decode("utf-8", "replace").rstrip(".")))
            raise gdb.GdbError("%s: no stack %d: the store holds %d stacks." % (self.command, stack_id, info.stacks))
        gdb.write(snap.render_stack(stack_id, options.render_options(0, fmt.color_enabled())))


class ExportCommand(MemscopeCommand):
    """Write the live heap by call stack in the collapsed-stack (folded) format.

Usage: memscope-export --folded FILE [--at POINT]

One line per distinct call stack holding live memory, frames from the
outermost to the allocation site separated by ';', then the live bytes:
"main;parse;read_line 4096". flamegraph.pl, inferno-flamegraph and
speedscope read it. The allocator's own frames are left out; blocks
without a recorded stack appear as "[no stack]". FILE - prints it.
Example: memscope-export --folded heap.folded"""

    command = "memscope-export"
    options = frozenset({"--folded", "--at"})

    def complete(self, text, word):
        words = text.split()
        if words and words[-1] == "--folded" and text[-1].isspace():
            return gdb.COMPLETE_FILENAME
        if len(words) >= 2 and words[-2] == "--folded" and not text[-1].isspace():
            return gdb.COMPLETE_FILENAME
        return super().complete(text, word)

    def invoke(self, arg, from_tty):
        options = args.parse(self.command, arg, self.options)
        if options.folded is None:
            raise gdb.GdbError("%s: say what to write: --folded FILE (see 'help %s')." % (self.command, self.command))
        _, snap = take(options)
        text = snap.render_folded(options.render_options())
        if options.folded == "-":
            gdb.write(text)
            return
        path = os.path.expanduser(options.folded)
        try:
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise gdb.GdbError("%s: cannot write %s: %s." % (self.command, options.folded, exc.strerror)) from None
        gdb.write("memscope: wrote %d stacks (%s live) to %s\n"
                  % (text.count("\n"), fmt.human_size(snap.stats().current_memory), options.folded))


COMMANDS = (StackCommand, ExportCommand)
