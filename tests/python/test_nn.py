"""jt.nn functions against numpy references: activations, softmax,
losses, convolution, pooling, padding, resizing and normalisation."""
import math

import numpy as np
import pytest

from test_ops import check

rng = np.random.default_rng(21)


def f32(*shape, scale=1.0):
    return (rng.normal(size=shape) * scale).astype(np.float32)


# ---- activations and softmax -----------------------------------------------------------

X = f32(4, 5, scale=3)
ACTS = {
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.exp(np.minimum(x, 0)) - 1),
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772
                                                    * (np.exp(np.minimum(x, 0)) - 1)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "mish": lambda x: x * np.tanh(np.log1p(np.exp(x))),
    "gelu": lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "hardtanh": lambda x: np.clip(x, -1, 1),
    "hardsigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
    "hardswish": lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
    "log_sigmoid": lambda x: -np.log1p(np.exp(-x)),
}


@pytest.mark.parametrize("name", sorted(ACTS))
def test_activation(jt, name):
    check(getattr(jt.nn, name)(jt.array(X)), ACTS[name](X.astype(np.float64)), rtol=1e-4,
          atol=1e-5)


def test_activation_modules(jt):
    x = jt.array(X)
    check(jt.nn.ReLU()(x), ACTS["relu"](X))
    check(jt.nn.LeakyReLU(0.2)(x), np.where(X > 0, X, 0.2 * X))
    check(jt.nn.Sigmoid()(x), ACTS["sigmoid"](X), rtol=1e-5)
    check(jt.nn.Tanh()(x), np.tanh(X), rtol=1e-5)
    check(jt.nn.GELU()(x), ACTS["gelu"](X), rtol=1e-4, atol=1e-5)
    check(jt.nn.Softmax(dim=1)(x), np.exp(X) / np.exp(X).sum(1, keepdims=True), rtol=1e-5)
    check(jt.nn.Identity()(x), X)
    p = jt.nn.PReLU()
    check(p(x), np.where(X > 0, X, 0.25 * X))


def _softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_softmax_log_softmax(jt, dim):
    x = f32(3, 4, 5, scale=10)
    want = _softmax(x.reshape(-1), 0).reshape(x.shape) if dim is None else _softmax(x, dim)
    check(jt.nn.softmax(jt.array(x), dim), want, rtol=1e-5)
    check(jt.nn.log_softmax(jt.array(x), dim), np.log(want), rtol=1e-4, atol=1e-5)
    big = np.array([[1000.0, 0.0, -1000.0]], np.float32)  # stable: no overflow
    check(jt.nn.softmax(jt.array(big), 1), [[1.0, 0.0, 0.0]])


def test_logsumexp(jt):
    x = f32(3, 6, scale=5)
    m = x.max(1, keepdims=True)
    want = (np.log(np.exp(x - m).sum(1, keepdims=True)) + m)[:, 0]
    from kiln.nn.functional import logsumexp
    check(logsumexp(jt.array(x), 1), want, rtol=1e-5)


# ---- losses ------------------------------------------------------------------------------


def _ce(logits, t, weight=None, ignore=None):
    logp = np.log(_softmax(logits.astype(np.float64), 1))
    li = -logp[np.arange(len(t)), np.clip(t, 0, logits.shape[1] - 1)]
    w = np.ones(len(t)) if weight is None else weight[np.clip(t, 0, logits.shape[1] - 1)]
    if ignore is not None:
        w = w * (t != ignore)
    return (li * w).sum() / w.sum()


def test_cross_entropy(jt):
    logits = f32(6, 4, scale=2)
    t = np.array([0, 3, 1, 1, 2, 0])
    x, tt = jt.array(logits), jt.array(t)
    check(jt.nn.cross_entropy_loss(x, tt), _ce(logits, t), rtol=1e-5)
    check(jt.nn.CrossEntropyLoss()(x, tt), _ce(logits, t), rtol=1e-5)
    w = np.array([1.0, 2.0, 0.5, 3.0], np.float32)
    check(jt.nn.cross_entropy_loss(x, tt, weight=jt.array(w)), _ce(logits, t, w), rtol=1e-5)
    t2 = t.copy()
    t2[2] = -1
    check(jt.nn.cross_entropy_loss(x, jt.array(t2), ignore_index=-1), _ce(logits, t2, None, -1),
          rtol=1e-5)
    per = jt.nn.cross_entropy_loss(x, tt, reduction="none")
    assert per.shape == [6]
    check(jt.nn.cross_entropy_loss(x, tt, reduction="sum"), _ce(logits, t) * 6, rtol=1e-5)
    # [N, C, H, W] logits with [N, H, W] targets
    l4 = f32(2, 3, 2, 2)
    t4 = rng.integers(0, 3, (2, 2, 2))
    flat = l4.transpose(0, 2, 3, 1).reshape(-1, 3)
    check(jt.nn.cross_entropy_loss(jt.array(l4), jt.array(t4)), _ce(flat, t4.reshape(-1)),
          rtol=1e-5)
    # probabilities as targets
    p = _softmax(f32(6, 4), 1).astype(np.float32)
    want = -(p * np.log(_softmax(logits, 1))).sum(1).mean()
    check(jt.nn.cross_entropy_loss(x, jt.array(p)), want, rtol=1e-5)


def test_regression_and_binary_losses(jt):
    a, b = f32(5, 3), f32(5, 3)
    check(jt.nn.mse_loss(jt.array(a), jt.array(b)), ((a - b) ** 2).mean(), rtol=1e-5)
    check(jt.nn.MSELoss()(jt.array(a), jt.array(b)), ((a - b) ** 2).mean(), rtol=1e-5)
    check(jt.nn.l1_loss(jt.array(a), jt.array(b)), np.abs(a - b).mean(), rtol=1e-5)
    check(jt.nn.L1Loss(reduction="sum")(jt.array(a), jt.array(b)), np.abs(a - b).sum(),
          rtol=1e-5)
    d = np.abs(a - b)
    check(jt.nn.smooth_l1_loss(jt.array(a), jt.array(b)),
          np.where(d < 1, 0.5 * d * d, d - 0.5).mean(), rtol=1e-5)
    p = 1 / (1 + np.exp(-a))
    t = (b > 0).astype(np.float32)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    check(jt.nn.bce_loss(jt.array(p), jt.array(t)), bce.mean(), rtol=1e-4)
    check(jt.nn.BCELoss()(jt.array(p), jt.array(t)), bce.mean(), rtol=1e-4)
    check(jt.nn.binary_cross_entropy_with_logits(jt.array(a), jt.array(t)), bce.mean(),
          rtol=1e-4)
    check(jt.nn.BCEWithLogitsLoss()(jt.array(a * 30), jt.array(t)),
          (np.maximum(a * 30, 0) - a * 30 * t + np.log1p(np.exp(-np.abs(a * 30)))).mean(),
          rtol=1e-4)
    pw = np.float32(2.0)
    want = ((1 - t) * a + (1 + (pw - 1) * t) * np.log1p(np.exp(-a))).mean()
    check(jt.nn.binary_cross_entropy_with_logits(jt.array(a), jt.array(t), pos_weight=pw), want,
          rtol=1e-4)
    logp = np.log(_softmax(a, 1))
    lab = np.array([0, 2, 1, 1, 0])
    check(jt.nn.nll_loss(jt.array(logp), jt.array(lab)),
          -logp[np.arange(5), lab].mean(), rtol=1e-5)


def test_one_hot_and_linear(jt):
    check(jt.nn.one_hot(jt.array([0, 2, 1]), 4), np.eye(4, dtype=np.int32)[[0, 2, 1]], "int32")
    check(jt.nn.one_hot(jt.array([[1], [3]])), np.eye(4, dtype=np.int32)[[[1], [3]]])
    x, w, b = f32(3, 4), f32(5, 4), f32(5)
    check(jt.nn.linear(jt.array(x), jt.array(w), jt.array(b)), x @ w.T + b, rtol=1e-5)
    check(jt.nn.matmul_transpose(jt.array(x), jt.array(w)), x @ w.T, rtol=1e-5)
    a3, b3 = f32(2, 3, 4), f32(2, 4, 5)
    check(jt.nn.bmm(jt.array(a3), jt.array(b3)), a3 @ b3, rtol=1e-5)


# ---- convolution -------------------------------------------------------------------------


def conv2d_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    s = (stride, stride) if np.isscalar(stride) else stride
    p = (padding, padding) if np.isscalar(padding) else padding
    d = (dilation, dilation) if np.isscalar(dilation) else dilation
    N, C, H, W = x.shape
    O, CpG, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    oh = (H + 2 * p[0] - d[0] * (kh - 1) - 1) // s[0] + 1
    ow = (W + 2 * p[1] - d[1] * (kw - 1) - 1) // s[1] + 1
    y = np.zeros((N, O, oh, ow))
    opg = O // groups
    for o in range(O):
        g = o // opg
        xs = xp[:, g * CpG:(g + 1) * CpG]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * d[0]:i * d[0] + s[0] * (oh - 1) + 1:s[0],
                           j * d[1]:j * d[1] + s[1] * (ow - 1) + 1:s[1]]
                y[:, o] += np.einsum("nchw,c->nhw", patch, w[o, :, i, j])
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


CONVS = [dict(), dict(stride=2), dict(padding=1), dict(padding=(2, 1), stride=(1, 2)),
         dict(dilation=2, padding=2), dict(groups=2), dict(groups=4, stride=2, padding=1)]


@pytest.mark.parametrize("kw", CONVS, ids=[str(c) for c in CONVS])
def test_conv2d(jt, kw):
    x = f32(2, 4, 7, 8)
    g = kw.get("groups", 1)
    w = f32(8, 4 // g, 3, 3)
    b = f32(8)
    check(jt.nn.conv2d(jt.array(x), jt.array(w), jt.array(b), **kw),
          conv2d_ref(x, w, b, **kw), rtol=1e-4, atol=1e-4)


def test_conv_layers(jt):
    x = f32(2, 3, 9, 9)
    conv = jt.nn.Conv2d(3, 6, 3, stride=2, padding=1, bias=True)
    assert conv.weight.shape == [6, 3, 3, 3] and conv.bias.shape == [6]
    bound = 1 / math.sqrt(27)
    assert np.abs(conv.weight.numpy()).max() <= bound + 1e-6
    check(conv(jt.array(x)), conv2d_ref(x, conv.weight.numpy(), conv.bias.numpy(), 2, 1),
          rtol=1e-4, atol=1e-4)
    c1 = jt.nn.Conv1d(3, 2, 3, padding=1)
    x1 = f32(2, 3, 10)
    want = conv2d_ref(x1[:, :, None], c1.weight.numpy()[:, :, None], c1.bias.numpy(),
                      1, (0, 1))[:, :, 0]
    check(c1(jt.array(x1)), want, rtol=1e-4, atol=1e-4)


def test_conv_transpose2d(jt):
    x = f32(2, 4, 5, 5)
    w = f32(4, 3, 3, 3)
    y = jt.nn.conv_transpose2d(jt.array(x), jt.array(w), stride=2, padding=1, output_padding=1)
    # transposed conv is the adjoint of conv: <convT(x), z> == <x, conv(z)>
    z = f32(*y.shape)
    lhs = (y.numpy().astype(np.float64) * z).sum()
    rhs = (x * conv2d_ref(z, w, None, 2, 1)).sum()  # w [in, out] is conv's [out, in]
    assert y.shape == [2, 3, 10, 10]
    assert lhs == pytest.approx(rhs, rel=1e-4)


# ---- pooling -------------------------------------------------------------------------------


def pool_ref(x, k, s, p, op, ceil_mode=False, count_include_pad=True):
    N, C, H, W = x.shape

    def osz(n):
        if ceil_mode:
            o = -(-(n + 2 * p - k) // s) + 1
            if (o - 1) * s >= n + p:
                o -= 1
            return o
        return (n + 2 * p - k) // s + 1
    oh, ow = osz(H), osz(W)
    y = np.zeros((N, C, oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * s - p, j * s - p
            h1, w1 = min(h0 + k, H + p), min(w0 + k, W + p)
            size = (h1 - h0) * (w1 - w0)
            hs, ws = max(h0, 0), max(w0, 0)
            he, we = min(h1, H), min(w1, W)
            win = x[:, :, hs:he, ws:we]
            if op == "max":
                y[:, :, i, j] = win.max((2, 3))
            else:
                div = size if count_include_pad else (he - hs) * (we - ws)
                y[:, :, i, j] = win.sum((2, 3)) / div
    return y


POOLS = [(2, 2, 0, False), (3, 2, 1, False), (3, 2, 1, True), (3, 1, 1, False),
         (2, 3, 1, True)]


@pytest.mark.parametrize("k,s,p,ceil", POOLS)
def test_pools(jt, k, s, p, ceil):
    x = f32(2, 3, 7, 8)
    check(jt.nn.max_pool2d(jt.array(x), k, s, p, ceil_mode=ceil),
          pool_ref(x, k, s, p, "max", ceil))
    check(jt.nn.avg_pool2d(jt.array(x), k, s, p, ceil_mode=ceil),
          pool_ref(x, k, s, p, "avg", ceil), rtol=1e-5)
    check(jt.nn.avg_pool2d(jt.array(x), k, s, p, ceil_mode=ceil, count_include_pad=False),
          pool_ref(x, k, s, p, "avg", ceil, False), rtol=1e-5)


def test_pool_layers_and_ints(jt):
    x = f32(1, 2, 6, 6)
    check(jt.nn.MaxPool2d(2)(jt.array(x)), pool_ref(x, 2, 2, 0, "max"))
    check(jt.nn.AvgPool2d(3, 1, 1)(jt.array(x)), pool_ref(x, 3, 1, 1, "avg"), rtol=1e-5)
    check(jt.nn.Pool(2, op="mean")(jt.array(x)), pool_ref(x, 2, 2, 0, "avg"), rtol=1e-5)
    xi = rng.integers(-50, 50, (1, 1, 4, 4)).astype(np.int32)
    check(jt.nn.max_pool2d(jt.array(xi), 2, 2, 1), pool_ref(xi, 2, 2, 1, "max"), "int32")


@pytest.mark.parametrize("out", [(1, 1), (3, 4), (4, 3), (2, 5)])
def test_adaptive_pools(jt, out):
    x = f32(2, 3, 7, 9)
    H, W = 7, 9
    oh, ow = out
    avg = np.zeros((2, 3, oh, ow))
    mx = np.zeros((2, 3, oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, h1 = (i * H) // oh, -(-((i + 1) * H) // oh)
            w0, w1 = (j * W) // ow, -(-((j + 1) * W) // ow)
            avg[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean((2, 3))
            mx[:, :, i, j] = x[:, :, h0:h1, w0:w1].max((2, 3))
    check(jt.nn.AdaptiveAvgPool2d(out)(jt.array(x)), avg, rtol=1e-5)
    check(jt.nn.adaptive_max_pool2d(jt.array(x), out), mx)


@pytest.mark.parametrize("mode", ["constant", "replicate", "reflect", "circular"])
def test_pad_modes(jt, mode):
    x = f32(2, 3, 4, 5)
    pads = (2, 1, 3, 0)
    npm = {"constant": "constant", "replicate": "edge", "reflect": "reflect",
           "circular": "wrap"}[mode]
    want = np.pad(x, ((0, 0), (0, 0), (3, 0), (2, 1)), mode=npm)
    check(jt.nn.pad(jt.array(x), pads, mode=mode), want)
    if mode == "reflect":
        check(jt.nn.ReflectionPad2d(1)(jt.array(x)),
              np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect"))


def _bilinear_ref(x, oh, ow, align):
    N, C, H, W = x.shape

    def axis(n, o):
        if align:
            src = np.arange(o) * ((n - 1) / (o - 1) if o > 1 else 0)
        else:
            src = np.maximum((np.arange(o) + 0.5) * n / o - 0.5, 0)
        i0 = np.minimum(np.floor(src).astype(int), n - 1)
        return i0, np.minimum(i0 + 1, n - 1), src - i0
    h0, h1, lh = axis(H, oh)
    w0, w1, lw = axis(W, ow)
    top = x[:, :, h0][:, :, :, w0] * (1 - lw) + x[:, :, h0][:, :, :, w1] * lw
    bot = x[:, :, h1][:, :, :, w0] * (1 - lw) + x[:, :, h1][:, :, :, w1] * lw
    return top * (1 - lh[:, None]) + bot * lh[:, None]


def test_interpolate(jt):
    x = f32(1, 2, 4, 5)
    near = x[:, :, (np.arange(8) * 4) // 8][:, :, :, (np.arange(10) * 5) // 10]
    check(jt.nn.interpolate(jt.array(x), scale_factor=2), near)
    check(jt.nn.Upsample(scale_factor=2)(jt.array(x)), near)
    for align in (False, True):
        check(jt.nn.interpolate(jt.array(x), size=(7, 9), mode="bilinear", align_corners=align),
              _bilinear_ref(x.astype(np.float64), 7, 9, align), rtol=1e-5, atol=1e-6)


# ---- normalisation and dropout ------------------------------------------------------------


def test_batch_norm(jt):
    x = f32(8, 3, 4, 4, scale=2) + 1.0
    bn = jt.nn.BatchNorm2d(3)
    y = bn(jt.array(x))
    m = x.mean((0, 2, 3), keepdims=True)
    v = x.var((0, 2, 3), keepdims=True)
    check(y, (x - m) / np.sqrt(v + 1e-5), rtol=1e-4, atol=1e-4)
    check(bn.running_mean, 0.1 * m.reshape(-1), rtol=1e-4, atol=1e-5)
    check(bn.running_var, 0.9 + 0.1 * v.reshape(-1), rtol=1e-4)
    assert bn.running_mean.is_stop_grad()
    bn.eval()
    rm, rv = bn.running_mean.numpy(), bn.running_var.numpy()
    check(bn(jt.array(x)), (x - rm.reshape(1, 3, 1, 1)) / np.sqrt(rv.reshape(1, 3, 1, 1) + 1e-5),
          rtol=1e-4, atol=1e-4)
    x1 = f32(16, 5)
    bn1 = jt.nn.BatchNorm1d(5)
    check(bn1(jt.array(x1)), (x1 - x1.mean(0)) / np.sqrt(x1.var(0) + 1e-5), rtol=1e-4,
          atol=1e-4)


def test_layer_group_instance_norm(jt):
    x = f32(4, 6, 5)
    ln = jt.nn.LayerNorm(5)
    check(ln(jt.array(x)), (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True)
                                                                       + 1e-5),
          rtol=1e-4, atol=1e-4)
    g = jt.nn.GroupNorm(2, 6)
    xg = x.reshape(4, 2, 15)
    want = ((xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + 1e-5))
    check(g(jt.array(x)), want.reshape(4, 6, 5), rtol=1e-4, atol=1e-4)
    x4 = f32(2, 3, 4, 4)
    i = jt.nn.InstanceNorm2d(3)
    check(i(jt.array(x4)), (x4 - x4.mean((2, 3), keepdims=True))
          / np.sqrt(x4.var((2, 3), keepdims=True) + 1e-5), rtol=1e-4, atol=1e-4)


def test_dropout(jt):
    x = jt.ones((200, 100))
    d = jt.nn.Dropout(0.3)
    check(d(x), np.ones((200, 100)))  # is_train is False until train()
    d.train()
    y = d(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    check(jt.nn.dropout(x, 0.5, is_train=False), np.ones((200, 100)))
    assert jt.nn.dropout(x, 1.0, True).numpy().max() == 0


def test_embedding_and_flatten(jt):
    e = jt.nn.Embedding(10, 3)
    ids = np.array([[1, 2], [9, 0]])
    check(e(jt.array(ids)), e.weight.numpy()[ids])
    x = f32(2, 3, 4)
    check(jt.nn.Flatten()(jt.array(x)), x.reshape(2, 12))
    check(jt.nn.Flatten(0, 1)(jt.array(x)), x.reshape(6, 4))
