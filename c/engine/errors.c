/*
 * errors.c - error sentences: memscope_strerror for every code any memscope
 * call returns, and ms_error_set for the engine's detailed open errors.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

/* X-macro table (libuv style): code, sentence. */
#define MS_ERRNO_MAP(X)                                                                             \
    X(EINVAL, "invalid argument (NULL, unknown or freed handle, or bad option)")                    \
    X(ENOMEM, "out of memory")                                                                      \
    X(ENOENT, "not found (no store at that address, no such mark, block or file)")                  \
    X(EPROTO, "the store uses an ABI version this engine does not know")                             \
    X(EBADMSG, "the store or image is damaged")                                                     \
    X(EFAULT, "memory the store points to cannot be read")                                          \
    X(ERANGE, "the point lies past the end of the recorded history")                                \
    X(ENODATA, "the memscope runtime is not recording in this process")                             \
    X(ENOSPC, "the store's memory budget is reached")                                               \
    X(EIO, "input/output error")                                                                    \
    X(EACCES, "permission denied")                                                                  \
    X(ENOSYS, "not supported by this version")

MS_API const char *memscope_strerror(int err)
{
    if (err == 0)
        return "success";
    if (err == INT_MIN)
        return "unknown error";
    if (err < 0)
        err = -err; /* either sign: -EINVAL and EINVAL give the same sentence */
    switch (err) {
#define MS_ERR_CASE(code, text) \
    case code:                  \
        return text;
        MS_ERRNO_MAP(MS_ERR_CASE)
#undef MS_ERR_CASE
    default:
        return "unknown error";
    }
}

int ms_error_set(struct memscope_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return code;
}
