/*
 * report.h - turning a recorded store into what the user reads: open a
 * memory image, replay it with the engine, print the snapshot as text and/or
 * write it as JSON. Shared by every subcommand that shows a snapshot.
 */
#ifndef MS_REPORT_H
#define MS_REPORT_H

#include "memscope/engine.h"

struct ms_report_options {
    struct memscope_render_options render; /* sections, top, grouping, exact bytes for the text */
    const char *json_path;                 /* write the JSON here; "-" means stdout (and no text); NULL: no JSON */
    const char *title;                     /* a line printed above the text, or NULL */
};

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
