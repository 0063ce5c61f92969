/*
 * diff.c - locating points in a history, and what changed between two of
 * them: blocks allocated after A and still live at B, blocks live at A and
 * released by B, grouped by label, thread, size class, allocation site or
 * call stack (named by stacks.c), as text and JSON.
 *
 * A diff is two exact replays (memscope_history_snapshot at A and at B, both
 * as MEMSCOPE_AT_EVENT once located; the peak at MEMSCOPE_AT_PEAK, which
 * locates it too, and from the peak to the end one replay gives both) and one
 * merge of their live blocks, which both snapshots keep in address order: a
 * block is the same at both points when its address and its allocation time
 * are, so a block released and another allocated at the same address in
 * between count as one freed and one allocated, as does a realloc in place.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "render.h"

#define MS_DIFF_MAGIC UINT64_C(0x6666696473796d73) /* "smysdiff" */

/* A block of one side, and the snapshot that holds it (for its label). */
struct dref {
    const struct memscope_snapshot *s;
    const struct ms_block *b;
};

/* How a point was asked for, kept to name it in the output. */
struct named_point {
    enum memscope_point_kind kind;
    uint64_t value;
    char mark[128];
};

struct memscope_diff {
    uint64_t magic;                  /* MS_DIFF_MAGIC while valid */
    struct memscope_snapshot *a, *b; /* the snapshots at A and B */
    struct named_point pa, pb;       /* how A and B were given */
    struct memscope_diff_stats st;   /* the figures */
    struct dref *side[2];            /* MEMSCOPE_DIFF_ALLOCATED, MEMSCOPE_DIFF_FREED, by address */
    size_t nside[2];
    uint32_t pid;
};

/* ---- locating points ---- */

struct peak_finder {
    uint64_t peak;   /* highest current_memory so far */
    uint64_t events; /* events replayed when it was first reached */
};

static void find_peak_each(void *arg, uint64_t index, const struct ms_event *e, const struct memscope_stats *st)
{
    struct peak_finder *p = arg;

    (void)e;
    if (st->current_memory > p->peak) {
        p->peak = st->current_memory;
        p->events = index + 1;
    }
}

MS_API int memscope_history_locate(const struct memscope_history *h, const struct memscope_point *at,
                                   struct memscope_point_info *out, struct memscope_error *err)
{
    uint64_t first, last, n = 0, t = 0;
    char ta[32], tb[32];
    int rc;

    if (err)
        err->message[0] = '\0';
    if (!ms_history_valid(h) || !at || !out)
        return ms_error_set(err, -EINVAL, "invalid argument: a history, a point and an out pointer are required");
    first = h->nevents ? h->events[0].time : 0;
    last = h->nevents ? h->events[h->nevents - 1].time : 0;
    if (h->ck.present) { /* points before the checkpoint horizon were folded away */
        ms_format_time_us(h->ck.horizon_ns, tb, sizeof(tb));
        if (at->kind == MEMSCOPE_AT_TIME && at->value < h->ck.horizon_ns) {
            ms_format_time_us(at->value, ta, sizeof(ta));
            return ms_error_set(err, -ERANGE,
                                "time %s lies before the checkpoint horizon at %s: older events were folded into "
                                "the checkpoint to keep the store within its budget", ta, tb);
        }
        if (at->kind == MEMSCOPE_AT_EVENT && at->value < h->ck.folded_events)
            return ms_error_set(err, -ERANGE,
                                "event %" PRIu64 " lies before the checkpoint horizon at %s (event %" PRIu64
                                "): older events were folded into the checkpoint to keep the store within its budget",
                                at->value, tb, h->ck.folded_events);
    }
    switch (at->kind) {
    case MEMSCOPE_AT_PEAK: {
        struct peak_finder p = {h->ck.st.peak_memory, 0};
        struct memscope_stats st;
        if (h->nevents == 0)
            return ms_error_set(err, -ENODATA, "the store holds no events, so no peak");
        rc = ms_replay_each(h, h->nevents, find_peak_each, &p, &st);
        if (rc != 0)
            return ms_error_set(err, rc, "out of memory replaying the history");
        if (h->ck.present && p.events == 0 && h->ck.st.peak_memory > 0) {
            ms_format_time_us(h->ck.st.peak_time_ns, ta, sizeof(ta));
            ms_format_time_us(h->ck.horizon_ns, tb, sizeof(tb));
            return ms_error_set(err, -ERANGE,
                                "the peak (%" PRIu64 " bytes, at %s) was reached before the checkpoint horizon at %s: "
                                "its events were folded into the checkpoint to keep the store within its budget",
                                h->ck.st.peak_memory, ta, tb);
        }
        out->events = p.events + h->ck.folded_events;
        out->time_ns = p.events ? h->events[p.events - 1].time : 0;
        return 0;
    }
    case MEMSCOPE_AT_TIME:
        if (h->nevents == 0)
            return ms_error_set(err, -ENODATA, "the store holds no events, so no time can be reached");
        ms_format_time_us(at->value, ta, sizeof(ta));
        if (at->value < first) {
            ms_format_time_us(first, tb, sizeof(tb));
            return ms_error_set(err, -ERANGE,
                                "time %s lies before the recorded history: its first event is at %s", ta, tb);
        }
        if (at->value > last) {
            ms_format_time_us(last, tb, sizeof(tb));
            return ms_error_set(err, -ERANGE, "time %s lies after the recorded history: its last event is at %s",
                                ta, tb);
        }
        break;
    case MEMSCOPE_AT_EVENT:
        if (at->value > h->nevents + h->ck.folded_events)
            return ms_error_set(err, -ERANGE,
                                "event %" PRIu64 " lies after the recorded history: it holds %" PRIu64 " events",
                                at->value, h->nevents + h->ck.folded_events);
        break;
    case MEMSCOPE_AT_MARK: {
        int64_t k;
        if (!at->mark)
            return ms_error_set(err, -EINVAL, "invalid argument: a mark point needs a name");
        k = ms_checkpoint_find_mark(h, at->mark);
        if (k >= 0) {
            const struct ms_ck_mark *m = &h->ck.marks[k];
            ms_format_time_us(m->time_ns, ta, sizeof(ta));
            ms_format_time_us(h->ck.horizon_ns, tb, sizeof(tb));
            return ms_error_set(err, -ERANGE,
                                "mark '%s' (at %s, event %" PRIu64 ") lies before the checkpoint horizon at %s: "
                                "its events were folded into the checkpoint to keep the store within its budget",
                                at->mark, ta, m->events, tb);
        }
        break;
    }
    case MEMSCOPE_AT_END:
        break;
    default:
        return ms_error_set(err, -EINVAL, "invalid argument: unknown point kind %d", (int)at->kind);
    }
    rc = ms_history_find_point(h, at, &n, &t);
    if (rc == -ENOENT && h->ck.marks_dropped)
        return ms_error_set(err, rc, "the store has no mark named '%s' (%" PRIu64 " older marks were folded past "
                            "the %u the checkpoint keeps, and are not known by name)", at->mark,
                            h->ck.marks_dropped, MEMSCOPE_CHECKPOINT_MAX_MARKS);
    if (rc == -ENOENT)
        return ms_error_set(err, rc, "the store has no mark named '%s'", at->mark);
    if (rc != 0)
        return ms_error_set(err, rc, "the point lies outside the recorded history");
    out->events = n + h->ck.folded_events;
    out->time_ns = t;
    return 0;
}

/* ---- building a diff ---- */

static int push(struct dref **arr, size_t *n, size_t *cap, const struct memscope_snapshot *s,
                const struct ms_block *b)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        struct dref *x = ms_engine_realloc(*arr, ncap * sizeof(**arr));
        if (!x)
            return -ENOMEM;
        *arr = x;
        *cap = ncap;
    }
    (*arr)[*n].s = s;
    (*arr)[*n].b = b;
    (*n)++;
    return 0;
}

static void name_point(struct named_point *np, const struct memscope_point *p)
{
    np->kind = p->kind;
    np->value = p->value;
    np->mark[0] = '\0';
    if (p->kind == MEMSCOPE_AT_MARK && p->mark)
        snprintf(np->mark, sizeof(np->mark), "%s", p->mark);
}

MS_API void memscope_diff_free(struct memscope_diff *diff)
{
    if (!diff || diff->magic != MS_DIFF_MAGIC)
        return;
    diff->magic = 0;
    memscope_snapshot_free(diff->a);
    memscope_snapshot_free(diff->b);
    ms_engine_free(diff->side[0]);
    ms_engine_free(diff->side[1]);
    ms_engine_free(diff);
}

/*
 * Locates point p for a side of a diff, whose snapshot *snap may have been
 * taken already (else NULL); the peak's is taken here: finding the peak takes
 * a whole replay, as the snapshot there does, so the snapshot is taken first
 * and the peak located by replay only for the sentence when that fails (or
 * the history is empty).
 */
static int locate_side(const struct memscope_history *h, const struct memscope_point *p,
                       struct memscope_point_info *pi, struct memscope_snapshot **snap, struct memscope_error *err)
{
    if (p->kind == MEMSCOPE_AT_PEAK && h->nevents > 0 && !*snap && memscope_history_snapshot(h, p, snap) != 0)
        *snap = NULL;
    if (p->kind == MEMSCOPE_AT_PEAK && *snap) {
        uint64_t n = (*snap)->stats.events - h->ck.folded_events;
        pi->events = (*snap)->stats.events;
        pi->time_ns = n ? h->events[n - 1].time : 0; /* as memscope_history_locate gives it */
        return 0;
    }
    return memscope_history_locate(h, p, pi, err);
}

MS_API int memscope_history_diff(const struct memscope_history *h, const struct memscope_point *a,
                                 const struct memscope_point *b, struct memscope_diff **out,
                                 struct memscope_error *err)
{
    struct memscope_point_info ia, ib;
    struct memscope_snapshot *snap_a = NULL, *snap_b = NULL; /* taken while locating (the peak) */
    struct memscope_diff *d = NULL;
    struct memscope_point pe = {MEMSCOPE_AT_EVENT, 0, NULL};
    struct memscope_stats sa, sb;
    size_t cap[2] = {0, 0}, i = 0, j = 0;
    int rc;

    if (err)
        err->message[0] = '\0';
    if (!ms_history_valid(h) || !a || !b || !out)
        return ms_error_set(err, -EINVAL, "invalid argument: a history, two points and an out pointer are required");
    *out = NULL;
    /* From the peak to the end (what was released since): the replay that
     * takes the peak's snapshot ends at the end's. */
    if (a->kind == MEMSCOPE_AT_PEAK && b->kind == MEMSCOPE_AT_END && h->nevents > 0)
        ms_snapshot_at_peak(h, MS_PEAK_KEEP_ALL, &snap_a, &snap_b, NULL); /* failing: both NULL, located below */
    rc = locate_side(h, a, &ia, &snap_a, err);
    if (rc != 0) {
        if (err) {
            char m[sizeof(err->message)];
            snprintf(m, sizeof(m), "%s", err->message);
            ms_error_set(err, rc, "A: %s", m);
        }
        goto drop;
    }
    rc = locate_side(h, b, &ib, &snap_b, err);
    if (rc != 0) {
        if (err) {
            char m[sizeof(err->message)];
            snprintf(m, sizeof(m), "%s", err->message);
            ms_error_set(err, rc, "B: %s", m);
        }
        goto drop;
    }
    if (ia.events > ib.events) {
        rc = ms_error_set(err, -EINVAL,
                          "A (event %" PRIu64 ") lies after B (event %" PRIu64 "): give the earlier point first",
                          ia.events, ib.events);
        goto drop;
    }
    d = ms_engine_calloc(1, sizeof(*d));
    if (!d) {
        rc = ms_error_set(err, -ENOMEM, "out of memory");
        goto drop;
    }
    d->magic = MS_DIFF_MAGIC;
    d->pid = h->pid;
    name_point(&d->pa, a);
    name_point(&d->pb, b);
    d->a = snap_a;
    d->b = snap_b;
    rc = 0;
    if (!d->a) {
        pe.value = ia.events;
        rc = memscope_history_snapshot(h, &pe, &d->a);
    }
    if (rc == 0 && !d->b) {
        pe.value = ib.events;
        rc = memscope_history_snapshot(h, &pe, &d->b);
    }
    if (rc != 0)
        goto fail;
    sa = d->a->stats;
    sb = d->b->stats;
    /* Both block arrays are in address order: one merge. */
    while (i < d->a->nblocks || j < d->b->nblocks) {
        const struct ms_block *x = i < d->a->nblocks ? &d->a->blocks[i] : NULL;
        const struct ms_block *y = j < d->b->nblocks ? &d->b->blocks[j] : NULL;
        if (x && y && x->address == y->address) {
            if (x->time != y->time || x->size != y->size) {
                if (push(&d->side[MEMSCOPE_DIFF_FREED], &d->nside[1], &cap[1], d->a, x) != 0 ||
                    push(&d->side[MEMSCOPE_DIFF_ALLOCATED], &d->nside[0], &cap[0], d->b, y) != 0)
                    goto nomem;
            }
            i++;
            j++;
        } else if (x && (!y || x->address < y->address)) {
            if (push(&d->side[MEMSCOPE_DIFF_FREED], &d->nside[1], &cap[1], d->a, x) != 0)
                goto nomem;
            i++;
        } else {
            if (push(&d->side[MEMSCOPE_DIFF_ALLOCATED], &d->nside[0], &cap[0], d->b, y) != 0)
                goto nomem;
            j++;
        }
    }
    d->st.from = ia;
    d->st.to = ib;
    for (i = 0; i < d->nside[0]; i++)
        d->st.allocated_bytes += d->side[0][i].b->size;
    for (i = 0; i < d->nside[1]; i++)
        d->st.freed_bytes += d->side[1][i].b->size;
    d->st.allocated_blocks = d->nside[0];
    d->st.freed_blocks = d->nside[1];
    d->st.from_live_blocks = sa.active_allocations;
    d->st.from_live_bytes = sa.current_memory;
    d->st.to_live_blocks = sb.active_allocations;
    d->st.to_live_bytes = sb.current_memory;
    d->st.net_bytes = (int64_t)(sb.current_memory - sa.current_memory);
    d->st.net_blocks = (int64_t)(sb.active_allocations - sa.active_allocations);
    d->st.allocations_between = sb.total_allocations - sa.total_allocations;
    d->st.deallocations_between = sb.total_deallocations - sa.total_deallocations;
    *out = d;
    return 0;
nomem:
    rc = -ENOMEM;
fail:
    memscope_diff_free(d); /* with the snapshots it holds */
    return ms_error_set(err, rc, "%s", rc == -ENOMEM ? "out of memory" : "the replay failed");
drop: /* before d holds them */
    memscope_snapshot_free(snap_a);
    memscope_snapshot_free(snap_b);
    return rc;
}

static int diff_valid(const struct memscope_diff *d)
{
    return d && d->magic == MS_DIFF_MAGIC;
}

MS_API int memscope_diff_stats(const struct memscope_diff *diff, struct memscope_diff_stats *out)
{
    if (!diff_valid(diff) || !out)
        return -EINVAL;
    *out = diff->st;
    return 0;
}

static void to_allocation(const struct dref *r, struct memscope_allocation *a)
{
    const struct ms_block *b = r->b;

    a->address = b->address;
    a->size = b->size;
    a->time_ns = b->time;
    a->thread = b->thread;
    a->stack = b->stack;
    a->label_name = b->label ? r->s->labels[b->label].name : NULL;
    a->label_type = b->label ? r->s->labels[b->label].type : NULL;
}

MS_API int memscope_diff_foreach(const struct memscope_diff *diff, enum memscope_diff_side side,
                                 int (*fn)(const struct memscope_allocation *block, void *arg), void *arg)
{
    size_t i;

    if (!diff_valid(diff) || !fn || (side != MEMSCOPE_DIFF_ALLOCATED && side != MEMSCOPE_DIFF_FREED))
        return -EINVAL;
    for (i = 0; i < diff->nside[side]; i++) {
        struct memscope_allocation a;
        int rc;
        to_allocation(&diff->side[side][i], &a);
        rc = fn(&a, arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- grouping ---- */

struct dgroup {
    char name[MS_CELL]; /* label "name (type)", "thread N", size class, or the block's address */
    uint64_t key;       /* thread serial, size class or address (ties) */
    uint64_t count;     /* blocks */
    uint64_t bytes;     /* their bytes */
};

static int dgroup_name_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct dgroup *x = pa, *y = pb;
    int c;

    (void)ctx;
    c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->key < y->key ? -1 : x->key > y->key;
}

static int dgroup_size_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct dgroup *x = pa, *y = pb;

    (void)ctx;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return strcmp(x->name, y->name);
}

/*
 * Groups one side: one group per label, thread or size class (or per block
 * for MEMSCOPE_GROUP_NONE), largest bytes first. *out to ms_engine_free.
 */
static int group_side(const struct memscope_diff *d, int side, enum memscope_group_by by,
                      const struct memscope_symbolizer *sym, struct dgroup **out, size_t *nout)
{
    size_t n = d->nside[side], i, k = 0;
    struct dgroup *g = ms_engine_calloc(n ? n : 1, sizeof(*g));
    struct ms_site_namer *nm = NULL;

    if (!g)
        return -ENOMEM;
    if (by == MEMSCOPE_GROUP_SITE || by == MEMSCOPE_GROUP_STACK) { /* stacks.c names them, one symbolizer call */
        uint32_t *ids = ms_engine_alloc((n ? n : 1) * sizeof(*ids));
        int rc = ids ? 0 : -ENOMEM;
        for (i = 0; ids && i < n; i++)
            ids[i] = d->side[side][i].b->stack;
        if (rc == 0)
            rc = ms_site_namer_new(&d->b->stacks, ids, n, sym, &nm);
        ms_engine_free(ids);
        if (rc != 0)
            goto nomem;
    }
    for (i = 0; i < n; i++) {
        const struct dref *r = &d->side[side][i];
        struct dgroup *x = &g[i];
        x->count = 1;
        x->bytes = r->b->size;
        switch (by) {
        case MEMSCOPE_GROUP_THREAD:
            x->key = r->b->thread;
            snprintf(x->name, MS_CELL, "thread %u", r->b->thread);
            break;
        case MEMSCOPE_GROUP_LABEL:
            x->key = 0;
            if (r->b->label)
                ms_format_label(r->s->labels[r->b->label].name, r->s->labels[r->b->label].type, x->name, MS_CELL);
            else
                snprintf(x->name, MS_CELL, "(unlabeled)");
            break;
        case MEMSCOPE_GROUP_SIZE_CLASS:
            x->key = ms_size_class(r->b->size);
            ms_size_class_name((unsigned)x->key, x->name, MS_CELL);
            break;
        case MEMSCOPE_GROUP_SITE:
        case MEMSCOPE_GROUP_STACK:
            x->key = by == MEMSCOPE_GROUP_STACK ? r->b->stack : 0;
            ms_site_name(nm, r->b->stack, by == MEMSCOPE_GROUP_STACK, x->name, MS_CELL);
            break;
        default:
            x->key = r->b->address;
            snprintf(x->name, MS_CELL, "0x%" PRIx64, r->b->address);
            break;
        }
    }
    if (by != MEMSCOPE_GROUP_NONE && n > 1) {
        if (ms_sort(g, n, sizeof(*g), dgroup_name_cmp, NULL) != 0)
            goto nomem;
        for (i = 1, k = 0; i < n; i++) {
            if (g[i].key == g[k].key && strcmp(g[i].name, g[k].name) == 0) {
                g[k].count += g[i].count;
                g[k].bytes += g[i].bytes;
            } else {
                g[++k] = g[i];
            }
        }
        n = k + 1;
    }
    if (ms_sort(g, n, sizeof(*g), dgroup_size_cmp, NULL) != 0)
        goto nomem;
    ms_site_namer_free(nm);
    *out = g;
    *nout = n;
    return 0;
nomem:
    ms_site_namer_free(nm);
    ms_engine_free(g);
    return -ENOMEM;
}

/* ---- rendering ---- */

static void describe_point(const struct named_point *np, const struct memscope_point_info *pi, char *buf,
                           size_t len)
{
    char t[32];

    ms_format_time_us(pi->time_ns, t, sizeof(t));
    switch (np->kind) {
    case MEMSCOPE_AT_MARK:
        snprintf(buf, len, "mark '%s' (event %" PRIu64 ", %s)", np->mark, pi->events, t);
        break;
    case MEMSCOPE_AT_TIME:
        snprintf(buf, len, "time %s (event %" PRIu64 ")", t, pi->events);
        break;
    case MEMSCOPE_AT_EVENT:
        snprintf(buf, len, "event %" PRIu64 " (%s)", pi->events, t);
        break;
    case MEMSCOPE_AT_PEAK:
        snprintf(buf, len, "peak (event %" PRIu64 ", %s)", pi->events, t);
        break;
    default:
        snprintf(buf, len, "now (event %" PRIu64 ", %s)", pi->events, t);
        break;
    }
}

static void signed_size(const struct memscope_render_options *o, int64_t v, char *buf, size_t len)
{
    if (len < 2)
        return;
    buf[0] = v < 0 ? '-' : '+';
    ms_size_text(o, v < 0 ? (uint64_t)-v : (uint64_t)v, buf + 1, len - 1);
}

static void render_side(const struct memscope_diff *d, int side, const struct memscope_render_options *o,
                        struct ms_buf *b)
{
    static const char *const title[] = {"Allocated after A, still live at B", "Live at A, freed by B"};
    static const char *const what[] = {"block", "thread", "label", "size class", "stack", "site"};
    struct dgroup *g = NULL;
    size_t n = 0, i, rows;
    unsigned top = o->top ? o->top : 10;
    struct ms_table t;
    char sz[64];
    uint64_t blocks = side == 0 ? d->st.allocated_blocks : d->st.freed_blocks;
    uint64_t bytes = side == 0 ? d->st.allocated_bytes : d->st.freed_bytes;

    ms_size_text(o, bytes, sz, sizeof(sz));
    ms_buf_printf(b, "\n%s%s%s: %" PRIu64 " block%s, %s\n", o->color ? "\033[1m" : "", title[side],
                  o->color ? "\033[0m" : "", blocks, blocks == 1 ? "" : "s", sz);
    if (blocks == 0) {
        ms_buf_puts(b, "  (none)\n");
        return;
    }
    if (group_side(d, side, o->group_by, o->symbolizer, &g, &n) != 0) {
        b->failed = 1;
        return;
    }
    rows = n < top ? n : top;
    if (ms_group_table_init(&t, 3, rows, what[o->group_by]) != 0) {
        b->failed = 1;
        goto out;
    }
    for (i = 0; i < rows; i++) {
        ms_table_set(&t, i + 1, 0, "%s", g[i].name);
        ms_table_set(&t, i + 1, 1, "%" PRIu64, g[i].count);
        ms_size_text(o, g[i].bytes, sz, sizeof(sz));
        ms_table_set(&t, i + 1, 2, "%s", sz);
    }
    ms_table_render(&t, b, "  ", o->color);
    ms_table_free(&t);
    if (n > rows)
        ms_buf_printf(b, "  ... and %zu more %s%s\n", n - rows, o->group_by == MEMSCOPE_GROUP_NONE ? "block" : "group",
                      n - rows == 1 ? "" : "s");
out:
    ms_engine_free(g);
}

MS_API int memscope_diff_render_text(const struct memscope_diff *diff, const struct memscope_render_options *opts,
                                     char **out, size_t *len)
{
    static const struct memscope_render_options defaults;
    const struct memscope_render_options *o = opts ? opts : &defaults;
    const struct memscope_diff_stats *st;
    char pa[200], pb[200], s1[64], s2[64], s3[64];
    struct ms_buf b;

    if (!diff_valid(diff) || !out || ms_render_options_check(o) != 0)
        return -EINVAL;
    *out = NULL;
    st = &diff->st;
    ms_buf_init(&b);
    describe_point(&diff->pa, &st->from, pa, sizeof(pa));
    describe_point(&diff->pb, &st->to, pb, sizeof(pb));
    ms_buf_printf(&b, "%smemscope diff%s of pid %u\n  A: %s\n  B: %s\n", o->color ? "\033[1m" : "",
                  o->color ? "\033[0m" : "", diff->pid, pa, pb);
    ms_render_warnings(&diff->b->stats, o, &b);
    ms_size_text(o, st->from_live_bytes, s1, sizeof(s1));
    ms_size_text(o, st->to_live_bytes, s2, sizeof(s2));
    signed_size(o, st->net_bytes, s3, sizeof(s3));
    ms_buf_printf(&b, "  live at A: %" PRIu64 " block%s, %s; live at B: %" PRIu64 " block%s, %s; net %s%" PRId64
                      " block%s, %s\n",
                  st->from_live_blocks, st->from_live_blocks == 1 ? "" : "s", s1, st->to_live_blocks,
                  st->to_live_blocks == 1 ? "" : "s", s2, st->net_blocks >= 0 ? "+" : "", st->net_blocks,
                  st->net_blocks == 1 || st->net_blocks == -1 ? "" : "s", s3);
    ms_buf_printf(&b, "  between A and B: %" PRIu64 " allocation%s, %" PRIu64 " release%s\n",
                  st->allocations_between, st->allocations_between == 1 ? "" : "s", st->deallocations_between,
                  st->deallocations_between == 1 ? "" : "s");
    render_side(diff, MEMSCOPE_DIFF_ALLOCATED, o, &b);
    render_side(diff, MEMSCOPE_DIFF_FREED, o, &b);
    return ms_buf_finish(&b, out, len);
}

static void json_point(struct ms_buf *b, const char *key, const struct named_point *np,
                       const struct memscope_point_info *pi)
{
    ms_buf_printf(b, "\"%s\":{\"kind\":\"%s\"", key, ms_point_kind_name(np->kind));
    if (np->kind == MEMSCOPE_AT_MARK) {
        ms_buf_puts(b, ",\"mark\":");
        ms_json_string(b, np->mark);
    }
    ms_buf_printf(b, ",\"events\":%" PRIu64 ",\"time_ns\":%" PRIu64 "}", pi->events, pi->time_ns);
}

static void json_side(struct ms_buf *b, const struct memscope_diff *d, int side, enum memscope_group_by by,
                      const struct memscope_symbolizer *sym)
{
    static const char *const key[] = {"allocated", "freed"};
    struct dgroup *g = NULL;
    size_t n = 0, i;

    ms_buf_printf(b, ",\"%s\":{\"blocks\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"groups\":[", key[side],
                  side == 0 ? d->st.allocated_blocks : d->st.freed_blocks,
                  side == 0 ? d->st.allocated_bytes : d->st.freed_bytes);
    if (by != MEMSCOPE_GROUP_NONE) {
        if (group_side(d, side, by, sym, &g, &n) != 0) {
            b->failed = 1;
            return;
        }
        for (i = 0; i < n; i++) {
            ms_buf_printf(b, "%s{\"name\":", i ? "," : "");
            ms_json_string(b, g[i].name);
            ms_buf_printf(b, ",\"blocks\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", g[i].count, g[i].bytes);
        }
        ms_engine_free(g);
    }
    ms_buf_puts(b, "],\"block_list\":[");
    for (i = 0; i < d->nside[side]; i++) {
        struct memscope_allocation a;
        to_allocation(&d->side[side][i], &a);
        ms_buf_printf(b, "%s{\"address\":\"0x%" PRIx64 "\",\"size\":%" PRIu64 ",\"thread\":%u,\"time_ns\":%" PRIu64,
                      i ? "," : "", a.address, a.size, a.thread, a.time_ns);
        if (a.label_name) {
            ms_buf_puts(b, ",\"label\":{\"name\":");
            ms_json_string(b, a.label_name);
            ms_buf_puts(b, ",\"type\":");
            ms_json_string(b, a.label_type ? a.label_type : "");
            ms_buf_puts(b, "}");
        }
        ms_buf_puts(b, "}");
    }
    ms_buf_puts(b, "]}");
}

MS_API int memscope_diff_render_json(const struct memscope_diff *diff, const struct memscope_render_options *opts,
                                     char **out, size_t *len)
{
    static const struct memscope_render_options defaults;
    const struct memscope_render_options *o = opts ? opts : &defaults;
    static const char *const group_name[] = {"none", "thread", "label", "size", "stack", "site"};
    const struct memscope_diff_stats *st;
    struct ms_buf b;

    if (!diff_valid(diff) || !out || ms_render_options_check(o) != 0)
        return -EINVAL;
    *out = NULL;
    st = &diff->st;
    ms_buf_init(&b);
    ms_buf_printf(&b, "{\"schema\":\"memscope-diff/1\",\"pid\":%u,", diff->pid);
    json_point(&b, "from", &diff->pa, &st->from);
    ms_buf_puts(&b, ",");
    json_point(&b, "to", &diff->pb, &st->to);
    ms_buf_printf(&b,
                  ",\"group_by\":\"%s\",\"summary\":{\"from_live_blocks\":%" PRIu64 ",\"from_live_bytes\":%" PRIu64
                  ",\"to_live_blocks\":%" PRIu64 ",\"to_live_bytes\":%" PRIu64 ",\"net_blocks\":%" PRId64
                  ",\"net_bytes\":%" PRId64 ",\"allocations_between\":%" PRIu64 ",\"deallocations_between\":%" PRIu64
                  ",\"dropped_events\":%" PRIu64 "}",
                  group_name[o->group_by], st->from_live_blocks, st->from_live_bytes, st->to_live_blocks,
                  st->to_live_bytes, st->net_blocks, st->net_bytes, st->allocations_between,
                  st->deallocations_between, diff->b->stats.dropped_events);
    json_side(&b, diff, MEMSCOPE_DIFF_ALLOCATED, o->group_by, o->symbolizer);
    json_side(&b, diff, MEMSCOPE_DIFF_FREED, o->group_by, o->symbolizer);
    ms_buf_puts(&b, "}\n");
    return ms_buf_finish(&b, out, len);
}
