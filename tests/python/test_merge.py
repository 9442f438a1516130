"""Cross-iteration fusion (issue 8, point 4): queued steps of one session
run as one merged step (kilnd --look-ahead N). Results must be the same
bytes as with merging off (--look-ahead 1), errors the same words, and
STATUS counts the steps that ran merged (steps.merged).

Steps queue only when the daemon is behind the client, so each test first
submits a slow step (chained matmuls) and the steps under test queue
behind it."""
import os
import subprocess
import sys
import time

import pytest

from conftest import Kilnd, PYDIR

F32 = 6
N_SLOW = 1536

# An MLP trained with SGD + momentum from the Python client: every step is
# submitted (runtime().flush()) without fetching anything, so the steps
# queue behind the slow one; at the end the losses and the parameters are
# printed as hex, and STATUS's step counters on stderr.
CLIENT = r"""
import json, sys, numpy as np
import kiln as jt
from kiln import nn, graph

steps = int(sys.argv[1])
jt.seed(7)
rng = np.random.default_rng(7)

class Model(nn.Module):
    def __init__(self):
        self.l1 = nn.Linear(16, 64)
        self.act = nn.Sigmoid()
        self.l2 = nn.Linear(64, 1)
    def execute(self, x):
        return self.l2(self.act(self.l1(x)))

model = Model()
optim = nn.SGD(model.parameters(), 0.05, momentum=0.9)
rt = graph.runtime()
batches = [(rng.standard_normal((32, 16)).astype(np.float32),
            rng.standard_normal((32, 1)).astype(np.float32)) for _ in range(steps)]
jt.sync_all()
h = jt.random((%(n)d, %(n)d))
for _ in range(6):
    h = jt.matmul(h, h) * (1.0 / %(n)d)
slow = h.sum()
rt.flush()
losses = []
for x, y in batches:
    d = model(jt.float32(x)) - jt.float32(y)
    loss = (d * d).mean()
    optim.step(loss)
    losses.append(loss)
    rt.flush()
vals = [l.numpy() for l in losses] + [p.numpy() for p in model.parameters()]
print(json.dumps(rt.conn.status()["steps"]), file=sys.stderr)
print(b"".join(np.ascontiguousarray(v).tobytes() for v in vals).hex())
""" % {"n": N_SLOW}


def train(look_ahead, steps=12):
    d = Kilnd("--look-ahead", str(look_ahead))
    try:
        env = dict(os.environ, KILN_ADDRESS=d.address, PYTHONPATH=PYDIR)
        p = subprocess.run([sys.executable, "-c", CLIENT, str(steps)], env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        import json
        return p.stdout.strip(), json.loads(p.stderr.strip().splitlines()[-1])
    finally:
        d.stop()


def test_merged_training_is_bit_identical():
    base, st1 = train(1)
    assert st1["merged"] == 0
    assert st1["failed"] == 0
    for la in (2, 4):
        got, st = train(la)
        assert got == base, f"--look-ahead {la} changed the results"
        assert st["failed"] == 0
        assert st["done"] == st1["done"]
        assert st["merged"] > 0, st  # the steps queued behind the slow one


def test_look_ahead_flag_is_checked():
    from conftest import kilnd_path
    for bad in ("0", "9", "x", ""):
        p = subprocess.run([kilnd_path(), "--look-ahead", bad], capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 2, (bad, p.stderr)
        assert "--look-ahead" in p.stderr


# ---- raw graphs over one Connection ---------------------------------------------

def slow_step(c, first_id, n=N_SLOW):
    """A step that takes a while (chained matmuls); keeps first_id + 20."""
    g = [{"id": first_id, "op": 4, "dtype": F32, "shape": [n, n], "dist": 1, "seed": 3}]
    for k in range(1, 7):
        g.append({"id": first_id + k, "op": 104, "in": [first_id + k - 1, first_id]})
    g.append({"id": first_id + 20, "op": 98, "in": [first_id + 6], "reduce_op": 1,
              "dims": [0, 1]})
    return c.submit(g, [first_id + 20])


def const(i, value, shape=(4,)):
    return {"id": i, "op": 2, "dtype": F32, "shape": list(shape), "value": float(value)}


def binary(i, op, a, b):
    return {"id": i, "op": {"add": 48, "mul": 50}[op], "in": [a, b]}


def outcome(c, ids):
    """Each var's bytes, or its error class, message and node."""
    from kiln.errors import KilnError
    out = {}
    for i in ids:
        try:
            t = c.fetch([i])[0]
            out[i] = ("ok", bytes(t["data"]), tuple(t["shape"]))
        except KilnError as e:
            out[i] = (type(e).__name__, str(e), e.field, e.node)
    return out


FAIL_SCRIPT_IDS = (100, 110, 120, 130, 140, 150, 160, 170)


def failing_script(c):
    """Steps queued behind a slow one; the second fails (its kept value is
    over the memory quota), a later one reads its failed var."""
    slow_step(c, 1)
    c.submit([const(100, 1.0), const(101, 2.0), binary(102, "add", 100, 101)], [100, 102])
    c.submit([{"id": 110, "op": 4, "dtype": F32, "shape": [4096, 4096], "dist": 2, "seed": 9}],
             [110])                                             # 64 MiB: over the quota
    c.submit([const(119, 3.0), binary(120, "mul", 102, 119)], [120])
    c.submit([const(129, 1.0, (4096, 4096)), binary(130, "add", 110, 129)], [130])  # reads it
    c.submit([binary(140, "add", 120, 102)], [140])
    c.submit([binary(150, "mul", 140, 140)], [150])
    c.submit([binary(160, "add", 150, 120)], [160])
    c.submit([binary(170, "mul", 160, 102)], [170])
    return outcome(c, FAIL_SCRIPT_IDS), c.status()["steps"]


def test_failing_step_inside_a_merge_fails_as_without_merging():
    results = {}
    for la in (1, 2, 4):
        d = Kilnd("--look-ahead", str(la), "--memory-budget", "48M", "--workers", "2")
        try:
            c = d.connect()
            results[la] = failing_script(c)
            c.close()
        finally:
            d.stop()
    base, st1 = results[1]
    assert base[110][0] == "ExecError" and base[130][0] == "ExecError", base
    assert base[170][0] == "ok"
    for la in (2, 4):
        got, st = results[la]
        assert got == base, la
        assert (st["done"], st["failed"]) == (st1["done"], st1["failed"])
        assert st["merged"] > 0, st  # the steps after the failures merged again


def test_cancel_and_session_end_while_a_merged_step_runs():
    """Parts of a running merged step have started: CANCEL leaves them;
    a session that ends while one runs frees everything."""
    d = Kilnd("--look-ahead", "2")
    try:
        probe = d.connect()
        base = probe.status()
        mem0 = base["memory"]["in_use"]
        for end in ("fetch", "bye"):
            c = d.connect()
            slow_step(c, 1)
            slow_step(c, 100)  # these two merge once the first is done
            slow_step(c, 200)
            deadline = time.monotonic() + 60
            while True:
                st = probe.status()["steps"]
                if st["done"] >= base["steps"]["done"] + 1 and st["queued"] == 0:
                    break
                assert time.monotonic() < deadline, st
                time.sleep(0.005)
            if end == "fetch":
                assert c.cancel() == 0
                got = outcome(c, (21, 120, 220))
                assert all(v[0] == "ok" for v in got.values()), got
                c.close()
            else:
                c.close()  # BYE while the merged step runs: it finishes as an orphan
            deadline = time.monotonic() + 60
            while probe.status()["steps"]["running"] != 0:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            base = probe.status()
            assert base["steps"]["merged"] >= 2
        # Everything the ended sessions held was freed; the daemon serves on.
        assert probe.status()["memory"]["in_use"] == mem0
        assert probe.status()["sessions"] == 1
        probe.submit([const(1, 5.0)], [1])
        assert len(probe.fetch([1])) == 1
        probe.close()
    finally:
        d.stop()
    assert d.proc.returncode == 0
