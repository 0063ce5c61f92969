/*
 * alloc.c - the one place the engine allocates memory.
 *
 * Inside libmemscope.so the engine must not record its own allocations (a
 * snapshot taken in-process would otherwise see itself, and freeing it later
 * would count as frees of unknown blocks). The runtime therefore defines three
 * hidden hooks that reach the real allocator without recording:
 *
 *   void *ms_engine_alloc_hook(size_t size);
 *   void *ms_engine_realloc_hook(void *ptr, size_t size);
 *   void  ms_engine_free_hook(void *ptr);
 *
 * They are weak references here: where the runtime is not linked in
 * (libmemscope-engine.so, the memscope command, the unit tests) they resolve
 * to NULL and the engine uses the C library's malloc, realloc and free.
 * The runtime must define all three or none.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mremap */
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

extern void *ms_engine_alloc_hook(size_t size) __attribute__((weak, visibility("hidden")));
extern void *ms_engine_realloc_hook(void *ptr, size_t size) __attribute__((weak, visibility("hidden")));
extern void ms_engine_free_hook(void *ptr) __attribute__((weak, visibility("hidden")));

/* Test-only failure injection (SQLite style): not thread-safe, tests only. */
static unsigned long fail_countdown; /* 0: off; else the allocation that fails */
static int fail_sticky;              /* keep failing once the countdown hit */

void ms_engine_fail_at(unsigned long n, int sticky)
{
    fail_countdown = n;
    fail_sticky = sticky;
}

static int should_fail(void)
{
    if (__builtin_expect(fail_countdown == 0, 1))
        return 0;
    if (fail_countdown == 1) {
        if (!fail_sticky)
            fail_countdown = 0;
        return 1;
    }
    fail_countdown--;
    return 0;
}

/*
 * The most memory a history's arrays may ask for: the machine's physical
 * memory. Past it a read would only end in the kernel's OOM killer (the
 * arrays are mapped lazily and filled as read), so it is refused at once
 * with a sentence instead. Tests lower it (ms_engine_memory_limit_set).
 */
static uint64_t memory_limit_override; /* 0: physical memory */

void ms_engine_memory_limit_set(uint64_t bytes)
{
    memory_limit_override = bytes;
}

uint64_t ms_engine_memory_limit(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);

    if (memory_limit_override)
        return memory_limit_override;
    if (pages <= 0 || page <= 0)
        return UINT64_MAX; /* unknown: no limit of our own */
    return (uint64_t)pages * (uint64_t)page;
}

void *ms_engine_alloc(size_t size)
{
    if (should_fail())
        return NULL;
    if (size == 0)
        size = 1;
    if (ms_engine_alloc_hook)
        return ms_engine_alloc_hook(size);
    return malloc(size);
}

void *ms_engine_calloc(size_t count, size_t size)
{
    size_t total;
    void *p;

    if (__builtin_mul_overflow(count, size, &total))
        return NULL;
    p = ms_engine_alloc(total);
    if (p)
        memset(p, 0, total);
    return p;
}

void *ms_engine_realloc(void *ptr, size_t size)
{
    if (should_fail())
        return NULL;
    if (size == 0)
        size = 1;
    if (ms_engine_realloc_hook)
        return ms_engine_realloc_hook(ptr, size);
    return realloc(ptr, size);
}

void ms_engine_free(void *ptr)
{
    if (!ptr)
        return;
    if (ms_engine_free_hook)
        ms_engine_free_hook(ptr);
    else
        free(ptr);
}

/*
 * Large arrays (events, the live table, snapshot blocks) come straight from
 * mmap, with transparent huge pages requested: a 10M-event history is
 * hundreds of MiB, and faulting it in 4 KiB pages costs more than replaying
 * it. mmap is never recorded by the runtime, so this is also safe in-process.
 * Smaller arrays come from ms_engine_alloc. A 64-byte header in front of
 * every block says which, and keeps a mapping's extent.
 */
#define BIG_MIN ((size_t)1 << 20)
#define BIG_HEADER 64
#define HUGE_PAGE ((size_t)2 << 20)

struct big_header {
    size_t len; /* bytes mapped, header included; 0: from ms_engine_alloc */
};

/*
 * Kept mappings: a thread that replays again and again (the runtime's folding
 * thread: a fold every few milliseconds) would otherwise map its arrays anew
 * each time and pay the kernel's zeroing of every page, about a quarter of a
 * fold's cost. ms_engine_big_keep(1) makes the calling thread the owner:
 * its big blocks are kept mapped when freed and handed out again (zeroed
 * by memset where zero asks for it, over the bytes asked for only), up to
 * BIG_KEEP mappings. Only the owner, known by its kernel thread id (unique
 * across a fork, unlike pthread_self), touches them; every other thread maps
 * and unmaps as before.
 */
#define BIG_KEEP 8

static struct {
    long owner;                        /* (atomic) kernel tid of the owner, 0: keeping is off */
    struct big_header *kept[BIG_KEEP]; /* mappings kept for reuse (len in their header), NULL: none */
    unsigned long reused;              /* big allocations served from kept mappings (tests) */
} keep;

static long self_tid(void)
{
    return (long)syscall(SYS_gettid);
}

static int keeping(void)
{
    long owner = __atomic_load_n(&keep.owner, __ATOMIC_ACQUIRE);
    return owner != 0 && owner == self_tid();
}

void ms_engine_big_keep(int on)
{
    unsigned i;

    if (on) {
        __atomic_store_n(&keep.owner, self_tid(), __ATOMIC_RELEASE);
        return;
    }
    __atomic_store_n(&keep.owner, 0, __ATOMIC_RELEASE);
    for (i = 0; i < BIG_KEEP; i++) {
        struct big_header *m = keep.kept[i];
        keep.kept[i] = NULL;
        if (m)
            munmap(m, m->len);
    }
}

size_t ms_engine_big_kept(unsigned long *reused, int fill)
{
    size_t bytes = 0;
    unsigned i;

    for (i = 0; i < BIG_KEEP; i++) {
        struct big_header *m = keep.kept[i];
        if (!m)
            continue;
        bytes += m->len;
        if (fill >= 0)
            memset((char *)m + BIG_HEADER, fill, m->len - BIG_HEADER);
    }
    if (reused)
        *reused = keep.reused;
    return bytes;
}

/* A kept mapping of at least len bytes (the smallest that fits; else the
 * largest, grown), or NULL. The owner only. */
static struct big_header *kept_take(size_t len)
{
    unsigned i, best = BIG_KEEP, big = BIG_KEEP;
    struct big_header *m;

    for (i = 0; i < BIG_KEEP; i++) {
        m = keep.kept[i];
        if (!m)
            continue;
        if (m->len >= len && (best == BIG_KEEP || m->len < keep.kept[best]->len))
            best = i;
        if (big == BIG_KEEP || m->len > keep.kept[big]->len)
            big = i;
    }
    if (best == BIG_KEEP && big == BIG_KEEP)
        return NULL;
    i = best != BIG_KEEP ? best : big;
    m = keep.kept[i];
    keep.kept[i] = NULL;
    if (m->len < len) { /* grow it: its pages move, only the new tail is faulted in */
        void *p = mremap(m, m->len, len, MREMAP_MAYMOVE);
        if (p == MAP_FAILED) {
            munmap(m, m->len);
            return NULL;
        }
        m = p;
        m->len = len;
#ifdef MADV_HUGEPAGE
        madvise(m, len, MADV_HUGEPAGE);
#endif
    }
    keep.reused++;
    return m;
}

/* Keeps mapping m for reuse (the owner only): in a free entry, else in place
 * of the smallest kept one if m is larger. Returns 0, or -1: unmap it. */
static int kept_put(struct big_header *m)
{
    unsigned i, small = 0;

    for (i = 0; i < BIG_KEEP; i++) {
        if (!keep.kept[i]) {
            keep.kept[i] = m;
            return 0;
        }
        if (keep.kept[i]->len < keep.kept[small]->len)
            small = i;
    }
    if (keep.kept[small]->len >= m->len)
        return -1;
    munmap(keep.kept[small], keep.kept[small]->len);
    keep.kept[small] = m;
    return 0;
}

void *ms_engine_big_alloc(size_t size, int zero)
{
    size_t len;
    char *p;

    if (__builtin_add_overflow(size, (size_t)BIG_HEADER, &len))
        return NULL;
    if (len < BIG_MIN) {
        p = zero ? ms_engine_calloc(1, len) : ms_engine_alloc(len);
        if (!p)
            return NULL;
        ((struct big_header *)p)->len = 0;
        return p + BIG_HEADER;
    }
    if (__builtin_add_overflow(len, HUGE_PAGE - 1, &len))
        return NULL;
    len &= ~(HUGE_PAGE - 1);
    if (should_fail())
        return NULL;
    if (keeping()) {
        struct big_header *m = kept_take(len);
        if (m) {
            if (zero)
                memset((char *)m + BIG_HEADER, 0, size);
            return (char *)m + BIG_HEADER;
        }
    }
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, len, MADV_HUGEPAGE);
#endif
    ((struct big_header *)p)->len = len; /* fresh anonymous memory is already zero */
    return p + BIG_HEADER;
}

void ms_engine_big_free(void *ptr)
{
    struct big_header *hdr;

    if (!ptr)
        return;
    hdr = (struct big_header *)((char *)ptr - BIG_HEADER);
    if (!hdr->len)
        ms_engine_free(hdr);
    else if (!keeping() || kept_put(hdr) != 0)
        munmap(hdr, hdr->len);
}
