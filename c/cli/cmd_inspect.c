/*
 * cmd_inspect.c - `memscope inspect CORE [OPTIONS]`: the heap of a crashed
 * or dumped process from its ELF core file, without GDB and without the
 * process: the views of memscope-snapshot, memscope-top --by site|stack,
 * memscope-block, memscope-stack, memscope-diff, memscope-timeline and
 * memscope-export --folded, with the same figures, because the same engine
 * replays and renders them.
 *
 * core_source.c serves the core's memory to the engine and finds the store
 * (symbol, else magic scan); core_files.c finds the program's files from
 * the core's NT_FILE note (with --exe, --lib-path, --sysroot) and checks
 * their build-ids; symbolize.c names frames for the engine. This file
 * parses options, picks the view and prints what the engine renders.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core.h"
#include "memscope/engine.h"

#define MAX_LIB_PATHS 64

static void print_help(FILE *out)
{
    fputs("Usage: memscope inspect CORE [--exe PROG] [--lib-path DIR] [--sysroot DIR] [OPTIONS]\n"
          "\n"
          "Shows the heap a process recorded with libmemscope from its core file (a kernel\n"
          "core or GDB's gcore), without GDB: by default the snapshot at the moment of the\n"
          "core (summary, per-thread table, largest live blocks), as memscope-snapshot prints\n"
          "it. The program and its libraries are found from the core's own file notes.\n"
          "\n"
          "Files:\n"
          "  --exe PROG         the program's file, when it is no longer where it ran\n"
          "  --lib-path DIR     look for the core's files by base name in DIR (repeatable)\n"
          "  --sysroot DIR      look for every file the core names under DIR\n"
          "\n"
          "Where (one of; default: the end):\n"
          "  --at-peak          the instant live bytes first reached their highest value\n"
          "  --at-mark NAME     right after the first mark NAME\n"
          "  --at TIME          at TIME since recording began: seconds (1.5) or with a unit\n"
          "                     (250ms, 40us, 1000ns, 2s)\n"
          "  --at-event N       after the first N events\n"
          "\n"
          "Other views:\n"
          "  --by site|stack    top live memory by allocation site or call stack, symbolized\n"
          "                     (as --group-by site|stack)\n"
          "  --block ADDR       what is known of the block holding ADDR (as memscope-block)\n"
          "  --stack ID         one call stack's frames and live blocks (as memscope-stack)\n"
          "  --diff A B         what changed from point A to point B: 'start', 'end', 'peak',\n"
          "                     'mark:NAME', 'event:N' or a TIME\n"
          "  --timeline[=N]     live bytes over the whole history, N buckets (default 60)\n"
          "  --stats            the summary figures and where the store was found\n"
          "\n"
          "Output:\n"
          "  --json FILE        also write the view as JSON to FILE ('-': JSON only, to stdout)\n"
          "  --folded FILE      also write live bytes per call stack in the folded format of\n"
          "                     flamegraph.pl ('-': only that, to stdout)\n"
          "  --top N            rows of blocks or groups (default 10)\n"
          "  --group-by KEY     'thread', 'label', 'size', 'site', 'stack' or 'none'\n"
          "  --sort KEY         'size' (default), 'count', 'time' or 'address'\n"
          "  --exact            exact byte counts beside the human-readable sizes\n"
          "  -h, --help         show this help and exit\n"
          "\n"
          "Exit status: 0; 1 when the core, its store or a file it names cannot be used\n"
          "(one sentence says why), or a point lies outside the history; 2 on a usage error.\n",
          out);
}

enum {
    OPT_EXE = 0x100,
    OPT_LIB_PATH,
    OPT_SYSROOT,
    OPT_AT_PEAK,
    OPT_AT_MARK,
    OPT_AT,
    OPT_AT_EVENT,
    OPT_BY,
    OPT_BLOCK,
    OPT_STACK,
    OPT_DIFF,
    OPT_TIMELINE,
    OPT_STATS,
    OPT_JSON,
    OPT_FOLDED,
    OPT_TOP,
    OPT_GROUP_BY,
    OPT_SORT,
    OPT_EXACT,
};

static const struct option long_options[] = {
    {"exe", required_argument, NULL, OPT_EXE},
    {"lib-path", required_argument, NULL, OPT_LIB_PATH},
    {"sysroot", required_argument, NULL, OPT_SYSROOT},
    {"at-peak", no_argument, NULL, OPT_AT_PEAK},
    {"at-mark", required_argument, NULL, OPT_AT_MARK},
    {"at", required_argument, NULL, OPT_AT},
    {"at-event", required_argument, NULL, OPT_AT_EVENT},
    {"by", required_argument, NULL, OPT_BY},
    {"block", required_argument, NULL, OPT_BLOCK},
    {"stack", required_argument, NULL, OPT_STACK},
    {"diff", required_argument, NULL, OPT_DIFF},
    {"timeline", optional_argument, NULL, OPT_TIMELINE},
    {"stats", no_argument, NULL, OPT_STATS},
    {"json", required_argument, NULL, OPT_JSON},
    {"folded", required_argument, NULL, OPT_FOLDED},
    {"top", required_argument, NULL, OPT_TOP},
    {"group-by", required_argument, NULL, OPT_GROUP_BY},
    {"sort", required_argument, NULL, OPT_SORT},
    {"exact", no_argument, NULL, OPT_EXACT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

enum view { VIEW_SNAPSHOT, VIEW_BLOCK, VIEW_STACK, VIEW_DIFF, VIEW_TIMELINE, VIEW_STATS };

struct output {
    FILE *file;       /* NULL: not asked for */
    const char *name; /* for messages */
    int only;         /* '-': this goes to stdout instead of the text */
};

struct inspect {
    struct memscope_render_options render;
    struct output json, folded;
    int text;         /* print the text view */
};

/* Parses a time: seconds, or a number with ns/us/ms/s (as `memscope report` and GDB take it). 0 or -1. */
static int parse_time(const char *text, uint64_t *ns)
{
    char *end = NULL;
    double v, scale = 1e9;

    if (!text || !*text || *text == '-' || *text == '+')
        return -1;
    v = strtod(text, &end);
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
    v *= scale;
    if (!(v >= 0) || v > 1.8e19)
        return -1;
    *ns = (uint64_t)(v + 0.5);
    return 0;
}

/* A diff point: 'start', 'end', 'now', 'peak', 'mark:NAME', 'event:N', 'time:T', T, or a bare mark name. */
static void parse_point(const char *text, struct memscope_point *p)
{
    uint64_t v = 0;

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
    } else if (strncmp(text, "event:", 6) == 0 && ms_parse_uint(text + 6, &v) == 0) {
        p->kind = MEMSCOPE_AT_EVENT;
        p->value = v;
    } else if (parse_time(strncmp(text, "time:", 5) == 0 ? text + 5 : text, &v) == 0) {
        p->kind = MEMSCOPE_AT_TIME;
        p->value = v;
    } else {
        p->kind = MEMSCOPE_AT_MARK;
        p->mark = text;
    }
}

static int parse_address(const char *text, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    if (!text || !*text || *text == '-')
        return -1;
    errno = 0;
    v = strtoull(text, &end, 0);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int open_output(struct output *o, const char *path, const char *option, int *stdout_taken)
{
    if (strcmp(path, "-") == 0) {
        if (*stdout_taken)
            return ms_usage_error("inspect", "only one of --json and --folded can go to standard output");
        *stdout_taken = 1;
        o->file = stdout;
        o->name = "standard output";
        o->only = 1;
        return 0;
    }
    o->file = fopen(path, "we");
    if (!o->file) {
        ms_error("cannot write %s: %s", path, strerror(errno));
        return MS_EXIT_FAILURE;
    }
    o->name = path;
    (void)option;
    return 0;
}

static int close_output(struct output *o)
{
    FILE *f = o->file;

    o->file = NULL;
    if (!f || f == stdout)
        return 0;
    if (fclose(f) != 0) {
        ms_error("cannot write %s: %s", o->name, strerror(errno));
        return -EIO;
    }
    return 0;
}

/* Writes text to f and frees it; rc from the renderer. Returns 0 or a negative errno (message printed). */
static int emit(int rc, FILE *f, const char *name, char *text, size_t len, const char *what)
{
    if (rc < 0) {
        ms_error("cannot render the %s: %s", what, memscope_strerror(rc));
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

static int locate(const struct memscope_history *h, const struct memscope_point *at)
{
    struct memscope_error err;
    struct memscope_point_info pi;
    int rc;

    if (at->kind == MEMSCOPE_AT_END)
        return 0;
    memset(&err, 0, sizeof(err));
    rc = memscope_history_locate(h, at, &pi, &err);
    if (rc < 0)
        ms_error("%s", err.message[0] ? err.message : memscope_strerror(rc));
    return rc;
}

static int show_snapshot(const struct memscope_history *h, const struct memscope_point *at, enum view view,
                         uint64_t addr, uint64_t stack, struct inspect *o)
{
    struct memscope_snapshot *s = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    rc = locate(h, at);
    if (rc < 0)
        return rc;
    rc = memscope_history_snapshot(h, at, &s);
    if (rc < 0) {
        ms_error("cannot rebuild the snapshot: %s", memscope_strerror(rc));
        return rc;
    }
    if (o->json.file) {
        rc = memscope_snapshot_render_json(s, &o->render, &text, &len);
        rc = emit(rc, o->json.file, o->json.name, text, len, "JSON");
    }
    if (rc == 0 && o->folded.file) {
        rc = memscope_snapshot_render_folded(s, &o->render, &text, &len);
        rc = emit(rc, o->folded.file, o->folded.name, text, len, "folded stacks");
    }
    if (rc == 0 && o->text) {
        if (view == VIEW_BLOCK)
            rc = memscope_history_render_block(h, s, addr, &o->render, &text, &len);
        else if (view == VIEW_STACK)
            rc = memscope_snapshot_render_stack(s, (uint32_t)stack, &o->render, &text, &len);
        else
            rc = memscope_snapshot_render_text(s, &o->render, &text, &len);
        if (rc == -ENOENT && view == VIEW_STACK) {
            ms_error("no call stack %" PRIu64 " among the live blocks' stacks", stack);
        } else {
            rc = emit(rc, stdout, "standard output", text, len, view == VIEW_BLOCK ? "block" : "snapshot");
        }
    }
    memscope_snapshot_free(s);
    return rc;
}

static int show_diff(const struct memscope_history *h, const struct memscope_point *a, const struct memscope_point *b,
                     struct inspect *o)
{
    struct memscope_error err;
    struct memscope_diff *d = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    memset(&err, 0, sizeof(err));
    rc = memscope_history_diff(h, a, b, &d, &err);
    if (rc < 0) {
        ms_error("%s", err.message[0] ? err.message : memscope_strerror(rc));
        return rc;
    }
    if (o->json.file) {
        rc = memscope_diff_render_json(d, &o->render, &text, &len);
        rc = emit(rc, o->json.file, o->json.name, text, len, "JSON");
    }
    if (rc == 0 && o->text) {
        rc = memscope_diff_render_text(d, &o->render, &text, &len);
        rc = emit(rc, stdout, "standard output", text, len, "diff");
    }
    memscope_diff_free(d);
    return rc;
}

static int show_timeline(const struct memscope_history *h, unsigned buckets, struct inspect *o)
{
    struct memscope_timeline *t = NULL;
    struct memscope_timeline_options topt;
    char *text = NULL;
    size_t len = 0;
    int rc;

    rc = memscope_history_timeline(h, buckets, &t);
    if (rc < 0) {
        ms_error("cannot build the timeline: %s",
                 rc == -ENODATA ? "the store holds no events" : memscope_strerror(rc));
        return rc;
    }
    memset(&topt, 0, sizeof(topt));
    topt.exact_bytes = o->render.exact_bytes;
    if (o->json.file) {
        rc = memscope_timeline_render_json(t, &text, &len);
        rc = emit(rc, o->json.file, o->json.name, text, len, "JSON");
    }
    if (rc == 0 && o->text) {
        rc = memscope_timeline_render_text(t, &topt, &text, &len);
        rc = emit(rc, stdout, "standard output", text, len, "timeline");
    }
    memscope_timeline_free(t);
    return rc;
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

int ms_cmd_inspect(int argc, char **argv)
{
    struct inspect o;
    struct ms_core_paths paths;
    const char *lib_paths[MAX_LIB_PATHS];
    struct memscope_point at, da, db;
    struct ms_core_error cerr;
    struct ms_core *core = NULL;
    struct ms_symbolizer *sym = NULL;
    struct memscope_history *h = NULL;
    struct ms_progress *progress = NULL;
    enum view view = VIEW_SNAPSHOT;
    const char *json_path = NULL, *folded_path = NULL, *how = NULL;
    unsigned buckets = 60;
    uint64_t v, addr = 0, stack = 0;
    int points = 0, views = 0, c, rc = 0, status = MS_EXIT_FAILURE, stdout_taken = 0, grouped = 0;

    memset(&o, 0, sizeof(o));
    memset(&paths, 0, sizeof(paths));
    memset(&at, 0, sizeof(at));
    paths.lib_path = lib_paths;
    at.kind = MEMSCOPE_AT_END;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_EXE:
            paths.exe = optarg;
            break;
        case OPT_LIB_PATH:
            if (paths.nlib_path == MAX_LIB_PATHS)
                return ms_usage_error("inspect", "at most %d --lib-path directories", MAX_LIB_PATHS);
            lib_paths[paths.nlib_path++] = optarg;
            break;
        case OPT_SYSROOT:
            paths.sysroot = optarg;
            break;
        case OPT_AT_PEAK:
            at.kind = MEMSCOPE_AT_PEAK;
            points++;
            break;
        case OPT_AT_MARK:
            at.kind = MEMSCOPE_AT_MARK;
            at.mark = optarg;
            points++;
            break;
        case OPT_AT:
            if (strcmp(optarg, "end") == 0 || strcmp(optarg, "peak") == 0 || strncmp(optarg, "mark:", 5) == 0 ||
                strncmp(optarg, "event:", 6) == 0 || strncmp(optarg, "time:", 5) == 0) {
                parse_point(optarg, &at); /* GDB's --at POINT spellings */
            } else if (parse_time(optarg, &v) == 0) {
                at.kind = MEMSCOPE_AT_TIME;
                at.value = v;
            } else {
                return ms_usage_error("inspect", "--at takes a time such as 1.5, 250ms or 40us, not '%s'", optarg);
            }
            points++;
            break;
        case OPT_AT_EVENT:
            if (ms_parse_uint(optarg, &v) < 0)
                return ms_usage_error("inspect", "--at-event takes a number of events, not '%s'", optarg);
            at.kind = MEMSCOPE_AT_EVENT;
            at.value = v;
            points++;
            break;
        case OPT_BY:
            if (strcmp(optarg, "site") != 0 && strcmp(optarg, "stack") != 0)
                return ms_usage_error("inspect", "--by takes 'site' or 'stack', not '%s'", optarg);
            parse_group(optarg, &o.render.group_by);
            break;
        case OPT_BLOCK:
            if (parse_address(optarg, &addr) < 0)
                return ms_usage_error("inspect", "--block takes an address such as 0x7f12345678, not '%s'", optarg);
            view = VIEW_BLOCK;
            views++;
            break;
        case OPT_STACK:
            if (ms_parse_uint(optarg, &stack) < 0 || stack == 0 || stack > UINT32_MAX)
                return ms_usage_error("inspect", "--stack takes a stack id (1 or more), not '%s'", optarg);
            view = VIEW_STACK;
            views++;
            break;
        case OPT_DIFF:
            if (optind >= argc)
                return ms_usage_error("inspect", "--diff takes two points, A and B");
            parse_point(optarg, &da);
            parse_point(argv[optind++], &db);
            view = VIEW_DIFF;
            views++;
            break;
        case OPT_TIMELINE:
            if (optarg && (ms_parse_uint(optarg, &v) < 0 || v == 0 || v > 100000))
                return ms_usage_error("inspect", "--timeline takes 1 to 100000 buckets, not '%s'", optarg);
            if (optarg)
                buckets = (unsigned)v;
            view = VIEW_TIMELINE;
            views++;
            break;
        case OPT_STATS:
            view = VIEW_STATS;
            views++;
            break;
        case OPT_JSON:
            if (!optarg[0])
                return ms_usage_error("inspect", "--json needs a file name");
            json_path = optarg;
            break;
        case OPT_FOLDED:
            if (!optarg[0])
                return ms_usage_error("inspect", "--folded needs a file name");
            folded_path = optarg;
            break;
        case OPT_TOP:
            if (ms_parse_uint(optarg, &v) < 0 || v == 0 || v > 1000000)
                return ms_usage_error("inspect", "--top takes a number of rows from 1 to 1000000, not '%s'", optarg);
            o.render.top = (unsigned)v;
            break;
        case OPT_GROUP_BY:
            grouped = 1;
            if (parse_group(optarg, &o.render.group_by) < 0)
                return ms_usage_error("inspect", "--group-by takes 'thread', 'label', 'size', 'site', 'stack' or "
                                      "'none', not '%s'", optarg);
            break;
        case OPT_SORT:
            if (strcmp(optarg, "size") == 0)
                o.render.sort_by = MEMSCOPE_SORT_SIZE;
            else if (strcmp(optarg, "count") == 0)
                o.render.sort_by = MEMSCOPE_SORT_COUNT;
            else if (strcmp(optarg, "time") == 0)
                o.render.sort_by = MEMSCOPE_SORT_TIME;
            else if (strcmp(optarg, "address") == 0)
                o.render.sort_by = MEMSCOPE_SORT_ADDRESS;
            else
                return ms_usage_error("inspect", "--sort takes 'size', 'count', 'time' or 'address', not '%s'",
                                      optarg);
            break;
        case OPT_EXACT:
            o.render.exact_bytes = 1;
            break;
        case 'h':
            print_help(stdout);
            return 0;
        case ':':
            return ms_usage_error("inspect", "option '%s' needs a value", argv[optind - 1]);
        default:
            return ms_usage_error("inspect", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (points > 1)
        return ms_usage_error("inspect", "give at most one of --at-peak, --at-mark, --at and --at-event");
    if (views > 1)
        return ms_usage_error("inspect", "give at most one of --block, --stack, --diff, --timeline and --stats");
    if (points && (view == VIEW_DIFF || view == VIEW_TIMELINE))
        return ms_usage_error("inspect", "--at... picks a snapshot; it does not combine with --diff or --timeline");
    if (folded_path && view != VIEW_SNAPSHOT)
        return ms_usage_error("inspect", "--folded writes the snapshot's stacks; it does not combine with other views");
    if (optind >= argc)
        return ms_usage_error("inspect", "no core file given (memscope inspect CORE)");
    if (optind + 1 < argc)
        return ms_usage_error("inspect", "one core file only, not '%s' too", argv[optind + 1]);
    if (paths.exe && access(paths.exe, R_OK) != 0) {
        ms_error("--exe %s: %s", paths.exe, strerror(errno));
        return MS_EXIT_FAILURE;
    }

    if (json_path && (rc = open_output(&o.json, json_path, "--json", &stdout_taken)) != 0) {
        status = rc;
        goto out;
    }
    if (folded_path && (rc = open_output(&o.folded, folded_path, "--folded", &stdout_taken)) != 0) {
        status = rc;
        goto out;
    }
    o.text = !stdout_taken;

    memset(&cerr, 0, sizeof(cerr));
    rc = ms_core_open(argv[optind], &paths, &core, &cerr);
    if (rc < 0) {
        ms_error("%s", cerr.message);
        goto out;
    }
    rc = ms_core_check_files(core, &cerr);
    if (rc < 0) {
        ms_error("%s", cerr.message);
        goto out;
    }
    progress = ms_progress_start("memscope: reading the store", ms_core_writable_bytes(core));
    ms_core_set_progress(core, progress);
    rc = ms_core_open_store(core, &h, &how, &cerr);
    ms_core_set_progress(core, NULL);
    ms_progress_end(progress);
    if (rc < 0) {
        ms_error("%s", cerr.message);
        goto out;
    }
    if (ms_symbolizer_new(core, &sym) < 0) {
        ms_error("out of memory");
        goto out;
    }
    o.render.symbolizer = ms_symbolizer_engine(sym);
    switch (view) {
    case VIEW_SNAPSHOT:
    case VIEW_BLOCK:
    case VIEW_STACK:
        rc = show_snapshot(h, &at, view, addr, stack, &o);
        break;
    case VIEW_STATS: {
        struct memscope_history_info hi;
        o.render.sections = MEMSCOPE_SECTION_SUMMARY;
        rc = show_snapshot(h, &at, view, 0, 0, &o);
        if (rc == 0 && o.text && memscope_history_info(h, &hi) == 0)
            printf("store: found by %s in %s, ABI version %u, %" PRIu64 " events, %u threads, pid %u\n", how,
                   ms_core_name(core), hi.abi_version, hi.events, hi.threads, hi.pid);
        break;
    }
    case VIEW_DIFF:
        if (!grouped) /* as memscope-diff: by label unless told otherwise */
            o.render.group_by = MEMSCOPE_GROUP_LABEL;
        rc = show_diff(h, &da, &db, &o);
        break;
    case VIEW_TIMELINE:
        rc = show_timeline(h, buckets, &o);
        break;
    }
    if (rc == 0)
        status = 0;
    if (sym && ms_symbolizer_warning(sym))
        ms_error("warning: %s; frames in it show module+offset", ms_symbolizer_warning(sym));
out:
    if (close_output(&o.json) < 0 || close_output(&o.folded) < 0)
        status = MS_EXIT_FAILURE;
    memscope_history_close(h);
    ms_symbolizer_free(sym);
    ms_core_close(core);
    return status;
}
