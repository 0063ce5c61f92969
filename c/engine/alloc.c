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
