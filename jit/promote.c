/* promote.c: the cc tier's background worker (see promote.h).
 *
 * A plain mutex + condition queue. The worker is the only thread that
 * compiles, so the compiler's parallelism is one process at a time: on
 * the 2-core machines kiln targets, a second compiler would take a core
 * from the steps that are running. For the same reason the worker and its
 * compilers run at a lower priority (nice +10): compiles take the time
 * steps leave over, and finish anyway on a machine that is never idle.
 */
#include "promote.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kiln_err.h"

#define JIT_PROMOTE_NICE 10 /* added to the worker's nice value */

struct job {
    struct job *next;
    void *tag;
    char *source;
};

struct jit_promote {
    struct jit_cc *cc;
    jit_promote_done done;
    void *ctx;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a job came, or stop */
    pthread_cond_t idle; /* the queue emptied and nothing is compiling */
    struct job *head, **tail;
    uint32_t queued;
    bool busy, stop;
    bool flush; /* someone drains: compile what is queued without waiting */
};

static struct timespec deadline(uint64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t t = (uint64_t) ts.tv_nsec + ns % 1000000000u;
    ts.tv_sec += (time_t) (ns / 1000000000u + t / 1000000000u);
    ts.tv_nsec = (long) (t % 1000000000u);
    return ts;
}

/* Compiles one batch (the lock is not held). */
static void run_batch(struct jit_promote *p, struct job **jobs, uint32_t n)
{
    struct jit_cc_kernel got[JIT_PROMOTE_BATCH];
    const char *srcs[JIT_PROMOTE_BATCH];
    uint32_t miss[JIT_PROMOTE_BATCH], nmiss = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct jit_cc_key key;
        jit_cc_key(p->cc, jobs[i]->source, &key);
        if (jit_cc_lookup(p->cc, &key, &got[i]) != KILN_OK) {
            miss[nmiss] = i;
            srcs[nmiss++] = jobs[i]->source;
        }
    }
    if (nmiss > 0) {
        struct jit_cc_kernel built[JIT_PROMOTE_BATCH];
        jit_cc_build(p->cc, nmiss, srcs, built, NULL, 0);
        for (uint32_t k = 0; k < nmiss; k++)
            got[miss[k]] = built[k];
    }
    for (uint32_t i = 0; i < n; i++) {
        p->done(p->ctx, jobs[i]->tag, &got[i], false);
        free(jobs[i]->source);
        free(jobs[i]);
    }
}

static void *worker(void *arg)
{
    struct jit_promote *p = arg;
    /* On Linux a thread has its own nice value, and the compilers it
     * starts inherit it: they yield to running steps. */
    setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid), JIT_PROMOTE_NICE);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->head == NULL)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop)
            break;
        /* Let a batch gather: kernels of one step get hot together. */
        struct timespec until = deadline(JIT_PROMOTE_WAIT_NS);
        while (!p->stop && !p->flush && p->queued < JIT_PROMOTE_BATCH &&
               pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
            ;
        if (p->stop)
            break;
        struct job *jobs[JIT_PROMOTE_BATCH];
        uint32_t n = 0;
        while (p->head != NULL && n < JIT_PROMOTE_BATCH) {
            jobs[n++] = p->head;
            p->head = p->head->next;
            p->queued--;
        }
        if (p->head == NULL)
            p->tail = &p->head;
        p->busy = true;
        pthread_mutex_unlock(&p->lock);
        run_batch(p, jobs, n);
        pthread_mutex_lock(&p->lock);
        p->busy = false;
        if (p->head == NULL) {
            p->flush = false;
            pthread_cond_broadcast(&p->idle);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int jit_promote_new(struct jit_cc *cc, jit_promote_done done, void *ctx, struct jit_promote **out)
{
    *out = NULL;
    struct jit_promote *p = calloc(1, sizeof *p);
    if (p == NULL)
        return KILN_ENOMEM;
    p->cc = cc;
    p->done = done;
    p->ctx = ctx;
    p->tail = &p->head;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, &ca);
    pthread_cond_init(&p->idle, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->thread, NULL, worker, p) != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_cond_destroy(&p->idle);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return KILN_EINTERNAL;
    }
    *out = p;
    return KILN_OK;
}

void jit_promote_free(struct jit_promote *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    for (struct job *j = p->head, *n; j != NULL; j = n) {
        n = j->next;
        struct jit_cc_kernel none;
        memset(&none, 0, sizeof none);
        p->done(p->ctx, j->tag, &none, true);
        free(j->source);
        free(j);
    }
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

bool jit_promote_submit(struct jit_promote *p, void *tag, char *source)
{
    struct job *j = malloc(sizeof *j);
    if (j == NULL) {
        free(source);
        return false;
    }
    j->next = NULL;
    j->tag = tag;
    j->source = source;
    pthread_mutex_lock(&p->lock);
    if (p->stop) {
        pthread_mutex_unlock(&p->lock);
        free(source);
        free(j);
        return false;
    }
    *p->tail = j;
    p->tail = &j->next;
    p->queued++;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    return true;
}

bool jit_promote_drain(struct jit_promote *p, uint64_t timeout_ns)
{
    struct timespec until = deadline(timeout_ns);
    pthread_mutex_lock(&p->lock);
    int rc = 0;
    if (p->head != NULL) {
        p->flush = true;
        pthread_cond_signal(&p->wake);
    }
    while ((p->head != NULL || p->busy) && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&p->idle, &p->lock, &until);
    bool idle = p->head == NULL && !p->busy;
    pthread_mutex_unlock(&p->lock);
    return idle;
}
