/*
 * trace_codec.c - the block codec of trace files (trace_abi.h): CRC-32C,
 * the delta/varint column encoding of EVENTS payloads and whole-block
 * building with zstd. No allocation and no stdio, so the runtime's trace
 * writer can call it inside the recorded program.
 */
#include <errno.h>
#include <string.h>

#include <zstd.h>

#include "trace_codec.h"

/* ---- CRC-32C (Castagnoli), table-driven, 8 bytes per step ---- */

static uint32_t crc_table[8][256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
    __atomic_store_n(&crc_ready, 1, __ATOMIC_RELEASE);
}

#if defined(__x86_64__)
/* The SSE4.2 crc32 instruction computes CRC-32C: ~8x the table's speed. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

uint32_t ms_crc32c(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;

#if defined(__x86_64__)
    static int hw = -1; /* racing first calls compute the same answer */
    if (__builtin_expect(hw < 0, 0)) {
        __builtin_cpu_init(); /* may run in a constructor, before libgcc's own */
        hw = __builtin_cpu_supports("sse4.2") != 0;
    }
    if (hw)
        return crc32c_hw(crc, p, n);
#endif
    if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE))
        crc_init(); /* idempotent: two threads racing compute the same table */
    crc = ~crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc;
        crc = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^ crc_table[5][(v >> 16) & 0xff] ^
              crc_table[4][(v >> 24) & 0xff] ^ crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
              crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

void ms_trace_header_init(struct memscope_trace_header *h, uint32_t flags, uint32_t pid, uint64_t origin_ticks,
                          uint64_t origin_ns, uint32_t block_size_hint)
{
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, MEMSCOPE_TRACE_MAGIC, MEMSCOPE_TRACE_MAGIC_SIZE);
    h->version = MEMSCOPE_TRACE_VERSION;
    h->header_size = sizeof(*h);
    h->flags = flags;
    h->pid = pid;
    h->clock_origin_ticks = origin_ticks;
    h->clock_origin_ns = origin_ns;
    h->block_size_hint = block_size_hint;
    h->header_crc = ms_crc32c(0, h, offsetof(struct memscope_trace_header, header_crc));
}

/* ---- EVENTS payload ---- */

size_t ms_trace_events_bound(size_t n)
{
    return sizeof(struct memscope_trace_events) + n * (1 + 4 * 10);
}

/*
 * Writes v as a varint at p. Values below 2^56 (all but the rarest) are
 * written without a branch per byte: their 7-bit groups are spread one to a
 * byte in three steps, the continuation bits set below the last, and 8
 * bytes stored at once (the caller leaves room: a column region holds 10
 * bytes per record, and each store ends at least 2 bytes before the next
 * region). The byte-by-byte loop's exit, unpredictable for address deltas of
 * 3 to 6 bytes, was a third of the trace writer's encoding time.
 */
static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    if (__builtin_expect(v < (UINT64_C(1) << 56), 1)) {
        unsigned len = ((unsigned)(64 - __builtin_clzll(v | 1)) + 6) / 7;
        uint64_t x = (v & UINT64_C(0xfffffff)) | ((v & UINT64_C(0xfffffff0000000)) << 4);
        x = (x & UINT64_C(0x00003fff00003fff)) | ((x & UINT64_C(0x0fffc0000fffc000)) << 2);
        x = (x & UINT64_C(0x007f007f007f007f)) | ((x & UINT64_C(0x3f803f803f803f80)) << 1);
        x |= UINT64_C(0x8080808080808080) & ((UINT64_C(1) << (8 * (len - 1))) - 1);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        x = __builtin_bswap64(x); /* byte i of x at p + i */
#endif
        memcpy(p, &x, sizeof(x));
        return p + len;
    }
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint64_t zigzag(uint64_t d)
{
    return (d << 1) ^ (uint64_t)((int64_t)d >> 63);
}

static inline uint64_t unzigzag(uint64_t z)
{
    return (z >> 1) ^ (0 - (z & 1));
}

size_t ms_trace_encode_events(struct memscope_trace_events *hdr, const struct memscope_record *r, size_t n,
                              uint8_t *out)
{
    /*
     * One pass over the records (they are read once, not once per column):
     * each column is written in its own region of out, 10 bytes per record
     * apart, then the regions are moved together. The time column starts
     * where it ends up, so only three short moves remain.
     */
    uint8_t *kinds = out + sizeof(*hdr), *col[4], *end[4];
    uint64_t prev_time = hdr->first_time, prev_addr = 0;
    size_t i;

    hdr->count = (uint32_t)n;
    hdr->reserved = 0;
    memcpy(out, hdr, sizeof(*hdr));
    for (int c = 0; c < 4; c++)
        col[c] = end[c] = kinds + n + (size_t)c * 10 * n;
    for (i = 0; i < n; i++) {
        kinds[i] = (uint8_t)MEMSCOPE_RECORD_KIND(r[i].info);
        end[0] = put_varint(end[0], zigzag(r[i].time - prev_time));
        end[1] = put_varint(end[1], zigzag(r[i].address - prev_addr));
        end[2] = put_varint(end[2], r[i].size);
        end[3] = put_varint(end[3], r[i].stack);
        prev_time = r[i].time;
        prev_addr = r[i].address;
    }
    uint8_t *p = end[0];
    for (int c = 1; c < 4; c++) {
        size_t len = (size_t)(end[c] - col[c]);
        memmove(p, col[c], len);
        p += len;
    }
    return (size_t)(p - out);
}

/* Reads one varint at *pp (below end). 0, or -1 when it runs past end or over 10 bytes. */
static inline int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    unsigned shift = 0;

    /* Fast path: one byte. */
    if (p < end && *p < 0x80) {
        *out = *p;
        *pp = p + 1;
        return 0;
    }
    while (p < end && shift < 70) {
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *out = v;
            *pp = p;
            return 0;
        }
        shift += 7;
    }
    return -1;
}

/*
 * get_varint for the decoder's columns: a varint of up to 8 bytes that
 * lies 8 bytes before end is read without a branch per byte (the bytes up
 * to the first with its high bit clear are masked, then their 7-bit groups
 * moved together in three steps); longer ones, and those near the end, as
 * get_varint reads them.
 */
static inline int next_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;

    if (end - p >= 8) {
        uint64_t w, stop;
        memcpy(&w, p, 8);
        stop = ~w & UINT64_C(0x8080808080808080);
        if (stop) {
            uint64_t x = w & (stop ^ (stop - 1)) & UINT64_C(0x7f7f7f7f7f7f7f7f);
            x = ((x & UINT64_C(0x7f007f007f007f00)) >> 1) | (x & UINT64_C(0x007f007f007f007f));
            x = ((x & UINT64_C(0x3fff00003fff0000)) >> 2) | (x & UINT64_C(0x00003fff00003fff));
            x = ((x & UINT64_C(0x0fffffff00000000)) >> 4) | (x & UINT64_C(0x000000000fffffff));
            *out = x;
            *pp = p + ((unsigned)__builtin_ctzll(stop) >> 3) + 1;
            return 0;
        }
    }
    return get_varint(pp, end, out);
}

/* An EVENTS payload's header, checked: its count (1..max records), its thread, room for the kinds. */
static int read_header(const uint8_t *in, size_t len, size_t max, struct memscope_trace_events *hdr,
                       const char **why)
{
    if (len < sizeof(*hdr)) {
        *why = "payload shorter than its events header";
        return -EBADMSG;
    }
    memcpy(hdr, in, sizeof(*hdr));
    if (hdr->count == 0 || hdr->count > MEMSCOPE_TRACE_MAX_EVENTS || hdr->count > max) {
        *why = "record count out of range";
        return -EBADMSG;
    }
    if (hdr->thread == 0 || hdr->thread > 0xffffffu) {
        *why = "thread serial out of range";
        return -EBADMSG;
    }
    if (len - sizeof(*hdr) < hdr->count) {
        *why = "payload too short for its record kinds";
        return -EBADMSG;
    }
    return 0;
}

int ms_trace_decode_events(const uint8_t *in, size_t len, struct memscope_trace_events *hdr,
                           struct memscope_record *out, size_t out_cap, const char **why)
{
    const uint8_t *p = in, *end = in + len, *kinds;
    uint64_t prev, v;
    uint32_t info, n, i;

    if (read_header(in, len, out_cap, hdr, why) != 0)
        return -EBADMSG;
    n = hdr->count;
    p += sizeof(*hdr);
    kinds = p;
    p += n;
    info = MEMSCOPE_RECORD_INFO(0, hdr->thread);
    for (i = 0; i < n; i++) {
        if (kinds[i] < MEMSCOPE_REC_ALLOC || kinds[i] > MEMSCOPE_REC_MARK) {
            *why = "unknown record kind";
            return -EBADMSG;
        }
        out[i].info = info | kinds[i];
    }
    prev = hdr->first_time;
    for (i = 0; i < n; i++) {
        if (next_varint(&p, end, &v) != 0)
            goto short_payload;
        prev += unzigzag(v);
        out[i].time = prev;
    }
    prev = 0;
    for (i = 0; i < n; i++) {
        if (next_varint(&p, end, &v) != 0)
            goto short_payload;
        prev += unzigzag(v);
        out[i].address = prev;
    }
    for (i = 0; i < n; i++) {
        if (next_varint(&p, end, &v) != 0)
            goto short_payload;
        out[i].size = v;
    }
    for (i = 0; i < n; i++) {
        if (next_varint(&p, end, &v) != 0 || v > UINT32_MAX)
            goto short_payload;
        out[i].stack = (uint32_t)v;
    }
    if (p != end) {
        *why = "bytes left over after the records";
        return -EBADMSG;
    }
    return 0;
short_payload:
    *why = "a column is cut short or holds a bad number";
    return -EBADMSG;
}

/*
 * The validity test of ms_trace_decode_events without its stores, for a
 * reader that checks every block first and decodes it later, when the merge
 * needs its records (trace_read.c). The first three columns are only
 * counted: eight bytes at a time, the terminating bytes (high bit clear)
 * are counted and the runs of continuation bytes between them measured (a
 * varint over 10 bytes is damage); the stack column's values are bounded,
 * so it is read as the decoder reads it.
 */
/* Bits set in m, which has bits only at 7, 15, ..., 63 (no popcnt instruction needed). */
static inline unsigned high_bits(uint64_t m)
{
    return (unsigned)(((m >> 7) * UINT64_C(0x0101010101010101)) >> 56);
}

int ms_trace_check_events(const uint8_t *in, size_t len, struct memscope_trace_events *hdr, const char **why)
{
    const uint64_t high = UINT64_C(0x8080808080808080);
    const uint8_t *p = in, *end = in + len;
    uint64_t need, seen = 0, v;
    unsigned run = 0, bad = 0;
    uint32_t n, i;

    if (read_header(in, len, MEMSCOPE_TRACE_MAX_EVENTS, hdr, why) != 0)
        return -EBADMSG;
    n = hdr->count;
    p += sizeof(*hdr);
    for (i = 0; i < n; i++)
        bad |= (unsigned)(uint8_t)(p[i] - MEMSCOPE_REC_ALLOC) > (unsigned)(MEMSCOPE_REC_MARK - MEMSCOPE_REC_ALLOC);
    if (bad) {
        *why = "unknown record kind";
        return -EBADMSG;
    }
    p += n;
    /* Times, addresses, sizes: 3n varints of at most 10 bytes each. */
    need = (uint64_t)3 * n;
    while (end - p >= 8) {
        uint64_t w, m;
        memcpy(&w, p, 8);
        m = ~w & high; /* terminating bytes */
        unsigned c = high_bits(m);
        if (seen + c >= need)
            break; /* the last of them lies in this word: finish byte by byte */
        if (m == 0) {
            run += 8;
        } else {
            run += (unsigned)__builtin_ctzll(m) >> 3;
            if (run >= 10)
                goto short_payload;
            run = 7 - ((63 - (unsigned)__builtin_clzll(m)) >> 3);
        }
        if (run >= 10)
            goto short_payload;
        seen += c;
        p += 8;
    }
    while (seen < need) {
        if (p == end)
            goto short_payload;
        if (*p++ & 0x80) {
            if (++run >= 10)
                goto short_payload;
        } else {
            seen++;
            run = 0;
        }
    }
    for (i = 0; i < n; i++)
        if (get_varint(&p, end, &v) != 0 || v > UINT32_MAX)
            goto short_payload;
    if (p != end) {
        *why = "bytes left over after the records";
        return -EBADMSG;
    }
    return 0;
short_payload:
    *why = "a column is cut short or holds a bad number";
    return -EBADMSG;
}

/* ---- whole blocks ---- */

size_t ms_trace_block_bound(size_t raw_len)
{
    size_t z = ZSTD_compressBound(raw_len);
    if (z < raw_len)
        z = raw_len;
    return sizeof(struct memscope_trace_block) + ((z + 7) & ~(size_t)7);
}

size_t ms_trace_block_build(uint16_t type, uint64_t sequence, const void *raw, size_t raw_len, void *cctx, int level,
                            uint8_t *out)
{
    struct memscope_trace_block b;
    uint8_t *payload = out + sizeof(b);
    size_t stored = raw_len, padded;
    uint16_t codec = MEMSCOPE_TRACE_CODEC_NONE;

    if (cctx && raw_len > 0) {
        size_t z = ZSTD_compressCCtx(cctx, payload, ZSTD_compressBound(raw_len), raw, raw_len, level);
        if (ZSTD_isError(z))
            return 0;
        if (z < raw_len) {
            stored = z;
            codec = MEMSCOPE_TRACE_CODEC_ZSTD;
        }
    }
    if (codec == MEMSCOPE_TRACE_CODEC_NONE)
        memcpy(payload, raw, raw_len);
    padded = (stored + 7) & ~(size_t)7;
    memset(payload + stored, 0, padded - stored);
    memset(&b, 0, sizeof(b));
    b.magic = MEMSCOPE_TRACE_BLOCK_MAGIC;
    b.type = type;
    b.codec = codec;
    b.stored_size = (uint32_t)stored;
    b.raw_size = (uint32_t)raw_len;
    b.sequence = sequence;
    b.payload_crc = ms_crc32c(0, payload, stored);
    b.header_crc = ms_crc32c(0, &b, offsetof(struct memscope_trace_block, header_crc));
    memcpy(out, &b, sizeof(b));
    return sizeof(b) + padded;
}
