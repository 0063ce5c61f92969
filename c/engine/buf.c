/*
 * buf.c - a growable NUL-terminated text buffer for the renderers.
 *
 * An allocation failure latches: later appends do nothing and
 * ms_buf_finish reports -ENOMEM, so renderers need not check every call.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

void ms_buf_init(struct ms_buf *b)
{
    memset(b, 0, sizeof(*b));
}

static int reserve(struct ms_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (b->failed)
        return -1;
    if (__builtin_add_overflow(b->len, extra + 1, &need)) {
        b->failed = 1;
        return -1;
    }
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    p = ms_engine_realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void ms_buf_append(struct ms_buf *b, const char *s, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void ms_buf_puts(struct ms_buf *b, const char *s)
{
    ms_buf_append(b, s, strlen(s));
}

void ms_buf_pad(struct ms_buf *b, char c, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    memset(b->data + b->len, c, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void ms_buf_printf(struct ms_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n;

    if (b->failed)
        return;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        ms_buf_append(b, small, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int ms_buf_finish(struct ms_buf *b, char **out, size_t *len)
{
    if (!b->failed && !b->data)
        reserve(b, 0);
    if (b->failed) {
        ms_buf_release(b);
        return -ENOMEM;
    }
    b->data[b->len] = '\0';
    *out = b->data;
    if (len)
        *len = b->len;
    ms_buf_init(b);
    return 0;
}

void ms_buf_release(struct ms_buf *b)
{
    ms_engine_free(b->data);
    ms_buf_init(b);
}

MS_API void memscope_text_free(char *text)
{
    ms_engine_free(text);
}
