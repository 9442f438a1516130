"""Gradients through vars whose values were already read (graph.py,
"Definitions outlive the SUBMIT"): jt.grad and optimizer.step(loss) after
loss.item() give the same gradients as without it, and the kept
definitions stay bounded over a long training loop."""
import warnings

import numpy as np
import pytest

from test_ops import check

rng = np.random.default_rng(77)


@pytest.fixture(scope="module")
def ad(jt):
    from kiln import graph
    if not graph.runtime().has_autodiff():
        pytest.skip("this kilnd has no autodiff")
    return jt


def r(*shape):
    return rng.normal(size=shape).astype(np.float32)


class Net:
    """A conv + pool + batchnorm + MLP with cross-entropy: masks, gathers,
    reindex, reductions and running statistics in one forward pass."""

    def __init__(self, jt):
        jt.seed(5)
        self.m = jt.nn.Sequential(
            jt.nn.Conv2d(1, 3, 3, padding=1), jt.nn.BatchNorm2d(3), jt.nn.ReLU(),
            jt.nn.MaxPool2d(2), jt.nn.Flatten(), jt.nn.Linear(3 * 4 * 4, 8), jt.nn.Tanh(),
            jt.nn.Linear(8, 3))

    def loss(self, jt, x, y):
        return jt.nn.cross_entropy_loss(self.m(jt.array(x)), jt.array(y))


def grads(jt, net, x, y, read):
    params = [p for p in net.m.parameters() if not p.is_stop_grad()]
    loss = net.loss(jt, x, y)
    if read == "item":
        loss.item()
    elif read == "intermediate":  # an activation read in the middle of the forward pass
        h = net.m[0](jt.array(x))
        h.sync()
        for layer in list(net.m)[1:]:
            h = layer(h)
        loss = jt.nn.cross_entropy_loss(h, jt.array(y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no zero-gradient warning
        gs = jt.grad(loss, params)
        return [g.numpy() for g in gs], loss.item()


@pytest.mark.parametrize("read", ["item", "intermediate"])
def test_grad_after_item_equals_grad_without(ad, read):
    jt = ad
    net = Net(jt)
    x, y = r(6, 1, 8, 8), np.arange(6) % 3
    want, lw = grads(jt, net, x, y, None)
    got, lg = grads(jt, net, x, y, read)
    assert lg == pytest.approx(lw, rel=1e-6)
    assert any(np.abs(g).max() > 0 for g in want)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_grad_after_sync_simple_and_higher_order(ad):
    jt = ad
    x = jt.array([1.0, 2.0, 3.0], "float64")
    y = (x * x * x).sum()
    y.sync()
    g = jt.grad(y, x)
    check(g, [3.0, 12.0, 27.0])
    g.sync()
    # the gradient of an already computed gradient: its graph is cut
    # (grad nodes keep no definition), so ask for both in one go instead
    y2 = (x * x * x).sum()
    y2.sync()
    g2 = jt.grad(y2, x)
    check(jt.grad(g2.sum(), x), [6.0, 12.0, 18.0])
    # two separate jt.grad calls for one read loss share the re-emitted copy
    a = jt.array([2.0])
    b = jt.array([5.0])
    z = (a * b * a).sum()
    z.item()
    check(jt.grad(z, a), [20.0])
    check(jt.grad(z, b), [4.0])


def train(jt, read, x, y, steps=8):
    net = Net(jt)
    opt = jt.optim.Adam(net.m.parameters(), 0.02)
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(steps):
            loss = net.loss(jt, x, y)
            if read:
                losses.append(loss.item())  # printed before the step
            opt.step(loss)
            if not read:
                losses.append(loss.item())
    return losses, [p.numpy() for p in net.m.parameters()]


def test_optimizer_step_after_printing_the_loss_trains(ad):
    jt = ad
    x, y = r(12, 1, 8, 8), np.arange(12) % 3
    la, pa = train(jt, True, x, y)
    lb, pb = train(jt, False, x, y)
    np.testing.assert_allclose(la, lb, rtol=1e-4)
    assert la[-1] < 0.5 * la[0], la
    for a, b in zip(pa, pb):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def counts(rt):
    rt.release_dead(force=True)
    return len(rt.defined), len(rt.kept), rt.conn.status()["memory"]["in_use"]


def test_long_training_loop_keeps_memory_bounded(ad):
    jt = ad
    from kiln import graph
    rt = graph.runtime()
    m = jt.nn.Sequential(jt.nn.Linear(4, 16), jt.nn.ReLU(), jt.nn.Linear(16, 1))
    opt = jt.optim.SGD(m.parameters(), 0.05, momentum=0.9)
    x = r(32, 4)
    y = x.sum(1, keepdims=True)
    seen = {}
    first = None
    for k in range(300):
        loss = jt.nn.mse_loss(m(jt.array(x)), jt.array(y))
        v = loss.item()  # printed every step
        first = v if first is None else first
        opt.step(loss)
        if k in (20, 299):
            seen[k] = counts(rt)
    assert v < 0.1 * first
    (d20, k20, m20), (d299, k299, m299) = seen[20], seen[299]
    assert d299 <= d20 and k299 <= k20, seen
    assert m299 <= m20, seen


def test_accumulator_across_steps_is_bounded(ad):
    jt = ad
    from kiln import graph
    rt = graph.runtime()
    w = jt.array(r(8), "float32")
    total = jt.zeros(())
    sizes = []
    for k in range(4 * graph.HISTORY_STEPS):
        loss = (w * float(k)).sum()
        loss.item()
        total = total + loss  # a chain through every step
        total.sync()
        sizes.append(counts(rt)[:2])
    # The chain is cut every HISTORY_STEPS steps: a saw-tooth, not a ramp.
    h = graph.HISTORY_STEPS
    late = max(d for d, _ in sizes[3 * h:])
    early = max(d for d, _ in sizes[h:2 * h])
    assert late <= early + 2, sizes
    assert max(k for _, k in sizes[3 * h:]) <= max(k for _, k in sizes[h:2 * h]) + 2, sizes


def test_replayed_dropout_uses_the_same_mask(ad):
    jt = ad
    w = jt.array(r(50) + 3.0)
    x = jt.array(r(50))
    h = jt.nn.dropout(x * w, 0.5, is_train=True)
    loss = h.sum()
    loss.item()  # the mask is a random node: replayed with its seed and offset
    g = jt.grad(loss, w).numpy()
    np.testing.assert_allclose(g * w.numpy(), h.numpy(), rtol=1e-5, atol=1e-6)
    assert 0 < (g == 0).sum() < 50


def test_a_list_of_old_losses_holds_no_old_graphs(ad):
    jt = ad
    from kiln import graph
    rt = graph.runtime()
    m = jt.nn.Sequential(jt.nn.Linear(4, 16), jt.nn.ReLU(), jt.nn.Linear(16, 1))
    opt = jt.optim.Adam(m.parameters(), 0.01)
    x = r(32, 4)
    history = []
    seen = {}
    for k in range(60):
        loss = jt.nn.mse_loss(m(jt.array(x)), jt.array(x[:, :1]))
        opt.step(loss)
        loss.item()
        history.append(loss)  # each keeps its value, not its step's graph
        if k in (20, 59):
            seen[k] = counts(rt)
    (d20, k20, _), (d59, k59, _) = seen[20], seen[59]
    assert d59 <= d20 + 2, seen
    assert k59 - k20 <= 39 + 2, seen  # one kept scalar per step
    assert history[0].item() > history[-1].item()
