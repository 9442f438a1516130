/* test_lower.c: transpose, slice, concat, pad and flip as lowered to
 * meta-operators (kernels/lower.h), run on the reference interpreter.
 *
 * Inputs hold their own flat index (concat: input k holds k * 1000000 +
 * index), so each output element names the input element it was read
 * from, and one comparison checks the whole mapping. Slices are checked
 * against a table of 1-D cases computed by Python itself
 * (list(range(n))[start:stop:step]), and every op against references
 * written here on random shapes (rank 0, zero-size and size-1 dims
 * included). Every refusal names its field and leaves the graph as it was,
 * also when concat fails half way (at the graph's node limit).
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"
#include "ir.h"
#include "kiln_err.h"
#include "lower.h"

#define FILL (-1)

#include "refused.h"

static int64_t numel(int rank, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= shape[d];
    return n;
}

/* An int64 ARRAY whose element j is base + j. */
static int counting(int rank, const int64_t *shape, int64_t base)
{
    int64_t n = numel(rank, shape);
    int64_t *v = malloc((size_t) (n > 0 ? n : 1) * sizeof(*v));
    ck_assert_ptr_nonnull(v);
    for (int64_t j = 0; j < n; j++)
        v[j] = base + j;
    int x = ir_add_array(&g, IR_DTYPE_INT64, rank, shape, v, (size_t) n * sizeof(*v), &err);
    free(v);
    ck_assert_msg(x >= 0, "%s", err.message);
    return x;
}

static int64_t flat(int rank, const int64_t *shape, const int64_t *c)
{
    int64_t f = 0;
    for (int d = 0; d < rank; d++)
        f = f * shape[d] + c[d];
    return f;
}

/* Coordinates of flat index j. */
static void unflat(int rank, const int64_t *shape, int64_t j, int64_t *c)
{
    for (int d = rank - 1; d >= 0; d--) {
        c[d] = j % shape[d];
        j /= shape[d];
    }
}

/* What the reference says output element `c` holds. */
typedef int64_t (*ref_fn)(const void *arg, const int64_t *c);

/* Run the graph; node y must have (rank, shape) and hold ref(c) at every c. */
static void check(int y, int rank, const int64_t *shape, ref_fn ref, const void *arg)
{
    ck_assert_msg(y >= 0, "refused: %s: %s", err.field, err.message);
    const struct ir_node *n = &g.nodes[y];
    ck_assert_int_eq(n->dtype, IR_DTYPE_INT64);
    ck_assert_int_eq(n->rank, rank);
    for (int d = 0; d < rank; d++)
        ck_assert_int_eq(n->shape[d], shape[d]);
    void **out = NULL;
    ck_assert_int_eq(ir_interp_run(&g, NULL, &out, &err), KILN_OK);
    const int64_t *got = out[y];
    int64_t total = numel(rank, shape), c[KILN_LIMIT_RANK];
    for (int64_t j = 0; j < total; j++) {
        unflat(rank, shape, j, c);
        int64_t want = ref(arg, c);
        ck_assert_msg(got[j] == want, "element %lld: got %lld, want %lld", (long long) j,
                      (long long) got[j], (long long) want);
    }
    ir_interp_free(&g, out);
}

/* ---- a small deterministic generator ------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static int64_t rnd(int64_t lo, int64_t hi) /* in [lo, hi] */
{
    rng = rng * 6364136223846793005u + 1442695040888963407u;
    return lo + (int64_t) ((rng >> 33) % (uint64_t) (hi - lo + 1));
}

static int rand_shape(int64_t *shape)
{
    int rank = (int) rnd(0, 4);
    for (int d = 0; d < rank; d++)
        shape[d] = rnd(0, 9) == 0 ? 0 : rnd(1, 4);
    return rank;
}

/* ---- slice against Python ------------------------------------------------ */

#define NONE (INT64_MIN + 12345) /* absent: Python's None */

static const struct {
    int64_t n, start, stop, step;
    int len;
    int64_t want[8];
} py_slices[] = {
    {0, NONE, NONE, NONE, 0, {0}},
    {0, NONE, NONE, -1, 0, {0}},
    {0, 1, NONE, NONE, 0, {0}},
    {0, -1, NONE, NONE, 0, {0}},
    {0, -2, NONE, -1, 0, {0}},
    {0, NONE, -1, NONE, 0, {0}},
    {0, NONE, NONE, 2, 0, {0}},
    {0, NONE, NONE, -2, 0, {0}},
    {0, 1, -1, 3, 0, {0}},
    {0, -100, 100, 1, 0, {0}},
    {0, 100, -100, -1, 0, {0}},
    {0, INT64_MIN, INT64_MAX, 1, 0, {0}},
    {0, INT64_MAX, INT64_MIN, -1, 0, {0}},
    {0, INT64_MIN, INT64_MAX, -1, 0, {0}},
    {0, INT64_MAX, INT64_MIN, 1, 0, {0}},
    {0, 3, 1, 1, 0, {0}},
    {0, 1, 3, -1, 0, {0}},
    {0, 0, NONE, INT64_MAX, 0, {0}},
    {0, NONE, NONE, INT64_MIN, 0, {0}},
    {0, -1, -6, -2, 0, {0}},
    {0, 2, 2, 1, 0, {0}},
    {0, 4, 0, -3, 0, {0}},
    {0, -3, -1, NONE, 0, {0}},
    {0, 5, NONE, -2, 0, {0}},
    {0, -6, 3, 2, 0, {0}},
    {0, 1, NONE, -9223372036854775807, 0, {0}},
    {0, NONE, 1, -1, 0, {0}},
    {1, NONE, NONE, NONE, 1, {0}},
    {1, NONE, NONE, -1, 1, {0}},
    {1, 1, NONE, NONE, 0, {0}},
    {1, -1, NONE, NONE, 1, {0}},
    {1, -2, NONE, -1, 0, {0}},
    {1, NONE, -1, NONE, 0, {0}},
    {1, NONE, NONE, 2, 1, {0}},
    {1, NONE, NONE, -2, 1, {0}},
    {1, 1, -1, 3, 0, {0}},
    {1, -100, 100, 1, 1, {0}},
    {1, 100, -100, -1, 1, {0}},
    {1, INT64_MIN, INT64_MAX, 1, 1, {0}},
    {1, INT64_MAX, INT64_MIN, -1, 1, {0}},
    {1, INT64_MIN, INT64_MAX, -1, 0, {0}},
    {1, INT64_MAX, INT64_MIN, 1, 0, {0}},
    {1, 3, 1, 1, 0, {0}},
    {1, 1, 3, -1, 0, {0}},
    {1, 0, NONE, INT64_MAX, 1, {0}},
    {1, NONE, NONE, INT64_MIN, 1, {0}},
    {1, -1, -6, -2, 1, {0}},
    {1, 2, 2, 1, 0, {0}},
    {1, 4, 0, -3, 0, {0}},
    {1, -3, -1, NONE, 0, {0}},
    {1, 5, NONE, -2, 1, {0}},
    {1, -6, 3, 2, 1, {0}},
    {1, 1, NONE, -9223372036854775807, 1, {0}},
    {1, NONE, 1, -1, 0, {0}},
    {2, NONE, NONE, NONE, 2, {0, 1}},
    {2, NONE, NONE, -1, 2, {1, 0}},
    {2, 1, NONE, NONE, 1, {1}},
    {2, -1, NONE, NONE, 1, {1}},
    {2, -2, NONE, -1, 1, {0}},
    {2, NONE, -1, NONE, 1, {0}},
    {2, NONE, NONE, 2, 1, {0}},
    {2, NONE, NONE, -2, 1, {1}},
    {2, 1, -1, 3, 0, {0}},
    {2, -100, 100, 1, 2, {0, 1}},
    {2, 100, -100, -1, 2, {1, 0}},
    {2, INT64_MIN, INT64_MAX, 1, 2, {0, 1}},
    {2, INT64_MAX, INT64_MIN, -1, 2, {1, 0}},
    {2, INT64_MIN, INT64_MAX, -1, 0, {0}},
    {2, INT64_MAX, INT64_MIN, 1, 0, {0}},
    {2, 3, 1, 1, 0, {0}},
    {2, 1, 3, -1, 0, {0}},
    {2, 0, NONE, INT64_MAX, 1, {0}},
    {2, NONE, NONE, INT64_MIN, 1, {1}},
    {2, -1, -6, -2, 1, {1}},
    {2, 2, 2, 1, 0, {0}},
    {2, 4, 0, -3, 1, {1}},
    {2, -3, -1, NONE, 1, {0}},
    {2, 5, NONE, -2, 1, {1}},
    {2, -6, 3, 2, 1, {0}},
    {2, 1, NONE, -9223372036854775807, 1, {1}},
    {2, NONE, 1, -1, 0, {0}},
    {5, NONE, NONE, NONE, 5, {0, 1, 2, 3, 4}},
    {5, NONE, NONE, -1, 5, {4, 3, 2, 1, 0}},
    {5, 1, NONE, NONE, 4, {1, 2, 3, 4}},
    {5, -1, NONE, NONE, 1, {4}},
    {5, -2, NONE, -1, 4, {3, 2, 1, 0}},
    {5, NONE, -1, NONE, 4, {0, 1, 2, 3}},
    {5, NONE, NONE, 2, 3, {0, 2, 4}},
    {5, NONE, NONE, -2, 3, {4, 2, 0}},
    {5, 1, -1, 3, 1, {1}},
    {5, -100, 100, 1, 5, {0, 1, 2, 3, 4}},
    {5, 100, -100, -1, 5, {4, 3, 2, 1, 0}},
    {5, INT64_MIN, INT64_MAX, 1, 5, {0, 1, 2, 3, 4}},
    {5, INT64_MAX, INT64_MIN, -1, 5, {4, 3, 2, 1, 0}},
    {5, INT64_MIN, INT64_MAX, -1, 0, {0}},
    {5, INT64_MAX, INT64_MIN, 1, 0, {0}},
    {5, 3, 1, 1, 0, {0}},
    {5, 1, 3, -1, 0, {0}},
    {5, 0, NONE, INT64_MAX, 1, {0}},
    {5, NONE, NONE, INT64_MIN, 1, {4}},
    {5, -1, -6, -2, 3, {4, 2, 0}},
    {5, 2, 2, 1, 0, {0}},
    {5, 4, 0, -3, 2, {4, 1}},
    {5, -3, -1, NONE, 2, {2, 3}},
    {5, 5, NONE, -2, 3, {4, 2, 0}},
    {5, -6, 3, 2, 2, {0, 2}},
    {5, 1, NONE, -9223372036854775807, 1, {1}},
    {5, NONE, 1, -1, 3, {4, 3, 2}},
    {7, NONE, NONE, NONE, 7, {0, 1, 2, 3, 4, 5, 6}},
    {7, NONE, NONE, -1, 7, {6, 5, 4, 3, 2, 1, 0}},
    {7, 1, NONE, NONE, 6, {1, 2, 3, 4, 5, 6}},
    {7, -1, NONE, NONE, 1, {6}},
    {7, -2, NONE, -1, 6, {5, 4, 3, 2, 1, 0}},
    {7, NONE, -1, NONE, 6, {0, 1, 2, 3, 4, 5}},
    {7, NONE, NONE, 2, 4, {0, 2, 4, 6}},
    {7, NONE, NONE, -2, 4, {6, 4, 2, 0}},
    {7, 1, -1, 3, 2, {1, 4}},
    {7, -100, 100, 1, 7, {0, 1, 2, 3, 4, 5, 6}},
    {7, 100, -100, -1, 7, {6, 5, 4, 3, 2, 1, 0}},
    {7, INT64_MIN, INT64_MAX, 1, 7, {0, 1, 2, 3, 4, 5, 6}},
    {7, INT64_MAX, INT64_MIN, -1, 7, {6, 5, 4, 3, 2, 1, 0}},
    {7, INT64_MIN, INT64_MAX, -1, 0, {0}},
    {7, INT64_MAX, INT64_MIN, 1, 0, {0}},
    {7, 3, 1, 1, 0, {0}},
    {7, 1, 3, -1, 0, {0}},
    {7, 0, NONE, INT64_MAX, 1, {0}},
    {7, NONE, NONE, INT64_MIN, 1, {6}},
    {7, -1, -6, -2, 3, {6, 4, 2}},
    {7, 2, 2, 1, 0, {0}},
    {7, 4, 0, -3, 2, {4, 1}},
    {7, -3, -1, NONE, 2, {4, 5}},
    {7, 5, NONE, -2, 3, {5, 3, 1}},
    {7, -6, 3, 2, 1, {1}},
    {7, 1, NONE, -9223372036854775807, 1, {1}},
    {7, NONE, 1, -1, 5, {6, 5, 4, 3, 2}},
};

START_TEST(slice_matches_python)
{
    for (size_t k = 0; k < sizeof(py_slices) / sizeof(py_slices[0]); k++) {
        ir_graph_fini(&g);
        ir_graph_init(&g);
        int x = counting(1, &py_slices[k].n, 0);
        struct ir_slice s = {.nstarts = py_slices[k].start == NONE ? -1 : 1,
                             .nstops = py_slices[k].stop == NONE ? -1 : 1,
                             .nsteps = py_slices[k].step == NONE ? -1 : 1,
                             .starts = &py_slices[k].start,
                             .stops = &py_slices[k].stop,
                             .steps = &py_slices[k].step};
        int y = ir_lower_slice(&g, x, &s, &err);
        ck_assert_msg(y >= 0, "case %zu: %s", k, err.message);
        ck_assert_msg(g.nodes[y].shape[0] == py_slices[k].len, "case %zu: %lld elements, want %d",
                      k, (long long) g.nodes[y].shape[0], py_slices[k].len);
        void **out = NULL;
        ck_assert_int_eq(ir_interp_run(&g, NULL, &out, &err), KILN_OK);
        if (py_slices[k].len > 0)
            ck_assert_msg(memcmp(out[y], py_slices[k].want,
                                 (size_t) py_slices[k].len * sizeof(int64_t)) == 0,
                          "case %zu", k);
        ir_interp_free(&g, out);
    }
}
END_TEST

/* ---- random shapes against references ----------------------------------- */

struct args {
    int rank;
    int64_t xshape[KILN_LIMIT_RANK];
    uint32_t perm[KILN_LIMIT_RANK]; /* transpose */
    bool flipped[KILN_LIMIT_RANK];  /* flip */
    int64_t start[KILN_LIMIT_RANK], step[KILN_LIMIT_RANK]; /* slice, after clamping */
    int64_t before[KILN_LIMIT_RANK];                          /* pad */
    int n, dim;                                               /* concat */
    int64_t sizes[IR_MAX_INPUTS];
};

static int64_t ref_transpose(const void *arg, const int64_t *c)
{
    const struct args *a = arg;
    int64_t src[KILN_LIMIT_RANK];
    for (int k = 0; k < a->rank; k++)
        src[a->perm[k]] = c[k];
    return flat(a->rank, a->xshape, src);
}

static int64_t ref_flip(const void *arg, const int64_t *c)
{
    const struct args *a = arg;
    int64_t src[KILN_LIMIT_RANK];
    for (int d = 0; d < a->rank; d++)
        src[d] = a->flipped[d] ? a->xshape[d] - 1 - c[d] : c[d];
    return flat(a->rank, a->xshape, src);
}

static int64_t ref_slice(const void *arg, const int64_t *c)
{
    const struct args *a = arg;
    int64_t src[KILN_LIMIT_RANK];
    for (int d = 0; d < a->rank; d++)
        src[d] = a->start[d] + a->step[d] * c[d];
    return flat(a->rank, a->xshape, src);
}

static int64_t ref_pad(const void *arg, const int64_t *c)
{
    const struct args *a = arg;
    int64_t src[KILN_LIMIT_RANK];
    for (int d = 0; d < a->rank; d++) {
        src[d] = c[d] - a->before[d];
        if (src[d] < 0 || src[d] >= a->xshape[d])
            return FILL;
    }
    return flat(a->rank, a->xshape, src);
}

static int64_t ref_concat(const void *arg, const int64_t *c)
{
    const struct args *a = arg;
    int64_t src[KILN_LIMIT_RANK], at = c[a->dim];
    memcpy(src, c, sizeof(src));
    for (int k = 0; k < a->n; k++) {
        if (at < a->sizes[k]) {
            int64_t shape[KILN_LIMIT_RANK];
            memcpy(shape, a->xshape, sizeof(shape));
            shape[a->dim] = a->sizes[k];
            src[a->dim] = at;
            return (int64_t) k * 1000000 + flat(a->rank, shape, src);
        }
        at -= a->sizes[k];
    }
    ck_abort_msg("coordinate past the last input");
    return 0;
}

/* Python's slice.indices(), written as CPython's PySlice_AdjustIndices. */
static int64_t py_len(int64_t n, int64_t *start, int64_t *stop, int64_t step)
{
    if (*start < 0) {
        *start += n;
        if (*start < 0)
            *start = step < 0 ? -1 : 0;
    } else if (*start >= n) {
        *start = step < 0 ? n - 1 : n;
    }
    if (*stop < 0) {
        *stop += n;
        if (*stop < 0)
            *stop = step < 0 ? -1 : 0;
    } else if (*stop >= n) {
        *stop = step < 0 ? n - 1 : n;
    }
    /* |step| as unsigned: -INT64_MIN does not fit an int64. */
    uint64_t mag = step < 0 ? (uint64_t) 0 - (uint64_t) step : (uint64_t) step;
    if (step < 0)
        return *stop < *start ? (int64_t) ((uint64_t) (*start - *stop - 1) / mag) + 1 : 0;
    return *start < *stop ? (int64_t) ((uint64_t) (*stop - *start - 1) / mag) + 1 : 0;
}

START_TEST(random_against_references)
{
    for (int trial = 0; trial < 300; trial++) {
        ir_graph_fini(&g);
        ir_graph_init(&g);
        struct args a = {0};
        a.rank = rand_shape(a.xshape);
        int x = counting(a.rank, a.xshape, 0);
        int64_t shape[KILN_LIMIT_RANK];

        /* transpose: a random permutation */
        for (int d = 0; d < a.rank; d++)
            a.perm[d] = (uint32_t) d;
        for (int d = a.rank - 1; d > 0; d--) {
            int e = (int) rnd(0, d);
            uint32_t t = a.perm[d];
            a.perm[d] = a.perm[e];
            a.perm[e] = t;
        }
        for (int k = 0; k < a.rank; k++)
            shape[k] = a.xshape[a.perm[k]];
        check(ir_lower_transpose(&g, x, a.rank, a.perm, &err), a.rank, shape, ref_transpose, &a);

        /* flip: a random subset of dims, listed in a random order */
        uint32_t dims[KILN_LIMIT_RANK];
        int nd = 0;
        for (int k = 0; k < a.rank; k++)
            if ((a.flipped[a.perm[k]] = rnd(0, 1) != 0))
                dims[nd++] = a.perm[k];
        check(ir_lower_flip(&g, x, nd, dims, &err), a.rank, a.xshape, ref_flip, &a);

        /* slice: bounds around and beyond the dims, steps of both signs */
        int64_t starts[KILN_LIMIT_RANK], stops[KILN_LIMIT_RANK];
        for (int d = 0; d < a.rank; d++) {
            starts[d] = rnd(0, 7) == 0 ? INT64_MIN : rnd(-7, 7);
            stops[d] = rnd(0, 7) == 0 ? INT64_MAX : rnd(-7, 7);
            a.step[d] = rnd(0, 7) == 0 ? INT64_MIN + rnd(0, 1) : rnd(1, 4) * (rnd(0, 1) ? 1 : -1);
            int64_t b = starts[d], e = stops[d];
            shape[d] = py_len(a.xshape[d], &b, &e, a.step[d]);
            a.start[d] = b;
        }
        int64_t steps[KILN_LIMIT_RANK];
        memcpy(steps, a.step, sizeof(steps));
        struct ir_slice s = {a.rank, a.rank, a.rank, starts, stops, steps};
        check(ir_lower_slice(&g, x, &s, &err), a.rank, shape, ref_slice, &a);

        /* pad: growing and cropping */
        int64_t pads[2 * KILN_LIMIT_RANK];
        bool bad = false;
        for (int d = 0; d < a.rank; d++) {
            pads[2 * d] = a.before[d] = rnd(-2, 3);
            pads[2 * d + 1] = rnd(-2, 3);
            shape[d] = a.xshape[d] + pads[2 * d] + pads[2 * d + 1];
            bad |= shape[d] < 0;
        }
        if (!bad) {
            check(ir_lower_pad(&g, x, 2 * a.rank, pads, (struct ir_scalar){.i = FILL}, &err),
                  a.rank, shape, ref_pad, &a);
        } else {
            uint32_t count = g.count;
            ck_assert_int_eq(ir_lower_pad(&g, x, 2 * a.rank, pads, (struct ir_scalar){0}, &err),
                             -1);
            ck_assert_int_eq(err.code, KILN_EVALUE);
            ck_assert(strncmp(err.field, "pads[", 5) == 0);
            ck_assert_uint_eq(g.count, count);
        }

        /* concat: 1..5 inputs along a random dim */
        if (a.rank == 0)
            continue;
        a.dim = (int) rnd(0, a.rank - 1);
        a.n = (int) rnd(1, 5);
        int xs[IR_MAX_INPUTS];
        memcpy(shape, a.xshape, sizeof(shape));
        shape[a.dim] = 0;
        for (int k = 0; k < a.n; k++) {
            int64_t in[KILN_LIMIT_RANK];
            memcpy(in, a.xshape, sizeof(in));
            in[a.dim] = a.sizes[k] = rnd(0, 3);
            shape[a.dim] += a.sizes[k];
            xs[k] = counting(a.rank, in, (int64_t) k * 1000000);
        }
        int y = ir_lower_concat(&g, a.n, xs, a.dim, &err);
        check(y, a.rank, shape, ref_concat, &a);
    }
}
END_TEST

START_TEST(concat_is_exact_and_small)
{
    /* -0.0 and NaN survive: elements are selected, not summed. */
    double v[3] = {-0.0, 0.0, 0.0};
    memcpy(&v[1], &(uint64_t){0x7ff8000000000123u}, sizeof(double));
    int64_t three = 3;
    int a = ir_add_array(&g, IR_DTYPE_FLOAT64, 1, &three, v, sizeof(v), &err);
    int xs[2] = {a, a};
    uint32_t before = g.count;
    int y = ir_lower_concat(&g, 2, xs, 0, &err);
    ck_assert_int_ge(y, 0);
    ck_assert_uint_eq(g.count - before, 5); /* 3m - 1 */
    void **out = NULL;
    ck_assert_int_eq(ir_interp_run(&g, NULL, &out, &err), KILN_OK);
    ck_assert_mem_eq(out[y], v, sizeof(v));
    ck_assert_mem_eq((const double *) out[y] + 3, v, sizeof(v));
    ir_interp_free(&g, out);
    /* One input with elements: a single copy; empty inputs add nothing. */
    int64_t zero = 0;
    int e = ir_add_array(&g, IR_DTYPE_FLOAT64, 1, &zero, NULL, 0, &err);
    int ys[3] = {e, a, e};
    before = g.count;
    ck_assert_int_ge(ir_lower_concat(&g, 3, ys, 0, &err), 0);
    ck_assert_uint_eq(g.count - before, 1);
    int es[2] = {e, e};
    y = ir_lower_concat(&g, 2, es, 0, &err);
    ck_assert_int_ge(y, 0);
    ck_assert_int_eq(g.nodes[y].shape[0], 0);
}
END_TEST

START_TEST(refusals_name_the_field)
{
    int64_t s23[2] = {2, 3}, s24[2] = {2, 4}, s231[3] = {2, 3, 1};
    int x = counting(2, s23, 0);
    int w = counting(2, s24, 0);
    int r3 = counting(3, s231, 0);
    int b = ir_add_const(&g, IR_DTYPE_BOOL, 2, s23, (struct ir_scalar){.i = 1}, &err);
    int scalar = counting(0, NULL, 0);
    uint32_t p10[2] = {1, 0}, p11[2] = {1, 1}, p2[2] = {0, 2}, p0[1] = {0};
    REFUSED(ir_lower_transpose(&g, x, 1, p0, &err), KILN_EVALUE, "dims");
    REFUSED(ir_lower_transpose(&g, x, 2, p11, &err), KILN_EVALUE, "dims[1]");
    REFUSED(ir_lower_transpose(&g, x, 2, p2, &err), KILN_EVALUE, "dims[1]");
    REFUSED(ir_lower_transpose(&g, 9999, 2, p10, &err), KILN_EVALUE, "in[0]");
    REFUSED(ir_lower_flip(&g, x, 2, p11, &err), KILN_EVALUE, "dims[1]");
    REFUSED(ir_lower_flip(&g, x, 2, p2, &err), KILN_EVALUE, "dims[1]");

    int64_t one[2] = {1, 1}, zero_step[2] = {1, 0};
    struct ir_slice s = {.nstarts = 1, .nstops = -1, .nsteps = -1, .starts = one};
    REFUSED(ir_lower_slice(&g, x, &s, &err), KILN_EVALUE, "starts");
    s = (struct ir_slice){.nstarts = -1, .nstops = 3, .nsteps = -1, .stops = one};
    REFUSED(ir_lower_slice(&g, x, &s, &err), KILN_EVALUE, "stops");
    s = (struct ir_slice){.nstarts = -1, .nstops = -1, .nsteps = 2, .steps = zero_step};
    REFUSED(ir_lower_slice(&g, x, &s, &err), KILN_EVALUE, "steps[1]");

    int64_t pads3[3] = {0, 0, 0}, crop[4] = {0, 0, -2, -2}, huge[4] = {0, 0, 0, KILN_LIMIT_DIM};
    int64_t beyond[4] = {0, KILN_LIMIT_DIM + 1, 0, 0}, ok[4] = {0, 0, 0, 0};
    struct ir_scalar zero = {0};
    REFUSED(ir_lower_pad(&g, x, 3, pads3, zero, &err), KILN_EVALUE, "pads");
    REFUSED(ir_lower_pad(&g, x, 4, crop, zero, &err), KILN_EVALUE, "pads[3]");
    REFUSED(ir_lower_pad(&g, x, 4, huge, zero, &err), KILN_ELIMIT, "pads[3]");
    REFUSED(ir_lower_pad(&g, x, 4, beyond, zero, &err), KILN_EVALUE, "pads[1]");
    REFUSED(ir_lower_pad(&g, b, 4, ok, (struct ir_scalar){.i = 2}, &err), KILN_EVALUE, "value");

    int xw[2] = {x, w}, xr[2] = {x, r3}, xb[2] = {x, b}, ss[2] = {scalar, scalar};
    REFUSED(ir_lower_concat(&g, 2, xw, 0, &err), KILN_EVALUE, "in[1]");
    REFUSED(ir_lower_concat(&g, 2, xr, 0, &err), KILN_EVALUE, "in[1]");
    REFUSED(ir_lower_concat(&g, 2, xb, 0, &err), KILN_ETYPE, "in[1]");
    REFUSED(ir_lower_concat(&g, 2, xw, 2, &err), KILN_EVALUE, "dim");
    REFUSED(ir_lower_concat(&g, 2, ss, 0, &err), KILN_EVALUE, "in[0]");
    REFUSED(ir_lower_concat(&g, 0, xw, 0, &err), KILN_EVALUE, "in");
    /* Joined past the dim limit, and past the elements limit. */
    int64_t big[1] = {KILN_LIMIT_DIM}, wide[2] = {INT64_C(1) << 20, INT64_C(1) << 20};
    int c = ir_add_const(&g, IR_DTYPE_INT8, 1, big, zero, &err);
    int cw = ir_add_const(&g, IR_DTYPE_INT8, 2, wide, zero, &err);
    int cc[2] = {c, c}, ccw[2] = {cw, cw};
    REFUSED(ir_lower_concat(&g, 2, cc, 0, &err), KILN_ELIMIT, "in[1]");
    REFUSED(ir_lower_concat(&g, 2, ccw, 0, &err), KILN_ELIMIT, "in");

    ck_assert_str_eq(ir_lower_name(IR_LOWER_TRANSPOSE), "transpose");
    ck_assert_str_eq(ir_lower_name(IR_LOWER_FLIP), "flip");
    ck_assert_ptr_null(ir_lower_name(IR_LOWER_END));
    ck_assert_ptr_null(ir_lower_name(IR_OP_REINDEX));
    ck_assert_ptr_null(ir_op_name(IR_LOWER_CONCAT)); /* never an IR op */
}
END_TEST

/* A concat that runs out of graph nodes half way takes back what it added. */
START_TEST(concat_undone_at_the_node_limit)
{
    int64_t two = 2;
    int a = counting(1, &two, 0);
    struct ir_scalar zero = {0};
    while (ir_add_const(&g, IR_DTYPE_INT8, 0, NULL, zero, &err) >= 0)
        ;
    ck_assert_int_eq(err.code, KILN_ELIMIT);
    /* Room for 3 of the 5 nodes: the last consts own nothing, so dropping
     * them is exact. */
    g.count -= 3;
    int xs[2] = {a, a};
    REFUSED(ir_lower_concat(&g, 2, xs, 0, &err), KILN_ELIMIT, "");
    ck_assert_int_ge(ir_add_const(&g, IR_DTYPE_INT8, 0, NULL, zero, &err), 0); /* still usable */
}
END_TEST

int main(void)
{
    Suite *su = suite_create("lower");
    TCase *tc = tcase_create("lower");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, slice_matches_python);
    tcase_add_test(tc, random_against_references);
    tcase_add_test(tc, concat_is_exact_and_small);
    tcase_add_test(tc, refusals_name_the_field);
    tcase_add_test(tc, concat_undone_at_the_node_limit);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
