/*
 * test_history.c - snapshots at points (end, time, event, mark, peak) and
 * their errors, snapshot handles and queries (stats, threads, foreach,
 * find_block), ordering across many threads.
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
#include "internal.h"

/*
 * Thread 1: alloc A=100 @10, mark "start" @15, alloc B=200 @20, free A @30,
 *           mark "mid" @35, alloc C=50 @40, mark "mid" again @45.
 * Thread 2: alloc D=400 @25 (peak 700 at 25), free D @50.
 */
static struct memscope_history *open_points(struct fake_store **sp)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_error err;

    fs_alloc(s, 1, 10, 0xa000, 100);
    fs_mark(s, 1, 15, "start");
    fs_alloc(s, 1, 20, 0xb000, 200);
    fs_free(s, 1, 30, 0xa000);
    fs_mark(s, 1, 35, "mid");
    fs_alloc(s, 1, 40, 0xc000, 50);
    fs_mark(s, 1, 45, "mid");
    fs_alloc(s, 2, 25, 0xd000, 400);
    fs_free(s, 2, 50, 0xd000);
    fs_build(s, 3);
    assert_int_equal(fs_open(s, &h, &err), 0);
    *sp = s;
    return h;
}

static struct memscope_stats at(struct memscope_history *h, enum memscope_point_kind kind, uint64_t value,
                                const char *mark)
{
    struct memscope_point p = {kind, value, mark};
    struct memscope_snapshot *snap = NULL;
    struct memscope_stats st;

    assert_int_equal(memscope_history_snapshot(h, &p, &snap), 0);
    assert_int_equal(memscope_snapshot_stats(snap, &st), 0);
    memscope_snapshot_free(snap);
    return st;
}

static void test_history_at_end(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_points(&s);
    struct memscope_stats st = at(h, MEMSCOPE_AT_END, 0, NULL);
    struct memscope_history_info info;

    assert_int_equal(st.events, 9);
    assert_int_equal(st.time_ns, 50);
    assert_int_equal(st.current_memory, 250);
    assert_int_equal(st.peak_memory, 700);
    assert_int_equal(st.peak_time_ns, 25);
    assert_int_equal(memscope_history_info(h, &info), 0);
    assert_int_equal(info.marks, 3);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_history_at_time(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_points(&s);
    struct memscope_snapshot *snap = NULL;
    struct memscope_point p = {MEMSCOPE_AT_TIME, 51, NULL};
    struct memscope_stats st;

    st = at(h, MEMSCOPE_AT_TIME, 24, NULL); /* A, start, B */
    assert_int_equal(st.events, 3);
    assert_int_equal(st.time_ns, 24);
    assert_int_equal(st.current_memory, 300);
    assert_int_equal(st.threads, 1);
    st = at(h, MEMSCOPE_AT_TIME, 25, NULL); /* an event at exactly T is in */
    assert_int_equal(st.current_memory, 700);
    assert_int_equal(st.threads, 2);
    st = at(h, MEMSCOPE_AT_TIME, 0, NULL);
    assert_int_equal(st.events, 0);
    assert_int_equal(st.current_memory, 0);
    st = at(h, MEMSCOPE_AT_TIME, 50, NULL);
    assert_int_equal(st.events, 9);
    assert_int_equal(memscope_history_snapshot(h, &p, &snap), -ERANGE);
    assert_null(snap);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_history_at_event(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_points(&s);
    struct memscope_snapshot *snap = NULL;
    struct memscope_point p = {MEMSCOPE_AT_EVENT, 10, NULL};
    struct memscope_stats st;

    st = at(h, MEMSCOPE_AT_EVENT, 0, NULL);
    assert_int_equal(st.events, 0);
    assert_int_equal(st.active_allocations, 0);
    assert_int_equal(st.threads, 0);
    st = at(h, MEMSCOPE_AT_EVENT, 4, NULL); /* A, start, B, D */
    assert_int_equal(st.current_memory, 700);
    assert_int_equal(st.time_ns, 25);
    st = at(h, MEMSCOPE_AT_EVENT, 9, NULL);
    assert_int_equal(st.current_memory, 250);
    assert_int_equal(memscope_history_snapshot(h, &p, &snap), -ERANGE);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_history_at_mark(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_points(&s);
    struct memscope_snapshot *snap = NULL;
    struct memscope_point p = {MEMSCOPE_AT_MARK, 0, "nope"};
    struct memscope_stats st;

    st = at(h, MEMSCOPE_AT_MARK, 0, "start");
    assert_int_equal(st.events, 2);
    assert_int_equal(st.time_ns, 15);
    assert_int_equal(st.current_memory, 100);
    st = at(h, MEMSCOPE_AT_MARK, 0, "mid"); /* the first of two */
    assert_int_equal(st.events, 6);
    assert_int_equal(st.time_ns, 35);
    assert_int_equal(st.current_memory, 600);
    assert_int_equal(memscope_history_snapshot(h, &p, &snap), -ENOENT);
    p.mark = NULL;
    assert_int_equal(memscope_history_snapshot(h, &p, &snap), -EINVAL);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_history_at_peak(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_points(&s);
    struct memscope_stats st = at(h, MEMSCOPE_AT_PEAK, 0, NULL);

    assert_int_equal(st.events, 4);
    assert_int_equal(st.time_ns, 25);
    assert_int_equal(st.current_memory, 700);
    assert_int_equal(st.peak_memory, 700);
    assert_int_equal(st.peak_time_ns, 25);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_history_bad_arguments(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_points(&s);
    struct memscope_snapshot *snap = NULL;
    struct memscope_point p = {(enum memscope_point_kind)42, 0, NULL};
    uint64_t junk[32] = {0};

    assert_int_equal(memscope_history_snapshot(h, &p, &snap), -EINVAL);
    assert_int_equal(memscope_history_snapshot(NULL, NULL, &snap), -EINVAL);
    assert_int_equal(memscope_history_snapshot((struct memscope_history *)junk, NULL, &snap), -EINVAL);
    assert_int_equal(memscope_history_snapshot(h, NULL, NULL), -EINVAL);
    memscope_history_close((struct memscope_history *)junk); /* ignored */
    memscope_history_close(h);
    fs_delete(s);
}

static int count_blocks(const struct memscope_allocation *b, void *arg)
{
    (*(int *)arg)++;
    return 0;
}

static int stop_at_second(const struct memscope_allocation *b, void *arg)
{
    return ++(*(int *)arg) == 2 ? 77 : 0;
}

static void test_history_snapshot_handles(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_points(&s);
    struct memscope_snapshot *snap = NULL;
    struct memscope_stats st;
    struct memscope_thread_stats ts;
    uint64_t junk[64];
    int n = 0;

    memset(junk, 0x5a, sizeof(junk));
    assert_int_equal(memscope_snapshot_stats(NULL, &st), -EINVAL);
    assert_int_equal(memscope_snapshot_stats((struct memscope_snapshot *)junk, &st), -EINVAL);
    assert_int_equal(memscope_snapshot_thread_count(NULL), 0);
    assert_int_equal(memscope_snapshot_thread_count((struct memscope_snapshot *)junk), 0);
    assert_int_equal(memscope_snapshot_thread(NULL, 0, &ts), -EINVAL);
    assert_int_equal(memscope_snapshot_foreach(NULL, count_blocks, &n), -EINVAL);
    memscope_snapshot_free(NULL);
    memscope_snapshot_free((struct memscope_snapshot *)junk); /* foreign: ignored */

    assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
    memscope_history_close(h); /* the snapshot stays valid */
    assert_int_equal(memscope_snapshot_thread_count(snap), 2);
    assert_int_equal(memscope_snapshot_thread(snap, 2, &ts), -ERANGE);
    assert_int_equal(memscope_snapshot_thread(snap, 1, &ts), 0);
    assert_int_equal(ts.thread, 2);
    assert_int_equal(ts.tid, 1002);
    assert_int_equal(memscope_snapshot_thread(snap, 0, NULL), -EINVAL);
    assert_int_equal(memscope_snapshot_foreach(snap, NULL, NULL), -EINVAL);
    assert_int_equal(memscope_snapshot_foreach(snap, count_blocks, &n), 0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(memscope_snapshot_foreach(snap, stop_at_second, &n), 77);
    memscope_snapshot_free(snap);
    fs_delete(s);
}

static void test_history_find_block(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_snapshot *snap = NULL;
    struct memscope_allocation a;
    struct memscope_error err;

    fs_alloc(s, 1, 1, 0x1000, 0x100);
    fs_alloc(s, 1, 2, 0x1100, 0x10);
    fs_alloc(s, 1, 3, 0x2000, 0); /* zero-size block holds its own address only */
    fs_label(s, 1, 4, 0x1100, "n", "int");
    fs_build(s, 8);
    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
    assert_int_equal(memscope_snapshot_find_block(snap, 0x1000, &a), 0);
    assert_int_equal(a.address, 0x1000);
    assert_int_equal(memscope_snapshot_find_block(snap, 0x10ff, &a), 0);
    assert_int_equal(a.address, 0x1000);
    assert_int_equal(memscope_snapshot_find_block(snap, 0x1105, &a), 0);
    assert_int_equal(a.address, 0x1100);
    assert_string_equal(a.label_name, "n");
    assert_string_equal(a.label_type, "int");
    assert_int_equal(memscope_snapshot_find_block(snap, 0x1110, &a), -ENOENT);
    assert_int_equal(memscope_snapshot_find_block(snap, 0xfff, &a), -ENOENT);
    assert_int_equal(memscope_snapshot_find_block(snap, 0x2000, &a), 0);
    assert_int_equal(memscope_snapshot_find_block(snap, 0x2001, &a), -ENOENT);
    assert_int_equal(memscope_snapshot_find_block(NULL, 0x1000, &a), -EINVAL);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_history_many_threads_merge(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_snapshot *snap = NULL;
    struct memscope_error err;
    struct memscope_stats st;
    uint32_t t;
    int i;

    /* 70 threads (more than the merge's on-stack heap) interleaved in time; each
     * frees the block the previous thread allocated: any misorder shows as unmatched. */
    for (i = 0; i < 200; i++) {
        t = 1 + (uint32_t)(i % 70);
        fs_alloc(s, t, 100 * (uint64_t)i + 10, 0x100000 + 0x100 * (uint64_t)i, 8);
        if (i > 0)
            fs_free(s, t, 100 * (uint64_t)i + 20, 0x100000 + 0x100 * (uint64_t)(i - 1));
    }
    fs_build(s, 5);
    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
    memscope_snapshot_stats(snap, &st);
    assert_int_equal(st.unmatched_deallocations, 0);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.peak_memory, 16);
    assert_int_equal(st.threads, 70);
    assert_int_equal(memscope_snapshot_thread_count(snap), 70);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(s);
}

struct order_check {
    uint64_t last;
    int n;
    int bad;
};

static int check_order(const struct memscope_allocation *b, void *arg)
{
    struct order_check *c = arg;
    if (c->n > 0 && b->address <= c->last)
        c->bad++;
    c->last = b->address;
    c->n++;
    return 0;
}

static void test_history_foreach_address_order(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_snapshot *snap = NULL;
    struct memscope_error err;
    struct order_check c = {0};
    uint64_t rng = 88172645463325252u;
    int i;

    /* 8000 blocks at addresses spread over the whole 64-bit space (every radix digit varies). */
    for (i = 0; i < 8000; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        fs_alloc(s, 1 + (uint32_t)(i % 2), (uint64_t)i, (rng | 1) & ~(uint64_t)0xf0, 1);
    }
    fs_build(s, 1000);
    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
    assert_int_equal(memscope_snapshot_foreach(snap, check_order, &c), 0);
    assert_int_equal(c.n, 8000);
    assert_int_equal(c.bad, 0);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_history_order_primitives(void **state)
{
    struct ms_event ev[1000], tmp[1000], out[1000];
    uint64_t starts[3] = {0, 500, 1000};
    int i;

    /* A thread sequence sorted stably: equal times keep their order. */
    for (i = 0; i < 1000; i++) {
        ev[i].time = (uint64_t)((i * 7919) % 101);
        ev[i].address = (uint64_t)i;
        ev[i].info = MS_EV_INFO(MEMSCOPE_REC_ALLOC, 0);
    }
    ms_sort_thread_events(ev, 1000, tmp);
    for (i = 1; i < 1000; i++) {
        assert_true(ev[i - 1].time <= ev[i].time);
        if (ev[i - 1].time == ev[i].time)
            assert_true(ev[i - 1].address < ev[i].address);
    }
    /* Merge at equal times: the release first whatever the thread. */
    for (i = 0; i < 1000; i++) {
        ev[i].time = (uint64_t)(i % 500);
        ev[i].info = MS_EV_INFO(i < 500 ? MEMSCOPE_REC_ALLOC : MEMSCOPE_REC_FREE, i < 500 ? 0 : 1);
    }
    assert_int_equal(ms_merge_threads(ev, starts, 2, out), 0);
    for (i = 0; i < 1000; i += 2) {
        assert_int_equal(out[i].time, (uint64_t)(i / 2));
        assert_int_equal(MS_EV_KIND(out[i].info), MEMSCOPE_REC_FREE);
        assert_int_equal(MS_EV_KIND(out[i + 1].info), MEMSCOPE_REC_ALLOC);
    }
}

/* Reference order: key (time * 2 + not-a-release), then thread, then position. */
struct ref_item {
    uint64_t key;
    uint32_t thread;
    uint32_t pos;
};

static int ref_cmp(const void *pa, const void *pb)
{
    const struct ref_item *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    if (a->thread != b->thread)
        return a->thread < b->thread ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static void test_history_merge_matches_reference(void **state)
{
    enum { N = 6000 };
    static struct ms_event in[N], out[N];
    static struct ref_item ref[N];
    uint64_t rng = 0x1234567u;
    uint32_t nthreads;

    /* Bursty and fine interleavings, many equal times, 1 to 9 threads: the
     * register merge (up to 4) and the loser tree (beyond) agree with a sort. */
    for (nthreads = 1; nthreads <= 9; nthreads++) {
        uint64_t starts[10], t_of[10];
        uint32_t t;
        size_t i = 0;
        int burst;
        for (burst = 0; burst < 2; burst++) {
            for (t = 0; t < nthreads; t++)
                t_of[t] = 0;
            i = 0;
            for (t = 0; t < nthreads; t++) {
                size_t k, len = N / nthreads;
                starts[t] = i;
                for (k = 0; k < len; k++, i++) {
                    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                    if (!burst || rng % 16 == 0)
                        t_of[t] += rng % 3; /* equal times are frequent */
                    in[i].time = t_of[t] * 2; /* keys may only grow within a thread: */
                    in[i].info = MS_EV_INFO((rng >> 8) % 2 ? MEMSCOPE_REC_FREE : MEMSCOPE_REC_ALLOC, t);
                    if (k > 0 && in[i].time == in[i - 1].time && MS_EV_KIND(in[i - 1].info) == MEMSCOPE_REC_ALLOC)
                        in[i].info = MS_EV_INFO(MEMSCOPE_REC_ALLOC, t);
                    in[i].address = ((uint64_t)t << 32) | k;
                    ref[i].key = in[i].time * 2 + (MS_EV_KIND(in[i].info) == MEMSCOPE_REC_FREE ? 0 : 1);
                    ref[i].thread = t;
                    ref[i].pos = (uint32_t)k;
                }
            }
            starts[nthreads] = i;
            assert_int_equal(ms_merge_threads(in, starts, nthreads, out), 0);
            qsort(ref, i, sizeof(ref[0]), ref_cmp);
            for (size_t j = 0; j < i; j++)
                assert_int_equal(out[j].address, ((uint64_t)ref[j].thread << 32) | ref[j].pos);
        }
    }
}

/* Hands each thread's events over in pieces of 1 to 7 events. */
struct pieces {
    const struct ms_event *in;
    const uint64_t *starts;
    uint64_t next[64]; /* per thread: first event not handed over */
    uint64_t rng;
};

static int pieces_refill(void *ctx, uint32_t t, struct ms_run *run)
{
    struct pieces *pc = ctx;
    uint64_t n, left = pc->starts[t + 1] - pc->next[t];

    pc->rng ^= pc->rng << 13, pc->rng ^= pc->rng >> 7, pc->rng ^= pc->rng << 17;
    n = 1 + pc->rng % 7;
    if (n > left)
        n = left;
    run->p = pc->in + pc->next[t];
    run->pe = run->p + n;
    pc->next[t] += n;
    return 0;
}

static void test_history_merge_stream_in_pieces(void **state)
{
    enum { N = 3000 };
    static struct ms_event in[N], out[N], ref[N];
    uint64_t rng = 0x7654321u;
    uint32_t nthreads;

    /* Runs handed over a few events at a time merge exactly as whole runs. */
    for (nthreads = 1; nthreads <= 9; nthreads++) {
        struct ms_run runs[9];
        struct pieces pc = {in, NULL, {0}, 0x42u};
        uint64_t starts[10], tm[9] = {0};
        uint32_t t;
        size_t i = 0;
        for (t = 0; t < nthreads; t++) {
            size_t k, len = N / nthreads - t;
            starts[t] = i;
            for (k = 0; k < len; k++, i++) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                if (rng % (t + 2) == 0) /* bursts of every length */
                    tm[t] += rng % 3;
                in[i].time = tm[t];
                in[i].info = MS_EV_INFO((rng >> 8) % 2 ? MEMSCOPE_REC_FREE : MEMSCOPE_REC_ALLOC, t);
                if (k > 0 && in[i].time == in[i - 1].time && MS_EV_KIND(in[i - 1].info) == MEMSCOPE_REC_ALLOC)
                    in[i].info = MS_EV_INFO(MEMSCOPE_REC_ALLOC, t);
                in[i].address = ((uint64_t)t << 32) | k;
            }
        }
        starts[nthreads] = i;
        assert_int_equal(ms_merge_threads(in, starts, nthreads, ref), 0);
        pc.starts = starts;
        for (t = 0; t < nthreads; t++) {
            pc.next[t] = starts[t];
            assert_int_equal(pieces_refill(&pc, t, &runs[t]), 0);
        }
        memset(out, 0, sizeof(out));
        assert_int_equal(ms_merge_stream(runs, nthreads, i, pieces_refill, &pc, out), 0);
        assert_memory_equal(out, ref, i * sizeof(*out));
        /* A total beyond what the runs hold is refused, not read past. */
        for (t = 0; t < nthreads; t++) {
            pc.next[t] = starts[t];
            assert_int_equal(pieces_refill(&pc, t, &runs[t]), 0);
        }
        assert_int_equal(ms_merge_stream(runs, nthreads, i + 1, pieces_refill, &pc, out), -EIO);
    }
}

/* The merge's definition, one event at a time: the thread whose head has the
 * lowest key (time clamped below 2^62, times 2, plus 1 for anything but a
 * release) goes next, the lower thread on equal keys. Unlike a sort, it keeps
 * each thread's order even where a thread's keys go down. */
static void greedy_merge(const struct ms_event *in, const uint64_t *starts, uint32_t nthreads, struct ms_event *out)
{
    uint64_t pos[64], n = 0;
    uint32_t t;

    for (t = 0; t < nthreads; t++)
        pos[t] = starts[t];
    for (;;) {
        uint32_t best = nthreads;
        uint64_t best_key = 0;
        for (t = 0; t < nthreads; t++) {
            const struct ms_event *e = &in[pos[t]];
            uint64_t tm, key;
            unsigned kind;
            if (pos[t] == starts[t + 1])
                continue;
            tm = e->time < (UINT64_C(1) << 62) ? e->time : (UINT64_C(1) << 62);
            kind = MS_EV_KIND(e->info);
            key = tm * 2 + (kind == MEMSCOPE_REC_FREE || kind == MEMSCOPE_REC_REALLOC_FREE ? 0 : 1);
            if (best == nthreads || key < best_key) {
                best = t;
                best_key = key;
            }
        }
        if (best == nthreads)
            break;
        out[n++] = in[pos[best]++];
    }
}

/*
 * The merge against its definition: 2, 3, 4, 5 and 64 threads; threads
 * interleaved event by event, in bursts, and switching between the two
 * (the few-thread merge chooses its way every 4096 events); many equal
 * times across and within threads, keys going down within a thread (an
 * allocation then a release at one time), a thread that ends early, times
 * at and beyond 2^60 (the few-thread merge hands over to the loser tree) and
 * 2^62 (keys clamp); runs whole and handed over a few events at a time.
 */
static void test_history_merge_matches_greedy(void **state)
{
    enum { N = 40000 };
    static struct ms_event in[N], out[N], ref[N];
    static const uint32_t counts[] = {2, 3, 4, 5, 64};
    uint64_t rng = 0x9e3779b97f4a7c15u;
    size_t ci;
    int pattern;

    for (ci = 0; ci < sizeof(counts) / sizeof(counts[0]); ci++)
        for (pattern = 0; pattern < 6; pattern++) {
            uint32_t nthreads = counts[ci], t, cur = 0;
            uint64_t starts[65], tm = 1000, len[64] = {0};
            static struct ms_event tmp[64][N / 2];
            struct ms_run runs[64];
            struct pieces pc = {in, starts, {0}, 0x42u};
            size_t i, pos = 0;
            for (i = 0; i < N; i++) {
                struct ms_event *e;
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                /* which thread: event by event, bursts, or alternating every ~5000 */
                if (pattern == 0 || pattern >= 3 || ((pattern == 2) && (i / 5000) % 2 == 0))
                    cur = (uint32_t)(rng % nthreads);
                else if (rng % 64 == 0)
                    cur = (uint32_t)((rng >> 8) % nthreads);
                if (pattern == 5 && cur == 1 && i > N / 8)
                    cur = 0; /* thread 1 ends early */
                if (len[cur] == N / 2)
                    continue;
                if (pattern == 3 || (rng >> 20) % 4 == 0)
                    tm += 0; /* equal times, across threads too */
                else
                    tm += (rng >> 24) % 5;
                e = &tmp[cur][len[cur]];
                e->time = tm;
                if (pattern == 4 && i > N / 3)
                    e->time = tm + (i > N / 2 ? (UINT64_C(1) << 62) - 500 : (UINT64_C(1) << 60) - 20000);
                if (pattern == 4 && i > 3 * N / 4)
                    e->time = UINT64_MAX - (uint64_t)(N - i) / 8;
                e->info = MS_EV_INFO((rng >> 32) % 3 == 0 ? MEMSCOPE_REC_FREE : MEMSCOPE_REC_ALLOC, cur);
                if ((rng >> 36) % 8 == 0 && len[cur] > 0) /* a release at its allocation's time: keys go down */
                    e->time = tmp[cur][len[cur] - 1].time;
                if (len[cur] > 0 && e->time < tmp[cur][len[cur] - 1].time)
                    e->time = tmp[cur][len[cur] - 1].time;
                e->address = ((uint64_t)cur << 32) | len[cur];
                len[cur]++;
            }
            for (t = 0; t < nthreads; t++) {
                starts[t] = pos;
                memcpy(&in[pos], tmp[t], len[t] * sizeof(in[0]));
                pos += len[t];
            }
            starts[nthreads] = pos;
            greedy_merge(in, starts, nthreads, ref);
            memset(out, 0, sizeof(out));
            assert_int_equal(ms_merge_threads(in, starts, nthreads, out), 0);
            assert_memory_equal(out, ref, pos * sizeof(*out));
            for (t = 0; t < nthreads; t++) {
                pc.next[t] = starts[t];
                assert_int_equal(pieces_refill(&pc, t, &runs[t]), 0);
            }
            memset(out, 0, sizeof(out));
            assert_int_equal(ms_merge_stream(runs, nthreads, pos, pieces_refill, &pc, out), 0);
            assert_memory_equal(out, ref, pos * sizeof(*out));
        }
}

/* A history whose arrays would take more than the machine's memory is
 * refused at once with a sentence (here the limit is lowered to one byte
 * short of what 5 events of two threads need: two arrays of 5 events). */
static void test_history_memory_limit(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_error err;

    (void)state;
    fs_alloc(s, 1, 10, 0xa000, 100);
    fs_alloc(s, 1, 20, 0xb000, 200);
    fs_free(s, 1, 30, 0xa000);
    fs_alloc(s, 2, 25, 0xd000, 400);
    fs_free(s, 2, 50, 0xd000);
    fs_build(s, 3);
    ms_engine_memory_limit_set(2 * 5 * sizeof(struct ms_event) - 1);
    assert_int_equal(fs_open(s, &h, &err), -ENOMEM);
    assert_null(h);
    assert_string_equal(err.message, "the history holds 5 events: reading them needs 1 MiB, more than this "
                                     "machine's memory (0 MiB)");
    ms_engine_memory_limit_set(2 * 5 * sizeof(struct ms_event));
    assert_int_equal(fs_open(s, &h, &err), 0);
    memscope_history_close(h);
    ms_engine_memory_limit_set(0);
    assert_true(ms_engine_memory_limit() > (uint64_t)1 << 26); /* the machine's: more than 64 MiB */
    fs_delete(s);
}

static void test_history_out_of_memory(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_points(&s);
    unsigned long n;
    int kind;

    /* Fail the n-th engine allocation for n = 1, 2, ... in every call after
     * open: -ENOMEM each time until it needs no more, never a crash or leak. */
    for (kind = 0; kind < 4; kind++) {
        for (n = 1; n < 500; n++) {
            struct memscope_snapshot *snap = NULL;
            struct memscope_point peak = {MEMSCOPE_AT_PEAK, 0, NULL};
            struct memscope_render_options o = {0};
            char *out = NULL;
            int rc;
            if (kind == 0) {
                ms_engine_fail_at(n, 0);
                rc = memscope_history_snapshot(h, &peak, &snap);
                ms_engine_fail_at(0, 0);
                memscope_snapshot_free(snap);
            } else {
                assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
                o.group_by = MEMSCOPE_GROUP_LABEL;
                ms_engine_fail_at(n, 0);
                if (kind == 1)
                    rc = memscope_snapshot_render_text(snap, &o, &out, NULL);
                else if (kind == 2)
                    rc = memscope_snapshot_render_json(snap, &o, &out, NULL);
                else
                    rc = memscope_history_render_block(h, snap, 0xb000, &o, &out, NULL);
                ms_engine_fail_at(0, 0);
                memscope_text_free(out);
                memscope_snapshot_free(snap);
            }
            if (rc == 0)
                break;
            assert_int_equal(rc, -ENOMEM);
        }
        assert_true(n < 500);
    }
    memscope_history_close(h);
    fs_delete(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_at_end),
        cmocka_unit_test(test_history_at_time),
        cmocka_unit_test(test_history_at_event),
        cmocka_unit_test(test_history_at_mark),
        cmocka_unit_test(test_history_at_peak),
        cmocka_unit_test(test_history_bad_arguments),
        cmocka_unit_test(test_history_snapshot_handles),
        cmocka_unit_test(test_history_find_block),
        cmocka_unit_test(test_history_many_threads_merge),
        cmocka_unit_test(test_history_foreach_address_order),
        cmocka_unit_test(test_history_order_primitives),
        cmocka_unit_test(test_history_merge_matches_reference),
        cmocka_unit_test(test_history_merge_stream_in_pieces),
        cmocka_unit_test(test_history_merge_matches_greedy),
        cmocka_unit_test(test_history_memory_limit),
        cmocka_unit_test(test_history_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
