/*
 * report.h - turning a recorded store into what the user reads: open a
 * memory image, replay it with the engine, print the snapshot as text and/or
 * write it as JSON. Shared by every subcommand that shows a snapshot.
 */
#ifndef MS_REPORT_H
#define MS_REPORT_H

#include <stdio.h>

#include "cli.h"
#include "memscope/engine.h"

struct ms_report_options {
    struct memscope_render_options render; /* sections, top, grouping, exact bytes for the text */
    FILE *json_file;                       /* write the JSON here (opened by the caller, left open); NULL: no JSON */
    const char *json_name;                 /* how to name json_file in messages */
    int json_only;                         /* non-zero: no text (the JSON goes to stdout) */
    const char *title;                     /* a line printed above the text, or NULL */
    const char *alloc_fns[MS_MAX_ALLOC_FNS + 1]; /* --alloc-fn NAME...: the program's allocation wrappers, NULL-ended */
};

/*
 * Opens the --json destination before anything runs, so a bad path fails
 * early: "-" is stdout (and sets json_only). Returns 0, or prints why and
 * returns -errno. Close with ms_report_close_json.
 */
int ms_report_open_json(struct ms_report_options *options, const char *path);

/* Closes the JSON file (not stdout). Returns 0, or prints why and returns -errno (a write error shows here). */
int ms_report_close_json(struct ms_report_options *options);

/*
 * Prints the snapshot at the end of `history` as options say. Returns 0, or
 * prints why it failed and returns a negative errno.
 */
int ms_report_history(const struct memscope_history *history, const struct ms_report_options *options);

/*
 * Opens the exit image at path (what: how to name it in messages, e.g. "the
 * exit image of ./prog"), reads its store and reports it as
 * ms_report_history does. Returns 0, or prints why it failed and returns a
 * negative errno.
 */
int ms_report_image(const char *path, const char *what, const struct ms_report_options *options);

#endif /* MS_REPORT_H */
