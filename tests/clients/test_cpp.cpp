// test_cpp.cpp: kiln.hpp, the C++ wrapper, against a real kilnd: RAII
// handles, exceptions that carry the code, field and node, uploads from
// vectors, arrays and spans, typed views of fetched values, operators,
// every graph call, poll and release. A plain program (no Check): each
// CHECK that fails prints itself, and the exit status counts them.
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "fixture.h"
}
#include "kiln.hpp"

namespace
{

int failures = 0;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

// Run f, which must throw kiln::error with `code`; returns the error.
template <class F> kiln::error expect_throw(F f, int code, int line)
{
    try {
        f();
    } catch (const kiln::error &e) {
        if (e.code() != code) {
            std::fprintf(stderr, "line %d: threw %s, wanted %s\n", line, e.what(),
                         kiln_err_name(code));
            failures++;
        }
        return e;
    }
    std::fprintf(stderr, "line %d: did not throw %s\n", line, kiln_err_name(code));
    failures++;
    return kiln::error(KILN_OK, "");
}
#define EXPECT_THROW(code, ...) expect_throw([&] { __VA_ARGS__; }, code, __LINE__)

bool near(const std::vector<float> &got, const std::vector<float> &want)
{
    if (got.size() != want.size())
        return false;
    for (size_t i = 0; i < got.size(); i++)
        if (std::fabs(got[i] - want[i]) > 1e-5f * (1 + std::fabs(want[i])))
            return false;
    return true;
}

void connection_and_errors(const std::string &address)
{
    kiln::options dead;
    dead.address = "ipc:///nonexistent/kiln-test/kilnd.sock";
    kiln::error e = EXPECT_THROW(KILN_ECONNECT, kiln::connection c(dead));
    CHECK(std::string(e.name()) == "CONNECT");
    CHECK(std::strstr(e.what(), "CONNECT: ") == e.what());

    kiln::options o;
    o.address = address;
    o.client = "test_cpp";
    o.timeout_ms = 5000;
    kiln::connection c(o);
    c.ping();
    CHECK(c.session().id != 0);
    CHECK(c.address() == address);
    CHECK(c.status().sessions >= 1);

    // Moving a connection moves the session; the moved-from one is empty.
    kiln::connection moved(std::move(c));
    moved.ping();
    CHECK(c.get() == nullptr);

    // The daemon's refusal: the node and field that are wrong.
    kiln::graph g(moved);
    kiln::var a = g.array(std::vector<float>{1, 2}, {2});
    kiln::var b = g.array(std::vector<float>{1, 2, 3}, {3});
    g.keep(a + b);
    e = EXPECT_THROW(KILN_EVALUE, g.submit());
    CHECK(e.node() == 2);
    CHECK(e.field().rfind("body.nodes[2]", 0) == 0);

    // A builder fault throws at the call, naming it.
    g.reset();
    kiln::var x = g.scalar(kiln::dtype::float32, 1);
    e = EXPECT_THROW(KILN_EARG, g.binary(KILN_OP_SIGMOID, x, x));
    CHECK(e.field() == "binary");
    g.reset();
    e = EXPECT_THROW(KILN_EARG, g.array(std::vector<float>{1, 2, 3}, {2, 2}));
    EXPECT_THROW(KILN_ENOTFOUND, moved.fetch(12345, 0));
    EXPECT_THROW(KILN_EARG, kiln::var().owner());
}

void values(const std::string &address)
{
    kiln::options o;
    o.address = address;
    kiln::connection c(o);
    kiln::graph g(c);

    // Uploads from a vector, a std::array, a C array and a pointer + size.
    std::vector<float> xv{1, -2, 3, -4, 5, -6};
    std::array<double, 3> da{0.5, 1.5, 2.5};
    int32_t ia[4] = {3, 1, 4, 1};
    std::vector<uint8_t> bytes{7, 8};
    kiln::var x = g.array(xv, {2, 3});
    kiln::var d = g.array(kiln::span<const double>(da), {3});
    kiln::var i = g.array(kiln::span<const int32_t>(ia), {4});
    kiln::var u = g.array(kiln::span<const uint8_t>(bytes.data(), bytes.size()), {2});

    kiln::var two = g.full(kiln::dtype::float32, {2, 3}, 2);
    kiln::var arith = (x * two - x) / two + (-x); // -x / 2
    kiln::var s = kiln::sigmoid(g.full(kiln::dtype::float32, {2}, 0));
    kiln::var rows = g.sum(x, {1});
    kiln::var mean = g.mean(x, {0, 1});
    kiln::var t = g.transpose(x, {1, 0});
    kiln::var sl = g.slice(x, {}, {}, {-1, 2});
    kiln::var cc = g.concat({x, x}, 1);
    kiln::var pd = g.pad(x, {0, 0, 1, 0}, kiln_number_float(9));
    kiln::var fl = g.flip(x, {0, 1});
    kiln::var re = g.reindex(x, {3, 2}, {"i1", "i0"});
    kiln::var rr = g.reindex_reduce(KILN_REDUCE_ADD, x, {3}, {"i1"});
    kiln::var ix = g.index(kiln::dtype::int64, {2, 2}, 0);
    kiln::var dc = g.cast(d, kiln::dtype::float32);
    kiln::var mx = kiln::maximum(x, -x);
    kiln::var wh =
        g.where(g.binary(KILN_OP_GT, x, g.full(kiln::dtype::float32, {2, 3}, 0)), x, two);
    kiln::var loss = g.sum(x * x * x, {0, 1});
    kiln::var dx = g.grad(loss, x);
    kiln::var sg = g.grad(g.sum(g.stop_grad(x), {0, 1}), x);
    g.expect(rows, kiln::dtype::float32, {2});
    std::vector<kiln::var> keep{arith, s,  rows, mean, t,  sl, cc, pd, fl, re,
                                rr,    ix, dc,   mx,   wh, dx, sg, i,  u};
    for (kiln::var v : keep)
        g.keep(v);
    CHECK(g.submit() == 1);
    CHECK(g.size() > keep.size());
    std::vector<kiln_warning> w = c.warnings(); // the stop_grad gradient is zero
    CHECK(w.size() == 1 && std::string(w[0].field).find(".in[1]") != std::string::npos);

    std::vector<uint64_t> ids;
    for (kiln::var v : keep)
        ids.push_back(v.id());
    std::vector<kiln::tensor> out = c.fetch(ids, 10000);
    CHECK(out.size() == keep.size());
    CHECK(near(out[0].to_vector<float>(), {-0.5f, 1, -1.5f, 2, -2.5f, 3}));
    CHECK(near(out[1].to_vector<float>(), {0.5f, 0.5f}));
    CHECK(near(out[2].to_vector<float>(), {2, -5}));
    CHECK(out[3].rank() == 0 && std::fabs(out[3].item<float>() + 0.5f) < 1e-6f);
    CHECK((out[4].shape() == kiln::shape_t{3, 2}));
    CHECK(near(out[4].to_vector<float>(), {1, -4, -2, 5, 3, -6}));
    CHECK(near(out[5].to_vector<float>(), {-4, -6, 1, 3}));
    CHECK((out[6].shape() == kiln::shape_t{2, 6}));
    CHECK(near(out[7].to_vector<float>(), {9, 1, -2, 3, 9, -4, 5, -6}));
    CHECK(near(out[8].to_vector<float>(), {-6, 5, -4, 3, -2, 1}));
    CHECK(near(out[9].to_vector<float>(), {1, -4, -2, 5, 3, -6}));
    CHECK(near(out[10].to_vector<float>(), {-3, 3, -3}));
    CHECK((out[11].to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1, 1}));
    CHECK(near(out[12].to_vector<float>(), {0.5f, 1.5f, 2.5f}));
    CHECK(near(out[13].to_vector<float>(), {1, 2, 3, 4, 5, 6}));
    CHECK(near(out[14].to_vector<float>(), {1, 2, 3, 2, 5, 2}));
    CHECK(near(out[15].to_vector<float>(), {3, 12, 27, 48, 75, 108}));
    CHECK(near(out[16].to_vector<float>(), {0, 0, 0, 0, 0, 0}));
    CHECK((out[17].to_vector<int32_t>() == std::vector<int32_t>{3, 1, 4, 1}));
    CHECK(out[18].type() == kiln::dtype::uint8 && out[18].view<uint8_t>()[1] == 8);

    // Views are typed: the wrong element type is refused.
    kiln::error e = EXPECT_THROW(KILN_EARG, out[0].view<double>());
    CHECK(std::strstr(e.what(), "float32") != nullptr);
    EXPECT_THROW(KILN_EARG, out[0].item<float>());

    // Tensors own their data: they outlive the connection and each other.
    kiln::tensor keepme = out[2];
    out.clear();
    CHECK(near(keepme.to_vector<float>(), {2, -5}));

    // poll never waits; release counts.
    std::vector<uint64_t> one{rows.id()};
    std::optional<std::vector<kiln::tensor>> p;
    for (int tries = 0; tries < 10000 && !(p = c.poll(one)); tries++)
        ;
    CHECK(p.has_value() && near((*p)[0].to_vector<float>(), {2, -5}));
    kiln::release_counts r = c.release(ids);
    CHECK(r.released == ids.size() && r.unknown == 0);
    r = c.release({ids[0], 999999});
    CHECK(r.released == 0 && r.unknown == 2);

    // A kept var used by a later graph.
    kiln::graph g2(c);
    kiln::var base = g2.array(std::vector<float>{1, 2}, {2});
    g2.keep(base);
    g2.submit();
    kiln::graph g3(c);
    kiln::var twice = g3.use(base.id()) + g3.use(base.id());
    g3.keep(twice);
    g3.submit();
    CHECK(near(c.fetch(twice.id()).to_vector<float>(), {2, 4}));

    // The relays: a a^T, and a 3x3 conv of ones padded by 1 over a 2x2
    // image of ones (every window holds all four pixels), its gradients
    // at that output, and the defaults.
    kiln::graph g4(c);
    kiln::var ma = g4.array(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
    kiln::var mm = g4.matmul(ma, ma, false, true);
    kiln_conv cv = kiln_conv_default();
    cv.padding[0] = cv.padding[1] = 1;
    kiln::var img = g4.full(kiln::dtype::float32, {1, 1, 2, 2}, 1);
    kiln::var ker = g4.full(kiln::dtype::float32, {1, 1, 3, 3}, 1);
    kiln::var cy = g4.conv2d(img, ker, cv);
    kiln::var bd = g4.conv2d_bwd_data(cy, ker, {1, 1, 2, 2}, cv);
    kiln::var bw = g4.conv2d_bwd_weight(img, cy, {1, 1, 3, 3}, cv);
    kiln::var c1 = g4.conv2d(img, g4.full(kiln::dtype::float32, {1, 1, 1, 1}, 2));
    std::vector<kiln::var> relays{mm, cy, bd, bw, c1};
    std::vector<uint64_t> rids;
    for (kiln::var v : relays) {
        g4.keep(v);
        rids.push_back(v.id());
    }
    g4.submit();
    std::vector<kiln::tensor> ro = c.fetch(rids, 10000);
    CHECK((ro[0].shape() == kiln::shape_t{2, 2}));
    CHECK(near(ro[0].to_vector<float>(), {14, 32, 32, 77}));
    CHECK((ro[1].shape() == kiln::shape_t{1, 1, 2, 2}));
    CHECK(near(ro[1].to_vector<float>(), {4, 4, 4, 4}));
    CHECK(near(ro[2].to_vector<float>(), {16, 16, 16, 16}));
    CHECK(near(ro[3].to_vector<float>(), {4, 8, 4, 8, 16, 8, 4, 8, 4}));
    CHECK(near(ro[4].to_vector<float>(), {2, 2, 2, 2}));
    // The daemon's refusal of an attribute names it.
    kiln::graph g5(c);
    cv.groups = 0;
    g5.keep(g5.conv2d(g5.full(kiln::dtype::float32, {1, 1, 2, 2}, 1),
                      g5.full(kiln::dtype::float32, {1, 1, 1, 1}, 1), cv));
    kiln::error ge = EXPECT_THROW(KILN_EVALUE, g5.submit());
    CHECK(ge.field() == "body.nodes[2].groups");
}

} // namespace

int main()
{
    fixture_require_kilnd();
    struct fixture_daemon d;
    if (fixture_daemon_start(&d, nullptr) != 0)
        return 1;
    try {
        connection_and_errors(d.address);
        values(d.address);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "uncaught: %s\n", e.what());
        failures++;
    }
    if (fixture_daemon_stop(&d) != 0) {
        std::fprintf(stderr, "kilnd did not stop cleanly\n");
        failures++;
    }
    std::printf("%s: %d failures\n", failures ? "FAIL" : "ok", failures);
    return failures == 0 ? 0 : 1;
}
