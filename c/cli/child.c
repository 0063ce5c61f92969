/*
 * child.c - runs the recorded program under libmemscope.so and waits for it.
 *
 * The child gets the library through LD_PRELOAD and the exit image path
 * through MEMSCOPE_EXIT_IMAGE; memscope itself is never preloaded (only the
 * child's environment is changed). While the child runs, memscope stays
 * alive to read its exit image, so signals meant to stop the program are
 * passed on to it rather than killing memscope.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "child.h"

extern char **environ;

#define LIBRARY_NAME "libmemscope.so"

int ms_find_library(char **out)
{
    const char *override = getenv("MEMSCOPE_LIBRARY");
    char exe[PATH_MAX];
    char candidate[PATH_MAX + sizeof("/../lib/" LIBRARY_NAME)];
    char *resolved = NULL;
    char *slash;
    ssize_t n;

    if (override != NULL && override[0] != '\0') {
        resolved = realpath(override, NULL);
        if (resolved == NULL) {
            ms_error("MEMSCOPE_LIBRARY names %s, which cannot be opened: %s", override, strerror(errno));
            return -ENOENT;
        }
    } else {
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n < 0) {
            ms_error("cannot find my own executable through /proc/self/exe (%s); set MEMSCOPE_LIBRARY to the path of "
                     LIBRARY_NAME,
                     strerror(errno));
            return -ENOENT;
        }
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash != NULL)
            *slash = '\0';
        snprintf(candidate, sizeof(candidate), "%s/../lib/" LIBRARY_NAME, exe);
        resolved = realpath(candidate, NULL);
        if (resolved == NULL) {
            ms_error("the recording library is not at %s; set MEMSCOPE_LIBRARY to the path of " LIBRARY_NAME,
                     candidate);
            return -ENOENT;
        }
    }
    if (access(resolved, R_OK) != 0) {
        ms_error("cannot read the recording library %s: %s", resolved, strerror(errno));
        free(resolved);
        return -EACCES;
    }
    /* The dynamic loader splits LD_PRELOAD on spaces and colons. */
    if (strpbrk(resolved, " :\t") != NULL) {
        ms_error("the recording library's path %s contains a space or a colon, which LD_PRELOAD cannot carry; "
                 "copy the library elsewhere and set MEMSCOPE_LIBRARY",
                 resolved);
        free(resolved);
        return -EINVAL;
    }
    *out = resolved;
    return 0;
}

/* Does the environment entry `entry` define `name`? */
static int env_is(const char *entry, const char *name)
{
    size_t len = strlen(name);
    return strncmp(entry, name, len) == 0 && entry[len] == '=';
}

/* malloc'd "name=value". */
static char *env_entry(const char *name, const char *value)
{
    size_t len = strlen(name) + 1 + strlen(value) + 1;
    char *entry = malloc(len);

    if (entry != NULL)
        snprintf(entry, len, "%s=%s", name, value);
    return entry;
}

void ms_env_free(char **env)
{
    size_t i;

    if (env == NULL)
        return;
    for (i = 0; env[i] != NULL; i++)
        free(env[i]);
    free(env);
}

char **ms_env_build(const char *library, const char *image_path, const char *budget)
{
    const char *old_preload = getenv("LD_PRELOAD");
    char *preload = NULL;
    char **env = NULL;
    size_t count = 0;
    size_t n = 0;
    size_t i;

    while (environ[count] != NULL)
        count++;
    env = calloc(count + 4, sizeof(*env));
    if (env == NULL)
        return NULL;
    for (i = 0; i < count; i++) {
        if (env_is(environ[i], "LD_PRELOAD") || env_is(environ[i], "MEMSCOPE_EXIT_IMAGE") ||
            (budget != NULL && env_is(environ[i], "MEMSCOPE_BUDGET")))
            continue;
        env[n] = strdup(environ[i]);
        if (env[n] == NULL)
            goto fail;
        n++;
    }
    if (old_preload != NULL && old_preload[0] != '\0') {
        size_t len = strlen(library) + 1 + strlen(old_preload) + 1;
        preload = malloc(len);
        if (preload == NULL)
            goto fail;
        snprintf(preload, len, "%s:%s", library, old_preload);
        env[n] = env_entry("LD_PRELOAD", preload);
        free(preload);
    } else {
        env[n] = env_entry("LD_PRELOAD", library);
    }
    if (env[n++] == NULL)
        goto fail;
    env[n] = env_entry("MEMSCOPE_EXIT_IMAGE", image_path);
    if (env[n++] == NULL)
        goto fail;
    if (budget != NULL) {
        env[n] = env_entry("MEMSCOPE_BUDGET", budget);
        if (env[n++] == NULL)
            goto fail;
    }
    env[n] = NULL;
    return env;
fail:
    ms_env_free(env);
    return NULL;
}

/* The signals passed on to the child. */
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP};
#define FORWARDED_COUNT (sizeof(forwarded) / sizeof(forwarded[0]))

static volatile pid_t child_pid; /* 0 until the child exists; read by the handler */

/*
 * Passes a signal on to the child. A signal the kernel sent on behalf of the
 * terminal (Ctrl-C, hang-up: si_code SI_KERNEL) went to the whole foreground
 * process group, the child included, so it is not sent a second time; one
 * sent by a process (kill, a supervisor, a test harness) is forwarded.
 */
static void forward_signal(int sig, siginfo_t *info, void *uctx)
{
    int saved_errno = errno;
    pid_t pid = child_pid;

    (void)uctx;
    if (pid > 0 && (info == NULL || info->si_code != SI_KERNEL))
        kill(pid, sig);
    errno = saved_errno;
}

int ms_spawn_and_wait(char *const argv[], char *const env[], struct ms_child_end *end)
{
    struct sigaction old_actions[FORWARDED_COUNT];
    int installed[FORWARDED_COUNT] = {0};
    sigset_t block, old_mask;
    posix_spawnattr_t attr;
    struct sigaction sa;
    pid_t pid = 0;
    int status = 0;
    int rc;
    size_t i;

    sigemptyset(&block);
    for (i = 0; i < FORWARDED_COUNT; i++)
        sigaddset(&block, forwarded[i]);
    sigprocmask(SIG_BLOCK, &block, &old_mask);

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = forward_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < FORWARDED_COUNT; i++) {
        struct sigaction cur;
        /* A signal this process ignores (nohup) stays ignored, and the child inherits that. */
        if (sigaction(forwarded[i], NULL, &cur) == 0 && cur.sa_handler == SIG_IGN)
            continue;
        if (sigaction(forwarded[i], &sa, &old_actions[i]) == 0)
            installed[i] = 1;
    }

    /* The child starts with the mask memscope had before blocking; caught signals reset to default at exec. */
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &old_mask);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    rc = posix_spawnp(&pid, argv[0], NULL, &attr, argv, env);
    posix_spawnattr_destroy(&attr);
    if (rc == 0)
        child_pid = pid;
    sigprocmask(SIG_SETMASK, &old_mask, NULL);

    if (rc != 0) {
        if (rc == ENOENT && strchr(argv[0], '/') == NULL)
            ms_error("%s: no such program in PATH", argv[0]);
        else if (rc == ENOENT)
            ms_error("%s: no such program", argv[0]);
        else
            ms_error("cannot run %s: %s", argv[0], strerror(rc));
        rc = -rc;
        goto out;
    }

    /*
     * Wait without reaping first: until the child is reaped its pid cannot be
     * reused, so the handler never signals a stranger. Then stop forwarding
     * (signals blocked while child_pid changes) and reap.
     */
    for (;;) {
        siginfo_t info;
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) == 0)
            break;
        if (errno != EINTR) {
            ms_error("lost track of %s (pid %d): %s", argv[0], (int)pid, strerror(errno));
            rc = -errno;
            goto out;
        }
    }
    sigprocmask(SIG_BLOCK, &block, NULL);
    child_pid = 0;
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    end->pid = (int)pid;
    if (WIFSIGNALED(status)) {
        end->signaled = 1;
        end->code = WTERMSIG(status);
    } else {
        end->signaled = 0;
        end->code = WEXITSTATUS(status);
    }
    rc = 0;
out:
    child_pid = 0;
    /* From here on these signals act on memscope itself again (it is only reading the image). */
    for (i = 0; i < FORWARDED_COUNT; i++) {
        if (installed[i])
            sigaction(forwarded[i], &old_actions[i], NULL);
    }
    return rc;
}
