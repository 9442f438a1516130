/* test_expr_c.c: index expressions rendered as C and compiled with libtcc
 * give exactly what the reference evaluator gives, on random expressions
 * and random loop indices; and the rendered text holds only names the
 * daemon chose, whatever the client wrote. */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "expr_c.h"
#include "kiln_err.h"
#include "tcc.h"

#define NEXPR  300 /* expressions per module */
#define NPOINT 16  /* index tuples each expression is evaluated at */

static const int64_t xshape[2] = {10, 20}, xstride[2] = {20, 1};
static const int64_t yshape[3] = {4, 6, 8}, ystride[3] = {48, 8, 1};
static const int64_t e0shape[2] = {3, 5};
static int64_t e0data[15];

static const struct jit_expr_names names = {
    .index = {"i0", "i1", "i2"},
    .xshape = {"xs0", "xs1"},
    .xstride = {"xt0", "xt1"},
    .yshape = {"ys0", "ys1", "ys2"},
    .ystride = {"yt0", "yt1", "yt2"},
    .extra_fn = {"kx_e0"},
};

static struct ir_expr_scope scope(void)
{
    struct ir_expr_scope s = {.loop_rank = 3, .xrank = 2, .yrank = 3, .nextras = 1};
    s.extra_rank[0] = 2;
    return s;
}

static int64_t read_extra(void *arg, int k, int64_t flat)
{
    (void) arg;
    (void) k;
    return e0data[flat];
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random expression text over the whole grammar (no value model needed:
 * the reference evaluator is checked against one in tests/kernels). */
static void gen(uint64_t *s, char *buf, size_t *w, int budget)
{
    static const char *const leaves[] = {"i0", "i1", "i2", "xshape0", "xshape1", "yshape2",
                                         "xstride0", "ystride1", "XDIM", "YDIM"};
    static const char *const ops[] = {"+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==",
                                      "!=", "&&", "||"};
    int pick = (int) (rng(s) % 10);
    if (budget <= 0 || pick < 3) {
        if (rng(s) % 2)
            *w += (size_t) sprintf(buf + *w, "%lld", (long long) (rng(s) % 4001) - 2000);
        else
            *w += (size_t) sprintf(buf + *w, "%s", leaves[rng(s) % 10]);
        return;
    }
    switch (pick) {
    case 3:
        *w += (size_t) sprintf(buf + *w, "%s(", rng(s) % 2 ? "min" : "max");
        gen(s, buf, w, budget / 2);
        buf[(*w)++] = ',';
        gen(s, buf, w, budget / 2);
        buf[(*w)++] = ')';
        return;
    case 4:
        *w += (size_t) sprintf(buf + *w, "@e0(");
        gen(s, buf, w, budget / 3);
        buf[(*w)++] = ',';
        gen(s, buf, w, budget / 3);
        buf[(*w)++] = ')';
        return;
    case 5:
        buf[(*w)++] = "-!"[rng(s) % 2];
        buf[(*w)++] = '(';
        gen(s, buf, w, budget - 1);
        buf[(*w)++] = ')';
        return;
    case 6:
        buf[(*w)++] = '(';
        gen(s, buf, w, budget / 3);
        buf[(*w)++] = '?';
        gen(s, buf, w, budget / 3);
        buf[(*w)++] = ':';
        gen(s, buf, w, budget / 3);
        buf[(*w)++] = ')';
        return;
    default:
        buf[(*w)++] = '(';
        gen(s, buf, w, budget / 2);
        *w += (size_t) sprintf(buf + *w, "%s", ops[rng(s) % 13]);
        gen(s, buf, w, budget / 2);
        buf[(*w)++] = ')';
        return;
    }
}

/* Every identifier in rendered C must be one the daemon chose. */
static void check_only_daemon_names(const char *c)
{
    static const char *const allowed[] = {"i0", "i1", "i2", "xs0", "xs1", "xt0", "xt1", "ys0",
                                          "ys1", "ys2", "yt0", "yt1", "yt2", "kx_e0",
                                          "kiln_div", "kiln_mod", "kiln_min", "kiln_max",
                                          "int64_t", "uint64_t"};
    for (const char *p = c; *p;) {
        if (isalpha((unsigned char) *p) || *p == '_') {
            const char *q = p;
            while (isalnum((unsigned char) *q) || *q == '_')
                q++;
            size_t n = (size_t) (q - p);
            bool ok = false;
            for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
                ok = ok || (strlen(allowed[i]) == n && memcmp(allowed[i], p, n) == 0);
            ck_assert_msg(ok, "unexpected identifier \"%.*s\" in \"%s\"", (int) n, p, c);
            p = q;
        } else if (isdigit((unsigned char) *p)) {
            while (isdigit((unsigned char) *p))
                p++;
            if (strncmp(p, "LL", 2) == 0)
                p += 2;
        } else {
            ck_assert_msg(strchr(" ()+-*/%<>=!&|?:,", *p) != NULL, "unexpected byte 0x%02x", *p);
            p++;
        }
    }
}

START_TEST(random_expressions_agree_with_the_evaluator)
{
    struct jit_compiler comp;
    ck_assert_int_eq(jit_compiler_init(&comp), KILN_OK);
    uint64_t seed = 0xfeedbeefcafe1234ULL + (uint64_t) _i;
    for (int i = 0; i < 15; i++)
        e0data[i] = (int64_t) (rng(&seed) % 200) - 100;

    struct ir_expr *exprs[NEXPR];
    struct jit_buf src;
    jit_buf_init(&src);
    jit_buf_add(&src, jit_expr_prelude_c(1));
    jit_buf_add(&src,
                "static int64_t kx_read(const int64_t *d, int64_t a, int64_t b)\n"
                "{ return a < 0 || a >= 3 || b < 0 || b >= 5 ? 0 : d[a * 5 + b]; }\n"
                "#define kx_e0(a, b) kx_read(e0, (a), (b))\n");
    char text[4096];
    for (int k = 0; k < NEXPR; k++) {
        size_t w = 0;
        gen(&seed, text, &w, 20);
        text[w] = '\0';
        struct ir_expr_scope sc = scope();
        char msg[200];
        int rc = ir_expr_parse(text, w, &sc, &exprs[k], msg, sizeof(msg));
        ck_assert_msg(rc == KILN_OK, "\"%s\": %s", text, msg);
        jit_buf_addf(&src,
                     "int64_t f%d(const int64_t *i, const int64_t *xs, const int64_t *xt,\n"
                     "            const int64_t *ys, const int64_t *yt, const int64_t *e0)\n"
                     "{\n"
                     "    int64_t i0 = i[0], i1 = i[1], i2 = i[2];\n"
                     "    int64_t xs0 = xs[0], xs1 = xs[1], xt0 = xt[0], xt1 = xt[1];\n"
                     "    int64_t ys0 = ys[0], ys1 = ys[1], ys2 = ys[2];\n"
                     "    int64_t yt0 = yt[0], yt1 = yt[1], yt2 = yt[2];\n"
                     "    return ",
                     k);
        size_t start = src.len;
        ck_assert_int_eq(jit_expr_render_c(exprs[k], &names, &src), KILN_OK);
        check_only_daemon_names(src.data + start);
        jit_buf_add(&src, ";\n}\n");
    }
    ck_assert(!src.bad);

    struct jit_tcc_opts opts = {.compiler = &comp};
    struct jit_module *mod;
    char err[1024];
    int rc = jit_tcc_compile(&opts, src.data, NULL, 0, &mod, err, sizeof(err));
    ck_assert_msg(rc == KILN_OK, "compile failed: %s", err);

    typedef int64_t (*fn_t)(const int64_t *, const int64_t *, const int64_t *, const int64_t *,
                            const int64_t *, const int64_t *);
    int64_t scratch[KILN_LIMIT_EXPR_NODES];
    for (int k = 0; k < NEXPR; k++) {
        char fname[16];
        snprintf(fname, sizeof(fname), "f%d", k);
        fn_t f = (fn_t) jit_module_lookup(mod, fname);
        ck_assert_ptr_nonnull(f);
        for (int p = 0; p < NPOINT; p++) {
            int64_t idx[3];
            for (int d = 0; d < 3; d++)
                idx[d] = p == 0 ? 0 : (int64_t) (rng(&seed) % 64) - 8;
            if (p == 1)
                idx[0] = INT64_C(1) << 62; /* wrapping paths */
            struct ir_expr_env env = {.index = idx, .xshape = xshape, .xstride = xstride,
                                      .yshape = yshape, .ystride = ystride, .xrank = 2,
                                      .yrank = 3, .extra_read = read_extra};
            env.extra_shape[0] = e0shape;
            int64_t want = ir_expr_eval(exprs[k], &env, scratch);
            int64_t got = f(idx, xshape, xstride, yshape, ystride, e0data);
            ck_assert_msg(got == want, "f%d at (%lld,%lld,%lld): C gives %lld, evaluator %lld", k,
                          (long long) idx[0], (long long) idx[1], (long long) idx[2],
                          (long long) got, (long long) want);
        }
    }
    jit_module_free(mod);
    for (int k = 0; k < NEXPR; k++)
        ir_expr_free(exprs[k]);
    jit_buf_fini(&src);
    jit_compiler_fini(&comp);
}
END_TEST

START_TEST(missing_name_is_a_codegen_error)
{
    struct ir_expr_scope sc = scope();
    struct ir_expr *e;
    char msg[100];
    ck_assert_int_eq(ir_expr_parse("i2 + ystride2", 13, &sc, &e, msg, sizeof(msg)), KILN_OK);
    struct jit_expr_names partial = {.index = {"a", "b", "c"}}; /* no ystride names */
    struct jit_buf b;
    jit_buf_init(&b);
    ck_assert_int_eq(jit_expr_render_c(e, &partial, &b), KILN_EINTERNAL);
    jit_buf_fini(&b);
    ir_expr_free(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jit/expr_c");
    TCase *tc = tcase_create("expr_c");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, random_expressions_agree_with_the_evaluator, 0, 4);
    tcase_add_test(tc, missing_name_is_a_codegen_error);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
