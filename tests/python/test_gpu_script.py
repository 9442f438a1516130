"""The GPU session's script, run where there is no GPU.

A GPU machine is lent rarely and briefly, so the one script it runs
(tests/gpu/run.sh) must work the first time. This runs it with --cpu-side
against the suite's build (the kilnd conftest.py finds; its build folder):
the build check, NVRTC compiling every generated CUDA kernel (test_cuda)
and the smoke benchmark (bench/gpu.py --smoke: tiny shapes, every workload
and its correctness check through kiln, PyTorch beside it where this
python has it). Every step must PASS; where NVRTC is absent test_cuda
exits 77 and this test is skipped with its reason.
"""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, kilnd_path

BUDGET_S = 400


def test_run_sh_cpu_side(tmp_path):
    kilnd = os.path.realpath(kilnd_path())
    build = os.path.dirname(os.path.dirname(kilnd))   # <build>/daemon/kilnd
    if not os.path.isdir(os.path.join(build, "tests", "jit")):
        pytest.skip(f"{build} has no tests/jit (a build without tests)")
    env = dict(os.environ)
    env["PYTHON"] = sys.executable   # this python has numpy and msgpack
    env.pop("OUT", None)
    p = subprocess.run(["bash", os.path.join(ROOT, "tests", "gpu", "run.sh"), "--cpu-side",
                        "--build", build, "--budget", str(BUDGET_S), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=BUDGET_S + 60, cwd=ROOT)
    out = p.stdout + p.stderr
    summary = out[out.rfind("== kiln GPU run: steps"):]
    steps = dict(re.findall(r"^(\w+)\s+(PASS|FAIL|MISSING|SKIP)\s+\d+", summary, re.M))
    assert steps, f"no step table in run.sh's output:\n{out[-4000:]}"
    assert set(steps) == {"build", "test_cuda", "bench"}, summary
    if steps["test_cuda"] == "SKIP":
        why = re.search(r"^test_cuda\s+SKIP\s+\d+\s+(.*)$", summary, re.M).group(1)
        assert steps["build"] == "PASS", summary
        pytest.skip(f"test_cuda skipped: {why}")
    bad = {k: v for k, v in steps.items() if v != "PASS"}
    assert not bad, f"steps not passed: {bad}\n{summary}\n{out[-6000:]}"
    assert p.returncode == 0, summary
    # The files a GPU session brings back.
    for name in ("summary.txt", "steps.log", "RESULTS.md", "gpu.json"):
        assert (tmp_path / name).is_file(), name
    md = (tmp_path / "RESULTS.md").read_text()
    assert "<!-- gpu:begin -->" in md and "<!-- gpu:end -->" in md
    # Every kiln cell of the smoke run gave a figure, and the W1 check agreed.
    assert "| W1 MLP" in summary and "- W1: OK" in summary or "W1: could not run" in summary, \
        summary
    for line in summary.splitlines():
        if line.startswith("| ") and "ms/step" in line or "| GB/s |" in line:
            kiln_cell = line.split("|")[3].strip()
            assert re.match(r"^[\d,.]+", kiln_cell), line
