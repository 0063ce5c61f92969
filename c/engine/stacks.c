/*
 * stacks.c - the call stack table: reading it out of a store, the stack of
 * a block, and everything rendered from stacks (groups by site and by
 * stack, one stack's frames, the collapsed-stack "folded" export).
 *
 * The table (store_abi.h, struct memscope_stack_table) is read whole when
 * the history is opened. Its damage never stops the history from opening:
 * a table that cannot be trusted leaves every stack unreadable with a
 * sentence saying why (stacks.error), an entry that cannot be trusted
 * leaves that one stack unreadable, and a record naming an id the table
 * does not hold shows as an unreadable stack too.
 *
 * Symbolization belongs to the front end: renderers take an optional
 * symbolizer (memscope_render_options.symbolizer) and call it once per
 * render with every distinct return address they need, sorted. Frames the
 * reader should not see as "the site" (the allocator: libmemscope, the
 * malloc family, operator new and libstdc++, libc) are hidden by name here,
 * so every front end hides the same ones.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "render.h"

#define MS_STACK_READ_PIECE (4u << 20)
#define MS_STACK_MAX_MAP (UINT64_C(1) << 33) /* 8 GiB: a larger table is damage */

static int piece_read(const struct memscope_source *src, uint64_t addr, void *buf, size_t len)
{
    uint64_t end;

    if (__builtin_add_overflow(addr, (uint64_t)len, &end))
        return -EFAULT;
    while (len > 0) {
        size_t piece = len < MS_STACK_READ_PIECE ? len : MS_STACK_READ_PIECE;
        int rc = src->read(src->ctx, addr, buf, piece);
        if (rc != 0)
            return -EFAULT;
        addr += piece;
        buf = (char *)buf + piece;
        len -= piece;
    }
    return 0;
}

static void set_error(struct ms_stacks *st, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_error(struct ms_stacks *st, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->error, sizeof(st->error), fmt, ap);
    va_end(ap);
    st->status = status;
    ms_engine_free(st->entries);
    ms_engine_free(st->frames);
    st->entries = NULL;
    st->frames = NULL;
    st->count = 0;
    st->nframes = 0;
}

/* Is [addr, addr + n * size) inside [base, base + map)? */
static int inside(uint64_t base, uint64_t map, uint64_t addr, uint64_t n, uint64_t size)
{
    uint64_t bytes;

    if (__builtin_mul_overflow(n, size, &bytes))
        return 0;
    return addr >= base && addr - base <= map && bytes <= map - (addr - base);
}

int ms_stacks_read(const struct memscope_source *src, uint64_t table, struct ms_stacks *st)
{
    struct memscope_stack_table t;
    uint64_t i, n, nf;

    memset(st, 0, sizeof(*st));
    if (table == 0)
        return 0;
    if (piece_read(src, table, &t, sizeof(t)) != 0) {
        set_error(st, -EFAULT, "the stack table at 0x%" PRIx64 " cannot be read", table);
        return 0;
    }
    if (t.magic != MEMSCOPE_STACK_TABLE_MAGIC) {
        set_error(st, -EBADMSG, "the stack table at 0x%" PRIx64 " has a bad magic", table);
        return 0;
    }
    if (t.header_size != sizeof(t) || t.entry_size != sizeof(struct memscope_stack_entry)) {
        set_error(st, -EBADMSG, "stack table: header_size %u / entry_size %u, expected %zu / %zu", t.header_size,
                  t.entry_size, sizeof(t), sizeof(struct memscope_stack_entry));
        return 0;
    }
    if (t.map_size < sizeof(t) || t.map_size > MS_STACK_MAX_MAP) {
        set_error(st, -EBADMSG, "stack table: map_size %" PRIu64 " is not possible", t.map_size);
        return 0;
    }
    if (t.max_depth < 1 || t.max_depth > MEMSCOPE_STACK_MAX_DEPTH) {
        set_error(st, -EBADMSG, "stack table: max_depth %u outside 1..%u", t.max_depth, MEMSCOPE_STACK_MAX_DEPTH);
        return 0;
    }
    if (t.capacity > UINT32_MAX || !inside(table, t.map_size, t.entries, t.capacity, sizeof(struct memscope_stack_entry))) {
        set_error(st, -EBADMSG, "stack table: %" PRIu64 " entries at 0x%" PRIx64 " lie outside its %" PRIu64 " bytes",
                  t.capacity, t.entries, t.map_size);
        return 0;
    }
    if (!inside(table, t.map_size, t.frames, t.frame_capacity, 8)) {
        set_error(st, -EBADMSG, "stack table: %" PRIu64 " frames at 0x%" PRIx64 " lie outside its %" PRIu64 " bytes",
                  t.frame_capacity, t.frames, t.map_size);
        return 0;
    }
    /* The runtime may take an id or frames past capacity and refuse them (store_abi.h). */
    n = t.count < t.capacity ? t.count : t.capacity;
    nf = t.frames_used < t.frame_capacity ? t.frames_used : t.frame_capacity;
    st->truncated = t.truncated;
    st->lost = t.lost;
    st->method = t.method;
    st->max_depth = t.max_depth;
    st->entries = ms_engine_alloc((size_t)(n ? n : 1) * sizeof(*st->entries));
    st->frames = ms_engine_alloc((size_t)(nf ? nf : 1) * sizeof(*st->frames));
    if (!st->entries || !st->frames) {
        set_error(st, -ENOMEM, "out of memory reading the stack table");
        return -ENOMEM;
    }
    if (piece_read(src, t.entries, st->entries, n * sizeof(*st->entries)) != 0 ||
        piece_read(src, t.frames, st->frames, nf * sizeof(*st->frames)) != 0) {
        set_error(st, -EFAULT, "the stack table at 0x%" PRIx64 " claims memory that cannot be read", table);
        return 0;
    }
    st->count = n;
    st->nframes = nf;
    /* Entries that cannot be trusted become unreadable (depth 0). */
    for (i = 0; i < n; i++) {
        struct memscope_stack_entry *e = &st->entries[i];
        if (e->depth == 0 || e->depth > t.max_depth || e->first > nf || e->depth > nf - e->first) {
            e->depth = 0;
            st->unreadable++;
        }
    }
    return 0;
}

void ms_stacks_free(struct ms_stacks *st)
{
    ms_engine_free(st->entries);
    ms_engine_free(st->frames);
    memset(st, 0, sizeof(*st));
}

int ms_stacks_copy(struct ms_stacks *dst, const struct ms_stacks *src)
{
    *dst = *src;
    dst->entries = NULL;
    dst->frames = NULL;
    if (!src->entries)
        return 0;
    dst->entries = ms_engine_alloc((size_t)(src->count ? src->count : 1) * sizeof(*dst->entries));
    dst->frames = ms_engine_alloc((size_t)(src->nframes ? src->nframes : 1) * sizeof(*dst->frames));
    if (!dst->entries || !dst->frames) {
        ms_stacks_free(dst);
        return -ENOMEM;
    }
    memcpy(dst->entries, src->entries, (size_t)src->count * sizeof(*dst->entries));
    memcpy(dst->frames, src->frames, (size_t)src->nframes * sizeof(*dst->frames));
    return 0;
}

/* Frames of stack id: 0 and the frames and depth, -ENOENT (id 0: no stack), -EBADMSG (unreadable). */
static int stack_of(const struct ms_stacks *st, uint32_t id, const uint64_t **pcs, uint32_t *depth)
{
    if (id == 0)
        return -ENOENT;
    if (id > st->count || st->entries[id - 1].depth == 0)
        return -EBADMSG;
    *pcs = &st->frames[st->entries[id - 1].first];
    *depth = st->entries[id - 1].depth;
    return 0;
}

/* ---- public queries ---- */

MS_API int memscope_snapshot_stacks_info(const struct memscope_snapshot *snapshot, struct memscope_stacks_info *out)
{
    if (!ms_snapshot_valid(snapshot) || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->stacks = snapshot->stacks.count;
    out->frames = snapshot->stacks.nframes;
    out->unreadable = snapshot->stacks.unreadable;
    out->truncated = snapshot->stacks.truncated;
    out->lost = snapshot->stacks.lost;
    out->method = snapshot->stacks.method;
    out->max_depth = snapshot->stacks.max_depth;
    out->status = snapshot->stacks.status;
    out->error = snapshot->stacks.status ? snapshot->stacks.error : NULL;
    return 0;
}

MS_API int memscope_snapshot_stack(const struct memscope_snapshot *snapshot, uint32_t id, uint64_t *pcs, size_t max,
                                   size_t *depth)
{
    const uint64_t *f;
    uint32_t n;
    int rc;

    if (!ms_snapshot_valid(snapshot) || (!pcs && max) || !depth)
        return -EINVAL;
    rc = stack_of(&snapshot->stacks, id, &f, &n);
    if (rc != 0)
        return rc;
    memcpy(pcs, f, (n < max ? n : max) * sizeof(*pcs));
    *depth = n;
    return 0;
}

/* ---- symbolization ---- */

/* Distinct return addresses, sorted, and their symbols. */
struct symtab {
    uint64_t *pcs;              /* sorted, distinct */
    struct memscope_frame *fr;  /* per pc (zeroed: unknown) */
    uint8_t *hidden;            /* per pc: an allocator frame */
    size_t n;                   /* pcs */
};

static int u64_cmp(const void *a, const void *b, void *ctx)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int u32_cmp(const void *a, const void *b, void *ctx)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path;
}

/* Whether function fn is the wrapper named name: equal, or equal up to the '(' of its parameters. */
static int wrapper_is(const char *fn, const char *name)
{
    size_t n = strlen(name);
    return strncmp(fn, name, n) == 0 && (fn[n] == '\0' || fn[n] == '(');
}

int ms_frame_hidden(const struct memscope_frame *f, const char *const *alloc_fns)
{
    static const char *const names[] = {"malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign",
                                        "aligned_alloc", "memalign", "valloc", "pvalloc", "__libc_malloc",
                                        "__libc_calloc", "__libc_realloc", "strdup", "strndup", NULL};
    const char *mod = base_name(f->module), *fn = f->function;
    size_t i;

    if (mod && (strncmp(mod, "libmemscope", 11) == 0 || strncmp(mod, "libstdc++", 9) == 0 ||
                strncmp(mod, "libc.so", 7) == 0 || strncmp(mod, "libc-", 5) == 0))
        return 1;
    if (!fn)
        return 0;
    for (i = 0; names[i]; i++)
        if (strcmp(fn, names[i]) == 0)
            return 1;
    for (i = 0; alloc_fns && alloc_fns[i]; i++)
        if (wrapper_is(fn, alloc_fns[i]))
            return 1;
    return strncmp(fn, "operator new", 12) == 0 || strncmp(fn, "__gnu_cxx::new_allocator", 24) == 0 ||
           strncmp(fn, "std::__new_allocator", 20) == 0 || strncmp(fn, "memscope_", 9) == 0;
}

/*
 * Gathers the distinct pcs of the given stack ids (all frames) and asks the
 * symbolizer once. Without a symbolizer every frame is unknown and nothing
 * is hidden. Returns 0 or -ENOMEM.
 */
static int symtab_build(struct symtab *sy, const struct ms_stacks *st, const uint32_t *ids, size_t nids,
                        const struct memscope_symbolizer *sym)
{
    size_t total = 0, i, k;

    memset(sy, 0, sizeof(*sy));
    for (i = 0; i < nids; i++) {
        const uint64_t *f;
        uint32_t d;
        if (stack_of(st, ids[i], &f, &d) == 0)
            total += d;
    }
    sy->pcs = ms_engine_alloc((total ? total : 1) * sizeof(*sy->pcs));
    if (!sy->pcs)
        return -ENOMEM;
    for (i = 0, k = 0; i < nids; i++) {
        const uint64_t *f;
        uint32_t d;
        if (stack_of(st, ids[i], &f, &d) == 0) {
            memcpy(&sy->pcs[k], f, d * sizeof(*f));
            k += d;
        }
    }
    if (ms_sort(sy->pcs, k, sizeof(*sy->pcs), u64_cmp, NULL) != 0)
        return -ENOMEM;
    for (i = 0, sy->n = 0; i < k; i++)
        if (sy->n == 0 || sy->pcs[sy->n - 1] != sy->pcs[i])
            sy->pcs[sy->n++] = sy->pcs[i];
    sy->fr = ms_engine_calloc(sy->n ? sy->n : 1, sizeof(*sy->fr));
    sy->hidden = ms_engine_calloc(sy->n ? sy->n : 1, 1);
    if (!sy->fr || !sy->hidden)
        return -ENOMEM;
    if (sym && sym->symbolize && sy->n) {
        if (sym->symbolize(sym->ctx, sy->pcs, sy->n, sy->fr) != 0)
            memset(sy->fr, 0, sy->n * sizeof(*sy->fr)); /* a failing symbolizer: addresses only */
        for (i = 0; i < sy->n; i++)
            sy->hidden[i] = (uint8_t)ms_frame_hidden(&sy->fr[i], sym->alloc_fns);
    }
    return 0;
}

static void symtab_free(struct symtab *sy)
{
    ms_engine_free(sy->pcs);
    ms_engine_free(sy->fr);
    ms_engine_free(sy->hidden);
    memset(sy, 0, sizeof(*sy));
}

static size_t symtab_find(const struct symtab *sy, uint64_t pc)
{
    size_t lo = 0, hi = sy->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sy->pcs[mid] < pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo; /* pc is always present */
}

/* Index in the stack of its site: the first frame not hidden (0 when all are). */
static uint32_t site_index(const struct symtab *sy, const uint64_t *f, uint32_t d)
{
    for (uint32_t i = 0; i < d; i++)
        if (!sy->hidden[symtab_find(sy, f[i])])
            return i;
    return 0;
}

/* "function", or "0x..." (with "module+0x..." unknown). */
static void frame_function(const struct symtab *sy, uint64_t pc, char *buf, size_t len)
{
    const struct memscope_frame *fr = &sy->fr[symtab_find(sy, pc)];
    if (fr->function && fr->function[0])
        snprintf(buf, len, "%s", fr->function);
    else
        snprintf(buf, len, "0x%" PRIx64, pc);
}

static void frame_location(const struct symtab *sy, uint64_t pc, char *buf, size_t len)
{
    const struct memscope_frame *fr = &sy->fr[symtab_find(sy, pc)];
    if (fr->file && fr->file[0])
        snprintf(buf, len, "%s:%u", fr->file, fr->line);
    else
        snprintf(buf, len, "?");
}

static void frame_module(const struct symtab *sy, uint64_t pc, char *buf, size_t len)
{
    const struct memscope_frame *fr = &sy->fr[symtab_find(sy, pc)];
    snprintf(buf, len, "%s", fr->module && fr->module[0] ? base_name(fr->module) : "?");
}

/* Live block stack ids, distinct, sorted. */
static uint32_t *live_stack_ids(const struct memscope_snapshot *s, size_t *n)
{
    uint32_t *ids = ms_engine_alloc((s->nblocks ? s->nblocks : 1) * sizeof(*ids));
    size_t i, k = 0;

    if (!ids)
        return NULL;
    for (i = 0; i < s->nblocks; i++)
        ids[i] = s->blocks[i].stack;
    if (ms_sort(ids, s->nblocks, sizeof(*ids), u32_cmp, NULL) != 0) {
        ms_engine_free(ids);
        return NULL;
    }
    for (i = 0; i < s->nblocks; i++)
        if (k == 0 || ids[k - 1] != ids[i])
            ids[k++] = ids[i];
    *n = k;
    return ids;
}

/* ---- groups: by site, by stack ---- */

struct sgroup {
    uint32_t stack;    /* a representative stack id (by stack: the id) */
    uint32_t site;     /* index of the site frame in that stack */
    int kind;          /* 0: a stack, 1: no stack, 2: unreadable */
    char key[3 * MS_CELL]; /* site: function, location, module (what merges rows) */
    uint64_t count;    /* blocks */
    uint64_t bytes;    /* their bytes */
    uint64_t newest;   /* latest allocation */
};

static int sgroup_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct sgroup *x = pa, *y = pb;
    enum memscope_sort_by by = *(const enum memscope_sort_by *)ctx;
    int c = ms_group_cmp(by, x->count, x->newest, x->bytes, y->count, y->newest, y->bytes);

    if (c != 0)
        return c;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->stack != y->stack)
        return x->stack < y->stack ? -1 : 1;
    return strcmp(x->key, y->key);
}

static int sgroup_key_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct sgroup *x = pa, *y = pb;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->key, y->key);
}

static int block_stack_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct ms_block *x = *(const struct ms_block *const *)pa, *y = *(const struct ms_block *const *)pb;
    return x->stack < y->stack ? -1 : x->stack > y->stack;
}

/*
 * Groups the live blocks by stack id (by_site 0) or by site (1): one row per
 * id, then (by site) rows whose site frame has the same function, location
 * and module merge. *out holds *n groups, sorted per opts. The symtab is
 * built over every live stack.
 */
static int make_groups(const struct memscope_snapshot *s, const struct memscope_render_options *o, int by_site,
                       struct symtab *sy, struct sgroup **out, size_t *n)
{
    const struct ms_stacks *st = &s->stacks;
    size_t nids = 0, i, k;
    uint32_t *ids = live_stack_ids(s, &nids);
    struct sgroup *g = NULL;
    enum memscope_sort_by by = o->sort_by;
    int rc = -ENOMEM;

    *out = NULL;
    *n = 0;
    memset(sy, 0, sizeof(*sy));
    if (!ids)
        return -ENOMEM;
    rc = symtab_build(sy, st, ids, nids, o->symbolizer);
    if (rc != 0)
        goto out;
    rc = -ENOMEM;
    g = ms_engine_calloc(nids ? nids : 1, sizeof(*g));
    if (!g)
        goto out;
    for (i = 0; i < nids; i++) {
        const uint64_t *f;
        uint32_t d;
        int r = stack_of(st, ids[i], &f, &d);
        g[i].stack = ids[i];
        g[i].kind = r == 0 ? 0 : r == -ENOENT ? 1 : 2;
        if (r == 0) {
            char fn[MS_CELL], loc[MS_CELL], mod[MS_CELL];
            g[i].site = site_index(sy, f, d);
            frame_function(sy, f[g[i].site], fn, sizeof(fn));
            frame_location(sy, f[g[i].site], loc, sizeof(loc));
            frame_module(sy, f[g[i].site], mod, sizeof(mod));
            /* Without symbols a site is its return address. */
            if (!sy->fr[symtab_find(sy, f[g[i].site])].function)
                snprintf(g[i].key, sizeof(g[i].key), "0x%016" PRIx64, f[g[i].site]);
            else
                snprintf(g[i].key, sizeof(g[i].key), "%s\t%s\t%s", fn, loc, mod);
        }
    }
    /* Count blocks per id (ids are sorted: binary search). */
    for (i = 0; i < s->nblocks; i++) {
        const struct ms_block *bl = &s->blocks[i];
        size_t lo = 0, hi = nids;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (g[mid].stack < bl->stack)
                lo = mid + 1;
            else
                hi = mid;
        }
        g[lo].count++;
        g[lo].bytes += bl->size;
        if (g[lo].count == 1 || bl->time > g[lo].newest)
            g[lo].newest = bl->time;
    }
    k = nids;
    if (by_site && k > 1) {
        size_t j;
        if (ms_sort(g, k, sizeof(*g), sgroup_key_cmp, NULL) != 0)
            goto out;
        for (i = 1, j = 0; i < k; i++) {
            if (g[i].kind == g[j].kind && (g[i].kind != 0 || strcmp(g[i].key, g[j].key) == 0)) {
                g[j].count += g[i].count;
                g[j].bytes += g[i].bytes;
                if (g[i].newest > g[j].newest)
                    g[j].newest = g[i].newest;
                if (g[i].stack < g[j].stack) {
                    g[j].stack = g[i].stack;
                    g[j].site = g[i].site;
                }
            } else {
                g[++j] = g[i];
            }
        }
        k = j + 1;
    }
    if (ms_sort(g, k, sizeof(*g), sgroup_cmp, &by) != 0)
        goto out;
    *out = g;
    *n = k;
    g = NULL;
    rc = 0;
out:
    ms_engine_free(ids);
    ms_engine_free(g);
    return rc;
}

void ms_render_stack_notes(const struct memscope_snapshot *s, const struct memscope_render_options *o,
                           struct ms_buf *b)
{
    const struct ms_stacks *st = &s->stacks;
    const char *w = o->color ? "\033[1;33m" : "", *r = o->color ? "\033[0m" : "";

    if (st->status)
        ms_buf_printf(b, "%swarning: call stacks unavailable: %s%s\n", w, st->error, r);
    if (st->truncated)
        ms_buf_printf(b, "%swarning: the stack table was full: %" PRIu64 " allocations kept only their caller%s\n", w,
                      st->truncated, r);
    if (st->lost)
        ms_buf_printf(b, "%swarning: the stack table was full: %" PRIu64 " allocations have no stack%s\n", w,
                      st->lost, r);
}

void ms_render_stack_groups(const struct memscope_snapshot *s, const struct memscope_render_options *o,
                            struct ms_buf *b, unsigned top)
{
    int by_site = o->group_by == MEMSCOPE_GROUP_SITE;
    struct symtab sy;
    struct sgroup *g = NULL;
    struct ms_table t;
    size_t n = 0, i, rows;
    uint64_t total = s->stats.current_memory;

    if (make_groups(s, o, by_site, &sy, &g, &n) != 0) {
        b->failed = 1;
        goto out;
    }
    rows = n < top ? n : top;
    ms_buf_printf(b, "\n%sLive memory by %s%s (%zu of %zu %s)\n", o->color ? "\033[1m" : "",
                  by_site ? "allocation site" : "call stack", o->color ? "\033[0m" : "", rows, n,
                  by_site ? "sites" : "stacks");
    if (n == 0) {
        ms_buf_puts(b, "  (no live blocks)\n");
        goto out;
    }
    if (ms_table_init(&t, by_site ? 6 : 7, rows + 1) != 0) {
        b->failed = 1;
        goto out;
    }
    {
        static const char *const site_head[] = {"bytes", "blocks", "share", "function", "location", "library"};
        static const char *const stack_head[] = {"stack", "bytes", "blocks", "share", "function", "location", "library"};
        const char *const *head = by_site ? site_head : stack_head;
        unsigned c, cols = by_site ? 6 : 7, off = by_site ? 0 : 1;
        for (c = 0; c < cols; c++)
            ms_table_set(&t, 0, c, "%s", head[c]);
        for (c = 3 + off; c < cols; c++)
            t.align_left[c] = 1;
        for (i = 0; i < rows; i++) {
            const struct sgroup *x = &g[i];
            char sz[64], fn[MS_CELL], loc[MS_CELL], mod[MS_CELL];
            if (!by_site)
                ms_table_set(&t, i + 1, 0, x->kind == 0 ? "%u" : "-", x->stack);
            ms_size_text(o, x->bytes, sz, sizeof(sz));
            ms_table_set(&t, i + 1, off, "%s", sz);
            ms_table_set(&t, i + 1, off + 1, "%" PRIu64, x->count);
            ms_table_set(&t, i + 1, off + 2, "%.1f%%", total ? 100.0 * (double)x->bytes / (double)total : 0.0);
            const uint64_t *f = NULL;
            uint32_t d = 0;
            if (x->kind == 0 && stack_of(&s->stacks, x->stack, &f, &d) == 0) {
                frame_function(&sy, f[x->site], fn, sizeof(fn));
                frame_location(&sy, f[x->site], loc, sizeof(loc));
                frame_module(&sy, f[x->site], mod, sizeof(mod));
            } else {
                snprintf(fn, sizeof(fn), "%s", x->kind == 1 ? "(no stack)" : "(unreadable stack)");
                loc[0] = mod[0] = '\0';
            }
            ms_table_set(&t, i + 1, off + 3, "%s", fn);
            ms_table_set(&t, i + 1, off + 4, "%s", loc);
            ms_table_set(&t, i + 1, off + 5, "%s", mod);
        }
    }
    ms_table_render(&t, b, "  ", o->color);
    ms_table_free(&t);
out:
    symtab_free(&sy);
    ms_engine_free(g);
}

/* One stack's frames, innermost first; hidden frames marked. */
void ms_render_stack_frames(const struct memscope_snapshot *s, uint32_t id, const struct memscope_render_options *o,
                            struct ms_buf *b, const char *indent)
{
    const uint64_t *f;
    uint32_t d, i;
    struct symtab sy;
    int rc = stack_of(&s->stacks, id, &f, &d);

    if (rc == -ENOENT) {
        ms_buf_printf(b, "%s(no call stack recorded)\n", indent);
        return;
    }
    if (rc != 0) {
        ms_buf_printf(b, "%s(stack %u is unreadable%s%s)\n", indent, id, s->stacks.status ? ": " : "",
                      s->stacks.status ? s->stacks.error : "");
        return;
    }
    if (symtab_build(&sy, &s->stacks, &id, 1, o->symbolizer) != 0) {
        b->failed = 1;
        symtab_free(&sy);
        return;
    }
    for (i = 0; i < d; i++) {
        char fn[MS_CELL], loc[MS_CELL], mod[MS_CELL];
        size_t k = symtab_find(&sy, f[i]);
        frame_function(&sy, f[i], fn, sizeof(fn));
        frame_location(&sy, f[i], loc, sizeof(loc));
        frame_module(&sy, f[i], mod, sizeof(mod));
        ms_buf_printf(b, "%s#%-2u 0x%016" PRIx64 " %s", indent, i, f[i], fn);
        if (sy.fr[k].file)
            ms_buf_printf(b, " at %s", loc);
        if (sy.fr[k].module)
            ms_buf_printf(b, " (%s)", mod);
        if (sy.hidden[k])
            ms_buf_puts(b, " [hidden]");
        ms_buf_puts(b, "\n");
    }
    symtab_free(&sy);
}

MS_API int memscope_snapshot_render_stack(const struct memscope_snapshot *snapshot, uint32_t id,
                                          const struct memscope_render_options *opts, char **out, size_t *len)
{
    static const struct memscope_render_options defaults;
    const struct memscope_render_options *o = opts ? opts : &defaults;
    struct ms_buf b;
    uint64_t bytes = 0, blocks = 0;
    size_t i;

    if (!ms_snapshot_valid(snapshot) || !out)
        return -EINVAL;
    *out = NULL;
    if (id == 0 || id > snapshot->stacks.count)
        return -ENOENT;
    for (i = 0; i < snapshot->nblocks; i++) {
        if (snapshot->blocks[i].stack == id) {
            blocks++;
            bytes += snapshot->blocks[i].size;
        }
    }
    ms_buf_init(&b);
    {
        char sz[64];
        ms_size_text(o, bytes, sz, sizeof(sz));
        ms_buf_printf(&b, "stack %u: %" PRIu64 " live blocks, %s\n", id, blocks, sz);
    }
    ms_render_stack_frames(snapshot, id, o, &b, "  ");
    return ms_buf_finish(&b, out, len);
}

/* ---- folded (collapsed stacks) ---- */

struct fline {
    char *text;     /* "root;...;leaf" (owned) */
    uint64_t bytes; /* live bytes */
};

static int fline_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct fline *x = pa, *y = pb;
    return strcmp(x->text, y->text);
}

/* Appends a frame name with the separators of the format (';' and spaces) replaced. */
static void folded_name(struct ms_buf *b, const char *name)
{
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (c == ';')
            c = ':';
        else if (c == ' ' || c == '\n' || c == '\t')
            c = '_';
        ms_buf_append(b, &c, 1);
    }
}

MS_API int memscope_snapshot_render_folded(const struct memscope_snapshot *snapshot,
                                           const struct memscope_render_options *opts, char **out, size_t *len)
{
    static const struct memscope_render_options defaults;
    const struct memscope_render_options *o = opts ? opts : &defaults;
    const struct ms_stacks *st;
    const struct ms_block **order = NULL;
    struct fline *lines = NULL;
    struct symtab sy;
    uint32_t *ids = NULL;
    size_t nids = 0, nlines = 0, i, j;
    struct ms_buf b;
    int rc = -ENOMEM;

    if (!ms_snapshot_valid(snapshot) || !out)
        return -EINVAL;
    *out = NULL;
    st = &snapshot->stacks;
    memset(&sy, 0, sizeof(sy));
    ms_buf_init(&b);
    ids = live_stack_ids(snapshot, &nids);
    order = ms_engine_alloc((snapshot->nblocks ? snapshot->nblocks : 1) * sizeof(*order));
    lines = ms_engine_calloc(nids ? nids : 1, sizeof(*lines));
    if (!ids || !order || !lines || symtab_build(&sy, st, ids, nids, o->symbolizer) != 0)
        goto out;
    for (i = 0; i < snapshot->nblocks; i++)
        order[i] = &snapshot->blocks[i];
    if (ms_sort(order, snapshot->nblocks, sizeof(*order), block_stack_cmp, NULL) != 0)
        goto out;
    /* One line per stack id: frames root first, allocator frames left out. */
    for (i = 0; i < snapshot->nblocks;) {
        uint32_t id = order[i]->stack;
        uint64_t bytes = 0;
        struct ms_buf lb;
        const uint64_t *f = NULL;
        uint32_t d = 0;
        for (j = i; j < snapshot->nblocks && order[j]->stack == id; j++)
            bytes += order[j]->size;
        i = j;
        ms_buf_init(&lb);
        int r = stack_of(st, id, &f, &d);
        if (r == -ENOENT) {
            ms_buf_puts(&lb, "[no stack]");
        } else if (r != 0) {
            ms_buf_puts(&lb, "[unreadable stack]");
        } else {
            uint32_t site = site_index(&sy, f, d), k, first = 1;
            for (k = d; k-- > 0;) {
                char fn[MS_CELL];
                if (k < site || (k != site && sy.hidden[symtab_find(&sy, f[k])]))
                    continue;
                frame_function(&sy, f[k], fn, sizeof(fn));
                if (!first)
                    ms_buf_puts(&lb, ";");
                folded_name(&lb, fn);
                first = 0;
            }
        }
        if (lb.failed || !lb.data) {
            ms_buf_release(&lb);
            goto out;
        }
        lines[nlines].text = lb.data;
        lines[nlines].bytes = bytes;
        nlines++;
    }
    /* Equal lines (stacks that differ only in hidden frames or return addresses of one function) merge. */
    if (ms_sort(lines, nlines, sizeof(*lines), fline_cmp, NULL) != 0)
        goto out;
    for (i = 0; i < nlines;) {
        uint64_t bytes = 0;
        for (j = i; j < nlines && strcmp(lines[j].text, lines[i].text) == 0; j++)
            bytes += lines[j].bytes;
        ms_buf_printf(&b, "%s %" PRIu64 "\n", lines[i].text, bytes);
        i = j;
    }
    if (nlines == 0)
        ms_buf_puts(&b, ""); /* an empty heap: an empty text, not NULL */
    rc = ms_buf_finish(&b, out, len);
out:
    for (i = 0; i < nlines; i++)
        ms_engine_free(lines[i].text);
    ms_engine_free(lines);
    ms_engine_free(order);
    ms_engine_free(ids);
    symtab_free(&sy);
    ms_buf_release(&b);
    return rc;
}

/* ---- JSON ---- */

void ms_render_stacks_json(const struct memscope_snapshot *s, const struct memscope_render_options *o,
                           struct ms_buf *b)
{
    const struct ms_stacks *st = &s->stacks;
    size_t nids = 0, i;
    uint32_t *ids = live_stack_ids(s, &nids);
    struct symtab sy;
    int first = 1;

    memset(&sy, 0, sizeof(sy));
    if (!ids || symtab_build(&sy, st, ids, nids, o->symbolizer) != 0) {
        b->failed = 1;
        goto out;
    }
    ms_buf_printf(b, "  \"stack_table\": {\"method\": \"%s\", \"max_depth\": %u, \"stacks\": %" PRIu64
                     ", \"truncated\": %" PRIu64 ", \"lost\": %" PRIu64 ", \"error\": ",
                  st->method == MEMSCOPE_STACK_CALLER ? "caller" : st->method == MEMSCOPE_STACK_FP ? "fp"
                  : st->method == MEMSCOPE_STACK_UNWIND ? "unwind" : st->method == MEMSCOPE_STACK_AUTO ? "auto" : "none",
                  st->max_depth, st->count, st->truncated, st->lost);
    if (st->status)
        ms_json_string(b, st->error);
    else
        ms_buf_puts(b, "null");
    ms_buf_puts(b, "},\n  \"stacks\": {");
    for (i = 0; i < nids; i++) {
        const uint64_t *f;
        uint32_t d, k, site;
        if (ids[i] == 0)
            continue;
        ms_buf_printf(b, "%s\n    \"%u\": ", first ? "" : ",", ids[i]);
        first = 0;
        if (stack_of(st, ids[i], &f, &d) != 0) {
            ms_buf_puts(b, "{\"unreadable\": true, \"frames\": []}");
            continue;
        }
        site = site_index(&sy, f, d);
        ms_buf_printf(b, "{\"site\": %u, \"frames\": [", site);
        for (k = 0; k < d; k++) {
            const struct memscope_frame *fr = &sy.fr[symtab_find(&sy, f[k])];
            ms_buf_printf(b, "%s{\"pc\": \"0x%" PRIx64 "\"", k ? ", " : "", f[k]);
            if (fr->function) {
                ms_buf_puts(b, ", \"function\": ");
                ms_json_string(b, fr->function);
            }
            if (fr->file) {
                ms_buf_puts(b, ", \"file\": ");
                ms_json_string(b, fr->file);
                ms_buf_printf(b, ", \"line\": %u", fr->line);
            }
            if (fr->module) {
                ms_buf_puts(b, ", \"module\": ");
                ms_json_string(b, fr->module);
            }
            ms_buf_printf(b, ", \"hidden\": %s}", sy.hidden[symtab_find(&sy, f[k])] ? "true" : "false");
        }
        ms_buf_puts(b, "]}");
    }
    ms_buf_puts(b, first ? "},\n" : "\n  },\n");
out:
    ms_engine_free(ids);
    symtab_free(&sy);
}

/* ---- site names for other renderers (diff.c) ---- */

struct ms_site_namer {
    const struct ms_stacks *st; /* the table the ids refer to */
    struct symtab sy;           /* every frame of the ids given, symbolized in one call */
};

int ms_site_namer_new(const struct ms_stacks *st, const uint32_t *ids, size_t n,
                      const struct memscope_symbolizer *sym, struct ms_site_namer **out)
{
    struct ms_site_namer *nm = ms_engine_calloc(1, sizeof(*nm));
    uint32_t *sorted = ms_engine_alloc((n ? n : 1) * sizeof(*sorted));
    size_t i, k = 0;
    int rc = -ENOMEM;

    *out = NULL;
    if (!nm || !sorted)
        goto fail;
    memcpy(sorted, ids, n * sizeof(*ids));
    if (ms_sort(sorted, n, sizeof(*sorted), u32_cmp, NULL) != 0)
        goto fail;
    for (i = 0; i < n; i++)
        if (k == 0 || sorted[k - 1] != sorted[i])
            sorted[k++] = sorted[i];
    nm->st = st;
    if (symtab_build(&nm->sy, st, sorted, k, sym) != 0)
        goto fail;
    ms_engine_free(sorted);
    *out = nm;
    return 0;
fail:
    if (nm)
        symtab_free(&nm->sy);
    ms_engine_free(nm);
    ms_engine_free(sorted);
    return rc;
}

void ms_site_name(const struct ms_site_namer *nm, uint32_t id, int with_id, char *buf, size_t len)
{
    const uint64_t *f;
    uint32_t d;
    int r = stack_of(nm->st, id, &f, &d);
    char fn[MS_CELL], loc[MS_CELL], mod[MS_CELL], head[32] = "";

    if (with_id && r == 0)
        snprintf(head, sizeof(head), "#%u ", id);
    if (r == -ENOENT) {
        snprintf(buf, len, "(no stack)");
        return;
    }
    if (r != 0) {
        snprintf(buf, len, "%s(unreadable stack)", head);
        return;
    }
    uint32_t site = site_index(&nm->sy, f, d);
    frame_function(&nm->sy, f[site], fn, sizeof(fn));
    frame_location(&nm->sy, f[site], loc, sizeof(loc));
    frame_module(&nm->sy, f[site], mod, sizeof(mod));
    if (nm->sy.fr[symtab_find(&nm->sy, f[site])].function)
        snprintf(buf, len, "%s%s %s (%s)", head, fn, loc, mod);
    else
        snprintf(buf, len, "%s%s", head, fn);
}

void ms_site_namer_free(struct ms_site_namer *nm)
{
    if (!nm)
        return;
    symtab_free(&nm->sy);
    ms_engine_free(nm);
}
