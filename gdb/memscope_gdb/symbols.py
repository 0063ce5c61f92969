"""The symbolizer GDB lends the engine: return address -> function, file:line, library.

The engine renders call stacks (memscope-top --by site, memscope-stack,
memscope-block, memscope-export --folded, the JSON's "stacks") and asks for
names through a struct memscope_symbolizer: one call per render with every
distinct return address it needs. Each address is looked up once per GDB
stop with GDB's own symbol tables (gdb.block_for_pc, gdb.find_pc_line,
Progspace.solib_name), so it works alike on a live process and on a core,
and never calls into the program. A return address points after its call:
the lookup is made at pc - 1.

The callback is the second place C calls into Python: it never lets an
exception escape into ctypes (a failure leaves that frame unknown).
"""

import ctypes
import re

import gdb

from . import engine as eng
from . import settings

_cache = {}   # pc -> (function, file, line, module) as bytes / int, for this stop
_keep = []    # the bytes handed to C during one render


def _clear(_event=None):
    _cache.clear()


def _function_at(pc):
    """The function holding pc: from debug info (inlined frames by their own name), else the minimal symbol."""
    try:
        block = gdb.block_for_pc(pc)
    except RuntimeError:
        block = None
    while block is not None and block.function is None:
        block = block.superblock
    if block is not None and block.function is not None:
        return block.function.print_name
    try:
        text = gdb.execute("info symbol 0x%x" % pc, to_string=True)
    except gdb.error:
        return None
    match = re.match(r"(.+?)(?: \+ \d+)? in section ", text)
    return match.group(1) if match else None


def _module_at(pc):
    progspace = gdb.current_progspace()
    name = progspace.solib_name(pc)
    if name:
        return name
    try:
        objfile = progspace.objfile_for_address(pc)  # GDB 14+
    except AttributeError:
        objfile = None
    if objfile is not None:
        return objfile.filename
    return progspace.filename


def describe(pc):
    """(function, file, line, module) of a return address, cached per stop."""
    found = _cache.get(pc)
    if found is not None:
        return found
    look = pc - 1 if pc else pc
    function = _function_at(look)
    sal = gdb.find_pc_line(look)
    filename = sal.symtab.filename if sal.symtab is not None and sal.line else None
    found = (function.encode() if function else None, filename.encode() if filename else None,
             sal.line if filename else 0, (_module_at(look) or "").encode() or None)
    _cache[pc] = found
    return found


def _symbolize(_ctx, pcs, n, out):
    try:
        for i in range(n):
            function, filename, line, module = describe(pcs[i])
            frame = out[i]
            frame.function = function
            frame.file = filename
            frame.line = line
            frame.module = module
            _keep.append((function, filename, module))
        return 0
    except Exception:  # pylint: disable=broad-except
        return -1      # never into ctypes: the engine shows addresses only


_FN = eng.SYMBOLIZE_FN(_symbolize)
_SYMBOLIZER = eng.Symbolizer(_FN, None)


def attach(opts):
    """Points a RenderOptions at GDB's symbolizer (with `set memscope alloc-fns`); returns opts."""
    _keep.clear()
    names = [name.encode() for name in settings.alloc_fns()]
    if names:
        array = (ctypes.c_char_p * (len(names) + 1))(*names, None)
        _keep.append(array)  # alive while the engine renders
        _SYMBOLIZER.alloc_fns = ctypes.cast(array, ctypes.POINTER(ctypes.c_char_p))
    else:
        _SYMBOLIZER.alloc_fns = None
    opts.symbolizer = ctypes.addressof(_SYMBOLIZER)
    return opts


def register():
    gdb.events.stop.connect(_clear)
    gdb.events.new_objfile.connect(_clear)
    gdb.events.exited.connect(_clear)
