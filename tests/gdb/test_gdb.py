#!/usr/bin/env python3
"""memscope GDB end-to-end tests: real `gdb -nx -batch` on the gdb_heap and
gdb_damage fixtures (tests/fixtures), live, on gcore and kernel cores, with a
stripped library, through auto-load, and with damaged stores.

Usage: test_gdb.py --plugin gdb/memscope.py --library LIB --engine ENGINE
                   --heap GDB_HEAP --heap-linked GDB_HEAP_LINKED --damage GDB_DAMAGE
                   --build BUILD_DIR CASE

Figures are exact: heap_check.py holds what gdb_heap knows of its heap.
A case that cannot run on this machine exits 77 (CTest: skipped).
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time

import gdbtest
from gdbtest import Skip, check, check_equal, live_prelude, run_gdb
from heap_check import (NO_STORE, check_heap, check_text_matches_json, core_captures, heap_captures,
                        heap_session, j_summary)

COMMANDS = ("memscope-snapshot", "memscope-stats", "memscope-threads", "memscope-top", "memscope-block",
            "memscope-stack", "memscope-export")

# --------------------------------------------------------------------- cases

def case_help(paths):
    result = run_gdb(paths, ["capture help-memscope help memscope"]
                     + ["capture help-%s help %s" % (c, c) for c in COMMANDS])
    result.no_traceback()
    listing = result.output("help-memscope")
    for command in COMMANDS:
        line = [ln for ln in listing.splitlines() if ln.strip().startswith(command + " ")]
        check(line and "--" in line[0], "help memscope does not list %s with a summary:\n%s" % (command, listing))
        text = result.output("help-" + command)
        check("Usage: " + command in text, "help %s has no 'Usage: %s' line:\n%s" % (command, command, text))
        check("Example: " + command in text, "help %s has no example:\n%s" % (command, text))
        check(text.splitlines()[0].endswith("."), "help %s: summary line is not a sentence" % command)


def case_complete(paths):
    """Tab completion of options and their values."""
    tests = {
        "memscope-snapshot --so": ["memscope-snapshot --sort"],
        "memscope-top --group-by t": ["memscope-top --group-by thread"],
        "memscope-stats --": ["memscope-stats --at", "memscope-stats --exact"],
        "memscope snapshot --at p": ["memscope snapshot --at peak"],
        "memscope-snapshot --top 3 --sort ti": ["memscope-snapshot --top 3 --sort time"],
        "memscope-block --e": ["memscope-block --exact"],
    }
    names = {"c%d" % i: line for i, line in enumerate(tests)}
    result = run_gdb(paths, ["capture %s complete %s" % (n, line) for n, line in names.items()])
    result.no_traceback()
    for name, line in names.items():
        check_equal(result.output(name).splitlines(), tests[line], "completions of %r" % line)


def case_errors(paths):
    """No process, bad arguments: one sentence each, no traceback."""
    result = run_gdb(paths, [
        "capture none-stats memscope-stats",
        "capture none-block memscope-block 0x1000",
    ] + live_prelude(paths.library) + [
        "capture bad-top memscope-snapshot --top x",
        "capture bad-top0 memscope-top 0",
        "capture bad-sort memscope-snapshot --sort weight",
        "capture bad-group memscope-top --group-by colour",
        "capture bad-option memscope-threads --bogus",
        "capture bad-missing memscope-snapshot --json",
        "capture bad-at memscope-snapshot --at yesterday",
        "capture bad-mark memscope-snapshot --at mark:no-such-mark",
        "capture bad-expr memscope-block no_such_variable",
        "capture bad-noaddr memscope-block",
        "capture bad-struct memscope-block fixture_stats",
        "capture bad-extra memscope-stats extra",
        "capture bad-file memscope-snapshot --json /nonexistent-dir/x.json",
    ], program=paths.heap, env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine})
    result.no_traceback()
    expected = {
        "none-stats": "no process and no core file: run the program, attach to it, or load a core first.",
        "none-block": "no process and no core file: run the program, attach to it, or load a core first.",
        "bad-top": "memscope-snapshot: --top wants a positive whole number, not 'x'.",
        "bad-top0": "memscope-top: N wants a positive whole number, not '0'.",
        "bad-sort": "memscope-snapshot: --sort wants one of size|count|time|address, not 'weight'.",
        "bad-group": "memscope-top: --group-by wants one of none|thread|label|size|stack|site, not 'colour'.",
        "bad-option": "memscope-threads: unknown option '--bogus' (see 'help memscope-threads').",
        "bad-missing": "memscope-snapshot: --json needs a value (see 'help memscope-snapshot').",
        "bad-at": "memscope-snapshot: --at wants end, peak, mark:NAME, event:N or time:T[ns|us|ms|s], "
                  "not 'yesterday'.",
        "bad-mark": "the store has no mark named 'no-such-mark'.",
        "bad-expr": "memscope-block: cannot evaluate 'no_such_variable': "
                    "No symbol \"no_such_variable\" in current context.",
        "bad-noaddr": "memscope-block: give the address to look up (see 'help memscope-block').",
        "bad-struct": "memscope-block: 'fixture_stats' is a struct memscope_stats, not an address "
                      "(try &fixture_stats or a pointer).",
        "bad-extra": "memscope-stats: unexpected argument 'extra' (see 'help memscope-stats').",
        "bad-file": "memscope-snapshot: cannot write /nonexistent-dir/x.json: No such file or directory.",
    }
    for name, message in expected.items():
        check_equal(result.error(name), message, "error of " + name)
    # The same through GDB's own command line (what a user sees): one line on stderr.
    direct = run_gdb(paths, ["memscope-snapshot --top x"])
    direct.no_traceback()
    check_equal(direct.stderr.strip(), expected["bad-top"], "stderr of a bad argument")


def case_live(paths):
    # No engine setting: the plugin must find the engine beside the inferior's libmemscope.so.
    result = heap_session(paths, env={}, extra=[
        "capture engine show memscope engine-library",
        "capture text memscope-snapshot --exact --top 20",
        "capture stats memscope-stats --exact",
        "capture threads memscope-threads --exact",
        "capture top memscope-top 3",
        "capture top-label memscope-top --group-by label",
        "capture block-d memscope-block fixture_main_blocks[3] + 100",
        "capture block-x memscope-block fixture_main_blocks[0]",
        "capture json-peak memscope-snapshot --at peak --json -",
        "capture json-event memscope-snapshot --at event:3 --json -",
        "capture json-file memscope-snapshot --json %s" % os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                                       "memscope-gdb-live-%d.json" % os.getpid()),
    ])
    end = check_heap(result)
    check(os.path.realpath(paths.engine) in result.output("engine"),
          "the engine was not found beside the inferior's library: " + result.output("engine"))
    check_text_matches_json(result.output("text"), end)
    check_text_matches_json(result.output("stats"), end)
    check("found by symbol memscope_store_root" in result.output("stats"),
          "memscope-stats does not say the store was found by symbol:\n" + result.output("stats"))
    threads = result.output("threads")
    for w in range(2):
        check(str(result.output("worker-tid-%d" % w)) in threads, "worker tid missing from memscope-threads")
    check("fixture_config" in result.output("text"), "the label is missing from memscope-snapshot")
    check("fixture_config" in result.output("top-label"), "the label is missing from memscope-top --group-by label")
    block_d = result.output("block-d")
    check("fixture_config" in block_d and "5555" in block_d.replace(",", ""),
          "memscope-block on the labeled block lacks its label or size:\n" + block_d)
    peak = json.loads(result.output("json-peak"))
    check_equal(peak["point"]["kind"], "peak", "point of --at peak")
    check_equal(j_summary(peak)["current_memory"], j_summary(end)["peak_memory"], "live bytes at the peak")
    check_equal(json.loads(result.output("json-event"))["point"]["events"], 3, "events replayed for --at event:3")
    block_x = result.output("block-x")  # main's block x, freed by worker 2 (memscope thread 3)
    check("not in a live block" in block_x and re.search(r"\b3\s+freed\b", block_x) is not None,
          "memscope-block on the freed block does not show it freed by thread 3:\n" + block_x)
    json_file = os.path.join(os.environ.get("TMPDIR", "/tmp"), "memscope-gdb-live-%d.json" % os.getpid())
    try:
        with open(json_file, encoding="utf-8") as f:
            check_equal(json.load(f), end, "JSON written to a file vs printed")
    finally:
        if os.path.exists(json_file):
            os.unlink(json_file)
    check("wrote the snapshot (%d live blocks" % j_summary(end)["active_allocations"] in result.output("json-file"),
          "memscope-snapshot --json FILE did not confirm: " + result.output("json-file"))


def case_gcore(paths):
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "gdb_heap.core")
        live = heap_session(paths, ["capture gcore gcore " + core])
        live_doc = check_heap(live)
        check(os.path.exists(core), "gcore wrote no core:\n" + live.describe())
        dead = run_gdb(paths, core_captures() + ["capture stats memscope-stats --exact",
                                                 "capture text memscope-snapshot --exact"],
                       program=paths.heap, core=core, env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine})
        core_doc = check_heap(dead)
        check_equal(core_doc, live_doc, "snapshot JSON of the gcore core vs the live process")
        check_text_matches_json(dead.output("text"), core_doc)


def _core_pattern():
    with open("/proc/sys/kernel/core_pattern", encoding="utf-8") as f:
        return f.read().strip()


def case_kernel_core(paths):
    pattern = _core_pattern()
    if pattern.startswith("|"):
        raise Skip("kernel.core_pattern pipes cores to %s; set it to a file pattern (e.g. 'core') to run this test"
                   % pattern.split()[0][1:])
    with gdbtest.TempDir() as tmp:
        env = dict(os.environ, LD_PRELOAD=paths.library)

        hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        if hard == 0:
            raise Skip("core dumps are forbidden here (hard RLIMIT_CORE is 0)")

        def unlimited():  # ulimit -c unlimited (or as far as the hard limit allows)
            resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))

        start = time.time()
        proc = subprocess.run([paths.heap, "crash"], cwd=tmp, env=env, preexec_fn=unlimited, timeout=60,
                              capture_output=True)
        check(proc.returncode < 0, "gdb_heap crash exited with %d instead of dying of a signal" % proc.returncode)
        core = _find_core(tmp, pattern, start)
        if core is None:
            raise Skip("the kernel wrote no core for pid (core_pattern %r): cores may be disabled here" % pattern)
        dead = run_gdb(paths, core_captures() + ["capture text memscope-snapshot --exact"],
                       program=paths.heap, core=core, env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine})
        doc = check_heap(dead)
        check_text_matches_json(dead.output("text"), doc)


def _find_core(cwd, pattern, since):
    directory = os.path.dirname(pattern) if pattern.startswith("/") else cwd
    if not os.path.isdir(directory):
        return None
    found = []
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.startswith("core") and os.path.isfile(path) and os.path.getmtime(path) >= since - 1:
            found.append(path)
    return max(found, key=os.path.getmtime) if found else None


# "memscope_store_root" with its last two characters changed so that the GNU
# symbol hash (h = h * 33 + c) stays the same: 'o' + 1 and 't' - 33.
RENAMED_ROOT = b"memscope_store_ropS"


def _gnu_hash(name):
    h = 5381
    for c in name:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


def _stripped_copy(paths, tmp):
    """libmemscope.so with no symbol table (objcopy --strip-all) and its root's
    dynamic symbol renamed, so GDB cannot find memscope_store_root by name and
    must scan memory for the magic. --strip-all keeps .dynsym, which GDB reads
    too; the new name has the same GNU hash, so the library's own relocation
    of the root still resolves."""
    lib = os.path.join(tmp, "libmemscope.so")
    subprocess.run(["objcopy", "--strip-all", paths.library, lib], check=True)
    with open(lib, "rb") as f:
        data = f.read()
    check(_gnu_hash(RENAMED_ROOT) == _gnu_hash(b"memscope_store_root"), "the renamed root's hash differs")
    check(data.count(b"memscope_store_root\0") == 1, "the stripped library does not name memscope_store_root once")
    with open(lib, "wb") as f:
        f.write(data.replace(b"memscope_store_root\0", RENAMED_ROOT + b"\0"))
    return lib


def case_stripped(paths):
    if shutil.which("objcopy") is None:
        raise Skip("objcopy (binutils) is not installed")
    with gdbtest.TempDir() as tmp:
        lib = _stripped_copy(paths, tmp)
        core = os.path.join(tmp, "gdb_heap.core")
        live = heap_session(paths, ["capture stats memscope-stats", "capture gcore gcore " + core], library=lib)
        live_doc = check_heap(live)
        check("found by magic scan" in live.output("stats"),
              "the stripped library's store was not found by scanning:\n" + live.output("stats"))
        dead = run_gdb(paths, core_captures() + ["capture stats memscope-stats"], program=paths.heap, core=core,
                       env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine})
        check_equal(check_heap(dead), live_doc, "snapshot JSON of the stripped library's core vs live")
        check("found by magic scan" in dead.output("stats"), "core of the stripped library: not found by scanning")
        # The library file gone: GDB cannot load it, the store is still found in the core's memory.
        os.unlink(lib)
        orphan = run_gdb(paths, core_captures(), program=paths.heap, core=core,
                         env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine})
        check_equal(check_heap(orphan), live_doc, "snapshot JSON of a core whose library is gone vs live")


def case_autoload(paths):
    """No -x: GDB loads the plugin from build/lib/libmemscope.so-gdb.py."""
    scripts = [n for n in os.listdir(paths.libdir) if n.startswith("libmemscope") and n.endswith("-gdb.py")]
    check(scripts, "no auto-load script in %s" % paths.libdir)
    commands = live_prelude(paths.library) + heap_captures() + ["capture help help memscope-snapshot"]
    result = run_gdb(paths, commands, program=paths.heap, plugin=False,
                     init=["add-auto-load-safe-path " + paths.libdir])
    check("Usage: memscope-snapshot" in result.output("help"), "the plugin was not auto-loaded")
    check_heap(result)  # and the engine was found beside the library, with no setting


def case_cache(paths):
    """The store is read once per stop: again only after the program moved or memory was written."""
    opens = "python import memscope_gdb; gdb.set_convenience_variable('opens', memscope_gdb.store.stats['opens'])"
    result = run_gdb(paths, live_prelude(paths.library) + [
        "capture s1 memscope-snapshot --json -", "capture s2 memscope-stats", "capture s3 memscope-threads",
        opens, "capture-eval opens-1 $opens",
        "finish",
        "capture s4 memscope-snapshot --json -", "capture s5 memscope-top 3",
        opens, "capture-eval opens-2 $opens",
        "set var fixture_label_rc = 7",
        "capture s6 memscope-snapshot --json -",
        opens, "capture-eval opens-3 $opens",
    ], program=paths.heap, env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine})
    result.no_traceback()
    for name in ("s1", "s2", "s3", "s4", "s5", "s6"):
        result.output(name)
    check_equal(result.output("opens-1"), 1, "stores read for three commands at one stop")
    check_equal(result.output("opens-2"), 2, "stores read after the program moved (finish)")
    check_equal(result.output("opens-3"), 3, "stores read after GDB wrote memory")
    check_equal(json.loads(result.output("s4")), json.loads(result.output("s1")), "snapshot after finish")


def case_color(paths):
    """ANSI colour only while GDB's styling is on (batch mode starts with it off)."""
    result = run_gdb(paths, live_prelude(paths.library) + [
        "capture plain memscope-snapshot", "set style enabled on", "capture styled memscope-snapshot",
        "capture styled-block memscope-block fixture_main_blocks[3]", "set style enabled off",
        "capture plain-again memscope-stats"], program=paths.heap, env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine})
    result.no_traceback()
    check("\x1b[" not in result.output("plain"), "colour with styling off")
    check("\x1b[" not in result.output("plain-again"), "colour after styling was turned off again")
    check("\x1b[" in result.output("styled"), "no colour with styling on:\n" + result.output("styled"))
    strip = re.sub(r"\x1b\[[0-9;]*m", "", result.output("styled"))
    check_equal(strip, result.output("plain"), "the styled snapshot without its escapes")


def case_installed(paths):
    """cmake --install into a temporary prefix: GDB auto-loads the installed
    plugin (share/memscope/gdb) from the script beside the installed library
    and finds the installed engine, with no setting."""
    with gdbtest.TempDir() as prefix:
        proc = subprocess.run(["cmake", "--install", paths.build, "--prefix", prefix], capture_output=True, text=True)
        check(proc.returncode == 0, "cmake --install failed:\n" + proc.stdout + proc.stderr)
        libdir = os.path.join(prefix, "lib")
        scripts = [n for n in os.listdir(libdir) if n.endswith("-gdb.py")]
        check(scripts, "no auto-load script installed in %s" % libdir)
        for built in (paths.library, paths.engine):  # in case the libraries have no install rule
            if not os.path.exists(os.path.join(libdir, os.path.basename(built))):
                shutil.copy2(built, libdir)
        library = os.path.join(libdir, os.path.basename(paths.library))
        result = run_gdb(paths, live_prelude(library) + heap_captures() + [
            "capture where python import memscope_gdb; print(memscope_gdb.__file__)",
            "capture engine show memscope engine-library"], program=paths.heap, plugin=False,
            init=["add-auto-load-safe-path " + libdir], env={})
        check_heap(result)
        check(result.output("where").startswith(os.path.join(prefix, "share", "memscope", "gdb")),
              "the plugin was not loaded from the install: " + result.output("where"))
        check(os.path.join(libdir, "libmemscope-engine.so") in result.output("engine"),
              "the installed engine was not used: " + result.output("engine"))


def case_linked(paths):
    """A program linked with -lmemscope (no LD_PRELOAD): same figures, and the
    printers are registered for libmemscope.so's objfile too."""
    result = run_gdb(paths, ["break fixture_checkpoint", "run"] + heap_captures() + [
        "capture stats memscope-stats",
        "capture printers info pretty-printer"], program=paths.heap_linked, env={})
    check_heap(result)
    check("found by symbol memscope_store_root" in result.output("stats"), "linked: store not found by symbol")
    printers = result.output("printers")
    check(re.search(r"objfile /\S*libmemscope\.so\S* pretty-printers:\n\s+memscope", printers) is not None,
          "no memscope printers registered for libmemscope.so:\n" + printers)


def case_exec_wrapper(paths):
    """The way the README starts a program under memscope with GDB's shell
    left on: the exec wrapper sets LD_PRELOAD for the program only. Same
    exact figures as a preloaded run."""
    result = run_gdb(paths, ["set exec-wrapper env LD_PRELOAD=" + paths.library, "break fixture_checkpoint", "run"]
                     + heap_captures() + ["capture stats memscope-stats"],
                     program=paths.heap, env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine})
    check_heap(result)
    check("found by symbol memscope_store_root" in result.output("stats"), "exec-wrapper: store not found by symbol")


def case_reader(paths):
    """The read callback under failing reads (tests/gdb/reader_check.py)."""
    result = run_gdb(paths, live_prelude(paths.library) + ["source " + os.path.join(gdbtest.HERE, "reader_check.py")],
                     program=paths.heap, env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine})
    check("READER OK" in result.stdout, "the read callback check failed:\n" + result.describe())
    check("Exception ignored" not in result.stderr, "an exception reached ctypes:\n" + result.describe())


def case_no_memscope(paths):
    result = run_gdb(paths, ["break fixture_checkpoint", "run", "capture stats memscope-stats",
                             "capture snap memscope-snapshot"], program=paths.heap,
                     env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine})
    result.no_traceback()
    check_equal(result.error("stats"), NO_STORE, "error without libmemscope.so")
    check_equal(result.error("snap"), NO_STORE, "error without libmemscope.so")
    # LD_PRELOAD set, but the program started through a shell: the error says why it is missing.
    shell = run_gdb(paths, ["set environment LD_PRELOAD=" + paths.library, "break fixture_checkpoint", "run",
                            "capture stats memscope-stats"], program=paths.heap,
                    env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine})
    shell.no_traceback()
    check_equal(shell.error("stats"), NO_STORE + " (GDB started the program through a shell, and libmemscope keeps "
                "LD_PRELOAD from what a shell execs: use 'set exec-wrapper env LD_PRELOAD=...' instead, or "
                "'set startup-with-shell off')",
                "error with LD_PRELOAD through a shell")


def case_engine_missing(paths):
    missing = "/nonexistent/libmemscope-engine.so"
    result = run_gdb(paths, live_prelude(paths.library) + [
        "capture env memscope-stats",
        "set memscope engine-library " + missing,
        "capture setting memscope-stats",
        "set memscope engine-library " + paths.engine,
        "capture fixed memscope-stats",
    ], program=paths.heap, env={"MEMSCOPE_ENGINE_LIBRARY": missing})
    result.no_traceback()
    check_equal(result.error("env"), "the memscope engine library '%s' (from MEMSCOPE_ENGINE_LIBRARY) does not "
                "exist: fix MEMSCOPE_ENGINE_LIBRARY or use 'set memscope engine-library PATH'." % missing,
                "error with a wrong MEMSCOPE_ENGINE_LIBRARY")
    check_equal(result.error("setting"), "the memscope engine library '%s' does not exist: fix it with "
                "'set memscope engine-library PATH'." % missing, "error with a wrong setting")
    result.output("fixed")


def case_printers(paths):
    result = run_gdb(paths, ["break fixture_checkpoint", "run"] + [
        "capture stats print fixture_stats", "capture thread print fixture_thread_stats",
        "capture alloc print fixture_allocation", "capture handle print fixture_snapshot",
        "capture null print fixture_null_snapshot"], program=paths.heap)
    result.no_traceback()
    expected = {
        "stats": "{total_allocations = 16, total_deallocations = 5, active_allocations = 11, "
                 "total_allocated = 30.2 KiB (30931), total_deallocated = 11.1 KiB (11399), "
                 "current_memory = 19.1 KiB (19532), peak_memory = 1.5 MiB (1572864), "
                 "unmatched_deallocations = 0, dropped_events = 0, peak_time_ns = 1.50 ms, time_ns = 2.000 s, "
                 "events = 22, reallocations = 1, threads = 3, overlapping_allocations = 0}",
        "thread": "{thread = 2, tid = 4242, allocations = 7, deallocations = 2, allocated_bytes = 4.8 KiB (4900), "
                  "released_bytes = 1.4 KiB (1400), current_memory = 3.4 KiB (3500), live_blocks = 5, "
                  "peak_memory = 4.8 KiB (4900), peak_time_ns = 750 ns}",
        "alloc": '{address = 0x5555deadb000, size = 5.4 KiB (5555), time_ns = 12.3 us, thread = 1, stack = 0, '
                 'label_name = "fixture_config", label_type = "struct fixture_config"}',
        "handle": "0x5a5a000 <memscope snapshot handle>",
        "null": "NULL memscope snapshot handle",
    }
    for name, text in expected.items():
        out = result.output(name)
        check_equal(out.split("= ", 1)[1].strip(), text, "print of " + name)


def _damage_case(mode, message):
    def case(paths):
        result = run_gdb(paths, live_prelude(paths.library) + [
            "capture-eval damaged fixture_damaged", "capture stats memscope-stats",
            "capture snapshot memscope-snapshot", "memscope-threads"],
            program=paths.damage, program_args=[mode], env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine},
            timeout=120)
        result.no_traceback()
        check_equal(result.output("damaged"), 0 if mode == "none" else 1, "fixture_damaged")
        if message is None:
            result.output("stats")
            result.output("snapshot")
            return
        error = result.error("stats")
        check(re.fullmatch(message, error) is not None,
              "error for a damaged store (%s): %r does not match %r" % (mode, error, message))
        check_equal(result.error("snapshot"), error, "the same error from memscope-snapshot")
        # What a user sees: that one sentence on stderr.
        check_equal(result.stderr.strip().splitlines()[-1], error, "stderr of memscope-threads")
        check(error.count(". ") == 0 or error.endswith("."), "not one sentence: %r" % error)
    return case


def case_damage_many_roots(paths):
    """4096 copies of a root (no library: found by the magic scan) over one
    chunk of 1,000,000 records damaged at its last: each candidate the engine
    refuses has read the whole 32 MB chunk. The scan stops after a few such
    refusals (it tried all 4096: 21 s here) and names the first."""
    mkcore = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e", "inspect", "mkcore.py")
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "many-roots.core")
        subprocess.run([sys.executable, mkcore, core, "--many-roots", "4096", "1000000"], check=True)
        start = time.monotonic()
        result = gdbtest.run_gdb(paths, ["capture snapshot memscope-snapshot"], core=core,
                                 env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine}, timeout=120)
        took = time.monotonic() - start
        result.no_traceback()
        check_equal(result.error("snapshot"),
                    "memscope store at 0x601000: chunk 0 at 0x7f0000000000: record 999999 names thread 2, "
                    "the chunk thread 1.", "the first refused candidate's sentence")
        check(took < 10, "many roots took %.1f s: the magic scan is not bounded" % took)


HEX = r"0x[0-9a-f]+"
DAMAGE = {
    "none": None,
    "magic": r"memscope store at %s: its magic does not match \(the store is damaged, or recording has not "
             r"started yet\)\." % HEX,
    "version": r"the store at %s has ABI version 99; this engine knows version \d+\." % HEX,
    "chunk-count": r"memscope store at %s: chunk \d+ at %s: count \d+ exceeds capacity \d+\." % (HEX, HEX),
    "next-garbage": r"memscope store at %s: chunk \d+ at 0x10: header cannot be read\." % HEX,
    "next-loop": r"memscope store at %s: chunk list: chunk \d+ at %s was already met \(a loop\)\." % (HEX, HEX),
}

CASES = {
    "help": case_help,
    "complete": case_complete,
    "errors": case_errors,
    "live": case_live,
    "gcore": case_gcore,
    "kernel-core": case_kernel_core,
    "stripped": case_stripped,
    "autoload": case_autoload,
    "cache": case_cache,
    "reader": case_reader,
    "linked": case_linked,
    "exec-wrapper": case_exec_wrapper,
    "installed": case_installed,
    "color": case_color,
    "no-memscope": case_no_memscope,
    "engine-missing": case_engine_missing,
    "printers": case_printers,
    "damage-many-roots": case_damage_many_roots,
}
for _mode, _message in DAMAGE.items():
    CASES["damage-" + _mode] = _damage_case(_mode, _message)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("plugin", "library", "engine", "heap", "heap-linked", "damage", "build"):
        parser.add_argument("--" + name, required=True)
    return gdbtest.main(CASES, parser)


if __name__ == "__main__":
    sys.exit(main())
