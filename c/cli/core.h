/*
 * core.h - reading an ELF core file for `memscope inspect`: the core's
 * memory as an engine memory source (core_source.c), the files the process
 * had mapped (NT_FILE) with build-id checks and path overrides
 * (core_files.c), the store's root by symbol or by magic scan, a
 * symbolizer for the engine (symbolize.c) and a progress bar (progress.c).
 *
 * Private to c/cli. Nothing here trusts the core: every offset, count and
 * length is checked against the file's size before use, and every
 * allocation is bounded by it.
 */
#ifndef MS_CORE_H
#define MS_CORE_H

#include <libelf.h>
#include <stddef.h>
#include <stdint.h>

#include "memscope/engine.h"
#include "memscope/trace.h"

/* Where to look for the files a core names. */
struct ms_core_paths {
    const char *exe;           /* the program's file (--exe), or NULL: the path the core names */
    const char **lib_path;     /* directories searched by base name (--lib-path), in order */
    size_t nlib_path;          /* entries in lib_path */
    const char *sysroot;       /* prefix of every path the core names (--sysroot), or NULL */
    int no_files;              /* non-zero: open no file at all (the fuzz target) */
};

/* One file mapping the core records (NT_FILE), by address. */
struct ms_core_map {
    uint64_t start;      /* first address */
    uint64_t end;        /* past the last */
    uint64_t offset;     /* file offset of start, bytes */
    const char *path;    /* the path the process mapped (in the core's own note copy) */
    const uint8_t *build_id; /* the file's build-id as a recording kept it (ms_core_open_modules), else NULL */
    size_t build_id_len;     /* its bytes */
};

struct ms_core;
struct ms_elf_file;
struct ms_progress;

/* Why something failed: one sentence, without "memscope: ". */
struct ms_core_error {
    char message[512];
};

/*
 * Opens the core at path (mapped read-only) or over a buffer the caller
 * keeps alive (ms_core_open_memory; used by the fuzz target). Checks it is a
 * 64-bit little-endian x86-64 ELF core, indexes its PT_LOAD segments and
 * reads its NT_FILE and NT_AUXV notes. Returns 0, or -errno with a sentence
 * in err (the file name first).
 */
int ms_core_open(const char *path, const struct ms_core_paths *paths, struct ms_core **out, struct ms_core_error *err);
int ms_core_open_memory(const void *data, size_t size, const char *name, const struct ms_core_paths *paths,
                        struct ms_core **out, struct ms_core_error *err);
void ms_core_close(struct ms_core *core);

/*
 * A core with no memory, only the file mappings a recording kept (a trace's
 * MODULES blocks, an exit image's FILE.modules), so a symbolizer can name
 * return addresses from the files on disk: a file whose build-id differs
 * from the one recorded is refused as for a core. name (the recording's
 * path) is kept for messages. Returns 0 or -ENOMEM.
 */
int ms_core_open_modules(const char *name, const struct memscope_module *mods, size_t n,
                         const struct ms_core_paths *paths, struct ms_core **out, struct ms_core_error *err);

/* "core", or "recording" for ms_core_open_modules: what messages say the files must match. */
const char *ms_core_kind(const struct ms_core *core);

/* The core's memory as an engine source (valid while the core is open). */
void ms_core_source(struct ms_core *core, struct memscope_source *src);

/* Makes reads through the source update p (NULL: none). */
void ms_core_set_progress(struct ms_core *core, struct ms_progress *p);

/* The program's own mapping (the one holding AT_ENTRY, at file offset 0), or NULL. */
const struct ms_core_map *ms_core_exe_map(const struct ms_core *core);

/* Bytes the engine has read through the source so far (for the progress bar). */
uint64_t ms_core_bytes_read(const struct ms_core *core);

/* Facts for messages and the progress bar. */
const char *ms_core_name(const struct ms_core *core);
uint64_t ms_core_size(const struct ms_core *core);
uint64_t ms_core_writable_bytes(const struct ms_core *core);

/* The file mappings (NT_FILE), sorted by address; NULL / 0 when the core has none. */
const struct ms_core_map *ms_core_maps(const struct ms_core *core, size_t *n);

/*
 * The name the dynamic linker gave the object recorded as `recorded` (its
 * link map's l_name, as GDB shows it), or recorded itself.
 */
const char *ms_core_module_name(struct ms_core *core, const char *recorded);

/* The mapping holding addr, or NULL. */
const struct ms_core_map *ms_core_map_at(const struct ms_core *core, uint64_t addr);

/*
 * Finds the memscope store and opens it with the engine: by the symbol
 * memscope_store_root in a mapped libmemscope (or the program) plus its
 * load bias, else by scanning the core's writable segments for the magic.
 * *how receives "symbol memscope_store_root" or "magic scan". Returns 0,
 * or -errno with one sentence in err.
 */
int ms_core_open_store(struct ms_core *core, struct memscope_history **out, const char **how,
                       struct ms_core_error *err);

/*
 * Checks every ELF file the core maps (at offset 0, where the core holds its
 * header) against the file found for it: returns -EBADMSG with a sentence
 * naming the first one whose build-id differs, else 0 (missing files are
 * not an error here: frames in them show module+offset).
 */
int ms_core_check_files(struct ms_core *core, struct ms_core_error *err);

/* ---- core_files.c: the files a core names ---- */

/*
 * The file holding mapping m, opened, checked (ELF, and the build-id the
 * core holds for it, when it holds one) and cached. Returns it, or NULL
 * with a sentence in err naming the file (missing, not ELF, mismatched).
 */
struct ms_elf_file *ms_core_file(struct ms_core *core, const struct ms_core_map *m, struct ms_core_error *err);

/* libelf over the file, or NULL for a data file (not ELF). */
Elf *ms_elf_file_elf(const struct ms_elf_file *f);

/* Where the file was found (after overrides). */
const char *ms_elf_file_path(const struct ms_elf_file *f);

/* Its load bias in the process: runtime address = file address + bias. */
uint64_t ms_elf_file_bias(const struct ms_elf_file *f);

/*
 * Looks a symbol up by name in .symtab, then .dynsym. Returns 0 and its
 * file address in *value, or -ENOENT.
 */
int ms_elf_file_lookup(struct ms_elf_file *f, const char *name, uint64_t *value);

/* Reads len bytes at file offset off. Returns 0 or -EFAULT (outside the file). */
int ms_elf_file_read(const struct ms_elf_file *f, uint64_t off, void *buf, size_t len);

/* Internal to the core files: frees every file opened for a core. */
void ms_core_files_close(struct ms_core *core);

/* The mapped data of an opened file (for symbolize.c), NULL when none. */
const uint8_t *ms_elf_file_data(const struct ms_elf_file *f, size_t *size);

/* The file's GNU build-id (*id valid while the file is open); 0: none. */
size_t ms_elf_file_build_id(const struct ms_elf_file *f, const uint8_t **id);

/* Per-file slot the symbolizer keeps its tables in. */
void **ms_elf_file_symbols_slot(struct ms_elf_file *f);

/* Parses an NT_FILE note's descriptor into maps (sorted). Returns 0 or -EBADMSG with err. */
int ms_core_parse_nt_file(const uint8_t *desc, size_t size, struct ms_core_map **maps, size_t *n, char **strings,
                          struct ms_core_error *err);

/* Reads core memory only (never a file): 0 or -EFAULT. */
int ms_core_read_dumped(const struct ms_core *core, uint64_t addr, void *buf, size_t len);

const struct ms_core_paths *ms_core_get_paths(const struct ms_core *core);
struct ms_elf_file **ms_core_files_slot(struct ms_core *core);

/* ---- symbolize.c ---- */

struct ms_symbolizer;

/* A symbolizer for the engine over the core's mappings (ELF symbols, DWARF lines). */
int ms_symbolizer_new(struct ms_core *core, struct ms_symbolizer **out);
/*
 * A symbolizer over the mappings a recording kept (a trace's, an exit
 * image's), owning a memory-less core (ms_core_open_modules). *out NULL
 * when set holds none (addresses stay addresses). Returns 0 or -ENOMEM.
 */
int ms_symbolizer_for_modules(const char *name, const struct memscope_modules *set, struct ms_symbolizer **out);
/* The program's allocation wrappers (--alloc-fn), NULL-ended, kept by pointer: hidden like malloc. */
void ms_symbolizer_set_alloc_fns(struct ms_symbolizer *s, const char *const *names);
const struct memscope_symbolizer *ms_symbolizer_engine(struct ms_symbolizer *s);
void ms_symbolizer_free(struct ms_symbolizer *s);
/* Why a file the frames needed could not be read (the first one), or NULL. */
const char *ms_symbolizer_warning(const struct ms_symbolizer *s);
/* Called by core_files.c when a file closes: frees the symbolizer's tables in its slot. */
void ms_symbols_free(void *tables);

/* ---- progress.c ---- */

struct ms_progress;
/* A bar on stderr when it is a terminal (else NULL: every call is a no-op). */
struct ms_progress *ms_progress_start(const char *what, uint64_t total);
void ms_progress_update(struct ms_progress *p, uint64_t done);
void ms_progress_end(struct ms_progress *p);

#endif /* MS_CORE_H */
