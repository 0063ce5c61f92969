/*
 * store.c - the store root, the per-thread chunks and the memory budget.
 *
 * The root is a static object exported as memscope_store_root. Each thread
 * appends records to its own chunk (ms_append in runtime.h, the hot path);
 * this file is the slow path taken when a chunk is full or a thread has none:
 * it hands out the thread serial, maps a chunk (mmap, never malloc) within
 * the budget, and links it into the root's list with a compare-and-swap.
 * Nothing here takes a lock, so a signal handler or a fork can interrupt any
 * of it without deadlock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

#define MS_CHUNK_FIRST (16u * 1024u)         /* a thread's first chunk: the least (4 pages), as a new thread pays for its pages */
#define MS_CHUNK_MAX (2u * 1024u * 1024u)    /* chunks double up to this */
#define MS_PAGE 4096u
#define MS_DEFAULT_BUDGET (256ull * 1024 * 1024)

__attribute__((visibility("default"))) struct memscope_store_root memscope_store_root;

MS_TLS struct ms_thread ms_self;

/* Bytes of the budget taken (chunks + text blocks); the root shows the two parts. */
static uint64_t ms_budget_used;

/* Fills the root. The magic goes last, so a reader never matches a half-made root. */
void ms_store_init(void)
{
    struct memscope_store_root *r = &memscope_store_root;

    r->abi_version = MEMSCOPE_STORE_ABI_VERSION;
    r->root_size = sizeof(*r);
    r->record_size = sizeof(struct memscope_record);
    r->chunk_header_size = sizeof(struct memscope_chunk);
    r->flags = ms_clock_tsc ? MEMSCOPE_STORE_CLOCK_TSC : 0;
    r->pid = (uint32_t)syscall(SYS_getpid);
    if (r->budget_bytes == 0)
        r->budget_bytes = MS_DEFAULT_BUDGET;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy((void *)r->magic, MEMSCOPE_STORE_MAGIC, MEMSCOPE_STORE_MAGIC_SIZE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

int ms_store_active(void)
{
    return memscope_store_root.magic[0] == 'm';
}

/*
 * Sets the budget from MEMSCOPE_BUDGET (the constructor). Chunks mapped
 * before the environment could be read count against it; a budget smaller
 * than they already are becomes their size, so chunk_bytes + text_bytes
 * never exceed budget_bytes.
 */
void ms_store_set_budget(uint64_t bytes)
{
    uint64_t used = __atomic_load_n(&ms_budget_used, __ATOMIC_RELAXED);
    __atomic_store_n(&memscope_store_root.budget_bytes, bytes > used ? bytes : used, __ATOMIC_RELAXED);
}

void ms_store_flush_dropped(struct ms_thread *t)
{
    uint64_t n = __atomic_exchange_n(&t->dropped, 0, __ATOMIC_RELAXED);
    if (n)
        __atomic_fetch_add(&memscope_store_root.events_dropped, n, __ATOMIC_RELAXED);
}

void ms_store_count_dropped(struct ms_thread *t)
{
    /*
     * Past the budget every event lands here; one shared atomic add per event
     * from several threads cost 2x per event with two threads. The increment
     * is one instruction, so a signal handler of this thread dropping too
     * cannot lose it.
     */
#if defined(__x86_64__)
    __asm__ __volatile__("addq $1, %0" : "+m"(t->dropped) : : "memory");
#else
    __atomic_fetch_add(&t->dropped, 1, __ATOMIC_RELAXED);
#endif
    if (t->dropped >= MS_DROP_BATCH ||
        __atomic_load_n(&memscope_store_root.events_dropped, __ATOMIC_RELAXED) == 0)
        ms_store_flush_dropped(t);
}

int ms_budget_take(uint64_t bytes)
{
    uint64_t used = __atomic_load_n(&ms_budget_used, __ATOMIC_RELAXED);
    for (;;) {
        uint64_t budget = __atomic_load_n(&memscope_store_root.budget_bytes, __ATOMIC_RELAXED);
        if (used > budget || bytes > budget - used)
            return -1;
        if (__atomic_compare_exchange_n(&ms_budget_used, &used, used + bytes, 1, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            return 0;
    }
}

/* Takes as much of `want` bytes of budget as is left, in whole pages; returns the bytes taken. */
uint64_t ms_budget_take_upto(uint64_t want)
{
    uint64_t used = __atomic_load_n(&ms_budget_used, __ATOMIC_RELAXED);
    for (;;) {
        uint64_t budget = __atomic_load_n(&memscope_store_root.budget_bytes, __ATOMIC_RELAXED);
        uint64_t left = used < budget ? (budget - used) & ~(uint64_t)(MS_PAGE - 1) : 0;
        uint64_t take = want < left ? want : left;
        if (take == 0)
            return 0;
        if (__atomic_compare_exchange_n(&ms_budget_used, &used, used + take, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return take;
    }
}

/* Counts bytes taken past the budget (a last resort that keeps the count true). */
void ms_budget_force(uint64_t bytes)
{
    __atomic_fetch_add(&ms_budget_used, bytes, __ATOMIC_RELAXED);
}

void ms_budget_give(uint64_t bytes)
{
    __atomic_fetch_sub(&ms_budget_used, bytes, __ATOMIC_RELAXED);
}

/*
 * Takes budget for a chunk of `want` bytes, or for whatever whole pages are
 * left when that does not fit (so a small budget is used to its end).
 * Returns the size taken, 0 when not even a small chunk fits.
 */
static uint64_t take_chunk_budget(uint64_t want)
{
    const uint64_t least = 4 * MS_PAGE;

    while (want >= least) {
        if (ms_budget_take(want) == 0)
            return want;
        uint64_t budget = __atomic_load_n(&memscope_store_root.budget_bytes, __ATOMIC_RELAXED);
        uint64_t used = __atomic_load_n(&ms_budget_used, __ATOMIC_RELAXED);
        uint64_t left = used < budget ? (budget - used) & ~(uint64_t)(MS_PAGE - 1) : 0;
        if (left < least)
            return 0;
        want = left < want ? left : want / 2;
    }
    return 0;
}

/* Blocks every signal around a chunk switch (raw syscall: no libc state). */
static void block_signals(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, old, _NSIG / 8);
}

static void restore_signals(const sigset_t *old)
{
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, old, NULL, _NSIG / 8);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define MS_HUGE (2u * 1024u * 1024u)

/*
 * Maps size bytes of zeroed memory with its pages already present, so the
 * hot path never takes a page fault: 4 KiB faults were ~40% of the cost of
 * recording (one per 128 records). A 2 MiB chunk is aligned to 2 MiB and
 * asked to be one transparent huge page: one fault-in instead of 512.
 */
static void *map_populated(uint64_t size)
{
    int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS;

#ifndef MS_NO_HUGE_CHUNKS /* (defined only to measure the difference) */
    if (size % MS_HUGE == 0) {
        char *raw = mmap(NULL, size + MS_HUGE, prot, flags, -1, 0);
        if (raw != MAP_FAILED) {
            char *start = (char *)(((uintptr_t)raw + MS_HUGE - 1) & ~(uintptr_t)(MS_HUGE - 1));
            if (start > raw)
                munmap(raw, (size_t)(start - raw));
            if (raw + size + MS_HUGE > start + size)
                munmap(start + size, (size_t)(raw + size + MS_HUGE - (start + size)));
            madvise(start, size, MADV_HUGEPAGE);
            if (madvise(start, size, MADV_POPULATE_WRITE) != 0) {
                for (uint64_t off = 0; off < size; off += MS_PAGE)
                    ((volatile char *)start)[off] = 0;
            }
            return start;
        }
    }
#endif
    void *map = mmap(NULL, size, prot, flags | MAP_POPULATE, -1, 0);
    return map == MAP_FAILED ? NULL : map;
}

uint64_t ms_budget_in_use(void)
{
    return __atomic_load_n(&ms_budget_used, __ATOMIC_RELAXED);
}

/*
 * Makes `map` (size bytes: a fresh mapping, or a folded chunk from the free
 * list when reused) thread t's next chunk and links it into the root.
 */
static struct memscope_chunk *link_chunk(struct ms_thread *t, void *map, uint64_t size, int reused)
{
    struct memscope_store_root *root = &memscope_store_root;
    struct memscope_chunk *old = t->chunk, *c;

    if (t->serial == 0) {
        t->serial = (uint32_t)__atomic_add_fetch(&root->threads_started, 1, __ATOMIC_RELAXED);
        t->info = MEMSCOPE_RECORD_INFO(0, t->serial);
    }
    c = map;
    c->magic = MEMSCOPE_CHUNK_MAGIC;
    c->thread_prev = (uint64_t)(uintptr_t)old;
    c->capacity = (size - sizeof(*c)) / sizeof(struct memscope_record);
    c->count = 0;
    c->map_size = size;
    c->thread = t->serial;
    c->seq = old ? old->seq + 1 : 0;
    c->tid = (uint32_t)syscall(SYS_gettid);
    c->pid = (uint32_t)syscall(SYS_getpid);
    if (!reused)
        __atomic_fetch_add(&root->chunk_bytes, size, __ATOMIC_RELAXED);

    uint64_t head = __atomic_load_n(&root->chunks, __ATOMIC_RELAXED);
    do {
        c->next = head;
    } while (!__atomic_compare_exchange_n(&root->chunks, &head, (uint64_t)(uintptr_t)c, 1, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
    __atomic_fetch_add(&root->chunk_count, 1, __ATOMIC_RELAXED);
    return c;
}

/*
 * The slow path. A thread's chunk has MS_CHUNK_SPARE slots past its soft
 * capacity. Appends never switch chunks while another append of the same
 * thread is in progress (depth > 1: a signal handler interrupting us), since
 * the interrupted append may hold a slot of the current chunk; such a nested
 * append takes a spare slot instead, and the interrupted one publishes it.
 * The outermost append (depth 1) writes its record in its own slot if that
 * slot exists (so no hole is left before slots handlers may have taken after
 * it), blocks all signals, publishes, and then maps or takes the next chunk.
 */
int ms_store_slow_append(struct ms_thread *t, uint64_t i, uint32_t kind, uint64_t address, uint64_t size,
                         uint64_t time, uint32_t stack)
{
    struct memscope_chunk *old = t->chunk;
    uint64_t old_capacity = old ? old->capacity : 0;
    int written = 0;
    sigset_t mask;
    uint64_t map_size;
    struct memscope_chunk *c, *reuse;

    if (i < old_capacity) {
        ms_write_record(&t->records[i], t->info | kind, address, size, time, stack);
        written = 1;
    }
    if (t->depth > 1 || !ms_store_active()) {
        if (written)
            return 0; /* the interrupted append publishes it */
        t->reserved--;
        ms_store_count_dropped(t);
        return -1;
    }
    /* Signals stay blocked until the next chunk is linked: finding one may
     * take a while (mapping and populating it, or waiting for a fold), and a
     * handler appending meanwhile could use up the old chunk's spare slots
     * and lose events. Delivery waits for the switch instead. */
    block_signals(&mask);
    if (written)
        ms_publish(t);
    else
        t->reserved--; /* our slot i does not exist; reserved is old_capacity again */

    if (t->next_map_size == 0)
        t->next_map_size = MS_CHUNK_FIRST;
    /* A chunk is at most 1/16 of the budget, so that threads' current chunks,
     * which cannot be folded away, leave most of it to finished ones. */
    {
        uint64_t cap = __atomic_load_n(&memscope_store_root.budget_bytes, __ATOMIC_RELAXED) / 16;
        cap &= ~(uint64_t)(MS_PAGE - 1);
        if (cap < 4 * MS_PAGE)
            cap = 4 * MS_PAGE;
        if (t->next_map_size > cap)
            t->next_map_size = cap;
    }
    /* A chunk folded into the checkpoint first, then fresh budget, then a wait for the folder. */
    ms_fold_poke(0);
    reuse = ms_fold_pop();
    if (!reuse) {
        map_size = take_chunk_budget(t->next_map_size);
        if (map_size == 0) {
            reuse = ms_fold_wait();
            if (!reuse)
                goto no_chunk;
        }
    }
    if (reuse) {
        /* Handlers that ran before signals were blocked may have filled spare
         * slots: the old chunk's final count, stored before the next chunk is
         * linked (signals are blocked, so nothing more lands in it). A reader
         * that sees the next chunk sees the final count (fold.c relies on it). */
        if (old) {
            uint64_t n = t->reserved < old_capacity ? t->reserved : old_capacity;
            __atomic_store_n(&old->count, n, __ATOMIC_RELEASE);
        }
        c = link_chunk(t, reuse, reuse->map_size, 1);
    } else {
        void *map = map_populated(map_size);
        if (!map) {
            ms_budget_give(map_size);
            goto no_chunk;
        }
        /* As above: the old chunk's final count before the next is linked. */
        if (old) {
            uint64_t n = t->reserved < old_capacity ? t->reserved : old_capacity;
            __atomic_store_n(&old->count, n, __ATOMIC_RELEASE);
        }
        c = link_chunk(t, map, map_size, 0);
    }
    t->chunk = c;
    t->records = (struct memscope_record *)(c + 1);
    t->capacity = c->capacity - MS_CHUNK_SPARE;
    t->reserved = 0;
    if (!written) {
        ms_write_record(&t->records[0], t->info | kind, address, size, time, stack);
        t->reserved = 1;
        __atomic_store_n(&c->count, 1, __ATOMIC_RELEASE);
    }
    if (t->next_map_size < MS_CHUNK_MAX)
        t->next_map_size *= 2;
    restore_signals(&mask);
    ms_clock_recalibrate();
    /* A signal that came while they were blocked is delivered at the restore
     * and may have appended (at depth 2, unpublished): publish it. */
    ms_publish(t);
    return 0;

no_chunk:
    restore_signals(&mask);
    if (written) {
        ms_publish(t);
        return 0; /* in a spare slot; the next append tries again */
    }
    ms_store_count_dropped(t);
    return -1;
}

/*
 * Whether the thread that wrote chunk c has exited (or the chunk was
 * copied from the parent by fork and is not this thread's), so c's count is
 * final though no next chunk follows it: the folder may fold it wholly and
 * reuse it, the trace writer finish it. A thread that exited is no longer
 * signalable (tgkill fails with ESRCH); a live one always is, and a tid the
 * kernel reused for a new thread reads as live, which only keeps a chunk
 * longer. Anything else (a sandbox refusing tgkill) reads as live.
 */
int ms_chunk_writer_gone(const struct memscope_chunk *c)
{
    long pid = syscall(SYS_getpid);

    if (__atomic_load_n(&c->pid, __ATOMIC_ACQUIRE) != (uint32_t)pid)
        return 1;
    return syscall(SYS_tgkill, pid, (long)__atomic_load_n(&c->tid, __ATOMIC_RELAXED), 0) != 0 && errno == ESRCH;
}
