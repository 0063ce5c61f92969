/*
 * test_render.c - the text and JSON renderers and the block report: exact
 * figures in the output, JSON escaping, options, warnings, invalid input.
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

struct fixture {
    struct fake_store *s;
    struct memscope_history *h;
    struct memscope_snapshot *snap;
};

/* Two threads, a label with characters JSON must escape, a realloc move. */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct memscope_error err;

    f->s = fs_new();
    fs_alloc(f->s, 1, 1000000, 0x1000, 100);
    fs_alloc(f->s, 1, 2000000, 0x2000, 2048);
    fs_label(f->s, 1, 2000001, 0x2000, "say \"hi\"\\\n", "char[2048]");
    fs_alloc(f->s, 2, 3000000, 0x3000, 3 * 1024 * 1024);
    fs_free(f->s, 2, 4000000, 0x1000);
    fs_ev(f->s, 1, MEMSCOPE_REC_REALLOC_FREE, 5000000, 0x2000, 0);
    fs_ev(f->s, 1, MEMSCOPE_REC_REALLOC_ALLOC, 5000001, 0x8000, 4096);
    fs_alloc(f->s, 2, 6000000, 0x4000, 16);
    fs_label(f->s, 2, 6000001, 0x4000, "caf\xc3\xa9\xff", "u8");
    f->s->root->events_dropped = 7;
    fs_build(f->s, 4);
    assert_int_equal(fs_open(f->s, &f->h, &err), 0);
    assert_int_equal(memscope_history_snapshot(f->h, NULL, &f->snap), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    memscope_snapshot_free(f->snap);
    memscope_history_close(f->h);
    fs_delete(f->s);
    free(f);
    return 0;
}

static void test_render_json_exact(void **state)
{
    struct fixture *f = *state;
    char *out = NULL;
    size_t len = 0;

    assert_int_equal(memscope_snapshot_render_json(f->snap, NULL, &out, &len), 0);
    assert_int_equal(strlen(out), len);
    assert_non_null(strstr(out, "\"schema\": \"memscope-snapshot/1\""));
    assert_non_null(strstr(out, "\"point\": {\"kind\": \"end\", \"time_ns\": 6000001, \"events\": 9}"));
    assert_non_null(strstr(out, "\"total_allocations\": 5,"));
    assert_non_null(strstr(out, "\"total_deallocations\": 2,"));
    assert_non_null(strstr(out, "\"active_allocations\": 3,"));
    assert_non_null(strstr(out, "\"total_allocated\": 3151988,"));
    assert_non_null(strstr(out, "\"total_deallocated\": 2148,"));
    assert_non_null(strstr(out, "\"current_memory\": 3149840,"));
    assert_non_null(strstr(out, "\"peak_memory\": 3149840,"));
    assert_non_null(strstr(out, "\"unmatched_deallocations\": 0,"));
    assert_non_null(strstr(out, "\"dropped_events\": 7,"));
    assert_non_null(strstr(out, "\"peak_time_ns\": 6000000,"));
    assert_non_null(strstr(out, "\"overlapping_allocations\": 0,"));
    assert_non_null(strstr(out, "\"reallocations\": 1,"));
    assert_non_null(strstr(out, "\"events\": 9\n  },"));
    assert_non_null(strstr(out, "\"process\": {\"pid\": 4242}"));
    assert_non_null(strstr(out, "{\"thread\": 1, \"tid\": 1001, \"allocations\": 3, \"deallocations\": 1, "
                                "\"allocated_bytes\": 6244, \"released_bytes\": 2148, \"current_memory\": 4096, "
                                "\"live_blocks\": 1, \"peak_memory\": 4096, \"peak_time_ns\": 5000001}"));
    assert_non_null(strstr(out, "{\"thread\": 2, \"tid\": 1002, \"allocations\": 2, \"deallocations\": 1, "
                                "\"allocated_bytes\": 3145744, \"released_bytes\": 0, \"current_memory\": 3145744, "
                                "\"live_blocks\": 2, \"peak_memory\": 3145744, \"peak_time_ns\": 6000000}"));
    /* Largest first; the label moved with realloc and is escaped. */
    {
        const char *a = strstr(out, "\"address\": \"0x3000\", \"size\": 3145728, \"thread\": 2, \"time_ns\": 3000000, \"label\": null}");
        const char *b = strstr(out, "\"address\": \"0x8000\", \"size\": 4096, \"thread\": 1, \"time_ns\": 5000001, "
                                    "\"label\": {\"name\": \"say \\\"hi\\\"\\\\\\n\", \"type\": \"char[2048]\"}}");
        const char *c = strstr(out, "\"address\": \"0x4000\", \"size\": 16, \"thread\": 2, \"time_ns\": 6000000, "
                                    "\"label\": {\"name\": \"caf\xc3\xa9\\ufffd\", \"type\": \"u8\"}}");
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(c);
        assert_true(a < b && b < c);
    }
    memscope_text_free(out);
}

static void test_render_text_summary(void **state)
{
    struct fixture *f = *state;
    struct memscope_render_options o = {0};
    char *out = NULL;
    size_t len;

    o.exact_bytes = 1;
    assert_int_equal(memscope_snapshot_render_text(f->snap, &o, &out, &len), 0);
    assert_non_null(strstr(out, "memscope snapshot of pid 4242 at end: 0.006 s, 9 events, 2 threads\n"));
    assert_non_null(strstr(out, "warning: 7 events were dropped (budget reached): figures are a lower bound\n"));
    assert_non_null(strstr(out, "  total allocations        5\n"));
    assert_non_null(strstr(out, "  total deallocations      2\n"));
    assert_non_null(strstr(out, "  active allocations       3\n"));
    assert_non_null(strstr(out, "  total allocated          3.0 MiB (3151988 B)\n"));
    assert_non_null(strstr(out, "  total deallocated        2.1 KiB (2148 B)\n"));
    assert_non_null(strstr(out, "  current memory           3.0 MiB (3149840 B)\n"));
    assert_non_null(strstr(out, "  peak memory              3.0 MiB (3149840 B) at 0.006 s\n"));
    assert_non_null(strstr(out, "  unmatched deallocations  0\n"));
    assert_non_null(strstr(out, "  dropped events           7\n"));
    assert_null(strstr(out, "\033["));
    memscope_text_free(out);
}

static void test_render_text_threads_and_blocks(void **state)
{
    struct fixture *f = *state;
    struct memscope_render_options o = {0};
    char *out = NULL;
    size_t len;

    o.sections = MEMSCOPE_SECTION_THREADS | MEMSCOPE_SECTION_BLOCKS;
    assert_int_equal(memscope_snapshot_render_text(f->snap, &o, &out, &len), 0);
    assert_null(strstr(out, "Summary"));
    assert_non_null(strstr(out, "  thread   tid  allocs  frees  allocated  released  current  live     peak  peak at\n"));
    assert_non_null(strstr(out, "       1  1001       3      1    6.1 KiB   2.1 KiB  4.0 KiB     1  4.0 KiB  0.005 s\n"));
    assert_non_null(strstr(out, "Live blocks (largest 3 of 3)\n"));
    assert_non_null(strstr(out, "  0x3000   3.0 MiB       2       0.003 s  -\n"));
    assert_non_null(strstr(out, "  0x8000   4.0 KiB       1       0.005 s  say \"hi\"\\\\n (char[2048])\n"));
    memscope_text_free(out);
}

static void test_render_text_groups(void **state)
{
    struct fixture *f = *state;
    struct memscope_render_options o = {0};
    char *out = NULL;
    size_t len;

    o.sections = MEMSCOPE_SECTION_BLOCKS;
    o.group_by = MEMSCOPE_GROUP_THREAD;
    assert_int_equal(memscope_snapshot_render_text(f->snap, &o, &out, &len), 0);
    assert_non_null(strstr(out, "Live blocks by thread (2 groups, 3 blocks)\n"));
    assert_non_null(strstr(out, "  thread 2       2  3.0 MiB  0.006 s\n"));
    assert_non_null(strstr(out, "  thread 1       1  4.0 KiB  0.005 s\n"));
    assert_true(strstr(out, "thread 2 ") < strstr(out, "thread 1 "));
    memscope_text_free(out);

    o.group_by = MEMSCOPE_GROUP_SIZE_CLASS;
    o.sort_by = MEMSCOPE_SORT_COUNT;
    assert_int_equal(memscope_snapshot_render_text(f->snap, &o, &out, &len), 0);
    assert_non_null(strstr(out, "Live blocks by size class (3 groups, 3 blocks)\n"));
    assert_non_null(strstr(out, "0-16 B"));
    assert_non_null(strstr(out, "2.0 KiB - 4.0 KiB"));
    assert_non_null(strstr(out, "2.0 MiB - 4.0 MiB"));
    memscope_text_free(out);

    o.group_by = MEMSCOPE_GROUP_LABEL;
    o.sort_by = MEMSCOPE_SORT_SIZE;
    assert_int_equal(memscope_snapshot_render_text(f->snap, &o, &out, &len), 0);
    assert_non_null(strstr(out, "(unlabeled)"));
    assert_non_null(strstr(out, "(char[2048])"));
    memscope_text_free(out);

    o.group_by = 99;
    assert_int_equal(memscope_snapshot_render_text(f->snap, &o, &out, &len), -EINVAL);
}

static void test_render_text_block_order(void **state)
{
    struct fixture *f = *state;
    struct memscope_render_options o = {0};
    char *out = NULL;

    o.sections = MEMSCOPE_SECTION_BLOCKS;
    o.sort_by = MEMSCOPE_SORT_ADDRESS;
    assert_int_equal(memscope_snapshot_render_text(f->snap, &o, &out, NULL), 0);
    assert_non_null(strstr(out, "(by address 3 of 3)"));
    assert_true(strstr(out, "0x3000") < strstr(out, "0x4000") && strstr(out, "0x4000") < strstr(out, "0x8000"));
    memscope_text_free(out);

    o.sort_by = MEMSCOPE_SORT_TIME;
    o.top = 2;
    assert_int_equal(memscope_snapshot_render_text(f->snap, &o, &out, NULL), 0);
    assert_non_null(strstr(out, "(newest 2 of 3)"));
    assert_true(strstr(out, "0x4000") < strstr(out, "0x8000"));
    assert_null(strstr(out, "0x3000"));
    memscope_text_free(out);
}

static void test_render_text_color(void **state)
{
    struct fixture *f = *state;
    struct memscope_render_options o = {0};
    char *out = NULL;

    o.color = 1;
    assert_int_equal(memscope_snapshot_render_text(f->snap, &o, &out, NULL), 0);
    assert_non_null(strstr(out, "\033[1m"));
    assert_non_null(strstr(out, "\033[1;33mwarning: 7 events"));
    memscope_text_free(out);
}

static void test_render_block_history(void **state)
{
    struct fixture *f = *state;
    char *out = NULL;
    size_t len;

    assert_int_equal(memscope_history_render_block(f->h, f->snap, 0x8010, NULL, &out, &len), 0);
    assert_non_null(strstr(out, "0x8010 is 16 bytes into the live block of 4.0 KiB at 0x8000\n"));
    assert_non_null(strstr(out, "thread 1, allocated at 0.005000 s, label say"));
    assert_non_null(strstr(out, "reallocated"));
    assert_non_null(strstr(out, "moved from 0x2000"));
    memscope_text_free(out);

    assert_int_equal(memscope_history_render_block(f->h, f->snap, 0x2000, NULL, &out, &len), 0);
    assert_non_null(strstr(out, "0x2000 is not in a live block at this point\n"));
    assert_non_null(strstr(out, "History of 0x2000 (3 events up to the snapshot point)"));
    assert_non_null(strstr(out, "allocated"));
    assert_non_null(strstr(out, "labeled"));
    assert_non_null(strstr(out, "moved to 0x8000"));
    memscope_text_free(out);

    assert_int_equal(memscope_history_render_block(f->h, f->snap, 0x9999999, NULL, &out, &len), 0);
    assert_non_null(strstr(out, "no recorded event mentions this address"));
    memscope_text_free(out);

    assert_int_equal(memscope_history_render_block(NULL, f->snap, 0x8000, NULL, &out, &len), -EINVAL);
    assert_int_equal(memscope_history_render_block(f->h, NULL, 0x8000, NULL, &out, &len), -EINVAL);
}

static void test_render_invalid_handles(void **state)
{
    char *out = NULL;
    size_t len;
    uint64_t junk[16] = {0};

    assert_int_equal(memscope_snapshot_render_text(NULL, NULL, &out, &len), -EINVAL);
    assert_int_equal(memscope_snapshot_render_json(NULL, NULL, &out, &len), -EINVAL);
    assert_int_equal(memscope_snapshot_render_json((struct memscope_snapshot *)junk, NULL, &out, &len), -EINVAL);
    memscope_text_free(NULL);
}

static void test_render_empty_snapshot(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_snapshot *snap = NULL;
    struct memscope_error err;
    char *out = NULL;

    fs_build(s, 4);
    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
    assert_int_equal(memscope_snapshot_render_json(snap, NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "\"threads\": [],\n  \"live_blocks\": []\n}\n"));
    memscope_text_free(out);
    assert_int_equal(memscope_snapshot_render_text(snap, NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "(no live blocks)"));
    memscope_text_free(out);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    fs_delete(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_render_json_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_text_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_text_threads_and_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_text_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_text_block_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_text_color, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_block_history, setup, teardown),
        cmocka_unit_test(test_render_invalid_handles),
        cmocka_unit_test(test_render_empty_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
