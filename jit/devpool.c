/* devpool.c: the caching device-memory pool (rules in devpool.h).
 *
 * Every block the backend gave has one record. A block in use sits in a
 * hash table by address (jit_devpool_free gets only the address). A cached
 * block sits in one array sorted by (tag, size, address), so the best fit
 * for a tag is one binary search; cached tag-0 blocks are also on a list
 * in the order they became free for everyone, which is the order limit
 * pressure gives them back in. A pool holds hundreds to a few thousand
 * cached blocks, where moving array entries costs less than keeping a
 * balanced tree.
 *
 * `held` counts the bytes obtained from the backend plus those being
 * obtained right now (reserved before the mutex is dropped around the
 * backend's call), so it is what the limit is checked against.
 */
#include "devpool.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "kiln_err.h"
#include "lru.h"

struct dp_block {
    uint64_t ptr;
    size_t size;              /* rounded: what the backend gave */
    uint64_t tag;             /* cached: the stream that may still use it */
    struct dp_block *hnext;   /* in use: hash chain; evicted: the give-back list */
    struct jit_lru_link link; /* cached with tag 0: the free-order list */
};

struct jit_devpool {
    struct jit_devpool_backend be;
    size_t limit; /* SIZE_MAX: none */
    pthread_mutex_t lock;
    size_t held;
    struct dp_block **live; /* hash buckets of blocks in use */
    unsigned live_bits;
    size_t nlive;
    struct dp_block **cache; /* cached, sorted by (tag, size, ptr) */
    size_t ncache, capcache;
    struct jit_lru free_order; /* cached tag-0 blocks, the least recently freed first */
    struct jit_devpool_stats st;
};

static bool round_size(size_t bytes, size_t *out)
{
    size_t g = bytes < JIT_DEVPOOL_LARGE ? JIT_DEVPOOL_SMALL_ROUND : JIT_DEVPOOL_LARGE_ROUND;
    if (bytes == 0)
        bytes = 1;
    if (bytes > SIZE_MAX - (g - 1))
        return false;
    *out = (bytes + g - 1) / g * g;
    return true;
}

/* ---- blocks in use -------------------------------------------------------- */

static size_t live_slot(const struct jit_devpool *p, uint64_t ptr)
{
    return (size_t) ((ptr * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - p->live_bits));
}

/* Doubles the table when it is fuller than one block a bucket; when that
 * allocation fails the chains just grow longer. */
static void live_grow(struct jit_devpool *p)
{
    size_t n = (size_t) 1 << p->live_bits;
    if (p->nlive < n || p->live_bits >= 40)
        return;
    struct dp_block **nb = calloc(2 * n, sizeof *nb);
    if (nb == NULL)
        return;
    struct dp_block **old = p->live;
    p->live = nb;
    p->live_bits++;
    for (size_t i = 0; i < n; i++)
        for (struct dp_block *b = old[i], *next; b != NULL; b = next) {
            next = b->hnext;
            size_t s = live_slot(p, b->ptr);
            b->hnext = nb[s];
            nb[s] = b;
        }
    free(old);
}

static void live_add(struct jit_devpool *p, struct dp_block *b)
{
    live_grow(p);
    size_t s = live_slot(p, b->ptr);
    b->hnext = p->live[s];
    p->live[s] = b;
    p->nlive++;
    p->st.in_use += b->size;
}

static struct dp_block *live_take(struct jit_devpool *p, uint64_t ptr)
{
    for (struct dp_block **q = &p->live[live_slot(p, ptr)]; *q != NULL; q = &(*q)->hnext)
        if ((*q)->ptr == ptr) {
            struct dp_block *b = *q;
            *q = b->hnext;
            b->hnext = NULL;
            p->nlive--;
            p->st.in_use -= b->size;
            return b;
        }
    return NULL;
}

/* ---- cached blocks -------------------------------------------------------- */

static int key_cmp(const struct dp_block *b, uint64_t tag, size_t size, uint64_t ptr)
{
    if (b->tag != tag)
        return b->tag < tag ? -1 : 1;
    if (b->size != size)
        return b->size < size ? -1 : 1;
    return (b->ptr > ptr) - (b->ptr < ptr);
}

static int block_cmp(const void *x, const void *y)
{
    const struct dp_block *a = *(struct dp_block *const *) x, *b = *(struct dp_block *const *) y;
    return key_cmp(a, b->tag, b->size, b->ptr);
}

/* Index of the first cached block whose key is at least (tag, size, ptr). */
static size_t cache_lower(const struct jit_devpool *p, uint64_t tag, size_t size, uint64_t ptr)
{
    size_t lo = 0, hi = p->ncache;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(p->cache[mid], tag, size, ptr) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool cache_insert(struct jit_devpool *p, struct dp_block *b)
{
    if (p->ncache == p->capcache) {
        size_t nc = p->capcache ? 2 * p->capcache : 64;
        struct dp_block **na = realloc(p->cache, nc * sizeof *na);
        if (na == NULL)
            return false;
        p->cache = na;
        p->capcache = nc;
    }
    size_t i = cache_lower(p, b->tag, b->size, b->ptr);
    for (size_t k = p->ncache; k > i; k--)
        p->cache[k] = p->cache[k - 1];
    p->cache[i] = b;
    p->ncache++;
    p->st.cached += b->size;
    if (b->tag == 0)
        jit_lru_push(&p->free_order, &b->link);
    return true;
}

static void cache_remove(struct jit_devpool *p, struct dp_block *b)
{
    size_t i = cache_lower(p, b->tag, b->size, b->ptr);
    assert(i < p->ncache && p->cache[i] == b);
    for (size_t k = i; k + 1 < p->ncache; k++)
        p->cache[k] = p->cache[k + 1];
    p->ncache--;
    p->st.cached -= b->size;
    if (b->tag == 0)
        jit_lru_unlink(&p->free_order, &b->link);
}

/* The best cached block for `size` bytes on stream `tag`: the smallest
 * that fits among the tag's own and the tag-0 ones (the tag's own on a
 * tie), at most twice `size` unless `any_slack`. Moved to the blocks in
 * use; NULL when none. */
static struct dp_block *cache_take(struct jit_devpool *p, uint64_t tag, size_t size, bool any_slack)
{
    struct dp_block *best = NULL;
    for (int pass = 0; pass < 2; pass++) {
        uint64_t t = pass == 0 ? tag : 0;
        if (pass == 1 && tag == 0)
            break;
        size_t i = cache_lower(p, t, size, 0);
        if (i == p->ncache || p->cache[i]->tag != t)
            continue;
        struct dp_block *b = p->cache[i];
        if ((any_slack || b->size - size <= size) && (best == NULL || b->size < best->size))
            best = b;
    }
    if (best == NULL)
        return NULL;
    cache_remove(p, best);
    live_add(p, best);
    p->st.cache_hits++;
    return best;
}

/* Takes cached tag-0 blocks off the pool, least recently freed first,
 * until `size` more bytes fit under the limit (all of them when `all`),
 * and returns them chained by hnext for give_back. */
static struct dp_block *evict(struct jit_devpool *p, size_t size, bool all)
{
    struct dp_block *gone = NULL;
    while (p->free_order.oldest != NULL &&
           (all || p->held > p->limit || p->limit - p->held < size)) {
        struct dp_block *b = JIT_LRU_OWNER(p->free_order.oldest, struct dp_block, link);
        cache_remove(p, b);
        p->held -= b->size;
        p->st.backend_frees++;
        b->hnext = gone;
        gone = b;
    }
    return gone;
}

/* Hands evicted blocks to the backend (the mutex not held). */
static void give_back(struct jit_devpool *p, struct dp_block *gone)
{
    while (gone != NULL) {
        struct dp_block *next = gone->hnext;
        p->be.free(p->be.ctx, gone->ptr, gone->size);
        free(gone);
        gone = next;
    }
}

/* ---- the API -------------------------------------------------------------- */

int jit_devpool_new(const struct jit_devpool_backend *b, size_t limit, struct jit_devpool **out)
{
    struct jit_devpool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return KILN_ENOMEM;
    p->live_bits = 6;
    p->live = calloc((size_t) 1 << p->live_bits, sizeof *p->live);
    if (p->live == NULL || pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p->live);
        free(p);
        return KILN_ENOMEM;
    }
    p->be = *b;
    p->limit = limit ? limit : SIZE_MAX;
    p->st.limit = limit ? (uint64_t) limit : UINT64_MAX;
    *out = p;
    return KILN_OK;
}

void jit_devpool_free_pool(struct jit_devpool *p)
{
    if (p == NULL)
        return;
    struct dp_block *gone = NULL;
    for (size_t i = 0; i < p->ncache; i++) {
        p->cache[i]->hnext = gone;
        gone = p->cache[i];
    }
    for (size_t s = 0; s < (size_t) 1 << p->live_bits; s++)
        while (p->live[s] != NULL) {
            struct dp_block *b = p->live[s];
            p->live[s] = b->hnext;
            b->hnext = gone;
            gone = b;
        }
    give_back(p, gone);
    free(p->cache);
    free(p->live);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int jit_devpool_alloc(struct jit_devpool *p, size_t bytes, uint64_t tag, uint64_t *ptr)
{
    size_t size;
    struct dp_block *b = malloc(sizeof *b), *hit = NULL;
    pthread_mutex_lock(&p->lock);
    p->st.allocs++;
    if (b == NULL || !round_size(bytes, &size) || size > p->limit)
        goto refuse;
    if ((hit = cache_take(p, tag, size, false)) != NULL)
        goto served;
    /* After a backend refusal every tag-0 block goes back before the next
     * try: the backend may be short of memory, or of one piece that big. */
    bool flush_all = false;
    unsigned reclaims = 0;
    for (;;) {
        struct dp_block *gone = evict(p, size, flush_all);
        size_t need;
        if (p->held <= p->limit && p->limit - p->held >= size) {
            p->held += size;
            pthread_mutex_unlock(&p->lock);
            give_back(p, gone);
            uint64_t got = 0;
            int rc = p->be.alloc(p->be.ctx, size, &got);
            pthread_mutex_lock(&p->lock);
            if (rc == KILN_OK) {
                b->ptr = got;
                b->size = size;
                b->tag = 0;
                live_add(p, b);
                p->st.backend_allocs++;
                if (p->held > p->st.peak)
                    p->st.peak = p->held;
                *ptr = got;
                pthread_mutex_unlock(&p->lock);
                return KILN_OK;
            }
            p->held -= size;
            bool retry = !flush_all && p->free_order.oldest != NULL;
            flush_all = true;
            if (retry)
                continue;
            need = size;
        } else {
            need = size - (p->limit - (p->held < p->limit ? p->held : p->limit));
            if (gone != NULL) {
                pthread_mutex_unlock(&p->lock);
                give_back(p, gone);
                pthread_mutex_lock(&p->lock);
            }
        }
        /* Short of memory: any cached block that fits will do. */
        if ((hit = cache_take(p, tag, size, true)) != NULL)
            goto served;
        if (p->be.reclaim == NULL || reclaims == JIT_DEVPOOL_MAX_RECLAIMS)
            goto refuse;
        reclaims++;
        pthread_mutex_unlock(&p->lock);
        size_t freed = p->be.reclaim(p->be.ctx, need);
        pthread_mutex_lock(&p->lock);
        p->st.reclaims++;
        p->st.reclaimed_bytes += freed;
        if (freed == 0)
            goto refuse;
        if ((hit = cache_take(p, tag, size, false)) != NULL)
            goto served;
    }
served:
    *ptr = hit->ptr;
    pthread_mutex_unlock(&p->lock);
    free(b);
    return KILN_OK;
refuse:
    p->st.refused++;
    pthread_mutex_unlock(&p->lock);
    free(b);
    return KILN_ENOMEM;
}

void jit_devpool_free(struct jit_devpool *p, uint64_t ptr, size_t bytes, uint64_t tag)
{
    pthread_mutex_lock(&p->lock);
    struct dp_block *b = live_take(p, ptr);
    assert(b != NULL); /* not a block of this pool, or freed twice */
    if (b == NULL) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    size_t size = 0;
    bool fits = round_size(bytes, &size) && size <= b->size;
    assert(fits); /* `bytes` is more than the block was allocated for */
    (void) fits;
    b->tag = tag;
    if (cache_insert(p, b)) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    /* No room to keep it: straight back to the backend. */
    p->held -= b->size;
    p->st.backend_frees++;
    pthread_mutex_unlock(&p->lock);
    b->hnext = NULL;
    give_back(p, b);
}

void jit_devpool_release_tag(struct jit_devpool *p, uint64_t tag)
{
    if (tag == 0)
        return;
    pthread_mutex_lock(&p->lock);
    size_t lo = cache_lower(p, tag, 0, 0), hi = lo;
    while (hi < p->ncache && p->cache[hi]->tag == tag) {
        p->cache[hi]->tag = 0;
        jit_lru_push(&p->free_order, &p->cache[hi]->link);
        hi++;
    }
    if (hi > lo)
        qsort(p->cache, p->ncache, sizeof *p->cache, block_cmp);
    pthread_mutex_unlock(&p->lock);
}

void jit_devpool_trim(struct jit_devpool *p)
{
    pthread_mutex_lock(&p->lock);
    struct dp_block *gone = evict(p, 0, true);
    pthread_mutex_unlock(&p->lock);
    give_back(p, gone);
}

void jit_devpool_stats(struct jit_devpool *p, struct jit_devpool_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->st;
    pthread_mutex_unlock(&p->lock);
}
