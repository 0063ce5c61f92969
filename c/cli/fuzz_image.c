/*
 * fuzz_image.c - the fuzz target of the exit image reader (image.c, what
 * `memscope run` reads after its program exits, ms_report_image): the input
 * is an exit image file (store_abi.h), optionally followed by the payload of
 * the FILE.modules file the runtime writes beside it. The reader opens a
 * path only (it maps the file), so the image is written to an anonymous
 * memory file (memfd_create) and opened through /proc/self/fd: no file on
 * disk is made or read. When the engine accepts the image and the store
 * behind its root, every view `memscope run` prints, and more, is rendered
 * (fuzz_views.c), frames named by a symbolizer over the trailing modules
 * payload that opens no file.
 *
 * The modules trailer. image.c ignores what follows the last segment, so
 * the bytes after it (walking the segment headers as image.c parse() does)
 * are taken as FILE.modules: one input carries both files `memscope run`
 * reads, and tests/fuzz/mkcorpus.py makes the seeds that way.
 *
 * Built with libFuzzer when MEMSCOPE_FUZZ is on (scripts/fuzz-inspect.sh
 * --target image), and with fuzz_regress.c as a plain program that replays
 * the kept corpus in the test suite (image_fuzz_regress). The corpus
 * (tests/fuzz/image/corpus) is made by tests/fuzz/mkcorpus.py.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core.h"
#include "fuzz.h"
#include "memscope/engine.h"
#include "memscope/store_abi.h"
#include "memscope/trace.h"

/* Offset of the first byte after the image's last segment (as image.c walks them), or size when there is none. */
static size_t image_end(const uint8_t *d, size_t size)
{
    struct memscope_image_header hdr;
    size_t off;

    if (size < sizeof(hdr))
        return size;
    memcpy(&hdr, d, sizeof(hdr));
    if (hdr.header_size < sizeof(hdr) || hdr.header_size > size)
        return size;
    off = hdr.header_size;
    for (uint64_t i = 0; i < hdr.segment_count; i++) {
        struct memscope_image_segment sh;
        uint64_t padded;

        if (size - off < sizeof(sh))
            return size;
        memcpy(&sh, d + off, sizeof(sh));
        off += sizeof(sh);
        padded = (sh.length + 7) & ~UINT64_C(7);
        if (sh.length > size - off || padded < sh.length)
            return size;
        off += padded > size - off ? size - off : padded;
    }
    return off;
}

/* Writes all of data to fd; 0 or -1. */
static int write_all(int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n <= 0)
            return -1;
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct memscope_image *img = NULL;
    struct memscope_history *h = NULL;
    struct memscope_modules *set = NULL;
    struct memscope_source src;
    struct memscope_error err;
    struct ms_core *core = NULL;
    struct ms_symbolizer *sym = NULL;
    const struct memscope_module *mods;
    uint64_t root = 0;
    size_t end, nmods = 0;
    char path[64];
    int fd;

    fd = memfd_create("fuzz.image", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (write_all(fd, data, size) != 0 || memscope_image_open(path, &img, &src, &root, &err) != 0)
        goto out;
    if (memscope_history_open(&src, root, &h, &err) != 0)
        goto out;
    /* As `memscope run` names frames (report.c image_symbolizer), but opening no file. */
    end = image_end(data, size);
    if (end < size && memscope_modules_add(&set, data + end, size - end, NULL) == 0) {
        mods = memscope_modules_list(set, &nmods);
        sym = ms_fuzz_symbolizer("fuzz.image", mods, nmods, &core);
    }
    ms_fuzz_views(h, sym ? ms_symbolizer_engine(sym) : NULL);
out:
    ms_symbolizer_free(sym);
    ms_core_close(core);
    memscope_modules_free(set);
    memscope_history_close(h);
    memscope_image_close(img);
    close(fd);
    return 0;
}
