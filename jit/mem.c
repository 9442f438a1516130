/* mem.c: the caching allocator (see mem.h). A handful of blocks per
 * session, so a small array searched linearly is enough; the oldest block
 * goes first when the capacity would be exceeded. */
#include "mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PAGE       ((size_t) 4096)
#define MAX_BLOCKS 64

struct block {
    void *p;
    size_t cls;
};

struct jit_mem {
    pthread_mutex_t lock;
    atomic_uint refs;
    size_t capacity, cached;
    unsigned n;
    struct block b[MAX_BLOCKS]; /* oldest first */
};

static size_t size_class(size_t bytes)
{
    return bytes > SIZE_MAX - PAGE ? 0 : (bytes + PAGE - 1) & ~(PAGE - 1);
}

struct jit_mem *jit_mem_new(size_t capacity)
{
    struct jit_mem *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    atomic_init(&m->refs, 1);
    m->capacity = capacity;
    return m;
}

void jit_mem_ref(struct jit_mem *m)
{
    atomic_fetch_add(&m->refs, 1);
}

void jit_mem_unref(struct jit_mem *m)
{
    if (m == NULL || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    for (unsigned k = 0; k < m->n; k++)
        free(m->b[k].p);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void *jit_mem_alloc(struct jit_mem *m, size_t bytes)
{
    if (bytes < JIT_MEM_MIN_CACHED)
        return malloc(bytes ? bytes : 1);
    size_t cls = size_class(bytes);
    if (cls == 0)
        return NULL;
    if (m != NULL) {
        pthread_mutex_lock(&m->lock);
        for (unsigned k = m->n; k-- > 0;)
            if (m->b[k].cls == cls) {
                void *p = m->b[k].p;
                memmove(&m->b[k], &m->b[k + 1], (m->n - k - 1) * sizeof(struct block));
                m->n--;
                m->cached -= cls;
                pthread_mutex_unlock(&m->lock);
                return p;
            }
        pthread_mutex_unlock(&m->lock);
    }
    return aligned_alloc(64, cls);
}

void jit_mem_free(struct jit_mem *m, void *p, size_t bytes)
{
    if (p == NULL)
        return;
    size_t cls = size_class(bytes);
    if (m == NULL || bytes < JIT_MEM_MIN_CACHED || cls > m->capacity) {
        free(p);
        return;
    }
    void *drop[MAX_BLOCKS];
    unsigned ndrop = 0;
    pthread_mutex_lock(&m->lock);
    while (m->n > 0 && (m->n == MAX_BLOCKS || m->cached + cls > m->capacity)) {
        drop[ndrop++] = m->b[0].p;
        m->cached -= m->b[0].cls;
        memmove(&m->b[0], &m->b[1], (m->n - 1) * sizeof(struct block));
        m->n--;
    }
    m->b[m->n++] = (struct block){p, cls};
    m->cached += cls;
    pthread_mutex_unlock(&m->lock);
    for (unsigned k = 0; k < ndrop; k++)
        free(drop[k]);
}

void jit_mem_trim(struct jit_mem *m)
{
    if (m == NULL)
        return;
    void *drop[MAX_BLOCKS];
    pthread_mutex_lock(&m->lock);
    unsigned ndrop = m->n;
    for (unsigned k = 0; k < m->n; k++)
        drop[k] = m->b[k].p;
    m->n = 0;
    m->cached = 0;
    pthread_mutex_unlock(&m->lock);
    for (unsigned k = 0; k < ndrop; k++)
        free(drop[k]);
}

size_t jit_mem_cached(struct jit_mem *m)
{
    pthread_mutex_lock(&m->lock);
    size_t c = m->cached;
    pthread_mutex_unlock(&m->lock);
    return c;
}
