"""Formatting for what Python itself prints (pretty printers, store line).

Snapshot text comes from the engine's renderers; these helpers cover the
few figures the plugin prints on its own, in the same style: binary units
(KiB, MiB) with the exact byte count available, times in ns/us/ms/s.
"""

import gdb

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(n):
    """'1.5 KiB' for 1536, '100 B' for 100."""
    n = int(n)
    if n < 1024:
        return "%d B" % n
    value = float(n)
    unit = 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    return "%.1f %s" % (value, _UNITS[unit])


def size_with_bytes(n):
    """'1.5 KiB (1536)', or '100 B' where the human form is already exact."""
    n = int(n)
    if n < 1024:
        return "%d B" % n
    return "%s (%d)" % (human_size(n), n)


def human_time(ns):
    """A duration since recording began: '850 ns', '12.3 us', '4.56 ms', '7.890 s'."""
    ns = int(ns)
    if ns < 1000:
        return "%d ns" % ns
    if ns < 1000000:
        return "%.1f us" % (ns / 1e3)
    if ns < 1000000000:
        return "%.2f ms" % (ns / 1e6)
    return "%.3f s" % (ns / 1e9)


def color_enabled():
    """True when GDB's styling is on (it is off in batch mode and on dumb terminals)."""
    try:
        return bool(gdb.parameter("style enabled"))
    except RuntimeError:
        return False
