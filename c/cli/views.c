/*
 * views.c - the options and views `memscope inspect` and `memscope report`
 * share (see views.h): parsing --at..., --diff, --timeline, --block,
 * --stack, --top, --group-by/--by, --sort, --exact, --json and --folded,
 * and rendering the chosen view of a history through the engine to stdout
 * and the files asked for.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "views.h"

const char ms_views_help_where[] =
    "Where (one of; default: the end):\n"
    "  --at-peak          the instant live bytes first reached their highest value\n"
    "  --at-mark NAME     right after the first mark NAME\n"
    "  --at TIME          at TIME since recording began: seconds (1.5) or with a unit\n"
    "                     (250ms, 40us, 1000ns, 2s)\n"
    "  --at-event N       after the first N events\n";

void ms_views_init(struct ms_views *v, const char *cmd, const char *source)
{
    memset(v, 0, sizeof(*v));
    v->cmd = cmd;
    v->source = source;
    v->view = MS_VIEW_SNAPSHOT;
    v->at.kind = MEMSCOPE_AT_END;
    v->buckets = 60;
    opterr = 0;
    optind = 1;
}

/* Parses a time: seconds, or a number with ns/us/ms/s (as GDB takes it). 0 or -1. */
static int parse_time(const struct ms_views *v, const char *text, uint64_t *ns)
{
    char *end = NULL;
    double t, scale = 1e9;

    if (!text || !*text || *text == '-' || (*text == '+' && !v->plus_times))
        return -1;
    t = strtod(text, &end);
    if (end == text)
        return -1;
    if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
        scale = 1e9;
    else if (strcmp(end, "ms") == 0)
        scale = 1e6;
    else if (strcmp(end, "us") == 0)
        scale = 1e3;
    else if (strcmp(end, "ns") == 0)
        scale = 1;
    else
        return -1;
    t *= scale;
    if (!(t >= 0) || t > 1.8e19)
        return -1;
    *ns = (uint64_t)(t + 0.5);
    return 0;
}

/* A point: 'start', 'end', 'now', 'peak', 'mark:NAME', 'event:N', 'time:T', T, or a bare mark name (as in GDB). */
static void parse_point(const struct ms_views *v, const char *text, struct memscope_point *p)
{
    uint64_t n = 0;

    memset(p, 0, sizeof(*p));
    if (strcmp(text, "end") == 0 || strcmp(text, "now") == 0) {
        p->kind = MEMSCOPE_AT_END;
    } else if (strcmp(text, "start") == 0) {
        p->kind = MEMSCOPE_AT_EVENT;
    } else if (strcmp(text, "peak") == 0) {
        p->kind = MEMSCOPE_AT_PEAK;
    } else if (strncmp(text, "mark:", 5) == 0 && text[5]) {
        p->kind = MEMSCOPE_AT_MARK;
        p->mark = text + 5;
    } else if (strncmp(text, "event:", 6) == 0 && ms_parse_uint(text + 6, &n) == 0) {
        p->kind = MEMSCOPE_AT_EVENT;
        p->value = n;
    } else if (parse_time(v, strncmp(text, "time:", 5) == 0 ? text + 5 : text, &n) == 0) {
        p->kind = MEMSCOPE_AT_TIME;
        p->value = n;
    } else {
        p->kind = MEMSCOPE_AT_MARK;
        p->mark = text;
    }
}

static int parse_address(const char *text, uint64_t *out)
{
    char *end = NULL;
    unsigned long long a;

    if (!text || !*text || *text == '-')
        return -1;
    errno = 0;
    a = strtoull(text, &end, 0);
    if (errno || *end)
        return -1;
    *out = a;
    return 0;
}

static int parse_group(const char *text, enum memscope_group_by *out)
{
    static const struct {
        const char *name;
        enum memscope_group_by by;
    } groups[] = {{"none", MEMSCOPE_GROUP_NONE},   {"thread", MEMSCOPE_GROUP_THREAD},
                  {"label", MEMSCOPE_GROUP_LABEL}, {"size", MEMSCOPE_GROUP_SIZE_CLASS},
                  {"stack", MEMSCOPE_GROUP_STACK}, {"site", MEMSCOPE_GROUP_SITE}};
    size_t i;

    for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        if (strcmp(text, groups[i].name) == 0) {
            *out = groups[i].by;
            return 0;
        }
    return -1;
}

static int parse_sort(const char *text, enum memscope_sort_by *out)
{
    if (strcmp(text, "size") == 0)
        *out = MEMSCOPE_SORT_SIZE;
    else if (strcmp(text, "count") == 0)
        *out = MEMSCOPE_SORT_COUNT;
    else if (strcmp(text, "time") == 0)
        *out = MEMSCOPE_SORT_TIME;
    else if (strcmp(text, "address") == 0)
        *out = MEMSCOPE_SORT_ADDRESS;
    else
        return -1;
    return 0;
}

/* Takes one shared option c. Returns 0, -1 when c is not one of them, or an exit status (message printed). */
static int take_option(struct ms_views *v, int c, int argc, char **argv)
{
    uint64_t n;

    switch (c) {
    case MS_OPT_AT_PEAK:
        v->at.kind = MEMSCOPE_AT_PEAK;
        v->points++;
        return 0;
    case MS_OPT_AT_MARK:
        v->at.kind = MEMSCOPE_AT_MARK;
        v->at.mark = optarg;
        v->points++;
        return 0;
    case MS_OPT_AT:
        if (v->gdb_points && (strcmp(optarg, "end") == 0 || strcmp(optarg, "peak") == 0 ||
                              strncmp(optarg, "mark:", 5) == 0 || strncmp(optarg, "event:", 6) == 0 ||
                              strncmp(optarg, "time:", 5) == 0)) {
            parse_point(v, optarg, &v->at); /* GDB's --at POINT spellings */
        } else if (parse_time(v, optarg, &n) == 0) {
            v->at.kind = MEMSCOPE_AT_TIME;
            v->at.value = n;
        } else {
            return ms_usage_error(v->cmd, "--at takes a time such as 1.5, 250ms or 40us, not '%s'", optarg);
        }
        v->points++;
        return 0;
    case MS_OPT_AT_EVENT:
        if (ms_parse_uint(optarg, &n) < 0)
            return ms_usage_error(v->cmd, "--at-event takes a number of events, not '%s'", optarg);
        v->at.kind = MEMSCOPE_AT_EVENT;
        v->at.value = n;
        v->points++;
        return 0;
    case MS_OPT_BY:
        if (strcmp(optarg, "site") != 0 && strcmp(optarg, "stack") != 0)
            return ms_usage_error(v->cmd, "--by takes 'site' or 'stack', not '%s'", optarg);
        parse_group(optarg, &v->render.group_by);
        return 0;
    case MS_OPT_BLOCK:
        if (parse_address(optarg, &v->block_addr) < 0)
            return ms_usage_error(v->cmd, "--block takes an address such as 0x7f12345678, not '%s'", optarg);
        v->view = MS_VIEW_BLOCK;
        v->views++;
        return 0;
    case MS_OPT_STACK:
        if (ms_parse_uint(optarg, &v->stack_id) < 0 || v->stack_id == 0 || v->stack_id > UINT32_MAX)
            return ms_usage_error(v->cmd, "--stack takes a stack id (1 or more), not '%s'", optarg);
        v->view = MS_VIEW_STACK;
        v->views++;
        return 0;
    case MS_OPT_DIFF:
        if (optind >= argc)
            return ms_usage_error(v->cmd, "--diff takes two points, A and B");
        parse_point(v, optarg, &v->diff_a);
        parse_point(v, argv[optind++], &v->diff_b);
        v->view = MS_VIEW_DIFF;
        v->views++;
        return 0;
    case MS_OPT_TIMELINE:
        if (optarg && (ms_parse_uint(optarg, &n) < 0 || n == 0 || n > 100000))
            return ms_usage_error(v->cmd, "--timeline takes 1 to 100000 buckets, not '%s'", optarg);
        if (optarg)
            v->buckets = (unsigned)n;
        v->view = MS_VIEW_TIMELINE;
        v->views++;
        return 0;
    case MS_OPT_JSON:
        if (!optarg[0])
            return ms_usage_error(v->cmd, "--json needs a file name");
        v->json_path = optarg;
        return 0;
    case MS_OPT_FOLDED:
        if (!optarg[0])
            return ms_usage_error(v->cmd, "--folded needs a file name");
        v->folded_path = optarg;
        return 0;
    case MS_OPT_TOP:
        if (ms_parse_uint(optarg, &n) < 0 || n == 0 || n > 1000000)
            return ms_usage_error(v->cmd, "--top takes a number of rows from 1 to 1000000, not '%s'", optarg);
        v->render.top = (unsigned)n;
        return 0;
    case MS_OPT_GROUP_BY:
        v->grouped = 1;
        if (parse_group(optarg, &v->render.group_by) < 0)
            return ms_usage_error(v->cmd, "--group-by takes 'thread', 'label', 'size', 'site', 'stack' or "
                                  "'none', not '%s'", optarg);
        return 0;
    case MS_OPT_SORT:
        if (parse_sort(optarg, &v->render.sort_by) < 0)
            return ms_usage_error(v->cmd, "--sort takes 'size', 'count', 'time' or 'address', not '%s'", optarg);
        return 0;
    case MS_OPT_EXACT:
        v->render.exact_bytes = 1;
        return 0;
    case MS_OPT_ALLOC_FN: {
        size_t given = 0;
        while (v->alloc_fns[given])
            given++;
        if (given == MS_MAX_ALLOC_FNS)
            return ms_usage_error(v->cmd, "at most %d --alloc-fn options", MS_MAX_ALLOC_FNS);
        if (!optarg[0])
            return ms_usage_error(v->cmd, "--alloc-fn needs a function name");
        v->alloc_fns[given] = optarg;
        return 0;
    }
    default:
        return -1;
    }
}

int ms_views_next(struct ms_views *v, int argc, char **argv, const struct option *long_options, int *status)
{
    int c, rc;

    *status = 0;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        if (c == ':') {
            *status = ms_usage_error(v->cmd, "option '%s' needs a value", argv[optind - 1]);
            return -1;
        }
        if (c == '?') {
            *status = ms_usage_error(v->cmd, "unknown option '%s'", argv[optind - 1]);
            return -1;
        }
        rc = take_option(v, c, argc, argv);
        if (rc > 0) {
            *status = rc;
            return -1;
        }
        if (rc < 0)
            return c;
    }
    if (v->points > 1)
        *status = ms_usage_error(v->cmd, "give at most one of --at-peak, --at-mark, --at and --at-event");
    return -1;
}

int ms_views_operand(const struct ms_views *v, int argc, char **argv, const char *what, const char *metavar,
                     const char **operand)
{
    if (optind >= argc)
        return ms_usage_error(v->cmd, "no %s given (memscope %s %s)", what, v->cmd, metavar);
    if (optind + 1 < argc)
        return ms_usage_error(v->cmd, "one %s only, not '%s' too", what, argv[optind + 1]);
    *operand = argv[optind];
    return 0;
}

static int open_output(struct ms_views *v, struct ms_view_output *o, const char *path)
{
    if (strcmp(path, "-") == 0) {
        if (!v->text)
            return ms_usage_error(v->cmd, "only one of --json and --folded can go to standard output");
        v->text = 0;
        o->file = stdout;
        o->name = "standard output";
        o->only = 1;
        return 0;
    }
    /* 'e': close-on-exec. */
    o->file = fopen(path, "we");
    if (!o->file) {
        ms_error("cannot write %s: %s", path, strerror(errno));
        return MS_EXIT_FAILURE;
    }
    o->name = path;
    return 0;
}

int ms_views_open_outputs(struct ms_views *v)
{
    int rc;

    v->text = 1;
    if (v->json_path && (rc = open_output(v, &v->json, v->json_path)) != 0)
        return rc;
    if (v->folded_path && (rc = open_output(v, &v->folded, v->folded_path)) != 0)
        return rc;
    return 0;
}

static int close_output(struct ms_view_output *o)
{
    FILE *f = o->file;

    o->file = NULL;
    if (!f || f == stdout)
        return 0;
    if (fclose(f) != 0) {
        int rc = -errno;
        ms_error("cannot write %s: %s", o->name, strerror(errno));
        return rc;
    }
    return 0;
}

int ms_views_close_outputs(struct ms_views *v)
{
    int rc = close_output(&v->json);
    int rc2 = close_output(&v->folded);

    return rc < 0 ? rc : rc2;
}

/* Writes text to f and frees it; rc from the renderer. Returns 0 or a negative errno (message printed). */
static int emit(const struct ms_views *v, int rc, FILE *f, const char *name, char *text, size_t len,
                const char *what)
{
    if (rc < 0) {
        ms_error("cannot render the %s: %s", what, memscope_strerror(rc));
        memscope_text_free(text);
        return rc;
    }
    errno = 0;
    if (fwrite(text, 1, len, f) != len || fflush(f) != 0) {
        ms_error("cannot write %s: %s", name, strerror(errno ? errno : EIO));
        memscope_text_free(text);
        return -EIO;
    }
    memscope_text_free(text);
    return 0;
}

/*
 * The snapshot at v->at, or an error said. A point is located first, so one
 * outside the history gets the engine's sentence; but locating the peak takes
 * a whole replay, as does the snapshot there: that one is located only when
 * its snapshot fails (or the history is empty, which has no peak to show).
 */
static int take_snapshot(const struct memscope_history *h, const struct ms_views *v, struct memscope_snapshot **s)
{
    struct memscope_error err;
    struct memscope_point_info pi;
    struct memscope_history_info hi;
    int rc, taken = 0;

    if (v->at.kind == MEMSCOPE_AT_PEAK && memscope_history_info(h, &hi) == 0 && hi.events > 0)
        taken = memscope_history_snapshot(h, &v->at, s) == 0;
    if (!taken && v->at.kind != MEMSCOPE_AT_END) {
        memset(&err, 0, sizeof(err));
        rc = memscope_history_locate(h, &v->at, &pi, &err);
        if (rc < 0) {
            ms_error("%s", err.message[0] ? err.message : memscope_strerror(rc));
            return rc;
        }
    }
    if (taken)
        return 0;
    rc = memscope_history_snapshot(h, &v->at, s);
    if (rc < 0)
        ms_error("cannot rebuild the snapshot: %s", memscope_strerror(rc));
    return rc;
}

int ms_views_show_snapshot(const struct memscope_history *h, struct ms_views *v)
{
    struct memscope_snapshot *s = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    rc = take_snapshot(h, v, &s);
    if (rc < 0)
        return rc;
    if (v->json.file) {
        text = NULL;
        rc = memscope_snapshot_render_json(s, &v->render, &text, &len);
        rc = emit(v, rc, v->json.file, v->json.name, text, len, "JSON");
    }
    if (rc == 0 && v->folded.file) {
        text = NULL;
        rc = memscope_snapshot_render_folded(s, &v->render, &text, &len);
        rc = emit(v, rc, v->folded.file, v->folded.name, text, len, "folded stacks");
    }
    if (rc == 0 && v->text) {
        text = NULL;
        if (v->view == MS_VIEW_BLOCK)
            rc = memscope_history_render_block(h, s, v->block_addr, &v->render, &text, &len);
        else if (v->view == MS_VIEW_STACK)
            rc = memscope_snapshot_render_stack(s, (uint32_t)v->stack_id, &v->render, &text, &len);
        else
            rc = memscope_snapshot_render_text(s, &v->render, &text, &len);
        if (rc == -ENOENT && v->view == MS_VIEW_STACK) {
            ms_error("no call stack %" PRIu64 " among the live blocks' stacks", v->stack_id);
            memscope_text_free(text);
        } else {
            rc = emit(v, rc, stdout, "standard output", text, len, v->view == MS_VIEW_BLOCK ? "block" : "snapshot");
        }
    }
    memscope_snapshot_free(s);
    return rc;
}

static int show_diff(const struct memscope_history *h, struct ms_views *v)
{
    struct memscope_error err;
    struct memscope_diff *d = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (!v->grouped) /* as memscope-diff: by label unless told otherwise */
        v->render.group_by = MEMSCOPE_GROUP_LABEL;
    memset(&err, 0, sizeof(err));
    rc = memscope_history_diff(h, &v->diff_a, &v->diff_b, &d, &err);
    if (rc < 0) {
        ms_error("%s", err.message[0] ? err.message : memscope_strerror(rc));
        return rc;
    }
    if (v->json.file) {
        rc = memscope_diff_render_json(d, &v->render, &text, &len);
        rc = emit(v, rc, v->json.file, v->json.name, text, len, "JSON");
    }
    if (rc == 0 && v->text) {
        text = NULL;
        rc = memscope_diff_render_text(d, &v->render, &text, &len);
        rc = emit(v, rc, stdout, "standard output", text, len, "diff");
    }
    memscope_diff_free(d);
    return rc;
}

static int show_timeline(const struct memscope_history *h, struct ms_views *v)
{
    struct memscope_timeline *t = NULL;
    struct memscope_timeline_options topt;
    char *text = NULL;
    size_t len = 0;
    int rc;

    rc = memscope_history_timeline(h, v->buckets, &t);
    if (rc < 0) {
        if (rc == -ENODATA)
            ms_error("cannot build the timeline: the %s holds no events", v->source);
        else
            ms_error("cannot build the timeline: %s", memscope_strerror(rc));
        return rc;
    }
    memset(&topt, 0, sizeof(topt));
    topt.exact_bytes = v->render.exact_bytes;
    if (v->json.file) {
        rc = memscope_timeline_render_json(t, &text, &len);
        rc = emit(v, rc, v->json.file, v->json.name, text, len, "JSON");
    }
    if (rc == 0 && v->text) {
        text = NULL;
        rc = memscope_timeline_render_text(t, &topt, &text, &len);
        rc = emit(v, rc, stdout, "standard output", text, len, "timeline");
    }
    memscope_timeline_free(t);
    return rc;
}

int ms_views_show(const struct memscope_history *h, struct ms_views *v)
{
    switch (v->view) {
    case MS_VIEW_DIFF:
        return show_diff(h, v);
    case MS_VIEW_TIMELINE:
        return show_timeline(h, v);
    default:
        return ms_views_show_snapshot(h, v);
    }
}
