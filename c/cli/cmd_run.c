/*
 * cmd_run.c - `memscope run [OPTIONS] -- PROG ARGS...`: runs PROG with the
 * recording library preloaded, then prints the snapshot of its heap at exit.
 *
 * The runtime in the child writes its store to an exit image file at exit
 * (MEMSCOPE_EXIT_IMAGE, in a private directory made here); this command
 * reads that image with the engine after the child has gone.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "report.h"
#include "views.h"
#include "child.h"

static void print_help(FILE *out)
{
    fputs("Usage: memscope run [OPTIONS] [--] PROG [ARGS...]\n"
          "\n"
          "Runs PROG with every heap allocation recorded (libmemscope.so preloaded) and,\n"
          "when it exits, prints the snapshot of its heap at exit: the summary figures,\n"
          "the per-thread table and the largest live blocks (the blocks it leaked).\n"
          "\n"
          "Options:\n"
          "  --summary          print only the summary figures (no thread table, no blocks)\n"
          "  --json FILE        also write the whole snapshot as JSON to FILE (every live\n"
          "                     block included); with FILE '-', write the JSON to standard\n"
          "                     output instead of the text\n"
          "  --top N            show N rows of live blocks (default 10)\n"
          "  --group-by KEY     group live blocks by 'thread', 'label', 'size' (size class),\n"
          "                     'site' (allocation site: function, file:line, library) or\n"
          "                     'stack' (whole call stack)\n"
          "  --exact            show exact byte counts beside the human-readable sizes\n"
          MS_ALLOC_FN_HELP
          "  --budget SIZE      memory the event store may use, e.g. 512M or 4G (default:\n"
          "                     the runtime's, 256M); beyond it the oldest events are folded\n"
          "  --trace FILE       also write the whole event history to FILE as it is recorded\n"
          "                     (MEMSCOPE_TRACE; read it with 'memscope report FILE', even\n"
          "                     after PROG was killed)\n"
          "  -h, --help         show this help and exit\n"
          "\n"
          "Environment:\n"
          "  MEMSCOPE_LIBRARY   the recording library to preload (default: ../lib/libmemscope.so\n"
          "                     next to this executable)\n"
          "\n"
          "The snapshot goes to standard output after the program's own output; messages\n"
          "from memscope go to standard error. SIGINT, SIGTERM and SIGHUP sent to memscope\n"
          "are passed on to PROG.\n"
          "\n"
          "Exit status: PROG's own (128+N when it was killed by signal N and still left\n"
          "its exit image); 1 when PROG cannot be started, the library is missing, PROG\n"
          "left no exit image (killed by a signal, ended with _exit(), or exec'd another\n"
          "program) or the image is damaged; 2 on a usage error.\n",
          out);
}

enum {
    OPT_SUMMARY = 0x100,
    OPT_JSON,
    OPT_TOP,
    OPT_GROUP_BY,
    OPT_EXACT,
    OPT_ALLOC_FN,
    OPT_BUDGET,
    OPT_TRACE,
};

static const struct option long_options[] = {
    {"summary", no_argument, NULL, OPT_SUMMARY},
    {"json", required_argument, NULL, OPT_JSON},
    {"top", required_argument, NULL, OPT_TOP},
    {"group-by", required_argument, NULL, OPT_GROUP_BY},
    {"exact", no_argument, NULL, OPT_EXACT},
    {"alloc-fn", required_argument, NULL, OPT_ALLOC_FN},
    {"budget", required_argument, NULL, OPT_BUDGET},
    {"trace", required_argument, NULL, OPT_TRACE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct run_options {
    struct ms_report_options report;
    const char *json_path; /* --json FILE, or NULL */
    char budget[32];   /* MEMSCOPE_BUDGET for the child, in bytes; "" to leave it alone */
    int help;          /* --help seen */
    const char *trace; /* --trace FILE, or NULL */
};

/* Parses the options before PROG. Returns the index of PROG in argv, or -MS_EXIT_USAGE (message printed). */
static int parse_options(int argc, char **argv, struct run_options *o)
{
    uint64_t value = 0;
    int c;

    opterr = 0;
    optind = 1;
    /* '+': stop at PROG, so PROG's own options are left alone. */
    while ((c = getopt_long(argc, argv, "+:h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_SUMMARY:
            o->report.render.sections = MEMSCOPE_SECTION_SUMMARY;
            break;
        case OPT_JSON:
            if (optarg[0] == '\0')
                return -ms_usage_error("run", "--json needs a file name");
            o->json_path = optarg;
            break;
        case OPT_TOP:
            if (ms_parse_uint(optarg, &value) < 0 || value == 0 || value > 1000000)
                return -ms_usage_error("run", "--top takes a number of rows from 1 to 1000000, not '%s'", optarg);
            o->report.render.top = (unsigned)value;
            break;
        case OPT_GROUP_BY:
            if (strcmp(optarg, "thread") == 0)
                o->report.render.group_by = MEMSCOPE_GROUP_THREAD;
            else if (strcmp(optarg, "label") == 0)
                o->report.render.group_by = MEMSCOPE_GROUP_LABEL;
            else if (strcmp(optarg, "size") == 0)
                o->report.render.group_by = MEMSCOPE_GROUP_SIZE_CLASS;
            else if (strcmp(optarg, "site") == 0)
                o->report.render.group_by = MEMSCOPE_GROUP_SITE;
            else if (strcmp(optarg, "stack") == 0)
                o->report.render.group_by = MEMSCOPE_GROUP_STACK;
            else
                return -ms_usage_error("run", "--group-by takes 'thread', 'label', 'size', 'site' or 'stack', not '%s'",
                                       optarg);
            break;
        case OPT_EXACT:
            o->report.render.exact_bytes = 1;
            break;
        case OPT_ALLOC_FN: {
            size_t n = 0;
            while (o->report.alloc_fns[n])
                n++;
            if (n == MS_MAX_ALLOC_FNS)
                return -ms_usage_error("run", "at most %d --alloc-fn options", MS_MAX_ALLOC_FNS);
            if (!optarg[0])
                return -ms_usage_error("run", "--alloc-fn needs a function name");
            o->report.alloc_fns[n] = optarg;
            break;
        }
        case OPT_BUDGET:
            if (ms_parse_size(optarg, &value) < 0 || value == 0)
                return -ms_usage_error("run", "--budget takes a size such as 512M or 4G, not '%s'", optarg);
            snprintf(o->budget, sizeof(o->budget), "%llu", (unsigned long long)value);
            break;
        case OPT_TRACE:
            if (optarg[0] == '\0')
                return -ms_usage_error("run", "--trace needs a file name");
            o->trace = optarg;
            break;
        case 'h':
            o->help = 1;
            return optind;
        case ':':
            return -ms_usage_error("run", "option '%s' needs a value", argv[optind - 1]);
        default:
            return -ms_usage_error("run", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return -ms_usage_error("run", "no program to run (memscope run -- PROG ARGS...)");
    return optind;
}

/* Makes a private directory for the exit image and returns the image path in it (malloc'd), or NULL. */
static char *make_image_path(char **dir_out)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = NULL;
    char *path = NULL;
    size_t len;

    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    len = strlen(tmp) + sizeof("/memscope-XXXXXX");
    dir = malloc(len);
    if (dir == NULL)
        return NULL;
    snprintf(dir, len, "%s/memscope-XXXXXX", tmp);
    if (mkdtemp(dir) == NULL) {
        ms_error("cannot make a private directory in %s for the exit image: %s", tmp, strerror(errno));
        free(dir);
        return NULL;
    }
    len = strlen(dir) + sizeof("/exit.image");
    path = malloc(len);
    if (path == NULL) {
        rmdir(dir);
        free(dir);
        return NULL;
    }
    snprintf(path, len, "%s/exit.image", dir);
    *dir_out = dir;
    return path;
}

/*
 * Removes the private image directory and what is in it: the image, and the
 * FILE.PID images forked children write when MEMSCOPE_EXIT_IMAGE_CHILDREN is
 * set (this command reports only the program's own).
 */
static void remove_image_dir(const char *dir)
{
    char path[4096];
    struct dirent *entry;
    DIR *d = opendir(dir);

    if (d != NULL) {
        while ((entry = readdir(d)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

int ms_cmd_run(int argc, char **argv)
{
    struct run_options o;
    struct ms_child_end end;
    struct stat st;
    char **env = NULL;
    char *library = NULL;
    char *image_dir = NULL;
    char *image_path = NULL;
    char what[512];
    char title[512];
    const char *prog;
    int status = MS_EXIT_FAILURE;
    int first;

    memset(&o, 0, sizeof(o));
    memset(&end, 0, sizeof(end));
    first = parse_options(argc, argv, &o);
    if (first < 0)
        return -first;
    if (o.help) {
        print_help(stdout);
        return 0;
    }
    prog = argv[first];

    if (ms_find_library(&library) < 0)
        goto out;
    if (o.json_path != NULL && ms_report_open_json(&o.report, o.json_path) < 0)
        goto out;
    /* The child inherits it through the environment ms_env_build copies. */
    if (o.trace != NULL && setenv("MEMSCOPE_TRACE", o.trace, 1) != 0) {
        ms_error("out of memory");
        goto out;
    }
    image_path = make_image_path(&image_dir);
    if (image_path == NULL)
        goto out;
    env = ms_env_build(library, image_path, o.budget[0] ? o.budget : NULL);
    if (env == NULL) {
        ms_error("out of memory");
        goto out;
    }
    if (ms_spawn_and_wait(argv + first, env, &end) < 0)
        goto out;

    if (stat(image_path, &st) != 0) {
        if (end.signaled)
            ms_error("%s was killed by signal %d (%s) before it could write its exit image; no snapshot", prog,
                     end.code, strsignal(end.code));
        else
            ms_error("%s exited with status %d but left no exit image (did it exec another program, end with "
                     "_exit(), or run without the recording library, e.g. statically linked or setuid?)",
                     prog, end.code);
        goto out;
    }

    snprintf(what, sizeof(what), "the exit image of %s", prog);
    if (end.signaled)
        snprintf(title, sizeof(title), "== memscope run: %s was killed by signal %d (%s) ==", prog, end.code,
                 strsignal(end.code));
    else
        snprintf(title, sizeof(title), "== memscope run: %s exited with status %d ==", prog, end.code);
    o.report.title = title;
    fflush(stdout);
    if (ms_report_image(image_path, what, &o.report) < 0)
        goto out;
    if (ms_report_close_json(&o.report) < 0)
        goto out;
    status = end.signaled ? 128 + end.code : end.code;
out:
    ms_report_close_json(&o.report);
    if (image_dir != NULL)
        remove_image_dir(image_dir);
    free(image_path);
    free(image_dir);
    free(library);
    ms_env_free(env);
    return status;
}
