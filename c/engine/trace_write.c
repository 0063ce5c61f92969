/*
 * trace_write.c - memscope_history_write_trace: a history written out as a
 * trace file (trace_abi.h), so what GDB sees in a live process or a core
 * can be replayed later by `memscope report`.
 *
 * Times are already ns since recording began in a history, so the file
 * says so (no TSC flag, origin 0). Each label and mark text gets an entry
 * at a made-up address (its place in a virtual text area), written before
 * the events, and the records name it there. Each thread's events go out in
 * the order it wrote them (a history keeps them so within the merge),
 * MS_WRITE_BLOCK records per EVENTS block. A final STATE block carries the
 * counters. A folded history (one read from a store past its budget)
 * holds only the events after its checkpoint: the checkpoint goes first, as
 * a CHECKPOINT block and its live blocks in CHECKPOINT_BLOCKS blocks, so
 * the trace replays to what the store does (trace_abi.h). The process's
 * mappings, when the history has them (read from a trace, or added by GDB),
 * go out as MODULES blocks so a reader can name return addresses.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "internal.h"
#include "memscope/trace.h"
#include "trace_codec.h"

#define MS_WRITE_BLOCK 65536u
#define TEXT_BASE UINT64_C(0x10000)
#define ZSTD_LEVEL 3

struct writer {
    int fd;
    uint64_t seq;
    uint8_t *block; /* room for one whole block */
    ZSTD_CCtx *cctx;
    const char *path;
};

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int put_block(struct writer *w, uint16_t type, const void *raw, size_t len, struct memscope_error *err)
{
    size_t n = ms_trace_block_build(type, w->seq, raw, len, w->cctx, ZSTD_LEVEL, w->block);
    int rc;

    if (n == 0)
        return ms_error_set(err, -EIO, "compression failed writing %s", w->path);
    rc = write_all(w->fd, w->block, n);
    if (rc != 0)
        return ms_error_set(err, rc, "cannot write %s: %s", w->path, strerror(-rc));
    w->seq++;
    return 0;
}

/* The label text address of a history text index + 1 (0: none). */
static uint64_t label_addr(const struct memscope_history *h, const uint64_t *text_addr, uint32_t label)
{
    return label && label - 1 < h->ntexts ? text_addr[label - 1] : 0;
}

/*
 * The history's checkpoint as CHECKPOINT and CHECKPOINT_BLOCKS blocks (texts
 * at text_addr, already written). raw holds raw_cap bytes; w->block is
 * grown when the CHECKPOINT payload (many threads) needs more.
 */
static int write_checkpoint(struct writer *w, const struct memscope_history *h, const uint64_t *text_addr,
                            uint8_t *raw, size_t raw_cap, struct memscope_error *err)
{
    const struct ms_checkpoint *ck = &h->ck;
    struct memscope_trace_checkpoint c = {0};
    struct memscope_trace_ck_thread *ct;
    struct memscope_trace_ck_mark *cm;
    uint8_t *payload = NULL;
    uint32_t nt = 0, d;
    size_t len;
    uint64_t i;
    int rc;

    for (d = 0; d < h->nthreads; d++)
        nt += ck->in[d];
    c.horizon = ck->horizon_ns;
    c.folded_events = ck->folded_events;
    c.generation = ck->generation;
    c.total_allocations = ck->st.total_allocations;
    c.total_deallocations = ck->st.total_deallocations;
    c.total_allocated = ck->st.total_allocated;
    c.total_deallocated = ck->st.total_deallocated;
    c.current_memory = ck->st.current_memory;
    c.peak_memory = ck->st.peak_memory;
    c.peak_time = ck->st.peak_time_ns;
    c.unmatched_deallocations = ck->st.unmatched_deallocations;
    c.reallocations = ck->st.reallocations;
    c.overlapping_allocations = ck->st.overlapping_allocations;
    c.block_count = ck->nblocks;
    c.marks_dropped = ck->marks_dropped;
    c.thread_count = nt;
    c.mark_count = (uint32_t)ck->nmarks;
    len = sizeof(c) + (size_t)nt * sizeof(*ct) + (size_t)ck->nmarks * sizeof(*cm);
    payload = ms_engine_calloc(1, len);
    if (!payload)
        return ms_error_set(err, -ENOMEM, "out of memory");
    if (len > raw_cap) {
        uint8_t *nb = ms_engine_realloc(w->block, ms_trace_block_bound(len));
        if (!nb) {
            ms_engine_free(payload);
            return ms_error_set(err, -ENOMEM, "out of memory");
        }
        w->block = nb;
    }
    memcpy(payload, &c, sizeof(c));
    ct = (struct memscope_trace_ck_thread *)(payload + sizeof(c));
    cm = (struct memscope_trace_ck_mark *)(ct + nt);
    for (d = 0; d < h->nthreads; d++) {
        const struct memscope_thread_stats *o = &ck->th[d];
        if (!ck->in[d])
            continue;
        ct->thread = h->threads[d].serial;
        ct->tid = h->threads[d].tid;
        ct->merged = h->threads[d].serial == 0 ? (uint32_t)ck->merged : 0; /* the exited threads' entry */
        ct->allocations = o->allocations;
        ct->deallocations = o->deallocations;
        ct->allocated_bytes = o->allocated_bytes;
        ct->released_bytes = o->released_bytes;
        ct->current_memory = o->current_memory;
        ct->live_blocks = o->live_blocks;
        ct->peak_memory = o->peak_memory;
        ct->peak_time = o->peak_time_ns;
        if (ck->stash[d]) {
            const struct ms_live *b = &ck->stash_block[d];
            ct->flags = MEMSCOPE_CHECKPOINT_STASH;
            if (b->address) {
                ct->stash_address = b->address;
                ct->stash_size = b->size;
                ct->stash_time = b->time;
                ct->stash_label = label_addr(h, text_addr, b->label);
                ct->stash_thread = h->threads[b->thread].serial;
                ct->stash_stack = b->stack;
            }
        }
        ct++;
    }
    for (i = 0; i < ck->nmarks; i++) {
        cm[i].time = ck->marks[i].time_ns;
        cm[i].text = ck->marks[i].text < h->ntexts ? text_addr[ck->marks[i].text] : 0;
        cm[i].events = ck->marks[i].events;
        cm[i].live_bytes = ck->marks[i].live_bytes;
    }
    rc = put_block(w, MEMSCOPE_TRACE_CHECKPOINT, payload, len, err);
    ms_engine_free(payload);
    /* The live blocks, in pieces that fit raw. */
    for (i = 0; rc == 0 && i < ck->nblocks;) {
        struct memscope_trace_ck_blocks bh = {0};
        struct memscope_trace_ck_block *tb = (struct memscope_trace_ck_block *)(raw + sizeof(bh));
        uint64_t room = (raw_cap - sizeof(bh)) / sizeof(*tb), n = ck->nblocks - i;
        if (room > MEMSCOPE_TRACE_MAX_CK_BLOCKS)
            room = MEMSCOPE_TRACE_MAX_CK_BLOCKS;
        if (n > room)
            n = room;
        bh.first_block = i;
        bh.count = (uint32_t)n;
        memcpy(raw, &bh, sizeof(bh));
        for (uint64_t k = 0; k < n; k++) {
            const struct ms_live *b = &ck->blocks[i + k];
            tb[k].address = b->address;
            tb[k].size = b->size;
            tb[k].time = b->time;
            tb[k].label = label_addr(h, text_addr, b->label);
            tb[k].thread = h->threads[b->thread].serial;
            tb[k].stack = b->stack;
        }
        rc = put_block(w, MEMSCOPE_TRACE_CHECKPOINT_BLOCKS, raw, sizeof(bh) + n * sizeof(*tb), err);
        i += n;
    }
    return rc;
}

MS_API int memscope_history_write_trace(const struct memscope_history *h, const char *path,
                                        struct memscope_error *err)
{
    struct writer w = {.fd = -1, .path = path};
    struct memscope_trace_header fh;
    uint64_t *text_addr = NULL, *count = NULL, *pos = NULL, *order = NULL, i;
    uint8_t *raw = NULL;
    struct memscope_record *recs = NULL;
    size_t raw_cap = ms_trace_events_bound(MS_WRITE_BLOCK);
    int rc = 0;

    if (err)
        err->message[0] = '\0';
    if (!ms_history_valid(h) || !path)
        return ms_error_set(err, -EINVAL, "invalid argument: an open history and a path are required");

    /* Text entries: their addresses first (texts[0], the unreadable sentinel, stays 0). */
    text_addr = ms_engine_calloc(h->ntexts ? h->ntexts : 1, sizeof(*text_addr));
    count = ms_engine_calloc((size_t)h->nthreads + 1, sizeof(*count));
    pos = ms_engine_calloc((size_t)h->nthreads + 1, sizeof(*pos));
    order = ms_engine_big_alloc((h->nevents ? h->nevents : 1) * sizeof(*order), 0);
    recs = ms_engine_alloc(MS_WRITE_BLOCK * sizeof(*recs));
    w.block = ms_engine_alloc(ms_trace_block_bound(raw_cap));
    w.cctx = ZSTD_createCCtx();
    if (!text_addr || !count || !pos || !order || !recs || !w.block || !w.cctx) {
        rc = ms_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    w.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd < 0) {
        rc = -errno;
        ms_error_set(err, rc, "cannot write %s: %s", path, strerror(-rc));
        goto out;
    }
    ms_trace_header_init(&fh, 0, h->pid, 0, 0, MS_WRITE_BLOCK);
    rc = write_all(w.fd, &fh, sizeof(fh));
    if (rc != 0) {
        ms_error_set(err, rc, "cannot write %s: %s", path, strerror(-rc));
        goto out;
    }

    /* TEXTS blocks of up to ~64 KiB each. */
    raw = ms_engine_alloc(raw_cap);
    if (!raw) {
        rc = ms_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    {
        uint64_t next = TEXT_BASE;
        size_t used = 0;
        for (uint32_t t = 1; t < h->ntexts; t++) {
            const char *name = h->pool + h->texts[t].name;
            size_t nlen = strlen(name) + 1, tlen = 0;
            const char *type = NULL;
            struct memscope_trace_text e;
            /* A label's type string follows its name in the pool; a mark has only the name. */
            if (h->texts[t].type != 0 && h->texts[t].type == h->texts[t].name + nlen) {
                type = h->pool + h->texts[t].type;
                tlen = strlen(type) + 1;
            }
            e.address = next;
            e.bytes = (uint32_t)(nlen + tlen);
            e.strings = type ? 2 : 1;
            if (e.bytes > MEMSCOPE_TEXT_MAX)
                continue; /* cannot happen: the reader capped it; leave it unreadable */
            size_t need = sizeof(e) + ((e.bytes + 7u) & ~7u);
            if (used + need > 65536 && used > 0) {
                rc = put_block(&w, MEMSCOPE_TRACE_TEXTS, raw, used, err);
                if (rc != 0)
                    goto out;
                used = 0;
            }
            memcpy(raw + used, &e, sizeof(e));
            memcpy(raw + used + sizeof(e), name, nlen);
            if (type)
                memcpy(raw + used + sizeof(e) + nlen, type, tlen);
            memset(raw + used + sizeof(e) + e.bytes, 0, ((e.bytes + 7u) & ~7u) - e.bytes);
            used += need;
            text_addr[t] = next;
            next += sizeof(struct memscope_text) + ((e.bytes + 7u) & ~7u);
        }
        if (used > 0) {
            rc = put_block(&w, MEMSCOPE_TRACE_TEXTS, raw, used, err);
            if (rc != 0)
                goto out;
        }
    }

    /* STACKS blocks: every readable stack of the table, up to ~1 MiB of payload per block. */
    if (h->stacks.entries && h->stacks.max_depth >= 1 && h->stacks.max_depth <= MEMSCOPE_STACK_MAX_DEPTH) {
        const struct ms_stacks *st = &h->stacks;
        struct memscope_trace_stacks sh = {0};
        size_t used = sizeof(sh);
        sh.method = st->method;
        sh.max_depth = st->max_depth;
        sh.truncated = st->truncated;
        sh.lost = st->lost;
        for (uint64_t id = 1; id <= st->count; id++) {
            const struct memscope_stack_entry *e = &st->entries[id - 1];
            struct memscope_trace_stack te = {(uint32_t)id, e->depth};
            if (e->depth == 0 || e->depth > st->max_depth)
                continue; /* unreadable: records naming it stay unreadable */
            if (used + sizeof(te) + (size_t)e->depth * 8 > raw_cap) {
                memcpy(raw, &sh, sizeof(sh));
                rc = put_block(&w, MEMSCOPE_TRACE_STACKS, raw, used, err);
                if (rc != 0)
                    goto out;
                used = sizeof(sh);
                sh.count = 0;
            }
            memcpy(raw + used, &te, sizeof(te));
            memcpy(raw + used + sizeof(te), st->frames + e->first, (size_t)e->depth * 8);
            used += sizeof(te) + (size_t)e->depth * 8;
            sh.count++;
        }
        memcpy(raw, &sh, sizeof(sh));
        rc = put_block(&w, MEMSCOPE_TRACE_STACKS, raw, used, err);
        if (rc != 0)
            goto out;
    }

    /* The process's mappings, so a reader can name return addresses (as many blocks as they take). */
    {
        size_t from = 0, len;
        while ((len = ms_modules_payload(h->modules, &from, raw, raw_cap)) > 0) {
            rc = put_block(&w, MEMSCOPE_TRACE_MODULES, raw, len, err);
            if (rc != 0)
                goto out;
        }
    }

    /* A folded history: its checkpoint, before the events after it. */
    if (h->ck.present) {
        rc = write_checkpoint(&w, h, text_addr, raw, raw_cap, err);
        if (rc != 0)
            goto out;
    }

    /* Each thread's events in order: a counting sort of event indexes by thread. */
    for (i = 0; i < h->nevents; i++)
        count[MS_EV_THREAD(h->events[i].info)]++;
    {
        uint64_t acc = 0;
        for (uint32_t t = 0; t < h->nthreads; t++) {
            pos[t] = acc;
            acc += count[t];
        }
    }
    for (i = 0; i < h->nevents; i++)
        order[pos[MS_EV_THREAD(h->events[i].info)]++] = i;
    {
        uint64_t start = 0, written = 0;
        for (uint32_t t = 0; t < h->nthreads; t++) {
            uint64_t prev_time = 0;
            for (uint64_t first = 0; first < count[t]; first += MS_WRITE_BLOCK) {
                uint64_t n = count[t] - first < MS_WRITE_BLOCK ? count[t] - first : MS_WRITE_BLOCK;
                struct memscope_trace_events eh = {0};
                for (uint64_t j = 0; j < n; j++) {
                    const struct ms_event *e = &h->events[order[start + first + j]];
                    unsigned kind = MS_EV_KIND(e->info);
                    recs[j].time = e->time;
                    recs[j].address = e->address;
                    recs[j].size = e->size;
                    if (kind == MEMSCOPE_REC_LABEL || kind == MEMSCOPE_REC_MARK)
                        recs[j].size = e->size < h->ntexts ? text_addr[e->size] : 0;
                    recs[j].stack = e->stack;
                    recs[j].info = MEMSCOPE_RECORD_INFO(kind, h->threads[t].serial);
                }
                eh.thread = h->threads[t].serial;
                eh.tid = h->threads[t].tid;
                eh.first_index = first;
                eh.first_time = prev_time;
                size_t len = ms_trace_encode_events(&eh, recs, n, raw);
                prev_time = recs[n - 1].time;
                rc = put_block(&w, MEMSCOPE_TRACE_EVENTS, raw, len, err);
                if (rc != 0)
                    goto out;
                written += n;
            }
            start += count[t];
        }
        struct memscope_trace_state s = {0};
        s.events_dropped = h->dropped_events;
        s.budget_bytes = h->budget_bytes;
        s.chunk_bytes = h->chunk_bytes;
        s.events_written = written;
        s.flags = MEMSCOPE_TRACE_STATE_FINAL;
        rc = put_block(&w, MEMSCOPE_TRACE_STATE, &s, sizeof(s), err);
        if (rc != 0)
            goto out;
    }
    if (close(w.fd) != 0) {
        w.fd = -1;
        rc = -errno;
        ms_error_set(err, rc, "cannot write %s: %s", path, strerror(-rc));
        goto out;
    }
    w.fd = -1;
out:
    if (w.fd >= 0)
        close(w.fd);
    ZSTD_freeCCtx(w.cctx);
    ms_engine_free(w.block);
    ms_engine_free(raw);
    ms_engine_free(recs);
    ms_engine_big_free(order);
    ms_engine_free(pos);
    ms_engine_free(count);
    ms_engine_free(text_addr);
    return rc;
}
