/* install_prog.c: a user's first program, built by install_test.sh against
 * the installed libkiln with nothing but pkg-config. Exits 0 when the
 * daemon at argv[1] computes sigmoid([0, 2]) and every error path it tries
 * reports what it should. */
#include <kiln.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static int check(int ok, const char *what)
{
    if (!ok)
        fprintf(stderr, "install_prog: %s\n", what);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    int bad = 0;
    struct kiln_error e;
    kiln_conn *c = NULL;
    bad |= check(strcmp(kiln_err_name(KILN_ECONNECT), "CONNECT") == 0, "kiln_err_name");
    bad |= check(kiln_dtype_size(KILN_DTYPE_FLOAT64) == 8, "kiln_dtype_size");
    struct kiln_connect_opts dead = {.address = "ipc:///nonexistent/kiln/kilnd.sock"};
    bad |= check(kiln_connect(&c, &dead, &e) == KILN_ECONNECT && c == NULL, "dead address");

    struct kiln_connect_opts o = {.address = argv[1], .client = "install_prog"};
    int rc = kiln_connect(&c, &o, &e);
    if (rc != KILN_OK) {
        fprintf(stderr, "install_prog: connect: %s: %s\n", kiln_err_name(rc), e.message);
        return 1;
    }
    kiln_graph *g = kiln_graph_new(c);
    const float xs[2] = {0, 2};
    const int64_t shape[1] = {2};
    uint64_t x = kiln_graph_array(g, KILN_DTYPE_FLOAT32, 1, shape, xs, sizeof(xs));
    uint64_t y = kiln_graph_unary(g, KILN_OP_SIGMOID, x);
    kiln_graph_keep(g, y);
    struct kiln_tensor *t = NULL;
    if ((rc = kiln_graph_submit(g, NULL, &e)) == KILN_OK)
        rc = kiln_fetch(c, &y, 1, 10000, &t, &e);
    if (rc != KILN_OK) {
        fprintf(stderr, "install_prog: %s: %s\n", kiln_err_name(rc), e.message);
        bad = 1;
    } else {
        const float *v = t[0].data;
        bad |= check(fabsf(v[0] - 0.5f) < 1e-6f && fabsf(v[1] - 1 / (1 + expf(-2))) < 1e-6f,
                     "sigmoid values");
        kiln_tensors_free(t);
    }
    kiln_graph_free(g);
    kiln_close(c);
    return bad;
}
