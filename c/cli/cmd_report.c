/*
 * cmd_report.c - `memscope report TRACE [OPTIONS]`: the views of a recorded
 * history from a trace file alone (MEMSCOPE_TRACE, `memscope run --trace`,
 * GDB's memscope-save), after the process is gone.
 *
 * The engine reads the trace into a history (memscope_trace_open) and does
 * every replay and rendering: a snapshot at a point, a diff between two
 * points (diff.c), a timeline (timeline.c). This file parses options, picks
 * the view and prints what the engine renders.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "memscope/engine.h"
#include "memscope/trace.h"
#include "report.h"

static void print_help(FILE *out)
{
    fputs("Usage: memscope report TRACE [OPTIONS]\n"
          "\n"
          "Shows what a trace file recorded (MEMSCOPE_TRACE=FILE, memscope run --trace FILE,\n"
          "or GDB's memscope-save FILE): by default the snapshot at the end of the trace.\n"
          "A trace cut short (the program was killed) is read up to its last whole block;\n"
          "damaged blocks are skipped with a warning (--strict: refused).\n"
          "\n"
          "Where (one of; default: the end):\n"
          "  --at-peak          the instant live bytes first reached their highest value\n"
          "  --at-mark NAME     right after the first mark NAME\n"
          "  --at TIME          at TIME since recording began: seconds (1.5) or with a unit\n"
          "                     (250ms, 40us, 1000ns, 2s)\n"
          "  --at-event N       after the first N events\n"
          "\n"
          "Other views:\n"
          "  --diff A B         what changed from point A to point B: A and B are 'start',\n"
          "                     'end', 'peak', 'mark:NAME', 'event:N' or a TIME (grouped by\n"
          "                     label unless --group-by says otherwise)\n"
          "  --timeline[=N]     live bytes over the whole trace, N buckets (default 60)\n"
          "  --info             facts about the trace (events, threads, span, damage)\n"
          "\n"
          "Output:\n"
          "  --json FILE        also write the view as JSON to FILE ('-': JSON only, to stdout)\n"
          "  --summary          print only the summary figures\n"
          "  --top N            rows of blocks (default 10)\n"
          "  --group-by KEY     group blocks by 'thread', 'label', 'size', 'site' (allocation\n"
          "                     site: top by site), 'stack' or 'none'; sites and stacks show\n"
          "                     return addresses (the process's modules are gone)\n"
          "  --exact            exact byte counts beside the human-readable sizes\n"
          "  --strict           refuse a trace with any damaged or missing block\n"
          "  -h, --help         show this help and exit\n"
          "\n"
          "Exit status: 0; 1 when the trace cannot be read or the point lies outside it;\n"
          "2 on a usage error.\n",
          out);
}

enum {
    OPT_AT_PEAK = 0x100,
    OPT_AT_MARK,
    OPT_AT,
    OPT_AT_EVENT,
    OPT_DIFF,
    OPT_TIMELINE,
    OPT_INFO,
    OPT_JSON,
    OPT_SUMMARY,
    OPT_TOP,
    OPT_GROUP_BY,
    OPT_EXACT,
    OPT_STRICT,
};

static const struct option long_options[] = {
    {"at-peak", no_argument, NULL, OPT_AT_PEAK},
    {"at-mark", required_argument, NULL, OPT_AT_MARK},
    {"at", required_argument, NULL, OPT_AT},
    {"at-event", required_argument, NULL, OPT_AT_EVENT},
    {"diff", required_argument, NULL, OPT_DIFF},
    {"timeline", optional_argument, NULL, OPT_TIMELINE},
    {"info", no_argument, NULL, OPT_INFO},
    {"json", required_argument, NULL, OPT_JSON},
    {"summary", no_argument, NULL, OPT_SUMMARY},
    {"top", required_argument, NULL, OPT_TOP},
    {"group-by", required_argument, NULL, OPT_GROUP_BY},
    {"exact", no_argument, NULL, OPT_EXACT},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

enum view { VIEW_SNAPSHOT, VIEW_DIFF, VIEW_TIMELINE, VIEW_INFO };

/* Parses a time: seconds, or a number with ns/us/ms/s. 0 or -1. */
static int parse_time(const char *text, uint64_t *ns)
{
    char *end = NULL;
    double v;
    double scale = 1e9;

    if (!text || !*text || *text == '-')
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

/* Parses a diff point ('start', 'end', 'now', 'peak', 'mark:NAME', 'event:N', 'time:T' or T). */
static int parse_point(const char *text, struct memscope_point *p)
{
    uint64_t v = 0;

    memset(p, 0, sizeof(*p));
    if (strcmp(text, "end") == 0 || strcmp(text, "now") == 0) {
        p->kind = MEMSCOPE_AT_END;
    } else if (strcmp(text, "start") == 0) {
        p->kind = MEMSCOPE_AT_EVENT;
        p->value = 0;
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
        p->kind = MEMSCOPE_AT_MARK; /* a bare name is a mark, as in GDB */
        p->mark = text;
    }
    return 0;
}

static int write_out(FILE *f, const char *name, const char *text, size_t len)
{
    if (fwrite(text, 1, len, f) != len || fflush(f) != 0) {
        ms_error("cannot write %s: %s", name, strerror(errno ? errno : EIO));
        return -EIO;
    }
    return 0;
}

static int show_snapshot(const struct memscope_history *h, const struct memscope_point *at,
                         const struct ms_report_options *o)
{
    struct memscope_error err;
    struct memscope_point_info pi;
    struct memscope_snapshot *s = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    memset(&err, 0, sizeof(err));
    if (at->kind != MEMSCOPE_AT_END) {
        rc = memscope_history_locate(h, at, &pi, &err);
        if (rc < 0) {
            ms_error("%s", err.message[0] ? err.message : memscope_strerror(rc));
            return rc;
        }
    }
    rc = memscope_history_snapshot(h, at, &s);
    if (rc < 0) {
        ms_error("cannot rebuild the snapshot: %s", memscope_strerror(rc));
        return rc;
    }
    if (o->json_file) {
        rc = memscope_snapshot_render_json(s, &o->render, &text, &len);
        if (rc == 0)
            rc = write_out(o->json_file, o->json_name, text, len);
        memscope_text_free(text);
        text = NULL;
    }
    if (rc == 0 && !o->json_only) {
        rc = memscope_snapshot_render_text(s, &o->render, &text, &len);
        if (rc == 0)
            rc = write_out(stdout, "standard output", text, len);
        memscope_text_free(text);
    }
    memscope_snapshot_free(s);
    return rc;
}

static int show_diff(const struct memscope_history *h, const struct memscope_point *a, const struct memscope_point *b,
                     const struct ms_report_options *o)
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
    if (o->json_file) {
        rc = memscope_diff_render_json(d, &o->render, &text, &len);
        if (rc == 0)
            rc = write_out(o->json_file, o->json_name, text, len);
        memscope_text_free(text);
        text = NULL;
    }
    if (rc == 0 && !o->json_only) {
        rc = memscope_diff_render_text(d, &o->render, &text, &len);
        if (rc == 0)
            rc = write_out(stdout, "standard output", text, len);
        memscope_text_free(text);
    }
    memscope_diff_free(d);
    return rc;
}

static int show_timeline(const struct memscope_history *h, unsigned buckets, const struct ms_report_options *o)
{
    struct memscope_timeline *t = NULL;
    struct memscope_timeline_options topt;
    char *text = NULL;
    size_t len = 0;
    int rc;

    rc = memscope_history_timeline(h, buckets, &t);
    if (rc < 0) {
        ms_error("cannot build the timeline: %s", rc == -ENODATA ? "the trace holds no events" : memscope_strerror(rc));
        return rc;
    }
    memset(&topt, 0, sizeof(topt));
    topt.exact_bytes = o->render.exact_bytes;
    if (o->json_file) {
        rc = memscope_timeline_render_json(t, &text, &len);
        if (rc == 0)
            rc = write_out(o->json_file, o->json_name, text, len);
        memscope_text_free(text);
        text = NULL;
    }
    if (rc == 0 && !o->json_only) {
        rc = memscope_timeline_render_text(t, &topt, &text, &len);
        if (rc == 0)
            rc = write_out(stdout, "standard output", text, len);
        memscope_text_free(text);
    }
    memscope_timeline_free(t);
    return rc;
}

static void show_info(const char *path, const struct memscope_history *h, const struct memscope_trace_info *ti)
{
    struct memscope_history_info hi;

    memscope_history_info(h, &hi);
    printf("trace %s: format version %u, %llu bytes, %llu blocks (%llu skipped), %s\n", path, ti->version,
           (unsigned long long)ti->file_bytes, (unsigned long long)ti->blocks,
           (unsigned long long)ti->blocks_skipped, ti->complete ? "complete" : "not finished (the writer did not end it)");
    printf("events %llu, threads %u, marks %llu, pid %u, from %.6f s to %.6f s, dropped %llu\n",
           (unsigned long long)hi.events, hi.threads, (unsigned long long)hi.marks, hi.pid,
           hi.first_time_ns / 1e9, hi.last_time_ns / 1e9, (unsigned long long)hi.dropped_events);
    if (hi.events)
        printf("bytes per event %.2f\n", (double)ti->file_bytes / (double)hi.events);
}

int ms_cmd_report(int argc, char **argv)
{
    struct ms_report_options o;
    struct memscope_point at, da, db;
    struct memscope_trace_info ti;
    struct memscope_error err;
    struct memscope_history *h = NULL;
    enum view view = VIEW_SNAPSHOT;
    unsigned flags = 0, buckets = 60;
    const char *json_path = NULL, *path;
    int points = 0, c, rc, status = MS_EXIT_FAILURE, grouped = 0;
    uint64_t v;

    memset(&o, 0, sizeof(o));
    memset(&at, 0, sizeof(at));
    at.kind = MEMSCOPE_AT_END;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
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
            if (parse_time(optarg, &v) < 0)
                return ms_usage_error("report", "--at takes a time such as 1.5, 250ms or 40us, not '%s'", optarg);
            at.kind = MEMSCOPE_AT_TIME;
            at.value = v;
            points++;
            break;
        case OPT_AT_EVENT:
            if (ms_parse_uint(optarg, &v) < 0)
                return ms_usage_error("report", "--at-event takes a number of events, not '%s'", optarg);
            at.kind = MEMSCOPE_AT_EVENT;
            at.value = v;
            points++;
            break;
        case OPT_DIFF:
            if (optind >= argc)
                return ms_usage_error("report", "--diff takes two points, A and B");
            parse_point(optarg, &da);
            parse_point(argv[optind++], &db);
            view = VIEW_DIFF;
            break;
        case OPT_TIMELINE:
            if (optarg && (ms_parse_uint(optarg, &v) < 0 || v == 0 || v > 100000))
                return ms_usage_error("report", "--timeline takes 1 to 100000 buckets, not '%s'", optarg);
            if (optarg)
                buckets = (unsigned)v;
            view = VIEW_TIMELINE;
            break;
        case OPT_INFO:
            view = VIEW_INFO;
            break;
        case OPT_JSON:
            if (optarg[0] == '\0')
                return ms_usage_error("report", "--json needs a file name");
            json_path = optarg;
            break;
        case OPT_SUMMARY:
            o.render.sections = MEMSCOPE_SECTION_SUMMARY;
            break;
        case OPT_TOP:
            if (ms_parse_uint(optarg, &v) < 0 || v == 0 || v > 1000000)
                return ms_usage_error("report", "--top takes a number of rows from 1 to 1000000, not '%s'", optarg);
            o.render.top = (unsigned)v;
            break;
        case OPT_GROUP_BY:
            grouped = 1;
            if (strcmp(optarg, "thread") == 0)
                o.render.group_by = MEMSCOPE_GROUP_THREAD;
            else if (strcmp(optarg, "label") == 0)
                o.render.group_by = MEMSCOPE_GROUP_LABEL;
            else if (strcmp(optarg, "size") == 0)
                o.render.group_by = MEMSCOPE_GROUP_SIZE_CLASS;
            else if (strcmp(optarg, "site") == 0)
                o.render.group_by = MEMSCOPE_GROUP_SITE;
            else if (strcmp(optarg, "stack") == 0)
                o.render.group_by = MEMSCOPE_GROUP_STACK;
            else if (strcmp(optarg, "none") == 0)
                o.render.group_by = MEMSCOPE_GROUP_NONE;
            else
                return ms_usage_error("report",
                                      "--group-by takes 'thread', 'label', 'size', 'site', 'stack' or 'none', not '%s'",
                                      optarg);
            break;
        case OPT_EXACT:
            o.render.exact_bytes = 1;
            break;
        case OPT_STRICT:
            flags |= MEMSCOPE_TRACE_STRICT;
            break;
        case 'h':
            print_help(stdout);
            return 0;
        case ':':
            return ms_usage_error("report", "option '%s' needs a value", argv[optind - 1]);
        default:
            return ms_usage_error("report", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (points > 1)
        return ms_usage_error("report", "give at most one of --at-peak, --at-mark, --at and --at-event");
    if (points && view != VIEW_SNAPSHOT)
        return ms_usage_error("report", "--at... picks a snapshot; it does not combine with --diff, --timeline or --info");
    if (optind >= argc)
        return ms_usage_error("report", "no trace file given (memscope report TRACE)");
    if (optind + 1 < argc)
        return ms_usage_error("report", "one trace file only, not '%s' too", argv[optind + 1]);
    path = argv[optind];

    memset(&err, 0, sizeof(err));
    rc = memscope_trace_open(path, flags, &h, &ti, &err);
    if (rc < 0) {
        ms_error("%s", err.message[0] ? err.message : memscope_strerror(rc));
        return MS_EXIT_FAILURE;
    }
    if (ti.warning[0])
        ms_error("warning: %s: %s", path, ti.warning);
    if (!ti.complete && view != VIEW_INFO)
        ms_error("warning: %s was not finished by its writer (the program was killed or is still running); "
                 "showing what it holds", path);
    if (json_path && ms_report_open_json(&o, json_path) < 0)
        goto out;
    switch (view) {
    case VIEW_SNAPSHOT:
        rc = show_snapshot(h, &at, &o);
        break;
    case VIEW_DIFF:
        if (!grouped)
            o.render.group_by = MEMSCOPE_GROUP_LABEL; /* as memscope-diff and memscope inspect --diff */
        rc = show_diff(h, &da, &db, &o);
        break;
    case VIEW_TIMELINE:
        rc = show_timeline(h, buckets, &o);
        break;
    case VIEW_INFO:
        show_info(path, h, &ti);
        rc = 0;
        break;
    }
    if (rc == 0 && ms_report_close_json(&o) == 0)
        status = 0;
out:
    ms_report_close_json(&o);
    memscope_history_close(h);
    return status;
}
