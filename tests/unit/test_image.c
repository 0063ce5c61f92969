/*
 * test_image.c - the exit image memory source: a store written to an image
 * file reads back to the same snapshot; truncated, damaged and foreign files
 * are refused with a message naming the problem.
 */
#include <errno.h>
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

/* Writes every segment of s's fake memory as an image; returns the file size. */
static long write_image(struct fake_store *s, const char *path)
{
    FILE *f = fopen(path, "wb");
    struct memscope_image_header hdr;
    static const uint8_t pad[8];
    int i;
    long size;

    assert_non_null(f);
    memset(&hdr, 0, sizeof(hdr));
    memcpy(hdr.magic, MEMSCOPE_IMAGE_MAGIC, 16);
    hdr.version = MEMSCOPE_IMAGE_VERSION;
    hdr.header_size = sizeof(hdr);
    hdr.root_address = FAKE_ROOT_ADDR;
    hdr.segment_count = (uint64_t)s->mem.nsegs;
    fwrite(&hdr, sizeof(hdr), 1, f);
    for (i = s->mem.nsegs - 1; i >= 0; i--) { /* any order: the engine indexes them */
        struct memscope_image_segment sh = {s->mem.segs[i].addr, s->mem.segs[i].len};
        fwrite(&sh, sizeof(sh), 1, f);
        fwrite(s->mem.segs[i].data, 1, sh.length, f);
        fwrite(pad, 1, (8 - sh.length % 8) % 8, f);
    }
    size = ftell(f);
    fclose(f);
    return size;
}

static struct fake_store *sample(void)
{
    struct fake_store *s = fs_new();

    fs_alloc(s, 1, 10, 0x1000, 100);
    fs_alloc(s, 2, 20, 0x2000, 7);
    fs_label(s, 2, 21, 0x2000, "seven", "char[7]");
    fs_free(s, 1, 30, 0x1000);
    fs_alloc(s, 1, 40, 0x3000, 1000);
    fs_build(s, 2);
    return s;
}

static void tmp_path(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/memscope-test-image-%ld.img", (long)getpid());
}

static void test_image_round_trip(void **state)
{
    struct fake_store *s = sample();
    struct memscope_image *img = NULL;
    struct memscope_source src;
    struct memscope_history *h = NULL;
    struct memscope_snapshot *snap = NULL;
    struct memscope_stats st;
    struct memscope_allocation a;
    struct memscope_error err;
    uint64_t root = 0;
    char path[64];

    tmp_path(path, sizeof(path));
    write_image(s, path);
    assert_int_equal(memscope_image_open(path, &img, &src, &root, &err), 0);
    assert_int_equal(root, FAKE_ROOT_ADDR);
    assert_int_equal(memscope_history_open(&src, root, &h, &err), 0);
    assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
    memscope_history_close(h);
    memscope_image_close(img); /* the snapshot needs neither */
    memscope_snapshot_stats(snap, &st);
    assert_int_equal(st.total_allocations, 3);
    assert_int_equal(st.current_memory, 1007);
    assert_int_equal(st.peak_memory, 1007);
    assert_int_equal(st.threads, 2);
    assert_int_equal(memscope_snapshot_find_block(snap, 0x2003, &a), 0);
    assert_string_equal(a.label_name, "seven");
    memscope_snapshot_free(snap);
    unlink(path);
    fs_delete(s);
}

static void test_image_read_bounds(void **state)
{
    struct fake_store *s = sample();
    struct memscope_image *img = NULL;
    struct memscope_source src;
    struct memscope_error err;
    uint64_t root, word = 0;
    char path[64];

    tmp_path(path, sizeof(path));
    write_image(s, path);
    assert_int_equal(memscope_image_open(path, &img, &src, &root, &err), 0);
    assert_int_equal(src.read(src.ctx, FAKE_ROOT_ADDR, &word, 8), 0);
    assert_memory_equal(&word, MEMSCOPE_STORE_MAGIC, 8);
    assert_int_equal(src.read(src.ctx, FAKE_ROOT_ADDR - 1, &word, 8), -EFAULT);
    assert_int_equal(src.read(src.ctx, FAKE_ROOT_ADDR + sizeof(struct memscope_store_root) - 4, &word, 8), -EFAULT);
    assert_int_equal(src.read(src.ctx, 0, &word, 8), -EFAULT);
    assert_int_equal(src.read(src.ctx, UINT64_MAX - 2, &word, 8), -EFAULT);
    memscope_image_close(img);
    memscope_image_close(NULL);
    unlink(path);
    fs_delete(s);
}

/* Opens path expecting code and a message with needle. */
static void expect_image(const char *path, int code, const char *needle)
{
    struct memscope_image *img = NULL;
    struct memscope_source src;
    struct memscope_error err;
    uint64_t root;

    memset(&err, 0, sizeof(err));
    assert_int_equal(memscope_image_open(path, &img, &src, &root, &err), code);
    assert_null(img);
    if (needle && !strstr(err.message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle);
}

static void test_image_truncated(void **state)
{
    struct fake_store *s = sample();
    char path[64];
    long size;

    tmp_path(path, sizeof(path));
    size = write_image(s, path);
    assert_int_equal(truncate(path, size - 100), 0);
    expect_image(path, -EBADMSG, "truncated");
    assert_int_equal(truncate(path, 20), 0);
    expect_image(path, -EBADMSG, "too short");
    assert_int_equal(truncate(path, 0), 0);
    expect_image(path, -EBADMSG, "too short");
    unlink(path);
    fs_delete(s);
}

static void test_image_bad_header(void **state)
{
    struct fake_store *s = sample();
    struct memscope_image_header hdr;
    char path[64];
    FILE *f;

    tmp_path(path, sizeof(path));
    write_image(s, path);
    f = fopen(path, "r+b");
    assert_int_equal(fread(&hdr, sizeof(hdr), 1, f), 1);
    hdr.magic[0] = 'X';
    rewind(f);
    fwrite(&hdr, sizeof(hdr), 1, f);
    fflush(f);
    expect_image(path, -EBADMSG, "not a memscope image");
    hdr.magic[0] = 'm';
    hdr.version = 9;
    rewind(f);
    fwrite(&hdr, sizeof(hdr), 1, f);
    fflush(f);
    expect_image(path, -EPROTO, "version 9");
    hdr.version = MEMSCOPE_IMAGE_VERSION;
    hdr.segment_count = UINT64_C(1) << 60; /* must not be allocated */
    rewind(f);
    fwrite(&hdr, sizeof(hdr), 1, f);
    fflush(f);
    expect_image(path, -EBADMSG, "segments cannot fit");
    fclose(f);
    expect_image("/nonexistent/memscope.img", -ENOENT, "no such file");
    expect_image("/tmp", -EBADMSG, "not a regular file");
    unlink(path);
    fs_delete(s);
}

static void test_image_overlapping_segments(void **state)
{
    struct fake_store *s = sample();
    char path[64];

    fake_mem_add(&s->mem, FAKE_ROOT_ADDR + 8, 16); /* overlaps the root */
    tmp_path(path, sizeof(path));
    write_image(s, path);
    expect_image(path, -EBADMSG, "overlap");
    unlink(path);
    fs_delete(s);
}

/* Writes an image of n raw segments (address, length, bytes 0..length-1 + seed), in the order given. */
static void write_raw(const char *path, const struct memscope_image_segment *segs, int n, uint64_t count)
{
    FILE *f = fopen(path, "wb");
    struct memscope_image_header hdr;
    static const uint8_t pad[8];

    assert_non_null(f);
    memset(&hdr, 0, sizeof(hdr));
    memcpy(hdr.magic, MEMSCOPE_IMAGE_MAGIC, 16);
    hdr.version = MEMSCOPE_IMAGE_VERSION;
    hdr.header_size = sizeof(hdr);
    hdr.root_address = segs[0].address;
    hdr.segment_count = count;
    fwrite(&hdr, sizeof(hdr), 1, f);
    for (int i = 0; i < n; i++) {
        fwrite(&segs[i], sizeof(segs[i]), 1, f);
        for (uint64_t j = 0; j < segs[i].length; j++)
            fputc((int)(j + (uint64_t)i * 0x40) & 0xff, f);
        fwrite(pad, 1, (8 - segs[i].length % 8) % 8, f);
    }
    fclose(f);
}

/* An empty segment (the runtime writes one for an empty stack table's slots, entries or frames) holds no byte:
 * a read at its address is served by the segment that starts there, and one across two contiguous segments
 * does not stop at it. */
static void test_image_empty_segments(void **state)
{
    /* The empty one last: the index sorts stably, so before the fix it came after B at B's address. */
    static const struct memscope_image_segment segs[] = {{0x10000, 16}, {0x10010, 16}, {0x10010, 0}, {0x20000, 0}};
    struct memscope_image *img = NULL;
    struct memscope_source src;
    struct memscope_error err;
    uint64_t root;
    uint8_t buf[16];
    char path[64];

    tmp_path(path, sizeof(path));
    write_raw(path, segs, 4, 4);
    assert_int_equal(memscope_image_open(path, &img, &src, &root, &err), 0);
    assert_int_equal(src.read(src.ctx, 0x10010, buf, 8), 0);
    assert_int_equal(buf[0], 0x40);
    assert_int_equal(src.read(src.ctx, 0x10008, buf, 16), 0); /* A's last 8 bytes, B's first 8 */
    assert_int_equal(buf[0], 8);
    assert_int_equal(buf[8], 0x40);
    assert_int_equal(src.read(src.ctx, 0x20000, buf, 1), -EFAULT);
    memscope_image_close(img);
    unlink(path);
}

/*
 * A sparse file is large for free, and its holes read as empty segments:
 * a 64 GiB file of one real header claiming every segment that could fit
 * is refused after MS_IMAGE_MAX_EMPTY of them, without an index of
 * segment_count entries (96 GiB) or a walk of 4G headers.
 */
static void test_image_sparse_file(void **state)
{
    static const struct memscope_image_segment segs[] = {{0x10000, 16}};
    const off_t size = (off_t)64 << 30;
    char path[64];

    tmp_path(path, sizeof(path));
    write_raw(path, segs, 1, (uint64_t)(size - (off_t)sizeof(struct memscope_image_header)) / 16);
    if (truncate(path, size) != 0) { /* no sparse files here */
        unlink(path);
        skip();
    }
    expect_image(path, -EBADMSG, "empty segments");
    unlink(path);
}

static void test_image_random_damage(void **state)
{
    struct fake_store *s = sample();
    char path[64];
    long size;
    uint8_t *orig;
    FILE *f;
    unsigned iter;
    uint64_t rng = 0x9e3779b97f4a7c15u;

    /* Random bytes flipped anywhere in the file: open, read the store, replay,
     * render: an error or a result, never a crash (run under ASan/valgrind). */
    tmp_path(path, sizeof(path));
    size = write_image(s, path);
    orig = malloc((size_t)size);
    f = fopen(path, "rb");
    assert_int_equal(fread(orig, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    for (iter = 0; iter < 2000; iter++) {
        uint8_t *buf = malloc((size_t)size);
        struct memscope_image *img = NULL;
        struct memscope_source src;
        struct memscope_error err;
        uint64_t root;
        int i;
        memcpy(buf, orig, (size_t)size);
        for (i = 0; i < 3; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            /* Bias towards the headers, where damage matters most. */
            buf[(rng >> 8) % ((rng & 1) ? 256 : (uint64_t)size)] ^= (uint8_t)(1u << ((rng >> 40) % 8));
        }
        f = fopen(path, "wb");
        fwrite(buf, 1, (size_t)size - ((rng >> 50) % 3 == 0 ? (rng >> 20) % 64 : 0), f);
        fclose(f);
        if (memscope_image_open(path, &img, &src, &root, &err) == 0) {
            struct memscope_history *h = NULL;
            if (memscope_history_open(&src, root, &h, &err) == 0) {
                struct memscope_snapshot *snap = NULL;
                char *out = NULL;
                assert_int_equal(memscope_history_snapshot(h, NULL, &snap), 0);
                assert_int_equal(memscope_snapshot_render_json(snap, NULL, &out, NULL), 0);
                memscope_text_free(out);
                memscope_snapshot_free(snap);
                memscope_history_close(h);
            }
            memscope_image_close(img);
        }
        free(buf);
    }
    free(orig);
    unlink(path);
    fs_delete(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_round_trip),
        cmocka_unit_test(test_image_read_bounds),
        cmocka_unit_test(test_image_truncated),
        cmocka_unit_test(test_image_bad_header),
        cmocka_unit_test(test_image_overlapping_segments),
        cmocka_unit_test(test_image_empty_segments),
        cmocka_unit_test(test_image_sparse_file),
        cmocka_unit_test(test_image_random_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
