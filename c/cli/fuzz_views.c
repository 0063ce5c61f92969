/*
 * fuzz_views.c - the views both fuzz targets draw from a history they
 * opened (see fuzz.h): whatever a damaged core or trace makes of the
 * history, no view may crash, hang or leak on it.
 */
#include <string.h>

#include "core.h"
#include "fuzz.h"

static int first_block(const struct memscope_allocation *block, void *arg)
{
    *(uint64_t *)arg = block->address;
    return 1; /* stop at the first */
}

/* Frees what a render call made (*text is read after the call, which set it). */
static void discard(int rc, char **text)
{
    if (rc == 0)
        memscope_text_free(*text);
    *text = NULL;
}

/* The snapshot views of `memscope inspect` / `report` at one point. */
static void snapshot_views(const struct memscope_history *h, const struct memscope_snapshot *s,
                           struct memscope_render_options opts)
{
    static const enum memscope_group_by groups[] = {MEMSCOPE_GROUP_NONE, MEMSCOPE_GROUP_THREAD, MEMSCOPE_GROUP_LABEL,
                                                    MEMSCOPE_GROUP_SIZE_CLASS, MEMSCOPE_GROUP_STACK,
                                                    MEMSCOPE_GROUP_SITE};
    struct memscope_stacks_info si;
    uint64_t first = 0x1000;
    char *text = NULL;
    size_t len = 0;

    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        opts.group_by = groups[i];
        opts.sort_by = (enum memscope_sort_by)(i % 4);
        discard(memscope_snapshot_render_text(s, &opts, &text, &len), &text);
    }
    opts.group_by = MEMSCOPE_GROUP_NONE;
    opts.sort_by = MEMSCOPE_SORT_SIZE;
    discard(memscope_snapshot_render_json(s, &opts, &text, &len), &text);
    discard(memscope_snapshot_render_folded(s, &opts, &text, &len), &text);
    discard(memscope_snapshot_render_stack(s, 1, &opts, &text, &len), &text);
    if (memscope_snapshot_stacks_info(s, &si) == 0 && si.stacks > 1 && si.stacks <= UINT32_MAX)
        discard(memscope_snapshot_render_stack(s, (uint32_t)si.stacks, &opts, &text, &len), &text);
    memscope_snapshot_foreach(s, first_block, &first);
    discard(memscope_history_render_block(h, s, first, &opts, &text, &len), &text);
}

static void at_point(const struct memscope_history *h, const struct memscope_point *at,
                     const struct memscope_render_options *opts, int all)
{
    struct memscope_point_info pi;
    struct memscope_snapshot *s = NULL;
    struct memscope_error err;
    char *text = NULL;
    size_t len = 0;

    memscope_history_locate(h, at, &pi, &err);
    if (memscope_history_snapshot(h, at, &s) != 0)
        return;
    if (all)
        snapshot_views(h, s, *opts);
    else
        discard(memscope_snapshot_render_text(s, opts, &text, &len), &text);
    memscope_snapshot_free(s);
}

static void diff_views(const struct memscope_history *h, const struct memscope_point *a,
                       const struct memscope_point *b, const struct memscope_render_options *opts)
{
    struct memscope_render_options o = *opts;
    struct memscope_diff_stats ds;
    struct memscope_diff *d = NULL;
    struct memscope_error err;
    char *text = NULL;
    size_t len = 0;

    if (memscope_history_diff(h, a, b, &d, &err) != 0)
        return;
    memscope_diff_stats(d, &ds);
    o.group_by = MEMSCOPE_GROUP_LABEL; /* as the diff view groups by default */
    discard(memscope_diff_render_text(d, &o, &text, &len), &text);
    o.group_by = MEMSCOPE_GROUP_SITE;
    discard(memscope_diff_render_text(d, &o, &text, &len), &text);
    discard(memscope_diff_render_json(d, &o, &text, &len), &text);
    memscope_diff_free(d);
}

void ms_fuzz_views(const struct memscope_history *h, const struct memscope_symbolizer *sym)
{
    struct memscope_render_options opts;
    struct memscope_history_info hi;
    struct memscope_timeline *t = NULL;
    struct memscope_timeline_info ti;
    struct memscope_timeline_mark m;
    struct memscope_point end = {.kind = MEMSCOPE_AT_END};
    struct memscope_point start = {.kind = MEMSCOPE_AT_EVENT, .value = 0};
    struct memscope_point p = {.kind = MEMSCOPE_AT_PEAK};
    const char *names[2] = {NULL, NULL};
    char *text = NULL;
    size_t len = 0;

    memset(&opts, 0, sizeof(opts));
    opts.symbolizer = sym;
    opts.exact_bytes = 1;
    if (memscope_history_info(h, &hi) != 0)
        return;
    at_point(h, &end, &opts, 1);
    at_point(h, &p, &opts, 0);
    p = (struct memscope_point){.kind = MEMSCOPE_AT_TIME, .value = hi.first_time_ns / 2 + hi.last_time_ns / 2};
    at_point(h, &p, &opts, 0);
    p = (struct memscope_point){.kind = MEMSCOPE_AT_EVENT, .value = hi.folded_events + hi.events / 2};
    at_point(h, &p, &opts, 0);
    diff_views(h, &start, &end, &opts);
    if (memscope_history_timeline(h, 16, &t) != 0)
        return;
    discard(memscope_timeline_render_text(t, NULL, &text, &len), &text);
    discard(memscope_timeline_render_json(t, &text, &len), &text);
    /* The first mark (folded ones come first) and the last, by name, as --at-mark and --diff take them. */
    if (memscope_timeline_info(t, &ti) == 0 && ti.marks > 0) {
        if (memscope_timeline_mark(t, 0, &m) == 0)
            names[0] = m.name;
        if (memscope_timeline_mark(t, ti.marks - 1, &m) == 0)
            names[1] = m.name;
        for (int i = 0; i < 2; i++) {
            if (!names[i])
                continue;
            p = (struct memscope_point){.kind = MEMSCOPE_AT_MARK, .mark = names[i]};
            at_point(h, &p, &opts, 0);
            diff_views(h, &p, &end, &opts);
        }
    }
    memscope_timeline_free(t); /* the names lived in it */
}

struct ms_symbolizer *ms_fuzz_symbolizer(const char *name, const struct memscope_module *mods, size_t nmods,
                                         struct ms_core **core)
{
    struct ms_core_paths paths;
    struct ms_symbolizer *sym = NULL;

    memset(&paths, 0, sizeof(paths));
    paths.no_files = 1;
    if (nmods > 0 && ms_core_open_modules(name, mods, nmods, &paths, core, NULL) == 0 &&
        ms_symbolizer_new(*core, &sym) != 0)
        sym = NULL;
    return sym;
}
