"""Argument parsing shared by the memscope commands.

Each command declares which options it takes; a mistake is a gdb.GdbError
with one sentence naming the command, the argument and the fix.
"""

import re

import gdb

from . import engine as eng


class Options:
    """Parsed options with the engine's defaults."""

    def __init__(self):
        self.top = 10
        self.sort = "size"
        self.group_by = "none"
        self.exact = False
        self.json = None
        self.folded = None
        self.at = (eng.AT_END, 0, None)
        self.positional = []

    def render_options(self, sections=0, color=False):
        from . import symbols  # pylint: disable=import-outside-toplevel
        return symbols.attach(eng.RenderOptions(self.top, sections, eng.GROUP_BY[self.group_by],
                                                eng.SORT_BY[self.sort], 1 if color else 0, 1 if self.exact else 0))


_TIME_UNITS = {"": 1, "ns": 1, "us": 1000, "ms": 1000000, "s": 1000000000}


def parse_point(command, text):
    """--at POINT: end, peak, mark:NAME, event:N, time:T[ns|us|ms|s], or TIME (seconds, or with a unit)."""
    if text == "end":
        return (eng.AT_END, 0, None)
    if text == "peak":
        return (eng.AT_PEAK, 0, None)
    kind, _, value = text.partition(":")
    if kind == "mark" and value:
        return (eng.AT_MARK, 0, value)
    if kind == "event" and value.isdigit():
        return (eng.AT_EVENT, int(value), None)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s)?", value)
    bare = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s)?", text)
    if bare:  # --at TIME: seconds since recording began unless a unit follows (as memscope-timeline shows)
        return (eng.AT_TIME, int(round(float(bare.group(1)) * _TIME_UNITS[bare.group(2) or "s"])), None)
    if kind == "time" and match:
        return (eng.AT_TIME, int(float(match.group(1)) * _TIME_UNITS[match.group(2) or ""]), None)
    raise gdb.GdbError("%s: --at wants end, peak, mark:NAME, event:N or time:T[ns|us|ms|s], not '%s'."
                       % (command, text))


def positive(command, name, text):
    if not text.isdigit() or int(text) == 0:
        raise gdb.GdbError("%s: %s wants a positive whole number, not '%s'." % (command, name, text))
    return int(text)


def _choice(command, name, text, choices):
    if text not in choices:
        raise gdb.GdbError("%s: %s wants one of %s, not '%s'." % (command, name, "|".join(choices), text))
    return text


def parse(command, arg, allowed, max_positional=0):
    """Parses arg (the command's argument string) into Options.

    allowed: the options this command takes, e.g. {"--top", "--exact"}.
    """
    try:
        argv = gdb.string_to_argv(arg)
    except gdb.error as exc:
        raise gdb.GdbError("%s: %s." % (command, str(exc).rstrip("."))) from None
    opts = Options()
    i = 0
    while i < len(argv):
        word = argv[i]
        name, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if not word.startswith("--") or word == "--":
            if word == "--":
                opts.positional.extend(argv[i + 1:])
                break
            opts.positional.append(word)
            i += 1
            continue
        if name not in allowed:
            raise gdb.GdbError("%s: unknown option '%s' (see 'help %s')." % (command, name, command))
        if name in ("--exact", "--at-peak"):
            if eq:
                raise gdb.GdbError("%s: %s takes no value." % (command, name))
            if name == "--exact":
                opts.exact = True
            else:
                opts.at = (eng.AT_PEAK, 0, None)
            i += 1
            continue
        if eq:
            value = inline
            i += 1
        elif i + 1 < len(argv):
            value = argv[i + 1]
            i += 2
        else:
            raise gdb.GdbError("%s: %s needs a value (see 'help %s')." % (command, name, command))
        if name == "--top":
            opts.top = positive(command, name, value)
        elif name == "--sort":
            opts.sort = _choice(command, name, value, list(eng.SORT_BY))
        elif name == "--group-by":
            opts.group_by = _choice(command, name, value, list(eng.GROUP_BY))
        elif name == "--by":
            opts.group_by = _choice(command, name, value, list(eng.GROUP_BY))
        elif name == "--folded":
            opts.folded = value
        elif name == "--json":
            opts.json = value
        elif name == "--at":
            opts.at = parse_point(command, value)
        elif name == "--at-mark":
            opts.at = (eng.AT_MARK, 0, value)
        elif name == "--at-event":
            if not value.isdigit():
                raise gdb.GdbError("%s: --at-event wants a whole number of events, not '%s'." % (command, value))
            opts.at = (eng.AT_EVENT, int(value), None)
    if len(opts.positional) > max_positional:
        raise gdb.GdbError("%s: unexpected argument '%s' (see 'help %s')."
                           % (command, opts.positional[max_positional], command))
    return opts
