/*
 * memscope.h - the in-process API of libmemscope.
 *
 * A program that links -lmemscope (or runs with libmemscope.so preloaded and
 * looks these up with dlsym) can label its blocks, record named marks, and
 * build an exact snapshot of its own heap from the event store.
 *
 * Every call that can fail returns 0 or a negative errno value;
 * memscope_strerror() turns one into a sentence. Snapshots are built by the
 * same engine that GDB and the memscope command use (memscope/engine.h).
 */
#ifndef MEMSCOPE_H
#define MEMSCOPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MEMSCOPE_VERSION_STRING "0.1.0"

struct memscope_snapshot; /* opaque; see memscope/engine.h for the queries */

/*
 * Summary figures of a snapshot. The first eight keep the memscope-rs
 * SnapshotStats names; times are ns since recording began.
 */
struct memscope_stats {
    uint64_t total_allocations;       /* blocks allocated (realloc's new block included) */
    uint64_t total_deallocations;     /* blocks released that were live (realloc's old block included) */
    uint64_t active_allocations;      /* blocks live at the snapshot point */
    uint64_t total_allocated;         /* bytes of all blocks allocated */
    uint64_t total_deallocated;       /* bytes of all live blocks released */
    uint64_t current_memory;          /* live bytes at the snapshot point */
    uint64_t peak_memory;             /* most live bytes at any instant up to the snapshot point */
    uint64_t unmatched_deallocations; /* frees of addresses that were not live (double free, or from before recording) */
    uint64_t dropped_events;          /* events the runtime could not record (budget); figures are then a lower bound */
    uint64_t peak_time_ns;            /* when peak_memory was first reached */
    uint64_t time_ns;                 /* the snapshot point */
    uint64_t events;                  /* events replayed to reach the point */
    uint64_t reallocations;           /* realloc calls that moved or resized a block */
    uint64_t threads;                 /* threads that recorded at least one event up to the point (those merged into the exited threads' row included) */
    uint64_t overlapping_allocations; /* allocations at an address still live, with no release close ahead: the old block was taken as released (clock anomaly) */
};

/*
 * Per-thread figures. Bytes are charged to the thread that allocated them.
 * In a bounded store (MEMSCOPE_BUDGET), threads that exited and were folded
 * wholly into the checkpoint are merged into one row with thread 0 and tid 0
 * (ordered first): their sums, the largest of their peaks, no live block. It
 * stands for memscope_stats.threads less the other rows.
 */
struct memscope_thread_stats {
    uint32_t thread;          /* memscope thread serial, 1 for the first thread that allocated; 0: the exited threads' row */
    uint32_t tid;             /* OS thread id */
    uint64_t allocations;     /* blocks this thread allocated */
    uint64_t deallocations;   /* frees this thread performed (of any thread's blocks) */
    uint64_t allocated_bytes; /* bytes this thread allocated */
    uint64_t released_bytes;  /* bytes of this thread's blocks since released, by any thread */
    uint64_t current_memory;  /* live bytes this thread allocated */
    uint64_t live_blocks;     /* live blocks this thread allocated */
    uint64_t peak_memory;     /* most of current_memory at any instant */
    uint64_t peak_time_ns;    /* when peak_memory was first reached */
};

/* A live block, as the snapshot iterators hand it out (valid during the call). */
struct memscope_allocation {
    uint64_t address;       /* block address */
    uint64_t size;          /* bytes requested */
    uint64_t time_ns;       /* when it was allocated */
    uint32_t thread;        /* allocating thread serial */
    uint32_t stack;         /* call stack id, 0 = none */
    const char *label_name; /* variable name from memscope_label, or NULL */
    const char *label_type; /* type name from memscope_label, or NULL */
};

/*
 * Builds a snapshot of this process's heap now. The snapshot's own memory is
 * not recorded. Returns 0, -EINVAL (out is NULL), -ENOMEM, or -ENODATA when
 * the recording runtime is not active in this process. Thread-safe; not
 * async-signal-safe.
 */
int memscope_snapshot_take(struct memscope_snapshot **out);

/* Frees a snapshot from memscope_snapshot_take (or the engine). NULL is a no-op. */
void memscope_snapshot_free(struct memscope_snapshot *snapshot);

/* Copies the summary figures. Returns 0, or -EINVAL for a NULL or invalid handle. */
int memscope_snapshot_stats(const struct memscope_snapshot *snapshot, struct memscope_stats *out);

/* Threads in the snapshot (0 for an invalid handle). */
size_t memscope_snapshot_thread_count(const struct memscope_snapshot *snapshot);

/* Copies the figures of the index-th thread (ordered by serial). Returns 0, -EINVAL or -ERANGE. */
int memscope_snapshot_thread(const struct memscope_snapshot *snapshot, size_t index,
                             struct memscope_thread_stats *out);

/*
 * Calls fn for every live block, in address order, until fn returns non-zero
 * (that value is returned). Returns 0 when all were visited, -EINVAL for a
 * NULL or invalid handle or a NULL fn.
 */
int memscope_snapshot_foreach(const struct memscope_snapshot *snapshot,
                              int (*fn)(const struct memscope_allocation *block, void *arg), void *arg);

/*
 * Labels the live block at ptr with a variable name and a type name (copied).
 * The label follows the block through realloc and goes with its release.
 * Returns 0; -EINVAL if an argument is NULL or a name is longer than 2000
 * bytes; -ENOENT if ptr is not the start of a block that is live; -ENODATA
 * when the runtime is not recording; -ENOSPC when the budget is reached.
 */
int memscope_label(const void *ptr, const char *name, const char *type);

/* Labels ptr with its own source text as the name: MEMSCOPE_LABEL(buf, "char[64]"). */
#define MEMSCOPE_LABEL(ptr, type) memscope_label((ptr), #ptr, (type))

/*
 * Records a named mark at the current instant (a point snapshots can be taken
 * at). Returns 0, -EINVAL (NULL or longer than 2000 bytes), -ENODATA or
 * -ENOSPC as for memscope_label. Async-signal-safe.
 */
int memscope_mark(const char *name);

/* A sentence for an error code from any memscope call. Never NULL. */
const char *memscope_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* MEMSCOPE_H */
