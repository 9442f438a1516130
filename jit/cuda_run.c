/* cuda_run.c: the device executor (contract in cuda_run.h).
 *
 * Locking: d->lock guards the module table, the resident table, the
 * counters and the failed flag. It is never held across a driver call
 * that can block on the device, an NVRTC compile, or a pool call (the
 * pool calls reclaim(), which takes d->lock).
 *
 * Every driver call of a run goes through CU(): a failure records the
 * call and the error in the run's ir_error and, when the error is sticky,
 * marks the device failed before anything else can use it.
 */
#include "cuda_run.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen.h"
#include "codegen_cuda.h"
#include "ctable.h"
#include "cuda_disk.h"
#include "cuda_impl.h"
#include "cuda_relay.h"
#include "devpool.h"
#include "fuse.h"
#include "fuse_impl.h"
#include "kiln_err.h"
#include "lru.h"
#include "relay_ref.h"

#define MAX_MODULES 4096 /* loaded modules kept; the least recently used unloads */
#define RES_BUCKETS 4096

enum { FN_MAIN, FN_INIT, FN_FINI, FN_COUNT };
static const char *const fn_names[FN_COUNT] = {"kiln_main", "kiln_init", "kiln_fini"};

/* A loaded module: one group's kernels. */
struct dmod {
    struct centry c;
    cu_module mod;
    cu_function fn[FN_COUNT];
};

/* A value kept on the device under its tag. */
struct res {
    struct res *next;
    uint64_t tag;
    struct jit_lru_link lru; /* d->res_lru: least recently used first */
    cu_devptr p;
    size_t bytes;
    uint32_t users; /* runs reading it now */
    bool dead;      /* forgotten while in use: freed when the last run ends */
};

struct jit_gpu {
    struct jit_cuda *cuda;
    const struct jit_cu_fns *cu;
    struct jit_runtime *rt;
    cu_device dev;
    cu_context ctx;
    bool ctx_held;
    char arch[16];
    struct jit_devpool *pool;
    struct jit_cuda_modcache *mc;
    /* cuBLAS and cuDNN: opened by the first relay run (a quarter of a
     * second and some 160 MB of libraries that steps without a matmul or
     * convolution never need). relay_lock guards the opening. */
    pthread_mutex_t relay_lock;
    bool relay_tried, host_relays;
    struct jit_cuda_relay *relay;
    pthread_mutex_t lock;
    struct ctable mods;
    uint64_t tick;
    struct res **rb;
    struct jit_lru res_lru;
    uint64_t stream_tags; /* the last stream tag given out */
    struct stage *stages; /* free staging pairs */
    bool failed;
    struct jit_gpu_stats st; /* counters; why is the failure */
};

struct jit_gpu_stream {
    struct jit_gpu *d;
    cu_stream s;
    uint64_t tag; /* the pool's tag for blocks this stream may still use */
    struct jit_cuda_relay_handles *rh;
    bool rh_tried;
};

/* Two pinned staging buffers and their events, taken by a run for its
 * uploads and downloads and given back once its stream is synchronised:
 * the daemon holds as many pairs as runs were ever on the device at once
 * (its workers), not one per session. */
struct stage {
    struct stage *next; /* the free list */
    void *buf[2];
    cu_event ev[2];
    bool pending[2]; /* a copy from buf[k] may still be in flight */
    unsigned next_k;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* ---- errors ------------------------------------------------------------------ */

static void set_err(struct ir_error *err, int code, int64_t node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_err(struct ir_error *err, int code, int64_t node, const char *fmt, ...)
{
    err->code = code;
    err->node = node;
    if (node >= 0)
        snprintf(err->field, sizeof err->field, "nodes[%lld]", (long long) node);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* A sticky error r from `call`: the device serves nothing more. */
static void mark_failed(struct jit_gpu *d, cu_result r, const char *call)
{
    char eb[160];
    jit_cuda_strerror(d->cuda, r, eb, sizeof eb);
    pthread_mutex_lock(&d->lock);
    if (!d->failed) {
        d->failed = true;
        snprintf(d->st.why, sizeof d->st.why, "%s: %s", call, eb);
    }
    pthread_mutex_unlock(&d->lock);
}

/* A driver call `call` failed with r while working on `node` (-1: none).
 * Returns the kiln code the run fails with. */
static int cu_fail(struct jit_gpu *d, cu_result r, const char *call, int64_t node,
                   struct ir_error *err)
{
    char eb[160];
    jit_cuda_strerror(d->cuda, r, eb, sizeof eb);
    if (jit_cuda_error_is_sticky(r)) {
        mark_failed(d, r, call);
        set_err(err, KILN_EDEVICE, node,
                "the CUDA device failed (%s: %s); it serves nothing more until kilnd restarts",
                call, eb);
        return KILN_EDEVICE;
    }
    int code = r == CU_ERROR_OUT_OF_MEMORY ? KILN_ENOMEM : KILN_EINTERNAL;
    set_err(err, code, node, "%s: %s", call, eb);
    return code;
}

#define CU(R, name, call, node)                                                                    \
    do {                                                                                           \
        cu_result r_ = (call);                                                                     \
        if (r_ != CU_SUCCESS)                                                                      \
            return cu_fail((R)->d, r_, name, (node), (R)->err);                                    \
    } while (0)

bool jit_gpu_failed(struct jit_gpu *d, char *why, size_t whylen)
{
    pthread_mutex_lock(&d->lock);
    bool f = d->failed;
    if (f && why != NULL)
        snprintf(why, whylen, "%s", d->st.why);
    pthread_mutex_unlock(&d->lock);
    return f;
}

static int failed_error(struct jit_gpu *d, struct ir_error *err)
{
    char why[JIT_CUDA_WHY_MAX + 1];
    if (!jit_gpu_failed(d, why, sizeof why))
        return KILN_OK;
    set_err(err, KILN_EDEVICE, -1,
            "the CUDA device failed earlier (%s); it serves nothing more until kilnd restarts",
            why);
    return KILN_EDEVICE;
}

/* ---- resident values ------------------------------------------------------- */

static struct res **res_slot(struct jit_gpu *d, uint64_t tag)
{
    struct res **l = &d->rb[(tag * 0x9e3779b97f4a7c15u) >> 52 & (RES_BUCKETS - 1)];
    while (*l != NULL && (*l)->tag != tag)
        l = &(*l)->next;
    return l;
}

static void res_unlink(struct jit_gpu *d, struct res **l)
{
    struct res *r = *l;
    *l = r->next;
    jit_lru_unlink(&d->res_lru, &r->lru);
    d->st.resident--;
    d->st.resident_bytes -= r->bytes;
}

/* Adds r (tag, p, bytes set) at the empty slot l, as the newest. */
static void res_add(struct jit_gpu *d, struct res **l, struct res *r)
{
    r->next = NULL;
    *l = r;
    jit_lru_push(&d->res_lru, &r->lru);
    d->st.resident++;
    d->st.resident_bytes += r->bytes;
}

/* The pool's reclaim: drops least recently used resident values that no
 * run reads until `need` bytes are back in the pool. */
static size_t reclaim(void *ctx, size_t need)
{
    struct jit_gpu *d = ctx;
    struct res *victims = NULL;
    size_t freed = 0;
    pthread_mutex_lock(&d->lock);
    for (struct jit_lru_link *k = d->res_lru.oldest, *next; k != NULL && freed < need; k = next) {
        next = k->newer;
        struct res *r = JIT_LRU_OWNER(k, struct res, lru);
        if (r->users > 0)
            continue; /* a run reads it */
        res_unlink(d, res_slot(d, r->tag));
        d->st.evictions++;
        freed += r->bytes;
        r->next = victims;
        victims = r;
    }
    pthread_mutex_unlock(&d->lock);
    for (struct res *r = victims, *n; r != NULL; r = n) {
        n = r->next;
        jit_devpool_free(d->pool, r->p, r->bytes, 0);
        free(r);
    }
    return freed;
}

void jit_gpu_forget(struct jit_gpu *d, uint64_t tag)
{
    if (d == NULL || tag == 0)
        return;
    struct res *gone = NULL;
    pthread_mutex_lock(&d->lock);
    struct res **l = res_slot(d, tag);
    if (*l != NULL) {
        if ((*l)->users == 0) {
            gone = *l;
            res_unlink(d, l);
        } else {
            (*l)->dead = true;
        }
    }
    pthread_mutex_unlock(&d->lock);
    if (gone != NULL) {
        jit_devpool_free(d->pool, gone->p, gone->bytes, 0);
        free(gone);
    }
}

/* A run is done reading resident value r. */
static void res_unuse(struct jit_gpu *d, struct res *r)
{
    bool drop = false;
    pthread_mutex_lock(&d->lock);
    if (--r->users == 0 && r->dead) {
        res_unlink(d, res_slot(d, r->tag));
        drop = true;
    }
    pthread_mutex_unlock(&d->lock);
    if (drop) {
        jit_devpool_free(d->pool, r->p, r->bytes, 0);
        free(r);
    }
}

/* ---- the pool's backend ------------------------------------------------------ */

static int be_alloc(void *ctx, size_t bytes, uint64_t *ptr)
{
    struct jit_gpu *d = ctx;
    cu_devptr p = 0;
    cu_result r = d->cu->ctx_set_current(d->ctx);
    if (r == CU_SUCCESS)
        r = d->cu->mem_alloc(&p, bytes ? bytes : 1);
    if (r != CU_SUCCESS) {
        /* A sticky error is not a shortage: the device is failed. */
        if (jit_cuda_error_is_sticky(r))
            mark_failed(d, r, "cuMemAlloc");
        return KILN_ENOMEM;
    }
    *ptr = p;
    return KILN_OK;
}

static void be_free(void *ctx, uint64_t ptr, size_t bytes)
{
    struct jit_gpu *d = ctx;
    (void) bytes;
    if (d->cu->ctx_set_current(d->ctx) == CU_SUCCESS)
        d->cu->mem_free(ptr);
}

/* ---- open and close -------------------------------------------------------- */

/* What modules are compiled for: cubins for the device's own
 * architecture (sm_XY), which the driver loads as they are, whatever its
 * version; PTX for its virtual architecture (compute_XY), which the driver
 * compiles, where this NVRTC cannot assemble for the device (a device
 * newer than NVRTC). A tiny kernel decides. */
static void pick_arch(struct jit_gpu *d, const struct jit_cuda_device *dv)
{
    static const char probe[] = "extern \"C\" __global__ void kiln_probe(int *p) { *p = 1; }\n";
    char sm[16], *img = NULL;
    size_t len = 0;
    snprintf(sm, sizeof sm, "sm_%d%d", dv->cc_major, dv->cc_minor);
    if (jit_cuda_modcache_ptx(d->mc, probe, sm, &img, &len, NULL, NULL, NULL) == KILN_OK)
        snprintf(d->arch, sizeof d->arch, "%s", sm);
    free(img);
    snprintf(d->st.arch, sizeof d->st.arch, "%s", d->arch);
}

int jit_gpu_open(struct jit_cuda *cuda, struct jit_runtime *rt, const struct jit_gpu_opts *o,
                 struct jit_gpu **out, char *why, size_t whylen)
{
    *out = NULL;
    const struct jit_cuda_info *in = jit_cuda_info(cuda);
    const struct jit_cu_fns *cu = jit_cuda_driver(cuda);
    if (cu == NULL) {
        snprintf(why, whylen, "%s", in->why[0] ? in->why : "no CUDA driver");
        return KILN_EUNSUPPORTED;
    }
    if (o->ordinal < 0 || (uint32_t) o->ordinal >= in->ndevices) {
        snprintf(why, whylen, "no CUDA device %d (%u found%s%s)", o->ordinal, in->ndevices,
                 in->why[0] ? ": " : "", in->why);
        return KILN_EUNSUPPORTED;
    }
    if (!in->nvrtc) {
        snprintf(why, whylen, "%s", in->nvrtc_why);
        return KILN_EUNSUPPORTED;
    }
    const struct jit_cuda_device *dv = &in->devices[o->ordinal];
    if (dv->cc_major * 10 + dv->cc_minor < 75) {
        snprintf(why, whylen, "%s has compute capability %d.%d; kiln needs 7.5 or later", dv->name,
                 dv->cc_major, dv->cc_minor);
        return KILN_EUNSUPPORTED;
    }
    struct jit_gpu *d = calloc(1, sizeof *d);
    if (d == NULL)
        return KILN_ENOMEM;
    d->cuda = cuda;
    d->cu = cu;
    d->rt = rt;
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->relay_lock, NULL);
    snprintf(d->arch, sizeof d->arch, "compute_%d%d", dv->cc_major, dv->cc_minor);
    snprintf(d->st.name, sizeof d->st.name, "%s", dv->name);
    d->st.cc_major = dv->cc_major;
    d->st.cc_minor = dv->cc_minor;
    d->st.mem_total = dv->mem_total;
    char eb[160];
    cu_result r;
    int rc = KILN_EINTERNAL;
    size_t free_b = 0, total_b = 0;
    if ((r = cu->device_get(&d->dev, o->ordinal)) != CU_SUCCESS) {
        snprintf(why, whylen, "cuDeviceGet: %s", jit_cuda_strerror(cuda, r, eb, sizeof eb));
        goto fail;
    }
    /* Waits block the worker instead of spinning on a core that CPU steps
     * need. (Refused when another user of the primary context made it
     * first with other flags: then its flags stay.) */
    cu->primary_ctx_set_flags(d->dev, CU_CTX_SCHED_BLOCKING_SYNC_FLAG);
    if ((r = cu->primary_ctx_retain(&d->ctx, d->dev)) != CU_SUCCESS) {
        snprintf(why, whylen, "cuDevicePrimaryCtxRetain: %s",
                 jit_cuda_strerror(cuda, r, eb, sizeof eb));
        goto fail;
    }
    d->ctx_held = true;
    if ((r = cu->ctx_set_current(d->ctx)) != CU_SUCCESS ||
        (r = cu->device_get_attribute(&d->st.sms, CU_ATTR_MULTIPROCESSOR_COUNT, d->dev)) !=
            CU_SUCCESS ||
        (r = cu->mem_get_info(&free_b, &total_b)) != CU_SUCCESS) {
        snprintf(why, whylen, "the device's context: %s",
                 jit_cuda_strerror(cuda, r, eb, sizeof eb));
        goto fail;
    }
    size_t limit = o->mem_limit ? o->mem_limit : free_b / 10 * 9;
    struct jit_devpool_backend be = {
        .ctx = d, .alloc = be_alloc, .free = be_free, .reclaim = reclaim};
    d->rb = calloc(RES_BUCKETS, sizeof *d->rb);
    rc = KILN_ENOMEM;
    if (d->rb == NULL || !ctable_init(&d->mods, MAX_MODULES) ||
        jit_devpool_new(&be, limit, &d->pool) != KILN_OK ||
        jit_cuda_modcache_new(cuda, o->cache_dir, o->cache_max, &d->mc) != KILN_OK) {
        snprintf(why, whylen, "out of memory opening the device");
        goto fail;
    }
    d->st.pool_limit = limit;
    pick_arch(d, dv);
    d->host_relays = o->host_relays;
    *out = d;
    return KILN_OK;
fail:
    jit_gpu_close(d);
    return rc;
}

static void stage_free(const struct jit_cu_fns *cu, struct stage *g)
{
    for (int k = 0; k < 2; k++) {
        if (g->ev[k] != NULL)
            cu->event_destroy(g->ev[k]);
        if (g->buf[k] != NULL)
            cu->mem_free_host(g->buf[k]);
    }
    free(g);
}

void jit_gpu_close(struct jit_gpu *d)
{
    if (d == NULL)
        return;
    if (d->ctx_held)
        d->cu->ctx_set_current(d->ctx);
    for (struct centry *e = ctable_drain(&d->mods), *n; e != NULL; e = n) {
        n = e->next;
        struct dmod *m = (struct dmod *) e;
        d->cu->module_unload(m->mod); /* after a sticky error it fails, harmlessly */
        free(m->c.check);
        free(m);
    }
    ctable_fini(&d->mods);
    for (uint32_t b = 0; d->rb != NULL && b < RES_BUCKETS; b++)
        for (struct res *r = d->rb[b], *n; r != NULL; r = n) {
            n = r->next;
            jit_devpool_free(d->pool, r->p, r->bytes, 0);
            free(r);
        }
    free(d->rb);
    for (struct stage *g = d->stages, *n; g != NULL; g = n) {
        n = g->next;
        stage_free(d->cu, g);
    }
    jit_devpool_free_pool(d->pool);
    jit_cuda_modcache_free(d->mc);
    jit_cuda_relay_close(d->relay);
    if (d->ctx_held)
        d->cu->primary_ctx_release(d->dev);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->relay_lock);
    free(d);
}

/* A free staging pair, or a new one (the context current). NULL: no
 * memory (pinned memory is a scarce resource of the host). */
static struct stage *stage_take(struct jit_gpu *d)
{
    pthread_mutex_lock(&d->lock);
    struct stage *g = d->stages;
    if (g != NULL)
        d->stages = g->next;
    pthread_mutex_unlock(&d->lock);
    if (g != NULL)
        return g;
    if ((g = calloc(1, sizeof *g)) == NULL)
        return NULL;
    for (int k = 0; k < 2; k++)
        if (d->cu->mem_alloc_host(&g->buf[k], JIT_GPU_STAGE_BYTES) != CU_SUCCESS ||
            d->cu->event_create(&g->ev[k], CU_EVENT_DISABLE_TIMING_FLAG) != CU_SUCCESS) {
            stage_free(d->cu, g);
            return NULL;
        }
    return g;
}

/* Back to the free list, once nothing of it is in flight. */
static void stage_put(struct jit_gpu *d, struct stage *g)
{
    if (g == NULL)
        return;
    g->pending[0] = g->pending[1] = false;
    pthread_mutex_lock(&d->lock);
    g->next = d->stages;
    d->stages = g;
    pthread_mutex_unlock(&d->lock);
}

int jit_gpu_stream_new(struct jit_gpu *d, struct jit_gpu_stream **out)
{
    *out = NULL;
    struct jit_gpu_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return KILN_ENOMEM;
    s->d = d;
    const struct jit_cu_fns *cu = d->cu;
    int rc = KILN_OK;
    if (cu->ctx_set_current(d->ctx) != CU_SUCCESS ||
        cu->stream_create(&s->s, CU_STREAM_NON_BLOCKING_FLAG) != CU_SUCCESS)
        rc = KILN_EINTERNAL;
    if (rc != KILN_OK) {
        jit_gpu_stream_free(s);
        return rc;
    }
    pthread_mutex_lock(&d->lock);
    s->tag = ++d->stream_tags;
    pthread_mutex_unlock(&d->lock);
    *out = s;
    return KILN_OK;
}

void jit_gpu_stream_free(struct jit_gpu_stream *s)
{
    if (s == NULL)
        return;
    struct jit_gpu *d = s->d;
    const struct jit_cu_fns *cu = d->cu;
    cu->ctx_set_current(d->ctx);
    if (s->s != NULL)
        cu->stream_synchronize(s->s);
    jit_cuda_relay_handles_free(s->rh);
    if (s->s != NULL)
        cu->stream_destroy(s->s);
    if (s->tag != 0)
        jit_devpool_release_tag(d->pool, s->tag);
    free(s);
}

/* ---- a run ------------------------------------------------------------------- */

enum { DV_NONE, DV_POOL, DV_RES };

struct grun {
    struct jit_gpu *d;
    struct jit_gpu_stream *s;
    const struct jit_cu_fns *cu;
    const struct ir_graph *g;
    const struct jit_plan *p;
    const bool *is_output;
    const void *const *externs;
    const uint64_t *extern_tags;
    const struct jit_run_budget *budget;
    bool tf32;
    uint64_t *acct;      /* the user's device bytes (NULL: not counted) */
    uint64_t limit;      /* its device_memory quota (0: none) */
    size_t dev_held;     /* of which this run's */
    struct stage *stage; /* its staging pair, once it copied */
    /* Modules launched, unloaded or released only after the stream is
     * synchronised (a queued kernel's module must stay loaded). */
    struct dmod **mods;
    bool *mods_owned;
    uint32_t nmods;
    cu_devptr *dv;    /* per node: its device buffer */
    uint8_t *dk;      /* per node: DV_* */
    struct res **rs;  /* per node: the resident value it reads (DV_RES) */
    uint32_t *last;   /* per node: the last group reading it */
    size_t held, max; /* host bytes charged */
    struct jit_mem *mem;
    struct jit_run_info *info;
    struct ir_error *err;
};

static size_t node_bytes(const struct ir_node *nd)
{
    return (size_t) nd->numel * ir_dtype_size((enum ir_dtype) nd->dtype);
}

/* `bytes` more device memory held by this run, within the user's
 * device_memory quota (jit_gpu_run_opts.dev_account). */
static int dev_charge(struct grun *R, int64_t node, size_t bytes)
{
    if (R->acct == NULL)
        return KILN_OK;
    uint64_t now = __atomic_add_fetch(R->acct, (uint64_t) bytes, __ATOMIC_RELAXED);
    if (R->limit != 0 && now > R->limit) {
        __atomic_sub_fetch(R->acct, (uint64_t) bytes, __ATOMIC_RELAXED);
        set_err(R->err, KILN_EQUOTA, node,
                "device_memory quota: %s needs %zu more bytes on the device, and the user's "
                "running steps hold %llu of its %llu",
                node >= 0 ? ir_op_name(R->g->nodes[node].op) : "the step", bytes,
                (unsigned long long) (now - bytes), (unsigned long long) R->limit);
        return KILN_EQUOTA;
    }
    R->dev_held += bytes;
    return KILN_OK;
}

static void dev_uncharge(struct grun *R, size_t bytes)
{
    if (R->acct == NULL)
        return;
    __atomic_sub_fetch(R->acct, (uint64_t) bytes, __ATOMIC_RELAXED);
    R->dev_held -= bytes;
}

static int dev_alloc(struct grun *R, uint32_t node, size_t bytes, cu_devptr *p)
{
    uint64_t v = 0;
    int rc = dev_charge(R, node, bytes);
    if (rc != KILN_OK)
        return rc;
    if (jit_devpool_alloc(R->d->pool, bytes, R->s->tag, &v) != KILN_OK) {
        dev_uncharge(R, bytes);
        if ((rc = failed_error(R->d, R->err)) != KILN_OK)
            return rc; /* the allocation met a sticky error */
        struct jit_devpool_stats ps;
        jit_devpool_stats(R->d->pool, &ps);
        set_err(R->err, KILN_ENOMEM, node,
                "%s: %zu bytes do not fit in device memory (%llu in use of the pool's %llu)",
                ir_op_name(R->g->nodes[node].op), bytes, (unsigned long long) ps.in_use,
                (unsigned long long) ps.limit);
        return KILN_ENOMEM;
    }
    *p = v;
    return KILN_OK;
}

static void dev_release(struct grun *R, cu_devptr p, size_t bytes)
{
    jit_devpool_free(R->d->pool, p, bytes, R->s->tag);
    dev_uncharge(R, bytes);
}

/* Host bytes for an output, charged against the step's quota. */
static void *charge(struct grun *R, uint32_t node, size_t bytes)
{
    return jit_run_charge(R->mem, &R->held, R->max, R->g, node, bytes, R->err);
}

/* The run's staging pair, taken at its first copy. */
static int stage_of(struct grun *R, uint32_t node, struct stage **g)
{
    if (R->stage == NULL && (R->stage = stage_take(R->d)) == NULL) {
        set_err(R->err, KILN_ENOMEM, node, "no pinned host memory for staging buffers");
        return KILN_ENOMEM;
    }
    *g = R->stage;
    return KILN_OK;
}

/* Host to device through the run's pinned buffers: chunk k is copied into
 * buf[k % 2] while chunk k - 1 is on its way. */
static int upload(struct grun *R, uint32_t node, cu_devptr dst, const void *src, size_t bytes)
{
    struct stage *g;
    int rc = stage_of(R, node, &g);
    if (rc != KILN_OK)
        return rc;
    for (size_t off = 0; off < bytes; off += JIT_GPU_STAGE_BYTES) {
        size_t c = bytes - off < JIT_GPU_STAGE_BYTES ? bytes - off : JIT_GPU_STAGE_BYTES;
        unsigned k = g->next_k;
        g->next_k ^= 1;
        if (g->pending[k]) {
            CU(R, "cuEventSynchronize", R->cu->event_synchronize(g->ev[k]), node);
            g->pending[k] = false;
        }
        memcpy(g->buf[k], (const char *) src + off, c);
        CU(R, "cuMemcpyHtoDAsync", R->cu->memcpy_htod_async(dst + off, g->buf[k], c, R->s->s),
           node);
        CU(R, "cuEventRecord", R->cu->event_record(g->ev[k], R->s->s), node);
        g->pending[k] = true;
    }
    pthread_mutex_lock(&R->d->lock);
    R->d->st.uploads++;
    R->d->st.upload_bytes += bytes;
    pthread_mutex_unlock(&R->d->lock);
    return KILN_OK;
}

/* Device to host, after everything enqueued before it: chunk k lands in
 * buf[k % 2] and is copied out while chunk k + 1 is on its way. */
static int download(struct grun *R, uint32_t node, void *dst, cu_devptr src, size_t bytes)
{
    struct stage *g;
    int rc = stage_of(R, node, &g);
    if (rc != KILN_OK)
        return rc;
    size_t n = (bytes + JIT_GPU_STAGE_BYTES - 1) / JIT_GPU_STAGE_BYTES;
    for (size_t j = 0; j <= n; j++) {
        if (j < n) {
            size_t off = j * JIT_GPU_STAGE_BYTES;
            size_t c = bytes - off < JIT_GPU_STAGE_BYTES ? bytes - off : JIT_GPU_STAGE_BYTES;
            CU(R, "cuMemcpyDtoHAsync",
               R->cu->memcpy_dtoh_async(g->buf[j % 2], src + off, c, R->s->s), node);
            CU(R, "cuEventRecord", R->cu->event_record(g->ev[j % 2], R->s->s), node);
        }
        if (j > 0) {
            size_t off = (j - 1) * JIT_GPU_STAGE_BYTES;
            size_t c = bytes - off < JIT_GPU_STAGE_BYTES ? bytes - off : JIT_GPU_STAGE_BYTES;
            CU(R, "cuEventSynchronize", R->cu->event_synchronize(g->ev[(j - 1) % 2]), node);
            memcpy((char *) dst + off, g->buf[(j - 1) % 2], c);
        }
    }
    g->pending[0] = g->pending[1] = false; /* every event recorded so far has completed */
    pthread_mutex_lock(&R->d->lock);
    R->d->st.downloads++;
    R->d->st.download_bytes += bytes;
    pthread_mutex_unlock(&R->d->lock);
    return KILN_OK;
}

/* The host data of input node n (an ARRAY or an EXTERN). */
static const void *host_input(const struct grun *R, uint32_t n)
{
    const struct ir_node *nd = &R->g->nodes[n];
    if (nd->op == IR_OP_ARRAY)
        return nd->attr.array.data;
    return R->externs ? R->externs[nd->attr.ext.slot] : NULL;
}

/* Gives input node n (read by a group, computed by none) a device buffer:
 * its resident copy, or an upload (kept resident when it has a tag). */
static int dev_input(struct grun *R, uint32_t n)
{
    if (R->dk[n] != DV_NONE)
        return KILN_OK;
    const struct ir_node *nd = &R->g->nodes[n];
    struct jit_gpu *d = R->d;
    uint64_t tag = nd->op == IR_OP_EXTERN && R->extern_tags ? R->extern_tags[nd->attr.ext.slot] : 0;
    size_t bytes = node_bytes(nd);
    if (tag != 0) {
        pthread_mutex_lock(&d->lock);
        struct res *r = *res_slot(d, tag);
        if (r != NULL && !r->dead && r->bytes == bytes) {
            r->users++;
            jit_lru_unlink(&d->res_lru, &r->lru); /* used now: the newest */
            jit_lru_push(&d->res_lru, &r->lru);
            d->st.resident_hits++;
            R->dv[n] = r->p;
            R->dk[n] = DV_RES;
            R->rs[n] = r;
        }
        pthread_mutex_unlock(&d->lock);
        if (R->dk[n] == DV_RES) {
            int rc = dev_charge(R, n, bytes); /* held by this run while it reads it */
            if (rc != KILN_OK) {
                res_unuse(d, R->rs[n]);
                R->dk[n] = DV_NONE;
                R->dv[n] = 0;
                R->rs[n] = NULL;
            }
            return rc;
        }
    }
    const void *src = host_input(R, n);
    if (src == NULL && bytes > 0) {
        set_err(R->err, KILN_EINTERNAL, n, "%s: no data for an input", ir_op_name(nd->op));
        return KILN_EINTERNAL;
    }
    int rc = dev_alloc(R, n, bytes, &R->dv[n]);
    if (rc != KILN_OK)
        return rc;
    R->dk[n] = DV_POOL;
    if (bytes > 0 && (rc = upload(R, n, R->dv[n], src, bytes)) != KILN_OK)
        return rc;
    if (tag == 0)
        return KILN_OK;
    struct res *r = calloc(1, sizeof *r);
    if (r == NULL)
        return KILN_OK; /* not kept: the run goes on with its own copy */
    pthread_mutex_lock(&d->lock);
    struct res **l = res_slot(d, tag);
    if (*l == NULL) {
        r->tag = tag;
        r->p = R->dv[n];
        r->bytes = bytes;
        r->users = 1;
        res_add(d, l, r);
        R->dk[n] = DV_RES;
        R->rs[n] = r;
        r = NULL;
    }
    pthread_mutex_unlock(&d->lock);
    free(r); /* another run kept the same value first: ours stays the run's */
    return KILN_OK;
}

/* Frees node n's device buffer, or stops reading its resident value. */
static void dev_drop(struct grun *R, uint32_t n)
{
    if (R->dk[n] == DV_POOL)
        dev_release(R, R->dv[n], node_bytes(&R->g->nodes[n]));
    else if (R->dk[n] == DV_RES) {
        res_unuse(R->d, R->rs[n]);
        dev_uncharge(R, node_bytes(&R->g->nodes[n]));
    }
    R->dk[n] = DV_NONE;
    R->dv[n] = 0;
    R->rs[n] = NULL;
}

/* ---- modules ---------------------------------------------------------------------- */

static void module_put(struct jit_gpu *d, struct dmod *m, bool owned)
{
    if (owned) {
        d->cu->module_unload(m->mod);
        free(m->c.check);
        free(m);
        return;
    }
    pthread_mutex_lock(&d->lock);
    m->c.refs--;
    pthread_mutex_unlock(&d->lock);
}

/* Group gi's module, with a reference; *owned: not in the table (unload
 * it after use). NULL: err says why. */
static struct dmod *module_get(struct grun *R, uint32_t gi, bool *owned)
{
    struct jit_gpu *d = R->d;
    const struct ir_graph *g = R->g;
    const struct jit_plan *p = R->p;
    const struct jit_group *G = &p->groups[gi];
    int64_t at = G->nsinks ? p->refs[G->sink0] : p->members[G->member0];
    *owned = false;
    uint64_t key = jit_kernel_key(g, p, gi);
    uint32_t ncheck;
    uint32_t *check = jit_kernel_check(g, p, gi, &ncheck);
    if (check == NULL) {
        set_err(R->err, KILN_ENOMEM, at, "no memory for kernel %u", gi);
        return NULL;
    }
    pthread_mutex_lock(&d->lock);
    struct dmod *m = (struct dmod *) ctable_hit(&d->mods, &d->tick, key, check, ncheck);
    if (m != NULL)
        d->st.module_hits++;
    pthread_mutex_unlock(&d->lock);
    if (m != NULL) {
        free(check);
        return m;
    }
    const struct jit_run_budget *b = R->budget;
    struct jit_run_info *in = R->info;
    if (b != NULL && in != NULL &&
        (in->kernels_compiled >= b->kernels || in->compile_ns >= b->compile_ns)) {
        free(check);
        set_err(R->err, KILN_EQUOTA, at, "no %s left to compile kernel %u (ending at %s)",
                in->kernels_compiled >= b->kernels ? "kernel budget" : "compile time", gi,
                ir_op_name(g->nodes[at].op));
        return NULL;
    }
    uint64_t t0 = now_ns();
    struct jit_buf src;
    jit_buf_init(&src);
    int rc = jit_codegen_cuda_group(g, p, gi, &src);
    char *ptx = NULL, *log = NULL;
    size_t len = 0;
    bool from_disk = false, compiled = false;
    if (rc == KILN_OK)
        rc = src.bad ? KILN_ENOMEM
                     : jit_cuda_modcache_ptx(d->mc, src.data, d->arch, &ptx, &len, &from_disk,
                                             &compiled, &log);
    jit_buf_fini(&src);
    if (rc != KILN_OK) {
        free(check);
        set_err(R->err, rc, at, "cannot %s CUDA kernel %u (ending at %s)%s%.200s",
                rc == KILN_ELIMIT ? "generate" : "compile", gi, ir_op_name(g->nodes[at].op),
                log && log[0] ? ": " : "", log ? log : "");
        free(log);
        return NULL;
    }
    free(log);
    m = calloc(1, sizeof *m);
    cu_result r = m == NULL ? CU_ERROR_OUT_OF_MEMORY : d->cu->module_load_data(&m->mod, ptx);
    free(ptx);
    if (r != CU_SUCCESS) {
        free(m);
        free(check);
        cu_fail(d, r, "cuModuleLoadData", at, R->err);
        return NULL;
    }
    for (int k = 0; k < FN_COUNT; k++)
        if (d->cu->module_get_function(&m->fn[k], m->mod, fn_names[k]) != CU_SUCCESS)
            m->fn[k] = NULL; /* this kind of group has no such entry */
    uint64_t dt = now_ns() - t0;
    if (in != NULL && compiled) {
        in->kernels_compiled++;
        in->compile_ns += dt;
    }
    m->c.key = key;
    m->c.check = check;
    m->c.ncheck = ncheck;
    m->c.refs = 1;
    struct dmod *old = NULL, *twin = NULL;
    pthread_mutex_lock(&d->lock);
    d->st.module_loads++;
    d->st.ptx_compiles += compiled;
    d->st.ptx_disk_hits += from_disk;
    d->st.compile_ns += dt;
    twin = (struct dmod *) ctable_hit(&d->mods, &d->tick, key, check, ncheck);
    if (twin == NULL) {
        if (d->mods.n >= d->mods.max)
            old = (struct dmod *) ctable_take_lru(&d->mods);
        *owned = !ctable_add(&d->mods, &d->tick, &m->c);
    }
    d->st.modules = d->mods.n;
    pthread_mutex_unlock(&d->lock);
    if (old != NULL)
        module_put(d, old, true);
    if (twin != NULL) { /* another run loaded it meanwhile: use that one */
        module_put(d, m, true);
        return twin;
    }
    return m;
}

/* ---- groups --------------------------------------------------------------------- */

static int run_kernel(struct grun *R, uint32_t gi)
{
    const struct ir_graph *g = R->g;
    const struct jit_plan *p = R->p;
    const struct jit_group *G = &p->groups[gi];
    struct jit_cuda_launch L[JIT_CUDA_LAUNCH_MAX];
    size_t extra = 0;
    uint32_t nl = jit_codegen_cuda_launches(g, p, gi, (uint32_t) R->d->st.sms, L, &extra);
    if (nl == 0)
        return KILN_OK;
    int64_t at = G->nsinks ? p->refs[G->sink0] : p->members[G->member0];
    bool owned;
    struct dmod *m = module_get(R, gi, &owned);
    if (m == NULL)
        return R->err->code;
    size_t nbufs = jit_codegen_cuda_nbufs(g, p, gi);
    size_t np = jit_kernel_nparams(g, p, gi);
    size_t words = nbufs + (np ? np : 1);
    uint64_t *blob = calloc(words, sizeof(uint64_t));
    cu_devptr xp = 0;
    int rc = KILN_OK;
    if (blob == NULL) {
        set_err(R->err, KILN_ENOMEM, at, "no memory to launch kernel %u", gi);
        rc = KILN_ENOMEM;
    } else if (extra > 0 && nbufs != (size_t) G->ninputs + G->nsinks + 1) {
        set_err(R->err, KILN_EINTERNAL, at, "kernel %u wants scratch but has no slot for it", gi);
        rc = KILN_EINTERNAL;
    } else if (extra > 0) {
        rc = dev_alloc(R, (uint32_t) at, extra, &xp);
    }
    if (rc == KILN_OK) {
        for (uint32_t s = 0; s < G->ninputs; s++)
            blob[s] = R->dv[p->refs[G->input0 + s]];
        for (uint32_t s = 0; s < G->nsinks; s++)
            blob[G->ninputs + s] = R->dv[p->refs[G->sink0 + s]];
        if (nbufs > (size_t) G->ninputs + G->nsinks)
            blob[nbufs - 1] = xp;
        jit_kernel_params(g, p, gi, (int64_t *) (blob + nbufs));
        for (uint32_t k = 0; k < nl && rc == KILN_OK; k++) {
            cu_function f = NULL;
            for (int e = 0; e < FN_COUNT; e++)
                if (strcmp(L[k].entry, fn_names[e]) == 0)
                    f = m->fn[e];
            if (f == NULL) {
                set_err(R->err, KILN_EINTERNAL, at, "kernel %u has no entry %s", gi, L[k].entry);
                rc = KILN_EINTERNAL;
                break;
            }
            int64_t n = L[k].n;
            void *args[2] = {blob, &n};
            cu_result r = R->cu->launch_kernel(f, L[k].grid, 1, 1, L[k].block, 1, 1, L[k].shared,
                                               R->s->s, args, NULL);
            if (r != CU_SUCCESS)
                rc = cu_fail(R->d, r, "cuLaunchKernel", at, R->err);
        }
        pthread_mutex_lock(&R->d->lock);
        R->d->st.launches += nl;
        pthread_mutex_unlock(&R->d->lock);
    }
    if (xp != 0)
        dev_release(R, xp, extra);
    free(blob);
    R->mods[R->nmods] = m; /* released after the stream's sync */
    R->mods_owned[R->nmods++] = owned;
    return rc;
}

/* Relay node n on the host: its operands down, the reference loops, its
 * result up (what the libraries refuse, and builds without them). */
static int relay_host(struct grun *R, uint32_t n)
{
    const struct ir_graph *g = R->g;
    const struct ir_node *nd = &g->nodes[n];
    const struct ir_node *an = &g->nodes[nd->in[0]], *bn = &g->nodes[nd->in[1]];
    size_t ab = node_bytes(an), bb = node_bytes(bn), yb = node_bytes(nd);
    void *a = malloc(ab ? ab : 1), *b = malloc(bb ? bb : 1), *y = malloc(yb ? yb : 1);
    int rc = KILN_OK;
    if (a == NULL || b == NULL || y == NULL) {
        set_err(R->err, KILN_ENOMEM, n, "%s: no host memory to run it", ir_op_name(nd->op));
        rc = KILN_ENOMEM;
    }
    if (rc == KILN_OK && ab > 0)
        rc = download(R, n, a, R->dv[nd->in[0]], ab);
    if (rc == KILN_OK && bb > 0)
        rc = download(R, n, b, R->dv[nd->in[1]], bb);
    if (rc == KILN_OK) {
        ir_relay_ref(nd, an, bn, a, b, y, 0, nd->rank > 0 ? nd->shape[0] : 1);
        if (yb > 0)
            rc = upload(R, n, R->dv[n], y, yb);
        /* The upload reads the staging buffers, not y: y may go now. */
    }
    free(a);
    free(b);
    free(y);
    pthread_mutex_lock(&R->d->lock);
    R->d->st.relay_fallbacks++;
    pthread_mutex_unlock(&R->d->lock);
    return rc;
}

static int run_relay(struct grun *R, uint32_t gi)
{
    const struct jit_group *G = &R->p->groups[gi];
    uint32_t n = (uint32_t) G->space;
    const struct ir_node *nd = &R->g->nodes[n];
    struct jit_gpu_stream *s = R->s;
    pthread_mutex_lock(&R->d->lock);
    R->d->st.relay_runs++;
    pthread_mutex_unlock(&R->d->lock);
    struct jit_gpu *d = R->d;
    pthread_mutex_lock(&d->relay_lock);
    if (!d->relay_tried) {
        d->relay_tried = true;
        if (d->host_relays || jit_cuda_relay_open(&d->relay) != KILN_OK)
            d->relay = NULL; /* relays run the reference loops on the host */
    }
    pthread_mutex_unlock(&d->relay_lock);
    if (!s->rh_tried && R->d->relay != NULL) {
        s->rh_tried = true;
        if (jit_cuda_relay_handles_new(R->d->relay, s->s, &s->rh) != KILN_OK)
            s->rh = NULL; /* this stream's relays run on the host */
    }
    if (s->rh == NULL || !jit_cuda_relay_available(R->d->relay, nd->op, NULL))
        return relay_host(R, n);
    size_t wsb = jit_cuda_relay_workspace(s->rh, R->g, n);
    cu_devptr ws = 0;
    int rc = wsb > 0 ? dev_alloc(R, n, wsb, &ws) : KILN_OK;
    if (rc == KILN_ENOMEM) { /* the library's fastest choice does not fit: one that needs none */
        memset(R->err, 0, sizeof *R->err);
        R->err->node = -1;
        wsb = 0;
        rc = KILN_OK;
    }
    if (rc != KILN_OK)
        return rc;
    struct ir_error e2 = {.node = -1};
    rc = jit_cuda_relay_run(s->rh, R->g, n, R->dv[nd->in[0]], R->dv[nd->in[1]], R->dv[n], ws, wsb,
                            R->tf32, &e2);
    if (ws != 0)
        dev_release(R, ws, wsb);
    if (rc == KILN_EUNSUPPORTED)
        return relay_host(R, n);
    if (rc != KILN_OK)
        *R->err = e2;
    return rc;
}

static int run_group(struct grun *R, uint32_t gi)
{
    const struct ir_graph *g = R->g;
    const struct jit_plan *p = R->p;
    const struct jit_group *G = &p->groups[gi];
    for (uint32_t s = 0; s < G->ninputs; s++) {
        int rc = dev_input(R, p->refs[G->input0 + s]);
        if (rc != KILN_OK)
            return rc;
    }
    for (uint32_t k = 0; k < G->nsinks; k++) {
        uint32_t n = p->refs[G->sink0 + k];
        int rc = dev_alloc(R, n, node_bytes(&g->nodes[n]), &R->dv[n]);
        if (rc != KILN_OK)
            return rc;
        R->dk[n] = DV_POOL;
    }
    if (R->info)
        R->info->launched++;
    return G->kind == JIT_GROUP_RELAY ? run_relay(R, gi) : run_kernel(R, gi);
}

/* Device buffers whose last reader was group gi and that are not outputs
 * go back to the pool, tagged with the stream: later groups of this run
 * may take them (stream order keeps that safe), no other stream may
 * before the run's sync. */
static void release_inputs(struct grun *R, uint32_t gi)
{
    const struct jit_group *G = &R->p->groups[gi];
    for (uint32_t s = 0; s < G->ninputs; s++) {
        uint32_t n = R->p->refs[G->input0 + s];
        if (R->last[n] == gi && !R->is_output[n] && R->dk[n] == DV_POOL)
            dev_drop(R, n); /* resident values: after the stream's sync */
    }
}

/* Output i into host memory: a download of what a kernel computed, or a
 * copy of an input (bool canonical 0/1, as every copy). */
static int output(struct grun *R, uint32_t i, void **host)
{
    const struct ir_node *nd = &R->g->nodes[i];
    size_t bytes = node_bytes(nd);
    void *m = charge(R, i, bytes);
    if (m == NULL)
        return R->err->code;
    *host = m;
    if (nd->op == IR_OP_ARRAY || nd->op == IR_OP_EXTERN) {
        jit_copy_value(m, host_input(R, i), nd);
        return KILN_OK;
    }
    if (R->dk[i] == DV_NONE) {
        set_err(R->err, KILN_EINTERNAL, i, "%s: an output no kernel computed", ir_op_name(nd->op));
        return KILN_EINTERNAL;
    }
    return bytes > 0 ? download(R, i, m, R->dv[i], bytes) : KILN_OK;
}

/* Output i's device buffer stays resident under `tag`. */
static void keep(struct grun *R, uint32_t i, uint64_t tag)
{
    struct jit_gpu *d = R->d;
    if (R->dk[i] != DV_POOL || tag == 0)
        return;
    struct res *r = calloc(1, sizeof *r);
    if (r == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    struct res **l = res_slot(d, tag);
    if (*l == NULL) {
        r->tag = tag;
        r->p = R->dv[i];
        r->bytes = node_bytes(&R->g->nodes[i]);
        res_add(d, l, r);
        R->dk[i] = DV_NONE;        /* the resident table owns it now, */
        dev_uncharge(R, r->bytes); /* and no user's quota holds it */
        r = NULL;
    }
    pthread_mutex_unlock(&d->lock);
    free(r);
}

int jit_gpu_run(struct jit_gpu *d, struct jit_gpu_stream *s, const struct ir_graph *g,
                const bool *is_output, const void *const *externs, const uint64_t *extern_tags,
                const uint64_t *out_tags, struct jit_mem *mem, size_t max_bytes, void ***out,
                struct jit_run_info *info, struct ir_error *err)
{
    struct jit_gpu_run_opts o = {.in_tags = extern_tags, .out_tags = out_tags};
    return jit_gpu_run_opt(d, s, g, is_output, externs, mem, max_bytes, &o, out, info, err);
}

int jit_gpu_run_opt(struct jit_gpu *d, struct jit_gpu_stream *s, const struct ir_graph *g,
                    const bool *is_output, const void *const *externs, struct jit_mem *mem,
                    size_t max_bytes, const struct jit_gpu_run_opts *o, void ***out,
                    struct jit_run_info *info, struct ir_error *err)
{
    static const struct jit_gpu_run_opts none;
    if (o == NULL)
        o = &none;
    const uint64_t *extern_tags = o->in_tags, *out_tags = o->out_tags;
    struct jit_run_info own_info;
    if (info == NULL)
        info = &own_info;
    memset(info, 0, sizeof *info);
    *out = NULL;
    memset(err, 0, sizeof *err);
    err->node = -1;
    int rc = failed_error(d, err);
    if (rc != KILN_OK) {
        pthread_mutex_lock(&d->lock);
        d->st.runs++;
        d->st.failed_runs++;
        pthread_mutex_unlock(&d->lock);
        return rc;
    }
    uint32_t cnt = g->count ? g->count : 1;
    struct grun R = {.d = d,
                     .s = s,
                     .cu = d->cu,
                     .g = g,
                     .is_output = is_output,
                     .externs = externs,
                     .extern_tags = extern_tags,
                     .budget = o->budget,
                     .tf32 = o->tf32,
                     .acct = o->dev_account,
                     .limit = o->dev_limit,
                     .max = max_bytes,
                     .mem = mem,
                     .info = info,
                     .err = err};
    R.dv = calloc(cnt, sizeof *R.dv);
    R.dk = calloc(cnt, 1);
    R.rs = calloc(cnt, sizeof *R.rs);
    R.last = calloc(cnt, sizeof *R.last);
    void **host = calloc(cnt, sizeof *host);
    if (R.dv == NULL || R.dk == NULL || R.rs == NULL || R.last == NULL || host == NULL) {
        set_err(err, KILN_ENOMEM, -1, "out of memory starting the run");
        rc = KILN_ENOMEM;
        goto done;
    }
    cu_result cr = d->cu->ctx_set_current(d->ctx);
    if (cr != CU_SUCCESS) {
        rc = cu_fail(d, cr, "cuCtxSetCurrent", -1, err);
        goto done;
    }
    struct jit_plan_ref ref;
    bool hit = false;
    const struct jit_plan *p = R.p = jit_runtime_plan_get(d->rt, g, is_output, &ref, &hit, err);
    if (p == NULL) {
        rc = err->code;
        goto done;
    }
    info->groups = p->ngroups;
    info->plan_hit = hit;
    R.mods = calloc(p->ngroups + 1, sizeof *R.mods);
    R.mods_owned = calloc(p->ngroups + 1, sizeof *R.mods_owned);
    if (R.mods == NULL || R.mods_owned == NULL) {
        set_err(err, KILN_ENOMEM, -1, "out of memory starting the run");
        rc = KILN_ENOMEM;
    }
    for (uint32_t gi = 0; gi < p->ngroups; gi++) {
        const struct jit_group *G = &p->groups[gi];
        for (uint32_t k = 0; k < G->ninputs; k++)
            R.last[p->refs[G->input0 + k]] = gi;
    }
    for (uint32_t gi = 0; gi < p->ngroups && rc == KILN_OK; gi++) {
        rc = run_group(&R, gi);
        release_inputs(&R, gi);
    }
    for (uint32_t i = 0; i < g->count && rc == KILN_OK; i++)
        if (is_output[i])
            rc = output(&R, i, &host[i]);
    if (rc == KILN_OK && out_tags != NULL)
        for (uint32_t i = 0; i < g->count; i++)
            if (is_output[i])
                keep(&R, i, out_tags[i]);
    jit_runtime_plan_put(d->rt, &ref);
    /* The run's own buffers go back to the pool under the stream's tag (only
     * this stream may take them before the sync below)... */
    for (uint32_t i = 0; i < g->count; i++)
        if (R.dk[i] == DV_POOL)
            dev_drop(&R, i);
    /* ...and everything it enqueued is done (or failed) before its blocks
     * go to other streams, resident values it read may be evicted, and the
     * modules it launched may be unloaded. A sticky error that only shows
     * here (a kernel's illegal address) fails the device whatever the run
     * had failed with before. */
    cr = d->cu->stream_synchronize(s->s);
    if (cr != CU_SUCCESS) {
        struct ir_error e2 = {.node = -1};
        int rc2 = cu_fail(d, cr, "cuStreamSynchronize", -1, &e2);
        if (rc == KILN_OK || rc2 == KILN_EDEVICE) {
            rc = rc2;
            *err = e2;
        }
    } else {
        jit_devpool_release_tag(d->pool, s->tag);
    }
    for (uint32_t i = 0; i < g->count; i++)
        dev_drop(&R, i);
    for (uint32_t k = 0; k < R.nmods; k++)
        module_put(d, R.mods[k], R.mods_owned[k]);
    if (cr == CU_SUCCESS)
        stage_put(d, R.stage);
    else if (R.stage != NULL)
        stage_free(d->cu, R.stage); /* its events may never complete */
done:
    pthread_mutex_lock(&d->lock);
    d->st.runs++;
    d->st.failed_runs += rc != KILN_OK;
    pthread_mutex_unlock(&d->lock);
    if (rc != KILN_OK) {
        for (uint32_t i = 0; host != NULL && i < g->count; i++)
            if (host[i] != NULL)
                jit_mem_free(mem, host[i], node_bytes(&g->nodes[i]));
        free(host);
        host = NULL;
    }
    *out = host;
    free(R.dv);
    free(R.dk);
    free(R.rs);
    free(R.last);
    free(R.mods);
    free(R.mods_owned);
    return rc;
}

void jit_gpu_stats(struct jit_gpu *d, struct jit_gpu_stats *out)
{
    pthread_mutex_lock(&d->lock);
    *out = d->st;
    out->failed = d->failed;
    pthread_mutex_unlock(&d->lock);
    struct jit_devpool_stats ps;
    jit_devpool_stats(d->pool, &ps);
    out->pool_limit = ps.limit;
    out->pool_in_use = ps.in_use;
    out->pool_cached = ps.cached;
    out->pool_peak = ps.peak;
}
