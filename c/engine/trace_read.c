/*
 * trace_read.c - reads a trace file (trace_abi.h) into a history.
 *
 * The file is mapped read-only and walked block by block: each block header
 * is checked (magic, its CRC, sizes against the file and the format's
 * limits, sequence), its payload's CRC is checked, then the payload is
 * decompressed (zstd, into a scratch buffer bounded by raw_size) and
 * checked. Of an EVENTS block only the header is decompressed and checked
 * (thread, count, its place in its thread's sequence), and the block listed
 * under its thread; TEXTS entries go into a text list; the last STATE block
 * gives the counters and the clock calibration; MODULES blocks the
 * process's mappings (modules.c), kept with the history for front ends; a folded history's
 * CHECKPOINT and CHECKPOINT_BLOCKS become the rebuilt store's checkpoint
 * (trace_checkpoint.c), which the store reader checks and applies. Should a listed block not
 * decode when its records are read, or the read fail otherwise, the file
 * is walked again with every EVENTS payload decompressed and checked as
 * its decoder would (every column parsed, nothing stored), so damage is
 * skipped or reported exactly as it is found; a trace that reads is
 * decompressed once.
 *
 * Then the store those blocks describe is rebuilt as a memory source: a
 * synthetic root and one chunk header per thread (at addresses above any
 * user-space address), and the text entries at their original addresses. A
 * chunk's records are not in memory: a read of them decompresses and
 * decodes the block that holds them into a buffer of its thread's (kept
 * until the next block is read). The reader reads each thread's records in
 * order, a window at a time, straight into its merge, so the records are
 * decoded once, into memory that stays in cache, and the only array of
 * every event is the history's own (fresh memory, the kernel's zeroing of
 * it, is most of what reading a large trace costs). memscope_history_open
 * reads that source like any other store, so every check, the clock
 * conversion, the merge and the text resolution are the reader's own
 * (reader.c); nothing is replayed differently for a trace.
 *
 * Damage: a file that is not a trace, or whose header fails its CRC, or an
 * unknown version, fails the open. A block whose payload fails its CRC or
 * does not decode, or whose records do not continue its thread's sequence,
 * is skipped (counted, the first one described in info.warning), or fails
 * the open with MEMSCOPE_TRACE_STRICT. A block header that fails its CRC
 * ends the walk (what follows cannot be located), as does a file cut short
 * inside a block (the process was killed mid-write): both are reported.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "internal.h"
#include "memscope/trace.h"
#include "trace_checkpoint.h"
#include "trace_codec.h"
#include "trace_read.h"

#define SYN_ROOT UINT64_C(0x4000000000000000)   /* synthetic root address */
#define SYN_STACKS UINT64_C(0x3fff800000000000) /* synthetic stack table */
#define SYN_CHECKPOINT UINT64_C(0x3fffc00000000000) /* synthetic checkpoint */
#define SYN_CHUNKS UINT64_C(0x4000000000100000) /* synthetic chunks from here */
#define TEXT_LIMIT UINT64_C(0x3fff000000000000) /* text addresses must lie below this */
#define MAX_CHUNK_RECORDS (UINT64_C(1) << 25)    /* records per synthetic chunk (1 GiB) */
#define DECODED_LIMIT (UINT64_C(64) << 20)      /* bytes of decoded blocks kept across threads */

/* An EVENTS block that passed its checks: where it is, where its records go. */
struct trace_events_ref {
    const uint8_t *payload; /* as stored, in the file's mapping */
    uint32_t stored_size;   /* payload bytes */
    uint32_t raw_size;      /* bytes once decompressed */
    uint16_t codec;         /* MEMSCOPE_TRACE_CODEC_* */
    uint32_t count;         /* records */
    uint64_t first;         /* index of its first record among its thread's records read */
};

struct trace_thread {
    uint32_t serial;                 /* thread serial */
    uint32_t tid;                    /* OS thread id */
    uint64_t n;                      /* records (in its blocks) */
    struct trace_events_ref *blocks; /* its EVENTS blocks, in the order it wrote them */
    uint64_t nblocks, blocks_cap;    /* blocks listed; room */
    struct memscope_record *decoded; /* the records of blocks[decoded_block] */
    uint64_t decoded_cap;            /* room in decoded (records) */
    uint64_t decoded_block;          /* the block held in decoded; UINT64_MAX: none */
};

struct trace_text {
    uint64_t address;    /* where the entry lay in the recorded process */
    const uint8_t *data; /* struct memscope_text header + payload (in the mapping's decoded copy) */
    uint32_t len;        /* bytes at data */
};

/* A segment of the synthetic memory. */
struct seg {
    uint64_t addr;
    uint64_t len;
    const void *data;            /* the bytes, or NULL: records of thread, decoded when read */
    struct trace_thread *thread; /* whose records (data NULL) */
    uint64_t first;              /* index of the thread's record at addr (data NULL) */
};

struct trace_load {
    struct trace_thread *threads; /* by arrival; looked up by serial */
    uint32_t nthreads;
    uint32_t threads_cap;
    uint32_t *by_serial;          /* open addressing: index + 1 of the thread with a serial, 0 empty */
    uint32_t by_serial_cap;       /* slots, a power of two above twice nthreads (0: none yet) */
    struct trace_text *texts;
    size_t ntexts, texts_cap;
    uint8_t **text_pools; /* decoded TEXTS payloads, kept while the history is read */
    size_t npools, pools_cap;
    struct memscope_trace_state state; /* last STATE */
    int have_state;
    struct seg *segs;
    size_t nsegs;
    struct memscope_chunk *chunk_hdrs;
    struct memscope_store_root root;
    /* Stacks: entries by id (depth 0: not in the trace), frames pooled. */
    struct memscope_stack_entry *stack_entries;
    uint64_t stack_ids, stack_ids_cap; /* highest id seen; room */
    uint64_t nstacks;                  /* stack entries read */
    uint64_t *frames;
    uint64_t nframes, frames_cap;
    struct memscope_trace_stacks stacks_hdr; /* last STACKS header */
    int have_stacks;
    uint8_t *stack_table; /* the synthetic table */
    ZSTD_DCtx *dctx;        /* decompression, reused for every block */
    uint8_t *scratch;       /* a decompressed payload; room for the largest block met */
    size_t scratch_cap;     /* bytes at scratch */
    uint64_t decoded_bytes; /* held in the threads' decoded buffers */
    int careful;            /* EVENTS payloads are decompressed and checked whole in the walk */
    struct ms_trace_ck ck;  /* a folded history's checkpoint (trace_checkpoint.h) */
    struct memscope_modules *modules; /* MODULES blocks (modules.c), handed to the history */
};

static void warn(struct memscope_trace_info *info, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct memscope_trace_info *info, const char *fmt, ...)
{
    va_list ap;

    if (info->warning[0])
        return;
    va_start(ap, fmt);
    vsnprintf(info->warning, sizeof(info->warning), fmt, ap);
    va_end(ap);
}

static uint32_t serial_slot(const struct trace_load *L, uint32_t serial)
{
    uint32_t mask = L->by_serial_cap - 1, j = (serial * 0x9e3779b1u) & mask;

    while (L->by_serial[j] && L->threads[L->by_serial[j] - 1].serial != serial)
        j = (j + 1) & mask;
    return j;
}

/* The thread with a serial, made on first use; NULL for want of memory. A trace may hold a
 * block for each of a million threads: they are found by hash, not by a walk of the list. */
static struct trace_thread *thread_get(struct trace_load *L, uint32_t serial, uint32_t tid)
{
    uint32_t j;

    if (L->by_serial_cap && L->by_serial[j = serial_slot(L, serial)])
        return &L->threads[L->by_serial[j] - 1];
    if ((uint64_t)(L->nthreads + 1) * 2 > L->by_serial_cap) {
        uint32_t ncap = L->by_serial_cap ? L->by_serial_cap * 2 : 64;
        uint32_t *old = L->by_serial, ocap = L->by_serial_cap;
        L->by_serial = ms_engine_calloc(ncap, sizeof(*L->by_serial));
        if (!L->by_serial) {
            L->by_serial = old;
            return NULL;
        }
        L->by_serial_cap = ncap;
        for (uint32_t i = 0; i < ocap; i++)
            if (old[i])
                L->by_serial[serial_slot(L, L->threads[old[i] - 1].serial)] = old[i];
        ms_engine_free(old);
    }
    if (L->nthreads == L->threads_cap) {
        uint32_t ncap = L->threads_cap ? L->threads_cap * 2 : 16;
        struct trace_thread *nt = ms_engine_realloc(L->threads, ncap * sizeof(*nt));
        if (!nt)
            return NULL;
        L->threads = nt;
        L->threads_cap = ncap;
    }
    struct trace_thread *t = &L->threads[L->nthreads++];
    memset(t, 0, sizeof(*t));
    t->serial = serial;
    t->tid = tid;
    t->decoded_block = UINT64_MAX;
    L->by_serial[serial_slot(L, serial)] = L->nthreads;
    return t;
}

/*
 * Checks one EVENTS payload (raw: decompressed, len bytes; unless
 * L->careful, only its header is there and checked) and lists its block
 * under its thread (payload: the block as stored, in the mapping, decoded
 * when its records are read). Returns 0, 1 (skipped: *why says why), 2
 * (kept, but records before it are missing: *why says so) or -ENOMEM.
 */
static int load_events(struct trace_load *L, const uint8_t *raw, size_t len, const struct memscope_trace_block *b,
                       const uint8_t *payload, const char **why)
{
    struct memscope_trace_events hdr;
    struct trace_thread *t;

    if (len < sizeof(hdr)) {
        *why = "events payload shorter than its header";
        return 1;
    }
    memcpy(&hdr, raw, sizeof(hdr));
    /* Each record takes at least 5 bytes (its kind and four one-byte varints). */
    if (hdr.count == 0 || hdr.count > MEMSCOPE_TRACE_MAX_EVENTS || hdr.thread == 0 || hdr.thread > 0xffffffu ||
        (len - sizeof(hdr)) / 5 < hdr.count) {
        *why = "events header out of range";
        return 1;
    }
    t = thread_get(L, hdr.thread, hdr.tid);
    if (!t)
        return -ENOMEM;
    if (t->nblocks == t->blocks_cap) {
        uint64_t ncap = t->blocks_cap ? t->blocks_cap * 2 : 4; /* most threads of a trace with many hold few blocks */
        struct trace_events_ref *nb = ms_engine_realloc(t->blocks, ncap * sizeof(*nb));
        if (!nb)
            return -ENOMEM;
        t->blocks = nb;
        t->blocks_cap = ncap;
    }
    if (hdr.first_index != t->n) {
        *why = hdr.first_index < t->n ? "its records repeat records already read for its thread"
                                      : "records of its thread before it are missing";
        if (hdr.first_index < t->n)
            return 1;
        /* A gap (a block lost before this one): keep going, the history is incomplete. */
    }
    if (L->careful && ms_trace_check_events(raw, len, &hdr, why) != 0)
        return 1;
    t->blocks[t->nblocks++] = (struct trace_events_ref){payload, b->stored_size, b->raw_size, b->codec, hdr.count, t->n};
    t->n += hdr.count;
    return hdr.first_index != t->n - hdr.count ? 2 : 0;
}

/* A block's payload decompressed into the scratch buffer (or as stored); NULL when it does not decompress
 * (*nomem set when for want of memory). */
static const uint8_t *block_raw(struct trace_load *L, uint16_t codec, const uint8_t *payload, uint32_t stored_size,
                                uint32_t raw_size, int *nomem)
{
    *nomem = 0;
    if (codec == MEMSCOPE_TRACE_CODEC_NONE)
        return stored_size == raw_size ? payload : NULL;
    if (codec != MEMSCOPE_TRACE_CODEC_ZSTD)
        return NULL;
    if (raw_size > L->scratch_cap) { /* grown to the largest block met, at most MEMSCOPE_TRACE_MAX_RAW */
        size_t cap = raw_size < (1u << 20) ? (1u << 20) : raw_size;
        ms_engine_free(L->scratch);
        L->scratch_cap = 0;
        L->scratch = ms_engine_alloc(cap);
        if (!L->scratch) {
            *nomem = 1;
            return NULL;
        }
        L->scratch_cap = cap;
    }
    size_t z = ZSTD_decompressDCtx(L->dctx, L->scratch, raw_size, payload, stored_size);
    if (ZSTD_isError(z) || z != raw_size)
        return NULL;
    return L->scratch;
}

/* The first n bytes of a block's payload, decompressed into out (or as stored); NULL when they do not
 * decompress (*nomem set when for want of memory). */
static const uint8_t *block_head(struct trace_load *L, uint16_t codec, const uint8_t *payload, uint32_t stored_size,
                                 uint32_t raw_size, uint8_t *out, size_t n, int *nomem)
{
    ZSTD_outBuffer o = {out, n, 0};
    ZSTD_inBuffer in = {payload, stored_size, 0};

    *nomem = 0;
    if (raw_size < n)
        return NULL;
    if (codec == MEMSCOPE_TRACE_CODEC_NONE)
        return stored_size == raw_size ? payload : NULL;
    if (codec != MEMSCOPE_TRACE_CODEC_ZSTD || ZSTD_isError(ZSTD_DCtx_reset(L->dctx, ZSTD_reset_session_only)))
        return NULL;
    while (o.pos < n) { /* zstd decodes a block (at most 128 KiB) at a time */
        size_t in_before = in.pos, out_before = o.pos, z = ZSTD_decompressStream(L->dctx, &o, &in);
        if (ZSTD_isError(z)) {
            *nomem = ZSTD_getErrorCode(z) == ZSTD_error_memory_allocation;
            return NULL;
        }
        if ((z == 0 && o.pos < n) || (in.pos == in_before && o.pos == out_before))
            return NULL;
    }
    return out;
}

/*
 * Decodes t's block bi into t->decoded (the block held is kept). The
 * threads' decoded buffers together stay under DECODED_LIMIT where they
 * can: past it, the other threads' are let go (their blocks are decoded
 * again when read again). 0, -ENOMEM, or -EFAULT when the block no longer
 * decodes (the walk took it on its header, or the file changed since).
 */
static int thread_decode(struct trace_load *L, struct trace_thread *t, uint64_t bi)
{
    const struct trace_events_ref *ref = &t->blocks[bi];
    struct memscope_trace_events hdr;
    const uint8_t *raw;
    const char *why;
    int nomem;

    if (t->decoded_block == bi)
        return 0;
    t->decoded_block = UINT64_MAX;
    if (ref->count > t->decoded_cap) {
        uint64_t need = (uint64_t)ref->count * sizeof(struct memscope_record);
        L->decoded_bytes -= t->decoded_cap * sizeof(struct memscope_record);
        ms_engine_free(t->decoded);
        t->decoded = NULL;
        t->decoded_cap = 0;
        if (L->decoded_bytes + need > DECODED_LIMIT)
            for (uint32_t i = 0; i < L->nthreads; i++) {
                struct trace_thread *o = &L->threads[i];
                if (!o->decoded)
                    continue;
                L->decoded_bytes -= o->decoded_cap * sizeof(struct memscope_record);
                ms_engine_free(o->decoded);
                o->decoded = NULL;
                o->decoded_cap = 0;
                o->decoded_block = UINT64_MAX;
            }
        t->decoded = ms_engine_alloc(need);
        if (!t->decoded)
            return -ENOMEM;
        t->decoded_cap = ref->count;
        L->decoded_bytes += need;
    }
    raw = block_raw(L, ref->codec, ref->payload, ref->stored_size, ref->raw_size, &nomem);
    if (!raw && nomem)
        return -ENOMEM;
    if (!raw || ms_trace_decode_events(raw, ref->raw_size, &hdr, t->decoded, ref->count, &why) != 0 ||
        hdr.count != ref->count || hdr.thread != t->serial)
        return -EFAULT;
    t->decoded_block = bi;
    return 0;
}

/* Copies len bytes of t's records, from byte off of their sequence, into buf, decoding blocks as needed.
 * 0 or a negative errno. */
static int thread_read(struct trace_load *L, struct trace_thread *t, uint64_t off, uint8_t *buf, size_t len)
{
    const uint64_t rs = sizeof(struct memscope_record);

    while (len > 0) {
        uint64_t rec = off / rs, bi = t->decoded_block;
        if (bi == UINT64_MAX || rec < t->blocks[bi].first || rec - t->blocks[bi].first >= t->blocks[bi].count) {
            /* Usually the next block; else the last block starting at or before rec. */
            if (bi != UINT64_MAX && bi + 1 < t->nblocks && t->blocks[bi + 1].first <= rec &&
                rec - t->blocks[bi + 1].first < t->blocks[bi + 1].count) {
                bi++;
            } else {
                uint64_t lo = 0, hi = t->nblocks;
                while (lo < hi) {
                    uint64_t mid = lo + (hi - lo) / 2;
                    if (t->blocks[mid].first <= rec)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                if (lo == 0 || rec - t->blocks[lo - 1].first >= t->blocks[lo - 1].count)
                    return -EFAULT;
                bi = lo - 1;
            }
            int rc = thread_decode(L, t, bi);
            if (rc != 0)
                return rc;
        }
        const struct trace_events_ref *ref = &t->blocks[bi];
        uint64_t in_block = off - ref->first * rs, avail = (uint64_t)ref->count * rs - in_block;
        size_t n = len < avail ? len : (size_t)avail;
        memcpy(buf, (const uint8_t *)t->decoded + in_block, n);
        buf += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* Takes the TEXTS payload raw (owned from here) into the text list. 0, 1 (bad), -ENOMEM. */
static int load_texts(struct trace_load *L, uint8_t *raw, size_t len, const char **why)
{
    size_t off = 0;

    if (L->npools == L->pools_cap) {
        size_t ncap = L->pools_cap ? L->pools_cap * 2 : 16;
        uint8_t **np = ms_engine_realloc(L->text_pools, ncap * sizeof(*np));
        if (!np)
            return -ENOMEM;
        L->text_pools = np;
        L->pools_cap = ncap;
    }
    L->text_pools[L->npools++] = raw;
    while (off < len) {
        struct memscope_trace_text e;
        if (len - off < sizeof(e)) {
            *why = "a text entry is cut short";
            return 1;
        }
        memcpy(&e, raw + off, sizeof(e));
        if (e.address == 0 || (e.address & 7) || e.address >= TEXT_LIMIT || e.bytes == 0 ||
            e.bytes > MEMSCOPE_TEXT_MAX || (e.strings != 1 && e.strings != 2) ||
            len - off - sizeof(e) < ((e.bytes + 7u) & ~7u)) {
            *why = "a text entry is malformed";
            return 1;
        }
        if (L->ntexts == L->texts_cap) {
            size_t ncap = L->texts_cap ? L->texts_cap * 2 : 64;
            struct trace_text *nt = ms_engine_realloc(L->texts, ncap * sizeof(*nt));
            if (!nt)
                return -ENOMEM;
            L->texts = nt;
            L->texts_cap = ncap;
        }
        /* The trace entry's bytes/strings pair is laid out as struct memscope_text: reuse it in place. */
        L->texts[L->ntexts].address = e.address;
        L->texts[L->ntexts].data = raw + off + offsetof(struct memscope_trace_text, bytes);
        L->texts[L->ntexts].len = (uint32_t)sizeof(struct memscope_text) + e.bytes;
        L->ntexts++;
        off += sizeof(e) + ((e.bytes + 7u) & ~7u);
    }
    return 0;
}

/* Takes the stacks of a STACKS payload. 0, 1 (bad), -ENOMEM. */
static int load_stacks(struct trace_load *L, const uint8_t *raw, size_t len, const char **why)
{
    struct memscope_trace_stacks h;
    size_t off = sizeof(h);

    if (len < sizeof(h)) {
        *why = "stacks payload shorter than its header";
        return 1;
    }
    memcpy(&h, raw, sizeof(h));
    if (h.max_depth < 1 || h.max_depth > MEMSCOPE_STACK_MAX_DEPTH) {
        *why = "stacks header: max_depth out of range";
        return 1;
    }
    for (uint32_t i = 0; i < h.count; i++) {
        struct memscope_trace_stack e;
        if (len - off < sizeof(e)) {
            *why = "a stack entry is cut short";
            return 1;
        }
        memcpy(&e, raw + off, sizeof(e));
        off += sizeof(e);
        /* Ids are handed out densely from 1; a trace names each one it uses, so an id far
         * beyond the stacks read so far is damage (and would size the table). */
        uint64_t id_limit = 16 * (L->nstacks + 1) + 65536;
        if (e.id == 0 || e.id > id_limit || e.depth == 0 || e.depth > h.max_depth || (len - off) / 8 < e.depth) {
            *why = "a stack entry is malformed";
            return 1;
        }
        if (e.id > L->stack_ids_cap) {
            uint64_t ncap = L->stack_ids_cap ? L->stack_ids_cap : 1024;
            while (ncap < e.id)
                ncap *= 2;
            struct memscope_stack_entry *ne = ms_engine_realloc(L->stack_entries, ncap * sizeof(*ne));
            if (!ne)
                return -ENOMEM;
            memset(ne + L->stack_ids_cap, 0, (ncap - L->stack_ids_cap) * sizeof(*ne));
            L->stack_entries = ne;
            L->stack_ids_cap = ncap;
        }
        if (L->nframes + e.depth > L->frames_cap) {
            uint64_t ncap = L->frames_cap ? L->frames_cap * 2 : 4096;
            while (ncap < L->nframes + e.depth)
                ncap *= 2;
            uint64_t *nf = ms_engine_realloc(L->frames, ncap * sizeof(*nf));
            if (!nf)
                return -ENOMEM;
            L->frames = nf;
            L->frames_cap = ncap;
        }
        memcpy(L->frames + L->nframes, raw + off, (size_t)e.depth * 8);
        L->stack_entries[e.id - 1].first = L->nframes;
        L->stack_entries[e.id - 1].depth = e.depth;
        L->stack_entries[e.id - 1].hash = 0;
        L->nframes += e.depth;
        L->nstacks++;
        if (e.id > L->stack_ids)
            L->stack_ids = e.id;
        off += (size_t)e.depth * 8;
    }
    if (off != len) {
        *why = "bytes left over after the stacks";
        return 1;
    }
    L->stacks_hdr = h;
    L->have_stacks = 1;
    return 0;
}

/* Lays out a stack table (store_abi.h) holding the trace's stacks; 0 or -ENOMEM. */
static int build_stack_table(struct trace_load *L, uint64_t *size)
{
    struct memscope_stack_table t;
    uint64_t n = L->stack_ids, ent_off = sizeof(t) + 8, fr_off = ent_off + n * sizeof(struct memscope_stack_entry);

    *size = fr_off + L->nframes * 8;
    L->stack_table = ms_engine_calloc(1, (size_t)*size);
    if (!L->stack_table)
        return -ENOMEM;
    memset(&t, 0, sizeof(t));
    t.magic = MEMSCOPE_STACK_TABLE_MAGIC;
    t.header_size = sizeof(t);
    t.entry_size = sizeof(struct memscope_stack_entry);
    t.map_size = *size;
    t.slots = SYN_STACKS + sizeof(t); /* one empty slot: readers do not look up */
    t.slot_count = 1;
    t.entries = SYN_STACKS + ent_off;
    t.capacity = n;
    t.frames = SYN_STACKS + fr_off;
    t.frame_capacity = L->nframes;
    t.count = n;
    t.frames_used = L->nframes;
    t.truncated = L->stacks_hdr.truncated;
    t.lost = L->stacks_hdr.lost;
    t.method = L->stacks_hdr.method;
    t.max_depth = L->stacks_hdr.max_depth;
    memcpy(L->stack_table, &t, sizeof(t));
    if (n)
        memcpy(L->stack_table + ent_off, L->stack_entries, (size_t)n * sizeof(struct memscope_stack_entry));
    if (L->nframes)
        memcpy(L->stack_table + fr_off, L->frames, (size_t)L->nframes * 8);
    return 0;
}

static int seg_cmp(const void *a, const void *b, void *ctx)
{
    const struct seg *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int text_cmp(const void *a, const void *b, void *ctx)
{
    const struct trace_text *x = a, *y = b;
    return x->address < y->address ? -1 : x->address > y->address;
}

/* The synthetic memory: a read must lie within one segment. */
static int syn_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    struct trace_load *L = ctx;
    size_t lo = 0, hi = L->nsegs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (L->segs[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -EFAULT;
    const struct seg *s = &L->segs[lo - 1];
    if (addr - s->addr > s->len || len > s->len - (addr - s->addr))
        return -EFAULT;
    if (!s->data)
        return thread_read(L, s->thread, s->first * sizeof(struct memscope_record) + (addr - s->addr), buf, len);
    memcpy(buf, (const uint8_t *)s->data + (addr - s->addr), len);
    return 0;
}

/* Lays out the synthetic store and reads it into a history. */
static int build_history(struct trace_load *L, const struct memscope_trace_header *fh, struct memscope_history **out,
                         struct memscope_trace_info *info, struct memscope_error *err)
{
    struct memscope_store_root *r = &L->root;
    uint64_t nchunks = 0, addr = SYN_CHUNKS, head = 0, chunk_bytes = 0, text_bytes = 0;
    size_t nseg = 0, k = 0, i;
    struct memscope_source src;

    for (i = 0; i < L->nthreads; i++)
        nchunks += (L->threads[i].n + MAX_CHUNK_RECORDS - 1) / MAX_CHUNK_RECORDS;
    L->chunk_hdrs = ms_engine_calloc(nchunks ? nchunks : 1, sizeof(*L->chunk_hdrs));
    L->segs = ms_engine_calloc(3 + 2 * nchunks + L->ntexts, sizeof(*L->segs));
    if (!L->chunk_hdrs || !L->segs)
        return ms_error_set(err, -ENOMEM, "out of memory");
    for (i = 0; i < L->nthreads; i++) {
        struct trace_thread *t = &L->threads[i];
        for (uint64_t first = 0, seq = 0; first < t->n; first += MAX_CHUNK_RECORDS, seq++) {
            uint64_t cnt = t->n - first < MAX_CHUNK_RECORDS ? t->n - first : MAX_CHUNK_RECORDS;
            struct memscope_chunk *c = &L->chunk_hdrs[k++];
            c->magic = MEMSCOPE_CHUNK_MAGIC;
            c->next = head;
            c->thread_prev = 0;
            c->capacity = cnt;
            c->count = cnt;
            c->map_size = sizeof(*c) + cnt * sizeof(struct memscope_record);
            c->thread = t->serial;
            c->seq = (uint32_t)seq;
            c->tid = t->tid;
            c->pid = fh->pid;
            L->segs[nseg++] = (struct seg){addr, sizeof(*c), c, NULL, 0};
            L->segs[nseg++] = (struct seg){addr + sizeof(*c), cnt * sizeof(struct memscope_record), NULL, t, first};
            head = addr;
            chunk_bytes += c->map_size;
            addr += (c->map_size + 4095) & ~UINT64_C(4095);
        }
    }
    /* Texts at their own addresses: sorted, duplicates (the same entry written twice) and overlaps dropped. */
    if (ms_sort(L->texts, L->ntexts, sizeof(*L->texts), text_cmp, NULL) != 0)
        return ms_error_set(err, -ENOMEM, "out of memory");
    {
        uint64_t end = 0;
        for (i = 0; i < L->ntexts; i++) {
            if (L->texts[i].address < end) {
                if (nseg == 0 || L->texts[i].address != L->segs[nseg - 1].addr)
                    warn(info, "text entry at 0x%" PRIx64 " overlaps another; dropped", L->texts[i].address);
                continue;
            }
            L->segs[nseg++] = (struct seg){L->texts[i].address, L->texts[i].len, L->texts[i].data, NULL, 0};
            end = L->texts[i].address + L->texts[i].len;
            text_bytes += L->texts[i].len;
        }
    }
    memset(r, 0, sizeof(*r));
    memcpy(r->magic, MEMSCOPE_STORE_MAGIC, MEMSCOPE_STORE_MAGIC_SIZE);
    r->abi_version = MEMSCOPE_STORE_ABI_VERSION;
    r->root_size = sizeof(*r);
    r->record_size = sizeof(struct memscope_record);
    r->chunk_header_size = sizeof(struct memscope_chunk);
    r->flags = (fh->flags & MEMSCOPE_TRACE_CLOCK_TSC) ? MEMSCOPE_STORE_CLOCK_TSC : 0;
    r->pid = fh->pid;
    r->chunks = head;
    r->chunk_count = nchunks;
    r->chunk_bytes = chunk_bytes;
    r->budget_bytes = L->have_state ? L->state.budget_bytes : 0;
    r->events_dropped = L->have_state ? L->state.events_dropped : 0;
    r->text_bytes = text_bytes;
    for (i = 0; i < L->nthreads; i++)
        if (L->threads[i].serial > r->threads_started)
            r->threads_started = L->threads[i].serial;
    if (ms_trace_ck_max_serial(&L->ck) > r->threads_started)
        r->threads_started = ms_trace_ck_max_serial(&L->ck);
    if (L->ck.image) {
        L->segs[nseg++] = (struct seg){.addr = SYN_CHECKPOINT, .len = L->ck.image_size, .data = L->ck.image};
        r->checkpoint = SYN_CHECKPOINT;
    }
    r->clock_origin_ticks = fh->clock_origin_ticks;
    r->clock_origin_ns = fh->clock_origin_ns;
    if (L->have_state) {
        r->clock_calib_ticks = L->state.clock_calib_ticks;
        r->clock_calib_ns = L->state.clock_calib_ns;
    }
    if (L->have_stacks) {
        uint64_t size;
        if (build_stack_table(L, &size) != 0)
            return ms_error_set(err, -ENOMEM, "out of memory");
        L->segs[nseg++] = (struct seg){SYN_STACKS, size, L->stack_table, NULL, 0};
        r->stacks = SYN_STACKS;
    }
    L->segs[nseg++] = (struct seg){SYN_ROOT, sizeof(*r), r, NULL, 0};
    L->nsegs = nseg;
    if (ms_sort(L->segs, nseg, sizeof(*L->segs), seg_cmp, NULL) != 0)
        return ms_error_set(err, -ENOMEM, "out of memory");
    src.read = syn_read;
    src.ctx = L;
    return memscope_history_open(&src, SYN_ROOT, out, err);
}

static void load_free(struct trace_load *L)
{
    for (uint32_t i = 0; i < L->nthreads; i++) {
        ms_engine_free(L->threads[i].blocks);
        ms_engine_free(L->threads[i].decoded);
    }
    ms_engine_free(L->threads);
    ms_engine_free(L->by_serial);
    for (size_t i = 0; i < L->npools; i++)
        ms_engine_free(L->text_pools[i]);
    ms_engine_free(L->text_pools);
    ms_engine_free(L->texts);
    ms_engine_free(L->segs);
    ms_engine_free(L->chunk_hdrs);
    ms_engine_free(L->stack_entries);
    ms_engine_free(L->frames);
    ms_engine_free(L->stack_table);
    ms_engine_free(L->scratch);
    ZSTD_freeDCtx(L->dctx);
    ms_trace_ck_free(&L->ck);
    memscope_modules_free(L->modules);
}

/*
 * Walks the blocks of the mapped trace into L, then reads the store they
 * describe into *out. L->careful: EVENTS payloads are decompressed and
 * checked whole here; else only their header is, and the rest when their
 * records are read (one that does not decode then fails the read).
 */
static int walk(struct trace_load *L, const uint8_t *map, size_t map_len, const struct memscope_trace_header *fh,
                const char *path, int strict, struct memscope_history **out, struct memscope_trace_info *info,
                struct memscope_error *err)
{
    uint64_t seq = 0;
    size_t off;
    int rc = 0;

    L->dctx = ZSTD_createDCtx();
    if (!L->dctx) {
        rc = ms_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    for (off = sizeof(*fh); off < map_len;) {
        struct memscope_trace_block b;
        const uint8_t *payload;
        const uint8_t *raw;
        uint8_t head[sizeof(struct memscope_trace_events)];
        uint8_t *owned = NULL;
        const char *why = NULL;
        size_t padded;
        int r;

        if (map_len - off < sizeof(b)) {
            info->truncated_bytes = map_len - off;
            if (strict) {
                rc = ms_error_set(err, -EBADMSG, "%s: the file ends inside block %" PRIu64 " (truncated)", path, seq);
                goto out;
            }
            warn(info, "the trace ends inside block %" PRIu64 " (at byte %zu): the writer was cut short; read up to there",
                 seq, off);
            break;
        }
        memcpy(&b, map + off, sizeof(b));
        if (b.magic != MEMSCOPE_TRACE_BLOCK_MAGIC ||
            b.header_crc != ms_crc32c(0, &b, offsetof(struct memscope_trace_block, header_crc)) ||
            b.stored_size > MEMSCOPE_TRACE_MAX_RAW || b.raw_size > MEMSCOPE_TRACE_MAX_RAW) {
            if (strict) {
                rc = ms_error_set(err, -EBADMSG, "%s: block %" PRIu64 " at byte %zu: damaged header", path, seq, off);
                goto out;
            }
            info->truncated_bytes = map_len - off;
            warn(info, "block %" PRIu64 " at byte %zu has a damaged header; the %zu bytes from there are ignored", seq,
                 off, map_len - off);
            break;
        }
        padded = ((size_t)b.stored_size + 7) & ~(size_t)7;
        if (map_len - off - sizeof(b) < b.stored_size) {
            info->truncated_bytes = map_len - off;
            if (strict) {
                rc = ms_error_set(err, -EBADMSG, "%s: block %" PRIu64 " at byte %zu is cut short (file truncated)",
                                  path, b.sequence, off);
                goto out;
            }
            warn(info, "the trace ends inside block %" PRIu64 " (at byte %zu): the writer was cut short; read up to there",
                 b.sequence, off);
            break;
        }
        payload = map + off + sizeof(b);
        if (b.sequence != seq) {
            if (strict) {
                rc = ms_error_set(err, -EBADMSG, "%s: block at byte %zu has sequence %" PRIu64 ", expected %" PRIu64,
                                  path, off, b.sequence, seq);
                goto out;
            }
            warn(info, "block at byte %zu has sequence %" PRIu64 ", expected %" PRIu64 " (blocks missing)", off,
                 b.sequence, seq);
        }
        seq = b.sequence + 1;
        off += sizeof(b) + (padded <= map_len - off - sizeof(b) ? padded : b.stored_size);

        if (ms_crc32c(0, payload, b.stored_size) != b.payload_crc) {
            why = "payload checksum mismatch";
            goto skip;
        }
        if (b.codec != MEMSCOPE_TRACE_CODEC_ZSTD &&
            (b.codec != MEMSCOPE_TRACE_CODEC_NONE || b.stored_size != b.raw_size)) {
            why = "unknown codec";
            goto skip;
        }
        if (b.type == MEMSCOPE_TRACE_EVENTS && !L->careful) /* the rest when its records are read */
            raw = block_head(L, b.codec, payload, b.stored_size, b.raw_size, head, sizeof(head), &r);
        else
            raw = block_raw(L, b.codec, payload, b.stored_size, b.raw_size, &r);
        if (!raw && r) {
            rc = ms_error_set(err, -ENOMEM, "out of memory");
            goto out;
        }
        if (!raw) {
            why = "payload does not decompress";
            goto skip;
        }
        switch (b.type) {
        case MEMSCOPE_TRACE_EVENTS:
            r = load_events(L, raw, b.raw_size, &b, payload, &why);
            if (r < 0) {
                rc = ms_error_set(err, -ENOMEM, "out of memory reading %s", path);
                goto out;
            }
            if (r == 1)
                goto skip;
            if (r == 2) {
                if (strict) {
                    rc = ms_error_set(err, -EBADMSG, "%s: block %" PRIu64 ": %s", path, b.sequence, why);
                    goto out;
                }
                warn(info, "block %" PRIu64 ": %s", b.sequence, why);
            }
            break;
        case MEMSCOPE_TRACE_TEXTS:
            owned = ms_engine_alloc(b.raw_size ? b.raw_size : 1);
            if (!owned) {
                rc = ms_error_set(err, -ENOMEM, "out of memory reading %s", path);
                goto out;
            }
            memcpy(owned, raw, b.raw_size);
            r = load_texts(L, owned, b.raw_size, &why);
            if (r < 0) {
                ms_engine_free(owned);
                rc = ms_error_set(err, -ENOMEM, "out of memory reading %s", path);
                goto out;
            }
            if (r == 1)
                goto skip;
            break;
        case MEMSCOPE_TRACE_STACKS:
            r = load_stacks(L, raw, b.raw_size, &why);
            if (r < 0) {
                rc = ms_error_set(err, -ENOMEM, "out of memory reading %s", path);
                goto out;
            }
            if (r == 1)
                goto skip;
            break;
        case MEMSCOPE_TRACE_CHECKPOINT:
        case MEMSCOPE_TRACE_CHECKPOINT_BLOCKS:
            r = b.type == MEMSCOPE_TRACE_CHECKPOINT ? ms_trace_ck_load(&L->ck, raw, b.raw_size, &why)
                                                    : ms_trace_ck_load_blocks(&L->ck, raw, b.raw_size, &why);
            if (r < 0) {
                rc = ms_error_set(err, -ENOMEM, "out of memory reading %s", path);
                goto out;
            }
            if (r == 1)
                goto skip;
            break;
        case MEMSCOPE_TRACE_MODULES: {
            struct memscope_error merr;
            r = ms_modules_append(&L->modules, raw, b.raw_size, &merr); /* settled once, after the walk */
            if (r == -ENOMEM) {
                rc = ms_error_set(err, -ENOMEM, "out of memory reading %s", path);
                goto out;
            }
            if (r != 0) {
                why = "the module list is damaged";
                goto skip;
            }
            break;
        }
        case MEMSCOPE_TRACE_STATE:
            if (b.raw_size != sizeof(L->state)) {
                why = "state payload has the wrong size";
                goto skip;
            }
            memcpy(&L->state, raw, sizeof(L->state));
            L->have_state = 1;
            info->complete = (L->state.flags & MEMSCOPE_TRACE_STATE_FINAL) != 0;
            break;
        default:
            warn(info, "block %" PRIu64 " has unknown type %u; skipped", b.sequence, b.type);
            info->blocks_skipped++;
            continue;
        }
        info->blocks++;
        continue;
    skip:
        if (b.type == MEMSCOPE_TRACE_CHECKPOINT || b.type == MEMSCOPE_TRACE_CHECKPOINT_BLOCKS)
            ms_trace_ck_damaged(&L->ck, b.type, why); /* the checkpoint cannot be read whole */
        if (strict) {
            rc = ms_error_set(err, -EBADMSG, "%s: block %" PRIu64 " (type %u) is damaged: %s", path, b.sequence,
                              b.type, why);
            goto out;
        }
        warn(info, "block %" PRIu64 " (type %u) is damaged (%s); skipped", b.sequence, b.type, why);
        info->blocks_skipped++;
    }
    for (uint32_t i = 0; i < L->nthreads; i++)
        info->events += L->threads[i].n;
    {
        const char *why = NULL;
        int r = ms_trace_ck_image(&L->ck, SYN_CHECKPOINT, &why);
        if (r < 0) {
            rc = ms_error_set(err, -ENOMEM, "out of memory reading %s", path);
            goto out;
        }
        if (r == 1) { /* the events alone still say what happened after the horizon */
            if (strict) {
                rc = ms_error_set(err, -EBADMSG, "%s: the checkpoint of the folded history is unreadable: %s", path,
                                  why);
                goto out;
            }
            info->warning[0] = '\0'; /* this one matters most: what is read is not the whole heap */
            warn(info, "the checkpoint of the folded history is unreadable: %s; the events folded before its "
                 "horizon are missing, figures cover the events after it only", why);
        }
    }
    if (ms_modules_settle(L->modules) != 0) {
        rc = ms_error_set(err, -ENOMEM, "out of memory reading %s", path);
        goto out;
    }
    rc = build_history(L, fh, out, info, err); /* on failure the reader's sentence names the part */
    if (rc == 0 && L->have_state)
        (*out)->chunk_bytes = L->state.chunk_bytes; /* the recorded store's, not the rebuilt one's */
    if (rc == 0) {
        (*out)->modules = L->modules; /* for front ends that name return addresses */
        L->modules = NULL;
    }
out:
    return rc;
}

/* Reads the trace in map[0, map_len) (see memscope_trace_open); path names it in messages. */
static int open_mapped(const uint8_t *map, size_t map_len, const char *path, unsigned flags,
                       struct memscope_history **out, struct memscope_trace_info *info, struct memscope_error *err)
{
    struct memscope_trace_info info0;
    struct trace_load L;
    struct memscope_trace_header fh;
    const int strict = (flags & MEMSCOPE_TRACE_STRICT) != 0;
    int rc;

    memset(&L, 0, sizeof(L));
    info->file_bytes = map_len;
    if (map_len < sizeof(fh))
        return ms_error_set(err, -EBADMSG, "%s is not a memscope trace (%zu bytes, shorter than a trace header)", path,
                            map_len);
    memcpy(&fh, map, sizeof(fh));
    if (memcmp(fh.magic, MEMSCOPE_TRACE_MAGIC, MEMSCOPE_TRACE_MAGIC_SIZE) != 0)
        return ms_error_set(err, -EBADMSG, "%s is not a memscope trace (magic does not match)", path);
    if (fh.header_crc != ms_crc32c(0, &fh, offsetof(struct memscope_trace_header, header_crc)))
        return ms_error_set(err, -EBADMSG, "%s: the trace header is damaged (checksum mismatch)", path);
    info->version = fh.version;
    if (fh.version < MEMSCOPE_TRACE_VERSION_OLDEST || fh.version > MEMSCOPE_TRACE_VERSION)
        return ms_error_set(err, -EPROTO, "%s has trace format version %u; this engine knows versions %u to %u", path,
                            fh.version, MEMSCOPE_TRACE_VERSION_OLDEST, MEMSCOPE_TRACE_VERSION);
    if (fh.header_size != sizeof(fh))
        return ms_error_set(err, -EBADMSG, "%s: trace header_size %u, expected %zu", path, fh.header_size, sizeof(fh));
    info0 = *info;
    rc = walk(&L, map, map_len, &fh, path, strict, out, info, err);
    if (rc != 0 && rc != -ENOMEM) {
        /* Perhaps a block taken on its header does not decode (and the walk went on from there,
         * or the reader refused the records): walk again, checking every payload whole, so that
         * such a block is skipped as damage (or refused with --strict) like any other, and damage
         * is told as it is found. A trace that reads takes one walk. */
        load_free(&L);
        memset(&L, 0, sizeof(L));
        L.careful = 1;
        *info = info0;
        if (err)
            err->message[0] = '\0';
        rc = walk(&L, map, map_len, &fh, path, strict, out, info, err);
    }
    load_free(&L);
    return rc;
}

int ms_trace_open_memory(const void *data, size_t len, const char *name, unsigned flags, struct memscope_history **out,
                         struct memscope_trace_info *info_out, struct memscope_error *err)
{
    struct memscope_trace_info info_local, *info = info_out ? info_out : &info_local;

    memset(info, 0, sizeof(*info));
    if (err)
        err->message[0] = '\0';
    if (!data || !name || !out)
        return ms_error_set(err, -EINVAL, "invalid argument: data, a name and an out pointer are required");
    *out = NULL;
    return open_mapped(data, len, name, flags, out, info, err);
}

MS_API int memscope_trace_open(const char *path, unsigned flags, struct memscope_history **out,
                               struct memscope_trace_info *info_out, struct memscope_error *err)
{
    struct memscope_trace_info info_local, *info = info_out ? info_out : &info_local;
    struct stat st;
    uint8_t *map = NULL;
    size_t map_len = 0;
    int fd = -1, rc = 0;

    memset(info, 0, sizeof(*info));
    if (err)
        err->message[0] = '\0';
    if (!path || !out)
        return ms_error_set(err, -EINVAL, "invalid argument: a path and an out pointer are required");
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        return ms_error_set(err, rc, "cannot open %s: %s", path, strerror(-rc));
    }
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        ms_error_set(err, rc, "cannot read %s: %s", path, strerror(-rc));
        goto out;
    }
    map_len = (size_t)st.st_size;
    if (map_len < sizeof(struct memscope_trace_header)) { /* nothing to map (mmap refuses 0 bytes) */
        info->file_bytes = map_len;
        rc = ms_error_set(err, -EBADMSG, "%s is not a memscope trace (%zu bytes, shorter than a trace header)", path,
                          map_len);
        goto out;
    }
    map = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        map = NULL;
        rc = -errno;
        ms_error_set(err, rc, "cannot map %s: %s", path, strerror(-rc));
        goto out;
    }
    rc = open_mapped(map, map_len, path, flags, out, info, err);
out:
    if (map)
        munmap(map, map_len);
    if (fd >= 0)
        close(fd);
    return rc;
}
