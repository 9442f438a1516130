"""jt.Module, containers, state dicts, jt.save / jt.load, and jt.init."""
import math
import pickle

import numpy as np
import pytest

from test_ops import check


def make_mlp(jt):
    class MLP(jt.nn.Module):
        def __init__(self):  # no super().__init__(), as Jittor code often does
            self.fc1 = jt.nn.Linear(3, 5)
            self.act = jt.nn.Sigmoid()
            self.fc2 = jt.nn.Linear(5, 2)
            self._hidden = jt.zeros(1)  # names starting with _ are not parameters

        def execute(self, x):
            return self.fc2(self.act(self.fc1(x)))
    return MLP()


def test_parameters_and_names(jt):
    m = make_mlp(jt)
    names = [k for k, _ in m.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert len(m.parameters()) == 4
    assert [k for k, _ in m.named_modules()] == ["", "fc1", "act", "fc2"]
    assert len(m.children()) == 3
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    w1, b1 = m.fc1.weight.numpy(), m.fc1.bias.numpy()
    w2, b2 = m.fc2.weight.numpy(), m.fc2.bias.numpy()
    want = (1 / (1 + np.exp(-(x @ w1.T + b1)))) @ w2.T + b2
    check(m(jt.array(x)), want, rtol=1e-5)
    assert "Linear(3, 5" in repr(m)


def test_forward_or_execute(jt):
    class F(jt.Module):
        def forward(self, x):
            return x * 2

    class E(jt.Module):
        def execute(self, x):
            return x + 1
    x = jt.array([1.0, 2.0])
    check(F()(x), [2.0, 4.0])
    check(E().forward(x), [2.0, 3.0])
    with pytest.raises(NotImplementedError):
        jt.Module()(x)


def test_sequential_and_lists(jt):
    s = jt.nn.Sequential(jt.nn.Linear(2, 3), jt.nn.ReLU(), jt.nn.Linear(3, 1))
    assert list(s.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(s) == 3 and isinstance(s[1], jt.nn.ReLU) and len(s[:2]) == 2
    s.append(jt.nn.Sigmoid())
    assert len(s) == 4
    y = s(jt.ones((5, 2)))
    assert y.shape == [5, 1] and ((y.numpy() > 0) & (y.numpy() < 1)).all()

    class Net(jt.nn.Module):
        def __init__(self):
            self.blocks = jt.nn.ModuleList([jt.nn.Linear(2, 2) for _ in range(2)])
            self.extra = [jt.nn.Linear(2, 1)]
            self.table = {"a": jt.nn.Linear(1, 1)}
    names = list(Net().state_dict())
    assert names[:2] == ["blocks.0.weight", "blocks.0.bias"]
    assert "extra.0.weight" in names and "table.a.bias" in names
    od = jt.nn.Sequential(__import__("collections").OrderedDict(
        [("conv", jt.nn.Conv2d(1, 2, 3)), ("relu", jt.nn.ReLU())]))
    assert list(od.state_dict()) == ["conv.weight", "conv.bias"]


def test_shared_parameters_listed_once(jt):
    lin = jt.nn.Linear(2, 2)
    s = jt.nn.Sequential(lin, lin)
    assert len(s.parameters()) == 2


def test_state_dict_round_trip(jt, tmp_path):
    m1, m2 = make_mlp(jt), make_mlp(jt)
    sd = m1.state_dict()
    assert all(isinstance(v, jt.Var) for v in sd.values())
    w_before = m2.fc1.weight  # the same Var object must be updated in place
    m2.load_state_dict(sd)
    assert m2.fc1.weight is w_before
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # numpy arrays, as made from a PyTorch state_dict with .numpy()
    arrays = {k: np.full(v.shape, 0.5, np.float32) for k, v in sd.items()}
    m2.load_state_dict(arrays)
    check(m2.fc2.bias, [0.5, 0.5])
    with pytest.raises(ValueError):
        m2.load_state_dict({"fc1.weight": np.zeros((2, 2), np.float32)})
    with pytest.warns(UserWarning):
        m2.load_state_dict({"fc1.bias": np.zeros(5, np.float32), "nope": np.zeros(1)})
    with pytest.raises(KeyError):
        m2.load_state_dict({"fc1.bias": np.zeros(5, np.float32)}, strict=True)
    # Module.save / load: a pickle of numpy arrays
    path = tmp_path / "mlp.pkl"
    m1.save(str(path))
    with open(path, "rb") as f:
        raw = pickle.load(f)
    assert set(raw) == set(sd) and all(isinstance(v, np.ndarray) for v in raw.values())
    m3 = make_mlp(jt)
    m3.load(str(path))
    np.testing.assert_array_equal(m3.fc1.weight.numpy(), m1.fc1.weight.numpy())
    assert sd["fc1.weight"].numpy().dtype == np.float32


def test_jt_save_load_trees(jt, tmp_path):
    obj = {"epoch": 3, "w": jt.array([[1.0, 2.0]]), "list": [jt.array([1, 2]), "x"],
           "tuple": (jt.ones(2),)}
    p = tmp_path / "ckpt.pkl"
    jt.save(obj, p)
    back = jt.load(p)
    assert back["epoch"] == 3 and back["list"][1] == "x"
    np.testing.assert_array_equal(back["w"], [[1.0, 2.0]])
    assert back["list"][0].dtype == np.int32 and isinstance(back["tuple"], tuple)
    assert not (tmp_path / "ckpt.pkl.tmp").exists()


def test_train_eval(jt):
    m = jt.nn.Sequential(jt.nn.Linear(2, 2), jt.nn.Dropout(0.5), jt.nn.BatchNorm1d(2))
    assert m[1].is_train is False and m[2].is_train is True  # Jittor's defaults
    m.eval()
    assert not any(x.is_train for x in m.modules()) and not m.training
    m.train()
    assert all(x.is_train for x in m.modules())
    ps = m.parameters()
    assert len(ps) == 6  # running_mean and running_var are parameters too, stop_grad
    assert sum(p.is_stop_grad() for p in ps) == 2
    m.requires_grad_(False)
    assert all(p.is_stop_grad() for p in m.parameters())


def test_make_module(jt):
    Double = jt.make_module(lambda x, k: x * k)
    check(Double(3)(jt.array([1.0])), [3.0])


def test_init(jt):
    jt.seed(5)
    u = jt.init.uniform((400, 50), "float32", -2, 3).numpy()
    assert u.min() >= -2 and u.max() < 3 and abs(u.mean() - 0.5) < 0.05
    g = jt.init.gauss((400, 50), "float32", 1.0, 2.0).numpy()
    assert abs(g.mean() - 1) < 0.05 and abs(g.std() - 2) < 0.05
    check(jt.init.constant((2, 3), "float32", 0.25), np.full((2, 3), 0.25))
    w = jt.init.invariant_uniform((64, 100)).numpy()
    assert np.abs(w).max() <= math.sqrt(1 / 100) + 1e-7
    r = jt.init.relu_invariant_gauss((256, 128, 3, 3), mode="fan_in").numpy()
    assert abs(r.std() - math.sqrt(2 / (128 * 9))) < 0.002
    x = jt.init.xavier_uniform((30, 70)).numpy()
    assert np.abs(x).max() <= math.sqrt(6 / 100) + 1e-7
    v = jt.zeros((50, 60))
    same = v
    jt.init.kaiming_normal_(v, mode="fan_in", nonlinearity="relu")
    assert v is same and abs(v.numpy().std() - math.sqrt(2 / 60)) < 0.02
    jt.init.constant_(v, 3.0)
    assert (v.numpy() == 3).all()
    jt.init.xavier_gauss_(v)
    assert abs(v.numpy().std() - math.sqrt(2 / 110)) < 0.02
    t = jt.init.trunc_normal((20000,), std=1.0, a=-1.0, b=1.5).numpy()
    assert t.min() >= -1.0 and t.max() <= 1.5 and abs(t.mean() - 0.157) < 0.03
    check(jt.init.eye(3), np.eye(3))


def test_erfinv(jt):
    y = np.linspace(-0.999, 0.999, 101)
    import math as m
    got = jt.erfinv(jt.array(y, dtype="float64")).numpy()
    np.testing.assert_allclose([m.erf(v) for v in got], y, rtol=1e-5, atol=1e-6)
