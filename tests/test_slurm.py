"""The private SLURM test cluster itself (tests/slurm_cluster.py): a job runs, writes its output, and a
requeued job runs again; the daemons are loopback-only and stop by process id."""

from __future__ import annotations

import time
from pathlib import Path

from slurm_cluster import SlurmCluster, slurm_cluster  # noqa: F401 (the fixture)


def _wait_file(path: Path, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return path.read_text()
        time.sleep(0.2)
    raise AssertionError(f"{path} never contained {text!r}")


def test_sbatch_runs_a_job_within_seconds(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "out.txt"
    start = time.monotonic()
    job = slurm_cluster.sbatch(
        "#!/bin/bash\necho ran on $SLURMD_NODENAME job $SLURM_JOB_ID\n", "-o", str(out)
    )
    slurm_cluster.wait_state(job, ("COMPLETED",), timeout=30)
    took = time.monotonic() - start
    assert f"ran on {slurm_cluster.node} job {job}" in _wait_file(out, "ran on")
    assert took < 15, f"a trivial job took {took:.1f} s"


def test_cluster_listens_on_loopback_only(slurm_cluster: SlurmCluster) -> None:  # noqa: F811
    text = slurm_cluster.conf.read_text()
    assert "NodeAddr=127.0.0.1" in text and f"CPUs={slurm_cluster.cpus}" in text
    show = slurm_cluster.run("scontrol", "show", "config").stdout
    assert str(slurm_cluster.conf) in show


def test_scontrol_requeue_runs_the_job_again(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "requeue.txt"
    marker = tmp_path / "attempts"
    script = f"#!/bin/bash\necho x >> {marker}\necho start $SLURM_RESTART_COUNT\nsleep 60\n"
    job = slurm_cluster.sbatch(script, "-o", str(out), "--open-mode=append")
    slurm_cluster.wait_state(job, ("RUNNING",))
    _wait_file(marker, "x")
    slurm_cluster.run("scontrol", "requeue", job)
    slurm_cluster.wait_state(job, ("PENDING",), timeout=20)
    # a requeued job waits cred_expire seconds (BeginTime; 5 s here, 120 s by default): starting it earlier
    # (scontrol update StartTime=now) races the revocation of its old credential and can fail the launch
    slurm_cluster.wait_state(job, ("RUNNING",), timeout=20)
    deadline = time.monotonic() + 20
    while marker.read_text().count("x") < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.read_text().count("x") == 2
    assert "start 1" in _wait_file(out, "start 1")
    slurm_cluster.run("scancel", job)
    slurm_cluster.wait_state(job, ("CANCELLED",), timeout=20)
