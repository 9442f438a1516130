/* run.c: the JIT executor (see run.h).
 *
 * Locking: rt->lock guards both caches, every entry's refs, state, run
 * time and current code, and the counters. The cc tier (cc.h) and its
 * worker (promote.h) have locks of their own, taken after rt->lock when
 * both are held (releasing cc code under rt->lock), never before it.
 */
#include "run.h"
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "codegen.h"
#include "fuse.h"
#include "fuse_impl.h"
#include "interp.h"
#include "kiln_err.h"
#include "mem.h"
#include "pool.h"
#include "promote.h"
#include "ctable.h"

#define DEFAULT_KERNELS 4096
#define DEFAULT_PLANS   1024
#define GRAIN_ELEMENTS  16384 /* element work below which a kernel is not split */

/* A kernel's code: a libtcc module or a cc-built object. Refcounted by
 * the entry whose current code it is and by each run using it. */
struct kimpl {
    uint32_t refs;
    struct jit_module *mod;  /* libtcc, or NULL */
    struct jit_cc_kernel cc; /* cc tier, or lib NULL */
    jit_kernel_fn init, main, fini;
};

enum kstate {
    KS_TCC,    /* libtcc code; not queued */
    KS_QUEUED, /* with the promoter (which holds a reference to the entry) */
    KS_CC,     /* cc code */
    KS_FAILED, /* cc could not build it: stays on libtcc */
};

struct kentry {
    struct centry c; /* check: (op, dtype, rank) of each slot */
    struct kimpl *impl; /* current code */
    uint64_t run_ns;    /* wall time of its launches so far */
    enum kstate state;
};

struct pentry {
    struct centry c; /* check: the node count, then (op, dtype, rank) of each node and its output mark */
    struct jit_plan plan;
};

struct jit_runtime {
    struct jit_compiler *compiler;
    struct jit_pool *pool;
    pthread_mutex_t lock;
    struct ctable kernels, plans;
    uint64_t tick;
    struct jit_runtime_stats st;
    struct jit_symbol *syms;
    size_t nsyms;
    struct jit_cc *cc;           /* NULL: libtcc alone */
    struct jit_promote *promote; /* its worker */
    uint64_t cc_threshold_ns;
    struct jit_relay *relay;     /* relay groups: matmul, convolutions */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static uint32_t node_word(const struct ir_node *nd)
{
    return (uint32_t) nd->op | (uint32_t) nd->dtype << 16 | (uint32_t) nd->rank << 24;
}

/* ---- runtime ------------------------------------------------------------- */

static void cc_ready(void *ctx, void *tag, struct jit_cc_kernel *k, bool cancelled);

int jit_runtime_new(const struct jit_runtime_opts *o, struct jit_runtime **out)
{
    *out = NULL;
    struct jit_runtime *rt = calloc(1, sizeof *rt);
    if (rt == NULL)
        return KILN_ENOMEM;
    rt->compiler = o->compiler;
    rt->cc = o->cc;
    rt->cc_threshold_ns = o->cc_threshold_ns;
    size_t nm, nc;
    const struct jit_symbol *m = jit_tcc_math_symbols(&nm), *cs = jit_codegen_symbols(&nc);
    bool ok = ctable_init(&rt->kernels, o->max_kernels ? o->max_kernels : DEFAULT_KERNELS);
    ok &= ctable_init(&rt->plans, o->max_plans ? o->max_plans : DEFAULT_PLANS);
    rt->syms = calloc(nm + nc, sizeof(*rt->syms));
    if (!ok || rt->syms == NULL) {
        jit_runtime_free(rt);
        return KILN_ENOMEM;
    }
    memcpy(rt->syms, m, nm * sizeof(*m));
    memcpy(rt->syms + nm, cs, nc * sizeof(*cs));
    rt->nsyms = nm + nc;
    pthread_mutex_init(&rt->lock, NULL);
    int rc = jit_relay_new(o->threads + 1, &rt->relay); /* the helpers and the caller */
    if (rc != KILN_OK) {
        pthread_mutex_destroy(&rt->lock);
        jit_runtime_free(rt);
        return rc;
    }
    rc = jit_pool_new(o->threads, &rt->pool);
    if (rc != KILN_OK) {
        pthread_mutex_destroy(&rt->lock);
        rt->pool = NULL;
        jit_runtime_free(rt);
        return rc;
    }
    if (rt->cc != NULL && (rc = jit_promote_new(rt->cc, cc_ready, rt, &rt->promote)) != KILN_OK) {
        jit_runtime_free(rt);
        return rc;
    }
    *out = rt;
    return KILN_OK;
}

static void impl_free(struct jit_runtime *rt, struct kimpl *im)
{
    jit_module_free(im->mod);
    jit_cc_kernel_release(rt->cc, &im->cc);
    free(im);
}

/* Drops one reference to im (rt->lock held); returns im when that was the
 * last, for the caller to impl_free (outside the lock if it can). */
static struct kimpl *impl_unref(struct kimpl *im)
{
    return im != NULL && --im->refs == 0 ? im : NULL;
}

static void kentry_free(struct jit_runtime *rt, struct kentry *e)
{
    struct kimpl *im = impl_unref(e->impl);
    if (im != NULL)
        impl_free(rt, im);
    free(e->c.check);
    free(e);
}

static void pentry_free(struct pentry *e)
{
    jit_plan_fini(&e->plan);
    free(e->c.check);
    free(e);
}

void jit_runtime_free(struct jit_runtime *rt)
{
    if (rt == NULL)
        return;
    /* First the worker: queued kernels are handed back (their entry
     * references dropped) before the entries go. */
    jit_promote_free(rt->promote);
    rt->promote = NULL;
    for (uint32_t b = 0; rt->kernels.b && b < rt->kernels.nb; b++)
        for (struct centry *e = rt->kernels.b[b], *n; e != NULL; e = n) {
            n = e->next;
            kentry_free(rt, (struct kentry *) e);
        }
    for (uint32_t b = 0; rt->plans.b && b < rt->plans.nb; b++)
        for (struct centry *e = rt->plans.b[b], *n; e != NULL; e = n) {
            n = e->next;
            pentry_free((struct pentry *) e);
        }
    if (rt->pool != NULL) {
        jit_pool_free(rt->pool);
        pthread_mutex_destroy(&rt->lock);
    }
    jit_relay_free(rt->relay);
    ctable_fini(&rt->kernels);
    ctable_fini(&rt->plans);
    free(rt->syms);
    free(rt);
}

void jit_runtime_stats(struct jit_runtime *rt, struct jit_runtime_stats *out)
{
    pthread_mutex_lock(&rt->lock);
    *out = rt->st;
    out->kernels_cached = rt->kernels.n;
    out->plans_cached = rt->plans.n;
    pthread_mutex_unlock(&rt->lock);
    struct jit_relay_stats rs;
    jit_relay_stats(rt->relay, &rs);
    out->relay_library = rs.library;
    out->relay_runs = rs.runs;
    out->relay_library_runs = rs.library_runs;
    if (rt->cc != NULL) {
        struct jit_cc_stats c;
        jit_cc_stats(rt->cc, &c);
        out->cc_enabled = true;
        out->cc_compiles = c.compiles;
        out->cc_batches = c.batches;
        out->cc_failures = c.failures;
        out->cc_compile_ns = c.compile_ns;
        out->cc_disk_hits = c.disk_hits;
        out->cc_disk_writes = c.disk_writes;
        out->cc_disk_discarded = c.disk_discarded;
    }
}

bool jit_runtime_cc_drain(struct jit_runtime *rt, uint64_t timeout_ns)
{
    return rt->promote == NULL || jit_promote_drain(rt->promote, timeout_ns);
}

/* ---- plan cache ------------------------------------------------------------ */

static uint32_t *plan_check(const struct ir_graph *g, const bool *is_output)
{
    uint32_t *c = malloc(((size_t) g->count + 1) * sizeof(uint32_t));
    if (c == NULL)
        return NULL;
    c[0] = g->count;
    for (uint32_t i = 0; i < g->count; i++)
        c[1 + i] = node_word(&g->nodes[i]) ^ (is_output[i] ? 0x8000u : 0);
    return c;
}

/* A referenced plan for g; *owned set when it is not in the cache (free
 * it after use). */
static struct pentry *plan_get(struct jit_runtime *rt, const struct ir_graph *g,
                               const bool *is_output, bool *owned, bool *hit,
                               struct ir_error *err)
{
    uint64_t key = jit_graph_signature(g, is_output);
    uint32_t *check = plan_check(g, is_output);
    *owned = false;
    *hit = false;
    if (check == NULL) {
        err->code = KILN_ENOMEM;
        snprintf(err->message, sizeof err->message, "out of memory planning the graph");
        return NULL;
    }
    uint32_t ncheck = g->count + 1;
    pthread_mutex_lock(&rt->lock);
    struct pentry *found =
        key != 0 ? (struct pentry *) ctable_hit(&rt->plans, &rt->tick, key, check, ncheck) : NULL;
    if (found != NULL) {
        rt->st.plan_hits++;
        pthread_mutex_unlock(&rt->lock);
        free(check);
        *hit = true;
        return found;
    }
    pthread_mutex_unlock(&rt->lock);
    struct pentry *e = calloc(1, sizeof *e);
    if (e == NULL) {
        free(check);
        err->code = KILN_ENOMEM;
        snprintf(err->message, sizeof err->message, "out of memory planning the graph");
        return NULL;
    }
    e->c.key = key;
    e->c.check = check;
    e->c.ncheck = ncheck;
    e->c.refs = 1;
    int rc = jit_fuse_plan(g, is_output, &e->plan, err);
    if (rc != KILN_OK) {
        pentry_free(e);
        return NULL;
    }
    pthread_mutex_lock(&rt->lock);
    rt->st.plans_made++;
    struct centry *old = NULL;
    if (key != 0 && rt->plans.n >= rt->plans.max)
        old = ctable_take_lru(&rt->plans);
    *owned = key == 0 || !ctable_add(&rt->plans, &rt->tick, &e->c);
    pthread_mutex_unlock(&rt->lock);
    if (old != NULL)
        pentry_free((struct pentry *) old);
    return e;
}

static void plan_put(struct jit_runtime *rt, struct pentry *e, bool owned);

const struct jit_plan *jit_runtime_plan_get(struct jit_runtime *rt, const struct ir_graph *g,
                                            const bool *is_output, struct jit_plan_ref *ref,
                                            bool *hit, struct ir_error *err)
{
    bool owned = false;
    struct pentry *e = plan_get(rt, g, is_output, &owned, hit, err);
    ref->entry = e;
    ref->owned = owned;
    return e != NULL ? &e->plan : NULL;
}

void jit_runtime_plan_put(struct jit_runtime *rt, struct jit_plan_ref *ref)
{
    if (ref->entry != NULL)
        plan_put(rt, ref->entry, ref->owned);
    ref->entry = NULL;
}

static void plan_put(struct jit_runtime *rt, struct pentry *e, bool owned)
{
    if (owned) {
        pentry_free(e);
        return;
    }
    pthread_mutex_lock(&rt->lock);
    e->c.refs--;
    pthread_mutex_unlock(&rt->lock);
}

/* ---- kernel cache ------------------------------------------------------------ */

uint32_t *jit_kernel_check(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                           uint32_t *n)
{
    const struct jit_group *G = &p->groups[gi];
    *n = G->ninputs + G->nmembers + 1;
    uint32_t *c = malloc(*n * sizeof(uint32_t));
    if (c == NULL)
        return NULL;
    c[0] = G->kind;
    for (uint32_t s = 0; s < G->ninputs; s++)
        c[1 + s] = node_word(&g->nodes[p->refs[G->input0 + s]]);
    for (uint32_t s = 0; s < G->nmembers; s++)
        c[1 + G->ninputs + s] = node_word(&g->nodes[p->members[G->member0 + s]]) ^
                                (uint32_t) p->member_flags[G->member0 + s] << 12;
    return c;
}

static void group_error(struct ir_error *err, const struct ir_graph *g, const struct jit_plan *p,
                        uint32_t gi, int code, const char *what, const char *detail)
{
    const struct jit_group *G = &p->groups[gi];
    uint32_t node = G->nsinks ? p->refs[G->sink0] : p->members[G->member0];
    err->code = code;
    err->node = node;
    snprintf(err->field, sizeof err->field, "nodes[%u]", node);
    snprintf(err->message, sizeof err->message, "%s kernel %u (ending at %s): %.160s", what, gi,
             ir_op_name(g->nodes[node].op), detail);
}

/* A new kernel's code: cc code already built (an object loaded now or
 * the disk cache) when the cc tier has it, else a libtcc compile. */
static int kernel_make(struct jit_runtime *rt, const char *src, struct kimpl *im, bool *is_cc,
                       char *diag, size_t dl)
{
    *is_cc = false;
    if (rt->cc != NULL) {
        struct jit_cc_key key;
        jit_cc_key(rt->cc, src, &key);
        if (jit_cc_lookup(rt->cc, &key, &im->cc) == KILN_OK) {
            im->init = im->cc.init;
            im->main = im->cc.main;
            im->fini = im->cc.fini;
            *is_cc = true;
            return KILN_OK;
        }
    }
    struct jit_tcc_opts to = {.compiler = rt->compiler};
    int rc = jit_tcc_compile(&to, src, rt->syms, rt->nsyms, &im->mod, diag, dl);
    if (rc == KILN_OK) {
        im->main = jit_module_kernel(im->mod, "k_main");
        im->init = jit_module_kernel(im->mod, "k_init");
        im->fini = jit_module_kernel(im->mod, "k_fini");
        if (im->main == NULL)
            rc = KILN_EINTERNAL;
    }
    return rc;
}

/* The entry of group gi with a reference, and in *impl its current code
 * with a reference of the run's own (the run uses that code throughout,
 * whatever is swapped in meanwhile). *owned: the entry is not in the
 * cache (free it after use). */
static struct kentry *kernel_get(struct jit_runtime *rt, const struct ir_graph *g,
                                 const struct jit_plan *p, uint32_t gi, bool *owned,
                                 struct kimpl **impl, const struct jit_run_budget *budget,
                                 struct jit_run_info *info, struct ir_error *err)
{
    uint64_t key = jit_kernel_key(g, p, gi);
    uint32_t ncheck;
    uint32_t *check = jit_kernel_check(g, p, gi, &ncheck);
    *owned = false;
    *impl = NULL;
    if (check == NULL) {
        group_error(err, g, p, gi, KILN_ENOMEM, "no memory for", "");
        return NULL;
    }
    pthread_mutex_lock(&rt->lock);
    struct kentry *found =
        (struct kentry *) ctable_hit(&rt->kernels, &rt->tick, key, check, ncheck);
    if (found != NULL) {
        *impl = found->impl;
        found->impl->refs++;
        rt->st.kernel_hits++;
        pthread_mutex_unlock(&rt->lock);
        free(check);
        return found;
    }
    pthread_mutex_unlock(&rt->lock);

    /* A miss costs a compile: only within the caller's budget. */
    if (budget != NULL && info != NULL &&
        (info->kernels_compiled >= budget->kernels || info->compile_ns >= budget->compile_ns)) {
        free(check);
        group_error(err, g, p, gi, KILN_EQUOTA,
                    info->kernels_compiled >= budget->kernels ? "no kernel budget left to compile"
                                                               : "no compile time left to compile",
                    "");
        return NULL;
    }

    uint64_t t0 = now_ns();
    struct jit_buf src;
    jit_buf_init(&src);
    int rc = jit_codegen_group(g, p, gi, &src);
    if (rc != KILN_OK) {
        jit_buf_fini(&src);
        free(check);
        group_error(err, g, p, gi, rc, "cannot generate", "");
        return NULL;
    }
    struct kentry *e = calloc(1, sizeof *e);
    struct kimpl *im = calloc(1, sizeof *im);
    char diag[512] = "";
    bool is_cc = false;
    if (e == NULL || im == NULL)
        rc = KILN_ENOMEM;
    else
        rc = kernel_make(rt, src.data, im, &is_cc, diag, sizeof diag);
    jit_buf_fini(&src);
    if (rc != KILN_OK) {
        if (im != NULL)
            impl_free(rt, im);
        free(e);
        free(check);
        group_error(err, g, p, gi, rc, "cannot compile", diag);
        return NULL;
    }
    uint64_t dt = now_ns() - t0;
    e->c.key = key;
    e->c.check = check;
    e->c.ncheck = ncheck;
    e->c.refs = 1;
    e->impl = im;
    e->state = is_cc ? KS_CC : KS_TCC;
    im->refs = 2; /* the entry's and this run's */
    *impl = im;
    if (info) {
        info->kernels_compiled++;
        info->compile_ns += dt;
    }
    pthread_mutex_lock(&rt->lock);
    rt->st.kernels_compiled++;
    rt->st.compile_ns += dt;
    rt->st.cc_loaded += is_cc;
    if (rt->kernels.n >= rt->kernels.max) {
        struct kentry *old = (struct kentry *) ctable_take_lru(&rt->kernels);
        if (old != NULL) {
            if (old->state == KS_CC)
                rt->st.cc_kernels--;
            kentry_free(rt, old);
        }
    }
    if (ctable_add(&rt->kernels, &rt->tick, &e->c))
        rt->st.cc_kernels += is_cc;
    else
        *owned = true;
    pthread_mutex_unlock(&rt->lock);
    return e;
}

/* The end of a run's use of entry e and its code im, which ran for ran_ns.
 * Queues e for the cc tier when its run time passes the threshold. */
static void kernel_put(struct jit_runtime *rt, struct kentry *e, struct kimpl *im, bool owned,
                       uint64_t ran_ns, const struct ir_graph *g, const struct jit_plan *p,
                       uint32_t gi)
{
    pthread_mutex_lock(&rt->lock);
    struct kimpl *dead = impl_unref(im);
    bool promote = false;
    if (!owned) {
        e->c.refs--;
        e->run_ns += ran_ns;
        if (rt->promote != NULL && e->state == KS_TCC && e->run_ns >= rt->cc_threshold_ns) {
            e->state = KS_QUEUED;
            e->c.refs++; /* the promoter's, until cc_ready */
            rt->st.kernels_promoted++;
            promote = true;
        }
    }
    pthread_mutex_unlock(&rt->lock);
    if (dead != NULL)
        impl_free(rt, dead);
    if (owned)
        kentry_free(rt, e);
    if (!promote)
        return;
    /* The source again (codegen is cheap next to keeping every kernel's
     * text): the promoter takes the buffer. */
    struct jit_buf src;
    jit_buf_init(&src);
    if (jit_codegen_group(g, p, gi, &src) == KILN_OK && !src.bad) {
        if (jit_promote_submit(rt->promote, e, src.data)) /* it took src.data, also on failure */
            return;
    } else {
        jit_buf_fini(&src);
    }
    pthread_mutex_lock(&rt->lock);
    e->state = KS_FAILED;
    e->c.refs--;
    pthread_mutex_unlock(&rt->lock);
}

/* The promoter's answer for entry `tag`: swap its code (between runs: a
 * run keeps the code it started with). */
static void cc_ready(void *ctx, void *tag, struct jit_cc_kernel *k, bool cancelled)
{
    struct jit_runtime *rt = ctx;
    struct kentry *e = tag;
    struct kimpl *im = NULL, *dead = NULL;
    if (k->lib != NULL && (im = calloc(1, sizeof *im)) == NULL)
        jit_cc_kernel_release(rt->cc, k);
    if (im != NULL) {
        im->cc = *k;
        im->init = k->init;
        im->main = k->main;
        im->fini = k->fini;
        im->refs = 1;
    }
    pthread_mutex_lock(&rt->lock);
    if (im != NULL) {
        dead = impl_unref(e->impl);
        e->impl = im;
        e->state = KS_CC;
        rt->st.cc_kernels++;
        rt->st.cc_swapped++;
    } else {
        e->state = cancelled ? KS_TCC : KS_FAILED;
    }
    e->c.refs--;
    pthread_mutex_unlock(&rt->lock);
    if (dead != NULL)
        impl_free(rt, dead);
}

/* ---- running ------------------------------------------------------------------ */

struct launch {
    jit_kernel_fn fn;
    void **bufs;
    const int64_t *params;
};

static void launch_chunk(void *arg, int64_t b, int64_t e)
{
    const struct launch *l = arg;
    l->fn(l->bufs, l->params, b, e);
}

struct run {
    struct jit_runtime *rt;
    const struct ir_graph *g;
    const struct jit_plan *p;
    const bool *is_output;
    void **buf;    /* per node: its data, for inputs and materialised nodes */
    uint8_t *own;  /* per node: buf was allocated here */
    uint32_t *last; /* per node: last group reading it */
    size_t held, max;
    struct jit_mem *mem;
    const struct jit_run_budget *budget;
    struct ir_error *err;
};

static size_t node_bytes(const struct ir_node *nd)
{
    return (size_t) nd->numel * ir_dtype_size((enum ir_dtype) nd->dtype);
}

void *jit_run_charge(struct jit_mem *mem, size_t *held, size_t max, const struct ir_graph *g,
                     uint32_t node, size_t bytes, struct ir_error *err)
{
    if (bytes > max || *held > max - bytes) {
        err->code = KILN_ENOMEM;
        err->node = node;
        snprintf(err->field, sizeof err->field, "nodes[%u]", node);
        snprintf(err->message, sizeof err->message,
                 "%s: its %zu bytes exceed the step's memory quota (%zu bytes held of %zu)",
                 ir_op_name(g->nodes[node].op), bytes, *held, max);
        return NULL;
    }
    void *m = jit_mem_alloc(mem, bytes);
    if (m == NULL) {
        err->code = KILN_ENOMEM;
        err->node = node;
        snprintf(err->field, sizeof err->field, "nodes[%u]", node);
        snprintf(err->message, sizeof err->message, "%s: out of memory (%zu bytes)",
                 ir_op_name(g->nodes[node].op), bytes);
        return NULL;
    }
    *held += bytes;
    return m;
}

void jit_copy_value(void *dst, const void *src, const struct ir_node *nd)
{
    size_t bytes = node_bytes(nd);
    if (nd->dtype == IR_DTYPE_BOOL) /* canonical 0/1, as every copy */
        for (size_t k = 0; k < bytes; k++)
            ((uint8_t *) dst)[k] = ((const uint8_t *) src)[k] != 0;
    else if (bytes > 0)
        memcpy(dst, src, bytes);
}

static void *charge(struct run *R, uint32_t node, size_t bytes)
{
    return jit_run_charge(R->mem, &R->held, R->max, R->g, node, bytes, R->err);
}

static void uncharge(struct run *R, void *m, size_t bytes)
{
    jit_mem_free(R->mem, m, bytes);
    R->held -= bytes;
}

static int64_t grain_for(int64_t work_per_item)
{
    if (work_per_item < 1)
        work_per_item = 1;
    int64_t g = GRAIN_ELEMENTS / work_per_item;
    return g < 1 ? 1 : g;
}

/* A REDUCE group (codegen.c "reductions in the spec's order"). Many output
 * elements: k_main split over them, as ever. Few output elements of more
 * than one block each (a loss, a sum over all but a small dim): k_init
 * computes one partial per (block, output element) over the pool into
 * `partials` (8 bytes each; a thread writes its own run of them once per
 * block of 65536 elements, so sharing a cache line at a run's edge costs
 * nothing to speak of), then k_fini combines each element's partials in
 * block order and runs the epilogue. Both give the spec's bytes, so the
 * choice depends on nothing but speed; the worker count changes no bit. */
static int run_reduce(struct run *R, uint32_t gi, const struct kimpl *k, struct launch *l,
                      int64_t main_n, int64_t out_n)
{
    const struct jit_group *G = &R->p->groups[gi];
    struct jit_pool *pool = R->rt->pool;
    int64_t nred = main_n / out_n, cost = (int64_t) G->nmembers;
    int64_t nblk = (nred + IR_REDUCE_BLOCK - 1) / IR_REDUCE_BLOCK;
    int64_t workers = (int64_t) jit_pool_threads(pool) + 1;
    if (workers == 1 || nblk < 2 || out_n >= 4 * workers || k->init == NULL || k->fini == NULL) {
        l->fn = k->main;
        jit_pool_for(pool, out_n, grain_for(nred * cost), launch_chunk, l);
        return KILN_OK;
    }
    size_t bytes = (size_t) (nblk * out_n) * sizeof(double);
    void *partials = charge(R, (uint32_t) G->reduce, bytes);
    if (partials == NULL)
        return R->err->code;
    l->bufs[G->ninputs + G->nsinks] = partials;
    l->fn = k->init;
    jit_pool_for(pool, nblk * out_n, grain_for(IR_REDUCE_BLOCK * cost), launch_chunk, l);
    l->fn = k->fini;
    jit_pool_for(pool, out_n, grain_for(nblk * cost), launch_chunk, l);
    l->bufs[G->ninputs + G->nsinks] = NULL;
    uncharge(R, partials, bytes);
    return KILN_OK;
}

static int run_group(struct run *R, uint32_t gi, struct jit_run_info *info)
{
    const struct ir_graph *g = R->g;
    const struct jit_plan *p = R->p;
    const struct jit_group *G = &p->groups[gi];
    /* Sinks. */
    for (uint32_t k = 0; k < G->nsinks; k++) {
        uint32_t n = p->refs[G->sink0 + k];
        if ((R->buf[n] = charge(R, n, node_bytes(&g->nodes[n]))) == NULL)
            return R->err->code;
        R->own[n] = 1;
    }
    if (G->kind == JIT_GROUP_RELAY) {
        uint32_t n = (uint32_t) G->space; /* the relay node, the group's one member */
        const struct ir_node *nd = &g->nodes[n];
        if (info)
            info->launched++;
        return jit_relay_run(R->rt->relay, R->rt->pool, g, n, R->buf[nd->in[0]],
                             R->buf[nd->in[1]], R->buf[n], R->err);
    }
    const struct ir_node *space = &g->nodes[G->space];
    int64_t main_n = space->numel;
    int64_t out_n = G->reduce >= 0 ? g->nodes[G->reduce].numel : 0;
    bool work = G->kind == JIT_GROUP_ELEMENTWISE ? main_n > 0 : out_n > 0;
    if (!work)
        return KILN_OK;
    bool owned;
    struct kimpl *k;
    struct kentry *ke = kernel_get(R->rt, g, p, gi, &owned, &k, R->budget, info, R->err);
    if (ke == NULL)
        return R->err->code;
    uint64_t t0 = 0, ran = 0;
    size_t np = jit_kernel_nparams(g, p, gi);
    bool scratch = jit_kernel_scratch(g, p, gi);
    /* One slot past the sinks: the scratch, or a REDUCE's partials. */
    uint32_t nb = G->ninputs + G->nsinks + 1;
    int64_t *params = malloc((np ? np : 1) * sizeof(int64_t));
    void **bufs = malloc((nb ? nb : 1) * sizeof(void *));
    void *sc = NULL;
    size_t scbytes = scratch ? (size_t) out_n * sizeof(double) : 0;
    int rc = KILN_OK;
    if (params == NULL || bufs == NULL) {
        group_error(R->err, g, p, gi, KILN_ENOMEM, "no memory to run", "");
        rc = KILN_ENOMEM;
    } else if (scratch && (sc = charge(R, (uint32_t) G->reduce, scbytes)) == NULL) {
        rc = R->err->code;
    }
    if (rc == KILN_OK) {
        jit_kernel_params(g, p, gi, params);
        for (uint32_t s = 0; s < G->ninputs; s++)
            bufs[s] = R->buf[p->refs[G->input0 + s]];
        for (uint32_t s = 0; s < G->nsinks; s++)
            bufs[G->ninputs + s] = R->buf[p->refs[G->sink0 + s]];
        bufs[G->ninputs + G->nsinks] = sc;
        struct launch l = {.bufs = bufs, .params = params};
        struct jit_pool *pool = R->rt->pool;
        if (info) {
            info->launched++;
            info->cc_groups += k->cc.lib != NULL;
        }
        t0 = now_ns();
        switch (G->kind) {
        case JIT_GROUP_ELEMENTWISE:
            l.fn = k->main;
            jit_pool_for(pool, main_n, grain_for(G->nmembers), launch_chunk, &l);
            break;
        case JIT_GROUP_REDUCE:
            rc = run_reduce(R, gi, k, &l, main_n, out_n);
            break;
        default:
            l.fn = k->init;
            jit_pool_for(pool, out_n, GRAIN_ELEMENTS, launch_chunk, &l);
            if (main_n > 0)
                k->main(bufs, params, 0, main_n);
            if (k->fini != NULL) {
                l.fn = k->fini;
                jit_pool_for(pool, out_n, GRAIN_ELEMENTS, launch_chunk, &l);
            }
            break;
        }
    }
    if (t0 != 0)
        ran = now_ns() - t0;
    if (sc != NULL)
        uncharge(R, sc, scbytes);
    free(params);
    free(bufs);
    kernel_put(R->rt, ke, k, owned, ran, g, p, gi);
    return rc;
}

/* Frees the group inputs whose last reader was group gi. */
static void release_inputs(struct run *R, uint32_t gi)
{
    const struct jit_group *G = &R->p->groups[gi];
    for (uint32_t s = 0; s < G->ninputs; s++) {
        uint32_t n = R->p->refs[G->input0 + s];
        if (R->own[n] && R->last[n] == gi && !R->is_output[n]) {
            uncharge(R, R->buf[n], node_bytes(&R->g->nodes[n]));
            R->buf[n] = NULL;
            R->own[n] = 0;
        }
    }
}

int jit_run(struct jit_runtime *rt, const struct ir_graph *g, const bool *is_output,
            const void *const *externs, struct jit_mem *mem, size_t max_bytes, void ***out,
            struct jit_run_info *info, struct ir_error *err)
{
    return jit_run_budgeted(rt, g, is_output, externs, mem, max_bytes, NULL, out, info, err);
}

int jit_run_budgeted(struct jit_runtime *rt, const struct ir_graph *g, const bool *is_output,
                     const void *const *externs, struct jit_mem *mem, size_t max_bytes,
                     const struct jit_run_budget *budget, void ***out, struct jit_run_info *info,
                     struct ir_error *err)
{
    struct jit_run_info own_info;
    if (budget != NULL && info == NULL)
        info = &own_info; /* the budget is counted in it */
    *out = NULL;
    memset(err, 0, sizeof *err);
    err->node = -1;
    if (info)
        memset(info, 0, sizeof *info);
    struct run R = {.rt = rt, .g = g, .is_output = is_output, .max = max_bytes, .mem = mem,
                    .budget = budget, .err = err};
    R.buf = calloc(g->count ? g->count : 1, sizeof(void *));
    R.own = calloc(g->count ? g->count : 1, 1);
    R.last = calloc(g->count ? g->count : 1, sizeof(uint32_t));
    if (R.buf == NULL || R.own == NULL || R.last == NULL) {
        free(R.buf);
        free(R.own);
        free(R.last);
        err->code = KILN_ENOMEM;
        snprintf(err->message, sizeof err->message, "out of memory starting the run");
        return KILN_ENOMEM;
    }
    bool owned = false, hit = false;
    struct pentry *pe = plan_get(rt, g, is_output, &owned, &hit, err);
    int rc = pe ? KILN_OK : err->code;
    if (pe != NULL) {
        const struct jit_plan *p = R.p = &pe->plan;
        if (info) {
            info->groups = p->ngroups;
            info->plan_hit = hit;
        }
        for (uint32_t i = 0; i < g->count; i++) {
            const struct ir_node *nd = &g->nodes[i];
            if (nd->op == IR_OP_ARRAY)
                R.buf[i] = (void *) nd->attr.array.data;
            else if (nd->op == IR_OP_EXTERN)
                R.buf[i] = externs ? (void *) externs[nd->attr.ext.slot] : NULL;
        }
        for (uint32_t gi = 0; gi < p->ngroups; gi++) {
            const struct jit_group *G = &p->groups[gi];
            for (uint32_t s = 0; s < G->ninputs; s++)
                R.last[p->refs[G->input0 + s]] = gi;
        }
        for (uint32_t gi = 0; gi < p->ngroups && rc == KILN_OK; gi++) {
            rc = run_group(&R, gi, info);
            release_inputs(&R, gi);
        }
        pthread_mutex_lock(&rt->lock);
        rt->st.kernels_run += p->ngroups;
        pthread_mutex_unlock(&rt->lock);
        /* Outputs that no kernel wrote (inputs themselves) are copied. */
        for (uint32_t i = 0; i < g->count && rc == KILN_OK; i++) {
            if (!is_output[i] || R.own[i])
                continue;
            size_t bytes = node_bytes(&g->nodes[i]);
            void *m = charge(&R, i, bytes);
            if (m == NULL) {
                rc = err->code;
                break;
            }
            jit_copy_value(m, R.buf[i], &g->nodes[i]);
            R.buf[i] = m;
            R.own[i] = 1;
        }
        plan_put(rt, pe, owned);
    }
    if (rc != KILN_OK) {
        for (uint32_t i = 0; i < g->count; i++)
            if (R.own[i])
                jit_mem_free(mem, R.buf[i], node_bytes(&g->nodes[i]));
        free(R.buf);
    } else {
        for (uint32_t i = 0; i < g->count; i++)
            if (!is_output[i]) {
                if (R.own[i])
                    jit_mem_free(mem, R.buf[i], node_bytes(&g->nodes[i]));
                R.buf[i] = NULL;
            }
        *out = R.buf;
    }
    free(R.own);
    free(R.last);
    return rc;
}

void jit_run_free(const struct ir_graph *g, void **out)
{
    if (out == NULL)
        return;
    for (uint32_t i = 0; i < g->count; i++)
        free(out[i]);
    free(out);
}
