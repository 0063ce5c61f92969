"""Points in time of a recorded history, for time travel and diffs.

A point is the engine's (kind, value, mark) triple (engine.AT_*). This
module parses the words users type for one, keeps the marks made from GDB,
and locates a point in the store through the engine (memscope_history_locate)
so that a point outside the recorded history is refused with the engine's
sentence instead of quietly giving an empty or final heap.

Marks made with memscope-mark live in GDB, not in the program: GDB never
calls functions in the inferior, and its one write into the store is arming
the peak trap. A GDB mark stands for the instant of the latest event the
store held when it was made (the program was stopped, so nothing happened
after it), and is resolved as a snapshot at that time. The marks are kept per
inferior and process id; they are lost with GDB or when the program is run
again.
"""

import ctypes
import errno
import re

import gdb

from . import engine as eng

_TIME_UNITS = {"ns": 1, "us": 1000, "ms": 1000000, "s": 1000000000}
_TIME = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|ms|s)?")

# (inferior number, pid) -> list of (name, time_ns, events) made with memscope-mark.
_gdb_marks = {}


class PointInfo(ctypes.Structure):
    """struct memscope_point_info."""

    _fields_ = [("events", ctypes.c_uint64), ("time_ns", ctypes.c_uint64)]


def engine_fn(engine, name, restype, argtypes):
    """An engine entry point of the time API, typed once per engine (engine.py
    declares the snapshot API; this keeps the time API beside its users)."""
    cache = engine.__dict__.setdefault("_time_fns", {})
    fn = cache.get(name)
    if fn is None:
        try:
            fn = getattr(engine.lib, name)
        except AttributeError:
            raise gdb.GdbError("the memscope engine %s lacks %s: rebuild it, or point '%s PATH' at a newer one."
                               % (engine.path, name, eng.ENGINE_SETTING)) from None
        fn.restype = restype
        fn.argtypes = argtypes
        cache[name] = fn
    return fn


def parse_time(text):
    """'1.5' (seconds), '1.5s', '200ms', '30us', '1000ns' -> ns; None if not a time."""
    match = _TIME.fullmatch(text)
    if not match:
        return None
    return int(round(float(match.group(1)) * _TIME_UNITS[match.group(2) or "s"]))


def parse_word(command, text, what="point"):
    """A point as typed in memscope-diff: peak, now (or end), event:N, mark:NAME,
    a time (seconds unless a unit follows: 1.5, 250ms), or a mark's name."""
    if text in ("now", "end"):
        return (eng.AT_END, 0, None)
    if text == "peak":
        return (eng.AT_PEAK, 0, None)
    kind, sep, value = text.partition(":")
    if sep and kind == "event":
        if not value.isdigit():
            raise gdb.GdbError("%s: %s '%s': event:N wants a whole number of events." % (command, what, text))
        return (eng.AT_EVENT, int(value), None)
    if sep and kind == "mark" and value:
        return (eng.AT_MARK, 0, value)
    if sep and kind == "time":
        ns = parse_time(value)
        if ns is None:
            raise gdb.GdbError("%s: %s '%s': time:T wants seconds, or a number with ns, us, ms or s."
                               % (command, what, text))
        return (eng.AT_TIME, ns, None)
    ns = parse_time(text)
    if ns is not None:
        return (eng.AT_TIME, ns, None)
    if not text:
        raise gdb.GdbError("%s: an empty %s." % (command, what))
    return (eng.AT_MARK, 0, text)


def _key(inferior):
    return (inferior.num, inferior.pid)


def gdb_marks(inferior):
    """The marks made with memscope-mark for this inferior's process."""
    return _gdb_marks.get(_key(inferior), [])


def add_gdb_mark(inferior, name, time_ns, events):
    marks = _gdb_marks.setdefault(_key(inferior), [])
    marks.append((name, time_ns, events))


def locate(history, point):
    """(events, time_ns) of point, or a GdbError with the engine's sentence."""
    engine = history.engine
    fn = engine_fn(engine, "memscope_history_locate", ctypes.c_int,
                   [ctypes.c_void_p, ctypes.POINTER(eng.Point), ctypes.POINTER(PointInfo), ctypes.POINTER(eng.Error)])
    kind, value, mark = point
    cpoint = eng.Point(kind, value, mark.encode() if mark is not None else None)
    info = PointInfo()
    err = eng.Error()
    rc = fn(history.handle, ctypes.byref(cpoint), ctypes.byref(info), ctypes.byref(err))
    if rc != 0:
        message = err.message.decode("utf-8", "replace").strip().rstrip(".") or engine.describe(rc)
        raise eng.EngineError(message + ".", rc)
    return info.events, info.time_ns


def resolve(history, point, inferior=None):
    """The engine point for a user's point: a mark not in the store may be a
    GDB mark (then a time); times, events and marks are located first so that
    a point outside the history gets a clear error. Returns (kind, value, mark)."""
    kind, value, mark = point
    if kind == eng.AT_MARK:
        try:
            locate(history, point)
            return point
        except eng.EngineError as exc:
            if exc.code != -errno.ENOENT:
                raise
            inferior = inferior or gdb.selected_inferior()
            for name, time_ns, events in gdb_marks(inferior):
                if name == mark:
                    return (eng.AT_TIME, time_ns, None) if events else (eng.AT_EVENT, 0, None)
            raise
    if kind in (eng.AT_TIME, eng.AT_EVENT):
        locate(history, point)
    return point


def describe(point):
    """How a point reads in messages."""
    kind, value, mark = point
    if kind == eng.AT_END:
        return "now"
    if kind == eng.AT_PEAK:
        return "peak"
    if kind == eng.AT_MARK:
        return "mark '%s'" % mark
    if kind == eng.AT_EVENT:
        return "event %d" % value
    return "time %.6f s" % (value / 1e9)
