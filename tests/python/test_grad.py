"""jt.grad through the daemon's autodiff: gradients against central finite
differences (float64) for ops, nn functions and layers; stop_grad,
no_grad, warnings, higher order; optimizers' step(loss) against numpy."""
import warnings

import numpy as np
import pytest

from test_ops import check

rng = np.random.default_rng(51)


@pytest.fixture(scope="module")
def ad(jt):
    from kiln import graph
    if not graph.runtime().has_autodiff():
        pytest.skip("this kilnd has no autodiff")
    return jt


def fd_check(jt, f, *arrays, eps=1e-6, rtol=1e-5, atol=1e-7):
    """jt.grad of f(*vars) (a scalar) against central differences; all the
    perturbed evaluations go to the daemon in one submission."""
    from kiln import graph
    xs = [jt.array(a, dtype="float64") for a in arrays]
    grads = jt.grad(f(*xs), xs)
    evals = []
    for k, a in enumerate(arrays):
        for i in range(a.size):
            for s in (1, -1):
                b = a.astype(np.float64).copy()
                b.flat[i] += s * eps
                args = [jt.array(b, dtype="float64") if j == k else jt.array(arrays[j], "float64")
                        for j in range(len(arrays))]
                evals.append(f(*args))
    vals = graph.runtime().fetch([g._node for g in grads] + [e._node for e in evals])
    got, fx = vals[:len(grads)], vals[len(grads):]
    n = 0
    for k, a in enumerate(arrays):
        num = np.empty(a.size)
        for i in range(a.size):
            num[i] = (float(fx[n]) - float(fx[n + 1])) / (2 * eps)
            n += 2
        np.testing.assert_allclose(got[k].reshape(-1), num, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {k}")


def r(*shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape)


UNARY = {
    "exp": lambda x: x.exp(), "log": lambda x: (x.abs() + 0.5).log(), "sqrt": lambda x:
    (x.abs() + 0.5).sqrt(), "sin": lambda x: x.sin(), "cos": lambda x: x.cos(),
    "tanh": lambda x: x.tanh(), "sigmoid": lambda x: x.sigmoid(), "erf": lambda x: x.erf(),
    "abs": lambda x: x.abs(), "neg": lambda x: -x, "rsqrt": lambda x: (x.abs() + 0.5).rsqrt(),
    "pow": lambda x: (x.abs() + 0.5) ** 2.5, "rpow": lambda x: 2.0 ** x,
    "relu": lambda x: x.relu() if hasattr(x, "relu") else x.maximum(0),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(ad, name):
    f = UNARY[name]
    fd_check(ad, lambda x: (f(x) * ad.array(np.arange(1, 7.0).reshape(2, 3), "float64")).sum(),
             r(2, 3) + 0.05)


BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b.abs() + 0.5), "max": lambda a, b: ad_max(a, b),
    "pow": lambda a, b: (a.abs() + 0.5) ** b, "where": lambda a, b: ad_where(a, b),
    "broadcast": lambda a, b: a * b[0:1, :],
}


def ad_max(a, b):
    return a.maximum(b)


def ad_where(a, b):
    return (a > b).where(a * 2, b * 3)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(ad, name):
    f = BINARY[name]
    fd_check(ad, lambda a, b: (f(a, b) ** 2).sum(), r(2, 3), r(2, 3) + 0.1)


REDUCE_AND_SHAPE = {
    "sum_dim": lambda x: (x.sum(1) ** 2).sum(),
    "mean": lambda x: (x.mean(0, keepdims=True) * x).sum(),
    "max": lambda x: x.max(1).sum() + x.min(),
    "prod": lambda x: x.prod(1).sum(),
    "matmul": lambda x: (x @ x.transpose()).sum(),
    "reshape_permute": lambda x: (x.reshape(3, 2).permute(1, 0) * x).sum(),
    "slice": lambda x: (x[::-1, 1:] ** 2).sum() + x[1, 2] * 3,
    "advanced_index": lambda x: (x[[1, 0, 1], [2, 2, 0]] ** 2).sum(),
    "concat_flip_pad": lambda x: (ad_cat(x) ** 2).sum(),
    "setitem": lambda x: ad_set(x),
    "var": lambda x: x.std(),
}


def ad_cat(x):
    import kiln as jt
    return jt.nn.pad(jt.concat([x, x.flip(1) * 2], 0), (1, 2), value=1.0)


def ad_set(x):
    y = x * 1.0
    y[0, 1:] = 5.0
    return (y * x).sum()


@pytest.mark.parametrize("name", sorted(REDUCE_AND_SHAPE))
def test_reductions_and_shapes(ad, name):
    fd_check(ad, REDUCE_AND_SHAPE[name], r(2, 3) + np.arange(6).reshape(2, 3) * 0.01)


def test_meta_ops(ad):
    jt = ad
    fd_check(jt, lambda x: (x.reindex([3, 4], ["i0-1", "i1"], overflow_value=0.5) ** 2).sum(),
             r(3, 4))
    fd_check(jt, lambda x: (x.reindex_reduce("add", [2], ["i0%2"]) ** 2).sum(), r(6))
    fd_check(jt, lambda x: x.reindex_reduce("maximum", [2], ["i0/3"]).sum(), r(6))
    c = r(2, 3, 4)
    fd_check(jt, lambda x: (x.broadcast([2, 3, 4], [0]) * jt.array(c, "float64")).sum(),
             r(3, 4))


def test_nn_functions(ad):
    jt = ad
    lab = jt.array([0, 2, 1])
    fd_check(jt, lambda x: jt.nn.cross_entropy_loss(x, lab), r(3, 4))
    c = r(3, 4)
    fd_check(jt, lambda x: (jt.nn.log_softmax(x, 1) * jt.array(c, "float64")).sum(), r(3, 4))
    fd_check(jt, lambda a, b: jt.nn.mse_loss(a, b), r(4, 2), r(4, 2))
    fd_check(jt, lambda a: jt.nn.binary_cross_entropy_with_logits(a, jt.array(
        [[1.0, 0.0], [0.0, 1.0]], "float64")), r(2, 2))
    fd_check(jt, lambda x, w: (jt.nn.conv2d(x, w, stride=2, padding=1) ** 2).sum(),
             r(1, 2, 5, 5), r(3, 2, 3, 3), rtol=1e-4)
    fd_check(jt, lambda x, w: (jt.nn.conv2d(x, w, groups=2, dilation=2) ** 2).sum(),
             r(1, 4, 6, 6), r(2, 2, 2, 2), rtol=1e-4)
    fd_check(jt, lambda x: (jt.nn.avg_pool2d(x, 3, 2, 1) ** 2).sum(), r(1, 2, 5, 5))
    fd_check(jt, lambda x: (jt.nn.max_pool2d(x, 2) ** 2).sum(), r(1, 1, 4, 4))
    fd_check(jt, lambda x: (jt.nn.interpolate(x, size=(5, 3), mode="bilinear") ** 2).sum(),
             r(1, 1, 3, 2))
    c4 = r(4, 3)
    fd_check(jt, lambda x: (jt.nn.batch_norm(x, None, None, training=True)
                            * jt.array(c4, "float64")).sum(), r(4, 3), rtol=1e-4)
    fd_check(jt, lambda x: (jt.cumsum(x, 1) ** 2).sum(), r(2, 4))


def test_linear_layer_gradients_match_numpy(ad):
    jt = ad
    lin = jt.nn.Linear(3, 2)
    x = r(5, 3).astype(np.float32)
    y = r(5, 2).astype(np.float32)
    loss = ((lin(jt.array(x)) - jt.array(y)) ** 2).mean()
    gw, gb = jt.grad(loss, [lin.weight, lin.bias])
    w, b = lin.weight.numpy(), lin.bias.numpy()
    err = (x @ w.T + b - y) * (2 / err_count(y))
    check(gw, err.T @ x, rtol=1e-4, atol=1e-6)
    check(gb, err.sum(0), rtol=1e-4, atol=1e-6)


def err_count(y):
    return y.size


def test_higher_order(ad):
    jt = ad
    x = jt.array([1.0, 2.0, -3.0], "float64")
    y = (x ** 3).sum()
    g = jt.grad(y, x)
    gg = jt.grad(g.sum(), x)
    ggg = jt.grad(gg.sum(), x)
    check(g, 3 * x.numpy() ** 2)
    check(gg, 6 * x.numpy())
    check(ggg, [6.0, 6.0, 6.0])
    a = jt.array(0.7, "float64")
    check(jt.grad(jt.grad(a.sin(), a), a), -np.sin(0.7))


def test_grad_forms_and_seed(ad):
    jt = ad
    x = jt.array([1.0, 2.0])
    assert isinstance(jt.grad((x * x).sum(), x), jt.Var)
    gs = jt.grad((x * x).sum(), [x])
    assert isinstance(gs, list) and len(gs) == 1
    check(jt.grad(x * x, x), [2.0, 4.0])  # a non-scalar loss is summed, as in Jittor
    from kiln.autograd import backward_seeded
    check(backward_seeded(x * x, x, jt.array([10.0, 1.0])), [20.0, 4.0])
    with pytest.raises(TypeError):
        jt.grad(jt.array([1, 2]).sum(), x)


def test_stop_grad_detach_no_grad(ad):
    jt = ad
    x = jt.array([1.0, 2.0, 3.0])
    y = x * 2
    z = (y.detach() * x).sum()
    check(jt.grad(z, x), [2.0, 4.0, 6.0])  # only the direct use of x
    w = x * 3
    w.stop_grad()
    assert w.is_stop_grad()
    check(jt.grad((w * x).sum(), x), [3.0, 6.0, 9.0])
    with jt.no_grad():
        n = x * x
    check(jt.grad((n * x).sum(), x), [1.0, 4.0, 9.0])  # n is a constant here
    check(n, [1.0, 4.0, 9.0])

    @jt.no_grad()
    def f(v):
        return v.exp()
    check(jt.grad((f(x) + x).sum(), x), [1.0, 1.0, 1.0])
    with pytest.warns(jt.KilnWarning, match="stop_grad"):
        g = jt.grad((w * 2).sum(), w)
    check(g, [0.0, 0.0, 0.0])


def test_zero_gradient_warnings(ad):
    jt = ad
    x = jt.array([1.0, 2.0])
    unused = jt.array([5.0])
    with pytest.warns(jt.KilnWarning):
        g = jt.grad((x * x).sum(), unused)
        g.sync()
    check(g, [0.0])
    # A chain of sync points longer than the client keeps definitions
    # for (graph.HISTORY_STEPS): its start is a leaf, gradients are zero.
    from kiln import graph
    loss = (x * x).sum()
    for _ in range(graph.HISTORY_STEPS + 2):
        loss = loss * 1.0
        loss.sync()
    with pytest.warns(jt.KilnWarning) as got:
        g = jt.grad(loss, x)
        g.sync()
    check(g, [0.0, 0.0])
    assert "already computed" in str(got[0].message)
    assert all(w.filename == __file__ for w in got)  # pointing at the user's line


def test_many_backward_passes_split_by_grad_passes(ad):
    jt = ad
    from kiln import graph
    rt = graph.runtime()
    x = jt.array([1.0])
    n = rt.grad_passes + 10
    sizes = []
    orig = rt.conn.submit_step

    def spy(nodes, keep, *rest):
        sizes.append(sum(1 for nd in nodes if nd["op"] == 128))
        return orig(nodes, keep, *rest)
    rt.conn.submit_step = spy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # see test_many_backward_passes_values
            gs = [jt.grad((x * float(k)).sum(), x) for k in range(1, n + 1)]
            jt.sync(gs)
    finally:
        del rt.conn.submit_step
    assert sum(sizes) == n and max(sizes) <= rt.grad_passes


def test_many_backward_passes_values(ad):
    jt = ad
    x = jt.array([1.0])
    gs = [jt.grad((x * float(k)).sum(), x) for k in range(1, 31)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(jt.concat(gs), np.arange(1, 31, dtype=np.float32))


# ---- optimizers with autodiff ----------------------------------------------------------


def test_sgd_step_loss_matches_numpy(ad):
    jt = ad
    x = r(8, 3).astype(np.float32)
    y = r(8, 1).astype(np.float32)
    w0 = r(3, 1).astype(np.float32)
    w = jt.array(w0)
    opt = jt.optim.SGD([w], 0.1, momentum=0.9)
    wn, v = w0.astype(np.float64), np.zeros_like(w0, np.float64)
    for _ in range(3):
        loss = ((jt.array(x) @ w - jt.array(y)) ** 2).mean()
        opt.step(loss)
        g = 2 * x.T @ (x @ wn - y) / 8
        v = 0.9 * v + g
        wn = wn - 0.1 * v
    check(w, wn, rtol=1e-4, atol=1e-6)
    assert opt.n_step == 3


def test_backward_accumulates(ad):
    jt = ad
    w = jt.array([1.0, -1.0])
    opt = jt.optim.SGD([w], 0.5)
    opt.zero_grad()
    opt.backward((w * w).sum())          # 2w
    opt.backward((w * 3).sum())          # + 3
    check(w.opt_grad(opt), [5.0, 1.0])
    opt.step()
    check(w, [-1.5, -1.5])
    opt.backward((w * 2).sum())          # after step: replaced, not added
    check(w.opt_grad(opt), [2.0, 2.0])


def test_adam_trains_a_batchnorm_cnn(ad):
    jt = ad
    jt.seed(3)

    class Net(jt.nn.Module):
        def __init__(self):
            self.conv = jt.nn.Conv2d(1, 4, 3, padding=1)
            self.bn = jt.nn.BatchNorm2d(4)
            self.pool = jt.nn.MaxPool2d(2)
            self.fc = jt.nn.Linear(4 * 4 * 4, 2)

        def execute(self, x):
            x = self.pool(jt.nn.relu(self.bn(self.conv(x))))
            return self.fc(x.reshape(x.shape[0], -1))
    net = Net()
    imgs = np.zeros((16, 1, 8, 8), np.float32)
    labels = np.arange(16) % 2
    imgs[labels == 1, :, :4] = 1.0  # class 1: bright top half
    imgs += rng.normal(0, 0.1, imgs.shape).astype(np.float32)
    opt = jt.optim.Adam(net.parameters(), 0.05)
    rm0 = net.bn.running_mean.numpy()
    losses = []
    for _ in range(15):
        loss = jt.nn.cross_entropy_loss(net(jt.array(imgs)), jt.array(labels))
        opt.step(loss)
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses
    assert not np.allclose(net.bn.running_mean.numpy(), rm0)  # buffers moved, not trained
    net.eval()
    pred = net(jt.array(imgs)).argmax(1)[0].numpy()
    assert (pred == labels).mean() == 1.0


def test_no_warning_in_plain_training(ad):
    jt = ad
    m = jt.nn.Sequential(jt.nn.Linear(2, 4), jt.nn.Tanh(), jt.nn.Linear(4, 1))
    opt = jt.optim.SGD(m.parameters(), 0.1)
    x = jt.array(r(10, 2).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            opt.step(jt.nn.mse_loss(m(x), jt.zeros((10, 1))))
        jt.sync_all()


def test_long_forward_is_not_cut_by_the_flush_threshold(ad):
    jt = ad
    from kiln import graph
    x = jt.array([1.0], "float64")
    jt.grad((x * x).sum(), x).sync()  # gradients are in use in this session
    y = x
    n = graph.FLUSH_NODES // 2 + 100  # two nodes each: past the soft threshold
    for _ in range(n):
        y = y * 1.0001
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = jt.grad(y.sum(), x)
        check(g, [1.0001 ** n], rtol=1e-9)
