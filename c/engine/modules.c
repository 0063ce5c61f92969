/*
 * modules.c - the file mappings a recorded process had (MODULES payloads,
 * trace_abi.h): what a front end needs to name return addresses from the
 * files on disk once the process is gone. A trace holds one payload per
 * change of the process's shared objects, an exit image one beside it.
 *
 * A set is built from payloads in the order they were written: the entries
 * of a later payload replace the earlier entries they overlap (a library
 * unloaded, another mapped where it was), so return addresses of a library
 * that was unloaded meanwhile still find it unless its range was reused.
 * A trace reader appends its payloads (ms_modules_append) and settles the
 * set once at the end (ms_modules_settle), in O(n log n) for all of them.
 * Every field is checked against the payload; nothing is trusted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "memscope/trace.h"
#include "memscope/trace_abi.h"

struct memscope_modules {
    struct memscope_module *list; /* by address once settled; payloads appended since follow */
    uint32_t *seq;                /* per entry: the payload it came from (0: settled) */
    size_t n, cap;
    uint32_t next_seq;            /* the next payload's number (from 1) */
    size_t settled;               /* list[0, settled) is sorted and holds no entry another replaces */
};

static int by_start(const void *a, const void *b)
{
    const struct memscope_module *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int grow(struct memscope_modules *s, size_t need)
{
    size_t cap = s->cap ? s->cap : 64;
    void *list, *seq;

    if (need <= s->cap && s->list)
        return 0; /* (a payload of no entries still needs a list to append them to) */
    while (cap < need)
        cap *= 2;
    list = ms_engine_realloc(s->list, cap * sizeof(*s->list));
    if (!list)
        return -ENOMEM;
    s->list = list;
    seq = ms_engine_realloc(s->seq, cap * sizeof(*s->seq));
    if (!seq)
        return -ENOMEM;
    s->seq = seq;
    s->cap = cap;
    return 0;
}

/* Index of x in the sorted distinct xs[0, n) (x is there). */
static size_t coord(const uint64_t *xs, size_t n, uint64_t x)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (xs[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * Drops every entry that a later payload's entry overlaps, then sorts the
 * rest by address. Done once for all the payloads added since the last time
 * (a trace may hold thousands of MODULES blocks): replacing entries payload
 * by payload costs the whole list each time, and a trace of a few MB made of
 * one long list and many one-entry blocks took minutes. Here an entry is
 * dropped when the highest payload number painted over the addresses it
 * spans is above its own: the addresses are cut at every entry's bounds,
 * each entry paints its number over its span in a segment tree (the largest
 * stays), and each entry asks for the largest over its span. O(n log n).
 * 0 or -ENOMEM (the set unchanged).
 */
static int settle(struct memscope_modules *s)
{
    uint64_t *xs = NULL;
    uint32_t *t = NULL;
    size_t nx = 0, size = 1, i, keep = 0;

    if (s->settled == s->n)
        return 0;
    xs = ms_engine_alloc(2 * s->n * sizeof(*xs));
    if (!xs)
        return -ENOMEM;
    for (i = 0; i < s->n; i++) {
        xs[2 * i] = s->list[i].start;
        xs[2 * i + 1] = s->list[i].end;
    }
    qsort(xs, 2 * s->n, sizeof(*xs), u64_cmp);
    for (i = 0; i < 2 * s->n; i++)
        if (nx == 0 || xs[i] != xs[nx - 1])
            xs[nx++] = xs[i];
    while (size < nx) /* leaf k: the addresses [xs[k], xs[k + 1]) */
        size *= 2;
    t = ms_engine_calloc(2 * size, sizeof(*t));
    if (!t) {
        ms_engine_free(xs);
        return -ENOMEM;
    }
    /* Paint: a payload's number + 1 over each span (0: none), on the nodes covering it. */
    for (i = 0; i < s->n; i++) {
        size_t l = coord(xs, nx, s->list[i].start) + size, r = coord(xs, nx, s->list[i].end) + size;
        uint32_t v = s->seq[i] + 1;
        for (; l < r; l /= 2, r /= 2) {
            if (l & 1) {
                t[l] = t[l] > v ? t[l] : v;
                l++;
            }
            if (r & 1) {
                r--;
                t[r] = t[r] > v ? t[r] : v;
            }
        }
    }
    for (i = 1; i < size; i++) { /* down to the leaves: the most painted over each */
        t[2 * i] = t[2 * i] > t[i] ? t[2 * i] : t[i];
        t[2 * i + 1] = t[2 * i + 1] > t[i] ? t[2 * i + 1] : t[i];
    }
    for (i = size - 1; i >= 1; i--) /* and up again: the most over each node's leaves */
        t[i] = t[2 * i] > t[2 * i + 1] ? t[2 * i] : t[2 * i + 1];
    for (i = 0; i < s->n; i++) {
        size_t l = coord(xs, nx, s->list[i].start) + size, r = coord(xs, nx, s->list[i].end) + size;
        uint32_t most = 0;
        for (; l < r; l /= 2, r /= 2) {
            if (l & 1) {
                most = most > t[l] ? most : t[l];
                l++;
            }
            if (r & 1) {
                r--;
                most = most > t[r] ? most : t[r];
            }
        }
        if (most > s->seq[i] + 1) {
            ms_engine_free((void *)s->list[i].path); /* a later payload's entry overlaps it */
        } else {
            s->list[keep] = s->list[i];
            s->seq[keep++] = 0; /* the entries kept never overlap one of another payload */
        }
    }
    ms_engine_free(t);
    ms_engine_free(xs);
    s->n = keep;
    qsort(s->list, s->n, sizeof(*s->list), by_start);
    s->settled = s->n;
    s->next_seq = 1;
    return 0;
}

/* Parses payload's entries into add[0..count) (paths allocated). 0 or -EBADMSG / -ENOMEM with err. */
static int parse(const uint8_t *p, size_t len, uint32_t count, struct memscope_module *add, struct memscope_error *err)
{
    size_t off = sizeof(struct memscope_trace_modules);

    for (uint32_t i = 0; i < count; i++) {
        struct memscope_trace_module e;
        char *path;
        if (len - off < sizeof(e))
            return ms_error_set(err, -EBADMSG, "module %u of the list is cut short", i);
        memcpy(&e, p + off, sizeof(e));
        off += sizeof(e);
        if (e.end <= e.start || e.path_len == 0 || e.path_len > MEMSCOPE_TRACE_PATH_MAX ||
            e.build_id_len > MEMSCOPE_TRACE_BUILD_ID_MAX || len - off < ((e.path_len + 7u) & ~7u))
            return ms_error_set(err, -EBADMSG, "module %u of the list is damaged (range, path or build-id length)", i);
        path = ms_engine_alloc((size_t)e.path_len + 1);
        if (!path)
            return ms_error_set(err, -ENOMEM, "out of memory");
        memcpy(path, p + off, e.path_len);
        path[e.path_len] = '\0';
        off += (e.path_len + 7u) & ~7u;
        add[i].start = e.start;
        add[i].end = e.end;
        add[i].offset = e.offset;
        add[i].path = path;
        add[i].build_id_len = e.build_id_len;
        memcpy(add[i].build_id, e.build_id, e.build_id_len);
    }
    if (off != len)
        return ms_error_set(err, -EBADMSG, "the module list has %zu bytes past its entries", len - off);
    return 0;
}

int ms_modules_append(struct memscope_modules **set, const void *payload, size_t len, struct memscope_error *err)
{
    struct memscope_trace_modules h;
    struct memscope_modules *s = *set;
    uint32_t i;
    int rc;

    if (!payload || len < sizeof(h))
        return ms_error_set(err, -EBADMSG, "the module list is shorter than its header");
    memcpy(&h, payload, sizeof(h));
    if (h.count > (len - sizeof(h)) / (sizeof(struct memscope_trace_module) + 8))
        return ms_error_set(err, -EBADMSG, "the module list claims %u entries, more than its %zu bytes hold", h.count,
                            len);
    if (!s) {
        s = ms_engine_alloc(sizeof(*s));
        if (!s)
            return ms_error_set(err, -ENOMEM, "out of memory");
        memset(s, 0, sizeof(*s));
        s->next_seq = 1;
        *set = s;
    }
    if (s->next_seq == UINT32_MAX - 1 && settle(s) != 0) /* numbers run out: start again from 1 */
        return ms_error_set(err, -ENOMEM, "out of memory");
    if (grow(s, s->n + h.count) != 0)
        return ms_error_set(err, -ENOMEM, "out of memory");
    memset(s->list + s->n, 0, h.count * sizeof(*s->list));
    rc = parse(payload, len, h.count, s->list + s->n, err);
    if (rc != 0) { /* the set unchanged */
        for (i = 0; i < h.count; i++)
            ms_engine_free((void *)s->list[s->n + i].path);
        return rc;
    }
    for (i = 0; i < h.count; i++)
        s->seq[s->n + i] = s->next_seq;
    s->n += h.count;
    s->next_seq++;
    return 0;
}

int ms_modules_settle(struct memscope_modules *set)
{
    return set ? settle(set) : 0;
}

MS_API int memscope_modules_add(struct memscope_modules **set, const void *payload, size_t len,
                                struct memscope_error *err)
{
    int rc = ms_modules_append(set, payload, len, err);

    if (rc == 0 && settle(*set) != 0)
        rc = ms_error_set(err, -ENOMEM, "out of memory");
    return rc;
}

MS_API const struct memscope_module *memscope_modules_list(const struct memscope_modules *set, size_t *n)
{
    *n = set ? set->n : 0;
    return set ? set->list : NULL;
}

MS_API void memscope_modules_free(struct memscope_modules *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        ms_engine_free((void *)set->list[i].path);
    ms_engine_free(set->list);
    ms_engine_free(set->seq);
    ms_engine_free(set);
}

MS_API const struct memscope_modules *memscope_trace_modules(const struct memscope_history *history)
{
    return ms_history_valid(history) ? history->modules : NULL;
}

/* Bytes of entry m in a payload. */
static size_t entry_bytes(const struct memscope_module *m)
{
    size_t n = strlen(m->path);
    if (n > MEMSCOPE_TRACE_PATH_MAX)
        n = MEMSCOPE_TRACE_PATH_MAX;
    return sizeof(struct memscope_trace_module) + ((n + 7) & ~(size_t)7);
}

size_t ms_modules_payload(const struct memscope_modules *set, size_t *from, uint8_t *buf, size_t cap)
{
    struct memscope_trace_modules h = {0, 0};
    size_t used = sizeof(h);

    if (!set || *from >= set->n || cap < sizeof(h))
        return 0;
    for (; *from < set->n && used + entry_bytes(&set->list[*from]) <= cap; (*from)++) {
        const struct memscope_module *m = &set->list[*from];
        struct memscope_trace_module e;
        size_t n = strlen(m->path);
        if (n > MEMSCOPE_TRACE_PATH_MAX)
            n = MEMSCOPE_TRACE_PATH_MAX;
        memset(&e, 0, sizeof(e));
        e.start = m->start;
        e.end = m->end;
        e.offset = m->offset;
        e.build_id_len = (uint8_t)(m->build_id_len <= MEMSCOPE_TRACE_BUILD_ID_MAX ? m->build_id_len : 0);
        memcpy(e.build_id, m->build_id, e.build_id_len);
        e.path_len = (uint16_t)n;
        memcpy(buf + used, &e, sizeof(e));
        memcpy(buf + used + sizeof(e), m->path, n);
        memset(buf + used + sizeof(e) + n, 0, ((n + 7) & ~(size_t)7) - n);
        used += entry_bytes(m);
        h.count++;
    }
    if (h.count == 0)
        return 0; /* an entry larger than cap: cannot happen (cap holds any path) */
    memcpy(buf, &h, sizeof(h));
    return used;
}

MS_API int memscope_history_add_modules(struct memscope_history *history, const void *payload, size_t len,
                                        struct memscope_error *err)
{
    if (!ms_history_valid(history))
        return ms_error_set(err, -EINVAL, "invalid argument: an open history is required");
    return memscope_modules_add(&history->modules, payload, len, err);
}
