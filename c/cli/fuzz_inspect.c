/*
 * fuzz_inspect.c - the fuzz target of `memscope inspect`'s core and store
 * reader: the input is a core file. It is opened from memory (no other file
 * is ever read), the store is looked for (symbol files are off, so by magic
 * scan) and, when the engine accepts it, every view inspect prints is
 * rendered: snapshot text with the symbolizer, JSON, folded stacks, the
 * block report of a live block, the peak, a diff and a timeline.
 *
 * Built with libFuzzer (clang -fsanitize=fuzzer,address,undefined) when
 * MEMSCOPE_FUZZ is on (scripts/fuzz-inspect.sh), and with fuzz_regress.c
 * as a plain program that replays the kept corpus in the test suite.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core.h"
#include "memscope/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int first_block(const struct memscope_allocation *block, void *arg)
{
    *(uint64_t *)arg = block->address;
    return 1; /* stop at the first */
}

static void render_all(struct ms_core *core, struct memscope_history *h)
{
    struct memscope_render_options opts;
    struct ms_symbolizer *sym = NULL;
    struct memscope_snapshot *s = NULL;
    struct memscope_point peak = {.kind = MEMSCOPE_AT_PEAK};
    struct memscope_point start = {.kind = MEMSCOPE_AT_EVENT, .value = 0};
    struct memscope_timeline *t = NULL;
    struct memscope_diff *d = NULL;
    uint64_t first = 0x1000;
    char *text = NULL;
    size_t len = 0;

    memset(&opts, 0, sizeof(opts));
    if (ms_symbolizer_new(core, &sym) == 0)
        opts.symbolizer = ms_symbolizer_engine(sym);
    if (memscope_history_snapshot(h, NULL, &s) == 0) {
        if (memscope_snapshot_render_text(s, &opts, &text, &len) == 0)
            memscope_text_free(text);
        opts.group_by = MEMSCOPE_GROUP_SITE;
        if (memscope_snapshot_render_text(s, &opts, &text, &len) == 0)
            memscope_text_free(text);
        opts.group_by = MEMSCOPE_GROUP_NONE;
        if (memscope_snapshot_render_json(s, &opts, &text, &len) == 0)
            memscope_text_free(text);
        if (memscope_snapshot_render_folded(s, &opts, &text, &len) == 0)
            memscope_text_free(text);
        if (memscope_snapshot_render_stack(s, 1, &opts, &text, &len) == 0)
            memscope_text_free(text);
        memscope_snapshot_foreach(s, first_block, &first);
        if (memscope_history_render_block(h, s, first, &opts, &text, &len) == 0)
            memscope_text_free(text);
        memscope_snapshot_free(s);
    }
    if (memscope_history_snapshot(h, &peak, &s) == 0)
        memscope_snapshot_free(s);
    if (memscope_history_diff(h, &start, NULL, &d, NULL) == 0) {
        if (memscope_diff_render_text(d, &opts, &text, &len) == 0)
            memscope_text_free(text);
        memscope_diff_free(d);
    }
    if (memscope_history_timeline(h, 16, &t) == 0) {
        if (memscope_timeline_render_text(t, NULL, &text, &len) == 0)
            memscope_text_free(text);
        memscope_timeline_free(t);
    }
    ms_symbolizer_free(sym);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ms_core_paths paths;
    struct ms_core_error err;
    struct ms_core *core = NULL;
    struct memscope_history *h = NULL;
    const char *how = NULL;

    memset(&paths, 0, sizeof(paths));
    paths.no_files = 1;
    if (ms_core_open_memory(data, size, "fuzz.core", &paths, &core, &err) != 0)
        return 0;
    if (ms_core_open_store(core, &h, &how, &err) == 0) {
        render_all(core, h);
        memscope_history_close(h);
    }
    ms_core_close(core);
    return 0;
}
