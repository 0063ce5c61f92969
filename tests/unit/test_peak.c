/*
 * test_peak.c - the snapshot at the peak in one replay (replay.c, struct
 * keep): what happens after the peak (frees, reallocations growing in place,
 * shrinking, moving or failing, relabels, overlaps, a new thread, marks) is
 * given back exactly, so the snapshot equals, field by field, the one two
 * replays give (the first to find the peak, the second up to it), and the
 * figures known by hand. A cap on the blocks set aside that overflows falls
 * back to the second replay, unless a later peak makes the overflow moot.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_store.h"
#include "fold.h"
#include "internal.h"

#define CK_ADDR UINT64_C(0x30000)

/* Asserts that a and b hold the same figures, threads, blocks and labels
 * (b's point kind aside when kind_too is 0). */
static void assert_same(const struct memscope_snapshot *a, const struct memscope_snapshot *b, int kind_too)
{
    size_t i;

    assert_memory_equal(&a->stats, &b->stats, sizeof(a->stats));
    if (kind_too)
        assert_int_equal(a->point_kind, b->point_kind);
    assert_int_equal(a->pid, b->pid);
    assert_int_equal(a->merged, b->merged);
    assert_int_equal(a->nthreads, b->nthreads);
    if (a->nthreads)
        assert_memory_equal(a->threads, b->threads, a->nthreads * sizeof(*a->threads));
    assert_int_equal(a->nblocks, b->nblocks);
    for (i = 0; i < a->nblocks; i++) { /* field by field: struct ms_block has padding */
        assert_int_equal(a->blocks[i].address, b->blocks[i].address);
        assert_int_equal(a->blocks[i].size, b->blocks[i].size);
        assert_int_equal(a->blocks[i].time, b->blocks[i].time);
        assert_int_equal(a->blocks[i].thread, b->blocks[i].thread);
        assert_int_equal(a->blocks[i].label, b->blocks[i].label);
        assert_int_equal(a->blocks[i].stack, b->blocks[i].stack);
    }
    assert_int_equal(a->nlabels, b->nlabels);
    for (i = 1; i < a->nlabels; i++) {
        assert_string_equal(a->labels[i].name, b->labels[i].name);
        assert_string_equal(a->labels[i].type, b->labels[i].type);
    }
}

/*
 * The snapshot at the peak of h in one replay with at most keep_max blocks
 * set aside (*passes: the replays it took), checked against the two-replay
 * path (nothing may be set aside) and against the snapshot at the event the
 * peak is located at (what the second of two replays does); the snapshot at
 * the end the same replay gives is checked against memscope_history_snapshot's.
 */
static struct memscope_snapshot *at_peak(struct memscope_history *h, size_t keep_max, int *passes)
{
    struct memscope_snapshot *one = NULL, *two = NULL, *ev = NULL, *end = NULL;
    struct memscope_point_info pi;
    struct memscope_point peak = {MEMSCOPE_AT_PEAK, 0, NULL}, at = {MEMSCOPE_AT_EVENT, 0, NULL};
    struct memscope_error err;
    int p2 = 0;

    assert_int_equal(ms_snapshot_at_peak(h, keep_max, &one, NULL, passes), 0);
    assert_int_equal(one->point_kind, MEMSCOPE_AT_PEAK);
    assert_int_equal(ms_snapshot_at_peak(h, 0, &two, NULL, &p2), 0);
    assert_same(one, two, 1);
    assert_int_equal(memscope_history_locate(h, &peak, &pi, &err), 0);
    at.value = pi.events;
    assert_int_equal(memscope_history_snapshot(h, &at, &ev), 0);
    assert_int_equal(one->stats.time_ns, pi.time_ns);
    ev->stats.time_ns = pi.time_ns; /* event 0 of a folded store is at the horizon; a peak never exceeded at 0 */
    assert_same(one, ev, 0);
    assert_int_equal(one->stats.events, pi.events);
    memscope_snapshot_free(two);
    memscope_snapshot_free(ev);
    /* The same replay gives the snapshot at the end, whichever path the peak took. */
    assert_int_equal(memscope_history_snapshot(h, NULL, &ev), 0);
    assert_int_equal(ms_snapshot_at_peak(h, keep_max, &two, &end, NULL), 0);
    assert_same(one, two, 1);
    assert_same(ev, end, 1);
    memscope_snapshot_free(two);
    memscope_snapshot_free(end);
    assert_int_equal(ms_snapshot_at_peak(h, 0, &two, &end, NULL), 0);
    assert_same(one, two, 1);
    assert_same(ev, end, 1);
    memscope_snapshot_free(two);
    memscope_snapshot_free(end);
    memscope_snapshot_free(ev);
    return one;
}

static struct memscope_history *open_store(struct fake_store *s)
{
    struct memscope_history *h = NULL;
    struct memscope_error err;

    fs_build(s, 8);
    assert_int_equal(fs_open(s, &h, &err), 0);
    return h;
}

/* The label of snapshot block i ("" when none). */
static const char *label_of(const struct memscope_snapshot *snap, size_t i)
{
    return snap->blocks[i].label ? snap->labels[snap->blocks[i].label].name : "";
}

static void expect_block(const struct memscope_snapshot *snap, size_t i, uint64_t address, uint64_t size,
                         uint64_t time, uint32_t thread, const char *label)
{
    assert_int_equal(snap->blocks[i].address, address);
    assert_int_equal(snap->blocks[i].size, size);
    assert_int_equal(snap->blocks[i].time, time);
    assert_int_equal(snap->blocks[i].thread, thread);
    assert_string_equal(label_of(snap, i), label);
}

/*
 * Live bytes climb to 1038 at t=45 (event 18), never reached again. Before
 * it: a labelled block moved by realloc (its label goes along), a cross-thread
 * free, a realloc of thread 2's block P by thread 4 still pending, and an
 * overlap at 0xd000 whose release (thread 2's, at t=46, after the peak) the
 * look-ahead applies before the peak. After it, every block live at the peak
 * but one is released or changed: freed by a new thread (D), reallocated in
 * place to grow (B), shrunk and moved (A'), relabelled (E), released by a
 * realloc that fails and live again (F), taken as released by an overlap (K)
 * and by a look-ahead release from another new thread (M); thread 4's realloc
 * fails, so P (not live at the peak) is live again and thread 2's figures
 * change first through it; a new thread allocates and frees, reuses D's
 * address; a free is unmatched; marks.
 */
static struct fake_store *after_the_peak(void)
{
    struct fake_store *s = fs_new();

    fs_alloc(s, 1, 10, 0x1000, 100); /* A */
    fs_label(s, 1, 11, 0x1000, "a_buf", "char");
    fs_mark(s, 1, 12, "start");
    fs_alloc(s, 2, 20, 0x2000, 200); /* B */
    fs_alloc(s, 1, 25, 0x3000, 50);  /* C */
    fs_label(s, 2, 26, 0x3000, "c_obj", "struct c");
    fs_free(s, 2, 30, 0x3000);
    fs_alloc(s, 1, 35, 0x4000, 400); /* D */
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_FREE, 36, 0x1000, 0);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_ALLOC, 37, 0x5000, 150); /* A' */
    fs_alloc(s, 2, 38, 0xe000, 3);                            /* P */
    fs_ev(s, 4, MEMSCOPE_REC_REALLOC_FREE, 39, 0xe000, 0);
    fs_alloc(s, 2, 40, 0x6000, 250);                          /* E */
    fs_alloc(s, 2, 41, 0xb000, 1);                            /* K */
    fs_alloc(s, 2, 42, 0xc000, 5);                            /* M */
    fs_alloc(s, 2, 43, 0xd000, 8);                            /* X */
    fs_alloc(s, 1, 44, 0xd000, 8);                            /* X', over X: thread 2's free at 46 goes first */
    fs_alloc(s, 1, 45, 0x7000, 24);                           /* F: the peak, 1038 */
    fs_free(s, 2, 46, 0xd000);
    fs_free(s, 3, 48, 0x4000);
    fs_ev(s, 4, MEMSCOPE_REC_REALLOC_UNDO, 49, 0xe000, 0); /* P live again, thread 2's first change */
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_FREE, 51, 0x2000, 0);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_ALLOC, 52, 0x2000, 300); /* B grows in place */
    fs_ev(s, 2, MEMSCOPE_REC_REALLOC_FREE, 55, 0x5000, 0);
    fs_ev(s, 2, MEMSCOPE_REC_REALLOC_ALLOC, 56, 0x8000, 10); /* A' shrinks and moves */
    fs_label(s, 1, 57, 0x6000, "e_late", "int");
    fs_mark(s, 1, 58, "after");
    fs_alloc(s, 3, 60, 0x9000, 300);
    fs_free(s, 3, 61, 0x9000);
    fs_alloc(s, 3, 62, 0x4000, 16); /* D's address */
    fs_ev(s, 2, MEMSCOPE_REC_REALLOC_FREE, 63, 0x7000, 0);
    fs_ev(s, 2, MEMSCOPE_REC_REALLOC_UNDO, 64, 0x7000, 0); /* F's realloc failed */
    fs_free(s, 1, 65, 0x9999);                            /* unmatched */
    fs_alloc(s, 2, 66, 0xa000, 400);                      /* 1017: no new peak */
    fs_alloc(s, 3, 67, 0xb000, 2);                        /* over K, no release near: K taken as released */
    fs_alloc(s, 1, 68, 0xc000, 6);                        /* over M: thread 5's free at 69 goes first */
    fs_free(s, 5, 69, 0xc000);                            /* thread 5's first event, applied at 68 */
    fs_mark(s, 1, 70, "end");
    return s;
}

static void test_peak_after_the_peak(void **state)
{
    struct fake_store *s = after_the_peak();
    struct memscope_history *h = open_store(s);
    struct memscope_snapshot *snap, *end = NULL;
    const struct memscope_stats *st;
    const struct memscope_thread_stats *t1, *t2, *t4;
    int passes = 0;

    (void)state;
    snap = at_peak(h, MS_PEAK_KEEP_ALL, &passes);
    assert_int_equal(passes, 1);
    st = &snap->stats;
    assert_int_equal(st->events, 18);
    assert_int_equal(st->time_ns, 45);
    assert_int_equal(st->current_memory, 1038);
    assert_int_equal(st->peak_memory, 1038);
    assert_int_equal(st->peak_time_ns, 45);
    assert_int_equal(st->active_allocations, 8);
    assert_int_equal(st->total_allocations, 12);
    assert_int_equal(st->total_deallocations, 4); /* C, A and P (reallocs), X (applied early) */
    assert_int_equal(st->total_allocated, 1199);
    assert_int_equal(st->total_deallocated, 161);
    assert_int_equal(st->reallocations, 1);
    assert_int_equal(st->unmatched_deallocations, 0);
    assert_int_equal(st->overlapping_allocations, 0);
    assert_int_equal(st->threads, 3); /* threads 3 and 5 came after */
    assert_int_equal(snap->nthreads, 3);
    t1 = &snap->threads[0];
    t2 = &snap->threads[1];
    t4 = &snap->threads[2];
    assert_int_equal(t1->thread, 1);
    assert_int_equal(t1->allocations, 6);
    assert_int_equal(t1->deallocations, 1);
    assert_int_equal(t1->allocated_bytes, 732);
    assert_int_equal(t1->released_bytes, 150);
    assert_int_equal(t1->current_memory, 582);
    assert_int_equal(t1->live_blocks, 4);
    assert_int_equal(t1->peak_memory, 582);
    assert_int_equal(t1->peak_time_ns, 45);
    assert_int_equal(t2->thread, 2);
    assert_int_equal(t2->allocations, 6);
    assert_int_equal(t2->deallocations, 2);
    assert_int_equal(t2->allocated_bytes, 467);
    assert_int_equal(t2->released_bytes, 11);
    assert_int_equal(t2->current_memory, 456);
    assert_int_equal(t2->live_blocks, 4);
    assert_int_equal(t2->peak_memory, 464); /* at 43, before X left */
    assert_int_equal(t2->peak_time_ns, 43);
    assert_int_equal(t4->thread, 4);
    assert_int_equal(t4->deallocations, 1);
    assert_int_equal(t4->allocations, 0);
    assert_int_equal(t4->current_memory, 0);
    assert_int_equal(snap->nblocks, 8);
    expect_block(snap, 0, 0x2000, 200, 20, 2, "");
    expect_block(snap, 1, 0x4000, 400, 35, 1, "");
    expect_block(snap, 2, 0x5000, 150, 37, 1, "a_buf");
    expect_block(snap, 3, 0x6000, 250, 40, 2, "");
    expect_block(snap, 4, 0x7000, 24, 45, 1, "");
    expect_block(snap, 5, 0xb000, 1, 41, 2, "");
    expect_block(snap, 6, 0xc000, 5, 42, 2, "");
    expect_block(snap, 7, 0xd000, 8, 44, 1, "");
    assert_int_equal(snap->nlabels, 2); /* c_obj's block is gone, e_late came after */
    /* The end is as it was: the at-peak replay left nothing behind. */
    assert_int_equal(memscope_history_snapshot(h, NULL, &end), 0);
    assert_int_equal(end->stats.current_memory, 1019);
    assert_int_equal(end->stats.peak_memory, 1038);
    assert_int_equal(end->stats.overlapping_allocations, 1);
    assert_int_equal(end->stats.unmatched_deallocations, 1);
    assert_int_equal(end->stats.threads, 5);
    memscope_snapshot_free(end);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(s);
}

/* Seven blocks live at the peak are set aside after it: a cap of 6 overflows
 * and the second replay takes the snapshot; 7 is enough for one replay. */
static void test_peak_cap_overflows(void **state)
{
    struct fake_store *s = after_the_peak();
    struct memscope_history *h = open_store(s);
    struct memscope_snapshot *snap;
    int passes = 0;

    (void)state;
    snap = at_peak(h, 6, &passes);
    assert_int_equal(passes, 2);
    assert_int_equal(snap->stats.current_memory, 1038);
    assert_int_equal(snap->nblocks, 8);
    memscope_snapshot_free(snap);
    snap = at_peak(h, 7, &passes);
    assert_int_equal(passes, 1);
    assert_int_equal(snap->stats.current_memory, 1038);
    memscope_snapshot_free(snap);
    snap = at_peak(h, 0, &passes);
    assert_int_equal(passes, 2);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(s);
}

/*
 * A first peak (300 at t=30) whose blocks are all released after it (three
 * set aside: over a cap of 2), then a higher peak (500 at t=60) after which
 * one block is released: the overflow belonged to a peak that no longer
 * counts, and one replay is enough.
 */
static void test_peak_overflow_then_higher_peak(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h;
    struct memscope_snapshot *snap;
    int passes = 0;

    (void)state;
    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_alloc(s, 2, 20, 0x2000, 100);
    fs_alloc(s, 1, 30, 0x3000, 100); /* 300 */
    fs_free(s, 2, 31, 0x1000);
    fs_free(s, 1, 32, 0x2000);
    fs_free(s, 2, 33, 0x3000);
    fs_alloc(s, 1, 40, 0x4000, 250);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_FREE, 50, 0x4000, 0);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_ALLOC, 51, 0x4000, 300);
    fs_alloc(s, 2, 60, 0x5000, 200); /* 500 */
    fs_free(s, 2, 70, 0x4000);
    fs_alloc(s, 3, 80, 0x6000, 150); /* 450 */
    h = open_store(s);
    snap = at_peak(h, 2, &passes);
    assert_int_equal(passes, 1);
    assert_int_equal(snap->stats.current_memory, 500);
    assert_int_equal(snap->stats.events, 10);
    assert_int_equal(snap->stats.reallocations, 1);
    assert_int_equal(snap->nblocks, 2);
    expect_block(snap, 0, 0x4000, 300, 51, 1, "");
    expect_block(snap, 1, 0x5000, 200, 60, 2, "");
    assert_int_equal(snap->nthreads, 2);
    assert_int_equal(snap->threads[0].current_memory, 300);
    assert_int_equal(snap->threads[0].deallocations, 2); /* 0x2000, and the realloc's old block */
    assert_int_equal(snap->threads[1].current_memory, 200);
    assert_int_equal(snap->threads[1].deallocations, 2);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(s);
}

/*
 * From a checkpoint (thread 1's first two records folded, horizon 20): its
 * blocks are live at the peak (157 at t=40) and one is released after it;
 * a checkpoint whose peak lies before the horizon gives -ERANGE either way;
 * with empty blocks only, the peak is never exceeded and the snapshot is the
 * checkpoint's state.
 */
static void test_peak_from_checkpoint(void **state)
{
    struct fake_store *s = fs_new();
    struct ms_fold_cut cut = {1, 0, 2, 0};
    struct memscope_history *h = NULL;
    struct memscope_snapshot *snap = NULL;
    struct memscope_error err;
    int passes = 0;

    (void)state;
    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_alloc(s, 1, 20, 0x2000, 50); /* folded up to here */
    fs_alloc(s, 1, 40, 0x3000, 7);  /* 157: the peak */
    fs_free(s, 2, 50, 0x1000);
    fs_alloc(s, 2, 60, 0x4000, 9);
    fs_build(s, 8);
    assert_non_null(fs_fold(s, &cut, 1, 20, CK_ADDR));
    assert_int_equal(fs_open(s, &h, &err), 0);
    snap = at_peak(h, MS_PEAK_KEEP_ALL, &passes);
    assert_int_equal(passes, 1);
    assert_int_equal(snap->stats.current_memory, 157);
    assert_int_equal(snap->stats.events, 3);
    assert_int_equal(snap->nblocks, 3);
    expect_block(snap, 0, 0x1000, 100, 10, 1, "");
    expect_block(snap, 2, 0x3000, 7, 40, 1, "");
    assert_int_equal(snap->nthreads, 1);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(s);

    s = fs_new(); /* the peak (150 at 20) was folded */
    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_alloc(s, 1, 20, 0x2000, 50);
    fs_free(s, 1, 30, 0x1000);
    fs_alloc(s, 1, 40, 0x3000, 7);
    fs_build(s, 8);
    assert_non_null(fs_fold(s, &cut, 1, 20, CK_ADDR));
    assert_int_equal(fs_open(s, &h, &err), 0);
    snap = NULL;
    assert_int_equal(ms_snapshot_at_peak(h, MS_PEAK_KEEP_ALL, &snap, NULL, &passes), -ERANGE);
    assert_null(snap);
    assert_int_equal(ms_snapshot_at_peak(h, 0, &snap, NULL, &passes), -ERANGE);
    assert_null(snap);
    memscope_history_close(h);
    fs_delete(s);

    s = fs_new(); /* only empty blocks: the peak (0) is the checkpoint's state */
    fs_alloc(s, 1, 10, 0x1000, 0);
    fs_alloc(s, 1, 20, 0x2000, 0); /* folded up to here */
    fs_alloc(s, 1, 30, 0x3000, 0);
    fs_free(s, 2, 40, 0x1000);
    fs_build(s, 8);
    assert_non_null(fs_fold(s, &cut, 1, 20, CK_ADDR));
    assert_int_equal(fs_open(s, &h, &err), 0);
    snap = at_peak(h, MS_PEAK_KEEP_ALL, &passes);
    assert_int_equal(passes, 1);
    assert_int_equal(snap->stats.events, 2);
    assert_int_equal(snap->nblocks, 2);
    expect_block(snap, 0, 0x1000, 0, 10, 1, "");
    expect_block(snap, 1, 0x2000, 0, 20, 1, "");
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(s);
}

/* No allocation at all (a stray free, a mark), and no event: the peak is the
 * start, an empty snapshot at event 0. */
static void test_peak_never_reached(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h;
    struct memscope_snapshot *snap;
    int passes = 0;

    (void)state;
    fs_free(s, 1, 10, 0x1000);
    fs_mark(s, 2, 20, "m");
    h = open_store(s);
    snap = at_peak(h, MS_PEAK_KEEP_ALL, &passes);
    assert_int_equal(passes, 1);
    assert_int_equal(snap->stats.events, 0);
    assert_int_equal(snap->stats.unmatched_deallocations, 0);
    assert_int_equal(snap->nthreads, 0);
    assert_int_equal(snap->nblocks, 0);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(s);

    s = fs_new();
    h = open_store(s);
    assert_int_equal(ms_snapshot_at_peak(h, MS_PEAK_KEEP_ALL, &snap, NULL, &passes), 0);
    assert_int_equal(passes, 1);
    assert_int_equal(snap->stats.events, 0);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(s);
}

static uint64_t rng_state;

static uint64_t rng(uint64_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state % n;
}

/*
 * Random histories (seeded: the same every run): five threads allocating,
 * freeing each other's blocks, reallocating (moving, in place, failing),
 * labelling, marking, reusing a small set of addresses (overlaps, unmatched
 * frees), with sizes drifting so the peak falls anywhere. The one-replay
 * snapshot at the peak must equal the two-replay one, with no cap and with a
 * cap of 3 (most of these overflow it).
 */
static void test_peak_random_histories(void **state)
{
    enum { NADDR = 96, NEVENTS = 1500 };
    unsigned seed;
    int one = 0, two = 0;

    (void)state;
    for (seed = 1; seed <= 40; seed++) {
        struct fake_store *s = fs_new();
        struct memscope_history *h;
        struct memscope_snapshot *snap;
        uint8_t live[NADDR] = {0};
        uint64_t text[3], mark, t = 1, drift = 1 + seed % 7;
        int i, passes = 0;

        rng_state = 0x9e3779b97f4a7c15u * seed;
        text[0] = fs_text(s, "alpha", "int");
        text[1] = fs_text(s, "beta", "char *");
        text[2] = fs_text(s, "gamma", "struct g");
        mark = fs_text(s, "m", NULL);
        for (i = 0; i < NEVENTS; i++) {
            uint32_t th = 1 + (uint32_t)rng(5);
            unsigned k = (unsigned)rng(NADDR), what = (unsigned)rng(100);
            uint64_t a = 0x10000 + (uint64_t)k * 0x100, size = 1 + rng(64 * drift);
            if (i % 300 == 299)
                drift = 1 + rng(9); /* the live total swings: peaks anywhere */
            t += 1 + rng(3);
            if (what < 40 && (!live[k] || what < 2)) { /* allocate (rarely over a live block) */
                fs_alloc(s, th, t, a, size);
                live[k] = 1;
            } else if (what < 70 && (live[k] || what == 69)) { /* free (what == 69: maybe unmatched) */
                fs_free(s, th, t, a);
                live[k] = 0;
            } else if (what < 85 && live[k]) { /* realloc: moved, in place, or failed */
                unsigned k2 = rng(3) ? (unsigned)rng(NADDR) : k;
                uint64_t a2 = 0x10000 + (uint64_t)k2 * 0x100;
                fs_ev(s, th, MEMSCOPE_REC_REALLOC_FREE, t, a, 0);
                live[k] = 0;
                if (rng(5) == 0) {
                    fs_ev(s, th, MEMSCOPE_REC_REALLOC_UNDO, t + 1, a, 0);
                    live[k] = 1;
                } else {
                    fs_ev(s, th, MEMSCOPE_REC_REALLOC_ALLOC, t + 1, a2, size);
                    live[k2] = 1;
                }
                t++;
            } else if (what < 95) {
                fs_ev(s, th, MEMSCOPE_REC_LABEL, t, a, text[rng(3)]);
            } else {
                fs_ev(s, th, MEMSCOPE_REC_MARK, t, 0, mark);
            }
        }
        h = open_store(s);
        snap = at_peak(h, MS_PEAK_KEEP_ALL, &passes);
        assert_int_equal(passes, 1);
        memscope_snapshot_free(snap);
        snap = at_peak(h, 3, &passes);
        one += passes == 1;
        two += passes == 2;
        memscope_snapshot_free(snap);
        memscope_history_close(h);
        fs_delete(s);
    }
    assert_true(one > 0 && two > 0); /* both paths were taken */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peak_after_the_peak),
        cmocka_unit_test(test_peak_cap_overflows),
        cmocka_unit_test(test_peak_overflow_then_higher_peak),
        cmocka_unit_test(test_peak_from_checkpoint),
        cmocka_unit_test(test_peak_never_reached),
        cmocka_unit_test(test_peak_random_histories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
