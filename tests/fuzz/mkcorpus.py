#!/usr/bin/env python3
"""Regenerates the fuzzers' seed corpora from real recordings, so they hold
the current store ABI and trace format (run it again whenever either
changes, and commit the result):

  tests/fuzz/inspect/corpus/   cores for fuzz_inspect (memscope inspect)
  tests/fuzz/trace/corpus/     traces for fuzz_trace (memscope report)
  tests/fuzz/image/corpus/     exit images for fuzz_image (memscope run)

Usage: tests/fuzz/mkcorpus.py [--build DIR] [--out DIR] [--keep DIR] [--target T]...
       tests/fuzz/mkcorpus.py --fix-checksums IN OUT

--build: a build directory of this tree (default build/): its
lib/libmemscope.so records, lib/libmemscope-engine.so saves a folded store
as a trace, bin/memscope runs with --trace, bin/fuzz_seed is the program
(tests/fixtures/fuzz_seed.c). --out: where tests/fuzz lies (default: this
script's directory). --keep: also leave the raw recordings (exit images,
traces) there. --target inspect|trace|image: regenerate only that corpus
(repeat for several; default all three), leaving the others' files as they
are (recordings differ from run to run, see below).

Cores. The runtime writes its store at exit as an exit image
(MEMSCOPE_EXIT_IMAGE: the root, every linked chunk, the texts, the stack
table, the checkpoint); each image segment becomes a PT_LOAD of a small ELF
core, with an NT_FILE note of the process's file mappings (paths renamed
/fuzz-seed/BASENAME) and AT_ENTRY in NT_AUXV. A core of a real process
would be megabytes; this one holds just the store, as a real core does
(the fuzz target finds it by magic scan):

  fold-fp.core       fuzz_seed 20000, MEMSCOPE_BUDGET=192K, frame-pointer stacks of depth 8:
                     a checkpoint with folded marks, labeled and stacked blocks, the exited
                     threads' merged entry, a GONE thread kept for its blocks, linked chunks
                     below the cuts; retained marks and labels after the horizon
  fold-caller.core   the same with caller-only stacks
  unfolded.core      fuzz_seed 100 (nothing folded), unwind stacks of depth 4
  good.core, damage-*.core, no-*.core   tests/e2e/inspect/mkcore.py's synthetic cores (damaged
                     chunk lists, texts, stack tables)

Traces (the fuzz target repairs checksums before reading, see
c/cli/fuzz_trace.c, so mutations reach the decoders):

  run.trace          `memscope run --trace` of fuzz_seed 400 in a 192K budget (small chunks, so a
                     thread's records span several blocks): MODULES, TEXTS, STACKS, EVENTS of
                     seven threads, STATE (zstd payloads, as the runtime writes them)
  saved-fold.trace   the fold-fp store saved as memscope-save does (memscope_history_write_trace,
                     with the process's mappings): CHECKPOINT, CHECKPOINT_BLOCKS, retained EVENTS
  *.plain.trace      the same two with every payload stored uncompressed (codec NONE), so
                     byte mutations land in the decoders rather than in zstd frames

Exit images (c/cli/fuzz_image.c reads the bytes after an image's last
segment as its FILE.modules, as `memscope run` reads the file beside it):

  fold-fp.image      the fold-fp recording above, as the runtime wrote it, then its FILE.modules
  unfolded.image     the unfolded recording, then its FILE.modules

--fix-checksums writes IN with every checksum a reader checks recomputed,
as the trace fuzz target does before reading (an input it kept then reads
the same with `memscope report`, with --strict when the fuzzer set bit 0 of
the header's reserved[0]; bit 1 leaves the blocks' checksums as they are).

Recordings differ from run to run in addresses and thread interleaving, not
in the event sequence. Needs python3 and libzstd (ctypes); no gdb.
"""

import argparse
import ctypes
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

IMAGE_MAGIC = b"memscope-image\x00\x01"
TRACE_MAGIC = b"memscope-trace\x00\x01"
BLOCK_MAGIC = 0x42547363
CODEC_NONE, CODEC_ZSTD = 0, 1


# ---- CRC-32C (Castagnoli, reflected), as trace_codec.c ----

def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---- recording ----

MAX_CORE = 60000  # the fuzzers take inputs of up to 64 KiB (scripts/fuzz-inspect.sh -max_len)


def record_image(build, tmp, name, ops, env_extra, folded):
    """Runs fuzz_seed OPS preloaded with MEMSCOPE_EXIT_IMAGE; returns the image's path (FILE.modules beside it).
    How many chunks are still linked at exit depends on the folder's timing: the program runs again (at most 20
    times) until the image fits MAX_CORE, nothing was dropped and (folded) there is a checkpoint."""
    image = os.path.join(tmp, name + ".img")
    env = dict(os.environ, LD_PRELOAD=os.path.join(build, "lib", "libmemscope.so"), MEMSCOPE_EXIT_IMAGE=image)
    env.update(env_extra)
    for _ in range(20):
        subprocess.run([os.path.join(build, "bin", "fuzz_seed"), str(ops)], env=env, check=True, timeout=120)
        root = read_image(image)[0][1]
        dropped, checkpoint = struct.unpack_from("<Q", root, 72)[0], struct.unpack_from("<Q", root, 112)[0]
        if os.path.getsize(image) <= MAX_CORE and dropped == 0 and (checkpoint != 0) == folded:
            return image
    raise SystemExit("mkcorpus: %s: no run of fuzz_seed left an image of at most %d bytes with%s a checkpoint and "
                     "nothing dropped" % (name, MAX_CORE, "" if folded else "out"))


def read_image(path):
    """[(address, bytes)] of an exit image (store_abi.h)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:16] != IMAGE_MAGIC:
        raise SystemExit("mkcorpus: %s is not an exit image" % path)
    _, header_size, _, count = struct.unpack_from("<IIQQ", data, 16)
    off, segs = header_size, []
    for _ in range(count):
        addr, length = struct.unpack_from("<QQ", data, off)
        off += 16
        segs.append((addr, data[off:off + length]))
        off += (length + 7) & ~7
    return segs


def read_modules(path):
    """[(start, end, offset, path)] of a MODULES payload (trace_abi.h), or [] when there is none."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    count, _ = struct.unpack_from("<II", data, 0)
    off, out = 8, []
    for _ in range(count):
        start, end, offset = struct.unpack_from("<QQQ", data, off)
        (path_len,) = struct.unpack_from("<H", data, off + 46)
        off += 48
        out.append((start, end, offset, data[off:off + path_len].decode(errors="replace")))
        off += (path_len + 7) & ~7
    return out


# ---- ELF core ----

def note(name, ntype, desc):
    n = name.encode() + b"\0"
    return (struct.pack("<III", len(n), len(desc), ntype) + n + b"\0" * (-len(n) % 4) + desc
            + b"\0" * (-len(desc) % 4))


def write_core(path, segments, files, entry):
    """An x86-64 ET_CORE: NT_FILE (files: start, end, offset, path), NT_AUXV (AT_ENTRY), one RW PT_LOAD per segment."""
    nt_file = struct.pack("<QQ", len(files), 4096)
    for start, end, offset, _ in files:
        nt_file += struct.pack("<QQQ", start, end, offset // 4096)
    for *_, name in files:
        nt_file += name.encode() + b"\0"
    notes = note("CORE", 0x46494C45, nt_file) + note("CORE", 6, struct.pack("<QQQQ", 9, entry, 0, 0))
    phnum = 1 + len(segments)
    off = 64 + 56 * phnum
    ph = struct.pack("<IIQQQQQQ", 4, 4, off, 0, 0, len(notes), 0, 4)
    body = notes + b"\0" * (-len(notes) % 8)
    off += len(body)
    for addr, data in segments:
        ph += struct.pack("<IIQQQQQQ", 1, 6, off, addr, 0, len(data), len(data), 8)
        pad = b"\0" * (-len(data) % 8)
        body += data + pad
        off += len(data) + len(pad)
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr += struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, 0, 64, 56, phnum, 64, 0, 0)
    with open(path, "wb") as f:
        f.write(ehdr + ph + body)


def image_with_modules(image, out):
    """The exit image as the runtime wrote it, followed by its FILE.modules (the fuzz_image input)."""
    with open(image, "rb") as f:
        data = f.read()
    if os.path.exists(image + ".modules"):
        with open(image + ".modules", "rb") as f:
            data += f.read()
    if len(data) > 65536:
        print("mkcorpus: warning: %s is %d bytes, more than the fuzzer's -max_len" % (out, len(data)))
    write(out, data)


def image_to_core(image, core):
    files = [(s, e, o, "/fuzz-seed/" + os.path.basename(p)) for s, e, o, p in read_modules(image + ".modules")
             if p.startswith("/")]
    prog = [f for f in files if f[3] == "/fuzz-seed/fuzz_seed"]
    entry = prog[0][0] + 0x1000 if prog else 0
    write_core(core, read_image(image), files, entry)


# ---- traces ----

class Engine:
    """The few engine calls that save a store as a trace (as GDB's memscope-save)."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        P = ctypes.c_void_p
        self.lib.memscope_image_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(P), P, ctypes.POINTER(ctypes.c_uint64), P]
        self.lib.memscope_history_open.argtypes = [P, ctypes.c_uint64, ctypes.POINTER(P), P]
        self.lib.memscope_history_add_modules.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, P]
        self.lib.memscope_history_write_trace.argtypes = [P, ctypes.c_char_p, P]
        self.lib.memscope_history_close.argtypes = [P]
        self.lib.memscope_image_close.argtypes = [P]

    def save(self, image, trace):
        img, hist, root = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_uint64()
        src = ctypes.create_string_buffer(16)  # struct memscope_source
        err = ctypes.create_string_buffer(256)
        try:
            if self.lib.memscope_image_open(image.encode(), ctypes.byref(img), src, ctypes.byref(root), err) != 0:
                raise SystemExit("mkcorpus: %s: %s" % (image, err.value.decode()))
            if self.lib.memscope_history_open(src, root.value, ctypes.byref(hist), err) != 0:
                raise SystemExit("mkcorpus: %s: %s" % (image, err.value.decode()))
            if os.path.exists(image + ".modules"):
                with open(image + ".modules", "rb") as f:
                    mods = f.read()
                if self.lib.memscope_history_add_modules(hist, mods, len(mods), err) != 0:
                    raise SystemExit("mkcorpus: %s.modules: %s" % (image, err.value.decode()))
            if self.lib.memscope_history_write_trace(hist, trace.encode(), err) != 0:
                raise SystemExit("mkcorpus: %s: %s" % (trace, err.value.decode()))
        finally:
            self.lib.memscope_history_close(hist)
            self.lib.memscope_image_close(img)


def zstd_decompress(lib, data, raw_size):
    out = ctypes.create_string_buffer(max(raw_size, 1))
    n = lib.ZSTD_decompress(out, ctypes.c_size_t(raw_size), data, ctypes.c_size_t(len(data)))
    if lib.ZSTD_isError(ctypes.c_size_t(n)) or n != raw_size:
        raise SystemExit("mkcorpus: a payload does not decompress")
    return out.raw[:raw_size]


def fix_checksums(src, dst):
    """src with the header's and every reachable block's checksums recomputed (c/cli/fuzz_trace.c repair_checksums)."""
    with open(src, "rb") as f:
        data = bytearray(f.read())
    if len(data) < 64:
        return write(dst, data)
    (mode,) = struct.unpack_from("<I", data, 52)  # reserved[0]: bit 1 keeps the blocks' checksums, bit 0 is --strict
    struct.pack_into("<I", data, 60, crc32c(data[:60]))
    off = 64
    while not mode & 2 and len(data) - off >= 32:
        magic, _, _, stored, raw, _, _, _ = struct.unpack_from("<IHHIIQII", data, off)
        if magic != BLOCK_MAGIC or stored > 64 << 20 or raw > 64 << 20:
            break
        whole = len(data) - off - 32 >= stored
        if whole:
            struct.pack_into("<I", data, off + 24, crc32c(data[off + 32:off + 32 + stored]))
        struct.pack_into("<I", data, off + 28, crc32c(data[off:off + 28]))
        if not whole:
            break
        padded = (stored + 7) & ~7
        off += 32 + (padded if padded <= len(data) - off - 32 else stored)
    write(dst, data)
    if mode & 1:
        print("mkcorpus: %s was fuzzed with --strict (bit 0 of the header's reserved[0])" % src)


def write(path, data):
    with open(path, "wb") as f:
        f.write(bytes(data))


def plain_trace(src, dst):
    """src rewritten with every payload stored as is (codec NONE), checksums recomputed."""
    zstd = ctypes.CDLL("libzstd.so.1")
    zstd.ZSTD_decompress.restype = ctypes.c_size_t
    zstd.ZSTD_isError.restype = ctypes.c_uint
    with open(src, "rb") as f:
        data = f.read()
    if data[:16] != TRACE_MAGIC:
        raise SystemExit("mkcorpus: %s is not a trace" % src)
    (header_size,) = struct.unpack_from("<I", data, 20)
    out, off = bytearray(data[:header_size]), header_size
    while off + 32 <= len(data):
        magic, btype, codec, stored, raw, seq, _, _ = struct.unpack_from("<IHHIIQII", data, off)
        if magic != BLOCK_MAGIC or off + 32 + stored > len(data):
            break
        payload = data[off + 32:off + 32 + stored]
        off += 32 + ((stored + 7) & ~7)
        if codec == CODEC_ZSTD:
            payload = zstd_decompress(zstd, payload, raw)
        head = struct.pack("<IHHIIQI", BLOCK_MAGIC, btype, CODEC_NONE, len(payload), len(payload), seq, crc32c(payload))
        out += head + struct.pack("<I", crc32c(head)) + payload + b"\0" * (-len(payload) % 8)
    with open(dst, "wb") as f:
        f.write(bytes(out))


# ---- main ----

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(TOP, "build"))
    parser.add_argument("--out", default=HERE)
    parser.add_argument("--keep", help="also leave the raw recordings in this directory")
    parser.add_argument("--target", action="append", choices=("inspect", "trace", "image"),
                        help="regenerate only this corpus (repeatable; default: all)")
    parser.add_argument("--fix-checksums", nargs=2, metavar=("IN", "OUT"),
                        help="only write IN with its checksums repaired to OUT")
    args = parser.parse_args()
    if args.fix_checksums:
        fix_checksums(*args.fix_checksums)
        return 0
    build = os.path.abspath(args.build)
    for need in ("lib/libmemscope.so", "lib/libmemscope-engine.so", "bin/memscope", "bin/fuzz_seed"):
        if not os.path.exists(os.path.join(build, need)):
            raise SystemExit("mkcorpus: %s is missing (build the tree first: scripts/build.sh)" % os.path.join(build, need))
    targets = set(args.target or ("inspect", "trace", "image"))
    cores = os.path.join(args.out, "inspect", "corpus")
    traces = os.path.join(args.out, "trace", "corpus")
    images = os.path.join(args.out, "image", "corpus")
    dirs = [d for t, d in (("inspect", cores), ("trace", traces), ("image", images)) if t in targets]
    for d in dirs:
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
    engine = Engine(os.path.join(build, "lib", "libmemscope-engine.so"))
    tmp = tempfile.mkdtemp(prefix="mkcorpus.")
    try:
        small = {"MEMSCOPE_STACK_BUDGET": "64K"}
        fold_fp = record_image(build, tmp, "fold-fp", 20000, dict(
            small, MEMSCOPE_BUDGET="192K", MEMSCOPE_STACK_METHOD="fp", MEMSCOPE_STACK_DEPTH="8"), True)
        fold_caller = record_image(build, tmp, "fold-caller", 20000, dict(
            small, MEMSCOPE_BUDGET="192K", MEMSCOPE_STACK_METHOD="caller"), True)
        unfolded = record_image(build, tmp, "unfolded", 100, dict(
            small, MEMSCOPE_STACK_METHOD="unwind", MEMSCOPE_STACK_DEPTH="4"), False)
        if "image" in targets:
            for image, name in ((fold_fp, "fold-fp"), (unfolded, "unfolded")):
                image_with_modules(image, os.path.join(images, name + ".image"))
        if "inspect" in targets:
            for image, name in ((fold_fp, "fold-fp"), (fold_caller, "fold-caller"), (unfolded, "unfolded")):
                image_to_core(image, os.path.join(cores, name + ".core"))
            make_synthetic_cores(cores)
        if "trace" in targets:
            make_traces(build, engine, tmp, fold_fp, traces)
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            for name in os.listdir(tmp):
                shutil.copy(os.path.join(tmp, name), args.keep)
    finally:
        shutil.rmtree(tmp)
    total = 0
    for d in dirs:
        for name in sorted(os.listdir(d)):
            size = os.path.getsize(os.path.join(d, name))
            total += size
            print("%8d  %s" % (size, os.path.relpath(os.path.join(d, name), args.out)))
    print("%8d  in all" % total)
    return 0


def make_synthetic_cores(cores):
    """tests/e2e/inspect/mkcore.py's good, damaged and incomplete cores."""
    mkcore = os.path.join(TOP, "tests", "e2e", "inspect", "mkcore.py")
    for damage in ("none", "count", "loop", "outside", "version", "text-loop", "stack-count", "stack-outside",
                   "stack-depth"):
        name = "good" if damage == "none" else "damage-" + damage
        subprocess.run([sys.executable, mkcore, os.path.join(cores, name + ".core"), "--damage", damage], check=True)
    for flag in ("--no-library", "--no-store"):
        subprocess.run([sys.executable, mkcore, os.path.join(cores, flag[2:] + ".core"), flag], check=True)


def make_traces(build, engine, tmp, fold_fp, traces):
    """run.trace, saved-fold.trace and their uncompressed rewrites."""
    run_trace = os.path.join(tmp, "run.trace")
    subprocess.run([os.path.join(build, "bin", "memscope"), "run", "--summary", "--trace", run_trace, "--",
                    os.path.join(build, "bin", "fuzz_seed"), "400"],
                   env=dict(os.environ, MEMSCOPE_BUDGET="192K", MEMSCOPE_STACK_BUDGET="64K", MEMSCOPE_STACK_DEPTH="8"),
                   check=True, timeout=120, stdout=subprocess.DEVNULL)
    saved = os.path.join(tmp, "saved-fold.trace")
    engine.save(fold_fp, saved)
    for trace in (run_trace, saved):
        base = os.path.basename(trace)[:-len(".trace")]
        shutil.copy(trace, os.path.join(traces, base + ".trace"))
        plain_trace(trace, os.path.join(traces, base + ".plain.trace"))


if __name__ == "__main__":
    sys.exit(main())
