/* ingest.c: a decoded SUBMIT becomes a step (see step.h).
 *
 * The codec has already checked types and limits; here each node is
 * checked against its op: which fields it must and may carry, that its
 * inputs name earlier nodes or vars the session keeps, and then the IR
 * constructor checks dtypes, shapes and attributes. Errors are translated
 * to wire errors naming the node's position and field. Nothing touches
 * the session until the whole graph has been accepted.
 *
 * Transpose, slice, concat, pad and flip are wire ops but not IR ops:
 * kernels/lower.h turns each into REINDEX (and WHERE) nodes whose index
 * expressions it writes from the node's integers. All the graph nodes a
 * SUBMIT node becomes map back to it (step->from), and the node's var is
 * the last of them.
 *
 * Gradients (kernels/grad.h) are wire ops too. A `grad` node expands into
 * the backward graph of its loss, built by ir_grad where the node stands;
 * the other `grad` nodes of the SUBMIT with the same loss and seed whose
 * targets already exist share that pass (a training step's one backward
 * pass for all its parameters), each taking its own result node. A
 * `stop_grad` becomes a copy (a same-shape RESHAPE) flagged in `stop`,
 * which every later pass treats as a constant. Targets without a path to
 * the loss get zeros and a warning in the reply (step->warnings).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grad.h"
#include "idmap.h"
#include "interp.h"
#include "lower.h"
#include "step.h"

/* Which node fields each op requires and which it also accepts. */
struct op_fields {
    uint32_t need, may;
    int8_t nin_min, nin_max; /* -1: no bound beyond the codec's */
};

#define F_IN PROTO_NODE_IN
#define F_DT PROTO_NODE_DTYPE
#define F_SH PROTO_NODE_SHAPE

#define CONV_FIELDS \
    (PROTO_NODE_STRIDE | PROTO_NODE_PADDING | PROTO_NODE_DILATION | PROTO_NODE_GROUPS)

static bool op_fields(int op, struct op_fields *f)
{
    const uint32_t checks = F_DT | F_SH; /* optional on derived ops: checked */
    switch (op) {
    case IR_OP_ARRAY:
        *f = (struct op_fields){F_DT | F_SH | PROTO_NODE_DATA, 0, 0, 0};
        return true;
    case IR_OP_CONST:
        *f = (struct op_fields){F_DT | F_SH | PROTO_NODE_VALUE, 0, 0, 0};
        return true;
    case IR_OP_INDEX:
        *f = (struct op_fields){F_DT | F_SH | PROTO_NODE_DIM, 0, 0, 0};
        return true;
    case IR_OP_RANDOM:
        *f = (struct op_fields){F_DT | F_SH | PROTO_NODE_DIST | PROTO_NODE_SEED,
                                PROTO_NODE_OFFSET, 0, 0};
        return true;
    case IR_OP_RESHAPE:
        *f = (struct op_fields){F_IN | F_SH, F_DT, 1, 1};
        return true;
    case IR_OP_CAST:
        *f = (struct op_fields){F_IN | F_DT, F_SH, 1, 1};
        return true;
    case IR_OP_WHERE:
        *f = (struct op_fields){F_IN, checks, 3, 3};
        return true;
    case IR_OP_BROADCAST_TO:
        *f = (struct op_fields){F_IN | F_SH | PROTO_NODE_DIMS, F_DT, 1, 1};
        return true;
    case IR_OP_REDUCE:
        *f = (struct op_fields){F_IN | PROTO_NODE_REDUCE_OP | PROTO_NODE_DIMS,
                                PROTO_NODE_KEEPDIMS | checks, 1, 1};
        return true;
    case IR_OP_REINDEX:
        *f = (struct op_fields){F_IN | F_SH | PROTO_NODE_EXPRS,
                                PROTO_NODE_CONDS | PROTO_NODE_OVERFLOW | F_DT, 1, -1};
        return true;
    case IR_OP_REINDEX_REDUCE:
        *f = (struct op_fields){F_IN | F_SH | PROTO_NODE_EXPRS | PROTO_NODE_REDUCE_OP,
                                PROTO_NODE_CONDS | F_DT, 1, -1};
        return true;
    case IR_LOWER_TRANSPOSE:
    case IR_LOWER_FLIP:
        *f = (struct op_fields){F_IN | PROTO_NODE_DIMS, checks, 1, 1};
        return true;
    case IR_LOWER_SLICE:
        *f = (struct op_fields){
            F_IN, PROTO_NODE_STARTS | PROTO_NODE_STOPS | PROTO_NODE_STEPS | checks, 1, 1};
        return true;
    case IR_LOWER_CONCAT:
        *f = (struct op_fields){F_IN | PROTO_NODE_DIM, checks, 1, -1};
        return true;
    case IR_LOWER_PAD:
        *f = (struct op_fields){F_IN | PROTO_NODE_PADS, PROTO_NODE_VALUE | checks, 1, 1};
        return true;
    case IR_OP_MATMUL:
        *f = (struct op_fields){F_IN, PROTO_NODE_TRANS | checks, 2, 2};
        return true;
    case IR_OP_CONV2D:
        *f = (struct op_fields){F_IN, CONV_FIELDS | checks, 2, 2};
        return true;
    case IR_OP_CONV2D_BWD_DATA:
    case IR_OP_CONV2D_BWD_WEIGHT:
        *f = (struct op_fields){F_IN | F_SH, CONV_FIELDS | F_DT, 2, 2};
        return true;
    case IR_GRAD_GRAD:
        *f = (struct op_fields){F_IN, checks, 2, 3};
        return true;
    case IR_GRAD_STOP:
        *f = (struct op_fields){F_IN, checks, 1, 1};
        return true;
    default:
        break;
    }
    if (op >= IR_OP_NEG && op <= IR_OP_BITWISE_NOT && ir_op_name(op) != NULL) {
        *f = (struct op_fields){F_IN, checks, 1, 1};
        return true;
    }
    if (op >= IR_OP_ADD && op <= IR_OP_SHR && ir_op_name(op) != NULL) {
        *f = (struct op_fields){F_IN, checks, 2, 2};
        return true;
    }
    return false; /* includes EXTERN, which is the daemon's own */
}

/* One backward pass of this SUBMIT: the gradients of `loss` (seeded by
 * `seed`, -1: none) for the targets of every `grad` node that shares it,
 * each result taken (`used`) by one node. Graph indices throughout. */
struct grad_pass {
    int loss, seed;
    uint32_t n;
    int *targets, *grads;
    uint8_t *zero, *used;
};

/* Everything one ingest needs, so helpers take one pointer. */
struct ingest {
    struct sess *s;
    const struct proto_submit *sub;
    struct step *st;
    struct idmap pos;     /* id -> position + 1 of the node defining it */
    struct idmap local;   /* id -> graph index + 1, for nodes seen so far */
    struct idmap externs; /* session var id -> graph index + 1 of its EXTERN */
    struct sess_var **bind;
    uint32_t nbind, capbind;
    uint32_t i; /* the node being ingested */
    uint32_t nfrom, capfrom; /* entries of st->from filled, allocated */
    uint8_t *stop;           /* per graph node: a stop_grad copy */
    uint32_t capstop;
    struct grad_pass *passes;
    uint32_t npasses;
    struct proto_error *err;
    bool lower_relays; /* relay ops become meta-ops here (--relays off) */
};

/* The name of a wire op: IR, lowered or autodiff. */
static const char *op_name(uint32_t op)
{
    const char *name = ir_op_name((int) op);
    if (name == NULL)
        name = ir_lower_name((int) op);
    return name != NULL ? name : ir_grad_name((int) op);
}

#define AS_PTR(n) ((void *) (uintptr_t) ((n) + 1))
#define AS_IDX(p) ((int) ((uintptr_t) (p) - 1))

static int node_error(struct ingest *in, int code, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int node_error(struct ingest *in, int code, const char *sub, const char *fmt, ...)
{
    char field[PROTO_FIELD_MAX], msg[PROTO_MESSAGE_MAX];
    snprintf(field, sizeof(field), "body.nodes[%u]%s%s", in->i, sub[0] ? "." : "", sub);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    proto_error_set(in->err, code, field, "node %u: %s", in->i, msg);
    in->err->node = in->i;
    return -1;
}

/* The graph index for input id `id`, adding an EXTERN for a kept var. */
static int resolve_input(struct ir_graph *g, struct ingest *in, uint64_t id, int k)
{
    char sub[16];
    snprintf(sub, sizeof(sub), "in[%d]", k);
    void *p = idmap_get(&in->local, id);
    if (p != NULL)
        return AS_IDX(p);
    if (idmap_get(&in->pos, id) != NULL)
        return node_error(in, KILN_EVALUE, sub,
                          "input %" PRIu64 " is defined by a later node (or this one): "
                          "nodes must be in topological order, so a cycle is never valid",
                          id);
    if ((p = idmap_get(&in->externs, id)) != NULL)
        return AS_IDX(p);
    struct sess_var *v = sess_var_get(in->s, id);
    if (v == NULL)
        return node_error(in, KILN_ENOTFOUND, sub,
                          "input %" PRIu64 " is neither an earlier node nor a kept var", id);
    struct ir_error ie;
    int x = ir_add_extern(g, (enum ir_dtype) v->dtype, v->rank, v->shape, &ie);
    if (x < 0)
        return node_error(in, ie.code, sub, "%s", ie.message);
    if (in->nbind == in->capbind) {
        uint32_t cap = in->capbind ? in->capbind * 2 : 8;
        struct sess_var **grown = realloc(in->bind, cap * sizeof(*grown));
        if (grown == NULL)
            return node_error(in, KILN_ENOMEM, sub, "out of memory");
        in->bind = grown;
        in->capbind = cap;
    }
    if (idmap_put(&in->externs, id, AS_PTR(x)) != KILN_OK)
        return node_error(in, KILN_ENOMEM, sub, "out of memory");
    in->bind[in->nbind++] = v; /* referenced once the graph is accepted */
    return x;
}

static struct ir_scalar scalar_for(enum ir_dtype dt, const struct proto_number *v)
{
    struct ir_scalar s = {0};
    if (ir_dtype_info(dt) != NULL && ir_dtype_info(dt)->kind == IR_KIND_FLOAT)
        s.f = v->is_float ? v->f : (double) v->i;
    else
        s.i = v->i;
    return s;
}

/* An int dtype given a float value is a client mistake, not a rounding. */
static int check_number(struct ingest *in, enum ir_dtype dt, const struct proto_number *v,
                        const char *field)
{
    if (v->is_float && ir_dtype_info(dt) != NULL && ir_dtype_info(dt)->kind != IR_KIND_FLOAT)
        return node_error(in, KILN_ETYPE, field, "%s is a float, but the dtype is %s", field,
                          ir_dtype_name(dt));
    return 0;
}

static int dims_mask(struct ingest *in, const struct proto_node *n, uint16_t *mask)
{
    *mask = 0;
    for (uint32_t k = 0; k < n->ndims; k++) {
        if (*mask & (1u << n->dims[k]))
            return node_error(in, KILN_EVALUE, "dims", "dim %u is given twice", n->dims[k]);
        *mask |= (uint16_t) (1u << n->dims[k]);
    }
    return 0;
}

/* ---- gradients ---------------------------------------------------------- */

/* A stop flag for every graph node up to `count` (new ones 0). */
static int stop_reserve(struct ingest *in, uint32_t count)
{
    if (count <= in->capstop)
        return 0;
    uint32_t cap = in->capstop ? in->capstop : 64;
    while (cap < count)
        cap *= 2;
    uint8_t *grown = realloc(in->stop, cap);
    if (grown == NULL)
        return node_error(in, KILN_ENOMEM, "", "out of memory");
    memset(grown + in->capstop, 0, cap - in->capstop);
    in->stop = grown;
    in->capstop = cap;
    return 0;
}

/* The graph index `id` has now (an earlier node or a kept var already
 * read), or -1; adds nothing. */
static int existing(struct ingest *in, uint64_t id)
{
    void *p = idmap_get(&in->local, id);
    if (p == NULL)
        p = idmap_get(&in->externs, id);
    return p != NULL ? AS_IDX(p) : -1;
}

static void warn(struct ingest *in, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(struct ingest *in, const char *sub, const char *fmt, ...)
{
    struct step *st = in->st;
    if (st->nwarnings >= PROTO_WARNINGS_MAX)
        return; /* the reply says enough */
    if (st->warnings == NULL &&
        (st->warnings = calloc(PROTO_WARNINGS_MAX, sizeof(*st->warnings))) == NULL)
        return; /* a warning is not worth refusing a step for */
    struct proto_warning *w = &st->warnings[st->nwarnings++];
    w->node = in->i;
    snprintf(w->field, sizeof(w->field), "body.nodes[%u]%s%s", in->i, sub[0] ? "." : "", sub);
    int at = snprintf(w->message, sizeof(w->message), "node %u: ", in->i);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->message + at, sizeof(w->message) - (size_t) at, fmt, ap);
    va_end(ap);
}

/* Does node b share node a's backward pass (a is a valid grad node)? */
static bool shares_pass(const struct proto_node *a, const struct proto_node *b)
{
    return b->op == IR_GRAD_GRAD && b->nin == a->nin && b->in[0] == a->in[0] &&
           (a->nin < 3 || b->in[2] == a->in[2]);
}

static void pass_fini(struct grad_pass *p)
{
    free(p->targets);
    free(p->grads);
    free(p->zero);
    free(p->used);
}

/* A new backward pass for the current grad node: its own target first,
 * then those of the later grad nodes that share it and whose targets
 * exist already (one that does not exist yet cannot lie under the loss:
 * it gets its zeros from a pass of its own). */
static struct grad_pass *new_pass(struct ir_graph *g, struct ingest *in, int loss, int seed,
                                  int target)
{
    const struct proto_submit *sub = in->sub;
    const struct proto_node *me = &sub->nodes[in->i];
    if (in->npasses >= KILN_LIMIT_GRAD_PASSES) {
        node_error(in, KILN_ELIMIT, "",
                   "grad needs a backward pass beyond the grad_passes limit of %d in one SUBMIT "
                   "(grad nodes with one loss and seed share a pass)",
                   KILN_LIMIT_GRAD_PASSES);
        return NULL;
    }
    uint32_t n = 1;
    for (uint32_t j = in->i + 1; j < sub->nnodes; j++)
        n += shares_pass(me, &sub->nodes[j]) && existing(in, sub->nodes[j].in[1]) >= 0;
    struct grad_pass p = {.loss = loss, .seed = seed, .n = n};
    p.targets = malloc(n * sizeof(*p.targets));
    p.grads = malloc(n * sizeof(*p.grads));
    p.zero = calloc(n, 1);
    p.used = calloc(n, 1);
    struct grad_pass *grown = realloc(in->passes, (in->npasses + 1) * sizeof(*grown));
    if (grown != NULL)
        in->passes = grown;
    if (p.targets == NULL || p.grads == NULL || p.zero == NULL || p.used == NULL ||
        grown == NULL) {
        pass_fini(&p);
        node_error(in, KILN_ENOMEM, "", "out of memory");
        return NULL;
    }
    p.targets[0] = target;
    for (uint32_t j = in->i + 1, k = 1; j < sub->nnodes; j++) {
        int t;
        if (shares_pass(me, &sub->nodes[j]) && (t = existing(in, sub->nodes[j].in[1])) >= 0)
            p.targets[k++] = t;
    }
    if (stop_reserve(in, g->count) < 0) { /* may move in->stop: before taking it */
        pass_fini(&p);
        return NULL;
    }
    struct ir_error ie = {0};
    struct ir_grad_request r = {.loss = loss, .seed = seed, .ntargets = (int) n,
                                .targets = p.targets, .stop = in->stop};
    if (ir_grad(g, &r, p.grads, p.zero, &ie) < 0) {
        pass_fini(&p);
        node_error(in, ie.code ? ie.code : KILN_EINTERNAL, ie.field, "grad: %s", ie.message);
        return NULL;
    }
    in->passes[in->npasses] = p;
    return &in->passes[in->npasses++];
}

/* A grad node: its result from the pass it shares, or a new one. */
static int grad_node(struct ir_graph *g, struct ingest *in, const struct proto_node *n,
                     const int *x)
{
    int loss = x[0], target = x[1], seed = n->nin == 3 ? x[2] : -1;
    struct grad_pass *p = NULL;
    uint32_t k = 0;
    for (uint32_t q = 0; p == NULL && q < in->npasses; q++) {
        struct grad_pass *c = &in->passes[q];
        if (c->loss != loss || c->seed != seed)
            continue;
        for (k = 0; k < c->n; k++)
            if (!c->used[k] && c->targets[k] == target) {
                p = c;
                break;
            }
    }
    if (p == NULL) {
        if ((p = new_pass(g, in, loss, seed, target)) == NULL)
            return -1;
        k = 0;
    }
    p->used[k] = 1;
    if (p->zero[k]) {
        enum ir_dtype dt = (enum ir_dtype) g->nodes[target].dtype;
        if (ir_dtype_info(dt)->kind != IR_KIND_FLOAT)
            warn(in, "in[1]", "target %" PRIu64 " is %s: only float values carry gradient, so "
                 "its gradient is zeros", n->in[1], ir_dtype_name(dt));
        else
            warn(in, "in[1]", "the loss %" PRIu64 " does not depend on target %" PRIu64
                 " through float values (a var kept from an earlier step is a constant here): "
                 "its gradient is zeros", n->in[0], n->in[1]);
    }
    return p->grads[k];
}

/* One (h, w) pair of a convolution: absent gives `dflt` twice. */
static int conv_pair(struct ingest *in, const struct proto_node *n, uint32_t bit, const char *name,
                     const int64_t *v, uint32_t count, int32_t dflt, int32_t *out)
{
    if (!(n->has & bit)) {
        out[0] = out[1] = dflt;
        return 0;
    }
    if (count != 2)
        return node_error(in, KILN_EVALUE, name, "%s has %u entries: it takes two, (h, w)", name,
                          count);
    for (int d = 0; d < 2; d++) {
        if (v[d] > KILN_LIMIT_CONV_ATTR || v[d] < -1) {
            char f[32];
            snprintf(f, sizeof f, "%s[%d]", name, d);
            return node_error(in, v[d] > 0 ? KILN_ELIMIT : KILN_EVALUE, f,
                              "%s is %" PRId64 ", outside 0..%d", f, v[d], KILN_LIMIT_CONV_ATTR);
        }
        out[d] = (int32_t) v[d]; /* -1 passes on: the constructor names it */
    }
    return 0;
}

/* matmul, conv2d and its gradients; lowered to meta-ops when the daemon
 * runs without relays. */
static int relay_node(struct ir_graph *g, struct ingest *in, const struct proto_node *n,
                      const int *x)
{
    struct ir_error ie = {0};
    int r;
    if (n->op == IR_OP_MATMUL) {
        bool t[2] = {false, false};
        if (n->has & PROTO_NODE_TRANS) {
            if (n->ntrans != 2)
                return node_error(in, KILN_EVALUE, "trans",
                                  "trans has %u entries: it takes two, (a, b)", n->ntrans);
            for (int k = 0; k < 2; k++) {
                if (n->trans[k] != 0 && n->trans[k] != 1)
                    return node_error(in, KILN_EVALUE, k ? "trans[1]" : "trans[0]",
                                      "trans[%d] is %" PRId64 ": 0 or 1", k, n->trans[k]);
                t[k] = n->trans[k] == 1;
            }
        }
        r = ir_add_matmul(g, x[0], x[1], t[0], t[1], &ie);
    } else {
        struct ir_conv c;
        if (conv_pair(in, n, PROTO_NODE_STRIDE, "stride", n->stride, n->nstride, 1, c.stride) < 0 ||
            conv_pair(in, n, PROTO_NODE_PADDING, "padding", n->padding, n->npadding, 0, c.pad) < 0 ||
            conv_pair(in, n, PROTO_NODE_DILATION, "dilation", n->dilation, n->ndilation, 1,
                      c.dilation) < 0)
            return -1;
        if ((n->has & PROTO_NODE_GROUPS) && n->groups > KILN_LIMIT_CONV_ATTR)
            return node_error(in, KILN_ELIMIT, "groups", "groups is %u, above the conv_attr limit %d",
                              n->groups, KILN_LIMIT_CONV_ATTR);
        c.groups = n->has & PROTO_NODE_GROUPS ? (int32_t) n->groups : 1;
        r = ir_add_conv(g, (enum ir_op) n->op, x[0], x[1], (int) n->rank, n->shape, &c, &ie);
    }
    if (r >= 0 && in->lower_relays)
        r = ir_lower_relay(g, r, &ie);
    if (r < 0) {
        const char *name = op_name(n->op);
        bool named = strncmp(ie.message, name, strlen(name)) == 0; /* most name the op already */
        return node_error(in, ie.code ? ie.code : KILN_EINTERNAL, ie.field, "%s%s%s",
                          named ? "" : name, named ? "" : " ", ie.message);
    }
    return r;
}

/* Call the op's constructor; returns the graph index or -1 (err set). */
static int construct(struct ir_graph *g, struct ingest *in, const struct proto_node *n,
                     const int *x)
{
    struct ir_error ie = {0};
    int r = -1;
    enum ir_dtype dt = (enum ir_dtype) n->dtype;
    uint16_t mask;
    switch (n->op) {
    case IR_OP_ARRAY:
        r = ir_add_array(g, dt, (int) n->rank, n->shape, n->data, n->data_len, &ie);
        break;
    case IR_OP_CONST:
        if (!ir_dtype_valid(dt))
            return node_error(in, KILN_EVALUE, "dtype", "dtype %u is not a dtype", n->dtype);
        if (check_number(in, dt, &n->value, "value") < 0)
            return -1;
        r = ir_add_const(g, dt, (int) n->rank, n->shape, scalar_for(dt, &n->value), &ie);
        break;
    case IR_OP_INDEX:
        r = ir_add_index(g, dt, (int) n->rank, n->shape, (int) n->dim, &ie);
        break;
    case IR_OP_RANDOM:
        r = ir_add_random(g, dt, (int) n->rank, n->shape, (enum ir_random_dist) n->dist, n->seed,
                          n->offset, &ie);
        break;
    case IR_OP_RESHAPE:
        r = ir_add_reshape(g, x[0], (int) n->rank, n->shape, &ie);
        break;
    case IR_OP_CAST:
        r = ir_add_cast(g, x[0], dt, &ie);
        break;
    case IR_OP_WHERE:
        r = ir_add_where(g, x[0], x[1], x[2], &ie);
        break;
    case IR_OP_BROADCAST_TO:
        if (dims_mask(in, n, &mask) < 0)
            return -1;
        r = ir_add_broadcast(g, x[0], (int) n->rank, n->shape, mask, &ie);
        break;
    case IR_OP_REDUCE:
        if (dims_mask(in, n, &mask) < 0)
            return -1;
        r = ir_add_reduce(g, (enum ir_reduce_op) n->reduce_op, x[0], mask, n->keepdims, &ie);
        break;
    case IR_OP_REINDEX:
    case IR_OP_REINDEX_REDUCE: {
        struct ir_reindex_text t = {.nexprs = (int) n->nexprs, .nconds = (int) n->nconds,
                                    .nextras = (int) n->nin - 1, .extras = x + 1};
        const char *conds[KILN_LIMIT_CONDS];
        size_t lens[KILN_LIMIT_CONDS];
        for (uint32_t k = 0; k < n->nexprs; k++) {
            t.exprs[k] = n->exprs[k].ptr;
            t.expr_len[k] = n->exprs[k].len;
        }
        for (uint32_t k = 0; k < n->nconds; k++) {
            conds[k] = n->conds[k].ptr;
            lens[k] = n->conds[k].len;
        }
        t.conds = conds;
        t.cond_len = lens;
        if (n->op == IR_OP_REINDEX) {
            if (n->has & PROTO_NODE_OVERFLOW) {
                enum ir_dtype xdt = (enum ir_dtype) g->nodes[x[0]].dtype;
                if (check_number(in, xdt, &n->overflow, "overflow_value") < 0)
                    return -1;
                t.overflow = scalar_for(xdt, &n->overflow);
            }
            r = ir_add_reindex(g, x[0], (int) n->rank, n->shape, &t, &ie);
        } else {
            r = ir_add_reindex_reduce(g, (enum ir_reduce_op) n->reduce_op, x[0], (int) n->rank,
                                      n->shape, &t, &ie);
        }
        break;
    }
    case IR_LOWER_TRANSPOSE:
        r = ir_lower_transpose(g, x[0], (int) n->ndims, n->dims, &ie);
        break;
    case IR_LOWER_FLIP:
        r = ir_lower_flip(g, x[0], (int) n->ndims, n->dims, &ie);
        break;
    case IR_LOWER_SLICE: {
        struct ir_slice sl = {
            .nstarts = n->has & PROTO_NODE_STARTS ? (int) n->nstarts : -1,
            .nstops = n->has & PROTO_NODE_STOPS ? (int) n->nstops : -1,
            .nsteps = n->has & PROTO_NODE_STEPS ? (int) n->nsteps : -1,
            .starts = n->starts, .stops = n->stops, .steps = n->steps};
        r = ir_lower_slice(g, x[0], &sl, &ie);
        break;
    }
    case IR_LOWER_CONCAT:
        r = ir_lower_concat(g, (int) n->nin, x, (int) n->dim, &ie);
        break;
    case IR_OP_MATMUL:
    case IR_OP_CONV2D:
    case IR_OP_CONV2D_BWD_DATA:
    case IR_OP_CONV2D_BWD_WEIGHT:
        return relay_node(g, in, n, x);
    case IR_GRAD_GRAD:
        return grad_node(g, in, n, x); /* errors already named */
    case IR_GRAD_STOP: {
        const struct ir_node xn = g->nodes[x[0]];
        r = ir_add_reshape(g, x[0], xn.rank, xn.shape, &ie); /* a copy */
        if (r >= 0 && stop_reserve(in, g->count) < 0)
            return -1;
        if (r >= 0)
            in->stop[r] = 1;
        break;
    }
    case IR_LOWER_PAD: {
        enum ir_dtype xdt = (enum ir_dtype) g->nodes[x[0]].dtype;
        struct ir_scalar fill = {0};
        if (n->has & PROTO_NODE_VALUE) {
            if (check_number(in, xdt, &n->value, "value") < 0)
                return -1;
            fill = scalar_for(xdt, &n->value);
        }
        r = ir_lower_pad(g, x[0], (int) n->npads, n->pads, fill, &ie);
        break;
    }
    default:
        if (n->op >= IR_OP_ADD)
            r = ir_add_binary(g, (enum ir_op) n->op, x[0], x[1], &ie);
        else
            r = ir_add_unary(g, (enum ir_op) n->op, x[0], &ie);
        break;
    }
    if (r < 0)
        return node_error(in, ie.code ? ie.code : KILN_EINTERNAL, ie.field, "%s %s",
                          op_name(n->op), ie.message);
    return r;
}

/* Optional dtype and shape on derived ops must agree with inference. */
static int check_declared(struct ingest *in, const struct proto_node *n, const struct ir_node *got)
{
    bool source = n->op <= IR_OP_RANDOM;
    if (source)
        return 0;
    if ((n->has & F_DT) && n->op != IR_OP_CAST && n->dtype != got->dtype)
        return node_error(in, KILN_EVALUE, "dtype", "declared dtype %u, but the result is %s",
                          n->dtype, ir_dtype_name(got->dtype));
    if ((n->has & F_SH) && n->op != IR_OP_RESHAPE && n->op != IR_OP_BROADCAST_TO &&
        n->op != IR_OP_REINDEX && n->op != IR_OP_REINDEX_REDUCE &&
        n->op != IR_OP_CONV2D_BWD_DATA && n->op != IR_OP_CONV2D_BWD_WEIGHT &&
        (n->rank != got->rank ||
         (n->rank > 0 && memcmp(n->shape, got->shape, n->rank * sizeof(n->shape[0])) != 0)))
        return node_error(in, KILN_EVALUE, "shape", "declared shape differs from the result's");
    return 0;
}

/* Every graph node added for SUBMIT node i (its EXTERNs and itself) maps
 * back to i, so a failure while running names the client's node. */
static int note_origin(struct ingest *in, const struct ir_graph *g)
{
    struct step *st = in->st;
    if (g->count > in->capfrom) {
        uint32_t cap = in->capfrom ? in->capfrom : 64;
        while (cap < g->count)
            cap *= 2;
        uint32_t *grown = realloc(st->from, cap * sizeof(*grown));
        if (grown == NULL)
            return node_error(in, KILN_ENOMEM, "", "out of memory");
        st->from = grown;
        in->capfrom = cap;
    }
    while (in->nfrom < g->count)
        st->from[in->nfrom++] = in->i;
    return 0;
}

static int ingest_node(struct ir_graph *g, struct ingest *in)
{
    const struct proto_node *n = &in->sub->nodes[in->i];
    struct op_fields f;
    if (!op_fields((int) n->op, &f))
        return node_error(in, KILN_EVALUE, "op", "op %u is not an op of this protocol", n->op);
    uint32_t missing = f.need & ~n->has;
    uint32_t extra = n->has & ~(f.need | f.may);
    if (extra & F_IN && n->nin == 0)
        extra &= ~F_IN; /* an empty `in` is as good as none */
    for (uint32_t bit = 1; bit <= PROTO_NODE_GROUPS; bit <<= 1) {
        if (missing & bit)
            return node_error(in, KILN_EMISSING, proto_node_field_name(bit), "%s needs `%s`",
                              op_name(n->op), proto_node_field_name(bit));
        if (extra & bit)
            return node_error(in, KILN_EFIELD, proto_node_field_name(bit), "%s does not take `%s`",
                              op_name(n->op), proto_node_field_name(bit));
    }
    if ((f.nin_min >= 0 && n->nin < (uint32_t) f.nin_min) ||
        (f.nin_max >= 0 && n->nin > (uint32_t) f.nin_max))
        return node_error(in, KILN_EVALUE, "in", "%s takes %s%d input%s, not %u", op_name(n->op),
                          f.nin_max < 0 ? "at least " : "", f.nin_min,
                          f.nin_min == 1 ? "" : "s", n->nin);
    if (idmap_get(&in->local, n->id) != NULL || AS_IDX(idmap_get(&in->pos, n->id)) != (int) in->i)
        return node_error(in, KILN_EVALUE, "id", "id %" PRIu64 " is defined twice", n->id);
    int x[KILN_LIMIT_NODE_INPUTS];
    for (uint32_t k = 0; k < n->nin; k++)
        if ((x[k] = resolve_input(g, in, n->in[k], (int) k)) < 0)
            return -1;
    int r = construct(g, in, n, x);
    if (r < 0 || check_declared(in, n, &g->nodes[r]) < 0 || note_origin(in, g) < 0)
        return -1;
    if (idmap_put(&in->local, n->id, AS_PTR(r)) != KILN_OK)
        return node_error(in, KILN_ENOMEM, "", "out of memory");
    return 0;
}

static int ingest_keep(struct ingest *in, struct proto_error *err)
{
    const struct proto_submit *sub = in->sub;
    struct step *st = in->st;
    if (sub->nkeep == 0)
        return KILN_OK;
    /* One flag per graph node finds an id kept twice in linear time. */
    uint8_t *kept = calloc(st->graph.count, 1);
    if ((st->keep = calloc(sub->nkeep, sizeof(*st->keep))) == NULL || kept == NULL) {
        free(kept);
        return proto_error_set(err, KILN_ENOMEM, "body.keep", "out of memory");
    }
    int rc = KILN_OK;
    for (uint32_t j = 0; rc == KILN_OK && j < sub->nkeep; j++) {
        char field[PROTO_FIELD_MAX];
        void *p = idmap_get(&in->local, sub->keep[j]);
        if (p == NULL || kept[AS_IDX(p)]) {
            snprintf(field, sizeof(field), "body.keep[%u]", j);
            rc = proto_error_set(err, KILN_EVALUE, field,
                                 p == NULL ? "keep names %" PRIu64
                                             ", which no node of this SUBMIT defines"
                                           : "keep names %" PRIu64 " twice",
                                 sub->keep[j]);
            break;
        }
        kept[AS_IDX(p)] = 1;
        st->keep[j].node = (uint32_t) AS_IDX(p);
    }
    free(kept);
    return rc;
}

/* What a queued step holds until it finishes: its nodes, and the data of
 * its ARRAY nodes (a copy of what the client uploaded). */
static uint64_t step_bytes(const struct ir_graph *g)
{
    uint64_t bytes = (uint64_t) g->count * (sizeof(struct ir_node) + sizeof(uint32_t));
    for (uint32_t i = 0; i < g->count; i++)
        if (g->nodes[i].op == IR_OP_ARRAY)
            bytes += g->nodes[i].attr.array.bytes;
    return bytes;
}

/* Every check passed: the kept vars become PENDING in the session, and the
 * step takes its references. Undone completely if a var cannot be added. */
static int commit(struct sess_table *t, struct ingest *in, struct proto_error *err)
{
    struct step *st = in->st;
    if (sess_var_count(in->s) + in->sub->nkeep > SESS_MAX_VARS)
        return proto_error_set(err, KILN_ELIMIT, "body.keep",
                               "the session would keep more than %d vars: release some first",
                               SESS_MAX_VARS);
    uint64_t bytes = step_bytes(&st->graph);
    int rc = sess_mem_charge(t, in->s, bytes, err);
    if (rc != KILN_OK)
        return rc;
    st->charged = bytes;
    for (uint32_t j = 0; j < in->sub->nkeep; j++) {
        const struct ir_node *node = &st->graph.nodes[st->keep[j].node];
        char field[PROTO_FIELD_MAX];
        snprintf(field, sizeof(field), "body.keep[%u]", j);
        struct sess_var *v;
        rc = sess_var_add(t, in->s, in->sub->keep[j], node->dtype, node->rank, node->shape, &v,
                              field, err);
        if (rc != KILN_OK) {
            for (uint32_t k = 0; k < j; k++) {
                sess_var_release(t, in->s, st->keep[k].var->id); /* the table's reference */
                sess_var_unref(t, st->keep[k].var);              /* the step's */
            }
            st->nkeep = 0;
            return rc; /* step_free returns the step's charge */
        }
        sess_var_ref(v);
        st->keep[j].var = v;
        st->nkeep = j + 1;
    }
    for (uint32_t k = 0; k < in->nbind; k++)
        sess_var_ref(in->bind[k]);
    st->bind = in->bind;
    st->nbind = in->nbind;
    in->bind = NULL;
    return KILN_OK;
}

int ingest_submit(struct sess_table *t, struct sess *s, const struct proto_submit *sub,
                  struct step **out, struct proto_error *err)
{
    struct step *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return proto_error_set(err, KILN_ENOMEM, "", "out of memory for a step");
    ir_graph_init(&st->graph);
    st->session = s->id;
    st->device = sub->device;
    st->tf32 = sub->tf32;
    st->acct = s->acct;
    struct ingest in = {.s = s, .sub = sub, .st = st, .err = err,
                        .lower_relays = t->lower_relays};
    idmap_init(&in.pos);
    idmap_init(&in.local);
    idmap_init(&in.externs);

    int rc = KILN_OK;
    /* Positions first, so a forward reference can be told from a dangling
     * one; and an id the session still keeps is refused at the node that
     * redefines it, before any reader of that var is blamed. */
    for (uint32_t i = 0; rc == KILN_OK && i < sub->nnodes; i++) {
        in.i = i;
        if (sess_var_get(s, sub->nodes[i].id) != NULL) {
            node_error(&in, KILN_EVALUE, "id",
                       "id %" PRIu64 " is still kept by the session: release it first",
                       sub->nodes[i].id);
            rc = err->code;
        } else if (idmap_get(&in.pos, sub->nodes[i].id) == NULL &&
                 idmap_put(&in.pos, sub->nodes[i].id, AS_PTR(i)) != KILN_OK)
            rc = proto_error_set(err, KILN_ENOMEM, "body.nodes", "out of memory");
    }
    for (in.i = 0; rc == KILN_OK && in.i < sub->nnodes; in.i++)
        if (ingest_node(&st->graph, &in) < 0)
            rc = err->code;
    if (rc == KILN_OK)
        rc = ingest_keep(&in, err);
    if (rc == KILN_OK)
        rc = commit(t, &in, err);

    idmap_fini(&in.pos);
    idmap_fini(&in.local);
    idmap_fini(&in.externs);
    free(in.bind); /* NULL once the step owns it */
    for (uint32_t q = 0; q < in.npasses; q++)
        pass_fini(&in.passes[q]);
    free(in.passes);
    free(in.stop);
    if (rc != KILN_OK) {
        step_free(t, st);
        return rc;
    }
    st->number = ++s->steps;
    *out = st;
    return KILN_OK;
}

void step_free(struct sess_table *t, struct step *st)
{
    if (st == NULL)
        return;
    for (uint32_t k = 0; k < st->nbind; k++)
        sess_var_unref(t, st->bind[k]);
    for (uint32_t j = 0; j < st->nkeep; j++)
        sess_var_unref(t, st->keep[j].var);
    sess_mem_uncharge_id(t, st->session, st->acct, st->charged);
    free(st->bind);
    free(st->keep);
    free(st->from);
    free(st->warnings);
    free(st->inputs);
    if (st->outs != NULL)
        ir_interp_free(&st->graph, st->outs);
    ir_graph_fini(&st->graph);
    /* A merged step's graph borrows from its parts' graphs: they go last. */
    for (struct step *p = st->parts, *next; p != NULL; p = next) {
        next = p->next;
        step_free(t, p);
    }
    free(st);
}
