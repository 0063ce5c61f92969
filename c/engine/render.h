/*
 * render.h - helpers shared by the text renderers (render_text.c, block.c).
 */
#ifndef MS_ENGINE_RENDER_H
#define MS_ENGINE_RENDER_H

#include "internal.h"

/* "1.5 KiB", or with opts->exact_bytes "1.5 KiB (1536 B)". */
void ms_size_text(const struct memscope_render_options *o, uint64_t bytes, char *buf, size_t len);
/* The dropped-events and overlapping-allocations warning lines, when non-zero. */
void ms_render_warnings(const struct memscope_stats *st, const struct memscope_render_options *o, struct ms_buf *b);
/* 0, or -EINVAL for an unknown group, sort or section bit. */
int ms_render_options_check(const struct memscope_render_options *o);

/* Call stacks (stacks.c): the blocks section grouped by site or stack, one
 * stack's frames, the stack warnings, the JSON "stack_table" and "stacks". */
void ms_render_stack_groups(const struct memscope_snapshot *s, const struct memscope_render_options *o,
                            struct ms_buf *b, unsigned top);
void ms_render_stack_frames(const struct memscope_snapshot *s, uint32_t id, const struct memscope_render_options *o,
                            struct ms_buf *b, const char *indent);
void ms_render_stack_notes(const struct memscope_snapshot *s, const struct memscope_render_options *o,
                           struct ms_buf *b);
void ms_render_stacks_json(const struct memscope_snapshot *s, const struct memscope_render_options *o,
                           struct ms_buf *b);

/* Names of allocation sites (or stacks, with_id) for any set of stack ids, symbolized in one call. */
struct ms_site_namer;
int ms_site_namer_new(const struct ms_stacks *st, const uint32_t *ids, size_t n,
                      const struct memscope_symbolizer *sym, struct ms_site_namer **out);
void ms_site_name(const struct ms_site_namer *nm, uint32_t id, int with_id, char *buf, size_t len);
void ms_site_namer_free(struct ms_site_namer *nm);

/* Appends str as a JSON string literal (escaped, valid UTF-8). */
void ms_json_string(struct ms_buf *b, const char *str);

#endif
