/* idmap.h: a hash map from 64-bit ids to pointers.
 *
 * Clients name things (sessions, vars) by integer ids, never by pointers;
 * every table that resolves such ids is an idmap. Open addressing with
 * linear probing and backward-shift deletion (no tombstones, so a churn of
 * inserts and removes never degrades lookups). Any key is allowed, 0
 * included; values must not be NULL (NULL means "absent").
 *
 * The map owns its slot arrays, not the values. Not thread-safe: the loop
 * thread owns every idmap. idmap_fini() is safe on a zeroed map.
 */
#ifndef KILND_IDMAP_H
#define KILND_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct idmap {
    uint64_t *keys;
    void **vals; /* NULL marks an empty slot */
    size_t cap;  /* slots: 0 or a power of two */
    size_t count;
};

void idmap_init(struct idmap *m);
void idmap_fini(struct idmap *m);

/* The value for `key`, or NULL. */
void *idmap_get(const struct idmap *m, uint64_t key);

/* Insert or replace. Returns KILN_OK, or KILN_ENOMEM (the map is unchanged). */
int idmap_put(struct idmap *m, uint64_t key, void *val);

/* Remove `key`; returns its value, or NULL when it was absent. */
void *idmap_remove(struct idmap *m, uint64_t key);

static inline size_t idmap_count(const struct idmap *m)
{
    return m->count;
}

/* Visit every entry: start with *cursor = 0; returns false at the end. The
 * map must not change during a walk. */
bool idmap_next(const struct idmap *m, size_t *cursor, uint64_t *key, void **val);

#endif
