"""gpu.py: the GPU benchmark: kiln (through its Python client, steps on the
daemon's CUDA device) against PyTorch eager, in one run. See
bench/README.md, "GPU".

    python3 bench/gpu.py [--deadline 240] [--results bench/RESULTS.md]
    python3 bench/gpu.py --smoke          # tiny shapes; runs without a GPU

Workloads (each (framework, workload) cell is its own process with a
timeout, so a crash or a hang stays in its cell):

- W1: bench/peers' MLP (784-512-512-10) training step, batch 256;
- W7: bench/peers' CIFAR ResNet-18 training step, batch 32, 32x32;
- RN50: bottleneck ResNet-50 training step, ImageNet shapes (224x224,
  1000 classes), batch 64, SGD with momentum (models_gpu_jt.py);
- GAN: DCGAN/LSGAN iteration, 64x64 images, batch 64: one discriminator
  step and one generator step, MSE losses, two Adam optimizers;
- CHAIN: 16 element-wise ops on a 256 MiB float32 tensor (one read and
  one write if fused), against a device-to-device copy of the same bytes.

Same data for both frameworks (numpy arrays from fixed seeds). Timing:
warm-up (at least 3 steps and 3 s: kiln compiles its kernels in its first
steps), then the median of --iters timed steps (fewer if a cell's --budget
seconds run out, at least 3). Every step ends with loss.item(), then
jt.sync_all() for kiln (lazy) or torch.cuda.synchronize() for PyTorch;
CHAIN steps end with the sync alone (the result stays on the device).

Correctness: check_* cells build both models in one process, copy kiln's
initial weights into PyTorch by name (state_dict), and compare the loss of
the first step(s) from the same input. PyTorch runs them with TF32 off so
both sides compute in float32.

--smoke: tiny shapes, 1 warm-up and 2 timed steps each; PyTorch on the CPU
when it sees no CUDA device; kiln still asks for the GPU
(jt.flags.use_cuda = 1), which a daemon without one answers on the CPU.

The table is printed last; --results FILE writes the `gpu` section of that
file (between `<!-- gpu:begin -->` and `<!-- gpu:end -->`, replaced on
each run); --json FILE keeps the raw figures; --table FILE gets the table
alone (tests/gpu/run.sh prints it at the end of its own).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEERS = os.path.join(HERE, "peers")
sys.path.insert(0, PEERS)
import cellproc  # noqa: E402  (bench/peers: one cell in its own process)
PY = sys.executable
now = time.perf_counter

FW_NAME = {"kiln": "kiln", "torch": "PyTorch"}

# Shapes: (full, smoke).
SHAPES = {
    "W1": ({"batch": 256}, {"batch": 32}),
    "W7": ({"batch": 32, "hw": 32}, {"batch": 2, "hw": 16}),
    "RN50": ({"batch": 64, "hw": 224, "classes": 1000}, {"batch": 2, "hw": 32, "classes": 10}),
    "GAN": ({"batch": 64, "nz": 100, "ngf": 64, "ndf": 64},
            {"batch": 2, "nz": 16, "ngf": 8, "ndf": 8}),
    "CHAIN": ({"elements": 64 * 1024 * 1024}, {"elements": 1024 * 1024}),
}
LABEL = {
    "W1": "W1 MLP 784-512-512-10 train step, batch {batch}",
    "W7": "W7 ResNet-18 (CIFAR) train step, batch {batch}, {hw}x{hw}",
    "RN50": "ResNet-50 train step, batch {batch}, {hw}x{hw}, {classes} classes",
    "GAN": "DCGAN/LSGAN D+G step, batch {batch}, 64x64, ngf=ndf={ngf}",
    "CHAIN": "16 element-wise ops, {mib} MiB float32",
}

# Run order: the correctness check of W1 first, then the cheap timed cells,
# the heavy ones, and the other checks last, so that a deadline cuts what
# matters least. Per-cell timeout factors against --timeout. --smoke runs
# the checks of W1 and GAN only (the others take the same path as W1's).
SMOKE_CHECKS = {"check_W1", "check_GAN"}
PLAN = [
    ("check_W1", ["kiln"], 1.0),
    ("W1", ["torch", "kiln"], 1.0),
    ("CHAIN", ["torch", "kiln"], 1.0),
    ("RN50", ["torch", "kiln"], 1.5),
    ("GAN", ["torch", "kiln"], 1.5),
    ("W7", ["torch", "kiln"], 1.5),
    ("check_RN50", ["kiln"], 1.5),
    ("check_GAN", ["kiln"], 1.5),
    ("check_W7", ["kiln"], 1.5),
]
TIMED = ["W1", "W7", "RN50", "GAN", "CHAIN"]
CHECK_TOL = {"W1": 1e-4, "W7": 1e-3, "RN50": 1e-3, "GAN": 1e-3}


def log(msg):
    print(msg, flush=True)


# =========================================================================
# cell side: one (framework, workload) in this process
# =========================================================================

def shape(wl, smoke):
    return dict(SHAPES[wl][1 if smoke else 0])


TF32 = False  # --tf32: set by the cell's arguments


def import_fw(fw, smoke):
    """(module, device, info) for fw; kiln asks for the GPU either way. Both
    compute in full float32 unless --tf32 (then both may use TF32)."""
    if fw == "kiln":
        import kiln as jt
        jt.flags.use_cuda = 1
        jt.flags.allow_tf32 = int(TF32)
        return jt, None, {"has_cuda": kiln_has_cuda(jt)}
    import torch
    torch.backends.cuda.matmul.allow_tf32 = TF32
    torch.backends.cudnn.allow_tf32 = TF32
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        info = {"device": torch.cuda.get_device_name(0)}
    elif smoke:
        dev = torch.device("cpu")
        info = {"device": "cpu (no CUDA device; --smoke)"}
    else:
        raise SystemExit("PyTorch sees no CUDA device (torch.cuda.is_available() is False); "
                         "use --smoke to run on the CPU")
    return torch, dev, info


def kiln_has_cuda(jt):
    """jt.has_cuda as the client reports it: True/False, or None where this
    client does not say."""
    v = getattr(jt, "has_cuda", None)
    if callable(v):
        v = v()
    return None if v is None else bool(v)


def torch_sync(torch, dev):
    if dev.type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def measure(fn, smoke, iters, budget, warmup_s=3.0):
    """Warm-up then timed runs of fn (which ends with its own sync);
    returns (median_s, n, first_s, warmup_n, times)."""
    t_begin = now()
    first = None
    w = 0
    while True:
        t = now()
        fn()
        dt = now() - t
        if first is None:
            first = dt
            print("PROGRESS " + json.dumps({"first_s": dt}), flush=True)
        w += 1
        if smoke:
            break
        spent = now() - t_begin
        if w >= 3 and spent >= warmup_s:
            break
        if w >= 2 and dt > budget / 4:   # slow steps: two warm-ups are enough
            break
    times = []
    t0 = now()
    n = 2 if smoke else iters
    while len(times) < n:
        t = now()
        fn()
        times.append(now() - t)
        spent = now() - t0
        if len(times) >= 3 and spent > budget:
            break
    return statistics.median(times), len(times), first, w, times


def np_data(wl, sh):
    import numpy as np
    rng = np.random.default_rng(11)
    if wl == "W1":
        x = rng.standard_normal((sh["batch"], 784), dtype=np.float32)
        y = rng.integers(0, 10, sh["batch"]).astype(np.int32)
        return x, y
    if wl == "W7":
        x = rng.standard_normal((sh["batch"], 3, sh["hw"], sh["hw"]), dtype=np.float32)
        y = rng.integers(0, 10, sh["batch"]).astype(np.int32)
        return x, y
    if wl == "RN50":
        x = rng.standard_normal((sh["batch"], 3, sh["hw"], sh["hw"]), dtype=np.float32)
        y = rng.integers(0, sh["classes"], sh["batch"]).astype(np.int32)
        return x, y
    if wl == "GAN":
        z = rng.standard_normal((sh["batch"], sh["nz"], 1, 1), dtype=np.float32)
        real = rng.uniform(-1, 1, (sh["batch"], 3, 64, 64)).astype(np.float32)
        return z, real
    raise ValueError(wl)


def build_models(fw, jt, wl, sh):
    """The model(s) of wl for fw and the step function."""
    sys.path.insert(0, PEERS)
    if fw == "torch":
        import models_gpu_torch as mg
        import models_torch as mt
        if wl == "W1":
            m = mt.MLP()
            return [m], mt.train_step_fn(m)
        if wl == "W7":
            m = mt.ResNet18()
            return [m], mt.train_step_fn(m)
        if wl == "RN50":
            m = mg.ResNet50(sh["classes"])
            return [m], mt.train_step_fn(m)
        g, d = mg.Generator(sh["nz"], sh["ngf"]), mg.Discriminator(sh["ndf"])
        return [g, d], mg.gan_step_fn(g, d)
    import models_gpu_jt
    import models_jt
    if wl in ("W1", "W7"):
        m = models_jt.make(jt)["MLP" if wl == "W1" else "ResNet18"]()
        return [m], models_jt.train_step_fn(jt, m)
    mods = models_gpu_jt.make(jt)
    if wl == "RN50":
        m = mods["ResNet50"](sh["classes"])
        return [m], models_jt.train_step_fn(jt, m)
    g, d = mods["Generator"](sh["nz"], sh["ngf"]), mods["Discriminator"](sh["ndf"])
    return [g, d], models_gpu_jt.gan_step_fn(jt, g, d)


def inputs(fw, jt, dev, wl, a, b):
    """The step's arguments in fw's memory (uploaded once)."""
    if fw == "torch":
        torch = jt
        if wl == "GAN":
            n = a.shape[0]
            return (torch.from_numpy(a).to(dev), torch.from_numpy(b).to(dev),
                    torch.ones((n, 1, 1, 1), device=dev), torch.zeros((n, 1, 1, 1), device=dev))
        return torch.from_numpy(a).to(dev), torch.from_numpy(b.astype("int64")).to(dev)
    if wl == "GAN":
        n = a.shape[0]
        return jt.array(a), jt.array(b), jt.ones((n, 1, 1, 1)), jt.zeros((n, 1, 1, 1))
    return jt.array(a), jt.array(b)


def make_train_run(fw, jt, dev, wl, sh, models=None, step=None):
    a, b = np_data(wl, sh)
    if models is None:
        models, step = build_models(fw, jt, wl, sh)
    if fw == "torch":
        for m in models:
            m.to(dev)
    args = inputs(fw, jt, dev, wl, a, b)
    if fw == "torch":
        sync = torch_sync(jt, dev)
    else:
        sync = jt.sync_all
        sync()   # the uploads are not part of a step

    def run():
        out = step(*args)
        if isinstance(out, tuple):          # GAN: (loss_d, loss_g)
            v = [o.item() for o in out]
        else:
            v = out.item()
        sync()
        return v

    return run


def cell_train(fw, wl, a):
    sh = shape(wl, a.smoke)
    jt, dev, info = import_fw(fw, a.smoke)
    run = make_train_run(fw, jt, dev, wl, sh)
    losses = []

    def fn():
        losses.append(run())

    med, n, first, w, times = measure(fn, a.smoke, a.iters, a.budget)
    res = {"value": med * 1e3, "unit": "ms", "n": n, "first_ms": first * 1e3, "warmup": w,
           "min_ms": min(times) * 1e3, "first_loss": losses[0], "last_loss": losses[-1]}
    res.update(info)
    return res


# ---- CHAIN -------------------------------------------------------------------

CHAIN_AB = ((1.5, 0.5), (0.75, -0.25), (1.25, 0.125), (0.5, 0.25))


def chain(x, tanh):
    """16 element-wise ops: 4 x (mul, add, tanh, add)."""
    y = x
    for a, b in CHAIN_AB:
        y = tanh(y * a + b) + x
    return y


def chain_ref(xs):
    import numpy as np
    x = xs.astype(np.float64)
    return chain(x, np.tanh)


def cell_chain(fw, a):
    import numpy as np
    n = shape("CHAIN", a.smoke)["elements"]
    xs = np.random.default_rng(3).uniform(-2, 2, n).astype(np.float32)
    nbytes = xs.nbytes
    jt, dev, info = import_fw(fw, a.smoke)
    res = dict(info)
    if fw == "torch":
        torch = jt
        x = torch.from_numpy(xs).to(dev)
        sync = torch_sync(torch, dev)
        keep = []

        def fn():
            keep[:] = [chain(x, torch.tanh)]
            sync()

        # The copy's ceiling on the same device: a device-to-device copy_
        # of the same bytes, bytes read + written over its time.
        dst = torch.empty_like(x)
        copies = []

        def cp():
            t = now()
            dst.copy_(x)
            sync()
            copies.append(now() - t)

        for _ in range(3):
            cp()
        copies.clear()
        for _ in range(3 if a.smoke else 30):
            cp()
        res["memcpy_gbs"] = 2 * nbytes / statistics.median(copies) / 1e9
        del dst
        get = lambda: keep[0][:4096].cpu().numpy()   # noqa: E731
    else:
        x = jt.array(xs)
        jt.sync_all()
        keep = []

        def fn():
            keep[:] = [chain(x, jt.tanh)]
            jt.sync_all()

        get = lambda: keep[0][:4096].numpy()   # noqa: E731
    med, k, first, w, times = measure(fn, a.smoke, a.iters, a.budget)
    got = np.asarray(get(), dtype=np.float64)
    ref = chain_ref(xs[:4096])
    err = float(np.max(np.abs(got - ref) / (np.abs(ref) + 1e-6)))
    res.update({"value": 2 * nbytes / med / 1e9, "unit": "GB/s", "n": k,
                "median_ms": med * 1e3, "first_ms": first * 1e3, "warmup": w,
                "bytes": 2 * nbytes, "max_rel_err": err})
    return res


# ---- correctness -------------------------------------------------------------

def cell_check(wl, a):
    """kiln and PyTorch from identical weights (kiln's, copied by name) and
    input: the losses of the first steps."""
    import numpy as np
    import torch
    sh = shape(wl, a.smoke)
    jt, _, info = import_fw("kiln", a.smoke)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type != "cuda" and not a.smoke:
        raise SystemExit("PyTorch sees no CUDA device")
    # float32 on both sides: no TF32 in PyTorch's matmuls and convolutions.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    kms, kstep = build_models("kiln", jt, wl, sh)
    tms, tstep = build_models("torch", torch, wl, sh)
    copied = 0
    for km, tm in zip(kms, tms):
        ksd = {k: v.numpy() for k, v in km.state_dict().items()}
        tsd = tm.state_dict()
        missing = []
        for k, v in tsd.items():
            if k.endswith("num_batches_tracked"):
                continue
            if k not in ksd or tuple(ksd[k].shape) != tuple(v.shape):
                missing.append(k)
                continue
            with torch.no_grad():
                v.copy_(torch.from_numpy(np.ascontiguousarray(ksd[k])))
            copied += 1
        if missing:
            raise SystemExit(f"{wl}: PyTorch weights with no kiln twin: {missing[:5]}")
    krun = make_train_run("kiln", jt, None, wl, sh, kms, kstep)
    trun = make_train_run("torch", torch, dev, wl, sh, tms, tstep)
    steps = 3 if wl == "W1" else 1
    out = {}
    worst = 0.0
    for i in range(1, steps + 1):
        lk, lt = krun(), trun()
        lk = lk if isinstance(lk, list) else [lk]
        lt = lt if isinstance(lt, list) else [lt]
        rel = [abs(x - y) / max(abs(y), 1e-12) for x, y in zip(lk, lt)]
        out[f"step{i}"] = {"kiln": lk, "torch": lt, "rel": rel}
        worst = max([worst] + rel)
    tol = CHECK_TOL[wl]
    res = {"value": worst, "unit": "rel", "n": steps, "steps": out, "ok": worst <= tol,
           "tol": tol, "tensors": copied, "torch_device": str(dev)}
    res.update(info)
    return res


def cell_main(a):
    global TF32
    TF32 = bool(a.tf32)
    wl = a.cell_wl
    if wl.startswith("check_"):
        res = cell_check(wl[6:], a)
    elif wl == "CHAIN":
        res = cell_chain(a.cell_fw, a)
    elif wl in SHAPES:
        res = cell_train(a.cell_fw, wl, a)
    else:
        raise SystemExit(f"unknown workload {wl}")
    if a.cell_fw == "kiln" and not wl.startswith("check_"):
        res.update(kiln_device_counts())
    sys.stdout.flush()
    print("RESULT " + json.dumps(res), flush=True)


def kiln_device_counts():
    """Where the daemon ran this cell's steps (STATUS devices): steps on the
    CUDA device, steps that asked for it and fell back to the CPU, and the
    device's state."""
    import kiln as jt
    try:
        d = jt.connection().status().get("devices", {})
    except jt.KilnError as e:
        return {"cuda_state": f"STATUS failed: {e}"}
    return {"cuda_state": d.get("cuda_state", ""), "cuda_steps": d.get("cuda_steps", 0),
            "cuda_fallbacks": d.get("cuda_fallbacks", 0)}


# =========================================================================
# driver side
# =========================================================================

def find_kilnd(arg):
    for p in (arg, os.environ.get("KILN_DAEMON"),
              os.path.join(REPO, "build-gpu", "daemon", "kilnd"),
              os.path.join(REPO, "build", "daemon", "kilnd")):
        if p and os.access(p, os.X_OK):
            return os.path.abspath(p)
    return None


def probe(code, env, timeout=120):
    return cellproc.probe(PY, code, env, timeout)


TORCH_PROBE = r"""
import json, torch
d = {"torch": torch.__version__, "cuda": torch.version.cuda,
     "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
     "available": torch.cuda.is_available(),
     "cudnn_benchmark": torch.backends.cudnn.benchmark,
     "cudnn_tf32": torch.backends.cudnn.allow_tf32,
     "matmul_tf32": torch.backends.cuda.matmul.allow_tf32}
if d["available"]:
    p = torch.cuda.get_device_properties(0)
    d.update(card=torch.cuda.get_device_name(0), sms=p.multi_processor_count,
             mem_gib=round(p.total_memory / 2**30, 1))
print(json.dumps(d))
"""


def driver_version():
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=30)
        return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return None


def git_rev():
    try:
        r = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode == 0:
            return r.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    m = os.path.join(REPO, ".gpu-carry", "MANIFEST")   # packed by tests/gpu/pack.sh
    try:
        for line in open(m):
            if line.startswith("commit:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def run_cell(fw, wl, env, timeout, a):
    argv = [PY, os.path.abspath(__file__), "--cell", fw, wl, "--iters", str(a.iters),
            "--budget", str(a.budget)] + (["--smoke"] if a.smoke else []) + \
        (["--tf32"] if a.tf32 else [])
    return cellproc.run(argv, env, HERE, timeout, first_may_hang=wl.startswith("check_"))


def fmt(v):
    if v is None:
        return "—"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fig(results, wl, fw, field="value"):
    r = results.get(wl, {}).get(fw)
    if not r or "error" in r:
        return None
    v = r.get(field)
    return float(v) if isinstance(v, (int, float)) else None


def cell_text(results, wl, fw, field="value"):
    r = results.get(wl, {}).get(fw)
    if r is None:
        return "not run"
    if "error" in r:
        e = r["error"]
        for k in ("skipped", "timeout", "missing"):
            if e.startswith(k):
                return k + "¹"
        return "error¹"
    t = fmt(fig(results, wl, fw, field))
    if field == "value" and r.get("n") is not None and r["n"] < (2 if SMOKE else 20):
        t += f" (n={r['n']})"
    return t


SMOKE = False


def kiln_device(results):
    """What kiln ran on, from jt.has_cuda in its cells."""
    seen = {r.get("has_cuda", "absent") for row in results.values()
            for fw, r in row.items() if fw == "kiln" and "error" not in r}
    if not seen:
        return "an unknown device (no kiln cell finished)"
    if seen == {True}:
        steps = sum(r.get("cuda_steps", 0) for row in results.values()
                    for fw, r in row.items() if fw == "kiln" and "error" not in r)
        falls = sum(r.get("cuda_fallbacks", 0) for row in results.values()
                    for fw, r in row.items() if fw == "kiln" and "error" not in r)
        return (f"the daemon's CUDA device (jt.has_cuda is True; {steps} steps ran there, "
                f"{falls} fell back to the CPU)")
    if seen == {False}:
        return ("the CPU (jt.has_cuda is False: the daemon has no CUDA device, so the steps "
                "fell back)")
    if seen == {None}:
        return ("a device this client does not report (it has no jt.has_cuda; the steps asked "
                "for the GPU with jt.flags.use_cuda = 1)")
    return f"mixed across cells (jt.has_cuda: {sorted(map(str, seen))})"


def table(results, smoke):
    """The short table: one row per workload."""
    L = ["| workload | unit | kiln | PyTorch | kiln/PyTorch throughput |",
         "|---|---|---|---|---|"]
    for wl in TIMED:
        if wl not in results:
            continue
        sh = shape(wl, smoke)
        if wl == "CHAIN":
            sh["mib"] = sh["elements"] * 4 // 2**20
        label = LABEL[wl].format(**sh)
        k, t = fig(results, wl, "kiln"), fig(results, wl, "torch")
        if wl == "CHAIN":
            ratio = f"{k / t:.2f}×" if k and t else ""
            L.append(f"| {label} | GB/s | {cell_text(results, wl, 'kiln')} | "
                     f"{cell_text(results, wl, 'torch')} | {ratio} |")
            mc = fig(results, wl, "torch", "memcpy_gbs")
            pk = f"{100 * k / mc:.0f} %" if k and mc else "—"
            pt = f"{100 * t / mc:.0f} %" if t and mc else "—"
            L.append(f"| CHAIN as % of device copy ({fmt(mc)} GB/s, PyTorch `copy_`) | % | {pk} "
                     f"| {pt} | |")
        else:
            ratio = f"{t / k:.2f}×" if k and t else ""
            L.append(f"| {label} | ms/step | {cell_text(results, wl, 'kiln')} | "
                     f"{cell_text(results, wl, 'torch')} | {ratio} |")
    return "\n".join(L)


def check_lines(results):
    L = []
    for key in ("check_W1", "check_W7", "check_RN50", "check_GAN"):
        r = results.get(key, {}).get("kiln")
        if r is None:
            continue
        wl = key[6:]
        if "error" in r:
            L.append(f"- {wl}: could not run — {r['error']}")
            continue
        steps = "; ".join(
            f"{s}: kiln {', '.join(f'{x:.6f}' for x in v['kiln'])}, PyTorch "
            f"{', '.join(f'{x:.6f}' for x in v['torch'])} (rel "
            f"{', '.join(f'{x:.1e}' for x in v['rel'])})" for s, v in r["steps"].items())
        what = "losses (D, G)" if wl == "GAN" else "loss"
        L.append(f"- {wl}: {'OK' if r['ok'] else 'MISMATCH'} at {r['tol']:g} relative "
                 f"({r['tensors']} tensors copied, PyTorch on {r['torch_device']}, {what} "
                 f"of the first step{'s' if r['n'] > 1 else ''}) — {steps}")
    return L


def render(results, meta, smoke):
    L = [f"## gpu — {meta['date']}" + (" (--smoke: tiny shapes, not figures)" if smoke else ""),
         "",
         "Generated by `python3 bench/gpu.py` (tests/gpu/run.sh on the GPU machine); do not "
         "edit by hand.",
         "",
         f"- Card: {meta['card']}; driver {meta['driver'] or '?'}; {meta['host']}.",
         f"- Versions: {meta['versions']}.",
         f"- kiln: kilnd {meta['kilnd']} ({meta['buildtype']}), commit {meta['commit']}; "
         f"steps ran on {kiln_device(results)}.",
         f"- PyTorch: eager, default settings ({meta['torch_settings']}).",
         "- Method: each (framework, workload) cell in its own process; "
         + ("1 warm-up step, then the median of 2 timed steps"
            if smoke else
            f"warm-up ≥ 3 steps and ≥ 3 s (kiln compiles its kernels then), then the median "
            f"of {meta['iters']} timed steps (fewer, marked n=…, where a cell's "
            f"{meta['budget']:g} s budget ran out)")
         + "; every step ends with `loss.item()` and `jt.sync_all()` (kiln) or "
         "`torch.cuda.synchronize()` (PyTorch); CHAIN ends with the sync alone. Same input "
         "data for both (fixed seeds). CHAIN GB/s count one read and one write of the "
         "tensor (what a fused kernel moves), for PyTorch's 16 kernels too.",
         f"- Total run time {meta['total_s']:.0f} s (deadline {meta['deadline']:g} s).",
         "",
         table(results, smoke),
         "",
         "kiln/PyTorch throughput: PyTorch's step time over kiln's (for CHAIN: kiln's GB/s over "
         "PyTorch's); above 1 means kiln is faster.",
         ""]
    ck = check_lines(results)
    if ck:
        L += ["Correctness (kiln's initial weights copied into PyTorch by name, same input, "
              "PyTorch with TF32 off):", ""] + ck + [""]
    ch = results.get("CHAIN", {})
    errs = [f"CHAIN {FW_NAME[fw]}: max relative error {r['max_rel_err']:.1e} over 4,096 "
            f"elements against float64" for fw, r in ch.items() if "max_rel_err" in r]
    if errs:
        L += ["Spot checks: " + "; ".join(errs) + ".", ""]
    bad = [(wl, fw, r) for wl, row in results.items() for fw, r in row.items() if "error" in r]
    if bad:
        L += ["¹ Errors, timeouts and skipped cells:", ""]
        for wl, fw, r in bad:
            L.append(f"- {wl} / {FW_NAME[fw]}: " + r["error"].replace("|", "\\|")
                     .replace("\n", " "))
        L.append("")
    warns = sorted({w for row in results.values() for r in row.values()
                    for w in r.get("warnings", [])})
    if warns:
        L += ["Warnings from the cells:", ""] + [f"- `{w[:200]}`" for w in warns[:6]] + [""]
    return "\n".join(L)


def write_section(path, text):
    begin, end = "<!-- gpu:begin -->", "<!-- gpu:end -->"
    old = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    block = f"{begin}\n{text}\n{end}"
    if begin in old and end in old:
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(new)


def main():
    global SMOKE
    ap = argparse.ArgumentParser(description="kiln against PyTorch eager on the GPU")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny shapes, 1 warm-up + 2 timed steps; runs without a GPU")
    ap.add_argument("--deadline", type=float, default=240.0,
                    help="seconds for the whole run; cells left then are skipped")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds per cell (RN50, GAN, W7 and their checks: 1.5×)")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--tf32", action="store_true",
                    help="timed cells of both frameworks may use TF32 (default: full float32 "
                         "on both: PyTorch's allow_tf32 flags off, kiln's allow_tf32 0)")
    ap.add_argument("--budget", type=float, default=8.0,
                    help="seconds of timed steps per cell before a slow cell stops (≥ 3)")
    ap.add_argument("--only", default="", help="comma-separated workloads (W1,W7,RN50,GAN,"
                    "CHAIN; check_W1 ... for the correctness cells)")
    ap.add_argument("--results", default="", help="write the gpu section of this file")
    ap.add_argument("--json", default="", help="also write the raw results here")
    ap.add_argument("--table", default="", help="also write the short table here")
    ap.add_argument("--kilnd", default="", help="kilnd binary (default: $KILN_DAEMON, "
                    "build-gpu/ or build/)")
    ap.add_argument("--cell", nargs=2, metavar=("FW", "WL"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    SMOKE = a.smoke
    if a.cell:
        a.cell_fw, a.cell_wl = a.cell
        return cell_main(a)

    t_run = time.monotonic()
    run_dir = tempfile.mkdtemp(prefix="kiln-gpubench-")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(REPO, "clients", "python"), HERE, PEERS]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("KILN_ADDRESS", None)   # always a private embedded daemon
    kilnd = find_kilnd(a.kilnd)
    if kilnd:
        env["KILN_DAEMON"] = kilnd
    # One kernel cache for every kiln cell of this run (as a training job
    # would keep its own): later cells reuse what earlier ones compiled.
    cache = os.path.join(run_dir, "kiln-cache")
    os.makedirs(cache)
    env["KILN_DAEMON_ARGS"] = (env.get("KILN_DAEMON_ARGS", "") + f" --cache-dir {cache}").strip()
    env["XDG_CACHE_HOME"] = run_dir
    env.setdefault("KILN_START_TIMEOUT", "60")
    env["TMPDIR"] = run_dir
    if a.smoke:
        env.setdefault("OMP_NUM_THREADS", "2")

    ok, out = probe(TORCH_PROBE, env)
    tinfo = json.loads(out) if ok else {}
    missing = {}
    if not ok:
        missing["torch"] = f"missing: PyTorch does not import ({out})"
    elif not tinfo.get("available") and not a.smoke:
        missing["torch"] = "missing: PyTorch sees no CUDA device (use --smoke without a GPU)"
    okk, kout = probe("import numpy, msgpack, kiln; print(kiln.__version__)", env)
    if not kilnd:
        missing["kiln"] = "missing: no kilnd (--kilnd, KILN_DAEMON, build-gpu/ or build/)"
    elif not okk:
        missing["kiln"] = f"missing: the kiln client does not import ({kout})"
    if "torch" in missing:   # the checks need both
        missing["kiln_check"] = missing["torch"]
    log(f"gpu: card {tinfo.get('card', 'none (CPU)')}, torch {tinfo.get('torch', '-')}, "
        f"kilnd {kilnd or 'none'}, deadline {a.deadline:g} s" + (" (smoke)" if a.smoke else ""))

    only = {x for x in a.only.split(",") if x}
    results = {}
    for wl, fws, factor in PLAN:
        if only and wl not in only and not (wl.startswith("check_") and "check" in only):
            continue
        if a.smoke and wl.startswith("check_") and wl not in SMOKE_CHECKS and not only:
            continue
        for fw in fws:
            row = results.setdefault(wl, {})
            why = missing.get("kiln_check" if wl.startswith("check_") else fw) or \
                missing.get(fw)
            if why:
                row[fw] = {"error": why}
                log(f"  {wl:10s} {fw:6s} {why}")
                continue
            left = a.deadline - (time.monotonic() - t_run)
            if left < 15:
                row[fw] = {"error": "skipped: the run's deadline was reached"}
                log(f"  {wl:10s} {fw:6s} skipped (deadline)")
                continue
            timeout = min(a.timeout * factor, left - 5)
            res, wall = run_cell(fw, wl, env, timeout, a)
            row[fw] = res
            if "error" in res:
                log(f"  {wl:10s} {fw:6s} ERROR ({wall:.0f} s): {res['error']}")
                if res.get("stderr_tail"):
                    log("    | " + res["stderr_tail"].replace("\n", "\n    | "))
            elif wl.startswith("check_"):
                log(f"  {wl:10s} {fw:6s} {'OK' if res['ok'] else 'MISMATCH'} worst rel "
                    f"{res['value']:.1e} ({wall:.0f} s)")
            else:
                extra = f", memcpy {res['memcpy_gbs']:.1f} GB/s" if "memcpy_gbs" in res else ""
                log(f"  {wl:10s} {fw:6s} {fmt(res['value'])} {res['unit']} (n={res['n']}, "
                    f"first {res['first_ms']:.0f} ms, {wall:.0f} s{extra})")

    total = time.monotonic() - t_run
    buildtype = "?"
    if kilnd:
        try:
            info = os.path.join(os.path.dirname(os.path.dirname(kilnd)), "meson-info",
                                "intro-buildoptions.json")
            buildtype = next(o["value"] for o in json.load(open(info))
                             if o.get("name") == "buildtype")
        except (OSError, ValueError, StopIteration):
            pass
    card = tinfo.get("card")
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "card": (f"{card} ({tinfo.get('sms')} SMs, {tinfo.get('mem_gib')} GiB)" if card
                 else "none: PyTorch saw no CUDA device (CPU)"),
        "driver": driver_version(),
        "host": f"{platform.node()}, {os.cpu_count()} CPUs, {platform.system()} "
                f"{platform.release()}",
        "versions": ", ".join(x for x in (
            f"Python {platform.python_version()}",
            f"PyTorch {tinfo['torch']}" if tinfo.get("torch") else None,
            f"CUDA (PyTorch's) {tinfo['cuda']}" if tinfo.get("cuda") else None,
            f"cuDNN {tinfo['cudnn']}" if tinfo.get("cudnn") else None,
            f"kiln client {kout}" if okk else None) if x),
        "torch_settings": (f"cudnn.benchmark={tinfo.get('cudnn_benchmark')}; timed cells: "
                           f"TF32 {'on in both frameworks (--tf32)' if a.tf32 else 'off in both (PyTorch allow_tf32 flags False, kiln allow_tf32 0)'}"),
        "kilnd": os.path.relpath(kilnd, REPO) if kilnd else "none",
        "buildtype": buildtype, "commit": git_rev(), "iters": a.iters, "budget": a.budget,
        "deadline": a.deadline, "total_s": total,
    }
    text = render(results, meta, a.smoke)
    if a.results:
        write_section(a.results, text)
        log(f"gpu: wrote the gpu section of {a.results}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
    tbl = table(results, a.smoke)
    ck = check_lines(results)
    short = tbl + ("\n\n" + "\n".join(ck) if ck else "") + \
        f"\n\nkiln ran on {kiln_device(results)}."
    if a.table:
        with open(a.table, "w") as f:
            f.write(short + "\n")
    shutil.rmtree(run_dir, ignore_errors=True)
    print()
    print(short, flush=True)
    # Exit status 1 when a cell failed or kiln could not run at all; a
    # missing PyTorch (a CPU-side run's python may lack it) or cells the
    # deadline skipped are reported in the table but are not failures.
    bad = [1 for row in results.values() for r in row.values()
           if "error" in r and not r["error"].startswith(("missing", "skipped"))]
    return 1 if bad or "kiln" in missing else 0


if __name__ == "__main__":
    sys.exit(main() or 0)
