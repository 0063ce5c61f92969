/*
 * trace_checkpoint.c - see trace_checkpoint.h. The checks here are only
 * those the layout needs (sizes, counts, pieces in order); whether the
 * checkpoint adds up (blocks against current_memory, threads listed, marks
 * in order) is the store reader's to say, as for a checkpoint in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "trace_checkpoint.h"

int ms_trace_ck_load(struct ms_trace_ck *ck, const uint8_t *raw, size_t len, const char **why)
{
    struct memscope_trace_checkpoint h;
    size_t tbytes, mbytes;

    if (ck->state != 0) {
        *why = "a second checkpoint block";
        if (ck->state > 0)
            snprintf(ck->why, sizeof(ck->why), "the file holds two CHECKPOINT blocks");
        ck->state = -1;
        return 1;
    }
    if (len < sizeof(h)) {
        *why = "checkpoint payload shorter than its header";
        return 1;
    }
    memcpy(&h, raw, sizeof(h));
    tbytes = (size_t)h.thread_count * sizeof(*ck->threads);
    mbytes = (size_t)h.mark_count * sizeof(*ck->marks);
    if (h.thread_count > 0xffffffu || h.mark_count > MEMSCOPE_CHECKPOINT_MAX_MARKS ||
        len != sizeof(h) + tbytes + mbytes) {
        *why = "checkpoint header out of range (counts do not match the payload)";
        return 1;
    }
    ck->threads = ms_engine_alloc(tbytes ? tbytes : 1);
    ck->marks = ms_engine_alloc(mbytes ? mbytes : 1);
    if (!ck->threads || !ck->marks)
        return -ENOMEM;
    memcpy(ck->threads, raw + sizeof(h), tbytes);
    memcpy(ck->marks, raw + sizeof(h) + tbytes, mbytes);
    ck->hdr = h;
    ck->state = 1;
    return 0;
}

int ms_trace_ck_load_blocks(struct ms_trace_ck *ck, const uint8_t *raw, size_t len, const char **why)
{
    struct memscope_trace_ck_blocks h;

    if (len < sizeof(h)) {
        *why = "checkpoint blocks payload shorter than its header";
        return 1;
    }
    memcpy(&h, raw, sizeof(h));
    if (h.count == 0 || h.count > MEMSCOPE_TRACE_MAX_CK_BLOCKS ||
        len != sizeof(h) + (size_t)h.count * sizeof(*ck->blocks)) {
        *why = "checkpoint blocks header out of range";
        return 1;
    }
    if (ck->state != 1) {
        *why = ck->state == 0 ? "live blocks of a checkpoint whose CHECKPOINT block was not read"
                              : "live blocks of a checkpoint that cannot be read whole";
        if (ck->state == 0)
            snprintf(ck->why, sizeof(ck->why), "its live blocks came before its CHECKPOINT block, or without one");
        ck->state = -1;
        return 1;
    }
    if (h.first_block != ck->nblocks || ck->hdr.block_count - ck->nblocks < h.count) {
        /* Out of order or past the count: the pieces cannot be put together. */
        *why = h.first_block < ck->nblocks ? "checkpoint blocks repeat blocks already read"
                                           : "checkpoint blocks out of order or past its block_count";
        snprintf(ck->why, sizeof(ck->why),
                 "its live blocks came out of order (a CHECKPOINT_BLOCKS block went missing or came twice)");
        ck->state = -1;
        return 1;
    }
    if (ck->nblocks + h.count > ck->blocks_cap) { /* grown with what arrives, never to a count the file claims */
        uint64_t ncap = ck->blocks_cap ? ck->blocks_cap : 4096;
        while (ncap < ck->nblocks + h.count)
            ncap *= 2;
        struct memscope_trace_ck_block *nb = ms_engine_realloc(ck->blocks, ncap * sizeof(*nb));
        if (!nb)
            return -ENOMEM;
        ck->blocks = nb;
        ck->blocks_cap = ncap;
    }
    memcpy(ck->blocks + ck->nblocks, raw + sizeof(h), (size_t)h.count * sizeof(*ck->blocks));
    ck->nblocks += h.count;
    return 0;
}

void ms_trace_ck_damaged(struct ms_trace_ck *ck, unsigned type, const char *why)
{
    if (ck->state < 0)
        return; /* the first reason stands */
    snprintf(ck->why, sizeof(ck->why), "%s block is damaged (%s)",
             type == MEMSCOPE_TRACE_CHECKPOINT ? "its CHECKPOINT" : "a CHECKPOINT_BLOCKS", why ? why : "unreadable");
    ck->state = -1;
}

int ms_trace_ck_image(struct ms_trace_ck *ck, uint64_t addr, const char **why)
{
    const struct memscope_trace_checkpoint *h = &ck->hdr;
    struct memscope_checkpoint *c;
    struct memscope_checkpoint_thread *ct;
    struct memscope_checkpoint_block *cb;
    struct memscope_checkpoint_mark *cm;
    uint64_t i, size;

    if (ck->state == 0)
        return 0;
    if (ck->state < 0) {
        *why = ck->why;
        return 1;
    }
    if (ck->nblocks != h->block_count) {
        *why = "some of its live blocks are missing (a CHECKPOINT_BLOCKS block was damaged or lost)";
        return 1;
    }
    size = sizeof(*c) + h->thread_count * sizeof(*ct) + h->block_count * sizeof(*cb) + h->mark_count * sizeof(*cm);
    ck->image = ms_engine_big_alloc(size, 1);
    if (!ck->image)
        return -ENOMEM;
    ck->image_size = size;
    c = (struct memscope_checkpoint *)ck->image;
    ct = (struct memscope_checkpoint_thread *)(c + 1);
    cb = (struct memscope_checkpoint_block *)(ct + h->thread_count);
    cm = (struct memscope_checkpoint_mark *)(cb + h->block_count);
    c->magic = MEMSCOPE_CHECKPOINT_MAGIC;
    c->header_size = sizeof(*c);
    c->thread_size = sizeof(*ct);
    c->block_size = sizeof(*cb);
    c->mark_size = sizeof(*cm);
    c->map_size = size;
    c->generation = h->generation;
    c->horizon = h->horizon;
    c->folded_events = h->folded_events;
    c->total_allocations = h->total_allocations;
    c->total_deallocations = h->total_deallocations;
    c->total_allocated = h->total_allocated;
    c->total_deallocated = h->total_deallocated;
    c->current_memory = h->current_memory;
    c->peak_memory = h->peak_memory;
    c->peak_time = h->peak_time;
    c->unmatched_deallocations = h->unmatched_deallocations;
    c->reallocations = h->reallocations;
    c->overlapping_allocations = h->overlapping_allocations;
    c->thread_count = h->thread_count;
    c->threads = addr + ((uint8_t *)ct - ck->image);
    c->block_count = h->block_count;
    c->blocks = addr + ((uint8_t *)cb - ck->image);
    c->mark_count = h->mark_count;
    c->marks = h->mark_count ? addr + ((uint8_t *)cm - ck->image) : 0;
    c->marks_dropped = h->marks_dropped;
    for (i = 0; i < h->thread_count; i++) {
        const struct memscope_trace_ck_thread *t = &ck->threads[i];
        ct[i] = (struct memscope_checkpoint_thread){
            .thread = t->thread, .tid = t->tid, .folded_seq = 0, .folded_records = 0, /* EVENTS start at the cut */
            .flags = t->flags, .allocations = t->allocations, .deallocations = t->deallocations,
            .allocated_bytes = t->allocated_bytes, .released_bytes = t->released_bytes,
            .current_memory = t->current_memory, .live_blocks = t->live_blocks, .peak_memory = t->peak_memory,
            .peak_time = t->peak_time, .stash_address = t->stash_address, .stash_size = t->stash_size,
            .stash_time = t->stash_time, .stash_label = t->stash_label, .stash_thread = t->stash_thread,
            .stash_stack = t->stash_stack, .merged = t->merged};
    }
    for (i = 0; i < h->block_count; i++) {
        const struct memscope_trace_ck_block *b = &ck->blocks[i];
        cb[i] = (struct memscope_checkpoint_block){.address = b->address, .size = b->size, .time = b->time,
                                                    .label = b->label, .thread = b->thread, .stack = b->stack};
    }
    for (i = 0; i < h->mark_count; i++) {
        const struct memscope_trace_ck_mark *m = &ck->marks[i];
        cm[i] = (struct memscope_checkpoint_mark){.time = m->time, .text = m->text, .events = m->events,
                                                   .live_bytes = m->live_bytes};
    }
    return 0;
}

uint32_t ms_trace_ck_max_serial(const struct ms_trace_ck *ck)
{
    uint32_t max = 0;

    for (uint32_t i = 0; ck->state == 1 && i < ck->hdr.thread_count; i++)
        if (ck->threads[i].thread > max)
            max = ck->threads[i].thread;
    return max;
}

void ms_trace_ck_free(struct ms_trace_ck *ck)
{
    ms_engine_free(ck->threads);
    ms_engine_free(ck->marks);
    ms_engine_free(ck->blocks);
    ms_engine_big_free(ck->image);
    memset(ck, 0, sizeof(*ck));
}
