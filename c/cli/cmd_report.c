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
#include "core.h"
#include "memscope/engine.h"
#include "memscope/trace.h"
#include "views.h"

static void print_help(FILE *out)
{
    fputs("Usage: memscope report TRACE [OPTIONS]\n"
          "\n"
          "Shows what a trace file recorded (MEMSCOPE_TRACE=FILE, memscope run --trace FILE,\n"
          "or GDB's memscope-save FILE): by default the snapshot at the end of the trace.\n"
          "A trace cut short (the program was killed) is read up to its last whole block;\n"
          "damaged blocks are skipped with a warning (--strict: refused).\n"
          "\n",
          out);
    fputs(ms_views_help_where, out);
    fputs("\n"
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
          MS_ALLOC_FN_HELP
          "  --strict           refuse a trace with any damaged or missing block\n"
          "  -h, --help         show this help and exit\n"
          "\n"
          "Exit status: 0; 1 when the trace cannot be read or the point lies outside it;\n"
          "2 on a usage error.\n",
          out);
}

enum {
    OPT_INFO = MS_OPT_VIEWS_END,
    OPT_SUMMARY,
    OPT_STRICT,
};

static const struct option long_options[] = {
    MS_VIEWS_LONG_OPTIONS,
    {"info", no_argument, NULL, OPT_INFO},
    {"summary", no_argument, NULL, OPT_SUMMARY},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

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
    struct ms_views v;
    struct memscope_trace_info ti;
    struct memscope_error err;
    struct memscope_history *h = NULL;
    struct ms_symbolizer *sym = NULL;
    unsigned flags = 0;
    const char *path = NULL;
    int c, rc, usage, status = MS_EXIT_FAILURE;

    ms_views_init(&v, "report", "trace");
    v.plus_times = 1;
    while ((c = ms_views_next(&v, argc, argv, long_options, &usage)) != -1) {
        switch (c) {
        case OPT_INFO:
            v.view = MS_VIEW_OWN;
            break;
        case OPT_SUMMARY:
            v.render.sections = MEMSCOPE_SECTION_SUMMARY;
            break;
        case OPT_STRICT:
            flags |= MEMSCOPE_TRACE_STRICT;
            break;
        case 'h':
            print_help(stdout);
            return 0;
        }
    }
    if (usage != 0)
        return usage;
    if (v.points && v.view != MS_VIEW_SNAPSHOT)
        return ms_usage_error("report", "--at... picks a snapshot; it does not combine with --diff, --timeline or --info");
    if ((usage = ms_views_operand(&v, argc, argv, "trace file", "TRACE", &path)) != 0)
        return usage;

    memset(&err, 0, sizeof(err));
    rc = memscope_trace_open(path, flags, &h, &ti, &err);
    if (rc < 0) {
        ms_error("%s", err.message[0] ? err.message : memscope_strerror(rc));
        return MS_EXIT_FAILURE;
    }
    if (ti.warning[0])
        ms_error("warning: %s: %s", path, ti.warning);
    if (!ti.complete && v.view != MS_VIEW_OWN)
        ms_error("warning: %s was not finished by its writer (the program was killed or is still running); "
                 "showing what it holds", path);
    if (ms_symbolizer_for_modules(path, memscope_trace_modules(h), &sym) != 0) {
        ms_error("out of memory");
        goto out;
    }
    if (sym)
        ms_symbolizer_set_alloc_fns(sym, v.alloc_fns);
    v.render.symbolizer = sym ? ms_symbolizer_engine(sym) : NULL;
    if (ms_views_open_outputs(&v) != 0)
        goto out;
    if (v.view == MS_VIEW_OWN) { /* --info */
        show_info(path, h, &ti);
        rc = 0;
    } else {
        rc = ms_views_show(h, &v);
    }
    if (rc == 0 && ms_views_close_outputs(&v) == 0)
        status = 0;
    if (sym && ms_symbolizer_warning(sym))
        ms_error("warning: %s; frames in it show module+offset", ms_symbolizer_warning(sym));
out:
    ms_views_close_outputs(&v);
    memscope_history_close(h);
    ms_symbolizer_free(sym);
    return status;
}
