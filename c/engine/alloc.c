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
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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
    if (hdr->len)
        munmap(hdr, hdr->len);
    else
        ms_engine_free(hdr);
}
