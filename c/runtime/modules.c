/*
 * modules.c - the process's file mappings with their build-ids, as a
 * MODULES payload (trace_abi.h), so that a reader can name return addresses
 * once the process is gone: the trace writer (trace.c) writes it as a
 * block, the exit image (exit_image.c) as a file beside the image.
 *
 * Read from /proc/self/maps with open/read (no malloc, no stdio), from a
 * background thread or at exit, never on the recording path. A build-id is
 * read from the process's own memory: the ELF header of a mapping at file
 * offset 0, its program headers, and the PT_NOTE segments they name, copied
 * with process_vm_readv, which fails where a plain read would fault.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "memscope/trace_abi.h"
#include "runtime.h"

#define MS_MAPS_LINE 4608u /* a maps line: addresses, fields, and a path of up to PATH_MAX */

/* The entry i of a payload being built (entries are variable-sized: walk from the first). */
static struct memscope_trace_module *entry_next(struct memscope_trace_module *e)
{
    return (struct memscope_trace_module *)((uint8_t *)(e + 1) + ((e->path_len + 7u) & ~7u));
}

/* Copies len bytes of this process's memory at addr: 0, or -1 where nothing is (a file
 * mapping past its file's end would raise SIGBUS on a plain read; this fails instead). */
static int safe_read(uint64_t addr, void *buf, size_t len)
{
    struct iovec local = {buf, len}, remote = {(void *)(uintptr_t)addr, len};

    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

static uint64_t hex(const char **p)
{
    uint64_t v = 0;

    for (;; (*p)++) {
        char c = **p;
        if (c >= '0' && c <= '9')
            v = v * 16 + (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (uint64_t)(c - 'a' + 10);
        else
            return v;
    }
}

/* Parses one maps line into an entry at e (room bytes); 0: skipped (not a file), -1: no room. */
static int parse_line(const char *line, size_t len, struct memscope_trace_module *e, size_t room)
{
    const char *p = line, *end = line + len, *path;
    uint64_t start, stop, offset;
    int is_readable;
    size_t path_len, need;

    start = hex(&p);
    if (*p++ != '-')
        return 0;
    stop = hex(&p);
    if (*p++ != ' ' || p + 5 > end)
        return 0;
    is_readable = p[0] == 'r';
    p += 5; /* "rwxp " */
    offset = hex(&p);
    /* " dev inode   path": the path starts at the first '/' after the inode. */
    path = memchr(p, '/', (size_t)(end - p));
    if (!path || stop <= start)
        return 0;
    path_len = (size_t)(end - path);
    if (path_len > MEMSCOPE_TRACE_PATH_MAX)
        return 0;
    need = sizeof(*e) + ((path_len + 7u) & ~(size_t)7);
    if (need > room)
        return -1;
    memset(e, 0, need);
    e->start = start;
    e->end = stop;
    e->offset = offset;
    e->reserved = (uint8_t)is_readable; /* for read_build_id; zeroed before the payload is used */
    e->path_len = (uint16_t)path_len;
    memcpy(e + 1, path, path_len);
    return 1;
}

/* The GNU build-id of the ELF file mapped at e (offset 0), read from memory, into e. */
static void read_build_id(struct memscope_trace_module *e)
{
    ElfW(Ehdr) eh;
    ElfW(Phdr) ph[64];
    uint8_t notes[4096];
    uint64_t bias = 0;
    unsigned nph;
    int have_bias = 0;

    if (!e->reserved || e->offset != 0 || safe_read(e->start, &eh, sizeof(eh)) != 0)
        return;
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(ElfW(Phdr)) || eh.e_phnum == 0)
        return;
    nph = eh.e_phnum < 64 ? eh.e_phnum : 64;
    if (safe_read(e->start + eh.e_phoff, ph, nph * sizeof(ph[0])) != 0)
        return;
    for (unsigned i = 0; i < nph; i++)
        if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0) {
            bias = e->start - (ph[i].p_vaddr & ~(uint64_t)4095);
            have_bias = 1;
            break;
        }
    if (!have_bias)
        return;
    for (unsigned i = 0; i < nph; i++) {
        size_t left = ph[i].p_memsz < sizeof(notes) ? (size_t)ph[i].p_memsz : sizeof(notes), at = 0;
        if (ph[i].p_type != PT_NOTE || safe_read(bias + ph[i].p_vaddr, notes, left) != 0)
            continue;
        while (left - at >= sizeof(ElfW(Nhdr))) {
            ElfW(Nhdr) n;
            size_t name, desc;
            memcpy(&n, notes + at, sizeof(n));
            name = (n.n_namesz + 3u) & ~(size_t)3;
            desc = (n.n_descsz + 3u) & ~(size_t)3;
            if (name + desc > left - at - sizeof(n))
                break;
            if (n.n_type == NT_GNU_BUILD_ID && n.n_namesz == 4 && memcmp(notes + at + sizeof(n), "GNU", 4) == 0 &&
                n.n_descsz > 0) {
                size_t len = n.n_descsz < MEMSCOPE_TRACE_BUILD_ID_MAX ? n.n_descsz : MEMSCOPE_TRACE_BUILD_ID_MAX;
                memcpy(e->build_id, notes + at + sizeof(n) + name, len);
                e->build_id_len = (uint8_t)len;
                return;
            }
            at += sizeof(n) + name + desc;
        }
    }
}

size_t ms_modules_collect(uint8_t *buf, size_t cap)
{
    struct memscope_trace_modules *h = (struct memscope_trace_modules *)buf;
    struct memscope_trace_module *e;
    char line[MS_MAPS_LINE];
    size_t used = sizeof(*h), have = 0;
    int fd, skipping = 0;

    if (cap < sizeof(*h))
        return 0;
    memset(h, 0, sizeof(*h));
    fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    for (;;) {
        ssize_t got = read(fd, line + have, sizeof(line) - have);
        char *nl;
        if (got <= 0)
            break;
        have += (size_t)got;
        while ((nl = memchr(line, '\n', have)) != NULL) {
            size_t len = (size_t)(nl - line);
            if (!skipping && !(h->flags & MEMSCOPE_TRACE_MODULES_TRUNCATED)) {
                int r = parse_line(line, len, (struct memscope_trace_module *)(buf + used), cap - used);
                if (r < 0)
                    h->flags |= MEMSCOPE_TRACE_MODULES_TRUNCATED;
                else if (r > 0) {
                    used = (size_t)((uint8_t *)entry_next((struct memscope_trace_module *)(buf + used)) - buf);
                    h->count++;
                }
            }
            skipping = 0;
            memmove(line, nl + 1, have - len - 1);
            have -= len + 1;
        }
        if (have == sizeof(line)) { /* a line longer than any path: skip it */
            have = 0;
            skipping = 1;
        }
    }
    close(fd);
    e = (struct memscope_trace_module *)(h + 1);
    for (uint32_t i = 0; i < h->count; i++, e = entry_next(e))
        read_build_id(e);
    e = (struct memscope_trace_module *)(h + 1);
    for (uint32_t i = 0; i < h->count; i++, e = entry_next(e))
        e->reserved = 0;
    return used;
}

static int count_objects(struct dl_phdr_info *info, size_t size, void *data)
{
    unsigned long long *generation = data;

    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
        *generation = info->dlpi_adds + info->dlpi_subs;
    return 1; /* the counters are the same for every object: one is enough */
}

unsigned long long ms_modules_generation(void)
{
    unsigned long long generation = 0;

    dl_iterate_phdr(count_objects, &generation);
    return generation;
}
