/*
 * order.c - putting events into replay order.
 *
 * Each thread's records arrive in the order the thread wrote them, already
 * sorted by time except where a signal handler's event nested inside another
 * event. A thread's run is sorted stably (a natural merge sort: one O(n) pass
 * when it is already sorted), then the threads are merged by time: two to
 * four threads keep their heads sorted in registers (merge_few), one thread
 * and five or more go through a loser tree; the runs may arrive in pieces
 * (ms_merge_stream: the reader hands each thread's records over a window at
 * a time, so they are written once, already merged). At equal times across
 * threads a release comes before an allocation, so a block released by one
 * thread and reused by another at the same tick replays correctly; remaining
 * ties go to the lower thread index.
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

static int merge_tree(struct ms_run *runs, uint32_t nthreads, uint64_t total, ms_refill_fn refill, void *ctx,
                      struct ms_event *out);

/*
 * Two to four threads (the common case): the heads are kept sorted, so the
 * next event is always the first head's, and the only question an event
 * asks is whether its thread's next event still goes before the second head.
 * A head is summarised by one 64-bit key, the loser tree's key shifted left
 * two bits with the thread index below: one integer comparison then orders
 * by time, puts releases first and gives equal times to the lower thread, and
 * no two heads are equal. That needs times below 2^60 (37 years in ns); a
 * head beyond hands the rest over to the loser tree, which merges from any
 * point exactly as this would.
 *
 * Finely interleaved threads change the winner at random, so a branch on
 * "same thread again?" mispredicts a quarter of the time with four threads:
 * then the winner's next key is inserted among the other heads with
 * conditional moves only (three comparisons, all at once). Threads that run
 * in bursts make that branch predictable and cheaper than the insertion: a
 * thread's burst goes out in one stretch. Which of the two runs is chosen
 * every FEW_BLOCK events from how many events in the last block kept the
 * winner.
 */
#define FEW_TIME_LIMIT (UINT64_C(1) << 60) /* heads at or beyond go to the loser tree */
#define FEW_DONE (UINT64_MAX << 2)         /* key (with the thread index) of an exhausted thread */
#define FEW_BLOCK 4096u                    /* events between choices of the run */
#define FEW_BURSTY(stays) ((stays) * 4 >= FEW_BLOCK * 3) /* the winner kept 3 times in 4 or more: bursts */

/* c ? a : b for c 0 or 1, as arithmetic: the compiler keeps it free of
 * branches. Written as c ? a : b, GCC 12 -O2 makes branches of the inserts
 * (4 threads event by event, merge alone: ~5.9 -> ~8.4 ns an event). */
static inline uint64_t pick(uint64_t c, uint64_t a, uint64_t b)
{
    return b ^ ((a ^ b) & (0 - c));
}

static inline const struct ms_event *pick_ev(uint64_t c, const struct ms_event *a, const struct ms_event *b)
{
    return (const struct ms_event *)(uintptr_t)pick(c, (uintptr_t)a, (uintptr_t)b);
}

/* The key of thread w's head e; sets *big when e's time is beyond FEW_TIME_LIMIT. */
static inline uint64_t few_key(const struct ms_event *e, uint32_t w, uint64_t *big)
{
    uint64_t t = e->time;
    *big |= t;
    return t * 8 + (is_release(e->info) ? 0 : 4) + w;
}

/* The heads in order, k0 < k1 < k2 < k3 (those beyond S unused), with cursors. */
struct few_heads {
    uint64_t k0, k1, k2, k3;
    const struct ms_event *h0, *h1, *h2, *h3;
};

/* Puts thread k0 & 3's next event p with key nk among heads 1..S-1 (ci: nk
 * goes after head i), with conditional moves only. */
static inline __attribute__((always_inline)) void few_insert(struct few_heads *s, const uint32_t S, uint64_t nk,
                                                             const struct ms_event *p)
{
    uint64_t c1 = nk > s->k1, c2 = S > 2 && nk > s->k2, c3 = S > 3 && nk > s->k3;

    s->k0 = pick(c1, s->k1, nk);
    s->h0 = pick_ev(c1, s->h1, p);
    if (S == 2) {
        s->k1 = pick(c1, nk, s->k1);
        s->h1 = pick_ev(c1, p, s->h1);
        return;
    }
    s->k1 = pick(c2, s->k2, pick(c1, nk, s->k1));
    s->h1 = pick_ev(c2, s->h2, pick_ev(c1, p, s->h1));
    if (S == 3) {
        s->k2 = pick(c2, nk, s->k2);
        s->h2 = pick_ev(c2, p, s->h2);
        return;
    }
    s->k2 = pick(c3, s->k3, pick(c2, nk, s->k2));
    s->h2 = pick_ev(c3, s->h3, pick_ev(c2, p, s->h2));
    s->k3 = pick(c3, nk, s->k3);
    s->h3 = pick_ev(c3, p, s->h3);
}

/* Thread w's event went out and *p is its next: gets its next piece if the
 * one in hand ran out, and sets *nk to the new head's key (FEW_DONE + w when
 * none). Returns 0, 1 when the thread has no more or its head is beyond
 * FEW_TIME_LIMIT (a burst stops there), or refill's error. */
static inline __attribute__((always_inline)) int few_next(struct ms_run *runs, uint32_t w, const struct ms_event **p,
                                                          const struct ms_event **end, ms_refill_fn refill, void *ctx,
                                                          uint64_t *big, uint64_t *nk)
{
    if (__builtin_expect(*p == end[w], 0)) { /* the piece in hand ran out */
        int rc = next_piece(runs, w, *p, refill, ctx);
        if (rc != 0)
            return rc;
        *p = runs[w].p;
        end[w] = runs[w].pe;
        if (*p == end[w]) {
            *nk = FEW_DONE + w;
            return 1;
        }
    }
    *nk = few_key(*p, w, big);
    return *big >= FEW_TIME_LIMIT;
}

/*
 * Merges total events of S threads (2 to 4) from runs into out; end[w] is
 * the end of thread w's piece in hand. Returns as ms_merge_stream.
 */
static inline __attribute__((always_inline)) int merge_few(struct ms_run *runs, const uint32_t S, struct ms_event *out,
                                                           uint64_t total, ms_refill_fn refill, void *ctx)
{
    uint64_t k[4], n = 0, big = 0, stays = FEW_BLOCK;
    const struct ms_event *h[4], *end[4];
    struct few_heads s;
    uint32_t i, j;
    int rc;

    for (i = 0; i < 4; i++) {
        h[i] = i < S ? runs[i].p : NULL;
        end[i] = i < S ? runs[i].pe : NULL;
        k[i] = h[i] < end[i] ? few_key(h[i], i, &big) : FEW_DONE + i;
    }
    if (big >= FEW_TIME_LIMIT)
        goto tree;
    /* Sort the heads (insertion sort: at most four). */
    for (i = 1; i < S; i++)
        for (j = i; j > 0 && k[j] < k[j - 1]; j--) {
            uint64_t tk = k[j];
            const struct ms_event *th = h[j];
            k[j] = k[j - 1], h[j] = h[j - 1];
            k[j - 1] = tk, h[j - 1] = th;
        }
    s = (struct few_heads){k[0], k[1], k[2], k[3], h[0], h[1], h[2], h[3]};
    while (n < total) {
        uint64_t stop = total - n < FEW_BLOCK ? total : n + FEW_BLOCK;
        int bursty = FEW_BURSTY(stays);

        stays = 0;
        while (n < stop) {
            const struct ms_event *p = s.h0;
            uint32_t w = (uint32_t)(s.k0 & 3);
            uint64_t nk = FEW_DONE; /* set by few_next unless it fails */

            if (__builtin_expect(s.k0 >= FEW_DONE, 0))
                return -EIO; /* fewer events than promised */
            *out++ = *p++;
            n++;
            rc = few_next(runs, w, &p, end, refill, ctx, &big, &nk);
            if (bursty) { /* the rest of the burst in one stretch */
                uint64_t n0 = n;
                while (rc == 0 && nk < s.k1 && n < stop) {
                    *out++ = *p++;
                    n++;
                    rc = few_next(runs, w, &p, end, refill, ctx, &big, &nk);
                }
                stays += n - n0;
            }
            if (rc < 0)
                return rc;
            if (__builtin_expect(big >= FEW_TIME_LIMIT, 0)) {
                s.h0 = p; /* hand over with this head */
                goto hand_over;
            }
            stays += nk < s.k1;
            few_insert(&s, S, nk, p);
        }
    }
    return 0;
hand_over:
    k[0] = s.k0, k[1] = s.k1, k[2] = s.k2, k[3] = s.k3;
    h[0] = s.h0, h[1] = s.h1, h[2] = s.h2, h[3] = s.h3;
tree:
    for (i = 0; i < S; i++)
        if (k[i] < FEW_DONE)
            runs[k[i] & 3].p = h[i];
    return merge_tree(runs, S, total - n, refill, ctx, out);
}

#define MS_PROBE_ROUNDS 4096u /* rounds between checks of the loser tree's burst length */

/* Merges total events of any number of threads from runs into out; the runs
 * may have been merged from already (merge_few hands over). */
static int merge_tree(struct ms_run *runs, uint32_t nthreads, uint64_t total, ms_refill_fn refill, void *ctx,
                      struct ms_event *out)
{
    uint32_t k = 1, i, *tree = NULL, w;
    uint64_t *key = NULL, n;
    int rc = 0;

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

int ms_merge_stream(struct ms_run *runs, uint32_t nthreads, uint64_t total, ms_refill_fn refill, void *ctx,
                    struct ms_event *out)
{
    switch (nthreads) {
    case 2:
        return merge_few(runs, 2, out, total, refill, ctx);
    case 3:
        return merge_few(runs, 3, out, total, refill, ctx);
    case 4:
        return merge_few(runs, 4, out, total, refill, ctx);
    default:
        return merge_tree(runs, nthreads, total, refill, ctx, out);
    }
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
