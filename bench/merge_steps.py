"""merge_steps.py: training steps per second with and without
cross-iteration fusion (kilnd --look-ahead), in one run.

    python3 bench/merge_steps.py [--kilnd PATH] [--models W1,EW,EV] [--look-ahead 1,2]
                                 [--rounds 7] [--block 16] [--warmup 4]

For each model, one kilnd per look-ahead value is started on its own
private ipc:// socket, and one client process per daemon (the Python
client, `import kiln as jt`) builds the same model from the same seed.
The parent then has the clients take turns: each round, every client runs
one block of --block training steps, submitting each step as soon as it
is built (Runtime.flush) and fetching nothing until the block ends with
jt.sync_all(), so steps queue in the daemon whenever it is behind the
client, which is when merging can happen. Taking turns block by block
lets the noise of a shared machine hit every daemon alike.

Reported per daemon: the median steps/s over the rounds (after --warmup
rounds, which carry the JIT's compiles and let the cc tier replace the
first kernels), the fraction of steps that ran merged (STATUS
steps.merged / steps.done over the timed rounds), the daemon's worker time
per step (STATUS steps.run_ms over steps.done: compute alone, without the
client's time to build and send the steps), and at
the end whether the parameters came out bit for bit the same as with the
first look-ahead (they must: merging never changes results). Ratios are
against the first look-ahead given (1: merging off).

Models:
  W1  bench/peers' MLP 784-512-512-10, batch 256, cross-entropy, SGD with
      momentum (matmul-heavy: merging can only fuse the update with the
      bias and activation work around the matmuls);
  EW  an element-wise model: 6 per-feature scale-and-shift layers with
      tanh (h = tanh(h * a + b), a and b of 2048 features) on a (128, 2048)
      batch, MSE loss, SGD with momentum: every kernel is element-wise or
      a reduce, but the parameters are used broadcast over the batch, so
      the update of step k (at the parameters' shape) still cannot fuse
      into step k+1's kernels (at the batch's shape);
  EV  the same layers on one vector of 65536 (no batch dim): parameters
      are used at their own shape, so the whole of step k+1 fuses with the
      update of step k (STATUS shows half the kernel launches per step).

Benchmarks print figures; they never assert a time.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYDIR = os.path.join(ROOT, "clients", "python")

CLIENT = r"""
import hashlib, json, sys, time
import numpy as np
sys.path.insert(0, %(peers)r)
import kiln as jt
from kiln import graph

model_name = sys.argv[1]
jt.seed(7)
rng = np.random.default_rng(7)
nn = jt.nn

if model_name == "W1":
    import models_jt
    model = models_jt.make(jt)["MLP"]()
    crit = nn.CrossEntropyLoss()
    x = jt.array(rng.standard_normal((256, 784), dtype=np.float32))
    y = jt.array(rng.integers(0, 10, 256).astype(np.int32))
    lr = 0.01
    def loss_of():
        return crit(model(x), y)
else:
    # EW: a batch of 128 rows of 2048 features; EV: one vector of 65536.
    F, shape, L = (2048, (128, 2048), 6) if model_name == "EW" else (65536, (65536,), 6)
    class EW(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = [jt.array(1.0 + 0.01 * rng.standard_normal(F).astype(np.float32))
                      for _ in range(L)]
            self.b = [jt.array(0.01 * rng.standard_normal(F).astype(np.float32))
                      for _ in range(L)]
        def execute(self, h):
            for a, b in zip(self.a, self.b):
                h = jt.tanh(h * a + b)
            return h
    model = EW()
    x = jt.array(rng.standard_normal(shape, dtype=np.float32))
    y = jt.array(0.5 * rng.standard_normal(shape).astype(np.float32))
    lr = 0.1
    def loss_of():
        d = model(x) - y
        return (d * d).mean()

opt = jt.optim.SGD(model.parameters(), lr, momentum=0.9)
rt = graph.runtime()
jt.sync_all()
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "run":
        st0 = rt.conn.status()["steps"]
        t0 = time.perf_counter()
        for _ in range(int(cmd[1])):
            opt.step(loss_of())
            rt.flush()
        jt.sync_all()
        dt = time.perf_counter() - t0
        st1 = rt.conn.status()["steps"]
        print(json.dumps({"s": dt, "done": st1["done"] - st0["done"],
                          "merged": st1["merged"] - st0["merged"],
                          "run_ms": st1["run_ms"] - st0["run_ms"]}), flush=True)
    else:
        h = hashlib.sha256()
        for p in model.parameters():
            h.update(np.ascontiguousarray(p.numpy()).tobytes())
        print(json.dumps({"params": h.hexdigest()}), flush=True)
        break
"""


class Daemon:
    def __init__(self, kilnd, look_ahead):
        self.dir = tempfile.mkdtemp(prefix="kiln-bench-")
        sock = os.path.join(self.dir, "kilnd.sock")
        self.address = "ipc://" + sock
        self.log = open(os.path.join(self.dir, "kilnd.log"), "w")
        self.proc = subprocess.Popen([kilnd, "--listen", self.address, "--log-level", "warn",
                                      "--look-ahead", str(look_ahead)],
                                     stdin=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"kilnd --look-ahead {look_ahead} did not start")
            time.sleep(0.02)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Client:
    def __init__(self, daemon, model):
        env = dict(os.environ, KILN_ADDRESS=daemon.address,
                   PYTHONPATH=PYDIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
        code = CLIENT % {"peers": os.path.join(HERE, "peers")}
        self.proc = subprocess.Popen([sys.executable, "-c", code, model], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit(f"the {model} client did not start")

    def ask(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("a client died")
        return json.loads(line)

    def close(self):
        out = self.ask("params")
        self.proc.stdin.close()
        self.proc.wait(30)
        return out["params"]


def bench_model(a, model, look_aheads):
    daemons, clients = [], []
    try:
        for la in look_aheads:
            daemons.append(Daemon(a.kilnd, la))
            clients.append(Client(daemons[-1], model))
        rates = [[] for _ in look_aheads]
        done = [0] * len(look_aheads)
        merged = [0] * len(look_aheads)
        run_ms = [0] * len(look_aheads)
        for r in range(a.warmup + a.rounds):
            # Alternate who goes first, so neither always follows the other.
            order = range(len(clients)) if r % 2 == 0 else reversed(range(len(clients)))
            for i in order:
                res = clients[i].ask(f"run {a.block}")
                if r >= a.warmup:
                    rates[i].append(a.block / res["s"])
                    done[i] += res["done"]
                    merged[i] += res["merged"]
                    run_ms[i] += res["run_ms"]
        params = [c.close() for c in clients]
    finally:
        for c in clients:
            if c.proc.poll() is None:
                c.proc.kill()
        for d in daemons:
            d.stop()
    rows = []
    for i, la in enumerate(look_aheads):
        med = statistics.median(rates[i])
        rows.append({"model": model, "look_ahead": la, "steps_per_s": med,
                     "min": min(rates[i]), "max": max(rates[i]),
                     "merged_frac": merged[i] / done[i] if done[i] else 0.0,
                     "run_ms_per_step": run_ms[i] / done[i] if done[i] else 0.0,
                     "same_params": params[i] == params[0]})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kilnd", default=os.environ.get("KILN_DAEMON",
                                                      os.path.join(ROOT, "build", "daemon",
                                                                   "kilnd")))
    ap.add_argument("--models", default="W1,EW,EV")
    ap.add_argument("--look-ahead", default="1,2")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--block", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=4)
    a = ap.parse_args()
    if not os.path.exists(a.kilnd):
        raise SystemExit(f"no kilnd at {a.kilnd} (--kilnd or KILN_DAEMON)")
    look_aheads = [int(v) for v in a.look_ahead.split(",")]
    print(f"# {a.rounds} rounds of {a.block} steps per daemon (after {a.warmup} warm-up), "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"{'model':6} {'look-ahead':>10} {'steps/s':>9} {'min':>8} {'max':>8} "
          f"{'merged':>7} {'vs first':>9} {'worker ms/step':>14} {'same bits':>9}")
    for model in a.models.split(","):
        rows = bench_model(a, model, look_aheads)
        for r in rows:
            print(f"{r['model']:6} {r['look_ahead']:>10} {r['steps_per_s']:9.1f} "
                  f"{r['min']:8.1f} {r['max']:8.1f} {100 * r['merged_frac']:6.0f}% "
                  f"{r['steps_per_s'] / rows[0]['steps_per_s']:8.2f}x "
                  f"{r['run_ms_per_step']:14.1f} "
                  f"{'yes' if r['same_params'] else 'NO':>9}", flush=True)
        print("RESULT " + json.dumps(rows), flush=True)


if __name__ == "__main__":
    main()
