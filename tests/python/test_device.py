"""Steps that ask for the CUDA device (SUBMIT `device`, jt.flags.use_cuda).

Without a GPU: a `cuda` step runs on the CPU with the same bytes, and a bad
`device` is a typed error. With tests/jit's stand-in driver (fakecuda.c,
a libcuda.so.1 whose device memory is host memory and whose launches run
nothing), the daemon's device path runs for real up to the kernels:
uploads, values kept on the device from step to step, relays on the host
between a download and an upload (so their bytes are the interpreter's),
STATUS's device tier; and a sticky CUDA error fails the step with DEVICE
and makes kilnd exit with status 3 for its supervisor.
"""
import os
import struct

import numpy as np
import pytest

from conftest import Kilnd, ROOT, kilnd_path


def fake_driver_dir():
    d = os.path.join(os.path.dirname(os.path.dirname(kilnd_path())), "tests", "jit")
    if not os.path.exists(os.path.join(d, "libcuda.so.1")):
        pytest.skip("no stand-in CUDA driver in this build (-Dcuda=disabled?)")
    return d


def require_device(c):
    """Skips unless the daemon opened the (stand-in) device: it needs NVRTC."""
    dev = c.status()["devices"]
    if dev.get("cuda_state") != "ready":
        pytest.skip(f"the daemon does not use its CUDA device: {dev.get('nvrtc_why') or dev}")


def matmul_steps(c, a, b, device):
    """Keeps a (id 1) and b (id 2) in one step, then y = a @ b (id 3) in
    another; returns y."""
    c.submit([{"id": 1, "op": 1, "dtype": 6, "shape": list(a.shape), "data": a.tobytes()},
              {"id": 2, "op": 1, "dtype": 6, "shape": list(b.shape), "data": b.tobytes()}],
             [1, 2], device)
    c.submit([{"id": 3, "op": 104, "in": [1, 2]}], [3], device)
    (y,) = c.fetch([3])
    return np.frombuffer(y["data"], dtype=np.float32).reshape(y["shape"])


def test_cuda_step_on_a_cpu_daemon_gives_the_cpu_bytes(kilnd):
    rs = np.random.RandomState(1)
    a = rs.randn(8, 5).astype(np.float32)
    b = rs.randn(5, 3).astype(np.float32)
    c = kilnd.connect()
    y_cuda = matmul_steps(c, a, b, "cuda")
    c.release([1, 2, 3])
    y_cpu = matmul_steps(c, a, b, None)
    assert y_cuda.tobytes() == y_cpu.tobytes()
    np.testing.assert_allclose(y_cpu, a @ b, rtol=1e-5, atol=1e-5)
    tiers = [t["name"] for t in c.status()["memory"].get("tiers", [])]
    assert "cuda" not in tiers
    c.close()


def test_bad_device_is_a_value_error(kilnd):
    from kiln.errors import InvalidValueError, DaemonTypeError
    c = kilnd.connect()
    with pytest.raises(InvalidValueError) as e:
        c.submit([{"id": 1, "op": 2, "dtype": 6, "shape": [2], "value": 1.0}], [1], "tpu")
    assert e.value.field == "body.device"
    with pytest.raises(DaemonTypeError):
        c.request(4, {"nodes": [{"id": 1, "op": 2, "dtype": 6, "shape": [2], "value": 1.0}],
                      "keep": [1], "device": 1})
    with pytest.raises(DaemonTypeError) as e:
        c.request(4, {"nodes": [{"id": 1, "op": 2, "dtype": 6, "shape": [2], "value": 1.0}],
                      "keep": [1], "tf32": "yes"})
    assert e.value.field == "body.tf32"
    c.submit([{"id": 2, "op": 2, "dtype": 6, "shape": [2], "value": 1.0}], [2], "cuda", tf32=True)
    assert list(c.fetch([2])[0]["shape"]) == [2]
    c.close()


def test_use_cuda_flag_without_a_device_trains_the_same(jt):
    assert jt.has_cuda is False

    def losses():
        jt.seed(7)
        lin = jt.nn.Linear(6, 3)
        opt = jt.optim.SGD(lin.parameters(), 0.1)
        x = jt.array(np.arange(24, dtype=np.float32).reshape(4, 6) / 24)
        out = []
        for _ in range(3):
            loss = (lin(x) ** 2).mean()
            opt.step(loss)
            out.append(loss.item())
        return out

    cpu = losses()
    jt.flags.use_cuda = 1
    try:
        cuda = losses()
    finally:
        jt.flags.use_cuda = 0
    assert cpu == cuda


def test_fake_device_path_keeps_values_resident():
    d = Kilnd(env={"LD_LIBRARY_PATH": fake_driver_dir()})
    try:
        c = d.connect()
        require_device(c)
        st = c.status()
        assert st["devices"]["cuda"][0]["name"].startswith("kiln fake CUDA device")
        assert st["memory"]["tiers"][0]["name"] == "cuda"
        rs = np.random.RandomState(2)
        a = rs.randn(40, 30).astype(np.float32)
        b = rs.randn(30, 20).astype(np.float32)
        y = matmul_steps(c, a, b, "cuda")
        np.testing.assert_allclose(y, a @ b, rtol=1e-5, atol=1e-5)
        # Again from the same kept vars: they are on the device already.
        before = c.status()["memory"]["tiers"][0]
        c.submit([{"id": 4, "op": 104, "in": [1, 2]}], [4], "cuda")
        (y2,) = c.fetch([4])
        after = c.status()["memory"]["tiers"][0]
        assert y2["data"] == y.tobytes()
        # a and b are not uploaded again; the one upload is the relay's result
        # coming back from the host (the stand-in has no cuBLAS).
        assert after["restores"] == before["restores"] + 1
        assert after["in_use"] > 0
        c.close()
        # The session's stream was made by its first step's worker and kept
        # for the next; the session's end frees it (off the loop thread) and
        # a new session makes its own.
        c2 = d.connect()
        y3 = matmul_steps(c2, a, b, "cuda")
        assert y3.tobytes() == y.tobytes()
        dev = c2.status()["devices"]
        assert dev["cuda_state"] == "ready"
        assert dev["cuda_steps"] == 5 and dev["cuda_fallbacks"] == 0
        c2.close()
    finally:
        d.stop()
    assert d.proc.returncode == 0


def test_sticky_device_error_fails_the_step_and_exits_3():
    from kiln.errors import DeviceError
    d = Kilnd(env={"LD_LIBRARY_PATH": fake_driver_dir(), "KILN_FAKECUDA_FAIL_LAUNCH": "1"})
    try:
        c = d.connect()
        require_device(c)
        c.submit([{"id": 1, "op": 2, "dtype": 6, "shape": [1000], "value": 0.5},
                  {"id": 2, "op": 25, "in": [1]}], [2], "cuda")  # tanh: a kernel
        with pytest.raises(DeviceError) as e:
            c.fetch([2])
        assert "ILLEGAL_ADDRESS" in str(e.value)
        rc = d.proc.wait(20)
        assert rc == 3
        log = d.proc.stderr.read().decode()
        assert "the CUDA device failed" in log
    finally:
        d.stop()


def test_device_memory_quota_on_the_fake_device(tmp_path):
    """A step whose device buffers would pass its user's device_memory
    quota fails with QUOTA naming it; smaller steps of the same user run."""
    from kiln.errors import QuotaError
    from test_auth import write_config
    conf = write_config({"quota": {"device_memory": "1M"}})
    d = Kilnd("--config", conf, env={"LD_LIBRARY_PATH": fake_driver_dir()})
    try:
        c = d.connect()
        require_device(c)
        rs = np.random.RandomState(3)
        big = rs.randn(512, 512).astype(np.float32)  # 1 MiB each, 3 MiB with the result
        with pytest.raises(QuotaError) as e:
            matmul_steps(c, big, big, "cuda")
        assert "device_memory" in str(e.value)
        c.release([1, 2, 3])
        a = rs.randn(64, 32).astype(np.float32)
        b = rs.randn(32, 16).astype(np.float32)
        np.testing.assert_allclose(matmul_steps(c, a, b, "cuda"), a @ b, rtol=1e-5, atol=1e-5)
        c.close()
    finally:
        d.stop()
        os.unlink(conf)
