/*
 * hooks.c - interposition of the malloc family, and the runtime's bootstrap.
 *
 * Every hook calls the real allocator, found with dlsym(RTLD_NEXT), and
 * appends one record (ms_append): a release is timed and recorded before the
 * real call gives the block back, an allocation after the real call returns,
 * so an address reused by another thread always sorts after its release.
 *
 * Bootstrap: the first call of any hook (often from ld.so, before any
 * constructor) resolves the real functions. dlsym allocates a little on the
 * way; those requests are served from a static pool (never freed; a free or
 * realloc of a pool pointer is recognised by its address). The thread-local
 * guard marks the runtime's own work (bootstrap, building a snapshot): while
 * it is up, hooks pass calls through unrecorded. It is deliberately not
 * raised around the real allocator calls, so a signal handler that allocates
 * while this thread is inside the real malloc is still recorded.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

#define MS_EXPORT __attribute__((visibility("default")))

struct ms_real {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
};

/* The real allocator. `malloc` is stored last: non-NULL means all are ready. */
static struct ms_real real;

/* 0: not started, 1: a thread is initialising, 2: done. */
static int init_state;

/* ---- the bootstrap pool ---- */

#define MS_POOL_SIZE (64u * 1024u)
static char pool[MS_POOL_SIZE] __attribute__((aligned(64)));
static size_t pool_used;

/* Each pool block has a 16-byte header holding its size, so realloc can copy it. */
static void *pool_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    size_t used = __atomic_load_n(&pool_used, __ATOMIC_RELAXED);
    for (;;) {
        size_t start = (used + 16 + align - 1) & ~(align - 1);
        if (n > MS_POOL_SIZE || start + n > MS_POOL_SIZE)
            return NULL;
        if (__atomic_compare_exchange_n(&pool_used, &used, start + n, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            *(size_t *)(pool + start - 16) = n;
            return pool + start;
        }
    }
}

static inline int in_pool(const void *p)
{
    return (uintptr_t)p - (uintptr_t)pool < MS_POOL_SIZE;
}

/* ---- initialisation ---- */

static void resolve_real(void)
{
    struct ms_real r;

    r.malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    r.free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    r.calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    r.realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    r.posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    r.aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    r.memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    r.valloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "valloc");
    r.pvalloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "pvalloc");
    if (!r.malloc || !r.free || !r.calloc || !r.realloc)
        return; /* cannot happen with a dynamic libc; leaves the runtime on its pool */
    real.free = r.free;
    real.calloc = r.calloc;
    real.realloc = r.realloc;
    real.posix_memalign = r.posix_memalign;
    real.aligned_alloc = r.aligned_alloc;
    real.memalign = r.memalign;
    real.valloc = r.valloc;
    real.pvalloc = r.pvalloc;
    __atomic_store_n(&real.malloc, r.malloc, __ATOMIC_RELEASE);
}

void ms_runtime_init(void)
{
    int state = __atomic_load_n(&init_state, __ATOMIC_ACQUIRE);

    if (MS_LIKELY(state == 2))
        return;
    if (state == 0 && __atomic_compare_exchange_n(&init_state, &state, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        ms_self.guard++;
        ms_clock_init();
        ms_store_init();
        resolve_real();
        ms_self.guard--;
        __atomic_store_n(&init_state, 2, __ATOMIC_RELEASE);
        return;
    }
    if (ms_self.guard)
        return; /* this thread is the one initialising (dlsym calling back) */
    while (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != 2) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}

void ms_runtime_guard_enter(void)
{
    ms_self.guard++;
}

void ms_runtime_guard_leave(void)
{
    ms_self.guard--;
}

/* Library constructor: configuration, fork handler, LD_PRELOAD clean-up. */
__attribute__((constructor(101))) static void ms_constructor(void)
{
    ms_runtime_init();
    ms_self.guard++;
    ms_env_read();
    ms_store_set_budget(ms_config.budget);
    ms_stack_configure(secure_getenv("MEMSCOPE_STACK_METHOD"), secure_getenv("MEMSCOPE_STACK_DEPTH"),
                       secure_getenv("MEMSCOPE_STACK_BUDGET"));
    ms_process_init();
    ms_self.guard--;
}

__attribute__((destructor(101))) static void ms_destructor(void)
{
    ms_exit_image_at_exit();
}

/* ---- the hooks ---- */

/*
 * Records an allocation with its call stack (stacks.c). ret and frame are
 * the hook's __builtin_return_address(0) and __builtin_frame_address(0):
 * the stack starts at the hook's caller, the hook itself is never in it.
 */
#define RECORD_ALLOC(p, n) record_alloc((p), (n), __builtin_return_address(0), __builtin_frame_address(0))
static inline __attribute__((always_inline)) void record_alloc(void *p, size_t n, void *ret, void *frame)
{
    uint64_t now = ms_clock_now();
    if (MS_LIKELY(p != NULL) && MS_LIKELY(!ms_self.guard)) {
        uint32_t stack = ms_stack_capture((uint64_t)(uintptr_t)ret, (uintptr_t)frame);
        ms_append_stack(MEMSCOPE_REC_ALLOC, (uint64_t)(uintptr_t)p, n, now, stack);
        if (ms_peak_trap_armed()) /* peak_trap.c */
            ms_peak_trap_change((int64_t)ms_peak_trap_usable(p));
    }
}

/* Slow entry of every hook before the real functions are known. */
static int boot(void)
{
    ms_runtime_init();
    return real.malloc != NULL;
}

MS_EXPORT void *malloc(size_t n)
{
    void *(*f)(size_t) = real.malloc;
    if (MS_UNLIKELY(!f)) {
        if (!boot())
            return pool_alloc(n, 16);
        f = real.malloc;
    }
    void *p = f(n);
    RECORD_ALLOC(p, n);
    return p;
}

MS_EXPORT void free(void *p)
{
    if (MS_UNLIKELY(!p || in_pool(p)))
        return;
    if (MS_UNLIKELY(!real.malloc) && !boot())
        return;
    if (MS_LIKELY(!ms_self.guard)) {
        ms_append(MEMSCOPE_REC_FREE, (uint64_t)(uintptr_t)p, 0, ms_clock_now());
        if (ms_peak_trap_armed())
            ms_peak_trap_change(-(int64_t)ms_peak_trap_usable(p));
    }
    real.free(p);
}

MS_EXPORT void *calloc(size_t n, size_t m)
{
    if (MS_UNLIKELY(!real.malloc) && !boot()) {
        size_t bytes;
        if (__builtin_mul_overflow(n, m, &bytes))
            return NULL;
        return pool_alloc(bytes, 16); /* static memory is zeroed */
    }
    void *p = real.calloc(n, m);
    RECORD_ALLOC(p, n * m);
    return p;
}

static inline __attribute__((always_inline)) void *do_realloc(void *p, size_t n, void *ret, void *frame)
{
    if (MS_UNLIKELY(!real.malloc) && !boot()) {
        void *q = pool_alloc(n, 16);
        if (q && p)
            memcpy(q, p, *(size_t *)((char *)p - 16) < n ? *(size_t *)((char *)p - 16) : n);
        return q;
    }
    if (MS_UNLIKELY(in_pool(p))) {
        /* A block dlsym got from the pool moves to the real heap. */
        size_t old = *(size_t *)((char *)p - 16);
        void *q = real.malloc(n);
        record_alloc(q, n, ret, frame);
        if (q)
            memcpy(q, p, old < n ? old : n);
        return q;
    }
    if (MS_UNLIKELY(ms_self.guard))
        return real.realloc(p, n);
    if (!p) {
        void *q = real.realloc(NULL, n);
        record_alloc(q, n, ret, frame);
        return q;
    }
    int64_t trap_old = ms_peak_trap_armed() ? (int64_t)ms_peak_trap_usable(p) : -1;
    ms_append(MEMSCOPE_REC_REALLOC_FREE, (uint64_t)(uintptr_t)p, 0, ms_clock_now());
    void *q = real.realloc(p, n);
    uint64_t now = ms_clock_now();
    if (trap_old >= 0) /* failed: p stays; realloc(p, 0) -> NULL: p was freed */
        ms_peak_trap_change((q ? (int64_t)ms_peak_trap_usable(q) : n != 0 ? trap_old : 0) - trap_old);
    if (q)
        ms_append_stack(MEMSCOPE_REC_REALLOC_ALLOC, (uint64_t)(uintptr_t)q, n, now,
                        ms_stack_capture((uint64_t)(uintptr_t)ret, (uintptr_t)frame));
    else if (n != 0)
        ms_append(MEMSCOPE_REC_REALLOC_UNDO, (uint64_t)(uintptr_t)p, 0, now);
    /* realloc(p, 0) returning NULL freed p: the REALLOC_FREE stands. */
    return q;
}

MS_EXPORT void *realloc(void *p, size_t n)
{
    return do_realloc(p, n, __builtin_return_address(0), __builtin_frame_address(0));
}

MS_EXPORT void *reallocarray(void *p, size_t n, size_t m)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, m, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return do_realloc(p, bytes, __builtin_return_address(0), __builtin_frame_address(0));
}

MS_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (MS_UNLIKELY(!real.malloc) && !boot()) {
        void *p = pool_alloc(n, align);
        if (!p)
            return ENOMEM;
        *out = p;
        return 0;
    }
    int rc = real.posix_memalign(out, align, n);
    if (rc == 0)
        RECORD_ALLOC(*out, n);
    return rc;
}

MS_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    if (MS_UNLIKELY(!real.malloc) && !boot())
        return pool_alloc(n, align);
    void *p = real.aligned_alloc(align, n);
    RECORD_ALLOC(p, n);
    return p;
}

MS_EXPORT void *memalign(size_t align, size_t n)
{
    if (MS_UNLIKELY(!real.malloc) && !boot())
        return pool_alloc(n, align);
    void *p = real.memalign(align, n);
    RECORD_ALLOC(p, n);
    return p;
}

MS_EXPORT void *valloc(size_t n)
{
    if (MS_UNLIKELY(!real.malloc) && !boot())
        return pool_alloc(n, 4096);
    void *p = real.valloc(n);
    RECORD_ALLOC(p, n);
    return p;
}

MS_EXPORT void *pvalloc(size_t n)
{
    if (MS_UNLIKELY(!real.malloc) && !boot())
        return pool_alloc(n, 4096);
    void *p = real.pvalloc(n);
    RECORD_ALLOC(p, n);
    return p;
}

/* ---- unrecorded allocation for the engine built into this library ---- */

/*
 * The engine allocates through these three hooks (c/engine/alloc.c declares
 * them weak; outside libmemscope.so they are absent and it uses libc). They
 * go straight to the real allocator, so neither the memory of a snapshot
 * built in this process nor its release in memscope_snapshot_free is
 * recorded.
 */
void *ms_engine_alloc_hook(size_t size);
void *ms_engine_realloc_hook(void *ptr, size_t size);
void ms_engine_free_hook(void *ptr);

void *ms_engine_alloc_hook(size_t size)
{
    ms_runtime_init();
    return real.malloc ? real.malloc(size) : NULL;
}

void *ms_engine_realloc_hook(void *ptr, size_t size)
{
    ms_runtime_init();
    return real.realloc ? real.realloc(ptr, size) : NULL;
}

void ms_engine_free_hook(void *ptr)
{
    if (ptr && real.free && !in_pool(ptr))
        real.free(ptr);
}

/*
 * Belt and braces: libmemscope.so is also linked with -Wl,--wrap for the
 * malloc family, so any direct call the engine objects make to it lands here
 * and is passed through unrecorded, with the guard up so that allocations
 * libc makes on the way are not recorded either.
 */
void *__wrap_malloc(size_t n);
void __wrap_free(void *p);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
    ms_self.guard++;
    void *p = malloc(n);
    ms_self.guard--;
    return p;
}

void __wrap_free(void *p)
{
    ms_self.guard++;
    free(p);
    ms_self.guard--;
}

void *__wrap_calloc(size_t n, size_t m)
{
    ms_self.guard++;
    void *p = calloc(n, m);
    ms_self.guard--;
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    ms_self.guard++;
    void *q = do_realloc(p, n, __builtin_return_address(0), __builtin_frame_address(0));
    ms_self.guard--;
    return q;
}
