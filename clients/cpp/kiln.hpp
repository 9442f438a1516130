// kiln.hpp: the C++ face of libkiln, header-only (C++17).
//
// A thin layer over kiln.h, which stays the reference for what every call
// does, blocks on and may fail with; this header only changes the shape:
//
//  - RAII: kiln::connection closes its session, kiln::graph frees its
//    nodes, kiln::tensor frees fetched values, each in its destructor.
//    A connection moves but does not copy; a graph neither (its vars point
//    to it); tensors copy cheaply (they share the fetched block). A graph
//    must not outlive its connection.
//  - Errors are exceptions: every failure throws kiln::error, which
//    carries the code (enum kiln_err), its stable name, the field and the
//    graph node at fault, and the message. Graph calls throw at the call
//    that failed (the C builder's sticky error is checked after each one);
//    a graph that threw must be reset() before it is used again.
//  - Data goes in and out as views: kiln::span<const T> (built from a
//    std::vector, std::array, a C array, std::span or pointer + size) for
//    uploads, and tensor::view<T>() for fetched values, whose element type
//    is checked against the tensor's dtype.
//
// Threads: as in C. A connection is used by one thread at a time; distinct
// connections may be used from distinct threads. Link with libkiln
// (`pkg-config --cflags --libs kiln`).
#ifndef KILN_HPP
#define KILN_HPP

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// kiln.h names a function and a struct kiln_status, which C++'s -Wshadow
// reports as a function hiding a constructor.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#include "kiln.h"
#pragma GCC diagnostic pop

namespace kiln
{

// ---- errors ------------------------------------------------------------

class error : public std::runtime_error
{
public:
    explicit error(const kiln_error &e)
        : std::runtime_error(std::string(kiln_err_name(e.code)) + ": " + e.message), code_(e.code),
          node_(e.node), field_(e.field)
    {
    }
    error(int code, const std::string &message)
        : std::runtime_error(std::string(kiln_err_name(code)) + ": " + message), code_(code)
    {
    }
    // enum kiln_err, and its stable name ("NOTFOUND")
    int code() const noexcept { return code_; }
    const char *name() const noexcept { return kiln_err_name(code_); }
    // The field at fault ("body.nodes[3].shape"), or "", and the graph node, or -1
    const std::string &field() const noexcept { return field_; }
    int64_t node() const noexcept { return node_; }

private:
    int code_;
    int64_t node_ = -1;
    std::string field_;
};

namespace detail
{
inline void check(int rc, const kiln_error &e)
{
    if (rc != KILN_OK)
        throw error(e);
}
} // namespace detail

// ---- dtypes and views ----------------------------------------------------

enum class dtype : uint32_t {
    bool_ = KILN_DTYPE_BOOL,
    int8 = KILN_DTYPE_INT8,
    uint8 = KILN_DTYPE_UINT8,
    int32 = KILN_DTYPE_INT32,
    int64 = KILN_DTYPE_INT64,
    float32 = KILN_DTYPE_FLOAT32,
    float64 = KILN_DTYPE_FLOAT64,
};

// The dtype of a C++ element type (bool is one byte 0/1, as on the wire).
template <class T> struct dtype_of;
template <> struct dtype_of<bool> : std::integral_constant<dtype, dtype::bool_> {
};
template <> struct dtype_of<int8_t> : std::integral_constant<dtype, dtype::int8> {
};
template <> struct dtype_of<uint8_t> : std::integral_constant<dtype, dtype::uint8> {
};
template <> struct dtype_of<int32_t> : std::integral_constant<dtype, dtype::int32> {
};
template <> struct dtype_of<int64_t> : std::integral_constant<dtype, dtype::int64> {
};
template <> struct dtype_of<float> : std::integral_constant<dtype, dtype::float32> {
};
template <> struct dtype_of<double> : std::integral_constant<dtype, dtype::float64> {
};
template <class T> inline constexpr dtype dtype_v = dtype_of<std::remove_cv_t<T>>::value;

inline const char *dtype_name(dtype d)
{
    return kiln_dtype_name(static_cast<int>(d));
}
inline std::size_t dtype_size(dtype d)
{
    return kiln_dtype_size(static_cast<int>(d));
}

// A view of contiguous elements that it does not own (std::span's subset,
// for C++17).
template <class T> class span
{
public:
    constexpr span() noexcept = default;
    constexpr span(T *data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <std::size_t N> constexpr span(T (&a)[N]) noexcept : data_(a), size_(N) {}
    // Any contiguous container: std::vector, std::array, std::span, ...
    template <class C, class = std::enable_if_t<
                           std::is_convertible_v<decltype(std::declval<C &>().data()), T *>>>
    constexpr span(C &c) noexcept : data_(c.data()), size_(c.size())
    {
    }
    template <class C, class = std::enable_if_t<
                           std::is_convertible_v<decltype(std::declval<const C &>().data()), T *>>>
    constexpr span(const C &c) noexcept : data_(c.data()), size_(c.size())
    {
    }
    constexpr T *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T &operator[](std::size_t i) const noexcept { return data_[i]; }
    constexpr T *begin() const noexcept { return data_; }
    constexpr T *end() const noexcept { return data_ + size_; }

private:
    T *data_ = nullptr;
    std::size_t size_ = 0;
};

using shape_t = std::vector<int64_t>;

inline int64_t elements(const shape_t &shape)
{
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

// ---- fetched values ------------------------------------------------------

// A value fetched from the daemon. Owns its data (shared by copies).
class tensor
{
public:
    tensor() = default;
    explicit tensor(std::shared_ptr<const kiln_tensor> t) : t_(std::move(t)) {}

    uint64_t id() const { return t_->id; }
    dtype type() const { return static_cast<dtype>(t_->dtype); }
    shape_t shape() const { return shape_t(t_->shape, t_->shape + t_->rank); }
    std::size_t rank() const { return t_->rank; }
    std::size_t bytes() const { return t_->bytes; }
    const void *data() const { return t_->data; }
    // Elements, from the bytes (so also right for a dtype this build does not know).
    std::size_t size() const
    {
        std::size_t s = kiln_dtype_size(static_cast<int>(t_->dtype));
        return s ? t_->bytes / s : 0;
    }

    // The elements as T; throws kiln::error (KILN_EARG) if T is not the dtype.
    template <class T> span<const T> view() const
    {
        if (dtype_v<T> != type())
            throw error(KILN_EARG, std::string("tensor holds ") + describe(t_->dtype) + ", not " +
                                       dtype_name(dtype_v<T>));
        return span<const T>(static_cast<const T *>(t_->data), size());
    }
    template <class T> std::vector<T> to_vector() const
    {
        span<const T> v = view<T>();
        return std::vector<T>(v.begin(), v.end());
    }
    // The one element of a tensor with one element (any rank).
    template <class T> T item() const
    {
        span<const T> v = view<T>();
        if (v.size() != 1)
            throw error(KILN_EARG,
                        "item() of a tensor of " + std::to_string(v.size()) + " elements");
        return v[0];
    }
    const kiln_tensor *get() const { return t_.get(); }

private:
    static std::string describe(uint32_t d)
    {
        const char *n = kiln_dtype_name(static_cast<int>(d));
        return n ? n : "dtype " + std::to_string(d);
    }
    std::shared_ptr<const kiln_tensor> t_;
};

// ---- connections ---------------------------------------------------------

struct options {
    std::string address; // "" : $KILN_ADDRESS or the default socket (kiln_connect)
    int timeout_ms = 0;  // per send and receive; 0: 10 s; < 0: forever
    std::string client;  // "" : "libkiln"
    std::string token;   // "" : none
};

struct release_counts {
    uint64_t released, unknown;
};

class graph;

class connection
{
public:
    explicit connection(const options &o = {})
    {
        kiln_connect_opts co{};
        co.address = o.address.empty() ? nullptr : o.address.c_str();
        co.timeout_ms = o.timeout_ms;
        co.client = o.client.empty() ? nullptr : o.client.c_str();
        co.token = o.token.empty() ? nullptr : o.token.c_str();
        kiln_conn *c = nullptr;
        kiln_error e;
        detail::check(kiln_connect(&c, &co, &e), e);
        c_.reset(c);
    }
    kiln_conn *get() const noexcept { return c_.get(); }

    void ping()
    {
        kiln_error e;
        detail::check(kiln_ping(get(), &e), e);
    }
    struct kiln_status status()
    {
        struct kiln_status st;
        kiln_error e;
        detail::check(kiln_status(get(), &st, &e), e);
        return st;
    }
    const kiln_session &session() const { return *kiln_conn_session(get()); }
    std::string address() const { return kiln_conn_address(get()); }
    uint64_t new_id() { return kiln_conn_new_id(get()); }
    // What the daemon said about the last graph submitted on this connection
    // (accepted, but e.g. a gradient that is zero because nothing flows).
    std::vector<kiln_warning> warnings() const
    {
        std::size_t n = 0;
        const kiln_warning *w = kiln_conn_warnings(get(), &n);
        return std::vector<kiln_warning>(w, w + n);
    }

    // Values of kept vars, in the order asked; waits up to timeout_ms for
    // their steps (KILN_FETCH_WAIT_DEFAULT: the daemon's 60 s).
    std::vector<tensor> fetch(span<const uint64_t> ids, int timeout_ms = KILN_FETCH_WAIT_DEFAULT)
    {
        kiln_tensor *t = nullptr;
        kiln_error e;
        detail::check(kiln_fetch(get(), ids.data(), ids.size(), timeout_ms, &t, &e), e);
        return wrap(t, ids.size());
    }
    std::vector<tensor> fetch(std::initializer_list<uint64_t> ids,
                              int timeout_ms = KILN_FETCH_WAIT_DEFAULT)
    {
        return fetch(span<const uint64_t>(ids.begin(), ids.size()), timeout_ms);
    }
    tensor fetch(uint64_t id, int timeout_ms = KILN_FETCH_WAIT_DEFAULT)
    {
        return fetch(span<const uint64_t>(&id, 1), timeout_ms)[0];
    }
    // The values if they are computed, else nothing; never waits for steps.
    std::optional<std::vector<tensor>> poll(span<const uint64_t> ids)
    {
        kiln_tensor *t = nullptr;
        kiln_error e;
        int rc = kiln_fetch_poll(get(), ids.data(), ids.size(), &t, &e);
        if (rc == KILN_ENOTREADY)
            return std::nullopt;
        detail::check(rc, e);
        return wrap(t, ids.size());
    }
    release_counts release(span<const uint64_t> ids)
    {
        release_counts r{};
        kiln_error e;
        detail::check(kiln_release(get(), ids.data(), ids.size(), &r.released, &r.unknown, &e), e);
        return r;
    }
    release_counts release(std::initializer_list<uint64_t> ids)
    {
        return release(span<const uint64_t>(ids.begin(), ids.size()));
    }

private:
    static std::vector<tensor> wrap(kiln_tensor *t, std::size_t n)
    {
        std::vector<tensor> out;
        if (t == nullptr)
            return out;
        // One block holds every tensor: share it, and free it with the last.
        std::shared_ptr<kiln_tensor> block(t, kiln_tensors_free);
        out.reserve(n);
        for (std::size_t i = 0; i < n; i++)
            out.emplace_back(std::shared_ptr<const kiln_tensor>(block, &t[i]));
        return out;
    }
    struct closer {
        void operator()(kiln_conn *c) const noexcept { kiln_close(c); }
    };
    std::unique_ptr<kiln_conn, closer> c_;
};

// ---- graphs --------------------------------------------------------------

// A var of a graph being built: its id (also valid in later graphs once
// kept, and in fetch and release) and the graph that makes it, so that
// operators can add nodes.
class var
{
public:
    var() = default;
    var(graph *g, uint64_t id) : g_(g), id_(id) {}
    uint64_t id() const noexcept { return id_; }
    graph &owner() const;
    explicit operator uint64_t() const noexcept { return id_; }

private:
    graph *g_ = nullptr;
    uint64_t id_ = 0;
};

class graph
{
public:
    explicit graph(connection &c) : c_(&c), g_(kiln_graph_new(c.get()))
    {
        if (!g_)
            throw error(KILN_ENOMEM, "out of memory for a graph");
    }
    graph(const graph &) = delete;
    graph &operator=(const graph &) = delete;
    kiln_graph *get() const noexcept { return g_.get(); }
    connection &conn() const noexcept { return *c_; }
    // A var kept by the session from an earlier step, to use in this graph.
    var use(uint64_t id) { return var(this, id); }

    // Sources. array() copies the data now.
    template <class T> var array(span<const T> data, const shape_t &shape)
    {
        if (static_cast<int64_t>(data.size()) != elements(shape))
            throw error(KILN_EARG, "array of " + std::to_string(data.size()) +
                                       " elements for a shape of " +
                                       std::to_string(elements(shape)));
        return made(kiln_graph_array(get(), static_cast<uint32_t>(dtype_v<T>), rank(shape),
                                     shape.data(), data.data(), data.size() * sizeof(T)));
    }
    template <class T> var array(const std::vector<T> &data, const shape_t &shape)
    {
        return array(span<const T>(data), shape);
    }
    var full(dtype d, const shape_t &shape, double value)
    {
        return made(kiln_graph_fill(get(), u(d), rank(shape), shape.data(), value));
    }
    var scalar(dtype d, double value) { return made(kiln_graph_scalar(get(), u(d), value)); }
    var index(dtype d, const shape_t &shape, uint32_t dim)
    {
        return made(kiln_graph_index(get(), u(d), rank(shape), shape.data(), dim));
    }
    var random(dtype d, const shape_t &shape, kiln_dist dist, uint64_t seed, uint64_t offset = 0)
    {
        return made(kiln_graph_random(get(), u(d), rank(shape), shape.data(), dist, seed, offset));
    }

    // Element-wise.
    var unary(kiln_op op, var x) { return made(kiln_graph_unary(get(), op, x.id())); }
    var binary(kiln_op op, var a, var b)
    {
        return made(kiln_graph_binary(get(), op, a.id(), b.id()));
    }
    var cast(var x, dtype d) { return made(kiln_graph_cast(get(), x.id(), u(d))); }
    var where(var cond, var a, var b)
    {
        return made(kiln_graph_where(get(), cond.id(), a.id(), b.id()));
    }

    // Shapes and reductions.
    var reshape(var x, const shape_t &shape)
    {
        return made(kiln_graph_reshape(get(), x.id(), rank(shape), shape.data()));
    }
    var broadcast_to(var x, const shape_t &shape, const std::vector<uint32_t> &new_dims = {})
    {
        return made(kiln_graph_broadcast_to(get(), x.id(), rank(shape), shape.data(), n(new_dims),
                                            new_dims.data()));
    }
    var reduce(kiln_reduce_op op, var x, const std::vector<uint32_t> &dims, bool keepdims = false)
    {
        return made(kiln_graph_reduce(get(), op, x.id(), n(dims), dims.data(), keepdims));
    }
    var sum(var x, const std::vector<uint32_t> &dims, bool keepdims = false)
    {
        return reduce(KILN_REDUCE_ADD, x, dims, keepdims);
    }
    var mean(var x, const std::vector<uint32_t> &dims, bool keepdims = false)
    {
        return reduce(KILN_REDUCE_MEAN, x, dims, keepdims);
    }
    var reindex(var x, const shape_t &shape, const std::vector<std::string> &exprs,
                const std::vector<std::string> &conds = {},
                std::optional<kiln_number> overflow = std::nullopt,
                const std::vector<uint64_t> &extras = {})
    {
        strs e(exprs), c(conds);
        kiln_reindex r = args(shape, e, c, extras);
        r.has_overflow = overflow.has_value();
        if (overflow)
            r.overflow_value = *overflow;
        return made(kiln_graph_reindex(get(), x.id(), &r));
    }
    var reindex_reduce(kiln_reduce_op op, var x, const shape_t &shape,
                       const std::vector<std::string> &exprs,
                       const std::vector<std::string> &conds = {},
                       const std::vector<uint64_t> &extras = {})
    {
        strs e(exprs), c(conds);
        kiln_reindex r = args(shape, e, c, extras);
        return made(kiln_graph_reindex_reduce(get(), op, x.id(), &r));
    }

    // Lowered ops.
    var transpose(var x, const std::vector<uint32_t> &dims)
    {
        return made(kiln_graph_transpose(get(), x.id(), n(dims), dims.data()));
    }
    // Empty vectors are left out (Python's None); otherwise one per dim.
    var slice(var x, const std::vector<int64_t> &starts, const std::vector<int64_t> &stops,
              const std::vector<int64_t> &steps = {})
    {
        std::size_t d = std::max(starts.size(), std::max(stops.size(), steps.size()));
        for (const auto *v : {&starts, &stops, &steps})
            if (!v->empty() && v->size() != d)
                throw error(KILN_EARG, "slice: starts, stops and steps differ in length");
        return made(kiln_graph_slice(get(), x.id(), static_cast<uint32_t>(d), opt(starts),
                                     opt(stops), opt(steps)));
    }
    var concat(const std::vector<var> &xs, uint32_t dim)
    {
        std::vector<uint64_t> ids;
        for (var x : xs)
            ids.push_back(x.id());
        return made(kiln_graph_concat(get(), n(ids), ids.data(), dim));
    }
    var pad(var x, const std::vector<int64_t> &pads, std::optional<kiln_number> value = {})
    {
        return made(kiln_graph_pad(get(), x.id(), n(pads), pads.data(), value ? &*value : nullptr));
    }
    var flip(var x, const std::vector<uint32_t> &dims)
    {
        return made(kiln_graph_flip(get(), x.id(), n(dims), dims.data()));
    }

    // Relays (PROTOCOL.md §8, "Relay ops"). No kiln_conv: the daemon's
    // defaults (kiln_conv_default()).
    var matmul(var a, var b, bool trans_a = false, bool trans_b = false)
    {
        return made(kiln_graph_matmul(get(), a.id(), b.id(), trans_a, trans_b));
    }
    var conv2d(var x, var w, std::optional<kiln_conv> c = std::nullopt)
    {
        return made(kiln_graph_conv2d(get(), x.id(), w.id(), c ? &*c : nullptr));
    }
    var conv2d_bwd_data(var dy, var w, const std::array<int64_t, 4> &x_shape,
                        std::optional<kiln_conv> c = std::nullopt)
    {
        return made(kiln_graph_conv2d_bwd_data(get(), dy.id(), w.id(), x_shape.data(),
                                               c ? &*c : nullptr));
    }
    var conv2d_bwd_weight(var x, var dy, const std::array<int64_t, 4> &w_shape,
                          std::optional<kiln_conv> c = std::nullopt)
    {
        return made(kiln_graph_conv2d_bwd_weight(get(), x.id(), dy.id(), w_shape.data(),
                                                 c ? &*c : nullptr));
    }

    // Gradients (PROTOCOL.md §8): d sum(seed * loss) / d target.
    var grad(var loss, var target, std::optional<var> seed = std::nullopt)
    {
        return made(kiln_graph_grad(get(), loss.id(), target.id(), seed ? seed->id() : 0));
    }
    var stop_grad(var x) { return made(kiln_graph_stop_grad(get(), x.id())); }

    // Check a node's dtype and shape on the daemon (kiln_graph_expect).
    void expect(var x, dtype d, const shape_t &shape)
    {
        after(kiln_graph_expect(get(), x.id(), u(d), static_cast<int>(shape.size()), shape.data()));
    }
    void keep(var x) { after(kiln_graph_keep(get(), x.id())); }
    // Send the step; returns its number. Throws what the daemon refused.
    uint64_t submit()
    {
        uint64_t step = 0;
        kiln_error e;
        detail::check(kiln_graph_submit(get(), &step, &e), e);
        return step;
    }
    void reset() { kiln_graph_reset(get()); }
    std::size_t size() const
    {
        std::size_t count = 0;
        kiln_graph_nodes(get(), &count);
        return count;
    }

private:
    // Strings as the C API wants them, alive for one call.
    struct strs {
        explicit strs(const std::vector<std::string> &v)
        {
            for (const auto &s : v)
                p.push_back(s.c_str());
        }
        std::vector<const char *> p;
    };
    static kiln_reindex args(const shape_t &shape, const strs &e, const strs &c,
                             const std::vector<uint64_t> &extras)
    {
        kiln_reindex r{};
        r.rank = rank(shape);
        r.shape = shape.data();
        r.nexprs = n(e.p);
        r.exprs = e.p.data();
        r.nconds = n(c.p);
        r.conds = c.p.data();
        r.nextras = n(extras);
        r.extras = extras.data();
        return r;
    }
    template <class V> static uint32_t n(const V &v) { return static_cast<uint32_t>(v.size()); }
    static uint32_t rank(const shape_t &s) { return static_cast<uint32_t>(s.size()); }
    static uint32_t u(dtype d) { return static_cast<uint32_t>(d); }
    static const int64_t *opt(const std::vector<int64_t> &v)
    {
        return v.empty() ? nullptr : v.data();
    }
    var made(uint64_t id)
    {
        if (id == 0)
            raise();
        return var(this, id);
    }
    void after(int rc)
    {
        if (rc != KILN_OK)
            raise();
    }
    [[noreturn]] void raise()
    {
        kiln_error e{};
        int rc = kiln_graph_error(get(), &e);
        if (rc == KILN_OK) // an input of 0 with no error recorded: cannot happen via var
            throw error(KILN_EARG, "a graph call failed without a recorded error");
        throw error(e);
    }
    struct freer {
        void operator()(kiln_graph *g) const noexcept { kiln_graph_free(g); }
    };
    connection *c_;
    std::unique_ptr<kiln_graph, freer> g_;
};

inline graph &var::owner() const
{
    if (g_ == nullptr)
        throw error(KILN_EARG, "a var that belongs to no graph");
    return *g_;
}

// Operators on vars of one graph (same dtype and shape, as on the wire).
inline var operator+(var a, var b)
{
    return a.owner().binary(KILN_OP_ADD, a, b);
}
inline var operator-(var a, var b)
{
    return a.owner().binary(KILN_OP_SUB, a, b);
}
inline var operator*(var a, var b)
{
    return a.owner().binary(KILN_OP_MUL, a, b);
}
inline var operator/(var a, var b)
{
    return a.owner().binary(KILN_OP_DIV, a, b);
}
inline var operator-(var a)
{
    return a.owner().unary(KILN_OP_NEG, a);
}
inline var exp(var x)
{
    return x.owner().unary(KILN_OP_EXP, x);
}
inline var log(var x)
{
    return x.owner().unary(KILN_OP_LOG, x);
}
inline var sqrt(var x)
{
    return x.owner().unary(KILN_OP_SQRT, x);
}
inline var tanh(var x)
{
    return x.owner().unary(KILN_OP_TANH, x);
}
inline var sigmoid(var x)
{
    return x.owner().unary(KILN_OP_SIGMOID, x);
}
inline var maximum(var a, var b)
{
    return a.owner().binary(KILN_OP_MAXIMUM, a, b);
}
inline var minimum(var a, var b)
{
    return a.owner().binary(KILN_OP_MINIMUM, a, b);
}

} // namespace kiln

#endif
