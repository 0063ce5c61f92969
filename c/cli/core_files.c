/*
 * core_files.c - the files a core's process had mapped: the NT_FILE note,
 * where each file is found now (--exe, --lib-path, --sysroot, else the
 * recorded path), and whether it is the same file (its GNU build-id against
 * the one in the ELF header page the core dumped for the mapping).
 *
 * A file that cannot be found is NULL with a sentence naming it; a file
 * whose build-id differs is refused with a sentence naming both ids, so no
 * address is ever computed from the wrong binary.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"

#define BUILD_ID_MAX 64

struct ms_elf_file {
    struct ms_elf_file *next;  /* the core's list of files */
    char *recorded;            /* the path the core names */
    char *path;                /* where it was found, NULL: not found */
    int status;                /* 0: usable; else -errno */
    char error[400];           /* why not, when status < 0 */
    uint8_t *data;             /* the file, mapped */
    size_t size;
    Elf *elf;                  /* libelf over data */
    uint64_t bias;             /* runtime address - file address */
    void *symbols;             /* symbolize.c's tables */
    uint8_t build_id[BUILD_ID_MAX]; /* the file's GNU build-id */
    size_t build_id_len;       /* its bytes, 0: none */
};

static int map_cmp(const void *a, const void *b)
{
    const struct ms_core_map *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

int ms_core_parse_nt_file(const uint8_t *desc, size_t size, struct ms_core_map **maps, size_t *n, char **strings,
                          struct ms_core_error *err)
{
    uint64_t count, page, i;
    const char *s, *end;
    struct ms_core_map *m;
    char *copy;

    if (size < 16) {
        snprintf(err->message, sizeof(err->message), "%zu bytes, too short for its header", size);
        return -EBADMSG;
    }
    memcpy(&count, desc, 8);
    memcpy(&page, desc + 8, 8);
    if (count > (size - 16) / 24) {
        snprintf(err->message, sizeof(err->message), "%" PRIu64 " files cannot fit in %zu bytes", count, size);
        return -EBADMSG;
    }
    if (page == 0 || (page & (page - 1)) || page > (UINT64_C(1) << 30)) {
        snprintf(err->message, sizeof(err->message), "page size %" PRIu64 " is not a power of two", page);
        return -EBADMSG;
    }
    copy = malloc(size - 16 - count * 24 + 1);
    m = calloc(count ? count : 1, sizeof(*m));
    if (!copy || !m) {
        free(copy);
        free(m);
        snprintf(err->message, sizeof(err->message), "out of memory");
        return -ENOMEM;
    }
    memcpy(copy, desc + 16 + count * 24, size - 16 - count * 24);
    copy[size - 16 - count * 24] = '\0';
    s = copy;
    end = copy + (size - 16 - count * 24);
    for (i = 0; i < count; i++) {
        const uint8_t *e = desc + 16 + i * 24;
        uint64_t pgoff;
        memcpy(&m[i].start, e, 8);
        memcpy(&m[i].end, e + 8, 8);
        memcpy(&pgoff, e + 16, 8);
        if (m[i].end <= m[i].start || pgoff > UINT64_MAX / page || s >= end) {
            snprintf(err->message, sizeof(err->message), "file %" PRIu64 " of %" PRIu64 " is damaged", i, count);
            free(copy);
            free(m);
            return -EBADMSG;
        }
        m[i].offset = pgoff * page;
        m[i].path = s;
        s += strlen(s) + 1;
    }
    qsort(m, count, sizeof(*m), map_cmp);
    for (i = 1; i < count; i++)
        if (m[i].start < m[i - 1].end) {
            snprintf(err->message, sizeof(err->message), "files at 0x%" PRIx64 " and 0x%" PRIx64 " overlap",
                     m[i - 1].start, m[i].start);
            free(copy);
            free(m);
            return -EBADMSG;
        }
    *maps = m;
    *n = count;
    *strings = copy;
    return 0;
}

/* The GNU build-id among notes in buf (n bytes, 4-byte aligned records). */
static size_t find_build_id(const uint8_t *buf, size_t n, uint8_t *id)
{
    size_t off = 0;

    while (n - off >= 12) {
        uint32_t namesz, descsz, type;
        size_t name_pad, desc_pad;
        memcpy(&namesz, buf + off, 4);
        memcpy(&descsz, buf + off + 4, 4);
        memcpy(&type, buf + off + 8, 4);
        off += 12;
        name_pad = ((size_t)namesz + 3) & ~(size_t)3;
        desc_pad = ((size_t)descsz + 3) & ~(size_t)3;
        if (name_pad > n - off || desc_pad > n - off - name_pad)
            return 0;
        if (type == 3 && namesz == 4 && memcmp(buf + off, "GNU", 4) == 0 && descsz > 0 && descsz <= BUILD_ID_MAX) {
            memcpy(id, buf + off + name_pad, descsz);
            return descsz;
        }
        off += name_pad + desc_pad;
    }
    return 0;
}

/* The build-id of the file as it lies on disk (its PT_NOTE segments). */
static size_t file_build_id(struct ms_elf_file *f, uint8_t *id)
{
    size_t phnum = 0, i, n;

    if (elf_getphdrnum(f->elf, &phnum) != 0)
        return 0;
    for (i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(f->elf, (int)i, &ph) || ph.p_type != PT_NOTE)
            continue;
        if (ph.p_offset > f->size || ph.p_filesz > f->size - ph.p_offset)
            continue;
        n = find_build_id(f->data + ph.p_offset, ph.p_filesz, id);
        if (n)
            return n;
    }
    return 0;
}

/*
 * The build-id the process had for the file mapped at m (offset 0): read
 * from the ELF header page the core dumped, using the file's own program
 * headers to place the note (runtime address = bias + p_vaddr). 0: the core
 * does not hold it.
 */
static size_t core_build_id(const struct ms_core *c, const struct ms_elf_file *f, uint64_t bias, uint8_t *id)
{
    size_t phnum = 0, i;
    uint8_t notes[4096];

    if (elf_getphdrnum(f->elf, &phnum) != 0)
        return 0;
    for (i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        size_t len;
        if (!gelf_getphdr(f->elf, (int)i, &ph) || ph.p_type != PT_NOTE)
            continue;
        len = ph.p_filesz < sizeof(notes) ? ph.p_filesz : sizeof(notes);
        if (ms_core_read_dumped(c, bias + ph.p_vaddr, notes, len) != 0)
            continue;
        len = find_build_id(notes, len, id);
        if (len)
            return len;
    }
    return 0;
}

static void hex(const uint8_t *id, size_t n, char *out)
{
    size_t i;
    for (i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", id[i]);
    out[2 * n] = '\0';
}

/* The first PT_LOAD's page-aligned address: where file offset 0 is mapped, less the bias. */
static int first_load(struct ms_elf_file *f, uint64_t *vaddr)
{
    size_t phnum = 0, i;

    if (elf_getphdrnum(f->elf, &phnum) != 0)
        return -1;
    for (i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(f->elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
            *vaddr = (ph.p_vaddr - ph.p_offset) & ~UINT64_C(0xfff);
            return 0;
        }
    }
    return -1;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Where the file recorded as `recorded` is now, honouring the overrides. Returns a malloc'd path or NULL. */
static char *resolve(const struct ms_core_paths *p, const char *recorded, int is_exe, char *tried, size_t tried_len)
{
    const char *base = strrchr(recorded, '/');
    char *path = NULL;
    size_t i;

    base = base ? base + 1 : recorded;
    tried[0] = '\0';
    if (is_exe && p->exe) {
        snprintf(tried, tried_len, "%s", p->exe);
        return file_exists(p->exe) ? strdup(p->exe) : NULL;
    }
    for (i = 0; i < p->nlib_path; i++) {
        if (asprintf(&path, "%s/%s", p->lib_path[i], base) < 0)
            return NULL;
        if (file_exists(path))
            return path;
        free(path);
        path = NULL;
    }
    if (p->sysroot) {
        if (asprintf(&path, "%s%s", p->sysroot, recorded) < 0)
            return NULL;
        snprintf(tried, tried_len, "%s", path);
        if (file_exists(path))
            return path;
        free(path);
        return NULL;
    }
    snprintf(tried, tried_len, "%s", recorded);
    if (recorded[0] == '/' && file_exists(recorded))
        return strdup(recorded);
    return NULL;
}

static void open_file(struct ms_core *c, struct ms_elf_file *f, const struct ms_core_map *m)
{
    const struct ms_core_paths *p = ms_core_get_paths(c);
    const struct ms_core_map *exe = ms_core_exe_map(c);
    const struct ms_core_map *base_map = m;
    size_t nmaps = 0, i;
    const struct ms_core_map *maps = ms_core_maps(c, &nmaps);
    char tried[300];
    uint8_t want[BUILD_ID_MAX] = {0}, have[BUILD_ID_MAX] = {0};
    size_t nwant, nhave;
    uint64_t first = 0;
    struct stat st;
    int fd;

    if (p->no_files) {
        f->status = -ENOENT;
        snprintf(f->error, sizeof(f->error), "%s: files are not read here", f->recorded);
        return;
    }
    f->path = resolve(p, f->recorded, exe && strcmp(exe->path, f->recorded) == 0, tried, sizeof(tried));
    if (!f->path) {
        f->status = -ENOENT;
        if (strcmp(tried, f->recorded) == 0 && strcmp(ms_core_kind(c), "core") != 0)
            snprintf(f->error, sizeof(f->error), "%s (mapped by the recorded process) is missing", f->recorded);
        else if (strcmp(tried, f->recorded) == 0)
            snprintf(f->error, sizeof(f->error), "%s (mapped in the core) is missing: give its directory with "
                     "--lib-path, a root with --sysroot%s", f->recorded,
                     exe && strcmp(exe->path, f->recorded) == 0 ? ", or the program with --exe" : "");
        else
            snprintf(f->error, sizeof(f->error), "%s is missing (looked for %s as %s)", f->recorded, f->recorded,
                     tried[0] ? tried : "a base name in --lib-path");
        return;
    }
    fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0) {
        f->status = -ENOENT;
        snprintf(f->error, sizeof(f->error), "%s cannot be read", f->path);
        if (fd >= 0)
            close(fd);
        return;
    }
    f->size = (size_t)st.st_size;
    f->data = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    close(fd);
    if (f->data == MAP_FAILED) {
        f->data = NULL;
        f->status = -EIO;
        snprintf(f->error, sizeof(f->error), "%s cannot be mapped", f->path);
        return;
    }
    for (i = 0; i < nmaps; i++) /* the mapping of file offset 0 */
        if (maps[i].offset == 0 && strcmp(maps[i].path, f->recorded) == 0) {
            base_map = &maps[i];
            break;
        }
    if (f->size < 64 || memcmp(f->data, "\177ELF", 4) != 0 || f->data[4] != 2 || f->data[5] != 1) {
        uint8_t magic[4];
        if (base_map->offset == 0 && ms_core_read_dumped(c, base_map->start, magic, 4) == 0 &&
            memcmp(magic, "\177ELF", 4) == 0) {
            f->status = -EBADMSG;
            snprintf(f->error, sizeof(f->error), "%s does not match the %s: the process mapped %s, an ELF file, "
                     "and this is not a 64-bit little-endian ELF file", f->path, ms_core_kind(c), f->recorded);
            return;
        }
        /* A data file the process mapped: its bytes serve reads, it has no symbols. */
        f->bias = base_map->start - base_map->offset;
        f->status = 0;
        return;
    }
    f->elf = elf_memory((char *)f->data, f->size);
    if (!f->elf || elf_kind(f->elf) != ELF_K_ELF || first_load(f, &first) != 0) {
        f->status = -EBADMSG;
        snprintf(f->error, sizeof(f->error), "%s does not match the %s: not a loadable ELF file", f->path,
                 ms_core_kind(c));
        return;
    }
    f->bias = base_map->start - base_map->offset - first;
    if (base_map->build_id_len) { /* a recording kept it */
        nwant = base_map->build_id_len < BUILD_ID_MAX ? base_map->build_id_len : BUILD_ID_MAX;
        memcpy(want, base_map->build_id, nwant);
    } else {
        nwant = core_build_id(c, f, f->bias, want);
    }
    nhave = file_build_id(f, have);
    memcpy(f->build_id, have, nhave);
    f->build_id_len = nhave;
    if (nwant && (nhave != nwant || memcmp(want, have, nwant) != 0)) {
        char a[2 * BUILD_ID_MAX + 1], b[2 * BUILD_ID_MAX + 1];
        hex(want, nwant, a);
        hex(have, nhave, b);
        f->status = -EBADMSG;
        snprintf(f->error, sizeof(f->error), "%s does not match the %s: the process mapped %s with build-id %s, "
                 "this file has %s", f->path, ms_core_kind(c), f->recorded, a, nhave ? b : "none");
        return;
    }
    f->status = 0;
}

struct ms_elf_file *ms_core_file(struct ms_core *c, const struct ms_core_map *m, struct ms_core_error *err)
{
    struct ms_elf_file **head = ms_core_files_slot(c), *f;

    for (f = *head; f; f = f->next)
        if (strcmp(f->recorded, m->path) == 0)
            break;
    if (!f) {
        f = calloc(1, sizeof(*f));
        if (!f || !(f->recorded = strdup(m->path))) {
            free(f);
            if (err)
                snprintf(err->message, sizeof(err->message), "out of memory");
            return NULL;
        }
        open_file(c, f, m);
        f->next = *head;
        *head = f;
    }
    if (f->status < 0) {
        if (err)
            snprintf(err->message, sizeof(err->message), "%s", f->error);
        return NULL;
    }
    return f;
}

void ms_core_files_close(struct ms_core *c)
{
    struct ms_elf_file **head = ms_core_files_slot(c), *f, *next;

    for (f = *head; f; f = next) {
        next = f->next;
        ms_symbols_free(f->symbols);
        if (f->elf)
            elf_end(f->elf);
        if (f->data)
            munmap(f->data, f->size);
        free(f->recorded);
        free(f->path);
        free(f);
    }
    *head = NULL;
}

const char *ms_elf_file_path(const struct ms_elf_file *f)
{
    return f->path;
}

uint64_t ms_elf_file_bias(const struct ms_elf_file *f)
{
    return f->bias;
}

const uint8_t *ms_elf_file_data(const struct ms_elf_file *f, size_t *size)
{
    *size = f->size;
    return f->data;
}

void **ms_elf_file_symbols_slot(struct ms_elf_file *f)
{
    return &f->symbols;
}

size_t ms_elf_file_build_id(const struct ms_elf_file *f, const uint8_t **id)
{
    *id = f->build_id;
    return f->build_id_len;
}

Elf *ms_elf_file_elf(const struct ms_elf_file *f)
{
    return f->elf;
}

int ms_elf_file_read(const struct ms_elf_file *f, uint64_t off, void *buf, size_t len)
{
    if (off > f->size || len > f->size - off)
        return -EFAULT;
    memcpy(buf, f->data + off, len);
    return 0;
}

int ms_elf_file_lookup(struct ms_elf_file *f, const char *name, uint64_t *value)
{
    static const GElf_Word kinds[2] = {SHT_SYMTAB, SHT_DYNSYM};
    int k;

    if (!f->elf)
        return -ENOENT;
    for (k = 0; k < 2; k++) {
        Elf_Scn *scn = NULL;
        while ((scn = elf_nextscn(f->elf, scn)) != NULL) {
            GElf_Shdr sh;
            Elf_Data *d;
            size_t i, n;
            if (!gelf_getshdr(scn, &sh) || sh.sh_type != kinds[k] || sh.sh_entsize == 0)
                continue;
            d = elf_getdata(scn, NULL);
            if (!d)
                continue;
            n = d->d_size / sh.sh_entsize;
            for (i = 0; i < n; i++) {
                GElf_Sym sym;
                const char *s;
                if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF || sym.st_value == 0)
                    continue;
                s = elf_strptr(f->elf, sh.sh_link, sym.st_name);
                if (s && strcmp(s, name) == 0) {
                    *value = sym.st_value;
                    return 0;
                }
            }
        }
    }
    return -ENOENT;
}
