/*
 * format.h - formatting helpers shared by the text renderers (format.c).
 */
#ifndef MS_ENGINE_FORMAT_H
#define MS_ENGINE_FORMAT_H

#include <stdarg.h>

#include "internal.h"

#define MS_CELL 96     /* bytes per table cell, NUL included (longer text is cut) */
#define MS_MAX_COLS 12 /* most columns in a table */

/* A table of text cells rendered with aligned columns; row 0 is the heading. */
struct ms_table {
    char (*cells)[MS_CELL];      /* rows * ncols cells */
    size_t rows;                 /* rows set so far */
    size_t cap;                  /* rows allocated */
    unsigned ncols;              /* columns */
    int align_left[MS_MAX_COLS]; /* non-zero: left-aligned column (else right) */
};

int ms_table_init(struct ms_table *t, unsigned ncols, size_t rows); /* 0 or -1 (no memory) */
char *ms_table_cell(struct ms_table *t, size_t row, unsigned col);
void ms_table_set(struct ms_table *t, size_t row, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ms_table_render(const struct ms_table *t, struct ms_buf *b, const char *indent, int color);
void ms_table_free(struct ms_table *t);

/*
 * Starts a table of groups of blocks: ncols columns headed NAME, "blocks",
 * "bytes" (the caller heads any further ones), NAME left-aligned, room for
 * rows rows under the heading. 0 or -1 (no memory).
 */
int ms_group_table_init(struct ms_table *t, unsigned ncols, size_t rows, const char *name);

void ms_format_time_us(uint64_t ns, char *buf, size_t len); /* "1.234567 s" */

/*
 * Orders two groups of blocks (a table's rows) as --sort says: more blocks
 * first (count), the newest allocation first (time), then more bytes.
 * Returns <0, >0, or 0 when these figures tie (the caller breaks the tie).
 */
int ms_group_cmp(enum memscope_sort_by by, uint64_t xcount, uint64_t xnewest, uint64_t xbytes, uint64_t ycount,
                 uint64_t ynewest, uint64_t ybytes);

/* Size class of a block: 0 for 0-16 bytes, then one per power of two (17-32, 33-64, ...). */
unsigned ms_size_class(uint64_t size);

/* The range a size class stands for: "17-32 B", or "1.0 KiB - 2.0 KiB" from 1 KiB up. */
void ms_size_class_name(unsigned size_class, char *buf, size_t len);

/* "name (type)" with control characters escaped, cut to fit len. */
void ms_format_label(const char *name, const char *type, char *buf, size_t len);

#endif
