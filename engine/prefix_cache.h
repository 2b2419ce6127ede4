/* engine/prefix_cache.h - KV pages of finished requests kept for reuse
 * (automatic prefix caching, as vLLM's or llama-server's cache_prompt).
 *
 * When a sequence ends, each of its WHOLE pages is indexed by the tokens it
 * holds and the page before it: an entry is (parent entry, page_size tokens),
 * found through a hash of (parent's hash, tokens) and always verified by
 * comparing the parent and the tokens, so a hash collision can never hand out
 * wrong KV. A page's K/V rows depend on every token before it, and the chain
 * of parents from the first page spells exactly those tokens, so matching a
 * chain from the root matches the whole prefix. An entry is a physical page
 * of the KV cache (engine/kv_cache.h) on which the cache holds one reference:
 * nobody writes into it (a sequence that maps it writes past it, or copies it
 * first: copy on write).
 *
 * A page only the cache holds (reference 1) is evictable: the scheduler
 * counts those as free and evicts them, least recently used first, when it
 * needs the room (kiln_prefix_cache_make_room). Evicting an entry drops its
 * whole subtree from the index (those pages no longer have a reachable
 * chain); lookups touch a matched chain with older ticks deeper down, so the
 * least recently used entry is a leaf whenever possible.
 *
 * One cache per KV cache (one model, one kv type); entries are indexed by
 * physical page, so its memory is fixed at init. Not thread-safe (the
 * scheduler's thread owns it). */
#ifndef KILN_ENGINE_PREFIX_CACHE_H
#define KILN_ENGINE_PREFIX_CACHE_H

#include <stdint.h>

#include "engine/kv_cache.h"

typedef struct kiln_prefix_cache {
    kiln_kv_cache *kv;
    int ps, n_pages, n_buckets;        /* n_buckets: a power of two */
    int32_t *toks;                     /* [n_pages][ps]: the tokens an entry's page holds */
    int *parent;                       /* [n_pages]: the entry before (-1: the first page) */
    int *child, *sibling;              /* first child, next sibling (-1: none) */
    int *bucket, *next;                /* hash index: heads [n_buckets], chains [n_pages] (-1 ends) */
    uint64_t *hash;                    /* [n_pages]: hash of the entry's whole chain */
    unsigned long long *tick;          /* [n_pages]: last use (larger: more recent) */
    unsigned char *in;                 /* [n_pages]: 1 if the page is an entry */
    unsigned long long clock;
    int n_entries;
    unsigned long long evicted;        /* pages dropped from the index to make room, total */
} kiln_prefix_cache;

int kiln_prefix_cache_init(kiln_prefix_cache *pc, kiln_kv_cache *kv, kiln_err *e);
/* Drops every entry (their pages return to the free list unless a sequence
 * still holds them). Before the KV cache is freed. */
void kiln_prefix_cache_free(kiln_prefix_cache *pc);

/* The longest chain of entries matching toks[0 .. max_pages * ps): writes
 * its pages to pages[] and returns how many (0: none). Touches the chain. */
int kiln_prefix_cache_lookup(kiln_prefix_cache *pc, const int32_t *toks, int max_pages, int *pages);
/* Indexes the whole pages of s that hold toks[0 .. n_tokens) (s->n_tokens
 * >= n_tokens; a finished or preempted sequence, before it is freed): pages
 * whose prefix is indexed already are skipped (the entry stays), the others
 * become entries (one reference each). Returns the pages newly indexed. */
int kiln_prefix_cache_insert(kiln_prefix_cache *pc, const kiln_kv_seq *s, const int32_t *toks, int n_tokens);
/* Entries only the cache holds: the pages that evicting all would free. */
int kiln_prefix_cache_evictable(const kiln_prefix_cache *pc);
/* Of pages[0 .. n), those only the cache holds (a lookup's chain that
 * mapping into a sequence will make unevictable). */
int kiln_prefix_cache_pinned_by(const kiln_prefix_cache *pc, const int *pages, int n);
/* Evicts least recently used entries until the KV cache has n_free free
 * pages or nothing more is evictable. Returns the free pages then. */
int kiln_prefix_cache_make_room(kiln_prefix_cache *pc, int n_free);

#endif
