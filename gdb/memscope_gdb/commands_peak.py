"""memscope-break-peak: stop the program each time its live heap reaches a new high.

It arms the runtime's peak trap (DESIGN.md "Peak trap", store_abi.h): GDB
writes the threshold and step into the store root (its one write into the
program) and puts a breakpoint on memscope_peak_trap, which the runtime calls
each time its coarse live-bytes figure reaches the threshold, re-arming
itself higher. The figures printed at each stop are the replay's, exact.
"""

import re
import struct

import gdb

from . import args
from . import engine as eng
from . import format as fmt
from . import store
from . import symbols

# struct memscope_store_root (store_abi.h, ABI 2 and later): offsets of the peak trap fields.
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


def argv_of(command, arg):
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


def complete_options(options, values, text, word):
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


# ------------------------------------------------------------------- marks

# --------------------------------------------------------------- peak break

class PeakBreakpoint(gdb.Breakpoint):
    """The breakpoint on memscope_peak_trap that memscope-break-peak sets.

    stop() only counts: GDB runs it before it has stopped the program's
    other threads, which may still be allocating. What is live is printed
    from the stop event (_on_stop), once every thread has stopped.
    """

    def __init__(self, root, print_stop, top, group_by="none"):
        super().__init__(TRAP_FUNCTION, gdb.BP_BREAKPOINT, internal=False)
        self.root = root
        self.print_stop = print_stop
        self.top = top
        self.group_by = group_by
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
            opts = symbols.attach(eng.RenderOptions(self.top, eng.SECTION_SUMMARY | eng.SECTION_BLOCKS,
                                                    eng.GROUP_BY[self.group_by], 0,
                                                    1 if fmt.color_enabled() else 0, 0))
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


def _on_exited(event):
    """The process is gone, and the arming with it (it lived in its memory): so goes the breakpoint."""
    bp = _state["breakpoint"]
    if bp is None or not bp.is_valid():
        return
    _delete_breakpoint()
    gdb.write("memscope: the peak break ended with the process (%d stop%s); arm it again in the next one.\n"
              % (bp.stops, "" if bp.stops == 1 else "s"))


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
                           [--group-by site|stack|label|thread|size|none]
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
  --group-by G   print groups of blocks instead: site (the allocation site,
                 function file:line library), stack, label, thread, size
  --delete       disarm the trap and delete the breakpoint
Sizes: 4096, 64K, 10M, 2G. The trap's figure is coarse (usable sizes, up
to 64 KiB per thread late); the printed figures are exact. Needs a live
process (start it first); GDB calls no function in it. The break ends with
the process.
Example: memscope-break-peak --min 10M --step 5M"""

    command = "memscope-break-peak"
    options = frozenset({"--min", "--step", "--print", "--no-print", "--top", "--delete", "--group-by"})

    def __init__(self, name=None):
        super().__init__(name or self.command, gdb.COMMAND_BREAKPOINTS)

    def complete(self, text, word):
        return complete_options(self.options, {}, text, word)

    def invoke(self, arg, from_tty):
        argv = argv_of(self.command, arg)
        minimum, step, print_stop, top, delete, group_by = None, None, True, 5, False, "none"
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
            elif name == "--group-by":
                if value not in eng.GROUP_BY:
                    raise gdb.GdbError("%s: --group-by wants one of %s, not '%s'."
                                       % (self.command, "|".join(eng.GROUP_BY), value))
                group_by = value
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
        _delete_breakpoint()
        bp = PeakBreakpoint(root, print_stop, top, group_by)
        if bp.pending:
            bp.delete()
            raise gdb.GdbError("%s: the program has no %s function (a libmemscope.so older than the peak trap?)."
                               % (self.command, TRAP_FUNCTION))
        try:
            generation = _read_u32(inferior, root + ROOT_PEAK_TRAP_GENERATION)
            # The order the runtime expects (store_abi.h): step, shift, live, generation, threshold last.
            _write(inferior, root + ROOT_PEAK_TRAP_THRESHOLD, "<Q", 0)
            _write(inferior, root + ROOT_PEAK_TRAP_STEP, "<Q", step)
            _write(inferior, root + ROOT_PEAK_TRAP_SHIFT, "<I", shift)
            _write(inferior, root + ROOT_PEAK_TRAP_LIVE, "<Q", current)
            _write(inferior, root + ROOT_PEAK_TRAP_GENERATION, "<I", (generation + 1) & 0xFFFFFFFF)
            _write(inferior, root + ROOT_PEAK_TRAP_THRESHOLD, "<Q", threshold)
        except gdb.MemoryError as exc:
            bp.delete()
            raise gdb.GdbError("%s: cannot write the store root at 0x%x: %s." % (self.command, root, exc)) from None
        _state["breakpoint"] = bp
        if not _state["connected"]:
            gdb.events.stop.connect(_on_stop)
            gdb.events.exited.connect(_on_exited)
            _state["connected"] = True
        gdb.write("memscope: peak break armed: first stop when the live heap reaches %s (now %s), then every %s%s.\n"
                  % (fmt.size_with_bytes(threshold), fmt.size_with_bytes(current), fmt.human_size(step),
                     " or quarter of the live heap, whichever is more" if shift else ""))
