"""cellproc.py: one benchmark cell in a process of its own (bench/peers/run.py,
bench/gpu.py).

A cell prints `PROGRESS {json}` lines while it warms up (first_s: its first
run, compiles included) and one `RESULT {json}` line at the end. The
process gets its own process group, so a timeout kills everything it
started (a framework's compile workers; kiln's embedded kilnd follows its
parent anyway).
"""
import json
import os
import signal
import subprocess
import time


def probe(py, code, env, timeout=120):
    """Runs a snippet in a fresh interpreter `py`; (ok, its last line: of
    stdout when it succeeded, of stderr when not)."""
    try:
        r = subprocess.run([py, "-c", code], env=env, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timeout after {timeout} s"
    out = (r.stdout.strip().splitlines() or [""])[-1]
    err = (r.stderr.strip().splitlines() or [""])[-1]
    last = out if r.returncode == 0 else err
    return r.returncode == 0, last or f"exit status {r.returncode}"


def tail(text, n=15):
    """The last n non-empty lines of text."""
    return "\n".join([l for l in (text or "").strip().splitlines() if l.strip()][-n:])


def run(argv, env, cwd, timeout, first_may_hang=False):
    """Runs the cell `argv`; returns (result dict, wall seconds). The dict is
    the cell's RESULT with `wall_s` added (and `warnings`: the last lines of
    stderr that say "warn"), or {"error": ..., "stderr_tail": ...}.
    first_may_hang: the cell has no first run worth naming on a timeout."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=cwd, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = p.communicate()
        msg = f"timeout after {timeout:.0f} s"
        for line in reversed(out.splitlines()):
            if line.startswith("PROGRESS "):
                pr = json.loads(line[9:])
                msg += f" (its first run, compiles included, took {pr['first_s']:.1f} s)"
                break
        else:
            if not first_may_hang:
                msg += " (its first run did not finish)"
        return {"error": msg, "stderr_tail": tail(err)}, time.monotonic() - t0
    wall = time.monotonic() - t0
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["wall_s"] = wall
            warn = [l for l in err.splitlines() if "warn" in l.lower()]
            if warn:
                res["warnings"] = warn[-3:]
            return res, wall
    errs = [l for l in err.strip().splitlines() if l.strip()]
    msg = errs[-1] if errs else f"exit status {p.returncode}, no output"
    if p.returncode < 0:
        msg = f"killed by signal {-p.returncode}; " + msg
    return {"error": msg[:300], "stderr_tail": tail(err)}, wall
