/* train_mlp.c: train a two-layer network with libkiln, from scratch.
 *
 * The network of Jittor's introduction: y = W2 . sigmoid(W1 . x + b1) + b2
 * with one input, 10 hidden units and one output, fitted to y = x^2 for x
 * uniform on [0, 1) by SGD on the mean squared error, 50 samples a batch.
 *
 * Everything runs in the daemon. The parameters live there as kept vars;
 * each training step is one graph that draws its batch with the `random`
 * op, runs the network forward, computes the gradients and the SGD
 * update, and keeps the new parameters and the loss. The client only
 * builds graphs, releases the old parameters, and fetches losses: it
 * submits step k and then reads step k-1's loss, so the daemon is never
 * idle waiting for the client.
 *
 * Gradients come one of two ways (--grad):
 *   daemon  `grad` nodes (PROTOCOL.md §8, "Gradients"): the daemon
 *           derives the backward graph itself;
 *   manual  the closed-form backward pass of this small network written
 *           out as ordinary meta-ops (matmul as broadcast + mul + reduce,
 *           sigmoid' = s (1 - s), transposes as the lowered op 112);
 *   auto    (the default) daemon if the daemon accepts a `grad` node,
 *           else manual.
 *
 * usage: train_mlp [--address ADDR] [--steps N] [--lr X] [--seed N]
 *                  [--grad auto|daemon|manual] [--save DIR] [--expect-ratio R] [--quiet]
 * Exits 0 on success; 1 on failure (or when the loss did not fall by
 * --expect-ratio); 2 on a usage error; 77 for --grad daemon when the
 * daemon has no gradients. --save writes W1.npy, b1.npy, W2.npy, b2.npy
 * (float32) for mlp_infer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

#define BATCH  50
#define HIDDEN 10
#define F32    KILN_DTYPE_FLOAT32
#define LAST   50 /* the final loss is the mean over this many steps */

enum grad_mode { GRAD_AUTO, GRAD_DAEMON, GRAD_MANUAL };

struct params {
    uint64_t w1, b1, w2, b2; /* kept vars: [1,10], [10], [10,1], [1] */
};

static const int64_t shape_w1[] = {1, HIDDEN}, shape_b1[] = {HIDDEN};
static const int64_t shape_w2[] = {HIDDEN, 1}, shape_b2[] = {1};

static int fail(const char *what, int rc, const struct kiln_error *e)
{
    fprintf(stderr, "train_mlp: %s: %s: %s\n", what, kiln_err_name(rc), e->message);
    return 1;
}

/* ---- graph helpers: what a framework would give you -------------------- */

/* a[m,k] . b[k,n] with meta-ops: both broadcast to [m,k,n], multiplied,
 * summed over k. The daemon fuses the three into one kernel. */
static uint64_t matmul(kiln_graph *g, uint64_t a, uint64_t b, int64_t m, int64_t k, int64_t n)
{
    const int64_t mkn[] = {m, k, n};
    uint64_t ab = kiln_graph_broadcast_to(g, a, 3, mkn, 1, (uint32_t[]){2});
    uint64_t bb = kiln_graph_broadcast_to(g, b, 3, mkn, 1, (uint32_t[]){0});
    return kiln_graph_reduce(g, KILN_REDUCE_ADD, kiln_graph_binary(g, KILN_OP_MUL, ab, bb), 1,
                             (uint32_t[]){1}, false);
}

static uint64_t transpose2(kiln_graph *g, uint64_t x)
{
    return kiln_graph_transpose(g, x, 2, (uint32_t[]){1, 0});
}

static uint64_t mul(kiln_graph *g, uint64_t a, uint64_t b)
{
    return kiln_graph_binary(g, KILN_OP_MUL, a, b);
}

static uint64_t sub(kiln_graph *g, uint64_t a, uint64_t b)
{
    return kiln_graph_binary(g, KILN_OP_SUB, a, b);
}

static uint64_t add(kiln_graph *g, uint64_t a, uint64_t b)
{
    return kiln_graph_binary(g, KILN_OP_ADD, a, b);
}

/* p - lr * dp, for a parameter of the given shape. */
static uint64_t sgd(kiln_graph *g, uint64_t p, uint64_t dp, uint32_t rank, const int64_t *shape,
                    double lr)
{
    return sub(g, p, mul(g, kiln_graph_fill(g, F32, rank, shape, lr), dp));
}

/* ---- the network ------------------------------------------------------- */

/* Step 0: initial parameters, W ~ N(0, 1), b = 0. */
static int init_params(kiln_conn *c, uint64_t seed, struct params *p)
{
    kiln_graph *g = kiln_graph_new(c);
    if (g == NULL)
        return fprintf(stderr, "train_mlp: out of memory\n"), 1;
    p->w1 = kiln_graph_random(g, F32, 2, shape_w1, KILN_DIST_NORMAL, seed, 0);
    p->w2 = kiln_graph_random(g, F32, 2, shape_w2, KILN_DIST_NORMAL, seed, HIDDEN);
    p->b1 = kiln_graph_fill(g, F32, 1, shape_b1, 0);
    p->b2 = kiln_graph_fill(g, F32, 1, shape_b2, 0);
    kiln_graph_keep(g, p->w1);
    kiln_graph_keep(g, p->b1);
    kiln_graph_keep(g, p->w2);
    kiln_graph_keep(g, p->b2);
    struct kiln_error e;
    int rc = kiln_graph_submit(g, NULL, &e);
    kiln_graph_free(g);
    return rc == KILN_OK ? 0 : fail("initial parameters", rc, &e);
}

/* One training step: batch `step` from the random stream, forward, loss,
 * gradients, SGD. Fills *next with the new parameters and *loss. */
static void build_step(kiln_graph *g, const struct params *p, uint64_t seed, uint64_t step,
                       double lr, bool daemon_grad, struct params *next, uint64_t *loss)
{
    const int64_t bx1[] = {BATCH, 1}, bxh[] = {BATCH, HIDDEN};
    uint64_t x = kiln_graph_random(g, F32, 2, bx1, KILN_DIST_UNIFORM, seed + 1, step * BATCH);
    uint64_t y = mul(g, x, x);

    /* forward */
    uint64_t b1 = kiln_graph_broadcast_to(g, p->b1, 2, bxh, 1, (uint32_t[]){0});
    uint64_t h =
        kiln_graph_unary(g, KILN_OP_SIGMOID, add(g, matmul(g, x, p->w1, BATCH, 1, HIDDEN), b1));
    uint64_t b2 = kiln_graph_broadcast_to(g, p->b2, 2, bx1, 1, (uint32_t[]){0});
    uint64_t pred = add(g, matmul(g, h, p->w2, BATCH, HIDDEN, 1), b2);
    uint64_t d = sub(g, pred, y);
    *loss = kiln_graph_reduce(g, KILN_REDUCE_MEAN, mul(g, d, d), 2, (uint32_t[]){0, 1}, false);

    uint64_t dw1, db1, dw2, db2;
    if (daemon_grad) {
        /* One backward pass serves all four: same loss, requested together. */
        dw1 = kiln_graph_grad(g, *loss, p->w1, 0);
        db1 = kiln_graph_grad(g, *loss, p->b1, 0);
        dw2 = kiln_graph_grad(g, *loss, p->w2, 0);
        db2 = kiln_graph_grad(g, *loss, p->b2, 0);
    } else {
        /* d loss / d pred = 2 d / BATCH; then back through each layer. */
        uint64_t dpred = mul(g, d, kiln_graph_fill(g, F32, 2, bx1, 2.0 / BATCH));
        dw2 = matmul(g, transpose2(g, h), dpred, HIDDEN, BATCH, 1);
        db2 = kiln_graph_reduce(g, KILN_REDUCE_ADD, dpred, 1, (uint32_t[]){0}, false);
        uint64_t dh = matmul(g, dpred, transpose2(g, p->w2), BATCH, 1, HIDDEN);
        uint64_t one = kiln_graph_fill(g, F32, 2, bxh, 1);
        uint64_t dhpre = mul(g, dh, mul(g, h, sub(g, one, h))); /* sigmoid' = s (1 - s) */
        dw1 = matmul(g, transpose2(g, x), dhpre, 1, BATCH, HIDDEN);
        db1 = kiln_graph_reduce(g, KILN_REDUCE_ADD, dhpre, 1, (uint32_t[]){0}, false);
    }
    next->w1 = sgd(g, p->w1, dw1, 2, shape_w1, lr);
    next->b1 = sgd(g, p->b1, db1, 1, shape_b1, lr);
    next->w2 = sgd(g, p->w2, dw2, 2, shape_w2, lr);
    next->b2 = sgd(g, p->b2, db2, 1, shape_b2, lr);
    kiln_graph_keep(g, next->w1);
    kiln_graph_keep(g, next->b1);
    kiln_graph_keep(g, next->w2);
    kiln_graph_keep(g, next->b2);
    kiln_graph_keep(g, *loss);
}

/* Does the daemon take `grad` nodes? Asks with d(x*x)/dx of a scalar. */
static int probe_grad(kiln_conn *c, bool *yes)
{
    kiln_graph *g = kiln_graph_new(c);
    if (g == NULL)
        return fprintf(stderr, "train_mlp: out of memory\n"), 1;
    uint64_t x = kiln_graph_scalar(g, F32, 3);
    uint64_t dx = kiln_graph_grad(g, mul(g, x, x), x, 0);
    kiln_graph_keep(g, dx);
    struct kiln_error e;
    int rc = kiln_graph_submit(g, NULL, &e);
    kiln_graph_free(g);
    /* A daemon without gradients refuses the op number (VALUE naming
     * body.nodes[i].op) or the request (UNSUPPORTED). */
    *yes = rc == KILN_OK;
    if (rc == KILN_OK)
        return kiln_release(c, &dx, 1, NULL, NULL, &e) == KILN_OK ? 0 : fail("release", rc, &e);
    if (rc == KILN_EUNSUPPORTED || (rc == KILN_EVALUE && strstr(e.field, ".op") != NULL))
        return 0;
    return fail("gradient probe", rc, &e);
}

/* ---- saving weights as .npy ------------------------------------------- */

/* numpy's format 1.0: magic, version, header length, a Python dict
 * literal padded with spaces to a multiple of 64 bytes, then the data. */
static int save_npy(const char *dir, const char *name, const struct kiln_tensor *t)
{
    char path[4096], shape[128] = "", header[256];
    snprintf(path, sizeof(path), "%s/%s.npy", dir, name);
    for (uint32_t i = 0; i < t->rank; i++)
        snprintf(shape + strlen(shape), sizeof(shape) - strlen(shape), "%" PRId64 ",%s",
                 t->shape[i], i + 1 < t->rank ? " " : "");
    if (t->rank > 1)
        shape[strlen(shape) - 1] = '\0'; /* (1,) keeps its comma, (1, 10) loses it */
    int n = snprintf(header, sizeof(header),
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape);
    int total = 10 + n + 1; /* magic + version + length, header, newline */
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return fprintf(stderr, "train_mlp: %s: %s\n", path, strerror(errno)), 1;
    uint16_t hlen = (uint16_t) (n + pad + 1);
    unsigned char lead[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, hlen & 0xff, hlen >> 8};
    fwrite(lead, 1, sizeof(lead), f);
    fprintf(f, "%s%*s\n", header, pad, "");
    fwrite(t->data, 1, t->bytes, f); /* the wire's little-endian float32 is .npy's '<f4' */
    if (fclose(f) != 0)
        return fprintf(stderr, "train_mlp: %s: %s\n", path, strerror(errno)), 1;
    return 0;
}

static int save(kiln_conn *c, const struct params *p, const char *dir)
{
    uint64_t ids[] = {p->w1, p->b1, p->w2, p->b2};
    const char *names[] = {"W1", "b1", "W2", "b2"};
    struct kiln_tensor *t;
    struct kiln_error e;
    int rc = kiln_fetch(c, ids, 4, 60000, &t, &e);
    if (rc != KILN_OK)
        return fail("fetch parameters", rc, &e);
    int bad = 0;
    for (int i = 0; i < 4 && !bad; i++)
        bad = save_npy(dir, names[i], &t[i]);
    kiln_tensors_free(t);
    return bad;
}

/* ---- main -------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr, "usage: train_mlp [--address ADDR] [--steps N] [--lr X] [--seed N]\n"
                    "                 [--grad auto|daemon|manual] [--save DIR] [--expect-ratio R]"
                    " [--quiet]\n");
    return 2;
}

static int fetch_loss(kiln_conn *c, uint64_t id, float *out)
{
    struct kiln_tensor *t;
    struct kiln_error e;
    int rc = kiln_fetch(c, &id, 1, 60000, &t, &e);
    if (rc != KILN_OK)
        return fail("fetch loss", rc, &e);
    *out = *(const float *) t[0].data;
    kiln_tensors_free(t);
    if ((rc = kiln_release(c, &id, 1, NULL, NULL, &e)) != KILN_OK)
        return fail("release loss", rc, &e);
    return 0;
}

int main(int argc, char **argv)
{
    const char *address = NULL, *save_dir = NULL;
    long steps = 1000;
    double lr = 0.3, expect = 0;
    uint64_t seed = 1;
    enum grad_mode mode = GRAD_AUTO;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quiet") == 0) {
            quiet = true;
            continue;
        }
        if (v == NULL)
            return usage();
        i++;
        if (strcmp(a, "--address") == 0)
            address = v;
        else if (strcmp(a, "--steps") == 0) {
            if ((steps = strtol(v, NULL, 10)) <= LAST)
                return usage(); /* the final loss averages the last LAST steps */
        } else if (strcmp(a, "--lr") == 0)
            lr = strtod(v, NULL);
        else if (strcmp(a, "--seed") == 0)
            seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--save") == 0)
            save_dir = v;
        else if (strcmp(a, "--expect-ratio") == 0)
            expect = strtod(v, NULL);
        else if (strcmp(a, "--grad") == 0 && strcmp(v, "auto") == 0)
            mode = GRAD_AUTO;
        else if (strcmp(a, "--grad") == 0 && strcmp(v, "daemon") == 0)
            mode = GRAD_DAEMON;
        else if (strcmp(a, "--grad") == 0 && strcmp(v, "manual") == 0)
            mode = GRAD_MANUAL;
        else
            return usage();
    }

    kiln_conn *c;
    struct kiln_error e;
    struct kiln_connect_opts o = {.address = address, .client = "train_mlp"};
    int rc = kiln_connect(&c, &o, &e);
    if (rc != KILN_OK)
        return fail("connect", rc, &e);

    int status = 1;
    bool daemon_grad = false;
    kiln_graph *g = NULL;
    struct params p, next;
    uint64_t loss, pending = 0;
    float first = 0, last_sum = 0, l;
    if (mode != GRAD_MANUAL && probe_grad(c, &daemon_grad) != 0)
        goto out;
    if (mode == GRAD_DAEMON && !daemon_grad) {
        fprintf(stderr, "train_mlp: the daemon has no gradients (grad nodes refused)\n");
        status = 77;
        goto out;
    }
    if (!quiet)
        printf("gradients: %s\n", daemon_grad ? "daemon (grad nodes)" : "manual (meta-ops)");
    if (init_params(c, seed, &p) != 0 || (g = kiln_graph_new(c)) == NULL)
        goto out;

    for (long k = 1; k <= steps; k++) {
        kiln_graph_reset(g);
        build_step(g, &p, seed, (uint64_t) k, lr, daemon_grad, &next, &loss);
        if ((rc = kiln_graph_submit(g, NULL, &e)) != KILN_OK) {
            fail("submit", rc, &e);
            goto out;
        }
        /* The step holds what it reads: the old parameters can go now. */
        uint64_t old[] = {p.w1, p.b1, p.w2, p.b2};
        if ((rc = kiln_release(c, old, 4, NULL, NULL, &e)) != KILN_OK) {
            fail("release", rc, &e);
            goto out;
        }
        p = next;
        /* Read the previous step's loss while this one runs. */
        if (pending != 0) {
            if (fetch_loss(c, pending, &l) != 0)
                goto out;
            if (k - 1 == 1)
                first = l;
            if (k - 1 > steps - LAST)
                last_sum += l;
            if (!quiet && (k - 1) % 100 == 0)
                printf("step %5ld  loss %.6f\n", k - 1, l);
        }
        pending = loss;
    }
    if (fetch_loss(c, pending, &l) != 0)
        goto out;
    last_sum += l;
    float final = last_sum / LAST;
    printf("loss fell from %.6f to %.6f (%.1fx) in %ld steps\n", first, final, first / final,
           steps);
    if (save_dir != NULL && save(c, &p, save_dir) != 0)
        goto out;
    status = 0;
    if (expect > 0 && !(first / final >= expect)) {
        fprintf(stderr, "train_mlp: the loss fell %.1fx, less than the expected %.1fx\n",
                first / final, expect);
        status = 1;
    }
out:
    kiln_graph_free(g);
    kiln_close(c);
    return status;
}
