"""Scripts in Jittor's documented style, run with `import kiln as jt`.

Each script is written for Jittor; the test swaps the import line and
runs it, so the API it uses must behave as Jittor's does.
"""
import textwrap

import numpy as np
import pytest


def run(script):
    src = textwrap.dedent(script).replace("import jittor as jt", "import kiln as jt")
    scope = {}
    exec(compile(src, "<jittor script>", "exec"), scope)
    return scope


def test_readme_basics(jt):
    s = run("""
        import jittor as jt
        a = jt.float32([1, 2, 3])
        b = jt.float32([4, 5, 6])
        c = a * b
        text = str(c)
        d = c.sum().item()
        e = jt.array([[1, 2], [3, 4]]).transpose().data
    """)
    assert s["d"] == 32.0 and "4" in s["text"] and "float32" in s["text"]
    np.testing.assert_array_equal(s["e"], [[1, 3], [2, 4]])


def test_hand_written_gradient_descent(jt):
    s = run("""
        import jittor as jt
        import numpy as np
        jt.seed(0)
        n = 64
        x = jt.rand(n, 3)
        w_true = jt.array([[1.0], [-2.0], [0.5]])
        y = x @ w_true + 0.25
        w = jt.zeros((3, 1))
        b = jt.zeros((1,))
        lr = 0.5
        for i in range(200):
            pred = x @ w + b
            err = pred - y
            gw = x.transpose() @ err * (2.0 / n)
            gb = err.mean() * 2.0
            w -= lr * gw
            b -= lr * gb
        loss = ((x @ w + b - y) ** 2).mean().item()
    """)
    assert s["loss"] < 1e-3
    np.testing.assert_allclose(s["w"].numpy().ravel(), [1.0, -2.0, 0.5], atol=0.05)


def test_softmax_and_cross_entropy(jt):
    logits = np.random.default_rng(1).normal(size=(8, 5)).astype(np.float32)
    labels = np.arange(8) % 5
    s = run(f"""
        import jittor as jt
        import numpy as np
        x = jt.array(np.array({logits.tolist()}, dtype=np.float32))
        label = jt.array({labels.tolist()})
        def softmax(x, dim=1):
            m = x.max(dim, keepdims=True)
            e = (x - m).exp()
            return e / e.sum(dim, keepdims=True)
        p = softmax(x)
        onehot = jt.zeros_like(x)
        onehot[jt.arange(x.shape[0]), label] = 1.0
        loss = -(onehot * p.log()).sum(1).mean()
        pred, _ = jt.argmax(p, 1)
        acc = (pred == label).float32().mean().item()
        loss = loss.item()
    """)
    e = np.exp(logits - logits.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    want = -np.log(p[np.arange(8), labels]).mean()
    assert s["loss"] == pytest.approx(want, rel=1e-5)
    assert s["acc"] == pytest.approx((p.argmax(1) == labels).mean())


def test_pooling_and_padding_with_meta_ops(jt):
    img = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    s = run(f"""
        import jittor as jt
        import numpy as np
        x = jt.array(np.array({img.tolist()}, dtype=np.float32))
        N, H, W = x.shape
        padded = x.reindex([N, H + 2, W + 2], ["i0", "i1-1", "i2-1"], overflow_value=0)
        pooled = x.reindex_reduce("maximum", [N, H // 2, W // 2], ["i0", "i1/2", "i2/2"])
        avg = x.reindex([N, H // 2, W // 2, 2, 2], ["i0", "i1*2+i3", "i2*2+i4"]).mean([3, 4])
        flat = jt.flatten(pooled, 1)
        both = jt.concat([flat, flat * 0], dim=1)
    """)
    np.testing.assert_array_equal(s["padded"].numpy(), np.pad(img, ((0, 0), (1, 1), (1, 1))))
    np.testing.assert_array_equal(s["pooled"].numpy(), img.reshape(2, 2, 2, 2, 2).max((2, 4)))
    np.testing.assert_allclose(s["avg"].numpy(), img.reshape(2, 2, 2, 2, 2).mean((2, 4)))
    assert s["both"].shape == [2, 8]


def test_no_grad_and_sync_style(jt):
    s = run("""
        import jittor as jt
        jt.flags.use_cuda = 0
        with jt.no_grad():
            a = jt.ones((3, 3))
            b = (a * 2).stop_grad()
        jt.sync_all()
        jt.sync([a, b])
        c = b.detach() + 1
        total = c.sum().item()
        shape = list(c.shape)
    """)
    assert s["total"] == 27.0 and s["shape"] == [3, 3]
