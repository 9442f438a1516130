"""Ops against numpy: values and result dtypes, over dtypes and broadcasting."""
import math

import numpy as np
import pytest

DTYPES = ["bool", "int8", "uint8", "int32", "int64", "float32", "float64"]
INTS = ["int8", "uint8", "int32", "int64"]
FLOATS = ["float32", "float64"]
rng = np.random.default_rng(7)


def sample(dtype, shape, low=-20, high=20):
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype == "uint8":
        return rng.integers(max(low, 0), max(high, 40), shape).astype(np.uint8)
    if dtype in INTS:
        return rng.integers(low, high, shape).astype(dtype)
    return rng.uniform(low, high, shape).astype(dtype)


def np_promote(a, b):
    """The protocol's array-array promotion: numpy's, but int8+uint8 is int32."""
    a, b = np.dtype(a), np.dtype(b)
    if {a, b} == {np.dtype(np.int8), np.dtype(np.uint8)}:
        return np.dtype(np.int32)
    return np.result_type(a, b)


def check(v, want, dtype=None, rtol=1e-5, atol=1e-6):
    got = v.numpy()
    want = np.asarray(want)
    assert tuple(v.shape) == want.shape, (v.shape, want.shape)
    assert got.shape == want.shape
    if dtype is not None:
        assert str(v.dtype) == str(np.dtype(dtype)), (v.dtype, dtype)
        assert got.dtype == np.dtype(dtype)
    if got.dtype.kind == "f" or want.dtype.kind == "f":
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)


# ---- creation ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_array_roundtrip(jt, dtype):
    a = sample(dtype, (3, 4))
    check(jt.array(a, dtype=dtype), a, dtype)


def test_array_defaults_follow_jittor(jt):
    assert jt.array([1, 2]).dtype == "int32"
    assert jt.array([1.5]).dtype == "float32"
    assert jt.array([True]).dtype == "bool"
    assert jt.array(np.zeros(2, np.float64)).dtype == jt.float32
    assert jt.array(np.zeros(2, np.int64)).dtype == jt.int32
    with jt.flag_scope(auto_convert_64_to_32=0):
        assert jt.array(np.zeros(2, np.float64)).dtype == "float64"
        assert jt.array(np.zeros(2, np.int64)).dtype == "int64"
    assert jt.array(np.zeros(2, np.int16)).dtype == "int32"
    s = jt.array(3.5)
    assert s.shape == [] and s.item() == 3.5
    assert jt.Var([1, 2, 3]).tolist() == [1, 2, 3]


def test_array_empty_and_rank8(jt):
    check(jt.array(np.zeros((0, 3), np.float32)), np.zeros((0, 3), np.float32))
    a = sample("float32", (1, 2, 1, 2, 1, 2, 1, 2))
    check(jt.array(a), a)
    with pytest.raises(ValueError):
        jt.zeros([1] * 9)


def test_big_array_is_chunked(jt):
    from kiln import ops
    old = ops.CHUNK_BYTES
    ops.CHUNK_BYTES = 4096
    try:
        a = sample("float32", (50, 70))
        check(jt.array(a), a)
    finally:
        ops.CHUNK_BYTES = old


def test_sources(jt):
    check(jt.zeros((2, 3)), np.zeros((2, 3), np.float32), "float32")
    check(jt.ones(2, 3, dtype="int32"), np.ones((2, 3), np.int32), "int32")
    check(jt.full((2,), 7), np.full((2,), 7, np.int32), "int32")
    check(jt.full((2,), 2.5), np.full((2,), 2.5, np.float32), "float32")
    x = jt.array(sample("int8", (2, 2)))
    check(jt.zeros_like(x), np.zeros((2, 2), np.int8), "int8")
    check(jt.ones_like(x), np.ones((2, 2), np.int8), "int8")
    check(jt.full_like(x, 5), np.full((2, 2), 5, np.int8), "int8")
    check(jt.arange(5), np.arange(5), "int32")
    check(jt.arange(2, 11, 3), np.arange(2, 11, 3), "int32")
    check(jt.arange(10, 0, -3), np.arange(10, 0, -3), "int32")
    check(jt.arange(0.5, 3.0, 0.25), np.arange(0.5, 3.0, 0.25), "float32")
    check(jt.arange(5, dtype="float64"), np.arange(5.0), "float64")
    check(jt.linspace(-1, 2, 7), np.linspace(-1, 2, 7), "float32")
    check(jt.linspace(0, 1, 1), np.linspace(0, 1, 1), "float32")
    check(jt.eye(3, 4), np.eye(3, 4), "float32")
    check(jt.index((2, 3), 1), np.broadcast_to(np.arange(3), (2, 3)), "int32")
    i0, i1 = jt.index((2, 3), None)
    check(i0, np.broadcast_to(np.arange(2)[:, None], (2, 3)))


def test_random(jt):
    jt.seed(3)
    a = jt.rand(1000).numpy()
    b = jt.randn(2000, dtype="float64").numpy()
    jt.seed(3)
    a2 = jt.rand(1000).numpy()
    assert a.dtype == np.float32 and b.dtype == np.float64
    np.testing.assert_array_equal(a, a2)
    assert (a >= 0).all() and (a < 1).all() and abs(a.mean() - 0.5) < 0.05
    assert abs(b.mean()) < 0.1 and abs(b.std() - 1) < 0.1
    assert not np.array_equal(jt.rand(1000).numpy(), a)  # the stream moves on
    r = jt.randint(3, 9, shape=(500,)).numpy()
    assert r.dtype == np.int32 and r.min() == 3 and r.max() == 8
    r = jt.randint(4, shape=(2, 50)).numpy()
    assert r.shape == (2, 50) and r.min() >= 0 and r.max() <= 3
    x = jt.rand_like(jt.zeros((3, 2), dtype="float64"))
    assert x.dtype == "float64" and x.shape == [3, 2]


# ---- element-wise ------------------------------------------------------------

BINARY = [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
          ("maximum", np.maximum), ("minimum", np.minimum)]


@pytest.mark.parametrize("da", DTYPES)
@pytest.mark.parametrize("db", DTYPES)
def test_add_promotion(jt, da, db):
    a, b = sample(da, (2, 3)), sample(db, (3,))
    want_dt = np_promote(da, db)
    got = jt.array(a, dtype=da) + jt.array(b, dtype=db)
    if want_dt == np.bool_:
        want = a | b
    else:
        want = a.astype(want_dt) + b.astype(want_dt)
    check(got, want, want_dt)


@pytest.mark.parametrize("name,fn", BINARY)
@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "float32", "float64"])
def test_binary(jt, name, fn, dtype):
    a, b = sample(dtype, (4, 1, 3)), sample(dtype, (5, 1))
    x, y = jt.array(a, dtype=dtype), jt.array(b, dtype=dtype)
    with np.errstate(over="ignore"):
        want = fn(a, b)
    check(getattr(jt, name)(x, y), want, dtype)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64"])
def test_floor_div_mod_pow(jt, dtype):
    a = sample(dtype, (20,))
    b = sample(dtype, (20,), 1, 6)
    x, y = jt.array(a, dtype=dtype), jt.array(b, dtype=dtype)
    check(x // y, a // b, dtype)
    check(x % y, a % b, dtype)
    e = sample(dtype, (20,), 0, 4)
    check(y ** jt.array(e, dtype=dtype), b ** e, dtype, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_true_division(jt, dtype):
    a = sample(dtype, (10,))
    b = sample(dtype, (10,), 1, 9) if dtype != "bool" else np.ones(10, bool)
    want_dt = np.float64 if dtype in ("int64", "float64") else np.float32
    check(jt.array(a, dtype=dtype) / jt.array(b, dtype=dtype), a / b, want_dt)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scalar_promotion(jt, dtype):
    a = sample(dtype, (6,))
    x = jt.array(a, dtype=dtype)
    if dtype != "bool":
        check(x + 3, a + np.array(3, dtype), dtype)        # an int never widens
        check(2 * x, a * np.array(2, dtype), dtype)
        check(x - 1, a - np.array(1, dtype), dtype)
        check(10 - x, np.array(10, dtype) - a, dtype)
    fdt = {"float64": "float64", "int64": "float64"}.get(dtype, "float32")
    check(x * 0.5, a.astype(fdt) * 0.5, fdt)               # a float gives Jittor's float
    check(x + 1.25, a.astype(fdt) + 1.25, fdt)
    check(x > 2, a > 2, "bool")
    check(x == 1, a == 1, "bool")
    if dtype == "bool":
        check(x + 1, a.astype(np.int32) + 1, "int32")
    with pytest.raises(OverflowError):
        jt.array(np.zeros(2, np.uint8), dtype="uint8") + 300


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparisons(jt, op):
    a, b = sample("int32", (3, 4), -3, 3), sample("float32", (4,), -3, 3).round()
    x, y = jt.array(a), jt.array(b)
    fn = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
          "gt": np.greater, "ge": np.greater_equal}[op]
    got = {"eq": x == y, "ne": x != y, "lt": x < y, "le": x <= y, "gt": x > y,
           "ge": x >= y}[op]
    check(got, fn(a, b), "bool")
    check(getattr(jt, op)(x, y), fn(a, b), "bool")


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int32", "int64"])
def test_bitwise(jt, dtype):
    a, b = sample(dtype, (8,)), sample(dtype, (8,))
    x, y = jt.array(a, dtype=dtype), jt.array(b, dtype=dtype)
    check(x & y, a & b, dtype)
    check(x | y, a | b, dtype)
    check(x ^ y, a ^ b, dtype)
    check(~x, ~a, dtype)
    if dtype != "bool":
        s = sample(dtype, (8,), 0, 5)
        check(x << jt.array(s, dtype=dtype), a << s, dtype)
        check(x >> jt.array(s, dtype=dtype), a >> s, dtype)


def test_bitwise_refuses_floats(jt):
    with pytest.raises(TypeError):
        jt.array([1.0]) & jt.array([2.0])
    with pytest.raises(TypeError):
        jt.array([1.0]) << 1


def test_logical(jt):
    a, b = sample("int32", (10,), -2, 2), sample("float32", (10,), -1, 1).round()
    x, y = jt.array(a), jt.array(b)
    check(jt.logical_and(x, y), np.logical_and(a, b), "bool")
    check(jt.logical_or(x, y), np.logical_or(a, b), "bool")
    check(jt.logical_xor(x, y), np.logical_xor(a, b), "bool")
    check(jt.logical_not(x), np.logical_not(a), "bool")


UNARY_FLOAT = [("exp", np.exp, (-3, 3)), ("log", np.log, (0.1, 10)),
               ("sqrt", np.sqrt, (0, 10)), ("sin", np.sin, (-4, 4)),
               ("cos", np.cos, (-4, 4)), ("tan", np.tan, (-1, 1)),
               ("tanh", np.tanh, (-3, 3)), ("sigmoid", lambda v: 1 / (1 + np.exp(-v)), (-6, 6)),
               ("rsqrt", lambda v: 1 / np.sqrt(v), (0.1, 10)),
               ("erf", np.vectorize(math.erf), (-2, 2)),
               ("floor", np.floor, (-5, 5)), ("ceil", np.ceil, (-5, 5)),
               ("round", np.round, (-5, 5)), ("abs", np.abs, (-5, 5)),
               ("sign", np.sign, (-5, 5)), ("neg", np.negative, (-5, 5)),
               ("log2", np.log2, (0.1, 10)), ("log10", np.log10, (0.1, 10)),
               ("log1p", np.log1p, (0, 10)), ("expm1", np.expm1, (-2, 2)),
               ("exp2", np.exp2, (-3, 3)), ("sinh", np.sinh, (-2, 2)),
               ("cosh", np.cosh, (-2, 2)), ("trunc", np.trunc, (-5, 5)),
               ("reciprocal", np.reciprocal, (1, 5)), ("sqr", np.square, (-5, 5)),
               ("relu", lambda v: np.maximum(v, 0), (-5, 5))]


@pytest.mark.parametrize("name,fn,rng_", UNARY_FLOAT, ids=[u[0] for u in UNARY_FLOAT])
@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_float(jt, name, fn, rng_, dtype):
    a = rng.uniform(*rng_, (3, 5)).astype(dtype)
    if name == "round":
        a[0, :3] = [0.5, 1.5, -2.5]  # half to even, as numpy
    x = jt.array(a, dtype=dtype)
    check(getattr(jt, name)(x), fn(a).astype(dtype), dtype, rtol=2e-5, atol=1e-5)
    check(getattr(x, name)(), fn(a).astype(dtype), dtype, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["bool", "int8", "int32", "int64"])
def test_float_functions_of_ints(jt, dtype):
    a = sample(dtype, (6,), 1, 9)
    fdt = "float64" if dtype == "int64" else "float32"
    check(jt.exp(jt.array(a, dtype=dtype)), np.exp(a.astype(fdt)), fdt)
    check(jt.sqrt(jt.array(a, dtype=dtype)), np.sqrt(a.astype(fdt)), fdt)


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64"])
def test_int_unary(jt, dtype):
    a = sample(dtype, (9,))
    x = jt.array(a, dtype=dtype)
    check(abs(x), np.abs(a), dtype)
    check(-x, -a, dtype)
    check(jt.sign(x), np.sign(a), dtype)
    check(jt.floor(x), a, dtype)


def test_composites(jt):
    a = rng.uniform(-3, 3, (4, 4)).astype(np.float32)
    x = jt.array(a)
    check(jt.clamp(x, -1, 2), np.clip(a, -1, 2))
    check(x.clamp(min_v=0), np.clip(a, 0, None))
    check(jt.leaky_relu(x, 0.1), np.where(a > 0, a, a * 0.1))
    b = a.copy()
    b[0, 0], b[0, 1], b[0, 2] = np.nan, np.inf, -np.inf
    y = jt.array(b)
    check(jt.isnan(y), np.isnan(b), "bool")
    check(jt.isinf(y), np.isinf(b), "bool")
    check(jt.isfinite(y), np.isfinite(b), "bool")
    check(jt.gelu(x), 0.5 * a * (1 + np.vectorize(math.erf)(a / math.sqrt(2))), rtol=1e-4)


def test_where(jt):
    c = sample("bool", (3, 4))
    a, b = sample("float32", (3, 4)), sample("int32", (4,))
    check(jt.where(jt.array(c), jt.array(a), jt.array(b)), np.where(c, a, b).astype("float64"),
          "float64")
    check(jt.where(jt.array(c), jt.array(a), 0.0), np.where(c, a, 0), "float32")
    check(jt.where(jt.array(c), 1, 2), np.where(c, 1, 2), "int32")
    idx = jt.where(jt.array(c))
    for got, want in zip(idx, np.nonzero(c)):
        check(got, want, "int32")


@pytest.mark.parametrize("src", DTYPES)
@pytest.mark.parametrize("dst", DTYPES)
def test_cast(jt, src, dst):
    a = sample(src, (7,), -5, 100 if src != "int8" else 100)
    if dst == "uint8" or src == "uint8":
        a = np.abs(a).astype(src)
    check(jt.array(a, dtype=src).astype(dst), a.astype(dst), dst)


def test_cast_spellings(jt):
    x = jt.array([1.7, -2.2])
    assert x.int32().dtype == "int32" and x.float64().dtype == "float64"
    assert x.int().dtype == "int32" and x.float().dtype == "float32"
    assert x.bool().dtype == "bool" and x.long().dtype == "int64"
    assert jt.float64(x).dtype == jt.float64
    assert jt.int8([1, 2]).dtype == "int8"
    assert x.astype(np.float64).dtype == "float64"
    assert x.astype(int).dtype == "int32"


def test_inplace_and_assign(jt):
    x = jt.array([1.0, 2.0])
    y = x
    x += 1
    assert x is y
    check(x, [2.0, 3.0])
    x *= jt.array([2.0, 0.5])
    check(x, [4.0, 1.5])
    z = x.clone()
    x.assign(jt.array([9.0, 9.0]))
    check(z, [4.0, 1.5])
    check(x, [9.0, 9.0])
    x.data = np.array([3.0, 4.0])
    check(x, [3.0, 4.0], "float32")


def test_value_access(jt):
    a = sample("float32", (2, 3))
    x = jt.array(a)
    got = x.numpy()
    got[0, 0] = 123.0  # a copy: the var is unchanged
    check(x, a)
    assert x.data.shape == (2, 3)
    assert isinstance(jt.array([2]).item(), int)
    assert float(jt.array([2.5])) == 2.5 and int(jt.array([7])) == 7
    assert bool(jt.array(True))
    with pytest.raises(ValueError):
        bool(jt.array([1, 2]))
    with pytest.raises(ValueError):
        x.item()
    assert "jt.Var(" in repr(x) and "float32" in repr(x)
    assert len(x) == 2 and [r.shape for r in x] == [[3], [3]]
    np.testing.assert_array_equal(np.asarray(x), a)
    assert f"{jt.array(1.23456):.2f}" == "1.23"
    assert x.shape == (2, 3) and x.shape == [2, 3] and x.ndim == 2 and x.numel() == 6
    assert x.size() == [2, 3] and x.size(1) == 3


def test_lazy_sync(jt):
    x = jt.array([1.0, 2.0]) * 2
    jt.sync([x])
    jt.sync_all()
    assert x.sync() is x
    got = []
    jt.fetch(x, x + 1, lambda a, b: got.append((a, b)))
    jt.sync_all()  # the callback runs in the background; sync_all waits for it
    np.testing.assert_array_equal(got[0][1], [3.0, 5.0])
    with jt.flag_scope(lazy_execution=0):
        check(jt.array([1, 2]) + 1, [2, 3])


def test_many_ops_cross_threshold(jt):
    from kiln import graph
    x = jt.array(np.zeros(3, np.float32))
    for k in range(graph.FLUSH_NODES + 100):  # auto-submits on the way
        x = x + 1
    check(x, np.full(3, graph.FLUSH_NODES + 100, np.float32))


def test_released_vars(jt):
    from kiln import graph
    rt = graph.runtime()
    before = rt.conn.status()["memory"]["in_use"]
    for _ in range(20):
        v = jt.array(np.ones(100000, np.float32)) * 2
        v.sync()
        del v
    import gc
    gc.collect()
    rt.release_dead()
    after = rt.conn.status()["memory"]["in_use"]
    assert after <= before + 2 * 400000, (before, after)
