/* test_merge.c: cross-iteration fusion (daemon/merge.h) through a real
 * kilnd. A chain of small steps queued behind a slow one — each reading
 * the previous step's kept var, a var every step reads, and a RANDOM node
 * of its own, with the previous var RELEASEd while its step is queued —
 * gives the same bytes with --look-ahead 1, 2 and 4, and STATUS counts
 * merged steps only where merging is on. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TIMEOUT_MS 30000
#define STEPS      12
#define LEN        1000
#define SLOW_N     1024

static struct proto_node op2(uint64_t id, uint32_t op, uint64_t a, uint64_t b)
{
    struct proto_node n = th_node(id, op);
    th_set_in(&n, 2, (uint64_t[]){a, b});
    return n;
}

static struct proto_node random_f32(uint64_t id, uint32_t rank, const int64_t *shape,
                                    uint64_t seed)
{
    struct proto_node r = th_node(id, 4);
    th_set_dtype(&r, 6);
    th_set_shape(&r, rank, shape);
    r.has |= PROTO_NODE_DIST | PROTO_NODE_SEED;
    r.dist = 1;
    r.seed = seed;
    return r;
}

static void submit(nng_socket s, uint64_t sid, struct proto_node *g, uint32_t n,
                   const uint64_t *keep, uint32_t nkeep)
{
    struct proto_error err;
    int rc = th_submit(s, sid, g, n, keep, nkeep, &err, NULL);
    ck_assert_msg(rc == KILN_OK, "SUBMIT: %s %s", kiln_err_name(rc), err.message);
}

/* Runs the scenario on a kilnd with `look_ahead`; fills sums (STEPS
 * floats) and last (LEN floats), and returns the STATUS after it. */
static void scenario(const char *look_ahead, float *sums, float *last, struct proto_status *st)
{
    struct th_daemon d;
    th_prepare(&d);
    th_start(&d, (const char *[]){"--look-ahead", look_ahead, NULL});
    nng_socket s = th_connect(d.addr, TIMEOUT_MS);
    uint64_t sid = th_hello(s, "merge");
    static const int64_t vec[1] = {LEN}, sq[2] = {SLOW_N, SLOW_N};
    struct proto_error err;

    /* x (read by every step) and p0, computed and ready. */
    struct proto_node init[2] = {random_f32(1, 1, vec, 11), random_f32(2, 1, vec, 12)};
    submit(s, sid, init, 2, (uint64_t[]){1, 2}, 2);
    float tmp[LEN];
    ck_assert_int_eq(th_fetch(s, sid, 2, tmp, sizeof tmp, TIMEOUT_MS, &err), KILN_OK);

    /* The slow step: the chain queues behind it. */
    struct proto_node slow[8];
    slow[0] = random_f32(10, 2, sq, 3);
    for (uint32_t k = 1; k < 7; k++)
        slow[k] = op2(10 + k, 104, 10 + k - 1, 10);
    slow[7] = th_node(30, 98);
    th_set_in(&slow[7], 1, (uint64_t[]){16});
    th_set_dims(&slow[7], 2, (uint32_t[]){0, 1});
    slow[7].has |= PROTO_NODE_REDUCE_OP;
    slow[7].reduce_op = 1;
    submit(s, sid, slow, 8, (uint64_t[]){30}, 1);

    /* Step i: p_i = tanh(p_{i-1} * x + r_i), s_i = sum(p_i). */
    uint64_t prev = 2;
    for (uint64_t i = 1; i <= STEPS; i++) {
        uint64_t base = 100 * i, p = base + 4, sum = base + 5;
        struct proto_node g[5] = {
            op2(base + 1, 50, prev, 1),
            random_f32(base + 2, 1, vec, 100 + i),
            op2(base + 3, 48, base + 1, base + 2),
            th_node(p, 25),
            th_node(sum, 98),
        };
        th_set_in(&g[3], 1, (uint64_t[]){base + 3});
        th_set_in(&g[4], 1, (uint64_t[]){p});
        th_set_dims(&g[4], 1, (uint32_t[]){0});
        g[4].has |= PROTO_NODE_REDUCE_OP;
        g[4].reduce_op = 1;
        submit(s, sid, g, 5, (uint64_t[]){p, sum}, 2);
        if (prev != 2)
            th_release(s, sid, &prev, 1); /* its step is still queued: it runs anyway */
        prev = p;
    }
    for (uint64_t i = 1; i <= STEPS; i++) {
        int rc = th_fetch(s, sid, 100 * i + 5, &sums[i - 1], sizeof(float), TIMEOUT_MS, &err);
        ck_assert_msg(rc == KILN_OK, "FETCH sum %llu: %s %s", (unsigned long long) i,
                      kiln_err_name(rc), err.message);
    }
    ck_assert_int_eq(th_fetch(s, sid, prev, last, LEN * sizeof(float), TIMEOUT_MS, &err),
                     KILN_OK);
    th_status(s, st);
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}

START_TEST(merged_steps_give_the_same_bytes)
{
    static float sums[3][STEPS], last[3][LEN];
    struct proto_status st[3];
    const char *la[3] = {"1", "2", "4"};
    for (int k = 0; k < 3; k++)
        scenario(la[k], sums[k], last[k], &st[k]);
    ck_assert_uint_eq(st[0].steps_merged, 0);
    for (int k = 1; k < 3; k++) {
        ck_assert_mem_eq(sums[k], sums[0], sizeof sums[0]);
        ck_assert_mem_eq(last[k], last[0], sizeof last[0]);
        ck_assert_uint_eq(st[k].steps_done, st[0].steps_done);
        ck_assert_uint_eq(st[k].steps_failed, 0);
        ck_assert_msg(st[k].steps_merged >= 2, "--look-ahead %s merged %llu steps", la[k],
                      (unsigned long long) st[k].steps_merged);
        ck_assert_uint_le(st[k].steps_merged, st[k].steps_done);
    }
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        setenv("KILND_PATH", argv[1], 1);
    Suite *su = suite_create("daemon-merge");
    TCase *tc = tcase_create("merge");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, merged_steps_give_the_same_bytes);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
