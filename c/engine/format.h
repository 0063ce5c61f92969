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

void ms_format_time_us(uint64_t ns, char *buf, size_t len); /* "1.234567 s" */

/* "name (type)" with control characters escaped, cut to fit len. */
void ms_format_label(const char *name, const char *type, char *buf, size_t len);

#endif
