/*
 * fold.c - bounded history: folds the oldest records into the checkpoint.
 *
 * When the store nears its budget, a background thread (started by the
 * first chunk switch past half the budget, like trace.c's writer: guard up,
 * signals blocked) picks a horizon H among the last times of the oldest
 * finished chunks, cuts each thread's records at the longest published
 * prefix timed <= H, replays those records with the previous checkpoint
 * through the engine (the same replay every reader uses) into a new
 * checkpoint (store_abi.h, struct memscope_checkpoint), publishes it under
 * root.fold_seq, and puts the wholly folded chunks on a free list. An
 * allocating thread whose chunk is full takes a free chunk first; only when
 * neither a free chunk nor budget is left does it wait for the folder (the
 * one stall of the fast path, measured into root.fold_wait_max_ns).
 *
 * Chunks and checkpoints stay mapped while readers may hold them, except
 * that a checkpoint is unmapped once the next one is published and free
 * chunks are unmapped when a new checkpoint needs their budget: in-process
 * readers read through process_vm_readv (api.c), which fails cleanly on
 * such memory, and a failed read after fold_seq moved is read again.
 *
 * With a trace file: the writer (trace.c) reads chunks after their threads
 * have moved on, so each fold, once its checkpoint is built and before it
 * unlinks anything, has it write every published record (under its lock,
 * ms_trace_fold_begin, held until the fold is published) and reuses only
 * chunks the writer is done with (ms_trace_may_reuse); a chunk folded but
 * not yet reusable stays linked, skipped by readers, until a later fold.
 * The replay itself runs unlocked, beside the writer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <stdlib.h>

#include "runtime.h"

#ifndef MS_NO_ENGINE
#include "../engine/fold.h"

#define MS_FOLD_POLL_NS 1000000u        /* the folder's idle poll */
#define MS_FOLD_IDLE_POLLS 1000u        /* idle polls (1 s) after which the folder unmaps the arrays it keeps */
#define MS_FOLD_WAIT_NS 20000u          /* a waiting thread's poll */
#define MS_FOLD_QUIESCE_NS 100000000u   /* longest the folder waits for pops under way before unmapping a free chunk */
#define MS_FOLD_WAIT_MAX_NS (5ull * 1000 * 1000 * 1000) /* a thread waits at most this long, then drops */
#define MS_FOLD_TAG 0xfffu              /* free-list ABA tag in the low bits of a chunk address (page aligned) */
#define MS_FOLD_FUTILE 50u               /* folds that free nothing before a waiting thread gives up and drops, */
#define MS_FOLD_FUTILE_NS (200u * 1000 * 1000) /* and as long a wait (a preempted thread may hold the chunk to fold) */

static struct {
    pthread_t thread;      /* the folder */
    pid_t pid;             /* process whose folder runs, 0: none */
    int starting;          /* (atomic) a thread is starting it */
    uint64_t free_list;    /* (atomic) chunk address | tag, chained by chunk.next */
    uint64_t free_bytes;   /* (atomic) bytes of chunks on the free list */
    uint32_t waiting;      /* (atomic) threads waiting for room */
    uint32_t popping;      /* (atomic) ms_fold_pop calls under way */
    uint32_t hold;         /* (atomic) in-process snapshots in progress: no fold starts */
    uint32_t busy;         /* (atomic) a fold is in progress */
    uint64_t ck_map;       /* bytes mapped for the current checkpoint (its budget share) */
    uint64_t folds;        /* folds made */
    uint64_t failed;       /* folds that could not be made (no room for the checkpoint) */
    uint64_t futile;       /* (atomic) folds asked for by a waiting thread that freed no chunk */
    uint32_t starved;      /* (atomic) the last fold freed nothing: threads drop rather than wait, until one does */
} fs;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void nap(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

/* Pops a free chunk (any thread; lock-free, the tag defeats ABA). NULL when
 * empty. It counts itself in fs.popping: it may read the link of a chunk
 * another pop took meanwhile, so the folder unmaps a chunk it took off the
 * free list only once no pop is under way (pop_quiesce). */
struct memscope_chunk *ms_fold_pop(void)
{
    struct memscope_chunk *got = NULL;
    uint64_t head;

    __atomic_fetch_add(&fs.popping, 1, __ATOMIC_SEQ_CST);
    head = __atomic_load_n(&fs.free_list, __ATOMIC_ACQUIRE);
    for (;;) {
        struct memscope_chunk *c = (struct memscope_chunk *)(uintptr_t)(head & ~(uint64_t)MS_FOLD_TAG);
        uint64_t next;
        if (!c)
            break;
        next = __atomic_load_n(&c->next, __ATOMIC_RELAXED); /* stale if c was taken meanwhile: the CAS fails */
        if (__atomic_compare_exchange_n(&fs.free_list, &head, next | ((head + 1) & MS_FOLD_TAG), 1,
                                        __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
            __atomic_fetch_sub(&fs.free_bytes, c->map_size, __ATOMIC_RELAXED);
            got = c;
            break;
        }
    }
    __atomic_fetch_sub(&fs.popping, 1, __ATOMIC_SEQ_CST);
    return got;
}

/* Waits until no ms_fold_pop is under way (the folder, before unmapping a
 * chunk it popped): a pop that started earlier may still read its link. At
 * most MS_FOLD_QUIESCE_NS, whatever happens. */
static void pop_quiesce(void)
{
    for (unsigned i = 0; i < MS_FOLD_QUIESCE_NS / MS_FOLD_WAIT_NS; i++) {
        if (__atomic_load_n(&fs.popping, __ATOMIC_SEQ_CST) == 0)
            return;
        nap(MS_FOLD_WAIT_NS);
    }
}

/* The free list holds a chunk. */
static int free_chunks(void)
{
    return (__atomic_load_n(&fs.free_list, __ATOMIC_ACQUIRE) & ~(uint64_t)MS_FOLD_TAG) != 0;
}

static void push_free(struct memscope_chunk *c)
{
    uint64_t head = __atomic_load_n(&fs.free_list, __ATOMIC_RELAXED);

    __atomic_fetch_add(&fs.free_bytes, c->map_size, __ATOMIC_RELAXED);
    do {
        __atomic_store_n(&c->next, head & ~(uint64_t)MS_FOLD_TAG, __ATOMIC_RELAXED);
    } while (!__atomic_compare_exchange_n(&fs.free_list, &head, (uint64_t)(uintptr_t)c | ((head + 1) & MS_FOLD_TAG),
                                          1, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/* ---- one fold ---- */

struct fold_chunk {
    struct memscope_chunk *c; /* the chunk */
    uint64_t last;            /* time of its last published record */
    uint32_t thread, seq;     /* its thread serial and seq */
    int finished;             /* its thread linked its next chunk (or is gone): its count is final */
    int gone;                 /* its thread's last chunk, the thread gone: nothing more comes */
};

static int fc_cmp_thread(const void *a, const void *b)
{
    const struct fold_chunk *x = a, *y = b;
    if (x->thread != y->thread)
        return x->thread < y->thread ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cut_cmp(const void *a, const void *b)
{
    const struct ms_fold_cut *x = a, *y = b;
    return x->thread < y->thread ? -1 : x->thread > y->thread;
}

/*
 * Appends to cuts (room for old's thread count more) a MS_FOLD_MERGE cut for
 * every thread the previous checkpoint marks GONE of which no chunk is linked
 * (linked: the serials of every linked chunk, sorted), and sorts cuts by
 * serial again. The engine merges those entries into the exited threads' one
 * (store_abi.h): a thread gone for good links no chunk any more, so none can
 * reappear that a reader would replay for want of the thread's cut.
 */
static uint32_t add_mergeable(const struct memscope_checkpoint *old, const uint32_t *linked, uint64_t nlinked,
                              struct ms_fold_cut *cuts, uint32_t ncuts)
{
    const struct memscope_checkpoint_thread *t;
    uint32_t n = ncuts;

    if (!old)
        return ncuts;
    t = (const void *)(uintptr_t)old->threads;
    for (uint64_t i = 0; i < old->thread_count; i++) {
        if (!(t[i].flags & MEMSCOPE_CHECKPOINT_GONE) || t[i].thread == 0 ||
            bsearch(&t[i].thread, linked, nlinked, sizeof(*linked), u32_cmp))
            continue;
        cuts[n++] = (struct ms_fold_cut){t[i].thread, t[i].folded_seq, t[i].folded_records, MS_FOLD_MERGE};
    }
    if (n != ncuts)
        qsort(cuts, n, sizeof(*cuts), cut_cmp);
    return n;
}

static int fc_cmp_last(const void *a, const void *b)
{
    const struct fold_chunk *x = a, *y = b;
    return x->last < y->last ? -1 : x->last > y->last;
}

static int self_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    (void)ctx;
    memcpy(buf, (const void *)(uintptr_t)addr, len); /* the folder alone unmaps store memory */
    return 0;
}

/* The engine builds the checkpoint in the folder's heap; fold_once moves it into the store. */
static void *heap_checkpoint(void *ctx, size_t bytes)
{
    (void)ctx;
    return calloc(1, bytes);
}

/* The seq below which chunk c's thread is wholly folded by this fold's cuts (0: none). */
static uint32_t cut_of(const struct ms_fold_cut *cuts, uint32_t ncuts, const struct memscope_chunk *c)
{
    uint32_t lo = 0, hi = ncuts;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cuts[mid].thread < c->thread)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ncuts && cuts[lo].thread == c->thread ? cuts[lo].seq : 0;
}

/* The previous cut of thread serial, from the checkpoint (its threads ascend by serial). */
static void old_cut(const struct memscope_checkpoint *ck, uint32_t serial, uint32_t *seq, uint64_t *records)
{
    uint64_t lo = 0, hi;

    *seq = 0;
    *records = 0;
    if (!ck)
        return;
    const struct memscope_checkpoint_thread *t = (const void *)(uintptr_t)ck->threads;
    hi = ck->thread_count;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (t[mid].thread < serial)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < ck->thread_count && t[lo].thread == serial) {
        *seq = t[lo].folded_seq;
        *records = t[lo].folded_records;
    }
}

/* Chunk c is wholly folded (by this fold's cuts, or by an earlier fold for a
 * thread this one did not cut: a thread whose writer is gone) and may be
 * unlinked and reused. */
static int reusable(const struct ms_fold_cut *cuts, uint32_t ncuts, const struct memscope_checkpoint *old,
                    const struct memscope_chunk *c)
{
    uint32_t seq = cut_of(cuts, ncuts, c);
    uint64_t records;

    if (seq == 0)
        old_cut(old, c->thread, &seq, &records);
    return c->seq < seq && ms_trace_may_reuse(c);
}

/* Moves the checkpoint built at tmp (size bytes) into a mapping of its own of
 * mapped bytes, whose budget the caller reserved (given back here on failure).
 * Returns it, or NULL. */
static struct memscope_checkpoint *place_checkpoint(const struct memscope_checkpoint *tmp, size_t size,
                                                    uint64_t mapped)
{
    struct memscope_checkpoint *ck = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t base = (uint64_t)(uintptr_t)tmp, to;

    if (ck == MAP_FAILED) {
        ms_budget_give(mapped);
        return NULL;
    }
    to = (uint64_t)(uintptr_t)ck;
    memcpy(ck, tmp, size);
    ck->threads = ck->threads - base + to;
    ck->blocks = ck->blocks - base + to;
    if (ck->marks)
        ck->marks = ck->marks - base + to;
    return ck;
}

/* Folds about `target` bytes of the oldest chunks. Returns chunks freed, -2 when the
 * checkpoint would not fit in the budget, or -1. */
static int fold_once(uint64_t target)
{
    struct memscope_store_root *r = &memscope_store_root;
    struct memscope_checkpoint *old = (void *)(uintptr_t)__atomic_load_n(&r->checkpoint, __ATOMIC_ACQUIRE);
    struct fold_chunk *fc = NULL;
    struct ms_fold_cut *cuts = NULL;
    uint32_t *linked = NULL;
    uint64_t nlinked = 0;
    struct memscope_checkpoint *ck = NULL, *tmp = NULL;
    struct memscope_chunk *unlinked = NULL;
    uint64_t n = 0, cap = __atomic_load_n(&r->chunk_count, __ATOMIC_ACQUIRE) + 64, horizon = 0, got = 0;
    uint64_t head, ck_mapped = 0, freed = 0, reserved = 0, i;
    uint32_t ncuts = 0;
    size_t ck_size = 0;
    struct memscope_source src = {self_read, NULL};
    struct memscope_error err;
    int rc = -1, traced = 0;

    fc = malloc(cap * sizeof(*fc));
    cuts = malloc((cap + (old ? old->thread_count : 0)) * sizeof(*cuts));
    linked = malloc(cap * sizeof(*linked));
    if (!fc || !cuts || !linked)
        goto out;
    head = __atomic_load_n(&r->chunks, __ATOMIC_ACQUIRE);
    uint64_t walk;
    for (walk = head; walk && nlinked < cap; walk = ((struct memscope_chunk *)(uintptr_t)walk)->next) {
        struct memscope_chunk *c = (void *)(uintptr_t)walk;
        uint64_t count = __atomic_load_n(&c->count, __ATOMIC_ACQUIRE);
        uint32_t s;
        uint64_t rec;
        linked[nlinked++] = c->thread;
        old_cut(old, c->thread, &s, &rec);
        if (c->seq < s)
            continue; /* folded already, still linked */
        fc[n].c = c;
        fc[n].thread = c->thread;
        fc[n].seq = c->seq;
        fc[n].last = count ? ((struct memscope_record *)(c + 1))[count - 1].time : 0;
        fc[n].finished = 0;
        fc[n].gone = 0;
        n++;
    }
    qsort(fc, n, sizeof(*fc), fc_cmp_thread);
    for (i = 0; i + 1 < n; i++)
        if (fc[i].thread == fc[i + 1].thread && fc[i + 1].seq == fc[i].seq + 1)
            fc[i].finished = 1; /* store.c stores a chunk's final count before linking the next */
        else if ((i + 1 == n || fc[i + 1].thread != fc[i].thread) && ms_chunk_writer_gone(fc[i].c))
            fc[i].finished = fc[i].gone = 1; /* a thread's last chunk, its thread gone: nothing more comes */
    if (n > 0 && ms_chunk_writer_gone(fc[n - 1].c))
        fc[n - 1].finished = fc[n - 1].gone = 1; /* the loop above stops before the last */
    /* The horizon: the last time of the oldest finished chunks worth target bytes. */
    {
        struct fold_chunk *by = malloc((n ? n : 1) * sizeof(*by));
        uint64_t k = 0;
        if (!by)
            goto out;
        for (i = 0; i < n; i++)
            if (fc[i].finished)
                by[k++] = fc[i];
        qsort(by, k, sizeof(*by), fc_cmp_last);
        for (i = 0; i < k && got < target; i++) {
            got += by[i].c->map_size;
            horizon = by[i].last;
        }
        free(by);
        if (got == 0) {
            rc = 0; /* nothing finished to fold */
            goto out;
        }
    }
    /* Each thread's cut: the longest published prefix timed <= horizon, past
     * a chunk only once its count is final. */
    for (i = 0; i < n;) {
        uint32_t serial = fc[i].thread, s;
        uint64_t rec;
        old_cut(old, serial, &s, &rec);
        struct ms_fold_cut cut = {serial, s, rec, 0};
        for (; i < n && fc[i].thread == serial; i++) {
            struct memscope_chunk *c = fc[i].c;
            const struct memscope_record *recs = (const void *)(c + 1);
            uint64_t count = __atomic_load_n(&c->count, __ATOMIC_ACQUIRE), j;
            if (fc[i].seq != cut.seq)
                break; /* a gap in the chain: stop here */
            j = cut.records;
            while (j < count && recs[j].time <= horizon)
                j++;
            cut.records = j;
            if (j < count || !fc[i].finished)
                break;
            cut.seq = fc[i].seq + 1; /* wholly folded: on to the next chunk */
            cut.records = 0;
            if (fc[i].gone)
                cut.flags = MS_FOLD_GONE; /* its last chunk: the thread is wholly folded */
        }
        while (i < n && fc[i].thread == serial)
            i++;
        cuts[ncuts++] = cut;
    }
    qsort(linked, nlinked, sizeof(*linked), u32_cmp);
    if (walk == 0) /* the whole list was seen: a thread none of whose chunks is in it may be merged */
        ncuts = add_mergeable(old, linked, nlinked, cuts, ncuts);
    if (ms_fold_build(&src, 1, (uint64_t)(uintptr_t)r, cuts, ncuts, horizon, heap_checkpoint, NULL, &tmp, &ck_size,
                      &err) != 0) {
        fs.failed++;
        goto out;
    }
    ck_mapped = (ck_size + 4095) & ~(uint64_t)4095;
    /* Only from here on does the fold need the trace writer held (which
     * chunks it is done with, and the unlinking its walk must not see): the
     * writer goes on writing while the records are replayed above. */
    traced = ms_trace_fold_begin();
    /* Budget for the checkpoint, reserved before anything is unlinked: free
     * budget, then free chunks unmapped (threads may take them meanwhile);
     * what is still short comes from the chunks this fold unlinks, which are
     * ours alone once unlinked. Not enough even so: no fold. */
    {
        uint64_t folded_bytes = 0;
        struct memscope_chunk *prev = NULL;
        for (;;) {
            struct memscope_chunk *c;
            reserved += ms_budget_take_upto(ck_mapped - reserved);
            uint64_t size;
            if (reserved == ck_mapped || !(c = ms_fold_pop()))
                break;
            pop_quiesce();
            size = c->map_size;
            munmap(c, size);
            __atomic_fetch_sub(&r->chunk_bytes, size, __ATOMIC_RELAXED);
            ms_budget_give(size);
        }
        for (uint64_t a = __atomic_load_n(&r->chunks, __ATOMIC_ACQUIRE); a;) {
            struct memscope_chunk *c = (void *)(uintptr_t)a;
            if (prev && reusable(cuts, ncuts, old, c))
                folded_bytes += c->map_size;
            prev = c;
            a = c->next;
        }
        if (ck_mapped - reserved > folded_bytes) {
            fs.failed++; /* the live set needs more than the budget leaves */
            ms_budget_give(reserved);
            rc = -2;
            goto out;
        }
    }
    /* With its budget reserved whole (usually: the previous fold gave back
     * the old checkpoint's), the checkpoint is moved into a mapping of its
     * own before publication: readers retry while fold_seq is odd, so that
     * window stays short. */
    if (reserved == ck_mapped) {
        ck = place_checkpoint(tmp, ck_size, ck_mapped);
        if (!ck) {
            fs.failed++; /* no memory: nothing is unlinked, the records stay for a later fold */
            goto out;
        }
    }
    /* Publish: fold_seq odd; the folded chunks unlinked; if need be the rest
     * of the checkpoint's budget from them, and the checkpoint placed;
     * linked; fold_seq even. */
    __atomic_fetch_add(&r->fold_seq, 1, __ATOMIC_SEQ_CST);
    {
        struct memscope_chunk *prev = NULL;
        uint64_t a = __atomic_load_n(&r->chunks, __ATOMIC_ACQUIRE);
        while (a) {
            struct memscope_chunk *c = (void *)(uintptr_t)a;
            uint64_t next = c->next;
            /* The head stays (threads link new chunks there); it goes at a later fold. */
            if (prev && reusable(cuts, ncuts, old, c)) {
                __atomic_store_n(&prev->next, next, __ATOMIC_RELEASE);
                __atomic_fetch_sub(&r->chunk_count, 1, __ATOMIC_RELAXED);
                c->thread_prev = (uint64_t)(uintptr_t)unlinked; /* a local list until the checkpoint has room */
                unlinked = c;
                freed++;
            } else {
                prev = c;
            }
            a = next;
        }
    }
    while (!ck && reserved < ck_mapped && unlinked) { /* the rest of the checkpoint's budget, from unlinked chunks */
        struct memscope_chunk *c = unlinked;
        uint64_t size = c->map_size, part = size < ck_mapped - reserved ? size : ck_mapped - reserved;
        unlinked = (struct memscope_chunk *)(uintptr_t)c->thread_prev;
        munmap(c, size);
        __atomic_fetch_sub(&r->chunk_bytes, size, __ATOMIC_RELAXED);
        reserved += part; /* its budget passes to the checkpoint; the excess goes back */
        ms_budget_give(size - part);
    }
    if (!ck) {
        if (reserved < ck_mapped) /* cannot happen: the unlinked chunks were counted above */
            ms_budget_force(ck_mapped - reserved);
        ck = place_checkpoint(tmp, ck_size, ck_mapped);
    }
    if (ck)
        __atomic_store_n(&r->checkpoint, (uint64_t)(uintptr_t)ck, __ATOMIC_RELEASE);
    while (unlinked) {
        struct memscope_chunk *c = unlinked;
        unlinked = (struct memscope_chunk *)(uintptr_t)c->thread_prev;
        push_free(c);
    }
    __atomic_fetch_add(&r->fold_seq, 1, __ATOMIC_SEQ_CST);
    if (!ck) {
        /* No room even so (a live set larger than the budget allows): the
         * chunks stay unlinked but their records are lost to the replay. */
        fs.failed++;
    }
    if (ck) {
        if (old) {
            munmap(old, fs.ck_map);
            ms_budget_give(fs.ck_map);
        }
        fs.ck_map = ck_mapped;
    }
    fs.folds++;
    rc = (int)freed;
out:
    ms_trace_fold_end(traced);
    free(tmp);
    free(fc);
    free(cuts);
    free(linked);
    return rc;
}

/* Bytes of the budget in use by records, texts and the checkpoint (free chunks excluded). */
static uint64_t in_use(void)
{
    extern uint64_t ms_budget_in_use(void);
    uint64_t used = ms_budget_in_use(), fr = __atomic_load_n(&fs.free_bytes, __ATOMIC_RELAXED);
    return used > fr ? used - fr : 0;
}

static void *folder_main(void *arg)
{
    sigset_t all;
    int barren = 0; /* the last fold freed no chunk */
    (void)arg;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    ms_self.guard++; /* forever: nothing this thread allocates is recorded */
    ms_engine_big_keep(1); /* the replay's arrays stay mapped from one fold to the next */
    for (unsigned idle = 0;; idle++) {
        if (idle == MS_FOLD_IDLE_POLLS)
            ms_engine_big_keep(0); /* folding has stopped for now: give the memory back */
        uint64_t budget = __atomic_load_n(&memscope_store_root.budget_bytes, __ATOMIC_RELAXED);
        uint64_t used = in_use();
        /* Threads waiting while free chunks are left have not yet run to take
         * them (a loaded machine): no fold for them, and none counted futile. */
        int waiting = __atomic_load_n(&fs.waiting, __ATOMIC_ACQUIRE) != 0 && !free_chunks();
        if (used > budget / 8 * 5 || waiting) {
            __atomic_store_n(&fs.busy, 1, __ATOMIC_SEQ_CST);
            if (__atomic_load_n(&fs.hold, __ATOMIC_SEQ_CST) == 0) {
                uint64_t goal = budget / 8 * 3, target = used > goal ? used - goal : budget / 8;
                /* Down to 3/8. A thread waits for this fold: fold an 1/8 (about two
                 * chunks), so that it waits for a short fold; the rest follows at once
                 * (smaller folds cost about the same per event: ~23 ns per folded
                 * event for 1/8 or 1/4 of 16M; the per-fold work is ~0.2 ms). */
                if (waiting && !barren && target > budget / 8)
                    target = budget / 8; /* not after a fold that freed nothing (chunks the trace writer still needs) */
                if (idle >= MS_FOLD_IDLE_POLLS)
                    ms_engine_big_keep(1);
                idle = 0;
                int freed = fold_once(target);
                __atomic_store_n(&fs.busy, 0, __ATOMIC_SEQ_CST);
                barren = freed <= 0;
                if (freed > 0) {
                    __atomic_store_n(&fs.starved, 0, __ATOMIC_RELEASE);
                    continue;
                }
                if (waiting && !free_chunks())
                    __atomic_fetch_add(&fs.futile, 1, __ATOMIC_RELEASE); /* nothing finished to fold: waiters give up (and drop) */
            } else {
                __atomic_store_n(&fs.busy, 0, __ATOMIC_SEQ_CST);
            }
        }
        nap(waiting ? MS_FOLD_WAIT_NS : MS_FOLD_POLL_NS);
    }
    return NULL;
}

/*
 * Starts the folder once the store is past half its budget (or a thread
 * finds no room). Called by the outermost append of a thread at a chunk
 * switch; cheap when there is nothing to do.
 */
void ms_fold_poke(int need)
{
    pid_t pid;

    if (__atomic_load_n(&fs.pid, __ATOMIC_ACQUIRE) != 0 && fs.pid == (pid_t)syscall(SYS_getpid))
        return;
    if (!need && in_use() <= __atomic_load_n(&memscope_store_root.budget_bytes, __ATOMIC_RELAXED) / 2)
        return;
    if (__atomic_exchange_n(&fs.starting, 1, __ATOMIC_ACQUIRE))
        return;
    pid = (pid_t)syscall(SYS_getpid);
    if (fs.pid != pid) {
        pthread_attr_t attr;
        ms_self.guard++;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        fs.busy = 0;
        fs.waiting = 0;
        if (pthread_create(&fs.thread, &attr, folder_main, NULL) == 0)
            __atomic_store_n(&fs.pid, pid, __ATOMIC_RELEASE);
        pthread_attr_destroy(&attr);
        ms_self.guard--;
    }
    __atomic_store_n(&fs.starting, 0, __ATOMIC_RELEASE);
}

/*
 * No free chunk and no budget: waits for the folder to free a chunk and
 * returns it, or NULL after MS_FOLD_WAIT_MAX_NS or when there is no folder.
 * The wait is the worst stall an allocation sees (root.fold_wait_max_ns).
 */
struct memscope_chunk *ms_fold_wait(void)
{
    struct memscope_chunk *c = NULL;
    uint64_t start, waited;

    for (;;) { /* another thread may be starting the folder */
        ms_fold_poke(1);
        if (__atomic_load_n(&fs.pid, __ATOMIC_ACQUIRE) == (pid_t)syscall(SYS_getpid))
            break;
        if (!__atomic_load_n(&fs.starting, __ATOMIC_ACQUIRE))
            return NULL; /* no folder (it could not start) */
        nap(MS_FOLD_WAIT_NS);
    }
    if (__atomic_load_n(&fs.starved, __ATOMIC_ACQUIRE))
        return NULL; /* the folder keeps trying on its own (the store is past 5/8 of its budget) */
    start = now_ns();
    uint64_t futile = __atomic_load_n(&fs.futile, __ATOMIC_ACQUIRE);
    __atomic_fetch_add(&fs.waiting, 1, __ATOMIC_SEQ_CST);
    while (!(c = ms_fold_pop())) {
        uint64_t waited_now = now_ns() - start;
        if (waited_now >= MS_FOLD_WAIT_MAX_NS)
            break;
        /* Folds that free nothing for a while (no finished chunk: a budget too
         * small for the threads' current chunks): drop, and let the next
         * threads drop at once until a fold frees something. */
        if (__atomic_load_n(&fs.futile, __ATOMIC_ACQUIRE) - futile >= MS_FOLD_FUTILE &&
            waited_now >= MS_FOLD_FUTILE_NS) {
            __atomic_store_n(&fs.starved, 1, __ATOMIC_RELEASE);
            break;
        }
        nap(MS_FOLD_WAIT_NS);
    }
    __atomic_fetch_sub(&fs.waiting, 1, __ATOMIC_SEQ_CST);
    waited = now_ns() - start;
    uint64_t max = __atomic_load_n(&memscope_store_root.fold_wait_max_ns, __ATOMIC_RELAXED);
    while (waited > max && !__atomic_compare_exchange_n(&memscope_store_root.fold_wait_max_ns, &max, waited, 1,
                                                         __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    return c;
}

#else /* MS_NO_ENGINE: no folding; the budget drops events as it did before */
void ms_fold_poke(int need) { (void)need; }
struct memscope_chunk *ms_fold_pop(void) { return NULL; }
struct memscope_chunk *ms_fold_wait(void) { return NULL; }
#endif

/* An in-process snapshot is about to read the store: no fold starts until ms_fold_release. */
void ms_fold_hold(void)
{
#ifndef MS_NO_ENGINE
    __atomic_fetch_add(&fs.hold, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&fs.busy, __ATOMIC_SEQ_CST))
        nap(50000);
#endif
}

void ms_fold_release(void)
{
#ifndef MS_NO_ENGINE
    __atomic_fetch_sub(&fs.hold, 1, __ATOMIC_SEQ_CST);
#endif
}

/*
 * fork: the child gets the store as it is at that instant, so no fold may
 * be half-published then (fold_seq odd, chunks unlinked, the new checkpoint
 * still in the folder's heap): the child would keep that for ever. Before
 * fork, folding is held off (a fold in progress is waited out); after it
 * the parent lets it go on. The child has no folder (threads do not
 * survive fork) and no snapshot in progress: it forgets the parent's
 * folder's state and starts its own when it needs one.
 */
void ms_fold_before_fork(void)
{
    ms_fold_hold();
}

void ms_fold_after_fork_parent(void)
{
    ms_fold_release();
}

void ms_fold_after_fork_child(void)
{
#ifndef MS_NO_ENGINE
    fs.pid = 0;
    fs.starting = 0;
    fs.waiting = 0;
    fs.hold = 0;
    fs.busy = 0;
    fs.starved = 0;
    fs.popping = 0; /* the forking thread was not popping; the others are gone */
#endif
}
