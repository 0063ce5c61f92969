"""The ctypes bridge to libmemscope-engine.so (memscope/engine.h).

Python never parses the store: it finds the engine library, declares the
engine's functions, and gives the engine a memory source whose read callback
copies the inferior's memory (read through GDB, in pieces of at most 4 MiB)
straight into the engine's buffer. Everything else (validation, replay,
grouping, rendering) happens in C, the same code the CLI and the in-process
API run.

The read callback is the one place where C calls back into Python. It is kept
tiny and never lets an exception escape into ctypes (ctypes would print it and
hand the engine a success code with garbage in the buffer): a fault becomes
-EFAULT, anything else from GDB is remembered, and every later call fails at
once without touching GDB again.
"""

import ctypes
import errno
import os

import gdb

ENGINE_LIBRARY_NAME = "libmemscope-engine.so"
ENGINE_ENV = "MEMSCOPE_ENGINE_LIBRARY"
ENGINE_SETTING = "set memscope engine-library"

# memscope/engine.h: sections, grouping, sorting, snapshot points.
SECTION_SUMMARY = 0x1
SECTION_THREADS = 0x2
SECTION_BLOCKS = 0x4

GROUP_BY = {"none": 0, "thread": 1, "label": 2, "size": 3, "stack": 4, "site": 5}
SORT_BY = {"size": 0, "count": 1, "time": 2, "address": 3}

AT_END, AT_TIME, AT_EVENT, AT_MARK, AT_PEAK = 0, 1, 2, 3, 4


class Source(ctypes.Structure):
    """struct memscope_source."""


READ_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t)
Source._fields_ = [("read", READ_FN), ("ctx", ctypes.c_void_p)]


class Error(ctypes.Structure):
    """struct memscope_error."""

    _fields_ = [("message", ctypes.c_char * 256)]


class HistoryInfo(ctypes.Structure):
    """struct memscope_history_info."""

    _fields_ = [
        ("events", ctypes.c_uint64),
        ("first_time_ns", ctypes.c_uint64),
        ("last_time_ns", ctypes.c_uint64),
        ("dropped_events", ctypes.c_uint64),
        ("chunk_bytes", ctypes.c_uint64),
        ("budget_bytes", ctypes.c_uint64),
        ("marks", ctypes.c_uint64),
        ("pid", ctypes.c_uint32),
        ("threads", ctypes.c_uint32),
        ("abi_version", ctypes.c_uint32),
        ("horizon_ns", ctypes.c_uint64),
        ("folded_events", ctypes.c_uint64),
    ]


class Point(ctypes.Structure):
    """struct memscope_point."""

    _fields_ = [("kind", ctypes.c_int), ("value", ctypes.c_uint64), ("mark", ctypes.c_char_p)]


class RenderOptions(ctypes.Structure):
    """struct memscope_render_options."""

    _fields_ = [
        ("top", ctypes.c_uint),
        ("sections", ctypes.c_uint),
        ("group_by", ctypes.c_int),
        ("sort_by", ctypes.c_int),
        ("color", ctypes.c_int),
        ("exact_bytes", ctypes.c_int),
        ("symbolizer", ctypes.c_void_p),  # const struct memscope_symbolizer * (symbols.attach)
    ]


class Frame(ctypes.Structure):
    """struct memscope_frame."""

    _fields_ = [("function", ctypes.c_char_p), ("file", ctypes.c_char_p), ("line", ctypes.c_uint32),
                ("module", ctypes.c_char_p)]


SYMBOLIZE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t,
                                ctypes.POINTER(Frame))


class Symbolizer(ctypes.Structure):
    """struct memscope_symbolizer."""

    _fields_ = [("symbolize", SYMBOLIZE_FN), ("ctx", ctypes.c_void_p),
                ("alloc_fns", ctypes.POINTER(ctypes.c_char_p))]  # NULL-ended names, or NULL


class StacksInfo(ctypes.Structure):
    """struct memscope_stacks_info."""

    _fields_ = [("stacks", ctypes.c_uint64), ("frames", ctypes.c_uint64), ("unreadable", ctypes.c_uint64),
                ("truncated", ctypes.c_uint64), ("lost", ctypes.c_uint64), ("method", ctypes.c_uint32),
                ("max_depth", ctypes.c_uint32), ("status", ctypes.c_int), ("error", ctypes.c_char_p)]


STACK_METHODS = {0: "none", 1: "caller", 2: "fp", 3: "unwind", 4: "auto"}  # store_abi.h enum memscope_stack_method


class Stats(ctypes.Structure):
    """struct memscope_stats."""

    _fields_ = [(name, ctypes.c_uint64) for name in (
        "total_allocations", "total_deallocations", "active_allocations", "total_allocated",
        "total_deallocated", "current_memory", "peak_memory", "unmatched_deallocations",
        "dropped_events", "peak_time_ns", "time_ns", "events", "reallocations", "threads",
        "overlapping_allocations")]


class Allocation(ctypes.Structure):
    """struct memscope_allocation."""

    _fields_ = [
        ("address", ctypes.c_uint64),
        ("size", ctypes.c_uint64),
        ("time_ns", ctypes.c_uint64),
        ("thread", ctypes.c_uint32),
        ("stack", ctypes.c_uint32),
        ("label_name", ctypes.c_char_p),
        ("label_type", ctypes.c_char_p),
    ]


_P = ctypes.c_void_p
_PROTOTYPES = {
    # name: (restype, argtypes)
    "memscope_history_open": (ctypes.c_int, [ctypes.POINTER(Source), ctypes.c_uint64,
                                             ctypes.POINTER(_P), ctypes.POINTER(Error)]),
    "memscope_history_close": (None, [_P]),
    "memscope_history_info": (ctypes.c_int, [_P, ctypes.POINTER(HistoryInfo)]),
    "memscope_history_snapshot": (ctypes.c_int, [_P, ctypes.POINTER(Point), ctypes.POINTER(_P)]),
    "memscope_snapshot_render_text": (ctypes.c_int, [_P, ctypes.POINTER(RenderOptions), ctypes.POINTER(_P),
                                                     ctypes.POINTER(ctypes.c_size_t)]),
    "memscope_snapshot_render_json": (ctypes.c_int, [_P, ctypes.POINTER(RenderOptions), ctypes.POINTER(_P),
                                                     ctypes.POINTER(ctypes.c_size_t)]),
    "memscope_history_render_block": (ctypes.c_int, [_P, _P, ctypes.c_uint64, ctypes.POINTER(RenderOptions),
                                                     ctypes.POINTER(_P), ctypes.POINTER(ctypes.c_size_t)]),
    "memscope_text_free": (None, [_P]),
    "memscope_snapshot_find_block": (ctypes.c_int, [_P, ctypes.c_uint64, ctypes.POINTER(Allocation)]),
    "memscope_snapshot_free": (None, [_P]),
    "memscope_snapshot_stats": (ctypes.c_int, [_P, ctypes.POINTER(Stats)]),
    "memscope_strerror": (ctypes.c_char_p, [ctypes.c_int]),
    "memscope_snapshot_stacks_info": (ctypes.c_int, [_P, ctypes.POINTER(StacksInfo)]),
    "memscope_snapshot_render_stack": (ctypes.c_int, [_P, ctypes.c_uint32, ctypes.POINTER(RenderOptions),
                                                      ctypes.POINTER(_P), ctypes.POINTER(ctypes.c_size_t)]),
    "memscope_snapshot_render_folded": (ctypes.c_int, [_P, ctypes.POINTER(RenderOptions), ctypes.POINTER(_P),
                                                       ctypes.POINTER(ctypes.c_size_t)]),
    "memscope_history_write_trace": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.POINTER(Error)]),
    "memscope_history_add_modules": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(Error)]),
}


class EngineError(gdb.GdbError):
    """An engine call failed; .code is the negative errno it returned."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def _missing(path, name):
    """Stands in for an entry point an older engine library lacks."""
    def call(*_args):
        raise gdb.GdbError("the memscope engine %s lacks %s: rebuild it, or point '%s PATH' at a newer one."
                           % (path, name, ENGINE_SETTING))
    return call


class Engine:
    """libmemscope-engine.so, loaded once per path, with typed entry points."""

    def __init__(self, path):
        self.path = path
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as exc:
            raise gdb.GdbError("cannot load the memscope engine %s: %s (see '%s PATH')."
                               % (path, exc, ENGINE_SETTING)) from None
        if not hasattr(self.lib, "memscope_history_open"):
            raise gdb.GdbError("%s is not a memscope engine library (no memscope_history_open): see '%s PATH'."
                               % (path, ENGINE_SETTING))
        for name, (restype, argtypes) in _PROTOTYPES.items():
            try:
                fn = getattr(self.lib, name)
            except AttributeError:
                fn = _missing(path, name)
            else:
                fn.restype = restype
                fn.argtypes = argtypes
            setattr(self, name[len("memscope_"):], fn)

    def describe(self, code):
        """memscope_strerror(code) as a str, without a trailing period."""
        text = self.strerror(code)
        return (text.decode("utf-8", "replace") if text else os.strerror(-code)).rstrip(".")

    def take_text(self, fn, *args):
        """Calls a renderer that hands out a malloc'd string; returns it as str."""
        out = ctypes.c_void_p()
        length = ctypes.c_size_t()
        rc = fn(*args, ctypes.byref(out), ctypes.byref(length))
        if rc != 0:
            raise EngineError("the memscope engine could not render: %s." % self.describe(rc), rc)
        try:
            return ctypes.string_at(out.value, length.value).decode("utf-8", "replace")
        finally:
            self.text_free(out)


class InferiorReader:
    """A struct memscope_source over one GDB inferior's memory.

    Keep the object alive while the engine may call read (the CFUNCTYPE
    thunk is owned here).
    """

    def __init__(self, inferior):
        self.inferior = inferior
        self.failure = 0        # sticky negative errno once GDB failed in a non-memory way
        self.failure_text = None
        self.bytes_read = 0
        self.source = Source(READ_FN(self._read), None)

    def _read(self, ctx, addr, buf, length):
        if self.failure:
            return self.failure
        if length == 0:
            return 0
        try:
            view = self.inferior.read_memory(addr, length)
        except gdb.MemoryError:
            return -errno.EFAULT
        except gdb.error as exc:
            self.failure, self.failure_text = -errno.EIO, str(exc)
            return self.failure
        except KeyboardInterrupt:
            self.failure, self.failure_text = -errno.EINTR, "interrupted"
            return self.failure
        try:
            source = (ctypes.c_char * length).from_buffer(view)  # zero-copy view of GDB's buffer
        except (TypeError, ValueError):
            source = view.tobytes()  # a GDB whose buffers are read-only: one extra copy
        ctypes.memmove(buf, source, length)
        self.bytes_read += length
        return 0


class History:
    """An opened store (struct memscope_history *) and the snapshots taken from it."""

    def __init__(self, engine, handle, root, located_by, reader=None):
        self.engine = engine
        self.handle = handle
        self.root = root
        self.located_by = located_by
        self.reader = reader  # kept alive with the history (the engine reads at open only, today)
        self._snapshots = {}

    def info(self):
        info = HistoryInfo()
        rc = self.engine.history_info(self.handle, ctypes.byref(info))
        if rc != 0:
            raise EngineError("the memscope engine could not describe the store: %s."
                              % self.engine.describe(rc), rc)
        return info

    def snapshot(self, kind=AT_END, value=0, mark=None):
        """The snapshot at a point (cached per point while this history lives)."""
        key = (kind, value, mark)
        snap = self._snapshots.get(key)
        if snap is not None:
            return snap
        point = Point(kind, value, mark.encode() if mark is not None else None)
        handle = ctypes.c_void_p()
        rc = self.engine.history_snapshot(self.handle, ctypes.byref(point), ctypes.byref(handle))
        if rc == -errno.ENOENT and kind == AT_MARK:
            raise EngineError("the store has no mark named '%s'." % mark, rc)
        if rc == -errno.ERANGE:
            info = self.info()
            if kind == AT_MARK:  # the engine found it among the marks folded into the checkpoint
                raise EngineError("mark '%s' lies before the checkpoint horizon at %.6f s: its events were folded "
                                  "into the checkpoint to keep the store within its budget."
                                  % (mark, info.horizon_ns / 1e9), rc)
            if info.horizon_ns and (kind == AT_PEAK or (kind == AT_TIME and value < info.horizon_ns)
                                    or (kind == AT_EVENT and value < info.folded_events)):
                raise EngineError("that point lies before the checkpoint horizon at %.6f s: older events were "
                                  "folded into the checkpoint to keep the store within its budget."
                                  % (info.horizon_ns / 1e9), rc)
            raise EngineError("that point lies past the end of the recorded history.", rc)
        if rc != 0:
            raise EngineError("the memscope engine could not build the snapshot: %s."
                              % self.engine.describe(rc), rc)
        snap = Snapshot(self.engine, handle)
        self._snapshots[key] = snap
        return snap

    def close(self):
        for snap in self._snapshots.values():
            snap.close()
        self._snapshots.clear()
        if self.handle:
            self.engine.history_close(self.handle)
            self.handle = None


class Snapshot:
    """A struct memscope_snapshot * from the engine."""

    def __init__(self, engine, handle):
        self.engine = engine
        self.handle = handle

    def stats(self):
        out = Stats()
        rc = self.engine.snapshot_stats(self.handle, ctypes.byref(out))
        if rc != 0:
            raise EngineError("the memscope engine could not read the snapshot: %s."
                              % self.engine.describe(rc), rc)
        return out

    def render_text(self, opts):
        return self.engine.take_text(self.engine.snapshot_render_text, self.handle, ctypes.byref(opts))

    def render_json(self, opts):
        return self.engine.take_text(self.engine.snapshot_render_json, self.handle, ctypes.byref(opts))

    def render_stack(self, stack_id, opts):
        return self.engine.take_text(self.engine.snapshot_render_stack, self.handle, ctypes.c_uint32(stack_id),
                                     ctypes.byref(opts))

    def render_folded(self, opts):
        return self.engine.take_text(self.engine.snapshot_render_folded, self.handle, ctypes.byref(opts))

    def stacks_info(self):
        out = StacksInfo()
        rc = self.engine.snapshot_stacks_info(self.handle, ctypes.byref(out))
        if rc != 0:
            raise EngineError("the memscope engine could not read the stack table: %s."
                              % self.engine.describe(rc), rc)
        return out

    def close(self):
        if self.handle:
            self.engine.snapshot_free(self.handle)
            self.handle = None


def open_history(engine, inferior, root, located_by):
    """Opens the store at root through the engine.

    Returns a History, or raises EngineError whose .code is the engine's
    return value and whose message is the engine's sentence.
    """
    reader = InferiorReader(inferior)
    handle = ctypes.c_void_p()
    err = Error()
    rc = engine.history_open(ctypes.byref(reader.source), root, ctypes.byref(handle), ctypes.byref(err))
    if reader.failure:
        if reader.failure == -errno.EINTR:
            raise EngineError("reading the memscope store was interrupted.", reader.failure)
        raise EngineError("GDB could not read the process's memory: %s." % reader.failure_text.rstrip("."),
                          reader.failure)
    if rc != 0:
        message = err.message.decode("utf-8", "replace").strip().rstrip(".")
        if not message:
            message = engine.describe(rc)
        raise EngineError(message + ".", rc)
    return History(engine, handle, root, located_by, reader)
