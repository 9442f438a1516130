"""Relay ops (matmul, conv2d and their gradients) through a real daemon:
the same client graph run with oneDNN relays, with `--relays off` (the
daemon lowers them to meta-ops) and on the reference interpreter agrees
within float tolerance, and with numpy/float64 references."""
import json

import numpy as np
import pytest

from conftest import run_python

SCRIPT = r"""
import json, numpy as np, kiln as jt
from kiln import nn, graph
rng = np.random.default_rng(7)
out = {}
a = rng.standard_normal((6, 9)).astype(np.float32)
b = rng.standard_normal((9, 5)).astype(np.float32)
A, B = jt.array(a), jt.array(b)
out["mm"] = jt.matmul(A, B).numpy().tolist()
out["mmT"] = nn.matmul_transpose(A, jt.array(b.T.copy())).numpy().tolist()
bat = rng.standard_normal((3, 6, 9)).astype(np.float32)
out["bmm"] = jt.matmul(jt.array(bat), B).numpy().tolist()
x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
X, W = jt.array(x), jt.array(w)
Y = nn.conv2d(X, W, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
out["conv"] = Y.numpy().tolist()
loss = (Y * Y).sum() + (jt.matmul(A, B) ** 2).sum()
gx, gw, ga, gb = jt.grad(loss, [X, W, A, B])
for k, v in (("gx", gx), ("gw", gw), ("ga", ga), ("gb", gb)):
    out[k] = v.numpy().tolist()
st = graph.runtime().conn.status()
out["relays"] = st["jit"].get("relays", {})
print("RESULT" + json.dumps(out))
"""


def run(args):
    rc, so, se, _ = run_python(SCRIPT, env={"KILN_DAEMON_ARGS": args}, timeout=180)
    assert rc == 0, se
    line = [l for l in so.splitlines() if l.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


@pytest.fixture(scope="module")
def runs():
    return {a: run(a) for a in ("", "--relays off", "--executor interp")}


def close(p, q, tol=2e-5):
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    assert p.shape == q.shape
    return np.max(np.abs(p - q)) <= tol * max(1.0, np.max(np.abs(q)))


@pytest.mark.parametrize("key", ["mm", "mmT", "bmm", "conv", "gx", "gw", "ga", "gb"])
def test_paths_agree(runs, key):
    ref = runs["--executor interp"][key]
    assert close(runs[""][key], ref), key
    assert close(runs["--relays off"][key], ref), key


def test_matmul_against_numpy(runs):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((6, 9)).astype(np.float32)
    b = rng.standard_normal((9, 5)).astype(np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64)
    assert close(runs[""]["mm"], want)
    assert close(runs[""]["mmT"], want)
    assert close(runs[""]["ga"], 2 * want @ b.T.astype(np.float64), 1e-4)


def test_status_counts_relays(runs):
    on, off = runs[""]["relays"], runs["--relays off"]["relays"]
    assert on["runs"] > 0  # every matmul and convolution ran as a relay
    if on["library"]:
        assert on["library_runs"] == on["runs"]  # all float32: all in oneDNN
    assert off.get("runs", 0) == 0  # lowered at ingest: no relay node left


def test_bad_conv_attribute_is_a_typed_error(jt):
    from kiln import ops
    x = jt.ones((1, 2, 5, 5))
    w = jt.ones((2, 2, 3, 3))
    y = ops.make("conv2d", x.dtype, (1, 2, 3, 3), [x, w], groups=0)
    from kiln.errors import InvalidValueError
    with pytest.raises(InvalidValueError) as e:
        y.numpy()
    assert e.value.field.endswith("groups"), e.value.field


def test_conv_fields_on_another_op_are_refused(jt):
    from kiln import ops
    from kiln.errors import KilnError
    x = jt.ones((2, 3))
    y = ops.make("reshape", x.dtype, (3, 2), [x], stride=[1, 1])
    with pytest.raises(KilnError) as e:
        y.numpy()
    assert e.value.field.endswith("stride") and e.value.name == "FIELD", (e.value.field, e.value.name)
