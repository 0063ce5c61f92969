/*
 * block.c - memscope_history_render_block: what is known of one address at a
 * snapshot's point. Whether it lies in a live block (and where in it), that
 * block's record, and the history of the block's address up to the point:
 * allocations, releases, reallocations (with the address a block came from
 * or moved to), labels, with times and threads. The listing keeps the most
 * recent MS_BLOCK_HISTORY_MAX entries and says how many earlier ones it left
 * out.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "render.h"

#define MS_BLOCK_HISTORY_MAX 100
#define MS_REALLOC_SCAN 4096 /* events searched for the other half of a realloc */

static const char *kind_word(unsigned kind)
{
    switch (kind) {
    case MEMSCOPE_REC_ALLOC:
        return "allocated";
    case MEMSCOPE_REC_FREE:
        return "freed";
    case MEMSCOPE_REC_REALLOC_FREE:
        return "released by realloc";
    case MEMSCOPE_REC_REALLOC_ALLOC:
        return "reallocated";
    case MEMSCOPE_REC_REALLOC_UNDO:
        return "realloc failed, kept";
    case MEMSCOPE_REC_LABEL:
        return "labeled";
    default:
        return "event";
    }
}

/* For a REALLOC_FREE at index i: the address realloc returned (same thread, forward). */
static int realloc_target(const struct memscope_history *h, uint64_t i, uint64_t limit, uint64_t *addr, int *failed)
{
    uint32_t t = MS_EV_THREAD(h->events[i].info);
    uint64_t j;

    for (j = i + 1; j < limit && j < i + MS_REALLOC_SCAN; j++) {
        const struct ms_event *e = &h->events[j];
        if (MS_EV_THREAD(e->info) != t)
            continue;
        if (MS_EV_KIND(e->info) == MEMSCOPE_REC_REALLOC_ALLOC) {
            *addr = e->address;
            *failed = 0;
            return 1;
        }
        if (MS_EV_KIND(e->info) == MEMSCOPE_REC_REALLOC_UNDO) {
            *failed = 1;
            return 1;
        }
        return 0;
    }
    return 0;
}

/* For a REALLOC_ALLOC at index i: the address its REALLOC_FREE released (same thread, backward). */
static int realloc_source(const struct memscope_history *h, uint64_t i, uint64_t *addr)
{
    uint32_t t = MS_EV_THREAD(h->events[i].info);
    uint64_t j, stop = i > MS_REALLOC_SCAN ? i - MS_REALLOC_SCAN : 0;

    for (j = i; j-- > stop;) {
        const struct ms_event *e = &h->events[j];
        if (MS_EV_THREAD(e->info) != t)
            continue;
        if (MS_EV_KIND(e->info) == MEMSCOPE_REC_REALLOC_FREE) {
            *addr = e->address;
            return 1;
        }
        return 0;
    }
    return 0;
}

static void render_history(const struct memscope_history *h, uint64_t addr, uint64_t limit,
                           const struct memscope_render_options *o, struct ms_buf *b)
{
    uint64_t i, total = 0, shown = 0, skip;
    struct ms_table t;

    for (i = 0; i < limit; i++)
        if (h->events[i].address == addr && MS_EV_KIND(h->events[i].info) != MEMSCOPE_REC_MARK)
            total++;
    ms_buf_printf(b, "\n%sHistory of 0x%" PRIx64 "%s (%" PRIu64 " events up to the snapshot point)\n",
                  o->color ? "\033[1m" : "", addr, o->color ? "\033[0m" : "", total);
    if (total == 0) {
        ms_buf_puts(b, "  no recorded event mentions this address\n");
        return;
    }
    skip = total > MS_BLOCK_HISTORY_MAX ? total - MS_BLOCK_HISTORY_MAX : 0;
    if (skip)
        ms_buf_printf(b, "  (%" PRIu64 " earlier events not shown)\n", skip);
    if (ms_table_init(&t, 5, (size_t)(total - skip) + 1) != 0) {
        b->failed = 1;
        return;
    }
    t.align_left[2] = 1;
    t.align_left[4] = 1;
    ms_table_set(&t, 0, 0, "time");
    ms_table_set(&t, 0, 1, "thread");
    ms_table_set(&t, 0, 2, "event");
    ms_table_set(&t, 0, 3, "size");
    ms_table_set(&t, 0, 4, "detail");
    for (i = 0; i < limit; i++) {
        const struct ms_event *e = &h->events[i];
        unsigned kind = MS_EV_KIND(e->info);
        char tm[32], sz[64], detail[MS_CELL];
        uint64_t other;
        int failed;
        size_t row;
        if (e->address != addr || kind == MEMSCOPE_REC_MARK)
            continue;
        if (skip) {
            skip--;
            continue;
        }
        row = (size_t)++shown;
        ms_format_time_us(e->time, tm, sizeof(tm));
        ms_table_set(&t, row, 0, "%s", tm);
        ms_table_set(&t, row, 1, "%u", h->threads[MS_EV_THREAD(e->info)].serial);
        ms_table_set(&t, row, 2, "%s", kind_word(kind));
        sz[0] = '\0';
        if (kind == MEMSCOPE_REC_ALLOC || kind == MEMSCOPE_REC_REALLOC_ALLOC)
            ms_size_text(o, e->size, sz, sizeof(sz));
        ms_table_set(&t, row, 3, "%s", sz);
        detail[0] = '\0';
        if (kind == MEMSCOPE_REC_REALLOC_ALLOC && realloc_source(h, i, &other) && other != addr)
            snprintf(detail, sizeof(detail), "moved from 0x%" PRIx64, other);
        else if (kind == MEMSCOPE_REC_REALLOC_ALLOC)
            snprintf(detail, sizeof(detail), "resized in place");
        else if (kind == MEMSCOPE_REC_REALLOC_FREE && realloc_target(h, i, h->nevents, &other, &failed)) {
            if (failed)
                snprintf(detail, sizeof(detail), "realloc failed");
            else if (other != addr)
                snprintf(detail, sizeof(detail), "moved to 0x%" PRIx64, other);
        } else if (kind == MEMSCOPE_REC_LABEL) {
            const struct ms_text *tx = &h->texts[e->size < h->ntexts ? e->size : 0];
            ms_format_label(h->pool + tx->name, h->pool + tx->type, detail, sizeof(detail));
        }
        ms_table_set(&t, row, 4, "%s", detail[0] ? detail : "-");
    }
    ms_table_render(&t, b, "  ", o->color);
    ms_table_free(&t);
}

MS_API int memscope_history_render_block(const struct memscope_history *history,
                                         const struct memscope_snapshot *snapshot, uint64_t addr,
                                         const struct memscope_render_options *opts, char **out, size_t *len)
{
    static const struct memscope_render_options defaults;
    const struct memscope_render_options *o = opts ? opts : &defaults;
    struct memscope_allocation a;
    struct ms_buf b;
    uint64_t limit;
    char sz[64], tm[32];

    if (!ms_history_valid(history) || !ms_snapshot_valid(snapshot) || !out || ms_render_options_check(o) != 0)
        return -EINVAL;
    *out = NULL;
    limit = snapshot->stats.events <= history->nevents ? snapshot->stats.events : history->nevents;
    ms_buf_init(&b);
    if (memscope_snapshot_find_block(snapshot, addr, &a) == 0) {
        ms_size_text(o, a.size, sz, sizeof(sz));
        if (addr == a.address)
            ms_buf_printf(&b, "0x%" PRIx64 " is the start of a live block of %s\n", addr, sz);
        else
            ms_buf_printf(&b, "0x%" PRIx64 " is %" PRIu64 " bytes into the live block of %s at 0x%" PRIx64 "\n", addr,
                          addr - a.address, sz, a.address);
        ms_format_time_us(a.time_ns, tm, sizeof(tm));
        ms_buf_printf(&b, "  block 0x%" PRIx64 ", %s, thread %u, allocated at %s", a.address, sz, a.thread, tm);
        if (a.label_name) {
            char label[MS_CELL];
            ms_format_label(a.label_name, a.label_type, label, sizeof(label));
            ms_buf_printf(&b, ", label %s", label);
        }
        ms_buf_puts(&b, "\n");
        ms_buf_printf(&b, "\n%sAllocated from%s (stack %u)\n", o->color ? "\033[1m" : "", o->color ? "\033[0m" : "",
                      a.stack);
        ms_render_stack_frames(snapshot, a.stack, o, &b, "  "); /* stacks.c */
        render_history(history, a.address, limit, o, &b);
    } else {
        ms_buf_printf(&b, "0x%" PRIx64 " is not in a live block at this point\n", addr);
        render_history(history, addr, limit, o, &b);
    }
    return ms_buf_finish(&b, out, len);
}
