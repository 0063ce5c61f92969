/*
 * trace.c - MEMSCOPE_TRACE=FILE: the whole event history written to FILE as
 * it is recorded (trace_abi.h), so it survives the process, its crash or a
 * SIGKILL.
 *
 * Who writes: one background thread, started by the library constructor
 * when MEMSCOPE_TRACE is set (never from inside malloc). Allocation threads
 * never wait for it and never write to the file: they append to their
 * chunks as always (runtime.h), and the writer reads the records they have
 * published (chunk.count, release order) every MS_TRACE_POLL_NS, encodes
 * them (delta + varint columns, zstd level 1) and appends whole blocks with
 * one write(2) each. A background thread rather than an mmap'd file: the
 * cost of compression (the point of keeping a trace small) stays off the
 * allocating threads entirely, and a block is either wholly in the file
 * (the page cache keeps it through a SIGKILL) or not at all.
 *
 * The writer follows the chunk list (new chunks are linked at its head) and
 * keeps, for each chunk not yet finished, how many of its records it wrote.
 * A chunk is finished once its thread has published a record in the next
 * chunk (that thread stored the old chunk's final count before). It writes
 * a chunk's records once MS_TRACE_MIN_BLOCK of them are waiting, or the
 * chunk is finished, or its thread added nothing for a whole pass (an idle
 * thread's events are on disk within two polls), so blocks stay large
 * enough to compress well while a busy thread runs. The process's file
 * mappings (modules.c) go out in a MODULES block first and again after a
 * pass that finds a shared object loaded or unloaded, so a reader can name
 * return addresses from the files on disk. Label
 * and mark texts named by records go out (once) in a TEXTS block before the
 * EVENTS block that names them. A STATE block after each pass that wrote
 * events keeps the counters and clock calibration current; at exit (the
 * library destructor) the writer is stopped and joined, everything left is
 * written, and a final STATE block marks the trace complete.
 *
 * The writer runs with its recursion guard up, so what it allocates (zstd's
 * context) is not recorded, and with every signal blocked. In a forked
 * child the writer does not exist: the child does not write the parent's
 * trace, and MEMSCOPE_TRACE is emptied in the environment, so a program
 * this one execs (recorded with MEMSCOPE_FOLLOW_EXEC=1) does not replace
 * the file. All the writer's own memory is mmap'd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "../engine/trace_codec.h"
#include "runtime.h"

#define MS_TRACE_POLL_NS 10000000L   /* 10 ms between passes */
#define MS_TRACE_MIN_BLOCK 16384u    /* records waiting before a block is written */
#define MS_TRACE_MAX_BLOCK 65536u    /* records per EVENTS block */
#define MS_TRACE_LEVEL 1             /* zstd level: fast, and the columns already did most of the work */
#define MS_TRACE_TEXT_SLOTS 65536u   /* texts remembered as written (a full set is cleared: a repeat is harmless) */
#define MS_TRACE_TEXTS_RAW (256u * 1024u)

struct tracked {
    struct memscope_chunk *chunk; /* a chunk not yet finished */
    struct memscope_chunk *next;  /* the same thread's next chunk, once linked */
    uint64_t written;             /* its records written so far */
    uint64_t seen;                /* its count at the previous pass */
};

struct per_thread {
    uint64_t written;   /* records of this thread written so far */
    uint64_t last_time; /* time of the last one */
    uint32_t done_seq;  /* its chunks with a lower seq are wholly written and forgotten (fold.c may reuse them) */
};

/* Held by a pass and by a fold (ms_trace_fold_begin/end): a fold never
 * reuses a chunk the writer has not wholly written, nor one it still knows. */
static pthread_mutex_t tw_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
    int active;                    /* the writer exists (in this process) */
    int fd;                        /* the trace file */
    pid_t pid;                     /* the process that writes it */
    pthread_t thread;              /* the writer */
    int stop;                      /* (atomic) asks the writer to end */
    int failed;                    /* a write failed: tracing stopped */
    uint64_t seq;                  /* next block's sequence */
    uint64_t events_written;       /* records written */
    ZSTD_CCtx *cctx;               /* compression context */
    uint8_t *raw;                  /* an EVENTS payload */
    uint8_t *texts;                /* a TEXTS payload */
    uint8_t *block;                /* a whole block */
    size_t block_cap;              /* its size */
    struct tracked *tracked;       /* chunks not finished, oldest first */
    size_t ntracked, tracked_cap;
    struct per_thread *threads;    /* by serial */
    size_t threads_cap;
    uint64_t *text_set;            /* text addresses written (open addressing, 0 empty) */
    size_t text_used;
    uint64_t last_head;            /* newest chunk seen at the last pass */
    uint8_t *stack_bits;           /* stack ids written (bit id-1), for the table at stack_table */
    const struct memscope_stack_table *stack_table;
    uint8_t *stacks;               /* a STACKS payload */
    uint8_t *modules;              /* a MODULES payload (modules.c) */
    size_t modules_len;            /* its bytes, 0 when written already */
    unsigned long long modules_gen; /* objects loaded + unloaded when it was taken */
} tw;

#define MS_TRACE_STACKS_RAW (256u * 1024u)
#define MS_TRACE_MODULES_RAW (1024u * 1024u) /* a MODULES payload: ~20,000 mappings of typical paths */

static void *map_anon(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Grows an mmap'd array to hold `need` elements of `size` bytes. 0 or -1. */
static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
    size_t ncap = *cap ? *cap : 64;
    void *p;

    if (need <= *cap)
        return 0;
    while (ncap < need)
        ncap *= 2;
    p = map_anon(ncap * size);
    if (!p)
        return -1;
    if (*arr) {
        memcpy(p, *arr, *cap * size);
        munmap(*arr, *cap * size);
    }
    *arr = p;
    *cap = ncap;
    return 0;
}

static int write_all(const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(tw.fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            tw.failed = 1;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int put_block(uint16_t type, const void *raw, size_t len)
{
    size_t n = ms_trace_block_build(type, tw.seq, raw, len, tw.cctx, MS_TRACE_LEVEL, tw.block);

    if (n == 0 || write_all(tw.block, n) != 0)
        return -1;
    tw.seq++;
    return 0;
}

static void put_state(uint32_t flags)
{
    struct memscope_store_root *r = &memscope_store_root;
    struct memscope_trace_state s;
    uint64_t seq;

    memset(&s, 0, sizeof(s));
    s.events_dropped = __atomic_load_n(&r->events_dropped, __ATOMIC_RELAXED);
    s.budget_bytes = __atomic_load_n(&r->budget_bytes, __ATOMIC_RELAXED);
    s.chunk_bytes = __atomic_load_n(&r->chunk_bytes, __ATOMIC_RELAXED);
    s.events_written = tw.events_written;
    /* The calibration pair under its seqlock (a few tries; none is fine too). */
    for (int i = 0; i < 100; i++) {
        seq = __atomic_load_n(&r->clock_calib_seq, __ATOMIC_ACQUIRE);
        if (seq & 1)
            continue;
        s.clock_calib_ticks = __atomic_load_n(&r->clock_calib_ticks, __ATOMIC_RELAXED);
        s.clock_calib_ns = __atomic_load_n(&r->clock_calib_ns, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&r->clock_calib_seq, __ATOMIC_RELAXED) == seq)
            break;
        s.clock_calib_ticks = s.clock_calib_ns = 0;
    }
    s.flags = flags;
    put_block(MEMSCOPE_TRACE_STATE, &s, sizeof(s));
}

/* Adds addr to the set of texts written; 1 if it was new. */
static int text_new(uint64_t addr)
{
    size_t mask = MS_TRACE_TEXT_SLOTS - 1, j = (size_t)((addr * UINT64_C(0x9e3779b97f4a7c15)) >> 40) & mask;

    if (tw.text_used * 4 >= MS_TRACE_TEXT_SLOTS * 3) {
        memset(tw.text_set, 0, MS_TRACE_TEXT_SLOTS * sizeof(uint64_t));
        tw.text_used = 0;
    }
    for (; tw.text_set[j]; j = (j + 1) & mask)
        if (tw.text_set[j] == addr)
            return 0;
    tw.text_set[j] = addr;
    tw.text_used++;
    return 1;
}

/* Writes the texts records r[0..n) name that were not written yet, as TEXTS blocks. */
static void put_texts(const struct memscope_record *r, size_t n)
{
    size_t used = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned kind = MEMSCOPE_RECORD_KIND(r[i].info);
        const struct memscope_text *t;
        struct memscope_trace_text e;
        size_t padded;

        if (kind != MEMSCOPE_REC_LABEL && kind != MEMSCOPE_REC_MARK)
            continue;
        if (r[i].size == 0 || (r[i].size & 7) || !text_new(r[i].size))
            continue;
        t = (const struct memscope_text *)(uintptr_t)r[i].size; /* complete before the record was published */
        if (t->bytes == 0 || t->bytes > MEMSCOPE_TEXT_MAX || (t->strings != 1 && t->strings != 2))
            continue;
        padded = (t->bytes + 7u) & ~7u;
        if (used + sizeof(e) + padded > MS_TRACE_TEXTS_RAW) {
            put_block(MEMSCOPE_TRACE_TEXTS, tw.texts, used);
            used = 0;
        }
        e.address = r[i].size;
        e.bytes = t->bytes;
        e.strings = t->strings;
        memcpy(tw.texts + used, &e, sizeof(e));
        memcpy(tw.texts + used + sizeof(e), t + 1, t->bytes);
        memset(tw.texts + used + sizeof(e) + t->bytes, 0, padded - t->bytes);
        used += sizeof(e) + padded;
    }
    if (used)
        put_block(MEMSCOPE_TRACE_TEXTS, tw.texts, used);
}

/* Writes the stacks records r[0..n) name that were not written yet, as STACKS blocks. */
static void put_stacks(const struct memscope_record *r, size_t n)
{
    const struct memscope_stack_table *t = tw.stack_table;
    struct memscope_trace_stacks h;
    size_t used = sizeof(h);

    if (!t) {
        t = (const struct memscope_stack_table *)(uintptr_t)__atomic_load_n(&memscope_store_root.stacks,
                                                                            __ATOMIC_ACQUIRE);
        if (!t || t->capacity == 0)
            return;
        tw.stack_bits = map_anon((size_t)(t->capacity + 7) / 8);
        tw.stacks = map_anon(MS_TRACE_STACKS_RAW);
        if (!tw.stack_bits || !tw.stacks)
            return;
        tw.stack_table = t;
    }
    memset(&h, 0, sizeof(h));
    h.method = t->method;
    h.max_depth = t->max_depth;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = r[i].stack;
        const struct memscope_stack_entry *e;
        struct memscope_trace_stack te;

        if (id == 0 || id > t->capacity || (tw.stack_bits[(id - 1) / 8] & (1u << ((id - 1) % 8))))
            continue;
        /* Complete: a record names an id only once its entry is published (store_abi.h). */
        e = (const struct memscope_stack_entry *)(uintptr_t)t->entries + (id - 1);
        te.id = id;
        te.depth = __atomic_load_n(&e->depth, __ATOMIC_ACQUIRE);
        if (te.depth == 0 || te.depth > t->max_depth || e->first + te.depth > t->frame_capacity)
            continue;
        tw.stack_bits[(id - 1) / 8] |= (uint8_t)(1u << ((id - 1) % 8));
        if (used + sizeof(te) + (size_t)te.depth * 8 > MS_TRACE_STACKS_RAW) {
            h.truncated = __atomic_load_n(&t->truncated, __ATOMIC_RELAXED);
            h.lost = __atomic_load_n(&t->lost, __ATOMIC_RELAXED);
            memcpy(tw.stacks, &h, sizeof(h));
            put_block(MEMSCOPE_TRACE_STACKS, tw.stacks, used);
            used = sizeof(h);
            h.count = 0;
        }
        memcpy(tw.stacks + used, &te, sizeof(te));
        memcpy(tw.stacks + used + sizeof(te), (const uint64_t *)(uintptr_t)t->frames + e->first,
               (size_t)te.depth * 8);
        used += sizeof(te) + (size_t)te.depth * 8;
        h.count++;
    }
    if (h.count) {
        h.truncated = __atomic_load_n(&t->truncated, __ATOMIC_RELAXED);
        h.lost = __atomic_load_n(&t->lost, __ATOMIC_RELAXED);
        memcpy(tw.stacks, &h, sizeof(h));
        put_block(MEMSCOPE_TRACE_STACKS, tw.stacks, used);
    }
}

/* Writes records [from, to) of chunk c. */
static void put_records(struct memscope_chunk *c, uint64_t from, uint64_t to)
{
    const struct memscope_record *recs = (const struct memscope_record *)(c + 1);
    struct per_thread *pt;

    if (grow((void **)&tw.threads, &tw.threads_cap, (size_t)c->thread + 1, sizeof(*tw.threads)) != 0) {
        tw.failed = 1;
        return;
    }
    pt = &tw.threads[c->thread];
    while (from < to && !tw.failed) {
        uint64_t n = to - from < MS_TRACE_MAX_BLOCK ? to - from : MS_TRACE_MAX_BLOCK;
        struct memscope_trace_events h;
        size_t len;

        memset(&h, 0, sizeof(h));
        h.thread = c->thread;
        h.tid = c->tid;
        h.first_index = pt->written;
        h.first_time = pt->last_time;
        put_texts(recs + from, (size_t)n);
        put_stacks(recs + from, (size_t)n);
        len = ms_trace_encode_events(&h, recs + from, (size_t)n, tw.raw);
        if (put_block(MEMSCOPE_TRACE_EVENTS, tw.raw, len) != 0)
            return;
        pt->written += n;
        pt->last_time = recs[from + n - 1].time;
        tw.events_written += n;
        from += n;
    }
}

/* One pass over the store (tw_lock held); flush: write everything published
 * (a fold is about to reuse chunks); final: that, and the process is ending. */
static void pass(int flush, int final)
{
    struct memscope_store_root *r = &memscope_store_root;
    uint64_t head = __atomic_load_n(&r->chunks, __ATOMIC_ACQUIRE), before = tw.events_written;
    size_t nnew = 0, i;

    /* New chunks, linked since the last pass: between head and last_head. */
    for (uint64_t a = head; a && a != tw.last_head; a = ((struct memscope_chunk *)(uintptr_t)a)->next)
        nnew++;
    if (nnew) {
        if (grow((void **)&tw.tracked, &tw.tracked_cap, tw.ntracked + nnew, sizeof(*tw.tracked)) != 0) {
            tw.failed = 1;
            return;
        }
        i = tw.ntracked + nnew;
        for (uint64_t a = head; a && a != tw.last_head; a = ((struct memscope_chunk *)(uintptr_t)a)->next) {
            struct tracked *t = &tw.tracked[--i]; /* oldest first */
            t->chunk = (struct memscope_chunk *)(uintptr_t)a;
            t->next = NULL;
            t->written = 0;
            t->seen = 0;
        }
        for (i = tw.ntracked; i < tw.ntracked + nnew; i++) {
            const struct memscope_chunk *c = tw.tracked[i].chunk;
            uint64_t prev = c->thread_prev;
            for (size_t j = 0; j < i && prev; j++)
                if ((uint64_t)(uintptr_t)tw.tracked[j].chunk == prev && tw.tracked[j].chunk->thread == c->thread &&
                    tw.tracked[j].chunk->seq + 1 == c->seq)
                    tw.tracked[j].next = tw.tracked[i].chunk;
        }
        tw.ntracked += nnew;
        tw.last_head = head;
    }
    for (i = 0; i < tw.ntracked && !tw.failed;) {
        struct tracked *t = &tw.tracked[i];
        /* Finished: the thread published in its next chunk, after storing this one's final count;
         * or an idle last chunk whose thread is gone (checked only when idle: a syscall). */
        int done = t->next && __atomic_load_n(&t->next->count, __ATOMIC_ACQUIRE) > 0;
        uint64_t count = __atomic_load_n(&t->chunk->count, __ATOMIC_ACQUIRE);

        if (!done && !t->next && count == t->seen && ms_chunk_writer_gone(t->chunk)) {
            done = 1;
            count = __atomic_load_n(&t->chunk->count, __ATOMIC_ACQUIRE); /* final now */
        }

        if (count > t->chunk->capacity)
            count = t->chunk->capacity;
        /* Write when a block's worth waits, when the chunk is finished, or when its thread has
         * been quiet for a whole pass (so an idle or blocked thread's last events reach the
         * file within two polls, ready for a SIGKILL). */
        if (count > t->written && (done || flush || final || count - t->written >= MS_TRACE_MIN_BLOCK || count == t->seen)) {
            put_records(t->chunk, t->written, count);
            t->written = count;
        }
        t->seen = count;
        if (done && t->written == count) {
            /* Wholly written; a thread's chunks finish in seq order. */
            if (grow((void **)&tw.threads, &tw.threads_cap, (size_t)t->chunk->thread + 1, sizeof(*tw.threads)) == 0)
                tw.threads[t->chunk->thread].done_seq = t->chunk->seq + 1;
            memmove(t, t + 1, (tw.ntracked - i - 1) * sizeof(*t));
            tw.ntracked--;
            continue;
        }
        i++;
    }
    if (tw.events_written != before || final)
        put_state(final ? MEMSCOPE_TRACE_STATE_FINAL : 0);
}

/*
 * Takes the process's mappings again when a shared object was loaded or
 * unloaded since they were last taken. Outside tw_lock: dl_iterate_phdr
 * holds the dynamic linker's lock, and a thread inside dlopen may be
 * waiting for a fold, which waits for tw_lock.
 */
static void take_modules(void)
{
    unsigned long long gen = ms_modules_generation();

    if (gen != tw.modules_gen || !tw.modules_gen) {
        tw.modules_len = ms_modules_collect(tw.modules, MS_TRACE_MODULES_RAW);
        tw.modules_gen = gen;
    }
}

/* Writes the mappings taken last, if not written yet (tw_lock held). */
static void put_modules(void)
{
    if (tw.modules_len && put_block(MEMSCOPE_TRACE_MODULES, tw.modules, tw.modules_len) == 0)
        tw.modules_len = 0;
}

static void *writer_main(void *arg)
{
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    ms_self.guard++; /* forever: nothing this thread allocates is recorded */
    while (!__atomic_load_n(&tw.stop, __ATOMIC_ACQUIRE) && !tw.failed) {
        struct timespec ts = {0, MS_TRACE_POLL_NS};
        nanosleep(&ts, NULL);
        take_modules();
        pthread_mutex_lock(&tw_lock);
        put_modules();
        pass(0, 0);
        pthread_mutex_unlock(&tw_lock);
    }
    return NULL;
}

int ms_trace_running(void)
{
    return __atomic_load_n(&tw.active, __ATOMIC_ACQUIRE) && tw.pid == (pid_t)syscall(SYS_getpid);
}

/*
 * The folder (fold.c) brackets each fold with these. While a trace is
 * written, begin takes the writer's lock and writes every published record,
 * so the chunks the fold may reuse are on disk; ms_trace_may_reuse then
 * names those the writer is done with. Returns 1 when it took the lock.
 */
int ms_trace_fold_begin(void)
{
    if (!ms_trace_running())
        return 0;
    pthread_mutex_lock(&tw_lock);
    if (!tw.active) { /* the trace ended meanwhile (the library destructor) */
        pthread_mutex_unlock(&tw_lock);
        return 0;
    }
    if (!tw.failed)
        pass(1, 0);
    return 1;
}

void ms_trace_fold_end(int locked)
{
    if (locked)
        pthread_mutex_unlock(&tw_lock);
}

/*
 * Whether a fold may unlink chunk c and reuse it (tw_lock held, or no trace):
 * the writer has written it wholly and forgotten it, and it is not the chunk
 * where the writer's walk of new chunks stops (pass() walks from the head to
 * last_head, so that one must stay linked). A failed trace keeps nothing.
 */
int ms_trace_may_reuse(const struct memscope_chunk *c)
{
    if (!tw.active || tw.failed || tw.pid != (pid_t)syscall(SYS_getpid))
        return 1;
    if ((uint64_t)(uintptr_t)c == tw.last_head)
        return 0;
    return c->thread < tw.threads_cap && c->seq < tw.threads[c->thread].done_seq;
}

static void after_fork_child(void)
{
    tw.active = 0; /* the writer thread is the parent's */
    pthread_mutex_init(&tw_lock, NULL); /* the parent's folder may have held it */
}

__attribute__((constructor(103))) static void ms_trace_start(void)
{
    const char *path = secure_getenv("MEMSCOPE_TRACE");
    struct memscope_store_root *r = &memscope_store_root;
    struct memscope_trace_header h;

    if (!path || !*path)
        return;
    ms_runtime_init();
    ms_self.guard++;
    tw.block_cap = ms_trace_block_bound(ms_trace_events_bound(MS_TRACE_MAX_BLOCK));
    tw.raw = map_anon(ms_trace_events_bound(MS_TRACE_MAX_BLOCK));
    tw.texts = map_anon(MS_TRACE_TEXTS_RAW);
    tw.block = map_anon(tw.block_cap);
    tw.text_set = map_anon(MS_TRACE_TEXT_SLOTS * sizeof(uint64_t));
    tw.modules = map_anon(MS_TRACE_MODULES_RAW);
    tw.cctx = ZSTD_createCCtx();
    if (!tw.raw || !tw.texts || !tw.block || !tw.text_set || !tw.modules || !tw.cctx)
        goto fail;
    /* O_NONBLOCK: a FIFO nobody reads would otherwise hold the program in its constructor. */
    tw.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0644);
    if (tw.fd < 0)
        goto fail;
    fcntl(tw.fd, F_SETFL, fcntl(tw.fd, F_GETFL) & ~O_NONBLOCK);
    ms_trace_header_init(&h, (r->flags & MEMSCOPE_STORE_CLOCK_TSC) ? MEMSCOPE_TRACE_CLOCK_TSC : 0, r->pid,
                         r->clock_origin_ticks, r->clock_origin_ns, MS_TRACE_MAX_BLOCK);
    if (write_all(&h, sizeof(h)) != 0)
        goto fail_fd;
    take_modules();
    put_modules();
    tw.pid = (pid_t)syscall(SYS_getpid);
    /* An exec'd program (recorded with MEMSCOPE_FOLLOW_EXEC=1) would replace this file with its
     * own trace: empty the variable in place (no allocation), as process.c does with LD_PRELOAD. */
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "MEMSCOPE_TRACE=", 15) == 0)
            (*e)[15] = '\0';
    pthread_atfork(NULL, NULL, after_fork_child);
    if (pthread_create(&tw.thread, NULL, writer_main, NULL) != 0)
        goto fail_fd;
    tw.active = 1;
    ms_self.guard--;
    return;
fail_fd:
    close(tw.fd);
fail:
    ms_self.guard--; /* no trace; the program runs on, recorded as usual */
}

__attribute__((destructor(102))) static void ms_trace_finish(void)
{
    if (!tw.active || tw.pid != (pid_t)syscall(SYS_getpid))
        return;
    ms_self.guard++;
    __atomic_store_n(&tw.stop, 1, __ATOMIC_RELEASE);
    pthread_join(tw.thread, NULL);
    pthread_mutex_lock(&tw_lock); /* a fold in progress ends first */
    if (!tw.failed)
        pass(1, 1);
    __atomic_store_n(&tw.active, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&tw_lock);
    close(tw.fd);
    ms_self.guard--;
}
