/*
 * test_checkpoint.c - the folded checkpoint (store_abi.h, struct
 * memscope_checkpoint) as the engine reads it: a good one replays to what
 * the unbounded store gives, points before its horizon are refused with
 * -ERANGE, and each kind of damage is refused with a message naming it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_store.h"
#include "internal.h"

#define CK_ADDR UINT64_C(0x30000)

/*
 * Thread 1: alloc A (100) t=10, alloc B (50) t=20, free A t=30, alloc C (7) t=40.
 * Thread 2: free B t=35 (a cross-thread free), alloc D (9) t=45.
 * Folded: thread 1's first two records (cut at seq 0, record 2), horizon 20.
 */
static struct fake_store *events(void)
{
    struct fake_store *s = fs_new();
    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_alloc(s, 1, 20, 0x2000, 50);
    fs_free(s, 1, 30, 0x1000);
    fs_alloc(s, 1, 40, 0x3000, 7);
    fs_free(s, 2, 35, 0x2000);
    fs_alloc(s, 2, 45, 0x4000, 9);
    fs_build(s, 8);
    return s;
}

struct ck_parts {
    struct memscope_checkpoint *c;
    struct memscope_checkpoint_thread *t;
    struct memscope_checkpoint_block *b;
};

/* The store above with its checkpoint. */
static struct fake_store *folded(struct ck_parts *p)
{
    struct fake_store *s = events();
    size_t size = sizeof(*p->c) + sizeof(*p->t) + 2 * sizeof(*p->b);
    uint8_t *m = fake_mem_add(&s->mem, CK_ADDR, size);

    p->c = (void *)m;
    p->t = (void *)(m + sizeof(*p->c));
    p->b = (void *)(m + sizeof(*p->c) + sizeof(*p->t));
    *p->c = (struct memscope_checkpoint){
        .magic = MEMSCOPE_CHECKPOINT_MAGIC, .header_size = sizeof(*p->c), .thread_size = sizeof(*p->t),
        .block_size = sizeof(*p->b), .map_size = size, .generation = 1, .horizon = 20, .folded_events = 2,
        .total_allocations = 2, .total_allocated = 150, .current_memory = 150, .peak_memory = 150, .peak_time = 20,
        .thread_count = 1, .threads = CK_ADDR + sizeof(*p->c), .block_count = 2,
        .blocks = CK_ADDR + sizeof(*p->c) + sizeof(*p->t)};
    *p->t = (struct memscope_checkpoint_thread){.thread = 1, .tid = 1001, .folded_seq = 0, .folded_records = 2,
                                                .allocations = 2, .allocated_bytes = 150, .current_memory = 150,
                                                .live_blocks = 2, .peak_memory = 150, .peak_time = 20};
    p->b[0] = (struct memscope_checkpoint_block){.address = 0x1000, .size = 100, .time = 10, .thread = 1};
    p->b[1] = (struct memscope_checkpoint_block){.address = 0x2000, .size = 50, .time = 20, .thread = 1};
    s->root->checkpoint = CK_ADDR;
    return s;
}

static void expect_open(struct fake_store *s, int code, const char *needle)
{
    struct memscope_history *h = NULL;
    struct memscope_error err;

    memset(&err, 0, sizeof(err));
    assert_int_equal(fs_open(s, &h, &err), code);
    assert_null(h);
    if (needle && !strstr(err.message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle);
}

static struct memscope_stats end_stats(struct fake_store *s)
{
    struct memscope_history *h = NULL;
    struct memscope_snapshot *snap = NULL;
    struct memscope_stats st;
    struct memscope_error err;

    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
    assert_int_equal(memscope_snapshot_stats(snap, &st), 0);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    return st;
}

static void test_checkpoint_replays_as_unbounded(void **state)
{
    struct ck_parts p;
    struct fake_store *s = folded(&p), *u = events();
    struct memscope_stats a = end_stats(s), b = end_stats(u);

    assert_int_equal(a.total_allocations, b.total_allocations);
    assert_int_equal(a.total_deallocations, b.total_deallocations);
    assert_int_equal(a.active_allocations, b.active_allocations);
    assert_int_equal(a.current_memory, b.current_memory);
    assert_int_equal(a.total_allocated, b.total_allocated);
    assert_int_equal(a.total_deallocated, b.total_deallocated);
    assert_int_equal(a.peak_memory, b.peak_memory);
    assert_int_equal(a.peak_time_ns, b.peak_time_ns);
    assert_int_equal(a.unmatched_deallocations, 0);
    assert_int_equal(a.events, b.events);
    assert_int_equal(a.threads, b.threads);
    assert_int_equal(a.current_memory, 16);
    fs_delete(s);
    fs_delete(u);
}

static void test_checkpoint_horizon(void **state)
{
    struct ck_parts p;
    struct fake_store *s = folded(&p);
    struct memscope_history *h = NULL;
    struct memscope_history_info info;
    struct memscope_snapshot *snap = NULL;
    struct memscope_error err;
    struct memscope_point at = {MEMSCOPE_AT_TIME, 15, NULL};

    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_info(h, &info), 0);
    assert_int_equal(info.horizon_ns, 20);
    assert_int_equal(info.folded_events, 2);
    assert_int_equal(info.events, 4);
    assert_int_equal(memscope_history_snapshot(h, &at, &snap), -ERANGE);
    at = (struct memscope_point){MEMSCOPE_AT_EVENT, 1, NULL};
    assert_int_equal(memscope_history_snapshot(h, &at, &snap), -ERANGE);
    at = (struct memscope_point){MEMSCOPE_AT_PEAK, 0, NULL}; /* the peak (150 at 20) was folded */
    assert_int_equal(memscope_history_snapshot(h, &at, &snap), -ERANGE);
    at = (struct memscope_point){MEMSCOPE_AT_EVENT, 3, NULL}; /* event 3 (free A) replays */
    assert_int_equal(memscope_history_snapshot(h, &at, &snap), 0);
    {
        struct memscope_stats st;
        assert_int_equal(memscope_snapshot_stats(snap, &st), 0);
        assert_int_equal(st.current_memory, 50);
        assert_int_equal(st.events, 3);
    }
    memscope_snapshot_free(snap);
    at = (struct memscope_point){MEMSCOPE_AT_TIME, 30, NULL};
    assert_int_equal(memscope_history_snapshot(h, &at, &snap), 0);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_checkpoint_bad_magic(void **state)
{
    struct ck_parts p;
    struct fake_store *s = folded(&p);
    p.c->magic ^= 1;
    expect_open(s, -EBADMSG, "bad magic");
    fs_delete(s);
}

static void test_checkpoint_wrong_sizes(void **state)
{
    struct ck_parts p;
    struct fake_store *s = folded(&p);
    p.c->block_size = 8;
    expect_open(s, -EBADMSG, "entry sizes");
    fs_delete(s);
}

static void test_checkpoint_unreadable(void **state)
{
    struct ck_parts p;
    struct fake_store *s = folded(&p);
    s->root->checkpoint = UINT64_C(0x7000000);
    expect_open(s, -EFAULT, "cannot be read");
    fs_delete(s);
}

static void test_checkpoint_entries_outside(void **state)
{
    struct ck_parts p;
    struct fake_store *s = folded(&p);
    p.c->block_count = 1000;
    expect_open(s, -EBADMSG, "block entries");
    p.c->block_count = 2;
    p.c->threads = CK_ADDR + p.c->map_size;
    expect_open(s, -EBADMSG, "thread entries");
    p.c->threads = CK_ADDR + sizeof(*p.c);
    p.c->map_size = UINT64_MAX - 4;
    expect_open(s, -EBADMSG, "map_size");
    fs_delete(s);
}

static void test_checkpoint_sums_disagree(void **state)
{
    struct ck_parts p;
    struct fake_store *s = folded(&p);
    p.b[1].size = 51;
    expect_open(s, -EBADMSG, "current_memory");
    p.b[1].size = 50;
    p.t->live_blocks = 1;
    expect_open(s, -EBADMSG, "the threads hold");
    p.t->live_blocks = 2;
    p.c->peak_memory = 10;
    expect_open(s, -EBADMSG, "peak_memory");
    fs_delete(s);
}

static void test_checkpoint_bad_threads(void **state)
{
    struct ck_parts p;
    struct fake_store *s = folded(&p);
    p.b[0].thread = 7;
    expect_open(s, -EBADMSG, "unlisted thread 7");
    p.b[0].thread = 1;
    p.t->thread = 0;
    expect_open(s, -EBADMSG, "serial 0");
    fs_delete(s);
}

static void test_checkpoint_cut_past_chunk(void **state)
{
    struct ck_parts p;
    struct fake_store *s = folded(&p);
    p.t->folded_records = 99;
    expect_open(s, -EBADMSG, "folded 99 records");
    fs_delete(s);
}

static void test_checkpoint_fold_in_progress(void **state)
{
    struct ck_parts p;
    struct fake_store *s = folded(&p);
    s->root->fold_seq = 3; /* a fold that never finishes publishing */
    expect_open(s, -EAGAIN, "being folded");
    s->root->fold_seq = 4;
    struct memscope_stats st = end_stats(s);
    assert_int_equal(st.current_memory, 16);
    fs_delete(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoint_replays_as_unbounded),
        cmocka_unit_test(test_checkpoint_horizon),
        cmocka_unit_test(test_checkpoint_bad_magic),
        cmocka_unit_test(test_checkpoint_wrong_sizes),
        cmocka_unit_test(test_checkpoint_unreadable),
        cmocka_unit_test(test_checkpoint_entries_outside),
        cmocka_unit_test(test_checkpoint_sums_disagree),
        cmocka_unit_test(test_checkpoint_bad_threads),
        cmocka_unit_test(test_checkpoint_cut_past_chunk),
        cmocka_unit_test(test_checkpoint_fold_in_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
