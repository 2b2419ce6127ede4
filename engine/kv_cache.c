/* engine/kv_cache.c - see kv_cache.h. Invariant: every physical page is
 * either on the free stack (ref 0) or held ref[page] times: by the tables
 * of sequences and by other holders (kiln_kv_page_hold, a prefix cache). */
#include "engine/kv_cache.h"

#include <stdlib.h>
#include <string.h>

const char *kiln_kv_type_name(int t) { return t == KILN_KV_F16 ? "f16" : t == KILN_KV_F32 ? "f32" : "?"; }

int kiln_kv_type_parse(const char *s, int *t)
{
    if (!strcmp(s, "f32"))
        *t = KILN_KV_F32;
    else if (!strcmp(s, "f16"))
        *t = KILN_KV_F16;
    else
        return -1;
    return 0;
}

size_t kiln_kv_bytes_per_token(const kiln_kv_cache *c)
{
    return 2u * (size_t)c->n_layer * (size_t)c->kv_heads * (size_t)c->head_dim * (size_t)c->elem;
}

int kiln_kv_cache_init(kiln_kv_cache *c, kiln_device *d, int n_layer, int kv_heads, int head_dim, int page_size,
                       int n_tokens, int kv_type, kiln_err *e)
{
    memset(c, 0, sizeof *c);
    if (kv_type != KILN_KV_F32 && kv_type != KILN_KV_F16)
        return kiln_fail(e, KILN_E_INVALID, "kv cache: element type %d is neither f32 (%d) nor f16 (%d)", kv_type,
                         KILN_KV_F32, KILN_KV_F16);
    if (n_layer <= 0 || kv_heads <= 0 || head_dim <= 0 || page_size <= 0 || n_tokens <= 0)
        return kiln_fail(e, KILN_E_INVALID, "kv cache: bad geometry (layers %d, kv heads %d, head dim %d, page %d, "
                         "tokens %d)", n_layer, kv_heads, head_dim, page_size, n_tokens);
    c->dev = d;
    c->n_layer = n_layer;
    c->kv_heads = kv_heads;
    c->head_dim = head_dim;
    c->page_size = page_size;
    c->kv_type = kv_type;
    c->elem = kv_type == KILN_KV_F16 ? 2 : 4;
    c->n_pages = (n_tokens + page_size - 1) / page_size;
    size_t pool = (size_t)c->n_pages * (size_t)kv_heads * (size_t)page_size * (size_t)head_dim;
    if (pool >= (1ull << 32))
        return kiln_fail(e, KILN_E_INVALID, "kv cache: %zu elements per pool exceeds 2^32 (kernels use 32-bit "
                         "offsets); use fewer tokens", pool);
    c->k = calloc((size_t)n_layer, sizeof *c->k);
    c->v = calloc((size_t)n_layer, sizeof *c->v);
    c->free_pages = malloc(sizeof *c->free_pages * (size_t)c->n_pages);
    c->ref = calloc((size_t)c->n_pages, sizeof *c->ref);
    if (!c->k || !c->v || !c->free_pages || !c->ref) {
        kiln_kv_cache_free(c);
        return kiln_fail(e, KILN_E_NOMEM, "kv cache: out of host memory");
    }
    for (int l = 0; l < n_layer; l++) {
        size_t pb = pool * (size_t)c->elem;
        c->k[l] = kiln_alloc(d, pb, e);
        c->v[l] = c->k[l] ? kiln_alloc(d, pb, e) : NULL;
        if (!c->v[l]) {
            kiln_kv_cache_free(c);
            return kiln_err_wrap(e, "kv cache: layer %d pools (%zu MiB each, %s, %d pages of %d tokens)", l,
                                 pb >> 20, kiln_kv_type_name(kv_type), c->n_pages, page_size);
        }
        c->bytes += 2 * pb;
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
    free(c->ref);
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

/* The page holding position n_tokens when it is partly filled and shared:
 * the next write must copy it first. -1 if none. */
static int cow_slot(const kiln_kv_seq *s)
{
    const kiln_kv_cache *c = s->cache;
    if (s->n_tokens % c->page_size == 0)
        return -1;
    int slot = s->n_tokens / c->page_size;
    return c->ref[s->pages[slot]] > 1 ? slot : -1;
}

int kiln_kv_seq_pages_needed(const kiln_kv_seq *s, int n)
{
    const kiln_kv_cache *c = s->cache;
    int need = (s->n_tokens + n + c->page_size - 1) / c->page_size;
    return (need > s->n_pages ? need - s->n_pages : 0) + (n > 0 && cow_slot(s) >= 0);
}

/* Physical page `from` -> `to` in every pool (a host round trip: pages are
 * copied rarely, once per shared prefix that a sequence writes after).
 * Bytes, whatever the element type. */
static int copy_page(kiln_kv_cache *c, int from, int to, kiln_err *e)
{
    size_t pb = (size_t)c->kv_heads * (size_t)c->page_size * (size_t)c->head_dim * (size_t)c->elem;
    void *tmp = malloc(pb);
    if (!tmp)
        return kiln_fail(e, KILN_E_NOMEM, "kv cache: copying a page: out of memory");
    int rc = 0;
    for (int l = 0; !rc && l < c->n_layer; l++)
        for (int kv = 0; !rc && kv < 2; kv++) {
            kiln_buffer *pool = kv ? c->v[l] : c->k[l];
            if ((rc = kiln_read(c->dev, pool, (size_t)from * pb, tmp, pb, e)) ||
                (rc = kiln_write(c->dev, pool, (size_t)to * pb, tmp, pb, e)))
                kiln_err_wrap(e, "kv cache: copy on write of page %d to %d (layer %d %s)", from, to, l, kv ? "V" : "K");
        }
    free(tmp);
    return rc;
}

int kiln_kv_seq_reserve(kiln_kv_seq *s, int n, kiln_err *e)
{
    kiln_kv_cache *c = s->cache;
    int need = (s->n_tokens + n + c->page_size - 1) / c->page_size;
    int cow = n > 0 ? cow_slot(s) : -1;
    if (need <= s->n_pages && cow < 0)
        return 0;
    if (need > s->max_pages)
        return kiln_fail(e, KILN_E_FULL, "KV cache full: the sequence holds %d tokens and needs %d more, past its "
                         "limit of %d tokens", s->n_tokens, n, s->max_pages * c->page_size);
    int more = (need > s->n_pages ? need - s->n_pages : 0) + (cow >= 0);
    if (more > c->n_free)
        return kiln_fail(e, KILN_E_FULL, "KV cache full: %d more pages of %d tokens needed, %d of %d free", more,
                         c->page_size, c->n_free, c->n_pages);
    int first = s->n_pages, old = -1, rc;
    if (cow >= 0) { /* the partly filled shared page: this sequence writes into its own copy */
        old = s->pages[cow];
        int p = c->free_pages[c->n_free - 1];
        if ((rc = copy_page(c, old, p, e)))
            return rc;
        c->n_free--;
        c->ref[old]--;
        c->ref[p] = 1;
        s->pages[cow] = p;
        first = cow;
        c->cow_copies++;
    }
    int grown = s->n_pages;
    while (s->n_pages < need) {
        int p = c->free_pages[--c->n_free];
        c->ref[p] = 1;
        s->pages[s->n_pages++] = p;
    }
    rc = kiln_write(c->dev, s->table, (size_t)first * 4, s->pages + first, (size_t)(s->n_pages - first) * 4, e);
    if (rc) { /* give the pages back: nothing changed */
        while (s->n_pages > grown) {
            int p = s->pages[--s->n_pages];
            c->ref[p] = 0;
            c->free_pages[c->n_free++] = p;
        }
        if (old >= 0) {
            c->ref[s->pages[cow]] = 0;
            c->free_pages[c->n_free++] = s->pages[cow];
            c->ref[old]++;
            s->pages[cow] = old;
        }
        return kiln_err_wrap(e, "kv cache: uploading the page table");
    }
    return 0;
}

int kiln_kv_seq_map(kiln_kv_seq *s, const int *pages, int np, int n_tokens, kiln_err *e)
{
    kiln_kv_cache *c = s->cache;
    if (s->n_pages || s->n_tokens || n_tokens < 0 || np != (n_tokens + c->page_size - 1) / c->page_size)
        return kiln_fail(e, KILN_E_INVALID, "kv map: %d tokens in %d pages of %d into a sequence holding %d (an "
                         "empty target, the pages the tokens need)", n_tokens, np, c->page_size, s->n_tokens);
    if (np > s->max_pages)
        return kiln_fail(e, KILN_E_FULL, "kv map: %d tokens past the sequence's limit of %d", n_tokens,
                         s->max_pages * c->page_size);
    for (int i = 0; i < np; i++)
        if (pages[i] < 0 || pages[i] >= c->n_pages || c->ref[pages[i]] <= 0)
            return kiln_fail(e, KILN_E_INVALID, "kv map: entry %d is page %d, which is not held (%d pages)", i,
                             pages[i], c->n_pages);
    if (!np)
        return 0;
    memcpy(s->pages, pages, sizeof *s->pages * (size_t)np);
    int rc = kiln_write(c->dev, s->table, 0, s->pages, (size_t)np * 4, e);
    if (rc)
        return kiln_err_wrap(e, "kv map: uploading the page table");
    for (int i = 0; i < np; i++)
        c->ref[s->pages[i]]++;
    s->n_pages = np;
    s->n_tokens = n_tokens;
    return 0;
}

int kiln_kv_seq_share(kiln_kv_seq *s, const kiln_kv_seq *src, int n_tokens, kiln_err *e)
{
    kiln_kv_cache *c = s->cache;
    if (src->cache != c || n_tokens < 0 || n_tokens > src->n_tokens)
        return kiln_fail(e, KILN_E_INVALID, "kv share: %d tokens of a sequence holding %d into one holding %d (the "
                         "same cache, an empty target)", n_tokens, src->n_tokens, s->n_tokens);
    int np = (n_tokens + c->page_size - 1) / c->page_size;
    int rc = kiln_kv_seq_map(s, src->pages, np, n_tokens, e);
    return rc ? kiln_err_wrap(e, "kv share") : 0;
}

void kiln_kv_page_hold(kiln_kv_cache *c, int p) { c->ref[p]++; }

void kiln_kv_page_release(kiln_kv_cache *c, int p)
{
    if (--c->ref[p] == 0)
        c->free_pages[c->n_free++] = p;
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
        kiln_kv_page_release(c, s->pages[--s->n_pages]);
}
