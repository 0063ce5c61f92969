/*
 * fuzz.h - what the fuzz targets share (fuzz_inspect.c: cores, memscope
 * inspect; fuzz_trace.c: traces, memscope report): every view a front end
 * draws from a history, drawn once per input (fuzz_views.c). Private to
 * c/cli; built into the libFuzzer targets (MEMSCOPE_FUZZ) and into the plain
 * and sanitizer runners that replay the kept inputs in the test suite
 * (fuzz_regress.c).
 */
#ifndef MS_FUZZ_H
#define MS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "memscope/engine.h"

/* libFuzzer's entry point, defined by each target. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Replays h to every kind of point the views take (the end, the peak, a
 * time, an event, each end of a diff, the first and last marks, folded or
 * not) and renders what `memscope inspect` and `memscope report` print
 * there: snapshot text grouped every way, JSON, folded stacks, a stack, a
 * block's history, diffs, the timeline (text and JSON). sym names frames
 * (NULL: addresses only). Results are thrown away: only crashes, hangs,
 * leaks and sanitizer reports matter.
 */
void ms_fuzz_views(const struct memscope_history *h, const struct memscope_symbolizer *sym);

struct memscope_module;
struct ms_core;
struct ms_symbolizer;
/*
 * A symbolizer naming frames from a list of modules as `memscope run` and
 * `memscope report` do, but opening no file (a fuzz input must not reach
 * the disk). *core receives what it reads from. NULL when there is nothing
 * to name. The caller frees both (ms_symbolizer_free, ms_core_close).
 */
struct ms_symbolizer *ms_fuzz_symbolizer(const char *name, const struct memscope_module *mods, size_t nmods,
                                         struct ms_core **core);

#endif /* MS_FUZZ_H */
