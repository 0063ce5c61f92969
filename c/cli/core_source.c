/*
 * core_source.c - an ELF core file as an engine memory source, and finding
 * the memscope store in it.
 *
 * The core is mapped read-only (copy-on-write, so libelf may never fault on
 * it) and checked by hand before libelf sees it: 64-bit, little-endian,
 * x86-64, ET_CORE. libelf then gives the program headers (PN_XNUM
 * included) and the notes. Every PT_LOAD must lie inside the file (else
 * the core is truncated, and we say so). A read is served from the dumped
 * bytes of the PT_LOAD segments; an address the core did not dump but a
 * file mapping (NT_FILE) covers is read from that file, once its build-id
 * matches the one the core holds. Everything else is -EFAULT.
 *
 * The store's root is found by the symbol memscope_store_root in a mapped
 * libmemscope (its ELF symbol tables plus the load bias from the core's
 * mappings) and else by scanning the writable segments for the root's magic
 * and letting the engine validate each candidate, as GDB does (store.py).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "memscope/store_abi.h"

#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif
#ifndef NT_AUXV
#define NT_AUXV 6
#endif

struct core_seg {
    uint64_t vaddr;  /* first address */
    uint64_t memsz;  /* bytes of memory */
    uint64_t filesz; /* bytes dumped in the core (a prefix of memsz) */
    uint64_t offset; /* where they are in the core */
    uint32_t flags;  /* PF_R/W/X */
};

struct link_name {
    const char *recorded; /* the NT_FILE path (in map_strings) */
    char *name;           /* the link map's l_name */
};

struct ms_core {
    const char *name;           /* the core's path, for messages */
    uint8_t *data;              /* the core's bytes */
    size_t size;                /* their count */
    int mapped;                 /* data is our mapping (munmap at close) */
    Elf *elf;                   /* libelf over data */
    struct core_seg *segs;      /* PT_LOADs by address */
    size_t nsegs;
    struct ms_core_map *maps;   /* NT_FILE entries by address */
    size_t nmaps;
    char *map_strings;          /* the paths maps point into */
    uint64_t entry;             /* AT_ENTRY from NT_AUXV, 0: unknown */
    struct ms_core_paths paths; /* overrides */
    struct ms_elf_file *files;  /* files opened (core_files.c) */
    uint64_t bytes_read;        /* through the source */
    struct link_name *links;    /* names the dynamic linker gave the mappings (ms_core_module_name) */
    size_t nlinks;
    int links_read;             /* links was filled (or could not be) */
    struct ms_progress *progress; /* updated from reads, or NULL */
    int recording;              /* made by ms_core_open_modules: mappings only, no memory */
};

static int fail(struct ms_core_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct ms_core_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return code;
}

static int seg_cmp(const void *a, const void *b)
{
    const struct core_seg *x = a, *y = b;
    return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

static const char *machine_name(unsigned m)
{
    switch (m) {
    case 3: return "i386";
    case 8: return "MIPS";
    case 20: return "PowerPC";
    case 21: return "PowerPC64";
    case 22: return "S/390";
    case 40: return "ARM";
    case 62: return "x86-64";
    case 183: return "AArch64";
    case 243: return "RISC-V";
    case 258: return "LoongArch";
    default: return NULL;
    }
}

/* Checks the identification and header by hand, so libelf only ever sees a native 64-bit file. */
static int check_header(const struct ms_core *c, struct ms_core_error *err)
{
    const uint8_t *d = c->data;
    uint16_t type, machine;

    if (c->size < 4 || memcmp(d, "\177ELF", 4) != 0)
        return fail(err, -EINVAL, "%s is not an ELF file (not a core dump)", c->name);
    if (c->size < 64)
        return fail(err, -EINVAL, "%s is truncated: %zu bytes, too short for an ELF header", c->name, c->size);
    memcpy(&type, d + 16, 2);
    memcpy(&machine, d + 18, 2);
    if (d[5] != 1 || d[4] != 2) {
        const char *m = machine_name(d[5] == 2 ? (unsigned)((machine >> 8) | ((machine & 0xff) << 8)) : machine);
        return fail(err, -EINVAL, "%s is a %d-bit %s-endian ELF file%s%s; memscope inspect reads x86-64 cores", c->name,
                    d[4] == 1 ? 32 : 64, d[5] == 2 ? "big" : "little", m ? " for " : "", m ? m : "");
    }
    if (machine != 62) {
        const char *m = machine_name(machine);
        if (m)
            return fail(err, -EINVAL, "%s comes from another architecture (%s); memscope inspect reads x86-64 cores",
                        c->name, m);
        return fail(err, -EINVAL,
                    "%s comes from another architecture (ELF machine %u); memscope inspect reads x86-64 cores",
                    c->name, machine);
    }
    if (type != 4)
        return fail(err, -EINVAL, "%s is an ELF %s, not a core dump", c->name,
                    type == 2 ? "executable" : type == 3 ? "shared object or PIE executable"
                    : type == 1 ? "object file" : "file of unknown type");
    return 0;
}

/* Reads the NT_FILE and NT_AUXV notes of one PT_NOTE segment. */
static int read_notes(struct ms_core *c, const GElf_Phdr *ph, struct ms_core_error *err)
{
    Elf_Data *data;
    GElf_Nhdr nh;
    size_t off = 0, next, name_off, desc_off;

    if (ph->p_offset > c->size || ph->p_filesz > c->size - ph->p_offset)
        return fail(err, -EBADMSG, "%s is truncated: its notes end at offset %" PRIu64 ", past the end of the file "
                    "(%zu bytes)", c->name, ph->p_offset + ph->p_filesz, c->size);
    if (ph->p_filesz == 0)
        return 0;
    data = elf_getdata_rawchunk(c->elf, (int64_t)ph->p_offset, ph->p_filesz, ELF_T_NHDR);
    if (!data)
        return fail(err, -EBADMSG, "%s: its notes cannot be read (%s)", c->name, elf_errmsg(-1));
    while (off < data->d_size && (next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
        const uint8_t *desc = (const uint8_t *)data->d_buf + desc_off;
        int is_core = nh.n_namesz == 5 && memcmp((const char *)data->d_buf + name_off, "CORE", 5) == 0;
        if (is_core && nh.n_type == NT_FILE && !c->maps) {
            struct ms_core_error ferr;
            int rc = ms_core_parse_nt_file(desc, nh.n_descsz, &c->maps, &c->nmaps, &c->map_strings, &ferr);
            if (rc < 0)
                return fail(err, rc, "%s: its file note (NT_FILE) is damaged: %s", c->name, ferr.message);
        } else if (is_core && nh.n_type == NT_AUXV) {
            size_t i;
            for (i = 0; i + 16 <= nh.n_descsz; i += 16) {
                uint64_t key, value;
                memcpy(&key, desc + i, 8);
                memcpy(&value, desc + i + 8, 8);
                if (key == 9) /* AT_ENTRY */
                    c->entry = value;
            }
        }
        off = next;
    }
    return 0;
}

static int parse(struct ms_core *c, struct ms_core_error *err)
{
    size_t phnum = 0, i;
    int rc;

    rc = check_header(c, err);
    if (rc < 0)
        return rc;
    elf_version(EV_CURRENT);
    c->elf = elf_memory((char *)c->data, c->size);
    if (!c->elf || elf_kind(c->elf) != ELF_K_ELF)
        return fail(err, -EBADMSG, "%s: not a readable ELF file (%s)", c->name, elf_errmsg(-1));
    if (elf_getphdrnum(c->elf, &phnum) != 0)
        return fail(err, -EBADMSG, "%s: its program headers cannot be read (%s); truncated?", c->name,
                    elf_errmsg(-1));
    if (phnum == 0)
        return fail(err, -EBADMSG, "%s is a core with no program headers (no memory)", c->name);
    if (phnum > c->size / sizeof(Elf64_Phdr))
        return fail(err, -EBADMSG, "%s is truncated: %zu program headers cannot fit in %zu bytes", c->name, phnum,
                    c->size);
    c->segs = calloc(phnum, sizeof(*c->segs));
    if (!c->segs)
        return fail(err, -ENOMEM, "out of memory reading %s", c->name);
    for (i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(c->elf, (int)i, &ph))
            return fail(err, -EBADMSG, "%s is truncated: program header %zu cannot be read (%s)", c->name, i,
                        elf_errmsg(-1));
        if (ph.p_type == PT_NOTE) {
            rc = read_notes(c, &ph, err);
            if (rc < 0)
                return rc;
        } else if (ph.p_type == PT_LOAD && ph.p_memsz > 0) {
            uint64_t end;
            if (ph.p_filesz > ph.p_memsz || __builtin_add_overflow(ph.p_vaddr, ph.p_memsz, &end))
                return fail(err, -EBADMSG, "%s: segment %zu at 0x%" PRIx64 " is damaged (file size %" PRIu64
                            ", memory size %" PRIu64 ")", c->name, i, ph.p_vaddr, ph.p_filesz, ph.p_memsz);
            if (ph.p_offset > c->size || ph.p_filesz > c->size - ph.p_offset)
                return fail(err, -EBADMSG, "%s is truncated: the memory at 0x%" PRIx64 " ends at offset %" PRIu64
                            " but the file has %zu bytes", c->name, ph.p_vaddr, ph.p_offset + ph.p_filesz, c->size);
            c->segs[c->nsegs].vaddr = ph.p_vaddr;
            c->segs[c->nsegs].memsz = ph.p_memsz;
            c->segs[c->nsegs].filesz = ph.p_filesz;
            c->segs[c->nsegs].offset = ph.p_offset;
            c->segs[c->nsegs].flags = ph.p_flags;
            c->nsegs++;
        }
    }
    if (c->nsegs == 0)
        return fail(err, -EBADMSG, "%s is a core with no memory segments", c->name);
    qsort(c->segs, c->nsegs, sizeof(*c->segs), seg_cmp);
    return 0;
}

static int open_common(struct ms_core *c, const struct ms_core_paths *paths, struct ms_core **out,
                       struct ms_core_error *err)
{
    int rc;

    if (paths)
        c->paths = *paths;
    rc = parse(c, err);
    if (rc < 0) {
        ms_core_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

int ms_core_open_memory(const void *data, size_t size, const char *name, const struct ms_core_paths *paths,
                        struct ms_core **out, struct ms_core_error *err)
{
    struct ms_core *c;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return fail(err, -ENOMEM, "out of memory");
    c->name = name ? name : "the core";
    c->data = (uint8_t *)(uintptr_t)data;
    c->size = size;
    return open_common(c, paths, out, err);
}

int ms_core_open_modules(const char *name, const struct memscope_module *mods, size_t n,
                         const struct ms_core_paths *paths, struct ms_core **out, struct ms_core_error *err)
{
    struct ms_core *c;
    size_t bytes = 0, used = 0;

    *out = NULL;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(mods[i].path) + 1 + mods[i].build_id_len;
    c = calloc(1, sizeof(*c));
    if (!c || !(c->maps = calloc(n ? n : 1, sizeof(*c->maps))) || !(c->map_strings = malloc(bytes ? bytes : 1))) {
        ms_core_close(c);
        return fail(err, -ENOMEM, "out of memory");
    }
    c->name = name;
    c->recording = 1;
    c->links_read = 1; /* no memory to read the dynamic linker's names from */
    if (paths)
        c->paths = *paths;
    for (size_t i = 0; i < n; i++) { /* mods are by address, as the maps must be */
        size_t len = strlen(mods[i].path) + 1;
        c->maps[i].start = mods[i].start;
        c->maps[i].end = mods[i].end;
        c->maps[i].offset = mods[i].offset;
        c->maps[i].path = memcpy(c->map_strings + used, mods[i].path, len);
        used += len;
        if (mods[i].build_id_len) {
            c->maps[i].build_id = memcpy(c->map_strings + used, mods[i].build_id, mods[i].build_id_len);
            c->maps[i].build_id_len = mods[i].build_id_len;
            used += mods[i].build_id_len;
        }
    }
    c->nmaps = n;
    *out = c;
    return 0;
}

const char *ms_core_kind(const struct ms_core *c)
{
    return c->recording ? "recording" : "core";
}

int ms_core_open(const char *path, const struct ms_core_paths *paths, struct ms_core **out, struct ms_core_error *err)
{
    struct ms_core *c;
    struct stat st;
    int fd;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, -errno, "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, -EINVAL, "%s is not a regular file (not a core dump)", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return fail(err, -EINVAL, "%s is empty (not a core dump)", path);
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return fail(err, -ENOMEM, "out of memory");
    }
    c->name = path;
    c->size = (size_t)st.st_size;
    c->data = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    close(fd);
    if (c->data == MAP_FAILED) {
        free(c);
        return fail(err, -EIO, "cannot map %s: %s", path, strerror(errno));
    }
    c->mapped = 1;
    madvise(c->data, c->size, MADV_WILLNEED);
    return open_common(c, paths, out, err);
}

void ms_core_close(struct ms_core *c)
{
    if (!c)
        return;
    ms_core_files_close(c);
    if (c->elf)
        elf_end(c->elf);
    if (c->mapped)
        munmap(c->data, c->size);
    for (size_t i = 0; i < c->nlinks; i++)
        free(c->links[i].name);
    free(c->links);
    free(c->segs);
    free(c->maps);
    free(c->map_strings);
    free(c);
}

/* The segment holding addr, or NULL. */
static const struct core_seg *seg_at(const struct ms_core *c, uint64_t addr)
{
    size_t lo = 0, hi = c->nsegs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->segs[mid].vaddr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    if (addr - c->segs[lo - 1].vaddr >= c->segs[lo - 1].memsz)
        return NULL;
    return &c->segs[lo - 1];
}

/* Copies what the core dumped from [addr, addr + len); *got receives how many bytes (0: none at addr). */
static void read_dumped_prefix(const struct ms_core *c, uint64_t addr, uint8_t *buf, size_t len, size_t *got)
{
    const struct core_seg *s = seg_at(c, addr);
    uint64_t off, n;

    *got = 0;
    if (!s || addr - s->vaddr >= s->filesz)
        return;
    off = addr - s->vaddr;
    n = s->filesz - off;
    if (n > len)
        n = len;
    memcpy(buf, c->data + s->offset + off, n);
    *got = n;
}

int ms_core_read_dumped(const struct ms_core *c, uint64_t addr, void *buf, size_t len)
{
    uint8_t *out = buf;

    while (len > 0) {
        size_t got = 0;
        read_dumped_prefix(c, addr, out, len, &got);
        if (got == 0)
            return -EFAULT;
        out += got;
        addr += got;
        len -= got;
    }
    return 0;
}

/* Reads from the file a mapping names: what the core did not dump. */
static int read_mapped_file(struct ms_core *c, uint64_t addr, uint8_t *buf, size_t len, size_t *got)
{
    const struct ms_core_map *m = ms_core_map_at(c, addr);
    struct ms_elf_file *f;
    uint64_t n;

    *got = 0;
    if (!m)
        return -EFAULT;
    f = ms_core_file(c, m, NULL);
    if (!f)
        return -EFAULT;
    n = m->end - addr;
    if (n > len)
        n = len;
    if (ms_elf_file_read(f, m->offset + (addr - m->start), buf, n) != 0)
        return -EFAULT;
    *got = n;
    return 0;
}

static int core_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    struct ms_core *c = ctx;
    uint8_t *out = buf;
    size_t total = len;

    while (len > 0) {
        size_t got = 0;
        read_dumped_prefix(c, addr, out, len, &got);
        if (got == 0 && read_mapped_file(c, addr, out, len, &got) < 0)
            return -EFAULT;
        if (got == 0)
            return -EFAULT;
        out += got;
        addr += got;
        len -= got;
    }
    c->bytes_read += total;
    if (c->progress)
        ms_progress_update(c->progress, c->bytes_read);
    return 0;
}

void ms_core_source(struct ms_core *c, struct memscope_source *src)
{
    src->read = core_read;
    src->ctx = c;
}

void ms_core_set_progress(struct ms_core *c, struct ms_progress *p)
{
    c->progress = p;
}

uint64_t ms_core_bytes_read(const struct ms_core *c)
{
    return c->bytes_read;
}

const char *ms_core_name(const struct ms_core *c)
{
    return c->name;
}

uint64_t ms_core_size(const struct ms_core *c)
{
    return c->size;
}

uint64_t ms_core_writable_bytes(const struct ms_core *c)
{
    uint64_t n = 0;
    size_t i;

    for (i = 0; i < c->nsegs; i++)
        if (c->segs[i].flags & PF_W)
            n += c->segs[i].filesz;
    return n;
}

const struct ms_core_map *ms_core_maps(const struct ms_core *c, size_t *n)
{
    *n = c->nmaps;
    return c->maps;
}

const struct ms_core_map *ms_core_map_at(const struct ms_core *c, uint64_t addr)
{
    size_t lo = 0, hi = c->nmaps;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->maps[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || addr >= c->maps[lo - 1].end)
        return NULL;
    return &c->maps[lo - 1];
}

const struct ms_core_map *ms_core_exe_map(const struct ms_core *c)
{
    const struct ms_core_map *m = c->entry ? ms_core_map_at(c, c->entry) : NULL;
    size_t i;

    if (m) { /* the mapping at offset 0 of the same file */
        for (i = 0; i < c->nmaps; i++)
            if (c->maps[i].offset == 0 && strcmp(c->maps[i].path, m->path) == 0)
                return &c->maps[i];
        return m;
    }
    return c->nmaps ? &c->maps[0] : NULL;
}

const struct ms_core_paths *ms_core_get_paths(const struct ms_core *c)
{
    return &c->paths;
}

struct ms_elf_file **ms_core_files_slot(struct ms_core *c)
{
    return &c->files;
}

int ms_core_check_files(struct ms_core *c, struct ms_core_error *err)
{
    size_t i;

    if (c->paths.no_files)
        return 0;
    for (i = 0; i < c->nmaps; i++) {
        const struct ms_core_map *m = &c->maps[i];
        uint8_t magic[4];
        struct ms_core_error ferr;
        if (m->offset != 0 || ms_core_read_dumped(c, m->start, magic, 4) != 0 || memcmp(magic, "\177ELF", 4) != 0)
            continue; /* not an ELF file the core can vouch for */
        ferr.message[0] = '\0';
        if (!ms_core_file(c, m, &ferr) && strstr(ferr.message, "does not match"))
            return fail(err, -EBADMSG, "%s", ferr.message);
    }
    return 0;
}

/* ---- module names as the dynamic linker gave them ---- */

#define MAX_LINK_MAPS 4096u /* objects followed along the link map at most */

/* Reads a NUL-terminated string of at most len - 1 bytes at addr. 0 or -EFAULT. */
static int read_string(struct ms_core *c, uint64_t addr, char *buf, size_t len)
{
    size_t i;

    for (i = 0; i + 1 < len; i++) {
        if (core_read(c, addr + i, buf + i, 1) != 0)
            return -EFAULT;
        if (buf[i] == '\0')
            return 0;
    }
    buf[len - 1] = '\0';
    return 0;
}

/*
 * Walks the program's link map (its PT_DYNAMIC's DT_DEBUG -> r_debug.r_map
 * -> l_next ...) and remembers each object's l_name under the NT_FILE path
 * of the mapping holding its l_ld: the name GDB shows ("/lib/x86_64-linux-
 * gnu/libc.so.6" where the kernel recorded "/usr/lib/..."). Best effort:
 * anything unreadable leaves the NT_FILE names.
 */
static void read_link_names(struct ms_core *c)
{
    const struct ms_core_map *exe = ms_core_exe_map(c);
    struct ms_elf_file *f;
    Elf *elf;
    size_t phnum = 0, i, nlinks = 0;
    uint64_t dyn = 0, dyn_size = 0, r_debug = 0, lm = 0;

    c->links_read = 1;
    if (!exe || c->paths.no_files || !(f = ms_core_file(c, exe, NULL)) || !(elf = ms_elf_file_elf(f)) ||
        elf_getphdrnum(elf, &phnum) != 0)
        return;
    for (i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_DYNAMIC) {
            dyn = ms_elf_file_bias(f) + ph.p_vaddr;
            dyn_size = ph.p_memsz < 65536 ? ph.p_memsz : 65536;
        }
    }
    for (i = 0; dyn && i + 16 <= dyn_size; i += 16) {
        uint64_t tag_val[2];
        if (core_read(c, dyn + i, tag_val, sizeof(tag_val)) != 0 || tag_val[0] == 0 /* DT_NULL */)
            break;
        if (tag_val[0] == 21 /* DT_DEBUG */)
            r_debug = tag_val[1];
    }
    if (!r_debug || core_read(c, r_debug + 8, &lm, 8) != 0) /* r_debug.r_map */
        return;
    c->links = calloc(c->nmaps ? c->nmaps : 1, sizeof(*c->links));
    if (!c->links)
        return;
    for (i = 0; lm && i < MAX_LINK_MAPS && nlinks < c->nmaps; i++) {
        uint64_t l[4]; /* l_addr, l_name, l_ld, l_next */
        char name[4096];
        const struct ms_core_map *m;
        if (core_read(c, lm, l, sizeof(l)) != 0)
            break;
        if (l[1] && read_string(c, l[1], name, sizeof(name)) == 0 && name[0] == '/' &&
            (m = ms_core_map_at(c, l[2])) != NULL && strcmp(m->path, name) != 0) {
            c->links[nlinks].recorded = m->path;
            c->links[nlinks].name = strdup(name);
            if (c->links[nlinks].name)
                nlinks++;
        }
        lm = l[3];
    }
    c->nlinks = nlinks;
}

const char *ms_core_module_name(struct ms_core *c, const char *recorded)
{
    size_t i;

    if (!c->links_read)
        read_link_names(c);
    for (i = 0; i < c->nlinks; i++)
        if (c->links[i].recorded == recorded || strcmp(c->links[i].recorded, recorded) == 0)
            return c->links[i].name;
    return recorded;
}

/* ---- finding the store ---- */

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int is_memscope_library(const char *path)
{
    return strncmp(base_name(path), "libmemscope", 11) == 0 && strstr(base_name(path), ".so") != NULL;
}

/* Opens the store at root (how names the way it was found); the engine's error in err. */
static int try_root(struct ms_core *c, uint64_t root, struct memscope_history **out, struct memscope_error *eerr)
{
    struct memscope_source src;

    ms_core_source(c, &src);
    memset(eerr, 0, sizeof(*eerr));
    return memscope_history_open(&src, root, out, eerr);
}

static int explain(struct ms_core *c, int rc, uint64_t root, const struct memscope_error *eerr,
                   struct ms_core_error *err)
{
    char where[64];

    snprintf(where, sizeof(where), "0x%" PRIx64, root);
    if (rc == -ENOENT)
        return fail(err, rc, "%s: memscope store at %s: its magic does not match (the store is damaged, or recording "
                    "had not started yet)", c->name, where);
    if (eerr->message[0] && strstr(eerr->message, where))
        return fail(err, rc, "%s: %s", c->name, eerr->message);
    return fail(err, rc, "%s: memscope store at %s: %s", c->name, where,
                eerr->message[0] ? eerr->message : memscope_strerror(rc));
}

static int seg_size_cmp(const void *a, const void *b)
{
    const struct core_seg *const *x = a, *const *y = b;
    if ((*x)->filesz != (*y)->filesz)
        return (*x)->filesz < (*y)->filesz ? -1 : 1;
    return (*x)->vaddr < (*y)->vaddr ? -1 : (*x)->vaddr > (*y)->vaddr;
}

/* Most bytes the candidates a scan refuses may read together: so many times the core's size, at least SCAN_READ_MIN. */
#define SCAN_READ_FACTOR 4u
#define SCAN_READ_MIN (UINT64_C(64) << 20)

/*
 * Scans writable dumped memory, smallest segment first (the root sits in a
 * library's small .data). Bounded: at most 4096 candidates, and no more
 * than SCAN_READ_FACTOR times the core's size read for candidates the
 * engine refuses (a core of copies of a root over one long chunk list that
 * is damaged at its end made every candidate read it all: 4096 times 32 MB).
 */
static int open_by_scan(struct ms_core *c, struct memscope_history **out, struct ms_core_error *err,
                        int *found_any)
{
    const struct core_seg **order = NULL;
    size_t n = 0, i;
    int first_rc = 0, proto_rc = 0;
    uint64_t first_root = 0, proto_root = 0, read_before = ms_core_bytes_read(c), read_limit;
    struct memscope_error first_err, proto_err, eerr;
    unsigned tries = 0;
    int rc, stop = 0;

    read_limit = (uint64_t)c->size * SCAN_READ_FACTOR;
    if (read_limit < SCAN_READ_MIN)
        read_limit = SCAN_READ_MIN;

    *found_any = 0;
    order = calloc(c->nsegs, sizeof(*order));
    if (!order)
        return fail(err, -ENOMEM, "out of memory");
    for (i = 0; i < c->nsegs; i++)
        if ((c->segs[i].flags & PF_W) && c->segs[i].filesz >= MEMSCOPE_STORE_MAGIC_SIZE)
            order[n++] = &c->segs[i];
    qsort(order, n, sizeof(*order), seg_size_cmp);
    for (i = 0; i < n && !stop; i++) {
        const uint8_t *base = c->data + order[i]->offset;
        const uint8_t *p = base, *end = base + order[i]->filesz;
        while (!stop && p < end && (p = memmem(p, (size_t)(end - p), MEMSCOPE_STORE_MAGIC, MEMSCOPE_STORE_MAGIC_SIZE))) {
            uint64_t addr = order[i]->vaddr + (uint64_t)(p - base);
            p++;
            if (addr % 8 != 0)
                continue;
            *found_any = 1;
            if (++tries > 4096) { /* a core full of magics: stop, bounded */
                stop = 1;
                break;
            }
            rc = try_root(c, addr, out, &eerr);
            if (rc == 0) {
                free(order);
                return 0;
            }
            if (rc == -EPROTO && !proto_rc) {
                proto_rc = rc;
                proto_root = addr;
                proto_err = eerr;
            } else if (rc != -ENOENT && !first_rc) {
                first_rc = rc;
                first_root = addr;
                first_err = eerr;
            }
            if (ms_core_bytes_read(c) - read_before > read_limit)
                stop = 1; /* refused candidates read too much already: stop, bounded */
        }
    }
    free(order);
    if (proto_rc)
        return explain(c, proto_rc, proto_root, &proto_err, err);
    if (first_rc)
        return explain(c, first_rc, first_root, &first_err, err);
    return -ENOENT;
}

int ms_core_open_store(struct ms_core *c, struct memscope_history **out, const char **how, struct ms_core_error *err)
{
    struct memscope_error eerr;
    struct ms_core_error ferr;
    int have_library = 0, found_any = 0, rc;
    size_t i;

    *out = NULL;
    ferr.message[0] = '\0';
    for (i = 0; i < c->nmaps; i++) {
        const struct ms_core_map *m = &c->maps[i];
        struct ms_elf_file *f;
        uint64_t value;
        if (!is_memscope_library(m->path) || m->offset != 0)
            continue;
        have_library = 1;
        if (c->paths.no_files)
            continue;
        f = ms_core_file(c, m, &ferr);
        if (!f) {
            if (ferr.message[0] && strstr(ferr.message, "does not match")) /* the wrong file: say so */
                return fail(err, -EBADMSG, "%s", ferr.message);
            continue; /* missing: the scan can still find the store */
        }
        if (ms_elf_file_lookup(f, MEMSCOPE_STORE_SYMBOL, &value) != 0)
            continue; /* stripped */
        value += ms_elf_file_bias(f);
        rc = try_root(c, value, out, &eerr);
        if (rc == 0) {
            *how = "symbol " MEMSCOPE_STORE_SYMBOL;
            return 0;
        }
        return explain(c, rc, value, &eerr, err);
    }
    rc = open_by_scan(c, out, err, &found_any);
    if (rc == 0) {
        *how = "magic scan";
        return 0;
    }
    if (rc != -ENOENT)
        return rc;
    if (!have_library && c->nmaps > 0)
        return fail(err, -ENOENT, "%s: no memscope store in this core: the process had not loaded libmemscope.so "
                    "(run it with memscope run, LD_PRELOAD=libmemscope.so or -lmemscope)", c->name);
    if (ferr.message[0])
        return fail(err, -ENOENT, "%s: no memscope store found in its memory, and %s", c->name, ferr.message);
    return fail(err, -ENOENT, "%s: no memscope store found in this core (a damaged store, or recording had not "
                "started)", c->name);
}
