/*
 * test_trace_checkpoint.c - a folded history written as a trace (trace_abi.h
 * CHECKPOINT and CHECKPOINT_BLOCKS blocks) reads back to the same history:
 * the same snapshots at every point after the horizon, the same refusals
 * before it, the same folded marks and timeline; a damaged, missing, repeated
 * or inconsistent checkpoint block gives the documented warning or error.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_store.h"
#include "fold.h"
#include "memscope/trace.h"
#include "trace_codec.h"
#include "trace_test_files.h"

#define CK_ADDR UINT64_C(0x30000)

static int setup(void **state)
{
    (void)state;
    trace_file_setup("trace_ck");
    return 0;
}

/*
 * Thread 1: alloc A (100) t=10, label A "a" t=11, mark "early" t=15, alloc B (50) t=20, realloc B: REALLOC_FREE
 *           t=25 | REALLOC_ALLOC 0x5000 (70) t=26, free A t=30, mark "late" t=38, alloc C (7) t=40.
 * Thread 2: alloc D (9) t=12, label D "d" t=13 | (nothing after: it is only in the checkpoint).
 * Thread 3: alloc E (3) t=22 (nothing folded).
 * Folded at | (horizon 25): thread 1's realloc is cut in two (a stash in the checkpoint).
 */
static struct fake_store *folded(void)
{
    struct fake_store *s = fs_new();
    struct ms_fold_cut cuts[2] = {{1, 0, 5, 0}, {2, 0, 2, 0}};

    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_label(s, 1, 11, 0x1000, "a", "struct a");
    fs_mark(s, 1, 15, "early");
    fs_alloc(s, 1, 20, 0x2000, 50);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_FREE, 25, 0x2000, 0);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_ALLOC, 26, 0x5000, 70);
    fs_free(s, 1, 30, 0x1000);
    fs_mark(s, 1, 38, "late");
    fs_alloc(s, 1, 40, 0x3000, 7);
    fs_alloc(s, 2, 12, 0x4000, 9);
    fs_label(s, 2, 13, 0x4000, "d", "int");
    fs_alloc(s, 3, 22, 0x6000, 3);
    fs_build(s, 16);
    assert_non_null(fs_fold(s, cuts, 2, 25, CK_ADDR));
    return s;
}

static char *json_at(const struct memscope_history *h, const struct memscope_point *p)
{
    struct memscope_snapshot *snap = NULL;
    char *text = NULL;
    size_t len;

    assert_int_equal(memscope_history_snapshot(h, p, &snap), 0);
    assert_int_equal(memscope_snapshot_render_json(snap, NULL, &text, &len), 0);
    memscope_snapshot_free(snap);
    return text;
}

static char *timeline_json(const struct memscope_history *h)
{
    struct memscope_timeline *tl = NULL;
    char *text = NULL;
    size_t len;

    assert_int_equal(memscope_history_timeline(h, 5, &tl), 0);
    assert_int_equal(memscope_timeline_render_json(tl, &text, &len), 0);
    memscope_timeline_free(tl);
    return text;
}

/* The refusal sentence (or "" when the point is found). */
static void locate_text(const struct memscope_history *h, const struct memscope_point *p, char *out, size_t len)
{
    struct memscope_point_info pi;
    struct memscope_error err;

    memset(&err, 0, sizeof(err));
    if (memscope_history_locate(h, p, &pi, &err) == 0)
        snprintf(out, len, "ok: event %llu", (unsigned long long)pi.events);
    else
        snprintf(out, len, "%s", err.message);
}

static void write_folded(void)
{
    struct fake_store *s = folded();
    struct memscope_history *h = NULL;
    struct memscope_error err;

    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_write_trace(h, path, &err), 0);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_trace_checkpoint_roundtrip(void **state)
{
    struct fake_store *s = folded();
    struct memscope_history *h = NULL, *t = NULL;
    struct memscope_history_info hi, ti;
    struct memscope_trace_info info;
    struct memscope_error err;
    const char *marks[] = {"early", "late", "nope"};
    uint64_t n;

    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_write_trace(h, path, &err), 0);
    assert_int_equal(memscope_trace_open(path, MEMSCOPE_TRACE_STRICT, &t, &info, &err), 0);
    assert_string_equal(info.warning, "");
    assert_int_equal(info.version, MEMSCOPE_TRACE_VERSION);
    assert_int_equal(memscope_history_info(h, &hi), 0);
    assert_int_equal(memscope_history_info(t, &ti), 0);
    assert_int_equal(hi.horizon_ns, 25);
    assert_int_equal(hi.folded_events, 7);
    assert_int_equal(ti.horizon_ns, hi.horizon_ns);
    assert_int_equal(ti.folded_events, hi.folded_events);
    assert_int_equal(ti.events, hi.events);
    assert_int_equal(ti.threads, 3); /* thread 2 lives only in the checkpoint */
    assert_int_equal(ti.threads, hi.threads);
    assert_int_equal(ti.marks, 2);
    /* Every point after the horizon, as JSON (labels, stash, threads included), and the end. */
    for (n = hi.folded_events; n <= hi.folded_events + hi.events; n++) {
        struct memscope_point p = {MEMSCOPE_AT_EVENT, n, NULL};
        char *a = json_at(h, &p), *b = json_at(t, &p);
        assert_string_equal(a, b);
        if (n == hi.folded_events + hi.events) { /* the realloc the checkpoint left pending was completed */
            assert_non_null(strstr(b, "\"address\": \"0x5000\", \"size\": 70, \"thread\": 1, \"time_ns\": 26"));
            assert_non_null(strstr(b, "\"address\": \"0x4000\", \"size\": 9, \"thread\": 2, \"time_ns\": 12, "
                                      "\"label\": {\"name\": \"d\", \"type\": \"int\"}"));
        }
        memscope_text_free(a);
        memscope_text_free(b);
    }
    /* The same answers before the horizon, for marks (folded, retained, unknown) and times. */
    for (unsigned i = 0; i < 3; i++) {
        struct memscope_point p = {MEMSCOPE_AT_MARK, 0, marks[i]};
        char a[256], b[256];
        locate_text(h, &p, a, sizeof(a));
        locate_text(t, &p, b, sizeof(b));
        assert_string_equal(a, b);
    }
    {
        struct memscope_point p = {MEMSCOPE_AT_TIME, 20, NULL};
        struct memscope_snapshot *snap = NULL;
        char a[256], b[256];
        locate_text(h, &p, a, sizeof(a));
        locate_text(t, &p, b, sizeof(b));
        assert_string_equal(a, b);
        assert_non_null(strstr(b, "before the checkpoint horizon"));
        p = (struct memscope_point){MEMSCOPE_AT_MARK, 0, "early"};
        assert_int_equal(memscope_history_snapshot(t, &p, &snap), -ERANGE);
    }
    {
        char *a = timeline_json(h), *b = timeline_json(t);
        assert_string_equal(a, b);
        assert_non_null(strstr(b, "{\"name\":\"early\",\"time_ns\":15,\"events\":5,\"live_bytes\":109,\"bucket\":0,"
                                  "\"folded\":true}"));
        memscope_text_free(a);
        memscope_text_free(b);
    }
    /* Written again from the trace's own history: the same bytes. */
    check_rewrites_same_bytes(t);
    memscope_history_close(h);
    memscope_history_close(t);
    fs_delete(s);
}

/* Offset of the first block of `type` in the file (its header), or -1. */
static long block_at(uint16_t type)
{
    FILE *f = fopen(path, "rb");
    long off = sizeof(struct memscope_trace_header), found = -1;
    struct memscope_trace_block b;

    assert_non_null(f);
    while (fseek(f, off, SEEK_SET) == 0 && fread(&b, sizeof(b), 1, f) == 1) {
        if (b.type == type) {
            found = off;
            break;
        }
        off += (long)sizeof(b) + (long)((b.stored_size + 7u) & ~7u);
    }
    fclose(f);
    return found;
}

/* A damaged CHECKPOINT or CHECKPOINT_BLOCKS block: the events alone, with a warning naming the checkpoint; strict refuses. */
static void test_trace_checkpoint_damaged_blocks(void **state)
{
    const uint16_t types[2] = {MEMSCOPE_TRACE_CHECKPOINT, MEMSCOPE_TRACE_CHECKPOINT_BLOCKS};
    const char *why[2] = {"its CHECKPOINT block is damaged (payload checksum mismatch)",
                          "a CHECKPOINT_BLOCKS block is damaged (payload checksum mismatch)"};

    for (int i = 0; i < 2; i++) {
        struct memscope_history *t = NULL;
        struct memscope_trace_info info;
        struct memscope_history_info ti;
        struct memscope_error err;
        long off;

        write_folded();
        off = block_at(types[i]);
        assert_true(off > 0);
        poke(off + (long)sizeof(struct memscope_trace_block) + 2, 0x10);
        assert_int_equal(memscope_trace_open(path, MEMSCOPE_TRACE_STRICT, &t, &info, &err), -EBADMSG);
        assert_null(t);
        assert_int_equal(memscope_trace_open(path, 0, &t, &info, &err), 0);
        assert_non_null(strstr(info.warning, "the checkpoint of the folded history is unreadable"));
        assert_non_null(strstr(info.warning, why[i]));
        assert_int_equal(memscope_history_info(t, &ti), 0);
        assert_int_equal(ti.horizon_ns, 0);
        assert_int_equal(ti.events, 5); /* the retained events, replayed from nothing */
        memscope_history_close(t);
    }
}

/*
 * Hand-made files: one thread whose block 0x100 (8 bytes) is in the
 * checkpoint and whose one retained record frees it. `variant` says what is
 * wrong: 0 nothing, 1 blocks before their CHECKPOINT, 2 two CHECKPOINTs,
 * 3 pieces out of order, 4 blocks that do not add up, 5 counts that do not
 * match the payload.
 */
static int open_variant(int variant, struct memscope_history **h, struct memscope_trace_info *info,
                        struct memscope_error *err)
{
    struct memscope_trace_header fh;
    struct {
        struct memscope_trace_checkpoint c;
        struct memscope_trace_ck_thread t;
    } ck;
    struct {
        struct memscope_trace_ck_blocks h;
        struct memscope_trace_ck_block b;
    } piece;
    struct memscope_record rec = {30, 0x100, 0, 0, MEMSCOPE_RECORD_INFO(MEMSCOPE_REC_FREE, 1)};
    struct memscope_trace_events eh = {.thread = 1, .tid = 11};
    uint8_t raw[256];
    uint64_t seq = 0;
    FILE *f = fopen(path, "wb");

    memset(&ck, 0, sizeof(ck));
    memset(&piece, 0, sizeof(piece));
    ck.c = (struct memscope_trace_checkpoint){.horizon = 20, .folded_events = 1, .generation = 1,
                                              .total_allocations = 1, .total_allocated = 8, .current_memory = 8,
                                              .peak_memory = 8, .peak_time = 10, .block_count = 1,
                                              .thread_count = 1};
    ck.t = (struct memscope_trace_ck_thread){.thread = 1, .tid = 11, .allocations = 1, .allocated_bytes = 8,
                                             .current_memory = 8, .live_blocks = 1, .peak_memory = 8,
                                             .peak_time = 10};
    piece.h.count = 1;
    piece.b = (struct memscope_trace_ck_block){.address = 0x100, .size = variant == 4 ? 9 : 8, .time = 10,
                                               .thread = 1};
    ms_trace_header_init(&fh, 0, 7, 0, 0, 1);
    fwrite(&fh, sizeof(fh), 1, f);
    if (variant == 1)
        put_raw_block(f, MEMSCOPE_TRACE_CHECKPOINT_BLOCKS, seq++, &piece, sizeof(piece));
    put_raw_block(f, MEMSCOPE_TRACE_CHECKPOINT, seq++, &ck, variant == 5 ? sizeof(ck) - 8 : sizeof(ck));
    if (variant == 2)
        put_raw_block(f, MEMSCOPE_TRACE_CHECKPOINT, seq++, &ck, sizeof(ck));
    if (variant == 3)
        piece.h.first_block = 1;
    if (variant != 1)
        put_raw_block(f, MEMSCOPE_TRACE_CHECKPOINT_BLOCKS, seq++, &piece, sizeof(piece));
    put_raw_block(f, MEMSCOPE_TRACE_EVENTS, seq++, raw, ms_trace_encode_events(&eh, &rec, 1, raw));
    fclose(f);
    return memscope_trace_open(path, 0, h, info, err);
}

static void test_trace_checkpoint_bad_files(void **state)
{
    static const char *const warning[] = {
        "", "its live blocks came before its CHECKPOINT block", "two CHECKPOINT blocks", "came out of order",
        NULL, "counts do not match the payload"};
    struct memscope_history *h = NULL;
    struct memscope_trace_info info;
    struct memscope_history_info hi;
    struct memscope_error err;
    struct memscope_snapshot *snap = NULL;
    struct memscope_stats st;

    for (int v = 0; v < 6; v++) {
        memset(&err, 0, sizeof(err));
        if (v == 4) { /* whole but inconsistent: refused as the store reader refuses it */
            assert_int_equal(open_variant(v, &h, &info, &err), -EBADMSG);
            assert_non_null(strstr(err.message, "checkpoint at 0x"));
            assert_non_null(strstr(err.message, "current_memory"));
            continue;
        }
        assert_int_equal(open_variant(v, &h, &info, &err), 0);
        if (!strstr(info.warning, warning[v]))
            fail_msg("variant %d: warning \"%s\" lacks \"%s\"", v, info.warning, warning[v]);
        assert_int_equal(memscope_history_info(h, &hi), 0);
        assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
        assert_int_equal(memscope_snapshot_stats(snap, &st), 0);
        if (v == 0) { /* the checkpoint's block, freed by the retained record */
            assert_int_equal(hi.horizon_ns, 20);
            assert_int_equal(st.total_allocations, 1);
            assert_int_equal(st.total_deallocations, 1);
            assert_int_equal(st.unmatched_deallocations, 0);
            assert_int_equal(st.events, 2);
        } else { /* without it, the free is unmatched */
            assert_int_equal(hi.horizon_ns, 0);
            assert_int_equal(st.unmatched_deallocations, 1);
        }
        assert_int_equal(st.current_memory, 0);
        memscope_snapshot_free(snap);
        memscope_history_close(h);
        h = NULL;
    }
}

/*
 * Exited threads merged into the checkpoint's serial-0 entry (store_abi.h)
 * travel through the trace (version 3, ck_thread.merged): thread 1 runs on,
 * threads 2 and 3 exit having freed all; after two folds 2 and 3 are one
 * entry, and the report of the trace equals the store's snapshot.
 */
static void test_trace_checkpoint_merged_threads(void **state)
{
    struct fake_store *s = fs_new();
    struct ms_fold_cut first[3] = {{1, 0, 1, 0}, {2, 1, 0, MS_FOLD_GONE}, {3, 1, 0, MS_FOLD_GONE}};
    struct ms_fold_cut second[3] = {{1, 0, 1, 0}, {2, 1, 0, MS_FOLD_MERGE}, {3, 1, 0, MS_FOLD_MERGE}};
    struct memscope_history *h = NULL, *t = NULL;
    struct memscope_history_info hi, ti;
    struct memscope_trace_info info;
    struct memscope_error err;
    struct memscope_checkpoint *ck;
    struct memscope_point end = {MEMSCOPE_AT_END, 0, NULL};

    fs_alloc(s, 1, 1, 0x1000, 100);
    fs_alloc(s, 1, 60, 0x1100, 5);
    fs_alloc(s, 2, 2, 0x2000, 10);
    fs_free(s, 2, 3, 0x2000);
    fs_alloc(s, 3, 4, 0x3000, 20);
    fs_ev(s, 3, MEMSCOPE_REC_REALLOC_FREE, 5, 0x3000, 0);
    fs_ev(s, 3, MEMSCOPE_REC_REALLOC_ALLOC, 6, 0x3100, 30);
    fs_free(s, 3, 7, 0x3100);
    fs_build(s, 8);
    assert_non_null(fs_fold(s, first, 3, 10, CK_ADDR));
    fs_unlink_thread(s, 2);
    fs_unlink_thread(s, 3);
    ck = fs_fold(s, second, 3, 10, CK_ADDR + 0x100000);
    assert_non_null(ck);
    assert_int_equal(ck->thread_count, 2);
    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_write_trace(h, path, &err), 0);
    assert_int_equal(memscope_trace_open(path, MEMSCOPE_TRACE_STRICT, &t, &info, &err), 0);
    assert_string_equal(info.warning, "");
    assert_int_equal(info.version, 3);
    assert_int_equal(memscope_history_info(h, &hi), 0);
    assert_int_equal(memscope_history_info(t, &ti), 0);
    assert_int_equal(hi.threads, 3);
    assert_int_equal(ti.threads, 3);
    {
        char *a = json_at(h, &end), *b = json_at(t, &end);
        assert_string_equal(a, b);
        assert_non_null(strstr(b, "{\"thread\": 0, \"tid\": 0, \"exited_threads\": 2, \"allocations\": 3, "
                                  "\"deallocations\": 3, \"allocated_bytes\": 60, \"released_bytes\": 60, "
                                  "\"current_memory\": 0, \"live_blocks\": 0, \"peak_memory\": 30, \"peak_time_ns\": 6}"));
        assert_non_null(strstr(b, "\"threads\": 3,"));
        memscope_text_free(a);
        memscope_text_free(b);
    }
    memscope_history_close(h);
    memscope_history_close(t);
    fs_delete(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_trace_checkpoint_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_checkpoint_merged_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_checkpoint_damaged_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_checkpoint_bad_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
