/* test_examples.c: the example programs, run as a user runs them against
 * a real kilnd: train_mlp trains the two-layer network with both kinds of
 * gradients and must cut the loss at least tenfold; mlp_infer (C++) runs
 * the network from the weights train_mlp saved, from weights numpy saved
 * (when python3 has numpy), and refuses malformed .npy files by name.
 *
 * Paths come from meson: KILN_TRAIN_MLP, KILN_MLP_INFER (empty without a
 * C++ compiler: those tests then pass with a note). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

#define TRAIN_WAIT_MS 150000

static struct fixture_daemon daemon_;
static char dir[64]; /* a scratch directory for .npy files */

static void setup(void)
{
    ck_assert_msg(fixture_daemon_start(&daemon_, NULL) == 0, "kilnd did not start");
    snprintf(dir, sizeof(dir), "/tmp/kiln-npy-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    const char *names[] = {"W1", "b1", "W2", "b2", "expected"};
    char path[128];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s.npy", dir, names[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/expected.txt", dir);
    unlink(path);
    rmdir(dir);
    fixture_daemon_stop(&daemon_);
}

static const char *program(const char *var)
{
    const char *p = getenv(var);
    return p != NULL && p[0] != '\0' ? p : NULL;
}

/* Run an example, under $KILN_EXAMPLE_WRAP (a command and its arguments,
 * split at spaces: the valgrind test sets it) when that is set. */
static int run_example(struct fixture_run *r, const char *const *argv, int wait_ms)
{
    const char *wrap = getenv("KILN_EXAMPLE_WRAP");
    const char *full[48];
    size_t n = 0;
    char words[1024] = "";
    if (wrap != NULL && wrap[0] != '\0') {
        snprintf(words, sizeof(words), "%s", wrap);
        for (char *save, *w = strtok_r(words, " ", &save); w && n < 32;
             w = strtok_r(NULL, " ", &save))
            full[n++] = w;
        wait_ms *= 10;
    }
    for (size_t i = 0; argv[i] != NULL && n + 1 < 48; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    return fixture_run_program(r, NULL, full, wait_ms);
}

#define assert_contains(hay, needle)                                                               \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "expected \"%s\" in: %s", (needle), (hay))

/* Run train_mlp with `grad` and check the loss fell tenfold. */
static void train(const char *grad, const char *save)
{
    const char *exe = program("KILN_TRAIN_MLP");
    ck_assert_ptr_nonnull(exe);
    /* Under valgrind (KILN_EXAMPLE_WRAP) 200 steps, which cut the loss
     * about 25x, keep the run short; 1000 otherwise. */
    const char *wrap = getenv("KILN_EXAMPLE_WRAP");
    const char *steps = wrap != NULL && wrap[0] != '\0' ? "200" : "1000";
    const char *argv[] = {exe,   "--address", daemon_.address,        "--grad", grad, "--steps",
                          steps, "--quiet",   save ? "--save" : NULL, save,     NULL};
    struct fixture_run r;
    ck_assert_int_eq(run_example(&r, argv, TRAIN_WAIT_MS), 0);
    ck_assert_msg(r.status == 0, "train_mlp --grad %s: status %d: %s%s", grad, r.status, r.out,
                  r.err);
    float first, last, ratio;
    const char *line = strstr(r.out, "loss fell from");
    ck_assert_msg(line != NULL, "no loss line in: %s", r.out);
    ck_assert_int_eq(sscanf(line, "loss fell from %f to %f (%fx)", &first, &last, &ratio), 3);
    ck_assert_msg(first / last >= 10, "the loss fell only %.1fx: %s", first / last, line);
    printf("train_mlp --grad %s: %s", grad, line);
    fixture_run_fini(&r);
}

START_TEST(train_with_manual_gradients)
{
    train("manual", dir);
    /* The C++ program reads what the C program saved, and the network it
     * runs has learned x^2. */
    const char *infer = program("KILN_MLP_INFER");
    if (infer == NULL) {
        printf("mlp_infer not built (no C++ compiler): skipped\n");
        return;
    }
    const char *argv[] = {infer, "--address", daemon_.address, "--expect-square", "0.25",
                          dir,   NULL};
    struct fixture_run r;
    ck_assert_int_eq(run_example(&r, argv, 60000), 0);
    ck_assert_msg(r.status == 0, "mlp_infer: status %d: %s%s", r.status, r.out, r.err);
    int lines = 0;
    for (const char *p = r.out; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    ck_assert_int_eq(lines, 11); /* x = 0, 0.1, ..., 1 */
    assert_contains(r.out, "0.500000 0.");
    fixture_run_fini(&r);
}
END_TEST

START_TEST(train_with_daemon_gradients)
{
    train("daemon", NULL);
}
END_TEST

/* numpy saves the weights (two of them float64, cast by the graph) and
 * computes the network itself; mlp_infer must agree. */
START_TEST(infer_from_numpy_weights)
{
    const char *infer = program("KILN_MLP_INFER");
    if (infer == NULL) {
        printf("mlp_infer not built (no C++ compiler): skipped\n");
        return;
    }
    char script[2048];
    snprintf(script, sizeof(script),
             "import numpy as np\n"
             "r = np.random.default_rng(5)\n"
             "w1 = r.standard_normal((1, 7)); b1 = r.standard_normal(7).astype(np.float32)\n"
             "w2 = r.standard_normal((7, 1)).astype(np.float32); b2 = np.array([0.25])\n"
             "for n, v in (('W1', w1), ('b1', b1), ('W2', w2), ('b2', b2)):\n"
             "    np.save('%s/' + n + '.npy', v)\n"
             "x = np.array([[-1.0], [0.0], [0.5], [2.0]], np.float32)\n"
             "f = lambda a: a.astype(np.float32)\n"
             "h = 1 / (1 + np.exp(-(x @ f(w1) + b1)))\n"
             "y = h @ w2 + f(b2)\n"
             "print(' '.join('%%.6f' %% v for v in y.ravel()))\n",
             dir);
    const char *py[] = {"python3", "-c", script, NULL};
    struct fixture_run r;
    ck_assert_int_eq(fixture_run_program(&r, NULL, py, 60000), 0);
    if (r.status != 0) {
        printf("no python3 with numpy (status %d): skipped\n", r.status);
        fixture_run_fini(&r);
        return;
    }
    float want[4];
    ck_assert_int_eq(sscanf(r.out, "%f %f %f %f", &want[0], &want[1], &want[2], &want[3]), 4);
    fixture_run_fini(&r);

    const char *argv[] = {infer, "--address", daemon_.address, dir, "-1", "0", "0.5", "2", NULL};
    ck_assert_int_eq(run_example(&r, argv, 60000), 0);
    ck_assert_msg(r.status == 0, "mlp_infer: status %d: %s%s", r.status, r.out, r.err);
    const char *p = r.out;
    for (int i = 0; i < 4; i++) {
        float x, y;
        ck_assert_int_eq(sscanf(p, "%f %f", &x, &y), 2);
        ck_assert_msg(y > want[i] - 1e-4f && y < want[i] + 1e-4f, "x=%g: got %g, numpy %g", x, y,
                      want[i]);
        p = strchr(p, '\n') + 1;
    }
    fixture_run_fini(&r);
}
END_TEST

/* Write one .npy file: `header` is the dict, padded here; then `data`. */
static void write_npy(const char *name, int major, const char *header, const void *data,
                      size_t bytes)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s.npy", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    size_t lead = major == 1 ? 10 : 12, n = strlen(header);
    size_t total = lead + n + 1, pad = (64 - total % 64) % 64, hlen = n + pad + 1;
    unsigned char m[12] = {
        0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char) major, 0, hlen & 0xff, (hlen >> 8) & 0xff,
        0,    0};
    fwrite(m, 1, lead, f);
    fprintf(f, "%s%*s\n", header, (int) pad, "");
    fwrite(data, 1, bytes, f);
    fclose(f);
}

static void write_good_weights(void)
{
    static const float w[3] = {1, 2, 3}, b[1] = {0.5f};
    write_npy("W1", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }", w, 12);
    write_npy("b1", 2, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3,)}", w, 12);
    write_npy("W2", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1), }", w, 12);
    write_npy("b2", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", b, 4);
}

START_TEST(malformed_npy_is_refused_by_name)
{
    const char *infer = program("KILN_MLP_INFER");
    if (infer == NULL) {
        printf("mlp_infer not built (no C++ compiler): skipped\n");
        return;
    }
    static const float w[4] = {1, 2, 3, 4};
    const struct {
        const char *header; /* W1.npy's; NULL: no magic */
        size_t bytes;
        const char *message;
    } cases[] = {
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (1, 3), }", 12, "dtype '>f4'"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (1, 3), }", 12, "fortran_order True"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }", 8, "the data holds 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }", 16, "the data holds 16"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), 'x': 1}", 12, "key 'x'"},
        {"{'descr': '<f4', 'shape': (1, 3)}", 12, "lacks"},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (1, 3), }", 12, "dtype '<f2'"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (1, 3), }", 12, "dtype '|O'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1), }", 12, "W1.npy has shape"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (1, 3), }", 12, "holds int32"},
        {NULL, 12, "no \\x93NUMPY magic"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_good_weights();
        if (cases[i].header != NULL) {
            write_npy("W1", 1, cases[i].header, w, cases[i].bytes);
        } else {
            char path[128];
            snprintf(path, sizeof(path), "%s/W1.npy", dir);
            FILE *f = fopen(path, "wb");
            fputs("not numpy at all", f);
            fclose(f);
        }
        const char *argv[] = {infer, "--address", daemon_.address, dir, NULL};
        struct fixture_run r;
        /* Not under valgrind: these exercise the example's parser, not libkiln. */
        ck_assert_int_eq(fixture_run_program(&r, NULL, argv, 60000), 0);
        ck_assert_msg(r.status == 1, "case %zu: status %d: %s", i, r.status, r.err);
        assert_contains(r.err, cases[i].message);
        assert_contains(r.err, "W1.npy");
        fixture_run_fini(&r);
    }
    /* And the good ones work: y = sum_j w_j * sigmoid(w_j x + w_j) + 0.5. */
    write_good_weights();
    const char *argv[] = {infer, "--address", daemon_.address, dir, "0", NULL};
    struct fixture_run r;
    ck_assert_int_eq(run_example(&r, argv, 60000), 0);
    ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
    float x, y, want = 0.5f;
    for (int j = 1; j <= 3; j++)
        want += (float) j / (1 + expf(-(float) j));
    ck_assert_int_eq(sscanf(r.out, "%f %f", &x, &y), 2);
    ck_assert_float_eq_tol(y, want, 1e-4);
    fixture_run_fini(&r);
}
END_TEST

static Suite *examples_suite(void)
{
    Suite *s = suite_create("examples");
    fixture_require_kilnd();
    TCase *t = tcase_create("examples");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 200);
    tcase_add_test(t, train_with_manual_gradients);
    tcase_add_test(t, train_with_daemon_gradients);
    tcase_add_test(t, infer_from_numpy_weights);
    tcase_add_test(t, malformed_npy_is_refused_by_name);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return fixture_run_suite(examples_suite());
}
