"""The meta-operators with Jittor's signatures, in Jittor's documented style."""
import numpy as np
import pytest

from test_ops import check, sample


def conv_nhwc(jt, x, w):
    # Jittor's tutorial convolution, built from reindex, broadcast and sum.
    N, H, W, C = x.shape
    Kh, Kw, _C, Kc = w.shape
    assert C == _C
    xx = x.reindex([N, H - Kh + 1, W - Kw + 1, Kh, Kw, C, Kc], [
        'i0',     # Nid
        'i1+i3',  # Hid+Khid
        'i2+i4',  # Wid+KWid
        'i5',     # Cid
    ])
    ww = w.broadcast_var(xx)
    yy = xx * ww
    return yy.sum([3, 4, 5])


def test_reindex_conv(jt):
    x = sample("float32", (2, 6, 7, 3), -1, 1)
    w = sample("float32", (3, 2, 3, 4), -1, 1)
    got = conv_nhwc(jt, jt.array(x), jt.array(w))
    want = np.zeros((2, 4, 6, 4), np.float32)
    for i in range(3):
        for j in range(2):
            want += np.einsum("nhwc,ck->nhwk", x[:, i:i + 4, j:j + 6, :], w[i, j])
    check(got, want, rtol=1e-4, atol=1e-4)


def test_reindex_overflow(jt):
    a = np.arange(5, dtype=np.float32)
    x = jt.array(a)
    check(x.reindex([7], ["i0-1"]), np.concatenate([[0], a, [0]]))
    check(jt.reindex(x, [7], ["i0-1"], overflow_value=-1.5), np.concatenate([[-1.5], a, [-1.5]]))
    check(x.reindex([5], ["i0"], overflow_conditions=["i0>2", "i0==0"]), [0, 1, 2, 0, 0])
    check(x.reindex([2, 5], ["xshape0-1-i1"]), np.stack([a[::-1], a[::-1]]))


def test_reindex_extras(jt):
    a = sample("float32", (4, 3))
    idx = np.array([3, 0, 0, 2], np.int32)
    x = jt.array(a)
    check(x.reindex([4, 3], ["@e0(i0)", "i1"], extras=[jt.array(idx)]), a[idx])
    check(jt.reindex_var(x, [jt.array(idx), jt.array([0, 2, 1, 1])]),
          a[idx, [0, 2, 1, 1]])


def test_reindex_reduce_pool(jt):
    a = sample("float32", (2, 4, 6, 3))
    x = jt.array(a)
    got = x.reindex_reduce("maximum", [2, 2, 3, 3], ["i0", "i1/2", "i2/2", "i3"])
    check(got, a.reshape(2, 2, 2, 3, 2, 3).max((2, 4)))
    got = jt.reindex_reduce(x, "add", [2, 2, 3, 3], ["i0", "i1/2", "i2/2", "i3"])
    check(got, a.reshape(2, 2, 2, 3, 2, 3).sum((2, 4)), rtol=1e-5)
    got = x.reindex_reduce("minimum", [2, 2, 3, 3], ["i0", "i1/2", "i2/2", "i3"],
                           overflow_conditions=["i1>=2"])
    want = a.reshape(2, 2, 2, 3, 2, 3).min((2, 4))
    want[:, 1] = np.inf  # min's identity where every element was dropped
    check(got, want)
    b = sample("int32", (6,), 1, 4)
    got = jt.array(b).reindex_reduce("multiply", [2], ["i0%2"])
    check(got, [b[0::2].prod(), b[1::2].prod()], "int32")


def test_scatter_add_with_extras(jt):
    vals = sample("float32", (6,))
    idx = np.array([1, 3, 1, 0, 3, 3], np.int64)
    got = jt.array(vals).reindex_reduce("add", [4], ["@e0(i0)"], extras=[jt.array(idx,
                                                                                 "int64")])
    want = np.zeros(4, np.float32)
    np.add.at(want, idx, vals)
    check(got, want, rtol=1e-5)


def test_broadcast_reduce_index(jt):
    v = jt.array(np.arange(3.0))
    check(jt.broadcast(v, [2, 3, 4], [0, 2]), np.broadcast_to(np.arange(3.0)[None, :, None],
                                                              (2, 3, 4)))
    check(jt.broadcast(2.0, [2, 2]), np.full((2, 2), 2.0))
    a = sample("float32", (3, 4))
    check(jt.reduce(jt.array(a), "add", [0, 1]), a.sum(), rtol=1e-5)
    check(jt.reduce(jt.array(a), "mean", 1, keepdims=True), a.mean(1, keepdims=True))
    check(jt.index([2, 3], 0), [[0, 0, 0], [1, 1, 1]], "int32")
    check(jt.index([2, 3], 1, dtype="int64"), [[0, 1, 2], [0, 1, 2]], "int64")
    with pytest.raises(TypeError):
        jt.index([2], 0, dtype="float32")


@pytest.mark.parametrize("shape,exprs,conds,extras,what", [
    ([3], ["i1"], [], 0, "outside"),
    ([3], ["i0+"], [], 0, "expected"),
    ([3], ["foo"], [], 0, "unknown name"),
    ([3], ["@e1(i0)"], [], 1, "names no extra"),
    ([3], ["@e0(i0,i0)"], [], 1, "takes 1 coordinates"),
    ([3], ["i0 $ 2"], [], 0, "unexpected character"),
    ([3], ["i0"], ["xshape3>0"], 0, "outside"),
    ([3], ["min(i0)"], [], 0, "expected"),
])
def test_expression_errors_raise_at_the_call(jt, shape, exprs, conds, extras, what):
    x = jt.array(np.arange(4.0))
    ex = [jt.array([0, 1, 2])] * extras
    with pytest.raises(ValueError, match=what):
        x.reindex(shape, exprs, overflow_conditions=conds, extras=ex)


def test_meta_argument_errors(jt):
    x = jt.array(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="needs 2 indexes"):
        x.reindex([2], ["i0"])
    with pytest.raises(ValueError, match="needs 1 indexes"):
        x.reindex_reduce("add", [2], ["i0", "i1"])
    with pytest.raises(ValueError, match="reindex_reduce takes"):
        x.reindex_reduce("mean", [2], ["i0"])
    with pytest.raises(TypeError, match="extra inputs"):
        x.reindex([2, 3], ["i0", "@e0(i1)"], extras=[jt.array([0.5])])
    jt.check_expr("max(i0,1)?xstride0:-YDIM", 1, 1, 1)
