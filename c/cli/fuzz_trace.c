/*
 * fuzz_trace.c - the fuzz target of `memscope report`'s trace reader: the
 * input is a trace file (trace_abi.h). It is read from memory
 * (ms_trace_open_memory: the block walk, zstd, the EVENTS, TEXTS, STACKS,
 * MODULES, STATE, CHECKPOINT and CHECKPOINT_BLOCKS decoders, the rebuilt
 * store and the store reader behind it) and, when the engine accepts it,
 * every view report prints is rendered (fuzz_views.c), frames named by a
 * symbolizer over the trace's MODULES that opens no file.
 *
 * Checksums. Every block carries a CRC-32C of its header and of its
 * payload, and the file header one of itself; a byte the fuzzer changes
 * almost always fails one of them, the block is skipped, and the decoders
 * behind the check never see the mutation. So before reading, the target
 * recomputes every checksum the reader will check, walking the blocks as
 * the reader does. This is done here rather than by a fuzzing-only build
 * flag that skips the reader's checks: the engine keeps one code path, and
 * an input kept in tests/fuzz/trace/crashes does the same in every build
 * (the plain and sanitizer replay runners of the test suite). Bit 1 of the
 * file header's reserved[0] (which readers ignore) leaves the blocks'
 * checksums as they are (the header's, which covers the bit, is always
 * repaired), so the paths of a failed check are fuzzed too; bit 0 opens the
 * trace with MEMSCOPE_TRACE_STRICT (`memscope report --strict`). To replay
 * a kept input with `memscope report`, repair its checksums first
 * (tests/fuzz/mkcorpus.py --fix-checksums IN OUT).
 *
 * Built with libFuzzer when MEMSCOPE_FUZZ is on (scripts/fuzz-inspect.sh
 * --target trace), and with fuzz_regress.c as a plain program that replays
 * the kept corpus in the test suite (trace_fuzz_regress). The corpus
 * (tests/fuzz/trace/corpus) is made by tests/fuzz/mkcorpus.py: real traces
 * and their uncompressed rewrites (codec NONE), which put the decoders'
 * bytes within the fuzzer's reach.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "fuzz.h"
#include "memscope/engine.h"
#include "memscope/trace.h"
#include "memscope/trace_abi.h"
#include "trace_codec.h"
#include "trace_read.h"

#define FUZZ_STRICT 0x1u        /* header reserved[0]: open with MEMSCOPE_TRACE_STRICT */
#define FUZZ_KEEP_CHECKSUMS 0x2u /* header reserved[0]: do not repair the blocks' checksums */

/* Recomputes the file header's checksum and (blocks) those of every block the reader's walk reaches (trace_read.c walk()). */
static void repair_checksums(uint8_t *d, size_t size, int blocks)
{
    struct memscope_trace_header fh;
    size_t off;

    if (size < sizeof(fh))
        return;
    memcpy(&fh, d, sizeof(fh));
    fh.header_crc = ms_crc32c(0, &fh, offsetof(struct memscope_trace_header, header_crc));
    memcpy(d, &fh, sizeof(fh));
    for (off = sizeof(fh); blocks && size - off >= sizeof(struct memscope_trace_block);) {
        struct memscope_trace_block b;
        size_t padded;

        memcpy(&b, d + off, sizeof(b));
        if (b.magic != MEMSCOPE_TRACE_BLOCK_MAGIC || b.stored_size > MEMSCOPE_TRACE_MAX_RAW ||
            b.raw_size > MEMSCOPE_TRACE_MAX_RAW)
            return; /* the reader stops here whatever the checksum */
        if (size - off - sizeof(b) >= b.stored_size)
            b.payload_crc = ms_crc32c(0, d + off + sizeof(b), b.stored_size);
        b.header_crc = ms_crc32c(0, &b, offsetof(struct memscope_trace_block, header_crc));
        memcpy(d + off, &b, sizeof(b));
        if (size - off - sizeof(b) < b.stored_size)
            return; /* cut short: the reader stops here */
        padded = ((size_t)b.stored_size + 7) & ~(size_t)7;
        off += sizeof(b) + (padded <= size - off - sizeof(b) ? padded : b.stored_size);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct memscope_trace_info info;
    struct memscope_error err;
    struct memscope_history *h = NULL;
    struct ms_core *core = NULL;
    struct ms_symbolizer *sym = NULL;
    const struct memscope_module *mods;
    uint32_t mode = 0;
    uint8_t *copy = malloc(size ? size : 1);
    size_t nmods = 0;

    if (!copy)
        return 0;
    memcpy(copy, data, size);
    if (size >= offsetof(struct memscope_trace_header, reserved) + 4)
        memcpy(&mode, copy + offsetof(struct memscope_trace_header, reserved), 4);
    repair_checksums(copy, size, !(mode & FUZZ_KEEP_CHECKSUMS));
    if (ms_trace_open_memory(copy, size, "fuzz.trace", (mode & FUZZ_STRICT) ? MEMSCOPE_TRACE_STRICT : 0, &h, &info,
                             &err) != 0)
        goto out;
    /* As `memscope report` names frames (ms_symbolizer_for_modules), but opening no file. */
    mods = memscope_modules_list(memscope_trace_modules(h), &nmods);
    sym = ms_fuzz_symbolizer("fuzz.trace", mods, nmods, &core);
    ms_fuzz_views(h, sym ? ms_symbolizer_engine(sym) : NULL);
out:
    ms_symbolizer_free(sym);
    ms_core_close(core);
    memscope_history_close(h);
    free(copy);
    return 0;
}
