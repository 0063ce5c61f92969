/*
 * trace_codec.h - encoding and decoding of trace file blocks (trace_abi.h),
 * shared by the engine (reader, memscope_history_write_trace) and the
 * runtime's background trace writer (c/runtime/trace.c), which is linked
 * with the engine's objects in libmemscope.so.
 *
 * Nothing here allocates: callers pass the buffers (sizes from the *_bound
 * functions) and, for zstd, a compression or decompression context.
 */
#ifndef MS_TRACE_CODEC_H
#define MS_TRACE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "memscope/store_abi.h"
#include "memscope/trace_abi.h"

/* CRC-32C of n bytes, continuing from crc (start with 0). */
uint32_t ms_crc32c(uint32_t crc, const void *data, size_t n);

/* Fills a trace file header (magic, version, sizes, crc). */
void ms_trace_header_init(struct memscope_trace_header *h, uint32_t flags, uint32_t pid, uint64_t origin_ticks,
                          uint64_t origin_ns, uint32_t block_size_hint);

/* Most raw bytes an EVENTS payload of n records takes. */
size_t ms_trace_events_bound(size_t n);

/*
 * Encodes n records (store layout, one thread) as an EVENTS payload into
 * out (ms_trace_events_bound(n) bytes). hdr's thread, tid, first_index and
 * first_time are taken as given; count is set to n. Returns the bytes written.
 */
size_t ms_trace_encode_events(struct memscope_trace_events *hdr, const struct memscope_record *r, size_t n,
                              uint8_t *out);

/*
 * Decodes an EVENTS payload of len bytes: checks it, fills *hdr and writes
 * hdr->count records into out (room for MEMSCOPE_TRACE_MAX_EVENTS, or
 * *hdr count when out_cap says so), with info = MEMSCOPE_RECORD_INFO(kind,
 * thread). Returns 0, or -EBADMSG with a reason in *why.
 */
int ms_trace_decode_events(const uint8_t *in, size_t len, struct memscope_trace_events *hdr,
                           struct memscope_record *out, size_t out_cap, const char **why);

/*
 * Checks an EVENTS payload as ms_trace_decode_events does, writing no
 * records: 0 exactly when decoding it (with room for
 * MEMSCOPE_TRACE_MAX_EVENTS records) succeeds, else -EBADMSG with the
 * decoder's reason in *why. Fills *hdr.
 */
int ms_trace_check_events(const uint8_t *in, size_t len, struct memscope_trace_events *hdr, const char **why);

/* Most bytes a whole block (header, payload, padding) takes for raw_len raw bytes. */
size_t ms_trace_block_bound(size_t raw_len);

/*
 * Builds a whole block in out (ms_trace_block_bound(raw_len) bytes): the
 * payload is compressed with zstd at `level` through cctx (a ZSTD_CCtx *;
 * NULL stores it uncompressed, as does a payload zstd does not shrink).
 * Returns the bytes to write (a multiple of 8), or 0 on a compression error.
 */
size_t ms_trace_block_build(uint16_t type, uint64_t sequence, const void *raw, size_t raw_len, void *cctx, int level,
                            uint8_t *out);

#endif /* MS_TRACE_CODEC_H */
