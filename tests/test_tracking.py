"""MLflow tracking: where runs go, concurrency-safe store creation, retries. (A real tracking server, end to
end: test_bad_input.py.)"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from vc import tracking
from vc.tracking import RunTracker, init_tracking, project_root, tracking_uri, with_retry


def test_project_root_escapes_dvc_experiment_workspaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert project_root(tmp_path / "repo/.dvc/tmp/exps/tmpab12cd") == tmp_path / "repo"
    assert project_root(tmp_path / "repo/.dvc/tmp/exps/run/4f2e1a") == tmp_path / "repo"
    assert project_root(tmp_path / "repo") == tmp_path / "repo"
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "main"))
    assert project_root() == tmp_path / "main"


def test_tracking_uri_prefers_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert tracking.artifact_location(tmp_path) == (tmp_path / "mlartifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking_uri(tmp_path) == "http://127.0.0.1:5999"
    assert tracking.artifact_location(tmp_path) is None  # the server decides


def _init(root: str) -> str:
    return init_tracking("race", root)


def test_parallel_initialisation_creates_one_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with ProcessPoolExecutor(4) as pool:
        ids = list(pool.map(_init, [str(tmp_path)] * 4))
    assert len(set(ids)) == 1
    import sqlite3

    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_with_retry_retries_locked_database_and_not_other_errors() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert with_retry(flaky) == "ok" and len(calls) == 3
    with pytest.raises(ValueError, match="bad"):
        with_retry(lambda: (_ for _ in ()).throw(ValueError("bad")))


def test_run_tracker_marks_interrupted_runs_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    tracker = RunTracker.start("states", "run", root=tmp_path, system_metrics=False, params={"a": 1})
    with pytest.raises(KeyboardInterrupt), tracker.terminate_on_exit():
        tracker.log_metrics({"x": 1.0}, step=3)
        raise KeyboardInterrupt
    run = tracker.client.get_run(tracker.run_id)
    assert run.info.status == "KILLED" and run.data.metrics["x"] == 1.0 and run.data.params["a"] == "1"
    failed = RunTracker.start("states", "run2", root=tmp_path, system_metrics=False)
    with pytest.raises(ValueError), failed.terminate_on_exit():
        raise ValueError("boom")
    assert failed.client.get_run(failed.run_id).info.status == "FAILED"


# The pipeline against a real `mlflow server` (HTTP transport, server-side artifacts): test_bad_input.py,
# whose messy-corpus project logs to one (a pipeline run costs minutes on two cores: one run serves both).


def test_a_stage_run_carries_the_standard_tags_under_its_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vc
    from vc.config import load_params

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    params_path = tmp_path / "params.yaml"
    params_path.write_text("tracking: {experiment: stages}\n")
    params = load_params({"tracking": {"experiment": "stages"}})
    runs = [
        RunTracker.for_stage(
            params,
            "train",
            "x/seed-0",
            params_path,
            kind="experiment",
            system="x",
            tags={"vc.seed": "0"},
            run_params={"a": 1},
            system_metrics=False,
            root=tmp_path,
        ),
        RunTracker.for_stage(
            params, "vocoder", "vocoder/finetune", params_path, kind="vocoder", root=tmp_path
        ),
    ]
    for tracker in runs:
        tracker.end()
    train, vocoder = (r.client.get_run(r.run_id) for r in runs)
    assert train.data.tags["vc.stage"] == "train" and train.data.tags["vc.kind"] == "experiment"
    assert train.data.tags["vc.experiment"] == "x" and train.data.tags["vc.seed"] == "0"
    assert train.data.tags["vc.version"] == vc.__version__ and "mlflow.source.git.commit" in train.data.tags
    assert train.data.params == {"a": "1"} and train.info.run_name == "x/seed-0"
    assert vocoder.data.tags["vc.kind"] == "vocoder" and "vc.experiment" not in vocoder.data.tags
    group = tracking.group_tag(params_path.read_text(), tracking.git_commit())
    assert train.data.tags["vc.group"] == vocoder.data.tags["vc.group"] == group
    parent = train.data.tags["mlflow.parentRunId"]
    assert parent == vocoder.data.tags["mlflow.parentRunId"]
    experiment = runs[0].client.get_experiment(train.info.experiment_id)
    assert experiment.name == "stages"


def test_the_cli_reads_the_experiment_from_the_validated_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from vc.config import TrackingConfig

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert tracking._tracking_experiment(tmp_path / "params.yaml") == TrackingConfig().experiment
    (tmp_path / "params.yaml").write_text("tracking: {experiment: mine}\n")
    tracking.main(["init"])
    from mlflow.tracking import MlflowClient

    assert MlflowClient(tracking_uri(tmp_path)).get_experiment_by_name("mine") is not None
    (tmp_path / "params.yaml").write_text("tracking: {experimnet: mine}\n")
    with pytest.raises(SystemExit) as stop:
        tracking.main(["init"])
    assert stop.value.code == 2 and "'tracking.experimnet': unknown key" in caplog.text
