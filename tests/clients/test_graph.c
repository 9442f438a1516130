/* test_graph.c: libkiln's graph calls — kiln_submit, kiln_fetch,
 * kiln_release — against a real kilnd on a private socket: values that
 * come back, refusals that name the node, unknown vars, the reply size
 * limit, and the arguments the library refuses itself. */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "kiln.h"

#define assert_contains(hay, needle)                                                               \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "expected \"%s\" in: %s", (needle), (hay))

static void start(struct fixture_daemon *d, const char *const *extra)
{
    ck_assert_msg(fixture_daemon_start(d, extra) == 0, "kilnd did not start");
}

static kiln_conn *connect_ok(const struct fixture_daemon *d)
{
    struct kiln_connect_opts o = {.address = d->address, .timeout_ms = 5000, .client = "graph"};
    kiln_conn *c = NULL;
    struct kiln_error e;
    int rc = kiln_connect(&c, &o, &e);
    ck_assert_msg(rc == KILN_OK, "connect: %s: %s", kiln_err_name(rc), e.message);
    return c;
}

static struct kiln_node node(uint64_t id, uint32_t op)
{
    struct kiln_node n;
    memset(&n, 0, sizeof(n));
    n.id = id;
    n.op = op;
    return n;
}

static void set_in(struct kiln_node *n, uint32_t nin, const uint64_t *in)
{
    n->has |= KILN_NODE_IN;
    n->nin = nin;
    memcpy(n->in, in, nin * sizeof(in[0]));
}

static void set_source(struct kiln_node *n, uint32_t dtype, uint32_t rank, const int64_t *shape)
{
    n->has |= KILN_NODE_DTYPE | KILN_NODE_SHAPE;
    n->dtype = dtype;
    n->rank = rank;
    memcpy(n->shape, shape, rank * sizeof(shape[0]));
}

static const float x_data[6] = {1, 2, 3, 4, 5, 6};
static const float w_data[3] = {0.5f, -1, 0.25f};

/* deploy/example-graph.json in C: sigmoid(X . w + 1) for a 2x3 X. */
static size_t example_graph(struct kiln_node *g)
{
    g[0] = node(1, KILN_OP_ARRAY);
    set_source(&g[0], KILN_DTYPE_FLOAT32, 2, (int64_t[]){2, 3});
    g[0].has |= KILN_NODE_DATA;
    g[0].data = x_data;
    g[0].data_len = sizeof(x_data);
    g[1] = node(2, KILN_OP_ARRAY);
    set_source(&g[1], KILN_DTYPE_FLOAT32, 1, (int64_t[]){3});
    g[1].has |= KILN_NODE_DATA;
    g[1].data = w_data;
    g[1].data_len = sizeof(w_data);
    g[2] = node(3, KILN_OP_BROADCAST_TO);
    set_in(&g[2], 1, (uint64_t[]){2});
    g[2].has |= KILN_NODE_SHAPE | KILN_NODE_DIMS;
    g[2].rank = 2;
    g[2].shape[0] = 2, g[2].shape[1] = 3;
    g[2].ndims = 1;
    g[2].dims[0] = 0;
    g[3] = node(4, KILN_OP_MUL);
    set_in(&g[3], 2, (uint64_t[]){1, 3});
    g[4] = node(5, KILN_OP_REDUCE);
    set_in(&g[4], 1, (uint64_t[]){4});
    g[4].has |= KILN_NODE_REDUCE_OP | KILN_NODE_DIMS;
    g[4].reduce_op = KILN_REDUCE_ADD;
    g[4].ndims = 1;
    g[4].dims[0] = 1;
    g[5] = node(6, KILN_OP_CONST);
    set_source(&g[5], KILN_DTYPE_FLOAT32, 1, (int64_t[]){2});
    g[5].has |= KILN_NODE_VALUE;
    g[5].value = (struct kiln_number){.i = 1};
    g[6] = node(7, KILN_OP_ADD);
    set_in(&g[6], 2, (uint64_t[]){5, 6});
    g[7] = node(8, KILN_OP_SIGMOID);
    set_in(&g[7], 1, (uint64_t[]){7});
    return 8;
}

START_TEST(dtype_table)
{
    const char *names[] = {NULL,    "bool",    "int8",    "uint8",   "int32",
                           "int64", "float32", "float64", "float16", "bfloat16"};
    const size_t sizes[] = {0, 1, 1, 1, 4, 8, 4, 8, 0, 0};
    for (int d = 0; d < 10; d++) {
        ck_assert_uint_eq(kiln_dtype_size(d), sizes[d]);
        if (names[d] == NULL)
            ck_assert_ptr_null(kiln_dtype_name(d));
        else
            ck_assert_str_eq(kiln_dtype_name(d), names[d]);
    }
    ck_assert_ptr_null(kiln_dtype_name(10));
    ck_assert_ptr_null(kiln_dtype_name(-1));
    ck_assert_uint_eq(kiln_dtype_size(10), 0);
}
END_TEST

START_TEST(null_connection)
{
    struct kiln_error e;
    struct kiln_node n = node(1, KILN_OP_CONST);
    struct kiln_tensor *t = (struct kiln_tensor *) 1;
    ck_assert_int_eq(kiln_submit(NULL, &n, 1, NULL, 0, NULL, &e), KILN_EARG);
    ck_assert_int_eq(kiln_fetch(NULL, (uint64_t[]){1}, 1, 0, &t, &e), KILN_EARG);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(kiln_release(NULL, NULL, 0, NULL, NULL, &e), KILN_EARG);
    kiln_tensors_free(NULL);
}
END_TEST

START_TEST(submit_fetch_round_trip)
{
    struct fixture_daemon d;
    start(&d, NULL);
    kiln_conn *c = connect_ok(&d);
    struct kiln_node g[8];
    size_t n = example_graph(g);
    struct kiln_error e;
    uint64_t step = 0;
    int rc = kiln_submit(c, g, n, (uint64_t[]){5, 8}, 2, &step, &e);
    ck_assert_msg(rc == KILN_OK, "submit: %s: %s", kiln_err_name(rc), e.message);
    ck_assert_uint_eq(step, 1);

    struct kiln_tensor *t = NULL;
    rc = kiln_fetch(c, (uint64_t[]){8, 5}, 2, 5000, &t, &e);
    ck_assert_msg(rc == KILN_OK, "fetch: %s: %s", kiln_err_name(rc), e.message);
    ck_assert_uint_eq(t[0].id, 8);
    ck_assert_uint_eq(t[1].id, 5);
    for (int i = 0; i < 2; i++) {
        ck_assert_uint_eq(t[i].dtype, KILN_DTYPE_FLOAT32);
        ck_assert_uint_eq(t[i].rank, 1);
        ck_assert_int_eq(t[i].shape[0], 2);
        ck_assert_uint_eq(t[i].bytes, 8);
        ck_assert_uint_eq((uintptr_t) t[i].data % 16, 0); /* aligned, unlike the message */
    }
    const float *xw = t[1].data, *y = t[0].data;
    ck_assert_float_eq(xw[0], -0.75f); /* 1*0.5 - 2 + 3*0.25 */
    ck_assert_float_eq(xw[1], -1.5f);  /* 4*0.5 - 5 + 6*0.25 */
    ck_assert_float_eq_tol(y[0], 1 / (1 + expf(-0.25f)), 1e-6);
    ck_assert_float_eq_tol(y[1], 1 / (1 + expf(0.5f)), 1e-6);
    kiln_tensors_free(t);

    /* A second step reads kept var 5; int results come back too. */
    struct kiln_node more[3];
    more[0] = node(9, KILN_OP_CAST);
    set_in(&more[0], 1, (uint64_t[]){5});
    more[0].has |= KILN_NODE_DTYPE;
    more[0].dtype = KILN_DTYPE_INT64;
    more[1] = node(10, KILN_OP_INDEX);
    set_source(&more[1], KILN_DTYPE_INT32, 2, (int64_t[]){2, 2});
    more[1].has |= KILN_NODE_DIM;
    more[1].dim = 1;
    more[2] = node(11, KILN_OP_LT);
    set_in(&more[2], 2, (uint64_t[]){5, 5});
    ck_assert_int_eq(kiln_submit(c, more, 3, (uint64_t[]){9, 10, 11}, 3, &step, &e), KILN_OK);
    ck_assert_uint_eq(step, 2);
    rc = kiln_fetch(c, (uint64_t[]){9, 10, 11}, 3, KILN_FETCH_WAIT_DEFAULT, &t, &e);
    ck_assert_msg(rc == KILN_OK, "fetch: %s: %s", kiln_err_name(rc), e.message);
    const int64_t *i64 = t[0].data;
    ck_assert_int_eq(i64[0], 0); /* -0.75 truncates to 0 */
    ck_assert_int_eq(i64[1], -1);
    const int32_t *i32 = t[1].data;
    ck_assert_uint_eq(t[1].rank, 2);
    ck_assert_int_eq(i32[0], 0);
    ck_assert_int_eq(i32[1], 1);
    ck_assert_int_eq(i32[2], 0);
    ck_assert_int_eq(i32[3], 1);
    ck_assert_uint_eq(t[2].dtype, KILN_DTYPE_BOOL);
    ck_assert_uint_eq(t[2].bytes, 2);
    ck_assert_int_eq(((const unsigned char *) t[2].data)[0], 0);
    kiln_tensors_free(t);

    /* An empty fetch is a round trip with nothing to free. */
    t = (struct kiln_tensor *) 1;
    ck_assert_int_eq(kiln_fetch(c, NULL, 0, 0, &t, &e), KILN_OK);
    ck_assert_ptr_null(t);
    kiln_close(c);
    ck_assert_int_eq(fixture_daemon_stop(&d), 0);
}
END_TEST

static void refused(kiln_conn *c, const struct kiln_node *g, size_t n, int code, const char *field,
                    int64_t at)
{
    struct kiln_error e;
    uint64_t step = 77;
    int rc = kiln_submit(c, g, n, NULL, 0, &step, &e);
    ck_assert_msg(rc == code, "want %s, got %s: %s", kiln_err_name(code), kiln_err_name(rc),
                  rc ? e.message : "");
    ck_assert_int_eq(e.code, code);
    ck_assert_str_eq(e.field, field);
    ck_assert_int_eq(e.node, at);
    ck_assert_str_ne(e.message, "");
    ck_assert_uint_eq(step, 77); /* untouched on failure */
}

START_TEST(refused_graph_names_the_node)
{
    struct fixture_daemon d;
    start(&d, NULL);
    kiln_conn *c = connect_ok(&d);
    struct kiln_node g[8];
    size_t n = example_graph(g);

    /* The daemon's refusals: an input nobody defined, a field the op
     * does not take. */
    g[6].in[1] = 99;
    refused(c, g, n, KILN_ENOTFOUND, "body.nodes[6].in[1]", 6);
    g[6].in[1] = 6;
    g[7].has |= KILN_NODE_KEEPDIMS;
    refused(c, g, n, KILN_EFIELD, "body.nodes[7].keepdims", 7);
    g[7].has &= ~(uint32_t) KILN_NODE_KEEPDIMS;
    g[3].in[1] = 2; /* mul of [2,3] and [3] */
    struct kiln_error e;
    ck_assert_int_ne(kiln_submit(c, g, n, NULL, 0, NULL, &e), KILN_OK);
    ck_assert_int_eq(e.node, 3);
    assert_contains(e.field, "body.nodes[3]");
    g[3].in[1] = 3;

    /* The library's own: never sent, named the same way. */
    g[2].id = 0;
    refused(c, g, n, KILN_EARG, "body.nodes[2].id", 2);
    g[2].id = 3;
    g[4].dims[0] = KILN_MAX_RANK;
    refused(c, g, n, KILN_EARG, "body.nodes[4].dims[0]", 4);
    g[4].dims[0] = 1;
    g[1].shape[0] = -1;
    refused(c, g, n, KILN_EARG, "body.nodes[1].shape[0]", 1);
    g[1].shape[0] = 3;
    g[5].has |= 1u << 24;
    refused(c, g, n, KILN_EARG, "body.nodes[5]", 5);
    g[5].has &= ~(1u << 24);
    g[0].data = NULL;
    refused(c, g, n, KILN_EARG, "body.nodes[0].data", 0);
    g[0].data = x_data;
    struct kiln_node r = node(1, KILN_OP_REINDEX);
    r.has |= KILN_NODE_EXPRS;
    r.nexprs = 1;
    refused(c, &r, 1, KILN_EARG, "body.nodes[0].exprs[0]", 0); /* NULL string */
    ck_assert_int_eq(kiln_submit(c, NULL, 1, NULL, 0, NULL, &e), KILN_EARG);
    ck_assert_int_eq(kiln_submit(c, g, 0, NULL, 0, NULL, &e), KILN_EARG);
    ck_assert_int_eq(kiln_submit(c, g, n, (uint64_t[]){5, 0}, 2, NULL, &e), KILN_EARG);
    ck_assert_str_eq(e.field, "keep");

    /* None of that changed the session: the graph now runs as step 1. */
    uint64_t step = 0;
    ck_assert_int_eq(kiln_submit(c, g, n, (uint64_t[]){8}, 1, &step, &e), KILN_OK);
    ck_assert_uint_eq(step, 1);
    kiln_close(c);
    ck_assert_int_eq(fixture_daemon_stop(&d), 0);
}
END_TEST

/* The lowered ops through libkiln: their fields reach the daemon, and
 * lists over their bound are refused before anything is sent. */
START_TEST(lowered_ops)
{
    struct fixture_daemon d;
    start(&d, NULL);
    kiln_conn *c = connect_ok(&d);
    static const float x[6] = {1, 2, 3, 4, 5, 6}; /* [[1, 2, 3], [4, 5, 6]] */
    struct kiln_node g[6];
    g[0] = node(1, KILN_OP_ARRAY);
    set_source(&g[0], KILN_DTYPE_FLOAT32, 2, (int64_t[]){2, 3});
    g[0].has |= KILN_NODE_DATA;
    g[0].data = x;
    g[0].data_len = sizeof(x);
    g[1] = node(2, KILN_OP_TRANSPOSE); /* [[1, 4], [2, 5], [3, 6]] */
    set_in(&g[1], 1, (uint64_t[]){1});
    g[1].has |= KILN_NODE_DIMS;
    g[1].ndims = 2;
    g[1].dims[0] = 1, g[1].dims[1] = 0;
    g[2] = node(3, KILN_OP_SLICE); /* [::-2, 1:] = [[6], [4]] */
    set_in(&g[2], 1, (uint64_t[]){2});
    g[2].has |= KILN_NODE_STARTS | KILN_NODE_STEPS;
    g[2].nstarts = g[2].nsteps = 2;
    g[2].starts[0] = INT64_MAX, g[2].starts[1] = 1;
    g[2].steps[0] = -2, g[2].steps[1] = 1;
    g[3] = node(4, KILN_OP_FLIP); /* [[4], [6]] */
    set_in(&g[3], 1, (uint64_t[]){3});
    g[3].has |= KILN_NODE_DIMS;
    g[3].ndims = 1;
    g[4] = node(5, KILN_OP_CONCAT); /* [[6, 4], [4, 6]] */
    set_in(&g[4], 2, (uint64_t[]){3, 4});
    g[4].has |= KILN_NODE_DIM;
    g[4].dim = 1;
    g[5] = node(6, KILN_OP_PAD); /* [[-0.5, -0.5, -0.5], [6, 4, -0.5]] */
    set_in(&g[5], 1, (uint64_t[]){5});
    g[5].has |= KILN_NODE_PADS | KILN_NODE_VALUE;
    g[5].npads = 4;
    g[5].pads[0] = 1, g[5].pads[1] = -1, g[5].pads[2] = 0, g[5].pads[3] = 1;
    g[5].value = (struct kiln_number){.is_float = true, .f = -0.5};
    struct kiln_error e;
    int rc = kiln_submit(c, g, 6, (uint64_t[]){6}, 1, NULL, &e);
    ck_assert_msg(rc == KILN_OK, "submit: %s: %s", kiln_err_name(rc), e.message);
    struct kiln_tensor *t = NULL;
    ck_assert_int_eq(kiln_fetch(c, (uint64_t[]){6}, 1, 5000, &t, &e), KILN_OK);
    ck_assert_uint_eq(t[0].rank, 2);
    ck_assert_int_eq(t[0].shape[0], 2);
    ck_assert_int_eq(t[0].shape[1], 3);
    static const float want[6] = {-0.5f, -0.5f, -0.5f, 6, 4, -0.5f};
    ck_assert_mem_eq(t[0].data, want, sizeof(want));
    kiln_tensors_free(t);
    ck_assert_int_eq(kiln_release(c, (uint64_t[]){6}, 1, NULL, NULL, &e), KILN_OK);
    uint64_t cancelled = 99; /* nothing is queued: CANCEL drops nothing */
    ck_assert_int_eq(kiln_cancel(c, &cancelled, &e), KILN_OK);
    ck_assert_uint_eq(cancelled, 0);
    ck_assert_int_eq(kiln_cancel(NULL, NULL, &e), KILN_EARG);

    /* The daemon's refusal names the node and the field ... */
    g[2].steps[1] = 0;
    refused(c, g, 6, KILN_EVALUE, "body.nodes[2].steps[1]", 2);
    g[2].steps[1] = 1;
    /* ... and so does the library's own, for lists over their bound. */
    g[2].nstarts = KILN_MAX_RANK + 1;
    refused(c, g, 6, KILN_EARG, "body.nodes[2].starts", 2);
    g[2].nstarts = 2;
    g[5].npads = 2 * KILN_MAX_RANK + 1;
    refused(c, g, 6, KILN_EARG, "body.nodes[5].pads", 5);
    kiln_close(c);
    ck_assert_int_eq(fixture_daemon_stop(&d), 0);
}
END_TEST

START_TEST(fetch_unknown_var)
{
    struct fixture_daemon d;
    start(&d, NULL);
    kiln_conn *c = connect_ok(&d);
    struct kiln_node g[8];
    size_t n = example_graph(g);
    struct kiln_error e;
    ck_assert_int_eq(kiln_submit(c, g, n, (uint64_t[]){8}, 1, NULL, &e), KILN_OK);
    struct kiln_tensor *t = (struct kiln_tensor *) 1;
    /* 7 was a temporary; 1234 never existed. */
    const uint64_t cases[][2] = {{8, 7}, {8, 1234}};
    for (size_t i = 0; i < 2; i++) {
        ck_assert_int_eq(kiln_fetch(c, cases[i], 2, 1000, &t, &e), KILN_ENOTFOUND);
        ck_assert_ptr_null(t);
        ck_assert_str_eq(e.field, "body.vars[1]");
        ck_assert_int_eq(e.node, -1);
    }
    ck_assert_int_eq(kiln_fetch(c, (uint64_t[]){0}, 1, 1000, &t, &e), KILN_EARG);
    ck_assert_int_eq(kiln_fetch(c, (uint64_t[]){8}, 1, KILN_FETCH_WAIT_MAX + 1, &t, &e), KILN_EARG);
    ck_assert_str_eq(e.field, "timeout_ms");
    ck_assert_int_eq(kiln_fetch(c, (uint64_t[]){8}, 1, -2, &t, &e), KILN_EARG);
    ck_assert_int_eq(kiln_fetch(c, (uint64_t[]){8}, 1, 0, NULL, &e), KILN_EARG);
    /* The connection is still good. */
    ck_assert_int_eq(kiln_fetch(c, (uint64_t[]){8}, 1, 5000, &t, &e), KILN_OK);
    kiln_tensors_free(t);
    kiln_close(c);
    ck_assert_int_eq(fixture_daemon_stop(&d), 0);
}
END_TEST

START_TEST(release_drops_vars)
{
    struct fixture_daemon d;
    start(&d, NULL);
    kiln_conn *c = connect_ok(&d);
    struct kiln_node g[8];
    size_t n = example_graph(g);
    struct kiln_error e;
    ck_assert_int_eq(kiln_submit(c, g, n, (uint64_t[]){1, 5, 8}, 3, NULL, &e), KILN_OK);
    uint64_t released = 9, unknown = 9;
    int rc = kiln_release(c, (uint64_t[]){1, 5, 99, 0}, 4, &released, &unknown, &e);
    ck_assert_msg(rc == KILN_OK, "release: %s: %s", kiln_err_name(rc), e.message);
    ck_assert_uint_eq(released, 2);
    ck_assert_uint_eq(unknown, 2);
    struct kiln_tensor *t;
    ck_assert_int_eq(kiln_fetch(c, (uint64_t[]){5}, 1, 1000, &t, &e), KILN_ENOTFOUND);
    ck_assert_int_eq(kiln_fetch(c, (uint64_t[]){8}, 1, 5000, &t, &e), KILN_OK);
    kiln_tensors_free(t);
    /* Idempotent, and the ids may be reused once released. */
    ck_assert_int_eq(kiln_release(c, (uint64_t[]){1, 5}, 2, &released, NULL, &e), KILN_OK);
    ck_assert_uint_eq(released, 0);
    ck_assert_int_eq(kiln_release(c, NULL, 0, NULL, NULL, &e), KILN_OK);
    ck_assert_int_eq(kiln_release(c, NULL, 1, NULL, NULL, &e), KILN_EARG);
    struct kiln_status st;
    ck_assert_int_eq(kiln_release(c, (uint64_t[]){8}, 1, NULL, NULL, &e), KILN_OK);
    ck_assert_int_eq(kiln_status(c, &st, &e), KILN_OK);
    ck_assert_uint_eq(st.mem_in_use, 0);
    ck_assert_int_eq(kiln_submit(c, g, n, (uint64_t[]){5}, 1, NULL, &e), KILN_OK);
    kiln_close(c);
    ck_assert_int_eq(fixture_daemon_stop(&d), 0);
}
END_TEST

START_TEST(message_limit)
{
    /* A daemon with small messages: its HELLO says so, a FETCH whose
     * values would not fit is refused with LIMIT, and a SUBMIT that would
     * not fit is never sent (the daemon would drop the connection). */
    struct fixture_daemon d;
    const char *extra[] = {"--max-message", "4K", NULL};
    start(&d, extra);
    kiln_conn *c = connect_ok(&d);
    ck_assert_uint_eq(kiln_conn_session(c)->limits.message_bytes, 4096);
    struct kiln_node big = node(1, KILN_OP_CONST);
    set_source(&big, KILN_DTYPE_FLOAT32, 1, (int64_t[]){2048}); /* 8 KiB of values */
    big.has |= KILN_NODE_VALUE;
    big.value = (struct kiln_number){.is_float = true, .f = 0.5};
    struct kiln_error e;
    ck_assert_int_eq(kiln_submit(c, &big, 1, (uint64_t[]){1}, 1, NULL, &e), KILN_OK);
    struct kiln_tensor *t = (struct kiln_tensor *) 1;
    int rc = kiln_fetch(c, (uint64_t[]){1}, 1, 5000, &t, &e);
    ck_assert_msg(rc == KILN_ELIMIT, "fetch: %s: %s", kiln_err_name(rc), e.message);
    ck_assert_ptr_null(t);
    ck_assert_str_eq(e.field, "body.vars");
    assert_contains(e.message, "4096");

    static unsigned char bytes[8192];
    struct kiln_node arr = node(2, KILN_OP_ARRAY);
    set_source(&arr, KILN_DTYPE_UINT8, 1, (int64_t[]){sizeof(bytes)});
    arr.has |= KILN_NODE_DATA;
    arr.data = bytes;
    arr.data_len = sizeof(bytes);
    ck_assert_int_eq(kiln_submit(c, &arr, 1, NULL, 0, NULL, &e), KILN_EARG);
    assert_contains(e.message, "message_bytes 4096");
    /* Nodes that each fit but together do not. */
    struct kiln_node two[2] = {arr, arr};
    two[0].data_len = two[1].data_len = 3000;
    two[0].shape[0] = two[1].shape[0] = 3000;
    two[1].id = 3;
    ck_assert_int_eq(kiln_submit(c, two, 2, NULL, 0, NULL, &e), KILN_EARG);
    ck_assert_str_eq(e.field, "body.nodes");
    assert_contains(e.message, "does not fit in one message (message_bytes 4096");
    ck_assert_int_eq(kiln_ping(c, &e), KILN_OK); /* nothing was sent */
    two[1].data_len = two[1].shape[0] = 500;     /* 3.5 KB in all: fits */
    ck_assert_int_eq(kiln_submit(c, two, 2, NULL, 0, NULL, &e), KILN_OK);
    kiln_close(c);
    ck_assert_int_eq(fixture_daemon_stop(&d), 0);
}
END_TEST

static Suite *graph_suite(void)
{
    Suite *s = suite_create("clients");
    TCase *off = tcase_create("offline");
    tcase_add_test(off, dtype_table);
    tcase_add_test(off, null_connection);
    suite_add_tcase(s, off);
    fixture_require_kilnd();
    TCase *live = tcase_create("graph");
    tcase_set_timeout(live, 30);
    tcase_add_test(live, submit_fetch_round_trip);
    tcase_add_test(live, refused_graph_names_the_node);
    tcase_add_test(live, lowered_ops);
    tcase_add_test(live, fetch_unknown_var);
    tcase_add_test(live, release_drops_vars);
    tcase_add_test(live, message_limit);
    suite_add_tcase(s, live);
    return s;
}

int main(void)
{
    return fixture_run_suite(graph_suite());
}
