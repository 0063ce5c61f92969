"""Pretty printers for memscope's public C types (memscope.h).

struct memscope_stats, struct memscope_thread_stats and struct
memscope_allocation print their fields with human sizes and times; a
struct memscope_snapshot * prints as a snapshot handle (the struct is opaque
and GDB never calls functions, so the handle's address is all there is).
Registered per objfile: libmemscope.so itself and every objfile whose debug
info includes memscope.h.
"""

import gdb

from . import format as fmt

_BYTES = {"total_allocated", "total_deallocated", "current_memory", "peak_memory",
          "allocated_bytes", "released_bytes", "size"}
_TIMES = {"peak_time_ns", "time_ns"}
_HEX = {"address"}


def _field_text(value, name):
    if name in _HEX:
        return "0x%x" % int(value)
    if name in _BYTES:
        return fmt.size_with_bytes(int(value))
    if name in _TIMES:
        return fmt.human_time(int(value))
    if value.type.strip_typedefs().code == gdb.TYPE_CODE_PTR:
        return _c_string(int(value))
    return str(int(value))


def _c_string(addr, limit=4096):
    """A label string read from the inferior (at most limit bytes, as the store allows)."""
    if addr == 0:
        return "NULL"
    inferior = gdb.selected_inferior()
    data = b""
    while len(data) < limit:
        try:
            here = addr + len(data)
            # Never cross a page boundary in one read: the next page may not exist.
            piece = inferior.read_memory(here, min(64, 4096 - here % 4096)).tobytes()
        except gdb.MemoryError:
            if data:
                break
            return "<unreadable 0x%x>" % addr
        end = piece.find(b"\0")
        if end >= 0:
            data += piece[:end]
            break
        data += piece
    return '"%s"' % data[:limit].decode("utf-8", "replace").replace("\\", "\\\\").replace('"', '\\"')


class StructPrinter:
    """Prints every field of a memscope struct on one line, in declaration order."""

    def __init__(self, value):
        self.value = value

    def to_string(self):
        fields = self.value.type.strip_typedefs().fields()
        parts = ["%s = %s" % (f.name, _field_text(self.value[f.name], f.name)) for f in fields]
        return "{%s}" % ", ".join(parts)


class SnapshotHandlePrinter:
    """A struct memscope_snapshot *: its address, marked as a snapshot handle."""

    def __init__(self, value):
        self.value = value

    def to_string(self):
        addr = int(self.value)
        if addr == 0:
            return "NULL memscope snapshot handle"
        return "0x%x <memscope snapshot handle>" % addr


_STRUCTS = {"memscope_stats", "memscope_thread_stats", "memscope_allocation"}


def lookup(value):
    """The printer for value, or None (the function GDB's printer list calls)."""
    vtype = value.type.strip_typedefs()
    if vtype.code == gdb.TYPE_CODE_STRUCT and vtype.tag in _STRUCTS:
        return StructPrinter(value)
    if vtype.code == gdb.TYPE_CODE_PTR:
        target = vtype.target().strip_typedefs()
        if target.code == gdb.TYPE_CODE_STRUCT and target.tag == "memscope_snapshot":
            return SnapshotHandlePrinter(value)
    return None


lookup.name = "memscope"
lookup.enabled = True


def _wants_printers(objfile):
    name = objfile.filename or ""
    if name.rsplit("/", 1)[-1].startswith("libmemscope"):
        return True
    try:
        for tag in _STRUCTS:
            if objfile.lookup_static_symbol(tag, gdb.SYMBOL_STRUCT_DOMAIN) is not None:
                return True
            if objfile.lookup_global_symbol(tag, gdb.SYMBOL_STRUCT_DOMAIN) is not None:
                return True
    except (gdb.error, ValueError):
        return False
    return False


def register_for(objfile):
    """Adds the printers to objfile when it is libmemscope or includes memscope.h."""
    if objfile is None or not objfile.is_valid() or lookup in objfile.pretty_printers:
        return
    if _wants_printers(objfile):
        objfile.pretty_printers.append(lookup)


def _on_new_objfile(event):
    register_for(event.new_objfile)


def register():
    for objfile in gdb.objfiles():
        register_for(objfile)
    gdb.events.new_objfile.connect(_on_new_objfile)
