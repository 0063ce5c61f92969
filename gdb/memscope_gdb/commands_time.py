"""Time: memscope-break-peak, memscope-mark, memscope-diff, memscope-timeline.

memscope-break-peak arms the runtime's peak trap (DESIGN.md "Peak trap"):
GDB writes the threshold and step into the store root (its one write into
the program) and puts a breakpoint on memscope_peak_trap, which the runtime
calls each time its coarse live-bytes figure reaches the threshold, re-arming
itself higher. The exact figures printed at each stop come from the replay.

memscope-mark keeps marks in GDB (see timepoints.py); memscope-diff and
memscope-timeline replay the store through the engine (diff.c, timeline.c)
and work on cores as well as on live processes.
"""

import ctypes
import os
import re
import struct

import gdb

from . import args
from . import engine as eng
from . import format as fmt
from . import settings
from . import store
from . import timepoints

# struct memscope_store_root (store_abi.h, ABI 2): offsets of the peak trap fields.
ROOT_PEAK_TRAP_THRESHOLD = 160  # uint64_t, 0: disarmed
ROOT_PEAK_TRAP_STEP = 168       # uint64_t
ROOT_PEAK_TRAP_LIVE = 176       # uint64_t
ROOT_PEAK_TRAP_SHIFT = 184      # uint32_t
ROOT_PEAK_TRAP_GENERATION = 188 # uint32_t
ROOT_PEAK_TRAP_HITS = 192       # uint64_t
TRAP_FUNCTION = "memscope_peak_trap"

DEFAULT_STEP = 1 << 20   # least growth between two stops
DEFAULT_SHIFT = 2        # ... and at least a quarter of the live heap at the last stop

_SIZE = re.compile(r"(\d+)\s*([kKmMgGtT]?)(i?[bB])?")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(command, name, text):
    """'64K', '10M', '2G', '4096', '1MiB' -> bytes (binary units)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise gdb.GdbError("%s: %s wants a size such as 4096, 64K, 10M or 2G, not '%s'." % (command, name, text))
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _argv(command, arg):
    try:
        return gdb.string_to_argv(arg)
    except gdb.error as exc:
        raise gdb.GdbError("%s: %s." % (command, str(exc).rstrip("."))) from None


def is_live(inferior):
    """True for a running process, False for a core file (or nothing)."""
    if inferior is None or inferior.pid == 0:
        return False
    connection = getattr(inferior, "connection", None)
    if connection is not None:
        return connection.type != "core"
    return "core file" not in gdb.execute("info target", to_string=True)


def _engine_text(engine, fn, *fn_args):
    """Calls a renderer that hands out a string (engine.take_text, typed here)."""
    return engine.take_text(fn, *fn_args)


def _complete(options, values, text, word):
    """Option names, and the values of options that take a choice."""
    words = text.split()
    if text and not text[-1].isspace():
        current, before = words[-1], words[:-1]
    else:
        current, before = "", words
    previous = before[-1] if before else ""
    if previous in values:
        candidates = [v for v in values[previous] if v.startswith(current)]
    elif current.startswith("-"):
        candidates = sorted(o for o in options if o.startswith(current))
    else:
        return gdb.COMPLETE_NONE
    cut = len(current) - len(word)  # GDB replaces only `word` (it breaks words at '-')
    return [c[cut:] for c in candidates]


# --------------------------------------------------------------- peak break

class PeakBreakpoint(gdb.Breakpoint):
    """The breakpoint on memscope_peak_trap that memscope-break-peak sets.

    stop() only counts: GDB runs it before it has stopped the program's
    other threads, which may still be allocating. What is live is printed
    from the stop event (_on_stop), once every thread has stopped.
    """

    def __init__(self, root, print_stop, top):
        super().__init__(TRAP_FUNCTION, gdb.BP_BREAKPOINT, internal=False)
        self.root = root
        self.print_stop = print_stop
        self.top = top
        self.stops = 0

    def stop(self):
        self.stops += 1
        return True

    def report(self):
        """Prints the trap's figures and the exact snapshot (summary, largest blocks)."""
        try:
            inferior = gdb.selected_inferior()
            live = _read_u64(inferior, self.root + ROOT_PEAK_TRAP_LIVE)
            live = 0 if live >= 1 << 63 else live  # below zero: blocks from before the arming freed
            hits = _read_u64(inferior, self.root + ROOT_PEAK_TRAP_HITS)
            threshold = _read_u64(inferior, self.root + ROOT_PEAK_TRAP_THRESHOLD)
            snap = store.history().snapshot()
            stats = snap.stats()
            gdb.write("memscope: the live heap reached a new high: %s live in %d blocks (exact, replayed);"
                      " trap %d at ~%s, next at ~%s\n"
                      % (fmt.size_with_bytes(stats.current_memory), stats.active_allocations, hits,
                         fmt.human_size(live), fmt.human_size(threshold)))
            opts = eng.RenderOptions(self.top, eng.SECTION_SUMMARY | eng.SECTION_BLOCKS, 0, 0,
                                     1 if fmt.color_enabled() else 0, 0)
            gdb.write(snap.render_text(opts))
        except gdb.GdbError as exc:
            gdb.write("memscope: peak break: %s\n" % exc)


def _on_stop(event):
    """Stop event: print at a stop of the peak break (every thread stopped now)."""
    bp = _state["breakpoint"]
    if bp is None or not bp.is_valid() or not bp.print_stop:
        return
    if any(b is bp or b.number == bp.number for b in getattr(event, "breakpoints", ())):
        bp.report()


_state = {"breakpoint": None, "connected": False}


def _read_u64(inferior, addr):
    return struct.unpack("<Q", inferior.read_memory(addr, 8).tobytes())[0]


def _read_u32(inferior, addr):
    return struct.unpack("<I", inferior.read_memory(addr, 4).tobytes())[0]


def _write(inferior, addr, fmt_, value):
    inferior.write_memory(addr, struct.pack(fmt_, value))


def _delete_breakpoint():
    bp = _state["breakpoint"]
    _state["breakpoint"] = None
    if bp is not None and bp.is_valid():
        bp.delete()


def disarm(inferior, root):
    _write(inferior, root + ROOT_PEAK_TRAP_THRESHOLD, "<Q", 0)


class BreakPeakCommand(gdb.Command):
    """Stop the program each time its live heap reaches a new high.

Usage: memscope-break-peak [--min SIZE] [--step SIZE] [--print|--no-print] [--top N]
       memscope-break-peak --delete

Arms memscope's peak trap in the running program and puts a breakpoint on
memscope_peak_trap (it shows in 'info breakpoints'). The program then runs
on and stops each time its live heap reaches a new high above SIZE of
--min by at least the step; at each stop memscope prints what is live
(the summary and the largest blocks, exact: replayed from the store).
  --min SIZE     first stop when the live heap reaches SIZE (default, or
                 when the heap is already above it: the live heap now plus
                 one step)
  --step SIZE    stop again only after the heap grew by SIZE (default:
                 1 MiB or a quarter of the live heap at the last stop,
                 whichever is more, so a program stops a handful of times)
  --no-print     stop without printing (--print, the default, prints)
  --top N        blocks to print at each stop (default 5)
  --delete       disarm the trap and delete the breakpoint
Sizes: 4096, 64K, 10M, 2G. The trap's figure is coarse (usable sizes, up
to 64 KiB per thread late); the printed figures are exact. Needs a live
process (start it first); GDB calls no function in it.
Example: memscope-break-peak --min 10M --step 5M"""

    command = "memscope-break-peak"
    options = frozenset({"--min", "--step", "--print", "--no-print", "--top", "--delete"})

    def __init__(self, name=None):
        super().__init__(name or self.command, gdb.COMMAND_BREAKPOINTS)

    def complete(self, text, word):
        return _complete(self.options, {}, text, word)

    def invoke(self, arg, from_tty):
        argv = _argv(self.command, arg)
        minimum, step, print_stop, top, delete = None, None, True, 5, False
        i = 0
        while i < len(argv):
            word = argv[i]
            name, eq, inline = word.partition("=")
            if name not in self.options:
                raise gdb.GdbError("%s: unexpected argument '%s' (see 'help %s')." % (self.command, word, self.command))
            if name in ("--print", "--no-print", "--delete"):
                if eq:
                    raise gdb.GdbError("%s: %s takes no value." % (self.command, name))
                print_stop = name != "--no-print" if name != "--delete" else print_stop
                delete = delete or name == "--delete"
                i += 1
                continue
            if eq:
                value, i = inline, i + 1
            elif i + 1 < len(argv):
                value, i = argv[i + 1], i + 2
            else:
                raise gdb.GdbError("%s: %s needs a value (see 'help %s')." % (self.command, name, self.command))
            if name == "--min":
                minimum = parse_size(self.command, name, value)
            elif name == "--step":
                step = parse_size(self.command, name, value)
                if step == 0:
                    raise gdb.GdbError("%s: --step wants a size above 0." % self.command)
            else:
                top = args.positive(self.command, name, value)
        inferior = gdb.selected_inferior()
        if delete:
            if minimum is not None or step is not None:
                raise gdb.GdbError("%s: --delete takes no other option." % self.command)
            had = _state["breakpoint"] is not None and _state["breakpoint"].is_valid()
            if is_live(inferior):
                try:
                    disarm(inferior, store.history().root)
                except gdb.GdbError:
                    pass
            _delete_breakpoint()
            gdb.write("memscope: peak break deleted.\n" if had else "memscope: there was no peak break.\n")
            return
        if not is_live(inferior):
            raise gdb.GdbError("%s: breaking on peaks needs a live process: start the program first (a core "
                               "cannot run)." % self.command)
        history = store.history()
        root = history.root
        current = history.snapshot().stats().current_memory
        shift = 0 if step is not None else DEFAULT_SHIFT
        step = step if step is not None else DEFAULT_STEP
        first_step = max(step, current >> shift) if shift else step
        # The first stop at MIN when the heap is below it, else a step above what is live now.
        threshold = minimum if minimum is not None and minimum > current else current + first_step
        generation = _read_u32(inferior, root + ROOT_PEAK_TRAP_GENERATION)
        _delete_breakpoint()
        # The order the runtime expects (store_abi.h): step, shift, live, generation, threshold last.
        _write(inferior, root + ROOT_PEAK_TRAP_THRESHOLD, "<Q", 0)
        _write(inferior, root + ROOT_PEAK_TRAP_STEP, "<Q", step)
        _write(inferior, root + ROOT_PEAK_TRAP_SHIFT, "<I", shift)
        _write(inferior, root + ROOT_PEAK_TRAP_LIVE, "<Q", current)
        _write(inferior, root + ROOT_PEAK_TRAP_GENERATION, "<I", (generation + 1) & 0xFFFFFFFF)
        _write(inferior, root + ROOT_PEAK_TRAP_THRESHOLD, "<Q", threshold)
        _state["breakpoint"] = PeakBreakpoint(root, print_stop, top)
        if not _state["connected"]:
            gdb.events.stop.connect(_on_stop)
            _state["connected"] = True
        gdb.write("memscope: peak break armed: first stop when the live heap reaches %s (now %s), then every %s%s.\n"
                  % (fmt.size_with_bytes(threshold), fmt.size_with_bytes(current), fmt.human_size(step),
                     " or quarter of the live heap, whichever is more" if shift else ""))


# ------------------------------------------------------------------- marks

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
        argv = _argv(self.command, arg)
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
        except eng.EngineError:
            pass
        info = history.info()
        timepoints.add_gdb_mark(inferior, name, info.last_time_ns, info.events)
        gdb.write("memscope: mark '%s' at %s (event %d; kept by GDB).\n"
                  % (name, fmt.human_time(info.last_time_ns), info.events))

    def _list(self, inferior):
        marks = timepoints.gdb_marks(inferior)
        if not marks:
            gdb.write("memscope: no GDB marks (the program's own marks show in memscope-timeline).\n")
            return
        for name, time_ns, events in marks:
            gdb.write("  %-20s %12s  event %d\n" % (name, fmt.human_time(time_ns), events))


# -------------------------------------------------------------------- diff

_SIDES = ("--group-by", "--top", "--exact", "--json")


class DiffCommand(gdb.Command):
    """Show what changed in the heap between two points A and B.

Usage: memscope-diff A B [--group-by label|thread|size|none] [--top N]
                         [--exact] [--json FILE]

A and B are points of the recorded history, A not after B:
  NAME or mark:NAME   a mark (memscope_mark in the program, or memscope-mark)
  peak                the instant of the highest live heap (exact)
  now                 the latest recorded event (also: end)
  1.5, 250ms, 40us    a time since recording began (seconds unless a unit
                      follows), as memscope-timeline shows them
  event:N             after the first N events
Prints the blocks allocated after A and still live at B, and those live at
A and freed by B, grouped (default: by label) with blocks and bytes per
group, largest first, and the net change. Both points are exact replays.
Works on a live process and on a core.
Example: memscope-diff start peak --group-by thread"""

    command = "memscope-diff"

    def __init__(self, name=None):
        super().__init__(name or self.command, gdb.COMMAND_DATA)

    def complete(self, text, word):
        return _complete(_SIDES, {"--group-by": sorted(eng.GROUP_BY)}, text, word)

    def invoke(self, arg, from_tty):
        options = args.parse(self.command, arg, set(_SIDES), max_positional=2)
        if len(options.positional) != 2:
            raise gdb.GdbError("%s: give two points A and B (see 'help %s')." % (self.command, self.command))
        if "--group-by" not in arg:
            options.group_by = "label"
        a = timepoints.parse_word(self.command, options.positional[0], "point A")
        b = timepoints.parse_word(self.command, options.positional[1], "point B")
        history = store.history()
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
(the program's and GDB's). Below, the table of figures behind the chart
(--rows rows, default 12). --json FILE writes every column and mark.
Times are seconds since recording began, as memscope-snapshot --at and
memscope-diff take them. Works on a live process and on a core.
Example: memscope-timeline --width 60 --height 10"""

    command = "memscope-timeline"

    def __init__(self, name=None):
        super().__init__(name or self.command, gdb.COMMAND_DATA)

    def complete(self, text, word):
        return _complete(("--width", "--height", "--rows", "--exact", "--json"), {}, text, word)

    def invoke(self, arg, from_tty):
        argv = _argv(self.command, arg)
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
        create = timepoints.engine_fn(engine, "memscope_history_timeline", ctypes.c_int,
                                      [ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)])
        free = timepoints.engine_fn(engine, "memscope_timeline_free", None, [ctypes.c_void_p])
        handle = ctypes.c_void_p()
        rc = create(history.handle, width or _default_width(), ctypes.byref(handle))
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
                text += _gdb_marks_text(gdb.selected_inferior())
        finally:
            free(handle)
        _emit(self.command, text, json_path, "timeline")


def _gdb_marks_text(inferior):
    marks = timepoints.gdb_marks(inferior)
    if not marks:
        return ""
    lines = ["GDB marks (memscope-mark):"]
    for name, time_ns, events in marks:
        lines.append("  %-20s at %s, event %d" % (name, fmt.human_time(time_ns), events))
    return "\n" + "\n".join(lines) + "\n"


COMMANDS = (BreakPeakCommand, MarkCommand, DiffCommand, TimelineCommand)
