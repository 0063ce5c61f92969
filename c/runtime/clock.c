/*
 * clock.c - the time source of records, and its calibration.
 *
 * Records are stamped with plain rdtsc when the CPU has an invariant TSC
 * (CPUID 0x80000007 EDX bit 8): ~9 ns here, against ~18 for rdtscp and ~21
 * for clock_gettime, and the budget for a whole malloc/free pair is 15 ns.
 * rdtsc is not ordered with the allocator call around it, but it only has to
 * order a release before a reuse of the same address by another thread, and
 * those are separated by the allocator's own atomic operations. Without an
 * invariant TSC the clock is CLOCK_MONOTONIC in ns and the root's
 * MEMSCOPE_STORE_CLOCK_TSC flag is clear.
 *
 * Readers convert ticks to ns with the origin pair (taken at init) and the
 * calibration pair, refreshed whenever a chunk is mapped under a seqlock
 * (clock_calib_seq odd while it is being written).
 */
#define _GNU_SOURCE
#include <time.h>

#include "runtime.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

int ms_clock_tsc;

uint64_t ms_clock_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int has_invariant_tsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
        return 0;
    __cpuid(0x80000007u, a, b, c, d);
    return (d >> 8) & 1u;
#else
    return 0;
#endif
}

/*
 * One (ticks, ns) pair: the tightest of a few tries, so a preemption or an
 * interrupt between the two reads (common on a virtual CPU) does not skew
 * the rate.
 */
static void clock_pair(uint64_t *ticks, uint64_t *ns)
{
    uint64_t best = UINT64_MAX;

    if (!ms_clock_tsc) {
        *ns = *ticks = ms_clock_monotonic_ns();
        return;
    }
    for (int i = 0; i < 8; i++) {
        uint64_t t0 = ms_clock_now();
        uint64_t n = ms_clock_monotonic_ns();
        uint64_t t1 = ms_clock_now();
        if (t1 - t0 < best) {
            best = t1 - t0;
            *ticks = t0 + (t1 - t0) / 2;
            *ns = n;
        }
    }
}

void ms_clock_init(void)
{
    struct memscope_store_root *r = &memscope_store_root;
    uint64_t ticks, ns;

    ms_clock_tsc = has_invariant_tsc();
    clock_pair(&ticks, &ns);
    r->clock_origin_ticks = ticks;
    r->clock_origin_ns = ns;
    /* A first calibration over ~150 us, refined by later chunk mappings. */
    while (ms_clock_monotonic_ns() - ns < 150000)
        ;
    clock_pair(&r->clock_calib_ticks, &r->clock_calib_ns);
    r->clock_calib_seq = 0;
}

void ms_clock_recalibrate(void)
{
    struct memscope_store_root *r = &memscope_store_root;
    uint64_t seq = __atomic_load_n(&r->clock_calib_seq, __ATOMIC_RELAXED);
    uint64_t ticks, ns;

    if (!ms_clock_tsc || (seq & 1))
        return; /* the ns clock needs no rate; or another thread is writing */
    if (!__atomic_compare_exchange_n(&r->clock_calib_seq, &seq, seq + 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    clock_pair(&ticks, &ns);
    __atomic_store_n(&r->clock_calib_ticks, ticks, __ATOMIC_RELAXED);
    __atomic_store_n(&r->clock_calib_ns, ns, __ATOMIC_RELAXED);
    __atomic_store_n(&r->clock_calib_seq, seq + 2, __ATOMIC_RELEASE);
}
