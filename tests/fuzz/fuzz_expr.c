/* fuzz_expr.c: libFuzzer target for the index-expression parser.
 *
 * The first input byte picks the scope (ranks and extras), the rest is the
 * text. A parse must either fail with KILN_EVALUE/KILN_ELIMIT and a message
 * starting with the byte offset, or give an AST that obeys the documented
 * invariants (children before parents, slots within the scope) and
 * evaluates without faulting, whatever the loop indices. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "kiln_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t read_extra(void *arg, int k, int64_t flat)
{
    (void) arg;
    return flat * 7 - k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct ir_expr_scope sc = {
        .loop_rank = data[0] % 9,
        .xrank = (data[0] >> 4) % 9,
        .yrank = data[0] % 5,
        .nextras = (data[0] >> 6) % 3,
    };
    for (int k = 0; k < sc.nextras; k++)
        sc.extra_rank[k] = 1 + k;
    struct ir_expr *e;
    char msg[256];
    int rc = ir_expr_parse((const char *) data + 1, size - 1, &sc, &e, msg, sizeof(msg));
    if (rc != KILN_OK) {
        if ((rc != KILN_EVALUE && rc != KILN_ELIMIT) || e != NULL ||
            strncmp(msg, "at byte ", 8) != 0)
            abort();
        return 0;
    }
    if (e->count == 0 || e->count > KILN_LIMIT_EXPR_NODES)
        abort();
    for (uint32_t k = 0; k < e->count; k++)
        for (int a = 0; a < e->nodes[k].nargs; a++)
            if (e->nodes[k].arg[a] < 0 || (uint32_t) e->nodes[k].arg[a] >= k)
                abort();
    int64_t index[KILN_LIMIT_RANK], shape[KILN_LIMIT_RANK], stride[KILN_LIMIT_RANK];
    int64_t eshape[KILN_LIMIT_RANK] = {2, 3};
    for (int d = 0; d < KILN_LIMIT_RANK; d++) {
        index[d] = d == 0 ? INT64_MIN : d == 1 ? INT64_MAX : d * 3 - 5;
        shape[d] = d + 1;
        stride[d] = 1;
    }
    struct ir_expr_env env = {.index = index, .xshape = shape, .xstride = stride,
                              .yshape = shape, .ystride = stride, .xrank = sc.xrank,
                              .yrank = sc.yrank, .extra_read = read_extra};
    for (int k = 0; k < sc.nextras; k++)
        env.extra_shape[k] = eshape;
    int64_t scratch[KILN_LIMIT_EXPR_NODES];
    (void) ir_expr_eval(e, &env, scratch);
    ir_expr_free(e);
    return 0;
}
