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
 * Every field is checked against the payload; nothing is trusted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "memscope/trace.h"
#include "memscope/trace_abi.h"

struct memscope_modules {
    struct memscope_module *list; /* by address */
    size_t n, cap;
};

static int by_start(const void *a, const void *b)
{
    const struct memscope_module *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Whether [start, end) overlaps an entry of the sorted add[0..n). */
static int overlaps(const struct memscope_module *add, size_t n, uint64_t start, uint64_t end)
{
    size_t lo = 0, hi = n;

    while (lo < hi) { /* the first entry ending after start */
        size_t mid = lo + (hi - lo) / 2;
        if (add[mid].end <= start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && add[lo].start < end;
}

static int grow(struct memscope_modules *s, size_t need)
{
    size_t cap = s->cap ? s->cap : 64;
    void *list;

    if (need <= s->cap)
        return 0;
    while (cap < need)
        cap *= 2;
    list = ms_engine_realloc(s->list, cap * sizeof(*s->list));
    if (!list)
        return -ENOMEM;
    s->list = list;
    s->cap = cap;
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

MS_API int memscope_modules_add(struct memscope_modules **set, const void *payload, size_t len,
                                struct memscope_error *err)
{
    struct memscope_trace_modules h;
    struct memscope_modules *s = *set;
    struct memscope_module *add;
    size_t keep = 0;
    int rc;

    if (!payload || len < sizeof(h))
        return ms_error_set(err, -EBADMSG, "the module list is shorter than its header");
    memcpy(&h, payload, sizeof(h));
    if (h.count > (len - sizeof(h)) / (sizeof(struct memscope_trace_module) + 8))
        return ms_error_set(err, -EBADMSG, "the module list claims %u entries, more than its %zu bytes hold", h.count,
                            len);
    add = ms_engine_alloc((h.count ? h.count : 1) * sizeof(*add));
    if (!add)
        return ms_error_set(err, -ENOMEM, "out of memory");
    memset(add, 0, (h.count ? h.count : 1) * sizeof(*add));
    rc = parse(payload, len, h.count, add, err);
    if (rc == 0 && !s) {
        s = ms_engine_alloc(sizeof(*s));
        if (s) {
            memset(s, 0, sizeof(*s));
            *set = s;
        }
    }
    if (rc == 0 && (!s || grow(s, s->n + h.count) != 0))
        rc = ms_error_set(err, -ENOMEM, "out of memory");
    if (rc != 0) {
        for (uint32_t i = 0; i < h.count; i++)
            ms_engine_free((void *)add[i].path);
        ms_engine_free(add);
        return rc;
    }
    qsort(add, h.count, sizeof(*add), by_start);
    /* Earlier entries the new ones overlap are gone; the rest stay. */
    for (size_t i = 0; i < s->n; i++) {
        if (overlaps(add, h.count, s->list[i].start, s->list[i].end))
            ms_engine_free((void *)s->list[i].path);
        else
            s->list[keep++] = s->list[i];
    }
    memcpy(s->list + keep, add, h.count * sizeof(*add));
    s->n = keep + h.count;
    qsort(s->list, s->n, sizeof(*s->list), by_start);
    ms_engine_free(add);
    return 0;
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
