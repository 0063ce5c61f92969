/*
 * test_modules.c - MODULES payloads (c/engine/modules.c): parsing, the set
 * a trace's blocks build (later mappings replace those they overlap), and
 * damaged payloads refused with a sentence, the set left as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>

#include "internal.h"
#include "memscope/trace.h"
#include "memscope/trace_abi.h"

struct payload {
    uint8_t bytes[4096];
    size_t len;
};

static void begin(struct payload *p)
{
    struct memscope_trace_modules h = {0, 0};
    memset(p, 0, sizeof(*p));
    memcpy(p->bytes, &h, sizeof(h));
    p->len = sizeof(h);
}

static void add(struct payload *p, uint64_t start, uint64_t end, uint64_t offset, const char *path, uint8_t id_byte)
{
    struct memscope_trace_module e;
    struct memscope_trace_modules h;
    size_t n = strlen(path);

    memset(&e, 0, sizeof(e));
    e.start = start;
    e.end = end;
    e.offset = offset;
    e.path_len = (uint16_t)n;
    if (id_byte) {
        memset(e.build_id, id_byte, MEMSCOPE_TRACE_BUILD_ID_MAX);
        e.build_id_len = MEMSCOPE_TRACE_BUILD_ID_MAX;
    }
    memcpy(p->bytes + p->len, &e, sizeof(e));
    p->len += sizeof(e);
    memcpy(p->bytes + p->len, path, n);
    p->len += (n + 7) & ~(size_t)7;
    memcpy(&h, p->bytes, sizeof(h));
    h.count++;
    memcpy(p->bytes, &h, sizeof(h));
}

static void test_parse_sorted(void **state)
{
    struct memscope_modules *set = NULL;
    const struct memscope_module *m;
    struct payload p;
    size_t n;

    (void)state;
    begin(&p);
    add(&p, 0x7000, 0x8000, 0x1000, "/usr/lib/libb.so", 0);
    add(&p, 0x1000, 0x2000, 0, "/bin/prog", 0xab);
    assert_int_equal(memscope_modules_add(&set, p.bytes, p.len, NULL), 0);
    m = memscope_modules_list(set, &n);
    assert_int_equal(n, 2);
    assert_int_equal(m[0].start, 0x1000);
    assert_string_equal(m[0].path, "/bin/prog");
    assert_int_equal(m[0].build_id_len, 20);
    assert_int_equal(m[0].build_id[19], 0xab);
    assert_int_equal(m[1].offset, 0x1000);
    assert_string_equal(m[1].path, "/usr/lib/libb.so");
    assert_int_equal(m[1].build_id_len, 0);
    memscope_modules_free(set);
}

/* A library unloaded and another mapped over part of its range: the old entry goes, others stay. */
static void test_later_replaces_overlap(void **state)
{
    struct memscope_modules *set = NULL;
    const struct memscope_module *m;
    struct payload p;
    size_t n;

    (void)state;
    begin(&p);
    add(&p, 0x1000, 0x2000, 0, "/bin/prog", 0);
    add(&p, 0x5000, 0x9000, 0, "/lib/old.so", 0);
    assert_int_equal(memscope_modules_add(&set, p.bytes, p.len, NULL), 0);
    begin(&p);
    add(&p, 0x8000, 0xa000, 0, "/lib/new.so", 0);
    add(&p, 0xc000, 0xd000, 0, "/lib/other.so", 0);
    assert_int_equal(memscope_modules_add(&set, p.bytes, p.len, NULL), 0);
    m = memscope_modules_list(set, &n);
    assert_int_equal(n, 3);
    assert_string_equal(m[0].path, "/bin/prog");
    assert_string_equal(m[1].path, "/lib/new.so");
    assert_string_equal(m[2].path, "/lib/other.so");
    memscope_modules_free(set);
}

static void expect_damage(const struct payload *p, const char *needle)
{
    struct memscope_modules *set = NULL;
    struct memscope_error err;
    struct payload good;
    size_t n;

    begin(&good);
    add(&good, 0x1000, 0x2000, 0, "/bin/prog", 0);
    assert_int_equal(memscope_modules_add(&set, good.bytes, good.len, NULL), 0);
    memset(&err, 0, sizeof(err));
    assert_int_equal(memscope_modules_add(&set, p->bytes, p->len, &err), -EBADMSG);
    assert_non_null(strstr(err.message, needle));
    memscope_modules_list(set, &n);
    assert_int_equal(n, 1); /* unchanged */
    memscope_modules_free(set);
}

static void test_damage(void **state)
{
    struct payload p;
    struct memscope_trace_modules h;
    struct memscope_trace_module e;

    (void)state;
    begin(&p);
    p.len = 4;
    expect_damage(&p, "shorter than its header");

    begin(&p);
    add(&p, 0x1000, 0x2000, 0, "/a", 0);
    memcpy(&h, p.bytes, sizeof(h));
    h.count = 1000;
    memcpy(p.bytes, &h, sizeof(h));
    expect_damage(&p, "claims 1000 entries");

    begin(&p);
    add(&p, 0x2000, 0x1000, 0, "/a", 0); /* end before start */
    expect_damage(&p, "damaged");

    begin(&p);
    add(&p, 0x1000, 0x2000, 0, "/a", 0);
    memcpy(&e, p.bytes + sizeof(h), sizeof(e));
    e.path_len = 200; /* past the payload */
    memcpy(p.bytes + sizeof(h), &e, sizeof(e));
    expect_damage(&p, "damaged");

    begin(&p);
    add(&p, 0x1000, 0x2000, 0, "/a", 0);
    memcpy(&e, p.bytes + sizeof(h), sizeof(e));
    e.build_id_len = 21;
    memcpy(p.bytes + sizeof(h), &e, sizeof(e));
    expect_damage(&p, "damaged");

    begin(&p);
    add(&p, 0x1000, 0x2000, 0, "/a", 0);
    p.len += 8; /* bytes past the entries */
    expect_damage(&p, "past its entries");
}

/* A set written back as payloads (in pieces when the room is small) reads back the same. */
static void test_payload_round_trip(void **state)
{
    struct memscope_modules *set = NULL, *back = NULL;
    const struct memscope_module *a, *b;
    static uint8_t buf[4096];
    struct payload p;
    size_t from = 0, len, n, m, pieces = 0;

    (void)state;
    begin(&p);
    add(&p, 0x1000, 0x2000, 0, "/bin/prog", 0x11);
    add(&p, 0x2000, 0x3000, 0x1000, "/bin/prog", 0);
    add(&p, 0x7000, 0x8000, 0, "/usr/lib/x86_64-linux-gnu/libsomething-long-name.so.1", 0x22);
    assert_int_equal(memscope_modules_add(&set, p.bytes, p.len, NULL), 0);
    /* Room for the header and one entry with its path at a time. */
    while ((len = ms_modules_payload(set, &from, buf, 8 + 48 + 56)) > 0) {
        assert_int_equal(memscope_modules_add(&back, buf, len, NULL), 0);
        pieces++;
    }
    assert_int_equal(pieces, 3);
    a = memscope_modules_list(set, &n);
    b = memscope_modules_list(back, &m);
    assert_int_equal(n, m);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(a[i].start, b[i].start);
        assert_int_equal(a[i].end, b[i].end);
        assert_int_equal(a[i].offset, b[i].offset);
        assert_string_equal(a[i].path, b[i].path);
        assert_int_equal(a[i].build_id_len, b[i].build_id_len);
        assert_memory_equal(a[i].build_id, b[i].build_id, a[i].build_id_len);
    }
    memscope_modules_free(set);
    memscope_modules_free(back);
}

/* A payload of no entries (found by the trace fuzzer: memset(NULL, 0, 0) on a set just made): an empty set. */
static void test_no_entries(void **state)
{
    struct memscope_modules *set = NULL;
    struct payload p;
    size_t n = 1;

    begin(&p);
    assert_int_equal(memscope_modules_add(&set, p.bytes, p.len, NULL), 0);
    assert_int_equal(ms_modules_append(&set, p.bytes, p.len, NULL), 0);
    assert_int_equal(ms_modules_settle(set), 0);
    memscope_modules_list(set, &n);
    assert_int_equal(n, 0);
    add(&p, 0x1000, 0x2000, 0, "/a", 0);
    assert_int_equal(memscope_modules_add(&set, p.bytes, p.len, NULL), 0);
    memscope_modules_list(set, &n);
    assert_int_equal(n, 1);
    memscope_modules_free(set);
}

/* (start, end, path) of an entry, for comparing sets whatever the order of equal starts. */
struct triple {
    uint64_t start, end;
    char path[16];
};

static int triple_cmp(const void *a, const void *b)
{
    const struct triple *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->path, y->path);
}

static size_t triples(const struct memscope_modules *set, struct triple *out)
{
    size_t n, i;
    const struct memscope_module *m = memscope_modules_list(set, &n);

    memset(out, 0, n * sizeof(*out)); /* compared whole: no bytes left over past a path's NUL */
    for (i = 0; i < n; i++) {
        out[i].start = m[i].start;
        out[i].end = m[i].end;
        snprintf(out[i].path, sizeof(out[i].path), "%s", m[i].path);
        if (i > 0)
            assert_true(m[i - 1].start <= m[i].start); /* by address */
    }
    qsort(out, n, sizeof(*out), triple_cmp);
    return n;
}

/*
 * A trace reader appends its payloads and settles once (ms_modules_append,
 * ms_modules_settle); that must give what replacing payload by payload
 * gives (memscope_modules_add), and what the rule says, done by hand: an
 * entry stays unless a later payload has an entry overlapping it (entries
 * of one payload never replace each other). Random payloads of 1 to 4
 * entries over a small range, so that they overlap often, also within a
 * payload and at equal starts.
 */
static void test_settled_once_as_one_by_one(void **state)
{
    uint64_t x = 0x9e3779b97f4a7c15u;

    for (int round = 0; round < 300; round++) {
        struct memscope_modules *one = NULL, *batch = NULL;
        static struct triple want[64], a[64], b[64];
        uint64_t seen_start[64], seen_end[64];
        unsigned seen_payload[64];
        char seen_path[64][16];
        size_t nseen = 0, nwant = 0, i, j;
        int payloads = 1 + (int)(round % 12);

        memset(want, 0, sizeof(want));
        memset(seen_path, 0, sizeof(seen_path));

        for (int k = 0; k < payloads; k++) {
            struct payload p;
            int entries = 1 + (int)((x >> 7) % 4);
            begin(&p);
            for (int e = 0; e < entries; e++) {
                char path[16];
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                uint64_t start = 0x1000 * (x % 24), end = start + 0x1000 * (1 + (x >> 8) % 4);
                snprintf(path, sizeof(path), "/p%d-%d", k, e);
                add(&p, start, end, 0, path, 0);
                seen_start[nseen] = start;
                seen_end[nseen] = end;
                seen_payload[nseen] = (unsigned)k;
                snprintf(seen_path[nseen], sizeof(seen_path[nseen]), "%s", path);
                nseen++;
            }
            assert_int_equal(memscope_modules_add(&one, p.bytes, p.len, NULL), 0);
            assert_int_equal(ms_modules_append(&batch, p.bytes, p.len, NULL), 0);
            if (k == payloads / 2) /* a settle half way, as a reader of two traces' lists would */
                assert_int_equal(ms_modules_settle(batch), 0);
        }
        assert_int_equal(ms_modules_settle(batch), 0);
        for (i = 0; i < nseen; i++) {
            int replaced = 0;
            for (j = 0; j < nseen; j++)
                replaced |= seen_payload[j] > seen_payload[i] && seen_start[j] < seen_end[i] &&
                            seen_start[i] < seen_end[j];
            if (!replaced) {
                want[nwant].start = seen_start[i];
                want[nwant].end = seen_end[i];
                memcpy(want[nwant].path, seen_path[i], sizeof(want[nwant].path));
                nwant++;
            }
        }
        qsort(want, nwant, sizeof(*want), triple_cmp);
        assert_int_equal(triples(one, a), nwant);
        assert_int_equal(triples(batch, b), nwant);
        assert_memory_equal(a, want, nwant * sizeof(*want));
        assert_memory_equal(b, want, nwant * sizeof(*want));
        memscope_modules_free(one);
        memscope_modules_free(batch);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_sorted),
        cmocka_unit_test(test_later_replaces_overlap),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_payload_round_trip),
        cmocka_unit_test(test_settled_once_as_one_by_one),
        cmocka_unit_test(test_no_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
