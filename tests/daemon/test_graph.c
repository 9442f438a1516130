/* test_graph.c: graphs through a real kilnd — SUBMIT, steps that build on
 * kept vars, FETCH (immediate and deferred), every kind of refused graph
 * naming its node, failures while running, memory accounting, and the
 * end of a session while its step runs. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TIMEOUT_MS 10000

START_TEST(steps_keep_and_fetch)
{
    struct th_daemon d;
    th_prepare(&d);
    th_start(&d, NULL);
    nng_socket s = th_connect(d.addr, TIMEOUT_MS);
    uint64_t sid = th_hello(s, "graph");

    float a[6] = {1, -2, 3, -4, 5, -6};
    int64_t shape[2] = {2, 3};
    struct proto_node nodes[4];
    nodes[0] = th_node(1, 1 /* array */);
    th_set_dtype(&nodes[0], 6);
    th_set_shape(&nodes[0], 2, shape);
    nodes[0].has |= PROTO_NODE_DATA;
    nodes[0].data = a;
    nodes[0].data_len = sizeof(a);
    nodes[1] = th_node(2, 2 /* const */);
    th_set_dtype(&nodes[1], 6);
    th_set_shape(&nodes[1], 2, shape);
    nodes[1].has |= PROTO_NODE_VALUE;
    nodes[1].value = (struct proto_number){.is_float = true, .f = 0.5};
    nodes[2] = th_node(3, 50 /* mul */);
    th_set_in(&nodes[2], 2, (uint64_t[]){1, 2});
    nodes[3] = th_node(4, 98 /* reduce */);
    th_set_in(&nodes[3], 1, (uint64_t[]){3});
    nodes[3].has |= PROTO_NODE_REDUCE_OP | PROTO_NODE_DIMS;
    nodes[3].reduce_op = 1;
    nodes[3].ndims = 1;
    nodes[3].dims[0] = 1;
    uint64_t step = 0;
    struct proto_error err;
    ck_assert_int_eq(th_submit(s, sid, nodes, 4, (uint64_t[]){3, 4}, 2, &err, &step), KILN_OK);
    ck_assert_uint_eq(step, 1);

    float got[6];
    ck_assert_int_eq(th_fetch(s, sid, 3, got, sizeof(got), 5000, NULL), KILN_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(got[i], a[i] * 0.5f);
    ck_assert_int_eq(th_fetch(s, sid, 4, got, sizeof(got), 5000, NULL), KILN_OK);
    ck_assert_float_eq(got[0], 1.0f);  /* (1 - 2 + 3) / 2 */
    ck_assert_float_eq(got[1], -2.5f); /* (-4 + 5 - 6) / 2 */

    /* A second step reads kept var 3. */
    struct proto_node more[2];
    more[0] = th_node(5, 18 /* exp */);
    th_set_in(&more[0], 1, (uint64_t[]){3});
    more[1] = th_node(6, 48 /* add */);
    th_set_in(&more[1], 2, (uint64_t[]){5, 3});
    ck_assert_int_eq(th_submit(s, sid, more, 2, (uint64_t[]){6}, 1, &err, &step), KILN_OK);
    ck_assert_uint_eq(step, 2);
    ck_assert_int_eq(th_fetch(s, sid, 6, got, sizeof(got), 5000, NULL), KILN_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq_tol(got[i], expf(a[i] * 0.5f) + a[i] * 0.5f, 1e-5);
    /* Temporaries are not kept. */
    ck_assert_int_eq(th_fetch(s, sid, 5, got, sizeof(got), 5000, &err), KILN_ENOTFOUND);

    /* Memory: kept vars are charged (their data, plus 512 bytes each for
     * the record: SESS_VAR_OVERHEAD), finished steps are not, and RELEASE
     * returns it all. */
    struct proto_status st;
    th_status(s, &st);
    ck_assert_uint_eq(st.mem_in_use, 24 + 8 + 24 + 3 * 512);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_release(&sb, sid, (uint64_t[]){3, 4, 6}, 3), KILN_OK);
    struct proto_reply rep;
    ck_assert_int_eq(th_call(s, &sb, PROTO_RELEASE, &rep), KILN_OK);
    ck_assert_uint_eq(rep.u.release.released, 3);
    proto_reply_fini(&rep);
    msgpack_sbuffer_destroy(&sb);
    th_status(s, &st);
    ck_assert_uint_eq(st.mem_in_use, 0);
    ck_assert_uint_eq(st.steps_done, 2);
    ck_assert_uint_eq(st.steps_failed, 0);
    ck_assert_uint_eq(st.steps_running + st.steps_queued, 0);
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

/* One refused graph: code, field and node as the spec says. */
static void refused(nng_socket s, uint64_t sid, struct proto_node *nodes, uint32_t n,
                    const uint64_t *keep, uint32_t nkeep, int code, const char *field, int64_t at)
{
    struct proto_error err;
    int got = th_submit(s, sid, nodes, n, keep, nkeep, &err, NULL);
    ck_assert_msg(got == code, "expected %s, got %s: %s", kiln_err_name(code), kiln_err_name(got),
                  err.message);
    ck_assert_str_eq(err.field, field);
    ck_assert_int_eq(err.node, at);
}

START_TEST(invalid_graphs_name_the_node)
{
    struct th_daemon d;
    th_prepare(&d);
    th_start(&d, NULL);
    nng_socket s = th_connect(d.addr, TIMEOUT_MS);
    uint64_t sid = th_hello(s, "invalid");
    int64_t sh[1] = {4}, sh2[1] = {5};
    struct proto_node c4 = th_node(1, 2);
    th_set_dtype(&c4, 6);
    th_set_shape(&c4, 1, sh);
    c4.has |= PROTO_NODE_VALUE;
    c4.value = (struct proto_number){.is_float = true, .f = 1};
    struct proto_node c5 = c4;
    c5.id = 2;
    th_set_shape(&c5, 1, sh2);

    struct proto_node g[3];
    /* unknown op */
    g[0] = c4;
    g[1] = th_node(9, 77);
    th_set_in(&g[1], 1, (uint64_t[]){1});
    refused(s, sid, g, 2, NULL, 0, KILN_EVALUE, "body.nodes[1].op", 1);
    /* wrong arity */
    g[1] = th_node(9, 48);
    th_set_in(&g[1], 1, (uint64_t[]){1});
    refused(s, sid, g, 2, NULL, 0, KILN_EVALUE, "body.nodes[1].in", 1);
    /* shape mismatch */
    g[1] = c5;
    g[2] = th_node(9, 48);
    th_set_in(&g[2], 2, (uint64_t[]){1, 2});
    refused(s, sid, g, 3, NULL, 0, KILN_EVALUE, "body.nodes[2].in[1]", 2);
    /* cycle: 1 reads 2, 2 reads 1 */
    g[0] = th_node(1, 18);
    th_set_in(&g[0], 1, (uint64_t[]){2});
    g[1] = th_node(2, 18);
    th_set_in(&g[1], 1, (uint64_t[]){1});
    refused(s, sid, g, 2, NULL, 0, KILN_EVALUE, "body.nodes[0].in[0]", 0);
    /* dangling reference */
    g[0] = c4;
    g[1] = th_node(9, 18);
    th_set_in(&g[1], 1, (uint64_t[]){1234});
    refused(s, sid, g, 2, NULL, 0, KILN_ENOTFOUND, "body.nodes[1].in[0]", 1);
    /* a field the op does not take, and a missing one */
    g[1] = th_node(9, 18);
    th_set_in(&g[1], 1, (uint64_t[]){1});
    g[1].has |= PROTO_NODE_DIM;
    refused(s, sid, g, 2, NULL, 0, KILN_EFIELD, "body.nodes[1].dim", 1);
    g[1] = th_node(9, 98);
    th_set_in(&g[1], 1, (uint64_t[]){1});
    g[1].has |= PROTO_NODE_DIMS;
    refused(s, sid, g, 2, NULL, 0, KILN_EMISSING, "body.nodes[1].reduce_op", 1);
    /* an element count over the limit (each dim within its own) */
    int64_t huge[2] = {INT64_C(1) << 30, INT64_C(1) << 20};
    g[0] = c4;
    th_set_shape(&g[0], 2, huge);
    refused(s, sid, g, 1, NULL, 0, KILN_ELIMIT, "body.nodes[0].shape", 0);
    /* a malformed index expression, and one naming something undefined */
    g[0] = c4;
    g[1] = th_node(9, 97);
    th_set_in(&g[1], 1, (uint64_t[]){1});
    th_set_shape(&g[1], 1, sh);
    g[1].has |= PROTO_NODE_EXPRS;
    g[1].nexprs = 1;
    g[1].exprs[0] = (struct proto_str){"i0 +", 4};
    refused(s, sid, g, 2, NULL, 0, KILN_EVALUE, "body.nodes[1].exprs[0]", 1);
    g[1].exprs[0] = (struct proto_str){"i0 + yshape3", 12};
    refused(s, sid, g, 2, NULL, 0, KILN_EVALUE, "body.nodes[1].exprs[0]", 1);
    /* a float value for an int dtype; a declared dtype that is wrong */
    g[0] = c4;
    th_set_dtype(&g[0], 4);
    refused(s, sid, g, 1, NULL, 0, KILN_ETYPE, "body.nodes[0].value", 0);
    g[0] = c4;
    g[1] = th_node(9, 57 /* eq */);
    th_set_in(&g[1], 2, (uint64_t[]){1, 1});
    th_set_dtype(&g[1], 6);
    refused(s, sid, g, 2, NULL, 0, KILN_EVALUE, "body.nodes[1].dtype", 1);
    /* keep names something undefined; an id defined twice */
    g[0] = c4;
    refused(s, sid, g, 1, (uint64_t[]){5}, 1, KILN_EVALUE, "body.keep[0]", -1);
    g[1] = c4;
    refused(s, sid, g, 2, NULL, 0, KILN_EVALUE, "body.nodes[1].id", 1);

    /* None of that left anything behind: the session keeps nothing. */
    struct proto_status st;
    th_status(s, &st);
    ck_assert_uint_eq(st.mem_in_use, 0);
    g[0] = c4;
    ck_assert_int_eq(th_submit(s, sid, g, 1, (uint64_t[]){1}, 1, NULL, NULL), KILN_OK);
    /* and a kept id cannot be defined again until released: the node that
     * redefines it is named, not an earlier node that reads the kept var */
    refused(s, sid, g, 1, NULL, 0, KILN_EVALUE, "body.nodes[0].id", 0);
    g[0] = th_node(7, 18);
    th_set_in(&g[0], 1, (uint64_t[]){1});
    g[1] = c4; /* id 1 again */
    refused(s, sid, g, 2, NULL, 0, KILN_EVALUE, "body.nodes[1].id", 1);
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

/* A step big enough that FETCH has to wait for it. */
static struct proto_node big_random(uint64_t id, int64_t n)
{
    struct proto_node r = th_node(id, 4);
    th_set_dtype(&r, 7);
    th_set_shape(&r, 1, &n);
    r.has |= PROTO_NODE_DIST | PROTO_NODE_SEED;
    r.dist = 1;
    r.seed = 42;
    return r;
}

START_TEST(deferred_fetch_timeout_and_failure)
{
    struct th_daemon d;
    th_prepare(&d);
    /* The interpreter: these checks need steps that reliably take a
     * while, which fused JIT kernels do not. */
    const char *flags[] = {"--memory-budget", "64M", "--executor", "interp", NULL};
    th_start(&d, flags);
    nng_socket s = th_connect(d.addr, 30000);
    uint64_t sid = th_hello(s, "slow");

    /* 4M uniforms reduced to their mean: FETCH waits for the step. */
    struct proto_node g[2];
    g[0] = big_random(1, INT64_C(1) << 22);
    g[1] = th_node(2, 98);
    th_set_in(&g[1], 1, (uint64_t[]){1});
    g[1].has |= PROTO_NODE_REDUCE_OP | PROTO_NODE_DIMS;
    g[1].reduce_op = 5;
    g[1].ndims = 1;
    ck_assert_int_eq(th_submit(s, sid, g, 2, (uint64_t[]){2}, 1, NULL, NULL), KILN_OK);
    double mean = 0;
    ck_assert_int_eq(th_fetch(s, sid, 2, &mean, sizeof(mean), 30000, NULL), KILN_OK);
    ck_assert_double_eq_tol(mean, 0.5, 0.01);

    /* Too short a wait: NOTREADY; the value is still there afterwards. */
    g[0] = big_random(3, INT64_C(1) << 22);
    g[1].id = 4;
    g[1].in[0] = 3;
    ck_assert_int_eq(th_submit(s, sid, g, 2, (uint64_t[]){4}, 1, NULL, NULL), KILN_OK);
    struct proto_error err;
    ck_assert_int_eq(th_fetch(s, sid, 4, &mean, sizeof(mean), 0, &err), KILN_ENOTREADY);
    ck_assert_int_eq(th_fetch(s, sid, 4, &mean, sizeof(mean), 30000, NULL), KILN_OK);

    /* A step needing more than the memory budget fails, with EXEC saying so,
     * instead of the daemon growing past its budget. */
    ck_assert_int_eq(th_fetch(s, sid, 2, &mean, sizeof(mean), 30000, NULL), KILN_OK);
    g[0] = big_random(5, INT64_C(1) << 24); /* 128 MiB of float64 */
    ck_assert_int_eq(th_submit(s, sid, g, 1, (uint64_t[]){5}, 1, NULL, NULL), KILN_OK);
    ck_assert_int_eq(th_fetch(s, sid, 5, &mean, sizeof(mean), 30000, &err), KILN_EEXEC);
    ck_assert_ptr_nonnull(strstr(err.message, "quota"));
    ck_assert_int_eq(err.node, 0); /* the client's node, not the daemon's graph index */
    /* A step reading the failed var fails too, with EXEC naming it. */
    g[1] = th_node(6, 18);
    th_set_in(&g[1], 1, (uint64_t[]){5});
    ck_assert_int_eq(th_submit(s, sid, &g[1], 1, (uint64_t[]){6}, 1, NULL, NULL), KILN_OK);
    ck_assert_int_eq(th_fetch(s, sid, 6, &mean, sizeof(mean), 30000, &err), KILN_EEXEC);
    ck_assert_ptr_nonnull(strstr(err.message, "5"));
    struct proto_status st;
    th_status(s, &st);
    ck_assert_uint_eq(st.steps_failed, 2); /* over the quota, and its dependant */
    ck_assert_uint_eq(st.steps_done, 2);

    /* A session that ends while its step runs: nothing leaks, others go on. */
    g[0] = big_random(7, INT64_C(1) << 22);
    ck_assert_int_eq(th_submit(s, sid, g, 1, NULL, 0, NULL, NULL), KILN_OK);
    ck_assert_int_eq(th_simple(s, PROTO_BYE, sid, NULL), KILN_OK);
    uint64_t again = th_hello(s, "again");
    ck_assert_int_eq(th_simple(s, PROTO_PING, again, NULL), KILN_OK);
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

START_TEST(admission_limits_and_busy_sessions)
{
    struct th_daemon d;
    th_prepare(&d);
    /* The interpreter, for steps slow enough to fill the queue. */
    const char *flags[] = {"--idle-timeout", "1", "--executor", "interp", NULL};
    th_start(&d, flags);
    nng_socket s = th_connect(d.addr, 60000);
    uint64_t sid = th_hello(s, "eager");

    /* A session waiting on its own work is not idle: a FETCH that outlasts
     * the idle timeout still gets its value. */
    struct proto_node g[2];
    g[0] = big_random(1, INT64_C(1) << 24);
    g[1] = th_node(2, 98);
    th_set_in(&g[1], 1, (uint64_t[]){1});
    g[1].has |= PROTO_NODE_REDUCE_OP | PROTO_NODE_DIMS;
    g[1].reduce_op = 5;
    g[1].ndims = 1;
    struct proto_node slow[3];
    memcpy(slow, g, sizeof(g));
    slow[2] = th_node(3, 18);
    th_set_in(&slow[2], 1, (uint64_t[]){2});
    for (int i = 0; i < 5; i++) { /* five in a row: well over the idle second */
        for (int k = 0; k < 3; k++)
            slow[k].id = (uint64_t) (10 * i + k + 1);
        slow[1].in[0] = slow[0].id;
        slow[2].in[0] = slow[1].id;
        ck_assert_int_eq(th_submit(s, sid, slow, 3, (uint64_t[]){slow[2].id}, 1, NULL, NULL),
                         KILN_OK);
    }
    double v = 0;
    ck_assert_int_eq(th_fetch(s, sid, 43, &v, sizeof(v), 60000, NULL), KILN_OK);
    ck_assert_double_eq_tol(v, exp(0.5), 0.02);
    ck_assert(!th_log_contains(&d, "reason=\"idle\""));

    /* Submitting faster than steps run: the queue is bounded. */
    int code = KILN_OK;
    struct proto_error err;
    int n = 0;
    for (; n < 200 && code == KILN_OK; n++) {
        g[0].id = (uint64_t) (1000 + 2 * n);
        g[1].id = (uint64_t) (1001 + 2 * n);
        g[1].in[0] = g[0].id;
        code = th_submit(s, sid, g, 2, NULL, 0, &err, NULL);
    }
    ck_assert_int_eq(code, KILN_EBUSY);
    ck_assert_int_gt(n, 60);
    ck_assert_ptr_nonnull(strstr(err.message, "waiting to run"));
    /* Ending the session drops the queue at once; kilnd stays healthy. */
    ck_assert_int_eq(th_simple(s, PROTO_BYE, sid, NULL), KILN_OK);
    struct proto_status st;
    th_status(s, &st);
    ck_assert_uint_eq(st.sessions, 0);
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        setenv("KILND_PATH", argv[1], 1);
    Suite *su = suite_create("daemon-graph");
    TCase *tc = tcase_create("graph");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, steps_keep_and_fetch);
    tcase_add_test(tc, invalid_graphs_name_the_node);
    tcase_add_test(tc, deferred_fetch_timeout_and_failure);
    tcase_add_test(tc, admission_limits_and_busy_sessions);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
