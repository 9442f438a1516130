/* test_ir.c: the IR constructors — shape and dtype inference, every
 * refusal with the right code and field, and a graph left untouched by
 * any refused call. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "kiln_err.h"

#include "refused.h"

static int f32(int rank, const int64_t *shape)
{
    struct ir_scalar one = {.f = 1.0};
    int n = ir_add_const(&g, IR_DTYPE_FLOAT32, rank, shape, one, &err);
    ck_assert_int_ge(n, 0);
    return n;
}

START_TEST(shapes_and_limits)
{
    int64_t s[KILN_LIMIT_RANK + 1] = {2, 3, 4};
    ck_assert_int_eq(ir_shape_numel(3, s, &err), 24);
    ck_assert_int_eq(ir_shape_numel(0, s, &err), 1);
    int64_t z[2] = {0, KILN_LIMIT_DIM};
    ck_assert_int_eq(ir_shape_numel(2, z, &err), 0);
    int64_t big[2] = {INT64_C(1) << 30, INT64_C(1) << 11};
    ck_assert_int_eq(ir_shape_numel(2, big, &err), -1);
    ck_assert_int_eq(err.code, KILN_ELIMIT);
    int64_t at[2] = {INT64_C(1) << 30, INT64_C(1) << 10};
    ck_assert_int_eq(ir_shape_numel(2, at, &err), INT64_C(1) << 40);
    int64_t wrap[4] = {INT64_C(1) << 40, INT64_C(1) << 40, INT64_C(1) << 40, 8};
    ck_assert_int_eq(ir_shape_numel(4, wrap, &err), -1); /* no overflow on the way */
    int64_t neg[1] = {-1};
    ck_assert_int_eq(ir_shape_numel(1, neg, &err), -1);
    ck_assert_int_eq(err.code, KILN_EVALUE);
    int64_t huge[1] = {KILN_LIMIT_DIM + 1};
    ck_assert_int_eq(ir_shape_numel(1, huge, &err), -1);
    ck_assert_int_eq(ir_shape_numel(KILN_LIMIT_RANK + 1, s, &err), -1);
    ck_assert_int_eq(err.code, KILN_ELIMIT);
}
END_TEST

START_TEST(sources)
{
    int64_t s[2] = {2, 3};
    float data[6] = {1, 2, 3, 4, 5, 6};
    int a = ir_add_array(&g, IR_DTYPE_FLOAT32, 2, s, data, sizeof(data), &err);
    ck_assert_int_eq(a, 0);
    data[0] = 99; /* the graph keeps its own copy */
    ck_assert_float_eq(((const float *) g.nodes[a].attr.array.data)[0], 1.0f);
    ck_assert_int_eq(g.nodes[a].numel, 6);
    REFUSED(ir_add_array(&g, IR_DTYPE_FLOAT32, 2, s, data, 20, &err), KILN_EVALUE, "data");
    REFUSED(ir_add_array(&g, IR_DTYPE_INVALID, 2, s, data, 24, &err), KILN_EVALUE, "dtype");
    REFUSED(ir_add_array(&g, (enum ir_dtype) 42, 2, s, data, 24, &err), KILN_EVALUE, "dtype");

    struct ir_scalar v = {.i = 300};
    REFUSED(ir_add_const(&g, IR_DTYPE_UINT8, 2, s, v, &err), KILN_EVALUE, "value");
    v.i = 255;
    ck_assert_int_ge(ir_add_const(&g, IR_DTYPE_UINT8, 2, s, v, &err), 0);
    v.i = 2;
    REFUSED(ir_add_const(&g, IR_DTYPE_BOOL, 0, s, v, &err), KILN_EVALUE, "value");

    ck_assert_int_ge(ir_add_index(&g, IR_DTYPE_INT64, 2, s, 1, &err), 0);
    REFUSED(ir_add_index(&g, IR_DTYPE_INT64, 2, s, 2, &err), KILN_EVALUE, "dim");
    REFUSED(ir_add_index(&g, IR_DTYPE_FLOAT32, 2, s, 0, &err), KILN_EVALUE, "dtype");
    int64_t wide[1] = {(INT64_C(1) << 31) + 1};
    REFUSED(ir_add_index(&g, IR_DTYPE_INT32, 1, wide, 0, &err), KILN_EVALUE, "dtype");

    ck_assert_int_ge(ir_add_random(&g, IR_DTYPE_FLOAT64, 2, s, IR_RANDOM_NORMAL, 7, 0, &err), 0);
    REFUSED(ir_add_random(&g, IR_DTYPE_INT32, 2, s, IR_RANDOM_UNIFORM, 7, 0, &err), KILN_EVALUE,
            "dtype");
    REFUSED(ir_add_random(&g, IR_DTYPE_FLOAT32, 2, s, (enum ir_random_dist) 9, 7, 0, &err),
            KILN_EVALUE, "dist");

    int e0 = ir_add_extern(&g, IR_DTYPE_INT32, 2, s, &err);
    int e1 = ir_add_extern(&g, IR_DTYPE_INT32, 0, s, &err);
    ck_assert_uint_eq(g.nodes[e0].attr.ext.slot, 0);
    ck_assert_uint_eq(g.nodes[e1].attr.ext.slot, 1);
    ck_assert_uint_eq(g.nextern, 2);
}
END_TEST

START_TEST(elementwise)
{
    int64_t s[2] = {2, 3}, t[2] = {3, 2};
    int a = f32(2, s), b = f32(2, s), c = f32(2, t);
    int x = ir_add_binary(&g, IR_OP_ADD, a, b, &err);
    ck_assert_int_ge(x, 0);
    ck_assert_int_eq(g.nodes[x].dtype, IR_DTYPE_FLOAT32);
    ck_assert_int_eq(g.nodes[x].nin, 2);
    int lt = ir_add_binary(&g, IR_OP_LT, a, b, &err);
    ck_assert_int_eq(g.nodes[lt].dtype, IR_DTYPE_BOOL);
    REFUSED(ir_add_binary(&g, IR_OP_ADD, a, c, &err), KILN_EVALUE, "in[1]");
    REFUSED(ir_add_binary(&g, IR_OP_ADD, a, 999, &err), KILN_EVALUE, "in[1]");
    REFUSED(ir_add_binary(&g, IR_OP_ADD, -1, a, &err), KILN_EVALUE, "in[0]");
    REFUSED(ir_add_binary(&g, IR_OP_EXP, a, b, &err), KILN_EVALUE, "op");
    REFUSED(ir_add_binary(&g, IR_OP_SHL, a, b, &err), KILN_ETYPE, "in[0]");
    REFUSED(ir_add_binary(&g, IR_OP_BITWISE_AND, a, b, &err), KILN_ETYPE, "in[0]");
    REFUSED(ir_add_binary(&g, IR_OP_ADD, lt, lt, &err), KILN_ETYPE, "in[0]");
    int i = ir_add_cast(&g, a, IR_DTYPE_INT32, &err);
    ck_assert_int_eq(g.nodes[i].dtype, IR_DTYPE_INT32);
    REFUSED(ir_add_binary(&g, IR_OP_ADD, a, i, &err), KILN_ETYPE, "in[1]");
    REFUSED(ir_add_binary(&g, IR_OP_DIV, i, i, &err), KILN_ETYPE, "in[0]");
    ck_assert_int_ge(ir_add_binary(&g, IR_OP_SHR, i, i, &err), 0);
    ck_assert_int_ge(ir_add_binary(&g, IR_OP_FLOOR_DIV, i, i, &err), 0);

    ck_assert_int_ge(ir_add_unary(&g, IR_OP_EXP, a, &err), 0);
    REFUSED(ir_add_unary(&g, IR_OP_EXP, i, &err), KILN_ETYPE, "in[0]");
    REFUSED(ir_add_unary(&g, IR_OP_NEG, lt, &err), KILN_ETYPE, "in[0]");
    REFUSED(ir_add_unary(&g, IR_OP_BITWISE_NOT, a, &err), KILN_ETYPE, "in[0]");
    REFUSED(ir_add_unary(&g, IR_OP_ADD, a, &err), KILN_EVALUE, "op");
    int ln = ir_add_unary(&g, IR_OP_LOGICAL_NOT, a, &err);
    ck_assert_int_eq(g.nodes[ln].dtype, IR_DTYPE_BOOL);
    REFUSED(ir_add_cast(&g, a, (enum ir_dtype) 8, &err), KILN_EVALUE, "dtype");

    int w = ir_add_where(&g, lt, a, b, &err);
    ck_assert_int_eq(g.nodes[w].dtype, IR_DTYPE_FLOAT32);
    REFUSED(ir_add_where(&g, lt, a, i, &err), KILN_ETYPE, "in[2]");
    REFUSED(ir_add_where(&g, lt, a, c, &err), KILN_EVALUE, "in[2]");
    int64_t one[1] = {6};
    int r = ir_add_reshape(&g, a, 1, one, &err);
    ck_assert_int_eq(g.nodes[r].numel, 6);
    one[0] = 7;
    REFUSED(ir_add_reshape(&g, a, 1, one, &err), KILN_EVALUE, "shape");
}
END_TEST

START_TEST(broadcast_and_reduce)
{
    int64_t s[2] = {3, 1};
    int a = f32(2, s);
    int64_t out[3] = {2, 3, 4};
    int b = ir_add_broadcast(&g, a, 3, out, 1u << 0, &err); /* new dim 0; 3->3, 1->4 */
    ck_assert_int_ge(b, 0);
    ck_assert_int_eq(g.nodes[b].numel, 24);
    REFUSED(ir_add_broadcast(&g, a, 3, out, 1u << 2, &err), KILN_EVALUE, "shape");
    REFUSED(ir_add_broadcast(&g, a, 3, out, 3u, &err), KILN_EVALUE, "dims");
    REFUSED(ir_add_broadcast(&g, a, 1, out, 0, &err), KILN_EVALUE, "shape");
    REFUSED(ir_add_broadcast(&g, a, 3, out, 1u << 5, &err), KILN_EVALUE, "dims");

    int r = ir_add_reduce(&g, IR_REDUCE_ADD, b, (1u << 0) | (1u << 2), false, &err);
    ck_assert_int_eq(g.nodes[r].rank, 1);
    ck_assert_int_eq(g.nodes[r].shape[0], 3);
    int k = ir_add_reduce(&g, IR_REDUCE_MAX, b, 1u << 1, true, &err);
    ck_assert_int_eq(g.nodes[k].rank, 3);
    ck_assert_int_eq(g.nodes[k].shape[1], 1);
    ck_assert_int_eq(g.nodes[k].shape[2], 4);
    int all = ir_add_reduce(&g, IR_REDUCE_MEAN, b, 7u, false, &err);
    ck_assert_int_eq(g.nodes[all].rank, 0);
    ck_assert_int_eq(g.nodes[all].numel, 1);
    REFUSED(ir_add_reduce(&g, IR_REDUCE_ADD, b, 1u << 3, false, &err), KILN_EVALUE, "dims");
    REFUSED(ir_add_reduce(&g, (enum ir_reduce_op) 9, b, 1, false, &err), KILN_EVALUE, "op");
    int i = ir_add_cast(&g, b, IR_DTYPE_INT32, &err);
    REFUSED(ir_add_reduce(&g, IR_REDUCE_MEAN, i, 1, false, &err), KILN_ETYPE, "in[0]");
    int bl = ir_add_cast(&g, b, IR_DTYPE_BOOL, &err);
    REFUSED(ir_add_reduce(&g, IR_REDUCE_ADD, bl, 1, false, &err), KILN_ETYPE, "in[0]");
}
END_TEST

static struct ir_reindex_text text(int n, const char *const *exprs)
{
    struct ir_reindex_text t = {.nexprs = n};
    for (int d = 0; d < n; d++) {
        t.exprs[d] = exprs[d];
        t.expr_len[d] = strlen(exprs[d]);
    }
    return t;
}

START_TEST(reindex)
{
    /* Jittor's conv2d im2col: x[N,C,H,W] -> [N,C,H-2,W-2,3,3] */
    int64_t xs[4] = {1, 2, 5, 5};
    int x = f32(4, xs);
    int64_t ys[6] = {1, 2, 3, 3, 3, 3};
    const char *e[4] = {"i0", "i1", "i2+i4", "i3+i5"};
    struct ir_reindex_text t = text(4, e);
    int r = ir_add_reindex(&g, x, 6, ys, &t, &err);
    ck_assert_int_ge(r, 0);
    ck_assert_int_eq(g.nodes[r].attr.reindex->nexprs, 4);
    ck_assert_int_eq(g.nodes[r].numel, 162);

    /* wrong expression count, a bad expression, a name out of scope */
    struct ir_reindex_text t3 = text(3, e);
    REFUSED(ir_add_reindex(&g, x, 6, ys, &t3, &err), KILN_EVALUE, "exprs");
    const char *bad[4] = {"i0", "i1 +", "i2", "i3"};
    struct ir_reindex_text tb = text(4, bad);
    REFUSED(ir_add_reindex(&g, x, 6, ys, &tb, &err), KILN_EVALUE, "exprs[1]");
    const char *scope[4] = {"i0", "i1", "i6", "i3"};
    struct ir_reindex_text ts = text(4, scope);
    REFUSED(ir_add_reindex(&g, x, 6, ys, &ts, &err), KILN_EVALUE, "exprs[2]");

    /* overflow conditions and their errors */
    const char *conds[2] = {"i2 < 1", "i9 > 0"};
    size_t lens[2] = {6, 6};
    struct ir_reindex_text tc = text(4, e);
    tc.conds = conds;
    tc.cond_len = lens;
    tc.nconds = 1;
    ck_assert_int_ge(ir_add_reindex(&g, x, 6, ys, &tc, &err), 0);
    tc.nconds = 2;
    REFUSED(ir_add_reindex(&g, x, 6, ys, &tc, &err), KILN_EVALUE, "conds[1]");
    tc.nconds = IR_MAX_CONDS + 1;
    REFUSED(ir_add_reindex(&g, x, 6, ys, &tc, &err), KILN_ELIMIT, "conds");

    /* a gather through an integer extra input */
    int64_t is[1] = {3};
    int idx = ir_add_index(&g, IR_DTYPE_INT32, 1, is, 0, &err);
    int64_t vs[1] = {10};
    int v = f32(1, vs);
    const char *ge[1] = {"@e0(i0)"};
    struct ir_reindex_text tg = text(1, ge);
    int extras[1] = {idx};
    tg.nextras = 1;
    tg.extras = extras;
    ck_assert_int_ge(ir_add_reindex(&g, v, 1, is, &tg, &err), 0);
    extras[0] = v; /* floats cannot index */
    REFUSED(ir_add_reindex(&g, v, 1, is, &tg, &err), KILN_ETYPE, "in[1]");
    const char *ge2[1] = {"@e0(i0, 1)"};
    struct ir_reindex_text tg2 = text(1, ge2);
    extras[0] = idx;
    tg2.nextras = 1;
    tg2.extras = extras;
    REFUSED(ir_add_reindex(&g, v, 1, is, &tg2, &err), KILN_EVALUE, "exprs[0]");

    /* overflow value must fit the dtype */
    int i8 = ir_add_cast(&g, v, IR_DTYPE_INT8, &err);
    const char *id[1] = {"i0"};
    struct ir_reindex_text to = text(1, id);
    to.overflow.i = 200;
    REFUSED(ir_add_reindex(&g, i8, 1, vs, &to, &err), KILN_EVALUE, "overflow_value");

    /* reindex_reduce: transposed direction, expressions per output dim */
    int64_t os[2] = {1, 2};
    const char *re[2] = {"i0", "i1"};
    struct ir_reindex_text tr = text(2, re);
    int rr = ir_add_reindex_reduce(&g, IR_REDUCE_ADD, x, 2, os, &tr, &err);
    ck_assert_int_ge(rr, 0);
    ck_assert_int_eq(g.nodes[rr].attr.reindex->op, IR_REDUCE_ADD);
    REFUSED(ir_add_reindex_reduce(&g, IR_REDUCE_MEAN, x, 2, os, &tr, &err), KILN_EVALUE, "op");
    struct ir_reindex_text tr4 = text(4, e);
    REFUSED(ir_add_reindex_reduce(&g, IR_REDUCE_ADD, x, 2, os, &tr4, &err), KILN_EVALUE,
            "exprs");
}
END_TEST

START_TEST(many_nodes_and_names)
{
    int64_t s[1] = {4};
    int a = f32(1, s);
    for (int i = 0; i < 5000; i++)
        a = ir_add_unary(&g, IR_OP_TANH, a, &err);
    ck_assert_int_eq(a, 5000);
    ck_assert_str_eq(ir_op_name(IR_OP_REINDEX_REDUCE), "reindex_reduce");
    ck_assert_str_eq(ir_op_name(IR_OP_ADD), "add");
    ck_assert_ptr_null(ir_op_name(0));
    ck_assert_ptr_null(ir_op_name(7));
    ck_assert_ptr_null(ir_op_name(IR_OP_END));
    int64_t st[KILN_LIMIT_RANK];
    int64_t s3[3] = {2, 3, 4};
    int b = f32(3, s3);
    ir_node_strides(&g.nodes[b], st);
    ck_assert_int_eq(st[0], 12);
    ck_assert_int_eq(st[1], 4);
    ck_assert_int_eq(st[2], 1);
    struct ir_graph z;
    memset(&z, 0, sizeof(z));
    ir_graph_fini(&z);
    ir_graph_fini(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kernels-ir");
    TCase *tc = tcase_create("ir");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, shapes_and_limits);
    tcase_add_test(tc, sources);
    tcase_add_test(tc, elementwise);
    tcase_add_test(tc, broadcast_and_reduce);
    tcase_add_test(tc, reindex);
    tcase_add_test(tc, many_nodes_and_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
