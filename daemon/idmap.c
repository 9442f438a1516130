/* idmap.c: open addressing with linear probing; see idmap.h.
 *
 * The load factor stays at or below 1/2 (cheap probes; memory is not the
 * constraint for tables of sessions and vars), and the table shrinks when
 * it falls under 1/8 so that a burst of ids does not pin memory forever.
 * Deletion shifts later members of the probe run back into the hole, which
 * keeps every run contiguous without tombstones. */
#include <stdlib.h>

#include "idmap.h"
#include "kiln_err.h"

#define MIN_CAP 8

static uint64_t mix(uint64_t x)
{
    /* splitmix64's finaliser: ids may be sequential, slots must not be. */
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

void idmap_init(struct idmap *m)
{
    m->keys = NULL;
    m->vals = NULL;
    m->cap = 0;
    m->count = 0;
}

void idmap_fini(struct idmap *m)
{
    free(m->keys);
    free(m->vals);
    idmap_init(m);
}

/* The slot holding `key`, or the empty slot where it would go. cap > 0. */
static size_t find_slot(const struct idmap *m, uint64_t key)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t) mix(key) & mask;
    while (m->vals[i] != NULL && m->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

void *idmap_get(const struct idmap *m, uint64_t key)
{
    if (m->count == 0)
        return NULL;
    return m->vals[find_slot(m, key)];
}

static int resize(struct idmap *m, size_t cap)
{
    uint64_t *keys = calloc(cap, sizeof(*keys));
    void **vals = calloc(cap, sizeof(*vals));
    if (keys == NULL || vals == NULL) {
        free(keys);
        free(vals);
        return KILN_ENOMEM;
    }
    struct idmap next = {.keys = keys, .vals = vals, .cap = cap, .count = m->count};
    for (size_t i = 0; i < m->cap; i++) {
        if (m->vals[i] != NULL) {
            size_t j = find_slot(&next, m->keys[i]);
            next.keys[j] = m->keys[i];
            next.vals[j] = m->vals[i];
        }
    }
    free(m->keys);
    free(m->vals);
    *m = next;
    return KILN_OK;
}

int idmap_put(struct idmap *m, uint64_t key, void *val)
{
    if (m->cap > 0) {
        size_t i = find_slot(m, key);
        if (m->vals[i] != NULL) {
            m->vals[i] = val;
            return KILN_OK;
        }
    }
    /* Grow before the insert would pass half full. count < cap/2 here, so
     * count + 1 cannot overflow; doubling is checked against SIZE_MAX. */
    if (m->count + 1 > m->cap / 2) {
        size_t cap = m->cap == 0 ? MIN_CAP : m->cap * 2;
        if (cap < m->cap || cap > SIZE_MAX / sizeof(uint64_t))
            return KILN_ENOMEM;
        int rc = resize(m, cap);
        if (rc != KILN_OK)
            return rc;
    }
    size_t i = find_slot(m, key);
    m->keys[i] = key;
    m->vals[i] = val;
    m->count++;
    return KILN_OK;
}

void *idmap_remove(struct idmap *m, uint64_t key)
{
    if (m->count == 0)
        return NULL;
    size_t mask = m->cap - 1;
    size_t hole = find_slot(m, key);
    void *val = m->vals[hole];
    if (val == NULL)
        return NULL;

    /* Backward shift: move each later member of the run whose home slot is
     * not between the hole and itself (cyclically) into the hole. */
    for (size_t j = (hole + 1) & mask; m->vals[j] != NULL; j = (j + 1) & mask) {
        size_t home = (size_t) mix(m->keys[j]) & mask;
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (stays)
            continue;
        m->keys[hole] = m->keys[j];
        m->vals[hole] = m->vals[j];
        hole = j;
    }
    m->vals[hole] = NULL;
    m->count--;

    if (m->count == 0) {
        idmap_fini(m);
    } else if (m->cap > MIN_CAP && m->count < m->cap / 8) {
        (void) resize(m, m->cap / 2); /* best effort: a failed shrink is harmless */
    }
    return val;
}

bool idmap_next(const struct idmap *m, size_t *cursor, uint64_t *key, void **val)
{
    for (size_t i = *cursor; i < m->cap; i++) {
        if (m->vals[i] != NULL) {
            *key = m->keys[i];
            *val = m->vals[i];
            *cursor = i + 1;
            return true;
        }
    }
    *cursor = m->cap;
    return false;
}
