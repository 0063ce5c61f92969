/*
 * reader.c - reads a store out of a memory source into a history.
 *
 * Trusts nothing: the root's magic, version and sizes are checked first; the
 * chunk list is walked at most root.chunk_count + MS_CHUNK_SLACK links and a
 * chunk met twice is refused; every chunk's magic, capacity, map size and
 * count are checked, chunks may not overlap, and the memory they claim is
 * probed before anything is allocated for it. Host memory is therefore bounded
 * by what the store claims (root.chunk_bytes), what each chunk claims
 * (map_size) and what is readable. Label and mark texts are read once per
 * entry, checked (length, string count, NULs) and capped by root.text_bytes; a
 * bad one becomes the "<unreadable>" text rather than failing the history.
 * Records are read in pieces of at most MS_READ_PIECE bytes per source call
 * (GDB reads through ctypes: few, large reads are what make it fast); with
 * several threads, each thread's records are read a window at a time straight
 * into the merge (read_merged).
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

#define MS_READ_PIECE (4u << 20)        /* most bytes per source read */
#define MS_CHUNK_SLACK 64u              /* links beyond root.chunk_count (chunks linked while we read) */
#define MS_MAX_CHUNK_MAP (UINT64_C(1) << 32) /* largest chunk a runtime maps (4 GiB): beyond is damage */

/* What the reader keeps of one chunk header. */
struct chunk_desc {
    uint64_t addr;     /* chunk address */
    uint64_t count;    /* records complete */
    uint32_t thread;   /* thread serial */
    uint32_t seq;      /* position in the thread's chain */
    uint32_t tid;      /* OS thread id */
    uint32_t index;    /* position in the list walk (0: newest), for messages */
    uint32_t dense;    /* dense index of its thread in the history */
    uint64_t map_size; /* bytes mapped, header included */
    uint64_t skip;     /* records at its start already folded into the checkpoint (count excludes them) */
};

/* Open-addressing set of addresses (chunk addresses, text addresses -> index). */
struct addr_map {
    uint64_t *keys;  /* 0: empty (address 0 is never a chunk or text) */
    uint32_t *vals;  /* value per key */
    size_t cap;      /* power of two */
    size_t used;     /* keys present */
};

static inline size_t addr_hash(uint64_t a, size_t mask)
{
    return (size_t)((a * UINT64_C(0x9e3779b97f4a7c15)) >> 20) & mask;
}

static int map_grow(struct addr_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64, i;
    uint64_t *nk = ms_engine_calloc(ncap, sizeof(*nk));
    uint32_t *nv = ms_engine_alloc(ncap * sizeof(*nv));

    if (!nk || !nv) {
        ms_engine_free(nk);
        ms_engine_free(nv);
        return -ENOMEM;
    }
    for (i = 0; i < m->cap; i++) {
        if (m->keys[i]) {
            size_t j = addr_hash(m->keys[i], ncap - 1);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
    }
    ms_engine_free(m->keys);
    ms_engine_free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return 0;
}

/* Finds key: returns 1 and *val, or 0 (absent). */
static int map_get(const struct addr_map *m, uint64_t key, uint32_t *val)
{
    size_t j;

    if (!m->cap)
        return 0;
    for (j = addr_hash(key, m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
        if (m->keys[j] == key) {
            *val = m->vals[j];
            return 1;
        }
    }
    return 0;
}

static int map_put(struct addr_map *m, uint64_t key, uint32_t val)
{
    size_t j;

    if ((m->used + 1) * 2 > m->cap && map_grow(m) != 0)
        return -ENOMEM;
    for (j = addr_hash(key, m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1))
        ;
    m->keys[j] = key;
    m->vals[j] = val;
    m->used++;
    return 0;
}

static void map_free(struct addr_map *m)
{
    ms_engine_free(m->keys);
    ms_engine_free(m->vals);
    memset(m, 0, sizeof(*m));
}

static int src_read(const struct memscope_source *src, uint64_t addr, void *buf, size_t len)
{
    uint64_t end;

    if (__builtin_add_overflow(addr, (uint64_t)len, &end))
        return -EFAULT;
    while (len > 0) {
        size_t piece = len < MS_READ_PIECE ? len : MS_READ_PIECE;
        int rc = src->read(src->ctx, addr, buf, piece);
        if (rc != 0)
            return rc < 0 ? rc : -EFAULT;
        addr += piece;
        buf = (char *)buf + piece;
        len -= piece;
    }
    return 0;
}

/* ---- time conversion ---- */

/* ns = ((ticks - origin) * mult + half) >> MS_CLOCK_SHIFT (TSC), or ticks - origin (ns clock). */
#define MS_CLOCK_SHIFT 48
struct clock_conv {
    uint64_t origin; /* root.clock_origin_ticks */
    uint64_t mult;   /* ns per tick in fixed point, MS_CLOCK_SHIFT fraction bits; 0: ticks are ns */
};

static void clock_setup(const struct memscope_store_root *root, struct clock_conv *c)
{
    c->origin = root->clock_origin_ticks;
    c->mult = 0; /* ns clock, and the TSC fallback: 1 tick = 1 ns */
    if (root->flags & MEMSCOPE_STORE_CLOCK_TSC) {
        uint64_t span_ticks = root->clock_calib_ticks - root->clock_origin_ticks;
        uint64_t span_ns = root->clock_calib_ns - root->clock_origin_ns;
        /* Consistent calibration: an even sequence, time moved forward on both
         * clocks, and at least 1 ms between the readings (a shorter span gives
         * a rate too coarse to trust). Otherwise the fallback above: ticks are
         * taken as ns, which keeps the order exact and times approximate. */
        if ((root->clock_calib_seq & 1) == 0 && root->clock_calib_ticks > root->clock_origin_ticks &&
            root->clock_calib_ns > root->clock_origin_ns && span_ns >= 1000000u) {
            unsigned __int128 m = ((unsigned __int128)span_ns << MS_CLOCK_SHIFT) / span_ticks;
            /* Sane rates only: between 1/65536 and 64 ns per tick. */
            if (m >= ((unsigned __int128)1 << (MS_CLOCK_SHIFT - 16)) && m < ((unsigned __int128)1 << (MS_CLOCK_SHIFT + 6)))
                c->mult = (uint64_t)m;
        }
    }
}

static inline uint64_t clock_ns(const struct clock_conv *c, uint64_t t)
{
    if (t <= c->origin)
        return 0; /* before recording began: clamp to zero */
    t -= c->origin;
    if (c->mult == 0)
        return t;
    unsigned __int128 r = ((unsigned __int128)t * c->mult + ((unsigned __int128)1 << (MS_CLOCK_SHIFT - 1))) >> MS_CLOCK_SHIFT;
    return r > UINT64_MAX ? UINT64_MAX : (uint64_t)r;
}

/* ---- the reader ---- */

static int desc_addr_cmp(const void *a, const void *b, void *ctx)
{
    const struct chunk_desc *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int desc_cmp(const void *a, const void *b, void *ctx)
{
    const struct chunk_desc *x = a, *y = b;

    if (x->thread != y->thread)
        return x->thread < y->thread ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return 0;
}

/* Reads and checks the root. */
static int read_root(const struct memscope_source *src, uint64_t root_addr, struct memscope_store_root *root,
                     struct memscope_error *err)
{
    int rc;

    memset(root, 0, sizeof(*root));
    rc = src_read(src, root_addr, root, 32);
    if (rc != 0)
        return ms_error_set(err, -EFAULT, "the store root at 0x%" PRIx64 " cannot be read", root_addr);
    if (memcmp(root->magic, MEMSCOPE_STORE_MAGIC, MEMSCOPE_STORE_MAGIC_SIZE) != 0)
        return ms_error_set(err, -ENOENT, "no memscope store at 0x%" PRIx64 " (magic does not match)", root_addr);
    if (root->abi_version != MEMSCOPE_STORE_ABI_VERSION)
        return ms_error_set(err, -EPROTO,
                            "the store at 0x%" PRIx64 " has ABI version %u; this engine knows version %u",
                            root_addr, root->abi_version, MEMSCOPE_STORE_ABI_VERSION);
    if (root->root_size != sizeof(*root))
        return ms_error_set(err, -EBADMSG, "store root: root_size %u, expected %zu", root->root_size,
                            sizeof(*root));
    if (root->record_size != sizeof(struct memscope_record))
        return ms_error_set(err, -EBADMSG, "store root: record_size %u, expected %zu", root->record_size,
                            sizeof(struct memscope_record));
    if (root->chunk_header_size != sizeof(struct memscope_chunk))
        return ms_error_set(err, -EBADMSG, "store root: chunk_header_size %u, expected %zu",
                            root->chunk_header_size, sizeof(struct memscope_chunk));
    rc = src_read(src, root_addr, root, sizeof(*root));
    if (rc != 0)
        return ms_error_set(err, -EFAULT, "the store root at 0x%" PRIx64 " cannot be read whole", root_addr);
    return 0;
}

/* Walks the chunk list into *descs (grown as needed), checking each header. */
static int walk_chunks(const struct memscope_source *src, const struct memscope_store_root *root,
                       struct chunk_desc **descs, size_t *ndescs, uint64_t *total_records, struct memscope_error *err)
{
    struct addr_map seen = {0};
    struct chunk_desc *d = NULL;
    size_t n = 0, cap = 0;
    uint64_t addr = root->chunks, total_map = 0, max_map = 0, records = 0;
    uint64_t max_links = root->chunk_count + MS_CHUNK_SLACK;
    int rc = 0;

    if (max_links < root->chunk_count)
        max_links = UINT64_MAX;
    while (addr != 0) {
        struct memscope_chunk c;
        uint32_t dummy;
        uint64_t room;

        if (n >= max_links) {
            rc = ms_error_set(err, -EBADMSG, "chunk list: more than %" PRIu64 " links (root.chunk_count %" PRIu64 ")",
                              max_links, root->chunk_count);
            goto out;
        }
        if (map_get(&seen, addr, &dummy)) {
            rc = ms_error_set(err, -EBADMSG, "chunk list: chunk %zu at 0x%" PRIx64 " was already met (a loop)", n,
                              addr);
            goto out;
        }
        if (src_read(src, addr, &c, sizeof(c)) != 0) {
            rc = ms_error_set(err, -EFAULT, "chunk %zu at 0x%" PRIx64 ": header cannot be read", n, addr);
            goto out;
        }
        if (c.magic != MEMSCOPE_CHUNK_MAGIC) {
            rc = ms_error_set(err, -EBADMSG, "chunk %zu at 0x%" PRIx64 ": bad magic 0x%016" PRIx64, n, addr, c.magic);
            goto out;
        }
        if (c.map_size < sizeof(c) + sizeof(struct memscope_record) || c.map_size > MS_MAX_CHUNK_MAP) {
            rc = ms_error_set(err, -EBADMSG, "chunk %zu at 0x%" PRIx64 ": map_size %" PRIu64 " is not sane", n, addr,
                              c.map_size);
            goto out;
        }
        room = (c.map_size - sizeof(c)) / sizeof(struct memscope_record);
        if (c.capacity == 0 || c.capacity > room) {
            rc = ms_error_set(err, -EBADMSG,
                              "chunk %zu at 0x%" PRIx64 ": capacity %" PRIu64 " does not fit map_size %" PRIu64
                              " (room for %" PRIu64 ")",
                              n, addr, c.capacity, c.map_size, room);
            goto out;
        }
        if (c.count > c.capacity) {
            rc = ms_error_set(err, -EBADMSG, "chunk %zu at 0x%" PRIx64 ": count %" PRIu64 " exceeds capacity %" PRIu64,
                              n, addr, c.count, c.capacity);
            goto out;
        }
        if (c.thread == 0 || c.thread > 0xffffffu) {
            rc = ms_error_set(err, -EBADMSG, "chunk %zu at 0x%" PRIx64 ": thread serial %u is out of range", n, addr,
                              c.thread);
            goto out;
        }
        total_map += c.map_size;
        if (c.map_size > max_map)
            max_map = c.map_size;
        /* Chunks beyond root.chunk_count were linked while we read: allow their size. */
        {
            uint64_t extra = n + 1 > root->chunk_count ? (n + 1 - root->chunk_count) : 0;
            if (total_map > root->chunk_bytes + extra * max_map) {
                rc = ms_error_set(err, -EBADMSG,
                                  "chunk %zu at 0x%" PRIx64 ": chunks map %" PRIu64 " bytes, more than root.chunk_bytes %" PRIu64,
                                  n, addr, total_map, root->chunk_bytes);
                goto out;
            }
        }
        /* Probe the last record counted, so nothing is allocated for memory that is not there. */
        if (c.count > 0) {
            struct memscope_record probe;
            uint64_t last = addr + sizeof(c) + (c.count - 1) * sizeof(probe);
            if (src_read(src, last, &probe, sizeof(probe)) != 0) {
                rc = ms_error_set(err, -EFAULT, "chunk %zu at 0x%" PRIx64 ": its %" PRIu64 " records cannot be read", n,
                                  addr, c.count);
                goto out;
            }
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct chunk_desc *nd = ms_engine_realloc(d, ncap * sizeof(*d));
            if (!nd) {
                rc = ms_error_set(err, -ENOMEM, "out of memory reading the chunk list");
                goto out;
            }
            d = nd;
            cap = ncap;
        }
        if (map_put(&seen, addr, (uint32_t)n) != 0) {
            rc = ms_error_set(err, -ENOMEM, "out of memory reading the chunk list");
            goto out;
        }
        d[n].addr = addr;
        d[n].count = c.count;
        d[n].thread = c.thread;
        d[n].seq = c.seq;
        d[n].tid = c.tid;
        d[n].map_size = c.map_size;
        d[n].index = (uint32_t)n;
        d[n].dense = 0;
        d[n].skip = 0;
        records += c.count;
        n++;
        addr = c.next;
    }
out:
    map_free(&seen);
    if (rc != 0) {
        ms_engine_free(d);
        return rc;
    }
    *descs = d;
    *ndescs = n;
    *total_records = records;
    return 0;
}

/* Per kind (2 bits each), what it does to the live block count, plus 1: ALLOC
 * and REALLOC_ALLOC 2, FREE and REALLOC_FREE 0, the others 1. One shift and
 * mask a record, where comparisons cost the reader ~10%. */
#define KIND_DELTA                                                                                                    \
    ((1u << (2 * 0)) | (2u << (2 * MEMSCOPE_REC_ALLOC)) | (0u << (2 * MEMSCOPE_REC_FREE)) |                           \
     (0u << (2 * MEMSCOPE_REC_REALLOC_FREE)) | (2u << (2 * MEMSCOPE_REC_REALLOC_ALLOC)) |                             \
     (1u << (2 * MEMSCOPE_REC_REALLOC_UNDO)) | (1u << (2 * MEMSCOPE_REC_LABEL)) | (1u << (2 * MEMSCOPE_REC_MARK)))

/*
 * Reads records [first, first + count) of one chunk into ev and converts them
 * in place. *last_time is the time of the thread's previous event (0 at its
 * first chunk); *unsorted is set when a time goes backwards; *texts counts
 * labels and marks; *net gains the allocations less the releases.
 */
static int read_chunk_records(const struct memscope_source *src, int direct, const struct chunk_desc *d,
                              uint64_t first, uint64_t count, uint32_t dense, const struct clock_conv *clk,
                              struct ms_event *ev, uint64_t *last_time, int *unsorted, uint64_t *texts, int64_t *net,
                              struct memscope_error *err)
{
    uint64_t i, last = *last_time, ntexts = 0, ones = 0;
    uint64_t at;
    const struct ms_event *in = ev;
    int down = 0, rc;

    _Static_assert(sizeof(struct ms_event) == sizeof(struct memscope_record), "host events mirror records");
    first += d->skip;
    at = d->addr + sizeof(struct memscope_chunk) + first * sizeof(*ev);
    if (direct) {
        in = (const struct ms_event *)(uintptr_t)at; /* this process's own store: converted as read, not copied first */
    } else {
        rc = src_read(src, at, ev, count * sizeof(*ev));
        if (rc != 0)
            return ms_error_set(err, -EFAULT, "chunk %u at 0x%" PRIx64 ": records cannot be read", d->index, d->addr);
    }
    for (i = 0; i < count; i++) {
        struct ms_event e = in[i]; /* store layout: time, address, size, stack, info */
        uint32_t info = e.info;
        unsigned kind = MEMSCOPE_RECORD_KIND(info);
        if (MEMSCOPE_RECORD_THREAD(info) != d->thread)
            return ms_error_set(err, -EBADMSG,
                                "chunk %u at 0x%" PRIx64 ": record %" PRIu64 " names thread %u, the chunk thread %u",
                                d->index, d->addr, first + i, MEMSCOPE_RECORD_THREAD(info), d->thread);
        if (kind < MEMSCOPE_REC_ALLOC || kind > MEMSCOPE_REC_MARK)
            return ms_error_set(err, -EBADMSG, "chunk %u at 0x%" PRIx64 ": record %" PRIu64 " has unknown kind %u",
                                d->index, d->addr, first + i, kind);
        e.time = clock_ns(clk, e.time);
        e.info = MS_EV_INFO(kind, dense);
        ev[i] = e;
        down |= e.time < last;
        last = e.time;
        ntexts += kind >= MEMSCOPE_REC_LABEL;
        ones += (KIND_DELTA >> (kind * 2)) & 3; /* the kind's delta + 1 */
    }
    *last_time = last;
    *unsorted |= down;
    *texts += ntexts;
    *net += (int64_t)(ones - count);
    return 0;
}

/*
 * Several threads: their records are read in pieces straight into the merge
 * (ms_merge_stream), each thread through a window of its own, so the events
 * land once, in replay order, and no second array of every event is filled,
 * faulted in and read back (a third of history_open's time at 4 threads).
 * Windows are large enough for few, large source reads (GDB), small enough
 * to stay in cache (smaller still when the records are read in place). A thread whose times go backwards (a signal handler's
 * event) cannot be merged this way: -EAGAIN, and the caller reads it all,
 * sorts and merges.
 */
#define MS_WINDOW_EVENTS 32768u         /* events per thread's window, up to 16 threads */
#define MS_WINDOWS_BYTES (16u << 20)    /* most bytes of all windows together */
#define MS_WINDOW_MIN_EVENTS 2048u      /* fewest events per window */
#define MS_WINDOW_DIRECT_EVENTS 4096u   /* per window when records are read in place: reads cost nothing, cache does */

struct stream_thread {
    size_t chunk;  /* its chunk being read (index in the chunk list) */
    size_t end;    /* one past its last chunk */
    uint64_t off;  /* records of that chunk already read */
    uint64_t last; /* time of its last event read */
    size_t win;    /* where its window starts in stream.win (events) */
    size_t cap;    /* its window's events: stream.cap, or fewer when the thread has fewer */
};

struct stream {
    const struct memscope_source *src;
    int direct;                  /* src is this process's memory, read in place (ms_read_opts.direct) */
    const struct chunk_desc *d;  /* chunks by thread, then seq */
    const struct clock_conv *clk;
    struct memscope_error *err;
    struct stream_thread *th;    /* per dense thread */
    struct ms_event *win;        /* the windows: thread t's at win + th[t].win, th[t].cap events */
    size_t cap;                  /* most events per window */
    uint64_t texts;              /* labels and marks read */
    int64_t net;                 /* allocations less releases read */
    int unsorted;                /* a thread's times went backwards */
};

static int stream_refill(void *ctx, uint32_t t, struct ms_run *run)
{
    struct stream *s = ctx;
    struct stream_thread *st = &s->th[t];
    struct ms_event *w = s->win + st->win;
    uint64_t n;
    int rc;

    while (st->chunk < st->end && st->off == s->d[st->chunk].count) {
        st->chunk++;
        st->off = 0;
    }
    run->p = run->pe = w;
    if (st->chunk == st->end)
        return 0;
    n = s->d[st->chunk].count - st->off;
    if (n > st->cap)
        n = st->cap;
    rc = read_chunk_records(s->src, s->direct, &s->d[st->chunk], st->off, n, t, s->clk, w, &st->last, &s->unsorted, &s->texts,
                            &s->net, s->err);
    if (rc != 0)
        return rc;
    if (s->unsorted)
        return -EAGAIN;
    st->off += n;
    run->pe = w + n;
    return 0;
}

/* Reads and merges the chunks d[0, nd) of nthreads threads (first[t]: thread
 * t's first chunk) into out (total events). Returns 0, -EAGAIN (a thread
 * needs sorting; err untouched) or an error set in err. */
static int read_merged(const struct memscope_source *src, int direct, const struct chunk_desc *d, size_t nd, uint32_t nthreads,
                       const size_t *first, const struct clock_conv *clk, uint64_t total, struct ms_event *out,
                       uint64_t *texts, int64_t *net, struct memscope_error *err)
{
    struct stream s = {src, direct, d, clk, err, NULL, NULL, MS_WINDOW_EVENTS, 0, 0, 0};
    struct ms_run *runs = NULL;
    size_t room = 0;
    uint32_t t;
    int rc = 0, fit;

    if (direct)
        s.cap = MS_WINDOW_DIRECT_EVENTS;
    if ((size_t)nthreads * s.cap * sizeof(*out) > MS_WINDOWS_BYTES)
        s.cap = MS_WINDOWS_BYTES / sizeof(*out) / nthreads;
    if (s.cap < MS_WINDOW_MIN_EVENTS)
        s.cap = MS_WINDOW_MIN_EVENTS;
    s.th = ms_engine_calloc(nthreads, sizeof(*s.th));
    runs = ms_engine_calloc(nthreads, sizeof(*runs));
    if (!s.th || !runs) {
        rc = ms_error_set(err, -ENOMEM, "out of memory merging %u threads", nthreads);
        goto out;
    }
    /* Past MS_WINDOWS_BYTES (more than 256 threads: windows of the least size), a
     * window holds no more than its thread's events: with many threads of few
     * events each (a thread per request), windows of the least size for every
     * thread were most of the memory read (64 KiB a thread, for one event).
     * Below it, windows are all of a size, as a fold that keeps its arrays
     * mapped (ms_engine_big_keep) finds them again. */
    fit = (size_t)nthreads * s.cap * sizeof(*out) > MS_WINDOWS_BYTES;
    for (t = 0; t < nthreads; t++) {
        size_t i, end = t + 1 < nthreads ? first[t + 1] : nd;
        uint64_t events = 0;
        for (i = first[t]; fit && i < end && events < s.cap; i++)
            events += d[i].count;
        s.th[t].chunk = first[t];
        s.th[t].end = end;
        s.th[t].win = room;
        s.th[t].cap = fit && events < s.cap ? (size_t)events : s.cap;
        room += s.th[t].cap;
    }
    s.win = ms_engine_big_alloc((room ? room : 1) * sizeof(*s.win), 0);
    if (!s.win) {
        rc = ms_error_set(err, -ENOMEM, "out of memory merging %u threads", nthreads);
        goto out;
    }
    for (t = 0; t < nthreads && rc == 0; t++)
        rc = stream_refill(&s, t, &runs[t]);
    if (rc == 0)
        rc = ms_merge_stream(runs, nthreads, total, stream_refill, &s, out);
    if (rc == -ENOMEM)
        rc = ms_error_set(err, -ENOMEM, "out of memory merging %u threads", nthreads);
    else if (rc == -EIO)
        rc = ms_error_set(err, -EIO, "the chunks hold fewer records than they count");
    *texts = s.texts;
    *net = s.net;
out:
    ms_engine_big_free(s.win);
    ms_engine_free(runs);
    ms_engine_free(s.th);
    return rc;
}

struct raw_checkpoint {
    struct memscope_checkpoint hdr;           /* the header as read */
    struct memscope_checkpoint_thread *th;    /* thread_count entries */
    struct memscope_checkpoint_block *blocks; /* block_count entries */
    struct memscope_checkpoint_mark *marks;   /* mark_count entries */
};

static uint32_t dense_of(const struct memscope_history *h, uint32_t serial)
{
    uint32_t lo = 0, hi = h->nthreads;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (h->threads[mid].serial < serial)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Appends s (n bytes) to the history's pool; returns its offset or -1. */
static int64_t pool_add(struct memscope_history *h, size_t *cap, const char *s, size_t n)
{
    size_t need = h->pool_len + n;
    if (need > *cap) {
        size_t ncap = *cap ? *cap : 256;
        while (ncap < need)
            ncap *= 2;
        char *np = ms_engine_realloc(h->pool, ncap);
        if (!np)
            return -1;
        h->pool = np;
        *cap = ncap;
    }
    memcpy(h->pool + h->pool_len, s, n);
    h->pool_len += n;
    return (int64_t)(h->pool_len - n);
}

/*
 * Reads the text entry at addr with `strings` strings; returns its index in
 * h->texts, MS_TEXT_UNREADABLE when it cannot be read or is malformed, or -1
 * on out of memory. Entries are shared by address; their total payload is
 * capped by root.text_bytes (entries never add up to more than was mapped).
 */
static int64_t resolve_text(const struct memscope_source *src, struct memscope_history *h, struct addr_map *known,
                            size_t *pool_cap, size_t *texts_cap, uint64_t *text_budget, uint64_t addr,
                            unsigned strings)
{
    struct memscope_text hdr;
    char payload[MEMSCOPE_TEXT_MAX];
    uint32_t idx, nul = 0, i;
    int64_t off;
    struct ms_text t;

    if (addr == 0 || (addr & 7))
        return MS_TEXT_UNREADABLE;
    if (map_get(known, addr, &idx))
        return idx;
    if (src_read(src, addr, &hdr, sizeof(hdr)) != 0 || hdr.bytes == 0 || hdr.bytes > MEMSCOPE_TEXT_MAX ||
        hdr.strings != strings || hdr.bytes > *text_budget || h->pool_len + hdr.bytes > UINT32_MAX ||
        src_read(src, addr + sizeof(hdr), payload, hdr.bytes) != 0)
        return MS_TEXT_UNREADABLE;
    for (i = 0; i < hdr.bytes; i++)
        nul += payload[i] == '\0';
    if (nul != strings || payload[hdr.bytes - 1] != '\0')
        return MS_TEXT_UNREADABLE;
    off = pool_add(h, pool_cap, payload, hdr.bytes);
    if (off < 0)
        return -1;
    *text_budget -= hdr.bytes;
    t.name = (uint32_t)off;
    t.type = strings >= 2 ? (uint32_t)(off + (int64_t)strlen(payload) + 1) : 0;
    t.addr = addr;
    if (h->ntexts == *texts_cap) {
        size_t ncap = *texts_cap * 2;
        struct ms_text *nt = ms_engine_realloc(h->texts, ncap * sizeof(*nt));
        if (!nt)
            return -1;
        h->texts = nt;
        *texts_cap = ncap;
    }
    idx = h->ntexts++;
    h->texts[idx] = t;
    if (map_put(known, addr, idx) != 0)
        return -1;
    return idx;
}

static int resolve_texts(const struct memscope_source *src, const struct memscope_store_root *root,
                         struct memscope_history *h, uint64_t ntexts, const struct raw_checkpoint *ck,
                         struct memscope_error *err)
{
    static const char sentinel[] = "\0<unreadable>";
    struct addr_map known = {0};
    size_t pool_cap = 0, texts_cap = 16;
    uint64_t budget = root->text_bytes, i;
    int rc = 0;

    h->texts = ms_engine_alloc(texts_cap * sizeof(*h->texts));
    if (!h->texts || pool_add(h, &pool_cap, sentinel, sizeof(sentinel)) < 0)
        return ms_error_set(err, -ENOMEM, "out of memory reading labels");
    h->texts[0].name = 1; /* "<unreadable>" */
    h->texts[0].type = 1;
    h->texts[0].addr = 0;
    h->ntexts = 1;
    for (i = 0; i < h->nevents && ntexts > 0; i++) { /* no pass at all without labels or marks */
        struct ms_event *e = &h->events[i];
        unsigned kind = MS_EV_KIND(e->info);
        int64_t t;
        if (kind != MEMSCOPE_REC_LABEL && kind != MEMSCOPE_REC_MARK)
            continue;
        ntexts--;
        if (kind == MEMSCOPE_REC_MARK)
            h->nmarks++;
        t = resolve_text(src, h, &known, &pool_cap, &texts_cap, &budget, e->size,
                         kind == MEMSCOPE_REC_LABEL ? 2 : 1);
        if (t < 0) {
            rc = ms_error_set(err, -ENOMEM, "out of memory reading labels");
            break;
        }
        e->size = (uint64_t)t;
    }
    /* The checkpoint's labels (blocks in the order read, then the stashes). */
    for (i = 0; rc == 0 && ck && i < ck->hdr.block_count && i < h->ck.nblocks; i++) {
        int64_t t;
        if (!ck->blocks[i].label)
            continue;
        t = resolve_text(src, h, &known, &pool_cap, &texts_cap, &budget, ck->blocks[i].label, 2);
        if (t < 0)
            rc = ms_error_set(err, -ENOMEM, "out of memory reading labels");
        else
            h->ck.blocks[i].label = (uint32_t)t + 1;
    }
    for (i = 0; rc == 0 && ck && h->ck.present && i < ck->hdr.thread_count; i++) {
        const struct memscope_checkpoint_thread *ct = &ck->th[i];
        uint32_t dn = dense_of(h, ct->thread);
        int64_t t;
        if (!(ct->flags & MEMSCOPE_CHECKPOINT_STASH) || !ct->stash_label || !h->ck.stash_block[dn].address)
            continue;
        t = resolve_text(src, h, &known, &pool_cap, &texts_cap, &budget, ct->stash_label, 2);
        if (t < 0)
            rc = ms_error_set(err, -ENOMEM, "out of memory reading labels");
        else
            h->ck.stash_block[dn].label = (uint32_t)t + 1;
    }
    for (i = 0; rc == 0 && ck && h->ck.present && i < ck->hdr.mark_count && i < h->ck.nmarks; i++) {
        int64_t t = resolve_text(src, h, &known, &pool_cap, &texts_cap, &budget, ck->marks[i].text, 1);
        if (t < 0)
            rc = ms_error_set(err, -ENOMEM, "out of memory reading marks");
        else
            h->ck.marks[i].text = (uint32_t)t;
    }
    map_free(&known);
    return rc;
}


/* ---- the checkpoint ---- */


static void raw_checkpoint_free(struct raw_checkpoint *ck)
{
    ms_engine_free(ck->th);
    ms_engine_big_free(ck->blocks);
    ms_engine_free(ck->marks);
    memset(ck, 0, sizeof(*ck));
}

static int ck_thread_find(const struct raw_checkpoint *ck, uint32_t serial)
{
    uint64_t lo = 0, hi = ck->hdr.thread_count;

    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (ck->th[mid].thread == serial)
            return (int)mid;
        if (ck->th[mid].thread < serial)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Reads and checks the checkpoint at addr (store_abi.h lists the checks). */
static int read_checkpoint(const struct memscope_source *src, uint64_t addr, struct raw_checkpoint *ck,
                           struct memscope_error *err)
{
    struct memscope_checkpoint *c = &ck->hdr;
    uint64_t i, end, sum = 0;
    int rc;

    memset(ck, 0, sizeof(*ck));
    if (addr == 0)
        return 0;
    if (src_read(src, addr, c, sizeof(*c)) != 0)
        return ms_error_set(err, -EFAULT, "checkpoint at 0x%" PRIx64 ": header cannot be read", addr);
    if (c->magic != MEMSCOPE_CHECKPOINT_MAGIC)
        return ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": bad magic 0x%016" PRIx64, addr, c->magic);
    if (c->header_size != sizeof(*c) || c->thread_size != sizeof(*ck->th) || c->block_size != sizeof(*ck->blocks) ||
        c->mark_size != sizeof(*ck->marks))
        return ms_error_set(err, -EBADMSG,
                            "checkpoint at 0x%" PRIx64 ": entry sizes %u/%u/%u/%u, expected %zu/%zu/%zu/%zu", addr,
                            c->header_size, c->thread_size, c->block_size, c->mark_size, sizeof(*c), sizeof(*ck->th),
                            sizeof(*ck->blocks), sizeof(*ck->marks));
    if (__builtin_add_overflow(addr, c->map_size, &end) || c->map_size < sizeof(*c) || c->map_size > MS_MAX_CHUNK_MAP)
        return ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": map_size %" PRIu64 " is not sane", addr,
                            c->map_size);
    if (c->thread_count > 0xffffffu || c->thread_count * sizeof(*ck->th) > c->map_size ||
        c->threads < addr + sizeof(*c) || c->threads > end ||
        end - c->threads < c->thread_count * sizeof(*ck->th))
        return ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": %" PRIu64 " thread entries at 0x%" PRIx64
                            " do not lie inside its %" PRIu64 " bytes", addr, c->thread_count, c->threads, c->map_size);
    if (c->block_count > c->map_size / sizeof(*ck->blocks) || c->blocks < addr + sizeof(*c) || c->blocks > end ||
        end - c->blocks < c->block_count * sizeof(*ck->blocks))
        return ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": %" PRIu64 " block entries at 0x%" PRIx64
                            " do not lie inside its %" PRIu64 " bytes", addr, c->block_count, c->blocks, c->map_size);
    if (c->mark_count > MEMSCOPE_CHECKPOINT_MAX_MARKS ||
        (c->mark_count && (c->marks < addr + sizeof(*c) || c->marks > end ||
                           end - c->marks < c->mark_count * sizeof(*ck->marks))))
        return ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": %" PRIu64 " mark entries at 0x%" PRIx64
                            " do not lie inside its %" PRIu64 " bytes (at most %u)", addr, c->mark_count, c->marks,
                            c->map_size, MEMSCOPE_CHECKPOINT_MAX_MARKS);
    ck->th = ms_engine_calloc(c->thread_count ? c->thread_count : 1, sizeof(*ck->th));
    ck->blocks = ms_engine_big_alloc((c->block_count ? c->block_count : 1) * sizeof(*ck->blocks), 0);
    ck->marks = ms_engine_calloc(c->mark_count ? c->mark_count : 1, sizeof(*ck->marks));
    if (!ck->th || !ck->blocks || !ck->marks) {
        raw_checkpoint_free(ck);
        return ms_error_set(err, -ENOMEM, "out of memory reading the checkpoint");
    }
    rc = src_read(src, c->threads, ck->th, c->thread_count * sizeof(*ck->th));
    if (rc == 0)
        rc = src_read(src, c->blocks, ck->blocks, c->block_count * sizeof(*ck->blocks));
    if (rc == 0 && c->mark_count)
        rc = src_read(src, c->marks, ck->marks, c->mark_count * sizeof(*ck->marks));
    if (rc != 0) {
        raw_checkpoint_free(ck);
        return ms_error_set(err, -EFAULT, "checkpoint at 0x%" PRIx64 ": its entries cannot be read", addr);
    }
    for (i = 0; i < c->thread_count; i++) {
        const struct memscope_checkpoint_thread *t = &ck->th[i];
        if ((t->thread == 0 && i > 0) || t->thread > 0xffffffu || (i > 0 && t->thread <= ck->th[i - 1].thread)) {
            rc = ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": thread entry %" PRIu64
                              " has serial %u (serials must rise from 1; 0 only first, the exited threads' entry)",
                              addr, i, t->thread);
            goto bad;
        }
        if (t->thread == 0 && (t->merged == 0 || t->merged > 0xffffffu || t->tid || t->folded_seq ||
                               t->folded_records || t->flags || t->current_memory || t->live_blocks ||
                               t->stash_address || t->stash_thread || t->peak_memory > c->peak_memory ||
                               t->released_bytes > t->allocated_bytes)) {
            rc = ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": the exited threads' entry (serial 0, %" PRIu64
                              " threads) is malformed: it needs 1 to 16777215 threads, no cut, flags, tid, live"
                              " blocks or stash, and its figures within the checkpoint's", addr, t->merged);
            goto bad;
        }
        if ((t->flags & MEMSCOPE_CHECKPOINT_STASH) && t->stash_address && t->stash_thread == 0) {
            rc = ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": thread %u's pending realloc names a block"
                              " of thread 0 (the exited threads own no block)", addr, t->thread);
            goto bad;
        }
        if (t->thread != 0 && t->merged != 0) {
            rc = ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": thread %u claims %" PRIu64
                              " merged threads (only the serial-0 entry holds exited threads)", addr, t->thread, t->merged);
            goto bad;
        }
        if (t->live_blocks > c->block_count || t->current_memory > c->current_memory) {
            rc = ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": thread %u claims more than the checkpoint holds",
                              addr, t->thread);
            goto bad;
        }
    }
    for (i = 0; i < c->block_count; i++) {
        const struct memscope_checkpoint_block *b = &ck->blocks[i];
        int k = b->thread ? ck_thread_find(ck, b->thread) : -1; /* the exited threads own no block */
        if (b->address == 0 || k < 0) {
            rc = ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": block %" PRIu64 " (0x%" PRIx64
                              ") has address 0 or an unlisted thread %u", addr, i, b->address, b->thread);
            goto bad;
        }
        sum += b->size;
    }
    if (sum != c->current_memory) {
        rc = ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": its blocks hold %" PRIu64
                          " bytes, current_memory says %" PRIu64, addr, sum, c->current_memory);
        goto bad;
    }
    {
        uint64_t blocks = 0, bytes = 0;
        for (i = 0; i < c->thread_count; i++) {
            blocks += ck->th[i].live_blocks;
            bytes += ck->th[i].current_memory;
        }
        if (blocks != c->block_count || bytes != c->current_memory) {
            rc = ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": the threads hold %" PRIu64 " blocks of %" PRIu64
                              " bytes, the checkpoint %" PRIu64 " of %" PRIu64, addr, blocks, bytes, c->block_count,
                              c->current_memory);
            goto bad;
        }
    }
    if (c->peak_memory < c->current_memory) {
        rc = ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": peak_memory %" PRIu64 " below current_memory %" PRIu64,
                          addr, c->peak_memory, c->current_memory);
        goto bad;
    }
    for (i = 0; i < c->mark_count; i++) {
        const struct memscope_checkpoint_mark *m = &ck->marks[i];
        const struct memscope_checkpoint_mark *p = i > 0 ? &ck->marks[i - 1] : NULL;
        if (m->time > c->horizon || m->events == 0 || m->events > c->folded_events ||
            m->live_bytes > c->peak_memory || (p && (m->time < p->time || m->events <= p->events))) {
            rc = ms_error_set(err, -EBADMSG, "checkpoint at 0x%" PRIx64 ": mark %" PRIu64 " (time %" PRIu64
                              ", event %" PRIu64 ", %" PRIu64 " bytes live) is out of order or past the horizon,"
                              " the folded events or the peak", addr, i, m->time, m->events, m->live_bytes);
            goto bad;
        }
    }
    return 0;
bad:
    raw_checkpoint_free(ck);
    return rc;
}

void ms_checkpoint_free(struct ms_checkpoint *ck)
{
    ms_engine_big_free(ck->blocks);
    ms_engine_free(ck->th);
    ms_engine_free(ck->in);
    ms_engine_free(ck->stash);
    ms_engine_free(ck->gone);
    ms_engine_free(ck->stash_block);
    ms_engine_free(ck->cut_seq);
    ms_engine_free(ck->cut_records);
    ms_engine_free(ck->marks);
    memset(ck, 0, sizeof(*ck));
}


/* Converts the raw checkpoint into h->ck (threads known, texts not yet). */
static int convert_checkpoint(const struct raw_checkpoint *raw, struct memscope_history *h,
                              const struct clock_conv *clk, struct memscope_error *err)
{
    struct ms_checkpoint *ck = &h->ck;
    const struct memscope_checkpoint *c = &raw->hdr;
    size_t nt = h->nthreads ? h->nthreads : 1;
    uint64_t i;

    ck->present = 1;
    ck->horizon_ns = clock_ns(clk, c->horizon);
    ck->folded_events = c->folded_events;
    ck->generation = c->generation;
    ck->st.total_allocations = c->total_allocations;
    ck->st.total_deallocations = c->total_deallocations;
    ck->st.total_allocated = c->total_allocated;
    ck->st.total_deallocated = c->total_deallocated;
    ck->st.current_memory = c->current_memory;
    ck->st.peak_memory = c->peak_memory;
    ck->st.peak_time_ns = c->peak_memory ? clock_ns(clk, c->peak_time) : 0;
    ck->st.unmatched_deallocations = c->unmatched_deallocations;
    ck->st.reallocations = c->reallocations;
    ck->st.overlapping_allocations = c->overlapping_allocations;
    ck->blocks = ms_engine_big_alloc((c->block_count ? c->block_count : 1) * sizeof(*ck->blocks), 0);
    ck->th = ms_engine_calloc(nt, sizeof(*ck->th));
    ck->in = ms_engine_calloc(nt, 1);
    ck->stash = ms_engine_calloc(nt, 1);
    ck->gone = ms_engine_calloc(nt, 1);
    ck->stash_block = ms_engine_calloc(nt, sizeof(*ck->stash_block));
    ck->cut_seq = ms_engine_calloc(nt, sizeof(*ck->cut_seq));
    ck->cut_records = ms_engine_calloc(nt, sizeof(*ck->cut_records));
    ck->marks = ms_engine_calloc(c->mark_count ? c->mark_count : 1, sizeof(*ck->marks));
    if (!ck->blocks || !ck->th || !ck->in || !ck->stash || !ck->gone || !ck->stash_block || !ck->cut_seq || !ck->cut_records ||
        !ck->marks)
        return ms_error_set(err, -ENOMEM, "out of memory reading the checkpoint");
    for (i = 0; i < c->mark_count; i++) {
        ck->marks[i].time_ns = clock_ns(clk, raw->marks[i].time);
        ck->marks[i].events = raw->marks[i].events;
        ck->marks[i].live_bytes = raw->marks[i].live_bytes;
        ck->marks[i].text = MS_TEXT_UNREADABLE; /* resolved with the texts */
    }
    ck->nmarks = c->mark_count;
    ck->marks_dropped = c->marks_dropped;
    for (i = 0; i < c->thread_count; i++) {
        const struct memscope_checkpoint_thread *t = &raw->th[i];
        uint32_t d = dense_of(h, t->thread);
        struct memscope_thread_stats *o = &ck->th[d];
        o->thread = t->thread;
        o->tid = t->tid;
        o->allocations = t->allocations;
        o->deallocations = t->deallocations;
        o->allocated_bytes = t->allocated_bytes;
        o->released_bytes = t->released_bytes;
        o->current_memory = t->current_memory;
        o->live_blocks = t->live_blocks;
        o->peak_memory = t->peak_memory;
        o->peak_time_ns = t->peak_memory ? clock_ns(clk, t->peak_time) : 0;
        ck->in[d] = 1;
        ck->gone[d] = (t->flags & MEMSCOPE_CHECKPOINT_GONE) != 0;
        if (t->thread == 0)
            ck->merged = t->merged;
        ck->cut_seq[d] = t->folded_seq;
        ck->cut_records[d] = t->folded_records;
        if (t->flags & MEMSCOPE_CHECKPOINT_STASH) {
            struct ms_live *b = &ck->stash_block[d];
            ck->stash[d] = 1;
            if (t->stash_address && t->stash_thread && ck_thread_find(raw, t->stash_thread) >= 0) {
                b->address = t->stash_address;
                b->size = t->stash_size;
                b->time = clock_ns(clk, t->stash_time);
                b->thread = dense_of(h, t->stash_thread);
                b->label = 0; /* resolved with the texts */
                b->stack = t->stash_stack;
            }
        }
    }
    for (i = 0; i < c->block_count; i++) {
        const struct memscope_checkpoint_block *r = &raw->blocks[i];
        struct ms_live *b = &ck->blocks[i];
        b->address = r->address;
        b->size = r->size;
        b->time = clock_ns(clk, r->time);
        b->thread = dense_of(h, r->thread);
        b->label = 0;
        b->stack = r->stack;
    }
    ck->nblocks = c->block_count;
    return 0;
}

/* Drops what the checkpoint folded from the chunk list (and, for a fold, what
 * lies past its cuts), compacting d. */
static int apply_cuts(struct chunk_desc *d, size_t *nd, const struct raw_checkpoint *ck,
                      const struct ms_read_opts *opts, uint64_t *total, struct memscope_error *err)
{
    size_t i, k = 0;
    uint64_t records = 0;

    for (i = 0; i < *nd; i++) {
        struct chunk_desc c = d[i];
        int t = ck->th ? ck_thread_find(ck, c.thread) : -1;
        uint64_t end = c.count;
        if (t >= 0) {
            const struct memscope_checkpoint_thread *ct = &ck->th[t];
            if (c.seq < ct->folded_seq)
                continue;
            /* GONE: the thread had exited and its cut covers all its records, so
             * the runtime links no chunk of it past the cut; a later fold may
             * merge its entry and forget the cut, and such a chunk would then be
             * replayed whole. Do not rest the figures on that rule: refuse. */
            if ((ct->flags & MEMSCOPE_CHECKPOINT_GONE) && (c.seq > ct->folded_seq || c.count > ct->folded_records)) {
                return ms_error_set(err, -EBADMSG, "checkpoint: thread %u is gone (its cut at chunk seq %u, record %" PRIu64
                                    ", covers all its records), yet chunk %u at 0x%" PRIx64 " (seq %u, %" PRIu64
                                    " records) lies past that cut",
                                    c.thread, ct->folded_seq, ct->folded_records, c.index, c.addr, c.seq, c.count);
            }
            if (c.seq == ct->folded_seq) {
                if (ct->folded_records > c.count) {
                    return ms_error_set(err, -EBADMSG, "checkpoint: thread %u folded %" PRIu64
                                        " records of chunk seq %u, which holds %" PRIu64,
                                        c.thread, ct->folded_records, c.seq, c.count);
                }
                c.skip = ct->folded_records;
            }
        }
        if (opts && opts->cuts) {
            uint32_t lo = 0, hi = opts->ncuts;
            while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                if (opts->cuts[mid].thread < c.thread)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo == opts->ncuts || opts->cuts[lo].thread != c.thread || c.seq > opts->cuts[lo].seq)
                continue;
            if (c.seq == opts->cuts[lo].seq && opts->cuts[lo].records < end)
                end = opts->cuts[lo].records;
        }
        if (end <= c.skip)
            continue;
        c.count = end - c.skip;
        records += c.count;
        d[k++] = c;
    }
    *nd = k;
    *total = records;
    return 0;
}

int ms_history_read_opts(const struct memscope_source *src, uint64_t root_addr, struct memscope_history *h,
                         const struct ms_read_opts *opts, struct memscope_error *err)
{
    struct memscope_store_root root;
    struct raw_checkpoint ck = {0};
    struct chunk_desc *d = NULL;
    size_t nd = 0, i;
    uint64_t total = 0, *starts = NULL, seq_before;
    size_t *first = NULL;
    int64_t net = 0;
    struct ms_event *a = NULL, *b = NULL;
    struct clock_conv clk;
    uint32_t nthreads = 0;
    uint64_t ntexts = 0;
    int rc, unsorted = 0, direct = opts && opts->direct;

    rc = read_root(src, root_addr, &root, err);
    if (rc != 0)
        return rc;
    seq_before = root.fold_seq;
    if (seq_before & 1)
        return -ESTALE; /* a fold is publishing */
    h->dropped_events = root.events_dropped;
    h->chunk_bytes = root.chunk_bytes;
    h->budget_bytes = root.budget_bytes;
    h->pid = root.pid;
    h->abi_version = root.abi_version;
    clock_setup(&root, &clk);
    if (opts && opts->raw_clock) {
        clk.origin = 0;
        clk.mult = 0;
    }
    rc = read_checkpoint(src, root.checkpoint, &ck, err);
    if (rc != 0)
        goto out;

    rc = walk_chunks(src, &root, &d, &nd, &total, err);
    if (rc != 0)
        goto out;
    /* Chunks may not share memory: what is allocated for records is then
     * bounded by memory that really exists, whatever the counts claim. */
    if (ms_sort(d, nd, sizeof(*d), desc_addr_cmp, NULL) != 0) {
        rc = ms_error_set(err, -ENOMEM, "out of memory ordering chunks");
        goto out;
    }
    for (i = 1; i < nd; i++) {
        if (d[i].addr - d[i - 1].addr < d[i - 1].map_size) {
            rc = ms_error_set(err, -EBADMSG, "chunks %u at 0x%" PRIx64 " and %u at 0x%" PRIx64 " overlap (map_size %" PRIu64 ")",
                              d[i - 1].index, d[i - 1].addr, d[i].index, d[i].addr, d[i - 1].map_size);
            goto out;
        }
    }
    rc = ms_sort(d, nd, sizeof(*d), desc_cmp, NULL);
    if (rc != 0) {
        rc = ms_error_set(err, -ENOMEM, "out of memory ordering chunks");
        goto out;
    }
    for (i = 0; i < nd; i++) {
        if (i > 0 && d[i].thread == d[i - 1].thread && d[i].seq == d[i - 1].seq) {
            rc = ms_error_set(err, -EBADMSG, "chunks %u at 0x%" PRIx64 " and %u at 0x%" PRIx64 " both claim seq %u of thread %u",
                              d[i - 1].index, d[i - 1].addr, d[i].index, d[i].addr, d[i].seq, d[i].thread);
            goto out;
        }
    }
    rc = apply_cuts(d, &nd, &ck, opts, &total, err);
    if (rc != 0)
        goto out;
    /* Threads: those with records left, and those of the checkpoint, by serial. */
    {
        size_t j = 0;
        uint64_t cn = ck.hdr.thread_count;
        for (i = 0; i < nd; i++)
            if (i == 0 || d[i].thread != d[i - 1].thread)
                nthreads++;
        nthreads += (uint32_t)cn;
        h->threads = ms_engine_calloc(nthreads ? nthreads : 1, sizeof(*h->threads));
        if (!h->threads) {
            rc = ms_error_set(err, -ENOMEM, "out of memory for %u threads", nthreads);
            goto out;
        }
        nthreads = 0;
        i = 0;
        while (i < nd || j < cn) {
            uint32_t serial, tid;
            if (j < cn && (i >= nd || ck.th[j].thread <= d[i].thread)) {
                serial = ck.th[j].thread;
                tid = ck.th[j].tid;
                j++;
            } else {
                serial = d[i].thread;
                tid = d[i].tid;
            }
            while (i < nd && d[i].thread == serial)
                i++;
            h->threads[nthreads].serial = serial;
            h->threads[nthreads].tid = tid;
            nthreads++;
        }
        h->nthreads = nthreads;
    }
    /* The events, and with several threads a second array of them to merge
     * from (a lone thread whose times go backwards needs one too, but that is
     * found only as it is read): more than the machine has is refused with a
     * sentence, not left to the OOM killer. */
    {
        uint64_t arrays = nthreads > 1 ? 2 : 1, limit = ms_engine_memory_limit(), mib = 1024 * 1024;
        if (total > limit / sizeof(*a) / arrays) {
            uint64_t per_mib = mib / (sizeof(*a) * arrays); /* events a MiB of arrays holds */
            rc = ms_error_set(err, -ENOMEM,
                              "the history holds %" PRIu64 " events: reading them needs %" PRIu64
                              " MiB, more than this machine's memory (%" PRIu64 " MiB)",
                              total, total / per_mib + 1, limit / mib);
            goto out;
        }
    }
    starts = ms_engine_calloc((size_t)nthreads + 1, sizeof(*starts));
    first = ms_engine_calloc((size_t)nthreads + 1, sizeof(*first));
    if (total > SIZE_MAX / sizeof(*a) / 2)
        a = NULL;
    else
        a = ms_engine_big_alloc(total * sizeof(*a), 0);
    if (!starts || !first || !a) {
        rc = ms_error_set(err, -ENOMEM, "out of memory for %" PRIu64 " events", total);
        goto out;
    }
    {
        uint64_t pos = 0;
        size_t di = 0;
        uint32_t t;
        for (t = 0; t < nthreads; t++) {
            starts[t] = pos;
            first[t] = di;
            while (di < nd && d[di].thread == h->threads[t].serial) {
                d[di].dense = t;
                pos += d[di].count;
                di++;
            }
        }
        starts[nthreads] = pos;
        first[nthreads] = nd;
    }
    if (ck.th) {
        rc = convert_checkpoint(&ck, h, &clk, err);
        if (rc != 0)
            goto out;
    }
    if (nthreads > 1) {
        rc = read_merged(src, direct, d, nd, nthreads, first, &clk, total, a, &ntexts, &net, err);
        if (rc != -EAGAIN)
            goto merged;
        ntexts = 0; /* a thread needs sorting: read it all, sort, merge */
        net = 0;
    }
    {
        uint64_t pos = 0, last = 0;
        for (i = 0; i < nd; i++) {
            if (i > 0 && d[i].thread != d[i - 1].thread)
                last = 0;
            rc = read_chunk_records(src, direct, &d[i], 0, d[i].count, d[i].dense, &clk, a + pos, &last, &unsorted, &ntexts,
                                    &net, err);
            if (rc != 0)
                goto out;
            pos += d[i].count;
        }
    }
    /* Sort each thread's sequence where a signal handler made it non-monotonic
     * (ms_sort_thread_events returns at once on a sorted one). */
    if (nthreads > 1 || unsorted) {
        b = ms_engine_big_alloc(total * sizeof(*b), 0);
        if (!b) {
            rc = ms_error_set(err, -ENOMEM, "out of memory for %" PRIu64 " events", total);
            goto out;
        }
        if (unsorted)
            for (i = 0; i < nthreads; i++)
                ms_sort_thread_events(a + starts[i], starts[i + 1] - starts[i], b + starts[i]);
    }
    if (nthreads > 1) {
        if (ms_merge_threads(a, starts, nthreads, b) != 0) {
            rc = ms_error_set(err, -ENOMEM, "out of memory merging %u threads", nthreads);
            goto out;
        }
        ms_engine_big_free(a);
        a = b;
        b = NULL;
    }
merged:
    if (rc != 0)
        goto out;
    h->events = a;
    h->nevents = total;
    net += (int64_t)h->ck.nblocks;
    h->live_hint = net > 0 ? (uint64_t)net : 0;
    a = NULL;
    rc = resolve_texts(src, &root, h, ntexts, &ck, err);
    /* The stack table last, so it holds every stack the records read above name. */
    if (rc == 0 && ms_stacks_read(src, root.stacks, &h->stacks) != 0) /* stacks.c */
        rc = ms_error_set(err, -ENOMEM, "out of memory reading the stack table");
    if (rc == 0) {
        /* A fold that ran while we read may have reused what we read. */
        uint64_t seq_after;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (src_read(src, root_addr + offsetof(struct memscope_store_root, fold_seq), &seq_after, sizeof(seq_after)) != 0)
            rc = ms_error_set(err, -EFAULT, "the store root at 0x%" PRIx64 " cannot be read", root_addr);
        else if (seq_after != seq_before)
            rc = -ESTALE;
    }
out:
    if (rc != 0 && rc != -ESTALE && rc != -ENOMEM) {
        /* Damage seen while a fold moved things under us is no damage: read again. */
        uint64_t seq_now;
        if (src_read(src, root_addr + offsetof(struct memscope_store_root, fold_seq), &seq_now, sizeof(seq_now)) == 0 &&
            seq_now != seq_before)
            rc = -ESTALE;
    }
    raw_checkpoint_free(&ck);
    ms_engine_big_free(a);
    ms_engine_big_free(b);
    ms_engine_free(starts);
    ms_engine_free(first);
    ms_engine_free(d);
    return rc;
}

int ms_history_read(const struct memscope_source *src, uint64_t root_addr, struct memscope_history *h,
                    struct memscope_error *err)
{
    return ms_history_read_opts(src, root_addr, h, NULL, err);
}
