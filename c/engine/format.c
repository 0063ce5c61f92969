/*
 * format.c - small formatting helpers shared by the renderers: human sizes,
 * times, point names, and a column-aligned text table.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "format.h"

void ms_format_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    unsigned u = 0;

    if (bytes < 1024) {
        snprintf(buf, len, "%" PRIu64 " B", bytes);
        return;
    }
    v /= 1024.0;
    /* Round first so 1048575 B prints as 1.0 MiB, not 1024.0 KiB. */
    while (v >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, len, "%.1f %s", v, units[u]);
}

void ms_format_time(uint64_t ns, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIu64 ".%03" PRIu64 " s", ns / 1000000000u, (ns / 1000000u) % 1000u);
}

void ms_format_time_us(uint64_t ns, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIu64 ".%06" PRIu64 " s", ns / 1000000000u, (ns / 1000u) % 1000000u);
}

const char *ms_point_kind_name(enum memscope_point_kind kind)
{
    switch (kind) {
    case MEMSCOPE_AT_END:
        return "end";
    case MEMSCOPE_AT_TIME:
        return "time";
    case MEMSCOPE_AT_EVENT:
        return "event";
    case MEMSCOPE_AT_MARK:
        return "mark";
    case MEMSCOPE_AT_PEAK:
        return "peak";
    }
    return "unknown";
}

/* ---- text table ---- */

int ms_table_init(struct ms_table *t, unsigned ncols, size_t rows)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    t->cells = ms_engine_calloc(rows * ncols, sizeof(*t->cells));
    t->cap = rows;
    return t->cells ? 0 : -1;
}

char *ms_table_cell(struct ms_table *t, size_t row, unsigned col)
{
    return t->cells[row * t->ncols + col];
}

void ms_table_set(struct ms_table *t, size_t row, unsigned col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(t->cells[row * t->ncols + col], MS_CELL, fmt, ap);
    va_end(ap);
    if (row >= t->rows)
        t->rows = row + 1;
}

void ms_table_render(const struct ms_table *t, struct ms_buf *b, const char *indent, int color)
{
    size_t width[MS_MAX_COLS] = {0}, r;
    unsigned c;

    for (r = 0; r < t->rows; r++)
        for (c = 0; c < t->ncols; c++) {
            size_t w = strlen(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (r = 0; r < t->rows; r++) {
        size_t line_start = b->len;
        ms_buf_puts(b, indent);
        if (r == 0 && color)
            ms_buf_puts(b, "\033[1m");
        for (c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            size_t w = strlen(cell);
            if (c > 0)
                ms_buf_puts(b, "  ");
            if (t->align_left[c]) {
                ms_buf_puts(b, cell);
                if (c + 1 < t->ncols)
                    ms_buf_pad(b, ' ', width[c] - w);
            } else {
                ms_buf_pad(b, ' ', width[c] - w);
                ms_buf_puts(b, cell);
            }
        }
        if (r == 0 && color)
            ms_buf_puts(b, "\033[0m");
        /* No trailing blanks. */
        while (!b->failed && b->len > line_start && b->data[b->len - 1] == ' ')
            b->data[--b->len] = '\0';
        ms_buf_puts(b, "\n");
    }
}

void ms_table_free(struct ms_table *t)
{
    ms_engine_free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* Appends s to buf[*pos..len) with control characters as C escapes. */
static void clean_append(char *buf, size_t len, size_t *pos, const char *s)
{
    for (; *s && *pos + 5 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            *pos += (size_t)snprintf(buf + *pos, len - *pos, "\\n");
        else if (c == '\t')
            *pos += (size_t)snprintf(buf + *pos, len - *pos, "\\t");
        else if (c < 0x20 || c == 0x7f)
            *pos += (size_t)snprintf(buf + *pos, len - *pos, "\\x%02x", c);
        else
            buf[(*pos)++] = (char)c;
    }
    buf[*pos] = '\0';
}

void ms_format_label(const char *name, const char *type, char *buf, size_t len)
{
    size_t pos = 0;

    buf[0] = '\0';
    if (len < 8)
        return;
    clean_append(buf, len, &pos, name);
    if (pos + 4 < len) {
        buf[pos++] = ' ';
        buf[pos++] = '(';
        buf[pos] = '\0';
        clean_append(buf, len - 1, &pos, type);
        buf[pos++] = ')';
        buf[pos] = '\0';
    }
}

unsigned ms_size_class(uint64_t size)
{
    unsigned c = 0;

    if (size <= 16)
        return 0;
    size--;
    while (size >= 16) {
        size >>= 1;
        c++;
    }
    return c;
}

void ms_size_class_name(unsigned size_class, char *buf, size_t len)
{
    char lo[32], hi[32];
    uint64_t upper = size_class >= 60 ? UINT64_MAX : (UINT64_C(16) << size_class);
    uint64_t lower = size_class == 0 ? 0 : (UINT64_C(16) << (size_class - 1)) + 1;

    if (upper < 1024) {
        snprintf(buf, len, "%" PRIu64 "-%" PRIu64 " B", lower, upper);
        return;
    }
    ms_format_size(lower, lo, sizeof(lo));
    ms_format_size(upper, hi, sizeof(hi));
    snprintf(buf, len, "%s - %s", lo, hi);
}

int ms_group_cmp(enum memscope_sort_by by, uint64_t xcount, uint64_t xnewest, uint64_t xbytes, uint64_t ycount,
                 uint64_t ynewest, uint64_t ybytes)
{
    if (by == MEMSCOPE_SORT_COUNT && xcount != ycount)
        return xcount > ycount ? -1 : 1;
    if (by == MEMSCOPE_SORT_TIME && xnewest != ynewest)
        return xnewest > ynewest ? -1 : 1;
    if (xbytes != ybytes)
        return xbytes > ybytes ? -1 : 1;
    return 0;
}

int ms_group_table_init(struct ms_table *t, unsigned ncols, size_t rows, const char *name)
{
    if (ms_table_init(t, ncols, rows + 1) != 0)
        return -1;
    t->align_left[0] = 1;
    ms_table_set(t, 0, 0, "%s", name);
    ms_table_set(t, 0, 1, "blocks");
    ms_table_set(t, 0, 2, "bytes");
    return 0;
}
