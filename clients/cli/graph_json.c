/* graph_json.c: the graph files of `kiln submit`, read with jansson.
 *
 * A file is the SUBMIT body in the wire's own schema (PROTOCOL.md §8), as
 * JSON: {"nodes": [...], "keep": [...], "fetch": [...]}. Two departures,
 * both because JSON is not msgpack: `data` is an array of numbers that is
 * converted to the node's dtype here (the wire's `bin` has no JSON form),
 * and op, dtype, reduce_op and dist may be given by name. Everything else
 * is passed on as written: the daemon is the judge of what a graph means,
 * and its errors name the node by the same index as the file's `nodes`.
 *
 * What is checked here is what must be, to build the request: types,
 * ranges, counts that fill fixed arrays, and that every number of `data`
 * fits its dtype exactly — an integer dtype takes integers (or integral
 * floats) in its range, bool takes true, false, 0 or 1, a float dtype
 * takes any number within its range (rounded to nearest) and an integer
 * only if the dtype holds it exactly, plus "nan", "inf" and "-inf" as
 * strings, since JSON has no literal for them. Unknown keys are refused,
 * so a misspelt field is never silently dropped. Each error is one line
 * naming the file, then the line and column (syntax) or the node, its id
 * and the field (schema). */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define GJ_DATA_MAX (256u << 20) /* bytes of one node's data: one message's worth */

/* Where the reader is, for the error messages. */
struct gj {
    const char *path;
    long node;   /* index in "nodes", or -1 outside them */
    uint64_t id; /* that node's id, 0 until read */
};

__attribute__((format(printf, 3, 4))) static int gj_fail(const struct gj *r, const char *field,
                                                         const char *fmt, ...)
{
    char msg[512], where[96] = "", path[CLI_TEXT_SIZE(256)], fld[CLI_TEXT_SIZE(64)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r->node >= 0 && r->id != 0)
        snprintf(where, sizeof(where), "nodes[%ld] (id %llu): ", r->node,
                 (unsigned long long) r->id);
    else if (r->node >= 0)
        snprintf(where, sizeof(where), "nodes[%ld]: ", r->node);
    char text[CLI_TEXT_SIZE(sizeof(msg))];
    fprintf(stderr, "kiln: submit: %s: %s%s%s%s\n", cli_text(path, sizeof(path), r->path), where,
            field ? cli_text(fld, sizeof(fld), field) : "", field ? ": " : "",
            cli_text(text, sizeof(text), msg));
    return -1;
}

static int gj_uint(const struct gj *r, const json_t *v, const char *field, uint64_t min,
                   uint64_t max, uint64_t *out)
{
    json_int_t i = json_is_integer(v) ? json_integer_value(v) : -1;
    if (!json_is_integer(v) || i < 0 || (uint64_t) i < min || (uint64_t) i > max)
        return gj_fail(r, field, "must be an integer in %llu..%llu", (unsigned long long) min,
                       (unsigned long long) max);
    *out = (uint64_t) i;
    return 0;
}

/* A number field that may also be given by name. */
static int gj_named(const struct gj *r, const json_t *v, const char *field,
                    const struct cli_names *t, uint32_t *out)
{
    if (json_is_string(v)) {
        if (cli_name_find(t, json_string_value(v), out) == 0)
            return 0;
        return gj_fail(r, field, "unknown %s name \"%s\"", field, json_string_value(v));
    }
    uint64_t u = 0;
    if (gj_uint(r, v, field, 0, UINT32_MAX, &u) != 0)
        return -1;
    *out = (uint32_t) u;
    return 0;
}

/* An array of at most cap elements; its length in *n. */
static int gj_array(const struct gj *r, const json_t *v, const char *field, size_t cap, size_t *n)
{
    if (!json_is_array(v))
        return gj_fail(r, field, "must be an array");
    if (json_array_size(v) > cap)
        return gj_fail(r, field, "holds %zu elements, at most %zu are allowed", json_array_size(v),
                       cap);
    *n = json_array_size(v);
    return 0;
}

static int gj_uints(const struct gj *r, const json_t *v, const char *field, size_t cap,
                    uint64_t min, uint64_t max, uint64_t *out, size_t *n)
{
    if (gj_array(r, v, field, cap, n) != 0)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        char f[48];
        snprintf(f, sizeof(f), "%s[%zu]", field, i);
        if (gj_uint(r, json_array_get(v, i), f, min, max, &out[i]) != 0)
            return -1;
    }
    return 0;
}

/* starts, stops, steps, pads and the relays' pairs: arrays of integers,
 * negative ones too (the daemon judges them). */
static int gj_ints(const struct gj *r, const json_t *v, const char *field, size_t cap,
                   int64_t *out, uint32_t *n)
{
    size_t len = 0;
    if (gj_array(r, v, field, cap, &len) != 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_integer(e)) {
            char f[48];
            snprintf(f, sizeof(f), "%s[%zu]", field, i);
            return gj_fail(r, f, "must be an integer");
        }
        out[i] = (int64_t) json_integer_value(e);
    }
    *n = (uint32_t) len;
    return 0;
}

static bool gj_special(const json_t *v, double *f)
{
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    if (strcmp(s, "nan") == 0)
        *f = NAN;
    else if (strcmp(s, "inf") == 0)
        *f = INFINITY;
    else if (strcmp(s, "-inf") == 0)
        *f = -INFINITY;
    else
        return false;
    return true;
}

/* value and overflow_value: an integer stays an integer, a bool is 0 or 1. */
static int gj_number(const struct gj *r, const json_t *v, const char *field, struct kiln_number *n)
{
    *n = (struct kiln_number){0};
    if (json_is_integer(v))
        n->i = json_integer_value(v);
    else if (json_is_boolean(v))
        n->i = json_is_true(v);
    else if (json_is_real(v))
        n->is_float = true, n->f = json_real_value(v);
    else if (gj_special(v, &n->f))
        n->is_float = true;
    else
        return gj_fail(r, field, "must be a number, a boolean, or \"nan\", \"inf\" or \"-inf\"");
    return 0;
}

static int gj_strings(const struct gj *r, const json_t *v, const char *field, size_t cap,
                      const char **out, uint32_t *n)
{
    size_t len = 0;
    if (gj_array(r, v, field, cap, &len) != 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        const json_t *s = json_array_get(v, i);
        if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s))
            return gj_fail(r, field, "element %zu must be a string without NUL bytes", i);
        out[i] = json_string_value(s);
    }
    *n = (uint32_t) len;
    return 0;
}

/* Is the integer i exactly a float32 (float64 when wide)? */
static bool gj_int_exact(int64_t i, bool wide)
{
    double d = wide ? (double) i : (double) (float) i;
    return d >= -9223372036854775808.0 && d < 9223372036854775808.0 && (int64_t) d == i;
}

/* Convert one JSON value to one element of dtype at dst. Returns NULL, or
 * why the value does not fit (completing "X does not fit DTYPE: ..."). */
static const char *gj_element(const json_t *v, uint32_t dtype, unsigned char *dst)
{
    static const struct {
        double min, max;
    } ranges[] = {
        [KILN_DTYPE_INT8] = {-128, 127},
        [KILN_DTYPE_UINT8] = {0, 255},
        [KILN_DTYPE_INT32] = {-2147483648.0, 2147483647.0},
    };
    bool is_int = json_is_integer(v);
    int64_t i = is_int ? json_integer_value(v) : 0;
    double f = json_is_real(v) ? json_real_value(v) : 0;
    switch (dtype) {
    case KILN_DTYPE_BOOL:
        if (json_is_boolean(v))
            i = json_is_true(v);
        else if (!is_int || (i != 0 && i != 1))
            return "a bool is true, false, 0 or 1";
        *dst = (unsigned char) i;
        return NULL;
    case KILN_DTYPE_INT8:
    case KILN_DTYPE_UINT8:
    case KILN_DTYPE_INT32:
    case KILN_DTYPE_INT64:
        if (!is_int && !json_is_real(v))
            return "not a number";
        if (!is_int) { /* an integral float converts exactly, if in range */
            if (f != trunc(f) || !(f >= -9223372036854775808.0 && f < 9223372036854775808.0))
                return "not an integer";
            i = (int64_t) f;
        }
        if (dtype != KILN_DTYPE_INT64 &&
            ((double) i < ranges[dtype].min || (double) i > ranges[dtype].max))
            return "out of range";
        if (dtype == KILN_DTYPE_INT8 || dtype == KILN_DTYPE_UINT8)
            *dst = (unsigned char) (int8_t) i;
        else if (dtype == KILN_DTYPE_INT32) {
            int32_t x = (int32_t) i;
            memcpy(dst, &x, sizeof(x));
        } else
            memcpy(dst, &i, sizeof(i));
        return NULL;
    case KILN_DTYPE_FLOAT32:
    case KILN_DTYPE_FLOAT64: {
        bool wide = dtype == KILN_DTYPE_FLOAT64;
        if (is_int) {
            if (!gj_int_exact(i, wide))
                return "an integer the dtype cannot hold exactly";
            f = (double) i;
        } else if (!json_is_real(v) && !gj_special(v, &f)) {
            return "not a number (nor \"nan\", \"inf\", \"-inf\")";
        }
        if (wide) {
            memcpy(dst, &f, sizeof(f));
        } else {
            float x = (float) f;
            if (isinf(x) && !isinf(f))
                return "out of range";
            memcpy(dst, &x, sizeof(x));
        }
        return NULL;
    }
    default:
        return "the dtype is not one of 1..7";
    }
}

/* A JSON value as the file may have written it, for a message. */
static void gj_value_text(char *buf, size_t n, const json_t *v)
{
    if (json_is_real(v)) {
        cli_format_double(buf, n, json_real_value(v), false);
        return;
    }
    char *dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, n, "%s", dump ? dump : "the value");
    free(dump);
}

static int gj_data(const struct gj *r, const json_t *v, struct kiln_node *k, void **buf)
{
    if (!json_is_array(v))
        return gj_fail(r, "data", "must be an array of numbers");
    if (!(k->has & KILN_NODE_DTYPE) || !(k->has & KILN_NODE_SHAPE))
        return gj_fail(r, "data", "needs the node's dtype and shape to be converted");
    size_t size = kiln_dtype_size((int) k->dtype), n = json_array_size(v);
    if (size == 0)
        return gj_fail(r, "data", "cannot be converted to dtype %u", (unsigned) k->dtype);
    /* The element count; "more" when it does not fit 64 bits. */
    uint64_t elements = 1;
    bool more = false;
    for (uint32_t j = 0; j < k->rank; j++) {
        uint64_t d = (uint64_t) k->shape[j];
        if (d == 0) {
            elements = 0, more = false;
            break;
        }
        more |= __builtin_mul_overflow(elements, d, &elements);
    }
    if (more)
        return gj_fail(r, "data", "holds %zu numbers, but the shape has more than 2^64 elements",
                       n);
    if (elements != n)
        return gj_fail(r, "data", "holds %zu numbers, but the shape has %llu elements", n,
                       (unsigned long long) elements);
    if (n > GJ_DATA_MAX / size)
        return gj_fail(r, "data", "holds more than %u bytes", GJ_DATA_MAX);
    unsigned char *b = malloc(n * size > 0 ? n * size : 1);
    if (b == NULL)
        return gj_fail(r, "data", "out of memory for %zu bytes", n * size);
    for (size_t i = 0; i < n; i++) {
        const char *why = gj_element(json_array_get(v, i), k->dtype, b + i * size);
        if (why != NULL) {
            free(b);
            char f[32], val[64];
            snprintf(f, sizeof(f), "data[%zu]", i);
            gj_value_text(val, sizeof(val), json_array_get(v, i));
            return gj_fail(r, f, "%s does not fit %s: %s", val, kiln_dtype_name((int) k->dtype),
                           why);
        }
    }
    *buf = b;
    k->data = b;
    k->data_len = n * size;
    return 0;
}

static const char *const gj_node_keys[] = {
    "id",       "op",        "in",    "dtype", "shape",          "data",
    "value",    "dim",       "dist",  "seed",  "offset",         "dims",
    "keepdims", "reduce_op", "exprs", "conds", "overflow_value",
    "starts",   "stops",     "steps", "pads",  "stride",         "padding",
    "dilation", "trans",     "groups",
};

static int gj_node(struct gj *r, const json_t *o, struct kiln_node *k, void **buf)
{
    if (!json_is_object(o))
        return gj_fail(r, NULL, "a node must be an object");
    const char *key;
    const json_t *v;
    uint64_t u = 0;
    if (gj_uint(r, json_object_get(o, "id"), "id", 1, INT64_MAX, &k->id) != 0)
        return -1;
    r->id = k->id;
    json_object_foreach((json_t *) o, key, v)
    {
        size_t j = 0;
        while (j < sizeof(gj_node_keys) / sizeof(gj_node_keys[0]) && strcmp(key, gj_node_keys[j]))
            j++;
        if (j == sizeof(gj_node_keys) / sizeof(gj_node_keys[0]))
            return gj_fail(r, key, "unknown field (PROTOCOL.md §8 lists a node's fields)");
    }
    if ((v = json_object_get(o, "op")) == NULL)
        return gj_fail(r, "op", "missing: every node needs an op");
    if (gj_named(r, v, "op", &cli_op_names, &k->op) != 0)
        return -1;
    if ((v = json_object_get(o, "in")) != NULL) {
        size_t n;
        if (gj_uints(r, v, "in", KILN_MAX_INPUTS, 1, INT64_MAX, k->in, &n) != 0)
            return -1;
        k->nin = (uint32_t) n;
        k->has |= KILN_NODE_IN;
    }
    if ((v = json_object_get(o, "dtype")) != NULL) {
        if (gj_named(r, v, "dtype", &cli_dtype_names, &k->dtype) != 0)
            return -1;
        k->has |= KILN_NODE_DTYPE;
    }
    if ((v = json_object_get(o, "shape")) != NULL) {
        uint64_t shape[KILN_MAX_RANK];
        size_t n;
        if (gj_uints(r, v, "shape", KILN_MAX_RANK, 0, (uint64_t) 1 << 40, shape, &n) != 0)
            return -1;
        for (size_t j = 0; j < n; j++)
            k->shape[j] = (int64_t) shape[j];
        k->rank = (uint32_t) n;
        k->has |= KILN_NODE_SHAPE;
    }
    if ((v = json_object_get(o, "data")) != NULL) {
        if (gj_data(r, v, k, buf) != 0)
            return -1;
        k->has |= KILN_NODE_DATA;
    }
    if ((v = json_object_get(o, "value")) != NULL) {
        if (gj_number(r, v, "value", &k->value) != 0)
            return -1;
        k->has |= KILN_NODE_VALUE;
    }
    if ((v = json_object_get(o, "dim")) != NULL) {
        if (gj_uint(r, v, "dim", 0, UINT32_MAX, &u) != 0)
            return -1;
        k->dim = (uint32_t) u;
        k->has |= KILN_NODE_DIM;
    }
    if ((v = json_object_get(o, "dist")) != NULL) {
        if (gj_named(r, v, "dist", &cli_dist_names, &k->dist) != 0)
            return -1;
        k->has |= KILN_NODE_DIST;
    }
    if ((v = json_object_get(o, "seed")) != NULL) {
        if (gj_uint(r, v, "seed", 0, INT64_MAX, &k->seed) != 0)
            return -1;
        k->has |= KILN_NODE_SEED;
    }
    if ((v = json_object_get(o, "offset")) != NULL) {
        if (gj_uint(r, v, "offset", 0, INT64_MAX, &k->offset) != 0)
            return -1;
        k->has |= KILN_NODE_OFFSET;
    }
    if ((v = json_object_get(o, "dims")) != NULL) {
        uint64_t dims[KILN_MAX_RANK];
        size_t n;
        if (gj_uints(r, v, "dims", KILN_MAX_RANK, 0, KILN_MAX_RANK - 1, dims, &n) != 0)
            return -1;
        for (size_t j = 0; j < n; j++)
            k->dims[j] = (uint32_t) dims[j];
        k->ndims = (uint32_t) n;
        k->has |= KILN_NODE_DIMS;
    }
    if ((v = json_object_get(o, "keepdims")) != NULL) {
        if (!json_is_boolean(v))
            return gj_fail(r, "keepdims", "must be true or false");
        k->keepdims = json_is_true(v);
        k->has |= KILN_NODE_KEEPDIMS;
    }
    if ((v = json_object_get(o, "reduce_op")) != NULL) {
        if (gj_named(r, v, "reduce_op", &cli_reduce_op_names, &k->reduce_op) != 0)
            return -1;
        k->has |= KILN_NODE_REDUCE_OP;
    }
    if ((v = json_object_get(o, "exprs")) != NULL) {
        if (gj_strings(r, v, "exprs", KILN_MAX_RANK, k->exprs, &k->nexprs) != 0)
            return -1;
        k->has |= KILN_NODE_EXPRS;
    }
    if ((v = json_object_get(o, "conds")) != NULL) {
        if (gj_strings(r, v, "conds", KILN_MAX_CONDS, k->conds, &k->nconds) != 0)
            return -1;
        k->has |= KILN_NODE_CONDS;
    }
    if ((v = json_object_get(o, "overflow_value")) != NULL) {
        if (gj_number(r, v, "overflow_value", &k->overflow_value) != 0)
            return -1;
        k->has |= KILN_NODE_OVERFLOW_VALUE;
    }
    const struct {
        const char *name;
        uint32_t bit, cap;
        int64_t *dst;
        uint32_t *n;
    } lists[] = {
        {"starts", KILN_NODE_STARTS, KILN_MAX_RANK, k->starts, &k->nstarts},
        {"stops", KILN_NODE_STOPS, KILN_MAX_RANK, k->stops, &k->nstops},
        {"steps", KILN_NODE_STEPS, KILN_MAX_RANK, k->steps, &k->nsteps},
        {"pads", KILN_NODE_PADS, 2 * KILN_MAX_RANK, k->pads, &k->npads},
        {"stride", KILN_NODE_STRIDE, 2, k->stride, &k->nstride},
        {"padding", KILN_NODE_PADDING, 2, k->padding, &k->npadding},
        {"dilation", KILN_NODE_DILATION, 2, k->dilation, &k->ndilation},
        {"trans", KILN_NODE_TRANS, 2, k->trans, &k->ntrans},
    };
    for (size_t j = 0; j < sizeof(lists) / sizeof(lists[0]); j++) {
        if ((v = json_object_get(o, lists[j].name)) == NULL)
            continue;
        if (gj_ints(r, v, lists[j].name, lists[j].cap, lists[j].dst, lists[j].n) != 0)
            return -1;
        k->has |= lists[j].bit;
    }
    if ((v = json_object_get(o, "groups")) != NULL) {
        if (gj_uint(r, v, "groups", 0, UINT32_MAX, &u) != 0)
            return -1;
        k->groups = (uint32_t) u;
        k->has |= KILN_NODE_GROUPS;
    }
    return 0;
}

/* "keep" and "fetch": var ids, never 0. */
static int gj_ids(const struct gj *r, const json_t *v, const char *field, uint64_t **out, size_t *n)
{
    size_t len = 0;
    if (gj_array(r, v, field, 65536, &len) != 0)
        return -1;
    if (len > 0 && (*out = calloc(len, sizeof(**out))) == NULL)
        return gj_fail(r, field, "out of memory");
    return gj_uints(r, v, field, len, 1, INT64_MAX, *out, n);
}

static int gj_top(struct cli_graph *g, struct gj *r)
{
    const json_t *root = g->root, *v;
    const char *key;
    if (!json_is_object(root))
        return gj_fail(r, NULL,
                       "the file must hold one object: {\"nodes\": [...], \"keep\": [...]}");
    json_object_foreach(g->root, key, v)
    {
        if (strcmp(key, "nodes") && strcmp(key, "keep") && strcmp(key, "fetch"))
            return gj_fail(r, key, "unknown field (a graph file has nodes, keep and fetch)");
    }
    const json_t *nodes = json_object_get(root, "nodes");
    if (!json_is_array(nodes) || json_array_size(nodes) == 0 || json_array_size(nodes) > 65536)
        return gj_fail(r, "nodes", "must be an array of 1..65536 nodes");
    g->nnodes = json_array_size(nodes);
    g->nodes = calloc(g->nnodes, sizeof(*g->nodes));
    g->bufs = calloc(g->nnodes, sizeof(*g->bufs));
    if (g->nodes == NULL || g->bufs == NULL)
        return gj_fail(r, "nodes", "out of memory for %zu nodes", g->nnodes);
    for (size_t i = 0; i < g->nnodes; i++) {
        r->node = (long) i;
        r->id = 0;
        if (gj_node(r, json_array_get(nodes, i), &g->nodes[i], &g->bufs[i]) != 0)
            return -1;
    }
    r->node = -1;
    if ((v = json_object_get(root, "keep")) != NULL &&
        gj_ids(r, v, "keep", &g->keep, &g->nkeep) != 0)
        return -1;
    if ((v = json_object_get(root, "fetch")) != NULL &&
        gj_ids(r, v, "fetch", &g->fetch, &g->nfetch) != 0)
        return -1;
    for (size_t i = 0; i < g->nfetch; i++) {
        size_t j = 0;
        while (j < g->nkeep && g->keep[j] != g->fetch[i])
            j++;
        if (j == g->nkeep) {
            char f[32];
            snprintf(f, sizeof(f), "fetch[%zu]", i);
            return gj_fail(r, f, "var %llu is not in keep: only kept vars can be fetched",
                           (unsigned long long) g->fetch[i]);
        }
    }
    return 0;
}

int cli_graph_read(struct cli_graph *g, const char *path)
{
    memset(g, 0, sizeof(*g));
    struct gj r = {.path = strcmp(path, "-") == 0 ? "<stdin>" : path, .node = -1};
    json_error_t je;
    size_t flags = JSON_REJECT_DUPLICATES;
    g->root =
        strcmp(path, "-") == 0 ? json_loadf(stdin, flags, &je) : json_load_file(path, flags, &je);
    if (g->root == NULL) {
        if (je.line < 1) /* jansson's way of saying it could not read the file */
            return gj_fail(&r, NULL, "cannot read: %s", je.text);
        char where[64];
        snprintf(where, sizeof(where), "line %d, column %d", je.line, je.column);
        return gj_fail(&r, where, "invalid JSON: %s", je.text);
    }
    if (gj_top(g, &r) != 0) {
        cli_graph_fini(g);
        return -1;
    }
    return 0;
}

void cli_graph_fini(struct cli_graph *g)
{
    for (size_t i = 0; g->bufs != NULL && i < g->nnodes; i++)
        free(g->bufs[i]);
    free(g->bufs);
    free(g->nodes);
    free(g->keep);
    free(g->fetch);
    if (g->root != NULL)
        json_decref(g->root);
    memset(g, 0, sizeof(*g));
}
