/* test_invalid.c: every kind of invalid graph, one test each, through a
 * real kilnd — unknown op, wrong arity, shape mismatch, cycle, dangling
 * reference, rank over its limit, a size over its limit, an element count
 * that overflows 64 bits, a malformed index expression, and one naming
 * something undefined.
 *
 * Each refusal must carry the typed code, a `field` and a `node` naming
 * the culprit by its position in `nodes`, and a message that names it too.
 * The culprit is never the first node, so a daemon that blames node 0 or
 * the wrong node fails. Requests are packed by hand with msgpack (not the
 * protocol encoder, which refuses to send most of these), and after the
 * refusals each test checks that nothing was kept, that the ids of the
 * refused graph are still free, and that kilnd exits cleanly.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TIMEOUT_MS 10000

/* Op and dtype numbers of PROTOCOL.md §8. */
enum { OP_ARRAY = 1, OP_CONST = 2, OP_INDEX = 3, OP_EXTERN = 5, OP_RESHAPE = 8, OP_EXP = 18,
       OP_CAST = 34, OP_ADD = 48, OP_WHERE = 80, OP_BROADCAST = 96, OP_REINDEX = 97,
       OP_REDUCE = 98, OP_REINDEX_REDUCE = 99 };
enum { DT_INT32 = 4, DT_INT64 = 5, DT_F32 = 6 };

/* A node as raw wire fields, free of the encoder's limits. */
struct rn {
    uint32_t has; /* PROTO_NODE_* */
    uint64_t id, op;
    uint32_t nin;
    uint64_t in[16];
    uint32_t dtype;
    uint32_t rank;
    uint64_t shape[16];
    const void *data;
    size_t data_len;
    double value;
    uint32_t dim;
    uint32_t ndims;
    uint32_t dims[16];
    uint32_t reduce_op;
    uint32_t nexprs;
    const char *exprs[16];
    size_t expr_len[16]; /* 0: strlen */
    uint32_t nconds;
    const char *const *conds;
};

static struct rn op_node(uint64_t id, uint64_t op, uint32_t nin, const uint64_t *in)
{
    struct rn n;
    memset(&n, 0, sizeof n);
    n.id = id;
    n.op = op;
    if (nin > 0 || in != NULL) {
        n.has |= PROTO_NODE_IN;
        n.nin = nin;
        memcpy(n.in, in, nin * sizeof in[0]);
    }
    return n;
}

static void rn_shape(struct rn *n, uint32_t rank, const uint64_t *shape)
{
    n->has |= PROTO_NODE_SHAPE;
    n->rank = rank;
    memcpy(n->shape, shape, rank * sizeof shape[0]);
}

/* A float32 const of `shape`. */
static struct rn const_node(uint64_t id, uint32_t rank, const uint64_t *shape)
{
    struct rn n = op_node(id, OP_CONST, 0, NULL);
    n.has |= PROTO_NODE_DTYPE | PROTO_NODE_VALUE;
    n.dtype = DT_F32;
    n.value = 1.5;
    rn_shape(&n, rank, shape);
    return n;
}

static void rn_exprs(struct rn *n, uint32_t count, const char *const *exprs)
{
    n->has |= PROTO_NODE_EXPRS;
    n->nexprs = count;
    for (uint32_t k = 0; k < count; k++) {
        n->exprs[k] = exprs[k];
        n->expr_len[k] = 0;
    }
}

static void key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
}

static void pack_node(msgpack_packer *pk, const struct rn *n)
{
    uint32_t pairs = 2;
    for (uint32_t b = n->has; b != 0; b &= b - 1)
        pairs++;
    msgpack_pack_map(pk, pairs);
    key(pk, "id");
    msgpack_pack_uint64(pk, n->id);
    key(pk, "op");
    msgpack_pack_uint64(pk, n->op);
    if (n->has & PROTO_NODE_IN) {
        key(pk, "in");
        msgpack_pack_array(pk, n->nin);
        for (uint32_t k = 0; k < n->nin; k++)
            msgpack_pack_uint64(pk, n->in[k]);
    }
    if (n->has & PROTO_NODE_DTYPE) {
        key(pk, "dtype");
        msgpack_pack_uint32(pk, n->dtype);
    }
    if (n->has & PROTO_NODE_SHAPE) {
        key(pk, "shape");
        msgpack_pack_array(pk, n->rank);
        for (uint32_t k = 0; k < n->rank; k++)
            msgpack_pack_uint64(pk, n->shape[k]);
    }
    if (n->has & PROTO_NODE_DATA) {
        key(pk, "data");
        msgpack_pack_bin(pk, n->data_len);
        msgpack_pack_bin_body(pk, n->data, n->data_len);
    }
    if (n->has & PROTO_NODE_VALUE) {
        key(pk, "value");
        msgpack_pack_double(pk, n->value);
    }
    if (n->has & PROTO_NODE_DIM) {
        key(pk, "dim");
        msgpack_pack_uint32(pk, n->dim);
    }
    if (n->has & PROTO_NODE_DIMS) {
        key(pk, "dims");
        msgpack_pack_array(pk, n->ndims);
        for (uint32_t k = 0; k < n->ndims; k++)
            msgpack_pack_uint32(pk, n->dims[k]);
    }
    if (n->has & PROTO_NODE_REDUCE_OP) {
        key(pk, "reduce_op");
        msgpack_pack_uint32(pk, n->reduce_op);
    }
    if (n->has & PROTO_NODE_EXPRS) {
        key(pk, "exprs");
        msgpack_pack_array(pk, n->nexprs);
        for (uint32_t k = 0; k < n->nexprs; k++) {
            size_t len = n->expr_len[k] ? n->expr_len[k] : strlen(n->exprs[k]);
            msgpack_pack_str(pk, len);
            msgpack_pack_str_body(pk, n->exprs[k], len);
        }
    }
    if (n->has & PROTO_NODE_CONDS) {
        key(pk, "conds");
        msgpack_pack_array(pk, n->nconds);
        for (uint32_t k = 0; k < n->nconds; k++) {
            msgpack_pack_str(pk, strlen(n->conds[k]));
            msgpack_pack_str_body(pk, n->conds[k], strlen(n->conds[k]));
        }
    }
}

/* SUBMIT `n` nodes keeping `keep` (may be 0); returns the code. */
static int submit(nng_socket s, uint64_t sid, const struct rn *nodes, uint32_t n,
                  const uint64_t *keep, uint32_t nkeep, struct proto_error *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint32(&pk, PROTO_SUBMIT);
    msgpack_pack_uint64(&pk, sid);
    msgpack_pack_map(&pk, 2);
    key(&pk, "nodes");
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++)
        pack_node(&pk, &nodes[i]);
    key(&pk, "keep");
    msgpack_pack_array(&pk, nkeep);
    for (uint32_t i = 0; i < nkeep; i++)
        msgpack_pack_uint64(&pk, keep[i]);
    struct proto_reply rep;
    int code = th_call(s, &sb, PROTO_SUBMIT, &rep);
    if (err != NULL)
        *err = rep.error;
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);
    return code;
}

/* SUBMIT a chain of `n` nodes, a const [4] (id 1) and exps (ids 2..n),
 * packed as it goes; keeps nothing. */
static int submit_chain(nng_socket s, uint64_t sid, uint32_t n, struct proto_error *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint32(&pk, PROTO_SUBMIT);
    msgpack_pack_uint64(&pk, sid);
    msgpack_pack_map(&pk, 2);
    key(&pk, "nodes");
    msgpack_pack_array(&pk, n);
    struct rn head = const_node(1, 1, (const uint64_t[]){4});
    pack_node(&pk, &head);
    for (uint32_t i = 1; i < n; i++) {
        struct rn e = op_node(i + 1, OP_EXP, 1, (uint64_t[]){i});
        pack_node(&pk, &e);
    }
    key(&pk, "keep");
    msgpack_pack_array(&pk, 0);
    struct proto_reply rep;
    int code = th_call(s, &sb, PROTO_SUBMIT, &rep);
    *err = rep.error;
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);
    return code;
}

/* The graph must be refused with `code`, naming node `at` in `field` (a
 * full path, "body.nodes[2].in[1]") and in its message. */
#define refused(ctx, nodes, n, code, field, at)                                                    \
    refused_at(__LINE__, ctx, nodes, n, code, field, at)

struct ctx {
    struct th_daemon d;
    nng_socket s;
    uint64_t sid;
};

static void refused_at(int line, struct ctx *c, const struct rn *nodes, uint32_t n, int code,
                       const char *field, int64_t at)
{
    struct proto_error err;
    memset(&err, 0, sizeof err);
    int got = submit(c->s, c->sid, nodes, n, NULL, 0, &err);
    ck_assert_msg(got == code, "line %d: expected %s, got %s (%s): %s", line, kiln_err_name(code),
                  kiln_err_name(got), err.field, err.message);
    ck_assert_msg(strcmp(err.field, field) == 0, "line %d: field \"%s\", expected \"%s\" (%s)",
                  line, err.field, field, err.message);
    ck_assert_msg(err.node == at, "line %d: node %lld, expected %lld (%s)", line,
                  (long long) err.node, (long long) at, err.message);
    if (at >= 0) {
        char a[32], b[32];
        snprintf(a, sizeof a, "node %lld", (long long) at);
        snprintf(b, sizeof b, "nodes[%lld]", (long long) at);
        ck_assert_msg(strstr(err.message, a) != NULL || strstr(err.message, b) != NULL,
                      "line %d: the message does not name node %lld: %s", line, (long long) at,
                      err.message);
    }
    ck_assert_msg(err.message[0] != '\0', "line %d: empty message", line);
    if (getenv("INVALID_VERBOSE") != NULL)
        fprintf(stderr, "line %d: %s %s: %s\n", line, kiln_err_name(got), err.field, err.message);
}

static void open_ctx(struct ctx *c)
{
    th_prepare(&c->d);
    th_start(&c->d, NULL);
    c->s = th_connect(c->d.addr, TIMEOUT_MS);
    c->sid = th_hello(c->s, "invalid");
}

/* Accepted steps run on: wait until none is running or queued. */
static void wait_idle(struct ctx *c)
{
    struct proto_status st;
    uint64_t deadline = th_now_ms() + TIMEOUT_MS;
    do {
        th_status(c->s, &st);
        if (st.steps_running + st.steps_queued == 0)
            break;
        th_sleep_ms(5);
    } while (th_now_ms() < deadline);
    ck_assert_uint_eq(st.steps_running + st.steps_queued, 0);
    ck_assert_uint_eq(st.steps_failed, 0);
}

/* Nothing of the refused graphs stayed: no memory held, every id (1..99)
 * still free to define, and the daemon still computes and exits 0. */
static void close_ctx(struct ctx *c)
{
    struct proto_status st;
    wait_idle(c);
    th_status(c->s, &st);
    ck_assert_uint_eq(st.mem_in_use, 0);
    ck_assert_uint_eq(st.steps_failed, 0);
    struct rn ok[99];
    uint64_t four[1] = {4};
    ok[0] = const_node(1, 1, four);
    for (uint64_t id = 2; id <= 99; id++)
        ok[id - 1] = op_node(id, OP_EXP, 1, (uint64_t[]){id - 1});
    struct proto_error err;
    int code = submit(c->s, c->sid, ok, 99, (uint64_t[]){99}, 1, &err);
    ck_assert_msg(code == KILN_OK, "a valid graph after the refusals: %s: %s",
                  kiln_err_name(code), err.message);
    nng_close(c->s);
    ck_assert_int_eq(th_stop(&c->d), 0);
}

static const uint64_t four[1] = {4}, five[1] = {5};

/* nodes[0] = const [4] (id 1), nodes[1] = exp (id 2): the valid prefix. */
static void prefix(struct rn *g)
{
    g[0] = const_node(1, 1, four);
    g[1] = op_node(2, OP_EXP, 1, (uint64_t[]){1});
}

START_TEST(unknown_op)
{
    struct ctx c;
    open_ctx(&c);
    struct rn g[3];
    prefix(g);
    /* A gap in the table, past the end, 0, the top of uint32, and EXTERN,
     * which is the daemon's own and never comes from the wire. */
    const uint64_t ops[] = {77, 7, 100, 111, 117, 1000, 0, UINT32_MAX, OP_EXTERN};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        g[2] = op_node(3, ops[i], 1, (uint64_t[]){2});
        refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].op", 2);
    }
    /* An EXTERN with the fields an extern would have. */
    g[2] = const_node(3, 1, four);
    g[2].op = OP_EXTERN;
    g[2].has &= ~(uint32_t) PROTO_NODE_VALUE;
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].op", 2);
    /* Above uint32 is out of the field's range: VALUE too. */
    g[2] = op_node(3, UINT64_C(1) << 32 | OP_EXP, 1, (uint64_t[]){2});
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].op", 2);
    close_ctx(&c);
}
END_TEST

START_TEST(wrong_arity)
{
    struct ctx c;
    open_ctx(&c);
    struct rn g[4];
    prefix(g);
    g[2] = op_node(3, OP_ADD, 1, (uint64_t[]){2});
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].in", 2);
    g[2] = op_node(3, OP_ADD, 3, (uint64_t[]){1, 2, 2});
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].in", 2);
    g[2] = op_node(3, OP_EXP, 2, (uint64_t[]){1, 2});
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].in", 2);
    g[2] = op_node(3, OP_WHERE, 2, (uint64_t[]){1, 2});
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].in", 2);
    /* An empty `in` where one input is needed. */
    g[2] = op_node(3, OP_EXP, 0, (uint64_t[]){0});
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].in", 2);
    g[2] = op_node(3, OP_REDUCE, 0, (uint64_t[]){0});
    g[2].has |= PROTO_NODE_REDUCE_OP | PROTO_NODE_DIMS;
    g[2].reduce_op = 1;
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].in", 2);
    /* No `in` at all: MISSING, naming it. */
    g[2] = op_node(3, OP_EXP, 0, NULL);
    refused(&c, g, 3, KILN_EMISSING, "body.nodes[2].in", 2);
    /* A source given an input: a field it does not take. */
    g[2] = const_node(3, 1, four);
    g[2].has |= PROTO_NODE_IN;
    g[2].nin = 1;
    g[2].in[0] = 1;
    refused(&c, g, 3, KILN_EFIELD, "body.nodes[2].in", 2);
    /* reshape takes exactly one. */
    g[2] = op_node(3, OP_RESHAPE, 2, (uint64_t[]){1, 2});
    rn_shape(&g[2], 1, four);
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].in", 2);
    close_ctx(&c);
}
END_TEST

START_TEST(shape_mismatch)
{
    struct ctx c;
    open_ctx(&c);
    struct rn g[4];
    prefix(g);
    g[2] = const_node(3, 1, five);
    g[3] = op_node(4, OP_ADD, 2, (uint64_t[]){2, 3});
    refused(&c, g, 4, KILN_EVALUE, "body.nodes[3].in[1]", 3);
    g[3] = op_node(4, OP_WHERE, 3, (uint64_t[]){1, 2, 3});
    refused(&c, g, 4, KILN_EVALUE, "body.nodes[3].in[2]", 3);
    g[3] = op_node(4, OP_WHERE, 3, (uint64_t[]){3, 1, 2});
    refused(&c, g, 4, KILN_EVALUE, "body.nodes[3].in[1]", 3);
    /* Rank differs: [4] + [4, 1]. */
    g[2] = const_node(3, 2, (uint64_t[]){4, 1});
    g[3] = op_node(4, OP_ADD, 2, (uint64_t[]){2, 3});
    refused(&c, g, 4, KILN_EVALUE, "body.nodes[3].in[1]", 3);
    /* A declared shape that is not the result's. */
    g[2] = op_node(3, OP_ADD, 2, (uint64_t[]){1, 2});
    rn_shape(&g[2], 1, five);
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].shape", 2);
    /* reshape to another element count. */
    g[2] = op_node(3, OP_RESHAPE, 1, (uint64_t[]){2});
    rn_shape(&g[2], 2, (uint64_t[]){3, 2});
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].shape", 2);
    /* broadcast_to where a kept dim is neither equal nor 1: [4] -> [2, 5]. */
    g[2] = op_node(3, OP_BROADCAST, 1, (uint64_t[]){2});
    rn_shape(&g[2], 2, (uint64_t[]){2, 5});
    g[2].has |= PROTO_NODE_DIMS;
    g[2].ndims = 1;
    g[2].dims[0] = 0;
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].shape", 2);
    /* reduce over a dim the input lacks. */
    g[2] = op_node(3, OP_REDUCE, 1, (uint64_t[]){2});
    g[2].has |= PROTO_NODE_REDUCE_OP | PROTO_NODE_DIMS;
    g[2].reduce_op = 1;
    g[2].ndims = 1;
    g[2].dims[0] = 1;
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].dims", 2);
    /* reindex with one expression per input dim: [4] needs 1, not 2. */
    g[2] = op_node(3, OP_REINDEX, 1, (uint64_t[]){2});
    rn_shape(&g[2], 1, four);
    rn_exprs(&g[2], 2, (const char *[]){"i0", "i0"});
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].exprs", 2);
    close_ctx(&c);
}
END_TEST

START_TEST(cycle)
{
    struct ctx c;
    open_ctx(&c);
    struct rn g[5];
    prefix(g);
    /* 3 reads 4, 4 reads 3. */
    g[2] = op_node(3, OP_EXP, 1, (uint64_t[]){4});
    g[3] = op_node(4, OP_EXP, 1, (uint64_t[]){3});
    refused(&c, g, 4, KILN_EVALUE, "body.nodes[2].in[0]", 2);
    /* A node reading itself. */
    g[2] = op_node(3, OP_ADD, 2, (uint64_t[]){2, 3});
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].in[1]", 2);
    /* Three nodes round: 3 -> 5 -> 4 -> 3, entered at its second input. */
    g[2] = op_node(3, OP_ADD, 2, (uint64_t[]){2, 5});
    g[3] = op_node(4, OP_EXP, 1, (uint64_t[]){3});
    g[4] = op_node(5, OP_EXP, 1, (uint64_t[]){4});
    refused(&c, g, 5, KILN_EVALUE, "body.nodes[2].in[1]", 2);
    /* Not a cycle, but out of order: refused the same way. */
    g[2] = op_node(3, OP_EXP, 1, (uint64_t[]){4});
    g[3] = op_node(4, OP_EXP, 1, (uint64_t[]){2});
    refused(&c, g, 4, KILN_EVALUE, "body.nodes[2].in[0]", 2);
    close_ctx(&c);
}
END_TEST

START_TEST(dangling_reference)
{
    struct ctx c;
    open_ctx(&c);
    struct rn g[3];
    prefix(g);
    g[2] = op_node(3, OP_ADD, 2, (uint64_t[]){2, 1234});
    refused(&c, g, 3, KILN_ENOTFOUND, "body.nodes[2].in[1]", 2);
    /* An id defined only by a refused graph. */
    struct rn bad[2] = {const_node(40, 1, four), op_node(41, 77, 0, NULL)};
    refused(&c, bad, 2, KILN_EVALUE, "body.nodes[1].op", 1);
    g[2] = op_node(3, OP_EXP, 1, (uint64_t[]){40});
    refused(&c, g, 3, KILN_ENOTFOUND, "body.nodes[2].in[0]", 2);
    /* A temporary of an earlier step (not kept), and a released var. */
    struct rn step[2];
    step[0] = const_node(50, 1, four);
    step[1] = op_node(51, OP_EXP, 1, (uint64_t[]){50});
    ck_assert_int_eq(submit(c.s, c.sid, step, 2, (uint64_t[]){51}, 1, NULL), KILN_OK);
    g[2] = op_node(3, OP_EXP, 1, (uint64_t[]){50});
    refused(&c, g, 3, KILN_ENOTFOUND, "body.nodes[2].in[0]", 2);
    g[2] = op_node(3, OP_EXP, 1, (uint64_t[]){51}); /* kept: fine */
    ck_assert_int_eq(submit(c.s, c.sid, g, 3, NULL, 0, NULL), KILN_OK);
    wait_idle(&c);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_release(&sb, c.sid, (uint64_t[]){51}, 1), KILN_OK);
    struct proto_reply rep;
    ck_assert_int_eq(th_call(c.s, &sb, PROTO_RELEASE, &rep), KILN_OK);
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);
    refused(&c, g, 3, KILN_ENOTFOUND, "body.nodes[2].in[0]", 2);
    /* A var another session keeps. */
    uint64_t other = th_hello(c.s, "other");
    ck_assert_int_eq(submit(c.s, other, step, 2, (uint64_t[]){51}, 1, NULL), KILN_OK);
    refused(&c, g, 3, KILN_ENOTFOUND, "body.nodes[2].in[0]", 2);
    wait_idle(&c);
    ck_assert_int_eq(th_simple(c.s, PROTO_BYE, other, NULL), KILN_OK);
    close_ctx(&c);
}
END_TEST

START_TEST(rank_over_limit)
{
    struct ctx c;
    open_ctx(&c);
    struct rn g[3];
    prefix(g);
    const uint64_t ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    /* A source of rank 9. */
    g[2] = const_node(3, 9, ones);
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    /* broadcast_to, reshape and reindex to rank 9. */
    g[2] = op_node(3, OP_BROADCAST, 1, (uint64_t[]){2});
    rn_shape(&g[2], 9, (uint64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 4});
    g[2].has |= PROTO_NODE_DIMS;
    g[2].ndims = 1;
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    g[2] = op_node(3, OP_RESHAPE, 1, (uint64_t[]){2});
    rn_shape(&g[2], 9, (uint64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 4});
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    g[2] = op_node(3, OP_REINDEX, 1, (uint64_t[]){2});
    rn_shape(&g[2], 9, (uint64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 4});
    rn_exprs(&g[2], 1, (const char *[]){"i8"});
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    /* Nine dims listed, and nine expressions. */
    g[2] = op_node(3, OP_REDUCE, 1, (uint64_t[]){2});
    g[2].has |= PROTO_NODE_REDUCE_OP | PROTO_NODE_DIMS;
    g[2].reduce_op = 1;
    g[2].ndims = 9;
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].dims", 2);
    g[2] = op_node(3, OP_REINDEX, 1, (uint64_t[]){2});
    rn_shape(&g[2], 1, four);
    rn_exprs(&g[2], 9, (const char *[]){"0", "0", "0", "0", "0", "0", "0", "0", "0"});
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].exprs", 2);
    close_ctx(&c);
}
END_TEST

START_TEST(size_over_limit)
{
    struct ctx c;
    open_ctx(&c);
    struct rn g[3];
    prefix(g);
    const uint64_t lim = UINT64_C(1) << 40; /* dim and elements */
    /* One dim over `dim`, named by its element. */
    g[2] = const_node(3, 2, (uint64_t[]){2, lim + 1});
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape[1]", 2);
    g[2] = op_node(3, OP_BROADCAST, 1, (uint64_t[]){2});
    rn_shape(&g[2], 2, (uint64_t[]){UINT64_MAX, 4});
    g[2].has |= PROTO_NODE_DIMS;
    g[2].ndims = 1;
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape[0]", 2);
    /* Exactly the limit is fine as a dim, but not with a second dim of 2. */
    g[2] = op_node(3, OP_BROADCAST, 1, (uint64_t[]){2});
    rn_shape(&g[2], 3, (uint64_t[]){lim, 2, 4});
    g[2].has |= PROTO_NODE_DIMS;
    g[2].ndims = 2;
    g[2].dims[1] = 1;
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    g[2] = op_node(3, OP_INDEX, 0, NULL);
    g[2].has |= PROTO_NODE_DTYPE | PROTO_NODE_DIM;
    g[2].dtype = DT_INT64;
    rn_shape(&g[2], 2, (uint64_t[]){UINT64_C(1) << 21, UINT64_C(1) << 20});
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    /* An index along a dim of more than int32 holds, as int32. */
    g[2].dtype = DT_INT32;
    rn_shape(&g[2], 1, (uint64_t[]){(UINT64_C(1) << 31) + 1});
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].dtype", 2);
    /* Too many inputs and conditions. */
    g[2] = op_node(3, OP_REINDEX, 10, (uint64_t[]){2, 1, 1, 1, 1, 1, 1, 1, 1, 1});
    rn_shape(&g[2], 1, four);
    rn_exprs(&g[2], 1, (const char *[]){"i0"});
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].in", 2);
    static const char *const conds[33] = {
        "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0",
        "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0"};
    g[2] = op_node(3, OP_REINDEX, 1, (uint64_t[]){2});
    rn_shape(&g[2], 1, four);
    rn_exprs(&g[2], 1, (const char *[]){"i0"});
    g[2].has |= PROTO_NODE_CONDS;
    g[2].conds = conds;
    g[2].nconds = 33;
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].conds", 2);
    g[2].nconds = 32; /* the limit itself is fine */
    ck_assert_int_eq(submit(c.s, c.sid, g, 3, NULL, 0, NULL), KILN_OK);
    /* An expression over expr_bytes, expr_nodes and expr_depth. */
    static char longx[1100], many[1000], deep[200];
    memset(longx, ' ', sizeof longx - 1);
    longx[0] = '0';
    g[2].nconds = 0;
    g[2].has &= ~(uint32_t) PROTO_NODE_CONDS;
    rn_exprs(&g[2], 1, (const char *[]){longx});
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].exprs[0]", 2);
    size_t k = 0;
    for (int t = 0; t < 200; t++)
        k += (size_t) snprintf(many + k, sizeof many - k, "%si0", t ? "+" : "");
    rn_exprs(&g[2], 1, (const char *[]){many});
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].exprs[0]", 2);
    k = 0;
    for (int t = 0; t < 40; t++)
        deep[k++] = '(';
    deep[k++] = '0';
    for (int t = 0; t < 40; t++)
        deep[k++] = ')';
    deep[k] = '\0';
    rn_exprs(&g[2], 1, (const char *[]){deep});
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].exprs[0]", 2);
    /* More nodes than `nodes`: the list itself is at fault, no node. */
    struct proto_error err;
    ck_assert_int_eq(submit_chain(c.s, c.sid, 65537, &err), KILN_ELIMIT);
    ck_assert_str_eq(err.field, "body.nodes");
    ck_assert_int_eq(err.node, -1);
    ck_assert_int_eq(submit_chain(c.s, c.sid, 65536, &err), KILN_OK); /* the limit is fine */
    close_ctx(&c);
}
END_TEST

START_TEST(element_count_overflows_64_bits)
{
    struct ctx c;
    open_ctx(&c);
    struct rn g[3];
    prefix(g);
    /* Products that wrap modulo 2^64 to 0 or to a small count, with data
     * to match the wrapped count: each dim is within `dim`. 963371246729 *
     * 903918232113 * 242724355593 == 1 (mod 2^64). */
    const uint64_t wrap0[2] = {UINT64_C(1) << 32, UINT64_C(1) << 32};
    const uint64_t wrap0b[8] = {256, 256, 256, 256, 256, 256, 256, 256};
    const uint64_t wrap4[4] = {4, UINT64_C(963371246729), UINT64_C(903918232113),
                               UINT64_C(242724355593)};
    const uint64_t huge[4] = {UINT64_C(1) << 40, UINT64_C(1) << 40, UINT64_C(1) << 40,
                              UINT64_C(1) << 40};
    float data[4] = {1, 2, 3, 4};
    struct rn a = op_node(3, OP_ARRAY, 0, NULL);
    a.has |= PROTO_NODE_DTYPE | PROTO_NODE_DATA;
    a.dtype = DT_F32;
    a.data = data;
    a.data_len = 0;
    g[2] = a;
    rn_shape(&g[2], 2, wrap0);
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    rn_shape(&g[2], 8, wrap0b);
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    g[2].data_len = sizeof data;
    rn_shape(&g[2], 4, wrap4);
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    g[2] = const_node(3, 4, huge);
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    g[2] = const_node(3, 4, wrap4);
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    /* Derived ops whose shape is given: broadcast_to, reshape, reindex. */
    const uint64_t wrap4b[5] = {963371246729, 903918232113, 242724355593, 1, 4};
    g[2] = op_node(3, OP_BROADCAST, 1, (uint64_t[]){2});
    rn_shape(&g[2], 5, wrap4b);
    g[2].has |= PROTO_NODE_DIMS;
    g[2].ndims = 4;
    g[2].dims[0] = 0, g[2].dims[1] = 1, g[2].dims[2] = 2, g[2].dims[3] = 3;
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    g[2] = op_node(3, OP_RESHAPE, 1, (uint64_t[]){2});
    rn_shape(&g[2], 4, wrap4);
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    g[2] = op_node(3, OP_REINDEX, 1, (uint64_t[]){2});
    rn_shape(&g[2], 2, wrap0);
    rn_exprs(&g[2], 1, (const char *[]){"i1"});
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    g[2] = op_node(3, OP_REINDEX_REDUCE, 1, (uint64_t[]){2});
    g[2].has |= PROTO_NODE_REDUCE_OP;
    g[2].reduce_op = 1;
    rn_shape(&g[2], 4, wrap4);
    rn_exprs(&g[2], 4, (const char *[]){"0", "0", "0", "i0"});
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].shape", 2);
    close_ctx(&c);
}
END_TEST

START_TEST(malformed_expression)
{
    struct ctx c;
    open_ctx(&c);
    struct rn g[3];
    prefix(g);
    static const char *const bad[] = {
        "i0 +", "(i0", "i0)", "i0 ? 1", "", "1 +* 2", "i0 $ 1", "i0 i0", "min(i0)",
        "max(i0, 1, 2)", "@e", "@e0(", "1 = 1", "i0 &&", "\xff\xfe", "0x10", "1.5", ",",
    };
    g[2] = op_node(3, OP_REINDEX, 1, (uint64_t[]){2});
    rn_shape(&g[2], 2, (uint64_t[]){4, 3});
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rn_exprs(&g[2], 1, (const char *[]){bad[i]});
        refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].exprs[0]", 2);
    }
    /* In the second expression of a reindex_reduce, and in a condition. */
    g[2] = op_node(3, OP_REINDEX_REDUCE, 1, (uint64_t[]){2});
    g[2].has |= PROTO_NODE_REDUCE_OP;
    g[2].reduce_op = 1;
    rn_shape(&g[2], 2, (uint64_t[]){2, 2});
    rn_exprs(&g[2], 2, (const char *[]){"i0 % 2", "i0 /"});
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].exprs[1]", 2);
    rn_exprs(&g[2], 2, (const char *[]){"i0 % 2", "i0 / 2"});
    g[2].has |= PROTO_NODE_CONDS;
    g[2].nconds = 2;
    g[2].conds = (const char *const[]){"i0 < 1", "i0 >"};
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].conds[1]", 2);
    /* A NUL inside the text is not the end of it. */
    g[2] = op_node(3, OP_REINDEX, 1, (uint64_t[]){2});
    rn_shape(&g[2], 1, four);
    rn_exprs(&g[2], 1, (const char *[]){"i0\0+1"});
    g[2].expr_len[0] = 5;
    refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].exprs[0]", 2);
    /* A literal beyond 2^62 is over a limit. */
    rn_exprs(&g[2], 1, (const char *[]){"i0 + 4611686018427387905"});
    refused(&c, g, 3, KILN_ELIMIT, "body.nodes[2].exprs[0]", 2);
    /* The message quotes no more than a short excerpt of a long text. */
    static char junk[1000];
    memset(junk, '#', sizeof junk - 1);
    rn_exprs(&g[2], 1, (const char *[]){junk});
    struct proto_error err;
    ck_assert_int_eq(submit(c.s, c.sid, g, 3, NULL, 0, &err), KILN_EVALUE);
    ck_assert_ptr_null(strstr(err.message, "##########################################"));
    close_ctx(&c);
}
END_TEST

START_TEST(expression_names_undefined)
{
    struct ctx c;
    open_ctx(&c);
    struct rn g[4];
    prefix(g);
    /* reindex [4] -> [4, 3]: loop i0 i1; x has dim 0; y dims 0, 1. */
    static const char *const undefined[] = {
        "i2", "i9", "xshape1", "xstride1", "yshape2", "ystride2", "@e0(i0)", "j0", "foo",
        "i", "xshape", "XDIM0", "i18446744073709551616", "I0", "i-1",
    };
    g[2] = op_node(3, OP_REINDEX, 1, (uint64_t[]){2});
    rn_shape(&g[2], 2, (uint64_t[]){4, 3});
    for (size_t i = 0; i < sizeof undefined / sizeof undefined[0]; i++) {
        rn_exprs(&g[2], 1, (const char *[]){undefined[i]});
        refused(&c, g, 3, KILN_EVALUE, "body.nodes[2].exprs[0]", 2);
    }
    /* What is defined there passes (the test is not too strict). */
    rn_exprs(&g[2], 1, (const char *[]){"(i0 + i1 + xshape0 + yshape1 + ystride0 + XDIM + "
                                        "YDIM) % xshape0"});
    ck_assert_int_eq(submit(c.s, c.sid, g, 3, NULL, 0, NULL), KILN_OK);
    /* An extra beyond those given, with the wrong number of coordinates,
     * and in a condition. */
    g[2] = op_node(3, OP_INDEX, 0, NULL);
    g[2].has |= PROTO_NODE_DTYPE | PROTO_NODE_DIM;
    g[2].dtype = DT_INT32;
    rn_shape(&g[2], 1, four);
    g[3] = op_node(4, OP_REINDEX, 2, (uint64_t[]){2, 3});
    rn_shape(&g[3], 1, four);
    rn_exprs(&g[3], 1, (const char *[]){"@e1(i0)"});
    refused(&c, g, 4, KILN_EVALUE, "body.nodes[3].exprs[0]", 3);
    rn_exprs(&g[3], 1, (const char *[]){"@e0(i0, 0)"});
    refused(&c, g, 4, KILN_EVALUE, "body.nodes[3].exprs[0]", 3);
    rn_exprs(&g[3], 1, (const char *[]){"@e0()"});
    refused(&c, g, 4, KILN_EVALUE, "body.nodes[3].exprs[0]", 3);
    rn_exprs(&g[3], 1, (const char *[]){"@e0(i0)"});
    ck_assert_int_eq(submit(c.s, c.sid, g, 4, NULL, 0, NULL), KILN_OK);
    g[3].has |= PROTO_NODE_CONDS;
    g[3].nconds = 1;
    g[3].conds = (const char *const[]){"yshape1 > 0"};
    refused(&c, g, 4, KILN_EVALUE, "body.nodes[3].conds[0]", 3);
    /* reindex_reduce loops over its input: [4] gives i0 only. */
    g[3] = op_node(4, OP_REINDEX_REDUCE, 1, (uint64_t[]){2});
    g[3].has |= PROTO_NODE_REDUCE_OP;
    g[3].reduce_op = 3;
    rn_shape(&g[3], 2, (uint64_t[]){2, 2});
    rn_exprs(&g[3], 2, (const char *[]){"i0 / 2", "i1"});
    refused(&c, g, 4, KILN_EVALUE, "body.nodes[3].exprs[1]", 3);
    close_ctx(&c);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        setenv("KILND_PATH", argv[1], 1);
    Suite *su = suite_create("daemon-invalid");
    TCase *tc = tcase_create("invalid");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, unknown_op);
    tcase_add_test(tc, wrong_arity);
    tcase_add_test(tc, shape_mismatch);
    tcase_add_test(tc, cycle);
    tcase_add_test(tc, dangling_reference);
    tcase_add_test(tc, rank_over_limit);
    tcase_add_test(tc, size_over_limit);
    tcase_add_test(tc, element_count_overflows_64_bits);
    tcase_add_test(tc, malformed_expression);
    tcase_add_test(tc, expression_names_undefined);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
