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
    uint64_t marks;           /* named marks recorded, those folded into the checkpoint included */
    uint32_t pid;             /* process id the store belongs to */
    uint32_t threads;         /* threads that recorded events */
    uint32_t abi_version;     /* store ABI version */
    uint64_t horizon_ns;      /* the checkpoint horizon: points before it were folded away (0: nothing folded) */
    uint64_t folded_events;   /* events folded into the checkpoint (not counted in events) */
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
    MEMSCOPE_GROUP_STACK = 4,      /* one row per call stack id (stacks.c) */
    MEMSCOPE_GROUP_SITE = 5,       /* one row per allocation site: the first frame that is not the allocator's */
};

/* How rows of the blocks section are ordered. */
enum memscope_sort_by {
    MEMSCOPE_SORT_SIZE = 0,    /* bytes, largest first (ties: lower address / name first) */
    MEMSCOPE_SORT_COUNT = 1,   /* blocks in the group, most first (groups only; blocks: as SIZE) */
    MEMSCOPE_SORT_TIME = 2,    /* allocation time, newest first (blocks), or newest block (groups) */
    MEMSCOPE_SORT_ADDRESS = 3, /* address, ascending (blocks only; groups: as SIZE) */
};

struct memscope_symbolizer;

/* Options for the text and JSON renderers. Zero-initialised means defaults. */
struct memscope_render_options {
    unsigned top;                   /* rows in the blocks section (0: 10); the JSON lists every block regardless */
    unsigned sections;              /* MEMSCOPE_SECTION_* bits for text (0: all) */
    enum memscope_group_by group_by;/* grouping of the blocks section */
    enum memscope_sort_by sort_by;  /* order of the blocks section */
    int color;                      /* non-zero: ANSI colour in text */
    int exact_bytes;                /* non-zero: exact byte counts beside human sizes */
    const struct memscope_symbolizer *symbolizer; /* names frames of call stacks; NULL: addresses only */
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

/* ---- Time: diffs and timelines (diff.c, timeline.c) ---- */

/* A point once located in the history. */
struct memscope_point_info {
    uint64_t events;  /* events replayed to reach it: the snapshot there is MEMSCOPE_AT_EVENT events */
    uint64_t time_ns; /* its time, ns since recording began */
};

/*
 * Locates a point, checking it lies within the recorded history. Returns 0,
 * or with a sentence in err (when not NULL): -ERANGE for a time before the
 * first recorded event or after the last, or an event count past the end;
 * -ENOENT for a mark the store does not hold; -ENODATA for a peak or time in
 * a history with no events; -EINVAL, -ENOMEM. MEMSCOPE_AT_EVENT 0 (the start,
 * nothing replayed) is within the history.
 */
int memscope_history_locate(const struct memscope_history *history, const struct memscope_point *at,
                            struct memscope_point_info *out, struct memscope_error *err);

/* What changed between two points A and B of a history (A not after B). */
struct memscope_diff;

struct memscope_diff_stats {
    struct memscope_point_info from;   /* A */
    struct memscope_point_info to;     /* B */
    uint64_t allocated_blocks;         /* blocks allocated after A and still live at B */
    uint64_t allocated_bytes;          /* their bytes */
    uint64_t freed_blocks;             /* blocks live at A and released by B */
    uint64_t freed_bytes;              /* their bytes */
    uint64_t from_live_blocks;         /* live blocks at A */
    uint64_t from_live_bytes;          /* live bytes at A */
    uint64_t to_live_blocks;           /* live blocks at B */
    uint64_t to_live_bytes;            /* live bytes at B */
    int64_t net_bytes;                 /* to_live_bytes - from_live_bytes (= allocated_bytes - freed_bytes) */
    int64_t net_blocks;                /* to_live_blocks - from_live_blocks */
    uint64_t allocations_between;      /* every block allocated between A and B, freed again or not */
    uint64_t deallocations_between;    /* every release between A and B */
};

/* The two lists of a diff. A block reallocated in place counts in both. */
enum memscope_diff_side {
    MEMSCOPE_DIFF_ALLOCATED = 0, /* allocated after A, live at B */
    MEMSCOPE_DIFF_FREED = 1,     /* live at A, released by B */
};

/*
 * Replays the history to A and to B (exact) and compares the live sets: a
 * block is the same at both points when its address and allocation time
 * are. Returns 0; the errors of memscope_history_locate (err names the
 * point: "A: ..."), or -EINVAL when A lies after B.
 */
int memscope_history_diff(const struct memscope_history *history, const struct memscope_point *a,
                          const struct memscope_point *b, struct memscope_diff **out, struct memscope_error *err);
int memscope_diff_stats(const struct memscope_diff *diff, struct memscope_diff_stats *out);
/* Calls fn for each block of one side, in address order (as memscope_snapshot_foreach). */
int memscope_diff_foreach(const struct memscope_diff *diff, enum memscope_diff_side side,
                          int (*fn)(const struct memscope_allocation *block, void *arg), void *arg);
/*
 * Renders a diff: the two points, the figures, then each side grouped by
 * opts->group_by (NONE: one row per block) with bytes and counts per group,
 * largest first, opts->top rows per side (0: 10). JSON: every group and, per
 * side, every block (docs/time.md, schema memscope-diff/1).
 */
int memscope_diff_render_text(const struct memscope_diff *diff, const struct memscope_render_options *opts,
                              char **out, size_t *len);
int memscope_diff_render_json(const struct memscope_diff *diff, const struct memscope_render_options *opts,
                              char **out, size_t *len);
void memscope_diff_free(struct memscope_diff *diff);

/* Live bytes over the whole history, sampled into buckets of equal time. */
struct memscope_timeline;

struct memscope_timeline_info {
    uint64_t buckets;        /* buckets (the chart's columns) */
    uint64_t events;         /* events replayed */
    uint64_t first_time_ns;  /* time of the first event: the start of bucket 0 */
    uint64_t last_time_ns;   /* time of the last event: the end of the last bucket */
    uint64_t peak_bytes;     /* the exact peak of live bytes (as a snapshot's peak_memory) */
    uint64_t peak_time_ns;   /* when it was first reached */
    uint64_t peak_events;    /* events replayed at that instant (MEMSCOPE_AT_EVENT of the peak) */
    uint64_t peak_bucket;    /* the bucket holding it (its max_bytes is peak_bytes) */
    uint64_t end_bytes;      /* live bytes after the last event */
    uint64_t marks;          /* marks recorded */
    uint32_t pid;            /* process id of the store */
};

struct memscope_timeline_bucket {
    uint64_t start_ns;      /* first instant of the bucket */
    uint64_t end_ns;        /* last instant (inclusive) */
    uint64_t max_bytes;     /* most live bytes at any instant in it (the level it starts at included) */
    uint64_t min_bytes;     /* least live bytes at any instant in it */
    uint64_t end_bytes;     /* live bytes at its end */
    uint64_t allocations;   /* blocks allocated in it */
    uint64_t deallocations; /* blocks released in it */
    uint64_t events;        /* events in it */
};

struct memscope_timeline_mark {
    const char *name;    /* the mark's name (valid while the timeline lives) */
    uint64_t time_ns;    /* when it was recorded */
    uint64_t events;     /* events replayed up to and including it */
    uint64_t live_bytes; /* live bytes at that instant */
    uint64_t bucket;     /* the bucket holding it */
    int added;           /* non-zero: given to memscope_history_timeline_marks, not recorded in the store */
    int folded;          /* non-zero: folded into the checkpoint (before the horizon; bucket is 0, events and
                            live_bytes are the checkpoint's); such marks come first */
};

/* Replays the whole history once into `buckets` buckets (1..100000). -EINVAL, -ENOMEM, -ENODATA (no events). */
int memscope_history_timeline(const struct memscope_history *history, unsigned buckets,
                              struct memscope_timeline **out);

/* A named instant the store does not hold (a debugger's mark), to place on a timeline. */
struct memscope_time_mark {
    const char *name; /* copied; at most 4096 bytes */
    uint64_t time_ns; /* ns since recording began: the mark follows every event at or before it */
};

/* As memscope_history_timeline, with extra marks placed among the store's in time order (added = 1). */
int memscope_history_timeline_marks(const struct memscope_history *history, unsigned buckets,
                                    const struct memscope_time_mark *marks, size_t nmarks,
                                    struct memscope_timeline **out);
int memscope_timeline_info(const struct memscope_timeline *timeline, struct memscope_timeline_info *out);
int memscope_timeline_bucket(const struct memscope_timeline *timeline, size_t index,
                             struct memscope_timeline_bucket *out);
int memscope_timeline_mark(const struct memscope_timeline *timeline, size_t index, struct memscope_timeline_mark *out);

/* How the timeline is drawn. Zero-initialised means defaults. */
struct memscope_timeline_options {
    unsigned height;     /* chart rows (0: 12) */
    unsigned table_rows; /* rows of the table; consecutive buckets are merged to fit (0: 12) */
    int color;           /* non-zero: ANSI colour */
    int exact_bytes;     /* non-zero: exact byte counts beside human sizes in the table */
};

/*
 * Text: a chart of the buckets' max_bytes (one column per bucket) with the
 * peak (P) and the marks (a, b, ...) on it, the marks' legend, and the
 * table of figures behind it. JSON: schema memscope-timeline/1, every
 * bucket and mark (docs/time.md).
 */
int memscope_timeline_render_text(const struct memscope_timeline *timeline,
                                  const struct memscope_timeline_options *opts, char **out, size_t *len);
int memscope_timeline_render_json(const struct memscope_timeline *timeline, char **out, size_t *len);
void memscope_timeline_free(struct memscope_timeline *timeline);

/* ---- Call stacks (stacks.c) ---- */

/*
 * What a front end knows of one return address. The engine symbolizes
 * nothing itself: it hands a symbolizer every distinct return address a
 * render needs, in one call, and uses what comes back. Unknown fields stay
 * NULL / 0. Strings must stay valid until the render call returns.
 */
struct memscope_frame {
    const char *function; /* function name ("main", "Widget::Widget()"), NULL: unknown */
    const char *file;     /* source file of the call, NULL: unknown */
    uint32_t line;        /* its line */
    const char *module;   /* path of the executable or library holding pc, NULL: unknown */
};

/*
 * Fills out[i] for pcs[i], i < n (pcs sorted, distinct; each is a return
 * address: the call is at pc - 1). Returns 0; non-zero makes every frame
 * unknown. Frames whose module is libmemscope, libc or libstdc++, or whose
 * function is one of the malloc family or operator new (or named in
 * alloc_fns), are the allocator's: hidden from sites and folded stacks,
 * marked in whole stacks.
 */
struct memscope_symbolizer {
    int (*symbolize)(void *ctx, const uint64_t *pcs, size_t n, struct memscope_frame *out);
    void *ctx;
    /* The program's own allocation wrappers (xmalloc, my_alloc...), NULL-terminated, or NULL: hidden
     * like malloc, so a site is their caller (massif's --alloc-fn). A name matches a frame's function
     * exactly, or up to a '(' that begins its parameters (C++). */
    const char *const *alloc_fns;
};

/* The stack table as a snapshot holds it. */
struct memscope_stacks_info {
    uint64_t stacks;     /* stack ids in the table (1..stacks) */
    uint64_t frames;     /* frames stored */
    uint64_t unreadable; /* ids whose entry could not be trusted */
    uint64_t truncated;  /* allocations kept with their caller only: the table was full */
    uint64_t lost;       /* allocations with no stack: the table was full */
    uint32_t method;     /* enum memscope_stack_method (store_abi.h) */
    uint32_t max_depth;  /* most frames per stack */
    int status;          /* 0, or a negative errno: the table could not be read (error says why) */
    const char *error;   /* the sentence, or NULL (valid while the snapshot lives) */
};
int memscope_snapshot_stacks_info(const struct memscope_snapshot *snapshot, struct memscope_stacks_info *out);

/*
 * The frames of stack id (innermost first: frame 0 called the allocation
 * function): copies min(depth, max) return addresses to pcs and sets
 * *depth. Returns 0, -ENOENT (id 0: no stack), -EBADMSG (an id the table
 * does not hold, or an unreadable entry), -EINVAL.
 */
int memscope_snapshot_stack(const struct memscope_snapshot *snapshot, uint32_t id, uint64_t *pcs, size_t max,
                            size_t *depth);

/* Text: the live blocks of stack id (count, bytes) and its frames, symbolized with opts->symbolizer. -ENOENT: no such id. */
int memscope_snapshot_render_stack(const struct memscope_snapshot *snapshot, uint32_t id,
                                   const struct memscope_render_options *opts, char **out, size_t *len);

/*
 * Live bytes in the collapsed-stack ("folded") format of flamegraph.pl,
 * inferno and speedscope: one line per distinct stack, "root;...;site BYTES",
 * frames named with opts->symbolizer (else 0x addresses), the allocator's
 * frames left out, lines sorted. Blocks without a stack: "[no stack]".
 */
int memscope_snapshot_render_folded(const struct memscope_snapshot *snapshot,
                                    const struct memscope_render_options *opts, char **out, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* MEMSCOPE_ENGINE_H */
