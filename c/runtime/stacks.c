/*
 * stacks.c - call stack capture and the deduplicated stack table.
 *
 * Every recorded allocation (ALLOC, REALLOC_ALLOC) carries the id of its
 * call stack in the stack table (store_abi.h, struct memscope_stack_table).
 * Capture runs inside malloc, so it takes no lock, never calls malloc and
 * never faults. Methods (MEMSCOPE_STACK_METHOD), measured on this machine:
 *
 *   caller  the return address of the allocation call only (~3 ns);
 *   fp      a frame-pointer walk (~17 ns for 16 frames). Every frame
 *           pointer must be 8-aligned, strictly above the one before it
 *           and inside the mapping of the thread's stack, whose bounds are
 *           read once per thread from /proc/self/maps with raw system
 *           calls (no stdio, no malloc), so a bad pointer ends the walk and
 *           never faults. Right for code built with frame pointers; in code
 *           without them the walk ends early (often at the caller), and a
 *           function that does not touch rbp is left out of the chain;
 *   unwind  libunwind's unw_backtrace (~30 ns + ~5 ns a frame, ~120 ns
 *           for 16 frames): DWARF CFI, right with or without frame
 *           pointers; a stack met again at the same place is taken from
 *           the per-thread stack cache (below) without unwinding;
 *   auto    the default: the frame-pointer walk, taken when its chain is
 *           whole (it reached libc, where a program's chain ends: libc
 *           keeps no frame pointers, or the depth), else unwind (with its
 *           cache). A program built with -fno-omit-frame-pointer pays the
 *           walk's cost; one built without gets libunwind's right stacks,
 *           at the cache's cost where stacks repeat.
 *
 * A capture that starts while this thread is inside unw_backtrace (a signal
 * handler's allocation, or libunwind allocating) takes the caller only, so
 * libunwind is never re-entered and nothing recurses; the guard is not
 * raised around it (a handler's allocations must still be recorded).
 *
 * Frame 0 is always the hook's own return address (the caller of malloc):
 * the hook frames are cut off here, operator new's frames in libstdc++ are
 * hidden by the reader. MEMSCOPE_STACK_DEPTH (default 16, at most 64; 0
 * means caller only) bounds the frames.
 *
 * The table is one mapping of MEMSCOPE_STACK_BUDGET bytes (default 8 MiB,
 * MAP_NORESERVE: pages cost only once touched), made at the first captured
 * allocation. Before the constructor has configured capture, only callers
 * are captured, with the configuration read from /proc/self/environ. Lookups of
 * known stacks only read shared memory; a new stack costs two fetch-adds and
 * one CAS (store_abi.h describes the protocol).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef MS_WITH_LIBUNWIND
#define UNW_LOCAL_ONLY /* the _UL (local) unwinder: this process only, and faster */
#include <libunwind.h>
#endif

#include "runtime.h"

#define MS_STACK_DEFAULT_BUDGET (8u << 20)
#define MS_STACK_LEAST_BUDGET (64u << 10)

/* Set by ms_stack_configure (constructor), or from the environment before it (early_config). */
static uint32_t stack_method = MEMSCOPE_STACK_NONE;
static uint32_t stack_depth = 16;
static uint64_t stack_budget = MS_STACK_DEFAULT_BUDGET;

/* Per thread: the bounds of the mapping that holds this thread's stack (0: not read yet). */
static MS_TLS uintptr_t stack_lo, stack_hi;

/*
 * Per thread: non-zero while unw_backtrace runs. A capture that begins
 * meanwhile (a signal handler's allocation, or libunwind allocating) takes
 * the caller only instead of entering libunwind again. The guard is not
 * raised: a handler's allocations must still be recorded.
 */
static MS_TLS uint32_t in_unwind;

/* ---- configuration ---- */

/* Sets method, depth and budget from the variables' values (NULL: default). */
static void apply_config(const char *method, const char *depth, const char *budget)
{
    uint32_t m = MEMSCOPE_STACK_AUTO, d = 16;
    uint64_t b = MS_STACK_DEFAULT_BUDGET, v;

    if (method) {
        if (strcmp(method, "none") == 0)
            m = MEMSCOPE_STACK_NONE;
        else if (strcmp(method, "caller") == 0)
            m = MEMSCOPE_STACK_CALLER;
        else if (strcmp(method, "fp") == 0)
            m = MEMSCOPE_STACK_FP;
        else if (strcmp(method, "unwind") == 0)
            m = MEMSCOPE_STACK_UNWIND;
        else if (strcmp(method, "auto") == 0)
            m = MEMSCOPE_STACK_AUTO;
    }
#ifndef MS_WITH_LIBUNWIND
    if (m == MEMSCOPE_STACK_UNWIND || m == MEMSCOPE_STACK_AUTO)
        m = MEMSCOPE_STACK_FP;
#endif
    if (depth && ms_parse_size(depth, &v) == 0)
        d = v == 0 ? 1 : v > MEMSCOPE_STACK_MAX_DEPTH ? MEMSCOPE_STACK_MAX_DEPTH : (uint32_t)v;
    if (m == MEMSCOPE_STACK_CALLER)
        d = 1;
    if (budget && ms_parse_size(budget, &v) == 0)
        b = v < MS_STACK_LEAST_BUDGET ? MS_STACK_LEAST_BUDGET : v > (UINT64_C(1) << 32) ? (UINT64_C(1) << 32) : v;
    stack_depth = d;
    stack_budget = (b + 4095u) & ~(uint64_t)4095u;
    __atomic_store_n(&stack_method, d == 1 && m != MEMSCOPE_STACK_NONE ? MEMSCOPE_STACK_CALLER : m,
                     __ATOMIC_RELEASE);
}

/*
 * 0 until the constructor has configured capture. Before that (allocations
 * of ld.so and of other libraries' constructors, such as libstdc++'s
 * emergency exception pool) the configuration comes from the process's
 * initial environment, read from /proc/self/environ with raw system calls
 * (libc may not be initialised yet), and only the caller is captured:
 * neither libunwind nor a frame-pointer walk is trusted that early.
 */
static int stack_configured;
static int early_state; /* 0: environment not read yet, 1: read */

#ifdef MS_WITH_LIBUNWIND
/*
 * fork: libunwind keeps process-wide locks (its cache of unwind info); a
 * fork while another thread holds one leaves the child's copy locked for
 * ever, and the child's first unwind hangs. So, before fork, new unwinds
 * are turned away (they take the caller only, as a nested capture does)
 * and those in progress are waited out; after it, both sides go on.
 */
static uint32_t unwinders;  /* (atomic) threads inside libunwind */
static uint32_t fork_gate;  /* (atomic) a fork is being prepared */

/* Enters libunwind: 1, or 0 when a fork is being prepared (do not). */
static int unwind_enter(void)
{
    if (__atomic_load_n(&fork_gate, __ATOMIC_ACQUIRE))
        return 0;
    __atomic_add_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&fork_gate, __ATOMIC_SEQ_CST)) {
        __atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
        return 0;
    }
    return 1;
}

static void unwind_leave(void)
{
    __atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
}

static void before_fork(void)
{
    __atomic_store_n(&fork_gate, 1, __ATOMIC_SEQ_CST);
    /* Not this thread's own unwind (a handler forking from inside one): bounded, at most ~1 s. */
    for (int i = 0; i < 50000 && !in_unwind && __atomic_load_n(&unwinders, __ATOMIC_SEQ_CST); i++) {
        struct timespec nap = {0, 20000};
        nanosleep(&nap, NULL);
    }
}

static void after_fork(void)
{
    __atomic_store_n(&fork_gate, 0, __ATOMIC_RELEASE);
}
#endif

void ms_stack_configure(const char *method, const char *depth, const char *budget)
{
    apply_config(method, depth, budget);
#ifdef MS_WITH_LIBUNWIND
    pthread_atfork(before_fork, after_fork, after_fork);
#endif
    __atomic_store_n(&stack_configured, 1, __ATOMIC_RELEASE);
}

/* Finds the MEMSCOPE_STACK_* variables in /proc/self/environ (not in a set-uid program). */
static void early_config(void)
{
    static const char *const names[3] = {"MEMSCOPE_STACK_METHOD=", "MEMSCOPE_STACK_DEPTH=", "MEMSCOPE_STACK_BUDGET="};
    char values[3][32], buf[1024];
    int found[3] = {0, 0, 0}, which = -1;
    size_t pos = 0, vlen = 0;
    long fd;

    if (getauxval(AT_SECURE))
        goto out;
    fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto out;
    for (;;) {
        long n = syscall(SYS_read, (int)fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (long i = 0; i < n; i++) {
            char c = buf[i];
            if (c == '\0') { /* end of a variable */
                if (which >= 0 && vlen < sizeof(values[0])) {
                    values[which][vlen] = '\0';
                    found[which] = 1;
                }
                pos = 0;
                which = -1;
                continue;
            }
            if (which >= 0) {
                if (vlen < sizeof(values[0]))
                    values[which][vlen++] = c;
                continue;
            }
            if (pos == (size_t)-1)
                continue; /* this variable is not one of ours */
            int alive = 0;
            for (int k = 0; k < 3; k++) {
                if (strlen(names[k]) > pos && names[k][pos] == c) {
                    alive = 1;
                    if (names[k][pos + 1] == '\0') {
                        which = k;
                        vlen = 0;
                    }
                }
            }
            pos = alive ? pos + 1 : (size_t)-1;
        }
    }
    syscall(SYS_close, (int)fd);
out:
    apply_config(found[0] ? values[0] : NULL, found[1] ? values[1] : NULL, found[2] ? values[2] : NULL);
}

/* ---- the thread's stack bounds ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * Reads /proc/self/maps with raw system calls and a buffer on the stack (no
 * stdio, no malloc: callable inside malloc and from a signal handler) and
 * calls fn for each mapping with its bounds, whether it is executable, and
 * its path (cut to fit; "" for anonymous memory). fn returns non-zero to stop.
 */
static void scan_maps(int (*fn)(void *arg, uintptr_t lo, uintptr_t hi, int exec, const char *path), void *arg)
{
    char buf[1024], line[320];
    size_t len = 0;
    long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return;
    for (;;) {
        long n = syscall(SYS_read, (int)fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (long i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                if (len < sizeof(line) - 1)
                    line[len++] = buf[i];
                continue;
            }
            line[len] = '\0';
            len = 0;
            /* "lo-hi perms offset dev inode   path" */
            uintptr_t lo = 0, hi = 0;
            const char *p = line;
            int h;
            while ((h = hexval(*p)) >= 0)
                lo = lo << 4 | (uintptr_t)h, p++;
            if (*p++ != '-')
                continue;
            while ((h = hexval(*p)) >= 0)
                hi = hi << 4 | (uintptr_t)h, p++;
            if (*p++ != ' ' || !p[0] || !p[1] || !p[2])
                continue;
            int exec = p[2] == 'x';
            for (int field = 0; field < 4 && *p; field++) { /* skip perms, offset, dev, inode */
                while (*p && *p != ' ')
                    p++;
                while (*p == ' ')
                    p++;
            }
            if (fn(arg, lo, hi, exec, p)) {
                syscall(SYS_close, (int)fd);
                return;
            }
        }
    }
    syscall(SYS_close, (int)fd);
}

struct find_sp {
    uintptr_t sp, lo, hi;
    int found;
};

static int find_sp_cb(void *arg, uintptr_t lo, uintptr_t hi, int exec, const char *path)
{
    struct find_sp *f = arg;
    (void)exec;
    (void)path;
    if (lo <= f->sp && f->sp < hi) {
        f->lo = lo;
        f->hi = hi;
        f->found = 1;
        return 1;
    }
    return 0;
}

/* The mapping that holds sp: 0 and its bounds, or -1. */
static int find_mapping(uintptr_t sp, uintptr_t *lo, uintptr_t *hi)
{
    struct find_sp f = {sp, 0, 0, 0};
    scan_maps(find_sp_cb, &f);
    if (!f.found)
        return -1;
    *lo = f.lo;
    *hi = f.hi;
    return 0;
}

/*
 * The executable mapping of libc (lo, hi). libc keeps no frame pointers, so
 * a frame-pointer chain of a program built with them ends in libc's first
 * frame (__libc_start_call_main, start_thread): `auto` takes a chain that
 * reaches libc as whole, and unwinds any other. Found once, when the table
 * is made; libc is never unloaded.
 */
static uintptr_t libc_lo, libc_hi;

static int libc_cb(void *arg, uintptr_t lo, uintptr_t hi, int exec, const char *path)
{
    const char *base = strrchr(path, '/');
    (void)arg;
    base = base ? base + 1 : path;
    if (exec && (strncmp(base, "libc.so", 7) == 0 || strncmp(base, "libc-", 5) == 0)) {
        libc_lo = lo;
        libc_hi = hi;
        return 1;
    }
    return 0;
}

/* ---- capture ---- */

/*
 * The bounds of the mapping that holds sp (this thread's stack), cached per
 * thread: 0 and the bounds, or -1. The cached range is read once per thread
 * and again whenever sp leaves it (a signal handler's alternate stack). A
 * signal handler may replace the cached range while this runs, so the two
 * words are read in a checked order and written hi-first-to-0: a reader
 * never takes half of two ranges.
 */
static int stack_bounds(uintptr_t sp, uintptr_t *plo, uintptr_t *phi)
{
    uintptr_t hi = stack_hi;
    __asm__ __volatile__("" ::: "memory");
    uintptr_t lo = stack_lo;
    __asm__ __volatile__("" ::: "memory");
    if (hi != stack_hi)
        hi = 0; /* a handler changed the range between the two loads: read the maps */
    if (sp < lo || sp >= hi) {
        if (find_mapping(sp, &lo, &hi) != 0)
            return -1;
        stack_hi = 0;
        __asm__ __volatile__("" ::: "memory");
        stack_lo = lo;
        __asm__ __volatile__("" ::: "memory");
        stack_hi = hi;
    }
    *plo = lo;
    *phi = hi;
    return 0;
}

/*
 * Frame-pointer walk from the hook's frame. pcs[0] is already the hook's
 * return address; fps[i] (i >= 1) is the frame pointer pcs[i] was read
 * beside (pcs[i] = fps[i][1]). *whole is set when the chain is whole: it
 * reached max frames, or a return address into libc (where a program's
 * frame-pointer chain ends); a chain that breaks anywhere else is not
 * trusted by `auto`.
 */
static uint32_t walk_fp(uintptr_t frame, uint64_t *pcs, uint64_t *fps, uint32_t max, int *whole)
{
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0), prev, fp, lo, hi;
    uint32_t n = 1;

    *whole = max == 1;
    if (stack_bounds(sp, &lo, &hi) != 0)
        return n;
    /* The hook's frame: [frame] = the caller's saved frame pointer, [frame + 8] = pcs[0]. */
    if (frame < sp || frame % 8 != 0 || frame > hi - 16)
        return n;
    prev = frame;
    fp = ((const uintptr_t *)frame)[0];
    while (n < max) {
        if (fp <= prev || fp % 8 != 0 || fp > hi - 16)
            break;
        uintptr_t pc = ((const uintptr_t *)fp)[1];
        if (pc < 4096 || pc >= (UINT64_C(1) << 47))
            break;
        fps[n] = fp;
        pcs[n++] = pc;
        if (pc - libc_lo < libc_hi - libc_lo) {
            *whole = 1;
            return n;
        }
        prev = fp;
        fp = ((const uintptr_t *)fp)[0];
    }
    *whole = *whole || n == max;
    return n;
}

#ifdef MS_WITH_LIBUNWIND
/* libunwind from here: its frames start with ours; the first that is the hook's return address is frame 0. */
static __attribute__((noinline)) uint32_t walk_unwind(uint64_t ret, uint64_t *pcs, uint32_t max)
{
    void *buf[MEMSCOPE_STACK_MAX_DEPTH + 6];
    int got, i, start = -1;

    if (in_unwind || !unwind_enter())
        return 1;
    in_unwind = 1;
    __asm__ __volatile__("" ::: "memory");
    got = unw_backtrace(buf, (int)max + 5);
    __asm__ __volatile__("" ::: "memory");
    in_unwind = 0;
    unwind_leave();
    for (i = 0; i < got && i < 6; i++) {
        if ((uint64_t)(uintptr_t)buf[i] == ret) {
            start = i;
            break;
        }
    }
    if (start < 0)
        return 1; /* not found (a tail call, odd unwind info): the caller alone is right */
    uint32_t n = 1;
    for (i = start + 1; i < got && n < max; i++) {
        if ((uintptr_t)buf[i] < 4096)
            break;
        pcs[n++] = (uint64_t)(uintptr_t)buf[i];
    }
    return n;
}
#endif

/* ---- the per-thread stack cache ---- */

/*
 * unw_backtrace costs ~30 ns plus ~5 ns a frame even on libunwind's cached
 * fast path, and a program allocates again and again from the same few
 * places. So each thread remembers, per (return address, stack pointer) of
 * the allocation call, where on its stack the return addresses of the
 * stack's frames lie: the next allocation made from there checks those
 * words against the stack it found last time and, when all are equal, takes
 * its id without unwinding or touching the table (~1 ns a frame).
 *
 * Why equal words mean an equal stack: the caller's frame is known (frame 0
 * is the return address, its stack pointer is the key); a function whose
 * call frame address (CFA) is a fixed distance from the stack pointer at a
 * given instruction keeps its return address at the same place whenever it
 * calls from there, so if that word holds the same return address, the
 * next frame is the same function at the same instruction and stack
 * pointer, and so on up the stack. A stack is cached only when every frame
 * it crosses is such a function: its positions are learned with libunwind's
 * step-by-step unwinder (unw_step, which gives each frame's CFA), and a
 * stack is refused when a frame uses rbp as its frame pointer (rbp = CFA -
 * 16, or rbp pointing at where the frame saved its caller's rbp: such a
 * frame may have a variable size: alloca, VLAs, realignment, and compilers
 * give every such frame rbp as its frame pointer), is a signal frame, or
 * disagrees with unw_backtrace. unw_step costs 1-10 us, so a stack is
 * learned only the second time its key is seen, and learning is rationed
 * (MS_SC_COST captures of credit per stack learned), which bounds its share
 * of a program whose stacks never repeat. A scratch build that also unwound
 * on every hit and compared found no difference in 1.2M hits (git, sort,
 * python3, g++, gdb, cmake, perl and the test suite).
 *
 * MS_SC_ENTRIES per thread, in sets of two (a key takes an empty entry of
 * its set, else the least recently used): keys hash differently in every
 * run (ASLR), and direct-mapped, two of a loop's few keys that met in one
 * entry would evict each other on every call (4 keys in 32 entries: about
 * one run in six; with sets of two, 3 keys must meet: about one in sixty).
 * Signals: the cache is used only while no other capture on this thread is
 * using it (sc_busy); a capture from a signal handler that interrupts one
 * goes around the cache.
 */
#define MS_SC_SET_BITS 4u
#define MS_SC_ENTRIES (2u << MS_SC_SET_BITS) /* entries per thread: 16 sets of 2 */
#define MS_SC_FRAMES 16u    /* most frames of a cached stack */
#define MS_SC_COST 256u     /* credit one learning costs (captures) */
#define MS_SC_CREDIT 2048u  /* most credit a thread holds (it starts full) */

enum { SC_EMPTY = 0, SC_SEEN, SC_LEARNED, SC_NEVER }; /* entry states */
enum { SC_UNWOUND = 0, SC_FP };                         /* how a learned stack was found */

struct ms_sc_entry {
    uint64_t ret;                 /* frame 0: the return address of the allocation call */
    uint64_t sp;                  /* the caller's stack pointer at the call (the hook's CFA) */
    uint32_t id;                  /* SC_LEARNED: the stack's id in the table */
    uint8_t state;                /* SC_EMPTY, SC_SEEN (unwound once), SC_LEARNED, SC_NEVER (cannot be cached) */
    uint8_t hot;                  /* the most recently used of its set */
    uint8_t kind;                 /* SC_LEARNED: SC_UNWOUND or SC_FP */
    uint8_t depth;                /* SC_LEARNED: frames of the stack (2..MS_SC_FRAMES) */
    const uint64_t *frames;       /* SC_LEARNED: the stack's frames in the table */
    uint32_t off[MS_SC_FRAMES];   /* off[i] (i >= 1): SC_UNWOUND: frame i's return address is at sp + off[i];
                                     SC_FP: frame i's return address was read beside the frame pointer sp + off[i] */
};

static MS_TLS struct ms_sc_entry sc[MS_SC_ENTRIES];
static MS_TLS uint32_t sc_busy; /* non-zero while a capture on this thread uses the cache */
static MS_TLS uint32_t sc_debt; /* credit spent on learning, paid back by one per capture */

/* The set (two entries) of key (ret, sp). */
static inline struct ms_sc_entry *sc_set(uint64_t ret, uint64_t sp)
{
    uint64_t h = (ret ^ (sp * UINT64_C(0xff51afd7ed558ccd))) * UINT64_C(0x9e3779b97f4a7c15);
    return &sc[(h >> (64 - MS_SC_SET_BITS)) * 2];
}

/* The entry of key (ret, sp) in its set, or NULL. */
static inline struct ms_sc_entry *sc_find(struct ms_sc_entry *set, uint64_t ret, uint64_t sp)
{
    if (set[0].ret == ret && set[0].sp == sp)
        return &set[0];
    if (set[1].ret == ret && set[1].sp == sp)
        return &set[1];
    return NULL;
}

/* Makes e the most recently used entry of its set. */
static inline void sc_touch(struct ms_sc_entry *set, struct ms_sc_entry *e)
{
    set[0].hot = e == &set[0];
    set[1].hot = e == &set[1];
}

/* The entry a new key takes: an empty one, else the least recently used. */
static inline struct ms_sc_entry *sc_victim(struct ms_sc_entry *set)
{
    if (set[0].state == SC_EMPTY)
        return &set[0];
    if (set[1].state == SC_EMPTY)
        return &set[1];
    return set[0].hot ? &set[1] : &set[0];
}

/* Where stack id's frames lie in the table. */
static inline const uint64_t *sc_frames(const struct memscope_stack_table *t, uint32_t id)
{
    const struct memscope_stack_entry *te = (const struct memscope_stack_entry *)(uintptr_t)t->entries + (id - 1);
    return (const uint64_t *)(uintptr_t)t->frames + te->first;
}

static inline void sc_enter(void)
{
    sc_busy = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline void sc_leave(void)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    sc_busy = 0;
}

/* The id of e's stack when the words at its positions still hold its frames, else 0. */
static inline uint32_t sc_check(const struct ms_sc_entry *e, uint64_t sp)
{
    const uint64_t *f = e->frames;
    uint32_t n = e->depth;
    uintptr_t lo, hi;

    /* The positions were inside this thread's stack when learned; a stack
     * pointer outside the cached range (another stack) reads the maps once. */
    if (stack_bounds((uintptr_t)sp, &lo, &hi) != 0 || sp + e->off[n - 1] > hi - 8)
        return 0;
    for (uint32_t i = 1; i < n; i++)
        if (*(const uint64_t *)(uintptr_t)(sp + e->off[i]) != f[i])
            return 0;
    return e->id;
}

/*
 * The id of e's stack, a frame-pointer chain, when the words walk_fp read to
 * find it still hold what it read, else 0: the hook's saved rbp (the
 * caller's frame pointer), and each frame pointer's saved frame pointer and
 * return address. walk_fp would then find the same frames, and stop where it
 * stopped (the same return address into libc, or the depth); the loads here
 * do not wait on each other as the walk's do.
 */
static inline uint32_t sc_check_fp(const struct ms_sc_entry *e, uint64_t sp)
{
    const uint64_t *f = e->frames;
    uint32_t n = e->depth;
    uintptr_t lo, hi;
    uint64_t diff;

    if (stack_bounds((uintptr_t)sp, &lo, &hi) != 0 || sp + e->off[n - 1] > hi - 16)
        return 0;
    diff = *(const uint64_t *)(uintptr_t)(sp - 16) ^ (sp + e->off[1]); /* [hook frame] = frame 1's fp */
    for (uint32_t i = 1; i < n; i++) {
        const uint64_t *fp = (const uint64_t *)(uintptr_t)(sp + e->off[i]);
        diff |= fp[1] ^ f[i];
        if (i + 1 < n)
            diff |= fp[0] ^ (sp + e->off[i + 1]);
    }
    return diff == 0 ? e->id : 0;
}

/* After a whole frame-pointer walk of stack id (pcs, fps, n) at key (pcs[0], sp): remembers it. */
static void sc_note_fp(const struct memscope_stack_table *t, uint64_t sp, const uint64_t *pcs, const uint64_t *fps,
                       uint32_t n, uint32_t id)
{
    struct ms_sc_entry *set = sc_set(pcs[0], sp), *e = sc_find(set, pcs[0], sp);

    if (n < 2 || n > MS_SC_FRAMES)
        return;
    if (!e)
        e = sc_victim(set);
    else if (e->state == SC_LEARNED)
        return; /* another stack met at the same place keeps its entry */
    for (uint32_t i = 1; i < n; i++) {
        if (fps[i] < sp || fps[i] - sp > UINT32_MAX - 16)
            return;
        e->off[i] = (uint32_t)(fps[i] - sp);
    }
    e->ret = pcs[0];
    e->sp = sp;
    e->id = id;
    e->frames = sc_frames(t, id);
    e->depth = (uint8_t)n;
    e->kind = SC_FP;
    e->state = SC_LEARNED;
    sc_touch(set, e);
}

#ifdef MS_WITH_LIBUNWIND
/*
 * Learns where the frames pcs[1..n) of the stack just captured lie, with
 * unw_step from here: 0 and off[], or -1 when the stack cannot be cached
 * (see above). ended: the unwind stopped before the depth (the stack's end).
 */
static __attribute__((noinline)) int sc_learn(uint64_t sp0, const uint64_t *pcs, uint32_t n, int ended, uint32_t *off)
{
    unw_context_t uc;
    unw_cursor_t c;
    unw_word_t ip, sp, rbp;
    unw_save_loc_t saved;
    int k, rc = -1;

    if (!unwind_enter())
        return -1; /* a fork is being prepared: learn another time */
    in_unwind = 1; /* a capture meanwhile (a signal handler) does not enter libunwind */
    __asm__ __volatile__("" ::: "memory");
    if (unw_getcontext(&uc) != 0 || unw_init_local(&c, &uc) != 0)
        goto out;
    /* Our own frames first: find the caller's (ip = pcs[0], sp = sp0). */
    for (k = 0;; k++) {
        if (k > 8 || unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || unw_get_reg(&c, UNW_REG_SP, &sp) < 0)
            goto out;
        if (ip == pcs[0] && sp == sp0)
            break;
        if (unw_step(&c) <= 0)
            goto out;
    }
    for (uint32_t i = 1; i < n; i++) {
        if (unw_is_signal_frame(&c) != 0 || unw_get_reg(&c, UNW_X86_64_RBP, &rbp) < 0 || unw_step(&c) <= 0 ||
            unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || unw_get_reg(&c, UNW_REG_SP, &sp) < 0 ||
            unw_get_save_loc(&c, UNW_X86_64_RBP, &saved) < 0)
            goto out;
        /* sp is now the CFA of frame i - 1's function; its return address
         * lies at CFA - 8. A frame that uses rbp as its frame pointer (rbp =
         * CFA - 16, or, realigned, rbp pointing at the caller's rbp it saved
         * on entry: push rbp; mov rbp, rsp) may vary in size, so its stack
         * is not cached. */
        if (ip != pcs[i] || rbp == sp - 16 || (saved.type == UNW_SLT_MEMORY && saved.u.addr == rbp) ||
            sp < sp0 + 8 || sp - 8 - sp0 > UINT32_MAX)
            goto out;
        off[i] = (uint32_t)(sp - 8 - sp0);
    }
    /* A stack shorter than the depth ended there: only if the unwinder agrees is that a property of the frame. */
    if (ended && (unw_is_signal_frame(&c) != 0 || unw_step(&c) > 0))
        goto out;
    rc = 0;
out:
    __asm__ __volatile__("" ::: "memory");
    in_unwind = 0;
    unwind_leave();
    return rc;
}

/* After an unwound capture of stack id (pcs, n) at key (ret, sp): remembers the key, or learns the stack. */
static void sc_note(const struct memscope_stack_table *t, uint64_t sp, const uint64_t *pcs, uint32_t n, uint32_t id,
                    int ended)
{
    struct ms_sc_entry *set = sc_set(pcs[0], sp), *e = sc_find(set, pcs[0], sp);

    if (!e) {
        e = sc_victim(set);
        e->ret = pcs[0];
        e->sp = sp;
        e->state = SC_SEEN;
        sc_touch(set, e);
        return;
    }
    if (e->state != SC_SEEN || n < 2 || n > MS_SC_FRAMES || sc_debt > MS_SC_CREDIT - MS_SC_COST)
        return;
    sc_debt += MS_SC_COST;
    if (sc_learn(sp, pcs, n, ended, e->off) != 0) {
        e->state = SC_NEVER;
        return;
    }
    e->id = id;
    e->frames = sc_frames(t, id);
    e->depth = (uint8_t)n;
    e->kind = SC_UNWOUND;
    e->state = SC_LEARNED;
}
#endif

/* ---- the table ---- */

static struct memscope_stack_table *make_table(void)
{
    struct memscope_store_root *root = &memscope_store_root;
    uint64_t size = stack_budget, cap, slots, entries_off, frames_off;
    struct memscope_stack_table *t;
    uint64_t expected = 0;

    /* Per stack: 2 slots (16 bytes), one entry (16 bytes), ~12 frames (96 bytes). */
    cap = 1;
    while (cap * 2 * 128 <= size)
        cap *= 2;
    slots = 2 * cap;
    entries_off = (sizeof(*t) + slots * 8 + 63) & ~(uint64_t)63;
    frames_off = entries_off + cap * sizeof(struct memscope_stack_entry);
    if (frames_off + 8 * 64 > size)
        return NULL;
    t = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (t == MAP_FAILED)
        return NULL;
    t->header_size = sizeof(*t);
    t->entry_size = sizeof(struct memscope_stack_entry);
    t->map_size = size;
    t->slots = (uint64_t)(uintptr_t)(t + 1);
    t->slot_count = slots;
    t->entries = (uint64_t)(uintptr_t)t + entries_off;
    t->capacity = cap;
    t->frames = (uint64_t)(uintptr_t)t + frames_off;
    t->frame_capacity = (size - frames_off) / 8;
    t->method = stack_method;
    t->max_depth = stack_depth;
    scan_maps(libc_cb, NULL);
    t->magic = MEMSCOPE_STACK_TABLE_MAGIC;
    if (!__atomic_compare_exchange_n(&root->stacks, &expected, (uint64_t)(uintptr_t)t, 0, __ATOMIC_RELEASE,
                                     __ATOMIC_ACQUIRE)) {
        munmap(t, size);
        return (struct memscope_stack_table *)(uintptr_t)expected;
    }
    return t;
}

/*
 * Hash of a stack. The products are independent of each other (only the
 * additions chain), so 16 frames cost ~16 cycles rather than a chain of 16
 * multiply latencies; the final mix spreads them. Equal hashes are always
 * confirmed by comparing the frames.
 */
static inline uint32_t hash_frames(const uint64_t *pcs, uint32_t n)
{
    uint64_t h = n;
    for (uint32_t i = 0; i < n; i++)
        h += (pcs[i] ^ (pcs[i] >> 31)) * (UINT64_C(0x9e3779b97f4a7c15) + 2 * (uint64_t)i);
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    uint32_t r = (uint32_t)(h ^ (h >> 32));
    return r ? r : 1;
}

/* Whether two stacks of n frames are equal: inline, as n is small (memcmp's call cost more than its work). */
static inline int frames_equal(const uint64_t *a, const uint64_t *b, uint32_t n)
{
    uint64_t diff = 0;
    for (uint32_t i = 0; i < n; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}

/*
 * Finds or adds a stack. limit_ids / limit_frames: how far the counters may
 * go for this stack (7/8 of capacity for a full stack, all of it for a
 * caller-only one). Returns the id, or 0 when it does not fit.
 */
static uint32_t table_put(struct memscope_stack_table *t, const uint64_t *pcs, uint32_t n, uint64_t limit_ids,
                          uint64_t limit_frames)
{
    uint64_t *slots = (uint64_t *)(uintptr_t)t->slots;
    struct memscope_stack_entry *entries = (struct memscope_stack_entry *)(uintptr_t)t->entries;
    uint64_t *frames = (uint64_t *)(uintptr_t)t->frames;
    uint64_t mask = t->slot_count - 1;
    uint32_t h = hash_frames(pcs, n);
    uint64_t j = ((uint64_t)h * UINT64_C(0x9e3779b97f4a7c15)) >> 20;
    uint32_t id = 0;

    for (uint32_t probe = 0; probe < MEMSCOPE_STACK_PROBES; probe++, j++) {
        uint64_t *slot = &slots[j & mask];
        uint64_t v = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
        if (v != 0) {
            if ((uint32_t)(v >> 32) == h) {
                uint32_t vid = (uint32_t)v;
                const struct memscope_stack_entry *e = &entries[vid - 1];
                if (e->depth == n && frames_equal(&frames[e->first], pcs, n))
                    return vid;
            }
            continue;
        }
        /* An empty slot: the stack is new. Make its entry once, then try to publish it here. */
        if (id == 0) {
            /* Checked before the fetch-adds, so a full table's counters stay
             * near their limits instead of growing with every refused stack. */
            if (__atomic_load_n(&t->count, __ATOMIC_RELAXED) >= limit_ids ||
                __atomic_load_n(&t->frames_used, __ATOMIC_RELAXED) + n > limit_frames)
                return 0;
            uint64_t nid = __atomic_add_fetch(&t->count, 1, __ATOMIC_RELAXED);
            if (nid > limit_ids)
                return 0;
            uint64_t first = __atomic_fetch_add(&t->frames_used, n, __ATOMIC_RELAXED);
            if (first + n > limit_frames)
                return 0; /* the id stays unused (depth 0) */
            memcpy(&frames[first], pcs, n * sizeof(*pcs));
            entries[nid - 1].first = first;
            entries[nid - 1].hash = h;
            __atomic_store_n(&entries[nid - 1].depth, n, __ATOMIC_RELEASE);
            id = (uint32_t)nid;
        }
        uint64_t want = (uint64_t)h << 32 | id;
        if (__atomic_compare_exchange_n(slot, &v, want, 0, __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
            return id;
        /* Another thread took this slot first: look at what it put there. */
        if ((uint32_t)(v >> 32) == h) {
            uint32_t vid = (uint32_t)v;
            const struct memscope_stack_entry *e = &entries[vid - 1];
            if (e->depth == n && frames_equal(&frames[e->first], pcs, n))
                return vid; /* the same stack: ours stays as an unreferenced duplicate */
        }
    }
    return id; /* probes exhausted: 0, or a made entry (a valid id, unpublished) */
}

uint32_t ms_stack_capture(uint64_t ret, uintptr_t frame)
{
    uint32_t method;
    uint64_t pcs[MEMSCOPE_STACK_MAX_DEPTH], fps[MEMSCOPE_STACK_MAX_DEPTH];
    uint32_t n = 1, id;
    struct memscope_stack_table *t;
    int walked = 0, unwound = 0, cached = 0;
    uint64_t sp = (uint64_t)frame + 16; /* the caller's stack pointer: the hook's CFA */

    if (MS_UNLIKELY(!__atomic_load_n(&stack_configured, __ATOMIC_ACQUIRE))) {
        if (!early_state) {
            early_config();
            early_state = 1;
        }
        method = __atomic_load_n(&stack_method, __ATOMIC_RELAXED);
        if (method != MEMSCOPE_STACK_NONE)
            method = MEMSCOPE_STACK_CALLER; /* before the constructor: the caller only */
    } else {
        method = __atomic_load_n(&stack_method, __ATOMIC_RELAXED);
    }
    if (method == MEMSCOPE_STACK_NONE || ret < 4096)
        return 0;
    t = (struct memscope_stack_table *)(uintptr_t)__atomic_load_n(&memscope_store_root.stacks, __ATOMIC_ACQUIRE);
    if (MS_UNLIKELY(!t)) {
        t = make_table(); /* mmap only: no allocation to guard against */
        if (!t)
            return 0;
    }
    pcs[0] = ret;
    if (method != MEMSCOPE_STACK_CALLER && !sc_busy) {
        cached = 1;
        sc_enter();
        if (sc_debt)
            sc_debt--;
        struct ms_sc_entry *set = sc_set(ret, sp), *e = sc_find(set, ret, sp);
        if (e && e->state == SC_LEARNED && (id = e->kind == SC_FP ? sc_check_fp(e, sp) : sc_check(e, sp)) != 0) {
            if (!e->hot)
                sc_touch(set, e);
            sc_leave();
            return id;
        }
        sc_leave();
    }
    if (method == MEMSCOPE_STACK_FP || method == MEMSCOPE_STACK_AUTO) {
        n = walk_fp(frame, pcs, fps, stack_depth, &walked);
#ifdef MS_WITH_LIBUNWIND
        if (!walked && method == MEMSCOPE_STACK_AUTO) {
            n = walk_unwind(ret, pcs, stack_depth);
            unwound = 1;
        }
#endif
    }
#ifdef MS_WITH_LIBUNWIND
    else if (method == MEMSCOPE_STACK_UNWIND) {
        n = walk_unwind(ret, pcs, stack_depth);
        unwound = 1;
    }
#endif
    id = table_put(t, pcs, n, t->capacity - t->capacity / 8, t->frame_capacity - t->frame_capacity / 8);
    if (MS_LIKELY(id != 0)) {
        /* Only a whole stack (not a signal handler's caller-only one, not a broken chain) is remembered. */
        if (cached && n > 1 && !sc_busy) {
            sc_enter();
#ifdef MS_WITH_LIBUNWIND
            if (unwound)
                sc_note(t, sp, pcs, n, id, n < stack_depth);
            else
#endif
            if (walked)
                sc_note_fp(t, sp, pcs, fps, n, id);
            sc_leave();
        }
        return id;
    }
    /* Full (or a probe run too long): the caller alone, in the reserve kept for it. */
    if ((id = table_put(t, pcs, 1, t->capacity, t->frame_capacity)) != 0) {
        if (n > 1)
            __atomic_fetch_add(&t->truncated, 1, __ATOMIC_RELAXED);
        return id;
    }
    __atomic_fetch_add(&t->lost, 1, __ATOMIC_RELAXED);
    return 0;
}
