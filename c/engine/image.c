/*
 * image.c - a memory source over an exit image file (store_abi.h): the
 * store copied out of a process at exit, as segments of its memory.
 *
 * The file is mapped read-only; every segment header is checked against the
 * file's size before use, segments are indexed by address (sorted, no
 * overlaps), and a read is served from the segment(s) that hold the whole
 * range, else -EFAULT. A truncated or damaged file gives -EBADMSG naming the
 * segment and the figures.
 *
 * Bounds. The file's size bounds segment_count, but a sparse file is large
 * for free: its holes read as empty segments (address 0, length 0), 16
 * bytes each. Empty segments hold no byte, so they are not indexed (one
 * would also stop a read that crosses from one segment into the next at
 * its address), and at most MS_IMAGE_MAX_EMPTY of them are accepted (the
 * runtime writes at most three: an empty stack table's slots, entries and
 * frames). Every indexed segment thus has a length, a header of real bytes
 * before it: the index grows with those (not with segment_count) and the
 * walk ends within MS_IMAGE_MAX_EMPTY + (bytes written) / 16 steps however
 * large the file claims to be.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define MS_IMAGE_MAGIC UINT64_C(0x6567616d692d736d) /* "ms-image" */
#define MS_IMAGE_MAX_EMPTY 4096u /* empty segments an image may hold (see Bounds above) */

struct image_seg {
    uint64_t addr;  /* address in the recorded process */
    uint64_t len;   /* bytes */
    const uint8_t *data; /* in the mapping */
};

struct memscope_image {
    uint64_t magic;         /* MS_IMAGE_MAGIC while open */
    void *map;              /* the file, mapped */
    size_t map_len;         /* its size */
    struct image_seg *segs; /* by address; the non-empty segments only */
    size_t nsegs;           /* entries in segs */
    size_t cap;             /* entries allocated */
};

static int seg_cmp(const void *a, const void *b, void *ctx)
{
    const struct image_seg *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Reads [addr, addr+len) from the segments; contiguous segments may share a read. */
static int image_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    const struct memscope_image *img = ctx;
    size_t lo = 0, hi, i;
    uint8_t *out = buf;

    if (!img || img->magic != MS_IMAGE_MAGIC)
        return -EINVAL;
    hi = img->nsegs;
    while (lo < hi) { /* last segment starting at or below addr */
        size_t mid = lo + (hi - lo) / 2;
        if (img->segs[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -EFAULT;
    for (i = lo - 1; len > 0; i++) {
        const struct image_seg *s;
        uint64_t off, n;
        if (i >= img->nsegs)
            return -EFAULT;
        s = &img->segs[i];
        if (addr < s->addr || addr - s->addr >= s->len)
            return -EFAULT;
        off = addr - s->addr;
        n = s->len - off < len ? s->len - off : len;
        memcpy(out, s->data + off, n);
        out += n;
        addr += n;
        len -= n;
    }
    return 0;
}

static int parse(struct memscope_image *img, uint64_t *root_addr, struct memscope_error *err)
{
    const uint8_t *base = img->map;
    struct memscope_image_header hdr;
    uint64_t off, i, max_segs, empty = 0;

    if (img->map_len < sizeof(hdr))
        return ms_error_set(err, -EBADMSG, "image: %zu bytes, too short for the %zu-byte header (truncated?)",
                            img->map_len, sizeof(hdr));
    memcpy(&hdr, base, sizeof(hdr));
    if (memcmp(hdr.magic, MEMSCOPE_IMAGE_MAGIC, 16) != 0)
        return ms_error_set(err, -EBADMSG, "not a memscope image (magic does not match)");
    if (hdr.version != MEMSCOPE_IMAGE_VERSION)
        return ms_error_set(err, -EPROTO, "image version %u; this engine knows version %u", hdr.version,
                            MEMSCOPE_IMAGE_VERSION);
    if (hdr.header_size < sizeof(hdr) || hdr.header_size > img->map_len || (hdr.header_size & 7))
        return ms_error_set(err, -EBADMSG, "image: header_size %u is not sane (file %zu bytes)", hdr.header_size,
                            img->map_len);
    max_segs = (img->map_len - hdr.header_size) / sizeof(struct memscope_image_segment);
    if (hdr.segment_count > max_segs)
        return ms_error_set(err, -EBADMSG,
                            "image: %" PRIu64 " segments cannot fit in %zu bytes (truncated?)", hdr.segment_count,
                            img->map_len);
    off = hdr.header_size;
    for (i = 0; i < hdr.segment_count; i++) {
        struct memscope_image_segment sh;
        uint64_t padded, end;
        if (img->map_len - off < sizeof(sh))
            return ms_error_set(err, -EBADMSG, "image: segment %" PRIu64 " header at offset %" PRIu64
                                " lies past the end of the file (truncated?)", i, off);
        memcpy(&sh, base + off, sizeof(sh));
        off += sizeof(sh);
        padded = (sh.length + 7) & ~UINT64_C(7);
        if (sh.length > img->map_len - off || padded < sh.length)
            return ms_error_set(err, -EBADMSG,
                                "image: segment %" PRIu64 " at 0x%" PRIx64 ": %" PRIu64
                                " bytes, only %" PRIu64 " left in the file (truncated?)",
                                i, sh.address, sh.length, (uint64_t)(img->map_len - off));
        if (__builtin_add_overflow(sh.address, sh.length, &end))
            return ms_error_set(err, -EBADMSG, "image: segment %" PRIu64 " at 0x%" PRIx64 ": length %" PRIu64
                                " wraps the address space", i, sh.address, sh.length);
        if (sh.length == 0) {
            if (++empty > MS_IMAGE_MAX_EMPTY)
                return ms_error_set(err, -EBADMSG, "image: more than %u empty segments (segment %" PRIu64
                                    " at offset %" PRIu64 "; a sparse or damaged file?)",
                                    MS_IMAGE_MAX_EMPTY, i, off - sizeof(sh));
            continue;
        }
        if (img->nsegs == img->cap) {
            size_t cap = img->cap ? img->cap * 2 : 16;
            struct image_seg *segs = ms_engine_calloc(cap, sizeof(*segs));
            if (!segs)
                return ms_error_set(err, -ENOMEM, "out of memory indexing the image");
            if (img->nsegs)
                memcpy(segs, img->segs, img->nsegs * sizeof(*segs));
            ms_engine_free(img->segs);
            img->segs = segs;
            img->cap = cap;
        }
        img->segs[img->nsegs].addr = sh.address;
        img->segs[img->nsegs].len = sh.length;
        img->segs[img->nsegs].data = base + off;
        img->nsegs++;
        off += padded > img->map_len - off ? img->map_len - off : padded;
    }
    if (ms_sort(img->segs, img->nsegs, sizeof(*img->segs), seg_cmp, NULL) != 0)
        return ms_error_set(err, -ENOMEM, "out of memory indexing the image");
    for (i = 1; i < img->nsegs; i++)
        if (img->segs[i - 1].addr + img->segs[i - 1].len > img->segs[i].addr)
            return ms_error_set(err, -EBADMSG, "image: segments at 0x%" PRIx64 " and 0x%" PRIx64 " overlap",
                                img->segs[i - 1].addr, img->segs[i].addr);
    *root_addr = hdr.root_address;
    return 0;
}

MS_API int memscope_image_open(const char *path, struct memscope_image **out, struct memscope_source *src,
                               uint64_t *root_addr, struct memscope_error *err)
{
    struct memscope_image *img = NULL;
    struct stat st;
    int fd = -1, rc;
    uint64_t root = 0;

    if (err)
        err->message[0] = '\0';
    if (!path || !out || !src || !root_addr)
        return ms_error_set(err, -EINVAL, "invalid argument: path, out, src and root_addr are required");
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        return ms_error_set(err, rc, "%s: cannot open: %s", path, rc == -ENOENT ? "no such file" : "open failed");
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ms_error_set(err, -EBADMSG, "%s: not a regular file", path);
    }
    img = ms_engine_calloc(1, sizeof(*img));
    if (!img) {
        close(fd);
        return ms_error_set(err, -ENOMEM, "out of memory");
    }
    img->map_len = (size_t)st.st_size;
    if (img->map_len > 0) {
        img->map = mmap(NULL, img->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (img->map == MAP_FAILED) {
            img->map = NULL;
            close(fd);
            ms_engine_free(img);
            return ms_error_set(err, -EIO, "%s: cannot map the file", path);
        }
    }
    close(fd);
    rc = parse(img, &root, err);
    if (rc != 0) {
        char msg[sizeof(err->message)];
        if (err) { /* prefix the file name */
            memcpy(msg, err->message, sizeof(msg));
            ms_error_set(err, rc, "%s: %s", path, msg);
        }
        img->magic = MS_IMAGE_MAGIC;
        memscope_image_close(img);
        return rc;
    }
    img->magic = MS_IMAGE_MAGIC;
    src->read = image_read;
    src->ctx = img;
    *root_addr = root;
    *out = img;
    return 0;
}

MS_API void memscope_image_close(struct memscope_image *image)
{
    if (!image || image->magic != MS_IMAGE_MAGIC)
        return;
    image->magic = 0;
    if (image->map)
        munmap(image->map, image->map_len);
    ms_engine_free(image->segs);
    ms_engine_free(image);
}
