/*
 * fold.h - what the engine offers the runtime's folding thread (c/runtime/
 * fold.c): reading a store up to a per-thread cut, in the record clock, and
 * the checkpoint that replay leaves. Kept apart from internal.h, whose names
 * (struct ms_thread) the runtime uses for its own.
 */
#ifndef MS_ENGINE_FOLD_H
#define MS_ENGINE_FOLD_H

#include <stddef.h>
#include <stdint.h>

#include "memscope/engine.h"
#include "memscope/store_abi.h"

/* ms_fold_cut.flags */
#define MS_FOLD_GONE 0x1u  /* the thread has exited and this cut covers all its records (checkpoint flag GONE) */
#define MS_FOLD_MERGE 0x2u /* the cut is the previous checkpoint's, the thread was GONE there and no chunk of it
                              is linked: its entry may be merged into the exited threads' one (store_abi.h) */

/* Where a fold cuts one thread's records. */
struct ms_fold_cut {
    uint32_t thread;  /* serial */
    uint32_t seq;     /* records of chunks below seq are folded, */
    uint64_t records; /* and the first `records` of chunk seq */
    uint32_t flags;   /* MS_FOLD_GONE, MS_FOLD_MERGE or 0 */
};
struct ms_read_opts {
    int raw_clock;                  /* keep record times as they are (no conversion to ns) */
    const struct ms_fold_cut *cuts; /* ascending serial: read only records before each thread's cut (threads not listed: none) */
    uint32_t ncuts;                 /* entries in cuts */
    int direct;                     /* the store is in this process and stays put while read (the folder's own):
                                       chunk records are read in place rather than through src */
};


/*
 * Reads the store at root_addr up to the cuts (raw record times; direct: the
 * store is this process's own, its chunk records read in place), replays
 * the previous checkpoint and those records, and writes the new checkpoint
 * into memory from map(ctx, bytes) (zeroed; NULL: -ENOMEM). Returns 0,
 * -ENOMEM, or the reader's error (err). The caller publishes it.
 */
int ms_fold_build(const struct memscope_source *src, int direct, uint64_t root_addr, const struct ms_fold_cut *cuts,
                  uint32_t ncuts, uint64_t horizon, void *(*map)(void *ctx, size_t bytes), void *ctx,
                  struct memscope_checkpoint **out, size_t *size, struct memscope_error *err);

/*
 * ms_engine_big_keep(1): the calling thread (the folder) keeps the engine's
 * big arrays mapped across folds and reuses them (alloc.c); (0), from the same
 * thread: unmaps them. Other threads are unaffected.
 */
void ms_engine_big_keep(int on);

#endif /* MS_ENGINE_FOLD_H */
