/* engine/kv_cache.h - the paged KV cache.
 *
 * Pools (per layer, K and V): f32 or f16 (the cache's kv_type)
 * [n_pages][kv_heads][page_size][head_dim], the layout kernels/attention_paged
 * reads (f16: rounded to nearest even by kv_append, read back into f32
 * arithmetic; half the memory). Pages are handed out from a free
 * list; each sequence has its own page table (logical page -> physical page)
 * on the device. Growing a sequence past the free pages fails with
 * KILN_E_FULL and changes nothing, so the caller can stop cleanly.
 *
 * Pages are reference counted: kiln_kv_seq_share maps another sequence's
 * first pages into a new sequence (a shared system prompt computed once).
 * A page returns to the free list when its last holder lets go. Writing into
 * a page another sequence also holds (the partly filled last page of a
 * shared prefix) copies it first (copy on write, in kiln_kv_seq_reserve), so
 * no sequence ever sees another's tokens.
 *
 * Holders other than sequences (the scheduler's prefix cache of finished
 * requests, engine/prefix_cache.h) take and drop references on single pages
 * with kiln_kv_page_hold / kiln_kv_page_release and map pages they hold into
 * a new sequence with kiln_kv_seq_map. */
#ifndef KILN_ENGINE_KV_CACHE_H
#define KILN_ENGINE_KV_CACHE_H

#include "devices/device.h"

/* Element type of the pools (kiln_engine_opts.kv_type, --kv-type). */
typedef enum kiln_kv_type {
    KILN_KV_F32 = 0, /* the default (zero-initialized options) */
    KILN_KV_F16 = 1,
} kiln_kv_type;
const char *kiln_kv_type_name(int t);            /* "f32" / "f16" */
int kiln_kv_type_parse(const char *s, int *t);   /* 0, or -1 if s is neither */

typedef struct kiln_kv_cache {
    kiln_device *dev;
    int n_layer, kv_heads, head_dim, page_size, n_pages;
    int kv_type;            /* kiln_kv_type */
    int elem;               /* bytes per element: 4 (f32) or 2 (f16) */
    kiln_buffer **k, **v;   /* [n_layer] pools */
    int *free_pages;        /* stack of free physical pages */
    int n_free;
    int *ref;               /* [n_pages] sequences holding each page (0: free) */
    unsigned long long cow_copies; /* pages copied on write so far */
    size_t bytes;           /* device bytes of all pools */
} kiln_kv_cache;

typedef struct kiln_kv_seq {
    kiln_kv_cache *cache;
    int n_tokens;           /* tokens whose K/V rows are stored */
    int n_pages, max_pages; /* pages held; capacity of the table */
    int *pages;             /* host copy of the page table */
    kiln_buffer *table;     /* device page table, i32 [max_pages] */
} kiln_kv_seq;

/* n_tokens of capacity in total, rounded up to whole pages; kv_type a kiln_kv_type. */
int kiln_kv_cache_init(kiln_kv_cache *c, kiln_device *d, int n_layer, int kv_heads, int head_dim, int page_size,
                       int n_tokens, int kv_type, kiln_err *e);
/* Device bytes one token's K and V rows take over all layers. */
size_t kiln_kv_bytes_per_token(const kiln_kv_cache *c);
void kiln_kv_cache_free(kiln_kv_cache *c);

/* A sequence that may grow to max_tokens. */
int kiln_kv_seq_init(kiln_kv_seq *s, kiln_kv_cache *c, int max_tokens, kiln_err *e);
void kiln_kv_seq_free(kiln_kv_seq *s); /* returns its pages */
/* Makes room for n more tokens (pages from the free list, table uploaded;
 * a shared page about to be written is copied first). KILN_E_FULL (nothing
 * changed) when the cache or the sequence is full. */
int kiln_kv_seq_reserve(kiln_kv_seq *s, int n, kiln_err *e);
/* Free pages kiln_kv_seq_reserve(s, n) would take (a copy on write counts). */
int kiln_kv_seq_pages_needed(const kiln_kv_seq *s, int n);
/* s (holding nothing) takes src's first n_tokens tokens by mapping the pages
 * that hold them (no copy; their references counted). n_tokens <= src's. */
int kiln_kv_seq_share(kiln_kv_seq *s, const kiln_kv_seq *src, int n_tokens, kiln_err *e);
/* s (holding nothing) takes n_tokens tokens held by the np physical pages
 * listed (a prefix cache's chain): mapped, their references counted.
 * np must be the pages n_tokens need. */
int kiln_kv_seq_map(kiln_kv_seq *s, const int *pages, int np, int n_tokens, kiln_err *e);
/* One more reference to physical page p (which must be held already). */
void kiln_kv_page_hold(kiln_kv_cache *c, int p);
/* One reference less; the last returns p to the free list. */
void kiln_kv_page_release(kiln_kv_cache *c, int p);
/* Forgets tokens from n on (a rejected turn, a rewind); pages past it return. */
void kiln_kv_seq_truncate(kiln_kv_seq *s, int n);

#endif
