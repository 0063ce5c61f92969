"""memscope-block: what the store knows about one address."""

import ctypes

import gdb

from . import args
from . import format as fmt
from .commands_snapshot import MemscopeCommand, take


def address_of(command, expr):
    """The address an expression designates: a pointer's or integer's value,
    an array's or function's location. Evaluated by GDB, never by calling."""
    try:
        value = gdb.parse_and_eval(expr)
    except gdb.error as exc:
        raise gdb.GdbError("%s: cannot evaluate '%s': %s." % (command, expr, str(exc).rstrip("."))) from None
    code = value.type.strip_typedefs().code
    if code in (gdb.TYPE_CODE_ARRAY, gdb.TYPE_CODE_FUNC) and value.address is not None:
        value = value.address
        code = gdb.TYPE_CODE_PTR
    if code not in (gdb.TYPE_CODE_PTR, gdb.TYPE_CODE_INT, gdb.TYPE_CODE_ENUM, gdb.TYPE_CODE_CHAR,
                    gdb.TYPE_CODE_BOOL, gdb.TYPE_CODE_REF, gdb.TYPE_CODE_RVALUE_REF):
        raise gdb.GdbError("%s: '%s' is a %s, not an address (try &%s or a pointer)."
                           % (command, expr, value.type, expr))
    if code in (gdb.TYPE_CODE_REF, gdb.TYPE_CODE_RVALUE_REF):
        value = value.referenced_value().address
    return int(value) & 0xFFFFFFFFFFFFFFFF


class BlockCommand(MemscopeCommand):
    """Print the live block that holds an address, and that address's history.

Usage: memscope-block [--exact] [--at POINT] ADDR

ADDR is any GDB expression for an address (a pointer variable, p->buf + 8,
0x55555555a2c0). Tells whether ADDR lies in a live block (and where in it),
prints the block's record (address, size, thread, time, label), the call
stack it was allocated from (function, file:line, library per frame) and the
events the store holds for that block's address: allocated, reallocated,
labeled, freed, with times and threads.
Example: memscope-block node->payload"""

    command = "memscope-block"
    options = frozenset({"--exact", "--at"})

    def invoke(self, arg, from_tty):
        words = arg.split()
        leading = []
        # Options come first; the rest of the line is the expression, spaces and all.
        while words and words[0].startswith("--"):
            leading.append(words.pop(0))
            if leading[-1] == "--at" and words:
                leading.append(words.pop(0))
        options = args.parse(self.command, " ".join(leading), self.options)
        expr = arg.strip()
        for word in leading:
            expr = expr[len(word):].lstrip()
        if not expr:
            raise gdb.GdbError("%s: give the address to look up (see 'help %s')." % (self.command, self.command))
        addr = address_of(self.command, expr)
        history, snap = take(options)
        opts = options.render_options(0, fmt.color_enabled())
        engine = history.engine
        gdb.write(engine.take_text(engine.history_render_block, history.handle, snap.handle,
                                   ctypes.c_uint64(addr), ctypes.byref(opts)))


COMMANDS = (BlockCommand,)
