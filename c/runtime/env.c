/*
 * env.c - the runtime's configuration, read from the environment with
 * secure_getenv (so a set-uid program ignores it).
 *
 *   MEMSCOPE_BUDGET=SIZE             most bytes of store (chunks + texts); K, M, G suffixes; default 256M
 *   MEMSCOPE_EXIT_IMAGE=FILE         write the store to FILE at exit (store_abi.h image format)
 *   MEMSCOPE_EXIT_IMAGE_CHILDREN=1   forked children write FILE.PID too
 *   MEMSCOPE_TRACE=FILE              stream every event to FILE (trace.c reads it itself)
 *   MEMSCOPE_FOLLOW_EXEC=1           keep libmemscope in LD_PRELOAD for exec'd programs
 *   MEMSCOPE_STACK_METHOD=M          auto (default: fp walk, else libunwind), unwind, fp, caller or none (stacks.c)
 *   MEMSCOPE_STACK_DEPTH=N           frames per stack, default 16, at most 64; 0: caller only
 *   MEMSCOPE_STACK_BUDGET=SIZE       bytes of the stack table (its own slice, not in MEMSCOPE_BUDGET); default 8M
 *   (the three MEMSCOPE_STACK_* are handed to ms_stack_configure by the constructor, hooks.c)
 *
 * Read once, from the library constructor (after libc is initialised);
 * allocations made before that use the defaults.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

struct ms_config ms_config = {.budget = 256ull * 1024 * 1024};

int ms_parse_size(const char *text, uint64_t *out)
{
    uint64_t value = 0, unit = 1;
    const char *p = text;

    if (!text || *p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (value > (UINT64_MAX - 9) / 10)
            return -1;
        value = value * 10 + (uint64_t)(*p - '0');
    }
    switch (*p) {
    case 'k': case 'K': unit = 1ull << 10; p++; break;
    case 'm': case 'M': unit = 1ull << 20; p++; break;
    case 'g': case 'G': unit = 1ull << 30; p++; break;
    default: break;
    }
    if (unit > 1 && (*p == 'i' || *p == 'I') && (p[1] == 'B' || p[1] == 'b'))
        p += 2;  /* "64KiB" */
    else if (unit > 1 && (*p == 'B' || *p == 'b'))
        p++;     /* "64KB" (binary units all the same) */
    if (*p != '\0' || value > UINT64_MAX / unit)
        return -1;
    *out = value * unit;
    return 0;
}

static int flag(const char *name)
{
    const char *v = secure_getenv(name);
    return v && v[0] == '1' && v[1] == '\0';
}

void ms_env_read(void)
{
    const char *v;
    uint64_t size;

    v = secure_getenv("MEMSCOPE_BUDGET");
    if (v && ms_parse_size(v, &size) == 0)
        ms_config.budget = size;
    v = secure_getenv("MEMSCOPE_EXIT_IMAGE");
    if (v && *v && strlen(v) < sizeof(ms_config.exit_image))
        memcpy(ms_config.exit_image, v, strlen(v) + 1);
    ms_config.exit_image_children = flag("MEMSCOPE_EXIT_IMAGE_CHILDREN");
    ms_config.follow_exec = flag("MEMSCOPE_FOLLOW_EXEC");
}
