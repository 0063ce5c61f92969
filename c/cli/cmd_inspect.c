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
#include "views.h"

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
          "\n",
          out);
    fputs(ms_views_help_where, out);
    fputs("\n"
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
          MS_ALLOC_FN_HELP
          "  -h, --help         show this help and exit\n"
          "\n"
          "Exit status: 0; 1 when the core, its store or a file it names cannot be used\n"
          "(one sentence says why), or a point lies outside the history; 2 on a usage error.\n",
          out);
}

enum {
    OPT_EXE = MS_OPT_VIEWS_END,
    OPT_LIB_PATH,
    OPT_SYSROOT,
    OPT_STATS,
};

static const struct option long_options[] = {
    {"exe", required_argument, NULL, OPT_EXE},
    {"lib-path", required_argument, NULL, OPT_LIB_PATH},
    {"sysroot", required_argument, NULL, OPT_SYSROOT},
    MS_VIEWS_LONG_OPTIONS,
    {"by", required_argument, NULL, MS_OPT_BY},
    {"block", required_argument, NULL, MS_OPT_BLOCK},
    {"stack", required_argument, NULL, MS_OPT_STACK},
    {"stats", no_argument, NULL, OPT_STATS},
    {"folded", required_argument, NULL, MS_OPT_FOLDED},
    {"sort", required_argument, NULL, MS_OPT_SORT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int ms_cmd_inspect(int argc, char **argv)
{
    struct ms_views v;
    struct ms_core_paths paths;
    const char *lib_paths[MAX_LIB_PATHS];
    struct ms_core_error cerr;
    struct ms_core *core = NULL;
    struct ms_symbolizer *sym = NULL;
    struct memscope_history *h = NULL;
    struct ms_progress *progress = NULL;
    const char *how = NULL, *path = NULL;
    int c, rc = 0, usage, status = MS_EXIT_FAILURE;

    ms_views_init(&v, "inspect", "store");
    v.gdb_points = 1;
    memset(&paths, 0, sizeof(paths));
    paths.lib_path = lib_paths;
    while ((c = ms_views_next(&v, argc, argv, long_options, &usage)) != -1) {
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
        case OPT_STATS:
            v.view = MS_VIEW_OWN;
            v.views++;
            break;
        case 'h':
            print_help(stdout);
            return 0;
        }
    }
    if (usage != 0)
        return usage;
    if (v.views > 1)
        return ms_usage_error("inspect", "give at most one of --block, --stack, --diff, --timeline and --stats");
    if (v.points && (v.view == MS_VIEW_DIFF || v.view == MS_VIEW_TIMELINE))
        return ms_usage_error("inspect", "--at... picks a snapshot; it does not combine with --diff or --timeline");
    if (v.folded_path && v.view != MS_VIEW_SNAPSHOT)
        return ms_usage_error("inspect", "--folded writes the snapshot's stacks; it does not combine with other views");
    if ((usage = ms_views_operand(&v, argc, argv, "core file", "CORE", &path)) != 0)
        return usage;
    if (paths.exe && access(paths.exe, R_OK) != 0) {
        ms_error("--exe %s: %s", paths.exe, strerror(errno));
        return MS_EXIT_FAILURE;
    }

    if ((rc = ms_views_open_outputs(&v)) != 0) {
        status = rc;
        goto out;
    }

    memset(&cerr, 0, sizeof(cerr));
    rc = ms_core_open(path, &paths, &core, &cerr);
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
    if (sym)
        ms_symbolizer_set_alloc_fns(sym, v.alloc_fns);
    v.render.symbolizer = ms_symbolizer_engine(sym);
    if (v.view == MS_VIEW_OWN) { /* --stats */
        struct memscope_history_info hi;
        v.render.sections = MEMSCOPE_SECTION_SUMMARY;
        rc = ms_views_show_snapshot(h, &v);
        if (rc == 0 && v.text && memscope_history_info(h, &hi) == 0)
            printf("store: found by %s in %s, ABI version %u, %" PRIu64 " events, %u threads, pid %u\n", how,
                   ms_core_name(core), hi.abi_version, hi.events, hi.threads, hi.pid);
    } else {
        rc = ms_views_show(h, &v);
    }
    if (rc == 0)
        status = 0;
    if (sym && ms_symbolizer_warning(sym))
        ms_error("warning: %s; frames in it show module+offset", ms_symbolizer_warning(sym));
out:
    if (ms_views_close_outputs(&v) < 0)
        status = MS_EXIT_FAILURE;
    memscope_history_close(h);
    ms_symbolizer_free(sym);
    ms_core_close(core);
    return status;
}
