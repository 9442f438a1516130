/* names.c: the names `kiln submit` accepts for op, dtype, reduce_op and
 * dist numbers, a convenience over the wire's numbers.
 *
 * The names are PROTOCOL.md's, and the numbers come from kiln.h's enums,
 * so a name can only be wrong if the header is; the client suite parses
 * PROTOCOL.md's op and dtype tables and checks both against this table.
 * Kept apart from the command so that the test can link it alone. */
#include <string.h>

#include "cli.h"

#define N(t)                                                                                       \
    {                                                                                              \
        (t), sizeof(t) / sizeof((t)[0])                                                            \
    }

static const struct cli_name ops[] = {
    {"array", KILN_OP_ARRAY},
    {"const", KILN_OP_CONST},
    {"index", KILN_OP_INDEX},
    {"random", KILN_OP_RANDOM},
    {"reshape", KILN_OP_RESHAPE},
    {"neg", KILN_OP_NEG},
    {"abs", KILN_OP_ABS},
    {"exp", KILN_OP_EXP},
    {"log", KILN_OP_LOG},
    {"sqrt", KILN_OP_SQRT},
    {"rsqrt", KILN_OP_RSQRT},
    {"sin", KILN_OP_SIN},
    {"cos", KILN_OP_COS},
    {"tan", KILN_OP_TAN},
    {"tanh", KILN_OP_TANH},
    {"sigmoid", KILN_OP_SIGMOID},
    {"erf", KILN_OP_ERF},
    {"floor", KILN_OP_FLOOR},
    {"ceil", KILN_OP_CEIL},
    {"round", KILN_OP_ROUND},
    {"sign", KILN_OP_SIGN},
    {"logical_not", KILN_OP_LOGICAL_NOT},
    {"bitwise_not", KILN_OP_BITWISE_NOT},
    {"cast", KILN_OP_CAST},
    {"add", KILN_OP_ADD},
    {"sub", KILN_OP_SUB},
    {"mul", KILN_OP_MUL},
    {"div", KILN_OP_DIV},
    {"floor_div", KILN_OP_FLOOR_DIV},
    {"mod", KILN_OP_MOD},
    {"pow", KILN_OP_POW},
    {"maximum", KILN_OP_MAXIMUM},
    {"minimum", KILN_OP_MINIMUM},
    {"eq", KILN_OP_EQ},
    {"ne", KILN_OP_NE},
    {"lt", KILN_OP_LT},
    {"le", KILN_OP_LE},
    {"gt", KILN_OP_GT},
    {"ge", KILN_OP_GE},
    {"logical_and", KILN_OP_LOGICAL_AND},
    {"logical_or", KILN_OP_LOGICAL_OR},
    {"logical_xor", KILN_OP_LOGICAL_XOR},
    {"bitwise_and", KILN_OP_BITWISE_AND},
    {"bitwise_or", KILN_OP_BITWISE_OR},
    {"bitwise_xor", KILN_OP_BITWISE_XOR},
    {"shl", KILN_OP_SHL},
    {"shr", KILN_OP_SHR},
    {"where", KILN_OP_WHERE},
    {"broadcast_to", KILN_OP_BROADCAST_TO},
    {"reindex", KILN_OP_REINDEX},
    {"reduce", KILN_OP_REDUCE},
    {"reindex_reduce", KILN_OP_REINDEX_REDUCE},
    {"matmul", KILN_OP_MATMUL},
    {"conv2d", KILN_OP_CONV2D},
    {"conv2d_bwd_data", KILN_OP_CONV2D_BWD_DATA},
    {"conv2d_bwd_weight", KILN_OP_CONV2D_BWD_WEIGHT},
    {"transpose", KILN_OP_TRANSPOSE},
    {"slice", KILN_OP_SLICE},
    {"concat", KILN_OP_CONCAT},
    {"pad", KILN_OP_PAD},
    {"flip", KILN_OP_FLIP},
    {"grad", KILN_OP_GRAD},
    {"stop_grad", KILN_OP_STOP_GRAD},
};

/* Only the dtypes a daemon accepts: 8 and 9 are reserved. */
static const struct cli_name dtypes[] = {
    {"bool", KILN_DTYPE_BOOL},       {"int8", KILN_DTYPE_INT8},   {"uint8", KILN_DTYPE_UINT8},
    {"int32", KILN_DTYPE_INT32},     {"int64", KILN_DTYPE_INT64}, {"float32", KILN_DTYPE_FLOAT32},
    {"float64", KILN_DTYPE_FLOAT64},
};

static const struct cli_name reduce_ops[] = {
    {"add", KILN_REDUCE_ADD}, {"mul", KILN_REDUCE_MUL},   {"max", KILN_REDUCE_MAX},
    {"min", KILN_REDUCE_MIN}, {"mean", KILN_REDUCE_MEAN},
};

static const struct cli_name dists[] = {
    {"uniform", KILN_DIST_UNIFORM},
    {"normal", KILN_DIST_NORMAL},
};

const struct cli_names cli_op_names = N(ops);
const struct cli_names cli_dtype_names = N(dtypes);
const struct cli_names cli_reduce_op_names = N(reduce_ops);
const struct cli_names cli_dist_names = N(dists);

int cli_name_find(const struct cli_names *t, const char *name, uint32_t *out)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0) {
            *out = t->v[i].value;
            return 0;
        }
    return -1;
}

const char *cli_name_of(const struct cli_names *t, uint32_t value)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].value == value)
            return t->v[i].name;
    return NULL;
}
