/*
 * main.c - the memscope command: global options and dispatch to one
 * subcommand (`memscope run ...`; later `inspect CORE`, `report TRACE`).
 *
 * Adding a subcommand is one cmd_<name>.c file and one row in `commands`.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "memscope/memscope.h"

static const struct ms_command commands[] = {
    {"run", "run a program and print its heap snapshot at exit", ms_cmd_run},
    {"report", "show the snapshot, diff or timeline a trace file recorded", ms_cmd_report},
    {"inspect", "show the heap a core file holds (snapshot, sites, diff, timeline)", ms_cmd_inspect},
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void print_help(FILE *out)
{
    size_t i;

    fputs("Usage: memscope [--help] [--version] COMMAND [ARGS...]\n"
          "\n"
          "memscope records every heap allocation of a C/C++ program and rebuilds\n"
          "exact snapshots of its heap.\n"
          "\n"
          "Commands:\n",
          out);
    for (i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "Options:\n"
          "  -h, --help     show this help and exit\n"
          "  -V, --version  show the version and exit\n"
          "\n"
          "Run 'memscope COMMAND --help' for a command's options.\n"
          "Exit status: that of the command; 1 on a runtime failure, 2 on a usage error.\n",
          out);
}

int main(int argc, char **argv)
{
    const char *name;
    size_t i;

    if (argc < 2)
        return ms_usage_error(NULL, "no command given");
    name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        print_help(stdout);
        return 0;
    }
    if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0) {
        printf("memscope %s\n", MEMSCOPE_VERSION_STRING);
        return 0;
    }
    if (name[0] == '-')
        return ms_usage_error(NULL, "unknown option '%s'", name);
    for (i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    return ms_usage_error(NULL, "unknown command '%s'", name);
}
