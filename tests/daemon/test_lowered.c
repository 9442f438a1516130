/* test_lowered.c: transpose, slice, concat, pad and flip through a real
 * kilnd — ops the daemon lowers to meta-operators (PROTOCOL.md §8,
 * "Lowered ops").
 *
 * Every case is submitted for every dtype, and the fetched bytes are
 * compared with a reference computed here: each output element is either
 * a copy of one input element (found by the op's definition, written
 * independently of kernels/lower.c) or the fill. The data holds -0.0,
 * NaN with a payload and infinities, so a copy that is not bit-exact
 * shows. Shapes cover rank 0, zero-size and size-1 dims; slices negative
 * steps and indices and bounds far out of range. Then lowered ops on
 * kept vars and on each other, and one refused graph per rule, each
 * naming its node and field.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TIMEOUT_MS 10000
#define MAXIN      KILN_LIMIT_NODE_INPUTS

enum { TRANSPOSE = 112, SLICE = 113, CONCAT = 114, PAD = 115, FLIP = 116 };

/* ---- requests ---------------------------------------------------------- */

/* A float32 const of `shape`, for the refusal tests. */
static struct proto_node fconst(uint64_t id, uint32_t rank, const int64_t *shape, uint32_t dtype)
{
    struct proto_node n = th_node(id, 2);
    n.has |= PROTO_NODE_DTYPE | PROTO_NODE_VALUE;
    n.dtype = dtype;
    th_set_shape(&n, rank, shape);
    return n;
}

struct fetched {
    uint32_t dtype, rank;
    int64_t shape[KILN_LIMIT_RANK];
    size_t bytes;
    unsigned char *data; /* malloc'd */
};

/* FETCH one var (asserting success) into *f. */
static void fetch(nng_socket s, uint64_t sid, uint64_t id, struct fetched *f)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_encode_fetch(&sb, sid, &id, 1, TIMEOUT_MS), KILN_OK);
    nng_msg *msg;
    int rv = th_roundtrip(s, sb.data, sb.size, &msg);
    ck_assert_msg(rv == 0, "FETCH: no reply: %s", nng_strerror(rv));
    struct proto_reply rep;
    struct proto_error perr;
    ck_assert_int_eq(
        proto_reply_decode(&rep, PROTO_FETCH, nng_msg_body(msg), nng_msg_len(msg), &perr),
        KILN_OK);
    ck_assert_msg(rep.code == KILN_OK, "FETCH %llu: %s", (unsigned long long) id,
                  rep.error.message);
    const struct proto_tensor *t = &rep.u.fetch.vars[0];
    f->dtype = t->dtype;
    f->rank = t->rank;
    memcpy(f->shape, t->shape, sizeof(f->shape));
    f->bytes = t->bytes;
    f->data = malloc(t->bytes ? t->bytes : 1);
    ck_assert_ptr_nonnull(f->data);
    if (t->bytes > 0)
        memcpy(f->data, t->data, t->bytes);
    proto_reply_fini(&rep);
    nng_msg_free(msg);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- data -------------------------------------------------------------- */

static const size_t dsize[8] = {0, 1, 1, 1, 4, 8, 4, 8};

/* Element j of input k, in `dtype`, at p: distinct per input and index,
 * with -0.0, a NaN carrying a payload, and -inf among the floats. */
static void element(uint32_t dtype, int k, int64_t j, unsigned char *p)
{
    int64_t v = j * 7 + k * 101 - 40;
    switch (dtype) {
    case 1: *p = (unsigned char) ((j * 5 + k) % 3 == 0); break;
    case 2: *p = (unsigned char) (int8_t) v; break;
    case 3: *p = (unsigned char) (uint8_t) (v * 3); break;
    case 4: { int32_t x = (int32_t) (v * 100003); memcpy(p, &x, 4); break; }
    case 5: { int64_t x = v * INT64_C(4000000007); memcpy(p, &x, 8); break; }
    case 6: {
        float x = (float) v * 0.25f;
        uint32_t nan = 0x7fc00000u | (uint32_t) (j + 1);
        if (j % 7 == 3)
            x = -0.0f;
        if (j % 11 == 5)
            memcpy(&x, &nan, 4);
        if (j % 13 == 6)
            x = -INFINITY;
        memcpy(p, &x, 4);
        break;
    }
    case 7: {
        double x = (double) v * 0.125;
        uint64_t nan = 0x7ff8000000000000u | (uint64_t) (j + 1);
        if (j % 7 == 3)
            x = -0.0;
        if (j % 11 == 5)
            memcpy(&x, &nan, 8);
        if (j % 13 == 6)
            x = (double) INFINITY;
        memcpy(p, &x, 8);
        break;
    }
    default: ck_abort_msg("dtype %u", dtype);
    }
}

/* pad's fill per dtype: sent as `value`, and its bytes. -0.0 for float64,
 * so a fill that loses the sign shows. */
static struct proto_number fill_value(uint32_t dtype)
{
    switch (dtype) {
    case 1: return (struct proto_number){.i = 1};
    case 2: return (struct proto_number){.i = -5};
    case 3: return (struct proto_number){.i = 200};
    case 4: return (struct proto_number){.i = -7};
    case 5: return (struct proto_number){.i = -(INT64_C(1) << 50)};
    case 6: return (struct proto_number){.is_float = true, .f = 2.5};
    default: return (struct proto_number){.is_float = true, .f = -0.0};
    }
}

static void fill_bytes(uint32_t dtype, const struct proto_number *v, unsigned char *p)
{
    if (dtype == 6) {
        float x = (float) v->f;
        memcpy(p, &x, 4);
    } else if (dtype == 7) {
        memcpy(p, &v->f, 8);
    } else {
        int64_t i = v->i; /* little-endian: the low bytes */
        memcpy(p, &i, dsize[dtype]);
    }
}

static int64_t numel(int rank, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= shape[d];
    return n;
}

static int64_t flat(int rank, const int64_t *shape, const int64_t *c)
{
    int64_t f = 0;
    for (int d = 0; d < rank; d++)
        f = f * shape[d] + c[d];
    return f;
}

/* ---- the cases and their reference -------------------------------------- */

struct lcase {
    const char *what;
    uint32_t op;
    uint32_t has; /* PROTO_NODE_* fields sent besides `in` */
    int nin, rank; /* every input has this rank */
    int64_t shape[MAXIN][KILN_LIMIT_RANK];
    uint32_t ndims, dims[KILN_LIMIT_RANK];
    int64_t starts[KILN_LIMIT_RANK], stops[KILN_LIMIT_RANK], steps[KILN_LIMIT_RANK];
    uint32_t npads;
    int64_t pads[2 * KILN_LIMIT_RANK];
    uint32_t dim;
    int orank; /* the result's shape, worked out by hand */
    int64_t oshape[KILN_LIMIT_RANK];
};

#define MIN INT64_MIN
#define MAX INT64_MAX
#define ST  (PROTO_NODE_STARTS | PROTO_NODE_STOPS | PROTO_NODE_STEPS)

static const struct lcase cases[] = {
    {"transpose 3-d", TRANSPOSE, PROTO_NODE_DIMS, 1, 3, {{2, 3, 4}}, 3, {2, 0, 1},
     .orank = 3, .oshape = {4, 2, 3}},
    {"transpose rank 0", TRANSPOSE, PROTO_NODE_DIMS, 1, 0, {{0}}, 0, {0}, .orank = 0},
    {"transpose size-1", TRANSPOSE, PROTO_NODE_DIMS, 1, 2, {{1, 5}}, 2, {1, 0}, .orank = 2,
     .oshape = {5, 1}},
    {"transpose zero-size", TRANSPOSE, PROTO_NODE_DIMS, 1, 2, {{0, 3}}, 2, {1, 0}, .orank = 2,
     .oshape = {3, 0}},
    {"transpose 4-d", TRANSPOSE, PROTO_NODE_DIMS, 1, 4, {{2, 1, 3, 2}}, 4, {3, 1, 0, 2},
     .orank = 4, .oshape = {2, 1, 2, 3}},

    {"slice [-1::-2]", SLICE, ST, 1, 1, {{7}}, .starts = {-1}, .stops = {MIN}, .steps = {-2},
     .orank = 1, .oshape = {4}},
    {"slice [-3:, 10:-10:-1]", SLICE, ST, 1, 2, {{5, 4}}, .starts = {-3, 10},
     .stops = {MAX, -10}, .steps = {1, -1}, .orank = 2, .oshape = {3, 4}},
    {"slice [1:100:4]", SLICE, ST, 1, 1, {{6}}, .starts = {1}, .stops = {100}, .steps = {4},
     .orank = 1, .oshape = {2}},
    {"slice [max::min]", SLICE, PROTO_NODE_STARTS | PROTO_NODE_STEPS, 1, 1, {{6}},
     .starts = {MAX}, .steps = {MIN}, .orank = 1, .oshape = {1}},
    {"slice empty [3:1]", SLICE, PROTO_NODE_STARTS | PROTO_NODE_STOPS, 1, 1, {{5}},
     .starts = {3}, .stops = {1}, .orank = 1, .oshape = {0}},
    {"slice zero-size", SLICE, PROTO_NODE_STARTS | PROTO_NODE_STOPS, 1, 2, {{0, 3}},
     .starts = {0, -2}, .stops = {5, 3}, .orank = 2, .oshape = {0, 2}},
    {"slice rank 0", SLICE, 0, 1, 0, {{0}}, .orank = 0},
    {"slice [::-1, ::-1]", SLICE, PROTO_NODE_STEPS, 1, 2, {{2, 3}}, .steps = {-1, -1},
     .orank = 2, .oshape = {2, 3}},
    {"slice 3-d clamped", SLICE, ST, 1, 3, {{4, 1, 3}}, .starts = {-100, 0, -1},
     .stops = {100, 1, -4}, .steps = {3, 1, -1}, .orank = 3, .oshape = {2, 1, 3}},

    {"concat dim 1", CONCAT, PROTO_NODE_DIM, 3, 2, {{2, 3}, {2, 0}, {2, 4}}, .dim = 1,
     .orank = 2, .oshape = {2, 7}},
    {"concat dim 0", CONCAT, PROTO_NODE_DIM, 2, 2, {{1, 2}, {3, 2}}, .dim = 0, .orank = 2,
     .oshape = {4, 2}},
    {"concat one input", CONCAT, PROTO_NODE_DIM, 1, 1, {{3}}, .dim = 0, .orank = 1,
     .oshape = {3}},
    {"concat middle dim", CONCAT, PROTO_NODE_DIM, 2, 3, {{2, 1, 3}, {2, 2, 3}}, .dim = 1,
     .orank = 3, .oshape = {2, 3, 3}},
    {"concat all empty", CONCAT, PROTO_NODE_DIM, 2, 2, {{0, 2}, {0, 2}}, .dim = 0, .orank = 2,
     .oshape = {0, 2}},
    {"concat nine", CONCAT, PROTO_NODE_DIM, 9, 2,
     {{0, 2}, {1, 2}, {2, 2}, {0, 2}, {1, 2}, {2, 2}, {0, 2}, {1, 2}, {2, 2}}, .dim = 0,
     .orank = 2, .oshape = {9, 2}},
    {"concat zero-size other dim", CONCAT, PROTO_NODE_DIM, 2, 2, {{2, 0}, {3, 0}}, .dim = 0,
     .orank = 2, .oshape = {5, 0}},

    {"pad grow", PAD, PROTO_NODE_PADS | PROTO_NODE_VALUE, 1, 2, {{2, 3}}, .npads = 4,
     .pads = {1, 2, 0, 1}, .orank = 2, .oshape = {5, 4}},
    {"pad crop and grow", PAD, PROTO_NODE_PADS | PROTO_NODE_VALUE, 1, 2, {{3, 4}}, .npads = 4,
     .pads = {-1, 0, 1, -2}, .orank = 2, .oshape = {2, 3}},
    {"pad rank 0", PAD, PROTO_NODE_PADS | PROTO_NODE_VALUE, 1, 0, {{0}}, .npads = 0,
     .orank = 0},
    {"pad zero-size", PAD, PROTO_NODE_PADS | PROTO_NODE_VALUE, 1, 2, {{0, 3}}, .npads = 4,
     .pads = {1, 1, 0, 0}, .orank = 2, .oshape = {2, 3}},
    {"pad crop all", PAD, PROTO_NODE_PADS | PROTO_NODE_VALUE, 1, 1, {{4}}, .npads = 2,
     .pads = {-2, -2}, .orank = 1, .oshape = {0}},
    {"pad default fill", PAD, PROTO_NODE_PADS, 1, 2, {{1, 2}}, .npads = 4, .pads = {0, 0, 2, 0},
     .orank = 2, .oshape = {1, 4}},

    {"flip 3-d", FLIP, PROTO_NODE_DIMS, 1, 3, {{2, 3, 4}}, 2, {0, 2}, .orank = 3,
     .oshape = {2, 3, 4}},
    {"flip rank 0", FLIP, PROTO_NODE_DIMS, 1, 0, {{0}}, 0, {0}, .orank = 0},
    {"flip 1-d", FLIP, PROTO_NODE_DIMS, 1, 1, {{5}}, 1, {0}, .orank = 1, .oshape = {5}},
    {"flip zero-size", FLIP, PROTO_NODE_DIMS, 1, 2, {{0, 3}}, 1, {1}, .orank = 2,
     .oshape = {0, 3}},
    {"flip size-1, dims in any order", FLIP, PROTO_NODE_DIMS, 1, 2, {{1, 3}}, 2, {1, 0},
     .orank = 2, .oshape = {1, 3}},
};

/* Python's slice.indices() for one dim: the first index and the step. */
static void py_slice(int64_t n, int64_t start, int64_t step, bool has_start, int64_t *first)
{
    if (!has_start)
        start = step < 0 ? MAX : 0;
    if (start < 0) {
        start += n;
        if (start < 0)
            start = step < 0 ? -1 : 0;
    } else if (start >= n) {
        start = step < 0 ? n - 1 : n;
    }
    *first = start;
}

/* Output element c of case `lc`: the input it copies (*k) and where, or
 * -1 for the fill. */
static int64_t source(const struct lcase *lc, const int64_t *c, int *k)
{
    int64_t src[KILN_LIMIT_RANK];
    const int64_t *xs = lc->shape[0];
    *k = 0;
    switch (lc->op) {
    case TRANSPOSE:
        for (int j = 0; j < lc->rank; j++)
            src[lc->dims[j]] = c[j];
        break;
    case FLIP:
        memcpy(src, c, sizeof(src));
        for (uint32_t j = 0; j < lc->ndims; j++)
            src[lc->dims[j]] = xs[lc->dims[j]] - 1 - c[lc->dims[j]];
        break;
    case SLICE:
        for (int d = 0; d < lc->rank; d++) {
            int64_t step = lc->has & PROTO_NODE_STEPS ? lc->steps[d] : 1, first;
            py_slice(xs[d], lc->starts[d], step, lc->has & PROTO_NODE_STARTS, &first);
            src[d] = first + (c[d] == 0 ? 0 : step * c[d]);
        }
        break;
    case PAD:
        for (int d = 0; d < lc->rank; d++) {
            src[d] = c[d] - lc->pads[2 * d];
            if (src[d] < 0 || src[d] >= xs[d])
                return -1;
        }
        break;
    case CONCAT: {
        memcpy(src, c, sizeof(src));
        int64_t at = c[lc->dim];
        while (at >= lc->shape[*k][lc->dim])
            at -= lc->shape[(*k)++][lc->dim];
        src[lc->dim] = at;
        return flat(lc->rank, lc->shape[*k], src);
    }
    }
    return flat(lc->rank, xs, src);
}

/* Submit case `lc` in `dtype`, fetch it, and compare with the reference. */
static void run_case(nng_socket s, uint64_t sid, const struct lcase *lc, uint32_t dtype)
{
    struct proto_node nodes[MAXIN + 1];
    unsigned char *bufs[MAXIN];
    size_t es = dsize[dtype];
    uint64_t ins[MAXIN];
    for (int k = 0; k < lc->nin; k++) {
        int64_t n = numel(lc->rank, lc->shape[k]);
        bufs[k] = malloc(n > 0 ? (size_t) n * es : 1);
        for (int64_t j = 0; j < n; j++)
            element(dtype, k, j, bufs[k] + j * es);
        nodes[k] = th_node((uint64_t) k + 1, 1);
        nodes[k].has |= PROTO_NODE_DTYPE | PROTO_NODE_DATA;
        nodes[k].dtype = dtype;
        th_set_shape(&nodes[k], (uint32_t) lc->rank, lc->shape[k]);
        nodes[k].data = bufs[k];
        nodes[k].data_len = (size_t) n * es;
        ins[k] = (uint64_t) k + 1;
    }
    struct proto_node *y = &nodes[lc->nin];
    *y = th_node(100, lc->op);
    th_set_in(y, (uint32_t) lc->nin, ins);
    y->has |= lc->has;
    y->ndims = lc->ndims;
    memcpy(y->dims, lc->dims, sizeof(y->dims));
    y->nstarts = y->nstops = y->nsteps = (uint32_t) lc->rank;
    y->starts = lc->starts;
    y->stops = lc->stops;
    y->steps = lc->steps;
    y->npads = lc->npads;
    y->pads = lc->pads;
    y->dim = lc->dim;
    struct proto_number fill = {0};
    if (lc->has & PROTO_NODE_VALUE)
        y->value = fill = fill_value(dtype);
    struct proto_error err;
    int code = th_submit(s, sid, nodes, (uint32_t) lc->nin + 1, (uint64_t[]){100}, 1, &err, NULL);
    ck_assert_msg(code == KILN_OK, "%s, dtype %u: %s: %s", lc->what, dtype, err.field,
                  err.message);

    struct fetched f;
    fetch(s, sid, 100, &f);
    ck_assert_uint_eq(f.dtype, dtype);
    ck_assert_msg(f.rank == (uint32_t) lc->orank, "%s: rank %u", lc->what, f.rank);
    for (int d = 0; d < lc->orank; d++)
        ck_assert_msg(f.shape[d] == lc->oshape[d], "%s: dim %d is %lld, want %lld", lc->what, d,
                      (long long) f.shape[d], (long long) lc->oshape[d]);
    int64_t total = numel(lc->orank, lc->oshape);
    ck_assert_uint_eq(f.bytes, (size_t) total * es);
    unsigned char want[8];
    for (int64_t j = 0; j < total; j++) {
        int64_t c[KILN_LIMIT_RANK], r = j;
        for (int d = lc->orank - 1; d >= 0; d--) {
            c[d] = r % lc->oshape[d];
            r /= lc->oshape[d];
        }
        int k;
        int64_t at = source(lc, c, &k);
        if (at < 0)
            fill_bytes(dtype, &fill, want);
        else
            memcpy(want, bufs[k] + at * (int64_t) es, es);
        ck_assert_msg(memcmp(f.data + j * (int64_t) es, want, es) == 0,
                      "%s, dtype %u: element %lld differs", lc->what, dtype, (long long) j);
    }
    free(f.data);
    for (int k = 0; k < lc->nin; k++)
        free(bufs[k]);
    th_release(s, sid, (uint64_t[]){100}, 1);
}

START_TEST(every_case_every_dtype)
{
    struct th_daemon d;
    th_prepare(&d);
    th_start(&d, NULL);
    nng_socket s = th_connect(d.addr, TIMEOUT_MS);
    uint64_t sid = th_hello(s, "lowered");
    int runs = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        for (uint32_t dtype = 1; dtype <= 7; dtype++, runs++)
            run_case(s, sid, &cases[i], dtype);
    ck_assert_int_eq(runs, 7 * (int) (sizeof(cases) / sizeof(cases[0])));
    struct proto_status st;
    th_status(s, &st);
    ck_assert_uint_eq(st.steps_failed, 0);
    ck_assert_uint_eq(st.mem_in_use, 0);
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

/* Lowered ops read kept vars and each other, declare their shape and
 * dtype, and are kept and read by a later step like any node. */
START_TEST(chained_on_kept_vars)
{
    struct th_daemon d;
    th_prepare(&d);
    th_start(&d, NULL);
    nng_socket s = th_connect(d.addr, TIMEOUT_MS);
    uint64_t sid = th_hello(s, "chain");
    int32_t a[6] = {1, 2, 3, 4, 5, 6}; /* [[1, 2, 3], [4, 5, 6]] */
    int64_t sh[2] = {2, 3};
    struct proto_node g[6];
    g[0] = th_node(1, 1);
    g[0].has |= PROTO_NODE_DTYPE | PROTO_NODE_DATA;
    g[0].dtype = 4;
    th_set_shape(&g[0], 2, sh);
    g[0].data = a;
    g[0].data_len = sizeof(a);
    ck_assert_int_eq(th_submit(s, sid, g, 1, (uint64_t[]){1}, 1, NULL, NULL), KILN_OK);

    /* t = x.T (shape [3, 2], declared); f = t[::-1] via flip; c = concat(t, f); p = pad(c) */
    g[0] = th_node(2, TRANSPOSE);
    th_set_in(&g[0], 1, (uint64_t[]){1});
    th_set_dims(&g[0], 2, (uint32_t[]){1, 0});
    th_set_shape(&g[0], 2, (int64_t[]){3, 2});
    g[0].has |= PROTO_NODE_DTYPE;
    g[0].dtype = 4;
    g[1] = th_node(3, FLIP);
    th_set_in(&g[1], 1, (uint64_t[]){2});
    th_set_dims(&g[1], 1, (uint32_t[]){0});
    g[2] = th_node(4, CONCAT);
    th_set_in(&g[2], 2, (uint64_t[]){2, 3});
    g[2].has |= PROTO_NODE_DIM;
    g[2].dim = 1;
    g[3] = th_node(5, PAD);
    th_set_in(&g[3], 1, (uint64_t[]){4});
    g[3].has |= PROTO_NODE_PADS | PROTO_NODE_VALUE;
    g[3].npads = 4;
    g[3].pads = (int64_t[]){0, -1, 1, 0};
    g[3].value = (struct proto_number){.i = 9};
    g[4] = th_node(6, 48 /* add */);
    th_set_in(&g[4], 2, (uint64_t[]){5, 5});
    ck_assert_int_eq(th_submit(s, sid, g, 5, (uint64_t[]){4, 6}, 2, NULL, NULL), KILN_OK);
    /* c = [[1,4,3,6],[2,5,2,5],[3,6,1,4]]; p = [[9,1,4,3,6],[9,2,5,2,5]] */
    struct fetched f;
    fetch(s, sid, 4, &f);
    int32_t c[12] = {1, 4, 3, 6, 2, 5, 2, 5, 3, 6, 1, 4};
    ck_assert_uint_eq(f.rank, 2);
    ck_assert_int_eq(f.shape[0], 3);
    ck_assert_int_eq(f.shape[1], 4);
    ck_assert_mem_eq(f.data, c, sizeof(c));
    free(f.data);
    fetch(s, sid, 6, &f);
    int32_t p2[10] = {18, 2, 8, 6, 12, 18, 4, 10, 4, 10};
    ck_assert_mem_eq(f.data, p2, sizeof(p2));
    free(f.data);

    /* A third step slices the kept concat: c[-1:0:-2, 1::2] = [[6, 4]] */
    g[0] = th_node(7, SLICE);
    th_set_in(&g[0], 1, (uint64_t[]){4});
    g[0].has |= ST;
    g[0].nstarts = g[0].nstops = g[0].nsteps = 2;
    g[0].starts = (int64_t[]){-1, 1};
    g[0].stops = (int64_t[]){0, MAX};
    g[0].steps = (int64_t[]){-2, 2};
    ck_assert_int_eq(th_submit(s, sid, g, 1, (uint64_t[]){7}, 1, NULL, NULL), KILN_OK);
    fetch(s, sid, 7, &f);
    ck_assert_uint_eq(f.rank, 2);
    ck_assert_int_eq(f.shape[0], 1);
    ck_assert_int_eq(f.shape[1], 2);
    ck_assert_mem_eq(f.data, ((int32_t[]){6, 4}), 8);
    free(f.data);
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

/* One refused graph: code, field and node. */
static void refused(nng_socket s, uint64_t sid, struct proto_node *nodes, uint32_t n, int code,
                    const char *field)
{
    struct proto_error err;
    int got = th_submit(s, sid, nodes, n, NULL, 0, &err, NULL);
    ck_assert_msg(got == code, "%s: expected %s, got %s: %s", field, kiln_err_name(code),
                  kiln_err_name(got), err.message);
    ck_assert_str_eq(err.field, field);
    ck_assert_int_eq(err.node, (int64_t) n - 1);
    ck_assert_ptr_nonnull(strstr(err.message, "node"));
}

START_TEST(refusals_name_node_and_field)
{
    struct th_daemon d;
    th_prepare(&d);
    th_start(&d, NULL);
    nng_socket s = th_connect(d.addr, TIMEOUT_MS);
    uint64_t sid = th_hello(s, "refused");
    int64_t s23[2] = {2, 3}, s24[2] = {2, 4}, s231[3] = {2, 3, 1};
    struct proto_node g[4];
    g[0] = fconst(1, 2, s23, 6);
    g[1] = fconst(2, 2, s24, 6);
    g[2] = th_node(9, TRANSPOSE);
    struct proto_node *y = &g[2];
    const char *f2 = "body.nodes[2].";
    char field[64];
#define AT(sub) (snprintf(field, sizeof(field), "%s%s", f2, sub), field)

    /* transpose */
    th_set_in(y, 1, (uint64_t[]){1});
    refused(s, sid, g, 3, KILN_EMISSING, AT("dims"));
    th_set_dims(y, 1, (uint32_t[]){0});
    refused(s, sid, g, 3, KILN_EVALUE, AT("dims"));
    th_set_dims(y, 2, (uint32_t[]){1, 1});
    refused(s, sid, g, 3, KILN_EVALUE, AT("dims[1]"));
    th_set_dims(y, 2, (uint32_t[]){0, 2});
    refused(s, sid, g, 3, KILN_EVALUE, AT("dims[1]"));
    th_set_dims(y, 2, (uint32_t[]){1, 0});
    th_set_in(y, 2, (uint64_t[]){1, 2});
    refused(s, sid, g, 3, KILN_EVALUE, AT("in"));
    th_set_in(y, 1, (uint64_t[]){1});
    th_set_shape(y, 2, s23); /* the result is [3, 2] */
    refused(s, sid, g, 3, KILN_EVALUE, AT("shape"));

    /* flip */
    *y = th_node(9, FLIP);
    th_set_in(y, 1, (uint64_t[]){1});
    th_set_dims(y, 2, (uint32_t[]){1, 1});
    refused(s, sid, g, 3, KILN_EVALUE, AT("dims[1]"));
    th_set_dims(y, 1, (uint32_t[]){2});
    refused(s, sid, g, 3, KILN_EVALUE, AT("dims[0]"));
    th_set_dims(y, 1, (uint32_t[]){0});
    y->has |= PROTO_NODE_STEPS;
    refused(s, sid, g, 3, KILN_EFIELD, AT("steps"));

    /* slice */
    *y = th_node(9, SLICE);
    th_set_in(y, 1, (uint64_t[]){1});
    y->has |= PROTO_NODE_STEPS;
    y->nsteps = 2;
    y->steps = (int64_t[]){1, 0};
    refused(s, sid, g, 3, KILN_EVALUE, AT("steps[1]"));
    y->steps = (int64_t[]){1, 1};
    y->has |= PROTO_NODE_STARTS;
    y->nstarts = 1;
    y->starts = (int64_t[]){0};
    refused(s, sid, g, 3, KILN_EVALUE, AT("starts"));
    y->has &= ~(uint32_t) PROTO_NODE_STARTS;
    y->has |= PROTO_NODE_STOPS;
    y->nstops = 3;
    y->stops = (int64_t[]){0, 0, 0};
    refused(s, sid, g, 3, KILN_EVALUE, AT("stops"));
    y->has &= ~(uint32_t) PROTO_NODE_STOPS;
    y->has |= PROTO_NODE_PADS;
    refused(s, sid, g, 3, KILN_EFIELD, AT("pads"));

    /* concat */
    *y = th_node(9, CONCAT);
    th_set_in(y, 2, (uint64_t[]){1, 2});
    refused(s, sid, g, 3, KILN_EMISSING, AT("dim"));
    y->has |= PROTO_NODE_DIM;
    y->dim = 0; /* dim 1 differs: 3 and 4 */
    refused(s, sid, g, 3, KILN_EVALUE, AT("in[1]"));
    y->dim = 2;
    refused(s, sid, g, 3, KILN_EVALUE, AT("dim"));
    g[1] = fconst(2, 2, s23, 7);
    y->dim = 0;
    refused(s, sid, g, 3, KILN_ETYPE, AT("in[1]"));
    g[1] = fconst(2, 3, s231, 6);
    refused(s, sid, g, 3, KILN_EVALUE, AT("in[1]"));
    g[1] = fconst(2, 0, NULL, 6);
    th_set_in(y, 2, (uint64_t[]){2, 2});
    refused(s, sid, g, 3, KILN_EVALUE, AT("in[0]"));
    int64_t big[1] = {KILN_LIMIT_DIM};
    g[1] = fconst(2, 1, big, 2);
    refused(s, sid, g, 3, KILN_ELIMIT, AT("in[1]"));
    y->nin = 0; /* `in` sent, but empty */
    refused(s, sid, g, 3, KILN_EVALUE, AT("in"));

    /* pad */
    g[1] = fconst(2, 2, s24, 4); /* int32 */
    *y = th_node(9, PAD);
    th_set_in(y, 1, (uint64_t[]){2});
    refused(s, sid, g, 3, KILN_EMISSING, AT("pads"));
    y->has |= PROTO_NODE_PADS;
    y->npads = 3;
    y->pads = (int64_t[]){0, 0, 0};
    refused(s, sid, g, 3, KILN_EVALUE, AT("pads"));
    y->npads = 4;
    y->pads = (int64_t[]){0, 0, -3, -2};
    refused(s, sid, g, 3, KILN_EVALUE, AT("pads[3]"));
    y->pads = (int64_t[]){0, 0, KILN_LIMIT_DIM + 1, 0};
    refused(s, sid, g, 3, KILN_EVALUE, AT("pads[2]"));
    y->pads = (int64_t[]){KILN_LIMIT_DIM, 0, 0, 0};
    refused(s, sid, g, 3, KILN_ELIMIT, AT("pads[1]"));
    y->pads = (int64_t[]){1, 1, 1, 1};
    y->has |= PROTO_NODE_VALUE;
    y->value = (struct proto_number){.is_float = true, .f = 0.5};
    refused(s, sid, g, 3, KILN_ETYPE, AT("value"));
    y->value = (struct proto_number){.i = INT64_C(1) << 40};
    refused(s, sid, g, 3, KILN_EVALUE, AT("value"));
    y->value = (struct proto_number){.i = -1};
    y->has |= PROTO_NODE_DIM;
    refused(s, sid, g, 3, KILN_EFIELD, AT("dim"));
#undef AT

    /* None of it left anything behind; the same graph, corrected, runs. */
    struct proto_status st;
    th_status(s, &st);
    ck_assert_uint_eq(st.mem_in_use, 0);
    ck_assert_uint_eq(st.steps_done + st.steps_running + st.steps_queued, 0);
    y->has &= ~(uint32_t) PROTO_NODE_DIM;
    ck_assert_int_eq(th_submit(s, sid, g, 3, (uint64_t[]){9}, 1, NULL, NULL), KILN_OK);
    struct fetched f;
    fetch(s, sid, 9, &f);
    ck_assert_uint_eq(f.rank, 2);
    ck_assert_int_eq(f.shape[0], 4);
    ck_assert_int_eq(f.shape[1], 6);
    free(f.data);
    nng_close(s);
    ck_assert_int_eq(th_stop(&d), 0);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        setenv("KILND_PATH", argv[1], 1);
    Suite *su = suite_create("daemon-lowered");
    TCase *tc = tcase_create("lowered");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_case_every_dtype);
    tcase_add_test(tc, chained_on_kept_vars);
    tcase_add_test(tc, refusals_name_node_and_field);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
