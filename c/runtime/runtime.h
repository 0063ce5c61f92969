/*
 * runtime.h - private interface between the files of the recording runtime.
 *
 * The runtime lives inside the recorded program. hooks.c interposes the
 * malloc family and calls ms_record_*() below; store.c owns the root and the
 * per-thread chunks; clock.c the time source; texts.c the strings of labels
 * and marks; env.c the configuration; process.c fork and exec; exit_image.c
 * the dump at exit; api.c the public calls of memscope.h.
 *
 * Everything here is hidden (-fvisibility=hidden): only memscope_*, the
 * malloc family and memscope_store_root leave the library (see exports.map).
 */
#ifndef MS_RUNTIME_H
#define MS_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memscope/store_abi.h"

#define MS_LIKELY(x) __builtin_expect(!!(x), 1)
#define MS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MS_TLS __thread __attribute__((tls_model("initial-exec")))

/*
 * Per-thread recording state, in initial-exec TLS (no allocation, no
 * __tls_get_addr, usable from a signal handler). A thread that has never
 * recorded has capacity 0, so its first append falls into the slow path,
 * which hands out the thread serial and maps the first chunk.
 */
struct ms_thread {
    struct memscope_record *records; /* records of the current chunk */
    uint64_t reserved;               /* slots handed out in the current chunk (may pass capacity briefly) */
    uint64_t capacity;               /* soft capacity: slots of the current chunk less MS_CHUNK_SPARE; 0 before the first */
    struct memscope_chunk *chunk;    /* current chunk, NULL before the first */
    uint32_t info;                   /* MEMSCOPE_RECORD_INFO(0, serial): the thread bits of info */
    uint32_t depth;                  /* appends in progress on this thread (>1 only inside a signal handler) */
    uint32_t guard;                  /* >0: the runtime's own work, allocations pass through unrecorded */
    uint32_t serial;                 /* thread serial, 0 before the first event */
    uint64_t next_map_size;          /* bytes to map for the next chunk */
    uint64_t dropped;                /* events dropped by this thread not yet added to root.events_dropped */
};

extern MS_TLS struct ms_thread ms_self;

/* The root object (store.c), exported as memscope_store_root. */
extern struct memscope_store_root memscope_store_root;

/* ---- clock.c ---- */

/* Set by ms_clock_init: 1 when the TSC is invariant and used. */
extern int ms_clock_tsc;

/* Reads the record clock: TSC ticks, or CLOCK_MONOTONIC ns. Async-signal-safe. */
static inline uint64_t ms_clock_now(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (MS_LIKELY(ms_clock_tsc)) {
        uint32_t lo, hi;
        __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t)hi << 32) | lo;
    }
#endif
    extern uint64_t ms_clock_monotonic_ns(void);
    return ms_clock_monotonic_ns();
}

uint64_t ms_clock_monotonic_ns(void);
void ms_clock_init(void);      /* picks the clock, writes the origin pair and a first calibration */
void ms_clock_recalibrate(void); /* refreshes clock_calib_* (seqlock); async-signal-safe */

/* ---- store.c ---- */

/*
 * Slow path of an append: slot i is at or past the thread's soft capacity
 * (the chunk is full, or the thread has none). Writes the record somewhere
 * safe (a spare slot of the current chunk, or a new chunk) and publishes as
 * ms_append would. Returns 0, or -1 when the event was dropped (and counted).
 */
int ms_store_slow_append(struct ms_thread *t, uint64_t i, uint32_t kind, uint64_t address, uint64_t size,
                         uint64_t time, uint32_t stack);

/* Slots kept free at the end of each chunk for appends of a signal handler
 * that interrupts this thread while its chunk is full. */
#define MS_CHUNK_SPARE 16u

static inline void ms_write_record(struct memscope_record *r, uint32_t info, uint64_t address, uint64_t size,
                                   uint64_t time, uint32_t stack)
{
    r->time = time;
    r->address = address;
    r->size = size;
    r->stack = stack;
    r->info = info;
}

/* Publishes the count of the current chunk (depth 1: see ms_append). */
static inline void ms_publish(struct ms_thread *t)
{
    uint64_t n;
    do {
        n = __atomic_load_n(&t->reserved, __ATOMIC_RELAXED);
        __atomic_store_n(&t->chunk->count, n, __ATOMIC_RELEASE);
    } while (n != __atomic_load_n(&t->reserved, __ATOMIC_RELAXED));
}

/* Reserves bytes of the budget; 0 on success, -1 when it would be exceeded. Lock-free. */
int ms_budget_take(uint64_t bytes);
/* As much of want as is left (whole pages); the bytes taken. */
uint64_t ms_budget_take_upto(uint64_t want);
/* Counts bytes past the budget: a last resort that keeps the count true. */
void ms_budget_force(uint64_t bytes);
void ms_budget_give(uint64_t bytes);
void ms_store_init(void);         /* root fields, magic last */
void ms_store_set_budget(uint64_t bytes);
/*
 * Counts one event of thread t as dropped. The first drop of the process
 * reaches root.events_dropped at once; after that each thread adds its drops
 * in batches of MS_DROP_BATCH, so a store past its budget costs no shared
 * write per event (ms_store_flush_dropped adds the rest).
 */
void ms_store_count_dropped(struct ms_thread *t);
void ms_store_flush_dropped(struct ms_thread *t);
#define MS_DROP_BATCH 64u
int ms_store_active(void);        /* non-zero once the root is valid */

/*
 * Appends one record to the calling thread's chain, with call stack id
 * `stack` (0: none). Lock-free, no shared write; safe against a signal
 * handler of the same thread appending in the middle (see the comment in the
 * body). Returns 0, or -1 when dropped.
 */
static inline int ms_append_stack(uint32_t kind, uint64_t address, uint64_t size, uint64_t time, uint32_t stack)
{
    struct ms_thread *t = &ms_self;
    uint64_t i;

    /*
     * depth counts the appends in progress on this thread; only the
     * outermost publishes the count, so a handler that interrupts us never
     * publishes our half-written slot. The slot index is taken with one
     * non-locked xadd: a single instruction, hence atomic with respect to a
     * signal on this thread, and free of the lock prefix's cost.
     */
    t->depth++;
    __asm__ __volatile__("" ::: "memory");
#if defined(__x86_64__)
    i = 1;
    __asm__ __volatile__("xaddq %0, %1" : "+r"(i), "+m"(t->reserved) : : "memory");
#else
    i = __atomic_fetch_add(&t->reserved, 1, __ATOMIC_RELAXED);
#endif
    if (MS_UNLIKELY(i >= t->capacity)) {
        int rc = ms_store_slow_append(t, i, kind, address, size, time, stack);
        __asm__ __volatile__("" ::: "memory");
        t->depth--;
        return rc;
    }
    ms_write_record(&t->records[i], t->info | kind, address, size, time, stack);
    __asm__ __volatile__("" ::: "memory");
    /*
     * The outermost append publishes while depth is still 1: a handler that
     * arrives now appends at depth 2, never switches chunks, and the loop
     * sees its slot and publishes it too. (A handler landing after the last
     * check leaves its record unpublished until this thread's next append.)
     */
    if (t->depth == 1)
        ms_publish(t);
    __asm__ __volatile__("" ::: "memory");
    t->depth--;
    return 0;
}

/* ms_append_stack without a stack (releases, labels, marks). */
static inline int ms_append(uint32_t kind, uint64_t address, uint64_t size, uint64_t time)
{
    return ms_append_stack(kind, address, size, time, 0);
}

/* ---- fold.c (bounded history) ---- */

/* Starts the folding thread when the store is past half its budget (need: now). Outermost appends only. */
void ms_fold_poke(int need);
/* A chunk folded into the checkpoint, free for reuse (its map_size intact), or NULL. Lock-free. */
struct memscope_chunk *ms_fold_pop(void);
/* Waits for the folder to free a chunk (bounded); NULL when none came. Records the wait in root.fold_wait_max_ns. */
struct memscope_chunk *ms_fold_wait(void);
/* Brackets an in-process read of the store: no fold starts meanwhile (one in progress is waited for). */
void ms_fold_hold(void);
void ms_fold_release(void);
/* fork handlers: no fold is half-published at the fork; the child forgets the parent's folder. */
void ms_fold_before_fork(void);
void ms_fold_after_fork_parent(void);
void ms_fold_after_fork_child(void);
uint64_t ms_budget_in_use(void); /* store.c: bytes of the budget taken (free chunks included) */
int ms_chunk_writer_gone(const struct memscope_chunk *c); /* store.c: c's thread exited: its count is final */
/* ---- modules.c ---- */

/* The process's file mappings as a MODULES payload (trace_abi.h) in buf; its bytes, 0 if none. No malloc. */
size_t ms_modules_collect(uint8_t *buf, size_t cap);
/* Shared objects loaded plus unloaded so far (dl_iterate_phdr): changes when the mappings do. */
unsigned long long ms_modules_generation(void);

int ms_trace_running(void);      /* trace.c: a trace is being written by this process */
int ms_trace_fold_begin(void);   /* trace.c: a fold starts: the trace catches up (1: its lock is held) */
void ms_trace_fold_end(int locked);
int ms_trace_may_reuse(const struct memscope_chunk *c); /* trace.c: c is on disk and forgotten (or no trace) */

/* ---- stacks.c ---- */

/*
 * Sets the capture method, depth and table budget from the values of
 * MEMSCOPE_STACK_METHOD, MEMSCOPE_STACK_DEPTH and MEMSCOPE_STACK_BUDGET
 * (NULL: default). Called once by the constructor; nothing is captured before.
 */
void ms_stack_configure(const char *method, const char *depth, const char *budget);

/*
 * Captures the call stack of an allocation and returns its id in the stack
 * table (0: none). ret is the hook's return address (frame 0), frame the
 * hook's frame address (hooks.c keeps frame pointers). Lock-free, no malloc,
 * never faults; async-signal-safe. Call only with the guard down.
 */
uint32_t ms_stack_capture(uint64_t ret, uintptr_t frame);

/* ---- texts.c ---- */

/*
 * Returns the address of a text entry holding the given strings (count 1 or
 * 2, each at most MS_TEXT_STRING_MAX bytes), reusing an identical one made
 * from the same pointers. 0 when the budget is reached. Lock-free and
 * async-signal-safe.
 */
uint64_t ms_text_entry(const char *a, const char *b, uint32_t strings);
#define MS_TEXT_STRING_MAX 2000u

/* ---- env.c ---- */

struct ms_config {
    uint64_t budget;           /* MEMSCOPE_BUDGET, bytes */
    int follow_exec;           /* MEMSCOPE_FOLLOW_EXEC=1 */
    int exit_image_children;   /* MEMSCOPE_EXIT_IMAGE_CHILDREN=1 */
    char exit_image[4096];     /* MEMSCOPE_EXIT_IMAGE, "" if unset */
};
extern struct ms_config ms_config;

void ms_env_read(void);                              /* fills ms_config from the environment */
int ms_parse_size(const char *text, uint64_t *out);  /* "64K", "256M", "1G", "4096": 0 or -1 */

/* ---- process.c ---- */

extern pid_t ms_init_pid;       /* pid at init: the process that writes the exit image */
void ms_process_init(void);     /* registers the fork handler, strips LD_PRELOAD */
void ms_strip_preload(char *value); /* removes libmemscope entries from an LD_PRELOAD value, in place */

/* ---- exit_image.c ---- */

/* Writes the store to path as an exit image (store_abi.h). 0 or -errno. No malloc, no stdio. */
int ms_exit_image_write(const char *path);
void ms_exit_image_at_exit(void);

/* ---- peak_trap.c ---- */

/* Non-zero while a debugger has armed the peak trap: the hooks' one comparison when it is not. */
static inline int ms_peak_trap_armed(void)
{
    return MS_UNLIKELY(__atomic_load_n(&memscope_store_root.peak_trap_threshold, __ATOMIC_RELAXED) != 0);
}

/* The real allocator's usable size of block p (0 for NULL). Call only when armed. */
size_t ms_peak_trap_usable(void *p);

/*
 * Adds bytes (negative: released) to the calling thread's share of the live
 * estimate; flushes it and calls memscope_peak_trap() as peak_trap.c says.
 * Lock-free; async-signal-safe as far as the real malloc_usable_size is.
 */
void ms_peak_trap_change(int64_t bytes);

/* ---- hooks.c ---- */

/* Makes sure the real allocator is resolved and the store initialised. */
void ms_runtime_init(void);

/*
 * Brackets work whose allocations the runtime must not record (the engine
 * building a snapshot in this process). Nestable, per thread.
 */
void ms_runtime_guard_enter(void);
void ms_runtime_guard_leave(void);

#endif /* MS_RUNTIME_H */
