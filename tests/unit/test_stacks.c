/*
 * test_stacks.c - the stack table in the engine (c/engine/stacks.c): a good
 * table read, grouped by site and by stack with a symbolizer, one stack's
 * frames, the folded export and the JSON; and damaged tables (bad magic,
 * sizes, counts, pointers outside the table or outside memory, entries out
 * of bounds, ids out of range), each giving a clear sentence or an
 * unreadable-stack mark, never a crash or a failed open.
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

#define TABLE UINT64_C(0x30000)
#define TABLE_SIZE 4096u
#define CAP 8u
#define SLOTS 16u
#define FRAMES 256u

/* Return addresses of the fake program, and what the symbolizer says of them. */
#define PC_MALLOC UINT64_C(0x7000)  /* in libmemscope: hidden */
#define PC_LEAF UINT64_C(0x4010)    /* leaf() */
#define PC_LEAF2 UINT64_C(0x4020)   /* leaf() again, another call */
#define PC_MID UINT64_C(0x4110)     /* mid() */
#define PC_MAIN UINT64_C(0x4210)    /* main() */
#define PC_OTHER UINT64_C(0x4310)   /* other() */

static int symbolize(void *ctx, const uint64_t *pcs, size_t n, struct memscope_frame *out)
{
    int *calls = ctx;
    (*calls)++;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(pcs[i] > pcs[i - 1]); /* sorted, distinct */
        out[i].module = "/bin/prog";
        out[i].file = "prog.c";
        switch (pcs[i]) {
        case PC_MALLOC:
            out[i].function = "malloc";
            out[i].module = "/lib/libmemscope.so";
            out[i].file = NULL;
            break;
        case PC_LEAF:
        case PC_LEAF2:
            out[i].function = "leaf";
            out[i].line = 10;
            break;
        case PC_MID:
            out[i].function = "mid";
            out[i].line = 20;
            break;
        case PC_MAIN:
            out[i].function = "main";
            out[i].line = 30;
            break;
        default:
            out[i].function = "other";
            out[i].line = 40;
            break;
        }
    }
    return 0;
}

/*
 * A store with three stacks:
 *   1: malloc < leaf(PC_LEAF) < mid < main      blocks 0x1000 (100 B), 0x2000 (200 B)
 *   2: leaf(PC_LEAF2) < main                    block  0x3000 (300 B)
 *   3: other < main                             block  0x4000 (400 B)
 * and a block with no stack (0x5000, 50 B).
 */
struct table_store {
    struct fake_store *s;
    struct memscope_stack_table *t;
    struct memscope_stack_entry *e;
    uint64_t *frames;
};

static void set_stack(struct fake_store *s, uint32_t serial, size_t index, uint32_t stack)
{
    for (int i = 0; i < s->nthreads; i++)
        if (s->th[i].serial == serial)
            s->th[i].ev[index].stack = stack;
}

static struct table_store make(uint32_t extra_stack_id)
{
    struct table_store ts;
    struct fake_store *s = fs_new();
    static const uint64_t f1[] = {PC_MALLOC, PC_LEAF, PC_MID, PC_MAIN};
    static const uint64_t f2[] = {PC_LEAF2, PC_MAIN};
    static const uint64_t f3[] = {PC_OTHER, PC_MAIN};

    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_alloc(s, 1, 11, 0x2000, 200);
    fs_alloc(s, 1, 12, 0x3000, 300);
    fs_alloc(s, 1, 13, 0x4000, 400);
    fs_alloc(s, 1, 14, 0x5000, 50);
    set_stack(s, 1, 0, 1);
    set_stack(s, 1, 1, 1);
    set_stack(s, 1, 2, 2);
    set_stack(s, 1, 3, 3);
    set_stack(s, 1, 4, extra_stack_id);
    fs_build(s, 16);

    uint8_t *mem = fake_mem_add(&s->mem, TABLE, TABLE_SIZE);
    struct memscope_stack_table *t = (void *)mem;
    t->magic = MEMSCOPE_STACK_TABLE_MAGIC;
    t->header_size = sizeof(*t);
    t->entry_size = sizeof(struct memscope_stack_entry);
    t->map_size = TABLE_SIZE;
    t->slots = TABLE + sizeof(*t);
    t->slot_count = SLOTS;
    t->entries = t->slots + SLOTS * 8;
    t->capacity = CAP;
    t->frames = t->entries + CAP * sizeof(struct memscope_stack_entry);
    t->frame_capacity = FRAMES;
    t->method = MEMSCOPE_STACK_UNWIND;
    t->max_depth = 16;
    ts.e = (void *)(mem + (t->entries - TABLE));
    ts.frames = (void *)(mem + (t->frames - TABLE));
    memcpy(ts.frames, f1, sizeof(f1));
    memcpy(ts.frames + 4, f2, sizeof(f2));
    memcpy(ts.frames + 6, f3, sizeof(f3));
    ts.e[0] = (struct memscope_stack_entry){0, 4, 1};
    ts.e[1] = (struct memscope_stack_entry){4, 2, 2};
    ts.e[2] = (struct memscope_stack_entry){6, 2, 3};
    t->count = 3;
    t->frames_used = 8;
    s->root->stacks = TABLE;
    ts.s = s;
    ts.t = t;
    return ts;
}

/* Opens (must succeed: stack damage never fails the open) and snapshots. */
static struct memscope_snapshot *snap_of(struct table_store *ts, struct memscope_history **h)
{
    struct memscope_error err;
    struct memscope_snapshot *snap = NULL;

    memset(&err, 0, sizeof(err));
    if (fs_open(ts->s, h, &err) != 0)
        fail_msg("open failed: %s", err.message);
    assert_int_equal(memscope_history_snapshot(*h, NULL, &snap), 0);
    return snap;
}

static char *render(struct memscope_snapshot *snap, enum memscope_group_by by, int *calls)
{
    struct memscope_symbolizer sym = {symbolize, calls, NULL};
    struct memscope_render_options o;
    char *out = NULL;
    size_t len = 0;

    memset(&o, 0, sizeof(o));
    o.group_by = by;
    o.sections = MEMSCOPE_SECTION_BLOCKS;
    o.exact_bytes = 1;
    o.symbolizer = calls ? &sym : NULL;
    assert_int_equal(memscope_snapshot_render_text(snap, &o, &out, &len), 0);
    assert_int_equal(strlen(out), len);
    return out;
}

static void expect_in(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("\"%s\" not in:\n%s", needle, text);
}

static void done(struct table_store *ts, struct memscope_history *h, struct memscope_snapshot *snap)
{
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(ts->s);
}

static void test_stacks_good_table(void **state)
{
    struct table_store ts = make(0);
    struct memscope_history *h = NULL;
    struct memscope_snapshot *snap = snap_of(&ts, &h);
    struct memscope_stacks_info info;
    struct memscope_allocation a;
    uint64_t pcs[8];
    size_t depth = 0;
    int calls = 0;
    char *out;

    assert_int_equal(memscope_snapshot_stacks_info(snap, &info), 0);
    assert_int_equal(info.stacks, 3);
    assert_int_equal(info.frames, 8);
    assert_int_equal(info.status, 0);
    assert_null(info.error);
    assert_int_equal(info.method, MEMSCOPE_STACK_UNWIND);
    assert_int_equal(memscope_snapshot_find_block(snap, 0x3000, &a), 0);
    assert_int_equal(a.stack, 2);
    assert_int_equal(memscope_snapshot_stack(snap, 1, pcs, 8, &depth), 0);
    assert_int_equal(depth, 4);
    assert_true(pcs[0] == PC_MALLOC && pcs[1] == PC_LEAF && pcs[2] == PC_MID && pcs[3] == PC_MAIN);
    assert_int_equal(memscope_snapshot_stack(snap, 1, pcs, 2, &depth), 0); /* cut to max, full depth told */
    assert_int_equal(depth, 4);
    assert_int_equal(memscope_snapshot_stack(snap, 0, pcs, 8, &depth), -ENOENT);
    assert_int_equal(memscope_snapshot_stack(snap, 4, pcs, 8, &depth), -EBADMSG);

    /* By site: leaf's two stacks merge (600 B, 3 blocks); malloc is hidden; one symbolizer call. */
    out = render(snap, MEMSCOPE_GROUP_SITE, &calls);
    assert_int_equal(calls, 1);
    expect_in(out, "Live memory by allocation site (3 of 3 sites)");
    expect_in(out, "600 B       3  57.1%  leaf        prog.c:10  prog");
    expect_in(out, "400 B       1  38.1%  other       prog.c:40  prog");
    expect_in(out, " 50 B       1   4.8%  (no stack)");
    assert_null(strstr(out, "malloc"));
    memscope_text_free(out);

    out = render(snap, MEMSCOPE_GROUP_STACK, &calls);
    expect_in(out, "      1  300 B       2  28.6%  leaf        prog.c:10  prog");
    expect_in(out, "      2  300 B       1  28.6%  leaf        prog.c:10  prog");
    memscope_text_free(out);

    /* Without a symbolizer: addresses, nothing known to hide, one site per return address. */
    out = render(snap, MEMSCOPE_GROUP_SITE, NULL);
    expect_in(out, "300 B       2  28.6%  0x7000      ?         ?");
    expect_in(out, "300 B       1  28.6%  0x4020      ?         ?");
    memscope_text_free(out);

    {
        struct memscope_symbolizer sym = {symbolize, &calls, NULL};
        struct memscope_render_options o;
        size_t len;
        memset(&o, 0, sizeof(o));
        o.symbolizer = &sym;
        assert_int_equal(memscope_snapshot_render_folded(snap, &o, &out, &len), 0);
        assert_string_equal(out, "[no stack] 50\nmain;leaf 300\nmain;mid;leaf 300\nmain;other 400\n");
        memscope_text_free(out);
        assert_int_equal(memscope_snapshot_render_stack(snap, 1, &o, &out, &len), 0);
        expect_in(out, "stack 1: 2 live blocks, 300 B\n");
        expect_in(out, "#0  0x0000000000007000 malloc (libmemscope.so) [hidden]\n");
        expect_in(out, "#1  0x0000000000004010 leaf at prog.c:10 (prog)\n");
        expect_in(out, "#3  0x0000000000004210 main at prog.c:30 (prog)\n");
        memscope_text_free(out);
        assert_int_equal(memscope_snapshot_render_stack(snap, 9, &o, &out, &len), -ENOENT);
        assert_int_equal(memscope_snapshot_render_json(snap, &o, &out, &len), 0);
        expect_in(out, "\"stack_table\": {\"method\": \"unwind\", \"max_depth\": 16, \"stacks\": 3, \"truncated\": 0, "
                       "\"lost\": 0, \"error\": null}");
        expect_in(out, "\"1\": {\"site\": 1, \"frames\": [{\"pc\": \"0x7000\", \"function\": \"malloc\", "
                       "\"module\": \"/lib/libmemscope.so\", \"hidden\": true}, {\"pc\": \"0x4010\", \"function\": "
                       "\"leaf\", \"file\": \"prog.c\", \"line\": 10, \"module\": \"/bin/prog\", \"hidden\": false}");
        expect_in(out, "{\"stack\": 3, \"address\": \"0x4000\"");
        expect_in(out, "{\"stack\": 0, \"address\": \"0x5000\"");
        memscope_text_free(out);
    }
    done(&ts, h, snap);
}

/* A table the reader refuses whole: the history opens, every stack is unreadable, the reason is given. */
static void expect_table_refused(struct table_store *ts, int status, const char *needle)
{
    struct memscope_history *h = NULL;
    struct memscope_snapshot *snap = snap_of(ts, &h);
    struct memscope_stacks_info info;
    uint64_t pc;
    size_t depth;
    char *out;

    assert_int_equal(memscope_snapshot_stacks_info(snap, &info), 0);
    assert_int_equal(info.status, status);
    assert_int_equal(info.stacks, 0);
    assert_non_null(info.error);
    if (!strstr(info.error, needle))
        fail_msg("error \"%s\" lacks \"%s\"", info.error, needle);
    assert_int_equal(memscope_snapshot_stack(snap, 1, &pc, 1, &depth), -EBADMSG);
    out = render(snap, MEMSCOPE_GROUP_SITE, NULL);
    expect_in(out, "(unreadable stack)");
    memscope_text_free(out);
    out = render(snap, 0, NULL);
    expect_in(out, "warning: call stacks unavailable: ");
    expect_in(out, needle);
    memscope_text_free(out);
    done(ts, h, snap);
}

static void test_stacks_bad_magic(void **state)
{
    struct table_store ts = make(0);
    ts.t->magic = 42;
    expect_table_refused(&ts, -EBADMSG, "has a bad magic");
}

static void test_stacks_bad_sizes(void **state)
{
    struct table_store ts = make(0);
    ts.t->entry_size = 24;
    expect_table_refused(&ts, -EBADMSG, "entry_size 24");
    ts = make(0);
    ts.t->max_depth = 65;
    expect_table_refused(&ts, -EBADMSG, "max_depth 65 outside 1..64");
    ts = make(0);
    ts.t->map_size = UINT64_C(1) << 40;
    expect_table_refused(&ts, -EBADMSG, "map_size 1099511627776 is not possible");
}

static void test_stacks_pointers_outside(void **state)
{
    struct table_store ts = make(0);
    ts.t->entries = TABLE + TABLE_SIZE - 8; /* 8 entries cannot fit */
    expect_table_refused(&ts, -EBADMSG, "8 entries at 0x30ff8 lie outside its 4096 bytes");
    ts = make(0);
    ts.t->frames = UINT64_C(0xffffffffffff0000); /* wraps */
    expect_table_refused(&ts, -EBADMSG, "frames at 0xffffffffffff0000 lie outside");
    ts = make(0);
    ts.t->capacity = UINT64_C(1) << 61; /* the size overflows */
    expect_table_refused(&ts, -EBADMSG, "entries at");
    /* A table claiming more memory than exists: the read fails, clearly. */
    ts = make(0);
    ts.t->map_size = 1u << 20;
    ts.t->frame_capacity = 100000;
    ts.t->frames_used = 100000;
    expect_table_refused(&ts, -EFAULT, "claims memory that cannot be read");
    /* root.stacks pointing nowhere. */
    ts = make(0);
    ts.s->root->stacks = UINT64_C(0xdead0000);
    expect_table_refused(&ts, -EFAULT, "the stack table at 0xdead0000 cannot be read");
}

static void test_stacks_bad_counts(void **state)
{
    /* count and frames_used past capacity: clamped (the runtime refuses the excess), nothing allocated for them. */
    struct table_store ts = make(0);
    struct memscope_history *h = NULL;
    struct memscope_stacks_info info;
    struct memscope_snapshot *snap;
    uint64_t pcs[8];
    size_t depth;

    ts.t->count = UINT64_C(1) << 40;
    ts.t->frames_used = UINT64_C(1) << 50;
    snap = snap_of(&ts, &h);
    assert_int_equal(memscope_snapshot_stacks_info(snap, &info), 0);
    assert_int_equal(info.status, 0);
    assert_int_equal(info.stacks, CAP);
    assert_int_equal(info.frames, FRAMES);
    assert_int_equal(info.unreadable, CAP - 3); /* the zeroed entries beyond the three */
    assert_int_equal(memscope_snapshot_stack(snap, 3, pcs, 8, &depth), 0);
    assert_int_equal(depth, 2);
    assert_int_equal(memscope_snapshot_stack(snap, 5, pcs, 8, &depth), -EBADMSG);
    done(&ts, h, snap);
}

static void test_stacks_bad_entries(void **state)
{
    /* Entries out of bounds are unreadable one by one; the others stay good. */
    struct table_store ts = make(77); /* the 50 B block names id 77: out of range */
    struct memscope_history *h = NULL;
    struct memscope_stacks_info info;
    struct memscope_snapshot *snap;
    uint64_t pcs[8];
    size_t depth;
    char *out;
    int calls = 0;

    ts.e[0].depth = 0;          /* incomplete */
    ts.e[1].first = 7;          /* 7 + 2 > frames_used 8 */
    ts.e[2].depth = 17;         /* above max_depth 16 */
    ts.t->count = 4;
    ts.e[3] = (struct memscope_stack_entry){UINT64_MAX, 2, 0}; /* first + depth overflows */
    snap = snap_of(&ts, &h);
    assert_int_equal(memscope_snapshot_stacks_info(snap, &info), 0);
    assert_int_equal(info.status, 0);
    assert_int_equal(info.unreadable, 4);
    for (uint32_t id = 1; id <= 4; id++)
        assert_int_equal(memscope_snapshot_stack(snap, id, pcs, 8, &depth), -EBADMSG);
    assert_int_equal(memscope_snapshot_stack(snap, 77, pcs, 8, &depth), -EBADMSG);
    out = render(snap, MEMSCOPE_GROUP_SITE, &calls);
    expect_in(out, "1.0 KiB (1050 B)       5  100.0%  (unreadable stack)");
    memscope_text_free(out);
    {
        struct memscope_render_options o;
        size_t len;
        memset(&o, 0, sizeof(o));
        assert_int_equal(memscope_snapshot_render_folded(snap, &o, &out, &len), 0);
        assert_string_equal(out, "[unreadable stack] 1050\n");
        memscope_text_free(out);
        assert_int_equal(memscope_snapshot_render_stack(snap, 2, &o, &out, &len), 0);
        expect_in(out, "(stack 2 is unreadable)");
        memscope_text_free(out);
    }
    done(&ts, h, snap);
}

static void test_stacks_no_table(void **state)
{
    struct table_store ts = make(0);
    struct memscope_history *h = NULL;
    struct memscope_stacks_info info;
    struct memscope_snapshot *snap;
    char *out;

    ts.s->root->stacks = 0;
    snap = snap_of(&ts, &h);
    assert_int_equal(memscope_snapshot_stacks_info(snap, &info), 0);
    assert_int_equal(info.status, 0);
    assert_int_equal(info.stacks, 0);
    out = render(snap, MEMSCOPE_GROUP_STACK, NULL);
    expect_in(out, "(unreadable stack)"); /* the records name ids the store has no table for */
    expect_in(out, "(no stack)");
    memscope_text_free(out);
    done(&ts, h, snap);
}

static void test_stacks_truncated_shown(void **state)
{
    struct table_store ts = make(0);
    struct memscope_history *h = NULL;
    struct memscope_snapshot *snap;
    char *out;

    ts.t->truncated = 12;
    ts.t->lost = 3;
    snap = snap_of(&ts, &h);
    out = render(snap, 0, NULL);
    expect_in(out, "warning: the stack table was full: 12 allocations kept only their caller");
    expect_in(out, "warning: the stack table was full: 3 allocations have no stack");
    memscope_text_free(out);
    {
        struct memscope_render_options o;
        size_t len;
        memset(&o, 0, sizeof(o));
        assert_int_equal(memscope_snapshot_render_json(snap, &o, &out, &len), 0);
        expect_in(out, "\"truncated\": 12, \"lost\": 3");
        memscope_text_free(out);
    }
    done(&ts, h, snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stacks_good_table),      cmocka_unit_test(test_stacks_bad_magic),
        cmocka_unit_test(test_stacks_bad_sizes),       cmocka_unit_test(test_stacks_pointers_outside),
        cmocka_unit_test(test_stacks_bad_counts),      cmocka_unit_test(test_stacks_bad_entries),
        cmocka_unit_test(test_stacks_no_table),        cmocka_unit_test(test_stacks_truncated_shown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
