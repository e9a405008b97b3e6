"""Overhead of one sweep point through SLURM against the same point run locally, and a 4-point sweep's
`vc sweep status`, on the private test cluster (tests/slurm_cluster.py) with the stand-in project of
tests/test_sweep.py. Needs root and Debian's slurm-wlm + munge.

    .venv/bin/python benchmarks/sweep_overhead.py
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from slurm_cluster import missing_reason, start_cluster  # noqa: E402
from test_sweep import make_project  # noqa: E402

from vc.sweep.config import load_sweep_config  # noqa: E402
from vc.sweep.executors import live_states, plan_sweep, submit  # noqa: E402
from vc.sweep.spec import build_points, validate_points  # noqa: E402
from vc.sweep.state import SweepDir, status_table  # noqa: E402

log = logging.getLogger("benchmarks.sweep_overhead")


def _wait(sweep: SweepDir, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(p["state"] in ("done", "failed") for p in sweep.points()):
            return
        time.sleep(0.1)
    raise SystemExit(f"sweep {sweep.name} did not finish")


def _sweep(repo: Path, name: str, sets: list[str]) -> SweepDir:
    points = build_points(sets)
    validate_points(points, repo / "params.yaml")
    config = load_sweep_config(repo / "params.yaml").model_copy(update={"executor": "slurm"})
    plan = plan_sweep(repo, name, points, config)
    submit(plan)
    return plan.sweep_dir


def _status(sweep: SweepDir) -> str:
    points = sweep.points()
    return status_table(points, live_states([str(p.get("job_id", "")) for p in points]))


def main() -> None:
    logging.basicConfig(level="WARNING")
    reason = missing_reason()
    if reason:
        raise SystemExit(reason)
    tmp = Path(tempfile.mkdtemp(prefix="vc-slurm-"))
    tmp.chmod(0o755)
    cluster = start_cluster(tmp / "c")
    import os

    os.environ["SLURM_CONF"] = str(cluster.conf)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        repo = make_project(Path(tempfile.mkdtemp(prefix="vc-proj-")))
        runs = []
        for i in range(3):
            t = time.perf_counter()
            cmd = [sys.executable, "-m", "dvc", "exp", "run", "-S", f"train.optimizer.lr_g=0.0{i + 1}"]
            subprocess.run([*cmd, "--name", f"local-{i}"], cwd=repo, check=True, capture_output=True)
            local = time.perf_counter() - t
            t = time.perf_counter()
            _wait(_sweep(repo, f"one{i}", [f"train.optimizer.lr_g=0.0{i + 1}"]))
            runs.append((local, time.perf_counter() - t))
        for local, slurm in runs:
            sys.stdout.write(
                f"one point: local dvc exp run {local:.1f} s, through SLURM {slurm:.1f} s, "
                f"overhead {slurm - local:.1f} s\n"
            )
        t = time.perf_counter()
        sweep = _sweep(repo, "grid", ["train.optimizer.lr_g=0.1,0.2", "train.iterations=10,20"])
        time.sleep(3)
        sys.stdout.write("\n$ vc sweep status grid   (after 3 s)\n" + _status(sweep))
        _wait(sweep)
        sys.stdout.write(f"\n$ vc sweep status grid   (done after {time.perf_counter() - t:.1f} s)\n")
        sys.stdout.write(_status(sweep))
        out = subprocess.run(
            [sys.executable, "-m", "dvc", "exp", "list", "--name-only"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        sys.stdout.write("\n$ dvc exp list --name-only\n" + out)
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
