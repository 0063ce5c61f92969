"""Finding the memscope store in the selected inferior and keeping it open.

The store root is found by its symbol (memscope_store_root) first; where the
symbol is gone, by searching writable memory for the root's 16-byte magic
(libmemscope's own .data/.bss first, then every writable region) and letting
the engine validate each candidate. Nothing here calls a function in the
inferior, so a live process and a core are read the same way.

An opened store (a History) is cached per inferior until the program moves
on: resuming, loading objfiles or writing memory from GDB invalidates it, so
several commands at one stop read the store once.
"""

import errno
import os
import re

import gdb

from . import engine as eng
from . import settings

STORE_SYMBOL = "memscope_store_root"
STORE_MAGIC = b"memscope-store\x00\x01"
LIBRARY_PREFIX = "libmemscope"

NO_STORE = "no memscope store found in this process: is libmemscope.so loaded?"

_cache = {"key": None, "history": None}
_generation = [0]
stats = {"opens": 0}  # stores opened (read out of the inferior) since the plugin loaded; the tests read it


def invalidate(*_event):
    """Drops the cached store (connected to GDB events that change memory)."""
    _generation[0] += 1
    history = _cache["history"]
    _cache["key"] = _cache["history"] = None
    if history is not None:
        history.close()


def connect_events():
    """Connects invalidate to every GDB event after which the store may differ."""
    for name in ("cont", "new_objfile", "clear_objfiles", "exited", "memory_changed",
                 "inferior_call", "new_inferior", "inferior_deleted"):
        registry = getattr(gdb.events, name, None)
        if registry is not None:
            registry.connect(invalidate)


def selected_inferior():
    """The selected inferior, or a GdbError when there is nothing to read."""
    inferior = gdb.selected_inferior()
    if inferior is None or inferior.pid == 0:
        raise gdb.GdbError("no process and no core file: run the program, attach to it, or load a core first.")
    thread = gdb.selected_thread()
    if thread is not None and thread.is_running():
        raise gdb.GdbError("the selected thread is running: interrupt the program first.")
    return inferior


def history():
    """The opened store of the selected inferior (read once per stop)."""
    inferior = selected_inferior()
    key = (inferior.num, inferior.pid, _generation[0], settings.engine_setting())
    if _cache["key"] == key:
        return _cache["history"]
    invalidate()
    stats["opens"] += 1
    opened = _open(inferior)
    _cache["key"] = (inferior.num, inferior.pid, _generation[0], settings.engine_setting())
    _cache["history"] = opened
    return opened


def _open(inferior):
    """Finds the root (symbol, else scan) and opens it; the engine is loaded
    only once there is something to open, so a process without memscope
    gets that answer even where the engine cannot be found."""
    root = root_by_symbol()
    if root is not None:
        engine = settings.engine()
        try:
            return eng.open_history(engine, inferior, root, "symbol " + STORE_SYMBOL)
        except eng.EngineError as exc:
            raise gdb.GdbError(_explain(exc, inferior, root)) from None
    return _open_by_scan(inferior)


def _explain(exc, inferior, root):
    """The whole error sentence for a store the engine refused: the engine's
    own words, naming the store's address, made plain for the two cases
    users meet most."""
    text = str(exc)
    where = "memscope store at 0x%x: " % root
    if exc.code == -errno.ENOENT:
        return where + "its magic does not match (the store is damaged, or recording has not started yet)."
    if exc.code == -errno.EPROTO and "version" not in text:
        return where + "store ABI version %s is not known to this engine." % _read_u32(inferior, root + 16)
    if "0x%x" % root in text:
        return text
    return where + text


def _read_u32(inferior, addr):
    try:
        return int.from_bytes(inferior.read_memory(addr, 4).tobytes(), "little")
    except gdb.MemoryError:
        return "(unreadable)"


def root_by_symbol():
    """Address of memscope_store_root from debug info or minimal symbols, or None."""
    try:
        value = gdb.parse_and_eval("&" + STORE_SYMBOL)
    except gdb.error:
        return None
    return int(value)


# Candidates the engine refused after reading past their root, after which
# the scan stops: each such refusal may have read a whole chunk list, and a
# damaged core with thousands of copies of a root would otherwise be read
# thousands of times (memscope inspect bounds its scan the same way).
MAX_REFUSED_CANDIDATES = 16


def _open_by_scan(inferior):
    """Opens the first magic match in writable memory that the engine accepts."""
    engine = None
    failures = []
    seen = set()
    for start, end in _candidate_ranges():
        for addr in _search(inferior, start, end):
            if addr in seen:
                continue
            seen.add(addr)
            if engine is None:
                engine = settings.engine()
            try:
                return eng.open_history(engine, inferior, addr, "magic scan")
            except eng.EngineError as exc:
                if exc.code != -errno.ENOENT:
                    failures.append((addr, exc))
            if len(failures) >= MAX_REFUSED_CANDIDATES:
                break
        if len(failures) >= MAX_REFUSED_CANDIDATES:
            break
    for addr, exc in failures:
        if exc.code == -errno.EPROTO:
            raise gdb.GdbError(_explain(exc, inferior, addr))
    if failures:
        addr, exc = failures[0]
        raise gdb.GdbError(_explain(exc, inferior, addr))
    raise gdb.GdbError(NO_STORE + _shell_hint(inferior))


def _shell_hint(inferior):
    """Why a program started from GDB may lack the library: libmemscope takes
    itself out of LD_PRELOAD for programs it execs (DESIGN.md), and GDB starts
    programs through a shell unless told otherwise."""
    connection = getattr(inferior, "connection", None)
    if connection is None or connection.type != "native" or inferior.was_attached:
        return ""
    if not gdb.parameter("startup-with-shell"):
        return ""
    preload = gdb.execute("show environment LD_PRELOAD", to_string=True)
    if LIBRARY_PREFIX not in preload:
        return ""
    return (" (GDB started the program through a shell, and libmemscope keeps LD_PRELOAD from what a shell"
            " execs: use 'set exec-wrapper env LD_PRELOAD=...' instead, or 'set startup-with-shell off')")


def _search(inferior, start, end):
    """Addresses in [start, end) where the magic begins, 8-byte aligned."""
    while start < end:
        try:
            found = inferior.search_memory(start, end - start, STORE_MAGIC)
        except gdb.error:
            return
        if found is None:
            return
        if found % 8 == 0:
            yield found
        start = found + 1


_SECTION = re.compile(r"^\s*0x([0-9a-f]+) - 0x([0-9a-f]+) is (\S+)(?: in (.+))?$")
_MAPPING = re.compile(r"^\s*0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+([rwxsp-]{4})\s*(.*)$")
_CORE_LOAD = re.compile(r"^\s*\[\d+\]\s+0x([0-9a-f]+)->0x([0-9a-f]+) at 0x[0-9a-f]+: (load\S*) (.*)$")


def _candidate_ranges():
    """Writable ranges to search, most likely first, without repeats."""
    library, data = [], []
    for start, end, name, path in _sections():
        if name not in (".data", ".bss"):
            continue
        if path is not None and os.path.basename(path).startswith(LIBRARY_PREFIX):
            library.append((start, end))
        else:
            data.append((start, end))
    done = []
    for group in (library, data, _writable_regions()):
        for start, end in group:
            if (start, end) not in done:
                done.append((start, end))
                yield start, end


def _sections():
    """(start, end, section, objfile path or None) for every section GDB knows."""
    out = gdb.execute("info files", to_string=True)
    for line in out.splitlines():
        match = _SECTION.match(line)
        if match:
            yield int(match.group(1), 16), int(match.group(2), 16), match.group(3), match.group(4)


def _writable_regions():
    """Writable memory of a live process (mappings) or of a core (load segments)."""
    regions = []
    try:
        out = gdb.execute("info proc mappings", to_string=True)
    except gdb.error:
        out = ""
    for line in out.splitlines():
        match = _MAPPING.match(line)
        if match and "w" in match.group(3) and not match.group(4).startswith("[v"):
            regions.append((int(match.group(1), 16), int(match.group(2), 16)))
    if regions:
        return sorted(regions, key=lambda r: r[1] - r[0])  # smallest first, as below
    out = gdb.execute("maintenance info sections", to_string=True)
    in_core = False
    for line in out.splitlines():
        if line.startswith("Core file:"):
            in_core = True
        elif not line.startswith(" "):
            in_core = False
        match = _CORE_LOAD.match(line)
        if in_core and match and "READONLY" not in match.group(4).split():
            regions.append((int(match.group(1), 16), int(match.group(2), 16)))
    # Smallest first: the root sits in a library's small data segment, while
    # the store's own chunks fill the biggest ones.
    return sorted(regions, key=lambda r: r[1] - r[0])
