/*
 * test_time.c - time travel: locating points (and the errors for points
 * outside the recorded history), diffs between two points, timelines.
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
 * Thread 1: alloc a=100 @10, label a "buf" (char) @11, mark "start" @15,
 *           alloc b=200 @20, free a @30, mark "mid" @35, alloc c=50 @40,
 *           free b @60, mark "end" @70.
 * Thread 2: alloc d=400 @25, alloc e=1000 @45, free d @50, free e @55.
 * Live bytes: 100 @10, 300 @20, 700 @25, 600 @30, 650 @40, 1650 @45 (peak,
 * event 9), 1250 @50, 250 @55, 50 @60. 13 events.
 */
#define A 0xa000
#define B 0xb000
#define C 0xc000
#define D 0xd000
#define E 0xe000

static struct memscope_history *open_curve(struct fake_store **sp)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_error err;

    fs_alloc(s, 1, 10, A, 100);
    fs_label(s, 1, 11, A, "buf", "char");
    fs_mark(s, 1, 15, "start");
    fs_alloc(s, 1, 20, B, 200);
    fs_free(s, 1, 30, A);
    fs_mark(s, 1, 35, "mid");
    fs_alloc(s, 1, 40, C, 50);
    fs_free(s, 1, 60, B);
    fs_mark(s, 1, 70, "end");
    fs_alloc(s, 2, 25, D, 400);
    fs_alloc(s, 2, 45, E, 1000);
    fs_free(s, 2, 50, D);
    fs_free(s, 2, 55, E);
    fs_build(s, 4);
    assert_int_equal(fs_open(s, &h, &err), 0);
    *sp = s;
    return h;
}

static int locate(struct memscope_history *h, enum memscope_point_kind kind, uint64_t value, const char *mark,
                  struct memscope_point_info *pi, struct memscope_error *err)
{
    struct memscope_point p = {kind, value, mark};
    return memscope_history_locate(h, &p, pi, err);
}

static void test_time_locate(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_curve(&s);
    struct memscope_point_info pi;
    struct memscope_error err;

    (void)state;
    assert_int_equal(locate(h, MEMSCOPE_AT_PEAK, 0, NULL, &pi, &err), 0);
    assert_int_equal(pi.events, 9);
    assert_int_equal(pi.time_ns, 45);
    assert_int_equal(locate(h, MEMSCOPE_AT_MARK, 0, "mid", &pi, &err), 0);
    assert_int_equal(pi.events, 7);
    assert_int_equal(pi.time_ns, 35);
    assert_int_equal(locate(h, MEMSCOPE_AT_TIME, 10, NULL, &pi, &err), 0); /* the first event's instant */
    assert_int_equal(pi.events, 1);
    assert_int_equal(locate(h, MEMSCOPE_AT_TIME, 70, NULL, &pi, &err), 0);
    assert_int_equal(pi.events, 13);
    assert_int_equal(locate(h, MEMSCOPE_AT_END, 0, NULL, &pi, &err), 0);
    assert_int_equal(pi.events, 13);
    assert_int_equal(pi.time_ns, 70);
    assert_int_equal(locate(h, MEMSCOPE_AT_EVENT, 0, NULL, &pi, &err), 0);
    assert_int_equal(pi.events, 0);
    /* Outside the history: clear sentences. */
    assert_int_equal(locate(h, MEMSCOPE_AT_TIME, 9, NULL, &pi, &err), -ERANGE);
    assert_string_equal(err.message, "time 0.000000 s lies before the recorded history: its first event is at 0.000000 s");
    assert_int_equal(locate(h, MEMSCOPE_AT_TIME, 3000000000u, NULL, &pi, &err), -ERANGE);
    assert_string_equal(err.message, "time 3.000000 s lies after the recorded history: its last event is at 0.000000 s");
    assert_int_equal(locate(h, MEMSCOPE_AT_EVENT, 14, NULL, &pi, &err), -ERANGE);
    assert_string_equal(err.message, "event 14 lies after the recorded history: it holds 13 events");
    assert_int_equal(locate(h, MEMSCOPE_AT_MARK, 0, "nope", &pi, &err), -ENOENT);
    assert_string_equal(err.message, "the store has no mark named 'nope'");
    assert_int_equal(locate(h, (enum memscope_point_kind)9, 0, NULL, &pi, &err), -EINVAL);
    assert_int_equal(locate(h, MEMSCOPE_AT_END, 0, NULL, NULL, NULL), -EINVAL);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_time_locate_empty(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_error err;
    struct memscope_point_info pi;
    struct memscope_timeline *tl = NULL;

    (void)state;
    fs_build(s, 4);
    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(locate(h, MEMSCOPE_AT_PEAK, 0, NULL, &pi, &err), -ENODATA);
    assert_string_equal(err.message, "the store holds no events, so no peak");
    assert_int_equal(locate(h, MEMSCOPE_AT_TIME, 0, NULL, &pi, &err), -ENODATA);
    assert_int_equal(locate(h, MEMSCOPE_AT_END, 0, NULL, &pi, &err), 0);
    assert_int_equal(pi.events, 0);
    assert_int_equal(memscope_history_timeline(h, 10, &tl), -ENODATA);
    assert_null(tl);
    memscope_history_close(h);
    fs_delete(s);
}

/* Collects a side of a diff as "address:size" pairs. */
struct collected {
    uint64_t addr[16], size[16];
    const char *label[16];
    size_t n;
};

static int collect(const struct memscope_allocation *b, void *arg)
{
    struct collected *c = arg;
    c->addr[c->n] = b->address;
    c->size[c->n] = b->size;
    c->label[c->n] = b->label_name;
    c->n++;
    return 0;
}

static struct memscope_diff *diff_of(struct memscope_history *h, struct memscope_point a, struct memscope_point b)
{
    struct memscope_diff *d = NULL;
    struct memscope_error err;

    assert_int_equal(memscope_history_diff(h, &a, &b, &d, &err), 0);
    assert_non_null(d);
    return d;
}

static void test_time_diff_marks(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_curve(&s);
    struct memscope_point start = {MEMSCOPE_AT_MARK, 0, "start"}, mid = {MEMSCOPE_AT_MARK, 0, "mid"};
    struct memscope_point end = {MEMSCOPE_AT_MARK, 0, "end"};
    struct memscope_diff *d = diff_of(h, start, mid);
    struct memscope_diff_stats st;
    struct collected c = {0};

    (void)state;
    assert_int_equal(memscope_diff_stats(d, &st), 0);
    assert_int_equal(st.from.events, 3);
    assert_int_equal(st.to.events, 7);
    assert_int_equal(st.allocated_blocks, 2); /* b and d */
    assert_int_equal(st.allocated_bytes, 600);
    assert_int_equal(st.freed_blocks, 1); /* a */
    assert_int_equal(st.freed_bytes, 100);
    assert_int_equal(st.from_live_bytes, 100);
    assert_int_equal(st.to_live_bytes, 600);
    assert_int_equal(st.net_bytes, 500);
    assert_int_equal(st.net_blocks, 1);
    assert_int_equal(st.allocations_between, 2);
    assert_int_equal(st.deallocations_between, 1);
    assert_int_equal(memscope_diff_foreach(d, MEMSCOPE_DIFF_ALLOCATED, collect, &c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.addr[0], B);
    assert_int_equal(c.addr[1], D);
    memset(&c, 0, sizeof(c));
    assert_int_equal(memscope_diff_foreach(d, MEMSCOPE_DIFF_FREED, collect, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.addr[0], A);
    assert_string_equal(c.label[0], "buf"); /* the label it had at A */
    memscope_diff_free(d);

    /* mid -> end: c arrived; b and d left; e came and went (counted between, in neither list). */
    d = diff_of(h, mid, end);
    assert_int_equal(memscope_diff_stats(d, &st), 0);
    assert_int_equal(st.allocated_blocks, 1);
    assert_int_equal(st.allocated_bytes, 50);
    assert_int_equal(st.freed_blocks, 2);
    assert_int_equal(st.freed_bytes, 600);
    assert_int_equal(st.net_bytes, -550);
    assert_int_equal(st.allocations_between, 2);
    assert_int_equal(st.deallocations_between, 3);
    memscope_diff_free(d);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_time_diff_peak_now_time(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_curve(&s);
    struct memscope_point peak = {MEMSCOPE_AT_PEAK, 0, NULL}, now = {MEMSCOPE_AT_END, 0, NULL};
    struct memscope_point t22 = {MEMSCOPE_AT_TIME, 22, NULL};
    struct memscope_diff *d = diff_of(h, peak, now);
    struct memscope_diff_stats st;

    (void)state;
    assert_int_equal(memscope_diff_stats(d, &st), 0);
    assert_int_equal(st.from.events, 9);
    assert_int_equal(st.from_live_bytes, 1650);
    assert_int_equal(st.to_live_bytes, 50);
    assert_int_equal(st.allocated_blocks, 0);
    assert_int_equal(st.freed_blocks, 3); /* b, d, e */
    assert_int_equal(st.freed_bytes, 1600);
    memscope_diff_free(d);
    d = diff_of(h, t22, peak); /* live at 22: a, b */
    assert_int_equal(memscope_diff_stats(d, &st), 0);
    assert_int_equal(st.from.events, 4);
    assert_int_equal(st.from.time_ns, 22);
    assert_int_equal(st.allocated_blocks, 3); /* c, d, e */
    assert_int_equal(st.allocated_bytes, 1450);
    assert_int_equal(st.freed_blocks, 1); /* a */
    memscope_diff_free(d);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_time_diff_errors(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_curve(&s);
    struct memscope_point mid = {MEMSCOPE_AT_MARK, 0, "mid"}, start = {MEMSCOPE_AT_MARK, 0, "start"};
    struct memscope_point late = {MEMSCOPE_AT_TIME, 80, NULL}, nomark = {MEMSCOPE_AT_MARK, 0, "zzz"};
    struct memscope_diff *d = NULL;
    struct memscope_error err;

    (void)state;
    assert_int_equal(memscope_history_diff(h, &mid, &start, &d, &err), -EINVAL);
    assert_string_equal(err.message, "A (event 7) lies after B (event 3): give the earlier point first");
    assert_null(d);
    assert_int_equal(memscope_history_diff(h, &start, &late, &d, &err), -ERANGE);
    assert_non_null(strstr(err.message, "B: time 0.000000 s lies after the recorded history"));
    assert_int_equal(memscope_history_diff(h, &nomark, &late, &d, &err), -ENOENT);
    assert_string_equal(err.message, "A: the store has no mark named 'zzz'");
    assert_int_equal(memscope_history_diff(h, NULL, &late, &d, &err), -EINVAL);
    assert_int_equal(memscope_diff_stats(NULL, NULL), -EINVAL);
    memscope_diff_free(NULL);
    memscope_history_close(h);
    fs_delete(s);
}

/* A realloc in place and an address reused: each counts as one freed and one allocated. */
static void test_time_diff_same_address(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_error err;
    struct memscope_point x = {MEMSCOPE_AT_MARK, 0, "x"}, y = {MEMSCOPE_AT_MARK, 0, "y"};
    struct memscope_diff *d;
    struct memscope_diff_stats st;
    struct collected c = {0};

    (void)state;
    fs_alloc(s, 1, 10, A, 100);
    fs_alloc(s, 1, 11, B, 8);
    fs_alloc(s, 1, 12, C, 16);
    fs_mark(s, 1, 15, "x");
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_FREE, 20, A, 0);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_ALLOC, 21, A, 300);
    fs_free(s, 2, 22, B);
    fs_alloc(s, 2, 23, B, 8);
    fs_mark(s, 1, 25, "y");
    fs_build(s, 8);
    assert_int_equal(fs_open(s, &h, &err), 0);
    d = diff_of(h, x, y);
    assert_int_equal(memscope_diff_stats(d, &st), 0);
    assert_int_equal(st.allocated_blocks, 2);
    assert_int_equal(st.allocated_bytes, 308);
    assert_int_equal(st.freed_blocks, 2);
    assert_int_equal(st.freed_bytes, 108);
    assert_int_equal(st.net_bytes, 200);
    assert_int_equal(st.net_blocks, 0);
    assert_int_equal(memscope_diff_foreach(d, MEMSCOPE_DIFF_ALLOCATED, collect, &c), 0);
    assert_int_equal(c.addr[0], A);
    assert_int_equal(c.size[0], 300);
    assert_int_equal(c.addr[1], B);
    memscope_diff_free(d);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_time_diff_render(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_curve(&s);
    struct memscope_point start = {MEMSCOPE_AT_MARK, 0, "start"}, mid = {MEMSCOPE_AT_MARK, 0, "mid"};
    struct memscope_diff *d = diff_of(h, start, mid);
    struct memscope_render_options o;
    char *text = NULL;
    size_t len = 0;
    const char *p2, *p1;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.group_by = MEMSCOPE_GROUP_THREAD;
    assert_int_equal(memscope_diff_render_text(d, &o, &text, &len), 0);
    assert_non_null(strstr(text, "A: mark 'start' (event 3,"));
    assert_non_null(strstr(text, "B: mark 'mid' (event 7,"));
    assert_non_null(strstr(text, "net +1 block, +500 B"));
    assert_non_null(strstr(text, "Allocated after A, still live at B: 2 blocks, 600 B"));
    assert_non_null(strstr(text, "Live at A, freed by B: 1 block, 100 B"));
    /* Largest group first: thread 2 (400 B) before thread 1 (200 B). */
    p2 = strstr(text, "thread 2");
    p1 = strstr(text, "thread 1");
    assert_non_null(p2);
    assert_non_null(p1);
    assert_true(p2 < p1);
    memscope_text_free(text);
    o.group_by = MEMSCOPE_GROUP_LABEL;
    assert_int_equal(memscope_diff_render_json(d, &o, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "\"schema\":\"memscope-diff/1\""));
    assert_non_null(strstr(text, "\"from\":{\"kind\":\"mark\",\"mark\":\"start\",\"events\":3,\"time_ns\":15}"));
    assert_non_null(strstr(text, "\"freed\":{\"blocks\":1,\"bytes\":100,\"groups\":[{\"name\":\"buf (char)\",\"blocks\":1,\"bytes\":100}]"));
    assert_non_null(strstr(text, "\"net_bytes\":500"));
    memscope_text_free(text);
    o.group_by = (enum memscope_group_by)7;
    assert_int_equal(memscope_diff_render_text(d, &o, &text, &len), -EINVAL);
    memscope_diff_free(d);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_time_timeline(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_curve(&s);
    struct memscope_timeline *tl = NULL;
    struct memscope_timeline_info in;
    struct memscope_timeline_bucket bk;
    struct memscope_timeline_mark mk;
    uint64_t i, max = 0, allocs = 0, frees = 0, events = 0;

    (void)state;
    assert_int_equal(memscope_history_timeline(h, 10, &tl), 0);
    assert_int_equal(memscope_timeline_info(tl, &in), 0);
    assert_int_equal(in.buckets, 10);
    assert_int_equal(in.events, 13);
    assert_int_equal(in.first_time_ns, 10);
    assert_int_equal(in.last_time_ns, 70);
    assert_int_equal(in.peak_bytes, 1650);
    assert_int_equal(in.peak_time_ns, 45);
    assert_int_equal(in.peak_events, 9);
    assert_int_equal(in.peak_bucket, (45 - 10) * 10 / 61);
    assert_int_equal(in.end_bytes, 50);
    assert_int_equal(in.marks, 3);
    for (i = 0; i < in.buckets; i++) {
        assert_int_equal(memscope_timeline_bucket(tl, i, &bk), 0);
        if (bk.max_bytes > max)
            max = bk.max_bytes;
        assert_true(bk.min_bytes <= bk.end_bytes && bk.end_bytes <= bk.max_bytes);
        allocs += bk.allocations;
        frees += bk.deallocations;
        events += bk.events;
        if (i == 0)
            assert_int_equal(bk.start_ns, 10);
        if (i == in.buckets - 1) {
            assert_int_equal(bk.end_ns, 70);
            assert_int_equal(bk.end_bytes, 50);
        }
    }
    assert_int_equal(max, 1650); /* the peak is never lost between samples */
    assert_int_equal(memscope_timeline_bucket(tl, in.peak_bucket, &bk), 0);
    assert_int_equal(bk.max_bytes, 1650);
    assert_int_equal(allocs, 5);
    assert_int_equal(frees, 4);
    assert_int_equal(events, 13);
    assert_int_equal(memscope_timeline_mark(tl, 1, &mk), 0);
    assert_string_equal(mk.name, "mid");
    assert_int_equal(mk.time_ns, 35);
    assert_int_equal(mk.events, 7);
    assert_int_equal(mk.live_bytes, 600);
    assert_int_equal(mk.bucket, (35 - 10) * 10 / 61);
    assert_int_equal(memscope_timeline_mark(tl, 3, &mk), -ERANGE);
    assert_int_equal(memscope_timeline_bucket(tl, 10, &bk), -ERANGE);
    memscope_timeline_free(tl);
    /* One bucket holds everything; the most allowed; none is refused. */
    assert_int_equal(memscope_history_timeline(h, 1, &tl), 0);
    assert_int_equal(memscope_timeline_bucket(tl, 0, &bk), 0);
    assert_int_equal(bk.max_bytes, 1650);
    assert_int_equal(bk.min_bytes, 0);
    memscope_timeline_free(tl);
    tl = NULL;
    assert_int_equal(memscope_history_timeline(h, 0, &tl), -EINVAL);
    assert_int_equal(memscope_history_timeline(h, 100001, &tl), -EINVAL);
    assert_null(tl);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_time_timeline_render(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_curve(&s);
    struct memscope_timeline *tl = NULL;
    struct memscope_timeline_options o;
    char *text = NULL;
    size_t len = 0;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.height = 4;
    assert_int_equal(memscope_history_timeline(h, 20, &tl), 0);
    assert_int_equal(memscope_timeline_render_text(tl, &o, &text, &len), 0);
    assert_non_null(strstr(text, "13 events"));
    assert_non_null(strstr(text, "peak 1.6 KiB"));
    assert_non_null(strstr(text, "a  mark 'start'"));
    assert_non_null(strstr(text, "c  mark 'end'"));
    assert_non_null(strstr(text, "P  peak 1.6 KiB at"));
    assert_non_null(strstr(text, "max live"));
    /* The chart's top row has exactly one filled column run at the peak. */
    assert_non_null(strstr(text, "1.6 KiB |"));
    memscope_text_free(text);
    assert_int_equal(memscope_timeline_render_json(tl, &text, &len), 0);
    assert_non_null(strstr(text, "\"schema\":\"memscope-timeline/1\""));
    assert_non_null(strstr(text, "\"peak\":{\"bytes\":1650,\"time_ns\":45,\"events\":9,"));
    assert_non_null(strstr(text, "{\"name\":\"mid\",\"time_ns\":35,\"events\":7,\"live_bytes\":600,"));
    memscope_text_free(text);
    memscope_timeline_free(tl);
    memscope_history_close(h);
    fs_delete(s);
}

/* Marks the store does not hold (a debugger's) take their place among the store's, in time order. */
static void test_time_timeline_extra_marks(void **state)
{
    struct fake_store *s;
    struct memscope_history *h = open_curve(&s);
    struct memscope_timeline *tl = NULL;
    struct memscope_timeline_info in;
    struct memscope_timeline_mark mk;
    const struct memscope_time_mark extra[3] = {{"late", 100}, {"early", 5}, {"between", 37}};
    static const char *const names[6] = {"early", "start", "mid", "between", "end", "late"};
    static const uint64_t live[6] = {0, 100, 600, 600, 50, 50};
    static const uint64_t events[6] = {0, 3, 7, 7, 13, 13};
    static const int added[6] = {1, 0, 0, 1, 0, 1};
    char *text = NULL;
    size_t len, i;

    (void)state;
    assert_int_equal(memscope_history_timeline_marks(h, 10, extra, 3, &tl), 0);
    assert_int_equal(memscope_timeline_info(tl, &in), 0);
    assert_int_equal(in.marks, 6);
    for (i = 0; i < 6; i++) {
        assert_int_equal(memscope_timeline_mark(tl, i, &mk), 0);
        assert_string_equal(mk.name, names[i]);
        assert_int_equal(mk.live_bytes, live[i]);
        assert_int_equal(mk.events, events[i]);
        assert_int_equal(mk.added, added[i]);
    }
    assert_int_equal(memscope_timeline_mark(tl, 0, &mk), 0);
    assert_int_equal(mk.bucket, 0);
    assert_int_equal(memscope_timeline_mark(tl, 5, &mk), 0);
    assert_int_equal(mk.bucket, 9);
    assert_int_equal(memscope_timeline_render_text(tl, NULL, &text, &len), 0);
    assert_non_null(strstr(text, "d  mark 'between' (kept by the debugger) at"));
    memscope_text_free(text);
    assert_int_equal(memscope_timeline_render_json(tl, &text, &len), 0);
    assert_non_null(strstr(text, "{\"name\":\"between\",\"time_ns\":37,\"events\":7,\"live_bytes\":600,\"bucket\":4,\"added\":true}"));
    memscope_text_free(text);
    memscope_timeline_free(tl);
    tl = NULL;
    assert_int_equal(memscope_history_timeline_marks(h, 10, NULL, 1, &tl), -EINVAL);
    {
        const struct memscope_time_mark nameless = {NULL, 5};
        assert_int_equal(memscope_history_timeline_marks(h, 10, &nameless, 1, &tl), -EINVAL);
    }
    assert_null(tl);
    memscope_history_close(h);
    fs_delete(s);
}

/* One event: every bucket holds the same instant's figures; the peak is in bucket 0. */
static void test_time_timeline_one_event(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_error err;
    struct memscope_timeline *tl = NULL;
    struct memscope_timeline_info in;
    struct memscope_timeline_bucket bk;
    size_t i;

    (void)state;
    fs_alloc(s, 1, 42, A, 4096);
    fs_build(s, 4);
    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_timeline(h, 5, &tl), 0);
    assert_int_equal(memscope_timeline_info(tl, &in), 0);
    assert_int_equal(in.peak_bytes, 4096);
    assert_int_equal(in.peak_bucket, 0);
    assert_int_equal(in.first_time_ns, 42);
    assert_int_equal(in.last_time_ns, 42);
    for (i = 0; i < 5; i++) {
        assert_int_equal(memscope_timeline_bucket(tl, i, &bk), 0);
        assert_int_equal(bk.end_bytes, 4096);
        assert_int_equal(bk.events, i == 0 ? 1 : 0);
    }
    memscope_timeline_free(tl);
    memscope_history_close(h);
    fs_delete(s);
}

/* A failed realloc (REALLOC_FREE then REALLOC_UNDO) in another bucket takes no bucket's count below zero. */
static void test_time_timeline_failed_realloc(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_error err;
    struct memscope_timeline *tl = NULL;
    struct memscope_timeline_bucket b0, b1;

    (void)state;
    fs_alloc(s, 1, 0, A, 100);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_FREE, 49, A, 0);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_UNDO, 51, A, 0);
    fs_alloc(s, 1, 99, B, 10);
    fs_build(s, 8);
    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_timeline(h, 2, &tl), 0);
    assert_int_equal(memscope_timeline_bucket(tl, 0, &b0), 0);
    assert_int_equal(memscope_timeline_bucket(tl, 1, &b1), 0);
    assert_int_equal(b0.deallocations, 1);
    assert_int_equal(b0.min_bytes, 0);
    assert_int_equal(b1.deallocations, 0);
    assert_int_equal(b1.end_bytes, 110);
    memscope_timeline_free(tl);
    memscope_history_close(h);
    fs_delete(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_locate),
        cmocka_unit_test(test_time_locate_empty),
        cmocka_unit_test(test_time_diff_marks),
        cmocka_unit_test(test_time_diff_peak_now_time),
        cmocka_unit_test(test_time_diff_errors),
        cmocka_unit_test(test_time_diff_same_address),
        cmocka_unit_test(test_time_diff_render),
        cmocka_unit_test(test_time_timeline),
        cmocka_unit_test(test_time_timeline_render),
        cmocka_unit_test(test_time_timeline_extra_marks),
        cmocka_unit_test(test_time_timeline_one_event),
        cmocka_unit_test(test_time_timeline_failed_realloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
