/* test_tcc.c: the libtcc tier — kernels in kiln's calling convention
 * compile and compute the right numbers, only handed-over symbols link,
 * diagnostics reach the caller, code is never writable, and nothing leaks
 * over many compiles (run under ASan in CI). */
#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln_err.h"
#include "tcc.h"

/* Generated code has no headers: it declares what it uses. */
#define PRELUDE "typedef long long int64_t;\n"

static const char add_src[] =
    PRELUDE "void add(void **bufs, const int64_t *shapes, int64_t begin, int64_t end)\n"
            "{\n"
            "    const float *a = bufs[0], *b = bufs[1];\n"
            "    float *c = bufs[2];\n"
            "    for (int64_t i = begin; i < end; i++)\n"
            "        c[i] = a[i] + b[i];\n"
            "}\n"
            /* A second kernel in the same module, using the shapes argument:
             * out[i, j] = x[i, j] * 2 for a 2-d x of shape (shapes[0], shapes[1]). */
            "void twice2d(void **bufs, const int64_t *shapes, int64_t begin, int64_t end)\n"
            "{\n"
            "    const double *x = bufs[0];\n"
            "    double *y = bufs[1];\n"
            "    for (int64_t i = begin; i < end; i++)\n"
            "        for (int64_t j = 0; j < shapes[1]; j++)\n"
            "            y[i * shapes[1] + j] = x[i * shapes[1] + j] * 2.0;\n"
            "}\n";

static struct jit_compiler compiler;
static struct jit_tcc_opts opts;

static void setup(void)
{
    ck_assert_int_eq(jit_compiler_init(&compiler), KILN_OK);
    opts = (struct jit_tcc_opts){.compiler = &compiler};
}

static void teardown(void)
{
    jit_compiler_fini(&compiler);
}

static struct jit_module *compile_ok(const char *src, const struct jit_symbol *syms, size_t n)
{
    char err[1024];
    struct jit_module *mod = NULL;
    int rc = jit_tcc_compile(&opts, src, syms, n, &mod, err, sizeof err);
    ck_assert_msg(rc == KILN_OK, "compile failed (code %d): %s", rc, err);
    ck_assert_ptr_nonnull(mod);
    return mod;
}

/* Permissions of the /proc/self/maps line that contains addr ("r-xp"), or
 * "" if no line does. */
static void maps_perms(const void *addr, char perms[8])
{
    FILE *f = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(f);
    perms[0] = '\0';
    char line[512];
    uintptr_t a = (uintptr_t) addr;
    while (fgets(line, sizeof line, f) != NULL) {
        uintptr_t lo, hi;
        char p[8];
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &lo, &hi, p) == 3 && a >= lo && a < hi) {
            memcpy(perms, p, sizeof p);
            break;
        }
    }
    fclose(f);
}

/* Anonymous executable mappings: where module code lives. Other mappings
 * come and go with malloc (and ASan's allocator), so they are not counted. */
static int maps_count_anon_exec(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(f);
    int n = 0;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        char perms[8];
        unsigned long inode;
        int path_at = 0;
        if (sscanf(line, "%*s %7s %*s %*s %lu %n", perms, &inode, &path_at) >= 2 &&
            perms[2] == 'x' && inode == 0 &&
            (path_at == 0 || line[path_at] == '\0' || line[path_at] == '\n'))
            n++;
    }
    fclose(f);
    return n;
}

/* ---- kernels run and compute ------------------------------------------- */

START_TEST(add_kernel)
{
    struct jit_module *mod = compile_ok(add_src, NULL, 0);
    jit_kernel_fn add = jit_module_kernel(mod, "add");
    ck_assert_ptr_nonnull(add);
    enum { N = 1001 };
    static float a[N], b[N], c[N];
    for (int i = 0; i < N; i++) {
        a[i] = (float) i * 0.5f - 100.0f;
        b[i] = 1.0f / (float) (i + 1);
        c[i] = -12345.0f;
    }
    void *bufs[] = {a, b, c};
    int64_t shapes[] = {N};
    /* Two slices, as two executor threads would run them. */
    add(bufs, shapes, 0, 300);
    ck_assert(c[300] == -12345.0f); /* the first slice stops at its end */
    add(bufs, shapes, 300, N);
    for (int i = 0; i < N; i++)
        ck_assert_msg(c[i] == a[i] + b[i], "c[%d] = %g, want %g", i, c[i], a[i] + b[i]);

    jit_kernel_fn twice = jit_module_kernel(mod, "twice2d");
    ck_assert_ptr_nonnull(twice);
    double x[3][5], y[3][5];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++)
            x[i][j] = i * 10 + j + 0.25, y[i][j] = 0;
    void *bufs2[] = {x, y};
    int64_t shapes2[] = {3, 5};
    twice(bufs2, shapes2, 0, 3);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++)
            ck_assert(y[i][j] == 2 * x[i][j]);

    ck_assert_ptr_null(jit_module_lookup(mod, "sub"));
    ck_assert_ptr_null(jit_module_lookup(mod, "memcpy")); /* ours, not the module's */
    ck_assert_uint_gt(jit_module_compile_ns(mod), 0);
    ck_assert_uint_ge(jit_module_code_bytes(mod), 4096);
    jit_module_free(mod);
}
END_TEST

START_TEST(expf_symbol)
{
    static const char src[] = PRELUDE "float expf(float);\n"
                                      "double tanh(double);\n"
                                      "void k(void **bufs, const int64_t *shapes,\n"
                                      "       int64_t begin, int64_t end)\n"
                                      "{\n"
                                      "    const float *x = bufs[0];\n"
                                      "    float *y = bufs[1];\n"
                                      "    double *z = bufs[2];\n"
                                      "    for (int64_t i = begin; i < end; i++) {\n"
                                      "        y[i] = expf(x[i]);\n"
                                      "        z[i] = tanh((double) x[i]);\n"
                                      "    }\n"
                                      "}\n";
    size_t nmath;
    const struct jit_symbol *math = jit_tcc_math_symbols(&nmath);
    ck_assert_uint_gt(nmath, 20);
    struct jit_module *mod = compile_ok(src, math, nmath);
    jit_kernel_fn k = jit_module_kernel(mod, "k");
    ck_assert_ptr_nonnull(k);
    enum { N = 257 };
    float x[N], y[N];
    double z[N];
    for (int i = 0; i < N; i++)
        x[i] = (float) (i - 128) / 16.0f;
    void *bufs[] = {x, y, z};
    int64_t shapes[] = {N};
    k(bufs, shapes, 0, N);
    for (int i = 0; i < N; i++) {
        /* The same libm function: bit-identical, not merely close. */
        ck_assert_msg(y[i] == expf(x[i]), "expf(%g) = %g, libm %g", x[i], y[i], expf(x[i]));
        ck_assert(z[i] == tanh((double) x[i]));
    }
    printf("kernel with expf/tanh and %zu math symbols handed over: %.1f us\n", nmath,
           (double) jit_module_compile_ns(mod) / 1e3);
    jit_module_free(mod);
}
END_TEST

START_TEST(lib_path_is_not_needed)
{
    /* -nostdinc -nostdlib: libtcc never looks in its lib path (libtcc1.a,
     * its include dir), so a bogus one must not matter and the tcc package
     * need not be installed. */
    struct jit_tcc_opts bogus = {.compiler = &compiler, .options = "-B/nonexistent/tcc"};
    char err[512];
    struct jit_module *mod = NULL;
    int rc = jit_tcc_compile(&bogus, add_src, NULL, 0, &mod, err, sizeof err);
    ck_assert_msg(rc == KILN_OK, "compile failed: %s", err);
    ck_assert_ptr_nonnull(jit_module_kernel(mod, "add"));
    jit_module_free(mod);
}
END_TEST

START_TEST(math_table_is_sane)
{
    size_t n;
    const struct jit_symbol *math = jit_tcc_math_symbols(&n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_ptr_nonnull(math[i].name);
        ck_assert_ptr_nonnull(math[i].addr);
        for (size_t j = i + 1; j < n; j++)
            ck_assert_str_ne(math[i].name, math[j].name);
    }
}
END_TEST

/* ---- failures are clean ------------------------------------------------- */

START_TEST(syntax_error_names_the_line)
{
    static const char src[] = PRELUDE                                   /* line 1 */
        "void k(void **bufs, const int64_t *s, int64_t b, int64_t e)\n" /* 2 */
        "{\n"                                                           /* 3 */
        "    float *x = bufs[0]\n"                                      /* 4: no ';' */
        "    x[0] = 1;\n"                                               /* 5 */
        "}\n";
    char err[512];
    struct jit_module *mod = (struct jit_module *) 1;
    int rc = jit_tcc_compile(&opts, src, NULL, 0, &mod, err, sizeof err);
    ck_assert_int_eq(rc, KILN_EINTERNAL);
    ck_assert_ptr_null(mod);
    ck_assert_msg(strstr(err, "error") != NULL, "diagnostic: %s", err);
    /* tcc reports the token after the missing ';', on line 5. */
    ck_assert_msg(strstr(err, ":5:") != NULL, "diagnostic without the line: %s", err);
    printf("syntax error diagnostic: %s\n", err);
    struct jit_compiler_stats st;
    jit_compiler_stats(&compiler, &st);
    ck_assert_uint_eq(st.failures, 1);
    ck_assert_uint_eq(st.compiles, 0);
}
END_TEST

START_TEST(unknown_symbol_fails_cleanly)
{
    /* Declared but never handed over: must fail at link, not crash. */
    static const char src[] =
        PRELUDE "float mystery_fn(float);\n"
                "void k(void **bufs, const int64_t *s, int64_t b, int64_t e)\n"
                "{ float *x = bufs[0]; x[0] = mystery_fn(x[0]); }\n";
    char err[512];
    struct jit_module *mod = NULL;
    int rc = jit_tcc_compile(&opts, src, NULL, 0, &mod, err, sizeof err);
    ck_assert_int_eq(rc, KILN_EINTERNAL);
    ck_assert_ptr_null(mod);
    ck_assert_msg(strstr(err, "mystery_fn") != NULL, "diagnostic: %s", err);
    printf("unknown symbol diagnostic: %s\n", err);
}
END_TEST

START_TEST(libc_is_not_reachable)
{
    /* Without -nostdlib libtcc would resolve this through dlsym. */
    static const char src[] =
        PRELUDE "int system(const char *);\n"
                "void k(void **bufs, const int64_t *s, int64_t b, int64_t e)\n"
                "{ system(\"true\"); }\n";
    char err[512];
    struct jit_module *mod = NULL;
    ck_assert_int_eq(jit_tcc_compile(&opts, src, NULL, 0, &mod, err, sizeof err), KILN_EINTERNAL);
    ck_assert_ptr_null(mod);
    ck_assert_msg(strstr(err, "system") != NULL, "diagnostic: %s", err);
    /* Nor are headers. */
    ck_assert_int_eq(jit_tcc_compile(&opts, "#include <stdio.h>\n", NULL, 0, &mod, err, sizeof err),
                     KILN_EINTERNAL);
    ck_assert_msg(strstr(err, "stdio.h") != NULL, "diagnostic: %s", err);
}
END_TEST

START_TEST(diagnostics_truncate_safely)
{
    static const char src[] = "int f( {\n";
    char err[8];
    memset(err, 'X', sizeof err);
    struct jit_module *mod = NULL;
    ck_assert_int_eq(jit_tcc_compile(&opts, src, NULL, 0, &mod, err, sizeof err), KILN_EINTERNAL);
    ck_assert_uint_eq(strlen(err), sizeof err - 1);
    /* No buffer at all is allowed too. */
    ck_assert_int_eq(jit_tcc_compile(&opts, src, NULL, 0, &mod, NULL, 0), KILN_EINTERNAL);
    ck_assert_ptr_null(mod);
}
END_TEST

/* ---- memory ---------------------------------------------------------------- */

START_TEST(code_is_never_writable)
{
    struct jit_module *mod = compile_ok(add_src, NULL, 0);
    void *fn = jit_module_lookup(mod, "add");
    ck_assert_ptr_nonnull(fn);
    char perms[8];
    maps_perms(fn, perms);
    ck_assert_msg(strcmp(perms, "r-xp") == 0, "code mapping is %s", perms);
    jit_module_free(mod);
    maps_perms(fn, perms);
    ck_assert_msg(strcmp(perms, "r-xp") != 0, "code still mapped after free: %s", perms);
}
END_TEST

START_TEST(many_compiles_do_not_leak)
{
    /* ASan's leak check covers heap memory; counting executable anonymous
     * mappings covers the code images, which ASan does not see. */
    struct jit_module *warm = compile_ok(add_src, NULL, 0);
    jit_module_free(warm);
    int maps_before = maps_count_anon_exec();
    warm = compile_ok(add_src, NULL, 0); /* the count does see a live module */
    ck_assert_int_eq(maps_count_anon_exec(), maps_before + 1);
    jit_module_free(warm);
    ck_assert_int_eq(maps_count_anon_exec(), maps_before);
    enum { ROUNDS = 200 };
    uint64_t total = 0, best = UINT64_MAX;
    for (int r = 0; r < ROUNDS; r++) {
        char src[512];
        snprintf(src, sizeof src,
                 PRELUDE "void k%d(void **bufs, const int64_t *s, int64_t b, int64_t e)\n"
                         "{ float *x = bufs[0]; for (int64_t i = b; i < e; i++) x[i] += %d; }\n",
                 r, r);
        struct jit_module *mod = compile_ok(src, NULL, 0);
        char name[16];
        snprintf(name, sizeof name, "k%d", r);
        jit_kernel_fn k = jit_module_kernel(mod, name);
        ck_assert_ptr_nonnull(k);
        float x[2] = {1, 1};
        void *bufs[] = {x};
        k(bufs, NULL, 0, 2);
        ck_assert(x[0] == 1.0f + (float) r && x[1] == x[0]);
        uint64_t ns = jit_module_compile_ns(mod);
        total += ns;
        if (ns < best)
            best = ns;
        jit_module_free(mod);
    }
    int maps_after = maps_count_anon_exec();
    ck_assert_int_eq(maps_after, maps_before);
    struct jit_compiler_stats st;
    jit_compiler_stats(&compiler, &st);
    ck_assert_uint_eq(st.compiles, ROUNDS + 2);
    ck_assert_uint_eq(st.failures, 0);
    printf("libtcc compile+relocate+seal of a trivial kernel: mean %.1f us, best %.1f us "
           "over %d\n",
           (double) total / ROUNDS / 1e3, (double) best / 1e3, ROUNDS);
}
END_TEST

/* ---- threads --------------------------------------------------------------- */

static void *compile_worker(void *arg)
{
    int *ok = arg;
    for (int r = 0; r < 25; r++) {
        struct jit_module *mod = NULL;
        char err[256];
        if (jit_tcc_compile(&opts, add_src, NULL, 0, &mod, err, sizeof err) != KILN_OK)
            return NULL;
        float a[1] = {1}, b[1] = {2}, c[1] = {0};
        void *bufs[] = {a, b, c};
        jit_module_kernel(mod, "add")(bufs, NULL, 0, 1);
        jit_module_free(mod);
        if (c[0] != 3.0f)
            return NULL;
    }
    *ok = 1;
    return NULL;
}

START_TEST(concurrent_callers_are_serialised)
{
    enum { T = 4 };
    pthread_t th[T];
    int ok[T] = {0};
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, compile_worker, &ok[i]), 0);
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ck_assert(ok[i]);
    }
    struct jit_compiler_stats st;
    jit_compiler_stats(&compiler, &st);
    ck_assert_uint_eq(st.compiles, T * 25);
}
END_TEST

/* Under a no-write+execute policy (the MDWE prctl, Linux 6.3+; what
 * systemd's MemoryDenyWriteExecute uses) libtcc would exit(1) from inside
 * relocation. jit_compiler_init must refuse instead, in a child process so
 * the policy does not stick to the test runner. */
START_TEST(wx_policy_is_refused_not_fatal)
{
    ck_assert_int_eq(jit_tcc_policy_check(), KILN_OK); /* normal process */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* PR_SET_MDWE = 65, PR_MDWE_REFUSE_EXEC_GAIN = 1 */
        if (prctl(65, 1UL, 0UL, 0UL, 0UL) != 0)
            _exit(3); /* kernel without MDWE */
        struct jit_compiler c;
        int rc = jit_compiler_init(&c);
        _exit(rc == KILN_EUNSUPPORTED ? 0 : 2);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_msg(WEXITSTATUS(status) != 2, "init did not refuse under MDWE");
    ck_assert_msg(WEXITSTATUS(status) != 3, "this kernel has no MDWE prctl: cannot check");
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(compiler_fini_on_zeroed)
{
    struct jit_compiler z;
    memset(&z, 0, sizeof z);
    jit_compiler_fini(&z);
    jit_compiler_fini(NULL);
    jit_module_free(NULL);
}
END_TEST

static Suite *tcc_suite(void)
{
    Suite *s = suite_create("jit/tcc");
    TCase *tc = tcase_create("tcc");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, add_kernel);
    tcase_add_test(tc, expf_symbol);
    tcase_add_test(tc, lib_path_is_not_needed);
    tcase_add_test(tc, math_table_is_sane);
    tcase_add_test(tc, syntax_error_names_the_line);
    tcase_add_test(tc, unknown_symbol_fails_cleanly);
    tcase_add_test(tc, libc_is_not_reachable);
    tcase_add_test(tc, diagnostics_truncate_safely);
    tcase_add_test(tc, code_is_never_writable);
    tcase_add_test(tc, many_compiles_do_not_leak);
    tcase_add_test(tc, concurrent_callers_are_serialised);
    tcase_add_test(tc, compiler_fini_on_zeroed);
    tcase_add_test(tc, wx_policy_is_refused_not_fatal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tcc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
