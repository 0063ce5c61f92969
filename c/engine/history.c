/*
 * history.c - opening, closing and describing a history (a store read into
 * host memory, its events in replay order). The reading itself is in
 * reader.c, the ordering in order.c, the replay in replay.c.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "memscope/trace.h"

#define MS_FOLD_RETRIES 15 /* reads again after a fold raced the read */

static void history_release(struct memscope_history *h)
{
    ms_engine_big_free(h->events);
    ms_engine_free(h->threads);
    ms_engine_free(h->texts);
    ms_engine_free(h->pool);
    ms_stacks_free(&h->stacks);
    ms_checkpoint_free(&h->ck);
    memscope_modules_free(h->modules);
    h->magic = 0;
    ms_engine_free(h);
}

MS_API int memscope_history_open(const struct memscope_source *src, uint64_t root_addr,
                                 struct memscope_history **out, struct memscope_error *err)
{
    struct memscope_history *h;
    int rc;

    if (err)
        err->message[0] = '\0';
    if (!src || !src->read || !out)
        return ms_error_set(err, -EINVAL, "invalid argument: a source with a read function and an out pointer are required");
    *out = NULL;
    /* A live process may fold while we read (root.fold_seq): read again, a
     * few times, then say so. */
    for (int attempt = 0;; attempt++) {
        h = ms_engine_calloc(1, sizeof(*h));
        if (!h)
            return ms_error_set(err, -ENOMEM, "out of memory");
        rc = ms_history_read(src, root_addr, h, err);
        if (rc == 0)
            break;
        history_release(h);
        if (rc != -ESTALE)
            return rc;
        if (attempt >= MS_FOLD_RETRIES)
            return ms_error_set(err, -EAGAIN, "the store was being folded on each of %d reads (the process is "
                                "running and near its budget); try again, or stop the process first", attempt + 1);
    }
    h->magic = MS_HISTORY_MAGIC;
    *out = h;
    return 0;
}

MS_API void memscope_history_close(struct memscope_history *history)
{
    if (!ms_history_valid(history))
        return;
    history_release(history);
}

MS_API int memscope_history_info(const struct memscope_history *history, struct memscope_history_info *out)
{
    if (!ms_history_valid(history) || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->events = history->nevents;
    if (history->nevents) {
        out->first_time_ns = history->events[0].time;
        out->last_time_ns = history->events[history->nevents - 1].time;
    }
    out->dropped_events = history->dropped_events;
    out->chunk_bytes = history->chunk_bytes;
    out->budget_bytes = history->budget_bytes;
    out->marks = history->nmarks + history->ck.nmarks + history->ck.marks_dropped; /* folded ones too */
    out->pid = history->pid;
    out->threads = history->nthreads; /* the exited threads' entry counts as the threads it holds */
    if (history->nthreads && history->threads[0].serial == 0)
        out->threads = (uint32_t)(history->nthreads - 1 + history->ck.merged);
    out->abi_version = history->abi_version;
    out->horizon_ns = history->ck.present ? history->ck.horizon_ns : 0;
    out->folded_events = history->ck.folded_events;
    return 0;
}
