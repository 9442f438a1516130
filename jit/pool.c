/* pool.c: the loop-splitting thread pool (see pool.h).
 *
 * One mutex guards the list of jobs; chunks are claimed with an atomic
 * counter, so the lock is taken only to find a job and to report that a
 * thread has left it. A job is removed by its caller once every chunk is
 * done and no helper still holds it.
 */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "kiln_err.h"

struct job {
    struct job *next;
    jit_pool_fn fn;
    void *arg;
    int64_t n, chunk;
    int64_t nchunks;
    atomic_int_fast64_t claimed;
    int64_t done;    /* guarded by the pool's lock */
    unsigned riders; /* helpers working on it; guarded */
};

struct jit_pool {
    pthread_mutex_t lock;
    pthread_cond_t work, idle;
    struct job *jobs;
    bool stopping;
    unsigned nthreads;
    pthread_t *threads;
};

/* Runs chunks of j until none is left; returns how many it ran. */
static int64_t ride(struct job *j)
{
    int64_t ran = 0;
    for (;;) {
        int64_t k = atomic_fetch_add(&j->claimed, 1);
        if (k >= j->nchunks)
            return ran;
        int64_t b = k * j->chunk, e = b + j->chunk < j->n ? b + j->chunk : j->n;
        j->fn(j->arg, b, e);
        ran++;
    }
}

static struct job *open_job(struct jit_pool *p)
{
    for (struct job *j = p->jobs; j != NULL; j = j->next)
        if (atomic_load(&j->claimed) < j->nchunks)
            return j;
    return NULL;
}

static void *worker(void *arg)
{
    struct jit_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct job *j = NULL;
        while (!p->stopping && (j = open_job(p)) == NULL)
            pthread_cond_wait(&p->work, &p->lock);
        if (p->stopping)
            break;
        j->riders++;
        pthread_mutex_unlock(&p->lock);
        int64_t ran = ride(j);
        pthread_mutex_lock(&p->lock);
        j->riders--;
        j->done += ran;
        if (j->done == j->nchunks && j->riders == 0)
            pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int jit_pool_new(unsigned threads, struct jit_pool **out)
{
    *out = NULL;
    struct jit_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return KILN_ENOMEM;
    if (threads > 0 && (p->threads = calloc(threads, sizeof(pthread_t))) == NULL) {
        free(p);
        return KILN_ENOMEM;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    for (unsigned k = 0; k < threads; k++) {
        if (pthread_create(&p->threads[k], NULL, worker, p) != 0) {
            jit_pool_free(p);
            return KILN_EINTERNAL;
        }
        p->nthreads++;
    }
    *out = p;
    return KILN_OK;
}

void jit_pool_free(struct jit_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (unsigned k = 0; k < p->nthreads; k++)
        pthread_join(p->threads[k], NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}

unsigned jit_pool_threads(const struct jit_pool *p)
{
    return p ? p->nthreads : 0;
}

void jit_pool_for(struct jit_pool *p, int64_t n, int64_t grain, jit_pool_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    int64_t want = p ? 4 * ((int64_t) p->nthreads + 1) : 1;
    int64_t chunks = n / grain;
    if (chunks > want)
        chunks = want;
    if (p == NULL || p->nthreads == 0 || chunks <= 1) {
        fn(arg, 0, n);
        return;
    }
    struct job j = {.fn = fn, .arg = arg, .n = n};
    j.chunk = (n + chunks - 1) / chunks;
    j.nchunks = (n + j.chunk - 1) / j.chunk;
    atomic_init(&j.claimed, 0);
    pthread_mutex_lock(&p->lock);
    j.next = p->jobs;
    p->jobs = &j;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    int64_t ran = ride(&j);
    pthread_mutex_lock(&p->lock);
    j.done += ran;
    while (j.done < j.nchunks || j.riders > 0)
        pthread_cond_wait(&p->idle, &p->lock);
    struct job **link = &p->jobs;
    while (*link != &j)
        link = &(*link)->next;
    *link = j.next;
    pthread_mutex_unlock(&p->lock);
}
