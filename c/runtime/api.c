/*
 * api.c - the in-process calls of memscope.h that belong to the runtime:
 * memscope_snapshot_take (the engine over a source that reads this process's
 * own memory), memscope_label and memscope_mark.
 *
 * The rest of memscope.h (snapshot queries, memscope_snapshot_free,
 * memscope_strerror) is the engine's, linked into the same library. The
 * engine's allocations in libmemscope.so are never recorded: its calls to
 * the malloc family are redirected by --wrap (see hooks.c), and
 * memscope_snapshot_take raises the thread's guard around the whole build.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "memscope/engine.h"
#include "memscope/memscope.h"
#include "runtime.h"

#define MS_EXPORT __attribute__((visibility("default")))

/*
 * Publishes the calling thread's count (a signal handler may have appended
 * last) and the drops it has not added to the root yet.
 */
static void republish_self(void)
{
    struct ms_thread *t = &ms_self;
    if (t->chunk && t->depth == 0)
        __atomic_store_n(&t->chunk->count, t->reserved, __ATOMIC_RELEASE);
    ms_store_flush_dropped(t);
}

#ifndef MS_NO_ENGINE
/*
 * The memory source over this process. process_vm_readv on ourselves turns
 * an unreadable address into -EFAULT instead of a crash, which is what the
 * engine's validation expects; memcpy is the fallback where it is refused.
 */
static int self_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    static int use_memcpy;
    struct iovec local = {buf, len}, remote = {(void *)(uintptr_t)addr, len};

    if (!__atomic_load_n(&use_memcpy, __ATOMIC_RELAXED)) {
        ssize_t got = syscall(SYS_process_vm_readv, (pid_t)syscall(SYS_getpid), &local, 1UL, &remote, 1UL, 0UL);
        if (got == (ssize_t)len)
            return 0;
        if (got >= 0 || errno == EFAULT)
            return -EFAULT;
        __atomic_store_n(&use_memcpy, 1, __ATOMIC_RELAXED);
    }
    memcpy(buf, (const void *)(uintptr_t)addr, len);
    return 0;
}
#endif

MS_EXPORT int memscope_snapshot_take(struct memscope_snapshot **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!ms_store_active())
        return -ENODATA;
#ifdef MS_NO_ENGINE
    return -ENOSYS;
#else
    struct memscope_source src = {self_read, NULL};
    struct memscope_history *history = NULL;
    int rc;

    republish_self();
    ms_runtime_guard_enter();
    ms_fold_hold(); /* a fold would make the read start over */
    rc = memscope_history_open(&src, (uint64_t)(uintptr_t)&memscope_store_root, &history, NULL);
    ms_fold_release();
    if (rc == 0)
        rc = memscope_history_snapshot(history, NULL, out);
    memscope_history_close(history);
    ms_runtime_guard_leave();
    return rc;
#endif
}

static int is_block_event(uint32_t kind)
{
    return kind >= MEMSCOPE_REC_ALLOC && kind <= MEMSCOPE_REC_REALLOC_UNDO;
}

static int is_live_kind(uint32_t kind)
{
    return kind == MEMSCOPE_REC_ALLOC || kind == MEMSCOPE_REC_REALLOC_ALLOC || kind == MEMSCOPE_REC_REALLOC_UNDO;
}

/*
 * Scans records [0, n) of a chunk backwards for the latest block event at
 * addr newer than *best_time (any time when *found is 0), stopping at the
 * first record not newer than the best match (a thread's times increase).
 */
static void scan_chunk(const struct memscope_chunk *c, uint64_t n, uint64_t addr, int *found, uint64_t *best_time,
                       uint32_t *best_kind)
{
    const struct memscope_record *r = (const struct memscope_record *)(c + 1);

    if (n > c->capacity)
        n = c->capacity;
    while (n-- > 0) {
        if (*found && r[n].time <= *best_time)
            return;
        if (r[n].address == addr && is_block_event(MEMSCOPE_RECORD_KIND(r[n].info))) {
            *found = 1;
            *best_time = r[n].time;
            *best_kind = MEMSCOPE_RECORD_KIND(r[n].info);
            return;
        }
    }
}

/*
 * Is addr the start of a live block, by the store? The calling thread's own
 * chain first (where a block's allocation usually is, found at once), then
 * every other thread's chunks, each only as far back as records newer than
 * the best match. An unknown pointer costs a full scan: an error path.
 */
static int is_live(uint64_t addr)
{
    struct memscope_store_root *root = &memscope_store_root;
    struct ms_thread *t = &ms_self;
    uint64_t best_time = 0;
    uint32_t best_kind = 0;
    int found = 0;

    for (const struct memscope_chunk *c = t->chunk; c && !found;
         c = (const struct memscope_chunk *)(uintptr_t)c->thread_prev)
        scan_chunk(c, __atomic_load_n(&c->count, __ATOMIC_ACQUIRE), addr, &found, &best_time, &best_kind);

    uint64_t limit = __atomic_load_n(&root->chunk_count, __ATOMIC_ACQUIRE) + 64;
    const struct memscope_chunk *c =
        (const struct memscope_chunk *)(uintptr_t)__atomic_load_n(&root->chunks, __ATOMIC_ACQUIRE);
    for (; c && limit-- > 0; c = (const struct memscope_chunk *)(uintptr_t)c->next) {
        if (t->serial != 0 && c->thread == t->serial)
            continue; /* already walked */
        scan_chunk(c, __atomic_load_n(&c->count, __ATOMIC_ACQUIRE), addr, &found, &best_time, &best_kind);
    }
    return found && is_live_kind(best_kind);
}

static int check_name(const char *s)
{
    if (!s)
        return -EINVAL;
    return strnlen(s, MS_TEXT_STRING_MAX + 1) > MS_TEXT_STRING_MAX ? -EINVAL : 0;
}

MS_EXPORT int memscope_label(const void *ptr, const char *name, const char *type)
{
    uint64_t text;

    if (!ptr || check_name(name) || check_name(type))
        return -EINVAL;
    if (!ms_store_active())
        return -ENODATA;
    republish_self();
    if (!is_live((uint64_t)(uintptr_t)ptr))
        return -ENOENT;
    text = ms_text_entry(name, type, 2);
    if (!text)
        return -ENOSPC;
    if (ms_append(MEMSCOPE_REC_LABEL, (uint64_t)(uintptr_t)ptr, text, ms_clock_now()) != 0)
        return -ENOSPC;
    return 0;
}

MS_EXPORT int memscope_mark(const char *name)
{
    uint64_t text;

    if (check_name(name))
        return -EINVAL;
    if (!ms_store_active())
        return -ENODATA;
    text = ms_text_entry(name, NULL, 1);
    if (!text)
        return -ENOSPC;
    if (ms_append(MEMSCOPE_REC_MARK, 0, text, ms_clock_now()) != 0)
        return -ENOSPC;
    return 0;
}

/*
 * A fallback for builds without the engine; the engine's definition (strong)
 * replaces it when both are linked into libmemscope.so.
 */
MS_EXPORT __attribute__((weak)) const char *memscope_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case -EINVAL: return "invalid argument";
    case -ENOENT: return "no such block, mark or store";
    case -ENODATA: return "the memscope runtime is not recording in this process";
    case -ENOSPC: return "the memscope store budget is reached";
    case -ENOMEM: return "out of memory";
    case -ENOSYS: return "this libmemscope was built without the snapshot engine";
    default: return "unknown memscope error";
    }
}
