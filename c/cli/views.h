/*
 * views.h - the views that `memscope inspect` and `memscope report` share:
 * where in the history to look (--at-peak, --at-mark, --at, --at-event),
 * which view (snapshot, --block, --stack, --diff, --timeline), how to render
 * it (--top, --group-by/--by, --sort, --exact) and where it goes (text on
 * stdout, --json, --folded).
 *
 * Each subcommand keeps what is its own: how it gets a history (a core file,
 * a trace file), its own options, and which of the shared options it offers
 * (its getopt table lists them). This file parses the shared options and
 * renders the chosen view from a history, so both say the same things the
 * same way.
 */
#ifndef MS_VIEWS_H
#define MS_VIEWS_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "memscope/engine.h"

/* getopt_long codes of the shared options; a subcommand numbers its own from MS_OPT_VIEWS_END. */
enum {
    MS_OPT_AT_PEAK = 0x100,
    MS_OPT_AT_MARK,
    MS_OPT_AT,
    MS_OPT_AT_EVENT,
    MS_OPT_BY,
    MS_OPT_BLOCK,
    MS_OPT_STACK,
    MS_OPT_DIFF,
    MS_OPT_TIMELINE,
    MS_OPT_JSON,
    MS_OPT_FOLDED,
    MS_OPT_TOP,
    MS_OPT_GROUP_BY,
    MS_OPT_SORT,
    MS_OPT_EXACT,
    MS_OPT_ALLOC_FN,
    MS_OPT_VIEWS_END,
};

/* The getopt_long entries every view subcommand takes (--by, --block, --stack, --folded, --sort are opt-in). */
#define MS_VIEWS_LONG_OPTIONS                                                                                          \
    {"at-peak", no_argument, NULL, MS_OPT_AT_PEAK}, {"at-mark", required_argument, NULL, MS_OPT_AT_MARK},              \
        {"at", required_argument, NULL, MS_OPT_AT}, {"at-event", required_argument, NULL, MS_OPT_AT_EVENT},            \
        {"diff", required_argument, NULL, MS_OPT_DIFF}, {"timeline", optional_argument, NULL, MS_OPT_TIMELINE},        \
        {"json", required_argument, NULL, MS_OPT_JSON}, {"top", required_argument, NULL, MS_OPT_TOP},                  \
        {"group-by", required_argument, NULL, MS_OPT_GROUP_BY}, {"exact", no_argument, NULL, MS_OPT_EXACT},           \
        {"alloc-fn", required_argument, NULL, MS_OPT_ALLOC_FN}

/* The "Where" section of both subcommands' --help. */
extern const char ms_views_help_where[];

enum ms_view {
    MS_VIEW_SNAPSHOT, /* the snapshot at `at` (the default) */
    MS_VIEW_BLOCK,    /* --block ADDR */
    MS_VIEW_STACK,    /* --stack ID */
    MS_VIEW_DIFF,     /* --diff A B */
    MS_VIEW_TIMELINE, /* --timeline[=N] */
    MS_VIEW_OWN,      /* a view of the subcommand's own (inspect --stats, report --info) */
};

/* One destination beside the text view. */
struct ms_view_output {
    FILE *file;       /* NULL: not asked for */
    const char *name; /* for messages */
    int only;         /* '-': this goes to stdout instead of the text */
};

struct ms_views {
    /* Set by the subcommand before parsing. */
    const char *cmd;          /* the subcommand, for usage errors ("inspect") */
    const char *source;       /* what the history was read from, for messages ("store", "trace") */
    int gdb_points;           /* --at also takes GDB's POINT spellings (end, peak, mark:, event:, time:) */
    int plus_times;           /* a TIME may start with '+' (report has always taken it) */

    /* Filled by ms_views_next. */
    enum ms_view view;        /* what to show */
    int points;               /* how many --at... options were given */
    int views;                /* how many view options were given */
    int grouped;              /* --group-by was given (else --diff groups by label) */
    struct memscope_point at; /* the snapshot's point; MEMSCOPE_AT_END by default */
    struct memscope_point diff_a, diff_b; /* --diff A B */
    unsigned buckets;         /* --timeline=N (default 60) */
    uint64_t block_addr;      /* --block ADDR */
    uint64_t stack_id;        /* --stack ID */
    const char *json_path;    /* --json FILE, or NULL */
    const char *folded_path;  /* --folded FILE, or NULL */
    struct memscope_render_options render; /* --top, --group-by, --by, --sort, --exact (and the symbolizer) */
    const char *alloc_fns[MS_MAX_ALLOC_FNS + 1]; /* --alloc-fn NAME...: the program's allocation wrappers, NULL-ended */

    /* Filled by ms_views_open_outputs. */
    struct ms_view_output json, folded; /* opened destinations */
    int text;                 /* print the text view (no output took stdout) */
};

/*
 * Resets v to the defaults (at the end, 60 buckets, the snapshot) for
 * subcommand cmd reading from source, and readies getopt (optind = 1,
 * opterr = 0) for ms_views_next.
 */
void ms_views_init(struct ms_views *v, const char *cmd, const char *source);

/*
 * Reads argv with getopt_long and long_options, taking the shared options
 * into v, and returns the next option that is not one of them (the
 * subcommand's own, or 'h') for the caller to handle. Returns -1 when the
 * options are over (*status 0; optind is at the first operand) or wrong,
 * including more than one --at... (*status is the exit status,
 * MS_EXIT_USAGE, and the message printed).
 */
int ms_views_next(struct ms_views *v, int argc, char **argv, const struct option *long_options, int *status);

/*
 * Takes the one operand after the options (what: "core file"; metavar:
 * "CORE", for the usage message) into *operand. Returns 0, or MS_EXIT_USAGE
 * (message printed) when there is none or more than one.
 */
int ms_views_operand(const struct ms_views *v, int argc, char **argv, const char *what, const char *metavar,
                     const char **operand);

/*
 * Opens the --json and --folded destinations ('-': stdout, only one of them)
 * and decides whether the text view is printed. Returns 0, or an exit status
 * (message printed). Close with ms_views_close_outputs.
 */
int ms_views_open_outputs(struct ms_views *v);

/* Closes the destinations (not stdout). Returns 0, or -errno (message printed; a write error shows here). */
int ms_views_close_outputs(struct ms_views *v);

/*
 * Renders the snapshot at v->at (or, for MS_VIEW_BLOCK and MS_VIEW_STACK,
 * the block or stack in it) to the chosen destinations. Returns 0, or prints
 * why it failed and returns a negative errno.
 */
int ms_views_show_snapshot(const struct memscope_history *h, struct ms_views *v);

/*
 * Renders v->view from h: a snapshot, block, stack, diff (grouped by label
 * unless --group-by said otherwise, as memscope-diff) or timeline. Not for
 * MS_VIEW_OWN. Returns 0, or prints why it failed and returns a negative errno.
 */
int ms_views_show(const struct memscope_history *h, struct ms_views *v);

#endif /* MS_VIEWS_H */
