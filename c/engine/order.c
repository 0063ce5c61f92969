/*
 * order.c - putting events into replay order.
 *
 * Each thread's records arrive in the order the thread wrote them, already
 * sorted by time except where a signal handler's event nested inside another
 * event. A thread's run is sorted stably (a natural merge sort: one O(n) pass
 * when it is already sorted), then the threads are merged by time: a
 * branch-free tournament held in registers for up to four threads, a loser
 * tree beyond; the runs may arrive in pieces (ms_merge_stream: the reader
 * hands each thread's records over a window at a time, so they are written
 * once, already merged). At equal times across threads a release comes before an
 * allocation, so a block released by one thread and reused by another at the
 * same tick replays correctly; remaining ties go to the lower thread index.
 * No libc qsort: it may call malloc, which the in-process engine must avoid.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

static inline int is_release(uint32_t info)
{
    unsigned k = MS_EV_KIND(info);
    return k == MEMSCOPE_REC_FREE || k == MEMSCOPE_REC_REALLOC_FREE;
}

/* Merges sorted src[lo, mid) and src[mid, hi) into dst[lo, hi), stably by time. */
static void merge_runs(const struct ms_event *src, struct ms_event *dst, size_t lo, size_t mid, size_t hi)
{
    size_t i = lo, j = mid, k = lo;

    while (i < mid && j < hi) {
        if (src[j].time < src[i].time)
            dst[k++] = src[j++];
        else
            dst[k++] = src[i++];
    }
    while (i < mid)
        dst[k++] = src[i++];
    while (j < hi)
        dst[k++] = src[j++];
}

void ms_sort_thread_events(struct ms_event *ev, size_t n, struct ms_event *tmp)
{
    size_t width;
    struct ms_event *src = ev, *dst = tmp;
    size_t i;

    for (i = 1; i < n; i++)
        if (ev[i].time < ev[i - 1].time)
            break;
    if (i >= n)
        return; /* already monotonic: the common case */
    /* Bottom-up merge sort, stable; runs of 1 to start (n log n worst case). */
    for (width = 1; width < n; width *= 2) {
        for (i = 0; i < n; i += 2 * width) {
            size_t mid = i + width < n ? i + width : n;
            size_t hi = i + 2 * width < n ? i + 2 * width : n;
            if (mid >= hi || src[mid - 1].time <= src[mid].time)
                memcpy(dst + i, src + i, (hi - i) * sizeof(*src)); /* already in order */
            else
                merge_runs(src, dst, i, mid, hi);
        }
        struct ms_event *t = src;
        src = dst;
        dst = t;
    }
    if (src != ev)
        memcpy(ev, src, n * sizeof(*ev));
}

/*
 * The k-way merge is a loser tree (tournament): each event out costs one
 * comparison per tree level, made without branches, against the loser stored
 * at that level. A thread's head is summarised by a 64-bit key, time * 2 plus
 * 1 for anything but a release, so one integer comparison orders by time and
 * puts releases first; equal keys go to the lower leaf, that is the lower
 * thread index. Times are clamped below 2^63 so the key cannot overflow.
 */
#define KEY_DONE UINT64_MAX /* key of an exhausted thread */

static inline uint64_t head_key(const struct ms_event *e)
{
    uint64_t t = e->time < (UINT64_C(1) << 62) ? e->time : (UINT64_C(1) << 62);
    return t * 2 + (is_release(e->info) ? 0 : 1);
}

/* Non-zero when leaf a's head goes before leaf b's. */
static inline int beats(const uint64_t *key, uint32_t a, uint32_t b)
{
    return (key[a] < key[b]) | ((key[a] == key[b]) & (a < b));
}

/*
 * Gets run w its next piece after the one in hand ran out (a reader streaming
 * a thread's records in pieces). Returns 0 or a negative errno; a thread
 * with nothing more keeps p == pe.
 */
static int next_piece(struct ms_run *runs, uint32_t w, const struct ms_event *p, ms_refill_fn refill, void *ctx)
{
    runs[w].p = p;
    if (!refill || p != runs[w].pe)
        return 0;
    return refill(ctx, w, &runs[w]);
}

/*
 * Up to four threads (the common case): the four heads' keys and cursors live
 * in registers and the winner is a branch-free tournament, so an event costs
 * a few conditional moves and no mispredicted branch however finely the
 * threads interleave. Ties go to the lower index. Unused inputs are empty.
 */
static int merge4(struct ms_run *runs, uint32_t nthreads, struct ms_event *out, uint64_t total, ms_refill_fn refill,
                  void *ctx)
{
    static const struct ms_event none;
    const struct ms_event *c0, *c1, *c2, *c3, *e0, *e1, *e2, *e3;
    uint64_t k0, k1, k2, k3, n;
    int rc;

#define MERGE4_INIT(i)                                                    \
    if ((i) < nthreads && runs[i].p < runs[i].pe) {                       \
        c##i = runs[i].p;                                                 \
        e##i = runs[i].pe;                                                \
        k##i = head_key(c##i);                                            \
    } else {                                                              \
        c##i = e##i = &none;                                              \
        k##i = KEY_DONE;                                                  \
    }
    MERGE4_INIT(0)
    MERGE4_INIT(1)
    MERGE4_INIT(2)
    MERGE4_INIT(3)
#undef MERGE4_INIT
    for (n = 0; n < total;) {
        int a = k1 < k0, b = k3 < k2;
        uint64_t m01 = a ? k1 : k0, m23 = b ? k3 : k2;
        uint64_t x01 = a ? k0 : k1, x23 = b ? k2 : k3; /* the pairs' losers */
        int hi = m23 < m01;
        const struct ms_event *lo_c = a ? c1 : c0, *hi_c = b ? c3 : c2;
        const struct ms_event *lo_e = a ? e1 : e0, *hi_e = b ? e3 : e2;
        const struct ms_event *p = hi ? hi_c : lo_c, *pe = hi ? hi_e : lo_e;
        unsigned w = hi ? 2u + (unsigned)b : (unsigned)a;
        /* The best of the others: the winner keeps the lead while strictly
         * ahead of it (an equal key goes back to the tournament's tie rule). */
        uint64_t other = hi ? (x23 < m01 ? x23 : m01) : (x01 < m23 ? x01 : m23);
        uint64_t nk;

        if (__builtin_expect((hi ? m23 : m01) == KEY_DONE, 0))
            return -EIO; /* fewer events than promised */
        do { /* a thread's burst goes out in one stretch */
            *out++ = *p++;
            n++;
            nk = p < pe ? head_key(p) : KEY_DONE;
        } while (nk < other);
        if (__builtin_expect(p == pe && refill != NULL, 0)) { /* the piece in hand ran out */
            rc = next_piece(runs, w, p, refill, ctx);
            if (rc != 0)
                return rc;
            p = runs[w].p;
            pe = runs[w].pe;
            nk = p < pe ? head_key(p) : KEY_DONE;
            e0 = w == 0 ? pe : e0;
            e1 = w == 1 ? pe : e1;
            e2 = w == 2 ? pe : e2;
            e3 = w == 3 ? pe : e3;
        }
        c0 = w == 0 ? p : c0;
        c1 = w == 1 ? p : c1;
        c2 = w == 2 ? p : c2;
        c3 = w == 3 ? p : c3;
        k0 = w == 0 ? nk : k0;
        k1 = w == 1 ? nk : k1;
        k2 = w == 2 ? nk : k2;
        k3 = w == 3 ? nk : k3;
    }
    return 0;
}

#define MS_PROBE_ROUNDS 4096u /* rounds between checks of the loser tree's burst length */

int ms_merge_stream(struct ms_run *runs, uint32_t nthreads, uint64_t total, ms_refill_fn refill, void *ctx,
                    struct ms_event *out)
{
    uint32_t k = 1, i, *tree = NULL, w;
    uint64_t *key = NULL, n;
    int rc = 0;

    if (nthreads <= 4)
        return merge4(runs, nthreads, out, total, refill, ctx);
    while (k < nthreads)
        k *= 2;
    /* tree[1..k-1] losers, tree[0] unused; key per leaf. */
    key = ms_engine_alloc((size_t)k * (sizeof(*tree) + sizeof(*key)));
    if (!key)
        return -ENOMEM;
    tree = (uint32_t *)(key + k);
    for (i = 0; i < k; i++)
        key[i] = i < nthreads && runs[i].p < runs[i].pe ? head_key(runs[i].p) : KEY_DONE;
    /* Build: play the tournament bottom-up; winners move up, losers stay. */
    {
        uint32_t *win = ms_engine_alloc(2 * (size_t)k * sizeof(*win));
        if (!win) {
            ms_engine_free(key);
            return -ENOMEM;
        }
        for (i = 0; i < k; i++)
            win[k + i] = i;
        for (i = k - 1; i >= 1; i--) {
            uint32_t a = win[2 * i], b = win[2 * i + 1];
            int ab = beats(key, a, b);
            win[i] = ab ? a : b;
            tree[i] = ab ? b : a;
        }
        w = win[1];
        ms_engine_free(win);
    }
    /* Each node keeps its loser's key beside its index: the climb then needs
     * no load that depends on the comparison before it. */
    {
        struct node {
            uint64_t key;  /* the loser's head key */
            uint32_t leaf; /* the loser */
        } *nodes = ms_engine_alloc((size_t)k * sizeof(*nodes));
        uint64_t wkey = key[w];
        if (!nodes) {
            ms_engine_free(key);
            return -ENOMEM;
        }
        for (i = 1; i < k; i++) {
            nodes[i].key = key[tree[i]];
            nodes[i].leaf = tree[i];
        }
        uint64_t rounds = 0, probe_n = 0;
        int search = 1;
        for (n = 0; n < total;) {
            uint32_t node;
            const struct ms_event *p, *pe;
            uint64_t other = KEY_DONE;
            if (__builtin_expect(wkey == KEY_DONE, 0)) {
                rc = -EIO; /* fewer events than promised */
                break;
            }
            p = runs[w].p;
            pe = runs[w].pe;
            /* The runner-up lost only to the winner, so it is on the winner's
             * path: the winner keeps the lead while strictly ahead of it.
             * With many threads finely interleaved the search costs more than
             * the bursts save: then one event per round (see below). */
            if (search)
                for (node = (w + k) >> 1; node >= 1; node >>= 1)
                    other = nodes[node].key < other ? nodes[node].key : other;
            else
                other = 0;
            do {
                *out++ = *p++;
                n++;
                wkey = p < pe ? head_key(p) : KEY_DONE;
            } while (wkey < other);
            runs[w].p = p;
            /* Beyond 16 threads, every MS_PROBE_ROUNDS rounds: searching on
             * while bursts average 3/2 events or more; once off, back on for
             * one stretch in 16 to see whether bursts came back. (Up to 16
             * threads, measured: searching always costs no more.) */
            if (__builtin_expect(++rounds % MS_PROBE_ROUNDS == 0, 0) && k > 16) {
                if (search)
                    search = (n - probe_n) * 2 >= 3 * MS_PROBE_ROUNDS;
                else
                    search = rounds % (16 * MS_PROBE_ROUNDS) == 0;
                probe_n = n;
            }
            if (__builtin_expect(p == pe && refill != NULL, 0)) { /* the piece in hand ran out */
                rc = next_piece(runs, w, p, refill, ctx);
                if (rc != 0)
                    break;
                wkey = runs[w].p < runs[w].pe ? head_key(runs[w].p) : KEY_DONE;
            }
            for (node = (w + k) >> 1; node >= 1; node >>= 1) {
                uint64_t lk = nodes[node].key;
                uint32_t l = nodes[node].leaf;
                int lose = (lk < wkey) | ((lk == wkey) & (l < w)); /* the stored loser now wins */
                nodes[node].key = lose ? wkey : lk;
                nodes[node].leaf = lose ? w : l;
                wkey = lose ? lk : wkey;
                w = lose ? l : w;
            }
        }
        ms_engine_free(nodes);
    }
    ms_engine_free(key);
    return rc;
}

int ms_merge_threads(const struct ms_event *in, const uint64_t *starts, uint32_t nthreads, struct ms_event *out)
{
    struct ms_run *runs = ms_engine_alloc((size_t)(nthreads ? nthreads : 1) * sizeof(*runs));
    uint32_t i;
    int rc;

    if (!runs)
        return -ENOMEM;
    for (i = 0; i < nthreads; i++) {
        runs[i].p = in + starts[i];
        runs[i].pe = in + starts[i + 1];
    }
    rc = ms_merge_stream(runs, nthreads, starts[nthreads] - starts[0], NULL, NULL, out);
    ms_engine_free(runs);
    return rc;
}

/* ---- generic stable merge sort ---- */

static void msort_rec(char *a, char *tmp, size_t n, size_t size, int (*cmp)(const void *, const void *, void *),
                      void *ctx)
{
    size_t h, i, j, k;

    if (n < 2)
        return;
    if (n <= 8) { /* insertion sort for small runs */
        for (i = 1; i < n; i++) {
            memcpy(tmp, a + i * size, size);
            for (j = i; j > 0 && cmp(a + (j - 1) * size, tmp, ctx) > 0; j--)
                memcpy(a + j * size, a + (j - 1) * size, size);
            memcpy(a + j * size, tmp, size);
        }
        return;
    }
    h = n / 2;
    msort_rec(a, tmp, h, size, cmp, ctx);
    msort_rec(a + h * size, tmp, n - h, size, cmp, ctx);
    if (cmp(a + (h - 1) * size, a + h * size, ctx) <= 0)
        return;
    memcpy(tmp, a, h * size);
    i = 0, j = h, k = 0;
    while (i < h && j < n) {
        if (cmp(a + j * size, tmp + i * size, ctx) < 0)
            memcpy(a + (k++) * size, a + (j++) * size, size);
        else
            memcpy(a + (k++) * size, tmp + (i++) * size, size);
    }
    while (i < h)
        memcpy(a + (k++) * size, tmp + (i++) * size, size);
}

int ms_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *, void *), void *ctx)
{
    char *tmp;

    if (n < 2)
        return 0;
    tmp = ms_engine_alloc((n / 2 + 1) * size);
    if (!tmp)
        return -ENOMEM;
    msort_rec(base, tmp, n, size, cmp, ctx);
    ms_engine_free(tmp);
    return 0;
}
