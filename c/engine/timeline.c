/*
 * timeline.c - live bytes over the whole history: one replay sampled into
 * buckets of equal time, each keeping its maximum (so the peak is never lost
 * between samples), minimum and end level; the exact peak and the marks
 * located; drawn as a terminal chart with the table of figures behind it,
 * or written as JSON (schema memscope-timeline/1). Marks folded into the
 * checkpoint are listed first, flagged: they lie before the chart's span.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "render.h"

#define MS_TIMELINE_MAGIC UINT64_C(0x656e696c656d6974) /* "timeline" */
#define MS_TIMELINE_MAX_BUCKETS 100000u

struct tl_mark {
    uint32_t name;       /* offset in the timeline's pool of the name, or UINT32_MAX (unreadable) */
    uint16_t added;      /* given by the caller (memscope_history_timeline_marks), not in the store */
    uint16_t folded;     /* kept by the checkpoint: before the horizon, outside the buckets */
    uint64_t time_ns;
    uint64_t events;
    uint64_t live_bytes;
    uint64_t bucket;
};

struct memscope_timeline {
    uint64_t magic;                           /* MS_TIMELINE_MAGIC while valid */
    struct memscope_timeline_info info;       /* the figures */
    struct memscope_timeline_bucket *buckets; /* info.buckets entries */
    struct tl_mark *marks;                    /* info.marks entries */
    char *pool;                               /* the marks' names */
};

/* State of the sampling replay. */
struct sampler {
    struct memscope_timeline *tl;
    const struct memscope_history *h;
    uint64_t first, span;      /* first event's time; last - first */
    uint64_t cur;              /* bucket of the previous event */
    uint64_t level;            /* live bytes after the previous event */
    uint64_t allocs, frees;    /* totals after the previous event */
    size_t nmarks, pool_len;   /* marks and pool bytes used so far */
    uint64_t peak, peak_events;
    const struct memscope_time_mark *extra; /* the caller's marks, and their order by time */
    const size_t *extra_order;
    size_t nextra, next_extra; /* how many, and the next to place */
};

static uint64_t bucket_of(const struct sampler *s, uint64_t t);

/* Records a mark at the current level. */
static void add_mark(struct sampler *s, const char *name, uint64_t time, uint64_t events, uint64_t bucket, int added)
{
    struct tl_mark *m = &s->tl->marks[s->nmarks++];

    m->name = UINT32_MAX;
    if (name) {
        size_t l = strlen(name) + 1;
        memcpy(s->tl->pool + s->pool_len, name, l);
        m->name = (uint32_t)s->pool_len;
        s->pool_len += l;
    }
    m->added = (uint16_t)added;
    m->folded = 0;
    m->time_ns = time;
    m->events = events + s->h->ck.folded_events; /* event numbers count the folded events */
    m->live_bytes = s->level;
    m->bucket = bucket;
}

/* Places the caller's marks that come before time `before` (at the level reached after `events` events). */
static void place_extra(struct sampler *s, uint64_t before, uint64_t events)
{
    while (s->next_extra < s->nextra) {
        const struct memscope_time_mark *x = &s->extra[s->extra_order[s->next_extra]];
        if (x->time_ns >= before)
            break;
        add_mark(s, x->name, x->time_ns, events, bucket_of(s, x->time_ns < s->first ? s->first : x->time_ns), 1);
        s->next_extra++;
    }
}

static uint64_t bucket_of(const struct sampler *s, uint64_t t)
{
    uint64_t n = s->tl->info.buckets;
    unsigned __int128 x;

    if (s->span == 0)
        return 0;
    x = (unsigned __int128)(t - s->first) * n / ((unsigned __int128)s->span + 1);
    return (uint64_t)x < n ? (uint64_t)x : n - 1;
}

/* Bucket k starts at the level the previous one ended at. */
static void open_bucket(struct sampler *s, uint64_t k)
{
    struct memscope_timeline_bucket *bk = &s->tl->buckets[k];

    bk->max_bytes = bk->min_bytes = bk->end_bytes = s->level;
}

static void sample(void *arg, uint64_t index, const struct ms_event *e, const struct memscope_stats *st)
{
    struct sampler *s = arg;
    uint64_t k = bucket_of(s, e->time);
    struct memscope_timeline_bucket *bk;

    while (s->cur < k) {
        s->cur++;
        open_bucket(s, s->cur);
    }
    bk = &s->tl->buckets[k];
    s->level = st->current_memory;
    if (s->level > bk->max_bytes)
        bk->max_bytes = s->level;
    if (s->level < bk->min_bytes)
        bk->min_bytes = s->level;
    bk->end_bytes = s->level;
    bk->events++;
    bk->allocations += st->total_allocations - s->allocs;
    /* A failed realloc takes its release back: never below zero in a bucket. */
    if (st->total_deallocations >= s->frees)
        bk->deallocations += st->total_deallocations - s->frees;
    else if (bk->deallocations >= s->frees - st->total_deallocations)
        bk->deallocations -= s->frees - st->total_deallocations;
    else
        bk->deallocations = 0;
    s->allocs = st->total_allocations;
    s->frees = st->total_deallocations;
    if (s->level > s->peak) {
        s->peak = s->level;
        s->peak_events = index + 1;
    }
    if (MS_EV_KIND(e->info) == MEMSCOPE_REC_MARK) {
        int readable = e->size != MS_TEXT_UNREADABLE && e->size < s->h->ntexts;
        add_mark(s, readable ? s->h->pool + s->h->texts[e->size].name : NULL, e->time, index + 1, k, 0);
    }
    if (s->next_extra < s->nextra)
        place_extra(s, index + 1 < s->h->nevents ? s->h->events[index + 1].time : UINT64_MAX, index + 1);
}

MS_API void memscope_timeline_free(struct memscope_timeline *tl)
{
    if (!tl || tl->magic != MS_TIMELINE_MAGIC)
        return;
    tl->magic = 0;
    ms_engine_big_free(tl->buckets);
    ms_engine_free(tl->marks);
    ms_engine_free(tl->pool);
    ms_engine_free(tl);
}

static int extra_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct memscope_time_mark *x = ctx;
    uint64_t a = x[*(const size_t *)pa].time_ns, b = x[*(const size_t *)pb].time_ns;

    return a < b ? -1 : a > b;
}

MS_API int memscope_history_timeline(const struct memscope_history *h, unsigned buckets,
                                     struct memscope_timeline **out)
{
    return memscope_history_timeline_marks(h, buckets, NULL, 0, out);
}

MS_API int memscope_history_timeline_marks(const struct memscope_history *h, unsigned buckets,
                                           const struct memscope_time_mark *extra, size_t nextra,
                                           struct memscope_timeline **out)
{
    struct memscope_timeline *tl;
    struct sampler s;
    struct memscope_stats st;
    size_t pool = 1, *order = NULL;
    uint64_t i;
    int rc;

    if (!ms_history_valid(h) || !out || buckets == 0 || buckets > MS_TIMELINE_MAX_BUCKETS ||
        (nextra && !extra) || nextra > 100000)
        return -EINVAL;
    *out = NULL;
    for (i = 0; i < nextra; i++)
        if (!extra[i].name || strlen(extra[i].name) > 4096)
            return -EINVAL;
    if (h->nevents == 0)
        return -ENODATA;
    for (i = 0; i < h->nevents; i++) /* room for the marks' names */
        if (MS_EV_KIND(h->events[i].info) == MEMSCOPE_REC_MARK && h->events[i].size != MS_TEXT_UNREADABLE &&
            h->events[i].size < h->ntexts)
            pool += strlen(h->pool + h->texts[h->events[i].size].name) + 1;
    for (i = 0; i < h->ck.nmarks; i++)
        if (h->ck.marks[i].text != MS_TEXT_UNREADABLE && h->ck.marks[i].text < h->ntexts)
            pool += strlen(h->pool + h->texts[h->ck.marks[i].text].name) + 1;
    for (i = 0; i < nextra; i++)
        pool += strlen(extra[i].name) + 1;
    order = ms_engine_alloc((nextra ? nextra : 1) * sizeof(*order));
    if (!order)
        return -ENOMEM;
    for (i = 0; i < nextra; i++)
        order[i] = i;
    if (nextra > 1 && ms_sort(order, nextra, sizeof(*order), extra_cmp, (void *)extra) != 0) {
        ms_engine_free(order);
        return -ENOMEM;
    }
    tl = ms_engine_calloc(1, sizeof(*tl));
    if (!tl) {
        ms_engine_free(order);
        return -ENOMEM;
    }
    tl->magic = MS_TIMELINE_MAGIC;
    tl->info.buckets = buckets;
    tl->info.marks = h->nmarks;
    tl->info.pid = h->pid;
    tl->info.events = h->nevents;
    tl->info.first_time_ns = h->events[0].time;
    tl->info.last_time_ns = h->events[h->nevents - 1].time;
    tl->buckets = ms_engine_big_alloc(buckets * sizeof(*tl->buckets), 1);
    tl->marks = ms_engine_calloc(h->nmarks + h->ck.nmarks + nextra ? h->nmarks + h->ck.nmarks + nextra : 1,
                                 sizeof(*tl->marks));
    tl->pool = ms_engine_alloc(pool);
    if (!tl->buckets || !tl->marks || !tl->pool) {
        ms_engine_free(order);
        memscope_timeline_free(tl);
        return -ENOMEM;
    }
    memset(&s, 0, sizeof(s));
    s.tl = tl;
    s.h = h;
    s.first = tl->info.first_time_ns;
    s.span = tl->info.last_time_ns - s.first;
    s.extra = extra;
    s.extra_order = order;
    s.nextra = nextra;
    s.level = h->ck.st.current_memory; /* a checkpoint's figures are where the replay starts */
    s.allocs = h->ck.st.total_allocations;
    s.frees = h->ck.st.total_deallocations;
    open_bucket(&s, 0);
    for (i = 0; i < h->ck.nmarks; i++) { /* the folded marks: their figures are the checkpoint's */
        const struct ms_ck_mark *m = &h->ck.marks[i];
        int readable = m->text != MS_TEXT_UNREADABLE && m->text < h->ntexts;
        add_mark(&s, readable ? h->pool + h->texts[m->text].name : NULL, m->time_ns, 0, 0, 0);
        tl->marks[s.nmarks - 1].events = m->events;
        tl->marks[s.nmarks - 1].live_bytes = m->live_bytes;
        tl->marks[s.nmarks - 1].folded = 1;
    }
    place_extra(&s, s.first, 0); /* marks before the first event: nothing live yet */
    rc = ms_replay_each(h, h->nevents, sample, &s, &st);
    ms_engine_free(order);
    if (rc != 0) {
        memscope_timeline_free(tl);
        return rc;
    }
    while (s.cur + 1 < buckets) {
        s.cur++;
        open_bucket(&s, s.cur);
    }
    for (i = 0; i < buckets; i++) {
        unsigned __int128 lo = (unsigned __int128)(s.span + 1) * i / buckets;
        unsigned __int128 hi = (unsigned __int128)(s.span + 1) * (i + 1) / buckets;
        tl->buckets[i].start_ns = s.first + (uint64_t)lo;
        tl->buckets[i].end_ns = s.first + (hi > lo ? (uint64_t)hi - 1 : (uint64_t)lo);
    }
    tl->info.marks = s.nmarks;
    tl->info.peak_bytes = st.peak_memory;
    tl->info.peak_time_ns = st.peak_time_ns;
    tl->info.peak_events = s.peak_events ? s.peak_events + h->ck.folded_events : 0;
    tl->info.peak_bucket = s.peak_events ? bucket_of(&s, h->events[s.peak_events - 1].time) : 0;
    tl->info.end_bytes = st.current_memory;
    *out = tl;
    return 0;
}

static int tl_valid(const struct memscope_timeline *tl)
{
    return tl && tl->magic == MS_TIMELINE_MAGIC;
}

MS_API int memscope_timeline_info(const struct memscope_timeline *tl, struct memscope_timeline_info *out)
{
    if (!tl_valid(tl) || !out)
        return -EINVAL;
    *out = tl->info;
    return 0;
}

MS_API int memscope_timeline_bucket(const struct memscope_timeline *tl, size_t index,
                                    struct memscope_timeline_bucket *out)
{
    if (!tl_valid(tl) || !out)
        return -EINVAL;
    if (index >= tl->info.buckets)
        return -ERANGE;
    *out = tl->buckets[index];
    return 0;
}

static const char *mark_name(const struct memscope_timeline *tl, const struct tl_mark *m)
{
    return m->name == UINT32_MAX ? "(unreadable)" : tl->pool + m->name;
}

MS_API int memscope_timeline_mark(const struct memscope_timeline *tl, size_t index, struct memscope_timeline_mark *out)
{
    const struct tl_mark *m;

    if (!tl_valid(tl) || !out)
        return -EINVAL;
    if (index >= tl->info.marks)
        return -ERANGE;
    m = &tl->marks[index];
    out->name = mark_name(tl, m);
    out->time_ns = m->time_ns;
    out->events = m->events;
    out->live_bytes = m->live_bytes;
    out->bucket = m->bucket;
    out->added = m->added;
    out->folded = m->folded;
    return 0;
}

/* ---- text ---- */

/* Seconds as users type them back into --at: to the us for histories under 10 s, else to the ms. */
static void tl_time(const struct memscope_timeline *tl, uint64_t ns, char *buf, size_t len)
{
    if (tl->info.last_time_ns < UINT64_C(10000000000))
        ms_format_time_us(ns, buf, len);
    else
        ms_format_time(ns, buf, len);
}

/* Letter of the i-th mark in the chart: a..z, then A..Z, then '+'. */
static char mark_letter(size_t i)
{
    if (i < 26)
        return (char)('a' + i);
    if (i < 52)
        return (char)('A' + i - 26);
    return '+';
}

MS_API int memscope_timeline_render_text(const struct memscope_timeline *tl,
                                         const struct memscope_timeline_options *opts, char **out, size_t *len)
{
    static const struct memscope_timeline_options defaults;
    const struct memscope_timeline_options *o = opts ? opts : &defaults;
    const struct memscope_timeline_info *in;
    struct memscope_render_options ro;
    unsigned height, rows, r;
    uint64_t nb, i, k, per, folded = 0;
    char *line = NULL;
    char sz[64], t1[32], t2[32], axis[32];
    size_t lw = 12;
    struct ms_buf b;
    struct ms_table t;

    if (!tl_valid(tl) || !out)
        return -EINVAL;
    *out = NULL;
    in = &tl->info;
    nb = in->buckets;
    for (i = 0; i < in->marks; i++)
        folded += tl->marks[i].folded;
    height = o->height ? o->height : 12;
    rows = o->table_rows ? o->table_rows : 12;
    memset(&ro, 0, sizeof(ro));
    ro.exact_bytes = o->exact_bytes;
    line = ms_engine_alloc(nb + 1);
    if (!line)
        return -ENOMEM;
    ms_buf_init(&b);
    ms_format_size(in->peak_bytes, sz, sizeof(sz));
    tl_time(tl, in->peak_time_ns, t1, sizeof(t1));
    tl_time(tl, in->last_time_ns, t2, sizeof(t2));
    ms_buf_printf(&b, "%smemscope timeline%s of pid %u: %" PRIu64 " events up to %s, peak %s at %s (P)\n",
                  o->color ? "\033[1m" : "", o->color ? "\033[0m" : "", in->pid, in->events, t2, sz, t1);
    /* The peak's column line, then the bars: row r (1 = top) is filled where max >= peak * (height-r+1/2)/height. */
    memset(line, ' ', nb);
    line[in->peak_bucket] = 'P';
    line[nb] = '\0';
    ms_buf_printf(&b, "%*s %s\n", (int)lw, "", line);
    for (r = 0; r < height; r++) {
        uint64_t level_num = (uint64_t)(height - r) * 2 - 1; /* cell r is filled at >= peak * level_num / (2 height) */
        for (i = 0; i < nb; i++) {
            unsigned __int128 need = (unsigned __int128)in->peak_bytes * level_num;
            unsigned __int128 have = (unsigned __int128)tl->buckets[i].max_bytes * 2 * height;
            line[i] = in->peak_bytes && have >= need ? '#' : ' ';
        }
        axis[0] = '\0';
        if (r == 0)
            ms_format_size(in->peak_bytes, axis, sizeof(axis));
        else if (r == height / 2 && height >= 4)
            ms_format_size(in->peak_bytes * (height - r) / height, axis, sizeof(axis));
        ms_buf_printf(&b, "%*s |%s\n", (int)lw - 1, axis, line);
    }
    memset(line, '-', nb);
    ms_buf_printf(&b, "%*s +%s\n", (int)lw - 1, "0 B", line);
    /* Marks under the axis (folded ones lie before it: listed only). */
    if (in->marks > folded) {
        memset(line, ' ', nb);
        for (i = 0, k = 0; i < in->marks; i++) {
            char *c = &line[tl->marks[i].bucket];
            if (tl->marks[i].folded)
                continue;
            *c = *c == ' ' ? mark_letter(k) : '*';
            k++;
        }
        ms_buf_printf(&b, "%*s %s\n", (int)lw, "marks", line);
    }
    tl_time(tl, in->first_time_ns, t1, sizeof(t1));
    ms_buf_printf(&b, "%*s %s", (int)lw, "", t1);
    if (nb > strlen(t1) + strlen(t2) + 1)
        ms_buf_pad(&b, ' ', nb - strlen(t1) - strlen(t2));
    else
        ms_buf_puts(&b, " ");
    ms_buf_printf(&b, "%s\n", t2);
    for (i = 0, k = 0; i < in->marks; i++) {
        const struct tl_mark *m = &tl->marks[i];
        tl_time(tl, m->time_ns, t1, sizeof(t1));
        ms_size_text(&ro, m->live_bytes, sz, sizeof(sz));
        ms_buf_printf(&b, "  %c  mark '%s'%s at %s, event %" PRIu64 ", %s live%s\n", m->folded ? '<' : mark_letter(k),
                      mark_name(tl, m), m->added ? " (kept by the debugger)" : "", t1, m->events, sz,
                      m->folded ? " (folded into the checkpoint: before the horizon)" : "");
        k += !m->folded;
    }
    tl_time(tl, in->peak_time_ns, t1, sizeof(t1));
    ms_size_text(&ro, in->peak_bytes, sz, sizeof(sz));
    ms_buf_printf(&b, "  P  peak %s at %s, event %" PRIu64 "\n", sz, t1, in->peak_events);
    /* The table: consecutive buckets merged into at most `rows` rows. */
    per = (nb + rows - 1) / rows;
    rows = (unsigned)((nb + per - 1) / per);
    if (ms_table_init(&t, 7, rows + 1) != 0) {
        b.failed = 1;
        goto done;
    }
    ms_table_set(&t, 0, 0, "from");
    ms_table_set(&t, 0, 1, "to");
    ms_table_set(&t, 0, 2, "max live");
    ms_table_set(&t, 0, 3, "live at end");
    ms_table_set(&t, 0, 4, "allocs");
    ms_table_set(&t, 0, 5, "frees");
    ms_table_set(&t, 0, 6, "peak");
    t.align_left[6] = 1;
    for (r = 0; r < rows; r++) {
        uint64_t lo = (uint64_t)r * per, hi = lo + per < nb ? lo + per : nb, mx = 0, na = 0, nf = 0;
        for (i = lo; i < hi; i++) {
            if (tl->buckets[i].max_bytes > mx)
                mx = tl->buckets[i].max_bytes;
            na += tl->buckets[i].allocations;
            nf += tl->buckets[i].deallocations;
        }
        tl_time(tl, tl->buckets[lo].start_ns, t1, sizeof(t1));
        ms_table_set(&t, r + 1, 0, "%s", t1);
        tl_time(tl, tl->buckets[hi - 1].end_ns, t1, sizeof(t1));
        ms_table_set(&t, r + 1, 1, "%s", t1);
        ms_size_text(&ro, mx, sz, sizeof(sz));
        ms_table_set(&t, r + 1, 2, "%s", sz);
        ms_table_set(&t, r + 1, 6, "%s", in->peak_bucket >= lo && in->peak_bucket < hi ? "P" : "");
        ms_size_text(&ro, tl->buckets[hi - 1].end_bytes, sz, sizeof(sz));
        ms_table_set(&t, r + 1, 3, "%s", sz);
        ms_table_set(&t, r + 1, 4, "%" PRIu64, na);
        ms_table_set(&t, r + 1, 5, "%" PRIu64, nf);
    }
    ms_buf_puts(&b, "\n");
    ms_table_render(&t, &b, "  ", o->color);
    ms_table_free(&t);
done:
    ms_engine_free(line);
    return ms_buf_finish(&b, out, len);
}

/* ---- JSON ---- */

MS_API int memscope_timeline_render_json(const struct memscope_timeline *tl, char **out, size_t *len)
{
    const struct memscope_timeline_info *in;
    struct ms_buf b;
    uint64_t i;

    if (!tl_valid(tl) || !out)
        return -EINVAL;
    *out = NULL;
    in = &tl->info;
    ms_buf_init(&b);
    ms_buf_printf(&b,
                  "{\"schema\":\"memscope-timeline/1\",\"pid\":%u,\"events\":%" PRIu64 ",\"first_time_ns\":%" PRIu64
                  ",\"last_time_ns\":%" PRIu64 ",\"end_bytes\":%" PRIu64 ",\"peak\":{\"bytes\":%" PRIu64
                  ",\"time_ns\":%" PRIu64 ",\"events\":%" PRIu64 ",\"bucket\":%" PRIu64 "},\"buckets\":[",
                  in->pid, in->events, in->first_time_ns, in->last_time_ns, in->end_bytes, in->peak_bytes,
                  in->peak_time_ns, in->peak_events, in->peak_bucket);
    for (i = 0; i < in->buckets; i++) {
        const struct memscope_timeline_bucket *k = &tl->buckets[i];
        ms_buf_printf(&b,
                      "%s{\"start_ns\":%" PRIu64 ",\"end_ns\":%" PRIu64 ",\"max_bytes\":%" PRIu64
                      ",\"min_bytes\":%" PRIu64 ",\"end_bytes\":%" PRIu64 ",\"allocations\":%" PRIu64
                      ",\"deallocations\":%" PRIu64 ",\"events\":%" PRIu64 "}",
                      i ? "," : "", k->start_ns, k->end_ns, k->max_bytes, k->min_bytes, k->end_bytes, k->allocations,
                      k->deallocations, k->events);
    }
    ms_buf_puts(&b, "],\"marks\":[");
    for (i = 0; i < in->marks; i++) {
        const struct tl_mark *m = &tl->marks[i];
        ms_buf_printf(&b, "%s{\"name\":", i ? "," : "");
        ms_json_string(&b, mark_name(tl, m));
        ms_buf_printf(&b,
                      ",\"time_ns\":%" PRIu64 ",\"events\":%" PRIu64 ",\"live_bytes\":%" PRIu64 ",\"bucket\":%" PRIu64
                      "%s%s}",
                      m->time_ns, m->events, m->live_bytes, m->bucket, m->added ? ",\"added\":true" : "",
                      m->folded ? ",\"folded\":true" : "");
    }
    ms_buf_puts(&b, "]}\n");
    return ms_buf_finish(&b, out, len);
}
