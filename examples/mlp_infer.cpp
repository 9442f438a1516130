// mlp_infer.cpp: run the two-layer network of train_mlp from saved weights.
//
// Loads W1 [1,H], b1 [H], W2 [H,1] and b2 [1] from DIR/W1.npy ... (numpy's
// .npy, float32 or float64; see npy.hpp for the subset read), as written
// by `train_mlp --save DIR` or from Python with
//
//     for name, value in (("W1", w1), ("b1", b1), ("W2", w2), ("b2", b2)):
//         numpy.save(f"{DIR}/{name}.npy", value)      # value: var.numpy()
//
// (from a model of kiln.nn.Linear layers, whose weight is [out, in]: W1 is
// layer1.weight.numpy().T, b1 layer1.bias.numpy(), and so on; jt.save's
// pickles are not read here, as unpickling runs code), and prints
// y = W2 . sigmoid(W1 . x + b1) + b2 for each x, one "x y" line each
// (default x: 0, 0.1, ..., 1). The weights are uploaded once and kept
// by the session; each batch of inputs is one more graph on top of them.
//
// usage: mlp_infer [--address ADDR] [--expect-square TOL] DIR [X...]
// --expect-square fails (exit 1) unless |y - x^2| <= TOL for every x: the
// check that a network trained by train_mlp learned its function.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kiln.hpp"
#include "npy.hpp"

namespace
{

// a[m,k] . b[k,n] as broadcast + mul + sum, as in train_mlp.c.
kiln::var matmul(kiln::graph &g, kiln::var a, kiln::var b, int64_t m, int64_t k, int64_t n)
{
    return g.sum(g.broadcast_to(a, {m, k, n}, {2}) * g.broadcast_to(b, {m, k, n}, {0}), {1});
}

// Upload a weight as float32, checking its shape.
kiln::var upload(kiln::graph &g, const npy::array &a, const kiln::shape_t &shape,
                 const std::string &name)
{
    if (a.shape != shape) {
        std::string want, got;
        for (int64_t d : shape)
            want += std::to_string(d) + " ";
        for (int64_t d : a.shape)
            got += std::to_string(d) + " ";
        throw std::runtime_error(name + ".npy has shape [ " + got + "], expected [ " + want + "]");
    }
    if (a.type == kiln::dtype::float32)
        return g.array(a.view<float>(), shape);
    if (a.type == kiln::dtype::float64) // the daemon converts it
        return g.cast(g.array(a.view<double>(), shape), kiln::dtype::float32);
    throw std::runtime_error(name + ".npy holds " + kiln::dtype_name(a.type) +
                             ", not float32 or float64");
}

int usage()
{
    std::fprintf(stderr, "usage: mlp_infer [--address ADDR] [--expect-square TOL] DIR [X...]\n");
    return 2;
}

} // namespace

int main(int argc, char **argv)
{
    kiln::options opts;
    opts.client = "mlp_infer";
    double tol = -1;
    std::string dir;
    std::vector<float> xs;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--address" && i + 1 < argc) {
            opts.address = argv[++i];
        } else if (a == "--expect-square" && i + 1 < argc) {
            tol = std::atof(argv[++i]);
        } else if (a.rfind("--", 0) == 0) {
            return usage();
        } else if (dir.empty()) {
            dir = a;
        } else {
            xs.push_back(std::strtof(a.c_str(), nullptr));
        }
    }
    if (dir.empty())
        return usage();
    if (xs.empty())
        for (int i = 0; i <= 10; i++)
            xs.push_back(static_cast<float>(i) / 10);

    try {
        npy::array w1 = npy::load(dir + "/W1.npy"), b1 = npy::load(dir + "/b1.npy");
        npy::array w2 = npy::load(dir + "/W2.npy"), b2 = npy::load(dir + "/b2.npy");
        if (w1.shape.size() != 2)
            throw std::runtime_error("W1.npy must be [1, hidden]");
        const int64_t h = w1.shape[1], n = static_cast<int64_t>(xs.size());

        kiln::connection c(opts);
        // Step 1: the weights, kept by the session.
        kiln::graph weights(c);
        kiln::var W1 = upload(weights, w1, {1, h}, "W1"), B1 = upload(weights, b1, {h}, "b1");
        kiln::var W2 = upload(weights, w2, {h, 1}, "W2"), B2 = upload(weights, b2, {1}, "b2");
        for (kiln::var v : {W1, B1, W2, B2})
            weights.keep(v);
        weights.submit();

        // Step 2: the inputs and the forward pass over the kept weights.
        kiln::graph g(c);
        kiln::var x = g.array(xs, {n, 1});
        kiln::var hidden = kiln::sigmoid(matmul(g, x, g.use(W1.id()), n, 1, h) +
                                         g.broadcast_to(g.use(B1.id()), {n, h}, {0}));
        kiln::var y = matmul(g, hidden, g.use(W2.id()), n, h, 1) +
                      g.broadcast_to(g.use(B2.id()), {n, 1}, {0});
        g.expect(y, kiln::dtype::float32, {n, 1});
        g.keep(y);
        g.submit();

        std::vector<float> ys = c.fetch(y.id(), 60000).to_vector<float>();
        c.release({W1.id(), B1.id(), W2.id(), B2.id(), y.id()});
        double worst = 0;
        for (size_t i = 0; i < xs.size(); i++) {
            std::printf("%.6f %.6f\n", xs[i], ys[i]);
            worst = std::fmax(worst, std::fabs(ys[i] - static_cast<double>(xs[i]) * xs[i]));
        }
        if (tol >= 0 && !(worst <= tol)) {
            std::fprintf(stderr, "mlp_infer: |y - x^2| reaches %.4f, more than %.4f\n", worst, tol);
            return 1;
        }
    } catch (const kiln::error &e) {
        std::fprintf(stderr, "mlp_infer: %s (field \"%s\")\n", e.what(), e.field().c_str());
        return 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "mlp_infer: %s\n", e.what());
        return 1;
    }
    return 0;
}
