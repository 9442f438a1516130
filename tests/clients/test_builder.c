/* test_builder.c: libkiln's graph builder (kiln_graph) against a real
 * kilnd: every call's node computes what PROTOCOL.md says (sources,
 * element-wise, shapes, reductions, reindex with conditions and extras,
 * the lowered ops, the relays against naive loops, gradients), sticky
 * errors that keep a bad graph from being sent, copies that outlive the
 * caller's buffers, id allocation across threads, and the non-blocking
 * poll.
 *
 * Also the program the valgrind test runs (CK_FORK=no): it leaves
 * nothing behind. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "kiln.h"

#define F32 KILN_DTYPE_FLOAT32
#define I32 KILN_DTYPE_INT32
#define I64 KILN_DTYPE_INT64

static struct fixture_daemon daemon_;
static kiln_conn *conn;

static void daemon_setup(void)
{
    ck_assert_msg(fixture_daemon_start(&daemon_, NULL) == 0, "kilnd did not start");
    struct kiln_connect_opts o = {
        .address = daemon_.address, .timeout_ms = 5000, .client = "builder"};
    struct kiln_error e;
    int rc = kiln_connect(&conn, &o, &e);
    ck_assert_msg(rc == KILN_OK, "connect: %s: %s", kiln_err_name(rc), e.message);
}

static void daemon_teardown(void)
{
    kiln_close(conn);
    conn = NULL;
    fixture_daemon_stop(&daemon_);
}

/* Submit g keeping `ids`, fetch them; the caller frees the result. */
static struct kiln_tensor *run(kiln_graph *g, const uint64_t *ids, size_t n)
{
    struct kiln_error e;
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(kiln_graph_keep(g, ids[i]), KILN_OK);
    int rc = kiln_graph_submit(g, NULL, &e);
    ck_assert_msg(rc == KILN_OK, "submit: %s: %s (%s)", kiln_err_name(rc), e.message, e.field);
    struct kiln_tensor *t = NULL;
    rc = kiln_fetch(conn, ids, n, 10000, &t, &e);
    ck_assert_msg(rc == KILN_OK, "fetch: %s: %s", kiln_err_name(rc), e.message);
    return t;
}

static void assert_floats(const struct kiln_tensor *t, const float *want, size_t n)
{
    ck_assert_uint_eq(t->dtype, F32);
    ck_assert_uint_eq(t->bytes, n * sizeof(float));
    const float *got = t->data;
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-5f * (1 + fabsf(want[i])),
                      "element %zu: got %g, want %g", i, got[i], want[i]);
}

static void assert_shape(const struct kiln_tensor *t, uint32_t rank, const int64_t *shape)
{
    ck_assert_uint_eq(t->rank, rank);
    for (uint32_t i = 0; i < rank; i++)
        ck_assert_int_eq(t->shape[i], shape[i]);
}

static const float x23[6] = {1, -2, 3, -4, 5, -6}; /* a [2,3] input */
static const int64_t s23[2] = {2, 3};

/* ---- values ------------------------------------------------------------ */

START_TEST(sources_and_elementwise)
{
    kiln_graph *g = kiln_graph_new(conn);
    uint64_t x = kiln_graph_array(g, F32, 2, s23, x23, sizeof(x23));
    uint64_t two = kiln_graph_fill(g, F32, 2, s23, 2);
    uint64_t y = kiln_graph_binary(g, KILN_OP_MUL, kiln_graph_unary(g, KILN_OP_ABS, x), two);
    uint64_t i = kiln_graph_cast(g, y, I32);
    uint64_t pos = kiln_graph_binary(g, KILN_OP_GT, x, kiln_graph_fill(g, F32, 2, s23, 0));
    uint64_t w = kiln_graph_where(g, pos, x, kiln_graph_unary(g, KILN_OP_NEG, two));
    uint64_t s = kiln_graph_scalar(g, I64, -7);
    uint64_t c = kiln_graph_const(g, F32, 1, (int64_t[]){2}, kiln_number_int(3));
    struct kiln_tensor *t = run(g, (uint64_t[]){y, i, w, s, c}, 5);
    assert_floats(&t[0], (float[]){2, 4, 6, 8, 10, 12}, 6);
    assert_shape(&t[0], 2, s23);
    ck_assert_uint_eq(t[1].dtype, I32);
    ck_assert_int_eq(((int32_t *) t[1].data)[5], 12);
    assert_floats(&t[2], (float[]){1, -2, 3, -2, 5, -2}, 6);
    ck_assert_uint_eq(t[3].rank, 0);
    ck_assert_int_eq(*(int64_t *) t[3].data, -7);
    assert_floats(&t[4], (float[]){3, 3}, 2);
    kiln_tensors_free(t);
    kiln_graph_free(g);
}
END_TEST

START_TEST(index_and_random)
{
    kiln_graph *g = kiln_graph_new(conn);
    uint64_t ix = kiln_graph_index(g, I32, 2, s23, 1);
    const int64_t n[] = {4096};
    uint64_t r1 = kiln_graph_random(g, F32, 1, n, KILN_DIST_UNIFORM, 7, 0);
    uint64_t r2 = kiln_graph_random(g, F32, 1, n, KILN_DIST_UNIFORM, 7, 0);
    uint64_t r3 = kiln_graph_random(g, F32, 1, n, KILN_DIST_UNIFORM, 7, 1);
    uint64_t mean = kiln_graph_reduce(g, KILN_REDUCE_MEAN, r1, 1, (uint32_t[]){0}, false);
    struct kiln_tensor *t = run(g, (uint64_t[]){ix, r1, r2, r3, mean}, 5);
    const int32_t *iv = t[0].data;
    for (int k = 0; k < 6; k++)
        ck_assert_int_eq(iv[k], k % 3);
    const float *a = t[1].data, *b = t[2].data, *c = t[3].data;
    ck_assert_mem_eq(a, b, t[1].bytes); /* counter-based: same key, same numbers */
    ck_assert_float_eq(a[1], c[0]);     /* offset 1 is the stream shifted by one */
    for (int k = 0; k < 4096; k++)
        ck_assert(a[k] >= 0 && a[k] < 1);
    ck_assert_float_eq_tol(*(float *) t[4].data, 0.5f, 0.03f);
    kiln_tensors_free(t);
    kiln_graph_free(g);
}
END_TEST

START_TEST(shapes_and_reductions)
{
    kiln_graph *g = kiln_graph_new(conn);
    uint64_t x = kiln_graph_array(g, F32, 2, s23, x23, sizeof(x23));
    uint64_t r = kiln_graph_reshape(g, x, 2, (int64_t[]){3, 2});
    uint64_t row = kiln_graph_array(g, F32, 1, (int64_t[]){3}, (float[]){10, 20, 30}, 12);
    uint64_t b = kiln_graph_broadcast_to(g, row, 2, s23, 1, (uint32_t[]){0});
    uint64_t sum = kiln_graph_reduce(g, KILN_REDUCE_ADD, x, 1, (uint32_t[]){1}, false);
    uint64_t max = kiln_graph_reduce(g, KILN_REDUCE_MAX, x, 1, (uint32_t[]){0}, true);
    uint64_t all = kiln_graph_reduce(g, KILN_REDUCE_MEAN, x, 2, (uint32_t[]){0, 1}, false);
    struct kiln_tensor *t = run(g, (uint64_t[]){r, b, sum, max, all}, 5);
    assert_shape(&t[0], 2, (int64_t[]){3, 2});
    assert_floats(&t[0], x23, 6);
    assert_floats(&t[1], (float[]){10, 20, 30, 10, 20, 30}, 6);
    assert_floats(&t[2], (float[]){2, -5}, 2);
    assert_shape(&t[3], 2, (int64_t[]){1, 3});
    assert_floats(&t[3], (float[]){1, 5, 3}, 3);
    ck_assert_uint_eq(t[4].rank, 0);
    assert_floats(&t[4], (float[]){-0.5f}, 1);
    kiln_tensors_free(t);
    kiln_graph_free(g);
}
END_TEST

START_TEST(reindex_with_conds_and_extras)
{
    kiln_graph *g = kiln_graph_new(conn);
    uint64_t x = kiln_graph_array(g, F32, 2, s23, x23, sizeof(x23));
    /* A transpose by hand, and a shift whose first column overflows. */
    struct kiln_reindex tr = {
        .rank = 2, .shape = (int64_t[]){3, 2}, .nexprs = 2, .exprs = (const char *[]){"i1", "i0"}};
    uint64_t t1 = kiln_graph_reindex(g, x, &tr);
    struct kiln_reindex sh = {.rank = 2,
                              .shape = s23,
                              .nexprs = 2,
                              .exprs = (const char *[]){"i0", "i1 - 1"},
                              .has_overflow = true,
                              .overflow_value = kiln_number_float(9.5)};
    uint64_t t2 = kiln_graph_reindex(g, x, &sh);
    /* A condition: drop row 1. */
    struct kiln_reindex cd = {.rank = 2,
                              .shape = s23,
                              .nexprs = 2,
                              .exprs = (const char *[]){"i0", "i1"},
                              .nconds = 1,
                              .conds = (const char *[]){"i0 == 1"}};
    uint64_t t3 = kiln_graph_reindex(g, x, &cd);
    /* A histogram: add each value into the bin an int extra names. */
    uint64_t vals = kiln_graph_array(g, F32, 1, (int64_t[]){4}, (float[]){1, 2, 4, 8}, 16);
    uint64_t bins = kiln_graph_array(g, I32, 1, (int64_t[]){4}, (int32_t[]){2, 0, 2, 1}, 16);
    struct kiln_reindex hist = {.rank = 1,
                                .shape = (int64_t[]){3},
                                .nexprs = 1,
                                .exprs = (const char *[]){"@e0(i0)"},
                                .nextras = 1,
                                .extras = &bins};
    uint64_t h = kiln_graph_reindex_reduce(g, KILN_REDUCE_ADD, vals, &hist);
    struct kiln_tensor *t = run(g, (uint64_t[]){t1, t2, t3, h}, 4);
    assert_floats(&t[0], (float[]){1, -4, -2, 5, 3, -6}, 6);
    assert_floats(&t[1], (float[]){9.5f, 1, -2, 9.5f, -4, 5}, 6);
    assert_floats(&t[2], (float[]){1, -2, 3, 0, 0, 0}, 6);
    assert_floats(&t[3], (float[]){2, 8, 5}, 3);
    kiln_tensors_free(t);
    kiln_graph_free(g);
}
END_TEST

START_TEST(lowered_ops)
{
    kiln_graph *g = kiln_graph_new(conn);
    uint64_t x = kiln_graph_array(g, F32, 2, s23, x23, sizeof(x23));
    uint64_t tr = kiln_graph_transpose(g, x, 2, (uint32_t[]){1, 0});
    uint64_t sl = kiln_graph_slice(g, x, 2, NULL, NULL, (int64_t[]){-1, 2}); /* x[::-1, ::2] */
    uint64_t cc = kiln_graph_concat(g, 2, (uint64_t[]){x, x}, 0);
    struct kiln_number seven = kiln_number_float(7);
    uint64_t pd = kiln_graph_pad(g, x, 4, (int64_t[]){0, 1, 1, -1}, &seven);
    uint64_t p0 = kiln_graph_pad(g, x, 4, (int64_t[]){0, 0, 1, 0}, NULL);
    uint64_t fl = kiln_graph_flip(g, x, 1, (uint32_t[]){1});
    struct kiln_tensor *t = run(g, (uint64_t[]){tr, sl, cc, pd, p0, fl}, 6);
    assert_shape(&t[0], 2, (int64_t[]){3, 2});
    assert_floats(&t[0], (float[]){1, -4, -2, 5, 3, -6}, 6);
    assert_shape(&t[1], 2, (int64_t[]){2, 2});
    assert_floats(&t[1], (float[]){-4, -6, 1, 3}, 4);
    assert_shape(&t[2], 2, (int64_t[]){4, 3});
    assert_floats(&t[2], (float[]){1, -2, 3, -4, 5, -6, 1, -2, 3, -4, 5, -6}, 12);
    assert_shape(&t[3], 2, (int64_t[]){3, 3});
    assert_floats(&t[3], (float[]){7, 1, -2, 7, -4, 5, 7, 7, 7}, 9);
    assert_floats(&t[4], (float[]){0, 1, -2, 3, 0, -4, 5, -6}, 8);
    assert_floats(&t[5], (float[]){3, -2, 1, -6, 5, -4}, 6);
    kiln_tensors_free(t);
    kiln_graph_free(g);
}
END_TEST

START_TEST(gradients)
{
    kiln_graph *g = kiln_graph_new(conn);
    uint64_t x = kiln_graph_array(g, F32, 2, s23, x23, sizeof(x23));
    uint64_t cube = kiln_graph_binary(g, KILN_OP_MUL, x, kiln_graph_binary(g, KILN_OP_MUL, x, x));
    uint64_t loss = kiln_graph_reduce(g, KILN_REDUCE_ADD, cube, 2, (uint32_t[]){0, 1}, false);
    uint64_t d1 = kiln_graph_grad(g, loss, x, 0); /* 3 x^2 */
    uint64_t d2 = kiln_graph_grad(
        g, kiln_graph_reduce(g, KILN_REDUCE_ADD, d1, 2, (uint32_t[]){0, 1}, false), x, 0); /* 6 x */
    /* With a seed: d sum(seed * cube) / dx = seed * 3 x^2. */
    uint64_t seed = kiln_graph_fill(g, F32, 2, s23, 0.5);
    uint64_t ds = kiln_graph_grad(g, cube, x, seed);
    /* Nothing flows through stop_grad: zeros (and a warning, not an error). */
    uint64_t stopped = kiln_graph_reduce(g, KILN_REDUCE_ADD, kiln_graph_stop_grad(g, x), 2,
                                         (uint32_t[]){0, 1}, false);
    uint64_t dz = kiln_graph_grad(g, stopped, x, 0);
    struct kiln_tensor *t = run(g, (uint64_t[]){d1, d2, ds, dz}, 4);
    /* The zero gradient came with a warning naming its target. */
    size_t nw, count, at = 0;
    const struct kiln_warning *w = kiln_conn_warnings(conn, &nw);
    const struct kiln_node *nodes = kiln_graph_nodes(g, &count);
    while (at < count && nodes[at].id != dz)
        at++;
    char field[64];
    snprintf(field, sizeof(field), "body.nodes[%zu].in[1]", at);
    ck_assert_uint_eq(nw, 1);
    ck_assert_int_eq(w[0].node, (int64_t) at);
    ck_assert_str_eq(w[0].field, field);
    ck_assert_int_gt(strlen(w[0].message), 0);
    float want1[6], want2[6], wants[6];
    for (int k = 0; k < 6; k++) {
        want1[k] = 3 * x23[k] * x23[k];
        want2[k] = 6 * x23[k];
        wants[k] = 1.5f * x23[k] * x23[k];
    }
    assert_floats(&t[0], want1, 6);
    assert_shape(&t[0], 2, s23);
    assert_floats(&t[1], want2, 6);
    assert_floats(&t[2], wants, 6);
    assert_floats(&t[3], (float[]){0, 0, 0, 0, 0, 0}, 6);
    kiln_tensors_free(t);
    kiln_graph_free(g);
}
END_TEST

/* ---- relays ------------------------------------------------------------ */

/* Each element within 1e-4 of the largest |want|, relative (how
 * PROTOCOL.md measures a relay's error). */
static void assert_close(const struct kiln_tensor *t, const float *want, size_t n)
{
    ck_assert_uint_eq(t->dtype, F32);
    ck_assert_uint_eq(t->bytes, n * sizeof(float));
    double scale = 1e-30;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    const float *got = t->data;
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs((double) got[i] - want[i]) <= 1e-4 * scale,
                      "element %zu: got %.7g, want %.7g", i, got[i], want[i]);
}

/* Small values that are not all alike: -1 .. 1 in steps of 1/8. */
static void pattern(float *v, size_t n, unsigned salt)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float) ((int) ((i * 37 + salt * 11) % 17) - 8) / 8;
}

/* conv2d and both gradients by their definition: every (output pixel,
 * tap) pair that lands inside x adds one product. x is [CN, CC, CH, CW],
 * w [CO, CC / groups, KH, KW]. */
enum { CN = 2, CC = 4, CH = 5, CW = 6, CO = 6, KH = 3, KW = 2 };
enum { NX = CN * CC * CH * CW, NW_MAX = CO * CC * KH * KW, NY_MAX = CN * CO * CH * 2 * CW * 2 };

static int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d)
{
    return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

static void conv_naive(const struct kiln_conv *c, int64_t oh, int64_t ow, const float *x,
                       const float *w, const float *dy, float *y, float *dx, float *dw)
{
    const int64_t cg = CC / c->groups, og = CO / c->groups;
    memset(y, 0, sizeof(float) * CN * CO * oh * ow);
    memset(dx, 0, sizeof(float) * NX);
    memset(dw, 0, sizeof(float) * CO * cg * KH * KW);
    for (int64_t n = 0; n < CN; n++)
        for (int64_t o = 0; o < CO; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++)
                    for (int64_t ci = 0; ci < cg; ci++)
                        for (int64_t kh = 0; kh < KH; kh++)
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t h = i * c->stride[0] - c->padding[0] + kh * c->dilation[0];
                                int64_t v = j * c->stride[1] - c->padding[1] + kw * c->dilation[1];
                                if (h < 0 || h >= CH || v < 0 || v >= CW)
                                    continue;
                                int64_t xi = ((n * CC + o / og * cg + ci) * CH + h) * CW + v;
                                int64_t wi = ((o * cg + ci) * KH + kh) * KW + kw;
                                int64_t yi = ((n * CO + o) * oh + i) * ow + j;
                                y[yi] += x[xi] * w[wi];
                                dx[xi] += dy[yi] * w[wi];
                                dw[wi] += x[xi] * dy[yi];
                            }
}

START_TEST(relays)
{
    kiln_graph *g = kiln_graph_new(conn);
    /* matmul: a [2,3] @ b^T with b [4,3], and a batch of two a^T @ a. */
    float b43[12], want_ab[8], a223[12], want_ata[18];
    pattern(b43, 12, 1);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            want_ab[i * 4 + j] = 0;
            for (int k = 0; k < 3; k++)
                want_ab[i * 4 + j] += x23[i * 3 + k] * b43[j * 3 + k];
        }
    memcpy(a223, x23, sizeof(x23));
    pattern(a223 + 6, 6, 2);
    for (int bt = 0; bt < 2; bt++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                float *o = &want_ata[bt * 9 + i * 3 + j];
                *o = 0;
                for (int k = 0; k < 2; k++)
                    *o += a223[bt * 6 + k * 3 + i] * a223[bt * 6 + k * 3 + j];
            }
    uint64_t a = kiln_graph_array(g, F32, 2, s23, x23, sizeof(x23));
    uint64_t b = kiln_graph_array(g, F32, 2, (int64_t[]){4, 3}, b43, sizeof(b43));
    uint64_t ab = kiln_graph_matmul(g, a, b, false, true);
    uint64_t a3 = kiln_graph_array(g, F32, 3, (int64_t[]){2, 2, 3}, a223, sizeof(a223));
    uint64_t ata = kiln_graph_matmul(g, a3, a3, true, false);

    /* conv2d with stride, padding, dilation and two groups, and its two
     * gradients at dy; then the defaults (a NULL kiln_conv: one group). */
    struct kiln_conv cv = {{2, 1}, {1, 2}, {1, 2}, 2};
    int64_t oh = conv_out(CH, KH, 2, 1, 1), ow = conv_out(CW, KW, 1, 2, 2);
    ck_assert_int_eq(oh, 3);
    ck_assert_int_eq(ow, 8);
    struct kiln_conv dflt = kiln_conv_default();
    int64_t oh0 = conv_out(CH, KH, 1, 0, 1), ow0 = conv_out(CW, KW, 1, 0, 1);
    int64_t ny = CN * CO * oh * ow, ny0 = CN * CO * oh0 * ow0, nw = CO * (CC / 2) * KH * KW;
    float *xv = malloc(sizeof(float) * (3 * NX + 3 * NW_MAX + 4 * NY_MAX));
    ck_assert_ptr_nonnull(xv);
    float *dxv = xv + NX, *scratch = dxv + NX, *wv = scratch + NX, *dwv = wv + NW_MAX;
    float *w1 = dwv + NW_MAX, *scratch_w = w1 + NW_MAX, *dyv = scratch_w + NW_MAX;
    float *yv = dyv + NY_MAX, *y0 = yv + NY_MAX, *dy0 = y0 + NY_MAX;
    pattern(xv, NX, 3);
    pattern(wv, (size_t) nw, 4);
    pattern(w1, NW_MAX, 5);
    pattern(dyv, (size_t) ny, 6);
    memset(dy0, 0, sizeof(float) * (size_t) ny0);
    conv_naive(&cv, oh, ow, xv, wv, dyv, yv, dxv, dwv);
    conv_naive(&dflt, oh0, ow0, xv, w1, dy0, y0, scratch, scratch_w);
    uint64_t x = kiln_graph_array(g, F32, 4, (int64_t[]){CN, CC, CH, CW}, xv, NX * sizeof(float));
    uint64_t w = kiln_graph_array(g, F32, 4, (int64_t[]){CO, CC / 2, KH, KW}, wv,
                                  (size_t) nw * sizeof(float));
    uint64_t dy =
        kiln_graph_array(g, F32, 4, (int64_t[]){CN, CO, oh, ow}, dyv, (size_t) ny * sizeof(float));
    uint64_t y = kiln_graph_conv2d(g, x, w, &cv);
    uint64_t dx = kiln_graph_conv2d_bwd_data(g, dy, w, (int64_t[]){CN, CC, CH, CW}, &cv);
    uint64_t dw = kiln_graph_conv2d_bwd_weight(g, x, dy, (int64_t[]){CO, CC / 2, KH, KW}, &cv);
    uint64_t w1v =
        kiln_graph_array(g, F32, 4, (int64_t[]){CO, CC, KH, KW}, w1, NW_MAX * sizeof(float));
    uint64_t yd = kiln_graph_conv2d(g, x, w1v, NULL);
    struct kiln_tensor *t = run(g, (uint64_t[]){ab, ata, y, dx, dw, yd}, 6);
    assert_shape(&t[0], 2, (int64_t[]){2, 4});
    assert_close(&t[0], want_ab, 8);
    assert_shape(&t[1], 3, (int64_t[]){2, 3, 3});
    assert_close(&t[1], want_ata, 18);
    assert_shape(&t[2], 4, (int64_t[]){CN, CO, oh, ow});
    assert_close(&t[2], yv, (size_t) ny);
    assert_shape(&t[3], 4, (int64_t[]){CN, CC, CH, CW});
    assert_close(&t[3], dxv, NX);
    assert_shape(&t[4], 4, (int64_t[]){CO, CC / 2, KH, KW});
    assert_close(&t[4], dwv, (size_t) nw);
    assert_shape(&t[5], 4, (int64_t[]){CN, CO, oh0, ow0});
    assert_close(&t[5], y0, (size_t) ny0);
    kiln_tensors_free(t);
    /* What the builder put on the nodes, as the wire will carry it. */
    size_t count;
    const struct kiln_node *nodes = kiln_graph_nodes(g, &count);
    const struct kiln_node *m = NULL, *cn = NULL, *cd = NULL;
    for (size_t i = 0; i < count; i++) {
        if (nodes[i].id == ab)
            m = &nodes[i];
        if (nodes[i].id == y)
            cn = &nodes[i];
        if (nodes[i].id == yd)
            cd = &nodes[i];
    }
    ck_assert(m != NULL && cn != NULL && cd != NULL);
    ck_assert_uint_eq(m->op, KILN_OP_MATMUL);
    ck_assert(m->has & KILN_NODE_TRANS);
    ck_assert(m->ntrans == 2 && m->trans[0] == 0 && m->trans[1] == 1);
    ck_assert_uint_eq(cn->op, KILN_OP_CONV2D);
    ck_assert_uint_eq(cn->has & (KILN_NODE_STRIDE | KILN_NODE_PADDING | KILN_NODE_DILATION |
                                 KILN_NODE_GROUPS | KILN_NODE_SHAPE),
                      KILN_NODE_STRIDE | KILN_NODE_PADDING | KILN_NODE_DILATION | KILN_NODE_GROUPS);
    ck_assert(cn->stride[0] == 2 && cn->padding[1] == 2 && cn->dilation[1] == 2 && cn->groups == 2);
    ck_assert_uint_eq(cd->has, KILN_NODE_IN); /* defaults: nothing sent */
    free(xv);
    kiln_graph_free(g);
}
END_TEST

/* A relay's attribute the daemon refuses comes back naming the field;
 * what the builder cannot copy fails before anything is sent. */
START_TEST(relay_errors)
{
    kiln_graph *g = kiln_graph_new(conn);
    uint64_t x = kiln_graph_fill(g, F32, 4, (int64_t[]){1, 2, 3, 3}, 1);
    uint64_t w = kiln_graph_fill(g, F32, 4, (int64_t[]){2, 2, 1, 1}, 1);
    struct kiln_conv cv = kiln_conv_default();
    cv.groups = 0;
    uint64_t y = kiln_graph_conv2d(g, x, w, &cv);
    ck_assert_uint_ne(y, 0);
    kiln_graph_keep(g, y);
    struct kiln_error e;
    int rc = kiln_graph_submit(g, NULL, &e);
    ck_assert_msg(rc == KILN_EVALUE, "submit: %s: %s", kiln_err_name(rc), e.message);
    ck_assert_int_eq(e.node, 2);
    ck_assert_str_eq(e.field, "body.nodes[2].groups");
    /* A zero stride, likewise, by its index. */
    kiln_graph_reset(g);
    x = kiln_graph_fill(g, F32, 4, (int64_t[]){1, 2, 3, 3}, 1);
    w = kiln_graph_fill(g, F32, 4, (int64_t[]){2, 2, 1, 1}, 1);
    cv = kiln_conv_default();
    cv.stride[1] = 0;
    kiln_graph_keep(g, kiln_graph_conv2d(g, x, w, &cv));
    ck_assert_int_ne(kiln_graph_submit(g, NULL, &e), KILN_OK);
    ck_assert_msg(strncmp(e.field, "body.nodes[2].stride", 20) == 0, "field %s", e.field);
    /* matmul's operands must fit: named as in[1]. */
    kiln_graph_reset(g);
    uint64_t a = kiln_graph_fill(g, F32, 2, s23, 1);
    kiln_graph_keep(g, kiln_graph_matmul(g, a, a, false, false));
    ck_assert_int_ne(kiln_graph_submit(g, NULL, &e), KILN_OK);
    ck_assert_str_eq(e.field, "body.nodes[1].in[1]");
    /* A NULL shape: the builder's own KILN_EARG, naming the argument. */
    kiln_graph_reset(g);
    x = kiln_graph_fill(g, F32, 4, (int64_t[]){1, 2, 3, 3}, 1);
    ck_assert_uint_eq(kiln_graph_conv2d_bwd_data(g, x, x, NULL, NULL), 0);
    ck_assert_int_eq(kiln_graph_error(g, &e), KILN_EARG);
    ck_assert_str_eq(e.field, "conv2d_bwd_data");
    ck_assert_msg(strstr(e.message, "x_shape") != NULL, "%s", e.message);
    ck_assert_int_eq(kiln_graph_submit(g, NULL, &e), KILN_EARG);
    kiln_graph_free(g);
}
END_TEST

/* ---- checks, errors, memory -------------------------------------------- */

START_TEST(expect_checks_on_the_daemon)
{
    kiln_graph *g = kiln_graph_new(conn);
    uint64_t x = kiln_graph_array(g, F32, 2, s23, x23, sizeof(x23));
    uint64_t s = kiln_graph_reduce(g, KILN_REDUCE_ADD, x, 1, (uint32_t[]){1}, false);
    ck_assert_int_eq(kiln_graph_expect(g, s, F32, 1, (int64_t[]){2}), KILN_OK);
    uint64_t bad = kiln_graph_unary(g, KILN_OP_EXP, x);
    ck_assert_int_eq(kiln_graph_expect(g, bad, 0, 2, (int64_t[]){3, 2}), KILN_OK);
    kiln_graph_keep(g, s);
    struct kiln_error e;
    int rc = kiln_graph_submit(g, NULL, &e);
    ck_assert_int_ne(rc, KILN_OK); /* the daemon infers [2,3] for node 2 */
    ck_assert_int_eq(e.node, 2);
    ck_assert_msg(strstr(e.field, "body.nodes[2]") != NULL, "field %s", e.field);
    /* A source's own dtype or shape is not a check: refused here. */
    kiln_graph_reset(g);
    x = kiln_graph_array(g, F32, 2, s23, x23, sizeof(x23));
    ck_assert_int_eq(kiln_graph_expect(g, x, I32, -1, NULL), KILN_EARG);
    kiln_graph_free(g);
}
END_TEST

START_TEST(sticky_errors_send_nothing)
{
    kiln_graph *g = kiln_graph_new(conn);
    uint64_t x = kiln_graph_array(g, F32, 2, s23, x23, sizeof(x23));
    ck_assert_uint_ne(x, 0);
    ck_assert_uint_eq(kiln_graph_unary(g, KILN_OP_ADD, x), 0); /* add is binary */
    struct kiln_error e;
    ck_assert_int_eq(kiln_graph_error(g, &e), KILN_EARG);
    ck_assert_int_eq(e.code, KILN_EARG);
    ck_assert_int_eq(e.node, 1);
    ck_assert_str_eq(e.field, "unary");
    ck_assert_msg(strstr(e.message, "op 48") != NULL, "%s", e.message);
    /* Later calls fail quietly and keep the first error. */
    ck_assert_uint_eq(kiln_graph_binary(g, KILN_OP_ADD, x, x), 0);
    ck_assert_uint_eq(kiln_graph_reshape(g, 0, 1, (int64_t[]){6}), 0);
    ck_assert_int_eq(kiln_graph_keep(g, x), KILN_EARG);
    size_t n;
    kiln_graph_nodes(g, &n);
    ck_assert_uint_eq(n, 1);
    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(kiln_graph_submit(g, NULL, &e), KILN_EARG);
    ck_assert_str_eq(e.field, "unary");
    /* Nothing was sent: the first step the daemon sees is number 1. */
    kiln_graph_reset(g);
    ck_assert_int_eq(kiln_graph_error(g, NULL), KILN_OK);
    x = kiln_graph_scalar(g, F32, 1);
    kiln_graph_keep(g, x);
    uint64_t step = 0;
    ck_assert_int_eq(kiln_graph_submit(g, &step, &e), KILN_OK);
    ck_assert_uint_eq(step, 1);

    kiln_graph_free(g);
    ck_assert_ptr_null(kiln_graph_new(NULL));
    kiln_graph_free(NULL);
    ck_assert_int_eq(kiln_graph_submit(NULL, NULL, &e), KILN_EARG);
}
END_TEST

/* Each bad call on a fresh graph, so each error is the first. */
START_TEST(argument_faults_name_their_call)
{
    kiln_graph *g = kiln_graph_new(conn);
    struct kiln_error e;
#define FAULT(call, want)                                                                          \
    do {                                                                                           \
        kiln_graph_reset(g);                                                                       \
        uint64_t x = kiln_graph_scalar(g, F32, 1);                                                 \
        (void) x;                                                                                  \
        ck_assert_uint_eq((call), 0);                                                              \
        ck_assert_int_eq(kiln_graph_error(g, &e), KILN_EARG);                                      \
        ck_assert_msg(strcmp(e.field, want) == 0, "%s: field %s (%s)", #call, e.field, e.message); \
        ck_assert_int_eq(e.node, 1);                                                               \
    } while (0)
    FAULT(kiln_graph_binary(g, KILN_OP_SIGMOID, x, x), "binary");
    FAULT(kiln_graph_reshape(g, x, KILN_MAX_RANK + 1, (int64_t[9]){0}), "reshape");
    FAULT(kiln_graph_reshape(g, x, 2, NULL), "reshape");
    FAULT(kiln_graph_array(g, F32, 1, (int64_t[]){2}, NULL, 8), "array");
    FAULT(kiln_graph_fill(g, I32, 0, NULL, 0.5), "const");
    FAULT(kiln_graph_fill(g, I64, 0, NULL, 1e19), "const");
    FAULT(kiln_graph_concat(g, 0, NULL, 0), "concat");
    FAULT(kiln_graph_concat(g, KILN_MAX_INPUTS + 1, (uint64_t[10]){1}, 0), "concat");
    FAULT(kiln_graph_pad(g, x, 2 * KILN_MAX_RANK + 1, (int64_t[17]){0}, NULL), "pad");
    FAULT(kiln_graph_slice(g, x, KILN_MAX_RANK + 1, NULL, NULL, NULL), "slice");
    FAULT(kiln_graph_reindex(g, x, NULL), "reindex");
    FAULT(kiln_graph_reindex(g, x,
                             &(struct kiln_reindex){.nexprs = 1, .exprs = (const char *[]){NULL}}),
          "reindex");
    FAULT(kiln_graph_reindex_reduce(g, KILN_REDUCE_ADD, x,
                                    &(struct kiln_reindex){.has_overflow = true}),
          "reindex_reduce");
    FAULT(kiln_graph_reduce(g, KILN_REDUCE_ADD, x, 9, (uint32_t[9]){0}, false), "reduce");
    FAULT(kiln_graph_transpose(g, x, 2, NULL), "transpose");
    FAULT(kiln_graph_matmul(g, x, 0, false, true), "matmul");
    FAULT(kiln_graph_conv2d(g, 0, x, NULL), "conv2d");
    FAULT(kiln_graph_conv2d_bwd_data(g, x, x, NULL, NULL), "conv2d_bwd_data");
    FAULT(kiln_graph_conv2d_bwd_weight(g, x, x, NULL, NULL), "conv2d_bwd_weight");
    FAULT(kiln_graph_grad(g, x, 0, 0), "grad");
    FAULT(kiln_graph_add_node(g, NULL), "node");
    FAULT(
        kiln_graph_add_node(g, &(struct kiln_node){.op = 2, .has = KILN_NODE_CONDS, .nconds = 33}),
        "conds");
#undef FAULT
    kiln_graph_free(g);
}
END_TEST

START_TEST(copies_outlive_the_callers_buffers)
{
    kiln_graph *g = kiln_graph_new(conn);
    float data[6];
    memcpy(data, x23, sizeof(data));
    char e0[16] = "i1", e1[16] = "i0";
    uint64_t x = kiln_graph_array(g, F32, 2, s23, data, sizeof(data));
    struct kiln_reindex tr = {
        .rank = 2, .shape = (int64_t[]){3, 2}, .nexprs = 2, .exprs = (const char *[]){e0, e1}};
    uint64_t t1 = kiln_graph_reindex(g, x, &tr);
    /* A whole node, with expressions from a buffer we then overwrite. */
    char buf[2][8] = {"i0", "i1"};
    struct kiln_node n = {.op = KILN_OP_REINDEX,
                          .has = KILN_NODE_IN | KILN_NODE_SHAPE | KILN_NODE_EXPRS,
                          .nin = 1,
                          .in = {x},
                          .rank = 2,
                          .shape = {2, 3},
                          .nexprs = 2,
                          .exprs = {buf[0], buf[1]}};
    uint64_t t2 = kiln_graph_add_node(g, &n);
    /* Borrowed data is read at submit. */
    float ref[2] = {0, 0};
    uint64_t r = kiln_graph_array_ref(g, F32, 1, (int64_t[]){2}, ref, sizeof(ref));
    memset(data, 0, sizeof(data));
    strcpy(e0, "junk(");
    strcpy(e1, "junk(");
    strcpy(buf[0], "??");
    strcpy(buf[1], "??");
    ref[0] = 4, ref[1] = 5;
    struct kiln_tensor *t = run(g, (uint64_t[]){t1, t2, r}, 3);
    assert_floats(&t[0], (float[]){1, -4, -2, 5, 3, -6}, 6);
    assert_floats(&t[1], x23, 6);
    assert_floats(&t[2], (float[]){4, 5}, 2);
    kiln_tensors_free(t);
    /* The graph kept its nodes: inspect them. */
    size_t count;
    const struct kiln_node *nodes = kiln_graph_nodes(g, &count);
    ck_assert_uint_eq(count, 4);
    ck_assert_uint_eq(nodes[0].id, x);
    ck_assert_uint_eq(nodes[2].op, KILN_OP_REINDEX);
    ck_assert_str_eq(nodes[2].exprs[1], "i1");
    kiln_graph_free(g);
}
END_TEST

START_TEST(reset_reuses_and_ids_never_repeat)
{
    kiln_graph *g = kiln_graph_new(conn);
    uint64_t prev = 0;
    for (int step = 1; step <= 50; step++) {
        kiln_graph_reset(g);
        /* A graph over the previous step's kept var. */
        uint64_t x = prev == 0
                         ? kiln_graph_scalar(g, F32, 0)
                         : kiln_graph_binary(g, KILN_OP_ADD, prev, kiln_graph_scalar(g, F32, 1));
        ck_assert_uint_gt(x, prev);
        kiln_graph_keep(g, x);
        uint64_t n = 0;
        struct kiln_error e;
        ck_assert_int_eq(kiln_graph_submit(g, &n, &e), KILN_OK);
        ck_assert_uint_eq(n, (uint64_t) step);
        size_t nw = 1;
        ck_assert_ptr_null(kiln_conn_warnings(conn, &nw)); /* a clean graph */
        ck_assert_uint_eq(nw, 0);
        if (prev != 0)
            ck_assert_int_eq(kiln_release(conn, &prev, 1, NULL, NULL, &e), KILN_OK);
        prev = x;
    }
    struct kiln_tensor *t;
    ck_assert_int_eq(kiln_fetch(conn, &prev, 1, 10000, &t, NULL), KILN_OK);
    ck_assert_float_eq(*(float *) t[0].data, 49);
    kiln_tensors_free(t);
    kiln_graph_free(g);
}
END_TEST

/* Small enough for valgrind, which runs threads one at a time. */
#define IDS_EACH 2000

struct id_worker {
    kiln_conn *c;
    uint64_t ids[IDS_EACH];
};

static void *take_ids(void *arg)
{
    struct id_worker *w = arg;
    for (size_t i = 0; i < sizeof(w->ids) / sizeof(w->ids[0]); i++)
        w->ids[i] = kiln_conn_new_id(w->c);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

START_TEST(ids_are_unique_across_threads)
{
    enum { THREADS = 4, EACH = IDS_EACH };
    struct id_worker *w = calloc(THREADS, sizeof(*w));
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i].c = conn;
        ck_assert_int_eq(pthread_create(&th[i], NULL, take_ids, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    uint64_t *all = malloc(THREADS * EACH * sizeof(*all));
    for (int i = 0; i < THREADS; i++) {
        for (int k = 1; k < EACH; k++)
            ck_assert_uint_gt(w[i].ids[k], w[i].ids[k - 1]); /* increasing per thread */
        memcpy(all + i * EACH, w[i].ids, sizeof(w[i].ids));
    }
    qsort(all, THREADS * EACH, sizeof(*all), cmp_u64);
    ck_assert_uint_eq(all[0], 1);
    for (int k = 1; k < THREADS * EACH; k++)
        ck_assert_uint_eq(all[k], all[k - 1] + 1); /* no repeats, no gaps */
    ck_assert_uint_eq(kiln_conn_new_id(NULL), 0);
    free(all);
    free(w);
}
END_TEST

START_TEST(poll_does_not_wait)
{
    kiln_graph *g = kiln_graph_new(conn);
    /* Enough work that the first poll may well find it unfinished. */
    const int64_t n[] = {1 << 22};
    uint64_t r = kiln_graph_random(g, F32, 1, n, KILN_DIST_NORMAL, 3, 0);
    uint64_t s = kiln_graph_reduce(g, KILN_REDUCE_ADD, kiln_graph_unary(g, KILN_OP_SIN, r), 1,
                                   (uint32_t[]){0}, false);
    kiln_graph_keep(g, s);
    struct kiln_error e;
    ck_assert_int_eq(kiln_graph_submit(g, NULL, &e), KILN_OK);
    struct kiln_tensor *t = NULL;
    int rc, polls = 0;
    struct timespec t0, t1;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = kiln_fetch_poll(conn, &s, 1, &t, &e);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        polls++;
        if (rc != KILN_ENOTREADY)
            break;
        ck_assert_ptr_null(t);
        ck_assert_msg(ms < 1000, "a poll took %.0f ms", ms);
        ck_assert_int_lt(polls, 100000);
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    ck_assert_msg(rc == KILN_OK, "poll: %s: %s", kiln_err_name(rc), e.message);
    ck_assert_uint_eq(t[0].rank, 0);
    kiln_tensors_free(t);
    /* Polling a var the session does not keep is the same error as fetching it. */
    uint64_t unknown = 999999;
    ck_assert_int_eq(kiln_fetch_poll(conn, &unknown, 1, &t, &e), KILN_ENOTFOUND);
    ck_assert_str_eq(e.field, "body.vars[0]");
    kiln_graph_free(g);
}
END_TEST

static Suite *builder_suite(void)
{
    Suite *s = suite_create("builder");
    fixture_require_kilnd();
    TCase *t = tcase_create("daemon");
    tcase_add_checked_fixture(t, daemon_setup, daemon_teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, sources_and_elementwise);
    tcase_add_test(t, index_and_random);
    tcase_add_test(t, shapes_and_reductions);
    tcase_add_test(t, reindex_with_conds_and_extras);
    tcase_add_test(t, lowered_ops);
    tcase_add_test(t, relays);
    tcase_add_test(t, relay_errors);
    tcase_add_test(t, gradients);
    tcase_add_test(t, expect_checks_on_the_daemon);
    tcase_add_test(t, sticky_errors_send_nothing);
    tcase_add_test(t, argument_faults_name_their_call);
    tcase_add_test(t, copies_outlive_the_callers_buffers);
    tcase_add_test(t, reset_reuses_and_ids_never_repeat);
    tcase_add_test(t, ids_are_unique_across_threads);
    tcase_add_test(t, poll_does_not_wait);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return fixture_run_suite(builder_suite());
}
