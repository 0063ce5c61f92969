/*
 * order.c - putting events into replay order.
 *
 * Each thread's records arrive in the order the thread wrote them, already
 * sorted by time except where a signal handler's event nested inside another
 * event. A thread's run is sorted stably (a natural merge sort: one O(n) pass
 * when it is already sorted), then the threads are merged by time with a
 * binary heap. At equal times across threads a release comes before an
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

int ms_event_before(const struct ms_event *a, const struct ms_event *b)
{
    if (a->time != b->time)
        return a->time < b->time;
    if (is_release(a->info) != is_release(b->info))
        return is_release(a->info);
    return MS_EV_THREAD(a->info) < MS_EV_THREAD(b->info);
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
 * Few threads (the common case): the heads' keys sit in a small array and the
 * winner is a branch-free tournament over all of them each time, so no
 * comparison waits on the one before it. Ties go to the lower index.
 */
#define MERGE_SMALL(K)                                                                     \
    static void merge_small_##K(const struct ms_event *in, const uint64_t *starts,         \
                                uint32_t nthreads, struct ms_event *out, uint64_t total)   \
    {                                                                                      \
        const struct ms_event *cur[K], *end[K];                                            \
        uint64_t key[K], n;                                                                \
        uint32_t i;                                                                        \
        for (i = 0; i < K; i++) {                                                          \
            if (i < nthreads && starts[i] < starts[i + 1]) {                               \
                cur[i] = in + starts[i];                                                   \
                end[i] = in + starts[i + 1];                                               \
                key[i] = head_key(cur[i]);                                                 \
            } else {                                                                       \
                cur[i] = end[i] = NULL;                                                    \
                key[i] = KEY_DONE;                                                         \
            }                                                                              \
        }                                                                                  \
        for (n = 0; n < total; n++) {                                                      \
            uint32_t idx[K], m = K, j;                                                     \
            uint64_t kv[K];                                                                \
            for (j = 0; j < K; j++)                                                        \
                idx[j] = j, kv[j] = key[j];                                                \
            while (m > 1) { /* pairwise rounds: left wins ties (lower index) */           \
                for (j = 0; j < m / 2; j++) {                                              \
                    int r = kv[2 * j + 1] < kv[2 * j];                                     \
                    idx[j] = r ? idx[2 * j + 1] : idx[2 * j];                              \
                    kv[j] = r ? kv[2 * j + 1] : kv[2 * j];                                 \
                }                                                                          \
                m /= 2;                                                                    \
            }                                                                              \
            uint32_t w = idx[0];                                                           \
            *out++ = *cur[w]++;                                                            \
            key[w] = cur[w] < end[w] ? head_key(cur[w]) : KEY_DONE;                        \
        }                                                                                  \
    }
MERGE_SMALL(2)
MERGE_SMALL(4)
MERGE_SMALL(8)

int ms_merge_threads(const struct ms_event *in, const uint64_t *starts, uint32_t nthreads, struct ms_event *out)
{
    uint32_t k = 1, i, *tree = NULL, w;
    const struct ms_event **cur = NULL, **end = NULL;
    uint64_t *key = NULL, total = starts[nthreads] - starts[0], n;
    void *mem;

    if (nthreads <= 2) {
        merge_small_2(in, starts, nthreads, out, total);
        return 0;
    }
    if (nthreads <= 4) {
        merge_small_4(in, starts, nthreads, out, total);
        return 0;
    }
    if (nthreads <= 8) {
        merge_small_8(in, starts, nthreads, out, total);
        return 0;
    }
    while (k < nthreads)
        k *= 2;
    /* tree[1..k-1] losers, tree[0] unused; key/cur/end per leaf. */
    mem = ms_engine_alloc((size_t)k * (sizeof(*tree) + sizeof(*key) + 2 * sizeof(*cur)));
    if (!mem)
        return -ENOMEM;
    key = mem;
    cur = (const struct ms_event **)(key + k);
    end = cur + k;
    tree = (uint32_t *)(end + k);
    for (i = 0; i < k; i++) {
        if (i < nthreads && starts[i] < starts[i + 1]) {
            cur[i] = in + starts[i];
            end[i] = in + starts[i + 1];
            key[i] = head_key(cur[i]);
        } else {
            cur[i] = end[i] = NULL;
            key[i] = KEY_DONE;
        }
    }
    /* Build: play the tournament bottom-up; winners move up, losers stay. */
    {
        uint32_t *win = ms_engine_alloc(2 * (size_t)k * sizeof(*win));
        if (!win) {
            ms_engine_free(mem);
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
    for (n = 0; n < total; n++) {
        uint32_t node;
        *out++ = *cur[w]++;
        key[w] = cur[w] < end[w] ? head_key(cur[w]) : KEY_DONE;
        for (node = (w + k) >> 1; node >= 1; node >>= 1) {
            uint32_t l = tree[node];
            int lose = beats(key, l, w); /* the stored loser now wins */
            tree[node] = lose ? w : l;
            w = lose ? l : w;
        }
    }
    ms_engine_free(mem);
    return 0;
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
