"""The snapshot views: memscope-snapshot, memscope-stats, memscope-threads, memscope-top.

Each command parses its options, takes the snapshot of the selected inferior
(the store is read once per stop, see store.py) and prints what the engine's
renderer produced. Every command is registered under its dashed name
(memscope-snapshot) and as a subcommand of the memscope prefix
(memscope snapshot), so `help memscope` lists them all.
"""

import os

import gdb

from . import args
from . import engine as eng
from . import format as fmt
from . import store
from . import timepoints


def take(options):
    """(history, snapshot) of the selected inferior at options.at."""
    history = store.history()
    kind, value, mark = timepoints.resolve(history, options.at)  # clear errors outside the history; GDB marks
    return history, history.snapshot(kind, value, mark)


_VALUES = {"--sort": sorted(eng.SORT_BY), "--group-by": sorted(eng.GROUP_BY), "--by": sorted(eng.GROUP_BY),
           "--at": ["end", "peak", "mark:", "event:", "time:"]}


def _files(prefix):
    """Paths that complete prefix (directories with a trailing slash)."""
    head, tail = os.path.split(prefix)
    try:
        names = os.listdir(os.path.expanduser(head) or ".")
    except OSError:
        return []
    out = []
    for name in sorted(names):
        if name.startswith(tail):
            path = os.path.join(head, name)
            out.append(path + "/" if os.path.isdir(os.path.expanduser(path)) else path)
    return out


class MemscopeCommand(gdb.Command):
    """Base: one class per command, registered under a given name."""

    command = None
    options = frozenset()

    def __init__(self, name=None):
        super().__init__(name or self.command, gdb.COMMAND_DATA)

    def complete(self, text, word):
        """Completes option names, the values of --sort, --group-by and --at,
        a file after --json, and GDB expressions elsewhere."""
        words = text.split()
        if text and not text[-1].isspace():
            current, before = words[-1], words[:-1]
        else:
            current, before = "", words
        previous = before[-1] if before else ""
        if previous in _VALUES:
            candidates = [v for v in _VALUES[previous] if v.startswith(current)]
        elif previous == "--json":
            candidates = _files(current)
        elif current.startswith("-"):
            candidates = sorted(o for o in self.options if o.startswith(current))
        else:
            return gdb.COMPLETE_EXPRESSION if self.command == "memscope-block" else gdb.COMPLETE_NONE
        # GDB replaces only `word` (it breaks words at '-' and ':'), so drop what precedes it.
        cut = len(current) - len(word)
        return [c[cut:] for c in candidates]

    def print_sections(self, options, sections):
        _, snap = take(options)
        gdb.write(snap.render_text(options.render_options(sections, fmt.color_enabled())))


class SnapshotCommand(MemscopeCommand):
    """Print the heap snapshot: summary, per-thread table and largest live blocks.

Usage: memscope-snapshot [--top N] [--sort size|count|time|address]
                         [--group-by thread|label|size|site|stack|none] [--exact]
                         [--at POINT|--at-peak|--at-mark NAME|--at-event N]
                         [--json FILE]

Reads the memscope event store of the program (a live process stopped in
GDB, or a core file) and replays it into a snapshot of the heap.
  --top N        show N rows of live blocks (default 10)
  --sort KEY     order the rows by size (default), count, time or address
  --group-by G   one row per allocating thread, per label, per
                 power-of-two size class, per allocation site (the first
                 frame of the call stack outside the allocator: function,
                 file:line, library) or per call stack, instead of one row
                 per block
  --exact        print exact byte counts beside the human sizes
  --at POINT     the snapshot at another point of the recorded history:
                 end (default), peak, mark:NAME, event:N, time:T[ns|us|ms|s],
                 or TIME: seconds since recording began (1.5, 250ms)
  --at-peak      the instant the live heap was highest (exact, replayed)
  --at-mark NAME right after the mark NAME (memscope_mark or memscope-mark)
  --at-event N   after the first N events of the store
  --json FILE    write the snapshot (every live block) as JSON to FILE
                 instead of printing it; FILE - prints the JSON
Example: memscope-snapshot --top 20 --group-by label"""

    command = "memscope-snapshot"
    options = frozenset({"--top", "--sort", "--group-by", "--exact", "--at", "--json", "--at-peak", "--at-mark",
                         "--at-event"})

    def invoke(self, arg, from_tty):
        options = args.parse(self.command, arg, self.options)
        if options.json is None:
            self.print_sections(options, 0)
            return
        _, snap = take(options)
        text = snap.render_json(options.render_options())
        if options.json == "-":
            gdb.write(text if text.endswith("\n") else text + "\n")
            return
        path = os.path.expanduser(options.json)
        try:
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise gdb.GdbError("memscope-snapshot: cannot write %s: %s." % (options.json, exc.strerror)) from None
        stats = snap.stats()
        gdb.write("memscope: wrote the snapshot (%d live blocks, %s) to %s\n"
                  % (stats.active_allocations, fmt.human_size(stats.current_memory), options.json))


class StatsCommand(MemscopeCommand):
    """Print the snapshot's summary figures and where the store was found.

Usage: memscope-stats [--exact] [--at POINT]

Allocations and deallocations, live blocks and bytes, peak memory and when
it was reached, unmatched frees and dropped events; then the store's
address, how it was found, its ABI version and its event count.
Example: memscope-stats --exact"""

    command = "memscope-stats"
    options = frozenset({"--exact", "--at"})

    def invoke(self, arg, from_tty):
        options = args.parse(self.command, arg, self.options)
        history, snap = take(options)
        text = snap.render_text(options.render_options(eng.SECTION_SUMMARY, fmt.color_enabled()))
        info = history.info()
        gdb.write(text)
        gdb.write("store: 0x%x (found by %s), ABI version %d, %d events, %d threads, pid %d\n"
                  % (history.root, history.located_by, info.abi_version, info.events, info.threads, info.pid))


class ThreadsCommand(MemscopeCommand):
    """Print the per-thread table: blocks and bytes charged to each thread.

Usage: memscope-threads [--exact] [--at POINT]

One row per recorded thread (memscope serial and OS thread id): blocks
allocated and freed, bytes allocated and released, live bytes and blocks,
and the thread's peak. Bytes are charged to the allocating thread. In a
bounded store, the threads that exited and were folded into the checkpoint
are one row, "exited" (their sums, the largest peak), first.
Example: memscope-threads --exact"""

    command = "memscope-threads"
    options = frozenset({"--exact", "--at"})

    def invoke(self, arg, from_tty):
        options = args.parse(self.command, arg, self.options)
        self.print_sections(options, eng.SECTION_THREADS)


class TopCommand(MemscopeCommand):
    """Print the largest live blocks, or the places that hold the most live memory.

Usage: memscope-top [N] [--by site|stack|thread|label|size|none]
                    [--sort size|count|time|address] [--exact] [--at POINT]

N rows (default 10) of live blocks with their size, thread, time and label,
or with --by (or --group-by) one row per group:
  site     the allocation site: the first frame of the allocation's call
           stack outside the allocator (libmemscope, malloc, operator new,
           libstdc++, libc), as function, file:line and library
  stack    the whole call stack (its id: see memscope-stack ID)
  thread, label, size   the allocating thread, the label, the size class
with live bytes, blocks and their share of the live heap.
Example: memscope-top 5 --by site"""

    command = "memscope-top"
    options = frozenset({"--top", "--sort", "--group-by", "--by", "--exact", "--at"})

    def invoke(self, arg, from_tty):
        options = args.parse(self.command, arg, self.options, max_positional=1)
        if options.positional:
            options.top = args.positive(self.command, "N", options.positional[0])
        self.print_sections(options, eng.SECTION_BLOCKS)


COMMANDS = (SnapshotCommand, StatsCommand, ThreadsCommand, TopCommand)
