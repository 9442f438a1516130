"""Scripts in Jittor's documented style, run with `import kiln as jt`.

Each script is written for Jittor; the test swaps the import lines
(`import jittor as jt`, `from jittor import nn`) and runs it, so the API
it uses must behave as Jittor's does.
"""
import textwrap

import numpy as np
import pytest


def run(script):
    src = textwrap.dedent(script).replace("import jittor as jt", "import kiln as jt")
    src = src.replace("from jittor import", "from kiln import")  # the import lines only
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


def needs_autodiff(jt):
    from kiln import graph
    if not graph.runtime().has_autodiff():
        pytest.skip("this kilnd has no autodiff")


def test_readme_mlp_training(jt):
    """Jittor's README example, as written there (hidden layer of 10)."""
    needs_autodiff(jt)
    s = run("""
        import jittor as jt
        from jittor import Module
        from jittor import nn
        import numpy as np

        class Model(Module):
            def __init__(self):
                self.layer1 = nn.Linear(1, 10)
                self.relu = nn.Relu()
                self.layer2 = nn.Linear(10, 1)
            def execute (self,x) :
                x = self.layer1(x)
                x = self.relu(x)
                x = self.layer2(x)
                return x

        def get_data(n): # generate random data for training test.
            for i in range(n):
                x = np.random.rand(batch_size, 1)
                y = x*x
                yield jt.float32(x), jt.float32(y)

        np.random.seed(0)
        jt.seed(0)
        learning_rate = 0.1
        batch_size = 50
        n = 300

        model = Model()
        optim = nn.SGD(model.parameters(), learning_rate)
        losses = []
        for i,(x,y) in enumerate(get_data(n)):
            pred_y = model(x)
            dy = pred_y - y
            loss = dy * dy
            loss_mean = loss.mean()
            optim.step(loss_mean)
            losses.append(loss_mean.data.sum())
    """)
    losses = s["losses"]
    assert np.mean(losses[-20:]) < 0.2 * np.mean(losses[:5]), (losses[:5], losses[-20:])


def test_grad_script(jt):
    needs_autodiff(jt)
    s = run("""
        import jittor as jt
        x = jt.array([1.0, 2.0, 3.0])
        y = (x ** 2).sum()
        dx = jt.grad(y, x)
        a = jt.float32(3.0)
        b = a * a * a
        db, = jt.grad(b, [a])
        ddb = jt.grad(jt.grad(a * a * a, a), a)
        vals = (dx.data, db.item(), ddb.item())
    """)
    dx, db, ddb = s["vals"]
    np.testing.assert_allclose(dx, [2.0, 4.0, 6.0])
    assert db == pytest.approx(27.0) and ddb == pytest.approx(18.0)


def test_cnn_classifier_with_checkpoint(jt, tmp_path):
    needs_autodiff(jt)
    s = run(f"""
        import jittor as jt
        from jittor import nn
        import numpy as np

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv(1, 4, 3, padding=1)
                self.bn = nn.BatchNorm(4)
                self.pool = nn.Pool(2, op="maximum")
                self.fc = nn.Linear(4 * 4 * 4, 2)
            def execute(self, x):
                x = self.pool(nn.relu(self.bn(self.conv1(x))))
                x = jt.reshape(x, [x.shape[0], -1])
                return self.fc(x)

        jt.seed(1)
        rng = np.random.RandomState(1)
        imgs = rng.normal(0, 0.2, (32, 1, 8, 8)).astype(np.float32)
        labels = np.arange(32) % 2
        imgs[labels == 1, :, :, :4] += 1.0
        net = Net()
        optimizer = nn.Adam(net.parameters(), lr=0.03)
        for epoch in range(12):
            for b in range(0, 32, 16):
                x = jt.array(imgs[b:b + 16])
                y = jt.array(labels[b:b + 16])
                loss = nn.cross_entropy_loss(net(x), y)
                optimizer.step(loss)
        net.eval()
        pred, _ = jt.argmax(net(jt.array(imgs)), dim=1)
        acc = (pred.numpy() == labels).mean()
        net.save("{tmp_path}/net.pkl")
        net2 = Net()
        net2.load("{tmp_path}/net.pkl")
        net2.eval()
        same = np.allclose(net2(jt.array(imgs)).numpy(), net(jt.array(imgs)).numpy(), atol=1e-5)
    """)
    assert s["acc"] == 1.0 and s["same"]


def test_fetch_and_accumulation_style(jt):
    needs_autodiff(jt)
    s = run("""
        import jittor as jt
        from jittor import nn
        import numpy as np
        jt.seed(2)
        model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        optimizer = nn.SGD(model.parameters(), 0.2, momentum=0.5)
        data = np.random.RandomState(0).uniform(-1, 1, (64, 2)).astype(np.float32)
        target = (data[:, :1] * data[:, 1:]).astype(np.float32)
        log = []
        accumulation_steps = 2
        for i in range(120):
            k = i % 4
            x = jt.array(data[k * 16:(k + 1) * 16])
            y = jt.array(target[k * 16:(k + 1) * 16])
            loss = nn.mse_loss(model(x), y)
            optimizer.backward(loss / accumulation_steps)
            if (i + 1) % accumulation_steps == 0:
                optimizer.step()
            jt.fetch(i, loss, lambda i, l: log.append((i, float(l))))
        jt.sync_all()
    """)
    log = s["log"]
    assert [i for i, _ in log] == list(range(120))
    first = np.mean([v for _, v in log[:8]])
    last = np.mean([v for _, v in log[-8:]])
    assert last < 0.5 * first, (first, last)


def test_train_mlp_example(jt):
    """clients/python/examples/train_mlp.py, the seed's network, for a few steps."""
    needs_autodiff(jt)
    import importlib.util
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "clients", "python", "examples", "train_mlp.py")
    spec = importlib.util.spec_from_file_location("train_mlp", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    losses = mod.main(["--steps", "400", "--every", "50"])
    assert losses[-1] < 0.25 * losses[0], losses
