/*
 * render_text.c - a snapshot as text for people: a heading, warnings when the
 * figures are not the whole truth, the summary (every memscope-rs
 * SnapshotStats figure and ours), the per-thread table, and the largest live
 * blocks or groups of them (by thread, label or power-of-two size class),
 * with aligned columns, human sizes, and ANSI colour only when asked.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "render.h"

#define BOLD(o) ((o)->color ? "\033[1m" : "")
#define WARN(o) ((o)->color ? "\033[1;33m" : "")
#define RESET(o) ((o)->color ? "\033[0m" : "")

/* "1.5 KiB", or "1.5 KiB (1536 B)" with exact_bytes. */
void ms_size_text(const struct memscope_render_options *o, uint64_t bytes, char *buf, size_t len)
{
    char h[32];

    ms_format_size(bytes, h, sizeof(h));
    if (o->exact_bytes && bytes >= 1024)
        snprintf(buf, len, "%s (%" PRIu64 " B)", h, bytes);
    else
        snprintf(buf, len, "%s", h);
}

void ms_render_warnings(const struct memscope_stats *st, const struct memscope_render_options *o, struct ms_buf *b)
{
    if (st->dropped_events > 0)
        ms_buf_printf(b, "%swarning: %" PRIu64 " events were dropped (budget reached): figures are a lower bound%s\n",
                      WARN(o), st->dropped_events, RESET(o));
    if (st->overlapping_allocations > 0)
        ms_buf_printf(b,
                      "%swarning: %" PRIu64 " allocations reused an address still live with no release close by "
                      "(clock anomaly): the older blocks were taken as released%s\n",
                      WARN(o), st->overlapping_allocations, RESET(o));
}

static void render_heading(const struct memscope_snapshot *s, const struct memscope_render_options *o,
                           struct ms_buf *b)
{
    char t[32];

    ms_format_time(s->stats.time_ns, t, sizeof(t));
    ms_buf_printf(b, "%smemscope snapshot%s of pid %u at %s: %s, %" PRIu64 " events, %" PRIu64 " threads\n", BOLD(o),
                  RESET(o), s->pid, ms_point_kind_name(s->point_kind), t, s->stats.events, s->stats.threads);
}

static void render_summary(const struct memscope_snapshot *s, const struct memscope_render_options *o,
                           struct ms_buf *b)
{
    const struct memscope_stats *st = &s->stats;
    struct ms_table t;
    char sz[64], tm[32];
    size_t r = 0;

    ms_buf_printf(b, "\n%sSummary%s\n", BOLD(o), RESET(o));
    if (ms_table_init(&t, 2, 16) != 0) {
        b->failed = 1;
        return;
    }
    t.align_left[0] = 1;
    t.align_left[1] = 1;
#define ROW_N(name, v) ms_table_set(&t, r, 0, "%s", name), ms_table_set(&t, r++, 1, "%" PRIu64, (uint64_t)(v))
#define ROW_B(name, v) ms_size_text(o, (v), sz, sizeof(sz)), ms_table_set(&t, r, 0, "%s", name), \
                       ms_table_set(&t, r++, 1, "%s", sz)
    /* Headless table: row 0 is an ordinary row here, so no bold heading. */
    ROW_N("total allocations", st->total_allocations);
    ROW_N("total deallocations", st->total_deallocations);
    ROW_N("active allocations", st->active_allocations);
    ROW_B("total allocated", st->total_allocated);
    ROW_B("total deallocated", st->total_deallocated);
    ROW_B("current memory", st->current_memory);
    ms_size_text(o, st->peak_memory, sz, sizeof(sz));
    ms_format_time(st->peak_time_ns, tm, sizeof(tm));
    ms_table_set(&t, r, 0, "peak memory");
    ms_table_set(&t, r++, 1, "%s at %s", sz, tm);
    ROW_N("unmatched deallocations", st->unmatched_deallocations);
    ROW_N("reallocations", st->reallocations);
    ROW_N("dropped events", st->dropped_events);
    ROW_N("overlapping allocations", st->overlapping_allocations);
    ROW_N("events replayed", st->events);
    ROW_N("threads", st->threads);
#undef ROW_N
#undef ROW_B
    ms_table_render(&t, b, "  ", 0);
    ms_table_free(&t);
}

static void render_threads(const struct memscope_snapshot *s, const struct memscope_render_options *o,
                           struct ms_buf *b)
{
    struct ms_table t;
    size_t i;
    unsigned c;
    static const char *const head[] = {"thread", "tid", "allocs", "frees", "allocated", "released",
                                       "current", "live", "peak", "peak at"};

    ms_buf_printf(b, "\n%sThreads%s\n", BOLD(o), RESET(o));
    if (s->nthreads == 0) {
        ms_buf_puts(b, "  (no thread recorded an event)\n");
        return;
    }
    if (ms_table_init(&t, 10, s->nthreads + 1) != 0) {
        b->failed = 1;
        return;
    }
    for (c = 0; c < 10; c++)
        ms_table_set(&t, 0, c, "%s", head[c]);
    for (i = 0; i < s->nthreads; i++) {
        const struct memscope_thread_stats *th = &s->threads[i];
        char sz[64];
        if (th->thread == 0) { /* the exited threads merged into the checkpoint */
            ms_table_set(&t, i + 1, 0, "exited");
            ms_table_set(&t, i + 1, 1, "-");
        } else {
            ms_table_set(&t, i + 1, 0, "%u", th->thread);
            ms_table_set(&t, i + 1, 1, "%u", th->tid);
        }
        ms_table_set(&t, i + 1, 2, "%" PRIu64, th->allocations);
        ms_table_set(&t, i + 1, 3, "%" PRIu64, th->deallocations);
        ms_size_text(o, th->allocated_bytes, sz, sizeof(sz));
        ms_table_set(&t, i + 1, 4, "%s", sz);
        ms_size_text(o, th->released_bytes, sz, sizeof(sz));
        ms_table_set(&t, i + 1, 5, "%s", sz);
        ms_size_text(o, th->current_memory, sz, sizeof(sz));
        ms_table_set(&t, i + 1, 6, "%s", sz);
        ms_table_set(&t, i + 1, 7, "%" PRIu64, th->live_blocks);
        ms_size_text(o, th->peak_memory, sz, sizeof(sz));
        ms_table_set(&t, i + 1, 8, "%s", sz);
        ms_format_time(th->peak_time_ns, sz, sizeof(sz));
        ms_table_set(&t, i + 1, 9, "%s", sz);
    }
    ms_table_render(&t, b, "  ", o->color);
    ms_table_free(&t);
    if (s->merged)
        ms_buf_printf(b, "  exited: %" PRIu64 " thread%s that exited before the checkpoint horizon, merged into one row"
                      " (their sums; peak: the largest of theirs)\n", s->merged, s->merged == 1 ? "" : "s");
}

/* ---- blocks section ---- */

static int block_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct ms_block *x = *(const struct ms_block *const *)pa, *y = *(const struct ms_block *const *)pb;
    enum memscope_sort_by by = *(const enum memscope_sort_by *)ctx;

    if (by == MEMSCOPE_SORT_TIME && x->time != y->time)
        return x->time > y->time ? -1 : 1;
    if (by != MEMSCOPE_SORT_ADDRESS && x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return x->address < y->address ? -1 : x->address > y->address;
}

struct group {
    char name[MS_CELL]; /* what the row stands for */
    uint64_t key;       /* thread serial, size class, or label index */
    uint64_t count;     /* blocks */
    uint64_t bytes;     /* their bytes */
    uint64_t newest;    /* latest allocation time among them */
};

static int group_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct group *x = pa, *y = pb;
    enum memscope_sort_by by = *(const enum memscope_sort_by *)ctx;
    int c = ms_group_cmp(by, x->count, x->newest, x->bytes, y->count, y->newest, y->bytes);

    if (c != 0)
        return c;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int label_name_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct group *x = pa, *y = pb;
    return strcmp(x->name, y->name);
}

static void render_groups(const struct memscope_snapshot *s, const struct memscope_render_options *o,
                          struct ms_buf *b, unsigned top)
{
    struct group *g = NULL;
    size_t ng = 0, cap, i, j;
    enum memscope_sort_by by = o->sort_by;
    struct ms_table t;
    static const char *const what[] = {"", "thread", "label", "size class"};

    switch (o->group_by) {
    case MEMSCOPE_GROUP_THREAD:
        cap = s->nthreads + 1;
        break;
    case MEMSCOPE_GROUP_LABEL:
        cap = s->nlabels + 1;
        break;
    default:
        cap = 65;
        break;
    }
    g = ms_engine_calloc(cap, sizeof(*g));
    if (!g) {
        b->failed = 1;
        return;
    }
    /* Slot per key: threads by position in s->threads, labels by index, classes by number. */
    for (i = 0; i < s->nblocks; i++) {
        const struct ms_block *bl = &s->blocks[i];
        size_t k;
        if (o->group_by == MEMSCOPE_GROUP_THREAD) {
            size_t lo = 0, hi = s->nthreads;
            while (lo < hi) { /* threads are by serial */
                size_t mid = (lo + hi) / 2;
                if (s->threads[mid].thread < bl->thread)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            k = lo < s->nthreads && s->threads[lo].thread == bl->thread ? lo : s->nthreads;
            g[k].key = bl->thread;
        } else if (o->group_by == MEMSCOPE_GROUP_LABEL) {
            k = bl->label;
            g[k].key = 0;
        } else {
            k = ms_size_class(bl->size);
            g[k].key = k;
        }
        g[k].count++;
        g[k].bytes += bl->size;
        if (g[k].count == 1 || bl->time > g[k].newest)
            g[k].newest = bl->time;
    }
    /* Compact the used slots and name them. */
    for (i = 0; i < cap; i++) {
        if (!g[i].count)
            continue;
        g[ng] = g[i];
        if (o->group_by == MEMSCOPE_GROUP_THREAD)
            snprintf(g[ng].name, MS_CELL, "thread %" PRIu64, g[i].key);
        else if (o->group_by == MEMSCOPE_GROUP_LABEL)
            snprintf(g[ng].name, MS_CELL, "%s", i == 0 ? "(unlabeled)" : "");
        else
            ms_size_class_name((unsigned)g[i].key, g[ng].name, MS_CELL);
        if (o->group_by == MEMSCOPE_GROUP_LABEL && i != 0)
            ms_format_label(s->labels[i].name, s->labels[i].type, g[ng].name, MS_CELL);
        ng++;
    }
    /* Labels: blocks with equal name and type share a row whatever their entry. */
    if (o->group_by == MEMSCOPE_GROUP_LABEL && ng > 1) {
        if (ms_sort(g, ng, sizeof(*g), label_name_cmp, NULL) != 0) {
            b->failed = 1;
            goto out;
        }
        for (i = 1, j = 0; i < ng; i++) {
            if (strcmp(g[i].name, g[j].name) == 0) {
                g[j].count += g[i].count;
                g[j].bytes += g[i].bytes;
                if (g[i].newest > g[j].newest)
                    g[j].newest = g[i].newest;
            } else {
                g[++j] = g[i];
            }
        }
        ng = j + 1;
    }
    if (ms_sort(g, ng, sizeof(*g), group_cmp, &by) != 0) {
        b->failed = 1;
        goto out;
    }
    ms_buf_printf(b, "\n%sLive blocks by %s%s (%zu groups, %zu blocks)\n", BOLD(o), what[o->group_by], RESET(o), ng,
                  s->nblocks);
    if (ng == 0) {
        ms_buf_puts(b, "  (no live blocks)\n");
        goto out;
    }
    if (ng > top)
        ng = top;
    if (ms_group_table_init(&t, 4, ng, what[o->group_by]) != 0) {
        b->failed = 1;
        goto out;
    }
    ms_table_set(&t, 0, 3, "newest");
    for (i = 0; i < ng; i++) {
        char sz[64];
        ms_table_set(&t, i + 1, 0, "%s", g[i].name);
        ms_table_set(&t, i + 1, 1, "%" PRIu64, g[i].count);
        ms_size_text(o, g[i].bytes, sz, sizeof(sz));
        ms_table_set(&t, i + 1, 2, "%s", sz);
        ms_format_time(g[i].newest, sz, sizeof(sz));
        ms_table_set(&t, i + 1, 3, "%s", sz);
    }
    ms_table_render(&t, b, "  ", o->color);
    ms_table_free(&t);
out:
    ms_engine_free(g);
}

static void render_blocks(const struct memscope_snapshot *s, const struct memscope_render_options *o,
                          struct ms_buf *b)
{
    unsigned top = o->top ? o->top : 10;
    const struct ms_block **order = NULL;
    enum memscope_sort_by by = o->sort_by;
    struct ms_table t;
    size_t n, i;
    static const char *const sort_name[] = {"largest", "largest", "newest", "by address"};

    if (o->group_by == MEMSCOPE_GROUP_STACK || o->group_by == MEMSCOPE_GROUP_SITE) {
        ms_render_stack_groups(s, o, b, top); /* stacks.c */
        return;
    }
    if (o->group_by != MEMSCOPE_GROUP_NONE) {
        render_groups(s, o, b, top);
        return;
    }
    n = s->nblocks < top ? s->nblocks : top;
    ms_buf_printf(b, "\n%sLive blocks%s (%s %zu of %zu)\n", BOLD(o), RESET(o),
                  (unsigned)by < 4 ? sort_name[by] : "largest", n, s->nblocks);
    if (s->nblocks == 0) {
        ms_buf_puts(b, "  (no live blocks)\n");
        return;
    }
    order = ms_engine_big_alloc(s->nblocks * sizeof(*order), 0);
    if (!order) {
        b->failed = 1;
        return;
    }
    for (i = 0; i < s->nblocks; i++)
        order[i] = &s->blocks[i];
    if (by != MEMSCOPE_SORT_ADDRESS && ms_sort(order, s->nblocks, sizeof(*order), block_cmp, &by) != 0) {
        b->failed = 1;
        goto out;
    }
    if (ms_table_init(&t, 5, n + 1) != 0) {
        b->failed = 1;
        goto out;
    }
    t.align_left[0] = 1;
    t.align_left[4] = 1;
    ms_table_set(&t, 0, 0, "address");
    ms_table_set(&t, 0, 1, "size");
    ms_table_set(&t, 0, 2, "thread");
    ms_table_set(&t, 0, 3, "allocated at");
    ms_table_set(&t, 0, 4, "label");
    for (i = 0; i < n; i++) {
        const struct ms_block *bl = order[i];
        char sz[64];
        ms_table_set(&t, i + 1, 0, "0x%" PRIx64, bl->address);
        ms_size_text(o, bl->size, sz, sizeof(sz));
        ms_table_set(&t, i + 1, 1, "%s", sz);
        ms_table_set(&t, i + 1, 2, "%u", bl->thread);
        ms_format_time(bl->time, sz, sizeof(sz));
        ms_table_set(&t, i + 1, 3, "%s", sz);
        if (bl->label)
            ms_format_label(s->labels[bl->label].name, s->labels[bl->label].type, ms_table_cell(&t, i + 1, 4), MS_CELL);
        else
            ms_table_set(&t, i + 1, 4, "-");
    }
    ms_table_render(&t, b, "  ", o->color);
    ms_table_free(&t);
out:
    ms_engine_big_free(order);
}

int ms_render_options_check(const struct memscope_render_options *o)
{
    if ((unsigned)o->group_by > MEMSCOPE_GROUP_SITE || (unsigned)o->sort_by > MEMSCOPE_SORT_ADDRESS ||
        (o->sections & ~(MEMSCOPE_SECTION_SUMMARY | MEMSCOPE_SECTION_THREADS | MEMSCOPE_SECTION_BLOCKS)))
        return -EINVAL;
    return 0;
}

MS_API int memscope_snapshot_render_text(const struct memscope_snapshot *snapshot,
                                         const struct memscope_render_options *opts, char **out, size_t *len)
{
    static const struct memscope_render_options defaults;
    const struct memscope_render_options *o = opts ? opts : &defaults;
    unsigned sections = o->sections ? o->sections : 0x7u;
    struct ms_buf b;

    if (!ms_snapshot_valid(snapshot) || !out || ms_render_options_check(o) != 0)
        return -EINVAL;
    *out = NULL;
    ms_buf_init(&b);
    render_heading(snapshot, o, &b);
    ms_render_warnings(&snapshot->stats, o, &b);
    ms_render_stack_notes(snapshot, o, &b);
    if (sections & MEMSCOPE_SECTION_SUMMARY)
        render_summary(snapshot, o, &b);
    if (sections & MEMSCOPE_SECTION_THREADS)
        render_threads(snapshot, o, &b);
    if (sections & MEMSCOPE_SECTION_BLOCKS)
        render_blocks(snapshot, o, &b);
    return ms_buf_finish(&b, out, len);
}
