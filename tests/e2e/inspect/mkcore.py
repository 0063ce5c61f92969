#!/usr/bin/env python3
"""Writes a small synthetic x86-64 ELF core holding a memscope store
(store_abi.h, ABI 6): the fuzz seed of `memscope inspect`'s core reader and
the base of the damaged-store tests that the fixtures cannot make.

Usage: mkcore.py OUT [--damage none|count|loop|outside|version|text-loop|stack-count|stack-outside|stack-depth]
                     [--no-library] [--no-store] [--text-file FILE]
       mkcore.py OUT --many-roots N RECORDS

The store: a root in a small writable segment (as a library's .data), two
chunks (threads 1 and 2) in another, a text block with a mark and a label,
a stack table with two stacks (blocks 0x1000, 0x2000: stack 1; 0x3000,
0x4000: stack 2).
Thread 1 allocates 0x1000 (100 B), 0x2000 (200 B), marks "half", frees
0x1000, allocates 0x3000 (300 B) labeled "cfg"/"struct cfg"; thread 2
allocates 0x4000 (400 B). At the end: 3 live blocks, 900 B; peak 900 B.
An NT_FILE note maps /nonexistent/libmemscope.so and /nonexistent/prog.

--many-roots: N copies of a root (no library: found by the magic scan), all
over one chunk of RECORDS records whose last names another thread, so that
every candidate reads the whole chunk before the engine refuses it (the
scan's work must stay bounded by the core's size).
"""

import argparse
import os
import struct

ROOT_ADDR = 0x601000
CHUNK_ADDR = 0x7f0000000000
TEXT_ADDR = 0x7f0000010000
MAGIC = b"memscope-store\x00\x01"
CHUNK_MAGIC = 0x6b6e7568632d736d
TEXT_MAGIC = 0x747865742d2d736d
STACK_MAGIC = 0x6b636174732d736d
STACK_ADDR = 0x7f0000020000


def stack_table(damage="none"):
    """Two stacks: id 1 = (0x400100, 0x400200), id 2 = (0x400300,), method fp, max depth 16."""
    header, slots, entries, frames = 144, 4, 4, 8
    slots_at = STACK_ADDR + header
    entries_at = slots_at + 8 * slots
    frames_at = entries_at + 16 * entries
    size = frames_at + 8 * frames - STACK_ADDR
    count = 99 if damage == "stack-count" else 2
    if damage == "stack-outside":
        frames_at = 0x10
    data = struct.pack("<QIIQQQQQQQQQQQII", STACK_MAGIC, header, 16, size, slots_at, slots, entries_at, entries,
                       frames_at, frames, count, 3, 0, 0, 2, 16) + bytes(32)
    data += struct.pack("<QQQQ", (0x1111 << 32) | 1, (0x2222 << 32) | 2, 0, 0)
    depth2 = 200 if damage == "stack-depth" else 1
    data += struct.pack("<QIIQIIQIIQII", 0, 2, 0x1111, 2, depth2, 0x2222, 0, 0, 0, 0, 0, 0)
    data += struct.pack("<QQQ", 0x400100, 0x400200, 0x400300) + bytes(8 * (frames - 3))
    return data


def rec(time, addr, size, kind, thread, stack=0):
    return struct.pack("<QQQII", time, addr, size, stack, (thread << 8) | kind)


def text_entry(*strings):
    payload = b"".join(s.encode() + b"\0" for s in strings)
    data = struct.pack("<II", len(payload), len(strings)) + payload
    return data + b"\0" * (-len(data) % 8)


def build(damage, store=True, text_file=None):
    # text block
    mark = text_entry("half")
    label = text_entry("cfg", "struct cfg")
    entries = mark + label
    text = struct.pack("<QQQQ", TEXT_MAGIC, TEXT_ADDR if damage == "text-loop" else 0, 256, len(entries)) + entries
    text += b"\0" * (32 + 256 - len(text))
    mark_at, label_at = TEXT_ADDR + 32, TEXT_ADDR + 32 + len(mark)
    o = 1000
    t1 = [rec(o + 10, 0x1000, 100, 1, 1, 1), rec(o + 20, 0x2000, 200, 1, 1, 1), rec(o + 30, 0, mark_at, 7, 1),
          rec(o + 40, 0x1000, 0, 2, 1), rec(o + 50, 0x3000, 300, 1, 1, 2), rec(o + 60, 0x3000, label_at, 6, 1)]
    t2 = [rec(o + 35, 0x4000, 400, 1, 2, 2)]
    cap = 16
    c1_addr, c2_addr = CHUNK_ADDR, CHUNK_ADDR + 64 + cap * 32
    count1 = cap + 100 if damage == "count" else len(t1)
    nxt2 = c2_addr if damage == "loop" else c1_addr
    if damage == "outside":
        nxt2 = 0x100000000
    c1 = struct.pack("<QQQQQQIIII", CHUNK_MAGIC, 0, 0, cap, count1, 64 + cap * 32, 1, 0, 4242, 4242) + b"".join(t1)
    c1 += b"\0" * (64 + cap * 32 - len(c1))
    c2 = struct.pack("<QQQQQQIIII", CHUNK_MAGIC, nxt2, 0, cap, len(t2), 64 + cap * 32, 2, 0, 4243, 4242) + b"".join(t2)
    c2 += b"\0" * (64 + cap * 32 - len(c2))
    chunks = c1 + c2
    root = bytearray(MAGIC)
    root += struct.pack("<IIIIII", 99 if damage == "version" else 6, 224, 32, 64, 0, 4242)
    root += struct.pack("<QQQQQQQQQQ", c2_addr, 2, len(chunks), 1 << 30, 0, TEXT_ADDR, len(text), 2, STACK_ADDR, 0)
    root += struct.pack("<QQQQQ", o, 5000, 0, 0, 0)
    root += b"\0" * (224 - len(root))
    data_seg = bytes(0x100) + bytes(root) + bytes(0x1000 - 0x100 - len(root))
    if not store:
        data_seg = bytes(len(data_seg))
    text_seg = (TEXT_ADDR, text, 6)
    if text_file:  # the text block lies in a file the process mapped; the core did not dump it
        with open(text_file, "wb") as f:
            f.write(text + bytes(4096 - len(text)))
        text_seg = (TEXT_ADDR, None, 4)
    return [(ROOT_ADDR - 0x100, data_seg, 6), (CHUNK_ADDR, chunks, 6), text_seg,
            (STACK_ADDR, stack_table(damage), 6), (0x400000, b"\x7fELF" + bytes(0x1000 - 4), 5)]


def many_roots(nroots, nrec):
    """The segments of a core with nroots roots over one chunk of nrec records, damaged at its last."""
    recs = bytearray()
    for i in range(nrec):
        thread = 1 if i < nrec - 1 else 2
        recs += rec(1000 + i, 0x1000 + 16 * (i // 2 % 1000), 0 if i % 2 else 16, 2 if i % 2 else 1, thread)
    map_size = 64 + 32 * nrec
    chunk = struct.pack("<QQQQQQIIII", CHUNK_MAGIC, 0, 0, nrec, nrec, map_size, 1, 0, 4242, 4242) + recs
    root = bytearray(MAGIC)
    root += struct.pack("<IIIIII", 6, 224, 32, 64, 0, 4242)
    root += struct.pack("<QQQQQQQQQQ", CHUNK_ADDR, 1, map_size, 1 << 40, 0, 0, 0, 1, 0, 0)
    root += b"\0" * (224 - len(root))
    return [(ROOT_ADDR, bytes(root) * nroots, 6), (CHUNK_ADDR, bytes(chunk), 6)]


def nt_file(files):
    desc = struct.pack("<QQ", len(files), 4096)
    for start, end, pgoff, _ in files:
        desc += struct.pack("<QQQ", start, end, pgoff)
    for *_, name in files:
        desc += name.encode() + b"\0"
    return desc


def note(name, ntype, desc):
    n = name.encode() + b"\0"
    return (struct.pack("<III", len(n), len(desc), ntype) + n + b"\0" * (-len(n) % 4) + desc
            + b"\0" * (-len(desc) % 4))


def write_core(path, segments, files):
    notes = note("CORE", 0x46494c45, nt_file(files)) + note("CORE", 6, struct.pack("<QQQQ", 9, 0x401000, 0, 0))
    phnum = 1 + len(segments)
    off = 64 + 56 * phnum
    ph = struct.pack("<IIQQQQQQ", 4, 4, off, 0, 0, len(notes), 0, 4)
    body = notes + b"\0" * (-len(notes) % 8)
    off += len(body)
    for addr, data, flags in segments:
        if data is None:  # not dumped: 4096 bytes of memory, none in the file
            ph += struct.pack("<IIQQQQQQ", 1, flags, off, addr, 0, 0, 4096, 4096)
            continue
        ph += struct.pack("<IIQQQQQQ", 1, flags, off, addr, 0, len(data), len(data), 4096)
        body += data
        off += len(data)
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr += struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, 0, 64, 56, phnum, 64, 0, 0)
    with open(path, "wb") as f:
        f.write(ehdr + ph + body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--damage", default="none",
                        choices=["none", "count", "loop", "outside", "version", "text-loop", "stack-count",
                                 "stack-outside", "stack-depth"])
    parser.add_argument("--no-library", action="store_true")
    parser.add_argument("--no-store", action="store_true")
    parser.add_argument("--text-file", help="put the text block in this file, mapped and not dumped")
    parser.add_argument("--many-roots", nargs=2, type=int, metavar=("N", "RECORDS"),
                        help="N roots over one chunk of RECORDS records, damaged at its end")
    args = parser.parse_args()
    if args.many_roots:
        write_core(args.out, many_roots(*args.many_roots), [(0x400000, 0x401000, 0, "/nonexistent/prog")])
        return
    files = [(0x400000, 0x401000, 0, "/nonexistent/prog")]
    if not args.no_library:
        files.append((ROOT_ADDR - 0x1100, ROOT_ADDR - 0x100, 0, "/nonexistent/libmemscope.so"))
    if args.text_file:
        files.append((TEXT_ADDR, TEXT_ADDR + 4096, 0, os.path.abspath(args.text_file)))
    write_core(args.out, build(args.damage, not args.no_store, args.text_file), sorted(files))


if __name__ == "__main__":
    main()
