/*
 * child.h - running the recorded program: finding libmemscope.so, building
 * the child's environment, spawning it, forwarding signals, waiting.
 */
#ifndef MS_CHILD_H
#define MS_CHILD_H

/* How the child ended. */
struct ms_child_end {
    int signaled; /* non-zero: killed by signal `code`; zero: exited with status `code` */
    int code;     /* exit status (0-255) or signal number */
    int pid;      /* the child's process id */
};

/*
 * Finds the recording library: $MEMSCOPE_LIBRARY if set, else
 * <dir of this executable>/../lib/libmemscope.so. On success *out is a
 * malloc'd absolute path (free it) and 0 is returned; on failure a message
 * has been printed and -errno is returned.
 */
int ms_find_library(char **out);

/*
 * Returns a malloc'd NULL-terminated copy of environ for the child, with
 * LD_PRELOAD = library (prepended to any existing value), MEMSCOPE_EXIT_IMAGE
 * = image_path and, when budget is not NULL, MEMSCOPE_BUDGET = budget.
 * Release with ms_env_free. NULL when out of memory.
 */
char **ms_env_build(const char *library, const char *image_path, const char *budget);
void ms_env_free(char **env);

/*
 * Spawns argv[0] (searched in PATH when it has no '/') with argv and env,
 * forwards SIGINT, SIGTERM and SIGHUP sent to this process to the child, and
 * waits for it. Returns 0 and fills *end; or, when the program could not be
 * started, prints why and returns -errno. Not thread-safe (installs signal
 * handlers for the duration of the call).
 */
int ms_spawn_and_wait(char *const argv[], char *const env[], struct ms_child_end *end);

#endif /* MS_CHILD_H */
