#!/usr/bin/env python3
"""memscope inspect end-to-end tests: cores of the GDB test fixtures (gcore
and kernel cores) read by `memscope inspect` must give the figures GDB's
memscope-snapshot (and memscope-diff, memscope-timeline) give on the same
core, symbolized frames must match addr2line, and every hostile input must
give one `memscope: ...` sentence and exit 1, never a crash, a hang or
unbounded memory.

Every inspect run is made twice when --asan is given: with the plain
command and with the ASan+UBSan build (MEMSCOPE_SANITIZE), which must print
the same and report nothing. The plain run is limited to 1 GiB of address
space more than the core's size.

Usage: test_inspect.py --memscope CLI [--asan CLI_ASAN] --plugin gdb/memscope.py --library LIB
                       --engine ENGINE --heap GDB_HEAP --damage GDB_DAMAGE --sites STACK_SITES
                       --cxx STACK_CXX --curve TIME_CURVE --heap-linked GDB_HEAP_LINKED CASE
"""

import argparse
import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "gdb"))

import gdbtest  # noqa: E402
from gdbtest import Failure, Skip, check, check_equal, run_gdb  # noqa: E402
from heap_check import check_heap, check_text_matches_json, heap_captures  # noqa: E402

MKCORE = os.path.join(HERE, "mkcore.py")
TIMEOUT = 120


class Paths:
    def __init__(self, args):
        for name in ("memscope", "asan", "plugin", "library", "engine", "heap", "damage", "sites", "cxx", "curve",
                     "heap_linked"):
            value = getattr(args, name)
            setattr(self, name, os.path.abspath(value) if value else None)


# ------------------------------------------------------------ running inspect

class Run:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err


def _limit(size):
    def apply():
        limit = (1 << 30) + size
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def _run(binary, args, limit, env=None):
    argv = [binary, "inspect"] + list(args)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                              preexec_fn=limit, env=env, errors="replace")
    except subprocess.TimeoutExpired:
        raise Failure("memscope inspect did not finish within %d s (a hang): %s" % (TIMEOUT, " ".join(argv)))
    return Run(proc.returncode, proc.stdout, proc.stderr)


def inspect(paths, args, rc=0, core=None):
    """Runs memscope inspect ARGS (and its sanitizer build); checks the exit status; returns the plain run."""
    size = os.path.getsize(core) if core and os.path.isfile(core) else 0
    plain = _run(paths.memscope, args, _limit(size))
    what = "memscope inspect " + " ".join(args)
    check(plain.rc == rc, "%s: exit status %d, expected %d\n--- stdout ---\n%s\n--- stderr ---\n%s"
          % (what, plain.rc, rc, plain.out[-3000:], plain.err[-3000:]))
    if paths.asan:
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        san = _run(paths.asan, args, None, env)
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer", "UndefinedBehaviorSanitizer"):
            check(bad not in san.err, "%s under ASan+UBSan reported:\n%s" % (what, san.err[-6000:]))
        check(san.rc == rc, "%s under ASan+UBSan: exit %d, expected %d\n%s" % (what, san.rc, rc, san.err[-3000:]))
        check_equal(san.out, plain.out, "stdout of the sanitizer build vs the plain build (%s)" % what)
    return plain


def refuses(paths, args, pattern, core=None):
    """inspect must exit 1 with one line 'memscope: ...' matching pattern."""
    result = inspect(paths, args, rc=1, core=core)
    lines = result.err.strip().splitlines()
    check(len(lines) == 1 and lines[0].startswith("memscope: "),
          "memscope inspect %s: expected one 'memscope: ...' line on stderr, got:\n%s" % (" ".join(args), result.err))
    check(re.search(pattern, lines[0]) is not None,
          "memscope inspect %s: %r does not match %r" % (" ".join(args), lines[0], pattern))
    check(result.out == "", "memscope inspect %s printed on stdout while failing:\n%s" % (" ".join(args), result.out))
    return lines[0]


def inspect_json(paths, core, *args):
    return json.loads(inspect(paths, [core, "--json", "-"] + list(args), core=core).out)


# ------------------------------------------------------------ comparing JSON

FRAME_NAMES = ("function", "file", "line", "module")


def split_frames(doc):
    """doc without the frames' names (front ends name frames their own way; compared apart), and the names by pc."""
    names = {}
    doc = json.loads(json.dumps(doc))
    for stack in (doc.get("stacks") or {}).values():
        for frame in stack.get("frames", []):
            names[frame["pc"]] = {k: frame.pop(k, None) for k in FRAME_NAMES}
    return doc, names


def check_same_figures(ours, gdbs, what):
    """Every value equal, frame names aside; modules equal (the link map's names, as GDB's); frame functions
    and lines equal where GDB names a function in the program or its own libraries (glibc's internal
    aliases and its inlined frames' files may differ)."""
    a, an = split_frames(ours)
    b, bn = split_frames(gdbs)
    check_equal(a, b, what + " (every figure, frame names aside)")
    check_equal(sorted(an), sorted(bn), what + ": frames")
    for pc, theirs in bn.items():
        mine = an[pc]
        check_equal(mine["module"], theirs["module"], "%s: module of frame %s" % (what, pc))
        if theirs["module"] and not re.search(r"/(libc|ld-linux|libstdc\+\+)", theirs["module"]):
            # GDB names C++'s main main() (its DWARF has no linkage name to demangle; ours says main).
            check_equal(mine["function"], re.sub(r"^main\(\)$", "main", theirs["function"] or ""),
                        "%s: function of frame %s" % (what, pc))
            check_equal(mine["line"], theirs["line"], "%s: line of frame %s" % (what, pc))


# ------------------------------------------------------------ cores

def read_nt_file(core):
    """[(start, end, offset, path)] from the core's NT_FILE note."""
    with open(core, "rb") as f:
        ehdr = f.read(64)
        phoff, = struct.unpack_from("<Q", ehdr, 32)
        phnum, = struct.unpack_from("<H", ehdr, 56)
        f.seek(phoff)
        phdrs = f.read(56 * phnum)
        for i in range(phnum):
            ptype, _, off, _, _, filesz = struct.unpack_from("<IIQQQQ", phdrs, 56 * i)
            if ptype != 4:
                continue
            f.seek(off)
            data = f.read(filesz)
            pos = 0
            while pos + 12 <= len(data):
                namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
                pos += 12
                name = data[pos:pos + namesz]
                pos += (namesz + 3) & ~3
                desc = data[pos:pos + descsz]
                pos += (descsz + 3) & ~3
                if name == b"CORE\0" and ntype == 0x46494c45:
                    count, page = struct.unpack_from("<QQ", desc, 0)
                    entries = [struct.unpack_from("<QQQ", desc, 16 + 24 * k) for k in range(count)]
                    names = desc[16 + 24 * count:].split(b"\0")
                    return [(s, e, o * page, names[k].decode()) for k, (s, e, o) in enumerate(entries)]
    return []


def gcore_of(paths, program, core, args=(), library=None, captures=(), preload=True):
    commands = ["set startup-with-shell off"]
    if preload:
        commands.append("set environment LD_PRELOAD=" + (library or paths.library))
    commands += ["break fixture_checkpoint", "run"] + list(captures) + ["capture gcore gcore " + core]
    result = run_gdb(paths, commands, program=program, program_args=args,
                     env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine})
    check(os.path.exists(core), "gcore wrote no core:\n" + result.describe())
    return result


def gdb_on_core(paths, program, core, captures):
    result = run_gdb(paths, captures, program=program, core=core, env={"MEMSCOPE_ENGINE_LIBRARY": paths.engine})
    result.no_traceback()
    return result


def check_heap_core(paths, core):
    """GDB's figures on a core of gdb_heap (checked against what the fixture knows) and inspect's."""
    dead = gdb_on_core(paths, paths.heap, core, heap_captures() + [
        "capture json-peak memscope-snapshot --at peak --json -",
        "capture json-event memscope-snapshot --at event:3 --json -",
        "capture json-site memscope-snapshot --group-by site --json -",
        "capture text memscope-snapshot --exact"])
    gdb_end = check_heap(dead)  # GDB's figures are the fixture's
    check_same_figures(inspect_json(paths, core), gdb_end, "snapshot JSON at the end")
    check_same_figures(inspect_json(paths, core, "--at-mark", "fixture-start"), json.loads(dead.output("json-mark")),
                       "snapshot JSON at mark fixture-start")
    check_same_figures(inspect_json(paths, core, "--at-peak"), json.loads(dead.output("json-peak")),
                       "snapshot JSON at the peak")
    check_same_figures(inspect_json(paths, core, "--at-event", "3"), json.loads(dead.output("json-event")),
                       "snapshot JSON at event 3")
    text = inspect(paths, [core, "--exact"], core=core).out
    check_text_matches_json(text, gdb_end)
    check_equal(_strip_numbers_free(text), _strip_numbers_free(dead.output("text")),
                "inspect's text vs memscope-snapshot's (same renderer)")
    return dead


def _strip_numbers_free(text):
    return text.rstrip("\n")


# ------------------------------------------------------------------- cases

def case_help(paths):
    result = inspect(paths, ["--help"])
    check("Usage: memscope inspect CORE" in result.out, "no usage line:\n" + result.out)
    for option in ("--exe", "--lib-path", "--sysroot", "--at-peak", "--at-mark", "--at", "--at-event", "--by",
                   "--block", "--diff", "--timeline", "--json", "--folded"):
        check(option in result.out, "inspect --help does not mention " + option)
    top = subprocess.run([paths.memscope, "--help"], capture_output=True, text=True, check=True).stdout
    check(re.search(r"^\s+inspect\s", top, re.M) is not None, "memscope --help does not list inspect:\n" + top)


def case_usage(paths):
    for args, pattern in ((["--bogus"], "unknown option"), ([], "no core file given"),
                          (["a", "b"], "one core file only"), (["c", "--top", "0"], "--top takes"),
                          (["c", "--at-peak", "--at-event", "3"], "at most one of"),
                          (["c", "--by", "thread"], "--by takes 'site' or 'stack'"),
                          (["c", "--block", "zz"], "--block takes an address"),
                          (["c", "--diff", "start"], "--diff takes two points"),
                          (["c", "--timeline=0"], "--timeline takes"),
                          (["c", "--json", "-", "--folded", "-"], "only one of --json and --folded")):
        result = inspect(paths, args, rc=2)
        check(result.err.startswith("memscope: ") and re.search(pattern, result.err),
              "usage error for %s: %r" % (args, result.err))


def case_gcore(paths):
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "gdb_heap.core")
        gcore_of(paths, paths.heap, core)
        dead = check_heap_core(paths, core)
        # Found by symbol, as GDB finds it.
        stats = inspect(paths, [core, "--stats"], core=core).out
        check("found by symbol memscope_store_root" in stats, "inspect --stats:\n" + stats)
        # The block report and the site grouping of the same renderers.
        doc = json.loads(dead.output("json-end"))
        main_d = dead.output("main-block-3")
        block = inspect(paths, [core, "--block", "0x%x" % (main_d + 100)], core=core).out
        check("fixture_config" in block and "5555" in block.replace(",", "") or "5.4 KiB" in block,
              "inspect --block on the labeled block:\n" + block)
        check_same_figures(inspect_json(paths, core, "--group-by", "site"), json.loads(dead.output("json-site")),
                           "snapshot JSON grouped by site")
        check(doc["summary"]["active_allocations"] > 0, "no live blocks")
        # --json FILE and --folded FILE beside the text.
        jfile, ffile = os.path.join(tmp, "out.json"), os.path.join(tmp, "out.folded")
        both = inspect(paths, [core, "--json", jfile, "--folded", ffile], core=core).out
        check_equal(both, inspect(paths, [core], core=core).out, "the text beside --json FILE --folded FILE")
        with open(jfile, encoding="utf-8") as f:
            check_equal(json.load(f), inspect_json(paths, core), "--json FILE vs --json -")
        with open(ffile, encoding="utf-8") as f:
            check_equal(f.read(), inspect(paths, [core, "--folded", "-"], core=core).out, "--folded FILE vs -")


def case_linked(paths):
    """gdb_heap linked with -lmemscope (not preloaded): found by symbol, GDB's figures."""
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "gdb_heap_linked.core")
        gcore_of(paths, paths.heap_linked, core, preload=False)
        dead = gdb_on_core(paths, paths.heap_linked, core, heap_captures())
        check_same_figures(inspect_json(paths, core), check_heap(dead), "snapshot JSON of the linked program")
        check("found by symbol memscope_store_root" in inspect(paths, [core, "--stats"], core=core).out,
              "the linked program's store was not found by symbol")


def _core_pattern():
    with open("/proc/sys/kernel/core_pattern", encoding="utf-8") as f:
        return f.read().strip()


def case_kernel_core(paths):
    pattern = _core_pattern()
    if pattern.startswith("|"):
        raise Skip("kernel.core_pattern pipes cores to %s" % pattern.split()[0][1:])
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    if hard == 0:
        raise Skip("core dumps are forbidden here (hard RLIMIT_CORE is 0)")
    with gdbtest.TempDir() as tmp:
        def unlimited():
            resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
        start = time.time()
        proc = subprocess.run([paths.heap, "crash"], cwd=tmp, env=dict(os.environ, LD_PRELOAD=paths.library),
                              preexec_fn=unlimited, timeout=60, capture_output=True)
        check(proc.returncode < 0, "gdb_heap crash exited with %d" % proc.returncode)
        directory = os.path.dirname(pattern) if pattern.startswith("/") else tmp
        found = [os.path.join(directory, n) for n in os.listdir(directory) if n.startswith("core")
                 and os.path.getmtime(os.path.join(directory, n)) >= start - 1]
        if not found:
            raise Skip("the kernel wrote no core (core_pattern %r)" % pattern)
        check_heap_core(paths, max(found, key=os.path.getmtime))


def case_sites(paths):
    """Sites and stacks of stack_sites: GDB's figures, and every frame in the program and its library
    named as addr2line names it (pc - 1 - load bias, in the file the core maps)."""
    if shutil.which("addr2line") is None:
        raise Skip("addr2line (binutils) is not installed")
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "stack_sites.core")
        gcore_of(paths, paths.sites, core)
        dead = gdb_on_core(paths, paths.sites, core, ["capture json memscope-snapshot --json -",
                                                      "capture site memscope-top 50 --by site --exact",
                                                      "capture stack memscope-top 50 --by stack --exact",
                                                      "capture folded memscope-export --folded -"])
        ours = inspect_json(paths, core)
        check_same_figures(ours, json.loads(dead.output("json")), "stack_sites snapshot JSON")
        site = inspect(paths, [core, "--by", "site", "--top", "50", "--exact"], core=core).out
        check_equal(_site_rows(site), _site_rows(dead.output("site")), "rows of --by site vs memscope-top --by site")
        stack = inspect(paths, [core, "--by", "stack", "--top", "50", "--exact"], core=core).out
        check_equal(_site_rows(stack), _site_rows(dead.output("stack")), "rows of --by stack vs memscope-top --by stack")
        folded = inspect(paths, [core, "--folded", "-"], core=core).out
        # glibc's hidden aliases: GDB may name _dl_allocate_tls __GI__dl_allocate_tls.
        check_equal(folded.strip(), re.sub(r"\b__GI_", "", dead.output("folded")).strip(),
                    "folded stacks vs memscope-export --folded")
        for name in ("site_leaf", "site_calloc", "site_realloc", "stack_lib_make", "site_thread_alloc"):
            check(name in site, "site %s missing from inspect --by site:\n%s" % (name, site))
        maps = read_nt_file(core)
        by_module = {}
        for stack in ours["stacks"].values():
            for frame in stack["frames"]:
                module = frame.get("module") or ""
                if os.path.basename(module).startswith(("stack_sites", "libstack_lib")):
                    by_module.setdefault(module, []).append(frame)
        check(len(by_module) == 2, "frames in the program and in libstack_lib expected, got %s" % list(by_module))
        checked = 0
        for module, frames in by_module.items():
            base = min(s for s, e, o, p in maps if p == module and o == 0)
            addrs = ["0x%x" % (int(f["pc"], 16) - 1 - base) for f in frames]
            out = subprocess.run(["addr2line", "-f", "-e", module] + addrs, capture_output=True, text=True,
                                 check=True).stdout.splitlines()
            for k, frame in enumerate(frames):
                function, where = out[2 * k], out[2 * k + 1].split(" (discriminator")[0]
                file, _, line = where.rpartition(":")
                check_equal(frame.get("function"), function, "function of %s vs addr2line" % frame["pc"])
                if file == "??":  # no line information (crt1's _start)
                    check(not frame.get("file"), "file of %s: addr2line knows none, got %r" % (frame["pc"], frame))
                    continue
                check_equal(os.path.basename(frame.get("file") or "?"), os.path.basename(file),
                            "file of %s vs addr2line" % frame["pc"])
                check_equal(str(frame.get("line", "?")), line, "line of %s vs addr2line" % frame["pc"])
                checked += 1
        check(checked >= 10, "only %d frames checked against addr2line" % checked)


_ROW = re.compile(r"^\s+(?:\d+\s+)?(\S+ \S+(?: \(\d+ B\))?)\s+(\d+)\s+([\d.]+%)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")


def _site_rows(text):
    rows = []
    for line in text.splitlines():
        m = _ROW.match(line)
        if m:
            size, blocks, share, function, location, library = m.groups()
            if re.match(r"(libc|ld-linux)", library):
                function = "*"  # glibc's internal aliases: GDB and ELF/DWARF may pick different names
            rows.append((size, blocks, share, function, location.rsplit("/", 1)[-1], library))
    check(rows, "no site rows in:\n" + text)
    return rows


TIME_POINTS = [
    ("j-grown", ["memscope-snapshot --at-mark t-grown --json -"], ["--at-mark", "t-grown"]),
    ("j-shrunk", ["memscope-snapshot --at mark:t-shrunk --json -"], ["--at", "mark:t-shrunk"]),
    ("j-peak", ["memscope-snapshot --at-peak --json -"], ["--at-peak"]),
    ("j-event", ["memscope-snapshot --at-event 5 --json -"], ["--at-event", "5"]),
    ("d-start-grown", ["memscope-diff t-start t-grown --json -"], ["--diff", "t-start", "t-grown"]),
    ("d-grown-shrunk", ["memscope-diff mark:t-grown t-shrunk --json -"], ["--diff", "mark:t-grown", "t-shrunk"]),
    ("d-peak-end", ["memscope-diff peak t-end --group-by thread --json -"],
     ["--diff", "peak", "t-end", "--group-by", "thread"]),
    ("tl", ["memscope-timeline --width 40 --json -"], ["--timeline=40"]),
]


def case_cxx(paths):
    """C++: sites named as GDB names them (demangled), operator new hidden, modules by their link-map names."""
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "stack_cxx.core")
        gcore_of(paths, paths.cxx, core)
        dead = gdb_on_core(paths, paths.cxx, core, ["capture json memscope-snapshot --json -",
                                                    "capture site memscope-top 50 --by site --exact"])
        check_same_figures(inspect_json(paths, core), json.loads(dead.output("json")), "stack_cxx snapshot JSON")
        ours = _site_rows(inspect(paths, [core, "--by", "site", "--top", "50", "--exact"], core=core).out)
        theirs = _site_rows(dead.output("site"))
        check_equal(len(ours), len(theirs), "site rows")
        for mine, gdbs in zip(ours, theirs):
            if gdbs[3].startswith("0x"):  # a frame GDB cannot name: ours is module+offset
                check(re.match(r"\S+\+0x[0-9a-f]+$", mine[3]) is not None, "unnamed frame: %r" % (mine,))
                mine, gdbs = mine[:3] + mine[4:], gdbs[:3] + gdbs[4:]
            # GDB prints C++'s main as main() (no linkage name to demangle).
            check_equal(mine, tuple(x.replace("main()", "main") for x in gdbs), "site row")
        for name in ("Widget::Widget()", "Holder::Holder()", "make_widgets()"):
            check(any(r[3] == name for r in ours), "site %s missing: %r" % (name, ours))


def case_time(paths):
    """Time travel, diffs and the timeline of time_curve's core: the same JSON as GDB's on that core."""
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "time_curve.core")
        gcore_of(paths, paths.curve, core)
        dead = gdb_on_core(paths, paths.curve, core,
                           ["capture %s %s" % (name, cmd[0]) for name, cmd, _ in TIME_POINTS]
                           + ["capture at-time memscope-snapshot --at-peak --json -"])
        for name, _, args in TIME_POINTS:
            ours = inspect_json(paths, core, *args)
            check_same_figures(ours, json.loads(dead.output(name)), "%s (inspect %s)" % (name, " ".join(args)))
        # --at TIME: the peak's own time gives the peak's live bytes.
        peak = json.loads(dead.output("at-time"))
        at = inspect_json(paths, core, "--at", "%dns" % peak["point"]["time_ns"])
        check_equal(at["summary"]["current_memory"], peak["summary"]["current_memory"], "live bytes --at the peak time")
        text = inspect(paths, [core, "--timeline=40"], core=core).out
        check("P" in text, "no peak on the timeline:\n" + text)
        refuses(paths, [core, "--at-mark", "no-such-mark"], "no-such-mark", core=core)
        refuses(paths, [core, "--at", "99999"], r"after|past|outside|beyond|end", core=core)
        refuses(paths, [core, "--diff", "t-grown", "t-start"], r"after|before|order", core=core)


def _stripped_copy(lib, tmp):
    sys.path.insert(0, os.path.join(HERE, "..", "..", "gdb"))
    import test_gdb  # noqa: E402  pylint: disable=import-outside-toplevel

    class P:
        library = lib
    return test_gdb._stripped_copy(P, tmp)  # pylint: disable=protected-access


def case_stripped(paths):
    """A library without the root's symbol: the store is found by scanning for the magic."""
    if shutil.which("objcopy") is None:
        raise Skip("objcopy (binutils) is not installed")
    with gdbtest.TempDir() as tmp:
        lib = _stripped_copy(paths.library, tmp)
        core = os.path.join(tmp, "gdb_heap.core")
        gcore_of(paths, paths.heap, core, library=lib)
        check_heap_core(paths, core)
        stats = inspect(paths, [core, "--stats"], core=core).out
        check("found by magic scan" in stats, "the stripped library's store was not found by scanning:\n" + stats)


def _patch_build_id(src, dst):
    data = bytearray(open(src, "rb").read())
    at = data.find(b"\x04\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00GNU\x00")
    check(at >= 0, "no build-id note in " + src)
    data[at + 16] ^= 0xFF
    with open(dst, "wb") as f:
        f.write(data)
    os.chmod(dst, 0o755)


def case_files(paths):
    """--exe, --lib-path, --sysroot; a missing file gives module+offset frames; a wrong one is named."""
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "gdb_heap.core")
        gcore_of(paths, paths.heap, core)
        base = inspect(paths, [core, "--by", "site", "--exact"], core=core).out
        stats = inspect(paths, [core, "--stats"], core=core).out
        # The same files elsewhere: a sysroot holding them at their paths; a lib-path; --exe.
        root = os.path.join(tmp, "root")
        for f in set(p for _, _, _, p in read_nt_file(core)) | {paths.heap, paths.library}:
            if os.path.isfile(f):
                os.makedirs(os.path.dirname(root + f), exist_ok=True)
                shutil.copy(f, root + f)
        if os.path.isdir("/usr/lib/debug"):  # separate debug files are looked up under the sysroot too
            os.makedirs(root + "/usr/lib", exist_ok=True)
            os.symlink("/usr/lib/debug", root + "/usr/lib/debug")
        check_equal(inspect(paths, [core, "--by", "site", "--exact", "--sysroot", root], core=core).out, base,
                    "--sysroot with the same files")
        libdir = os.path.join(tmp, "libs")
        os.makedirs(libdir)
        shutil.copy(paths.library, libdir)
        exe = os.path.join(tmp, "renamed-program")
        shutil.copy(paths.heap, exe)
        moved = inspect(paths, [core, "--stats", "--lib-path", libdir, "--exe", exe], core=core).out
        check_equal(moved, stats, "--lib-path and --exe with the same files")
        # Missing: the store is still found (by scanning), frames show module+offset, one warning.
        empty = os.path.join(tmp, "empty")
        os.makedirs(empty)
        missing = inspect(paths, [core, "--by", "site", "--sysroot", empty], core=core)
        check(re.search(r"gdb_heap\+0x[0-9a-f]+", missing.out) is not None,
              "frames of a missing program do not show module+offset:\n" + missing.out)
        check(re.search(r"^memscope: warning: .*gdb_heap is missing", missing.err, re.M) is not None,
              "no warning naming the missing program:\n" + missing.err)
        check_equal(inspect_json(paths, core, "--sysroot", empty)["summary"], inspect_json(paths, core)["summary"],
                    "figures with the files missing")
        # Mismatched: a library and a program with another build-id; --exe of another program; --exe missing.
        badlib = os.path.join(tmp, "badlibs")
        os.makedirs(badlib)
        _patch_build_id(paths.library, os.path.join(badlib, "libmemscope.so"))
        refuses(paths, [core, "--lib-path", badlib], r"badlibs/libmemscope\.so does not match the core: .*build-id",
                core=core)
        refuses(paths, [core, "--exe", paths.damage], re.escape(paths.damage) + " does not match the core", core=core)
        badexe = os.path.join(tmp, "badexe")
        _patch_build_id(paths.heap, badexe)
        refuses(paths, [core, "--exe", badexe, "--by", "site"], "badexe does not match the core", core=core)
        refuses(paths, [core, "--exe", os.path.join(tmp, "nonexistent")], "--exe .*nonexistent: No such file",
                core=core)


def case_file_backed(paths):
    """Memory the core did not dump is read from the file the process mapped there (NT_FILE)."""
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "text-in-file.core")
        texts = os.path.join(tmp, "texts.bin")
        subprocess.run([sys.executable, MKCORE, core, "--text-file", texts], check=True)
        doc = inspect_json(paths, core)
        labels = {b["address"]: b.get("label") for b in doc["live_blocks"]}
        check_equal(labels["0x3000"], {"name": "cfg", "type": "struct cfg"}, "label read from the mapped file")
        # The same file found under --sysroot; and gone: the label cannot be read, the figures stay exact.
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.dirname(root + texts), exist_ok=True)
        shutil.copy(texts, root + texts)
        check_equal(inspect_json(paths, core, "--sysroot", root), doc, "the mapped file under --sysroot")
        gone = inspect_json(paths, core, "--sysroot", os.path.join(tmp, "empty"))
        check(gone["summary"] == doc["summary"], "figures without the mapped file")
        check(not isinstance([b for b in gone["live_blocks"] if b["address"] == "0x3000"][0].get("label"), dict)
              or [b for b in gone["live_blocks"] if b["address"] == "0x3000"][0]["label"].get("name") != "cfg",
              "a label read although its file is gone")


def case_no_memscope(paths):
    """A core of a process that never loaded libmemscope."""
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "plain.core")
        gcore_of(paths, paths.heap, core, preload=False)
        refuses(paths, [core], "no memscope store in this core: the process had not loaded libmemscope", core=core)
        synthetic = os.path.join(tmp, "no-store.core")
        subprocess.run([sys.executable, MKCORE, synthetic, "--no-library", "--no-store"], check=True)
        refuses(paths, [synthetic], "had not loaded libmemscope", core=synthetic)


DAMAGE = {
    "magic": r"magic does not match|no memscope store found",
    "version": r"ABI version 99",
    "chunk-count": r"count \d+ exceeds capacity \d+",
    "next-garbage": r"chunk .*0x10\b.*(cannot be read|outside|unreadable)|cannot be read",
    "next-loop": r"loop|already met",
}


def case_damage(paths):
    """gdb_damage's damaged stores (as GDB's damage tests), and synthetic ones: counts, loops, pointers outside."""
    with gdbtest.TempDir() as tmp:
        for mode, pattern in DAMAGE.items():
            core = os.path.join(tmp, "damage-%s.core" % mode)
            result = gcore_of(paths, paths.damage, core, args=[mode], captures=["capture-eval damaged fixture_damaged"])
            check_equal(result.output("damaged"), 1, "fixture_damaged for " + mode)
            refuses(paths, [core], pattern, core=core)
        for damage, pattern in (("count", r"count 116 exceeds capacity 16"), ("loop", r"already met \(a loop\)"),
                                ("outside", r"0x100000000: header cannot be read"), ("version", r"ABI version 99")):
            core = os.path.join(tmp, "synthetic-%s.core" % damage)
            subprocess.run([sys.executable, MKCORE, core, "--damage", damage], check=True)
            refuses(paths, [core], pattern, core=core)
        # A damaged stack table leaves the stacks unreadable, never the figures.
        for damage, unreadable in (("stack-outside", 2), ("stack-depth", 1)):
            core = os.path.join(tmp, "synthetic-%s.core" % damage)
            subprocess.run([sys.executable, MKCORE, core, "--damage", damage], check=True)
            text = inspect(paths, [core, "--by", "stack"], core=core).out
            check_equal(text.count("(unreadable stack)"), unreadable, "unreadable stacks of " + damage)
            check_equal(inspect_json(paths, core)["summary"]["current_memory"], 900, "live bytes of " + damage)
        # 4096 roots over one chunk of 200,000 records, damaged at its last: the magic scan tried them all,
        # each reading the 6.4 MB chunk (22 s); it stops once refused candidates read 4 times the core's size.
        roots = os.path.join(tmp, "synthetic-many-roots.core")
        subprocess.run([sys.executable, MKCORE, roots, "--many-roots", "4096", "200000"], check=True)
        start = time.monotonic()
        refuses(paths, [roots], r"memscope store at 0x601000: chunk 0 at 0x7f0000000000: record 199999 names thread 2",
                core=roots)
        check(time.monotonic() - start < 20, "many roots took %.1f s: the scan is not bounded" % (time.monotonic() - start))
        good = os.path.join(tmp, "synthetic.core")
        subprocess.run([sys.executable, MKCORE, good], check=True)
        doc = inspect_json(paths, good)
        check_equal((doc["summary"]["active_allocations"], doc["summary"]["current_memory"],
                     doc["summary"]["peak_memory"]), (3, 900, 900), "figures of the synthetic core")


def case_hostile_files(paths):
    """Not a core, truncated, another architecture: one sentence each."""
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "gdb_heap.core")
        gcore_of(paths, paths.heap, core)
        data = open(core, "rb").read()

        def write(name, content):
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(content)
            return path
        refuses(paths, [os.path.join(tmp, "nonexistent")], r"cannot open .*nonexistent: No such file")
        refuses(paths, [tmp], r"is not a regular file")
        refuses(paths, [write("empty", b"")], r"is empty \(not a core dump\)")
        refuses(paths, [write("text", b"hello, this is not a core\n" * 10)], r"is not an ELF file")
        refuses(paths, [paths.heap], r"is an ELF shared object or PIE executable, not a core dump")
        refuses(paths, [write("tiny", data[:30])], r"truncated: 30 bytes, too short for an ELF header")
        for cut in (64, 64 + 56 * 3, len(data) // 3, len(data) - 4096):
            refuses(paths, [write("cut-%d" % cut, data[:cut])], r"truncated", core=core)
        arm = bytearray(data[:65536])
        arm[18:20] = struct.pack("<H", 183)
        refuses(paths, [write("aarch64", bytes(arm))], r"another architecture \(AArch64\)")
        riscv = bytearray(data[:4096])
        riscv[18:20] = struct.pack("<H", 243)
        refuses(paths, [write("riscv", bytes(riscv))], r"another architecture \(RISC-V\)")
        elf32 = bytearray(data[:4096])
        elf32[4] = 1
        refuses(paths, [write("elf32", bytes(elf32))], r"32-bit little-endian ELF file")
        big = bytearray(data[:4096])
        big[5] = 2
        refuses(paths, [write("big", bytes(big))], r"big-endian")
        # Program headers pointing past the end, a note with a huge count.
        bad_ph = bytearray(data)
        struct.pack_into("<Q", bad_ph, 32, len(data) + 4096)
        refuses(paths, [write("bad-phoff", bytes(bad_ph))], r"program headers cannot be read|truncated", core=core)


def case_progress(paths):
    """A progress bar on stderr while the store is read, only when stderr is a terminal; wiped at the end."""
    import pty  # pylint: disable=import-outside-toplevel
    with gdbtest.TempDir() as tmp:
        core = os.path.join(tmp, "synthetic.core")
        subprocess.run([sys.executable, MKCORE, core], check=True)
        env = dict(os.environ, MEMSCOPE_PROGRESS_DELAY_MS="0")
        piped = subprocess.run([paths.memscope, "inspect", core], capture_output=True, text=True, env=env,
                               timeout=TIMEOUT)
        check_equal((piped.returncode, piped.stderr), (0, ""), "stderr when it is not a terminal")
        master, slave = pty.openpty()
        proc = subprocess.run([paths.memscope, "inspect", core], stdout=subprocess.PIPE, stderr=slave, env=env,
                              timeout=TIMEOUT)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        os.close(master)
        check_equal(proc.returncode, 0, "exit status with a terminal")
        check(b"reading the store [" in seen and b"%" in seen, "no progress bar on the terminal: %r" % seen)
        check(seen.endswith(b"\r\x1b[K"), "the bar was not wiped: %r" % seen[-40:])
        check_equal(proc.stdout.decode(), piped.stdout, "stdout with and without the bar")


CASES = {"progress": case_progress, "help": case_help, "usage": case_usage, "gcore": case_gcore, "kernel-core": case_kernel_core,
         "linked": case_linked, "sites": case_sites, "cxx": case_cxx, "time": case_time, "stripped": case_stripped, "files": case_files,
         "no-memscope": case_no_memscope, "file-backed": case_file_backed, "damage": case_damage, "hostile-files": case_hostile_files}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("memscope", "plugin", "library", "engine", "heap", "damage", "sites", "cxx", "curve"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--heap-linked", required=True)
    parser.add_argument("--asan")
    parser.add_argument("case", choices=sorted(CASES))
    args = parser.parse_args()
    paths = Paths(args)
    try:
        CASES[args.case](paths)
    except Failure as exc:
        print("FAIL %s: %s" % (args.case, exc))
        return 1
    except Skip as exc:
        print("SKIP %s: %s" % (args.case, exc))
        return gdbtest.SKIP
    print("PASS %s" % args.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
