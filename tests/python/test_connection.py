"""The connection layer against a real kilnd: requests, replies and typed errors."""
import os
import tempfile
import time

import pytest

from kiln import errors
from kiln.connection import Connection


def test_requests(kilnd):
    c = kilnd.connect()
    assert c.session != 0 and c.proto == 1 and c.server.startswith("kilnd")
    assert c.limits["rank"] == 8 and c.idle_timeout_ms > 0
    c.ping()
    st = c.status()
    assert st["sessions"] >= 1 and st["pid"] == kilnd.proc.pid and not st["draining"]
    dev = st["devices"]  # CUDA devices, or why there are none; NVRTC, or why not
    assert dev["cuda"] or dev["cuda_why"]
    assert dev["nvrtc"] or dev["nvrtc_why"]
    step = c.submit([{"id": 1, "op": 1, "dtype": 6, "shape": [2],
                      "data": bytes.fromhex("0000803f00000040")},
                     {"id": 2, "op": 2, "dtype": 6, "shape": [2], "value": 1.5},
                     {"id": 3, "op": 48, "in": [1, 2]}], [3])
    assert step == 1
    (t,) = c.fetch([3])
    assert (t["id"], t["dtype"], t["shape"]) == (3, 6, (2,))
    assert t["data"] == bytes.fromhex("0000204000006040")  # [2.5, 3.5]
    assert c.release([3, 4]) == (1, 1)
    c.close()
    assert c.closed
    with pytest.raises(errors.ClosedError):
        c.ping()


def test_daemon_errors_are_typed(kilnd):
    with kilnd.connect() as c:
        with pytest.raises(errors.InvalidValueError) as e:
            c.submit([{"id": 1, "op": 200}], [1])
        assert e.value.field == "body.nodes[0].op" and e.value.node == 0
        assert e.value.name == "VALUE" and "op 200" in e.value.message
        with pytest.raises(errors.NotFoundError) as e:
            c.fetch([99])
        assert e.value.field == "body.vars[0]" and e.value.code == errors.NOTFOUND
        with pytest.raises(errors.ProtocolError) as e:
            c.request(4, {"nodes": [], "colour": 1})
        assert e.value.code == errors.FIELD and e.value.field == "body.colour"
        with pytest.raises(errors.ProtocolError) as e:
            c.request(77, {})
        assert e.value.name == "KIND"
        with pytest.raises(errors.ArgumentError):
            c.fetch([1], timeout_ms=600001)


def test_session_ends(kilnd):
    c = kilnd.connect()
    sid = c.session
    c.request(7, {})  # BYE, the session is gone
    with pytest.raises(errors.SessionError) as e:
        c.ping()
    assert e.value.field == "session"
    c.session = sid
    c.close()


def test_exec_error_names_the_node():
    from conftest import Kilnd
    d = Kilnd("--memory-budget", "1M")
    try:
        with d.connect() as c:
            c.submit([{"id": 1, "op": 2, "dtype": 6, "shape": [1 << 22], "value": 1.0}], [1])
            with pytest.raises(errors.ExecError) as e:
                c.fetch([1])
            assert "const" in e.value.message and e.value.node == 0
    finally:
        d.stop()


def test_nothing_listens_fails_at_once():
    d = tempfile.mkdtemp()
    t0 = time.monotonic()
    with pytest.raises(errors.ConnectError) as e:
        Connection(f"ipc://{d}/kilnd.sock")
    assert time.monotonic() - t0 < 2
    assert "no daemon answers" in str(e.value)
    os.rmdir(d)
    with pytest.raises(errors.ArgumentError):
        Connection("bogus://x")


def test_default_address_dir_is_checked(monkeypatch):
    base = tempfile.mkdtemp()
    monkeypatch.setenv("XDG_RUNTIME_DIR", base)
    monkeypatch.delenv("KILN_ADDRESS", raising=False)
    with pytest.raises(errors.ConnectError) as e:
        Connection()
    assert e.value.field == ""  # missing: simply no daemon
    os.mkdir(os.path.join(base, "kiln"))
    os.chmod(os.path.join(base, "kiln"), 0o755)
    with pytest.raises(errors.ConnectError) as e:
        Connection()
    assert e.value.field == "address" and "0755" in str(e.value)
    os.rmdir(os.path.join(base, "kiln"))
    os.symlink("/tmp", os.path.join(base, "kiln"))
    with pytest.raises(errors.ConnectError, match="symbolic link"):
        Connection()
    os.unlink(os.path.join(base, "kiln"))
    os.rmdir(base)


def test_daemon_gone_times_out(kilnd):
    c = kilnd.connect(timeout_ms=500)
    kilnd.proc.kill()
    kilnd.proc.wait()
    t0 = time.monotonic()
    with pytest.raises((errors.TimedOutError, errors.TransportError, errors.ClosedError)):
        c.ping()
    assert time.monotonic() - t0 < 3
    c.close()
