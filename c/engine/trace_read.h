/*
 * trace_read.h - reading a trace held in memory rather than in a file: what
 * memscope_trace_open (trace.h) does once it has mapped the file, for the
 * fuzz target of `memscope report` (c/cli/fuzz_trace.c), which has its
 * input in a buffer. Private to the engine and its tests.
 */
#ifndef MS_TRACE_READ_H
#define MS_TRACE_READ_H

#include <stddef.h>

#include "memscope/trace.h"

/*
 * As memscope_trace_open, over the len bytes at data (kept alive and
 * unchanged by the caller until it returns; the history does not refer to
 * them afterwards). name stands for the file in messages.
 */
int ms_trace_open_memory(const void *data, size_t len, const char *name, unsigned flags, struct memscope_history **out,
                         struct memscope_trace_info *info, struct memscope_error *err);

#endif /* MS_TRACE_READ_H */
