/* expr_c.c: index expressions from AST to C (see expr_c.h).
 *
 * Rendering recurses from the root; the AST's depth is bounded by
 * KILN_LIMIT_EXPR_NODES, so the recursion is too. Every sub-expression is
 * parenthesised: C precedence never has to agree with ours. */
#include <inttypes.h>

#include "expr_c.h"
#include "kiln_err.h"

#define PRELUDE_TYPES                                                                    \
    "typedef long long int64_t;\n"                                                        \
    "typedef unsigned long long uint64_t;\n"
#define PRELUDE_HELPERS                                                                  \
    "static inline int64_t kiln_div(int64_t a, int64_t b)\n"                              \
    "{ return b == 0 ? 0 : b == -1 ? (int64_t) (0 - (uint64_t) a) : a / b; }\n"           \
    "static inline int64_t kiln_mod(int64_t a, int64_t b)\n"                              \
    "{ return b == 0 || b == -1 ? 0 : a % b; }\n"                                         \
    "static inline int64_t kiln_min(int64_t a, int64_t b) { return a < b ? a : b; }\n"    \
    "static inline int64_t kiln_max(int64_t a, int64_t b) { return a > b ? a : b; }\n"

const char *jit_expr_prelude_c(int with_types)
{
    return with_types ? PRELUDE_TYPES PRELUDE_HELPERS : PRELUDE_HELPERS;
}

struct render {
    const struct ir_expr *e;
    const struct jit_expr_names *names;
    struct jit_buf *out;
    int rc;
};

static void node(struct render *r, int k);

static void name(struct render *r, const char *n)
{
    if (n == NULL) {
        r->rc = KILN_EINTERNAL;
        return;
    }
    jit_buf_add(r->out, n);
}

/* "(int64_t) ((uint64_t) (a) OP (uint64_t) (b))": wrapping arithmetic. */
static void wrapping(struct render *r, const struct ir_expr_node *n, const char *op)
{
    jit_buf_add(r->out, "((int64_t) ((uint64_t) ");
    node(r, n->arg[0]);
    jit_buf_addf(r->out, " %s (uint64_t) ", op);
    node(r, n->arg[1]);
    jit_buf_add(r->out, "))");
}

static void call2(struct render *r, const struct ir_expr_node *n, const char *fn)
{
    jit_buf_addf(r->out, "%s(", fn);
    node(r, n->arg[0]);
    jit_buf_add(r->out, ", ");
    node(r, n->arg[1]);
    jit_buf_add(r->out, ")");
}

/* "((int64_t) ((a) OP (b)))": comparisons and logic give 0 or 1. */
static void boolean(struct render *r, const struct ir_expr_node *n, const char *op)
{
    jit_buf_add(r->out, "((int64_t) (");
    node(r, n->arg[0]);
    jit_buf_addf(r->out, " %s ", op);
    node(r, n->arg[1]);
    jit_buf_add(r->out, "))");
}

static void node(struct render *r, int k)
{
    if (r->rc != KILN_OK)
        return;
    const struct ir_expr_node *n = &r->e->nodes[k];
    const struct jit_expr_names *nm = r->names;
    switch (n->op) {
    case IR_EXPR_CONST:
        /* INT64_MIN cannot be a literal; our constants are within 2^62. */
        jit_buf_addf(r->out, "((int64_t) %" PRId64 "LL)", n->value);
        break;
    case IR_EXPR_INDEX: name(r, nm->index[n->slot]); break;
    case IR_EXPR_XSHAPE: name(r, nm->xshape[n->slot]); break;
    case IR_EXPR_YSHAPE: name(r, nm->yshape[n->slot]); break;
    case IR_EXPR_XSTRIDE: name(r, nm->xstride[n->slot]); break;
    case IR_EXPR_YSTRIDE: name(r, nm->ystride[n->slot]); break;
    case IR_EXPR_EXTRA:
        name(r, nm->extra_fn[n->slot]);
        jit_buf_add(r->out, "(");
        for (int a = 0; a < n->nargs; a++) {
            if (a > 0)
                jit_buf_add(r->out, ", ");
            node(r, n->arg[a]);
        }
        jit_buf_add(r->out, ")");
        break;
    case IR_EXPR_NEG:
        jit_buf_add(r->out, "((int64_t) (0 - (uint64_t) ");
        node(r, n->arg[0]);
        jit_buf_add(r->out, "))");
        break;
    case IR_EXPR_NOT:
        jit_buf_add(r->out, "((int64_t) (");
        node(r, n->arg[0]);
        jit_buf_add(r->out, " == 0))");
        break;
    case IR_EXPR_ADD: wrapping(r, n, "+"); break;
    case IR_EXPR_SUB: wrapping(r, n, "-"); break;
    case IR_EXPR_MUL: wrapping(r, n, "*"); break;
    case IR_EXPR_DIV: call2(r, n, "kiln_div"); break;
    case IR_EXPR_MOD: call2(r, n, "kiln_mod"); break;
    case IR_EXPR_MIN: call2(r, n, "kiln_min"); break;
    case IR_EXPR_MAX: call2(r, n, "kiln_max"); break;
    case IR_EXPR_LT: boolean(r, n, "<"); break;
    case IR_EXPR_LE: boolean(r, n, "<="); break;
    case IR_EXPR_GT: boolean(r, n, ">"); break;
    case IR_EXPR_GE: boolean(r, n, ">="); break;
    case IR_EXPR_EQ: boolean(r, n, "=="); break;
    case IR_EXPR_NE: boolean(r, n, "!="); break;
    case IR_EXPR_AND:
    case IR_EXPR_OR:
        /* Operands are side-effect free, so short-circuiting is harmless. */
        jit_buf_add(r->out, "((int64_t) ((");
        node(r, n->arg[0]);
        jit_buf_addf(r->out, " != 0) %s (", n->op == IR_EXPR_AND ? "&&" : "||");
        node(r, n->arg[1]);
        jit_buf_add(r->out, " != 0)))");
        break;
    case IR_EXPR_SELECT:
        jit_buf_add(r->out, "(");
        node(r, n->arg[0]);
        jit_buf_add(r->out, " != 0 ? ");
        node(r, n->arg[1]);
        jit_buf_add(r->out, " : ");
        node(r, n->arg[2]);
        jit_buf_add(r->out, ")");
        break;
    default:
        r->rc = KILN_EINTERNAL; /* the parser emits no other op */
        break;
    }
}

int jit_expr_render_c(const struct ir_expr *e, const struct jit_expr_names *names,
                      struct jit_buf *out)
{
    if (e == NULL || e->count == 0)
        return KILN_EINTERNAL;
    struct render r = {.e = e, .names = names, .out = out, .rc = KILN_OK};
    node(&r, (int) e->count - 1);
    if (r.rc == KILN_OK && out->bad)
        r.rc = KILN_ENOMEM;
    return r.rc;
}
