/*
 * test_reader.c - reading stores: the checks on damaged stores (each returns
 * the right code and a message naming the problem, never crashes or
 * allocates what the store claims), time conversion, read sizes.
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

/* A small two-thread store, built with 4-record chunks. */
static struct fake_store *small_store(void)
{
    struct fake_store *s = fs_new();
    int i;

    for (i = 0; i < 6; i++)
        fs_alloc(s, 1, 10 + (uint64_t)i, 0x1000 + 0x100 * (uint64_t)i, 16);
    for (i = 0; i < 5; i++)
        fs_alloc(s, 2, 20 + (uint64_t)i, 0x9000 + 0x100 * (uint64_t)i, 32);
    fs_build(s, 4);
    return s;
}

/* Opens s expecting code; checks the message holds every needle. */
static void expect_open(struct fake_store *s, int code, const char *needle1, const char *needle2)
{
    struct memscope_history *h = NULL;
    struct memscope_error err;

    memset(&err, 0, sizeof(err));
    assert_int_equal(fs_open(s, &h, &err), code);
    assert_null(h);
    if (needle1 && !strstr(err.message, needle1))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle1);
    if (needle2 && !strstr(err.message, needle2))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle2);
}

static void test_reader_good_store(void **state)
{
    struct fake_store *s = small_store();
    struct memscope_history *h = NULL;
    struct memscope_history_info info;
    struct memscope_error err;

    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_info(h, &info), 0);
    assert_int_equal(info.events, 11);
    assert_int_equal(info.threads, 2);
    assert_int_equal(info.first_time_ns, 10);
    assert_int_equal(info.last_time_ns, 24);
    assert_int_equal(info.pid, 4242);
    assert_int_equal(info.abi_version, MEMSCOPE_STORE_ABI_VERSION);
    assert_int_equal(info.chunk_bytes, s->root->chunk_bytes);
    assert_int_equal(memscope_history_info(NULL, &info), -EINVAL);
    memscope_history_close(h);
    memscope_history_close(NULL);
    fs_delete(s);
}

static void test_reader_bad_magic(void **state)
{
    struct fake_store *s = small_store();

    s->root->magic[3] ^= 1;
    expect_open(s, -ENOENT, "no memscope store at 0x10000", "magic");
    fs_delete(s);
}

static void test_reader_root_unreadable(void **state)
{
    struct fake_store *s = small_store();
    struct memscope_source src = fake_mem_source(&s->mem);
    struct memscope_history *h = NULL;
    struct memscope_error err;

    assert_int_equal(memscope_history_open(&src, 0xdead0000, &h, &err), -EFAULT);
    assert_non_null(strstr(err.message, "0xdead0000"));
    assert_int_equal(memscope_history_open(NULL, 0x10000, &h, &err), -EINVAL);
    assert_int_equal(memscope_history_open(&src, 0x10000, NULL, NULL), -EINVAL);
    fs_delete(s);
}

static void test_reader_unknown_version(void **state)
{
    struct fake_store *s = small_store();

    char knows[64];

    snprintf(knows, sizeof(knows), "knows version %u", MEMSCOPE_STORE_ABI_VERSION);
    s->root->abi_version = 77;
    expect_open(s, -EPROTO, "ABI version 77", knows);
    fs_delete(s);
}

static void test_reader_wrong_sizes(void **state)
{
    struct fake_store *s = small_store();

    s->root->record_size = 48;
    expect_open(s, -EBADMSG, "record_size 48", "expected 32");
    s->root->record_size = 32;
    s->root->root_size = 100;
    expect_open(s, -EBADMSG, "root_size 100", NULL);
    s->root->root_size = sizeof(struct memscope_store_root);
    s->root->chunk_header_size = 80;
    expect_open(s, -EBADMSG, "chunk_header_size 80", NULL);
    fs_delete(s);
}

static void test_reader_count_exceeds_capacity(void **state)
{
    struct fake_store *s = small_store();
    char addr[32];

    fs_chunk(s, 1)->count = 900;
    snprintf(addr, sizeof(addr), "chunk 1 at 0x%llx", (unsigned long long)s->chunk_addr[1]);
    expect_open(s, -EBADMSG, addr, "count 900 exceeds capacity 4");
    fs_delete(s);
}

static void test_reader_chunk_loop(void **state)
{
    struct fake_store *s = small_store();

    fs_chunk(s, 2)->next = s->chunk_addr[0]; /* back to the head */
    s->root->chunk_count = 1000000;           /* the bound alone would not stop it soon */
    s->root->chunk_bytes = UINT64_C(1) << 40;
    expect_open(s, -EBADMSG, "already met", "loop");
    fs_delete(s);
}

static void test_reader_chunk_list_too_long(void **state)
{
    struct fake_store *s = fs_new();
    int i;

    /* 70 chunks, the root claims 2: a walk of more than 2 + 64 links is damage. */
    for (i = 0; i < 140; i++)
        fs_alloc(s, 1, (uint64_t)i, 0x1000 + 16 * (uint64_t)i, 8);
    fs_build(s, 2);
    s->root->chunk_count = 2;
    expect_open(s, -EBADMSG, "more than 66 links", "root.chunk_count 2");
    /* Within the slack, racing links are accepted. */
    s->root->chunk_count = 10;
    {
        struct memscope_history *h = NULL;
        struct memscope_error err;
        assert_int_equal(fs_open(s, &h, &err), 0);
        memscope_history_close(h);
    }
    fs_delete(s);
}

static void test_reader_chunk_outside_memory(void **state)
{
    struct fake_store *s = small_store();

    fs_chunk(s, 0)->next = 0x7700000000;
    expect_open(s, -EFAULT, "chunk 1 at 0x7700000000", "cannot be read");
    fs_delete(s);
}

static void test_reader_chunk_bad_magic(void **state)
{
    struct fake_store *s = small_store();

    fs_chunk(s, 2)->magic = 0x1234;
    expect_open(s, -EBADMSG, "chunk 2", "bad magic");
    fs_delete(s);
}

static int reset_failures(void **state)
{
    ms_engine_fail_at(0, 0); /* a failed test must not leave injection armed */
    return 0;
}

static void test_reader_absurd_capacity(void **state)
{
    struct fake_store *s = small_store();
    struct memscope_chunk *c = fs_chunk(s, 0);

    /* A capacity beyond the mapping, then a mapping beyond sanity: refused
     * before anything is allocated for it (the fail-all injection proves it). */
    c->capacity = UINT64_C(1) << 40;
    c->count = UINT64_C(1) << 39;
    ms_engine_fail_at(2, 1); /* every allocation after the history object fails */
    expect_open(s, -EBADMSG, "capacity 1099511627776", "map_size");
    c->map_size = UINT64_C(1) << 50;
    ms_engine_fail_at(2, 1);
    expect_open(s, -EBADMSG, "map_size 1125899906842624", "not sane");
    ms_engine_fail_at(0, 0);
    fs_delete(s);
}

static void test_reader_count_unreadable(void **state)
{
    struct fake_store *s = small_store();
    struct memscope_chunk *c = fs_chunk(s, 0);

    /* A consistent header whose records lie past the memory that exists. */
    c->capacity = 100000;
    c->count = 100000;
    c->map_size = sizeof(*c) + 100000 * 32;
    s->root->chunk_bytes += c->map_size;
    expect_open(s, -EFAULT, "chunk 0", "records cannot be read");
    fs_delete(s);
}

static void test_reader_chunk_bytes_exceeded(void **state)
{
    struct fake_store *s = small_store();

    s->root->chunk_bytes = 100;
    expect_open(s, -EBADMSG, "root.chunk_bytes 100", NULL);
    fs_delete(s);
}

static void test_reader_chunks_overlap(void **state)
{
    struct fake_store *s = small_store();
    struct memscope_chunk *c = fs_chunk(s, 1);

    /* Chunk 1 claims a mapping that runs into the next chunk's memory. */
    c->map_size = FAKE_CHUNK_STRIDE + 4096;
    s->root->chunk_bytes += FAKE_CHUNK_STRIDE + 4096;
    expect_open(s, -EBADMSG, "overlap", NULL);
    fs_delete(s);
}

static void test_reader_thread_mismatch(void **state)
{
    struct fake_store *s = small_store();
    struct memscope_chunk *c = fs_chunk(s, 1);
    struct memscope_record *r = (struct memscope_record *)(c + 1);

    r[1].info = MEMSCOPE_RECORD_INFO(MEMSCOPE_REC_ALLOC, 9);
    expect_open(s, -EBADMSG, "record 1 names thread 9", "chunk thread");
    fs_delete(s);
}

static void test_reader_unknown_kind(void **state)
{
    struct fake_store *s = small_store();
    struct memscope_chunk *c = fs_chunk(s, 0);
    struct memscope_record *r = (struct memscope_record *)(c + 1);

    r[0].info = MEMSCOPE_RECORD_INFO(42, c->thread);
    expect_open(s, -EBADMSG, "unknown kind 42", NULL);
    fs_delete(s);
}

static void test_reader_duplicate_seq(void **state)
{
    struct fake_store *s = small_store();

    /* Chunks 0 and 2 are thread 2's (newest first): make both seq 0. */
    fs_chunk(s, 0)->seq = fs_chunk(s, 2)->seq;
    expect_open(s, -EBADMSG, "both claim seq", NULL);
    fs_delete(s);
}

static void test_reader_thread_zero(void **state)
{
    struct fake_store *s = small_store();

    fs_chunk(s, 0)->thread = 0;
    expect_open(s, -EBADMSG, "thread serial 0", NULL);
    fs_delete(s);
}

static void test_reader_out_of_memory(void **state)
{
    struct fake_store *s = small_store();
    unsigned long n;

    /* Fail the n-th allocation for n = 1, 2, ...: -ENOMEM every time until
     * the open needs no more, never a crash or a leak (under ASan/valgrind). */
    for (n = 1; n < 200; n++) {
        struct memscope_history *h = NULL;
        struct memscope_error err;
        int rc;
        ms_engine_fail_at(n, 0);
        rc = fs_open(s, &h, &err);
        ms_engine_fail_at(0, 0);
        if (rc == 0) {
            memscope_history_close(h);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_null(h);
    }
    assert_true(n < 200);
    fs_delete(s);
}

static void test_reader_time_ns_clock(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_history_info info;
    struct memscope_error err;

    s->root->clock_origin_ticks = 1000000;
    fs_alloc(s, 1, 999000, 0x1000, 1);  /* before the origin: clamped to 0 */
    fs_alloc(s, 1, 1000500, 0x2000, 1); /* 500 ns */
    fs_build(s, 8);
    assert_int_equal(fs_open(s, &h, &err), 0);
    memscope_history_info(h, &info);
    assert_int_equal(info.first_time_ns, 0);
    assert_int_equal(info.last_time_ns, 500);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_reader_time_tsc(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_history_info info;
    struct memscope_error err;

    /* 3 GHz TSC: calibrated over 2 s. */
    s->root->flags = MEMSCOPE_STORE_CLOCK_TSC;
    s->root->clock_origin_ticks = 5000000000;
    s->root->clock_origin_ns = 100;
    s->root->clock_calib_ticks = 5000000000 + 6000000000;
    s->root->clock_calib_ns = 100 + 2000000000;
    s->root->clock_calib_seq = 2;
    fs_alloc(s, 1, 5000000000 + 3000, 0x1000, 1);        /* 1 us */
    fs_alloc(s, 1, 5000000000 + 3000000000, 0x2000, 1);  /* 1 s */
    fs_build(s, 8);
    assert_int_equal(fs_open(s, &h, &err), 0);
    memscope_history_info(h, &info);
    assert_int_equal(info.first_time_ns, 1000);
    assert_true(info.last_time_ns >= 999999999 && info.last_time_ns <= 1000000001);
    memscope_history_close(h);

    /* Calibration being rewritten (odd seq): ticks are taken as ns. */
    s->root->clock_calib_seq = 3;
    assert_int_equal(fs_open(s, &h, &err), 0);
    memscope_history_info(h, &info);
    assert_int_equal(info.first_time_ns, 3000);
    memscope_history_close(h);

    /* A span under 1 ms is not trusted either. */
    s->root->clock_calib_seq = 4;
    s->root->clock_calib_ns = 100 + 500000;
    assert_int_equal(fs_open(s, &h, &err), 0);
    memscope_history_info(h, &info);
    assert_int_equal(info.first_time_ns, 3000);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_reader_reads_in_pieces(void **state)
{
    struct fake_store *s = fs_new();
    struct memscope_history *h = NULL;
    struct memscope_error err;
    uint64_t i, cap = 300000; /* one chunk of 9.6 MB: at least 3 reads */

    for (i = 0; i < FAKE_MAX_EVENTS; i++)
        fs_alloc(s, 1, i, 0x100000 + 16 * i, 8);
    fs_build(s, cap);
    fs_chunk(s, 0)->count = FAKE_MAX_EVENTS;
    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_true(s->mem.max_read <= (4u << 20));
    memscope_history_close(h);
    fs_delete(s);
}

static int count_cb(const struct memscope_allocation *b, void *arg)
{
    (*(uint64_t *)arg) += b->size;
    return 0;
}

static void test_reader_random_damage(void **state)
{
    unsigned iter, iterations = 3000;
    uint64_t rng = 0x2545f4914f6cdd1du;
    const char *env = getenv("MEMSCOPE_TEST_DAMAGE_ITERATIONS");

    /* Random bytes flipped in the root, chunk headers, records and texts:
     * whatever the engine makes of it, it must not crash, hang or leak, and a
     * store it accepts must replay and render. */
    if (env)
        iterations = (unsigned)strtoul(env, NULL, 10);
    for (iter = 0; iter < iterations; iter++) {
        struct fake_store *s = fs_new();
        struct memscope_history *h = NULL;
        struct memscope_snapshot *snap = NULL;
        struct memscope_error err;
        int i, flips;

        for (i = 0; i < 12; i++) {
            fs_alloc(s, 1 + (uint32_t)(i % 3), 10 * (uint64_t)i, 0x1000 + 0x40 * (uint64_t)(i % 5), 16 + (uint64_t)i);
            if (i % 4 == 3)
                fs_free(s, 1 + (uint32_t)((i + 1) % 3), 10 * (uint64_t)i + 5, 0x1000 + 0x40 * (uint64_t)((i + 2) % 5));
        }
        fs_label(s, 1, 200, 0x1000, "x", "int");
        fs_mark(s, 2, 210, "m");
        fs_build(s, 3);
        flips = 1 + (int)(rng % 4);
        for (i = 0; i < flips; i++) {
            struct fake_seg *sg;
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            sg = &s->mem.segs[rng % (uint64_t)s->mem.nsegs];
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            {
                size_t off = (size_t)(rng % (sg->len < 4096 ? sg->len : 4096));
                sg->data[off] ^= (uint8_t)(1u << ((rng >> 32) % 8));
                if ((rng >> 40) % 4 == 0) /* sometimes a whole word of junk */
                    memcpy(sg->data + (off & ~(size_t)7), &rng, off + 8 <= sg->len ? 8 : 0);
            }
        }
        if (fs_open(s, &h, &err) == 0) {
            struct memscope_point p = {MEMSCOPE_AT_PEAK, 0, NULL};
            uint64_t total = 0;
            char *out = NULL;
            assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
            assert_int_equal(memscope_snapshot_foreach(snap, count_cb, &total), 0);
            assert_int_equal(memscope_snapshot_render_text(snap, NULL, &out, NULL), 0);
            memscope_text_free(out);
            assert_int_equal(memscope_snapshot_render_json(snap, NULL, &out, NULL), 0);
            memscope_text_free(out);
            assert_int_equal(memscope_history_render_block(h, snap, 0x1000, NULL, &out, NULL), 0);
            memscope_text_free(out);
            memscope_snapshot_free(snap);
            assert_int_equal(memscope_history_snapshot(h, &p, &snap), 0);
            memscope_snapshot_free(snap);
            memscope_history_close(h);
        } else {
            assert_true(strlen(err.message) > 0);
        }
        fs_delete(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_good_store),
        cmocka_unit_test(test_reader_bad_magic),
        cmocka_unit_test(test_reader_root_unreadable),
        cmocka_unit_test(test_reader_unknown_version),
        cmocka_unit_test(test_reader_wrong_sizes),
        cmocka_unit_test(test_reader_count_exceeds_capacity),
        cmocka_unit_test(test_reader_chunk_loop),
        cmocka_unit_test(test_reader_chunk_list_too_long),
        cmocka_unit_test(test_reader_chunk_outside_memory),
        cmocka_unit_test(test_reader_chunk_bad_magic),
        cmocka_unit_test_teardown(test_reader_absurd_capacity, reset_failures),
        cmocka_unit_test(test_reader_count_unreadable),
        cmocka_unit_test(test_reader_chunk_bytes_exceeded),
        cmocka_unit_test(test_reader_chunks_overlap),
        cmocka_unit_test(test_reader_thread_mismatch),
        cmocka_unit_test(test_reader_unknown_kind),
        cmocka_unit_test(test_reader_duplicate_seq),
        cmocka_unit_test(test_reader_thread_zero),
        cmocka_unit_test_teardown(test_reader_out_of_memory, reset_failures),
        cmocka_unit_test(test_reader_time_ns_clock),
        cmocka_unit_test(test_reader_time_tsc),
        cmocka_unit_test(test_reader_reads_in_pieces),
        cmocka_unit_test(test_reader_random_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
