"""Reductions, arg-reductions and matmul against numpy."""
import numpy as np
import pytest

from test_ops import check, sample

DIMS = [None, 0, 1, -1, (0, 2), [1, 2], ()]


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("dtype", ["int32", "float32", "float64"])
def test_sum_mean_max_min_prod(jt, dims, keep, dtype):
    a = sample(dtype, (3, 4, 5), -3, 4)
    x = jt.array(a, dtype=dtype)
    axis = tuple(dims) if isinstance(dims, (list, tuple)) else dims
    fdt = "float64" if dtype == "float64" else "float32"
    check(x.sum(dims, keepdims=keep), np.sum(a, axis=axis, keepdims=keep, dtype=dtype), dtype)
    check(jt.mean(x, dims, keepdims=keep), np.mean(a, axis=axis, keepdims=keep).astype(fdt),
          fdt, rtol=1e-5)
    if dims != ():
        check(x.max(dims, keepdims=keep), np.max(a, axis=axis, keepdims=keep), dtype)
        check(jt.min(x, dims, keepdims=keep), np.min(a, axis=axis, keepdims=keep), dtype)
    b = sample(dtype, (3, 4, 5), 1, 3)
    check(jt.array(b, dtype=dtype).prod(dims, keepdims=keep),
          np.prod(b, axis=axis, keepdims=keep, dtype=dtype), dtype, rtol=1e-5)


def test_reduce_spellings(jt):
    a = sample("float32", (2, 3, 4))
    x = jt.array(a)
    check(x.sum(1, True), a.sum(1, keepdims=True))
    check(x.sum(0, 2), a.sum((0, 2)))
    check(x.sum(dim=2), a.sum(2))
    check(x.sum(dims=[0, 1], keepdim=True), a.sum((0, 1), keepdims=True))
    check(jt.sum(x, axis=-1), a.sum(-1))
    check(x.mean(), a.mean())
    check(jt.reduce(x, "add", 1), a.sum(1))
    check(jt.reduce(x, "maximum", [0, 2], keepdims=True), a.max((0, 2), keepdims=True))
    check(x.reduce("min", 1), a.min(1))
    assert x.sum().shape == []
    with pytest.raises(IndexError):
        x.sum(3)


def test_bool_and_int_reductions(jt):
    m = sample("bool", (4, 5))
    x = jt.array(m)
    check(x.sum(1), m.sum(1).astype(np.int32), "int32")
    check(x.any(1), m.any(1), "bool")
    check(x.all(0), m.all(0), "bool")
    check(x.max(1), m.max(1), "bool")
    b = sample("int8", (6,))
    check(jt.array(b, dtype="int8").mean(), b.mean(), "float32")
    a = sample("int64", (3, 3))
    check(jt.array(a, dtype="int64").mean(0), a.mean(0), "float64")


def test_var_std(jt):
    a = sample("float32", (4, 6))
    x = jt.array(a)
    check(x.var(1), a.var(1), rtol=1e-4)
    check(x.std(), a.std(), rtol=1e-4)
    check(x.var(0, unbiased=True), a.var(0, ddof=1), rtol=1e-4)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("dtype", ["int32", "float32"])
def test_argmax_argmin(jt, dim, dtype):
    a = sample(dtype, (5, 6), -3, 3)  # ties: the first one wins
    x = jt.array(a, dtype=dtype)
    i, v = jt.argmax(x, dim)
    check(i, np.argmax(a, dim).astype(np.int32), "int32")
    check(v, np.max(a, dim), dtype)
    i, v = x.argmin(dim, keepdims=True)
    check(i, np.expand_dims(np.argmin(a, dim), dim).astype(np.int32), "int32")
    check(v, np.min(a, dim, keepdims=True), dtype)


def test_argmax_nan_and_flat(jt):
    a = np.array([[1.0, np.nan, 3.0], [2.0, 5.0, 1.0]], np.float32)
    i, _ = jt.argmax(jt.array(a), 1)
    check(i, np.argmax(a, 1).astype(np.int32))
    i, v = jt.argmax(jt.array(a[1]))
    assert i.item() == 1 and v.item() == 5.0


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((4,), (4, 2)), ((3, 4), (4,)),
                                   ((4,), (4,)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
                                   ((1, 2), (3, 2, 6))])
def test_matmul(jt, sa, sb):
    a, b = sample("float32", sa, -2, 2), sample("float32", sb, -2, 2)
    check(jt.array(a) @ jt.array(b), a @ b, "float32", rtol=1e-4, atol=1e-4)
    check(jt.matmul(a, jt.array(b)), a @ b, "float32", rtol=1e-4, atol=1e-4)


def test_matmul_dtypes_and_errors(jt):
    a, b = sample("int32", (3, 4)), sample("int32", (4, 2))
    check(jt.array(a) @ jt.array(b), a @ b, "int32")
    check(jt.array(a) @ jt.array(b.astype(np.float32)), a @ b, "float64")
    with pytest.raises(ValueError):
        jt.array(a) @ jt.array(a)


def test_jittor_style_matmul(jt):
    # Jittor's documented matmul from meta-ops: broadcast, multiply, reduce.
    a, b = sample("float32", (3, 4)), sample("float32", (4, 5))
    n, m, k = 3, 4, 5
    x = jt.array(a).broadcast([n, m, k], [2])
    y = jt.array(b).broadcast([n, m, k], [0])
    check((x * y).sum(1), a @ b, rtol=1e-4, atol=1e-4)
