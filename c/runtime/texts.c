/*
 * texts.c - text entries: the strings of labels and marks.
 *
 * Entries are packed into text blocks mapped with mmap and linked from
 * root.texts; space in the newest block is handed out with a CAS on its
 * `used` field, a new block is linked with a CAS on root.texts. A small hash
 * table keyed by the string pointers remembers recent entries, so labelling
 * a million blocks with the same literals makes one entry; a hit is only
 * reused when the stored strings still equal the ones passed (the pointers
 * may name a buffer that has been rewritten). No lock, no malloc: callable
 * from a signal handler.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>

#include "runtime.h"

#define MS_TEXT_BLOCK_SIZE (64u * 1024u)
#define MS_TEXT_SLOTS 1024u /* power of two */

static uint64_t text_slots[MS_TEXT_SLOTS]; /* entry addresses, 0 = empty */

static uint64_t entry_size(uint32_t bytes)
{
    return (sizeof(struct memscope_text) + bytes + 7u) & ~(uint64_t)7u;
}

static int entry_matches(uint64_t addr, const char *a, size_t la, const char *b, size_t lb, uint32_t strings)
{
    const struct memscope_text *e = (const struct memscope_text *)(uintptr_t)addr;
    const char *payload = (const char *)(e + 1);

    if (e->strings != strings || e->bytes != la + 1 + (strings == 2 ? lb + 1 : 0))
        return 0;
    if (memcmp(payload, a, la + 1) != 0)
        return 0;
    return strings == 1 || memcmp(payload + la + 1, b, lb + 1) == 0;
}

/* Maps and links a new text block; 0 when the budget or memory ran out. */
static struct memscope_text_block *new_block(uint64_t seen_head)
{
    struct memscope_store_root *root = &memscope_store_root;
    struct memscope_text_block *blk;

    if (ms_budget_take(MS_TEXT_BLOCK_SIZE) != 0)
        return NULL;
    blk = mmap(NULL, MS_TEXT_BLOCK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (blk == MAP_FAILED) {
        ms_budget_give(MS_TEXT_BLOCK_SIZE);
        return NULL;
    }
    blk->magic = MEMSCOPE_TEXT_BLOCK_MAGIC;
    blk->next = seen_head;
    blk->capacity = MS_TEXT_BLOCK_SIZE - sizeof(*blk);
    blk->used = 0;
    if (!__atomic_compare_exchange_n(&root->texts, &seen_head, (uint64_t)(uintptr_t)blk, 0, __ATOMIC_RELEASE,
                                     __ATOMIC_RELAXED)) {
        /* Another thread linked one first: use theirs. */
        munmap(blk, MS_TEXT_BLOCK_SIZE);
        ms_budget_give(MS_TEXT_BLOCK_SIZE);
        return (struct memscope_text_block *)(uintptr_t)seen_head;
    }
    __atomic_fetch_add(&root->text_bytes, MS_TEXT_BLOCK_SIZE, __ATOMIC_RELAXED);
    return blk;
}

/* Hands out `size` bytes of entry space; 0 when the budget is reached. */
static uint64_t reserve(uint64_t size)
{
    struct memscope_store_root *root = &memscope_store_root;

    for (;;) {
        uint64_t head = __atomic_load_n(&root->texts, __ATOMIC_ACQUIRE);
        struct memscope_text_block *blk = (struct memscope_text_block *)(uintptr_t)head;
        if (blk) {
            uint64_t used = __atomic_load_n(&blk->used, __ATOMIC_RELAXED);
            while (used + size <= blk->capacity) {
                if (__atomic_compare_exchange_n(&blk->used, &used, used + size, 1, __ATOMIC_RELAXED,
                                                __ATOMIC_RELAXED))
                    return (uint64_t)(uintptr_t)(blk + 1) + used;
            }
        }
        if (!new_block(head))
            return 0;
    }
}

uint64_t ms_text_entry(const char *a, const char *b, uint32_t strings)
{
    size_t la = strlen(a), lb = strings == 2 ? strlen(b) : 0;
    uint32_t bytes = (uint32_t)(la + 1 + (strings == 2 ? lb + 1 : 0));
    uintptr_t h = ((uintptr_t)a * 0x9e3779b97f4a7c15ull) ^ ((uintptr_t)b * 0xc2b2ae3d27d4eb4full);
    uint64_t *slot = &text_slots[(h >> 40) & (MS_TEXT_SLOTS - 1)];
    uint64_t addr = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

    if (addr && entry_matches(addr, a, la, b, lb, strings))
        return addr;
    addr = reserve(entry_size(bytes));
    if (!addr)
        return 0;
    struct memscope_text *e = (struct memscope_text *)(uintptr_t)addr;
    char *payload = (char *)(e + 1);
    e->bytes = bytes;
    e->strings = strings;
    memcpy(payload, a, la + 1);
    if (strings == 2)
        memcpy(payload + la + 1, b, lb + 1);
    __atomic_store_n(slot, addr, __ATOMIC_RELEASE);
    return addr;
}
