/* engine/kv_cache.c - see kv_cache.h. Invariant: every physical page is
 * either on the free stack or in exactly one sequence's table. */
#include "engine/kv_cache.h"

#include <stdlib.h>
#include <string.h>

int kiln_kv_cache_init(kiln_kv_cache *c, kiln_device *d, int n_layer, int kv_heads, int head_dim, int page_size,
                       int n_tokens, kiln_err *e)
{
    memset(c, 0, sizeof *c);
    if (n_layer <= 0 || kv_heads <= 0 || head_dim <= 0 || page_size <= 0 || n_tokens <= 0)
        return kiln_fail(e, KILN_E_INVALID, "kv cache: bad geometry (layers %d, kv heads %d, head dim %d, page %d, "
                         "tokens %d)", n_layer, kv_heads, head_dim, page_size, n_tokens);
    c->dev = d;
    c->n_layer = n_layer;
    c->kv_heads = kv_heads;
    c->head_dim = head_dim;
    c->page_size = page_size;
    c->n_pages = (n_tokens + page_size - 1) / page_size;
    size_t pool = (size_t)c->n_pages * (size_t)kv_heads * (size_t)page_size * (size_t)head_dim;
    if (pool >= (1ull << 32))
        return kiln_fail(e, KILN_E_INVALID, "kv cache: %zu elements per pool exceeds 2^32 (kernels use 32-bit "
                         "offsets); use fewer tokens", pool);
    c->k = calloc((size_t)n_layer, sizeof *c->k);
    c->v = calloc((size_t)n_layer, sizeof *c->v);
    c->free_pages = malloc(sizeof *c->free_pages * (size_t)c->n_pages);
    if (!c->k || !c->v || !c->free_pages) {
        kiln_kv_cache_free(c);
        return kiln_fail(e, KILN_E_NOMEM, "kv cache: out of host memory");
    }
    for (int l = 0; l < n_layer; l++) {
        c->k[l] = kiln_alloc(d, pool * 4, e);
        c->v[l] = c->k[l] ? kiln_alloc(d, pool * 4, e) : NULL;
        if (!c->v[l]) {
            kiln_kv_cache_free(c);
            return kiln_err_wrap(e, "kv cache: layer %d pools (%zu MiB each, %d pages of %d tokens)", l,
                                 pool * 4 >> 20, c->n_pages, page_size);
        }
        c->bytes += 2 * pool * 4;
    }
    /* pop order 0, 1, 2, ... so tests see a predictable mapping; tables are
     * still non-trivial once sequences interleave */
    for (int i = 0; i < c->n_pages; i++)
        c->free_pages[i] = c->n_pages - 1 - i;
    c->n_free = c->n_pages;
    return 0;
}

void kiln_kv_cache_free(kiln_kv_cache *c)
{
    for (int l = 0; c->k && l < c->n_layer; l++) {
        kiln_free(c->dev, c->k[l]);
        if (c->v)
            kiln_free(c->dev, c->v[l]);
    }
    free(c->k);
    free(c->v);
    free(c->free_pages);
    memset(c, 0, sizeof *c);
}

int kiln_kv_seq_init(kiln_kv_seq *s, kiln_kv_cache *c, int max_tokens, kiln_err *e)
{
    memset(s, 0, sizeof *s);
    s->cache = c;
    s->max_pages = (max_tokens + c->page_size - 1) / c->page_size;
    if (s->max_pages < 1)
        s->max_pages = 1;
    s->pages = calloc((size_t)s->max_pages, sizeof *s->pages);
    if (!s->pages)
        return kiln_fail(e, KILN_E_NOMEM, "kv sequence: out of memory");
    s->table = kiln_alloc(c->dev, (size_t)s->max_pages * 4, e);
    if (!s->table) {
        free(s->pages);
        return kiln_err_wrap(e, "kv sequence: page table");
    }
    /* unused entries point at page 0, never read past ctx */
    if (kiln_write(c->dev, s->table, 0, s->pages, (size_t)s->max_pages * 4, e)) {
        kiln_kv_seq_free(s);
        return kiln_err_wrap(e, "kv sequence: page table");
    }
    return 0;
}

void kiln_kv_seq_free(kiln_kv_seq *s)
{
    if (!s->cache)
        return;
    kiln_kv_seq_truncate(s, 0);
    kiln_free(s->cache->dev, s->table);
    free(s->pages);
    memset(s, 0, sizeof *s);
}

int kiln_kv_seq_reserve(kiln_kv_seq *s, int n, kiln_err *e)
{
    kiln_kv_cache *c = s->cache;
    int need = (s->n_tokens + n + c->page_size - 1) / c->page_size;
    if (need <= s->n_pages)
        return 0;
    if (need > s->max_pages)
        return kiln_fail(e, KILN_E_FULL, "KV cache full: the sequence holds %d tokens and needs %d more, past its "
                         "limit of %d tokens", s->n_tokens, n, s->max_pages * c->page_size);
    if (need - s->n_pages > c->n_free)
        return kiln_fail(e, KILN_E_FULL, "KV cache full: %d more pages of %d tokens needed, %d of %d free",
                         need - s->n_pages, c->page_size, c->n_free, c->n_pages);
    int first = s->n_pages;
    while (s->n_pages < need)
        s->pages[s->n_pages++] = c->free_pages[--c->n_free];
    int rc = kiln_write(c->dev, s->table, (size_t)first * 4, s->pages + first, (size_t)(need - first) * 4, e);
    if (rc) { /* give the pages back: nothing changed */
        while (s->n_pages > first)
            c->free_pages[c->n_free++] = s->pages[--s->n_pages];
        return kiln_err_wrap(e, "kv cache: uploading the page table");
    }
    return 0;
}

void kiln_kv_seq_truncate(kiln_kv_seq *s, int n)
{
    kiln_kv_cache *c = s->cache;
    if (n < 0)
        n = 0;
    if (n < s->n_tokens)
        s->n_tokens = n;
    int keep = (s->n_tokens + c->page_size - 1) / c->page_size;
    while (s->n_pages > keep)
        c->free_pages[c->n_free++] = s->pages[--s->n_pages];
}
