/*
 * fuzz_inspect.c - the fuzz target of `memscope inspect`'s core and store
 * reader: the input is a core file. It is opened from memory (no other file
 * is ever read), the store is looked for (symbol files are off, so by magic
 * scan) and, when the engine accepts it, every view inspect prints is
 * rendered (fuzz_views.c: snapshots at every kind of point, grouped every
 * way, with the symbolizer; JSON, folded stacks, a block's history, diffs,
 * the timeline).
 *
 * Built with libFuzzer (clang -fsanitize=fuzzer,address,undefined) when
 * MEMSCOPE_FUZZ is on (scripts/fuzz-inspect.sh), and with fuzz_regress.c
 * as a plain program that replays the kept corpus in the test suite. The
 * corpus (tests/fuzz/inspect/corpus) is made by tests/fuzz/mkcorpus.py.
 */
#include <string.h>

#include "core.h"
#include "fuzz.h"
#include "memscope/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ms_core_paths paths;
    struct ms_core_error err;
    struct ms_core *core = NULL;
    struct ms_symbolizer *sym = NULL;
    struct memscope_history *h = NULL;
    const char *how = NULL;

    memset(&paths, 0, sizeof(paths));
    paths.no_files = 1;
    if (ms_core_open_memory(data, size, "fuzz.core", &paths, &core, &err) != 0)
        return 0;
    if (ms_core_open_store(core, &h, &how, &err) == 0) {
        if (ms_symbolizer_new(core, &sym) == 0)
            ms_fuzz_views(h, ms_symbolizer_engine(sym));
        else
            ms_fuzz_views(h, NULL);
        ms_symbolizer_free(sym);
        memscope_history_close(h);
    }
    ms_core_close(core);
    return 0;
}
