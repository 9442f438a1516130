"""run.py: issue 7's peer benchmark: kiln (through its Python client)
against PyTorch, Jittor (own kernels), Jittor + oneDNN and numpy, W1-W7,
in one run. Started by run.sh; see bench/README.md.

Every (framework, workload) cell is its own process (cell.py) with a
timeout, run one after another, so a crash, a hang or an unsupported op
is reported in that cell and the run goes on. Every cell gets the same
environment: 2 threads (OMP/MKL/OpenBLAS_NUM_THREADS, torch.set_num_threads,
kilnd --workers), and OPENBLAS_CORETYPE as this machine sets it (read here,
passed on unchanged to every framework, and stated in the output).

It writes the section between the `peers` markers of bench/RESULTS.md (a
table with ratios, the targets of issue 7 checked from the figures) and a
PNG of the ratios next to it.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import cellproc

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PY = sys.executable
THREADS = 2

FWS = ["kiln", "torch", "jittor", "jittor_dnnl", "numpy"]
FW_NAME = {"kiln": "kiln", "torch": "PyTorch", "jittor": "Jittor",
           "jittor_dnnl": "Jittor+oneDNN", "numpy": "numpy"}
PEERS = ["torch", "jittor", "jittor_dnnl", "numpy"]

# (workload, frameworks that run it, timeout factor): numpy only where it
# is a meaningful peer (W3's chain, W4's BLAS, W5's reduction).
PLAN = [
    ("check_W1", ["kiln"]),
    ("W1", ["kiln", "torch", "jittor", "jittor_dnnl"]),
    ("W3", ["kiln", "torch", "jittor", "jittor_dnnl", "numpy"]),
    ("W4_1024", ["kiln", "torch", "jittor", "jittor_dnnl", "numpy"]),
    ("W5", ["kiln", "torch", "jittor", "jittor_dnnl", "numpy"]),
    ("W6_cold", ["kiln", "torch", "jittor", "jittor_dnnl"]),
    ("W6_warm", ["kiln", "torch", "jittor", "jittor_dnnl"]),
    ("W4_4096", ["kiln", "torch", "jittor", "jittor_dnnl", "numpy"]),
    ("W2", ["torch", "jittor_dnnl", "kiln", "jittor"]),
    ("W7", ["torch", "jittor_dnnl", "kiln", "jittor"]),
]
# Cheap cells first (W4 4096³ is cheap once the projection below has
# dropped the slow frameworks; within W2 and W7 the fast peers first), so
# that if the --deadline cuts a run short on a busy machine it cuts the
# slowest cells. The table keeps W1..W7 order.

# W4 4096³ is 64× the work of 1024³: a framework whose 1024³ matmul took
# longer than this is not run at 4096³ (reported with the projection):
# 64 × 0.25 s = 16 s a matmul, twice the default --budget.
W4_PROJECT_LIMIT_S = 0.25


def log(msg):
    print(msg, flush=True)


# ---- environment -----------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def find_kilnd():
    env = os.environ.get("KILN_DAEMON")
    if env:
        return env if os.access(env, os.X_OK) else None
    for d in ("build-bench", "build"):
        p = os.path.join(REPO, d, "daemon", "kilnd")
        if os.access(p, os.X_OK):
            return p
    return None


def probe(code, env, timeout=120):
    return cellproc.probe(PY, code, env, timeout)


def dnnl_prefix():
    """Debian's oneDNN laid out where Jittor looks for the oneDNN it would
    download (<home>/.cache/jittor/mkl/dnnl_lnx_2.2.0_cpu_gomp/{include,lib});
    Jittor links it as -lmkldnn. Returns None, or a reason it is not possible."""
    lib = "/usr/lib/x86_64-linux-gnu/libdnnl.so"
    if not os.path.exists(lib) or not os.path.exists("/usr/include/dnnl.hpp"):
        return "Debian's libdnnl-dev is not installed"
    home = os.path.expanduser("~")
    d = os.path.join(home, ".cache", "jittor", "mkl", "dnnl_lnx_2.2.0_cpu_gomp")
    try:
        os.makedirs(os.path.join(d, "lib"), exist_ok=True)
        os.makedirs(os.path.join(d, "include"), exist_ok=True)
        os.makedirs(os.path.join(d, "examples"), exist_ok=True)
        so = os.path.join(d, "lib", "libmkldnn.so")
        if not os.path.lexists(so):
            os.symlink(lib, so)
        for name in os.listdir("/usr/include"):
            if name.startswith("dnnl"):
                dst = os.path.join(d, "include", name)
                if not os.path.lexists(dst):
                    os.symlink(os.path.join("/usr/include", name), dst)
    except OSError as e:
        return f"cannot lay out oneDNN for Jittor: {e}"
    return None


def base_env(args, run_dir):
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "NUMEXPR_NUM_THREADS"):
        env[k] = str(THREADS)
    env["PYTHONPATH"] = os.path.join(REPO, "clients", "python") + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # Jittor: CPU only (it would otherwise probe nvcc) and no download of
    # oneDNN (set per column below); log only warnings.
    env["nvcc_path"] = ""
    env["use_mkl"] = "0"
    env["log_silent"] = "1"
    env["KILN_DAEMON_ARGS"] = f"--workers {THREADS} --cache-dir {args.kiln_cache}"
    env["KILN_START_TIMEOUT"] = "60"
    if args.kilnd:
        env["KILN_DAEMON"] = args.kilnd
    env["TMPDIR"] = run_dir
    return env


def cell_env(env, fw):
    e = dict(env)
    if fw == "jittor_dnnl":
        e["use_mkl"] = "1"
    return e


# ---- running cells ----------------------------------------------------------------

def run_cell(fw, wl, env, timeout, budget, iters):
    argv = [PY, os.path.join(HERE, "cell.py"), fw, wl, "--budget", str(budget),
            "--iters", str(iters)]
    return cellproc.run(argv, env, HERE, timeout, first_may_hang=wl in ("W6", "check_W1"))


def fmt(v, unit):
    if v is None:
        return "—"
    if unit == "rel":
        return f"{v:.1e}"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


# ---- report ----------------------------------------------------------------------

ROWS = [
    # key, label, where the figure comes from, unit, lower is better
    ("W1", "W1 MLP train step, batch 256", "value", "ms", True),
    ("W2", "W2 small CNN train step, batch 64", "value", "ms", True),
    ("W3", "W3 sigmoid(x*a+b)*tanh(x)+x*x, 16M", "value", "GB/s", False),
    ("W3", "W3 memcpy of the same bytes (numpy, same process)", "memcpy_gbs", "GB/s", False),
    ("W4_1024", "W4 matmul 1024³", "value", "GFLOP/s", False),
    ("W4_4096", "W4 matmul 4096³", "value", "GFLOP/s", False),
    ("W5", "W5 sum over last axis, 4096²", "value", "GB/s", False),
    ("W6_cold", "W6 cold: first step", "value", "ms", True),
    ("W6_cold", "W6 cold: import + first step", "import_plus_first_ms", "ms", True),
    ("W6_full", "W6 Jittor with nothing cached (core build too): first step", "value", "ms",
     True),
    ("W6_full", "W6 Jittor with nothing cached: import + first step", "import_plus_first_ms",
     "ms", True),
    ("W6_warm", "W6 warm: first step", "value", "ms", True),
    ("W6_warm", "W6 warm: import + first step", "import_plus_first_ms", "ms", True),
    ("W7", "W7 ResNet-18 train step, batch 32", "value", "ms", True),
]


def figure(results, key, fw, field):
    r = results.get(key, {}).get(fw)
    if not r or "error" in r or "missing" in r:
        return None
    v = r.get(field)
    return float(v) if isinstance(v, (int, float)) else None


def cell_text(results, key, fw, field, unit):
    r = results.get(key, {}).get(fw)
    if r is None:
        return ""
    if "missing" in r:
        return "missing"
    if "error" in r:
        e = r["error"]
        if e.startswith("skipped"):
            return "skipped¹"
        if e.startswith("not run"):
            return "not run¹"
        if e.startswith("timeout"):
            return "timeout¹"
        return "error¹"
    v = figure(results, key, fw, field)
    t = fmt(v, unit)
    if field == "value" and r.get("n", 20) < 20 and not key.startswith("W6"):
        t += f" (n={r['n']})"
    return t


def kiln_failure(results, key):
    """Why kiln has no figure for key: (text, counts_as_not_met)."""
    r = results.get(key, {}).get("kiln")
    if r is None:
        return "not run in this run", False
    if "missing" in r:
        return f"kiln missing ({r['missing']})", False
    e = r.get("error", "")
    if e.startswith("skipped"):
        return "kiln's cell was skipped (deadline)", False
    if e.startswith("not run"):
        return f"kiln {e}", True
    if e.startswith("timeout"):
        return f"kiln's cell timed out ({e})", True
    return "kiln failed (its error is listed under ¹)", True


def shortfall(ratio):
    """ratio = what kiln reached / the goal (< 1)."""
    return f"short by {1 / ratio:.1f}×" if ratio < 0.9 else f"at {100 * ratio:.1f} % of the goal"


def targets(results):
    """Issue 7's targets, checked from the figures: list of (workload, text, met),
    met None where it cannot be decided (no figure for a reason that is not
    kiln's, e.g. the peer failed or the cell was skipped)."""
    out = []

    def best(key, pick):
        c = [(figure(results, key, p, "value"), p) for p in PEERS]
        c = [x for x in c if x[0] is not None]
        return pick(c) if c else (None, None)

    def no_kiln(name, key, goal_text):
        why, counts = kiln_failure(results, key)
        out.append((name, f"{goal_text}: {why}", False if counts else None))

    for key, name in (("W1", "W1"), ("W2", "W2"), ("W7", "W7")):
        k = figure(results, key, "kiln", "value")
        b, p = best(key, min)
        if b is None:
            out.append((name, "no peer figure", None))
            continue
        goal = 0.8 * b
        text = (f"step ≤ 0.8× best peer ({FW_NAME[p]} {fmt(b, 'ms')} ms → goal "
                f"{fmt(goal, 'ms')} ms)")
        if k is None:
            no_kiln(name, key, text)
            continue
        met = k <= goal
        out.append((name, f"{text}: kiln {fmt(k, 'ms')} ms"
                    + ("" if met else f", {shortfall(goal / k)}"), met))
    k = figure(results, "W3", "kiln", "value")
    mc = figure(results, "W3", "kiln", "memcpy_gbs")
    if k is None or mc is None:
        no_kiln("W3", "W3", "≥ 80 % of memcpy")
    else:
        met = k >= 0.8 * mc
        out.append(("W3", f"≥ 80 % of memcpy ({fmt(mc, 'GB/s')} GB/s in kiln's cell): kiln "
                          f"{fmt(k, 'GB/s')} GB/s = {100 * k / mc:.1f} %"
                    + ("" if met else f", {shortfall(k / (0.8 * mc))}"), met))
    for key in ("W4_1024", "W4_4096"):
        name = key.replace("_", " ") + "³"
        k = figure(results, key, "kiln", "value")
        b, p = best(key, max)
        if b is None:
            out.append((name, "no peer figure", None))
            continue
        text = (f"≥ 90 % of the best BLAS/oneDNN figure ({FW_NAME[p]} "
                f"{fmt(b, 'GFLOP/s')} GFLOP/s)")
        if k is None:
            no_kiln(name, key, text)
            continue
        met = k >= 0.9 * b
        out.append((name, f"{text}: kiln {fmt(k, 'GFLOP/s')} = {100 * k / b:.1f} %"
                    + ("" if met else f", {shortfall(k / (0.9 * b))}"), met))
    k = figure(results, "W5", "kiln", "value")
    t = figure(results, "W5", "torch", "value")
    if t is None:
        out.append(("W5", "no PyTorch figure", None))
    elif k is None:
        no_kiln("W5", "W5", f"≥ PyTorch ({fmt(t, 'GB/s')} GB/s)")
    else:
        met = k >= t
        out.append(("W5", f"≥ PyTorch ({fmt(t, 'GB/s')} GB/s): kiln {fmt(k, 'GB/s')} GB/s = "
                          f"{100 * k / t:.1f} %" + ("" if met else f", {shortfall(k / t)}"), met))
    k = figure(results, "W6_cold", "kiln", "value")
    t = figure(results, "W6_cold", "torch", "value")
    if t is None:
        out.append(("W6 vs PyTorch", "no PyTorch figure", None))
    elif k is None:
        no_kiln("W6 vs PyTorch", "W6_cold", "cold first step ≤ 1.5× PyTorch's first step")
    else:
        met = k <= 1.5 * t
        out.append(("W6 vs PyTorch", f"cold first step ≤ 1.5× PyTorch's first step "
                    f"({fmt(t, 'ms')} ms → goal {fmt(1.5 * t, 'ms')} ms): kiln {fmt(k, 'ms')} ms"
                    + ("" if met else f", {shortfall(1.5 * t / k)}"), met))
    js = [(figure(results, "W6_cold", p, "value"), p) for p in ("jittor", "jittor_dnnl")]
    js = [x for x in js if x[0] is not None]
    if not js:
        out.append(("W6 vs Jittor", "no Jittor figure", None))
    elif k is None:
        no_kiln("W6 vs Jittor", "W6_cold", "cold first step ≥ 50× faster than Jittor's")
    else:
        j, p = min(js)
        met = k * 50 <= j
        out.append(("W6 vs Jittor", f"cold first step ≥ 50× faster than Jittor's cold first step "
                    f"(the faster Jittor column, {FW_NAME[p]}, ops cache cold, {fmt(j, 'ms')} "
                    f"ms → goal {fmt(j / 50, 'ms')} ms): kiln {fmt(k, 'ms')} ms = {j / k:.1f}× "
                    f"faster" + ("" if met else f", {shortfall(j / 50 / k)}"), met))
    return out


def render(results, meta, png_rel):
    L = []
    L.append(f"## peers — {meta['date']}" + (f" ({meta['label']})" if meta.get('label') else ""))
    L.append("")
    L.append("Generated by `bash bench/peers/run.sh` (bench/peers/run.py); do not edit by hand.")
    L.append("")
    L.append(f"- Machine: {meta['cpu']}, {meta['cores']} cores online, {meta['os']}; load "
             f"average (1 min) {meta['load']}.")
    L.append(f"- Versions: {meta['versions']}.")
    L.append(f"- Settings: {THREADS} threads everywhere (OMP/MKL/OPENBLAS_NUM_THREADS={THREADS}, "
             f"torch.set_num_threads({THREADS}), kilnd --workers {THREADS}; Jittor has no "
             f"thread setting of its own beyond OpenMP's); OPENBLAS_CORETYPE="
             f"{meta['coretype']}, the same for every framework. Jittor: nvcc_path=\"\", "
             f"use_mkl=0 (Jittor+oneDNN: use_mkl=1 with {meta['dnnl']}). kiln: embedded kilnd "
             f"({meta['kilnd']}), build type {meta['buildtype']}.")
    L.append(f"- Method: each cell in its own process; warm-up (≥ 3 runs and ≥ 4 s, the same for every framework), then the "
             f"median of {meta['iters']} timed runs, or of as many as fit a {meta['budget']:g} s "
             f"budget for slow cells (marked n=…; at least 3 unless they pass twice the budget; "
             f"a framework whose 1024³ matmul took over {meta.get('w4_limit', W4_PROJECT_LIMIT_S):g} s "
             f"is not run at "
             f"4096³). Cells run one at a time, each with a timeout ({meta['timeout']:g} s, 1.5× "
             f"for W2 and W7); cells left when the run reaches its {meta['deadline'] / 60:g} min "
             f"deadline are skipped. Sync: training steps end with "
             f"`loss.item()`, then `jt.sync_all()` for kiln and Jittor (lazy); W3–W5 end with "
             f"`jt.sync_all()` for kiln and Jittor (results stay in the framework, not fetched); "
             f"PyTorch and numpy are eager. W3 GB/s count 8 bytes per element; W5 counts the "
             f"64 MiB read. W6: kiln cold = a fresh kilnd with an empty `--cache-dir`, warm = the "
             f"same dir in a new process; Jittor cold = {meta['jittor_cold']}; PyTorch has no "
             f"kernel cache (cold and warm are both a fresh process).")
    L.append(f"- Total run time: {meta['total_s'] / 60:.1f} min.")
    L.append("")
    cols = ["kiln", "torch", "jittor", "jittor_dnnl", "numpy"]
    head = "| workload | unit | " + " | ".join(FW_NAME[c] for c in cols) + " | " + \
        " | ".join(f"kiln/{FW_NAME[c]}" for c in cols[1:]) + " |"
    L.append(head)
    L.append("|" + "---|" * (2 + len(cols) + len(cols) - 1))
    for key, label, field, unit, lower in ROWS:
        if key not in results:
            continue
        arrow = " (lower is better)" if lower else ""
        cells = [cell_text(results, key, c, field, unit) for c in cols]
        k = figure(results, key, "kiln", field)
        ratios = []
        for c in cols[1:]:
            p = figure(results, key, c, field)
            r = k / p if k is not None and p not in (None, 0) else None
            ratios.append("" if r is None else f"{r:.2f}×" if r >= 0.1 else f"{r:.2g}×")
        L.append(f"| {label} | {unit}{arrow} | " + " | ".join(cells) + " | " +
                 " | ".join(ratios) + " |")
    L.append("")
    L.append("Ratios are kiln's figure divided by the peer's: for times (ms) below 1 means kiln "
             f"is faster, for rates (GB/s, GFLOP/s) above 1 means kiln is faster. Plot: "
             f"`{png_rel}` (kiln's speed relative to each peer, log scale).")
    L.append("")
    chk = results.get("check_W1", {}).get("kiln")
    if chk and "error" not in chk:
        steps = "; ".join(f"{s}: kiln {v['kiln']:.6f}, PyTorch {v['torch']:.6f} "
                          f"(rel {v['rel']:.1e})" for s, v in chk["steps"].items())
        L.append(f"Correctness (W1, identical weights and input copied via numpy, losses of the "
                 f"first three steps): {'OK' if chk['ok'] else 'MISMATCH'} at 1e-4 relative — "
                 f"{steps}.")
    elif chk:
        L.append(f"Correctness (W1 kiln vs PyTorch): could not run — {chk['error']}")
    L.append("")
    L.append("Issue 7's targets, checked from the figures above:")
    L.append("")
    for name, text, met in targets(results):
        mark = "met" if met else ("**not met**" if met is False else "n/a")
        L.append(f"- {name}: {mark} — {text}.")
    L.append("")
    errs = [(k, f, r) for k, row in results.items() for f, r in row.items()
            if "error" in r or "missing" in r]
    if errs:
        L.append("¹ Errors, timeouts, skipped and missing cells:")
        L.append("")
        for k, f, r in errs:
            msg = r.get("error") or r.get("missing")
            msg = msg.replace("|", "\\|").replace("\n", " ")
            L.append(f"- {k} / {FW_NAME[f]}: {msg}")
        L.append("")
    notes = meta.get("notes", [])
    if notes:
        L.append("Notes:")
        L.append("")
        for n in notes:
            L.append(f"- {n}")
        L.append("")
    return "\n".join(L)


def plot(results, path, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"no plot: {e}"
    labels, data = [], {p: [] for p in PEERS}
    for key, label, field, unit, lower in ROWS:
        if field == "memcpy_gbs" or key not in results:
            continue
        labels.append(label.split(",")[0])
        k = figure(results, key, "kiln", field)
        for p in PEERS:
            v = figure(results, key, p, field)
            if k is None or v is None or k == 0 or v == 0:
                data[p].append(None)
            else:
                data[p].append(v / k if lower else k / v)
    fig, ax = plt.subplots(figsize=(10, 0.75 * len(labels) + 1.5))
    h = 0.8 / len(PEERS)
    vals = [v for p in PEERS for v in data[p] if v is not None]
    lo = min(vals + [1.0]) / 3
    hi = max(vals + [1.0]) * 3
    for i, p in enumerate(PEERS):
        ys = [j + i * h for j in range(len(labels))]
        xs = [v if v is not None else lo for v in data[p]]
        bars = ax.barh(ys, xs, height=h, label=FW_NAME[p], left=0)
        for y, v in zip(ys, data[p]):
            if v is None:
                continue
            ax.text(v * 1.05, y, f"{v:.2g}×", va="center", fontsize=6)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.axvline(1.0, color="black", lw=1)
    ax.set_yticks([j + 0.4 - h / 2 for j in range(len(labels))])
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel("kiln speed ÷ peer speed (log scale; > 1: kiln faster)")
    ax.set_title(title + "\n(no bar: not measured; see the table)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return None


def write_section(md_path, text):
    begin, end = "<!-- peers:begin -->", "<!-- peers:end -->"
    old = open(md_path).read() if os.path.exists(md_path) else "# Benchmark results\n"
    block = f"{begin}\n{text}\n{end}"
    if begin in old and end in old:
        a = old.index(begin)
        b = old.index(end) + len(end)
        new = old[:a] + block + old[b:]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    with open(md_path, "w") as f:
        f.write(new)


# ---- main ------------------------------------------------------------------------

def versions(env, have):
    v = [f"Python {platform.python_version()}"]
    import numpy
    v.append(f"numpy {numpy.__version__}")
    for fw, mod in (("torch", "torch"), ("jittor", "jittor")):
        if have.get(fw):
            v.append(f"{FW_NAME[fw]} {have[fw]}")
    v.append(f"kiln {have.get('kiln_version', '?')}")
    return ", ".join(v)


def main():
    ap = argparse.ArgumentParser(description="issue 7's peer benchmark")
    ap.add_argument("--only", default="", help="comma-separated workloads (e.g. W1,W4_1024)")
    ap.add_argument("--frameworks", default=",".join(FWS))
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--budget", type=float, default=8.0,
                    help="seconds of timed runs per cell before a slow cell stops (≥ 3 runs)")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="seconds per cell (W2, W7: 1.5×)")
    ap.add_argument("--deadline", type=float, default=19 * 60,
                    help="seconds for the whole run; later cells are skipped")
    ap.add_argument("--label", default="")
    ap.add_argument("--results", default=os.path.join(REPO, "bench", "RESULTS.md"))
    ap.add_argument("--png", default=os.path.join(REPO, "bench", "peers_ratios.png"))
    ap.add_argument("--kiln-cache", default=os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kiln-bench",
        "kiln"))
    ap.add_argument("--json", default="", help="also write the raw results here")
    ap.add_argument("--jittor-full-cold", action="store_true",
                    help="also time Jittor's first step with nothing cached at all (a fresh "
                         "HOME: its core library is rebuilt first, minutes)")
    ap.add_argument("--render-only", metavar="JSON", default="",
                    help="rewrite the RESULTS.md section and the PNG from a --json of an "
                         "earlier run, without running anything")
    args = ap.parse_args()
    if args.render_only:
        with open(args.render_only) as f:
            d = json.load(f)
        png_rel = os.path.relpath(args.png, os.path.dirname(args.results))
        m = d["meta"]
        m["label"] = args.label  # --label on the re-render says what the run was
        note = (f"Section rendered again from `{os.path.relpath(args.render_only, REPO)}` "
                f"(the same figures) with --render-only.")
        if note not in m.setdefault("notes", []):
            m["notes"].append(note)
        plot(d["results"], args.png, f"kiln vs peers, {THREADS} threads, {m['date']} "
                                     f"({m['label']})")
        write_section(args.results, render(d["results"], m, png_rel))
        log(f"peers: rewrote {args.results} and {args.png} from {args.render_only}")
        return
    t_run = time.monotonic()
    load0 = loadavg()
    args.kilnd = find_kilnd()
    os.makedirs(args.kiln_cache, exist_ok=True)
    run_dir = tempfile.mkdtemp(prefix="kiln-peers-")
    env = base_env(args, run_dir)
    only = set(x for x in args.only.split(",") if x)
    want = set(args.frameworks.split(","))
    notes = []

    coretype = os.environ.get("OPENBLAS_CORETYPE", "")
    log(f"peers: OPENBLAS_CORETYPE={coretype or '(unset)'}; threads {THREADS}; "
        f"CPU {cpu_model()} x{os.cpu_count()}")

    # Which peers are here (a missing one is reported, not fatal).
    have = {}
    missing = {}
    ok, out = probe("import numpy, msgpack, kiln; print(kiln.__version__ if hasattr(kiln, "
                    "'__version__') else '?')", env)
    have["kiln_version"] = out if ok else "?"
    if not args.kilnd:
        missing["kiln"] = "no kilnd (set KILN_DAEMON, or build build-bench/ or build/)"
    elif not ok:
        missing["kiln"] = f"the kiln client does not import: {out}"
    ok, out = probe("import torch; print(torch.__version__)", env)
    if ok:
        have["torch"] = out
    else:
        missing["torch"] = f"missing ({out})"
    if want & {"jittor", "jittor_dnnl"}:
        log("peers: checking Jittor (its first import compiles its core: minutes)")
        ok, out = probe("import jittor; print(jittor.__version__)", env, timeout=900)
    else:
        ok, out = False, "not asked for"
    if ok:
        have["jittor"] = out
    else:
        missing["jittor"] = f"missing ({out})"
        missing["jittor_dnnl"] = "missing (no Jittor)"
    dnnl = "Debian's oneDNN (libdnnl 2.6)"
    if "jittor_dnnl" not in missing and "jittor_dnnl" in want:
        why = dnnl_prefix()
        if why:
            missing["jittor_dnnl"] = f"not possible: {why}"
        else:
            ok, out = probe("import jittor; from jittor import compile_extern as c; "
                            "print('ok' if c.mkl_ops is not None else 'no mkl_ops')",
                            cell_env(env, "jittor_dnnl"), timeout=600)
            if not ok or out != "ok":
                missing["jittor_dnnl"] = f"not possible: Jittor's oneDNN ops did not build ({out})"
    kilnd = args.kilnd or "none"
    buildtype = "?"
    if args.kilnd:
        info = os.path.join(os.path.dirname(os.path.dirname(args.kilnd)), "meson-info",
                            "intro-buildoptions.json")
        try:
            for o in json.load(open(info)):
                if o.get("name") == "buildtype":
                    buildtype = o["value"]
        except (OSError, ValueError):
            pass

    plan = list(PLAN)
    if args.jittor_full_cold:
        plan.insert(plan.index(("W6_warm", ["kiln", "torch", "jittor", "jittor_dnnl"])),
                    ("W6_full", ["jittor"]))
    results = {}
    for wl, fws in plan:
        if only and wl not in only and wl.split("_")[0] not in only:
            continue
        for fw in fws:
            if fw not in want:
                continue
            row = results.setdefault(wl, {})
            if fw in missing:
                row[fw] = {"missing": missing[fw]}
                log(f"  {wl:9s} {fw:12s} missing")
                continue
            left = args.deadline - (time.monotonic() - t_run)
            if left < 20:
                row[fw] = {"error": "skipped: the run's deadline was reached"}
                log(f"  {wl:9s} {fw:12s} skipped (deadline)")
                continue
            if wl == "W4_4096":
                small = results.get("W4_1024", {}).get(fw, {})
                ms = small.get("median_ms")
                if ms is not None and ms / 1e3 > W4_PROJECT_LIMIT_S:
                    row[fw] = {"error": f"not run: 1024³ took {ms / 1e3:.1f} s a matmul, so "
                                        f"4096³ would take about {64 * ms / 1e3:.0f} s each"}
                    log(f"  {wl:9s} {fw:12s} {row[fw]['error']}")
                    continue
                if "error" in small:
                    row[fw] = {"error": "not run: the 1024³ cell failed"}
                    log(f"  {wl:9s} {fw:12s} not run (1024³ failed)")
                    continue
            e = cell_env(env, fw)
            cell_wl = wl
            if wl.startswith("W6"):
                cell_wl = "W6"
                # cold: an empty cache made here; warm: the same one again.
                cdir = os.path.join(run_dir, f"{'w6full' if wl == 'W6_full' else 'w6'}-{fw}")
                if wl in ("W6_cold", "W6_full"):
                    shutil.rmtree(cdir, ignore_errors=True)
                    os.makedirs(cdir)
                if fw == "kiln":
                    e["KILN_DAEMON_ARGS"] = f"--workers {THREADS} --cache-dir {cdir}"
                    e["XDG_CACHE_HOME"] = cdir
                elif wl == "W6_full":
                    e["HOME"] = cdir   # Jittor keeps everything under ~/.cache/jittor
                elif fw.startswith("jittor"):
                    e["BENCH_JITTOR_OPS_CACHE"] = cdir
            timeout = min(args.timeout * (1.5 if wl in ("W2", "W7") else 1), left)
            if wl == "W6_full":
                timeout = min(900, left)
            res, wall = run_cell(fw, cell_wl, e, timeout, args.budget, args.iters)
            row[fw] = res
            if "error" in res:
                log(f"  {wl:9s} {fw:12s} ERROR ({wall:.0f} s): {res['error']}")
            else:
                log(f"  {wl:9s} {fw:12s} {fmt(res['value'], res['unit'])} {res['unit']} "
                    f"(n={res.get('n')}, {wall:.0f} s)" +
                    (f" memcpy {res['memcpy_gbs']:.1f} GB/s" if "memcpy_gbs" in res else ""))

    core = results.get("W4_1024", {}).get("numpy", {}).get("openblas_core")
    if core:
        notes.append(f"numpy's OpenBLAS ran its `{core}` kernels (openblas_get_corename, with "
                     f"OPENBLAS_CORETYPE={coretype or 'unset'}); PyTorch uses MKL and oneDNN, "
                     f"which ignore OPENBLAS_CORETYPE.")
    total = time.monotonic() - t_run
    chk = results.get("check_W1", {}).get("kiln")
    if chk and "error" not in chk:
        log(f"correctness W1 kiln vs PyTorch: {'OK' if chk['ok'] else 'MISMATCH'} "
            f"(worst rel {chk['value']:.1e}) {json.dumps(chk['steps'])}")
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "label": args.label, "cpu": cpu_model(), "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "load": f"{load0} at the start, {loadavg()} at the end",
        "versions": versions(env, have), "coretype": coretype or "(unset)",
        "dnnl": dnnl, "kilnd": os.path.relpath(kilnd, REPO) if args.kilnd else "none",
        "buildtype": buildtype, "iters": args.iters, "budget": args.budget,
        "timeout": args.timeout, "deadline": args.deadline, "w4_limit": W4_PROJECT_LIMIT_S,
        "jittor_cold": "an empty directory for compiled ops (`jt.flags.cache_path` pointed at it "
                       "after import), with Jittor's core library already built — a first-time "
                       "user also pays the core build (about 4–5 min here), " + (
                           "measured in the \"nothing cached\" rows" if args.jittor_full_cold
                           else "not measured (--jittor-full-cold measures it)"),
        "total_s": total, "notes": notes,
    }
    png_rel = os.path.relpath(args.png, os.path.dirname(args.results))
    err = plot(results, args.png, f"kiln vs peers, {THREADS} threads, {meta['date']} "
                                  f"({args.label})")
    if err:
        notes.append(err)
    text = render(results, meta, png_rel)
    write_section(args.results, text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
    print()
    print(text)
    log(f"peers: wrote {args.results} and {args.png} in {total / 60:.1f} min")
    shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
