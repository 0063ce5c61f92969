/*
 * snapshot.c - the queries on a snapshot: stats, threads, live blocks, find
 * a block by interior address, free. Every query first checks the handle's
 * magic, so a NULL, freed or foreign pointer gets -EINVAL rather than a crash
 * (a freed handle is caught as long as its memory was not reused).
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

int ms_snapshot_valid(const struct memscope_snapshot *snapshot)
{
    return snapshot && snapshot->magic == MS_SNAPSHOT_MAGIC;
}

MS_API void memscope_snapshot_free(struct memscope_snapshot *snapshot)
{
    if (!ms_snapshot_valid(snapshot))
        return;
    snapshot->magic = 0;
    ms_engine_free(snapshot->threads);
    ms_engine_big_free(snapshot->blocks);
    ms_engine_free(snapshot->labels);
    ms_engine_free(snapshot->pool);
    ms_stacks_free(&snapshot->stacks);
    ms_engine_free(snapshot);
}

MS_API int memscope_snapshot_stats(const struct memscope_snapshot *snapshot, struct memscope_stats *out)
{
    if (!ms_snapshot_valid(snapshot) || !out)
        return -EINVAL;
    *out = snapshot->stats;
    return 0;
}

MS_API size_t memscope_snapshot_thread_count(const struct memscope_snapshot *snapshot)
{
    return ms_snapshot_valid(snapshot) ? snapshot->nthreads : 0;
}

MS_API int memscope_snapshot_thread(const struct memscope_snapshot *snapshot, size_t index,
                                    struct memscope_thread_stats *out)
{
    if (!ms_snapshot_valid(snapshot) || !out)
        return -EINVAL;
    if (index >= snapshot->nthreads)
        return -ERANGE;
    *out = snapshot->threads[index];
    return 0;
}

/* Fills a public allocation view of block b. */
static void to_allocation(const struct memscope_snapshot *s, const struct ms_block *b, struct memscope_allocation *a)
{
    a->address = b->address;
    a->size = b->size;
    a->time_ns = b->time;
    a->thread = b->thread;
    a->stack = b->stack;
    a->label_name = b->label ? s->labels[b->label].name : NULL;
    a->label_type = b->label ? s->labels[b->label].type : NULL;
}

MS_API int memscope_snapshot_foreach(const struct memscope_snapshot *snapshot,
                                     int (*fn)(const struct memscope_allocation *block, void *arg), void *arg)
{
    size_t i;

    if (!ms_snapshot_valid(snapshot) || !fn)
        return -EINVAL;
    for (i = 0; i < snapshot->nblocks; i++) {
        struct memscope_allocation a;
        int rc;
        to_allocation(snapshot, &snapshot->blocks[i], &a);
        rc = fn(&a, arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

MS_API int memscope_snapshot_find_block(const struct memscope_snapshot *snapshot, uint64_t addr,
                                        struct memscope_allocation *out)
{
    size_t lo = 0, hi;
    const struct ms_block *b;

    if (!ms_snapshot_valid(snapshot) || !out)
        return -EINVAL;
    hi = snapshot->nblocks;
    /* The last block starting at or below addr. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (snapshot->blocks[mid].address <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -ENOENT;
    b = &snapshot->blocks[lo - 1];
    /* A zero-size block holds its own address only. */
    if (addr != b->address && addr - b->address >= b->size)
        return -ENOENT;
    to_allocation(snapshot, b, out);
    return 0;
}
