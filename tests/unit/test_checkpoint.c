/*
 * test_checkpoint.c - the folded checkpoint (store_abi.h, struct
 * memscope_checkpoint) as the engine reads it: a good one replays to what
 * the unbounded store gives, points before its horizon are refused with
 * -ERANGE, and each kind of damage is refused with a message naming it.
 * Folded marks: kept by the checkpoint (ms_fold_build, capped), found by
 * name and refused as lying before the horizon, listed by the timeline.
 * Folds that reuse their arrays (ms_engine_big_keep) build the same bytes.
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
        .block_size = sizeof(*p->b), .mark_size = sizeof(struct memscope_checkpoint_mark), .map_size = size, .generation = 1, .horizon = 20, .folded_events = 2,
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

/* The summary figures a folded store shares with the unbounded one. */
static void assert_same_totals(const struct memscope_stats *a, const struct memscope_stats *b)
{
    assert_int_equal(a->threads, b->threads);
    assert_int_equal(a->total_allocations, b->total_allocations);
    assert_int_equal(a->total_deallocations, b->total_deallocations);
    assert_int_equal(a->total_allocated, b->total_allocated);
    assert_int_equal(a->total_deallocated, b->total_deallocated);
    assert_int_equal(a->current_memory, b->current_memory);
    assert_int_equal(a->active_allocations, b->active_allocations);
    assert_int_equal(a->peak_memory, b->peak_memory);
}

static void test_checkpoint_replays_as_unbounded(void **state)
{
    struct ck_parts p;
    struct fake_store *s = folded(&p), *u = events();
    struct memscope_stats a = end_stats(s), b = end_stats(u);

    assert_same_totals(&a, &b);
    assert_int_equal(a.peak_time_ns, b.peak_time_ns);
    assert_int_equal(a.unmatched_deallocations, 0);
    assert_int_equal(a.events, b.events);
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

/*
 * Thread 1: alloc A (100) t=10, mark "early" t=15, alloc B (50) t=20, free A t=30, mark "late" t=38,
 * alloc C (7) t=40. Folded: its first three records (horizon 20), with the mark "early".
 */
struct mk_parts {
    struct memscope_checkpoint *c;
    struct memscope_checkpoint_thread *t;
    struct memscope_checkpoint_block *b;
    struct memscope_checkpoint_mark *m;
};

static struct fake_store *folded_marks(struct mk_parts *p)
{
    struct fake_store *s = fs_new();
    size_t size = sizeof(*p->c) + sizeof(*p->t) + 2 * sizeof(*p->b) + sizeof(*p->m);
    uint8_t *mem;
    uint64_t early;

    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_mark(s, 1, 15, "early");
    early = s->th[0].ev[1].size;
    fs_alloc(s, 1, 20, 0x2000, 50);
    fs_free(s, 1, 30, 0x1000);
    fs_mark(s, 1, 38, "late");
    fs_alloc(s, 1, 40, 0x3000, 7);
    fs_build(s, 8);
    mem = fake_mem_add(&s->mem, CK_ADDR, size);
    p->c = (void *)mem;
    p->t = (void *)(mem + sizeof(*p->c));
    p->b = (void *)(p->t + 1);
    p->m = (void *)(p->b + 2);
    *p->c = (struct memscope_checkpoint){
        .magic = MEMSCOPE_CHECKPOINT_MAGIC, .header_size = sizeof(*p->c), .thread_size = sizeof(*p->t),
        .block_size = sizeof(*p->b), .mark_size = sizeof(*p->m), .map_size = size, .generation = 1, .horizon = 20,
        .folded_events = 3, .total_allocations = 2, .total_allocated = 150, .current_memory = 150,
        .peak_memory = 150, .peak_time = 20, .thread_count = 1, .threads = CK_ADDR + sizeof(*p->c), .block_count = 2,
        .blocks = CK_ADDR + sizeof(*p->c) + sizeof(*p->t), .mark_count = 1,
        .marks = CK_ADDR + sizeof(*p->c) + sizeof(*p->t) + 2 * sizeof(*p->b)};
    *p->t = (struct memscope_checkpoint_thread){.thread = 1, .tid = 1001, .folded_seq = 0, .folded_records = 3,
                                                .allocations = 2, .allocated_bytes = 150, .current_memory = 150,
                                                .live_blocks = 2, .peak_memory = 150, .peak_time = 20};
    p->b[0] = (struct memscope_checkpoint_block){.address = 0x1000, .size = 100, .time = 10, .thread = 1};
    p->b[1] = (struct memscope_checkpoint_block){.address = 0x2000, .size = 50, .time = 20, .thread = 1};
    p->m[0] = (struct memscope_checkpoint_mark){.time = 15, .text = early, .events = 2, .live_bytes = 100};
    s->root->checkpoint = CK_ADDR;
    return s;
}

static void expect_text(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("\"%s\" lacks \"%s\"", text, needle);
}

static void test_checkpoint_folded_mark_before_horizon(void **state)
{
    struct mk_parts p;
    struct fake_store *s = folded_marks(&p);
    struct memscope_history *h = NULL;
    struct memscope_history_info info;
    struct memscope_snapshot *snap = NULL;
    struct memscope_point_info pi;
    struct memscope_error err;
    struct memscope_point at = {MEMSCOPE_AT_MARK, 0, "early"};
    struct memscope_stats st;

    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_info(h, &info), 0);
    assert_int_equal(info.marks, 2); /* the folded one counts */
    assert_int_equal(memscope_history_snapshot(h, &at, &snap), -ERANGE);
    assert_int_equal(memscope_history_locate(h, &at, &pi, &err), -ERANGE);
    expect_text(err.message, "mark 'early' (at 0.000000 s, event 2) lies before the checkpoint horizon at 0.000000 s");
    at.mark = "nope";
    assert_int_equal(memscope_history_snapshot(h, &at, &snap), -ENOENT);
    assert_int_equal(memscope_history_locate(h, &at, &pi, &err), -ENOENT);
    expect_text(err.message, "no mark named 'nope'");
    at.mark = "late";
    assert_int_equal(memscope_history_locate(h, &at, &pi, &err), 0);
    assert_int_equal(pi.events, 5);
    assert_int_equal(memscope_history_snapshot(h, &at, &snap), 0);
    assert_int_equal(memscope_snapshot_stats(snap, &st), 0);
    assert_int_equal(st.current_memory, 50);
    assert_int_equal(st.events, 5);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_checkpoint_folded_mark_on_timeline(void **state)
{
    struct mk_parts p;
    struct fake_store *s = folded_marks(&p);
    struct memscope_history *h = NULL;
    struct memscope_timeline *tl = NULL;
    struct memscope_timeline_info ti;
    struct memscope_timeline_mark mk;
    struct memscope_error err;
    char *text = NULL;
    size_t len;

    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_timeline(h, 4, &tl), 0);
    assert_int_equal(memscope_timeline_info(tl, &ti), 0);
    assert_int_equal(ti.marks, 2);
    assert_int_equal(memscope_timeline_mark(tl, 0, &mk), 0);
    assert_string_equal(mk.name, "early");
    assert_int_equal(mk.folded, 1);
    assert_int_equal(mk.time_ns, 15);
    assert_int_equal(mk.events, 2);
    assert_int_equal(mk.live_bytes, 100);
    assert_int_equal(memscope_timeline_mark(tl, 1, &mk), 0);
    assert_string_equal(mk.name, "late");
    assert_int_equal(mk.folded, 0);
    assert_int_equal(mk.events, 5);
    assert_int_equal(mk.live_bytes, 50);
    assert_int_equal(memscope_timeline_render_json(tl, &text, &len), 0);
    expect_text(text, "{\"name\":\"early\",\"time_ns\":15,\"events\":2,\"live_bytes\":100,\"bucket\":0,\"folded\":true}");
    expect_text(text, "{\"name\":\"late\",\"time_ns\":38,\"events\":5,\"live_bytes\":50,\"bucket\":");
    memscope_text_free(text);
    assert_int_equal(memscope_timeline_render_text(tl, NULL, &text, &len), 0);
    expect_text(text, "  <  mark 'early' at 0.000000 s, event 2, 100 B live (folded into the checkpoint: before the horizon)");
    expect_text(text, "  a  mark 'late' at 0.000000 s, event 5");
    memscope_text_free(text);
    memscope_timeline_free(tl);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_checkpoint_bad_marks(void **state)
{
    struct mk_parts p;
    struct fake_store *s = folded_marks(&p);

    p.c->mark_size = 8;
    expect_open(s, -EBADMSG, "entry sizes");
    p.c->mark_size = sizeof(*p.m);
    p.c->mark_count = MEMSCOPE_CHECKPOINT_MAX_MARKS + 1;
    expect_open(s, -EBADMSG, "mark entries");
    p.c->mark_count = 2; /* past the mapping */
    expect_open(s, -EBADMSG, "mark entries");
    p.c->mark_count = 1;
    p.c->marks = CK_ADDR + 8; /* inside the header */
    expect_open(s, -EBADMSG, "mark entries");
    p.c->marks = CK_ADDR + sizeof(*p.c) + sizeof(*p.t) + 2 * sizeof(*p.b);
    p.m->time = 21; /* after the horizon */
    expect_open(s, -EBADMSG, "mark 0 (time 21, event 2, 100 bytes live) is out of order or past the horizon");
    p.m->time = 15;
    p.m->events = 4; /* past the folded events */
    expect_open(s, -EBADMSG, "mark 0");
    p.m->events = 0;
    expect_open(s, -EBADMSG, "mark 0");
    p.m->events = 2;
    p.m->live_bytes = 151; /* above the peak */
    expect_open(s, -EBADMSG, "mark 0");
    p.m->live_bytes = 100;
    p.m->text = FAKE_TEXT_ADDR + 4; /* misaligned: the mark is kept, its name unreadable */
    {
        struct memscope_history *h = NULL;
        struct memscope_error err;
        struct memscope_point at = {MEMSCOPE_AT_MARK, 0, "early"};
        struct memscope_snapshot *snap = NULL;
        assert_int_equal(fs_open(s, &h, &err), 0);
        assert_int_equal(memscope_history_snapshot(h, &at, &snap), -ENOENT);
        memscope_history_close(h);
    }
    fs_delete(s);
}

/* ms_fold_build's checkpoint, moved into the fake memory at addr as fold.c moves it into the store. */
static struct memscope_checkpoint *fold_into(struct fake_store *s, const struct ms_fold_cut *cuts, uint32_t ncuts,
                                             uint64_t horizon, uint64_t addr)
{
    struct memscope_checkpoint *ck = fs_fold(s, cuts, ncuts, horizon, addr);

    assert_non_null(ck);
    return ck;
}

static void test_checkpoint_fold_keeps_marks(void **state)
{
    struct fake_store *s = fs_new();
    const unsigned nmarks = MEMSCOPE_CHECKPOINT_MAX_MARKS + 76;
    struct memscope_history *h = NULL;
    struct memscope_checkpoint *ck;
    struct memscope_history_info info;
    struct memscope_point_info pi;
    struct memscope_timeline *tl = NULL;
    struct memscope_timeline_info ti;
    struct memscope_timeline_mark mk;
    struct memscope_error err;
    struct memscope_point at = {MEMSCOPE_AT_MARK, 0, NULL};
    char name[32];
    unsigned i;

    /* Thread 1: alloc A (100) t=1, marks m0.. at t=10.., then alloc B (7), mark "last". */
    fs_alloc(s, 1, 1, 0x1000, 100);
    for (i = 0; i < nmarks; i++) {
        snprintf(name, sizeof(name), "m%u", i);
        fs_mark(s, 1, 10 + i, name);
    }
    fs_alloc(s, 1, 10 + nmarks, 0x2000, 7);
    fs_mark(s, 1, 11 + nmarks, "last");
    fs_build(s, 2048);
    /* First fold: A and m0..m9; the second: up to m(nmarks-1), carrying the first's marks over. */
    {
        struct ms_fold_cut cut = {1, 0, 11, 0};
        ck = fold_into(s, &cut, 1, 19, CK_ADDR);
        assert_int_equal(ck->mark_count, 10);
        assert_int_equal(ck->marks_dropped, 0);
    }
    {
        struct ms_fold_cut cut = {1, 0, 1 + nmarks, 0};
        ck = fold_into(s, &cut, 1, 9 + nmarks, CK_ADDR + 0x100000);
        assert_int_equal(ck->generation, 2);
        assert_int_equal(ck->mark_count, MEMSCOPE_CHECKPOINT_MAX_MARKS);
        assert_int_equal(ck->marks_dropped, 76);
        assert_int_equal(ck->folded_events, 1 + nmarks);
    }
    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_info(h, &info), 0);
    assert_int_equal(info.marks, nmarks + 1);
    assert_int_equal(info.events, 2);
    at.mark = "m3";
    assert_int_equal(memscope_history_locate(h, &at, &pi, &err), -ERANGE);
    expect_text(err.message, "mark 'm3' (at 0.000000 s, event 5) lies before the checkpoint horizon");
    snprintf(name, sizeof(name), "m%u", MEMSCOPE_CHECKPOINT_MAX_MARKS - 1); /* the last one kept */
    at.mark = name;
    assert_int_equal(memscope_history_locate(h, &at, &pi, &err), -ERANGE);
    snprintf(name, sizeof(name), "m%u", MEMSCOPE_CHECKPOINT_MAX_MARKS); /* the first one dropped */
    assert_int_equal(memscope_history_locate(h, &at, &pi, &err), -ENOENT);
    expect_text(err.message, "76 older marks were folded past the 1024 the checkpoint keeps");
    at.mark = "last";
    assert_int_equal(memscope_history_locate(h, &at, &pi, &err), 0);
    assert_int_equal(pi.events, nmarks + 3);
    assert_int_equal(memscope_history_timeline(h, 2, &tl), 0);
    assert_int_equal(memscope_timeline_info(tl, &ti), 0);
    assert_int_equal(ti.marks, MEMSCOPE_CHECKPOINT_MAX_MARKS + 1);
    assert_int_equal(memscope_timeline_mark(tl, 9, &mk), 0);
    assert_string_equal(mk.name, "m9");
    assert_int_equal(mk.folded, 1);
    assert_int_equal(mk.events, 11);
    assert_int_equal(mk.live_bytes, 100);
    assert_int_equal(memscope_timeline_mark(tl, MEMSCOPE_CHECKPOINT_MAX_MARKS, &mk), 0);
    assert_string_equal(mk.name, "last");
    assert_int_equal(mk.folded, 0);
    assert_int_equal(mk.live_bytes, 107);
    memscope_timeline_free(tl);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_checkpoint_horizon_never_recedes(void **state)
{
    struct fake_store *s = events();
    struct ms_fold_cut cut = {1, 0, 2, 0};
    struct memscope_checkpoint *ck = fold_into(s, &cut, 1, 20, CK_ADDR);

    assert_int_equal(ck->horizon, 20);
    cut.records = 3; /* a later fold handed a lower horizon keeps the higher one */
    ck = fold_into(s, &cut, 1, 5, CK_ADDR + 0x100000);
    assert_int_equal(ck->horizon, 20);
    assert_int_equal(ck->folded_events, 3);
    fs_delete(s);
}

/*
 * Exited threads merged into one entry (store_abi.h): thread 1 runs on;
 * threads 2 and 4 exit with nothing live; thread 3 exits leaving D live;
 * thread 5's last folded record is a REALLOC_FREE (a pending stash).
 *   1: alloc A (100) t=1 | alloc X (5) t=60
 *   2: alloc B (10) t=2, free B t=3
 *   3: alloc C (20) t=4, free C t=5, alloc D (30) t=6
 *   4: alloc E (40) t=7, free E t=8
 *   5: alloc F (50) t=9, REALLOC_FREE F t=10 | REALLOC_ALLOC G (60) t=70
 * The first fold (horizon 10) marks 2, 3 and 4 GONE; their chunks are then
 * unlinked, and the second fold, offered 2, 3, 4 and 5, merges 2 and 4 only.
 */
static struct fake_store *exited_events(void)
{
    struct fake_store *s = fs_new();
    fs_alloc(s, 1, 1, 0x1000, 100);
    fs_alloc(s, 1, 60, 0x1100, 5);
    fs_alloc(s, 2, 2, 0x2000, 10);
    fs_free(s, 2, 3, 0x2000);
    fs_alloc(s, 3, 4, 0x3000, 20);
    fs_free(s, 3, 5, 0x3000);
    fs_alloc(s, 3, 6, 0x3100, 30);
    fs_alloc(s, 4, 7, 0x4000, 40);
    fs_free(s, 4, 8, 0x4000);
    fs_alloc(s, 5, 9, 0x5000, 50);
    fs_ev(s, 5, MEMSCOPE_REC_REALLOC_FREE, 10, 0x5000, 0);
    fs_ev(s, 5, MEMSCOPE_REC_REALLOC_ALLOC, 70, 0x5100, 60);
    fs_build(s, 8);
    return s;
}

static struct memscope_checkpoint *merge_exited(struct fake_store *s)
{
    struct ms_fold_cut first[5] = {{1, 0, 1, 0}, {2, 1, 0, MS_FOLD_GONE}, {3, 1, 0, MS_FOLD_GONE},
                                   {4, 1, 0, MS_FOLD_GONE}, {5, 0, 2, 0}};
    struct ms_fold_cut second[5] = {{1, 0, 1, 0}, {2, 1, 0, MS_FOLD_MERGE}, {3, 1, 0, MS_FOLD_MERGE},
                                    {4, 1, 0, MS_FOLD_MERGE}, {5, 0, 2, MS_FOLD_MERGE}};
    struct memscope_checkpoint *ck = fold_into(s, first, 5, 10, CK_ADDR);
    const struct memscope_checkpoint_thread *t = fake_mem_at(&s->mem, ck->threads);

    assert_int_equal(ck->thread_count, 5);
    assert_int_equal(t[0].flags, 0);
    assert_int_equal(t[1].flags, MEMSCOPE_CHECKPOINT_GONE);
    assert_int_equal(t[2].flags, MEMSCOPE_CHECKPOINT_GONE);
    assert_int_equal(t[3].flags, MEMSCOPE_CHECKPOINT_GONE);
    assert_int_equal(t[4].flags, MEMSCOPE_CHECKPOINT_STASH); /* not gone: never offered by the runtime, refused anyway */
    for (uint32_t k = 2; k <= 4; k++)
        fs_unlink_thread(s, k);
    return fold_into(s, second, 5, 10, CK_ADDR + 0x100000);
}

static void test_checkpoint_merge_exited(void **state)
{
    struct fake_store *s = exited_events(), *u = exited_events();
    struct memscope_checkpoint *ck = merge_exited(s);
    const struct memscope_checkpoint_thread *t = fake_mem_at(&s->mem, ck->threads);
    struct memscope_history *h = NULL, *hu = NULL;
    struct memscope_history_info info;
    struct memscope_snapshot *snap = NULL, *snapu = NULL;
    struct memscope_stats st, stu;
    struct memscope_thread_stats row;
    struct memscope_error err;
    char *text = NULL;
    size_t len;

    /* The checkpoint: the merged entry first, then 1, 3 (a live block) and 5 (a stash). */
    assert_int_equal(ck->thread_count, 4);
    assert_int_equal(t[0].thread, 0);
    assert_int_equal(t[0].merged, 2);
    assert_int_equal(t[0].allocations, 2);
    assert_int_equal(t[0].deallocations, 2);
    assert_int_equal(t[0].allocated_bytes, 50);
    assert_int_equal(t[0].released_bytes, 50);
    assert_int_equal(t[0].current_memory, 0);
    assert_int_equal(t[0].peak_memory, 40); /* the largest of 10 and 40, when it was reached */
    assert_int_equal(t[0].peak_time, 7);
    assert_int_equal(t[1].thread, 1);
    assert_int_equal(t[2].thread, 3);
    assert_int_equal(t[2].flags, MEMSCOPE_CHECKPOINT_GONE); /* kept for its block, still gone */
    assert_int_equal(t[3].thread, 5);
    assert_int_equal(t[1].merged + t[2].merged + t[3].merged, 0);
    /* The same figures as the unbounded store, but for the rows. */
    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(fs_open(u, &hu, &err), 0);
    assert_int_equal(memscope_history_info(h, &info), 0);
    assert_int_equal(info.threads, 5);
    assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
    assert_int_equal(memscope_history_snapshot(hu, NULL, &snapu), 0);
    assert_int_equal(memscope_snapshot_stats(snap, &st), 0);
    assert_int_equal(memscope_snapshot_stats(snapu, &stu), 0);
    assert_int_equal(st.threads, 5);
    assert_same_totals(&st, &stu);
    assert_int_equal(memscope_snapshot_thread_count(snap), 4);
    assert_int_equal(memscope_snapshot_thread_count(snapu), 5);
    assert_int_equal(memscope_snapshot_thread(snap, 0, &row), 0);
    assert_int_equal(row.thread, 0);
    assert_int_equal(row.tid, 0);
    assert_int_equal(row.allocations, 2);
    assert_int_equal(row.released_bytes, 50);
    assert_int_equal(memscope_snapshot_render_json(snap, NULL, &text, &len), 0);
    assert_non_null(strstr(text, "\"threads\": 5,"));
    assert_non_null(strstr(text, "{\"thread\": 0, \"tid\": 0, \"exited_threads\": 2, \"allocations\": 2,"));
    memscope_text_free(text);
    assert_int_equal(memscope_snapshot_render_text(snap, NULL, &text, &len), 0);
    expect_text(text, "exited: 2 threads that exited before the checkpoint horizon, merged into one row");
    memscope_text_free(text);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    /* A later fold carries the merged entry over (nothing more to merge). */
    {
        struct ms_fold_cut third[3] = {{1, 0, 1, 0}, {3, 1, 0, MS_FOLD_MERGE}, {5, 0, 2, 0}};
        ck = fold_into(s, third, 3, 10, CK_ADDR + 0x200000);
        t = fake_mem_at(&s->mem, ck->threads);
        assert_int_equal(ck->thread_count, 4);
        assert_int_equal(t[0].merged, 2);
        assert_int_equal(t[0].allocations, 2);
        assert_int_equal(ck->generation, 3);
    }
    memscope_snapshot_free(snapu);
    memscope_history_close(hu);
    fs_delete(s);
    fs_delete(u);
}

static void expect_ok(struct fake_store *s)
{
    struct memscope_history *h = NULL;
    struct memscope_error err;

    memset(&err, 0, sizeof(err));
    if (fs_open(s, &h, &err) != 0)
        fail_msg("refused: %s", err.message);
    memscope_history_close(h);
}

/* Damage to the merged entry, or a merged count elsewhere, is refused with a sentence. */
static void test_checkpoint_bad_merged(void **state)
{
    struct fake_store *s = exited_events();
    struct memscope_checkpoint *ck = merge_exited(s);
    struct memscope_checkpoint_thread *t = fake_mem_at(&s->mem, ck->threads);
    struct memscope_checkpoint_block *b = fake_mem_at(&s->mem, ck->blocks);

    expect_ok(s);
    t[0].merged = 0;
    expect_open(s, -EBADMSG, "the exited threads' entry (serial 0, 0 threads) is malformed");
    t[0].merged = 0x1000000;
    expect_open(s, -EBADMSG, "is malformed");
    t[0].merged = 2;
    t[0].tid = 77;
    expect_open(s, -EBADMSG, "is malformed");
    t[0].tid = 0;
    t[0].folded_records = 1;
    expect_open(s, -EBADMSG, "is malformed");
    t[0].folded_records = 0;
    t[0].flags = MEMSCOPE_CHECKPOINT_STASH;
    expect_open(s, -EBADMSG, "is malformed");
    t[0].flags = 0;
    t[0].peak_memory = ck->peak_memory + 1;
    expect_open(s, -EBADMSG, "is malformed");
    t[0].peak_memory = 40;
    t[2].merged = 1;
    expect_open(s, -EBADMSG, "thread 3 claims 1 merged threads");
    t[2].merged = 0;
    t[1].thread = 0; /* a second serial 0 */
    expect_open(s, -EBADMSG, "serials must rise from 1; 0 only first");
    t[1].thread = 1;
    for (uint64_t i = 0; i < ck->block_count; i++)
        if (b[i].thread == 3)
            b[i].thread = 0; /* a block of the exited threads */
    expect_open(s, -EBADMSG, "an unlisted thread 0");
    for (uint64_t i = 0; i < ck->block_count; i++)
        if (b[i].thread == 0)
            b[i].thread = 3;
    t[3].stash_thread = 0; /* a stash naming a block of thread 0 */
    expect_open(s, -EBADMSG, "names a block of thread 0");
    t[3].stash_thread = 5;
    ck->thread_size = 128; /* an ABI 5 entry */
    expect_open(s, -EBADMSG, "entry sizes");
    ck->thread_size = sizeof(*t);
    expect_ok(s);
    fs_delete(s);
}

/*
 * A thread marked GONE is wholly folded and links no more chunks (the
 * runtime's rule, which lets a later fold merge its entry); a linked chunk
 * of it past its cut is damage, refused with a sentence, not replayed.
 */
static void test_checkpoint_gone_chunk_past_cut(void **state)
{
    struct fake_store *s = exited_events();
    struct ms_fold_cut first[5] = {{1, 0, 1, 0}, {2, 1, 0, MS_FOLD_GONE}, {3, 1, 0, MS_FOLD_GONE},
                                   {4, 1, 0, MS_FOLD_GONE}, {5, 0, 2, 0}};
    struct memscope_checkpoint *ck = fold_into(s, first, 5, 10, CK_ADDR);
    struct memscope_checkpoint_thread *t = fake_mem_at(&s->mem, ck->threads);
    struct memscope_chunk *c3 = NULL;

    for (int i = 0; i < s->nchunks; i++)
        if (fs_chunk(s, i)->thread == 3)
            c3 = fs_chunk(s, i);
    assert_non_null(c3);
    assert_int_equal(t[2].thread, 3);
    assert_int_equal(t[2].flags, MEMSCOPE_CHECKPOINT_GONE);
    assert_int_equal(c3->seq, 0);
    expect_ok(s); /* its chunk below the cut, still linked: skipped */
    c3->seq = 1; /* a chunk at the cut, with records */
    expect_open(s, -EBADMSG, "thread 3 is gone (its cut at chunk seq 1, record 0, covers all its records), yet chunk");
    c3->seq = 2; /* past it */
    expect_open(s, -EBADMSG, "(seq 2, 3 records) lies past that cut");
    c3->seq = 0;
    t[2].folded_seq = 0; /* a cut inside the chunk: records past it */
    t[2].folded_records = 1;
    expect_open(s, -EBADMSG, "thread 3 is gone");
    t[2].folded_records = 3; /* a cut at its last record: nothing past it */
    expect_ok(s);
    t[2].flags = 0; /* not gone: records past a cut are simply replayed */
    t[2].folded_records = 1;
    expect_ok(s);
    fs_delete(s);
}

/*
 * A store big enough that the fold's arrays are mapped (events, merge
 * windows, the live table: >= 1 MiB each): 16 threads of 4096 records, each
 * first allocating 1100 blocks, then freeing and allocating at random among
 * 1200 slots. Record r of thread t is timed 16 r + t + 1.
 */
#define KEEP_THREADS 16u
#define KEEP_RECORDS 4096u
static struct fake_store *many_events(void)
{
    struct fake_store *s = fs_new();
    uint64_t rng = 0x9e3779b97f4a7c15u;
    static uint8_t live[KEEP_THREADS][1200];
    unsigned t, r;

    memset(live, 0, sizeof(live));
    for (r = 0; r < KEEP_RECORDS; r++) {
        for (t = 0; t < KEEP_THREADS; t++) {
            uint64_t time = 16 * (uint64_t)r + t + 1, slot;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            slot = r < 1100 ? r : rng % 1200;
            uint64_t addr = 0x100000000ull * (t + 1) + slot * 64;
            if (live[t][slot]) {
                fs_free(s, t + 1, time, addr);
                live[t][slot] = 0;
            } else {
                fs_alloc(s, t + 1, time, addr, 16 + rng % 200);
                live[t][slot] = 1;
            }
        }
    }
    fs_build(s, KEEP_RECORDS);
    return s;
}

/* The fold's arrays kept from one fold to the next (ms_engine_big_keep, as
 * the runtime's folder does), their old contents scribbled over, give the
 * same checkpoints byte for byte as arrays mapped fresh each time. */
static void test_checkpoint_fold_reuses_arrays(void **state)
{
    struct fake_store *fresh = many_events(), *kept = many_events();
    unsigned long reused = 0;
    unsigned step, t;

    for (step = 1; step <= 3; step++) {
        struct ms_fold_cut cuts[KEEP_THREADS];
        uint64_t addr = UINT64_C(0x40000000) + step * UINT64_C(0x1000000);
        struct memscope_checkpoint *a, *b;
        for (t = 0; t < KEEP_THREADS; t++)
            cuts[t] = (struct ms_fold_cut){t + 1, 0, step * 1300, 0};
        a = fold_into(fresh, cuts, KEEP_THREADS, 16 * step * 1300, addr);
        ms_engine_big_keep(1);
        if (step > 1) {
            assert_true(ms_engine_big_kept(NULL, 0xa5) >= (2u << 20)); /* the events and the table at least */
        }
        b = fold_into(kept, cuts, KEEP_THREADS, 16 * step * 1300, addr);
        assert_int_equal(a->map_size, b->map_size);
        assert_true(a->block_count > 8000);
        assert_memory_equal(a, b, a->map_size);
    }
    ms_engine_big_kept(&reused, -1);
    assert_true(reused >= 6);
    ms_engine_big_keep(0);
    assert_int_equal(ms_engine_big_kept(NULL, -1), 0);
    {
        struct memscope_stats x = end_stats(fresh), y = end_stats(kept);
        assert_memory_equal(&x, &y, sizeof(x));
    }
    fs_delete(fresh);
    fs_delete(kept);
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
        cmocka_unit_test(test_checkpoint_folded_mark_before_horizon),
        cmocka_unit_test(test_checkpoint_folded_mark_on_timeline),
        cmocka_unit_test(test_checkpoint_bad_marks),
        cmocka_unit_test(test_checkpoint_fold_keeps_marks),
        cmocka_unit_test(test_checkpoint_horizon_never_recedes),
        cmocka_unit_test(test_checkpoint_merge_exited),
        cmocka_unit_test(test_checkpoint_bad_merged),
        cmocka_unit_test(test_checkpoint_gone_chunk_past_cut),
        cmocka_unit_test(test_checkpoint_fold_reuses_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
