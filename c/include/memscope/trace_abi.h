/*
 * trace_abi.h - the memscope trace file format: a store's whole event
 * history on disk, written while the program runs (MEMSCOPE_TRACE=FILE, by
 * the runtime's background writer) or from a history the engine read
 * (memscope_history_write_trace: GDB's memscope-save), and read by the
 * engine (memscope_trace_open: `memscope report FILE`).
 *
 * This header is the specification of the format. Fixed-width fields,
 * little-endian. A file is
 *
 *   [struct memscope_trace_header]                      64 bytes, once
 *   [struct memscope_trace_block][payload] ...          32 bytes + stored_size, repeated
 *
 * Each block is self-checking: its header carries a CRC-32C of itself and
 * one of its stored payload, and a sequence number (0, 1, 2, ... in file
 * order). A writer appends whole blocks with one write(2) each, so a process
 * killed at any instant leaves every block it finished readable; at most the
 * last block is cut short. A reader accepts a file that ends inside a block
 * (it reports the cut and uses what came before), skips a block whose
 * payload checksum fails (reporting it), and stops at a block header that
 * fails its checksum (nothing after it can be located safely).
 *
 * Payloads are compressed per block with zstd (MEMSCOPE_TRACE_CODEC_ZSTD) or
 * stored as they are (MEMSCOPE_TRACE_CODEC_NONE). The uncompressed payload
 * of an EVENTS block is delta-encoded first (see below), which is what
 * brings a 32-byte store record down to a few bytes.
 *
 * The format is independent of the store ABI: a reader rebuilds the store's
 * content (records with their raw clock readings, text entries, clock
 * calibration, counters, the checkpoint of a folded store) from it,
 * whatever store version wrote it.
 *
 * A history that was folded (store_abi.h, struct memscope_checkpoint) holds
 * only the events after its checkpoint; written as a trace, it carries the
 * checkpoint too: one CHECKPOINT block and its CHECKPOINT_BLOCKS, before any
 * EVENTS block. Each thread's EVENTS then start right after the thread's
 * cut (first_index 0 is its first record not folded).
 *
 * Any change to a layout below changes MEMSCOPE_TRACE_VERSION; a reader that
 * meets a version it does not know refuses the file and says so. A reader
 * skips (with a warning) a block type it does not know, so a new block type
 * that changes what the other blocks mean also changes the version: version
 * 2 added CHECKPOINT and CHECKPOINT_BLOCKS, without which a version 1 reader
 * would replay a folded history's events from an empty heap. Version 3
 * gave the CHECKPOINT's thread entries the exited threads' entry (serial 0,
 * `merged` threads, store_abi.h ABI 6): a version 2 reader would take it for
 * damage and replay without the checkpoint. A reader reads every older
 * version (1: the same layout, no checkpoint; 2: no merged entry).
 */
#ifndef MEMSCOPE_TRACE_ABI_H
#define MEMSCOPE_TRACE_ABI_H

#include <stdint.h>

/* 16 bytes: "memscope-trace" then 0x00 0x01. */
#define MEMSCOPE_TRACE_MAGIC "memscope-trace\0\x01"
#define MEMSCOPE_TRACE_MAGIC_SIZE 16
#define MEMSCOPE_TRACE_VERSION 3u        /* what writers write; 2: CHECKPOINT and CHECKPOINT_BLOCKS blocks; 3: a CHECKPOINT's exited threads' entry (serial 0, ck_thread.merged) */
#define MEMSCOPE_TRACE_VERSION_OLDEST 1u /* the oldest version a reader of this header reads */

/* memscope_trace_header.flags */
#define MEMSCOPE_TRACE_CLOCK_TSC 0x1u /* record times are TSC ticks (convert with the calibration in STATE), else ns */

/* memscope_trace_block.codec */
#define MEMSCOPE_TRACE_CODEC_NONE 0u /* payload stored as is: stored_size == raw_size */
#define MEMSCOPE_TRACE_CODEC_ZSTD 1u /* payload is one zstd frame that decompresses to raw_size bytes */

#define MEMSCOPE_TRACE_BLOCK_MAGIC 0x42547363u /* "csTB" read as bytes c s T B: 63 73 54 42 */
#define MEMSCOPE_TRACE_MAX_RAW (64u << 20)     /* largest raw_size or stored_size a reader accepts (64 MiB) */
#define MEMSCOPE_TRACE_MAX_EVENTS (1u << 20)   /* most records in one EVENTS block */

/* The file header, at offset 0. */
struct memscope_trace_header {
    uint8_t magic[16];           /* MEMSCOPE_TRACE_MAGIC */
    uint32_t version;            /* MEMSCOPE_TRACE_VERSION */
    uint32_t header_size;        /* sizeof(struct memscope_trace_header) (64); blocks start at this offset */
    uint32_t flags;              /* MEMSCOPE_TRACE_CLOCK_TSC when record times are TSC ticks */
    uint32_t pid;                /* process id of the recorded process */
    uint64_t clock_origin_ticks; /* clock reading when recording began: time zero (as store root.clock_origin_ticks) */
    uint64_t clock_origin_ns;    /* CLOCK_MONOTONIC ns at the same instant */
    uint32_t block_size_hint;    /* records per EVENTS block the writer aims at (informative) */
    uint32_t reserved[2];        /* zero */
    uint32_t header_crc;         /* CRC-32C (Castagnoli, reflected, init and final xor 0xffffffff) of the 60 bytes before */
};

/* Block kinds (memscope_trace_block.type). A reader skips kinds it does not know, saying so. */
enum memscope_trace_block_type {
    MEMSCOPE_TRACE_EVENTS = 1, /* records of one thread: struct memscope_trace_events then the encoded columns */
    MEMSCOPE_TRACE_TEXTS = 2,  /* text entries (label and mark strings): struct memscope_trace_text entries */
    MEMSCOPE_TRACE_STATE = 3,  /* counters and clock calibration: struct memscope_trace_state; the last one wins */
    MEMSCOPE_TRACE_STACKS = 4, /* call stacks: struct memscope_trace_stacks then its entries */
    MEMSCOPE_TRACE_CHECKPOINT = 5,        /* (version 2) a folded history's checkpoint: struct memscope_trace_checkpoint, threads, marks */
    MEMSCOPE_TRACE_CHECKPOINT_BLOCKS = 6, /* (version 2) its live blocks: struct memscope_trace_ck_blocks then the entries */
    MEMSCOPE_TRACE_MODULES = 7,           /* (version 2) the process's file mappings, for symbolizing: struct memscope_trace_modules then entries */
};

/* Every block starts with this header, 8-byte aligned in the file. */
struct memscope_trace_block {
    uint32_t magic;       /* MEMSCOPE_TRACE_BLOCK_MAGIC */
    uint16_t type;        /* enum memscope_trace_block_type */
    uint16_t codec;       /* MEMSCOPE_TRACE_CODEC_* */
    uint32_t stored_size; /* payload bytes following this header (then zero padding to a multiple of 8) */
    uint32_t raw_size;    /* payload bytes once decoded (<= MEMSCOPE_TRACE_MAX_RAW) */
    uint64_t sequence;    /* this block's number in the file, from 0: a gap means a block went missing */
    uint32_t payload_crc; /* CRC-32C of the stored_size payload bytes as stored */
    uint32_t header_crc;  /* CRC-32C of the 28 bytes before */
};

/*
 * EVENTS payload (raw, i.e. after decompression):
 *
 *   struct memscope_trace_events
 *   kinds:   count bytes, the record kinds (store_abi.h enum memscope_record_kind)
 *   then count varints for each column in turn:
 *   times:   zigzag(time[i] - time[i-1]), time[-1] = first_time
 *   address: zigzag(address[i] - address[i-1]) (wrapping 64-bit difference), address[-1] = 0
 *   size:    size[i] (ALLOC, REALLOC_ALLOC: bytes; LABEL, MARK: address of the text entry, see TEXTS; else 0)
 *   stack:   stack[i] (call stack id, 0 = none)
 *
 * A varint is LEB128: 7 bits per byte, least significant first, high bit
 * set on every byte but the last, at most 10 bytes. zigzag(d) = (d << 1) ^
 * (d >> 63) (arithmetic shift). The payload holds exactly these bytes: a
 * reader treats anything short or left over as damage.
 *
 * A thread's records are split into blocks in the order the thread wrote
 * them; first_index says where a block starts in that sequence, so a reader
 * detects a block that went missing or came twice.
 */
struct memscope_trace_events {
    uint32_t thread;      /* thread serial (store_abi.h: 1-based), 1..0xffffff */
    uint32_t tid;         /* OS thread id of the thread */
    uint32_t count;       /* records in this block, 1..MEMSCOPE_TRACE_MAX_EVENTS */
    uint32_t reserved;    /* zero */
    uint64_t first_index; /* records of this thread in the blocks before this one */
    uint64_t first_time;  /* base of the time deltas: the time of the thread's previous record, or 0 */
};

/*
 * TEXTS payload: entries one after the other, each this header, then `bytes`
 * payload bytes (`strings` NUL-terminated strings, as store_abi.h struct
 * memscope_text), then zero padding to a multiple of 8. The address is the
 * one LABEL and MARK records name in their size field. A text is written
 * before the first EVENTS block whose records name it.
 */
struct memscope_trace_text {
    uint64_t address; /* the entry's address in the recorded process (non-zero, 8-byte aligned) */
    uint32_t bytes;   /* payload bytes, every NUL included; 1..MEMSCOPE_TEXT_MAX (store_abi.h) */
    uint32_t strings; /* NUL-terminated strings in the payload: 2 for a label, 1 for a mark */
};

/*
 * STACKS payload: this header, then `count` entries, each a struct
 * memscope_trace_stack followed by `depth` uint64_t return addresses
 * (innermost first, as in the store's stack table, store_abi.h). A stack
 * is written before the first EVENTS block whose records name its id, and
 * each id once. The header's counters are the table's at the time of
 * writing (the last STACKS block's win).
 */
struct memscope_trace_stacks {
    uint32_t method;    /* store_abi.h enum memscope_stack_method of the capture */
    uint32_t max_depth; /* most frames per stack, 1..MEMSCOPE_STACK_MAX_DEPTH */
    uint64_t truncated; /* table.truncated: allocations recorded with a caller-only stack */
    uint64_t lost;      /* table.lost: allocations recorded with stack 0 */
    uint32_t count;     /* entries that follow */
    uint32_t reserved;  /* zero */
};

struct memscope_trace_stack {
    uint32_t id;    /* stack id as records name it, 1.. */
    uint32_t depth; /* frames that follow, 1..max_depth */
};

/*
 * CHECKPOINT payload: this header, then thread_count struct
 * memscope_trace_ck_thread (ascending serial), then mark_count struct
 * memscope_trace_ck_mark (oldest first). The checkpoint's live blocks
 * follow in CHECKPOINT_BLOCKS blocks (pieces of up to
 * MEMSCOPE_TRACE_MAX_CK_BLOCKS entries, in order: first_block of each is the
 * count of those before it; together they hold block_count). Fields mean
 * what those of store_abi.h struct memscope_checkpoint (and its thread,
 * block and mark entries) mean, with two differences: times are in the
 * trace's record clock (as EVENTS times: ns since recording began for a
 * trace GDB saved), labels and mark names are addresses of TEXTS entries;
 * and there is no per-thread cut (a thread's EVENTS start at its cut).
 *
 * At most one CHECKPOINT per file, written after the TEXTS and STACKS its
 * entries name and before every EVENTS block. A reader that cannot read the
 * checkpoint whole (a block damaged or missing, pieces out of order, a
 * second CHECKPOINT) reads the events without it and says so, or refuses
 * the file with MEMSCOPE_TRACE_STRICT; a checkpoint that reads whole but
 * does not add up is refused as the store reader refuses a damaged one.
 */
#define MEMSCOPE_TRACE_MAX_CK_BLOCKS 1000000u /* most entries in one CHECKPOINT_BLOCKS block (40 MB) */

struct memscope_trace_checkpoint {
    uint64_t horizon;                 /* record time of the horizon: points before it were folded away */
    uint64_t folded_events;           /* records folded, all folds together (event numbers count them) */
    uint64_t generation;              /* folds made */
    uint64_t total_allocations;       /* figures over the folded records, as store_abi.h struct memscope_checkpoint */
    uint64_t total_deallocations;
    uint64_t total_allocated;
    uint64_t total_deallocated;
    uint64_t current_memory;          /* live bytes at the cut: the sum of the blocks' sizes */
    uint64_t peak_memory;
    uint64_t peak_time;               /* record time of peak_memory (0 when it is 0) */
    uint64_t unmatched_deallocations;
    uint64_t reallocations;
    uint64_t overlapping_allocations;
    uint64_t block_count;             /* live blocks, in the CHECKPOINT_BLOCKS blocks */
    uint64_t marks_dropped;           /* folded marks the checkpoint did not keep */
    uint32_t thread_count;            /* thread entries that follow, at most 0xffffff */
    uint32_t mark_count;              /* mark entries after them, at most store_abi.h MEMSCOPE_CHECKPOINT_MAX_MARKS */
};

/* A thread that recorded a folded record: its figures at the cut (store_abi.h struct memscope_checkpoint_thread). */
struct memscope_trace_ck_thread {
    uint32_t thread;          /* thread serial, 1..0xffffff; 0 (version 3, the first entry only): the exited threads' entry */
    uint32_t tid;             /* OS thread id */
    uint32_t flags;           /* store_abi.h MEMSCOPE_CHECKPOINT_STASH or 0 */
    uint32_t stash_thread;    /* STASH: serial of the thread that allocated the released block */
    uint64_t allocations;
    uint64_t deallocations;
    uint64_t allocated_bytes;
    uint64_t released_bytes;
    uint64_t current_memory;
    uint64_t live_blocks;
    uint64_t peak_memory;
    uint64_t peak_time;       /* record time */
    uint64_t stash_address;   /* STASH: the released block (0: it was not live), its bytes, allocation time, label */
    uint64_t stash_size;
    uint64_t stash_time;
    uint64_t stash_label;     /* TEXTS entry address, 0 none */
    uint32_t stash_stack;     /* STASH: its call stack id, 0 none */
    uint32_t merged;          /* (version 3; zero before) the exited threads' entry: threads it holds; 0 elsewhere */
};

/* A folded mark (store_abi.h struct memscope_checkpoint_mark). */
struct memscope_trace_ck_mark {
    uint64_t time;       /* record time */
    uint64_t text;       /* TEXTS entry address of its name (1 string), 0 unreadable */
    uint64_t events;     /* its event number, folded events counted */
    uint64_t live_bytes; /* live bytes right after it */
};

/* CHECKPOINT_BLOCKS payload: this header, then count entries. */
struct memscope_trace_ck_blocks {
    uint64_t first_block; /* entries in the CHECKPOINT_BLOCKS blocks before this one */
    uint32_t count;       /* entries that follow, 1..MEMSCOPE_TRACE_MAX_CK_BLOCKS */
    uint32_t reserved;    /* zero */
};

/* A block live at the cut (store_abi.h struct memscope_checkpoint_block). */
struct memscope_trace_ck_block {
    uint64_t address; /* never 0 */
    uint64_t size;    /* bytes */
    uint64_t time;    /* record time of its allocation */
    uint64_t label;   /* TEXTS entry address of its label (2 strings), 0 none */
    uint32_t thread;  /* allocating thread serial (listed in the thread entries) */
    uint32_t stack;   /* call stack id, 0 none */
};

/*
 * MODULES payload: this header, then `count` entries, each a struct
 * memscope_trace_module followed by its path (path_len bytes, no NUL) and
 * zero padding to a multiple of 8. The entries are the process's file
 * mappings when the block was written (as /proc/PID/maps lists them, by
 * address), with the GNU build-id of each ELF file mapped at offset 0 as
 * the process had it in memory, so a reader can name return addresses
 * (function, file:line, library) from the files on disk long after the
 * process is gone, and refuse a file rebuilt since. Written once at the
 * start and again whenever the process loads or unloads a shared object; a
 * reader takes every block's entries, a later entry replacing the earlier
 * ones it overlaps (a library unloaded and another mapped at its address).
 * `memscope run`'s exit image carries the same payload in a file beside it.
 */
#define MEMSCOPE_TRACE_MODULES_TRUNCATED 0x1u /* the writer had no room for every mapping */
#define MEMSCOPE_TRACE_BUILD_ID_MAX 20u       /* bytes of a build-id kept (a SHA-1 build-id's length) */
#define MEMSCOPE_TRACE_PATH_MAX 4096u         /* most bytes of a path */

struct memscope_trace_modules {
    uint32_t count; /* entries that follow */
    uint32_t flags; /* MEMSCOPE_TRACE_MODULES_TRUNCATED */
};

struct memscope_trace_module {
    uint64_t start;        /* first address of the mapping */
    uint64_t end;          /* past its last address (> start) */
    uint64_t offset;       /* file offset of start */
    uint8_t build_id[MEMSCOPE_TRACE_BUILD_ID_MAX]; /* the file's GNU build-id (first build_id_len bytes) */
    uint8_t build_id_len;  /* 0: unknown (not the ELF header's mapping, or no build-id note) */
    uint8_t reserved;      /* zero */
    uint16_t path_len;     /* bytes of path that follow, 1..MEMSCOPE_TRACE_PATH_MAX */
};

/* STATE payload; flags */
#define MEMSCOPE_TRACE_STATE_FINAL 0x1u /* written at the end of recording: the trace is complete */

struct memscope_trace_state {
    uint64_t events_dropped;    /* store root.events_dropped at that moment */
    uint64_t budget_bytes;      /* root.budget_bytes */
    uint64_t chunk_bytes;       /* root.chunk_bytes */
    uint64_t events_written;    /* records in the EVENTS blocks written so far (all threads) */
    uint64_t clock_calib_ticks; /* a clock reading after the origin, for the tick rate (as root.clock_calib_ticks); 0: none */
    uint64_t clock_calib_ns;    /* CLOCK_MONOTONIC ns at clock_calib_ticks */
    uint32_t flags;             /* MEMSCOPE_TRACE_STATE_FINAL */
    uint32_t reserved;          /* zero */
};

#endif /* MEMSCOPE_TRACE_ABI_H */
