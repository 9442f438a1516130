"""many_clients.py: kiln as a shared server (issue 8's acceptance figures).

    python3 bench/many_clients.py [--clients 16] [--steps 60] [--json FILE]

One kilnd (its default workers: one per CPU) serves, in one run:
  1. solo:    one client trains the W1 MLP (784-512-512-10, batch 256,
              SGD momentum; bench/peers/models_jt.py) for --steps steps;
  2. crowd:   --clients separate processes train the same model with the
              same seeds at the same time: every one must end with the
              solo run's parameters bit for bit; reported: aggregate steps/s
              against solo, and Jain's fairness index of the clients' step
              rates (1 = all equal);
  3. heavy vs light: a light client (the MLP at batch 64, one step at a
              time) measures its step latency alone, then beside a heavy
              client that keeps 8 large matmul steps queued (equal
              weights): reported, the light client's p50/p99 both ways.
Every client waits at a barrier after two warm-up steps, so process start
and compiles are not timed. A benchmark, not a test: it reports, it does
not assert times (tests/python/test_many_clients.py checks the results).

`client` is the worker mode the script starts itself with.
"""
import argparse
import hashlib
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYDIR = os.path.join(ROOT, "clients", "python")


def client(args):
    """Train the MLP; print `ready`, wait for `go` on stdin, run --steps
    steps, print `RESULT {json}`."""
    sys.path.insert(0, PYDIR)
    sys.path.insert(0, os.path.join(HERE, "peers"))
    import numpy as np
    import kiln as jt
    import models_jt
    jt.seed(args.seed)
    model = models_jt.make(jt)["MLP"]()
    step = models_jt.train_step_fn(jt, model)
    rng = np.random.default_rng(args.seed)
    x = jt.array(rng.standard_normal((args.batch, 784), dtype=np.float32))
    y = jt.array(rng.integers(0, 10, args.batch).astype(np.int32))
    for _ in range(2):
        step(x, y).item()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    lat, losses = [], []
    t0 = time.perf_counter()
    for _ in range(args.steps):
        t = time.perf_counter()
        losses.append(step(x, y).item())
        lat.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - t0
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.numpy().tobytes())
    h.update(b"".join(struct.pack("<d", v) for v in losses))
    print("RESULT " + json.dumps({"elapsed": elapsed, "lat": lat, "hash": h.hexdigest(),
                                  "loss": losses[-1]}), flush=True)
    return 0


class Daemon:
    def __init__(self, kilnd, *flags):
        self.dir = tempfile.mkdtemp(prefix="kiln-many-")
        self.address = "ipc://" + os.path.join(self.dir, "kilnd.sock")
        self.proc = subprocess.Popen([kilnd, "--listen", self.address, "--log-level", "warn",
                                      *flags], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.address[6:]):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("kilnd did not start")
            time.sleep(0.01)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)


def run_clients(address, n, steps, batch, seed=7, timeout=900):
    """n client processes through the barrier; returns their results and
    the wall time from `go` to the last result."""
    env = dict(os.environ, KILN_ADDRESS=address, PYTHONPATH=PYDIR)
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "client", "--steps",
                               str(steps), "--batch", str(batch), "--seed", str(seed)],
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    try:
        for p in procs:
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a client did not start: {line!r}")
        t0 = time.perf_counter()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        out = []
        for p in procs:
            for line in p.stdout:
                if line.startswith("RESULT "):
                    out.append(json.loads(line[7:]))
                    break
            p.wait(timeout)
            if p.returncode != 0 or len(out) < procs.index(p) + 1:
                raise RuntimeError(f"a client failed (exit {p.returncode})")
        return out, time.perf_counter() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def jain(xs):
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs))


def heavy_load(address, stop, n=1024, depth=8):
    """Keep `depth` n x n matmul steps of one session queued until stop."""
    sys.path.insert(0, PYDIR)
    from kiln.connection import Connection
    c = Connection(address)
    pending, i = [], 0
    while not stop.is_set():
        i += 1
        out = 10 * i
        c.submit([{"id": out + 1, "op": 4, "dtype": 6, "shape": [n, n], "dist": 1, "seed": i},
                  {"id": out + 2, "op": 104, "in": [out + 1, out + 1]},
                  {"id": out + 3, "op": 104, "in": [out + 2, out + 1]},
                  {"id": out, "op": 98, "in": [out + 3], "reduce_op": 1, "dims": [0, 1]}],
                 [out])
        pending.append(out)
        if len(pending) >= depth:
            v = pending.pop(0)
            c.fetch([v])
            c.release([v])
    c.cancel()
    c.close()
    return i


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--light-steps", type=int, default=300)
    ap.add_argument("--json")
    ap.add_argument("--kilnd", default=os.environ.get("KILN_DAEMON") or
                    os.path.join(ROOT, "build", "daemon", "kilnd"))
    args = ap.parse_args()
    d = Daemon(args.kilnd)
    res = {"clients": args.clients, "steps": args.steps, "cpus": os.cpu_count(),
           "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "")}
    try:
        solo, t_solo = run_clients(d.address, 1, args.steps, 256)
        crowd, t_crowd = run_clients(d.address, args.clients, args.steps, 256)
        same = sum(r["hash"] == solo[0]["hash"] for r in crowd)
        res["solo_steps_per_s"] = args.steps / solo[0]["elapsed"]
        res["crowd_steps_per_s"] = args.clients * args.steps / t_crowd
        res["throughput_ratio"] = res["crowd_steps_per_s"] / res["solo_steps_per_s"]
        res["jain"] = jain([args.steps / r["elapsed"] for r in crowd])
        res["bit_identical"] = f"{same}/{len(crowd)}"

        light_solo, _ = run_clients(d.address, 1, args.light_steps, 64, seed=11)
        stop = threading.Event()
        heavy_steps = []
        th = threading.Thread(target=lambda: heavy_steps.append(heavy_load(d.address, stop)))
        th.start()
        time.sleep(1.0)
        try:
            light_mixed, _ = run_clients(d.address, 1, args.light_steps, 64, seed=11)
        finally:
            stop.set()
            th.join(120)
        a, b = light_solo[0]["lat"], light_mixed[0]["lat"]
        res["light_p50_ms"] = [1e3 * statistics.median(a), 1e3 * statistics.median(b)]
        res["light_p99_ms"] = [1e3 * pct(a, 0.99), 1e3 * pct(b, 0.99)]
        res["light_p99_ratio"] = pct(b, 0.99) / pct(a, 0.99)
        res["light_identical"] = light_solo[0]["hash"] == light_mixed[0]["hash"]
        res["heavy_steps_submitted"] = heavy_steps[0] if heavy_steps else 0
    finally:
        d.stop()
    print(f"W1 MLP, {args.steps} steps per client, {res['cpus']} CPUs, "
          f"OPENBLAS_CORETYPE={res['OPENBLAS_CORETYPE'] or 'unset'}")
    print(f"{'solo':<34}{res['solo_steps_per_s']:8.1f} steps/s")
    print(f"{str(args.clients) + ' clients at once':<34}{res['crowd_steps_per_s']:8.1f} steps/s"
          f"  ({100 * res['throughput_ratio']:.0f} % of solo; goal >= 90 %)")
    print(f"{'Jain index of client step rates':<34}{res['jain']:8.3f}   (goal >= 0.95)")
    print(f"{'results equal to solo, bit for bit':<34}{res['bit_identical']:>8}")
    print(f"{'light client p50 alone / beside heavy':<34}{res['light_p50_ms'][0]:8.2f} / "
          f"{res['light_p50_ms'][1]:.2f} ms")
    print(f"{'light client p99 alone / beside heavy':<34}{res['light_p99_ms'][0]:8.2f} / "
          f"{res['light_p99_ms'][1]:.2f} ms  ({res['light_p99_ratio']:.2f}x; goal <= 2x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        ap = argparse.ArgumentParser()
        ap.add_argument("mode")
        ap.add_argument("--steps", type=int, required=True)
        ap.add_argument("--batch", type=int, required=True)
        ap.add_argument("--seed", type=int, required=True)
        sys.exit(client(ap.parse_args()))
    sys.exit(main())
