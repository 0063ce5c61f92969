/*
 * fake_store.c - see fake_store.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fake_store.h"
#include "fold.h"

void *fake_mem_add(struct fake_mem *m, uint64_t addr, size_t len)
{
    struct fake_seg *sg = &m->segs[m->nsegs++];

    sg->addr = addr;
    sg->len = len;
    sg->data = calloc(1, len ? len : 1);
    return sg->data;
}

void *fake_mem_at(struct fake_mem *m, uint64_t addr)
{
    int i;

    for (i = 0; i < m->nsegs; i++)
        if (addr >= m->segs[i].addr && addr - m->segs[i].addr < m->segs[i].len)
            return m->segs[i].data + (addr - m->segs[i].addr);
    return NULL;
}

void fake_mem_free(struct fake_mem *m)
{
    int i;

    for (i = 0; i < m->nsegs; i++)
        free(m->segs[i].data);
    m->nsegs = 0;
}

static int fake_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    struct fake_mem *m = ctx;
    int i;

    m->reads++;
    if (len > m->max_read)
        m->max_read = len;
    for (i = 0; i < m->nsegs; i++) {
        struct fake_seg *sg = &m->segs[i];
        if (addr >= sg->addr && addr - sg->addr <= sg->len && len <= sg->len - (addr - sg->addr)) {
            memcpy(buf, sg->data + (addr - sg->addr), len);
            return 0;
        }
    }
    return -EFAULT;
}

struct memscope_source fake_mem_source(struct fake_mem *m)
{
    struct memscope_source src = {fake_read, m};
    return src;
}

struct fake_store *fs_new(void)
{
    struct fake_store *s = calloc(1, sizeof(*s));

    s->root = fake_mem_add(&s->mem, FAKE_ROOT_ADDR, sizeof(*s->root));
    memcpy(s->root->magic, MEMSCOPE_STORE_MAGIC, MEMSCOPE_STORE_MAGIC_SIZE);
    s->root->abi_version = MEMSCOPE_STORE_ABI_VERSION;
    s->root->root_size = sizeof(*s->root);
    s->root->record_size = sizeof(struct memscope_record);
    s->root->chunk_header_size = sizeof(struct memscope_chunk);
    s->root->pid = 4242;
    s->root->budget_bytes = 256u << 20;
    s->text = fake_mem_add(&s->mem, FAKE_TEXT_ADDR, 65536);
    {
        struct memscope_text_block *tb = (void *)s->text;
        tb->magic = MEMSCOPE_TEXT_BLOCK_MAGIC;
        tb->capacity = 65536 - sizeof(*tb);
        s->text_used = sizeof(*tb);
    }
    s->root->texts = FAKE_TEXT_ADDR;
    return s;
}

static struct fake_thread *thread_of(struct fake_store *s, uint32_t serial)
{
    int i;

    for (i = 0; i < s->nthreads; i++)
        if (s->th[i].serial == serial)
            return &s->th[i];
    s->th[s->nthreads].serial = serial;
    s->th[s->nthreads].tid = 1000 + serial;
    return &s->th[s->nthreads++];
}

void fs_ev(struct fake_store *s, uint32_t thread, unsigned kind, uint64_t time, uint64_t addr, uint64_t size)
{
    struct fake_thread *t = thread_of(s, thread);
    struct memscope_record *r = &t->ev[t->n++];

    r->time = time;
    r->address = addr;
    r->size = size;
    r->stack = 0;
    r->info = MEMSCOPE_RECORD_INFO(kind, thread);
}

uint64_t fs_text(struct fake_store *s, const char *a, const char *b)
{
    uint64_t addr = FAKE_TEXT_ADDR + s->text_used;
    struct memscope_text *t = (void *)(s->text + s->text_used);
    size_t la = strlen(a) + 1, lb = b ? strlen(b) + 1 : 0;

    t->bytes = (uint32_t)(la + lb);
    t->strings = b ? 2 : 1;
    memcpy((char *)(t + 1), a, la);
    if (b)
        memcpy((char *)(t + 1) + la, b, lb);
    s->text_used += (sizeof(*t) + la + lb + 7) & ~(size_t)7;
    ((struct memscope_text_block *)s->text)->used = s->text_used - sizeof(struct memscope_text_block);
    s->root->text_bytes = 65536;
    return addr;
}

void fs_label(struct fake_store *s, uint32_t thread, uint64_t time, uint64_t addr, const char *name, const char *type)
{
    fs_ev(s, thread, MEMSCOPE_REC_LABEL, time, addr, fs_text(s, name, type));
}

void fs_mark(struct fake_store *s, uint32_t thread, uint64_t time, const char *name)
{
    fs_ev(s, thread, MEMSCOPE_REC_MARK, time, 0, fs_text(s, name, NULL));
}

void fs_build(struct fake_store *s, uint64_t capacity)
{
    size_t pos[FAKE_MAX_THREADS] = {0};
    uint32_t seq[FAKE_MAX_THREADS] = {0};
    uint64_t prev[FAKE_MAX_THREADS] = {0};
    uint64_t head = 0, map = sizeof(struct memscope_chunk) + capacity * sizeof(struct memscope_record);
    int left = 1, i;

    /* Round-robin over threads so the list interleaves them, oldest first. */
    while (left) {
        left = 0;
        for (i = 0; i < s->nthreads; i++) {
            struct fake_thread *t = &s->th[i];
            uint64_t addr = FAKE_CHUNK_BASE + (uint64_t)s->nchunks * FAKE_CHUNK_STRIDE;
            struct memscope_chunk *c;
            size_t n;
            if (pos[i] >= t->n && !(t->n == 0 && seq[i] == 0))
                continue;
            n = t->n - pos[i] < capacity ? t->n - pos[i] : capacity;
            c = fake_mem_add(&s->mem, addr, map);
            c->magic = MEMSCOPE_CHUNK_MAGIC;
            c->next = head;
            c->thread_prev = prev[i];
            c->capacity = capacity;
            c->count = n;
            c->map_size = map;
            c->thread = t->serial;
            c->seq = seq[i]++;
            c->tid = t->tid;
            c->pid = 4242;
            memcpy(c + 1, t->ev + pos[i], n * sizeof(struct memscope_record));
            pos[i] += n;
            prev[i] = addr;
            head = addr;
            s->nchunks++;
            s->root->chunk_count++;
            s->root->chunk_bytes += map;
            if (pos[i] < t->n)
                left = 1;
        }
    }
    s->root->chunks = head;
    s->root->threads_started = (uint64_t)s->nthreads;
    for (i = 0; i < s->nchunks; i++)
        s->chunk_addr[s->nchunks - 1 - i] = FAKE_CHUNK_BASE + (uint64_t)i * FAKE_CHUNK_STRIDE;
}

struct memscope_chunk *fs_chunk(struct fake_store *s, int index)
{
    return fake_mem_at(&s->mem, s->chunk_addr[index]);
}

void fs_unlink_thread(struct fake_store *s, uint32_t serial)
{
    struct memscope_chunk *prev = NULL;
    uint64_t a = s->root->chunks;

    while (a) {
        struct memscope_chunk *c = fake_mem_at(&s->mem, a);
        uint64_t next = c->next;
        if (c->thread == serial) {
            if (prev)
                prev->next = next;
            else
                s->root->chunks = next;
            s->root->chunk_count--;
        } else {
            prev = c;
        }
        a = next;
    }
}

static void *heap_map(void *ctx, size_t bytes)
{
    (void)ctx;
    return calloc(1, bytes);
}

struct memscope_checkpoint *fs_fold(struct fake_store *s, const struct ms_fold_cut *cuts, uint32_t ncuts,
                                    uint64_t horizon, uint64_t addr)
{
    struct memscope_source src = fake_mem_source(&s->mem);
    struct memscope_checkpoint *tmp = NULL, *ck;
    struct memscope_error err;
    size_t size = 0;
    uint64_t base;

    if (ms_fold_build(&src, 0, FAKE_ROOT_ADDR, cuts, ncuts, horizon, heap_map, NULL, &tmp, &size, &err) != 0)
        return NULL;
    ck = fake_mem_add(&s->mem, addr, size);
    memcpy(ck, tmp, size);
    base = (uint64_t)(uintptr_t)tmp;
    ck->threads = ck->threads - base + addr;
    ck->blocks = ck->blocks - base + addr;
    if (ck->marks)
        ck->marks = ck->marks - base + addr;
    free(tmp);
    s->root->checkpoint = addr;
    return ck;
}

int fs_open(struct fake_store *s, struct memscope_history **h, struct memscope_error *err)
{
    struct memscope_source src = fake_mem_source(&s->mem);
    return memscope_history_open(&src, FAKE_ROOT_ADDR, h, err);
}

void fs_delete(struct fake_store *s)
{
    if (!s)
        return;
    fake_mem_free(&s->mem);
    free(s);
}
