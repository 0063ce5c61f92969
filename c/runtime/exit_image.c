/*
 * exit_image.c - the store copied to a file at exit (MEMSCOPE_EXIT_IMAGE),
 * in the image format of store_abi.h, for `memscope run` to read.
 *
 * Segments: the root, then every chunk (its header and its published
 * records), then every text block (header and used bytes). Lists are walked
 * from heads loaded once, and each header is written as a copy whose count
 * (or used) is the one whose bytes follow, so the image is consistent even if
 * other threads still record while we write. Only the process whose pid was
 * taken at init writes FILE; a forked child writes FILE.PID when
 * MEMSCOPE_EXIT_IMAGE_CHILDREN=1, and nothing otherwise. Beside the image,
 * FILE.modules holds the process's file mappings (a MODULES payload,
 * trace_abi.h) so return addresses can be named. No malloc, no stdio.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime.h"

#define MS_WALK_SLACK 64u

static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* One segment: [address, address + head_len + body_len) written from two pieces. */
static int write_segment(int fd, uint64_t address, const void *head, size_t head_len, const void *body,
                         size_t body_len)
{
    static const char zeros[8];
    struct memscope_image_segment seg = {address, head_len + body_len};
    size_t pad = (8 - (seg.length & 7)) & 7;
    struct iovec iov[4] = {
        {&seg, sizeof(seg)}, {(void *)head, head_len}, {(void *)body, body_len}, {(void *)zeros, pad}};
    return write_all(fd, iov, 4);
}

int ms_exit_image_write(const char *path)
{
    struct memscope_store_root *root = &memscope_store_root;
    struct memscope_store_root copy;
    uint64_t chunks = __atomic_load_n(&root->chunks, __ATOMIC_ACQUIRE);
    uint64_t texts = __atomic_load_n(&root->texts, __ATOMIC_ACQUIRE);
    uint64_t limit = __atomic_load_n(&root->chunk_count, __ATOMIC_ACQUIRE) + MS_WALK_SLACK;
    uint64_t stacks = __atomic_load_n(&root->stacks, __ATOMIC_ACQUIRE);
    uint64_t nchunks = 0, ntexts = 0, checkpoint;
    int fd, rc;

    ms_fold_hold(); /* the chunk list and the checkpoint hold still while we copy them */
    checkpoint = __atomic_load_n(&root->checkpoint, __ATOMIC_ACQUIRE);

    for (uint64_t c = chunks; c && nchunks < limit; c = ((struct memscope_chunk *)(uintptr_t)c)->next)
        nchunks++;
    for (uint64_t b = texts; b; b = ((struct memscope_text_block *)(uintptr_t)b)->next)
        ntexts++;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        ms_fold_release();
        return -errno;
    }

    struct memscope_image_header hdr;
    memset(&hdr, 0, sizeof(hdr));
    memcpy(hdr.magic, MEMSCOPE_IMAGE_MAGIC, sizeof(hdr.magic));
    hdr.version = MEMSCOPE_IMAGE_VERSION;
    hdr.header_size = sizeof(hdr);
    hdr.root_address = (uint64_t)(uintptr_t)root;
    hdr.segment_count = 1 + nchunks + ntexts + (stacks ? 4 : 0) + (checkpoint ? 1 : 0);
    struct iovec iov = {&hdr, sizeof(hdr)};
    rc = write_all(fd, &iov, 1);

    memcpy(&copy, root, sizeof(copy));
    copy.chunks = chunks;
    copy.chunk_count = nchunks;
    copy.texts = texts;
    copy.checkpoint = checkpoint;
    if (rc == 0)
        rc = write_segment(fd, hdr.root_address, &copy, sizeof(copy), NULL, 0);

    uint64_t c = chunks;
    for (uint64_t i = 0; rc == 0 && i < nchunks; i++) {
        struct memscope_chunk *chunk = (struct memscope_chunk *)(uintptr_t)c;
        struct memscope_chunk h = *chunk;
        h.count = __atomic_load_n(&chunk->count, __ATOMIC_ACQUIRE);
        if (h.count > h.capacity)
            h.count = h.capacity;
        if (i + 1 == nchunks)
            h.next = 0;
        rc = write_segment(fd, c, &h, sizeof(h), chunk + 1, h.count * sizeof(struct memscope_record));
        c = chunk->next;
    }
    for (uint64_t b = texts; rc == 0 && b; b = ((struct memscope_text_block *)(uintptr_t)b)->next) {
        struct memscope_text_block *blk = (struct memscope_text_block *)(uintptr_t)b;
        struct memscope_text_block h = *blk;
        h.used = __atomic_load_n(&blk->used, __ATOMIC_ACQUIRE);
        if (h.used > h.capacity)
            h.used = h.capacity;
        rc = write_segment(fd, b, &h, sizeof(h), blk + 1, h.used);
    }
    if (stacks && rc == 0) {
        /* The stack table in four segments: header, slots, the entries and frames in use. */
        const struct memscope_stack_table *st = (const struct memscope_stack_table *)(uintptr_t)stacks;
        struct memscope_stack_table h = *st;
        h.count = __atomic_load_n(&st->count, __ATOMIC_ACQUIRE);
        h.frames_used = __atomic_load_n(&st->frames_used, __ATOMIC_ACQUIRE);
        if (h.count > h.capacity)
            h.count = h.capacity;
        if (h.frames_used > h.frame_capacity)
            h.frames_used = h.frame_capacity;
        rc = write_segment(fd, stacks, &h, sizeof(h), NULL, 0);
        if (rc == 0)
            rc = write_segment(fd, h.slots, (const void *)(uintptr_t)h.slots, h.slot_count * 8, NULL, 0);
        if (rc == 0)
            rc = write_segment(fd, h.entries, (const void *)(uintptr_t)h.entries,
                               h.count * sizeof(struct memscope_stack_entry), NULL, 0);
        if (rc == 0)
            rc = write_segment(fd, h.frames, (const void *)(uintptr_t)h.frames, h.frames_used * 8, NULL, 0);
    }
    if (checkpoint && rc == 0) {
        const struct memscope_checkpoint *ck = (const struct memscope_checkpoint *)(uintptr_t)checkpoint;
        rc = write_segment(fd, checkpoint, ck, ck->map_size, NULL, 0);
    }
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    ms_fold_release();
    return rc;
}

/* Decimal digits of v appended at out; returns the new end. */
static char *put_decimal(char *out, unsigned long v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n > 0)
        *out++ = tmp[--n];
    return out;
}

/* The process's file mappings (modules.c), for `memscope run` to name return addresses: FILE.modules beside the image. */
static void write_modules(const char *image)
{
    size_t cap = 1u << 20, len = strlen(image), n;
    char path[sizeof(ms_config.exit_image) + 40];
    uint8_t *buf;
    int fd;

    if (len + sizeof(".modules") > sizeof(path))
        return;
    buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        return;
    n = ms_modules_collect(buf, cap);
    memcpy(path, image, len);
    memcpy(path + len, ".modules", sizeof(".modules"));
    fd = n ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    if (fd >= 0) {
        struct iovec iov = {buf, n};
        write_all(fd, &iov, 1);
        close(fd);
    }
    munmap(buf, cap);
}

void ms_exit_image_at_exit(void)
{
    static int written;
    char path[sizeof(ms_config.exit_image) + 24];
    pid_t pid;

    if (!ms_config.exit_image[0] || !ms_store_active())
        return;
    if (__atomic_exchange_n(&written, 1, __ATOMIC_ACQ_REL))
        return; /* once per process (a fork child starts with its own copy of the flag only if unset) */
    pid = (pid_t)syscall(SYS_getpid);
    size_t len = strlen(ms_config.exit_image);
    memcpy(path, ms_config.exit_image, len + 1);
    if (pid != ms_init_pid) {
        if (!ms_config.exit_image_children)
            return;
        path[len] = '.';
        *put_decimal(path + len + 1, (unsigned long)pid) = '\0';
    }
    struct ms_thread *t = &ms_self;
    if (t->chunk && t->depth == 0)
        __atomic_store_n(&t->chunk->count, t->reserved, __ATOMIC_RELEASE);
    ms_store_flush_dropped(t);
    ms_self.guard++;
    if (ms_exit_image_write(path) == 0)
        write_modules(path);
    ms_self.guard--;
}

/*
 * Programs that end with _exit or _Exit skip the destructors (dash ends
 * every `sh -c` that way), so these write the exit image too, then end the
 * process as glibc's _exit does. Calls from inside libc (exit() itself, a
 * spawn child) do not come through here.
 */
__attribute__((visibility("default"), noreturn)) void _exit(int status)
{
    ms_exit_image_at_exit();
    for (;;)
        syscall(SYS_exit_group, status);
}

__attribute__((visibility("default"), noreturn)) void _Exit(int status)
{
    _exit(status);
}
