/*
 * internal.h - private declarations shared by the engine's source files.
 *
 * The engine reads a store (store_abi.h) through a memory source, keeps its
 * events in host memory in replay order (struct ms_event, 32 bytes each),
 * and replays them into snapshots. Nothing here is part of the public API;
 * every non-static name starts with ms_.
 */
#ifndef MS_ENGINE_INTERNAL_H
#define MS_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "memscope/engine.h"
#include "memscope/memscope.h"
#include "memscope/store_abi.h"
#include "fold.h"

/* Public entry points are the only symbols the shared library exports. */
#define MS_API __attribute__((visibility("default")))

/* ---- allocation (alloc.c): every engine allocation goes through these ---- */

/* malloc/realloc/free through the runtime's unrecorded hooks when linked into
 * libmemscope.so, else the C library. ms_engine_alloc(0) returns a valid
 * pointer. Thread-safe as malloc is. */
void *ms_engine_alloc(size_t size);
void *ms_engine_calloc(size_t count, size_t size); /* zeroed; NULL on overflow */
void *ms_engine_realloc(void *ptr, size_t size);
void ms_engine_free(void *ptr);
/* Arrays of any size: large ones are mapped with huge pages, small ones come
 * from ms_engine_alloc; zero asks for zeroed memory. Free with ms_engine_big_free. */
void *ms_engine_big_alloc(size_t size, int zero);
void ms_engine_big_free(void *ptr);
/* ms_engine_big_keep(1): the calling thread's big blocks are kept mapped when
 * freed and reused by its next big allocations (a thread that replays over
 * and over: the runtime's folder); (0), by that thread: the kept mappings are
 * unmapped and keeping stops. One owner at a time; other threads unaffected. */
void ms_engine_big_keep(int on);
/* Bytes kept; *reused (if not NULL): allocations served from kept mappings so
 * far; fill >= 0 overwrites the kept bytes with it (tests: reuse must not
 * depend on old contents). The owner only. */
size_t ms_engine_big_kept(unsigned long *reused, int fill);
/* Allocation-failure injection for tests: the n-th allocation from now fails
 * (and every later one while ms_engine_fail_sticky is set); 0 disables. */
void ms_engine_fail_at(unsigned long n, int sticky);
/* The most a history's arrays may take (physical memory), and its override for tests (0: none). */
uint64_t ms_engine_memory_limit(void);
void ms_engine_memory_limit_set(uint64_t bytes);

/* ---- growable text buffer (buf.c) ---- */

struct ms_buf {
    char *data;   /* NUL-terminated text, or NULL before the first append */
    size_t len;   /* bytes of text, the NUL excluded */
    size_t cap;   /* bytes allocated */
    int failed;   /* an allocation failed: every later append is a no-op */
};

void ms_buf_init(struct ms_buf *b);
void ms_buf_append(struct ms_buf *b, const char *s, size_t n);
void ms_buf_puts(struct ms_buf *b, const char *s);
void ms_buf_printf(struct ms_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ms_buf_pad(struct ms_buf *b, char c, size_t n); /* n copies of c */
/* Hands the text to the caller (memscope_text_free) or fails with -ENOMEM; the buffer is reset. */
int ms_buf_finish(struct ms_buf *b, char **out, size_t *len);
void ms_buf_release(struct ms_buf *b);

/* ---- errors (errors.c) ---- */

/* Writes a sentence into err (if not NULL) and returns code. */
int ms_error_set(struct memscope_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- host-side events (history) ---- */

/*
 * One event in host memory, the same 32 bytes as a store record once read:
 * time is converted to ns since recording began, the thread serial in info is
 * replaced by the thread's dense index in history.threads, and for LABEL and
 * MARK, size holds an index into history.texts (0: unreadable text).
 */
struct ms_event {
    uint64_t time;    /* ns since recording began */
    uint64_t address; /* block address (0 for a mark) */
    uint64_t size;    /* bytes (ALLOC, REALLOC_ALLOC), text index (LABEL, MARK), else 0 */
    uint32_t stack;   /* call stack id (0: none) */
    uint32_t info;    /* kind in bits 0-7, dense thread index in bits 8-31 */
};

#define MS_EV_KIND(info) ((unsigned)((info) & 0xffu))
#define MS_EV_THREAD(info) ((uint32_t)((info) >> 8))
#define MS_EV_INFO(kind, t) ((uint32_t)(((uint32_t)(t) << 8) | ((uint32_t)(kind) & 0xffu)))

/* A thread of the history, in serial order. */
struct ms_thread {
    uint32_t serial; /* memscope thread serial */
    uint32_t tid;    /* OS thread id from its first chunk */
};

/* A text entry read out of the store: strings[0..count) at pool offsets. */
struct ms_text {
    uint32_t name; /* offset in history.pool of the first string (label name, mark name) */
    uint32_t type; /* offset of the second string (label type), or of "" */
    uint64_t addr; /* address of the text entry in the store (0: the sentinel) */
};

#define MS_TEXT_UNREADABLE 0u /* texts[0]: a reference that could not be read */

/* The stack table read out of a store (stacks.c). */
struct ms_stacks {
    struct memscope_stack_entry *entries; /* id N at entries[N - 1]; depth 0: unreadable */
    uint64_t count;                       /* ids held */
    uint64_t *frames;                     /* return addresses */
    uint64_t nframes;                     /* frames held */
    uint64_t unreadable;                  /* entries marked unreadable */
    uint64_t truncated;                   /* table.truncated */
    uint64_t lost;                        /* table.lost */
    uint32_t method;                      /* table.method */
    uint32_t max_depth;                   /* table.max_depth */
    int status;                           /* 0, or negative errno: the whole table is unreadable */
    char error[160];                      /* why, when status != 0 */
};

/* Reads the table at address table (0: none) into st. Damage is recorded in
 * st (status, error, unreadable entries), never returned; -ENOMEM is. */
int ms_stacks_read(const struct memscope_source *src, uint64_t table, struct ms_stacks *st);
int ms_stacks_copy(struct ms_stacks *dst, const struct ms_stacks *src); /* 0 or -ENOMEM */
void ms_stacks_free(struct ms_stacks *st);

/* A block as the replay keeps it (the layout of replay.c's table slots). */
struct ms_live {
    uint64_t address; /* 0: none */
    uint64_t size;    /* bytes */
    uint64_t time;    /* ns allocated */
    uint32_t thread;  /* dense index of the allocating thread */
    uint32_t label;   /* history text index + 1, 0: none */
    uint32_t stack;   /* call stack id, 0: none */
    uint32_t gen;     /* the at-peak replay's generation (replay.c), unused elsewhere; fills what was padding */
};

/* A mark folded into the checkpoint, in host form. */
struct ms_ck_mark {
    uint64_t time_ns;    /* when it was recorded */
    uint64_t events;     /* its event number (folded events counted) */
    uint64_t live_bytes; /* live bytes right after it */
    uint32_t text;       /* history text index of its name (MS_TEXT_UNREADABLE: none) */
};

/* The store's checkpoint read into host form (reader.c): the replay's starting state. */
struct ms_checkpoint {
    int present;                          /* a checkpoint was read */
    uint64_t horizon_ns;                  /* its horizon, converted */
    uint64_t folded_events;               /* records folded */
    uint64_t generation;                  /* folds made */
    struct memscope_stats st;             /* starting figures (totals, current, peak, unmatched, ...) */
    struct ms_live *blocks;               /* live blocks at the cut */
    uint64_t nblocks;                     /* entries */
    struct memscope_thread_stats *th;     /* per dense thread (zero for threads not in it) */
    uint8_t *in;                          /* per dense thread: listed in the checkpoint */
    uint8_t *stash;                       /* per dense thread: a pending REALLOC_FREE */
    uint8_t *gone;                        /* per dense thread: flagged MEMSCOPE_CHECKPOINT_GONE */
    uint64_t merged;                      /* exited threads merged into the serial-0 entry (dense 0), 0: none */
    struct ms_live *stash_block;          /* per dense thread: its block (address 0: it was not live) */
    uint32_t *cut_seq;                    /* per dense thread: folded_seq */
    uint64_t *cut_records;                /* per dense thread: folded_records */
    struct ms_ck_mark *marks;             /* the folded marks, oldest first */
    uint64_t nmarks;                      /* entries */
    uint64_t marks_dropped;               /* folded marks the checkpoint did not keep */
};

/* Threads that recorded an event, counting those merged into the checkpoint's
 * serial-0 entry each (seen: per dense thread, non-zero when it did). */
uint64_t ms_threads_seen(const struct memscope_history *h, const uint8_t *seen);

struct memscope_history {
    uint64_t magic;              /* MS_HISTORY_MAGIC while open */
    struct ms_event *events;     /* replay order */
    uint64_t nevents;            /* events */
    uint64_t live_hint;          /* blocks live at the end, about (allocations less releases), 0: unknown */
    struct ms_thread *threads;   /* by dense index, ascending serial */
    uint32_t nthreads;           /* threads */
    struct ms_text *texts;       /* texts[0] is the unreadable sentinel */
    uint32_t ntexts;             /* entries in texts */
    char *pool;                  /* strings of texts */
    size_t pool_len;             /* bytes used in pool */
    uint64_t nmarks;             /* MARK events */
    uint64_t dropped_events;     /* root.events_dropped */
    uint64_t chunk_bytes;        /* root.chunk_bytes */
    uint64_t budget_bytes;       /* root.budget_bytes */
    uint32_t pid;                /* root.pid */
    uint32_t abi_version;        /* root.abi_version */
    struct ms_stacks stacks;     /* the call stack table */
    struct ms_checkpoint ck;     /* the folded checkpoint (ck.present 0: none) */
    struct memscope_modules *modules; /* the process's mappings, as a trace recorded them, or NULL */
};

/*
 * Writes entries of set, from *from on, as one MODULES payload in buf (cap
 * bytes, at least sizeof header + an entry with the longest path) and moves
 * *from past them. Returns the payload's bytes, 0 when none are left.
 */
size_t ms_modules_payload(const struct memscope_modules *set, size_t *from, uint8_t *buf, size_t cap);
/*
 * memscope_modules_add without its last step: the payload's entries are
 * appended, and replace the earlier ones they overlap only when the set is
 * settled (ms_modules_settle), once for every payload appended since: what
 * a trace reader does with its MODULES blocks. Returns as memscope_modules_add.
 */
int ms_modules_append(struct memscope_modules **set, const void *payload, size_t len, struct memscope_error *err);
/* Settles set (NULL: nothing to do): 0, or -ENOMEM (the set unchanged). */
int ms_modules_settle(struct memscope_modules *set);

#define MS_HISTORY_MAGIC UINT64_C(0x79726f747369682d) /* "-history" */
#define MS_SNAPSHOT_MAGIC UINT64_C(0x746f687370616e73) /* "snapshot" */

/* Reads, validates and orders a store (reader.c + order.c). */
int ms_history_read(const struct memscope_source *src, uint64_t root_addr, struct memscope_history *h,
                    struct memscope_error *err);
/* The same with options (opts may be NULL). Returns -ESTALE, err untouched,
 * when a fold ran while reading (root.fold_seq odd or moved): read again. */
int ms_history_read_opts(const struct memscope_source *src, uint64_t root_addr, struct memscope_history *h,
                         const struct ms_read_opts *opts, struct memscope_error *err);
void ms_checkpoint_free(struct ms_checkpoint *ck);
/*
 * Replays a history read with a fold's options (raw clock) to its end and
 * writes the checkpoint it leaves: `map` is called once with the bytes
 * needed and returns zeroed memory (or NULL: -ENOMEM). cuts are the fold's
 * (threads absent keep the cut of the history's checkpoint). horizon and
 * generation go into the header. Returns 0 or -ENOMEM; *out, *size set.
 */
int ms_checkpoint_build(const struct memscope_history *h, const struct ms_fold_cut *cuts, uint32_t ncuts,
                        uint64_t horizon, void *(*map)(void *ctx, size_t bytes), void *ctx,
                        struct memscope_checkpoint **out, size_t *size);
/* Sorts one thread's events stably by time (O(n) when already sorted). tmp holds n events. */
void ms_sort_thread_events(struct ms_event *ev, size_t n, struct ms_event *tmp);
/* Merges per-thread runs in[starts[t], starts[t+1]) (each sorted) into out by
 * time; ties: releases first, then lower thread. Returns 0 or -ENOMEM. */
int ms_merge_threads(const struct ms_event *in, const uint64_t *starts, uint32_t nthreads, struct ms_event *out);

/* A thread's sorted events for ms_merge_stream: the piece in hand. */
struct ms_run {
    const struct ms_event *p;  /* next event */
    const struct ms_event *pe; /* end of the piece */
};
/* Puts thread t's next piece in *run once the one in hand ran out (p == pe
 * afterwards: the thread has no more). Returns 0 or a negative errno. */
typedef int (*ms_refill_fn)(void *ctx, uint32_t t, struct ms_run *run);
/* Merges total events from nthreads runs as ms_merge_threads does, calling
 * refill (if not NULL) whenever a run's piece runs out, so a reader can hand
 * the records over in pieces. Returns 0, -ENOMEM, refill's error, or -EIO when
 * the runs hold fewer than total events. */
int ms_merge_stream(struct ms_run *runs, uint32_t nthreads, uint64_t total, ms_refill_fn refill, void *ctx,
                    struct ms_event *out);

/* Generic stable merge sort without libc's qsort (which may call malloc). */
int ms_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *, void *), void *ctx);

/* The first folded mark named name (index in h->ck.marks), or -1. */
int64_t ms_checkpoint_find_mark(const struct memscope_history *h, const char *name);

/* Non-zero when h is an open history. */
int ms_history_valid(const struct memscope_history *h);
/* Events to replay (*n) and the point's time for END, TIME, EVENT and MARK
 * (replay.c); returns 0, -ERANGE, -ENOENT or -EINVAL. */
int ms_history_find_point(const struct memscope_history *h, const struct memscope_point *at, uint64_t *n,
                          uint64_t *time_ns);

/*
 * Replays events [0, n) calling fn after each one applied, with the running
 * figures (current_memory, peak, totals); an event the look-ahead applied
 * early is reported with the event it was applied in. *out (if not NULL)
 * gets the final figures. Returns 0 or -ENOMEM (replay.c; used by timeline.c).
 */
typedef void (*ms_replay_fn)(void *arg, uint64_t index, const struct ms_event *e, const struct memscope_stats *st);
int ms_replay_each(const struct memscope_history *h, uint64_t n, ms_replay_fn fn, void *arg,
                   struct memscope_stats *out);

/*
 * The snapshot at the peak (memscope_history_snapshot at MEMSCOPE_AT_PEAK) in
 * one replay: blocks live at the peak and released or relabelled after it are
 * set aside, at most keep_max of them (MS_PEAK_KEEP_ALL: the replay's own
 * bound, see replay.c); past that it replays a second time up to the peak.
 * end (if not NULL) also gets the snapshot at the end (that replay's last
 * state, as MEMSCOPE_AT_END gives it). *passes (if not NULL) gets the replays
 * made. Returns 0, -ERANGE (the peak lies before the checkpoint horizon) or
 * -ENOMEM; on failure no snapshot is returned.
 */
#define MS_PEAK_KEEP_ALL SIZE_MAX
int ms_snapshot_at_peak(const struct memscope_history *h, size_t keep_max, struct memscope_snapshot **out,
                        struct memscope_snapshot **end, int *passes);

/* ---- snapshots ---- */

/* A live block in a snapshot. */
struct ms_block {
    uint64_t address; /* block address */
    uint64_t size;    /* bytes */
    uint64_t time;    /* ns when allocated */
    uint32_t thread;  /* allocating thread serial */
    uint32_t label;   /* index in snapshot.labels, 0: none */
    uint32_t stack;   /* call stack id (snapshot.stacks), 0: none */
};

struct ms_label {
    const char *name; /* variable name (owned by the snapshot's pool) */
    const char *type; /* type name */
};

struct memscope_snapshot {
    uint64_t magic;                       /* MS_SNAPSHOT_MAGIC while valid, 0 once freed */
    struct memscope_stats stats;          /* summary figures */
    enum memscope_point_kind point_kind;  /* how the point was given */
    uint32_t pid;                         /* process id of the store */
    struct memscope_thread_stats *threads;/* by serial */
    size_t nthreads;                      /* entries in threads */
    struct ms_block *blocks;              /* live blocks by address */
    size_t nblocks;                       /* entries in blocks */
    struct ms_label *labels;              /* labels[0] unused */
    size_t nlabels;                       /* entries in labels */
    char *pool;                           /* label strings */
    struct ms_stacks stacks;              /* the history's stack table, copied */
    uint64_t merged;                      /* threads the serial-0 row (threads[0]) stands for, 0: no such row */
};

/* Checks a handle: non-zero when snapshot is a live snapshot object. */
int ms_snapshot_valid(const struct memscope_snapshot *snapshot);

/* Human size ("1.5 KiB") into buf of at least 32 bytes. */
void ms_format_size(uint64_t bytes, char *buf, size_t len);
/* Seconds with ms precision ("1.234 s") into buf of at least 32 bytes. */
void ms_format_time(uint64_t ns, char *buf, size_t len);
const char *ms_point_kind_name(enum memscope_point_kind kind);

#endif /* MS_ENGINE_INTERNAL_H */
