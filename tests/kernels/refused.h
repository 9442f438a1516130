/* refused.h: the graph, error and fixtures the constructor tests share,
 * and REFUSED, the check that a call was refused as expected and left the
 * graph unchanged. Header-only: each test program includes it once. */
#ifndef KILN_TESTS_REFUSED_H
#define KILN_TESTS_REFUSED_H

#include <check.h>
#include <string.h>

#include "ir.h"

static struct ir_graph g;
static struct ir_error err;

static void setup(void)
{
    ir_graph_init(&g);
    memset(&err, 0, sizeof(err));
}

static void teardown(void)
{
    ir_graph_fini(&g);
}

/* Expect a refusal with `code` naming `field`, and an unchanged graph. */
#define REFUSED(call, want_code, want_field)                                                     \
    do {                                                                                         \
        uint32_t count_ = g.count;                                                               \
        size_t owned_ = g.nowned;                                                                \
        int r_ = (call);                                                                         \
        ck_assert_msg(r_ == -1, "%s was accepted", #call);                                       \
        ck_assert_msg(err.code == (want_code), "%s: code %d (%s), want %d", #call, err.code,     \
                      err.message, (want_code));                                                 \
        ck_assert_str_eq(err.field, want_field);                                                 \
        ck_assert(err.message[0] != '\0');                                                       \
        ck_assert_uint_eq(g.count, count_);                                                      \
        ck_assert_uint_eq(g.nowned, owned_);                                                     \
    } while (0)

#endif
