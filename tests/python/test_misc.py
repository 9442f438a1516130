"""jt.misc helpers against numpy, and jt.fetch's asynchronous callbacks."""
import threading

import numpy as np
import pytest

from test_ops import check

rng = np.random.default_rng(31)
A = rng.normal(size=(3, 5)).astype(np.float32)


def test_cumulative(jt):
    x = jt.array(A)
    check(jt.cumsum(x, 1), np.cumsum(A, 1), rtol=1e-5)
    check(x.cumsum(0), np.cumsum(A, 0), rtol=1e-5)
    check(jt.cumprod(x, -1), np.cumprod(A, -1), rtol=1e-5)
    i = np.arange(1, 7, dtype=np.int32)
    check(jt.cumsum(jt.array(i)), np.cumsum(i), "int32")
    check(jt.cumprod(jt.array(i), 0), np.cumprod(i), "int32")


def test_triangles_and_diagonals(jt):
    x = jt.array(A)
    for d in (-1, 0, 2):
        check(jt.tril(x, d), np.tril(A, d))
        check(x.triu(d), np.triu(A, d))
        check(jt.diag(x, d), np.diag(A, d))
    v = np.arange(1, 4, dtype=np.float32)
    for d in (-2, 0, 1):
        check(jt.diag(jt.array(v), d), np.diag(v, d))
    sq = A[:, :3]
    check(jt.trace(jt.array(sq)), np.trace(sq), rtol=1e-5)
    from kiln.misc import diagonal
    b = rng.normal(size=(2, 4, 3)).astype(np.float32)
    check(diagonal(jt.array(b), 1, 1, 2), np.diagonal(b, 1, 1, 2))
    check(jt.outer(jt.array(v), jt.array(v[:2])), np.outer(v, v[:2]))


def test_gather_scatter(jt):
    idx = rng.integers(0, 3, (2, 5))
    check(jt.gather(jt.array(A), 0, jt.array(idx)), np.take_along_axis(A, idx, 0))
    idx1 = rng.integers(0, 5, (3, 4))
    check(jt.array(A).gather(1, jt.array(idx1)), np.take_along_axis(A, idx1, 1))
    src = rng.normal(size=(3, 4)).astype(np.float32)
    base = np.zeros((3, 5), np.float32)
    want = base.copy()
    np.add.at(want, (np.arange(3)[:, None].repeat(4, 1), idx1), src)
    check(jt.scatter(jt.zeros((3, 5)), 1, jt.array(idx1), jt.array(src), reduce="add"), want,
          rtol=1e-5)
    perm = np.array([[4, 0, 2, 1], [3, 1, 0, 2], [0, 1, 2, 3]])
    want = base.copy()
    np.put_along_axis(want, perm, src, 1)
    check(jt.scatter(jt.zeros((3, 5)), 1, jt.array(perm), jt.array(src)), want)
    check(jt.index_select(jt.array(A), 1, jt.array([4, 0])), A[:, [4, 0]])
    check(jt.masked_fill(jt.array(A), jt.array(A > 0), 0.0), np.where(A > 0, 0, A))


def test_sorting(jt):
    x = np.array([[3.0, 1.0, 2.0, 1.0, 5.0], [0.0, -1.0, 7.0, 7.0, 2.0]], np.float32)
    idx, val = jt.argsort(jt.array(x), 1)
    np.testing.assert_array_equal(idx.numpy(), np.argsort(x, 1, kind="stable"))
    check(val, np.sort(x, 1))
    idx, val = jt.argsort(jt.array(x), 1, descending=True)
    np.testing.assert_array_equal(idx.numpy(), np.argsort(-x, 1, kind="stable"))
    v, i = jt.sort(jt.array(x), 0)
    check(v, np.sort(x, 0))
    v, i = jt.topk(jt.array(x), 2, 1)
    check(v, -np.sort(-x, 1)[:, :2])
    v, i = jt.topk(jt.array(x), 2, 1, largest=False)
    check(v, np.sort(x, 1)[:, :2])
    v, i = jt.kthvalue(jt.array(x), 2, 1)
    check(v, np.sort(x, 1)[:, 1])
    p = jt.randperm(50).numpy()
    assert sorted(p.tolist()) == list(range(50))


def test_norm_cross_meshgrid_unbind(jt):
    x = jt.array(A)
    check(jt.norm(x), np.linalg.norm(A), rtol=1e-5)
    check(jt.norm(x, 1, dim=1), np.abs(A).sum(1), rtol=1e-5)
    check(x.norm(2, 0, keepdims=True), np.linalg.norm(A, axis=0, keepdims=True), rtol=1e-5)
    check(jt.norm(x, float("inf"), 1), np.abs(A).max(1))
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    check(jt.cross(jt.array(a, "float64"), jt.array(b, "float64")), np.cross(a, b))
    g = jt.meshgrid(jt.arange(3), jt.arange(4))
    want = np.meshgrid(np.arange(3), np.arange(4), indexing="ij")
    for got, w in zip(g, want):
        check(got, w)
    g = jt.meshgrid(jt.arange(3), jt.arange(4), indexing="xy")
    for got, w in zip(g, np.meshgrid(np.arange(3), np.arange(4))):
        check(got, w)
    parts = jt.unbind(x, 1)
    assert len(parts) == 5
    check(parts[2], A[:, 2])
    check(jt.rot90(x), np.rot90(A))
    assert jt.random((2, 3), type="normal").shape == [2, 3]


def test_fetch_callbacks(jt):
    seen = []
    main = threading.get_ident()
    threads = set()

    def cb(i, a, b):
        threads.add(threading.get_ident())
        seen.append((i, a.tolist(), b))

    for i in range(5):
        v = jt.array([i, i + 1]) * 2
        jt.fetch(i, v, "tag", cb)
    jt.sync_all()
    assert seen == [(i, [2 * i, 2 * i + 2], "tag") for i in range(5)]
    assert main not in threads  # called from the background thread
    # a list of vars and a callback, Jittor's other spelling
    out = []
    jt.fetch([jt.array(1.5), jt.array([1, 2])], lambda a, b: out.append((float(a), b.sum())))
    jt.sync_all()
    assert out == [(1.5, 3)]


def test_fetch_callback_error_raised_at_sync(jt):
    def bad(a):
        raise RuntimeError("callback failed")
    jt.fetch(jt.array(1), bad)
    with pytest.raises(RuntimeError, match="callback failed"):
        jt.sync_all()
    jt.sync_all()  # reported once
    with pytest.raises(TypeError):
        jt.fetch(jt.array(1))
