/* ctable.c: bounded, checked hash tables (see ctable.h). */
#include "ctable.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_BUCKETS 1024

bool ctable_init(struct ctable *t, uint32_t max)
{
    t->nb = CACHE_BUCKETS;
    t->max = max;
    t->b = calloc(t->nb, sizeof(*t->b));
    return t->b != NULL;
}

/* The entry for key whose check matches, with a reference taken and its
 * use order refreshed; NULL when there is none. */
struct centry *ctable_hit(struct ctable *t, uint64_t *tick, uint64_t key, const uint32_t *check,
                          uint32_t ncheck)
{
    for (struct centry *e = t->b[key % t->nb]; e != NULL; e = e->next)
        if (e->key == key && e->ncheck == ncheck &&
            memcmp(e->check, check, ncheck * sizeof(uint32_t)) == 0) {
            e->refs++;
            e->tick = ++*tick;
            return e;
        }
    return NULL;
}

/* Unlinks and returns the least recently used entry no run holds, or NULL.
 * */
struct centry *ctable_take_lru(struct ctable *t)
{
    struct centry **best = NULL;
    for (uint32_t b = 0; b < t->nb; b++)
        for (struct centry **l = &t->b[b]; *l != NULL; l = &(*l)->next)
            if ((*l)->refs == 0 && (best == NULL || (*l)->tick < (*best)->tick))
                best = l;
    if (best == NULL)
        return NULL;
    struct centry *e = *best;
    *best = e->next;
    t->n--;
    return e;
}

/* Adds e if the table has room (after evict made some); false when it is
 * full of entries in use. */
bool ctable_add(struct ctable *t, uint64_t *tick, struct centry *e)
{
    if (t->n >= t->max)
        return false;
    e->tick = ++*tick;
    e->next = t->b[e->key % t->nb];
    t->b[e->key % t->nb] = e;
    t->n++;
    return true;
}

void ctable_fini(struct ctable *t)
{
    free(t->b);
    t->b = NULL;
}

struct centry *ctable_drain(struct ctable *t)
{
    struct centry *all = NULL;
    for (uint32_t b = 0; t->b != NULL && b < t->nb; b++)
        for (struct centry *e = t->b[b], *n; e != NULL; e = n) {
            n = e->next;
            e->next = all;
            all = e;
        }
    if (t->b != NULL)
        memset(t->b, 0, t->nb * sizeof(*t->b));
    t->n = 0;
    return all;
}
