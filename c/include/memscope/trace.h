/*
 * trace.h - engine calls for trace files (the format: trace_abi.h).
 *
 * A trace holds a store's whole event history on disk. memscope_trace_open
 * reads one into a history, the same object memscope_history_open makes from
 * a live store, so every engine query (snapshots at any point, diffs,
 * timelines, blocks) works on it unchanged. memscope_history_write_trace
 * writes a history (from a live process, a core, an exit image or a trace)
 * as a trace file. Part of the engine library (engine.h); 0 or -errno.
 */
#ifndef MEMSCOPE_TRACE_H
#define MEMSCOPE_TRACE_H

#include <stdint.h>

#include "memscope/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* memscope_trace_open flags */
#define MEMSCOPE_TRACE_STRICT 0x1u /* a damaged or missing block fails the open (default: skip it, say so in info) */

/* What reading a trace found. */
struct memscope_trace_info {
    uint64_t file_bytes;      /* size of the file */
    uint64_t blocks;          /* blocks read and used */
    uint64_t blocks_skipped;  /* blocks skipped as damaged (payload checksum, undecodable, out of order) */
    uint64_t events;          /* records read */
    uint64_t truncated_bytes; /* bytes after the last whole block: a write cut short (e.g. SIGKILL) */
    uint32_t version;         /* trace format version */
    uint32_t complete;        /* 1 when the writer finished (a final STATE block was read), else 0 */
    char warning[256];        /* the first problem met, one sentence; "" when none */
};

/*
 * Reads the trace file at path into a history. Damaged blocks are skipped
 * (or fail the open with MEMSCOPE_TRACE_STRICT) and counted in *info (may
 * be NULL); a file cut short is read up to its last whole block. Errors,
 * with a sentence in err (may be NULL):
 *   -ENOENT and other errno values of open(2): the file cannot be opened
 *   -EBADMSG  not a trace (magic), a damaged header, or damage in strict mode
 *   -EPROTO   a trace format version this engine does not know
 *   -ENOMEM   the host ran out of memory
 */
int memscope_trace_open(const char *path, unsigned flags, struct memscope_history **out,
                        struct memscope_trace_info *info, struct memscope_error *err);

/*
 * Writes every event of history to a new trace file at path (replaced if it
 * exists), with its threads, label and mark texts and counters; times are
 * written as ns since recording began. Returns 0, -EINVAL, -ENOMEM, or the
 * errno of a failed open/write (err says which).
 */
int memscope_history_write_trace(const struct memscope_history *history, const char *path,
                                 struct memscope_error *err);

/* ---- The mappings of a recorded process (modules.c) ---- */

/* One file mapping of a recorded process, as a trace or an exit image recorded it. */
struct memscope_module {
    uint64_t start;           /* first address */
    uint64_t end;             /* past the last */
    uint64_t offset;          /* file offset of start */
    const char *path;         /* the path the process mapped */
    uint8_t build_id[20];     /* the file's GNU build-id as the process had it (first build_id_len bytes) */
    uint32_t build_id_len;    /* 0: unknown */
};

struct memscope_modules;

/*
 * Adds the entries of a MODULES payload (trace_abi.h) to *set, made on
 * first use (free with memscope_modules_free); they replace the earlier
 * entries they overlap. Returns 0, -EBADMSG (a damaged payload: err says
 * why, the set unchanged) or -ENOMEM.
 */
int memscope_modules_add(struct memscope_modules **set, const void *payload, size_t len,
                         struct memscope_error *err);
/* The entries, by address; NULL and 0 for an empty or NULL set. */
const struct memscope_module *memscope_modules_list(const struct memscope_modules *set, size_t *n);
void memscope_modules_free(struct memscope_modules *set);

/* The mappings a trace recorded (its MODULES blocks) or were added, or NULL: none. */
const struct memscope_modules *memscope_trace_modules(const struct memscope_history *history);

/*
 * Adds a MODULES payload to the mappings history keeps (GDB adds the
 * process's, so memscope-save writes them and report names frames).
 * memscope_history_write_trace writes them as MODULES blocks. Returns as
 * memscope_modules_add, or -EINVAL.
 */
int memscope_history_add_modules(struct memscope_history *history, const void *payload, size_t len,
                                 struct memscope_error *err);

#ifdef __cplusplus
}
#endif

#endif /* MEMSCOPE_TRACE_H */
