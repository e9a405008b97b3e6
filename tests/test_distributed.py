"""DistributedDataParallel: two Gloo processes on the CPU train in lockstep and log one MLflow run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, TINY_PARAMS_OVERRIDES, write_tiny_features

TINY = {
    "model": TINY_PARAMS_OVERRIDES["model"],
    "train": {**TINY_PARAMS_OVERRIDES["train"], "validate_every": 0},
    "experiments": {"tiny": {}},
    "report": {"reference": None},
    "tracking": {"experiment": "ddp-test"},
}


@pytest.mark.slow
def test_two_gloo_ranks_keep_identical_weights_and_log_one_run(tmp_path: Path) -> None:
    features, stats = write_tiny_features(tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "models" / "tiny"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("VC_NPROC_PER_NODE", None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(ROOT / "tests" / "ddp_worker.py"),
        "--params",
        str(params),
        "--experiment",
        "tiny",
        "--features",
        str(features),
        "--stats",
        str(stats),
        "--mel-stats",
        str(tmp_path / "stats-mel.json"),  # not read: the tiny model converts WORLD features
        "--out",
        str(out),
        "--checkpoints",
        str(tmp_path / "checkpoints"),
        "--validation",
        str(tmp_path / "validation"),  # not read: the params turn the validation curve off
    ]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    for part in ("generator", "discriminator"):
        r0 = torch.load(out / f"rank0-{part}.pt", weights_only=True)
        r1 = torch.load(out / f"rank1-{part}.pt", weights_only=True)
        assert all(torch.equal(r0[k], r1[k]) for k in r0), f"{part} weights differ between ranks"
    assert (out / "model" / "generator.pt").is_file() and (out / "losses.tsv").is_file()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("ddp-test")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`vc.stage` = 'train'")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "g/cyc")] == [2, 4, 6]
