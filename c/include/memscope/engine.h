/*
 * engine.h - the memscope snapshot engine: read an event store out of any
 * memory, replay it, and answer questions about the heap at any point.
 *
 * One engine serves every front end. Each feeds it a memory source: the
 * program itself (memscope_snapshot_take), GDB (a live process or a core,
 * through ctypes), the memscope command (an exit image, a core file). The
 * engine validates everything it reads and never trusts a count or pointer.
 *
 * Built into libmemscope.so (for the in-process API), into
 * libmemscope-engine.so (for GDB's ctypes bridge; it interposes nothing) and
 * into the memscope command. All calls return 0 or a negative errno value.
 */
#ifndef MEMSCOPE_ENGINE_H
#define MEMSCOPE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "memscope/memscope.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * How the engine reads the recorded process's memory. read copies len bytes
 * from address addr into buf and returns 0, or a negative errno (-EFAULT
 * when any byte is not readable). The engine asks for at most 4 MiB per call.
 */
struct memscope_source {
    int (*read)(void *ctx, uint64_t addr, void *buf, size_t len);
    void *ctx;
};

/* Why an open failed, as one sentence ("chunk 3 at 0x7f...: count 900 exceeds capacity 512"). */
struct memscope_error {
    char message[256];
};

struct memscope_history; /* a store read into the engine: all its events, in replay order */

/*
 * Reads and validates the store whose root lies at root_addr in src, and
 * sorts its events into replay order. On failure returns a negative errno
 * and, when err is not NULL, a sentence in err:
 *   -ENOENT   no store root at that address (magic does not match)
 *   -EPROTO   an ABI version this engine does not know (the message names it)
 *   -EBADMSG  a damaged store (the message names the part and the figure)
 *   -EFAULT   memory the store points to cannot be read
 *   -ENOMEM   the host ran out of memory
 */
int memscope_history_open(const struct memscope_source *src, uint64_t root_addr,
                          struct memscope_history **out, struct memscope_error *err);

/* Frees a history (NULL is a no-op). Snapshots built from it stay valid. */
void memscope_history_close(struct memscope_history *history);

/* Facts about a history, for front ends. */
struct memscope_history_info {
    uint64_t events;          /* events in replay order (alloc, free, realloc, label, mark) */
    uint64_t first_time_ns;   /* time of the earliest event, ns since recording began */
    uint64_t last_time_ns;    /* time of the latest event */
    uint64_t dropped_events;  /* events the runtime could not record */
    uint64_t chunk_bytes;     /* store memory mapped for events */
    uint64_t budget_bytes;    /* the store's budget */
    uint64_t marks;           /* named marks recorded */
    uint32_t pid;             /* process id the store belongs to */
    uint32_t threads;         /* threads that recorded events */
    uint32_t abi_version;     /* store ABI version */
};
int memscope_history_info(const struct memscope_history *history, struct memscope_history_info *out);

/* Where in the history a snapshot is taken. */
enum memscope_point_kind {
    MEMSCOPE_AT_END = 0,   /* after every recorded event ("now") */
    MEMSCOPE_AT_TIME = 1,  /* after every event at or before value ns since recording began */
    MEMSCOPE_AT_EVENT = 2, /* after the first value events in replay order (0: empty heap) */
    MEMSCOPE_AT_MARK = 3,  /* right after the first mark named mark */
    MEMSCOPE_AT_PEAK = 4,  /* the instant live bytes first reached their highest value */
};

struct memscope_point {
    enum memscope_point_kind kind;
    uint64_t value;   /* ns for MEMSCOPE_AT_TIME, event count for MEMSCOPE_AT_EVENT */
    const char *mark; /* mark name for MEMSCOPE_AT_MARK */
};

/*
 * Replays the history up to a point and returns the snapshot there. A NULL
 * point means MEMSCOPE_AT_END. Returns 0, -EINVAL, -ENOMEM, -ENOENT (no such
 * mark) or -ERANGE (a time or event past the end of the history).
 */
int memscope_history_snapshot(const struct memscope_history *history, const struct memscope_point *at,
                              struct memscope_snapshot **out);

/* What the text renderer prints (bits of memscope_render_options.sections; 0 means all). */
#define MEMSCOPE_SECTION_SUMMARY 0x1u /* the summary figures */
#define MEMSCOPE_SECTION_THREADS 0x2u /* the per-thread table */
#define MEMSCOPE_SECTION_BLOCKS 0x4u  /* the largest live blocks, or groups of them */

/* How live blocks are grouped in the blocks section. */
enum memscope_group_by {
    MEMSCOPE_GROUP_NONE = 0,       /* one row per block */
    MEMSCOPE_GROUP_THREAD = 1,     /* one row per allocating thread */
    MEMSCOPE_GROUP_LABEL = 2,      /* one row per label (variable and type); unlabeled blocks together */
    MEMSCOPE_GROUP_SIZE_CLASS = 3, /* one row per power-of-two size class (0-16, 17-32, 33-64, ...) */
};

/* How rows of the blocks section are ordered. */
enum memscope_sort_by {
    MEMSCOPE_SORT_SIZE = 0,    /* bytes, largest first (ties: lower address / name first) */
    MEMSCOPE_SORT_COUNT = 1,   /* blocks in the group, most first (groups only; blocks: as SIZE) */
    MEMSCOPE_SORT_TIME = 2,    /* allocation time, newest first (blocks), or newest block (groups) */
    MEMSCOPE_SORT_ADDRESS = 3, /* address, ascending (blocks only; groups: as SIZE) */
};

/* Options for the text and JSON renderers. Zero-initialised means defaults. */
struct memscope_render_options {
    unsigned top;                   /* rows in the blocks section (0: 10); the JSON lists every block regardless */
    unsigned sections;              /* MEMSCOPE_SECTION_* bits for text (0: all) */
    enum memscope_group_by group_by;/* grouping of the blocks section */
    enum memscope_sort_by sort_by;  /* order of the blocks section */
    int color;                      /* non-zero: ANSI colour in text */
    int exact_bytes;                /* non-zero: exact byte counts beside human sizes */
};

/*
 * Renders a snapshot as text (summary, per-thread table, largest live blocks)
 * or as JSON (the schema in docs/snapshot-json.md; every live block). On
 * success *out is a NUL-terminated string of *len bytes to release with
 * memscope_text_free.
 */
int memscope_snapshot_render_text(const struct memscope_snapshot *snapshot, const struct memscope_render_options *opts,
                                  char **out, size_t *len);
int memscope_snapshot_render_json(const struct memscope_snapshot *snapshot, const struct memscope_render_options *opts,
                                  char **out, size_t *len);
void memscope_text_free(char *text);

/*
 * The live block that holds address addr (start or interior). Returns 0 and
 * fills out (strings valid while the snapshot lives), or -ENOENT.
 */
int memscope_snapshot_find_block(const struct memscope_snapshot *snapshot, uint64_t addr,
                                 struct memscope_allocation *out);

/*
 * Renders what is known of the block holding addr at the snapshot's point:
 * whether addr lies in a live block (and where in it), the block's record
 * (address, size, thread, time, label), and the history of that block's
 * address in the store up to the snapshot point (allocated, reallocated,
 * freed, labeled, with times and threads). When no live block holds addr,
 * says so and shows the history of addr itself if it has any. Returns 0 with
 * text as for memscope_snapshot_render_text, -EINVAL or -ENOMEM.
 */
int memscope_history_render_block(const struct memscope_history *history, const struct memscope_snapshot *snapshot,
                                  uint64_t addr, const struct memscope_render_options *opts, char **out, size_t *len);

/*
 * A memory source over an exit image file (store_abi.h). Returns 0, -ENOENT,
 * -EBADMSG (not an image, or damaged: err says which), -EPROTO (unknown
 * version). *root_addr receives the store root's address.
 */
struct memscope_image;
int memscope_image_open(const char *path, struct memscope_image **out, struct memscope_source *src,
                        uint64_t *root_addr, struct memscope_error *err);
void memscope_image_close(struct memscope_image *image);

#ifdef __cplusplus
}
#endif

#endif /* MEMSCOPE_ENGINE_H */
