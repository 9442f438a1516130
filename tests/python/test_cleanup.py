"""Clean-up (issue 8): a client that dies without BYE has its session and
tensors released within 2 seconds; one that stays connected keeps them."""
import os
import signal
import subprocess
import sys
import time

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
