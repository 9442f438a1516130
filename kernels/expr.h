/* expr.h: index expressions — the small language of reindex, its overflow
 * conditions and reindex_reduce, parsed into the daemon's own AST.
 *
 * A client writes `i2*2+i5-1` or `@e0(i0,i1)`; the daemon never pastes that
 * text anywhere. ir_expr_parse() turns it into a flat, bounded AST whose
 * every name was resolved against a scope the daemon built (which loop
 * indices, shapes and extra inputs exist), and code generation renders C or
 * CUDA from the AST alone, with names of its own choosing.
 *
 * Grammar (C precedence and associativity; all values are int64):
 *
 *   expr    := cond
 *   cond    := or [ '?' expr ':' cond ]
 *   or      := and { '||' and }
 *   and     := cmp { '&&' cmp }
 *   cmp     := rel { ('==' | '!=') rel }
 *   rel     := sum { ('<' | '<=' | '>' | '>=') sum }
 *   sum     := term { ('+' | '-') term }
 *   term    := unary { ('*' | '/' | '%') unary }
 *   unary   := ('-' | '+' | '!') unary | primary
 *   primary := INT | NAME | ('min' | 'max') '(' expr ',' expr ')'
 *            | '@e' DIGITS '(' [ expr { ',' expr } ] ')' | '(' expr ')'
 *   NAME    := 'i'k | 'xshape'k | 'yshape'k | 'xstride'k | 'ystride'k
 *            | 'XDIM' | 'YDIM'
 *
 * `i`k is the loop index of dimension k of the loop the expression runs in;
 * `x…` names the input and `y…` the output (strides in elements, row-major).
 * `@e`k`(…)` reads extra input k at the given coordinates (one per dim).
 *
 * Semantics are total, so no client-chosen expression can fault a kernel:
 * arithmetic wraps modulo 2^64 (two's complement); `/` truncates toward
 * zero and `%` takes the sign of the dividend, as in C, except that a
 * division or remainder by zero gives 0 and INT64_MIN / -1 gives INT64_MIN;
 * comparisons and `! && ||` give 0 or 1; an extra read at coordinates
 * outside the extra's shape gives 0. The reference interpreter
 * (ir_expr_eval) and generated code implement exactly these rules.
 *
 * Limits: text of KILN_LIMIT_EXPR_BYTES, KILN_LIMIT_EXPR_NODES nodes,
 * nesting KILN_LIMIT_EXPR_DEPTH, integer literals of magnitude at most
 * KILN_LIMIT_EXPR_CONST. Errors are KILN_ELIMIT or KILN_EVALUE with a
 * message that gives the byte offset and never echoes more than a short,
 * escaped excerpt of the text.
 *
 * Threads: parsing and evaluation are pure; a parsed expression is
 * immutable and may be shared between threads.
 */
#ifndef KILN_IR_EXPR_H
#define KILN_IR_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "kiln_limits.h"


enum ir_expr_op {
    IR_EXPR_CONST = 1, /* value */
    IR_EXPR_INDEX,     /* slot: loop dimension */
    IR_EXPR_XSHAPE,    /* slot: input dimension */
    IR_EXPR_YSHAPE,    /* slot: output dimension */
    IR_EXPR_XSTRIDE,   /* slot: input dimension */
    IR_EXPR_YSTRIDE,   /* slot: output dimension */
    IR_EXPR_EXTRA,     /* slot: extra input; args: one coordinate per dim */
    IR_EXPR_NEG,
    IR_EXPR_NOT,
    IR_EXPR_ADD,
    IR_EXPR_SUB,
    IR_EXPR_MUL,
    IR_EXPR_DIV,
    IR_EXPR_MOD,
    IR_EXPR_MIN,
    IR_EXPR_MAX,
    IR_EXPR_LT,
    IR_EXPR_LE,
    IR_EXPR_GT,
    IR_EXPR_GE,
    IR_EXPR_EQ,
    IR_EXPR_NE,
    IR_EXPR_AND,
    IR_EXPR_OR,
    IR_EXPR_SELECT, /* args: condition, then, else */
    IR_EXPR_OP_END
};

/* One AST node. Nodes are stored children first, so node k's arguments
 * all have indices below k and the root is the last node: evaluating the
 * array in order needs no recursion. */
struct ir_expr_node {
    uint8_t op;    /* enum ir_expr_op */
    uint8_t nargs; /* number of used entries of arg */
    uint8_t slot;  /* dimension or extra number, for the ops that name one */
    int16_t arg[KILN_LIMIT_RANK];
    int64_t value; /* IR_EXPR_CONST */
};

struct ir_expr {
    uint32_t count; /* nodes; the root is nodes[count - 1] */
    struct ir_expr_node nodes[];
};

/* What names an expression may use. Built by the daemon from the op's
 * validated shapes, never from client text. */
struct ir_expr_scope {
    int loop_rank;  /* i0 .. i{loop_rank-1} */
    int xrank;      /* xshape/xstride 0 .. xrank-1, and XDIM */
    int yrank;      /* yshape/ystride 0 .. yrank-1, and YDIM */
    int nextras;    /* @e0 .. @e{nextras-1} */
    int extra_rank[KILN_LIMIT_EXPR_EXTRAS];
};

/* Parse `len` bytes of `text` (need not be NUL-terminated) against
 * `scope`. On success returns KILN_OK and a new expression in *out (free
 * with ir_expr_free). On failure returns KILN_EVALUE (syntax, unknown
 * name, wrong arity), KILN_ELIMIT (a limit) or KILN_ENOMEM, writes a
 * message naming the byte offset into msg (may be NULL), and sets *out to
 * NULL. */
int ir_expr_parse(const char *text, size_t len, const struct ir_expr_scope *scope,
                  struct ir_expr **out, char *msg, size_t msglen);

void ir_expr_free(struct ir_expr *e);

/* A copy of a parsed expression for another node (autodiff builds the
 * backward of a reindex from the forward node's expressions). With
 * `swap_xy` the input's and the output's names trade places (xshape k <->
 * yshape k, xstride k <-> ystride k), so the copy means the same thing in
 * a node whose x is the original's y: the backward's loop runs over what
 * the forward wrote. XDIM and YDIM were constants from the parse and keep
 * their values. Every name of the copy is checked against `scope` as the
 * parser checks it. Returns KILN_OK with *out (free with ir_expr_free), or
 * KILN_EVALUE (a name outside the scope; message in msg) or KILN_ENOMEM. */
int ir_expr_copy(const struct ir_expr *e, int swap_xy, const struct ir_expr_scope *scope,
                 struct ir_expr **out, char *msg, size_t msglen);

/* Values for evaluation. Shapes and strides are indexed by dimension. */
struct ir_expr_env {
    const int64_t *index;   /* loop indices */
    const int64_t *xshape, *xstride;
    const int64_t *yshape, *ystride;
    int xrank, yrank;
    /* Extra input k: its shape, and a reader returning element `flat`
     * (row-major offset, already checked to be in range) as int64. */
    const int64_t *extra_shape[KILN_LIMIT_EXPR_EXTRAS];
    int64_t (*extra_read)(void *arg, int k, int64_t flat);
    void *extra_arg;
};

/* Evaluate with the semantics above. `scratch` holds at least e->count
 * values (KILN_LIMIT_EXPR_NODES always suffices). */
int64_t ir_expr_eval(const struct ir_expr *e, const struct ir_expr_env *env, int64_t *scratch);

/* The total operations, shared by the interpreter and the C helpers that
 * generated code calls, so both give the same answers. */
int64_t ir_expr_div(int64_t a, int64_t b);
int64_t ir_expr_mod(int64_t a, int64_t b);

/* True if the expression reads any extra input. */
int ir_expr_uses_extras(const struct ir_expr *e);

#endif
