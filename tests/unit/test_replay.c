/*
 * test_replay.c - replay rules on hand-built stores: allocation, free,
 * cross-thread frees, address reuse, realloc (move, grow in place, failure
 * undo, label carry-over), double free, unmatched frees, peaks, labels,
 * overlapping allocations and the look-ahead.
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

/* Opens s and takes the snapshot at the end. */
static struct memscope_snapshot *snap_end(struct fake_store *s)
{
    struct memscope_history *h = NULL;
    struct memscope_snapshot *snap = NULL;
    struct memscope_error err;

    fs_build(s, 64);
    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
    memscope_history_close(h); /* the snapshot outlives its history */
    return snap;
}

static struct memscope_stats stats_of(const struct memscope_snapshot *snap)
{
    struct memscope_stats st;
    assert_int_equal(memscope_snapshot_stats(snap, &st), 0);
    return st;
}

static struct memscope_thread_stats thread_of(const struct memscope_snapshot *snap, size_t i)
{
    struct memscope_thread_stats t;
    assert_int_equal(memscope_snapshot_thread(snap, i, &t), 0);
    return t;
}

struct collected {
    struct memscope_allocation a[64];
    char names[64][64];
    char types[64][64];
    int n;
};

static int collect(const struct memscope_allocation *b, void *arg)
{
    struct collected *c = arg;
    c->a[c->n] = *b;
    c->names[c->n][0] = c->types[c->n][0] = '\0';
    if (b->label_name) {
        strncpy(c->names[c->n], b->label_name, 63);
        strncpy(c->types[c->n], b->label_type, 63);
    }
    c->n++;
    return 0;
}

static void test_replay_alloc_free(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_stats st;
    struct collected c = {0};

    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_alloc(s, 1, 20, 0x2000, 50);
    fs_free(s, 1, 30, 0x1000);
    fs_alloc(s, 1, 40, 0x3000, 7);
    snap = snap_end(s);
    st = stats_of(snap);
    assert_int_equal(st.total_allocations, 3);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.active_allocations, 2);
    assert_int_equal(st.total_allocated, 157);
    assert_int_equal(st.total_deallocated, 100);
    assert_int_equal(st.current_memory, 57);
    assert_int_equal(st.peak_memory, 150);
    assert_int_equal(st.peak_time_ns, 20);
    assert_int_equal(st.unmatched_deallocations, 0);
    assert_int_equal(st.events, 4);
    assert_int_equal(st.time_ns, 40);
    assert_int_equal(st.threads, 1);
    assert_int_equal(memscope_snapshot_foreach(snap, collect, &c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.a[0].address, 0x2000);
    assert_int_equal(c.a[0].size, 50);
    assert_int_equal(c.a[0].time_ns, 20);
    assert_int_equal(c.a[0].thread, 1);
    assert_null(c.a[0].label_name);
    assert_int_equal(c.a[1].address, 0x3000);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_cross_thread_free(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_thread_stats a, b;

    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_alloc(s, 1, 11, 0x2000, 30);
    fs_free(s, 2, 20, 0x1000); /* thread 2 frees thread 1's block */
    fs_alloc(s, 2, 25, 0x5000, 8);
    snap = snap_end(s);
    assert_int_equal(memscope_snapshot_thread_count(snap), 2);
    a = thread_of(snap, 0);
    b = thread_of(snap, 1);
    assert_int_equal(a.thread, 1);
    assert_int_equal(a.tid, 1001);
    assert_int_equal(a.allocations, 2);
    assert_int_equal(a.deallocations, 0);
    assert_int_equal(a.allocated_bytes, 130);
    assert_int_equal(a.released_bytes, 100); /* bytes leave the allocator's figures */
    assert_int_equal(a.current_memory, 30);
    assert_int_equal(a.live_blocks, 1);
    assert_int_equal(a.peak_memory, 130);
    assert_int_equal(a.peak_time_ns, 11);
    assert_int_equal(b.thread, 2);
    assert_int_equal(b.allocations, 1);
    assert_int_equal(b.deallocations, 1); /* the count goes to the freer */
    assert_int_equal(b.allocated_bytes, 8);
    assert_int_equal(b.released_bytes, 0);
    assert_int_equal(b.current_memory, 8);
    assert_int_equal(b.peak_memory, 8);
    assert_int_equal(b.peak_time_ns, 25);
    assert_int_equal(stats_of(snap).current_memory, 38);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_address_reuse_across_threads(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_stats st;
    struct collected c = {0};

    fs_alloc(s, 1, 10, 0x1000, 64);
    fs_free(s, 1, 20, 0x1000);
    fs_alloc(s, 2, 30, 0x1000, 32); /* thread B reuses X later */
    snap = snap_end(s);
    st = stats_of(snap);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.current_memory, 32);
    assert_int_equal(st.unmatched_deallocations, 0);
    assert_int_equal(st.overlapping_allocations, 0);
    memscope_snapshot_foreach(snap, collect, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.a[0].thread, 2);
    assert_int_equal(c.a[0].size, 32);
    assert_int_equal(thread_of(snap, 0).current_memory, 0);
    assert_int_equal(thread_of(snap, 1).current_memory, 32);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_tie_release_before_alloc(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_stats st;

    /* Same tick: thread 1 (lower serial) allocs X, thread 2 frees X. The
     * release sorts first, so thread 1's block is the one live. */
    fs_alloc(s, 2, 5, 0x1000, 10);
    fs_alloc(s, 1, 20, 0x1000, 99);
    fs_free(s, 2, 20, 0x1000);
    snap = snap_end(s);
    st = stats_of(snap);
    assert_int_equal(st.current_memory, 99);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.unmatched_deallocations, 0);
    assert_int_equal(st.overlapping_allocations, 0);
    assert_int_equal(st.peak_memory, 99);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_double_free(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_stats st;

    fs_alloc(s, 1, 10, 0x1000, 10);
    fs_free(s, 1, 20, 0x1000);
    fs_free(s, 1, 30, 0x1000);
    snap = snap_end(s);
    st = stats_of(snap);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.unmatched_deallocations, 1);
    assert_int_equal(st.current_memory, 0);
    assert_int_equal(thread_of(snap, 0).deallocations, 1);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_free_never_seen(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_stats st;

    fs_free(s, 1, 10, 0xdead0);
    fs_alloc(s, 1, 20, 0x1000, 10);
    snap = snap_end(s);
    st = stats_of(snap);
    assert_int_equal(st.unmatched_deallocations, 1);
    assert_int_equal(st.total_deallocations, 0);
    assert_int_equal(st.total_deallocated, 0);
    assert_int_equal(st.current_memory, 10);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_realloc_move(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_stats st;
    struct collected c = {0};

    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_FREE, 20, 0x1000, 0);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_ALLOC, 21, 0x8000, 300);
    snap = snap_end(s);
    st = stats_of(snap);
    assert_int_equal(st.total_allocations, 2);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.total_allocated, 400);
    assert_int_equal(st.total_deallocated, 100);
    assert_int_equal(st.current_memory, 300); /* not 400: the old block left */
    assert_int_equal(st.peak_memory, 300);
    assert_int_equal(st.peak_time_ns, 21);
    assert_int_equal(st.reallocations, 1);
    memscope_snapshot_foreach(snap, collect, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.a[0].address, 0x8000);
    assert_int_equal(c.a[0].time_ns, 21);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_realloc_grow_in_place(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_stats st;

    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_FREE, 20, 0x1000, 0);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_ALLOC, 21, 0x1000, 200);
    snap = snap_end(s);
    st = stats_of(snap);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.current_memory, 200);
    assert_int_equal(st.peak_memory, 200);
    assert_int_equal(st.reallocations, 1);
    assert_int_equal(st.overlapping_allocations, 0);
    assert_int_equal(st.unmatched_deallocations, 0);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_realloc_failure_undo(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_stats st;
    struct collected c = {0};

    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_label(s, 1, 11, 0x1000, "buf", "char[100]");
    fs_ev(s, 2, MEMSCOPE_REC_REALLOC_FREE, 20, 0x1000, 0); /* another thread's realloc fails */
    fs_ev(s, 2, MEMSCOPE_REC_REALLOC_UNDO, 21, 0x1000, 0);
    snap = snap_end(s);
    st = stats_of(snap);
    assert_int_equal(st.total_allocations, 1);
    assert_int_equal(st.total_deallocations, 0);
    assert_int_equal(st.total_deallocated, 0);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.current_memory, 100);
    assert_int_equal(st.reallocations, 0);
    assert_int_equal(thread_of(snap, 0).released_bytes, 0);
    assert_int_equal(thread_of(snap, 0).current_memory, 100);
    assert_int_equal(thread_of(snap, 1).deallocations, 0);
    memscope_snapshot_foreach(snap, collect, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.a[0].time_ns, 10); /* with its time, thread and label */
    assert_int_equal(c.a[0].thread, 1);
    assert_string_equal(c.names[0], "buf");
    assert_string_equal(c.types[0], "char[100]");
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_realloc_label_carry(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct collected c = {0};

    fs_alloc(s, 1, 10, 0x1000, 16);
    fs_label(s, 1, 11, 0x1000, "list", "struct node *");
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_FREE, 20, 0x1000, 0);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_ALLOC, 21, 0x9000, 64);
    fs_alloc(s, 1, 30, 0x1000, 16); /* a new block at the old address has no label */
    snap = snap_end(s);
    memscope_snapshot_foreach(snap, collect, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.a[0].address, 0x1000);
    assert_null(c.a[0].label_name);
    assert_int_equal(c.a[1].address, 0x9000);
    assert_string_equal(c.names[1], "list");
    assert_string_equal(c.types[1], "struct node *");
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_realloc_unknown_block(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_stats st;
    struct collected c = {0};

    /* A labeled block moved by realloc, then a realloc of a block never seen
     * (allocated before recording): the old label must not stick to it. */
    fs_alloc(s, 1, 10, 0x1000, 16);
    fs_label(s, 1, 11, 0x1000, "old", "int");
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_FREE, 20, 0x1000, 0);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_ALLOC, 21, 0x2000, 32);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_FREE, 30, 0x7000, 0);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_ALLOC, 31, 0x8000, 64);
    /* And a failed realloc of a block never seen takes its unmatched count back. */
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_FREE, 40, 0x9000, 0);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_UNDO, 41, 0x9000, 0);
    snap = snap_end(s);
    st = stats_of(snap);
    assert_int_equal(st.unmatched_deallocations, 1);
    assert_int_equal(st.reallocations, 2);
    assert_int_equal(st.current_memory, 96);
    memscope_snapshot_foreach(snap, collect, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.names[0], "old");
    assert_int_equal(c.a[1].address, 0x8000);
    assert_null(c.a[1].label_name);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_label_unreadable(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct collected c = {0};

    fs_alloc(s, 1, 10, 0x1000, 16);
    fs_ev(s, 1, MEMSCOPE_REC_LABEL, 11, 0x1000, 0x7777000); /* text pointer to nowhere */
    fs_alloc(s, 1, 12, 0x2000, 16);
    {
        uint64_t t = fs_text(s, "x", "int");
        struct memscope_text *tx = fake_mem_at(&s->mem, t);
        tx->bytes = MEMSCOPE_TEXT_MAX + 1; /* too long */
        fs_ev(s, 1, MEMSCOPE_REC_LABEL, 13, 0x2000, t);
    }
    fs_label(s, 1, 14, 0x5555, "nobody", "int"); /* not live: ignored */
    snap = snap_end(s);
    memscope_snapshot_foreach(snap, collect, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.names[0], "<unreadable>");
    assert_string_equal(c.names[1], "<unreadable>");
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_label_bad_nul_count(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct collected c = {0};
    uint64_t t;
    struct memscope_text *tx;

    fs_alloc(s, 1, 10, 0x1000, 16);
    t = fs_text(s, "abc", "def");
    tx = fake_mem_at(&s->mem, t);
    ((char *)(tx + 1))[3] = 'X'; /* one NUL short */
    fs_ev(s, 1, MEMSCOPE_REC_LABEL, 11, 0x1000, t);
    snap = snap_end(s);
    memscope_snapshot_foreach(snap, collect, &c);
    assert_string_equal(c.names[0], "<unreadable>");
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_peak_exact(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_stats st;

    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_alloc(s, 2, 15, 0x2000, 200); /* 300 at 15 */
    fs_free(s, 1, 20, 0x1000);       /* 200 */
    fs_alloc(s, 1, 25, 0x3000, 100); /* 300 again at 25: not a new peak */
    fs_alloc(s, 2, 30, 0x4000, 1);   /* 301 at 30 */
    fs_free(s, 2, 40, 0x4000);
    fs_free(s, 2, 41, 0x2000);
    snap = snap_end(s);
    st = stats_of(snap);
    assert_int_equal(st.peak_memory, 301);
    assert_int_equal(st.peak_time_ns, 30);
    assert_int_equal(st.current_memory, 100);
    assert_int_equal(thread_of(snap, 0).peak_memory, 100);
    assert_int_equal(thread_of(snap, 0).peak_time_ns, 10);
    assert_int_equal(thread_of(snap, 1).peak_memory, 201);
    assert_int_equal(thread_of(snap, 1).peak_time_ns, 30);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_non_monotonic_thread(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_stats st;

    /* A signal handler's alloc at 15 nests after an event at 20 on thread 1. */
    fs_alloc(s, 1, 10, 0x1000, 10);
    fs_alloc(s, 1, 20, 0x2000, 20);
    fs_alloc(s, 1, 15, 0x3000, 30);
    fs_free(s, 2, 17, 0x3000); /* thread 2 frees it at 17: only right if sorted */
    snap = snap_end(s);
    st = stats_of(snap);
    assert_int_equal(st.unmatched_deallocations, 0);
    assert_int_equal(st.current_memory, 30);
    assert_int_equal(st.peak_memory, 40);
    assert_int_equal(st.peak_time_ns, 15);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_overlap_lookahead(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_stats st;
    struct collected c = {0};

    /* Thread 2's reuse of X is stamped 3 ns before thread 1's release of X. */
    fs_alloc(s, 1, 10, 0x1000, 40);
    fs_alloc(s, 2, 100, 0x1000, 8);
    fs_alloc(s, 2, 101, 0x2000, 1);
    fs_free(s, 1, 103, 0x1000);
    snap = snap_end(s);
    st = stats_of(snap);
    assert_int_equal(st.overlapping_allocations, 0);
    assert_int_equal(st.unmatched_deallocations, 0);
    assert_int_equal(st.current_memory, 9);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.events, 4);
    assert_int_equal(thread_of(snap, 0).deallocations, 1);
    assert_int_equal(thread_of(snap, 0).released_bytes, 40);
    memscope_snapshot_foreach(snap, collect, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.a[0].thread, 2);
    assert_int_equal(c.a[0].size, 8);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_replay_overlap_counted(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_snapshot *snap;
    struct memscope_stats st;

    /* No release anywhere near: the old block is taken as released. */
    fs_alloc(s, 1, 10, 0x1000, 40);
    fs_alloc(s, 2, 100, 0x1000, 8);
    fs_free(s, 1, 50000, 0x1000); /* far beyond the window: unmatched later? no: frees thread 2's block */
    snap = snap_end(s);
    st = stats_of(snap);
    assert_int_equal(st.overlapping_allocations, 1);
    assert_int_equal(st.current_memory, 0);
    assert_int_equal(st.active_allocations, 0);
    assert_int_equal(st.total_deallocations, 2);
    assert_int_equal(st.peak_memory, 40);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_alloc_free),
        cmocka_unit_test(test_replay_cross_thread_free),
        cmocka_unit_test(test_replay_address_reuse_across_threads),
        cmocka_unit_test(test_replay_tie_release_before_alloc),
        cmocka_unit_test(test_replay_double_free),
        cmocka_unit_test(test_replay_free_never_seen),
        cmocka_unit_test(test_replay_realloc_move),
        cmocka_unit_test(test_replay_realloc_grow_in_place),
        cmocka_unit_test(test_replay_realloc_failure_undo),
        cmocka_unit_test(test_replay_realloc_label_carry),
        cmocka_unit_test(test_replay_realloc_unknown_block),
        cmocka_unit_test(test_replay_label_unreadable),
        cmocka_unit_test(test_replay_label_bad_nul_count),
        cmocka_unit_test(test_replay_peak_exact),
        cmocka_unit_test(test_replay_non_monotonic_thread),
        cmocka_unit_test(test_replay_overlap_lookahead),
        cmocka_unit_test(test_replay_overlap_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
