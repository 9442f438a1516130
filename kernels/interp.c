/* interp.c: the reference interpreter (semantics in interp.h).
 *
 * Deliberately naive: one pass per node, element by element, every
 * element read and written through a dtype switch and memcpy (so no
 * alignment or aliasing assumption is made about extern or array data),
 * integers widened to 64 bits and floats to double. Speed is not a goal;
 * being obviously right is. The scalar rules live in small functions that
 * mirror interp.h's spec line by line, so a reviewer can check one
 * against the other.
 */
#include "interp.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_err.h"
#include "philox.h"

/* One run: the graph, its inputs, the buffers made so far, the quota. */
struct interp {
    const struct ir_graph *g;
    const void *const *externs;
    void **bufs;
    size_t held, max_bytes;
    struct ir_error *err;
};

/* A reduction accumulator: integers as 64-bit two's complement, floats as
 * double. */
union acc {
    int64_t i;
    uint64_t u;
    double f;
};

/* ---- dtypes, loads and stores ---------------------------------------- */

static bool dt_is_float(int dt)
{
    return ir_dtype_info((enum ir_dtype) dt)->kind == IR_KIND_FLOAT;
}

static size_t dt_size(int dt)
{
    return ir_dtype_size((enum ir_dtype) dt);
}

/* Bits of an integer dtype (8, 32, 64). */
static int dt_bits(int dt)
{
    return 8 * (int) dt_size(dt);
}

/* The range of a bool or integer dtype. */
static void int_range(int dt, int64_t *lo, int64_t *hi)
{
    switch (dt) {
    case IR_DTYPE_BOOL:
        *lo = 0, *hi = 1;
        break;
    case IR_DTYPE_INT8:
        *lo = INT8_MIN, *hi = INT8_MAX;
        break;
    case IR_DTYPE_UINT8:
        *lo = 0, *hi = UINT8_MAX;
        break;
    case IR_DTYPE_INT32:
        *lo = INT32_MIN, *hi = INT32_MAX;
        break;
    default:
        *lo = INT64_MIN, *hi = INT64_MAX;
        break;
    }
}

static double load_float(const void *buf, int dt, int64_t k)
{
    const unsigned char *p = (const unsigned char *) buf + (size_t) k * dt_size(dt);
    if (dt == IR_DTYPE_FLOAT32) {
        float f;
        memcpy(&f, p, sizeof f);
        return f;
    }
    double d;
    memcpy(&d, p, sizeof d);
    return d;
}

/* CAST float -> integer: NaN 0, truncated toward zero, saturated. The
 * bounds are powers of two (or 2^k - 1, which rounds up to 2^k for int64),
 * so the comparisons are exact and the final conversion is in range. */
static int64_t float_to_int(double x, int dt)
{
    int64_t lo, hi;
    int_range(dt, &lo, &hi);
    if (isnan(x))
        return 0;
    double t = trunc(x);
    if (t <= (double) lo)
        return lo;
    if (t >= (double) hi)
        return hi;
    return (int64_t) t;
}

/* An element as int64: integers exactly, bool 0/1, floats as CAST. */
static int64_t load_int(const void *buf, int dt, int64_t k)
{
    const unsigned char *p = (const unsigned char *) buf + (size_t) k * dt_size(dt);
    switch (dt) {
    case IR_DTYPE_BOOL:
        return p[0] != 0;
    case IR_DTYPE_INT8: {
        int8_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    case IR_DTYPE_UINT8:
        return p[0];
    case IR_DTYPE_INT32: {
        int32_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    case IR_DTYPE_INT64: {
        int64_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    default:
        return float_to_int(load_float(buf, dt, k), IR_DTYPE_INT64);
    }
}

static bool truthy(const void *buf, int dt, int64_t k)
{
    return dt_is_float(dt) ? load_float(buf, dt, k) != 0.0 : load_int(buf, dt, k) != 0;
}

/* Stores v truncated to an integer dtype's width; bool stores v != 0. */
static void store_int(void *buf, int dt, int64_t k, uint64_t v)
{
    unsigned char *p = (unsigned char *) buf + (size_t) k * dt_size(dt);
    switch (dt) {
    case IR_DTYPE_BOOL:
        p[0] = v != 0;
        break;
    case IR_DTYPE_INT8:
    case IR_DTYPE_UINT8:
        p[0] = (unsigned char) v;
        break;
    case IR_DTYPE_INT32: {
        uint32_t w = (uint32_t) v;
        memcpy(p, &w, sizeof w);
        break;
    }
    default:
        memcpy(p, &v, sizeof v);
        break;
    }
}

/* Stores v rounded to a float dtype. */
static void store_float(void *buf, int dt, int64_t k, double v)
{
    unsigned char *p = (unsigned char *) buf + (size_t) k * dt_size(dt);
    if (dt == IR_DTYPE_FLOAT32) {
        float f = (float) v;
        memcpy(p, &f, sizeof f);
    } else {
        memcpy(p, &v, sizeof v);
    }
}

/* Element j of src to element k of dst, same dtype; bool canonicalised. */
static void copy_elem(void *dst, int64_t k, const void *src, int64_t j, int dt)
{
    if (dt == IR_DTYPE_BOOL) {
        store_int(dst, dt, k, (uint64_t) load_int(src, dt, j));
        return;
    }
    size_t s = dt_size(dt);
    memcpy((unsigned char *) dst + (size_t) k * s, (const unsigned char *) src + (size_t) j * s, s);
}

/* A scalar attribute (CONST, overflow) in dtype dt. */
static void store_scalar(void *buf, int dt, int64_t k, struct ir_scalar v)
{
    if (dt_is_float(dt))
        store_float(buf, dt, k, v.f);
    else
        store_int(buf, dt, k, (uint64_t) v.i);
}

/* Advances row-major coordinates c within shape by one element. */
static void coords_next(int rank, const int64_t *shape, int64_t *c)
{
    for (int d = rank - 1; d >= 0; d--) {
        if (++c[d] < shape[d])
            return;
        c[d] = 0;
    }
}

static int64_t dot(int rank, const int64_t *c, const int64_t *stride)
{
    int64_t s = 0;
    for (int d = 0; d < rank; d++)
        s += c[d] * stride[d];
    return s;
}

/* ---- integer scalar rules --------------------------------------------- */

/* a >> s for 0 <= s < 64, arithmetic, without right-shifting a negative. */
static int64_t shr_arith(int64_t a, int64_t s)
{
    return a >= 0 ? a >> s : ~(~a >> s);
}

static uint64_t int_floor_div(int64_t a, int64_t b)
{
    if (b == 0)
        return 0;
    if (b == -1)
        return 0 - (uint64_t) a; /* INT64_MIN // -1 wraps */
    int64_t q = a / b;
    if (a % b != 0 && (a < 0) != (b < 0))
        q -= 1;
    return (uint64_t) q;
}

static uint64_t int_mod(int64_t a, int64_t b)
{
    if (b == 0 || b == -1)
        return 0;
    int64_t r = a % b;
    if (r != 0 && (r < 0) != (b < 0))
        r += b; /* opposite signs: cannot overflow */
    return (uint64_t) r;
}

static uint64_t int_pow(int64_t a, int64_t b)
{
    if (b < 0) {
        if (a == 1)
            return 1;
        if (a == -1)
            return (b & 1) ? UINT64_MAX : 1;
        return 0;
    }
    uint64_t r = 1, base = (uint64_t) a, e = (uint64_t) b;
    while (e) {
        if (e & 1)
            r *= base;
        base *= base;
        e >>= 1;
    }
    return r;
}

static uint64_t int_shift(int op, int64_t a, int64_t b, int bits)
{
    bool in_range = b >= 0 && b < bits;
    if (op == IR_OP_SHL)
        return in_range ? (uint64_t) a << b : 0;
    if (in_range)
        return (uint64_t) shr_arith(a, b);
    return a < 0 ? UINT64_MAX : 0;
}

static uint64_t int_unary(int op, int64_t a, int dt)
{
    switch (op) {
    case IR_OP_NEG:
        return 0 - (uint64_t) a;
    case IR_OP_ABS:
        return a < 0 ? 0 - (uint64_t) a : (uint64_t) a;
    case IR_OP_SIGN:
        return (uint64_t) (int64_t) ((a > 0) - (a < 0));
    case IR_OP_BITWISE_NOT:
        return dt == IR_DTYPE_BOOL ? (uint64_t) (a == 0) : ~(uint64_t) a;
    default:
        return 0; /* unreachable for a valid node */
    }
}

static uint64_t int_binary(int op, int64_t a, int64_t b, int dt)
{
    uint64_t ua = (uint64_t) a, ub = (uint64_t) b;
    switch (op) {
    case IR_OP_ADD:
        return ua + ub;
    case IR_OP_SUB:
        return ua - ub;
    case IR_OP_MUL:
        return ua * ub;
    case IR_OP_FLOOR_DIV:
        return int_floor_div(a, b);
    case IR_OP_MOD:
        return int_mod(a, b);
    case IR_OP_POW:
        return int_pow(a, b);
    case IR_OP_MAXIMUM:
        return a >= b ? ua : ub;
    case IR_OP_MINIMUM:
        return a <= b ? ua : ub;
    case IR_OP_BITWISE_AND:
        return ua & ub;
    case IR_OP_BITWISE_OR:
        return ua | ub;
    case IR_OP_BITWISE_XOR:
        return ua ^ ub;
    case IR_OP_SHL:
    case IR_OP_SHR:
        return int_shift(op, a, b, dt_bits(dt));
    default:
        return 0; /* unreachable for a valid node */
    }
}

/* ---- float scalar rules ----------------------------------------------- */

static double round_half_even(double x)
{
    double r = floor(x);
    double d = x - r; /* exact: the fraction of x */
    if (d > 0.5 || (d == 0.5 && fmod(r, 2.0) != 0.0))
        r += 1.0;
    return copysign(r, x); /* -0.4 -> -0.0, as rint */
}

static double float_unary(int op, double x)
{
    switch (op) {
    case IR_OP_NEG:
        return -x;
    case IR_OP_ABS:
        return fabs(x);
    case IR_OP_EXP:
        return exp(x);
    case IR_OP_LOG:
        return log(x);
    case IR_OP_SQRT:
        return sqrt(x);
    case IR_OP_RSQRT:
        return 1.0 / sqrt(x);
    case IR_OP_SIN:
        return sin(x);
    case IR_OP_COS:
        return cos(x);
    case IR_OP_TAN:
        return tan(x);
    case IR_OP_TANH:
        return tanh(x);
    case IR_OP_SIGMOID:
        return 1.0 / (1.0 + exp(-x));
    case IR_OP_ERF:
        return erf(x);
    case IR_OP_FLOOR:
        return floor(x);
    case IR_OP_CEIL:
        return ceil(x);
    case IR_OP_ROUND:
        return round_half_even(x);
    case IR_OP_SIGN:
        return x > 0 ? 1.0 : x < 0 ? -1.0 : x == 0 ? 0.0 : x;
    default:
        return NAN; /* unreachable for a valid node */
    }
}

/* numpy's npy_divmod for b != 0: the Python quotient and remainder. */
static double float_divmod(double a, double b, double *mod)
{
    double m = fmod(a, b);
    double div = (a - m) / b;
    if (m != 0) {
        if ((b < 0) != (m < 0)) {
            m += b;
            div -= 1.0;
        }
    } else {
        m = copysign(0.0, b);
    }
    double q;
    if (div != 0) {
        q = floor(div);
        if (div - q > 0.5)
            q += 1.0;
    } else {
        q = copysign(0.0, a / b);
    }
    *mod = m;
    return q;
}

static double float_binary(int op, double a, double b)
{
    double m;
    switch (op) {
    case IR_OP_ADD:
        return a + b;
    case IR_OP_SUB:
        return a - b;
    case IR_OP_MUL:
        return a * b;
    case IR_OP_DIV:
        return a / b;
    case IR_OP_FLOOR_DIV:
        return b == 0 ? a / b : float_divmod(a, b, &m);
    case IR_OP_MOD:
        if (b == 0)
            return fmod(a, b);
        float_divmod(a, b, &m);
        return m;
    case IR_OP_POW:
        return pow(a, b);
    case IR_OP_MAXIMUM:
        return isnan(a) ? a : isnan(b) ? b : a >= b ? a : b;
    case IR_OP_MINIMUM:
        return isnan(a) ? a : isnan(b) ? b : a <= b ? a : b;
    default:
        return NAN; /* unreachable for a valid node */
    }
}

/* Comparisons, in the operands' own domain. */
static bool compare(int op, const void *x, const void *y, int dt, int64_t k)
{
    double fa = 0, fb = 0;
    int64_t ia = 0, ib = 0;
    bool f = dt_is_float(dt);
    if (f)
        fa = load_float(x, dt, k), fb = load_float(y, dt, k);
    else
        ia = load_int(x, dt, k), ib = load_int(y, dt, k);
    switch (op) {
    case IR_OP_EQ:
        return f ? fa == fb : ia == ib;
    case IR_OP_NE:
        return f ? fa != fb : ia != ib;
    case IR_OP_LT:
        return f ? fa < fb : ia < ib;
    case IR_OP_LE:
        return f ? fa <= fb : ia <= ib;
    case IR_OP_GT:
        return f ? fa > fb : ia > ib;
    default:
        return f ? fa >= fb : ia >= ib;
    }
}

/* ---- element-wise nodes ---------------------------------------------- */

static void cast_elem(void *y, int ydt, const void *x, int xdt, int64_t k)
{
    if (!dt_is_float(xdt)) {
        int64_t v = load_int(x, xdt, k);
        if (ydt == IR_DTYPE_FLOAT32)
            store_float(y, ydt, k, (float) v); /* one rounding, even from int64 */
        else if (ydt == IR_DTYPE_FLOAT64)
            store_float(y, ydt, k, (double) v);
        else
            store_int(y, ydt, k, (uint64_t) v);
        return;
    }
    double v = load_float(x, xdt, k);
    if (dt_is_float(ydt))
        store_float(y, ydt, k, v);
    else if (ydt == IR_DTYPE_BOOL)
        store_int(y, ydt, k, v != 0.0);
    else
        store_int(y, ydt, k, (uint64_t) float_to_int(v, ydt));
}

static void eval_unary(const struct ir_node *n, const struct ir_node *xn, const void *x, void *y)
{
    int dt = n->dtype, xdt = xn->dtype;
    for (int64_t k = 0; k < n->numel; k++) {
        if (n->op == IR_OP_CAST)
            cast_elem(y, dt, x, xdt, k);
        else if (n->op == IR_OP_LOGICAL_NOT)
            store_int(y, dt, k, !truthy(x, xdt, k));
        else if (dt_is_float(dt))
            store_float(y, dt, k, float_unary(n->op, load_float(x, dt, k)));
        else
            store_int(y, dt, k, int_unary(n->op, load_int(x, dt, k), dt));
    }
}

static void eval_binary(const struct ir_node *n, int dt, const void *a, const void *b, void *y)
{
    for (int64_t k = 0; k < n->numel; k++) {
        switch (n->op) {
        case IR_OP_EQ:
        case IR_OP_NE:
        case IR_OP_LT:
        case IR_OP_LE:
        case IR_OP_GT:
        case IR_OP_GE:
            store_int(y, n->dtype, k, compare(n->op, a, b, dt, k));
            break;
        case IR_OP_LOGICAL_AND:
            store_int(y, n->dtype, k, truthy(a, dt, k) && truthy(b, dt, k));
            break;
        case IR_OP_LOGICAL_OR:
            store_int(y, n->dtype, k, truthy(a, dt, k) || truthy(b, dt, k));
            break;
        case IR_OP_LOGICAL_XOR:
            store_int(y, n->dtype, k, truthy(a, dt, k) != truthy(b, dt, k));
            break;
        default:
            if (dt_is_float(dt))
                store_float(y, dt, k,
                            float_binary(n->op, load_float(a, dt, k), load_float(b, dt, k)));
            else
                store_int(y, dt, k, int_binary(n->op, load_int(a, dt, k), load_int(b, dt, k), dt));
            break;
        }
    }
}

static void eval_where(const struct ir_node *n, int cdt, const void *c, const void *a,
                       const void *b, void *y)
{
    for (int64_t k = 0; k < n->numel; k++)
        copy_elem(y, k, truthy(c, cdt, k) ? a : b, k, n->dtype);
}

/* ---- sources ---------------------------------------------------------- */

static void eval_index(const struct ir_node *n, void *y)
{
    int64_t stride[KILN_LIMIT_RANK];
    int d = n->attr.index.dim;
    ir_node_strides(n, stride);
    for (int64_t k = 0; k < n->numel; k++)
        store_int(y, n->dtype, k, (uint64_t) ((k / stride[d]) % n->shape[d]));
}

static void eval_random(const struct ir_node *n, void *y)
{
    bool normal = n->attr.random.dist == IR_RANDOM_NORMAL;
    for (int64_t k = 0; k < n->numel; k++) {
        uint32_t r[4];
        philox_block(n->attr.random.seed, n->attr.random.offset + (uint64_t) k, r);
        double v;
        if (n->dtype == IR_DTYPE_FLOAT32)
            v = normal ? philox_normal_f32(r) : philox_uniform_f32(r);
        else
            v = normal ? philox_normal_f64(r) : philox_uniform_f64(r);
        store_float(y, n->dtype, k, v);
    }
}

/* A whole buffer of x copied into y (ARRAY, EXTERN, RESHAPE). */
static void eval_copy(const struct ir_node *n, const void *x, void *y)
{
    if (n->dtype != IR_DTYPE_BOOL) {
        if (n->numel > 0)
            memcpy(y, x, (size_t) n->numel * dt_size(n->dtype));
        return;
    }
    for (int64_t k = 0; k < n->numel; k++)
        copy_elem(y, k, x, k, n->dtype);
}

/* ---- broadcast and reduce --------------------------------------------- */

static void eval_broadcast(const struct ir_node *n, const struct ir_node *xn, const void *x,
                           void *y)
{
    int64_t xstride[KILN_LIMIT_RANK], map[KILN_LIMIT_RANK], c[KILN_LIMIT_RANK] = {0};
    ir_node_strides(xn, xstride);
    for (int d = 0, j = 0; d < n->rank; d++) {
        if (n->attr.broadcast.dims & (1u << d)) {
            map[d] = 0;
        } else {
            map[d] = xn->shape[j] == 1 ? 0 : xstride[j];
            j++;
        }
    }
    for (int64_t k = 0; k < n->numel; k++) {
        copy_elem(y, k, x, dot(n->rank, c, map), n->dtype);
        coords_next(n->rank, n->shape, c);
    }
}

static void acc_init(union acc *a, int op, int dt)
{
    int64_t lo, hi;
    bool f = dt_is_float(dt);
    if (!f)
        int_range(dt, &lo, &hi);
    switch (op) {
    case IR_REDUCE_MUL:
        if (f)
            a->f = 1.0;
        else
            a->i = 1;
        break;
    case IR_REDUCE_MAX:
        if (f)
            a->f = -INFINITY;
        else
            a->i = lo;
        break;
    case IR_REDUCE_MIN:
        if (f)
            a->f = INFINITY;
        else
            a->i = hi;
        break;
    default: /* ADD, MEAN */
        if (f)
            a->f = 0.0;
        else
            a->i = 0;
        break;
    }
}

static void acc_float(union acc *a, int op, double v)
{
    switch (op) {
    case IR_REDUCE_MUL:
        a->f *= v;
        break;
    case IR_REDUCE_MAX:
        if (!isnan(a->f) && (isnan(v) || v > a->f))
            a->f = v;
        break;
    case IR_REDUCE_MIN:
        if (!isnan(a->f) && (isnan(v) || v < a->f))
            a->f = v;
        break;
    default:
        a->f += v;
        break; /* ADD, MEAN */
    }
}

static void acc_int(union acc *a, int op, int64_t v)
{
    switch (op) {
    case IR_REDUCE_MUL:
        a->u *= (uint64_t) v;
        break;
    case IR_REDUCE_MAX:
        if (v > a->i)
            a->i = v;
        break;
    case IR_REDUCE_MIN:
        if (v < a->i)
            a->i = v;
        break;
    default:
        a->u += (uint64_t) v;
        break;
    }
}

/* Combines element j of x into a. */
static void acc_add(union acc *a, int op, int dt, const void *x, int64_t j)
{
    if (dt_is_float(dt))
        acc_float(a, op, load_float(x, dt, j));
    else
        acc_int(a, op, load_int(x, dt, j));
}

/* Stores the final value of a; count is the number of elements (MEAN). */
static void acc_store(const union acc *a, int op, int dt, int64_t count, void *y, int64_t k)
{
    if (!dt_is_float(dt))
        store_int(y, dt, k, a->u);
    else if (op == IR_REDUCE_MEAN)
        store_float(y, dt, k, count > 0 ? a->f / (double) count : NAN);
    else
        store_float(y, dt, k, a->f);
}

/* ---- memory ----------------------------------------------------------- */

static int interp_oom(struct interp *in, uint32_t node, const char *why, size_t bytes)
{
    if (in->err) {
        const char *name = ir_op_name(in->g->nodes[node].op);
        in->err->code = KILN_ENOMEM;
        in->err->node = node; /* the graph's node: callers map it to their own numbering */
        snprintf(in->err->field, sizeof in->err->field, "nodes[%u]", (unsigned) node);
        snprintf(in->err->message, sizeof in->err->message, "%s: %s (%zu bytes)",
                 name ? name : "?", why, bytes);
    }
    return KILN_ENOMEM;
}

/* count elements of size bytes each, counted against the quota; never
 * NULL on success, even for count 0. */
static int interp_alloc(struct interp *in, uint32_t node, int64_t count, size_t size, void **p,
                        size_t *bytes)
{
    *p = NULL;
    *bytes = 0;
    if (count < 0 || (uint64_t) count > SIZE_MAX / size)
        return interp_oom(in, node, "allocation size overflows", SIZE_MAX);
    size_t b = (size_t) count * size;
    if (b == 0)
        b = 1;
    if (b > in->max_bytes - in->held)
        return interp_oom(in, node, "over the interpreter's memory quota", b);
    *p = malloc(b);
    if (!*p)
        return interp_oom(in, node, "out of memory", b);
    in->held += b;
    *bytes = b;
    return KILN_OK;
}

static void interp_release(struct interp *in, void *p, size_t bytes)
{
    free(p);
    in->held -= bytes;
}

static int eval_reduce(struct interp *in, uint32_t i, const struct ir_node *xn, const void *x,
                       void *y)
{
    const struct ir_node *n = &in->g->nodes[i];
    int op = n->attr.reduce.op, dt = n->dtype;
    int64_t ystride[KILN_LIMIT_RANK], map[KILN_LIMIT_RANK], c[KILN_LIMIT_RANK] = {0};
    ir_node_strides(n, ystride);
    for (int d = 0, od = 0; d < xn->rank; d++) {
        bool reduced = n->attr.reduce.dims & (1u << d);
        map[d] = reduced ? 0 : ystride[od];
        if (!reduced || n->attr.reduce.keepdims)
            od++;
    }
    void *mem;
    size_t bytes;
    int rc = interp_alloc(in, i, n->numel, sizeof(union acc), &mem, &bytes);
    if (rc)
        return rc;
    union acc *a = mem;
    for (int64_t k = 0; k < n->numel; k++)
        acc_init(&a[k], op, dt);
    for (int64_t j = 0; j < xn->numel; j++) {
        acc_add(&a[dot(xn->rank, c, map)], op, dt, x, j);
        coords_next(xn->rank, xn->shape, c);
    }
    int64_t count = n->numel > 0 ? xn->numel / n->numel : 0;
    for (int64_t k = 0; k < n->numel; k++)
        acc_store(&a[k], op, dt, count, y, k);
    interp_release(in, a, bytes);
    return KILN_OK;
}

/* ---- reindex ---------------------------------------------------------- */

/* The extra inputs of a reindex, for the expression callback. */
struct interp_extras {
    const void *buf[KILN_LIMIT_EXPR_EXTRAS];
    int dt[KILN_LIMIT_EXPR_EXTRAS];
};

static int64_t interp_read_extra(void *arg, int k, int64_t flat)
{
    const struct interp_extras *e = arg;
    return load_int(e->buf[k], e->dt[k], flat);
}

/* Shapes, strides and extras of one reindex node, wired into env. */
struct reindex_ctx {
    int64_t xstride[KILN_LIMIT_RANK], ystride[KILN_LIMIT_RANK];
    struct interp_extras extras;
    struct ir_expr_env env;
};

static void reindex_ctx_init(struct reindex_ctx *r, const struct interp *in,
                             const struct ir_node *n, const int64_t *index)
{
    const struct ir_node *xn = &in->g->nodes[n->in[0]];
    ir_node_strides(xn, r->xstride);
    ir_node_strides(n, r->ystride);
    memset(&r->env, 0, sizeof r->env);
    r->env.index = index;
    r->env.xshape = xn->shape;
    r->env.xstride = r->xstride;
    r->env.yshape = n->shape;
    r->env.ystride = r->ystride;
    r->env.xrank = xn->rank;
    r->env.yrank = n->rank;
    for (int k = 0; k < n->attr.reindex->nextras && k < KILN_LIMIT_EXPR_EXTRAS; k++) {
        const struct ir_node *en = &in->g->nodes[n->in[1 + k]];
        r->extras.buf[k] = in->bufs[n->in[1 + k]];
        r->extras.dt[k] = en->dtype;
        r->env.extra_shape[k] = en->shape;
    }
    r->env.extra_read = interp_read_extra;
    r->env.extra_arg = &r->extras;
}

/* Evaluates the exprs and conds at env's index: the flat offset into a
 * tensor of `shape` (rank nexprs) and `stride`, or -1 when the element
 * overflows (out of range, or a cond holds). */
static int64_t reindex_target(const struct ir_reindex *ri, const struct ir_expr_env *env,
                              const int64_t *shape, const int64_t *stride, int64_t *scratch)
{
    int64_t flat = 0;
    for (int d = 0; d < ri->nexprs; d++) {
        int64_t c = ir_expr_eval(ri->exprs[d], env, scratch);
        if (c < 0 || c >= shape[d])
            return -1;
        flat += c * stride[d];
    }
    for (int j = 0; j < ri->nconds; j++)
        if (ir_expr_eval(ri->conds[j], env, scratch) != 0)
            return -1;
    return flat;
}

static void eval_reindex(struct interp *in, uint32_t i, const void *x, void *y)
{
    const struct ir_node *n = &in->g->nodes[i];
    const struct ir_reindex *ri = n->attr.reindex;
    int64_t c[KILN_LIMIT_RANK] = {0}, scratch[KILN_LIMIT_EXPR_NODES];
    struct reindex_ctx r;
    reindex_ctx_init(&r, in, n, c);
    for (int64_t k = 0; k < n->numel; k++) {
        int64_t j = reindex_target(ri, &r.env, r.env.xshape, r.xstride, scratch);
        if (j < 0)
            store_scalar(y, n->dtype, k, ri->overflow);
        else
            copy_elem(y, k, x, j, n->dtype);
        coords_next(n->rank, n->shape, c);
    }
}

static int eval_reindex_reduce(struct interp *in, uint32_t i, const void *x, void *y)
{
    const struct ir_node *n = &in->g->nodes[i];
    const struct ir_node *xn = &in->g->nodes[n->in[0]];
    const struct ir_reindex *ri = n->attr.reindex;
    int op = ri->op, dt = n->dtype;
    int64_t c[KILN_LIMIT_RANK] = {0}, scratch[KILN_LIMIT_EXPR_NODES];
    struct reindex_ctx r;
    reindex_ctx_init(&r, in, n, c);
    void *mem;
    size_t bytes;
    int rc = interp_alloc(in, i, n->numel, sizeof(union acc), &mem, &bytes);
    if (rc)
        return rc;
    union acc *a = mem;
    for (int64_t k = 0; k < n->numel; k++)
        acc_init(&a[k], op, dt);
    for (int64_t j = 0; j < xn->numel; j++) {
        int64_t k = reindex_target(ri, &r.env, n->shape, r.ystride, scratch);
        if (k >= 0)
            acc_add(&a[k], op, dt, x, j);
        coords_next(xn->rank, xn->shape, c);
    }
    for (int64_t k = 0; k < n->numel; k++)
        acc_store(&a[k], op, dt, 1, y, k);
    interp_release(in, a, bytes);
    return KILN_OK;
}

/* ---- the run ---------------------------------------------------------- */

static int eval_node(struct interp *in, uint32_t i, void *y)
{
    const struct ir_node *n = &in->g->nodes[i];
    const struct ir_node *g = in->g->nodes;
    void *const *b = in->bufs;
    switch (n->op) {
    case IR_OP_ARRAY:
        eval_copy(n, n->attr.array.data, y);
        break;
    case IR_OP_CONST:
        for (int64_t k = 0; k < n->numel; k++)
            store_scalar(y, n->dtype, k, n->attr.scalar);
        break;
    case IR_OP_INDEX:
        eval_index(n, y);
        break;
    case IR_OP_RANDOM:
        eval_random(n, y);
        break;
    case IR_OP_EXTERN:
        eval_copy(n, in->externs ? in->externs[n->attr.ext.slot] : NULL, y);
        break;
    case IR_OP_RESHAPE:
        eval_copy(n, b[n->in[0]], y);
        break;
    case IR_OP_WHERE:
        eval_where(n, g[n->in[0]].dtype, b[n->in[0]], b[n->in[1]], b[n->in[2]], y);
        break;
    case IR_OP_BROADCAST_TO:
        eval_broadcast(n, &g[n->in[0]], b[n->in[0]], y);
        break;
    case IR_OP_REDUCE:
        return eval_reduce(in, i, &g[n->in[0]], b[n->in[0]], y);
    case IR_OP_REINDEX:
        eval_reindex(in, i, b[n->in[0]], y);
        break;
    case IR_OP_REINDEX_REDUCE:
        return eval_reindex_reduce(in, i, b[n->in[0]], y);
    default:
        if (n->op >= IR_OP_NEG && n->op <= IR_OP_CAST)
            eval_unary(n, &g[n->in[0]], b[n->in[0]], y);
        else if (n->op >= IR_OP_ADD && n->op <= IR_OP_SHR)
            eval_binary(n, g[n->in[0]].dtype, b[n->in[0]], b[n->in[1]], y);
        break; /* no other op passes the constructors */
    }
    return KILN_OK;
}

void ir_interp_free(const struct ir_graph *g, void **out)
{
    if (!out)
        return;
    for (uint32_t i = 0; i < g->count; i++)
        free(out[i]);
    free(out);
}

int ir_interp_run_quota(const struct ir_graph *g, const void *const *externs, size_t max_bytes,
                        void ***out, struct ir_error *err)
{
    struct interp in = {.g = g, .externs = externs, .max_bytes = max_bytes, .err = err};
    *out = NULL;
    in.bufs = calloc(g->count > 0 ? g->count : 1, sizeof *in.bufs);
    if (!in.bufs) {
        if (err) {
            err->code = KILN_ENOMEM;
            err->node = -1;
            snprintf(err->field, sizeof err->field, "nodes");
            snprintf(err->message, sizeof err->message,
                     "interpreter: out of memory for %u buffer pointers", (unsigned) g->count);
        }
        return KILN_ENOMEM;
    }
    for (uint32_t i = 0; i < g->count; i++) {
        const struct ir_node *n = &g->nodes[i];
        size_t bytes;
        int rc = interp_alloc(&in, i, n->numel, dt_size(n->dtype), &in.bufs[i], &bytes);
        if (rc == KILN_OK)
            rc = eval_node(&in, i, in.bufs[i]);
        if (rc != KILN_OK) {
            ir_interp_free(g, in.bufs);
            return rc;
        }
    }
    *out = in.bufs;
    return KILN_OK;
}

int ir_interp_run(const struct ir_graph *g, const void *const *externs, void ***out,
                  struct ir_error *err)
{
    return ir_interp_run_quota(g, externs, SIZE_MAX, out, err);
}
