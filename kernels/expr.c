/* expr.c: parser and reference evaluator for index expressions.
 *
 * A hand-written recursive-descent parser over a tiny lexer. Recursion is
 * bounded by KILN_LIMIT_EXPR_DEPTH and the node count by
 * KILN_LIMIT_EXPR_NODES, so a hostile text costs at most a few kilobytes of
 * stack and one small allocation. Nodes are emitted children-first into a
 * stack buffer and copied out at the exact size once parsing succeeds.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "kiln_err.h"

enum tok {
    T_END,
    T_INT,
    T_NAME,  /* identifier: text in [start, start+tlen) */
    T_EXTRA, /* @e<k>: value holds k */
    T_LP, T_RP, T_COMMA, T_QUEST, T_COLON,
    T_PLUS, T_MINUS, T_STAR, T_SLASH, T_PERCENT, T_BANG,
    T_LT, T_LE, T_GT, T_GE, T_EQ, T_NE, T_AND, T_OR,
};

struct parser {
    const char *s;
    size_t len;
    size_t pos;       /* next unread byte */
    enum tok tok;     /* current token */
    size_t start;     /* its first byte */
    size_t tlen;      /* its length */
    int64_t value;    /* T_INT, T_EXTRA */
    int depth;
    const struct ir_expr_scope *scope;
    struct ir_expr_node nodes[KILN_LIMIT_EXPR_NODES];
    uint32_t count;
    int rc;           /* first error, KILN_OK while parsing is fine */
    char *msg;
    size_t msglen;
};

static int fail(struct parser *p, int code, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct parser *p, int code, size_t at, const char *fmt, ...)
{
    if (p->rc != KILN_OK)
        return p->rc;
    p->rc = code;
    if (p->msg != NULL && p->msglen > 0) {
        int w = snprintf(p->msg, p->msglen, "at byte %zu: ", at);
        if (w >= 0 && (size_t) w < p->msglen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->msg + w, p->msglen - (size_t) w, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

/* A short, printable excerpt of the current token for error messages. */
static const char *excerpt(const struct parser *p, char *buf, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < p->tlen && i < 16 && w + 5 < n; i++) {
        unsigned char c = (unsigned char) p->s[p->start + i];
        if (c >= 0x21 && c < 0x7f && c != '"' && c != '\\')
            buf[w++] = (char) c;
        else
            w += (size_t) snprintf(buf + w, n - w, "\\x%02x", c);
    }
    if (p->tlen > 16 && w + 4 < n) {
        memcpy(buf + w, "...", 3);
        w += 3;
    }
    buf[w] = '\0';
    return buf;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && is_digit(c));
}

/* Read the next token into p->tok. */
static void next(struct parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
    p->start = p->pos;
    p->tlen = 0;
    if (p->pos >= p->len) {
        p->tok = T_END;
        return;
    }
    const char *s = p->s;
    char c = s[p->pos];
    if (is_digit(c)) {
        uint64_t v = 0;
        while (p->pos < p->len && is_digit(s[p->pos])) {
            uint64_t d = (uint64_t) (s[p->pos++] - '0');
            /* Checked before multiplying, so v never wraps. */
            if (v > ((uint64_t) KILN_LIMIT_EXPR_CONST - d) / 10) {
                p->tlen = p->pos - p->start;
                fail(p, KILN_ELIMIT, p->start, "integer literal exceeds the limit 2^62");
                p->tok = T_END;
                return;
            }
            v = v * 10 + d;
        }
        p->tlen = p->pos - p->start;
        if (p->pos < p->len && is_ident(s[p->pos], false)) {
            fail(p, KILN_EVALUE, p->pos, "a number is followed by a letter");
            p->tok = T_END;
            return;
        }
        p->tok = T_INT;
        p->value = (int64_t) v;
        return;
    }
    if (is_ident(c, true)) {
        while (p->pos < p->len && is_ident(s[p->pos], false))
            p->pos++;
        p->tlen = p->pos - p->start;
        p->tok = T_NAME;
        return;
    }
    if (c == '@') {
        /* @e<digits> */
        size_t q = p->pos + 1;
        if (q < p->len && s[q] == 'e' && q + 1 < p->len && is_digit(s[q + 1])) {
            int64_t k = 0;
            q++;
            while (q < p->len && is_digit(s[q]) && k < 1000)
                k = k * 10 + (s[q++] - '0');
            p->pos = q;
            p->tlen = q - p->start;
            p->tok = T_EXTRA;
            p->value = k;
            return;
        }
        p->tlen = 1;
        fail(p, KILN_EVALUE, p->start, "'@' must start an extra read such as @e0(i0)");
        p->tok = T_END;
        return;
    }
    static const struct {
        const char *text;
        enum tok tok;
    } ops[] = {
        {"<=", T_LE}, {">=", T_GE}, {"==", T_EQ}, {"!=", T_NE}, {"&&", T_AND}, {"||", T_OR},
        {"(", T_LP},  {")", T_RP},  {",", T_COMMA}, {"?", T_QUEST}, {":", T_COLON},
        {"+", T_PLUS}, {"-", T_MINUS}, {"*", T_STAR}, {"/", T_SLASH}, {"%", T_PERCENT},
        {"!", T_BANG}, {"<", T_LT}, {">", T_GT},
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t n = strlen(ops[i].text);
        if (p->len - p->pos >= n && memcmp(s + p->pos, ops[i].text, n) == 0) {
            p->pos += n;
            p->tlen = n;
            p->tok = ops[i].tok;
            return;
        }
    }
    p->tlen = 1;
    char ex[80];
    fail(p, KILN_EVALUE, p->start, "unexpected character '%s'", excerpt(p, ex, sizeof(ex)));
    p->tok = T_END;
}

/* Append a node; returns its index or -1 (error recorded). */
static int emit(struct parser *p, int op, int nargs, const int *args, int slot, int64_t value)
{
    if (p->rc != KILN_OK)
        return -1;
    if (p->count >= KILN_LIMIT_EXPR_NODES) {
        fail(p, KILN_ELIMIT, p->start, "expression has more than %d nodes",
             KILN_LIMIT_EXPR_NODES);
        return -1;
    }
    struct ir_expr_node *n = &p->nodes[p->count];
    memset(n, 0, sizeof(*n));
    n->op = (uint8_t) op;
    n->nargs = (uint8_t) nargs;
    n->slot = (uint8_t) slot;
    n->value = value;
    for (int i = 0; i < nargs; i++)
        n->arg[i] = (int16_t) args[i];
    return (int) p->count++;
}

static int emit2(struct parser *p, int op, int a, int b)
{
    int args[2] = {a, b};
    return emit(p, op, 2, args, 0, 0);
}

static int parse_expr(struct parser *p);

static bool accept(struct parser *p, enum tok t)
{
    if (p->rc == KILN_OK && p->tok == t) {
        next(p);
        return true;
    }
    return false;
}

static bool expect(struct parser *p, enum tok t, const char *what)
{
    if (accept(p, t))
        return true;
    char ex[80];
    if (p->tok == T_END)
        fail(p, KILN_EVALUE, p->start, "expected %s, found the end", what);
    else
        fail(p, KILN_EVALUE, p->start, "expected %s, found '%s'", what,
             excerpt(p, ex, sizeof(ex)));
    return false;
}

/* Match NAME against prefix+digits; returns the number or -1. */
static int name_slot(const struct parser *p, const char *prefix)
{
    size_t n = strlen(prefix);
    if (p->tlen <= n || p->tlen > n + 2 || memcmp(p->s + p->start, prefix, n) != 0)
        return -1;
    int k = 0;
    for (size_t i = n; i < p->tlen; i++) {
        char c = p->s[p->start + i];
        if (!is_digit(c) || (i == n && c == '0' && p->tlen > n + 1))
            return -1;
        k = k * 10 + (c - '0');
    }
    return k;
}

static bool name_is(const struct parser *p, const char *name)
{
    return p->tlen == strlen(name) && memcmp(p->s + p->start, name, p->tlen) == 0;
}

static int parse_name(struct parser *p)
{
    static const struct {
        const char *prefix;
        int op;
        int which; /* 0 loop, 1 x, 2 y */
    } dims[] = {
        {"i", IR_EXPR_INDEX, 0},         {"xshape", IR_EXPR_XSHAPE, 1},
        {"yshape", IR_EXPR_YSHAPE, 2},   {"xstride", IR_EXPR_XSTRIDE, 1},
        {"ystride", IR_EXPR_YSTRIDE, 2},
    };
    const struct ir_expr_scope *sc = p->scope;
    char ex[80];
    size_t at = p->start;

    if (name_is(p, "min") || name_is(p, "max")) {
        int op = name_is(p, "min") ? IR_EXPR_MIN : IR_EXPR_MAX;
        next(p);
        if (!expect(p, T_LP, "'(' after min/max"))
            return -1;
        int a = parse_expr(p);
        if (!expect(p, T_COMMA, "','"))
            return -1;
        int b = parse_expr(p);
        if (!expect(p, T_RP, "')'"))
            return -1;
        return emit2(p, op, a, b);
    }
    if (name_is(p, "XDIM") || name_is(p, "YDIM")) {
        int64_t v = name_is(p, "XDIM") ? sc->xrank : sc->yrank;
        next(p);
        return emit(p, IR_EXPR_CONST, 0, NULL, 0, v);
    }
    for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
        int k = name_slot(p, dims[i].prefix);
        if (k < 0)
            continue;
        int rank = dims[i].which == 0 ? sc->loop_rank : dims[i].which == 1 ? sc->xrank : sc->yrank;
        if (k >= rank)
            return fail(p, KILN_EVALUE, at, "'%s' is not defined here: only %d dimension%s",
                        excerpt(p, ex, sizeof(ex)), rank, rank == 1 ? "" : "s"),
                   -1;
        next(p);
        return emit(p, dims[i].op, 0, NULL, k, 0);
    }
    fail(p, KILN_EVALUE, at, "unknown name '%s'", excerpt(p, ex, sizeof(ex)));
    return -1;
}

static int parse_extra(struct parser *p)
{
    size_t at = p->start;
    int64_t k = p->value;
    const struct ir_expr_scope *sc = p->scope;
    if (k >= sc->nextras)
        return fail(p, KILN_EVALUE, at, "extra input @e%lld does not exist (%d given)",
                    (long long) k, sc->nextras),
               -1;
    next(p);
    if (!expect(p, T_LP, "'(' after an extra input"))
        return -1;
    int args[KILN_LIMIT_RANK];
    int n = 0;
    if (!accept(p, T_RP)) {
        do {
            if (n == sc->extra_rank[k] || n == KILN_LIMIT_RANK) {
                fail(p, KILN_EVALUE, p->start, "@e%lld takes %d coordinates", (long long) k,
                     sc->extra_rank[k]);
                return -1;
            }
            args[n++] = parse_expr(p);
        } while (accept(p, T_COMMA));
        if (!expect(p, T_RP, "')'"))
            return -1;
    }
    if (n != sc->extra_rank[k])
        return fail(p, KILN_EVALUE, at, "@e%lld takes %d coordinates, not %d", (long long) k,
                    sc->extra_rank[k], n),
               -1;
    return emit(p, IR_EXPR_EXTRA, n, args, (int) k, 0);
}

static int parse_unary(struct parser *p);

static int parse_primary(struct parser *p)
{
    char ex[80];
    switch (p->tok) {
    case T_INT: {
        int64_t v = p->value;
        next(p);
        return emit(p, IR_EXPR_CONST, 0, NULL, 0, v);
    }
    case T_NAME:
        return parse_name(p);
    case T_EXTRA:
        return parse_extra(p);
    case T_LP: {
        next(p);
        int e = parse_expr(p);
        if (!expect(p, T_RP, "')'"))
            return -1;
        return e;
    }
    case T_END:
        return fail(p, KILN_EVALUE, p->start, "expected a value, found the end"), -1;
    default:
        return fail(p, KILN_EVALUE, p->start, "expected a value, found '%s'",
                    excerpt(p, ex, sizeof(ex))),
               -1;
    }
}

static int parse_unary(struct parser *p)
{
    if (p->rc != KILN_OK || (p->tok != T_MINUS && p->tok != T_PLUS && p->tok != T_BANG))
        return parse_primary(p);
    /* Each prefix operator is one level of nesting, as each '(' is. */
    if (++p->depth > KILN_LIMIT_EXPR_DEPTH)
        return fail(p, KILN_ELIMIT, p->start, "expression nests deeper than %d",
                    KILN_LIMIT_EXPR_DEPTH),
               -1;
    int r;
    if (accept(p, T_MINUS)) {
        int a = parse_unary(p);
        /* Fold a negated literal so that -5 is one constant. */
        if (p->rc == KILN_OK && a == (int) p->count - 1 && p->nodes[a].op == IR_EXPR_CONST) {
            p->nodes[a].value = (int64_t) (0 - (uint64_t) p->nodes[a].value);
            r = a;
        } else {
            r = emit(p, IR_EXPR_NEG, 1, &a, 0, 0);
        }
    } else if (accept(p, T_PLUS)) {
        r = parse_unary(p);
    } else {
        accept(p, T_BANG);
        int a = parse_unary(p);
        r = emit(p, IR_EXPR_NOT, 1, &a, 0, 0);
    }
    p->depth--;
    return r;
}

/* One level of left-associative binary operators. */
struct level {
    enum tok tok[4];
    int op[4];
    int n;
};

static int parse_binary(struct parser *p, int lvl);

static const struct level levels[] = {
    {{T_OR}, {IR_EXPR_OR}, 1},
    {{T_AND}, {IR_EXPR_AND}, 1},
    {{T_EQ, T_NE}, {IR_EXPR_EQ, IR_EXPR_NE}, 2},
    {{T_LT, T_LE, T_GT, T_GE}, {IR_EXPR_LT, IR_EXPR_LE, IR_EXPR_GT, IR_EXPR_GE}, 4},
    {{T_PLUS, T_MINUS}, {IR_EXPR_ADD, IR_EXPR_SUB}, 2},
    {{T_STAR, T_SLASH, T_PERCENT}, {IR_EXPR_MUL, IR_EXPR_DIV, IR_EXPR_MOD}, 3},
};
#define NLEVELS ((int) (sizeof(levels) / sizeof(levels[0])))

static int parse_binary(struct parser *p, int lvl)
{
    if (lvl == NLEVELS)
        return parse_unary(p);
    int left = parse_binary(p, lvl + 1);
    for (;;) {
        int op = 0;
        for (int i = 0; i < levels[lvl].n; i++)
            if (p->rc == KILN_OK && p->tok == levels[lvl].tok[i])
                op = levels[lvl].op[i];
        if (op == 0)
            return left;
        next(p);
        int right = parse_binary(p, lvl + 1);
        left = emit2(p, op, left, right);
    }
}

static int parse_expr(struct parser *p)
{
    if (++p->depth > KILN_LIMIT_EXPR_DEPTH)
        return fail(p, KILN_ELIMIT, p->start, "expression nests deeper than %d",
                    KILN_LIMIT_EXPR_DEPTH),
               -1;
    int c = parse_binary(p, 0);
    if (accept(p, T_QUEST)) {
        int t = parse_expr(p);
        if (!expect(p, T_COLON, "':'")) {
            p->depth--;
            return -1;
        }
        int e = parse_expr(p);
        int args[3] = {c, t, e};
        c = emit(p, IR_EXPR_SELECT, 3, args, 0, 0);
    }
    p->depth--;
    return c;
}

/* The scope is built by the daemon, but every rank in it bounds a write
 * during parsing, so it is checked like input. */
static bool scope_valid(const struct ir_expr_scope *sc)
{
    if (sc->loop_rank < 0 || sc->loop_rank > KILN_LIMIT_RANK || sc->xrank < 0 ||
        sc->xrank > KILN_LIMIT_RANK || sc->yrank < 0 || sc->yrank > KILN_LIMIT_RANK ||
        sc->nextras < 0 || sc->nextras > KILN_LIMIT_EXPR_EXTRAS)
        return false;
    for (int k = 0; k < sc->nextras; k++)
        if (sc->extra_rank[k] < 0 || sc->extra_rank[k] > KILN_LIMIT_RANK)
            return false;
    return true;
}

int ir_expr_parse(const char *text, size_t len, const struct ir_expr_scope *scope,
                  struct ir_expr **out, char *msg, size_t msglen)
{
    *out = NULL;
    if (msg != NULL && msglen > 0)
        msg[0] = '\0';
    struct parser *p = malloc(sizeof(*p));
    if (p == NULL)
        return KILN_ENOMEM;
    memset(p, 0, offsetof(struct parser, nodes));
    p->s = text;
    p->len = len;
    p->scope = scope;
    p->count = 0;
    p->rc = KILN_OK;
    p->msg = msg;
    p->msglen = msglen;

    if (len > KILN_LIMIT_EXPR_BYTES) {
        fail(p, KILN_ELIMIT, 0, "expression of %zu bytes exceeds the limit of %d bytes", len,
             KILN_LIMIT_EXPR_BYTES);
    } else if (!scope_valid(scope)) {
        fail(p, KILN_EVALUE, 0, "bad expression scope");
    } else {
        next(p);
        parse_expr(p);
        if (p->rc == KILN_OK && p->tok != T_END) {
            char ex[80];
            fail(p, KILN_EVALUE, p->start, "unexpected '%s' after the expression",
                 excerpt(p, ex, sizeof(ex)));
        }
    }
    int rc = p->rc;
    if (rc == KILN_OK) {
        struct ir_expr *e = malloc(sizeof(*e) + p->count * sizeof(e->nodes[0]));
        if (e == NULL) {
            rc = KILN_ENOMEM;
        } else {
            e->count = p->count;
            memcpy(e->nodes, p->nodes, p->count * sizeof(e->nodes[0]));
            *out = e;
        }
    }
    free(p);
    return rc;
}

void ir_expr_free(struct ir_expr *e)
{
    free(e);
}

/* Is node k of e well formed in `sc`: its slot names something the scope
 * has, and its arguments are earlier nodes (children first)? */
static bool node_in_scope(const struct ir_expr *e, uint32_t k, const struct ir_expr_scope *sc)
{
    const struct ir_expr_node *n = &e->nodes[k];
    if (n->nargs > KILN_LIMIT_RANK)
        return false;
    for (int a = 0; a < n->nargs; a++)
        if (n->arg[a] < 0 || (uint32_t) n->arg[a] >= k)
            return false;
    switch (n->op) {
    case IR_EXPR_INDEX:
        return n->slot < sc->loop_rank;
    case IR_EXPR_XSHAPE: case IR_EXPR_XSTRIDE:
        return n->slot < sc->xrank;
    case IR_EXPR_YSHAPE: case IR_EXPR_YSTRIDE:
        return n->slot < sc->yrank;
    case IR_EXPR_EXTRA:
        return n->slot < sc->nextras && n->nargs == sc->extra_rank[n->slot];
    default:
        return n->op >= IR_EXPR_CONST && n->op < IR_EXPR_OP_END;
    }
}

int ir_expr_copy(const struct ir_expr *e, int swap_xy, const struct ir_expr_scope *scope,
                 struct ir_expr **out, char *msg, size_t msglen)
{
    static const uint8_t swapped[IR_EXPR_OP_END] = {
        [IR_EXPR_XSHAPE] = IR_EXPR_YSHAPE, [IR_EXPR_YSHAPE] = IR_EXPR_XSHAPE,
        [IR_EXPR_XSTRIDE] = IR_EXPR_YSTRIDE, [IR_EXPR_YSTRIDE] = IR_EXPR_XSTRIDE,
    };
    *out = NULL;
    if (msg != NULL && msglen > 0)
        msg[0] = '\0';
    if (e->count == 0 || e->count > KILN_LIMIT_EXPR_NODES || !scope_valid(scope)) {
        if (msg != NULL)
            snprintf(msg, msglen, "bad expression or scope to copy");
        return KILN_EVALUE;
    }
    struct ir_expr *c = malloc(sizeof(*c) + e->count * sizeof(c->nodes[0]));
    if (c == NULL)
        return KILN_ENOMEM;
    c->count = e->count;
    memcpy(c->nodes, e->nodes, e->count * sizeof(c->nodes[0]));
    for (uint32_t k = 0; k < c->count; k++) {
        struct ir_expr_node *n = &c->nodes[k];
        if (swap_xy && n->op < IR_EXPR_OP_END && swapped[n->op] != 0)
            n->op = swapped[n->op];
        if (!node_in_scope(c, k, scope)) {
            if (msg != NULL)
                snprintf(msg, msglen, "node %u of the copied expression names something "
                         "outside the new scope", k);
            free(c);
            return KILN_EVALUE;
        }
    }
    *out = c;
    return KILN_OK;
}

int64_t ir_expr_div(int64_t a, int64_t b)
{
    if (b == 0)
        return 0;
    if (b == -1)
        return (int64_t) (0 - (uint64_t) a); /* INT64_MIN / -1 wraps to INT64_MIN */
    return a / b;
}

int64_t ir_expr_mod(int64_t a, int64_t b)
{
    if (b == 0 || b == -1)
        return 0;
    return a % b;
}

int64_t ir_expr_eval(const struct ir_expr *e, const struct ir_expr_env *env, int64_t *v)
{
    for (uint32_t k = 0; k < e->count; k++) {
        const struct ir_expr_node *n = &e->nodes[k];
        int64_t a = n->nargs > 0 ? v[n->arg[0]] : 0;
        int64_t b = n->nargs > 1 ? v[n->arg[1]] : 0;
        uint64_t ua = (uint64_t) a, ub = (uint64_t) b;
        int64_t r = 0;
        switch (n->op) {
        case IR_EXPR_CONST: r = n->value; break;
        case IR_EXPR_INDEX: r = env->index[n->slot]; break;
        case IR_EXPR_XSHAPE: r = env->xshape[n->slot]; break;
        case IR_EXPR_YSHAPE: r = env->yshape[n->slot]; break;
        case IR_EXPR_XSTRIDE: r = env->xstride[n->slot]; break;
        case IR_EXPR_YSTRIDE: r = env->ystride[n->slot]; break;
        case IR_EXPR_EXTRA: {
            const int64_t *shape = env->extra_shape[n->slot];
            int64_t flat = 0;
            bool inside = true;
            for (int d = 0; d < n->nargs; d++) {
                int64_t c = v[n->arg[d]];
                if (c < 0 || c >= shape[d]) {
                    inside = false;
                    break; /* in range, flat < elements <= 2^40: no overflow */
                }
                flat = flat * shape[d] + c;
            }
            r = inside ? env->extra_read(env->extra_arg, n->slot, flat) : 0;
            break;
        }
        case IR_EXPR_NEG: r = (int64_t) (0 - ua); break;
        case IR_EXPR_NOT: r = a == 0; break;
        case IR_EXPR_ADD: r = (int64_t) (ua + ub); break;
        case IR_EXPR_SUB: r = (int64_t) (ua - ub); break;
        case IR_EXPR_MUL: r = (int64_t) (ua * ub); break;
        case IR_EXPR_DIV: r = ir_expr_div(a, b); break;
        case IR_EXPR_MOD: r = ir_expr_mod(a, b); break;
        case IR_EXPR_MIN: r = a < b ? a : b; break;
        case IR_EXPR_MAX: r = a > b ? a : b; break;
        case IR_EXPR_LT: r = a < b; break;
        case IR_EXPR_LE: r = a <= b; break;
        case IR_EXPR_GT: r = a > b; break;
        case IR_EXPR_GE: r = a >= b; break;
        case IR_EXPR_EQ: r = a == b; break;
        case IR_EXPR_NE: r = a != b; break;
        case IR_EXPR_AND: r = a != 0 && b != 0; break;
        case IR_EXPR_OR: r = a != 0 || b != 0; break;
        case IR_EXPR_SELECT: r = a != 0 ? b : v[n->arg[2]]; break;
        default: r = 0; break; /* unreachable: the parser emits only known ops */
        }
        v[k] = r;
    }
    return v[e->count - 1];
}

int ir_expr_uses_extras(const struct ir_expr *e)
{
    for (uint32_t k = 0; k < e->count; k++)
        if (e->nodes[k].op == IR_EXPR_EXTRA)
            return 1;
    return 0;
}
