/*
 * store_abi.h - the memscope event store format, as it lies in the memory of
 * a recorded process (and in a core of it, and in an exit image file).
 *
 * This header is the specification of the format. Every reader (the engine,
 * hence GDB, the CLI and the in-process API) and the one writer (the runtime)
 * compile against it. All fields are fixed width and little-endian; pointers
 * are stored as uint64_t addresses in the recorded process. A reader trusts
 * nothing in here: every count, pointer and length is checked against the
 * memory that actually exists before it is used.
 *
 * Layout in a few lines:
 *
 *   memscope_store_root (exported symbol MEMSCOPE_STORE_SYMBOL)
 *     .chunks  -> newest chunk -> .next -> older chunk -> ... -> 0
 *     .texts   -> newest text block -> .next -> ... -> 0
 *     .stacks  -> the stack table (one mapping: header, hash slots, entries, frames)
 *     .checkpoint -> the folded checkpoint (header, threads, live blocks, marks), 0 while nothing was folded
 *
 * Each chunk belongs to one thread and holds that thread's records in the
 * order it wrote them; a thread's chunks are chained by .thread_prev. Records
 * carry a timestamp from one clock shared by all CPUs, so a reader rebuilds
 * the global order by merging the per-thread sequences on time.
 *
 * Any change to a layout below changes MEMSCOPE_STORE_ABI_VERSION; a reader
 * that meets a version it does not know refuses the store and says so.
 */
#ifndef MEMSCOPE_STORE_ABI_H
#define MEMSCOPE_STORE_ABI_H

#include <stdint.h>

#define MEMSCOPE_STORE_ABI_VERSION 6u /* 2: reserved[0..5) became the peak_trap_* fields; 3: root.stacks and record.stack are live (the stack table); 4: root.checkpoint is live, reserved[0..2) became fold_seq and fold_wait_max_ns (bounded history); 5: the checkpoint keeps the folded marks (reserved0 became mark_size, reserved[0..3) mark_count, marks and marks_dropped); 6: exited threads' checkpoint entries are merged into one (checkpoint_thread.merged added at the end, serial 0 is the merged entry, flag MEMSCOPE_CHECKPOINT_GONE) */

/* The exported name of the root object (readers look it up by symbol first). */
#define MEMSCOPE_STORE_SYMBOL "memscope_store_root"

/* 16 bytes, no terminating NUL counted: "memscope-store" then 0x00 0x01. */
#define MEMSCOPE_STORE_MAGIC "memscope-store\0\x01"
#define MEMSCOPE_STORE_MAGIC_SIZE 16

#define MEMSCOPE_CHUNK_MAGIC UINT64_C(0x6b6e7568632d736d)      /* "ms-chunk" */
#define MEMSCOPE_TEXT_BLOCK_MAGIC UINT64_C(0x747865742d2d736d) /* "ms--text" */
#define MEMSCOPE_STACK_TABLE_MAGIC UINT64_C(0x6b636174732d736d) /* "ms-stack" */
#define MEMSCOPE_CHECKPOINT_MAGIC UINT64_C(0x74706b68632d736d)  /* "ms-chkpt" */

/* root.flags */
#define MEMSCOPE_STORE_CLOCK_TSC 0x1u /* record times are TSC ticks, else ns */

/*
 * The root object. One per process, in libmemscope's writable data, exported
 * under MEMSCOPE_STORE_SYMBOL. Fields marked (atomic) are updated with atomic
 * operations while the program runs; a reader of a live process or a core
 * may see any value they held, never a torn one.
 */
struct memscope_store_root {
    uint8_t magic[16];           /* MEMSCOPE_STORE_MAGIC; written last at init, so a half-made root never matches */
    uint32_t abi_version;        /* MEMSCOPE_STORE_ABI_VERSION */
    uint32_t root_size;          /* sizeof(struct memscope_store_root) */
    uint32_t record_size;        /* sizeof(struct memscope_record) */
    uint32_t chunk_header_size;  /* sizeof(struct memscope_chunk); records start at this offset in a chunk */
    uint32_t flags;              /* MEMSCOPE_STORE_CLOCK_TSC when times are TSC ticks */
    uint32_t pid;                /* process id of the process this store belongs to (updated in a fork child) */
    uint64_t chunks;             /* (atomic) address of the newest chunk, 0 if none; published with release order after the chunk header is complete */
    uint64_t chunk_count;        /* (atomic) chunks linked so far; a reader walks at most this many (+ a small slack for a racing link) */
    uint64_t chunk_bytes;        /* (atomic) bytes mapped for chunks, headers included; what the budget limits */
    uint64_t budget_bytes;       /* most chunk_bytes + text_bytes + the checkpoint may reach (MEMSCOPE_BUDGET); the oldest events are folded to stay within it */
    uint64_t events_dropped;     /* (atomic) events not recorded: budget reached, or no memory for a chunk */
    uint64_t texts;              /* (atomic) address of the newest text block, 0 if none */
    uint64_t text_bytes;         /* (atomic) bytes mapped for text blocks, headers included (counted in the budget too) */
    uint64_t threads_started;    /* (atomic) thread serials handed out so far; serials run 1..threads_started */
    uint64_t stacks;             /* (atomic) address of the stack table (struct memscope_stack_table), 0 while none (stacks off, or no allocation captured yet) */
    uint64_t checkpoint;         /* (atomic) address of the folded checkpoint (struct memscope_checkpoint), 0 while nothing was folded; changed only with fold_seq odd */
    uint64_t clock_origin_ticks; /* clock reading (TSC ticks, or ns) when recording began: time zero */
    uint64_t clock_origin_ns;    /* CLOCK_MONOTONIC in ns at the same instant */
    uint64_t clock_calib_seq;    /* even when clock_calib_* below are consistent, odd while being rewritten */
    uint64_t clock_calib_ticks;  /* a later clock reading, for the tick rate: (ticks - origin_ticks) / (ns - origin_ns) */
    uint64_t clock_calib_ns;     /* CLOCK_MONOTONIC in ns at clock_calib_ticks */
    /*
     * The peak trap (DESIGN.md "Peak trap"; c/runtime/peak_trap.c). Armed while
     * peak_trap_threshold is non-zero. A debugger arms it by writing these
     * fields (its one write into the store): step, shift, live, generation+1,
     * then threshold. Armed, each thread adds the usable size of every block it
     * allocates and takes off that of every block it frees into a thread-local
     * delta, and adds the delta to peak_trap_live when it passes 64 KiB either
     * way; when peak_trap_live reaches the threshold, the thread calls the
     * exported no-op memscope_peak_trap() (where the debugger's breakpoint
     * sits) after re-arming at live + max(step, live >> shift). The figures are
     * coarse by design (usable sizes, per-thread lag of up to 64 KiB); exact
     * figures come from the replay.
     */
    uint64_t peak_trap_threshold;  /* (atomic) live estimate at which the trap fires next; 0: disarmed */
    uint64_t peak_trap_step;       /* least growth between two hits, bytes (>= 1 when armed) */
    uint64_t peak_trap_live;       /* (atomic) process-wide live-bytes estimate (usable sizes) since arming */
    uint32_t peak_trap_shift;      /* 0, or k: the step is at least peak_trap_live >> k at each re-arm */
    uint32_t peak_trap_generation; /* bumped at each arming: threads drop deltas kept from an older one */
    uint64_t peak_trap_hits;       /* (atomic) times memscope_peak_trap was called */
    uint64_t fold_seq;             /* (atomic) even while checkpoint and the chunk list agree, odd while a fold swaps the checkpoint and unlinks folded chunks; +2 per fold. A reader takes it before and after reading, and reads again when it differs or was odd */
    uint64_t fold_wait_max_ns;     /* (atomic) longest an allocating thread waited for a fold to give it room, ns (0: none ever waited) */
    uint64_t reserved[1];          /* zero; room for later fields without moving the above */
};

/*
 * A chunk: a header followed by `capacity` records. Mapped with mmap by the
 * thread that fills it; outlives the thread. Only the owning thread writes
 * records and count; everyone else only reads.
 */
struct memscope_chunk {
    uint64_t magic;        /* MEMSCOPE_CHUNK_MAGIC */
    uint64_t next;         /* address of the chunk linked before this one (any thread), 0 at the end of the list */
    uint64_t thread_prev;  /* address of the previous chunk of the same thread, 0 for the thread's first */
    uint64_t capacity;     /* records this chunk has room for */
    uint64_t count;        /* (atomic) records complete; stored with release order after a record is whole */
    uint64_t map_size;     /* bytes mapped for this chunk, header included */
    uint32_t thread;       /* thread serial (1-based, in order of first event) */
    uint32_t seq;          /* position of this chunk in its thread's chain, 0 for the first */
    uint32_t tid;          /* OS thread id (gettid) of the writing thread (a fork child rewrites it, and pid, in the forking thread's current chunk) */
    uint32_t pid;          /* process id of the writing thread; the runtime folds a thread's last chunk once that thread is gone */
};

/* Record kinds (memscope_record.info & 0xff). */
enum memscope_record_kind {
    MEMSCOPE_REC_ALLOC = 1,         /* address: block; size: bytes requested (malloc, calloc, memalign family, realloc(NULL, n)) */
    MEMSCOPE_REC_FREE = 2,          /* address: block released by free(); size: 0 */
    MEMSCOPE_REC_REALLOC_FREE = 3,  /* address: old block released by realloc, recorded before the real call; size: 0 */
    MEMSCOPE_REC_REALLOC_ALLOC = 4, /* address: block returned by realloc (same address or not); size: new bytes */
    MEMSCOPE_REC_REALLOC_UNDO = 5,  /* address: old block; realloc failed, so the block released by the REALLOC_FREE just before (same thread) is live again */
    MEMSCOPE_REC_LABEL = 6,         /* address: block; size: address of a text entry with 2 strings (variable name, type name) */
    MEMSCOPE_REC_MARK = 7,          /* address: 0; size: address of a text entry with 1 string (the mark's name) */
};

/* memscope_record.info: kind in bits 0-7, thread serial in bits 8-31. */
#define MEMSCOPE_RECORD_KIND(info) ((unsigned)((info) & 0xffu))
#define MEMSCOPE_RECORD_THREAD(info) ((uint32_t)((info) >> 8))
#define MEMSCOPE_RECORD_INFO(kind, thread) ((uint32_t)(((uint32_t)(thread) << 8) | ((uint32_t)(kind) & 0xffu)))

/*
 * One event, 32 bytes. Within one chunk, and along a thread's chain, times
 * never decrease except where a signal handler's event nests inside another
 * event of the same thread (a reader sorts each thread's sequence stably).
 * A release is timed before the block goes back to the allocator and an
 * allocation after the allocator handed it out, so a reused address always
 * sorts after its release.
 */
struct memscope_record {
    uint64_t time;    /* clock reading (TSC ticks if root.flags has MEMSCOPE_STORE_CLOCK_TSC, else CLOCK_MONOTONIC ns) */
    uint64_t address; /* block address (0 for a mark) */
    uint64_t size;    /* per kind, see enum memscope_record_kind */
    uint32_t stack;   /* ALLOC and REALLOC_ALLOC: call stack id in the stack table (1..), 0 = none; other kinds: 0 */
    uint32_t info;    /* MEMSCOPE_RECORD_INFO(kind, thread serial) */
};


/*
 * The checkpoint: what the events folded so far leave behind (DESIGN.md
 * "Bounded memory and history"). When the store nears its budget, the
 * runtime's folding thread replays the oldest records, together with the
 * previous checkpoint, into a new one and reuses their chunks. One mapping,
 * counted in the budget:
 *
 *   [header][threads: thread_count x struct memscope_checkpoint_thread][blocks: block_count x struct memscope_checkpoint_block]
 *   [marks: mark_count x struct memscope_checkpoint_mark]
 *
 * The fold cut is a per-thread prefix: for each thread, its records up to
 * (folded_seq, folded_records) are in the checkpoint, the rest are not. The
 * folder picks a horizon H (a record time) and folds, of each thread, the
 * longest prefix of published records whose times are <= H; a record timed
 * before H but published after the cut was taken is simply replayed after
 * the checkpoint. That keeps the current state exact even under cross-thread
 * address reuse: a release is recorded (and published) before the block goes
 * back to the allocator, so any allocation reusing the address comes after
 * it in its own thread, and cannot be folded while the release is not.
 *
 * A reader applies the checkpoint first (its blocks are live, its figures
 * the starting figures), then replays, per thread, only the records past
 * that thread's cut: chunks whose seq is below folded_seq are skipped wholly
 * (they may still be linked until the next fold), and the chunk with seq ==
 * folded_seq from record folded_records on. Threads absent from the
 * checkpoint have nothing folded. Time travel before `horizon` is refused.
 *
 * Marks: the MARK records folded so far are kept as marks entries (time
 * order, the oldest first), so a folded mark is still known: a reader
 * lists it and refuses to travel to it (it lies before the horizon) rather
 * than calling it unknown. At most MEMSCOPE_CHECKPOINT_MAX_MARKS are kept
 * (the oldest); the marks folded past that are counted in marks_dropped.
 *
 * Exited threads: so that the checkpoint's size does not grow with every
 * thread that ever ran, the entries of threads gone for good are merged into
 * one entry with serial 0 (the first entry when present; `merged` says how
 * many threads it holds). A fold marks a thread MEMSCOPE_CHECKPOINT_GONE when
 * it has exited and its cut covers all its records; a later fold merges it
 * when it was GONE in the previous checkpoint already, no chunk of it is
 * linked any more (a reader skips a linked chunk below its thread's
 * folded_seq; without the entry it would replay it again), it owns no live
 * block, and neither it has a pending realloc nor another thread's stash
 * names it. The merged entry keeps the sums (allocations, deallocations,
 * allocated and released bytes), the largest peak among its threads and its
 * time, and no cut, block or stash. So a reader counts threads as the
 * entries with a serial plus `merged`, and every figure of the summary is
 * what an unbounded store gives; only the merged threads' own rows are gone.
 * A chunk naming a serial that is not listed is replayed whole, as for any
 * thread that has nothing folded: the runtime merges only threads none of
 * whose chunks is linked, and a thread gone for good links no more.
 *
 * Publication: the folder writes a whole new checkpoint in a mapping of its
 * own, then makes root.fold_seq odd, stores root.checkpoint, unlinks the
 * wholly folded chunks (keeping them mapped, for reuse as new chunks) and
 * makes fold_seq even again. Readers of a live process check fold_seq
 * around their read (struct memscope_store_root.fold_seq).
 *
 * Times are in the record clock (as memscope_record.time). Labels are text
 * entry addresses (struct memscope_text with 2 strings). Readers check
 * magic, sizes, that both arrays lie inside [checkpoint, checkpoint +
 * map_size), that threads are in ascending serial order (serial 0 only as
 * the first entry, the merged one: `merged` >= 1 there and 0 elsewhere, no
 * cut, flags, live bytes or stash), that every block's thread is listed (and
 * is not 0), that the blocks add up to the current_memory and
 * live_blocks figures, and that marks are at most MEMSCOPE_CHECKPOINT_MAX_MARKS,
 * in time order, none after the horizon, their event numbers rising and
 * within folded_events, their live bytes within peak_memory, and that no
 * linked chunk of a GONE thread holds records past its cut (or lies past it:
 * a thread gone for good links no more); anything else is damage and the
 * store is refused.
 */
#define MEMSCOPE_CHECKPOINT_MAX_MARKS 1024u /* most marks a checkpoint keeps; the rest are counted in marks_dropped */

struct memscope_checkpoint {
    uint64_t magic;                   /* MEMSCOPE_CHECKPOINT_MAGIC; written before the checkpoint is published */
    uint32_t header_size;             /* sizeof(struct memscope_checkpoint) */
    uint32_t thread_size;             /* sizeof(struct memscope_checkpoint_thread) */
    uint32_t block_size;              /* sizeof(struct memscope_checkpoint_block) */
    uint32_t mark_size;               /* sizeof(struct memscope_checkpoint_mark) */
    uint64_t map_size;                /* bytes mapped for this checkpoint, header included */
    uint64_t generation;              /* folds made so far (1 for the first checkpoint) */
    uint64_t horizon;                 /* record time H of the last fold: every folded record is timed <= H */
    uint64_t folded_events;           /* records folded into this checkpoint, all folds together */
    uint64_t total_allocations;       /* as memscope_stats, over the folded records */
    uint64_t total_deallocations;     /* as memscope_stats */
    uint64_t total_allocated;         /* as memscope_stats, bytes */
    uint64_t total_deallocated;       /* as memscope_stats, bytes */
    uint64_t current_memory;          /* live bytes at the cut: the sum of the blocks' sizes */
    uint64_t peak_memory;             /* most live bytes at any instant up to the cut */
    uint64_t peak_time;               /* record time when peak_memory was first reached (0 when it is 0) */
    uint64_t unmatched_deallocations; /* as memscope_stats */
    uint64_t reallocations;           /* as memscope_stats */
    uint64_t overlapping_allocations; /* as memscope_stats */
    uint64_t thread_count;            /* entries at threads */
    uint64_t threads;                 /* address of the thread entries, ascending serial */
    uint64_t block_count;             /* entries at blocks: the blocks live at the cut */
    uint64_t blocks;                  /* address of the block entries (any order, addresses unique) */
    uint64_t mark_count;              /* entries at marks, 0..MEMSCOPE_CHECKPOINT_MAX_MARKS */
    uint64_t marks;                   /* address of the mark entries (the folded marks, oldest first; 0 when mark_count is 0) */
    uint64_t marks_dropped;           /* folded marks not kept: past MEMSCOPE_CHECKPOINT_MAX_MARKS */
    uint64_t reserved[1];             /* zero */
};

/* memscope_checkpoint_thread.flags */
#define MEMSCOPE_CHECKPOINT_STASH 0x1u /* the thread's last folded record is a REALLOC_FREE whose REALLOC_ALLOC or UNDO is not folded: stash_* hold the block it released */
#define MEMSCOPE_CHECKPOINT_GONE 0x2u  /* (ABI 6) the thread had exited when a fold cut it, and its cut covers all its records: a later fold may merge it */

/* One thread that recorded a folded record: where its cut lies and its figures
 * there; or (serial 0, the first entry) the exited threads merged into one. */
struct memscope_checkpoint_thread {
    uint32_t thread;          /* thread serial; 0: the merged entry of `merged` exited threads */
    uint32_t tid;             /* OS thread id from its first chunk (0 in the merged entry) */
    uint32_t folded_seq;      /* seq of the thread's first chunk not wholly folded (lower seqs are folded; 0 in the merged entry) */
    uint32_t flags;           /* MEMSCOPE_CHECKPOINT_STASH, MEMSCOPE_CHECKPOINT_GONE, or 0 (always 0 in the merged entry) */
    uint64_t folded_records;  /* records of chunk folded_seq that are folded (the index of its first unfolded record) */
    uint64_t allocations;     /* as memscope_thread_stats (the merged entry: the sum over its threads, as the next three) */
    uint64_t deallocations;   /* as memscope_thread_stats */
    uint64_t allocated_bytes; /* as memscope_thread_stats */
    uint64_t released_bytes;  /* as memscope_thread_stats */
    uint64_t current_memory;  /* as memscope_thread_stats: the sum of its blocks' sizes (0 in the merged entry) */
    uint64_t live_blocks;     /* as memscope_thread_stats: its blocks in the checkpoint (0 in the merged entry) */
    uint64_t peak_memory;     /* as memscope_thread_stats; the merged entry: the largest of its threads' */
    uint64_t peak_time;       /* record time of peak_memory (0 when it is 0); merged: when that thread first reached it */
    uint64_t stash_address;   /* STASH: address of the released block, 0 when it was not live */
    uint64_t stash_size;      /* STASH: its bytes */
    uint64_t stash_time;      /* STASH: its allocation's record time */
    uint64_t stash_label;     /* STASH: its label's text entry address, 0 none */
    uint32_t stash_thread;    /* STASH: serial of the thread that allocated it */
    uint32_t stash_stack;     /* STASH: its call stack id, 0 none */
    uint64_t merged;          /* (ABI 6) the merged entry (serial 0): exited threads it holds, 1..0xffffff; 0 in every other entry */
};

/* A block live at the cut. */
struct memscope_checkpoint_block {
    uint64_t address; /* block address (never 0) */
    uint64_t size;    /* bytes */
    uint64_t time;    /* record time of its allocation */
    uint64_t label;   /* text entry address of its label (2 strings), 0 none */
    uint32_t thread;  /* serial of the allocating thread (listed in the thread entries) */
    uint32_t stack;   /* call stack id, 0 none */
};

/* A folded mark (a MEMSCOPE_REC_MARK record folded into the checkpoint). */
struct memscope_checkpoint_mark {
    uint64_t time;       /* record time of the mark (<= horizon) */
    uint64_t text;       /* text entry address of its name (1 string), 0 when it could not be read */
    uint64_t events;     /* its event number: events up to and including it, all folds together (<= folded_events) */
    uint64_t live_bytes; /* live bytes right after it */
};

/*
 * The stack table: every distinct call stack an allocation was made from,
 * stored once. One mapping, made at the first captured allocation and linked
 * with a CAS on root.stacks, never moved or freed:
 *
 *   [header][slots: slot_count x uint64_t][entries: capacity x struct memscope_stack_entry][frames: frame_capacity x uint64_t]
 *
 * (the header gives each part's address; all lie inside [table, table + map_size)).
 *
 * A stack is frames[first .. first + depth): return addresses, innermost
 * first. frames[first] is the return address into the function that called
 * the allocation function (malloc, calloc, realloc, ..., or operator new,
 * whose own frames a reader hides); each next frame is the return address
 * into that function's caller. A return address points just after a call:
 * symbolize pc - 1. Stack id N (1 <= N <= min(count, capacity)) is
 * entries[N - 1]; id 0 means no stack.
 *
 * Writers (any thread, signal handlers included) never lock. To add a stack
 * a writer takes an id with a fetch-add on count and room with a fetch-add
 * on frames_used, writes the frames, then entry.first, then entry.depth
 * (release), then publishes hash and id in an empty slot with a CAS
 * (release); a record names the id only after that. Lookups probe slots
 * linearly from hash & (slot_count - 1), at most MEMSCOPE_STACK_PROBES
 * slots. Two threads adding the same new stack at the same instant both
 * make an entry, but only one is published: the thread whose CAS fails
 * finds the same stack in that slot and takes its id, and its own entry
 * stays unused (no record names it). Ids and frames past 7/8 of capacity are kept for
 * caller-only stacks: when a full stack does not fit, the allocation is
 * recorded with its caller-only stack (counted in truncated); when even that
 * does not fit, with stack 0 (counted in lost).
 *
 * Readers check every field against map_size, treat count > capacity or
 * frames_used > frame_capacity as damage, and treat an entry whose depth is
 * 0, above max_depth, or whose frames leave [0, frames_used) as unreadable.
 */
#define MEMSCOPE_STACK_MAX_DEPTH 64u /* most frames a stack can have */
#define MEMSCOPE_STACK_PROBES 64u    /* most slots a lookup or insertion probes */

/* memscope_stack_table.method: how the runtime captured stacks. */
enum memscope_stack_method {
    MEMSCOPE_STACK_NONE = 0,   /* not captured (records carry stack 0; there is no table) */
    MEMSCOPE_STACK_CALLER = 1, /* the return address of the allocation call only (depth 1) */
    MEMSCOPE_STACK_FP = 2,     /* frame-pointer walk, bounded by the thread's stack mapping */
    MEMSCOPE_STACK_UNWIND = 3, /* libunwind unw_backtrace (DWARF CFI: correct without frame pointers) */
    MEMSCOPE_STACK_AUTO = 4,   /* the frame-pointer walk when its chain reaches libc whole, else unw_backtrace */
};

struct memscope_stack_table {
    uint64_t magic;          /* MEMSCOPE_STACK_TABLE_MAGIC; written before the table is linked */
    uint32_t header_size;    /* sizeof(struct memscope_stack_table) */
    uint32_t entry_size;     /* sizeof(struct memscope_stack_entry) */
    uint64_t map_size;       /* bytes mapped for the table, this header included (MEMSCOPE_STACK_BUDGET) */
    uint64_t slots;          /* address of slot_count uint64_t slots: 0 empty, else (uint64_t)hash << 32 | id */
    uint64_t slot_count;     /* hash slots, a power of two */
    uint64_t entries;        /* address of capacity entries; id N is entries[N - 1] */
    uint64_t capacity;       /* most ids the table hands out */
    uint64_t frames;         /* address of frame_capacity uint64_t return addresses */
    uint64_t frame_capacity; /* frames the pool holds */
    uint64_t count;          /* (atomic) ids handed out (may pass capacity: ids above it were refused) */
    uint64_t frames_used;    /* (atomic) frames handed out (may pass frame_capacity: the excess was refused) */
    uint64_t truncated;      /* (atomic) allocations recorded with their caller-only stack because the table was full */
    uint64_t lost;           /* (atomic) allocations recorded with stack 0 because not even a caller-only stack fitted */
    uint32_t method;         /* enum memscope_stack_method of the capture (MEMSCOPE_STACK_METHOD) */
    uint32_t max_depth;      /* most frames per stack (MEMSCOPE_STACK_DEPTH; 1 for caller-only) */
    uint64_t reserved[4];    /* zero */
};

struct memscope_stack_entry {
    uint64_t first; /* index in frames of the stack's innermost frame */
    uint32_t depth; /* frames in the stack, 1..max_depth; 0 while being written (unreadable) */
    uint32_t hash;  /* hash of the frames, as in the stack's slot */
};

/*
 * Text blocks hold the strings of labels and marks. A block is a header
 * followed by 8-byte aligned entries; records point at entries.
 */
struct memscope_text_block {
    uint64_t magic;    /* MEMSCOPE_TEXT_BLOCK_MAGIC */
    uint64_t next;     /* older text block, 0 at the end */
    uint64_t capacity; /* bytes available for entries after this header */
    uint64_t used;     /* (atomic) bytes of entries handed out (an entry is complete before a record points at it) */
};

#define MEMSCOPE_TEXT_MAX 4096u /* longest text entry payload (bytes field) a reader accepts */

/* A text entry: `strings` NUL-terminated strings packed into `bytes` bytes. */
struct memscope_text {
    uint32_t bytes;   /* payload bytes that follow, every NUL included; at most MEMSCOPE_TEXT_MAX */
    uint32_t strings; /* NUL-terminated strings in the payload (2 for a label, 1 for a mark) */
    /* char payload[bytes]; then padding to 8 bytes */
};

/*
 * Exit image file: the store copied out of a process at exit (the runtime
 * writes one when MEMSCOPE_EXIT_IMAGE names a file; `memscope run` reads it).
 * A memory image: the header, then segment_count segments, each a segment
 * header followed by `length` bytes padded to 8. Reading address A of the
 * recorded process means finding the segment that holds [A, A+len).
 */
#define MEMSCOPE_IMAGE_MAGIC "memscope-image\0\x01"
#define MEMSCOPE_IMAGE_VERSION 1u

struct memscope_image_header {
    uint8_t magic[16];      /* MEMSCOPE_IMAGE_MAGIC */
    uint32_t version;       /* MEMSCOPE_IMAGE_VERSION */
    uint32_t header_size;   /* sizeof(struct memscope_image_header) */
    uint64_t root_address;  /* address of the store root in the recorded process */
    uint64_t segment_count; /* segments that follow */
};

struct memscope_image_segment {
    uint64_t address; /* where these bytes lay in the recorded process */
    uint64_t length;  /* bytes that follow this header (then padding to 8) */
};

#endif /* MEMSCOPE_STORE_ABI_H */
