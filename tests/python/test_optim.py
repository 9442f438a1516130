"""Optimizers against hand-computed updates (gradients fed in directly, so
these run with or without the daemon's autodiff), and LR schedulers."""
import math

import numpy as np
import pytest

rng = np.random.default_rng(41)
P0 = rng.normal(size=(3, 2)).astype(np.float32)
GRADS = [rng.normal(size=(3, 2)).astype(np.float32) for _ in range(4)]


def feed(jt, opt, g):
    """What pre_step does after jt.grad: store the gradient, count the step."""
    opt.param_groups[0]["grads"] = [jt.array(g)]
    opt.n_step += 1


def run(jt, make, steps=4):
    p = jt.array(P0)
    opt = make(p)
    for g in GRADS[:steps]:
        feed(jt, opt, g)
        opt.step()
    return p.numpy().astype(np.float64)


@pytest.mark.parametrize("momentum,wd,damp,nesterov", [(0, 0, 0, False), (0.9, 0, 0, False),
                                                       (0.9, 0.01, 0.1, False),
                                                       (0.8, 0.05, 0, True)])
def test_sgd(jt, momentum, wd, damp, nesterov):
    got = run(jt, lambda p: jt.optim.SGD([p], 0.1, momentum, wd, damp, nesterov))
    p, v = P0.astype(np.float64), np.zeros_like(P0, np.float64)
    for g in GRADS:
        dp = p * wd + g
        v = momentum * v + dp * (1 - damp)
        p = p - 0.1 * ((dp + momentum * v) if nesterov else v)
    np.testing.assert_allclose(got, p, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("wd", [0, 0.1])
def test_adam(jt, wd):
    got = run(jt, lambda p: jt.optim.Adam([p], 0.01, weight_decay=wd))
    p = P0.astype(np.float64)
    m, v = np.zeros_like(p), np.zeros_like(p)
    for n, g in enumerate(GRADS, 1):
        g = g + p * wd
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        p = p - m * (0.01 * math.sqrt(1 - 0.999 ** n) / (1 - 0.9 ** n)) / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(got, p, rtol=1e-5, atol=1e-6)


def test_adamw_and_rmsprop(jt):
    got = run(jt, lambda p: jt.optim.AdamW([p], 0.01, weight_decay=0.1))
    p = P0.astype(np.float64)
    m, v = np.zeros_like(p), np.zeros_like(p)
    for n, g in enumerate(GRADS, 1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        c1, c2 = 1 - 0.9 ** n, 1 - 0.999 ** n
        p = p * (1 - 0.01 * 0.1) - m * (0.01 / c1) / (np.sqrt(v) / math.sqrt(c2) + 1e-8)
    np.testing.assert_allclose(got, p, rtol=1e-5, atol=1e-6)
    got = run(jt, lambda p: jt.optim.RMSprop([p], 0.01))
    p, v = P0.astype(np.float64), np.zeros_like(P0, np.float64)
    for g in GRADS:
        v = 0.99 * v + 0.01 * g * g
        p = p - 0.01 * g / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(got, p, rtol=1e-5, atol=1e-6)


def test_param_groups_and_skips(jt):
    a, b = jt.array(P0), jt.array(P0)
    frozen = jt.array(P0).stop_grad()
    ints = jt.array([1, 2])
    opt = jt.optim.SGD([{"params": [a, frozen, ints]}, {"params": [b], "lr": 1.0}], 0.1)
    assert len(opt.param_groups) == 2 and opt.defaults["lr"] == 0.1
    g = np.ones_like(P0)
    opt.param_groups[0]["grads"] = [jt.array(g), jt.array(g), jt.array([0, 0])]
    opt.param_groups[1]["grads"] = [jt.array(g)]
    opt.step()
    np.testing.assert_allclose(a.numpy(), P0 - 0.1, rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), P0 - 1.0, rtol=1e-6)
    np.testing.assert_array_equal(frozen.numpy(), P0)  # stop_grad: skipped
    np.testing.assert_array_equal(ints.numpy(), [1, 2])  # not float: skipped
    assert a.opt_grad(opt) is opt.param_groups[0]["grads"][0]
    with pytest.raises(ValueError):
        jt.optim.SGD([], 0.1)
    with pytest.raises(AttributeError, match="opt_grad"):
        a.grad


def test_clip_grad_norm(jt):
    a = jt.array(np.zeros(4, np.float32))
    opt = jt.optim.SGD([a], 1.0)
    opt.param_groups[0]["grads"] = [jt.array([3.0, 4.0, 0.0, 0.0])]
    opt._zero = False
    opt.clip_grad_norm(1.0)
    np.testing.assert_allclose(opt.param_groups[0]["grads"][0].numpy(), [0.6, 0.8, 0, 0],
                               rtol=1e-5)


def test_optimizer_state_dict(jt):
    p = jt.array(P0)
    opt = jt.optim.Adam([p], 0.01)
    feed(jt, opt, GRADS[0])
    opt.step()
    sd = opt.state_dict()
    assert sd["n_step"] == 1 and isinstance(sd["param_groups"][0]["m"][0], np.ndarray)
    q = jt.array(P0)
    opt2 = jt.optim.Adam([q], 0.5)
    opt2.load_state_dict(sd)
    assert opt2.lr == 0.01 and opt2.n_step == 1
    np.testing.assert_allclose(opt2.param_groups[0]["m"][0].numpy(), 0.1 * GRADS[0], rtol=1e-6)


def test_lr_schedulers(jt):
    p = jt.array(P0)
    opt = jt.optim.SGD([p], 1.0)
    s = jt.lr_scheduler.StepLR(opt, 2, 0.5)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        s.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25] and opt.lr == 0.25
    opt = jt.optim.SGD([p], 1.0)
    s = jt.lr_scheduler.CosineAnnealingLR(opt, 10)
    for _ in range(10):
        s.step()
    assert opt.lr == pytest.approx(0.0, abs=1e-12)
    opt = jt.optim.SGD([p], 2.0)
    s = jt.lr_scheduler.MultiStepLR(opt, [1, 3], 0.1)
    s.step()
    assert opt.lr == pytest.approx(0.2)
    s = jt.lr_scheduler.LambdaLR(opt, lambda e: 1 / (e + 1))
    s.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0)
    s = jt.lr_scheduler.ExponentialLR(jt.optim.SGD([p], 1.0), 0.5)
    s.step()
    assert s.get_last_lr() == [0.5]
