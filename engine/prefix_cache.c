/* engine/prefix_cache.c - see prefix_cache.h. Invariants: an entry's parent
 * is an entry (or -1); every entry is in exactly one hash chain and in its
 * parent's child list; the cache holds exactly one reference on each entry's
 * page; tick[parent] > tick[child]. */
#include "engine/prefix_cache.h"

#include <stdlib.h>
#include <string.h>

#define ROOT_HASH 0x9e3779b97f4a7c15ull

/* FNV-1a over the page's tokens, seeded by the parent's hash, then a
 * finalizer (splitmix64) so that the low bits index buckets well. */
static uint64_t page_hash(uint64_t parent, const int32_t *t, int n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ parent;
    for (int i = 0; i < n; i++) {
        uint32_t v = (uint32_t)t[i];
        for (int b = 0; b < 4; b++, v >>= 8)
            h = (h ^ (v & 0xff)) * 0x100000001b3ull;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

int kiln_prefix_cache_init(kiln_prefix_cache *pc, kiln_kv_cache *kv, kiln_err *e)
{
    memset(pc, 0, sizeof *pc);
    pc->kv = kv;
    pc->ps = kv->page_size;
    pc->n_pages = kv->n_pages;
    pc->n_buckets = 16;
    while (pc->n_buckets < 2 * pc->n_pages)
        pc->n_buckets *= 2;
    size_t n = (size_t)pc->n_pages;
    pc->toks = malloc(sizeof *pc->toks * n * (size_t)pc->ps);
    pc->parent = malloc(sizeof *pc->parent * n);
    pc->child = malloc(sizeof *pc->child * n);
    pc->sibling = malloc(sizeof *pc->sibling * n);
    pc->next = malloc(sizeof *pc->next * n);
    pc->bucket = malloc(sizeof *pc->bucket * (size_t)pc->n_buckets);
    pc->hash = malloc(sizeof *pc->hash * n);
    pc->tick = calloc(n, sizeof *pc->tick);
    pc->in = calloc(n, 1);
    if (!pc->toks || !pc->parent || !pc->child || !pc->sibling || !pc->next || !pc->bucket || !pc->hash ||
        !pc->tick || !pc->in) {
        kiln_prefix_cache_free(pc);
        return kiln_fail(e, KILN_E_NOMEM, "prefix cache: out of host memory for %d pages of %d tokens", kv->n_pages,
                         kv->page_size);
    }
    for (int i = 0; i < pc->n_buckets; i++)
        pc->bucket[i] = -1;
    for (int i = 0; i < pc->n_pages; i++)
        pc->child[i] = -1;
    return 0;
}

/* The entry (parent, t) whose chain hashes to h, or -1. */
static int find(const kiln_prefix_cache *pc, int parent, uint64_t h, const int32_t *t)
{
    for (int x = pc->bucket[h & (uint64_t)(pc->n_buckets - 1)]; x >= 0; x = pc->next[x])
        if (pc->hash[x] == h && pc->parent[x] == parent &&
            !memcmp(pc->toks + (size_t)x * (size_t)pc->ps, t, sizeof *t * (size_t)pc->ps))
            return x;
    return -1;
}

static void unlink_from(int *head, int *link, int x)
{
    for (int *p = head; *p >= 0; p = &link[*p])
        if (*p == x) {
            *p = link[x];
            return;
        }
}

/* Drops x and its whole subtree from the index, releasing the cache's
 * reference on each page. Depth first through the child lists themselves
 * (each dropped entry's children are spliced in front of the rest), so no
 * stack is needed. */
static void drop(kiln_prefix_cache *pc, int x)
{
    if (pc->parent[x] >= 0)
        unlink_from(&pc->child[pc->parent[x]], pc->sibling, x);
    pc->sibling[x] = -1;
    int todo = x;
    while (todo >= 0) {
        int y = todo;
        todo = pc->sibling[y];
        for (int c = pc->child[y]; c >= 0;) { /* push y's children */
            int nc = pc->sibling[c];
            pc->sibling[c] = todo;
            todo = c;
            c = nc;
        }
        pc->child[y] = -1;
        unlink_from(&pc->bucket[pc->hash[y] & (uint64_t)(pc->n_buckets - 1)], pc->next, y);
        pc->in[y] = 0;
        pc->n_entries--;
        pc->evicted++;
        kiln_kv_page_release(pc->kv, y);
    }
}

void kiln_prefix_cache_free(kiln_prefix_cache *pc)
{
    if (pc->in)
        for (int p = 0; p < pc->n_pages; p++)
            if (pc->in[p] && pc->parent[p] < 0)
                drop(pc, p);
    free(pc->toks);
    free(pc->parent);
    free(pc->child);
    free(pc->sibling);
    free(pc->next);
    free(pc->bucket);
    free(pc->hash);
    free(pc->tick);
    free(pc->in);
    memset(pc, 0, sizeof *pc);
}

int kiln_prefix_cache_lookup(kiln_prefix_cache *pc, const int32_t *toks, int max_pages, int *pages)
{
    int parent = -1, n = 0;
    uint64_t h = ROOT_HASH;
    while (n < max_pages) {
        const int32_t *t = toks + (size_t)n * (size_t)pc->ps;
        h = page_hash(h, t, pc->ps);
        int x = find(pc, parent, h, t);
        if (x < 0)
            break;
        pages[n++] = parent = x;
    }
    /* deeper entries older, so leaves go first */
    pc->clock += (unsigned long long)n;
    for (int i = 0; i < n; i++)
        pc->tick[pages[i]] = pc->clock - (unsigned long long)i;
    return n;
}

int kiln_prefix_cache_insert(kiln_prefix_cache *pc, const kiln_kv_seq *s, const int32_t *toks, int n_tokens)
{
    int np = n_tokens / pc->ps, added = 0, parent = -1;
    if (np > s->n_pages)
        np = s->n_pages;
    uint64_t h = ROOT_HASH;
    pc->clock += (unsigned long long)np;
    for (int i = 0; i < np; i++) {
        const int32_t *t = toks + (size_t)i * (size_t)pc->ps;
        h = page_hash(h, t, pc->ps);
        int x = find(pc, parent, h, t);
        if (x < 0) {
            x = s->pages[i];
            if (pc->in[x]) /* indexed under another chain: cannot happen (no one writes an entry); never alias */
                break;
            pc->in[x] = 1;
            memcpy(pc->toks + (size_t)x * (size_t)pc->ps, t, sizeof *t * (size_t)pc->ps);
            pc->parent[x] = parent;
            pc->hash[x] = h;
            pc->child[x] = -1;
            pc->sibling[x] = parent >= 0 ? pc->child[parent] : -1;
            if (parent >= 0)
                pc->child[parent] = x;
            int *b = &pc->bucket[h & (uint64_t)(pc->n_buckets - 1)];
            pc->next[x] = *b;
            *b = x;
            kiln_kv_page_hold(pc->kv, x);
            pc->n_entries++;
            added++;
        }
        pc->tick[x] = pc->clock - (unsigned long long)i;
        parent = x;
    }
    return added;
}

int kiln_prefix_cache_evictable(const kiln_prefix_cache *pc)
{
    int n = 0;
    for (int p = 0; p < pc->n_pages; p++)
        n += pc->in[p] && pc->kv->ref[p] == 1;
    return n;
}

int kiln_prefix_cache_pinned_by(const kiln_prefix_cache *pc, const int *pages, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += pc->in[pages[i]] && pc->kv->ref[pages[i]] == 1;
    return k;
}

int kiln_prefix_cache_make_room(kiln_prefix_cache *pc, int n_free)
{
    while (pc->kv->n_free < n_free) {
        int lru = -1;
        for (int p = 0; p < pc->n_pages; p++)
            if (pc->in[p] && pc->kv->ref[p] == 1 && (lru < 0 || pc->tick[p] < pc->tick[lru]))
                lru = p;
        if (lru < 0)
            break;
        drop(pc, lru);
    }
    return pc->kv->n_free;
}
