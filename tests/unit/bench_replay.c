/*
 * bench_replay.c - engine replay benchmark.
 *
 * Builds a synthetic store in this process's memory (a real root, real
 * chunks, records as the runtime writes them) from a simulated workload:
 * several threads, mixed sizes, LIFO-ish frees, a share of realloc and of
 * cross-thread frees, address reuse through per-thread free lists, and a few
 * hundred thousand live blocks. Then times memscope_history_open (read +
 * order + merge) and memscope_history_snapshot at the end (replay + snapshot
 * build), each the median of several runs, and prints M events/s.
 *
 * BURST 1 (the default) picks each event's thread at random: threads
 * interleave event by event, the merge's worst case. BURST N > 1 lets a
 * thread run for N events on average (a geometric run length) before another
 * takes over, as threads of real programs do between scheduling, locks and
 * I/O; each thread then frees mostly its own blocks (1 in 10 another
 * thread's), from its own LIFO-ish live set.
 *
 * Usage: bench_replay [EVENTS [THREADS [LIVE [RUNS [BURST]]]]]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memscope/engine.h"
#include "memscope/store_abi.h"

#define CHUNK_CAP 65536u

static uint64_t rng = 0x9e3779b97f4a7c15u;

static inline uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int mem_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    memcpy(buf, (const void *)(uintptr_t)addr, len);
    return 0;
}

struct thread_sim {
    struct memscope_chunk *chunk; /* current chunk */
    uint32_t seq;
    uint64_t arena;     /* bump pointer of its simulated arena */
    uint64_t *freelist[16]; /* per size class, LIFO of freed addresses */
    size_t nfree[16];
    size_t capfree[16];
};

struct live { uint64_t addr; uint64_t size; uint32_t thread; };

static struct memscope_store_root root;
static struct thread_sim sims[64];

static void emit(uint32_t t, unsigned kind, uint64_t time, uint64_t addr, uint64_t size)
{
    struct thread_sim *s = &sims[t - 1];
    struct memscope_record *r;

    if (!s->chunk || s->chunk->count == s->chunk->capacity) {
        size_t map = sizeof(struct memscope_chunk) + (size_t)CHUNK_CAP * sizeof(struct memscope_record);
        struct memscope_chunk *c = aligned_alloc(4096, map);
        memset(c, 0, sizeof(*c));
        c->magic = MEMSCOPE_CHUNK_MAGIC;
        c->next = root.chunks;
        c->thread_prev = (uint64_t)(uintptr_t)s->chunk;
        c->capacity = CHUNK_CAP;
        c->map_size = map;
        c->thread = t;
        c->seq = s->chunk ? s->seq + 1 : 0;
        s->seq = c->seq;
        c->tid = 5000 + t;
        root.chunks = (uint64_t)(uintptr_t)c;
        root.chunk_count++;
        root.chunk_bytes += map;
        s->chunk = c;
    }
    r = (struct memscope_record *)(s->chunk + 1) + s->chunk->count++;
    r->time = time;
    r->address = addr;
    r->size = size;
    r->stack = 0;
    r->info = MEMSCOPE_RECORD_INFO(kind, t);
}

static unsigned size_class(uint64_t size)
{
    unsigned c = 0;
    while ((16u << c) < size && c < 15)
        c++;
    return c;
}

static uint64_t sim_malloc(uint32_t t, uint64_t size)
{
    struct thread_sim *s = &sims[t - 1];
    unsigned c = size_class(size);

    if (s->nfree[c])
        return s->freelist[c][--s->nfree[c]];
    uint64_t a = s->arena;
    s->arena += ((uint64_t)16 << c) + 16;
    return a;
}

static void sim_free(uint32_t t, uint64_t addr, uint64_t size)
{
    struct thread_sim *s = &sims[t - 1];
    unsigned c = size_class(size);

    if (s->nfree[c] == s->capfree[c]) {
        s->capfree[c] = s->capfree[c] ? s->capfree[c] * 2 : 1024;
        s->freelist[c] = realloc(s->freelist[c], s->capfree[c] * sizeof(uint64_t));
    }
    s->freelist[c][s->nfree[c]++] = addr;
}

static uint64_t rand_size(void)
{
    uint64_t r = next_rand();
    unsigned k = (unsigned)(r % 100);
    if (k < 60)
        return 8 + (r >> 8) % 120;
    if (k < 90)
        return 128 + (r >> 8) % 900;
    if (k < 99)
        return 1024 + (r >> 8) % 16000;
    return 65536 + (r >> 8) % 1000000;
}

/* The root of an empty store, and each thread's arena. */
static void store_init(uint32_t threads)
{
    uint32_t t;

    memcpy(root.magic, MEMSCOPE_STORE_MAGIC, MEMSCOPE_STORE_MAGIC_SIZE);
    root.abi_version = MEMSCOPE_STORE_ABI_VERSION;
    root.root_size = sizeof(root);
    root.record_size = sizeof(struct memscope_record);
    root.chunk_header_size = sizeof(struct memscope_chunk);
    root.pid = 1;
    root.budget_bytes = UINT64_MAX;
    for (t = 0; t < threads; t++)
        sims[t].arena = UINT64_C(0x7f0000000000) + (uint64_t)t * UINT64_C(0x10000000000);
}

static void build(uint64_t events, uint32_t threads, uint64_t target_live)
{
    struct live *live = malloc(sizeof(*live) * (target_live * 2 + 16));
    size_t nlive = 0;
    uint64_t time = 1000, n = 0;

    store_init(threads);
    while (n < events) {
        uint64_t r = next_rand();
        uint32_t th = 1 + (uint32_t)(r % threads);
        unsigned op = (unsigned)((r >> 16) % 100);
        /* Warm up to the target, then hover around it. */
        int grow = nlive < target_live ? op < 70 : op < 45;
        if (nlive >= target_live * 2)
            grow = 0;
        time += 5 + (r >> 40) % 30;
        if (grow || nlive == 0) {
            uint64_t size = rand_size();
            uint64_t a = sim_malloc(th, size);
            emit(th, MEMSCOPE_REC_ALLOC, time, a, size);
            live[nlive].addr = a;
            live[nlive].size = size;
            live[nlive].thread = th;
            nlive++;
            n++;
        } else {
            /* LIFO-ish: most frees hit recent blocks, some random ones. */
            size_t i = (op % 10) < 7 ? nlive - 1 - (size_t)((r >> 24) % (nlive < 16 ? nlive : 16))
                                     : (size_t)((r >> 24) % nlive);
            struct live b = live[i];
            live[i] = live[--nlive];
            /* Most frees by the allocating thread, 1 in 10 by another one. */
            if ((r >> 56) % 10 != 0)
                th = b.thread;
            /* 1 in 20: a realloc instead of a free */
            if ((op % 20) == 1 && n + 2 <= events) {
                uint64_t ns = rand_size();
                uint64_t na;
                emit(th, MEMSCOPE_REC_REALLOC_FREE, time, b.addr, 0);
                sim_free(th, b.addr, b.size);
                na = sim_malloc(th, ns);
                time += 3;
                emit(th, MEMSCOPE_REC_REALLOC_ALLOC, time, na, ns);
                live[nlive].addr = na;
                live[nlive].size = ns;
                live[nlive].thread = th;
                nlive++;
                n += 2;
            } else {
                emit(th, MEMSCOPE_REC_FREE, time, b.addr, 0);
                sim_free(th, b.addr, b.size);
                n++;
            }
        }
    }
    free(live);
}

/* Bursty workload: per-thread live sets, a thread runs for a geometric number
 * of events (mean burst) before another one takes over. */
static void build_bursty(uint64_t events, uint32_t threads, uint64_t target_live, uint64_t burst)
{
    struct live *live[64];
    size_t nlive[64] = {0}, cap = target_live * 2 + 16, total = 0;
    uint64_t time = 1000, n = 0;
    uint32_t t, th = 1;

    store_init(threads);
    for (t = 0; t < threads; t++)
        live[t] = malloc(sizeof(**live) * cap);
    while (n < events) {
        uint64_t r = next_rand();
        unsigned op = (unsigned)((r >> 16) % 100);
        int grow = total < target_live ? op < 70 : op < 45;
        struct live *mine;
        size_t *nm;

        if (next_rand() % burst == 0)
            th = 1 + (uint32_t)(next_rand() % threads);
        mine = live[th - 1];
        nm = &nlive[th - 1];
        if (total >= target_live * 2 || *nm + 1 >= cap)
            grow = 0;
        time += 5 + (r >> 40) % 30;
        if (grow || total == 0) {
            uint64_t size = rand_size();
            uint64_t a = sim_malloc(th, size);
            emit(th, MEMSCOPE_REC_ALLOC, time, a, size);
            mine[*nm].addr = a;
            mine[*nm].size = size;
            mine[*nm].thread = th;
            (*nm)++;
            total++;
            n++;
        } else {
            /* 1 in 10 frees takes another thread's block (any thread with some). */
            uint32_t from = th;
            size_t i;
            struct live b;
            if ((r >> 56) % 10 == 0 || *nm == 0) {
                from = 1 + (uint32_t)(next_rand() % threads);
                while (nlive[from - 1] == 0)
                    from = from % threads + 1;
            }
            struct live *set = live[from - 1];
            size_t *ns = &nlive[from - 1];
            i = (op % 10) < 7 ? *ns - 1 - (size_t)((r >> 24) % (*ns < 16 ? *ns : 16)) : (size_t)((r >> 24) % *ns);
            b = set[i];
            set[i] = set[--*ns];
            total--;
            if ((op % 20) == 1 && n + 2 <= events && *nm + 1 < cap) {
                uint64_t nsz = rand_size();
                uint64_t na;
                emit(th, MEMSCOPE_REC_REALLOC_FREE, time, b.addr, 0);
                sim_free(th, b.addr, b.size);
                na = sim_malloc(th, nsz);
                time += 3;
                emit(th, MEMSCOPE_REC_REALLOC_ALLOC, time, na, nsz);
                mine[*nm].addr = na;
                mine[*nm].size = nsz;
                mine[*nm].thread = th;
                (*nm)++;
                total++;
                n += 2;
            } else {
                emit(th, MEMSCOPE_REC_FREE, time, b.addr, 0);
                sim_free(th, b.addr, b.size);
                n++;
            }
        }
    }
    for (t = 0; t < threads; t++)
        free(live[t]);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this thread (the engine is single-threaded): less disturbed
 * than wall time when other work shares the machine. */
static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void row(const char *name, double wall, double cpu_s, uint64_t events)
{
    printf("%-26s %9.1f %11.1f %9.1f %11.1f\n", name, wall * 1e3, (double)events / wall / 1e6, cpu_s * 1e3,
           (double)events / cpu_s / 1e6);
}

int main(int argc, char **argv)
{
    uint64_t events = argc > 1 ? strtoull(argv[1], NULL, 0) : 10000000u;
    uint32_t threads = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 4;
    uint64_t live = argc > 3 ? strtoull(argv[3], NULL, 0) : 300000u;
    int runs = argc > 4 ? atoi(argv[4]) : 5, i;
    uint64_t burst = argc > 5 ? strtoull(argv[5], NULL, 0) : 1;
    struct memscope_source src = {mem_read, NULL};
    double t_open[64], t_snap[64], t_both[64], c_open[64], c_snap[64], c_both[64];
    struct memscope_stats st;
    struct memscope_history_info info;

    if (threads < 1 || threads > 64 || runs < 1 || runs > 64 || burst < 1) {
        fprintf(stderr, "usage: bench_replay [EVENTS [THREADS(1-64) [LIVE [RUNS(1-64) [BURST(>=1)]]]]]\n");
        return 2;
    }
    if (burst > 1)
        build_bursty(events, threads, live, burst);
    else
        build(events, threads, live);
    for (i = 0; i < runs; i++) {
        struct memscope_history *h = NULL;
        struct memscope_snapshot *snap = NULL;
        struct memscope_error err;
        double t0 = now(), c0 = cpu(), t1, t2, c1, c2;
        int rc = memscope_history_open(&src, (uint64_t)(uintptr_t)&root, &h, &err);
        if (rc != 0) {
            fprintf(stderr, "bench_replay: open: %s\n", err.message);
            return 1;
        }
        t1 = now();
        c1 = cpu();
        rc = memscope_history_snapshot(h, NULL, &snap);
        t2 = now();
        c2 = cpu();
        if (rc != 0) {
            fprintf(stderr, "bench_replay: snapshot: %s\n", memscope_strerror(rc));
            return 1;
        }
        t_open[i] = t1 - t0;
        t_snap[i] = t2 - t1;
        t_both[i] = t2 - t0;
        c_open[i] = c1 - c0;
        c_snap[i] = c2 - c1;
        c_both[i] = c2 - c0;
        memscope_snapshot_stats(snap, &st);
        memscope_history_info(h, &info);
        memscope_snapshot_free(snap);
        memscope_history_close(h);
    }
    qsort(t_open, (size_t)runs, sizeof(double), cmp_double);
    qsort(t_snap, (size_t)runs, sizeof(double), cmp_double);
    qsort(t_both, (size_t)runs, sizeof(double), cmp_double);
    qsort(c_open, (size_t)runs, sizeof(double), cmp_double);
    qsort(c_snap, (size_t)runs, sizeof(double), cmp_double);
    qsort(c_both, (size_t)runs, sizeof(double), cmp_double);
    printf("events %" PRIu64 ", threads %u, live blocks at end %" PRIu64 ", peak %" PRIu64 " bytes, "
           "unmatched %" PRIu64 ", overlapping %" PRIu64 ", burst %" PRIu64 ", runs %d (median)\n",
           info.events, info.threads, st.active_allocations, st.peak_memory, st.unmatched_deallocations,
           st.overlapping_allocations, burst, runs);
    printf("                             wall ms  M events/s    cpu ms  M events/s (cpu)\n");
    row("history_open (read+merge)", t_open[runs / 2], c_open[runs / 2], info.events);
    row("snapshot (replay)", t_snap[runs / 2], c_snap[runs / 2], info.events);
    row("together", t_both[runs / 2], c_both[runs / 2], info.events);
    return 0;
}
