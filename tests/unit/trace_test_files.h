/*
 * trace_test_files.h - helpers the trace unit tests share (test_trace.c,
 * test_trace_checkpoint.c): a scratch trace file per test, damaging a byte
 * of it, appending a hand-made block, and checking that a history read
 * from a trace writes back as the same bytes. Include after cmocka.h.
 */
#ifndef MS_TRACE_TEST_FILES_H
#define MS_TRACE_TEST_FILES_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "memscope/trace.h"
#include "trace_codec.h"

/* The scratch trace of the running test: set by trace_file_setup, removed by trace_file_teardown. */
static char path[64];

/* `name` tells the test programs' files apart (they may run at once). */
static void trace_file_setup(const char *name)
{
    snprintf(path, sizeof(path), "/tmp/ms_test_%s_%d.trace", name, (int)getpid());
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

/* Flips the bits x in the byte at off of the scratch trace. */
static void poke(long off, uint8_t x)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_true(pread(fd, &b, 1, off) == 1);
    b ^= x;
    assert_true(pwrite(fd, &b, 1, off) == 1);
    close(fd);
}

/* Appends a block built from raw (stored as is, so mutations reach the decoders) to f. */
static __attribute__((unused)) void put_raw_block(FILE *f, uint16_t type, uint64_t seq, const void *raw, size_t len)
{
    static uint8_t out[1 << 16];
    size_t n = ms_trace_block_build(type, seq, raw, len, NULL, 0, out);
    assert_true(n > 0 && n <= sizeof(out));
    assert_int_equal(fwrite(out, 1, n, f), n);
}

/* t, read from the scratch trace, written again: the same bytes (the first 8 KiB, all a test trace holds). */
static void check_rewrites_same_bytes(const struct memscope_history *t)
{
    struct memscope_error err;
    char path2[80];

    snprintf(path2, sizeof(path2), "%s.2", path);
    assert_int_equal(memscope_history_write_trace(t, path2, &err), 0);
    FILE *f1 = fopen(path, "rb"), *f2 = fopen(path2, "rb");
    char b1[8192], b2[8192];
    size_t n1 = fread(b1, 1, sizeof(b1), f1), n2 = fread(b2, 1, sizeof(b2), f2);
    fclose(f1);
    fclose(f2);
    unlink(path2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
}

#endif /* MS_TRACE_TEST_FILES_H */
