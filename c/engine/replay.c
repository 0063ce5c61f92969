/*
 * replay.c - replays a history's events up to a point into a snapshot.
 *
 * The rules (DESIGN.md "Semantics"):
 *   ALLOC          the block becomes live, charged to the allocating thread.
 *   FREE           the live block leaves; its bytes leave the *allocating*
 *                  thread's live figures, the freeing thread's deallocation
 *                  count grows. A free of an address not live is unmatched.
 *   REALLOC_FREE   as FREE, and the block is kept aside for its thread.
 *   REALLOC_ALLOC  the new block arrives (same address or not), takes the
 *                  label of the block set aside, and counts one reallocation.
 *   REALLOC_UNDO   the realloc failed: the block set aside is live again,
 *                  and the release is taken back out of every figure.
 *   LABEL          names the live block at address.  MARK names a point.
 * Peak is the highest live byte total after any event, with the time it was
 * first reached; the same per thread.
 *
 * Clock anomaly: the runtime's timestamps are not fenced, so a release by one
 * thread and the reuse of that address by another may sort a few ns out of
 * order. An allocation at an address still live therefore first looks ahead
 * (MS_LOOKAHEAD_EVENTS events within MS_LOOKAHEAD_NS) for a release of that
 * address by another thread and applies it first. With none, the old block is
 * taken as released and the event counts in stats.overlapping_allocations.
 *
 * Live blocks sit in an open-addressing table keyed by address (groups of 8
 * slots probed through their control bytes, see struct table) and grown by
 * doubling; the slot of an event a few places ahead is prefetched to hide
 * cache misses.
 *
 * At the peak: when the peak was first reached is known only once the whole
 * history is replayed, so the snapshot there used to take two replays (one to
 * find the peak, one up to it). The at-peak replay (struct keep) goes once to
 * the end and keeps what it needs to give back the state of the latest new
 * peak: the figures, copied at each new peak (a few words); each thread's
 * figures, copied the first time they change after it; and each block live
 * at it, set aside the first time it is released or relabelled after it.
 * Blocks carry the generation (one per new peak) they were born or changed
 * in, so the blocks live at the peak are those of the table from older
 * generations plus those set aside. What is set aside is bounded by the
 * blocks live at the peak, which the table held at once; it is capped (see
 * keep_gone) and past the cap the snapshot is taken by a second replay.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define MS_LOOKAHEAD_EVENTS 64
#define MS_LOOKAHEAD_NS 10000u
#define MS_TABLE_NEAR 16384u /* slots: a smaller table (640 KiB) stays in cache, prefetching it costs more than it saves */
#define MS_PREFETCH_AHEAD 48 /* events; measured: 32-64 beat 16 by ~7%, 8 is slower */
#define HOT static inline __attribute__((always_inline))
#define COLD static __attribute__((noinline, cold))

#define slot ms_live /* internal.h: the checkpoint's blocks have the table's layout */

/*
 * The at-peak replay's bookkeeping (see the file comment): the state right
 * after the latest new peak's event is the replay's, except for what changed
 * since, which is kept here as it was.
 */
struct keep {
    uint32_t gen;                        /* the current generation, one more at each new peak */
    int lost;                            /* since the latest peak, gone overflowed: that state is not kept */
    int wrapped;                         /* gen wrapped (2^32 peaks): no state is kept */
    struct memscope_stats st;            /* the figures right after the latest peak's event */
    struct slot *gone;                   /* blocks live at the latest peak, as they were, since released or relabelled */
    size_t ngone;                        /* entries */
    size_t capgone;                      /* entries allocated */
    size_t max;                          /* most entries gone may hold (keep_gone) */
    uint32_t *th_gen;                    /* per dense thread: the generation th_at was taken in */
    struct memscope_thread_stats *th_at; /* per dense thread: its figures at the latest peak, when th_gen == gen */
    uint8_t *seen_at;                    /* per dense thread: its seen flag then, likewise */
};

/* A block a REALLOC_FREE set aside, per thread. */
struct stash {
    struct slot block; /* the released block (address 0: it was not live) */
    uint32_t freer;    /* dense index of the releasing thread */
    uint8_t pending;   /* a REALLOC_FREE awaits its REALLOC_ALLOC or UNDO */
};

/*
 * The table: slots in groups of MS_GROUP, one control byte per slot (0: empty,
 * else 0x80 | 7 bits of the address's hash), probed a group at a time. A
 * group's control bytes are one 64-bit word: the slots that may hold an
 * address, or are empty, come out of a few word operations, so finding a
 * block, or the free slot for a new one, takes no branch that depends on how
 * full the neighbourhood is (the mispredicted exits of a linear probe were
 * most of the replay's cost). A group keeps a count of the insertions that
 * found it full and went on to the next group: a search stops at a group
 * whose count is 0, so a removal just empties its slot (no tombstones, no
 * shifting). Counts saturate at 255 and then stay (searches go on a little
 * further, still correct) until the table grows. Within its group, a block
 * goes to the first free slot from a position its hash picks, so the slot
 * line prefetched ahead is usually the one the event needs.
 */
#define MS_GROUP 8u
#define MS_GROUP_SHIFT 3u
#define HI_BITS UINT64_C(0x8080808080808080)
#define LO_BITS UINT64_C(0x7f7f7f7f7f7f7f7f)
#define ONE_BYTES UINT64_C(0x0101010101010101)

/* Grow past a load of 1/2: groups of 8 then rarely overflow (measured: 5/8
 * and 3/4 replay slower, 3/8 no faster). */
#define TABLE_FULL(t) (((t)->used + 1) * 8 > ((t)->mask + 1) * 4)

struct table {
    struct slot *slots; /* cap entries; address 0: empty */
    uint8_t *ctrl;      /* cap control bytes, then per group its overflow count */
    size_t mask;        /* cap - 1 */
    size_t gmask;       /* groups - 1 */
    size_t used;        /* live entries */
};

static inline uint64_t addr_hash(uint64_t a)
{
    return a * UINT64_C(0x9e3779b97f4a7c15);
}

static inline size_t home_group(uint64_t h, size_t gmask)
{
    return (size_t)(h >> 24) & gmask;
}

static inline uint8_t hash_tag(uint64_t h)
{
    return (uint8_t)(0x80u | (h >> 57));
}

/* Position within the group where a block's search for a free slot starts. */
static inline unsigned hash_pos(uint64_t h)
{
    return (unsigned)(h >> 54) & (MS_GROUP - 1);
}

static inline uint64_t group_word(const struct table *t, size_t g)
{
    uint64_t w;
    memcpy(&w, t->ctrl + (g << MS_GROUP_SHIFT), sizeof(w));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w); /* byte i of the group in bits 8i..8i+7 */
#endif
    return w;
}

static inline uint8_t *group_over(const struct table *t, size_t g)
{
    return t->ctrl + (t->mask + 1) + g;
}

/* Bit 8i+7 set where control byte i equals tag (exact: no false positive). */
static inline uint64_t match_tag(uint64_t w, uint8_t tag)
{
    uint64_t x = w ^ (ONE_BYTES * tag);
    return ~(((x & LO_BITS) + LO_BITS) | x | LO_BITS);
}

static inline uint64_t match_empty(uint64_t w)
{
    return ~w & HI_BITS;
}

/* The first set byte of m at or after position pos, cyclically; pos itself
 * when m is 0 (no branch either way). */
static inline unsigned first_from(uint64_t m, unsigned pos)
{
    unsigned sh = pos * 8;
    uint64_t r = (m >> sh) | (m << ((64 - sh) & 63)); /* rotate right */
    return ((unsigned)__builtin_ctzll(r | (UINT64_C(1) << 63)) / 8 + (r == 0) + pos) & (MS_GROUP - 1);
}

static int table_alloc(struct table *t, size_t cap)
{
    t->slots = cap > SIZE_MAX / sizeof(*t->slots) ? NULL : ms_engine_big_alloc(cap * sizeof(*t->slots), 1);
    t->ctrl = t->slots ? ms_engine_big_alloc(cap + cap / MS_GROUP, 1) : NULL;
    if (!t->ctrl) {
        ms_engine_big_free(t->slots);
        t->slots = NULL;
        return -ENOMEM;
    }
    t->mask = cap - 1;
    t->gmask = cap / MS_GROUP - 1;
    t->used = 0;
    return 0;
}

static void table_free(struct table *t)
{
    ms_engine_big_free(t->slots);
    ms_engine_big_free(t->ctrl);
    t->slots = NULL;
    t->ctrl = NULL;
}

/* A free slot for address a (known absent): its control byte is set. */
HOT struct slot *table_claim(struct table *t, uint64_t a)
{
    uint64_t h = addr_hash(a);
    size_t g = home_group(h, t->gmask);

    for (;;) {
        uint64_t e = match_empty(group_word(t, g));
        if (__builtin_expect(e != 0, 1)) {
            size_t i = (g << MS_GROUP_SHIFT) + first_from(e, hash_pos(h));
            t->ctrl[i] = hash_tag(h);
            t->used++;
            return &t->slots[i];
        }
        if (*group_over(t, g) < 255)
            (*group_over(t, g))++;
        g = (g + 1) & t->gmask;
    }
}

static int table_init(struct table *t, size_t cap)
{
    return table_alloc(t, cap);
}

COLD int table_grow(struct table *t)
{
    struct table n;
    size_t i;

    if (t->mask + 1 > SIZE_MAX / 2 || table_alloc(&n, (t->mask + 1) * 2) != 0)
        return -ENOMEM;
    for (i = 0; i <= t->mask; i++)
        if (t->slots[i].address)
            *table_claim(&n, t->slots[i].address) = t->slots[i];
    table_free(t);
    *t = n;
    return 0;
}

HOT struct slot *table_find(struct table *t, uint64_t a)
{
    uint64_t h = addr_hash(a);
    size_t g = home_group(h, t->gmask);
    uint8_t tag = hash_tag(h);

    if (__builtin_expect(a == 0, 0)) /* 0 marks empty slots; no block lives there */
        return NULL;
    for (;;) {
        uint64_t m = match_tag(group_word(t, g), tag);
        while (m) {
            struct slot *s = &t->slots[(g << MS_GROUP_SHIFT) + (unsigned)__builtin_ctzll(m) / 8];
            if (__builtin_expect(s->address == a, 1))
                return s;
            m &= m - 1;
        }
        if (__builtin_expect(*group_over(t, g) == 0, 1))
            return NULL;
        g = (g + 1) & t->gmask;
    }
}

/* Removes the entry at s: its slot is emptied, and the groups its insertion
 * passed over count one overflow less. */
HOT void table_remove(struct table *t, struct slot *s)
{
    size_t i = (size_t)(s - t->slots), gi = i >> MS_GROUP_SHIFT;
    size_t g = home_group(addr_hash(s->address), t->gmask);

    for (; __builtin_expect(g != gi, 0); g = (g + 1) & t->gmask)
        if (*group_over(t, g) < 255)
            (*group_over(t, g))--;
    t->ctrl[i] = 0;
    s->address = 0;
    t->used--;
}

/* Inserts a block whose address is not present. */
HOT int table_insert(struct table *t, const struct slot *b)
{
    if (TABLE_FULL(t) && table_grow(t) != 0)
        return -ENOMEM;
    *table_claim(t, b->address) = *b;
    return 0;
}

struct replay {
    const struct memscope_history *h;
    struct table live;                 /* live blocks */
    struct memscope_stats st;          /* summary figures */
    struct memscope_thread_stats *th;  /* per dense thread */
    uint8_t *seen;                     /* per dense thread: recorded an event */
    struct stash *stash;               /* per dense thread */
    uint64_t peak_events;              /* events replayed when the peak was first reached */
    uint64_t skip[MS_LOOKAHEAD_EVENTS];/* events applied early by the look-ahead */
    unsigned nskip;                    /* entries in skip */
    ms_replay_fn each;                 /* called after each event (ms_replay_each), or NULL */
    void *each_arg;                    /* its argument */
    struct keep *keep;                 /* the at-peak replay's bookkeeping, or NULL */
};

/*
 * The at-peak replay's hooks. The functions below take `keep` as a constant
 * (the at-peak replay is run_events instantiated with keep = 1), so the other
 * replays carry none of this; the cold paths test r->keep.
 */

/* Thread t's figures (or seen flag) are about to change: the first change
 * since the latest peak copies them. */
HOT void keep_thread(struct replay *r, uint32_t t)
{
    struct keep *k = r->keep;

    if (__builtin_expect(k->th_gen[t] != k->gen, 0)) {
        k->th_gen[t] = k->gen;
        k->th_at[t] = r->th[t];
        k->seen_at[t] = r->seen[t];
    }
}

/*
 * Sets block s aside as it is (it was live at the latest peak and is about to
 * be released or relabelled). gone holds at most k->max entries, and never
 * more than half the live table's slots: at most the blocks live at the peak,
 * which the table held at once, so this cannot make the replay need more than
 * about half again its table's memory. Past the cap, or when memory runs out,
 * the peak's state is lost (a second replay takes the snapshot).
 */
COLD void keep_gone(struct replay *r, const struct slot *s)
{
    struct keep *k = r->keep;
    size_t max = k->max < (r->live.mask + 1) / 2 ? k->max : (r->live.mask + 1) / 2;

    if (k->lost)
        return;
    if (k->ngone >= max) {
        k->lost = 1;
        return;
    }
    if (k->ngone == k->capgone) {
        size_t cap = k->capgone ? k->capgone * 2 : 1024;
        struct slot *g;
        if (cap > max)
            cap = max;
        g = ms_engine_realloc(k->gone, cap * sizeof(*g));
        if (!g) {
            k->lost = 1;
            return;
        }
        k->gone = g;
        k->capgone = cap;
    }
    k->gone[k->ngone++] = *s;
}

/* Block s is about to be released or changed: set aside if it was live at the latest peak. */
HOT void keep_block(struct replay *r, const struct slot *s)
{
    if (__builtin_expect(s->gen != r->keep->gen, 0))
        keep_gone(r, s);
}

/* A new peak: the current state becomes the one kept. Frequent while memory
 * climbs (every allocation may be one), so it costs a copy of the figures and
 * no more: the threads and blocks are copied lazily, on change. */
static void keep_peak(struct replay *r)
{
    struct keep *k = r->keep;

    k->st = r->st;
    k->ngone = 0;
    k->lost = k->wrapped;
    if (__builtin_expect(++k->gen == 0, 0))
        k->lost = k->wrapped = 1; /* generations would repeat */
}

HOT void grew(struct replay *r, const struct ms_event *e, uint64_t index, uint32_t owner, const int keep)
{
    struct memscope_thread_stats *o = &r->th[owner];

    if (r->st.current_memory > r->st.peak_memory) {
        r->st.peak_memory = r->st.current_memory;
        r->st.peak_time_ns = e->time;
        r->peak_events = index + 1;
        if (keep)
            keep_peak(r);
    }
    if (o->current_memory > o->peak_memory) {
        o->peak_memory = o->current_memory;
        o->peak_time_ns = e->time;
    }
}

/* Takes live block s out as released by thread freer (the caller removes it from the table). */
HOT void release(struct replay *r, struct slot *s, uint32_t freer, const int keep)
{
    struct memscope_thread_stats *o = &r->th[s->thread];

    if (keep) {
        keep_block(r, s);
        keep_thread(r, s->thread);
        keep_thread(r, freer);
    }
    r->st.total_deallocations++;
    r->st.total_deallocated += s->size;
    r->st.current_memory -= s->size;
    o->released_bytes += s->size;
    o->current_memory -= s->size;
    o->live_blocks--;
    r->th[freer].deallocations++;
}

HOT void apply_release(struct replay *r, const struct ms_event *e, const int keep);

/* An allocation met a live block at the same address (see the file comment). */
COLD void resolve_overlap(struct replay *r, uint64_t index, const struct ms_event *e, struct slot *old)
{
    const struct memscope_history *h = r->h;
    uint32_t t = MS_EV_THREAD(e->info);
    uint64_t j, end = index + 1 + MS_LOOKAHEAD_EVENTS;

    if (end > h->nevents)
        end = h->nevents;
    for (j = index + 1; j < end && r->nskip < MS_LOOKAHEAD_EVENTS; j++) {
        const struct ms_event *f = &h->events[j];
        unsigned k = MS_EV_KIND(f->info);
        if (f->time - e->time > MS_LOOKAHEAD_NS)
            break;
        if ((k == MEMSCOPE_REC_FREE || k == MEMSCOPE_REC_REALLOC_FREE) && f->address == e->address &&
            MS_EV_THREAD(f->info) != t) {
            unsigned q;
            for (q = 0; q < r->nskip; q++)
                if (r->skip[q] == j)
                    break;
            if (q < r->nskip)
                continue; /* already applied early */
            r->skip[r->nskip++] = j;
            if (r->keep) {
                keep_thread(r, MS_EV_THREAD(f->info));
                r->seen[MS_EV_THREAD(f->info)] = 1;
                apply_release(r, f, 1);
            } else {
                r->seen[MS_EV_THREAD(f->info)] = 1;
                apply_release(r, f, 0);
            }
            return;
        }
    }
    r->st.overlapping_allocations++;
    if (r->keep)
        release(r, old, old->thread, 1);
    else
        release(r, old, old->thread, 0);
    r->th[old->thread].deallocations--; /* nobody freed it: no thread's free count grows */
    table_remove(&r->live, old);
}

/* The block an allocation event makes live, from thread t, with a label
 * (and, in the at-peak replay, the current generation). */
HOT void slot_fill(struct replay *r, struct slot *s, const struct ms_event *e, uint32_t t, uint32_t label,
                   const int keep)
{
    s->address = e->address;
    s->size = e->size;
    s->time = e->time;
    s->thread = t;
    s->label = label;
    s->stack = e->stack;
    if (keep)
        s->gen = r->keep->gen;
}

HOT int apply_alloc(struct replay *r, uint64_t index, const struct ms_event *e, uint32_t label, const int keep)
{
    uint32_t t = MS_EV_THREAD(e->info);
    struct memscope_thread_stats *o = &r->th[t];
    struct table *tb = &r->live;
    struct slot *s;

    if (__builtin_expect(e->address == 0, 0))
        return 0;
    if (__builtin_expect(TABLE_FULL(tb), 0) && table_grow(tb) != 0)
        return -ENOMEM;
    s = table_find(tb, e->address);
    if (__builtin_expect(s != NULL, 0)) {
        struct slot b;
        resolve_overlap(r, index, e, s);
        slot_fill(r, &b, e, t, label, keep);
        if (table_insert(tb, &b) != 0)
            return -ENOMEM;
    } else {
        slot_fill(r, table_claim(tb, e->address), e, t, label, keep);
    }
    r->st.total_allocations++;
    r->st.total_allocated += e->size;
    r->st.current_memory += e->size;
    o->allocations++;
    o->allocated_bytes += e->size;
    o->current_memory += e->size;
    o->live_blocks++;
    grew(r, e, index, t, keep);
    return 0;
}

HOT void apply_release(struct replay *r, const struct ms_event *e, const int keep)
{
    uint32_t t = MS_EV_THREAD(e->info);
    struct slot *s = table_find(&r->live, e->address);
    struct stash *st = &r->stash[t];

    if (MS_EV_KIND(e->info) == MEMSCOPE_REC_REALLOC_FREE) {
        st->pending = 1;
        st->freer = t;
        if (s)
            st->block = *s;
        else
            memset(&st->block, 0, sizeof(st->block)); /* nothing to restore, no label to carry */
    }
    if (!s) {
        r->st.unmatched_deallocations++;
        return;
    }
    release(r, s, t, keep);
    table_remove(&r->live, s);
}

COLD int apply_undo(struct replay *r, uint64_t index, const struct ms_event *e)
{
    uint32_t t = MS_EV_THREAD(e->info);
    struct stash *st = &r->stash[t];
    struct slot *b = &st->block;
    struct memscope_thread_stats *o;
    struct slot *old;

    if (!st->pending)
        return 0;
    st->pending = 0;
    if (b->address == 0) { /* the released address was not live: take the unmatched count back */
        if (r->st.unmatched_deallocations)
            r->st.unmatched_deallocations--;
        return 0;
    }
    old = table_find(&r->live, b->address);
    if (old) { /* cannot happen in a sane store: the newer block wins */
        r->st.overlapping_allocations++;
        return 0;
    }
    if (r->keep) {
        keep_thread(r, b->thread);
        keep_thread(r, st->freer);
    }
    b->gen = r->keep ? r->keep->gen : 0; /* live again since the latest peak (if it was live at it, it was set aside) */
    if (table_insert(&r->live, b) != 0)
        return -ENOMEM;
    o = &r->th[b->thread];
    r->st.total_deallocations--;
    r->st.total_deallocated -= b->size;
    r->st.current_memory += b->size;
    o->released_bytes -= b->size;
    o->current_memory += b->size;
    o->live_blocks++;
    r->th[st->freer].deallocations--;
    if (r->keep)
        grew(r, e, index, b->thread, 1);
    else
        grew(r, e, index, b->thread, 0);
    return 0;
}

/* Replays events [0, n); keep (a constant): the at-peak replay's bookkeeping too. */
HOT int run_events(struct replay *r, uint64_t n, const int keep)
{
    const struct ms_event *ev = r->h->events;
    uint64_t i;
    int rc = 0;

    for (i = 0; i < n; i++) {
        const struct ms_event *e = &ev[i];
        uint32_t t = MS_EV_THREAD(e->info);

        if (r->live.mask >= MS_TABLE_NEAR && i + MS_PREFETCH_AHEAD < n) {
            /* The group's control word, and the slot line where the block's
             * search for a free slot started (usually where it is). */
            uint64_t h = addr_hash(ev[i + MS_PREFETCH_AHEAD].address);
            size_t g = home_group(h, r->live.gmask);
            __builtin_prefetch(r->live.ctrl + (g << MS_GROUP_SHIFT));
            const char *sl = (const char *)&r->live.slots[(g << MS_GROUP_SHIFT) + hash_pos(h)];
            __builtin_prefetch(sl);
            __builtin_prefetch(sl + sizeof(struct slot) - 1); /* a slot may straddle two lines */
        }
        if (__builtin_expect(r->nskip > 0, 0)) {
            unsigned q;
            for (q = 0; q < r->nskip; q++)
                if (r->skip[q] == i)
                    break;
            if (q < r->nskip) { /* applied early by the look-ahead */
                r->skip[q] = r->skip[--r->nskip];
                continue;
            }
        }
        if (keep)
            keep_thread(r, t);
        r->seen[t] = 1;
        switch (MS_EV_KIND(e->info)) {
        case MEMSCOPE_REC_ALLOC:
            rc = apply_alloc(r, i, e, 0, keep);
            break;
        case MEMSCOPE_REC_FREE:
        case MEMSCOPE_REC_REALLOC_FREE:
            apply_release(r, e, keep);
            break;
        case MEMSCOPE_REC_REALLOC_ALLOC: {
            struct stash *st = &r->stash[t];
            uint32_t label = st->pending ? st->block.label : 0;
            st->pending = 0;
            r->st.reallocations++;
            rc = apply_alloc(r, i, e, label, keep);
            break;
        }
        case MEMSCOPE_REC_REALLOC_UNDO:
            rc = apply_undo(r, i, e);
            break;
        case MEMSCOPE_REC_LABEL: {
            struct slot *s = table_find(&r->live, e->address);
            if (s && e->address) {
                if (keep) {
                    keep_block(r, s);
                    s->gen = r->keep->gen;
                }
                s->label = (uint32_t)e->size + 1;
            }
            break;
        }
        default: /* MARK */
            break;
        }
        if (rc != 0)
            return rc;
        if (__builtin_expect(r->each != NULL, 0))
            r->each(r->each_arg, i, e, &r->st);
    }
    return 0;
}

static int run(struct replay *r, uint64_t n)
{
    return run_events(r, n, 0);
}

static int run_keep(struct replay *r, uint64_t n)
{
    return run_events(r, n, 1);
}

/*
 * Sorts blocks by address: an LSD radix sort on 11-bit digits (histograms of
 * all six digits in one pass; a digit every address shares costs no pass).
 * tmp holds n blocks. Addresses are unique, so stability does not matter.
 */
#define RADIX_BITS 11
#define RADIX_DIGITS 6 /* 6 * 11 >= 64 */
static void sort_blocks(struct ms_block *a, size_t n, struct ms_block *tmp)
{
    static const size_t buckets = (size_t)1 << RADIX_BITS;
    uint32_t hist[RADIX_DIGITS][(size_t)1 << RADIX_BITS];
    struct ms_block *src = a, *dst = tmp, *x;
    size_t i;
    unsigned d;

    for (i = 1; i < n; i++)
        if (a[i].address < a[i - 1].address)
            break;
    if (i >= n || n > UINT32_MAX)
        return; /* sorted already (or absurdly many: left in table order) */
    memset(hist, 0, sizeof(hist));
    for (i = 0; i < n; i++)
        for (d = 0; d < RADIX_DIGITS; d++)
            hist[d][(a[i].address >> (d * RADIX_BITS)) & (buckets - 1)]++;
    for (d = 0; d < RADIX_DIGITS; d++) {
        uint32_t sum = 0, c;
        unsigned shift = d * RADIX_BITS;
        size_t b;
        if (hist[d][(a[0].address >> shift) & (buckets - 1)] == n)
            continue; /* every address has this digit */
        for (b = 0; b < buckets; b++) {
            c = hist[d][b];
            hist[d][b] = sum;
            sum += c;
        }
        for (i = 0; i < n; i++)
            dst[hist[d][(src[i].address >> shift) & (buckets - 1)]++] = src[i];
        x = src;
        src = dst;
        dst = x;
    }
    if (src != a)
        memcpy(a, src, n * sizeof(*a));
}

uint64_t ms_threads_seen(const struct memscope_history *h, const uint8_t *seen)
{
    uint64_t n = 0;

    for (uint32_t i = 0; i < h->nthreads; i++)
        if (seen[i])
            n += h->threads[i].serial == 0 ? h->ck.merged : 1;
    return n;
}

/*
 * What a snapshot is built from: a finished replay's figures and live table,
 * or what the at-peak replay kept of the peak (its table less the blocks of
 * the current generation, and the blocks it set aside).
 */
struct state {
    struct memscope_stats st;               /* summary figures (active_allocations, threads, dropped set here) */
    const struct memscope_thread_stats *th; /* per dense thread */
    const uint8_t *seen;                    /* per dense thread: recorded an event */
    const struct table *live;               /* live blocks */
    int skip;                               /* leave out live's blocks of generation gen */
    uint32_t gen;                           /* that generation */
    const struct slot *more;                /* blocks besides live's */
    size_t nmore;                           /* entries in more */
};

/* The state a finished replay leaves. */
static struct state state_of(const struct replay *r)
{
    struct state x = {r->st, r->th, r->seen, &r->live, 0, 0, NULL, 0};
    return x;
}

/* Copies block sl into b; a valid label is left as its text index + 1, marked in labelmap. */
static void put_block(const struct memscope_history *h, const struct slot *sl, struct ms_block *b, uint32_t *labelmap)
{
    b->address = sl->address;
    b->size = sl->size;
    b->time = sl->time;
    b->thread = h->threads[sl->thread].serial;
    b->label = 0;
    b->stack = sl->stack;
    if (sl->label && sl->label <= h->ntexts) {
        b->label = sl->label;
        labelmap[sl->label] = 1;
    }
}

/*
 * Builds the snapshot object from state x. Labels are numbered in the order
 * of their texts, not in the order the table happens to hold their blocks:
 * the same blocks give the same snapshot however the table came to hold them.
 */
static int build_snapshot(const struct memscope_history *h, struct state *x, enum memscope_point_kind kind,
                          struct memscope_snapshot **out)
{
    const struct table *live = x->live;
    struct memscope_snapshot *s = NULL;
    struct ms_block *tmp = NULL;
    uint32_t *labelmap = NULL;
    size_t i, k, nlabels = 1, pool_len = 0, nthreads = 0;
    int rc = -ENOMEM;

    s = ms_engine_calloc(1, sizeof(*s));
    if (!s)
        goto fail;
    for (i = 0; i < h->nthreads; i++)
        nthreads += x->seen[i] != 0;
    x->st.threads = ms_threads_seen(h, x->seen); /* the exited threads' row counts as the threads it holds */
    x->st.dropped_events = h->dropped_events;
    s->point_kind = kind;
    s->pid = h->pid;
    s->threads = ms_engine_calloc(nthreads ? nthreads : 1, sizeof(*s->threads));
    s->blocks = ms_engine_big_alloc((live->used + x->nmore) * sizeof(*s->blocks), 0);
    labelmap = ms_engine_calloc(h->ntexts + 1, sizeof(*labelmap));
    if (!s->threads || !s->blocks || !labelmap)
        goto fail;
    for (i = 0, k = 0; i < h->nthreads; i++) {
        if (!x->seen[i])
            continue;
        s->threads[k] = x->th[i];
        s->threads[k].thread = h->threads[i].serial;
        s->threads[k].tid = h->threads[i].tid;
        k++;
    }
    s->nthreads = nthreads;
    s->merged = nthreads && h->threads[0].serial == 0 && x->seen[0] ? h->ck.merged : 0;
    /* Live blocks, and the labels they use (label = text index + 1). */
    for (i = 0, k = 0; i <= live->mask; i++) {
        const struct slot *sl = &live->slots[i];
        if (sl->address && !(x->skip && sl->gen == x->gen))
            put_block(h, sl, &s->blocks[k++], labelmap);
    }
    for (i = 0; i < x->nmore; i++)
        put_block(h, &x->more[i], &s->blocks[k++], labelmap);
    for (i = 1; i <= h->ntexts; i++) {
        const struct ms_text *t = &h->texts[i - 1];
        if (!labelmap[i])
            continue;
        labelmap[i] = (uint32_t)nlabels++;
        pool_len += strlen(h->pool + t->name) + 1 + strlen(h->pool + t->type) + 1;
    }
    if (nlabels > 1)
        for (i = 0; i < k; i++)
            s->blocks[i].label = labelmap[s->blocks[i].label];
    s->nblocks = k;
    x->st.active_allocations = k;
    s->stats = x->st;
    s->labels = ms_engine_calloc(nlabels, sizeof(*s->labels));
    s->pool = ms_engine_alloc(pool_len ? pool_len : 1);
    tmp = ms_engine_big_alloc(k * sizeof(*tmp), 0);
    if (!s->labels || !s->pool || !tmp)
        goto fail;
    s->nlabels = nlabels;
    {
        size_t off = 0;
        for (i = 1; i <= h->ntexts; i++) {
            const struct ms_text *t;
            size_t ln, lt;
            if (!labelmap[i])
                continue;
            t = &h->texts[i - 1];
            ln = strlen(h->pool + t->name) + 1;
            lt = strlen(h->pool + t->type) + 1;
            memcpy(s->pool + off, h->pool + t->name, ln);
            s->labels[labelmap[i]].name = s->pool + off;
            off += ln;
            memcpy(s->pool + off, h->pool + t->type, lt);
            s->labels[labelmap[i]].type = s->pool + off;
            off += lt;
        }
    }
    sort_blocks(s->blocks, k, tmp);
    ms_engine_big_free(tmp);
    tmp = NULL;
    if (ms_stacks_copy(&s->stacks, &h->stacks) != 0) /* stacks.c */
        goto fail;
    ms_engine_free(labelmap);
    s->magic = MS_SNAPSHOT_MAGIC;
    *out = s;
    return 0;
fail:
    ms_engine_big_free(tmp);
    ms_engine_free(labelmap);
    if (s) {
        ms_engine_free(s->threads);
        ms_engine_big_free(s->blocks);
        ms_engine_free(s->labels);
        ms_engine_free(s->pool);
        ms_engine_free(s);
    }
    return rc;
}

static void replay_free(struct replay *r)
{
    table_free(&r->live);
    ms_engine_free(r->th);
    ms_engine_free(r->seen);
    ms_engine_free(r->stash);
    memset(r, 0, sizeof(*r));
}

/*
 * The live table starts large enough for the blocks live at the end (or the
 * events replayed, if fewer), so it seldom grows: each doubling faults in a
 * new table and moves every block (~9% of a replay).
 */
static size_t table_start(const struct memscope_history *h, uint64_t n)
{
    uint64_t want = h->live_hint < n + h->ck.nblocks ? h->live_hint : n + h->ck.nblocks;
    size_t cap = 1024;

    while (cap < (UINT64_C(1) << 40) && (want + 1) * 8 > (uint64_t)cap * 4) /* TABLE_FULL's load */
        cap *= 2;
    return cap;
}

static int replay_init(struct replay *r, const struct memscope_history *h, uint64_t n)
{
    size_t nt = h->nthreads ? h->nthreads : 1;

    memset(r, 0, sizeof(*r));
    r->h = h;
    r->th = ms_engine_calloc(nt, sizeof(*r->th));
    r->seen = ms_engine_calloc(nt, 1);
    r->stash = ms_engine_calloc(nt, sizeof(*r->stash));
    if (!r->th || !r->seen || !r->stash || table_init(&r->live, table_start(h, n)) != 0) {
        replay_free(r);
        return -ENOMEM;
    }
    if (h->ck.present) { /* start from the checkpoint */
        const struct ms_checkpoint *ck = &h->ck;
        uint64_t i;
        r->st = ck->st;
        memcpy(r->th, ck->th, nt * sizeof(*r->th));
        for (i = 0; i < h->nthreads; i++) {
            r->seen[i] = ck->in[i];
            r->stash[i].pending = ck->stash[i];
            r->stash[i].freer = (uint32_t)i;
            r->stash[i].block = ck->stash_block[i];
        }
        for (i = 0; i < ck->nblocks; i++) {
            struct slot b = ck->blocks[i];
            if (table_find(&r->live, b.address)) /* a duplicate: the reader let it through */
                continue;
            b.gen = 0; /* live before any event: the at-peak replay's first generation is 1 */
            if (table_insert(&r->live, &b) != 0) {
                replay_free(r);
                return -ENOMEM;
            }
        }
    }
    return 0;
}

int64_t ms_checkpoint_find_mark(const struct memscope_history *h, const char *name)
{
    uint64_t i;

    for (i = 0; i < h->ck.nmarks; i++) {
        uint32_t t = h->ck.marks[i].text;
        if (t != MS_TEXT_UNREADABLE && t < h->ntexts && strcmp(h->pool + h->texts[t].name, name) == 0)
            return (int64_t)i;
    }
    return -1;
}

int ms_history_valid(const struct memscope_history *h)
{
    return h && h->magic == MS_HISTORY_MAGIC;
}

/* Events at or before time t (events are in time order). */
static uint64_t events_until(const struct memscope_history *h, uint64_t t)
{
    uint64_t lo = 0, hi = h->nevents;

    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (h->events[mid].time <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int ms_history_find_point(const struct memscope_history *h, const struct memscope_point *at, uint64_t *n,
                          uint64_t *time_ns)
{
    uint64_t last = h->nevents ? h->events[h->nevents - 1].time : 0;
    uint64_t i;

    switch (at->kind) {
    case MEMSCOPE_AT_END:
        *n = h->nevents;
        *time_ns = last;
        return 0;
    case MEMSCOPE_AT_TIME:
        if (at->value > last && !(h->nevents == 0 && h->ck.present && at->value <= h->ck.horizon_ns))
            return -ERANGE;
        if (h->ck.present && at->value < h->ck.horizon_ns)
            return -ERANGE; /* folded away: the horizon is in memscope_history_info */
        *n = events_until(h, at->value);
        *time_ns = at->value;
        return 0;
    case MEMSCOPE_AT_EVENT: {
        uint64_t folded = h->ck.folded_events; /* event numbers count the folded ones */
        if (at->value > folded + h->nevents || (h->ck.present && at->value < folded))
            return -ERANGE;
        *n = at->value - folded;
        *time_ns = *n ? h->events[*n - 1].time : (h->ck.present ? h->ck.horizon_ns : 0);
        return 0;
    }
    case MEMSCOPE_AT_MARK:
        if (!at->mark)
            return -EINVAL;
        if (ms_checkpoint_find_mark(h, at->mark) >= 0)
            return -ERANGE; /* the first mark of that name was folded: it lies before the horizon */
        for (i = 0; i < h->nevents; i++) {
            const struct ms_event *e = &h->events[i];
            if (MS_EV_KIND(e->info) == MEMSCOPE_REC_MARK && e->size != MS_TEXT_UNREADABLE &&
                strcmp(h->pool + h->texts[e->size].name, at->mark) == 0) {
                *n = i + 1;
                *time_ns = e->time;
                return 0;
            }
        }
        return -ENOENT;
    default:
        return -EINVAL;
    }
}

int ms_replay_each(const struct memscope_history *h, uint64_t n, ms_replay_fn fn, void *arg, struct memscope_stats *out)
{
    struct replay r;
    int rc = replay_init(&r, h, n);

    if (rc != 0)
        return rc;
    r.each = fn;
    r.each_arg = arg;
    rc = run(&r, n);
    if (rc == 0 && out) {
        r.st.active_allocations = r.live.used;
        r.st.events = n + h->ck.folded_events;
        r.st.dropped_events = h->dropped_events;
        *out = r.st;
    }
    replay_free(&r);
    return rc;
}

/* The snapshot after events [0, n), at time t. */
static int snapshot_to(const struct memscope_history *h, uint64_t n, uint64_t t, enum memscope_point_kind kind,
                       struct memscope_snapshot **out)
{
    struct replay r;
    int rc = replay_init(&r, h, n);

    if (rc != 0)
        return rc;
    rc = run(&r, n);
    if (rc == 0) {
        struct state x = state_of(&r);
        x.st.time_ns = t;
        x.st.events = n + h->ck.folded_events;
        rc = build_snapshot(h, &x, kind, out);
    }
    replay_free(&r);
    return rc;
}

static void keep_free(struct keep *k)
{
    ms_engine_free(k->gone);
    ms_engine_free(k->th_gen);
    ms_engine_free(k->th_at);
    ms_engine_free(k->seen_at);
    memset(k, 0, sizeof(*k));
}

/*
 * (internal.h) One replay to the end that keeps the state of the latest new
 * peak (see the file comment); when that state was lost (keep_gone), a second
 * replay up to the peak, which the first one found. The replay ends where the
 * snapshot at the end is taken: *end gets it when asked for.
 */
int ms_snapshot_at_peak(const struct memscope_history *h, size_t keep_max, struct memscope_snapshot **out,
                        struct memscope_snapshot **end, int *passes)
{
    size_t nt = h->nthreads ? h->nthreads : 1, i;
    struct replay r;
    struct keep k;
    uint64_t n, t;
    int rc, again = 0; /* the peak's state was lost: replay up to it */

    *out = NULL;
    if (end)
        *end = NULL;
    if (passes)
        *passes = 1;
    memset(&k, 0, sizeof(k));
    k.gen = 1;
    k.max = keep_max;
    k.th_gen = ms_engine_calloc(nt, sizeof(*k.th_gen));
    k.th_at = ms_engine_calloc(nt, sizeof(*k.th_at));
    k.seen_at = ms_engine_calloc(nt, sizeof(*k.seen_at));
    rc = k.th_gen && k.th_at && k.seen_at ? replay_init(&r, h, h->nevents) : -ENOMEM;
    if (rc != 0) {
        keep_free(&k);
        return rc;
    }
    r.keep = &k;
    k.st = r.st; /* with no new peak, the state kept is the one before any event */
    rc = run_keep(&r, h->nevents);
    n = r.peak_events;
    t = r.st.peak_time_ns;
    if (rc == 0 && h->ck.present && n == 0 && r.st.peak_memory > 0)
        rc = -ERANGE; /* the peak was reached before the horizon */
    if (rc == 0 && end) {
        struct state x = state_of(&r);
        x.st.time_ns = h->nevents ? h->events[h->nevents - 1].time : 0;
        x.st.events = h->nevents + h->ck.folded_events;
        rc = build_snapshot(h, &x, MEMSCOPE_AT_END, end);
    }
    if (rc == 0 && !k.lost) {
        struct state x = {k.st, k.th_at, k.seen_at, &r.live, 1, k.gen, k.gone, k.ngone};
        for (i = 0; i < h->nthreads; i++) {
            if (k.th_gen[i] != k.gen) { /* unchanged since the peak */
                k.th_at[i] = r.th[i];
                k.seen_at[i] = r.seen[i];
            }
        }
        x.st.time_ns = t;
        x.st.events = n + h->ck.folded_events;
        rc = build_snapshot(h, &x, MEMSCOPE_AT_PEAK, out);
    } else if (rc == 0) {
        again = 1;
    }
    replay_free(&r);
    keep_free(&k);
    if (again) {
        if (passes)
            *passes = 2;
        rc = snapshot_to(h, n, t, MEMSCOPE_AT_PEAK, out);
    }
    if (rc != 0 && end) {
        memscope_snapshot_free(*end);
        *end = NULL;
    }
    return rc;
}

MS_API int memscope_history_snapshot(const struct memscope_history *history, const struct memscope_point *at,
                                     struct memscope_snapshot **out)
{
    static const struct memscope_point end = {MEMSCOPE_AT_END, 0, NULL};
    uint64_t n = 0, t = 0;
    int rc;

    if (!ms_history_valid(history) || !out)
        return -EINVAL;
    *out = NULL;
    if (!at)
        at = &end;
    if (at->kind == MEMSCOPE_AT_PEAK)
        return ms_snapshot_at_peak(history, MS_PEAK_KEEP_ALL, out, NULL, NULL);
    rc = ms_history_find_point(history, at, &n, &t);
    if (rc != 0)
        return rc;
    return snapshot_to(history, n, t, at->kind, out);
}

/* The marks a fold keeps: the previous checkpoint's, then those replayed, up to the cap. */
struct mark_keeper {
    const struct memscope_history *h;
    struct memscope_checkpoint_mark *out; /* MEMSCOPE_CHECKPOINT_MAX_MARKS entries */
    uint64_t n;                           /* kept */
    uint64_t dropped;                     /* past the cap */
};

static void keep_mark(void *arg, uint64_t index, const struct ms_event *e, const struct memscope_stats *st)
{
    struct mark_keeper *k = arg;
    const struct memscope_history *h = k->h;

    if (MS_EV_KIND(e->info) != MEMSCOPE_REC_MARK)
        return;
    if (k->n == MEMSCOPE_CHECKPOINT_MAX_MARKS) {
        k->dropped++;
        return;
    }
    k->out[k->n].time = e->time;
    k->out[k->n].text = e->size < h->ntexts ? h->texts[e->size].addr : 0;
    k->out[k->n].events = h->ck.folded_events + index + 1;
    k->out[k->n].live_bytes = st->current_memory;
    k->n++;
}

/*
 * The checkpoint a fold leaves (internal.h). The history was read with the
 * fold's options: raw record times, only the records before the cuts, and
 * the previous checkpoint as its start.
 */
int ms_checkpoint_build(const struct memscope_history *h, const struct ms_fold_cut *cuts, uint32_t ncuts,
                        uint64_t horizon, void *(*map)(void *ctx, size_t bytes), void *ctx,
                        struct memscope_checkpoint **out, size_t *size)
{
    struct replay r;
    struct memscope_checkpoint *c;
    struct memscope_checkpoint_thread *ct;
    struct memscope_checkpoint_block *cb;
    struct memscope_checkpoint_mark *cm;
    struct mark_keeper marks = {h, NULL, 0, h->ck.marks_dropped};
    struct memscope_thread_stats agg = {0}; /* the exited threads' entry */
    uint8_t *merge = NULL;                  /* per dense thread: merged into agg (the old agg too) */
    uint64_t nmerged = 0;                   /* threads agg holds */
    size_t bytes, i, nt = 0, k = 0;
    uint32_t j = 0;
    int rc = replay_init(&r, h, h->nevents);

    if (rc != 0)
        return rc;
    merge = ms_engine_calloc(h->nthreads ? h->nthreads : 1, 1);
    if (!merge) {
        rc = -ENOMEM;
        goto out;
    }
    marks.out = ms_engine_alloc(MEMSCOPE_CHECKPOINT_MAX_MARKS * sizeof(*marks.out));
    if (!marks.out) {
        rc = -ENOMEM;
        goto out;
    }
    for (i = 0; i < h->ck.nmarks && marks.n < MEMSCOPE_CHECKPOINT_MAX_MARKS; i++, marks.n++) {
        const struct ms_ck_mark *m = &h->ck.marks[i];
        marks.out[marks.n].time = m->time_ns;
        marks.out[marks.n].text = m->text < h->ntexts ? h->texts[m->text].addr : 0;
        marks.out[marks.n].events = m->events;
        marks.out[marks.n].live_bytes = m->live_bytes;
    }
    if (h->nmarks) { /* only then: a call per event costs the fold a little */
        r.each = keep_mark;
        r.each_arg = &marks;
    }
    rc = run(&r, h->nevents);
    if (rc != 0)
        goto out;
    /* Exited threads the runtime offers (MS_FOLD_MERGE) join the serial-0
     * entry when nothing still refers to them: no live block, no pending
     * realloc, no other thread's stash naming them (store_abi.h). */
    for (i = 0; i < h->nthreads; i++) {
        if (r.stash[i].pending && r.stash[i].block.address)
            merge[r.stash[i].block.thread] = 2; /* named by a stash: kept */
    }
    for (i = 0, j = 0; i < h->nthreads; i++) {
        uint32_t serial = h->threads[i].serial;
        const struct memscope_thread_stats *o = &r.th[i];
        int ok;
        while (j < ncuts && cuts[j].thread < serial)
            j++;
        if (serial == 0) {
            ok = r.seen[i] && h->ck.merged > 0;
        } else {
            ok = j < ncuts && cuts[j].thread == serial && (cuts[j].flags & MS_FOLD_MERGE) && r.seen[i] && h->ck.present &&
                 h->ck.in[i] && h->ck.gone[i] && cuts[j].seq == h->ck.cut_seq[i] &&
                 cuts[j].records == h->ck.cut_records[i] && o->live_blocks == 0 && o->current_memory == 0 &&
                 !r.stash[i].pending && merge[i] != 2;
        }
        merge[i] = (uint8_t)ok;
        if (!ok)
            continue;
        nmerged += serial == 0 ? h->ck.merged : 1;
        agg.allocations += o->allocations;
        agg.deallocations += o->deallocations;
        agg.allocated_bytes += o->allocated_bytes;
        agg.released_bytes += o->released_bytes;
        if (o->peak_memory > agg.peak_memory ||
            (o->peak_memory == agg.peak_memory && o->peak_memory && o->peak_time_ns < agg.peak_time_ns)) {
            agg.peak_memory = o->peak_memory;
            agg.peak_time_ns = o->peak_time_ns;
        }
    }
    j = 0;
    for (i = 0; i < h->nthreads; i++)
        nt += r.seen[i] && !merge[i];
    nt += nmerged > 0;
    bytes = sizeof(*c) + nt * sizeof(*ct) + r.live.used * sizeof(*cb) + marks.n * sizeof(*cm);
    c = map(ctx, bytes);
    if (!c) {
        rc = -ENOMEM;
        goto out;
    }
    ct = (struct memscope_checkpoint_thread *)(c + 1);
    cb = (struct memscope_checkpoint_block *)(ct + nt);
    cm = (struct memscope_checkpoint_mark *)(cb + r.live.used);
    c->header_size = sizeof(*c);
    c->thread_size = sizeof(*ct);
    c->block_size = sizeof(*cb);
    c->mark_size = sizeof(*cm);
    c->map_size = bytes;
    c->generation = (h->ck.present ? h->ck.generation : 0) + 1;
    /* Never below the previous horizon: every record folded so far is timed at or before it. */
    c->horizon = h->ck.present && h->ck.horizon_ns > horizon ? h->ck.horizon_ns : horizon;
    c->folded_events = h->ck.folded_events + h->nevents;
    c->total_allocations = r.st.total_allocations;
    c->total_deallocations = r.st.total_deallocations;
    c->total_allocated = r.st.total_allocated;
    c->total_deallocated = r.st.total_deallocated;
    c->current_memory = r.st.current_memory;
    c->peak_memory = r.st.peak_memory;
    c->peak_time = r.st.peak_time_ns;
    c->unmatched_deallocations = r.st.unmatched_deallocations;
    c->reallocations = r.st.reallocations;
    c->overlapping_allocations = r.st.overlapping_allocations;
    c->thread_count = nt;
    c->threads = (uint64_t)(uintptr_t)ct;
    c->block_count = r.live.used;
    c->blocks = (uint64_t)(uintptr_t)cb;
    c->mark_count = marks.n;
    c->marks = marks.n ? (uint64_t)(uintptr_t)cm : 0;
    c->marks_dropped = marks.dropped;
    if (marks.n)
        memcpy(cm, marks.out, marks.n * sizeof(*cm));
    if (nmerged > 0) { /* serial 0 sorts first */
        struct memscope_checkpoint_thread *t = ct++;
        t->merged = nmerged;
        t->allocations = agg.allocations;
        t->deallocations = agg.deallocations;
        t->allocated_bytes = agg.allocated_bytes;
        t->released_bytes = agg.released_bytes;
        t->peak_memory = agg.peak_memory;
        t->peak_time = agg.peak_time_ns;
    }
    for (i = 0; i < h->nthreads; i++) {
        const struct memscope_thread_stats *o = &r.th[i];
        struct memscope_checkpoint_thread *t;
        uint32_t serial = h->threads[i].serial;
        if (!r.seen[i] || merge[i])
            continue;
        t = ct++;
        t->thread = serial;
        t->tid = h->threads[i].tid;
        while (j < ncuts && cuts[j].thread < serial)
            j++;
        if (j < ncuts && cuts[j].thread == serial) {
            t->folded_seq = cuts[j].seq;
            t->folded_records = cuts[j].records;
            if (cuts[j].flags & MS_FOLD_GONE)
                t->flags |= MEMSCOPE_CHECKPOINT_GONE;
        } else if (h->ck.present && h->ck.in[i]) {
            t->folded_seq = h->ck.cut_seq[i];
            t->folded_records = h->ck.cut_records[i];
        }
        if (h->ck.present && h->ck.in[i] && h->ck.gone[i])
            t->flags |= MEMSCOPE_CHECKPOINT_GONE; /* gone stays gone */
        t->allocations = o->allocations;
        t->deallocations = o->deallocations;
        t->allocated_bytes = o->allocated_bytes;
        t->released_bytes = o->released_bytes;
        t->current_memory = o->current_memory;
        t->live_blocks = o->live_blocks;
        t->peak_memory = o->peak_memory;
        t->peak_time = o->peak_time_ns;
        if (r.stash[i].pending) {
            const struct slot *b = &r.stash[i].block;
            t->flags |= MEMSCOPE_CHECKPOINT_STASH;
            if (b->address) {
                t->stash_address = b->address;
                t->stash_size = b->size;
                t->stash_time = b->time;
                t->stash_label = b->label && b->label <= h->ntexts ? h->texts[b->label - 1].addr : 0;
                t->stash_thread = h->threads[b->thread].serial;
                t->stash_stack = b->stack;
            }
        }
    }
    for (i = 0; i <= r.live.mask; i++) {
        const struct slot *sl = &r.live.slots[i];
        if (!sl->address)
            continue;
        cb[k].address = sl->address;
        cb[k].size = sl->size;
        cb[k].time = sl->time;
        cb[k].label = sl->label && sl->label <= h->ntexts ? h->texts[sl->label - 1].addr : 0;
        cb[k].thread = h->threads[sl->thread].serial;
        cb[k].stack = sl->stack;
        k++;
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);
    c->magic = MEMSCOPE_CHECKPOINT_MAGIC;
    *out = c;
    *size = bytes;
out:
    ms_engine_free(merge);
    ms_engine_free(marks.out);
    replay_free(&r);
    return rc;
}

int ms_fold_build(const struct memscope_source *src, int direct, uint64_t root_addr, const struct ms_fold_cut *cuts,
                  uint32_t ncuts, uint64_t horizon, void *(*map)(void *ctx, size_t bytes), void *ctx,
                  struct memscope_checkpoint **out, size_t *size, struct memscope_error *err)
{
    struct ms_read_opts opts = {1, cuts, ncuts, direct};
    struct memscope_history *h = ms_engine_calloc(1, sizeof(*h));
    int rc;

    if (!h)
        return -ENOMEM;
    rc = ms_history_read_opts(src, root_addr, h, &opts, err);
    h->magic = MS_HISTORY_MAGIC;
    if (rc == 0)
        rc = ms_checkpoint_build(h, cuts, ncuts, horizon, map, ctx, out, size);
    memscope_history_close(h);
    return rc;
}
