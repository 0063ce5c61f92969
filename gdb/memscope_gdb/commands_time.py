"""Time: memscope-mark, memscope-diff, memscope-timeline (and, from
commands_peak, memscope-break-peak).

memscope-mark keeps marks in GDB (see timepoints.py); memscope-diff and
memscope-timeline replay the store through the engine (diff.c, timeline.c)
and work on cores as well as on live processes.
"""

import ctypes
import errno
import os

import gdb

from . import args
from . import commands_peak
from .commands_peak import argv_of, complete_options, is_live
from . import engine as eng
from . import format as fmt
from . import store
from . import timepoints


class MarkCommand(gdb.Command):
    """Name the current instant of the stopped program, to compare against later.

Usage: memscope-mark NAME
       memscope-mark            (lists the marks)

Records a mark for the program as it is now: the instant of the latest
event in its store. GDB keeps the mark (it never calls the program, so it
cannot add a record to the store); memscope-snapshot --at-mark NAME and
memscope-diff then find it beside the marks the program made with
memscope_mark(). GDB's marks last while GDB runs and the process lives.
Needs a live process: a core has no 'now' to come back to.
Example: memscope-mark before-load"""

    command = "memscope-mark"

    def __init__(self, name=None):
        super().__init__(name or self.command, gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        argv = argv_of(self.command, arg)
        if len(argv) > 1:
            raise gdb.GdbError("%s: give one NAME (quote it if it has spaces)." % self.command)
        inferior = store.selected_inferior()
        if not argv:
            self._list(inferior)
            return
        name = argv[0]
        if not is_live(inferior):
            raise gdb.GdbError("%s: marks are made in a live process; in a core, use the program's own marks "
                               "(memscope-timeline lists them)." % self.command)
        history = store.history()
        if any(m[0] == name for m in timepoints.gdb_marks(inferior)):
            raise gdb.GdbError("%s: there is already a GDB mark named '%s'." % (self.command, name))
        try:
            timepoints.locate(history, (eng.AT_MARK, 0, name))
            raise gdb.GdbError("%s: the program already recorded a mark named '%s'." % (self.command, name))
        except eng.EngineError as exc:
            if exc.code == -errno.ERANGE:  # the program's mark was folded into the checkpoint: still its name
                raise gdb.GdbError("%s: the program already recorded a mark named '%s' (before the checkpoint "
                                   "horizon)." % (self.command, name)) from None
        info = history.info()
        timepoints.add_gdb_mark(inferior, name, info.last_time_ns, info.events)
        gdb.write("memscope: mark '%s' at %.6f s (event %d; kept by GDB).\n"
                  % (name, info.last_time_ns / 1e9, info.events))

    def _list(self, inferior):
        marks = timepoints.gdb_marks(inferior)
        if not marks:
            gdb.write("memscope: no GDB marks (the program's own marks show in memscope-timeline).\n")
            return
        for name, time_ns, events in marks:
            gdb.write("  %-20s %.6f s  event %d\n" % (name, time_ns / 1e9, events))


# -------------------------------------------------------------------- diff

_SIDES = ("--group-by", "--top", "--exact", "--json")


class DiffCommand(gdb.Command):
    """Show what changed in the heap between two points A and B.

Usage: memscope-diff A B [--group-by label|thread|size|site|stack|none] [--top N]
                         [--exact] [--json FILE]

A and B are points of the recorded history, A not after B:
  NAME or mark:NAME   a mark (memscope_mark in the program, or memscope-mark)
  peak                the instant of the highest live heap (exact)
  now                 the latest recorded event (also: end)
  1.5, 250ms, 40us    a time since recording began (seconds unless a unit
                      follows), as memscope-timeline shows them
  event:N             after the first N events
Prints the blocks allocated after A and still live at B, and those live at
A and freed by B, grouped (default: by label; site: the allocation site,
function file:line (library); stack: the whole call stack, #ID as
memscope-stack takes it) with blocks and bytes per group, largest first,
and the net change. Both points are exact replays.
Works on a live process and on a core.
Example: memscope-diff start peak --group-by thread"""

    command = "memscope-diff"

    def __init__(self, name=None):
        super().__init__(name or self.command, gdb.COMMAND_DATA)

    def complete(self, text, word):
        return complete_options(_SIDES, {"--group-by": sorted(eng.GROUP_BY)}, text, word)

    def invoke(self, arg, from_tty):
        options = args.parse(self.command, arg, set(_SIDES), max_positional=2)
        if len(options.positional) != 2:
            raise gdb.GdbError("%s: give two points A and B (see 'help %s')." % (self.command, self.command))
        if "--group-by" not in arg:
            options.group_by = "label"
        a = timepoints.parse_word(self.command, options.positional[0], "point A")
        b = timepoints.parse_word(self.command, options.positional[1], "point B")
        history = store.history()
        given = (a, b)
        a = timepoints.resolve(history, a)
        b = timepoints.resolve(history, b)
        engine = history.engine
        create = timepoints.engine_fn(engine, "memscope_history_diff", ctypes.c_int,
                                      [ctypes.c_void_p, ctypes.POINTER(eng.Point), ctypes.POINTER(eng.Point),
                                       ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(eng.Error)])
        free = timepoints.engine_fn(engine, "memscope_diff_free", None, [ctypes.c_void_p])
        render = timepoints.engine_fn(engine, "memscope_diff_render_json" if options.json else
                                      "memscope_diff_render_text", ctypes.c_int,
                                      [ctypes.c_void_p, ctypes.POINTER(eng.RenderOptions),
                                       ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)])
        pa = eng.Point(a[0], a[1], a[2].encode() if a[2] is not None else None)
        pb = eng.Point(b[0], b[1], b[2].encode() if b[2] is not None else None)
        handle = ctypes.c_void_p()
        err = eng.Error()
        rc = create(history.handle, ctypes.byref(pa), ctypes.byref(pb), ctypes.byref(handle), ctypes.byref(err))
        if rc != 0:
            message = err.message.decode("utf-8", "replace").strip().rstrip(".") or engine.describe(rc)
            raise gdb.GdbError("%s: %s." % (self.command, message))
        try:
            opts = options.render_options(0, fmt.color_enabled() and not options.json)
            text = engine.take_text(render, handle, ctypes.byref(opts))
        finally:
            free(handle)
        if not options.json:  # name the GDB marks, which the engine sees as times
            for label, asked, used in (("A", given[0], a), ("B", given[1], b)):
                if asked[0] == eng.AT_MARK and used[0] != eng.AT_MARK:
                    text = text.replace("\n  %s: " % label, "\n  %s: GDB mark '%s' = " % (label, asked[2]), 1)
        _emit(self.command, text, options.json, "diff")


def _emit(command, text, json_path, what):
    """Prints text, or writes it to json_path ('-' prints it)."""
    if json_path is None or json_path == "-":
        gdb.write(text if text.endswith("\n") else text + "\n")
        return
    path = os.path.expanduser(json_path)
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise gdb.GdbError("%s: cannot write %s: %s." % (command, json_path, exc.strerror)) from None
    gdb.write("memscope: wrote the %s to %s\n" % (what, json_path))


# ---------------------------------------------------------------- timeline

class TimeMark(ctypes.Structure):
    """struct memscope_time_mark: a GDB mark for the timeline."""

    _fields_ = [("name", ctypes.c_char_p), ("time_ns", ctypes.c_uint64)]


class TimelineOptions(ctypes.Structure):
    """struct memscope_timeline_options."""

    _fields_ = [("height", ctypes.c_uint), ("table_rows", ctypes.c_uint), ("color", ctypes.c_int),
                ("exact_bytes", ctypes.c_int)]


def _default_width():
    try:
        width = gdb.parameter("width")
    except RuntimeError:
        width = None
    if not width or width > 400:
        return 64
    return max(16, width - 16)


class TimelineCommand(gdb.Command):
    """Draw live heap bytes over the whole recorded history, with the peak and marks.

Usage: memscope-timeline [--width N] [--height N] [--rows N] [--exact] [--json FILE]

Replays the whole store once and draws the live heap over time as a chart
N columns wide (default: the terminal's width less the axis; 64 when GDB's
width is unlimited), each column the highest live heap in its slice of
time, so the peak is never lost; P marks the peak and a, b, ... the marks
(the program's, and GDB's from memscope-mark). Below, the table of figures behind the chart
(--rows rows, default 12). --json FILE writes every column and mark.
Times are seconds since recording began, as memscope-snapshot --at and
memscope-diff take them. Works on a live process and on a core.
Example: memscope-timeline --width 60 --height 10"""

    command = "memscope-timeline"

    def __init__(self, name=None):
        super().__init__(name or self.command, gdb.COMMAND_DATA)

    def complete(self, text, word):
        return complete_options(("--width", "--height", "--rows", "--exact", "--json"), {}, text, word)

    def invoke(self, arg, from_tty):
        argv = argv_of(self.command, arg)
        width, height, rows, exact, json_path = None, 12, 12, False, None
        i = 0
        while i < len(argv):
            name, eq, inline = argv[i].partition("=")
            if name == "--exact" and not eq:
                exact, i = True, i + 1
                continue
            if name not in ("--width", "--height", "--rows", "--json"):
                raise gdb.GdbError("%s: unexpected argument '%s' (see 'help %s')." % (self.command, argv[i],
                                                                                       self.command))
            if eq:
                value, i = inline, i + 1
            elif i + 1 < len(argv):
                value, i = argv[i + 1], i + 2
            else:
                raise gdb.GdbError("%s: %s needs a value (see 'help %s')." % (self.command, name, self.command))
            if name == "--json":
                json_path = value
                continue
            number = args.positive(self.command, name, value)
            if name == "--width":
                if number > 10000:
                    raise gdb.GdbError("%s: --width wants at most 10000 columns." % self.command)
                width = number
            elif name == "--height":
                height = min(number, 200)
            else:
                rows = number
        history = store.history()
        engine = history.engine
        create = timepoints.engine_fn(engine, "memscope_history_timeline_marks", ctypes.c_int,
                                      [ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(TimeMark), ctypes.c_size_t,
                                       ctypes.POINTER(ctypes.c_void_p)])
        free = timepoints.engine_fn(engine, "memscope_timeline_free", None, [ctypes.c_void_p])
        marks = timepoints.gdb_marks(gdb.selected_inferior())
        extra = (TimeMark * max(1, len(marks)))(*[TimeMark(name.encode(), time_ns) for name, time_ns, _ in marks])
        handle = ctypes.c_void_p()
        rc = create(history.handle, width or _default_width(), extra, len(marks), ctypes.byref(handle))
        if rc != 0:
            if rc == -61:  # -ENODATA
                raise gdb.GdbError("%s: the store holds no events yet." % self.command)
            raise gdb.GdbError("%s: the memscope engine could not build the timeline: %s."
                               % (self.command, engine.describe(rc)))
        try:
            if json_path is not None:
                render = timepoints.engine_fn(engine, "memscope_timeline_render_json", ctypes.c_int,
                                              [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                               ctypes.POINTER(ctypes.c_size_t)])
                text = engine.take_text(render, handle)
            else:
                render = timepoints.engine_fn(engine, "memscope_timeline_render_text", ctypes.c_int,
                                              [ctypes.c_void_p, ctypes.POINTER(TimelineOptions),
                                               ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)])
                opts = TimelineOptions(height, rows, 1 if fmt.color_enabled() else 0, 1 if exact else 0)
                text = engine.take_text(render, handle, ctypes.byref(opts))
        finally:
            free(handle)
        _emit(self.command, text, json_path, "timeline")


COMMANDS = (commands_peak.BreakPeakCommand, MarkCommand, DiffCommand, TimelineCommand)
