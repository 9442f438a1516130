/* test_expr.c: the index-expression parser and its reference semantics:
 * precedence, the total arithmetic rules, scope checks, every limit, error
 * messages, and random expressions checked against an independent model. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "kiln_err.h"

static const int64_t idx[3] = {3, 5, 7};
static const int64_t xshape[2] = {10, 20}, xstride[2] = {20, 1};
static const int64_t yshape[3] = {4, 6, 8}, ystride[3] = {48, 8, 1};
static const int64_t e0shape[2] = {3, 4};

static int64_t read_extra(void *arg, int k, int64_t flat)
{
    (void) arg;
    return k * 1000 + flat; /* element value = its flat index, plus 1000 per extra */
}

static struct ir_expr_scope scope(void)
{
    struct ir_expr_scope s = {.loop_rank = 3, .xrank = 2, .yrank = 3, .nextras = 1};
    s.extra_rank[0] = 2;
    return s;
}

static struct ir_expr_env env(void)
{
    struct ir_expr_env e = {.index = idx, .xshape = xshape, .xstride = xstride,
                            .yshape = yshape, .ystride = ystride, .xrank = 2, .yrank = 3,
                            .extra_read = read_extra};
    e.extra_shape[0] = e0shape;
    return e;
}

static int64_t eval_text(const char *text)
{
    struct ir_expr_scope sc = scope();
    struct ir_expr *e;
    char msg[256];
    int rc = ir_expr_parse(text, strlen(text), &sc, &e, msg, sizeof(msg));
    ck_assert_msg(rc == KILN_OK, "parse of \"%s\" failed: %s", text, msg);
    struct ir_expr_env en = env();
    int64_t scratch[KILN_LIMIT_EXPR_NODES];
    int64_t v = ir_expr_eval(e, &en, scratch);
    ir_expr_free(e);
    return v;
}

static int parse_error(const char *text, size_t len, char *msg, size_t n)
{
    struct ir_expr_scope sc = scope();
    struct ir_expr *e = (struct ir_expr *) 1;
    int rc = ir_expr_parse(text, len, &sc, &e, msg, n);
    ck_assert_ptr_null(e);
    return rc;
}

START_TEST(values_and_precedence)
{
    static const struct {
        const char *text;
        int64_t want;
    } cases[] = {
        {"1+2*3", 7}, {"(1+2)*3", 9}, {"10-4-3", 3}, {"2*3%4", 2}, {"100/10/5", 2},
        {"1<2==1", 1}, {"2<1", 0}, {"3>=3&&2!=2", 0}, {"0||5", 1}, {"!0+1", 2}, {"!7", 0},
        {"1?2:0?3:4", 2}, {"0?2:0?3:4", 4}, {"0?1:2+3", 5}, {"- -3", 3}, {"+4", 4},
        {"-3/2", -1}, {"-7%3", -1}, {"7%-3", 1}, {"7/0", 0}, {"7%0", 0},
        {"min(3,-2)", -2}, {"max(i0,i1)", 5}, {"i0*2+i2-1", 12}, {"i0 * 2 + i2 - 1", 12},
        {"xshape1", 20}, {"yshape2", 8}, {"xstride0", 20}, {"ystride1", 8}, {"XDIM", 2},
        {"YDIM", 3}, {"@e0(1,2)", 6}, {"@e0(i0-1,i1-2)", 11}, {"@e0(3,0)", 0},
        {"@e0(-1,0)", 0}, {"@e0(0,4)", 0}, {"i1<0||i1>=yshape1", 0},
        {"4611686018427387904", INT64_C(4611686018427387904)},
        {"-4611686018427387904", -INT64_C(4611686018427387904)},
        {"4611686018427387904*2", INT64_MIN}, /* wraps */
        {"4611686018427387904*4", 0},
        {"(0-4611686018427387904)*2/-1", INT64_MIN}, /* INT64_MIN / -1 wraps */
        {"\t i0\n+\r1 ", 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = eval_text(cases[i].text);
        ck_assert_msg(got == cases[i].want, "\"%s\" = %lld, want %lld", cases[i].text,
                      (long long) got, (long long) cases[i].want);
    }
}
END_TEST

START_TEST(syntax_and_scope_errors)
{
    static const struct {
        const char *text;
        int code;
        const char *in_msg;
    } cases[] = {
        {"", KILN_EVALUE, "found the end"},
        {"1 +", KILN_EVALUE, "at byte 3"},
        {"(1", KILN_EVALUE, "expected ')'"},
        {"1)", KILN_EVALUE, "after the expression"},
        {"1 2", KILN_EVALUE, "after the expression"},
        {"foo", KILN_EVALUE, "unknown name 'foo'"},
        {"i3", KILN_EVALUE, "not defined here"},
        {"xshape2", KILN_EVALUE, "not defined here"},
        {"i01", KILN_EVALUE, "unknown name"},
        {"i", KILN_EVALUE, "unknown name"},
        {"1a", KILN_EVALUE, "followed by a letter"},
        {"$", KILN_EVALUE, "unexpected character"},
        {"i0 = 1", KILN_EVALUE, "unexpected character"},
        {"@e1(0,0)", KILN_EVALUE, "does not exist"},
        {"@e0(0)", KILN_EVALUE, "takes 2 coordinates"},
        {"@e0(0,0,0)", KILN_EVALUE, "takes 2 coordinates"},
        {"@x", KILN_EVALUE, "'@'"},
        {"min(1)", KILN_EVALUE, "expected ','"},
        {"1?2", KILN_EVALUE, "expected ':'"},
        {"e0p", KILN_EVALUE, "unknown name"},
        {"4611686018427387905", KILN_ELIMIT, "limit"},
        {"99999999999999999999999999", KILN_ELIMIT, "limit"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char msg[256];
        int rc = parse_error(cases[i].text, strlen(cases[i].text), msg, sizeof(msg));
        ck_assert_msg(rc == cases[i].code, "\"%s\": code %d, want %d (%s)", cases[i].text, rc,
                      cases[i].code, msg);
        ck_assert_msg(strstr(msg, cases[i].in_msg) != NULL, "\"%s\": message \"%s\" lacks \"%s\"",
                      cases[i].text, msg, cases[i].in_msg);
        ck_assert_msg(strncmp(msg, "at byte ", 8) == 0, "message \"%s\" gives no offset", msg);
    }
}
END_TEST

START_TEST(limits)
{
    char msg[256];
    /* text: at the limit parses, one byte over does not */
    char text[KILN_LIMIT_EXPR_BYTES + 2];
    memset(text, ' ', sizeof(text));
    text[0] = '1';
    ck_assert_int_eq(eval_text((text[KILN_LIMIT_EXPR_BYTES] = '\0', text)), 1);
    ck_assert_int_eq(parse_error((text[KILN_LIMIT_EXPR_BYTES] = ' ', text),
                                 KILN_LIMIT_EXPR_BYTES + 1, msg, sizeof(msg)),
                     KILN_ELIMIT);
    /* nodes: 1+1+...: n literals and n-1 additions */
    char *sum = malloc(4 * KILN_LIMIT_EXPR_NODES);
    for (int n = 128; n <= 129; n++) {
        size_t w = 0;
        for (int i = 0; i < n; i++)
            w += (size_t) sprintf(sum + w, i ? "+1" : "1");
        struct ir_expr_scope sc = scope();
        struct ir_expr *e;
        int rc = ir_expr_parse(sum, w, &sc, &e, msg, sizeof(msg));
        /* 2n-1 nodes: 255 fits in 256, 257 does not */
        ck_assert_int_eq(rc, n == 128 ? KILN_OK : KILN_ELIMIT);
        if (rc == KILN_OK) {
            ck_assert_uint_eq(e->count, 255);
            ir_expr_free(e);
        }
    }
    free(sum);
    /* depth: parentheses and unary chains, at the limit and past it */
    for (int d = KILN_LIMIT_EXPR_DEPTH - 1; d <= KILN_LIMIT_EXPR_DEPTH + 8; d += 9) {
        bool over = d > KILN_LIMIT_EXPR_DEPTH - 1;
        char deep[256];
        size_t w = 0;
        for (int i = 0; i < d; i++)
            deep[w++] = '(';
        deep[w++] = '1';
        for (int i = 0; i < d; i++)
            deep[w++] = ')';
        struct ir_expr_scope sc = scope();
        struct ir_expr *e;
        ck_assert_int_eq(ir_expr_parse(deep, w, &sc, &e, msg, sizeof(msg)),
                         over ? KILN_ELIMIT : KILN_OK);
        ir_expr_free(e);
        memset(deep, '!', (size_t) d);
        deep[d] = '1';
        ck_assert_int_eq(ir_expr_parse(deep, (size_t) d + 1, &sc, &e, msg, sizeof(msg)),
                         over ? KILN_ELIMIT : KILN_OK);
        ir_expr_free(e);
    }
}
END_TEST

START_TEST(extra_reads_out_of_range_are_zero_without_overflow)
{
    /* Huge coordinates: the range check must stop before any multiply. */
    ck_assert_int_eq(eval_text("@e0(4611686018427387904,4611686018427387904)"), 0);
    ck_assert_int_eq(eval_text("@e0(-4611686018427387904,1)"), 0);
    ck_assert_int_eq(eval_text("@e0(2,4611686018427387904*2)"), 0);
}
END_TEST

START_TEST(bad_scopes_are_refused)
{
    char msg[128];
    struct ir_expr *e;
    struct ir_expr_scope sc = scope();
    sc.extra_rank[0] = KILN_LIMIT_RANK + 4; /* would overflow the argument list */
    ck_assert_int_eq(ir_expr_parse("@e0(1,2,3,4,5,6,7,8,9,10,11,12)", 31, &sc, &e, msg,
                                   sizeof(msg)),
                     KILN_EVALUE);
    ck_assert_ptr_null(e);
    sc = scope();
    sc.extra_rank[0] = -1;
    ck_assert_int_eq(ir_expr_parse("i0", 2, &sc, &e, msg, sizeof(msg)), KILN_EVALUE);
    sc = scope();
    sc.nextras = KILN_LIMIT_EXPR_EXTRAS + 1;
    ck_assert_int_eq(ir_expr_parse("i0", 2, &sc, &e, msg, sizeof(msg)), KILN_EVALUE);
    sc = scope();
    sc.loop_rank = KILN_LIMIT_RANK + 1;
    ck_assert_int_eq(ir_expr_parse("i0", 2, &sc, &e, msg, sizeof(msg)), KILN_EVALUE);
}
END_TEST

START_TEST(messages_do_not_echo_text)
{
    /* A long hostile token is cut to a short escaped excerpt. */
    char text[600];
    memcpy(text, "1 + ", 4);
    memset(text + 4, 'Z', 500);
    text[504] = '\x01';
    char msg[1024];
    int rc = parse_error(text, 505, msg, sizeof(msg));
    ck_assert_int_eq(rc, KILN_EVALUE);
    ck_assert_uint_lt(strlen(msg), 120);
    const char ctl[] = "1 + \x1b[31m";
    rc = parse_error(ctl, sizeof(ctl) - 1, msg, sizeof(msg));
    ck_assert_int_eq(rc, KILN_EVALUE);
    ck_assert_ptr_null(strchr(msg, '\x1b'));
    ck_assert_ptr_nonnull(strstr(msg, "\\x1b"));
}
END_TEST

/* ---- random expressions against an independent model ------------------ */

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Writes a random expression of at most `budget` operators into buf and
 * returns its value under the documented semantics, computed here without
 * the library. Every sub-expression is parenthesised, so precedence is
 * tested separately above. */
static int64_t gen(uint64_t *s, char *buf, size_t *w, int budget)
{
    if (budget <= 0 || rng(s) % 4 == 0) {
        switch (rng(s) % 3) {
        case 0: {
            int64_t c = (int64_t) (rng(s) % 2001) - 1000;
            *w += (size_t) sprintf(buf + *w, "(%lld)", (long long) c);
            return c;
        }
        case 1: {
            int k = (int) (rng(s) % 3);
            *w += (size_t) sprintf(buf + *w, "i%d", k);
            return idx[k];
        }
        default: {
            int k = (int) (rng(s) % 3);
            *w += (size_t) sprintf(buf + *w, "yshape%d", k);
            return yshape[k];
        }
        }
    }
    static const char *const ops[] = {"+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==",
                                      "!=", "&&", "||", "min", "max", "?"};
    int op = (int) (rng(s) % (sizeof(ops) / sizeof(ops[0])));
    int64_t a, b, c;
    uint64_t ua, ub;
    if (op == 13 || op == 14) {
        *w += (size_t) sprintf(buf + *w, "%s(", ops[op]);
        a = gen(s, buf, w, budget / 2);
        buf[(*w)++] = ',';
        b = gen(s, buf, w, budget / 2);
        buf[(*w)++] = ')';
        return op == 13 ? (a < b ? a : b) : (a > b ? a : b);
    }
    buf[(*w)++] = '(';
    a = gen(s, buf, w, budget / 2);
    if (op == 15) {
        buf[(*w)++] = '?';
        b = gen(s, buf, w, budget / 3);
        buf[(*w)++] = ':';
        c = gen(s, buf, w, budget / 3);
        buf[(*w)++] = ')';
        return a ? b : c;
    }
    *w += (size_t) sprintf(buf + *w, "%s", ops[op]);
    b = gen(s, buf, w, budget / 2);
    buf[(*w)++] = ')';
    ua = (uint64_t) a;
    ub = (uint64_t) b;
    switch (op) {
    case 0: return (int64_t) (ua + ub);
    case 1: return (int64_t) (ua - ub);
    case 2: return (int64_t) (ua * ub);
    case 3: return b == 0 ? 0 : (b == -1 ? (int64_t) (0 - ua) : a / b);
    case 4: return b == 0 || b == -1 ? 0 : a % b;
    case 5: return a < b;
    case 6: return a <= b;
    case 7: return a > b;
    case 8: return a >= b;
    case 9: return a == b;
    case 10: return a != b;
    case 11: return a && b;
    default: return a || b;
    }
}

START_TEST(random_against_model)
{
    uint64_t s = 0x1234567887654321ULL;
    char buf[4096];
    for (int iter = 0; iter < 3000; iter++) {
        size_t w = 0;
        int64_t want = gen(&s, buf, &w, 24);
        buf[w] = '\0';
        if (w > KILN_LIMIT_EXPR_BYTES)
            continue;
        int64_t got = eval_text(buf);
        ck_assert_msg(got == want, "\"%s\" = %lld, model says %lld", buf, (long long) got,
                      (long long) want);
    }
}
END_TEST

static Suite *expr_suite(void)
{
    Suite *s = suite_create("kernels-expr");
    TCase *t = tcase_create("expr");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, values_and_precedence);
    tcase_add_test(t, syntax_and_scope_errors);
    tcase_add_test(t, limits);
    tcase_add_test(t, messages_do_not_echo_text);
    tcase_add_test(t, extra_reads_out_of_range_are_zero_without_overflow);
    tcase_add_test(t, bad_scopes_are_refused);
    tcase_add_test(t, random_against_model);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(expr_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
