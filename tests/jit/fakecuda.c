/* fakecuda.c: a stand-in libcuda.so.1 for testing the device executor
 * (jit/cuda_run.h) and the daemon's device path where there is no GPU.
 *
 * Built as tests/jit/fakecuda/libcuda.so.1; a test puts that directory
 * first in LD_LIBRARY_PATH and kiln's dlopen finds it instead of a
 * driver. It has every entry point kiln calls (jit/cuda_impl.h) and keeps
 * "device memory" in host memory, so uploads, downloads, the pool, the
 * resident buffers and the stream bookkeeping all really happen. Work is
 * asynchronous as on a GPU: copies and launches queue on their stream and
 * run at the next synchronisation of it (an event's, the stream's, a
 * cuMemFree), so a host buffer rewritten before its copy ran, or a result
 * read before its event, gives wrong bytes here too; a kernel's fault
 * shows at that synchronisation, not at the launch. It cannot run PTX: a
 * launch checks its arguments and does nothing, so tests check kernels'
 * results only on a real GPU (tests/gpu/run.sh).
 *
 * Knobs (environment, read at cuInit):
 *   KILN_FAKECUDA_MEM=BYTES      device memory (default 1 GiB); cuMemAlloc
 *                                fails with CUDA_ERROR_OUT_OF_MEMORY past it
 *   KILN_FAKECUDA_FAIL_LAUNCH=N  the Nth launch (1-based) faults with
 *                                CUDA_ERROR_ILLEGAL_ADDRESS when it runs,
 *                                which then sticks: the next
 *                                synchronisation and every later call
 *                                return it
 *   KILN_FAKECUDA_DEVICES=N      devices reported (default 1)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned int res_t;
typedef uint64_t dptr_t;

#define OK              0u
#define E_INVALID_VALUE 1u
#define E_OOM           2u
#define E_NOT_INIT      3u
#define E_NO_DEVICE     100u
#define E_NOT_FOUND     500u
#define E_ILLEGAL_ADDR  700u

#define EXPORT __attribute__((visibility("default")))

/* The entry points are the driver's, named and typed as cuda.h declares
 * them; a stand-in does not include that header, so they have no prior
 * declaration here. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int inited, ndevices = 1;
static uint64_t mem_total = UINT64_C(1) << 30, mem_used, launches, fail_at;
static res_t sticky;

struct block {
    struct block *next;
    void *p;
    size_t bytes;
};
static struct block *blocks;

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *s = getenv(name);
    return s != NULL && *s ? strtoull(s, NULL, 10) : def;
}

EXPORT res_t cuInit(unsigned int flags)
{
    (void) flags;
    pthread_mutex_lock(&lock);
    mem_total = env_u64("KILN_FAKECUDA_MEM", mem_total);
    fail_at = env_u64("KILN_FAKECUDA_FAIL_LAUNCH", 0);
    ndevices = (int) env_u64("KILN_FAKECUDA_DEVICES", 1);
    inited = 1;
    pthread_mutex_unlock(&lock);
    return OK;
}

/* The sticky error, once one happened. */
static res_t st(void)
{
    pthread_mutex_lock(&lock);
    res_t r = inited ? sticky : E_NOT_INIT;
    pthread_mutex_unlock(&lock);
    return r;
}

EXPORT res_t cuDriverGetVersion(int *v)
{
    *v = 13000;
    return OK;
}

EXPORT res_t cuDeviceGetCount(int *n)
{
    *n = ndevices;
    return OK;
}

EXPORT res_t cuDeviceGet(int *dev, int ordinal)
{
    if (ordinal < 0 || ordinal >= ndevices)
        return E_INVALID_VALUE;
    *dev = ordinal;
    return OK;
}

EXPORT res_t cuDeviceGetName(char *name, int len, int dev)
{
    snprintf(name, (size_t) len, "kiln fake CUDA device %d", dev);
    return OK;
}

EXPORT res_t cuDeviceGetAttribute(int *v, unsigned int attr, int dev)
{
    (void) dev;
    switch (attr) {
    case 16:
        *v = 4;
        return OK; /* multiprocessors */
    case 75:
        *v = 9;
        return OK; /* compute capability */
    case 76:
        *v = 0;
        return OK;
    default:
        *v = 0;
        return OK;
    }
}

EXPORT res_t cuDeviceTotalMem_v2(size_t *bytes, int dev)
{
    (void) dev;
    *bytes = (size_t) mem_total;
    return OK;
}

EXPORT res_t cuGetErrorName(res_t e, const char **s)
{
    *s = e == E_ILLEGAL_ADDR ? "CUDA_ERROR_ILLEGAL_ADDRESS"
         : e == E_OOM        ? "CUDA_ERROR_OUT_OF_MEMORY"
                             : "CUDA_ERROR_FAKE";
    return OK;
}

EXPORT res_t cuGetErrorString(res_t e, const char **s)
{
    *s = e == E_ILLEGAL_ADDR ? "an illegal memory access was encountered (fake)"
                             : "fake driver error";
    return OK;
}

static int ctx_token;

EXPORT res_t cuDevicePrimaryCtxRetain(void **ctx, int dev)
{
    (void) dev;
    *ctx = &ctx_token;
    return st();
}

EXPORT res_t cuDevicePrimaryCtxRelease_v2(int dev)
{
    (void) dev;
    return OK;
}

EXPORT res_t cuDevicePrimaryCtxSetFlags_v2(int dev, unsigned int flags)
{
    (void) dev;
    return flags == 4u ? OK : E_INVALID_VALUE; /* kiln asks for blocking sync */
}

EXPORT res_t cuCtxSetCurrent(void *ctx)
{
    return ctx == &ctx_token ? st() : E_INVALID_VALUE;
}

/* ---- streams: work is queued and runs at the next synchronisation ---- */

enum { OP_HTOD, OP_DTOH, OP_DTOD, OP_LAUNCH, OP_EVENT };

struct op {
    struct op *next;
    int kind;
    void *dst;       /* OP_DTOH */
    const void *src; /* OP_HTOD: read when the copy runs, as a DMA engine would */
    dptr_t ddst, dsrc;
    size_t n;
    struct fevent *ev; /* OP_EVENT */
};

struct fstream {
    struct op *head, *tail;
};

struct fevent {
    int pending; /* recorded, and its stream has not reached it yet */
    struct fstream *s;
};

static int inside_locked(dptr_t p, size_t n);

/* Runs the ops of s up to and including `until` (NULL: all). Under the lock. */
static void run_ops(struct fstream *s, const struct op *until)
{
    while (s->head != NULL) {
        struct op *o = s->head;
        s->head = o->next;
        if (s->head == NULL)
            s->tail = NULL;
        if (sticky == OK) {
            switch (o->kind) {
            case OP_HTOD:
                if (inside_locked(o->ddst, o->n))
                    memcpy((void *) (uintptr_t) o->ddst, o->src, o->n);
                else
                    sticky = E_ILLEGAL_ADDR; /* freed while the copy was queued */
                break;
            case OP_DTOH:
                if (inside_locked(o->dsrc, o->n))
                    memcpy(o->dst, (const void *) (uintptr_t) o->dsrc, o->n);
                else
                    sticky = E_ILLEGAL_ADDR;
                break;
            case OP_DTOD:
                if (inside_locked(o->ddst, o->n) && inside_locked(o->dsrc, o->n))
                    memmove((void *) (uintptr_t) o->ddst, (const void *) (uintptr_t) o->dsrc, o->n);
                else
                    sticky = E_ILLEGAL_ADDR;
                break;
            case OP_LAUNCH:
                /* A kernel's fault shows at a later synchronisation, as on
                 * a GPU; the launch call itself succeeded. */
                if (++launches == fail_at)
                    sticky = E_ILLEGAL_ADDR;
                break;
            default:
                break;
            }
        }
        if (o->kind == OP_EVENT && o->ev != NULL)
            o->ev->pending = 0;
        int last = o == until;
        free(o);
        if (last)
            return;
    }
}

static struct fstream **streams; /* every live stream, so cuMemFree can drain them */
static size_t nstreams;

static res_t enqueue(void *stream, struct op *o)
{
    struct fstream *s = stream;
    if (s == NULL) {
        free(o);
        return E_INVALID_VALUE; /* kiln always names its stream */
    }
    o->next = NULL;
    if (s->tail != NULL)
        s->tail->next = o;
    else
        s->head = o;
    s->tail = o;
    return OK;
}

EXPORT res_t cuStreamCreate(void **s, unsigned int flags)
{
    (void) flags;
    struct fstream *f = calloc(1, sizeof *f);
    if (f == NULL)
        return E_OOM;
    pthread_mutex_lock(&lock);
    struct fstream **n = realloc(streams, (nstreams + 1) * sizeof *n);
    if (n == NULL) {
        pthread_mutex_unlock(&lock);
        free(f);
        return E_OOM;
    }
    streams = n;
    streams[nstreams++] = f;
    res_t r = inited ? sticky : E_NOT_INIT;
    pthread_mutex_unlock(&lock);
    *s = f;
    return r;
}

EXPORT res_t cuStreamDestroy_v2(void *stream)
{
    struct fstream *s = stream;
    pthread_mutex_lock(&lock);
    run_ops(s, NULL); /* the driver finishes a destroyed stream's work */
    for (size_t k = 0; k < nstreams; k++)
        if (streams[k] == s) {
            streams[k] = streams[--nstreams];
            break;
        }
    if (nstreams == 0) {
        free(streams);
        streams = NULL;
    }
    pthread_mutex_unlock(&lock);
    free(s);
    return OK;
}

EXPORT res_t cuStreamSynchronize(void *stream)
{
    pthread_mutex_lock(&lock);
    run_ops(stream, NULL);
    res_t r = sticky;
    pthread_mutex_unlock(&lock);
    return r;
}

EXPORT res_t cuEventCreate(void **e, unsigned int flags)
{
    (void) flags;
    *e = calloc(1, sizeof(struct fevent));
    return *e ? st() : E_OOM;
}

EXPORT res_t cuEventDestroy_v2(void *e)
{
    pthread_mutex_lock(&lock);
    struct fevent *ev = e;
    if (ev->pending) /* drop the stream's pointer to it */
        for (struct op *o = ev->s->head; o != NULL; o = o->next)
            if (o->ev == ev)
                o->ev = NULL;
    pthread_mutex_unlock(&lock);
    free(e);
    return OK;
}

EXPORT res_t cuEventRecord(void *e, void *stream)
{
    struct op *o = calloc(1, sizeof *o);
    if (o == NULL)
        return E_OOM;
    o->kind = OP_EVENT;
    o->ev = e;
    pthread_mutex_lock(&lock);
    struct fevent *ev = e;
    if (ev->pending) /* re-recorded: the earlier marker no longer names it */
        for (struct op *q = ev->s->head; q != NULL; q = q->next)
            if (q->ev == ev)
                q->ev = NULL;
    ev->pending = 1;
    ev->s = stream;
    res_t r = sticky != OK ? sticky : enqueue(stream, o);
    if (sticky != OK) {
        ev->pending = 0;
        free(o);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

EXPORT res_t cuEventSynchronize(void *e)
{
    pthread_mutex_lock(&lock);
    struct fevent *ev = e;
    if (ev->pending) {
        const struct op *marker = NULL;
        for (struct op *o = ev->s->head; o != NULL && marker == NULL; o = o->next)
            if (o->ev == ev)
                marker = o;
        run_ops(ev->s, marker);
    }
    res_t r = sticky;
    pthread_mutex_unlock(&lock);
    return r;
}

EXPORT res_t cuMemGetInfo_v2(size_t *free_b, size_t *total)
{
    pthread_mutex_lock(&lock);
    *free_b = (size_t) (mem_total - mem_used);
    *total = (size_t) mem_total;
    pthread_mutex_unlock(&lock);
    return OK;
}

EXPORT res_t cuMemAlloc_v2(dptr_t *p, size_t bytes)
{
    res_t r = st();
    if (r != OK)
        return r;
    if (bytes == 0)
        return E_INVALID_VALUE;
    pthread_mutex_lock(&lock);
    if (bytes > mem_total - mem_used) {
        pthread_mutex_unlock(&lock);
        return E_OOM;
    }
    struct block *b = malloc(sizeof *b);
    void *m = malloc(bytes);
    if (b == NULL || m == NULL) {
        pthread_mutex_unlock(&lock);
        free(b);
        free(m);
        return E_OOM;
    }
    memset(m, 0xA5, bytes); /* never zeros: unwritten outputs show */
    b->p = m;
    b->bytes = bytes;
    b->next = blocks;
    blocks = b;
    mem_used += bytes;
    pthread_mutex_unlock(&lock);
    *p = (dptr_t) (uintptr_t) m;
    return OK;
}

EXPORT res_t cuMemFree_v2(dptr_t p)
{
    pthread_mutex_lock(&lock);
    /* Freeing waits for the work queued on the device (as cuMemFree does
     * in practice), so queued copies never see a freed block. */
    for (size_t k = 0; k < nstreams; k++)
        run_ops(streams[k], NULL);
    for (struct block **l = &blocks; *l != NULL; l = &(*l)->next)
        if ((uintptr_t) (*l)->p == p) {
            struct block *b = *l;
            *l = b->next;
            mem_used -= b->bytes;
            pthread_mutex_unlock(&lock);
            free(b->p);
            free(b);
            return OK;
        }
    pthread_mutex_unlock(&lock);
    return E_INVALID_VALUE; /* not a block of ours: a bug in the caller */
}

/* True when [p, p + n) lies inside one live block. Under the lock. */
static int inside_locked(dptr_t p, size_t n)
{
    int ok = 0;
    for (struct block *b = blocks; b != NULL && !ok; b = b->next)
        ok = p >= (uintptr_t) b->p && p + n <= (uintptr_t) b->p + b->bytes;
    return ok;
}

EXPORT res_t cuMemAllocHost_v2(void **p, size_t bytes)
{
    *p = malloc(bytes);
    return *p ? OK : E_OOM;
}

EXPORT res_t cuMemFreeHost(void *p)
{
    free(p);
    return OK;
}

/* Queues op o on stream s after checking the device ranges it names. */
static res_t copy_op(struct op *o, void *stream, int dst_dev, int src_dev)
{
    if (o == NULL)
        return E_OOM;
    pthread_mutex_lock(&lock);
    res_t r = !inited ? E_NOT_INIT : sticky;
    if (r == OK &&
        ((dst_dev && !inside_locked(o->ddst, o->n)) || (src_dev && !inside_locked(o->dsrc, o->n))))
        r = E_INVALID_VALUE;
    if (r == OK)
        r = enqueue(stream, o);
    else
        free(o);
    pthread_mutex_unlock(&lock);
    return r;
}

EXPORT res_t cuMemcpyHtoDAsync_v2(dptr_t dst, const void *src, size_t n, void *s)
{
    struct op *o = calloc(1, sizeof *o);
    if (o != NULL)
        *o = (struct op){.kind = OP_HTOD, .src = src, .ddst = dst, .n = n};
    return copy_op(o, s, 1, 0);
}

EXPORT res_t cuMemcpyDtoHAsync_v2(void *dst, dptr_t src, size_t n, void *s)
{
    struct op *o = calloc(1, sizeof *o);
    if (o != NULL)
        *o = (struct op){.kind = OP_DTOH, .dst = dst, .dsrc = src, .n = n};
    return copy_op(o, s, 0, 1);
}

EXPORT res_t cuMemcpyDtoDAsync_v2(dptr_t dst, dptr_t src, size_t n, void *s)
{
    struct op *o = calloc(1, sizeof *o);
    if (o != NULL)
        *o = (struct op){.kind = OP_DTOD, .ddst = dst, .dsrc = src, .n = n};
    return copy_op(o, s, 1, 1);
}

/* A module keeps its image, PTX text or a cubin (ELF), to answer which
 * entries it has. */
struct fmod {
    size_t len;
    char img[];
};

/* Bytes of an ELF64 image: up to the end of its section or program
 * header table, whichever is last (0: not ELF64). */
static size_t elf_size(const unsigned char *e)
{
    if (memcmp(e,
               "\x7f"
               "ELF",
               4) != 0 ||
        e[4] != 2)
        return 0;
    uint64_t phoff, shoff;
    uint16_t phentsize, phnum, shentsize, shnum;
    memcpy(&phoff, e + 0x20, 8);
    memcpy(&shoff, e + 0x28, 8);
    memcpy(&phentsize, e + 0x36, 2);
    memcpy(&phnum, e + 0x38, 2);
    memcpy(&shentsize, e + 0x3a, 2);
    memcpy(&shnum, e + 0x3c, 2);
    uint64_t a = phoff + (uint64_t) phentsize * phnum, b = shoff + (uint64_t) shentsize * shnum;
    return (size_t) (a > b ? a : b);
}

EXPORT res_t cuModuleLoadData(void **m, const void *image)
{
    res_t r = st();
    if (r != OK)
        return r;
    size_t len = elf_size(image);
    if (len == 0) {
        const char *ptx = image;
        if (strstr(ptx, ".version") == NULL || strstr(ptx, ".target") == NULL)
            return 218; /* CUDA_ERROR_INVALID_PTX */
        len = strlen(ptx);
    }
    struct fmod *f = malloc(sizeof *f + len + 1);
    if (f == NULL)
        return E_OOM;
    f->len = len;
    memcpy(f->img, image, len);
    f->img[len] = '\0';
    *m = f;
    return OK;
}

EXPORT res_t cuModuleUnload(void *m)
{
    free(m);
    return OK;
}

/* An entry is named in PTX as ".entry NAME(" and in a cubin's string
 * table as "\0NAME\0". */
EXPORT res_t cuModuleGetFunction(void **f, void *m, const char *name)
{
    const struct fmod *mod = m;
    char pat[128];
    snprintf(pat, sizeof pat, ".entry %s(", name);
    const char *at = memmem(mod->img, mod->len, pat, strlen(pat));
    if (at == NULL) {
        size_t n = strlen(name);
        if (n + 2 > sizeof pat)
            return E_NOT_FOUND;
        pat[0] = '\0';
        memcpy(pat + 1, name, n + 1); /* with its terminating NUL */
        at = memmem(mod->img, mod->len, pat, n + 2);
    }
    if (at == NULL)
        return E_NOT_FOUND;
    *f = (void *) at;
    return OK;
}

EXPORT res_t cuLaunchKernel(void *f, unsigned int gx, unsigned int gy, unsigned int gz,
                            unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared,
                            void *s, void **params, void **extra)
{
    (void) extra;
    if (f == NULL || params == NULL || gx == 0 || gy != 1 || gz != 1 || bx == 0 || bx > 1024 ||
        by != 1 || bz != 1 || shared > 48 * 1024)
        return E_INVALID_VALUE;
    struct op *o = calloc(1, sizeof *o);
    if (o == NULL)
        return E_OOM;
    o->kind = OP_LAUNCH;
    pthread_mutex_lock(&lock);
    res_t r = sticky != OK ? sticky : enqueue(s, o);
    if (sticky != OK)
        free(o);
    pthread_mutex_unlock(&lock);
    return r;
}

/* For tests that load this library directly: launches so far. */
EXPORT uint64_t kiln_fakecuda_launches(void)
{
    pthread_mutex_lock(&lock);
    uint64_t n = launches;
    pthread_mutex_unlock(&lock);
    return n;
}

/* NVRTC asks the driver for private tables when it finds one: a stand-in
 * has none to give. */
EXPORT res_t cuGetExportTable(const void **table, const void *uuid)
{
    (void) uuid;
    *table = NULL;
    return E_NOT_FOUND;
}
