"""The process's file mappings, with build-ids, as a MODULES payload
(c/include/memscope/trace_abi.h): what memscope-save adds to a trace so that
`memscope report` can name return addresses from the files on disk.

The mappings come from GDB's `info proc mappings` (a live process's
/proc/PID/maps, or a core's file note). A build-id is read, like the
runtime does (c/runtime/modules.c), from the ELF header the process had
mapped at file offset 0: its program headers and PT_NOTE segments, read
through GDB; where that memory is not readable (a core that did not dump
it), from the objfile GDB loaded for the same file.
"""

import os
import re
import struct

import gdb  # pylint: disable=import-error

# "  0x555555554000 0x555555555000 0x1000 0x0 r--p /path" (perms absent on cores)
_LINE = re.compile(r"^\s*0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(?:[-rwxps]{4}\s+)?(/.*?)\s*$")
_ENTRY = struct.Struct("<QQQ20sBBH")  # struct memscope_trace_module
_BUILD_ID_MAX = 20
_PATH_MAX = 4096
_PT_LOAD, _PT_NOTE, _NT_GNU_BUILD_ID = 1, 4, 3


def _read(inferior, address, length):
    try:
        return bytes(inferior.read_memory(address, length))
    except (gdb.MemoryError, gdb.error, OverflowError, ValueError):
        return None


def _build_id_in_memory(inferior, start):
    """The GNU build-id of the ELF file mapped at start (offset 0), or None."""
    ehdr = _read(inferior, start, 64)
    if not ehdr or ehdr[:4] != b"\x7fELF" or ehdr[4] != 2:
        return None
    phoff, = struct.unpack_from("<Q", ehdr, 32)
    phentsize, phnum = struct.unpack_from("<HH", ehdr, 54)
    if phentsize != 56 or not 0 < phnum <= 64:
        return None
    phdrs = _read(inferior, start + phoff, 56 * phnum)
    if not phdrs:
        return None
    headers = [struct.unpack_from("<IIQQQQQQ", phdrs, 56 * i) for i in range(phnum)]
    loads = [h for h in headers if h[0] == _PT_LOAD and h[2] == 0]
    if not loads:
        return None
    bias = start - (loads[0][3] & ~0xfff)
    for p_type, _flags, _offset, vaddr, _paddr, _filesz, memsz, _align in headers:
        if p_type != _PT_NOTE:
            continue
        notes = _read(inferior, bias + vaddr, min(memsz, 4096))
        at = 0
        while notes and at + 12 <= len(notes):
            namesz, descsz, ntype = struct.unpack_from("<III", notes, at)
            name_end = at + 12 + ((namesz + 3) & ~3)
            desc_end = name_end + ((descsz + 3) & ~3)
            if desc_end > len(notes):
                break
            if ntype == _NT_GNU_BUILD_ID and notes[at + 12:at + 16] == b"GNU\0" and descsz:
                return notes[name_end:name_end + min(descsz, _BUILD_ID_MAX)]
            at = desc_end
    return None


def _objfile_build_ids():
    """{real path: build-id bytes} of the objfiles GDB loaded (not separate debug files)."""
    ids = {}
    for objfile in gdb.objfiles():
        name, build_id = objfile.filename, getattr(objfile, "build_id", None)
        if name and build_id and objfile.owner is None:
            try:
                ids[os.path.realpath(name)] = bytes.fromhex(build_id)[:_BUILD_ID_MAX]
            except ValueError:
                pass
    return ids


def modules_payload():
    """The MODULES payload of the selected inferior's file mappings, or None when GDB lists none."""
    try:
        out = gdb.execute("info proc mappings", to_string=True)
    except gdb.error:
        return None
    inferior = gdb.selected_inferior()
    objfile_ids = None
    entries = []
    for line in out.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        start, end, offset = (int(match.group(i), 16) for i in (1, 2, 3))
        path = match.group(4).encode("utf-8", "surrogateescape")[:_PATH_MAX]
        if end <= start or not path:
            continue
        build_id = b""
        if offset == 0:
            build_id = _build_id_in_memory(inferior, start)
            if build_id is None:
                if objfile_ids is None:
                    objfile_ids = _objfile_build_ids()
                build_id = objfile_ids.get(os.path.realpath(match.group(4)), b"")
        padded = path + b"\0" * (-len(path) % 8)
        entries.append(_ENTRY.pack(start, end, offset, build_id.ljust(_BUILD_ID_MAX, b"\0"), len(build_id), 0,
                                   len(path)) + padded)
    if not entries:
        return None
    return struct.pack("<II", len(entries), 0) + b"".join(entries)
