/*
 * render_json.c - a snapshot as JSON, schema "memscope-snapshot/1"
 * (docs/snapshot-json.md): point, summary (the memscope-rs SnapshotStats
 * names and ours), process, threads, and every live block, largest first.
 * Strings are escaped for JSON and made valid UTF-8 (a byte that does not
 * start a well-formed sequence becomes U+FFFD), whatever a label holds.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "render.h"

/* Length of the well-formed UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len, i;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

void ms_json_string(struct ms_buf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str), i = 0;

    ms_buf_puts(b, "\"");
    while (i < n) {
        unsigned char c = s[i];
        size_t run = i;
        /* Copy plain ASCII runs in one go. */
        while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            ms_buf_append(b, (const char *)s + i, run - i);
            i = run;
            continue;
        }
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            ms_buf_append(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n':
                ms_buf_puts(b, "\\n");
                break;
            case '\t':
                ms_buf_puts(b, "\\t");
                break;
            case '\r':
                ms_buf_puts(b, "\\r");
                break;
            default:
                ms_buf_printf(b, "\\u%04x", c);
            }
            i++;
        } else {
            size_t l = utf8_len(s + i, n - i);
            if (l == 0) {
                ms_buf_puts(b, "\\ufffd");
                i++;
            } else {
                ms_buf_append(b, (const char *)s + i, l);
                i += l;
            }
        }
    }
    ms_buf_puts(b, "\"");
}

static int largest_first(const void *pa, const void *pb, void *ctx)
{
    const struct ms_block *x = *(const struct ms_block *const *)pa, *y = *(const struct ms_block *const *)pb;

    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return x->address < y->address ? -1 : x->address > y->address;
}

MS_API int memscope_snapshot_render_json(const struct memscope_snapshot *snapshot,
                                         const struct memscope_render_options *opts, char **out, size_t *len)
{
    const struct memscope_stats *st;
    const struct ms_block **order = NULL;
    struct ms_buf b;
    size_t i;

    if (!ms_snapshot_valid(snapshot) || !out)
        return -EINVAL;
    *out = NULL;
    st = &snapshot->stats;
    order = ms_engine_big_alloc(snapshot->nblocks * sizeof(*order), 0);
    if (!order)
        return -ENOMEM;
    for (i = 0; i < snapshot->nblocks; i++)
        order[i] = &snapshot->blocks[i];
    if (ms_sort(order, snapshot->nblocks, sizeof(*order), largest_first, NULL) != 0) {
        ms_engine_big_free(order);
        return -ENOMEM;
    }
    ms_buf_init(&b);
    ms_buf_printf(&b, "{\n  \"schema\": \"memscope-snapshot/1\",\n");
    ms_buf_printf(&b, "  \"point\": {\"kind\": \"%s\", \"time_ns\": %" PRIu64 ", \"events\": %" PRIu64 "},\n",
                  ms_point_kind_name(snapshot->point_kind), st->time_ns, st->events);
    ms_buf_printf(&b,
                  "  \"summary\": {\n"
                  "    \"total_allocations\": %" PRIu64 ",\n"
                  "    \"total_deallocations\": %" PRIu64 ",\n"
                  "    \"active_allocations\": %" PRIu64 ",\n"
                  "    \"total_allocated\": %" PRIu64 ",\n"
                  "    \"total_deallocated\": %" PRIu64 ",\n"
                  "    \"current_memory\": %" PRIu64 ",\n"
                  "    \"peak_memory\": %" PRIu64 ",\n"
                  "    \"unmatched_deallocations\": %" PRIu64 ",\n"
                  "    \"dropped_events\": %" PRIu64 ",\n"
                  "    \"peak_time_ns\": %" PRIu64 ",\n"
                  "    \"overlapping_allocations\": %" PRIu64 ",\n"
                  "    \"reallocations\": %" PRIu64 ",\n"
                  "    \"threads\": %" PRIu64 ",\n"
                  "    \"events\": %" PRIu64 "\n"
                  "  },\n",
                  st->total_allocations, st->total_deallocations, st->active_allocations, st->total_allocated,
                  st->total_deallocated, st->current_memory, st->peak_memory, st->unmatched_deallocations,
                  st->dropped_events, st->peak_time_ns, st->overlapping_allocations, st->reallocations, st->threads,
                  st->events);
    ms_buf_printf(&b, "  \"process\": {\"pid\": %u},\n", snapshot->pid);
    ms_render_stacks_json(snapshot, opts ? opts : &(struct memscope_render_options){0}, &b); /* stacks.c */
    ms_buf_puts(&b, "  \"threads\": [");
    for (i = 0; i < snapshot->nthreads; i++) {
        const struct memscope_thread_stats *t = &snapshot->threads[i];
        char exited[48] = "";
        if (t->thread == 0) /* the exited threads merged into the checkpoint: one row */
            snprintf(exited, sizeof(exited), ", \"exited_threads\": %" PRIu64, snapshot->merged);
        ms_buf_printf(&b,
                      "%s\n    {\"thread\": %u, \"tid\": %u%s, \"allocations\": %" PRIu64 ", \"deallocations\": %" PRIu64
                      ", \"allocated_bytes\": %" PRIu64 ", \"released_bytes\": %" PRIu64 ", \"current_memory\": %" PRIu64
                      ", \"live_blocks\": %" PRIu64 ", \"peak_memory\": %" PRIu64 ", \"peak_time_ns\": %" PRIu64 "}",
                      i ? "," : "", t->thread, t->tid, exited, t->allocations, t->deallocations, t->allocated_bytes,
                      t->released_bytes, t->current_memory, t->live_blocks, t->peak_memory, t->peak_time_ns);
    }
    ms_buf_puts(&b, snapshot->nthreads ? "\n  ],\n" : "],\n");
    ms_buf_puts(&b, "  \"live_blocks\": [");
    for (i = 0; i < snapshot->nblocks && !b.failed; i++) {
        const struct ms_block *bl = order[i];
        ms_buf_printf(&b, "%s\n    {\"stack\": %u, \"address\": \"0x%" PRIx64 "\", \"size\": %" PRIu64 ", \"thread\": %u, \"time_ns\": %" PRIu64
                      ", \"label\": ",
                      i ? "," : "", bl->stack, bl->address, bl->size, bl->thread, bl->time);
        if (bl->label) {
            ms_buf_puts(&b, "{\"name\": ");
            ms_json_string(&b, snapshot->labels[bl->label].name);
            ms_buf_puts(&b, ", \"type\": ");
            ms_json_string(&b, snapshot->labels[bl->label].type);
            ms_buf_puts(&b, "}}");
        } else {
            ms_buf_puts(&b, "null}");
        }
    }
    ms_buf_puts(&b, snapshot->nblocks ? "\n  ]\n}\n" : "]\n}\n");
    ms_engine_big_free(order);
    return ms_buf_finish(&b, out, len);
}
