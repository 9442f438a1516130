/* run.c: the JIT executor (see run.h). */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "codegen.h"
#include "fuse.h"
#include "fuse_impl.h"
#include "kiln_err.h"
#include "mem.h"
#include "pool.h"

#define DEFAULT_KERNELS 4096
#define DEFAULT_PLANS   1024
#define GRAIN_ELEMENTS  16384 /* element work below which a kernel is not split */

struct kentry {
    struct kentry *next; /* bucket chain */
    uint64_t key, tick;
    uint32_t refs;
    uint32_t ncheck;
    uint32_t *check; /* (op, dtype, rank) of each slot it was made for */
    struct jit_module *mod;
    jit_kernel_fn init, main, fini;
};

struct pentry {
    struct pentry *next;
    uint64_t key, tick;
    uint32_t refs;
    uint32_t *check; /* (op, dtype, rank) of each node, plus output marks */
    struct jit_plan plan;
};

struct jit_runtime {
    struct jit_compiler *compiler;
    struct jit_pool *pool;
    pthread_mutex_t lock;
    uint32_t max_kernels, max_plans;
    uint32_t nbuckets; /* both tables */
    struct kentry **kb;
    struct pentry **pb;
    uint32_t nk, np;
    uint64_t tick;
    struct jit_runtime_stats st;
    struct jit_symbol *syms;
    size_t nsyms;
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

int jit_runtime_new(const struct jit_runtime_opts *o, struct jit_runtime **out)
{
    *out = NULL;
    struct jit_runtime *rt = calloc(1, sizeof *rt);
    if (rt == NULL)
        return KILN_ENOMEM;
    rt->compiler = o->compiler;
    rt->max_kernels = o->max_kernels ? o->max_kernels : DEFAULT_KERNELS;
    rt->max_plans = o->max_plans ? o->max_plans : DEFAULT_PLANS;
    rt->nbuckets = 1024;
    size_t nm, nc;
    const struct jit_symbol *m = jit_tcc_math_symbols(&nm), *cs = jit_codegen_symbols(&nc);
    rt->kb = calloc(rt->nbuckets, sizeof(*rt->kb));
    rt->pb = calloc(rt->nbuckets, sizeof(*rt->pb));
    rt->syms = calloc(nm + nc, sizeof(*rt->syms));
    if (rt->kb == NULL || rt->pb == NULL || rt->syms == NULL) {
        jit_runtime_free(rt);
        return KILN_ENOMEM;
    }
    memcpy(rt->syms, m, nm * sizeof(*m));
    memcpy(rt->syms + nm, cs, nc * sizeof(*cs));
    rt->nsyms = nm + nc;
    pthread_mutex_init(&rt->lock, NULL);
    int rc = jit_pool_new(o->threads, &rt->pool);
    if (rc != KILN_OK) {
        pthread_mutex_destroy(&rt->lock);
        rt->pool = NULL;
        jit_runtime_free(rt);
        return rc;
    }
    *out = rt;
    return KILN_OK;
}

static void kentry_free(struct kentry *e)
{
    jit_module_free(e->mod);
    free(e->check);
    free(e);
}

static void pentry_free(struct pentry *e)
{
    jit_plan_fini(&e->plan);
    free(e->check);
    free(e);
}

void jit_runtime_free(struct jit_runtime *rt)
{
    if (rt == NULL)
        return;
    for (uint32_t b = 0; rt->kb && b < rt->nbuckets; b++)
        for (struct kentry *e = rt->kb[b], *n; e != NULL; e = n) {
            n = e->next;
            kentry_free(e);
        }
    for (uint32_t b = 0; rt->pb && b < rt->nbuckets; b++)
        for (struct pentry *e = rt->pb[b], *n; e != NULL; e = n) {
            n = e->next;
            pentry_free(e);
        }
    if (rt->pool != NULL) {
        jit_pool_free(rt->pool);
        pthread_mutex_destroy(&rt->lock);
    }
    free(rt->kb);
    free(rt->pb);
    free(rt->syms);
    free(rt);
}

void jit_runtime_stats(struct jit_runtime *rt, struct jit_runtime_stats *out)
{
    pthread_mutex_lock(&rt->lock);
    *out = rt->st;
    out->kernels_cached = rt->nk;
    out->plans_cached = rt->np;
    pthread_mutex_unlock(&rt->lock);
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

/* Evicts the least recently used idle entry of the plan table. */
static void plan_evict(struct jit_runtime *rt)
{
    struct pentry **best = NULL;
    for (uint32_t b = 0; b < rt->nbuckets; b++)
        for (struct pentry **l = &rt->pb[b]; *l != NULL; l = &(*l)->next)
            if ((*l)->refs == 0 && (best == NULL || (*l)->tick < (*best)->tick))
                best = l;
    if (best != NULL) {
        struct pentry *e = *best;
        *best = e->next;
        pentry_free(e);
        rt->np--;
    }
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
    uint32_t b = (uint32_t) (key % rt->nbuckets);
    pthread_mutex_lock(&rt->lock);
    for (struct pentry *e = rt->pb[b]; key != 0 && e != NULL; e = e->next)
        if (e->key == key && memcmp(e->check, check, ((size_t) g->count + 1) * 4) == 0) {
            e->refs++;
            e->tick = ++rt->tick;
            rt->st.plan_hits++;
            pthread_mutex_unlock(&rt->lock);
            free(check);
            *hit = true;
            return e;
        }
    pthread_mutex_unlock(&rt->lock);
    struct pentry *e = calloc(1, sizeof *e);
    if (e == NULL) {
        free(check);
        err->code = KILN_ENOMEM;
        snprintf(err->message, sizeof err->message, "out of memory planning the graph");
        return NULL;
    }
    e->key = key;
    e->check = check;
    e->refs = 1;
    int rc = jit_fuse_plan(g, is_output, &e->plan, err);
    if (rc != KILN_OK) {
        pentry_free(e);
        return NULL;
    }
    pthread_mutex_lock(&rt->lock);
    rt->st.plans_made++;
    if (key != 0) {
        if (rt->np >= rt->max_plans)
            plan_evict(rt);
        if (rt->np < rt->max_plans) {
            e->tick = ++rt->tick;
            e->next = rt->pb[b];
            rt->pb[b] = e;
            rt->np++;
            pthread_mutex_unlock(&rt->lock);
            return e;
        }
    }
    pthread_mutex_unlock(&rt->lock);
    *owned = true;
    return e;
}

static void plan_put(struct jit_runtime *rt, struct pentry *e, bool owned)
{
    if (owned) {
        pentry_free(e);
        return;
    }
    pthread_mutex_lock(&rt->lock);
    e->refs--;
    pthread_mutex_unlock(&rt->lock);
}

/* ---- kernel cache ------------------------------------------------------------ */

static uint32_t *kernel_check(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
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

static void kernel_evict(struct jit_runtime *rt)
{
    struct kentry **best = NULL;
    for (uint32_t b = 0; b < rt->nbuckets; b++)
        for (struct kentry **l = &rt->kb[b]; *l != NULL; l = &(*l)->next)
            if ((*l)->refs == 0 && (best == NULL || (*l)->tick < (*best)->tick))
                best = l;
    if (best != NULL) {
        struct kentry *e = *best;
        *best = e->next;
        kentry_free(e);
        rt->nk--;
    }
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

static struct kentry *kernel_get(struct jit_runtime *rt, const struct ir_graph *g,
                                 const struct jit_plan *p, uint32_t gi, bool *owned,
                                 struct jit_run_info *info, struct ir_error *err)
{
    uint64_t key = jit_kernel_key(g, p, gi);
    uint32_t ncheck;
    uint32_t *check = kernel_check(g, p, gi, &ncheck);
    *owned = false;
    if (check == NULL) {
        group_error(err, g, p, gi, KILN_ENOMEM, "no memory for", "");
        return NULL;
    }
    uint32_t b = (uint32_t) (key % rt->nbuckets);
    pthread_mutex_lock(&rt->lock);
    for (struct kentry *e = rt->kb[b]; e != NULL; e = e->next)
        if (e->key == key && e->ncheck == ncheck &&
            memcmp(e->check, check, ncheck * sizeof(uint32_t)) == 0) {
            e->refs++;
            e->tick = ++rt->tick;
            rt->st.kernel_hits++;
            pthread_mutex_unlock(&rt->lock);
            free(check);
            return e;
        }
    pthread_mutex_unlock(&rt->lock);

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
    char diag[512] = "";
    struct jit_tcc_opts to = {.compiler = rt->compiler};
    if (e == NULL)
        rc = KILN_ENOMEM;
    else
        rc = jit_tcc_compile(&to, src.data, rt->syms, rt->nsyms, &e->mod, diag, sizeof diag);
    jit_buf_fini(&src);
    if (rc == KILN_OK) {
        e->main = jit_module_kernel(e->mod, "k_main");
        e->init = jit_module_kernel(e->mod, "k_init");
        e->fini = jit_module_kernel(e->mod, "k_fini");
        if (e->main == NULL)
            rc = KILN_EINTERNAL;
    }
    if (rc != KILN_OK) {
        if (e != NULL)
            kentry_free(e);
        free(check);
        group_error(err, g, p, gi, rc, "cannot compile", diag);
        return NULL;
    }
    uint64_t dt = now_ns() - t0;
    e->key = key;
    e->check = check;
    e->ncheck = ncheck;
    e->refs = 1;
    if (info) {
        info->kernels_compiled++;
        info->compile_ns += dt;
    }
    pthread_mutex_lock(&rt->lock);
    rt->st.kernels_compiled++;
    rt->st.compile_ns += dt;
    if (rt->nk >= rt->max_kernels)
        kernel_evict(rt);
    if (rt->nk < rt->max_kernels) {
        e->tick = ++rt->tick;
        e->next = rt->kb[b];
        rt->kb[b] = e;
        rt->nk++;
    } else {
        *owned = true;
    }
    pthread_mutex_unlock(&rt->lock);
    return e;
}

static void kernel_put(struct jit_runtime *rt, struct kentry *e, bool owned)
{
    if (owned) {
        kentry_free(e);
        return;
    }
    pthread_mutex_lock(&rt->lock);
    e->refs--;
    pthread_mutex_unlock(&rt->lock);
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
    struct ir_error *err;
};

static size_t node_bytes(const struct ir_node *nd)
{
    return (size_t) nd->numel * ir_dtype_size((enum ir_dtype) nd->dtype);
}

static void *charge(struct run *R, uint32_t node, size_t bytes)
{
    if (bytes > R->max || R->held > R->max - bytes) {
        R->err->code = KILN_ENOMEM;
        R->err->node = node;
        snprintf(R->err->field, sizeof R->err->field, "nodes[%u]", node);
        snprintf(R->err->message, sizeof R->err->message,
                 "%s: its %zu bytes exceed the step's memory quota (%zu bytes held of %zu)",
                 ir_op_name(R->g->nodes[node].op), bytes, R->held, R->max);
        return NULL;
    }
    void *m = jit_mem_alloc(R->mem, bytes);
    if (m == NULL) {
        R->err->code = KILN_ENOMEM;
        R->err->node = node;
        snprintf(R->err->field, sizeof R->err->field, "nodes[%u]", node);
        snprintf(R->err->message, sizeof R->err->message, "%s: out of memory (%zu bytes)",
                 ir_op_name(R->g->nodes[node].op), bytes);
        return NULL;
    }
    R->held += bytes;
    return m;
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
    const struct ir_node *space = &g->nodes[G->space];
    int64_t main_n = space->numel;
    int64_t out_n = G->reduce >= 0 ? g->nodes[G->reduce].numel : 0;
    bool work = G->kind == JIT_GROUP_ELEMENTWISE ? main_n > 0 : out_n > 0;
    if (!work)
        return KILN_OK;
    bool owned;
    struct kentry *k = kernel_get(R->rt, g, p, gi, &owned, info, R->err);
    if (k == NULL)
        return R->err->code;
    size_t np = jit_kernel_nparams(g, p, gi);
    bool scratch = jit_kernel_scratch(g, p, gi);
    uint32_t nb = G->ninputs + G->nsinks + (scratch ? 1 : 0);
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
        if (scratch)
            bufs[G->ninputs + G->nsinks] = sc;
        struct launch l = {.bufs = bufs, .params = params};
        struct jit_pool *pool = R->rt->pool;
        switch (G->kind) {
        case JIT_GROUP_ELEMENTWISE:
            l.fn = k->main;
            jit_pool_for(pool, main_n, grain_for(G->nmembers), launch_chunk, &l);
            break;
        case JIT_GROUP_REDUCE:
            l.fn = k->main;
            jit_pool_for(pool, out_n, grain_for(main_n / out_n * (int64_t) G->nmembers),
                         launch_chunk, &l);
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
    if (sc != NULL)
        uncharge(R, sc, scbytes);
    free(params);
    free(bufs);
    kernel_put(R->rt, k, owned);
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
    *out = NULL;
    memset(err, 0, sizeof *err);
    err->node = -1;
    if (info)
        memset(info, 0, sizeof *info);
    struct run R = {.rt = rt, .g = g, .is_output = is_output, .max = max_bytes, .mem = mem,
                    .err = err};
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
            if (g->nodes[i].dtype == IR_DTYPE_BOOL) /* canonical 0/1, as every copy */
                for (size_t k = 0; k < bytes; k++)
                    ((uint8_t *) m)[k] = ((const uint8_t *) R.buf[i])[k] != 0;
            else if (bytes > 0)
                memcpy(m, R.buf[i], bytes);
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
