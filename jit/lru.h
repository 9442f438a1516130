/* lru.h: an intrusive doubly linked list kept in order of use, the
 * oldest first, for the caches that give back what was used longest ago
 * (devpool.c's free blocks, cuda_disk.c's modules).
 *
 * A record embeds a struct jit_lru_link and finds itself from it with
 * JIT_LRU_OWNER. No allocation; the caller's lock guards the list.
 */
#ifndef KILN_JIT_LRU_H
#define KILN_JIT_LRU_H

#include <stddef.h>

struct jit_lru_link {
    struct jit_lru_link *older, *newer;
};

struct jit_lru {
    struct jit_lru_link *oldest, *newest; /* NULL when empty */
};

/* The record of type `type` whose member `member` is `link`. */
#define JIT_LRU_OWNER(link, type, member)                                                          \
    ((type *) (void *) ((char *) (link) - (offsetof(type, member))))

/* Appends e as the newest. */
static inline void jit_lru_push(struct jit_lru *l, struct jit_lru_link *e)
{
    e->older = l->newest;
    e->newer = NULL;
    if (l->newest != NULL)
        l->newest->newer = e;
    else
        l->oldest = e;
    l->newest = e;
}

/* Takes e (which is on l) off the list. */
static inline void jit_lru_unlink(struct jit_lru *l, struct jit_lru_link *e)
{
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        l->oldest = e->newer;
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        l->newest = e->older;
    e->older = e->newer = NULL;
}

#endif
