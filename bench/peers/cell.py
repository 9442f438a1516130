"""cell.py: one (framework, workload) cell of the peer benchmark, run in
its own process by run.py, so that a crash, a hang or a missing op stays
in its cell.

    python3 cell.py FRAMEWORK WORKLOAD [--budget S] [--iters N]

FRAMEWORK: kiln, torch, jittor, jittor_dnnl, numpy.
WORKLOAD: W1, W2, W3, W4_1024, W4_4096, W5, W6, W7, check_W1.

The last line of stdout is `RESULT {json}`; on failure the process exits
non-zero and run.py reports the last line of its stderr.

Timing: after warm-up (at least 3 runs and WARMUP_S = 4 s, the same for
every framework: long enough for kiln's background cc tier to replace its
first kernels, as it does early in any real training run; 2 runs when a run takes
over a quarter of --budget, 1 when it took over the budget), each
iteration is timed until --iters (default 20) or, for slow cells, until
the --budget seconds are spent (at least 3 timed runs, unless they pass
twice the budget; the result then says n < 20). The figure is the median. Sync, the same kind
for every framework:
- training steps end with loss.item(); kiln and Jittor then also call
  jt.sync_all() (both are lazy: item() makes the loss available, sync_all
  the parameter updates); PyTorch is eager and needs nothing more;
- W3, W4, W5 results stay in the framework's memory: kiln and Jittor call
  jt.sync_all() (kiln: waits for the step without fetching the 64 MiB
  result over the socket), PyTorch/numpy are eager.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

now = time.perf_counter


def import_fw(fw):
    if fw == "kiln":
        import kiln as jt
        return jt
    if fw in ("jittor", "jittor_dnnl"):
        import jittor as jt
        jt.flags.use_cuda = 0
        return jt
    if fw == "torch":
        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        return torch
    if fw == "numpy":
        import numpy
        return numpy
    raise SystemExit(f"unknown framework {fw}")


def sync_fn(fw, jt):
    if fw in ("kiln", "jittor", "jittor_dnnl"):
        return lambda res: jt.sync_all()
    return lambda res: None


WARMUP_S = 4.0


def measure(fn, sync, iters, budget):
    """Warm-up then timed runs; returns (median_s, n, first_s, warmup_n, times).
    Prints a PROGRESS line after the first run, which run.py quotes if the
    cell then times out."""
    t_begin = now()
    first = None
    w = 0
    while True:
        t = now()
        res = fn()
        sync(res)
        dt = now() - t
        del res
        if first is None:
            first = dt
            print("PROGRESS " + json.dumps({"first_s": dt}), flush=True)
        w += 1
        spent = now() - t_begin
        if w >= 3 and spent >= WARMUP_S:
            break
        if w >= 2 and dt > budget / 4:   # slow cell: two warm-ups are enough
            break
        if spent > budget:               # very slow (or compiling): one
            break
    times = []
    t0 = now()
    while len(times) < iters:
        t = now()
        res = fn()
        sync(res)
        times.append(now() - t)
        del res
        spent = now() - t0
        if len(times) >= 3 and spent > budget:
            break
        if spent > 2 * budget:           # steps far over the budget: fewer runs
            break
    return statistics.median(times), len(times), first, w, times


# ---- data ------------------------------------------------------------------

def np_data(wl):
    import numpy as np
    rng = np.random.default_rng(7)
    if wl in ("W1", "W6", "check_W1"):
        x = rng.standard_normal((256, 784), dtype=np.float32)
        y = rng.integers(0, 10, 256).astype(np.int32)
    elif wl == "W2":
        x = rng.standard_normal((64, 3, 32, 32), dtype=np.float32)
        y = rng.integers(0, 10, 64).astype(np.int32)
    elif wl == "W7":
        x = rng.standard_normal((32, 3, 32, 32), dtype=np.float32)
        y = rng.integers(0, 10, 32).astype(np.int32)
    else:
        raise ValueError(wl)
    return x, y


MODEL_OF = {"W1": "MLP", "W6": "MLP", "W2": "SmallCNN", "W7": "ResNet18"}


def to_fw(fw, jt, x, y):
    if fw == "torch":
        return jt.from_numpy(x), jt.from_numpy(y.astype("int64"))
    return jt.array(x), jt.array(y)


def make_step(fw, jt, wl):
    x, y = np_data(wl)
    if fw == "torch":
        import models_torch as mt
        model = mt.MODELS[MODEL_OF[wl]]()
        step = mt.train_step_fn(model)
    else:
        import models_jt
        model = models_jt.make(jt)[MODEL_OF[wl]]()
        step = models_jt.train_step_fn(jt, model)
    xv, yv = to_fw(fw, jt, x, y)
    lazy = fw != "torch"

    def run():
        loss = step(xv, yv)
        v = loss.item()
        if lazy:
            jt.sync_all()
        return v

    return run


# ---- workloads ---------------------------------------------------------------

def w_train(fw, jt, wl, a):
    run = make_step(fw, jt, wl)
    med, n, first, w, _ = measure(run, lambda r: None, a.iters, a.budget)
    return {"value": med * 1e3, "unit": "ms", "n": n, "first_ms": first * 1e3, "warmup": w}


def memcpy_gbs(nbytes, reps=10):
    import numpy as np
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    ts = []
    for _ in range(reps):
        t = now()
        np.copyto(dst, src)
        ts.append(now() - t)
    return 2 * nbytes / statistics.median(ts) / 1e9


def w3(fw, jt, a):
    import numpy as np
    n = 16 * 1024 * 1024
    xs = np.random.default_rng(3).uniform(-2, 2, n).astype(np.float32)
    av, bv = 1.5, 0.5
    if fw == "torch":
        x = jt.from_numpy(xs)
        fn = lambda: jt.sigmoid(x * av + bv) * jt.tanh(x) + x * x
    elif fw == "numpy":
        x = xs
        fn = lambda: 1 / (1 + np.exp(-(x * av + bv))) * np.tanh(x) + x * x
    else:
        x = jt.array(xs)
        jt.sync_all()
        fn = lambda: jt.sigmoid(x * av + bv) * jt.tanh(x) + x * x
    mc_before = memcpy_gbs(n * 4)
    med, k, first, w, _ = measure(fn, sync_fn(fw, jt), a.iters, a.budget)
    mc_after = memcpy_gbs(n * 4)
    mc = max(mc_before, mc_after)
    gbs = 8 * n / med / 1e9
    # spot check of the result against numpy (not timed)
    ref = 1 / (1 + np.exp(-(xs[:4096] * av + bv))) * np.tanh(xs[:4096]) + xs[:4096] ** 2
    y = fn()
    got = np.asarray(y.numpy() if hasattr(y, "numpy") else y)[:4096]
    err = float(np.max(np.abs(got - ref) / (np.abs(ref) + 1e-6)))
    return {"value": gbs, "unit": "GB/s", "n": k, "median_ms": med * 1e3,
            "first_ms": first * 1e3, "memcpy_gbs": mc, "vs_memcpy": gbs / mc,
            "max_rel_err": err}


def w4(fw, jt, a, size):
    import numpy as np
    rng = np.random.default_rng(4)
    an = rng.standard_normal((size, size), dtype=np.float32)
    bn = rng.standard_normal((size, size), dtype=np.float32)
    if fw == "numpy":
        fn = lambda: an @ bn
    elif fw == "torch":
        at, bt = jt.from_numpy(an), jt.from_numpy(bn)
        fn = lambda: jt.matmul(at, bt)
    else:
        av, bv = jt.array(an), jt.array(bn)
        jt.sync_all()
        fn = lambda: jt.matmul(av, bv)
    med, k, first, w, _ = measure(fn, sync_fn(fw, jt), a.iters, a.budget)
    # spot check: a few rows against numpy
    c = fn()
    got = np.asarray(c.numpy() if hasattr(c, "numpy") else c)[:4]
    ref = an[:4] @ bn
    err = float(np.max(np.abs(got - ref)) / (np.max(np.abs(ref)) + 1e-6))
    res = {"value": 2 * size ** 3 / med / 1e9, "unit": "GFLOP/s", "n": k,
           "median_ms": med * 1e3, "first_ms": first * 1e3, "max_rel_err": err}
    if fw == "numpy":
        res["openblas_core"] = openblas_core()
    return res


def openblas_core():
    """The kernel family numpy's OpenBLAS picked (OPENBLAS_CORETYPE or its
    own CPU detection), or None."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            libs = {l.split()[-1] for l in f if "openblas" in l.lower()}
    except OSError:
        return None
    for p in libs:
        for name in ("openblas_get_corename64_", "openblas_get_corename",
                     "scipy_openblas_get_corename64_", "scipy_openblas_get_corename"):
            try:
                fn = getattr(ctypes.CDLL(p), name)
            except (AttributeError, OSError):
                continue
            fn.restype = ctypes.c_char_p
            return fn().decode()
    return None


def w5(fw, jt, a):
    import numpy as np
    xs = np.random.default_rng(5).standard_normal((4096, 4096), dtype=np.float32)
    if fw == "numpy":
        fn = lambda: xs.sum(1)
    elif fw == "torch":
        x = jt.from_numpy(xs)
        fn = lambda: x.sum(1)
    else:
        x = jt.array(xs)
        jt.sync_all()
        fn = lambda: x.sum(1)
    med, k, first, w, _ = measure(fn, sync_fn(fw, jt), a.iters, a.budget)
    r = fn()
    got = np.asarray(r.numpy() if hasattr(r, "numpy") else r)
    err = float(np.max(np.abs(got - xs.sum(1, dtype=np.float64))) / 64.0)
    return {"value": xs.nbytes / med / 1e9, "unit": "GB/s", "n": k, "median_ms": med * 1e3,
            "first_ms": first * 1e3, "max_abs_err_over_64": err}


def w6(fw, t_start):
    """W1's first step in this (fresh) process: the caller imports nothing
    before; run.py prepares the cache (cold or warm) in the environment."""
    t0 = now()
    jt = import_fw(fw)
    if fw in ("jittor", "jittor_dnnl") and os.environ.get("BENCH_JITTOR_OPS_CACHE"):
        # Jittor writes compiled ops to flags.cache_path + "/jit/"; its core
        # (already built) stays where it is.
        d = os.environ["BENCH_JITTOR_OPS_CACHE"]
        os.makedirs(os.path.join(d, "jit"), exist_ok=True)
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        jt.flags.cache_path = d
    t_imp = now()
    run = make_step(fw, jt, "W6")
    t_built = now()
    loss = run()
    t_end = now()
    return {"value": (t_end - t_built) * 1e3, "unit": "ms", "n": 1,
            "import_ms": (t_imp - t0) * 1e3, "build_ms": (t_built - t_imp) * 1e3,
            "import_plus_first_ms": (t_end - t0) * 1e3,
            "process_ms": (t_end - t_start) * 1e3, "loss": loss}


def check_w1(a):
    """kiln vs torch on W1 with identical weights and input: the loss of
    the first step (forward) and of the second (after one SGD-momentum
    update)."""
    import numpy as np
    import torch
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    import kiln as jt
    import models_jt
    import models_torch as mt
    x, y = np_data("W1")
    km = models_jt.make(jt)["MLP"]()
    tm = mt.MLP()
    with torch.no_grad():
        for name in ("fc1", "fc2", "fc3"):
            getattr(tm, name).weight.copy_(torch.from_numpy(getattr(km, name).weight.numpy()))
            getattr(tm, name).bias.copy_(torch.from_numpy(getattr(km, name).bias.numpy()))
    ks = models_jt.train_step_fn(jt, km)
    ts = mt.train_step_fn(tm)
    xk, yk = jt.array(x), jt.array(y)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype("int64"))
    out = {}
    for i in (1, 2, 3):
        lk = ks(xk, yk).item()
        lt = ts(xt, yt).item()
        out[f"step{i}"] = {"kiln": lk, "torch": lt, "rel": abs(lk - lt) / abs(lt)}
    worst = max(v["rel"] for v in out.values())
    return {"value": worst, "unit": "rel", "n": 3, "steps": out, "ok": worst <= 1e-4}


def main():
    t_start = now()
    ap = argparse.ArgumentParser()
    ap.add_argument("fw")
    ap.add_argument("wl")
    ap.add_argument("--budget", type=float, default=20.0)
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args()
    if a.wl == "W6":
        res = w6(a.fw, t_start)
    elif a.wl == "check_W1":
        res = check_w1(a)
    else:
        jt = import_fw(a.fw)
        if a.wl in ("W1", "W2", "W7"):
            res = w_train(a.fw, jt, a.wl, a)
        elif a.wl == "W3":
            res = w3(a.fw, jt, a)
        elif a.wl.startswith("W4_"):
            res = w4(a.fw, jt, a, int(a.wl[3:]))
        elif a.wl == "W5":
            res = w5(a.fw, jt, a)
        else:
            raise SystemExit(f"unknown workload {a.wl}")
    sys.stdout.flush()
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
