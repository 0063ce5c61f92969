/*
 * trace_checkpoint.h - a folded history's checkpoint in a trace file
 * (trace_abi.h, CHECKPOINT and CHECKPOINT_BLOCKS blocks): taken in as the
 * blocks arrive (trace_read.c), then laid out as the store checkpoint
 * (store_abi.h, struct memscope_checkpoint) of the store the reader rebuilds,
 * so the store reader validates and applies it as it does any other
 * checkpoint (reader.c, replay.c): nothing of it is applied twice.
 */
#ifndef MS_TRACE_CHECKPOINT_H
#define MS_TRACE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "memscope/store_abi.h"
#include "memscope/trace_abi.h"

struct ms_trace_ck {
    int state;                                /* 0: none met; 1: its CHECKPOINT was read; -1: it cannot be read whole */
    char why[160];                            /* state -1: why */
    struct memscope_trace_checkpoint hdr;     /* the CHECKPOINT header */
    struct memscope_trace_ck_thread *threads; /* hdr.thread_count entries */
    struct memscope_trace_ck_mark *marks;     /* hdr.mark_count entries */
    struct memscope_trace_ck_block *blocks;   /* the entries received, in order */
    uint64_t nblocks;                         /* entries received */
    uint64_t blocks_cap;                      /* room in blocks */
    uint8_t *image;                           /* the store checkpoint laid out (ms_trace_ck_image) */
    uint64_t image_size;                      /* its bytes */
};

/* Takes a CHECKPOINT payload. 0; 1 (skipped: *why says why, and a second
 * CHECKPOINT makes the checkpoint unreadable); -ENOMEM. */
int ms_trace_ck_load(struct ms_trace_ck *ck, const uint8_t *raw, size_t len, const char **why);
/* Takes a CHECKPOINT_BLOCKS payload. 0; 1 (skipped: *why); -ENOMEM. */
int ms_trace_ck_load_blocks(struct ms_trace_ck *ck, const uint8_t *raw, size_t len, const char **why);
/* A CHECKPOINT (type) or CHECKPOINT_BLOCKS block could not be read (why):
 * the checkpoint cannot be read whole. */
void ms_trace_ck_damaged(struct ms_trace_ck *ck, unsigned type, const char *why);
/*
 * Once every block was read: lays out the store checkpoint at address addr
 * of the rebuilt store (threads cut at their first record: the trace's
 * EVENTS start there). Returns 0 (ck->image set; none when no checkpoint
 * was met), 1 (the checkpoint cannot be read whole: *why; nothing laid out)
 * or -ENOMEM.
 */
int ms_trace_ck_image(struct ms_trace_ck *ck, uint64_t addr, const char **why);
/* The highest thread serial the checkpoint names (0: none). */
uint32_t ms_trace_ck_max_serial(const struct ms_trace_ck *ck);
void ms_trace_ck_free(struct ms_trace_ck *ck);

#endif /* MS_TRACE_CHECKPOINT_H */
