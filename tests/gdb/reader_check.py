"""GDB-side check of the engine bridge's read callback (run by test_gdb.py's
"reader" case at gdb_heap's checkpoint, after the plugin is loaded).

The callback must turn every GDB failure into an error code for the engine,
never let a Python exception reach ctypes, and never touch GDB again once
GDB failed in a way other than an unreadable address. Prints "READER OK" or
raises AssertionError.
"""

import errno

import gdb

from memscope_gdb import engine as eng
from memscope_gdb import settings, store


class Flaky:
    """An inferior whose read_memory raises `error` from the `fail_at`-th call on."""

    def __init__(self, inferior, fail_at, error):
        self.inferior = inferior
        self.fail_at = fail_at
        self.error = error
        self.calls = 0
        self.calls_after_failure = 0

    def read_memory(self, addr, length):
        self.calls += 1
        if self.calls > self.fail_at:
            self.calls_after_failure += 1
        if self.calls >= self.fail_at:
            raise self.error
        return self.inferior.read_memory(addr, length)


def expect_failure(fail_at, error, code, text):
    engine = settings.engine()
    root = store.root_by_symbol()
    flaky = Flaky(gdb.selected_inferior(), fail_at, error)
    try:
        eng.open_history(engine, flaky, root, "test")
    except eng.EngineError as exc:
        assert exc.code == code, "fail_at %d: code %d, expected %d (%s)" % (fail_at, exc.code, code, exc)
        assert text in str(exc), "fail_at %d: %r lacks %r" % (fail_at, str(exc), text)
        return flaky
    raise AssertionError("fail_at %d: the store opened although reads failed" % fail_at)


# An unreadable address: -EFAULT to the engine, which names what it could not read.
for n in (1, 2, 3):
    expect_failure(n, gdb.MemoryError("Cannot access memory at address 0x10"), -errno.EFAULT, "")
# GDB itself failing: reported as such, and GDB is not asked again.
for n in (1, 2, 3):
    flaky = expect_failure(n, gdb.error("the process went away"), -errno.EIO,
                           "GDB could not read the process's memory: the process went away.")
    assert flaky.calls_after_failure == 0, "GDB was asked again after it failed (%d)" % flaky.calls_after_failure
# Ctrl-C while reading.
flaky = expect_failure(2, KeyboardInterrupt(), -errno.EINTR, "interrupted")
assert flaky.calls_after_failure == 0
# And a healthy read still works afterwards.
history = eng.open_history(settings.engine(), gdb.selected_inferior(), store.root_by_symbol(), "test")
assert history.info().events > 0
history.close()
gdb.write("READER OK\n")
