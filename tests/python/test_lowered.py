"""The daemon's lowered wire ops (transpose, slice, concat, pad, flip) as
the client emits them: results against numpy for every dtype and for the
edge cases of Python's slicing, and the node each call makes."""
import numpy as np
import pytest

from test_ops import DTYPES, check, sample

rng = np.random.default_rng(11)
A = np.arange(3 * 4 * 5).reshape(3, 4, 5).astype(np.float32)


def op_of(v):
    return v._node.op


def test_ops_emitted(jt):
    x = jt.array(A)
    assert op_of(x.permute(2, 0, 1)) == "transpose"
    assert op_of(x[1:, ::-2]) == "slice"
    assert op_of(x[1]) == "reshape" and x[1]._node.inputs[0].op == "slice"
    assert op_of(x[:, :]) == "array"  # whole dims: no node at all
    assert op_of(x[:, None]) == "reshape"
    assert op_of(jt.concat([x, x], 1)) == "concat"
    assert op_of(x.flip(2)) == "flip"
    assert op_of(jt.nn.pad(x, (1, 2))) == "pad"
    assert op_of(x[:, [0, 2]]) == "reindex"  # index arrays stay a reindex


def _rand_slice(n):
    pick = lambda: None if rng.random() < 0.25 else int(rng.integers(-n - 3, n + 4))  # noqa: E731
    step = None if rng.random() < 0.3 else int(rng.choice([-3, -2, -1, 1, 2, 3]))
    return slice(pick(), pick(), step)


def test_random_slices_match_numpy(jt):
    x = jt.array(A)
    for _ in range(60):
        idx = tuple(_rand_slice(n) for n in A.shape)
        check(x[idx], A[idx])


@pytest.mark.parametrize("idx", [
    (slice(None, None, -1),), (slice(-1, None, -1),), (slice(None, 0, -1),),
    (slice(-100, 100),), (slice(100, -100, -1),), (slice(2, 2),), (slice(3, 1),),
    (slice(0, 1), slice(None), slice(4, None, -5)), (-1, slice(None, None, -3), 0),
    (slice(1, -1), None, Ellipsis, slice(None, None, 2)), (Ellipsis, -1), (2, 3, 4),
])
def test_slice_edges(jt, idx):
    check(jt.array(A)[idx], A[idx])


@pytest.mark.parametrize("dtype", DTYPES)
def test_lowered_ops_every_dtype(jt, dtype):
    a = sample(dtype, (3, 4, 2))
    x = jt.array(a, dtype=dtype)
    check(x[::-1, 1:3, :], a[::-1, 1:3, :], dtype)
    check(x.permute(2, 0, 1), a.transpose(2, 0, 1), dtype)
    check(x.flip((0, 2)), np.flip(a, (0, 2)), dtype)
    check(jt.concat([x, x[:1], x], 0), np.concatenate([a, a[:1], a], 0), dtype)
    check(jt.nn.pad(x, (1, 0, 0, 2)), np.pad(a, ((0, 0), (0, 2), (1, 0))), dtype)


def test_empty_dims(jt):
    z = np.zeros((0, 3), np.float32)
    x = jt.array(z)
    check(x[::-1], z[::-1])
    check(x.transpose(), z.T)
    check(jt.concat([x, jt.array(np.ones((2, 3), np.float32))], 0),
          np.concatenate([z, np.ones((2, 3), np.float32)]))
    check(x.flip(1), z)


def test_wide_concat_is_a_tree(jt):
    parts = [rng.normal(size=(2, k + 1)).astype(np.float32) for k in range(23)]
    got = jt.concat([jt.array(p) for p in parts], 1)
    check(got, np.concatenate(parts, 1))
    assert op_of(got) == "concat" and len(got._node.inputs) <= 9


def test_concat_exact_bits(jt):
    n = np.array([[-0.0, np.nan, np.inf]], np.float32)
    got = jt.concat([jt.array(n)] * 3, 0).numpy()
    assert np.signbit(got[:, 0]).all() and np.isnan(got[:, 1]).all()


def test_pad(jt):
    a = sample("int32", (2, 3))
    x = jt.array(a)
    check(jt.nn.pad(x, (2, 1)), np.pad(a, ((0, 0), (2, 1))), "int32")
    check(jt.nn.pad(x, (1, 1, 1, 1), value=7), np.pad(a, 1, constant_values=7), "int32")
    check(jt.nn.pad(x, (-1, 0)), a[:, 1:], "int32")  # negative pads crop
    f = jt.array(A)
    check(jt.nn.pad(f, [0, 0, 1, 1, 2, 2], value=-1.5),
          np.pad(A, ((2, 2), (1, 1), (0, 0)), constant_values=-1.5))
    check(jt.nn.ZeroPad2d(1)(f), np.pad(A, ((0, 0), (1, 1), (1, 1))))
    with pytest.raises(ValueError):
        jt.nn.pad(x, (-4, 0))
    with pytest.raises(TypeError):
        jt.nn.pad(x, (1, 1), value=0.5)


def test_setitem_and_split_still_exact(jt):
    x = jt.array(A)
    x[1:, ::-2, 0] = -1.0
    want = A.copy()
    want[1:, ::-2, 0] = -1.0
    check(x, want)
    for got, w in zip(jt.array(A).split(2, 2), np.split(A, [2, 4], 2)):
        check(got, w)


def test_jit_counters(jt):
    st = jt.connection().status()
    assert set(st["jit"]) >= {"enabled", "kernels_compiled", "plans", "kernels_run"}
    before = st["jit"]["kernels_run"] + st["steps"]["done"]
    (jt.array(A)[::2].flip(1) * 2).sync()
    after = jt.connection().status()
    assert after["jit"]["kernels_run"] + after["steps"]["done"] > before
