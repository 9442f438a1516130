"""Clean-up (issue 8): a client that dies without BYE has its session and
tensors released within 2 seconds; one that stays connected keeps them."""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import Kilnd, PYDIR

CLIENT = r"""
import os, sys, time, numpy as np
import kiln as jt
x = jt.array(np.ones((256, 1024), np.float32))   # 1 MiB kept in the daemon
y = (x * 2).sum()
print("ready", float(y.item()), flush=True)
if sys.argv[1] == "crash":
    os.kill(os.getpid(), 9)                      # no BYE, no clean-up
time.sleep(60)
"""


def status(d):
    c = d.connect()
    try:
        return c.status()
    finally:
        c.close()


def start_client(d, how):
    env = dict(os.environ, KILN_ADDRESS=d.address, PYTHONPATH=PYDIR)
    p = subprocess.Popen([sys.executable, "-c", CLIENT, how], env=env, stdout=subprocess.PIPE,
                         text=True)
    line = p.stdout.readline()
    assert line.startswith("ready"), line
    return p


def wait_for(pred, seconds):
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def test_crashed_client_is_released_within_two_seconds():
    d = Kilnd()
    try:
        base = status(d)
        for _ in range(3):
            p = start_client(d, "crash")
            p.wait(10)
            t0 = time.monotonic()
            took = wait_for(lambda: status(d)["sessions"] == base["sessions"] and
                            status(d)["memory"]["in_use"] == base["memory"]["in_use"], 5)
            assert took is not None, status(d)
            assert time.monotonic() - t0 <= 2.0 + 0.5, took  # 2 s, and our polling
    finally:
        d.stop()


def test_killed_client_is_released_and_a_live_one_is_kept():
    d = Kilnd()
    try:
        base = status(d)
        live = start_client(d, "stay")
        dead = start_client(d, "stay")
        assert status(d)["sessions"] == base["sessions"] + 2
        dead.send_signal(signal.SIGKILL)
        dead.wait(10)
        assert wait_for(lambda: status(d)["sessions"] == base["sessions"] + 1, 3) is not None
        time.sleep(1.5)  # past the grace: the live, idle client keeps its session
        assert status(d)["sessions"] == base["sessions"] + 1
        assert status(d)["memory"]["in_use"] > base["memory"]["in_use"]
        live.kill()
        live.wait(10)
        assert wait_for(lambda: status(d)["sessions"] == base["sessions"], 3) is not None
        assert status(d)["memory"]["in_use"] == base["memory"]["in_use"]
    finally:
        d.stop()


def test_cancel_drops_queued_steps():
    """Steps queue behind a slow one; CANCEL drops them, their vars fail,
    the running step and later work of the session are unaffected."""
    from kiln.errors import ExecError
    d = Kilnd()
    try:
        c = d.connect()
        n = 1536
        slow = [{"id": 1, "op": 4, "dtype": 6, "shape": [n, n], "dist": 1, "seed": 3}]
        for k in range(2, 8):  # six chained matmuls: the step takes a while
            slow.append({"id": k, "op": 104, "in": [k - 1, 1]})
        slow.append({"id": 20, "op": 98, "in": [7], "reduce_op": 1, "dims": [0, 1]})
        c.submit(slow, [20])
        for k in range(3):  # small steps queued behind it
            c.submit([{"id": 30 + k, "op": 2, "dtype": 6, "shape": [2], "value": float(k)}],
                     [30 + k])
        assert c.cancel() == 3
        assert c.cancel() == 0
        with pytest.raises(ExecError) as e:
            c.fetch([31])
        assert "cancelled" in str(e.value)
        got = c.fetch([20])  # the running step finished normally
        assert len(got) == 1
        c.submit([{"id": 40, "op": 2, "dtype": 6, "shape": [2], "value": 7.0}], [40])
        assert len(c.fetch([40])) == 1
        c.close()
    finally:
        d.stop()
