/*
 * symbolize.c - the symbolizer `memscope inspect` lends the engine: return
 * address -> function (ELF .symtab, else .dynsym), file:line (the DWARF
 * line tables, read with libdwarf), module (the path the core's NT_FILE
 * note gives the mapping). A return address points after its call, so the
 * lookup is made at pc - 1 in file addresses (pc - 1 - the file's load
 * bias), as GDB's symbols.py does and as `addr2line -e FILE` takes them.
 *
 * A file's tables are built the first time one of its addresses is asked
 * for, and kept until the core closes. A frame in a file that cannot be
 * read (missing, mismatched), or outside every symbol, is named
 * "module+0xOFFSET" (its address less the module's base).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libdwarf/dwarf.h>
#include <libdwarf/libdwarf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

Elf *ms_elf_file_elf(const struct ms_elf_file *f);

struct func {
    uint64_t addr;
    uint64_t size;
    const char *name; /* in the file's string table (mapped) */
};

struct line_row {
    uint64_t addr;
    uint32_t line;
    uint32_t file;  /* index into files; UINT32_MAX: end of a sequence */
};

struct tables {
    struct func *funcs;
    size_t nfuncs;
    struct line_row *rows;
    size_t nrows;
    char **files;     /* interned source file names */
    size_t nfiles;
};

struct ms_symbolizer {
    struct ms_core *core;
    struct memscope_symbolizer engine;
    char **names;     /* strings handed out during one call (module+offset) */
    size_t nnames;
};

void ms_symbols_free(void *p)
{
    struct tables *t = p;
    size_t i;

    if (!t)
        return;
    free(t->funcs);
    free(t->rows);
    for (i = 0; i < t->nfiles; i++)
        free(t->files[i]);
    free(t->files);
    free(t);
}

static int func_cmp(const void *a, const void *b)
{
    const struct func *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    return (x->size < y->size) - (x->size > y->size); /* bigger first: the sized one wins over aliases */
}

static int row_cmp(const void *a, const void *b)
{
    const struct line_row *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    /* An end-of-sequence marker sorts before a row starting at the same address. */
    return (y->file == UINT32_MAX) - (x->file == UINT32_MAX);
}

/* Function symbols of one kind of table (SHT_SYMTAB or SHT_DYNSYM). */
static void read_funcs(Elf *elf, GElf_Word kind, struct tables *t)
{
    Elf_Scn *scn = NULL;

    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        Elf_Data *d;
        size_t i, n;
        struct func *grown;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != kind || sh.sh_entsize == 0)
            continue;
        d = elf_getdata(scn, NULL);
        if (!d)
            continue;
        n = d->d_size / sh.sh_entsize;
        grown = realloc(t->funcs, (t->nfuncs + n + 1) * sizeof(*t->funcs));
        if (!grown)
            return;
        t->funcs = grown;
        for (i = 0; i < n; i++) {
            GElf_Sym sym;
            const char *name;
            if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF || sym.st_value == 0)
                continue;
            if (GELF_ST_TYPE(sym.st_info) != STT_FUNC && GELF_ST_TYPE(sym.st_info) != STT_GNU_IFUNC)
                continue;
            name = elf_strptr(elf, sh.sh_link, sym.st_name);
            if (!name || !name[0])
                continue;
            t->funcs[t->nfuncs].addr = sym.st_value;
            t->funcs[t->nfuncs].size = sym.st_size;
            t->funcs[t->nfuncs].name = name;
            t->nfuncs++;
        }
    }
}

static uint32_t intern(struct tables *t, const char *name)
{
    size_t i;
    char **grown;

    for (i = t->nfiles; i-- > 0;)
        if (strcmp(t->files[i], name) == 0)
            return (uint32_t)i;
    grown = realloc(t->files, (t->nfiles + 1) * sizeof(*t->files));
    if (!grown)
        return UINT32_MAX - 1;
    t->files = grown;
    t->files[t->nfiles] = strdup(name);
    if (!t->files[t->nfiles])
        return UINT32_MAX - 1;
    return (uint32_t)t->nfiles++;
}

static void push_row(struct tables *t, size_t *cap, uint64_t addr, uint32_t line, uint32_t file)
{
    if (t->nrows == *cap) {
        size_t ncap = *cap ? *cap * 2 : 1024;
        struct line_row *grown = realloc(t->rows, ncap * sizeof(*t->rows));
        if (!grown)
            return;
        t->rows = grown;
        *cap = ncap;
    }
    t->rows[t->nrows].addr = addr;
    t->rows[t->nrows].line = line;
    t->rows[t->nrows].file = file;
    t->nrows++;
}

/* The line tables of every compilation unit of the file at path. */
static void read_lines(const char *path, struct tables *t)
{
    Dwarf_Debug dbg = NULL;
    Dwarf_Error derr = NULL;
    size_t cap = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (dwarf_init_b(fd, DW_DLC_READ, DW_GROUPNUMBER_ANY, NULL, NULL, &dbg, &derr) != DW_DLV_OK) {
        if (derr)
            dwarf_dealloc(NULL, derr, DW_DLA_ERROR);
        close(fd);
        return;
    }
    for (;;) {
        Dwarf_Unsigned hlen = 0, abbrev = 0, typeoff = 0, next = 0;
        Dwarf_Half version = 0, asize = 0, lsize = 0, esize = 0, cutype = 0;
        Dwarf_Sig8 sig;
        Dwarf_Die die = NULL;
        Dwarf_Unsigned lversion = 0;
        Dwarf_Small count = 0;
        Dwarf_Line_Context ctx = NULL;
        Dwarf_Line *lines = NULL;
        Dwarf_Signed nlines = 0, i;
        Dwarf_Off typeoffset = 0;

        (void)typeoff;
        rc = dwarf_next_cu_header_d(dbg, 1, &hlen, &version, &abbrev, &asize, &lsize, &esize, &sig, &typeoffset,
                                    &next, &cutype, &derr);
        if (rc != DW_DLV_OK)
            break;
        if (dwarf_siblingof_b(dbg, NULL, 1, &die, &derr) != DW_DLV_OK)
            continue;
        if (dwarf_srclines_b(die, &lversion, &count, &ctx, &derr) == DW_DLV_OK) {
            if (dwarf_srclines_from_linecontext(ctx, &lines, &nlines, &derr) == DW_DLV_OK) {
                for (i = 0; i < nlines; i++) {
                    Dwarf_Addr addr = 0;
                    Dwarf_Unsigned lineno = 0;
                    Dwarf_Bool end = 0;
                    char *src = NULL;
                    uint32_t file = UINT32_MAX;
                    if (dwarf_lineaddr(lines[i], &addr, &derr) != DW_DLV_OK)
                        continue;
                    dwarf_lineendsequence(lines[i], &end, &derr);
                    if (!end) {
                        if (dwarf_lineno(lines[i], &lineno, &derr) != DW_DLV_OK)
                            continue;
                        if (dwarf_linesrc(lines[i], &src, &derr) == DW_DLV_OK && src) {
                            file = intern(t, src);
                            dwarf_dealloc(dbg, src, DW_DLA_STRING);
                        } else {
                            continue;
                        }
                    }
                    push_row(t, &cap, addr, (uint32_t)lineno, file);
                }
            }
            dwarf_srclines_dealloc_b(ctx);
        }
        dwarf_dealloc(dbg, die, DW_DLA_DIE);
    }
    if (derr)
        dwarf_dealloc(dbg, derr, DW_DLA_ERROR);
    dwarf_finish(dbg, NULL);
    close(fd);
    qsort(t->rows, t->nrows, sizeof(*t->rows), row_cmp);
}

static struct tables *tables_of(struct ms_elf_file *f)
{
    void **slot = ms_elf_file_symbols_slot(f);
    struct tables *t = *slot;

    if (t)
        return t;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    read_funcs(ms_elf_file_elf(f), SHT_SYMTAB, t);
    if (t->nfuncs == 0)
        read_funcs(ms_elf_file_elf(f), SHT_DYNSYM, t);
    if (t->funcs)
        qsort(t->funcs, t->nfuncs, sizeof(*t->funcs), func_cmp);
    read_lines(ms_elf_file_path(f), t);
    *slot = t;
    return t;
}

static const char *func_at(const struct tables *t, uint64_t a)
{
    size_t lo = 0, hi = t->nfuncs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->funcs[mid].addr <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    while (lo > 0) { /* the last symbol at or below a that spans it */
        const struct func *fn = &t->funcs[lo - 1];
        if (a < fn->addr + (fn->size ? fn->size : 1))
            return fn->name;
        if (fn->size)
            return NULL;
        lo--;
    }
    return NULL;
}

static const struct line_row *line_at(const struct tables *t, uint64_t a)
{
    size_t lo = 0, hi = t->nrows;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->rows[mid].addr <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || lo == t->nrows)
        return NULL; /* before the first row, or after the last (which always ends a sequence) */
    if (t->rows[lo - 1].file == UINT32_MAX || t->rows[lo - 1].file >= t->nfiles)
        return NULL;
    return &t->rows[lo - 1];
}

static const char *keep_name(struct ms_symbolizer *s, char *name)
{
    char **grown;

    if (!name)
        return NULL;
    grown = realloc(s->names, (s->nnames + 1) * sizeof(*s->names));
    if (!grown) {
        free(name);
        return NULL;
    }
    s->names = grown;
    s->names[s->nnames++] = name;
    return name;
}

static int symbolize(void *ctx, const uint64_t *pcs, size_t n, struct memscope_frame *out)
{
    struct ms_symbolizer *s = ctx;
    size_t i;

    for (i = 0; i < n; i++) {
        uint64_t look = pcs[i] ? pcs[i] - 1 : 0;
        const struct ms_core_map *m = ms_core_map_at(s->core, look);
        struct ms_elf_file *f;
        struct tables *t = NULL;
        uint64_t base;
        char *name = NULL;

        memset(&out[i], 0, sizeof(out[i]));
        if (!m)
            continue;
        out[i].module = m->path;
        f = ms_core_file(s->core, m, NULL);
        base = f ? ms_elf_file_bias(f) : m->start - m->offset;
        if (f)
            t = tables_of(f);
        if (t) {
            const struct line_row *row = line_at(t, look - base);
            out[i].function = func_at(t, look - base);
            if (row) {
                out[i].file = t->files[row->file];
                out[i].line = row->line;
            }
        }
        if (!out[i].function) {
            const char *slash = strrchr(m->path, '/');
            if (asprintf(&name, "%s+0x%" PRIx64, slash ? slash + 1 : m->path, pcs[i] - base) < 0)
                name = NULL;
            out[i].function = keep_name(s, name);
        }
    }
    return 0;
}

int ms_symbolizer_new(struct ms_core *core, struct ms_symbolizer **out)
{
    struct ms_symbolizer *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    s->core = core;
    s->engine.symbolize = symbolize;
    s->engine.ctx = s;
    *out = s;
    return 0;
}

const struct memscope_symbolizer *ms_symbolizer_engine(struct ms_symbolizer *s)
{
    return &s->engine;
}

void ms_symbolizer_free(struct ms_symbolizer *s)
{
    size_t i;

    if (!s)
        return;
    for (i = 0; i < s->nnames; i++)
        free(s->names[i]);
    free(s->names);
    free(s);
}
