"""Errors: raised at the user's line, typed, and naming the op and the line."""
import numpy as np
import pytest

from conftest import Kilnd, run_python


def test_client_side_errors_raise_at_once(jt):
    x = jt.array(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="do not broadcast"):
        x + jt.array(np.zeros((4,), np.float32))
    with pytest.raises(ValueError, match="cannot reshape"):
        x.reshape(4, 2)
    with pytest.raises(IndexError):
        x[5]
    with pytest.raises(TypeError):
        x & x
    with pytest.raises(TypeError):
        jt.array(["a", None])
    with pytest.raises(TypeError):
        x.astype("float16")
    with pytest.raises(TypeError):
        jt.zeros(2, dtype="complex64")
    with pytest.raises(ValueError, match="inner dims"):
        x @ x


def test_daemon_refusal_names_op_and_line(jt):
    from kiln import dtypes, ops
    good = jt.array([1.0, 2.0]) * 2
    i = jt.array([1, 2])
    # Skip the client's own checks to make a node the daemon refuses.
    bad = ops.make("exp", dtypes.int32, (2,), [i]); line = __import__("inspect").currentframe().f_lineno  # noqa: E702,E501
    after = bad + 1
    with pytest.raises(jt.DaemonTypeError) as e:
        after.numpy()
    msg = str(e.value)
    assert "exp" in msg and f"test_errors.py:{line}" in msg
    assert e.value.field.startswith("body.nodes[") and e.value.node >= 0
    # The refusal touched only the bad node and what uses it.
    np.testing.assert_array_equal(good.numpy(), [2.0, 4.0])
    with pytest.raises(jt.DaemonTypeError):
        after.numpy()
    assert (i + 1).tolist() == [2, 3]


def test_grad_without_daemon_autodiff(jt, monkeypatch):
    from kiln import graph
    rt = graph.runtime()
    monkeypatch.setattr(rt, "autodiff", False)  # as a daemon without grad nodes answers
    x = jt.array([1.0])
    with pytest.raises(NotImplementedError, match="autodiff"):
        jt.grad((x * x).sum(), [x])
    y = (x * 2).stop_grad()  # only the flag, no stop_grad node
    assert y.is_stop_grad() and y._node.op == "mul"
    opt = jt.optim.SGD([x], 0.1)
    with pytest.raises(NotImplementedError):
        opt.step((x * x).sum())
    with jt.no_grad():
        assert jt.flags.no_grad == 1
    assert jt.flags.no_grad == 0

    @jt.no_grad()
    def f():
        return jt.flags.no_grad
    assert f() == 1
    jt.flags.use_cuda = 1  # accepted
    jt.flags.use_cuda = 0
    y = x.stop_grad()
    assert y is x and x.is_stop_grad() and not x.detach().requires_grad


def test_exec_error_at_fetch_names_the_line():
    d = Kilnd("--memory-budget", "1M")
    try:
        code = ("import kiln as jt\n"
                "x = jt.zeros(1 << 22)\n"
                "try:\n"
                "    x.numpy()\n"
                "except jt.ExecError as e:\n"
                "    print(e)\n")
        rc, out, err, _ = run_python(code, {"KILN_ADDRESS": d.address})
        assert rc == 0, err
        assert "EXEC" in out and "const" in out and "<string>:2" in out and "quota" in out
    finally:
        d.stop()


def test_small_message_limit_splits_uploads_and_fetches():
    d = Kilnd("--max-message", "64K")
    try:
        code = ("import numpy as np, kiln as jt\n"
                "a = np.arange(100000, dtype=np.float32)\n"
                "x = jt.array(a) * 2\n"
                "got = x.numpy()\n"
                "print(np.array_equal(got, a * 2), jt.connection().limits['message_bytes'])\n")
        rc, out, err, _ = run_python(code, {"KILN_ADDRESS": d.address})
        assert rc == 0, err
        assert out.split() == ["True", "65536"]
    finally:
        d.stop()


def test_numpy_defers_to_vars(jt):
    x = jt.array([1.0, 2.0])
    y = np.float32(2) * x
    z = np.ones(2) + x
    assert isinstance(y, jt.Var) and isinstance(z, jt.Var)
    np.testing.assert_array_equal(y.numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(z.numpy(), [2.0, 3.0])
