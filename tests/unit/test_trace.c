/*
 * test_trace.c - trace files (trace_abi.h): the event codec round-trips
 * every field; a history written as a trace reads back to the same
 * snapshots at every event; damaged files (bad magic, header checksum,
 * unknown version, block payload checksum, truncation, a lost block) give
 * the documented error or warning, never a crash.
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
#include <zstd.h>

#include "fake_store.h"
#include "internal.h" /* ms_engine_big_keep */
#include "memscope/trace.h"
#include "trace_codec.h"
#include "trace_test_files.h"

static int setup(void **state)
{
    (void)state;
    trace_file_setup("trace");
    return 0;
}

static void test_trace_codec_roundtrip(void **state)
{
    struct memscope_record in[6] = {
        {100, 0x7f0000001000, 24, 3, MEMSCOPE_RECORD_INFO(MEMSCOPE_REC_ALLOC, 7)},
        {90, 0x7f0000001000, 0, 0, MEMSCOPE_RECORD_INFO(MEMSCOPE_REC_FREE, 7)}, /* time goes back (a signal handler) */
        {UINT64_MAX, 0x10, UINT64_MAX, UINT32_MAX, MEMSCOPE_RECORD_INFO(MEMSCOPE_REC_REALLOC_ALLOC, 7)},
        {5, 0, 0x5000, 0, MEMSCOPE_RECORD_INFO(MEMSCOPE_REC_MARK, 7)},
        {6, UINT64_MAX, 0, 0, MEMSCOPE_RECORD_INFO(MEMSCOPE_REC_REALLOC_FREE, 7)},
        {7, 1, 0, 0, MEMSCOPE_RECORD_INFO(MEMSCOPE_REC_REALLOC_UNDO, 7)},
    };
    struct memscope_record out[6];
    struct memscope_trace_events h = {.thread = 7, .tid = 77, .first_index = 12, .first_time = 50}, h2;
    uint8_t buf[1024];
    const char *why = NULL;
    size_t len = ms_trace_encode_events(&h, in, 6, buf);

    assert_true(len <= ms_trace_events_bound(6));
    assert_int_equal(ms_trace_decode_events(buf, len, &h2, out, 6, &why), 0);
    assert_int_equal(h2.count, 6);
    assert_int_equal(h2.tid, 77);
    assert_int_equal(h2.first_index, 12);
    assert_memory_equal(in, out, sizeof(in));
    /* One byte short, one byte too many, a bad kind: refused with a reason. */
    assert_int_equal(ms_trace_decode_events(buf, len - 1, &h2, out, 6, &why), -EBADMSG);
    assert_non_null(why);
    buf[len] = 0;
    assert_int_equal(ms_trace_decode_events(buf, len + 1, &h2, out, 6, &why), -EBADMSG);
    buf[sizeof(h)] = 99;
    assert_int_equal(ms_trace_decode_events(buf, len, &h2, out, 6, &why), -EBADMSG);
    /* Room for fewer records than the block claims. */
    buf[sizeof(h)] = MEMSCOPE_REC_ALLOC;
    assert_int_equal(ms_trace_decode_events(buf, len, &h2, out, 5, &why), -EBADMSG);
}

/* Every varint length, on both sides of each boundary, in every column,
 * into a buffer of exactly the bound (ASan catches a store past it): the
 * encoder writes most varints 8 bytes at a time. */
static void test_trace_codec_varint_lengths(void **state)
{
    enum { N = 2 * 65 };
    struct memscope_record *in = calloc(N, sizeof(*in)), *out = calloc(N, sizeof(*out));
    struct memscope_trace_events h = {.thread = 3, .tid = 33, .first_index = 0, .first_time = 0}, h2;
    const char *why = NULL;
    uint64_t time = 0, addr = 0;
    uint8_t *buf;
    size_t len;

    (void)state;
    assert_non_null(in);
    assert_non_null(out);
    for (int i = 0; i < N; i++) {
        /* 2^b - 1 and 2^b for b = 0..64 (2^64 wraps to 0) */
        uint64_t v = i / 2 == 64 ? (i % 2 ? 0 : UINT64_MAX) : (UINT64_C(1) << (i / 2)) - (i % 2 ? 0 : 1);
        time += v / 2; /* deltas of every length (zigzag doubles them) */
        addr += i % 2 ? v / 2 : (uint64_t)0 - v / 2;
        in[i].time = time;
        in[i].address = addr;
        in[i].size = v;
        in[i].stack = (uint32_t)v;
        in[i].info = MEMSCOPE_RECORD_INFO(MEMSCOPE_REC_ALLOC, 3);
    }
    buf = malloc(ms_trace_events_bound(N));
    assert_non_null(buf);
    len = ms_trace_encode_events(&h, in, N, buf);
    assert_true(len <= ms_trace_events_bound(N));
    assert_int_equal(ms_trace_decode_events(buf, len, &h2, out, N, &why), 0);
    assert_memory_equal(in, out, N * sizeof(*in));
    /* All ten-byte varints: the bound itself. */
    for (int i = 0; i < N; i++) {
        in[i].time = i % 2 ? UINT64_MAX / 2 : 0;
        in[i].address = i % 2 ? UINT64_MAX / 2 + 1 : 0;
        in[i].size = UINT64_MAX;
    }
    len = ms_trace_encode_events(&h, in, N, buf);
    assert_true(len <= ms_trace_events_bound(N));
    assert_int_equal(ms_trace_decode_events(buf, len, &h2, out, N, &why), 0);
    assert_memory_equal(in, out, N * sizeof(*in));
    free(buf);
    free(in);
    free(out);
}

static void test_trace_crc32c_known_value(void **state)
{
    /* The standard check value of CRC-32C. */
    assert_int_equal(ms_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(ms_crc32c(ms_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
}

/* A store with two threads, a label, marks, a realloc, cross-thread frees. */
static struct fake_store *sample(void)
{
    struct fake_store *s = fs_new();

    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_alloc(s, 2, 20, 0x2000, 7);
    fs_label(s, 2, 21, 0x2000, "seven", "char[7]");
    fs_mark(s, 1, 25, "first");
    fs_free(s, 2, 30, 0x1000);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_FREE, 40, 0x2000, 0);
    fs_ev(s, 1, MEMSCOPE_REC_REALLOC_ALLOC, 41, 0x9000, 70);
    fs_alloc(s, 1, 50, 0x3000, 1000);
    fs_free(s, 2, 55, 0x4444); /* unmatched */
    fs_mark(s, 2, 60, "second");
    fs_build(s, 3);
    return s;
}

static char *render_at(const struct memscope_history *h, uint64_t n)
{
    struct memscope_point p = {.kind = MEMSCOPE_AT_EVENT, .value = n};
    struct memscope_snapshot *snap = NULL;
    char *text = NULL;
    size_t len;

    assert_int_equal(memscope_history_snapshot(h, &p, &snap), 0);
    assert_int_equal(memscope_snapshot_render_json(snap, NULL, &text, &len), 0);
    memscope_snapshot_free(snap);
    return text;
}

static void write_sample_trace(void)
{
    struct fake_store *s = sample();
    struct memscope_history *h = NULL;
    struct memscope_error err;

    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_write_trace(h, path, &err), 0);
    memscope_history_close(h);
    fs_delete(s);
}

static void test_trace_history_roundtrip(void **state)
{
    struct fake_store *s = sample();
    struct memscope_history *h = NULL, *t = NULL;
    struct memscope_history_info hi, ti;
    struct memscope_trace_info info;
    struct memscope_error err;

    assert_int_equal(fs_open(s, &h, &err), 0);
    assert_int_equal(memscope_history_write_trace(h, path, &err), 0);
    assert_int_equal(memscope_trace_open(path, MEMSCOPE_TRACE_STRICT, &t, &info, &err), 0);
    assert_int_equal(info.complete, 1);
    assert_int_equal(info.blocks_skipped, 0);
    assert_string_equal(info.warning, "");
    memscope_history_info(h, &hi);
    memscope_history_info(t, &ti);
    assert_int_equal(hi.events, ti.events);
    assert_int_equal(hi.threads, ti.threads);
    assert_int_equal(hi.marks, ti.marks);
    assert_int_equal(hi.last_time_ns, ti.last_time_ns);
    for (uint64_t n = 0; n <= hi.events; n++) {
        char *a = render_at(h, n), *b = render_at(t, n);
        assert_string_equal(a, b);
        memscope_text_free(a);
        memscope_text_free(b);
    }
    /* Written again from the trace's own history: the same bytes. */
    check_rewrites_same_bytes(t);
    memscope_history_close(h);
    memscope_history_close(t);
    fs_delete(s);
}

static long file_size(void)
{
    FILE *f = fopen(path, "rb");
    long n;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fclose(f);
    return n;
}

static void test_trace_damaged_header(void **state)
{
    struct memscope_history *t = NULL;
    struct memscope_error err;
    struct memscope_trace_header fh;
    int fd;

    write_sample_trace();
    poke(0, 0x20); /* magic */
    assert_int_equal(memscope_trace_open(path, 0, &t, NULL, &err), -EBADMSG);
    assert_non_null(strstr(err.message, "not a memscope trace"));
    poke(0, 0x20);
    poke(40, 1); /* clock origin: the header checksum fails */
    assert_int_equal(memscope_trace_open(path, 0, &t, NULL, &err), -EBADMSG);
    assert_non_null(strstr(err.message, "header is damaged"));
    poke(40, 1);
    /* An unknown version with a valid checksum. */
    fd = open(path, O_RDWR);
    assert_true(pread(fd, &fh, sizeof(fh), 0) == sizeof(fh));
    ms_trace_header_init(&fh, fh.flags, fh.pid, fh.clock_origin_ticks, fh.clock_origin_ns, fh.block_size_hint);
    fh.version = 99;
    fh.header_crc = ms_crc32c(0, &fh, offsetof(struct memscope_trace_header, header_crc));
    assert_true(pwrite(fd, &fh, sizeof(fh), 0) == sizeof(fh));
    close(fd);
    assert_int_equal(memscope_trace_open(path, 0, &t, NULL, &err), -EPROTO);
    assert_non_null(strstr(err.message, "version 99"));
    /* Too short to be a trace; missing. */
    assert_int_equal(truncate(path, 10), 0);
    assert_int_equal(memscope_trace_open(path, 0, &t, NULL, &err), -EBADMSG);
    unlink(path);
    assert_int_equal(memscope_trace_open(path, 0, &t, NULL, &err), -ENOENT);
    assert_null(t);
}

static void test_trace_damaged_block(void **state)
{
    struct memscope_history *t = NULL;
    struct memscope_trace_info info;
    struct memscope_history_info hi;
    struct memscope_error err;
    long first_payload = sizeof(struct memscope_trace_header) + sizeof(struct memscope_trace_block);

    write_sample_trace();
    /* Block 0 holds the texts; flip a payload byte: skipped with a warning, strict refuses. */
    poke(first_payload + 3, 0x40);
    assert_int_equal(memscope_trace_open(path, MEMSCOPE_TRACE_STRICT, &t, &info, &err), -EBADMSG);
    assert_non_null(strstr(err.message, "checksum"));
    assert_int_equal(memscope_trace_open(path, 0, &t, &info, &err), 0);
    assert_int_equal(info.blocks_skipped, 1);
    assert_non_null(strstr(info.warning, "block 0"));
    assert_non_null(strstr(info.warning, "checksum"));
    memscope_history_info(t, &hi);
    assert_int_equal(hi.events, 10); /* the events are all there; the texts read as unreadable */
    memscope_history_close(t);
    poke(first_payload + 3, 0x40);
    /* A damaged block header ends the walk there. */
    poke(sizeof(struct memscope_trace_header) + 9, 1);
    assert_int_equal(memscope_trace_open(path, 0, &t, &info, &err), 0);
    assert_non_null(strstr(info.warning, "damaged header"));
    memscope_history_info(t, &hi);
    assert_int_equal(hi.events, 0);
    memscope_history_close(t);
}

static void test_trace_truncated(void **state)
{
    struct memscope_history *t = NULL, *full = NULL;
    struct memscope_trace_info info;
    struct memscope_history_info hi;
    struct memscope_error err;
    long size;

    write_sample_trace();
    assert_int_equal(memscope_trace_open(path, 0, &full, &info, &err), 0);
    size = file_size();
    /* Cut anywhere: never an error, never more events than the whole file holds; the cut is reported. */
    for (long cut = (long)sizeof(struct memscope_trace_header); cut < size; cut += 5) {
        write_sample_trace();
        assert_int_equal(truncate(path, cut), 0);
        assert_int_equal(memscope_trace_open(path, 0, &t, &info, &err), 0);
        memscope_history_info(t, &hi);
        assert_true(hi.events <= 10);
        assert_int_equal(info.complete, 0);
        if (cut > (long)sizeof(struct memscope_trace_header))
            assert_true(info.truncated_bytes > 0 || info.blocks > 0);
        memscope_history_close(t);
        if (cut > (long)sizeof(struct memscope_trace_header)) {
            uint64_t cut_bytes = info.truncated_bytes;
            int rc = memscope_trace_open(path, MEMSCOPE_TRACE_STRICT, &t, &info, &err);
            if (rc != (cut_bytes ? -EBADMSG : 0))
                fail_msg("cut at %ld: strict open gave %d: %s", cut, rc, err.message);
            memscope_history_close(t);
            t = NULL;
        }
    }
    memscope_history_close(full);
}

static uint64_t lcg(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

/*
 * Blocks whose checksums are right but whose payloads are mutated (random
 * bytes changed in a TEXTS, STACKS or EVENTS payload): the open succeeds or
 * fails with -EBADMSG, never crashes, and the history it gives replays.
 */
static void test_trace_mutated_payloads(void **state)
{
    uint8_t texts[256], stacks[256], events[1024];
    size_t ntexts = 0, nstacks = 0, nevents;
    struct memscope_record recs[8];
    struct memscope_trace_events eh = {.thread = 1, .tid = 11};
    struct memscope_trace_header fh;
    uint64_t x = 12345;

    /* Two texts, two stacks, eight records naming them. */
    {
        struct memscope_trace_text t1 = {0x1000, 6, 1}, t2 = {0x1010, 10, 2};
        memcpy(texts, &t1, sizeof(t1));
        memcpy(texts + 16, "mark1\0\0\0", 8);
        memcpy(texts + 24, &t2, sizeof(t2));
        memcpy(texts + 40, "var\0type_t\0\0\0\0\0\0", 16);
        ntexts = 56;
        struct memscope_trace_stacks sh = {MEMSCOPE_STACK_FP, 4, 0, 0, 2, 0};
        struct memscope_trace_stack e1 = {1, 2}, e2 = {2, 1};
        uint64_t fr[3] = {0x401000, 0x402000, 0x403000};
        memcpy(stacks, &sh, sizeof(sh));
        nstacks = sizeof(sh);
        memcpy(stacks + nstacks, &e1, sizeof(e1));
        memcpy(stacks + nstacks + sizeof(e1), fr, 16);
        nstacks += sizeof(e1) + 16;
        memcpy(stacks + nstacks, &e2, sizeof(e2));
        memcpy(stacks + nstacks + sizeof(e2), fr + 2, 8);
        nstacks += sizeof(e2) + 8;
    }
    for (int i = 0; i < 8; i++) {
        unsigned kind = i == 3 ? MEMSCOPE_REC_MARK : i == 5 ? MEMSCOPE_REC_LABEL : i % 2 ? MEMSCOPE_REC_FREE : MEMSCOPE_REC_ALLOC;
        recs[i].time = 100 + (uint64_t)i * 10;
        recs[i].address = i == 3 ? 0 : 0x5000 + (uint64_t)(i / 2) * 0x100;
        recs[i].size = kind == MEMSCOPE_REC_MARK ? 0x1000 : kind == MEMSCOPE_REC_LABEL ? 0x1010 : kind == MEMSCOPE_REC_ALLOC ? 40 : 0;
        recs[i].stack = kind == MEMSCOPE_REC_ALLOC ? (uint32_t)(1 + i % 3) : 0;
        recs[i].info = MEMSCOPE_RECORD_INFO(kind, 1);
    }
    nevents = ms_trace_encode_events(&eh, recs, 8, events);
    ms_trace_header_init(&fh, 0, 42, 0, 0, 8);

    for (int round = 0; round < 3000; round++) {
        uint8_t t[256], s[256], e[1024];
        size_t lt = ntexts, ls = nstacks, le = nevents;
        struct memscope_history *h = NULL;
        struct memscope_error err;
        struct memscope_trace_info info;
        FILE *f;
        int which = round % 3, rc;

        memcpy(t, texts, lt);
        memcpy(s, stacks, ls);
        memcpy(e, events, le);
        uint8_t *target = which == 0 ? t : which == 1 ? s : e;
        size_t len = which == 0 ? lt : which == 1 ? ls : le;
        for (int k = 0, n = 1 + (int)(lcg(&x) % 3); k < n; k++)
            target[lcg(&x) % len] ^= (uint8_t)(1u << (lcg(&x) % 8));
        if (round % 7 == 0) { /* and sometimes a length cut short */
            if (which == 0)
                lt = lcg(&x) % lt;
            else if (which == 1)
                ls = lcg(&x) % ls;
            else
                le = lcg(&x) % le;
        }
        f = fopen(path, "wb");
        assert_non_null(f);
        fwrite(&fh, sizeof(fh), 1, f);
        put_raw_block(f, MEMSCOPE_TRACE_TEXTS, 0, t, lt);
        put_raw_block(f, MEMSCOPE_TRACE_STACKS, 1, s, ls);
        put_raw_block(f, MEMSCOPE_TRACE_EVENTS, 2, e, le);
        fclose(f);
        rc = memscope_trace_open(path, 0, &h, &info, &err);
        assert_true(rc == 0 || rc == -EBADMSG);
        if (rc == 0) {
            struct memscope_snapshot *snap = NULL;
            char *text = NULL;
            size_t n;
            assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
            assert_int_equal(memscope_snapshot_render_json(snap, NULL, &text, &n), 0);
            memscope_text_free(text);
            memscope_snapshot_free(snap);
            memscope_history_close(h);
        }
    }
}

/*
 * The walk checks EVENTS payloads with ms_trace_check_events and decodes
 * them later: the check must accept exactly what the decoder accepts, for
 * the same reason. Payloads with long varints and stack ids near 2^32, then
 * mutated (bit flips, cut short, grown), go through both.
 */
static void test_trace_check_matches_decode(void **state)
{
    enum { N = 64 };
    static struct memscope_record recs[N], out[4096];
    static uint8_t buf[8192], m[8192];
    struct memscope_trace_events eh = {.thread = 5, .tid = 55, .first_time = 1000};
    uint64_t x = 777;
    int accepted = 0;

    for (int round = 0; round < 20000; round++) {
        for (int i = 0; i < N; i++) {
            unsigned kind = 1 + (unsigned)(lcg(&x) % MEMSCOPE_REC_MARK);
            uint64_t r = lcg(&x);
            recs[i].time = 1000 + (uint64_t)i * (r % 4 == 0 ? (UINT64_C(1) << (r % 60)) : 3);
            recs[i].address = r % 3 == 0 ? lcg(&x) << 31 : 0x1000 + (uint64_t)i * 16;
            recs[i].size = r % 5 == 0 ? UINT64_MAX >> (r % 64) : r % 200;
            recs[i].stack = r % 7 == 0 ? UINT32_MAX - (uint32_t)(r % 3) : (uint32_t)(r % 300);
            recs[i].info = MEMSCOPE_RECORD_INFO(kind, 5);
        }
        size_t len = ms_trace_encode_events(&eh, recs, 1 + lcg(&x) % N, buf);
        memcpy(m, buf, len);
        int mode = round % 5;
        if (mode == 1 || mode == 2) /* flip bits, mostly in the columns */
            for (int k = 0, n = 1 + (int)(lcg(&x) % 4); k < n; k++)
                m[sizeof(eh) + lcg(&x) % (len - sizeof(eh))] ^= (uint8_t)(1u << (lcg(&x) % 8));
        else if (mode == 3) /* cut short */
            len = lcg(&x) % len;
        else if (mode == 4) { /* grown by continuation bytes or terminators */
            size_t more = 1 + lcg(&x) % 24;
            memset(m + len, lcg(&x) % 2 ? 0x80 : 0x01, more);
            if (lcg(&x) % 2) { /* or a varint made longer in the middle */
                size_t at = sizeof(eh) + lcg(&x) % (len - sizeof(eh));
                memmove(m + at + more, m + at, len - at);
                memset(m + at, 0xff, more);
            }
            len += more;
        }
        struct memscope_trace_events h1, h2;
        const char *why1 = NULL, *why2 = NULL;
        int rc1 = ms_trace_check_events(m, len, &h1, &why1);
        int rc2 = ms_trace_decode_events(m, len, &h2, out, 4096, &why2);
        if (len >= sizeof(eh) && h2.count > 4096)
            assert_int_not_equal(rc1, 0); /* more records than bytes: both refuse, for different reasons */
        else {
            assert_int_equal(rc1, rc2);
            if (rc1 != 0)
                assert_string_equal(why1, why2);
        }
        accepted += rc1 == 0;
    }
    assert_true(accepted > 4000); /* the unmutated rounds and some mutations pass */
}

/* Writes a trace (stored uncompressed) of nthreads threads, each allocating
 * n blocks in one EVENTS block and freeing all but one in a second, the
 * threads' times interleaved. */
static void write_threads_trace(const char *file, uint32_t nthreads, uint32_t n)
{
    struct memscope_record *recs = calloc(n, sizeof(*recs));
    size_t cap = ms_trace_events_bound(n);
    uint8_t *raw = malloc(cap), *blk = malloc(ms_trace_block_bound(cap));
    struct memscope_trace_header fh;
    uint64_t seq = 0;
    FILE *f = fopen(file, "wb");

    assert_non_null(recs);
    assert_non_null(raw);
    assert_non_null(blk);
    assert_non_null(f);
    ms_trace_header_init(&fh, 0, 9, 0, 0, n);
    fwrite(&fh, sizeof(fh), 1, f);
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t t = 1; t <= nthreads; t++) {
            struct memscope_trace_events eh = {.thread = t, .tid = 100 + t, .first_index = pass ? n : 0,
                                               .first_time = pass ? recs[n - 1].time : 0};
            uint32_t count = pass ? n - 1 : n;
            for (uint32_t i = 0; i < count; i++) {
                recs[i].time = ((uint64_t)pass * n + i) * nthreads + t;
                recs[i].address = ((uint64_t)t << 32) + (uint64_t)i * 64;
                recs[i].size = pass ? 0 : 48;
                recs[i].stack = 0;
                recs[i].info = MEMSCOPE_RECORD_INFO(pass ? MEMSCOPE_REC_FREE : MEMSCOPE_REC_ALLOC, t);
            }
            if (pass == 0)
                recs[n - 1].time = ((uint64_t)n - 1) * nthreads + t; /* first_time of the next block */
            size_t len = ms_trace_encode_events(&eh, recs, count, raw);
            size_t bl = ms_trace_block_build(MEMSCOPE_TRACE_EVENTS, seq++, raw, len, NULL, 0, blk);
            assert_int_equal(fwrite(blk, 1, bl, f), bl);
        }
    fclose(f);
    free(recs);
    free(raw);
    free(blk);
}

/* Checks (and closes) the history of write_threads_trace(nthreads, n): every
 * event there, each thread's one block left live. Returns the end's figures. */
static struct memscope_stats check_threads_trace(struct memscope_history *h, const struct memscope_trace_info *info,
                                                 uint32_t nthreads, uint32_t n)
{
    struct memscope_history_info hi;
    struct memscope_snapshot *snap = NULL;
    struct memscope_stats st;

    assert_int_equal(info->blocks, 2 * nthreads);
    memscope_history_info(h, &hi);
    assert_int_equal(hi.events, (uint64_t)nthreads * (2 * n - 1));
    assert_int_equal(hi.threads, nthreads);
    assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
    assert_int_equal(memscope_snapshot_stats(snap, &st), 0);
    assert_int_equal(st.threads, nthreads);
    assert_int_equal(st.active_allocations, nthreads);
    assert_int_equal(st.current_memory, (uint64_t)nthreads * 48);
    assert_int_equal(st.unmatched_deallocations, 0);
    memscope_snapshot_free(snap);
    memscope_history_close(h);
    return st;
}

/* More threads than the reader keeps decoded blocks for at once (blocks are
 * decoded again as the merge comes back to them): every event is there, in
 * order, and the snapshot is right. */
static void test_trace_many_threads_decoded_again(void **state)
{
    const uint32_t nthreads = 40, n = 65536;
    struct memscope_history *h = NULL;
    struct memscope_stats st;
    struct memscope_trace_info info;
    struct memscope_error err;

    write_threads_trace(path, nthreads, n);
    assert_int_equal(memscope_trace_open(path, MEMSCOPE_TRACE_STRICT, &h, &info, &err), 0);
    st = check_threads_trace(h, &info, nthreads, n);
    assert_int_equal(st.peak_memory, (uint64_t)nthreads * n * 48);
}

/*
 * A thread per request: 20,000 threads of a few events, each in two blocks
 * (the second found by its serial among all the threads read). The reader
 * found threads by a walk of its list and gave every thread's merge window
 * its least size (64 KiB): 2.2 s and 1.3 GB for a 1.6 MB trace; now both
 * grow with what the file holds. The big mappings the read frees are kept
 * (ms_engine_big_keep) to see what it mapped. Every event is there and the
 * snapshot is right.
 */
static void test_trace_thread_per_request(void **state)
{
    const uint32_t nthreads = 20000, n = 2;
    struct memscope_history *h = NULL;
    struct memscope_trace_info info;
    struct memscope_error err;

    write_threads_trace(path, nthreads, n);
    ms_engine_big_keep(1);
    assert_int_equal(memscope_trace_open(path, MEMSCOPE_TRACE_STRICT, &h, &info, &err), 0);
    assert_true(ms_engine_big_kept(NULL, -1) < (16u << 20)); /* the events are 1.9 MB */
    ms_engine_big_keep(0);
    check_threads_trace(h, &info, nthreads, n);
}

/*
 * A block whose checksums are right but whose columns do not decode (a bad
 * record kind, written so by a broken writer): the walk takes EVENTS blocks
 * on their headers, so it is found only when its records are read; the
 * trace is then walked again and the block skipped with the decoder's
 * reason, as any damaged block is (--strict refuses). Stored and
 * zstd-compressed.
 */
static void test_trace_undecodable_block_skipped(void **state)
{
    struct memscope_record recs[4];
    uint8_t raw[512], blk[1024];
    void *cctx = ZSTD_createCCtx();

    for (int i = 0; i < 4; i++) {
        recs[i].time = 10 + (uint64_t)i;
        recs[i].address = 0x100 + (uint64_t)i * 16;
        recs[i].size = 8;
        recs[i].stack = 0;
        recs[i].info = MEMSCOPE_RECORD_INFO(MEMSCOPE_REC_ALLOC, 2);
    }
    for (int compressed = 0; compressed < 2; compressed++) {
        struct memscope_trace_header fh;
        struct memscope_trace_info info;
        struct memscope_history *h = NULL;
        struct memscope_history_info hi;
        struct memscope_error err;
        FILE *f = fopen(path, "wb");
        size_t len, n;

        assert_non_null(f);
        ms_trace_header_init(&fh, 0, 7, 0, 0, 2);
        fwrite(&fh, sizeof(fh), 1, f);
        for (uint64_t b = 0; b < 3; b++) {
            struct memscope_trace_events eh = {.thread = 2, .tid = 22, .first_index = b == 2 ? 2 : 0,
                                               .first_time = b == 2 ? 11 : 0};
            len = ms_trace_encode_events(&eh, recs + (b == 2 ? 2 : 0), 2, raw);
            if (b == 1) {
                eh.first_index = 2; /* would continue block 0; its second kind is bad */
                memcpy(raw, &eh, sizeof(eh));
                raw[sizeof(eh) + 1] = 99;
            }
            if (b == 2)
                continue; /* written below, once block 1 is */
            n = ms_trace_block_build(MEMSCOPE_TRACE_EVENTS, b, raw, len, compressed ? cctx : NULL, 1, blk);
            assert_true(n > 0);
            fwrite(blk, 1, n, f);
        }
        {
            struct memscope_trace_events eh = {.thread = 2, .tid = 22, .first_index = 2, .first_time = 11};
            len = ms_trace_encode_events(&eh, recs + 2, 2, raw);
            n = ms_trace_block_build(MEMSCOPE_TRACE_EVENTS, 2, raw, len, compressed ? cctx : NULL, 1, blk);
            fwrite(blk, 1, n, f);
        }
        fclose(f);
        assert_int_equal(memscope_trace_open(path, 0, &h, &info, &err), 0);
        assert_non_null(strstr(info.warning, "block 1 (type 1) is damaged (unknown record kind); skipped"));
        assert_int_equal(info.blocks_skipped, 1);
        assert_int_equal(info.blocks, 2);
        assert_int_equal(info.events, 4);
        memscope_history_info(h, &hi);
        assert_int_equal(hi.events, 4);
        memscope_history_close(h);
        h = NULL;
        assert_int_equal(memscope_trace_open(path, MEMSCOPE_TRACE_STRICT, &h, &info, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "unknown record kind"));
    }
    ZSTD_freeCCtx(cctx);
}

/* A block that went missing between two of its thread's blocks is reported; the rest is read. */
static void test_trace_missing_block(void **state)
{
    struct memscope_record recs[4];
    struct memscope_trace_header fh;
    struct memscope_trace_info info;
    struct memscope_history *h = NULL;
    struct memscope_history_info hi;
    struct memscope_error err;
    uint8_t raw[512];
    FILE *f = fopen(path, "wb");

    for (int i = 0; i < 4; i++) {
        recs[i].time = 10 + (uint64_t)i;
        recs[i].address = 0x100 + (uint64_t)i * 16;
        recs[i].size = 8;
        recs[i].stack = 0;
        recs[i].info = MEMSCOPE_RECORD_INFO(MEMSCOPE_REC_ALLOC, 3);
    }
    ms_trace_header_init(&fh, 0, 7, 0, 0, 2);
    fwrite(&fh, sizeof(fh), 1, f);
    struct memscope_trace_events eh = {.thread = 3, .tid = 33, .first_index = 0, .first_time = 0};
    put_raw_block(f, MEMSCOPE_TRACE_EVENTS, 0, raw, ms_trace_encode_events(&eh, recs, 2, raw));
    eh.first_index = 4; /* records 2..3 (block 1) never arrived */
    eh.first_time = 11;
    put_raw_block(f, MEMSCOPE_TRACE_EVENTS, 2, raw, ms_trace_encode_events(&eh, recs + 2, 2, raw));
    fclose(f);
    assert_int_equal(memscope_trace_open(path, 0, &h, &info, &err), 0);
    assert_non_null(strstr(info.warning, "expected 1"));
    memscope_history_info(h, &hi);
    assert_int_equal(hi.events, 4);
    memscope_history_close(h);
    assert_int_equal(memscope_trace_open(path, MEMSCOPE_TRACE_STRICT, &h, &info, &err), -EBADMSG);
    assert_non_null(strstr(err.message, "sequence"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_crc32c_known_value),
        cmocka_unit_test(test_trace_codec_roundtrip),
        cmocka_unit_test(test_trace_codec_varint_lengths),
        cmocka_unit_test_setup_teardown(test_trace_history_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_damaged_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_damaged_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_mutated_payloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_missing_block, setup, teardown),
        cmocka_unit_test(test_trace_check_matches_decode),
        cmocka_unit_test_setup_teardown(test_trace_many_threads_decoded_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_thread_per_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_undecodable_block_skipped, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
