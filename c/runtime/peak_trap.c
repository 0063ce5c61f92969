/*
 * peak_trap.c - the peak trap: a coarse, process-wide live-bytes figure that
 * calls memscope_peak_trap() (a no-op where a debugger puts its breakpoint)
 * each time it reaches the threshold armed in the store root, then re-arms
 * itself higher (DESIGN.md "Peak trap"; the fields are in store_abi.h).
 *
 * Cost. Disarmed, a hook pays one load and compare of
 * root.peak_trap_threshold (ms_peak_trap_armed). Armed, it asks the real
 * allocator for the block's usable size (glibc: a few ns, no lock) and adds
 * it to a thread-local delta; only when the delta passes MS_PEAK_TRAP_FLUSH
 * either way does the thread add it to root.peak_trap_live with one atomic
 * add, so there is no shared write per event: a program that allocates and
 * frees at a steady level never flushes at all, one that grows flushes once
 * per 64 KiB of growth per thread. 64 KiB keeps the figure within
 * 64 KiB x threads of the truth, which is small against the default step of
 * at least 1 MiB, and makes the flushes too rare to measure.
 *
 * Usable sizes are used on both sides (requested sizes are not known at a
 * free), so a block adds exactly what its release takes off. Blocks
 * allocated before the trap was armed are taken off at their usable size,
 * while the debugger started the figure from their requested sizes (the
 * replay's current_memory): the figure may run a little low, never drift.
 *
 * Re-arming is a compare-and-swap on the threshold, so when several threads
 * cross it at once exactly one of them calls the trap.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>

#include "runtime.h"

#define MS_PEAK_TRAP_FLUSH (64 * 1024) /* bytes of thread-local delta before a flush */

/* Per-thread delta not yet added to root.peak_trap_live, and the arming it belongs to. */
static MS_TLS int64_t trap_delta;
static MS_TLS uint32_t trap_generation;

/* The real allocator's malloc_usable_size (resolved at load; glibc's as a fallback). */
static size_t (*usable_size)(void *);

__attribute__((constructor(102))) static void peak_trap_init(void)
{
    size_t (*f)(void *);

    ms_runtime_guard_enter();
    f = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    ms_runtime_guard_leave();
    __atomic_store_n(&usable_size, f ? f : malloc_usable_size, __ATOMIC_RELEASE);
}

/*
 * The trap. Exported and never inlined or merged, so a breakpoint on it
 * catches every hit. live: the estimate that crossed; threshold: the one it
 * crossed (both also in the store root).
 */
__attribute__((visibility("default"), noinline, noclone, used)) void memscope_peak_trap(uint64_t live,
                                                                                       uint64_t threshold);
void memscope_peak_trap(uint64_t live, uint64_t threshold)
{
    __asm__ __volatile__("" : : "r"(live), "r"(threshold) : "memory");
}

size_t ms_peak_trap_usable(void *p)
{
    size_t (*f)(void *) = __atomic_load_n(&usable_size, __ATOMIC_ACQUIRE);

    if (!p)
        return 0;
    return f ? f(p) : malloc_usable_size(p);
}

/* Adds the thread's delta to the shared figure, and fires when it reaches the threshold. */
static __attribute__((noinline)) void flush(struct memscope_store_root *r)
{
    int64_t d = trap_delta;
    uint64_t live, threshold, step, next;
    uint32_t shift;

    trap_delta = 0;
    live = __atomic_add_fetch(&r->peak_trap_live, (uint64_t)d, __ATOMIC_RELAXED);
    if ((int64_t)live < 0) /* frees of blocks counted low at arming: stay at 0 */
        return;
    threshold = __atomic_load_n(&r->peak_trap_threshold, __ATOMIC_RELAXED);
    if (threshold == 0 || live < threshold)
        return;
    step = __atomic_load_n(&r->peak_trap_step, __ATOMIC_RELAXED);
    shift = __atomic_load_n(&r->peak_trap_shift, __ATOMIC_RELAXED);
    if (shift && shift < 64 && (live >> shift) > step)
        step = live >> shift;
    if (step == 0)
        step = 1;
    next = live + step < live ? UINT64_MAX : live + step;
    if (!__atomic_compare_exchange_n(&r->peak_trap_threshold, &threshold, next, 0, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED))
        return; /* another thread re-armed (and trapped) first, or the debugger disarmed */
    __atomic_fetch_add(&r->peak_trap_hits, 1, __ATOMIC_RELAXED);
    memscope_peak_trap(live, threshold);
}

void ms_peak_trap_change(int64_t bytes)
{
    struct memscope_store_root *r = &memscope_store_root;
    uint32_t gen = __atomic_load_n(&r->peak_trap_generation, __ATOMIC_RELAXED);

    if (MS_UNLIKELY(gen != trap_generation)) {
        trap_generation = gen; /* armed anew: what this thread kept belongs to the old figure */
        trap_delta = 0;
    }
    trap_delta += bytes;
    if (MS_UNLIKELY(trap_delta >= MS_PEAK_TRAP_FLUSH || trap_delta <= -MS_PEAK_TRAP_FLUSH))
        flush(r);
}
