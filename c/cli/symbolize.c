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
#include <dlfcn.h>
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"

struct func {
    uint64_t addr;
    uint64_t size;
    const char *name; /* in a mapped string table (may end in @VERSION) */
    unsigned rank;    /* 0 global, 1 weak, 2 local: the name GDB prefers among aliases comes first */
};

struct line_row {
    uint64_t addr;
    uint32_t line;
    uint32_t file;  /* index into the tables' files; UINT32_MAX: end of a sequence */
};

/* A function's or inlined call's address range in a compilation unit. */
struct scope {
    uint64_t lo, hi;  /* [lo, hi) */
    uint32_t depth;   /* nesting: 0 for a subprogram, deeper for inlined calls */
    uint32_t inlined; /* a DW_TAG_inlined_subroutine */
    char *name;
};

struct cu {
    uint64_t offset;        /* the CU DIE's offset in .debug_info */
    struct line_row *rows;  /* sorted by address */
    size_t nrows, caprows;
    struct scope *scopes;
    size_t nscopes, capscopes;
};

#define MAX_CUS_PARSED 4096u   /* a file's compilation units parsed at most */
#define MAX_DIE_DEPTH 64u      /* DIE nesting followed at most */
#define MAX_DIES_PER_CU 2000000u

struct tables {
    struct func *funcs;
    size_t nfuncs;
    char **files;          /* interned source file names */
    size_t nfiles;
    uint8_t *debug_map;    /* the separate debug file (build-id), mapped, or NULL */
    size_t debug_size;
    Elf *debug_elf;
    int dwarf_fd;          /* the file libdwarf reads */
    Dwarf_Debug dbg;       /* NULL: no DWARF */
    Dwarf_Arange *aranges; /* address -> CU, or NULL */
    Dwarf_Signed naranges;
    struct cu *cus;        /* parsed CUs */
    size_t ncus;
    int all_parsed;        /* no aranges: every CU was parsed */
};

struct ms_symbolizer {
    struct ms_core *core;
    struct ms_core *owned_core; /* made from a recording's mappings (ms_symbolizer_for_modules) */
    struct memscope_symbolizer engine;
    char **names;          /* strings handed out (module+offset) */
    size_t nnames;
    struct ms_core_error warning; /* the first file that could not be read, for the caller */
};

static void cu_free(struct cu *c)
{
    size_t i;
    free(c->rows);
    for (i = 0; i < c->nscopes; i++)
        free(c->scopes[i].name);
    free(c->scopes);
}

void ms_symbols_free(void *p)
{
    struct tables *t = p;
    size_t i;

    if (!t)
        return;
    for (i = 0; i < t->ncus; i++)
        cu_free(&t->cus[i]);
    free(t->cus);
    if (t->dbg) {
        if (t->aranges) {
            Dwarf_Signed k;
            for (k = 0; k < t->naranges; k++)
                dwarf_dealloc(t->dbg, t->aranges[k], DW_DLA_ARANGE);
            dwarf_dealloc(t->dbg, t->aranges, DW_DLA_LIST);
        }
        dwarf_finish(t->dbg, NULL);
    }
    if (t->dwarf_fd >= 0)
        close(t->dwarf_fd);
    free(t->funcs);
    for (i = 0; i < t->nfiles; i++)
        free(t->files[i]);
    free(t->files);
    if (t->debug_elf)
        elf_end(t->debug_elf);
    if (t->debug_map)
        munmap(t->debug_map, t->debug_size);
    free(t);
}

static int func_cmp(const void *a, const void *b)
{
    const struct func *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    if ((x->size == 0) != (y->size == 0))
        return x->size ? -1 : 1; /* the sized one first */
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return strcmp(x->name, y->name);
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
            t->funcs[t->nfuncs].rank = GELF_ST_BIND(sym.st_info) == STB_GLOBAL ? 0
                                       : GELF_ST_BIND(sym.st_info) == STB_WEAK ? 1 : 2;
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
        return UINT32_MAX;
    t->files = grown;
    t->files[t->nfiles] = strdup(name);
    if (!t->files[t->nfiles])
        return UINT32_MAX;
    return (uint32_t)t->nfiles++;
}

static void push_row(struct cu *c, uint64_t addr, uint32_t line, uint32_t file)
{
    if (c->nrows == c->caprows) {
        size_t ncap = c->caprows ? c->caprows * 2 : 256;
        struct line_row *grown = realloc(c->rows, ncap * sizeof(*c->rows));
        if (!grown)
            return;
        c->rows = grown;
        c->caprows = ncap;
    }
    c->rows[c->nrows].addr = addr;
    c->rows[c->nrows].line = line;
    c->rows[c->nrows].file = file;
    c->nrows++;
}

static void push_scope(struct cu *c, uint64_t lo, uint64_t hi, uint32_t depth, int inlined, const char *name)
{
    if (lo >= hi || !name)
        return;
    if (c->nscopes == c->capscopes) {
        size_t ncap = c->capscopes ? c->capscopes * 2 : 64;
        struct scope *grown = realloc(c->scopes, ncap * sizeof(*c->scopes));
        if (!grown)
            return;
        c->scopes = grown;
        c->capscopes = ncap;
    }
    c->scopes[c->nscopes].lo = lo;
    c->scopes[c->nscopes].hi = hi;
    c->scopes[c->nscopes].depth = depth;
    c->scopes[c->nscopes].inlined = (uint32_t)inlined;
    c->scopes[c->nscopes].name = strdup(name);
    if (c->scopes[c->nscopes].name)
        c->nscopes++;
}

/* The CU's line table into c->rows. */
static void read_cu_lines(struct tables *t, Dwarf_Die cu_die, struct cu *c)
{
    Dwarf_Error derr = NULL;
    Dwarf_Unsigned lversion = 0;
    Dwarf_Small count = 0;
    Dwarf_Line_Context ctx = NULL;
    Dwarf_Line *lines = NULL;
    Dwarf_Signed nlines = 0, i;

    if (dwarf_srclines_b(cu_die, &lversion, &count, &ctx, &derr) != DW_DLV_OK)
        return;
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
                if (dwarf_linesrc(lines[i], &src, &derr) != DW_DLV_OK || !src)
                    continue;
                file = intern(t, src);
                dwarf_dealloc(t->dbg, src, DW_DLA_STRING);
                if (file == UINT32_MAX)
                    continue;
            }
            push_row(c, addr, (uint32_t)lineno, file);
        }
    }
    dwarf_srclines_dealloc_b(ctx);
    if (c->nrows)
        qsort(c->rows, c->nrows, sizeof(*c->rows), row_cmp);
}

/*
 * C++ names as GDB prints them ("Widget::Widget()"): the C++ runtime's own
 * demangler, looked up once in libstdc++ (when it is there; else names stay
 * mangled). Returns a malloc'd string or NULL.
 */
typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);

static char *demangle(const char *mangled)
{
    static int looked;
    static demangle_fn fn;
    int status = -1;
    char *out;

    if (!mangled || strncmp(mangled, "_Z", 2) != 0)
        return NULL;
    if (!looked) {
        void *lib = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
        looked = 1;
        if (lib)
            fn = (demangle_fn)(uintptr_t)dlsym(lib, "__cxa_demangle");
    }
    if (!fn)
        return NULL;
    out = fn(mangled, NULL, NULL, &status);
    if (status != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* A DIE's name (demangled linkage name for C++), or that of its abstract origin / specification. */
static int die_name(Dwarf_Debug dbg, Dwarf_Die die, char *out, size_t len, int hops)
{
    static const Dwarf_Half refs[2] = {DW_AT_abstract_origin, DW_AT_specification};
    Dwarf_Error derr = NULL;
    char *name = NULL;
    int k;

    {
        static const Dwarf_Half linkage[2] = {DW_AT_linkage_name, DW_AT_MIPS_linkage_name};
        for (k = 0; k < 2; k++) {
            Dwarf_Attribute attr = NULL;
            char *mangled = NULL, *plain = NULL;
            if (dwarf_attr(die, linkage[k], &attr, &derr) != DW_DLV_OK)
                continue;
            if (dwarf_formstring(attr, &mangled, &derr) == DW_DLV_OK)
                plain = demangle(mangled);
            dwarf_dealloc(dbg, attr, DW_DLA_ATTR);
            if (plain) {
                snprintf(out, len, "%s", plain);
                free(plain);
                return 0;
            }
        }
    }
    if (dwarf_diename(die, &name, &derr) == DW_DLV_OK && name) {
        snprintf(out, len, "%s", name);
        return 0;
    }
    if (hops >= 3)
        return -1;
    for (k = 0; k < 2; k++) {
        Dwarf_Attribute attr = NULL;
        Dwarf_Off off = 0;
        Dwarf_Die other = NULL;
        int rc = -1;
        if (dwarf_attr(die, refs[k], &attr, &derr) != DW_DLV_OK)
            continue;
        if (dwarf_global_formref(attr, &off, &derr) == DW_DLV_OK &&
            dwarf_offdie_b(dbg, off, 1, &other, &derr) == DW_DLV_OK) {
            rc = die_name(dbg, other, out, len, hops + 1);
            dwarf_dealloc(dbg, other, DW_DLA_DIE);
        }
        dwarf_dealloc(dbg, attr, DW_DLA_ATTR);
        if (rc == 0)
            return 0;
    }
    return -1;
}

/* The address ranges of a DIE: low/high pc, or DW_AT_ranges (DWARF 5 rnglists or DWARF 4 ranges). */
static void die_ranges(struct tables *t, Dwarf_Die die, struct cu *c, uint32_t depth, int inlined,
                       const char *name, uint64_t cu_base)
{
    Dwarf_Error derr = NULL;
    Dwarf_Addr lo = 0, hi = 0;
    Dwarf_Half form = 0;
    enum Dwarf_Form_Class cls = DW_FORM_CLASS_UNKNOWN;
    Dwarf_Attribute attr = NULL;

    if (dwarf_lowpc(die, &lo, &derr) == DW_DLV_OK && dwarf_highpc_b(die, &hi, &form, &cls, &derr) == DW_DLV_OK) {
        if (cls == DW_FORM_CLASS_CONSTANT)
            hi += lo;
        push_scope(c, lo, hi, depth, inlined, name);
        return;
    }
    if (dwarf_attr(die, DW_AT_ranges, &attr, &derr) != DW_DLV_OK)
        return;
    if (dwarf_whatform(attr, &form, &derr) == DW_DLV_OK) {
        Dwarf_Unsigned value = 0;
        if (form == DW_FORM_rnglistx ? dwarf_formudata(attr, &value, &derr) == DW_DLV_OK
                                     : dwarf_global_formref(attr, (Dwarf_Off *)&value, &derr) == DW_DLV_OK) {
            Dwarf_Half version = 0, offset_size = 0;
            if (dwarf_get_version_of_die(die, &version, &offset_size) == DW_DLV_OK && version >= 5) {
                Dwarf_Rnglists_Head head = NULL;
                Dwarf_Unsigned n = 0, global = 0, i;
                if (dwarf_rnglists_get_rle_head(attr, form, value, &head, &n, &global, &derr) == DW_DLV_OK) {
                    for (i = 0; i < n && i < 100000; i++) {
                        unsigned elen = 0, code = 0;
                        Dwarf_Unsigned r1 = 0, r2 = 0, c1 = 0, c2 = 0;
                        Dwarf_Bool unavailable = 0;
                        if (dwarf_get_rnglists_entry_fields_a(head, i, &elen, &code, &r1, &r2, &unavailable, &c1,
                                                              &c2, &derr) != DW_DLV_OK)
                            break;
                        if (!unavailable && code != DW_RLE_end_of_list && code != DW_RLE_base_address &&
                            code != DW_RLE_base_addressx)
                            push_scope(c, c1, c2, depth, inlined, name);
                    }
                    dwarf_dealloc_rnglists_head(head);
                }
            } else {
                Dwarf_Ranges *r = NULL;
                Dwarf_Signed n = 0, i;
                Dwarf_Unsigned bytes = 0;
                Dwarf_Off real = 0;
                uint64_t base = cu_base;
                if (dwarf_get_ranges_b(t->dbg, value, die, &real, &r, &n, &bytes, &derr) == DW_DLV_OK) {
                    for (i = 0; i < n; i++) {
                        if (r[i].dwr_type == DW_RANGES_ENTRY)
                            push_scope(c, base + r[i].dwr_addr1, base + r[i].dwr_addr2, depth, inlined, name);
                        else if (r[i].dwr_type == DW_RANGES_ADDRESS_SELECTION)
                            base = r[i].dwr_addr2;
                    }
                    dwarf_ranges_dealloc(t->dbg, r, n);
                }
            }
        }
    }
    dwarf_dealloc(t->dbg, attr, DW_DLA_ATTR);
}

/* Walks the DIE tree below die, recording functions and inlined calls. */
static void walk(struct tables *t, Dwarf_Die die, struct cu *c, uint32_t depth, uint32_t fdepth, uint64_t cu_base,
                 size_t *budget)
{
    Dwarf_Error derr = NULL;
    Dwarf_Die child = NULL, next = NULL;

    if (depth > MAX_DIE_DEPTH || dwarf_child(die, &child, &derr) != DW_DLV_OK)
        return;
    while (child && (*budget)-- > 0) {
        Dwarf_Half tag = 0;
        uint32_t inner = fdepth;
        if (dwarf_tag(child, &tag, &derr) == DW_DLV_OK &&
            (tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine)) {
            char name[512];
            if (die_name(t->dbg, child, name, sizeof(name), 0) == 0)
                die_ranges(t, child, c, fdepth, tag == DW_TAG_inlined_subroutine, name, cu_base);
            inner = fdepth + 1;
        }
        if (tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block)
            walk(t, child, c, depth + 1, inner, cu_base, budget);
        next = NULL;
        if (dwarf_siblingof_b(t->dbg, child, 1, &next, &derr) != DW_DLV_OK)
            next = NULL;
        dwarf_dealloc(t->dbg, child, DW_DLA_DIE);
        child = next;
    }
    if (child)
        dwarf_dealloc(t->dbg, child, DW_DLA_DIE);
}

/* Parses the CU whose DIE lies at offset (once). */
static struct cu *cu_at(struct tables *t, uint64_t offset)
{
    Dwarf_Error derr = NULL;
    Dwarf_Die die = NULL;
    Dwarf_Addr base = 0;
    struct cu *c, *grown;
    size_t i, budget = MAX_DIES_PER_CU;

    for (i = 0; i < t->ncus; i++)
        if (t->cus[i].offset == offset)
            return &t->cus[i];
    if (t->ncus >= MAX_CUS_PARSED)
        return NULL;
    grown = realloc(t->cus, (t->ncus + 1) * sizeof(*t->cus));
    if (!grown)
        return NULL;
    t->cus = grown;
    c = &t->cus[t->ncus++];
    memset(c, 0, sizeof(*c));
    c->offset = offset;
    if (dwarf_offdie_b(t->dbg, offset, 1, &die, &derr) != DW_DLV_OK)
        return c;
    read_cu_lines(t, die, c);
    dwarf_lowpc(die, &base, &derr);
    walk(t, die, c, 0, 0, base, &budget);
    dwarf_dealloc(t->dbg, die, DW_DLA_DIE);
    return c;
}

/* Without .debug_aranges: every CU, once. */
static void parse_all_cus(struct tables *t)
{
    Dwarf_Error derr = NULL;

    t->all_parsed = 1;
    for (;;) {
        Dwarf_Unsigned hlen = 0, abbrev = 0, next = 0;
        Dwarf_Half version = 0, asize = 0, lsize = 0, esize = 0, cutype = 0;
        Dwarf_Sig8 sig;
        Dwarf_Off typeoffset = 0, off = 0;
        Dwarf_Die die = NULL;
        if (dwarf_next_cu_header_d(t->dbg, 1, &hlen, &version, &abbrev, &asize, &lsize, &esize, &sig, &typeoffset,
                                   &next, &cutype, &derr) != DW_DLV_OK)
            break;
        if (dwarf_siblingof_b(t->dbg, NULL, 1, &die, &derr) != DW_DLV_OK)
            continue;
        if (dwarf_dieoffset(die, &off, &derr) == DW_DLV_OK)
            cu_at(t, off);
        dwarf_dealloc(t->dbg, die, DW_DLA_DIE);
        if (t->ncus >= MAX_CUS_PARSED)
            break;
    }
}

/* Opens path's DWARF (NULL dbg when it has none). */
static void open_dwarf(struct tables *t, const char *path)
{
    Dwarf_Error derr = NULL;

    t->dwarf_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (t->dwarf_fd < 0)
        return;
    if (dwarf_init_b(t->dwarf_fd, DW_DLC_READ, DW_GROUPNUMBER_ANY, NULL, NULL, &t->dbg, &derr) != DW_DLV_OK) {
        if (derr)
            dwarf_dealloc(NULL, derr, DW_DLA_ERROR);
        t->dbg = NULL;
        close(t->dwarf_fd);
        t->dwarf_fd = -1;
        return;
    }
    if (dwarf_get_aranges(t->dbg, &t->aranges, &t->naranges, &derr) != DW_DLV_OK) {
        t->aranges = NULL;
        t->naranges = 0;
        parse_all_cus(t);
    }
}

/* The separate debug file of f (/usr/lib/debug/.build-id/xx/yyyy.debug, under --sysroot), or NULL. */
static char *debug_file(struct ms_core *core, struct ms_elf_file *f)
{
    const struct ms_core_paths *p = ms_core_get_paths(core);
    const uint8_t *id = NULL;
    size_t n = ms_elf_file_build_id(f, &id), i;
    char hex[2 * 64 + 1], *path = NULL;
    struct stat st;

    if (n < 2)
        return NULL;
    for (i = 0; i < n; i++)
        sprintf(hex + 2 * i, "%02x", id[i]);
    if (asprintf(&path, "%s/usr/lib/debug/.build-id/%.2s/%s.debug", p->sysroot ? p->sysroot : "", hex, hex + 2) < 0)
        return NULL;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        free(path);
        return NULL;
    }
    return path;
}

static struct tables *tables_of(struct ms_core *core, struct ms_elf_file *f)
{
    void **slot = ms_elf_file_symbols_slot(f);
    struct tables *t = *slot;
    char *debug;

    if (t)
        return t;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->dwarf_fd = -1;
    debug = debug_file(core, f);
    if (debug) { /* its .symtab has the local functions the stripped file lacks */
        int fd = open(debug, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 64) {
            t->debug_size = (size_t)st.st_size;
            t->debug_map = mmap(NULL, t->debug_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
            if (t->debug_map == MAP_FAILED)
                t->debug_map = NULL;
            else if (memcmp(t->debug_map, "\177ELF", 4) == 0 && t->debug_map[4] == 2 && t->debug_map[5] == 1)
                t->debug_elf = elf_memory((char *)t->debug_map, t->debug_size);
        }
        if (fd >= 0)
            close(fd);
    }
    if (t->debug_elf)
        read_funcs(t->debug_elf, SHT_SYMTAB, t);
    if (t->nfuncs == 0)
        read_funcs(ms_elf_file_elf(f), SHT_SYMTAB, t);
    if (t->nfuncs == 0)
        read_funcs(ms_elf_file_elf(f), SHT_DYNSYM, t);
    if (t->nfuncs)
        qsort(t->funcs, t->nfuncs, sizeof(*t->funcs), func_cmp);
    open_dwarf(t, t->debug_elf ? debug : ms_elf_file_path(f));
    free(debug);
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
    /* Among the symbols at the greatest address at or below a, the first (sized, then by name). */
    if (lo == 0)
        return NULL;
    {
        uint64_t at = t->funcs[lo - 1].addr;
        while (lo > 1 && t->funcs[lo - 2].addr == at)
            lo--;
        if (t->funcs[lo - 1].size && a >= at + t->funcs[lo - 1].size)
            return NULL;
        return t->funcs[lo - 1].name;
    }
}

static const struct line_row *line_at(const struct cu *c, uint64_t a)
{
    size_t lo = 0, hi = c->nrows;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->rows[mid].addr <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || lo == c->nrows)
        return NULL; /* before the first row, or after the last (which always ends a sequence) */
    if (c->rows[lo - 1].file == UINT32_MAX)
        return NULL;
    return &c->rows[lo - 1];
}

/* The innermost scope holding a. */
static const struct scope *scope_at(const struct cu *c, uint64_t a)
{
    const struct scope *best = NULL;
    size_t i;

    for (i = 0; i < c->nscopes; i++) {
        const struct scope *s = &c->scopes[i];
        if (a >= s->lo && a < s->hi && (!best || s->depth > best->depth))
            best = s;
    }
    return best;
}

/* The CU holding a, parsed; NULL when the DWARF does not cover it. */
static const struct cu *cu_for(struct tables *t, uint64_t a)
{
    size_t i;

    if (!t->dbg)
        return NULL;
    if (t->aranges) {
        Dwarf_Arange ar = NULL;
        Dwarf_Off off = 0;
        Dwarf_Error derr = NULL;
        if (dwarf_get_arange(t->aranges, (Dwarf_Unsigned)t->naranges, a, &ar, &derr) != DW_DLV_OK ||
            dwarf_get_cu_die_offset(ar, &off, &derr) != DW_DLV_OK)
            return NULL;
        return cu_at(t, off);
    }
    for (i = 0; i < t->ncus; i++)
        if (line_at(&t->cus[i], a) || scope_at(&t->cus[i], a))
            return &t->cus[i];
    return NULL;
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

/* name without "@VERSION" / "@@VERSION" (a copy kept until the symbolizer is freed when needed). */
static const char *unversioned(struct ms_symbolizer *s, const char *name)
{
    const char *at = name ? strchr(name, '@') : NULL;
    char *plain, *copy = NULL;

    if (at && at != name)
        name = copy = strndup(name, (size_t)(at - name));
    plain = demangle(name);
    if (plain) {
        free(copy);
        return keep_name(s, plain);
    }
    return copy ? keep_name(s, copy) : name;
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
        out[i].module = ms_core_module_name(s->core, m->path);
        f = ms_core_file(s->core, m, NULL);
        base = f ? ms_elf_file_bias(f) : m->start - m->offset;
        if (f && ms_elf_file_elf(f))
            t = tables_of(s->core, f);
        else if (!s->warning.message[0])
            ms_core_file(s->core, m, &s->warning);
        if (t) {
            const struct cu *c = cu_for(t, look - base);
            const struct line_row *row = c ? line_at(c, look - base) : NULL;
            const struct scope *sc = c ? scope_at(c, look - base) : NULL;
            /* Named as GDB and addr2line name it: the innermost function in the DWARF (an inlined
             * call by the inlined function), else the ELF symbol without its @VERSION. */
            out[i].function = sc ? sc->name : unversioned(s, func_at(t, look - base));
            if (row && row->file < t->nfiles) {
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

void ms_symbolizer_set_alloc_fns(struct ms_symbolizer *s, const char *const *names)
{
    s->engine.alloc_fns = names && names[0] ? names : NULL;
}

const struct memscope_symbolizer *ms_symbolizer_engine(struct ms_symbolizer *s)
{
    return &s->engine;
}

const char *ms_symbolizer_warning(const struct ms_symbolizer *s)
{
    return s->warning.message[0] ? s->warning.message : NULL;
}

void ms_symbolizer_free(struct ms_symbolizer *s)
{
    size_t i;

    if (!s)
        return;
    for (i = 0; i < s->nnames; i++)
        free(s->names[i]);
    free(s->names);
    ms_core_close(s->owned_core); /* after the names: they may point into its files' tables */
    free(s);
}

int ms_symbolizer_for_modules(const char *name, const struct memscope_modules *set, struct ms_symbolizer **out)
{
    const struct memscope_module *mods;
    struct ms_core *core;
    size_t n;

    *out = NULL;
    mods = memscope_modules_list(set, &n);
    if (n == 0)
        return 0;
    if (ms_core_open_modules(name, mods, n, NULL, &core, NULL) != 0)
        return -ENOMEM;
    if (ms_symbolizer_new(core, out) != 0) {
        ms_core_close(core);
        return -ENOMEM;
    }
    (*out)->owned_core = core;
    return 0;
}
