/*
 * process.c - the runtime across fork and exec.
 *
 * fork: the child gets a copy of the whole store (its history is the
 * parent's up to the fork) and of the forking thread's TLS, so it simply goes
 * on appending to its copy of that thread's chunk. Nothing is locked, so
 * nothing needs resetting; the child only writes its own pid into the root,
 * and its pid and thread id into that chunk (the writer of a chunk whose
 * pid is another process's is gone: store.c, ms_chunk_writer_gone). No fold
 * is half-published at the instant of fork (fold.c, ms_fold_before_fork).
 *
 * exec: at init, libmemscope is removed from LD_PRELOAD in the environment
 * (in place: no allocation), so programs this one execs are not recorded,
 * unless MEMSCOPE_FOLLOW_EXEC=1.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

pid_t ms_init_pid;

static void after_fork_child(void)
{
    struct memscope_chunk *c = ms_self.chunk;
    uint32_t pid = (uint32_t)syscall(SYS_getpid);

    __atomic_store_n(&memscope_store_root.pid, pid, __ATOMIC_RELAXED);
    ms_fold_after_fork_child();
    /* The chunk this thread goes on appending to is now written by the child's thread:
     * say so, or the folder would take it for a chunk whose writer is gone (ms_chunk_writer_gone). */
    if (c) {
        __atomic_store_n(&c->tid, (uint32_t)syscall(SYS_gettid), __ATOMIC_RELAXED);
        __atomic_store_n(&c->pid, pid, __ATOMIC_RELEASE);
    }
}

/* Does this LD_PRELOAD entry name libmemscope (libmemscope.so, libmemscope.so.0, ...)? */
static int is_memscope(const char *entry, size_t len)
{
    static const char base[] = "libmemscope.";
    size_t start = len;

    while (start > 0 && entry[start - 1] != '/')
        start--;
    return len - start >= sizeof(base) - 1 && memcmp(entry + start, base, sizeof(base) - 1) == 0;
}

void ms_strip_preload(char *value)
{
    char *in = value, *out = value;

    /* Entries are separated by ':' or blanks; keep the others, in order, ':'-joined. */
    while (*in) {
        while (*in == ':' || *in == ' ' || *in == '\t')
            in++;
        char *start = in;
        while (*in && *in != ':' && *in != ' ' && *in != '\t')
            in++;
        size_t len = (size_t)(in - start);
        if (len == 0 || is_memscope(start, len))
            continue;
        if (out != value)
            *out++ = ':';
        memmove(out, start, len);
        out += len;
    }
    *out = '\0';
}

void ms_process_init(void)
{
    ms_init_pid = (pid_t)syscall(SYS_getpid);
    pthread_atfork(ms_fold_before_fork, ms_fold_after_fork_parent, after_fork_child);
    if (!ms_config.follow_exec) {
        char *preload = getenv("LD_PRELOAD");
        if (preload)
            ms_strip_preload(preload);
    }
}
