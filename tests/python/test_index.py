"""Indexing, slicing, item assignment and the reindex-lowered shape ops."""
import numpy as np
import pytest

from test_ops import check, sample

A = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5).astype(np.float32)

INDEXES = [
    1, -1, (0, 2), (slice(None), 1), (Ellipsis, 2), (Ellipsis, -1, slice(None, None, 2)),
    slice(None, None, -1), (slice(1, None), slice(None, 2), slice(3, 0, -2)),
    (None, 0), (0, None, slice(None), None), (slice(None), None, Ellipsis, None),
    (1, 2, 3, 4), (-2, -3, -4, -5), slice(5, 10), (slice(None), slice(-2, None)),
    ([0, 1],), (slice(None), [2, 0, 2]), ([1, 0], slice(None), [3, 1]),
    (0, [1, 2], [[0], [3]]), (slice(None), np.array([-1, 0])), (Ellipsis, [4, 4, 0]),
    (1, slice(None), [0, 2], slice(None, None, 2)),
    (np.array([[True, False, True], [False, True, True]]),),
    (slice(None), np.array([True, False, True])),
]


@pytest.mark.parametrize("idx", INDEXES, ids=[repr(i)[:40] for i in INDEXES])
def test_getitem(jt, idx):
    check(jt.array(A)[idx], A[idx])


def test_getitem_with_vars(jt):
    x = jt.array(A)
    i = jt.array([2, 0, -1])
    check(x[:, i], A[:, [2, 0, -1]])
    check(x[jt.array(1)], A[1])
    check(x[jt.array(np.array([True, False]))], A[np.array([True, False])])
    check(x[x.sum((1, 2, 3)) > 2000], A[A.sum((1, 2, 3)) > 2000])


def test_getitem_errors(jt):
    x = jt.array(A)
    with pytest.raises(IndexError):
        x[2]
    with pytest.raises(IndexError):
        x[0, 0, 0, 0, 0]
    with pytest.raises(IndexError):
        x[..., ...]
    with pytest.raises(IndexError):
        x[jt.array([0.5])]


def test_getitem_scalar_and_bool_dtype(jt):
    b = sample("bool", (4, 4))
    check(jt.array(b)[1:3, ::2], b[1:3, ::2], "bool")
    assert jt.array(A)[1, 2, 3, 4].item() == A[1, 2, 3, 4]
    s = jt.array(5.0)
    check(s[None], np.array([5.0]))
    check(s[...], np.array(5.0))


SETS = [(1, 7.0), ((0, slice(None), 1), -1.0), (slice(None, None, 2), np.arange(5.0)),
        ((Ellipsis, 0), np.zeros((2, 3, 4))), (([0, 1, 0], [2, 2, 2]), 9.0),
        ((slice(None), [1, 1]), np.arange(2 * 2 * 4 * 5.0).reshape(2, 2, 4, 5)),
        ((0, 0, 0, 0), 100.0), (np.array([False, True]), 3.0)]


@pytest.mark.parametrize("idx,val", SETS, ids=[repr(s[0])[:40] for s in SETS])
def test_setitem(jt, idx, val):
    x = jt.array(A)
    y = x
    want = A.copy()
    want[idx] = val
    x[idx] = val if np.isscalar(val) else jt.array(val)
    assert y is x
    check(x, want, "float32")


def test_setitem_keeps_other_refs(jt):
    x = jt.array(np.zeros(4, np.int32))
    z = x.clone()
    x[1:3] = 5
    check(x, [0, 5, 5, 0], "int32")
    check(z, [0, 0, 0, 0], "int32")


@pytest.mark.parametrize("perm", [(0, 1, 2, 3), (3, 2, 1, 0), (1, 0, 3, 2), (2, 0, 3, 1)])
def test_permute(jt, perm):
    check(jt.array(A).permute(*perm), A.transpose(perm))
    check(jt.permute(jt.array(A), perm), A.transpose(perm))


def test_transpose_spellings(jt):
    x = jt.array(A)
    check(x.transpose(), A.transpose())
    check(x.transpose(1, 3), A.swapaxes(1, 3))
    check(jt.transpose(x, (0, 2, 1, 3)), A.transpose(0, 2, 1, 3))
    m = jt.array(A[0, 0])
    check(m.t(), A[0, 0].T)
    check(m.T, A[0, 0].T)


def test_reshape_family(jt):
    x = jt.array(A)
    check(x.reshape(6, 20), A.reshape(6, 20))
    check(x.reshape((-1, 5)), A.reshape(-1, 5))
    check(x.reshape([4, -1]), A.reshape(4, -1))
    check(x.view(120), A.reshape(120))
    check(x.flatten(), A.flatten())
    check(x.flatten(1), A.reshape(2, -1))
    check(jt.flatten(x, 1, 2), A.reshape(2, 12, 5))
    check(x[:, :1].squeeze(1), A[:, 0])
    check(jt.array(A[:1]).squeeze(), A[0])
    check(x.unsqueeze(1), A[:, None])
    check(x.unsqueeze(-1), A[..., None])
    with pytest.raises(ValueError):
        x.reshape(7, -1)


def test_broadcast_and_expand(jt):
    v = jt.array(np.arange(3.0))
    check(v.broadcast([2, 3]), np.broadcast_to(np.arange(3.0), (2, 3)))
    check(v.broadcast([3, 2], [1]), np.broadcast_to(np.arange(3.0)[:, None], (3, 2)))
    check(jt.broadcast(v, jt.zeros((4, 3))), np.broadcast_to(np.arange(3.0), (4, 3)))
    check(v.reshape(3, 1).expand(3, 4), np.broadcast_to(np.arange(3.0)[:, None], (3, 4)))
    check(v.reshape(3, 1).expand(-1, 2), np.broadcast_to(np.arange(3.0)[:, None], (3, 2)))
    with pytest.raises(ValueError):
        v.broadcast([2, 4])
    with pytest.raises(ValueError):
        jt.array(np.zeros((2, 3))) + jt.array(np.zeros((4, 1, 2)))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_concat_stack(jt, dim):
    a, b, c = A[0], A[1] * 2, A[1]
    check(jt.concat([jt.array(a), jt.array(b), jt.array(c)], dim),
          np.concatenate([a, b, c], dim))
    check(jt.stack([jt.array(a), jt.array(b)], dim), np.stack([a, b], dim))


def test_concat_mixed(jt):
    a = sample("int32", (2, 3))
    b = sample("float32", (2, 1))
    e = np.zeros((2, 0), np.float32)
    check(jt.concat([jt.array(a), jt.array(b), jt.array(e)], 1),
          np.concatenate([a, b], 1).astype(np.float64), "float64")
    check(jt.cat([jt.array(a)], 0), a)
    bb = sample("bool", (2, 2))
    check(jt.concat([jt.array(bb), jt.array(~bb)], 0), np.concatenate([bb, ~bb]), "bool")
    n = np.array([[-0.0, 1.0]], np.float32)
    got = jt.concat([jt.array(n), jt.array(n)], 0).numpy()
    assert np.signbit(got[1, 0])  # no arithmetic: -0.0 stays -0.0
    with pytest.raises(ValueError):
        jt.concat([jt.array(a), jt.array(np.zeros((3, 3)))], 1)


def test_flip_repeat_roll_split(jt):
    x = jt.array(A)
    check(x.flip(1), np.flip(A, 1))
    check(jt.flip(x, (0, 3)), np.flip(A, (0, 3)))
    m = A[0, 0]
    check(jt.array(m).repeat(2, 3), np.tile(m, (2, 3)))
    check(jt.array(m).repeat(2, 1, 1), np.tile(m, (2, 1, 1)))
    check(jt.roll(jt.array(m), 2, 1), np.roll(m, 2, 1))
    check(jt.roll(jt.array(m), -1), np.roll(m, -1))
    parts = jt.array(m).split(2, 1)
    for got, want in zip(parts, np.split(m, [2, 4], 1)):
        check(got, want)
    parts = jt.array(m).chunk(2, 0)
    for got, want in zip(parts, np.array_split(m, 2, 0)):
        check(got, want)
