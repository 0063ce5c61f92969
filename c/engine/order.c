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

/* Heap of thread cursors, ordered by their head event. */
struct cursor {
    const struct ms_event *cur; /* next event of this thread */
    const struct ms_event *end; /* one past its last */
};

static inline int cursor_before(const struct cursor *a, const struct cursor *b)
{
    return ms_event_before(a->cur, b->cur);
}

static void sift_down(struct cursor *heap, size_t n, size_t i)
{
    struct cursor x = heap[i];

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && cursor_before(&heap[c + 1], &heap[c]))
            c++;
        if (!cursor_before(&heap[c], &x))
            break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = x;
}

int ms_merge_threads(const struct ms_event *in, const uint64_t *starts, uint32_t nthreads, struct ms_event *out)
{
    struct cursor small[64];
    struct cursor *heap = small;
    size_t n = 0, i;
    struct ms_event *o = out;

    if (nthreads > 64) {
        heap = ms_engine_alloc(sizeof(*heap) * nthreads);
        if (!heap)
            return -ENOMEM;
    }
    for (i = 0; i < nthreads; i++) {
        if (starts[i] < starts[i + 1]) {
            heap[n].cur = in + starts[i];
            heap[n].end = in + starts[i + 1];
            n++;
        }
    }
    for (i = n; i-- > 0;)
        sift_down(heap, n, i);
    while (n > 1) {
        /* Take from the top thread while it stays ahead of both children:
         * long same-thread stretches cost one comparison per event. */
        struct cursor *top = &heap[0];
        const struct cursor *c1 = &heap[1];
        const struct cursor *c2 = n > 2 ? &heap[2] : NULL;
        const struct cursor *best = c2 && cursor_before(c2, c1) ? c2 : c1;
        const struct ms_event *limit = best->cur;
        do {
            *o++ = *top->cur++;
        } while (top->cur < top->end && ms_event_before(top->cur, limit));
        if (top->cur == top->end) {
            heap[0] = heap[--n];
        }
        sift_down(heap, n, 0);
    }
    if (n == 1) {
        size_t rest = (size_t)(heap[0].end - heap[0].cur);
        memcpy(o, heap[0].cur, rest * sizeof(*o));
    }
    if (heap != small)
        ms_engine_free(heap);
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
