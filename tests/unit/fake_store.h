/*
 * fake_store.h - test helpers: a fake address space (segments at chosen
 * addresses) read through a memscope_source, and a builder that lays out a
 * store (root, chunks, text blocks) in it from hand-built event sequences.
 */
#ifndef MS_TEST_FAKE_STORE_H
#define MS_TEST_FAKE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "memscope/engine.h"
#include "memscope/store_abi.h"

#define FAKE_MAX_SEGS 256
#define FAKE_MAX_THREADS 80
#define FAKE_MAX_EVENTS 4096

struct fake_seg {
    uint64_t addr; /* where the bytes lie */
    size_t len;    /* bytes */
    uint8_t *data; /* owned */
};

struct fake_mem {
    struct fake_seg segs[FAKE_MAX_SEGS];
    int nsegs;
    unsigned long reads;  /* read calls made */
    size_t max_read;      /* largest read asked for */
};

/* Adds a zeroed segment; returns its bytes. */
void *fake_mem_add(struct fake_mem *m, uint64_t addr, size_t len);
/* The bytes at addr (NULL when not mapped). */
void *fake_mem_at(struct fake_mem *m, uint64_t addr);
void fake_mem_free(struct fake_mem *m);
struct memscope_source fake_mem_source(struct fake_mem *m);

#define FAKE_ROOT_ADDR UINT64_C(0x10000)
#define FAKE_TEXT_ADDR UINT64_C(0x20000)
#define FAKE_CHUNK_BASE UINT64_C(0x1000000)
#define FAKE_CHUNK_STRIDE UINT64_C(0x100000)

struct fake_thread {
    uint32_t serial;
    uint32_t tid;
    struct memscope_record ev[FAKE_MAX_EVENTS];
    size_t n;
};

struct fake_store {
    struct fake_mem mem;
    struct memscope_store_root *root;  /* in mem */
    uint8_t *text;                     /* text block segment */
    size_t text_used;                  /* entry bytes used */
    struct fake_thread th[FAKE_MAX_THREADS];
    int nthreads;
    uint64_t chunk_addr[FAKE_MAX_SEGS]; /* chunks in link order (0: newest) */
    int nchunks;
};

/* A new store (heap allocated: it is large): root at FAKE_ROOT_ADDR, a ns clock with origin 0. */
struct fake_store *fs_new(void);
void fs_delete(struct fake_store *s);
/* Appends a record for thread serial `thread` (created on first use, tid = 1000 + serial). */
void fs_ev(struct fake_store *s, uint32_t thread, unsigned kind, uint64_t time, uint64_t addr, uint64_t size);
#define fs_alloc(s, th, t, a, n) fs_ev((s), (th), MEMSCOPE_REC_ALLOC, (t), (a), (n))
#define fs_free(s, th, t, a) fs_ev((s), (th), MEMSCOPE_REC_FREE, (t), (a), 0)
/* Adds a text entry with 1 or 2 strings; returns its address. */
uint64_t fs_text(struct fake_store *s, const char *a, const char *b);
void fs_label(struct fake_store *s, uint32_t thread, uint64_t time, uint64_t addr, const char *name, const char *type);
void fs_mark(struct fake_store *s, uint32_t thread, uint64_t time, const char *name);
/* Lays the chunks out (capacity records each; threads interleaved in the list). */
void fs_build(struct fake_store *s, uint64_t capacity);
struct memscope_chunk *fs_chunk(struct fake_store *s, int index); /* 0: newest linked */
/* Folds with the engine's fold (ms_fold_build: cuts ascending by serial) and
 * links the checkpoint at addr, moved there as the runtime's fold.c moves it;
 * returns it (in the fake memory), or NULL when the build failed. */
/* Unlinks every chunk of thread serial from the list (as a fold reuses a wholly folded thread's chunks). */
void fs_unlink_thread(struct fake_store *s, uint32_t serial);
struct ms_fold_cut;
struct memscope_checkpoint *fs_fold(struct fake_store *s, const struct ms_fold_cut *cuts, uint32_t ncuts,
                                    uint64_t horizon, uint64_t addr);
/* Opens the history; returns the engine's code. */
int fs_open(struct fake_store *s, struct memscope_history **h, struct memscope_error *err);

#endif
