"""Many clients (issue 8): the fair scheduler shares the workers by user
weight in kernel time, per-user quotas give QUOTA to that user alone, and
STATUS / `kiln top` show users and sessions to local clients."""
import os
import subprocess
import threading
import time

import pytest

from conftest import ROOT
from test_auth import Daemon, sha, write_config

KILN = os.path.join(ROOT, "build", "clients", "cli", "kiln")


def matmul_step(n, seed, out):
    """A step of fixed cost: one n x n float32 matmul of random data,
    summed; keeps var `out` (ids out+1.. are internal)."""
    return [{"id": out + 1, "op": 4, "dtype": 6, "shape": [n, n], "dist": 1, "seed": seed},
            {"id": out + 2, "op": 104, "in": [out + 1, out + 1]},
            {"id": out, "op": 98, "in": [out + 2], "reduce_op": 1, "dims": [0, 1]}], [out]


def unary_step(op, out):
    """op(random 64) kept as `out`: a kernel of its own for each op."""
    return [{"id": out + 1, "op": 4, "dtype": 6, "shape": [64], "dist": 1, "seed": 1},
            {"id": out, "op": op, "in": [out + 1]}], [out]


def users_conf(tmp_path, users, quota=None):
    conf = {"users": [dict(name=n, token_sha256=sha(n + "-tok"), **extra)
                      for n, extra in users]}
    if quota:
        conf["quota"] = quota
    return write_config(conf)


def status_users(d):
    c = d.connect_to(d.address)
    try:
        return {u["name"]: u for u in c.status()["users"]}
    finally:
        c.close()


def test_host_memory_quota_is_per_user(tmp_path):
    from kiln.errors import QuotaError
    conf = users_conf(tmp_path, [("alice", {"quota": {"host_memory": "1M"}}), ("bob", {})])
    d = Daemon("--config", conf)
    try:
        a = d.connect_to(d.address, token="alice-tok")
        b = d.connect_to(d.address, token="bob-tok")
        big = {"id": 1, "op": 1, "dtype": 6, "shape": [512 * 1024],
               "data": bytes(2 * 1024 * 1024)}
        with pytest.raises(QuotaError) as e:
            a.submit([big], [1])
        assert "host_memory" in str(e.value) and "alice" in str(e.value)
        b.submit([big], [1])  # bob has no quota: the same upload is fine
        assert len(b.fetch([1])[0]["data"]) == 2 * 1024 * 1024
        small = dict(big, id=2, shape=[1024], data=bytes(4096))
        a.submit([small], [2])  # under the quota alice still works
        assert len(a.fetch([2])[0]["data"]) == 4096
        u = status_users(d)
        assert u["alice"]["refused"] >= 1 and u["bob"]["refused"] == 0
        assert u["bob"]["memory"] >= 2 * 1024 * 1024
        a.close()
        b.close()
    finally:
        d.stop()
        os.unlink(conf)


def test_queued_steps_quota_counts_all_sessions_of_a_user(tmp_path):
    from kiln.errors import QuotaError
    conf = users_conf(tmp_path, [("alice", {"quota": {"queued_steps": 3}}), ("bob", {})])
    d = Daemon("--config", conf, "--workers", "1")
    try:
        a1 = d.connect_to(d.address, token="alice-tok")
        a2 = d.connect_to(d.address, token="alice-tok")
        b = d.connect_to(d.address, token="bob-tok")
        a1.submit(*matmul_step(1024, 1, 100))  # slow: the rest queue behind it
        a1.submit(*matmul_step(64, 2, 200))
        a2.submit(*matmul_step(64, 3, 300))
        with pytest.raises(QuotaError) as e:
            a2.submit(*matmul_step(64, 4, 400))
        assert "queued_steps" in str(e.value)
        b.submit(*matmul_step(64, 4, 400))  # another user is not affected
        assert len(b.fetch([400])) == 1
        a1.fetch([100, 200])
        a2.fetch([300])
        a2.submit(*matmul_step(64, 4, 400))  # room again once they ran
        assert len(a2.fetch([400])) == 1
        for c in (a1, a2, b):
            c.close()
    finally:
        d.stop()
        os.unlink(conf)


def test_kernels_quota_stops_new_compiles_only(tmp_path):
    from kiln.errors import QuotaError
    conf = users_conf(tmp_path, [("alice", {"quota": {"kernels": 2}}), ("bob", {})])
    d = Daemon("--config", conf)
    try:
        a = d.connect_to(d.address, token="alice-tok")
        b = d.connect_to(d.address, token="bob-tok")
        # Two kernels of alice's own compile; a third new one is refused.
        a.submit(*unary_step(22, 10))  # sin
        a.fetch([10])
        a.submit(*unary_step(23, 20))  # cos
        a.fetch([20])
        assert status_users(d)["alice"]["kernels"] == 2
        a.submit(*unary_step(24, 30))  # tan: a new kernel
        with pytest.raises(QuotaError) as e:
            a.fetch([30])
        assert "kernels quota" in str(e.value) and "alice" in str(e.value)
        # Kernels already in the cache cost nothing, whoever compiled them.
        a.submit(*unary_step(22, 40))
        assert len(a.fetch([40])) == 1
        b.submit(*unary_step(24, 30))  # bob compiles tan; then alice may use it
        assert len(b.fetch([30])) == 1
        a.submit(*unary_step(24, 50))
        assert len(a.fetch([50])) == 1
        a.close()
        b.close()
    finally:
        d.stop()
        os.unlink(conf)


def test_compile_time_quota(tmp_path):
    from kiln.errors import QuotaError
    conf = users_conf(tmp_path, [("alice", {}), ("bob", {"quota": {}})],
                      quota={"compile_ms_per_minute": 1})  # the default for every user
    d = Daemon("--config", conf)
    try:
        a = d.connect_to(d.address, token="alice-tok")
        ops = [16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31]
        refused = None
        for k, op in enumerate(ops):
            a.submit(*unary_step(op, 10 * (k + 1)))
            try:
                a.fetch([10 * (k + 1)])
            except QuotaError as e:
                refused = e
                break
        assert refused is not None, "16 new kernels compiled within 1 ms of compile time"
        assert "compile_ms_per_minute" in str(refused)
        a.close()
    finally:
        d.stop()
        os.unlink(conf)


def test_bad_quota_is_refused(tmp_path):
    for quota, culprit in (({"host_memory": "lots"}, "users[0].quota.host_memory"),
                           ({"kernels": -1}, "users[0].quota.kernels"),
                           ({"compile_ms_per_minute": 10 ** 9}, "compile_ms_per_minute"),
                           ({"gpus": 1}, "unknown field")):
        conf = users_conf(tmp_path, [("alice", {"quota": quota})])
        p = subprocess.run([os.environ["KILN_DAEMON"], "--config", conf, "--listen",
                            f"ipc://{tmp_path}/k.sock"], capture_output=True, text=True,
                           timeout=20)
        os.unlink(conf)
        assert p.returncode != 0
        assert culprit in p.stderr, p.stderr


def drive(d, token, seconds, n, stop_at, errors):
    """Keep two steps of one session queued until stop_at."""
    try:
        c = d.connect_to(d.address, token=token)
        pending, i = [], 0
        while time.monotonic() < stop_at:
            i += 1
            c.submit(*matmul_step(n, i, 10 * i))
            pending.append(10 * i)
            if len(pending) > 2:
                v = pending.pop(0)
                c.fetch([v])
                c.release([v])
        c.close()
    except Exception as e:  # reported by the test
        errors.append(e)


def run_users(d, sessions, seconds=3.0, n=320):
    errors = []
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=drive, args=(d, tok, seconds, n, stop_at, errors))
               for tok in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return status_users(d)


def test_weights_share_the_workers(tmp_path):
    """Two sessions each for alice (weight 3) and bob (weight 1) on one
    worker: alice's steps get about three times bob's kernel time."""
    conf = users_conf(tmp_path, [("alice", {"weight": 3}), ("bob", {"weight": 1})])
    d = Daemon("--config", conf, "--workers", "1")
    try:
        u = run_users(d, ["alice-tok", "alice-tok", "bob-tok", "bob-tok"])
        ratio = u["alice"]["kernel_ms"] / max(1, u["bob"]["kernel_ms"])
        print("kernel time alice/bob", ratio)
        assert 2.0 <= ratio <= 4.5, u
    finally:
        d.stop()
        os.unlink(conf)


def test_equal_users_get_equal_shares(tmp_path):
    names = ["u0", "u1", "u2", "u3"]
    conf = users_conf(tmp_path, [(n, {}) for n in names])
    d = Daemon("--config", conf, "--workers", "1")
    try:
        # u0 runs two sessions: users, not sessions, get the shares.
        u = run_users(d, ["u0-tok", "u0-tok", "u1-tok", "u2-tok", "u3-tok"])
        x = [u[n]["kernel_ms"] for n in names]
        jain = sum(x) ** 2 / (len(x) * sum(v * v for v in x))
        print("Jain", jain, x)
        assert jain >= 0.95, (jain, x)
    finally:
        d.stop()
        os.unlink(conf)


def test_status_lists_and_kiln_top(tmp_path):
    conf = users_conf(tmp_path, [("alice", {"weight": 2})])
    d = Daemon("--config", conf, "--allow-anonymous", tcp=True)
    try:
        a = d.connect_to(d.address, token="alice-tok")
        a.submit(*matmul_step(64, 1, 10))
        a.fetch([10])
        st = a.status()
        assert st["users_total"] == 1
        alice = st["users"][0]
        assert alice["name"] == "alice" and alice["weight"] == 2 and alice["steps"] == 1
        mine = [s for s in st["session_list"] if s["user"] == "alice"]
        assert len(mine) == 1 and mine[0]["vars"] == 1 and mine[0]["steps"] == 1
        # Remote clients see the counters but not who uses the daemon.
        r = d.connect_to(d.tcp(), token="alice-tok")
        assert "users" not in r.status() and r.status()["sessions"] == 2
        r.close()
        p = subprocess.run([KILN, "--address", d.address, "top", "--count", "2", "--interval",
                            "0.2"], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, KILN_TOKEN="alice-tok"))
        assert p.returncode == 0, p.stderr
        assert p.stdout.count("WEIGHT") == 2 and "alice" in p.stdout
        assert "kiln-python" in p.stdout  # alice's session, by client name
        a.close()
    finally:
        d.stop()
        os.unlink(conf)
