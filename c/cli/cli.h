/*
 * cli.h - what the pieces of the memscope command share: the subcommand
 * table entry, exit statuses, error printing and option value parsing.
 *
 * Private to c/cli. Every subcommand is one cmd_<name>.c file exposing one
 * ms_cmd_<name>() entry point; main.c only dispatches.
 */
#ifndef MS_CLI_H
#define MS_CLI_H

#include <stdint.h>

#define MS_EXIT_FAILURE 1 /* bad input or a runtime failure */
#define MS_EXIT_USAGE 2   /* the command line itself is wrong */

/* One subcommand: `memscope NAME ...`. */
struct ms_command {
    const char *name;                       /* what the user types */
    const char *summary;                    /* one line for `memscope --help` */
    int (*run)(int argc, char **argv);      /* argv[0] is the subcommand name; returns the exit status */
};

/* The subcommands (main.c lists them). */
int ms_cmd_run(int argc, char **argv);
int ms_cmd_report(int argc, char **argv);
int ms_cmd_inspect(int argc, char **argv);

/* Prints "memscope: <message>\n" on stderr. */
void ms_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Prints "memscope: <message>" and a hint to try `memscope CMD --help` on
 * stderr, and returns MS_EXIT_USAGE (so callers can `return ms_usage_error(...)`).
 * cmd may be NULL for the top level.
 */
int ms_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a decimal unsigned integer (no sign, no suffix) into *out. Returns 0 or -EINVAL/-ERANGE. */
int ms_parse_uint(const char *text, uint64_t *out);

/*
 * Parses a byte size: a decimal number with an optional binary suffix
 * K, M, G or T (also KiB/KB, MiB/MB, ...; case-insensitive, 1K = 1024).
 * Returns 0 or -EINVAL/-ERANGE.
 */
int ms_parse_size(const char *text, uint64_t *out);

#define MS_MAX_ALLOC_FNS 32 /* --alloc-fn options at most */

/* The help line of --alloc-fn (inspect, report and run). */
#define MS_ALLOC_FN_HELP                                                                                               \
    "  --alloc-fn NAME    NAME is an allocation wrapper of the program (xmalloc...): hide it\n"                         \
    "                     like malloc, so its callers are the sites (repeatable)\n"

#endif /* MS_CLI_H */
