"""benchmarks/gpu.sh's CPU dry run: every step runs at tiny sizes and writes its figures to one folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_the_gpu_check_runs_end_to_end_on_cpu_at_tiny_sizes(tmp_path: Path) -> None:
    out = tmp_path / "gpu-check"
    env = {**os.environ, "GPU_DRY_RUN": "1", "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    env = {k: v for k, v in env.items() if not k.startswith(("PYTEST_", "DVC_", "MLFLOW_"))}
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), str(out)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = {p.name for p in out.iterdir()}
    assert {"machine.txt", "cuda-tests.txt", "train-step-none.txt", "train-step-bf16.txt"} <= files
    summary = (out / "summary.txt").read_text()
    timed = [line for line in summary.splitlines() if line.startswith("seconds per iteration")]
    assert len(timed) == 2  # the fp32 and the bf16 step
    assert "| stargan-vc2 " in summary and "| mean-var " in summary  # the short training's MCD rows
    report = (out / "short-training" / "report.md").read_text()
    assert "validation" in report and "not test results" in report
